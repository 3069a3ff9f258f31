//! Command-line interface: clap definitions; each command parses and calls one operation.

mod apply;
mod day2;
mod plan;
mod simple;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::ops::{self, Context, OpsError, Workspace};

#[derive(Debug, Parser)]
#[command(
    name = "infra",
    version,
    about = "Provision and run Docker Swarm clusters on AWS, as code"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// The stack: NAME for stacks/NAME.toml (default: the only file in stacks/).
    #[arg(short, long, global = true, env = "INFRA_STACK")]
    pub stack: Option<String>,
    /// A template variable, KEY=VALUE (repeatable); it must be declared in [vars].
    #[arg(long = "var", global = true, value_parser = parse_var)]
    pub vars: Vec<(String, String)>,
    /// No colours (also when NO_COLOR is set or output is not a terminal).
    #[arg(long, global = true)]
    pub no_color: bool,
    /// Debug logs on stderr, including every AWS call (RUST_LOG works too).
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// Work in this directory instead of the current one.
    #[arg(long, global = true, value_name = "DIR")]
    pub chdir: Option<std::path::PathBuf>,
}

impl Global {
    pub fn color(&self) -> bool {
        !self.no_color
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            && std::io::stdout().is_terminal()
    }
}

fn parse_var(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the stack file; errors point at file:line:col.
    Validate,
    /// Compare the stack file with what exists and show what apply would change.
    Plan(plan::PlanArgs),
    /// Make it so: apply a fresh plan (asks first) or a plan saved with `plan --out`.
    Apply(apply::ApplyArgs),
    /// Set the node counts in the stack file (comments kept), then plan and apply.
    ScaleNodes(apply::ScaleArgs),
    /// Remove every object the stack owns.
    Destroy(apply::DestroyArgs),
    /// Replace nodes, one at a time and the new one first, onto their pool's current AMI.
    RollNodes(apply::RollArgs),
    /// Bring back a Swarm that lost its quorum: rebuild it from one manager
    /// (docker swarm init --force-new-cluster), then apply (the other managers rejoin).
    RecoverSwarm(apply::RecoverArgs),
    /// Show the load balancer's DNS name and the nodes, from the state.
    Output(simple::OutputArgs),
    /// The nodes now: instance, zone, Swarm role and state, target health.
    Status(simple::StatusArgs),
    /// A shell on a node (`worker[1]` or an instance id), or one command after `--`.
    Ssh(simple::SshArgs),
    /// A service's logs from every task, interleaved by time, each line naming its node and task.
    Logs(day2::LogsArgs),
    /// Each service now: image and digest, tasks and their nodes, last update, ports, target health.
    Details(day2::DetailsArgs),
    /// Run a command in a running task of a service (`docker exec` on its node).
    Exec(day2::ExecArgs),
    /// Check the live cluster for the pitfalls of Swarm on AWS; exit 1 when one is found.
    Doctor(day2::DoctorArgs),
    /// Release a lock left behind by a run that crashed.
    ForceUnlock(simple::UnlockArgs),
    /// Manage the state: move it between a local file and S3.
    #[command(subcommand)]
    State(simple::StateCommand),
    /// Print the JSON Schema of stack files, for editors (e.g. taplo, VS Code Even Better TOML).
    Schema,
    /// Start a stack: write stacks/NAME.toml, every key commented (NAME: this directory's name).
    Init { name: Option<String> },
    /// Print the shell completion script, e.g. `infra completions bash > /etc/bash_completion.d/infra`.
    Completions { shell: clap_complete::Shell },
}

pub async fn run(cli: Cli) -> Result<ExitCode, OpsError> {
    let root = match &cli.global.chdir {
        Some(dir) => dir.clone(),
        None => std::env::current_dir().map_err(|source| OpsError::Io {
            what: "no working directory",
            path: ".".into(),
            source,
        })?,
    };
    // Commands that need no stack.
    match &cli.command {
        Command::Schema => return ops::schema().map(|_| ExitCode::SUCCESS),
        Command::Init { name } => {
            let file = ops::init(&root, name.as_deref())?;
            println!(
                "Wrote {}. Edit it (region, zones, admin_cidrs, public_key_file, certificate_arn, services), then run `infra validate` and `infra plan`.",
                file.strip_prefix(&root).unwrap_or(&file).display()
            );
            return Ok(ExitCode::SUCCESS);
        }
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(*shell, &mut cmd, "infra", &mut std::io::stdout());
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    // A saved plan knows its stack.
    let stack = match (&cli.command, &cli.global.stack) {
        (Command::Apply(a), None) => match &a.plan_file {
            Some(path) => Some(ops::saved_plan_stack(path)?),
            None => None,
        },
        (_, stack) => stack.clone(),
    };
    let ctx = Context::new(
        Workspace::find(&root, stack.as_deref())?,
        cli.global.vars.iter().cloned().collect(),
        cli.global.color(),
    );
    let code = match cli.command {
        Command::Validate => ops::validate(&ctx).await.map(|_| ExitCode::SUCCESS),
        Command::Plan(args) => plan::run(&ctx, args).await,
        Command::Apply(args) => apply::run(&ctx, args).await,
        Command::Destroy(args) => apply::run_destroy(&ctx, args).await,
        Command::ScaleNodes(args) => apply::run_scale(&ctx, args).await,
        Command::RollNodes(args) => apply::run_roll(&ctx, args).await,
        Command::RecoverSwarm(args) => apply::run_recover(&ctx, args).await,
        Command::Output(args) => simple::output(&ctx, args).await,
        Command::ForceUnlock(args) => simple::unlock(&ctx, args).await,
        Command::State(command) => simple::state(&ctx, command).await,
        Command::Status(args) => simple::status(&ctx, args).await,
        Command::Ssh(args) => simple::ssh(&ctx, args).await,
        Command::Logs(args) => day2::logs(&ctx, args).await,
        Command::Details(args) => day2::details(&ctx, args).await,
        Command::Exec(args) => day2::exec(&ctx, args).await,
        Command::Doctor(args) => day2::doctor(&ctx, args).await,
        Command::Schema | Command::Init { .. } | Command::Completions { .. } => {
            unreachable!("handled before the workspace is needed")
        }
    };
    tracing::debug!(target: "infra::aws", total = ctx.calls.total(), calls = ?ctx.calls.counts(), "AWS calls made");
    code
}

/// Errors for people: config errors with the offending line and a caret, others as text.
pub fn render_error(e: &OpsError, color: bool) -> String {
    use miette::{GraphicalReportHandler, GraphicalTheme};
    if let OpsError::Config(_) = e {
        let theme = if color {
            GraphicalTheme::unicode()
        } else {
            GraphicalTheme::unicode_nocolor()
        };
        let mut out = String::new();
        if GraphicalReportHandler::new_themed(theme)
            .render_report(&mut out, e)
            .is_ok()
        {
            return out;
        }
    }
    format!("Error: {e}\n")
}

pub fn init_logging(verbose: bool) {
    use tracing_subscriber::EnvFilter;
    // The AWS SDK's own warnings (a credential provider that found nothing) are debug dumps;
    // infra's errors say what failed and what to do.
    let default = if verbose {
        "warn,infra=debug"
    } else {
        "warn,aws_config=error,aws_smithy_runtime=error"
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
