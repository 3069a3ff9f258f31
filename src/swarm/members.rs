//! Swarm membership: reading it through one manager, and joining, updating and removing nodes.
//! Join tokens live in Parameter Store (SecureString) and reach a node only on stdin.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use thiserror::Error;

use super::docker::{self, Member, SwarmView, Unavailable};
use super::ssh::{NodeHost, NodeSession, Ssh, SshError};
use crate::cloud::{Cloud, CloudError};
use crate::compose::LABEL_DEFINITION;
use crate::model::resources::{
    LABEL_ADDRESS, config_address, network_address, normalize_image, service_address,
    swarm_address, swarm_secret_address,
};
use crate::model::{
    Address, Live, Observed, Role, ServiceSpec, Spec, SshSettings, SwarmConfigSpec,
    SwarmNetworkSpec, SwarmNodeSpec, SwarmSecretSpec,
};

/// The Swarm node label naming the EC2 instance a member runs on: it ties the member to its
/// instance across a retag. Not part of the compared spec (the plan cannot know a new
/// instance's id).
pub const LABEL_INSTANCE_ID: &str = "infra.instance-id";

/// The label holding a config's content hash.
pub const LABEL_CONTENT: &str = "infra.content-sha256";

/// A node the Swarm code can reach: how to ssh to it, and the address it advertises.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub host: NodeHost,
    pub role: String,
    pub private_ip: String,
}

#[derive(Debug, Error)]
pub enum SwarmError {
    #[error(transparent)]
    Ssh(#[from] SshError),
    #[error(transparent)]
    Cloud(#[from] CloudError),
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
         (Docker's `docker swarm init --force-new-cluster` there, then the other managers rejoin; see the README's lifecycle section).",
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

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Tries of `docker swarm join` a node gets in one apply.
const JOIN_ATTEMPTS: u32 = 3;

/// How long a login refused by sshd is retried (a booting image may write its authorized keys
/// a moment after sshd answers), and how long Docker is given once the first boot has finished.
const SETTLE: Duration = Duration::from_secs(30);
/// Between tries while a node boots.
const POLL: Duration = Duration::from_secs(3);

/// Docker out of reach on `node`, if that is what the command's failure says.
fn docker_error(node: &Node, e: &SshError) -> Option<SwarmError> {
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

/// The quorum lost as the managers report it, before the leader steps down: a majority of the
/// Raft members unreachable (`docker node ls` still answers for a while from the leader).
/// Returns how many answer, of how many, and the others.
fn quorum_lost(members: &[Member]) -> Option<(usize, usize, Vec<&Member>)> {
    let managers: Vec<&Member> = members.iter().filter(|m| m.reachable.is_some()).collect();
    let online = managers
        .iter()
        .filter(|m| m.reachable == Some(true))
        .count();
    (online * 2 <= managers.len()).then(|| {
        let others = managers
            .iter()
            .filter(|m| m.reachable != Some(true))
            .copied()
            .collect();
        (online, managers.len(), others)
    })
}

/// Why a manager that SSH reached did not answer as one, in a few words.
fn why_silent(e: &SshError) -> &'static str {
    match docker::unavailable_of(e) {
        Some(Unavailable::NotInstalled) => "Docker not installed",
        Some(Unavailable::PermissionDenied) => "Docker not allowed",
        Some(Unavailable::Down) => "Docker down",
        None => "docker failed",
    }
}

/// The Swarm's nodes as ssh reaches them, from instance records: the public address; the
/// private one through the stack's bastion once it exists (`[bastion]`: until then its nodes
/// still accept SSH from admin_cidrs), or through `[ssh] jump_host`.
pub fn nodes<'a>(
    instances: impl IntoIterator<Item = (&'a Address, &'a str, &'a Spec, &'a BTreeMap<String, String>)>,
    settings: &SshSettings,
) -> Vec<Node> {
    let mut bastion = None;
    let mut nodes = Vec::new();
    for (address, id, spec, outputs) in instances {
        let Spec::Instance(i) = spec else { continue };
        let Some(private_ip) = outputs.get("private_ip") else {
            continue;
        };
        let public = outputs.get("public_ip");
        let host = NodeHost {
            address: address.clone(),
            instance_id: id.to_string(),
            host: public.unwrap_or(private_ip).clone(),
            user: settings.user_for(&i.ami).to_string(),
            image_user: settings.image_users.get(&i.ami).cloned(),
            jump: None,
        };
        if i.pool == Role::Bastion.pool() {
            bastion = Some(Box::new(host));
            continue;
        }
        let behind_jump_host = settings.jump_host.is_some() || public.is_none();
        nodes.push(Node {
            host: NodeHost {
                host: if behind_jump_host {
                    private_ip.clone()
                } else {
                    host.host.clone()
                },
                ..host
            },
            role: i.pool.clone(),
            private_ip: private_ip.clone(),
        });
    }
    if let Some(bastion) = bastion {
        for n in &mut nodes {
            n.host.host = n.private_ip.clone();
            n.host.jump = Some(bastion.clone());
        }
    }
    nodes
}

/// Where a leaving node is a load balancer target.
#[derive(Clone, Debug)]
pub struct Deregistration {
    pub targets: Address,
    pub target_group_arn: String,
    pub instance_id: String,
    pub delay: Duration,
}

pub struct Swarm<'a> {
    pub cloud: &'a Cloud,
    pub stack: String,
    pub settings: SshSettings,
    /// Where the ssh config and known_hosts of the stack live (state/).
    pub dir: PathBuf,
    /// Host keys pinned in the state.
    pub pinned: Vec<String>,
}

/// Where a stack's Swarm join token for `role` is kept (SecureString).
fn token_parameter(stack: &str, role: &str) -> String {
    format!("/infra/{stack}/swarm/{role}-token")
}

/// The parameters a stack's Swarm keeps in Parameter Store (removed on destroy).
pub fn token_parameters(stack: &str) -> Vec<String> {
    ["worker", "manager"]
        .iter()
        .map(|r| token_parameter(stack, r))
        .collect()
}

impl Swarm<'_> {
    fn token_parameter(&self, role: &str) -> String {
        token_parameter(&self.stack, role)
    }

    /// Every host key known after this run, for the state.
    pub fn host_keys(&self) -> Vec<String> {
        self.ssh(&[]).map(|s| s.host_keys()).unwrap_or_default()
    }

    fn ssh(&self, nodes: &[&Node]) -> Result<Ssh, SshError> {
        let hosts: Vec<NodeHost> = nodes.iter().map(|n| n.host.clone()).collect();
        Ssh::prepare(&self.dir, &self.stack, &self.settings, &hosts, &self.pinned)
    }

    async fn session(&self, node: &Node) -> Result<NodeSession, SshError> {
        // Through a jump host, a connection is two SSH handshakes.
        let jumps = node.host.jump.is_some() || self.settings.jump_host.is_some();
        let timeout = CONNECT_TIMEOUT * if jumps { 2 } else { 1 };
        self.ssh(&[node])?.connect(&node.host, timeout).await
    }

    /// Waits until the node is ready for the Swarm, bounded by `[ssh] ready_timeout` as a whole,
    /// in a real instance's boot order: SSH answers (sshd starts before the user-data runs);
    /// the first boot finishes (`cloud-init status --wait`; a failed user-data is an error
    /// quoting its log); then a **new** connection — the user-data's `usermod -aG docker` applies
    /// only to logins after it — finds Docker answering. A changed host key fails at once.
    /// Returns the session and the node's Swarm state (`inactive`, `active`, …).
    async fn wait_ready(&self, node: &Node) -> Result<(NodeSession, String), SwarmError> {
        let waited = self.settings.ready_timeout();
        let deadline = Instant::now() + waited;
        let boot = self.wait_ssh(node, deadline).await?;
        let left = deadline.saturating_duration_since(Instant::now()).as_secs();
        let booted = boot
            .run("wait for cloud-init", &docker::wait_boot(left.max(1)), None)
            .await?;
        let cloud_init = match docker::parse_boot(&booted) {
            docker::Boot::NoCloudInit => false,
            docker::Boot::Done => true,
            docker::Boot::Running(status) => {
                boot.close().await;
                return Err(SwarmError::BootTimeout {
                    node: node.host.address.clone(),
                    status,
                    waited: humantime::format_duration(waited).to_string(),
                });
            }
            docker::Boot::Failed(status) => {
                let tail = boot
                    .run("read the boot log", docker::boot_log_tail(), None)
                    .await
                    .unwrap_or_else(|e| format!("(cannot read it: {e})"));
                boot.close().await;
                let tail: Vec<String> = tail.lines().map(|l| format!("    | {l}")).collect();
                return Err(SwarmError::BootFailed {
                    node: node.host.address.clone(),
                    instance: node.host.instance_id.clone(),
                    status,
                    tail: tail.join("\n"),
                });
            }
        };
        boot.close().await;
        let settled = Instant::now() + SETTLE;
        loop {
            let session = self.wait_ssh(node, deadline).await?;
            let probe = session.run("wait for Docker", docker::probe(), None).await;
            let e = match probe {
                Ok(out) => {
                    let state = out
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_string();
                    return Ok((session, state));
                }
                Err(e) => e,
            };
            session.close().await;
            let Some(unavailable) = docker_error(node, &e) else {
                return Err(e.into());
            };
            // Once the first boot is over, only a daemon that is starting is worth a long wait.
            let SwarmError::Docker { problem, .. } = &unavailable else {
                unreachable!("docker_error")
            };
            let give_up = if cloud_init && *problem != Unavailable::Down {
                settled.min(deadline)
            } else {
                deadline
            };
            if Instant::now() >= give_up {
                return Err(unavailable);
            }
            tracing::debug!("{}: {unavailable}", node.host.address);
            tokio::time::sleep(POLL).await;
        }
    }

    /// A session once the node answers over SSH, waiting (until `deadline`) while it does not.
    async fn wait_ssh(&self, node: &Node, deadline: Instant) -> Result<NodeSession, SwarmError> {
        let started = Instant::now();
        loop {
            let e = match self.session(node).await {
                Ok(s) => return Ok(s),
                Err(e @ SshError::HostKeyChanged { .. }) => return Err(e.into()),
                Err(e @ SshError::AuthRefused { .. }) if started.elapsed() >= SETTLE => {
                    return Err(e.into());
                }
                Err(e) => e,
            };
            if Instant::now() >= deadline {
                let waited = self.settings.ready_timeout();
                return Err(SwarmError::NotReady {
                    source: Box::new(e),
                    waited: humantime::format_duration(waited).to_string(),
                });
            }
            tracing::debug!("{}: not reachable yet: {e}", node.host.address);
            tokio::time::sleep(POLL).await;
        }
    }

    /// The Swarm as one reachable manager sees it: `Ok(None)` if no manager is in a Swarm
    /// (there is none yet); an error if managers exist in the state but none answers, naming
    /// why (SSH, Docker not installed, not allowed, down). A manager whose Docker does not
    /// answer is never read as "no Swarm".
    pub async fn read(&self, managers: &[Node]) -> Result<Option<(Node, SwarmView)>, SwarmError> {
        let mut last_error = None;
        // Managers that answer but have no leader, and the others with why.
        let (mut leaderless, mut silent) = (0, Vec::new());
        for m in managers {
            let session = match self.session(m).await {
                Ok(s) => s,
                Err(e @ (SshError::HostKeyChanged { .. } | SshError::AuthRefused { .. })) => {
                    return Err(e.into());
                }
                Err(e) => {
                    silent.push(format!("{} (no SSH)", m.host.address));
                    last_error = Some(e.into());
                    continue;
                }
            };
            let listed = session
                .run("read the Swarm", &docker::list(&self.stack), None)
                .await;
            session.close().await;
            match listed {
                Ok(out) => {
                    let view = docker::parse_view(&out).map_err(|e| {
                        SwarmError::Other(format!(
                            "{}: cannot read docker inspect output: {e}",
                            m.host.address
                        ))
                    })?;
                    if let Some((online, total, unreachable)) = quorum_lost(&view.members) {
                        let mut silent = Vec::new();
                        for u in unreachable {
                            let node = managers.iter().find(|n| n.private_ip == u.addr);
                            silent.push(match node {
                                Some(n) => {
                                    let why = self.why_silent_now(n).await;
                                    format!("{} ({why})", n.host.address)
                                }
                                None => format!("{} (unreachable)", u.hostname),
                            });
                        }
                        return Err(SwarmError::QuorumLost {
                            online,
                            total,
                            silent,
                        });
                    }
                    return Ok(Some((m.clone(), view)));
                }
                // Reachable, and Docker says it is not a manager of any Swarm (yet).
                Err(SshError::Command { stderr, .. }) if docker::not_a_manager(&stderr) => {}
                Err(SshError::Command { stderr, .. }) if docker::no_leader(&stderr) => {
                    leaderless += 1;
                }
                Err(e) => {
                    silent.push(format!("{} ({})", m.host.address, why_silent(&e)));
                    last_error = Some(docker_error(m, &e).unwrap_or(e.into()));
                }
            }
        }
        if leaderless > 0 {
            return Err(SwarmError::QuorumLost {
                online: leaderless,
                total: managers.len(),
                silent,
            });
        }
        match last_error {
            Some(e) => Err(e),
            None => Ok(None),
        }
    }

    /// The Swarm in address space: members, services, secrets, networks and configs. `nodes`
    /// are the live instances: a member belongs to the instance its `infra.instance-id` label
    /// names, whatever that instance's address now is (a rolling replacement retags the old
    /// one `…/old`); else to the address its `infra.address` label names; else to the instance
    /// with its private IP (joined, not labelled yet: an interrupted run).
    pub fn observe(&self, view: &SwarmView, nodes: &[Node]) -> Live {
        let mut live = Self::observe_members(&view.members, nodes);
        let prefix = format!("{}_", self.stack);
        // infra's networks carry their address; one `docker stack deploy` made for the stack is
        // `<stack>_<key>`.
        let address_of = |n: &docker::NetworkInfo| match n.labels.get(LABEL_ADDRESS) {
            Some(a) => Some(Address::new(a.as_str())),
            None => n.name.strip_prefix(&prefix).map(network_address),
        };
        // A service names its networks by id or name.
        let network_of: BTreeMap<&str, Address> = view
            .networks
            .iter()
            .filter_map(|n| {
                let a = address_of(n)?;
                Some([(n.id.as_str(), a.clone()), (n.name.as_str(), a)])
            })
            .flatten()
            .collect();
        for n in &view.networks {
            let Some(address) = address_of(n) else {
                continue;
            };
            let spec = SwarmNetworkSpec {
                name: n.name.clone(),
                driver: n.driver.clone(),
                attachable: n.attachable,
                internal: n.internal,
                encrypted: n.options.contains_key("encrypted"),
                definition_sha256: n.labels.get(LABEL_DEFINITION).cloned().unwrap_or_default(),
                create_args: Vec::new(),
            };
            live.insert(
                address,
                Observed {
                    id: n.id.clone(),
                    spec: Spec::SwarmNetwork(spec),
                    outputs: BTreeMap::new(),
                },
            );
        }
        for c in &view.configs {
            let spec = SwarmConfigSpec {
                name: c.name.clone(),
                content_sha256: c.labels.get(LABEL_CONTENT).cloned().unwrap_or_default(),
                template_driver: c.template_driver.clone(),
                content: String::new(),
            };
            live.insert(
                config_address(&c.name),
                Observed {
                    id: c.id.clone(),
                    spec: Spec::SwarmConfig(spec),
                    outputs: BTreeMap::new(),
                },
            );
        }
        for s in &view.services {
            let short = s.name.strip_prefix(&prefix).unwrap_or(&s.name);
            // External secrets, configs and networks are the file's to name, not plan objects.
            let ours = |used: &[String], address: &dyn Fn(&str) -> Option<Address>| {
                let mut list: Vec<Address> = used.iter().filter_map(|n| address(n)).collect();
                list.sort();
                list
            };
            let secrets = ours(&s.secrets, &|n| {
                let known = view.secrets.iter().any(|o| o.name == n);
                known.then(|| swarm_secret_address(n))
            });
            let configs = ours(&s.configs, &|n| {
                let known = view.configs.iter().any(|o| o.name == n);
                known.then(|| config_address(n))
            });
            let networks = ours(&s.networks, &|n| network_of.get(n).cloned());
            let spec = ServiceSpec {
                image: normalize_image(&s.image),
                mode: s.mode.clone(),
                ports: s.ports.clone(),
                secrets,
                networks,
                configs,
                definition_sha256: s.labels.get(LABEL_DEFINITION).cloned().unwrap_or_default(),
                definition: String::new(),
            };
            let outputs = BTreeMap::from([
                ("name".to_string(), s.name.clone()),
                ("replicas".to_string(), s.replicas.clone()),
                ("update_state".to_string(), s.update_state.clone()),
                ("image".to_string(), s.image.clone()),
            ]);
            live.insert(
                service_address(short),
                Observed {
                    id: s.id.clone(),
                    spec: Spec::Service(spec),
                    outputs,
                },
            );
        }
        for s in &view.secrets {
            let secret = s.labels.get("infra.secret").cloned().unwrap_or_default();
            live.insert(
                swarm_secret_address(&s.name),
                Observed {
                    id: s.id.clone(),
                    spec: Spec::SwarmSecret(SwarmSecretSpec {
                        name: s.name.clone(),
                        secret: Address::new(secret),
                    }),
                    outputs: BTreeMap::new(),
                },
            );
        }
        live
    }

    fn observe_members(members: &[Member], nodes: &[Node]) -> Live {
        let mut sorted: Vec<&Member> = members.iter().collect();
        // A working member wins its address over a stale Down entry of the same node.
        sorted.sort_by_key(|m| m.state != "ready");
        let mut live = Live::new();
        for m in sorted {
            let mut labels = m.labels.clone();
            let instance_id = labels.remove(LABEL_INSTANCE_ID);
            let by_id = instance_id
                .as_ref()
                .and_then(|id| nodes.iter().find(|n| &n.host.instance_id == id));
            let instance = by_id
                .map(|n| n.host.address.clone())
                .or_else(|| {
                    m.labels
                        .get(LABEL_ADDRESS)
                        .map(|a| Address::new(a.as_str()))
                })
                .or_else(|| {
                    let by_ip = nodes.iter().find(|n| n.private_ip == m.addr);
                    by_ip.map(|n| n.host.address.clone())
                });
            let address = match &instance {
                Some(i) if !live.contains_key(&swarm_address(i)) => swarm_address(i),
                _ => Address::new(format!("orphan.swarm_node.{}", m.id)),
            };
            let spec = SwarmNodeSpec {
                instance: instance.unwrap_or_else(|| Address::new(m.hostname.clone())),
                role: m.role.clone(),
                availability: m.availability.clone(),
                state: m.state.clone(),
                labels,
            };
            let mut outputs = BTreeMap::from([
                ("hostname".to_string(), m.hostname.clone()),
                ("addr".to_string(), m.addr.clone()),
                ("leader".to_string(), m.leader.to_string()),
            ]);
            outputs.extend(instance_id.map(|id| ("instance_id".to_string(), id)));
            live.insert(
                address,
                Observed {
                    id: m.id.clone(),
                    spec: Spec::SwarmNode(spec),
                    outputs,
                },
            );
        }
        live
    }

    /// Makes `node` a member: `swarm init` when no manager runs a Swarm yet and it is a manager,
    /// otherwise a join with the token from Parameter Store. Returns its Swarm node id.
    /// `newcomers` are managers that join in this same run (still booting, perhaps): their
    /// silence does not mean a Swarm might run without us seeing it.
    pub async fn join(
        &self,
        node: &Node,
        spec: &SwarmNodeSpec,
        managers: &[Node],
        newcomers: &[Address],
    ) -> Result<String, SwarmError> {
        let (session, mut state) = self.wait_ready(node).await?;
        let (leader, mut silent) = self.find_manager(managers, &node.host.address).await?;
        silent.retain(|s| !newcomers.iter().any(|a| s.starts_with(&format!("{a} "))));
        if let (Some((_, manager)), "active") = (&leader, state.as_str()) {
            // It believes it is a member; the Swarm may no longer know it (it was removed, or
            // the Swarm was rebuilt by `recover-swarm` while it was away): then it leaves first.
            let own = session
                .run(
                    "docker info",
                    "docker info --format '{{.Swarm.NodeID}}'",
                    None,
                )
                .await?;
            if manager
                .run("docker node inspect", &docker::known(own.trim()), None)
                .await
                .is_err()
            {
                session
                    .run("docker swarm leave", docker::leave(), None)
                    .await?;
                state = "inactive".into();
            }
        }
        let id = match (&leader, state.as_str()) {
            // Already a member (an earlier run joined it, then stopped): keep it.
            (_, "active") => {
                session
                    .run(
                        "docker info",
                        "docker info --format '{{.Swarm.NodeID}}'",
                        None,
                    )
                    .await?
            }
            // A manager that does not answer may run the Swarm: starting another would split it.
            (None, _) if !silent.is_empty() => {
                return Err(SwarmError::Other(format!(
                    "{}: cannot join: no manager that answered runs a Swarm, and {} did not answer; \
                     refusing to start a second Swarm. Bring them back (or remove them from the stack), then apply again.",
                    node.host.address,
                    silent.join(", ")
                )));
            }
            (None, _) if spec.role == "manager" => {
                let id = session
                    .run("docker swarm init", &docker::init(&node.private_ip), None)
                    .await?;
                self.store_tokens(&session).await?;
                id
            }
            (None, _) => {
                return Err(SwarmError::Other(format!(
                    "{}: no manager runs a Swarm to join; the first manager must join first",
                    node.host.address
                )));
            }
            (Some((manager, manager_session)), _) => {
                let token = self.token(&spec.role, manager_session).await?;
                let script = docker::join(&node.private_ip, &manager.private_ip);
                let mut attempt = 1;
                loop {
                    match session
                        .run("docker swarm join", &script, Some(&token))
                        .await
                    {
                        Ok(id) => break id,
                        // The script left the failed join behind, so a retry starts clean:
                        // a manager briefly out of reach should not cost a whole apply.
                        Err(e @ SshError::Command { .. }) if attempt < JOIN_ATTEMPTS => {
                            tracing::debug!("{}: retrying the join: {e}", node.host.address);
                            tokio::time::sleep(Duration::from_secs(5)).await;
                            attempt += 1;
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        };
        let id = id.trim().to_string();
        session.close().await;
        // Labels and availability are set from a manager (a worker cannot change them).
        let manager = match leader {
            Some((_, s)) => s,
            None => self.session(node).await?,
        };
        let mut labels = spec.labels.clone();
        labels.insert(LABEL_INSTANCE_ID.into(), node.host.instance_id.clone());
        manager
            .run(
                "docker node update",
                &docker::update(&id, &spec.role, &spec.availability, &labels, &[]),
                None,
            )
            .await?;
        manager.close().await;
        Ok(id)
    }

    /// Role, availability and labels, changed from a manager.
    pub async fn update(
        &self,
        id: &str,
        before: &SwarmNodeSpec,
        after: &SwarmNodeSpec,
        managers: &[Node],
    ) -> Result<(), SwarmError> {
        let (Some((_, s)), _) = self.find_manager(managers, &after.instance).await? else {
            return Err(SwarmError::Other("no Swarm manager answers".into()));
        };
        let removed: Vec<String> = before
            .labels
            .keys()
            .filter(|k| !after.labels.contains_key(*k))
            .cloned()
            .collect();
        s.run(
            "docker node update",
            &docker::update(
                id,
                &after.role,
                &after.availability,
                &after.labels,
                &removed,
            ),
            None,
        )
        .await?;
        s.close().await;
        Ok(())
    }

    /// Labels a member with its instance's id (`infra.instance-id`), from a manager: before a
    /// rolling replacement retags the instance, so the member follows it to `…/old`.
    pub async fn label_instance(
        &self,
        member: &Address,
        id: &str,
        instance_id: &str,
        managers: &[Node],
    ) -> Result<(), SwarmError> {
        let (found, silent) = self.find_manager(managers, &Address::new("")).await?;
        let Some((_, s)) = found else {
            return Err(SwarmError::Other(format!(
                "{member}: no Swarm manager answers ({})",
                silent.join(", ")
            )));
        };
        let label = BTreeMap::from([(LABEL_INSTANCE_ID.to_string(), instance_id.to_string())]);
        let labelled = s
            .run("docker node update", &docker::add_labels(id, &label), None)
            .await;
        s.close().await;
        Ok(labelled.map(drop)?)
    }

    /// Takes a member out, in the order that loses no request and keeps the Raft quorum: it
    /// leaves the target group first (`deregister`, waiting out the delay: the load balancer
    /// sends it no new request, and the ones in flight finish while its tasks still serve);
    /// then a manager is demoted (leadership moves if it led) and the node drained, its tasks
    /// given time to start elsewhere; it leaves the Swarm (if it still answers); a manager
    /// removes it.
    pub async fn remove(
        &self,
        id: &str,
        node: Option<&Node>,
        managers: &[Node],
        deregister: Option<Deregistration>,
    ) -> Result<(), SwarmError> {
        let me = node
            .map(|n| n.host.address.clone())
            .unwrap_or_else(|| Address::new(""));
        let (found, silent) = self.find_manager(managers, &me).await?;
        let Some((_, manager)) = found else {
            // The last manager (a destroy): the Swarm ends with it.
            if let (Some(node), true) = (node, silent.is_empty()) {
                let s = self.session(node).await?;
                let left = s.run("docker swarm leave", docker::leave(), None).await;
                s.close().await;
                return Ok(left.map(drop)?);
            }
            return Err(SwarmError::Other(format!(
                "{me}: no other Swarm manager answers (silent: {}), so the node cannot be removed safely",
                silent.join(", ")
            )));
        };
        let result = async {
            if let Some(d) = deregister {
                self.cloud
                    .deregister_target(&d.targets, &d.target_group_arn, &d.instance_id, d.delay)
                    .await?;
            }
            if node.is_some() {
                manager
                    .run("drain the node", &docker::drain(id), None)
                    .await?;
                manager
                    .run(
                        "wait for its tasks to move",
                        &docker::wait_drained(id),
                        None,
                    )
                    .await?;
            }
            if let Some(node) = node
                && let Ok(s) = self.session(node).await
            {
                let _ = s.run("docker swarm leave", docker::leave(), None).await;
                s.close().await;
            }
            manager
                .run("docker node rm", &docker::remove(id), None)
                .await?;
            Ok::<_, SwarmError>(())
        }
        .await;
        manager.close().await;
        result
    }

    /// Rebuilds a Swarm that lost its quorum from one manager (`from`, or the first whose Docker
    /// answers as a manager): `docker swarm init --force-new-cluster` there, the join tokens
    /// stored again, the other managers' entries removed, and every other manager that still
    /// answers made to leave, so that the next apply rejoins it. Refused while the Swarm has a leader. Returns the manager used and
    /// the managers that did not answer.
    pub async fn recover(
        &self,
        managers: &[Node],
        from: Option<&Address>,
    ) -> Result<(Address, Vec<String>), SwarmError> {
        match self.read(managers).await {
            Err(SwarmError::QuorumLost { .. }) => {}
            Ok(Some(_)) => {
                return Err(SwarmError::Other(
                    "the Swarm has a leader: its quorum is not lost, so there is nothing to recover. `infra plan` shows what differs.".into(),
                ));
            }
            Ok(None) => {
                return Err(SwarmError::Other(
                    "no manager runs a Swarm: `infra apply` creates one.".into(),
                ));
            }
            Err(e) => return Err(e),
        }
        let candidates: Vec<&Node> = managers
            .iter()
            .filter(|m| from.is_none_or(|f| &m.host.address == f))
            .collect();
        let mut chosen = None;
        let mut silent = Vec::new();
        for m in candidates {
            let Ok(s) = self.session(m).await else {
                silent.push(format!("{} (no SSH)", m.host.address));
                continue;
            };
            match s.run("docker info", docker::probe(), None).await {
                Ok(out) if chosen.is_none() && out.split_whitespace().nth(1) == Some("true") => {
                    chosen = Some((m, s));
                    continue;
                }
                Ok(_) => {}
                Err(e) => silent.push(format!("{} ({})", m.host.address, why_silent(&e))),
            }
            s.close().await;
        }
        let Some((survivor, session)) = chosen else {
            return Err(SwarmError::Other(format!(
                "no manager{} answers as a Swarm manager ({}): start Docker on one, then run again",
                from.map(|f| format!(" among {f}")).unwrap_or_default(),
                silent.join(", ")
            )));
        };
        let rebuilt = session
            .run(
                "docker swarm init --force-new-cluster",
                &docker::force_new_cluster(&survivor.private_ip),
                None,
            )
            .await;
        let tokens = async {
            rebuilt?;
            // The other managers are no Raft members any more: their entries go, and they
            // rejoin (or are replaced) as new members.
            let others = session
                .run("list the other managers", docker::other_managers(), None)
                .await?;
            for id in others.split_whitespace() {
                session
                    .run("docker node rm", &docker::remove(id), None)
                    .await?;
            }
            self.store_tokens(&session).await
        }
        .await;
        session.close().await;
        tokens?;
        // The other managers still hold the old Raft state: they leave, and rejoin at apply.
        for m in managers
            .iter()
            .filter(|m| m.host.address != survivor.host.address)
        {
            if let Ok(s) = self.session(m).await {
                let _ = s.run("docker swarm leave", docker::leave(), None).await;
                s.close().await;
            }
        }
        Ok((survivor.host.address.clone(), silent))
    }

    /// Why a manager the others cannot reach does not answer: SSH, or its Docker.
    async fn why_silent_now(&self, node: &Node) -> &'static str {
        let Ok(s) = self.session(node).await else {
            return "no SSH";
        };
        let probed = s.run("docker info", docker::probe(), None).await;
        s.close().await;
        match probed {
            Ok(_) => "its Docker answers; the other managers cannot reach it",
            Err(e) => why_silent(&e),
        }
    }

    /// Asks a manager for both join tokens and keeps them in Parameter Store.
    async fn store_tokens(&self, manager: &NodeSession) -> Result<(), SwarmError> {
        for role in ["worker", "manager"] {
            let token = manager
                .run("docker swarm join-token", &docker::join_token(role), None)
                .await?;
            self.cloud
                .put_secret(&self.token_parameter(role), token.trim())
                .await?;
        }
        Ok(())
    }

    /// The join token for `role`: from Parameter Store, or asked of a manager and stored.
    async fn token(&self, role: &str, manager: &NodeSession) -> Result<String, SwarmError> {
        let name = self.token_parameter(role);
        if let Some(t) = self.cloud.get_secret(&name).await? {
            return Ok(t);
        }
        let token = manager
            .run("docker swarm join-token", &docker::join_token(role), None)
            .await?
            .trim()
            .to_string();
        self.cloud.put_secret(&name, &token).await?;
        Ok(token)
    }

    /// A manager (other than `except`) that runs a Swarm, with an open session to it.
    /// Also returns the managers that did not answer, each with why (`node.manager[1] (Docker
    /// does not answer)`): with any of them silent, "no Swarm" is not known to be true. A login
    /// refused or a changed host key is an error at once.
    pub(super) async fn find_manager(
        &self,
        managers: &[Node],
        except: &Address,
    ) -> Result<(Option<(Node, NodeSession)>, Vec<String>), SwarmError> {
        let mut silent = Vec::new();
        for m in managers.iter().filter(|m| &m.host.address != except) {
            let s = match self.session(m).await {
                Ok(s) => s,
                Err(e @ (SshError::HostKeyChanged { .. } | SshError::AuthRefused { .. })) => {
                    return Err(e.into());
                }
                Err(e) => {
                    tracing::debug!("manager {}: {e}", m.host.address);
                    silent.push(format!("{} (no SSH)", m.host.address));
                    continue;
                }
            };
            match s.run("docker info", docker::probe(), None).await {
                Ok(out) if out.split_whitespace().nth(1) == Some("true") => {
                    return Ok((Some((m.clone(), s)), silent));
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!("manager {}: {e}", m.host.address);
                    silent.push(format!("{} ({})", m.host.address, why_silent(&e)));
                }
            }
            s.close().await;
        }
        Ok((None, silent))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// With a bastion, every node is reached on its private address through it, and the
    /// bastion itself is no Swarm node; without one, on the public address.
    #[test]
    fn nodes_are_reached_through_the_bastion_once_it_exists() {
        let instance = |pool: &str| {
            Spec::Instance(crate::model::InstanceSpec {
                pool: pool.into(),
                instance_type: "t3.micro".into(),
                ami: "ami-1".into(),
                subnet: Address::new("subnet[0]"),
                security_groups: vec![],
                key_pair: Address::new("key_pair"),
                root_volume_gb: 8,
                imdsv2_required: true,
                user_data_sha256: String::new(),
                user_data: String::new(),
            })
        };
        let outputs = |public: &str, private: &str| {
            BTreeMap::from([
                ("public_ip".to_string(), public.to_string()),
                ("private_ip".to_string(), private.to_string()),
            ])
        };
        let (manager, bastion) = (instance("manager"), instance("bastion"));
        let (m_out, b_out) = (
            outputs("203.0.113.1", "10.0.1.1"),
            outputs("203.0.113.9", "10.0.1.9"),
        );
        let (m_addr, b_addr) = (Address::node("manager", 0), Address::node("bastion", 0));
        let settings = SshSettings::default();
        let direct = nodes([(&m_addr, "i-m", &manager, &m_out)], &settings);
        assert_eq!(
            (direct[0].host.host.as_str(), direct[0].host.jump.is_none()),
            ("203.0.113.1", true)
        );
        let jumped = nodes(
            [
                (&m_addr, "i-m", &manager, &m_out),
                (&b_addr, "i-b", &bastion, &b_out),
            ],
            &settings,
        );
        assert_eq!(jumped.len(), 1, "the bastion is no Swarm node");
        let host = &jumped[0].host;
        assert_eq!(host.host, "10.0.1.1");
        let jump = host.jump.as_ref().expect("through the bastion");
        assert_eq!(
            (jump.instance_id.as_str(), jump.host.as_str()),
            ("i-b", "203.0.113.9")
        );
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
