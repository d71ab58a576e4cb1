//! Reading and changing a batch's state inside a transaction: the pieces
//! that batches, the runner's commits and retry-failed share.

use cardex_core::{BatchState, CardState};
use serde_json::json;
use sqlx::SqliteConnection;

use super::events::append_event;
use super::now;
use crate::{Reason, Result, StoreError, StoredEvent};

pub(super) fn parse_batch_state(s: &str) -> Result<BatchState> {
    BatchState::parse(s).ok_or_else(|| {
        StoreError::Db(sqlx::Error::Decode(
            format!("unknown batch state {s:?}").into(),
        ))
    })
}

pub(super) fn parse_card_state(s: &str) -> Result<CardState> {
    CardState::parse(s).ok_or_else(|| {
        StoreError::Db(sqlx::Error::Decode(
            format!("unknown card state {s:?}").into(),
        ))
    })
}

/// The batch's state inside a transaction, or `NotFound`.
pub(super) async fn batch_state(conn: &mut SqliteConnection, id: &str) -> Result<BatchState> {
    let state: Option<String> = sqlx::query_scalar("SELECT state FROM batches WHERE id = ?")
        .bind(id)
        .fetch_optional(conn)
        .await?;
    parse_batch_state(&state.ok_or(StoreError::NotFound { what: "batch" })?)
}

/// A 409 for changes that need an open batch.
pub(super) fn locked(state: BatchState) -> StoreError {
    StoreError::conflict(
        "batch_locked",
        format!(
            "the batch is {state}: uploads and field changes are only possible while it is open"
        ),
    )
}

/// Moves a batch to `to` and records a `state` event, in the caller's
/// transaction. `retried` is set when retry-failed queued that many failed
/// cards again: watchers then know those cards no longer count as failed.
pub(super) async fn change_state(
    conn: &mut SqliteConnection,
    batch_id: &str,
    from: BatchState,
    to: BatchState,
    reason: Option<Reason<'_>>,
    retried: Option<u64>,
) -> Result<StoredEvent> {
    let finished = matches!(
        to,
        BatchState::Completed | BatchState::CompletedWithErrors | BatchState::Cancelled
    );
    sqlx::query(
        "UPDATE batches SET state = ?, pause_reason = ?, pause_code = ?, \
         finished_at = CASE WHEN ? THEN ? ELSE finished_at END WHERE id = ?",
    )
    .bind(to.as_str())
    .bind(reason.map(|r| r.message))
    .bind(reason.map(|r| r.code))
    .bind(finished)
    .bind(now())
    .bind(batch_id)
    .execute(&mut *conn)
    .await?;
    let mut body = json!({"from": from.as_str(), "to": to.as_str(),
        "reason": reason.map(|r| r.message), "code": reason.map(|r| r.code)});
    if let Some(n) = retried {
        body["retried"] = json!(n);
    }
    append_event(conn, batch_id, "state", body).await
}

/// Ends a running batch whose cards are all done or failed.
pub(super) async fn finish_if_done(
    conn: &mut SqliteConnection,
    batch_id: &str,
) -> Result<Option<StoredEvent>> {
    // Index lookups, not a count over the batch: this runs at every commit.
    let row: Option<(String, bool, bool)> = sqlx::query_as(
        "SELECT state, \
           EXISTS (SELECT 1 FROM cards WHERE batch_id = ?1 AND state IN ('pending', 'processing')), \
           EXISTS (SELECT 1 FROM cards WHERE batch_id = ?1 AND state = 'failed') \
         FROM batches WHERE id = ?1",
    )
    .bind(batch_id)
    .fetch_optional(&mut *conn)
    .await?;
    let (state, open, failed) = row.ok_or(StoreError::NotFound { what: "batch" })?;
    let state = parse_batch_state(&state)?;
    if state != BatchState::Running || open {
        return Ok(None);
    }
    let to = if failed {
        BatchState::CompletedWithErrors
    } else {
        BatchState::Completed
    };
    Ok(Some(
        change_state(conn, batch_id, state, to, None, None).await?,
    ))
}
