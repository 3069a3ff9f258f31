//! What an argv runs on this machine: its program, and through wrappers (`setsid CMD`,
//! `ip netns exec NS CMD`, `sh -c SCRIPT`) the programs it wraps. Every scanner ends here.

use crate::shell::shell_commands;
use crate::text::{line_at, matching, split_top, text_of};

/// Programs that wrap another, which is on this machine too: `setsid CMD`, `ip netns exec NS CMD`.
const WRAPPERS: &[&str] = &[
    "sudo", "setsid", "nohup", "env", "timeout", "xargs", "nsenter", "unshare", "ip",
];

/// One word of an argv: a literal, or something known only at run time (a variable, an
/// expression).
#[derive(Clone, Debug, PartialEq)]
pub enum Arg {
    Lit(String),
    Unknown,
}

/// The programs an argv runs on this machine: its first word; through a wrapper (`setsid`,
/// `sudo`, `timeout N`, `xargs`, `env`, `nsenter`/`unshare` options, `ip netns exec NS`) the
/// program it wraps; through `sh -c SCRIPT` (SCRIPT a literal) the commands of SCRIPT. It stops
/// at a word known only at run time, at a path that is not a system directory's (the project's
/// own scripts, the venv's python), and where the rest runs in another root (`chroot`,
/// `nsenter -r`, `unshare -R`).
pub fn programs(argv: &[Arg]) -> Vec<String> {
    let mut out = vec![];
    let mut i = 0;
    while let Some(Arg::Lit(word)) = argv.get(i) {
        let Some(name) = program_name(word) else {
            break;
        };
        out.push(name.clone());
        i += 1;
        let wrapped = match name.as_str() {
            "sh" | "bash" | "dash" => {
                out.extend(shell_c_commands(argv, i));
                None
            }
            // ip netns exec NS CMD…
            "ip" => {
                (lit(argv, i) == Some("netns") && lit(argv, i + 1) == Some("exec")).then_some(i + 3)
            }
            wrapper if WRAPPERS.contains(&wrapper) => wrapped_program(wrapper, argv, i),
            _ => None,
        };
        let Some(next) = wrapped else {
            break;
        };
        i = next;
    }
    out
}

/// The literal at `argv[i]`, if it is one.
fn lit(argv: &[Arg], i: usize) -> Option<&str> {
    match argv.get(i) {
        Some(Arg::Lit(s)) => Some(s.as_str()),
        _ => None,
    }
}

/// `sh [-e] -c SCRIPT` (the options from `argv[i]` on): the script's own commands.
fn shell_c_commands(argv: &[Arg], mut i: usize) -> Vec<String> {
    while let Some(option) = lit(argv, i).filter(|o| o.starts_with('-')) {
        i += 1;
        if option.ends_with('c') {
            let Some(script) = lit(argv, i) else {
                break;
            };
            return shell_commands(script).into_iter().map(|(_, c)| c).collect();
        }
    }
    vec![]
}

/// Where the program that `wrapper` runs starts, its options (and the values of those that
/// take one) starting at `argv[i]`; None where it runs in another root (a node's).
fn wrapped_program(wrapper: &str, argv: &[Arg], mut i: usize) -> Option<usize> {
    let takes_value: &[&str] = match wrapper {
        "sudo" => &["-u", "-g"],
        "nsenter" => &["-t", "--target", "-S", "-G"],
        "timeout" => &["-s", "-k", "--signal", "--kill-after"],
        "xargs" => &["-n", "-I", "-P", "-L", "-d", "-s", "-a", "-E"],
        "env" => &["-u"],
        _ => &[],
    };
    // nsenter -r, unshare -R: the wrapped program runs in another root.
    let other_root: &[&str] = match wrapper {
        "nsenter" => &["-r", "--root"],
        "unshare" => &["-R", "--root"],
        _ => &[],
    };
    while let Some(option) = lit(argv, i).filter(|o| o.starts_with('-')) {
        if other_root
            .iter()
            .any(|r| option == *r || option.starts_with(&format!("{r}=")))
        {
            return None;
        }
        i += if takes_value.contains(&option) { 2 } else { 1 };
        if option == "--" {
            break;
        }
    }
    if wrapper == "env" {
        while lit(argv, i).is_some_and(|w| w.contains('=')) {
            i += 1;
        }
    }
    if wrapper == "timeout" {
        i += 1; // the duration
    }
    Some(i)
}

/// A program's name as PATH finds it: `iptables`, or `/usr/sbin/iptables` in a system
/// directory; None for any other path (a file of the project, the venv's python).
fn program_name(word: &str) -> Option<String> {
    if !word.contains('/') {
        return (!word.is_empty()).then(|| word.to_string());
    }
    ["/usr/bin/", "/usr/sbin/", "/bin/", "/sbin/"]
        .iter()
        .find_map(|dir| word.strip_prefix(dir).filter(|name| !name.contains('/')))
        .map(str::to_string)
}

/// Literal argv arrays of wrapped commands, wherever they are built: `["ip", "netns", "exec",
/// NS, CMD, …]`, `["nsenter", "--net=…", CMD, …]` (a helper may build one and run it later).
pub fn wrapped_arrays(
    code: &[char],
    quotes: &[char],
    arg: fn(&str) -> Arg,
) -> Vec<(usize, String)> {
    let mut out = vec![];
    for open in (0..code.len()).filter(|&i| code[i] == '[') {
        let Some(close) = matching(code, open, quotes) else {
            continue;
        };
        let argv: Vec<Arg> = split_top(&text_of(&code[open + 1..close]), quotes)
            .iter()
            .map(|e| arg(e))
            .collect();
        let is = |i: usize, word: &str| lit(&argv, i) == Some(word);
        if is(0, "nsenter") || (is(0, "ip") && is(1, "netns") && is(2, "exec")) {
            let line = line_at(code, open);
            out.extend(programs(&argv).into_iter().map(|c| (line, c)));
        }
    }
    out
}
