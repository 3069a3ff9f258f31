//! Char-scanning helpers that the scanners share: finding text, matching brackets, reading
//! string literals and splitting argument lists. None of them parses a language fully: each
//! knows just enough of the quoting to skip strings that hold brackets or commas.

/// Rust's one string quote: the `quotes` argument for Rust code.
pub const RUST_QUOTES: &[char] = &['"'];

/// Python's string quotes.
pub const PYTHON_QUOTES: &[char] = &['"', '\''];

/// The shell's quotes.
pub const SHELL_QUOTES: &[char] = &['"', '\''];

/// Where `pattern` starts in `chars`, each time.
pub fn find_all(chars: &[char], pattern: &str) -> Vec<usize> {
    let pattern: Vec<char> = pattern.chars().collect();
    let ends = chars.len().saturating_sub(pattern.len() - 1);
    (0..ends)
        .filter(|&i| chars[i..i + pattern.len()] == pattern[..])
        .collect()
}

pub fn text_of(chars: &[char]) -> String {
    chars.iter().collect()
}

pub fn newlines(chars: &[char]) -> usize {
    chars.iter().filter(|c| **c == '\n').count()
}

/// The line (from 1) that the char at `at` is on.
pub fn line_at(chars: &[char], at: usize) -> usize {
    newlines(&chars[..at]) + 1
}

/// The index of `wanted`'s next occurrence from `from` on, or the end of `chars`.
pub fn next_of(chars: &[char], from: usize, wanted: char) -> usize {
    chars[from..]
        .iter()
        .position(|c| *c == wanted)
        .map_or(chars.len(), |p| from + p)
}

/// The index of the bracket closing the one at `open`, skipping strings quoted with `quotes`
/// (backslash escapes). For Rust (`"` the only quote): `r#"…"#` and `'"'` too.
pub fn matching(chars: &[char], open: usize, quotes: &[char]) -> Option<usize> {
    let (opening, closing) = match chars[open] {
        '(' => ('(', ')'),
        '[' => ('[', ']'),
        '{' => ('{', '}'),
        _ => return None,
    };
    let rust = quotes == RUST_QUOTES;
    let mut depth = 0;
    let mut i = open;
    while i < chars.len() {
        let c = chars[i];
        if quotes.contains(&c) {
            i = string_end(chars, i, c)?;
        } else if let Some(end) = rust.then(|| rust_literal_end(chars, i)).flatten() {
            i = end;
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

/// `${…}`: the index of its closing brace (braces nest).
pub fn matching_brace(chars: &[char], open: usize) -> Option<usize> {
    matching(chars, open, &[])
}

/// At a Rust raw string or char literal (`r#"…"#`, `'"'`, `'\''`), whose quotes and brackets
/// are not code: the index of its last char (the end of `chars` if it never closes).
fn rust_literal_end(chars: &[char], i: usize) -> Option<usize> {
    let c = chars[i];
    if c == 'r'
        && !chars[i - 1].is_alphanumeric()
        && let Some(hashes) = raw_start(chars, i)
    {
        let close: Vec<char> = std::iter::once('"')
            .chain(std::iter::repeat_n('#', hashes))
            .collect();
        let body = i + 2 + hashes;
        let end = chars[body..].windows(close.len()).position(|w| w == close);
        return Some(end.map_or(chars.len(), |p| body + p + close.len() - 1));
    }
    if c == '\'' && chars.get(i + 2) == Some(&'\'') {
        return Some(i + 2); // a char literal: '"', '('
    }
    if c == '\'' && chars.get(i + 1) == Some(&'\\') {
        return Some(i + 3); // '\"', '\''
    }
    None
}

/// At `r#"` (or `r"`): the number of `#`.
fn raw_start(chars: &[char], r: usize) -> Option<usize> {
    let hashes = chars[r + 1..].iter().take_while(|c| **c == '#').count();
    (chars.get(r + 1 + hashes) == Some(&'"')).then_some(hashes)
}

/// The index of the quote closing the string that opens at `start`.
pub fn string_end(chars: &[char], start: usize, quote: char) -> Option<usize> {
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
pub fn string_literal(expr: &str, quotes: &[char]) -> Option<String> {
    let chars: Vec<char> = expr.chars().collect();
    let quote = *chars.first()?;
    if !quotes.contains(&quote) || string_end(&chars, 0, quote)? != chars.len() - 1 {
        return None;
    }
    let mut value = String::new();
    let mut body = chars[1..chars.len() - 1].iter();
    while let Some(&c) = body.next() {
        if c != '\\' {
            value.push(c);
            continue;
        }
        match body.next() {
            Some('n') => value.push('\n'),
            Some('t') => value.push('\t'),
            Some(&other) => value.push(other),
            None => {}
        }
    }
    Some(value)
}

/// `text` split at the commas outside brackets and strings (empty parts dropped).
pub fn split_top(text: &str, quotes: &[char]) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut parts = vec![];
    let mut start = 0;
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            c if quotes.contains(&c) => i = string_end(&chars, i, c).unwrap_or(chars.len()),
            '(' | '[' | '{' => i = matching(&chars, i, quotes).unwrap_or(chars.len()),
            ',' => {
                parts.push(text_of(&chars[start..i]));
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    parts.push(text_of(&chars[start.min(chars.len())..]));
    parts.retain(|p| !p.trim().is_empty());
    parts
}
