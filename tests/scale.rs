//! `infra scale-nodes` end to end on the sandbox stack: workers 2 → 4 → 1 and managers 1 → 3 → 1
//! while a request loop that health-checks every node (as the target group does) keeps hitting
//! them; a scale-in killed between drain and terminate; an unsafe manager change refused.
//! Moto plays AWS, testbed nodes play the instances. Needs root.

mod support;

use std::time::{Duration, Instant};

use support::traffic::Traffic;
use support::{Project, Testbed, live_instances, sandbox, targets};

fn manager_node(p: &Project, bed: &Testbed) -> usize {
    bed.node_of(&p.id_of("node.manager[0]"))
}

/// `docker node ls` as the first manager sees it: (role, status, availability) sorted.
fn swarm(p: &Project, bed: &Testbed) -> Vec<String> {
    let out = bed.ssh(
        manager_node(p, bed),
        "docker node ls --format '{{if .ManagerStatus}}manager{{else}}worker{{end}} {{.Status}} {{.Availability}}'",
    );
    let mut lines: Vec<String> = out.lines().map(str::to_string).collect();
    lines.sort();
    lines
}

fn healthy(managers: usize, workers: usize) -> Vec<String> {
    let mut v = vec!["manager Ready Active".to_string(); managers];
    v.extend(vec!["worker Ready Active".to_string(); workers]);
    v
}

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
    assert_eq!(swarm(&p, &bed), healthy(1, 2));
    let traffic = Traffic::start(targets(bed.id, nodes));
    std::thread::sleep(Duration::from_secs(2));

    scale(&p, &["4"]);
    assert_eq!(swarm(&p, &bed), healthy(1, 4));
    scale(&p, &["1"]);
    assert_eq!(
        swarm(&p, &bed),
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
    assert_eq!(swarm(&p, &bed), healthy(3, 1));
    scale(&p, &["--managers", "1"]);
    assert_eq!(swarm(&p, &bed), healthy(1, 1));

    let tally = traffic.stop();
    assert!(
        tally.failed.is_empty(),
        "failed requests: {:?}",
        tally.failed
    );
    assert!(tally.ok > 100, "{tally:?}");
    eprintln!("request loop: {} ok, 0 failed", tally.ok);

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
    while !swarm(&p, &bed).iter().any(|n| n.ends_with("Drain")) {
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
        swarm(&p, &bed),
        healthy(1, 1),
        "no Down or drained node left"
    );
    assert_eq!(live_instances(&p.dump()).len(), 2, "no orphan instance");
    let plan = p.infra(&["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "{}", plan.all());
}
