//! One process per data dir: an exclusive OS file lock on `cardex.lock`,
//! held for the life of the process. The OS releases it when the process
//! ends, however it ends, so a `kill -9` never leaves a stale lock; the
//! file only records the holder's pid, for the message a second process
//! shows.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// The lock file's name inside the data dir.
pub const LOCK_FILE: &str = "cardex.lock";

/// Holds the data dir's lock until dropped.
#[derive(Debug)]
pub struct DataDirLock {
    /// Open for as long as the lock is held: closing it releases the lock.
    _file: File,
    path: PathBuf,
}

/// Why the data dir could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds it.
    #[error(
        "the data dir {dir} is in use by another cardex process{}; stop it first, or use another --data-dir",
        holder.map(|pid| format!(" (pid {pid})")).unwrap_or_default()
    )]
    Held {
        /// The data dir.
        dir: String,
        /// The holder's pid, as it recorded it.
        holder: Option<u32>,
    },
    /// The lock file could not be opened or written.
    #[error("cannot lock the data dir {dir}: {source}")]
    Io {
        /// The data dir.
        dir: String,
        /// What failed.
        source: std::io::Error,
    },
}

impl DataDirLock {
    /// Takes the lock of `data_dir` (which must exist), without waiting.
    pub fn acquire(data_dir: &Path) -> Result<Self, LockError> {
        let dir = data_dir.display().to_string();
        let io = |source| LockError::Io {
            dir: dir.clone(),
            source,
        };
        let path = data_dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Err(LockError::Held {
                    dir,
                    holder: text.trim().parse().ok(),
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        file.flush().map_err(io)?;
        Ok(Self { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_dir_is_refused_with_the_holders_pid() {
        let tmp = tempfile::tempdir().unwrap();
        let held = DataDirLock::acquire(tmp.path()).unwrap();
        match DataDirLock::acquire(tmp.path()) {
            Err(e @ LockError::Held { .. }) => {
                let message = e.to_string();
                assert!(
                    message.contains(&tmp.path().display().to_string()),
                    "{message}"
                );
                assert!(
                    message.contains(&format!("pid {}", std::process::id())),
                    "{message}"
                );
            }
            other => panic!("expected Held, got {other:?}"),
        }
        drop(held);
        DataDirLock::acquire(tmp.path()).expect("free again once dropped");
    }
}
