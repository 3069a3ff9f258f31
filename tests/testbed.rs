//! The node testbed itself (tests/world/nodes): nodes stay powered off until booted, then boot
//! like EC2 instances — sshd first, the image's login user with the key pair's key, root turned
//! away, cloud-init finishing the boot — form a real Swarm, and leave nothing behind. Needs root.

mod support;

use support::{Testbed, testbed};

use std::process::Command;

const ID: &str = "41";

fn login(bed: &Testbed, node: usize, user: &str, command: &str) -> std::process::Output {
    Command::new("ssh")
        .args(["-i", bed.dir.join("id_ed25519").to_str().unwrap()])
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
        ])
        .args(["-o", "BatchMode=yes", "-o", "LogLevel=ERROR"])
        .arg(format!("{user}@10.77.{ID}.{}", 10 + node))
        .arg(command)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).trim().to_string()
}

#[test]
fn nodes_boot_like_instances_form_a_swarm_and_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = dir.path().join("nodes");
    let nodes_str = nodes.to_str().unwrap().to_string();
    {
        let bed = Testbed::up(ID, nodes.clone(), 3);
        // Powered off: nothing answers.
        assert!(std::net::TcpStream::connect(format!("10.77.{ID}.11:22")).is_err());
        bed.run("set", &["3", "DPKG_LOCK_SECONDS=60"]);
        for n in 1..=3 {
            testbed(&["boot", ID, &nodes_str, &n.to_string(), "--wait"]);
        }

        let who = login(
            &bed,
            1,
            "ubuntu",
            "cloud-init status --wait >/dev/null; id -un; sudo -n id -un; id -Gn; hostname",
        );
        assert!(who.status.success(), "{}", text(&who.stderr));
        assert_eq!(
            text(&who.stdout),
            format!("ubuntu\nroot\nubuntu adm\nip-10-77-{ID}-11"),
            "the image's user, with sudo, not in the docker group; the host named by cloud-init"
        );
        let root = login(&bed, 1, "root", "id");
        assert_eq!(root.status.code(), Some(142));
        assert_eq!(
            text(&root.stdout),
            "Please login as the user \"ubuntu\" rather than the user \"root\"."
        );
        let status = bed.sh(2, "cloud-init status --wait >/dev/null; cloud-init status");
        assert_eq!(status, "status: done");
        // Node 3 boots as unattended-upgrades runs: apt's locks are held.
        let apt = bed.sh(3, "apt-get -q update 2>&1 || true");
        assert!(apt.contains("Could not get lock"), "{apt}");

        let manager = format!("10.77.{ID}.11");
        bed.sh(
            1,
            &format!("docker swarm init --advertise-addr {manager} >/dev/null"),
        );
        let token = bed.sh(1, "docker swarm join-token -q worker");
        for n in 2..=3 {
            bed.sh(
                n,
                &format!("docker swarm join --token {token} {manager}:2377 >/dev/null"),
            );
        }
        let members = bed.sh(
            1,
            "docker node ls --format '{{.Hostname}} {{.Status}}' | sort",
        );
        assert_eq!(
            members,
            format!("ip-10-77-{ID}-11 Ready\nip-10-77-{ID}-12 Ready\nip-10-77-{ID}-13 Ready")
        );
    }

    let netns = text(
        &Command::new("ip")
            .args(["netns", "list"])
            .output()
            .unwrap()
            .stdout,
    );
    assert!(
        !netns.contains(&format!("tb{ID}-")),
        "namespaces left: {netns}"
    );
    let links = text(&Command::new("ip").args(["link"]).output().unwrap().stdout);
    assert!(!links.contains(&format!("tb{ID}-")), "links left: {links}");
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    assert!(!mounts.contains(&nodes_str), "mounts left");
    assert!(!nodes.exists(), "files left");
    let ps = text(
        &Command::new("ps")
            .args(["-eo", "args"])
            .output()
            .unwrap()
            .stdout,
    );
    assert!(!ps.contains(&nodes_str), "processes left: {ps}");
}
