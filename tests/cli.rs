//! Snapshot tests of what the CLI prints for things that need no AWS: help, validation.

use std::process::Command;

fn infra(dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_infra"))
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .env_remove("INFRA_STACK")
        .args(args)
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout),
        text(&out.stderr),
    )
}

fn project(stack: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("stacks")).unwrap();
    std::fs::write(dir.path().join("stacks/web.toml"), stack).unwrap();
    let key = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/id_test.pub");
    std::fs::copy(key, dir.path().join("stacks/id_test.pub")).unwrap();
    dir
}

fn example_with(edit: impl Fn(String) -> String) -> String {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("stacks/aws-example.toml"),
    )
    .unwrap();
    edit(text.replace("~/.ssh/id_ed25519.pub", "id_test.pub"))
}

#[test]
fn help_lists_the_commands() {
    let (code, out, _) = infra(std::path::Path::new("."), &["--help"]);
    assert_eq!(code, 0);
    insta::assert_snapshot!(out);
}

#[test]
fn the_reference_stack_is_valid() {
    let dir = project(&example_with(|t| t));
    let (code, out, err) = infra(dir.path(), &["validate"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with(
            "Success! stacks/web.toml is valid: stack web, 3 zones, 1 manager(s), 2 worker(s).\n\
             SSH login on manager nodes: ubuntu (the image parameter /aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id).\n\
             SSH login on worker nodes: ubuntu (the image parameter /aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id).\n\
             SSH path: directly to the nodes' public addresses, from 203.0.113.0/24.\n\
             SSH identity: "
        ),
        "{out}"
    );
}

#[test]
fn validation_errors_show_every_problem_with_its_line() {
    let dir = project(&example_with(|t| {
        t.replace("cidr = \"10.20.3.0/24\"", "cidr = \"10.21.3.0/24\"")
            .replace("count = 1", "count = 0")
    }));
    let (code, out, err) = infra(dir.path(), &["validate"]);
    assert_eq!(code, 1);
    assert_eq!(out, "");
    insta::assert_snapshot!(err);
}

#[test]
fn an_even_manager_count_warns_but_validates() {
    let dir = project(&example_with(|t| t.replace("count = 1", "count = 2")));
    let (code, _, err) = infra(dir.path(), &["validate"]);
    assert_eq!(code, 0);
    assert!(err.starts_with("warning: stacks/web.toml:"), "{err}");
    assert!(
        err.contains("2 managers: an even count tolerates no more failures than 1"),
        "{err}"
    );
}

#[test]
fn several_stacks_need_a_choice() {
    let dir = project(&example_with(|t| t));
    std::fs::copy(
        dir.path().join("stacks/web.toml"),
        dir.path().join("stacks/api.toml"),
    )
    .unwrap();
    let (code, _, err) = infra(dir.path(), &["validate"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("several stacks in") && err.contains("choose one with --stack (api, web)"),
        "{err}"
    );
    let (code, _, _) = infra(dir.path(), &["validate", "--stack", "api"]);
    assert_eq!(code, 0);
}

#[test]
fn a_new_project_starts_with_init_and_shells_complete() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = infra(dir.path(), &["validate"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("no stacks/ directory") && err.contains("infra init"),
        "{err}"
    );
    let (code, out, err) = infra(dir.path(), &["init", "shop"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("Wrote stacks/shop.toml."), "{out}");
    let text = std::fs::read_to_string(dir.path().join("stacks/shop.toml")).unwrap();
    assert!(text.contains("this is stack \"shop\""), "{text}");
    let (code, _, err) = infra(dir.path(), &["init", "shop"]);
    assert_eq!(code, 1);
    assert!(err.contains("exists already"), "{err}");
    let (code, out, _) = infra(dir.path(), &["completions", "bash"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("scale-nodes") && out.contains("complete -F"),
        "{out}"
    );
}
