//! Creating, changing and removing the EC2 half of a stack: which step each kind of object
//! takes. The calls are by job: [`network`] (VPC, subnets, internet gateway, route tables,
//! security groups) and [`instances`] (key pair, launch, retag, terminate, images).

mod instances;
mod network;

use std::collections::BTreeMap;

use aws_sdk_ec2::types::*;

use super::read::{TAG_ADDRESS, TAG_STACK};
use super::{Cloud, CloudError, Created, Ids};
use crate::model::{Address, Spec};

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
        let name = format!("{}-{}", self.stack, a);
        let mut tags = self.tags(a);
        tags.push(("Name", &name));
        let id = match spec {
            Spec::Vpc(v) => self.create_vpc(a, v, &tags).await?,
            Spec::Subnet(s) => self.create_subnet(a, s, ids, &tags).await?,
            Spec::InternetGateway(g) => self.create_internet_gateway(a, g, ids, &tags).await?,
            Spec::RouteTable(r) => self.create_route_table(a, r, ids, &tags).await?,
            Spec::SecurityGroup(g) => self.create_security_group(a, g, ids, &tags).await?,
            Spec::KeyPair(k) => self.import_key_pair(a, k, &tags).await?,
            other => {
                return Err(CloudError::Invalid {
                    resource: a.to_string(),
                    message: format!("{} is not an EC2 object", other.kind()),
                });
            }
        };
        Ok(created(id, spec))
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
                self.reattach_gateway(a, id, g, ids).await
            }
            (Spec::RouteTable(b), Spec::RouteTable(r)) => {
                self.update_route_table(a, id, b, r, ids).await
            }
            (Spec::SecurityGroup(b), Spec::SecurityGroup(g)) => {
                self.update_ingress(a, id, b, g, ids).await
            }
            (Spec::Instance(b), Spec::Instance(i)) => self.update_instance(a, id, b, i, ids).await,
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
        let gone = |r: Result<(), CloudError>| match r {
            Err(e) if e.code().is_some_and(|c| c.ends_with(".NotFound")) => Ok(()),
            other => other,
        };
        // Only the last call of each kind is forgiven a NotFound: a step before it that fails
        // (`?`) fails the delete.
        gone(match spec {
            Spec::Vpc(_) => self.delete_vpc(a, id).await,
            Spec::Subnet(_) => self.delete_subnet(a, id).await,
            Spec::InternetGateway(_) => {
                self.detach_gateway(a, id, &|line| tracing::info!("{line}"))
                    .await?;
                self.delete_internet_gateway(a, id).await
            }
            Spec::RouteTable(r) => {
                self.clear_route_table(a, id, r).await?;
                self.delete_route_table(a, id).await
            }
            Spec::SecurityGroup(_) => self.delete_security_group(a, id).await,
            Spec::KeyPair(_) => self.delete_key_pair(a, id).await,
            Spec::Instance(_) => {
                self.terminate_instance(a, id).await?;
                // Wait, so that the subnet and security groups can go next.
                self.wait_terminated(a, id).await
            }
            other => Err(CloudError::Invalid {
                resource: a.to_string(),
                message: format!("{} is not an EC2 object", other.kind()),
            }),
        })
    }
}
