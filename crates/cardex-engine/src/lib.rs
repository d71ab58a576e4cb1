//! cardex engines: what reads a card, and the image handling around it.
//!
//! - [`image`]: is an upload an image we can read (by content, within limits)
//! - [`pages`]: PDFs and multi-page TIFFs split into one image per page
//! - [`prepare`]: decode, orient, downscale and encode a card for a model
//! - [`answer`]: turn a model's answer text into validated fields
//! - [`confidence`]: how sure a model was of each value (token log-probabilities)
//! - [`engine`]: the [`Engine`] trait every engine implements
//! - [`retry`]: retries with backoff around an engine call
//! - [`vlm`]: the OpenAI-compatible engine
//! - [`labels`]: reading `Label: value` pairs into fields (for OCR)
//! - [`catalog`]: reading an unlabeled library catalog entry into fields
//! - [`vocabulary`]: what label words mean, from Darwin Core, MARC / ISBD, vCard
//! - [`score`]: per-field scoring of read values against a transcription
//! - `ocr` (feature `ocr`, on by default): the embedded Tesseract engine
//! - [`tessdata`]: which Tesseract languages are installed
//! - `turbo`: libjpeg-turbo's scaled JPEG decode (the one unsafe module, FFI)

pub mod answer;
pub mod catalog;
pub mod confidence;
pub mod engine;
pub mod image;
pub mod labels;
#[cfg(feature = "ocr")]
pub mod ocr;
pub mod pages;
pub mod prepare;
pub mod retry;
pub mod score;
#[cfg(feature = "ocr")]
mod tess_log;
pub mod tessdata;
pub mod turbo;
pub mod vlm;
pub mod vocabulary;

pub use answer::CompiledPrompt;
pub use cardex_core::Usage;
pub use engine::{CheckFailed, Engine, EngineError, Extraction, Reading, Unavailable};
pub use prepare::{PrepareOptions, PreparedImage};
pub use retry::{Attempted, RetryPolicy, extract_with_retries, retry_attempts};
