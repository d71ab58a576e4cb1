//! The one interface every engine implements: a prepared image and a
//! compiled prompt in, validated fields out, with errors classified so the
//! runner knows whether to retry, give up on the card, or pause the batch.

use std::time::Duration;

use cardex_core::{Flag, Usage};
use futures_util::future::BoxFuture;
use serde_json::{Map, Value};

use crate::answer::CompiledPrompt;
use crate::prepare::PreparedImage;

/// A successful extraction.
#[derive(Debug, Clone)]
pub struct Extraction {
    /// Field name → value, validated against the prompt's schema.
    pub fields: Map<String, Value>,
    /// The engine's answer text, as received.
    pub raw: String,
    /// Tokens (where the server reports them), requests and time of this
    /// attempt.
    pub usage: Usage,
    /// Time the engine took for the successful attempt.
    pub elapsed: Duration,
    /// How the answer was asked for (`json_schema`, `json_object`,
    /// `plain`), for engines that have a choice.
    pub response_mode: Option<&'static str>,
    /// Likely mistakes the engine saw (values not of their type, a cut-off
    /// answer).
    pub flags: Vec<Flag>,
    /// Field name → how sure the engine is of the value, 0–1, or null
    /// where it cannot say (DESIGN §13).
    pub confidence: Map<String, Value>,
    /// The card's own text, when the engine reads it (the OCR engine).
    pub text: Option<Reading>,
}

impl Extraction {
    /// An extraction of just these values, with nothing else known (no
    /// usage, flags, confidence or text): what a test's engine answers.
    pub fn of(fields: Map<String, Value>) -> Self {
        Self {
            fields,
            raw: "{}".into(),
            usage: Usage {
                requests: 1,
                ..Usage::default()
            },
            elapsed: Duration::ZERO,
            response_mode: None,
            flags: Vec::new(),
            confidence: Map::new(),
            text: None,
        }
    }
}

/// A card's own text as OCR read it.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// The text, line by line.
    pub text: String,
    /// How sure OCR was of it, 0–1: the mean of its word confidences,
    /// weighted by length. Typed cards read at 0.8–0.95; handwriting and
    /// poor scans much lower.
    pub confidence: f64,
}

impl Reading {
    /// A two-sided card's text: the front's lines, then the back's (as the
    /// OCR engine's own reading of both sides gives it), sure as both are,
    /// weighted by their lengths.
    pub fn join(front: Reading, back: Reading) -> Reading {
        let (f, b) = (front.text.trim_end(), back.text.trim());
        let (fl, bl) = (f.chars().count() as f64, b.chars().count() as f64);
        let confidence = if fl + bl == 0.0 {
            (front.confidence + back.confidence) / 2.0
        } else {
            (front.confidence * fl + back.confidence * bl) / (fl + bl)
        };
        let text = match (f.is_empty(), b.is_empty()) {
            (_, true) => f.to_owned(),
            (true, false) => b.to_owned(),
            (false, false) => format!("{f}\n{b}"),
        };
        Reading { text, confidence }
    }
}

/// What went wrong, sorted by what the runner should do about it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    /// Try again later: connection refused, timeout, 408, 429, 5xx.
    #[error("{message}")]
    Transient {
        /// What happened.
        message: String,
        /// How long the server asked us to wait (`Retry-After`).
        retry_after: Option<Duration>,
        /// What kind of failure: a busy server wants fewer requests at
        /// once, one that is not there wants its cards sent elsewhere.
        cause: Unavailable,
    },
    /// The answer could not be used; another attempt may do better.
    #[error("{message}")]
    BadAnswer {
        /// Why it was refused.
        message: String,
        /// The answer text.
        raw: String,
        /// What the answer cost (it was read by the model all the same).
        usage: Usage,
    },
    /// This card will never succeed (undecodable image, request refused).
    #[error("{message}")]
    Permanent {
        /// Stable code, stored with the card's error.
        code: &'static str,
        /// What happened.
        message: String,
        /// What the request cost, when the server answered it.
        usage: Usage,
    },
    /// No card can succeed until a person fixes the configuration (bad
    /// API key, unknown model): the batch is paused.
    #[error("{message}")]
    Config {
        /// What happened.
        message: String,
    },
}

/// What a health check ([`Engine::check`]) found wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckFailed {
    /// What happened, for people.
    pub message: String,
    /// The server gave an HTTP answer, an error under 500 (a proxy's 404,
    /// a 401): it is there, if not as expected.
    pub answered: bool,
}

/// Why a server gave no answer this time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    /// No connection could be made (refused, unresolvable, no route):
    /// nothing is serving there.
    Unreachable,
    /// The connection broke before the answer was whole.
    Lost,
    /// No answer in time (a gateway's 504 too).
    TimedOut,
    /// The server said it is too busy: 408, 429, 503.
    Busy,
    /// The server failed: 500, 502 and the other 5xx.
    Failed,
}

impl Unavailable {
    /// Whether the failure says the server has too much to do: a sign to
    /// send fewer requests at once, unlike a one-off 500.
    pub fn overloaded(self) -> bool {
        matches!(self, Self::TimedOut | Self::Busy)
    }

    /// Whether the failure says the server has stopped answering, rather
    /// than that it is busy (DESIGN §15: refused connections, a streak of
    /// 5xx or timeouts).
    pub fn not_answering(self) -> bool {
        !matches!(self, Self::Busy)
    }
}

impl EngineError {
    /// Why the server gave no answer, for a transient failure.
    pub fn unavailable(&self) -> Option<Unavailable> {
        match self {
            Self::Transient { cause, .. } => Some(*cause),
            _ => None,
        }
    }

    /// Whether another attempt at the same card may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Transient { .. } | Self::BadAnswer { .. })
    }

    /// A stable code for storing and showing.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Transient { .. } => "engine_unavailable",
            Self::BadAnswer { .. } => "unusable_answer",
            Self::Permanent { code, .. } => code,
            Self::Config { .. } => "engine_misconfigured",
        }
    }

    /// What the failed attempt cost: the tokens of an answer that could
    /// not be used, and one request.
    pub fn usage(&self) -> Usage {
        let tokens = match self {
            Self::BadAnswer { usage, .. } | Self::Permanent { usage, .. } => *usage,
            _ => Usage::default(),
        };
        Usage {
            requests: tokens.requests.max(1),
            ..tokens
        }
    }

    /// The answer text, when the failure was about an answer.
    pub fn raw(&self) -> Option<&str> {
        match self {
            Self::BadAnswer { raw, .. } => Some(raw),
            _ => None,
        }
    }
}

/// An engine: what reads a card.
pub trait Engine: Send + Sync + std::fmt::Debug {
    /// Short name, as batches refer to it (`vlm`, `ocr`).
    fn name(&self) -> &str;

    /// One attempt at one card: its images are its front and, for a
    /// two-sided card, its back, in that order. Retrying is the caller's
    /// business ([`crate::retry::extract_with_retries`]).
    fn extract<'a>(
        &'a self,
        images: &'a [PreparedImage],
        prompt: &'a CompiledPrompt,
    ) -> BoxFuture<'a, Result<Extraction, EngineError>>;

    /// [`Engine::extract`] reading the card in `lang` (Tesseract's codes,
    /// `deu+eng`; `None` = the engine's default). Engines without a
    /// language setting ignore it.
    fn extract_in<'a>(
        &'a self,
        images: &'a [PreparedImage],
        prompt: &'a CompiledPrompt,
        lang: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Extraction, EngineError>> {
        let _ = lang;
        self.extract(images, prompt)
    }

    /// Whether the engine wants the original image, full resolution and
    /// grey ([`crate::prepare::prepare_for_ocr`]), rather than the JPEG
    /// made for a model ([`crate::prepare::prepare_file`]).
    fn reads_original(&self) -> bool {
        false
    }

    /// The model the engine asks, for each result's provenance.
    fn model(&self) -> Option<&str> {
        None
    }

    /// Where the engine sends its requests, for each result's provenance.
    fn endpoint(&self) -> Option<&str> {
        None
    }

    /// Whether the engine's server answers now, with a cheap request and
    /// no card: what `GET /api/engines` shows, and how a server set aside
    /// after failures is probed. Engines with no server always answer.
    fn check(&self) -> BoxFuture<'_, Result<(), CheckFailed>> {
        Box::pin(async { Ok(()) })
    }
}
