use std::process::ExitCode;

use clap::Args;

use crate::ops::{self, Context, OpsError, OutputOptions};

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

pub fn output(ctx: &Context, a: OutputArgs) -> Result<ExitCode, OpsError> {
    ops::output(ctx, OutputOptions { json: a.json }).map(|_| ExitCode::SUCCESS)
}

pub fn unlock(ctx: &Context, a: UnlockArgs) -> Result<ExitCode, OpsError> {
    ops::force_unlock(ctx, &a.id).map(|_| ExitCode::SUCCESS)
}
