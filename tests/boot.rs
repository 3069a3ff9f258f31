//! The first `infra apply` on instances that boot as real ones do (the faithful testbed path):
//! the image's own login user (not root, not in the docker group), sshd answering before
//! cloud-init runs the user-data, Docker installed by that user-data from a package mirror,
//! apt's locks held at boot. One apply must give a serving Swarm; a failed user-data must be
//! named with its log. Needs root.

mod support;

use support::{Image, Project, Testbed, sandbox_with, serves, targets};

/// The Swarm as the manager's own docker sees it: `Ready Active manager`, … sorted.
fn members(bed: &Testbed, p: &Project) -> Vec<String> {
    let manager = bed.node_of(&p.id_of("node.manager[0]"));
    let out = bed.sh(
        manager,
        "docker node ls --format '{{.Status}} {{.Availability}} {{.ManagerStatus}}'",
    );
    let mut lines: Vec<String> = out.lines().map(|l| l.trim().to_string()).collect();
    lines.sort();
    lines
}

#[test]
fn a_fresh_ubuntu_cluster_serves_after_one_apply_and_scales_out_in_one_apply() {
    // 3 instances and 1 for the scale-out, booting Ubuntu-style (login `ubuntu`).
    let (p, bed) = sandbox_with("52", 4, &["v1"], Image::Base);
    let stack = std::fs::read_to_string(p.stack_file()).unwrap();
    let al2023 =
        "ami = \"ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64\"";
    assert!(stack.contains(al2023));
    std::fs::write(
        p.stack_file(),
        stack.replace(al2023, "ami = \"ami-785db401\""),
    )
    .unwrap();
    let validate = p.ok(&["validate"]);
    assert!(
        validate.stdout.contains(
            "SSH login on manager nodes: the login user of ami-785db401, from its name (at plan)."
        ),
        "{}",
        validate.stdout
    );
    // Every node's apt is busy for a minute after power-on (apt-daily, unattended-upgrades).
    for n in ["2", "3"] {
        bed.run("set", &[n, "DPKG_LOCK_SECONDS=60"]);
    }

    let run = p.ok(&["apply", "--auto-approve"]);
    assert!(
        run.stdout.contains("swarm.service.web: Creation complete"),
        "{}",
        run.stdout
    );
    assert_eq!(
        members(&bed, &p),
        ["Ready Active", "Ready Active", "Ready Active Leader"]
    );
    for t in targets(bed.id, 3) {
        serves(t, "demo v1 secret-sha256=");
    }
    for n in 1..=3 {
        let granted = bed.sh(n, "getent group docker | cut -d: -f4");
        assert_eq!(
            granted, "ubuntu",
            "node {n}: the user-data let the login user use Docker"
        );
    }
    let waited = bed.sh(
        2,
        "grep -c 'Waiting for cache lock\\|waiting for apt' /var/log/cloud-init-output.log",
    );
    assert_ne!(waited, "0", "the user-data waited for apt's locks");
    assert_eq!(p.infra(&["plan", "--detailed-exitcode"]).code, 0);

    // A scale-out onto a fresh instance: one apply.
    let run = p.ok(&["scale-nodes", "3", "--auto-approve"]);
    assert!(
        run.stdout
            .contains("swarm.node.worker[2]: Creation complete"),
        "{}",
        run.stdout
    );
    assert_eq!(members(&bed, &p).len(), 4);
    for t in targets(bed.id, 4) {
        serves(t, "demo v1");
    }
    assert_eq!(p.infra(&["plan", "--detailed-exitcode"]).code, 0);
}

#[test]
fn a_fresh_amazon_linux_cluster_serves_after_one_apply_and_names_a_failed_user_data() {
    // The sandbox stack as it is (Amazon Linux: ec2-user): 3 instances, one for a scale-out
    // whose user-data fails, and one for its replacement.
    let (p, bed) = sandbox_with("53", 5, &["v1"], Image::Base);
    let run = p.ok(&["apply", "--auto-approve"]);
    assert!(
        run.stdout.contains("swarm.service.web: Creation complete"),
        "{}",
        run.stdout
    );
    assert_eq!(
        members(&bed, &p),
        ["Ready Active", "Ready Active", "Ready Active Leader"]
    );
    for n in 1..=3 {
        assert_eq!(bed.sh(n, "getent group docker | cut -d: -f4"), "ec2-user");
    }
    for t in targets(bed.id, 3) {
        serves(t, "demo v1 secret-sha256=");
    }

    // The next instance finds no package mirror: its user-data fails, and the apply says so.
    bed.run("set", &["4", "MIRROR=down"]);
    let run = p.infra(&["scale-nodes", "3", "--auto-approve"]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stderr.contains("node.worker[2] (i-")
            && run
                .stderr
                .contains("its first boot failed (cloud-init: error)"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("Failed to fetch file:/srv/testbed-apt"),
        "the log's tail is quoted: {}",
        run.stderr
    );

    // The user-data runs once per instance: a new instance fixes it, in one apply.
    p.aws(&["terminate", "sandbox", "node.worker[2]"]);
    let run = p.ok(&["apply", "--auto-approve"]);
    assert!(
        run.stdout
            .contains("swarm.node.worker[2]: Creation complete"),
        "{}",
        run.stdout
    );
    assert_eq!(bed.node_of(&p.id_of("node.worker[2]")), 5);
    assert_eq!(members(&bed, &p).len(), 4);
    for n in [1, 2, 3, 5] {
        serves(targets(bed.id, 5)[n - 1], "demo v1");
    }
    assert_eq!(p.infra(&["plan", "--detailed-exitcode"]).code, 0);
}
