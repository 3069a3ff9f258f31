//! The load balancer: the ALB, the target group of the target port, the HTTPS listener that
//! forwards to it, the HTTP listener that redirects, and the registered targets.

use super::{Names, Resource, ServiceInput, addr, subnet_addresses};
use crate::model::*;

/// Adds the load balancer's objects; `nodes` are registered until the services are known
/// ([`fit_targets`]).
pub(super) fn expand(stack: &Stack, nodes: &[Address], out: &mut Vec<Resource>) {
    let mut add = |address: Address, spec: Spec| out.push(Resource { address, spec });
    let (vpc, subnets, sg_lb) = (addr("vpc"), subnet_addresses(stack), addr("sg.lb"));
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
            instances: nodes.to_vec(),
            health: HealthWait::All,
        }),
    );
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
/// (see [`crate::model::targets::serving`]): `services` is None when infra does not run the Swarm.
pub fn fit_targets(stack: &Stack, resources: &mut [Resource], services: Option<&[ServiceInput]>) {
    let port = stack.load_balancer.target_port;
    let nodes: Vec<crate::model::targets::NodeFacts> = resources
        .iter()
        .filter_map(|r| match &r.spec {
            Spec::SwarmNode(n) => Some(crate::model::targets::NodeFacts {
                address: n.instance.clone(),
                role: n.role.clone(),
                labels: n.labels.clone(),
            }),
            _ => None,
        })
        .collect();
    let publishers: Option<Vec<crate::model::targets::Publisher>> = services.map(|list| {
        list.iter()
            .map(|s| crate::model::targets::Publisher {
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
    let (instances, health) = crate::model::targets::serving(&nodes, publishers.as_deref(), port);
    if publishers.is_some() {
        targets.instances = instances;
        targets.instances.sort();
    }
    targets.health = health;
}
