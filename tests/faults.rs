//! Faults and crashes (issue 7's first part): AWS throttling and 5xx through a fault proxy, and
//! `infra apply` killed with SIGKILL at many points; the next run must converge with no
//! duplicate and no object the state does not know.

mod support;

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{FaultProxy, Project, live_instances};

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
    assert!(
        faults >= 10,
        "faults were injected: {faults} of {}",
        requests.len()
    );
    assert!(
        stderr.contains("retry 1 of call"),
        "retries are named at debug level"
    );
    assert_converged(&p, "faulty", 3);
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
        let kill_at = 1 + point * (total - 2) / 29;
        let before = proxy.requests().len();
        let mut child = p
            .command(env!("CARGO_BIN_EXE_infra"))
            .env("AWS_ENDPOINT_URL", &proxy.endpoint)
            .args(["apply", "--auto-approve", "--stack", &stack])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            if proxy.requests().len() - before >= kill_at {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                killed += 1;
                break;
            }
            assert!(Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(1));
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
