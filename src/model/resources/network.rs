//! The network: the VPC, a public subnet per zone, the internet gateway and the route table.

use super::{Resource, addr, subnet_addresses};
use crate::model::*;

pub(super) fn expand(stack: &Stack, out: &mut Vec<Resource>) {
    let mut add = |address: Address, spec: Spec| out.push(Resource { address, spec });
    let vpc = addr("vpc");
    add(
        vpc.clone(),
        Spec::Vpc(VpcSpec {
            cidr: stack.network.cidr.to_string(),
            dns_hostnames: true,
        }),
    );
    let subnets = subnet_addresses(stack);
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
            vpc,
            default_route: Some(addr("igw")),
            subnets,
        }),
    );
}
