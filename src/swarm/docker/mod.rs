//! The docker commands run on the nodes, as scripts for `sh -c`, and the parsing of what they
//! print. Pure. Secrets (join tokens) are never part of a script: they arrive on stdin.
//!
//! By job, all re-exported here: [`boot`] (first boot, probing Docker, what was out of reach),
//! [`membership`] (init, join, update, drain, leave, remove), [`view`] (the Swarm read in one
//! call and parsed), [`apps`] (networks, configs, secrets, services), [`tasks`] (a service's
//! tasks and logs, a node's facts: the day-2 commands).

mod apps;
mod boot;
mod membership;
mod tasks;
mod view;

pub use apps::*;
pub use boot::*;
pub use membership::*;
pub use tasks::*;
pub use view::*;

/// `s` as one word of a POSIX shell command: single-quoted, its own quotes escaped.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
