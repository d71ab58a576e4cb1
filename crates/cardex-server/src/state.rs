//! The state every handler shares.

use std::sync::Arc;

use cardex_runner::intake::Intake;
use cardex_runner::{Hub, Runner};
use cardex_store::SharedStore;
use tokio_util::sync::CancellationToken;

use crate::ServerConfig;

/// Cheap to clone: everything inside is shared.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The database and data dir.
    pub store: SharedStore,
    /// How the server was started.
    pub config: Arc<ServerConfig>,
    /// How uploaded images become cards.
    pub intake: Intake,
    /// The batch runner and its progress hub.
    pub runner: Runner,
    /// Cancelled at shutdown: stops the runner and closes progress streams.
    pub stop: CancellationToken,
}

impl AppState {
    /// State over an opened store; fails on an unusable engine configuration.
    pub fn new(store: SharedStore, config: ServerConfig) -> Result<Self, String> {
        let engines = cardex_runner::configured(config.vlm.as_ref(), &config.ocr)?;
        let check = cardex_runner::cross_check(config.vlm.as_ref(), &config.ocr)?;
        let stop = CancellationToken::new();
        let runner = Runner::new(
            store.clone(),
            engines,
            Hub::default(),
            config.runner,
            check,
            stop.clone(),
        );
        Ok(Self {
            intake: Intake::new(store.clone(), config.limits.files()),
            store,
            config: Arc::new(config),
            runner,
            stop,
        })
    }

    /// A batch as the API shows it, priced at the server's prices.
    pub fn batch_out(&self, batch: cardex_store::Batch) -> crate::api::Batch {
        crate::api::Batch::new(batch, self.runner.prices())
    }

    /// Batch `id` as the API shows it, read now.
    pub async fn read_batch(&self, id: &str) -> Result<crate::api::Batch, crate::ApiError> {
        Ok(self.batch_out(self.store.get_batch(id).await?))
    }
}
