//! State in `state/<stack>.json`, beside the lock `state/<stack>.lock` and the backup
//! `state/<stack>.json.backup`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{LockGuard, LockInfo, State, StateError, parse};

#[derive(Clone, Debug)]
pub struct LocalBackend {
    dir: PathBuf,
    stack: String,
}

impl LocalBackend {
    pub fn new(dir: impl Into<PathBuf>, stack: &str) -> Self {
        LocalBackend {
            dir: dir.into(),
            stack: stack.to_string(),
        }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(format!("{}.json", self.stack))
    }

    pub fn backup_path(&self) -> PathBuf {
        self.dir.join(format!("{}.json.backup", self.stack))
    }

    fn lock_path(&self) -> PathBuf {
        self.dir.join(format!("{}.lock", self.stack))
    }

    /// The state, or None if the stack was never applied. A damaged file is an error, never
    /// silently replaced.
    pub fn load(&self) -> Result<Option<State>, StateError> {
        let path = self.path();
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(StateError::Read {
                    path: shown(&path),
                    source,
                });
            }
        };
        parse(
            &text,
            &shown(&path),
            &shown(&self.backup_path()),
            &self.stack,
        )
        .map(Some)
    }

    /// Bumps the serial and replaces the file atomically: write a temp file, fsync, keep the
    /// current file as the backup, rename the temp file over it, fsync the directory.
    pub fn save(&self, state: &mut State) -> Result<(), StateError> {
        state.serial += 1;
        let path = self.path();
        let err = |source| StateError::Write {
            path: shown(&path),
            source,
        };
        fs::create_dir_all(&self.dir).map_err(err)?;
        let text = serde_json::to_string_pretty(state).expect("state serializes");
        let tmp = self.dir.join(format!(".{}.json.tmp", self.stack));
        let mut file = fs::File::create(&tmp).map_err(err)?;
        file.write_all(text.as_bytes()).map_err(err)?;
        file.write_all(b"\n").map_err(err)?;
        file.sync_all().map_err(err)?;
        if path.exists() {
            // A hard link keeps the old version intact even if we die between the two renames.
            let backup = self.backup_path();
            let _ = fs::remove_file(&backup);
            fs::hard_link(&path, &backup)
                .or_else(|_| fs::copy(&path, &backup).map(drop))
                .map_err(err)?;
        }
        fs::rename(&tmp, &path).map_err(err)?;
        if let Ok(dir) = fs::File::open(&self.dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    }

    pub fn lock(&self, info: LockInfo) -> Result<LockGuard, StateError> {
        fs::create_dir_all(&self.dir).map_err(|source| StateError::Lock {
            path: shown(&self.dir),
            source,
        })?;
        LockGuard::acquire(self.lock_path(), info)
    }

    pub fn force_unlock(&self, id: &str) -> Result<LockInfo, StateError> {
        LockGuard::force_release(&self.lock_path(), id)
    }
}

pub(super) fn shown(path: &Path) -> String {
    path.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_keeps_backup_and_bumps_serial() {
        let dir = tempfile::tempdir().unwrap();
        let backend = LocalBackend::new(dir.path(), "s");
        assert!(backend.load().unwrap().is_none());
        let mut state = State::new("s");
        backend.save(&mut state).unwrap();
        backend.save(&mut state).unwrap();
        assert_eq!(backend.load().unwrap().unwrap().serial, 2);
        let backup: State =
            serde_json::from_str(&fs::read_to_string(backend.backup_path()).unwrap()).unwrap();
        assert_eq!(backup.serial, 1);
    }

    #[test]
    fn corrupt_state_is_refused_and_names_backup() {
        let dir = tempfile::tempdir().unwrap();
        let backend = LocalBackend::new(dir.path(), "s");
        fs::write(backend.path(), "{\"version\": 1, \"stack\": ").unwrap();
        let err = backend.load().unwrap_err().to_string();
        assert!(err.contains("is not valid"), "{err}");
        assert!(err.contains("s.json.backup"), "{err}");
        assert_eq!(
            fs::read_to_string(backend.path()).unwrap(),
            "{\"version\": 1, \"stack\": "
        );
    }

    #[test]
    fn second_lock_names_holder_and_force_unlock_releases() {
        let dir = tempfile::tempdir().unwrap();
        let backend = LocalBackend::new(dir.path(), "s");
        let guard = backend.lock(LockInfo::new("apply")).unwrap();
        let err = backend.lock(LockInfo::new("plan")).unwrap_err();
        let StateError::Locked(info) = &err else {
            panic!("{err}")
        };
        assert_eq!(info.operation, "apply");
        assert!(err.to_string().contains("infra force-unlock"));
        let id = guard.id().to_string();
        std::mem::forget(guard); // as if the process had died
        assert!(backend.force_unlock("nope").is_err());
        backend.force_unlock(&id).unwrap();
        backend.lock(LockInfo::new("apply")).unwrap();
    }
}
