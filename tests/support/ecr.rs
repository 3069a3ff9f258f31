//! Amazon ECR and the instance metadata service as a testbed's nodes reach them: the registry's
//! front (tests/world/ecr/front.py, HTTPS at 10.77.ID.1:443 under ECR's names) and IMDSv2
//! (tests/world/nodes/imds.py, 169.254.169.254 in the testbed's namespace tbID-md), both reading
//! the project's moto. `Testbed::serve_registry` starts them.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use super::aws::Moto;
use super::nodes::testbed;
use super::world::{venv, world};

/// The registry's front and the metadata service of one testbed. Stopped on drop.
pub struct EcrWorld {
    children: Vec<Child>,
}

impl EcrWorld {
    pub fn start(id: &str, dir: &Path, moto: &Moto) -> EcrWorld {
        let images = testbed(&["images"]);
        let images = Path::new(images.trim());
        let aws_env = |cmd: &mut Command| {
            moto.direct_env(cmd).stdout(Stdio::null());
        };
        let mut front = Command::new(venv().join("bin/python"));
        front
            .arg(world("ecr/front.py"))
            .args(["--id", id, "--aws", &moto.endpoint])
            .arg("--world")
            .arg(&moto.world)
            .arg("--ca-cert")
            .arg(images.join("world-ca.crt"))
            .arg("--ca-key")
            .arg(images.join("world-ca.key"))
            .stderr(std::fs::File::create(dir.join("ecr-front.log")).unwrap());
        aws_env(&mut front);
        let mut imds = Command::new(venv().join("bin/python"));
        imds.arg(world("nodes/imds.py"))
            .arg("--netns")
            .arg(format!("/var/run/netns/tb{id}-md"))
            .arg("--map")
            .arg(dir.join("map"))
            .arg("--world")
            .arg(&moto.world)
            .stderr(std::fs::File::create(dir.join("imds.log")).unwrap());
        aws_env(&mut imds);
        let children = vec![
            front.spawn().expect("start the ECR front"),
            imds.spawn().expect("start the metadata service"),
        ];
        EcrWorld { children }
    }
}

impl Drop for EcrWorld {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
