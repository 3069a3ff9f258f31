//! `infra scale-nodes` end to end on the sandbox stack: workers 2 → 4 → 1 and managers 1 → 3 → 1
//! while a request loop keeps going through the load balancer (the ALB data plane, over HTTPS);
//! a scale-in killed between drain and terminate; an unsafe manager change refused; a scale-in
//! killed at 30 points. Moto plays AWS, testbed nodes play the instances. Needs root.

mod support;

use std::time::{Duration, Instant};

use support::traffic::Traffic;
use support::{
    FaultProxy, Project, Testbed, actions, assert_exactly, healthy, kill_at_point, kill_point,
    live_instances, members, sandbox, spawn_via,
};

fn scale(p: &Project, args: &[&str]) {
    let mut all = vec!["scale-nodes"];
    all.extend(args);
    all.push("--auto-approve");
    p.ok(&all);
    let plan = p.infra(&["plan", "--detailed-exitcode"]);
    assert_eq!(
        plan.code,
        0,
        "clean after scale-nodes {args:?}:\n{}",
        plan.all()
    );
}

#[test]
fn scaling_out_and_in_loses_no_request_and_keeps_quorum() {
    let nodes = 8;
    let (p, bed) = sandbox("47", nodes, &["v1"]);
    p.ok(&["apply", "--auto-approve"]);
    assert_eq!(members(&p, &bed), healthy(1, 2));
    let traffic = Traffic::start(&bed.load_balancer(&p));
    std::thread::sleep(Duration::from_secs(2));

    scale(&p, &["4"]);
    assert_eq!(members(&p, &bed), healthy(1, 4));
    scale(&p, &["1"]);
    assert_eq!(
        members(&p, &bed),
        healthy(1, 1),
        "drained, removed, no Down node left"
    );
    assert_eq!(live_instances(&p.dump()).len(), 2);

    // An even manager count is refused before the file or anything else changes.
    let before = std::fs::read_to_string(p.stack_file()).unwrap();
    let refused = p.infra(&["scale-nodes", "--managers", "2", "--auto-approve"]);
    assert_eq!(refused.code, 1, "{}", refused.all());
    assert!(
        refused.stderr.contains("refusing 2 managers"),
        "{}",
        refused.stderr
    );
    assert_eq!(std::fs::read_to_string(p.stack_file()).unwrap(), before);

    scale(&p, &["--managers", "3"]);
    assert_eq!(members(&p, &bed), healthy(3, 1));
    scale(&p, &["--managers", "1"]);
    assert_eq!(members(&p, &bed), healthy(1, 1));

    let tally = traffic.stop();
    assert!(
        tally.failed.is_empty(),
        "failed requests: {:?}",
        tally.failed
    );
    assert!(tally.ok > 100, "{tally:?}");
    eprintln!(
        "request loop through the load balancer: {} ok, 0 failed in {:?}",
        tally.ok, tally.elapsed
    );

    // A scale-in killed after the drain began: the next apply finishes it.
    scale(&p, &["2"]);
    p.ok(&["scale-nodes", "1", "--no-apply"]);
    let mut child = p
        .command(env!("CARGO_BIN_EXE_infra"))
        .args(["apply", "--auto-approve"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !members(&p, &bed).iter().any(|n| n.ends_with("Drain")) {
        assert!(Instant::now() < deadline, "the drain never began");
        std::thread::sleep(Duration::from_millis(200));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let run = p.ok(&["apply", "--auto-approve"]);
    assert!(
        run.stdout.contains("swarm.node.worker[1]"),
        "{}",
        run.stdout
    );
    assert_eq!(
        members(&p, &bed),
        healthy(1, 1),
        "no Down or drained node left"
    );
    assert_eq!(live_instances(&p.dump()).len(), 2, "no orphan instance");
    let plan = p.infra(&["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "{}", plan.all());
}

/// The scale-in to 1 worker finished: one manager and one worker in the Swarm, none drained or
/// down; exactly their instances live, tracked by the state and registered as targets.
fn assert_scaled_in(p: &Project, bed: &Testbed, point: usize) {
    assert_eq!(members(p, bed), healthy(1, 1), "point {point}");
    assert_exactly(p, &["node.manager[0]", "node.worker[0]"], point);
}

/// A scale-in (4 workers → 1) killed with SIGKILL at 30 points spread over its changes, counted in
/// AWS requests and SSH commands; each time the next apply finishes it, then scale-nodes adds the
/// workers back (on the wiped nodes of the terminated instances). The first 15 points here, the
/// others in the next test, on a testbed of their own, at the same time.
#[test]
fn scale_in_killed_at_the_first_15_of_30_points_is_finished_by_the_next_apply() {
    kill_scale_in_at("50", 0..15);
}

#[test]
fn scale_in_killed_at_the_last_15_of_30_points_is_finished_by_the_next_apply() {
    kill_scale_in_at("58", 15..30);
}

/// Kill points `points` of the 30 spread over a scale-in, on testbed `id`.
fn kill_scale_in_at(id: &'static str, points: std::ops::Range<usize>) {
    let (p, bed) = sandbox(id, 6, &["v1"]);
    // No request loop here (the test above has one): a short deregistration delay and a demo
    // that stops at once on SIGTERM keep 30 scale-ins affordable; the health checks keep their
    // real timings.
    let stack = std::fs::read_to_string(p.stack_file()).unwrap();
    std::fs::write(
        p.stack_file(),
        stack
            .replace("deregistration_delay = 10", "deregistration_delay = 2")
            .replace("DRAIN_SECONDS = \"12\"", "DRAIN_SECONDS = \"1\""),
    )
    .unwrap();
    p.ok(&["apply", "--auto-approve"]);
    scale(&p, &["4"]);
    let proxy = FaultProxy::start(
        &p.moto.endpoint,
        0.0,
        0.0,
        1,
        p.dir.path().join("proxy.log"),
    );
    let log = p.dir.path().join("run.log");
    let apply = ["apply", "--auto-approve"];

    // An undisturbed scale-in: the actions of its plan, then of the whole run.
    p.ok(&["scale-nodes", "1", "--no-apply"]);
    let before = proxy.requests().len();
    let planned = spawn_via(&p, &proxy, &["plan"], &log).wait().unwrap();
    assert_eq!(planned.code(), Some(0));
    let reads = actions(&proxy, before, &log);
    let before = proxy.requests().len();
    assert!(
        spawn_via(&p, &proxy, &apply, &log)
            .wait()
            .unwrap()
            .success()
    );
    let total = actions(&proxy, before, &log);
    assert_scaled_in(&p, &bed, 0);
    assert!(
        total - reads >= 30,
        "the changes take {} actions after {reads} reads",
        total - reads
    );
    eprintln!("scale-in: {reads} reads, then {} actions", total - reads);

    let mut killed = 0;
    let tried = points.len();
    for point in points {
        scale(&p, &["4"]);
        p.ok(&["scale-nodes", "1", "--no-apply"]);
        let kill_at = kill_point(point, 30, reads + 1, total - 1);
        let before = proxy.requests().len();
        let child = spawn_via(&p, &proxy, &apply, &log);
        let progress = || actions(&proxy, before, &log);
        let timeout = Some(Duration::from_secs(120));
        if kill_at_point(child, point, kill_at, progress, timeout) {
            killed += 1;
        }
        let again = p.infra(&apply);
        assert_eq!(
            again.code,
            0,
            "point {point} (killed after {kill_at} actions): the next apply converges:\n{}",
            again.all()
        );
        assert_scaled_in(&p, &bed, point);
    }
    assert!(
        killed + 1 >= tried,
        "runs really killed mid-way: {killed} of {tried}"
    );
    eprintln!("scale-in killed at {killed} points, each finished by the next apply");
}
