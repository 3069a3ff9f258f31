//! The stack file as written: TOML via serde, unknown keys rejected, spans kept for errors.
//! Numbers are read as i64 so that out-of-range values get our message, not a type error.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;
use toml::Spanned;

/// An infra stack file (stacks/<name>.toml): a Docker Swarm cluster on AWS.
/// Reference with comments: stacks/aws-example.toml.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(title = "infra stack file")]
#[serde(deny_unknown_fields)]
pub struct StackFile {
    /// Defaults to the AWS chain (`AWS_REGION`, profile).
    #[schemars(with = "Option<String>")]
    pub region: Option<Spanned<String>>,
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub vars: BTreeMap<String, Spanned<String>>,
    #[schemars(with = "NetworkFile")]
    pub network: Spanned<NetworkFile>,
    #[schemars(with = "NodesFile")]
    pub nodes: Spanned<NodesFile>,
    #[schemars(with = "LoadBalancerFile")]
    pub load_balancer: Spanned<LoadBalancerFile>,
    #[schemars(with = "Option<StateFile>")]
    pub state: Option<Spanned<StateFile>>,
    #[schemars(with = "Option<SshFile>")]
    pub ssh: Option<Spanned<SshFile>>,
    /// A bastion infra runs for you: the only instance with SSH open to `admin_cidrs`; the nodes
    /// accept SSH only from it, and infra jumps through it.
    #[schemars(with = "Option<BastionFile>")]
    pub bastion: Option<Spanned<BastionFile>>,
    pub swarm: Option<SwarmFile>,
    /// Private image repositories in the account's ECR registry, owned by the stack; the nodes
    /// may pull from them, and `{{ registry }}` names the registry in image references.
    #[schemars(with = "Option<RegistryFile>")]
    pub registry: Option<Spanned<RegistryFile>>,
    /// Where the services' logs go: `driver = "awslogs"` sends them to CloudWatch Logs, into a
    /// log group the stack owns (`/infra/<stack>`); `infra logs` reads them there.
    #[schemars(with = "Option<LoggingFile>")]
    pub logging: Option<Spanned<LoggingFile>>,
    /// Secrets the services use, by name: where each value comes from (never the value).
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, SecretFile>")]
    pub secrets: BTreeMap<String, Spanned<SecretFile>>,
    /// The services to run, by name; or `[swarm] compose_file` for a compose file of your own.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, ServiceFile>")]
    pub services: BTreeMap<String, Spanned<ServiceFile>>,
}

/// Where a secret's value comes from: exactly one of `env` and `file`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretFile {
    /// The environment variable holding the value.
    #[schemars(with = "Option<String>")]
    pub env: Option<Spanned<String>>,
    /// A file holding the value (relative to the stack file).
    #[schemars(with = "Option<String>")]
    pub file: Option<Spanned<String>>,
    /// Parameter Store tier: `standard` (the default; values up to 4 KB, free) or `advanced`
    /// (up to 8 KB, charged).
    #[schemars(with = "Option<String>")]
    pub tier: Option<Spanned<String>>,
}

/// One service, rendered into a compose file by templates/stack.yml.tera.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceFile {
    /// May use template variables, e.g. `registry/app:{{ tag }}`.
    #[schemars(with = "String")]
    pub image: Spanned<String>,
    /// The port published on the nodes (the load balancer's target port for the web service).
    #[schemars(with = "Option<i64>")]
    pub port: Option<Spanned<i64>>,
    /// The port the container listens on. Default: `port`.
    #[schemars(with = "Option<i64>")]
    pub target_port: Option<Spanned<i64>>,
    /// `ingress` (the routing mesh, default) or `host` (each node's own task).
    #[schemars(with = "Option<String>")]
    pub publish: Option<Spanned<String>>,
    /// `replicated` (default) or `global` (one task on every eligible node).
    #[schemars(with = "Option<String>")]
    pub mode: Option<Spanned<String>>,
    /// Tasks of a replicated service. Default: 2.
    #[schemars(with = "Option<i64>")]
    pub replicas: Option<Spanned<i64>>,
    /// Placement constraints, e.g. `node.role == worker`, `node.labels.infra.zone == eu-west-1a`.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub placement: Vec<Spanned<String>>,
    #[schemars(with = "Option<Vec<String>>")]
    pub command: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub env: BTreeMap<String, Spanned<String>>,
    /// Names from `[secrets]`, mounted at /run/secrets/<name>.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub secrets: Vec<Spanned<String>>,
    /// How long a task may take to stop before it is killed, e.g. `10s`.
    #[schemars(with = "Option<String>")]
    pub stop_grace_period: Option<Spanned<String>>,
    /// How long the service's HTTP server keeps an idle connection open (its keep-alive
    /// timeout), e.g. `75s`, when you know it: `infra doctor` checks it is longer than the load
    /// balancer's idle timeout. Kept as the service label `infra.keep-alive` (the label a
    /// compose file sets under `deploy.labels`).
    #[schemars(with = "Option<String>")]
    pub keep_alive: Option<Spanned<String>>,
    #[schemars(with = "Option<ServiceHealthFile>")]
    pub health_check: Option<Spanned<ServiceHealthFile>>,
    #[schemars(with = "Option<UpdateFile>")]
    pub update: Option<Spanned<UpdateFile>>,
}

/// The container health check Docker runs; a rolling update waits for it.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceHealthFile {
    /// A shell command; exit 0 means healthy.
    #[schemars(with = "String")]
    pub command: Spanned<String>,
    #[schemars(with = "Option<String>")]
    pub interval: Option<Spanned<String>>,
    #[schemars(with = "Option<String>")]
    pub timeout: Option<Spanned<String>>,
    #[schemars(with = "Option<i64>")]
    pub retries: Option<Spanned<i64>>,
    #[schemars(with = "Option<String>")]
    pub start_period: Option<Spanned<String>>,
    /// Time between checks during `start_period` (Docker Engine 25 and later): a new task is
    /// found healthy quickly while `interval` keeps a running one cheap.
    #[schemars(with = "Option<String>")]
    pub start_interval: Option<Spanned<String>>,
}

/// Rolling updates (also used for rollbacks).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateFile {
    /// `start-first` (default; `stop-first` for a global service published in host mode) or
    /// `stop-first`.
    #[schemars(with = "Option<String>")]
    pub order: Option<Spanned<String>>,
    /// Tasks updated at once. Default: 1.
    #[schemars(with = "Option<i64>")]
    pub parallelism: Option<Spanned<i64>>,
    /// Pause between batches. Default: 5s.
    #[schemars(with = "Option<String>")]
    pub delay: Option<Spanned<String>>,
    /// How long a new task is watched for failure. Default: 15s.
    #[schemars(with = "Option<String>")]
    pub monitor: Option<Spanned<String>>,
    /// `rollback` (default), `pause` or `continue`.
    #[schemars(with = "Option<String>")]
    pub failure_action: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SwarmFile {
    /// Run the Swarm on the nodes (default true); false provisions only the cloud half.
    pub enabled: Option<bool>,
    /// A compose file of your own instead of `[services]`, relative to the stack file; read as
    /// `docker stack deploy` reads it, `${VAR}` interpolated from `--var`, the environment and
    /// `[vars]` (see `crate::compose`).
    #[schemars(with = "Option<String>")]
    pub compose_file: Option<Spanned<String>>,
    /// `always` (default), `changed` or `never`: whether a deploy asks the registry for digests.
    #[schemars(with = "Option<String>")]
    pub resolve_image: Option<Spanned<String>>,
    /// How long apply waits for a deploy to converge, e.g. `5m` (default).
    #[schemars(with = "Option<String>")]
    pub converge_timeout: Option<Spanned<String>>,
}

/// How infra reaches the nodes: the system ssh, honouring your ssh config.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SshFile {
    /// Login user on the nodes. Default: the image's own (ec2-user on Amazon Linux, ubuntu on
    /// Ubuntu, admin on Debian); the user-data lets it use Docker.
    #[schemars(with = "Option<String>")]
    pub user: Option<Spanned<String>>,
    /// Private key to log in with. Default: your ssh agent and ssh config.
    #[schemars(with = "Option<String>")]
    pub identity_file: Option<Spanned<String>>,
    /// A bastion, `[user@]host[:port]`: nodes are then reached on their private addresses.
    #[schemars(with = "Option<String>")]
    pub jump_host: Option<Spanned<String>>,
    /// An ssh config file to include (ProxyJump, ProxyCommand, …). Default: ~/.ssh/config.
    #[schemars(with = "Option<String>")]
    pub config_file: Option<Spanned<String>>,
    /// How long a new node may take to boot until it answers over SSH with Docker running,
    /// like "10m" (the default) or "90s".
    #[schemars(with = "Option<String>")]
    pub ready_timeout: Option<Spanned<String>>,
}

/// `[bastion]`: a small instance in the first public subnet that infra jumps through to reach
/// the nodes (their SSH port is then open only to it).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BastionFile {
    /// Default `t3.micro`.
    #[schemars(with = "Option<String>")]
    pub instance_type: Option<Spanned<String>>,
    /// `ami-…` or `ssm:/path`. Default: the managers' image.
    #[schemars(with = "Option<String>")]
    pub ami: Option<Spanned<String>>,
}

/// Only the `[state]` table: for commands that need to find the state, not the whole stack.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct StateOnly {
    #[schemars(with = "Option<StateFile>")]
    pub state: Option<Spanned<StateFile>>,
    #[schemars(with = "Option<String>")]
    pub region: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StateFile {
    /// `local` (default: state/<stack>.json) or `s3`.
    #[schemars(with = "Option<String>")]
    pub backend: Option<Spanned<String>>,
    #[schemars(with = "Option<String>")]
    pub bucket: Option<Spanned<String>>,
    /// Default: `infra/<stack>.json`.
    #[schemars(with = "Option<String>")]
    pub key: Option<Spanned<String>>,
    /// The bucket's region, when it is not the stack's.
    #[schemars(with = "Option<String>")]
    pub region: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NetworkFile {
    #[schemars(with = "String")]
    pub cidr: Spanned<String>,
    #[schemars(with = "Vec<SubnetFile>")]
    pub subnets: Spanned<Vec<Spanned<SubnetFile>>>,
    #[schemars(with = "Option<Vec<String>>")]
    pub ingress_cidrs: Option<Vec<Spanned<String>>>,
    #[schemars(with = "Option<Vec<String>>")]
    pub admin_cidrs: Option<Vec<Spanned<String>>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubnetFile {
    #[schemars(with = "String")]
    pub zone: Spanned<String>,
    #[schemars(with = "String")]
    pub cidr: Spanned<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NodesFile {
    #[schemars(with = "String")]
    pub public_key_file: Spanned<String>,
    #[schemars(with = "Option<String>")]
    pub instance_type: Option<Spanned<String>>,
    #[schemars(with = "Option<String>")]
    pub ami: Option<Spanned<String>>,
    #[schemars(with = "Option<i64>")]
    pub root_volume_gb: Option<Spanned<i64>>,
    /// Managed IAM policy ARNs attached to the nodes' role, e.g.
    /// `["arn:aws:iam::aws:policy/CloudWatchAgentServerPolicy"]`.
    #[schemars(with = "Option<Vec<String>>")]
    pub iam_policies: Option<Vec<Spanned<String>>>,
    /// How many network hops the instance metadata service answers (1–64). Default: 1, so that
    /// containers (one hop further, behind Docker's bridge) cannot read the node's role.
    #[schemars(with = "Option<i64>")]
    pub metadata_hop_limit: Option<Spanned<i64>>,
    #[schemars(with = "PoolFile")]
    pub managers: Spanned<PoolFile>,
    #[schemars(with = "Option<PoolFile>")]
    pub workers: Option<Spanned<PoolFile>>,
}

/// `[logging]`: where the services' logs go.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoggingFile {
    /// `awslogs`: CloudWatch Logs, a stream per task in the stack's log group. (Without
    /// `[logging]`, Docker keeps the logs on each node.)
    #[schemars(with = "String")]
    pub driver: Spanned<String>,
    /// How many days CloudWatch keeps the lines: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365,
    /// 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653. Default: 30.
    #[schemars(with = "Option<i64>")]
    pub retention_days: Option<Spanned<i64>>,
}

/// `[registry]`: the stack's repositories in Amazon ECR.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegistryFile {
    /// Repository names, e.g. `["web", "worker"]` (lowercase; `/` makes namespaces).
    #[schemars(with = "Vec<String>")]
    pub repositories: Spanned<Vec<Spanned<String>>>,
    /// Scan each image for vulnerabilities when it is pushed. Default: true.
    pub scan_on_push: Option<bool>,
    /// Refuse a push over an existing tag. Default: false.
    pub immutable_tags: Option<bool>,
    /// The lifecycle policy keeps the newest this many images of each repository. Default: 100.
    #[schemars(with = "Option<i64>")]
    pub keep_images: Option<Spanned<i64>>,
    /// Let a removal (a repository taken out of the list, `infra destroy`) delete the images a
    /// repository still holds; apply it before the removal, as Terraform's `force_delete`.
    /// Default: false: a repository holding images is kept, and the plan says so.
    pub force_delete: Option<bool>,
    /// How often the managers renew the pull credentials Swarm keeps with each service whose
    /// image is in the registry, e.g. `1h` (the default), from 1m to 6h: ECR's tokens last 12
    /// hours, and a task started on any node pulls with the service's.
    #[schemars(with = "Option<String>")]
    pub credentials_refresh: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PoolFile {
    #[schemars(with = "i64")]
    pub count: Spanned<i64>,
    #[schemars(with = "Option<String>")]
    pub instance_type: Option<Spanned<String>>,
    /// `ami-…`, or `ssm:/path` to a public parameter holding the id.
    #[schemars(with = "Option<String>")]
    pub ami: Option<Spanned<String>>,
    #[schemars(with = "Option<i64>")]
    pub root_volume_gb: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoadBalancerFile {
    #[schemars(with = "Option<String>")]
    pub certificate_arn: Option<Spanned<String>>,
    #[schemars(with = "Option<String>")]
    pub tls_policy: Option<Spanned<String>>,
    #[schemars(with = "i64")]
    pub target_port: Spanned<i64>,
    #[schemars(with = "Option<i64>")]
    pub deregistration_delay: Option<Spanned<i64>>,
    #[schemars(with = "Option<HealthCheckFile>")]
    pub health_check: Option<Spanned<HealthCheckFile>>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckFile {
    #[schemars(with = "Option<String>")]
    pub path: Option<Spanned<String>>,
    #[schemars(with = "Option<String>")]
    pub matcher: Option<Spanned<String>>,
    #[schemars(with = "Option<i64>")]
    pub interval: Option<Spanned<i64>>,
    #[schemars(with = "Option<i64>")]
    pub timeout: Option<Spanned<i64>>,
    #[schemars(with = "Option<i64>")]
    pub healthy_threshold: Option<Spanned<i64>>,
    #[schemars(with = "Option<i64>")]
    pub unhealthy_threshold: Option<Spanned<i64>>,
}
