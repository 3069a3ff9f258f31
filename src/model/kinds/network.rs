//! The network: a VPC, its subnets (one a zone), the internet gateway and the route table.

use serde::{Deserialize, Serialize};

use super::{Kind, Place};
use crate::model::Address;

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

impl Kind for VpcSpec {
    const NAME: &'static str = "vpc";
    const PLACE: Place = Place::Ec2;
    const REPLACE_FIELDS: &'static [&'static str] = &["cidr"];
    fn references(&self) -> Vec<&Address> {
        vec![]
    }
}

impl Kind for SubnetSpec {
    const NAME: &'static str = "subnet";
    const PLACE: Place = Place::Ec2;
    const REPLACE_FIELDS: &'static [&'static str] = &["vpc", "cidr", "zone"];
    fn references(&self) -> Vec<&Address> {
        vec![&self.vpc]
    }
}

impl Kind for InternetGatewaySpec {
    const NAME: &'static str = "internet_gateway";
    const PLACE: Place = Place::Ec2;
    const REPLACE_FIELDS: &'static [&'static str] = &[];
    fn references(&self) -> Vec<&Address> {
        self.vpc.iter().collect()
    }
}

impl Kind for RouteTableSpec {
    const NAME: &'static str = "route_table";
    const PLACE: Place = Place::Ec2;
    const REPLACE_FIELDS: &'static [&'static str] = &["vpc"];
    fn references(&self) -> Vec<&Address> {
        [&self.vpc]
            .into_iter()
            .chain(&self.default_route)
            .chain(&self.subnets)
            .collect()
    }
}
