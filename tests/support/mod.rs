//! Test harness: a real moto server per test, a scratch project directory, the real `infra`
//! binary, an independent boto3 reader (tests/world/aws/aws.py), and testbed nodes that boot
//! like EC2 instances (tests/world/nodes).
#![allow(dead_code)]

pub mod traffic;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn venv() -> PathBuf {
    std::env::var_os("INFRA_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv"))
}

/// Waits (30 s at most) until a server we started listens on a loopback port.
pub fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not start on port {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

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
}

impl Moto {
    pub fn start(dir: &Path) -> Moto {
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
        let port = free_port();
        let proxy = Command::new(venv().join("bin/python"))
            .arg(world("aws/proxy.py"))
            .args(["--port", &port.to_string(), "--target", &direct])
            .arg("--log")
            .arg(dir.join("aws-requests.log"))
            .arg("--target-health")
            .arg(&target_health)
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

/// A scratch working directory holding `stacks/<name>.toml`, with its own moto.
pub struct Project {
    pub dir: tempfile::TempDir,
    pub moto: Moto,
    pub stack: String,
    pub cert_arn: String,
    /// Appended to the fixture stack file, e.g. a [state] table.
    pub extra: String,
    /// The stack file under tests/fixtures.
    pub fixture: String,
    /// Placeholders in the fixture and their values.
    pub replacements: Vec<(String, String)>,
    /// More environment for infra (template variables, secret values).
    pub env: Vec<(String, String)>,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

impl Project {
    /// The fixture stack `tests/fixtures/moto.toml` with `workers` workers.
    pub fn new(stack: &str, workers: usize) -> Project {
        let dir = tempfile::tempdir().unwrap();
        let moto = Moto::start(dir.path());
        let mut p = Project {
            dir,
            moto,
            stack: stack.to_string(),
            cert_arn: String::new(),
            extra: String::new(),
            fixture: "moto.toml".into(),
            replacements: Vec::new(),
            env: Vec::new(),
        };
        let keys = p.keys();
        p.cert_arn = p.aws(&["import-cert", keys.to_str().unwrap()])["arn"]
            .as_str()
            .unwrap()
            .to_string();
        std::fs::create_dir_all(p.dir.path().join("stacks")).unwrap();
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        std::fs::copy(
            fixtures.join("id_test.pub"),
            p.dir.path().join("stacks/id_test.pub"),
        )
        .unwrap();
        p.write_stack(workers);
        p
    }

    pub fn write_stack(&self, workers: usize) {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let text = std::fs::read_to_string(fixtures.join(&self.fixture))
            .unwrap()
            .replace("CERT_ARN", &self.cert_arn)
            .replace("WORKERS", &workers.to_string());
        let text = self
            .replacements
            .iter()
            .fold(text, |t, (k, v)| t.replace(k.as_str(), v));
        std::fs::write(self.stack_file(), text + &self.extra).unwrap();
    }

    /// The same stack, keeping its state in the moto S3 bucket `bucket`.
    pub fn new_with_s3_state(stack: &str, workers: usize, bucket: &str) -> Project {
        let mut p = Project::new(stack, workers);
        p.aws(&["make-bucket", bucket]);
        p.extra = format!(
            "\n[state]\nbackend = \"s3\"\nbucket = \"{bucket}\"\nkey = \"stacks/{stack}.json\"\n"
        );
        p.write_stack(workers);
        p
    }

    /// Another working directory (a fresh CI runner's checkout) with the same stack file and
    /// key, the same moto, but nothing else.
    pub fn fresh_checkout(&self) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("stacks")).unwrap();
        for f in [format!("{}.toml", self.stack), "id_test.pub".to_string()] {
            std::fs::copy(
                self.dir.path().join("stacks").join(&f),
                dir.path().join("stacks").join(&f),
            )
            .unwrap();
        }
        dir
    }

    /// `infra ARGS` in another directory, against this project's moto.
    pub fn infra_in(&self, dir: &Path, args: &[&str]) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_infra"));
        self.aws_env(&mut cmd);
        cmd.current_dir(dir)
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .args(args)
            .stdin(Stdio::null());
        let out: Output = cmd.output().expect("run infra");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// A command with this project's AWS environment, for running infra the way a shell would.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        self.aws_env(&mut cmd);
        cmd.current_dir(self.dir.path())
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG");
        cmd
    }

    /// Where the harness keeps the private keys of the certificates it imported into ACM (and
    /// the certificates, for clients to trust), named after the certificate's id.
    pub fn keys(&self) -> PathBuf {
        self.dir.path().join("certificates")
    }

    /// The certificate of `cert_arn`, as a PEM file.
    pub fn certificate(&self) -> PathBuf {
        let id = self.cert_arn.rsplit('/').next().unwrap();
        self.keys().join(format!("{id}.crt"))
    }

    /// The CA that issued it: what clients trust.
    pub fn certificate_authority(&self) -> PathBuf {
        let id = self.cert_arn.rsplit('/').next().unwrap();
        self.keys().join(format!("{id}.ca.crt"))
    }

    pub fn stack_file(&self) -> PathBuf {
        self.dir.path().join(format!("stacks/{}.toml", self.stack))
    }

    pub fn state_file(&self) -> PathBuf {
        self.dir.path().join(format!("state/{}.json", self.stack))
    }

    /// The id the state records for `address`.
    pub fn id_of(&self, address: &str) -> String {
        let state: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(self.state_file()).unwrap()).unwrap();
        state["resources"][address]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("{address} is not in the state"))
            .to_string()
    }

    fn aws_env(&self, cmd: &mut Command) {
        cmd.env("AWS_ENDPOINT_URL", &self.moto.endpoint)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("HOME", self.dir.path())
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_SESSION_TOKEN")
            .envs(self.env.iter().map(|(k, v)| (k, v)));
    }

    /// Runs the real binary in the project directory.
    pub fn infra(&self, args: &[&str]) -> Run {
        self.infra_in(self.dir.path(), args)
    }

    /// `infra ARGS`, which must succeed.
    pub fn ok(&self, args: &[&str]) -> Run {
        let run = self.infra(args);
        assert_eq!(run.code, 0, "infra {args:?} failed:\n{}", run.all());
        run
    }

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

/// What a run has done so far: AWS requests through the proxy since `before`, and SSH connects
/// and commands (the tool logs each at debug level, to `stderr`).
pub fn actions(proxy: &FaultProxy, before: usize, stderr: &Path) -> usize {
    let ssh = std::fs::read_to_string(stderr)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(" ssh node."))
        .count();
    proxy.requests().len() - before + ssh
}

/// `infra ARGS -v` through the proxy, its stderr in `stderr`.
pub fn spawn_via(p: &Project, proxy: &FaultProxy, args: &[&str], stderr: &Path) -> Child {
    p.command(env!("CARGO_BIN_EXE_infra"))
        .env("AWS_ENDPOINT_URL", &proxy.endpoint)
        .args(args)
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(stderr).unwrap())
        .spawn()
        .unwrap()
}

/// The testbed node `node.manager[0]` runs on.
pub fn manager_node(p: &Project, bed: &Testbed) -> usize {
    bed.node_of(&p.id_of("node.manager[0]"))
}

/// `docker node ls` as the first manager sees it: (role, status, availability) sorted.
pub fn members(p: &Project, bed: &Testbed) -> Vec<String> {
    let out = bed.sh(
        manager_node(p, bed),
        "docker node ls --format '{{if .ManagerStatus}}manager{{else}}worker{{end}} {{.Status}} {{.Availability}}'",
    );
    let mut lines: Vec<String> = out.lines().map(str::to_string).collect();
    lines.sort();
    lines
}

/// What `members` shows for a healthy Swarm of `managers` and `workers`.
pub fn healthy(managers: usize, workers: usize) -> Vec<String> {
    let mut v = vec!["manager Ready Active".to_string(); managers];
    v.extend(vec!["worker Ready Active".to_string(); workers]);
    v
}

/// After run `point` of a kill test: exactly the instances of `addresses` live (no orphan, no
/// duplicate), tracked by the state and the only targets registered, and the next plan clean.
pub fn assert_exactly(p: &Project, addresses: &[&str], point: usize) {
    let dump = p.dump();
    let ids = |v: &serde_json::Value| v.as_str().unwrap().to_string();
    let live: std::collections::BTreeSet<String> = live_instances(&dump)
        .iter()
        .map(|i| ids(&i["id"]))
        .collect();
    let expected: std::collections::BTreeSet<String> =
        addresses.iter().map(|a| p.id_of(a)).collect();
    assert_eq!(
        live, expected,
        "point {point}: no orphan or duplicate instance"
    );
    let registered: std::collections::BTreeSet<String> = dump["target_groups"][0]["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(ids)
        .collect();
    assert_eq!(registered, expected, "point {point}: no stale target");
    let plan = p.infra(&["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "point {point}: clean:\n{}", plan.all());
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

/// A file of the test world (tests/world/…).
pub fn world(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/world")
        .join(path)
}

/// Runs tests/world/nodes/testbed (needs root); returns what it printed.
pub fn testbed(args: &[&str]) -> String {
    let out = Command::new(world("nodes/testbed"))
        .args(args)
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    assert!(
        out.status.success(),
        "testbed {args:?}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// The image instances boot from: Docker baked in (the fast path), or installed by the
/// user-data at first boot (the faithful path).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Image {
    Docker,
    Base,
}

/// The ALB data plane (tests/world/alb/alb.py) of a testbed: HAProxy at 10.77.ID.2 playing the
/// load balancer the stack creates in moto (which it reads directly, as any client would), and
/// writing target health for the AWS proxy. Stopped on drop.
pub struct Alb {
    child: Child,
}

impl Alb {
    pub fn start(id: &str, dir: &Path, moto: &Moto, keys: &Path) -> Alb {
        let child = Command::new(venv().join("bin/python"))
            .arg(world("alb/alb.py"))
            .args(["--id", id])
            .arg("--dir")
            .arg(dir)
            .arg("--keys")
            .arg(keys)
            .arg("--health")
            .arg(&moto.target_health)
            .env("AWS_ENDPOINT_URL", &moto.direct)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.with_extension("log")).unwrap())
            .spawn()
            .expect("start the ALB data plane");
        Alb { child }
    }
}

impl Drop for Alb {
    fn drop(&mut self) {
        // SIGTERM: it stops HAProxy and removes its network namespace.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Each test has its own testbed (they run in parallel).
pub struct Testbed {
    pub id: &'static str,
    pub dir: PathBuf,
    alb: Option<Alb>,
    reaper: Option<Reaper>,
}

/// Powers a node off within seconds of its instance's termination (`testbed reap`), as EC2
/// stops a terminated instance: nothing may rely on a terminated node still answering. Looks at
/// moto directly every 5 s; stopped on drop.
struct Reaper {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Reaper {
    fn start(id: &'static str, dir: PathBuf, moto: &str) -> Reaper {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let (flag, moto) = (stop.clone(), moto.to_string());
        let handle = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                let out = Command::new(venv().join("bin/python"))
                    .arg(world("aws/aws.py"))
                    .arg("terminated")
                    .env("AWS_ENDPOINT_URL", &moto)
                    .env("AWS_REGION", "us-east-1")
                    .env("AWS_DEFAULT_REGION", "us-east-1")
                    .env("AWS_ACCESS_KEY_ID", "testing")
                    .env("AWS_SECRET_ACCESS_KEY", "testing")
                    .output();
                let ids: Vec<String> = out
                    .ok()
                    .and_then(|o| serde_json::from_slice(&o.stdout).ok())
                    .unwrap_or_default();
                if !ids.is_empty() {
                    let _ = Command::new(world("nodes/testbed"))
                        .args(["reap", id, dir.to_str().unwrap()])
                        .args(&ids)
                        .output();
                }
                for _ in 0..50 {
                    if flag.load(Ordering::Relaxed) {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        });
        Reaper {
            stop,
            handle: Some(handle),
        }
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Testbed {
    /// `nodes` powered-off nodes on the fast path's image.
    pub fn up(id: &'static str, dir: PathBuf, nodes: usize) -> Testbed {
        Testbed::up_with(id, dir, nodes, Image::Docker)
    }

    pub fn up_with(id: &'static str, dir: PathBuf, nodes: usize, image: Image) -> Testbed {
        let image = match image {
            Image::Docker => "docker",
            Image::Base => "base",
        };
        let (n, d) = (nodes.to_string(), dir.to_str().unwrap().to_string());
        testbed(&["up", id, &n, &d, "--image", image]);
        Testbed {
            id,
            dir,
            alb: None,
            reaper: None,
        }
    }

    /// Powers off the nodes of instances `p`'s stack terminates, as EC2 does.
    pub fn reap_terminated(&mut self, p: &Project) {
        self.reaper = Some(Reaper::start(self.id, self.dir.clone(), &p.moto.direct));
    }

    /// Starts the ALB data plane for the load balancer `p`'s stack creates.
    pub fn serve_load_balancer(&mut self, p: &Project) {
        let dir = self.dir.join("alb");
        self.alb = Some(Alb::start(self.id, &dir, &p.moto, &p.keys()));
    }

    /// The load balancer as a client reaches it over HTTPS: by the DNS name moto gave it, at
    /// the data plane's address, trusting the stack's certificate.
    pub fn load_balancer(&self, p: &Project) -> traffic::LoadBalancer {
        let dns = p.dump()["load_balancers"][0]["dns"]
            .as_str()
            .expect("the stack has a load balancer")
            .to_string();
        let addr = format!("10.77.{}.2", self.id).parse().unwrap();
        traffic::LoadBalancer::new(&dns, addr, &p.certificate_authority())
    }

    /// The testbed node an instance landed on, from the harness's map.
    pub fn node_of(&self, instance_id: &str) -> usize {
        let map = std::fs::read_to_string(self.dir.join("map")).unwrap();
        let line = map
            .lines()
            .find(|l| l.ends_with(instance_id))
            .unwrap_or_else(|| panic!("{instance_id} not in {map}"));
        line.split(' ').nth(1).unwrap().parse().unwrap()
    }

    /// `command` as root inside node `node`, the harness's own way in (not SSH, not the tool):
    /// how the tests read a node with its own `docker`.
    pub fn sh(&self, node: usize, command: &str) -> String {
        let (dir, i) = (self.dir.to_str().unwrap(), node.to_string());
        testbed(&["exec", dir, &i, "sh", "-c", command])
            .trim()
            .to_string()
    }

    /// The same, None while the node is powered off or the command fails.
    pub fn try_sh(&self, node: usize, command: &str) -> Option<String> {
        let out = Command::new(world("nodes/testbed"))
            .args(["exec", self.dir.to_str().unwrap(), &node.to_string()])
            .args(["sh", "-c", command])
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// `testbed ARGS…` for this testbed's directory, e.g. `["docker-stop", "2"]`.
    pub fn run(&self, command: &str, args: &[&str]) -> String {
        let dir = self.dir.to_str().unwrap();
        let mut all = vec![command, dir];
        all.extend_from_slice(args);
        testbed(&all)
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        drop(self.alb.take());
        drop(self.reaper.take());
        testbed(&["down", self.id, self.dir.to_str().unwrap()]);
    }
}

/// The sandbox's secret value in the tests.
pub const GREETING_V1: &str = "s3cr3t-greeting-ONE-7f1d";

/// The sandbox stack in a scratch directory, with its `.sandbox/` made the way
/// `scripts/sandbox up` makes it, and the demo image's `tags` in the testbed's registry.
pub fn sandbox(id: &'static str, nodes: usize, tags: &[&str]) -> (Project, Testbed) {
    sandbox_with(id, nodes, tags, Image::Docker)
}

pub fn sandbox_with(
    id: &'static str,
    nodes: usize,
    tags: &[&str],
    image: Image,
) -> (Project, Testbed) {
    let mut p = Project::new("sandbox", 2);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::copy(root.join("stacks/sandbox.toml"), p.stack_file()).unwrap();
    let mut bed = Testbed::up_with(id, p.dir.path().join(".sandbox/testbed"), nodes, image);
    bed.serve_load_balancer(&p);
    bed.reap_terminated(&p);
    let proxy = format!(
        "Host *\n  ProxyCommand {} {id} {} %h %p\n",
        world("nodes/connect").display(),
        bed.dir.display()
    );
    std::fs::write(p.dir.path().join(".sandbox/ssh_config"), proxy).unwrap();
    // v3 is the release that never gets healthy.
    for &tag in tags {
        let broken: &[&str] = if tag == "v3" { &["broken"] } else { &[] };
        let name = format!("infra-demo:{tag}");
        let mut args = vec![name.as_str(), tag];
        args.extend_from_slice(broken);
        bed.run("image", &args);
    }
    p.env = vec![
        ("INFRA_VAR_certificate_arn".into(), p.cert_arn.clone()),
        ("DEMO_GREETING".into(), GREETING_V1.into()),
    ];
    (p, bed)
}

/// What a finished process printed: its stdout, then its stderr.
pub fn printed(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Every node's published port 3000.
pub fn targets(id: &str, nodes: usize) -> Vec<SocketAddr> {
    (1..=nodes)
        .map(|i| format!("10.77.{id}.{}:3000", 10 + i).parse().unwrap())
        .collect()
}

/// What node `t` serves at `/`, once it starts with `prefix` (bounded wait: a task may be
/// between stop and start right after a deploy).
pub fn serves(t: SocketAddr, prefix: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        match traffic::get(t, "/") {
            Ok(body) if body.starts_with(prefix) => return body,
            other if std::time::Instant::now() > deadline => {
                panic!("{t}: {other:?}, wanted {prefix}")
            }
            _ => std::thread::sleep(std::time::Duration::from_millis(300)),
        }
    }
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}
