use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::watch;

use super::load::{load_for_plan, read_stack_file};
use super::nodes::{CloudOutside, swarm_ops, token_parameters};
use super::prepare::prepare;
use super::{Context, OpsError, Result};
use super::{Request, Roll};
use crate::apply::{self, Journal, Options};
use crate::cloud::Cloud;
use crate::model::resources::sha256_hex;
use crate::plan::{self, PLAN_FORMAT_VERSION, Plan};
use crate::state::{Backend, LockInfo, State};

pub struct ApplyOptions {
    /// A plan saved by `infra plan --out`: applied exactly, or refused if stale.
    pub plan_file: Option<PathBuf>,
    pub auto_approve: bool,
    pub parallelism: usize,
    /// What a fresh plan is asked for.
    pub request: Request,
    pub lock_timeout: Duration,
}

pub async fn destroy(ctx: &Context, mut opts: ApplyOptions) -> Result<()> {
    opts.request.destroy = true;
    apply(ctx, opts).await
}

/// Rolls nodes onto their pool's current AMI: a plan and apply that replaces them, one at a time.
pub async fn roll_nodes(ctx: &Context, mut opts: ApplyOptions, roll: Roll) -> Result<()> {
    opts.request.roll = Some(roll);
    apply(ctx, opts).await
}

pub async fn apply(ctx: &Context, opts: ApplyOptions) -> Result<()> {
    let destroy = opts.request.destroy;
    let operation = if destroy { "destroy" } else { "apply" };
    match &opts.plan_file {
        Some(path) => {
            // The plan is the contract: the stack file is only hashed, and asked where the state is.
            let plan = read_saved_plan(ctx, path)?;
            let backend = super::configured_backend(ctx, plan.region.as_deref()).await?;
            let lock = backend.lock(operation, opts.lock_timeout).await?;
            let result = async {
                let state = backend.load().await?;
                check_fresh(&plan, state.as_ref(), path)?;
                let cloud =
                    Cloud::connect(&plan.stack, plan.region.as_deref(), ctx.calls.clone()).await?;
                execute(ctx, &plan, &cloud, &backend, state, opts.parallelism).await
            }
            .await;
            lock.release().await;
            result
        }
        None => {
            let input = load_for_plan(ctx, destroy).await?;
            let stack = &input.stack;
            let backend = super::backend(ctx, &stack.state, stack.region.as_deref()).await?;
            let lock = backend.lock(operation, opts.lock_timeout).await?;
            let result = async {
                let prepared = prepare(ctx, &input, &backend, &opts.request).await?;
                print!("{}", plan::text::render(&prepared.plan, ctx.color));
                if prepared.plan.has_changes() && !opts.auto_approve && !confirm(destroy).await? {
                    println!("\nApply cancelled.");
                    return Ok(());
                }
                execute(
                    ctx,
                    &prepared.plan,
                    &prepared.cloud,
                    &backend,
                    prepared.state,
                    opts.parallelism,
                )
                .await
            }
            .await;
            lock.release().await;
            result
        }
    }
}

async fn execute(
    ctx: &Context,
    plan: &Plan,
    cloud: &Cloud,
    backend: &Backend,
    state: Option<State>,
    parallelism: usize,
) -> Result<()> {
    let state = state.unwrap_or_else(|| State::new(&plan.stack));
    let mut journal = Journal { backend, state };
    let (cancel_tx, cancel) = watch::channel(false);
    let on_interrupt = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            let _ = cancel_tx.send(true);
        }
    });
    if plan.has_changes() {
        warn_if_unversioned(backend).await;
        println!();
    }
    let outside = CloudOutside::new(cloud, &plan.stack);
    let swarm = plan
        .ssh
        .as_ref()
        .map(|ssh| swarm_ops(ctx, &outside, ssh, &journal.state.host_keys));
    let options = Options {
        parallelism,
        cancel,
        swarm: swarm.as_ref(),
    };
    let result = apply::apply(plan, cloud, &mut journal, options).await;
    on_interrupt.abort();
    // Host keys met in this run are pinned in the state, whatever else happened.
    if let Some(swarm) = &swarm {
        let keys = swarm.host_keys();
        if keys != journal.state.host_keys {
            journal.state.host_keys = keys;
            backend.save(&mut journal.state).await?;
        }
    }
    result?;
    if plan.destroy {
        // The join tokens and the secrets' hashing key go with the stack.
        let mut parameters = token_parameters(&plan.stack);
        parameters.push(cloud.key_parameter());
        cloud.delete_secrets(&parameters).await?;
    }
    if plan.has_changes() {
        println!("\n{}", apply::closing_line(plan));
    }
    Ok(())
}

/// Every state version is worth keeping; without S3 versioning only the previous one is.
async fn warn_if_unversioned(backend: &Backend) {
    if let Backend::S3(s3) = backend
        && !s3.versioning_enabled().await
    {
        eprintln!(
            "warning: bucket {} has versioning off, so only the previous state version is kept ({}.backup). \
             Turn versioning on to keep them all: aws s3api put-bucket-versioning --bucket {} --versioning-configuration Status=Enabled",
            s3.bucket,
            backend.describe(),
            s3.bucket
        );
    }
}

/// The stack a saved plan is for: what `infra apply plan.json` works on without `--stack`.
pub fn saved_plan_stack(path: &Path) -> Result<String> {
    #[derive(serde::Deserialize)]
    struct Head {
        stack: String,
    }
    let bytes = std::fs::read(path).map_err(|source| OpsError::Io {
        what: "cannot read plan file",
        path: path.display().to_string(),
        source,
    })?;
    serde_json::from_slice::<Head>(&bytes)
        .map(|h| h.stack)
        .map_err(|e| {
            OpsError::Usage(format!(
                "{} is not a plan saved by `infra plan --out`: {e}",
                path.display()
            ))
        })
}

fn read_saved_plan(ctx: &Context, path: &Path) -> Result<Plan> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| OpsError::Io {
        what: "cannot read plan file",
        path: shown.clone(),
        source,
    })?;
    let plan: Plan = serde_json::from_slice(&bytes).map_err(|e| {
        OpsError::Usage(format!(
            "{shown} is not a plan saved by `infra plan --out`: {e}"
        ))
    })?;
    if plan.format_version != PLAN_FORMAT_VERSION {
        return Err(OpsError::StalePlan {
            path: shown,
            why: format!("it has format version {}", plan.format_version),
        });
    }
    if plan.stack != ctx.workspace.stack_name {
        let why = format!(
            "it is for stack {}, not {}",
            plan.stack, ctx.workspace.stack_name
        );
        return Err(OpsError::StalePlan { path: shown, why });
    }
    if sha256_hex(&read_stack_file(ctx)?) != plan.stack_sha256 {
        let why = format!(
            "{} changed since the plan was made",
            ctx.workspace.shown_stack_file()
        );
        return Err(OpsError::StalePlan { path: shown, why });
    }
    Ok(plan)
}

/// A saved plan applies only to the state it was made against.
fn check_fresh(plan: &Plan, state: Option<&State>, path: &Path) -> Result<()> {
    let now = (state.map(|s| s.lineage), state.map_or(0, |s| s.serial));
    let then = (plan.lineage, plan.serial);
    if now == then {
        return Ok(());
    }
    let why = match (then.0, now.0) {
        (a, b) if a != b => "the state was replaced since (another lineage)".to_string(),
        _ => format!(
            "the state moved from serial {} to {} since the plan was made",
            then.1, now.1
        ),
    };
    Err(OpsError::StalePlan {
        path: path.display().to_string(),
        why,
    })
}

/// Asks on the terminal; Ctrl-C there is a no, so that the caller still releases the lock.
pub(super) async fn confirm(destroy: bool) -> Result<bool> {
    confirm_to(if destroy {
        "destroy every object of this stack"
    } else {
        "perform these actions"
    })
    .await
}

/// Asks whether to `what` (e.g. "perform these actions"); only `yes` is a yes.
pub(super) async fn confirm_to(what: &str) -> Result<bool> {
    if !std::io::stdin().is_terminal() {
        return Err(OpsError::Usage(
            "no terminal to confirm on: pass --auto-approve, or save a plan with `infra plan --out FILE` and apply it"
                .into(),
        ));
    }
    // Listening for Ctrl-C before asking: a quick one must not kill the process (and its lock).
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|source| OpsError::Io {
        what: "cannot listen for",
        path: "Ctrl-C".into(),
        source,
    })?;
    print!("\nDo you want to {what}? Only 'yes' will be accepted: ");
    std::io::stdout().flush().ok();
    let answer = tokio::task::spawn_blocking(|| {
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer).ok();
        answer
    });
    tokio::select! {
        answer = answer => Ok(answer.is_ok_and(|a| a.trim() == "yes")),
        _ = interrupt.recv() => {
            println!();
            Ok(false)
        }
    }
}

pub async fn force_unlock(ctx: &Context, id: &str) -> Result<LockInfo> {
    let backend = super::configured_backend(ctx, None).await?;
    let info = backend.force_unlock(id).await?;
    println!(
        "Released the lock {} on {} held by {}@{} (pid {}) for {}.",
        info.id,
        backend.describe(),
        info.user,
        info.host,
        info.pid,
        info.operation
    );
    Ok(info)
}
