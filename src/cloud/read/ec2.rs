//! The stack's EC2 objects, found by its tag: VPC, subnets, internet gateway, route tables,
//! security groups, key pair, instances (and their root volumes' sizes).

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{
    Filter, Instance, InternetGateway, KeyPairInfo, RouteTable, SecurityGroup, Subnet, Volume, Vpc,
};

use super::{
    Addresses, LIVE_STATES, TAG_POOL, TAG_PUBLIC_KEY, TAG_STACK, TAG_USER_DATA, addressed, insert,
    instance_address, instance_outputs, tag,
};
use crate::cloud::{Cloud, CloudError, fail};
use crate::model::*;

/// What EC2 holds of the stack.
pub(super) struct Ec2Objects {
    vpcs: Vec<Vpc>,
    dns_hostnames: bool,
    subnets: Vec<Subnet>,
    igws: Vec<InternetGateway>,
    tables: Vec<RouteTable>,
    groups: Vec<SecurityGroup>,
    keys: Vec<KeyPairInfo>,
    instances: Vec<Instance>,
    volumes: Vec<Volume>,
}

impl Cloud {
    fn stack_filter(&self) -> Filter {
        Filter::builder()
            .name(format!("tag:{TAG_STACK}"))
            .values(&self.stack)
            .build()
    }

    /// One call (and its pages) per object type, then the VPC's DNS attribute, which needs its
    /// id.
    pub(super) async fn read_ec2(&self) -> Result<Ec2Objects, CloudError> {
        let stack = format!("stack {}", self.stack);
        let ec2 = &self.ec2;
        let f = || self.stack_filter();
        let (vpcs, subnets, igws, tables, groups, keys, reservations, volumes) = tokio::try_join!(
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
        )?;
        let vpc = vpcs.first();
        let dns_hostnames = async {
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
        };
        let dns_hostnames: bool = dns_hostnames.await?;
        let instances = reservations
            .iter()
            .flat_map(|r| r.instances())
            .cloned()
            .collect();
        Ok(Ec2Objects {
            vpcs,
            dns_hostnames,
            subnets,
            igws,
            tables,
            groups,
            keys,
            instances,
            volumes,
        })
    }
}

impl Ec2Objects {
    /// Registers each object's address under its id, so that references read as addresses.
    pub(super) fn name(&self, names: &mut Addresses) {
        for v in &self.vpcs {
            let a = addressed(v.tags(), "vpc", v.vpc_id().unwrap_or_default());
            names.add(v.vpc_id(), &a);
        }
        for s in &self.subnets {
            names.add(
                s.subnet_id(),
                &addressed(s.tags(), "subnet", s.subnet_id().unwrap_or_default()),
            );
        }
        for g in &self.igws {
            names.add(
                g.internet_gateway_id(),
                &addressed(g.tags(), "igw", g.internet_gateway_id().unwrap_or_default()),
            );
        }
        for g in &self.groups {
            names.add(
                g.group_id(),
                &addressed(g.tags(), "sg", g.group_id().unwrap_or_default()),
            );
        }
        for k in &self.keys {
            names.add(
                k.key_name(),
                &addressed(k.tags(), "key_pair", k.key_name().unwrap_or_default()),
            );
        }
        for i in &self.instances {
            names.add(i.instance_id(), &instance_address(i));
        }
    }

    /// Each object in the model's terms, added to `live`, kind by kind in this order (the
    /// second object to claim an address is an orphan).
    pub(super) fn observe(&self, names: &Addresses, live: &mut Live) {
        self.vpcs(names, live);
        self.subnets(names, live);
        self.internet_gateways(names, live);
        self.route_tables(names, live);
        self.security_groups(names, live);
        self.key_pairs(names, live);
        self.instances(names, live);
    }

    fn vpcs(&self, names: &Addresses, live: &mut Live) {
        for v in &self.vpcs {
            let spec = Spec::Vpc(VpcSpec {
                cidr: v.cidr_block().unwrap_or_default().into(),
                dns_hostnames: self.dns_hostnames,
            });
            insert(
                live,
                names.of(v.vpc_id()),
                v.vpc_id(),
                spec,
                BTreeMap::new(),
            );
        }
    }

    fn subnets(&self, names: &Addresses, live: &mut Live) {
        for s in &self.subnets {
            let spec = Spec::Subnet(SubnetSpec {
                vpc: names.of(s.vpc_id()),
                cidr: s.cidr_block().unwrap_or_default().into(),
                zone: s.availability_zone().unwrap_or_default().into(),
                map_public_ip: s.map_public_ip_on_launch().unwrap_or(false),
            });
            insert(
                live,
                names.of(s.subnet_id()),
                s.subnet_id(),
                spec,
                BTreeMap::new(),
            );
        }
    }

    fn internet_gateways(&self, names: &Addresses, live: &mut Live) {
        for g in &self.igws {
            let vpc = g.attachments().first().map(|a| names.of(a.vpc_id()));
            let spec = Spec::InternetGateway(InternetGatewaySpec { vpc });
            insert(
                live,
                names.of(g.internet_gateway_id()),
                g.internet_gateway_id(),
                spec,
                BTreeMap::new(),
            );
        }
    }

    fn route_tables(&self, names: &Addresses, live: &mut Live) {
        for t in &self.tables {
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
                live,
                addressed(t.tags(), "route_table", id.unwrap_or_default()),
                id,
                spec,
                BTreeMap::new(),
            );
        }
    }

    fn security_groups(&self, names: &Addresses, live: &mut Live) {
        for g in &self.groups {
            let spec = Spec::SecurityGroup(SecurityGroupSpec {
                name: g.group_name().unwrap_or_default().into(),
                description: g.description().unwrap_or_default().into(),
                vpc: names.of(g.vpc_id()),
                ingress: ingress(g, names),
            });
            insert(
                live,
                names.of(g.group_id()),
                g.group_id(),
                spec,
                BTreeMap::new(),
            );
        }
    }

    fn key_pairs(&self, names: &Addresses, live: &mut Live) {
        for k in &self.keys {
            let spec = Spec::KeyPair(KeyPairSpec {
                name: k.key_name().unwrap_or_default().into(),
                public_key_sha256: tag(k.tags(), TAG_PUBLIC_KEY).unwrap_or_default().into(),
                public_key: String::new(),
            });
            insert(
                live,
                names.of(k.key_name()),
                k.key_name(),
                spec,
                BTreeMap::new(),
            );
        }
    }

    /// The instances, with their root volume's size from the volumes read.
    fn instances(&self, names: &Addresses, live: &mut Live) {
        let volume_sizes: BTreeMap<&str, i32> = self
            .volumes
            .iter()
            .filter_map(|v| Some((v.volume_id()?, v.size()?)))
            .collect();
        for i in &self.instances {
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
                metadata_hop_limit: i
                    .metadata_options()
                    .and_then(|m| m.http_put_response_hop_limit())
                    .map_or(1, |h| h.clamp(1, 64) as u8),
                instance_profile: i
                    .iam_instance_profile()
                    .and_then(|p| p.arn())
                    .map(|arn| names.of(Some(arn))),
                user_data_sha256: tag(i.tags(), TAG_USER_DATA).unwrap_or_default().into(),
                user_data: String::new(),
            });
            insert(
                live,
                names.of(i.instance_id()),
                i.instance_id(),
                spec,
                instance_outputs(i),
            );
        }
    }
}

/// A security group's ingress rules in the model's terms, sorted: one rule per CIDR block or
/// group of each permission.
fn ingress(g: &SecurityGroup, names: &Addresses) -> Vec<Rule> {
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
    ingress
}
