//! Which sources the check reads, and with which scanner: the Rust trees, the scripts of the
//! test world, scripts/ and .ci/, and the example workflow's tested steps.

use std::path::{Path, PathBuf};

use crate::python::python_commands;
use crate::rust::{rust_commands, rust_wrappers};
use crate::shell::shell_commands;
use crate::workflow::tested_steps_commands;

/// Scripts of the test world that run inside a node or a container, not on this machine.
const IN_NODE: &[(&str, &str)] = &[
    (
        "tests/world/nodes/init",
        "a node's init: ./boot runs it chrooted into the node's root",
    ),
    (
        "tests/world/nodes/demo/serve",
        "the demo image's entry point: runs in a container on a node",
    ),
];

/// This test's own files: their examples are not commands.
const THIS_TEST: &str = "tests/host_commands";

/// The workflow whose steps the tests run.
const WORKFLOW: &str = "examples/github-actions/infra.yml";

/// A place that runs a command on this machine.
pub struct Use {
    pub file: String,
    pub line: usize,
    pub command: String,
}

/// Every command the sources run on this machine, with where.
pub fn scan(root: &Path) -> Vec<Use> {
    let mut uses = vec![];
    // The Rust trees, each with its own wrappers (src's `.command` is openssh's, on a node).
    rust_tree(root, "src", &mut uses);
    let tests_text = rust_tree(root, "tests", &mut uses).concat();
    for file in scripts(root) {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue; // not text
        };
        if file.extension().is_some_and(|e| e == "py") {
            uses.extend(uses_in(root, &file, python_commands(&text)));
        } else if text.starts_with("#!") && text.lines().next().unwrap().ends_with("sh") {
            uses.extend(uses_in(root, &file, shell_commands(&text)));
        }
    }
    // The example workflow's steps that a test runs (by name) with bash on this machine.
    let workflow = root.join(WORKFLOW);
    let found = tested_steps_commands(&read(&workflow), &tests_text);
    uses.extend(uses_in(root, &workflow, found));
    uses
}

/// The commands of a tree's Rust files (but this test's) into `uses`; their texts.
fn rust_tree(root: &Path, tree: &str, uses: &mut Vec<Use>) -> Vec<String> {
    let files: Vec<PathBuf> = files_under(&root.join(tree))
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e == "rs"))
        .filter(|f| !f.starts_with(root.join(THIS_TEST)))
        .collect();
    let texts: Vec<String> = files.iter().map(|f| read(f)).collect();
    let wrappers = rust_wrappers(&texts);
    for (file, text) in files.iter().zip(&texts) {
        uses.extend(uses_in(root, file, rust_commands(text, &wrappers)));
    }
    texts
}

/// The files of the test world, scripts/ and .ci/, but those that run in a node.
fn scripts(root: &Path) -> Vec<PathBuf> {
    let mut files = files_under(&root.join("tests/world"));
    files.extend(files_under(&root.join("scripts")));
    files.extend(files_under(&root.join(".ci")));
    files.retain(|file| !IN_NODE.iter().any(|(f, _)| root.join(f) == *file));
    files
}

/// The (line, command) pairs found in `file` as uses.
fn uses_in(root: &Path, file: &Path, found: Vec<(usize, String)>) -> impl Iterator<Item = Use> {
    let file = file.strip_prefix(root).unwrap().display().to_string();
    found.into_iter().map(move |(line, command)| Use {
        file: file.clone(),
        line,
        command,
    })
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The files under `dir`, sorted (none if it is missing).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = vec![];
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files.sort();
    files
}
