//! The state every handler shares.

use std::sync::Arc;

use cardex_engine::vlm::{VlmConfig, VlmEngine};
use cardex_store::Store;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::ServerConfig;
use crate::runner::{Engines, Hub, Limiter, Runner};

/// Cheap to clone: everything inside is shared.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The database and data dir.
    pub store: Store,
    /// How the server was started.
    pub config: Arc<ServerConfig>,
    /// Bounds how many uploaded images are decoded at once, so a burst of
    /// uploads cannot take all cores or memory.
    pub decode_slots: Arc<Semaphore>,
    /// The batch runner and its progress hub.
    pub runner: Runner,
    /// The VLM engine, when one is configured (for reachability checks).
    pub vlm: Option<Arc<VlmEngine>>,
    /// Cancelled at shutdown: stops the runner and closes progress streams.
    pub stop: CancellationToken,
}

/// Adds the embedded OCR engine when it is built in and its language data
/// loads; otherwise batches that use it are paused with the reason.
#[cfg(feature = "ocr")]
fn add_ocr(engines: Engines, config: &ServerConfig) -> Engines {
    match cardex_engine::ocr::OcrEngine::new(&config.ocr.lang, config.ocr.workers) {
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
fn add_ocr(engines: Engines, _config: &ServerConfig) -> Engines {
    engines
}

impl AppState {
    /// State over an opened store; fails on an unusable engine configuration.
    pub fn new(store: Store, config: ServerConfig) -> Result<Self, String> {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let mut engines = Engines::default();
        let vlm = match &config.vlm {
            None => None,
            Some(c) => {
                let mut vc = VlmConfig::new(&c.base_url, &c.model, c.api_key.clone());
                vc.connect_timeout = c.connect_timeout;
                vc.request_timeout = c.request_timeout;
                let engine = Arc::new(VlmEngine::new(vc)?);
                let limiter = match c.concurrency {
                    Some(n) => Limiter::fixed("vlm", n),
                    None => Limiter::adaptive("vlm", c.max_concurrency),
                };
                engines = engines.with(engine.clone(), limiter);
                Some(engine)
            }
        };
        engines = add_ocr(engines, &config);
        let stop = CancellationToken::new();
        let runner = Runner::new(
            store.clone(),
            engines,
            Hub::default(),
            config.runner,
            stop.clone(),
        );
        Ok(Self {
            store,
            config: Arc::new(config),
            decode_slots: Arc::new(Semaphore::new(cores)),
            runner,
            vlm,
            stop,
        })
    }
}
