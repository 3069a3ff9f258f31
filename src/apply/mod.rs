//! Executes a plan: walks its step graph with bounded concurrency, journals each call's intent
//! and records each result in the state as soon as it lands. Never reads the stack file.

mod cloud_step;
mod health;
mod journal;
mod progress;
mod swarm_step;
mod targets;

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use thiserror::Error;
use tokio::sync::watch;

pub use journal::Journal;
pub use progress::Progress;

use crate::cloud::{Cloud, CloudError, Created};
use crate::model::{Address, HealthWait, Spec, TargetsSpec, resources::sha256_hex};
use crate::plan::Plan;
use crate::plan::graph::{self, CycleError, Step, StepKind};
use crate::state::{ResourceState, StateError};
use crate::swarm::{Swarm, SwarmError};
use journal::{record, sync_unchanged};
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

/// Applies `plan`: every step once those it comes after have landed, at most
/// `opts.parallelism` at a time; each step's intent journaled before its calls, its result as
/// soon as it lands. Returns how many steps ran; stops starting steps at the first failure or
/// on Ctrl-C, and lets the ones in flight finish.
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
    let mut walk = Walk::new(&steps);
    let mut in_flight = FuturesUnordered::new();
    let (mut done, mut failures, mut cancelled) = (0, Vec::new(), *opts.cancel.borrow());
    loop {
        while in_flight.len() < opts.parallelism.max(1) && failures.is_empty() && !cancelled {
            let Some(i) = walk.ready.pop_front() else {
                break;
            };
            let step = &steps[i];
            let token = begin(plan, step, journal, &run_id, &progress).await?;
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
        match finish(
            plan,
            step,
            journal,
            outcome.result,
            outcome.started,
            &progress,
        )
        .await?
        {
            Ok(()) => {
                done += 1;
                walk.landed(outcome.step);
            }
            Err(e) => failures.push(e),
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

/// The step graph as apply walks it: how many steps each one still waits for, and those ready.
struct Walk {
    waiting: Vec<usize>,
    dependents: Vec<Vec<usize>>,
    ready: VecDeque<usize>,
}

impl Walk {
    fn new(steps: &[Step]) -> Self {
        let waiting: Vec<usize> = steps.iter().map(|s| s.after.len()).collect();
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); steps.len()];
        for (i, s) in steps.iter().enumerate() {
            for &d in &s.after {
                dependents[d].push(i);
            }
        }
        let ready = (0..steps.len()).filter(|&i| waiting[i] == 0).collect();
        Walk {
            waiting,
            dependents,
            ready,
        }
    }

    /// Step `i` landed: the steps that waited only for it are ready.
    fn landed(&mut self, i: usize) {
        for &d in &self.dependents[i] {
            self.waiting[d] -= 1;
            if self.waiting[d] == 0 {
                self.ready.push_back(d);
            }
        }
    }
}

/// The addresses a step changes.
fn addresses<'p>(plan: &'p Plan, step: &Step) -> Vec<&'p Address> {
    step.changes
        .iter()
        .map(|&c| &plan.changes[c].address)
        .collect()
}

/// Journals a step's intent and says it starts; returns its idempotency token (an unfinished
/// step of an earlier run keeps its own, so that a resent create is recognised).
async fn begin(
    plan: &Plan,
    step: &Step,
    journal: &mut Journal<'_>,
    run_id: &str,
    progress: &Progress,
) -> Result<String, StateError> {
    let addresses = addresses(plan, step);
    let verb = match step.kind {
        StepKind::Create => "Creating",
        StepKind::Update => "Modifying",
        StepKind::Delete => "Destroying",
        StepKind::Depose => "Deposing",
    };
    let action = verb.to_lowercase();
    let token = journal
        .unfinished_token(&addresses, &action)
        .unwrap_or_else(|| sha256_hex(&format!("{run_id}{}", join(&addresses)))[..64].to_string());
    journal.intend(&addresses, &action, &token).await?;
    let roll = plan.changes[step.changes[0]]
        .rolling
        .map(|r| format!(" (rolling: {} of {})", r.index, r.of))
        .unwrap_or_default();
    progress.line(format!("{}: {verb}...{roll}", join(&addresses)));
    Ok(token)
}

/// Records a finished step in the state and says how it went; the step's own failure is
/// returned inside, a failure to save the state outside.
async fn finish(
    plan: &Plan,
    step: &Step,
    journal: &mut Journal<'_>,
    result: Result<Vec<(Address, Option<Created>)>, StepError>,
    started: Instant,
    progress: &Progress,
) -> Result<Result<(), StepError>, StateError> {
    let addresses = addresses(plan, step);
    let results = match result {
        Ok(results) => results,
        Err(e) => {
            for a in &addresses {
                journal.settle(a);
            }
            journal.save().await?;
            progress.line(format!(
                "{}: failed after {}",
                join(&addresses),
                elapsed(started.elapsed())
            ));
            return Ok(Err(e));
        }
    };
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
        elapsed(started.elapsed())
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
    Ok(Ok(()))
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
    if !change.spec().on_swarm() {
        return Ok(cloud_step::run_cloud_step(plan, step, cloud, known, token, progress).await?);
    }
    let swarm = swarm.ok_or_else(|| {
        SwarmError::Other(format!("{}: the plan has no ssh settings", change.address))
    })?;
    let created =
        swarm_step::run_swarm_step(plan, step.kind, change, swarm, known, cloud, progress).await?;
    Ok(vec![(acted_on(change, step.kind), created)])
}

/// The address a step works on: a rolling replacement's old object is `…/old` once deposed.
pub(super) fn acted_on(change: &crate::plan::Change, kind: StepKind) -> Address {
    match (change.rolling, kind) {
        (Some(_), StepKind::Delete) => change.address.deposed(),
        _ => change.address.clone(),
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
