//! Services and secrets on the Swarm, through one manager: secrets created from stdin, services
//! deployed one compose document at a time with `docker stack deploy`, then watched until they
//! converge or Docker rolls them back.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::docker;
use super::ssh::{NodeSession, SshError};
use super::{LABEL_CONTENT, Node, Swarm, SwarmError};
use crate::compose::LABEL_DEFINITION;
use crate::model::{Address, DeploySettings, ServiceSpec, SwarmConfigSpec, SwarmNetworkSpec};

/// One look at a service during a deploy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Status {
    id: String,
    update_state: String,
    update_started: Option<i64>,
    message: String,
    running: u64,
    desired: u64,
}

fn parse_status(service: &str, out: &str) -> Status {
    let mut lines = out.lines();
    let mut fields = lines.next().unwrap_or_default().split('|');
    let mut next = || fields.next().unwrap_or_default().trim().to_string();
    let (id, update_state, started, message) = (next(), next(), next(), next());
    let replicas = lines
        .filter_map(|l| l.split_once(' '))
        .find(|(name, _)| *name == service)
        .map_or("", |(_, r)| r);
    // A job (`0/1 (1/1 completed)`) has converged once its tasks completed.
    let (running, desired) = docker::replica_counts(replicas).unwrap_or((0, 0));
    Status {
        id,
        update_state,
        update_started: started.parse().ok(),
        message,
        running,
        desired,
    }
}

/// How long a step on the Swarm waits for a manager out of SSH reach.
const MANAGER_WAIT: Duration = Duration::from_secs(60);

fn no_manager(silent: &[String]) -> SwarmError {
    let why = if silent.is_empty() {
        String::new()
    } else {
        format!(" ({} unreachable)", silent.join(", "))
    };
    SwarmError::Other(format!("no Swarm manager answers{why}"))
}

impl Swarm<'_> {
    fn service_name(&self, address: &Address) -> String {
        let short = address.as_str().trim_start_matches("swarm.service.");
        format!("{}_{short}", self.stack)
    }

    /// A session to a manager that answers. One out of SSH reach is tried again for a while (a
    /// bastion created in this apply may still be starting its sshd).
    pub async fn manager(&self, managers: &[Node]) -> Result<NodeSession, SwarmError> {
        let deadline = Instant::now() + MANAGER_WAIT;
        loop {
            match self.find_manager(managers, &Address::new("")).await? {
                (Some((_, s)), _) => return Ok(s),
                (None, silent)
                    if Instant::now() < deadline
                        && silent.iter().any(|s| s.ends_with("(no SSH)")) =>
                {
                    tokio::time::sleep(Duration::from_secs(3)).await;
                }
                (None, silent) => return Err(no_manager(&silent)),
            }
        }
    }

    /// A session to a manager that answers now, without waiting for one out of SSH reach: for
    /// reads that have another source and ask the Swarm only to name things (`infra logs` from
    /// CloudWatch Logs).
    pub async fn manager_now(&self, managers: &[Node]) -> Result<NodeSession, SwarmError> {
        match self.find_manager(managers, &Address::new("")).await? {
            (Some((_, s)), _) => Ok(s),
            (None, silent) => Err(no_manager(&silent)),
        }
    }

    /// Runs one command on a manager that answers; returns what it printed.
    async fn on_manager(
        &self,
        managers: &[Node],
        what: &str,
        command: &str,
        stdin: Option<&str>,
    ) -> Result<String, SwarmError> {
        let s = self.manager(managers).await?;
        let out = s.run(what, command, stdin).await;
        s.close().await;
        Ok(out?)
    }

    fn labels(&self, address: &Address) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("infra.stack".to_string(), self.stack.clone()),
            ("infra.address".to_string(), address.to_string()),
        ])
    }

    /// Creates a Swarm secret with `value` given on stdin; returns its id.
    pub async fn create_secret(
        &self,
        address: &Address,
        name: &str,
        secret: &Address,
        value: &str,
        managers: &[Node],
    ) -> Result<String, SwarmError> {
        let mut labels = self.labels(address);
        labels.insert("infra.secret".to_string(), secret.to_string());
        let command = docker::create_secret(name, &labels);
        let id = self
            .on_manager(managers, "docker secret create", &command, Some(value))
            .await?;
        Ok(id.trim().to_string())
    }

    /// Runs a removal on a manager; its failure names the object first.
    async fn remove_object(
        &self,
        address: &Address,
        managers: &[Node],
        what: &str,
        command: &str,
    ) -> Result<(), SwarmError> {
        self.on_manager(managers, what, command, None)
            .await
            .map(drop)
            .map_err(|e| match e {
                SwarmError::Ssh(e @ SshError::Command { .. }) => {
                    SwarmError::Other(format!("{address}: {e}"))
                }
                e => e,
            })
    }

    /// Removes a Swarm secret (Docker refuses while a service uses it).
    pub async fn remove_secret(
        &self,
        address: &Address,
        name: &str,
        managers: &[Node],
    ) -> Result<(), SwarmError> {
        let command = docker::remove_secret(name);
        self.remove_object(address, managers, "docker secret rm", &command)
            .await
    }

    /// Creates one of the compose file's overlay networks, labelled as part of the stack (so
    /// that `docker stack deploy` uses it as it is); returns its id.
    pub async fn create_network(
        &self,
        address: &Address,
        spec: &SwarmNetworkSpec,
        managers: &[Node],
    ) -> Result<String, SwarmError> {
        let mut labels = self.labels(address);
        labels.insert("com.docker.stack.namespace".into(), self.stack.clone());
        labels.insert(LABEL_DEFINITION.into(), spec.definition_sha256.clone());
        let command = docker::create_network(&spec.name, &spec.create_args, &labels);
        let id = self
            .on_manager(managers, "docker network create", &command, None)
            .await?;
        Ok(id.trim().to_string())
    }

    /// Removes a network by id (or name) and returns once Docker no longer lists it.
    pub async fn remove_network(
        &self,
        address: &Address,
        network: &str,
        managers: &[Node],
    ) -> Result<(), SwarmError> {
        let command = docker::remove_network(network);
        self.remove_object(address, managers, "docker network rm", &command)
            .await
    }

    /// Creates a config with its content on stdin; returns its id.
    pub async fn create_config(
        &self,
        address: &Address,
        spec: &SwarmConfigSpec,
        managers: &[Node],
    ) -> Result<String, SwarmError> {
        let mut labels = self.labels(address);
        labels.insert(LABEL_CONTENT.into(), spec.content_sha256.clone());
        let command = docker::create_config(&spec.name, &labels, spec.template_driver.as_deref());
        let id = self
            .on_manager(
                managers,
                "docker config create",
                &command,
                Some(&spec.content),
            )
            .await?;
        Ok(id.trim().to_string())
    }

    /// Removes a config (Docker refuses while a service uses it).
    pub async fn remove_config(
        &self,
        address: &Address,
        name: &str,
        managers: &[Node],
    ) -> Result<(), SwarmError> {
        let command = docker::remove_config(name);
        self.remove_object(address, managers, "docker config rm", &command)
            .await
    }

    /// Removes a service and returns once its tasks stopped on every ready node.
    pub async fn remove_service(
        &self,
        address: &Address,
        managers: &[Node],
    ) -> Result<(), SwarmError> {
        let command = docker::remove_service(&self.service_name(address));
        self.remove_object(address, managers, "docker service rm", &command)
            .await
    }

    /// Deploys one service and waits until it converges: all its tasks running, and the rolling
    /// update this deploy started completed. `retry`: the service did not converge before (its
    /// spec is unchanged), so its tasks are restarted (a forced update). A rollback, a paused
    /// update or the timeout is an error that names the service and its tasks' errors.
    /// Returns the service id.
    pub async fn deploy(
        &self,
        address: &Address,
        spec: &ServiceSpec,
        retry: bool,
        managers: &[Node],
        opts: &DeploySettings,
        report: &(dyn Fn(String) + Sync),
    ) -> Result<String, SwarmError> {
        let s = self.manager(managers).await?;
        let result = self.deploy_on(&s, address, spec, retry, opts, report).await;
        s.close().await;
        result
    }

    async fn deploy_on(
        &self,
        s: &NodeSession,
        address: &Address,
        spec: &ServiceSpec,
        retry: bool,
        opts: &DeploySettings,
        report: &(dyn Fn(String) + Sync),
    ) -> Result<String, SwarmError> {
        let name = self.service_name(address);
        let clock = s
            .run(
                "docker stack deploy",
                &docker::deploy(&self.stack, &opts.resolve_image),
                Some(&spec.definition),
            )
            .await?;
        if retry {
            self.force_if_stuck(s, address, &name).await?;
        }
        let deployed_at: i64 = clock.trim().parse().unwrap_or(0);
        let started = Instant::now();
        let timeout = Duration::from_secs(opts.converge_timeout_secs);
        let mut last_report = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let out = s
                .run(
                    "docker service inspect",
                    &docker::service_status(&name),
                    None,
                )
                .await?;
            let st = parse_status(&name, &out);
            let ours = st.update_started.is_some_and(|t| t >= deployed_at);
            let converged = st.running == st.desired;
            let failed = ours
                && matches!(
                    st.update_state.as_str(),
                    "rollback_completed" | "rollback_paused" | "paused"
                );
            // Report a rollback once it has brought every task back.
            if failed && (converged || started.elapsed() >= timeout) {
                let what = if st.update_state.starts_with("rollback") {
                    "the update failed and Docker rolled the service back to its previous version"
                } else {
                    "the update failed and Docker paused it"
                };
                return Err(self.deploy_failed(s, address, &name, what, &st).await);
            }
            let done = if failed {
                false
            } else if ours {
                st.update_state == "completed" && converged
            } else {
                // No rolling update (a new service, or nothing that restarts tasks changed).
                converged && started.elapsed() >= Duration::from_secs(4)
            };
            if done {
                return Ok(st.id);
            }
            if started.elapsed() >= timeout {
                let what = format!(
                    "did not converge within {} ({} of {} tasks running{})",
                    humantime::format_duration(timeout),
                    st.running,
                    st.desired,
                    if st.update_state.is_empty() {
                        String::new()
                    } else {
                        format!(", update {}", st.update_state)
                    }
                );
                return Err(self.deploy_failed(s, address, &name, &what, &st).await);
            }
            if last_report.elapsed() >= Duration::from_secs(10) {
                last_report = Instant::now();
                let state = if st.update_state.is_empty() {
                    String::new()
                } else {
                    format!(", {}", st.update_state.replace('_', " "))
                };
                report(format!(
                    "{address}: {}/{} tasks running{state} [{}s elapsed]",
                    st.running,
                    st.desired,
                    started.elapsed().as_secs()
                ));
            }
        }
    }

    /// Restarts the tasks of a service Docker left unconverged (a paused update, tasks short),
    /// unless it has converged since the plan read it.
    async fn force_if_stuck(
        &self,
        s: &NodeSession,
        address: &Address,
        name: &str,
    ) -> Result<(), SwarmError> {
        let named = |e: SshError| SwarmError::Other(format!("{address}: {e}"));
        let out = s
            .run(
                "docker service inspect",
                &docker::service_status(name),
                None,
            )
            .await
            .map_err(named)?;
        let st = parse_status(name, &out);
        let paused = matches!(st.update_state.as_str(), "paused" | "rollback_paused");
        if paused || st.running < st.desired {
            s.run(
                "docker service update --force",
                &docker::force_update(name),
                None,
            )
            .await
            .map_err(named)?;
        }
        Ok(())
    }

    async fn deploy_failed(
        &self,
        s: &NodeSession,
        address: &Address,
        name: &str,
        what: &str,
        st: &Status,
    ) -> SwarmError {
        let tasks = s
            .run("docker service ps", &docker::task_errors(name), None)
            .await
            .unwrap_or_default();
        let mut text = format!("{address} ({name}): {what}");
        if !st.message.is_empty() {
            text.push_str(&format!("\n      docker: {}", st.message));
        }
        for line in tasks.lines().filter(|l| !l.trim().is_empty()) {
            text.push_str(&format!("\n      task {line}"));
        }
        text.push_str(&format!(
            "\n      See `infra ssh <manager> -- docker service ps {name} --no-trunc`; fix the service, then apply again."
        ));
        SwarmError::Other(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_service_status() {
        let out =
            "abc|rollback_completed|1700000000|rollback completed\ndemo_web 3/3\ndemo_webx 0/1\n";
        let st = parse_status("demo_web", out);
        assert_eq!(
            st,
            Status {
                id: "abc".into(),
                update_state: "rollback_completed".into(),
                update_started: Some(1_700_000_000),
                message: "rollback completed".into(),
                running: 3,
                desired: 3,
            }
        );
        let job = parse_status("demo_migrate", "abc|||\ndemo_migrate 0/1 (1/1 completed)\n");
        assert_eq!((job.running, job.desired), (1, 1));
        let capped = parse_status("demo_web", "abc|||\ndemo_web 1/2 (max 1 per node)\n");
        assert_eq!((capped.running, capped.desired), (1, 2));
        let fresh = parse_status("demo_web", "abc|||\ndemo_web 1/2\n");
        assert_eq!(
            (fresh.update_started, fresh.running, fresh.desired),
            (None, 1, 2)
        );
    }
}
