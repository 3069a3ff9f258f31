//! What a plan refuses before anything changes, because apply could not carry it out safely
//! in one run: missing externals, a bastion removed while the Swarm changes.

use std::collections::BTreeSet;

use super::{OpsError, Result};
use crate::compose;
use crate::model::{Role, Spec, Stack};
use crate::plan;

/// What the compose file marks `external` must exist before anything changes (docker stack
/// deploy would fail half-way). Before the Swarm exists nothing can be checked: a warning.
pub(super) fn check_externals(
    stack: &Stack,
    project: &compose::Project,
    names: Option<&BTreeSet<(String, String)>>,
) -> Result<()> {
    let file = stack
        .apps
        .compose
        .as_ref()
        .map_or("templates/stack.yml.tera", |c| c.path.as_str());
    let Some(names) = names else {
        for e in &project.externals {
            eprintln!(
                "warning: {file}: external {} {:?} cannot be checked until the Swarm exists; docker stack deploy fails if it is missing",
                e.kind.noun(),
                e.name
            );
        }
        return Ok(());
    };
    // Docker's own networks are never listed as swarm-scoped, and stack deploy takes them as
    // they are.
    let builtin = |e: &compose::External| {
        e.kind == compose::Kind::Network && ["host", "bridge", "none"].contains(&e.name.as_str())
    };
    let missing: Vec<String> = project
        .externals
        .iter()
        .filter(|e| !builtin(e) && !names.contains(&(e.kind.noun().to_string(), e.name.clone())))
        .map(|e| {
            format!(
                "{} {:?} ({}s.{})",
                e.kind.noun(),
                e.name,
                e.kind.noun(),
                e.key
            )
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(OpsError::Usage(format!(
        "{file}: external {} not exist on the Swarm: {}.\n  Nothing was changed. Create {} on a manager first (`infra ssh node.manager[0] -- docker secret create NAME -`, the value on stdin; `docker config create`, `docker network create --driver overlay`), or drop `external: true` and let infra create {}.",
        if missing.len() == 1 {
            "object does"
        } else {
            "objects do"
        },
        missing.join(", "),
        if missing.len() == 1 { "it" } else { "them" },
        if missing.len() == 1 { "it" } else { "them" },
    )))
}

/// Removing `[bastion]` changes how the nodes are reached (their group then opens port 22 to
/// admin_cidrs again): Swarm steps in the same apply could be cut off half-way, so the removal is
/// an apply of its own.
pub(super) fn check_bastion_removal(changes: &[plan::Change]) -> Result<()> {
    let removed = changes.iter().any(|c| {
        c.action == plan::Action::Delete
            && matches!(&c.before, Some(Spec::Instance(i)) if i.pool == Role::Bastion.pool())
    });
    let swarm: Vec<String> = changes
        .iter()
        .filter(|c| c.spec().on_swarm())
        .map(|c| c.address.to_string())
        .collect();
    if !removed || swarm.is_empty() {
        return Ok(());
    }
    Err(OpsError::Usage(format!(
        "node.bastion[0]: removing [bastion] changes how infra reaches the nodes, and this plan also changes the Swarm ({}).\n  Apply the other changes with [bastion] still in the stack file, then remove it in an apply of its own.",
        swarm.join(", ")
    )))
}
