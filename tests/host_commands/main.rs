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
//! `nsenter -r` and `chroot` switch to the node's root; and the files in `IN_NODE` run there.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const LIST: &str = "scripts/host-packages";

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

/// Programs that wrap another, which is on this machine too: `setsid CMD`, `ip netns exec NS CMD`.
const WRAPPERS: &[&str] = &[
    "sudo", "setsid", "nohup", "env", "timeout", "xargs", "nsenter", "unshare", "ip",
];

/// Bash's builtins and keywords: no program behind them.
const BUILTINS: &str = "! . : [ [[ ]] { } alias bg bind break builtin caller case cd command \
    compgen complete compopt continue declare dirs disown do done echo elif else enable esac eval \
    exec exit export false fc fg fi for function getopts hash help history if in jobs kill let \
    local logout mapfile popd printf pushd pwd read readarray readonly return select set shift \
    shopt source suspend test then time times trap true type typeset ulimit umask unalias unset \
    until wait while";

/// Keywords after which a command starts (`if CMD`, `then CMD`, `! CMD`, `{ CMD`).
const KEYWORDS: &[&str] = &[
    "!", "{", "}", "if", "then", "else", "elif", "fi", "do", "done", "while", "until", "time",
];

/// A place that runs a command on this machine.
struct Use {
    file: String,
    line: usize,
    command: String,
}

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
        testbed node, not on this machine, in a file named in IN_NODE of tests/host_commands.rs.)";
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
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
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

/// Every command the sources run on this machine, with where.
fn scan(root: &Path) -> Vec<Use> {
    let mut uses = vec![];
    let mut add = |file: &Path, found: Vec<(usize, String)>| {
        let file = file.strip_prefix(root).unwrap().display().to_string();
        uses.extend(found.into_iter().map(|(line, command)| Use {
            file: file.clone(),
            line,
            command,
        }));
    };
    // The Rust trees, each with its own wrappers (src's `.command` is openssh's, on a node);
    // not this file: its examples are not commands.
    let mut tests_text = String::new();
    for tree in ["src", "tests"] {
        let files: Vec<PathBuf> = files_under(&root.join(tree))
            .into_iter()
            .filter(|f| f.extension().is_some_and(|e| e == "rs"))
            .filter(|f| *f != root.join("tests/host_commands.rs"))
            .collect();
        let texts: Vec<String> = files.iter().map(|f| read(f)).collect();
        let wrappers = rust_wrappers(&texts);
        for (file, text) in files.iter().zip(&texts) {
            add(file, rust_commands(text, &wrappers));
        }
        if tree == "tests" {
            tests_text = texts.concat();
        }
    }
    let mut scripts = files_under(&root.join("tests/world"));
    scripts.extend(files_under(&root.join("scripts")));
    scripts.extend(files_under(&root.join(".ci")));
    for file in scripts {
        if IN_NODE.iter().any(|(f, _)| root.join(f) == file) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue; // not text
        };
        if file.extension().is_some_and(|e| e == "py") {
            add(&file, python_commands(&text));
        } else if text.starts_with("#!") && text.lines().next().unwrap().ends_with("sh") {
            add(&file, shell_commands(&text));
        }
    }
    // The example workflow's steps that a test runs (by name) with bash on this machine.
    let workflow = root.join("examples/github-actions/infra.yml");
    for (name, line, script) in workflow_steps(&read(&workflow)) {
        if tests_text.contains(&format!("\"{name}\"")) {
            let found = shell_commands(&script);
            add(
                &workflow,
                found.into_iter().map(|(l, c)| (line + l, c)).collect(),
            );
        }
    }
    uses
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

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

// ---- argv: what a command line runs, through wrappers --------------------------------------

/// One word of an argv: a literal, or something known only at run time (a variable, an
/// expression).
#[derive(Clone, Debug, PartialEq)]
enum Arg {
    Lit(String),
    Unknown,
}

/// The programs an argv runs on this machine: its first word; through a wrapper (`setsid`,
/// `sudo`, `timeout N`, `xargs`, `env`, `nsenter`/`unshare` options, `ip netns exec NS`) the
/// program it wraps; through `sh -c SCRIPT` (SCRIPT a literal) the commands of SCRIPT. It stops
/// at a word known only at run time, at a path that is not a system directory's (the project's
/// own scripts, the venv's python), and where the rest runs in another root (`chroot`,
/// `nsenter -r`, `unshare -R`).
fn programs(argv: &[Arg]) -> Vec<String> {
    let mut out = vec![];
    let mut i = 0;
    while let Some(Arg::Lit(word)) = argv.get(i) {
        let Some(name) = program_name(word) else {
            break;
        };
        out.push(name.clone());
        i += 1;
        let lit = |j: usize| match argv.get(j) {
            Some(Arg::Lit(s)) => Some(s.as_str()),
            _ => None,
        };
        if name == "sh" || name == "bash" || name == "dash" {
            // sh [-e] -c SCRIPT: the script's own commands.
            while let Some(opt) = lit(i).filter(|o| o.starts_with('-')) {
                i += 1;
                if opt.ends_with('c') {
                    if let Some(script) = lit(i) {
                        out.extend(shell_commands(script).into_iter().map(|(_, c)| c));
                    }
                    break;
                }
            }
            break;
        }
        if name == "ip" {
            // ip netns exec NS CMD…
            if lit(i) == Some("netns") && lit(i + 1) == Some("exec") {
                i += 3;
                continue;
            }
            break;
        }
        if !WRAPPERS.contains(&name.as_str()) {
            break;
        }
        // Options (and the values of those that take one), then the wrapped program.
        let takes_value: &[&str] = match name.as_str() {
            "sudo" => &["-u", "-g"],
            "nsenter" => &["-t", "--target", "-S", "-G"],
            "timeout" => &["-s", "-k", "--signal", "--kill-after"],
            "xargs" => &["-n", "-I", "-P", "-L", "-d", "-s", "-a", "-E"],
            "env" => &["-u"],
            _ => &[],
        };
        // nsenter -r, unshare -R: the wrapped program runs in another root (a node's).
        let other_root: &[&str] = match name.as_str() {
            "nsenter" => &["-r", "--root"],
            "unshare" => &["-R", "--root"],
            _ => &[],
        };
        while let Some(opt) = lit(i).filter(|o| o.starts_with('-')) {
            if other_root
                .iter()
                .any(|r| opt == *r || opt.starts_with(&format!("{r}=")))
            {
                return out;
            }
            i += if takes_value.contains(&opt) { 2 } else { 1 };
            if opt == "--" {
                break;
            }
        }
        if name == "env" {
            while lit(i).is_some_and(|w| w.contains('=')) {
                i += 1;
            }
        }
        if name == "timeout" {
            i += 1; // the duration
        }
    }
    out
}

/// Literal argv arrays of wrapped commands, wherever they are built: `["ip", "netns", "exec",
/// NS, CMD, …]`, `["nsenter", "--net=…", CMD, …]` (a helper may build one and run it later).
fn wrapped_arrays(code: &[char], quotes: &[char], arg: fn(&str) -> Arg) -> Vec<(usize, String)> {
    let mut out = vec![];
    for open in (0..code.len()).filter(|&i| code[i] == '[') {
        let Some(close) = matching(code, open, quotes) else {
            continue;
        };
        let argv: Vec<Arg> = split_top(&text_of(&code[open + 1..close]), quotes)
            .iter()
            .map(|e| arg(e))
            .collect();
        let is = |i: usize, word: &str| argv.get(i) == Some(&Arg::Lit(word.to_string()));
        if is(0, "nsenter") || (is(0, "ip") && is(1, "netns") && is(2, "exec")) {
            let line = newlines(&code[..open]) + 1;
            out.extend(programs(&argv).into_iter().map(|c| (line, c)));
        }
    }
    out
}

/// A program's name as PATH finds it: `iptables`, or `/usr/sbin/iptables` in a system
/// directory; None for any other path (a file of the project, the venv's python).
fn program_name(word: &str) -> Option<String> {
    if !word.contains('/') {
        return (!word.is_empty()).then(|| word.to_string());
    }
    for dir in ["/usr/bin/", "/usr/sbin/", "/bin/", "/sbin/"] {
        if let Some(name) = word.strip_prefix(dir).filter(|n| !n.contains('/')) {
            return Some(name.to_string());
        }
    }
    None
}

// ---- Rust -----------------------------------------------------------------------------------

/// Stands for an argument that a function's caller gives (a parameter): where `programs`
/// reaches it, the function runs what its callers give it.
const GIVEN: &str = "<given>";

/// A Rust file with its comment lines blanked (line numbers kept), as chars.
fn rust_code(text: &str) -> Vec<char> {
    let lines: Vec<&str> = text
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("//") {
                ""
            } else {
                l
            }
        })
        .collect();
    lines.join("\n").chars().collect()
}

/// Each `Command::new(…)` of a file: where, the function it is in, and its argv as far as the
/// chain of calls that creates it shows (`.arg(…)`, `.args([…])`); a parameter of that
/// function is `GIVEN`.
fn command_chains(code: &[char]) -> Vec<(usize, String, Vec<Arg>)> {
    let mut chains = vec![];
    for at in find_all(code, "Command::new(") {
        let open = at + "Command::new".len();
        let Some(close) = matching(code, open, &['"']) else {
            continue;
        };
        let (function, params) = enclosing_fn(code, at);
        let arg = |expr: &str| match rust_arg(expr) {
            Arg::Unknown if params.contains(&expr.trim().trim_start_matches('&').to_string()) => {
                Arg::Lit(GIVEN.to_string())
            }
            known => known,
        };
        let mut argv = vec![arg(&text_of(&code[open + 1..close]))];
        let mut i = close + 1;
        // The chain: .method(…) after .method(…), until something else.
        loop {
            while code.get(i).is_some_and(|c| c.is_whitespace()) {
                i += 1;
            }
            let name_end =
                (i + 1..code.len()).find(|&j| !(code[j].is_alphanumeric() || code[j] == '_'));
            let (Some('.'), Some(j)) = (code.get(i), name_end) else {
                break;
            };
            let Some(end) = (code[j] == '(')
                .then(|| matching(code, j, &['"']))
                .flatten()
            else {
                break;
            };
            let inner = text_of(&code[j + 1..end]);
            match text_of(&code[i + 1..j]).as_str() {
                "arg" => argv.push(arg(&inner)),
                "args" => match rust_list(&inner) {
                    Some(elements) => argv.extend(elements.iter().map(|e| arg(e))),
                    None => argv.push(arg(&inner)),
                },
                "status" | "output" | "spawn" | "exec" => break,
                _ => {}
            }
            i = end + 1;
        }
        chains.push((at, function, argv));
    }
    chains
}

/// The functions of Rust files that run a command their callers give: `fn f(program: &str)`
/// holding `Command::new(program)`, or `fn f(argv: &[&str])` holding
/// `Command::new("nsenter").arg(…).args(argv)`.
fn rust_wrappers(texts: &[String]) -> BTreeSet<String> {
    let mut wrappers = BTreeSet::new();
    for text in texts {
        for (_, function, argv) in command_chains(&rust_code(text)) {
            if !function.is_empty() && programs(&argv).iter().any(|p| p == GIVEN) {
                wrappers.insert(function);
            }
        }
    }
    wrappers
}

/// Commands a Rust file runs: each `Command::new("PROGRAM")` with its `.arg`/`.args` chain,
/// through `programs`; each call of a wrapper (`rust_wrappers`: `p.command("bash")`,
/// `bed.in_netns(3, &["iptables", …])`) with its first string (the program) or array (the argv);
/// literal `["ip", "netns", "exec", NS, CMD, …]` and `["nsenter", …, CMD, …]` arrays; and `ssh`
/// where the openssh crate is used.
fn rust_commands(text: &str, wrappers: &BTreeSet<String>) -> Vec<(usize, String)> {
    let code = rust_code(text);
    let line_of = |i: usize| newlines(&code[..i]) + 1;
    let mut out = vec![];
    for (at, _, argv) in command_chains(&code) {
        out.extend(
            programs(&argv)
                .into_iter()
                .filter(|p| p != GIVEN)
                .map(|c| (line_of(at), c)),
        );
    }
    for wrapper in wrappers {
        for at in find_all(&code, &format!("{wrapper}(")) {
            let open = at + wrapper.len();
            let called = at == 0 || !(code[at - 1].is_alphanumeric() || code[at - 1] == '_');
            if !called || text_of(&code[at.saturating_sub(3)..at]) == "fn " {
                continue;
            }
            let Some(close) = matching(&code, open, &['"']) else {
                continue;
            };
            let args = split_top(&text_of(&code[open + 1..close]), &['"']);
            let argv = args.iter().find_map(|a| match (rust_arg(a), rust_list(a)) {
                (Arg::Lit(program), _) => Some(vec![Arg::Lit(program)]),
                (_, Some(elements)) => Some(elements.iter().map(|e| rust_arg(e)).collect()),
                _ => None,
            });
            out.extend(
                programs(&argv.unwrap_or_default())
                    .into_iter()
                    .map(|c| (line_of(at), c)),
            );
        }
    }
    out.extend(wrapped_arrays(&code, &['"'], rust_arg));
    if let Some(at) = find_all(&code, "openssh::").first() {
        out.push((line_of(*at), "ssh".to_string()));
    }
    out.sort();
    out.dedup();
    out
}

/// The function a position is in (the last `fn NAME(…)` before it) and its parameters' names.
fn enclosing_fn(code: &[char], at: usize) -> (String, Vec<String>) {
    let Some(start) = find_all(&code[..at], "fn ")
        .into_iter()
        .rfind(|&i| i == 0 || !code[i - 1].is_alphanumeric())
    else {
        return (String::new(), vec![]);
    };
    let name: String = code[start + 3..]
        .iter()
        .take_while(|c| c.is_alphanumeric() || **c == '_')
        .collect();
    let Some(open) = (start..at).find(|&i| code[i] == '(') else {
        return (name, vec![]);
    };
    let Some(close) = matching(code, open, &['"']) else {
        return (name, vec![]);
    };
    let params = split_top(&text_of(&code[open + 1..close]), &['"'])
        .iter()
        .filter_map(|p| {
            p.split_once(':')
                .map(|(n, _)| n.trim().trim_start_matches("mut ").to_string())
        })
        .collect();
    (name, params)
}

/// One argument expression: a plain string literal, or a `format!("-…")` (an option whose
/// value is not known here), or unknown.
fn rust_arg(expr: &str) -> Arg {
    let expr = expr.trim().trim_start_matches('&');
    if let Some(lit) = string_literal(expr, &['"']) {
        return Arg::Lit(lit);
    }
    if expr.starts_with("format!(\"-") {
        return Arg::Lit("-".to_string());
    }
    Arg::Unknown
}

/// The elements of an array expression, `[a, b]`, `&[a, b]` or `vec![a, b]`.
fn rust_list(expr: &str) -> Option<Vec<String>> {
    let expr = expr
        .trim()
        .trim_start_matches('&')
        .trim_start_matches("vec!");
    let inner = expr.strip_prefix('[')?.strip_suffix(']')?;
    Some(split_top(inner, &['"']))
}

// ---- Python ---------------------------------------------------------------------------------

/// Commands a Python file runs: `subprocess.run/Popen/call/check_call/check_output([…])`,
/// calls of the module's own wrappers (`def sh(*cmd): … subprocess.run(cmd …)`), through
/// `programs`; and the programs it looks up with `shutil.which("…")` (to copy, not run: they
/// must be on this machine all the same).
fn python_commands(text: &str) -> Vec<(usize, String)> {
    let chars: Vec<char> = text.chars().collect();
    let quotes = ['"', '\''];
    let line_of = |i: usize| chars[..i].iter().filter(|c| **c == '\n').count() + 1;
    let mut calls: Vec<(String, bool)> = ["run", "Popen", "call", "check_call", "check_output"]
        .iter()
        .map(|f| (format!("subprocess.{f}("), true))
        .collect();
    calls.extend(
        python_wrappers(text)
            .into_iter()
            .map(|f| (format!("{f}("), false)),
    );
    let mut out = vec![];
    for (call, takes_list) in &calls {
        for (byte, _) in text.match_indices(call.as_str()) {
            let before = text[..byte].chars().last();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.') && !takes_list {
                continue; // another function's name ending the same way, or a method
            }
            if text[..byte].ends_with("def ") {
                continue;
            }
            let at = text[..byte].chars().count();
            let open = at + call.chars().count() - 1;
            let Some(close) = matching(&chars, open, &quotes) else {
                continue;
            };
            let inner: String = chars[open + 1..close].iter().collect();
            let args = split_top(&inner, &quotes);
            let argv: Vec<Arg> = if *takes_list {
                // The argv is the first argument, a list literal.
                let first = args.first().map(|a| a.trim()).unwrap_or("");
                match first.strip_prefix('[').and_then(|f| f.strip_suffix(']')) {
                    Some(list) => split_top(list, &quotes)
                        .iter()
                        .map(|e| python_arg(e))
                        .collect(),
                    None => continue,
                }
            } else {
                // The positional arguments are the argv.
                args.iter()
                    .take_while(|a| !a.contains('=') || string_literal(a.trim(), &quotes).is_some())
                    .map(|a| python_arg(a))
                    .collect()
            };
            let line = line_of(at);
            out.extend(programs(&argv).into_iter().map(|c| (line, c)));
        }
    }
    for (byte, _) in text.match_indices("shutil.which(") {
        let rest = &text[byte + "shutil.which(".len()..];
        if let Some(end) = rest.find(')')
            && let Some(name) = string_literal(rest[..end].trim(), &quotes)
        {
            out.push((text[..byte].matches('\n').count() + 1, name));
        }
    }
    out.extend(wrapped_arrays(&chars, &quotes, python_arg));
    out.sort();
    out.dedup();
    out
}

/// The module's functions that run their `*args` as a command: `def NAME(*ARGS…):` whose body
/// hands ARGS to subprocess.
fn python_wrappers(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut wrappers = vec![];
    for (n, line) in lines.iter().enumerate() {
        let Some(def) = line.trim_start().strip_prefix("def ") else {
            continue;
        };
        let Some((name, params)) = def.split_once("(*") else {
            continue;
        };
        let param: String = params
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let indent = line.len() - line.trim_start().len();
        let body = lines[n + 1..]
            .iter()
            .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent);
        if body
            .into_iter()
            .any(|l| l.contains("subprocess.") && l.contains(&format!("({param}")))
        {
            wrappers.push(name.trim().to_string());
        }
    }
    wrappers
}

/// A plain string literal (not an f-string, no concatenation), or unknown.
fn python_arg(expr: &str) -> Arg {
    match string_literal(expr.trim(), &['"', '\'']) {
        Some(lit) => Arg::Lit(lit),
        None => Arg::Unknown,
    }
}

// ---- Shell ----------------------------------------------------------------------------------

/// A word of a shell command line: its text without quotes, whether it holds an expansion
/// (`$x`, `$(…)`: known only at run time), and its line.
#[derive(Debug)]
enum Token {
    Word {
        text: String,
        dynamic: bool,
        line: usize,
    },
    /// `;` `;;` `&` `&&` `|` `||` `(` `)` or a newline: a command ends.
    Op(String),
}

/// Commands a shell script runs: the first word of each simple command (after `VAR=value`
/// assignments and keywords, in `$(…)`, `` `…` `` and `<(…)` too), through `programs`. Not
/// commands: the script's own functions (nor their arguments: `in_node … sh -c …`), bash's
/// builtins and keywords, `for`/`case` headers and case patterns, redirection targets,
/// comments, quoted strings (data, unless a command's first word) and heredoc bodies.
fn shell_commands(text: &str) -> Vec<(usize, String)> {
    commands_in(text, &shell_functions(text))
}

/// `shell_commands` of a script, or of a `$(…)` in it, with the functions the script defines.
fn commands_in(text: &str, functions: &BTreeSet<String>) -> Vec<(usize, String)> {
    let mut out = vec![];
    let tokens = lex(text, functions, &mut out);
    let mut command: Vec<(&str, bool, usize)> = vec![];
    let mut case_depth = 0;
    let mut mode = ""; // "case-header" until `in`, "patterns" until `)`, "for" until a separator
    let finish = |command: &mut Vec<(&str, bool, usize)>, out: &mut Vec<(usize, String)>| {
        if let Some(&(first, _, line)) = command.first() {
            let mut argv: Vec<Arg> = command
                .iter()
                // (an option stays one, its value known or not: --net="/var/run/netns/$ns")
                .map(|(t, dynamic, _)| match *dynamic && !t.starts_with('-') {
                    true => Arg::Unknown,
                    false => Arg::Lit(t.to_string()),
                })
                .collect();
            // `exec CMD`, `command CMD` run CMD (`command -v CMD` only looks it up).
            let query = matches!(argv.get(1), Some(Arg::Lit(o)) if o.starts_with('-'));
            let runs_next = first == "exec" || (first == "command" && !query);
            if runs_next {
                argv.remove(0);
            }
            let skip = functions.contains(first)
                || (BUILTINS.split_whitespace().any(|b| b == first) && !runs_next);
            if !skip {
                out.extend(programs(&argv).into_iter().map(|c| (line, c)));
            }
        }
        command.clear();
    };
    for token in &tokens {
        match token {
            Token::Op(op) => {
                if mode == "patterns" {
                    if op == ")" {
                        mode = "";
                    }
                    continue;
                }
                if mode == "for" {
                    mode = "";
                }
                finish(&mut command, &mut out);
                if op == ";;" && case_depth > 0 {
                    mode = "patterns";
                }
            }
            Token::Word {
                text,
                dynamic,
                line,
            } => {
                let text = text.as_str();
                match mode {
                    "case-header" => {
                        if text == "in" {
                            mode = "patterns";
                        }
                        continue;
                    }
                    "patterns" | "for" => {
                        if mode == "patterns" && text == "esac" {
                            case_depth -= 1;
                            mode = "";
                        }
                        continue;
                    }
                    _ => {}
                }
                if command.is_empty() && !dynamic {
                    if text == "case" {
                        case_depth += 1;
                        mode = "case-header";
                        continue;
                    }
                    if text == "esac" {
                        case_depth -= 1;
                        continue;
                    }
                    if text == "for" || text == "select" {
                        mode = "for";
                        continue;
                    }
                    if KEYWORDS.contains(&text) {
                        continue;
                    }
                }
                if command.is_empty() && is_assignment(text) {
                    continue;
                }
                command.push((text, *dynamic, *line));
            }
        }
    }
    finish(&mut command, &mut out);
    out.sort();
    out
}

/// `NAME=…`, `NAME+=…`, `NAME[…]=…` (the text of an assignment word, quotes removed).
fn is_assignment(word: &str) -> bool {
    let Some(eq) = word.find('=') else {
        return false;
    };
    let name = word[..eq].trim_end_matches('+');
    let name = name.split('[').next().unwrap();
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The functions a script defines: `NAME() …` or `function NAME` at a line's start.
fn shell_functions(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines().map(str::trim_start) {
        let keyword = line.starts_with("function ");
        let line = line.trim_start_matches("function ").trim_start();
        let end = line
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .unwrap_or(line.len());
        let (name, rest) = line.split_at(end);
        if !name.is_empty() && (keyword || rest.trim_start().starts_with("()")) {
            names.insert(name.to_string());
        }
    }
    names
}

/// Splits a script into words and operators. The commands of `$(…)`, `` `…` `` and `<(…)`/`>(…)`
/// go straight to `out` (the word holding one is dynamic); comments, redirections with their
/// targets and heredoc bodies are dropped.
fn lex(text: &str, functions: &BTreeSet<String>, out: &mut Vec<(usize, String)>) -> Vec<Token> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = vec![];
    let (mut word, mut dynamic, mut started) = (String::new(), false, false);
    let mut line = 1;
    let mut redirect_target = false;
    let mut heredocs: Vec<String> = vec![];
    let mut i = 0;
    // The commands of a substitution, chars[from..to], on their lines.
    let substitution = |from: usize, to: usize, out: &mut Vec<(usize, String)>| {
        let first_line = newlines(&chars[..from]) + 1;
        let inner: String = chars[from..to].iter().collect();
        let found = commands_in(&inner, functions);
        out.extend(found.into_iter().map(|(l, c)| (first_line + l - 1, c)));
    };
    macro_rules! end_word {
        () => {
            if started {
                if redirect_target {
                    redirect_target = false;
                } else {
                    tokens.push(Token::Word {
                        text: std::mem::take(&mut word),
                        dynamic,
                        line,
                    });
                }
                word.clear();
                dynamic = false;
                started = false;
            }
        };
    }
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            '\\' if next == Some('\n') => {
                i += 2;
                line += 1;
                continue;
            }
            '\\' => {
                if let Some(n) = next {
                    word.push(n);
                }
                started = true;
                i += 2;
                continue;
            }
            ' ' | '\t' => end_word!(),
            '\n' => {
                end_word!();
                tokens.push(Token::Op("\n".into()));
                line += 1;
                // Heredoc bodies: up to each delimiter's line.
                for delimiter in std::mem::take(&mut heredocs) {
                    while i + 1 < chars.len() {
                        let end = chars[i + 1..]
                            .iter()
                            .position(|c| *c == '\n')
                            .map_or(chars.len(), |p| i + 1 + p);
                        let body_line: String = chars[i + 1..end].iter().collect();
                        i = end;
                        line += 1;
                        if body_line.trim() == delimiter {
                            break;
                        }
                    }
                }
            }
            '#' if !started => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
                continue;
            }
            '\'' => {
                let end = chars[i + 1..]
                    .iter()
                    .position(|c| *c == '\'')
                    .map_or(chars.len(), |p| i + 1 + p);
                word.extend(&chars[i + 1..end]);
                line += newlines(&chars[i + 1..end]);
                started = true;
                i = end + 1;
                continue;
            }
            '"' => {
                let mut j = i + 1;
                while j < chars.len() && chars[j] != '"' {
                    match chars[j] {
                        '\\' => {
                            word.extend(chars.get(j + 1));
                            j += 2;
                            continue;
                        }
                        '$' if chars.get(j + 1) == Some(&'(') => {
                            let end =
                                matching(&chars, j + 1, &['"', '\'']).unwrap_or(chars.len() - 1);
                            if chars.get(j + 2) != Some(&'(') {
                                substitution(j + 2, end, out);
                            }
                            line += newlines(&chars[j..end]);
                            dynamic = true;
                            j = end + 1;
                            continue;
                        }
                        '`' => {
                            let end = chars[j + 1..]
                                .iter()
                                .position(|c| *c == '`')
                                .map_or(chars.len(), |p| j + 1 + p);
                            substitution(j + 1, end, out);
                            dynamic = true;
                            j = end + 1;
                            continue;
                        }
                        '$' => dynamic = true,
                        '\n' => line += 1,
                        _ => {}
                    }
                    word.push(chars[j]);
                    j += 1;
                }
                started = true;
                i = j + 1;
                continue;
            }
            '$' if next == Some('(') || next == Some('{') => {
                let close = if next == Some('(') {
                    matching(&chars, i + 1, &['"', '\''])
                } else {
                    matching_brace(&chars, i + 1)
                };
                let end = close.unwrap_or(chars.len() - 1);
                if next == Some('(') && chars.get(i + 2) != Some(&'(') {
                    substitution(i + 2, end, out); // $(…); $((…)) is arithmetic
                }
                line += newlines(&chars[i..end]);
                dynamic = true;
                started = true;
                i = end + 1;
                continue;
            }
            '$' => {
                dynamic = true;
                started = true;
                word.push(c);
            }
            '`' => {
                let end = chars[i + 1..]
                    .iter()
                    .position(|c| *c == '`')
                    .map_or(chars.len(), |p| i + 1 + p);
                substitution(i + 1, end, out);
                dynamic = true;
                started = true;
                i = end + 1;
                continue;
            }
            '(' if started && word.ends_with('=') => {
                // An array: name=(…)
                let end = matching(&chars, i, &['"', '\'']).unwrap_or(chars.len() - 1);
                line += newlines(&chars[i..end]);
                dynamic = true;
                i = end + 1;
                continue;
            }
            '<' | '>' if next == Some('(') => {
                let end = matching(&chars, i + 1, &['"', '\'']).unwrap_or(chars.len() - 1);
                substitution(i + 2, end, out);
                dynamic = true;
                started = true;
                i = end + 1;
                continue;
            }
            '<' | '>' => {
                if started && word.chars().all(|c| c.is_ascii_digit()) && !dynamic {
                    word.clear(); // a file descriptor: 2>&1, 9>"$lock"
                    started = false;
                }
                end_word!();
                let mut j = i;
                while j < chars.len() && "<>&|-".contains(chars[j]) && j - i < 3 {
                    j += 1;
                }
                let op: String = chars[i..j].iter().collect();
                if op.starts_with("<<") && !op.starts_with("<<<") {
                    // A heredoc: its delimiter, then its body after this line.
                    let mut k = j;
                    while chars.get(k) == Some(&' ') {
                        k += 1;
                    }
                    let start = k;
                    while k < chars.len() && !chars[k].is_whitespace() && !";|&)".contains(chars[k])
                    {
                        k += 1;
                    }
                    let delimiter: String = chars[start..k]
                        .iter()
                        .filter(|c| !"'\"\\".contains(**c))
                        .collect();
                    heredocs.push(delimiter);
                    i = k;
                    continue;
                }
                // A target follows (`>&2`, `2>&1`: at once), unless the operator closes (`9>&-`).
                redirect_target = !op.ends_with('-');
                i = j;
                continue;
            }
            ';' | '&' | '|' | '(' | ')' => {
                end_word!();
                let double = next == Some(c) && c != '(' && c != ')';
                let op = if double {
                    format!("{c}{c}")
                } else {
                    c.to_string()
                };
                if c == '(' && next == Some('(') {
                    // ((…)): arithmetic
                    let end = matching(&chars, i, &['"', '\'']).unwrap_or(chars.len() - 1);
                    i = end + 1;
                    continue;
                }
                tokens.push(Token::Op(op));
                i += if double { 2 } else { 1 };
                continue;
            }
            _ => {
                word.push(c);
                started = true;
            }
        }
        i += 1;
    }
    if started && !redirect_target {
        tokens.push(Token::Word {
            text: word,
            dynamic,
            line,
        });
    }
    tokens
}

// ---- The example workflow -------------------------------------------------------------------

/// The steps of a GitHub Actions workflow that have a `run:` script: (name, line of the script's
/// first line minus one, script).
fn workflow_steps(yaml: &str) -> Vec<(String, usize, String)> {
    let lines: Vec<&str> = yaml.lines().collect();
    let mut steps = vec![];
    let mut name = String::new();
    for (n, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        if let Some(item) = trimmed.strip_prefix("- ") {
            name = item
                .strip_prefix("name:")
                .map(|s| s.trim().trim_matches('"').to_string())
                .unwrap_or_default();
        }
        let Some(run) = trimmed
            .strip_prefix("run:")
            .or_else(|| trimmed.strip_prefix("- run:"))
        else {
            continue;
        };
        let run = run.trim();
        if run == "|" || run == ">" {
            let indent = line.len() - trimmed.len();
            let body: Vec<&str> = lines[n + 1..]
                .iter()
                .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent)
                .map(|l| l.trim())
                .collect();
            steps.push((name.clone(), n + 1, body.join("\n")));
        } else {
            steps.push((name.clone(), n, run.to_string()));
        }
    }
    steps
}

// ---- Text helpers ---------------------------------------------------------------------------

/// Where `pattern` starts in `chars`, each time.
fn find_all(chars: &[char], pattern: &str) -> Vec<usize> {
    let pattern: Vec<char> = pattern.chars().collect();
    let ends = chars.len().saturating_sub(pattern.len() - 1);
    (0..ends)
        .filter(|&i| chars[i..i + pattern.len()] == pattern[..])
        .collect()
}

fn text_of(chars: &[char]) -> String {
    chars.iter().collect()
}

/// The index of the bracket closing the one at `open`, skipping strings quoted with `quotes`
/// (backslash escapes). For Rust (`"` the only quote): `r#"…"#` and `'"'` too.
fn matching(chars: &[char], open: usize, quotes: &[char]) -> Option<usize> {
    let (opening, closing) = match chars[open] {
        '(' => ('(', ')'),
        '[' => ('[', ']'),
        '{' => ('{', '}'),
        _ => return None,
    };
    let rust = quotes == ['"'];
    let mut depth = 0;
    let mut i = open;
    while i < chars.len() {
        let c = chars[i];
        if quotes.contains(&c) {
            i = string_end(chars, i, c)?;
        } else if rust
            && c == 'r'
            && !chars[i - 1].is_alphanumeric()
            && raw_start(chars, i).is_some()
        {
            let hashes = raw_start(chars, i)?;
            let close: Vec<char> = std::iter::once('"')
                .chain(std::iter::repeat_n('#', hashes))
                .collect();
            let body = i + 2 + hashes;
            i = body
                + chars[body..]
                    .windows(close.len())
                    .position(|w| w == close)?
                + close.len()
                - 1;
        } else if rust && c == '\'' && chars.get(i + 2) == Some(&'\'') {
            i += 2; // a char literal: '"', '('
        } else if rust && c == '\'' && chars.get(i + 1) == Some(&'\\') {
            i += 3; // '\"', '\''
        } else if c == opening {
            depth += 1;
        } else if c == closing {
            depth -= 1;
            if depth == 0 {
                return Some(i);
            }
        }
        i += 1;
    }
    None
}

/// At `r#"` (or `r"`): the number of `#`.
fn raw_start(chars: &[char], r: usize) -> Option<usize> {
    let hashes = chars[r + 1..].iter().take_while(|c| **c == '#').count();
    (chars.get(r + 1 + hashes) == Some(&'"')).then_some(hashes)
}

fn newlines(chars: &[char]) -> usize {
    chars.iter().filter(|c| **c == '\n').count()
}

/// `${…}`: the index of its closing brace (braces nest).
fn matching_brace(chars: &[char], open: usize) -> Option<usize> {
    matching(chars, open, &[])
}

/// The index of the quote closing the string that opens at `start`.
fn string_end(chars: &[char], start: usize, quote: char) -> Option<usize> {
    let mut i = start + 1;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 1,
            c if c == quote => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

/// The value of `expr` if it is one string literal and nothing else, escapes resolved.
fn string_literal(expr: &str, quotes: &[char]) -> Option<String> {
    let chars: Vec<char> = expr.chars().collect();
    let quote = *chars.first()?;
    if !quotes.contains(&quote) || string_end(&chars, 0, quote)? != chars.len() - 1 {
        return None;
    }
    let mut value = String::new();
    let mut body = chars[1..chars.len() - 1].iter();
    while let Some(&c) = body.next() {
        if c == '\\' {
            match body.next() {
                Some('n') => value.push('\n'),
                Some('t') => value.push('\t'),
                Some(&other) => value.push(other),
                None => {}
            }
        } else {
            value.push(c);
        }
    }
    Some(value)
}

/// `text` split at the commas outside brackets and strings.
fn split_top(text: &str, quotes: &[char]) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut parts = vec![];
    let mut start = 0;
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            c if quotes.contains(&c) => i = string_end(&chars, i, c).unwrap_or(chars.len()),
            '(' | '[' | '{' => i = matching(&chars, i, quotes).unwrap_or(chars.len()),
            ',' => {
                parts.push(chars[start..i].iter().collect());
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    let last: String = chars[start.min(chars.len())..].iter().collect();
    if !last.trim().is_empty() {
        parts.push(last);
    }
    parts
        .into_iter()
        .filter(|p: &String| !p.trim().is_empty())
        .collect()
}

// ---- The scanner's own examples -------------------------------------------------------------

fn commands(found: Vec<(usize, String)>) -> Vec<String> {
    found.into_iter().map(|(_, c)| c).collect()
}

#[test]
fn rust_commands_follow_wrappers_helpers_and_sh_c() {
    let src = r#"
        let ok = std::process::Command::new("nsenter")
            .arg(format!("--net=/var/run/netns/tb{}-n3", bed.id))
            .args(["iptables", verb, "OUTPUT"])
            .status();
        let out = Command::new("ip").args(["netns", "exec", &ns, "haproxy", "-f", cfg]).output();
        let n = Command::new("nsenter").args(["-t", &pid, "-r", "-m", "cat", "/etc/hostname"]);
        let d = Command::new("sh").args(["-c", "printf %s \"$V\" | sha256sum"]).output();
        // Command::new("commented-out")
        let v = Command::new(venv().join("bin/python")).arg("x.py");
        let c = p.command("bash").args(["-e", "-c", script]);
        let s = session.command("docker");
        let argv = ["ip", "netns", "exec", &ns, "tc", "qdisc"];
        bed.in_netns(3, &["conntrack", "-F"]);
    }
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
    }
    fn in_netns(&self, node: usize, argv: &[&str]) -> ExitStatus {
        Command::new("nsenter").arg(format!("--net={node}")).args(argv).status().unwrap()
    }
    fn run_in_node(&self, argv: &[&str]) {
        Command::new(world("nodes/testbed")).args(["exec", "1"]).args(argv).status();
    "#;
    let wrappers = rust_wrappers(&[src.to_string()]);
    assert_eq!(
        wrappers,
        BTreeSet::from(["command".into(), "in_netns".into()])
    );
    let found = rust_commands(src, &wrappers);
    let at = |c: &str| found.iter().find(|(_, f)| f == c).map(|(l, _)| *l);
    assert_eq!(at("iptables"), Some(2), "nsenter --net=… iptables");
    assert_eq!(at("haproxy"), Some(6), "ip netns exec NS haproxy");
    assert_eq!(at("sha256sum"), Some(8), "sh -c 'printf … | sha256sum'");
    assert_eq!(at("cat"), None, "nsenter -r: in the node's root");
    assert_eq!(at("commented-out"), None);
    assert_eq!(at("python"), None, "a path: the venv's");
    assert_eq!(
        at("bash"),
        Some(11),
        "a wrapper given the program: Project::command"
    );
    assert_eq!(at("docker"), Some(12), "the same name, here");
    assert_eq!(at("tc"), Some(13), "an ip netns exec argv built for later");
    assert_eq!(at("conntrack"), Some(14), "a wrapper given the argv");
    assert_eq!(at(GIVEN), None);
    let no_wrappers = rust_commands(src, &BTreeSet::new());
    assert!(
        !commands(no_wrappers).contains(&"docker".to_string()),
        "src: openssh's, on a node"
    );
    let ssh = rust_commands("use openssh::Session;", &BTreeSet::new());
    assert_eq!(commands(ssh), ["ssh"]);
}

#[test]
fn python_commands_follow_wrappers_and_ip_netns_exec() {
    let src = r#"
import shutil, subprocess

def sh(*cmd, check=True):
    return subprocess.run(cmd, check=check, capture_output=True, text=True)

sh("ip", "-n", NETNS, "link", "set", "lo", "up")
sh("haproxy", "-c", "-q", "-f", f"{d}/haproxy.cfg.new", check=False)
p = subprocess.Popen(["ip", "netns", "exec", NETNS, "iptables", "-L"], stdin=subprocess.DEVNULL)
q = subprocess.Popen([VENV / "bin/moto_server", "-p", str(port)])
busybox = shutil.which("busybox")
fresh("not-a-command")
"#;
    assert_eq!(
        python_commands(src),
        [
            (7, "ip"),
            (8, "haproxy"),
            (9, "ip"),
            (9, "iptables"),
            (11, "busybox")
        ]
        .map(|(l, c)| (l, c.to_string()))
    );
}

#[test]
fn shell_commands_skip_data_functions_builtins_and_node_roots() {
    let src = r#"#!/usr/bin/env bash
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
init_pid() { :; }
in_node() {
  nsenter -t "$(init_pid "$1" "$2")" -m -u -n -p -r -w "$@"
}
cat > "$dir/registry.yml" <<YML
storage: not-a-command
YML
setsid docker-registry serve "$dir/registry.yml" </dev/null >"$dir/log" 2>&1 &
in_node "$dir" 1 sh -c 'node-only-command'
exec 9>"$dir/map.lock"; flock 9
case "$cmd" in
  install) in_node install ;;
  --opt | x=*) shift 2 ;;
  *) in_node usage ;;
esac
for ns in $(ip netns list | grep -o "^tb"); do
  [ -e "/var/run/netns/$ns" ] || ip -n "$ns" link set lo up  # comment-command
done
grep -o " $dir" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
missing=(a b) AWS=x "$INFRA_VENV/bin/python" tests/x.py
echo "done $(basename "$dir")"
if ! command -v haproxy >/dev/null; then exec busybox nc "$ip" 22; fi
(systemctl disable --now haproxy || service haproxy stop) >/dev/null 2>&1 || true
"#;
    let found = commands(shell_commands(src));
    let mut expected = vec![
        "basename",
        "busybox",
        "cat",
        "dirname",
        "docker-registry",
        "flock",
        "grep",
        "grep",
        "ip",
        "ip",
        "nsenter",
        "service",
        "setsid",
        "sort",
        "systemctl",
        "umount",
        "xargs",
    ];
    expected.sort();
    let mut found_sorted = found.clone();
    found_sorted.sort();
    assert_eq!(found_sorted, expected, "{:?}", shell_commands(src));
}

#[test]
fn workflow_steps_are_found_with_their_lines() {
    let yaml = "jobs:\n  plan:\n    steps:\n      - uses: actions/checkout@v4\n      - name: Load\n        run: |\n          eval \"$(ssh-agent -s)\" >/dev/null\n          printf '%s\\n' \"$KEY\" | ssh-add -\n      - name: Plan\n        run: infra plan\n";
    let steps = workflow_steps(yaml);
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[0].0, "Load");
    let found: Vec<(usize, String)> = shell_commands(&steps[0].2)
        .into_iter()
        .map(|(l, c)| (steps[0].1 + l, c))
        .collect();
    assert_eq!(
        found,
        [(7, "ssh-agent".to_string()), (8, "ssh-add".to_string())]
    );
    assert_eq!(
        (steps[1].0.as_str(), steps[1].2.as_str()),
        ("Plan", "infra plan")
    );
}
