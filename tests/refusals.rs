//! What real AWS refuses is refused by `infra validate` or `infra plan`, before any change, with
//! the stack file's line and column and what to do; errors a person can act on. Against moto
//! behind the project's AWS proxy (as strict as AWS where moto is not).

mod support;

use std::io::{Read, Write};
use std::process::{Command, Stdio};

use support::{Project, Run};

/// The fixture stack with one edit (which must apply), then `infra ARGS`: it must fail, and
/// nothing may exist in AWS afterwards.
fn refused(p: &Project, from: &str, to: &str, args: &[&str]) -> Run {
    edit(p, from, to);
    let run = p.infra(args);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        p.dump()["vpcs"].as_array().unwrap().is_empty(),
        "nothing was created"
    );
    assert!(!run.stderr.contains(" { "), "no debug dump: {}", run.stderr);
    run
}

fn edit(p: &Project, from: &str, to: &str) {
    let text = std::fs::read_to_string(p.stack_file()).unwrap();
    assert!(text.contains(from), "{from:?} is not in the stack file");
    std::fs::write(p.stack_file(), text.replacen(from, to, 1)).unwrap();
}

/// The error points at `stacks/<stack>.toml:LINE:COL` and says `words`.
fn says(run: &Run, p: &Project, at: &str, words: &str) {
    let place = format!("stacks/{}.toml:{at}", p.stack);
    assert!(
        run.stderr.contains(&place) && run.stderr.contains(words),
        "wanted {place} and {words:?}:\n{}",
        run.stderr
    );
}

#[test]
fn the_certificate_must_be_issued_in_the_load_balancers_region() {
    let p = Project::new("cert", 1);
    let other = "arn:aws:acm:eu-west-1:123456789012:certificate/0e6e5f8a";
    let key = |arn: &str| format!("certificate_arn = \"{arn}\"");
    let run = refused(&p, &key(&p.cert_arn), &key(other), &["plan"]);
    says(
        &run,
        &p,
        "33:19",
        &format!("certificate {other} is in eu-west-1; the load balancer is in us-east-1"),
    );

    let pending = p.aws(&["request-cert", "shop.example.test"])["arn"]
        .as_str()
        .unwrap()
        .to_string();
    let run = refused(&p, &key(other), &key(&pending), &["plan"]);
    says(&run, &p, "33:19", "is PENDING_VALIDATION, not ISSUED");
    assert!(
        run.stderr.contains("finish its validation in ACM"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_tls_policy_elb_does_not_have_is_refused() {
    let p = Project::new("tls", 1);
    let run = refused(
        &p,
        "target_port = 8080",
        "target_port = 8080\ntls_policy = \"ELBSecurityPolicy-Bogus-2099\"",
        &["plan"],
    );
    says(
        &run,
        &p,
        "35:14",
        "TLS policy \"ELBSecurityPolicy-Bogus-2099\" does not exist",
    );
}

#[test]
fn instance_types_must_be_offered_in_their_zone_and_run_their_image() {
    let p = Project::new("types", 2);
    // us-east-1e offers few types (moto's data is AWS's): not t3.small.
    let run = refused(
        &p,
        "zone = \"us-east-1b\"",
        "zone = \"us-east-1e\"",
        &["plan"],
    );
    says(
        &run,
        &p,
        "30:17",
        "instance type t3.small (worker nodes) is not offered in zone us-east-1e",
    );
    edit(&p, "zone = \"us-east-1e\"", "zone = \"us-east-1b\"");

    // A Graviton (arm64) type for an x86_64 image.
    let run = refused(
        &p,
        "worker_type = \"t3.small\"",
        "worker_type = \"t4g.small\"",
        &["plan"],
    );
    says(
        &run,
        &p,
        "30:17",
        "instance type t4g.small (worker nodes) runs arm64, but its image ami-785db401 is x86_64",
    );
    edit(
        &p,
        "worker_type = \"t4g.small\"",
        "worker_type = \"t3.small\"",
    );

    let run = refused(
        &p,
        "ami = \"ami-785db401\"",
        "ami = \"ami-0badc0de0badc0de\"",
        &["plan"],
    );
    says(&run, &p, "29:7", "image ami-0badc0de0badc0de");
    edit(
        &p,
        "ami = \"ami-0badc0de0badc0de\"",
        "ami = \"ami-785db401\"",
    );

    let run = refused(
        &p,
        "zone = \"us-east-1b\"",
        "zone = \"us-east-1z\"",
        &["plan"],
    );
    says(
        &run,
        &p,
        "16:8",
        "zone \"us-east-1z\" does not exist in this region",
    );
}

#[test]
fn a_secret_too_large_for_its_tier_is_refused_and_stored_when_the_tier_takes_it() {
    let mut p = Project::new("big", 1);
    std::fs::write(p.dir.path().join("stacks/bundle.pem"), "x".repeat(5000)).unwrap();
    p.env
        .push(("DB_PASSWORD".into(), "s3cr3t-db-VALUE-1".into()));
    let secrets = "[secrets.bundle]\nfile = \"bundle.pem\"\n[secrets.db]\nenv = \"DB_PASSWORD\"\n";
    let run = refused(&p, "[swarm]", &format!("{secrets}[swarm]"), &["plan"]);
    assert!(
        run.stderr.contains(
            "secret.bundle: the value from file bundle.pem has 5000 bytes, more than Parameter Store's standard tier takes (4096 bytes)"
        ) && run.stderr.contains("set tier = \"advanced\""),
        "{}",
        run.stderr
    );

    // In the advanced tier it fits, and is stored even though infra runs no Swarm here.
    edit(
        &p,
        "file = \"bundle.pem\"",
        "file = \"bundle.pem\"\ntier = \"advanced\"",
    );
    p.ok(&["apply", "--auto-approve"]);
    let stored = p.aws(&["ssm-get", "/infra/big/secrets/bundle"]);
    assert_eq!(stored["value"].as_str().unwrap().len(), 5000);
    assert_eq!(
        p.aws(&["ssm-get", "/infra/big/secrets/db"])["value"],
        "s3cr3t-db-VALUE-1"
    );
}

#[test]
fn what_validate_refuses_before_asking_aws() {
    let p = Project::new("static", 1);
    let run = refused(
        &p,
        "path = \"/health\"",
        "path = \"/health\"\ninterval = 5",
        &["validate"],
    );
    says(
        &run,
        &p,
        "39:12",
        "health check timeout 5s (the default) must be shorter than the interval 5s",
    );
    edit(&p, "interval = 5", "matcher = \"299-200\"");
    let run = refused(&p, "", "", &["validate"]);
    says(&run, &p, "39:11", "the range runs backwards");
    edit(&p, "matcher = \"299-200\"", "");
    let run = refused(
        &p,
        "cidr = \"10.30.2.0/24\"",
        "cidr = \"10.30.2.0/28\"",
        &["validate"],
    );
    says(&run, &p, "17:8", "too small for the load balancer");
    edit(&p, "cidr = \"10.30.2.0/28\"", "cidr = \"10.30.2.0/24\"");
    std::fs::write(
        p.dir.path().join("stacks/ecdsa.pub"),
        "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBI me\n",
    )
    .unwrap();
    let run = refused(
        &p,
        "public_key_file = \"id_test.pub\"",
        "public_key_file = \"ecdsa.pub\"",
        &["validate"],
    );
    says(&run, &p, "20:19", "EC2 key pairs are RSA or ED25519 only");
}

#[test]
fn a_saved_plan_applies_without_stack_and_only_to_its_own_stack() {
    let p = Project::new("alpha", 1);
    std::fs::copy(p.stack_file(), p.dir.path().join("stacks/beta.toml")).unwrap();
    p.ok(&["plan", "--stack", "alpha", "--out", "alpha.plan"]);
    let other = p.infra(&["apply", "alpha.plan", "--stack", "beta"]);
    assert_eq!(other.code, 1, "{}", other.all());
    assert!(
        other.stderr.contains("it is for stack alpha, not beta"),
        "{}",
        other.stderr
    );
    let run = p.ok(&["apply", "alpha.plan"]);
    assert!(run.stdout.contains("Apply complete!"), "{}", run.stdout);
}

#[test]
fn no_credentials_and_no_network_say_so_without_debug_dumps() {
    let p = Project::new("creds", 1);
    let plan = |envs: &[(&str, &str)]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_infra"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap())
            .env("HOME", p.dir.path())
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("NO_COLOR", "1")
            .envs(envs.iter().copied())
            .current_dir(p.dir.path())
            .arg("plan");
        let out = cmd.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = plan(&[("AWS_ENDPOINT_URL", &p.moto.endpoint)]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("no AWS credentials") && err.contains("Set AWS_PROFILE"),
        "{err}"
    );
    assert!(
        !err.contains(" { ") && !err.contains("WARN"),
        "no debug dump: {err}"
    );

    let (code, err) = plan(&[
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
    ]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("cannot reach http://127.0.0.1:9"), "{err}");
    assert!(!err.contains(" { "), "no debug dump: {err}");
}

/// Ctrl-C at apply's question: nothing changes, the lock is released, and while it was held it
/// named the real user (here with no USER or LOGNAME, as in a service or a CI container).
#[test]
fn ctrl_c_at_the_confirmation_releases_the_lock_which_names_the_real_user() {
    let p = Project::new("ask", 1);
    // A terminal for infra, from Python's pty: it asks only on one.
    let script = r#"
import os, pty, sys, time, signal
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], [sys.argv[1], "apply"])
out = b""
deadline = time.time() + 60
while b"Only 'yes' will be accepted" not in out and time.time() < deadline:
    try:
        out += os.read(fd, 65536)
    except OSError:
        break
with open(sys.argv[2]) as f:
    print("LOCK " + f.read().replace("\n", " "))
os.write(fd, b"\x03")   # Ctrl-C on the terminal: SIGINT to infra
while True:
    try:
        chunk = os.read(fd, 65536)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
_, status = os.waitpid(pid, 0)
print("EXIT", os.waitstatus_to_exitcode(status))
print(out.decode(errors="replace"))
"#;
    let lock = p.dir.path().join("state/ask.lock");
    let mut cmd = p.command(&support::venv().join("bin/python").to_string_lossy());
    cmd.env_remove("USER")
        .env_remove("LOGNAME")
        .arg("-c")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_infra"))
        .arg(&lock)
        .stdout(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut text = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    child.wait().unwrap();
    assert!(
        text.contains("\"user\": \"root\"") || text.contains("\"user\":\"root\""),
        "the lock names the user: {text}"
    );
    assert!(text.contains("Apply cancelled."), "{text}");
    assert!(!lock.exists(), "the lock is released: {text}");
    assert!(p.dump()["vpcs"].as_array().unwrap().is_empty());
    let _ = std::io::stdout().flush();
}
