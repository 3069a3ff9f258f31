//! What every operation is given, and where its state lives.

use super::{Result, Workspace, load};
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
