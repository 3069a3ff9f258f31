//! One run at a time: a lock file created with O_EXCL, naming its holder. Removed on drop.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::StateError;
use super::local::shown;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LockInfo {
    pub id: String,
    pub operation: String,
    pub user: String,
    pub host: String,
    pub pid: u32,
    pub created: DateTime<Utc>,
}

#[derive(Debug)]
pub struct LockGuard {
    path: PathBuf,
    info: LockInfo,
}

impl LockInfo {
    /// A new lock for this process.
    pub fn new(operation: &str) -> Self {
        LockInfo {
            id: uuid::Uuid::new_v4().to_string(),
            operation: operation.to_string(),
            user: current_user(),
            host: gethostname::gethostname().to_string_lossy().into_owned(),
            pid: std::process::id(),
            created: Utc::now(),
        }
    }
}

/// Who runs this process: `$USER` or `$LOGNAME` when set (a login), else the name of its uid in
/// /etc/passwd (a service, a container, a CI runner), else `uid N`.
pub fn current_user() -> String {
    use std::os::unix::fs::MetadataExt;
    if let Some(user) = ["USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|u| !u.is_empty()))
    {
        return user;
    }
    let Ok(uid) = fs::metadata("/proc/self").map(|m| m.uid()) else {
        return "unknown".into();
    };
    fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|passwd| {
            passwd.lines().find_map(|l| {
                let mut f = l.split(':');
                let name = f.next()?;
                (f.nth(1)? == uid.to_string()).then(|| name.to_string())
            })
        })
        .unwrap_or_else(|| format!("uid {uid}"))
}

impl LockInfo {
    /// A lock taken on this machine by a process that no longer runs (killed, crashed).
    pub fn is_stale(&self) -> bool {
        let here = gethostname::gethostname().to_string_lossy().into_owned();
        self.host == here
            && self.pid != std::process::id()
            && !std::path::Path::new(&format!("/proc/{}", self.pid)).exists()
    }
}

impl LockGuard {
    pub(super) fn acquire(path: PathBuf, info: LockInfo) -> Result<Self, StateError> {
        let lock_err = |source| StateError::Lock {
            path: shown(&path),
            source,
        };
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut f) => {
                f.write_all(
                    serde_json::to_string_pretty(&info)
                        .expect("serializes")
                        .as_bytes(),
                )
                .map_err(lock_err)?;
                f.sync_all().map_err(lock_err)?;
                Ok(LockGuard { path, info })
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(StateError::Locked(Box::new(read(&path)?)))
            }
            Err(e) => Err(lock_err(e)),
        }
    }

    pub fn id(&self) -> &str {
        &self.info.id
    }

    pub(super) fn force_release(path: &Path, id: &str) -> Result<LockInfo, StateError> {
        let info = match read(path) {
            Ok(info) if info.id == id => info,
            _ => return Err(StateError::NoSuchLock(id.to_string())),
        };
        fs::remove_file(path).map_err(|source| StateError::Lock {
            path: shown(path),
            source,
        })?;
        Ok(info)
    }
}

fn read(path: &Path) -> Result<LockInfo, StateError> {
    let text = fs::read_to_string(path).map_err(|source| StateError::Lock {
        path: shown(path),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| StateError::Lock {
        path: shown(path),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
    })
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        // Only remove our own lock: someone may have force-unlocked and re-locked meanwhile.
        if read(&self.path).is_ok_and(|i| i.id == self.info.id) {
            let _ = fs::remove_file(&self.path);
        }
    }
}
