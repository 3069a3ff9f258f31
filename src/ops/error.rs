//! The one error type of the operations: each module's errors, plus what only an operation can
//! tell (a usage mistake, a stale saved plan, a file it could not read or write).

use miette::Diagnostic;
use thiserror::Error;

#[derive(Debug, Error, Diagnostic)]
pub enum OpsError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Config(#[from] crate::config::ConfigErrors),
    #[error(transparent)]
    Cloud(#[from] crate::cloud::CloudError),
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    #[error(transparent)]
    Apply(#[from] crate::apply::ApplyError),
    #[error(transparent)]
    Cycle(#[from] crate::plan::graph::CycleError),
    /// Boxed: the Swarm's errors carry a node's log tail and would make every `Result` large.
    #[error(transparent)]
    Swarm(Box<crate::swarm::SwarmError>),
    #[error(transparent)]
    Quorum(#[from] crate::plan::quorum::QuorumError),
    #[error(transparent)]
    Compose(#[from] crate::compose::ComposeError),
    #[error("{0}")]
    Usage(String),
    #[error(
        "saved plan {path} is stale: {why}\n  Make a new plan with `infra plan --out {path}` and review it."
    )]
    StalePlan { path: String, why: String },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("rendering {what}: {source}")]
    Template {
        what: &'static str,
        source: tera::Error,
    },
}

impl From<crate::swarm::SwarmError> for OpsError {
    fn from(e: crate::swarm::SwarmError) -> Self {
        OpsError::Swarm(Box::new(e))
    }
}

pub type Result<T> = std::result::Result<T, OpsError>;
