//! The data-dir layout (DESIGN §3). Every path the server writes is built
//! here, from names the server generated itself, so nothing user-supplied
//! ever reaches the filesystem.

use std::io;
use std::path::{Path, PathBuf};

use cardex_core::naming;

/// Prefix of files being streamed in; they are complete only once renamed.
pub const INCOMING_PREFIX: &str = ".incoming-";
/// The folder failed images are moved to, inside a batch's folder.
pub const ERRORS_DIR: &str = "_errors";

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

    /// Removes files left half-written by an interrupted upload.
    pub(crate) fn remove_incomplete_uploads(&self) -> io::Result<()> {
        for batch in std::fs::read_dir(self.root.join("uploads"))? {
            let batch = batch?;
            if !batch.file_type()?.is_dir() {
                continue;
            }
            for file in std::fs::read_dir(batch.path())? {
                let file = file?;
                if file
                    .file_name()
                    .to_string_lossy()
                    .starts_with(INCOMING_PREFIX)
                {
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
pub(crate) fn move_file(from: &Path, to: &Path) -> io::Result<()> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)?;
    }
    match std::fs::rename(from, to) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound && to.exists() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Removes a folder and everything in it; a missing folder is fine.
pub(crate) fn remove_dir_all_if_exists(dir: &Path) -> io::Result<()> {
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
        let kept = dir.staging_dir("abcdefgh").join(new_stored_name("png"));
        std::fs::write(&kept, b"image").unwrap();
        dir.remove_incomplete_uploads().unwrap();
        assert!(!incoming.exists());
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
