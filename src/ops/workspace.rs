//! Where things are: the stack file under `stacks/`, the state under `state/`.

use std::path::{Path, PathBuf};

use super::{OpsError, Result};

#[derive(Clone, Debug)]
pub struct Workspace {
    pub root: PathBuf,
    pub stack_file: PathBuf,
    pub stack_name: String,
}

impl Workspace {
    /// `--stack NAME` picks `stacks/NAME.toml` (or a path to a .toml file); without it, the only
    /// stack file in `stacks/`.
    pub fn find(root: &Path, stack: Option<&str>) -> Result<Workspace> {
        let stacks = root.join("stacks");
        let stack_file = match stack {
            Some(s) if s.ends_with(".toml") => root.join(s),
            Some(s) => stacks.join(format!("{s}.toml")),
            None if !stacks.is_dir() => {
                return Err(OpsError::Usage(format!(
                    "no stacks/ directory in {}: start a stack here with `infra init [NAME]`, or run infra in (or --chdir to) a project that has one",
                    shown(root)
                )));
            }
            None => {
                let mut found: Vec<PathBuf> = std::fs::read_dir(&stacks)
                    .map_err(|source| OpsError::Io {
                        what: "cannot list stack files in",
                        path: shown(&stacks),
                        source,
                    })?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                    .collect();
                found.sort();
                match found.len() {
                    1 => found.remove(0),
                    0 => {
                        return Err(OpsError::Usage(format!(
                            "no stack file in {}: start one with `infra init [NAME]`",
                            shown(&stacks)
                        )));
                    }
                    _ => {
                        let names: Vec<String> = found
                            .iter()
                            .map(|p| crate::config::default_name(p))
                            .collect();
                        return Err(OpsError::Usage(format!(
                            "several stacks in {}: choose one with --stack ({})",
                            shown(&stacks),
                            names.join(", ")
                        )));
                    }
                }
            }
        };
        if !stack_file.is_file() {
            return Err(OpsError::Usage(format!(
                "no stack file at {}",
                shown(&stack_file)
            )));
        }
        let stack_name = crate::config::default_name(&stack_file);
        Ok(Workspace {
            root: root.to_path_buf(),
            stack_file,
            stack_name,
        })
    }

    /// The stack file's directory: relative paths in the stack file start there.
    pub fn stack_dir(&self) -> PathBuf {
        self.stack_file
            .parent()
            .unwrap_or(std::path::Path::new("."))
            .to_path_buf()
    }

    pub fn state_dir(&self) -> PathBuf {
        self.root.join("state")
    }

    /// The stack file as shown in messages: relative to the working directory when possible.
    pub fn shown_stack_file(&self) -> String {
        self.stack_file
            .strip_prefix(&self.root)
            .unwrap_or(&self.stack_file)
            .display()
            .to_string()
    }
}

pub(super) fn shown(p: &Path) -> String {
    p.display().to_string()
}
