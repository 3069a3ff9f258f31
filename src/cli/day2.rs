//! The day-2 commands: `logs`, `details`, `exec`, `doctor`.

use std::process::ExitCode;

use clap::Args;

use crate::ops::{
    self, Context, DetailsOptions, DoctorOptions, ExecOptions, LogsOptions, OpsError,
};
use crate::swarm::docker::LogOptions;

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The service: `web` (as the stack names it), or Docker's `<stack>_web`.
    pub service: String,
    /// Keep printing new lines until interrupted (Ctrl-C).
    #[arg(short, long)]
    pub follow: bool,
    /// Only lines since then: a duration before now (`10m`, `1h30m`), RFC 3339 or a Unix time.
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// Only the last N lines of each task.
    #[arg(long, value_name = "N")]
    pub tail: Option<u64>,
    /// Only this task's lines (its id, as `infra details` shows it).
    #[arg(long, value_name = "ID")]
    pub task: Option<String>,
}

#[derive(Debug, Args)]
pub struct DetailsArgs {
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The service: `web` (as the stack names it), or Docker's `<stack>_web`.
    pub service: String,
    /// Keep stdin open and give the command a terminal (a shell: `infra exec -i web -- sh`).
    #[arg(short, long)]
    pub interactive: bool,
    /// Run in this task (its id or the start of it) instead of the first running one.
    #[arg(long, value_name = "ID")]
    pub task: Option<String>,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn logs(ctx: &Context, a: LogsArgs) -> Result<ExitCode, OpsError> {
    let options = LogsOptions {
        service: a.service,
        task: a.task,
        docker: LogOptions {
            follow: a.follow,
            since: a.since,
            tail: a.tail,
        },
    };
    ops::logs(ctx, options).await.map(|_| ExitCode::SUCCESS)
}

pub async fn details(ctx: &Context, a: DetailsArgs) -> Result<ExitCode, OpsError> {
    ops::details(ctx, DetailsOptions { json: a.json })
        .await
        .map(|_| ExitCode::SUCCESS)
}

pub async fn exec(ctx: &Context, a: ExecArgs) -> Result<ExitCode, OpsError> {
    let options = ExecOptions {
        service: a.service,
        task: a.task,
        interactive: a.interactive,
        command: a.command,
    };
    ops::exec(ctx, options).await.map(|_| ExitCode::SUCCESS)
}

pub async fn doctor(ctx: &Context, a: DoctorArgs) -> Result<ExitCode, OpsError> {
    let healthy = ops::doctor(ctx, DoctorOptions { json: a.json }).await?;
    Ok(if healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
