use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::model::Address;
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

/// What a plan is asked for beyond the stack file (plan and apply).
#[derive(Debug, Args)]
pub struct ChangeArgs {
    /// Replace this object though nothing about it changed (repeatable), e.g.
    /// `--replace node.worker[1]`; nodes roll, the new one first.
    #[arg(long, value_name = "ADDRESS")]
    pub replace: Vec<String>,
    /// How many workers a rolling replacement replaces at once (managers: always one).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=100))]
    pub max_unavailable: u16,
    /// Only the stack's ECR repositories ([registry]): make them before the first push of the
    /// images the services use, then apply the rest.
    #[arg(long)]
    pub registry_only: bool,
}

impl ChangeArgs {
    pub fn request(&self, destroy: bool) -> ops::Request {
        ops::Request {
            destroy,
            replace: self
                .replace
                .iter()
                .map(|a| Address::new(a.as_str()))
                .collect(),
            max_unavailable: self.max_unavailable.into(),
            registry_only: self.registry_only,
            ..Default::default()
        }
    }
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A plan saved with `infra plan --out FILE`; applied exactly as shown, refused if stale.
    pub plan_file: Option<PathBuf>,
    #[command(flatten)]
    pub change: ChangeArgs,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Args)]
pub struct DestroyArgs {
    /// Leave the Swarm alone and remove the cloud objects: for a Swarm whose nodes are gone or
    /// no longer answer (a destroy without it stops when no manager answers).
    #[arg(long)]
    pub skip_swarm: bool,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Args)]
pub struct RollArgs {
    /// Replace every node, not only those whose AMI is not their pool's current one.
    #[arg(long)]
    pub all: bool,
    /// How many workers are replaced at once (managers: always one).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=100))]
    pub max_unavailable: u16,
    #[command(flatten)]
    pub run: RunArgs,
}

fn options(plan_file: Option<PathBuf>, run: RunArgs, request: ops::Request) -> ApplyOptions {
    ApplyOptions {
        plan_file,
        auto_approve: run.auto_approve,
        parallelism: run.parallelism,
        request,
        lock_timeout: run.lock_timeout,
    }
}

pub async fn run(ctx: &Context, a: ApplyArgs) -> Result<ExitCode, OpsError> {
    if a.plan_file.is_some() && (!a.change.replace.is_empty() || a.change.registry_only) {
        return Err(OpsError::Usage(
            "--replace and --registry-only shape a new plan; a saved plan is applied as it was made. Pass them to `infra plan --out` instead.".into(),
        ));
    }
    let request = a.change.request(false);
    ops::apply(ctx, options(a.plan_file, a.run, request))
        .await
        .map(|_| ExitCode::SUCCESS)
}

pub async fn run_destroy(ctx: &Context, a: DestroyArgs) -> Result<ExitCode, OpsError> {
    let request = ops::Request {
        skip_swarm: a.skip_swarm,
        ..Default::default()
    };
    ops::destroy(ctx, options(None, a.run, request))
        .await
        .map(|_| ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct RecoverArgs {
    /// The manager to rebuild from, e.g. `manager[0]`; default: the first whose Docker answers.
    #[arg(long, value_name = "NODE")]
    pub from: Option<String>,
    #[command(flatten)]
    pub run: RunArgs,
}

pub async fn run_recover(ctx: &Context, a: RecoverArgs) -> Result<ExitCode, OpsError> {
    let from = a.from.map(|f| match f.starts_with("node.") {
        true => Address::new(f),
        false => Address::new(format!("node.{f}")),
    });
    let opts = ops::RecoverOptions {
        from,
        apply: options(None, a.run, ops::Request::default()),
    };
    ops::recover_swarm(ctx, opts)
        .await
        .map(|_| ExitCode::SUCCESS)
}

pub async fn run_roll(ctx: &Context, a: RollArgs) -> Result<ExitCode, OpsError> {
    let request = ops::Request {
        max_unavailable: a.max_unavailable.into(),
        ..Default::default()
    };
    let roll = if a.all {
        ops::Roll::All
    } else {
        ops::Roll::Outdated
    };
    ops::roll_nodes(ctx, options(None, a.run, request), roll)
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
        apply: options(None, a.run, ops::Request::default()),
    };
    ops::scale_nodes(ctx, opts).await.map(|_| ExitCode::SUCCESS)
}
