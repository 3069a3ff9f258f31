//! The order of a plan's changes: a DAG of steps. Creates and updates wait for what they refer
//! to; deletes wait for what refers to them; a replacement deletes before it creates, except a
//! rolling one (a Swarm node's), which creates before it destroys. Instance creates with the
//! same settings in the same subnet become one step (one RunInstances call).

use std::collections::{BTreeMap, BTreeSet};

use thiserror::Error;

use super::{Action, Change};
use crate::model::{Address, Source, Spec};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum StepKind {
    Create,
    Update,
    Delete,
    /// A rolling replacement's first step: the old instance moves to `…/old` (its member with
    /// it), freeing the address for its successor.
    Depose,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub kind: StepKind,
    /// Indices into the plan's changes; more than one only for a batch of instance creates.
    pub changes: Vec<usize>,
    /// Indices of the steps that must finish first.
    pub after: BTreeSet<usize>,
}

#[derive(Debug, Error)]
#[error("the plan's changes depend on each other in a cycle through {0}; apply them in two runs")]
pub struct CycleError(pub String);

/// Most instances one RunInstances call launches (their slots must fit in one tag value).
pub const MAX_BATCH: usize = 40;

/// Whether a replacement creates the new object before it deletes the old one: a rolling
/// node's (its instance and membership), and a key pair's (a replaced key pair is imported under
/// a name of its own, so the old one stays until the last node launched with it is gone).
pub fn creates_first(c: &Change) -> bool {
    c.action == Action::Replace && (c.rolling.is_some() || matches!(c.spec(), Spec::KeyPair(_)))
}

pub fn steps(changes: &[Change]) -> Result<Vec<Step>, CycleError> {
    let mut steps: Vec<Step> = Vec::new();
    let mut index: BTreeMap<(&Address, StepKind), usize> = BTreeMap::new();
    for (i, c) in changes.iter().enumerate() {
        let kinds: &[StepKind] = match (c.action, c.rolling, c.spec()) {
            (Action::Replace, Some(_), Spec::SwarmNode(_)) => {
                &[StepKind::Depose, StepKind::Create, StepKind::Delete]
            }
            (Action::Replace, ..) if creates_first(c) => &[StepKind::Create, StepKind::Delete],
            (Action::Create, ..) => &[StepKind::Create],
            (Action::Update, ..) => &[StepKind::Update],
            (Action::Delete, ..) => &[StepKind::Delete],
            (Action::Replace, ..) => &[StepKind::Delete, StepKind::Create],
        };
        for &kind in kinds {
            index.insert((&c.address, kind), steps.len());
            steps.push(Step {
                kind,
                changes: vec![i],
                after: BTreeSet::new(),
            });
        }
    }
    let step_of = |a: &Address, k| index.get(&(a, k)).copied();
    for (i, c) in changes.iter().enumerate() {
        let me = &c.address;
        if let Some(after) = &c.after {
            let target = step_of(me, StepKind::Create)
                .or(step_of(me, StepKind::Update))
                .expect("indexed");
            for d in after.references().into_iter().filter(|d| *d != me) {
                for k in [StepKind::Create, StepKind::Update] {
                    if let Some(s) = step_of(d, k) {
                        steps[target].after.insert(s);
                    }
                }
            }
            if let (Some(del), Some(create), false) = (
                step_of(me, StepKind::Delete),
                step_of(me, StepKind::Create),
                creates_first(c),
            ) {
                steps[create].after.insert(del);
            }
        }
        // My delete step must wait for whatever stops referring to me or goes away itself.
        let Some(my_delete) = step_of(me, StepKind::Delete) else {
            continue;
        };
        for (j, other) in changes.iter().enumerate() {
            if i == j
                || !other
                    .before
                    .as_ref()
                    .is_some_and(|b| b.references().contains(&me))
            {
                continue;
            }
            if let Some(s) = step_of(&other.address, StepKind::Delete) {
                steps[my_delete].after.insert(s);
            } else if !other
                .after
                .as_ref()
                .is_some_and(|a| a.references().contains(&me))
                && let Some(s) = step_of(&other.address, StepKind::Update)
            {
                steps[my_delete].after.insert(s);
            }
        }
    }
    order_swarm_joins(changes, &mut steps, &index);
    order_rolls(changes, &mut steps, &index);
    order_apps(changes, &mut steps, &index);
    order_published_ports(changes, &mut steps, &index);
    order_bastion(changes, &mut steps, &index);
    order_swarm_leaves(changes, &mut steps, &index);
    order_targets(changes, &mut steps, &index);
    order_load_balancer(changes, &mut steps, &index);
    order_network_removals(changes, &mut steps, &index);
    let steps = batch_instance_creates(changes, steps);
    check_acyclic(changes, &steps)?;
    Ok(steps)
}

/// Swarm joins: every node joins after the first manager (whose join is the `swarm init`), and
/// managers join one at a time, in order, so the Raft quorum grows one member at a time.
fn order_swarm_joins(
    changes: &[Change],
    steps: &mut [Step],
    index: &BTreeMap<(&Address, StepKind), usize>,
) {
    let join = |address: &str| {
        index
            .get(&(&Address::new(address), StepKind::Create))
            .copied()
    };
    for c in changes {
        if !matches!(c.after, Some(Spec::SwarmNode(_))) || c.rolling.is_some() {
            continue;
        }
        let Some(me) = index.get(&(&c.address, StepKind::Create)).copied() else {
            continue;
        };
        let (base, n) = c.address.split_index();
        let previous = match (base, n) {
            ("swarm.node.manager", Some(0)) => None,
            ("swarm.node.manager", Some(k)) => join(&format!("swarm.node.manager[{}]", k - 1)),
            _ => join("swarm.node.manager[0]"),
        };
        if let Some(p) = previous.filter(|&p| p != me) {
            steps[me].after.insert(p);
        }
    }
}

/// Leaving members: workers first, then managers one at a time, highest index first, so the
/// Raft quorum shrinks one member at a time; a target group drops a leaving node only after the node was
/// drained and deregistered in its own step (scale-in order: drain, deregister, leave, remove).
fn order_swarm_leaves(
    changes: &[Change],
    steps: &mut [Step],
    index: &BTreeMap<(&Address, StepKind), usize>,
) {
    let mut manager_leaves: Vec<(&Address, usize)> = changes
        .iter()
        .filter(|c| c.rolling.is_none())
        .filter(|c| matches!(c.before, Some(Spec::SwarmNode(ref n)) if n.role == "manager"))
        .filter_map(|c| Some((&c.address, *index.get(&(&c.address, StepKind::Delete))?)))
        .collect();
    manager_leaves.sort_by(|a, b| b.0.cmp(a.0));
    for pair in manager_leaves.windows(2) {
        steps[pair[1].1].after.insert(pair[0].1);
    }
    let leaves: Vec<usize> = changes
        .iter()
        .filter(|c| matches!(c.before, Some(Spec::SwarmNode(_))))
        .filter_map(|c| index.get(&(&c.address, StepKind::Delete)).copied())
        .collect();
    // Workers leave first, while the managers that remove them are still there (rolls keep
    // their own order).
    let rolling: Vec<usize> = changes
        .iter()
        .filter(|c| c.rolling.is_some())
        .filter_map(|c| index.get(&(&c.address, StepKind::Delete)).copied())
        .collect();
    let worker_leaves: Vec<usize> = leaves
        .iter()
        .copied()
        .filter(|&l| !manager_leaves.iter().any(|(_, m)| *m == l) && !rolling.contains(&l))
        .collect();
    for &(_, m) in &manager_leaves {
        steps[m].after.extend(&worker_leaves);
    }
    for c in changes
        .iter()
        .filter(|c| matches!(c.after, Some(Spec::Targets(_))))
    {
        if let Some(&u) = index.get(&(&c.address, StepKind::Update)) {
            steps[u].after.extend(&leaves);
        }
    }
}

/// A rolling replacement, node by node: the old member is deposed (retagged `…/old`), the new
/// instance launched under the address, joined, registered and found healthy; only then does
/// the old member leave (drained, deregistered) and its instance go. A roll starts once the
/// roll it waits for (`Rolling::after`) has taken its old member out. A member left `…/old` by
/// a run that was killed leaves only once its successor joined.
fn order_rolls(
    changes: &[Change],
    steps: &mut [Step],
    index: &BTreeMap<(&Address, StepKind), usize>,
) {
    let step = |a: &Address, k| index.get(&(a, k)).copied();
    let member_of_roll = |n: usize| {
        changes
            .iter()
            .find(|c| c.rolling.is_some_and(|r| r.index == n) && c.spec().on_swarm())
    };
    // Members an earlier run left `…/old`: their rolls are in flight, and finish first.
    let in_flight: Vec<usize> = changes
        .iter()
        .filter(|c| c.spec().on_swarm() && c.address.deposed_from().is_some())
        .filter_map(|c| step(&c.address, StepKind::Delete))
        .collect();
    for c in changes.iter().filter(|c| c.spec().on_swarm()) {
        if let Some(r) = c.rolling {
            let (Some(depose), Some(join), Some(leave)) = (
                step(&c.address, StepKind::Depose),
                step(&c.address, StepKind::Create),
                step(&c.address, StepKind::Delete),
            ) else {
                continue;
            };
            steps[leave].after.insert(join);
            let Spec::SwarmNode(member) = c.spec() else {
                continue;
            };
            if let Some(launch) = step(&member.instance, StepKind::Create) {
                steps[launch].after.insert(depose);
            }
            match r.after.and_then(member_of_roll) {
                Some(previous) => {
                    if let Some(s) = step(&previous.address, StepKind::Delete) {
                        steps[depose].after.insert(s);
                    }
                }
                None => steps[depose].after.extend(&in_flight),
            }
        } else if c.action == Action::Delete
            && let Some(successor) = c.address.deposed_from()
            && let Some(leave) = step(&c.address, StepKind::Delete)
        {
            for k in [StepKind::Create, StepKind::Update] {
                if let Some(s) = step(&successor, k) {
                    steps[leave].after.insert(s);
                }
            }
        }
    }
}

/// Services and their secrets, networks and configs are deployed once the Swarm's membership
/// settled (joins, updates and leaves, a killed run's `…/old` members included): an update
/// that overlaps a drain sees the drained node's tasks end and Docker rolls it back. They are
/// taken down before members leave (while a manager still answers).
fn order_apps(
    changes: &[Change],
    steps: &mut [Step],
    index: &BTreeMap<(&Address, StepKind), usize>,
) {
    let is_app = |c: &Change| c.spec().on_swarm() && !matches!(c.spec(), Spec::SwarmNode(_));
    let steps_of = |pick: &dyn Fn(&Change) -> bool, kinds: &[StepKind]| -> Vec<usize> {
        changes
            .iter()
            .filter(|c| pick(c))
            .flat_map(|c| {
                kinds
                    .iter()
                    .filter_map(|&k| index.get(&(&c.address, k)).copied())
            })
            .collect()
    };
    let is_member = |c: &Change| matches!(c.spec(), Spec::SwarmNode(_));
    let membership = steps_of(
        &is_member,
        &[
            StepKind::Depose,
            StepKind::Create,
            StepKind::Update,
            StepKind::Delete,
        ],
    );
    let leaves = steps_of(&is_member, &[StepKind::Delete]);
    let deploys = steps_of(&is_app, &[StepKind::Create, StepKind::Update]);
    let removals = steps_of(&is_app, &[StepKind::Delete]);
    for &d in &deploys {
        steps[d].after.extend(&membership);
    }
    for &l in &leaves {
        steps[l].after.extend(&removals);
    }
}

/// A published port that moves from one service to another is taken only once the service
/// that held it let it go (updated without it, or removed): swarmkit refuses a service whose
/// published port another service holds in ingress mode, or holds in host mode while the new
/// one asks for ingress (`port '8080' is already in use by service …`,
/// `controlapi.checkPortConflicts`); host-mode ports coexist (the scheduler places the tasks).
fn order_published_ports(
    changes: &[Change],
    steps: &mut [Step],
    index: &BTreeMap<(&Address, StepKind), usize>,
) {
    // `published:target/protocol (mode)` → (`published/protocol`, ingress?); an unpublished
    // port holds none.
    let ports = |spec: Option<&Spec>| -> BTreeMap<String, bool> {
        let Some(Spec::Service(s)) = spec else {
            return BTreeMap::new();
        };
        s.ports
            .iter()
            .filter_map(|p| {
                let (published, rest) = p.split_once(':')?;
                let (_, rest) = rest.split_once('/')?;
                let (protocol, mode) = rest.split_once(' ')?;
                (published != "0").then(|| (format!("{published}/{protocol}"), mode == "(ingress)"))
            })
            .collect()
    };
    // What `c` gives up (before, not after) or takes (after, not before); all of it when it
    // is replaced.
    let moved = |c: &Change, from: Option<&Spec>, to: Option<&Spec>| {
        let mut moved = ports(from);
        if c.action != Action::Replace {
            let kept = ports(to);
            moved.retain(|p, _| !kept.contains_key(p));
        }
        moved
    };
    let step = |c: &Change, kinds: [StepKind; 2]| {
        kinds
            .into_iter()
            .find_map(|k| index.get(&(&c.address, k)).copied())
    };
    for giver in changes {
        let released = moved(giver, giver.before.as_ref(), giver.after.as_ref());
        let Some(gives) = step(giver, [StepKind::Delete, StepKind::Update]) else {
            continue;
        };
        for taker in changes.iter().filter(|t| t.address != giver.address) {
            let taken = moved(taker, taker.after.as_ref(), taker.before.as_ref());
            let conflict = taken.iter().any(|(port, &ingress)| {
                released
                    .get(port)
                    .is_some_and(|&held_ingress| ingress || held_ingress)
            });
            if let (true, Some(takes)) =
                (conflict, step(taker, [StepKind::Create, StepKind::Update]))
            {
                steps[takes].after.insert(gives);
            }
        }
    }
}

/// The bastion (`[bastion]`) is how the Swarm is reached: a new one is running, and the nodes'
/// rule that lets it in is in place, before any step on the Swarm; one that goes stays until the
/// last of them (removing it alongside other Swarm changes is refused at plan).
fn order_bastion(
    changes: &[Change],
    steps: &mut [Step],
    index: &BTreeMap<(&Address, StepKind), usize>,
) {
    let on_swarm: Vec<usize> = changes
        .iter()
        .filter(|c| c.spec().on_swarm())
        .flat_map(|c| {
            [
                StepKind::Create,
                StepKind::Update,
                StepKind::Delete,
                StepKind::Depose,
            ]
            .into_iter()
            .filter_map(|k| index.get(&(&c.address, k)).copied())
        })
        .collect();
    for c in changes.iter() {
        if let Some(Spec::Instance(bastion)) = &c.after
            && bastion.pool == "bastion"
            && let Some(&create) = index.get(&(&c.address, StepKind::Create))
        {
            let lets_it_in = |g: &Change| {
                matches!(&g.after, Some(Spec::SecurityGroup(sg))
                    if sg.ingress.iter().any(|r| matches!(&r.source,
                        Source::Group(a) if bastion.security_groups.contains(a))))
            };
            let mut before_swarm = vec![create];
            for g in changes.iter().filter(|g| lets_it_in(g)) {
                before_swarm.extend(
                    [StepKind::Create, StepKind::Update]
                        .into_iter()
                        .filter_map(|k| index.get(&(&g.address, k)).copied()),
                );
            }
            for &s in &on_swarm {
                steps[s].after.extend(&before_swarm);
            }
        }
        if let Some(Spec::Instance(bastion)) = &c.before
            && bastion.pool == "bastion"
            && c.after.is_none()
            && let Some(&delete) = index.get(&(&c.address, StepKind::Delete))
        {
            steps[delete].after.extend(&on_swarm);
        }
    }
}

/// Targets and the listeners that forward to them, so that the load balancer never sends a
/// request where nothing serves it: targets are registered (and waited for) once the Swarm's
/// members joined and the services are deployed; a listener forwards to a target group only
/// once its targets are in; targets no listener forwards to any more are taken out only then
/// (a new target group takes over before the old one goes).
fn order_targets(
    changes: &[Change],
    steps: &mut [Step],
    index: &BTreeMap<(&Address, StepKind), usize>,
) {
    let step = |c: &Change, kinds: &[StepKind]| -> Vec<usize> {
        kinds
            .iter()
            .filter_map(|&k| index.get(&(&c.address, k)).copied())
            .collect()
    };
    let in_place = [StepKind::Create, StepKind::Update];
    let ready: Vec<usize> = changes
        .iter()
        .filter(|c| matches!(c.after, Some(Spec::SwarmNode(_) | Spec::Service(_))))
        .flat_map(|c| step(c, &in_place))
        .collect();
    let forwards_to = |spec: &Option<Spec>, group: &Address| {
        matches!(spec, Some(Spec::Listener(l))
            if matches!(&l.action, crate::model::ListenerAction::Forward { target_group } if target_group == group))
    };
    for targets in changes.iter() {
        if let Some(Spec::Targets(t)) = &targets.after {
            let registered = step(targets, &in_place);
            for &s in &registered {
                steps[s].after.extend(&ready);
            }
            for listener in changes
                .iter()
                .filter(|l| forwards_to(&l.after, &t.target_group))
            {
                for s in step(listener, &in_place) {
                    steps[s].after.extend(&registered);
                }
            }
        }
        if let Some(Spec::Targets(t)) = &targets.before {
            let Some(out) = index.get(&(&targets.address, StepKind::Delete)).copied() else {
                continue;
            };
            for listener in changes.iter().filter(|l| {
                forwards_to(&l.before, &t.target_group) && !forwards_to(&l.after, &t.target_group)
            }) {
                let switched = step(listener, &[StepKind::Update, StepKind::Delete]);
                steps[out].after.extend(switched);
            }
        }
    }
}

/// An internet-facing load balancer is created once its VPC's internet gateway is attached and
/// routed: AWS refuses it otherwise ("VPC … has no internet gateway"), and only sometimes, as
/// the gateway's attachment settles.
fn order_load_balancer(
    changes: &[Change],
    steps: &mut [Step],
    index: &BTreeMap<(&Address, StepKind), usize>,
) {
    let gateway: Vec<usize> = changes
        .iter()
        .filter(|c| {
            matches!(
                c.after,
                Some(Spec::InternetGateway(_) | Spec::RouteTable(_))
            )
        })
        .flat_map(|c| {
            [StepKind::Create, StepKind::Update]
                .into_iter()
                .filter_map(|k| index.get(&(&c.address, k)).copied())
        })
        .collect();
    for c in changes
        .iter()
        .filter(|c| matches!(c.after, Some(Spec::LoadBalancer(_))))
    {
        if let Some(&create) = index.get(&(&c.address, StepKind::Create)) {
            steps[create].after.extend(&gateway);
        }
    }
}

/// The network is how infra reaches the nodes and how their public addresses are released: no
/// network object (VPC, subnet, internet gateway, route table, security group) is removed
/// before every step on the Swarm is over and every instance and load balancer is gone. Else a
/// destroy could cut its own SSH path to the Swarm's teardown, and the gateway's detach would
/// race the public addresses still mapped in the VPC.
fn order_network_removals(
    changes: &[Change],
    steps: &mut [Step],
    index: &BTreeMap<(&Address, StepKind), usize>,
) {
    let first: Vec<usize> = changes
        .iter()
        .flat_map(|c| {
            let kinds: &[StepKind] = match c.spec() {
                s if s.on_swarm() => &[
                    StepKind::Create,
                    StepKind::Update,
                    StepKind::Delete,
                    StepKind::Depose,
                ],
                Spec::Instance(_) | Spec::LoadBalancer(_) => &[StepKind::Delete],
                _ => &[],
            };
            kinds
                .iter()
                .filter_map(|&k| index.get(&(&c.address, k)).copied())
                .collect::<Vec<_>>()
        })
        .collect();
    // Pure removals only: the delete half of a replacement is followed by its create, which
    // the nodes' creates wait for.
    for c in changes.iter().filter(|c| c.after.is_none()) {
        let network = matches!(
            c.before,
            Some(
                Spec::Vpc(_)
                    | Spec::Subnet(_)
                    | Spec::InternetGateway(_)
                    | Spec::RouteTable(_)
                    | Spec::SecurityGroup(_)
            )
        );
        if let (true, Some(&delete)) = (network, index.get(&(&c.address, StepKind::Delete))) {
            steps[delete].after.extend(&first);
        }
    }
}

/// Merges instance creates that share every setting but the address and wait for the same steps.
fn batch_instance_creates(changes: &[Change], steps: Vec<Step>) -> Vec<Step> {
    let key = |s: &Step| -> Option<String> {
        let c = &changes[s.changes[0]];
        match (&s.kind, &c.after) {
            (StepKind::Create, Some(Spec::Instance(spec))) => Some(format!(
                "{}|{:?}",
                serde_json::to_string(spec).expect("serializes"),
                s.after
            )),
            _ => None,
        }
    };
    // Old step index → new step index.
    let mut remap: Vec<usize> = Vec::with_capacity(steps.len());
    let mut merged: Vec<Step> = Vec::new();
    let mut open_batch: BTreeMap<String, usize> = BTreeMap::new();
    for step in &steps {
        match key(step) {
            Some(k)
                if open_batch
                    .get(&k)
                    .is_some_and(|&b| merged[b].changes.len() < MAX_BATCH) =>
            {
                let b = open_batch[&k];
                merged[b].changes.extend(&step.changes);
                remap.push(b);
            }
            k => {
                if let Some(k) = k {
                    open_batch.insert(k, merged.len());
                }
                remap.push(merged.len());
                merged.push(step.clone());
            }
        }
    }
    for step in &mut merged {
        step.after = step.after.iter().map(|&s| remap[s]).collect();
    }
    merged
}

fn check_acyclic(changes: &[Change], steps: &[Step]) -> Result<(), CycleError> {
    let mut done = vec![false; steps.len()];
    let mut remaining = steps.len();
    loop {
        let ready: Vec<usize> = (0..steps.len())
            .filter(|&s| !done[s] && steps[s].after.iter().all(|&d| done[d]))
            .collect();
        if ready.is_empty() {
            break;
        }
        for s in ready {
            done[s] = true;
            remaining -= 1;
        }
    }
    if remaining == 0 {
        return Ok(());
    }
    let stuck = (0..steps.len())
        .find(|&s| !done[s])
        .expect("some step is stuck");
    Err(CycleError(
        changes[steps[stuck].changes[0]].address.to_string(),
    ))
}
