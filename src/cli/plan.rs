use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::ops::{self, Context, OpsError, PlanFormat, PlanOptions};

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Save the plan to FILE, for `infra apply FILE`.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Print the plan as JSON (schema: docs/plan-json.md).
    #[arg(long)]
    pub json: bool,
    /// Exit 0 when nothing would change, 2 when something would, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Plan the removal of everything the stack owns.
    #[arg(long)]
    pub destroy: bool,
}

pub async fn run(ctx: &Context, args: PlanArgs) -> Result<ExitCode, OpsError> {
    let format = if args.json { PlanFormat::Json } else { PlanFormat::Text };
    let changed = ops::plan(ctx, PlanOptions { out: args.out, format, destroy: args.destroy }).await?;
    Ok(if changed && args.detailed_exitcode { ExitCode::from(2) } else { ExitCode::SUCCESS })
}
