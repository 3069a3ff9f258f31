//! Where the state lives: a local file (the default) or an S3 object, behind one interface.

use std::time::{Duration, Instant};

use super::{LocalBackend, LockGuard, LockInfo, S3Backend, State, StateError};

#[derive(Debug)]
pub enum Backend {
    Local(LocalBackend),
    S3(S3Backend),
}

/// A held lock. Release it with [`Lock::release`]; a local lock is also released on drop.
#[derive(Debug)]
pub enum Lock<'a> {
    Local(LockGuard),
    S3 { backend: &'a S3Backend, id: String },
}

impl Lock<'_> {
    pub fn id(&self) -> &str {
        match self {
            Lock::Local(g) => g.id(),
            Lock::S3 { id, .. } => id,
        }
    }

    pub async fn release(self) {
        if let Lock::S3 { backend, id } = &self
            && let Err(e) = backend.unlock(id).await
        {
            eprintln!(
                "warning: could not release the lock {id} on {}: {e}",
                backend.describe()
            );
        }
    }
}

/// How often a run waiting for a lock looks again.
const LOCK_POLL: Duration = Duration::from_secs(1);

impl Backend {
    pub fn describe(&self) -> String {
        match self {
            Backend::Local(l) => l.path().display().to_string(),
            Backend::S3(s) => s.describe(),
        }
    }

    pub async fn load(&self) -> Result<Option<State>, StateError> {
        match self {
            Backend::Local(l) => l.load(),
            Backend::S3(s) => s.load().await,
        }
    }

    pub async fn save(&self, state: &mut State) -> Result<(), StateError> {
        match self {
            Backend::Local(l) => l.save(state),
            Backend::S3(s) => s.save(state).await,
        }
    }

    /// Takes the lock for `operation`, waiting up to `timeout` for another run to release it.
    pub async fn lock(&self, operation: &str, timeout: Duration) -> Result<Lock<'_>, StateError> {
        let deadline = Instant::now() + timeout;
        let mut told = false;
        let mut cleared = false;
        loop {
            let info = LockInfo::new(operation);
            let id = info.id.clone();
            let attempt = match self {
                Backend::Local(l) => l.lock(info).map(Lock::Local),
                Backend::S3(s) => s.try_lock(&info).await.map(|_| Lock::S3 { backend: s, id }),
            };
            match attempt {
                // Its holder ran on this machine and is gone: nobody else can release it.
                Err(StateError::Locked(holder)) if holder.is_stale() && !cleared => {
                    eprintln!(
                        "note: removing the lock left by pid {} ({} since {}), which no longer runs",
                        holder.pid,
                        holder.operation,
                        holder.created.format("%H:%M:%S UTC")
                    );
                    self.force_unlock(&holder.id).await?;
                    cleared = true;
                }
                Err(StateError::Locked(holder)) if Instant::now() < deadline => {
                    if !told {
                        eprintln!(
                            "The state is locked by {}@{} (pid {}) for {}; waiting up to {} for it...",
                            holder.user,
                            holder.host,
                            holder.pid,
                            holder.operation,
                            humantime::format_duration(timeout)
                        );
                        told = true;
                    }
                    tokio::time::sleep(LOCK_POLL.min(deadline - Instant::now())).await;
                }
                other => return other,
            }
        }
    }

    pub async fn force_unlock(&self, id: &str) -> Result<LockInfo, StateError> {
        match self {
            Backend::Local(l) => l.force_unlock(id),
            Backend::S3(s) => s.unlock(id).await,
        }
    }
}
