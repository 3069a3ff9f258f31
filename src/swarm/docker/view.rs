//! What the Swarm holds, in one call: the `list` script, and the parsing of what it prints into a
//! [`SwarmView`] (nodes, services, secrets, configs, networks, names).

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

/// Tasks listed (with their history, by slot) of a service that runs fewer tasks than it asks
/// for.
const TASKS_SHOWN: usize = 20;

/// Everything of the Swarm a plan compares, one JSON document a line with its kind first:
/// nodes, the stack's services (their running/desired counts, and the latest tasks of those
/// short of tasks), secrets, networks (infra's and those an older `docker stack deploy` made
/// for the stack) and configs (without their content); then the names of all secrets, configs
/// and swarm-scoped networks, for the compose file's `external` ones. One call, whatever the
/// size.
pub fn list(stack: &str) -> String {
    let services = format!("label=com.docker.stack.namespace={stack}");
    let ours = format!("label=infra.stack={stack}");
    format!(
        "docker node ls -q | xargs -r docker node inspect --format 'node {{{{json .}}}}' && \
         docker service ls -q --filter {services} | xargs -r docker service inspect --format 'service {{{{json .}}}}' && \
         docker service ls --filter {services} --format '{{{{.Name}}}} {{{{.Replicas}}}}' | \
         while read -r name count rest; do \
           echo \"replicas $name $count $rest\"; \
           if [ \"${{count%/*}}\" -lt \"${{count#*/}}\" ]; then \
             docker service ps --no-trunc --format \"task $name {{{{.Name}}}}|{{{{.DesiredState}}}}|{{{{.CurrentState}}}}|{{{{json .Error}}}}\" \"$name\" | head -{TASKS_SHOWN}; \
           fi; \
         done && \
         docker secret ls -q --filter {ours} | xargs -r docker secret inspect --format 'secret {{{{json .}}}}' && \
         docker network ls -q --filter {services} | xargs -r docker network inspect --format 'network {{{{json .}}}}' && \
         docker config ls -q --filter {ours} | xargs -r docker config inspect --format 'config {{\"ID\":{{{{json .ID}}}},\"Spec\":{{\"Name\":{{{{json .Spec.Name}}}},\"Labels\":{{{{json .Spec.Labels}}}},\"Templating\":{{{{json .Spec.Templating}}}}}}}}' && \
         docker secret ls --format 'name secret {{{{.Name}}}}' && \
         docker config ls --format 'name config {{{{.Name}}}}' && \
         docker network ls --filter scope=swarm --format 'name network {{{{.Name}}}}'"
    )
}

/// One node as `docker node inspect` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub id: String,
    pub hostname: String,
    pub role: String,
    pub availability: String,
    /// `ready`, `down`, `unknown`, `disconnected`.
    pub state: String,
    pub addr: String,
    pub labels: BTreeMap<String, String>,
    pub leader: bool,
    /// For a manager: false once the managers report it `unreachable`
    /// (`ManagerStatus.Reachability`); None for a worker.
    pub reachable: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Inspect {
    #[serde(rename = "ID")]
    id: String,
    spec: InspectSpec,
    description: InspectDescription,
    status: InspectStatus,
    manager_status: Option<InspectManager>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InspectSpec {
    #[serde(default)]
    labels: BTreeMap<String, String>,
    role: String,
    availability: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InspectDescription {
    hostname: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InspectStatus {
    state: String,
    #[serde(default)]
    addr: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InspectManager {
    #[serde(default)]
    leader: bool,
    #[serde(default)]
    reachability: String,
}

/// What `list` printed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SwarmView {
    pub members: Vec<Member>,
    pub services: Vec<ServiceInfo>,
    pub secrets: Vec<SecretInfo>,
    pub configs: Vec<SecretInfo>,
    pub networks: Vec<NetworkInfo>,
    /// Every secret, config and swarm-scoped network on the Swarm, by kind
    /// (`secret`, `config`, `network`) and name.
    pub names: BTreeSet<(String, String)>,
}

/// One network as `docker network inspect` reports it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkInfo {
    pub id: String,
    pub name: String,
    pub driver: String,
    #[serde(default)]
    pub attachable: bool,
    #[serde(default)]
    pub internal: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    pub options: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub labels: BTreeMap<String, String>,
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// One service as `docker service inspect` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceInfo {
    pub id: String,
    pub name: String,
    pub image: String,
    /// `global` or `replicated N`.
    pub mode: String,
    pub ports: Vec<String>,
    pub secrets: Vec<String>,
    pub configs: Vec<String>,
    /// The networks it joins, by id or name (`Spec.TaskTemplate.Networks[].Target`).
    pub networks: Vec<String>,
    pub labels: BTreeMap<String, String>,
    /// `running/desired`, as `docker service ls` shows it.
    pub replicas: String,
    /// The last rolling update's state (`completed`, `rollback_completed`, …), if any.
    pub update_state: String,
    /// What Docker says of that update (`update paused due to failure …`), if anything.
    pub update_message: String,
    /// The tasks (their history too, by slot) of a service that runs fewer tasks than it asks
    /// for; none otherwise.
    pub tasks: Vec<TaskInfo>,
}

/// A service's REPLICAS as `docker service ls` prints them, as (done, wanted): running and
/// desired tasks (`2/3`, or `1/2 (max 1 per node)` for a service that caps its tasks per node),
/// or for a job its completed and total runs (`0/1 (1/1 completed)`). None if unreadable.
pub fn replica_counts(replicas: &str) -> Option<(u64, u64)> {
    let counts = |text: &str| -> Option<(u64, u64)> {
        let (a, b) = text.trim().split_once('/')?;
        Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
    };
    match replicas.split_once('(') {
        Some((_, job)) if job.ends_with(" completed)") => {
            counts(job.trim_end_matches(" completed)"))
        }
        Some((service, _)) => counts(service),
        None => counts(replicas),
    }
}

/// One task as `docker service ps` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskInfo {
    /// `<service>.<slot>` (or `<service>.<node id>` for a global service).
    pub name: String,
    /// `Running`, `Shutdown`, …
    pub desired: String,
    /// `Rejected 3 seconds ago`, `Running 2 minutes ago`, …
    pub current: String,
    /// Why it failed, if it did (`invalid mount config for type "bind": …`).
    pub error: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretInfo {
    pub id: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// A config's template driver (`golang`), if any.
    pub template_driver: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ServiceInspect {
    #[serde(rename = "ID")]
    id: String,
    spec: ServiceInspectSpec,
    update_status: Option<UpdateStatus>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ServiceInspectSpec {
    name: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    task_template: serde_json::Value,
    mode: serde_json::Value,
    #[serde(default)]
    endpoint_spec: serde_json::Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateStatus {
    #[serde(default)]
    state: String,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SecretInspect {
    #[serde(rename = "ID")]
    id: String,
    spec: SecretInspectSpec,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SecretInspectSpec {
    name: String,
    #[serde(default, deserialize_with = "null_as_default")]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    templating: Option<Templating>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Templating {
    name: String,
}

fn parse_secret(json: &str) -> Result<SecretInfo, serde_json::Error> {
    let i: SecretInspect = serde_json::from_str(json)?;
    Ok(SecretInfo {
        id: i.id,
        name: i.spec.name,
        labels: i.spec.labels,
        template_driver: i.spec.templating.map(|t| t.name),
    })
}

pub fn parse_view(output: &str) -> Result<SwarmView, serde_json::Error> {
    let mut view = SwarmView::default();
    let mut replicas = BTreeMap::new();
    let mut tasks: BTreeMap<String, Vec<TaskInfo>> = BTreeMap::new();
    for line in output.lines() {
        let (kind, rest) = line.split_once(' ').unwrap_or((line, ""));
        match kind {
            "node" => view.members.extend(parse_members(rest)?),
            "service" => view.services.push(parse_service(rest)?),
            // `running/desired`, and for a job ` (completed/total completed)`.
            "replicas" => {
                if let Some((name, count)) = rest.split_once(' ') {
                    replicas.insert(name.to_string(), count.trim().to_string());
                }
            }
            "task" => {
                if let Some((service, task)) = rest.split_once(' ') {
                    let mut f = task.splitn(4, '|').map(str::to_string);
                    let mut next = || f.next().unwrap_or_default();
                    let task = TaskInfo {
                        name: next(),
                        desired: next(),
                        current: next(),
                        // JSON: an error may span lines.
                        error: serde_json::from_str(&next()).unwrap_or_default(),
                    };
                    tasks.entry(service.to_string()).or_default().push(task);
                }
            }
            "secret" => view.secrets.push(parse_secret(rest)?),
            "config" => view.configs.push(parse_secret(rest)?),
            "network" => view.networks.push(serde_json::from_str(rest)?),
            "name" => {
                if let Some((kind, name)) = rest.split_once(' ') {
                    view.names.insert((kind.to_string(), name.to_string()));
                }
            }
            _ => {}
        }
    }
    for s in &mut view.services {
        s.replicas = replicas.get(&s.name).cloned().unwrap_or_default();
        s.tasks = tasks.remove(&s.name).unwrap_or_default();
    }
    Ok(view)
}

fn parse_service(json: &str) -> Result<ServiceInfo, serde_json::Error> {
    let i: ServiceInspect = serde_json::from_str(json)?;
    let container = &i.spec.task_template["ContainerSpec"];
    let mode = match i.spec.mode.get("Replicated") {
        Some(r) => format!("replicated {}", r["Replicas"].as_u64().unwrap_or(0)),
        None if i.spec.mode.get("ReplicatedJob").is_some() => "replicated-job".to_string(),
        None if i.spec.mode.get("GlobalJob").is_some() => "global-job".to_string(),
        None => "global".to_string(),
    };
    let mut ports: Vec<String> = i.spec.endpoint_spec["Ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            crate::compose::port_text(
                p["PublishedPort"].as_u64().unwrap_or(0),
                p["TargetPort"].as_u64().unwrap_or(0),
                p["Protocol"].as_str().unwrap_or("tcp"),
                p["PublishMode"].as_str().unwrap_or("ingress"),
            )
        })
        .collect();
    ports.sort();
    let names = |list: &serde_json::Value, field: &str| -> Vec<String> {
        list.as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s[field].as_str().map(str::to_string))
            .collect()
    };
    let secrets = names(&container["Secrets"], "SecretName");
    let configs = names(&container["Configs"], "ConfigName");
    let networks = names(&i.spec.task_template["Networks"], "Target");
    Ok(ServiceInfo {
        id: i.id,
        name: i.spec.name,
        image: container["Image"].as_str().unwrap_or_default().to_string(),
        mode,
        ports,
        secrets,
        configs,
        networks,
        labels: i.spec.labels,
        replicas: String::new(),
        update_state: i
            .update_status
            .as_ref()
            .map(|u| u.state.clone())
            .unwrap_or_default(),
        update_message: i.update_status.map(|u| u.message).unwrap_or_default(),
        tasks: Vec::new(),
    })
}

pub fn parse_members(output: &str) -> Result<Vec<Member>, serde_json::Error> {
    output
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let i: Inspect = serde_json::from_str(line)?;
            Ok(Member {
                id: i.id,
                hostname: i.description.hostname,
                role: i.spec.role,
                availability: i.spec.availability,
                state: i.status.state,
                addr: i.status.addr,
                labels: i.spec.labels,
                leader: i.manager_status.as_ref().is_some_and(|m| m.leader),
                // `unknown` while a manager joins: not known to be lost.
                reachable: i.manager_status.map(|m| m.reachability != "unreachable"),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_latest_tasks_of_a_service_short_of_tasks() {
        let service = r#"service {"ID":"s1","Spec":{"Name":"demo_db","TaskTemplate":{"ContainerSpec":{"Image":"db:1"}},"Mode":{"Replicated":{"Replicas":1}}},"UpdateStatus":{"State":"paused","Message":"update paused due to failure"}}"#;
        let output = format!(
            "{service}\nreplicas demo_db 0/1 \ntask demo_db demo_db.1|Running|Pending 1 second ago|\"\"\n\
             task demo_db demo_db.1|Shutdown|Rejected 6 seconds ago|\"invalid mount config: a|b\\nc\"\n"
        );
        let job = service.replace("demo_db", "demo_migrate");
        let output = format!("{output}{job}\nreplicas demo_migrate 0/1 (1/1 completed)\n");
        let view = parse_view(&output).unwrap();
        assert_eq!(view.services[1].replicas, "0/1 (1/1 completed)");
        let db = &view.services[0];
        assert_eq!(
            (
                db.replicas.as_str(),
                db.update_state.as_str(),
                db.update_message.as_str()
            ),
            ("0/1", "paused", "update paused due to failure")
        );
        assert_eq!(db.tasks.len(), 2);
        assert_eq!(db.tasks[1].current, "Rejected 6 seconds ago");
        assert_eq!(db.tasks[1].error, "invalid mount config: a|b\nc");
        assert_eq!(replica_counts("1/2 (max 1 per node)"), Some((1, 2)));
        assert_eq!(replica_counts("0/1 (1/1 completed)"), Some((1, 1)));
        assert_eq!(replica_counts("3/3"), Some((3, 3)));
    }

    #[test]
    fn parses_what_docker_20_prints() {
        let members = parse_members(include_str!("../fixtures/node-inspect.jsonl")).unwrap();
        assert_eq!(members.len(), 2);
        let m = &members[0];
        assert_eq!(
            (m.role.as_str(), m.state.as_str(), m.addr.as_str(), m.leader),
            ("manager", "ready", "10.77.9.11", true)
        );
        assert_eq!(m.labels["infra.address"], "node.manager[0]");
        assert_eq!(members[1].role, "worker");
        assert!(!members[1].leader && members[1].labels.is_empty());
    }
}
