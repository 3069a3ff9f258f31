//! Operations the commands call: each one orchestrates config, cloud, plan, apply and state.

mod apply;
mod output;
mod plan;
mod validate;
mod workspace;

use miette::Diagnostic;
use thiserror::Error;

pub use apply::{ApplyOptions, apply, destroy, force_unlock};
pub use output::{OutputOptions, output};
pub use plan::{PlanFormat, PlanOptions, plan};
pub use validate::validate;
pub use workspace::Workspace;

use crate::cloud::CallLog;
use crate::model::Vars;

/// What every operation needs: where the stack is, its variables, how to print.
#[derive(Clone, Debug)]
pub struct Context {
    pub workspace: Workspace,
    pub vars: Vars,
    pub color: bool,
    pub calls: CallLog,
}

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
    #[error("{0}")]
    Usage(String),
    #[error("saved plan {path} is stale: {why}\n  Make a new plan with `infra plan --out {path}` and review it.")]
    StalePlan { path: String, why: String },
    #[error("{what} {path}: {source}")]
    Io { what: &'static str, path: String, source: std::io::Error },
    #[error("rendering {what}: {source}")]
    Template { what: &'static str, source: tera::Error },
}

pub type Result<T> = std::result::Result<T, OpsError>;
