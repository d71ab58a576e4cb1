//! The cross-check's queue: results whose `check_state` is `pending`,
//! and the outcome of each check, written with its `card_checked` event.

use async_trait::async_trait;
use serde_json::json;

use super::SqliteStore;
use super::events::append_event;
use crate::{CheckJob, CheckOutcome, CheckStore, Result, StoredEvent};

#[async_trait]
impl CheckStore for SqliteStore {
    async fn pending_checks(&self, limit: usize, skip: &[i64]) -> Result<Vec<CheckJob>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        // Oldest first by card id (ids only grow), which the partial index
        // on pending checks serves without a sort, however many results
        // the database holds.
        type Row = (
            i64,
            String,
            String,
            String,
            Option<String>,
            Option<String>,
            String,
            String,
            String,
        );
        let rows: Vec<Row> =
            sqlx::query_as(
                "SELECT r.card_id, b.id, b.name, c.stored_name, c.back_stored_name, b.ocr_lang, b.fields, r.result, r.flags \
                 FROM results r JOIN cards c ON c.id = r.card_id JOIN batches b ON b.id = r.batch_id \
                 WHERE r.check_state = 'pending' ORDER BY r.card_id LIMIT ?",
            )
            .bind((limit + skip.len()) as i64)
            .fetch_all(&self.read)
            .await?;
        let mut jobs = Vec::with_capacity(limit);
        for (
            card_id,
            batch_id,
            batch_name,
            stored_name,
            back_stored_name,
            ocr_lang,
            fields,
            result,
            flags,
        ) in rows
        {
            if skip.contains(&card_id) {
                continue;
            }
            jobs.push(CheckJob {
                card_id,
                batch_id,
                batch_name,
                stored_name,
                back_stored_name,
                ocr_lang,
                fields: serde_json::from_str(&fields)?,
                result: serde_json::from_str(&result)?,
                flags: serde_json::from_str(&flags)?,
            });
            if jobs.len() == limit {
                break;
            }
        }
        Ok(jobs)
    }

    async fn record_check(
        &self,
        card_id: i64,
        outcome: CheckOutcome<'_>,
    ) -> Result<Option<(String, StoredEvent)>> {
        let mut tx = self.write.begin().await?;
        let batch_id: Option<String> = match outcome {
            CheckOutcome::Done { text, flags } => sqlx::query_scalar(
                "UPDATE results SET check_state = 'done', text = ?, flags = ?, check_note = NULL \
                     WHERE card_id = ? AND check_state = 'pending' RETURNING batch_id",
            )
            .bind(text)
            .bind(serde_json::to_string(flags)?)
            .bind(card_id)
            .fetch_optional(&mut *tx)
            .await?,
            CheckOutcome::Skipped { note, text } => {
                sqlx::query_scalar(
                    "UPDATE results SET check_state = 'skipped', check_note = ?, text = ? \
                     WHERE card_id = ? AND check_state = 'pending' RETURNING batch_id",
                )
                .bind(note)
                .bind(text)
                .bind(card_id)
                .fetch_optional(&mut *tx)
                .await?
            }
        };
        let Some(batch_id) = batch_id else {
            return Ok(None);
        };
        let body = match outcome {
            CheckOutcome::Done { flags, .. } => {
                json!({"card_id": card_id, "check": "done", "flags": flags})
            }
            CheckOutcome::Skipped { note, .. } => {
                json!({"card_id": card_id, "check": "skipped", "note": note})
            }
        };
        let event = append_event(&mut tx, &batch_id, "card_checked", body).await?;
        tx.commit().await?;
        Ok(Some((batch_id, event)))
    }
}
