//! The docker commands run on the nodes, as scripts for `sh -c`, and the parsing of what they
//! print. Pure. Secrets (join tokens) are never part of a script: they arrive on stdin.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

/// Waits at most `secs` for the node's first boot to finish, where the image runs cloud-init
/// (`cloud-init status --wait`); prints its exit code and status line (see [`parse_boot`]).
pub fn wait_boot(secs: u64) -> String {
    format!(
        "command -v cloud-init >/dev/null 2>&1 || {{ echo 'absent'; exit 0; }}; \
         timeout {secs} cloud-init status --wait >/dev/null 2>&1; rc=$?; \
         echo \"$rc $(cloud-init status 2>/dev/null | head -1)\""
    )
}

/// How a node's first boot went, as cloud-init tells.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Boot {
    /// The image has no cloud-init: nothing to wait for.
    NoCloudInit,
    /// Finished (perhaps with errors cloud-init recovered from: exit 2).
    Done,
    /// Failed (exit 1: a module, such as the user-data script, failed); cloud-init's status.
    Failed(String),
    /// Still running when the wait ran out (exit 124, from `timeout`).
    Running(String),
}

/// Reads what [`wait_boot`] printed. Exit codes are cloud-init's (`cloud-init status --help`):
/// 0 done, 1 error, 2 done with recoverable errors.
pub fn parse_boot(out: &str) -> Boot {
    let out = out.trim();
    if out == "absent" {
        return Boot::NoCloudInit;
    }
    let (code, status) = out.split_once(' ').unwrap_or((out, ""));
    let status = status.trim_start_matches("status:").trim().to_string();
    match code {
        "0" | "2" => Boot::Done,
        "124" => Boot::Running(status),
        _ => Boot::Failed(status),
    }
}

/// The end of the first boot's output, where the user-data's errors are (readable by the
/// `adm` group on Ubuntu, by root everywhere).
pub fn boot_log_tail() -> &'static str {
    "f=/var/log/cloud-init-output.log; tail -n 25 $f 2>/dev/null || sudo -n tail -n 25 $f"
}

/// Whether this login may use Docker, and the node's Swarm state: prints
/// `<LocalNodeState> <ControlAvailable>` (`inactive false`; `active true` on a manager).
/// Fails with Docker's own message (exit 127 when Docker is not installed). `docker version`
/// checks the daemon: `docker info --format` exits 0 even when it cannot reach it.
pub fn probe() -> &'static str {
    "command -v docker >/dev/null 2>&1 || { echo 'docker: command not found' >&2; exit 127; }; \
     docker version --format '{{.Server.Version}}' >/dev/null && \
     docker info --format '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}'"
}

/// Why Docker did not answer a login.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unavailable {
    /// No `docker` command: the user-data has not installed it (yet), or failed to.
    NotInstalled,
    /// The daemon runs, but this user may not use its socket (not in the `docker` group, or a
    /// connection opened before the user-data added it).
    PermissionDenied,
    /// Installed, but the daemon does not answer.
    Down,
}

/// Tells, from a failed docker command's exit code and stderr, whether Docker itself was out
/// of reach (None: Docker answered, and the command failed for its own reasons).
pub fn unavailable(code: i32, stderr: &str) -> Option<Unavailable> {
    if code == 127 || stderr.contains("docker: command not found") {
        Some(Unavailable::NotInstalled)
    } else if stderr.contains("permission denied") && stderr.contains("docker") {
        Some(Unavailable::PermissionDenied)
    } else if stderr.contains("Cannot connect to the Docker daemon") {
        Some(Unavailable::Down)
    } else {
        None
    }
}

/// [`unavailable`] of a failed remote command.
pub fn unavailable_of(e: &super::SshError) -> Option<Unavailable> {
    match e {
        super::SshError::Command { code, stderr, .. } => unavailable(*code, stderr),
        _ => None,
    }
}

/// Docker's answer on a manager that has lost the Raft quorum.
pub fn no_leader(stderr: &str) -> bool {
    stderr.contains("does not have a leader") || stderr.contains("too few managers are online")
}

/// Docker's answer on a node that runs, but is not a manager of any Swarm.
pub fn not_a_manager(stderr: &str) -> bool {
    stderr.contains("not a swarm manager")
}

pub fn init(advertise: &str) -> String {
    format!(
        "docker swarm init --advertise-addr {advertise} >/dev/null && docker info --format '{{{{.Swarm.NodeID}}}}'"
    )
}

/// Rebuilds the Swarm from this manager alone, keeping its services, secrets and configs
/// (docs.docker.com/engine/swarm/admin_guide/#recover-from-disaster); waits (bounded) until
/// it leads and answers.
pub fn force_new_cluster(advertise: &str) -> String {
    format!(
        "docker swarm init --force-new-cluster --advertise-addr {advertise} >/dev/null && \
         for i in $(seq 1 60); do docker node ls >/dev/null 2>&1 && exit 0; sleep 1; done; docker node ls >/dev/null"
    )
}

/// The ids of the managers other than this one (run on a manager).
pub fn other_managers() -> &'static str {
    "docker node ls -q --filter role=manager | grep -vx \"$(docker info --format '{{.Swarm.NodeID}}')\" || true"
}

/// Fails unless the Swarm knows this node as a working member.
pub fn known(node_id: &str) -> String {
    let id = quote(node_id);
    format!(
        "state=$(docker node inspect --format '{{{{.Status.State}}}}' {id}) && [ \"$state\" != down ]"
    )
}

/// `role` is `worker` or `manager`.
pub fn join_token(role: &str) -> String {
    format!("docker swarm join-token -q {role}")
}

/// Joins with the token read from stdin; prints the new node id. A join the daemon gives up
/// waiting for ("Timeout was reached before node joined") goes on in the background, and a node
/// left `pending` by an earlier run is still joining: both are waited for (bounded). A join that
/// ends otherwise (Docker 20.10 turns a timed-out one into state `error`) is left, so that the
/// next attempt starts clean, and fails.
pub fn join(advertise: &str, manager: &str) -> String {
    format!(
        "token=$(cat) && if ! err=$(docker swarm join --advertise-addr {advertise} --token \"$token\" {manager}:2377 2>&1 >/dev/null); then \
         s=pending; i=0; while [ \"$s\" = pending ] && [ $i -lt {JOIN_WAIT_SECS} ]; do sleep 1; i=$((i+1)); \
         s=$(docker info --format '{{{{.Swarm.LocalNodeState}}}}' 2>/dev/null); done; \
         [ \"$s\" = active ] || {{ why=$(docker info --format '{{{{.Swarm.Error}}}}' 2>/dev/null); \
         docker swarm leave --force >/dev/null 2>&1; \
         echo \"$err (node state: $s after ${{i}}s more${{why:+: $why}}; left the Swarm to start clean)\" >&2; exit 1; }}; fi && \
         docker info --format '{{{{.Swarm.NodeID}}}}'"
    )
}

/// How long a join that goes on in the background is waited for.
const JOIN_WAIT_SECS: u32 = 90;

/// Everything of the Swarm a plan compares, one JSON document a line with its kind first:
/// nodes, the stack's services (and their running/desired counts), secrets, networks (infra's
/// and those an older `docker stack deploy` made for the stack) and configs (without their
/// content); then the names of all secrets, configs and swarm-scoped
/// networks, for the compose file's `external` ones. One call, whatever the size.
pub fn list(stack: &str) -> String {
    let services = format!("label=com.docker.stack.namespace={stack}");
    let ours = format!("label=infra.stack={stack}");
    format!(
        "docker node ls -q | xargs -r docker node inspect --format 'node {{{{json .}}}}' && \
         docker service ls -q --filter {services} | xargs -r docker service inspect --format 'service {{{{json .}}}}' && \
         docker service ls --filter {services} --format 'replicas {{{{.Name}}}} {{{{.Replicas}}}}' && \
         docker secret ls -q --filter {ours} | xargs -r docker secret inspect --format 'secret {{{{json .}}}}' && \
         docker network ls -q --filter {services} | xargs -r docker network inspect --format 'network {{{{json .}}}}' && \
         docker config ls -q --filter {ours} | xargs -r docker config inspect --format 'config {{\"ID\":{{{{json .ID}}}},\"Spec\":{{\"Name\":{{{{json .Spec.Name}}}},\"Labels\":{{{{json .Spec.Labels}}}},\"Templating\":{{{{json .Spec.Templating}}}}}}}}' && \
         docker secret ls --format 'name secret {{{{.Name}}}}' && \
         docker config ls --format 'name config {{{{.Name}}}}' && \
         docker network ls --filter scope=swarm --format 'name network {{{{.Name}}}}'"
    )
}

/// The `docker network create` flags of a compose network: driver, attachable, internal,
/// `driver_opts`, labels and IPAM subnets, as `docker stack deploy` would create it
/// (https://docs.docker.com/reference/cli/docker/network/create/).
pub fn network_create_args(n: &crate::compose::NetworkDef) -> Vec<String> {
    let mut args = vec!["--driver".to_string(), n.driver.clone()];
    args.extend(n.attachable.then(|| "--attachable".to_string()));
    args.extend(n.internal.then(|| "--internal".to_string()));
    for (k, v) in &n.options {
        args.extend([
            "--opt".to_string(),
            if v.is_empty() {
                k.clone()
            } else {
                format!("{k}={v}")
            },
        ]);
    }
    for (k, v) in &n.labels {
        args.extend(["--label".to_string(), format!("{k}={v}")]);
    }
    for s in &n.subnets {
        args.extend(["--subnet".to_string(), s.clone()]);
    }
    args
}

/// Creates an overlay network (kept if it exists: its definition is in its name's labels, and
/// a changed one is replaced); prints its id.
pub fn create_network(name: &str, args: &[String], labels: &BTreeMap<String, String>) -> String {
    let args: String = args.iter().map(|a| format!(" {}", quote(a))).collect();
    let name = quote(name);
    format!(
        "docker network inspect {name} >/dev/null 2>&1 || docker network create{args}{} {name} >/dev/null && \
         docker network inspect --format '{{{{.Id}}}}' {name}",
        label_flags(labels)
    )
}

/// Waits (bounded) for the tasks of removed services to let go of the network; fine if it is
/// already gone.
pub fn remove_network(name: &str) -> String {
    let name = quote(name);
    format!(
        "for i in $(seq 1 60); do docker network inspect {name} >/dev/null 2>&1 || exit 0; \
         docker network rm {name} >/dev/null 2>&1 && exit 0; sleep 1; done; docker network rm {name} >/dev/null"
    )
}

/// Creates a config from stdin (kept if it exists: its name holds its content hash); prints
/// its id.
pub fn create_config(
    name: &str,
    labels: &BTreeMap<String, String>,
    template_driver: Option<&str>,
) -> String {
    let driver = template_driver
        .map(|d| format!(" --template-driver {}", quote(d)))
        .unwrap_or_default();
    let name = quote(name);
    format!(
        "docker config inspect {name} >/dev/null 2>&1 || docker config create{}{driver} {name} - >/dev/null && \
         docker config inspect --format '{{{{.ID}}}}' {name}",
        label_flags(labels)
    )
}

/// Fails while a service still uses the config; fine if it is already gone.
pub fn remove_config(name: &str) -> String {
    let name = quote(name);
    format!("docker config rm {name} >/dev/null || ! docker config inspect {name} >/dev/null 2>&1")
}

fn label_flags(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!(" --label {}", quote(&format!("{k}={v}"))))
        .collect()
}

/// Deploys one service's compose document, read from stdin. Prints the manager's clock first,
/// so that an update started by this deploy can be told from an older one.
pub fn deploy(stack: &str, resolve_image: &str) -> String {
    format!(
        "date +%s && docker stack deploy --with-registry-auth --resolve-image {resolve_image} --compose-file - {stack} >/dev/null"
    )
}

/// `id|update state|update start (unix)|update message`, then `name running/desired`.
pub fn service_status(service: &str) -> String {
    format!(
        "docker service inspect {service} --format '{{{{.ID}}}}|{{{{with .UpdateStatus}}}}{{{{.State}}}}|{{{{if .StartedAt}}}}{{{{.StartedAt.Unix}}}}{{{{end}}}}|{{{{.Message}}}}{{{{else}}}}||{{{{end}}}}' && \
         docker service ls --filter name={service} --format '{{{{.Name}}}} {{{{.Replicas}}}}'"
    )
}

/// The errors of the service's recent failed tasks, newest first.
pub fn task_errors(service: &str) -> String {
    format!(
        "docker service ps {service} --no-trunc --format '{{{{.Name}}}} {{{{.Image}}}} {{{{.CurrentState}}}}: {{{{.Error}}}}' | grep -v ': $' | head -5"
    )
}

pub fn remove_service(service: &str) -> String {
    format!(
        "err=$(docker service rm {service} 2>&1 >/dev/null) || ! docker service inspect {service} >/dev/null 2>&1 || {{ echo \"$err\" >&2; exit 1; }}"
    )
}

/// Creates a secret from stdin (kept if it exists: its name is its content); prints its id.
pub fn create_secret(name: &str, labels: &BTreeMap<String, String>) -> String {
    let labels = label_flags(labels);
    format!(
        "docker secret inspect {name} >/dev/null 2>&1 || docker secret create{labels} {name} - >/dev/null && \
         docker secret inspect --format '{{{{.ID}}}}' {name}"
    )
}

/// Fails while a service still uses the secret; fine if it is already gone.
pub fn remove_secret(name: &str) -> String {
    format!("docker secret rm {name} >/dev/null || ! docker secret inspect {name} >/dev/null 2>&1")
}

pub fn update(
    node_id: &str,
    role: &str,
    availability: &str,
    add: &BTreeMap<String, String>,
    remove: &[String],
) -> String {
    let mut cmd = format!("docker node update --role {role} --availability {availability}");
    for (k, v) in add {
        cmd.push_str(&format!(" --label-add {}", quote(&format!("{k}={v}"))));
    }
    for k in remove {
        cmd.push_str(&format!(" --label-rm {}", quote(k)));
    }
    format!("{IN_SEQUENCE} in_sequence {cmd} {node_id}")
}

/// A shell function, `in_sequence CMD…`: runs a `docker node` change again (up to 10 times, 1 s
/// apart) while the manager refuses it with "update out of sequence" — Docker's answer when the
/// node's version moved since the command read it (e.g. a demotion still being applied).
/// Docker's own message is kept on failure.
const IN_SEQUENCE: &str = "in_sequence() { i=0; while :; do err=$(\"$@\" 2>&1 >/dev/null) && return 0; i=$((i+1)); \
    case \"$err\" in *'out of sequence'*) [ $i -lt 10 ] && { sleep 1; continue; };; esac; echo \"$err\" >&2; return 1; done; };";

/// Adds labels to a node, changing nothing else.
pub fn add_labels(node_id: &str, labels: &BTreeMap<String, String>) -> String {
    let flags: String = labels
        .iter()
        .map(|(k, v)| format!(" --label-add {}", quote(&format!("{k}={v}"))))
        .collect();
    format!("{IN_SEQUENCE} in_sequence docker node update{flags} {node_id}")
}

/// Demotes a manager (if it is one) and drains the node: its tasks stop and start elsewhere.
pub fn drain(node_id: &str) -> String {
    format!(
        "{IN_SEQUENCE} if [ \"$(docker node inspect --format '{{{{.Spec.Role}}}}' {node_id})\" = manager ]; then in_sequence docker node demote {node_id}; fi && \
         in_sequence docker node update --availability drain {node_id}"
    )
}

/// Waits (bounded) until no task runs on the node any more.
pub fn wait_drained(node_id: &str) -> String {
    format!(
        "for i in $(seq 1 120); do [ -z \"$(docker node ps {node_id} --filter desired-state=running -q)\" ] && \
         {{ [ \"$(docker node inspect --format '{{{{.Status.State}}}}' {node_id})\" = down ] || \
           [ -z \"$(docker node ps {node_id} --format '{{{{.CurrentState}}}}' | grep -E '^(Running|Starting)')\" ]; }} && exit 0; sleep 1; done; \
         echo 'tasks still running on the node after 120s' >&2; exit 1"
    )
}

/// Run on the leaving node itself; fine if it already left.
pub fn leave() -> &'static str {
    "docker swarm leave --force >/dev/null 2>&1 || true"
}

/// Run on a manager; fine if the node is already gone.
/// Docker removes a manager only once it is a worker ("must be demoted to worker before
/// removal", docs.docker.com/reference/cli/docker/node/rm/), so a manager is demoted first,
/// reachable or not, and removed once Raft has let it go (bounded: 30 s). A manager that is no
/// Raft member (left behind by `swarm init --force-new-cluster`) cannot be demoted ("can't find
/// manager in raft memberlist") and is removed as it is. Docker's own message is kept on
/// failure; a node already gone counts as removed.
pub fn remove(node_id: &str) -> String {
    format!(
        "{IN_SEQUENCE} if ! docker node inspect {node_id} >/dev/null 2>&1; then exit 0; fi; \
         if [ \"$(docker node inspect --format '{{{{.Spec.Role}}}}' {node_id})\" = manager ]; then \
           err=$(in_sequence docker node demote {node_id} 2>&1) || case \"$err\" in *'raft memberlist'*) ;; *) echo \"$err\" >&2; exit 1;; esac; fi; \
         for i in $(seq 1 30); do err=$(docker node rm --force {node_id} 2>&1 >/dev/null) && exit 0; \
           case \"$err\" in *'must be demoted'*) sleep 1;; *) break;; esac; done; \
         echo \"$err\" >&2; exit 1"
    )
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
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
    for line in output.lines() {
        let (kind, rest) = line.split_once(' ').unwrap_or((line, ""));
        match kind {
            "node" => view.members.extend(parse_members(rest)?),
            "service" => view.services.push(parse_service(rest)?),
            "replicas" => {
                let mut words = rest.split_whitespace();
                if let (Some(name), Some(count)) = (words.next(), words.next()) {
                    replicas.insert(name.to_string(), count.to_string());
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
        update_state: i.update_status.map(|u| u.state).unwrap_or_default(),
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
    fn parses_what_docker_20_prints() {
        let members = parse_members(include_str!("fixtures/node-inspect.jsonl")).unwrap();
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

    #[test]
    fn the_first_boot_is_read_from_cloud_init() {
        assert_eq!(parse_boot("absent\n"), Boot::NoCloudInit);
        assert_eq!(parse_boot("0 status: done\n"), Boot::Done);
        assert_eq!(parse_boot("2 status: done\n"), Boot::Done);
        assert_eq!(parse_boot("1 status: error"), Boot::Failed("error".into()));
        assert_eq!(
            parse_boot("124 status: running"),
            Boot::Running("running".into())
        );
    }

    #[test]
    fn docker_out_of_reach_is_told_apart() {
        use Unavailable::*;
        assert_eq!(
            unavailable(127, "sh: 1: docker: not found"),
            Some(NotInstalled)
        );
        assert_eq!(
            unavailable(127, "docker: command not found"),
            Some(NotInstalled)
        );
        let denied = "permission denied while trying to connect to the Docker daemon socket at unix:///var/run/docker.sock: Get \"http://%2Fvar%2Frun%2Fdocker.sock/v1.45/version\": dial unix /var/run/docker.sock: connect: permission denied";
        assert_eq!(unavailable(1, denied), Some(PermissionDenied));
        let down = "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?";
        assert_eq!(unavailable(1, down), Some(Down));
        let worker = "Error response from daemon: This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.";
        assert_eq!(unavailable(1, worker), None);
        assert!(not_a_manager(worker) && !not_a_manager(denied));
    }

    #[test]
    fn tokens_never_appear_in_scripts() {
        let s = join("10.0.1.5", "10.0.1.4");
        assert!(s.contains(
            "docker swarm join --advertise-addr 10.0.1.5 --token \"$token\" 10.0.1.4:2377"
        ));
        assert!(s.starts_with("token=$(cat) && "));
    }

    #[test]
    fn labels_are_quoted() {
        let add = BTreeMap::from([("infra.address".to_string(), "node.worker[1]".to_string())]);
        let s = update("abc", "worker", "active", &add, &["old".to_string()]);
        assert!(
            s.ends_with(
                "in_sequence docker node update --role worker --availability active --label-add 'infra.address=node.worker[1]' --label-rm 'old' abc"
            ),
            "{s}"
        );
    }

    /// The scripts that change nodes are valid shell, and `in_sequence` retries only Docker's
    /// "update out of sequence", keeping any other message.
    #[test]
    fn node_changes_are_valid_shell_and_retry_out_of_sequence_only() {
        let labels = BTreeMap::from([("k".to_string(), "v".to_string())]);
        for script in [
            drain("abc"),
            remove("abc"),
            add_labels("abc", &labels),
            update("abc", "worker", "active", &labels, &[]),
        ] {
            let checked = std::process::Command::new("sh")
                .args(["-n", "-c", &script])
                .status()
                .unwrap();
            assert!(checked.success(), "{script}");
        }
        let run = |body: &str| {
            std::process::Command::new("sh")
                .args(["-c", &format!("{IN_SEQUENCE} {body}")])
                .output()
                .unwrap()
        };
        // Out of sequence twice, then fine (the count kept in a file: each try is a subshell).
        let count = tempfile::NamedTempFile::new().unwrap();
        let flaky = run(&format!(
            "t={}; f() {{ n=$(($(cat $t || echo 0) + 1)); echo $n > $t; [ $n -gt 2 ] || {{ echo 'rpc error: update out of sequence' >&2; return 1; }}; }}; in_sequence f && cat $t",
            count.path().display()
        ));
        assert_eq!(String::from_utf8_lossy(&flaky.stdout).trim(), "3");
        let other = run("in_sequence sh -c 'echo node is down >&2; exit 1'");
        assert!(!other.status.success());
        assert_eq!(
            String::from_utf8_lossy(&other.stderr).trim(),
            "node is down"
        );
    }
}
