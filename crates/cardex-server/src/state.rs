//! The state every handler shares.

use std::sync::Arc;

use cardex_store::Store;
use tokio::sync::Semaphore;

use crate::ServerConfig;

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
}

impl AppState {
    /// State over an opened store.
    pub fn new(store: Store, config: ServerConfig) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            store,
            config: Arc::new(config),
            decode_slots: Arc::new(Semaphore::new(cores)),
        }
    }
}
