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
    /// Whether infra runs the Swarm on the nodes (`[swarm] enabled`), or only the cloud half.
    pub swarm: bool,
}

/// How the nodes are reached over SSH.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SshSettings {
    pub user: String,
    pub identity_file: Option<std::path::PathBuf>,
    pub jump_host: Option<String>,
    pub config_file: Option<std::path::PathBuf>,
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
}

impl Role {
    pub fn pool(self) -> &'static str {
        match self {
            Role::Manager => "manager",
            Role::Worker => "worker",
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
