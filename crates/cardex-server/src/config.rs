//! What the server needs to know from the command line or config file.

use std::fmt;

use cardex_runner::intake::FileLimits;

use crate::guard::WebAccess;
pub use cardex_runner::{CrossCheckMode, EngineConfig, OcrConfig};

/// Upload limits (DESIGN §6).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest single file, in bytes.
    pub max_file_bytes: u64,
    /// Largest upload request body, in bytes.
    pub max_request_bytes: u64,
    /// Most pixels an image (or a page of a PDF or TIFF) may declare.
    pub max_pixels: u64,
    /// Most pages one PDF or multi-page TIFF may have (DESIGN §16).
    pub max_pages: u64,
    /// Wall-clock time one run of a PDF tool may take (listing a file's
    /// pages, or writing one page).
    pub pdf_timeout: std::time::Duration,
    /// Address space one run of a PDF tool may take, in bytes.
    pub pdf_memory_bytes: u64,
    /// Most parts one multipart request may hold.
    pub max_parts: usize,
    /// Longest wait for the next piece of an upload before giving up.
    pub idle_timeout: std::time::Duration,
    /// Slowest average an upload may keep, in bytes a second, once
    /// `idle_timeout` has passed: a client trickling bytes is cut off.
    pub min_upload_rate: u64,
    /// Longest time a client may take to send a request's headers, or a
    /// JSON body.
    pub request_timeout: std::time::Duration,
}

impl Limits {
    /// The limits that apply to each file, whichever way it arrives.
    pub fn files(&self) -> FileLimits {
        FileLimits {
            max_pages: self.max_pages,
            pdf_timeout: self.pdf_timeout,
            pdf_memory_bytes: self.pdf_memory_bytes,
            ..FileLimits::new(self.max_file_bytes, self.max_pixels)
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_file_bytes: 100 * 1024 * 1024,
            max_request_bytes: 10 * 1024 * 1024 * 1024,
            max_pixels: cardex_engine::image::DEFAULT_MAX_PIXELS,
            max_pages: cardex_engine::pages::DEFAULT_MAX_PAGES,
            pdf_timeout: cardex_engine::pages::DEFAULT_TOOL_TIMEOUT,
            pdf_memory_bytes: cardex_engine::pages::DEFAULT_TOOL_MEMORY,
            max_parts: 10_000,
            idle_timeout: std::time::Duration::from_secs(60),
            min_upload_rate: 1024,
            request_timeout: std::time::Duration::from_secs(30),
        }
    }
}

/// Everything the server is started with.
#[derive(Clone, Default)]
pub struct ServerConfig {
    /// When set, every `/api` route needs `Authorization: Bearer <token>`.
    pub api_token: Option<String>,
    /// The VLM engine, if configured; otherwise OCR is the default.
    pub vlm: Option<EngineConfig>,
    /// Upload limits.
    pub limits: Limits,
    /// Folder with the built web UI (`index.html` and assets), if any.
    pub web_dir: Option<std::path::PathBuf>,
    /// Image preparation and retries of the batch runner.
    pub runner: cardex_runner::RunnerConfig,
    /// The embedded OCR engine's settings.
    pub ocr: OcrConfig,
    /// Hosts and origins accepted besides this server's own (DESIGN §17).
    pub web: WebAccess,
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConfig")
            .field("api_token", &self.api_token.as_ref().map(|_| "<redacted>"))
            .field("vlm", &self.vlm)
            .field("limits", &self.limits)
            .field("web_dir", &self.web_dir)
            .field("runner", &self.runner)
            .field("ocr", &self.ocr)
            .field("web", &self.web)
            .finish()
    }
}

impl ServerConfig {
    /// Names of the engines batches may use.
    pub fn engine_names(&self) -> Vec<&'static str> {
        let mut names = vec!["ocr"];
        if self.vlm.is_some() {
            names.push("vlm");
        }
        names
    }

    /// The engine a batch gets when it names none: the VLM when one is
    /// configured, the embedded OCR otherwise.
    pub fn default_engine(&self) -> &'static str {
        if self.vlm.is_some() { "vlm" } else { "ocr" }
    }
}
