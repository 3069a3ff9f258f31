//! AWS as the tests have it: moto started behind the strictness proxy
//! (tests/world/aws/proxy.py), a second proxy that injects faults, and the independent boto3
//! reader (tests/world/aws/aws.py) with what its dumps say.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::project::Project;
use super::world::{free_port, venv, wait_for_port, world};

/// AWS as the tests have it: a moto server on a free loopback port, always behind the
/// project's AWS proxy (tests/world/aws/proxy.py), which makes it as strict as AWS where moto is
/// kinder (target health from the ALB data plane). Stopped on drop.
pub struct Moto {
    moto: Child,
    proxy: Child,
    /// The proxy: what infra, the reader and every client talk to.
    pub endpoint: String,
    /// moto itself, for the test world's own parts (the ALB data plane reads it directly).
    pub direct: String,
    /// Where the ALB data plane writes target health for the proxy.
    pub target_health: PathBuf,
    /// What the world's parts share: the registry tokens the proxy issued, the credentials the
    /// metadata service gave instances.
    pub world: PathBuf,
}

impl Moto {
    /// The environment of the world's own parts (the ALB data plane, ECR's front, the metadata
    /// service, the reaper): moto directly, not through the proxy, whose refusals and request
    /// log are the tool's.
    pub fn direct_env<'c>(&self, cmd: &'c mut Command) -> &'c mut Command {
        cmd.env("AWS_ENDPOINT_URL", &self.direct)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
    }

    pub fn start(dir: &Path) -> Moto {
        Moto::start_with(dir, &[])
    }

    /// With more arguments for the proxy, e.g. `--ecr-token-seconds 90`.
    pub fn start_with(dir: &Path, proxy_args: &[&str]) -> Moto {
        let server = venv().join("bin/moto_server");
        assert!(
            server.exists(),
            "{} is missing: run scripts/setup (scripts/test does)",
            server.display()
        );
        let port = free_port();
        let moto = Command::new(server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        wait_for_port(port, "moto");
        let direct = format!("http://127.0.0.1:{port}");
        let target_health = dir.join("alb-health.json");
        let shared = dir.join("world");
        std::fs::create_dir_all(&shared).unwrap();
        let port = free_port();
        let proxy = Command::new(venv().join("bin/python"))
            .arg(world("aws/proxy.py"))
            .args(["--port", &port.to_string(), "--target", &direct])
            .arg("--log")
            .arg(dir.join("aws-requests.log"))
            .arg("--target-health")
            .arg(&target_health)
            .arg("--world")
            .arg(&shared)
            .args(proxy_args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the AWS proxy");
        wait_for_port(port, "the AWS proxy");
        Moto {
            moto,
            proxy,
            endpoint: format!("http://127.0.0.1:{port}"),
            direct,
            target_health,
            world: shared,
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        for child in [&mut self.proxy, &mut self.moto] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A second AWS proxy (tests/world/aws/proxy.py) that injects faults, in front of the tests'
/// own (`Moto::endpoint`).
pub struct FaultProxy {
    child: Child,
    pub endpoint: String,
    pub log: PathBuf,
}

impl FaultProxy {
    /// `throttle`, `error`: the share of requests failed that way (before reaching moto).
    pub fn start(target: &str, throttle: f64, error: f64, seed: u64, log: PathBuf) -> FaultProxy {
        FaultProxy::launch(target, throttle, error, seed, log, 0, &[])
    }

    /// Faults on these operations only (e.g. `RunInstances`).
    pub fn start_for(
        target: &str,
        throttle: f64,
        error: f64,
        seed: u64,
        log: PathBuf,
        ops: &[&str],
    ) -> FaultProxy {
        FaultProxy::launch(target, throttle, error, seed, log, 0, ops)
    }

    /// The same, each request delayed by `latency_ms`.
    pub fn start_slow(
        target: &str,
        throttle: f64,
        error: f64,
        seed: u64,
        log: PathBuf,
        latency_ms: u64,
    ) -> FaultProxy {
        FaultProxy::launch(target, throttle, error, seed, log, latency_ms, &[])
    }

    fn launch(
        target: &str,
        throttle: f64,
        error: f64,
        seed: u64,
        log: PathBuf,
        latency_ms: u64,
        ops: &[&str],
    ) -> FaultProxy {
        let port = free_port();
        let script = world("aws/proxy.py");
        let child = Command::new(venv().join("bin/python"))
            .arg(script)
            .args([
                "--port",
                &port.to_string(),
                "--target",
                target,
                "--log",
                log.to_str().unwrap(),
            ])
            .args([
                "--throttle",
                &throttle.to_string(),
                "--error",
                &error.to_string(),
                "--seed",
                &seed.to_string(),
            ])
            .args(["--latency-ms", &latency_ms.to_string()])
            // The proxy it forwards to is strict already: this one only injects faults.
            .arg("--no-strict")
            .args(if ops.is_empty() {
                vec![]
            } else {
                vec!["--ops".to_string(), ops.join(",")]
            })
            .stdout(Stdio::null())
            // Clients killed mid-request make it print broken pipes: noise here.
            .stderr(Stdio::null())
            .spawn()
            .expect("start the fault proxy");
        wait_for_port(port, "the fault proxy");
        FaultProxy {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    /// Requests seen so far, with their outcome: `ec2:RunInstances ok`.
    pub fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Project {
    /// The independent reader: boto3 straight at moto.
    pub fn aws(&self, args: &[&str]) -> serde_json::Value {
        let script = world("aws/aws.py");
        let mut cmd = Command::new(venv().join("bin/python"));
        self.aws_env(&mut cmd);
        let out = cmd.arg(script).args(args).output().expect("run aws.py");
        assert!(
            out.status.success(),
            "aws.py {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("aws.py prints JSON")
    }

    pub fn dump(&self) -> serde_json::Value {
        self.aws(&["dump", &self.stack])
    }
}

/// What a dump (`Project::dump`) still holds of the stack's tagged objects, by kind: empty once
/// the stack is destroyed.
pub fn tagged_left(dump: &serde_json::Value) -> Vec<String> {
    let kinds = [
        "vpcs",
        "subnets",
        "igws",
        "route_tables",
        "security_groups",
        "key_pairs",
        "load_balancers",
        "target_groups",
    ];
    let mut left: Vec<String> = kinds
        .iter()
        .filter(|k| !dump[**k].as_array().unwrap().is_empty())
        .map(|k| format!("{k}: {}", dump[*k]))
        .collect();
    left.extend(
        live_instances(dump)
            .iter()
            .map(|i| format!("instance {}", i["id"])),
    );
    left
}

/// Instances that are not terminated.
pub fn live_instances(dump: &serde_json::Value) -> Vec<&serde_json::Value> {
    dump["instances"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["state"] != "terminated")
        .collect()
}
