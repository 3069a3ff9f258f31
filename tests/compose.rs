//! A compose file as people write them, end to end on the sandbox stack: the richest fixture
//! (tests/fixtures/compose/rich) deployed through moto and testbed nodes, checked with the node's
//! own `docker`; a config file changed (the service rolls onto the new config, the old one goes);
//! a service removed from the file (it goes, the rest is untouched); an external secret that
//! does not exist stops the apply before any change. Needs root.

mod support;

use support::{Project, Testbed, sandbox, serves, targets, with_compose_file};

const API_KEY: &str = "fixture-api-key-5d1c";

fn docker(bed: &Testbed, manager: usize, command: &str) -> String {
    bed.sh(manager, &format!("docker {command}"))
}

/// What node `t` serves at `path`, once it is `want` (bounded: a task may be restarting).
fn serves_at(t: std::net::SocketAddr, path: &str, want: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        match support::traffic::get(t, path) {
            Ok(body) if body.trim_end() == want => return,
            other if std::time::Instant::now() > deadline => {
                panic!("{t}{path}: {other:?}, wanted {want}")
            }
            _ => std::thread::sleep(std::time::Duration::from_millis(300)),
        }
    }
}

fn edit(p: &Project, file: &str, f: impl FnOnce(String) -> String) {
    let path = p.stack_file().parent().unwrap().join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, f(text)).unwrap();
}

#[test]
fn a_rich_compose_file_deploys_rolls_its_config_and_removes_what_left_the_file() {
    let nodes = 3;
    let (mut p, bed) = sandbox("59", nodes, &["v1"]);
    let files = ["compose.yml", "app.conf", "api_key.txt", "web.env"];
    with_compose_file(&p, "rich", &files);
    p.env.push(("TAG".into(), "v1".into()));
    let mut outputs = Vec::new();

    // A required variable that is missing: refused with file:line:col before anything exists.
    let env = std::mem::take(&mut p.env);
    p.env = env.iter().filter(|(k, _)| k != "TAG").cloned().collect();
    let run = p.infra(&["plan"]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stderr
            .contains("compose.yml:3:10: missing property `TAG`: set TAG to the demo release"),
        "{}",
        run.stderr
    );
    p.env = env;

    let run = p.ok(&["apply", "--auto-approve"]);
    outputs.push(run.all());
    for address in [
        "swarm.network.front: Creation complete",
        "swarm.network.back: Creation complete",
        "swarm.network.default: Creation complete",
        "swarm.config.app_conf_",
        "swarm.secret.api_key_",
        "swarm.service.migrate: Creation complete",
    ] {
        assert!(run.stdout.contains(address), "{address}:\n{}", run.stdout);
    }
    for t in targets(bed.id, nodes) {
        serves(t, "demo v1 secret-sha256=");
    }
    let manager = bed.node_of(&p.id_of("node.manager[0]"));

    // What the file says, as the node's own docker sees it.
    let networks = docker(
        &bed,
        manager,
        "network ls --filter label=com.docker.stack.namespace=sandbox --format '{{.Name}} {{.Driver}}' | sort",
    );
    assert_eq!(
        networks,
        "sandbox_back overlay\nsandbox_default overlay\nsandbox_front overlay"
    );
    assert_eq!(
        docker(
            &bed,
            manager,
            "network inspect sandbox_front --format '{{.Attachable}} {{index .Labels \"infra.address\"}}'"
        ),
        "true swarm.network.front"
    );
    assert_eq!(
        docker(
            &bed,
            manager,
            "network inspect sandbox_back --format '{{index .Labels \"tier\"}}'"
        ),
        "back"
    );
    let configs = docker(&bed, manager, "config ls --format '{{.Name}}'");
    assert!(
        configs.starts_with("app_conf_") && configs.lines().count() == 1,
        "{configs}"
    );
    let secrets = docker(&bed, manager, "secret ls --format '{{.Name}}' | sort");
    assert!(
        secrets.lines().any(|s| s.starts_with("api_key_"))
            && secrets.lines().any(|s| s.starts_with("greeting_")),
        "{secrets}"
    );
    let services = docker(
        &bed,
        manager,
        "service ls --format '{{.Name}} {{.Mode}} {{.Replicas}}' | sort",
    );
    let lines: Vec<&str> = services.lines().collect();
    assert_eq!(lines.len(), 3, "{services}");
    assert!(
        lines[0].starts_with("sandbox_migrate replicated job 0/1 (1/1 completed)"),
        "{services}"
    );
    assert_eq!(lines[1], "sandbox_web global 3/3");
    assert_eq!(lines[2], "sandbox_worker replicated 2/2");
    let web = |format: &str| {
        docker(
            &bed,
            manager,
            &format!("service inspect sandbox_web --format '{format}'"),
        )
    };
    assert_eq!(
        web(
            "{{range .Spec.TaskTemplate.ContainerSpec.Configs}}{{.ConfigName}} {{.File.Name}} {{printf \"%o\" .File.Mode}}{{end}}"
        ),
        format!("{} /www/app.conf 440", configs.trim())
    );
    assert_eq!(
        web("{{.Spec.TaskTemplate.ContainerSpec.Hostname}}"),
        "web-{{.Node.Hostname}}"
    );
    let env = web("{{json .Spec.TaskTemplate.ContainerSpec.Env}}");
    for var in [
        "\"PRICE=$5\"",
        "\"NODE_ID={{.Node.ID}}\"",
        "\"FROM_ENV_FILE=yes\"",
        "\"DRAIN_SECONDS=1\"",
        "\"TEAM=core\"",
    ] {
        assert!(env.contains(var), "{var} in {env}");
    }
    let nets = web("{{range .Spec.TaskTemplate.Networks}}{{.Target}} {{end}}");
    assert_eq!(nets.split_whitespace().count(), 2, "{nets}");
    assert_eq!(
        docker(
            &bed,
            manager,
            "service inspect sandbox_worker --format '{{index .Spec.Labels \"team\"}} {{range .Spec.TaskTemplate.ContainerSpec.Mounts}}{{.Source}}:{{.Target}}{{end}}'"
        ),
        "core sandbox_cache:/cache"
    );
    // Go templates rendered by the Swarm, per task; the config as the task reads it (its web
    // server serves /www, where the config is mounted).
    let task = docker(
        &bed,
        manager,
        "ps -q --filter label=com.docker.swarm.service.name=sandbox_web",
    );
    let hostname = bed.sh(manager, "hostname");
    assert_eq!(
        docker(&bed, manager, &format!("exec {task} cat /etc/hostname")),
        format!("web-{hostname}")
    );
    for t in targets(bed.id, nodes) {
        serves_at(t, "/app.conf", "greeting = \"hello\"");
    }

    let plan = p.infra(&["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "a clean plan after apply:\n{}", plan.all());
    outputs.push(plan.all());

    // A changed config file: a new config, the service rolls onto it, the old one goes.
    edit(&p, "app.conf", |_| "greeting = \"bonjour\"\n".into());
    let plan = p.ok(&["plan"]);
    outputs.push(plan.all());
    for line in [
        "+ swarm.config.app_conf_",
        "- swarm.config.app_conf_",
        "~ swarm.service.web",
    ] {
        assert!(plan.stdout.contains(line), "{line}:\n{}", plan.stdout);
    }
    assert!(
        !plan.stdout.contains("swarm.service.worker"),
        "{}",
        plan.stdout
    );
    let run = p.ok(&["apply", "--auto-approve"]);
    outputs.push(run.all());
    let config = docker(&bed, manager, "config ls --format '{{.Name}}'");
    assert!(
        config.lines().count() == 1 && config != configs,
        "the old config is removed: {config}"
    );
    for t in targets(bed.id, nodes) {
        serves_at(t, "/app.conf", "greeting = \"bonjour\"");
    }

    // A service removed from the file is removed from the Swarm; the rest is untouched.
    let untouched = |bed: &Testbed| {
        docker(
            bed,
            manager,
            "service inspect sandbox_web sandbox_migrate --format '{{.ID}} {{.UpdatedAt}}'",
        )
    };
    let before = untouched(&bed);
    edit(&p, "compose.yml", |text| {
        let (head, rest) = text.split_once("  worker:\n").unwrap();
        let (_, tail) = rest.split_once("  migrate:\n").unwrap();
        format!("{head}  migrate:\n{tail}")
    });
    let plan = p.ok(&["plan"]);
    outputs.push(plan.all());
    assert!(
        plan.stdout.contains("- swarm.service.worker"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .contains("Plan: 0 to add, 0 to change, 1 to destroy."),
        "{}",
        plan.stdout
    );
    let run = p.ok(&["apply", "--auto-approve"]);
    outputs.push(run.all());
    let services = docker(&bed, manager, "service ls --format '{{.Name}}' | sort");
    assert_eq!(services, "sandbox_migrate\nsandbox_web");
    assert_eq!(
        untouched(&bed),
        before,
        "the other services are not updated"
    );

    // An external secret that does not exist: the apply stops before any change, naming it.
    edit(&p, "compose.yml", |text| {
        text.replace(
            "secrets: [greeting, api_key]",
            "secrets: [greeting, api_key, ext_token]",
        )
        .replace(
            "secrets:\n  api_key:",
            "secrets:\n  ext_token:\n    external: true\n  api_key:",
        )
    });
    let run = p.infra(&["apply", "--auto-approve"]);
    outputs.push(run.all());
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stderr.contains("compose.yml: external object does not exist on the Swarm: secret \"ext_token\" (secrets.ext_token)"),
        "{}",
        run.stderr
    );
    assert_eq!(untouched(&bed), before, "nothing changed");
    bed.sh(
        manager,
        "printf external-token | docker secret create ext_token - >/dev/null",
    );
    let run = p.ok(&["apply", "--auto-approve"]);
    outputs.push(run.all());
    assert!(
        web("{{range .Spec.TaskTemplate.ContainerSpec.Secrets}}{{.SecretName}} {{end}}")
            .contains("ext_token"),
        "the service uses the external secret"
    );
    for t in targets(bed.id, nodes) {
        serves(t, "demo v1 secret-sha256=");
    }

    // The file secret's value is nowhere infra wrote or showed.
    let mut written = outputs.join("\n");
    written.push_str(&std::fs::read_to_string(p.state_file()).unwrap());
    assert!(!written.contains(API_KEY), "a secret value leaked");
    let stored = p.aws(&["ssm-get", "/infra/sandbox/secrets/api_key"]);
    assert_eq!(stored["value"].as_str(), Some(API_KEY));
}
