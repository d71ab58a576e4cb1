//! The SQLite implementation of the store: one file in WAL mode, its
//! migrations embedded in the binary, queries grouped by resource in the
//! modules below.
//!
//! All writes go through one connection (`write` pool of size 1), so write
//! transactions never meet each other and cannot fail with `SQLITE_BUSY`;
//! reads use a separate pool and, thanks to WAL, never wait for the writer.

mod batches;
mod cards;
mod checks;
mod events;
mod recovery;
mod results;
mod reviews;
mod runs;
mod states;
mod templates;

use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::{DataDir, DataDirLock, Result, Store};

/// Longest wait for a database connection before a request fails.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(120);

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The SQLite store: the database and the data dir together. Cheap to
/// clone; the data dir stays locked until the store is closed or the
/// last clone is dropped.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    read: SqlitePool,
    write: SqlitePool,
    dir: DataDir,
    /// Taken (and so released) by `close`.
    lock: Arc<Mutex<Option<DataDirLock>>>,
}

impl SqliteStore {
    /// Opens (creating if needed) the data dir and its database: takes the
    /// data dir's lock (failing at once if another process holds it),
    /// applies migrations, and repairs what a crash may have left half done.
    pub async fn open(data_dir: &Path) -> Result<Self> {
        let dir = DataDir::create(data_dir)?;
        let lock = Arc::new(Mutex::new(Some(DataDirLock::acquire(dir.root())?)));
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(dir.db_path())
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL + NORMAL: a commit survives a process crash; only an OS
            // crash or power loss can drop the last few commits.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30));
        // Writes queue for the one connection by design; on a starved
        // machine the queue can be long, and waiting beats failing.
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options.clone())
            .await?;
        MIGRATOR.run(&write).await?;
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options.read_only(true))
            .await?;
        let store = Self {
            read,
            write,
            dir,
            lock,
        };
        store.repair().await?;
        Ok(store)
    }

    /// Finishes what a crash interrupted: half-written uploads are removed,
    /// staged images of started batches moved into place, cards caught
    /// mid-flight queued again, and images put where their state says.
    async fn repair(&self) -> Result<()> {
        self.dir.remove_incomplete_uploads()?;
        self.dir.keep_reserve();
        self.finish_pending_moves().await?;
        let released = self.recover().await?;
        if released > 0 {
            tracing::info!(
                cards = released,
                "cards interrupted mid-flight are queued again"
            );
        }
        Ok(())
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn layout(&self) -> &DataDir {
        &self.dir
    }

    /// Closes both pools, flushing the WAL, then frees the data dir.
    async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
        self.lock.lock().expect("lock poisoned").take();
    }
}

/// Now, as RFC 3339 text in UTC (the format of every timestamp column).
pub(crate) fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .expect("RFC 3339 formatting of the current time cannot fail")
}
