//! The state as apply changes it: each step's intent written before its calls, each result
//! recorded as soon as it lands, what the plan saw unchanged adopted first.

use crate::cloud::Created;
use crate::model::{Address, Spec};
use crate::plan::graph::{Step, StepKind};
use crate::plan::{Action, Plan};
use crate::state::{Backend, Intent, State, StateError};

/// The state as apply changes it: every change is written to disk at once.
pub struct Journal<'a> {
    pub backend: &'a Backend,
    pub state: State,
}

impl Journal<'_> {
    pub(super) async fn save(&mut self) -> Result<(), StateError> {
        self.backend.save(&mut self.state).await
    }

    pub(super) async fn intend(
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
    pub(super) fn unfinished_token(&self, addresses: &[&Address], action: &str) -> Option<String> {
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

    pub(super) fn settle(&mut self, address: &Address) {
        self.state.pending.retain(|i| &i.address != address);
    }
}

/// Brings the state in line with what the plan saw unchanged: adopts objects the state had lost
/// and forgets ones that no longer exist.
pub(super) async fn sync_unchanged(
    plan: &Plan,
    journal: &mut Journal<'_>,
) -> Result<(), StateError> {
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

/// Records what a finished step did to `address`.
pub(super) fn record(
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
