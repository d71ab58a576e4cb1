//! Review and corrections (DESIGN §12): one card with everything a
//! reviewer needs, recording a review (corrections checked by their
//! fields' types), and the queue of cards to review, most in need first.

use axum::Json;
use axum::extract::State;
use cardex_engine::CompiledPrompt;
use cardex_store::{NewReview, QueueCursor, QueueFilter};
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use super::batch_id;
use crate::api::{CardReview, QueueCard, ReviewQueue, ReviewStatus};
use crate::error::ErrorBody;
use crate::extract::{JsonObject, PathParams, QueryParams};
use crate::{ApiError, AppState};

/// Longest note a review may carry, in characters.
const MAX_NOTE: usize = 2000;
/// Longest corrected value, in characters (a spreadsheet cell holds 32,767).
const MAX_VALUE: usize = 10_000;
/// Cards per page of the queue unless asked otherwise, and at most.
const DEFAULT_PAGE: i64 = 50;
const MAX_PAGE: i64 = 500;

/// One card of a batch for review: its machine values, the corrections
/// over them, the values exports hold, confidence, flags, review and its
/// history.
#[utoipa::path(get, path = "/api/batches/{id}/cards/{card_id}", tag = "review",
    params(("id" = String, Path, description = "Batch id"), ("card_id" = i64, Path, description = "Card id")),
    responses((status = 200, body = CardReview), (status = 404, body = ErrorBody)))]
pub(crate) async fn card(
    State(state): State<AppState>,
    PathParams((id, card_id)): PathParams<(String, i64)>,
) -> Result<Json<CardReview>, ApiError> {
    let id = batch_id(id)?;
    Ok(Json(state.store.card_detail(&id, card_id).await?.into()))
}

/// Body of a review.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    /// Where the review stands.
    pub status: ReviewStatus,
    /// Field → the value the card really has (`null`: it has none),
    /// checked and read by the field's type like a model's answer. They
    /// replace the card's corrections; left out, those are kept.
    #[schema(value_type = Option<Object>)]
    pub corrections: Option<Map<String, Value>>,
    /// A note for whoever looks next (at most 2,000 characters); left out,
    /// the last one is kept; empty removes it.
    pub note: Option<String>,
}

/// Records a review of a done or failed card; the machine's values stay
/// as they were. A failed card can be transcribed by hand this way.
#[utoipa::path(put, path = "/api/batches/{id}/cards/{card_id}/review", tag = "review",
    params(("id" = String, Path, description = "Batch id"), ("card_id" = i64, Path, description = "Card id")),
    request_body = ReviewRequest,
    responses(
        (status = 200, body = CardReview),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "The card is not done or failed yet"),
        (status = 422, body = ErrorBody, description = "A correction names no field of the batch, or is not of its field's type"),
    ))]
pub(crate) async fn review(
    State(state): State<AppState>,
    PathParams((id, card_id)): PathParams<(String, i64)>,
    JsonObject(body): JsonObject<ReviewRequest>,
) -> Result<Json<CardReview>, ApiError> {
    let id = batch_id(id)?;
    let batch = state.store.get_batch(&id).await?;
    if let Some(note) = &body.note
        && note.chars().count() > MAX_NOTE
    {
        return Err(ApiError::invalid(
            "invalid_note",
            format!("a note holds at most {MAX_NOTE} characters"),
        ));
    }
    let corrections = body
        .corrections
        .map(|c| checked_corrections(&batch.fields, c))
        .transpose()?;
    let (detail, event) = state
        .store
        .record_review(
            &id,
            card_id,
            &NewReview {
                status: body.status.into(),
                corrections: corrections.as_ref(),
                note: body.note.as_deref(),
            },
        )
        .await?;
    state.runner.publish(&id, &event);
    Ok(Json(detail.into()))
}

/// The corrections read as their fields' types: 422 naming the field for
/// one that is not an active field of the batch or not of its type.
fn checked_corrections(
    fields: &[cardex_core::Field],
    corrections: Map<String, Value>,
) -> Result<Map<String, Value>, ApiError> {
    let prompt = CompiledPrompt::new(fields).map_err(ApiError::internal)?;
    for name in corrections.keys() {
        if !prompt.fields.iter().any(|f| &f.name == name) {
            return Err(ApiError::invalid(
                "unknown_field",
                format!("{name:?} is not an active field of this batch"),
            )
            .with("field", Value::from(name.as_str())));
        }
    }
    for (name, value) in &corrections {
        let long = |s: &str| s.chars().count() > MAX_VALUE;
        let too_long = match value {
            Value::String(s) => long(s),
            Value::Array(items) => items.iter().filter_map(Value::as_str).any(long),
            _ => false,
        };
        if too_long {
            return Err(ApiError::invalid(
                "invalid_value",
                format!("{name}: a value holds at most {MAX_VALUE} characters"),
            )
            .with("field", Value::from(name.as_str())));
        }
    }
    let given: Vec<String> = corrections.keys().cloned().collect();
    let answer = prompt.read_values(corrections).map_err(|e| {
        ApiError::invalid("invalid_value", format!("the corrections do not fit: {e}"))
    })?;
    if let Some(flag) = answer.flags.first() {
        let field = flag.field.as_deref().unwrap_or("a field");
        return Err(
            ApiError::invalid("invalid_value", format!("{field}: {}", flag.message))
                .with("field", Value::from(field)),
        );
    }
    Ok(answer
        .values
        .into_iter()
        .filter(|(name, _)| given.contains(name))
        .collect())
}

/// Which cards and where a page starts.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct QueueQuery {
    /// `unreviewed` (default), `needs_attention`, `flagged`, `failed` or `all`.
    #[param(inline)]
    pub filter: Option<QueueFilterParam>,
    /// The `next` of the page before.
    pub after: Option<String>,
    /// Cards per page, 1–500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

/// Which cards the review queue holds.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum QueueFilterParam {
    /// Done or failed cards nobody has reviewed.
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

/// The cards to review, most in need first (failed, then flagged, then
/// least confident, then by card id), a page at a time; the order is
/// stable across pages.
#[utoipa::path(get, path = "/api/batches/{id}/review-queue", tag = "review",
    params(("id" = String, Path, description = "Batch id"), QueueQuery),
    responses(
        (status = 200, body = ReviewQueue),
        (status = 400, body = ErrorBody, description = "A bad `after` or `limit`"),
        (status = 404, body = ErrorBody),
    ))]
pub(crate) async fn queue(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    QueryParams(q): QueryParams<QueueQuery>,
) -> Result<Json<ReviewQueue>, ApiError> {
    let id = batch_id(id)?;
    let limit = q.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("`limit` is from 1 to {MAX_PAGE}"),
        ));
    }
    let after = q.after.as_deref().map(parse_cursor).transpose()?;
    let filter = match q.filter.unwrap_or(QueueFilterParam::Unreviewed) {
        QueueFilterParam::Unreviewed => QueueFilter::Unreviewed,
        QueueFilterParam::NeedsAttention => QueueFilter::NeedsAttention,
        QueueFilterParam::Flagged => QueueFilter::Flagged,
        QueueFilterParam::Failed => QueueFilter::Failed,
        QueueFilterParam::All => QueueFilter::All,
    };
    // One more than asked says whether there is a next page.
    let mut entries = state
        .store
        .review_queue(&id, filter, after, limit + 1)
        .await?;
    let more = entries.len() as i64 > limit;
    entries.truncate(limit as usize);
    let next = more
        .then(|| entries.last().map(|e| format_cursor(&e.cursor)))
        .flatten();
    Ok(Json(ReviewQueue {
        cards: entries.into_iter().map(QueueCard::from).collect(),
        next,
    }))
}

/// `tier~confidence~card_id`, as `next` gives it.
fn format_cursor(c: &QueueCursor) -> String {
    format!("{}~{}~{}", c.rank, c.confidence, c.card_id)
}

fn parse_cursor(s: &str) -> Result<QueueCursor, ApiError> {
    let bad = || ApiError::bad_request("invalid_query", "`after` is the `next` of a page before");
    let mut parts = s.split('~');
    let (Some(rank), Some(confidence), Some(card_id), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let confidence: f64 = confidence.parse().map_err(|_| bad())?;
    if !confidence.is_finite() {
        return Err(bad());
    }
    Ok(QueueCursor {
        rank: rank.parse().map_err(|_| bad())?,
        confidence,
        card_id: card_id.parse().map_err(|_| bad())?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_nonsense_is_refused() {
        let c = QueueCursor {
            rank: 1,
            confidence: 0.4231,
            card_id: 977,
        };
        assert_eq!(parse_cursor(&format_cursor(&c)).unwrap(), c);
        for bad in ["", "1~2", "a~0.5~3", "1~NaN~3", "1~inf~3", "1~0.5~3~4"] {
            assert!(parse_cursor(bad).is_err(), "{bad}");
        }
    }
}
