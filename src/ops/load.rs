//! Reading the stack file for an operation: parsed and validated (warnings to stderr), paths
//! made independent of the working directory, template variables gathered, and the services
//! (the user's compose file or `[services]`) loaded as infra deploys them.

use std::path::Path;

use super::{Context, OpsError, Result};
use crate::compose::{self, Project};
use crate::config::{self, Loaded};
use crate::model::{SecretSource, Stack, Vars};

/// Reads and validates the stack file; warnings go to stderr.
pub async fn load(ctx: &Context) -> Result<(Loaded, String)> {
    let ws = &ctx.workspace;
    let source = read_stack_file(ctx)?;
    let mut vars = vars(ctx, &source);
    if !vars.contains_key("registry")
        && let Some(host) = registry_host(ctx, &source).await?
    {
        vars.insert("registry".to_string(), host);
    }
    let dir = ws
        .stack_file
        .parent()
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let read = move |p: &Path| std::fs::read_to_string(expand_home(&dir, p));
    let mut loaded = config::parse(&ws.shown_stack_file(), &source, &vars, &read)?;
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

/// A stack file read for an operation that plans: the validated stack, the file's text (plans
/// carry its hash) and, with the Swarm on, the services as infra deploys them.
pub(super) struct Input {
    pub stack: Stack,
    pub source: String,
    /// `Some` exactly when the Swarm is on and the operation deploys services (not destroy).
    pub project: Option<Project>,
}

/// What a plan reads: [`load_with_services`], or for a destroy only [`load`] (an unset
/// `${TAG:?}` in the compose file must not stop a destroy).
pub(super) async fn load_for_plan(ctx: &Context, destroy: bool) -> Result<Input> {
    if !destroy {
        return load_with_services(ctx).await;
    }
    let (loaded, source) = load(ctx).await?;
    Ok(Input {
        stack: loaded.stack,
        source,
        project: None,
    })
}

/// [`load`], then with the Swarm on the services as infra deploys them (the compose file
/// interpolated, the files it names read, its secrets added to the stack's): what validate,
/// plan and apply need, and destroy, status and ssh do not.
pub(super) async fn load_with_services(ctx: &Context) -> Result<Input> {
    let (loaded, source) = load(ctx).await?;
    let mut stack = loaded.stack;
    let project = if stack.swarm {
        let mut project = compose_project(&stack, &ctx.workspace.stack_dir())?;
        if stack.logging.is_some() {
            project.log_to_cloudwatch(&stack.log_group(), &region(ctx, &stack).await?);
        }
        for w in &project.warnings {
            eprintln!("warning: {w}");
        }
        stack
            .apps
            .secrets
            .extend(project.secrets.iter().map(|s| SecretSource {
                name: s.key.clone(),
                source: s.source.clone(),
                advanced: false,
            }));
        Some(project)
    } else {
        None
    };
    Ok(Input {
        stack,
        source,
        project,
    })
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

/// With a `[registry]` table, the registry `{{ registry }}` names: the account's in the
/// stack's region (`<account>.dkr.ecr.<region>.amazonaws.com`, one STS call).
async fn registry_host(ctx: &Context, source: &str) -> Result<Option<String>> {
    let Ok(table) = toml::from_str::<toml::Table>(source) else {
        return Ok(None);
    };
    if !table.contains_key("registry") {
        return Ok(None);
    }
    let region = table.get("region").and_then(|r| r.as_str());
    let cloud =
        crate::cloud::Cloud::connect(&ctx.workspace.stack_name, region, ctx.calls.clone()).await?;
    Ok(Some(super::context::account(ctx, &cloud).await?.registry()))
}

/// The stack's region: its own, or the AWS chain's.
async fn region(ctx: &Context, stack: &Stack) -> Result<String> {
    if let Some(region) = &stack.region {
        return Ok(region.clone());
    }
    let cloud = crate::cloud::Cloud::connect(&stack.name, None, ctx.calls.clone()).await?;
    Ok(super::context::account(ctx, &cloud).await?.region)
}

pub fn read_stack_file(ctx: &Context) -> Result<String> {
    std::fs::read_to_string(&ctx.workspace.stack_file).map_err(|source| OpsError::Io {
        what: "cannot read stack file",
        path: ctx.workspace.shown_stack_file(),
        source,
    })
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
