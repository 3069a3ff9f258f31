//! The manager quorum guard: a plan may change the managers only in steps that keep a majority
//! of the Raft members reachable at every moment. Managers leave one at a time (the graph orders
//! it) and are demoted first, so leadership moves before a leader goes.

use thiserror::Error;

use super::{Action, Change};
use crate::model::{Live, Spec};

#[derive(Debug, Error, PartialEq, Eq)]
#[error(
    "refusing to change the managers: {why}\n  The Swarm's Raft log needs a majority of its managers reachable at every moment: \
     with {total} managers, {majority} must answer. Bring the unreachable managers back first (or let `infra apply` \
     replace them), then remove managers one run at a time."
)]
pub struct QuorumError {
    pub why: String,
    pub total: usize,
    pub majority: usize,
}

/// Checks every moment of the planned manager removals (and demotions): after each one, the
/// managers that answer must still be more than half of the managers left.
pub fn check(changes: &[Change], live: &Live) -> Result<(), QuorumError> {
    let managers: Vec<(&crate::model::Address, bool)> = live
        .iter()
        .filter_map(|(a, o)| match &o.spec {
            Spec::SwarmNode(n) if n.role == "manager" => Some((a, n.state == "ready")),
            _ => None,
        })
        .collect();
    let total = managers.len();
    let ready = managers.iter().filter(|(_, r)| *r).count();
    let leaving: Vec<bool> = changes
        .iter()
        .filter(|c| {
            let was_manager = matches!(&c.before, Some(Spec::SwarmNode(n)) if n.role == "manager");
            let stays_manager = matches!(&c.after, Some(Spec::SwarmNode(n)) if n.role == "manager");
            was_manager && (c.action == Action::Delete || !stays_manager)
        })
        .filter_map(|c| {
            managers
                .iter()
                .find(|(a, _)| **a == c.address)
                .map(|(_, r)| *r)
        })
        .collect();
    if leaving.is_empty() {
        return Ok(());
    }
    // Worst case: the reachable ones leave first.
    let mut left = total;
    let mut answering = ready;
    let ready_leaving = leaving.iter().filter(|r| **r).count();
    for i in 0..leaving.len() {
        left -= 1;
        if i < ready_leaving {
            answering -= 1;
        }
        if left > 0 && answering * 2 <= left {
            return Err(QuorumError {
                why: format!(
                    "{} of {total} managers answer now; after {} leave, {answering} of {left} would",
                    ready,
                    i + 1
                ),
                total,
                majority: total / 2 + 1,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Address, Observed, SwarmNodeSpec};

    fn member(i: usize, ready: bool) -> (Address, Observed) {
        let spec = SwarmNodeSpec {
            instance: Address::node("manager", i),
            role: "manager".into(),
            availability: "active".into(),
            state: if ready { "ready" } else { "down" }.into(),
            labels: Default::default(),
        };
        (
            Address::new(format!("swarm.node.manager[{i}]")),
            Observed {
                id: format!("n{i}"),
                spec: Spec::SwarmNode(spec),
                outputs: Default::default(),
            },
        )
    }

    fn removal(o: &(Address, Observed)) -> Change {
        Change {
            address: o.0.clone(),
            action: Action::Delete,
            id: Some(o.1.id.clone()),
            before: Some(o.1.spec.clone()),
            after: None,
            fields: vec![],
            reason: None,
        }
    }

    #[test]
    fn three_healthy_managers_may_go_down_to_one() {
        let live: Vec<_> = (0..3).map(|i| member(i, true)).collect();
        let changes: Vec<_> = live[1..].iter().map(removal).collect();
        assert_eq!(check(&changes, &live.into_iter().collect()), Ok(()));
    }

    #[test]
    fn removing_a_healthy_manager_while_another_is_down_is_refused() {
        let live: Vec<_> = vec![member(0, true), member(1, false), member(2, true)];
        let changes = vec![removal(&live[2])];
        let e = check(&changes, &live.into_iter().collect()).unwrap_err();
        assert!(
            e.to_string()
                .contains("2 of 3 managers answer now; after 1 leave, 1 of 2 would"),
            "{e}"
        );
    }
}
