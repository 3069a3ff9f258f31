//! The day-2 reads through the Swarm: a service's logs and tasks, the stack's services with the
//! tasks they run, and what the doctor reads on each node.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use super::docker::{self, LogLine, LogOptions, Member, NodeFacts, RunningTask, SwarmView};
use super::ssh::NodeSession;
use super::{Node, Swarm, SwarmError};
use crate::model::Address;

/// A line of a service's logs: read, or printed by Docker in another shape (an error of the
/// stream, say), as it is.
pub enum LogEvent {
    Line(LogLine),
    Other(String),
}

/// A task that runs, where: its node, and its container there.
#[derive(Clone, Debug)]
pub struct TaskOnNode {
    pub task: docker::TaskContainer,
    pub node: Node,
}

impl Swarm<'_> {
    /// The Swarm's members, as `session` (a manager's) sees them.
    pub async fn members(&self, session: &NodeSession) -> Result<Vec<Member>, SwarmError> {
        let out = session
            .run("docker node inspect", docker::members(), None)
            .await?;
        parse_members(&docker::node_lines(&out))
    }

    /// Every task of `service` Docker still keeps, by id, with its node's hostname: who wrote
    /// the lines of a log stream named after the task.
    pub async fn task_hosts(
        &self,
        session: &NodeSession,
        service: &str,
    ) -> Result<BTreeMap<String, String>, SwarmError> {
        let out = session
            .run("docker service ps", &docker::task_hosts(service), None)
            .await?;
        Ok(out
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(id, host)| (id.to_string(), host.trim().to_string()))
            .collect())
    }

    /// The logs of `target` (a service's or a task's id or name), through `session` (a
    /// manager's): every line to `on_line` as Docker prints it. With `follow` this returns only
    /// when Docker stops or the future is dropped.
    pub async fn logs(
        &self,
        session: &NodeSession,
        target: &str,
        options: &LogOptions,
        mut on_line: impl FnMut(LogEvent),
    ) -> Result<(), SwarmError> {
        let script = docker::service_logs(target, options);
        session
            .stream("docker service logs", &script, |line| {
                on_line(match docker::parse_log_line(&line) {
                    Some(l) => LogEvent::Line(l),
                    None => LogEvent::Other(line),
                })
            })
            .await
            .map_err(|e| match e {
                super::SshError::Command { stderr, code, .. } => SwarmError::Other(format!(
                    "docker service logs {target} failed (exit {code}){}",
                    if stderr.is_empty() {
                        ": its message is above".to_string()
                    } else {
                        format!(": {stderr}")
                    }
                )),
                e => e.into(),
            })
    }

    /// The tasks of `service` that run, each with the node that runs it (`nodes`: the stack's).
    pub async fn running_containers(
        &self,
        managers: &[Node],
        nodes: &[Node],
        service: &str,
    ) -> Result<Vec<TaskOnNode>, SwarmError> {
        let session = self.manager(managers).await?;
        let out = session
            .run("docker service ps", &docker::task_containers(service), None)
            .await;
        session.close().await;
        let out = out?;
        let members = parse_members(&docker::node_lines(&out))?;
        Ok(docker::parse_task_containers(&out)
            .into_iter()
            .filter(|t| t.state == "running" && !t.container_id.is_empty())
            .filter_map(|task| {
                let member = members.iter().find(|m| m.id == task.node_id)?;
                let node = nodes.iter().find(|n| n.private_ip == member.addr)?;
                Some(TaskOnNode {
                    task,
                    node: node.clone(),
                })
            })
            .collect())
    }

    /// The stack's services as the Swarm holds them, and the tasks they should run.
    pub async fn services_and_tasks(
        &self,
        managers: &[Node],
    ) -> Result<(SwarmView, Vec<RunningTask>), SwarmError> {
        let script = format!(
            "{} && {}",
            docker::list(&self.stack),
            docker::running_tasks(&self.stack)
        );
        let session = self.manager(managers).await?;
        let out = session.run("read the services", &script, None).await;
        session.close().await;
        let out = out?;
        let unreadable =
            |e: serde_json::Error| SwarmError::Other(format!("cannot read docker's output: {e}"));
        let view = docker::parse_view(&out).map_err(unreadable)?;
        let tasks = docker::parse_running_tasks(&out).map_err(unreadable)?;
        Ok((view, tasks))
    }

    /// What the doctor reads on `node`, and this machine's clock halfway through the read
    /// (seconds since the epoch), to tell the node's clock's offset within half a round trip.
    pub async fn node_facts(&self, node: &Node) -> Result<(NodeFacts, f64), SwarmError> {
        let now = || {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64())
        };
        let session = self.session(node).await?;
        let before = now();
        let out = session
            .run(
                "read the node's facts",
                &docker::node_facts(&node.private_ip),
                None,
            )
            .await;
        let after = now();
        session.close().await;
        Ok((docker::parse_node_facts(&out?), (before + after) / 2.0))
    }
}

fn parse_members(out: &str) -> Result<Vec<Member>, SwarmError> {
    docker::parse_members(out)
        .map_err(|e| SwarmError::Other(format!("cannot read docker node inspect output: {e}")))
}

/// Each member's node address in the stack, by the hostname Docker names it with (members are
/// matched to nodes by their private address).
pub fn addresses_by_hostname(members: &[Member], nodes: &[Node]) -> BTreeMap<String, Address> {
    members
        .iter()
        .filter_map(|m| {
            let node = nodes.iter().find(|n| n.private_ip == m.addr)?;
            Some((m.hostname.clone(), node.host.address.clone()))
        })
        .collect()
}
