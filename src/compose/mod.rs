//! Compose files as `docker stack deploy` reads them, with infra's additions. Pure, apart from
//! the reader it is handed.
//!
//! - [`yaml`]: YAML 1.1 as docker/cli reads it, values interpolated on the user's side;
//! - [`project`]: the file as a stack: services, the networks and configs infra creates for
//!   them, the secrets read on the user's side, what must already exist on the Swarm, warnings;
//! - [`service`]: one service, and the document `docker stack deploy` gets for it alone;
//! - [`desired`]: the project as the plan's inputs (services, configs).

pub mod desired;
pub mod env_file;
pub mod project;
pub mod service;
pub mod yaml;

#[cfg(test)]
mod tests;

pub use desired::Names;
pub use project::{ConfigDef, External, Input, Kind, NetworkDef, Project, SecretDef};
pub use service::{LABEL_DEFINITION, ServiceDoc, port_text};

/// What is wrong with a compose file: `file: message`, the message naming a line and column or
/// the dotted path of the value (`services.web.networks`).
#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct ComposeError {
    pub file: String,
    pub message: String,
}

impl ComposeError {
    pub fn new(file: &str, message: impl Into<String>) -> Self {
        ComposeError {
            file: file.to_string(),
            message: message.into(),
        }
    }
}
