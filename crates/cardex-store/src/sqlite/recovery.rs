//! Where failed cards' images go, and the start-up repair that makes a
//! crash at any instant harmless: cards caught mid-flight are queued again,
//! and failed cards whose image a crash left outside `_errors/` are
//! quarantined. The file work itself is the layout's ([`crate::DataDir`]).
//!
//! Only failed cards can have a misplaced image: a failure commits before
//! its image moves, and retry-failed moves images back before its cards
//! leave `failed`. So start-up looks at failed cards only and does not
//! touch the files of the whole archive.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{SqliteStore, now};
use crate::Result;

/// Failed cards looked at per query during repair.
const PAGE: i64 = 500;

impl SqliteStore {
    /// Start-up recovery; returns how many cards were queued again. The
    /// SQLite store serves one process (the data dir is locked), so every
    /// card still `processing` was held by a process that is gone.
    pub(super) async fn recover(&self) -> Result<u64> {
        let released = sqlx::query("UPDATE cards SET state = 'pending' WHERE state = 'processing'")
            .execute(&self.write)
            .await?
            .rows_affected();
        self.requarantine(None).await?;
        Ok(released)
    }

    /// Moves the image (both, of a two-sided card) of a failed card into
    /// `_errors/`, each with its sidecar.
    pub(super) async fn quarantine(&self, card_id: i64) -> Result<()> {
        #[allow(clippy::type_complexity)]
        let (name, stored, original, back, back_original, error, batch_id): (
            String,
            String,
            String,
            Option<String>,
            Option<String>,
            Option<String>,
            String,
        ) = sqlx::query_as(
            "SELECT b.name, c.stored_name, c.original_name, c.back_stored_name, c.back_original_name, \
             c.error, b.id FROM cards c JOIN batches b ON b.id = c.batch_id WHERE c.id = ?",
        )
        .bind(card_id)
        .fetch_one(&self.read)
        .await?;
        let error = error
            .as_deref()
            .map(serde_json::from_str::<Value>)
            .transpose()?;
        let sides = [
            (Some(stored), Some(original), "front"),
            (back, back_original, "back"),
        ];
        for (stored, original, side) in sides {
            let Some(stored) = stored else { continue };
            let sidecar = json!({
                "card_id": card_id,
                "batch_id": batch_id,
                "original_name": original,
                "stored_name": stored,
                "side": side,
                "error": error,
                "failed_at": now(),
            });
            self.dir.quarantine(&name, &stored, sidecar).await?;
        }
        Ok(())
    }

    /// Quarantines the images of failed cards that are not (fully) in
    /// `_errors/` yet: of all batches, or of one.
    pub(super) async fn requarantine(&self, batch_id: Option<&str>) -> Result<()> {
        let mut after = 0i64;
        loop {
            // A two-sided card's two images are looked at both: a
            // retry-failed cut short can leave either one outside.
            let page: Vec<(i64, String, Option<String>, String)> = sqlx::query_as(
                "SELECT c.id, c.stored_name, c.back_stored_name, b.name FROM cards c \
                 JOIN batches b ON b.id = c.batch_id \
                 WHERE c.state = 'failed' AND b.files_ready = 1 AND (?1 IS NULL OR c.batch_id = ?1) AND c.id > ?2 \
                 ORDER BY c.id LIMIT ?3",
            )
            .bind(batch_id)
            .bind(after)
            .bind(PAGE)
            .fetch_all(&self.read)
            .await?;
            let Some(last) = page.last() else { break };
            after = last.0;
            // One look at the disk per batch of the page, not per card.
            let mut by_batch: BTreeMap<&str, Vec<String>> = BTreeMap::new();
            for (_, front, back, name) in &page {
                let images = by_batch.entry(name).or_default();
                images.push(front.clone());
                images.extend(back.clone());
            }
            for (name, stored) in by_batch {
                let misplaced = self.dir.misplaced_failures(name, stored).await?;
                let ids = page.iter().filter(|(_, front, back, n)| {
                    n == name
                        && (misplaced.contains(front)
                            || back.as_ref().is_some_and(|b| misplaced.contains(b)))
                });
                for (id, ..) in ids {
                    self.quarantine(*id).await?;
                }
            }
        }
        Ok(())
    }
}
