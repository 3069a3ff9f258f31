//! The load balancer as users meet it: HTTPS through the ALB data plane (tests/world/alb, HAProxy
//! configured from what the stack created in moto), target health that is real, and the changes
//! that keep it serving. Moto plays AWS, testbed nodes play the instances. Needs root.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::traffic::Traffic;
use support::{Project, Testbed, sandbox};

/// Waits (bounded) until `check` holds.
fn wait_until(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// `infra status --json`'s target health of each node, by address.
fn target_health(p: &Project) -> Vec<(String, String)> {
    let status = p.ok(&["status", "--json"]);
    let status: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    status["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            let health = n["target_health"].as_str().unwrap_or("none").to_string();
            (n["address"].as_str().unwrap().to_string(), health)
        })
        .collect()
}

/// `openssl s_client` against the load balancer with one protocol version; its exit code and
/// output. The client allows the old versions (SECLEVEL=0), so a refusal is the server's.
fn handshake(bed: &Testbed, host: &str, version: &str) -> (bool, String) {
    let out = Command::new("openssl")
        .args(["s_client", "-connect", &format!("10.77.{}.2:443", bed.id)])
        .args([
            "-servername",
            host,
            version,
            "-cipher",
            "DEFAULT@SECLEVEL=0",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = support::printed(&out);
    (out.status.success(), text)
}

#[test]
fn https_through_the_load_balancer_with_its_certificate_redirect_and_forwarding_headers() {
    let (p, bed) = sandbox("55", 3, &["v1"]);
    p.ok(&["apply", "--auto-approve"]);
    let lb = bed.load_balancer(&p);

    // The demo answers through the load balancer, over TLS with the imported certificate.
    let r = lb.get("/", &[]).unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body.starts_with("demo v1 secret-sha256="), "{}", r.body);
    let (ok, text) = handshake(&bed, &lb.host, "-tls1_2");
    assert!(ok, "{text}");
    let served = text
        .split("-----BEGIN CERTIFICATE-----")
        .nth(1)
        .and_then(|t| t.split("-----END CERTIFICATE-----").next())
        .expect("the server's certificate")
        .replace(['\n', '\r'], "");
    let imported = std::fs::read_to_string(p.certificate())
        .unwrap()
        .replace("-----BEGIN CERTIFICATE-----", "")
        .replace("-----END CERTIFICATE-----", "")
        .replace(['\n', '\r'], "");
    assert_eq!(served, imported, "the certificate imported into ACM");
    // The default policy (ELBSecurityPolicy-TLS13-1-2-2021-06) refuses TLS 1.0 and 1.1.
    for old in ["-tls1", "-tls1_1"] {
        let (ok, text) = handshake(&bed, &lb.host, old);
        assert!(
            !ok && text.contains("alert protocol version"),
            "{old}: {text}"
        );
    }
    let (ok, text) = handshake(&bed, &lb.host, "-tls1_3");
    assert!(ok, "{text}");

    // Port 80 answers with a redirect to HTTPS, path and query kept.
    let redirect = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{redirect_url}",
        ])
        .args(["-H", &format!("Host: {}", lb.host)])
        .arg(format!("http://10.77.{}.2/some/path?x=1", bed.id))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&redirect.stdout),
        format!("301 https://{}:443/some/path?x=1", lb.host)
    );

    // The app sees who asked, as an ALB tells it: X-Forwarded-For (appended), -Proto, -Port.
    let r = lb
        .get("/cgi-bin/headers", &[("X-Forwarded-For", "203.0.113.7")])
        .unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    let me = format!("10.77.{}.1", bed.id);
    assert!(
        r.body
            .contains(&format!("x-forwarded-for: 203.0.113.7, {me}\n")),
        "{}",
        r.body
    );
    assert!(r.body.contains("x-forwarded-proto: https\n"), "{}", r.body);
    assert!(r.body.contains("x-forwarded-port: 443\n"), "{}", r.body);
}

#[test]
fn a_node_that_stops_serving_turns_unhealthy_and_no_request_fails() {
    let (p, bed) = sandbox("56", 3, &["v1"]);
    p.ok(&["apply", "--auto-approve"]);
    assert!(
        target_health(&p).iter().all(|(_, h)| h == "healthy"),
        "{:?}",
        target_health(&p)
    );
    let traffic = Traffic::start(&bed.load_balancer(&p));
    std::thread::sleep(Duration::from_secs(2));

    // worker[1]'s task is drained away behind infra's back: it stops serving (it drains first).
    let manager = bed.node_of(&p.id_of("node.manager[0]"));
    let instance = p.id_of("node.worker[1]");
    let hostname = bed.sh(bed.node_of(&instance), "hostname");
    bed.sh(
        manager,
        &format!("docker node update --availability drain {hostname} >/dev/null"),
    );
    let tg = p.dump()["target_groups"][0]["arn"]
        .as_str()
        .unwrap()
        .to_string();
    wait_until(
        "DescribeTargetHealth says unhealthy",
        Duration::from_secs(60),
        || {
            let health = p.aws(&["target-health", &tg]);
            health[&instance]["state"] == "unhealthy"
        },
    );
    // Draining, the demo answers its health check 404; once stopped, nothing answers.
    let health = p.aws(&["target-health", &tg]);
    let reason = health[&instance]["reason"].as_str().unwrap().to_string();
    assert!(
        ["Target.ResponseCodeMismatch", "Target.FailedHealthChecks"].contains(&reason.as_str()),
        "{health}"
    );
    let shown = target_health(&p);
    assert!(
        shown
            .iter()
            .any(|(node, h)| node == "node.worker[1]" && h.starts_with("unhealthy (Target.")),
        "{shown:?}"
    );
    std::thread::sleep(Duration::from_secs(5));
    let tally = traffic.stop();
    assert!(tally.ok > 100, "{tally:?}");
    assert!(tally.failed.is_empty(), "{:?}", tally.failed);
}

#[test]
fn a_replicated_host_mode_service_applies_in_one_run_and_a_new_target_port_takes_over_live() {
    // 2 replicas on 3 nodes, serving on their nodes' own ports 3000 and 3001.
    let (p, bed) = sandbox("57", 3, &["v1"]);
    let compose = r#"
services:
  web:
    image: registry.test:5000/infra-demo:v1
    environment: { DRAIN_SECONDS: "12", PORTS: "3000 3001" }
    stop_grace_period: 25s
    ports:
      - { target: 3000, published: 3000, protocol: tcp, mode: host }
      - { target: 3001, published: 3001, protocol: tcp, mode: host }
    healthcheck:
      test: ["CMD-SHELL", "wget -q -O /dev/null http://127.0.0.1:3000/health"]
      interval: 1s
      timeout: 5s
      retries: 3
    deploy:
      replicas: 2
      update_config: { order: stop-first, delay: 2s, failure_action: rollback }
"#;
    std::fs::write(p.dir.path().join("stacks/compose.yml"), compose).unwrap();
    let stack = std::fs::read_to_string(p.stack_file()).unwrap();
    let services = stack.find("[services.web]").unwrap();
    let stack = stack[..services].replace("[swarm]\n", "[swarm]\ncompose_file = \"compose.yml\"\n");
    std::fs::write(p.stack_file(), &stack).unwrap();

    let run = p.ok(&["apply", "--auto-approve"]);
    assert!(
        run.stdout.contains("targets.3000: Creation complete"),
        "{}",
        run.stdout
    );
    let healthy = target_health(&p)
        .iter()
        .filter(|(_, h)| h == "healthy")
        .count();
    assert_eq!(
        healthy,
        2,
        "two tasks, two healthy targets: {:?}",
        target_health(&p)
    );

    // The target port moves to 3001 while requests flow: a new target group, the listener
    // switched in place once it is healthy, then the old group goes.
    let traffic = Traffic::start(&bed.load_balancer(&p));
    std::thread::sleep(Duration::from_secs(2));
    std::fs::write(
        p.stack_file(),
        stack.replace("target_port = 3000", "target_port = 3001"),
    )
    .unwrap();
    let plan = p.ok(&["plan"]);
    for line in [
        "+ tg.3001 (target_group)",
        "+ targets.3001 (targets)",
        "~ listener.https (listener)",
        "- tg.3000 (target_group)",
        "- targets.3000 (targets)",
    ] {
        assert!(plan.stdout.contains(line), "{line}:\n{}", plan.stdout);
    }
    assert!(!plan.stdout.contains("-/+ listener"), "{}", plan.stdout);
    p.ok(&["apply", "--auto-approve"]);
    std::thread::sleep(Duration::from_secs(2));
    let tally = traffic.stop();
    assert!(tally.ok > 100, "{tally:?}");
    assert!(tally.failed.is_empty(), "{:?}", tally.failed);
    let dump = p.dump();
    let groups: Vec<&str> = dump["target_groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(groups, ["infra-sandbox-3001"]);
    assert_eq!(p.infra(&["plan", "--detailed-exitcode"]).code, 0);
}
