//! The commands a shell script runs on this machine: the first word of each simple command,
//! read from the lexer's tokens (`lex`), skipping what is not a program there.

mod lex;

use std::collections::BTreeSet;

use crate::argv::{Arg, programs};
use lex::{Token, lex};

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

/// Commands a shell script runs: the first word of each simple command (after `VAR=value`
/// assignments and keywords, in `$(…)`, `` `…` `` and `<(…)` too), through `programs`. Not
/// commands: the script's own functions (nor their arguments: `in_node … sh -c …`), bash's
/// builtins and keywords, `for`/`case` headers and case patterns, redirection targets,
/// comments, quoted strings (data, unless a command's first word) and heredoc bodies.
pub fn shell_commands(text: &str) -> Vec<(usize, String)> {
    commands_in(text, &shell_functions(text))
}

/// `shell_commands` of a script, or of a `$(…)` in it, with the functions the script defines.
fn commands_in(text: &str, functions: &BTreeSet<String>) -> Vec<(usize, String)> {
    let mut out = vec![];
    let tokens = lex(text, functions, &mut out);
    let mut reader = Reader {
        functions,
        out,
        words: vec![],
        case_depth: 0,
        context: Context::Command,
    };
    for token in &tokens {
        match token {
            Token::Op(op) => reader.operator(op),
            Token::Word {
                text,
                dynamic,
                line,
            } => reader.word(text, *dynamic, *line),
        }
    }
    reader.finish_command();
    let mut out = reader.out;
    out.sort();
    out
}

/// Where the reader is: in a command, or in a part of `case`/`for` that holds no command.
#[derive(Clone, Copy, PartialEq)]
enum Context {
    Command,
    /// `case WORD` until `in`.
    CaseHeader,
    /// A case's patterns, until `)`.
    Patterns,
    /// `for NAME in WORDS` until a separator.
    ForHeader,
}

/// Reads tokens into simple commands, and each finished command's programs into `out`.
struct Reader<'t> {
    functions: &'t BTreeSet<String>,
    out: Vec<(usize, String)>,
    /// The command's words so far: text, dynamic, line.
    words: Vec<(&'t str, bool, usize)>,
    case_depth: i32,
    context: Context,
}

impl<'t> Reader<'t> {
    /// `;` `&&` `|` `)` or a newline: a command ends, or a case pattern.
    fn operator(&mut self, op: &str) {
        match self.context {
            Context::Patterns => {
                if op == ")" {
                    self.context = Context::Command;
                }
                return;
            }
            Context::ForHeader => self.context = Context::Command,
            Context::Command | Context::CaseHeader => {}
        }
        self.finish_command();
        if op == ";;" && self.case_depth > 0 {
            self.context = Context::Patterns;
        }
    }

    fn word(&mut self, text: &'t str, dynamic: bool, line: usize) {
        match self.context {
            Context::CaseHeader => {
                if text == "in" {
                    self.context = Context::Patterns;
                }
                return;
            }
            Context::Patterns => {
                if text == "esac" {
                    self.case_depth -= 1;
                    self.context = Context::Command;
                }
                return;
            }
            Context::ForHeader => return,
            Context::Command => {}
        }
        let first = self.words.is_empty();
        if first && !dynamic && self.keyword(text) {
            return;
        }
        if first && is_assignment(text) {
            return;
        }
        self.words.push((text, dynamic, line));
    }

    /// A keyword where a command would start: whether `word` is one (and what it opens).
    fn keyword(&mut self, word: &str) -> bool {
        match word {
            "case" => {
                self.case_depth += 1;
                self.context = Context::CaseHeader;
            }
            "esac" => self.case_depth -= 1,
            "for" | "select" => self.context = Context::ForHeader,
            _ => return KEYWORDS.contains(&word),
        }
        true
    }

    /// The command read so far runs its programs, unless it is a function or builtin.
    fn finish_command(&mut self) {
        let words = std::mem::take(&mut self.words);
        let Some(&(first, _, line)) = words.first() else {
            return;
        };
        let mut argv: Vec<Arg> = words
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
        let builtin = BUILTINS.split_whitespace().any(|b| b == first);
        if self.functions.contains(first) || (builtin && !runs_next) {
            return;
        }
        self.out
            .extend(programs(&argv).into_iter().map(|c| (line, c)));
    }
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
    let found = crate::commands(shell_commands(src));
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
