use std::path::Path;

use super::*;
use crate::model::{AmiSource, Role, Vars};

const BASE: &str = r#"region = "us-east-1"

[vars]
size = "t3.small"

[network]
cidr = "10.0.0.0/16"
admin_cidrs = ["203.0.113.0/24"]

[[network.subnets]]
zone = "us-east-1a"
cidr = "10.0.1.0/24"

[[network.subnets]]
zone = "us-east-1b"
cidr = "10.0.2.0/24"

[nodes]
public_key_file = "key.pub"
instance_type = "{{ size }}"

[nodes.managers]
count = 3

[nodes.workers]
count = 2
ami = "ami-0123456789"

[load_balancer]
certificate_arn = "arn:aws:acm:us-east-1:123456789012:certificate/abc"
target_port = 8080
"#;

fn read(path: &Path) -> std::io::Result<String> {
    match path.to_str() {
        Some("key.pub") => Ok("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB test\n".into()),
        Some("ecdsa.pub") => {
            Ok("ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTY test\n".into())
        }
        Some("private") => Ok("-----BEGIN OPENSSH PRIVATE KEY-----\nxx\n".into()),
        Some("compose.yml") => Ok("services:\n  web:\n    image: ${registry}/web:1\n".into()),
        _ => Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "No such file or directory",
        )),
    }
}

fn load(text: &str) -> Result<Loaded, ConfigErrors> {
    parse("stacks/test.toml", text, &Vars::new(), &read)
}

/// The base stack with one edit; the edit must apply.
fn edited(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "{from:?} is not in the base stack");
    BASE.replacen(from, to, 1)
}

fn first_error(text: &str) -> ConfigError {
    let mut errors = load(text).expect_err("the stack is invalid").errors;
    errors.remove(0)
}

#[test]
fn the_base_stack_is_valid() {
    let loaded = load(BASE).unwrap();
    let s = loaded.stack;
    assert_eq!(s.name, "test");
    assert_eq!(s.network.subnets.len(), 2);
    assert_eq!(s.managers.count, 3);
    assert_eq!(s.managers.instance_type, "t3.small", "rendered from [vars]");
    assert_eq!(s.workers.ami, AmiSource::Id("ami-0123456789".into()));
    assert!(
        matches!(s.managers.ami, AmiSource::SsmParameter(_)),
        "Ubuntu by default"
    );
    assert_eq!(
        s.network.ingress_cidrs[0].to_string(),
        "0.0.0.0/0",
        "the load balancer is public by default"
    );
    assert_eq!(
        s.load_balancer.tls_policy,
        "ELBSecurityPolicy-TLS13-1-2-2021-06"
    );
    assert_eq!(s.load_balancer.health_check.path, "/");
    assert!(loaded.warnings.is_empty());
}

/// (edit from, edit to, expected line:column, expected words in the message)
const CASES: &[(&str, &str, &str, &str)] = &[
    (
        "[network]",
        "[network",
        "6:9",
        "unclosed table, expected `]`",
    ),
    ("region = ", "regoin = ", "1:1", "unknown field `regoin`"),
    (
        "target_port = 8080",
        "target_port = 8080\ncolour = 1",
        "32:1",
        "unknown field `colour`, expected one of `certificate_arn`",
    ),
    (
        "count = 3",
        "count = \"three\"",
        "23:9",
        "invalid type: string \"three\", expected i64",
    ),
    (
        "cidr = \"10.0.0.0/16\"",
        "cidr = \"10.0.0.0/33\"",
        "7:8",
        "network.cidr \"10.0.0.0/33\" is not an IPv4 CIDR block",
    ),
    (
        "cidr = \"10.0.0.0/16\"",
        "cidr = \"10.0.0.1/16\"",
        "7:8",
        "has host bits set; did you mean 10.0.0.0/16?",
    ),
    (
        "cidr = \"10.0.0.0/16\"",
        "cidr = \"10.0.0.0/8\"",
        "7:8",
        "must have a prefix between /16 and /28",
    ),
    (
        "cidr = \"10.0.2.0/24\"",
        "cidr = \"10.1.2.0/24\"",
        "16:8",
        "subnet 10.1.2.0/24 is outside the VPC block 10.0.0.0/16",
    ),
    (
        "cidr = \"10.0.2.0/24\"",
        "cidr = \"10.0.1.128/25\"",
        "16:8",
        "overlaps subnet 10.0.1.0/24",
    ),
    (
        "zone = \"us-east-1b\"",
        "zone = \"us-east-1a\"",
        "15:8",
        "zone \"us-east-1a\" has a subnet already",
    ),
    (
        "zone = \"us-east-1b\"",
        "zone = \"eu-west-1b\"",
        "15:8",
        "zone \"eu-west-1b\" is not in region us-east-1",
    ),
    (
        "\n[[network.subnets]]\nzone = \"us-east-1b\"\ncidr = \"10.0.2.0/24\"\n",
        "",
        "10:1",
        "at least two zones are required",
    ),
    (
        "count = 3",
        "count = 0",
        "23:9",
        "there must be at least one manager",
    ),
    (
        "count = 2",
        "count = -2",
        "26:9",
        "worker count -2 is out of range",
    ),
    (
        "target_port = 8080",
        "target_port = 70000",
        "31:15",
        "target_port 70000 is out of range (1..=65535)",
    ),
    (
        "certificate_arn = \"arn:aws:acm:us-east-1:123456789012:certificate/abc\"\n",
        "",
        "29:1",
        "certificate_arn is missing",
    ),
    (
        "arn:aws:acm:us-east-1:123456789012:certificate/abc",
        "my-cert",
        "30:19",
        "is not an ACM certificate ARN",
    ),
    (
        "instance_type = \"{{ size }}\"",
        "instance_type = \"{{ flavour }}\"",
        "20:18",
        "unknown template variable \"flavour\"",
    ),
    (
        "ami = \"ami-0123456789\"",
        "ami = \"ubuntu\"",
        "27:7",
        "neither an ami-… id nor ssm:/parameter/path",
    ),
    (
        "public_key_file = \"key.pub\"",
        "public_key_file = \"missing.pub\"",
        "19:19",
        "cannot read public key file missing.pub",
    ),
    (
        "public_key_file = \"key.pub\"",
        "public_key_file = \"private\"",
        "19:19",
        "does not hold one OpenSSH public key",
    ),
    (
        "admin_cidrs = [\"203.0.113.0/24\"]",
        "admin_cidrs = [\"203.0.113.0\"]",
        "8:16",
        "admin_cidrs entry \"203.0.113.0\" is not an IPv4 CIDR block",
    ),
    (
        "target_port = 8080",
        "target_port = 8080\n[load_balancer.health_check]\npath = \"health\"",
        "33:8",
        "must start with /",
    ),
    (
        "target_port = 8080",
        "target_port = 8080\n[load_balancer.health_check]\ninterval = 5\ntimeout = 10",
        "34:11",
        "timeout 10s must be shorter than the interval 5s",
    ),
    (
        "target_port = 8080",
        "target_port = 8080\n[load_balancer.health_check]\nmatcher = \"ok\"",
        "33:11",
        "matcher \"ok\" is not valid",
    ),
    (
        "target_port = 8080",
        "target_port = 8080\ntls_policy = \"TLS1.3\"",
        "32:14",
        "is not an ELB security policy name",
    ),
    (
        "[nodes.workers]\ncount = 2",
        "[nodes.workers]\ncount = 2\nroot_volume_gb = 2",
        "27:18",
        "root_volume_gb 2 is out of range",
    ),
    (
        "target_port = 8080",
        "target_port = 8080\n[secrets.db]\nenv = \"DB\"\nfile = \"db.txt\"",
        "32:1",
        "secret \"db\" needs exactly one of env and file",
    ),
    (
        "target_port = 8080",
        "target_port = 8080\n[services.web]\nimage = \"web:1\"\nsecrets = [\"nope\"]",
        "34:12",
        "secret \"nope\" is not declared in [secrets]",
    ),
    (
        "target_port = 8080",
        "target_port = 8080\n[services.web]\nimage = \"web:1\"\nport = 80\npublish = \"host\"\nmode = \"global\"\n[services.web.update]\norder = \"start-first\"",
        "38:9",
        "start-first cannot work for a global service published in host mode",
    ),
    (
        "target_port = 8080",
        "target_port = 8080\n[services.web]\nimage = \"web:{{ tag }}\"",
        "33:14",
        "unknown template variable \"tag\"",
    ),
    (
        "target_port = 8080",
        "target_port = 8080\n[services.Web]\nimage = \"web:1\"\nstop_grace_period = \"soon\"",
        "32:1",
        "service name \"Web\" must start with a lowercase letter",
    ),
    (
        "target_port = 8080",
        "target_port = 8080\n[swarm]\ncompose_file = \"missing.yml\"",
        "33:16",
        "cannot read compose file \"missing.yml\"",
    ),
    // What AWS refuses, refused by validate: one case a rule.
    (
        "target_port = 8080",
        "target_port = 8080\n[load_balancer.health_check]\ninterval = 5",
        "33:12",
        "health check timeout 5s (the default) must be shorter than the interval 5s",
    ),
    (
        "target_port = 8080",
        "target_port = 8080\n[load_balancer.health_check]\nmatcher = \"299-200\"",
        "33:11",
        "matcher \"299-200\" is not valid: the range runs backwards (299 > 200)",
    ),
    (
        "target_port = 8080",
        "target_port = 8080\n[load_balancer.health_check]\nmatcher = \"200,300-399\"",
        "33:11",
        "is not valid: a list cannot hold a range",
    ),
    (
        "target_port = 8080",
        "target_port = 8080\n[load_balancer.health_check]\nmatcher = \"200,600\"",
        "33:11",
        "\"600\" is not an HTTP code from 200 to 499",
    ),
    (
        "cidr = \"10.0.2.0/24\"",
        "cidr = \"10.0.2.0/28\"",
        "16:8",
        "subnet 10.0.2.0/28 cannot be used: too small for the load balancer",
    ),
    (
        "cidr = \"10.0.2.0/24\"",
        "cidr = \"10.0.2.0/29\"",
        "16:8",
        "subnet 10.0.2.0/29 cannot be used: AWS subnets are /16 to /28",
    ),
    (
        "target_port = 8080",
        "target_port = 8080\n[load_balancer.health_check]\npath = \"health\"",
        "33:8",
        "health check path \"health\" must start with / and have at most 1024 characters",
    ),
    (
        "target_port = 8080",
        "target_port = 8080\n[secrets.db]\nenv = \"DB\"\ntier = \"premium\"",
        "34:8",
        "tier \"premium\"",
    ),
    (
        "public_key_file = \"key.pub\"",
        "public_key_file = \"ecdsa.pub\"",
        "19:19",
        "ecdsa.pub holds a ecdsa-sha2-nistp256 key: EC2 key pairs are RSA or ED25519 only",
    ),
    (
        "admin_cidrs = [\"203.0.113.0/24\"]",
        "admin_cidrs = []",
        "8:1",
        "the Swarm is enabled but nothing lets infra reach the nodes over SSH",
    ),
    (
        "admin_cidrs = [\"203.0.113.0/24\"]\n",
        "",
        "6:1",
        "no admin_cidrs and no [ssh] jump_host",
    ),
];

#[test]
fn nodes_reachable_through_a_jump_host_or_without_the_swarm_need_no_admin_cidrs() {
    let no_admin = edited("admin_cidrs = [\"203.0.113.0/24\"]\n", "");
    load(&format!(
        "{no_admin}[ssh]\njump_host = \"bastion.example.com\"\n"
    ))
    .unwrap();
    load(&format!("{no_admin}[swarm]\nenabled = false\n")).unwrap();
}

#[test]
fn malformed_stacks_name_file_line_column_and_the_problem() {
    assert!(CASES.len() >= 15);
    for (from, to, at, words) in CASES {
        let e = first_error(&edited(from, to));
        let shown = e.to_string();
        assert!(
            shown.starts_with(&format!("stacks/test.toml:{at}: ")),
            "case {to:?}: got {shown}"
        );
        assert!(shown.contains(words), "case {to:?}: got {shown}");
    }
}

#[test]
fn every_error_is_reported_at_once() {
    let text = edited("count = 3", "count = 0").replace("target_port = 8080", "target_port = 0");
    let errors = load(&text).unwrap_err().errors;
    assert_eq!(errors.len(), 2, "{errors:?}");
}

#[test]
fn an_even_manager_count_is_a_warning_about_quorum() {
    let loaded = load(&edited("count = 3", "count = 2")).unwrap();
    let w = loaded.warnings[0].to_string();
    assert!(w.starts_with("stacks/test.toml:23:9: 2 managers"), "{w}");
    assert!(
        loaded.warnings[0]
            .help
            .as_deref()
            .unwrap()
            .contains("majority")
    );
}

#[test]
fn vars_can_be_overridden_but_only_if_declared() {
    let vars = Vars::from([("size".to_string(), "m7i.large".to_string())]);
    let loaded = parse("stacks/test.toml", BASE, &vars, &read).unwrap();
    assert_eq!(loaded.stack.managers.instance_type, "m7i.large");
    let vars = Vars::from([("sise".to_string(), "x".to_string())]);
    let e = parse("stacks/test.toml", BASE, &vars, &read)
        .unwrap_err()
        .errors
        .remove(0);
    assert!(
        e.to_string()
            .contains("--var sise: no such variable is declared in [vars] (declared: size)"),
        "{e}"
    );
}

#[test]
fn a_bad_file_name_is_a_bad_stack_name() {
    let e = parse("stacks/Prod_EU.toml", BASE, &Vars::new(), &read)
        .unwrap_err()
        .errors
        .remove(0);
    assert!(
        e.to_string()
            .contains("stack name \"Prod_EU\" (the file name) must be"),
        "{e}"
    );
}

#[test]
fn rendered_error_shows_the_offending_line() {
    use miette::{GraphicalReportHandler, GraphicalTheme};
    let errors = load(&edited("cidr = \"10.0.2.0/24\"", "cidr = \"10.1.2.0/24\"")).unwrap_err();
    let mut out = String::new();
    GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor())
        .with_width(100)
        .render_report(&mut out, &errors)
        .unwrap();
    insta::assert_snapshot!(out);
}

#[test]
fn a_host_mode_task_that_stops_before_the_load_balancer_lets_go_is_a_warning() {
    let service = |grace: &str| {
        edited(
            "target_port = 8080",
            &format!(
                "target_port = 8080\nderegistration_delay = 20\n[load_balancer.health_check]\ninterval = 5\ntimeout = 4\nunhealthy_threshold = 2\n\
                 [services.web]\nimage = \"web:1\"\nport = 8080\npublish = \"host\"\nmode = \"global\"\n{grace}"
            ),
        )
    };
    let warned = load(&service("stop_grace_period = \"15s\""))
        .unwrap()
        .warnings;
    assert_eq!(warned.len(), 1, "{warned:?}");
    let w = warned[0].to_string();
    assert!(w.starts_with("stacks/test.toml:42:21: "), "{w}");
    assert!(
        w.contains("service \"web\" gets 15s to stop, but the load balancer may send it requests for 30s: [load_balancer] deregistration_delay (20s) + health_check interval × unhealthy_threshold (5s × 2)"),
        "{w}"
    );
    // Docker's default, 10 s, is too short too; 30 s is enough; ingress tasks are not pinned.
    assert_eq!(load(&service("")).unwrap().warnings.len(), 1);
    assert!(
        load(&service("stop_grace_period = \"30s\""))
            .unwrap()
            .warnings
            .is_empty()
    );
    let ingress = service("").replace("publish = \"host\"\nmode = \"global\"\n", "");
    assert!(load(&ingress).unwrap().warnings.is_empty());
}

#[test]
fn a_bastion_defaults_to_a_small_instance_of_the_managers_image() {
    let s = load(&format!("{BASE}\n[bastion]\n")).unwrap().stack;
    let b = s.bastion.expect("a bastion");
    assert_eq!(
        (b.role, b.count, b.instance_type.as_str(), &b.ami),
        (Role::Bastion, 1, "t3.micro", &s.managers.ami)
    );
    let s = load(&format!(
        "{BASE}\n[bastion]\ninstance_type = \"t4g.nano\"\nami = \"ami-0b\"\n"
    ))
    .unwrap()
    .stack;
    let b = s.bastion.unwrap();
    assert_eq!(
        (b.instance_type.as_str(), b.ami),
        ("t4g.nano", AmiSource::Id("ami-0b".into()))
    );
}

#[test]
fn a_bastion_needs_admin_cidrs_and_excludes_a_jump_host() {
    let text = format!(
        "{}\n[bastion]\n",
        edited("admin_cidrs = [\"203.0.113.0/24\"]\n", "")
    );
    let errors = load(&text).unwrap_err().errors;
    assert!(
        errors
            .iter()
            .any(|e| e.message.contains("[bastion] needs [network] admin_cidrs")),
        "{errors:?}"
    );
    let e = first_error(&format!(
        "{BASE}\n[ssh]\njump_host = \"j.example.com\"\n\n[bastion]\n"
    ));
    assert!(
        e.message
            .contains("jump_host and [bastion] cannot both be used"),
        "{e}"
    );
    assert_eq!(
        (e.location.line, e.location.column),
        (34, 13),
        "at jump_host: {e}"
    );
}

/// `{{ registry }}` (set by infra with `[registry]`, never declared) renders in `[services]`
/// images and reaches a compose file's interpolation as `${registry}`; without `[registry]`, it
/// is unknown, with a hint.
#[test]
fn the_registry_variable_is_infra_s_own() {
    let host = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
    let vars = Vars::from([("registry".to_string(), host.to_string())]);
    let text = edited(
        "target_port = 8080",
        "target_port = 8080\n[registry]\nrepositories = [\"web\"]\n[services.web]\nimage = \"{{ registry }}/web:1\"",
    );
    let stack = parse("stacks/test.toml", &text, &vars, &read)
        .unwrap()
        .stack;
    assert_eq!(stack.apps.services[0].image, format!("{host}/web:1"));
    let text = edited(
        "target_port = 8080",
        "target_port = 8080\n[registry]\nrepositories = [\"web\"]\n[swarm]\ncompose_file = \"compose.yml\"",
    );
    let stack = parse("stacks/test.toml", &text, &vars, &read)
        .unwrap()
        .stack;
    assert_eq!(stack.apps.compose.unwrap().vars["registry"], host);
    let text = edited(
        "target_port = 8080",
        "target_port = 8080\n[services.web]\nimage = \"{{ registry }}/web:1\"",
    );
    let err = format!("{:?}", load(&text).unwrap_err());
    assert!(
        err.contains("unknown template variable \\\"registry\\\"")
            && err.contains("add a [registry] table"),
        "{err}"
    );
}

#[test]
fn logging_takes_awslogs_and_cloudwatch_s_retention_periods() {
    let text = edited(
        "target_port = 8080",
        "target_port = 8080\n[logging]\ndriver = \"awslogs\"",
    );
    let stack = load(&text).unwrap().stack;
    assert_eq!(
        stack.logging,
        Some(crate::model::Logging { retention_days: 30 })
    );
    assert!(stack.nodes_need_role());
    assert_eq!(stack.log_group(), "/infra/test");
    let e = first_error(&edited(
        "target_port = 8080",
        "target_port = 8080\n[logging]\ndriver = \"awslogs\"\nretention_days = 8",
    ));
    let shown = e.to_string();
    assert!(
        shown.contains("CloudWatch Logs does not keep lines for 8 days"),
        "{shown}"
    );
    let e = first_error(&edited(
        "target_port = 8080",
        "target_port = 8080\n[logging]\ndriver = \"syslog\"",
    ));
    assert!(
        e.to_string()
            .contains("logging driver \"syslog\" is not one infra runs"),
        "{e}"
    );
}
