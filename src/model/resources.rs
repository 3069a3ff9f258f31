//! Expands a stack into the list of AWS objects it needs.

use sha2::{Digest, Sha256};

use super::*;

/// One object the stack should have.
#[derive(Clone, Debug, PartialEq)]
pub struct Resource {
    pub address: Address,
    pub spec: Spec,
}

/// What the stack file does not say but the expansion needs: inputs resolved or rendered outside
/// this pure module (AMI ids from SSM, user-data from templates).
pub struct Inputs {
    pub manager_ami: String,
    pub worker_ami: String,
    pub manager_user_data: String,
    pub worker_user_data: String,
    /// With `[bastion]`: its image and user-data.
    pub bastion: Option<(String, String)>,
}

/// Deterministic AWS names, so the load balancer and target group can be found by name
/// (ELBv2 has no tag filter) and a retried create cannot make a second one.
pub struct Names;

impl Names {
    pub fn load_balancer(stack: &str) -> String {
        format!("infra-{stack}")
    }
    /// One target group a target port: a new port is a new group (its name may not be the
    /// old one's), so the listener can switch to it once it is healthy. 32 characters at most:
    /// stack names have 20 (`MAX_NAME_LEN`), ports 5 digits.
    pub fn target_group(stack: &str, port: u16) -> String {
        format!("infra-{stack}-{port}")
    }

    /// The port of a target group of `stack` named by [`Names::target_group`].
    pub fn target_group_port(stack: &str, name: &str) -> Option<u16> {
        let port = name.strip_prefix(&format!("infra-{stack}-"))?;
        port.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| port.parse().ok())?
    }
    pub fn key_pair(stack: &str) -> String {
        format!("infra-{stack}")
    }
    pub fn security_group(stack: &str, role: &str) -> String {
        format!("infra-{stack}-{role}")
    }
}

pub fn sha256_hex(data: &str) -> String {
    hex::encode(Sha256::digest(data.as_bytes()))
}

/// `hmac-sha256:<hex>` of a secret value, keyed with the stack's hashing key.
pub fn value_hmac(key: &str, value: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("any key length");
    mac.update(value.as_bytes());
    format!("hmac-sha256:{}", hex::encode(mac.finalize().into_bytes()))
}

pub fn addr(s: &str) -> Address {
    Address::new(s)
}

pub fn expand(stack: &Stack, inputs: &Inputs) -> Vec<Resource> {
    let mut out = Vec::new();
    let mut add = |address: Address, spec: Spec| out.push(Resource { address, spec });
    let vpc = addr("vpc");
    add(
        vpc.clone(),
        Spec::Vpc(VpcSpec {
            cidr: stack.network.cidr.to_string(),
            dns_hostnames: true,
        }),
    );

    let subnets: Vec<Address> = (0..stack.network.subnets.len())
        .map(|i| Address::indexed("subnet", i))
        .collect();
    for (address, subnet) in subnets.iter().zip(&stack.network.subnets) {
        add(
            address.clone(),
            Spec::Subnet(SubnetSpec {
                vpc: vpc.clone(),
                cidr: subnet.cidr.to_string(),
                zone: subnet.zone.clone(),
                map_public_ip: true,
            }),
        );
    }
    add(
        addr("igw"),
        Spec::InternetGateway(InternetGatewaySpec {
            vpc: Some(vpc.clone()),
        }),
    );
    add(
        addr("route_table"),
        Spec::RouteTable(RouteTableSpec {
            vpc: vpc.clone(),
            default_route: Some(addr("igw")),
            subnets: subnets.clone(),
        }),
    );

    let (sg_lb, sg_node) = (addr("sg.lb"), addr("sg.node"));
    let tcp = |port: u16, source: Source| Rule {
        protocol: "tcp".into(),
        from_port: port,
        to_port: port,
        source,
    };
    let cidrs = |list: &[ipnet::Ipv4Net]| {
        list.iter()
            .map(|c| Source::Cidr(c.to_string()))
            .collect::<Vec<_>>()
    };
    let mut lb_rules: Vec<Rule> = cidrs(&stack.network.ingress_cidrs)
        .into_iter()
        .flat_map(|s| [tcp(80, s.clone()), tcp(443, s)])
        .collect();
    lb_rules.sort();
    add(
        sg_lb.clone(),
        Spec::SecurityGroup(SecurityGroupSpec {
            name: Names::security_group(&stack.name, "lb"),
            description: format!("infra {}: load balancer", stack.name),
            vpc: vpc.clone(),
            ingress: lb_rules,
        }),
    );
    let own = || Source::Group(sg_node.clone());
    let mut node_rules = vec![
        tcp(
            stack.load_balancer.target_port,
            Source::Group(sg_lb.clone()),
        ),
        tcp(2377, own()),
        tcp(7946, own()),
        Rule {
            protocol: "udp".into(),
            from_port: 7946,
            to_port: 7946,
            source: own(),
        },
        Rule {
            protocol: "udp".into(),
            from_port: 4789,
            to_port: 4789,
            source: own(),
        },
        // IPsec ESP, which encrypted overlay networks (`driver_opts: encrypted`) carry their
        // traffic in; allowed always, so that adding such a network never needs a group change.
        // https://docs.docker.com/engine/network/drivers/overlay/#encrypt-traffic-on-an-overlay-network
        Rule {
            protocol: ESP.into(),
            from_port: 0,
            to_port: 0,
            source: own(),
        },
    ];
    // SSH: from admin_cidrs, or with a bastion only from the bastion, which admin_cidrs reach.
    let sg_bastion = addr("sg.bastion");
    let admin: Vec<Rule> = cidrs(&stack.network.admin_cidrs)
        .into_iter()
        .map(|s| tcp(22, s))
        .collect();
    if stack.bastion.is_some() {
        node_rules.push(tcp(22, Source::Group(sg_bastion.clone())));
        add(
            sg_bastion.clone(),
            Spec::SecurityGroup(SecurityGroupSpec {
                name: Names::security_group(&stack.name, "bastion"),
                description: format!("infra {}: bastion", stack.name),
                vpc: vpc.clone(),
                ingress: admin,
            }),
        );
    } else {
        node_rules.extend(admin);
    }
    node_rules.sort();
    add(
        sg_node.clone(),
        Spec::SecurityGroup(SecurityGroupSpec {
            name: Names::security_group(&stack.name, "node"),
            description: format!("infra {}: swarm nodes", stack.name),
            vpc: vpc.clone(),
            ingress: node_rules,
        }),
    );

    let key = addr("key_pair");
    add(
        key.clone(),
        Spec::KeyPair(KeyPairSpec {
            name: Names::key_pair(&stack.name),
            public_key_sha256: sha256_hex(&stack.public_key),
            public_key: stack.public_key.clone(),
        }),
    );

    if let (Some(pool), Some((ami, user_data))) = (&stack.bastion, &inputs.bastion) {
        add(
            Address::node(pool.role.pool(), 0),
            Spec::Instance(InstanceSpec {
                pool: pool.role.pool().into(),
                instance_type: pool.instance_type.clone(),
                ami: ami.clone(),
                subnet: subnets[0].clone(),
                security_groups: vec![sg_bastion],
                key_pair: key.clone(),
                root_volume_gb: pool.root_volume_gb,
                imdsv2_required: true,
                user_data_sha256: sha256_hex(user_data),
                user_data: user_data.clone(),
            }),
        );
    }

    let mut nodes = Vec::new();
    let mut members = Vec::new();
    for (pool, ami, user_data) in [
        (
            &stack.managers,
            &inputs.manager_ami,
            &inputs.manager_user_data,
        ),
        (&stack.workers, &inputs.worker_ami, &inputs.worker_user_data),
    ] {
        for i in 0..pool.count {
            let address = Address::node(pool.role.pool(), i);
            nodes.push(address.clone());
            let zone = &stack.network.subnets[i % stack.network.subnets.len()].zone;
            members.push((address.clone(), pool.role, zone.clone()));
            add(
                address,
                Spec::Instance(InstanceSpec {
                    pool: pool.role.pool().into(),
                    instance_type: pool.instance_type.clone(),
                    ami: ami.clone(),
                    // Spread each pool across the zones.
                    subnet: subnets[i % subnets.len()].clone(),
                    security_groups: vec![sg_node.clone()],
                    key_pair: key.clone(),
                    root_volume_gb: pool.root_volume_gb,
                    imdsv2_required: true,
                    user_data_sha256: sha256_hex(user_data),
                    user_data: user_data.clone(),
                }),
            );
        }
    }

    let lbc = &stack.load_balancer;
    let (lb, tg) = (addr("lb"), target_group_address(lbc.target_port));
    add(
        lb.clone(),
        Spec::LoadBalancer(LoadBalancerSpec {
            name: Names::load_balancer(&stack.name),
            subnets: subnets.clone(),
            security_groups: vec![sg_lb],
        }),
    );
    add(
        tg.clone(),
        Spec::TargetGroup(TargetGroupSpec {
            name: Names::target_group(&stack.name, lbc.target_port),
            vpc,
            port: lbc.target_port,
            health_check: lbc.health_check.clone(),
            deregistration_delay: lbc.deregistration_delay,
        }),
    );
    add(
        addr("listener.https"),
        Spec::Listener(ListenerSpec {
            load_balancer: lb.clone(),
            port: 443,
            protocol: "HTTPS".into(),
            certificate_arn: Some(lbc.certificate_arn.clone()),
            ssl_policy: Some(lbc.tls_policy.clone()),
            action: ListenerAction::Forward {
                target_group: tg.clone(),
            },
        }),
    );
    add(
        addr("listener.http"),
        Spec::Listener(ListenerSpec {
            load_balancer: lb,
            port: 80,
            protocol: "HTTP".into(),
            certificate_arn: None,
            ssl_policy: None,
            action: ListenerAction::RedirectHttps { port: 443 },
        }),
    );
    // Every node until the services are known (`fit_targets`).
    add(
        targets_address(lbc.target_port),
        Spec::Targets(TargetsSpec {
            target_group: tg,
            instances: nodes,
            health: HealthWait::All,
        }),
    );
    if stack.swarm {
        for (instance, role, zone) in members {
            let spec = SwarmNodeSpec {
                instance: instance.clone(),
                role: role.pool().to_string(),
                availability: "active".into(),
                state: "ready".into(),
                labels: swarm_labels(&instance, role, &zone),
            };
            add(swarm_address(&instance), Spec::SwarmNode(spec));
        }
    }
    out
}

/// The target group of a target port: `tg.8080`.
pub fn target_group_address(port: u16) -> Address {
    Address::new(format!("tg.{port}"))
}

/// The targets registered in the target group of a port: `targets.8080`.
pub fn targets_address(port: u16) -> Address {
    Address::new(format!("targets.{port}"))
}

/// Registers only the nodes that can serve the target port and says what apply waits for
/// (see [`super::targets::serving`]): `services` is None when infra does not run the Swarm.
pub fn fit_targets(stack: &Stack, resources: &mut [Resource], services: Option<&[ServiceInput]>) {
    let port = stack.load_balancer.target_port;
    let nodes: Vec<super::targets::NodeFacts> = resources
        .iter()
        .filter_map(|r| match &r.spec {
            Spec::SwarmNode(n) => Some(super::targets::NodeFacts {
                address: n.instance.clone(),
                role: n.role.clone(),
                labels: n.labels.clone(),
            }),
            _ => None,
        })
        .collect();
    let publishers: Option<Vec<super::targets::Publisher>> = services.map(|list| {
        list.iter()
            .map(|s| super::targets::Publisher {
                name: s.name.clone(),
                ports: s.ports.clone(),
                mode: s.mode.clone(),
                placement: s.placement.clone(),
            })
            .collect()
    });
    let address = targets_address(port);
    let Some(Resource {
        spec: Spec::Targets(targets),
        ..
    }) = resources.iter_mut().find(|r| r.address == address)
    else {
        return;
    };
    let (instances, health) = super::targets::serving(&nodes, publishers.as_deref(), port);
    if publishers.is_some() {
        targets.instances = instances;
        targets.instances.sort();
    }
    targets.health = health;
}

/// IP protocol 50 (IPsec ESP), as EC2 names it in security group rules.
pub const ESP: &str = "50";

/// A secret as the plan needs it: where it comes from and the keyed hash of its value.
pub struct SecretInput {
    pub name: String,
    pub source: String,
    pub value_hmac: String,
    pub advanced: bool,
}

/// A service as rendered from the compose file (see `compose::ServiceDoc`).
pub struct ServiceInput {
    pub name: String,
    pub image: String,
    pub mode: String,
    pub ports: Vec<String>,
    /// `deploy.placement.constraints`.
    pub placement: Vec<String>,
    pub secrets: Vec<Address>,
    pub networks: Vec<Address>,
    pub configs: Vec<Address>,
    pub definition: String,
    pub definition_sha256: String,
}

/// An image reference as Docker keeps it, without a pinned digest or the default registry:
/// `docker.io/library/nginx@sha256:…` and `nginx` are both `nginx:latest`.
pub fn normalize_image(image: &str) -> String {
    let name = image.split('@').next().unwrap_or(image);
    let name = name
        .strip_prefix("docker.io/library/")
        .or_else(|| name.strip_prefix("docker.io/"))
        .unwrap_or(name);
    let last = name.rsplit('/').next().unwrap_or(name);
    if last.contains(':') {
        name.to_string()
    } else {
        format!("{name}:latest")
    }
}

/// Parameter Store name of a stack's secret.
pub fn secret_parameter(stack: &str, name: &str) -> String {
    format!("/infra/{stack}/secrets/{name}")
}

/// `greeting` with value hash `hmac-sha256:1f2e…` → `greeting_1f2e3d4c5b`.
pub fn swarm_secret_name(name: &str, value_hmac: &str) -> String {
    let hex = value_hmac.rsplit(':').next().unwrap_or_default();
    format!("{name}_{}", &hex[..hex.len().min(10)])
}

pub fn swarm_secret_address(swarm_name: &str) -> Address {
    Address::new(format!("swarm.secret.{swarm_name}"))
}

/// `swarm.network.<key in the compose file>`.
pub fn network_address(key: &str) -> Address {
    Address::new(format!("swarm.network.{key}"))
}

/// `swarm.config.<name and content hash>`.
pub fn config_address(swarm_name: &str) -> Address {
    Address::new(format!("swarm.config.{swarm_name}"))
}

pub fn service_address(name: &str) -> Address {
    Address::new(format!("swarm.service.{name}"))
}

/// The application half: secrets in Parameter Store, and with the Swarm (`swarm`) their Swarm
/// secrets and the services.
pub fn expand_apps(
    stack: &str,
    secrets: &[SecretInput],
    services: &[ServiceInput],
    swarm: bool,
) -> Vec<Resource> {
    let mut out = Vec::new();
    for s in secrets {
        let secret = Address::new(format!("secret.{}", s.name));
        out.push(Resource {
            address: secret.clone(),
            spec: Spec::Secret(SecretSpec {
                parameter: secret_parameter(stack, &s.name),
                value: s.value_hmac.clone(),
                source: s.source.clone(),
                advanced: s.advanced,
            }),
        });
        if !swarm {
            continue;
        }
        let name = swarm_secret_name(&s.name, &s.value_hmac);
        out.push(Resource {
            address: swarm_secret_address(&name),
            spec: Spec::SwarmSecret(SwarmSecretSpec { name, secret }),
        });
    }
    for s in services {
        out.push(Resource {
            address: service_address(&s.name),
            spec: Spec::Service(ServiceSpec {
                image: normalize_image(&s.image),
                mode: s.mode.clone(),
                ports: s.ports.clone(),
                secrets: s.secrets.clone(),
                networks: s.networks.clone(),
                configs: s.configs.clone(),
                definition_sha256: s.definition_sha256.clone(),
                definition: s.definition.clone(),
            }),
        });
    }
    out
}

/// `node.worker[2]` → `swarm.node.worker[2]`.
pub fn swarm_address(instance: &Address) -> Address {
    Address::new(format!("swarm.{instance}"))
}

/// The Swarm node label naming the instance a member runs on.
pub const LABEL_ADDRESS: &str = "infra.address";

/// The labels infra puts on each Swarm node: to recognise it, and for placement constraints.
pub fn swarm_labels(
    instance: &Address,
    role: Role,
    zone: &str,
) -> std::collections::BTreeMap<String, String> {
    std::collections::BTreeMap::from([
        (LABEL_ADDRESS.to_string(), instance.to_string()),
        ("infra.pool".to_string(), role.pool().to_string()),
        ("infra.zone".to_string(), zone.to_string()),
    ])
}
