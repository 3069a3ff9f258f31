//! The Swarm read into the model's terms: members, services, secrets, networks and configs
//! by address, as the plan compares them.

use std::collections::BTreeMap;

use super::docker::{self, Member, SwarmView};
use super::members::LABEL_INSTANCE_ID;
use super::node::Node;
use super::{LABEL_CONTENT, Swarm};
use crate::compose::LABEL_DEFINITION;
use crate::model::resources::{
    LABEL_ADDRESS, config_address, network_address, normalize_image, service_address,
    swarm_address, swarm_secret_address,
};
use crate::model::{
    Address, CONVERGED, Live, Observed, ServiceSpec, Spec, SwarmConfigSpec, SwarmNetworkSpec,
    SwarmNodeSpec, SwarmSecretSpec,
};

impl Swarm<'_> {
    /// The Swarm in address space: members, services, secrets, networks and configs. `nodes`
    /// are the live instances: a member belongs to the instance its `infra.instance-id` label
    /// names, whatever that instance's address now is (a rolling replacement retags the old
    /// one `…/old`); else to the address its `infra.address` label names; else to the instance
    /// with its private IP (joined, not labelled yet: an interrupted run).
    pub fn observe(&self, view: &SwarmView, nodes: &[Node]) -> Live {
        let mut live = Self::observe_members(&view.members, nodes);
        let prefix = format!("{}_", self.stack);
        // infra's networks carry their address; one `docker stack deploy` made for the stack is
        // `<stack>_<key>`.
        let address_of = |n: &docker::NetworkInfo| match n.labels.get(LABEL_ADDRESS) {
            Some(a) => Some(Address::new(a.as_str())),
            None => n.name.strip_prefix(&prefix).map(network_address),
        };
        // A service names its networks by id or name.
        let network_of: BTreeMap<&str, Address> = view
            .networks
            .iter()
            .filter_map(|n| {
                let a = address_of(n)?;
                Some([(n.id.as_str(), a.clone()), (n.name.as_str(), a)])
            })
            .flatten()
            .collect();
        observe_networks(view, &address_of, &mut live);
        observe_configs(view, &mut live);
        observe_services(view, &prefix, &network_of, &mut live);
        observe_secrets(view, &mut live);
        live
    }

    fn observe_members(members: &[Member], nodes: &[Node]) -> Live {
        let mut sorted: Vec<&Member> = members.iter().collect();
        // A working member wins its address over a stale Down entry of the same node.
        sorted.sort_by_key(|m| m.state != "ready");
        let mut live = Live::new();
        for m in sorted {
            let mut labels = m.labels.clone();
            let instance_id = labels.remove(LABEL_INSTANCE_ID);
            let by_id = instance_id
                .as_ref()
                .and_then(|id| nodes.iter().find(|n| &n.host.instance_id == id));
            let instance = by_id
                .map(|n| n.host.address.clone())
                .or_else(|| {
                    m.labels
                        .get(LABEL_ADDRESS)
                        .map(|a| Address::new(a.as_str()))
                })
                .or_else(|| {
                    let by_ip = nodes.iter().find(|n| n.private_ip == m.addr);
                    by_ip.map(|n| n.host.address.clone())
                });
            let address = match &instance {
                Some(i) if !live.contains_key(&swarm_address(i)) => swarm_address(i),
                _ => Address::new(format!("orphan.swarm_node.{}", m.id)),
            };
            let spec = SwarmNodeSpec {
                instance: instance.unwrap_or_else(|| Address::new(m.hostname.clone())),
                role: m.role.clone(),
                availability: m.availability.clone(),
                state: m.state.clone(),
                labels,
            };
            let mut outputs = BTreeMap::from([
                ("hostname".to_string(), m.hostname.clone()),
                ("addr".to_string(), m.addr.clone()),
                ("leader".to_string(), m.leader.to_string()),
            ]);
            outputs.extend(instance_id.map(|id| ("instance_id".to_string(), id)));
            live.insert(
                address,
                Observed {
                    id: m.id.clone(),
                    spec: Spec::SwarmNode(spec),
                    outputs,
                },
            );
        }
        live
    }
}

/// infra's networks, by the address `address_of` gives them.
fn observe_networks(
    view: &SwarmView,
    address_of: &dyn Fn(&docker::NetworkInfo) -> Option<Address>,
    live: &mut Live,
) {
    for n in &view.networks {
        let Some(address) = address_of(n) else {
            continue;
        };
        let spec = SwarmNetworkSpec {
            name: n.name.clone(),
            driver: n.driver.clone(),
            attachable: n.attachable,
            internal: n.internal,
            encrypted: n.options.contains_key("encrypted"),
            definition_sha256: n.labels.get(LABEL_DEFINITION).cloned().unwrap_or_default(),
            create_args: Vec::new(),
        };
        live.insert(
            address,
            Observed {
                id: n.id.clone(),
                spec: Spec::SwarmNetwork(spec),
                outputs: BTreeMap::new(),
            },
        );
    }
}

/// The configs, by their name (which holds their content hash).
fn observe_configs(view: &SwarmView, live: &mut Live) {
    for c in &view.configs {
        let spec = SwarmConfigSpec {
            name: c.name.clone(),
            content_sha256: c.labels.get(LABEL_CONTENT).cloned().unwrap_or_default(),
            template_driver: c.template_driver.clone(),
            content: String::new(),
        };
        live.insert(
            config_address(&c.name),
            Observed {
                id: c.id.clone(),
                spec: Spec::SwarmConfig(spec),
                outputs: BTreeMap::new(),
            },
        );
    }
}

/// The stack's services (`<stack>_<name>`), with what they use of infra's objects.
fn observe_services(
    view: &SwarmView,
    prefix: &str,
    network_of: &BTreeMap<&str, Address>,
    live: &mut Live,
) {
    for s in &view.services {
        let short = s.name.strip_prefix(prefix).unwrap_or(&s.name);
        // External secrets, configs and networks are the file's to name, not plan objects.
        let ours = |used: &[String], address: &dyn Fn(&str) -> Option<Address>| {
            let mut list: Vec<Address> = used.iter().filter_map(|n| address(n)).collect();
            list.sort();
            list
        };
        let secrets = ours(&s.secrets, &|n| {
            let known = view.secrets.iter().any(|o| o.name == n);
            known.then(|| swarm_secret_address(n))
        });
        let configs = ours(&s.configs, &|n| {
            let known = view.configs.iter().any(|o| o.name == n);
            known.then(|| config_address(n))
        });
        let networks = ours(&s.networks, &|n| network_of.get(n).cloned());
        let spec = ServiceSpec {
            image: normalize_image(&s.image),
            mode: s.mode.clone(),
            state: service_state(s),
            ports: s.ports.clone(),
            secrets,
            networks,
            configs,
            definition_sha256: s.labels.get(LABEL_DEFINITION).cloned().unwrap_or_default(),
            definition: String::new(),
        };
        let outputs = BTreeMap::from([
            ("name".to_string(), s.name.clone()),
            ("replicas".to_string(), s.replicas.clone()),
            ("update_state".to_string(), s.update_state.clone()),
            ("image".to_string(), s.image.clone()),
        ]);
        live.insert(
            service_address(short),
            Observed {
                id: s.id.clone(),
                spec: Spec::Service(spec),
                outputs,
            },
        );
    }
}

/// [`CONVERGED`], or what Docker reports that will not resolve by itself: an update paused or a
/// rollback paused, or fewer tasks running than asked for (a job: fewer runs completed) where a
/// task failed or cannot be placed, with that task's error. Tasks still starting, an update
/// still under way and tasks that completed (a one-shot service) are Docker's to finish, not
/// changes. What `docker service ls`, `inspect` and `ps` show
/// (https://docs.docker.com/engine/swarm/how-swarm-mode-works/swarm-task-states/).
fn service_state(s: &docker::ServiceInfo) -> String {
    let failed = s.tasks.iter().find(|t| !t.error.trim().is_empty());
    let mut parts: Vec<String> = Vec::new();
    let update = match s.update_state.as_str() {
        "paused" => Some("update paused"),
        "rollback_paused" => Some("rollback paused"),
        _ => None,
    };
    if let Some(update) = update {
        parts.push(match s.update_message.trim() {
            "" => update.to_string(),
            message => format!("{update} ({message})"),
        });
    }
    let job = s.mode.ends_with("-job");
    if let Some((done, wanted)) = docker::replica_counts(&s.replicas)
        && done < wanted
        && failed.is_some()
    {
        let what = if job { "completed" } else { "running" };
        parts.push(format!("{done} of {wanted} tasks {what}"));
    }
    if parts.is_empty() {
        return CONVERGED.to_string();
    }
    if let Some(t) = failed {
        let state = t.current.split_whitespace().next().unwrap_or_default();
        parts.push(format!(
            "{} {}: {}",
            t.name,
            state.to_lowercase(),
            t.error.trim()
        ));
    }
    parts.join("; ")
}

/// The Swarm secrets, each tied to its stack secret by its `infra.secret` label.
fn observe_secrets(view: &SwarmView, live: &mut Live) {
    for s in &view.secrets {
        let secret = s.labels.get("infra.secret").cloned().unwrap_or_default();
        live.insert(
            swarm_secret_address(&s.name),
            Observed {
                id: s.id.clone(),
                spec: Spec::SwarmSecret(SwarmSecretSpec {
                    name: s.name.clone(),
                    secret: Address::new(secret),
                }),
                outputs: BTreeMap::new(),
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::swarm::docker::{ServiceInfo, TaskInfo};

    fn info(replicas: &str, update_state: &str, message: &str) -> ServiceInfo {
        ServiceInfo {
            id: "s1".into(),
            name: "demo_db".into(),
            image: "db:1".into(),
            mode: "replicated 1".into(),
            ports: vec![],
            secrets: vec![],
            configs: vec![],
            networks: vec![],
            labels: BTreeMap::new(),
            replicas: replicas.into(),
            update_state: update_state.into(),
            update_message: message.into(),
            tasks: vec![],
        }
    }

    fn task(name: &str, desired: &str, current: &str, error: &str) -> TaskInfo {
        TaskInfo {
            name: name.into(),
            desired: desired.into(),
            current: current.into(),
            error: error.into(),
        }
    }

    #[test]
    fn a_service_is_converged_when_docker_runs_what_it_asks_for() {
        for (replicas, update) in [
            ("2/2", ""),
            ("3/3", "completed"),
            ("1/1", "rollback_completed"),
            ("2/2 (max 1 per node)", ""),
            ("0/1 (1/1 completed)", ""),
            // Docker's to finish: an update under way, tasks starting, a one-shot that completed.
            ("1/2", "updating"),
            ("1/2", ""),
            ("0/1", ""),
        ] {
            let mut s = info(replicas, update, "");
            s.tasks = vec![
                task("demo_db.1", "Running", "Starting 1 second ago", ""),
                task("demo_db.1", "Shutdown", "Complete 1 minute ago", ""),
            ];
            assert_eq!(service_state(&s), CONVERGED, "{replicas} {update}");
        }
    }

    #[test]
    fn what_docker_will_not_resolve_by_itself_is_the_state() {
        let mut db = info("0/1", "", "");
        db.tasks = vec![
            task("demo_db.1", "Running", "Pending 1 second ago", ""),
            task(
                "demo_db.1",
                "Shutdown",
                "Rejected 6 seconds ago",
                "invalid mount config for type \"bind\": bind source path does not exist: /srv/db",
            ),
        ];
        assert_eq!(
            service_state(&db),
            "0 of 1 tasks running; demo_db.1 rejected: invalid mount config for type \"bind\": bind source path does not exist: /srv/db"
        );
        let paused = info(
            "1/1",
            "paused",
            "update paused due to failure or early termination of task x",
        );
        assert_eq!(
            service_state(&paused),
            "update paused (update paused due to failure or early termination of task x)"
        );
        let mut unplaced = info("1/2 (max 1 per node)", "", "");
        unplaced.tasks = vec![task(
            "demo_db.2",
            "Running",
            "Pending 5 seconds ago",
            "no suitable node (max replicas per node limit exceed)",
        )];
        assert_eq!(
            service_state(&unplaced),
            "1 of 2 tasks running; demo_db.2 pending: no suitable node (max replicas per node limit exceed)"
        );
        let mut job = info("0/1 (0/1 completed)", "", "");
        job.mode = "replicated-job".into();
        job.tasks = vec![task(
            "demo_db.1",
            "Complete",
            "Failed 2 seconds ago",
            "task: non-zero exit (1)",
        )];
        assert_eq!(
            service_state(&job),
            "0 of 1 tasks completed; demo_db.1 failed: task: non-zero exit (1)"
        );
    }
}
