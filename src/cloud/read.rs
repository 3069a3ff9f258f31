//! Reads everything the stack owns: one call (plus pages) per resource type, whatever the
//! number of nodes. EC2 objects are found by the `infra:stack` tag; the load balancer and target
//! group by their deterministic names (ELBv2 has no tag filter).

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{Filter, Instance, Tag};
use aws_sdk_elasticloadbalancingv2::types::{ActionTypeEnum, LoadBalancer, TargetGroup};

use super::{Cloud, CloudError, NOT_FOUND_YET, fail, retry_on};
use crate::model::resources::Names;
use crate::model::*;

pub const TAG_STACK: &str = "infra:stack";
pub const TAG_ADDRESS: &str = "infra:address";
pub const TAG_POOL: &str = "infra:pool";
/// On instances launched together: the address index of each launch index, e.g. `0,2,4`.
pub const TAG_SLOTS: &str = "infra:slots";
pub const TAG_USER_DATA: &str = "infra:user-data-sha256";
pub const TAG_PUBLIC_KEY: &str = "infra:public-key-sha256";

pub(crate) fn tag<'a>(tags: &'a [Tag], key: &str) -> Option<&'a str> {
    tags.iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

/// Translates AWS ids into addresses; an id that is not the stack's stays as it is, so the
/// difference shows in the plan.
#[derive(Default)]
struct Addresses {
    by_id: BTreeMap<String, Address>,
}

impl Addresses {
    fn add(&mut self, id: Option<&str>, address: &Address) {
        if let Some(id) = id {
            self.by_id.insert(id.to_string(), address.clone());
        }
    }
    fn of(&self, id: Option<&str>) -> Address {
        let id = id.unwrap_or("(none)");
        self.by_id
            .get(id)
            .cloned()
            .unwrap_or_else(|| Address::new(id))
    }
    fn all<'a>(&self, ids: impl IntoIterator<Item = &'a str>) -> Vec<Address> {
        let mut v: Vec<Address> = ids.into_iter().map(|id| self.of(Some(id))).collect();
        v.sort();
        v
    }
}

fn addressed(tags: &[Tag], kind: &str, id: &str) -> Address {
    tag(tags, TAG_ADDRESS).map_or_else(|| Address::new(format!("orphan.{kind}.{id}")), Address::new)
}

fn instance_address(i: &Instance) -> Address {
    let tags = i.tags();
    if let Some(a) = tag(tags, TAG_ADDRESS) {
        return Address::new(a);
    }
    // Launched in a batch and killed before the per-instance address tag: the launch index
    // picks this instance's slot.
    let slot = tag(tags, TAG_SLOTS)
        .zip(tag(tags, TAG_POOL))
        .zip(i.ami_launch_index())
        .and_then(|((slots, pool), launch)| {
            let index: usize = slots.split(',').nth(launch as usize)?.parse().ok()?;
            Some(Address::node(pool, index))
        });
    slot.unwrap_or_else(|| {
        Address::new(format!(
            "orphan.instance.{}",
            i.instance_id().unwrap_or("?")
        ))
    })
}

fn outputs(pairs: &[(&str, Option<&str>)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_string(), v.to_string())))
        .collect()
}

/// Every page of a describe call, as one list; an error names the call.
macro_rules! all_pages {
    ($request:expr, $call:literal, $resource:expr) => {
        async {
            $request
                .into_paginator()
                .items()
                .send()
                .collect::<Result<Vec<_>, _>>()
                .await
                .map_err(fail($resource, $call))
        }
    };
}

impl Cloud {
    fn stack_filter(&self) -> Filter {
        Filter::builder()
            .name(format!("tag:{TAG_STACK}"))
            .values(&self.stack)
            .build()
    }

    pub async fn read_live(&self) -> Result<Live, CloudError> {
        let stack = format!("stack {}", self.stack);
        let ec2 = &self.ec2;
        let f = || self.stack_filter();
        let (vpcs, subnets, igws, tables, groups, keys, instances, volumes, lb, target_groups) = tokio::try_join!(
            all_pages!(ec2.describe_vpcs().filters(f()), "ec2:DescribeVpcs", &stack),
            all_pages!(
                ec2.describe_subnets().filters(f()),
                "ec2:DescribeSubnets",
                &stack
            ),
            all_pages!(
                ec2.describe_internet_gateways().filters(f()),
                "ec2:DescribeInternetGateways",
                &stack
            ),
            all_pages!(
                ec2.describe_route_tables().filters(f()),
                "ec2:DescribeRouteTables",
                &stack
            ),
            all_pages!(
                ec2.describe_security_groups().filters(f()),
                "ec2:DescribeSecurityGroups",
                &stack
            ),
            async {
                ec2.describe_key_pairs()
                    .filters(f())
                    .send()
                    .await
                    .map(|o| o.key_pairs.unwrap_or_default())
                    .map_err(fail(&stack, "ec2:DescribeKeyPairs"))
            },
            async {
                let states = Filter::builder()
                    .name("instance-state-name")
                    .set_values(Some(LIVE_STATES.iter().map(|s| s.to_string()).collect()))
                    .build();
                all_pages!(
                    ec2.describe_instances().filters(f()).filters(states),
                    "ec2:DescribeInstances",
                    &stack
                )
                .await
            },
            all_pages!(
                ec2.describe_volumes().filters(f()),
                "ec2:DescribeVolumes",
                &stack
            ),
            self.find_load_balancer(),
            self.find_target_groups(),
        )?;

        // Second wave: reads that need an id from the first.
        let vpc = vpcs.first();
        let (dns_hostnames, listeners, groups_read) = tokio::try_join!(
            async {
                let Some(id) = vpc.and_then(|v| v.vpc_id()) else {
                    return Ok(false);
                };
                let out = ec2
                    .describe_vpc_attribute()
                    .vpc_id(id)
                    .attribute(aws_sdk_ec2::types::VpcAttributeName::EnableDnsHostnames)
                    .send()
                    .await
                    .map_err(fail("vpc", "ec2:DescribeVpcAttribute"))?;
                Ok(out
                    .enable_dns_hostnames()
                    .and_then(|v| v.value())
                    .unwrap_or(false))
            },
            async {
                let Some(arn) = lb.as_ref().and_then(|l| l.load_balancer_arn()) else {
                    return Ok(vec![]);
                };
                let out = self
                    .elb
                    .describe_listeners()
                    .load_balancer_arn(arn)
                    .send()
                    .await
                    .map_err(fail("lb", "elbv2:DescribeListeners"))?;
                Ok(out.listeners.unwrap_or_default())
            },
            // Each target group's targets and deregistration delay (one group, but for the
            // moment a new one takes over from the old).
            futures::future::try_join_all(target_groups.iter().map(|(address, t)| async move {
                let arn = t.target_group_arn().unwrap_or_default();
                // A group just created is listed before it can be described (eventual
                // consistency): ask again for a moment.
                let (health, delay) = tokio::try_join!(
                    retry_on(NOT_FOUND_YET, || async {
                        let out = self
                            .elb
                            .describe_target_health()
                            .target_group_arn(arn)
                            .send()
                            .await
                            .map_err(fail(address, "elbv2:DescribeTargetHealth"))?;
                        Ok(out.target_health_descriptions.unwrap_or_default())
                    }),
                    retry_on(NOT_FOUND_YET, || self.target_group_delay(address, arn)),
                )?;
                Ok::<_, CloudError>((health, delay))
            })),
        )?;

        let mut live = Live::new();
        let mut names = Addresses::default();
        for v in &vpcs {
            let a = addressed(v.tags(), "vpc", v.vpc_id().unwrap_or_default());
            names.add(v.vpc_id(), &a);
        }
        for s in &subnets {
            names.add(
                s.subnet_id(),
                &addressed(s.tags(), "subnet", s.subnet_id().unwrap_or_default()),
            );
        }
        for g in &igws {
            names.add(
                g.internet_gateway_id(),
                &addressed(g.tags(), "igw", g.internet_gateway_id().unwrap_or_default()),
            );
        }
        for g in &groups {
            names.add(
                g.group_id(),
                &addressed(g.tags(), "sg", g.group_id().unwrap_or_default()),
            );
        }
        for k in &keys {
            names.add(
                k.key_name(),
                &addressed(k.tags(), "key_pair", k.key_name().unwrap_or_default()),
            );
        }
        let instances: Vec<&Instance> = instances.iter().flat_map(|r| r.instances()).collect();
        for i in &instances {
            names.add(i.instance_id(), &instance_address(i));
        }

        for v in &vpcs {
            let spec = Spec::Vpc(VpcSpec {
                cidr: v.cidr_block().unwrap_or_default().into(),
                dns_hostnames,
            });
            insert(
                &mut live,
                names.of(v.vpc_id()),
                v.vpc_id(),
                spec,
                BTreeMap::new(),
            );
        }
        for s in &subnets {
            let spec = Spec::Subnet(SubnetSpec {
                vpc: names.of(s.vpc_id()),
                cidr: s.cidr_block().unwrap_or_default().into(),
                zone: s.availability_zone().unwrap_or_default().into(),
                map_public_ip: s.map_public_ip_on_launch().unwrap_or(false),
            });
            insert(
                &mut live,
                names.of(s.subnet_id()),
                s.subnet_id(),
                spec,
                BTreeMap::new(),
            );
        }
        for g in &igws {
            let vpc = g.attachments().first().map(|a| names.of(a.vpc_id()));
            let spec = Spec::InternetGateway(InternetGatewaySpec { vpc });
            insert(
                &mut live,
                names.of(g.internet_gateway_id()),
                g.internet_gateway_id(),
                spec,
                BTreeMap::new(),
            );
        }
        for t in &tables {
            let default_route = t
                .routes()
                .iter()
                .find(|r| r.destination_cidr_block() == Some("0.0.0.0/0"))
                .map(|r| names.of(r.gateway_id()));
            let spec = Spec::RouteTable(RouteTableSpec {
                vpc: names.of(t.vpc_id()),
                default_route,
                subnets: names.all(t.associations().iter().filter_map(|a| a.subnet_id())),
            });
            let id = t.route_table_id();
            insert(
                &mut live,
                addressed(t.tags(), "route_table", id.unwrap_or_default()),
                id,
                spec,
                BTreeMap::new(),
            );
        }
        for g in &groups {
            let mut ingress = Vec::new();
            for p in g.ip_permissions() {
                let protocol = p.ip_protocol().unwrap_or("-1").to_string();
                // Ports only mean something for TCP and UDP (EC2 may echo -1 for others).
                let (from, to) = if matches!(protocol.as_str(), "tcp" | "udp") {
                    (
                        p.from_port().unwrap_or(0) as u16,
                        p.to_port().unwrap_or(0) as u16,
                    )
                } else {
                    (0, 0)
                };
                let rule = |source| Rule {
                    protocol: protocol.clone(),
                    from_port: from,
                    to_port: to,
                    source,
                };
                ingress.extend(
                    p.ip_ranges()
                        .iter()
                        .filter_map(|r| r.cidr_ip())
                        .map(|c| rule(Source::Cidr(c.into()))),
                );
                ingress.extend(
                    p.user_id_group_pairs()
                        .iter()
                        .map(|u| rule(Source::Group(names.of(u.group_id())))),
                );
            }
            ingress.sort();
            let spec = Spec::SecurityGroup(SecurityGroupSpec {
                name: g.group_name().unwrap_or_default().into(),
                description: g.description().unwrap_or_default().into(),
                vpc: names.of(g.vpc_id()),
                ingress,
            });
            insert(
                &mut live,
                names.of(g.group_id()),
                g.group_id(),
                spec,
                BTreeMap::new(),
            );
        }
        for k in &keys {
            let spec = Spec::KeyPair(KeyPairSpec {
                name: k.key_name().unwrap_or_default().into(),
                public_key_sha256: tag(k.tags(), TAG_PUBLIC_KEY).unwrap_or_default().into(),
                public_key: String::new(),
            });
            insert(
                &mut live,
                names.of(k.key_name()),
                k.key_name(),
                spec,
                BTreeMap::new(),
            );
        }
        let volume_sizes: BTreeMap<&str, i32> = volumes
            .iter()
            .filter_map(|v| Some((v.volume_id()?, v.size()?)))
            .collect();
        for i in &instances {
            let root = i
                .block_device_mappings()
                .iter()
                .find(|m| m.device_name() == i.root_device_name())
                .or(i.block_device_mappings().first())
                .and_then(|m| m.ebs()?.volume_id());
            let spec = Spec::Instance(InstanceSpec {
                pool: tag(i.tags(), TAG_POOL).unwrap_or_default().into(),
                instance_type: i
                    .instance_type()
                    .map(|t| t.as_str().to_string())
                    .unwrap_or_default(),
                ami: i.image_id().unwrap_or_default().into(),
                subnet: names.of(i.subnet_id()),
                security_groups: names.all(i.security_groups().iter().filter_map(|g| g.group_id())),
                key_pair: names.of(i.key_name()),
                root_volume_gb: root.and_then(|v| volume_sizes.get(v)).copied().unwrap_or(0) as u32,
                imdsv2_required: i
                    .metadata_options()
                    .and_then(|m| m.http_tokens())
                    .map(|t| t.as_str())
                    == Some("required"),
                user_data_sha256: tag(i.tags(), TAG_USER_DATA).unwrap_or_default().into(),
                user_data: String::new(),
            });
            insert(
                &mut live,
                names.of(i.instance_id()),
                i.instance_id(),
                spec,
                instance_outputs(i),
            );
        }

        let lb_addr = Address::new("lb");
        if let Some(l) = &lb {
            names.add(l.load_balancer_arn(), &lb_addr);
            let spec = Spec::LoadBalancer(LoadBalancerSpec {
                name: l.load_balancer_name().unwrap_or_default().into(),
                subnets: names.all(l.availability_zones().iter().filter_map(|z| z.subnet_id())),
                security_groups: names.all(l.security_groups().iter().map(String::as_str)),
            });
            let out = outputs(&[("dns_name", l.dns_name()), ("arn", l.load_balancer_arn())]);
            insert(&mut live, lb_addr.clone(), l.load_balancer_arn(), spec, out);
        }
        for ((tg_addr, t), (health, delay)) in target_groups.iter().zip(groups_read) {
            names.add(t.target_group_arn(), tg_addr);
            let spec = Spec::TargetGroup(TargetGroupSpec {
                name: t.target_group_name().unwrap_or_default().into(),
                vpc: names.of(t.vpc_id()),
                port: t.port().unwrap_or(0) as u16,
                health_check: HealthCheck {
                    path: t.health_check_path().unwrap_or_default().into(),
                    matcher: t
                        .matcher()
                        .and_then(|m| m.http_code())
                        .unwrap_or_default()
                        .into(),
                    interval: t.health_check_interval_seconds().unwrap_or(0) as u32,
                    timeout: t.health_check_timeout_seconds().unwrap_or(0) as u32,
                    healthy_threshold: t.healthy_threshold_count().unwrap_or(0) as u32,
                    unhealthy_threshold: t.unhealthy_threshold_count().unwrap_or(0) as u32,
                },
                deregistration_delay: delay,
            });
            insert(
                &mut live,
                tg_addr.clone(),
                t.target_group_arn(),
                spec,
                BTreeMap::new(),
            );
            let registered = health
                .iter()
                .filter(|h| {
                    !matches!(
                        h.target_health()
                            .and_then(|t| t.state())
                            .map(|s| s.as_str()),
                        Some("draining")
                    )
                })
                .filter_map(|h| h.target()?.id());
            let spec = Spec::Targets(TargetsSpec {
                target_group: tg_addr.clone(),
                instances: names.all(registered),
                health: Default::default(),
            });
            // Each target's health, by node address, for `infra status`: `healthy`, or the
            // state and AWS's reason (`unhealthy (Target.Timeout)`).
            let health_by_node = health
                .iter()
                .filter_map(|h| {
                    let node = names.of(h.target()?.id());
                    let th = h.target_health()?;
                    let state = th.state()?.as_str();
                    let shown = match th.reason() {
                        Some(r) => format!("{state} ({})", r.as_str()),
                        None => state.to_string(),
                    };
                    Some((node.to_string(), shown))
                })
                .collect();
            let targets = match tg_addr.as_str().strip_prefix("tg.") {
                Some(suffix) => Address::new(format!("targets.{suffix}")),
                None => Address::new(format!("targets.{tg_addr}")),
            };
            insert(
                &mut live,
                targets,
                t.target_group_arn(),
                spec,
                health_by_node,
            );
        }
        for l in &listeners {
            let port = l.port().unwrap_or(0) as u16;
            let address = match port {
                443 => Address::new("listener.https"),
                80 => Address::new("listener.http"),
                p => Address::new(format!("listener.port{p}")),
            };
            let protocol = l
                .protocol()
                .map(|p| p.as_str().to_string())
                .unwrap_or_default();
            let action = l.default_actions().first();
            let action = match action.and_then(|a| a.r#type()) {
                Some(ActionTypeEnum::Redirect) => ListenerAction::RedirectHttps {
                    port: action
                        .and_then(|a| a.redirect_config()?.port()?.parse().ok())
                        .unwrap_or(0),
                },
                // A weighted forward (a switch between target groups, interrupted): the group
                // that takes the traffic.
                _ => ListenerAction::Forward {
                    target_group: names.of(action.and_then(|a| {
                        a.target_group_arn().or_else(|| {
                            a.forward_config()?
                                .target_groups()
                                .iter()
                                .max_by_key(|g| g.weight().unwrap_or(1))?
                                .target_group_arn()
                        })
                    })),
                },
            };
            let https = protocol == "HTTPS";
            let spec = Spec::Listener(ListenerSpec {
                load_balancer: lb_addr.clone(),
                port,
                certificate_arn: l
                    .certificates()
                    .first()
                    .and_then(|c| c.certificate_arn())
                    .map(str::to_string),
                // AWS reports a policy even on plain HTTP listeners, where it means nothing.
                ssl_policy: l.ssl_policy().filter(|_| https).map(str::to_string),
                protocol,
                action,
            });
            insert(&mut live, address, l.listener_arn(), spec, BTreeMap::new());
        }
        Ok(live)
    }

    pub(crate) async fn find_load_balancer(&self) -> Result<Option<LoadBalancer>, CloudError> {
        let name = Names::load_balancer(&self.stack);
        match self.elb.describe_load_balancers().names(&name).send().await {
            Ok(out) => Ok(out
                .load_balancers
                .unwrap_or_default()
                .into_iter()
                .find(|l| l.load_balancer_name() == Some(&name))),
            Err(e)
                if aws_sdk_ec2::error::ProvideErrorMetadata::code(&e)
                    == Some("LoadBalancerNotFound") =>
            {
                Ok(None)
            }
            Err(e) => Err(fail("lb", "elbv2:DescribeLoadBalancers")(e)),
        }
    }

    /// The stack's target groups, with their addresses: `infra-<stack>-<port>` is `tg.<port>`
    /// (and `infra-<stack>-web`, the one name of infra before, `tg.web`). ELBv2 cannot filter by
    /// tag, so the region's groups are listed (400 a page) and picked by name.
    pub(crate) async fn find_target_groups(
        &self,
    ) -> Result<Vec<(Address, TargetGroup)>, CloudError> {
        let mut found = Vec::new();
        let mut marker = None;
        loop {
            let out = self
                .elb
                .describe_target_groups()
                .page_size(400)
                .set_marker(marker)
                .send()
                .await
                .map_err(fail(
                    format!("stack {}", self.stack),
                    "elbv2:DescribeTargetGroups",
                ))?;
            for t in out.target_groups.unwrap_or_default() {
                let name = t.target_group_name().unwrap_or_default();
                let address = if name == format!("infra-{}-web", self.stack) {
                    Address::new("tg.web")
                } else if let Some(port) = Names::target_group_port(&self.stack, name) {
                    crate::model::resources::target_group_address(port)
                } else {
                    continue;
                };
                found.push((address, t));
            }
            marker = out.next_marker;
            if marker.is_none() {
                return Ok(found);
            }
        }
    }

    pub(crate) async fn target_group_delay(
        &self,
        address: &Address,
        arn: &str,
    ) -> Result<u32, CloudError> {
        let out = self
            .elb
            .describe_target_group_attributes()
            .target_group_arn(arn)
            .send()
            .await
            .map_err(fail(address, "elbv2:DescribeTargetGroupAttributes"))?;
        Ok(out
            .attributes()
            .iter()
            .find(|a| a.key() == Some(DEREGISTRATION_DELAY))
            .and_then(|a| a.value()?.parse().ok())
            .unwrap_or(0))
    }
}

pub(crate) const DEREGISTRATION_DELAY: &str = "deregistration_delay.timeout_seconds";
const LIVE_STATES: &[&str] = &["pending", "running", "stopping", "stopped"];

pub(crate) fn instance_outputs(i: &Instance) -> BTreeMap<String, String> {
    outputs(&[
        ("private_ip", i.private_ip_address()),
        ("public_ip", i.public_ip_address()),
        ("zone", i.placement().and_then(|p| p.availability_zone())),
        (
            "state",
            i.state().and_then(|s| s.name()).map(|n| n.as_str()),
        ),
    ])
}

fn insert(
    live: &mut Live,
    address: Address,
    id: Option<&str>,
    spec: Spec,
    outputs: BTreeMap<String, String>,
) {
    let id = id.unwrap_or_default().to_string();
    // Two objects claiming one address (a duplicate): keep the first, mark the other an orphan
    // so the plan removes it.
    let address = if live.contains_key(&address) {
        Address::new(format!("orphan.{}.{}", spec.kind(), id))
    } else {
        address
    };
    live.insert(address, Observed { id, spec, outputs });
}
