//! The engines a runner can use, by name, each with the limiter of its
//! requests in flight and a count of the cards it holds; and how they are
//! built from the configuration (the VLM when a model server is given, the
//! embedded OCR when it is built in and its language data loads).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cardex_engine::Engine;
use cardex_engine::vlm::{VlmConfig, VlmEngine};

use crate::check::CrossCheck;
use crate::limit::{DEFAULT_MAX_LIMIT, Limiter};
use crate::pool::{EndpointStatus, Pool};

/// The OpenAI-compatible model server, when one is configured: one or
/// more replicas serving the same model (DESIGN §15).
#[derive(Clone)]
pub struct EngineConfig {
    /// Base URLs, e.g. `http://localhost:8000/v1`: at least one.
    pub base_urls: Vec<String>,
    /// Model name as the server knows it.
    pub model: String,
    /// Bearer key, if the server wants one. Never logged or returned.
    pub api_key: Option<String>,
    /// Fixed number of requests in flight; found adaptively when unset.
    pub concurrency: Option<usize>,
    /// Most requests in flight the adaptive limit may reach.
    pub max_concurrency: usize,
    /// Longest wait for a connection.
    pub connect_timeout: Duration,
    /// Longest wait for one answer.
    pub request_timeout: Duration,
    /// Most tokens the model may generate for one card.
    pub max_tokens: u32,
}

impl EngineConfig {
    /// A config with default timeouts (connect 10 s, request 120 s).
    pub fn new(base_url: &str, model: &str) -> Self {
        Self::replicas(&[base_url], model)
    }

    /// A config of several servers of `model`.
    pub fn replicas(base_urls: &[&str], model: &str) -> Self {
        Self {
            base_urls: base_urls
                .iter()
                .map(|u| u.trim_end_matches('/').to_owned())
                .collect(),
            model: model.to_owned(),
            api_key: None,
            concurrency: None,
            max_concurrency: DEFAULT_MAX_LIMIT,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(120),
            max_tokens: 2048,
        }
    }
}

impl fmt::Debug for EngineConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineConfig")
            .field("base_urls", &self.base_urls)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("concurrency", &self.concurrency)
            .field("max_concurrency", &self.max_concurrency)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("max_tokens", &self.max_tokens)
            .finish()
    }
}

/// The embedded OCR engine's settings.
#[derive(Debug, Clone)]
pub struct OcrConfig {
    /// Tesseract language(s), e.g. `eng` or `deu+eng`.
    pub lang: String,
    /// Worker threads, each with its own Tesseract; default: the cores.
    pub workers: usize,
    /// Whether a model's results are cross-checked against the card's own
    /// text ([`crate::check`]). Off unless asked for; `cardex serve` and
    /// `cardex extract` ask for [`CrossCheckMode::Auto`].
    pub cross_check: CrossCheckMode,
    /// The cross-check's worker threads; default: half the cores, at
    /// least one, so that preparing the model's images keeps its share.
    pub check_workers: usize,
}

impl Default for OcrConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            lang: "eng".into(),
            workers: cores,
            cross_check: CrossCheckMode::Off,
            check_workers: (cores / 2).max(1),
        }
    }
}

/// When a model's results are cross-checked against the card's own OCR
/// text (DESIGN §13).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CrossCheckMode {
    /// Never.
    #[default]
    Off,
    /// Whenever a model reads the cards and the OCR engine is built in and
    /// loads; without it, the cards go unchecked (and the log says why).
    Auto,
    /// Whenever a model reads the cards; a missing OCR engine is an error.
    On,
}

/// The cross-check the configuration asks for: `None` when it is off or
/// there is no model to check; an error when it is `on` and the OCR
/// engine cannot read.
pub fn cross_check(
    vlm: Option<&EngineConfig>,
    ocr: &OcrConfig,
) -> Result<Option<CrossCheck>, String> {
    if ocr.cross_check == CrossCheckMode::Off || vlm.is_none() {
        return Ok(None);
    }
    match background_ocr(ocr) {
        Ok(check) => Ok(Some(check)),
        Err(e) if ocr.cross_check == CrossCheckMode::Auto => {
            tracing::warn!("model results are not cross-checked: {e}");
            Ok(None)
        }
        Err(e) => Err(format!("--cross-check on needs the OCR engine: {e}")),
    }
}

#[cfg(feature = "ocr")]
fn background_ocr(ocr: &OcrConfig) -> Result<CrossCheck, String> {
    CrossCheck::ocr(&ocr.lang, ocr.check_workers)
}

#[cfg(not(feature = "ocr"))]
fn background_ocr(_ocr: &OcrConfig) -> Result<CrossCheck, String> {
    Err("this cardex was built without it".into())
}

/// The engines a runner can use, by name.
#[derive(Debug, Clone, Default)]
pub struct Engines {
    pub(crate) engines: HashMap<String, EngineSlot>,
}

#[derive(Debug, Clone)]
pub(crate) struct EngineSlot {
    /// The engine's servers, each with its limit of requests in flight.
    pub(crate) pool: Arc<Pool>,
    /// Cards of this engine claimed and not yet committed.
    pub(crate) claimed: Arc<AtomicUsize>,
}

impl EngineSlot {
    /// Cards to hold claimed: the request limit plus prepared ones waiting,
    /// enough to cover a round of completions, bounded in memory.
    pub(crate) fn target(&self) -> usize {
        let limit = self.pool.limit();
        limit + (limit / 4).clamp(PREPARED_AHEAD_MIN, PREPARED_AHEAD_MAX)
    }
}

/// Prepared images waiting for a request slot, at least and at most
/// (each is at most a few hundred KB).
const PREPARED_AHEAD_MIN: usize = 4;
const PREPARED_AHEAD_MAX: usize = 64;

/// Gives an engine's slot back when a card task ends, however it ends.
pub(crate) struct SlotGuard(pub(crate) Arc<AtomicUsize>);

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Engines {
    /// Adds an engine whose requests in flight `limiter` bounds.
    pub fn with(self, engine: Arc<dyn Engine>, limiter: Arc<Limiter>) -> Self {
        let name = engine.name().to_owned();
        self.with_pool(&name, Pool::single(engine, limiter))
    }

    /// Adds engine `name`, served by the servers of `pool`.
    pub fn with_pool(mut self, name: &str, pool: Arc<Pool>) -> Self {
        self.engines.insert(
            name.to_owned(),
            EngineSlot {
                pool,
                claimed: Arc::new(AtomicUsize::new(0)),
            },
        );
        self
    }

    /// The engine called `name` (its first server in use).
    pub fn get(&self, name: &str) -> Option<Arc<dyn Engine>> {
        self.engines.get(name).map(|s| s.pool.engine().clone())
    }

    /// The present in-flight limit of engine `name`, over its servers.
    pub fn concurrency(&self, name: &str) -> Option<usize> {
        self.engines.get(name).map(|s| s.pool.limit())
    }

    /// Each server of engine `name`: its limit, load, figures and health.
    pub fn servers(&self, name: &str) -> Vec<EndpointStatus> {
        self.engines
            .get(name)
            .map(|s| s.pool.status())
            .unwrap_or_default()
    }

    /// Engine `name`'s servers themselves, to ask whether they answer.
    pub fn server_engines(&self, name: &str) -> Vec<Arc<dyn Engine>> {
        self.engines
            .get(name)
            .map(|s| s.pool.engines())
            .unwrap_or_default()
    }
}

/// The configured engines; fails on an unusable VLM configuration.
pub fn configured(vlm: Option<&EngineConfig>, ocr: &OcrConfig) -> Result<Engines, String> {
    let mut engines = Engines::default();
    if let Some(c) = vlm {
        if c.base_urls.is_empty() {
            return Err("a model server needs at least one URL".into());
        }
        let mut servers: Vec<Arc<dyn Engine>> = Vec::new();
        for url in &c.base_urls {
            let mut vc = VlmConfig::new(url, &c.model, c.api_key.clone());
            vc.connect_timeout = c.connect_timeout;
            vc.request_timeout = c.request_timeout;
            vc.max_tokens = c.max_tokens;
            servers.push(Arc::new(VlmEngine::new(vc)?));
        }
        engines = engines.with_pool("vlm", Pool::of(servers, c.concurrency, c.max_concurrency));
    }
    Ok(add_ocr(engines, ocr))
}

/// Adds the embedded OCR engine when it is built in and its language data
/// loads; otherwise batches that use it are paused with the reason.
#[cfg(feature = "ocr")]
fn add_ocr(engines: Engines, config: &OcrConfig) -> Engines {
    match cardex_engine::ocr::OcrEngine::new(&config.lang, config.workers) {
        Ok(engine) => {
            // One card waiting prepared per worker keeps every worker busy.
            let in_flight = engine.workers() * 2;
            engines.with(Arc::new(engine), Limiter::fixed("ocr", in_flight))
        }
        Err(e) => {
            tracing::warn!("the OCR engine is not available: {e}");
            engines
        }
    }
}

#[cfg(not(feature = "ocr"))]
fn add_ocr(engines: Engines, _config: &OcrConfig) -> Engines {
    engines
}
