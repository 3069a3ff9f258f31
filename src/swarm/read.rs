//! Reading the Swarm through one manager, and telling a lost quorum from a Swarm not there yet.

use std::time::{Duration, Instant};

use super::docker::{self, Member};
use super::error::{SwarmError, docker_error, why_silent};
use super::node::Node;
use super::ssh::SshError;
use super::{Swarm, docker::SwarmView};

/// The quorum lost as the managers report it, before the leader steps down: a majority of the
/// Raft members unreachable (`docker node ls` still answers for a while from the leader).
/// Returns how many answer, of how many, and the others.
fn quorum_lost(members: &[Member]) -> Option<(usize, usize, Vec<&Member>)> {
    let managers: Vec<&Member> = members.iter().filter(|m| m.reachable.is_some()).collect();
    let online = managers
        .iter()
        .filter(|m| m.reachable == Some(true))
        .count();
    (online * 2 <= managers.len()).then(|| {
        let others = managers
            .iter()
            .filter(|m| m.reachable != Some(true))
            .copied()
            .collect();
        (online, managers.len(), others)
    })
}

/// How long a member may stay `unknown` before it is read as it is. A manager's dispatcher, when
/// it starts (Docker started, or leadership moved), marks every member that is not `down`
/// `unknown` ("Node moved to \"unknown\" state due to leadership change in cluster") until the
/// member's next heartbeat (every 5 s by default), and `down` if none comes in time (swarmkit,
/// `manager/dispatcher/dispatcher.go`, `markNodesUnknown`).
const UNKNOWN_SETTLES: Duration = Duration::from_secs(30);

/// How often a Swarm with `unknown` members is read again.
const UNKNOWN_POLL: Duration = Duration::from_secs(2);

impl Swarm<'_> {
    /// The Swarm as one reachable manager sees it: `Ok(None)` if no manager is in a Swarm
    /// (there is none yet); an error if managers exist in the state but none answers, naming
    /// why (SSH, Docker not installed, not allowed, down). A manager whose Docker does not
    /// answer is never read as "no Swarm". While a member is `unknown` (a manager's Docker just
    /// started, or leadership moved), it is read again every 2 s for up to 30 s: a plan never replaces a member
    /// for a state Docker has not settled yet.
    pub async fn read(&self, managers: &[Node]) -> Result<Option<(Node, SwarmView)>, SwarmError> {
        let started = Instant::now();
        loop {
            let read = self.read_once(managers).await?;
            let unknown: Vec<&str> = read
                .iter()
                .flat_map(|(_, view)| &view.members)
                .filter(|m| m.state == "unknown")
                .map(|m| m.hostname.as_str())
                .collect();
            if unknown.is_empty() || started.elapsed() >= UNKNOWN_SETTLES {
                return Ok(read);
            }
            tracing::info!(
                "waiting for Docker to hear from {} (`unknown` since a manager started or leadership moved)",
                unknown.join(", ")
            );
            tokio::time::sleep(UNKNOWN_POLL).await;
        }
    }

    async fn read_once(&self, managers: &[Node]) -> Result<Option<(Node, SwarmView)>, SwarmError> {
        let mut last_error = None;
        // Managers that answer but have no leader, and the others with why.
        let (mut leaderless, mut silent) = (0, Vec::new());
        for m in managers {
            let session = match self.session(m).await {
                Ok(s) => s,
                Err(e @ (SshError::HostKeyChanged { .. } | SshError::AuthRefused { .. })) => {
                    return Err(e.into());
                }
                Err(e) => {
                    silent.push(format!("{} (no SSH)", m.host.address));
                    last_error = Some(e.into());
                    continue;
                }
            };
            let listed = session
                .run("read the Swarm", &docker::list(&self.stack), None)
                .await;
            session.close().await;
            match listed {
                Ok(out) => {
                    let view = docker::parse_view(&out).map_err(|e| {
                        SwarmError::Other(format!(
                            "{}: cannot read docker inspect output: {e}",
                            m.host.address
                        ))
                    })?;
                    if let Some((online, total, unreachable)) = quorum_lost(&view.members) {
                        let mut silent = Vec::new();
                        for u in unreachable {
                            let node = managers.iter().find(|n| n.private_ip == u.addr);
                            silent.push(match node {
                                Some(n) => {
                                    let why = self.why_silent_now(n).await;
                                    format!("{} ({why})", n.host.address)
                                }
                                None => format!("{} (unreachable)", u.hostname),
                            });
                        }
                        return Err(SwarmError::QuorumLost {
                            online,
                            total,
                            silent,
                        });
                    }
                    return Ok(Some((m.clone(), view)));
                }
                // Reachable, and Docker says it is not a manager of any Swarm (yet).
                Err(SshError::Command { stderr, .. }) if docker::not_a_manager(&stderr) => {}
                Err(SshError::Command { stderr, .. }) if docker::no_leader(&stderr) => {
                    leaderless += 1;
                }
                Err(e) => {
                    silent.push(format!("{} ({})", m.host.address, why_silent(&e)));
                    last_error = Some(docker_error(m, &e).unwrap_or(e.into()));
                }
            }
        }
        if leaderless > 0 {
            return Err(SwarmError::QuorumLost {
                online: leaderless,
                total: managers.len(),
                silent,
            });
        }
        match last_error {
            Some(e) => Err(e),
            None => Ok(None),
        }
    }

    /// Why a manager the others cannot reach does not answer: SSH, or its Docker.
    pub(super) async fn why_silent_now(&self, node: &Node) -> &'static str {
        let Ok(s) = self.session(node).await else {
            return "no SSH";
        };
        let probed = s.run("docker info", docker::probe(), None).await;
        s.close().await;
        match probed {
            Ok(_) => "its Docker answers; the other managers cannot reach it",
            Err(e) => why_silent(&e),
        }
    }
}
