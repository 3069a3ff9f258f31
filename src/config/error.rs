use std::fmt;
use std::ops::Range;

use miette::{Diagnostic, NamedSource, SourceSpan};
use thiserror::Error;

/// `file:line:col`, 1-based, as editors and terminals understand it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub file: String,
    pub line: usize,
    pub column: usize,
}

impl Location {
    pub fn of(file: &str, source: &str, offset: usize) -> Self {
        let before = &source[..source.floor_char_boundary(offset.min(source.len()))];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        Location {
            file: file.to_string(),
            line,
            column,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// One problem in a stack file, pointing at the offending text.
#[derive(Debug, Error, Diagnostic)]
#[error("{location}: {message}")]
pub struct ConfigError {
    pub message: String,
    pub location: Location,
    #[source_code]
    source_code: NamedSource<String>,
    #[label("{label}")]
    span: SourceSpan,
    label: String,
    #[help]
    pub help: Option<String>,
}

impl ConfigError {
    pub fn new(
        file: &str,
        source: &str,
        span: Range<usize>,
        message: String,
        help: Option<String>,
    ) -> Self {
        // Never slice inside a character, whatever span a caller computed.
        let start = source.floor_char_boundary(span.start.min(source.len()));
        let span = start..source.ceil_char_boundary(span.end.clamp(start, source.len()));
        let label = source[span.clone()]
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        let label = if label.chars().count() > 60 {
            "here".to_string()
        } else {
            label
        };
        ConfigError {
            location: Location::of(file, source, span.start),
            source_code: NamedSource::new(file, source.to_string()),
            span: span.into(),
            label,
            message,
            help,
        }
    }
}

/// All the problems found in one stack file (validation reports them all at once).
#[derive(Debug, Error, Diagnostic)]
#[error("{file}: {} error{} in the stack file", errors.len(), if errors.len() == 1 { "" } else { "s" })]
pub struct ConfigErrors {
    pub file: String,
    #[related]
    pub errors: Vec<ConfigError>,
}
