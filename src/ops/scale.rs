//! `infra scale-nodes`: the counts are edited in the stack file (git stays the truth), then the
//! usual plan and apply make it so: scale-out joins and registers new nodes; scale-in drains,
//! deregisters, removes and terminates the newest (highest-index) nodes, guarded for quorum.

use super::apply::{ApplyOptions, apply};
use super::load::{load, read_stack_file};
use super::{Context, OpsError, Result};
use crate::config::edit;

pub struct ScaleOptions {
    pub workers: Option<usize>,
    pub managers: Option<usize>,
    pub no_apply: bool,
    pub allow_even_managers: bool,
    pub apply: ApplyOptions,
}

pub async fn scale_nodes(ctx: &Context, opts: ScaleOptions) -> Result<()> {
    if opts.workers.is_none() && opts.managers.is_none() {
        return Err(OpsError::Usage(
            "say how many: `infra scale-nodes N` (workers) and/or `--managers M`".into(),
        ));
    }
    if let Some(m) = opts.managers
        && m % 2 == 0
        && !opts.allow_even_managers
    {
        return Err(OpsError::Usage(format!(
            "refusing {m} managers: an even count tolerates no more failures than {} (Raft needs a majority). \
             Use {} or {}, or pass --allow-even-managers.",
            m - 1,
            m - 1,
            m + 1
        )));
    }
    let path = ctx.workspace.stack_file.clone();
    let shown = ctx.workspace.shown_stack_file();
    let before = read_stack_file(ctx)?;
    let after = edit::set_counts(&before, opts.workers, opts.managers)
        .map_err(|e| OpsError::Usage(format!("{shown}: cannot edit the node counts: {e}")))?;
    let (w0, m0) = edit::counts(&before);
    let describe = |what: &str, old: Option<i64>, new: Option<usize>| {
        new.map(|n| {
            format!(
                "{what} {} -> {n}",
                old.map_or("0".into(), |o| o.to_string())
            )
        })
    };
    let summary: Vec<String> = [
        describe("workers", w0, opts.workers),
        describe("managers", m0, opts.managers),
    ]
    .into_iter()
    .flatten()
    .collect();
    if after != before {
        write(&path, &after)?;
        // A count the stack cannot take is refused here, and the file put back as it was.
        if let Err(e) = load(ctx).await {
            write(&path, &before)?;
            return Err(e);
        }
    }
    println!(
        "{shown}: {} (comments and layout kept).",
        summary.join(", ")
    );
    if opts.no_apply {
        println!("Not applied (--no-apply): commit the change; `infra plan` shows what it does.");
        return Ok(());
    }
    println!();
    apply(ctx, opts.apply).await
}

fn write(path: &std::path::Path, text: &str) -> Result<()> {
    let io = |source| OpsError::Io {
        what: "cannot write stack file",
        path: path.display().to_string(),
        source,
    };
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, text).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}
