//! The plan tells the truth about the Swarm half, end to end on one sandbox testbed driven by a
//! compose file (tests/fixtures/compose/changes), as providers test it: after every successful
//! apply, the next plan is empty.
//!
//! - Every field a user sets on a service, and its networks, configs and secrets, changed one at
//!   a time: the plan's action for each object as predicted (an update in place, or a
//!   replacement where Docker refuses the update), apply exit 0, the next plan empty.
//! - The whole compose file swapped for another application (other services, networks,
//!   configs; `web` global ↔ replicated) and back: each in one apply, the next plan empty, and
//!   what left the file no longer listed by the node's own `docker`.
//! - A service Docker could not update (a bind mount missing on the nodes): apply fails, the
//!   next plan shows it with Docker's reason (exit 2), and once the cause is fixed apply tries
//!   it again and converges.
//! - A service that never converges (no node may run its task): apply exits 1 once
//!   `converge_timeout` has passed, naming it (`stack deploy` alone exits 0, docker/cli#6752).
//!
//! Moto plays AWS, testbed nodes play the instances. Needs root.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use support::{Project, Testbed, manager_node, sandbox, with_compose_file};

/// One change of the matrix: `from` (found exactly once) becomes `to` in `file`, and the plan
/// changes exactly `expect`: (address prefix, action) pairs.
struct Row {
    what: &'static str,
    edits: &'static [(&'static str, &'static str, &'static str)],
    expect: &'static [(&'static str, &'static str)],
}

const APP: &str = "swarm.service.app";
const UPDATE: &[(&str, &str)] = &[(APP, "update")];

/// Cumulative: each row starts from where the previous one left the files.
const ROWS: &[Row] = &[
    Row {
        what: "image",
        edits: &[("compose.yml", "infra-demo:v1 # app", "infra-demo:v2 # app")],
        expect: UPDATE,
    },
    Row {
        what: "replicas",
        edits: &[("compose.yml", "replicas: 1", "replicas: 2")],
        expect: UPDATE,
    },
    Row {
        what: "mode: replicated to global",
        edits: &[("compose.yml", "      replicas: 2\n", "      mode: global\n")],
        expect: &[(APP, "replace")],
    },
    Row {
        what: "mode: global to replicated",
        edits: &[("compose.yml", "      mode: global\n", "      replicas: 1\n")],
        expect: &[(APP, "replace")],
    },
    Row {
        what: "a published port (host mode)",
        edits: &[(
            "compose.yml",
            "    networks: [back]\n",
            "    ports:\n      - {target: 3001, published: 3101, mode: host}\n    networks: [back]\n",
        )],
        expect: UPDATE,
    },
    Row {
        what: "the published port",
        edits: &[("compose.yml", "published: 3101", "published: 3102")],
        expect: UPDATE,
    },
    Row {
        what: "the publish mode",
        edits: &[(
            "compose.yml",
            "published: 3102, mode: host",
            "published: 3102, mode: ingress",
        )],
        expect: UPDATE,
    },
    Row {
        what: "environment",
        edits: &[(
            "compose.yml",
            "      PORTS: \"3001\"\n",
            "      PORTS: \"3001\"\n      EXTRA: \"1\"\n",
        )],
        expect: UPDATE,
    },
    Row {
        what: "command",
        edits: &[(
            "compose.yml",
            "    networks: [back]\n",
            "    command: [\"/serve\"]\n    networks: [back]\n",
        )],
        expect: UPDATE,
    },
    Row {
        what: "a network more",
        edits: &[
            ("compose.yml", "networks: [back]", "networks: [back, front]"),
            ("compose.yml", "  back: {}\n", "  back: {}\n  front: {}\n"),
        ],
        expect: &[(APP, "update"), ("swarm.network.front", "create")],
    },
    Row {
        what: "a config more",
        edits: &[
            (
                "compose.yml",
                "configs: [app_conf]",
                "configs: [app_conf, extra_conf]",
            ),
            (
                "compose.yml",
                "    file: ./app.conf\n",
                "    file: ./app.conf\n  extra_conf:\n    file: ./extra.conf\n",
            ),
        ],
        expect: &[(APP, "update"), ("swarm.config.extra_conf_", "create")],
    },
    Row {
        what: "a config's content",
        edits: &[("app.conf", "hello", "bonjour")],
        expect: &[
            (APP, "update"),
            ("swarm.config.app_conf_", "create"),
            ("swarm.config.app_conf_", "delete"),
        ],
    },
    Row {
        what: "a secret more",
        edits: &[
            ("compose.yml", "secrets: [token]", "secrets: [token, key]"),
            (
                "compose.yml",
                "    file: ./token.txt\n",
                "    file: ./token.txt\n  key:\n    file: ./key.txt\n",
            ),
        ],
        expect: &[
            (APP, "update"),
            ("secret.key", "create"),
            ("swarm.secret.key_", "create"),
        ],
    },
    Row {
        what: "a secret's value",
        edits: &[("key.txt", "key-one", "key-two")],
        expect: &[
            (APP, "update"),
            ("secret.key", "update"),
            ("swarm.secret.key_", "create"),
            ("swarm.secret.key_", "delete"),
        ],
    },
    Row {
        what: "a volume",
        edits: &[
            (
                "compose.yml",
                "    networks: [back, front]\n",
                "    volumes: [data:/data]\n    networks: [back, front]\n",
            ),
            (
                "compose.yml",
                "\nnetworks:\n",
                "\nvolumes:\n  data: {}\n\nnetworks:\n",
            ),
        ],
        expect: UPDATE,
    },
    Row {
        what: "placement",
        edits: &[(
            "compose.yml",
            "      replicas: 1\n",
            "      replicas: 1\n      placement: {constraints: [node.role == worker]}\n",
        )],
        expect: UPDATE,
    },
    Row {
        what: "update config",
        edits: &[(
            "compose.yml",
            "monitor: 1s}",
            "monitor: 1s, parallelism: 2}",
        )],
        expect: UPDATE,
    },
    Row {
        what: "rollback config",
        edits: &[(
            "compose.yml",
            "      replicas: 1\n",
            "      replicas: 1\n      rollback_config: {parallelism: 1, order: stop-first}\n",
        )],
        expect: UPDATE,
    },
    Row {
        what: "health check",
        edits: &[(
            "compose.yml",
            "    networks: [back, front]\n",
            "    healthcheck:\n      test: [\"CMD-SHELL\", \"wget -q -O /dev/null http://127.0.0.1:3001/health\"]\n      interval: 2s\n      timeout: 5s\n      start_period: 1s\n    networks: [back, front]\n",
        )],
        expect: UPDATE,
    },
    Row {
        what: "labels (service and container)",
        edits: &[
            (
                "compose.yml",
                "      replicas: 1\n",
                "      replicas: 1\n      labels: [team=core]\n",
            ),
            (
                "compose.yml",
                "    networks: [back, front]\n",
                "    labels: [tier=app]\n    networks: [back, front]\n",
            ),
        ],
        expect: UPDATE,
    },
    Row {
        what: "resources",
        edits: &[(
            "compose.yml",
            "      replicas: 1\n",
            "      replicas: 1\n      resources: {limits: {memory: 64M}, reservations: {cpus: \"0.01\"}}\n",
        )],
        expect: UPDATE,
    },
    Row {
        what: "stop grace period",
        edits: &[(
            "compose.yml",
            "    networks: [back, front]\n",
            "    stop_grace_period: 4s\n    networks: [back, front]\n",
        )],
        expect: UPDATE,
    },
    Row {
        what: "a network's definition",
        edits: &[(
            "compose.yml",
            "  back: {}\n",
            "  back: {labels: {tier: back}}\n",
        )],
        expect: &[(APP, "replace"), ("swarm.network.back", "replace")],
    },
    Row {
        what: "a config less",
        edits: &[
            (
                "compose.yml",
                "configs: [app_conf, extra_conf]",
                "configs: [app_conf]",
            ),
            ("compose.yml", "  extra_conf:\n    file: ./extra.conf\n", ""),
        ],
        expect: &[(APP, "update"), ("swarm.config.extra_conf_", "delete")],
    },
    Row {
        what: "a secret less",
        edits: &[
            ("compose.yml", "secrets: [token, key]", "secrets: [token]"),
            ("compose.yml", "  key:\n    file: ./key.txt\n", ""),
        ],
        expect: &[
            (APP, "update"),
            ("secret.key", "delete"),
            ("swarm.secret.key_", "delete"),
        ],
    },
    Row {
        what: "a network less",
        edits: &[
            ("compose.yml", "networks: [back, front]", "networks: [back]"),
            ("compose.yml", "  front: {}\n", ""),
        ],
        expect: &[(APP, "update"), ("swarm.network.front", "delete")],
    },
];

fn docker(bed: &Testbed, node: usize, command: &str) -> String {
    bed.sh(node, &format!("docker {command}"))
}

/// The sandbox stack with the change fixture as its compose file.
fn with_changes_fixture(p: &Project) -> PathBuf {
    let files = ["compose.yml", "other.yml", "app.conf", "token.txt"];
    let dir = with_compose_file(p, "changes", &files);
    std::fs::write(dir.join("extra.conf"), "extra = 1\n").unwrap();
    std::fs::write(dir.join("key.txt"), "key-one\n").unwrap();
    dir
}

/// The plan's changes as (address, action), from `infra plan --json`; the plan is saved to
/// `plan.bin` for the apply that follows.
fn planned(p: &Project) -> Vec<(String, String)> {
    let run = p.ok(&["plan", "--json", "--out", "plan.bin"]);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).expect("plan --json");
    doc["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let field = |k: &str| c[k].as_str().unwrap().to_string();
            (field("address"), field("action"))
        })
        .collect()
}

/// Whether `changes` are exactly what `expect` predicts: each change matches an expected
/// (address prefix, action), and each expectation is met.
fn as_predicted(changes: &[(String, String)], expect: &[(&str, &str)]) -> bool {
    let matches = |(a, x): &(String, String), (prefix, action): &(&str, &str)| {
        a.starts_with(prefix) && x == action
    };
    changes.iter().all(|c| expect.iter().any(|e| matches(c, e)))
        && expect.iter().all(|e| changes.iter().any(|c| matches(c, e)))
}

fn assert_clean(p: &Project, after: &str) {
    let plan = p.infra(&["plan", "--detailed-exitcode"]);
    assert_eq!(
        plan.code,
        0,
        "the plan after {after} is not empty:\n{}",
        plan.all()
    );
}

fn edit(dir: &Path, file: &str, from: &str, to: &str) {
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        text.matches(from).count(),
        1,
        "{from:?} once in {file}:\n{text}"
    );
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
}

#[test]
fn every_change_is_planned_as_docker_makes_it_and_leaves_an_empty_plan() {
    let nodes = 3;
    let (p, bed) = sandbox("65", nodes, &["v1", "v2"]);
    let dir = with_changes_fixture(&p);
    p.ok(&["apply", "--auto-approve"]);
    assert_clean(&p, "the first apply");
    let manager = manager_node(&p, &bed);

    let started = std::time::Instant::now();
    for row in ROWS {
        for (file, from, to) in row.edits {
            edit(&dir, file, from, to);
        }
        let changes = planned(&p);
        assert!(
            as_predicted(&changes, row.expect),
            "{}: planned {changes:?}, predicted {:?}",
            row.what,
            row.expect
        );
        let run = p.infra(&["apply", "plan.bin"]);
        assert_eq!(run.code, 0, "{}: apply failed:\n{}", row.what, run.all());
        assert_clean(&p, row.what);
    }
    eprintln!(
        "{} changes planned as predicted, applied, then an empty plan, in {:?}",
        ROWS.len(),
        started.elapsed()
    );

    // Another application entirely, and back: one apply each.
    let matrix_end = std::fs::read_to_string(dir.join("compose.yml")).unwrap();
    std::fs::copy(dir.join("other.yml"), dir.join("compose.yml")).unwrap();
    let plan = p.ok(&["plan"]);
    assert!(
        plan.stdout.contains("# swarm.service.web must be replaced")
            && plan.stdout.contains("mode cannot change in place (Docker"),
        "{}",
        plan.stdout
    );
    p.ok(&["apply", "--auto-approve"]);
    assert_clean(&p, "swapping in another compose file");
    let listed = |what: &str| {
        docker(
            &bed,
            manager,
            &format!("{what} ls --format '{{{{.Name}}}}'"),
        )
        .lines()
        .filter(|n| n.starts_with("sandbox_") || !what.starts_with("service"))
        .map(str::to_string)
        .collect::<BTreeSet<String>>()
    };
    assert_eq!(
        listed("service"),
        BTreeSet::from(["sandbox_cache", "sandbox_socket", "sandbox_web"].map(String::from))
    );
    let networks = listed("network");
    assert!(
        !networks.contains("sandbox_back") && networks.contains("sandbox_kv"),
        "{networks:?}"
    );
    std::fs::write(dir.join("compose.yml"), &matrix_end).unwrap();
    p.ok(&["apply", "--auto-approve"]);
    assert_clean(&p, "swapping the first compose file back");
    assert_eq!(
        listed("service"),
        BTreeSet::from(["sandbox_app", "sandbox_web"].map(String::from))
    );
    let networks = listed("network");
    for gone in ["sandbox_kv", "sandbox_proxy", "sandbox_socket"] {
        assert!(
            !networks.contains(gone),
            "{gone} is still listed: {networks:?}"
        );
    }

    // A service Docker could not update: apply fails, the plan says so, a fixed cause converges.
    edit(
        &dir,
        "compose.yml",
        "    volumes: [data:/data]\n",
        "    volumes: [data:/data, /srv/app-data:/srv]\n",
    );
    edit(
        &dir,
        "compose.yml",
        "monitor: 1s, parallelism: 2}",
        "monitor: 1s, failure_action: pause}",
    );
    let run = p.infra(&["apply", "--auto-approve"]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stderr.contains("Docker paused it"), "{}", run.stderr);
    let plan = p.infra(&["plan", "--detailed-exitcode"]);
    assert_eq!(
        plan.code,
        2,
        "a paused service is a change:\n{}",
        plan.all()
    );
    assert!(
        plan.stdout.contains("~ state") && plan.stdout.contains("update paused"),
        "{}",
        plan.stdout
    );
    for node in 1..=nodes {
        bed.sh(node, "mkdir -p /srv/app-data");
    }
    let run = p.ok(&["apply", "--auto-approve"]);
    assert!(run.stdout.contains("swarm.service.app"), "{}", run.stdout);
    assert_clean(&p, "the paused service was tried again");

    // A service that never converges (no node may run its task) fails the apply once
    // converge_timeout has passed, naming it and what Docker says; gone, the stack is clean.
    let stack = std::fs::read_to_string(p.stack_file()).unwrap();
    std::fs::write(
        p.stack_file(),
        stack.replace("converge_timeout = \"3m\"", "converge_timeout = \"20s\""),
    )
    .unwrap();
    let stuck = "services:\n  stuck:\n    image: registry.test:5000/infra-demo:v1\n    deploy:\n      placement:\n        constraints: [\"node.labels.nowhere == true\"]\n";
    edit(&dir, "compose.yml", "services:\n", stuck);
    let run = p.infra(&["apply", "--auto-approve"]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stderr.contains("swarm.service.stuck")
            && run
                .stderr
                .contains("did not converge within 20s (0 of 1 tasks running)"),
        "{}",
        run.stderr
    );
    let plan = p.infra(&["plan", "--detailed-exitcode"]);
    assert_eq!(
        plan.code,
        2,
        "a service short of tasks is a change:\n{}",
        plan.all()
    );
    edit(&dir, "compose.yml", stuck, "services:\n");
    p.ok(&["apply", "--auto-approve"]);
    assert_clean(&p, "the service that never converged removed");
}
