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
    pub swarm: Option<SwarmFile>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SwarmFile {
    /// Run the Swarm on the nodes (default true); false provisions only the cloud half.
    pub enabled: Option<bool>,
}

/// How infra reaches the nodes: the system ssh, honouring your ssh config.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SshFile {
    /// Login user on the nodes. Default: ubuntu.
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
    #[schemars(with = "PoolFile")]
    pub managers: Spanned<PoolFile>,
    #[schemars(with = "Option<PoolFile>")]
    pub workers: Option<Spanned<PoolFile>>,
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
