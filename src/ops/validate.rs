use std::path::Path;

use super::{Context, OpsError, Result};
use crate::compose::{self, Project};
use crate::config::{self, Loaded};
use crate::model::image::describe_login_user;
use crate::model::{SecretSource, Stack, Vars};

/// Reads and validates the stack file; warnings go to stderr.
pub fn load(ctx: &Context) -> Result<(Loaded, String)> {
    let ws = &ctx.workspace;
    let source = read_stack_file(ctx)?;
    let dir = ws
        .stack_file
        .parent()
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let read = move |p: &Path| std::fs::read_to_string(expand_home(&dir, p));
    let mut loaded = config::parse(&ws.shown_stack_file(), &source, &vars(ctx, &source), &read)?;
    // ssh reads these from anywhere: make them independent of the working directory.
    let ssh = &mut loaded.stack.ssh;
    for path in [&mut ssh.identity_file, &mut ssh.config_file]
        .into_iter()
        .flatten()
    {
        *path = expand_home(&ws.stack_dir(), path);
    }
    for w in &loaded.warnings {
        let help = w
            .help
            .as_deref()
            .map(|h| format!("\n  help: {h}"))
            .unwrap_or_default();
        eprintln!("warning: {w}{help}");
    }
    Ok((loaded, source))
}

/// [`load`], then with the Swarm on the services as infra deploys them (the compose file
/// interpolated, the files it names read): what validate, plan and apply need, and destroy,
/// status and ssh do not (an unset `${TAG:?}` must not stop a destroy).
pub fn load_with_services(ctx: &Context) -> Result<(Loaded, String)> {
    let (mut loaded, source) = load(ctx)?;
    if loaded.stack.swarm {
        let project = compose_project(&loaded.stack, &ctx.workspace.stack_dir())?;
        for w in &project.warnings {
            eprintln!("warning: {w}");
        }
        let apps = &mut loaded.stack.apps;
        apps.secrets
            .extend(project.secrets.iter().map(|s| SecretSource {
                name: s.key.clone(),
                source: s.source.clone(),
                advanced: false,
            }));
        apps.project = Some(project);
    }
    Ok((loaded, source))
}

/// The services as infra deploys them: the user's compose file, interpolated with `--var`, then
/// the environment, then `[vars]`; or `[services]` rendered (its values are literal).
fn compose_project(stack: &Stack, stack_dir: &Path) -> Result<Project> {
    let read = |p: &Path| std::fs::read(p);
    let stack_secrets: Vec<String> = stack.apps.secrets.iter().map(|s| s.name.clone()).collect();
    let project = match &stack.apps.compose {
        Some(c) => {
            let mut vars = c.vars.clone();
            vars.extend(std::env::vars().filter(|(k, _)| !c.overridden.contains(k)));
            let path = stack_dir.join(&c.path);
            let dir = path.parent().unwrap_or(Path::new("."));
            let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
            compose::project::load(&compose::Input {
                file: &c.path,
                text: &c.text,
                dir: &dir,
                interpolate: true,
                vars: &vars,
                stack: &stack.name,
                stack_secrets: &stack_secrets,
                read: &read,
            })?
        }
        None => {
            let text =
                crate::render::services_compose(stack).map_err(|source| OpsError::Template {
                    what: "services",
                    source,
                })?;
            compose::project::load(&compose::Input {
                file: "templates/stack.yml.tera",
                text: &text,
                dir: stack_dir,
                interpolate: false,
                vars: &Vars::new(),
                stack: &stack.name,
                stack_secrets: &stack_secrets,
                read: &read,
            })?
        }
    };
    Ok(project)
}

/// Template variables: `INFRA_VAR_<name>` from the environment for each name the stack file
/// declares (others are not ours to judge), then `--var`, which wins.
fn vars(ctx: &Context, source: &str) -> crate::model::Vars {
    let declared: Vec<String> = toml::from_str::<toml::Table>(source)
        .ok()
        .and_then(|t| Some(t.get("vars")?.as_table()?.keys().cloned().collect()))
        .unwrap_or_default();
    let mut vars: crate::model::Vars = std::env::vars()
        .filter_map(|(k, v)| Some((k.strip_prefix("INFRA_VAR_")?.to_string(), v)))
        .filter(|(k, _)| declared.contains(k))
        .collect();
    vars.extend(ctx.vars.clone());
    vars
}

pub fn read_stack_file(ctx: &Context) -> Result<String> {
    std::fs::read_to_string(&ctx.workspace.stack_file).map_err(|source| OpsError::Io {
        what: "cannot read stack file",
        path: ctx.workspace.shown_stack_file(),
        source,
    })
}

/// The JSON Schema of stack files, for editors.
pub fn schema() -> Result<()> {
    let schema = schemars::schema_for!(crate::config::StackFile);
    println!(
        "{}",
        serde_json::to_string_pretty(&schema).expect("serializes")
    );
    Ok(())
}

/// `~/x` is in the home directory; a relative path is relative to the stack file.
pub(super) fn expand_home(dir: &Path, p: &Path) -> std::path::PathBuf {
    match p.strip_prefix("~") {
        Ok(rest) => std::env::var_os("HOME")
            .map(std::path::PathBuf::from)
            .unwrap_or_default()
            .join(rest),
        Err(_) => dir.join(p),
    }
}

pub fn validate(ctx: &Context) -> Result<()> {
    let (loaded, _) = load_with_services(ctx)?;
    let s = &loaded.stack;
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
