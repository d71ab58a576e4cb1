//! The data-dir layout (DESIGN §3) and the one way to its files. Every
//! path is built here, from names the server generated itself, so nothing
//! user-supplied ever reaches the filesystem; every move, write and
//! removal of card images is done here too, the slow ones on blocking
//! threads (`async` methods), never on the async workers.

use std::io;
use std::path::{Path, PathBuf};

use cardex_core::naming;
use serde_json::Value;

/// Prefix of files being streamed in; they are complete only once renamed.
pub const INCOMING_PREFIX: &str = ".incoming-";
/// The folder failed images are moved to, inside a batch's folder.
pub const ERRORS_DIR: &str = "_errors";
/// A file of room kept in reserve: when the disk fills up, removing it
/// leaves room to record what happened (the batch paused, cards put back).
pub const RESERVE_FILE: &str = ".reserve";
/// The reserve's size.
pub const RESERVE_BYTES: u64 = 2 * 1024 * 1024;

/// The root of a cardex data dir.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// Creates the folders if they do not exist yet.
    pub fn create(root: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(root.join("uploads"))?;
        std::fs::create_dir_all(root.join("batches"))?;
        let root = root.canonicalize()?;
        Ok(Self { root })
    }

    /// The root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `cardex.db`.
    pub fn db_path(&self) -> PathBuf {
        self.root.join("cardex.db")
    }

    /// `uploads/<batch-id>/`: images of an open batch.
    pub fn staging_dir(&self, batch_id: &str) -> PathBuf {
        self.root.join("uploads").join(batch_id)
    }

    /// `batches/<batch-name>/`: images of a started batch.
    pub fn batch_dir(&self, batch_name: &str) -> PathBuf {
        self.root.join("batches").join(batch_name)
    }

    /// `batches/<batch-name>/_errors/`: images of failed cards.
    pub fn errors_dir(&self, batch_name: &str) -> PathBuf {
        self.batch_dir(batch_name).join(ERRORS_DIR)
    }

    /// A fresh path to stream an upload into, inside the batch's staging dir.
    pub fn incoming_path(&self, batch_id: &str) -> io::Result<PathBuf> {
        let dir = self.staging_dir(batch_id);
        std::fs::create_dir_all(&dir)?;
        Ok(dir.join(format!("{INCOMING_PREFIX}{}", naming::new_id())))
    }

    /// A fresh, empty folder inside the batch's staging dir for a tool to
    /// write a page into (see `cardex_engine::pages`). It is named like an
    /// incoming file, so one a crash leaves behind is removed at start-up.
    pub fn scratch_dir(&self, batch_id: &str) -> io::Result<PathBuf> {
        let dir = self.incoming_path(batch_id)?;
        std::fs::create_dir(&dir)?;
        Ok(dir)
    }

    /// An open batch's staged image.
    pub fn staged_image(&self, batch_id: &str, stored_name: &str) -> PathBuf {
        self.staging_dir(batch_id).join(stored_name)
    }

    /// A started batch's image of a card that is not failed.
    pub fn batch_image(&self, batch_name: &str, stored_name: &str) -> PathBuf {
        self.batch_dir(batch_name).join(stored_name)
    }

    /// A failed card's image, in `_errors/`.
    pub fn quarantined_image(&self, batch_name: &str, stored_name: &str) -> PathBuf {
        self.errors_dir(batch_name).join(stored_name)
    }

    /// The `<image>.error.json` beside a failed card's image.
    fn sidecar(&self, batch_name: &str, stored_name: &str) -> PathBuf {
        self.errors_dir(batch_name)
            .join(format!("{stored_name}.error.json"))
    }

    /// Gives a completely received upload (at an [`DataDir::incoming_path`])
    /// its stored name in the staging dir; returns the name and new path.
    pub async fn keep_incoming(
        &self,
        batch_id: &str,
        incoming: &Path,
        extension: &str,
    ) -> io::Result<(String, PathBuf)> {
        let stored_name = new_stored_name(extension);
        let target = self.staged_image(batch_id, &stored_name);
        let (from, to) = (incoming.to_owned(), target.clone());
        blocking(move || std::fs::rename(from, to)).await?;
        Ok((stored_name, target))
    }

    /// Removes one file of the data dir; a missing file is fine.
    pub async fn remove_file(&self, path: PathBuf) -> io::Result<()> {
        debug_assert!(path.starts_with(&self.root));
        blocking(move || match std::fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        })
        .await
    }

    /// Moves a started batch's images from the staging dir into the batch
    /// dir, then removes the staging dir if it is empty. Safe to repeat.
    pub async fn move_staged(
        &self,
        batch_id: &str,
        batch_name: &str,
        stored_names: Vec<String>,
    ) -> io::Result<()> {
        let (dir, batch_id, batch_name) =
            (self.clone(), batch_id.to_owned(), batch_name.to_owned());
        blocking(move || {
            std::fs::create_dir_all(dir.batch_dir(&batch_name))?;
            for stored in &stored_names {
                move_file(
                    &dir.staged_image(&batch_id, stored),
                    &dir.batch_image(&batch_name, stored),
                )?;
            }
            // Only empty: anything unexpected left there stays for a person to see.
            let _ = std::fs::remove_dir(dir.staging_dir(&batch_id));
            Ok(())
        })
        .await
    }

    /// Moves a failed card's image into `_errors/`, after writing its
    /// sidecar (what went wrong, when) there. Safe to repeat.
    pub async fn quarantine(
        &self,
        batch_name: &str,
        stored_name: &str,
        sidecar: Value,
    ) -> io::Result<()> {
        let (dir, name, stored) = (self.clone(), batch_name.to_owned(), stored_name.to_owned());
        blocking(move || {
            let errors = dir.errors_dir(&name);
            std::fs::create_dir_all(&errors)?;
            let tmp = errors.join(format!(".{stored}.error.json.tmp"));
            std::fs::write(&tmp, serde_json::to_vec_pretty(&sidecar)?)?;
            std::fs::rename(&tmp, dir.sidecar(&name, &stored))?;
            move_file(
                &dir.batch_image(&name, &stored),
                &dir.quarantined_image(&name, &stored),
            )
        })
        .await
    }

    /// Which of a batch's failed cards' images are not (fully) in
    /// `_errors/`: still in the batch dir, or without a sidecar.
    pub async fn misplaced_failures(
        &self,
        batch_name: &str,
        stored_names: Vec<String>,
    ) -> io::Result<Vec<String>> {
        let (dir, name) = (self.clone(), batch_name.to_owned());
        blocking(move || {
            Ok(stored_names
                .into_iter()
                .filter(|s| dir.batch_image(&name, s).exists() || !dir.sidecar(&name, s).exists())
                .collect())
        })
        .await
    }

    /// Moves failed cards' images back out of `_errors/` into the batch
    /// dir (retry-failed); their sidecars stay as history.
    pub async fn unquarantine(
        &self,
        batch_name: &str,
        stored_names: Vec<String>,
    ) -> io::Result<()> {
        let (dir, name) = (self.clone(), batch_name.to_owned());
        blocking(move || {
            for stored in &stored_names {
                move_file(
                    &dir.quarantined_image(&name, stored),
                    &dir.batch_image(&name, stored),
                )?;
            }
            Ok(())
        })
        .await
    }

    /// Whether `bytes` more can be written to the data dir's disk now: a
    /// probe file of that size is written, synced and removed.
    pub async fn has_room(&self, bytes: u64) -> bool {
        let probe = self.root.join(".space-probe");
        blocking(move || {
            let written = (|| {
                let mut f = std::fs::File::create(&probe)?;
                let chunk = vec![0u8; 64 * 1024];
                let mut left = bytes;
                while left > 0 {
                    let n = left.min(chunk.len() as u64) as usize;
                    io::Write::write_all(&mut f, &chunk[..n])?;
                    left -= n as u64;
                }
                f.sync_all()
            })();
            let _ = std::fs::remove_file(&probe);
            Ok(written.is_ok())
        })
        .await
        .unwrap_or(false)
    }

    /// Makes sure the reserve file is there (at start-up, and once a full
    /// disk has room again). Without room for it, there is simply none.
    pub fn keep_reserve(&self) {
        let path = self.root.join(RESERVE_FILE);
        if std::fs::metadata(&path).is_ok_and(|m| m.len() == RESERVE_BYTES) {
            return;
        }
        let written = (|| {
            let mut f = std::fs::File::create(&path)?;
            io::Write::write_all(&mut f, &vec![0u8; RESERVE_BYTES as usize])?;
            f.sync_all()
        })();
        if let Err(e) = written {
            tracing::warn!(error = %e, "no room for the data dir's reserve file");
            let _ = std::fs::remove_file(&path);
        }
    }

    /// Gives the reserve's room back to the disk (it is full); true when
    /// there was a reserve to give.
    pub async fn free_reserve(&self) -> bool {
        let path = self.root.join(RESERVE_FILE);
        blocking(move || Ok(std::fs::remove_file(path).is_ok()))
            .await
            .unwrap_or(false)
    }

    /// [`DataDir::keep_reserve`] on a blocking thread.
    pub async fn restore_reserve(&self) {
        let dir = self.clone();
        let _ = blocking(move || {
            dir.keep_reserve();
            Ok(())
        })
        .await;
    }

    /// Removes a batch's staging dir and batch dir with everything in them.
    pub async fn remove_batch_files(&self, batch_id: &str, batch_name: &str) -> io::Result<()> {
        let (staging, batch) = (self.staging_dir(batch_id), self.batch_dir(batch_name));
        blocking(move || {
            remove_dir_all_if_exists(&staging)?;
            remove_dir_all_if_exists(&batch)
        })
        .await
    }

    /// Removes files left half-written by an interrupted upload.
    pub(crate) fn remove_incomplete_uploads(&self) -> io::Result<()> {
        for batch in std::fs::read_dir(self.root.join("uploads"))? {
            let batch = batch?;
            if !batch.file_type()?.is_dir() {
                continue;
            }
            for file in std::fs::read_dir(batch.path())? {
                let file = file?;
                if !file
                    .file_name()
                    .to_string_lossy()
                    .starts_with(INCOMING_PREFIX)
                {
                    continue;
                }
                if file.file_type()?.is_dir() {
                    std::fs::remove_dir_all(file.path())?;
                } else {
                    std::fs::remove_file(file.path())?;
                }
            }
        }
        Ok(())
    }
}

/// A server-generated file name: random id plus the format's extension.
pub fn new_stored_name(extension: &str) -> String {
    format!("{}{}.{extension}", naming::new_id(), naming::new_id())
}

/// Moves `from` to `to` by rename, creating `to`'s folder. Succeeds if the
/// move already happened (so repairs can run it again after a crash).
fn move_file(from: &Path, to: &Path) -> io::Result<()> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)?;
    }
    match std::fs::rename(from, to) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound && to.exists() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Runs blocking file work on a blocking thread.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| io::Error::other(e.to_string()))?
}

/// Removes a folder and everything in it; a missing folder is fine.
fn remove_dir_all_if_exists(dir: &Path) -> io::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn move_file_is_idempotent() {
        let tmp = tempfile::tempdir().unwrap();
        let from = tmp.path().join("a.jpg");
        let to = tmp.path().join("sub/a.jpg");
        std::fs::write(&from, b"x").unwrap();
        move_file(&from, &to).unwrap();
        move_file(&from, &to).unwrap();
        assert_eq!(std::fs::read(&to).unwrap(), b"x");
        assert!(!from.exists());
        let missing = tmp.path().join("never.jpg");
        assert!(move_file(&missing, &tmp.path().join("other.jpg")).is_err());
    }

    #[test]
    fn incomplete_uploads_are_cleaned_and_nothing_else() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::create(tmp.path()).unwrap();
        let incoming = dir.incoming_path("abcdefgh").unwrap();
        std::fs::write(&incoming, b"partial").unwrap();
        let scratch = dir.scratch_dir("abcdefgh").unwrap();
        std::fs::write(scratch.join("page-000.jpg"), b"half a page").unwrap();
        let kept = dir.staging_dir("abcdefgh").join(new_stored_name("png"));
        std::fs::write(&kept, b"image").unwrap();
        dir.remove_incomplete_uploads().unwrap();
        assert!(!incoming.exists());
        assert!(!scratch.exists());
        assert!(kept.exists());
    }

    #[test]
    fn stored_names_are_plain_file_names() {
        let n = new_stored_name("jpg");
        assert_eq!(n.len(), 16 + 4);
        assert!(n.ends_with(".jpg"));
        assert!(!n.contains('/') && !n.starts_with('.'));
    }
}
