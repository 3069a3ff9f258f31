//! A service's tasks and logs, for the day-2 commands (`logs`, `details`, `exec`), and what the
//! doctor reads on each node: the scripts, and the parsing of what they print. Pure.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::quote;

/// Which logs `docker service logs` prints
/// (https://docs.docker.com/reference/cli/docker/service/logs/).
#[derive(Clone, Debug, Default)]
pub struct LogOptions {
    /// Keep printing new lines until interrupted.
    pub follow: bool,
    /// Only lines since this time: RFC 3339, a Unix timestamp, or a Go duration (`10m`, `1h30m`)
    /// before now.
    pub since: Option<String>,
    /// Only the last N lines of each task.
    pub tail: Option<u64>,
}

/// The logs of `target` (a service's name, or a task id) from every task, with Docker's
/// timestamps and full task ids, its stderr lines among the stdout ones (Docker prints a
/// container's stderr on its own stderr).
pub fn service_logs(target: &str, o: &LogOptions) -> String {
    let mut script = String::from("docker service logs --timestamps --no-trunc");
    if o.follow {
        script.push_str(" --follow");
    }
    if let Some(since) = &o.since {
        script.push_str(&format!(" --since {}", quote(since)));
    }
    if let Some(n) = o.tail {
        script.push_str(&format!(" --tail {n}"));
    }
    script.push_str(&format!(" {} 2>&1", quote(target)));
    script
}

/// One line of [`service_logs`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    pub time: DateTime<Utc>,
    /// `<service>.<slot>` (`sandbox_web.1`), or for a global service's task `<service>.<node id>`.
    pub task: String,
    pub task_id: String,
    /// The node's hostname, as Docker names it.
    pub hostname: String,
    pub message: String,
}

/// Reads `2026-12-07T14:00:00.123456789Z web.1.<task id>@<hostname>    | message`, the line
/// `docker service logs --timestamps --no-trunc` prints (docker/cli
/// `cli/command/service/logs.go`: the daemon's timestamp, the task's context, ` | `, the
/// line). None for a line of another shape (an error of the stream, say).
pub fn parse_log_line(line: &str) -> Option<LogLine> {
    let (time, rest) = line.split_once(' ')?;
    let time = DateTime::parse_from_rfc3339(time).ok()?.with_timezone(&Utc);
    let (context, message) = match rest.split_once(" | ") {
        Some(split) => split,
        // An empty line of the application.
        None => (rest.strip_suffix(" |")?, ""),
    };
    let (task, hostname) = context.trim().rsplit_once('@')?;
    let (task, task_id) = task.rsplit_once('.')?;
    Some(LogLine {
        time,
        task: task.to_string(),
        task_id: task_id.to_string(),
        hostname: hostname.to_string(),
        message: message.to_string(),
    })
}

/// Every task of `service` Docker still keeps (its history too) and the hostname of its node,
/// as `<task id> <hostname>` lines.
pub fn task_hosts(service: &str) -> String {
    format!(
        "docker service ps --no-trunc --format '{{{{.ID}}}} {{{{.Node}}}}' {}",
        quote(service)
    )
}

/// The Swarm's members, as `node <docker node inspect JSON>` lines.
pub fn members() -> &'static str {
    "docker node ls -q | xargs -r docker node inspect --format 'node {{json .}}'"
}

/// The tasks of `service` that should run, each with its node and container, as lines
/// `task <id>|<state>|<node id>|<container id>|<image>` (no container yet: empty), and the
/// Swarm's nodes as `node <docker node inspect JSON>`.
pub fn task_containers(service: &str) -> String {
    format!(
        "docker service ps -q --no-trunc --filter desired-state=running {} | xargs -r docker inspect --type task --format 'task {{{{.ID}}}}|{{{{.Status.State}}}}|{{{{.NodeID}}}}|{{{{with .Status.ContainerStatus}}}}{{{{.ContainerID}}}}{{{{end}}}}|{{{{.Spec.ContainerSpec.Image}}}}' && {}",
        quote(service),
        members()
    )
}

/// A task as [`task_containers`] prints it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskContainer {
    pub id: String,
    /// `running`, `starting`, `preparing`, …
    pub state: String,
    pub node_id: String,
    /// Empty until Docker made the container.
    pub container_id: String,
    pub image: String,
}

/// The `task` lines of [`task_containers`]' output.
pub fn parse_task_containers(output: &str) -> Vec<TaskContainer> {
    output
        .lines()
        .filter_map(|l| l.strip_prefix("task "))
        .map(|l| {
            let mut f = l.splitn(5, '|').map(str::to_string);
            let mut next = || f.next().unwrap_or_default();
            TaskContainer {
                id: next(),
                state: next(),
                node_id: next(),
                container_id: next(),
                image: next(),
            }
        })
        .collect()
}

/// The `node` lines of a script's output (see [`super::parse_members`]).
pub fn node_lines(output: &str) -> String {
    output
        .lines()
        .filter_map(|l| l.strip_prefix("node "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The tasks of the stack's services that should run, as `running <docker service ps JSON>`
/// lines (after [`super::list`] in one call, for `infra details`).
pub fn running_tasks(stack: &str) -> String {
    format!(
        "ids=$(docker service ls -q --filter label=com.docker.stack.namespace={stack}) && \
         if [ -n \"$ids\" ]; then docker service ps --no-trunc --filter desired-state=running --format 'running {{{{json .}}}}' $ids; fi"
    )
}

/// One task of [`running_tasks`].
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RunningTask {
    #[serde(rename = "ID")]
    pub id: String,
    /// `sandbox_web.1`, or `sandbox_web.<node id>` for a global service.
    pub name: String,
    /// The node's hostname.
    pub node: String,
    /// `Running 2 minutes ago`, `Starting 1 second ago`, …
    pub current_state: String,
}

impl RunningTask {
    /// The service's name (`sandbox_web`).
    pub fn service(&self) -> &str {
        self.name
            .rsplit_once('.')
            .map_or(self.name.as_str(), |(s, _)| s)
    }
}

/// The `running` lines of [`running_tasks`]' output.
pub fn parse_running_tasks(output: &str) -> Result<Vec<RunningTask>, serde_json::Error> {
    output
        .lines()
        .filter_map(|l| l.strip_prefix("running "))
        .map(serde_json::from_str)
        .collect()
}

/// What the doctor reads on a node, one fact a line: the Docker Engine's version, the node's
/// clock (Unix seconds with nanoseconds), the size and free bytes of Docker's file system, and
/// the MTU of the interface that holds `private_ip`.
pub fn node_facts(private_ip: &str) -> String {
    format!(
        "echo \"engine $(docker version --format '{{{{.Server.Version}}}}' 2>/dev/null || echo unknown)\"; \
         echo \"clock $(date +%s.%N)\"; \
         df -P -B1 /var/lib/docker 2>/dev/null | awk 'NR==2 {{print \"disk\", $2, $4}}'; \
         dev=$(ip -o -4 addr show | awk '$4 ~ /^{ip}\\// {{print $2; exit}}'); \
         [ -n \"$dev\" ] && echo \"mtu $dev $(cat /sys/class/net/$dev/mtu)\"; true",
        ip = private_ip.replace('.', "\\.")
    )
}

/// What [`node_facts`] printed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeFacts {
    /// `26.1.5`; `unknown` when Docker does not answer.
    pub engine: String,
    /// The node's clock, in seconds since the epoch.
    pub clock: f64,
    /// Docker's file system: size and free bytes.
    pub disk: Option<(u64, u64)>,
    /// The interface of the node's private address and its MTU.
    pub mtu: Option<(String, u32)>,
}

pub fn parse_node_facts(output: &str) -> NodeFacts {
    let mut facts = NodeFacts::default();
    for line in output.lines() {
        let mut words = line.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some("engine"), Some(v), _) => facts.engine = v.to_string(),
            (Some("clock"), Some(t), _) => facts.clock = t.parse().unwrap_or_default(),
            (Some("disk"), Some(size), Some(free)) => {
                facts.disk = size.parse().ok().zip(free.parse().ok());
            }
            (Some("mtu"), Some(dev), Some(mtu)) => {
                facts.mtu = mtu.parse().ok().map(|m| (dev.to_string(), m));
            }
            _ => {}
        }
    }
    facts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_line_names_its_task_node_and_time() {
        let line = "2026-12-07T14:00:00.1234Z sandbox_web.1.k3v0q8r2x1m4n5b6v7c8x9z0a@node-2    | demo v1 | started";
        let l = parse_log_line(line).unwrap();
        assert_eq!(
            (
                l.task.as_str(),
                l.task_id.as_str(),
                l.hostname.as_str(),
                l.message.as_str()
            ),
            (
                "sandbox_web.1",
                "k3v0q8r2x1m4n5b6v7c8x9z0a",
                "node-2",
                "demo v1 | started"
            )
        );
        assert_eq!(l.time.timestamp_subsec_micros(), 123_400);
        assert_eq!(parse_log_line("error from daemon in stream: boom"), None);
        // An empty line of the application.
        let empty = parse_log_line("2026-12-07T14:00:00Z web.1.x@n    |").unwrap();
        assert_eq!(empty.message, "");
    }

    #[test]
    fn scripts_quote_what_the_user_typed() {
        let o = LogOptions {
            follow: true,
            since: Some("10m; rm -rf /".into()),
            tail: Some(5),
        };
        assert_eq!(
            service_logs("sandbox_web", &o),
            "docker service logs --timestamps --no-trunc --follow --since '10m; rm -rf /' --tail 5 'sandbox_web' 2>&1"
        );
    }

    #[test]
    fn reads_tasks_and_node_facts() {
        let out = "task t1|running|n1|c1|img:1\ntask t2|preparing|n2||img:1\nnode {}\n";
        let tasks = parse_task_containers(out);
        assert_eq!(tasks.len(), 2);
        assert_eq!(
            (tasks[1].state.as_str(), tasks[1].container_id.as_str()),
            ("preparing", "")
        );
        assert_eq!(node_lines(out), "{}");
        let running = parse_running_tasks(
            r#"running {"ID":"t1","Name":"s_web.1","Node":"node-1","CurrentState":"Running 2 minutes ago","DesiredState":"Running"}"#,
        )
        .unwrap();
        assert_eq!(running[0].service(), "s_web");
        let facts = parse_node_facts(
            "engine 26.1.5\nclock 1796652000.250000000\ndisk 1000 250\nmtu eth0 9001\n",
        );
        assert_eq!(facts.engine, "26.1.5");
        assert_eq!(facts.disk, Some((1000, 250)));
        assert_eq!(facts.mtu, Some(("eth0".to_string(), 9001)));
        assert!((facts.clock - 1_796_652_000.25).abs() < 1e-6);
    }
}
