//! Executes a plan: walks its step graph with bounded concurrency, journals each call's intent
//! and records each result in the state as soon as it lands. Never reads the stack file.

mod health;
mod progress;
mod targets;

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use thiserror::Error;
use tokio::sync::watch;

pub use progress::Progress;

use crate::cloud::{Cloud, CloudError, Created, Ids};
use crate::model::{Address, HealthWait, Spec, TargetsSpec, resources::sha256_hex};
use crate::plan::graph::{self, CycleError, Step, StepKind};
use crate::plan::{Action, Plan};
use crate::state::{Backend, Intent, ResourceState, State, StateError};
use crate::swarm::{Swarm, SwarmError};
use progress::elapsed;

pub struct Options<'a> {
    pub parallelism: usize,
    /// Runs the Swarm steps, when the stack has a Swarm.
    pub swarm: Option<&'a Swarm<'a>>,
    /// Becomes true on Ctrl-C: no new step starts, the ones in flight finish and are recorded.
    pub cancel: watch::Receiver<bool>,
}

#[derive(Debug, Error)]
pub enum ApplyError {
    #[error(transparent)]
    Graph(#[from] CycleError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("{} step(s) failed:\n{}", .0.len(), .0.iter().map(|e| format!("  - {e}")).collect::<Vec<_>>().join("\n"))]
    Failed(Vec<StepError>),
    #[error(
        "interrupted: {done} of {total} steps finished and are recorded; run `infra apply` again to finish"
    )]
    Interrupted { done: usize, total: usize },
}

/// The state as apply changes it: every change is written to disk at once.
pub struct Journal<'a> {
    pub backend: &'a Backend,
    pub state: State,
}

impl Journal<'_> {
    async fn save(&mut self) -> Result<(), StateError> {
        self.backend.save(&mut self.state).await
    }

    async fn intend(
        &mut self,
        addresses: &[&Address],
        action: &str,
        token: &str,
    ) -> Result<(), StateError> {
        let started = chrono::Utc::now();
        for a in addresses {
            self.state.pending.push(Intent {
                address: (*a).clone(),
                action: action.to_string(),
                started,
                token: Some(token.to_string()),
            });
        }
        self.save().await
    }

    /// The token of a step an earlier run started for exactly these addresses and did not
    /// finish (it was killed): the same step, sent again, must be recognised as the same.
    fn unfinished_token(&self, addresses: &[&Address], action: &str) -> Option<String> {
        let tokens: Vec<Option<&String>> = addresses
            .iter()
            .map(|a| {
                self.state
                    .pending
                    .iter()
                    .find(|i| &i.address == *a && i.action == action)
                    .and_then(|i| i.token.as_ref())
            })
            .collect();
        let first = tokens.first().copied().flatten()?;
        let same_step = self
            .state
            .pending
            .iter()
            .filter(|i| i.token.as_ref() == Some(first))
            .count()
            == addresses.len();
        (same_step && tokens.iter().all(|t| *t == Some(first))).then(|| first.clone())
    }

    fn settle(&mut self, address: &Address) {
        self.state.pending.retain(|i| &i.address != address);
    }
}

/// Why one step failed: an AWS call, or the Swarm on the nodes.
#[derive(Debug, Error)]
pub enum StepError {
    #[error(transparent)]
    Cloud(#[from] CloudError),
    #[error(transparent)]
    Swarm(#[from] SwarmError),
}

struct Outcome {
    step: usize,
    started: Instant,
    result: Result<Vec<(Address, Option<Created>)>, StepError>,
}

pub async fn apply(
    plan: &Plan,
    cloud: &Cloud,
    journal: &mut Journal<'_>,
    mut opts: Options<'_>,
) -> Result<usize, ApplyError> {
    sync_unchanged(plan, journal).await?;
    let steps = graph::steps(&plan.changes)?;
    let run_id = uuid::Uuid::new_v4().to_string();
    let progress = Progress::new(steps.len());
    let mut waiting: Vec<usize> = steps.iter().map(|s| s.after.len()).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); steps.len()];
    for (i, s) in steps.iter().enumerate() {
        for &d in &s.after {
            dependents[d].push(i);
        }
    }
    let mut ready: VecDeque<usize> = (0..steps.len()).filter(|&i| waiting[i] == 0).collect();
    let mut in_flight = FuturesUnordered::new();
    let (mut done, mut failures, mut cancelled) = (0, Vec::new(), *opts.cancel.borrow());
    loop {
        while in_flight.len() < opts.parallelism.max(1) && failures.is_empty() && !cancelled {
            let Some(i) = ready.pop_front() else { break };
            let step = &steps[i];
            let addresses: Vec<&Address> = step
                .changes
                .iter()
                .map(|&c| &plan.changes[c].address)
                .collect();
            let verb = match step.kind {
                StepKind::Create => "Creating",
                StepKind::Update => "Modifying",
                StepKind::Delete => "Destroying",
                StepKind::Depose => "Deposing",
            };
            let action = verb.to_lowercase();
            let token = journal
                .unfinished_token(&addresses, &action)
                .unwrap_or_else(|| {
                    sha256_hex(&format!("{run_id}{}", join(&addresses)))[..64].to_string()
                });
            journal.intend(&addresses, &action, &token).await?;
            let roll = plan.changes[step.changes[0]]
                .rolling
                .map(|r| format!(" (rolling: {} of {})", r.index, r.of))
                .unwrap_or_default();
            progress.line(format!("{}: {verb}...{roll}", join(&addresses)));
            let mut known = journal.state.resources.clone();
            for (a, r) in &plan.unchanged {
                known.entry(a.clone()).or_insert_with(|| r.clone());
            }
            let swarm = opts.swarm;
            let progress = &progress;
            in_flight.push(async move {
                let started = Instant::now();
                let result = run_step(plan, step, cloud, swarm, &known, &token, progress).await;
                Outcome {
                    step: i,
                    started,
                    result,
                }
            });
        }
        if in_flight.is_empty() {
            break;
        }
        let outcome = tokio::select! {
            Some(o) = in_flight.next() => o,
            _ = opts.cancel.changed(), if !cancelled => {
                cancelled = true;
                progress.line("Interrupt received: waiting for the calls in flight to finish, then stopping.");
                continue;
            }
        };
        let step = &steps[outcome.step];
        let addresses: Vec<&Address> = step
            .changes
            .iter()
            .map(|&c| &plan.changes[c].address)
            .collect();
        match outcome.result {
            Ok(results) => {
                for (address, created) in results {
                    record(journal, plan, step, &address, created);
                }
                for a in &addresses {
                    journal.settle(a);
                }
                journal.save().await?;
                let what = match step.kind {
                    StepKind::Create => "Creation",
                    StepKind::Update => "Modifications",
                    StepKind::Delete => "Destruction",
                    StepKind::Depose => "Deposing",
                };
                let ids = addresses
                    .iter()
                    .filter_map(|a| journal.state.id_of(a))
                    .collect::<Vec<_>>()
                    .join(", ");
                let ids = if ids.is_empty() || step.kind != StepKind::Create {
                    String::new()
                } else {
                    format!(" [id={ids}]")
                };
                progress.line(format!(
                    "{}: {what} complete after {}{ids}",
                    join(&addresses),
                    elapsed(outcome.started.elapsed())
                ));
                if let Some(Spec::Targets(TargetsSpec {
                    health: HealthWait::Skip(why),
                    ..
                })) = &plan.changes[step.changes[0]].after
                {
                    progress.line(format!(
                        "{}: registered, not waited for: {why}",
                        join(&addresses)
                    ));
                }
                progress.step_done();
                done += 1;
                for &d in &dependents[outcome.step] {
                    waiting[d] -= 1;
                    if waiting[d] == 0 {
                        ready.push_back(d);
                    }
                }
            }
            Err(e) => {
                for a in &addresses {
                    journal.settle(a);
                }
                journal.save().await?;
                progress.line(format!(
                    "{}: failed after {}",
                    join(&addresses),
                    elapsed(outcome.started.elapsed())
                ));
                failures.push(e);
            }
        }
    }
    progress.finish();
    if !failures.is_empty() {
        return Err(ApplyError::Failed(failures));
    }
    if done < steps.len() {
        return Err(ApplyError::Interrupted {
            done,
            total: steps.len(),
        });
    }
    // Every step landed: what an earlier run left in flight is settled too (this plan started
    // from what exists).
    if !journal.state.pending.is_empty() {
        journal.state.pending.clear();
        journal.save().await?;
    }
    Ok(done)
}

/// Brings the state in line with what the plan saw unchanged: adopts objects the state had lost
/// and forgets ones that no longer exist.
async fn sync_unchanged(plan: &Plan, journal: &mut Journal<'_>) -> Result<(), StateError> {
    let state = &mut journal.state;
    let before = state.resources.clone();
    let changing: Vec<&Address> = plan
        .changes
        .iter()
        .filter(|c| c.action != Action::Create)
        .map(|c| &c.address)
        .collect();
    state
        .resources
        .retain(|a, _| plan.unchanged.contains_key(a) || changing.contains(&a));
    for (a, r) in &plan.unchanged {
        state.resources.insert(a.clone(), r.clone());
    }
    for c in plan.changes.iter().filter(|c| c.action != Action::Create) {
        if let (Some(id), Some(before)) = (&c.id, &c.before) {
            let outputs = plan
                .observed
                .get(&c.address)
                .or(state.resources.get(&c.address).map(|r| &r.outputs))
                .cloned()
                .unwrap_or_default();
            state.record(c.address.clone(), id.clone(), before.clone(), outputs);
        }
    }
    if state.resources != before || state.serial == 0 {
        journal.save().await?;
    }
    Ok(())
}

async fn run_step(
    plan: &Plan,
    step: &Step,
    cloud: &Cloud,
    swarm: Option<&Swarm<'_>>,
    known: &BTreeMap<Address, ResourceState>,
    token: &str,
    progress: &Progress,
) -> Result<Vec<(Address, Option<Created>)>, StepError> {
    let change = &plan.changes[step.changes[0]];
    let a = &change.address;
    if change.spec().on_swarm() {
        let swarm =
            swarm.ok_or_else(|| SwarmError::Other(format!("{a}: the plan has no ssh settings")))?;
        let created =
            run_swarm_step(plan, step.kind, change, swarm, known, cloud, progress).await?;
        return Ok(vec![(acted_on(change, step.kind), created)]);
    }
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

/// The address a step works on: a rolling replacement's old object is `…/old` once deposed.
fn acted_on(change: &crate::plan::Change, kind: StepKind) -> Address {
    match (change.rolling, kind) {
        (Some(_), StepKind::Delete) => change.address.deposed(),
        _ => change.address.clone(),
    }
}

async fn wait_healthy(
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

/// One step on the Swarm (a member, a secret or a service); nodes are found in what is known
/// so far.
async fn run_swarm_step(
    plan: &Plan,
    kind: StepKind,
    change: &crate::plan::Change,
    swarm: &Swarm<'_>,
    known: &BTreeMap<Address, ResourceState>,
    cloud: &Cloud,
    progress: &Progress,
) -> Result<Option<Created>, StepError> {
    let instances = known
        .iter()
        .map(|(a, r)| (a, r.id.as_str(), &r.spec, &r.outputs));
    let nodes = crate::swarm::nodes(instances, &swarm.settings);
    let managers: Vec<_> = nodes
        .iter()
        .filter(|n| n.role == "manager")
        .cloned()
        .collect();
    let id = change.id.as_deref().unwrap_or_default();
    let created = |id: String| {
        Some(Created {
            id,
            spec: change.spec().clone(),
            outputs: BTreeMap::new(),
        })
    };
    let a = &change.address;
    match (change.spec(), kind) {
        (Spec::Service(spec), StepKind::Create | StepKind::Update) => {
            let report = |line: String| progress.line(line);
            let id = swarm
                .deploy(a, spec, &managers, &plan.deploy, &report)
                .await?;
            return Ok(created(id));
        }
        (Spec::Service(_), StepKind::Delete) => {
            swarm.remove_service(a, &managers).await?;
            return Ok(None);
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
                .create_secret(a, &spec.name, &spec.secret, &value, &managers)
                .await?;
            return Ok(created(id));
        }
        (Spec::SwarmSecret(spec), _) => {
            swarm.remove_secret(&spec.name, &managers).await?;
            return Ok(None);
        }
        (Spec::SwarmNetwork(spec), StepKind::Create) => {
            let id = swarm.create_network(a, spec, &managers).await?;
            return Ok(created(id));
        }
        (Spec::SwarmNetwork(spec), _) => {
            swarm.remove_network(&spec.name, &managers).await?;
            return Ok(None);
        }
        (Spec::SwarmConfig(spec), StepKind::Create) => {
            let id = swarm.create_config(a, spec, &managers).await?;
            return Ok(created(id));
        }
        (Spec::SwarmConfig(spec), _) => {
            swarm.remove_config(&spec.name, &managers).await?;
            return Ok(None);
        }
        _ => {}
    }
    let Spec::SwarmNode(spec) = change.spec() else {
        unreachable!("the other swarm steps returned above")
    };
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
            swarm.label_instance(a, id, old, &managers).await?;
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
            let id = swarm.join(node, spec, &managers, &newcomers).await?;
            if change.rolling.is_some() {
                targets::register_successor(cloud, &spec.instance, known, progress).await?;
            }
            Ok(created(id))
        }
        StepKind::Update => {
            let Some(Spec::SwarmNode(before)) = &change.before else {
                unreachable!("an update has a before")
            };
            swarm.update(id, before, spec, &managers).await?;
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
            swarm.remove(id, node, &managers, deregister).await?;
            Ok(None)
        }
    }
}

fn record(
    journal: &mut Journal<'_>,
    plan: &Plan,
    step: &Step,
    address: &Address,
    created: Option<Created>,
) {
    let state = &mut journal.state;
    match (step.kind, created) {
        (StepKind::Create, Some(c)) => state.record(address.clone(), c.id, c.spec, c.outputs),
        (StepKind::Update, _) => {
            let change = plan
                .changes
                .iter()
                .find(|c| &c.address == address)
                .expect("step's change");
            let current = state.resources.get(address);
            let outputs = current.map(|r| r.outputs.clone()).unwrap_or_default();
            let id = change.id.clone().unwrap_or_default();
            state.record(
                address.clone(),
                id,
                change.after.clone().expect("after"),
                outputs,
            );
        }
        (StepKind::Delete, _) => {
            // A replacement that created first has its new object recorded at the address.
            let change = plan.changes.iter().find(|c| c.address == *address);
            let replaced_first = change.is_some_and(|c| {
                crate::plan::graph::creates_first(c) && state.id_of(address) != c.id.as_deref()
            });
            if !replaced_first {
                state.resources.remove(address);
            }
        }
        (StepKind::Depose, _) => {
            let change = plan.changes.iter().find(|c| &c.address == address);
            if let Some(Spec::SwarmNode(member)) = change.map(|c| c.spec()) {
                for from in [&member.instance, address] {
                    if let Some(r) = state.resources.remove(from) {
                        state.resources.insert(from.deposed(), r);
                    }
                }
            }
        }
        (StepKind::Create, None) => {}
    }
}

fn join(addresses: &[&Address]) -> String {
    addresses
        .iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Counts of what an apply changed, for its closing line.
pub fn closing_line(plan: &Plan) -> String {
    let s = plan.summary();
    format!(
        "{} complete! Resources: {} added, {} changed, {} destroyed.",
        if plan.destroy { "Destroy" } else { "Apply" },
        s.add,
        s.change,
        s.destroy
    )
}
