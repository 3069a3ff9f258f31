//! Integration tests: the real `infra` binary against a real moto server; results checked with
//! an independent boto3 reader, never with the tool's own code.

mod support;

use serde_json::Value;
use support::{Project, live_instances};

fn by_tag<'a>(items: &'a Value, address: &str) -> &'a Value {
    items
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["tags"]["infra:address"] == address)
        .unwrap_or_else(|| panic!("no {address}"))
}

#[test]
fn apply_creates_the_whole_stack_then_plans_no_changes() {
    let p = Project::new("core", 3);
    let run = p.ok(&["apply", "--auto-approve"]);
    assert!(
        run.stdout
            .contains("Apply complete! Resources: 17 added, 0 changed, 0 destroyed."),
        "{}",
        run.stdout
    );
    // Nothing infra deploys serves the target port: the targets are registered, not waited for
    // (they would never turn healthy), and apply says so.
    assert!(
        run.stdout.contains(
            "targets.8080: registered, not waited for: the Swarm is off ([swarm] enabled = false), so nothing infra deploys listens on port 8080"
        ),
        "{}",
        run.stdout
    );

    let d = p.dump();
    let vpc = &d["vpcs"][0];
    assert_eq!(d["vpcs"].as_array().unwrap().len(), 1);
    assert_eq!(vpc["cidr"], "10.30.0.0/16");
    assert_eq!(vpc["dns_hostnames"], true);
    let subnets = d["subnets"].as_array().unwrap();
    assert_eq!(subnets.len(), 2);
    let zones: Vec<&str> = subnets
        .iter()
        .map(|s| s["zone"].as_str().unwrap())
        .collect();
    assert!(zones.contains(&"us-east-1a") && zones.contains(&"us-east-1b"));
    assert!(
        subnets
            .iter()
            .all(|s| s["public_ip"] == true && s["vpc"] == vpc["id"])
    );
    assert_eq!(d["igws"][0]["vpcs"][0], vpc["id"]);
    let rt = &d["route_tables"][0];
    assert_eq!(rt["routes"]["0.0.0.0/0"], d["igws"][0]["id"]);
    assert_eq!(rt["subnets"].as_array().unwrap().len(), 2);

    let lb_sg = d["security_groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "infra-core-lb")
        .unwrap();
    assert_eq!(
        lb_sg["rules"],
        serde_json::json!(["tcp/443-443 from 0.0.0.0/0", "tcp/80-80 from 0.0.0.0/0"])
    );
    let node_sg = d["security_groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "infra-core-node")
        .unwrap();
    let mut expected = vec![
        "50/0-0 from infra-core-node",
        "tcp/22-22 from 198.51.100.0/24",
        "tcp/2377-2377 from infra-core-node",
        "tcp/7946-7946 from infra-core-node",
        "tcp/8080-8080 from infra-core-lb",
        "udp/4789-4789 from infra-core-node",
        "udp/7946-7946 from infra-core-node",
    ];
    expected.sort();
    assert_eq!(node_sg["rules"], serde_json::json!(expected));
    assert_eq!(d["key_pairs"][0]["name"], "infra-core");

    let instances = live_instances(&d);
    assert_eq!(instances.len(), 4, "1 manager + 3 workers");
    let manager = by_tag(&d["instances"], "node.manager[0]");
    assert_eq!(manager["tags"]["infra:pool"], "manager");
    assert!(
        manager["tags"]["Name"]
            .as_str()
            .unwrap()
            .starts_with("core-")
    );
    for i in &instances {
        assert_eq!(i["imds_tokens"], "required", "IMDSv2 required");
        assert_eq!(i["key"], "infra-core");
        assert_eq!(i["groups"], serde_json::json!(["infra-core-node"]));
        assert_eq!(
            i["volumes"][0],
            serde_json::json!({"size": 30, "encrypted": true})
        );
    }
    assert_eq!(
        by_tag(&d["instances"], "node.worker[0]")["type"],
        "t3.small",
        "from the {{ worker_type }} variable"
    );
    let worker_zones: Vec<&str> = ["node.worker[0]", "node.worker[1]", "node.worker[2]"]
        .iter()
        .map(|a| by_tag(&d["instances"], a)["zone"].as_str().unwrap())
        .collect();
    assert_eq!(
        worker_zones,
        ["us-east-1a", "us-east-1b", "us-east-1a"],
        "spread across zones"
    );

    let lb = &d["load_balancers"][0];
    assert_eq!(lb["name"], "infra-core");
    assert_eq!(lb["groups"], serde_json::json!(["infra-core-lb"]));
    let tg = &d["target_groups"][0];
    assert_eq!(
        (
            tg["port"].as_i64(),
            tg["health_path"].as_str(),
            tg["delay"].as_str()
        ),
        (Some(8080), Some("/health"), Some("20"))
    );
    assert_eq!(tg["matcher"], "200-399");
    let mut ids: Vec<&str> = instances
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    ids.sort();
    assert_eq!(
        tg["targets"],
        serde_json::json!(ids),
        "every node is a target"
    );
    let https = lb["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["port"] == 443)
        .unwrap();
    assert_eq!(https["protocol"], "HTTPS");
    assert_eq!(https["policy"], "ELBSecurityPolicy-TLS13-1-2-2021-06");
    assert_eq!(https["certificates"][0], p.cert_arn.as_str());
    assert_eq!(https["target_group"], tg["arn"]);
    let http = lb["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["port"] == 80)
        .unwrap();
    assert_eq!(http["action"], "redirect");
    assert_eq!(http["redirect"]["StatusCode"], "HTTP_301");
    assert_eq!(http["redirect"]["Protocol"], "HTTPS");

    let again = p.infra(&["plan", "--detailed-exitcode"]);
    assert_eq!(again.code, 0, "{}", again.all());
    assert!(again.stdout.contains("No changes."), "{}", again.stdout);

    let out = p.ok(&["output", "--json"]);
    let out: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(out["load_balancer_dns_name"], lb["dns"]);
    assert_eq!(out["nodes"].as_array().unwrap().len(), 4);
    assert!(
        out["nodes"][0]["private_ip"]
            .as_str()
            .unwrap()
            .starts_with("10.30.")
    );
}

#[test]
fn drift_behind_the_tools_back_is_planned_and_repaired() {
    let p = Project::new("drift", 2);
    p.ok(&["apply", "--auto-approve"]);
    p.aws(&[
        "revoke",
        "drift",
        "infra-drift-node",
        "tcp",
        "22",
        "198.51.100.0/24",
    ]);
    let gone = p.aws(&["terminate", "drift", "node.worker[1]"]);
    p.aws(&["deregister", "drift", "node.manager[0]", "infra-drift-8080"]);

    let plan = p.infra(&["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 2, "{}", plan.all());
    let text = &plan.stdout;
    assert!(text.contains("# node.worker[1] will be created"), "{text}");
    assert!(text.contains("removed outside infra"), "{text}");
    assert!(
        text.contains("# sg.node will be updated in place")
            && text.contains("+ \"tcp/22 from 198.51.100.0/24\""),
        "{text}"
    );
    assert!(
        text.contains("# targets.8080 will be updated in place")
            && text.contains("+ \"node.manager[0]\""),
        "{text}"
    );
    assert!(
        text.contains("Plan: 1 to add, 2 to change, 0 to destroy."),
        "{text}"
    );

    p.ok(&["apply", "--auto-approve"]);
    let d = p.dump();
    let node_sg = d["security_groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "infra-drift-node")
        .unwrap();
    assert!(
        node_sg["rules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "tcp/22-22 from 198.51.100.0/24")
    );
    let instances = live_instances(&d);
    assert_eq!(instances.len(), 3);
    assert!(instances.iter().all(|i| i["id"] != gone["terminated"]));
    assert_eq!(
        d["target_groups"][0]["targets"].as_array().unwrap().len(),
        3
    );
    let again = p.infra(&["plan", "--detailed-exitcode"]);
    assert_eq!(again.code, 0, "{}", again.all());
}

#[test]
fn destroy_removes_everything_even_what_the_state_lost() {
    let p = Project::new("gone", 2);
    p.ok(&["apply", "--auto-approve"]);
    std::fs::remove_file(p.state_file()).unwrap();
    let run = p.ok(&["destroy", "--auto-approve"]);
    assert!(
        run.stdout
            .contains("Destroy complete! Resources: 0 added, 0 changed, 16 destroyed."),
        "{}",
        run.stdout
    );
    let d = p.dump();
    for kind in [
        "vpcs",
        "subnets",
        "igws",
        "route_tables",
        "security_groups",
        "key_pairs",
        "load_balancers",
        "target_groups",
    ] {
        assert_eq!(
            d[kind].as_array().unwrap().len(),
            0,
            "{kind} left: {}",
            d[kind]
        );
    }
    assert!(live_instances(&d).is_empty());
    let again = p.ok(&["destroy", "--auto-approve"]);
    assert!(
        again.stdout.contains("No changes."),
        "a second destroy is a no-op: {}",
        again.stdout
    );
}

#[test]
fn saved_plan_applies_exactly_and_a_stale_one_is_refused() {
    let p = Project::new("saved", 1);
    let plan = p.infra(&["plan", "--out", "first.plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 2, "{}", plan.all());
    // Editing the stack file after planning does not change what the saved plan applies...
    p.write_stack(3);
    let refused = p.infra(&["apply", "first.plan"]);
    assert_eq!(refused.code, 1);
    assert!(
        refused.stderr.contains("is stale") && refused.stderr.contains("changed since the plan"),
        "{}",
        refused.stderr
    );
    // ...and with the file as it was, the plan applies exactly what it showed.
    p.write_stack(1);
    let applied = p.ok(&["apply", "first.plan"]);
    assert!(
        applied
            .stdout
            .contains("Apply complete! Resources: 15 added"),
        "{}",
        applied.stdout
    );
    assert_eq!(live_instances(&p.dump()).len(), 2);

    // A plan made before another apply moved the state is refused.
    p.write_stack(2);
    p.ok(&["plan", "--out", "second.plan"]);
    p.ok(&["apply", "--auto-approve"]);
    let stale = p.infra(&["apply", "second.plan"]);
    assert_eq!(stale.code, 1);
    assert!(
        stale.stderr.contains("the state moved from serial"),
        "{}",
        stale.stderr
    );
    assert_eq!(live_instances(&p.dump()).len(), 3, "nothing applied twice");
}

#[test]
fn a_second_run_fails_at_once_naming_the_lock_holder_and_force_unlock_releases_it() {
    let p = Project::new("locked", 1);
    let backend = infra::state::LocalBackend::new(p.dir.path().join("state"), "locked");
    let guard = backend.lock(infra::state::LockInfo::new("apply")).unwrap();
    let run = p.infra(&["apply", "--auto-approve"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("the state is locked by"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!("pid {}", std::process::id())),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains(&format!("infra force-unlock {}", guard.id())),
        "{}",
        run.stderr
    );
    let id = guard.id().to_string();
    std::mem::forget(guard); // as if its process had crashed
    p.ok(&["force-unlock", &id]);
    p.ok(&["apply", "--auto-approve"]);
}

#[test]
fn instances_of_an_interrupted_launch_are_adopted_not_duplicated() {
    let p = Project::new("resume", 2);
    // A first apply that got as far as launching worker 1 in its subnet, then died before
    // tagging the instance with its address.
    p.write_stack(0);
    p.ok(&["apply", "--auto-approve"]);
    p.write_stack(2);
    p.aws(&["launch-untagged", "resume", "worker", "1", "subnet[1]"]);
    // The interrupted run was a while ago: EC2 lists its instance by now.
    std::thread::sleep(std::time::Duration::from_secs(2));
    let plan = p.ok(&["plan"]);
    assert!(
        plan.stdout.contains("# node.worker[0] will be created"),
        "{}",
        plan.stdout
    );
    assert!(
        !plan.stdout.contains("# node.worker[1] will be created"),
        "adopted by its slot tag: {}",
        plan.stdout
    );
    p.ok(&["apply", "--auto-approve"]);
    assert_eq!(
        live_instances(&p.dump()).len(),
        3,
        "1 manager + 2 workers, no duplicate"
    );
}

#[test]
fn plan_json_is_versioned_and_machine_readable() {
    let p = Project::new("json", 1);
    let run = p.infra(&["plan", "--json", "--detailed-exitcode"]);
    assert_eq!(run.code, 2, "{}", run.all());
    let doc: Value = serde_json::from_str(&run.stdout).expect("stdout is only JSON");
    assert_eq!(doc["format_version"], "1");
    assert_eq!(doc["changed"], true);
    assert_eq!(
        doc["summary"],
        serde_json::json!({"add": 15, "change": 0, "destroy": 0})
    );
    let vpc = doc["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["address"] == "vpc")
        .unwrap();
    assert_eq!(vpc["action"], "create");
    assert_eq!(vpc["after"]["cidr"], "10.30.0.0/16");
    assert!(
        !run.stdout.contains("#!/bin/sh"),
        "user-data bodies are not in the JSON"
    );
}

#[test]
fn a_bad_stack_file_names_file_line_and_column_and_touches_nothing() {
    let p = Project::new("bad", 1);
    let text = std::fs::read_to_string(p.stack_file())
        .unwrap()
        .replace("10.30.2.0/24", "10.99.2.0/24");
    std::fs::write(p.stack_file(), text).unwrap();
    let run = p.infra(&["plan"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains(
            "stacks/bad.toml:17:8: subnet 10.99.2.0/24 is outside the VPC block 10.30.0.0/16"
        ),
        "{}",
        run.stderr
    );
    assert!(!p.state_file().exists());
}

/// The test world's AWS is as strict as AWS where moto is not (tests/world/aws/proxy.py): each
/// rule shown refusing what moto alone accepts (tests/world/aws/test_strictness.py).
#[test]
fn the_aws_proxy_refuses_what_aws_refuses_where_moto_does_not() {
    let out = std::process::Command::new(support::venv().join("bin/python"))
        .arg(support::world("aws/test_strictness.py"))
        .output()
        .unwrap();
    let text = support::printed(&out);
    assert!(out.status.success(), "{text}");
    eprintln!("{text}");
}

/// `[registry]`, `[logging]` and `[nodes] iam_policies`: the nodes' role (least privilege: a
/// registry token, pulls from the stack's repositories only, writes to the stack's log group
/// only) and its instance profile, every node launched with it and IMDSv2 at the hop limit
/// asked; the repositories with their settings, their URIs in `infra output`; a repository
/// holding images is kept when removed, until `force_delete`; the log group, its retention
/// changed in place, gone with the stack.
#[test]
fn the_nodes_role_and_the_registry_are_plan_objects() {
    let mut p = Project::new("reg", 2);
    // A policy IAM does not know is refused at plan, at its place in the file.
    p.replacements.push((
        "root_volume_gb = 30".into(),
        "root_volume_gb = 30\niam_policies = [\"arn:aws:iam::123456789012:policy/nope\"]\nmetadata_hop_limit = 2".into(),
    ));
    p.write_stack(2);
    let unknown = p.infra(&["plan"]);
    assert!(
        unknown.code == 1
            && unknown.stderr.contains("reg.toml:")
            && unknown
                .stderr
                .contains("IAM has no managed policy arn:aws:iam::123456789012:policy/nope"),
        "{}",
        unknown.all()
    );
    let mine = p.aws(&["create-policy", "reads-buckets"])["arn"]
        .as_str()
        .unwrap()
        .to_string();
    p.replacements[0].1 = p.replacements[0]
        .1
        .replace("arn:aws:iam::123456789012:policy/nope", &mine);
    let logging = "[logging]\ndriver = \"awslogs\"\nretention_days = 14\n";
    p.extra = format!(
        "\n[registry]\nrepositories = [\"web\", \"team/worker\"]\nkeep_images = 30\n{logging}"
    );
    p.write_stack(2);
    let run = p.ok(&["apply", "--auto-approve"]);
    assert!(run.stdout.contains("Resources: 21 added"), "{}", run.stdout);
    let group = p.aws(&["log-group", "/infra/reg"]);
    assert_eq!(group["retention"], 14, "{group}");
    assert_eq!(group["tags"]["infra:address"], "logs.group", "{group}");

    let id = p.aws(&["identity", "reg"]);
    let role = &id["role"];
    assert_eq!(role["tags"]["infra:address"], "iam.role.nodes");
    assert_eq!(
        role["trust"]["Statement"][0]["Principal"]["Service"],
        "ec2.amazonaws.com"
    );
    let policy = &role["inline"]["infra-nodes"];
    let statements = policy["Statement"].as_array().unwrap();
    assert_eq!(statements[0]["Action"], "ecr:GetAuthorizationToken");
    assert_eq!(
        statements[1]["Resource"],
        serde_json::json!([
            "arn:aws:ecr:us-east-1:123456789012:repository/web",
            "arn:aws:ecr:us-east-1:123456789012:repository/team/worker"
        ])
    );
    assert_eq!(
        (&statements[2]["Action"], &statements[2]["Resource"]),
        (
            &serde_json::json!(["logs:CreateLogStream", "logs:PutLogEvents"]),
            &serde_json::json!("arn:aws:logs:us-east-1:123456789012:log-group:/infra/reg:*")
        )
    );
    assert_eq!(role["attached"], serde_json::json!([mine]));
    assert_eq!(
        id["profile"]["roles"],
        serde_json::json!(["infra-reg-nodes"])
    );
    let instances = id["instances"].as_object().unwrap();
    assert_eq!(instances.len(), 3);
    for (address, i) in instances {
        assert_eq!(i["profile"], id["profile"]["arn"], "{address}");
        assert_eq!(i["tokens"], "required", "{address}");
        assert_eq!(i["hop_limit"], 2, "{address}");
    }
    let repos = id["repositories"].as_object().unwrap();
    assert_eq!(repos.len(), 2);
    let web = &repos["web"];
    assert_eq!(
        web["uri"],
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/web"
    );
    assert_eq!(web["scan_on_push"], true);
    assert_eq!(web["mutability"], "MUTABLE");
    assert_eq!(web["lifecycle"]["rules"][0]["selection"]["countNumber"], 30);
    assert_eq!(web["tags"]["infra:address"], "ecr.repository.web");

    let again = p.infra(&["plan", "--detailed-exitcode", "-v"]);
    assert_eq!(again.code, 0, "no changes after apply: {}", again.all());
    // The account is asked of STS once, whatever needs it ({{ registry }}, user-data, checks).
    let sts_calls = again
        .stderr
        .lines()
        .filter(|l| l.contains("call STS:GetCallerIdentity"))
        .count();
    assert_eq!(sts_calls, 1, "{}", again.stderr);
    let out = p.ok(&["output"]);
    assert!(
        out.stdout.contains(
            "team/worker        123456789012.dkr.ecr.us-east-1.amazonaws.com/team/worker"
        ),
        "{}",
        out.stdout
    );

    // A repository that holds an image is kept when it leaves the list…
    p.aws(&["put-image", "web", "1.0"]);
    let logging = logging.replace("14", "30");
    p.extra =
        format!("\n[registry]\nrepositories = [\"team/worker\"]\nkeep_images = 30\n{logging}");
    p.write_stack(2);
    let kept = p.ok(&["apply", "--auto-approve"]);
    assert!(
        kept.stdout.contains("retention_days = 14 -> 30"),
        "{}",
        kept.stdout
    );
    assert_eq!(p.aws(&["log-group", "/infra/reg"])["retention"], 30);
    assert!(
        kept.all().contains(
            "ecr.repository.web is kept: it holds 1 image(s). To delete them with it, set `force_delete = true`"
        ),
        "{}",
        kept.all()
    );
    assert!(p.aws(&["identity", "reg"])["repositories"]["web"].is_object());
    // …and goes, images and all, once `force_delete` was applied.
    p.extra = format!(
        "\n[registry]\nrepositories = [\"web\", \"team/worker\"]\nkeep_images = 30\nforce_delete = true\n{logging}"
    );
    p.write_stack(2);
    let forced = p.ok(&["apply", "--auto-approve"]);
    assert!(
        forced.stdout.contains("~ force_delete"),
        "{}",
        forced.stdout
    );
    p.ok(&["destroy", "--auto-approve"]);
    let id = p.aws(&["identity", "reg"]);
    assert!(id["role"].is_null() && id["profile"].is_null(), "{id}");
    assert_eq!(id["repositories"], serde_json::json!({}), "{id}");
    assert!(p.aws(&["log-group", "/infra/reg"]).is_null());
}
