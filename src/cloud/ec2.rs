//! Creating, changing and removing the EC2 half of a stack.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_ec2::client::Waiters;
use aws_sdk_ec2::types::*;
use base64::Engine;

use super::read::*;
use super::{
    Cloud, CloudError, Created, IN_USE, Ids, ImageFacts, NOT_FOUND_YET, fail, id_of, retry_on,
};
use crate::model::{Address, InstanceSpec, RouteTableSpec, Rule, Source, Spec};

const WAIT_RUNNING: Duration = Duration::from_secs(600);
/// How long a gateway's detach is retried while AWS releases the VPC's public addresses.
pub const DETACH_TIMEOUT: Duration = Duration::from_secs(600);

fn tag_spec(kind: ResourceType, tags: &[(&str, &str)]) -> TagSpecification {
    let tags = tags
        .iter()
        .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
        .collect();
    TagSpecification::builder()
        .resource_type(kind)
        .set_tags(Some(tags))
        .build()
}

fn bool_value(v: bool) -> AttributeBooleanValue {
    AttributeBooleanValue::builder().value(v).build()
}

fn permission(rule: &Rule, ids: &Ids, owner: &Address) -> Result<IpPermission, CloudError> {
    // Other protocols than TCP and UDP have no ports: EC2 ignores the 0/0 they carry (as
    // Terraform sends them); moto fails on a permission without any.
    let p = IpPermission::builder()
        .ip_protocol(&rule.protocol)
        .from_port(rule.from_port as i32)
        .to_port(rule.to_port as i32);
    Ok(match &rule.source {
        Source::Cidr(c) => p.ip_ranges(IpRange::builder().cidr_ip(c).build()),
        Source::Group(g) => p.user_id_group_pairs(
            UserIdGroupPair::builder()
                .group_id(id_of(ids, g, owner)?)
                .build(),
        ),
    }
    .build())
}

fn created(id: impl Into<String>, spec: &Spec) -> Created {
    Created {
        id: id.into(),
        spec: spec.clone(),
        outputs: BTreeMap::new(),
    }
}

impl Cloud {
    fn tags<'a>(&'a self, address: &'a Address) -> Vec<(&'a str, &'a str)> {
        vec![(TAG_STACK, &self.stack), (TAG_ADDRESS, address.as_str())]
    }

    pub(super) async fn create_ec2(
        &self,
        address: &Address,
        spec: &Spec,
        ids: &Ids,
    ) -> Result<Created, CloudError> {
        let a = address;
        let ec2 = &self.ec2;
        let name = format!("{}-{}", self.stack, a);
        let mut tags = self.tags(a);
        tags.push(("Name", &name));
        match spec {
            Spec::Vpc(v) => {
                let out = ec2
                    .create_vpc()
                    .cidr_block(&v.cidr)
                    .tag_specifications(tag_spec(ResourceType::Vpc, &tags))
                    .send()
                    .await
                    .map_err(fail(a, "ec2:CreateVpc"))?;
                let id = out.vpc.and_then(|v| v.vpc_id).unwrap_or_default();
                self.set_dns_hostnames(a, &id, v.dns_hostnames).await?;
                Ok(created(id, spec))
            }
            Spec::Subnet(s) => {
                let out = retry_on(NOT_FOUND_YET, || async {
                    ec2.create_subnet()
                        .vpc_id(id_of(ids, &s.vpc, a)?)
                        .cidr_block(&s.cidr)
                        .availability_zone(&s.zone)
                        .tag_specifications(tag_spec(ResourceType::Subnet, &tags))
                        .send()
                        .await
                        .map_err(fail(a, "ec2:CreateSubnet"))
                })
                .await?;
                let id = out.subnet.and_then(|s| s.subnet_id).unwrap_or_default();
                self.set_map_public_ip(a, &id, s.map_public_ip).await?;
                Ok(created(id, spec))
            }
            Spec::InternetGateway(g) => {
                let out = ec2
                    .create_internet_gateway()
                    .tag_specifications(tag_spec(ResourceType::InternetGateway, &tags))
                    .send()
                    .await
                    .map_err(fail(a, "ec2:CreateInternetGateway"))?;
                let id = out
                    .internet_gateway
                    .and_then(|g| g.internet_gateway_id)
                    .unwrap_or_default();
                if let Some(vpc) = &g.vpc {
                    self.attach_gateway(a, &id, &id_of(ids, vpc, a)?).await?;
                }
                Ok(created(id, spec))
            }
            Spec::RouteTable(r) => {
                let out = retry_on(NOT_FOUND_YET, || async {
                    ec2.create_route_table()
                        .vpc_id(id_of(ids, &r.vpc, a)?)
                        .tag_specifications(tag_spec(ResourceType::RouteTable, &tags))
                        .send()
                        .await
                        .map_err(fail(a, "ec2:CreateRouteTable"))
                })
                .await?;
                let id = out
                    .route_table
                    .and_then(|t| t.route_table_id)
                    .unwrap_or_default();
                let empty = RouteTableSpec {
                    vpc: r.vpc.clone(),
                    default_route: None,
                    subnets: vec![],
                };
                self.update_route_table(a, &id, &empty, r, ids).await?;
                Ok(created(id, spec))
            }
            Spec::SecurityGroup(g) => {
                let out = retry_on(NOT_FOUND_YET, || async {
                    ec2.create_security_group()
                        .group_name(&g.name)
                        .description(&g.description)
                        .vpc_id(id_of(ids, &g.vpc, a)?)
                        .tag_specifications(tag_spec(ResourceType::SecurityGroup, &tags))
                        .send()
                        .await
                        .map_err(fail(a, "ec2:CreateSecurityGroup"))
                })
                .await?;
                let id = out.group_id.unwrap_or_default();
                let mut ids = ids.clone();
                ids.insert(a.clone(), id.clone()); // a group may refer to itself
                self.authorize(a, &id, &g.ingress, &ids).await?;
                Ok(created(id, spec))
            }
            Spec::KeyPair(k) => {
                tags.push((TAG_PUBLIC_KEY, &k.public_key_sha256));
                ec2.import_key_pair()
                    .key_name(&k.name)
                    .public_key_material(aws_smithy_types::Blob::new(k.public_key.as_bytes()))
                    .tag_specifications(tag_spec(ResourceType::KeyPair, &tags))
                    .send()
                    .await
                    .map_err(fail(a, "ec2:ImportKeyPair"))?;
                // The key's name is its id: RunInstances and DeleteKeyPair take the name.
                Ok(created(k.name.clone(), spec))
            }
            other => Err(CloudError::Invalid {
                resource: a.to_string(),
                message: format!("{} is not an EC2 object", other.kind()),
            }),
        }
    }

    pub(super) async fn update_ec2(
        &self,
        a: &Address,
        id: &str,
        before: &Spec,
        after: &Spec,
        ids: &Ids,
    ) -> Result<(), CloudError> {
        match (before, after) {
            (Spec::Vpc(_), Spec::Vpc(v)) => self.set_dns_hostnames(a, id, v.dns_hostnames).await,
            (Spec::Subnet(_), Spec::Subnet(s)) => {
                self.set_map_public_ip(a, id, s.map_public_ip).await
            }
            (Spec::InternetGateway(_), Spec::InternetGateway(g)) => {
                self.detach_gateway(a, id, &|line| tracing::info!("{line}"))
                    .await?;
                match &g.vpc {
                    Some(vpc) => self.attach_gateway(a, id, &id_of(ids, vpc, a)?).await,
                    None => Ok(()),
                }
            }
            (Spec::RouteTable(b), Spec::RouteTable(r)) => {
                self.update_route_table(a, id, b, r, ids).await
            }
            (Spec::SecurityGroup(b), Spec::SecurityGroup(g)) => {
                let added: Vec<Rule> = g
                    .ingress
                    .iter()
                    .filter(|r| !b.ingress.contains(r))
                    .cloned()
                    .collect();
                let removed: Vec<Rule> = b
                    .ingress
                    .iter()
                    .filter(|r| !g.ingress.contains(r))
                    .cloned()
                    .collect();
                self.revoke(a, id, &removed, ids).await?;
                self.authorize(a, id, &added, ids).await
            }
            (Spec::Instance(_), Spec::Instance(i)) => {
                let groups = i
                    .security_groups
                    .iter()
                    .map(|g| id_of(ids, g, a))
                    .collect::<Result<Vec<_>, _>>()?;
                self.ec2
                    .modify_instance_attribute()
                    .instance_id(id)
                    .set_groups(Some(groups))
                    .send()
                    .await
                    .map_err(fail(a, "ec2:ModifyInstanceAttribute"))?;
                Ok(())
            }
            _ => Err(CloudError::Invalid {
                resource: a.to_string(),
                message: "cannot be updated in place".into(),
            }),
        }
    }

    pub(super) async fn delete_ec2(
        &self,
        a: &Address,
        id: &str,
        spec: &Spec,
    ) -> Result<(), CloudError> {
        let ec2 = &self.ec2;
        let gone = |r: Result<(), CloudError>| match r {
            Err(e) if e.code().is_some_and(|c| c.ends_with(".NotFound")) => Ok(()),
            other => other,
        };
        gone(match spec {
            Spec::Vpc(_) => {
                retry_on(IN_USE, || async {
                    ec2.delete_vpc()
                        .vpc_id(id)
                        .send()
                        .await
                        .map(drop)
                        .map_err(fail(a, "ec2:DeleteVpc"))
                })
                .await
            }
            Spec::Subnet(_) => {
                retry_on(IN_USE, || async {
                    ec2.delete_subnet()
                        .subnet_id(id)
                        .send()
                        .await
                        .map(drop)
                        .map_err(fail(a, "ec2:DeleteSubnet"))
                })
                .await
            }
            Spec::InternetGateway(_) => {
                self.detach_gateway(a, id, &|line| tracing::info!("{line}"))
                    .await?;
                ec2.delete_internet_gateway()
                    .internet_gateway_id(id)
                    .send()
                    .await
                    .map(drop)
                    .map_err(fail(a, "ec2:DeleteInternetGateway"))
            }
            Spec::RouteTable(r) => {
                let none = RouteTableSpec {
                    vpc: r.vpc.clone(),
                    default_route: None,
                    subnets: vec![],
                };
                self.update_route_table(a, id, r, &none, &Ids::new())
                    .await?;
                ec2.delete_route_table()
                    .route_table_id(id)
                    .send()
                    .await
                    .map(drop)
                    .map_err(fail(a, "ec2:DeleteRouteTable"))
            }
            Spec::SecurityGroup(_) => {
                retry_on(IN_USE, || async {
                    ec2.delete_security_group()
                        .group_id(id)
                        .send()
                        .await
                        .map(drop)
                        .map_err(fail(a, "ec2:DeleteSecurityGroup"))
                })
                .await
            }
            Spec::KeyPair(_) => ec2
                .delete_key_pair()
                .key_name(id)
                .send()
                .await
                .map(drop)
                .map_err(fail(a, "ec2:DeleteKeyPair")),
            Spec::Instance(_) => {
                ec2.terminate_instances()
                    .instance_ids(id)
                    .send()
                    .await
                    .map_err(fail(a, "ec2:TerminateInstances"))?;
                // Wait, so that the subnet and security groups can go next.
                ec2.wait_until_instance_terminated()
                    .instance_ids(id)
                    .wait(WAIT_RUNNING)
                    .await
                    .map(drop)
                    .map_err(|e| CloudError::Invalid {
                        resource: a.to_string(),
                        message: format!("did not terminate: {e}"),
                    })
            }
            other => Err(CloudError::Invalid {
                resource: a.to_string(),
                message: format!("{} is not an EC2 object", other.kind()),
            }),
        })
    }

    /// Launches instances that share every setting in one RunInstances call. The batch is tagged
    /// with its slots at launch, so an instance whose per-instance tags were never written (the
    /// run was killed) is still known by address.
    pub async fn launch(
        &self,
        batch: &[(Address, InstanceSpec)],
        ids: &Ids,
        client_token: &str,
    ) -> Result<Vec<(Address, Created)>, CloudError> {
        let (first, spec) = &batch[0];
        let shown = batch
            .iter()
            .map(|(a, _)| a.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let slots = batch
            .iter()
            .map(|(a, _)| a.split_index().1.unwrap_or(0).to_string())
            .collect::<Vec<_>>()
            .join(",");
        let groups = spec
            .security_groups
            .iter()
            .map(|g| id_of(ids, g, first))
            .collect::<Result<Vec<_>, _>>()?;
        let subnet = id_of(ids, &spec.subnet, first)?;
        let key = id_of(ids, &spec.key_pair, first)?;
        let instance_tags = [
            (TAG_STACK, self.stack.as_str()),
            (TAG_POOL, spec.pool.as_str()),
            (TAG_SLOTS, slots.as_str()),
            (TAG_USER_DATA, spec.user_data_sha256.as_str()),
        ];
        let root_device = self.root_device_name(first, &spec.ami).await?;
        let volume = BlockDeviceMapping::builder()
            .device_name(root_device)
            .ebs(
                EbsBlockDevice::builder()
                    .volume_size(spec.root_volume_gb as i32)
                    .volume_type(VolumeType::Gp3)
                    .encrypted(true)
                    .delete_on_termination(true)
                    .build(),
            )
            .build();
        let metadata = InstanceMetadataOptionsRequest::builder()
            .http_tokens(if spec.imdsv2_required {
                HttpTokensState::Required
            } else {
                HttpTokensState::Optional
            })
            .http_endpoint(InstanceMetadataEndpointState::Enabled)
            .build();
        let n = batch.len() as i32;
        let out = retry_on(NOT_FOUND_YET, || async {
            self.ec2
                .run_instances()
                .image_id(&spec.ami)
                .instance_type(InstanceType::from(spec.instance_type.as_str()))
                .min_count(n)
                .max_count(n)
                .subnet_id(&subnet)
                .set_security_group_ids(Some(groups.clone()))
                .key_name(&key)
                .user_data(base64::engine::general_purpose::STANDARD.encode(&spec.user_data))
                .metadata_options(metadata.clone())
                .block_device_mappings(volume.clone())
                .client_token(client_token)
                .tag_specifications(tag_spec(ResourceType::Instance, &instance_tags))
                .tag_specifications(tag_spec(ResourceType::Volume, &[(TAG_STACK, &self.stack)]))
                .send()
                .await
                .map_err(fail(&shown, "ec2:RunInstances"))
        })
        .await?;
        let mut launched: Vec<Instance> = out.instances.unwrap_or_default();
        launched.sort_by_key(|i| i.ami_launch_index());
        if launched.len() != batch.len() {
            return Err(CloudError::Invalid {
                resource: shown,
                message: format!(
                    "RunInstances launched {} instances, {} were asked for",
                    launched.len(),
                    batch.len()
                ),
            });
        }
        let instance_ids: Vec<String> = launched
            .iter()
            .filter_map(|i| i.instance_id.clone())
            .collect();
        // The per-instance tags: the address, and a Name for the console.
        futures::future::try_join_all(batch.iter().zip(&instance_ids).map(
            |((address, _), id)| async move {
                let name = format!("{}-{}", self.stack, address);
                retry_on(NOT_FOUND_YET, || async {
                    self.ec2
                        .create_tags()
                        .resources(id)
                        .tags(
                            Tag::builder()
                                .key(TAG_ADDRESS)
                                .value(address.as_str())
                                .build(),
                        )
                        .tags(Tag::builder().key("Name").value(&name).build())
                        .send()
                        .await
                        .map_err(fail(address, "ec2:CreateTags"))
                })
                .await
            },
        ))
        .await?;
        let running = self
            .ec2
            .wait_until_instance_running()
            .set_instance_ids(Some(instance_ids.clone()))
            .wait(WAIT_RUNNING)
            .await
            .map_err(|e| CloudError::Invalid {
                resource: shown.clone(),
                message: format!("did not reach running: {e}"),
            })?;
        let described: BTreeMap<String, Instance> = running
            .as_result()
            .ok()
            .into_iter()
            .flat_map(|o| o.reservations())
            .flat_map(|r| r.instances())
            .filter_map(|i| Some((i.instance_id()?.to_string(), i.clone())))
            .collect();
        Ok(batch
            .iter()
            .zip(instance_ids)
            .map(|((address, spec), id)| {
                let outputs = described.get(&id).map(instance_outputs).unwrap_or_default();
                (
                    address.clone(),
                    Created {
                        id,
                        spec: Spec::Instance(spec.clone()),
                        outputs,
                    },
                )
            })
            .collect())
    }

    /// Moves an instance to another address (`infra:address` and `Name` tags, one CreateTags
    /// call): a node replaced create-before-destroy becomes `…/old` before its successor is
    /// launched under its address.
    pub async fn retag_instance(
        &self,
        a: &Address,
        id: &str,
        to: &Address,
    ) -> Result<(), CloudError> {
        self.ec2
            .create_tags()
            .resources(id)
            .tags(Tag::builder().key(TAG_ADDRESS).value(to.as_str()).build())
            .tags(
                Tag::builder()
                    .key("Name")
                    .value(format!("{}-{to}", self.stack))
                    .build(),
            )
            .send()
            .await
            .map(drop)
            .map_err(fail(a, "ec2:CreateTags"))
    }

    /// What DescribeImages says of these AMIs, in one call; an id that does not exist in the
    /// region is an error naming it.
    pub async fn describe_images(
        &self,
        ids: &[String],
    ) -> Result<BTreeMap<String, ImageFacts>, CloudError> {
        if ids.is_empty() {
            return Ok(BTreeMap::new());
        }
        let out = self
            .ec2
            .describe_images()
            .set_image_ids(Some(ids.to_vec()))
            .send()
            .await
            .map_err(fail(ids.join(", "), "EC2:DescribeImages"))?;
        Ok(out
            .images
            .unwrap_or_default()
            .into_iter()
            .filter_map(|i| {
                let facts = ImageFacts {
                    name: i.name.clone().unwrap_or_default(),
                    windows: i.platform.is_some_and(|p| p.as_str() == "windows"),
                    architecture: i
                        .architecture
                        .as_ref()
                        .map(|a| a.as_str().to_string())
                        .unwrap_or_default(),
                };
                Some((i.image_id?, facts))
            })
            .collect())
    }

    /// The AMI's root device (`/dev/sda1` on Ubuntu, `/dev/xvda` on Amazon Linux), so the root
    /// volume settings apply to the root volume and do not add a second disk.
    /// An image that cannot be described (gone, not shared with the account) is an error
    /// naming it: guessing its root device would add a second volume instead.
    async fn root_device_name(&self, a: &Address, ami: &str) -> Result<String, CloudError> {
        let out = self
            .ec2
            .describe_images()
            .image_ids(ami)
            .send()
            .await
            .map_err(fail(a, "ec2:DescribeImages"))?;
        out.images
            .unwrap_or_default()
            .into_iter()
            .next()
            .and_then(|i| i.root_device_name)
            .ok_or_else(|| CloudError::Invalid {
                resource: a.to_string(),
                message: format!(
                    "image {ami} is not available to this account in this region (DescribeImages found no root device): choose another AMI"
                ),
            })
    }

    async fn set_dns_hostnames(&self, a: &Address, id: &str, on: bool) -> Result<(), CloudError> {
        retry_on(NOT_FOUND_YET, || async {
            self.ec2
                .modify_vpc_attribute()
                .vpc_id(id)
                .enable_dns_hostnames(bool_value(on))
                .send()
                .await
                .map(drop)
                .map_err(fail(a, "ec2:ModifyVpcAttribute"))
        })
        .await
    }

    async fn set_map_public_ip(&self, a: &Address, id: &str, on: bool) -> Result<(), CloudError> {
        retry_on(NOT_FOUND_YET, || async {
            self.ec2
                .modify_subnet_attribute()
                .subnet_id(id)
                .map_public_ip_on_launch(bool_value(on))
                .send()
                .await
                .map(drop)
                .map_err(fail(a, "ec2:ModifySubnetAttribute"))
        })
        .await
    }

    async fn attach_gateway(&self, a: &Address, id: &str, vpc: &str) -> Result<(), CloudError> {
        retry_on(NOT_FOUND_YET, || async {
            self.ec2
                .attach_internet_gateway()
                .internet_gateway_id(id)
                .vpc_id(vpc)
                .send()
                .await
                .map(drop)
                .map_err(fail(a, "ec2:AttachInternetGateway"))
        })
        .await
    }

    /// Detaches from whatever VPC AWS says it is attached to (the state may be out of date).
    /// Detaches the gateway from its VPC. AWS refuses (`DependencyViolation`: "has some mapped
    /// public address(es)") until the public addresses of the instances and load balancer that
    /// were in the VPC are released, minutes after they are gone: retried every 10 s for up to
    /// [`DETACH_TIMEOUT`], `report`ing progress every 30 s.
    pub async fn detach_gateway(
        &self,
        a: &Address,
        id: &str,
        report: &(dyn Fn(String) + Sync),
    ) -> Result<(), CloudError> {
        let out = self
            .ec2
            .describe_internet_gateways()
            .internet_gateway_ids(id)
            .send()
            .await
            .map_err(fail(a, "ec2:DescribeInternetGateways"))?;
        let started = std::time::Instant::now();
        let mut reported = started;
        for att in out.internet_gateways().iter().flat_map(|g| g.attachments()) {
            let Some(vpc) = att.vpc_id() else { continue };
            loop {
                let detached = self
                    .ec2
                    .detach_internet_gateway()
                    .internet_gateway_id(id)
                    .vpc_id(vpc)
                    .send()
                    .await
                    .map(drop)
                    .map_err(fail(a, "ec2:DetachInternetGateway"));
                match detached {
                    Err(e)
                        if e.code().is_some_and(|c| IN_USE.contains(&c))
                            && started.elapsed() < DETACH_TIMEOUT =>
                    {
                        if reported.elapsed() >= Duration::from_secs(30) {
                            reported = std::time::Instant::now();
                            report(format!(
                                "{a}: AWS has not released the VPC's public addresses yet; still detaching after {}s (up to {}s)",
                                started.elapsed().as_secs(),
                                DETACH_TIMEOUT.as_secs()
                            ));
                        }
                        tokio::time::sleep(Duration::from_secs(10)).await;
                    }
                    other => break other?,
                }
            }
        }
        Ok(())
    }

    /// Brings the default route and subnet associations from `before` to `after`, reading the
    /// table first because association ids are not part of the spec.
    async fn update_route_table(
        &self,
        a: &Address,
        id: &str,
        before: &RouteTableSpec,
        after: &RouteTableSpec,
        ids: &Ids,
    ) -> Result<(), CloudError> {
        let ec2 = &self.ec2;
        if before.default_route != after.default_route {
            let existing = before.default_route.is_some();
            match &after.default_route {
                Some(gw) => {
                    let gw = id_of(ids, gw, a)?;
                    retry_on(NOT_FOUND_YET, || async {
                        if existing {
                            ec2.replace_route()
                                .route_table_id(id)
                                .destination_cidr_block("0.0.0.0/0")
                                .gateway_id(&gw)
                                .send()
                                .await
                                .map(drop)
                                .map_err(fail(a, "ec2:ReplaceRoute"))
                        } else {
                            ec2.create_route()
                                .route_table_id(id)
                                .destination_cidr_block("0.0.0.0/0")
                                .gateway_id(&gw)
                                .send()
                                .await
                                .map(drop)
                                .map_err(fail(a, "ec2:CreateRoute"))
                        }
                    })
                    .await?;
                }
                None => {
                    ec2.delete_route()
                        .route_table_id(id)
                        .destination_cidr_block("0.0.0.0/0")
                        .send()
                        .await
                        .map_err(fail(a, "ec2:DeleteRoute"))?;
                }
            }
        }
        if before.subnets == after.subnets {
            return Ok(());
        }
        let table = ec2
            .describe_route_tables()
            .route_table_ids(id)
            .send()
            .await
            .map_err(fail(a, "ec2:DescribeRouteTables"))?;
        let associations: Vec<RouteTableAssociation> = table
            .route_tables()
            .iter()
            .flat_map(|t| t.associations())
            .filter(|x| x.subnet_id().is_some())
            .cloned()
            .collect();
        let wanted = after
            .subnets
            .iter()
            .map(|s| id_of(ids, s, a))
            .collect::<Result<Vec<_>, _>>()?;
        for assoc in &associations {
            if !wanted.iter().any(|w| Some(w.as_str()) == assoc.subnet_id()) {
                let assoc_id = assoc.route_table_association_id().unwrap_or_default();
                ec2.disassociate_route_table()
                    .association_id(assoc_id)
                    .send()
                    .await
                    .map_err(fail(a, "ec2:DisassociateRouteTable"))?;
            }
        }
        for subnet in &wanted {
            if !associations.iter().any(|x| x.subnet_id() == Some(subnet)) {
                retry_on(NOT_FOUND_YET, || async {
                    ec2.associate_route_table()
                        .route_table_id(id)
                        .subnet_id(subnet)
                        .send()
                        .await
                        .map(drop)
                        .map_err(fail(a, "ec2:AssociateRouteTable"))
                })
                .await?;
            }
        }
        Ok(())
    }

    async fn authorize(
        &self,
        a: &Address,
        id: &str,
        rules: &[Rule],
        ids: &Ids,
    ) -> Result<(), CloudError> {
        if rules.is_empty() {
            return Ok(());
        }
        let perms = rules
            .iter()
            .map(|r| permission(r, ids, a))
            .collect::<Result<Vec<_>, _>>()?;
        retry_on(NOT_FOUND_YET, || async {
            let r = self
                .ec2
                .authorize_security_group_ingress()
                .group_id(id)
                .set_ip_permissions(Some(perms.clone()))
                .send()
                .await;
            match r.map_err(fail(a, "ec2:AuthorizeSecurityGroupIngress")) {
                Err(e) if e.code() == Some("InvalidPermission.Duplicate") => Ok(()),
                other => other.map(drop),
            }
        })
        .await
    }

    async fn revoke(
        &self,
        a: &Address,
        id: &str,
        rules: &[Rule],
        ids: &Ids,
    ) -> Result<(), CloudError> {
        if rules.is_empty() {
            return Ok(());
        }
        let perms = rules
            .iter()
            .map(|r| permission(r, ids, a))
            .collect::<Result<Vec<_>, _>>()?;
        let r = self
            .ec2
            .revoke_security_group_ingress()
            .group_id(id)
            .set_ip_permissions(Some(perms))
            .send()
            .await;
        match r.map_err(fail(a, "ec2:RevokeSecurityGroupIngress")) {
            Err(e) if e.code() == Some("InvalidPermission.NotFound") => Ok(()),
            other => other.map(drop),
        }
    }
}
