//! The per-batch event log behind the progress stream: numbered without
//! gaps, appended in the same transaction as the change it reports.

use async_trait::async_trait;
use cardex_core::BatchState;
use serde_json::{Value, json};
use sqlx::SqliteConnection;

use super::states::parse_batch_state;
use super::{SqliteStore, now};
use crate::{EventStore, Result, StoreError, StoredEvent};

/// Appends an event in the caller's transaction, taking the batch's next seq.
pub(super) async fn append_event(
    conn: &mut SqliteConnection,
    batch_id: &str,
    kind: &str,
    mut body: Value,
) -> Result<StoredEvent> {
    let seq: i64 = sqlx::query_scalar(
        "UPDATE batches SET last_seq = last_seq + 1 WHERE id = ? RETURNING last_seq",
    )
    .bind(batch_id)
    .fetch_one(&mut *conn)
    .await?;
    body["type"] = json!(kind);
    body["seq"] = json!(seq);
    body["batch_id"] = json!(batch_id);
    sqlx::query(
        "INSERT INTO events (batch_id, seq, kind, payload, created_at) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(batch_id)
    .bind(seq)
    .bind(kind)
    .bind(body.to_string())
    .bind(now())
    .execute(&mut *conn)
    .await?;
    Ok(StoredEvent { seq, payload: body })
}

#[async_trait]
impl EventStore for SqliteStore {
    /// Events of a batch with `seq > since`, up to `limit`, oldest first.
    async fn events_after(
        &self,
        batch_id: &str,
        since: i64,
        limit: i64,
    ) -> Result<Vec<StoredEvent>> {
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT seq, payload FROM events WHERE batch_id = ? AND seq > ? ORDER BY seq LIMIT ?",
        )
        .bind(batch_id)
        .bind(since)
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        rows.into_iter()
            .map(|(seq, payload)| {
                Ok(StoredEvent {
                    seq,
                    payload: serde_json::from_str(&payload)?,
                })
            })
            .collect()
    }

    /// The batch's state and last event number, read together.
    async fn batch_position(&self, batch_id: &str) -> Result<(BatchState, i64)> {
        let (state, seq): (String, i64) =
            sqlx::query_as("SELECT state, last_seq FROM batches WHERE id = ?")
                .bind(batch_id)
                .fetch_optional(&self.read)
                .await?
                .ok_or(StoreError::NotFound { what: "batch" })?;
        Ok((parse_batch_state(&state)?, seq))
    }
}
