//! SSH to the nodes with the system `ssh`, so the user's ssh config (ProxyJump, ProxyCommand,
//! agents, certificates) just works.
//!
//! Each run writes `state/<stack>.ssh_config` naming every node by its instance id, with
//! `HostKeyAlias <instance id>` and `UserKnownHostsFile state/<stack>.known_hosts`: a node's host
//! key is accepted on first contact and verified ever after, keyed by the instance (an IP address
//! is reused by other instances; an instance id never is). A changed key stops the run.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use openssh::{KnownHosts, Session, SessionBuilder, Stdio};
use thiserror::Error;
use tokio::io::AsyncWriteExt;

use crate::model::{Address, SshSettings};

/// One node as ssh sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeHost {
    pub address: Address,
    pub instance_id: String,
    /// What ssh connects to: the public address, or the private one behind a jump host.
    pub host: String,
    /// Who logs in: `[ssh] user`, else the image's own user.
    pub user: String,
    /// The user the node's image creates for the key pair, when known: named when a login
    /// as someone else is refused.
    pub image_user: Option<String>,
    /// The stack's bastion (`[bastion]`), which ssh jumps through to reach `host` (a private
    /// address); its host key is pinned like a node's.
    pub jump: Option<Box<NodeHost>>,
}

#[derive(Debug, Error)]
pub enum SshError {
    #[error(
        "{node} ({instance}): its SSH host key changed since infra first met it, so the connection was refused.\n  \
         If the instance was rebuilt on purpose, remove the line for {instance} from {known_hosts} and run again; \
         otherwise find out who answers at {host}."
    )]
    HostKeyChanged {
        node: Address,
        instance: String,
        host: String,
        known_hosts: String,
    },
    #[error("{node} ({instance} at {host}): the node refused the login of {user}: {detail}")]
    AuthRefused {
        node: Address,
        instance: String,
        host: String,
        user: String,
        /// What the node said, then what to do.
        detail: String,
    },
    #[error(
        "{node} ({instance} at {host}): cannot connect over SSH: {detail}\n  Check that the node is up, that port 22 is open to you (admin_cidrs) and the [ssh] settings."
    )]
    Connect {
        node: Address,
        instance: String,
        host: String,
        detail: String,
    },
    #[error("{node}: `{step}` failed (exit {code}): {stderr}")]
    Command {
        node: Address,
        step: String,
        code: i32,
        stderr: String,
    },
    #[error("{node}: `{step}`: {detail}")]
    Session {
        node: Address,
        step: String,
        detail: String,
    },
    #[error("cannot write {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// The ssh settings of one run, written to disk for the system ssh to read.
#[derive(Debug)]
pub struct Ssh {
    config: PathBuf,
    known_hosts: PathBuf,
}

/// The per-stack ssh config: our host entries first (the first value ssh finds wins), then the
/// user's own config for everything else.
pub fn render_config(
    settings: &SshSettings,
    known_hosts: &Path,
    nodes: &[NodeHost],
    user_config: Option<&Path>,
) -> String {
    let mut out =
        String::from("# Written by infra on every run; edits are lost. Hosts are instance ids.\n");
    let host = |out: &mut String, n: &NodeHost| {
        let _ = writeln!(out, "\nHost {}", n.instance_id);
        let _ = writeln!(out, "  HostName {}", n.host);
        let _ = writeln!(out, "  HostKeyAlias {}", n.instance_id);
        let _ = writeln!(out, "  User {}", n.user);
        let _ = writeln!(out, "  UserKnownHostsFile \"{}\"", known_hosts.display());
        let _ = writeln!(out, "  StrictHostKeyChecking accept-new");
        if let Some(key) = &settings.identity_file {
            let _ = writeln!(
                out,
                "  IdentityFile \"{}\"\n  IdentitiesOnly yes",
                key.display()
            );
        }
    };
    let mut bastions: Vec<&NodeHost> = nodes.iter().filter_map(|n| n.jump.as_deref()).collect();
    bastions.dedup_by_key(|b| b.instance_id.clone());
    for b in bastions {
        host(&mut out, b);
    }
    for n in nodes {
        host(&mut out, n);
        match (&n.jump, &settings.jump_host) {
            (Some(bastion), _) => {
                let _ = writeln!(out, "  ProxyJump {}", bastion.instance_id);
            }
            (None, Some(jump)) => {
                let _ = writeln!(out, "  ProxyJump {jump}");
            }
            (None, None) => {}
        }
    }
    if let Some(user_config) = user_config {
        let _ = writeln!(out, "\nHost *\n  Include \"{}\"", user_config.display());
    }
    out
}

impl Ssh {
    /// Writes `<dir>/<stack>.ssh_config` for these nodes, and `<dir>/<stack>.known_hosts` with
    /// the `pinned` keys (from the state), which win over any line the local file has for the same
    /// instance.
    pub fn prepare(
        dir: &Path,
        stack: &str,
        settings: &SshSettings,
        nodes: &[NodeHost],
        pinned: &[String],
    ) -> Result<Ssh, SshError> {
        let io = |path: &Path| {
            let path = path.display().to_string();
            move |source| SshError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let known_hosts = dir.join(format!("{stack}.known_hosts"));
        // One node's sessions get a config of their own: steps on different nodes run at once,
        // and ssh must never read a file another step is rewriting.
        let config = match nodes {
            [one] => {
                let own = dir.join(format!("{stack}.ssh"));
                std::fs::create_dir_all(&own).map_err(io(&own))?;
                own.join(&one.instance_id)
            }
            _ => dir.join(format!("{stack}.ssh_config")),
        };
        let home_config = std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(".ssh/config"))
            .filter(|p| p.exists());
        let user_config = settings.config_file.clone().or(home_config);
        let text = render_config(settings, &known_hosts, nodes, user_config.as_deref());
        write_atomically(&config, &text).map_err(io(&config))?;
        let host = |line: &str| line.split_whitespace().next().unwrap_or("").to_string();
        let pinned_hosts: Vec<String> = pinned.iter().map(|l| host(l)).collect();
        let local = std::fs::read_to_string(&known_hosts).unwrap_or_default();
        let mut lines: Vec<String> = pinned.to_vec();
        lines.extend(
            local
                .lines()
                .filter(|l| !l.trim().is_empty() && !pinned_hosts.contains(&host(l)))
                .map(str::to_string),
        );
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        if text != local {
            write_atomically(&known_hosts, &text).map_err(io(&known_hosts))?;
        }
        Ok(Ssh {
            config,
            known_hosts,
        })
    }

    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// The host keys known now (pinned before, and met for the first time in this run).
    pub fn host_keys(&self) -> Vec<String> {
        let text = std::fs::read_to_string(&self.known_hosts).unwrap_or_default();
        let mut lines: Vec<String> = text
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .map(str::to_string)
            .collect();
        lines.sort();
        lines.dedup();
        lines
    }

    /// A multiplexed session to one node; fails at once on a changed host key.
    pub async fn connect(
        &self,
        node: &NodeHost,
        timeout: Duration,
    ) -> Result<NodeSession, SshError> {
        tracing::debug!(target: "infra::ssh", "ssh {}: connect", node.address);
        let mut builder = SessionBuilder::default();
        builder
            .config_file(&self.config)
            .known_hosts_check(KnownHosts::Add)
            .connect_timeout(timeout)
            .server_alive_interval(Duration::from_secs(15))
            .control_directory(std::env::temp_dir());
        match builder.connect_mux(&node.instance_id).await {
            Ok(session) => Ok(NodeSession {
                node: node.clone(),
                session,
            }),
            Err(e) => {
                let detail = error_chain(&e);
                if detail.contains("HOST IDENTIFICATION HAS CHANGED")
                    || detail.contains("Host key verification failed")
                {
                    Err(SshError::HostKeyChanged {
                        node: node.address.clone(),
                        instance: node.instance_id.clone(),
                        host: node.host.clone(),
                        known_hosts: self.known_hosts.display().to_string(),
                    })
                } else if detail.contains("Permission denied (") {
                    Err(auth_refused(node, &detail, None))
                } else {
                    Err(SshError::Connect {
                        node: node.address.clone(),
                        instance: node.instance_id.clone(),
                        host: node.host.clone(),
                        detail,
                    })
                }
            }
        }
    }
}

/// A login refused: by sshd (`Permission denied (publickey)`), or accepted and then turned
/// away by the image, as Ubuntu and Amazon Linux do for root ("Please login as the user
/// \"ubuntu\" rather than the user \"root\"", `suggested`).
fn auth_refused(node: &NodeHost, detail: &str, suggested: Option<&str>) -> SshError {
    let usual = suggested.or(node.image_user.as_deref());
    let hint = match usual {
        Some(usual) if usual != node.user => format!(
            "This node's image logs in as {usual}, not {}: set [ssh] user = \"{usual}\" (or remove [ssh] user to follow the image).",
            node.user
        ),
        _ => format!(
            "Check that {} is the image's login user (Amazon Linux: ec2-user, Ubuntu: ubuntu, Debian: admin) and that your key (identity_file or ssh agent) matches the stack's public_key_file.",
            node.user
        ),
    };
    SshError::AuthRefused {
        node: node.address.clone(),
        instance: node.instance_id.clone(),
        host: node.host.clone(),
        user: node.user.clone(),
        detail: format!("{detail}\n  {hint}"),
    }
}

/// The user a login message asks for: `Please login as the user "ubuntu" rather than …`.
fn login_as(message: &str) -> Option<&str> {
    let rest = message.split("Please login as the user \"").nth(1)?;
    rest.split('"').next()
}

/// Readers (ssh processes of other steps) see the old file or the new one, never half of one.
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    if std::fs::read_to_string(path).is_ok_and(|t| t == text) {
        return Ok(());
    }
    let tmp = path.with_extension(format!("{}.tmp", uuid::Uuid::new_v4().simple()));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let _ = write!(text, ": {s}");
        source = s.source();
    }
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// An open session to one node.
pub struct NodeSession {
    pub node: NodeHost,
    session: Session,
}

impl NodeSession {
    /// Runs `script` with `sh -c` on the node. `input`, if any, goes to its stdin: the way to
    /// hand a secret to a remote command without it appearing on any command line here.
    /// `step` names what is being done, for errors.
    pub async fn run(
        &self,
        step: &str,
        script: &str,
        input: Option<&str>,
    ) -> Result<String, SshError> {
        let stdin = if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        };
        let mut child = self.spawn(step, script, stdin).await?;
        if let Some(input) = input {
            let mut stdin = child.stdin().take().expect("stdin is piped");
            stdin
                .write_all(input.as_bytes())
                .await
                .map_err(|e| self.broken(step, e.to_string()))?;
            drop(stdin);
        }
        let out = child
            .wait_with_output()
            .await
            .map_err(|e| self.broken(step, error_chain(&e)))?;
        if !out.status.success() {
            let stdout = String::from_utf8_lossy(&out.stdout);
            if let Some(user) = login_as(&stdout) {
                return Err(auth_refused(&self.node, stdout.trim(), Some(user)));
            }
            return Err(self.failed(step, out.status, &String::from_utf8_lossy(&out.stderr)));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Runs `script` with `sh -c` on the node like [`NodeSession::run`], handing each line of
    /// its stdout to `on_line` as it arrives (for output that never ends, such as
    /// `docker service logs --follow`: drop the future to stop).
    pub async fn stream(
        &self,
        step: &str,
        script: &str,
        mut on_line: impl FnMut(String),
    ) -> Result<(), SshError> {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
        let mut child = self.spawn(step, script, Stdio::null()).await?;
        let stdout = child.stdout().take().expect("stdout is piped");
        let mut stderr = child.stderr().take().expect("stderr is piped");
        let mut lines = BufReader::new(stdout).lines();
        while let Some(line) = lines
            .next_line()
            .await
            .map_err(|e| self.broken(step, e.to_string()))?
        {
            on_line(line);
        }
        let mut err = String::new();
        let _ = stderr.read_to_string(&mut err).await;
        let status = child
            .wait()
            .await
            .map_err(|e| self.broken(step, error_chain(&e)))?;
        if !status.success() {
            return Err(self.failed(step, status, &err));
        }
        Ok(())
    }

    /// `sh -c script` started on the node, its stdout and stderr piped.
    async fn spawn(
        &self,
        step: &str,
        script: &str,
        stdin: Stdio,
    ) -> Result<openssh::Child<&Session>, SshError> {
        tracing::debug!(target: "infra::ssh", "ssh {}: {step}", self.node.address);
        let mut cmd = self.session.command("sh");
        cmd.arg("-c")
            .arg(script)
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd.spawn()
            .await
            .map_err(|e| self.broken(step, error_chain(&e)))
    }

    /// The session failed during `step`.
    fn broken(&self, step: &str, detail: String) -> SshError {
        SshError::Session {
            node: self.node.address.clone(),
            step: step.to_string(),
            detail,
        }
    }

    /// The command of `step` exited with `status`.
    fn failed(&self, step: &str, status: std::process::ExitStatus, stderr: &str) -> SshError {
        SshError::Command {
            node: self.node.address.clone(),
            step: step.to_string(),
            code: status.code().unwrap_or(-1),
            stderr: stderr.trim().to_string(),
        }
    }

    pub async fn close(self) {
        let _ = self.session.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_pins_host_keys_by_instance_and_includes_the_users_config() {
        let settings = SshSettings {
            identity_file: Some("/keys/id".into()),
            jump_host: Some("admin@bastion.example.com".into()),
            ..Default::default()
        };
        let nodes = [NodeHost {
            address: Address::node("worker", 0),
            instance_id: "i-0abc".into(),
            host: "10.0.1.5".into(),
            user: "ubuntu".into(),
            image_user: Some("ubuntu".into()),
            jump: None,
        }];
        let text = render_config(
            &settings,
            Path::new("/s/prod.known_hosts"),
            &nodes,
            Some(Path::new("/home/u/.ssh/config")),
        );
        insta::assert_snapshot!(text);
        assert!(!text.contains("StrictHostKeyChecking no"));
    }

    /// Nodes behind the stack's bastion jump through it by its instance id, and the bastion's
    /// own entry pins its host key like a node's; the agent is used when no key file is set.
    #[test]
    fn nodes_jump_through_the_bastion_whose_key_is_pinned_too() {
        let bastion = NodeHost {
            address: Address::node("bastion", 0),
            instance_id: "i-0bastion".into(),
            host: "203.0.113.9".into(),
            user: "ubuntu".into(),
            image_user: Some("ubuntu".into()),
            jump: None,
        };
        let nodes = [1, 2].map(|i| NodeHost {
            address: Address::node("worker", i),
            instance_id: format!("i-0node{i}"),
            host: format!("10.0.1.{i}"),
            jump: Some(Box::new(bastion.clone())),
            ..node("ubuntu", Some("ubuntu"))
        });
        let text = render_config(
            &SshSettings::default(),
            Path::new("/s/prod.known_hosts"),
            &nodes,
            None,
        );
        assert_eq!(text.matches("\nHost i-0bastion\n").count(), 1, "{text}");
        assert!(
            text.contains("Host i-0bastion\n  HostName 203.0.113.9\n  HostKeyAlias i-0bastion\n"),
            "{text}"
        );
        assert!(
            text.contains("Host i-0node2\n  HostName 10.0.1.2\n  HostKeyAlias i-0node2\n"),
            "{text}"
        );
        assert_eq!(
            text.matches("  ProxyJump i-0bastion\n").count(),
            2,
            "{text}"
        );
        assert!(!text.contains("IdentityFile"), "{text}");
    }

    fn node(user: &str, image_user: Option<&str>) -> NodeHost {
        NodeHost {
            address: Address::node("manager", 0),
            instance_id: "i-0abc".into(),
            host: "203.0.113.7".into(),
            user: user.into(),
            image_user: image_user.map(str::to_string),
            jump: None,
        }
    }

    #[test]
    fn a_refused_login_names_the_user_and_the_images_user() {
        let e = auth_refused(
            &node("ubuntu", Some("ec2-user")),
            "ubuntu@i-0abc: Permission denied (publickey).",
            None,
        );
        let text = e.to_string();
        assert!(
            text.starts_with(
                "node.manager[0] (i-0abc at 203.0.113.7): the node refused the login of ubuntu"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "This node's image logs in as ec2-user, not ubuntu: set [ssh] user = \"ec2-user\""
            ),
            "{text}"
        );
        let unknown = auth_refused(
            &node("deploy", None),
            "Permission denied (publickey).",
            None,
        );
        assert!(
            unknown
                .to_string()
                .contains("Check that deploy is the image's login user"),
            "{unknown}"
        );
    }

    #[test]
    fn root_turned_away_by_the_image_is_a_refused_login() {
        let message = "Please login as the user \"ubuntu\" rather than the user \"root\".";
        assert_eq!(login_as(message), Some("ubuntu"));
        assert_eq!(login_as("hello"), None);
        let e = auth_refused(&node("root", None), message, login_as(message));
        assert!(
            e.to_string()
                .contains("This node's image logs in as ubuntu, not root"),
            "{e}"
        );
    }
}
