//! Batch and card lifecycles (DESIGN §2) and the transitions between them.

use serde::{Deserialize, Serialize};

/// Where a batch is in its life. Leaving `open` locks it for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchState {
    /// Uploads may be appended and fields edited.
    Open,
    /// Cards are being processed.
    Running,
    /// Stopped by the user or by a shutdown/crash; `resume` continues it.
    Paused,
    /// Every card is done.
    Completed,
    /// Every card is done or failed, at least one failed.
    CompletedWithErrors,
    /// Stopped for good by the user.
    Cancelled,
}

impl BatchState {
    /// Every state, for listings and tests.
    pub const ALL: [BatchState; 6] = [
        Self::Open,
        Self::Running,
        Self::Paused,
        Self::Completed,
        Self::CompletedWithErrors,
        Self::Cancelled,
    ];

    /// The name stored in the database and sent over the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Completed => "completed",
            Self::CompletedWithErrors => "completed_with_errors",
            Self::Cancelled => "cancelled",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Uploads and field edits are only allowed while open.
    pub fn is_locked(self) -> bool {
        self != Self::Open
    }

    /// Whether `self -> to` is an allowed move (DESIGN §2).
    pub fn can_become(self, to: BatchState) -> bool {
        use BatchState::*;
        matches!(
            (self, to),
            (Open, Running)
                | (Running, Paused)
                | (Running, Completed)
                | (Running, CompletedWithErrors)
                | (Running, Cancelled)
                | (Paused, Running)
                | (Paused, Cancelled)
                | (CompletedWithErrors, Running)
        )
    }
}

impl std::fmt::Display for BatchState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a card is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CardState {
    /// Uploaded into an open batch, not queued yet.
    Uploaded,
    /// Queued for extraction.
    Pending,
    /// Claimed by a worker; returns to `pending` if the process dies.
    Processing,
    /// Extracted; has exactly one result row.
    Done,
    /// Gave up after retries; its image is in `_errors/`.
    Failed,
}

impl CardState {
    /// Every state, for listings and tests.
    pub const ALL: [CardState; 5] = [
        Self::Uploaded,
        Self::Pending,
        Self::Processing,
        Self::Done,
        Self::Failed,
    ];

    /// The name stored in the database and sent over the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Uploaded => "uploaded",
            Self::Pending => "pending",
            Self::Processing => "processing",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

impl std::fmt::Display for CardState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in BatchState::ALL {
            assert_eq!(BatchState::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for s in CardState::ALL {
            assert_eq!(CardState::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert_eq!(BatchState::parse("bogus"), None);
    }

    #[test]
    fn leaving_open_is_one_way() {
        for s in BatchState::ALL {
            assert!(
                !s.can_become(BatchState::Open),
                "{s} -> open must be refused"
            );
        }
        assert!(BatchState::Open.can_become(BatchState::Running));
        assert!(!BatchState::Open.can_become(BatchState::Paused));
    }

    #[test]
    fn finished_batches_only_rerun_through_retry() {
        assert!(BatchState::CompletedWithErrors.can_become(BatchState::Running));
        assert!(!BatchState::Completed.can_become(BatchState::Running));
        assert!(!BatchState::Cancelled.can_become(BatchState::Running));
    }
}
