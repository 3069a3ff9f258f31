//! The nodes' identity (`iam.role.nodes`, `iam.instance_profile.nodes`) and the stack's image
//! repositories (`ecr.repository.<name>`), with the policy documents they carry.

use serde_json::json;

use super::{Names, Resource, addr};
use crate::model::*;

/// The account and region the stack lives in: what ARNs and the registry's host name need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// The 12-digit account id (STS GetCallerIdentity).
    pub id: String,
    pub region: String,
    /// `aws`, `aws-cn` or `aws-us-gov`.
    pub partition: String,
}

impl Account {
    /// The account's private registry in the region, as images name it:
    /// `123456789012.dkr.ecr.us-east-1.amazonaws.com`.
    /// https://docs.aws.amazon.com/AmazonECR/latest/userguide/Registries.html
    pub fn registry(&self) -> String {
        let suffix = if self.partition == "aws-cn" {
            "amazonaws.com.cn"
        } else {
            "amazonaws.com"
        };
        format!("{}.dkr.ecr.{}.{suffix}", self.id, self.region)
    }

    /// A repository's ARN: `arn:aws:ecr:us-east-1:123456789012:repository/web`.
    pub fn repository_arn(&self, name: &str) -> String {
        format!(
            "arn:{}:ecr:{}:{}:repository/{name}",
            self.partition, self.region, self.id
        )
    }
}

/// The address of a repository of the stack.
pub fn repository_address(name: &str) -> Address {
    Address::new(format!("ecr.repository.{name}"))
}

pub const ROLE: &str = "iam.role.nodes";
pub const INSTANCE_PROFILE: &str = "iam.instance_profile.nodes";

/// Who may assume the nodes' role: EC2, on the instances' behalf.
/// https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_switch-role-ec2.html
pub fn trust_policy() -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "ec2.amazonaws.com"},
            "Action": "sts:AssumeRole"
        }]
    })
    .to_string()
}

/// infra's inline policy on the nodes' role: what the stack's features need and nothing more;
/// empty when no feature needs a right (the user's own policies are attached, not merged).
///
/// Pulling from ECR takes `ecr:GetAuthorizationToken`, which has no resource-level permission
/// (Resource `*`), then `BatchCheckLayerAvailability`, `GetDownloadUrlForLayer` and
/// `BatchGetImage` on each repository the images are pulled from: the stack's own.
/// https://docs.aws.amazon.com/AmazonECR/latest/userguide/repository-policy-examples.html
/// https://docs.aws.amazon.com/AmazonECR/latest/userguide/security-iam-awsmanpol.html
pub fn node_policy(stack: &Stack, account: Option<&Account>) -> String {
    let (Some(registry), Some(account)) = (&stack.registry, account) else {
        return String::new();
    };
    let repositories: Vec<String> = registry
        .repositories
        .iter()
        .map(|r| account.repository_arn(r))
        .collect();
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "RegistryToken",
                "Effect": "Allow",
                "Action": "ecr:GetAuthorizationToken",
                "Resource": "*"
            },
            {
                "Sid": "PullStackImages",
                "Effect": "Allow",
                "Action": [
                    "ecr:BatchCheckLayerAvailability",
                    "ecr:BatchGetImage",
                    "ecr:GetDownloadUrlForLayer"
                ],
                "Resource": repositories
            }
        ]
    })
    .to_string()
}

/// A repository's lifecycle policy: expire all but the newest `keep` images, tagged or not.
/// https://docs.aws.amazon.com/AmazonECR/latest/userguide/LifecyclePolicies.html
pub fn lifecycle_policy(keep: u32) -> String {
    json!({
        "rules": [{
            "rulePriority": 1,
            "description": format!("infra: keep the newest {keep} images"),
            "selection": {
                "tagStatus": "any",
                "countType": "imageCountMoreThan",
                "countNumber": keep
            },
            "action": {"type": "expire"}
        }]
    })
    .to_string()
}

pub(super) fn expand(stack: &Stack, account: Option<&Account>, out: &mut Vec<Resource>) {
    let mut add = |address: Address, spec: Spec| out.push(Resource { address, spec });
    if stack.nodes_need_role() {
        let mut managed = stack.node_access.iam_policies.clone();
        managed.sort();
        managed.dedup();
        add(
            addr(ROLE),
            Spec::IamRole(IamRoleSpec {
                name: Names::node_role(&stack.name),
                trust_policy: trust_policy(),
                policy: node_policy(stack, account),
                managed_policies: managed,
            }),
        );
        add(
            addr(INSTANCE_PROFILE),
            Spec::InstanceProfile(InstanceProfileSpec {
                name: Names::node_role(&stack.name),
                role: addr(ROLE),
            }),
        );
    }
    for r in stack.registry.iter() {
        for name in &r.repositories {
            add(
                repository_address(name),
                Spec::Repository(RepositorySpec {
                    name: name.clone(),
                    scan_on_push: r.scan_on_push,
                    immutable_tags: r.immutable_tags,
                    keep_images: r.keep_images,
                    force_delete: r.force_delete,
                }),
            );
        }
    }
}
