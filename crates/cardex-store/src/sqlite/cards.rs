//! Cards: adding uploaded images to an open batch, listing and removing them.
//!
//! In a two-sided batch (DESIGN §16) an image either starts a card or
//! becomes the back of one, as the batch's pairing says, in the same
//! transaction that records it: a card's row holds its front and, once
//! paired, its back (`back_*`). A back that comes before its front waits in
//! a row of its own (`side = 'back'`) and is turned into the card when the
//! front arrives.

use std::path::PathBuf;

use async_trait::async_trait;
use cardex_core::sides::side_of_name;
use cardex_core::{CardState, Pairing, Side};
use sqlx::{FromRow, SqliteConnection};

use super::states::{batch_state, locked, parse_card_state};
use super::{SqliteStore, now};
use crate::{Card, CardBack, CardStore, NewCard, Result, StoreError};

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
    side: Option<String>,
    back_original_name: Option<String>,
    back_source_name: Option<String>,
    back_page: Option<i64>,
    back_stored_name: Option<String>,
    back_size_bytes: Option<i64>,
    back_sha256: Option<String>,
    back_format: Option<String>,
    back_width: Option<i64>,
    back_height: Option<i64>,
}

const CARD_COLUMNS: &str = "id, original_name, source_name, page, stored_name, size_bytes, sha256, format, width, height, \
     state, created_at, side, back_original_name, back_source_name, back_page, back_stored_name, back_size_bytes, back_sha256, \
     back_format, back_width, back_height";

impl CardRow {
    fn into_card(self) -> Result<Card> {
        let back = match (self.back_stored_name, self.back_sha256) {
            (Some(stored_name), Some(sha256)) => Some(CardBack {
                source_name: self
                    .back_source_name
                    .or_else(|| self.back_original_name.clone())
                    .unwrap_or_default(),
                original_name: self.back_original_name.unwrap_or_default(),
                page: self.back_page,
                stored_name,
                sha256,
                size_bytes: self.back_size_bytes.unwrap_or_default(),
                format: self.back_format.unwrap_or_default(),
                width: self.back_width.unwrap_or_default(),
                height: self.back_height.unwrap_or_default(),
            }),
            _ => None,
        };
        Ok(Card {
            side: self.side.as_deref().and_then(Side::parse),
            back,
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
    /// `card.stored_name`: a new card, or in a two-sided batch the other
    /// side of one (the card is returned either way). Refused when the
    /// batch is locked or already holds the same content; the caller then
    /// removes the file.
    async fn add_card(&self, batch_id: &str, card: &NewCard) -> Result<Card> {
        let mut tx = self.write.begin().await?;
        let state = batch_state(&mut tx, batch_id).await?;
        if state.is_locked() {
            return Err(locked(state));
        }
        let twin: Option<(i64, String)> = sqlx::query_as(
            "SELECT id, original_name FROM cards WHERE batch_id = ?1 AND sha256 = ?2 \
             UNION ALL SELECT id, back_original_name FROM cards WHERE batch_id = ?1 AND back_sha256 = ?2 \
             LIMIT 1",
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
        let pairing: Option<String> =
            sqlx::query_scalar("SELECT pairing FROM batches WHERE id = ?")
                .bind(batch_id)
                .fetch_one(&mut *tx)
                .await?;
        let placed = match pairing.as_deref().and_then(Pairing::parse) {
            None => Placement::New {
                side: None,
                key: None,
            },
            Some(pairing) => place(&mut tx, batch_id, pairing, &card.original_name).await?,
        };
        let now = now();
        let id = match placed {
            Placement::New { side, key } => {
                sqlx::query_scalar(
                    "INSERT INTO cards (batch_id, original_name, source_name, page, stored_name, size_bytes, \
                     sha256, format, width, height, state, created_at, updated_at, side, pair_key) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                )
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
                .bind(side.map(Side::as_str))
                .bind(key)
                .fetch_one(&mut *tx)
                .await?
            }
            Placement::BackOf(id) => {
                sqlx::query(
                    "UPDATE cards SET back_original_name = ?, back_source_name = ?, back_page = ?, \
                     back_stored_name = ?, back_size_bytes = ?, back_sha256 = ?, back_format = ?, \
                     back_width = ?, back_height = ?, updated_at = ? WHERE id = ?",
                )
                .bind(&card.original_name)
                .bind(&card.source_name)
                .bind(card.page)
                .bind(&card.stored_name)
                .bind(card.size_bytes)
                .bind(&card.sha256)
                .bind(&card.format)
                .bind(card.width)
                .bind(card.height)
                .bind(&now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
                id
            }
            Placement::FrontOf(id) => {
                // The waiting back moves to the back columns; the front
                // takes the card's own.
                sqlx::query(
                    "UPDATE cards SET back_original_name = original_name, back_source_name = source_name, \
                     back_page = page, back_stored_name = stored_name, \
                     back_size_bytes = size_bytes, back_sha256 = sha256, back_format = format, \
                     back_width = width, back_height = height, \
                     original_name = ?, source_name = ?, page = ?, stored_name = ?, size_bytes = ?, \
                     sha256 = ?, format = ?, width = ?, height = ?, side = 'front', updated_at = ? \
                     WHERE id = ?",
                )
                .bind(&card.original_name)
                .bind(&card.source_name)
                .bind(card.page)
                .bind(&card.stored_name)
                .bind(card.size_bytes)
                .bind(&card.sha256)
                .bind(&card.format)
                .bind(card.width)
                .bind(card.height)
                .bind(&now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
                id
            }
        };
        let row: CardRow =
            sqlx::query_as(&format!("SELECT {CARD_COLUMNS} FROM cards WHERE id = ?"))
                .bind(id)
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
    async fn card_path(&self, batch_id: &str, card_id: i64, side: Side) -> Result<PathBuf> {
        let (name, batch_state, front, back, card_state): (
            String,
            String,
            String,
            Option<String>,
            String,
        ) = sqlx::query_as(
            "SELECT b.name, b.state, c.stored_name, c.back_stored_name, c.state FROM cards c \
             JOIN batches b ON b.id = c.batch_id WHERE c.batch_id = ? AND c.id = ?",
        )
        .bind(batch_id)
        .bind(card_id)
        .fetch_optional(&self.read)
        .await?
        .ok_or(StoreError::NotFound { what: "card" })?;
        let stored = match side {
            Side::Front => front,
            Side::Back => back.ok_or(StoreError::NotFound { what: "back" })?,
        };
        Ok(if batch_state == "open" {
            self.dir.staged_image(batch_id, &stored)
        } else if card_state == "failed" {
            self.dir.quarantined_image(&name, &stored)
        } else {
            self.dir.batch_image(&name, &stored)
        })
    }

    async fn remove_image(&self, batch_id: &str, card_id: i64, sha256: &str) -> Result<()> {
        let mut tx = self.write.begin().await?;
        let state = batch_state(&mut tx, batch_id).await?;
        if state.is_locked() {
            return Err(locked(state));
        }
        let (front, front_sha, back, back_sha): (String, String, Option<String>, Option<String>) =
            sqlx::query_as(
                "SELECT stored_name, sha256, back_stored_name, back_sha256 FROM cards \
                 WHERE batch_id = ? AND id = ?",
            )
            .bind(batch_id)
            .bind(card_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound { what: "card" })?;
        let removed = if back_sha.as_deref() == Some(sha256) {
            // The back goes; the front waits for it again.
            sqlx::query(
                "UPDATE cards SET back_original_name = NULL, back_source_name = NULL, back_page = NULL, \
                 back_stored_name = NULL, back_size_bytes = NULL, back_sha256 = NULL, back_format = NULL, \
                 back_width = NULL, back_height = NULL WHERE id = ?",
            )
            .bind(card_id)
            .execute(&mut *tx)
            .await?;
            back
        } else if front_sha != sha256 {
            return Err(StoreError::NotFound { what: "image" });
        } else if back.is_some() {
            // The front goes; the back waits for it again, as it did.
            sqlx::query(
                "UPDATE cards SET original_name = back_original_name, \
                 source_name = COALESCE(back_source_name, back_original_name), page = back_page, \
                 stored_name = back_stored_name, size_bytes = back_size_bytes, \
                 sha256 = back_sha256, format = back_format, width = back_width, height = back_height, \
                 side = 'back', back_original_name = NULL, back_source_name = NULL, back_page = NULL, \
                 back_stored_name = NULL, back_size_bytes = NULL, back_sha256 = NULL, back_format = NULL, \
                 back_width = NULL, back_height = NULL WHERE id = ?",
            )
            .bind(card_id)
            .execute(&mut *tx)
            .await?;
            Some(front)
        } else {
            sqlx::query("DELETE FROM cards WHERE id = ?")
                .bind(card_id)
                .execute(&mut *tx)
                .await?;
            Some(front)
        };
        tx.commit().await?;
        if let Some(stored) = removed {
            self.dir
                .remove_file(self.dir.staged_image(batch_id, &stored))
                .await?;
        }
        Ok(())
    }

    /// Removes a card and its image (both, for a two-sided card) from an
    /// open batch.
    async fn delete_card(&self, batch_id: &str, card_id: i64) -> Result<()> {
        let mut tx = self.write.begin().await?;
        let state = batch_state(&mut tx, batch_id).await?;
        if state.is_locked() {
            return Err(locked(state));
        }
        let (front, back): (String, Option<String>) = sqlx::query_as(
            "DELETE FROM cards WHERE batch_id = ? AND id = ? RETURNING stored_name, back_stored_name",
        )
        .bind(batch_id)
        .bind(card_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound { what: "card" })?;
        tx.commit().await?;
        // Both files are tried; the first failure is reported.
        let mut removed = Ok(());
        for stored in std::iter::once(front).chain(back) {
            let gone = self
                .dir
                .remove_file(self.dir.staged_image(batch_id, &stored))
                .await;
            removed = removed.and(gone);
        }
        removed?;
        Ok(())
    }
}

/// Where a new image of a two-sided batch goes.
enum Placement {
    /// A card of its own, with its side (if known) and pairing key.
    New {
        side: Option<Side>,
        key: Option<String>,
    },
    /// The back of this card, whose front is there.
    BackOf(i64),
    /// The front of this card, a back waiting for it.
    FrontOf(i64),
}

/// Finds the image's place in a two-sided batch paired by `pairing`.
async fn place(
    conn: &mut SqliteConnection,
    batch_id: &str,
    pairing: Pairing,
    name: &str,
) -> Result<Placement> {
    let front = || Placement::New {
        side: Some(Side::Front),
        key: None,
    };
    match pairing {
        Pairing::Order => {
            // The back of the latest card, if that has none yet.
            let latest: Option<(i64, Option<String>, Option<String>)> = sqlx::query_as(
                "SELECT id, side, back_stored_name FROM cards WHERE batch_id = ? ORDER BY id DESC LIMIT 1",
            )
            .bind(batch_id)
            .fetch_optional(&mut *conn)
            .await?;
            Ok(match latest {
                Some((id, Some(side), None)) if side == "front" => Placement::BackOf(id),
                _ => front(),
            })
        }
        Pairing::Name => {
            let Some((side, key)) = side_of_name(name) else {
                return Ok(front());
            };
            // The oldest card of the other side with the same key that
            // still waits for this one.
            let other = match side {
                Side::Front => "back",
                Side::Back => "front",
            };
            let waiting: Option<i64> = sqlx::query_scalar(
                "SELECT id FROM cards WHERE batch_id = ? AND pair_key = ? AND side = ? \
                 AND back_stored_name IS NULL ORDER BY id LIMIT 1",
            )
            .bind(batch_id)
            .bind(&key)
            .bind(other)
            .fetch_optional(&mut *conn)
            .await?;
            Ok(match (waiting, side) {
                (Some(id), Side::Back) => Placement::BackOf(id),
                (Some(id), Side::Front) => Placement::FrontOf(id),
                (None, side) => Placement::New {
                    side: Some(side),
                    key: Some(key),
                },
            })
        }
    }
}
