//! The runner's side of the store: claim pending cards, commit each card's
//! outcome together with its event in one transaction (so a card is done
//! exactly once), put cards back, and retry-failed.
//!
//! Where a card's image lives follows from the card's state: a failed card's
//! image is in `_errors/` (with a `.error.json` sidecar), every other card's
//! is in the batch dir. The state commits first; the file move follows and
//! is redone at start-up if a crash came in between.

use async_trait::async_trait;
use cardex_core::{BatchState, Budget, Usage};
use serde_json::json;
use sqlx::SqliteConnection;

use super::batches::saturating_i64;
use super::events::append_event;
use super::states::{batch_state, change_state, finish_if_done};
use super::{SqliteStore, now};
use crate::{
    CardFailure, ClaimedCard, Committed, Completion, EventStore, GroupCommitted, Result, RunStore,
    Spent, StoreError, StoredEvent,
};

#[async_trait]
impl RunStore for SqliteStore {
    /// Claims up to `limit` pending cards of running batches that use
    /// `engine`, oldest batch first, marking them `processing`.
    async fn claim_cards(&self, engine: &str, limit: usize) -> Result<Vec<ClaimedCard>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut tx = self.write.begin().await?;
        #[allow(clippy::type_complexity)]
        let rows: Vec<(i64, String, String, String, Option<String>, String, i64)> = sqlx::query_as(
            "UPDATE cards SET state = 'processing', updated_at = ?1 WHERE id IN ( \
               SELECT c.id FROM batches b JOIN cards c ON c.batch_id = b.id AND c.state = 'pending' \
               WHERE b.state = 'running' AND b.files_ready = 1 AND b.engine = ?3 \
                 AND (b.max_tokens IS NULL OR b.total_tokens < b.max_tokens) \
               ORDER BY b.rowid, c.id LIMIT ?2) \
             RETURNING id, batch_id, \
               (SELECT name FROM batches WHERE id = cards.batch_id) AS batch_name, \
               stored_name, back_stored_name, original_name, attempts",
        )
        .bind(now())
        .bind(limit as i64)
        .bind(engine)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let cards = rows.into_iter().map(
            |(id, batch_id, batch_name, stored_name, back_stored_name, original_name, attempts)| {
                ClaimedCard {
                    id,
                    batch_id,
                    batch_name,
                    stored_name,
                    back_stored_name,
                    original_name,
                    attempts,
                }
            },
        );
        let mut cards: Vec<ClaimedCard> = cards.collect();
        cards.sort_by_key(|c| c.id);
        Ok(cards)
    }

    /// Commits many cards' results, `done` states and `card_done` events in
    /// one transaction (a group commit: one WAL append and a handful of
    /// statements however many cards), ending each batch whose last card
    /// this was. Each card is all-or-nothing with its result; cards no
    /// longer `processing` (released, or their batch deleted) are left alone.
    async fn complete_cards(&self, items: &[Completion<'_>]) -> Result<GroupCommitted> {
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

        let rows = vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"; items.len()].join(", ");
        let sql = format!(
            "INSERT INTO results (card_id, batch_id, result, raw, flags, confidence, min_confidence, \
             text, check_state, usage, provenance, created_at) VALUES {rows}"
        );
        let mut insert = sqlx::query(&sql);
        for item in &items {
            insert = insert
                .bind(item.card.id)
                .bind(&item.card.batch_id)
                .bind(item.result.to_string())
                .bind(item.raw)
                .bind(serde_json::to_string(item.flags)?)
                .bind(item.confidence.to_string())
                .bind(least_confidence(item.confidence))
                .bind(item.text)
                .bind(item.check.then_some("pending"))
                .bind(serde_json::to_string(item.usage)?)
                .bind(item.provenance.to_string())
                .bind(&at);
        }
        insert.execute(&mut *tx).await?;
        let marks = vec!["?"; items.len()].join(", ");
        let sql = format!(
            "UPDATE cards SET \
               queue_tier = CASE WHEN json_array_length(r.flags) > 0 THEN 1 ELSE 2 END, \
               queue_conf = COALESCE(r.min_confidence, 2.0) \
             FROM results r WHERE r.card_id = cards.id AND cards.id IN ({marks})"
        );
        let mut place = sqlx::query(&sql);
        for item in &items {
            place = place.bind(item.card.id);
        }
        place.execute(&mut *tx).await?;

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
            let mut usage = Usage::default();
            for item in &cards {
                usage.add(item.usage);
            }
            let spent = add_usage(&mut tx, batch_id, &usage).await?;
            out.spent.push((batch_id.to_string(), spent));
            for (seq, item) in (first..).zip(cards) {
                let payload = json!({
                    "type": "card_done",
                    "seq": seq,
                    "batch_id": batch_id,
                    "card_id": item.card.id,
                    "file": item.card.original_name,
                    "result": item.result,
                    "flags": item.flags,
                    "confidence": item.confidence,
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
    async fn fail_card(
        &self,
        card: &ClaimedCard,
        failure: &CardFailure,
    ) -> Result<Option<Committed>> {
        let error = serde_json::to_value(failure)?;
        let mut tx = self.write.begin().await?;
        let updated = sqlx::query(
            "UPDATE cards SET state = 'failed', error = ?, attempts = attempts + ?, updated_at = ?, \
               queue_tier = 0, queue_conf = 2.0 \
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
        let spent = add_usage(&mut tx, &card.batch_id, &failure.usage).await?;
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
        Ok(Some(Committed {
            event,
            finished,
            spent,
        }))
    }

    /// Puts a claimed card back in line (shutdown, or its batch was paused
    /// because the engine is misconfigured): not an attempt, not a failure.
    async fn release_card(&self, card_id: i64) -> Result<()> {
        sqlx::query("UPDATE cards SET state = 'pending', updated_at = ? WHERE id = ? AND state = 'processing'")
            .bind(now())
            .bind(card_id)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// Re-queues the failed cards of a batch that is not running: their
    /// images come back out of `_errors/`, their earlier errors stay as
    /// history, the batch runs again.
    ///
    /// The images move first and the state commits after, so no card can be
    /// claimed before its image is back; a crash in between leaves the cards
    /// failed, and start-up puts their images back in `_errors/`.
    async fn retry_failed(&self, batch_id: &str) -> Result<StoredEvent> {
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
                "SELECT stored_name FROM cards WHERE batch_id = ?1 AND state = 'failed' \
                 UNION ALL SELECT back_stored_name FROM cards \
                 WHERE batch_id = ?1 AND state = 'failed' AND back_stored_name IS NOT NULL",
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
        self.dir.unquarantine(&name, failed).await?;
        let committed = async {
            let mut tx = self.write.begin().await?;
            let state = batch_state(&mut tx, batch_id).await?;
            check(state)?;
            let retried = sqlx::query(
                "UPDATE cards SET state = 'pending', error = NULL, updated_at = ?, queue_tier = NULL \
                 WHERE batch_id = ? AND state = 'failed'",
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
}

/// Adds a card's (or a group's) usage to its batch's totals, in the
/// transaction of their outcomes; returns the totals now, with the budget.
async fn add_usage(conn: &mut SqliteConnection, batch_id: &str, usage: &Usage) -> Result<Spent> {
    type Row = (i64, i64, i64, i64, i64, i64, Option<i64>, Option<f64>);
    let n = |v: u64| saturating_i64(v);
    let row: Row = sqlx::query_as(
        "UPDATE batches SET prompt_tokens = prompt_tokens + ?, \
           completion_tokens = completion_tokens + ?, total_tokens = total_tokens + ?, \
           cached_tokens = cached_tokens + ?, requests = requests + ?, engine_ms = engine_ms + ? \
         WHERE id = ? RETURNING prompt_tokens, completion_tokens, total_tokens, cached_tokens, \
           requests, engine_ms, max_tokens, max_cost",
    )
    .bind(n(usage.prompt_tokens))
    .bind(n(usage.completion_tokens))
    .bind(n(usage.total_tokens))
    .bind(n(usage.cached_tokens))
    .bind(n(usage.requests))
    .bind(n(usage.ms))
    .bind(batch_id)
    .fetch_one(&mut *conn)
    .await?;
    let (prompt, completion, total, cached, requests, ms, max_tokens, max_cost) = row;
    let u = |v: i64| v.max(0) as u64;
    Ok(Spent {
        usage: Usage {
            prompt_tokens: u(prompt),
            completion_tokens: u(completion),
            total_tokens: u(total),
            cached_tokens: u(cached),
            requests: u(requests),
            ms: u(ms),
        },
        budget: Budget {
            max_tokens: max_tokens.map(u),
            max_cost,
        },
    })
}

/// The least of a result's confidences, `None` when it has none.
fn least_confidence(confidence: &serde_json::Value) -> Option<f64> {
    confidence
        .as_object()?
        .values()
        .filter_map(serde_json::Value::as_f64)
        .reduce(f64::min)
}
