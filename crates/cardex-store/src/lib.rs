//! cardex storage: the store's interface by resource ([`Store`] and the
//! traits it gathers, with the guarantees every implementation gives), its
//! SQLite implementation ([`SqliteStore`]: WAL, migrations embedded in the
//! binary, queries by resource), the data-dir file layout of DESIGN §3
//! ([`DataDir`], the one way to the images) and the lock that keeps one
//! process per data dir ([`DataDirLock`]).

pub mod layout;
mod lock;
mod model;
mod sqlite;
mod store;

pub use layout::DataDir;
pub use lock::{DataDirLock, LockError};
pub use model::{
    Batch, Card, CardBack, CardDetail, CardFailure, CheckJob, CheckOutcome, ClaimedCard, Committed,
    Completion, Counts, FailedCard, GroupCommitted, NewBatch, NewCard, NewReview, Quality,
    QueueCursor, QueueEntry, QueueFilter, Reason, ResultRow, Review, RowBack, Spent, StoredEvent,
    Template,
};
pub use sqlite::SqliteStore;
pub use store::{
    BatchStore, CardStore, CheckStore, EventStore, ResultStore, ReviewStore, RunStore, SharedStore,
    Store, TemplateStore,
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
    /// Another process uses the data dir.
    #[error(transparent)]
    Locked(#[from] LockError),
    /// A JSON column could not be read or written.
    #[error("stored JSON is invalid: {0}")]
    Json(#[from] serde_json::Error),
}

impl StoreError {
    /// Whether the disk holding the data dir is full (or over quota): the
    /// write may succeed later, once there is room.
    pub fn is_disk_full(&self) -> bool {
        match self {
            Self::Io(e) | Self::Db(sqlx::Error::Io(e)) => io_disk_full(e),
            // SQLITE_FULL, the primary result code in the low byte.
            Self::Db(sqlx::Error::Database(db)) => db
                .code()
                .and_then(|c| c.parse::<i32>().ok())
                .is_some_and(|c| c & 0xFF == 13),
            _ => false,
        }
    }

    pub(crate) fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            message: message.into(),
        }
    }
}

/// Whether a file operation failed for want of space (ENOSPC, EDQUOT).
pub fn io_disk_full(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}

/// Result alias of this crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
