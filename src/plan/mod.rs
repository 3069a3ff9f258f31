//! Plans: the difference between what the stack asks for and what exists, and the order in
//! which to close it. Pure: no I/O.

mod diff;
pub mod graph;
pub mod quorum;
mod render;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use diff::{Options as DiffOptions, diff, diff_with};
pub use render::{json, markdown, text};

use std::collections::BTreeMap;

use crate::model::{Address, Spec};
use crate::state::ResourceState;

/// Version of the saved-plan file and of the `--json` document (docs/plan-json.md).
pub const PLAN_FORMAT_VERSION: u32 = 1;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Plan {
    pub format_version: u32,
    pub stack: String,
    /// The stack's region, so a saved plan applies without reading the stack file.
    pub region: Option<String>,
    /// The state this plan was made against: apply refuses it if the state moved since.
    pub lineage: Option<Uuid>,
    pub serial: u64,
    /// Hash of the stack file the plan was made from.
    pub stack_sha256: String,
    pub created: DateTime<Utc>,
    pub destroy: bool,
    pub changes: Vec<Change>,
    /// Objects that exist and need no change, as read at plan time: apply records them in the
    /// state (adopting what the state had lost) and resolves references to them.
    #[serde(default)]
    pub unchanged: BTreeMap<Address, ResourceState>,
    /// How to reach the nodes, when infra runs the Swarm on them.
    #[serde(default)]
    pub ssh: Option<crate::model::SshSettings>,
    /// How services are deployed, when the stack has any.
    #[serde(default)]
    pub deploy: crate::model::DeploySettings,
    /// What is worth knowing and changes nothing by itself: e.g. a newer AMI for a pool.
    #[serde(default)]
    pub notices: Vec<String>,
    /// The outputs (addresses, zone…) of the objects that change, as read at plan time: apply
    /// reaches a node by them even when the state lacks them (an object a killed run retagged
    /// `…/old`, or one the state had lost).
    #[serde(default)]
    pub observed: BTreeMap<Address, BTreeMap<String, String>>,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Update,
    Replace,
    Delete,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Change {
    pub address: Address,
    pub action: Action,
    /// The live object's id (update, replace, delete).
    pub id: Option<String>,
    pub before: Option<Spec>,
    pub after: Option<Spec>,
    /// For update and replace: the fields that differ.
    pub fields: Vec<FieldChange>,
    /// Why, when it is not a field of this object: e.g. a dependency is replaced.
    pub reason: Option<String>,
    /// A Swarm node's instance (and its membership) replaced create-before-destroy, one node
    /// at a time: the new node joins and serves before the old one leaves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolling: Option<Rolling>,
}

/// A node's place in a rolling replacement: `index` (from 1) of `of` nodes, in the order they
/// roll (managers one at a time, the Raft leader last, then workers `max_unavailable` at a
/// time); `after` is the roll that must be over (its old node gone) before this one starts.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Rolling {
    pub index: usize,
    pub of: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<usize>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FieldChange {
    pub name: String,
    pub before: serde_json::Value,
    pub after: serde_json::Value,
    pub forces_replacement: bool,
}

#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Summary {
    pub add: usize,
    pub change: usize,
    pub destroy: usize,
}

impl Change {
    pub fn spec(&self) -> &Spec {
        self.after
            .as_ref()
            .or(self.before.as_ref())
            .expect("a change has a before or an after")
    }
}

impl Plan {
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for c in &self.changes {
            match c.action {
                Action::Create => s.add += 1,
                Action::Update => s.change += 1,
                Action::Replace => {
                    s.add += 1;
                    s.destroy += 1
                }
                Action::Delete => s.destroy += 1,
            }
        }
        s
    }

    pub fn has_changes(&self) -> bool {
        !self.changes.is_empty()
    }
}

#[cfg(test)]
mod app_tests;
#[cfg(test)]
mod tests;
