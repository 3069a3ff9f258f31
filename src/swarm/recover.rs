//! `infra recover-swarm`: a Swarm that lost its quorum rebuilt from one manager.

use super::error::{SwarmError, why_silent};
use super::node::Node;
use super::{Swarm, docker};
use crate::model::Address;

impl Swarm<'_> {
    /// Rebuilds a Swarm that lost its quorum from one manager (`from`, or the first whose Docker
    /// answers as a manager): `docker swarm init --force-new-cluster` there, the join tokens
    /// stored again, the other managers' entries removed, and every other manager that still
    /// answers made to leave, so that the next apply rejoins it. Refused while the Swarm has a leader. Returns the manager used and
    /// the managers that did not answer.
    pub async fn recover(
        &self,
        managers: &[Node],
        from: Option<&Address>,
    ) -> Result<(Address, Vec<String>), SwarmError> {
        match self.read(managers).await {
            Err(SwarmError::QuorumLost { .. }) => {}
            Ok(Some(_)) => {
                return Err(SwarmError::Other(
                    "the Swarm has a leader: its quorum is not lost, so there is nothing to recover. `infra plan` shows what differs.".into(),
                ));
            }
            Ok(None) => {
                return Err(SwarmError::Other(
                    "no manager runs a Swarm: `infra apply` creates one.".into(),
                ));
            }
            Err(e) => return Err(e),
        }
        let candidates: Vec<&Node> = managers
            .iter()
            .filter(|m| from.is_none_or(|f| &m.host.address == f))
            .collect();
        let mut chosen = None;
        let mut silent = Vec::new();
        for m in candidates {
            let Ok(s) = self.session(m).await else {
                silent.push(format!("{} (no SSH)", m.host.address));
                continue;
            };
            match s.run("docker info", docker::probe(), None).await {
                Ok(out) if chosen.is_none() && out.split_whitespace().nth(1) == Some("true") => {
                    chosen = Some((m, s));
                    continue;
                }
                Ok(_) => {}
                Err(e) => silent.push(format!("{} ({})", m.host.address, why_silent(&e))),
            }
            s.close().await;
        }
        let Some((survivor, session)) = chosen else {
            return Err(SwarmError::Other(format!(
                "no manager{} answers as a Swarm manager ({}): start Docker on one, then run again",
                from.map(|f| format!(" among {f}")).unwrap_or_default(),
                silent.join(", ")
            )));
        };
        let rebuilt = session
            .run(
                "docker swarm init --force-new-cluster",
                &docker::force_new_cluster(&survivor.private_ip),
                None,
            )
            .await;
        let tokens = async {
            rebuilt?;
            // The other managers are no Raft members any more: their entries go, and they
            // rejoin (or are replaced) as new members.
            let others = session
                .run("list the other managers", docker::other_managers(), None)
                .await?;
            for id in others.split_whitespace() {
                session
                    .run("docker node rm", &docker::remove(id), None)
                    .await?;
            }
            self.store_tokens(&session).await
        }
        .await;
        session.close().await;
        tokens?;
        // The other managers still hold the old Raft state: they leave, and rejoin at apply.
        for m in managers
            .iter()
            .filter(|m| m.host.address != survivor.host.address)
        {
            if let Ok(s) = self.session(m).await {
                let _ = s.run("docker swarm leave", docker::leave(), None).await;
                s.close().await;
            }
        }
        Ok((survivor.host.address.clone(), silent))
    }
}
