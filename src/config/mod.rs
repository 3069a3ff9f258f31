//! Stack files: parse (serde + TOML, spans kept) and validate into the model. No I/O here:
//! the caller hands in the text and a reader for files the stack refers to (the public key).

pub mod edit;
mod error;
mod schema;
pub mod template;
mod validate;

use std::path::Path;

pub use error::{ConfigError, ConfigErrors, Location};
pub use schema::StackFile;
pub use validate::check_stack_name;

use crate::model::{Stack, Vars};

/// A validated stack plus the warnings worth showing (they never stop a run).
#[derive(Debug)]
pub struct Loaded {
    pub stack: Stack,
    pub warnings: Vec<ConfigError>,
}

/// Reads a file the stack file names (relative paths are relative to the stack file).
pub type ReadFile<'a> = &'a dyn Fn(&Path) -> std::io::Result<String>;

pub fn parse(
    file: &str,
    source: &str,
    overrides: &Vars,
    read_file: ReadFile,
) -> Result<Loaded, ConfigErrors> {
    let parsed: StackFile = toml::from_str(source).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        let message = e.message().trim_end().to_string();
        let help = message
            .starts_with("unknown field")
            .then(|| "see stacks/aws-example.toml for every key, with comments".to_string());
        ConfigErrors {
            file: file.into(),
            errors: vec![ConfigError::new(file, source, span, message, help)],
        }
    })?;
    validate::Validator::new(file, source).run(parsed, overrides, read_file)
}

/// Only where the state lives, for commands that do not need the whole stack (output,
/// force-unlock, state migrate): the rest of the file is not checked.
pub fn state_location(
    file: &str,
    source: &str,
) -> Result<crate::model::StateLocation, ConfigErrors> {
    let one = |span: std::ops::Range<usize>, message: String| ConfigErrors {
        file: file.into(),
        errors: vec![ConfigError::new(file, source, span, message, None)],
    };
    let parsed: schema::StateOnly = toml::from_str(source)
        .map_err(|e| one(e.span().unwrap_or(0..0), e.message().to_string()))?;
    let mut v = validate::Validator::new(file, source);
    let stack = default_name(Path::new(file));
    let location = v.state(
        parsed.state.as_ref(),
        &stack,
        parsed.region.as_ref().map(|r| r.get_ref().as_str()),
    );
    v.finish().map(|_| location.expect("no errors"))
}

/// An error about a value of the stack file found after validation (by the plan's checks
/// against AWS): at the first of `paths` written in the file (`["load_balancer",
/// "certificate_arn"]`; a number picks an array's item: `["network", "subnets", "1", "zone"]`),
/// else at its start.
pub fn error_at(
    file: &str,
    source: &str,
    paths: &[&[&str]],
    message: String,
    help: Option<String>,
) -> ConfigErrors {
    let span = toml_edit::Document::parse(source).ok().and_then(|doc| {
        paths.iter().find_map(|path| {
            let mut item = doc.as_item();
            for key in *path {
                item = match key.parse::<usize>() {
                    Ok(i) => item.get(i)?,
                    Err(_) => item.get(*key)?,
                };
            }
            item.span()
        })
    });
    ConfigErrors {
        file: file.to_string(),
        errors: vec![ConfigError::new(
            file,
            source,
            span.unwrap_or(0..0),
            message,
            help,
        )],
    }
}

/// `sandbox` for `stacks/sandbox.toml`.
pub fn default_name(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
