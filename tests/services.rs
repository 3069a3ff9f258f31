//! Services, secrets and zero-downtime deploys end to end, on the sandbox stack itself
//! (stacks/sandbox.toml): moto plays AWS, testbed nodes play the instances, the ALB data plane
//! serves the load balancer, and a bounded request loop goes through it over HTTPS. Needs root.

mod support;

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
