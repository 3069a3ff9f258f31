//! `[registry]` (the stack's ECR repositories) and the nodes' identity settings of `[nodes]`
//! (`iam_policies`, `metadata_hop_limit`).

use toml::Spanned;

use super::Validator;
use crate::config::schema::*;
use crate::model::*;

/// ECR's repository name rule: 2–256 characters, lowercase letters, digits and `._-` between
/// them, `/` between namespaces.
/// https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_CreateRepository.html
pub fn check_repository_name(name: &str) -> Result<(), String> {
    let part_ok = |p: &str| {
        !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
            && p.starts_with(|c: char| c.is_ascii_alphanumeric())
            && p.ends_with(|c: char| c.is_ascii_alphanumeric())
            && !p.contains("..")
    };
    if (2..=256).contains(&name.len()) && name.split('/').all(part_ok) {
        Ok(())
    } else {
        Err(format!(
            "repository name {name:?} is not one ECR takes: 2 to 256 lowercase letters, digits and . _ - between them, / between namespaces"
        ))
    }
}

/// A managed policy's ARN: `arn:<partition>:iam::<account or aws>:policy/<path/>name`.
/// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference-arns.html
fn check_policy_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    matches!(parts.as_slice(), ["arn", partition, "iam", "", account, resource]
        if partition.starts_with("aws")
            && (*account == "aws" || (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())))
            && resource.strip_prefix("policy/").is_some_and(|n| !n.is_empty()))
}

/// IAM's default quota of managed policies attached to one role.
/// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html
const MAX_ATTACHED_POLICIES: usize = 10;

impl<'a> Validator<'a> {
    pub(super) fn registry(&mut self, r: &Spanned<RegistryFile>) -> Option<Registry> {
        let file = r.get_ref();
        let mut names: Vec<String> = Vec::new();
        if file.repositories.get_ref().is_empty() {
            self.error(
                file.repositories.span(),
                "[registry] repositories is empty",
                Some("name at least one repository, or remove the [registry] table"),
            );
        }
        for name in file.repositories.get_ref() {
            let Some(rendered) = self.templated(name) else {
                continue;
            };
            if let Err(msg) = check_repository_name(&rendered) {
                self.error(name.span(), msg, None);
            } else if names.contains(&rendered) {
                self.error(
                    name.span(),
                    format!("repository {rendered:?} is listed twice"),
                    None,
                );
            } else {
                names.push(rendered);
            }
        }
        // ECR's countNumber is at least 1.
        let keep = match &file.keep_images {
            Some(k) => self.int(k, "keep_images", 1..=10_000)? as u32,
            None => 100,
        };
        let refresh =
            match &file.credentials_refresh {
                Some(d) => {
                    let secs = self.duration(d)?.as_secs();
                    if !(60..=6 * 3600).contains(&secs) {
                        self.error(
                        d.span(),
                        format!("credentials_refresh {:?} is out of range (1m to 6h)", d.get_ref()),
                        Some("ECR's tokens last 12 hours: renew them at least twice in that time"),
                    );
                        return None;
                    }
                    secs
                }
                None => 3600,
            };
        Some(Registry {
            credentials_refresh_secs: refresh,
            repositories: names,
            scan_on_push: file.scan_on_push.unwrap_or(true),
            immutable_tags: file.immutable_tags.unwrap_or(false),
            keep_images: keep,
            force_delete: file.force_delete.unwrap_or(false),
        })
    }

    pub(super) fn node_access(&mut self, nodes: &NodesFile) -> NodeAccess {
        let mut access = NodeAccess::default();
        for arn in nodes.iam_policies.iter().flatten() {
            let Some(rendered) = self.templated(arn) else {
                continue;
            };
            if !check_policy_arn(&rendered) {
                self.error(
                    arn.span(),
                    format!("{rendered:?} is not a managed IAM policy's ARN"),
                    Some("like arn:aws:iam::aws:policy/CloudWatchAgentServerPolicy or arn:aws:iam::123456789012:policy/my-policy"),
                );
            } else if !access.iam_policies.contains(&rendered) {
                access.iam_policies.push(rendered);
            }
        }
        if access.iam_policies.len() > MAX_ATTACHED_POLICIES
            && let Some(list) = &nodes.iam_policies
        {
            let span = list[MAX_ATTACHED_POLICIES].span();
            self.error(
                span,
                format!(
                    "{} policies: IAM attaches at most {MAX_ATTACHED_POLICIES} managed policies to a role (its default quota)",
                    access.iam_policies.len()
                ),
                Some("merge some into one policy of your own"),
            );
        }
        if let Some(h) = &nodes.metadata_hop_limit
            && let Some(n) = self.int(h, "metadata_hop_limit", 1..=64)
        {
            access.metadata_hop_limit = n as u8;
        }
        access
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names_follow_ecr() {
        for ok in ["web", "team/web", "a1", "my.app_v2-x"] {
            assert!(check_repository_name(ok).is_ok(), "{ok}");
        }
        for bad in ["W", "Web", "-web", "web/", "/web", "a", "web..x", "we b"] {
            assert!(check_repository_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn policy_arns() {
        assert!(check_policy_arn(
            "arn:aws:iam::aws:policy/CloudWatchAgentServerPolicy"
        ));
        assert!(check_policy_arn(
            "arn:aws:iam::123456789012:policy/team/mine"
        ));
        assert!(!check_policy_arn("arn:aws:iam::123456789012:role/mine"));
        assert!(!check_policy_arn("CloudWatchAgentServerPolicy"));
    }
}
