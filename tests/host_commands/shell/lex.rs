//! Splits a shell script into words and operators, as far as finding commands needs: quoting,
//! expansions (whose commands it hands on at once), redirections and heredocs.

use std::collections::BTreeSet;

use super::commands_in;
use crate::text::{SHELL_QUOTES, line_at, matching, matching_brace, newlines, next_of};

/// A word of a shell command line: its text without quotes, whether it holds an expansion
/// (`$x`, `$(…)`: known only at run time), and its line.
#[derive(Debug)]
pub enum Token {
    Word {
        text: String,
        dynamic: bool,
        line: usize,
    },
    /// `;` `;;` `&` `&&` `|` `||` `(` `)` or a newline: a command ends.
    Op(String),
}

/// Splits a script into words and operators. The commands of `$(…)`, `` `…` `` and `<(…)`/`>(…)`
/// go straight to `out` (the word holding one is dynamic); comments, redirections with their
/// targets and heredoc bodies are dropped.
pub fn lex(text: &str, functions: &BTreeSet<String>, out: &mut Vec<(usize, String)>) -> Vec<Token> {
    let mut lexer = Lexer {
        chars: text.chars().collect(),
        functions,
        out,
        tokens: vec![],
        word: String::new(),
        dynamic: false,
        started: false,
        line: 1,
        redirect_target: false,
        heredocs: vec![],
        i: 0,
    };
    while lexer.i < lexer.chars.len() {
        lexer.step();
    }
    lexer.end_word();
    lexer.tokens
}

/// The lexer's state: where it is in the script, and the word it is reading.
struct Lexer<'a> {
    chars: Vec<char>,
    /// The script's functions, for the commands of its substitutions.
    functions: &'a BTreeSet<String>,
    /// The commands found in substitutions.
    out: &'a mut Vec<(usize, String)>,
    tokens: Vec<Token>,
    /// The word being read: its text so far, whether it holds an expansion, whether it has
    /// begun (`""` is a word, empty).
    word: String,
    dynamic: bool,
    started: bool,
    /// The line the lexer is on (a word gets the line where it ends).
    line: usize,
    /// The word being read is a redirection's target: not part of the command.
    redirect_target: bool,
    /// The delimiters of the heredocs whose bodies start after this line.
    heredocs: Vec<String>,
    /// The index of the next char to read.
    i: usize,
}

impl Lexer<'_> {
    /// Reads what starts at `i`, moving `i` past it.
    fn step(&mut self) {
        let c = self.chars[self.i];
        let next = self.chars.get(self.i + 1).copied();
        match c {
            '\\' => self.backslash(next),
            ' ' | '\t' => {
                self.end_word();
                self.i += 1;
            }
            '\n' => self.newline(),
            // A comment, up to the newline (which still ends the command).
            '#' if !self.started => self.i = next_of(&self.chars, self.i, '\n'),
            '\'' => self.single_quoted(),
            '"' => self.double_quoted(),
            '$' if next == Some('(') => {
                self.i = self.command_substitution(self.i);
                self.started = true;
            }
            '$' if next == Some('{') => self.parameter_expansion(),
            '$' => {
                self.dynamic = true;
                self.push_char(c);
            }
            '`' => {
                self.i = self.backquoted(self.i);
                self.started = true;
            }
            '(' if self.started && self.word.ends_with('=') => self.array(),
            '<' | '>' if next == Some('(') => self.process_substitution(),
            '<' | '>' => self.redirection(),
            ';' | '&' | '|' | '(' | ')' => self.operator(c, next),
            _ => self.push_char(c),
        }
    }

    /// A plain char of the word.
    fn push_char(&mut self, c: char) {
        self.word.push(c);
        self.started = true;
        self.i += 1;
    }

    /// The word read so far is a token, unless it is a redirection's target.
    fn end_word(&mut self) {
        if !self.started {
            return;
        }
        if self.redirect_target {
            self.redirect_target = false;
        } else {
            self.tokens.push(Token::Word {
                text: std::mem::take(&mut self.word),
                dynamic: self.dynamic,
                line: self.line,
            });
        }
        self.word.clear();
        self.dynamic = false;
        self.started = false;
    }

    /// The index of the bracket closing the one at `open` (the last char if none does).
    fn closing(&self, open: usize) -> usize {
        matching(&self.chars, open, SHELL_QUOTES).unwrap_or(self.chars.len() - 1)
    }

    /// The commands of a substitution, chars[from..to], on their lines, to `out`.
    fn substitution(&mut self, from: usize, to: usize) {
        let first_line = line_at(&self.chars, from);
        let inner: String = self.chars[from..to].iter().collect();
        let found = commands_in(&inner, self.functions);
        self.out
            .extend(found.into_iter().map(|(l, c)| (first_line + l - 1, c)));
    }

    /// `\` escapes the next char; before a newline it continues the line.
    fn backslash(&mut self, next: Option<char>) {
        if next == Some('\n') {
            self.line += 1;
        } else {
            self.word.extend(next);
            self.started = true;
        }
        self.i += 2;
    }

    /// A newline ends the word and the command; the bodies of heredocs begun on this line
    /// follow it.
    fn newline(&mut self) {
        self.end_word();
        self.tokens.push(Token::Op("\n".into()));
        self.line += 1;
        for delimiter in std::mem::take(&mut self.heredocs) {
            self.skip_heredoc_body(&delimiter);
        }
        self.i += 1;
    }

    /// From the newline at `i`: the lines up to the one that is `delimiter` (`i` at its end).
    fn skip_heredoc_body(&mut self, delimiter: &str) {
        while self.i + 1 < self.chars.len() {
            let end = next_of(&self.chars, self.i + 1, '\n');
            let body_line: String = self.chars[self.i + 1..end].iter().collect();
            self.i = end;
            self.line += 1;
            if body_line.trim() == delimiter {
                break;
            }
        }
    }

    /// `'…'`: all literal.
    fn single_quoted(&mut self) {
        let end = next_of(&self.chars, self.i + 1, '\'');
        self.word.extend(&self.chars[self.i + 1..end]);
        self.line += newlines(&self.chars[self.i + 1..end]);
        self.started = true;
        self.i = end + 1;
    }

    /// `"…"`: literal but for escapes and expansions (`$x`, `$(…)`, `` `…` ``).
    fn double_quoted(&mut self) {
        let mut j = self.i + 1;
        while j < self.chars.len() && self.chars[j] != '"' {
            j = match self.chars[j] {
                '\\' => {
                    self.word.extend(self.chars.get(j + 1));
                    j + 2
                }
                '$' if self.chars.get(j + 1) == Some(&'(') => self.command_substitution(j),
                '`' => self.backquoted(j),
                c => {
                    self.dynamic |= c == '$';
                    self.line += usize::from(c == '\n');
                    self.word.push(c);
                    j + 1
                }
            };
        }
        self.started = true;
        self.i = j + 1;
    }

    /// `$(…)` at `at` (its commands) or `$((…))` (arithmetic): the index after it.
    fn command_substitution(&mut self, at: usize) -> usize {
        let end = self.closing(at + 1);
        if self.chars.get(at + 2) != Some(&'(') {
            self.substitution(at + 2, end);
        }
        self.line += newlines(&self.chars[at..end]);
        self.dynamic = true;
        end + 1
    }

    /// `` `…` `` at `at`: its commands; the index after it.
    fn backquoted(&mut self, at: usize) -> usize {
        let end = next_of(&self.chars, at + 1, '`');
        self.substitution(at + 1, end);
        self.dynamic = true;
        end + 1
    }

    /// `${…}`: known only at run time.
    fn parameter_expansion(&mut self) {
        let end = matching_brace(&self.chars, self.i + 1).unwrap_or(self.chars.len() - 1);
        self.line += newlines(&self.chars[self.i..end]);
        self.dynamic = true;
        self.started = true;
        self.i = end + 1;
    }

    /// An array: `name=(…)`.
    fn array(&mut self) {
        let end = self.closing(self.i);
        self.line += newlines(&self.chars[self.i..end]);
        self.dynamic = true;
        self.i = end + 1;
    }

    /// `<(…)`, `>(…)`: its commands.
    fn process_substitution(&mut self) {
        let end = self.closing(self.i + 1);
        self.substitution(self.i + 2, end);
        self.dynamic = true;
        self.started = true;
        self.i = end + 1;
    }

    /// `<`, `>>`, `2>&1`, `<<EOF`: the redirection and its target are not part of the command.
    fn redirection(&mut self) {
        let digits = self.word.chars().all(|c| c.is_ascii_digit());
        if self.started && digits && !self.dynamic {
            self.word.clear(); // a file descriptor: 2>&1, 9>"$lock"
            self.started = false;
        }
        self.end_word();
        let start = self.i;
        let mut end = start;
        while end < self.chars.len() && "<>&|-".contains(self.chars[end]) && end - start < 3 {
            end += 1;
        }
        let op: String = self.chars[start..end].iter().collect();
        if op.starts_with("<<") && !op.starts_with("<<<") {
            self.i = self.heredoc_delimiter(end);
            return;
        }
        // A target follows (`>&2`, `2>&1`: at once), unless the operator closes (`9>&-`).
        self.redirect_target = !op.ends_with('-');
        self.i = end;
    }

    /// A heredoc's delimiter, from `from` on: its body follows this line. The index after it.
    fn heredoc_delimiter(&mut self, from: usize) -> usize {
        let mut k = from;
        while self.chars.get(k) == Some(&' ') {
            k += 1;
        }
        let start = k;
        while k < self.chars.len()
            && !self.chars[k].is_whitespace()
            && !";|&)".contains(self.chars[k])
        {
            k += 1;
        }
        let delimiter = self.chars[start..k]
            .iter()
            .filter(|c| !"'\"\\".contains(**c))
            .collect();
        self.heredocs.push(delimiter);
        k
    }

    /// `;` `;;` `&` `&&` `|` `||` `(` `)` end a word and a command; `((…))` is arithmetic.
    fn operator(&mut self, c: char, next: Option<char>) {
        self.end_word();
        if c == '(' && next == Some('(') {
            self.i = self.closing(self.i) + 1;
            return;
        }
        let double = next == Some(c) && c != '(' && c != ')';
        let op = if double {
            format!("{c}{c}")
        } else {
            c.to_string()
        };
        self.tokens.push(Token::Op(op));
        self.i += if double { 2 } else { 1 };
    }
}
