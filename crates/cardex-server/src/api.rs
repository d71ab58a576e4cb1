//! The API's request and response shapes with their OpenAPI schemas
//! (DESIGN §4). They are built from the store's records and the core's
//! domain types, so storage and the wire can change apart; the JSON they
//! give is the contract clients rely on.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// A batch with its fields and card counts.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Batch {
    /// 8 characters of lowercase base32; also the last part of `name`.
    #[schema(example = "k3v9q2xa")]
    pub id: String,
    /// `<custom>_<YYYY-MM-DD_HH-MM-SS>_<id>`.
    #[schema(example = "Hemingway-Letters_2026-11-24_14-03-22_k3v9q2xa")]
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
    /// The OCR engine's language(s) for this batch (`deu+eng`); null for
    /// the server's default.
    pub ocr_lang: Option<String>,
    /// The field schema, in order.
    pub fields: Vec<Field>,
    /// Cards per state.
    pub counts: Counts,
    /// Share of cards finished (done or failed), 0–100.
    pub percent: f64,
    /// Why the system paused the batch (bad API key, disk full), if it did.
    pub pause_reason: Option<String>,
    /// The same as a stable code: `engine_unavailable`,
    /// `engine_misconfigured`, `disk_full`.
    pub pause_code: Option<String>,
    /// The number of the batch's latest progress-stream event.
    pub last_seq: i64,
    /// How good the results look so far (one batch only, once started).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quality: Option<Quality>,
    /// What its cards cost so far, done and failed alike (DESIGN §14).
    pub usage: BatchUsage,
    /// Most tokens the batch may use; reaching it pauses the batch
    /// (`budget_reached`).
    pub max_tokens: Option<u64>,
    /// Most US dollars the batch may cost at the server's prices;
    /// reaching it pauses the batch.
    pub max_cost: Option<f64>,
    /// The last estimate made for the batch, to set beside `usage`.
    pub estimate: Option<Estimate>,
    /// 1, or 2 for a batch of two-sided cards (DESIGN §16).
    #[schema(minimum = 1, maximum = 2)]
    pub sides: u8,
    /// How a two-sided batch pairs its images; null for one-sided cards.
    pub pairing: Option<Pairing>,
}

/// What a batch's cards cost so far.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, ToSchema)]
pub struct BatchUsage {
    /// Tokens in the requests (images included).
    pub prompt_tokens: u64,
    /// Tokens generated.
    pub completion_tokens: u64,
    /// Both.
    pub total_tokens: u64,
    /// Prompt tokens the server had cached, where it says.
    pub cached_tokens: u64,
    /// Requests made, retries included.
    pub requests: u64,
    /// Engine time, summed over the requests, in milliseconds.
    pub ms: u64,
    /// US dollars at the server's `--vlm-price-input`/`--vlm-price-output`;
    /// null without prices (and for the OCR engine).
    pub cost: Option<f64>,
}

/// What reading one card cost, every attempt summed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, ToSchema)]
pub struct CardUsage {
    /// Tokens in the requests.
    pub prompt_tokens: u64,
    /// Tokens generated.
    pub completion_tokens: u64,
    /// Both.
    pub total_tokens: u64,
    /// Prompt tokens the server had cached.
    pub cached_tokens: u64,
    /// Requests made, retries included.
    pub requests: u64,
    /// Engine time in milliseconds.
    pub ms: u64,
}

impl From<cardex_core::Usage> for CardUsage {
    fn from(u: cardex_core::Usage) -> Self {
        Self {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            total_tokens: u.total_tokens,
            cached_tokens: u.cached_tokens,
            requests: u.requests,
            ms: u.ms,
        }
    }
}

/// Where a result came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Provenance {
    /// The engine (`vlm`, `ocr`).
    pub engine: String,
    /// The model it asked (`tesseract` for OCR).
    pub model: Option<String>,
    /// The server it asked.
    pub endpoint: Option<String>,
    /// Hex SHA-256 of the prompt as sent: system text, user text, JSON
    /// Schema. Results with the same hash were asked the same question.
    pub prompt_sha256: String,
    /// How the answer was asked for: `json_schema`, `json_object` or
    /// `plain`; null for engines without a choice.
    pub response_mode: Option<String>,
}

/// A batch's budget: either bound, or none (null).
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    /// Most tokens (prompt and generated) the batch may use, at least 1.
    #[schema(minimum = 1)]
    pub max_tokens: Option<u64>,
    /// Most US dollars it may cost at the server's prices, more than 0.
    #[schema(exclusive_minimum = 0.0)]
    pub max_cost: Option<f64>,
}

impl Budget {
    /// The budget, checked: 422 `invalid_budget` for a bound that could
    /// never let a card through, 422 `no_prices` for a cost bound where
    /// cost is not known (`priced`: the server has prices and the batch's
    /// engine is paid per token), which could never be reached.
    pub fn checked(self, priced: bool) -> Result<cardex_core::Budget, crate::ApiError> {
        if self.max_cost.is_some() && !priced {
            return Err(crate::ApiError::invalid(
                "no_prices",
                "a cost budget needs the model's prices (--vlm-price-input and --vlm-price-output) \
                 and a batch read by a model; set `max_tokens` instead",
            ));
        }
        if self.max_tokens == Some(0) {
            return Err(crate::ApiError::invalid(
                "invalid_budget",
                "`max_tokens` must be at least 1 (leave it out for no bound)",
            ));
        }
        // The store counts tokens as SQLite integers (i64), as the
        // document's `int64` says.
        if self.max_tokens.is_some_and(|n| i64::try_from(n).is_err()) {
            return Err(crate::ApiError::invalid(
                "invalid_budget",
                format!("`max_tokens` must be at most {}", i64::MAX),
            ));
        }
        if let Some(cost) = self.max_cost
            && !(cost.is_finite() && cost > 0.0)
        {
            return Err(crate::ApiError::invalid(
                "invalid_budget",
                "`max_cost` must be a number of US dollars above 0 (leave it out for no bound)",
            ));
        }
        Ok(cardex_core::Budget {
            max_tokens: self.max_tokens,
            max_cost: self.max_cost,
        })
    }
}

/// What reading a whole batch will likely take, from a sample of its
/// cards read without keeping their results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Estimate {
    /// Cards read for it.
    pub sample_cards: u64,
    /// Mean tokens per card (prompt and generated) over the sample.
    pub tokens_per_card: f64,
    /// Of which in the request.
    pub prompt_tokens_per_card: f64,
    /// Of which generated.
    pub completion_tokens_per_card: f64,
    /// Seconds per card with as many requests at once as the engine's
    /// limit allows now: the sample's mean time per card over that limit.
    pub seconds_per_card: f64,
    /// Requests at once assumed.
    pub concurrency: u64,
    /// Cards in the batch.
    pub cards: u64,
    /// Tokens for the whole batch.
    pub total_tokens: u64,
    /// US dollars for the whole batch at the server's prices; null without
    /// prices (and for the OCR engine).
    pub cost: Option<f64>,
    /// Seconds for the whole batch.
    pub duration_seconds: f64,
    /// When it was made, RFC 3339 UTC.
    pub made_at: String,
}

/// How good a batch's results look (DESIGN §13), over its done cards.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Quality {
    /// Done cards with at least one flag.
    pub flagged_cards: u64,
    /// Done cards on which no field was found.
    pub empty_cards: u64,
    /// Active field → share of done cards with a value, 0–1.
    pub fill_rate: std::collections::BTreeMap<String, f64>,
    /// Active field → mean confidence of its values, or null where the
    /// engine gave none.
    pub mean_confidence: std::collections::BTreeMap<String, Option<f64>>,
    /// Flag code → done cards with at least one flag of it.
    pub flags: std::collections::BTreeMap<String, u64>,
    /// Done cards whose cross-check against their own OCR text has not
    /// run yet: their `not_in_text` flags may still come.
    pub checks_pending: u64,
    /// Done cards whose cross-check could not be done (the card could not
    /// be read).
    pub checks_skipped: u64,
    /// In plain words, when most cards came out empty: what that likely
    /// means and what to do.
    pub warning: Option<String>,
}

impl Quality {
    /// The summary for `batch`'s active fields, with a warning when most
    /// of its done cards came out empty.
    pub fn of(batch: &cardex_store::Batch, q: cardex_store::Quality) -> Self {
        let active = batch.fields.iter().filter(|f| f.active);
        let round = |x: f64| (x * 1000.0).round() / 1000.0;
        let fill_rate = active
            .clone()
            .map(|f| {
                (
                    f.name.clone(),
                    round(q.fill_rate.get(&f.name).copied().unwrap_or(0.0)),
                )
            })
            .collect();
        let mean_confidence = active
            .map(|f| {
                (
                    f.name.clone(),
                    q.mean_confidence.get(&f.name).copied().map(round),
                )
            })
            .collect();
        let warning = (q.done_cards > 0 && q.empty_cards * 2 > q.done_cards).then(|| {
            let why = if batch.engine == "ocr" {
                "the OCR engine found no \"Label: value\" lines or catalog entry on them — connect a \
                 vision model (--vlm-url), or check the OCR language"
            } else {
                "the model found none of the fields on them — check that the fields' names and \
                 descriptions match what is on the cards, with the one-card test"
            };
            format!(
                "{} of {} cards came out empty: {why}",
                q.empty_cards, q.done_cards
            )
        });
        Self {
            flagged_cards: q.flagged_cards,
            empty_cards: q.empty_cards,
            fill_rate,
            mean_confidence,
            flags: q.flags,
            checks_pending: q.checks_pending,
            checks_skipped: q.checks_skipped,
            warning,
        }
    }
}

/// How many cards of a batch are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
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
    /// Marked by a reviewer for another look.
    pub needs_attention: u64,
    /// With at least one correction by a reviewer.
    pub corrected: u64,
    /// In a two-sided batch, cards with one side only so far: the batch
    /// starts only when this is 0, or with `accept_singles`.
    pub unpaired: u64,
}

/// One card image of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Card {
    /// Unique across the server.
    pub id: i64,
    /// The name shown for the card: the file name the client sent, or for
    /// a page of a PDF or multi-page TIFF `<file> p. <page>`
    /// (`box-12.pdf p. 37`); kept for display and exports only.
    pub original_name: String,
    /// The name of the file the client sent (for a page, its PDF or TIFF).
    pub source_name: String,
    /// The card's page in `source_name`, from 1; null for an ordinary
    /// single image.
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
    /// In a two-sided batch, the side of the card's own image: `front`,
    /// or `back` for a back still waiting for its front. Null in a
    /// one-sided batch.
    pub side: Option<Side>,
    /// The card's images, front first: two once a two-sided card is
    /// paired. The first is the one the fields above describe.
    pub images: Vec<CardImage>,
}

/// One image of a card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct CardImage {
    /// Which side it is.
    pub side: Side,
    /// The name it is shown by (see `Card.original_name`).
    pub original_name: String,
    /// The name of the file the client sent (for a page, its PDF or TIFF).
    pub source_name: String,
    /// Its page in `source_name`, from 1; null for a single image.
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

/// A side of a two-sided card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// Read first.
    Front,
    /// The other side.
    Back,
}

/// How a two-sided batch finds each card's two images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Pairing {
    /// By a side mark at the end of the file name, before the extension:
    /// `_front`/`_back`, `_recto`/`_verso`, `a`/`b`, `-1`/`-2`, in any case.
    Name,
    /// By upload order (duplex scans): each image after a front is its back.
    Order,
}

/// A saved field list.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
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

/// One row of a batch's results: every card, with its result or error.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ResultRow {
    /// Card id.
    pub card_id: i64,
    /// The card's name (`<file> p. <page>` for a page of a PDF or TIFF).
    pub original_name: String,
    /// The name of the file the client sent. Always sent; optional in the
    /// schema so that rows a client builds from `card_done` events, which
    /// do not carry it, are rows too.
    #[schema(required = false)]
    pub source_name: String,
    /// The card's page in `source_name`, from 1; null for a single image.
    pub page: Option<i64>,
    /// A two-sided card's back, its second image, read together with the
    /// front; absent for a card of one image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub back: Option<ResultBack>,
    /// The card's state.
    pub state: String,
    /// Field → value, for done cards.
    #[schema(value_type = Option<Object>)]
    pub result: Option<Value>,
    /// What went wrong, for failed cards.
    #[schema(value_type = Option<Object>)]
    pub error: Option<Value>,
    /// Likely mistakes in the result, for a person to look at (DESIGN §13).
    pub flags: Vec<Flag>,
    /// Field → how sure the engine is of its value, 0–1, or null where it
    /// cannot say (DESIGN §13).
    #[schema(value_type = Object)]
    pub confidence: Value,
    /// The card's own text as OCR read it (the OCR engine's, or the
    /// cross-check's), once read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The cross-check of a model's values against that text: `pending`,
    /// `done` or `skipped`; absent when the card has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<CheckState>,
    /// Why the cross-check was skipped, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check_note: Option<String>,
    /// What reading the card cost (JSONL, and JSON with `include=usage`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<CardUsage>,
    /// Where the result came from (with `usage`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Provenance>,
    /// A person's review, or null while there is none. `result` holds the
    /// machine's values with its corrections over them.
    pub review: Option<Review>,
    /// The machine's values as extracted (with `include=machine`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub machine: Option<Value>,
}

/// The back of a two-sided card in a result row.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ResultBack {
    /// The name it is shown by (`<file> p. <page>` for a page).
    pub original_name: String,
    /// The name of the file the client sent.
    pub source_name: String,
    /// Its page in `source_name`, from 1; null for a single image.
    pub page: Option<i64>,
}

/// Where a card's review stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReviewStatus {
    /// Nobody has looked yet, or a review was taken back.
    Unreviewed,
    /// A person checked the values (with the corrections) and found them right.
    Verified,
    /// A person wants another look.
    NeedsAttention,
}

/// A person's review of a card, as it stands or as it was recorded.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Review {
    /// Where it stands.
    pub status: ReviewStatus,
    /// Field → the value the person gave, over the machine's.
    #[schema(value_type = Object)]
    pub corrections: serde_json::Map<String, Value>,
    /// What the person noted.
    pub note: Option<String>,
    /// When, RFC 3339 UTC.
    pub at: String,
}

impl From<cardex_store::Review> for Review {
    fn from(r: cardex_store::Review) -> Self {
        Self {
            status: r.status.into(),
            corrections: r.corrections,
            note: r.note,
            at: r.at,
        }
    }
}

/// One card for review (DESIGN §12).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CardReview {
    /// The card.
    pub card: Card,
    /// Its state: `done` or `failed` once it can be reviewed.
    pub state: CardState,
    /// What the engine extracted; null for a card without a result.
    #[schema(value_type = Option<Object>)]
    pub machine: Option<Value>,
    /// The reviewer's values, over the machine's.
    #[schema(value_type = Object)]
    pub corrections: serde_json::Map<String, Value>,
    /// `machine` with `corrections` laid over it: what exports hold.
    #[schema(value_type = Object)]
    pub values: serde_json::Map<String, Value>,
    /// Field → the engine's confidence, 0–1, or null.
    #[schema(value_type = Object)]
    pub confidence: Value,
    /// Likely mistakes in the machine's values.
    pub flags: Vec<Flag>,
    /// The review as it stands; null before the first.
    pub review: Option<Review>,
    /// Every review, oldest first.
    pub history: Vec<Review>,
    /// What went wrong, for a failed card.
    #[schema(value_type = Option<Object>)]
    pub error: Option<Value>,
    /// The card's own OCR text, once read.
    pub text: Option<String>,
}

impl From<cardex_store::CardDetail> for CardReview {
    fn from(d: cardex_store::CardDetail) -> Self {
        let row = d.row;
        let corrections = row
            .review
            .as_ref()
            .map(|r| r.corrections.clone())
            .unwrap_or_default();
        let values = cardex_core::review::overlay(
            row.result.as_ref().and_then(Value::as_object),
            &corrections,
        );
        Self {
            state: d.card.state.into(),
            card: d.card.into(),
            machine: row.result,
            corrections,
            values,
            confidence: row.confidence,
            flags: row.flags.into_iter().map(Flag::from).collect(),
            review: row.review.map(Review::from),
            history: d.history.into_iter().map(Review::from).collect(),
            error: row.error,
            text: row.text,
        }
    }
}

/// A page of the review queue.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReviewQueue {
    /// Cards to review, most in need first.
    pub cards: Vec<QueueCard>,
    /// Where the next page starts (`after=`); null on the last page.
    pub next: Option<String>,
}

/// One card in the review queue.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QueueCard {
    /// The card.
    pub card_id: i64,
    /// The client's file name.
    pub original_name: String,
    /// `done` or `failed`.
    pub state: CardState,
    /// Its review's status.
    pub status: ReviewStatus,
    /// How many flags its result has.
    pub flags: u64,
    /// Its least confident value's confidence, where the engine gave one.
    pub min_confidence: Option<f64>,
}

impl From<cardex_store::QueueEntry> for QueueCard {
    fn from(e: cardex_store::QueueEntry) -> Self {
        Self {
            card_id: e.card_id,
            original_name: e.original_name,
            state: e.state.into(),
            status: e.status.into(),
            flags: e.flags,
            min_confidence: e.min_confidence,
        }
    }
}

/// Where a result's cross-check stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CheckState {
    /// Waiting for the cross-check's OCR.
    Pending,
    /// Checked: its `not_in_text` flags are in.
    Done,
    /// The card could not be read for it, or too poorly to judge.
    Skipped,
}

/// A likely mistake in a result row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Flag {
    /// What kind of mistake.
    pub code: FlagCode,
    /// The field it concerns, when it concerns one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Why, in words.
    pub message: String,
}

/// The kinds of likely mistake (DESIGN §13).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FlagCode {
    /// No active field was found on the card.
    Empty,
    /// A field's confidence is under the threshold.
    LowConfidence,
    /// A text value is not in the card's own OCR text: a likely invention.
    NotInText,
    /// The value could not be read as its type; it is kept as written.
    InvalidValue,
    /// The model's answer was cut off.
    TruncatedAnswer,
    /// The model's answer repeated itself.
    Repetition,
}

/// A failed card with its error history.
#[derive(Debug, Clone, Serialize, ToSchema)]
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

/// Where a batch is in its life. Leaving `open` locks it for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BatchState {
    /// Uploads may be appended and fields edited.
    Open,
    /// Cards are being processed.
    Running,
    /// Stopped by the user or by a shutdown/crash; `resume` continues it.
    Paused,
    /// Every card is done.
    Completed,
    /// Every card is done or failed, at least one failed.
    CompletedWithErrors,
    /// Stopped for good by the user.
    Cancelled,
}

/// Where a card is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CardState {
    /// Uploaded into an open batch, not queued yet.
    Uploaded,
    /// Queued for extraction.
    Pending,
    /// Claimed by a worker; returns to `pending` if the process dies.
    Processing,
    /// Extracted; has exactly one result row.
    Done,
    /// Gave up after retries; its image is in `_errors/`.
    Failed,
}

/// The value type of a field; decides its JSON Schema and how answers are coerced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// Free text.
    Text,
    /// Any number.
    Number,
    /// A whole number.
    Integer,
    /// A date, ISO 8601 (`YYYY-MM-DD`, or `YYYY-MM` / `YYYY` when that is all the card says).
    Date,
    /// Yes or no.
    Boolean,
    /// A list of text values.
    List,
}

/// One field to extract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Field {
    /// An identifier: a letter, then letters, digits or `_` (at most 64).
    #[schema(example = "call_number", pattern = "^[A-Za-z][A-Za-z0-9_]{0,63}$")]
    pub name: String,
    /// What the field means, in the user's words; sent to the model.
    #[serde(default)]
    #[schema(example = "The library call number, usually in the top left corner")]
    pub description: String,
    /// The value type.
    #[serde(rename = "type")]
    pub kind: FieldType,
    /// Inactive fields are kept but not extracted.
    #[serde(default = "default_active")]
    pub active: bool,
}

/// Everything a client may inspect before a batch starts.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Prompt {
    /// The system message.
    pub system: String,
    /// The text part of the user message (the image is sent beside it).
    pub user: String,
    /// The JSON Schema the answer must match.
    #[schema(value_type = Object)]
    pub json_schema: Value,
}

fn default_active() -> bool {
    true
}

/// Enums that mirror a core enum variant for variant.
macro_rules! mirror_enum {
    ($api:ident, $core:path, $($variant:ident),+) => {
        impl From<$core> for $api {
            fn from(v: $core) -> Self {
                use $core as C;
                match v { $(C::$variant => Self::$variant),+ }
            }
        }
        impl From<$api> for $core {
            fn from(v: $api) -> Self {
                use $core as C;
                match v { $($api::$variant => C::$variant),+ }
            }
        }
    };
}

mirror_enum!(
    BatchState,
    cardex_core::BatchState,
    Open,
    Running,
    Paused,
    Completed,
    CompletedWithErrors,
    Cancelled
);
mirror_enum!(
    CardState,
    cardex_core::CardState,
    Uploaded,
    Pending,
    Processing,
    Done,
    Failed
);
mirror_enum!(Side, cardex_core::Side, Front, Back);
mirror_enum!(Pairing, cardex_core::Pairing, Name, Order);
mirror_enum!(
    FieldType,
    cardex_core::FieldType,
    Text,
    Number,
    Integer,
    Date,
    Boolean,
    List
);
mirror_enum!(
    ReviewStatus,
    cardex_core::ReviewStatus,
    Unreviewed,
    Verified,
    NeedsAttention
);
mirror_enum!(
    FlagCode,
    cardex_core::FlagCode,
    Empty,
    LowConfidence,
    NotInText,
    InvalidValue,
    TruncatedAnswer,
    Repetition
);

impl From<cardex_core::Flag> for Flag {
    fn from(f: cardex_core::Flag) -> Self {
        Self {
            code: f.code.into(),
            field: f.field,
            message: f.message,
        }
    }
}

impl From<cardex_core::Field> for Field {
    fn from(f: cardex_core::Field) -> Self {
        Self {
            name: f.name,
            description: f.description,
            kind: f.kind.into(),
            active: f.active,
        }
    }
}

impl From<Field> for cardex_core::Field {
    fn from(f: Field) -> Self {
        Self {
            name: f.name,
            description: f.description,
            kind: f.kind.into(),
            active: f.active,
        }
    }
}

/// Fields as the API shows them.
pub fn fields_out(fields: Vec<cardex_core::Field>) -> Vec<Field> {
    fields.into_iter().map(Field::from).collect()
}

/// Fields as the API received them, for the core's checks.
pub fn fields_in(fields: Vec<Field>) -> Vec<cardex_core::Field> {
    fields.into_iter().map(cardex_core::Field::from).collect()
}

impl From<cardex_store::Counts> for Counts {
    fn from(c: cardex_store::Counts) -> Self {
        Self {
            total: c.total,
            uploaded: c.uploaded,
            pending: c.pending,
            processing: c.processing,
            done: c.done,
            failed: c.failed,
            verified: c.verified,
            needs_attention: c.needs_attention,
            corrected: c.corrected,
            unpaired: c.unpaired,
        }
    }
}

impl Batch {
    /// The batch as the API shows it, its cost at `prices`.
    pub fn new(b: cardex_store::Batch, prices: Option<&cardex_core::Prices>) -> Self {
        let u = b.usage;
        let usage = BatchUsage {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            total_tokens: u.total_tokens,
            cached_tokens: u.cached_tokens,
            requests: u.requests,
            ms: u.ms,
            cost: cardex_runner::batch_cost(&b, prices),
        };
        let estimate = b
            .estimate
            .as_ref()
            .and_then(|e| serde_json::from_value(e.clone()).ok());
        Self {
            usage,
            max_tokens: b.budget.max_tokens,
            max_cost: b.budget.max_cost,
            estimate,
            id: b.id,
            name: b.name,
            state: b.state.into(),
            created_at: b.created_at,
            started_at: b.started_at,
            finished_at: b.finished_at,
            engine: b.engine,
            ocr_lang: b.ocr_lang,
            fields: fields_out(b.fields),
            counts: b.counts.into(),
            percent: b.percent,
            pause_reason: b.pause_reason,
            pause_code: b.pause_code,
            last_seq: b.last_seq,
            quality: None,
            sides: if b.two_sided.is_some() { 2 } else { 1 },
            pairing: b.two_sided.map(Into::into),
        }
    }
}

impl From<cardex_store::Card> for Card {
    fn from(c: cardex_store::Card) -> Self {
        let own = CardImage {
            side: c.side.map_or(Side::Front, Into::into),
            original_name: c.original_name.clone(),
            source_name: c.source_name.clone(),
            page: c.page,
            stored_name: c.stored_name.clone(),
            size_bytes: c.size_bytes,
            sha256: c.sha256.clone(),
            format: c.format.clone(),
            width: c.width,
            height: c.height,
        };
        let back = c.back.map(|b| CardImage {
            side: Side::Back,
            original_name: b.original_name,
            source_name: b.source_name,
            page: b.page,
            stored_name: b.stored_name,
            size_bytes: b.size_bytes,
            sha256: b.sha256,
            format: b.format,
            width: b.width,
            height: b.height,
        });
        Self {
            images: std::iter::once(own).chain(back).collect(),
            side: c.side.map(Into::into),
            id: c.id,
            original_name: c.original_name,
            source_name: c.source_name,
            page: c.page,
            stored_name: c.stored_name,
            size_bytes: c.size_bytes,
            sha256: c.sha256,
            format: c.format,
            width: c.width,
            height: c.height,
            state: c.state.into(),
            created_at: c.created_at,
        }
    }
}

impl From<cardex_store::Template> for Template {
    fn from(t: cardex_store::Template) -> Self {
        Self {
            id: t.id,
            name: t.name,
            fields: fields_out(t.fields),
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

impl From<cardex_store::ResultRow> for ResultRow {
    /// The row as exports give it: `result` holds the reviewed values.
    fn from(r: cardex_store::ResultRow) -> Self {
        let values = match &r.review {
            Some(review) if !review.corrections.is_empty() => {
                Some(Value::Object(cardex_core::review::overlay(
                    r.result.as_ref().and_then(Value::as_object),
                    &review.corrections,
                )))
            }
            _ => r.result.clone(),
        };
        Self {
            card_id: r.card_id,
            original_name: r.original_name,
            source_name: r.source_name,
            page: r.page,
            back: r.back.map(|b| ResultBack {
                original_name: b.original_name,
                source_name: b.source_name,
                page: b.page,
            }),
            state: r.state,
            result: values,
            machine: r.result,
            review: r.review.map(Review::from),
            error: r.error,
            flags: r.flags.into_iter().map(Flag::from).collect(),
            confidence: r.confidence,
            text: r.text,
            check: r.check.as_deref().and_then(|c| match c {
                "pending" => Some(CheckState::Pending),
                "done" => Some(CheckState::Done),
                "skipped" => Some(CheckState::Skipped),
                _ => None,
            }),
            check_note: r.check_note,
            usage: r.usage.map(CardUsage::from),
            provenance: r.provenance.and_then(|p| serde_json::from_value(p).ok()),
        }
    }
}

impl From<cardex_store::FailedCard> for FailedCard {
    fn from(f: cardex_store::FailedCard) -> Self {
        Self {
            card_id: f.card_id,
            original_name: f.original_name,
            stored_name: f.stored_name,
            attempts: f.attempts,
            error: f.error,
            history: f.history,
        }
    }
}

impl From<cardex_core::Prompt> for Prompt {
    fn from(p: cardex_core::Prompt) -> Self {
        Self {
            system: p.system,
            user: p.user,
            json_schema: p.json_schema,
        }
    }
}
