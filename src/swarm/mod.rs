//! The nodes, over SSH: sessions through the system ssh (openssh crate, multiplexed) with host
//! keys pinned per stack. Knows nothing of plans, nor of AWS: what it keeps outside the nodes
//! goes through [`Outside`].
//!
//! - [`docker`]: the commands run on the nodes (pure builders and parsers);
//! - [`ssh`]: sessions, host keys, the ssh config of a stack;
//! - `node`: which node is reached how; `session`: waiting for a booting node, finding a manager;
//! - `read` and `observe`: the Swarm read through one manager, then in the model's terms;
//! - `members`, `tokens`, `recover`: joining, updating, removing; join tokens; a lost quorum;
//! - `apps`: secrets, networks, configs and services deployed and watched;
//! - `tasks`: the day-2 reads (a service's logs and tasks, the services with their tasks, a
//!   node's facts for the doctor);
//! - `error`: what can go wrong, with what to do next.

mod apps;
pub mod docker;
mod error;
mod members;
mod node;
mod observe;
mod read;
mod recover;
mod session;
pub mod ssh;
mod tasks;
mod tokens;

use std::path::PathBuf;

pub use error::SwarmError;
pub use node::{Deregistration, Node, managers, nodes};
pub use ssh::{NodeHost, Ssh, SshError};
pub use tasks::{LogEvent, TaskOnNode, addresses_by_hostname};

use crate::model::SshSettings;

/// The label holding a config's content hash.
pub const LABEL_CONTENT: &str = "infra.content-sha256";

/// What the Swarm steps need outside the nodes, so that this module knows nothing of AWS: a
/// safe place for the join tokens (ops keeps them in Parameter Store as SecureString), and the
/// load balancer a leaving node is taken out of. A failure is [`SwarmError::Outside`], its own
/// message naming the call.
#[async_trait::async_trait]
pub trait Outside: Send + Sync {
    /// The join token kept for `role` (`worker` or `manager`), if there is one.
    async fn join_token(&self, role: &str) -> Result<Option<String>, SwarmError>;
    /// Keeps `token` for `role`, replacing the one kept.
    async fn store_join_token(&self, role: &str, token: &str) -> Result<(), SwarmError>;
    /// Takes a leaving node out of its target group, waiting out the deregistration delay.
    async fn deregister(&self, target: &Deregistration) -> Result<(), SwarmError>;
}

/// The Swarm of one stack, reached through its managers.
pub struct Swarm<'a> {
    /// Join tokens and load balancer targets, kept outside the Swarm.
    pub outside: &'a dyn Outside,
    pub stack: String,
    pub settings: SshSettings,
    /// Where the ssh config and known_hosts of the stack live (state/).
    pub dir: PathBuf,
    /// Host keys pinned in the state.
    pub pinned: Vec<String>,
}
