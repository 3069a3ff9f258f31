//! Join tokens: asked of a manager once, kept outside the Swarm ([`super::Outside`]: Parameter
//! Store, SecureString), and handed to a joining node only on its stdin.

use super::error::SwarmError;
use super::ssh::NodeSession;
use super::{Swarm, docker};

impl Swarm<'_> {
    /// Asks a manager for both join tokens and keeps them outside the Swarm.
    pub(super) async fn store_tokens(&self, manager: &NodeSession) -> Result<(), SwarmError> {
        for role in ["worker", "manager"] {
            let token = manager
                .run("docker swarm join-token", &docker::join_token(role), None)
                .await?;
            self.outside.store_join_token(role, token.trim()).await?;
        }
        Ok(())
    }

    /// The join token for `role`: the one kept outside, or asked of a manager and kept.
    pub(super) async fn token(
        &self,
        role: &str,
        manager: &NodeSession,
    ) -> Result<String, SwarmError> {
        if let Some(t) = self.outside.join_token(role).await? {
            return Ok(t);
        }
        let token = manager
            .run("docker swarm join-token", &docker::join_token(role), None)
            .await?
            .trim()
            .to_string();
        self.outside.store_join_token(role, &token).await?;
        Ok(token)
    }
}
