//! The state file: what was applied, per address. Versioned, written atomically after every
//! change, the previous version kept as a backup. It never holds a secret.

mod backend;
mod local;
mod lock;
mod s3;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use uuid::Uuid;

pub use backend::{Backend, Lock};
pub use local::LocalBackend;
pub use lock::{LockGuard, LockInfo};
pub use s3::S3Backend;

use crate::model::{Address, Spec};

pub const FORMAT_VERSION: u32 = 1;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct State {
    pub version: u32,
    pub stack: String,
    /// Identifies this state's history; a saved plan for another lineage is refused.
    pub lineage: Uuid,
    /// Bumped by every write; a saved plan made at another serial is stale.
    pub serial: u64,
    pub resources: BTreeMap<Address, ResourceState>,
    /// Calls started but not known to have finished (an interrupted run leaves them here).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<Intent>,
    /// The nodes' SSH host keys as pinned on first contact (known_hosts lines keyed by instance
    /// id; public keys, not secrets). Kept here so a fresh CI runner verifies them too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host_keys: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ResourceState {
    pub id: String,
    pub spec: Spec,
    /// Facts AWS assigned: addresses, DNS names, ARNs. Shown by `infra output`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub outputs: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Intent {
    pub address: Address,
    pub action: String,
    pub started: DateTime<Utc>,
    /// The idempotency token of the step's calls (RunInstances `ClientToken`): a run that
    /// finishes a launch this run was killed in sends the same one, so that EC2 answers with the
    /// instances it launched then (which DescribeInstances may not list yet) instead of new ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl State {
    pub fn new(stack: &str) -> Self {
        State {
            version: FORMAT_VERSION,
            stack: stack.to_string(),
            lineage: Uuid::new_v4(),
            serial: 0,
            resources: BTreeMap::new(),
            pending: Vec::new(),
            host_keys: Vec::new(),
        }
    }

    pub fn id_of(&self, address: &Address) -> Option<&str> {
        self.resources.get(address).map(|r| r.id.as_str())
    }

    /// Stores a resource without the inputs that the spec represents by hash: bulky (user-data,
    /// public key) or possibly sensitive (a service's compose document holds its environment,
    /// env files included; a config's content).
    pub fn record(
        &mut self,
        address: Address,
        id: String,
        mut spec: Spec,
        outputs: BTreeMap<String, String>,
    ) {
        match &mut spec {
            Spec::Instance(i) => i.user_data.clear(),
            Spec::KeyPair(k) => k.public_key.clear(),
            Spec::Service(s) => s.definition.clear(),
            Spec::SwarmConfig(c) => c.content.clear(),
            Spec::SwarmNetwork(n) => n.create_args.clear(),
            _ => {}
        }
        self.resources
            .insert(address, ResourceState { id, spec, outputs });
    }
}

#[derive(Debug, Error)]
pub enum StateError {
    #[error("cannot read state file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "state file {path} is not valid: {reason}\n  It was not changed. The previous version is kept in {backup}; \
         compare the two, then restore the good one by hand."
    )]
    Corrupt {
        path: String,
        backup: String,
        reason: String,
    },
    #[error(
        "state file {path} has format version {found}; this infra understands version {FORMAT_VERSION}"
    )]
    Version { path: String, found: u32 },
    #[error("state file {path} belongs to stack {found:?}, not {expected:?}")]
    WrongStack {
        path: String,
        found: String,
        expected: String,
    },
    #[error("cannot write state file {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "the state is locked by {}@{} (pid {}) for {} since {}\n  Lock ID: {}\n  If that run is gone, release it with: infra force-unlock {}",
        .0.user, .0.host, .0.pid, .0.operation, .0.created.format("%Y-%m-%d %H:%M:%S UTC"), .0.id, .0.id
    )]
    Locked(Box<LockInfo>),
    #[error("no lock with ID {0} is held on this state")]
    NoSuchLock(String),
    #[error("lock file {path}: {source}")]
    Lock {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "{what} failed: {detail}\n  Check the bucket name, its region and your access to it, then run the command again."
    )]
    Remote { what: String, detail: String },
    #[error(
        "the state at {location} was changed by another run while this one held it (was the lock force-released?)\n  \
         Nothing was overwritten. Run `infra plan` again to see where things stand."
    )]
    Conflict { location: String },
}

/// Reads a state document, refusing anything damaged, of another format or of another stack.
pub(crate) fn parse(
    text: &str,
    path: &str,
    backup: &str,
    stack: &str,
) -> Result<State, StateError> {
    let corrupt = |reason: String| StateError::Corrupt {
        path: path.to_string(),
        backup: backup.to_string(),
        reason,
    };
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| corrupt(e.to_string()))?;
    let found = value.get("version").and_then(|v| v.as_u64()).unwrap_or(0) as u32;
    if found != FORMAT_VERSION {
        return Err(StateError::Version {
            path: path.to_string(),
            found,
        });
    }
    let state: State = serde_json::from_value(value).map_err(|e| corrupt(e.to_string()))?;
    if state.stack != stack {
        return Err(StateError::WrongStack {
            path: path.to_string(),
            found: state.stack,
            expected: stack.to_string(),
        });
    }
    Ok(state)
}
