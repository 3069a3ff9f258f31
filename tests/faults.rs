//! Faults and crashes (issue 7's first part): AWS throttling and 5xx through a fault proxy, and
//! `infra apply` killed with SIGKILL at many points; the next run must converge with no
//! duplicate and no object the state does not know.

mod support;

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{FaultProxy, Project, kill_at_point, kill_point, live_instances, tagged_left};

/// Every object tagged with the stack is in the state, once; nothing is duplicated.
fn assert_converged(p: &Project, stack: &str, workers: usize) {
    let plan = p.infra(&["plan", "--detailed-exitcode", "--stack", stack]);
    assert_eq!(
        plan.code,
        0,
        "{stack}: the next plan is clean:\n{}",
        plan.all()
    );
    let d = p.aws(&["dump", stack]);
    let state: Value = serde_json::from_str(
        &std::fs::read_to_string(p.dir.path().join(format!("state/{stack}.json"))).unwrap(),
    )
    .expect("the state is valid JSON");
    let tracked: BTreeSet<&str> = state["resources"]
        .as_object()
        .unwrap()
        .values()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    for (kind, n) in [
        ("vpcs", 1),
        ("subnets", 2),
        ("igws", 1),
        ("route_tables", 1),
        ("security_groups", 2),
        ("load_balancers", 1),
        ("target_groups", 1),
    ] {
        let items = d[kind].as_array().unwrap();
        assert_eq!(items.len(), n, "{stack}: {kind}: {items:?}");
        for i in items {
            let id = i["id"].as_str().or(i["arn"].as_str()).unwrap();
            assert!(
                tracked.contains(id),
                "{stack}: {kind} {id} is not in the state"
            );
        }
    }
    let instances = live_instances(&d);
    assert_eq!(
        instances.len(),
        1 + workers,
        "{stack}: no duplicate instance"
    );
    for i in instances {
        assert!(
            tracked.contains(i["id"].as_str().unwrap()),
            "{stack}: instance {} is not in the state",
            i["id"]
        );
    }
}

#[test]
fn apply_converges_through_throttling_and_server_errors() {
    let p = Project::new("faulty", 3);
    let proxy = FaultProxy::start(
        &p.moto.endpoint,
        0.20,
        0.05,
        7,
        p.dir.path().join("proxy.log"),
    );
    let out = p
        .command(env!("CARGO_BIN_EXE_infra"))
        .env("AWS_ENDPOINT_URL", &proxy.endpoint)
        .args(["apply", "--auto-approve", "-v"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{}{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    let requests = proxy.requests();
    let faults = requests.iter().filter(|r| !r.ends_with(" ok")).count();
    eprintln!("faults injected: {faults} of {} requests", requests.len());
    assert!(
        faults >= 5,
        "faults were injected: {faults} of {}",
        requests.len()
    );
    assert!(
        stderr.contains("retry 1 of call"),
        "retries are named at debug level"
    );
    assert_converged(&p, "faulty", 3);
}

/// Half the launches and their per-instance tags throttled: the batched launch path retries
/// without launching anything twice.
#[test]
fn launches_converge_when_run_instances_and_tagging_are_throttled() {
    let p = Project::new("launchy", 4);
    let ops = ["RunInstances", "CreateTags", "RegisterTargets"];
    let proxy = FaultProxy::start_for(
        &p.moto.endpoint,
        0.5,
        0.0,
        5,
        p.dir.path().join("proxy.log"),
        &ops,
    );
    let out = p
        .command(env!("CARGO_BIN_EXE_infra"))
        .env("AWS_ENDPOINT_URL", &proxy.endpoint)
        .args(["apply", "--auto-approve"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let requests = proxy.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("ec2:RunInstances throttled")),
        "{requests:?}"
    );
    assert!(
        requests
            .iter()
            .filter(|r| !r.ends_with(" ok"))
            .all(|r| ops.iter().any(|o| r.contains(o)))
    );
    assert_converged(&p, "launchy", 4);
}

/// 30 kill points spread over a whole apply, chosen by counting the requests it makes.
#[test]
fn apply_killed_at_any_of_30_points_is_finished_by_the_next() {
    let mut p = Project::new("k", 2);
    let proxy = FaultProxy::start(
        &p.moto.endpoint,
        0.0,
        0.0,
        1,
        p.dir.path().join("proxy.log"),
    );
    // A first, undisturbed apply of a stack of the same shape: how many requests it takes.
    p.stack = "kcount".into();
    p.write_stack(2);
    let start = proxy.requests().len();
    let out = p
        .command(env!("CARGO_BIN_EXE_infra"))
        .env("AWS_ENDPOINT_URL", &proxy.endpoint)
        .args(["apply", "--auto-approve", "--stack", "kcount"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let total = proxy.requests().len() - start;
    assert!(total >= 40, "a full apply makes {total} requests");

    let mut killed = 0;
    for point in 0..30 {
        let stack = format!("k{point}");
        p.stack = stack.clone();
        p.write_stack(2);
        let kill_at = kill_point(point, 30, 1, total - 1);
        let before = proxy.requests().len();
        let child = p
            .command(env!("CARGO_BIN_EXE_infra"))
            .env("AWS_ENDPOINT_URL", &proxy.endpoint)
            .args(["apply", "--auto-approve", "--stack", &stack])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let progress = || proxy.requests().len() - before;
        let timeout = Some(Duration::from_secs(60));
        if kill_at_point(child, point, kill_at, progress, timeout) {
            killed += 1;
        }
        let again = p.infra(&["apply", "--auto-approve", "--stack", &stack]);
        assert_eq!(
            again.code,
            0,
            "{stack} (killed after {kill_at} requests): the next apply converges:\n{}",
            again.all()
        );
        assert_converged(&p, &stack, 2);
    }
    assert!(
        killed >= 25,
        "most runs were really killed mid-way ({killed} of 30)"
    );
}

/// `infra destroy` killed at 30 points spread over it: the next destroy leaves nothing tagged.
#[test]
fn destroy_killed_at_any_of_30_points_is_finished_by_the_next() {
    let mut p = Project::new("d", 1);
    let proxy = FaultProxy::start(
        &p.moto.endpoint,
        0.0,
        0.0,
        1,
        p.dir.path().join("proxy.log"),
    );
    let via_proxy = |p: &Project, args: &[&str]| {
        let mut cmd = p.command(env!("CARGO_BIN_EXE_infra"));
        cmd.env("AWS_ENDPOINT_URL", &proxy.endpoint)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd
    };
    p.stack = "dcount".into();
    p.write_stack(1);
    p.ok(&["apply", "--auto-approve", "--stack", "dcount"]);
    let start = proxy.requests().len();
    assert!(
        via_proxy(&p, &["destroy", "--auto-approve", "--stack", "dcount"])
            .status()
            .unwrap()
            .success()
    );
    let total = proxy.requests().len() - start;

    for point in 0..30 {
        let stack = format!("d{point}");
        p.stack = stack.clone();
        p.write_stack(1);
        p.ok(&["apply", "--auto-approve", "--stack", &stack]);
        let kill_at = kill_point(point, 30, 1, total - 1);
        let before = proxy.requests().len();
        let child = via_proxy(&p, &["destroy", "--auto-approve", "--stack", &stack])
            .spawn()
            .unwrap();
        let progress = || proxy.requests().len() - before;
        // No time limit here, and whether it was killed is not counted.
        kill_at_point(child, point, kill_at, progress, None);
        let again = p.infra(&["destroy", "--auto-approve", "--stack", &stack]);
        assert_eq!(
            again.code,
            0,
            "{stack} (killed after {kill_at} requests):\n{}",
            again.all()
        );
        let d = p.aws(&["dump", &stack]);
        assert_eq!(
            tagged_left(&d),
            Vec::<String>::new(),
            "{stack}: objects left"
        );
        let last = p.ok(&["destroy", "--auto-approve", "--stack", &stack]);
        assert!(
            last.stdout.contains("No changes."),
            "{stack}: {}",
            last.stdout
        );
    }
}

/// Ctrl-C: the calls in flight finish and are recorded, nothing new starts, the lock is released,
/// and the next apply finishes the job.
#[test]
fn an_interrupted_apply_stops_cleanly_and_the_next_one_finishes() {
    let p = Project::new("sigint", 2);
    let proxy = FaultProxy::start_slow(
        &p.moto.endpoint,
        0.0,
        0.0,
        1,
        p.dir.path().join("proxy.log"),
        150,
    );
    let child = p
        .command(env!("CARGO_BIN_EXE_infra"))
        .env("AWS_ENDPOINT_URL", &proxy.endpoint)
        .args(["apply", "--auto-approve"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once the first objects exist.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !proxy
        .requests()
        .iter()
        .any(|r| r.starts_with("ec2:CreateVpc"))
    {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("Interrupt received"), "{stdout}");
    assert!(
        stderr.contains("interrupted:") && stderr.contains("steps finished and are recorded"),
        "{stderr}"
    );
    assert!(
        !p.dir.path().join("state/sigint.lock").exists(),
        "the lock is released"
    );
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(p.state_file()).unwrap()).unwrap();
    assert!(
        state["resources"]["vpc"]["id"].is_string(),
        "finished steps are recorded"
    );
    assert!(
        state.get("pending").is_none(),
        "no call was left in flight: {}",
        state["pending"]
    );
    p.ok(&["apply", "--auto-approve"]);
    assert_converged(&p, "sigint", 2);
}
