//! Reaching Docker on a node: waiting for its first boot (cloud-init), probing the daemon and
//! the node's Swarm state, and telling from a failed command's answer what was out of reach.

use crate::swarm::SshError;

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
pub fn unavailable_of(e: &SshError) -> Option<Unavailable> {
    match e {
        SshError::Command { code, stderr, .. } => unavailable(*code, stderr),
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
