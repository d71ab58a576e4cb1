//! How images enter an open batch, for the HTTP upload and for
//! `cardex extract` alike: a file received completely at an
//! [`Incoming`] path (in the batch's staging dir) is checked by content
//! (format, declared pixels, decodable) on a bounded blocking thread, given
//! its server-generated name by the layout, and recorded as a card. A
//! refused file is removed; nothing half-received is ever kept.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cardex_core::naming::check_file_name;
use cardex_store::{Card, NewCard, SharedStore, StoreError};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

/// Per-file limits of the intake.
#[derive(Debug, Clone, Copy)]
pub struct FileLimits {
    /// Largest single file, in bytes.
    pub max_file_bytes: u64,
    /// Most pixels an image may declare.
    pub max_pixels: u64,
}

/// What became of one file.
#[derive(Debug)]
pub enum Admission {
    /// Recorded as a card.
    Accepted(Card),
    /// Refused; the batch and the other files are not affected.
    Rejected {
        /// Stable code (`not_an_image`, `duplicate_image`, …).
        code: String,
        /// Why, for people.
        message: String,
    },
}

impl Admission {
    fn rejected(code: &str, message: impl Into<String>) -> Self {
        Self::Rejected {
            code: code.to_owned(),
            message: message.into(),
        }
    }

    /// The refusal for a file over `max` bytes.
    pub fn too_large(max: u64) -> Self {
        Self::rejected(
            "file_too_large",
            format!("the file is larger than the limit of {max} bytes"),
        )
    }
}

/// A failure that stops the whole intake (the store or the disk failed, or
/// the batch is locked), as opposed to one refused file.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A file operation failed.
    #[error("file error: {0}")]
    Io(#[from] std::io::Error),
    /// A blocking task could not finish.
    #[error("internal error: {0}")]
    Internal(String),
}

/// A file being received into a batch's staging dir; removed when dropped
/// unless it became a card.
#[derive(Debug)]
pub struct Incoming {
    path: PathBuf,
    keep: bool,
}

impl Incoming {
    /// Where to write the file's bytes.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The intake of one store. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Intake {
    store: SharedStore,
    limits: FileLimits,
    /// Bounds how many images are inspected at once, so a burst of
    /// uploads cannot take all cores or memory.
    decode_slots: Arc<Semaphore>,
}

impl Intake {
    /// An intake into `store` with `limits`, inspecting one image per core
    /// at a time.
    pub fn new(store: SharedStore, limits: FileLimits) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            store,
            limits,
            decode_slots: Arc::new(Semaphore::new(cores)),
        }
    }

    /// The per-file limits.
    pub fn limits(&self) -> FileLimits {
        self.limits
    }

    /// A fresh file to receive an image into, in the batch's staging dir.
    pub fn incoming(&self, batch_id: &str) -> std::io::Result<Incoming> {
        Ok(Incoming {
            path: self.store.layout().incoming_path(batch_id)?,
            keep: false,
        })
    }

    /// Checks a completely received file (`size` bytes, hex `sha256`),
    /// gives it its stored name and records it as a card of `batch_id`.
    pub async fn admit(
        &self,
        batch_id: &str,
        mut incoming: Incoming,
        original_name: &str,
        size: u64,
        sha256: String,
    ) -> Result<Admission, IntakeError> {
        let info = {
            let _slot = self
                .decode_slots
                .acquire()
                .await
                .map_err(|e| IntakeError::Internal(e.to_string()))?;
            let path = incoming.path.clone();
            let max_pixels = self.limits.max_pixels;
            match tokio::task::spawn_blocking(move || {
                cardex_engine::image::inspect(&path, max_pixels)
            })
            .await
            {
                Ok(Ok(info)) => info,
                Ok(Err(e)) => return Ok(Admission::rejected(e.code(), e.to_string())),
                Err(e) => return Err(IntakeError::Internal(e.to_string())),
            }
        };
        let (stored_name, path) = self
            .store
            .layout()
            .keep_incoming(batch_id, &incoming.path, info.format.extension())
            .await?;
        incoming.path = path;
        let card = NewCard {
            original_name: original_name.to_owned(),
            stored_name,
            size_bytes: size as i64,
            sha256,
            format: info.format.name().to_owned(),
            width: i64::from(info.width),
            height: i64::from(info.height),
        };
        match self.store.add_card(batch_id, &card).await {
            Ok(card) => {
                incoming.keep = true;
                Ok(Admission::Accepted(card))
            }
            Err(StoreError::Conflict {
                code: "duplicate_image",
                message,
            }) => Ok(Admission::rejected("duplicate_image", message)),
            Err(e) => Err(e.into()),
        }
    }

    /// Adds the image file at `path` (outside the data dir) to an open
    /// batch, with the same checks as an upload; the original is copied,
    /// not moved.
    pub async fn add_file(&self, batch_id: &str, path: &Path) -> Result<Admission, IntakeError> {
        let shown = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let original_name = match check_file_name(Some(&shown)) {
            Ok(n) => n,
            Err(message) => return Ok(Admission::rejected("invalid_file_name", message)),
        };
        let incoming = self.incoming(batch_id)?;
        let max = self.limits.max_file_bytes;
        let (source, target) = (path.to_owned(), incoming.path.clone());
        let copied = tokio::task::spawn_blocking(move || copy_hashed(&source, &target, max))
            .await
            .map_err(|e| IntakeError::Internal(e.to_string()))?;
        match copied {
            Ok(Some((size, sha256))) => {
                self.admit(batch_id, incoming, &original_name, size, sha256)
                    .await
            }
            Ok(None) => Ok(Admission::too_large(max)),
            Err(e) => Ok(Admission::rejected("unreadable_file", e.to_string())),
        }
    }
}

/// Copies `from` to `to` and hashes it on the way; `None` when `from` is
/// over `max` bytes. The copy is synced: the card row will point at it.
fn copy_hashed(from: &Path, to: &Path, max: u64) -> std::io::Result<Option<(u64, String)>> {
    let mut from = std::fs::File::open(from)?;
    if from.metadata()?.len() > max {
        return Ok(None);
    }
    let mut to = std::fs::File::create(to)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = std::io::Read::read(&mut from, &mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        std::io::Write::write_all(&mut to, &buf[..n])?;
        size += n as u64;
    }
    to.sync_data()?;
    Ok(Some((size, hex::encode(hasher.finalize()))))
}
