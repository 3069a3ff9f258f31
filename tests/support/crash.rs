//! Kill points: a run of `infra` killed with SIGKILL part-way, once it has done so many things
//! (AWS requests through a `FaultProxy`, SSH commands), then what the next run must leave.
//! `kill_point` spreads the points over a measured run, `kill_at_point` kills a run at one;
//! tests/faults.rs, tests/scale.rs and tests/lifecycle.rs go through them.

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use super::aws::{FaultProxy, live_instances};
use super::project::Project;

/// What a run has done so far: AWS requests through the proxy since `before`, and SSH connects
/// and commands (the tool logs each at debug level, to `stderr`).
pub fn actions(proxy: &FaultProxy, before: usize, stderr: &Path) -> usize {
    let ssh = std::fs::read_to_string(stderr)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(" ssh node."))
        .count();
    proxy.requests().len() - before + ssh
}

/// `infra ARGS -v` through the proxy, its stderr in `stderr`.
pub fn spawn_via(p: &Project, proxy: &FaultProxy, args: &[&str], stderr: &Path) -> Child {
    p.command(env!("CARGO_BIN_EXE_infra"))
        .env("AWS_ENDPOINT_URL", &proxy.endpoint)
        .args(args)
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(stderr).unwrap())
        .spawn()
        .unwrap()
}

/// Kill point `point` of `points` spread evenly over a run, from its action `first` to its
/// action `last`: how many actions into the run it is killed.
pub fn kill_point(point: usize, points: usize, first: usize, last: usize) -> usize {
    first + point * (last - first) / (points - 1)
}

/// Lets `child`, a run of infra just started, go on until `progress()` (what it has done since
/// it started, counted the test's way) reaches `at`, then kills it with SIGKILL. Returns whether
/// it was killed (false: it finished first). With a `timeout`, a run still going after it fails
/// kill point `point`.
pub fn kill_at_point(
    mut child: Child,
    point: usize,
    at: usize,
    progress: impl Fn() -> usize,
    timeout: Option<Duration>,
) -> bool {
    let deadline = timeout.map(|t| Instant::now() + t);
    while child.try_wait().unwrap().is_none() {
        if progress() >= at {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            return true;
        }
        if let Some(deadline) = deadline {
            assert!(Instant::now() < deadline, "point {point}: the run hangs");
        }
        // An action (an AWS request through the proxy, an SSH command) takes milliseconds:
        // looking every 5 ms kills within one of the point, without rereading both logs
        // a thousand times a second.
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

/// After run `point` of a kill test: exactly the instances of `addresses` live (no orphan, no
/// duplicate), tracked by the state and the only targets registered, and the next plan clean.
pub fn assert_exactly(p: &Project, addresses: &[&str], point: usize) {
    let dump = p.dump();
    let ids = |v: &serde_json::Value| v.as_str().unwrap().to_string();
    let live: std::collections::BTreeSet<String> = live_instances(&dump)
        .iter()
        .map(|i| ids(&i["id"]))
        .collect();
    let expected: std::collections::BTreeSet<String> =
        addresses.iter().map(|a| p.id_of(a)).collect();
    assert_eq!(
        live, expected,
        "point {point}: no orphan or duplicate instance"
    );
    let registered: std::collections::BTreeSet<String> = dump["target_groups"][0]["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(ids)
        .collect();
    assert_eq!(registered, expected, "point {point}: no stale target");
    let plan = p.infra(&["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "point {point}: clean:\n{}", plan.all());
}
