//! One step on the Swarm: a service, secret, network or config through a manager, or a
//! member joined, updated, deposed or removed; the nodes are found in what is known so far.

use std::collections::BTreeMap;

use super::{Progress, StepError, targets};
use crate::cloud::{Cloud, Created};
use crate::model::{Address, Spec, SwarmNodeSpec};
use crate::plan::graph::StepKind;
use crate::plan::{Action, Change, Plan};
use crate::state::ResourceState;
use crate::swarm::{Node, Swarm, SwarmError};

/// One step on the Swarm (a member, a secret or a service); nodes are found in what is known
/// so far.
pub(super) async fn run_swarm_step(
    plan: &Plan,
    kind: StepKind,
    change: &Change,
    swarm: &Swarm<'_>,
    known: &BTreeMap<Address, ResourceState>,
    cloud: &Cloud,
    progress: &Progress,
) -> Result<Option<Created>, StepError> {
    let instances = known
        .iter()
        .map(|(a, r)| (a, r.id.as_str(), &r.spec, &r.outputs));
    let nodes = crate::swarm::nodes(instances, &swarm.settings);
    let managers = crate::swarm::managers(&nodes);
    match change.spec() {
        Spec::SwarmNode(spec) => {
            let reach = (&nodes[..], &managers[..]);
            member_step(
                plan, kind, change, spec, swarm, known, cloud, progress, reach,
            )
            .await
        }
        _ => object_step(plan, kind, change, swarm, known, cloud, progress, &managers).await,
    }
}

/// What `change` created on the Swarm: its id, with the spec as planned.
fn created(change: &Change, id: String) -> Option<Created> {
    Some(Created {
        id,
        spec: change.spec().clone(),
        outputs: BTreeMap::new(),
    })
}

/// A service, secret, network or config, created, updated or removed through a manager.
#[allow(clippy::too_many_arguments)]
async fn object_step(
    plan: &Plan,
    kind: StepKind,
    change: &Change,
    swarm: &Swarm<'_>,
    known: &BTreeMap<Address, ResourceState>,
    cloud: &Cloud,
    progress: &Progress,
    managers: &[Node],
) -> Result<Option<Created>, StepError> {
    let created = |id: String| created(change, id);
    let a = &change.address;
    match (change.spec(), kind) {
        (Spec::Service(spec), StepKind::Create | StepKind::Update) => {
            let report = |line: String| progress.line(line);
            // Only its state differs: Docker did not converge it, and a deploy alone would not
            // restart a task.
            let retry = kind == StepKind::Update
                && !change.fields.is_empty()
                && change.fields.iter().all(|f| f.name == "state");
            let id = swarm
                .deploy(a, spec, retry, managers, &plan.deploy, &report)
                .await?;
            Ok(created(id))
        }
        (Spec::Service(_), StepKind::Delete) => {
            swarm.remove_service(a, managers).await?;
            Ok(None)
        }
        (Spec::SwarmSecret(spec), StepKind::Create) => {
            let secret = plan
                .changes
                .iter()
                .find(|c| c.address == spec.secret)
                .and_then(|c| c.after.as_ref())
                .or_else(|| known.get(&spec.secret).map(|r| &r.spec));
            let Some(Spec::Secret(secret)) = secret else {
                return Err(SwarmError::Other(format!(
                    "{a}: its secret {} is not known",
                    spec.secret
                ))
                .into());
            };
            let value = cloud.secret_value(&spec.secret, secret).await?;
            let id = swarm
                .create_secret(a, &spec.name, &spec.secret, &value, managers)
                .await?;
            Ok(created(id))
        }
        (Spec::SwarmSecret(spec), _) => {
            swarm.remove_secret(a, &spec.name, managers).await?;
            Ok(None)
        }
        (Spec::SwarmNetwork(spec), StepKind::Create) => {
            let id = swarm.create_network(a, spec, managers).await?;
            Ok(created(id))
        }
        (Spec::SwarmNetwork(spec), _) => {
            let network = change.id.as_deref().unwrap_or(&spec.name);
            swarm.remove_network(a, network, managers).await?;
            Ok(None)
        }
        (Spec::SwarmConfig(spec), StepKind::Create) => {
            let id = swarm.create_config(a, spec, managers).await?;
            Ok(created(id))
        }
        (Spec::SwarmConfig(spec), _) => {
            swarm.remove_config(a, &spec.name, managers).await?;
            Ok(None)
        }
        (spec, kind) => unreachable!("{kind:?} of a {} is no object step", spec.kind()),
    }
}

/// A member: deposed before its instance is replaced, joined, updated, or removed in the order
/// that keeps the quorum and loses no request.
#[allow(clippy::too_many_arguments)]
async fn member_step(
    plan: &Plan,
    kind: StepKind,
    change: &Change,
    spec: &SwarmNodeSpec,
    swarm: &Swarm<'_>,
    known: &BTreeMap<Address, ResourceState>,
    cloud: &Cloud,
    progress: &Progress,
    (nodes, managers): (&[Node], &[Node]),
) -> Result<Option<Created>, StepError> {
    let a = &change.address;
    let id = change.id.as_deref().unwrap_or_default();
    let instance = match kind {
        StepKind::Delete if change.rolling.is_some() => spec.instance.deposed(),
        _ => spec.instance.clone(),
    };
    // A member whose instance this plan creates anew ran on an instance that is gone: the one
    // at its address now is its successor, not it.
    let relaunched = plan
        .changes
        .iter()
        .any(|c| c.address == spec.instance && c.action == Action::Create);
    // An orphan member (a stale entry) is never the node now at its address either.
    let stale = relaunched || change.address.as_str().starts_with("orphan.");
    let node = nodes
        .iter()
        .find(|n| n.host.address == instance)
        .filter(|_| !(kind == StepKind::Delete && stale));
    match kind {
        StepKind::Depose => {
            let old = plan
                .changes
                .iter()
                .find(|c| c.address == spec.instance)
                .and_then(|c| c.id.as_deref())
                .ok_or_else(|| SwarmError::Other(format!("{a}: its instance's id is not known")))?;
            swarm.label_instance(a, id, old, managers).await?;
            cloud
                .retag_instance(&spec.instance, old, &spec.instance.deposed())
                .await?;
            Ok(None)
        }
        StepKind::Create => {
            let node = node.ok_or_else(|| {
                SwarmError::Other(format!(
                    "{}: its instance {} is not known",
                    change.address, spec.instance
                ))
            })?;
            // Managers whose membership this plan creates hold no Swarm yet.
            let newcomers: Vec<Address> = plan
                .changes
                .iter()
                .filter_map(|c| match &c.after {
                    Some(Spec::SwarmNode(m))
                        if m.role == "manager" && c.action == Action::Create =>
                    {
                        Some(m.instance.clone())
                    }
                    _ => None,
                })
                .collect();
            let id = swarm.join(node, spec, managers, &newcomers).await?;
            if change.rolling.is_some() {
                targets::register_successor(cloud, &spec.instance, known, progress).await?;
            }
            Ok(created(change, id))
        }
        StepKind::Update => {
            let Some(Spec::SwarmNode(before)) = &change.before else {
                unreachable!("an update has a before")
            };
            swarm.update(id, before, spec, managers).await?;
            Ok(None)
        }
        StepKind::Delete => {
            // A roll an earlier run left: its successor is found healthy before the old leaves.
            if let (Some(successor), None) = (spec.instance.deposed_from(), change.rolling) {
                targets::register_successor(cloud, &successor, known, progress).await?;
            }
            let deregister = match change.rolling {
                Some(_) => targets::rolled_out(spec, known),
                None => targets::deregistration(plan, spec, known),
            };
            swarm.remove(id, node, managers, deregister).await?;
            Ok(None)
        }
    }
}
