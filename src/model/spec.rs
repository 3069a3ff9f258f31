//! What one AWS object should look like. References to other objects are addresses, never ids:
//! desired and live specs are compared in address space, and ids are resolved only at apply time.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Address, HealthCheck};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Spec {
    Vpc(VpcSpec),
    Subnet(SubnetSpec),
    InternetGateway(InternetGatewaySpec),
    RouteTable(RouteTableSpec),
    SecurityGroup(SecurityGroupSpec),
    KeyPair(KeyPairSpec),
    Instance(InstanceSpec),
    LoadBalancer(LoadBalancerSpec),
    TargetGroup(TargetGroupSpec),
    Listener(ListenerSpec),
    Targets(TargetsSpec),
    SwarmNode(SwarmNodeSpec),
    Secret(SecretSpec),
    SwarmSecret(SwarmSecretSpec),
    SwarmNetwork(SwarmNetworkSpec),
    SwarmConfig(SwarmConfigSpec),
    Service(ServiceSpec),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VpcSpec {
    pub cidr: String,
    pub dns_hostnames: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubnetSpec {
    pub vpc: Address,
    pub cidr: String,
    pub zone: String,
    pub map_public_ip: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InternetGatewaySpec {
    /// The VPC it is attached to (attach/detach is an in-place change).
    pub vpc: Option<Address>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RouteTableSpec {
    pub vpc: Address,
    /// Target of the 0.0.0.0/0 route.
    pub default_route: Option<Address>,
    pub subnets: Vec<Address>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SecurityGroupSpec {
    pub name: String,
    pub description: String,
    pub vpc: Address,
    pub ingress: Vec<Rule>,
}

/// An ingress rule; serialized as its readable form, e.g. `tcp/443 from 0.0.0.0/0`, or
/// `esp from sg.node` for IP protocol 50 (which has no ports).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rule {
    /// `tcp`, `udp` or `-1` (all).
    pub protocol: String,
    pub from_port: u16,
    pub to_port: u16,
    pub source: Source,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    Cidr(String),
    Group(Address),
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ports = if self.from_port == self.to_port {
            self.from_port.to_string()
        } else {
            format!("{}-{}", self.from_port, self.to_port)
        };
        let source = match &self.source {
            Source::Cidr(c) => c.clone(),
            Source::Group(a) => a.to_string(),
        };
        match self.protocol.as_str() {
            "tcp" | "udp" => write!(f, "{}/{} from {}", self.protocol, ports, source),
            // IP protocol 50; other protocols have no ports.
            "50" => write!(f, "esp from {source}"),
            other => write!(f, "{other} from {source}"),
        }
    }
}

impl std::str::FromStr for Rule {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("not a rule: {s:?} (expected like tcp/443 from 0.0.0.0/0)");
        let (proto_ports, source) = s.split_once(" from ").ok_or_else(bad)?;
        let (protocol, ports) = match proto_ports.split_once('/') {
            Some(pp) => pp,
            None if proto_ports == "esp" => ("50", "0"),
            None => (proto_ports, "0"),
        };
        let (from, to) = ports.split_once('-').unwrap_or((ports, ports));
        let source = if source.parse::<ipnet::Ipv4Net>().is_ok() {
            Source::Cidr(source.to_string())
        } else {
            Source::Group(Address::new(source))
        };
        Ok(Rule {
            protocol: protocol.to_string(),
            from_port: from.parse().map_err(|_| bad())?,
            to_port: to.parse().map_err(|_| bad())?,
            source,
        })
    }
}

impl Serialize for Rule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Rule {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeyPairSpec {
    pub name: String,
    /// Compared instead of the key itself: AWS cannot give the key back.
    pub public_key_sha256: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub public_key: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstanceSpec {
    pub pool: String,
    pub instance_type: String,
    pub ami: String,
    pub subnet: Address,
    pub security_groups: Vec<Address>,
    pub key_pair: Address,
    pub root_volume_gb: u32,
    pub imdsv2_required: bool,
    pub user_data_sha256: String,
    /// The rendered script; kept in plans (apply needs it) but not compared or shown.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user_data: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoadBalancerSpec {
    pub name: String,
    pub subnets: Vec<Address>,
    pub security_groups: Vec<Address>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TargetGroupSpec {
    pub name: String,
    pub vpc: Address,
    pub port: u16,
    pub health_check: HealthCheck,
    pub deregistration_delay: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ListenerSpec {
    pub load_balancer: Address,
    pub port: u16,
    pub protocol: String,
    pub certificate_arn: Option<String>,
    pub ssl_policy: Option<String>,
    pub action: ListenerAction,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListenerAction {
    Forward { target_group: Address },
    RedirectHttps { port: u16 },
}

/// The instances registered in a target group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TargetsSpec {
    pub target_group: Address,
    pub instances: Vec<Address>,
    /// What apply waits for once they are registered (see `model::targets::serving`); a
    /// judgement of the plan, not compared.
    #[serde(default)]
    pub health: HealthWait,
}

/// What apply waits for after registering targets, bounded in time.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthWait {
    /// Every newly registered target passes the target group's health check.
    #[default]
    All,
    /// At least this many registered targets are healthy (a replicated service published on
    /// its nodes' own port runs on only some of them).
    AtLeast(usize),
    /// Nothing: no node serves the target port; why.
    Skip(String),
}

/// A node's membership of the Swarm. Joining is creating it; a rejoin replaces it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SwarmNodeSpec {
    /// The instance this member runs on.
    pub instance: Address,
    /// `manager` or `worker`.
    pub role: String,
    /// `active`, `pause` or `drain`.
    pub availability: String,
    /// `ready` when it is a working member; anything else (`down`) means it must rejoin.
    pub state: String,
    pub labels: std::collections::BTreeMap<String, String>,
}

/// A secret's value in Parameter Store (SecureString). Only a keyed hash of the value is
/// compared, shown (masked) and kept: the value itself is read from its source at apply time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SecretSpec {
    pub parameter: String,
    /// `hmac-sha256:<hex>` of the value, keyed with the stack's hashing key.
    pub value: String,
    /// Where apply reads the value (`env:NAME` or `file:/path`); not compared.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
    /// Parameter Store's advanced tier; not compared (Parameter Store lists values without it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub advanced: bool,
}

/// A Swarm secret, named after its secret and a short keyed hash of the content: a new value is
/// a new Swarm secret, and services roll onto it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SwarmSecretSpec {
    pub name: String,
    /// The Parameter Store secret it is made from.
    pub secret: Address,
}

/// An overlay network of the stack's compose file, created by infra (`docker network create`)
/// so that it is a plan object; Docker cannot change a network in place.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SwarmNetworkSpec {
    /// `<stack>_<key>`, or the file's `name:`.
    pub name: String,
    pub driver: String,
    pub attachable: bool,
    pub internal: bool,
    /// IPsec between nodes (`driver_opts: encrypted`).
    pub encrypted: bool,
    /// Hash of the whole definition (options, labels, subnets): any other change shows here.
    pub definition_sha256: String,
    /// `docker network create` flags; kept in plans (apply needs them) but not compared.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub create_args: Vec<String>,
}

/// A config of the stack's compose file, read from a file on the user's side and named after its
/// key and a hash of its content: new content is a new config, and services roll onto it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SwarmConfigSpec {
    pub name: String,
    pub content_sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_driver: Option<String>,
    /// The content; kept in plans (apply needs it) but not compared.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub content: String,
}

/// A Swarm service, deployed with `docker stack deploy`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceSpec {
    pub image: String,
    /// `global` or `replicated N`.
    pub mode: String,
    pub ports: Vec<String>,
    pub secrets: Vec<Address>,
    /// The networks and configs infra created that it uses.
    #[serde(default)]
    pub networks: Vec<Address>,
    #[serde(default)]
    pub configs: Vec<Address>,
    /// Hash of the whole compose definition: any other change shows here.
    pub definition_sha256: String,
    /// The compose document to deploy; kept in plans (apply needs it) but not compared.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub definition: String,
}

/// The one field whose values are never shown, even as hashes.
pub const SENSITIVE_FIELD: (&str, &str) = ("secret", "value");

impl Spec {
    pub fn kind(&self) -> &'static str {
        match self {
            Spec::Vpc(_) => "vpc",
            Spec::Subnet(_) => "subnet",
            Spec::InternetGateway(_) => "internet_gateway",
            Spec::RouteTable(_) => "route_table",
            Spec::SecurityGroup(_) => "security_group",
            Spec::KeyPair(_) => "key_pair",
            Spec::Instance(_) => "instance",
            Spec::LoadBalancer(_) => "load_balancer",
            Spec::TargetGroup(_) => "target_group",
            Spec::Listener(_) => "listener",
            Spec::Targets(_) => "targets",
            Spec::SwarmNode(_) => "swarm_node",
            Spec::Secret(_) => "secret",
            Spec::SwarmSecret(_) => "swarm_secret",
            Spec::SwarmNetwork(_) => "swarm_network",
            Spec::SwarmConfig(_) => "swarm_config",
            Spec::Service(_) => "service",
        }
    }

    /// Objects that live on the Swarm (apply reaches them over SSH through a manager).
    pub fn on_swarm(&self) -> bool {
        matches!(
            self,
            Spec::SwarmNode(_)
                | Spec::SwarmSecret(_)
                | Spec::SwarmNetwork(_)
                | Spec::SwarmConfig(_)
                | Spec::Service(_)
        )
    }

    /// Fields whose change cannot be made in place: the object is replaced.
    pub fn replace_fields(&self) -> &'static [&'static str] {
        match self {
            Spec::Vpc(_) => &["cidr"],
            Spec::Subnet(_) => &["vpc", "cidr", "zone"],
            Spec::InternetGateway(_) => &[],
            Spec::RouteTable(_) => &["vpc"],
            Spec::SecurityGroup(_) => &["name", "description", "vpc"],
            Spec::KeyPair(_) => &["name", "public_key_sha256"],
            Spec::Instance(_) => &[
                "pool",
                "instance_type",
                "ami",
                "subnet",
                "key_pair",
                "root_volume_gb",
                "imdsv2_required",
                "user_data_sha256",
            ],
            Spec::LoadBalancer(_) => &["name"],
            Spec::TargetGroup(_) => &["name", "vpc", "port"],
            // Its action (which target group it forwards to) changes in place: ModifyListener.
            Spec::Listener(_) => &["load_balancer", "port"],
            Spec::Targets(_) => &["target_group"],
            Spec::SwarmNode(_) => &["instance", "state"],
            Spec::Secret(_) => &["parameter"],
            Spec::SwarmSecret(_) => &["name", "secret"],
            Spec::SwarmNetwork(_) => &[
                "name",
                "driver",
                "attachable",
                "internal",
                "encrypted",
                "definition_sha256",
            ],
            Spec::SwarmConfig(_) => &["name", "content_sha256", "template_driver"],
            Spec::Service(_) => &[],
        }
    }

    /// Every address this object refers to: it must exist first and be removed last.
    pub fn references(&self) -> Vec<&Address> {
        match self {
            Spec::Vpc(_) => vec![],
            Spec::Subnet(s) => vec![&s.vpc],
            Spec::InternetGateway(g) => g.vpc.iter().collect(),
            Spec::RouteTable(r) => [&r.vpc]
                .into_iter()
                .chain(&r.default_route)
                .chain(&r.subnets)
                .collect(),
            Spec::SecurityGroup(g) => {
                let groups = g.ingress.iter().filter_map(|r| match &r.source {
                    Source::Group(a) => Some(a),
                    Source::Cidr(_) => None,
                });
                [&g.vpc].into_iter().chain(groups).collect()
            }
            Spec::KeyPair(_) => vec![],
            Spec::Instance(i) => [&i.subnet, &i.key_pair]
                .into_iter()
                .chain(&i.security_groups)
                .collect(),
            Spec::LoadBalancer(l) => l.subnets.iter().chain(&l.security_groups).collect(),
            Spec::TargetGroup(t) => vec![&t.vpc],
            Spec::Listener(l) => {
                let mut refs = vec![&l.load_balancer];
                if let ListenerAction::Forward { target_group } = &l.action {
                    refs.push(target_group);
                }
                refs
            }
            Spec::Targets(t) => [&t.target_group].into_iter().chain(&t.instances).collect(),
            Spec::SwarmNode(n) => vec![&n.instance],
            Spec::Secret(_) => vec![],
            Spec::SwarmSecret(s) => vec![&s.secret],
            Spec::SwarmNetwork(_) | Spec::SwarmConfig(_) => vec![],
            Spec::Service(s) => s
                .secrets
                .iter()
                .chain(&s.networks)
                .chain(&s.configs)
                .collect(),
        }
    }

    /// The fields that are compared and shown, as JSON values in declaration order.
    /// Bulky inputs that are represented by a hash (user-data, public key, compose definition),
    /// where a secret comes from and what apply waits for are left out.
    pub fn attributes(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut value = serde_json::to_value(self).expect("specs serialize");
        let map = value.as_object_mut().expect("specs are objects");
        map.shift_remove("type");
        map.shift_remove("user_data");
        map.shift_remove("public_key");
        map.shift_remove("source");
        map.shift_remove("definition");
        map.shift_remove("content");
        map.shift_remove("create_args");
        map.shift_remove("health");
        map.shift_remove("advanced");
        std::mem::take(map)
    }
}
