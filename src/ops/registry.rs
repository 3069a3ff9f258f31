//! The plan's rules for the stack's ECR repositories: `force_delete` as the last apply set it,
//! a repository holding images kept unless it allows their deletion, and the images the
//! services pull checked in ECR before anything changes.

use std::collections::{BTreeMap, BTreeSet};

use super::{OpsError, Result};
use crate::cloud::Cloud;
use crate::model::resources::repository_address;
use crate::model::{Live, Spec, Stack};
use crate::plan::{Action, Change};
use crate::state::State;

/// `force_delete` is not in AWS: it lives in the state, as Terraform's does, so the live
/// repositories carry the value the last apply set.
pub(super) fn carry_force_delete(live: &mut Live, state: Option<&State>) {
    let Some(state) = state else { return };
    for (address, o) in live.iter_mut() {
        if let (Spec::Repository(r), Some(Spec::Repository(applied))) =
            (&mut o.spec, state.resources.get(address).map(|s| &s.spec))
        {
            r.force_delete = applied.force_delete;
        }
    }
}

/// Takes out of the plan the removal of a repository that holds images without
/// `force_delete` (ECR would refuse it), and says so; one DescribeImages a repository removed.
pub(super) async fn keep_full_repositories(
    cloud: &Cloud,
    changes: &mut Vec<Change>,
    notices: &mut Vec<String>,
) -> Result<()> {
    let mut kept = BTreeSet::new();
    for c in changes.iter() {
        let Some(Spec::Repository(r)) = &c.before else {
            continue;
        };
        if c.action != Action::Delete || r.force_delete {
            continue;
        }
        let held = cloud
            .repository_images(&r.name)
            .await?
            .map_or(0, |i| i.images);
        if held > 0 {
            notices.push(format!(
                "{} is kept: it holds {held} image(s). To delete them with it, set `force_delete = true` in [registry] and apply, then remove it.",
                c.address
            ));
            kept.insert(c.address.clone());
        }
    }
    changes.retain(|c| !kept.contains(&c.address));
    Ok(())
}

/// The repository and tag of an image in `registry`: `<registry>/web:1.2` → (`web`, `1.2`);
/// None for an image elsewhere or pinned by digest only.
pub fn registry_image<'a>(registry: &str, image: &'a str) -> Option<(&'a str, &'a str)> {
    let path = image.strip_prefix(registry)?.strip_prefix('/')?;
    let path = path.split('@').next().unwrap_or(path);
    match path.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => Some((repo, tag)),
        _ => Some((path, "latest")),
    }
}

/// An image in some account's ECR registry (`ACCOUNT.dkr.ecr.REGION.amazonaws.com/…`): its
/// registry host and repository.
fn ecr_image(image: &str) -> Option<(&str, &str)> {
    let (host, rest) = image.split_once('/')?;
    let parts: Vec<&str> = host.split('.').collect();
    let ecr = parts.len() >= 6
        && parts[0].len() == 12
        && parts[0].bytes().all(|b| b.is_ascii_digit())
        && parts[1..3] == ["dkr", "ecr"]
        && parts[4] == "amazonaws";
    let repo = rest.split(['@', ':']).next().unwrap_or(rest);
    ecr.then_some((host, repo))
}

/// Images in ECR that the nodes' role may not pull, named before anything changes: infra's
/// policy allows pulls from the stack's own repositories only, and without `[registry]` or
/// policies of the user's the nodes have no role at all. With `[nodes] iam_policies`, infra
/// cannot tell what those allow, and lets the pull be tried.
pub(super) fn check_pull_rights(
    stack: &Stack,
    registry: Option<&str>,
    desired: &[crate::model::resources::Resource],
) -> Result<()> {
    if !stack.node_access.iam_policies.is_empty() {
        return Ok(());
    }
    let own: Vec<&String> = stack
        .registry
        .iter()
        .flat_map(|r| &r.repositories)
        .collect();
    let mut refused = Vec::new();
    for r in desired {
        let Spec::Service(s) = &r.spec else { continue };
        let Some((host, repo)) = ecr_image(&s.image) else {
            continue;
        };
        if Some(host) == registry && own.iter().any(|o| o.as_str() == repo) {
            continue;
        }
        let service = r.address.as_str().trim_start_matches("swarm.service.");
        let why = if stack.nodes_need_role() {
            format!(
                "{service} pulls {}, but the nodes' role {} may pull only from the stack's repositories (its policy infra-nodes allows ecr:BatchGetImage on {})",
                s.image,
                crate::model::resources::Names::node_role(&stack.name),
                own.iter()
                    .map(|o| o.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else {
            format!(
                "{service} pulls {} from ECR, but the nodes have no IAM role to pull with",
                s.image
            )
        };
        refused.push(why);
    }
    if refused.is_empty() {
        return Ok(());
    }
    Err(OpsError::Usage(format!(
        "{}
  Add the repository to [registry] repositories (one of the stack's own), or attach a policy that allows pulling from it with [nodes] iam_policies.",
        refused.join("\n  ")
    )))
}

/// Every image a service pulls from the stack's registry exists there: one DescribeImages a
/// repository (not a node), before anything changes. An image in a repository this plan
/// creates cannot be there yet: the repositories go first (`--registry-only`), then the push.
pub(super) async fn check_images(
    cloud: &Cloud,
    stack: &Stack,
    registry: &str,
    changes: &[Change],
    desired: &[crate::model::resources::Resource],
) -> Result<()> {
    let Some(settings) = &stack.registry else {
        return Ok(());
    };
    let mut wanted: BTreeMap<&str, BTreeMap<&str, Vec<String>>> = BTreeMap::new();
    for r in desired {
        let Spec::Service(s) = &r.spec else { continue };
        if let Some((repo, tag)) = registry_image(registry, &s.image) {
            let address = r.address.as_str();
            let service = address
                .strip_prefix("swarm.service.")
                .unwrap_or(address)
                .to_string();
            wanted
                .entry(repo)
                .or_default()
                .entry(tag)
                .or_default()
                .push(service);
        }
    }
    let mut missing = Vec::new();
    for (repo, tags) in &wanted {
        let created_now = changes
            .iter()
            .any(|c| c.address == repository_address(repo) && c.action == Action::Create);
        let held = if created_now {
            None
        } else {
            cloud.repository_images(repo).await?
        };
        for (tag, services) in tags {
            let image = format!("{registry}/{repo}:{tag}");
            let why = match &held {
                Some(h) if h.tags.contains(*tag) => continue,
                Some(_) => format!("{image} is not in ECR (repository {repo} has no tag {tag})"),
                None if created_now => format!(
                    "{image}: repository {repo} is created by this plan and holds no image yet"
                ),
                None if settings.repositories.iter().any(|r| r == repo) => {
                    format!("{image}: repository {repo} does not exist yet")
                }
                None => format!(
                    "{image}: repository {repo} does not exist (it is not in [registry] repositories)"
                ),
            };
            missing.push(format!("{why}; used by {}", services.join(", ")));
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    Err(OpsError::Usage(format!(
        "images the services pull are missing from the stack's registry:\n  {}\n  \
         Make the repositories first (`infra apply --registry-only`), push the images \
         (`aws ecr get-login-password | docker login --username AWS --password-stdin {registry}`, \
         then `docker push`), and run the command again.",
        missing.join("\n  ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_in_the_registry_are_told_apart() {
        let reg = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
        assert_eq!(
            registry_image(reg, &format!("{reg}/web:1.2")),
            Some(("web", "1.2"))
        );
        assert_eq!(
            registry_image(reg, &format!("{reg}/team/web")),
            Some(("team/web", "latest"))
        );
        assert_eq!(
            registry_image(reg, &format!("{reg}/web:v3@sha256:abc")),
            Some(("web", "v3"))
        );
        assert_eq!(registry_image(reg, "nginx:1.27"), None);
        assert_eq!(registry_image(reg, &format!("{reg}x/web:1")), None);
        assert_eq!(
            ecr_image(&format!("{reg}/team/web:1")),
            Some((reg, "team/web"))
        );
        assert_eq!(ecr_image("registry.test:5000/web:1"), None);
        assert_eq!(ecr_image("nginx"), None);
    }
}
