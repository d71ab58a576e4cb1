//! Batches: create, read, delete, edit fields, and `start` with its
//! crash-safe move of the staged images.

use std::collections::HashMap;

use async_trait::async_trait;
use cardex_core::{BatchState, Budget, Field, Pairing, Usage};
use sqlx::FromRow;

use super::events::append_event;
use super::states::{batch_state, change_state, locked, parse_batch_state, parse_card_state};
use super::{SqliteStore, now};
use crate::{Batch, BatchStore, Counts, NewBatch, Reason, Result, StoreError, StoredEvent};

#[derive(FromRow)]
struct BatchRow {
    id: String,
    name: String,
    state: String,
    engine: String,
    fields: String,
    created_at: String,
    started_at: Option<String>,
    finished_at: Option<String>,
    pause_reason: Option<String>,
    pause_code: Option<String>,
    last_seq: i64,
    ocr_lang: Option<String>,
    prompt_tokens: i64,
    completion_tokens: i64,
    total_tokens: i64,
    cached_tokens: i64,
    requests: i64,
    engine_ms: i64,
    max_tokens: Option<i64>,
    max_cost: Option<f64>,
    estimate: Option<String>,
    pairing: Option<String>,
}

const BATCH_COLUMNS: &str = "id, name, state, engine, fields, created_at, started_at, finished_at, pause_reason, pause_code, last_seq, \
     ocr_lang, prompt_tokens, completion_tokens, total_tokens, cached_tokens, requests, engine_ms, \
     max_tokens, max_cost, estimate, pairing";

/// The condition of a card of a two-sided batch that has one side only
/// (`counts.unpaired`, and what holds the start back).
macro_rules! one_sided {
    () => {
        "side IS NOT NULL AND back_stored_name IS NULL"
    };
}

/// A batch's cards per state, with how many of them have one side only.
const STATE_COUNTS: &str = concat!(
    "SELECT state, COUNT(*), SUM(",
    one_sided!(),
    ") FROM cards WHERE batch_id = ? GROUP BY state"
);

/// A batch's reviews by status, with how many of them hold corrections.
const REVIEW_COUNTS: &str = "SELECT status, COUNT(*), SUM(corrections != '{}') FROM reviews \
     WHERE batch_id = ? GROUP BY status";

impl BatchRow {
    fn into_batch(self, counts: Counts) -> Result<Batch> {
        Ok(Batch {
            state: parse_batch_state(&self.state)?,
            fields: serde_json::from_str(&self.fields)?,
            percent: counts.percent(),
            counts,
            id: self.id,
            name: self.name,
            engine: self.engine,
            ocr_lang: self.ocr_lang,
            created_at: self.created_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
            pause_reason: self.pause_reason,
            pause_code: self.pause_code,
            last_seq: self.last_seq,
            usage: Usage {
                prompt_tokens: self.prompt_tokens as u64,
                completion_tokens: self.completion_tokens as u64,
                total_tokens: self.total_tokens as u64,
                cached_tokens: self.cached_tokens as u64,
                requests: self.requests as u64,
                ms: self.engine_ms as u64,
            },
            budget: Budget {
                max_tokens: self.max_tokens.map(|n| n as u64),
                max_cost: self.max_cost,
            },
            estimate: self
                .estimate
                .as_deref()
                .map(serde_json::from_str)
                .transpose()?,
            two_sided: self.pairing.as_deref().and_then(Pairing::parse),
        })
    }
}

#[async_trait]
impl BatchStore for SqliteStore {
    /// Creates an open batch; with a template, the batch gets a copy of its fields.
    async fn create_batch(&self, batch: &NewBatch<'_>) -> Result<Batch> {
        let NewBatch {
            name,
            engine,
            template_id,
            ocr_lang,
            budget,
            two_sided,
        } = *batch;
        let mut tx = self.write.begin().await?;
        let fields = match template_id {
            None => "[]".to_owned(),
            Some(tid) => sqlx::query_scalar("SELECT fields FROM templates WHERE id = ?")
                .bind(tid)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(StoreError::NotFound { what: "template" })?,
        };
        let now = now();
        sqlx::query(
            "INSERT INTO batches (id, name, state, engine, fields, created_at, ocr_lang, \
             max_tokens, max_cost, pairing) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&name.id)
        .bind(&name.full)
        .bind(BatchState::Open.as_str())
        .bind(engine)
        .bind(&fields)
        .bind(&now)
        .bind(ocr_lang)
        .bind(budget.max_tokens.map(saturating_i64))
        .bind(budget.max_cost)
        .bind(two_sided.map(Pairing::as_str))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.get_batch(&name.id).await
    }

    /// One batch with its counts, read from one snapshot of the database
    /// (so `last_seq` and the counts always agree).
    async fn get_batch(&self, id: &str) -> Result<Batch> {
        let mut tx = self.read.begin().await?;
        let row: BatchRow =
            sqlx::query_as(&format!("SELECT {BATCH_COLUMNS} FROM batches WHERE id = ?"))
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(StoreError::NotFound { what: "batch" })?;
        let mut counts = Counts::default();
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(STATE_COUNTS)
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
        let reviews: Vec<(String, i64, i64)> = sqlx::query_as(REVIEW_COUNTS)
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        for (state, n, unpaired) in rows {
            counts.add(parse_card_state(&state)?, n as u64, unpaired as u64);
        }
        for (status, n, corrected) in reviews {
            counts.add_reviews(&status, n as u64, corrected as u64);
        }
        row.into_batch(counts)
    }

    /// Every batch, newest first, with counts, from one snapshot.
    async fn list_batches(&self) -> Result<Vec<Batch>> {
        let mut tx = self.read.begin().await?;
        let rows: Vec<BatchRow> = sqlx::query_as(&format!(
            "SELECT {BATCH_COLUMNS} FROM batches ORDER BY rowid DESC"
        ))
        .fetch_all(&mut *tx)
        .await?;
        let mut counts: HashMap<String, Counts> = HashMap::new();
        let per_state: Vec<(String, String, i64, i64)> = sqlx::query_as(concat!(
            "SELECT batch_id, state, COUNT(*), SUM(",
            one_sided!(),
            ") FROM cards GROUP BY batch_id, state"
        ))
        .fetch_all(&self.read)
        .await?;
        for (batch_id, state, n, unpaired) in per_state {
            counts.entry(batch_id).or_default().add(
                parse_card_state(&state)?,
                n as u64,
                unpaired as u64,
            );
        }
        let reviews: Vec<(String, String, i64, i64)> = sqlx::query_as(
            "SELECT batch_id, status, COUNT(*), SUM(corrections != '{}') FROM reviews \
             GROUP BY batch_id, status",
        )
        .fetch_all(&self.read)
        .await?;
        for (batch_id, status, n, corrected) in reviews {
            counts
                .entry(batch_id)
                .or_default()
                .add_reviews(&status, n as u64, corrected as u64);
        }
        rows.into_iter()
            .map(|row| {
                let c = counts.remove(&row.id).unwrap_or_default();
                row.into_batch(c)
            })
            .collect()
    }

    /// Deletes a batch, its rows and its files. Refused while running.
    async fn delete_batch(&self, id: &str) -> Result<()> {
        let mut tx = self.write.begin().await?;
        let state = batch_state(&mut tx, id).await?;
        if state == BatchState::Running {
            return Err(StoreError::conflict(
                "batch_running",
                "the batch is running: pause or cancel it before deleting it",
            ));
        }
        let name: String = sqlx::query_scalar("SELECT name FROM batches WHERE id = ?")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM batches WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        // Rows first: a crash now leaves unreferenced files, never rows
        // pointing at missing files.
        self.dir.remove_batch_files(id, &name).await?;
        Ok(())
    }

    /// Replaces the field list of an open batch. The caller validates it.
    async fn set_fields(&self, id: &str, fields: &[Field]) -> Result<Batch> {
        let mut tx = self.write.begin().await?;
        let state = batch_state(&mut tx, id).await?;
        if state.is_locked() {
            return Err(locked(state));
        }
        sqlx::query("UPDATE batches SET fields = ? WHERE id = ?")
            .bind(serde_json::to_string(fields)?)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.get_batch(id).await
    }

    /// Sets the budget of a batch that may still read cards: not
    /// completed nor cancelled (one completed with errors may read its
    /// failed cards again).
    async fn set_budget(&self, id: &str, budget: Budget) -> Result<Batch> {
        let mut tx = self.write.begin().await?;
        let state = batch_state(&mut tx, id).await?;
        if matches!(state, BatchState::Completed | BatchState::Cancelled) {
            return Err(StoreError::conflict(
                "batch_ended",
                format!("the batch has ended (it is {state}); its budget can no longer change"),
            ));
        }
        sqlx::query("UPDATE batches SET max_tokens = ?, max_cost = ? WHERE id = ?")
            .bind(budget.max_tokens.map(saturating_i64))
            .bind(budget.max_cost)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.get_batch(id).await
    }

    /// Keeps the latest estimate made for a batch.
    async fn set_estimate(&self, id: &str, estimate: &serde_json::Value) -> Result<()> {
        let updated = sqlx::query("UPDATE batches SET estimate = ? WHERE id = ?")
            .bind(estimate.to_string())
            .bind(id)
            .execute(&self.write)
            .await?
            .rows_affected();
        if updated == 0 {
            return Err(StoreError::NotFound { what: "batch" });
        }
        Ok(())
    }

    /// Locks an open batch, queues its cards and moves the staged images to
    /// `batches/<name>/`. The state change commits first with
    /// `files_ready = 0`; the moves follow and then set it to 1, so a crash
    /// in between is finished by [`Store::open`].
    async fn start_batch(&self, id: &str, accept_singles: bool) -> Result<(Batch, StoredEvent)> {
        let mut tx = self.write.begin().await?;
        let state = batch_state(&mut tx, id).await?;
        if state != BatchState::Open {
            return Err(StoreError::conflict(
                "batch_already_started",
                format!("the batch was already started (it is {state})"),
            ));
        }
        let unpaired: i64 = sqlx::query_scalar(concat!(
            "SELECT COUNT(*) FROM cards WHERE batch_id = ? AND ",
            one_sided!()
        ))
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        if unpaired > 0 && !accept_singles {
            return Err(StoreError::conflict(
                "unpaired_images",
                format!(
                    "{unpaired} card(s) of this two-sided batch have one side only: upload their other \
                     sides, remove them, or start with `accept_singles` to read them as they are"
                ),
            ));
        }
        let fields: String = sqlx::query_scalar("SELECT fields FROM batches WHERE id = ?")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        let fields: Vec<Field> = serde_json::from_str(&fields)?;
        if !fields.iter().any(|f| f.active) {
            return Err(StoreError::conflict(
                "no_active_fields",
                "the batch has no active field: define at least one field to extract before starting",
            ));
        }
        let now = now();
        let queued = sqlx::query(
            "UPDATE cards SET state = 'pending', updated_at = ? WHERE batch_id = ? AND state = 'uploaded'",
        )
        .bind(&now)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if queued == 0 {
            return Err(StoreError::conflict(
                "no_images",
                "the batch has no images: upload at least one card before starting",
            ));
        }
        sqlx::query(
            "UPDATE batches SET state = 'running', started_at = ?, files_ready = 0 WHERE id = ?",
        )
        .bind(&now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let event = append_event(
            &mut tx,
            id,
            "state",
            serde_json::json!({"from": "open", "to": "running", "reason": null}),
        )
        .await?;
        tx.commit().await?;
        self.move_staged_files(id).await?;
        Ok((self.get_batch(id).await?, event))
    }

    /// Moves a batch between states if it is in one of `from`; returns the
    /// `state` event, or a 409 naming the current state.
    async fn transition(
        &self,
        batch_id: &str,
        from: &[BatchState],
        to: BatchState,
        reason: Option<Reason<'_>>,
    ) -> Result<Vec<StoredEvent>> {
        let mut tx = self.write.begin().await?;
        let state = batch_state(&mut tx, batch_id).await?;
        if !from.contains(&state) {
            return Err(StoreError::conflict(
                "invalid_state",
                format!("the batch is {state}; it cannot become {to} from there"),
            ));
        }
        let mut events = vec![change_state(&mut tx, batch_id, state, to, reason, None).await?];
        // A batch paused after its last cards were taken (at its budget,
        // say) has nothing left to read: resumed, it ends at once.
        if to == BatchState::Running
            && let Some(ended) = super::states::finish_if_done(&mut tx, batch_id).await?
        {
            events.push(ended);
        }
        tx.commit().await?;
        Ok(events)
    }

    /// Running batches as (id, engine), oldest first.
    async fn running_batches(&self) -> Result<Vec<(String, String)>> {
        Ok(
            sqlx::query_as("SELECT id, engine FROM batches WHERE state = 'running' ORDER BY rowid")
                .fetch_all(&self.read)
                .await?,
        )
    }

    async fn resume_paused(&self, code: &str) -> Result<Vec<(String, StoredEvent)>> {
        let mut tx = self.write.begin().await?;
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM batches WHERE state = 'paused' AND pause_code = ? ORDER BY rowid",
        )
        .bind(code)
        .fetch_all(&mut *tx)
        .await?;
        let mut events = Vec::with_capacity(ids.len());
        for id in ids {
            let event = change_state(
                &mut tx,
                &id,
                BatchState::Paused,
                BatchState::Running,
                None,
                None,
            )
            .await?;
            events.push((id, event));
        }
        tx.commit().await?;
        Ok(events)
    }
}

impl SqliteStore {
    /// Moves every card image of a started batch from the staging dir into
    /// the batch dir, then marks the batch's files ready. Safe to repeat.
    async fn move_staged_files(&self, id: &str) -> Result<()> {
        let name: String = sqlx::query_scalar("SELECT name FROM batches WHERE id = ?")
            .bind(id)
            .fetch_one(&self.read)
            .await?;
        let stored: Vec<String> = sqlx::query_scalar(
            "SELECT stored_name FROM cards WHERE batch_id = ?1 \
             UNION ALL SELECT back_stored_name FROM cards WHERE batch_id = ?1 AND back_stored_name IS NOT NULL",
        )
        .bind(id)
        .fetch_all(&self.read)
        .await?;
        self.dir.move_staged(id, &name, stored).await?;
        sqlx::query("UPDATE batches SET files_ready = 1 WHERE id = ?")
            .bind(id)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// Finishes the moves of batches started just before a crash.
    pub(super) async fn finish_pending_moves(&self) -> Result<()> {
        let ids: Vec<String> =
            sqlx::query_scalar("SELECT id FROM batches WHERE state <> 'open' AND files_ready = 0")
                .fetch_all(&self.read)
                .await?;
        for id in ids {
            tracing::info!(batch = %id, "finishing the image moves of a batch started before a crash");
            self.move_staged_files(&id).await?;
        }
        Ok(())
    }
}

/// A count as SQLite stores it (an `i64`), the most it can hold when larger.
pub(crate) fn saturating_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
