//! The nodes, over SSH: sessions through the system ssh (openssh crate, multiplexed) with host
//! keys pinned per stack. Knows nothing of plans.

pub mod ssh;

pub use ssh::{NodeHost, Ssh, SshError};
