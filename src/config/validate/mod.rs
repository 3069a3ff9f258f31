//! Checks the parsed file and builds the model; collects every error before giving up. The
//! entry points are here; the checks are by area of the stack file: [`network`], [`nodes`]
//! (the pools and the public key), [`load_balancer`], [`ssh`] (and the bastion), [`apps`]
//! (secrets, services, compose file), [`state`]; [`values`] holds the checks of single values
//! they share.

mod apps;
mod load_balancer;
mod logging;
mod network;
mod nodes;
mod registry;
mod ssh;
mod state;
mod values;

use std::ops::Range;
use std::path::Path;

use super::schema::*;
use super::{ConfigError, ConfigErrors, Loaded, ReadFile};
use crate::model::*;

pub struct Validator<'a> {
    file: &'a str,
    source: &'a str,
    errors: Vec<ConfigError>,
    warnings: Vec<ConfigError>,
    vars: Vars,
    /// The variables `--var` or `INFRA_VAR_*` set.
    overridden: Vec<String>,
}

/// Variables infra sets itself (`registry`: the stack's ECR registry, with `[registry]`).
pub const BUILTIN_VARS: &[&str] = &["registry"];

/// "infra-<name>-<port>" must fit ELBv2's 32-character name limit.
const MAX_NAME_LEN: usize = 20;

/// A stack name: 1 to 20 lowercase letters, digits or inner hyphens.
pub fn check_stack_name(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= MAX_NAME_LEN
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "stack name {s:?} must be 1 to {MAX_NAME_LEN} lowercase letters, digits or inner hyphens"
        ))
    }
}

impl<'a> Validator<'a> {
    pub fn new(file: &'a str, source: &'a str) -> Self {
        Validator {
            file,
            source,
            errors: Vec::new(),
            warnings: Vec::new(),
            vars: Vars::new(),
            overridden: Vec::new(),
        }
    }

    fn error(&mut self, span: Range<usize>, message: impl Into<String>, help: Option<&str>) {
        let e = ConfigError::new(
            self.file,
            self.source,
            span,
            message.into(),
            help.map(str::to_string),
        );
        self.errors.push(e);
    }

    fn warn(&mut self, span: Range<usize>, message: impl Into<String>, help: &str) {
        let w = ConfigError::new(
            self.file,
            self.source,
            span,
            message.into(),
            Some(help.to_string()),
        );
        self.warnings.push(w);
    }

    pub fn run(
        mut self,
        f: StackFile,
        overrides: &Vars,
        read_file: ReadFile,
    ) -> Result<Loaded, ConfigErrors> {
        self.vars = f
            .vars
            .iter()
            .map(|(k, v)| (k.clone(), v.get_ref().clone()))
            .collect();
        for (key, value) in overrides {
            if !self.vars.contains_key(key) && !BUILTIN_VARS.contains(&key.as_str()) {
                let declared: Vec<_> = self.vars.keys().map(String::as_str).collect();
                let msg = format!(
                    "--var {key}: no such variable is declared in [vars] (declared: {})",
                    declared.join(", ")
                );
                self.error(
                    0..0,
                    msg,
                    Some("declare it in the stack file's [vars] table, with a default"),
                );
            }
            self.vars.insert(key.clone(), value.clone());
            self.overridden.push(key.clone());
        }

        let name = self.stack_name(super::default_name(Path::new(self.file)));
        let region = f.region.as_ref().map(|r| r.get_ref().clone());
        let network = self.network(f.network.get_ref(), f.network.span(), region.as_deref());
        let nodes = f.nodes.get_ref();
        let public_key = self.public_key(&nodes.public_key_file, read_file);
        let managers = self.pool(Role::Manager, Some(&nodes.managers), nodes, f.nodes.span());
        let workers = self.pool(Role::Worker, nodes.workers.as_ref(), nodes, f.nodes.span());
        let load_balancer = self.load_balancer(f.load_balancer.get_ref(), f.load_balancer.span());
        let state = self.state(f.state.as_ref(), &name, region.as_deref());
        let ssh = self.ssh(f.ssh.as_ref().map(|s| s.get_ref()));
        let swarm = f.swarm.as_ref().and_then(|s| s.enabled).unwrap_or(true);
        self.ssh_path(&f, swarm);
        let bastion = f
            .bastion
            .as_ref()
            .and_then(|b| self.bastion(&f, b, managers.as_ref()?));
        let registry = f.registry.as_ref().and_then(|r| self.registry(r));
        let logging = f.logging.as_ref().and_then(|l| self.logging(l));
        let node_access = self.node_access(nodes);
        let apps = self.apps(&f, read_file);
        if let (Some(lb), true) = (&load_balancer, swarm) {
            self.drain_time(&f, lb);
        }

        if !self.errors.is_empty() {
            return Err(ConfigErrors {
                file: self.file.into(),
                errors: self.errors,
            });
        }
        let stack = Stack {
            name,
            region,
            network: network.expect("no errors"),
            managers: managers.expect("no errors"),
            workers: workers.expect("no errors"),
            public_key: public_key.expect("no errors"),
            load_balancer: load_balancer.expect("no errors"),
            state: state.expect("no errors"),
            ssh,
            bastion,
            swarm,
            apps: apps.expect("no errors"),
            registry,
            logging,
            node_access,
        };
        Ok(Loaded {
            stack,
            warnings: self.warnings,
        })
    }

    /// The stack's name is its file name: `stacks/prod.toml` is stack `prod`.
    /// The errors and warnings so far, for callers that check only part of a file.
    pub fn finish(self) -> Result<Vec<ConfigError>, ConfigErrors> {
        if self.errors.is_empty() {
            Ok(self.warnings)
        } else {
            Err(ConfigErrors {
                file: self.file.into(),
                errors: self.errors,
            })
        }
    }

    fn stack_name(&mut self, s: String) -> String {
        if let Err(msg) = check_stack_name(&s) {
            self.error(
                0..0,
                msg.replacen(" must", " (the file name) must", 1),
                Some(
                    "rename the file: AWS load balancer and target group names are derived from it",
                ),
            );
        }
        s
    }

    /// Where `key` is written in the table at `table`, else where the table starts: for errors
    /// about a key that may be absent.
    fn key_span(&self, key: &str, table: Range<usize>) -> Range<usize> {
        let rest = &self.source[table.start..];
        // The table's text runs to the next table header.
        let text = &rest[..rest[1..].find("\n[").map_or(rest.len(), |end| end + 1)];
        match text.find(&format!("\n{key}")) {
            Some(at) => table.start + at + 1..table.start + at + 1 + key.len(),
            None => table.start..table.start + text.find('\n').unwrap_or(text.len()),
        }
    }
}
