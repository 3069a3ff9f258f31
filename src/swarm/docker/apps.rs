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

/// How long a removal waits for Docker to stop listing what it removed, in seconds (a
/// service: beyond its stop grace period).
pub const REMOVAL_WAIT_SECS: u32 = 120;

/// Removes a network (by id: names of overlay networks need not be unique) and returns once
/// Docker no longer lists it; fine if it is already gone. `docker network rm` is refused while
/// a task still uses it, and a node keeps its copy of an overlay network until the last task
/// container there is gone (what `docker network ls` on a manager shows too): both are waited
/// for (bounded), and Docker's last refusal (the service or task that holds it) is the error.
pub fn remove_network(network: &str) -> String {
    let n = quote(network);
    format!(
        "err=; end=$(($(date +%s) + {REMOVAL_WAIT_SECS})); \
         while [ \"$(date +%s)\" -lt \"$end\" ]; do docker network inspect {n} >/dev/null 2>&1 || exit 0; \
         err=$(docker network rm {n} 2>&1 >/dev/null) || true; sleep 1; done; \
         echo \"still listed after {REMOVAL_WAIT_SECS}s${{err:+: $err}}\" >&2; exit 1"
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

/// Fails while a service still uses the config; fine if it is already gone. Gone when this
/// returns: swarmkit deletes it from its store in the call (`controlapi.RemoveConfig`).
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

/// Restarts every task of the service as a rolling update (its update config applies), though
/// its spec is unchanged: how a failed or paused service is tried again
/// (https://docs.docker.com/reference/cli/docker/service/update/, `--force`). The image stays
/// as the deploy just before resolved it (or not, as `[swarm] resolve_image` says).
pub fn force_update(service: &str) -> String {
    format!(
        "docker service update --detach --force --no-resolve-image --quiet {service} >/dev/null"
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

/// Removes a service and returns once its tasks stopped on every ready node (a task on a down
/// node never reports it); fine if it is already gone. `docker service rm` returns at once,
/// while the tasks stop in their grace period: a published host port, a network or a volume
/// is free only after that. Bounded by the service's stop grace period and
/// [`REMOVAL_WAIT_SECS`]; the tasks still running are the error.
pub fn remove_service(service: &str) -> String {
    let s = quote(service);
    format!(
        "grace=$(docker service inspect --format '{{{{with .Spec.TaskTemplate.ContainerSpec.StopGracePeriod}}}}{{{{.}}}}{{{{end}}}}' {s} 2>/dev/null); \
         case \"$grace\" in '' | *[!0-9]*) grace=0;; esac; \
         wait=$(({REMOVAL_WAIT_SECS} + grace / 1000000000)); end=$(($(date +%s) + wait)); \
         err=$(docker service rm {s} 2>&1 >/dev/null) || ! docker service inspect {s} >/dev/null 2>&1 || {{ echo \"$err\" >&2; exit 1; }}; \
         while [ \"$(date +%s)\" -lt \"$end\" ]; do \
           left=$(docker node ls --format '{{{{.ID}}}} {{{{.Status}}}}' | awk '$2 == \"Ready\" {{ print $1 }}' | \
             xargs -r docker node ps --filter name={s}. --format '{{{{.Name}}}} {{{{.CurrentState}}}}' | \
             awk '$2 ~ /^(New|Allocated|Pending|Assigned|Accepted|Preparing|Ready|Starting|Running)$/ {{ print $1 \" \" $2 }}' | sort -u); \
           [ -z \"$left\" ] && exit 0; sleep 1; done; \
         echo \"tasks still running after ${{wait}}s: $(echo $left)\" >&2; exit 1"
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

/// Fails while a service still uses the secret; fine if it is already gone. Gone when this
/// returns: swarmkit deletes it from its store in the call (`controlapi.RemoveSecret`).
pub fn remove_secret(name: &str) -> String {
    format!("docker secret rm {name} >/dev/null || ! docker secret inspect {name} >/dev/null 2>&1")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scripts are valid shell (they run under `sh -c` on the nodes).
    #[test]
    fn scripts_are_valid_shell() {
        for script in [
            remove_service("demo_web"),
            remove_network("k3j4h5"),
            remove_config("app_conf_1"),
            remove_secret("greeting_1"),
            force_update("demo_web"),
            super::super::list("demo"),
        ] {
            let checked = std::process::Command::new("sh")
                .args(["-n", "-c", &script])
                .status()
                .unwrap();
            assert!(checked.success(), "{script}");
        }
    }
}
