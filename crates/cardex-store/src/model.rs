//! The records the store takes and hands out. They are plain data: the
//! API's shapes (and their OpenAPI schemas) live in the server, which
//! builds them from these.

use cardex_core::{BatchState, Budget, CardState, Field, Flag, Pairing, Side, Usage};
use serde::Serialize;
use serde_json::Value;

/// A batch with its fields and card counts.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// 8 characters of lowercase base32; also the last part of `name`.
    pub id: String,
    /// `<custom>_<YYYY-MM-DD_HH-MM-SS>_<id>`.
    pub name: String,
    /// The lifecycle state.
    pub state: BatchState,
    /// Creation time, RFC 3339 UTC.
    pub created_at: String,
    /// When processing started, if it has.
    pub started_at: Option<String>,
    /// When processing last finished, if it has.
    pub finished_at: Option<String>,
    /// The engine that reads the cards (`ocr` or `vlm`).
    pub engine: String,
    /// The OCR engine's language(s) for this batch; the server's default
    /// when `None`.
    pub ocr_lang: Option<String>,
    /// The field schema, in order.
    pub fields: Vec<Field>,
    /// Cards per state.
    pub counts: Counts,
    /// Share of cards finished (done or failed), 0–100.
    pub percent: f64,
    /// Why the system paused the batch (bad API key, disk full), if it did.
    pub pause_reason: Option<String>,
    /// The same as a stable code (`engine_misconfigured`, `disk_full`, …).
    pub pause_code: Option<String>,
    /// The number of the batch's latest progress-stream event.
    pub last_seq: i64,
    /// What its cards cost so far, done and failed alike.
    pub usage: Usage,
    /// Its budget.
    pub budget: Budget,
    /// The last estimate made for it, as the API answered it.
    pub estimate: Option<Value>,
    /// For a batch of two-sided cards, how their images are paired;
    /// `None` for one-sided cards.
    pub two_sided: Option<Pairing>,
}

/// What a new batch is made of.
#[derive(Debug, Clone, Copy)]
pub struct NewBatch<'a> {
    /// Its name.
    pub name: &'a cardex_core::BatchName,
    /// The engine that will read it.
    pub engine: &'a str,
    /// A template whose fields it gets a copy of.
    pub template_id: Option<&'a str>,
    /// The OCR language(s), when not the server's default.
    pub ocr_lang: Option<&'a str>,
    /// Its budget.
    pub budget: Budget,
    /// Two-sided cards, paired so; `None` for one-sided cards.
    pub two_sided: Option<Pairing>,
}

impl<'a> NewBatch<'a> {
    /// A blank batch for `engine`, in the server's default OCR language.
    pub fn blank(name: &'a cardex_core::BatchName, engine: &'a str) -> Self {
        Self {
            name,
            engine,
            template_id: None,
            ocr_lang: None,
            budget: Budget::default(),
            two_sided: None,
        }
    }
}

/// Why the system moves a batch (pauses it, mostly): a stable code for
/// programs and words for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reason<'a> {
    /// Stable code, e.g. `disk_full`.
    pub code: &'a str,
    /// What happened and what to do, for people.
    pub message: &'a str,
}

/// How many cards of a batch are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// All cards.
    pub total: u64,
    /// Uploaded into an open batch.
    pub uploaded: u64,
    /// Waiting to be processed.
    pub pending: u64,
    /// Being processed now.
    pub processing: u64,
    /// Extracted.
    pub done: u64,
    /// Given up on; see the batch's errors.
    pub failed: u64,
    /// Reviewed and found right (DESIGN §12).
    pub verified: u64,
    /// Marked for another look.
    pub needs_attention: u64,
    /// With at least one correction.
    pub corrected: u64,
    /// In a two-sided batch, cards with one side only so far.
    pub unpaired: u64,
}

impl Counts {
    pub(crate) fn add(&mut self, state: CardState, n: u64, unpaired: u64) {
        self.total += n;
        self.unpaired += unpaired;
        match state {
            CardState::Uploaded => self.uploaded += n,
            CardState::Pending => self.pending += n,
            CardState::Processing => self.processing += n,
            CardState::Done => self.done += n,
            CardState::Failed => self.failed += n,
        }
    }

    /// Adds `n` reviews of `status`, `corrected` of them with corrections.
    pub(crate) fn add_reviews(&mut self, status: &str, n: u64, corrected: u64) {
        match status {
            "verified" => self.verified += n,
            "needs_attention" => self.needs_attention += n,
            _ => {}
        }
        self.corrected += corrected;
    }

    /// Share of cards finished, 0–100, rounded to one decimal.
    pub fn percent(&self) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        let finished = (self.done + self.failed) as f64;
        (finished * 1000.0 / self.total as f64).round() / 10.0
    }
}

/// One card image of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Card {
    /// Unique across the server.
    pub id: i64,
    /// The name shown for the card: the file name the client sent, or
    /// for a page of a multi-page file `<file> p. <page>`; kept for
    /// display and exports only.
    pub original_name: String,
    /// The name of the file the client sent (a page's PDF or TIFF).
    pub source_name: String,
    /// The page of `source_name` this card is, from 1; `None` for an
    /// ordinary single image.
    pub page: Option<i64>,
    /// The server-generated file name in the data dir.
    pub stored_name: String,
    /// File size.
    pub size_bytes: i64,
    /// Hex SHA-256 of the file.
    pub sha256: String,
    /// Detected image format (`jpeg`, `png`, `tiff`, `webp`, `gif`).
    pub format: String,
    /// Pixel width as stored (before EXIF rotation).
    pub width: i64,
    /// Pixel height as stored (before EXIF rotation).
    pub height: i64,
    /// The lifecycle state.
    pub state: CardState,
    /// Upload time, RFC 3339 UTC.
    pub created_at: String,
    /// In a two-sided batch, the side the card's own image is: `Back` only
    /// for a back still waiting for its front. `None` in a one-sided batch.
    pub side: Option<Side>,
    /// A two-sided card's back, once paired.
    pub back: Option<CardBack>,
}

/// The back of a two-sided card: its second image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardBack {
    /// The name it is shown by (see [`Card::original_name`]).
    pub original_name: String,
    /// The name of the file the client sent (a page's PDF or TIFF).
    pub source_name: String,
    /// Its page in `source_name`, from 1; `None` for a single image.
    pub page: Option<i64>,
    /// The server-generated file name in the data dir.
    pub stored_name: String,
    /// File size.
    pub size_bytes: i64,
    /// Hex SHA-256 of the file.
    pub sha256: String,
    /// Detected image format.
    pub format: String,
    /// Pixel width as stored.
    pub width: i64,
    /// Pixel height as stored.
    pub height: i64,
}

/// What an upload knows about a file before it becomes a card.
#[derive(Debug, Clone)]
pub struct NewCard {
    /// The name shown for the card (see [`Card::original_name`]).
    pub original_name: String,
    /// The client's file name.
    pub source_name: String,
    /// The page of `source_name`, from 1; `None` for a single image.
    pub page: Option<i64>,
    /// The generated name the file already has in the staging dir.
    pub stored_name: String,
    /// File size.
    pub size_bytes: i64,
    /// Hex SHA-256.
    pub sha256: String,
    /// Detected format.
    pub format: String,
    /// Pixel width.
    pub width: i64,
    /// Pixel height.
    pub height: i64,
}

/// A saved field list.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    /// 8 characters of lowercase base32.
    pub id: String,
    /// Unique, ignoring case.
    pub name: String,
    /// The fields, in order.
    pub fields: Vec<Field>,
    /// Creation time, RFC 3339 UTC.
    pub created_at: String,
    /// Last change, RFC 3339 UTC.
    pub updated_at: String,
}

/// A card handed to a worker.
#[derive(Debug, Clone)]
pub struct ClaimedCard {
    /// Card id.
    pub id: i64,
    /// Its batch.
    pub batch_id: String,
    /// The batch's folder name.
    pub batch_name: String,
    /// File name in the batch dir.
    pub stored_name: String,
    /// For a two-sided card, its back's file name in the batch dir.
    pub back_stored_name: Option<String>,
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
    /// What the attempts cost (counted in the batch's usage).
    pub usage: Usage,
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
    /// The batch's usage now, and its budget.
    pub spent: Spent,
}

/// A batch's usage just after a commit, beside its budget, so the runner
/// can pause it once the budget is reached.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Spent {
    /// The batch's usage so far.
    pub usage: Usage,
    /// Its budget.
    pub budget: Budget,
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
    /// Likely mistakes in it.
    pub flags: &'a [Flag],
    /// Field → confidence 0–1 or null.
    pub confidence: &'a Value,
    /// The card's own text, when the engine read it (the OCR engine).
    pub text: Option<&'a str>,
    /// The result waits for its cross-check against the card's own text.
    pub check: bool,
    /// What reading the card cost, every attempt summed.
    pub usage: &'a Usage,
    /// Where the result came from: `{engine, model, endpoint,
    /// prompt_sha256, response_mode}`.
    pub provenance: &'a Value,
}

/// A model's result waiting for its cross-check against the card's own
/// OCR text (DESIGN §13).
#[derive(Debug, Clone)]
pub struct CheckJob {
    /// The card.
    pub card_id: i64,
    /// Its batch.
    pub batch_id: String,
    /// The batch's name, for the image's path.
    pub batch_name: String,
    /// The image's name in the batch dir.
    pub stored_name: String,
    /// A two-sided card's back's name in the batch dir.
    pub back_stored_name: Option<String>,
    /// The batch's OCR language; `None` = the server's default.
    pub ocr_lang: Option<String>,
    /// The batch's field definitions (which are text).
    pub fields: Vec<cardex_core::Field>,
    /// The result's fields, as committed.
    pub result: Value,
    /// The result's flags so far.
    pub flags: Vec<Flag>,
}

/// How a cross-check ended.
#[derive(Debug, Clone, Copy)]
pub enum CheckOutcome<'a> {
    /// The card was read: its text, and the result's flags with the
    /// cross-check's added.
    Done {
        /// The card's own text.
        text: &'a str,
        /// Every flag of the result now.
        flags: &'a [Flag],
    },
    /// The card could not be checked; why, in words, and its text when
    /// it was read (too poorly to check against).
    Skipped {
        /// Why.
        note: &'a str,
        /// The card's own text, if it was read at all.
        text: Option<&'a str>,
    },
}

/// What a group commit changed.
#[derive(Debug, Clone, Default)]
pub struct GroupCommitted {
    /// Each committed card's `card_done` event, by batch id, in seq order.
    pub events: Vec<(String, StoredEvent)>,
    /// Batches that ended, with their `state` events.
    pub finished: Vec<(String, StoredEvent)>,
    /// Each batch's usage after the commit, with its budget.
    pub spent: Vec<(String, Spent)>,
}

/// One row of a batch's results: every card, with its result or error.
#[derive(Debug, Clone)]
pub struct ResultRow {
    /// Card id.
    pub card_id: i64,
    /// The card's shown name (`<file> p. <page>` for a page).
    pub original_name: String,
    /// The client's file name.
    pub source_name: String,
    /// The page of `source_name`, from 1; `None` for a single image.
    pub page: Option<i64>,
    /// The card's state.
    pub state: String,
    /// Field → value, for done cards.
    pub result: Option<Value>,
    /// What went wrong, for failed cards.
    pub error: Option<Value>,
    /// Likely mistakes in the result (empty for cards without one).
    pub flags: Vec<Flag>,
    /// Field → confidence 0–1 or null (an empty object without a result).
    pub confidence: Value,
    /// The card's own OCR text, once read.
    pub text: Option<String>,
    /// The cross-check: `pending`, `done` or `skipped`; `None` when the
    /// card has none.
    pub check: Option<String>,
    /// Why a cross-check was skipped.
    pub check_note: Option<String>,
    /// What reading the card cost (done cards; failed ones have it in
    /// `error`).
    pub usage: Option<Usage>,
    /// Where the result came from.
    pub provenance: Option<Value>,
    /// A person's review, once there is one.
    pub review: Option<Review>,
    /// A two-sided card's back: the image it was read with.
    pub back: Option<RowBack>,
}

/// The back of a two-sided card in a result row: which file it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowBack {
    /// The name it is shown by (`<file> p. <page>` for a page).
    pub original_name: String,
    /// The client's file name.
    pub source_name: String,
    /// Its page in `source_name`, from 1; `None` for a single image.
    pub page: Option<i64>,
}

/// A person's review of a card, as it stands or as it was recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct Review {
    /// Where it stands.
    pub status: cardex_core::ReviewStatus,
    /// Field → the value the person gave, over the machine's.
    pub corrections: serde_json::Map<String, Value>,
    /// What the person noted.
    pub note: Option<String>,
    /// When, RFC 3339 UTC.
    pub at: String,
}

/// What a review sets: the status, the corrections (all of them: they
/// replace the card's; `None` keeps them) and a note (`None` keeps it).
#[derive(Debug, Clone, Copy)]
pub struct NewReview<'a> {
    /// The status.
    pub status: cardex_core::ReviewStatus,
    /// The corrections, checked by the caller.
    pub corrections: Option<&'a serde_json::Map<String, Value>>,
    /// The note.
    pub note: Option<&'a str>,
}

/// Everything about one card a reviewer needs.
#[derive(Debug, Clone)]
pub struct CardDetail {
    /// The card.
    pub card: Card,
    /// Its result row (machine values, flags, confidence, review).
    pub row: ResultRow,
    /// Every review, oldest first.
    pub history: Vec<Review>,
}

/// Which cards the review queue holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum QueueFilter {
    /// Done or failed cards nobody has reviewed.
    #[default]
    Unreviewed,
    /// Cards marked for another look.
    NeedsAttention,
    /// Cards with flags.
    Flagged,
    /// Failed cards.
    Failed,
    /// Every done or failed card.
    All,
}

/// Where a page of the review queue starts: after this card in the
/// queue's order (failed, then flagged, then least sure, then card id).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QueueCursor {
    /// 0 failed, 1 flagged, 2 the rest.
    pub rank: i64,
    /// The card's least confidence (2 where it has none: after the rest).
    pub confidence: f64,
    /// The card.
    pub card_id: i64,
}

/// One card in the review queue.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueEntry {
    /// The card.
    pub card_id: i64,
    /// The client's file name.
    pub original_name: String,
    /// `done` or `failed`.
    pub state: CardState,
    /// Its review's status.
    pub status: cardex_core::ReviewStatus,
    /// How many flags its result has.
    pub flags: u64,
    /// Its least confident value's confidence, where it has one.
    pub min_confidence: Option<f64>,
    /// Its place in the queue's order, for the next page.
    pub cursor: QueueCursor,
}

/// How good a batch's results look (DESIGN §13), over its done cards.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Quality {
    /// Done cards with at least one flag.
    pub flagged_cards: u64,
    /// Done cards on which no field was found.
    pub empty_cards: u64,
    /// Done cards.
    pub done_cards: u64,
    /// Flag code → done cards with at least one flag of it.
    pub flags: std::collections::BTreeMap<String, u64>,
    /// Done cards whose cross-check has not run yet.
    pub checks_pending: u64,
    /// Done cards whose cross-check could not be done.
    pub checks_skipped: u64,
    /// Field → share of done cards with a value, 0–1.
    pub fill_rate: std::collections::BTreeMap<String, f64>,
    /// Field → mean confidence of its values, where the engine gave one.
    pub mean_confidence: std::collections::BTreeMap<String, f64>,
}

/// A failed card with its error history.
#[derive(Debug, Clone)]
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
    pub error: Value,
    /// Earlier errors, oldest first (from before a retry).
    pub history: Vec<Value>,
}
