//! The testbed's DNS (tests/world/nodes/resolver.py): what the internet's DNS and the
//! Amazon-provided resolver answer for the names moto's Route 53 holds, at 10.77.ID.3 (and
//! 169.254.169.253 for the nodes). `Testbed::serve_dns` starts it.

use std::process::{Child, Command, Stdio};

use super::aws::Moto;
use super::world::{venv, world};

/// The resolver of one testbed, reading the project's moto. Stopped on drop.
pub struct Dns(Child);

impl Dns {
    pub fn start(id: &str, dir: &std::path::Path, moto: &Moto) -> Dns {
        let mut cmd = Command::new(venv().join("bin/python"));
        let child = moto
            .direct_env(&mut cmd)
            .arg(world("nodes/resolver.py"))
            .arg("--netns")
            .arg(format!("/var/run/netns/tb{id}-md"))
            .args(["--id", id])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("dns.log")).unwrap())
            .spawn()
            .expect("start the testbed's DNS");
        Dns(child)
    }
}

impl Drop for Dns {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
