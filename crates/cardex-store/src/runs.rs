//! What the batch runner needs from the store: claim pending cards, commit
//! each card's outcome together with its event in one transaction (so a
//! card is done exactly once), state changes, retry-failed, and the
//! start-up recovery that makes a crash at any instant harmless.
//!
//! Where a card's image lives follows from the card's state: a failed card's
//! image is in `_errors/` (with a `.error.json` sidecar), every other card's
//! is in the batch dir. The state commits first; the file move follows and
//! is redone at start-up if a crash came in between.

use cardex_core::BatchState;
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::{FromRow, SqliteConnection};

use crate::batches::{batch_state, parse_batch_state};
use crate::layout::move_file;
use crate::{Result, Store, StoreError, now};

/// A card handed to a worker.
#[derive(Debug, Clone, FromRow)]
pub struct ClaimedCard {
    /// Card id.
    pub id: i64,
    /// Its batch.
    pub batch_id: String,
    /// The batch's folder name.
    pub batch_name: String,
    /// File name in the batch dir.
    pub stored_name: String,
    /// The client's file name.
    pub original_name: String,
    /// Failed attempts so far (across retries of the batch).
    pub attempts: i64,
}

/// Why a card failed, as stored, shown and written to its sidecar.
#[derive(Debug, Clone, Serialize)]
pub struct CardFailure {
    /// Stable code.
    pub code: String,
    /// What happened.
    pub message: String,
    /// Attempts made this time.
    pub attempts: u32,
    /// The start of the last answer, if the answer was the problem.
    pub last_answer: Option<String>,
}

/// A durable event, as sent over the progress stream.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    /// Per-batch sequence number.
    pub seq: i64,
    /// The event as JSON (with `type` and `seq`).
    pub payload: Value,
}

/// What committing a card's outcome changed.
#[derive(Debug, Clone)]
pub struct Committed {
    /// The card's event.
    pub event: StoredEvent,
    /// The batch's state change, when this was its last card.
    pub finished: Option<StoredEvent>,
}

/// One card's result, for [`Store::complete_cards`].
#[derive(Debug, Clone, Copy)]
pub struct Completion<'a> {
    /// The card, as claimed.
    pub card: &'a ClaimedCard,
    /// Its validated fields.
    pub result: &'a Value,
    /// The engine's answer as it came.
    pub raw: &'a str,
}

/// What a group commit changed.
#[derive(Debug, Clone, Default)]
pub struct GroupCommitted {
    /// Each committed card's `card_done` event, by batch id, in seq order.
    pub events: Vec<(String, StoredEvent)>,
    /// Batches that ended, with their `state` events.
    pub finished: Vec<(String, StoredEvent)>,
}

/// Appends an event in the caller's transaction, taking the batch's next seq.
pub(crate) async fn append_event(
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

/// Moves a batch to `to` and records a `state` event, in the caller's
/// transaction. `retried` is set when retry-failed queued that many failed
/// cards again: watchers then know those cards no longer count as failed.
async fn change_state(
    conn: &mut SqliteConnection,
    batch_id: &str,
    from: BatchState,
    to: BatchState,
    reason: Option<&str>,
    retried: Option<u64>,
) -> Result<StoredEvent> {
    let finished = matches!(
        to,
        BatchState::Completed | BatchState::CompletedWithErrors | BatchState::Cancelled
    );
    sqlx::query(
        "UPDATE batches SET state = ?, pause_reason = ?, \
         finished_at = CASE WHEN ? THEN ? ELSE finished_at END WHERE id = ?",
    )
    .bind(to.as_str())
    .bind(reason)
    .bind(finished)
    .bind(now())
    .bind(batch_id)
    .execute(&mut *conn)
    .await?;
    let mut body = json!({"from": from.as_str(), "to": to.as_str(), "reason": reason});
    if let Some(n) = retried {
        body["retried"] = json!(n);
    }
    append_event(conn, batch_id, "state", body).await
}

/// Ends a running batch whose cards are all done or failed.
async fn finish_if_done(
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

impl Store {
    /// Claims up to `limit` pending cards of running batches that use
    /// `engine`, oldest batch first, marking them `processing`.
    pub async fn claim_cards(&self, engine: &str, limit: usize) -> Result<Vec<ClaimedCard>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut tx = self.write.begin().await?;
        let cards: Vec<ClaimedCard> = sqlx::query_as(
            "UPDATE cards SET state = 'processing', updated_at = ?1 WHERE id IN ( \
               SELECT c.id FROM batches b JOIN cards c ON c.batch_id = b.id AND c.state = 'pending' \
               WHERE b.state = 'running' AND b.files_ready = 1 AND b.engine = ?3 \
               ORDER BY b.rowid, c.id LIMIT ?2) \
             RETURNING id, batch_id, \
               (SELECT name FROM batches WHERE id = cards.batch_id) AS batch_name, \
               stored_name, original_name, attempts",
        )
        .bind(now())
        .bind(limit as i64)
        .bind(engine)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut cards = cards;
        cards.sort_by_key(|c| c.id);
        Ok(cards)
    }

    /// Commits many cards' results, `done` states and `card_done` events in
    /// one transaction (a group commit: one WAL append and a handful of
    /// statements however many cards), ending each batch whose last card
    /// this was. Each card is all-or-nothing with its result; cards no
    /// longer `processing` (released, or their batch deleted) are left alone.
    pub async fn complete_cards(&self, items: &[Completion<'_>]) -> Result<GroupCommitted> {
        let mut out = GroupCommitted::default();
        if items.is_empty() {
            return Ok(out);
        }
        let at = now();
        let mut tx = self.write.begin().await?;
        let marks = vec!["?"; items.len()].join(", ");
        let sql = format!(
            "UPDATE cards SET state = 'done', error = NULL, updated_at = ? \
             WHERE state = 'processing' AND id IN ({marks}) RETURNING id"
        );
        let mut update = sqlx::query_scalar::<_, i64>(&sql).bind(&at);
        for item in items {
            update = update.bind(item.card.id);
        }
        let updated: std::collections::HashSet<i64> =
            update.fetch_all(&mut *tx).await?.into_iter().collect();
        let items: Vec<&Completion<'_>> = items
            .iter()
            .filter(|i| updated.contains(&i.card.id))
            .collect();
        if items.is_empty() {
            tx.commit().await?;
            return Ok(out);
        }

        let rows = vec!["(?, ?, ?, ?, ?)"; items.len()].join(", ");
        let sql = format!(
            "INSERT INTO results (card_id, batch_id, result, raw, created_at) VALUES {rows}"
        );
        let mut insert = sqlx::query(&sql);
        for item in &items {
            insert = insert
                .bind(item.card.id)
                .bind(&item.card.batch_id)
                .bind(item.result.to_string())
                .bind(item.raw)
                .bind(&at);
        }
        insert.execute(&mut *tx).await?;

        // Each batch's seqs are taken in one step, in the group's order.
        let mut batches: Vec<&str> = Vec::new();
        for item in &items {
            if !batches.contains(&item.card.batch_id.as_str()) {
                batches.push(&item.card.batch_id);
            }
        }
        for batch_id in &batches {
            let cards: Vec<&&Completion<'_>> = items
                .iter()
                .filter(|i| i.card.batch_id == *batch_id)
                .collect();
            let last: i64 = sqlx::query_scalar(
                "UPDATE batches SET last_seq = last_seq + ? WHERE id = ? RETURNING last_seq",
            )
            .bind(cards.len() as i64)
            .bind(batch_id)
            .fetch_one(&mut *tx)
            .await?;
            let first = last - cards.len() as i64 + 1;
            for (seq, item) in (first..).zip(cards) {
                let payload = json!({
                    "type": "card_done",
                    "seq": seq,
                    "batch_id": batch_id,
                    "card_id": item.card.id,
                    "file": item.card.original_name,
                    "result": item.result,
                });
                out.events
                    .push((batch_id.to_string(), StoredEvent { seq, payload }));
            }
        }
        let rows = vec!["(?, ?, 'card_done', ?, ?)"; out.events.len()].join(", ");
        let sql =
            format!("INSERT INTO events (batch_id, seq, kind, payload, created_at) VALUES {rows}");
        let mut insert = sqlx::query(&sql);
        for (batch_id, event) in &out.events {
            insert = insert
                .bind(batch_id)
                .bind(event.seq)
                .bind(event.payload.to_string())
                .bind(&at);
        }
        insert.execute(&mut *tx).await?;

        for batch_id in batches {
            if let Some(event) = finish_if_done(&mut tx, batch_id).await? {
                out.finished.push((batch_id.to_owned(), event));
            }
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Commits a card's failure (state, error, history, `card_failed`
    /// event), then quarantines its image in `_errors/` with a sidecar.
    pub async fn fail_card(
        &self,
        card: &ClaimedCard,
        failure: &CardFailure,
    ) -> Result<Option<Committed>> {
        let error = serde_json::to_value(failure)?;
        let mut tx = self.write.begin().await?;
        let updated = sqlx::query(
            "UPDATE cards SET state = 'failed', error = ?, attempts = attempts + ?, updated_at = ? \
             WHERE id = ? AND state = 'processing'",
        )
        .bind(error.to_string())
        .bind(i64::from(failure.attempts))
        .bind(now())
        .bind(card.id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 0 {
            return Ok(None);
        }
        sqlx::query(
            "INSERT INTO card_errors (card_id, batch_id, error, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(card.id)
        .bind(&card.batch_id)
        .bind(error.to_string())
        .bind(now())
        .execute(&mut *tx)
        .await?;
        let event = append_event(
            &mut tx,
            &card.batch_id,
            "card_failed",
            json!({"card_id": card.id, "file": card.original_name, "error": error}),
        )
        .await?;
        let finished = finish_if_done(&mut tx, &card.batch_id).await?;
        tx.commit().await?;
        self.quarantine(card.id).await?;
        Ok(Some(Committed { event, finished }))
    }

    /// Puts a claimed card back in line (shutdown, or its batch was paused
    /// because the engine is misconfigured): not an attempt, not a failure.
    pub async fn release_card(&self, card_id: i64) -> Result<()> {
        sqlx::query("UPDATE cards SET state = 'pending', updated_at = ? WHERE id = ? AND state = 'processing'")
            .bind(now())
            .bind(card_id)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// Moves a batch between states if it is in one of `from`; returns the
    /// `state` event, or a 409 naming the current state.
    pub async fn transition(
        &self,
        batch_id: &str,
        from: &[BatchState],
        to: BatchState,
        reason: Option<&str>,
    ) -> Result<StoredEvent> {
        let mut tx = self.write.begin().await?;
        let state = batch_state(&mut tx, batch_id).await?;
        if !from.contains(&state) {
            return Err(StoreError::conflict(
                "invalid_state",
                format!("the batch is {state}; it cannot become {to} from there"),
            ));
        }
        let event = change_state(&mut tx, batch_id, state, to, reason, None).await?;
        tx.commit().await?;
        Ok(event)
    }

    /// Re-queues the failed cards of a batch that is not running: their
    /// images come back out of `_errors/`, their earlier errors stay as
    /// history, the batch runs again.
    ///
    /// The images move first and the state commits after, so no card can be
    /// claimed before its image is back; a crash in between leaves the cards
    /// failed, and start-up puts their images back in `_errors/`.
    pub async fn retry_failed(&self, batch_id: &str) -> Result<StoredEvent> {
        let check = |state: BatchState| match state {
            BatchState::Running => Err(StoreError::conflict(
                "batch_running",
                "the batch is running; retry its failed cards once it has finished or is paused",
            )),
            BatchState::Open => Err(StoreError::conflict(
                "batch_not_started",
                "the batch has not been started",
            )),
            _ => Ok(()),
        };
        let (state, _) = self.batch_position(batch_id).await?;
        check(state)?;
        let (name, failed): (String, Vec<String>) = {
            let name: String = sqlx::query_scalar("SELECT name FROM batches WHERE id = ?")
                .bind(batch_id)
                .fetch_one(&self.read)
                .await?;
            let failed = sqlx::query_scalar(
                "SELECT stored_name FROM cards WHERE batch_id = ? AND state = 'failed'",
            )
            .bind(batch_id)
            .fetch_all(&self.read)
            .await?;
            (name, failed)
        };
        if failed.is_empty() {
            return Err(StoreError::conflict(
                "nothing_failed",
                "the batch has no failed cards to retry",
            ));
        }
        let (errors, target) = (self.dir.errors_dir(&name), self.dir.batch_dir(&name));
        for stored in &failed {
            move_file(&errors.join(stored), &target.join(stored))?;
        }
        let committed = async {
            let mut tx = self.write.begin().await?;
            let state = batch_state(&mut tx, batch_id).await?;
            check(state)?;
            let retried = sqlx::query(
                "UPDATE cards SET state = 'pending', error = NULL, updated_at = ? WHERE batch_id = ? AND state = 'failed'",
            )
            .bind(now())
            .bind(batch_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            let event = change_state(
                &mut tx,
                batch_id,
                state,
                BatchState::Running,
                None,
                Some(retried),
            )
            .await?;
            tx.commit().await?;
            Ok::<_, StoreError>(event)
        }
        .await;
        if committed.is_err() {
            // Nothing changed in the database: the images go back.
            self.requarantine(Some(batch_id)).await?;
        }
        committed
    }

    /// Start-up recovery: cards left `processing` go back to `pending`, and
    /// failed cards whose image a crash left outside `_errors/` are
    /// quarantined. Only failed cards are looked at, so start-up does not
    /// touch the files of the whole archive.
    pub async fn recover(&self) -> Result<u64> {
        let released = sqlx::query("UPDATE cards SET state = 'pending' WHERE state = 'processing'")
            .execute(&self.write)
            .await?
            .rows_affected();
        self.requarantine(None).await?;
        Ok(released)
    }

    /// Moves the image of a failed card into `_errors/` with its sidecar.
    async fn quarantine(&self, card_id: i64) -> Result<()> {
        let (name, stored, original, error, batch_id): (
            String,
            String,
            String,
            Option<String>,
            String,
        ) = sqlx::query_as(
            "SELECT b.name, c.stored_name, c.original_name, c.error, b.id FROM cards c \
             JOIN batches b ON b.id = c.batch_id WHERE c.id = ?",
        )
        .bind(card_id)
        .fetch_one(&self.read)
        .await?;
        let errors = self.dir.errors_dir(&name);
        std::fs::create_dir_all(&errors)?;
        let sidecar = json!({
            "card_id": card_id,
            "batch_id": batch_id,
            "original_name": original,
            "stored_name": stored,
            "error": error.as_deref().map(serde_json::from_str::<Value>).transpose()?,
            "failed_at": now(),
        });
        let sidecar_path = errors.join(format!("{stored}.error.json"));
        let tmp = errors.join(format!(".{stored}.error.json.tmp"));
        std::fs::write(&tmp, serde_json::to_vec_pretty(&sidecar)?)?;
        std::fs::rename(&tmp, &sidecar_path)?;
        move_file(
            &self.dir.batch_dir(&name).join(&stored),
            &errors.join(&stored),
        )?;
        Ok(())
    }

    /// Quarantines the images of failed cards that are not (fully) in
    /// `_errors/` yet: all batches, or one. Only failed cards can have a
    /// misplaced image: a failure commits before its image moves, and
    /// retry-failed moves images back before its cards leave `failed`.
    async fn requarantine(&self, batch_id: Option<&str>) -> Result<()> {
        let mut after = 0i64;
        loop {
            let page: Vec<(i64, String, String)> = sqlx::query_as(
                "SELECT c.id, c.stored_name, b.name FROM cards c JOIN batches b ON b.id = c.batch_id \
                 WHERE c.state = 'failed' AND b.files_ready = 1 AND (?1 IS NULL OR c.batch_id = ?1) AND c.id > ?2 \
                 ORDER BY c.id LIMIT 500",
            )
            .bind(batch_id)
            .bind(after)
            .fetch_all(&self.read)
            .await?;
            let Some(last) = page.last() else { break };
            after = last.0;
            for (id, stored, name) in page {
                let sidecar = self
                    .dir
                    .errors_dir(&name)
                    .join(format!("{stored}.error.json"));
                if self.dir.batch_dir(&name).join(&stored).exists() || !sidecar.exists() {
                    self.quarantine(id).await?;
                }
            }
        }
        Ok(())
    }

    /// Events of a batch with `seq > since`, up to `limit`, oldest first.
    pub async fn events_after(
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
    pub async fn batch_position(&self, batch_id: &str) -> Result<(BatchState, i64)> {
        let (state, seq): (String, i64) =
            sqlx::query_as("SELECT state, last_seq FROM batches WHERE id = ?")
                .bind(batch_id)
                .fetch_optional(&self.read)
                .await?
                .ok_or(StoreError::NotFound { what: "batch" })?;
        Ok((parse_batch_state(&state)?, seq))
    }

    /// Running batches as (id, engine), oldest first.
    pub async fn running_batches(&self) -> Result<Vec<(String, String)>> {
        Ok(
            sqlx::query_as("SELECT id, engine FROM batches WHERE state = 'running' ORDER BY rowid")
                .fetch_all(&self.read)
                .await?,
        )
    }

    /// Ids of batches in `state`, oldest first.
    pub async fn batches_in_state(&self, state: BatchState) -> Result<Vec<String>> {
        Ok(
            sqlx::query_scalar("SELECT id FROM batches WHERE state = ? ORDER BY rowid")
                .bind(state.as_str())
                .fetch_all(&self.read)
                .await?,
        )
    }
}

/// One row of a batch's results: every card, with its result or error.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ResultRow {
    /// Card id.
    pub card_id: i64,
    /// The client's file name.
    pub original_name: String,
    /// The card's state.
    pub state: String,
    /// Field → value, for done cards.
    #[schema(value_type = Option<Object>)]
    pub result: Option<Value>,
    /// What went wrong, for failed cards.
    #[schema(value_type = Option<Object>)]
    pub error: Option<Value>,
}

/// A failed card with its error history.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FailedCard {
    /// Card id.
    pub card_id: i64,
    /// The client's file name.
    pub original_name: String,
    /// File name in `_errors/`.
    pub stored_name: String,
    /// Attempts across all runs.
    pub attempts: i64,
    /// The last error.
    #[schema(value_type = Object)]
    pub error: Value,
    /// Earlier errors, oldest first (from before a retry).
    #[schema(value_type = Vec<Object>)]
    pub history: Vec<Value>,
}

impl Store {
    /// Up to `limit` result rows with `card_id > after`, in card order.
    pub async fn results_page(
        &self,
        batch_id: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<ResultRow>> {
        #[derive(FromRow)]
        struct Row {
            id: i64,
            original_name: String,
            state: String,
            result: Option<String>,
            error: Option<String>,
        }
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT c.id, c.original_name, c.state, r.result, c.error FROM cards c \
             LEFT JOIN results r ON r.card_id = c.id \
             WHERE c.batch_id = ? AND c.id > ? ORDER BY c.id LIMIT ?",
        )
        .bind(batch_id)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(ResultRow {
                    card_id: r.id,
                    original_name: r.original_name,
                    state: r.state,
                    result: r.result.as_deref().map(serde_json::from_str).transpose()?,
                    error: r.error.as_deref().map(serde_json::from_str).transpose()?,
                })
            })
            .collect()
    }

    /// The failed cards of a batch with their error history.
    pub async fn failed_cards(&self, batch_id: &str) -> Result<Vec<FailedCard>> {
        let mut conn = self.read.acquire().await?;
        batch_state(&mut conn, batch_id).await?;
        let rows: Vec<(i64, String, String, i64, String)> = sqlx::query_as(
            "SELECT id, original_name, stored_name, attempts, COALESCE(error, '{}') FROM cards \
             WHERE batch_id = ? AND state = 'failed' ORDER BY id",
        )
        .bind(batch_id)
        .fetch_all(&mut *conn)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for (card_id, original_name, stored_name, attempts, error) in rows {
            let history: Vec<String> =
                sqlx::query_scalar("SELECT error FROM card_errors WHERE card_id = ? ORDER BY id")
                    .bind(card_id)
                    .fetch_all(&mut *conn)
                    .await?;
            let mut history = history
                .iter()
                .map(|h| serde_json::from_str(h))
                .collect::<Result<Vec<Value>, _>>()?;
            history.pop(); // the last one is the current error
            out.push(FailedCard {
                card_id,
                original_name,
                stored_name,
                attempts,
                error: serde_json::from_str(&error)?,
                history,
            });
        }
        Ok(out)
    }
}
