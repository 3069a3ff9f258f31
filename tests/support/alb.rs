//! The ALB data plane (tests/world/alb/alb.py): HAProxy in a testbed playing the load balancer
//! a stack creates in moto. `Testbed::serve_load_balancer` starts it, `Testbed::load_balancer`
//! is how clients reach it.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::aws::Moto;
use super::world::{venv, world};

/// The ALB data plane (tests/world/alb/alb.py) of a testbed: HAProxy at 10.77.ID.2 playing the
/// load balancer the stack creates in moto (which it reads directly, as any client would), and
/// writing target health for the AWS proxy. Stopped on drop.
pub struct Alb {
    child: Child,
}

impl Alb {
    pub fn start(id: &str, dir: &Path, moto: &Moto, keys: &Path) -> Alb {
        let mut cmd = Command::new(venv().join("bin/python"));
        let child = moto
            .direct_env(&mut cmd)
            .arg(world("alb/alb.py"))
            .args(["--id", id])
            .arg("--dir")
            .arg(dir)
            .arg("--keys")
            .arg(keys)
            // The keys of the certificates the world's ACM issued (tests/world/aws/proxy.py).
            .arg("--keys")
            .arg(moto.world.join("acm"))
            .arg("--health")
            .arg(&moto.target_health)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.with_extension("log")).unwrap())
            .spawn()
            .expect("start the ALB data plane");
        Alb { child }
    }
}

impl Drop for Alb {
    fn drop(&mut self) {
        // SIGTERM: it stops HAProxy and removes its network namespace.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
