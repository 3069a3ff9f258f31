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
}

#[derive(Debug, Args)]
pub struct DestroyArgs {
    /// Do not ask for confirmation.
    #[arg(long)]
    pub auto_approve: bool,
    /// How many changes may run at once.
    #[arg(long, default_value_t = 10)]
    pub parallelism: usize,
}

pub async fn run(ctx: &Context, a: ApplyArgs) -> Result<ExitCode, OpsError> {
    let opts = ApplyOptions { plan_file: a.plan_file, auto_approve: a.auto_approve, parallelism: a.parallelism, destroy: false };
    ops::apply(ctx, opts).await.map(|_| ExitCode::SUCCESS)
}

pub async fn run_destroy(ctx: &Context, a: DestroyArgs) -> Result<ExitCode, OpsError> {
    let opts = ApplyOptions { plan_file: None, auto_approve: a.auto_approve, parallelism: a.parallelism, destroy: true };
    ops::destroy(ctx, opts).await.map(|_| ExitCode::SUCCESS)
}
