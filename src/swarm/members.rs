//! Swarm membership: joining, updating and removing nodes in the order that keeps the Raft
//! quorum and loses no request.

use std::collections::BTreeMap;
use std::time::Duration;

use super::error::SwarmError;
use super::node::{Deregistration, Node};
use super::ssh::{NodeSession, SshError};
use super::{Swarm, docker};
use crate::model::{Address, SwarmNodeSpec};

/// The Swarm node label naming the EC2 instance a member runs on: it ties the member to its
/// instance across a retag. Not part of the compared spec (the plan cannot know a new
/// instance's id).
pub const LABEL_INSTANCE_ID: &str = "infra.instance-id";

/// Tries of `docker swarm join` a node gets in one apply.
const JOIN_ATTEMPTS: u32 = 3;

impl Swarm<'_> {
    /// Makes `node` a member: `swarm init` when no manager runs a Swarm yet and it is a manager,
    /// otherwise a join with the token from Parameter Store. Returns its Swarm node id.
    /// `newcomers` are managers that join in this same run (still booting, perhaps): their
    /// silence does not mean a Swarm might run without us seeing it.
    pub async fn join(
        &self,
        node: &Node,
        spec: &SwarmNodeSpec,
        managers: &[Node],
        newcomers: &[Address],
    ) -> Result<String, SwarmError> {
        let (session, mut state) = self.wait_ready(node).await?;
        let (leader, mut silent) = self.find_manager(managers, &node.host.address).await?;
        silent.retain(|s| !newcomers.iter().any(|a| s.starts_with(&format!("{a} "))));
        if let (Some((_, manager)), "active") = (&leader, state.as_str())
            && self.forgotten(&session, manager).await?
        {
            state = "inactive".into();
        }
        let id = match (&leader, state.as_str()) {
            // Already a member (an earlier run joined it, then stopped): keep it.
            (_, "active") => {
                session
                    .run(
                        "docker info",
                        "docker info --format '{{.Swarm.NodeID}}'",
                        None,
                    )
                    .await?
            }
            // A manager that does not answer may run the Swarm: starting another would split it.
            (None, _) if !silent.is_empty() => {
                return Err(SwarmError::Other(format!(
                    "{}: cannot join: no manager that answered runs a Swarm, and {} did not answer; \
                     refusing to start a second Swarm. Bring them back (or remove them from the stack), then apply again.",
                    node.host.address,
                    silent.join(", ")
                )));
            }
            (None, _) if spec.role == "manager" => {
                let id = session
                    .run("docker swarm init", &docker::init(&node.private_ip), None)
                    .await?;
                self.store_tokens(&session).await?;
                id
            }
            (None, _) => {
                return Err(SwarmError::Other(format!(
                    "{}: no manager runs a Swarm to join; the first manager must join first",
                    node.host.address
                )));
            }
            (Some((manager, manager_session)), _) => {
                let token = self.token(&spec.role, manager_session).await?;
                self.join_retried(node, &session, &manager.private_ip, &token)
                    .await?
            }
        };
        let id = id.trim().to_string();
        session.close().await;
        // Labels and availability are set from a manager (a worker cannot change them).
        let manager = match leader {
            Some((_, s)) => s,
            None => self.session(node).await?,
        };
        let mut labels = spec.labels.clone();
        labels.insert(LABEL_INSTANCE_ID.into(), node.host.instance_id.clone());
        manager
            .run(
                "docker node update",
                &docker::update(&id, &spec.role, &spec.availability, &labels, &[]),
                None,
            )
            .await?;
        manager.close().await;
        Ok(id)
    }

    /// Whether a node that believes it is a member is unknown to the Swarm (it was removed, or
    /// the Swarm was rebuilt by `recover-swarm` while it was away): then it has left, to join
    /// anew.
    async fn forgotten(
        &self,
        session: &NodeSession,
        manager: &NodeSession,
    ) -> Result<bool, SwarmError> {
        let own = session
            .run(
                "docker info",
                "docker info --format '{{.Swarm.NodeID}}'",
                None,
            )
            .await?;
        if manager
            .run("docker node inspect", &docker::known(own.trim()), None)
            .await
            .is_ok()
        {
            return Ok(false);
        }
        session
            .run("docker swarm leave", docker::leave(), None)
            .await?;
        Ok(true)
    }

    /// `docker swarm join` through the manager at `manager_ip`, the token on stdin; a failed
    /// join is tried again ([`JOIN_ATTEMPTS`] in all). Returns the node's Swarm id.
    async fn join_retried(
        &self,
        node: &Node,
        session: &NodeSession,
        manager_ip: &str,
        token: &str,
    ) -> Result<String, SwarmError> {
        let script = docker::join(&node.private_ip, manager_ip);
        let mut attempt = 1;
        loop {
            match session.run("docker swarm join", &script, Some(token)).await {
                Ok(id) => return Ok(id),
                // The script left the failed join behind, so a retry starts clean:
                // a manager briefly out of reach should not cost a whole apply.
                Err(e @ SshError::Command { .. }) if attempt < JOIN_ATTEMPTS => {
                    tracing::debug!("{}: retrying the join: {e}", node.host.address);
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    attempt += 1;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Role, availability and labels, changed from a manager.
    pub async fn update(
        &self,
        id: &str,
        before: &SwarmNodeSpec,
        after: &SwarmNodeSpec,
        managers: &[Node],
    ) -> Result<(), SwarmError> {
        let (Some((_, s)), _) = self.find_manager(managers, &after.instance).await? else {
            return Err(SwarmError::Other("no Swarm manager answers".into()));
        };
        let removed: Vec<String> = before
            .labels
            .keys()
            .filter(|k| !after.labels.contains_key(*k))
            .cloned()
            .collect();
        s.run(
            "docker node update",
            &docker::update(
                id,
                &after.role,
                &after.availability,
                &after.labels,
                &removed,
            ),
            None,
        )
        .await?;
        s.close().await;
        Ok(())
    }

    /// Labels a member with its instance's id (`infra.instance-id`), from a manager: before a
    /// rolling replacement retags the instance, so the member follows it to `…/old`.
    pub async fn label_instance(
        &self,
        member: &Address,
        id: &str,
        instance_id: &str,
        managers: &[Node],
    ) -> Result<(), SwarmError> {
        let (found, silent) = self.find_manager(managers, &Address::new("")).await?;
        let Some((_, s)) = found else {
            return Err(SwarmError::Other(format!(
                "{member}: no Swarm manager answers ({})",
                silent.join(", ")
            )));
        };
        let label = BTreeMap::from([(LABEL_INSTANCE_ID.to_string(), instance_id.to_string())]);
        let labelled = s
            .run("docker node update", &docker::add_labels(id, &label), None)
            .await;
        s.close().await;
        Ok(labelled.map(drop)?)
    }

    /// Takes a member out, in the order that loses no request and keeps the Raft quorum: it
    /// leaves the target group first (`deregister`, waiting out the delay: the load balancer
    /// sends it no new request, and the ones in flight finish while its tasks still serve);
    /// then a manager is demoted (leadership moves if it led) and the node drained, its tasks
    /// given time to start elsewhere; it leaves the Swarm (if it still answers); a manager
    /// removes it.
    pub async fn remove(
        &self,
        id: &str,
        node: Option<&Node>,
        managers: &[Node],
        deregister: Option<Deregistration>,
    ) -> Result<(), SwarmError> {
        let me = node
            .map(|n| n.host.address.clone())
            .unwrap_or_else(|| Address::new(""));
        let (found, silent) = self.find_manager(managers, &me).await?;
        let Some((_, manager)) = found else {
            // The last manager (a destroy): the Swarm ends with it.
            if let (Some(node), true) = (node, silent.is_empty()) {
                let s = self.session(node).await?;
                let left = s.run("docker swarm leave", docker::leave(), None).await;
                s.close().await;
                return Ok(left.map(drop)?);
            }
            return Err(SwarmError::Other(format!(
                "{me}: no other Swarm manager answers (silent: {}), so the node cannot be removed safely",
                silent.join(", ")
            )));
        };
        let result = async {
            if let Some(d) = deregister {
                self.outside.deregister(&d).await?;
            }
            if node.is_some() {
                manager
                    .run("drain the node", &docker::drain(id), None)
                    .await?;
                manager
                    .run(
                        "wait for its tasks to move",
                        &docker::wait_drained(id),
                        None,
                    )
                    .await?;
            }
            if let Some(node) = node
                && let Ok(s) = self.session(node).await
            {
                let _ = s.run("docker swarm leave", docker::leave(), None).await;
                s.close().await;
            }
            manager
                .run("docker node rm", &docker::remove(id), None)
                .await?;
            Ok::<_, SwarmError>(())
        }
        .await;
        manager.close().await;
        result
    }
}
