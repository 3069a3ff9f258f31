use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::ops::{self, ApplyOptions, Context, OpsError};

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A plan saved with `infra plan --out FILE`; applied exactly as shown, refused if stale.
    pub plan_file: Option<PathBuf>,
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
pub struct DestroyArgs {
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

pub async fn run(ctx: &Context, a: ApplyArgs) -> Result<ExitCode, OpsError> {
    let opts = ApplyOptions {
        plan_file: a.plan_file,
        auto_approve: a.auto_approve,
        parallelism: a.parallelism,
        destroy: false,
        lock_timeout: a.lock_timeout,
    };
    ops::apply(ctx, opts).await.map(|_| ExitCode::SUCCESS)
}

pub async fn run_destroy(ctx: &Context, a: DestroyArgs) -> Result<ExitCode, OpsError> {
    let opts = ApplyOptions {
        plan_file: None,
        auto_approve: a.auto_approve,
        parallelism: a.parallelism,
        destroy: true,
        lock_timeout: a.lock_timeout,
    };
    ops::destroy(ctx, opts).await.map(|_| ExitCode::SUCCESS)
}
