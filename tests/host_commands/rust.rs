//! The commands Rust code runs on this machine: `Command::new` with its `.arg`/`.args` chain,
//! calls of the tree's own functions that run what they are given, literal wrapped argv arrays,
//! and `ssh` behind the openssh crate.

use std::collections::BTreeSet;

use crate::argv::{Arg, programs, wrapped_arrays};
use crate::text::{RUST_QUOTES, find_all, line_at, matching, split_top, string_literal, text_of};

/// Stands for an argument that a function's caller gives (a parameter): where `programs`
/// reaches it, the function runs what its callers give it.
const GIVEN: &str = "<given>";

/// A `Command::new(…)`: where it is, the function it is in, and its argv as far as the chain of
/// calls that creates it shows (`.arg(…)`, `.args([…])`); a parameter of that function is
/// `GIVEN`.
struct Chain {
    at: usize,
    function: String,
    argv: Vec<Arg>,
}

/// The functions of Rust files that run a command their callers give: `fn f(program: &str)`
/// holding `Command::new(program)`, or `fn f(argv: &[&str])` holding
/// `Command::new("nsenter").arg(…).args(argv)`.
pub fn rust_wrappers(texts: &[String]) -> BTreeSet<String> {
    texts
        .iter()
        .flat_map(|text| command_chains(&rust_code(text)))
        .filter(|chain| !chain.function.is_empty())
        .filter(|chain| programs(&chain.argv).iter().any(|p| p == GIVEN))
        .map(|chain| chain.function)
        .collect()
}

/// Commands a Rust file runs: each `Command::new("PROGRAM")` with its `.arg`/`.args` chain,
/// through `programs`; each call of a wrapper (`rust_wrappers`: `p.command("bash")`,
/// `bed.in_netns(3, &["iptables", …])`) with its first string (the program) or array (the argv);
/// literal `["ip", "netns", "exec", NS, CMD, …]` and `["nsenter", …, CMD, …]` arrays; and `ssh`
/// where the openssh crate is used.
pub fn rust_commands(text: &str, wrappers: &BTreeSet<String>) -> Vec<(usize, String)> {
    let code = rust_code(text);
    let mut out = vec![];
    for chain in command_chains(&code) {
        let line = line_at(&code, chain.at);
        let programs = programs(&chain.argv).into_iter().filter(|p| p != GIVEN);
        out.extend(programs.map(|c| (line, c)));
    }
    for (at, argv) in wrappers.iter().flat_map(|w| wrapper_calls(&code, w)) {
        let line = line_at(&code, at);
        out.extend(programs(&argv).into_iter().map(|c| (line, c)));
    }
    out.extend(wrapped_arrays(&code, RUST_QUOTES, rust_arg));
    if let Some(at) = find_all(&code, "openssh::").first() {
        out.push((line_at(&code, *at), "ssh".to_string()));
    }
    out.sort();
    out.dedup();
    out
}

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

/// Each `Command::new(…)` of a file, with its chain.
fn command_chains(code: &[char]) -> Vec<Chain> {
    let mut chains = vec![];
    for at in find_all(code, "Command::new(") {
        let open = at + "Command::new".len();
        let Some(close) = matching(code, open, RUST_QUOTES) else {
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
        for (method, inner) in method_calls(code, close + 1) {
            match method.as_str() {
                "arg" => argv.push(arg(&inner)),
                "args" => match rust_list(&inner) {
                    Some(elements) => argv.extend(elements.iter().map(|e| arg(e))),
                    None => argv.push(arg(&inner)),
                },
                "status" | "output" | "spawn" | "exec" => break,
                _ => {}
            }
        }
        chains.push(Chain { at, function, argv });
    }
    chains
}

/// The `.method(…)` calls chained from `from` on, until something else: each method's name and
/// the text between its parentheses.
fn method_calls(code: &[char], from: usize) -> Vec<(String, String)> {
    let mut calls = vec![];
    let mut i = from;
    loop {
        while code.get(i).is_some_and(|c| c.is_whitespace()) {
            i += 1;
        }
        let name_end =
            (i + 1..code.len()).find(|&j| !(code[j].is_alphanumeric() || code[j] == '_'));
        let (Some('.'), Some(open)) = (code.get(i), name_end) else {
            break;
        };
        let Some(close) = (code[open] == '(')
            .then(|| matching(code, open, RUST_QUOTES))
            .flatten()
        else {
            break;
        };
        calls.push((text_of(&code[i + 1..open]), text_of(&code[open + 1..close])));
        i = close + 1;
    }
    calls
}

/// The calls of `wrapper` (a function that runs what it is given), each with the argv it is
/// given: its first string argument (the program) or array argument (the argv).
fn wrapper_calls(code: &[char], wrapper: &str) -> Vec<(usize, Vec<Arg>)> {
    let mut calls = vec![];
    for at in find_all(code, &format!("{wrapper}(")) {
        let open = at + wrapper.len();
        let called = at == 0 || !(code[at - 1].is_alphanumeric() || code[at - 1] == '_');
        if !called || text_of(&code[at.saturating_sub(3)..at]) == "fn " {
            continue; // another function's name ending the same way, or the definition
        }
        let Some(close) = matching(code, open, RUST_QUOTES) else {
            continue;
        };
        let args = split_top(&text_of(&code[open + 1..close]), RUST_QUOTES);
        let argv = args.iter().find_map(|a| match (rust_arg(a), rust_list(a)) {
            (Arg::Lit(program), _) => Some(vec![Arg::Lit(program)]),
            (_, Some(elements)) => Some(elements.iter().map(|e| rust_arg(e)).collect()),
            _ => None,
        });
        calls.push((at, argv.unwrap_or_default()));
    }
    calls
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
    let Some(close) = matching(code, open, RUST_QUOTES) else {
        return (name, vec![]);
    };
    let params = split_top(&text_of(&code[open + 1..close]), RUST_QUOTES)
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
    if let Some(lit) = string_literal(expr, RUST_QUOTES) {
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
    Some(split_top(inner, RUST_QUOTES))
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
        !crate::commands(no_wrappers).contains(&"docker".to_string()),
        "src: openssh's, on a node"
    );
    let ssh = rust_commands("use openssh::Session;", &BTreeSet::new());
    assert_eq!(crate::commands(ssh), ["ssh"]);
}
