//! cardex storage: the SQLite database (WAL, migrations embedded in the
//! binary) and the data-dir file layout of DESIGN §3.
//!
//! All writes go through one connection (`write` pool of size 1), so write
//! transactions never meet each other and cannot fail with `SQLITE_BUSY`;
//! reads use a separate pool and, thanks to WAL, never wait for the writer.

mod batches;
mod cards;
pub mod layout;
mod model;
mod runs;
mod templates;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

pub use layout::DataDir;
pub use model::{Batch, Card, Counts, NewCard, Template};
pub use runs::{
    CardFailure, ClaimedCard, Committed, Completion, FailedCard, GroupCommitted, ResultRow,
    StoredEvent,
};

/// What can go wrong in the store. `NotFound` and `Conflict` are the
/// caller's fault and carry a message fit for users.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The named thing does not exist.
    #[error("{what} not found")]
    NotFound {
        /// "batch", "card" or "template".
        what: &'static str,
    },
    /// The request clashes with the current state (locked batch, taken name...).
    #[error("{message}")]
    Conflict {
        /// A stable machine-readable code, e.g. `batch_locked`.
        code: &'static str,
        /// What happened, for people.
        message: String,
    },
    /// The database failed.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// Applying migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A file operation in the data dir failed.
    #[error("file error: {0}")]
    Io(#[from] std::io::Error),
    /// A JSON column could not be read or written.
    #[error("stored JSON is invalid: {0}")]
    Json(#[from] serde_json::Error),
}

impl StoreError {
    pub(crate) fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            message: message.into(),
        }
    }
}

/// Result alias of this crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Longest wait for a database connection before a request fails.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(120);

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The database and the data dir together.
#[derive(Debug, Clone)]
pub struct Store {
    read: SqlitePool,
    write: SqlitePool,
    dir: DataDir,
}

impl Store {
    /// Opens (creating if needed) the data dir and its database, applies
    /// migrations, and repairs what a crash may have left half done.
    pub async fn open(data_dir: &Path) -> Result<Self> {
        let dir = DataDir::create(data_dir)?;
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
        let store = Self { read, write, dir };
        store.repair().await?;
        Ok(store)
    }

    /// The data-dir layout.
    pub fn dir(&self) -> &DataDir {
        &self.dir
    }

    /// Closes both pools, flushing the WAL.
    pub async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }

    /// Finishes what a crash interrupted: half-written uploads are removed,
    /// staged images of started batches moved into place, cards caught
    /// mid-flight queued again, and images put where their state says.
    async fn repair(&self) -> Result<()> {
        self.dir.remove_incomplete_uploads()?;
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

/// Now, as RFC 3339 text in UTC (the format of every timestamp column).
pub(crate) fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .expect("RFC 3339 formatting of the current time cannot fail")
}
