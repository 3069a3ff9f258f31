//! The SSH layer (src/swarm/ssh.rs) against real testbed nodes: the system ssh through the
//! openssh crate, host keys pinned by instance id, secrets over stdin only. Needs root.

mod support;

use support::testbed;

use std::process::Command;
use std::time::Duration;

use infra::model::{Address, SshSettings};
use infra::swarm::{NodeHost, Ssh, SshError};

const ID: &str = "42";

fn node(i: usize) -> NodeHost {
    NodeHost {
        address: Address::node("worker", i - 1),
        instance_id: format!("i-test{i}"),
        host: format!("10.77.{ID}.{}", 10 + i),
        user: "ubuntu".into(),
        image_user: Some("ubuntu".into()),
        jump: None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_pin_host_keys_by_instance_and_pass_secrets_over_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let nodes_dir = dir.path().join("nodes");
    testbed(&["up", ID, "2", nodes_dir.to_str().unwrap()]);
    for n in ["1", "2"] {
        testbed(&["boot", ID, nodes_dir.to_str().unwrap(), n, "--wait"]);
    }
    let result = tokio::spawn(exercise(dir.path().to_path_buf())).await;
    testbed(&["down", ID, nodes_dir.to_str().unwrap()]);
    result.unwrap();
}

async fn exercise(dir: std::path::PathBuf) {
    let nodes_dir = dir.join("nodes");
    let empty_config = dir.join("user_ssh_config");
    std::fs::write(&empty_config, "").unwrap();
    let settings = SshSettings {
        identity_file: Some(nodes_dir.join("id_ed25519")),
        config_file: Some(empty_config),
        ..Default::default()
    };
    let state = dir.join("state");
    let ssh = Ssh::prepare(&state, "t", &settings, &[node(1), node(2)], &[]).unwrap();
    let timeout = Duration::from_secs(10);

    let one = ssh.connect(&node(1), timeout).await.unwrap();
    assert_eq!(
        one.run("hostname", "hostname", None).await.unwrap().trim(),
        format!("ip-10-77-{ID}-11")
    );
    let known = std::fs::read_to_string(state.join("t.known_hosts")).unwrap();
    assert!(
        known.starts_with("i-test1 ssh-ed25519 "),
        "pinned by instance id: {known}"
    );

    // A secret handed over stdin reaches the remote command and no local command line.
    let secret = "SWMTKN-1-testsecret-0123456789";
    // (The remote script compares hashes: testbed nodes share this machine's process table.)
    let waiting = one.run(
        "check token",
        "read t; sleep 1; printf %s \"$t\" | sha256sum | cut -c1-64",
        Some(secret),
    );
    let (out, ps) = tokio::join!(waiting, async {
        tokio::time::sleep(Duration::from_millis(400)).await;
        Command::new("ps").args(["-eo", "args"]).output().unwrap()
    });
    assert_eq!(
        out.unwrap().trim(),
        infra::model::resources::sha256_hex(secret)
    );
    let ps = String::from_utf8_lossy(&ps.stdout);
    assert!(
        !ps.contains("testsecret"),
        "the secret is on a local command line: {ps}"
    );

    let failed = one
        .run("docker swarm join", "echo nope >&2; exit 3", None)
        .await
        .unwrap_err();
    assert!(
        matches!(&failed, SshError::Command { code: 3, stderr, .. } if stderr == "nope"),
        "{failed}"
    );
    assert!(
        failed
            .to_string()
            .starts_with("node.worker[0]: `docker swarm join` failed (exit 3): nope"),
        "{failed}"
    );
    one.close().await;

    // Node 2 is met, then its host key changes: the next connection is refused, naming it.
    let two = ssh.connect(&node(2), timeout).await.unwrap();
    two.close().await;
    testbed(&["rekey", nodes_dir.to_str().unwrap(), "2"]);
    let refused = ssh
        .connect(&node(2), timeout)
        .await
        .err()
        .expect("a changed host key is refused");
    assert!(
        matches!(refused, SshError::HostKeyChanged { .. }),
        "{refused}"
    );
    let text = refused.to_string();
    assert!(
        text.starts_with("node.worker[1] (i-test2): its SSH host key changed"),
        "{text}"
    );
    assert!(text.contains("t.known_hosts"), "{text}");
    // Node 1 is still fine.
    ssh.connect(&node(1), timeout).await.unwrap().close().await;
}
