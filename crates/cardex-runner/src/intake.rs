//! How images enter an open batch, for the HTTP upload and for
//! `cardex extract` alike: a file received completely at an
//! [`Incoming`] path (in the batch's staging dir) is checked by content
//! (format, declared pixels, decodable) on a bounded blocking thread, given
//! its server-generated name by the layout, and recorded as a card. A
//! refused file is removed; nothing half-received is ever kept.
//!
//! A PDF or a multi-page TIFF becomes one card per page (DESIGN §16):
//! the file is checked as a whole first (encrypted, damaged, too many
//! pages, too complex: refused with nothing kept), then each page is
//! written as an image file of its own in the staging dir and goes through
//! the same checks as an upload, so the rest of the pipeline sees a page
//! like any image. A page that is refused (too many pixels, a duplicate) is
//! reported and the other pages are kept. The uploaded file itself is not
//! kept. A page card's `original_name` is `<file> p. <page>` (see
//! [`page_name`]), its `source_name` the file's and `page` its number.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cardex_core::naming::check_file_name;
use cardex_engine::pages::{self, PageLimits, Pages, ToolLimits};
use cardex_store::{Card, NewCard, SharedStore, StoreError};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

/// Per-file limits of the intake.
#[derive(Debug, Clone, Copy)]
pub struct FileLimits {
    /// Largest single file, in bytes.
    pub max_file_bytes: u64,
    /// Most pixels an image (or one page) may declare.
    pub max_pixels: u64,
    /// Most pages one PDF or TIFF may have.
    pub max_pages: u64,
    /// Wall-clock time one run of a PDF tool may take.
    pub pdf_timeout: std::time::Duration,
    /// Address space one run of a PDF tool may take, in bytes.
    pub pdf_memory_bytes: u64,
}

impl FileLimits {
    /// The limits with the page defaults, for `max_file_bytes` and
    /// `max_pixels`.
    pub fn new(max_file_bytes: u64, max_pixels: u64) -> Self {
        Self {
            max_file_bytes,
            max_pixels,
            max_pages: pages::DEFAULT_MAX_PAGES,
            pdf_timeout: pages::DEFAULT_TOOL_TIMEOUT,
            pdf_memory_bytes: pages::DEFAULT_TOOL_MEMORY,
        }
    }

    fn pages(&self) -> PageLimits {
        PageLimits {
            max_pages: self.max_pages,
            max_pixels: self.max_pixels,
            tools: ToolLimits {
                timeout: self.pdf_timeout,
                memory_bytes: self.pdf_memory_bytes,
            },
        }
    }
}

/// The name a page card is shown by: `box-12.pdf p. 37`.
pub fn page_name(source_name: &str, page: i64) -> String {
    format!("{source_name} p. {page}")
}

/// What became of one file.
#[derive(Debug)]
pub enum Admission {
    /// Recorded: a new card, or in a two-sided batch a side of one.
    Accepted {
        /// The card as it is now (with its other side, when this image
        /// completed it).
        card: Box<Card>,
        /// The image's hex SHA-256: which of the card's images it is.
        sha256: String,
    },
    /// Refused; the batch and the other files (or pages) are not affected.
    Rejected {
        /// Stable code (`not_an_image`, `duplicate_image`, …).
        code: String,
        /// Why, for people.
        message: String,
        /// The page refused, from 1; `None` when the whole file is.
        page: Option<i64>,
    },
}

impl Admission {
    fn rejected(code: &str, message: impl Into<String>) -> Self {
        Self::Rejected {
            code: code.to_owned(),
            message: message.into(),
            page: None,
        }
    }

    fn on_page(self, number: i64) -> Self {
        match self {
            Self::Rejected { code, message, .. } => Self::Rejected {
                code,
                message,
                page: Some(number),
            },
            accepted => accepted,
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

/// A folder in the staging dir a page is written into; removed with what
/// is left in it when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
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
    /// gives it its stored name and records it as a card of `batch_id` —
    /// or, for a PDF or a multi-page TIFF, each of its pages as a card.
    /// One admission per page, in page order (one for a single image).
    pub async fn admit(
        &self,
        batch_id: &str,
        incoming: Incoming,
        original_name: &str,
        size: u64,
        sha256: String,
    ) -> Result<Vec<Admission>, IntakeError> {
        let limits = self.limits.pages();
        let pages = {
            let _slot = self.slot().await?;
            match pages::open(&incoming.path, &limits).await {
                Ok(p) => p,
                Err(pages::PagesError::Io(e)) => return Err(e.into()),
                Err(e) => return Ok(vec![Admission::rejected(e.code(), e.to_string())]),
            }
        };
        if let Pages::Single = pages {
            let card = Named {
                original_name: original_name.to_owned(),
                source_name: original_name.to_owned(),
                page: None,
            };
            return Ok(vec![
                self.admit_image(batch_id, incoming, card, (size, sha256))
                    .await?,
            ]);
        }
        let mut admitted = Vec::with_capacity(pages.count());
        for index in 0..pages.count() {
            let number = index as i64 + 1;
            let page = self
                .admit_page(batch_id, &incoming, &pages, index, original_name)
                .await;
            match page {
                Ok(a) => admitted.push(a.on_page(number)),
                Err(e) => {
                    // The file adds all its pages or none: take back the
                    // ones this failure would leave behind.
                    for a in admitted.iter().rev() {
                        if let Admission::Accepted { card, sha256 } = a
                            && let Err(e) = self.store.remove_image(batch_id, card.id, sha256).await
                        {
                            tracing::warn!(card = card.id, error = %e, "could not take back a page");
                        }
                    }
                    return Err(e);
                }
            }
        }
        Ok(admitted)
    }

    /// A slot to inspect or split an image in.
    async fn slot(&self) -> Result<tokio::sync::SemaphorePermit<'_>, IntakeError> {
        self.decode_slots
            .acquire()
            .await
            .map_err(|e| IntakeError::Internal(e.to_string()))
    }

    /// Writes page `index` of the file at `incoming` as an image of its own
    /// and admits it like an upload.
    async fn admit_page(
        &self,
        batch_id: &str,
        incoming: &Incoming,
        pages: &Pages,
        index: usize,
        source_name: &str,
    ) -> Result<Admission, IntakeError> {
        let number = index as i64 + 1;
        let scratch = Scratch(self.store.layout().scratch_dir(batch_id)?);
        let written = {
            let _slot = self.slot().await?;
            pages
                .write_page(&incoming.path, index, &scratch.0, &self.limits.pages())
                .await
        };
        let path = match written {
            Ok(path) => path,
            Err(pages::PagesError::Io(e)) => return Err(e.into()),
            Err(e) => return Ok(Admission::rejected(e.code(), e.to_string())),
        };
        let card = Named {
            original_name: page_name(source_name, number),
            source_name: source_name.to_owned(),
            page: Some(number),
        };
        let page = Incoming { path, keep: false };
        let file = page.path.clone();
        let hashed = tokio::task::spawn_blocking(move || hash_file(&file))
            .await
            .map_err(|e| IntakeError::Internal(e.to_string()))??;
        self.admit_image(batch_id, page, card, hashed).await
    }

    /// Checks one image file of `size` bytes and hex `sha256`, gives it
    /// its stored name and records it as a card.
    async fn admit_image(
        &self,
        batch_id: &str,
        mut incoming: Incoming,
        name: Named,
        (size, sha256): (u64, String),
    ) -> Result<Admission, IntakeError> {
        let info = {
            let _slot = self.slot().await?;
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
            original_name: name.original_name,
            source_name: name.source_name,
            page: name.page,
            stored_name,
            size_bytes: size as i64,
            sha256,
            format: info.format.name().to_owned(),
            width: i64::from(info.width),
            height: i64::from(info.height),
        };
        match self.store.add_card(batch_id, &card).await {
            Ok(added) => {
                incoming.keep = true;
                Ok(Admission::Accepted {
                    card: Box::new(added),
                    sha256: card.sha256,
                })
            }
            Err(StoreError::Conflict {
                code: "duplicate_image",
                message,
            }) => Ok(Admission::rejected("duplicate_image", message)),
            Err(e) => Err(e.into()),
        }
    }

    /// Adds the image file (or PDF, or multi-page TIFF) at `path` (outside
    /// the data dir) to an open batch, with the same checks as an upload;
    /// the original is copied, not moved. One admission per page.
    pub async fn add_file(
        &self,
        batch_id: &str,
        path: &Path,
    ) -> Result<Vec<Admission>, IntakeError> {
        let shown = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let original_name = match check_file_name(Some(&shown)) {
            Ok(n) => n,
            Err(message) => return Ok(vec![Admission::rejected("invalid_file_name", message)]),
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
            Ok(None) => Ok(vec![Admission::too_large(max)]),
            Err(e) => Ok(vec![Admission::rejected("unreadable_file", e.to_string())]),
        }
    }
}

/// The names a card is recorded under.
struct Named {
    original_name: String,
    source_name: String,
    page: Option<i64>,
}

/// The size and hex SHA-256 of a page image the server wrote, synced: the
/// card row will point at it.
fn hash_file(path: &Path) -> std::io::Result<(u64, String)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let size = std::io::copy(&mut file, &mut hasher)?;
    file.sync_all()?;
    Ok((size, hex::encode(hasher.finalize())))
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
