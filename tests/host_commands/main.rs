//! Every command that the tests, the test world and the sandbox run on this machine comes from
//! a package in scripts/host-packages, so that scripts/setup installs it on a fresh machine. (A
//! test once ran `iptables`, which setup never installed. It passed only on machines where
//! someone had installed iptables by hand.)
//!
//! The check scans the sources for the commands they run on this machine:
//! - Rust (src/, tests/): string literals given to `Command::new`, with their `.arg`/`.args`
//!   chains followed through wrappers (`nsenter --net=… iptables …`, `ip netns exec NS …`,
//!   `sh -c "SCRIPT"`); calls of the tree's own functions that run what they are given
//!   (`p.command("bash")`, a `fn in_netns(argv)` helper); literal `["ip", "netns", "exec", …]`
//!   and `["nsenter", …]` argv arrays; and `ssh` wherever the openssh crate is used (it runs
//!   the system ssh).
//! - Python (tests/world/, scripts/): `subprocess.*([…])` argv lists, calls to a module's own
//!   `def f(*cmd)` wrappers around subprocess, the same argv arrays, and `shutil.which("…")`.
//! - Shell (scripts/, tests/world/, .ci/, and the example workflow's steps that the tests run):
//!   the first word of each simple command, in `$(…)` too, and through wrappers.
//!
//! It cannot see a program named by a variable or built at run time (`Command::new(path)`,
//! `"$INFRA_VENV/bin/python"`), commands in strings that are only data to it (heredoc bodies,
//! `trap '…'`, `sh -c "$script"` with a variable, `os.system`), or a `Command` whose arguments
//! are added after the chain of calls that creates it (`let mut c = Command::new(…);
//! c.arg(…)`). Commands that run inside a testbed node are not its concern, and it tells them
//! apart like this: `testbed exec` (the tests' `bed.sh`) goes through a program named by a
//! path; `in_node`/`in_root` are shell functions, whose arguments are not commands;
//! `nsenter -r` and `chroot` switch to the node's root; and the files in `scan::IN_NODE` run
//! there.
//!
//! The modules: `scan` picks the files and the scanner for each (`rust`, `python`, `shell`,
//! `workflow`); each scanner hands the argvs it finds to `argv`, which follows wrappers; `text`
//! holds the char-scanning helpers they share.

mod argv;
mod python;
mod rust;
mod scan;
mod shell;
mod text;
mod workflow;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use scan::{read, scan};

const LIST: &str = "scripts/host-packages";

#[test]
fn every_command_run_on_this_machine_is_in_the_host_package_list() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let list = read_list(&root.join(LIST));
    let uses = scan(root);
    let mut found: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for u in &uses {
        found
            .entry(&u.command)
            .or_default()
            .insert(format!("{}:{}", u.file, u.line));
    }
    // `cargo test -q --test host_commands -- --nocapture` shows what was found where.
    for (command, places) in &found {
        let package = list.get(*command).map_or("?", |(_, p)| p.as_str());
        println!(
            "{command:16} {package:20} {}",
            places.iter().cloned().collect::<Vec<_>>().join(" ")
        );
    }
    let unlisted: Vec<String> = uses
        .iter()
        .filter(|u| !list.contains_key(&u.command))
        .map(|u| {
            format!(
                "{}:{} runs `{c}` on this machine, and {LIST} does not name it: add `{c}` to \
                 the [install] line of the Debian package that brings it, or start one (dpkg -S \
                 \"*bin/{c}\" || dpkg -S \"$(readlink -f \"$(type -P {c})\")\" names it).",
                u.file,
                u.line,
                c = u.command
            )
        })
        .collect();
    let advice = "(scripts/setup installs what [install] names on a fresh machine. A command \
        that every Debian and Ubuntu base system has goes in [base]; one that runs inside a \
        testbed node, not on this machine, in a file named in IN_NODE of tests/host_commands/scan.rs.)";
    assert!(
        unlisted.is_empty(),
        "\n{}\n\n{advice}\n",
        unlisted.join("\n")
    );
    // The scan keeps working: it finds what the test world surely runs.
    for surely in [
        "ip",
        "ssh",
        "nsenter",
        "docker-registry",
        "debootstrap",
        "haproxy",
    ] {
        assert!(
            found.contains_key(surely),
            "the scan no longer finds `{surely}`"
        );
    }
}

/// The list is as scripts/setup reads it: `PACKAGE COMMAND…` lines (comments on lines of their
/// own) in the sections [install], [base] and [other].
#[test]
fn the_list_is_well_formed() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join(LIST)).unwrap();
    let mut sections = vec![];
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with('[') {
            sections.push(line.to_string());
            continue;
        }
        assert!(
            !sections.is_empty(),
            "{LIST}:{}: a line before any section",
            n + 1
        );
        assert!(
            line.split_whitespace().count() >= 2 && !line.contains('#'),
            "{LIST}:{}: not `PACKAGE COMMAND…`: {line}",
            n + 1
        );
    }
    assert_eq!(sections, ["[install]", "[base]", "[other]"]);
}

/// The list: each command, with its section and package.
fn read_list(path: &Path) -> BTreeMap<String, (String, String)> {
    let text = read(path);
    let mut section = String::new();
    let mut list = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with('[') {
            section = line.to_string();
            continue;
        }
        let mut words = line.split_whitespace();
        let package = words.next().unwrap().to_string();
        for command in words {
            list.insert(command.to_string(), (section.clone(), package.clone()));
        }
    }
    list
}

/// The commands of (line, command) pairs: for the scanners' own tests.
#[cfg(test)]
fn commands(found: Vec<(usize, String)>) -> Vec<String> {
    found.into_iter().map(|(_, c)| c).collect()
}
