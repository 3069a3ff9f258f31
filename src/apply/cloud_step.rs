//! One step on AWS, with the load balancer's health waited for where the plan says so.

use std::collections::BTreeMap;

use super::{Progress, acted_on, health};
use crate::cloud::{Cloud, CloudError, Created, Ids};
use crate::model::{Address, Spec};
use crate::plan::Plan;
use crate::plan::graph::{Step, StepKind};
use crate::state::ResourceState;

/// One step on AWS: a create (instances launched as one batch), an update (a listener
/// switching target groups checks the new one first), or a delete; health waited for where the
/// plan says so.
pub(super) async fn run_cloud_step(
    plan: &Plan,
    step: &Step,
    cloud: &Cloud,
    known: &BTreeMap<Address, ResourceState>,
    token: &str,
    progress: &Progress,
) -> Result<Vec<(Address, Option<Created>)>, CloudError> {
    let change = &plan.changes[step.changes[0]];
    let a = &change.address;
    let ids: Ids = known
        .iter()
        .map(|(a, r)| (a.clone(), r.id.clone()))
        .collect();
    let ids = &ids;
    match step.kind {
        StepKind::Create => {
            if let Some(Spec::Instance(_)) = &change.after {
                let batch: Vec<_> = step
                    .changes
                    .iter()
                    .map(|&c| {
                        let Some(Spec::Instance(spec)) = &plan.changes[c].after else {
                            unreachable!("batched instances")
                        };
                        (plan.changes[c].address.clone(), spec.clone())
                    })
                    .collect();
                let launched = cloud.launch(&batch, ids, token).await?;
                return Ok(launched.into_iter().map(|(a, c)| (a, Some(c))).collect());
            }
            let spec = change.after.as_ref().expect("a create has an after");
            let created = cloud.create(a, spec, ids).await?;
            if let Some(w) = health::on_forwarding(plan, change, known) {
                wait_healthy(cloud, a, &w, progress).await?;
            }
            Ok(vec![(a.clone(), Some(created))])
        }
        StepKind::Update => {
            let (before, after) = (
                change.before.as_ref().expect("before"),
                change.after.as_ref().expect("after"),
            );
            let id = change.id.as_deref().unwrap_or_default();
            let forwarding = health::on_forwarding(plan, change, known);
            let current = health::forwarded(before).and_then(|g| known.get(g));
            // A listener switching target groups: the new one is checked (weight 0) and found
            // healthy while the old one still takes every request.
            if let (Some(w), Some(current)) = (&forwarding, current) {
                cloud
                    .forward_weighted(a, id, &current.id, &w.target_group_arn)
                    .await?;
                wait_healthy(cloud, a, w, progress).await?;
            }
            cloud.update(a, id, before, after, ids).await?;
            let after_update = match (&forwarding, current) {
                (Some(w), None) => Some(w.clone()),
                _ => health::after_registration(change, known),
            };
            if let Some(w) = after_update {
                wait_healthy(cloud, a, &w, progress).await?;
            }
            Ok(vec![(a.clone(), None)])
        }
        StepKind::Depose => unreachable!("only a Swarm member's change is deposed"),
        StepKind::Delete => {
            let before = change.before.as_ref().expect("a delete has a before");
            let a = &acted_on(change, step.kind);
            let id = change.id.as_deref().unwrap_or_default();
            if let Spec::InternetGateway(_) = before {
                cloud
                    .detach_gateway(a, id, &|line| progress.line(line))
                    .await?;
            }
            cloud.delete(a, id, before).await?;
            // Targets a listener stopped forwarding to in this plan: its requests in flight
            // finish within the deregistration delay before their group goes.
            if let Some(delay) = health::drain_after_switch(plan, change) {
                progress.line(format!("{a}: draining for {}s", delay.as_secs()));
                tokio::time::sleep(delay).await;
            }
            Ok(vec![(a.clone(), None)])
        }
    }
}

pub(super) async fn wait_healthy(
    cloud: &Cloud,
    a: &Address,
    w: &health::Wait,
    progress: &Progress,
) -> Result<(), CloudError> {
    progress.line(format!(
        "{a}: waiting for {} of {} targets to be healthy",
        w.needed,
        w.instances.len()
    ));
    cloud
        .wait_healthy(a, &w.target_group_arn, &w.instances, w.needed)
        .await
}
