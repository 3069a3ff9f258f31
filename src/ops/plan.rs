//! `infra plan`: a fresh plan printed as text, JSON or markdown, and saved with `--out`.

use std::path::PathBuf;
use std::time::Duration;

use super::load::load_for_plan;
use super::prepare::prepare;
use super::{Context, OpsError, Request, Result};
use crate::plan::{self, Plan};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlanFormat {
    Text,
    Json,
    Markdown,
}

pub struct PlanOptions {
    pub out: Option<PathBuf>,
    pub format: PlanFormat,
    pub request: Request,
    pub lock_timeout: Duration,
}

/// Shows what apply would change; returns whether anything would.
pub async fn plan(ctx: &Context, opts: PlanOptions) -> Result<bool> {
    let input = load_for_plan(ctx, opts.request.destroy).await?;
    let stack = &input.stack;
    let backend = super::backend(ctx, &stack.state, stack.region.as_deref()).await?;
    let lock = backend.lock("plan", opts.lock_timeout).await?;
    let result = prepare(ctx, &input, &backend, &opts.request).await;
    lock.release().await;
    let plan = result?.plan;
    match opts.format {
        PlanFormat::Text => print!("{}", plan::text::render(&plan, ctx.color)),
        PlanFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&plan::json::render(&plan)).expect("serializes")
        ),
        PlanFormat::Markdown => print!("{}", plan::markdown::render(&plan)),
    }
    if let Some(out) = &opts.out {
        save_plan(&plan, out)?;
        if opts.format == PlanFormat::Text {
            println!(
                "\nSaved the plan to {}. Apply exactly it with: infra apply {}",
                out.display(),
                out.display()
            );
        }
    }
    Ok(plan.has_changes())
}

/// Writes the plan atomically, so a killed run never leaves half a plan file behind.
fn save_plan(plan: &Plan, out: &std::path::Path) -> Result<()> {
    let io = |source| OpsError::Io {
        what: "cannot write plan file",
        path: out.display().to_string(),
        source,
    };
    let tmp = out.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec(plan).expect("serializes")).map_err(io)?;
    std::fs::rename(&tmp, out).map_err(io)
}
