//! When apply waits for target health: once requests can reach the targets. A target group gets
//! health checks only while a listener forwards to it — otherwise its targets are `unused`
//! (Target.NotInUse, "Health checks for your target groups", docs.aws.amazon.com/
//! elasticloadbalancing/latest/application/target-group-health-checks.html) — so targets
//! registered in a new group are waited for by the listener step that starts forwarding to it,
//! and targets added to a group already in use by their own step. What to wait for is the plan's
//! judgement (`TargetsSpec::health`). Pure.

use std::collections::BTreeMap;

use crate::model::{Address, HealthWait, ListenerAction, Spec, TargetsSpec};
use crate::plan::{Change, Plan};
use crate::state::ResourceState;

/// Targets to wait for: at least `needed` of `instances` healthy in the group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wait {
    pub target_group_arn: String,
    pub instances: Vec<String>,
    pub needed: usize,
}

/// After targets were registered in a group a listener already forwards to (`known`: the
/// state so far): the newly added ones, or as many as the service has tasks.
pub fn after_registration(
    change: &Change,
    known: &BTreeMap<Address, ResourceState>,
) -> Option<Wait> {
    let Some(Spec::Targets(after)) = &change.after else {
        return None;
    };
    let in_use = known
        .values()
        .any(|r| forwards_to(&r.spec, &after.target_group));
    if !in_use {
        return None;
    }
    let before: &[Address] = match &change.before {
        Some(Spec::Targets(b)) => &b.instances,
        _ => &[],
    };
    let added: Vec<&Address> = after
        .instances
        .iter()
        .filter(|i| !before.contains(i))
        .collect();
    match &after.health {
        HealthWait::All => wait(after, added, known, None),
        HealthWait::AtLeast(n) => wait(after, after.instances.iter().collect(), known, Some(*n)),
        HealthWait::Skip(_) => None,
    }
}

/// A rolling replacement's new node, registered where its predecessor was a target: itself, or
/// as many of the group's targets as the service has tasks. None when no listener forwards to
/// the group (its targets are not health-checked) or health is not waited for.
pub fn after_joining(
    targets: &TargetsSpec,
    successor: &Address,
    known: &BTreeMap<Address, ResourceState>,
) -> Option<Wait> {
    let in_use = known
        .values()
        .any(|r| forwards_to(&r.spec, &targets.target_group));
    if !in_use {
        return None;
    }
    match &targets.health {
        HealthWait::All => wait(targets, vec![successor], known, None),
        HealthWait::AtLeast(n) => {
            wait(targets, targets.instances.iter().collect(), known, Some(*n))
        }
        HealthWait::Skip(_) => None,
    }
}

/// Before (a listener switching) or after (a new listener) forwarding to a target group it did
/// not forward to: every target of that group, or as many as the service has tasks.
pub fn on_forwarding(
    plan: &Plan,
    change: &Change,
    known: &BTreeMap<Address, ResourceState>,
) -> Option<Wait> {
    let group = forwarded(change.after.as_ref()?)?;
    if change.before.as_ref().and_then(forwarded) == Some(group) {
        return None;
    }
    let targets = plan
        .changes
        .iter()
        .filter_map(|c| c.after.as_ref())
        .chain(plan.unchanged.values().map(|r| &r.spec))
        .find_map(|s| match s {
            Spec::Targets(t) if &t.target_group == group => Some(t),
            _ => None,
        })?;
    match &targets.health {
        HealthWait::All => wait(targets, targets.instances.iter().collect(), known, None),
        HealthWait::AtLeast(n) => {
            wait(targets, targets.instances.iter().collect(), known, Some(*n))
        }
        HealthWait::Skip(_) => None,
    }
}

/// How long deregistered targets drain: only targets whose group a listener stopped forwarding
/// to in this plan (while the load balancer stays) have requests in flight to finish.
pub fn drain_after_switch(plan: &Plan, change: &Change) -> Option<std::time::Duration> {
    let Some(Spec::Targets(t)) = &change.before else {
        return None;
    };
    let switched = plan.changes.iter().any(|c| {
        c.after.is_some()
            && c.before.as_ref().and_then(forwarded) == Some(&t.target_group)
            && c.after.as_ref().and_then(forwarded) != Some(&t.target_group)
    });
    let group = plan.changes.iter().find(|c| c.address == t.target_group)?;
    match (&group.before, switched) {
        (Some(Spec::TargetGroup(g)), true) => Some(std::time::Duration::from_secs(
            g.deregistration_delay.into(),
        )),
        _ => None,
    }
}

/// The target group a listener forwards to, if it does.
pub fn forwarded(spec: &Spec) -> Option<&Address> {
    match spec {
        Spec::Listener(l) => match &l.action {
            ListenerAction::Forward { target_group } => Some(target_group),
            ListenerAction::RedirectHttps { .. } => None,
        },
        _ => None,
    }
}

fn forwards_to(spec: &Spec, group: &Address) -> bool {
    forwarded(spec) == Some(group)
}

fn wait(
    targets: &TargetsSpec,
    instances: Vec<&Address>,
    known: &BTreeMap<Address, ResourceState>,
    needed: Option<usize>,
) -> Option<Wait> {
    let target_group_arn = known.get(&targets.target_group)?.id.clone();
    let instances: Vec<String> = instances
        .into_iter()
        .filter_map(|i| known.get(i).map(|r| r.id.clone()))
        .collect();
    let needed = needed.unwrap_or(instances.len()).min(instances.len());
    (needed > 0).then_some(Wait {
        target_group_arn,
        instances,
        needed,
    })
}
