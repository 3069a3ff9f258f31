//! Testbed nodes (tests/world/nodes): network namespaces that boot like EC2 instances, one
//! testbed per test; the harness's own way into a node (`testbed exec`, not SSH), the Swarm as
//! the first manager's `docker` sees it, and what the nodes serve.

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;

use super::alb::Alb;
use super::ecr::EcrWorld;
use super::project::Project;
use super::traffic;
use super::world::{WorldService, world};

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

/// Each test has its own testbed (they run in parallel).
pub struct Testbed {
    pub id: &'static str,
    pub dir: PathBuf,
    alb: Option<Alb>,
    dns: Option<WorldService>,
    ecr: Option<EcrWorld>,
    reaper: Option<WorldService>,
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
            dns: None,
            ecr: None,
            reaper: None,
        }
    }

    /// Powers off the nodes of instances `p`'s stack terminates within seconds, as EC2 stops a
    /// terminated instance: nothing may rely on a terminated node still answering. The world's
    /// reaper (tests/world/nodes/reaper.py) looks at moto directly every 5 s.
    pub fn reap_terminated(&mut self, p: &Project) {
        let args = [OsStr::new(self.id), self.dir.as_os_str()];
        let log = self.dir.join("reaper.log");
        self.reaper = Some(WorldService::start(&p.moto, "nodes/reaper.py", args, &log));
    }

    /// Starts the ALB data plane for the load balancer `p`'s stack creates.
    pub fn serve_load_balancer(&mut self, p: &Project) {
        let dir = self.dir.join("alb");
        self.alb = Some(Alb::start(self.id, &dir, &p.moto, &p.keys()));
    }

    /// Starts the testbed's DNS (tests/world/nodes/resolver.py: what the internet's DNS and the
    /// Amazon-provided resolver answer for the names moto's Route 53 holds, at 10.77.ID.3 and
    /// 169.254.169.253 for the nodes) for `p`'s moto.
    pub fn serve_dns(&mut self, p: &Project) {
        let netns = format!("/var/run/netns/tb{}-md", self.id);
        let args = ["--netns", &netns, "--id", self.id];
        let log = self.dir.join("dns.log");
        self.dns = Some(WorldService::start(
            &p.moto,
            "nodes/resolver.py",
            args,
            &log,
        ));
    }

    /// Starts ECR's registry front and the instance metadata service for `p`'s moto.
    pub fn serve_registry(&mut self, p: &Project) {
        self.ecr = Some(EcrWorld::start(self.id, &self.dir, &p.moto));
    }

    /// Pushes the demo web image as `repository:tag` (release `version`) to the world's ECR, as
    /// a CI job pushes to ECR: into the registry, and recorded in moto's repository.
    pub fn push_to_ecr(&self, p: &Project, repository: &str, tag: &str, version: &str) {
        let name = format!("{repository}:{tag}");
        let manifest = self.run("image", &[&name, version]);
        p.aws(&["put-image", repository, tag, manifest.trim()]);
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
        drop(self.dns.take());
        drop(self.ecr.take());
        drop(self.reaper.take());
        testbed(&["down", self.id, self.dir.to_str().unwrap()]);
    }
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
