use std::collections::BTreeMap;

use ipnet::Ipv4Net;

/// A validated stack: everything the stack file says, with defaults filled in.
#[derive(Clone, Debug, PartialEq)]
pub struct Stack {
    pub name: String,
    pub region: Option<String>,
    pub network: Network,
    pub managers: NodePool,
    pub workers: NodePool,
    pub public_key: String,
    pub load_balancer: LoadBalancer,
    pub state: StateLocation,
    pub ssh: SshSettings,
    /// `[bastion]`: one instance (`node.bastion[0]`) infra reaches the nodes through.
    pub bastion: Option<NodePool>,
    /// Whether infra runs the Swarm on the nodes (`[swarm] enabled`), or only the cloud half.
    pub swarm: bool,
    /// What runs on the Swarm: secrets and services.
    pub apps: Apps,
    /// `[registry]`: the stack's image repositories in ECR.
    pub registry: Option<Registry>,
    /// `[logging]`: the services' logs go to the stack's log group in CloudWatch Logs.
    pub logging: Option<Logging>,
    /// The nodes' identity: the IAM policies attached to their role, and how far metadata
    /// answers reach.
    pub node_access: NodeAccess,
}

/// `[logging] driver = "awslogs"`: every service's logs go to CloudWatch Logs, into the stack's
/// log group ([`Stack::log_group`]), a stream per task; the nodes' role may write there.
#[derive(Clone, Debug, PartialEq)]
pub struct Logging {
    /// How long CloudWatch keeps the lines, in days (one of the values it takes).
    pub retention_days: u32,
}

/// `[registry]`: private repositories in the account's ECR registry that the stack owns and
/// its nodes may pull from.
#[derive(Clone, Debug, PartialEq)]
pub struct Registry {
    /// Repository names, as ECR takes them (`web`, `team/web`).
    pub repositories: Vec<String>,
    pub scan_on_push: bool,
    pub immutable_tags: bool,
    /// The lifecycle policy keeps the newest this many images.
    pub keep_images: u32,
    /// Removing a repository that holds images deletes them too.
    pub force_delete: bool,
    /// How often (seconds) the managers renew the pull credentials Swarm stores with each
    /// service whose image is in the registry (ECR tokens last 12 hours).
    pub credentials_refresh_secs: u64,
}

/// What the nodes may do in AWS and who may ask their metadata service.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeAccess {
    /// Managed policy ARNs attached to the nodes' role (`[nodes] iam_policies`).
    pub iam_policies: Vec<String>,
    /// The instance metadata service's response hop limit (`[nodes] metadata_hop_limit`).
    pub metadata_hop_limit: u8,
}

impl Default for NodeAccess {
    fn default() -> Self {
        NodeAccess {
            iam_policies: Vec::new(),
            metadata_hop_limit: 1,
        }
    }
}

impl Stack {
    /// Whether the nodes need an IAM identity: a feature gives them rights (pulling from the
    /// stack's repositories, writing its log group), or the user attaches policies.
    pub fn nodes_need_role(&self) -> bool {
        self.registry.is_some()
            || self.logging.is_some()
            || !self.node_access.iam_policies.is_empty()
    }

    /// The stack's log group in CloudWatch Logs: `/infra/<stack>`.
    pub fn log_group(&self) -> String {
        format!("/infra/{}", self.name)
    }
}

/// The application half of a stack: secrets and services.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Apps {
    pub secrets: Vec<SecretSource>,
    /// From `[services]`; rendered into a compose file by templates/stack.yml.tera.
    pub services: Vec<Service>,
    /// The user's own compose file, as read.
    pub compose: Option<ComposeFile>,
    pub deploy: DeploySettings,
}

/// How services are deployed; carried in plans, since apply never reads the stack file.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeploySettings {
    /// `always`, `changed` or `never` (`docker stack deploy --resolve-image`).
    pub resolve_image: String,
    /// How long apply waits for one service to converge, in seconds.
    pub converge_timeout_secs: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ComposeFile {
    /// As the stack file names it (relative to the stack file), for messages.
    pub path: String,
    pub text: String,
    /// The stack's `[vars]`, `INFRA_VAR_*` and `--var`, for interpolation.
    pub vars: Vars,
    /// Which of `vars` came from `--var` or `INFRA_VAR_*` (they win over the environment).
    pub overridden: Vec<String>,
}

/// Docker and Parameter Store names infra makes from the stack's secret names: a lowercase
/// letter, then lowercase letters, digits, `-` and `_`; at most 40 characters.
pub fn valid_object_name(name: &str) -> bool {
    name.len() <= 40
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// A secret's name and where its value is read from. The value itself is never in the model.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SecretSource {
    pub name: String,
    pub source: ValueSource,
    /// Kept in Parameter Store's advanced tier (values up to 8 KB instead of 4 KB).
    #[serde(default)]
    pub advanced: bool,
}

impl SecretSource {
    /// The largest value Parameter Store keeps in the secret's tier, in bytes ("Parameter
    /// tiers", docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-advanced-parameters.html).
    pub fn max_bytes(&self) -> usize {
        if self.advanced { 8192 } else { 4096 }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueSource {
    Env(String),
    File(std::path::PathBuf),
}

impl std::fmt::Display for ValueSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ValueSource::Env(v) => write!(f, "environment variable {v}"),
            ValueSource::File(p) => write!(f, "file {}", p.display()),
        }
    }
}

/// One service of `[services]`, with defaults filled in; the context of templates/stack.yml.tera.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Service {
    pub name: String,
    pub image: String,
    pub port: Option<u16>,
    pub target_port: Option<u16>,
    /// `ingress` or `host`.
    pub publish: String,
    /// `replicated` or `global`.
    pub mode: String,
    pub replicas: u32,
    pub placement: Vec<String>,
    pub command: Option<Vec<String>>,
    pub env: BTreeMap<String, String>,
    pub secrets: Vec<String>,
    pub stop_grace_period: Option<String>,
    /// The HTTP keep-alive timeout the user says the service has (`keep_alive`), a Go duration.
    pub keep_alive: Option<String>,
    pub health_check: Option<ServiceHealth>,
    pub update: UpdatePolicy,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ServiceHealth {
    pub command: String,
    pub interval: String,
    pub timeout: String,
    pub retries: u32,
    pub start_period: String,
    /// Docker's `--health-start-interval` (Engine 25+); None leaves Docker's default (5 s).
    pub start_interval: Option<String>,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct UpdatePolicy {
    pub order: String,
    pub parallelism: u32,
    pub delay: String,
    pub monitor: String,
    pub failure_action: String,
}

/// How the nodes are reached over SSH.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SshSettings {
    /// `[ssh] user`; None: each node's image decides (`image_users`).
    pub user: Option<String>,
    pub identity_file: Option<std::path::PathBuf>,
    pub jump_host: Option<String>,
    pub config_file: Option<std::path::PathBuf>,
    /// How long a new node may take to answer over SSH with Docker running; None: 10 minutes.
    pub ready_timeout_secs: Option<u64>,
    /// The login user of each image the nodes run or will run (`ami-…` → `ec2-user`), found
    /// at plan time from the images' names (see [`super::image::login_user`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub image_users: BTreeMap<String, String>,
}

impl SshSettings {
    pub fn ready_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.ready_timeout_secs.unwrap_or(600))
    }

    /// Who logs in to a node running `ami`: `[ssh] user`, else the image's own user, else
    /// `ubuntu` (the default image's).
    pub fn user_for(&self, ami: &str) -> &str {
        self.user
            .as_deref()
            .or(self.image_users.get(ami).map(String::as_str))
            .unwrap_or("ubuntu")
    }
}

/// Where the stack's state lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StateLocation {
    /// `state/<stack>.json` beside the stack files.
    Local,
    /// An S3 object; the lock is `<key>.lock`, the previous version `<key>.backup`.
    S3 {
        bucket: String,
        key: String,
        region: Option<String>,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Network {
    pub cidr: Ipv4Net,
    pub subnets: Vec<Subnet>,
    pub ingress_cidrs: Vec<Ipv4Net>,
    pub admin_cidrs: Vec<Ipv4Net>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Subnet {
    pub zone: String,
    pub cidr: Ipv4Net,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Manager,
    Worker,
    /// Not a Swarm member: the instance infra jumps through (`[bastion]`).
    Bastion,
}

impl Role {
    pub fn pool(self) -> &'static str {
        match self {
            Role::Manager => "manager",
            Role::Worker => "worker",
            Role::Bastion => "bastion",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct NodePool {
    pub role: Role,
    pub count: usize,
    pub instance_type: String,
    pub ami: AmiSource,
    pub root_volume_gb: u32,
}

/// Where the machine image comes from: a fixed id, or a public SSM parameter resolved at plan time.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum AmiSource {
    Id(String),
    SsmParameter(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct LoadBalancer {
    pub certificate_arn: String,
    pub tls_policy: String,
    /// The port the Swarm publishes on every node; the target group forwards to it.
    pub target_port: u16,
    pub deregistration_delay: u32,
    pub health_check: HealthCheck,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HealthCheck {
    pub path: String,
    pub matcher: String,
    pub interval: u32,
    pub timeout: u32,
    pub healthy_threshold: u32,
    pub unhealthy_threshold: u32,
}

/// Template variables: declared defaults from `[vars]`, overridden by `--var`.
pub type Vars = BTreeMap<String, String>;

pub const DEFAULT_TLS_POLICY: &str = "ELBSecurityPolicy-TLS13-1-2-2021-06";

/// Ubuntu 24.04 LTS, the default image when a pool names none.
pub const DEFAULT_AMI_PARAMETER: &str =
    "/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id";
