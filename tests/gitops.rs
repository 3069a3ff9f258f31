//! GitOps: state in S3 (moto), locking by conditional writes, saved plans across runners,
//! markdown plans, and the example pipeline's own commands.

mod support;

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use support::{Project, live_instances};

const BUCKET: &str = "infra-state";

fn s3_state(p: &Project) -> Option<Value> {
    let key = format!("stacks/{}.json", p.stack);
    p.aws(&["s3-get", BUCKET, &key])["body"]
        .as_str()
        .map(|b| serde_json::from_str(b).expect("the state is valid JSON"))
}

#[test]
fn state_lives_in_s3_and_nothing_is_written_locally() {
    let p = Project::new_with_s3_state("remote", 1, BUCKET);
    p.ok(&["apply", "--auto-approve"]);
    let state = s3_state(&p).expect("state in S3");
    assert_eq!(state["stack"], "remote");
    assert!(
        state["resources"]["vpc"]["id"]
            .as_str()
            .unwrap()
            .starts_with("vpc-")
    );
    assert!(!p.dir.path().join("state").exists(), "no local state");
    let keys = p.aws(&["s3-keys", BUCKET])["keys"].clone();
    assert_eq!(
        keys,
        serde_json::json!(["stacks/remote.json", "stacks/remote.json.backup"]),
        "the lock is gone"
    );
    let backup: Value = serde_json::from_str(
        p.aws(&["s3-get", BUCKET, "stacks/remote.json.backup"])["body"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        backup["serial"].as_u64().unwrap() + 1,
        state["serial"].as_u64().unwrap(),
        "the previous version is kept"
    );
    let again = p.infra(&["plan", "--detailed-exitcode"]);
    assert_eq!(again.code, 0, "{}", again.all());
    let out = p.ok(&["output", "--json"]);
    assert!(out.stdout.contains("infra-remote-1."), "{}", out.stdout);
}

#[test]
fn a_lock_held_by_another_runner_is_named_waited_for_and_force_unlocked() {
    let p = Project::new_with_s3_state("busy", 1, BUCKET);
    let lock = r#"{"id": "4b0c", "operation": "apply", "user": "runner", "host": "ci-7", "pid": 4242, "created": "2026-11-22T06:00:00Z"}"#;
    p.aws(&["s3-put", BUCKET, "stacks/busy.json.lock", lock]);

    let refused = p.infra(&["apply", "--auto-approve"]);
    assert_eq!(refused.code, 1);
    assert!(
        refused
            .stderr
            .contains("the state is locked by runner@ci-7 (pid 4242) for apply"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("infra force-unlock 4b0c"),
        "{}",
        refused.stderr
    );

    let timed_out = p.infra(&["plan", "--lock-timeout", "2s"]);
    assert_eq!(timed_out.code, 1);
    assert!(
        timed_out.stderr.contains("waiting up to 2s"),
        "{}",
        timed_out.stderr
    );

    // Released by its holder while a plan waits: the plan goes ahead.
    let mut waiting = p.command(env!("CARGO_BIN_EXE_infra"));
    let waiting = waiting
        .args(["plan", "--lock-timeout", "60s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    p.aws(&["s3-delete", BUCKET, "stacks/busy.json.lock"]);
    let out = waiting.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Plan: 15 to add"));

    p.aws(&["s3-put", BUCKET, "stacks/busy.json.lock", lock]);
    let wrong = p.infra(&["force-unlock", "nope"]);
    assert!(
        wrong.code == 1 && wrong.stderr.contains("no lock with ID nope"),
        "{}",
        wrong.all()
    );
    let released = p.ok(&["force-unlock", "4b0c"]);
    assert!(
        released
            .stdout
            .contains("s3://infra-state/stacks/busy.json held by runner@ci-7"),
        "{}",
        released.stdout
    );
    p.ok(&["apply", "--auto-approve"]);
}

#[test]
fn two_applies_at_once_never_corrupt_the_state() {
    let p = Project::new_with_s3_state("race", 2, BUCKET);
    let spawn = |extra: &[&str]| {
        let mut cmd = p.command(env!("CARGO_BIN_EXE_infra"));
        cmd.args(["apply", "--auto-approve"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    // Without a timeout: one applies; the other either fails naming the holder, or (if the
    // first had finished already) finds nothing to do.
    let (a, b) = (spawn(&[]), spawn(&[]));
    let outs = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()];
    let ok = outs.iter().filter(|o| o.status.success()).count();
    assert!(ok >= 1, "one of them applies");
    for o in outs.iter().filter(|o| !o.status.success()) {
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("the state is locked by"),
            "the loser names the holder: {err}"
        );
    }
    // With a timeout both go through, one after the other.
    let (a, b) = (
        spawn(&["--lock-timeout", "60s"]),
        spawn(&["--lock-timeout", "60s"]),
    );
    assert!(a.wait_with_output().unwrap().status.success());
    assert!(b.wait_with_output().unwrap().status.success());

    let state = s3_state(&p).unwrap();
    assert_eq!(state["resources"].as_object().unwrap().len(), 16);
    let d = p.dump();
    assert_eq!(d["vpcs"].as_array().unwrap().len(), 1, "no duplicate");
    assert_eq!(live_instances(&d).len(), 3, "no duplicate");
    let again = p.infra(&["plan", "--detailed-exitcode"]);
    assert_eq!(again.code, 0, "{}", again.all());
}

#[test]
fn a_plan_saved_on_one_runner_applies_on_a_fresh_one_and_only_while_fresh() {
    let p = Project::new_with_s3_state("pipeline", 1, BUCKET);
    let plan = p.infra(&["plan", "--out", "plan.json", "--detailed-exitcode"]);
    assert_eq!(plan.code, 2, "{}", plan.all());

    let runner = p.fresh_checkout();
    std::fs::copy(
        p.dir.path().join("plan.json"),
        runner.path().join("plan.json"),
    )
    .unwrap();
    let applied = p.infra_in(runner.path(), &["apply", "plan.json"]);
    assert_eq!(applied.code, 0, "{}", applied.all());
    assert!(
        applied
            .stdout
            .contains("Apply complete! Resources: 15 added"),
        "{}",
        applied.stdout
    );
    assert!(!runner.path().join("state").exists());

    // A plan made before another run changed the state is refused on any runner.
    let second = p.infra(&["plan", "--out", "plan2.json", "--destroy"]);
    assert_eq!(second.code, 0, "{}", second.all());
    p.write_stack(2);
    p.ok(&["apply", "--auto-approve"]);
    p.write_stack(1);
    let runner = p.fresh_checkout();
    std::fs::copy(
        p.dir.path().join("plan2.json"),
        runner.path().join("plan2.json"),
    )
    .unwrap();
    let stale = p.infra_in(runner.path(), &["apply", "plan2.json"]);
    assert_eq!(stale.code, 1);
    assert!(
        stale
            .stderr
            .contains("is stale: the state moved from serial"),
        "{}",
        stale.stderr
    );
    assert_eq!(
        live_instances(&p.dump()).len(),
        3,
        "the stale destroy did nothing"
    );
}

#[test]
fn state_migrates_from_local_to_s3_and_back() {
    let mut p = Project::new("moving", 1);
    p.ok(&["apply", "--auto-approve"]);
    let local = std::fs::read_to_string(p.state_file()).unwrap();
    p.aws(&["make-bucket", BUCKET]);
    p.extra = format!(
        "\n[state]\nbackend = \"s3\"\nbucket = \"{BUCKET}\"\nkey = \"stacks/moving.json\"\n"
    );
    p.write_stack(1);

    let moved = p.ok(&["state", "migrate", "--from", "local"]);
    assert!(
        moved
            .stdout
            .contains("to s3://infra-state/stacks/moving.json"),
        "{}",
        moved.stdout
    );
    let remote = s3_state(&p).unwrap();
    let before: Value = serde_json::from_str(&local).unwrap();
    assert_eq!(remote["lineage"], before["lineage"]);
    assert_eq!(remote["resources"], before["resources"]);
    assert!(!p.state_file().exists(), "the local copy is set aside");
    assert!(p.dir.path().join("state/moving.json.migrated").exists());
    assert_eq!(p.infra(&["plan", "--detailed-exitcode"]).code, 0);
    let twice = p.infra(&["state", "migrate", "--from", "local"]);
    assert_eq!(twice.code, 1, "{}", twice.all());

    p.extra = String::new();
    p.write_stack(1);
    p.ok(&[
        "state",
        "migrate",
        "--from",
        "s3://infra-state/stacks/moving.json",
    ]);
    let back: Value =
        serde_json::from_str(&std::fs::read_to_string(p.state_file()).unwrap()).unwrap();
    assert_eq!(back["lineage"], before["lineage"]);
    assert_eq!(p.infra(&["plan", "--detailed-exitcode"]).code, 0);
}

#[test]
fn markdown_plan_for_a_pull_request() {
    let p = Project::new("review", 1);
    p.ok(&["apply", "--auto-approve"]);
    p.write_stack(2);
    let run = p.infra(&["plan", "--format", "markdown", "--detailed-exitcode"]);
    assert_eq!(run.code, 2, "{}", run.all());
    let md = run.stdout;
    assert!(
        md.starts_with("### infra plan `review`: 1 to add, 1 to change, 0 to destroy\n"),
        "{md}"
    );
    assert!(
        md.contains("| ➕ create | `node.worker[1]` | instance |  |"),
        "{md}"
    );
    assert!(
        md.contains("| ✏️ update | `targets.8080` | targets | `instances` |"),
        "{md}"
    );
    assert!(md.contains("<details><summary>Full plan</summary>"), "{md}");
    assert!(!md.contains("#!/bin/sh"), "no user-data body");
}

#[test]
fn the_stack_file_schema_is_generated_from_the_types() {
    let p = Project::new("schema", 1);
    let run = p.ok(&["schema"]);
    let schema: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(schema["title"], "infra stack file");
    let props = schema["properties"].as_object().unwrap();
    for key in [
        "region",
        "vars",
        "network",
        "nodes",
        "load_balancer",
        "state",
    ] {
        assert!(props.contains_key(key), "{key} in {props:?}");
    }
    assert_eq!(
        schema["additionalProperties"], false,
        "unknown keys are flagged in editors too"
    );
}

/// The example workflow is valid YAML with the three triggers, and every `infra` command in it
/// runs against moto, in the order a pull request, its merge and the nightly check would.
#[test]
fn the_example_pipeline_is_valid_and_its_commands_are_real() {
    let workflow =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/github-actions/infra.yml");
    let p = Project::new_with_s3_state("prod", 1, BUCKET);
    let doc = p.aws(&["yaml", workflow.to_str().unwrap()]);
    for trigger in ["pull_request", "push", "schedule"] {
        assert!(doc["on"].get(trigger).is_some(), "triggered by {trigger}");
    }
    let jobs = doc["jobs"].as_object().unwrap();
    assert_eq!(jobs.keys().collect::<Vec<_>>(), ["plan", "apply", "drift"]);
    let script = |job: &str, step_name: &str| -> String {
        let steps = jobs[job]["steps"].as_array().unwrap();
        let step = steps
            .iter()
            .find(|s| s["name"] == step_name)
            .unwrap_or_else(|| panic!("{job}: step {step_name}"));
        step["run"].as_str().unwrap().to_string()
    };
    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_infra"))
        .parent()
        .unwrap()
        .to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = |script: &str| {
        let out = p
            .command("bash")
            .args(["-e", "-c", script])
            .env("PATH", &path)
            .env("INFRA_STACK", "prod")
            .env("GITHUB_OUTPUT", p.dir.path().join("github-output"))
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // The plan job: a markdown comment and a saved plan; exit 2 (changes) is not a failure.
    let (code, err) = run(&script("plan", "Plan"));
    assert_eq!(code, 0, "{err}");
    let md = std::fs::read_to_string(p.dir.path().join("plan.md")).unwrap();
    assert!(md.starts_with("### infra plan `prod`: 15 to add"), "{md}");
    let outputs = std::fs::read_to_string(p.dir.path().join("github-output")).unwrap();
    assert_eq!(outputs.trim(), "changed=true");
    // The apply job, with the artifact.
    let (code, err) = run(&script("apply", "Apply the saved plan"));
    assert_eq!(code, 0, "{err}");
    assert_eq!(live_instances(&p.dump()).len(), 2);
    // The nightly drift check passes on a converged stack, and fails on drift.
    let (code, err) = run(&script("drift", "Drift check"));
    assert_eq!(code, 0, "{err}");
    p.aws(&["terminate", "prod", "node.worker[0]"]);
    let (code, _) = run(&script("drift", "Drift check"));
    assert_eq!(code, 2, "drift fails the job");
    assert!(
        std::fs::read_to_string(p.dir.path().join("drift.md"))
            .unwrap()
            .contains("`node.worker[0]`")
    );
}
