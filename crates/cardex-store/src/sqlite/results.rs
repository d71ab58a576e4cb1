//! What came out of a batch: result rows for exports, failed cards with
//! their error history.

use async_trait::async_trait;
use serde_json::Value;
use sqlx::FromRow;

use super::SqliteStore;
use super::states::batch_state;
use crate::{FailedCard, Quality, Result, ResultRow, ResultStore, Review, RowBack};

#[async_trait]
impl ResultStore for SqliteStore {
    /// Up to `limit` result rows with `card_id > after`, in card order.
    async fn results_page(&self, batch_id: &str, after: i64, limit: i64) -> Result<Vec<ResultRow>> {
        let rows: Vec<RowRecord> = sqlx::query_as(&format!(
            "{ROW_SELECT} WHERE c.batch_id = ? AND c.id > ? ORDER BY c.id LIMIT ?"
        ))
        .bind(batch_id)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        rows.into_iter().map(RowRecord::into_row).collect()
    }

    /// The failed cards of a batch with their error history.
    async fn failed_cards(&self, batch_id: &str) -> Result<Vec<FailedCard>> {
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

    async fn batch_quality(&self, batch_id: &str) -> Result<Quality> {
        let mut tx = self.read.begin().await?;
        batch_state(&mut tx, batch_id).await?;
        let (done, flagged, empty, pending, skipped): (i64, i64, i64, i64, i64) = sqlx::query_as(
            "SELECT COUNT(*), \
               COUNT(*) FILTER (WHERE flags <> '[]'), \
               COUNT(*) FILTER (WHERE EXISTS (SELECT 1 FROM json_each(r.flags) f \
                                             WHERE json_extract(f.value, '$.code') = 'empty')), \
               COUNT(*) FILTER (WHERE check_state = 'pending'), \
               COUNT(*) FILTER (WHERE check_state = 'skipped') \
             FROM results r WHERE r.batch_id = ?",
        )
        .bind(batch_id)
        .fetch_one(&mut *tx)
        .await?;
        let filled: Vec<(String, i64)> = sqlx::query_as(
            "SELECT j.key, SUM(CASE WHEN j.type = 'null' THEN 0 \
                                    WHEN j.type = 'text' AND trim(j.value) = '' THEN 0 \
                                    WHEN j.type = 'array' AND json_array_length(j.value) = 0 THEN 0 \
                                    ELSE 1 END) \
             FROM results r, json_each(r.result) j WHERE r.batch_id = ? GROUP BY j.key",
        )
        .bind(batch_id)
        .fetch_all(&mut *tx)
        .await?;
        let by_code: Vec<(String, i64)> = sqlx::query_as(
            "SELECT json_extract(f.value, '$.code'), COUNT(DISTINCT r.card_id) \
             FROM results r, json_each(r.flags) f WHERE r.batch_id = ? GROUP BY 1",
        )
        .bind(batch_id)
        .fetch_all(&mut *tx)
        .await?;
        let confident: Vec<(String, f64)> = sqlx::query_as(
            "SELECT j.key, AVG(j.value) FROM results r, json_each(r.confidence) j \
             WHERE r.batch_id = ? AND j.type IN ('real', 'integer') GROUP BY j.key",
        )
        .bind(batch_id)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let share = |n: i64| {
            if done > 0 {
                n as f64 / done as f64
            } else {
                0.0
            }
        };
        Ok(Quality {
            flagged_cards: flagged as u64,
            empty_cards: empty as u64,
            done_cards: done as u64,
            flags: by_code.into_iter().map(|(c, n)| (c, n as u64)).collect(),
            checks_pending: pending as u64,
            checks_skipped: skipped as u64,
            fill_rate: filled.into_iter().map(|(k, n)| (k, share(n))).collect(),
            mean_confidence: confident.into_iter().collect(),
        })
    }
}

/// A result row as selected by [`ROW_SELECT`].
#[derive(FromRow)]
pub(super) struct RowRecord {
    id: i64,
    original_name: String,
    source_name: String,
    page: Option<i64>,
    state: String,
    result: Option<String>,
    error: Option<String>,
    flags: Option<String>,
    confidence: Option<String>,
    text: Option<String>,
    check_state: Option<String>,
    check_note: Option<String>,
    usage: Option<String>,
    provenance: Option<String>,
    review_status: Option<String>,
    corrections: Option<String>,
    note: Option<String>,
    reviewed_at: Option<String>,
    back_stored_name: Option<String>,
    back_original_name: Option<String>,
    back_source_name: Option<String>,
    back_page: Option<i64>,
}

/// Every card with its result (if any) and review (if any); a failed
/// card's usage is kept with its error. Add `WHERE`, `ORDER BY`.
pub(super) const ROW_SELECT: &str = "SELECT c.id, c.original_name, c.source_name, c.page, c.state, r.result, c.error, r.flags, \
       r.confidence, r.text, r.check_state, r.check_note, \
       COALESCE(r.usage, json_extract(c.error, '$.usage')) AS usage, r.provenance, \
       v.status AS review_status, v.corrections, v.note, v.updated_at AS reviewed_at, \
       c.back_stored_name, c.back_original_name, c.back_source_name, c.back_page \
     FROM cards c LEFT JOIN results r ON r.card_id = c.id LEFT JOIN reviews v ON v.card_id = c.id";

impl RowRecord {
    pub(super) fn into_row(self) -> Result<ResultRow> {
        let review = match (self.review_status, self.reviewed_at) {
            (Some(status), Some(at)) => Some(Review {
                status: parse_review_status(&status)?,
                corrections: serde_json::from_str(self.corrections.as_deref().unwrap_or("{}"))?,
                note: self.note,
                at,
            }),
            _ => None,
        };
        // A card has a back once its back's file is stored, as
        // `Card::back` has it.
        let back = self.back_stored_name.map(|_| {
            let original_name = self.back_original_name.unwrap_or_default();
            RowBack {
                source_name: self
                    .back_source_name
                    .unwrap_or_else(|| original_name.clone()),
                original_name,
                page: self.back_page,
            }
        });
        Ok(ResultRow {
            back,
            card_id: self.id,
            original_name: self.original_name,
            source_name: self.source_name,
            page: self.page,
            state: self.state,
            result: self
                .result
                .as_deref()
                .map(serde_json::from_str)
                .transpose()?,
            error: self
                .error
                .as_deref()
                .map(serde_json::from_str)
                .transpose()?,
            flags: match self.flags {
                Some(f) => serde_json::from_str(&f)?,
                None => Vec::new(),
            },
            confidence: match self.confidence {
                Some(c) => serde_json::from_str(&c)?,
                None => Value::Object(Default::default()),
            },
            text: self.text,
            check: self.check_state,
            check_note: self.check_note,
            usage: self
                .usage
                .as_deref()
                .map(serde_json::from_str)
                .transpose()?,
            provenance: self
                .provenance
                .as_deref()
                .map(serde_json::from_str)
                .transpose()?,
            review,
        })
    }
}

/// A stored review status, or a corrupt-data error.
pub(super) fn parse_review_status(s: &str) -> Result<cardex_core::ReviewStatus> {
    cardex_core::ReviewStatus::parse(s).ok_or_else(|| {
        crate::StoreError::Db(sqlx::Error::Decode(
            format!("unknown review status {s:?}").into(),
        ))
    })
}
