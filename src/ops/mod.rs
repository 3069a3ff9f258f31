//! Operations the commands call: each one orchestrates config, cloud, plan, apply and state.

mod apply;
mod checks;
mod init;
mod migrate;
mod output;
mod plan;
mod recover;
mod replace;
mod scale;
mod shell;
mod status;
mod validate;
mod workspace;

use miette::Diagnostic;
use thiserror::Error;

pub use apply::{ApplyOptions, apply, destroy, force_unlock, roll_nodes, saved_plan_stack};
pub use init::init;
pub use migrate::{MigrateOptions, migrate};
pub use output::{OutputOptions, output};
pub use plan::{PlanFormat, PlanOptions, Request, Roll, plan};
pub use recover::{RecoverOptions, recover_swarm};
pub use scale::{ScaleOptions, scale_nodes};
pub use shell::ssh;
pub use status::{StatusOptions, status};
pub use validate::{schema, validate};
pub use workspace::Workspace;

use crate::cloud::CallLog;
use crate::model::{StateLocation, Vars};
use crate::state::{Backend, LocalBackend, S3Backend};

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

/// The state backend for a location; `region` is the stack's, used when the bucket names none.
pub async fn backend(
    ctx: &Context,
    location: &StateLocation,
    region: Option<&str>,
) -> Result<Backend> {
    let stack = &ctx.workspace.stack_name;
    Ok(match location {
        StateLocation::Local => Backend::Local(LocalBackend::new(ctx.workspace.state_dir(), stack)),
        StateLocation::S3 {
            bucket,
            key,
            region: bucket_region,
        } => {
            let client =
                crate::cloud::s3_client(bucket_region.as_deref().or(region), ctx.calls.clone())
                    .await?;
            Backend::S3(S3Backend::new(client, bucket, key, stack))
        }
    })
}

/// The backend named by the stack file's `[state]` table, without checking the rest of the file.
pub async fn configured_backend(ctx: &Context, region: Option<&str>) -> Result<Backend> {
    let source = validate::read_stack_file(ctx)?;
    let location = crate::config::state_location(&ctx.workspace.shown_stack_file(), &source)?;
    backend(ctx, &location, region).await
}
