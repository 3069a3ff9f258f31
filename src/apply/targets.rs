//! Where a node enters and leaves the load balancer's target groups on its own, outside the
//! `targets.*` objects' steps: a rolling replacement's new node joins its predecessor's groups
//! and is found healthy there; a leaving node is deregistered, waiting out the delay, before it
//! is drained.

use std::collections::BTreeMap;

use super::{Progress, StepError, health};
use crate::cloud::Cloud;
use crate::model::{Address, Spec, SwarmNodeSpec};
use crate::plan::Plan;
use crate::state::ResourceState;
use crate::swarm::Deregistration;

/// A rolling replacement's new node joins the target groups its predecessor is in (`instance`,
/// or `instance/old` as a run that was killed left it), and is found healthy there before the
/// predecessor leaves. Registering a registered target changes nothing.
pub(super) async fn register_successor(
    cloud: &Cloud,
    instance: &Address,
    known: &BTreeMap<Address, ResourceState>,
    progress: &Progress,
) -> Result<(), StepError> {
    let Some(new) = known.get(instance) else {
        return Ok(());
    };
    for (targets, r) in known {
        let Spec::Targets(t) = &r.spec else { continue };
        let Some(group) = known.get(&t.target_group) else {
            continue;
        };
        if !t.instances.contains(instance) && !t.instances.contains(&instance.deposed()) {
            continue;
        }
        cloud.register_target(targets, &group.id, &new.id).await?;
        if let Some(w) = health::after_joining(t, instance, known) {
            super::cloud_step::wait_healthy(cloud, targets, &w, progress).await?;
        }
    }
    Ok(())
}

/// Where a rolling replacement's old node (`…/old`) is a target: taken out, waiting out the
/// delay, before it is drained.
pub(super) fn rolled_out(
    member: &SwarmNodeSpec,
    known: &BTreeMap<Address, ResourceState>,
) -> Option<Deregistration> {
    let (targets, t) = holding(known, &member.instance)?;
    target_of(targets, t, known.get(&member.instance.deposed())?, known)
}

/// The targets object that holds `instance`, with its record.
fn holding<'a>(
    known: &'a BTreeMap<Address, ResourceState>,
    instance: &Address,
) -> Option<(&'a Address, &'a ResourceState)> {
    known.iter().find(|(_, r)| match &r.spec {
        Spec::Targets(t) => t.instances.contains(instance),
        _ => false,
    })
}

/// The deregistration of `instance` from the group of `targets` (`t`, its record).
fn target_of(
    targets: &Address,
    t: &ResourceState,
    instance: &ResourceState,
    known: &BTreeMap<Address, ResourceState>,
) -> Option<Deregistration> {
    let Spec::Targets(spec) = &t.spec else {
        return None;
    };
    let group = known.get(&spec.target_group)?;
    let Spec::TargetGroup(g) = &group.spec else {
        return None;
    };
    Some(Deregistration {
        targets: targets.clone(),
        target_group_arn: group.id.clone(),
        instance_id: instance.id.clone(),
        delay: std::time::Duration::from_secs(g.deregistration_delay.into()),
    })
}

/// Where the leaving member's instance is a target that this plan takes out (scale-in), for
/// its deregistration before it is drained. None when the instance stays a target (a rejoin).
pub(super) fn deregistration(
    plan: &Plan,
    member: &SwarmNodeSpec,
    known: &BTreeMap<Address, ResourceState>,
) -> Option<Deregistration> {
    let (targets, t) = holding(known, &member.instance)?;
    let leaves = plan.changes.iter().any(|c| {
        &c.address == targets
            && match &c.after {
                Some(Spec::Targets(after)) => !after.instances.contains(&member.instance),
                _ => true,
            }
    });
    if !leaves {
        return None;
    }
    target_of(targets, t, known.get(&member.instance)?, known)
}
