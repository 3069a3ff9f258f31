//! What is deployed on the Swarm: networks, configs and secrets created and removed, services
//! deployed, watched and removed.

use std::collections::BTreeMap;

use super::quote;

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
