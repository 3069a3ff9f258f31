//! What can go wrong on the Swarm's side, each with a message that says what to do next.

use thiserror::Error;

use super::docker::{self, Unavailable};
use super::node::Node;
use super::ssh::SshError;
use crate::model::Address;

#[derive(Debug, Error)]
pub enum SwarmError {
    #[error(transparent)]
    Ssh(#[from] SshError),
    /// A call outside the nodes failed (see [`super::Outside`]): its own message says which.
    #[error(transparent)]
    Outside(Box<dyn std::error::Error + Send + Sync>),
    #[error(
        "{source}\n  `wait for SSH` gave up after {waited}; a node that boots slowly needs a longer [ssh] ready_timeout."
    )]
    NotReady {
        source: Box<SshError>,
        waited: String,
    },
    #[error(
        "{node}: its first boot did not finish within {waited} (cloud-init: {status}); a node that boots slowly needs a longer [ssh] ready_timeout."
    )]
    BootTimeout {
        node: Address,
        status: String,
        waited: String,
    },
    #[error(
        "{node} ({instance}): its first boot failed (cloud-init: {status}), so its user-data did not finish. The end of /var/log/cloud-init-output.log:\n{tail}\n  Fix the cause, then replace the instance, since the user-data runs once per instance: \
         terminate it (`aws ec2 terminate-instances --instance-ids {instance}`) and run `infra apply`."
    )]
    BootFailed {
        node: Address,
        instance: String,
        status: String,
        /// Indented, one line of the log a line.
        tail: String,
    },
    #[error("{node}: {}", docker_problem(*.problem, .user, .detail))]
    Docker {
        node: Address,
        problem: Unavailable,
        user: String,
        detail: String,
    },
    #[error(
        "the Swarm has lost its quorum: {online} of {total} managers online; {}.\n  \
         Docker keeps the services running as they are, but nothing on the Swarm can change until a majority of the managers is back. \
         Bring them back (e.g. `infra ssh manager[1] -- sudo systemctl start docker`) and run again. \
         If they are lost for good, rebuild the quorum from a manager that answers: `infra recover-swarm` \
         (Docker's `docker swarm init --force-new-cluster` there, then the other managers rejoin; see docs/node-lifecycle.md).",
        silent_managers(.silent)
    )]
    QuorumLost {
        online: usize,
        total: usize,
        /// The managers that did not answer, each with why: `node.manager[1] (Docker down)`.
        silent: Vec<String>,
    },
    #[error("{0}")]
    Other(String),
}

/// The managers a lost quorum misses, for its message.
fn silent_managers(silent: &[String]) -> String {
    if silent.is_empty() {
        "the others are gone (their instances no longer exist) and still count as Raft members"
            .into()
    } else {
        format!("{} do not answer", silent.join(", "))
    }
}

fn docker_problem(problem: Unavailable, user: &str, detail: &str) -> String {
    match problem {
        Unavailable::NotInstalled => format!(
            "Docker is not installed ({detail}).\n  The user-data installs it at first boot: see why it did not in /var/log/cloud-init-output.log on the node."
        ),
        Unavailable::PermissionDenied => format!(
            "{user} may not use Docker ({detail}).\n  The user-data adds the login user to the docker group; on an image of your own run `sudo usermod -aG docker {user}` there."
        ),
        Unavailable::Down => format!(
            "Docker is installed but does not answer ({detail}).\n  Start it on the node (`sudo systemctl start docker`), then run again."
        ),
    }
}

/// Docker out of reach on `node`, if that is what the command's failure says.
pub(super) fn docker_error(node: &Node, e: &SshError) -> Option<SwarmError> {
    let SshError::Command { stderr, .. } = e else {
        return None;
    };
    docker::unavailable_of(e).map(|problem| SwarmError::Docker {
        node: node.host.address.clone(),
        problem,
        user: node.host.user.clone(),
        detail: stderr.lines().next().unwrap_or_default().to_string(),
    })
}

/// Why a manager that SSH reached did not answer as one, in a few words.
pub(super) fn why_silent(e: &SshError) -> &'static str {
    match docker::unavailable_of(e) {
        Some(Unavailable::NotInstalled) => "Docker not installed",
        Some(Unavailable::PermissionDenied) => "Docker not allowed",
        Some(Unavailable::Down) => "Docker down",
        None => "docker failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::swarm::ssh::NodeHost;

    fn node() -> Node {
        Node {
            host: NodeHost {
                address: Address::node("worker", 1),
                instance_id: "i-0abc".into(),
                host: "203.0.113.9".into(),
                user: "ubuntu".into(),
                image_user: Some("ubuntu".into()),
                jump: None,
            },
            role: "worker".into(),
            private_ip: "10.0.1.9".into(),
        }
    }

    fn failed(code: i32, stderr: &str) -> SshError {
        SshError::Command {
            node: Address::node("worker", 1),
            step: "wait for Docker".into(),
            code,
            stderr: stderr.into(),
        }
    }

    #[test]
    fn each_way_docker_can_be_out_of_reach_has_its_own_error() {
        let cases = [
            (
                failed(127, "docker: command not found"),
                "node.worker[1]: Docker is not installed (docker: command not found).\n  The user-data installs it at first boot",
            ),
            (
                failed(
                    1,
                    "permission denied while trying to connect to the Docker daemon socket at unix:///var/run/docker.sock: …",
                ),
                "node.worker[1]: ubuntu may not use Docker (permission denied while trying",
            ),
            (
                failed(
                    1,
                    "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?",
                ),
                "node.worker[1]: Docker is installed but does not answer (Cannot connect",
            ),
        ];
        for (e, expected) in cases {
            let text = docker_error(&node(), &e)
                .expect("Docker out of reach")
                .to_string();
            assert!(text.starts_with(expected), "{text}");
        }
        // Docker answered: the command failed for its own reasons.
        assert!(
            docker_error(
                &node(),
                &failed(
                    1,
                    "Error response from daemon: This node is not a swarm manager."
                )
            )
            .is_none()
        );
    }

    #[test]
    fn a_failed_or_slow_first_boot_names_the_node_and_what_to_do() {
        let failed = SwarmError::BootFailed {
            node: Address::node("worker", 1),
            instance: "i-0abc".into(),
            status: "error".into(),
            tail: "    | E: Unable to locate package docker.io".into(),
        };
        let text = failed.to_string();
        assert!(
            text.starts_with("node.worker[1] (i-0abc): its first boot failed (cloud-init: error)"),
            "{text}"
        );
        assert!(text.contains(
            "/var/log/cloud-init-output.log:\n    | E: Unable to locate package docker.io\n"
        ));
        assert!(
            text.contains("terminate it (`aws ec2 terminate-instances --instance-ids i-0abc`)"),
            "{text}"
        );
        let slow = SwarmError::BootTimeout {
            node: Address::node("worker", 1),
            status: "running".into(),
            waited: "10m".into(),
        };
        assert!(
            slow.to_string()
                .contains("did not finish within 10m (cloud-init: running)")
        );
        assert!(slow.to_string().contains("[ssh] ready_timeout"));
    }
}
