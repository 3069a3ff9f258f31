//! `infra ssh NODE`: a shell (or one command) on a node, through the same ssh config and pinned
//! host keys as every other run.

use std::os::unix::process::CommandExt;

use super::nodes::with_image_users;
use super::reach::applied;
use super::{Context, OpsError, Result};
use crate::cloud::Cloud;
use crate::swarm::{Ssh, nodes};

/// `worker[1]`, `node.worker[1]`, `bastion[0]` or an instance id.
pub async fn ssh(ctx: &Context, node: &str, command: &[String]) -> Result<()> {
    let (stack, state) = applied(ctx).await?;
    let cloud = Cloud::connect(&stack.name, stack.region.as_deref(), ctx.calls.clone()).await?;
    let settings = with_image_users(
        &cloud,
        &stack.ssh,
        state.resources.values().map(|r| &r.spec),
    )
    .await?;
    let records = state
        .resources
        .iter()
        .map(|(a, r)| (a, r.id.as_str(), &r.spec, &r.outputs));
    let all = nodes(records, &settings);
    let wanted = if node.starts_with("i-") || node.starts_with("node.") {
        node.to_string()
    } else {
        format!("node.{node}")
    };
    // The bastion (`[bastion]`) too: it is in the written config whenever a node jumps through it.
    let bastion = all.iter().find_map(|n| n.host.jump.as_deref());
    let reachable: Vec<&crate::swarm::NodeHost> =
        all.iter().map(|n| &n.host).chain(bastion).collect();
    let target = reachable
        .iter()
        .find(|h| h.instance_id == wanted || h.address.as_str() == wanted)
        .ok_or_else(|| {
            let known: Vec<String> = reachable.iter().map(|h| h.address.to_string()).collect();
            OpsError::Usage(format!(
                "no node {node} in stack {} (nodes: {})",
                stack.name,
                known.join(", ")
            ))
        })?;
    let hosts: Vec<_> = all.iter().map(|n| n.host.clone()).collect();
    let ssh = Ssh::prepare(
        &ctx.workspace.state_dir(),
        &stack.name,
        &settings,
        &hosts,
        &state.host_keys,
    )
    .map_err(|e| OpsError::Usage(e.to_string()))?;
    Err(run_ssh(&ssh, &target.instance_id, &[], command))
}

/// Replaces this process with `ssh` to `instance_id` through the stack's ssh config (pinned
/// host keys, jump host), with `flags` (`-t`) and the remote `command` (words the remote shell
/// reads: quote them); returns only the error of starting it.
pub(super) fn run_ssh(
    ssh: &Ssh,
    instance_id: &str,
    flags: &[&str],
    command: &[String],
) -> OpsError {
    let err = std::process::Command::new("ssh")
        .arg("-F")
        .arg(ssh.config_path())
        .args(flags)
        .arg(instance_id)
        .args(command)
        .exec();
    OpsError::Io {
        what: "cannot run",
        path: "ssh".into(),
        source: err,
    }
}
