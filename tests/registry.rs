//! Private images that keep pulling: the sandbox stack running its demo from the stack's ECR
//! repository, on the world's ECR (a registry that takes only tokens the emulated
//! GetAuthorizationToken issued, here valid 90 s) and IMDSv2 (role credentials only for an
//! instance with a profile). After the tokens the deploy stored have expired, a new node and a
//! node emptied of the image start their tasks with no new apply; a container does not get the
//! metadata service's token at hop limit 1; a node without the profile cannot pull. Checked with
//! the nodes' own `docker` and boto3. Needs root.

mod support;

use std::time::{Duration, Instant};

use support::{Image, Project, Registry, Testbed, manager_node, sandbox_in};

const REGISTRY: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
/// The world's token lifetime here (ECR's is 12 h).
const TOKEN_SECONDS: u64 = 90;

fn docker(bed: &Testbed, node: usize, command: &str) -> String {
    bed.sh(node, &format!("docker {command}"))
}

/// Waits (bounded) until `done` holds.
fn eventually(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "not within {limit:?}: {what}");
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// The sandbox as `scripts/sandbox up` has it: its image in the stack's repository
/// `infra-demo`.
fn registry_sandbox() -> (Project, Testbed) {
    let p = Project::with_proxy_args(
        "sandbox",
        2,
        &["--ecr-token-seconds", &TOKEN_SECONDS.to_string()],
    );
    let (p, bed) = sandbox_in(p, "66", 4, &[], Image::Docker, Registry::Ecr);
    // Renewed every minute: the tokens here last 90 s. The services log to CloudWatch Logs.
    let stack = std::fs::read_to_string(p.stack_file()).unwrap().replace(
        "repositories = [\"infra-demo\"]\n",
        "repositories = [\"infra-demo\"]\ncredentials_refresh = \"1m\"\n\n[logging]\ndriver = \"awslogs\"\nretention_days = 7\n",
    );
    std::fs::write(p.stack_file(), stack).unwrap();
    (p, bed)
}

/// Every secret value the world handed out: registry tokens and instance role keys.
fn issued_secrets(p: &Project) -> Vec<String> {
    let mut found = Vec::new();
    for dir in ["ecr-tokens", "instance-credentials"] {
        let Ok(entries) = std::fs::read_dir(p.moto.world.join(dir)) else {
            continue;
        };
        for e in entries {
            let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
            if dir == "ecr-tokens" {
                found.push(text.lines().nth(1).unwrap().to_string());
            } else {
                let v: serde_json::Value = serde_json::from_str(&text).unwrap();
                found.push(v["secret"].as_str().unwrap().to_string());
            }
        }
    }
    found
}

#[test]
fn ecr_images_keep_pulling_after_the_token_expires() {
    let (p, bed) = registry_sandbox();
    let mut outputs = Vec::new();

    // An image in a repository that is not the stack's: the nodes' role may not pull it.
    let stack = std::fs::read_to_string(p.stack_file()).unwrap();
    std::fs::write(p.stack_file(), stack.replace("/infra-demo:", "/other:")).unwrap();
    let refused = p.infra(&["plan"]);
    assert!(
        refused.code == 1
            && refused.stderr.contains(&format!(
                "web pulls {REGISTRY}/other:v1, but the nodes' role infra-sandbox-nodes may pull only from the stack's repositories (its policy infra-nodes allows ecr:BatchGetImage on infra-demo)"
            )),
        "{}",
        refused.all()
    );
    std::fs::write(p.stack_file(), stack).unwrap();

    // The repository first; the image it will hold is named at plan until it is pushed.
    let run = p.ok(&["apply", "--registry-only", "--auto-approve"]);
    outputs.push(run.all());
    assert!(run.stdout.contains("Resources: 1 added"), "{}", run.stdout);
    let id = p.aws(&["identity", "sandbox"]);
    assert_eq!(
        id["repositories"]["infra-demo"]["uri"],
        format!("{REGISTRY}/infra-demo")
    );
    let missing = p.infra(&["plan"]);
    assert!(
        missing.code == 1
            && missing.stderr.contains(&format!(
                "{REGISTRY}/infra-demo:v1 is not in ECR (repository infra-demo has no tag v1); used by web"
            )),
        "{}",
        missing.all()
    );
    bed.push_to_ecr(&p, "infra-demo", "v1", "v1");

    let run = p.ok(&["apply", "--auto-approve"]);
    outputs.push(run.all());
    let id = p.aws(&["identity", "sandbox"]);
    for (address, i) in id["instances"].as_object().unwrap() {
        assert_eq!(i["profile"], id["profile"]["arn"], "{address}");
        assert_eq!(i["tokens"], "required", "{address}");
        assert_eq!(i["hop_limit"], 1, "{address}");
    }
    let manager = manager_node(&p, &bed);
    let image = docker(
        &bed,
        manager,
        "service inspect sandbox_web --format '{{.Spec.TaskTemplate.ContainerSpec.Image}}'",
    );
    assert!(
        image.starts_with(&format!("{REGISTRY}/infra-demo:v1")),
        "{image}"
    );
    let running = || {
        docker(
            &bed,
            manager,
            "service ps sandbox_web --filter desired-state=running --format '{{.Node}} {{.CurrentState}}'",
        )
    };
    assert_eq!(
        running().lines().filter(|l| l.contains("Running")).count(),
        3,
        "{}",
        running()
    );

    outputs.extend(logs_in_cloudwatch(&p, &bed, manager));

    // Past the lifetime of every token the deploy stored: the leader renewed them.
    std::thread::sleep(Duration::from_secs(TOKEN_SECONDS + 10));
    let renewed = bed.sh(manager, "cat /var/log/infra-registry-credentials.log");
    assert!(renewed.contains("renewed sandbox_web"), "{renewed}");

    // A new node pulls with the stored credentials: no apply on the Swarm's behalf.
    let run = p.ok(&["scale-nodes", "3", "--auto-approve"]);
    outputs.push(run.all());
    eventually("4 web tasks running", Duration::from_secs(120), || {
        running().lines().filter(|l| l.contains("Running")).count() == 4
    });

    // A node emptied of the image pulls it again when its task comes back.
    let worker = bed.node_of(&p.id_of("node.worker[0]"));
    let hostname = bed.sh(worker, "docker info --format '{{.Name}}'");
    std::thread::sleep(Duration::from_secs(TOKEN_SECONDS));
    docker(
        &bed,
        manager,
        &format!("node update --availability drain {hostname}"),
    );
    eventually(
        "the drained node's task gone",
        Duration::from_secs(60),
        || {
            bed.sh(worker, "docker ps -q --filter name=sandbox_web")
                .is_empty()
        },
    );
    docker(
        &bed,
        worker,
        &format!("image rm -f $(docker image ls -q {REGISTRY}/infra-demo)"),
    );
    docker(
        &bed,
        manager,
        &format!("node update --availability active {hostname}"),
    );
    eventually(
        "the task back on the emptied node",
        Duration::from_secs(120),
        || {
            !bed.sh(worker, "docker ps -q --filter name=sandbox_web")
                .is_empty()
        },
    );

    // The world is strict: a node's own pull works with its role, and not without the profile.
    let pull = format!("HOME=/root docker pull -q {REGISTRY}/infra-demo:v1 2>&1; echo rc=$?");
    let with_role = bed.sh(worker, &pull);
    assert!(with_role.ends_with("rc=0"), "{with_role}");

    // IMDSv2's token reaches the node (hop limit 1), not a container, one hop further behind
    // Docker's bridge; with a hop limit of 2 it does. An answer dropped on the way never
    // comes, and busybox `nc -w` bounds only the connect: `timeout` bounds the wait.
    let token_in_a_container = || {
        bed.sh(
            worker,
            &format!(
                "timeout 60 docker run --rm {REGISTRY}/infra-demo:v1 sh -c 'printf \"PUT /latest/api/token HTTP/1.0\\r\\nX-aws-ec2-metadata-token-ttl-seconds: 60\\r\\n\\r\\n\" | timeout 10 nc -w 5 169.254.169.254 80' 2>&1; true"
            ),
        )
    };
    let at_one_hop = token_in_a_container();
    assert!(!at_one_hop.contains("200 OK"), "{at_one_hop}");
    p.aws(&["hop-limit", "sandbox", "node.worker[0]", "2"]);
    std::thread::sleep(Duration::from_secs(3));
    let at_two_hops = token_in_a_container();
    assert!(at_two_hops.contains("200 OK"), "{at_two_hops}");
    p.aws(&["remove-profile", "sandbox", "node.worker[0]"]);
    std::thread::sleep(Duration::from_secs(3));
    bed.sh(
        worker,
        &format!("docker image rm -f {REGISTRY}/infra-demo:v1 >/dev/null 2>&1; true"),
    );
    let without = bed.sh(worker, &pull);
    assert!(!without.ends_with("rc=0"), "{without}");

    // No token or role key in anything infra printed or kept.
    let state = std::fs::read_to_string(p.state_file()).unwrap();
    let secrets = issued_secrets(&p);
    assert!(secrets.len() >= 3, "{secrets:?}");
    for s in &secrets {
        for (n, out) in outputs.iter().chain([&state]).enumerate() {
            assert!(!out.contains(s.as_str()), "an issued secret in output {n}");
        }
    }
}

/// With `[logging] driver = "awslogs"`: the stack's log group (tagged, its retention set), each
/// task's lines in its own stream, written by Docker with the node's role (the world refuses
/// a role whose policy does not allow it), and `infra logs` reading them back as Docker would
/// print them, each line naming its node and task. Checked with boto3 and the node's docker.
fn logs_in_cloudwatch(p: &Project, bed: &Testbed, manager: usize) -> Vec<String> {
    let started = "demo v1 serving on port(s) 3000";
    let mut group = serde_json::Value::Null;
    eventually(
        "3 tasks' lines in CloudWatch",
        Duration::from_secs(60),
        || {
            group = p.aws(&["log-group", "/infra/sandbox"]);
            group["events"]
                .as_array()
                .is_some_and(|e| e.iter().filter(|e| e["message"] == started).count() == 3)
        },
    );
    assert_eq!(group["retention"], 7, "{group}");
    assert_eq!(group["tags"]["infra:stack"], "sandbox", "{group}");
    // A line only CloudWatch has (Docker's own reader shows the nodes' local copies): infra
    // reads the lines where they outlive their nodes.
    let stream = group["events"][0]["stream"].as_str().unwrap().to_string();
    p.aws(&[
        "put-log-line",
        "/infra/sandbox",
        &stream,
        "only in cloudwatch",
    ]);
    let own = bed.sh(manager, "docker service logs sandbox_web 2>&1; true");
    assert!(!own.contains("only in cloudwatch"), "{own}");
    let group = p.aws(&["log-group", "/infra/sandbox"]);

    let logs = p.ok(&["logs", "web"]);
    assert!(
        logs.stdout.contains("only in cloudwatch"),
        "{}",
        logs.stdout
    );
    let tasks = docker(
        bed,
        manager,
        "service ps sandbox_web --no-trunc --format '{{.ID}} {{.Node}}'",
    );
    let mut printed = Vec::new();
    for line in logs.stdout.lines() {
        let (head, message) = line.split_once(" | ").unwrap_or_else(|| panic!("{line}"));
        let words: Vec<&str> = head.split_whitespace().collect();
        let [_, node, task] = words[..] else {
            panic!("{line}")
        };
        let id = task.rsplit('.').next().unwrap();
        let host = tasks
            .lines()
            .find(|l| l.starts_with(id))
            .and_then(|l| l.split_once(' '))
            .map(|(_, h)| h.to_string())
            .unwrap_or_else(|| panic!("no task {id}: {tasks}"));
        let node_host = bed.sh(bed.node_of(&p.id_of(node)), "hostname");
        assert_eq!(host, node_host, "{line}");
        printed.push((id.to_string(), message.to_string()));
    }
    let mut stored: Vec<(String, String)> = group["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let stream = e["stream"].as_str().unwrap();
            let id = stream.rsplit('.').next().unwrap();
            (
                id[..12].to_string(),
                e["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    printed.sort();
    stored.sort();
    assert_eq!(printed, stored, "infra logs and CloudWatch Logs differ");

    // No manager answers (its sshd stopped: a manager lost): the same lines, from CloudWatch
    // alone, their nodes unknown.
    bed.run("sshd-stop", &[&manager.to_string()]);
    let blind = p.infra(&["logs", "web"]);
    bed.run("sshd-start", &[&manager.to_string()]);
    assert_eq!(blind.code, 0, "{}", blind.all());
    assert!(
        blind
            .stderr
            .contains("warning: no Swarm manager answers (node.manager[0] (no SSH) unreachable): the lines' nodes are shown as -"),
        "{}",
        blind.stderr
    );
    let unnamed = |out: &str, keep_node: bool| -> Vec<String> {
        out.lines()
            .map(|l| {
                let (head, message) = l.split_once(" | ").unwrap_or_else(|| panic!("{l}"));
                let words: Vec<&str> = head.split_whitespace().collect();
                let node = if keep_node { words[1] } else { "-" };
                format!("{} {node} {} | {message}", words[0], words[2])
            })
            .collect()
    };
    let seen = unnamed(&blind.stdout, true);
    for line in unnamed(&logs.stdout, false) {
        assert!(seen.contains(&line), "{line} missing:\n{}", blind.stdout);
    }
    vec![logs.all(), blind.all()]
}
