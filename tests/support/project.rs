//! A project as the tests run it: a scratch directory with `stacks/<name>.toml` written from a
//! fixture, its own moto, and the real `infra` binary run there with the project's AWS
//! environment; what a run printed and left behind. (The boto3 reader, `Project::aws` and
//! `Project::dump`, is in aws.rs.)

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use super::aws::Moto;

/// A scratch working directory holding `stacks/<name>.toml`, with its own moto.
pub struct Project {
    pub dir: tempfile::TempDir,
    pub moto: Moto,
    pub stack: String,
    pub cert_arn: String,
    /// Appended to the fixture stack file, e.g. a [state] table.
    pub extra: String,
    /// The stack file under tests/fixtures.
    pub fixture: String,
    /// Placeholders in the fixture and their values.
    pub replacements: Vec<(String, String)>,
    /// More environment for infra (template variables, secret values).
    pub env: Vec<(String, String)>,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

impl Project {
    /// The fixture stack `tests/fixtures/moto.toml` with `workers` workers.
    pub fn new(stack: &str, workers: usize) -> Project {
        Project::with_proxy_args(stack, workers, &[])
    }

    /// The same, with more arguments for the AWS proxy (e.g. `--ecr-token-seconds 90`).
    pub fn with_proxy_args(stack: &str, workers: usize, proxy_args: &[&str]) -> Project {
        let dir = tempfile::tempdir().unwrap();
        let moto = Moto::start_with(dir.path(), proxy_args);
        let mut p = Project {
            dir,
            moto,
            stack: stack.to_string(),
            cert_arn: String::new(),
            extra: String::new(),
            fixture: "moto.toml".into(),
            replacements: Vec::new(),
            env: Vec::new(),
        };
        let keys = p.keys();
        p.cert_arn = p.aws(&["import-cert", keys.to_str().unwrap()])["arn"]
            .as_str()
            .unwrap()
            .to_string();
        std::fs::create_dir_all(p.dir.path().join("stacks")).unwrap();
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        std::fs::copy(
            fixtures.join("id_test.pub"),
            p.dir.path().join("stacks/id_test.pub"),
        )
        .unwrap();
        p.write_stack(workers);
        p
    }

    pub fn write_stack(&self, workers: usize) {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let text = std::fs::read_to_string(fixtures.join(&self.fixture))
            .unwrap()
            .replace("CERT_ARN", &self.cert_arn)
            .replace("WORKERS", &workers.to_string());
        let text = self
            .replacements
            .iter()
            .fold(text, |t, (k, v)| t.replace(k.as_str(), v));
        std::fs::write(self.stack_file(), text + &self.extra).unwrap();
    }

    /// The same stack, keeping its state in the moto S3 bucket `bucket`.
    pub fn new_with_s3_state(stack: &str, workers: usize, bucket: &str) -> Project {
        let mut p = Project::new(stack, workers);
        p.aws(&["make-bucket", bucket]);
        p.extra = format!(
            "\n[state]\nbackend = \"s3\"\nbucket = \"{bucket}\"\nkey = \"stacks/{stack}.json\"\n"
        );
        p.write_stack(workers);
        p
    }

    /// Another working directory (a fresh CI runner's checkout) with the same stack file and
    /// key, the same moto, but nothing else.
    pub fn fresh_checkout(&self) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("stacks")).unwrap();
        for f in [format!("{}.toml", self.stack), "id_test.pub".to_string()] {
            std::fs::copy(
                self.dir.path().join("stacks").join(&f),
                dir.path().join("stacks").join(&f),
            )
            .unwrap();
        }
        dir
    }

    /// `infra ARGS` in another directory, against this project's moto.
    pub fn infra_in(&self, dir: &Path, args: &[&str]) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_infra"));
        self.aws_env(&mut cmd);
        cmd.current_dir(dir)
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .args(args)
            .stdin(Stdio::null());
        let out: Output = cmd.output().expect("run infra");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// A command with this project's AWS environment, for running infra the way a shell would.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        self.aws_env(&mut cmd);
        cmd.current_dir(self.dir.path())
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG");
        cmd
    }

    /// Where the harness keeps the private keys of the certificates it imported into ACM (and
    /// the certificates, for clients to trust), named after the certificate's id.
    pub fn keys(&self) -> PathBuf {
        self.dir.path().join("certificates")
    }

    /// The certificate of `cert_arn`, as a PEM file.
    pub fn certificate(&self) -> PathBuf {
        let id = self.cert_arn.rsplit('/').next().unwrap();
        self.keys().join(format!("{id}.crt"))
    }

    /// The CA that issued it: what clients trust.
    pub fn certificate_authority(&self) -> PathBuf {
        let id = self.cert_arn.rsplit('/').next().unwrap();
        self.keys().join(format!("{id}.ca.crt"))
    }

    pub fn stack_file(&self) -> PathBuf {
        self.dir.path().join(format!("stacks/{}.toml", self.stack))
    }

    pub fn state_file(&self) -> PathBuf {
        self.dir.path().join(format!("state/{}.json", self.stack))
    }

    /// The id the state records for `address`.
    pub fn id_of(&self, address: &str) -> String {
        let state: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(self.state_file()).unwrap()).unwrap();
        state["resources"][address]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("{address} is not in the state"))
            .to_string()
    }

    /// The project's AWS environment: its moto (through the strictness proxy), test
    /// credentials, its own HOME, and `env`.
    pub(super) fn aws_env(&self, cmd: &mut Command) {
        cmd.env("AWS_ENDPOINT_URL", &self.moto.endpoint)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("HOME", self.dir.path())
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_SESSION_TOKEN")
            .envs(self.env.iter().map(|(k, v)| (k, v)));
    }

    /// Runs the real binary in the project directory.
    pub fn infra(&self, args: &[&str]) -> Run {
        self.infra_in(self.dir.path(), args)
    }

    /// `infra ARGS`, which must succeed. On failure its error comes first: CI logs keep the
    /// head and tail of a long message.
    pub fn ok(&self, args: &[&str]) -> Run {
        let run = self.infra(args);
        assert_eq!(
            run.code,
            0,
            "infra {args:?} failed:\n{}\nwhat it printed:\n{}",
            run.stderr,
            run.all()
        );
        run
    }
}

/// What a finished process printed: its stdout, then its stderr.
pub fn printed(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}
