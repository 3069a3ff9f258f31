//! The docker commands run on the nodes, as scripts for `sh -c`, and the parsing of what they
//! print. Pure. Secrets (join tokens) are never part of a script: they arrive on stdin.

use std::collections::BTreeMap;

use serde::Deserialize;

/// Waits (bounded) for the Docker daemon; prints the node's Swarm state (`inactive`, `active`…).
pub fn ready() -> &'static str {
    "for i in $(seq 1 60); do s=$(docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null) && { echo \"$s\"; exit 0; }; sleep 1; done; \
     echo 'docker did not answer within 60s' >&2; exit 1"
}

pub fn init(advertise: &str) -> String {
    format!(
        "docker swarm init --advertise-addr {advertise} >/dev/null && docker info --format '{{{{.Swarm.NodeID}}}}'"
    )
}

/// `role` is `worker` or `manager`.
pub fn join_token(role: &str) -> String {
    format!("docker swarm join-token -q {role}")
}

/// Joins with the token read from stdin; prints the new node id.
pub fn join(advertise: &str, manager: &str) -> String {
    format!(
        "token=$(cat) && docker swarm join --advertise-addr {advertise} --token \"$token\" {manager}:2377 >/dev/null && \
         docker info --format '{{{{.Swarm.NodeID}}}}'"
    )
}

/// Every node of the Swarm, one JSON document a line: one call, whatever the size.
pub fn list() -> &'static str {
    "docker node ls -q | xargs -r docker node inspect --format '{{json .}}'"
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
    format!("{cmd} {node_id} >/dev/null")
}

/// Run on the leaving node itself; fine if it already left.
pub fn leave() -> &'static str {
    "docker swarm leave --force >/dev/null 2>&1 || true"
}

/// Run on a manager; fine if the node is already gone.
pub fn remove(node_id: &str) -> String {
    format!(
        "docker node rm --force {node_id} >/dev/null 2>&1 || ! docker node inspect {node_id} >/dev/null 2>&1"
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
                leader: i.manager_status.is_some_and(|m| m.leader),
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
    fn tokens_never_appear_in_scripts() {
        let s = join("10.0.1.5", "10.0.1.4");
        assert!(s.starts_with("token=$(cat) && docker swarm join --advertise-addr 10.0.1.5 --token \"$token\" 10.0.1.4:2377"));
    }

    #[test]
    fn labels_are_quoted() {
        let add = BTreeMap::from([("infra.address".to_string(), "node.worker[1]".to_string())]);
        let s = update("abc", "worker", "active", &add, &["old".to_string()]);
        assert_eq!(
            s,
            "docker node update --role worker --availability active --label-add 'infra.address=node.worker[1]' --label-rm 'old' abc >/dev/null"
        );
    }
}
