//! Security groups: the load balancer's (80/443 from ingress_cidrs), the nodes' (the target
//! port from the load balancer, the Swarm's ports among themselves, SSH) and the bastion's.

use super::{Names, Resource, addr};
use crate::model::*;

/// IP protocol 50 (IPsec ESP), as EC2 names it in security group rules.
pub const ESP: &str = "50";

pub(super) fn expand(stack: &Stack, out: &mut Vec<Resource>) {
    let mut add = |address: Address, spec: Spec| out.push(Resource { address, spec });
    let vpc = addr("vpc");
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
            vpc,
            ingress: node_rules,
        }),
    );
}
