//! Reviews (DESIGN §12): a person's status and corrections for a card,
//! kept apart from the machine's result, with every review in a history
//! and a durable `card_reviewed` event in the same transaction.

use async_trait::async_trait;
use cardex_core::review::overlay;
use serde_json::{Map, Value, json};
use sqlx::FromRow;

use super::events::append_event;
use super::results::{ROW_SELECT, RowRecord, parse_review_status};
use super::states::{batch_state, parse_card_state};
use super::{SqliteStore, now};
use crate::{
    CardDetail, CardStore, NewReview, QueueCursor, QueueEntry, QueueFilter, Result, Review,
    ReviewStore, StoreError, StoredEvent,
};

#[async_trait]
impl ReviewStore for SqliteStore {
    async fn card_detail(&self, batch_id: &str, card_id: i64) -> Result<CardDetail> {
        let card = self.get_card(batch_id, card_id).await?;
        let row: RowRecord =
            sqlx::query_as(&format!("{ROW_SELECT} WHERE c.batch_id = ? AND c.id = ?"))
                .bind(batch_id)
                .bind(card_id)
                .fetch_optional(&self.read)
                .await?
                .ok_or(StoreError::NotFound { what: "card" })?;
        let history: Vec<(String, String, Option<String>, String)> = sqlx::query_as(
            "SELECT status, corrections, note, at FROM review_history WHERE card_id = ? ORDER BY id",
        )
        .bind(card_id)
        .fetch_all(&self.read)
        .await?;
        let history = history
            .into_iter()
            .map(|(status, corrections, note, at)| {
                Ok(Review {
                    status: parse_review_status(&status)?,
                    corrections: serde_json::from_str(&corrections)?,
                    note,
                    at,
                })
            })
            .collect::<Result<_>>()?;
        Ok(CardDetail {
            card,
            row: row.into_row()?,
            history,
        })
    }

    async fn record_review(
        &self,
        batch_id: &str,
        card_id: i64,
        review: &NewReview<'_>,
    ) -> Result<(CardDetail, StoredEvent)> {
        let mut tx = self.write.begin().await?;
        batch_state(&mut tx, batch_id).await?;
        let found: Option<(String, Option<String>, Option<String>, Option<String>)> =
            sqlx::query_as(
                "SELECT c.state, r.result, v.corrections, v.note FROM cards c \
                 LEFT JOIN results r ON r.card_id = c.id LEFT JOIN reviews v ON v.card_id = c.id \
                 WHERE c.batch_id = ? AND c.id = ?",
            )
            .bind(batch_id)
            .bind(card_id)
            .fetch_optional(&mut *tx)
            .await?;
        let (state, machine, kept, kept_note) =
            found.ok_or(StoreError::NotFound { what: "card" })?;
        let state = parse_card_state(&state)?;
        if !matches!(
            state,
            cardex_core::CardState::Done | cardex_core::CardState::Failed
        ) {
            return Err(StoreError::conflict(
                "card_not_finished",
                format!("the card is {state}; a card can be reviewed once it is done or failed"),
            ));
        }
        let corrections: Map<String, Value> = match review.corrections {
            Some(c) => c.clone(),
            None => serde_json::from_str(kept.as_deref().unwrap_or("{}"))?,
        };
        let note = match review.note {
            Some(n) => Some(n.to_owned()).filter(|n| !n.trim().is_empty()),
            None => kept_note,
        };
        let machine: Option<Map<String, Value>> =
            machine.as_deref().map(serde_json::from_str).transpose()?;
        let at = now();
        let status = review.status.as_str();
        let corrections_json = serde_json::to_string(&corrections)?;
        sqlx::query(
            "INSERT INTO reviews (card_id, batch_id, status, corrections, note, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
             ON CONFLICT (card_id) DO UPDATE SET status = ?3, corrections = ?4, note = ?5, updated_at = ?6",
        )
        .bind(card_id)
        .bind(batch_id)
        .bind(status)
        .bind(&corrections_json)
        .bind(&note)
        .bind(&at)
        .execute(&mut *tx)
        .await?;
        // The history keeps the review as it now stands.
        sqlx::query(
            "INSERT INTO review_history (card_id, batch_id, status, corrections, note, at) \
             SELECT card_id, batch_id, status, corrections, note, updated_at FROM reviews \
             WHERE card_id = ?",
        )
        .bind(card_id)
        .execute(&mut *tx)
        .await?;
        let values = overlay(machine.as_ref(), &corrections);
        let event = append_event(
            &mut tx,
            batch_id,
            "card_reviewed",
            json!({
                "card_id": card_id,
                "review": {"status": status, "corrections": corrections, "note": note, "at": at},
                "values": values,
            }),
        )
        .await?;
        tx.commit().await?;
        Ok((self.card_detail(batch_id, card_id).await?, event))
    }

    async fn review_queue(
        &self,
        batch_id: &str,
        filter: QueueFilter,
        after: Option<QueueCursor>,
        limit: i64,
    ) -> Result<Vec<QueueEntry>> {
        #[derive(FromRow)]
        struct Row {
            id: i64,
            original_name: String,
            state: String,
            status: String,
            flags: i64,
            min_confidence: Option<f64>,
            tier: i64,
            conf: f64,
        }
        let only = match filter {
            QueueFilter::Unreviewed => "COALESCE(v.status, 'unreviewed') = 'unreviewed'",
            QueueFilter::NeedsAttention => "v.status = 'needs_attention'",
            QueueFilter::Flagged => "json_array_length(r.flags) > 0",
            QueueFilter::Failed => "c.state = 'failed'",
            QueueFilter::All => "1",
        };
        let mut conn = self.read.acquire().await?;
        batch_state(&mut conn, batch_id).await?;
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT c.id, c.original_name, c.state, COALESCE(v.status, 'unreviewed') AS status, \
               COALESCE(json_array_length(r.flags), 0) AS flags, r.min_confidence, \
               c.queue_tier AS tier, c.queue_conf AS conf \
             FROM cards c LEFT JOIN results r ON r.card_id = c.id \
               LEFT JOIN reviews v ON v.card_id = c.id \
             WHERE c.batch_id = ?1 AND c.queue_tier IS NOT NULL AND {only} \
               AND (?2 IS NULL OR (c.queue_tier, c.queue_conf, c.id) > (?2, ?3, ?4)) \
             ORDER BY c.queue_tier, c.queue_conf, c.id LIMIT ?5"
        ))
        .bind(batch_id)
        .bind(after.map(|a| a.rank))
        .bind(after.map(|a| a.confidence))
        .bind(after.map(|a| a.card_id))
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(QueueEntry {
                    card_id: r.id,
                    original_name: r.original_name,
                    state: parse_card_state(&r.state)?,
                    status: parse_review_status(&r.status)?,
                    flags: r.flags.max(0) as u64,
                    min_confidence: r.min_confidence,
                    cursor: QueueCursor {
                        rank: r.tier,
                        confidence: r.conf,
                        card_id: r.id,
                    },
                })
            })
            .collect()
    }
}
