//! Cards: adding uploaded images to an open batch, listing and removing them.

use std::path::PathBuf;

use async_trait::async_trait;
use cardex_core::CardState;
use sqlx::FromRow;

use super::states::{batch_state, locked, parse_card_state};
use super::{SqliteStore, now};
use crate::{Card, CardStore, NewCard, Result, StoreError};

#[derive(FromRow)]
struct CardRow {
    id: i64,
    original_name: String,
    source_name: String,
    page: Option<i64>,
    stored_name: String,
    size_bytes: i64,
    sha256: String,
    format: String,
    width: i64,
    height: i64,
    state: String,
    created_at: String,
}

const CARD_COLUMNS: &str = "id, original_name, source_name, page, stored_name, size_bytes, sha256, format, width, height, \
     state, created_at";

impl CardRow {
    fn into_card(self) -> Result<Card> {
        Ok(Card {
            state: parse_card_state(&self.state)?,
            id: self.id,
            original_name: self.original_name,
            source_name: self.source_name,
            page: self.page,
            stored_name: self.stored_name,
            size_bytes: self.size_bytes,
            sha256: self.sha256,
            format: self.format,
            width: self.width,
            height: self.height,
            created_at: self.created_at,
        })
    }
}

#[async_trait]
impl CardStore for SqliteStore {
    /// Records an image already sitting in the batch's staging dir under
    /// `card.stored_name`. Refused when the batch is locked or already holds
    /// the same content; the caller then removes the file.
    async fn add_card(&self, batch_id: &str, card: &NewCard) -> Result<Card> {
        let mut tx = self.write.begin().await?;
        let state = batch_state(&mut tx, batch_id).await?;
        if state.is_locked() {
            return Err(locked(state));
        }
        let twin: Option<(i64, String)> = sqlx::query_as(
            "SELECT id, original_name FROM cards WHERE batch_id = ? AND sha256 = ? LIMIT 1",
        )
        .bind(batch_id)
        .bind(&card.sha256)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some((id, name)) = twin {
            return Err(StoreError::conflict(
                "duplicate_image",
                format!("the same image is already in this batch as card {id} ({name:?})"),
            ));
        }
        let now = now();
        let row: CardRow = sqlx::query_as(&format!(
            "INSERT INTO cards (batch_id, original_name, source_name, page, stored_name, size_bytes, \
             sha256, format, width, height, state, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             RETURNING {CARD_COLUMNS}"
        ))
        .bind(batch_id)
        .bind(&card.original_name)
        .bind(&card.source_name)
        .bind(card.page)
        .bind(&card.stored_name)
        .bind(card.size_bytes)
        .bind(&card.sha256)
        .bind(&card.format)
        .bind(card.width)
        .bind(card.height)
        .bind(CardState::Uploaded.as_str())
        .bind(&now)
        .bind(&now)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        row.into_card()
    }

    /// The cards of a batch in upload order.
    async fn list_cards(&self, batch_id: &str) -> Result<Vec<Card>> {
        let mut conn = self.read.acquire().await?;
        batch_state(&mut conn, batch_id).await?;
        let rows: Vec<CardRow> = sqlx::query_as(&format!(
            "SELECT {CARD_COLUMNS} FROM cards WHERE batch_id = ? ORDER BY id"
        ))
        .bind(batch_id)
        .fetch_all(&mut *conn)
        .await?;
        rows.into_iter().map(CardRow::into_card).collect()
    }

    /// One card of a batch.
    async fn get_card(&self, batch_id: &str, card_id: i64) -> Result<Card> {
        let row: CardRow = sqlx::query_as(&format!(
            "SELECT {CARD_COLUMNS} FROM cards WHERE batch_id = ? AND id = ?"
        ))
        .bind(batch_id)
        .bind(card_id)
        .fetch_optional(&self.read)
        .await?
        .ok_or(StoreError::NotFound { what: "card" })?;
        row.into_card()
    }

    /// Where a card's image is now: the staging dir while the batch is open,
    /// `_errors/` while the card is failed, the batch dir otherwise.
    async fn card_path(&self, batch_id: &str, card_id: i64) -> Result<PathBuf> {
        let (name, batch_state, stored, card_state): (String, String, String, String) =
            sqlx::query_as(
                "SELECT b.name, b.state, c.stored_name, c.state FROM cards c \
                 JOIN batches b ON b.id = c.batch_id WHERE c.batch_id = ? AND c.id = ?",
            )
            .bind(batch_id)
            .bind(card_id)
            .fetch_optional(&self.read)
            .await?
            .ok_or(StoreError::NotFound { what: "card" })?;
        Ok(if batch_state == "open" {
            self.dir.staged_image(batch_id, &stored)
        } else if card_state == "failed" {
            self.dir.quarantined_image(&name, &stored)
        } else {
            self.dir.batch_image(&name, &stored)
        })
    }

    /// Removes a card and its image from an open batch.
    async fn delete_card(&self, batch_id: &str, card_id: i64) -> Result<()> {
        let mut tx = self.write.begin().await?;
        let state = batch_state(&mut tx, batch_id).await?;
        if state.is_locked() {
            return Err(locked(state));
        }
        let stored: String = sqlx::query_scalar(
            "DELETE FROM cards WHERE batch_id = ? AND id = ? RETURNING stored_name",
        )
        .bind(batch_id)
        .bind(card_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound { what: "card" })?;
        tx.commit().await?;
        self.dir
            .remove_file(self.dir.staged_image(batch_id, &stored))
            .await?;
        Ok(())
    }
}
