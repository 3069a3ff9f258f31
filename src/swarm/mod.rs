//! The nodes, over SSH: sessions through the system ssh (openssh crate, multiplexed) with host
//! keys pinned per stack. Knows nothing of plans.

mod apps;
pub mod docker;
mod members;
pub mod ssh;

pub use members::{Deregistration, Node, Swarm, SwarmError, nodes, token_parameters};
pub use ssh::{NodeHost, Ssh, SshError};
