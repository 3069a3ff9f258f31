//! The load balancer as users meet it: HTTPS through the ALB data plane (tests/world/alb, HAProxy
//! configured from what the stack created in moto), target health that is real, and the changes
//! that keep it serving. Moto plays AWS, testbed nodes play the instances. Needs root.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;
use support::traffic::{LoadBalancer, Traffic};
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

    listener_rules_as_an_alb_evaluates_them(&p, &bed, &lb);
}

/// `SERVICE.OPERATION(**args)` with boto3, as a user's script would call it.
fn call(p: &Project, service: &str, operation: &str, args: serde_json::Value) -> serde_json::Value {
    p.aws(&["call", service, operation, &args.to_string()])
}

fn elbv2(p: &Project, operation: &str, args: serde_json::Value) -> serde_json::Value {
    call(p, "elbv2", operation, args)
}

/// The data plane follows whatever listener rules moto holds (added here with boto3): in
/// priority order, the first match wins; host names case-insensitive with wildcards, paths
/// case-sensitive; fixed responses; a forward to a second target group, health-checked at its
/// own timings; the certificate chosen by SNI; the default action when no rule matches.
fn listener_rules_as_an_alb_evaluates_them(p: &Project, bed: &Testbed, lb: &LoadBalancer) {
    let found = elbv2(p, "describe_load_balancers", json!({}));
    let balancer = &found["LoadBalancers"][0];
    let listeners = elbv2(
        p,
        "describe_listeners",
        json!({"LoadBalancerArn": balancer["LoadBalancerArn"]}),
    );
    let https = listeners["Listeners"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["Port"] == 443)
        .unwrap()["ListenerArn"]
        .clone();
    // A group whose targets' port answers nothing: what it serves is the ALB's 503.
    let dead = elbv2(
        p,
        "create_target_group",
        json!({"Name": "dead", "Protocol": "HTTP", "Port": 3999, "VpcId": balancer["VpcId"],
               "HealthCheckIntervalSeconds": 5, "HealthyThresholdCount": 2, "UnhealthyThresholdCount": 2}),
    )["TargetGroups"][0]["TargetGroupArn"]
        .clone();
    let worker = p.id_of("node.worker[0]");
    elbv2(
        p,
        "register_targets",
        json!({"TargetGroupArn": dead, "Targets": [{"Id": worker}]}),
    );
    let fixed = |body: &str| {
        json!([{"Type": "fixed-response", "FixedResponseConfig":
                {"StatusCode": "200", "ContentType": "text/plain", "MessageBody": body}}])
    };
    // Created out of priority order: the order is the priorities', not the calls'.
    for (priority, conditions, actions) in [
        (
            20,
            json!([{"Field": "host-header", "Values": ["*.example.test"]},
                   {"Field": "path-pattern", "Values": ["/v?/*"]}]),
            fixed("versioned"),
        ),
        (
            10,
            json!([{"Field": "host-header", "Values": ["API.example.test"]}]),
            fixed("api"),
        ),
        (
            30,
            json!([{"Field": "path-pattern", "Values": ["/dead/*"]}]),
            json!([{"Type": "forward", "TargetGroupArn": dead}]),
        ),
    ] {
        elbv2(
            p,
            "create_rule",
            json!({"ListenerArn": https, "Priority": priority, "Conditions": conditions, "Actions": actions}),
        );
    }
    // A second certificate on the listener, for *.example.test, from another CA: SNI picks it.
    let names = p.aws(&["import-cert", p.keys().to_str().unwrap(), "*.example.test"]);
    elbv2(
        p,
        "add_listener_certificates",
        json!({"ListenerArn": https, "Certificates": [{"CertificateArn": names["arn"]}]}),
    );
    let ca = std::path::PathBuf::from(names["ca"].as_str().unwrap());
    let at = |host: &str| LoadBalancer::new(host, lb.addr, &ca);
    let answer = |host: &str, path: &str| {
        at(host)
            .get(path, &[])
            .map(|r| (r.status, r.body))
            .unwrap_or_else(|e| (0, e))
    };
    wait_until("the rules are served", Duration::from_secs(20), || {
        answer("api.example.test", "/") == (200, "api".into())
    });
    // Both rules 10 and 20 match; 10 wins. Host names ignore case, paths do not.
    assert_eq!(answer("API.EXAMPLE.TEST", "/v1/x"), (200, "api".into()));
    assert_eq!(
        answer("www.example.test", "/v1/x"),
        (200, "versioned".into())
    );
    let default = answer("www.example.test", "/V1/x");
    assert_eq!(default.0, 404, "no rule: the demo's own 404 {default:?}");
    // The forward to a group with no healthy target: fails open to them all, none answers.
    assert_eq!(answer("www.example.test", "/dead/x").0, 503);
    // Its target checked at its own timings, and failing: unhealthy after 2 checks 5 s apart.
    wait_until(
        "the dead group's target is unhealthy",
        Duration::from_secs(20),
        || p.aws(&["target-health", dead.as_str().unwrap()])[&worker]["state"] == "unhealthy",
    );
    // The default certificate still answers for the load balancer's own name.
    assert_eq!(lb.get("/", &[]).unwrap().status, 200);

    // A fixed 404 as the default action: a host no rule names gets it.
    elbv2(
        p,
        "modify_listener",
        json!({"ListenerArn": https, "DefaultActions": [{"Type": "fixed-response",
               "FixedResponseConfig": {"StatusCode": "404", "ContentType": "text/plain", "MessageBody": "no route"}}]}),
    );
    wait_until(
        "the default action is a fixed 404",
        Duration::from_secs(20),
        || answer("www.example.test", "/") == (404, "no route".into()),
    );
    assert_eq!(answer("api.example.test", "/"), (200, "api".into()));

    // A certificate ACM issues once its DNS validation record is in Route 53, served by SNI
    // with the key the world's ACM kept, verified by the world's ACM CA.
    let shop = "shop.example.test";
    let arn = call(
        p,
        "acm",
        "request_certificate",
        json!({"DomainName": shop, "ValidationMethod": "DNS"}),
    )["CertificateArn"]
        .clone();
    let record = call(
        p,
        "acm",
        "describe_certificate",
        json!({"CertificateArn": arn}),
    )["Certificate"]["DomainValidationOptions"][0]["ResourceRecord"]
        .clone();
    let zone = call(
        p,
        "route53",
        "create_hosted_zone",
        json!({"Name": "example.test", "CallerReference": "alb"}),
    )["HostedZone"]["Id"]
        .clone();
    call(
        p,
        "route53",
        "change_resource_record_sets",
        json!({"HostedZoneId": zone, "ChangeBatch": {"Changes": [{"Action": "UPSERT",
               "ResourceRecordSet": {"Name": record["Name"], "Type": "CNAME", "TTL": 300,
                                     "ResourceRecords": [{"Value": record["Value"]}]}}]}}),
    );
    wait_until(
        "ACM issues the certificate",
        Duration::from_secs(30),
        || {
            call(
                p,
                "acm",
                "describe_certificate",
                json!({"CertificateArn": arn}),
            )["Certificate"]["Status"]
                == "ISSUED"
        },
    );
    elbv2(
        p,
        "add_listener_certificates",
        json!({"ListenerArn": https, "Certificates": [{"CertificateArn": arn}]}),
    );
    // Its name an alias of the load balancer in the zone: the world's DNS answers with the
    // load balancer's address, where the issued certificate is served by SNI.
    call(
        p,
        "route53",
        "change_resource_record_sets",
        json!({"HostedZoneId": zone, "ChangeBatch": {"Changes": [{"Action": "UPSERT",
               "ResourceRecordSet": {"Name": shop, "Type": "A", "AliasTarget": {
                   "HostedZoneId": balancer["CanonicalHostedZoneId"],
                   "DNSName": balancer["DNSName"], "EvaluateTargetHealth": false}}}]}}),
    );
    let mut address = String::new();
    wait_until(
        "the DNS answers for the alias",
        Duration::from_secs(20),
        || {
            address = dig(bed, shop);
            !address.is_empty()
        },
    );
    assert_eq!(address, lb.addr.to_string());
    assert_eq!(dig(bed, &lb.host), address, "the load balancer's own name");
    // The nodes resolve through it (169.254.169.253), and so do their containers.
    let node = support::manager_node(p, bed);
    let resolved = bed.sh(node, &format!("getent hosts {shop}"));
    assert_eq!(
        resolved.split_whitespace().next(),
        Some(address.as_str()),
        "{resolved}"
    );
    let in_task = bed.sh(
        node,
        &format!("docker exec $(docker ps -q --filter label=com.docker.swarm.service.name=sandbox_web | head -1) busybox nslookup {shop}"),
    );
    assert!(
        in_task.contains(&format!("Address: {address}")),
        "{in_task}"
    );
    let acm_ca = p.moto.world.join("acm/ca.crt");
    wait_until(
        "the issued certificate is served",
        Duration::from_secs(20),
        || {
            LoadBalancer::new(shop, address.parse().unwrap(), &acm_ca)
                .get("/", &[])
                .is_ok_and(|r| r.status == 404 && r.body == "no route")
        },
    );
}

/// `dig +short @10.77.ID.3 NAME A` from this machine: the addresses the testbed's DNS gives.
fn dig(bed: &Testbed, name: &str) -> String {
    let out = Command::new("dig")
        .args(["+short", "+time=2", "+tries=1"])
        .arg(format!("@10.77.{}.3", bed.id))
        .args([name, "A"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
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
