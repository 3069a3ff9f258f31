//! Sessions to the nodes: one that waits for a booting node in a real instance's boot order,
//! and one to any manager that runs the Swarm.

use std::time::{Duration, Instant};

use super::docker::Unavailable;
use super::error::{SwarmError, docker_error, why_silent};
use super::node::Node;
use super::ssh::{NodeHost, NodeSession, Ssh, SshError};
use super::{Swarm, docker};
use crate::model::Address;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a login refused by sshd is retried (a booting image may write its authorized keys
/// a moment after sshd answers), and how long Docker is given once the first boot has finished.
const SETTLE: Duration = Duration::from_secs(30);
/// Between tries while a node boots.
const POLL: Duration = Duration::from_secs(3);

impl Swarm<'_> {
    /// Every host key known after this run, for the state.
    pub fn host_keys(&self) -> Vec<String> {
        self.ssh(&[]).map(|s| s.host_keys()).unwrap_or_default()
    }

    pub(super) fn ssh(&self, nodes: &[&Node]) -> Result<Ssh, SshError> {
        let hosts: Vec<NodeHost> = nodes.iter().map(|n| n.host.clone()).collect();
        Ssh::prepare(&self.dir, &self.stack, &self.settings, &hosts, &self.pinned)
    }

    pub(super) async fn session(&self, node: &Node) -> Result<NodeSession, SshError> {
        // Through a jump host, a connection is two SSH handshakes.
        let jumps = node.host.jump.is_some() || self.settings.jump_host.is_some();
        let timeout = CONNECT_TIMEOUT * if jumps { 2 } else { 1 };
        self.ssh(&[node])?.connect(&node.host, timeout).await
    }

    /// Waits until the node is ready for the Swarm, bounded by `[ssh] ready_timeout` as a whole,
    /// in a real instance's boot order: SSH answers (sshd starts before the user-data runs);
    /// the first boot finishes (`cloud-init status --wait`; a failed user-data is an error
    /// quoting its log); then a **new** connection — the user-data's `usermod -aG docker` applies
    /// only to logins after it — finds Docker answering. A changed host key fails at once.
    /// Returns the session and the node's Swarm state (`inactive`, `active`, …).
    pub(super) async fn wait_ready(
        &self,
        node: &Node,
    ) -> Result<(NodeSession, String), SwarmError> {
        let waited = self.settings.ready_timeout();
        let deadline = Instant::now() + waited;
        let boot = self.wait_ssh(node, deadline).await?;
        let left = deadline.saturating_duration_since(Instant::now()).as_secs();
        let booted = boot
            .run("wait for cloud-init", &docker::wait_boot(left.max(1)), None)
            .await?;
        let cloud_init = match docker::parse_boot(&booted) {
            docker::Boot::NoCloudInit => false,
            docker::Boot::Done => true,
            docker::Boot::Running(status) => {
                boot.close().await;
                return Err(SwarmError::BootTimeout {
                    node: node.host.address.clone(),
                    status,
                    waited: humantime::format_duration(waited).to_string(),
                });
            }
            docker::Boot::Failed(status) => {
                let tail = boot
                    .run("read the boot log", docker::boot_log_tail(), None)
                    .await
                    .unwrap_or_else(|e| format!("(cannot read it: {e})"));
                boot.close().await;
                let tail: Vec<String> = tail.lines().map(|l| format!("    | {l}")).collect();
                return Err(SwarmError::BootFailed {
                    node: node.host.address.clone(),
                    instance: node.host.instance_id.clone(),
                    status,
                    tail: tail.join("\n"),
                });
            }
        };
        boot.close().await;
        let settled = Instant::now() + SETTLE;
        loop {
            let session = self.wait_ssh(node, deadline).await?;
            let probe = session.run("wait for Docker", docker::probe(), None).await;
            let e = match probe {
                Ok(out) => {
                    let state = out
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_string();
                    return Ok((session, state));
                }
                Err(e) => e,
            };
            session.close().await;
            let Some(unavailable) = docker_error(node, &e) else {
                return Err(e.into());
            };
            // Once the first boot is over, only a daemon that is starting is worth a long wait.
            let SwarmError::Docker { problem, .. } = &unavailable else {
                unreachable!("docker_error")
            };
            let give_up = if cloud_init && *problem != Unavailable::Down {
                settled.min(deadline)
            } else {
                deadline
            };
            if Instant::now() >= give_up {
                return Err(unavailable);
            }
            tracing::debug!("{}: {unavailable}", node.host.address);
            tokio::time::sleep(POLL).await;
        }
    }

    /// A session once the node answers over SSH, waiting (until `deadline`) while it does not.
    async fn wait_ssh(&self, node: &Node, deadline: Instant) -> Result<NodeSession, SwarmError> {
        let started = Instant::now();
        loop {
            let e = match self.session(node).await {
                Ok(s) => return Ok(s),
                Err(e @ SshError::HostKeyChanged { .. }) => return Err(e.into()),
                Err(e @ SshError::AuthRefused { .. }) if started.elapsed() >= SETTLE => {
                    return Err(e.into());
                }
                Err(e) => e,
            };
            if Instant::now() >= deadline {
                let waited = self.settings.ready_timeout();
                return Err(SwarmError::NotReady {
                    source: Box::new(e),
                    waited: humantime::format_duration(waited).to_string(),
                });
            }
            tracing::debug!("{}: not reachable yet: {e}", node.host.address);
            tokio::time::sleep(POLL).await;
        }
    }

    /// A manager (other than `except`) that runs a Swarm, with an open session to it.
    /// Also returns the managers that did not answer, each with why (`node.manager[1] (Docker
    /// does not answer)`): with any of them silent, "no Swarm" is not known to be true. A login
    /// refused or a changed host key is an error at once.
    pub(super) async fn find_manager(
        &self,
        managers: &[Node],
        except: &Address,
    ) -> Result<(Option<(Node, NodeSession)>, Vec<String>), SwarmError> {
        let mut silent = Vec::new();
        for m in managers.iter().filter(|m| &m.host.address != except) {
            let s = match self.session(m).await {
                Ok(s) => s,
                Err(e @ (SshError::HostKeyChanged { .. } | SshError::AuthRefused { .. })) => {
                    return Err(e.into());
                }
                Err(e) => {
                    tracing::debug!("manager {}: {e}", m.host.address);
                    silent.push(format!("{} (no SSH)", m.host.address));
                    continue;
                }
            };
            match s.run("docker info", docker::probe(), None).await {
                Ok(out) if out.split_whitespace().nth(1) == Some("true") => {
                    return Ok((Some((m.clone(), s)), silent));
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!("manager {}: {e}", m.host.address);
                    silent.push(format!("{} ({})", m.host.address, why_silent(&e)));
                }
            }
            s.close().await;
        }
        Ok((None, silent))
    }
}
