use std::process::ExitCode;

use clap::Args;

use crate::ops::{self, Context, MigrateOptions, OpsError, OutputOptions, StatusOptions};

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SshArgs {
    /// The node: `worker[1]`, `node.manager[0]` or an instance id.
    pub node: String,
    /// A command to run instead of a shell (after `--`).
    #[arg(last = true)]
    pub command: Vec<String>,
}

pub async fn status(ctx: &Context, a: StatusArgs) -> Result<ExitCode, OpsError> {
    ops::status(ctx, StatusOptions { json: a.json })
        .await
        .map(|_| ExitCode::SUCCESS)
}

pub async fn ssh(ctx: &Context, a: SshArgs) -> Result<ExitCode, OpsError> {
    ops::ssh(ctx, &a.node, &a.command)
        .await
        .map(|_| ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// The lock ID, as printed by the run that found the state locked.
    pub id: String,
}

#[derive(Debug, clap::Subcommand)]
pub enum StateCommand {
    /// Move the state to where the stack file's [state] table now says, from where it was.
    Migrate(MigrateArgs),
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Where the state is now: `local` (state/<stack>.json) or s3://BUCKET/KEY.
    #[arg(long, value_name = "LOCATION")]
    pub from: String,
    /// Wait this long for locks held by other runs.
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = humantime::parse_duration)]
    pub lock_timeout: std::time::Duration,
}

pub async fn output(ctx: &Context, a: OutputArgs) -> Result<ExitCode, OpsError> {
    ops::output(ctx, OutputOptions { json: a.json })
        .await
        .map(|_| ExitCode::SUCCESS)
}

pub async fn unlock(ctx: &Context, a: UnlockArgs) -> Result<ExitCode, OpsError> {
    ops::force_unlock(ctx, &a.id)
        .await
        .map(|_| ExitCode::SUCCESS)
}

pub async fn state(ctx: &Context, command: StateCommand) -> Result<ExitCode, OpsError> {
    match command {
        StateCommand::Migrate(a) => ops::migrate(
            ctx,
            MigrateOptions {
                from: a.from,
                lock_timeout: a.lock_timeout,
            },
        )
        .await
        .map(|_| ExitCode::SUCCESS),
    }
}
