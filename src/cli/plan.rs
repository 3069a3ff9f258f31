use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::ops::{self, Context, OpsError, PlanFormat, PlanOptions};

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    Markdown,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Save the plan to FILE, for `infra apply FILE`.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Print the plan as JSON (schema: docs/plan-json.md); same as --format json.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
    /// text for people, json for machines, markdown for a pull-request comment.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Exit 0 when nothing would change, 2 when something would, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Plan the removal of everything the stack owns.
    #[arg(long)]
    pub destroy: bool,
    #[command(flatten)]
    pub change: super::apply::ChangeArgs,
    /// Wait this long for a lock held by another run (e.g. 2m) instead of failing at once.
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = humantime::parse_duration)]
    pub lock_timeout: std::time::Duration,
}

pub async fn run(ctx: &Context, args: PlanArgs) -> Result<ExitCode, OpsError> {
    let format = match (args.json, args.format) {
        (true, _) | (_, Format::Json) => PlanFormat::Json,
        (_, Format::Markdown) => PlanFormat::Markdown,
        (_, Format::Text) => PlanFormat::Text,
    };
    let opts = PlanOptions {
        out: args.out,
        format,
        request: args.change.request(args.destroy),
        lock_timeout: args.lock_timeout,
    };
    let changed = ops::plan(ctx, opts).await?;
    Ok(if changed && args.detailed_exitcode {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}
