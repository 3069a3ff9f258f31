//! Node lifecycle on the sandbox stack, end to end: AMIs kept per node and rolled onto on
//! purpose (`infra roll-nodes`, `--replace`), rolling replacement measured through the load
//! balancer (the ALB data plane, over HTTPS), a roll killed with SIGKILL at 12 points, a lost
//! manager replaced, a lost quorum named and recovered (`infra recover-swarm`), and a destroy
//! whose Swarm no longer answers. Checked with boto3 and the nodes' own `docker`. Needs root.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use support::traffic::Traffic;
use support::{
    FaultProxy, Project, Testbed, assert_exactly, healthy, kill_at_point, kill_point,
    live_instances, manager_node, members, sandbox, spawn_via, tagged_left, world,
};

/// The parameter the sandbox's nodes take their AMI from: one of the test's own (moto refuses
/// writes under `/aws/`), first holding what Amazon Linux's public parameter holds.
const PARAMETER: &str = "/infra-test/node-ami";
const PUBLIC: &str = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64";
/// Another Amazon Linux image moto knows (its login user is ec2-user too).
const NEWER: &str = "ami-04681a1dbd79675a5";

/// Points the stack's nodes at `PARAMETER`, which holds what the public parameter holds now;
/// returns that AMI.
fn own_ami_parameter(p: &Project) -> String {
    let current = p.aws(&["ssm-get", PUBLIC])["value"]
        .as_str()
        .unwrap()
        .to_string();
    p.aws(&["ssm-put", PARAMETER, &current]);
    let stack = std::fs::read_to_string(p.stack_file()).unwrap();
    std::fs::write(
        p.stack_file(),
        stack.replace(&format!("ssm:{PUBLIC}"), &format!("ssm:{PARAMETER}")),
    )
    .unwrap();
    current
}

/// The sandbox with `managers` and `workers` (and `spare` testbed nodes), its nodes on
/// `PARAMETER`, applied. Returns the AMI they run.
fn rolled_sandbox(
    id: &'static str,
    spare: usize,
    managers: usize,
    workers: usize,
) -> (Project, Testbed, String) {
    let (p, bed) = sandbox(id, managers + workers + spare, &["v1"]);
    let current = own_ami_parameter(&p);
    let (m, w) = (managers.to_string(), workers.to_string());
    p.ok(&["scale-nodes", &w, "--managers", &m, "--no-apply"]);
    p.ok(&["apply", "--auto-approve"]);
    (p, bed, current)
}

/// Makes the deregistration delay and the demo's drain short, for tests that roll many times;
/// health checks keep their real timings.
fn quick_drain(p: &Project) {
    let stack = std::fs::read_to_string(p.stack_file()).unwrap();
    std::fs::write(
        p.stack_file(),
        stack
            .replace("deregistration_delay = 10", "deregistration_delay = 2")
            .replace("DRAIN_SECONDS = \"12\"", "DRAIN_SECONDS = \"1\""),
    )
    .unwrap();
}

/// What must survive a roll: the Swarm's id, its services and its secrets, as a manager lists them.
fn swarm_identity(p: &Project, bed: &Testbed) -> (String, String, String) {
    let m = manager_node(p, bed);
    (
        bed.sh(m, "docker info --format '{{.Swarm.Cluster.ID}}'"),
        bed.sh(m, "docker service ls --format '{{.Name}}' | sort"),
        bed.sh(m, "docker secret ls --format '{{.Name}}' | sort"),
    )
}

/// The AMIs the stack's live instances run, by boto3.
fn images(p: &Project) -> BTreeSet<String> {
    let dump = p.dump();
    live_instances(&dump)
        .iter()
        .map(|i| i["image"].as_str().unwrap().to_string())
        .collect()
}

/// Watches, from the harness's side, whether the Swarm has a leader: every second, some node's
/// own `docker node ls` must answer (it fails on every manager while there is none).
struct LeaderWatch {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<Duration>,
}

impl LeaderWatch {
    fn start(bed: &Testbed, nodes: usize) -> LeaderWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let (dir, flag) = (bed.dir.clone(), stop.clone());
        let handle = std::thread::spawn(move || {
            let mut longest = Duration::ZERO;
            let mut since = Instant::now();
            while !flag.load(Ordering::Relaxed) {
                if (1..=nodes).any(|n| answers(&dir, n)) {
                    since = Instant::now();
                } else {
                    longest = longest.max(since.elapsed());
                }
                std::thread::sleep(Duration::from_secs(1));
            }
            longest
        });
        LeaderWatch { stop, handle }
    }

    /// The longest time no manager had a leader.
    fn stop(self) -> Duration {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap()
    }
}

fn answers(dir: &Path, node: usize) -> bool {
    Command::new(world("nodes/testbed"))
        .args(["exec", dir.to_str().unwrap(), &node.to_string()])
        .args(["sh", "-c", "docker node ls -q >/dev/null 2>&1"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// 3 managers + 2 workers serve `web` through the load balancer. A newer AMI is published:
/// the plan replaces nothing and says so; `infra roll-nodes` replaces all 5 nodes one at a time,
/// the new one first, with 0 failed requests, the Swarm keeping its id, services, secrets and a
/// leader. Then `--replace node.worker[0]` replaces one node, again with 0 failed requests.
#[test]
fn a_new_ami_rolls_through_five_nodes_without_a_failed_request() {
    let (p, bed, current) = rolled_sandbox("61", 1, 3, 2);
    assert_eq!(members(&p, &bed), healthy(3, 2));
    let before = swarm_identity(&p, &bed);
    assert!(
        before.1.contains("sandbox_web") && !before.2.is_empty(),
        "{before:?}"
    );

    p.aws(&["ssm-put", PARAMETER, NEWER]);
    let plan = p.infra(&["plan", "--detailed-exitcode"]);
    assert_eq!(
        plan.code,
        0,
        "a moved parameter replaces nothing:\n{}",
        plan.all()
    );
    assert!(
        plan.stdout.contains(&format!(
            "a newer AMI is available: {NEWER} ({PARAMETER}, published "
        )) && plan.stdout.contains(&format!(
            "5 node(s) keep the AMI they were created with: node.manager[0] ({current})"
        )),
        "{}",
        plan.stdout
    );

    let traffic = Traffic::start(&bed.load_balancer(&p));
    let leader = LeaderWatch::start(&bed, 6);
    std::thread::sleep(Duration::from_secs(2));
    let started = Instant::now();
    let roll = p.ok(&["roll-nodes", "--auto-approve"]);
    let took = started.elapsed();
    let without_leader = leader.stop();
    let tally = traffic.stop();
    assert!(
        tally.failed.is_empty(),
        "failed requests: {:?}",
        tally.failed
    );
    assert!(tally.ok > 100, "{tally:?}");
    for i in 1..=5 {
        assert!(
            roll.stdout.contains(&format!("(rolling: {i} of 5)")),
            "{}",
            roll.stdout
        );
    }
    assert!(
        without_leader < Duration::from_secs(10),
        "the Swarm had no leader for {without_leader:?}"
    );
    eprintln!(
        "roll of 5 nodes: {took:?}; request loop: {} ok, 0 failed; longest time without a leader: {without_leader:?}",
        tally.ok
    );

    assert_eq!(images(&p), BTreeSet::from([NEWER.to_string()]));
    assert_eq!(live_instances(&p.dump()).len(), 5, "no old instance left");
    assert_eq!(
        members(&p, &bed),
        healthy(3, 2),
        "no Down or drained member left"
    );
    assert_eq!(
        swarm_identity(&p, &bed),
        before,
        "same Swarm, services and secrets"
    );
    let plan = p.infra(&["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "{}", plan.all());
    assert!(!plan.stdout.contains("newer AMI"), "{}", plan.stdout);

    // One node, on purpose.
    let old = p.id_of("node.worker[0]");
    let traffic = Traffic::start(&bed.load_balancer(&p));
    std::thread::sleep(Duration::from_secs(2));
    let run = p.ok(&["apply", "--replace", "node.worker[0]", "--auto-approve"]);
    let tally = traffic.stop();
    assert!(
        tally.failed.is_empty(),
        "failed requests: {:?}",
        tally.failed
    );
    assert!(
        run.stdout
            .contains("# node.worker[0] will be replaced, the new one first (rolling: 1 of 1)"),
        "{}",
        run.stdout
    );
    assert_ne!(p.id_of("node.worker[0]"), old);
    assert_eq!(members(&p, &bed), healthy(3, 2));
    assert_eq!(p.infra(&["plan", "--detailed-exitcode"]).code, 0);
    eprintln!("--replace node.worker[0]: {} ok, 0 failed", tally.ok);
}

/// What a run has done so far, its polls left out (target health, instance states, SSH
/// connections while a node boots: their number depends on timing): AWS requests through the
/// proxy since `before`, and SSH commands (logged at debug level to `stderr`).
fn changes_made(proxy: &FaultProxy, before: usize, stderr: &Path) -> usize {
    let polls = ["DescribeTargetHealth", "DescribeInstances"];
    let requests = proxy.requests()[before..]
        .iter()
        .filter(|r| !polls.iter().any(|p| r.contains(p)))
        .count();
    let ssh = std::fs::read_to_string(stderr)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(" ssh node.") && !l.ends_with(": connect"))
        .count();
    requests + ssh
}

/// The roll, without a failed step: the sandbox's 1 manager + 1 worker (the manager rolls
/// through two managers: the new one joins before the old one is demoted and removed).
fn assert_rolled(p: &Project, bed: &Testbed, ami: &str, point: usize) {
    assert_eq!(
        members(p, bed),
        healthy(1, 1),
        "point {point}: no Down or drained member"
    );
    assert_eq!(
        images(p),
        BTreeSet::from([ami.to_string()]),
        "point {point}"
    );
    assert_exactly(p, &["node.manager[0]", "node.worker[0]"], point);
}

/// A roll of the sandbox's 2 nodes onto a new AMI killed with SIGKILL at points spread over it
/// (counted in AWS requests and SSH commands); each time `infra roll-nodes` run again finishes
/// it: no orphan instance, no Down member, one leader. The AMI then flips back for the next
/// point. Points 0–5 here, 6–11 in the next test, on a testbed of its own.
#[test]
fn a_roll_killed_at_the_first_6_of_12_points_is_finished_by_the_next_run() {
    kill_roll_at("62", 0..6);
}

#[test]
fn a_roll_killed_at_the_last_6_of_12_points_is_finished_by_the_next_run() {
    kill_roll_at("64", 6..12);
}

fn kill_roll_at(id: &'static str, points: std::ops::Range<usize>) {
    let (p, bed) = sandbox(id, 4, &["v1"]);
    quick_drain(&p);
    let first = own_ami_parameter(&p);
    p.ok(&["scale-nodes", "1", "--no-apply"]);
    p.ok(&["apply", "--auto-approve"]);
    let amis = [first.as_str(), NEWER];
    let proxy = FaultProxy::start(
        &p.moto.endpoint,
        0.0,
        0.0,
        1,
        p.dir.path().join("proxy.log"),
    );
    let log = p.dir.path().join("run.log");
    let roll = ["roll-nodes", "--auto-approve"];

    // An undisturbed roll: the actions of its plan, then of the whole run.
    p.aws(&["ssm-put", PARAMETER, NEWER]);
    let before = proxy.requests().len();
    assert_eq!(
        spawn_via(&p, &proxy, &["plan"], &log)
            .wait()
            .unwrap()
            .code(),
        Some(0)
    );
    let reads = changes_made(&proxy, before, &log);
    let before = proxy.requests().len();
    assert!(spawn_via(&p, &proxy, &roll, &log).wait().unwrap().success());
    let total = changes_made(&proxy, before, &log);
    assert_rolled(&p, &bed, NEWER, 0);
    eprintln!(
        "roll of 2 nodes: {reads} reads, then {} actions",
        total - reads
    );

    let (mut killed, tried) = (0, points.len());
    for point in points {
        let ami = amis[point % 2];
        p.aws(&["ssm-put", PARAMETER, ami]);
        // Spread from the first change to a few before the last (a run may take one or two
        // actions fewer than the one measured).
        let kill_at = kill_point(point, 12, reads + 1, total - 3);
        let before = proxy.requests().len();
        let child = spawn_via(&p, &proxy, &roll, &log);
        let progress = || changes_made(&proxy, before, &log);
        let timeout = Some(Duration::from_secs(300));
        if kill_at_point(child, point, kill_at, progress, timeout) {
            killed += 1;
        }
        let dump = p.dump();
        assert!(
            live_instances(&dump).len() <= 3,
            "point {point}: at most one node more than the stack has while it rolls"
        );
        let again = p.infra(&roll);
        assert_eq!(
            again.code,
            0,
            "point {point} (killed after {kill_at} actions): the next run finishes the roll:\n{}",
            again.all()
        );
        assert_rolled(&p, &bed, ami, point);
    }
    assert!(
        killed + 1 >= tried,
        "runs really killed mid-way: {killed} of {tried}"
    );
    eprintln!("roll killed at {killed} points, each finished by the next run");
}

/// Managers lost: one of three terminated for good is replaced by one apply; then two of three
/// with Docker stopped: plan, apply and status name the lost quorum; with those two lost for
/// good, `infra recover-swarm` rebuilds the Swarm from the one left, with its services, and
/// brings it back to three managers. Last, a destroy whose nodes no longer answer SSH stops
/// naming `--skip-swarm`, and with it removes every tagged object.
#[test]
fn lost_managers_are_replaced_and_a_lost_quorum_is_recovered() {
    let (p, bed) = sandbox("63", 7, &["v1"]);
    p.ok(&["scale-nodes", "1", "--managers", "3", "--no-apply"]);
    p.ok(&["apply", "--auto-approve"]);
    assert_eq!(members(&p, &bed), healthy(3, 1));
    let lose = |address: &str| {
        let node = bed.node_of(&p.id_of(address));
        p.aws(&["terminate", "sandbox", address]);
        support::testbed(&["stop", bed.id, bed.dir.to_str().unwrap(), &node.to_string()]);
    };

    // One manager lost for good: replaced in one apply.
    lose("node.manager[2]");
    let down = Instant::now() + Duration::from_secs(60);
    while !members(&p, &bed).iter().any(|m| m.contains("Down")) {
        assert!(Instant::now() < down, "the managers never saw it down");
        std::thread::sleep(Duration::from_secs(1));
    }
    let run = p.infra(&["apply", "--auto-approve"]);
    assert_eq!(
        run.code,
        0,
        "one apply replaces a lost manager:\n{}",
        run.all()
    );
    assert_eq!(members(&p, &bed), healthy(3, 1));
    let reachability = bed.sh(
        manager_node(&p, &bed),
        "docker node ls --filter role=manager --format '{{.ManagerStatus}}' | sort",
    );
    assert_eq!(
        reachability.lines().filter(|l| *l == "Reachable").count(),
        2,
        "{reachability}"
    );

    // Two of three managers' Docker stopped: the quorum loss is named once Docker notices.
    let stopped: Vec<usize> = ["node.manager[1]", "node.manager[2]"]
        .iter()
        .map(|a| bed.node_of(&p.id_of(a)))
        .collect();
    let services = bed.sh(
        manager_node(&p, &bed),
        "docker service ls --format '{{.Name}}'",
    );
    let stop_time = Instant::now();
    for n in &stopped {
        bed.run("docker-stop", &[&n.to_string()]);
    }
    // Plans run one after another meanwhile; Docker's own view is polled beside them: the
    // manager left fails `docker node ls` once Raft noticed there is no leader.
    let m0 = manager_node(&p, &bed);
    let (mut docker_noticed, mut named) = (None, None);
    while docker_noticed.is_none() || named.is_none() {
        assert!(
            stop_time.elapsed() < Duration::from_secs(180),
            "never noticed or named"
        );
        let out = bed
            .try_sh(m0, "docker node ls 2>&1 >/dev/null; true")
            .unwrap_or_default();
        if docker_noticed.is_none() && out.contains("does not have a leader") {
            docker_noticed = Some(stop_time.elapsed());
        }
        if named.is_none() {
            let plan = p.infra(&["plan", "--detailed-exitcode"]);
            if plan.code == 1 && plan.stderr.contains("lost its quorum") {
                named = Some((stop_time.elapsed(), plan));
            } else {
                assert_eq!(
                    docker_noticed,
                    None,
                    "Docker noticed, the plan did not:\n{}",
                    plan.all()
                );
            }
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    let (named_after, named) = named.unwrap();
    eprintln!(
        "quorum loss after the second Docker stopped: named by plan after {named_after:?}; Docker itself said there is no leader after {:?}",
        docker_noticed.unwrap()
    );
    assert!(
        named
            .stderr
            .contains("lost its quorum: 1 of 3 managers online")
            && named.stderr.contains("node.manager[1] (Docker down)")
            && named.stderr.contains("infra recover-swarm"),
        "{}",
        named.stderr
    );
    let apply = p.infra(&["apply", "--auto-approve"]);
    assert!(
        apply.code == 1 && apply.stderr.contains("lost its quorum"),
        "{}",
        apply.all()
    );
    let status = p.infra(&["status"]);
    assert!(status.all().contains("lost its quorum"), "{}", status.all());

    // They are lost for good: recovered from the one left.
    lose("node.manager[1]");
    lose("node.manager[2]");
    let recovered = p.infra(&["recover-swarm", "--auto-approve"]);
    assert_eq!(recovered.code, 0, "{}", recovered.all());
    assert!(
        recovered
            .stdout
            .contains("node.manager[0]: the Swarm runs again"),
        "{}",
        recovered.stdout
    );
    assert_eq!(
        members(&p, &bed),
        healthy(3, 1),
        "three managers again, no Down member"
    );
    assert_eq!(
        bed.sh(
            manager_node(&p, &bed),
            "docker service ls --format '{{.Name}}'"
        ),
        services,
        "the services stayed"
    );
    assert_eq!(p.infra(&["plan", "--detailed-exitcode"]).code, 0);

    // No node answers SSH any more: destroy says what to do, then does it without the Swarm.
    let nodes: Vec<usize> = [
        "node.manager[0]",
        "node.manager[1]",
        "node.manager[2]",
        "node.worker[0]",
    ]
    .iter()
    .map(|a| bed.node_of(&p.id_of(a)))
    .collect();
    for n in &nodes {
        bed.run("sshd-stop", &[&n.to_string()]);
    }
    let refused = p.infra(&["destroy", "--auto-approve"]);
    assert_eq!(refused.code, 1, "{}", refused.all());
    assert!(
        refused.stderr.contains("infra destroy --skip-swarm"),
        "{}",
        refused.stderr
    );
    let destroyed = p.infra(&["destroy", "--skip-swarm", "--auto-approve"]);
    assert_eq!(destroyed.code, 0, "{}", destroyed.all());
    assert_eq!(tagged_left(&p.dump()), Vec::<String>::new());
}
