//! The EC2 calls of the stack's network: VPC, subnets, internet gateway, route tables and
//! security groups (their attributes, attachments, routes, associations and rules).

use std::time::Duration;

use aws_sdk_ec2::types::*;

use super::tag_spec;
use crate::cloud::{Cloud, CloudError, IN_USE, Ids, NOT_FOUND_YET, fail, id_of, retry_on};
use crate::model::{
    Address, InternetGatewaySpec, RouteTableSpec, Rule, SecurityGroupSpec, Source, SubnetSpec,
    VpcSpec,
};

/// How long a gateway's detach is retried while AWS releases the VPC's public addresses.
pub const DETACH_TIMEOUT: Duration = Duration::from_secs(600);

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

/// A route table's spec without its default route and subnets.
fn emptied(r: &RouteTableSpec) -> RouteTableSpec {
    RouteTableSpec {
        vpc: r.vpc.clone(),
        default_route: None,
        subnets: vec![],
    }
}

impl Cloud {
    /// CreateVpc, then its DNS hostnames attribute; the VPC's id.
    pub(super) async fn create_vpc(
        &self,
        a: &Address,
        v: &VpcSpec,
        tags: &[(&str, &str)],
    ) -> Result<String, CloudError> {
        let out = self
            .ec2
            .create_vpc()
            .cidr_block(&v.cidr)
            .tag_specifications(tag_spec(ResourceType::Vpc, tags))
            .send()
            .await
            .map_err(fail(a, "ec2:CreateVpc"))?;
        let id = out.vpc.and_then(|v| v.vpc_id).unwrap_or_default();
        self.set_dns_hostnames(a, &id, v.dns_hostnames).await?;
        Ok(id)
    }

    /// CreateSubnet (retried while the VPC is not known yet), then its public IP attribute;
    /// the subnet's id.
    pub(super) async fn create_subnet(
        &self,
        a: &Address,
        s: &SubnetSpec,
        ids: &Ids,
        tags: &[(&str, &str)],
    ) -> Result<String, CloudError> {
        let out = retry_on(NOT_FOUND_YET, || async {
            self.ec2
                .create_subnet()
                .vpc_id(id_of(ids, &s.vpc, a)?)
                .cidr_block(&s.cidr)
                .availability_zone(&s.zone)
                .tag_specifications(tag_spec(ResourceType::Subnet, tags))
                .send()
                .await
                .map_err(fail(a, "ec2:CreateSubnet"))
        })
        .await?;
        let id = out.subnet.and_then(|s| s.subnet_id).unwrap_or_default();
        self.set_map_public_ip(a, &id, s.map_public_ip).await?;
        Ok(id)
    }

    /// CreateInternetGateway, then its attachment to the VPC if it has one; the gateway's id.
    pub(super) async fn create_internet_gateway(
        &self,
        a: &Address,
        g: &InternetGatewaySpec,
        ids: &Ids,
        tags: &[(&str, &str)],
    ) -> Result<String, CloudError> {
        let out = self
            .ec2
            .create_internet_gateway()
            .tag_specifications(tag_spec(ResourceType::InternetGateway, tags))
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
        Ok(id)
    }

    /// CreateRouteTable, then its default route and subnet associations; the table's id.
    pub(super) async fn create_route_table(
        &self,
        a: &Address,
        r: &RouteTableSpec,
        ids: &Ids,
        tags: &[(&str, &str)],
    ) -> Result<String, CloudError> {
        let out = retry_on(NOT_FOUND_YET, || async {
            self.ec2
                .create_route_table()
                .vpc_id(id_of(ids, &r.vpc, a)?)
                .tag_specifications(tag_spec(ResourceType::RouteTable, tags))
                .send()
                .await
                .map_err(fail(a, "ec2:CreateRouteTable"))
        })
        .await?;
        let id = out
            .route_table
            .and_then(|t| t.route_table_id)
            .unwrap_or_default();
        self.update_route_table(a, &id, &emptied(r), r, ids).await?;
        Ok(id)
    }

    /// CreateSecurityGroup, then its ingress rules (which may name the group itself); the
    /// group's id.
    pub(super) async fn create_security_group(
        &self,
        a: &Address,
        g: &SecurityGroupSpec,
        ids: &Ids,
        tags: &[(&str, &str)],
    ) -> Result<String, CloudError> {
        let out = retry_on(NOT_FOUND_YET, || async {
            self.ec2
                .create_security_group()
                .group_name(&g.name)
                .description(&g.description)
                .vpc_id(id_of(ids, &g.vpc, a)?)
                .tag_specifications(tag_spec(ResourceType::SecurityGroup, tags))
                .send()
                .await
                .map_err(fail(a, "ec2:CreateSecurityGroup"))
        })
        .await?;
        let id = out.group_id.unwrap_or_default();
        let mut ids = ids.clone();
        ids.insert(a.clone(), id.clone()); // a group may refer to itself
        self.authorize(a, &id, &g.ingress, &ids).await?;
        Ok(id)
    }

    /// Detaches the gateway from its VPC, then attaches it to the one `g` names, if any.
    pub(super) async fn reattach_gateway(
        &self,
        a: &Address,
        id: &str,
        g: &InternetGatewaySpec,
        ids: &Ids,
    ) -> Result<(), CloudError> {
        self.detach_gateway(a, id, &|line| tracing::info!("{line}"))
            .await?;
        match &g.vpc {
            Some(vpc) => self.attach_gateway(a, id, &id_of(ids, vpc, a)?).await,
            None => Ok(()),
        }
    }

    /// Revokes the rules `before` has and `after` has not, then authorizes the new ones.
    pub(super) async fn update_ingress(
        &self,
        a: &Address,
        id: &str,
        before: &SecurityGroupSpec,
        after: &SecurityGroupSpec,
        ids: &Ids,
    ) -> Result<(), CloudError> {
        let (b, g) = (before, after);
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

    pub(super) async fn delete_vpc(&self, a: &Address, id: &str) -> Result<(), CloudError> {
        retry_on(IN_USE, || async {
            self.ec2
                .delete_vpc()
                .vpc_id(id)
                .send()
                .await
                .map(drop)
                .map_err(fail(a, "ec2:DeleteVpc"))
        })
        .await
    }

    pub(super) async fn delete_subnet(&self, a: &Address, id: &str) -> Result<(), CloudError> {
        retry_on(IN_USE, || async {
            self.ec2
                .delete_subnet()
                .subnet_id(id)
                .send()
                .await
                .map(drop)
                .map_err(fail(a, "ec2:DeleteSubnet"))
        })
        .await
    }

    /// DeleteInternetGateway (once [`Cloud::detach_gateway`] has detached it).
    pub(super) async fn delete_internet_gateway(
        &self,
        a: &Address,
        id: &str,
    ) -> Result<(), CloudError> {
        self.ec2
            .delete_internet_gateway()
            .internet_gateway_id(id)
            .send()
            .await
            .map(drop)
            .map_err(fail(a, "ec2:DeleteInternetGateway"))
    }

    /// Removes the table's default route and subnet associations, so that it can be deleted.
    pub(super) async fn clear_route_table(
        &self,
        a: &Address,
        id: &str,
        r: &RouteTableSpec,
    ) -> Result<(), CloudError> {
        self.update_route_table(a, id, r, &emptied(r), &Ids::new())
            .await
    }

    /// DeleteRouteTable (once [`Cloud::clear_route_table`] has emptied it).
    pub(super) async fn delete_route_table(&self, a: &Address, id: &str) -> Result<(), CloudError> {
        self.ec2
            .delete_route_table()
            .route_table_id(id)
            .send()
            .await
            .map(drop)
            .map_err(fail(a, "ec2:DeleteRouteTable"))
    }

    pub(super) async fn delete_security_group(
        &self,
        a: &Address,
        id: &str,
    ) -> Result<(), CloudError> {
        retry_on(IN_USE, || async {
            self.ec2
                .delete_security_group()
                .group_id(id)
                .send()
                .await
                .map(drop)
                .map_err(fail(a, "ec2:DeleteSecurityGroup"))
        })
        .await
    }

    pub(super) async fn set_dns_hostnames(
        &self,
        a: &Address,
        id: &str,
        on: bool,
    ) -> Result<(), CloudError> {
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

    pub(super) async fn set_map_public_ip(
        &self,
        a: &Address,
        id: &str,
        on: bool,
    ) -> Result<(), CloudError> {
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
    pub(super) async fn update_route_table(
        &self,
        a: &Address,
        id: &str,
        before: &RouteTableSpec,
        after: &RouteTableSpec,
        ids: &Ids,
    ) -> Result<(), CloudError> {
        if before.default_route != after.default_route {
            self.set_default_route(a, id, before, after, ids).await?;
        }
        if before.subnets == after.subnets {
            return Ok(());
        }
        self.associate_subnets(a, id, after, ids).await
    }

    /// Creates, replaces or deletes the `0.0.0.0/0` route, as `before` had one and `after`
    /// has one.
    async fn set_default_route(
        &self,
        a: &Address,
        id: &str,
        before: &RouteTableSpec,
        after: &RouteTableSpec,
        ids: &Ids,
    ) -> Result<(), CloudError> {
        let ec2 = &self.ec2;
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
        Ok(())
    }

    /// Reads the table's subnet associations, drops those `after` does not list, then adds
    /// the missing ones.
    async fn associate_subnets(
        &self,
        a: &Address,
        id: &str,
        after: &RouteTableSpec,
        ids: &Ids,
    ) -> Result<(), CloudError> {
        let ec2 = &self.ec2;
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
