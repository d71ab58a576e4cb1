//! The store's interface, by resource: batches, cards, the runner's
//! claims and commits with their events, results, templates. The runner
//! and the server hold an `Arc<dyn Store>` ([`SharedStore`]) and know
//! nothing of the database behind it; [`crate::SqliteStore`] is the one
//! implementation today.
//!
//! # What an implementation must guarantee
//!
//! These are what crash safety, the progress stream and the exports rest
//! on; a second backend (PostgreSQL, say) must give every one of them.
//!
//! - **One result per card.** A card reaches `done` exactly once, and its
//!   result row is written in the same transaction as that state. A commit
//!   for a card that is no longer `processing` (released, its batch
//!   deleted) changes nothing.
//! - **State and outcome together.** A card's state, its result or error,
//!   its event and, when it was the batch's last card, the batch's end and
//!   that `state` event commit in one transaction: no reader ever sees one
//!   without the others.
//! - **Event numbers without gaps.** Each batch's events are numbered
//!   1, 2, 3… in commit order, never reused, across restarts; a reader
//!   that asks for `seq > n` gets every later event exactly once.
//! - **Claims are exclusive.** A `pending` card is handed to one claimer
//!   only. The SQLite store serves one process (the data dir is locked,
//!   [`crate::DataDirLock`]), so it hands cards back simply: at open,
//!   every card left `processing` becomes `pending` again. A store shared
//!   by several processes must instead give each claim a lease (an owner
//!   and an expiry, `FOR UPDATE SKIP LOCKED`) and reclaim only expired
//!   leases, never another live process's cards.
//! - **Files follow states.** A failed card's image is in `_errors/` with
//!   its sidecar; every other started card's image is in the batch dir.
//!   The state commits first and the move follows; whatever a crash
//!   leaves in between is put right when the store opens.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use cardex_core::{BatchState, Field};

use crate::Result;
use crate::layout::DataDir;
use crate::model::{
    Batch, Card, CardDetail, CardFailure, CheckJob, CheckOutcome, ClaimedCard, Committed,
    Completion, FailedCard, GroupCommitted, NewBatch, NewCard, NewReview, Quality, QueueCursor,
    QueueEntry, QueueFilter, Reason, ResultRow, StoredEvent, Template,
};

/// The store as the runner and the server share it.
pub type SharedStore = Arc<dyn Store>;

/// Everything cardex keeps: all resources, and the data dir's files.
#[async_trait]
pub trait Store:
    BatchStore
    + CardStore
    + RunStore
    + EventStore
    + ResultStore
    + CheckStore
    + ReviewStore
    + TemplateStore
    + std::fmt::Debug
{
    /// Where the images live; every file path is built by it.
    fn layout(&self) -> &DataDir;

    /// Flushes and closes the database and frees the data dir for another
    /// process; call once, at the end.
    async fn close(&self);
}

/// Batches: their life from creation to deletion.
#[async_trait]
pub trait BatchStore: Send + Sync {
    /// Creates an open batch; with a template, the batch gets a copy of its fields.
    async fn create_batch(&self, batch: &NewBatch<'_>) -> Result<Batch>;

    /// One batch with its counts, read at one instant (so `last_seq` and
    /// the counts always agree).
    async fn get_batch(&self, id: &str) -> Result<Batch>;

    /// Every batch, newest first, with counts.
    async fn list_batches(&self) -> Result<Vec<Batch>>;

    /// Deletes a batch, its rows and its files. Refused while running.
    async fn delete_batch(&self, id: &str) -> Result<()>;

    /// Replaces the field list of an open batch. The caller validates it.
    async fn set_fields(&self, id: &str, fields: &[Field]) -> Result<Batch>;

    /// Sets the budget of a batch that may still read cards (not
    /// completed nor cancelled); a conflict otherwise.
    async fn set_budget(&self, id: &str, budget: cardex_core::Budget) -> Result<Batch>;

    /// Keeps the latest estimate made for a batch (the API's JSON).
    async fn set_estimate(&self, id: &str, estimate: &serde_json::Value) -> Result<()>;

    /// Locks an open batch, queues its cards and moves their images from
    /// the staging dir into the batch dir (crash-safe: a start cut short
    /// is finished when the store opens). A two-sided batch with cards of
    /// one side only is refused (`unpaired_images`) unless
    /// `accept_singles`: those cards are then read as they are.
    async fn start_batch(&self, id: &str, accept_singles: bool) -> Result<(Batch, StoredEvent)>;

    /// Moves a batch between states if it is in one of `from`; returns the
    /// `state` event (and, when a resumed batch has nothing left to read,
    /// the event of its end), or a conflict naming the current state.
    async fn transition(
        &self,
        batch_id: &str,
        from: &[BatchState],
        to: BatchState,
        reason: Option<Reason<'_>>,
    ) -> Result<Vec<StoredEvent>>;

    /// Resumes every batch the system paused with reason `code` (the disk
    /// has room again, say); returns their `state` events.
    async fn resume_paused(&self, code: &str) -> Result<Vec<(String, StoredEvent)>>;

    /// Running batches as (id, engine), oldest first.
    async fn running_batches(&self) -> Result<Vec<(String, String)>>;
}

/// Cards of open batches: uploads, listing, removal.
#[async_trait]
pub trait CardStore: Send + Sync {
    /// Records an image already in the batch's staging dir under
    /// `card.stored_name`. Refused when the batch is locked or already
    /// holds the same content; the caller then removes the file.
    async fn add_card(&self, batch_id: &str, card: &NewCard) -> Result<Card>;

    /// The cards of a batch in upload order.
    async fn list_cards(&self, batch_id: &str) -> Result<Vec<Card>>;

    /// One card of a batch.
    async fn get_card(&self, batch_id: &str, card_id: i64) -> Result<Card>;

    /// Where a card's image is now: the staging dir while the batch is
    /// open, `_errors/` while the card is failed, the batch dir otherwise;
    /// of its front or of its back (not found when it has none).
    async fn card_path(
        &self,
        batch_id: &str,
        card_id: i64,
        side: cardex_core::Side,
    ) -> Result<PathBuf>;

    /// Removes a card and its image from an open batch.
    async fn delete_card(&self, batch_id: &str, card_id: i64) -> Result<()>;

    /// Takes back one image an upload added to card `card_id` of an open
    /// batch, found by its content: the card goes when it was the card's
    /// only image; of a paired card only that side goes, and the other
    /// waits for it again. For an upload that failed halfway.
    async fn remove_image(&self, batch_id: &str, card_id: i64, sha256: &str) -> Result<()>;
}

/// What the batch runner needs: claims, commits, failures, retries.
#[async_trait]
pub trait RunStore: Send + Sync {
    /// Claims up to `limit` pending cards of running batches that use
    /// `engine`, oldest batch first, marking them `processing`.
    async fn claim_cards(&self, engine: &str, limit: usize) -> Result<Vec<ClaimedCard>>;

    /// Commits many cards' results, `done` states and `card_done` events
    /// in one transaction, ending each batch whose last card this was.
    /// Cards no longer `processing` are left alone.
    async fn complete_cards(&self, items: &[Completion<'_>]) -> Result<GroupCommitted>;

    /// Commits a card's failure (state, error, history, `card_failed`
    /// event), then quarantines its image in `_errors/` with a sidecar.
    /// `None` when the card was no longer `processing`.
    async fn fail_card(
        &self,
        card: &ClaimedCard,
        failure: &CardFailure,
    ) -> Result<Option<Committed>>;

    /// Puts a claimed card back in line (shutdown, a paused batch): not an
    /// attempt, not a failure.
    async fn release_card(&self, card_id: i64) -> Result<()>;

    /// Queues the failed cards of a finished or paused batch again, their
    /// images back out of `_errors/`, their errors kept as history.
    async fn retry_failed(&self, batch_id: &str) -> Result<StoredEvent>;
}

/// The per-batch event log behind the progress stream.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Events of a batch with `seq > since`, up to `limit`, oldest first.
    async fn events_after(
        &self,
        batch_id: &str,
        since: i64,
        limit: i64,
    ) -> Result<Vec<StoredEvent>>;

    /// The batch's state and last event number, read together.
    async fn batch_position(&self, batch_id: &str) -> Result<(BatchState, i64)>;
}

/// What came out of a batch, for exports and the errors list.
#[async_trait]
pub trait ResultStore: Send + Sync {
    /// Up to `limit` result rows with `card_id > after`, in card order.
    async fn results_page(&self, batch_id: &str, after: i64, limit: i64) -> Result<Vec<ResultRow>>;

    /// The failed cards of a batch with their error history.
    async fn failed_cards(&self, batch_id: &str) -> Result<Vec<FailedCard>>;

    /// The quality summary of a batch's results so far.
    async fn batch_quality(&self, batch_id: &str) -> Result<Quality>;
}

/// The cross-check's queue: model results waiting to be compared with the
/// card's own OCR text. The queue is the results themselves (their
/// `check` is `pending`), so it survives restarts and never overflows;
/// the cross-check catches up whenever it falls behind.
#[async_trait]
pub trait CheckStore: Send + Sync {
    /// Up to `limit` results waiting for their cross-check, oldest batch
    /// first, leaving out the cards in `skip` (being checked already).
    async fn pending_checks(&self, limit: usize, skip: &[i64]) -> Result<Vec<CheckJob>>;

    /// Records a cross-check's outcome with its `card_checked` event, in
    /// one transaction; `None` when the result was no longer waiting for
    /// one (its batch deleted, say).
    async fn record_check(
        &self,
        card_id: i64,
        outcome: CheckOutcome<'_>,
    ) -> Result<Option<(String, StoredEvent)>>;
}

/// A person's reviews of cards (DESIGN §12): a layer over the machine's
/// values, which never change, with a history.
#[async_trait]
pub trait ReviewStore: Send + Sync {
    /// One card of a batch with its result, review and review history.
    async fn card_detail(&self, batch_id: &str, card_id: i64) -> Result<CardDetail>;

    /// Records a review of a done or failed card (a conflict for others),
    /// appends it to the history and commits a durable `card_reviewed`
    /// event, all in one transaction; returns the card as it is now, and
    /// the event.
    async fn record_review(
        &self,
        batch_id: &str,
        card_id: i64,
        review: &NewReview<'_>,
    ) -> Result<(CardDetail, StoredEvent)>;

    /// Up to `limit` cards to review, most in need first (failed, then
    /// flagged, then least confident, then by id), after `after`.
    async fn review_queue(
        &self,
        batch_id: &str,
        filter: QueueFilter,
        after: Option<QueueCursor>,
        limit: i64,
    ) -> Result<Vec<QueueEntry>>;
}

/// Saved field lists.
#[async_trait]
pub trait TemplateStore: Send + Sync {
    /// Saves a new template; its name must be unique, ignoring case.
    async fn create_template(&self, name: &str, fields: &[Field]) -> Result<Template>;

    /// Every template, by name.
    async fn list_templates(&self) -> Result<Vec<Template>>;

    /// One template.
    async fn get_template(&self, id: &str) -> Result<Template>;

    /// Renames a template and replaces its fields.
    async fn update_template(&self, id: &str, name: &str, fields: &[Field]) -> Result<Template>;

    /// Deletes a template; batches made from it keep their copy.
    async fn delete_template(&self, id: &str) -> Result<()>;
}
