//! Swarm bootstrap end to end: moto plays AWS, testbed nodes play the instances (they boot like
//! EC2 instances: cloud-init, the image's login user, the instance's real user-data after sshd
//! answers), mapped by the harness's ssh ProxyCommand on first contact. Needs root.

mod support;

use support::{Image, Testbed, world};

use std::time::{Duration, Instant};

use support::Project;

/// A stack of 1 manager and `nodes - 1` workers whose instances are played by fresh testbed
/// nodes through the harness's ProxyCommand, plus `spares` nodes for instances a test adds later.
fn swarm_project(id: &'static str, name: &str, nodes: usize, spares: usize) -> (Project, Testbed) {
    swarm_project_on(Image::Docker, id, name, nodes, spares)
}

fn swarm_project_on(
    image: Image,
    id: &'static str,
    name: &str,
    nodes: usize,
    spares: usize,
) -> (Project, Testbed) {
    let mut p = Project::new(name, nodes - 1);
    let mut bed = Testbed::up_with(id, p.dir.path().join("testbed"), nodes + spares, image);
    bed.reap_terminated(&p);
    let connect = world("nodes/connect");
    let ssh_config = p.dir.path().join("testbed.ssh_config");
    let proxy = format!(
        "Host *\n  ProxyCommand {} {id} {} %h %p\n",
        connect.display(),
        bed.dir.display()
    );
    std::fs::write(&ssh_config, proxy).unwrap();
    p.fixture = "swarm.toml".into();
    p.replacements = vec![
        (
            "TESTBED_KEY".into(),
            bed.dir.join("id_ed25519").display().to_string(),
        ),
        (
            "TESTBED_PUB".into(),
            bed.dir.join("id_ed25519.pub").display().to_string(),
        ),
        ("SSH_CONFIG".into(), ssh_config.display().to_string()),
    ];
    p.write_stack(nodes - 1);
    (p, bed)
}

fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn apply_bootstraps_a_swarm_that_plans_clean_heals_and_keeps_its_secrets() {
    let (p, bed) = swarm_project("43", "swarm", 3, 0);
    let mut outputs = Vec::new();

    // From nothing: the cloud, then a Swarm of 1 manager + 2 workers.
    let run = p.ok(&["apply", "--auto-approve", "-v"]);
    outputs.push(run.all());
    assert!(
        run.stdout
            .contains("swarm.node.manager[0]: Creation complete"),
        "{}",
        run.stdout
    );
    let manager = bed.node_of(&p.id_of("node.manager[0]"));
    let nodes = bed.sh(
        manager,
        "docker node ls --format '{{.Status}} {{.ManagerStatus}}' | sed 's/ *$//' | sort",
    );
    assert_eq!(
        nodes, "Ready\nReady\nReady Leader",
        "3 Ready nodes, one the leader"
    );
    let labels = bed.sh(manager, "docker node inspect $(docker node ls -q) --format '{{index .Spec.Labels \"infra.address\"}}' | sort");
    assert_eq!(labels, "node.manager[0]\nnode.worker[0]\nnode.worker[1]");
    let user_data = bed.sh(manager, "cat /etc/infra/node.env");
    assert!(
        user_data.contains("INFRA_ROLE=manager"),
        "the instance's user-data ran: {user_data}"
    );

    // What a person checks next: status, and a shell on a node.
    let status = p.ok(&["status", "--json"]);
    let status: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    let nodes = status["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 3);
    for n in nodes {
        assert_eq!(n["swarm_state"], "ready", "{n}");
        assert_eq!(n["swarm_availability"], "active", "{n}");
        assert_eq!(n["swarm_role"], n["pool"], "{n}");
    }
    // Managers run Amazon Linux (ec2-user), workers Ubuntu (ubuntu): each as its image says.
    let worker0 = bed.node_of(&p.id_of("node.worker[0]"));
    let shell = p.ok(&["ssh", "worker[0]", "--", "hostname; id -un"]);
    let expected = format!("{}\nubuntu", bed.sh(worker0, "hostname"));
    assert_eq!(shell.stdout.trim(), expected);
    let shell = p.ok(&["ssh", "manager[0]", "--", "id -un"]);
    assert_eq!(shell.stdout.trim(), "ec2-user");

    // A second plan: nothing to do, in the cloud or the Swarm.
    let again = p.infra(&["plan", "--detailed-exitcode"]);
    outputs.push(again.all());
    assert_eq!(again.code, 0, "{}", again.all());

    // A worker leaves the Swarm behind infra's back: the plan shows its rejoin, apply does it.
    let worker = bed.node_of(&p.id_of("node.worker[1]"));
    bed.sh(worker, "docker swarm leave");
    wait_until("the manager sees the worker down", || {
        bed.sh(manager, "docker node ls --format '{{.Status}}'")
            .contains("Down")
    });
    let plan = p.infra(&["plan", "--detailed-exitcode"]);
    outputs.push(plan.all());
    assert_eq!(plan.code, 2, "{}", plan.all());
    assert!(
        plan.stdout
            .contains("# swarm.node.worker[1] must be replaced"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .contains("~ state = \"down\" -> \"ready\" # forces replacement"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .contains("Plan: 1 to add, 0 to change, 1 to destroy."),
        "{}",
        plan.stdout
    );
    let json = p.infra(&["plan", "--json"]);
    outputs.push(json.all());
    let healed = p.ok(&["apply", "--auto-approve", "-v"]);
    outputs.push(healed.all());
    let nodes = bed.sh(manager, "docker node ls --format '{{.Status}}' | sort");
    assert_eq!(
        nodes, "Ready\nReady\nReady",
        "rejoined, and the stale Down entry removed"
    );
    assert_eq!(p.infra(&["plan", "--detailed-exitcode"]).code, 0);

    // The join tokens are nowhere the tool wrote.
    let tokens =
        ["worker", "manager"].map(|r| bed.sh(manager, &format!("docker swarm join-token -q {r}")));
    let state = std::fs::read_to_string(p.state_file()).unwrap();
    for token in &tokens {
        assert!(token.starts_with("SWMTKN-"));
        assert!(
            !state.contains(token.as_str()),
            "a join token is in the state"
        );
        for out in &outputs {
            assert!(
                !out.contains(token.as_str()),
                "a join token is in the output"
            );
        }
    }
    let stored = p.aws(&["ssm-get", "/infra/swarm/swarm/worker-token"]);
    assert_eq!(
        stored["value"],
        tokens[0].as_str(),
        "kept in Parameter Store"
    );
    assert_eq!(stored["type"], "SecureString");

    // The manager's login user loses the docker group: the plan says so, and never takes the
    // Swarm for missing.
    bed.sh(manager, "gpasswd -d ec2-user docker >/dev/null");
    let denied = p.infra(&["plan"]);
    assert_eq!(denied.code, 1, "{}", denied.all());
    assert!(
        denied
            .stderr
            .contains("node.manager[0]: ec2-user may not use Docker (permission denied"),
        "{}",
        denied.stderr
    );
    bed.sh(manager, "usermod -aG docker ec2-user");

    // The manager's host key changes: infra refuses to talk to it, and says which node, even on
    // a fresh runner without the local known_hosts file (the keys are pinned in the state).
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p.state_file()).unwrap()).unwrap();
    let pinned = state["host_keys"].as_array().unwrap();
    assert_eq!(pinned.len(), 3, "one key per node: {pinned:?}");
    assert!(
        pinned.iter().all(|k| k.as_str().unwrap().starts_with("i-")),
        "keyed by instance id"
    );
    std::fs::remove_file(p.dir.path().join("state/swarm.known_hosts")).unwrap();
    bed.run("rekey", &[&manager.to_string()]);
    let refused = p.infra(&["plan"]);
    assert_eq!(refused.code, 1);
    assert!(
        refused.stderr.contains("node.manager[0] (i-")
            && refused.stderr.contains("its SSH host key changed"),
        "{}",
        refused.stderr
    );
}

/// Measurement, not a check (docs/swarm.md, "Bootstrap time"): `infra apply` from nothing to a
/// Swarm of 3 and of 6 nodes, on instances with Docker baked in and on instances whose user-data
/// installs it (then also the user-data's own time on each node, cloud-init's final stage).
/// Run with `cargo test --test swarm -- --ignored --nocapture`.
#[test]
#[ignore]
fn measure_bootstrap_of_3_and_6_nodes() {
    for (image, n) in [
        (Image::Docker, 3usize),
        (Image::Docker, 6),
        (Image::Base, 3),
        (Image::Base, 6),
    ] {
        let (p, bed) = swarm_project_on(image, "45", &format!("boot{n}"), n, 0);
        let start = Instant::now();
        let run = p.ok(&["apply", "--auto-approve"]);
        let total = start.elapsed();
        let manager = bed.node_of(&p.id_of("node.manager[0]"));
        let ready = bed.sh(
            manager,
            "docker node ls --format '{{.Status}}' | grep -c Ready",
        );
        assert_eq!(ready, n.to_string());
        let swarm_lines: Vec<&str> = run
            .stdout
            .lines()
            .filter(|l| l.starts_with("swarm.") && l.contains("complete after"))
            .collect();
        let user_data: Vec<String> = (1..=n)
            .map(|i| {
                bed.sh(
                    i,
                    "cloud-init analyze show | awk '/modules-final/ { s = $4 + 0 } END { print s }'",
                )
            })
            .collect();
        println!(
            "{image:?} image, {n} nodes: infra apply {:.1} s in all; user-data (s): {}; {}",
            total.as_secs_f64(),
            user_data.join(" "),
            swarm_lines.join("; ")
        );
        drop((p, bed));
    }
}

/// A node lost for good (its instance terminated behind infra's back, the machine gone): the
/// plan replaces the instance and its membership, and the Swarm heals on a fresh node.
#[test]
fn a_lost_node_is_replaced_and_the_swarm_heals() {
    // 3 nodes for the stack, and a spare for the replacement instance.
    let (p, bed) = swarm_project("44", "heal", 3, 1);
    p.ok(&["apply", "--auto-approve"]);
    let manager = bed.node_of(&p.id_of("node.manager[0]"));
    let lost = p.id_of("node.worker[0]");
    let lost_node = bed.node_of(&lost);
    p.aws(&["terminate", "heal", "node.worker[0]"]);
    support::testbed(&[
        "stop",
        bed.id,
        bed.dir.to_str().unwrap(),
        &lost_node.to_string(),
    ]);
    wait_until("the manager sees the node down", || {
        bed.sh(manager, "docker node ls --format '{{.Status}}'")
            .contains("Down")
    });

    let plan = p.infra(&["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 2, "{}", plan.all());
    assert!(
        plan.stdout.contains("# node.worker[0] will be created"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .contains("# swarm.node.worker[0] must be replaced"),
        "{}",
        plan.stdout
    );
    p.ok(&["apply", "--auto-approve"]);

    let replacement = p.id_of("node.worker[0]");
    assert_ne!(replacement, lost);
    assert_eq!(
        bed.node_of(&replacement),
        4,
        "the new instance runs on the spare node"
    );
    let nodes = bed.sh(
        manager,
        "docker node ls --format '{{.Hostname}} {{.Status}}' | sort",
    );
    let mut expected: Vec<String> = (1..=4)
        .filter(|&n| n != lost_node)
        .map(|n| format!("{} Ready", bed.sh(n, "hostname")))
        .collect();
    expected.sort();
    assert_eq!(
        nodes,
        expected.join("\n"),
        "healed: the lost node removed, the new one joined"
    );
    assert_eq!(p.infra(&["plan", "--detailed-exitcode"]).code, 0);
}

/// A manager whose Docker is down when apply needs it: apply stops before any change, naming
/// the node and the step; once Docker is back, the next apply converges.
#[test]
fn a_manager_without_docker_stops_apply_by_name_and_the_next_apply_converges() {
    // 1 manager + 1 worker, and node 3 for the worker that scale-nodes adds.
    let (p, bed) = swarm_project("48", "nodock", 2, 1);
    p.ok(&["apply", "--auto-approve"]);
    let manager = bed.node_of(&p.id_of("node.manager[0]"));
    bed.run("docker-stop", &[&manager.to_string()]);

    let run = p.infra(&["scale-nodes", "2", "--auto-approve"]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stderr
            .contains("node.manager[0]: Docker is installed but does not answer")
            && run.stderr.contains("Cannot connect to the Docker daemon"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stdout.contains("Creating..."),
        "nothing changed: {}",
        run.stdout
    );

    // Right after its Docker starts, the manager reports the worker `unknown` until the
    // worker's next heartbeat: a state to wait out, not a member to replace.
    bed.run("docker-start", &[&manager.to_string()]);
    let run = p.ok(&["apply", "--auto-approve"]);
    assert!(
        run.stdout
            .contains("swarm.node.worker[1]: Creation complete")
            && !run.stdout.contains("swarm.node.worker[0]"),
        "{}",
        run.stdout
    );
    let nodes = bed.sh(manager, "docker node ls --format '{{.Status}}'");
    assert_eq!(nodes, "Ready\nReady\nReady", "{nodes}");
    assert_eq!(p.infra(&["plan", "--detailed-exitcode"]).code, 0);
}

/// A new node whose sshd does not start: apply waits the configured `ready_timeout`, then
/// fails naming the node and the step; once sshd is up, the next apply joins it.
#[test]
fn a_node_whose_sshd_stops_fails_apply_by_name_and_the_next_apply_converges() {
    // 1 manager + 1 worker, and node 3 for the worker that scale-nodes adds: it boots without sshd.
    let (p, bed) = swarm_project("49", "nossh", 2, 1);
    let stack = std::fs::read_to_string(p.stack_file()).unwrap();
    let stack = stack.replace("[ssh]\n", "[ssh]\nready_timeout = \"15s\"\n");
    std::fs::write(p.stack_file(), stack).unwrap();
    p.ok(&["apply", "--auto-approve"]);
    bed.run("set", &["3", "SSHD=no"]);

    let run = p.infra(&["scale-nodes", "2", "--auto-approve"]);
    let (stdout, stderr) = (run.stdout, run.stderr);
    assert_eq!(run.code, 1, "{stdout}{stderr}");
    assert!(
        stderr.contains("node.worker[1] (i-")
            && stderr.contains("cannot connect over SSH")
            && stderr.contains("`wait for SSH` gave up after 15s"),
        "{stderr}"
    );
    assert!(
        stdout.contains("node.worker[1]: Creation complete"),
        "{stdout}"
    );

    bed.run("sshd-start", &["3"]);
    let run = p.ok(&["apply", "--auto-approve"]);
    assert!(
        run.stdout
            .contains("swarm.node.worker[1]: Creation complete"),
        "{}",
        run.stdout
    );
    let manager = bed.node_of(&p.id_of("node.manager[0]"));
    let nodes = bed.sh(manager, "docker node ls --format '{{.Status}}'");
    assert_eq!(nodes, "Ready\nReady\nReady", "{nodes}");
    assert_eq!(p.infra(&["plan", "--detailed-exitcode"]).code, 0);
}

/// A new worker that cannot reach the manager's Swarm port when it joins (its packets dropped
/// in its network namespace): Docker's `swarm join` gives up waiting after 20 s, and Docker
/// then turns the join into state `error`. Apply leaves that failed join and tries again,
/// and succeeds once the port is reachable, within the same run.
#[test]
fn a_join_that_times_out_is_retried_within_the_apply() {
    // 1 manager + 1 worker, and node 3 for the worker that scale-nodes adds.
    let (p, bed) = swarm_project("51", "slowjoin", 2, 1);
    p.ok(&["apply", "--auto-approve"]);
    let manager = bed.node_of(&p.id_of("node.manager[0]"));
    let drop_swarm_port = |verb: &str| {
        let ok = std::process::Command::new("nsenter")
            .arg(format!("--net=/var/run/netns/tb{}-n3", bed.id))
            .args(["iptables", verb, "OUTPUT"])
            .args(["-p", "tcp", "--dport", "2377", "-j", "DROP"])
            .status()
            .unwrap();
        assert!(ok.success(), "iptables {verb}");
    };
    drop_swarm_port("-A");

    let run = p
        .command(env!("CARGO_BIN_EXE_infra"))
        .args(["scale-nodes", "2", "--auto-approve", "--verbose"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the new worker starts joining", || {
        bed.try_sh(3, "docker info --format '{{.Swarm.LocalNodeState}}'")
            .is_some_and(|s| s == "pending")
    });
    // Past Docker's 20 s join timeout and the ~25 s after which the join turns to `error`;
    // the port is reachable again while the second try waits.
    std::thread::sleep(Duration::from_secs(35));
    drop_swarm_port("-D");
    let out = run.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("swarm.node.worker[1]: Creation complete"),
        "{stdout}"
    );
    assert!(
        stderr.contains("node.worker[1]: retrying the join")
            && stderr.contains("Timeout was reached before node joined"),
        "{stderr}"
    );
    let nodes = bed.sh(manager, "docker node ls --format '{{.Status}}'");
    assert_eq!(nodes, "Ready\nReady\nReady", "{nodes}");
    assert_eq!(p.infra(&["plan", "--detailed-exitcode"]).code, 0);
}
