//! What every operation is given, and where its state lives.

use std::sync::Arc;

use tokio::sync::OnceCell;

use super::{Result, Workspace, load};
use crate::cloud::{CallLog, Cloud};
use crate::model::resources::Account;
use crate::model::{StateLocation, Vars};
use crate::state::{Backend, LocalBackend, S3Backend};

/// What every operation needs: where the stack is, its variables, how to print.
#[derive(Clone, Debug)]
pub struct Context {
    pub workspace: Workspace,
    pub vars: Vars,
    pub color: bool,
    pub calls: CallLog,
    /// The account the credentials act in, asked of STS once per command (see [`account`]).
    pub account: Arc<OnceCell<Account>>,
}

impl Context {
    pub fn new(workspace: Workspace, vars: Vars, color: bool) -> Context {
        Context {
            workspace,
            vars,
            color,
            calls: CallLog::default(),
            account: Arc::default(),
        }
    }
}

/// The account and region `cloud` acts in: one STS GetCallerIdentity per command, however
/// many steps (`{{ registry }}`, user-data, the pull-rights check) ask.
pub async fn account(ctx: &Context, cloud: &Cloud) -> Result<Account> {
    Ok(ctx
        .account
        .get_or_try_init(|| cloud.account())
        .await?
        .clone())
}

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
    let source = load::read_stack_file(ctx)?;
    let location = crate::config::state_location(&ctx.workspace.shown_stack_file(), &source)?;
    backend(ctx, &location, region).await
}
