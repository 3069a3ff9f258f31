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

/// Checks every moment of the planned manager changes: after each one, the managers that
/// answer must still be more than half of the managers there are. Leaving (a removal, a
/// demotion, a replacement that rejoins) is taken in the worst order; then each rolling
/// replacement adds its new manager before its old one leaves.
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
    let was_ready = |c: &Change| {
        managers
            .iter()
            .find(|(a, _)| **a == c.address)
            .map(|(_, r)| *r)
    };
    let was_manager =
        |c: &Change| matches!(&c.before, Some(Spec::SwarmNode(n)) if n.role == "manager");
    let stays_manager =
        |c: &Change| matches!(&c.after, Some(Spec::SwarmNode(n)) if n.role == "manager");
    let mut leaving: Vec<bool> = changes
        .iter()
        .filter(|c| c.rolling.is_none() && was_manager(c))
        .filter(|c| matches!(c.action, Action::Delete | Action::Replace) || !stays_manager(c))
        .filter_map(was_ready)
        .collect();
    // Worst case: the answering ones leave first. Removing one that does not answer never
    // costs the quorum a vote (after `recover-swarm` it is no Raft member at all): only the
    // moments after an answering one left are checked.
    leaving.sort_by_key(|r| !r);
    let rolling: Vec<bool> = changes
        .iter()
        .filter(|c| c.rolling.is_some() && was_manager(c))
        .filter_map(was_ready)
        .collect();
    let (mut left, mut answering) = (total, ready);
    let mut moments: Vec<(String, usize, usize)> = Vec::new();
    for (i, r) in leaving.iter().enumerate() {
        left -= 1;
        answering -= usize::from(*r);
        if *r {
            moments.push((format!("after {} leave", i + 1), left, answering));
        }
    }
    for (i, r) in rolling.iter().enumerate() {
        moments.push((
            format!("while replacement {} joins", i + 1),
            left + 1,
            answering + 1,
        ));
        answering -= usize::from(*r);
        moments.push((
            format!("after replacement {} is done", i + 1),
            left,
            answering + 1,
        ));
        answering += 1;
    }
    for (when, left, answering) in moments {
        if left > 0 && answering * 2 <= left {
            return Err(QuorumError {
                why: format!(
                    "{ready} of {total} managers answer now; {when}, {answering} of {left} would"
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
            rolling: None,
        }
    }

    #[test]
    fn three_healthy_managers_may_go_down_to_one() {
        let live: Vec<_> = (0..3).map(|i| member(i, true)).collect();
        let changes: Vec<_> = live[1..].iter().map(removal).collect();
        assert_eq!(check(&changes, &live.into_iter().collect()), Ok(()));
    }

    fn roll(o: &(Address, Observed), index: usize) -> Change {
        Change {
            action: Action::Replace,
            after: Some(o.1.spec.clone()),
            rolling: Some(crate::plan::Rolling {
                index,
                of: 3,
                after: None,
            }),
            ..removal(o)
        }
    }

    /// A replacement that rejoins is a leave: with one of three managers down, replacing a
    /// healthy one delete-first would leave 1 of 2; rolling (the new one joins first) keeps
    /// the majority at every moment.
    #[test]
    fn replacements_count_and_rolling_ones_keep_the_majority() {
        let live: Vec<_> = vec![member(0, true), member(1, false), member(2, true)];
        let rejoin = Change {
            action: Action::Replace,
            after: Some(live[2].1.spec.clone()),
            ..removal(&live[2])
        };
        let e = check(&[rejoin], &live.clone().into_iter().collect()).unwrap_err();
        assert!(e.to_string().contains("after 1 leave, 1 of 2 would"), "{e}");
        let rolls: Vec<_> = [0, 2].iter().map(|&i| roll(&live[i], i + 1)).collect();
        assert_eq!(check(&rolls, &live.into_iter().collect()), Ok(()));
        // A single manager rolls through two: both must answer while the new one joins.
        let single = vec![member(0, true)];
        assert_eq!(
            check(&[roll(&single[0], 1)], &single.into_iter().collect()),
            Ok(())
        );
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
