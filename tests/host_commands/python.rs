//! The commands Python code runs on this machine: subprocess argv lists, the module's own
//! `def f(*cmd)` wrappers around subprocess, literal wrapped argv arrays, and the programs it
//! looks up with `shutil.which`.

use crate::argv::{Arg, programs, wrapped_arrays};
use crate::text::{PYTHON_QUOTES, line_at, matching, split_top, string_literal, text_of};

/// The subprocess functions that run an argv list given first.
const SUBPROCESS_RUNS: &[&str] = &["run", "Popen", "call", "check_call", "check_output"];

/// Commands a Python file runs: `subprocess.run/Popen/call/check_call/check_output([…])`,
/// calls of the module's own wrappers (`def sh(*cmd): … subprocess.run(cmd …)`), through
/// `programs`; and the programs it looks up with `shutil.which("…")` (to copy, not run: they
/// must be on this machine all the same).
pub fn python_commands(text: &str) -> Vec<(usize, String)> {
    let chars: Vec<char> = text.chars().collect();
    let mut runs: Vec<(usize, Vec<Arg>)> = vec![];
    for function in SUBPROCESS_RUNS {
        let calls = calls_of(text, &chars, &format!("subprocess.{function}("), true);
        runs.extend(
            calls
                .into_iter()
                .filter_map(|(at, args)| Some((at, list_argv(&args)?))),
        );
    }
    for wrapper in python_wrappers(text) {
        let calls = calls_of(text, &chars, &format!("{wrapper}("), false);
        runs.extend(
            calls
                .into_iter()
                .map(|(at, args)| (at, positional_argv(&args))),
        );
    }
    let mut out = vec![];
    for (at, argv) in runs {
        let line = line_at(&chars, at);
        out.extend(programs(&argv).into_iter().map(|c| (line, c)));
    }
    out.extend(which_lookups(text));
    out.extend(wrapped_arrays(&chars, PYTHON_QUOTES, python_arg));
    out.sort();
    out.dedup();
    out
}

/// The calls `call` (a name and its `(`) makes in `text`, each with where it starts (a char
/// index) and its arguments. A name `qualified` (`subprocess.run(`) is one wherever it is; an
/// unqualified one must not end another name or be a method.
fn calls_of(text: &str, chars: &[char], call: &str, qualified: bool) -> Vec<(usize, Vec<String>)> {
    let mut calls = vec![];
    for (byte, _) in text.match_indices(call) {
        let before = text[..byte].chars().last();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.') && !qualified {
            continue; // another function's name ending the same way, or a method
        }
        if text[..byte].ends_with("def ") {
            continue;
        }
        let at = text[..byte].chars().count();
        let open = at + call.chars().count() - 1;
        let Some(close) = matching(chars, open, PYTHON_QUOTES) else {
            continue;
        };
        calls.push((
            at,
            split_top(&text_of(&chars[open + 1..close]), PYTHON_QUOTES),
        ));
    }
    calls
}

/// A subprocess call's argv: its first argument, if that is a list literal.
fn list_argv(args: &[String]) -> Option<Vec<Arg>> {
    let first = args.first().map(|a| a.trim()).unwrap_or("");
    let list = first.strip_prefix('[')?.strip_suffix(']')?;
    let elements = split_top(list, PYTHON_QUOTES);
    Some(elements.iter().map(|e| python_arg(e)).collect())
}

/// A wrapper call's argv: its positional arguments (up to the first keyword argument).
fn positional_argv(args: &[String]) -> Vec<Arg> {
    args.iter()
        .take_while(|a| !a.contains('=') || string_literal(a.trim(), PYTHON_QUOTES).is_some())
        .map(|a| python_arg(a))
        .collect()
}

/// The programs looked up with `shutil.which("NAME")`, with their lines.
fn which_lookups(text: &str) -> Vec<(usize, String)> {
    let mut found = vec![];
    for (byte, _) in text.match_indices("shutil.which(") {
        let rest = &text[byte + "shutil.which(".len()..];
        if let Some(end) = rest.find(')')
            && let Some(name) = string_literal(rest[..end].trim(), PYTHON_QUOTES)
        {
            found.push((text[..byte].matches('\n').count() + 1, name));
        }
    }
    found
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
        let mut body = lines[n + 1..]
            .iter()
            .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent);
        if body.any(|l| l.contains("subprocess.") && l.contains(&format!("({param}"))) {
            wrappers.push(name.trim().to_string());
        }
    }
    wrappers
}

/// A plain string literal (not an f-string, no concatenation), or unknown.
fn python_arg(expr: &str) -> Arg {
    match string_literal(expr.trim(), PYTHON_QUOTES) {
        Some(lit) => Arg::Lit(lit),
        None => Arg::Unknown,
    }
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
