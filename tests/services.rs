//! Services, secrets and zero-downtime deploys end to end, on the sandbox stack itself
//! (stacks/sandbox.toml): moto plays AWS, testbed nodes play the instances, the ALB data plane
//! serves the load balancer, and a bounded request loop goes through it over HTTPS. Needs root.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use support::traffic::Traffic;
use support::{files_under, sandbox, serves, targets};

use support::GREETING_V1;
const GREETING_V2: &str = "s3cr3t-greeting-TWO-91ac";

/// Samples every process's command line while `f` runs; returns what `f` returned and the lines.
fn watching_ps<T>(f: impl FnOnce() -> T) -> (T, String) {
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut seen = String::new();
            while !stop.load(Ordering::Relaxed) {
                let out = std::process::Command::new("ps")
                    .args(["-eo", "args"])
                    .output()
                    .unwrap();
                seen.push_str(&String::from_utf8_lossy(&out.stdout));
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            seen
        })
    };
    let result = f();
    stop.store(true, Ordering::Relaxed);
    (result, sampler.join().unwrap())
}

#[test]
fn services_roll_without_dropping_a_request_roll_back_and_rotate_secrets() {
    let nodes = 3;
    let (mut p, bed) = sandbox("46", nodes, &["v1", "v2", "v3"]);
    let mut outputs = Vec::new();

    // v1 from nothing: the cloud, the Swarm, the secret and the service; every node serves it.
    let run = p.ok(&["apply", "--auto-approve"]);
    outputs.push(run.all());
    assert!(
        run.stdout.contains("swarm.service.web: Creation complete"),
        "{}",
        run.stdout
    );
    for t in targets(bed.id, nodes) {
        serves(t, "demo v1 secret-sha256=");
    }
    let plan = p.infra(&["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "a clean plan after apply:\n{}", plan.all());
    // The health check as Docker holds it: checked every second while a task
    // starts, every 5 s once it runs.
    let manager = bed.node_of(&p.id_of("node.manager[0]"));
    let health = bed.sh(
        manager,
        "docker service inspect sandbox_web --format '{{with .Spec.TaskTemplate.ContainerSpec.Healthcheck}}{{.StartInterval}} {{.StartPeriod}} {{.Interval}} {{.Timeout}} {{.Retries}}{{end}}'",
    );
    assert_eq!(health, "1s 3s 5s 5s 3");
    let status = p.ok(&["status"]);
    assert!(
        status.stdout.contains("sandbox_web") && status.stdout.contains("3/3"),
        "{}",
        status.stdout
    );

    // v2 while the request loop runs: not one request fails.
    let traffic = Traffic::start(&bed.load_balancer(&p));
    std::thread::sleep(std::time::Duration::from_secs(2));
    let plan = p.ok(&["plan", "--var", "tag=v2"]);
    assert!(
        plan.stdout.contains("~ swarm.service.web"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .contains(r#"image             = "registry.test:5000/infra-demo:v1" -> "registry.test:5000/infra-demo:v2""#),
        "{}",
        plan.stdout
    );
    let run = p.ok(&["apply", "--auto-approve", "--var", "tag=v2"]);
    outputs.push(run.all());
    for t in targets(bed.id, nodes) {
        serves(t, "demo v2");
    }
    let tally = traffic.tally();
    assert!(
        tally.failed.is_empty(),
        "failed during the v2 rollout: {:?}",
        tally.failed
    );

    // v3 never gets healthy: Docker rolls back to v2, apply fails naming the service, and the
    // requests keep succeeding.
    let run = p.infra(&["apply", "--auto-approve", "--var", "tag=v3"]);
    outputs.push(run.all());
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stderr.contains(
            "swarm.service.web (sandbox_web): the update failed and Docker rolled the service back"
        ),
        "{}",
        run.stderr
    );
    for t in targets(bed.id, nodes) {
        serves(t, "demo v2");
    }
    let plan = p.infra(&["plan", "--detailed-exitcode", "--var", "tag=v2"]);
    assert_eq!(
        plan.code,
        0,
        "after the rollback the Swarm runs v2:\n{}",
        plan.all()
    );

    // Day two, on the v2 that Docker rolled back to: logs, details and exec, each checked
    // against the nodes' own docker.
    outputs.extend(logs_details_and_exec(&p, &bed, manager));

    // A new secret value: a new Swarm secret, the service rolls onto it, the old one goes.
    p.env[1].1 = GREETING_V2.into();
    let plan = p.ok(&["plan", "--var", "tag=v2"]);
    outputs.push(plan.all());
    assert!(
        plan.stdout.contains("value = (sensitive value changed)"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("+ swarm.secret.greeting_"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("- swarm.secret.greeting_"),
        "{}",
        plan.stdout
    );
    let json = p.ok(&["plan", "--json", "--var", "tag=v2", "--out", "rotate.plan"]);
    outputs.push(json.all());
    let (run, ps) = watching_ps(|| p.infra(&["apply", "--var", "tag=v2", "-v", "rotate.plan"]));
    assert_eq!(run.code, 0, "{}", run.all());
    outputs.push(run.all());
    let sha = |v: &str| {
        use std::fmt::Write;
        let digest = std::process::Command::new("sh")
            .args(["-c", "printf %s \"$V\" | sha256sum"])
            .env("V", v)
            .output()
            .unwrap();
        let mut s = String::new();
        write!(s, "{}", &String::from_utf8_lossy(&digest.stdout)[..12]).unwrap();
        s
    };
    for t in targets(bed.id, nodes) {
        serves(t, &format!("demo v2 secret-sha256={}", sha(GREETING_V2)));
    }
    let secrets = bed.sh(manager, "docker secret ls --format '{{.Name}}'");
    assert_eq!(
        secrets.lines().count(),
        1,
        "the old Swarm secret is removed: {secrets}"
    );

    let tally = traffic.stop();
    assert!(
        tally.failed.is_empty(),
        "failed requests: {:?}",
        tally.failed
    );
    assert!(tally.ok > 100, "the loop ran: {tally:?}");
    eprintln!(
        "request loop through the load balancer: {} ok, 0 failed in {:?}; served: {:?}",
        tally.ok, tally.elapsed, tally.bodies
    );

    // The stored secret is a SecureString holding the current value.
    let stored = p.aws(&["ssm-get", "/infra/sandbox/secrets/greeting"]);
    assert_eq!(
        (stored["value"].as_str(), stored["type"].as_str()),
        (Some(GREETING_V2), Some("SecureString"))
    );
    let mut secrets = vec![GREETING_V1.to_string(), GREETING_V2.to_string()];
    for role in ["worker", "manager"] {
        let token = p.aws(&["ssm-get", &format!("/infra/sandbox/swarm/{role}-token")]);
        secrets.push(token["value"].as_str().unwrap().to_string());
    }

    outputs.extend(doctor(&p, &bed, manager));

    // The end of the lifecycle: everything goes, the secrets and tokens with it.
    let run = p.ok(&["destroy", "--auto-approve", "-v"]);
    outputs.push(run.all());

    // No value or token is anywhere infra wrote or showed (state, backups, plan files, output
    // and debug logs), nor in any process's arguments sampled during the rotation.
    let mut written = outputs.join("\n");
    written.push_str(&ps);
    for entry in files_under(&p.dir.path().join("state"))
        .into_iter()
        .chain([p.dir.path().join("rotate.plan")])
    {
        written.push_str(&String::from_utf8_lossy(&std::fs::read(entry).unwrap()));
    }
    for value in &secrets {
        assert!(
            !written.contains(value.as_str()),
            "a secret value or join token leaked"
        );
    }
}

/// The testbed node's hostname (what Docker names the node) of each node address infra names.
fn hostnames(p: &support::Project, bed: &support::Testbed) -> BTreeMap<String, String> {
    ["node.manager[0]", "node.worker[0]", "node.worker[1]"]
        .iter()
        .map(|a| (a.to_string(), bed.sh(bed.node_of(&p.id_of(a)), "hostname")))
        .collect()
}

/// `infra logs`, `infra details` and `infra exec` on the running stack; returns what they
/// printed (for the leak check).
fn logs_details_and_exec(
    p: &support::Project,
    bed: &support::Testbed,
    manager: usize,
) -> Vec<String> {
    let mut outputs = Vec::new();
    let hostname = hostnames(p, bed);
    // The tasks as the manager's own docker lists them: id → node hostname.
    let docker_tasks: BTreeMap<String, String> = bed
        .sh(
            manager,
            "docker service ps sandbox_web --no-trunc --format '{{.ID}} {{.Node}}'",
        )
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(id, node)| (id.to_string(), node.to_string()))
        .collect();

    // Every task's lines (v1, v2, and v3's complaint on stderr that made Swarm roll it back),
    // in time order, each naming the node that ran it and the task.
    let logs = p.ok(&["logs", "web"]);
    outputs.push(logs.all());
    assert!(
        logs.stdout
            .contains("demo v3: broken build, /health will never answer"),
        "{}",
        logs.stdout
    );
    let mut seen = Vec::new();
    let mut last = String::new();
    for line in logs.stdout.lines() {
        let (head, message) = line.split_once(" | ").unwrap_or_else(|| panic!("{line}"));
        let words: Vec<&str> = head.split_whitespace().collect();
        let [time, node, task] = words[..] else {
            panic!("{line}")
        };
        assert!(time >= last.as_str(), "out of time order at {line}");
        last = time.to_string();
        let id = task.rsplit('.').next().unwrap();
        let (full, host) = docker_tasks
            .iter()
            .find(|(full, _)| full.starts_with(id))
            .unwrap_or_else(|| panic!("task {id} is not sandbox_web's: {line}"));
        assert_eq!(
            &hostname[node], host,
            "task {full} ran on {host}, not {node}"
        );
        seen.push((id.to_string(), message.to_string()));
    }
    // Line for line what the node's own docker prints.
    let own = bed.sh(manager, "docker service logs --no-trunc sandbox_web 2>&1");
    let mut own: Vec<(String, String)> = own
        .lines()
        .filter_map(|l| {
            let (context, message) = l.split_once(" | ")?;
            let (task, _) = context.trim().rsplit_once('@')?;
            let id = task.rsplit('.').next()?;
            Some((id[..12].to_string(), message.to_string()))
        })
        .collect();
    own.sort();
    seen.sort();
    assert_eq!(seen, own, "infra logs and docker service logs differ");

    // --tail and --task: the last line of one task.
    let (task_id, _) = docker_tasks.iter().next().unwrap();
    let one = p.ok(&["logs", "web", "--task", task_id, "--tail", "1"]);
    assert_eq!(one.stdout.lines().count(), 1, "{}", one.stdout);
    assert!(one.stdout.contains(&task_id[..12]), "{}", one.stdout);

    // details: what Docker runs, where, and how the load balancer sees each node (once the
    // tasks that the rollback restarted pass its health checks again).
    let target_group = p.dump()["target_groups"][0]["arn"]
        .as_str()
        .unwrap()
        .to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    let health = loop {
        let health = p.aws(&["target-health", &target_group]);
        let states: Vec<&str> = health
            .as_object()
            .unwrap()
            .values()
            .filter_map(|h| h["state"].as_str())
            .collect();
        if states.len() == 3 && states.iter().all(|s| *s == "healthy") {
            break health;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "targets never healthy: {health}"
        );
        std::thread::sleep(std::time::Duration::from_secs(1));
    };
    let details = p.ok(&["details", "--json"]);
    outputs.push(details.all());
    let doc: serde_json::Value = serde_json::from_str(&details.stdout).unwrap();
    let web = &doc["services"][0];
    let inspect = bed.sh(
        manager,
        "docker service inspect sandbox_web --format '{{.Spec.TaskTemplate.ContainerSpec.Image}} {{.UpdateStatus.State}}'",
    );
    let (image, update) = inspect.split_once(' ').unwrap();
    assert_eq!(web["name"], "sandbox_web");
    assert_eq!(web["image"].as_str(), image.split('@').next());
    assert_eq!(web["update_state"].as_str(), Some(update));
    assert_eq!(
        (web["running"].as_u64(), web["desired"].as_u64()),
        (Some(3), Some(3))
    );
    let running: BTreeMap<String, String> = bed
        .sh(
            manager,
            "docker service ps sandbox_web --no-trunc --filter desired-state=running --format '{{.ID}} {{.Node}}'",
        )
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(id, node)| (id.to_string(), node.to_string()))
        .collect();
    let tasks = web["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), running.len(), "{web:#}");
    for t in tasks {
        let node = t["node"].as_str().unwrap();
        assert_eq!(
            running.get(t["task"].as_str().unwrap()),
            Some(&hostname[node]),
            "{t:#}"
        );
        let instance = p.id_of(node);
        assert_eq!(
            t["target_health"]["3000"].as_str(),
            health[&instance]["state"].as_str(),
            "{t:#}"
        );
    }
    let text = p.ok(&["details"]);
    outputs.push(text.all());
    assert!(
        text.stdout.contains(&format!(
            "sandbox_web  3/3 tasks (global)  last update: {update}"
        )),
        "{}",
        text.stdout
    );

    // exec: in a running task, on its node; the command's exit code is infra's.
    let version = p.ok(&["exec", "web", "--", "cat", "/version"]);
    outputs.push(version.all());
    assert_eq!(version.stdout.trim(), "demo v2");
    let (_, on) = version.stderr.trim().split_once(" on ").unwrap();
    let node = on.split_whitespace().next().unwrap();
    // Docker names a container's host after the container.
    let container = p.ok(&["exec", "web", "--", "cat", "/etc/hostname"]);
    let own = bed.sh(
        bed.node_of(&p.id_of(node)),
        "docker ps -q --filter label=com.docker.swarm.service.name=sandbox_web",
    );
    assert_eq!(container.stdout.trim(), own, "the task on {node}");
    let failed = p.infra(&["exec", "web", "--", "sh", "-c", "exit 3"]);
    assert_eq!(failed.code, 3, "{}", failed.all());
    // Words reach the command as they were typed, not through a shell.
    let words = p.ok(&["exec", "web", "--", "echo", "a  b", "$HOME", "'c'"]);
    assert_eq!(words.stdout, "a  b $HOME 'c'\n");
    // A terminal only with -i (here `script` plays the user's terminal).
    let plain = p.ok(&[
        "exec",
        "web",
        "--",
        "sh",
        "-c",
        "[ -t 1 ] || echo no-terminal",
    ]);
    assert_eq!(plain.stdout.trim(), "no-terminal");
    let tty = p
        .command("script")
        .args([
            "-qec",
            "infra exec -i web -- sh -c '[ -t 0 ] && [ -t 1 ] && echo on-a-terminal'",
            "/dev/null",
        ])
        .env("PATH", path_with_infra())
        .output()
        .unwrap();
    let tty_out = String::from_utf8_lossy(&tty.stdout);
    assert!(tty_out.contains("on-a-terminal"), "{tty_out}");

    // logs -f: a line written now arrives while it follows; Ctrl-C ends it.
    let follow = p
        .command(env!("CARGO_BIN_EXE_infra"))
        .args(["logs", "web", "-f", "--since", "1s"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(5));
    p.ok(&[
        "exec",
        "web",
        "--",
        "sh",
        "-c",
        "echo followed-line > /proc/1/fd/1",
    ]);
    std::thread::sleep(std::time::Duration::from_secs(3));
    let pid = follow.id().to_string();
    std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    let out = follow.wait_with_output().unwrap();
    let followed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{followed}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(followed.contains("followed-line"), "{followed}");
    outputs
}

/// PATH with the infra under test first.
fn path_with_infra() -> String {
    let dir = std::path::Path::new(env!("CARGO_BIN_EXE_infra"))
        .parent()
        .unwrap();
    format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// `infra doctor`: clean on the sandbox, then it finds the faults planted behind infra's back.
fn doctor(p: &support::Project, bed: &support::Testbed, manager: usize) -> Vec<String> {
    let clean = p.infra(&["doctor"]);
    assert_eq!(clean.code, 0, "{}", clean.all());
    let engine = bed.sh(manager, "docker version --format '{{.Server.Version}}'");
    assert!(
        clean
            .stdout
            .contains(&format!("docker engine        {engine} on every node")),
        "{}",
        clean.stdout
    );
    // Planted behind infra's back: a Swarm port closed in the nodes' group, a worker whose
    // operator upgraded Docker by hand (apt, from the next Debian suite), and a service that
    // says (as a compose file's deploy.labels would) it closes idle connections after 5 s.
    p.aws(&[
        "revoke",
        "sandbox",
        "infra-sandbox-node",
        "udp",
        "7946",
        "self",
    ]);
    let worker = bed.node_of(&p.id_of("node.worker[1]"));
    let upgraded = bed.run("docker-upgrade", &[&worker.to_string()]);
    let upgraded = upgraded.trim();
    assert_ne!(upgraded, engine, "the next suite's Engine differs");
    // The restarted engine rejoins; doctor's member check must not be what fails.
    let ready = support::healthy(1, 2);
    for _ in 0..60 {
        if support::members(p, bed) == ready {
            break;
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
    assert_eq!(support::members(p, bed), ready);
    bed.sh(
        manager,
        "docker service update --detach --label-add infra.keep-alive=5s sandbox_web >/dev/null",
    );
    let found = p.infra(&["doctor", "--json"]);
    assert_eq!(found.code, 1, "{}", found.all());
    let doc: serde_json::Value = serde_json::from_str(&found.stdout).unwrap();
    let failed: Vec<(&str, &str)> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["level"] == "fail")
        .map(|f| (f["check"].as_str().unwrap(), f["detail"].as_str().unwrap()))
        .collect();
    assert_eq!(failed.len(), 3, "{doc:#}");
    assert!(
        failed[0].0 == "swarm ports" && failed[0].1.contains("7946/udp"),
        "{doc:#}"
    );
    let odd = format!("node.worker[1] runs {upgraded} (the others {engine})");
    assert!(
        failed[1].0 == "docker engine" && failed[1].1 == odd,
        "{odd}\n{doc:#}"
    );
    assert!(
        failed[2].0 == "keep-alive"
            && failed[2]
                .1
                .starts_with("sandbox_web keeps idle connections 5 s, the load balancer 60 s"),
        "{doc:#}"
    );
    vec![clean.all(), found.all()]
}
