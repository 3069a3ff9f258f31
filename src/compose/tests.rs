//! The fixtures of tests/fixtures/compose/, loaded and rendered as apply would deploy them.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};

use super::*;
use crate::model::{ValueSource, Vars};

fn fixtures() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/compose")
}

fn load(file: &str, vars: &[(&str, &str)]) -> Result<Project, ComposeError> {
    let path = fixtures().join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    load_text(file, &text, path.parent().unwrap(), vars)
}

/// `text` as the compose file `file` in `dir`, beside a stack file whose `[secrets]` hold
/// `greeting`.
fn load_text(
    file: &str,
    text: &str,
    dir: &Path,
    vars: &[(&str, &str)],
) -> Result<Project, ComposeError> {
    let vars: Vars = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    project::load(&Input {
        file,
        text,
        dir,
        interpolate: true,
        vars: &vars,
        stack: "demo",
        stack_secrets: &["greeting".to_string()],
        read: &|p: &Path| std::fs::read(p),
    })
}

/// Every service's document, as `docker stack deploy` gets it.
fn documents(p: &Project) -> BTreeMap<String, Value> {
    let mut names = Names::default();
    for key in p
        .secrets
        .iter()
        .map(|s| s.key.clone())
        .chain(["greeting".to_string()])
    {
        names
            .secrets
            .insert(key.clone(), format!("{key}_0123456789"));
    }
    for c in &p.configs {
        names.configs.insert(c.key.clone(), c.name.clone());
    }
    let labels = BTreeMap::from([("infra.address".to_string(), "swarm.service.x".to_string())]);
    p.services
        .iter()
        .map(|s| {
            (
                s.name.clone(),
                super::desired::document(s, p, &names, &labels).0,
            )
        })
        .collect()
}

fn service<'a>(docs: &'a BTreeMap<String, Value>, name: &str) -> &'a Value {
    &docs[name]["services"][name]
}

#[test]
fn every_interpolation_form() {
    let vars = [
        ("TAG", "1.4.2"),
        ("EMPTY", ""),
        ("REGION", "eu-west-1"),
        ("DEBUG", "1"),
        ("HOME", "/root"),
    ];
    let p = load("interpolation.yml", &vars).unwrap();
    let docs = documents(&p);
    let web = service(&docs, "web");
    assert_eq!(web["image"], "registry.example.com/web:1.4.2");
    let env = &web["environment"];
    assert_eq!(env["DOMAIN"], "example.com");
    assert_eq!(env["EMPTY_KEPT"], "");
    assert_eq!(env["REGION"], "eu-west-1");
    assert_eq!(env["MODE"], "debug");
    assert_eq!(
        env["NESTED"], "x",
        "DOMAIN is not a variable: its default is the file's"
    );
    // A literal `$` reaches the manager doubled, so that Docker's own interpolation keeps it.
    assert_eq!(env["LITERAL"], "$$HOME and $${TAG}");
    assert_eq!(env["${NOT_A_KEY}"], "keys are never interpolated");
    assert_eq!(
        web["deploy"]["replicas"], "2",
        "an interpolated value stays a string, as in Docker"
    );
    assert_eq!(
        p.services[0].mode(),
        "replicated 2",
        "which Docker converts"
    );
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);

    let e = load("interpolation.yml", &[]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "interpolation.yml:4:12: missing property `TAG`: set TAG to the release"
    );
}

#[test]
fn unset_variables_are_named_once() {
    let p = load("interpolation.yml", &[("TAG", "1")]).unwrap();
    assert_eq!(
        p.warnings,
        [
            "interpolation.yml: $REGION is not set: Compose substitutes an empty string (give a default with ${VAR:-default}, or require it with ${VAR:?message})"
        ]
    );
}

#[test]
fn go_templates_pass_through() {
    let p = load("go-templates.yml", &[]).unwrap();
    let docs = documents(&p);
    let agent = service(&docs, "agent");
    assert_eq!(agent["hostname"], "{{.Node.Hostname}}");
    assert_eq!(
        agent["environment"],
        json!({"NODE_ID": "{{.Node.ID}}", "SLOT": "{{.Task.Slot}}"})
    );
    assert_eq!(
        agent["logging"]["options"]["tag"],
        "{{.Name}}/{{.ImageName}}"
    );
    assert_eq!(p.services[0].mode(), "global");
}

#[test]
fn anchors_and_merge_keys_are_resolved() {
    let p = load("anchors.yml", &[]).unwrap();
    let docs = documents(&p);
    let api = service(&docs, "api");
    assert_eq!(
        api["environment"],
        json!({"LOG_LEVEL": "debug", "TZ": "UTC"})
    );
    assert_eq!(api["deploy"]["replicas"], 3);
    assert_eq!(api["deploy"]["restart_policy"]["condition"], "on-failure");
    assert_eq!(api["logging"]["options"]["max-size"], "10m");
    assert_eq!(api["x-owner"], "team-api");
    assert_eq!(service(&docs, "jobs")["deploy"]["replicas"], 2);
    assert_eq!(p.services[0].mode(), "replicated 3");
    assert!(
        !docs["api"].to_string().contains("x-logging"),
        "top-level x- fields are not deployed"
    );
}

#[test]
fn scalars_as_yaml_1_1_and_quoted_strings_kept() {
    let p = load("scalars.yml", &[]).unwrap();
    let docs = documents(&p);
    let ui = service(&docs, "ui");
    assert_eq!(ui["configs"][0]["mode"], 0o440, "0440 is octal to Docker");
    assert_eq!(ui["secrets"][0]["mode"], 0o400);
    let env = &ui["environment"];
    assert_eq!(
        env,
        &json!({"BIG": "12345678901234567890", "FLAG": "true", "PLAIN_FLAG": "true", "UMASK": "0022", "VERSION": "1.10"})
    );
    assert_eq!(ui["deploy"]["labels"]["build"], "0042");
    assert_eq!(ui["secrets"][0]["uid"], "1000");
    let names: Vec<&str> = p.configs.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, [format!("ui_conf_{}", &p.configs[0].sha256[..10])]);
    assert_eq!(p.configs[0].content, "listen 8443\n");
}

#[test]
fn networks_default_options_names_and_externals() {
    let p = load("networks.yml", &[]).unwrap();
    let summary: Vec<Value> = p
        .networks
        .iter()
        .map(|n| {
            json!([
                n.key,
                n.name,
                n.attachable,
                n.encrypted(),
                n.labels,
                n.subnets
            ])
        })
        .collect();
    assert_eq!(
        summary,
        [
            json!(["backend", "demo_backend", true, true, {"tier": "backend"}, []]),
            json!(["default", "demo_default", false, false, {}, []]),
            json!([
                "monitoring",
                "shared-monitoring",
                false,
                false,
                {},
                ["10.200.0.0/24"]
            ]),
        ],
        "only networks a service uses are created; `unused` is not"
    );
    assert_eq!(
        p.externals,
        [External {
            kind: Kind::Network,
            key: "public".into(),
            name: "traefik-public".into()
        }]
    );
    let docs = documents(&p);
    assert_eq!(
        docs["proxy"]["networks"],
        json!({"backend": {"external": true, "name": "demo_backend"}, "public": {"external": true, "name": "traefik-public"}})
    );
    assert_eq!(
        docs["cache"]["networks"],
        json!({"default": {"external": true, "name": "demo_default"}})
    );
    assert_eq!(
        service(&docs, "app")["networks"]["backend"]["aliases"],
        json!(["application"])
    );
}

#[test]
fn named_volumes_travel_with_their_services() {
    let p = load("volumes.yml", &[]).unwrap();
    let docs = documents(&p);
    assert_eq!(
        docs["db"]["volumes"],
        json!({"pgdata": {"driver": "local", "driver_opts": {"type": "none", "o": "bind", "device": "/srv/pgdata"}}, "backups": {}})
    );
    assert_eq!(p.warnings.len(), 1, "{:?}", p.warnings);
    assert!(
        p.warnings[0].contains("bind mount \"./initdb\" is relative"),
        "{}",
        p.warnings[0]
    );
    assert_eq!(
        p.services[0].placement(),
        ["node.labels.infra.pool == manager"]
    );
}

#[test]
fn file_configs_are_hashed_and_external_ones_named() {
    let p = load("configs.yml", &[]).unwrap();
    let keys: Vec<(&str, Option<&str>)> = p
        .configs
        .iter()
        .map(|c| (c.key.as_str(), c.template_driver.as_deref()))
        .collect();
    assert_eq!(keys, [("nginx_conf", None), ("site", Some("golang"))]);
    assert!(p.configs[1].content.contains("{{.Task.Name}}"));
    assert_eq!(
        p.externals,
        [External {
            kind: Kind::Config,
            key: "shared_conf".into(),
            name: "platform_shared_conf".into()
        }]
    );
    let docs = documents(&p);
    assert_eq!(
        docs["proxy"]["configs"]["site"]["name"],
        p.configs[1].name.as_str()
    );
    // New content is a new config: the service's definition changes with it.
    let mut changed = p.clone();
    changed.configs[0].name = "nginx_conf_ffffffffff".into();
    assert_ne!(documents(&changed)["proxy"], docs["proxy"]);
}

#[test]
fn secrets_from_files_and_the_environment_become_stack_secrets() {
    let p = load("secrets.yml", &[]).unwrap();
    let dir = fixtures();
    assert_eq!(
        p.secrets,
        [
            SecretDef {
                key: "db_password".into(),
                source: ValueSource::File(dir.join("./files/db_password.txt"))
            },
            SecretDef {
                key: "api_token".into(),
                source: ValueSource::Env("API_TOKEN".into())
            },
        ]
    );
    assert_eq!(
        p.externals,
        [External {
            kind: Kind::Secret,
            key: "tls_cert".into(),
            name: "wildcard_cert_2026".into()
        }]
    );
    let docs = documents(&p);
    assert_eq!(
        docs["app"]["secrets"],
        json!({
            "db_password": {"external": true, "name": "db_password_0123456789"},
            "api_token": {"external": true, "name": "api_token_0123456789"},
            "tls_cert": {"external": true, "name": "wildcard_cert_2026"},
            "greeting": {"external": true, "name": "greeting_0123456789"},
        })
    );
    assert!(
        !docs["app"].to_string().contains("fixture-db-password"),
        "values never enter a document"
    );
}

#[test]
fn env_files_are_read_on_the_users_side() {
    let p = load("env-file.yml", &[("FROM_SHELL", "shell")]).unwrap();
    let docs = documents(&p);
    let worker = service(&docs, "worker");
    assert_eq!(
        worker["environment"],
        json!({"LOG_LEVEL": "info", "QUEUE": "high", "CONCURRENCY": "4", "RAW": "\"quoted $$HOME\"", "FROM_SHELL": "shell"})
    );
    assert!(worker.get("env_file").is_none());
}

#[test]
fn jobs_and_their_warnings() {
    let p = load("jobs.yml", &[]).unwrap();
    let modes: Vec<String> = p.services.iter().map(|s| s.mode()).collect();
    assert_eq!(modes, ["replicated-job", "global-job"]);
    assert_eq!(p.warnings.len(), 1, "{:?}", p.warnings);
    assert!(p.warnings[0].contains("services.cleanup.deploy.update_config: a job (global-job)"));
}

#[test]
fn host_mode_ports_and_start_first() {
    let p = load("host-global.yml", &[]).unwrap();
    assert_eq!(
        p.services[0].ports(),
        ["80:8080/tcp (host)", "9100:9100/udp (ingress)"]
    );
    assert_eq!(p.warnings.len(), 1, "{:?}", p.warnings);
    assert!(p.warnings[0].contains("start-first with a host-mode port cannot work"));
    let docs = documents(&p);
    let deploy = &service(&docs, "edge")["deploy"];
    assert_eq!(deploy["endpoint_mode"], "dnsrr");
    assert_eq!(deploy["resources"]["limits"]["cpus"], "0.50");
    assert_eq!(
        deploy["placement"]["preferences"][0]["spread"],
        "node.labels.infra.zone"
    );
}

#[test]
fn ignored_keys_are_named_once() {
    let p = load("ignored-keys.yml", &[]).unwrap();
    assert_eq!(
        p.warnings,
        [
            "ignored-keys.yml: docker stack deploy ignores `build` (web), `container_name` (web), `depends_on` (web), `restart` (web, db)"
        ]
    );
}

#[test]
fn the_rich_fixture_renders_as_snapshotted() {
    let p = load("rich/compose.yml", &[("TAG", "v1")]).unwrap();
    insta::assert_json_snapshot!("rich_documents", documents(&p));
}

#[test]
fn what_docker_would_refuse_is_refused_with_its_path() {
    let bad = |text: &str| {
        load_text("c.yml", text, Path::new("/nonexistent"), &[])
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        bad("services:\n  a: {image: x, networks: [nope]}\n"),
        "c.yml: services.a.networks: network \"nope\" is not declared in the top-level networks"
    );
    assert_eq!(
        bad("services:\n  a: {image: x, secrets: [s]}\n"),
        "c.yml: services.a.secrets: secret \"s\" is not declared in the top-level secrets nor in the stack file's [secrets]"
    );
    assert!(bad("services:\n  a: {build: .}\n").contains("services.a: names no image"));
    assert!(bad("servics: {}\n").contains("unknown top-level key \"servics\""));
    assert!(
        bad("services:\n  \"my web\": {image: x}\n")
            .contains("service \"my web\" is not a valid Docker name")
    );
    assert!(
        bad("configs:\n  c: {file: ./missing.conf}\n")
            .starts_with("c.yml: configs.c: cannot read /nonexistent/./missing.conf")
    );
    assert!(
        bad("networks:\n  net: {driver: bridge}\nservices:\n  a: {image: x, networks: [net]}\n")
            .contains("infra creates overlay networks")
    );
}

#[test]
fn short_ports_as_docker_reads_them() {
    let text = "services:\n  a:\n    image: x\n    ports: [\"80\", \"8080:80\", \"127.0.0.1:9000:90/udp\", {target: \"81\", published: \"${P}\"}]\n";
    let p = load_text("c.yml", text, Path::new("."), &[("P", "8081")]).unwrap();
    assert_eq!(
        p.services[0].ports(),
        [
            "0:80/tcp (ingress)",
            "8080:80/tcp (ingress)",
            "8081:81/tcp (ingress)",
            "9000:90/udp (ingress)"
        ]
    );
}
