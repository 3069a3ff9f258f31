//! Which nodes the target group gets, and what apply waits for once they are registered.
//!
//! A node can serve the target port only if a service publishes it there: Docker's routing
//! mesh (`mode: ingress`) answers on every node, host-mode publishing only on the nodes that run
//! one of the service's tasks ("Use swarm mode routing mesh", docs.docker.com/engine/swarm/
//! ingress). An ALB target that nothing serves never turns healthy ("Health checks for your
//! target groups", docs.aws.amazon.com/elasticloadbalancing/latest/application/
//! target-group-health-checks.html), so waiting for it would only time out.

use std::collections::BTreeMap;

use super::{Address, HealthWait};

/// A node as placement constraints see it: its role and labels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeFacts {
    pub address: Address,
    /// `manager` or `worker`.
    pub role: String,
    pub labels: BTreeMap<String, String>,
}

/// A service publishing a port, as its compose definition says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publisher {
    pub name: String,
    /// `published:target/protocol (mode)`, as `ServiceSpec::ports` holds them.
    pub ports: Vec<String>,
    /// `global` or `replicated N`.
    pub mode: String,
    /// `deploy.placement.constraints`, e.g. `node.role == worker`.
    pub placement: Vec<String>,
}

/// The nodes to register for `target_port`, and what to wait for. `services`: None when infra
/// does not run the Swarm.
pub fn serving(
    nodes: &[NodeFacts],
    services: Option<&[Publisher]>,
    target_port: u16,
) -> (Vec<Address>, HealthWait) {
    let all: Vec<Address> = nodes.iter().map(|n| n.address.clone()).collect();
    let Some(services) = services else {
        let why = format!(
            "the Swarm is off ([swarm] enabled = false), so nothing infra deploys listens on port {target_port}"
        );
        return (all, HealthWait::Skip(why));
    };
    let publishers: Vec<(&Publisher, &str)> = services
        .iter()
        .filter_map(|s| Some((s, publish_mode(&s.ports, target_port)?)))
        .collect();
    if publishers.is_empty() {
        let why = format!("no service publishes port {target_port}");
        return (all, HealthWait::Skip(why));
    }
    if publishers.iter().any(|(_, mode)| *mode == "ingress") {
        return (all, HealthWait::All);
    }
    let mut eligible: Vec<Address> = Vec::new();
    let mut replicas = 0;
    let mut global = false;
    for (s, _) in &publishers {
        let here: Vec<&NodeFacts> = nodes
            .iter()
            .filter(|n| s.placement.iter().all(|c| satisfies(c, n)))
            .collect();
        match s.mode.strip_prefix("replicated ") {
            Some(n) => replicas += n.trim().parse::<usize>().unwrap_or(1).min(here.len()),
            None => global = true,
        }
        for n in here {
            if !eligible.contains(&n.address) {
                eligible.push(n.address.clone());
            }
        }
    }
    eligible.sort();
    let wait = if global {
        HealthWait::All
    } else {
        HealthWait::AtLeast(replicas.min(eligible.len()))
    };
    (eligible, wait)
}

/// How a service publishes `port`, if it does: `host` or `ingress`.
fn publish_mode(ports: &[String], port: u16) -> Option<&str> {
    ports.iter().find_map(|p| {
        let (published, rest) = p.split_once(':')?;
        let mode = rest.split_once('(')?.1.trim_end_matches(')');
        (published.parse::<u16>().ok()? == port && rest.contains("/tcp")).then_some(mode)
    })
}

/// Whether a node meets one placement constraint (`node.role == manager`,
/// `node.labels.infra.zone != us-east-1a`, …). Constraints on what the plan cannot know
/// (`node.hostname`, `engine.labels.*`) are taken as met: the node may serve.
pub fn satisfies(constraint: &str, node: &NodeFacts) -> bool {
    let (key, want, equal) = match (constraint.split_once("=="), constraint.split_once("!=")) {
        (Some((k, v)), _) => (k, v, true),
        (None, Some((k, v))) => (k, v, false),
        _ => return true,
    };
    let (key, want) = (key.trim(), want.trim());
    let have = match key {
        "node.role" => Some(node.role.as_str()),
        k => k
            .strip_prefix("node.labels.")
            .map(|label| node.labels.get(label).map_or("", String::as_str)),
    };
    have.is_none_or(|have| (have == want) == equal)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(pool: &str, i: usize, zone: &str) -> NodeFacts {
        NodeFacts {
            address: Address::node(pool, i),
            role: pool.to_string(),
            labels: BTreeMap::from([
                ("infra.pool".to_string(), pool.to_string()),
                ("infra.zone".to_string(), zone.to_string()),
            ]),
        }
    }

    fn nodes() -> Vec<NodeFacts> {
        vec![
            node("manager", 0, "a"),
            node("worker", 0, "a"),
            node("worker", 1, "b"),
        ]
    }

    fn web(ports: &str, mode: &str, placement: &[&str]) -> Publisher {
        Publisher {
            name: "web".into(),
            ports: vec![ports.into()],
            mode: mode.into(),
            placement: placement.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn without_the_swarm_every_node_is_registered_and_none_waited_for() {
        let (registered, wait) = serving(&nodes(), None, 8080);
        assert_eq!(registered.len(), 3);
        assert!(
            matches!(&wait, HealthWait::Skip(why) if why.contains("[swarm] enabled = false")),
            "{wait:?}"
        );
    }

    #[test]
    fn a_port_nobody_publishes_is_not_waited_for() {
        let other = web("9000:9000/tcp (host)", "global", &[]);
        let (registered, wait) = serving(&nodes(), Some(&[other]), 8080);
        assert_eq!(registered.len(), 3);
        assert_eq!(
            wait,
            HealthWait::Skip("no service publishes port 8080".into())
        );
    }

    #[test]
    fn the_routing_mesh_serves_on_every_node() {
        let s = web(
            "8080:80/tcp (ingress)",
            "replicated 1",
            &["node.role == worker"],
        );
        assert_eq!(
            serving(&nodes(), Some(&[s]), 8080),
            (
                nodes().into_iter().map(|n| n.address).collect(),
                HealthWait::All
            )
        );
    }

    #[test]
    fn host_mode_serves_where_the_tasks_may_run() {
        let global = web("8080:80/tcp (host)", "global", &["node.role==worker"]);
        let (registered, wait) = serving(&nodes(), Some(&[global]), 8080);
        assert_eq!(
            registered,
            [Address::node("worker", 0), Address::node("worker", 1)]
        );
        assert_eq!(wait, HealthWait::All);

        let two = web("8080:80/tcp (host)", "replicated 2", &[]);
        let (registered, wait) = serving(&nodes(), Some(&[two]), 8080);
        assert_eq!(registered.len(), 3, "any node may get one of the 2 tasks");
        assert_eq!(wait, HealthWait::AtLeast(2));

        let zone = web(
            "8080:80/tcp (host)",
            "replicated 5",
            &["node.labels.infra.zone != a"],
        );
        let (registered, wait) = serving(&nodes(), Some(&[zone]), 8080);
        assert_eq!(registered, [Address::node("worker", 1)]);
        assert_eq!(wait, HealthWait::AtLeast(1), "one port, one task a node");
    }

    #[test]
    fn constraints_the_plan_cannot_judge_are_met() {
        let n = &nodes()[1];
        assert!(satisfies("node.hostname == ip-10-0-1-5", n));
        assert!(satisfies("engine.labels.disk == ssd", n));
        assert!(satisfies("node.role != manager", n));
        assert!(!satisfies("node.labels.infra.pool == manager", n));
        assert!(!satisfies("node.labels.missing == x", n));
    }
}
