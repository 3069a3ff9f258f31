//! The stack file as written: TOML via serde, unknown keys rejected, spans kept for errors.
//! Numbers are read as i64 so that out-of-range values get our message, not a type error.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StackFile {
    /// Defaults to the AWS chain (`AWS_REGION`, profile).
    pub region: Option<Spanned<String>>,
    #[serde(default)]
    pub vars: BTreeMap<String, Spanned<String>>,
    pub network: Spanned<NetworkFile>,
    pub nodes: Spanned<NodesFile>,
    pub load_balancer: Spanned<LoadBalancerFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkFile {
    pub cidr: Spanned<String>,
    pub subnets: Spanned<Vec<Spanned<SubnetFile>>>,
    pub ingress_cidrs: Option<Vec<Spanned<String>>>,
    pub admin_cidrs: Option<Vec<Spanned<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubnetFile {
    pub zone: Spanned<String>,
    pub cidr: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodesFile {
    pub public_key_file: Spanned<String>,
    pub instance_type: Option<Spanned<String>>,
    pub ami: Option<Spanned<String>>,
    pub root_volume_gb: Option<Spanned<i64>>,
    pub managers: Spanned<PoolFile>,
    pub workers: Option<Spanned<PoolFile>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolFile {
    pub count: Spanned<i64>,
    pub instance_type: Option<Spanned<String>>,
    /// `ami-…`, or `ssm:/path` to a public parameter holding the id.
    pub ami: Option<Spanned<String>>,
    pub root_volume_gb: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadBalancerFile {
    pub certificate_arn: Option<Spanned<String>>,
    pub tls_policy: Option<Spanned<String>>,
    pub target_port: Spanned<i64>,
    pub deregistration_delay: Option<Spanned<i64>>,
    pub health_check: Option<Spanned<HealthCheckFile>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckFile {
    pub path: Option<Spanned<String>>,
    pub matcher: Option<Spanned<String>>,
    pub interval: Option<Spanned<i64>>,
    pub timeout: Option<Spanned<i64>>,
    pub healthy_threshold: Option<Spanned<i64>>,
    pub unhealthy_threshold: Option<Spanned<i64>>,
}
