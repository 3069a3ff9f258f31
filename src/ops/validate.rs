//! `infra validate` (the stack file and its services, checked without touching AWS) and
//! `infra schema`.

use super::load::load_with_services;
use super::{Context, Result};
use crate::model::Stack;
use crate::model::image::describe_login_user;

/// The JSON Schema of stack files, for editors.
pub fn schema() -> Result<()> {
    let schema = schemars::schema_for!(crate::config::StackFile);
    println!(
        "{}",
        serde_json::to_string_pretty(&schema).expect("serializes")
    );
    Ok(())
}

pub async fn validate(ctx: &Context) -> Result<()> {
    let input = load_with_services(ctx).await?;
    let s = &input.stack;
    println!(
        "Success! {} is valid: stack {}, {} zones, {} manager(s), {} worker(s).",
        ctx.workspace.shown_stack_file(),
        s.name,
        s.network.subnets.len(),
        s.managers.count,
        s.workers.count
    );
    if s.swarm {
        for pool in [&s.managers, &s.workers]
            .into_iter()
            .filter(|p| p.count > 0)
        {
            println!(
                "SSH login on {} nodes: {}.",
                pool.role.pool(),
                describe_login_user(&pool.ami, s.ssh.user.as_deref())
            );
        }
        println!("SSH path: {}.", describe_path(s));
        println!("SSH identity: {}.", describe_identity(&s.ssh));
    }
    Ok(())
}

/// How infra reaches the nodes on port 22.
fn describe_path(s: &Stack) -> String {
    let admin: Vec<String> = s
        .network
        .admin_cidrs
        .iter()
        .map(|c| c.to_string())
        .collect();
    let admin = admin.join(", ");
    match (&s.bastion, &s.ssh.jump_host) {
        (Some(_), _) => format!(
            "through the bastion node.bastion[0] (its port 22 open to {admin}); the nodes accept SSH only from it"
        ),
        (None, Some(jump)) => {
            format!("through [ssh] jump_host {jump}, to the nodes' private addresses")
        }
        (None, None) => format!("directly to the nodes' public addresses, from {admin}"),
    }
}

/// Which key a run will log in with: `[ssh] identity_file`, else what the ssh-agent holds
/// (`ssh-add -l`), else ssh's own defaults.
fn describe_identity(ssh: &crate::model::SshSettings) -> String {
    if let Some(key) = &ssh.identity_file {
        return format!("the key {} ([ssh] identity_file)", key.display());
    }
    let Some(socket) = std::env::var_os("SSH_AUTH_SOCK") else {
        return "ssh's defaults (~/.ssh/id_* or IdentityFile in your ssh config): no ssh-agent, SSH_AUTH_SOCK is not set".into();
    };
    let socket = std::path::PathBuf::from(socket);
    let listed = std::process::Command::new("ssh-add")
        .arg("-l")
        .stdin(std::process::Stdio::null())
        .output();
    match listed {
        Ok(out) if out.status.success() => {
            let keys: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(|l| l.split_whitespace().skip(1).take(1).collect())
                .collect();
            format!(
                "the ssh-agent at {} ({} key{}: {})",
                socket.display(),
                keys.len(),
                if keys.len() == 1 { "" } else { "s" },
                keys.join(", ")
            )
        }
        Ok(out) if out.status.code() == Some(1) => format!(
            "none yet: the ssh-agent at {} holds no key (load one with ssh-add)",
            socket.display()
        ),
        _ => format!(
            "ssh's defaults: SSH_AUTH_SOCK is set ({}) but no ssh-agent answers there",
            socket.display()
        ),
    }
}
