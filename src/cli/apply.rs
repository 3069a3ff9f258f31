use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::ops::{self, ApplyOptions, Context, OpsError};

/// Options of every command that changes the stack.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Do not ask for confirmation.
    #[arg(long)]
    pub auto_approve: bool,
    /// How many changes may run at once.
    #[arg(long, default_value_t = 10)]
    pub parallelism: usize,
    /// Wait this long for a lock held by another run (e.g. 2m) instead of failing at once.
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = humantime::parse_duration)]
    pub lock_timeout: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A plan saved with `infra plan --out FILE`; applied exactly as shown, refused if stale.
    pub plan_file: Option<PathBuf>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Args)]
pub struct DestroyArgs {
    #[command(flatten)]
    pub run: RunArgs,
}

fn options(plan_file: Option<PathBuf>, run: RunArgs, destroy: bool) -> ApplyOptions {
    ApplyOptions {
        plan_file,
        auto_approve: run.auto_approve,
        parallelism: run.parallelism,
        destroy,
        lock_timeout: run.lock_timeout,
    }
}

pub async fn run(ctx: &Context, a: ApplyArgs) -> Result<ExitCode, OpsError> {
    ops::apply(ctx, options(a.plan_file, a.run, false))
        .await
        .map(|_| ExitCode::SUCCESS)
}

pub async fn run_destroy(ctx: &Context, a: DestroyArgs) -> Result<ExitCode, OpsError> {
    ops::destroy(ctx, options(None, a.run, true))
        .await
        .map(|_| ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct ScaleArgs {
    /// The number of workers.
    #[arg(value_parser = clap::value_parser!(u16).range(0..=1000))]
    pub workers: Option<u16>,
    /// The number of managers (odd: 1, 3, 5…).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=99))]
    pub managers: Option<u16>,
    /// Only edit the stack file (for a pull request); do not plan or apply.
    #[arg(long)]
    pub no_apply: bool,
    /// Allow an even number of managers (it tolerates no more failures than one fewer).
    #[arg(long)]
    pub allow_even_managers: bool,
    #[command(flatten)]
    pub run: RunArgs,
}

pub async fn run_scale(ctx: &Context, a: ScaleArgs) -> Result<ExitCode, OpsError> {
    let opts = ops::ScaleOptions {
        workers: a.workers.map(usize::from),
        managers: a.managers.map(usize::from),
        no_apply: a.no_apply,
        allow_even_managers: a.allow_even_managers,
        apply: options(None, a.run, false),
    };
    ops::scale_nodes(ctx, opts).await.map(|_| ExitCode::SUCCESS)
}
