//! The nodes' identity (`iam.role.nodes`, `iam.instance_profile.nodes`), the stack's image
//! repositories (`ecr.repository.<name>`) and its log group (`logs.group`), with the policy
//! documents they carry.

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

    /// A log group's ARN: `arn:aws:logs:us-east-1:123456789012:log-group:/infra/sandbox`.
    pub fn log_group_arn(&self, name: &str) -> String {
        format!(
            "arn:{}:logs:{}:{}:log-group:{name}",
            self.partition, self.region, self.id
        )
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
pub const LOG_GROUP: &str = "logs.group";

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
///
/// Docker's `awslogs` driver (the daemon, with the node's role) takes `logs:CreateLogStream` and
/// `logs:PutLogEvents` on the group it writes to, the stack's; it never creates the group.
/// https://docs.docker.com/engine/logging/drivers/awslogs/#credentials
pub fn node_policy(stack: &Stack, account: Option<&Account>) -> String {
    let Some(account) = account else {
        return String::new();
    };
    let mut statements = Vec::new();
    if let Some(registry) = &stack.registry {
        let repositories: Vec<String> = registry
            .repositories
            .iter()
            .map(|r| account.repository_arn(r))
            .collect();
        statements.push(json!({
            "Sid": "RegistryToken",
            "Effect": "Allow",
            "Action": "ecr:GetAuthorizationToken",
            "Resource": "*"
        }));
        statements.push(json!({
            "Sid": "PullStackImages",
            "Effect": "Allow",
            "Action": [
                "ecr:BatchCheckLayerAvailability",
                "ecr:BatchGetImage",
                "ecr:GetDownloadUrlForLayer"
            ],
            "Resource": repositories
        }));
    }
    if stack.logging.is_some() {
        statements.push(json!({
            "Sid": "WriteStackLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": format!("{}:*", account.log_group_arn(&stack.log_group()))
        }));
    }
    if statements.is_empty() {
        return String::new();
    }
    json!({ "Version": "2012-10-17", "Statement": statements }).to_string()
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
    if let Some(logging) = &stack.logging {
        add(
            addr(LOG_GROUP),
            Spec::LogGroup(LogGroupSpec {
                name: stack.log_group(),
                retention_days: logging.retention_days,
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
