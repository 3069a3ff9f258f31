//! The example workflow (examples/github-actions/infra.yml) with the Swarm enabled, end to end:
//! its own steps run in pull request → merge → nightly order, each job on a fresh "runner" — a
//! new checkout of the repository (the stack file and its public key, nothing else), an empty
//! home directory (no key file, no known_hosts), the state in S3, and the private key only in
//! the ssh-agent the workflow's own step loads from the CI secret. The nodes are testbed nodes
//! in strict mode: every running instance boots, and port 22 answers the runner only where a
//! security group opens it to the runner's address; so everything infra does on the Swarm goes
//! through the bastion it runs. Needs root.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use support::{Project, files_under, sandbox, serves, world};

const BUCKET: &str = "pipeline-state";

/// One job's runner: a fresh checkout and home, and the environment its steps left
/// (`$GITHUB_ENV`).
struct Runner {
    checkout: tempfile::TempDir,
    home: tempfile::TempDir,
    env: BTreeMap<String, String>,
}

impl Drop for Runner {
    fn drop(&mut self) {
        if let Some(pid) = self.env.get("SSH_AGENT_PID") {
            let _ = std::process::Command::new("kill").arg(pid).status();
        }
    }
}

struct Pipeline {
    p: Project,
    workflow: Value,
    repository: PathBuf,
    private_key: String,
    world_ssh: String,
}

impl Pipeline {
    fn step(&self, job: &str, name: &str) -> String {
        let steps = self.workflow["jobs"][job]["steps"].as_array().unwrap();
        let step = steps
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("{job}: no step {name}"));
        step["run"].as_str().unwrap().to_string()
    }

    /// A new runner for `job`: the repository checked out, the key loaded into an agent by the
    /// workflow's own step.
    fn runner(&self, job: &str) -> Runner {
        let checkout = tempfile::tempdir().unwrap();
        copy_dir(&self.repository, checkout.path());
        let home = tempfile::tempdir().unwrap();
        // The runner's network: how this machine reaches the instances' public addresses.
        std::fs::create_dir_all(home.path().join(".ssh")).unwrap();
        std::fs::write(home.path().join(".ssh/config"), &self.world_ssh).unwrap();
        let mut runner = Runner {
            checkout,
            home,
            env: BTreeMap::new(),
        };
        let (code, out) = self.run(&runner, &self.step(job, "Load the SSH key into an agent"));
        assert_eq!(code, 0, "{out}");
        let env = std::fs::read_to_string(runner.checkout.path().join("github-env")).unwrap();
        runner.env = env
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        runner
    }

    /// One step's script, as the runner's bash runs it; returns its exit code and output.
    fn run(&self, runner: &Runner, script: &str) -> (i32, String) {
        let bin = Path::new(env!("CARGO_BIN_EXE_infra")).parent().unwrap();
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let out = self
            .p
            .command("bash")
            .args(["-e", "-c", script])
            .current_dir(runner.checkout.path())
            .env_clear_but_aws()
            .envs(self.p.env.iter().cloned())
            .envs(runner.env.iter())
            .env("PATH", path)
            .env("HOME", runner.home.path())
            .env("INFRA_STACK", "sandbox")
            .env("INFRA_SSH_KEY", &self.private_key)
            .env(
                "GITHUB_OUTPUT",
                runner.checkout.path().join("github-output"),
            )
            .env("GITHUB_ENV", runner.checkout.path().join("github-env"))
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text)
    }

    fn file(&self, runner: &Runner, name: &str) -> String {
        std::fs::read_to_string(runner.checkout.path().join(name)).unwrap_or_default()
    }
}

/// `Command::env_clear` keeping what the harness set for AWS and the test world.
trait EnvClear {
    fn env_clear_but_aws(&mut self) -> &mut Self;
}

impl EnvClear for std::process::Command {
    fn env_clear_but_aws(&mut self) -> &mut Self {
        let keep: Vec<(std::ffi::OsString, std::ffi::OsString)> = self
            .get_envs()
            .filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned())))
            .collect();
        self.env_clear();
        for var in ["INFRA_VENV", "INFRA_NODE_IMAGES", "TMPDIR"] {
            if let Some(v) = std::env::var_os(var) {
                self.env(var, v);
            }
        }
        self.envs(keep)
    }
}

fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

fn rules(dump: &Value, group: &str) -> Vec<String> {
    let g = dump["security_groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == group)
        .unwrap_or_else(|| panic!("no group {group}"));
    serde_json::from_value(g["rules"].clone()).unwrap()
}

#[test]
fn pull_request_merge_and_nightly_drive_the_swarm_through_a_bastion() {
    let nodes = 4; // a manager, two workers and the bastion
    let (p, bed) = sandbox("60", nodes, &["v1"]);
    std::fs::write(bed.dir.join("strict"), "").unwrap();
    p.aws(&["make-bucket", BUCKET]);
    let workflow = p.aws(&[
        "yaml",
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples/github-actions/infra.yml")
            .to_str()
            .unwrap(),
    ]);

    // The repository: the sandbox stack with its state in S3 and a bastion, its public key
    // beside it, no private key and no ssh settings (the runner's agent and network do).
    let repository = p.dir.path().join("repository");
    std::fs::create_dir_all(repository.join("stacks")).unwrap();
    std::fs::copy(
        bed.dir.join("id_ed25519.pub"),
        repository.join("stacks/id_pipeline.pub"),
    )
    .unwrap();
    let stack = std::fs::read_to_string(p.stack_file()).unwrap();
    let (head, tail) = stack.split_once("[ssh]\n").unwrap();
    let tail = tail.split_once("\n[swarm]").unwrap().1;
    let stack = format!(
        "{head}[swarm]{tail}\n[bastion]\ninstance_type = \"t3.micro\"\n\n[state]\nbackend = \"s3\"\nbucket = \"{BUCKET}\"\nkey = \"stacks/sandbox.json\"\n"
    )
    .replace("../.sandbox/testbed/id_ed25519.pub", "id_pipeline.pub");
    std::fs::write(repository.join("stacks/sandbox.toml"), stack).unwrap();
    let world_ssh = format!(
        "Host *\n  ProxyCommand {} {} {} %h %p\n",
        world("nodes/connect").display(),
        bed.id,
        bed.dir.display()
    );
    let pipeline = Pipeline {
        private_key: std::fs::read_to_string(bed.dir.join("id_ed25519")).unwrap(),
        p,
        workflow,
        repository,
        world_ssh,
    };

    // The pull request: `infra validate` names the agent's key and the bastion path; the plan
    // shows the cloud, the Swarm and the service.
    let pr = pipeline.runner("plan");
    let (code, out) = pipeline.run(&pr, "infra validate");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("SSH identity: the ssh-agent at "), "{out}");
    assert!(out.contains("(1 key: SHA256:"), "{out}");
    assert!(
        out.contains("SSH path: through the bastion node.bastion[0]"),
        "{out}"
    );
    let (code, out) = pipeline.run(&pr, &pipeline.step("plan", "Plan"));
    assert_eq!(code, 0, "{out}");
    let md = pipeline.file(&pr, "plan.md");
    for address in [
        "node.bastion[0]",
        "sg.bastion",
        "swarm.node.manager[0]",
        "swarm.service.web",
    ] {
        assert!(md.contains(&format!("`{address}`")), "{address} in\n{md}");
    }
    assert_eq!(pipeline.file(&pr, "github-output").trim(), "changed=true");
    drop(pr);

    // The merge: the plan job saves the plan, the apply job (another runner) applies it.
    let plan_job = pipeline.runner("plan");
    let (code, out) = pipeline.run(&plan_job, &pipeline.step("plan", "Plan"));
    assert_eq!(code, 0, "{out}");
    let apply_job = pipeline.runner("apply");
    std::fs::copy(
        plan_job.checkout.path().join("plan.json"),
        apply_job.checkout.path().join("plan.json"),
    )
    .unwrap();
    drop(plan_job);
    let (code, out) = pipeline.run(&apply_job, &pipeline.step("apply", "Apply the saved plan"));
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("swarm.service.web: Creation complete"),
        "{out}"
    );
    // Every Swarm node serves the demo (the bastion, a testbed node too, runs nothing).
    for address in ["node.manager[0]", "node.worker[0]", "node.worker[1]"] {
        let node = bed.node_of(&instance_of(&pipeline.p, address));
        let t = format!("10.77.{}.{}:3000", bed.id, 10 + node)
            .parse()
            .unwrap();
        serves(t, "demo v1 secret-sha256=");
    }
    // As AWS has it: port 22 of the nodes open only to the bastion, the bastion's to admin_cidrs.
    let dump = pipeline.p.dump();
    assert_eq!(
        rules(&dump, "infra-sandbox-bastion"),
        ["tcp/22-22 from 10.77.0.0/16"]
    );
    let node_rules = rules(&dump, "infra-sandbox-node");
    assert!(
        node_rules.contains(&"tcp/22-22 from infra-sandbox-bastion".to_string()),
        "{node_rules:?}"
    );
    assert!(
        !node_rules
            .iter()
            .any(|r| r.starts_with("tcp/22-22 from 10.")),
        "{node_rules:?}"
    );
    // As the Swarm has it, read with the manager's own docker.
    let manager = bed.node_of(&instance_of(&pipeline.p, "node.manager[0]"));
    assert_eq!(
        bed.sh(
            manager,
            "docker node ls --format '{{.Status}}' | sort | uniq -c | tr -s ' '"
        ),
        "3 Ready"
    );
    // `infra ssh` goes the same way, to a node and to the bastion itself.
    let (code, out) = pipeline.run(&apply_job, "infra ssh manager[0] -- docker node ls -q");
    assert_eq!((code, out.lines().count()), (0, 3), "{out}");
    let (code, out) = pipeline.run(&apply_job, "infra ssh bastion[0] -- hostname");
    assert_eq!(code, 0, "{out}");
    // So does `infra exec`, into a running task on whichever node runs it.
    let (code, out) = pipeline.run(&apply_job, "infra exec web -- cat /version");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("demo v1"), "{out}");
    // The runner cannot reach a node directly: only the bastion answers it.
    let direct = pipeline.run(
        &apply_job,
        &format!(
            "ssh -o BatchMode=yes -o ConnectTimeout=20 ec2-user@{} true",
            instance(&pipeline.p, "node.worker[0]")["public_ip"]
                .as_str()
                .unwrap()
        ),
    );
    assert_ne!(direct.0, 0, "{}", direct.1);
    assert!(direct.1.contains("Connection timed out"), "{}", direct.1);
    // Nothing of the run stayed on the runner but the per-run ssh files; no key anywhere.
    let files = files_under(apply_job.checkout.path());
    let state_files = files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "json") && !f.ends_with("plan.json"));
    assert_eq!(state_files.count(), 0, "no local state: {files:?}");
    for f in files.iter().chain(&files_under(apply_job.home.path())) {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        assert!(
            !text.contains("PRIVATE KEY"),
            "a private key in {}",
            f.display()
        );
    }
    drop(apply_job);

    // Nightly: no drift on a converged cluster; a worker that left the Swarm fails the job.
    let nightly = pipeline.runner("drift");
    let (code, out) = pipeline.run(&nightly, &pipeline.step("drift", "Drift check"));
    assert_eq!(code, 0, "{out}\n{}", pipeline.file(&nightly, "drift.md"));
    drop(nightly);
    let worker = bed.node_of(&instance_of(&pipeline.p, "node.worker[1]"));
    bed.sh(worker, "docker swarm leave >/dev/null");
    // The night goes by: the managers notice that the worker left (heartbeats, a few seconds).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !bed
        .sh(manager, "docker node ls --format '{{.Status}}'")
        .contains("Down")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the manager never saw the worker leave"
        );
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
    let nightly = pipeline.runner("drift");
    let (code, _) = pipeline.run(&nightly, &pipeline.step("drift", "Drift check"));
    let md = pipeline.file(&nightly, "drift.md");
    assert_eq!(code, 2, "drift fails the job:\n{md}");
    assert!(md.contains("`swarm.node.worker[1]`"), "{md}");
}

/// A running instance as EC2 has it (read with boto3).
fn instance(p: &Project, address: &str) -> Value {
    let dump = p.dump();
    dump["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["tags"]["infra:address"] == address && i["state"] == "running")
        .unwrap_or_else(|| panic!("no running {address}"))
        .clone()
}

fn instance_of(p: &Project, address: &str) -> String {
    instance(p, address)["id"].as_str().unwrap().to_string()
}
