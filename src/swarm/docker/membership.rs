//! Joining and leaving the Swarm: init, join (token on stdin), recovery from a lost quorum,
//! node updates and labels (retried while "out of sequence"), drain, leave and removal.

use std::collections::BTreeMap;

use super::quote;

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
/// apart) while the manager refuses it for a moment: "update out of sequence" (the node's
/// version moved since the command read it, e.g. a demotion still being applied) or "raft
/// proposal dropped" or "node lost leader status" (the Raft leadership is changing hands, e.g.
/// right after the leader was demoted: etcd raft's `ErrProposalDropped`, which swarmkit returns
/// as is, and swarmkit's `ErrLostLeadership` for a proposal its leader could not finish). Docker's
/// own message is kept on failure.
const IN_SEQUENCE: &str = "in_sequence() { i=0; while :; do err=$(\"$@\" 2>&1 >/dev/null) && return 0; i=$((i+1)); \
    case \"$err\" in *'out of sequence'* | *'raft proposal dropped'* | *'lost leader status'*) [ $i -lt 10 ] && { sleep 1; continue; };; esac; echo \"$err\" >&2; return 1; done; };";

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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

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
    /// "update out of sequence" (and a leadership change, below), keeping any other message.
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

    /// A leadership change drops proposals for a moment: a node change is tried again (both
    /// messages were met draining a node right after the Raft leader was demoted).
    #[test]
    fn a_node_change_is_tried_again_while_raft_leadership_changes_hands() {
        for message in [
            "raft proposal dropped",
            "raft: failed to process the request: node lost leader status",
        ] {
            let count = tempfile::NamedTempFile::new().unwrap();
            let script = format!(
                "{IN_SEQUENCE} t={}; f() {{ n=$(($(cat $t || echo 0) + 1)); echo $n > $t; [ $n -gt 1 ] || {{ echo 'Error response from daemon: rpc error: code = Unknown desc = {message}' >&2; return 1; }}; }}; in_sequence f && cat $t",
                count.path().display()
            );
            let out = std::process::Command::new("sh")
                .args(["-c", &script])
                .output()
                .unwrap();
            assert_eq!(
                String::from_utf8_lossy(&out.stdout).trim(),
                "2",
                "{message}"
            );
        }
    }
}
