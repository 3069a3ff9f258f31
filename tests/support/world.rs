//! Where the test world lives: the project's Python venv, the files under tests/world, and
//! loopback ports for the servers the harness starts from them.

use std::ffi::OsStr;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::aws::Moto;

pub fn venv() -> PathBuf {
    std::env::var_os("INFRA_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv"))
}

/// A file of the test world (tests/world/…).
pub fn world(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/world")
        .join(path)
}

/// A part of the test world that reads moto directly, as AWS's own parts read AWS: one Python
/// script of tests/world (`script`, e.g. "nodes/reaper.py") with `args`, its stderr in `log`.
/// Killed on drop.
pub struct WorldService(Child);

impl WorldService {
    pub fn start<S: AsRef<OsStr>>(
        moto: &Moto,
        script: &str,
        args: impl IntoIterator<Item = S>,
        log: &Path,
    ) -> WorldService {
        let mut cmd = Command::new(venv().join("bin/python"));
        let child = moto
            .direct_env(&mut cmd)
            .arg(world(script))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("start {script}: {e}"));
        WorldService(child)
    }
}

impl Drop for WorldService {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits (30 s at most) until a server we started listens on a loopback port.
pub fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not start on port {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub(super) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
