//! The node testbed itself (tests/testbed/): real sshd + dockerd nodes in network namespaces
//! form a real Swarm, and stopping them leaves nothing behind. Needs root, like the testbed.

mod support;

use support::{node_ssh, testbed};

use std::path::Path;
use std::process::Command;

const ID: &str = "41";

fn ssh(dir: &Path, node: usize, command: &str) -> String {
    node_ssh(dir, ID, node, command, None)
}

#[test]
fn three_nodes_form_a_swarm_and_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = dir.path().join("nodes");
    let nodes_str = nodes.to_str().unwrap();
    testbed(&["up", ID, "3", nodes_str]);
    let result = std::panic::catch_unwind(|| {
        for n in 1..=3 {
            assert_eq!(ssh(&nodes, n, "hostname"), format!("node-{n}"));
            let ready = "for i in $(seq 1 100); do docker info >/dev/null 2>&1 && exit 0; sleep 0.2; done; exit 1";
            ssh(&nodes, n, ready);
        }
        let manager = format!("10.77.{ID}.11");
        ssh(
            &nodes,
            1,
            &format!("docker swarm init --advertise-addr {manager}"),
        );
        let token = ssh(&nodes, 1, "docker swarm join-token -q worker");
        for n in 2..=3 {
            // The token goes over stdin, not on a command line.
            let join = format!("docker swarm join --token \"$(cat)\" {manager}:2377");
            node_ssh(&nodes, ID, n, &join, Some(&token));
        }
        let nodes_ls = ssh(
            &nodes,
            1,
            "docker node ls --format '{{.Hostname}} {{.Status}}' | sort",
        );
        assert_eq!(nodes_ls, "node-1 Ready\nnode-2 Ready\nnode-3 Ready");
    });
    testbed(&["down", ID, nodes_str]);
    result.unwrap();
    let netns = String::from_utf8_lossy(
        &Command::new("ip")
            .args(["netns", "list"])
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned();
    assert!(
        !netns.contains(&format!("tb{ID}-")),
        "namespaces left: {netns}"
    );
    let links =
        String::from_utf8_lossy(&Command::new("ip").args(["link"]).output().unwrap().stdout)
            .into_owned();
    assert!(!links.contains(&format!("tb{ID}-")), "links left: {links}");
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    assert!(!mounts.contains(nodes_str), "mounts left");
    assert!(!nodes.exists(), "files left");
    let ps = String::from_utf8_lossy(
        &Command::new("ps")
            .args(["-eo", "args"])
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned();
    assert!(!ps.contains(nodes_str), "processes left: {ps}");
}
