//! Files of several pages — PDFs and multi-page TIFFs — as one image per
//! page (DESIGN §16). [`open`] finds out what a received file holds (by
//! content, never by name) and checks the whole file: it is refused here,
//! before any page is kept, when it is encrypted, damaged, too complex to
//! read within bounds, or has more pages than allowed. Then
//! [`Pages::write_page`] writes one page at a time into a folder of its
//! own, so a 500-page file never has more than one page in memory.

pub mod pdf;
pub mod tiff;
mod tool;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use tool::ToolLimits;

use crate::image::ImageError;

/// Default most pages one file may have.
pub const DEFAULT_MAX_PAGES: u64 = 5_000;
/// Default wall-clock time for one run of a PDF tool (one page, or the
/// page listing of the whole file).
pub const DEFAULT_TOOL_TIMEOUT: Duration = Duration::from_secs(60);
/// Default address space of one run of a PDF tool: a 300 dpi page of
/// A3 is 50 MB of pixels; the rest is room for the tool itself.
pub const DEFAULT_TOOL_MEMORY: u64 = 1024 * 1024 * 1024;

/// The bounds of splitting a file into pages.
#[derive(Debug, Clone, Copy)]
pub struct PageLimits {
    /// Most pages one file may have; more refuses the whole file.
    pub max_pages: u64,
    /// Most pixels one page may have; more refuses that page.
    pub max_pixels: u64,
    /// Bounds of each run of a PDF tool.
    pub tools: ToolLimits,
}

/// Why a file, or one page of it, is refused. Each maps to a stable code.
#[derive(Debug, thiserror::Error)]
pub enum PagesError {
    /// The PDF needs a password to be opened.
    #[error("the PDF is protected by a password; save a copy without one and upload that")]
    Encrypted,
    /// The PDF (or one page of it) cannot be read.
    #[error("the PDF is damaged: {0}")]
    Damaged(String),
    /// More pages than allowed.
    #[error("the file has more than {limit} pages, the most one file may have")]
    TooManyPages {
        /// The limit.
        limit: u64,
    },
    /// Reading it went over the time or memory a file may take (a PDF
    /// bomb, or a page far more complex than a card).
    #[error("the PDF is too complex to read: {0}")]
    TooComplex(String),
    /// This server cannot read PDFs (its tools are not installed).
    #[error("PDFs cannot be read on this server: {0}")]
    Unsupported(String),
    /// A page's image is refused as an upload would be.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// Reading or writing a file failed.
    #[error("file error: {0}")]
    Io(#[from] std::io::Error),
}

impl PagesError {
    /// A stable machine-readable code for API error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Encrypted => "pdf_encrypted",
            Self::Damaged(_) => "pdf_damaged",
            Self::TooManyPages { .. } => "too_many_pages",
            Self::TooComplex(_) => "pdf_too_complex",
            Self::Unsupported(_) => "pdf_unsupported",
            Self::Image(e) => e.code(),
            Self::Io(_) => "unreadable_file",
        }
    }
}

/// What a received file holds.
#[derive(Debug)]
pub enum Pages {
    /// One image (any format, a one-page TIFF included): it is the card.
    Single,
    /// A TIFF of several pages: each page's directory offset.
    Tiff(Vec<u64>),
    /// A PDF: how each page becomes an image.
    Pdf(Vec<pdf::PagePlan>),
}

impl Pages {
    /// How many pages (1 for a single image).
    pub fn count(&self) -> usize {
        match self {
            Self::Single => 1,
            Self::Tiff(p) => p.len(),
            Self::Pdf(p) => p.len(),
        }
    }

    /// Writes page `index` (from 0) of the file at `path` into the empty
    /// folder `dir`; returns the page image's path. Not for [`Pages::Single`].
    pub async fn write_page(
        &self,
        path: &Path,
        index: usize,
        dir: &Path,
        limits: &PageLimits,
    ) -> Result<PathBuf, PagesError> {
        match self {
            Self::Single => Ok(path.to_owned()),
            Self::Tiff(pages) => {
                let (path, dir, ifd, max) = (
                    path.to_owned(),
                    dir.to_owned(),
                    pages[index],
                    limits.max_pixels,
                );
                tokio::task::spawn_blocking(move || tiff::write_page(&path, ifd, &dir, max))
                    .await
                    .map_err(|e| PagesError::Io(std::io::Error::other(e.to_string())))?
            }
            Self::Pdf(plans) => {
                pdf::write_page(path, index as u64 + 1, plans[index], dir, limits).await
            }
        }
    }
}

/// The kind of container a file's first bytes say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Container {
    Pdf,
    Tiff,
    Other,
}

/// Reads the start of the file: a PDF says `%PDF-` within its first
/// kilobyte (readers allow junk before it), a TIFF starts with its byte
/// order and 42 (43 for BigTIFF).
fn sniff(path: &Path) -> std::io::Result<Container> {
    let mut head = Vec::with_capacity(1024);
    std::fs::File::open(path)?
        .take(1024)
        .read_to_end(&mut head)?;
    Ok(if head.windows(5).any(|w| w == b"%PDF-") {
        Container::Pdf
    } else if head.starts_with(b"II*\0")
        || head.starts_with(b"MM\0*")
        || head.starts_with(b"II+\0")
        || head.starts_with(b"MM\0+")
    {
        Container::Tiff
    } else {
        Container::Other
    })
}

/// What the completely received file at `path` holds, checked as a whole.
pub async fn open(path: &Path, limits: &PageLimits) -> Result<Pages, PagesError> {
    let (file, max_pages) = (path.to_owned(), limits.max_pages);
    let found = tokio::task::spawn_blocking(move || -> Result<_, PagesError> {
        Ok(match sniff(&file)? {
            Container::Tiff => match tiff::pages(&file, max_pages)? {
                pages if pages.len() > 1 => Some(Pages::Tiff(pages)),
                // One page, or none readable: the image check gives the
                // single-image verdict.
                _ => Some(Pages::Single),
            },
            Container::Pdf => None,
            Container::Other => Some(Pages::Single),
        })
    })
    .await
    .map_err(|e| PagesError::Io(std::io::Error::other(e.to_string())))??;
    match found {
        Some(pages) => Ok(pages),
        None => Ok(Pages::Pdf(pdf::plan(path, limits).await?)),
    }
}
