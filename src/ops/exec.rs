//! `infra exec SERVICE -- COMMAND`: runs a command in one of the service's running tasks, on
//! its node (`docker exec`), over the stack's SSH (through the bastion when there is one).

use super::reach::reach;
use super::shell::run_ssh;
use super::{Context, OpsError, Result};
use crate::swarm::Ssh;
use crate::swarm::docker::quote;

pub struct ExecOptions {
    /// `web`, `swarm.service.web` or Docker's name (`sandbox_web`).
    pub service: String,
    /// A task id (or its start) to run in; default: the first running task by node.
    pub task: Option<String>,
    /// Keep stdin open and give the command a terminal (`docker exec -it`, `ssh -t`).
    pub interactive: bool,
    pub command: Vec<String>,
}

/// Finds a running task and replaces this process with `ssh NODE docker exec CONTAINER COMMAND`:
/// the command's exit code is infra's.
pub async fn exec(ctx: &Context, opts: ExecOptions) -> Result<()> {
    let reached = reach(ctx).await?;
    let service = reached.service_name(&opts.service);
    let outside = reached.outside();
    let swarm = reached.swarm(ctx, &outside);
    let mut tasks = swarm
        .running_containers(&reached.managers(), &reached.nodes, &service)
        .await?;
    tasks.sort_by(|a, b| a.node.host.address.cmp(&b.node.host.address));
    let chosen = match &opts.task {
        Some(id) => tasks.iter().find(|t| t.task.id.starts_with(id.as_str())),
        None => tasks.first(),
    };
    let Some(chosen) = chosen else {
        let running: Vec<String> = tasks
            .iter()
            .map(|t| format!("{} on {}", short(&t.task.id), t.node.host.address))
            .collect();
        return Err(OpsError::Usage(match &opts.task {
            Some(id) => format!(
                "no running task {id} of {service} (running: {})",
                if running.is_empty() {
                    "none".to_string()
                } else {
                    running.join(", ")
                }
            ),
            None => format!(
                "{service} runs no task now: see `infra details` (is it a service of stack {}?)",
                reached.stack.name
            ),
        }));
    };
    eprintln!(
        "{service}: task {} on {} ({})",
        short(&chosen.task.id),
        chosen.node.host.address,
        chosen.node.host.instance_id
    );
    let hosts: Vec<_> = reached.nodes.iter().map(|n| n.host.clone()).collect();
    let ssh = Ssh::prepare(
        &ctx.workspace.state_dir(),
        &reached.stack.name,
        &reached.settings,
        &hosts,
        &reached.host_keys,
    )
    .map_err(|e| OpsError::Usage(e.to_string()))?;
    let mut remote = vec!["docker".to_string(), "exec".to_string()];
    if opts.interactive {
        remote.push("-it".to_string());
    }
    remote.push(chosen.task.container_id.clone());
    remote.extend(opts.command.iter().map(|w| quote(w)));
    let flags: &[&str] = if opts.interactive { &["-t"] } else { &["-T"] };
    Err(run_ssh(&ssh, &chosen.node.host.instance_id, flags, &remote))
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}
