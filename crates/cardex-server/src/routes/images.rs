//! A batch's images: multipart upload (appending while open), list, a
//! preview of one card as the model sees it, remove.

use axum::Json;
use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cardex_engine::PreparedImage;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::batch_id;
use crate::api::{Card, Pairing, Side};
use crate::error::ErrorBody;
use crate::extract::{PathParams, QueryParams};
use crate::upload::{FileOutcome, RejectedFile, RequestBudget, receive_file, upload_too_large};
use crate::{ApiError, AppState};

/// The answer to an upload: what was added and what was refused, per file
/// and, for a PDF or multi-page TIFF, per page.
#[derive(Debug, Serialize, ToSchema)]
pub struct UploadResponse {
    /// The cards the files went to, in the order their parts arrived (a
    /// file's pages in page order, each with its `source_name` and
    /// `page`): new cards, and in a two-sided batch earlier cards an image
    /// completed (with both `images` now), each once.
    pub accepted: Vec<Card>,
    /// Files, or pages of a file, that were not added, each with its reason.
    pub rejected: Vec<RejectedFile>,
    /// In a two-sided batch, the cards of `accepted` that still have one
    /// side only, and why. The batch starts when none is left
    /// (`counts.unpaired`), or with `accept_singles`.
    pub unpaired: Vec<Unpaired>,
}

/// A card of a two-sided batch that has one side only.
#[derive(Debug, Serialize, ToSchema)]
pub struct Unpaired {
    /// The card.
    pub card_id: i64,
    /// Its name.
    pub original_name: String,
    /// The side it has.
    pub side: Side,
    /// What it waits for, for people.
    pub message: String,
}

impl Unpaired {
    /// The report for `card`, when it has one side only.
    fn of(card: &Card, pairing: Pairing) -> Option<Self> {
        let side = card.side?;
        if card.images.len() > 1 {
            return None;
        }
        let marked = cardex_core::sides::side_of_name(&card.original_name).is_some();
        let message = match (pairing, side, marked) {
            (Pairing::Name, _, false) => "its name has no side mark before the extension \
                 (_front/_back, _recto/_verso, a/b, -1/-2), so no other image pairs with it"
                .to_owned(),
            (Pairing::Name, Side::Front, true) => {
                "waiting for its back (the same name with the back's mark)".to_owned()
            }
            (Pairing::Name, Side::Back, true) => {
                "waiting for its front (the same name with the front's mark)".to_owned()
            }
            (Pairing::Order, _, _) => "waiting for its back: the next image uploaded".to_owned(),
        };
        Some(Self {
            card_id: card.id,
            original_name: card.original_name.clone(),
            side,
            message,
        })
    }
}

/// A multipart body: one or more parts named `files`.
/// Parts with other names are reported in `rejected` and skipped.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    /// Image files (JPEG, PNG, TIFF, WebP, GIF), or PDFs and multi-page
    /// TIFFs: one card per page.
    #[schema(value_type = Vec<String>, format = Binary, min_items = 1)]
    files: Vec<Vec<u8>>,
}

/// Appends images to an open batch. Each file is checked by content; a
/// bad file is reported in `rejected` and never fails the others. A PDF or
/// a multi-page TIFF adds one card per page; a refused page is reported
/// with its `page`, the file's other pages are kept. A file refused as a
/// whole (`pdf_encrypted`, `pdf_damaged`, `pdf_too_complex`,
/// `too_many_pages`) adds nothing. When no file at all is accepted the
/// status is 4xx, with the same report.
#[utoipa::path(post, path = "/api/batches/{id}/images",
    operation_id = "upload_images", tag = "images",
    params(("id" = String, Path, description = "Batch id")),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 200, body = UploadResponse, description = "At least one file was added"),
        (status = 400, body = ErrorBody, description = "No file parts, or a malformed body"),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "The batch is locked"),
        (status = 413, body = ErrorBody, description = "Body or every file over the limit"),
        (status = 415, body = ErrorBody, description = "Not multipart, or no file is an image"),
        (status = 422, body = ErrorBody, description = "No file was accepted; see `rejected`"),
        (status = 507, body = ErrorBody, description = "The server's disk is full; nothing was kept"),
    ))]
pub(crate) async fn upload(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    headers: HeaderMap,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Response {
    match receive_upload(state, id, headers, multipart).await {
        Ok(report) => Json(report).into_response(),
        Err(e) => {
            // The body may be partly unread: the connection cannot be reused.
            let mut res = e.into_response();
            res.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            res
        }
    }
}

async fn receive_upload(
    state: AppState,
    id: String,
    headers: HeaderMap,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<UploadResponse, ApiError> {
    let id = batch_id(id)?;
    // Refuse before reading a byte of the body.
    let batch = state.store.get_batch(&id).await?;
    if batch.state.is_locked() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "batch_locked",
            format!(
                "the batch is {}: images can only be added while it is open",
                batch.state
            ),
        ));
    }
    let max = state.config.limits.max_request_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max) {
        return Err(upload_too_large(max));
    }
    let is_multipart = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
    if !is_multipart {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send images as multipart/form-data, one or more parts named `files`",
        ));
    }
    let mut multipart = multipart?;

    let mut budget = RequestBudget::new(state.config.limits);
    let mut accepted = Vec::new();
    let mut rejected = Vec::new();
    let mut parts = 0usize;
    let fatal = loop {
        let field = match budget.paced(multipart.next_field()).await {
            Err(stalled) => break Some(stalled),
            Ok(Ok(Some(f))) => f,
            Ok(Ok(None)) => break None,
            Ok(Err(e)) => {
                break Some(ApiError::new(
                    e.status(),
                    "invalid_multipart",
                    e.body_text(),
                ));
            }
        };
        parts += 1;
        if parts > state.config.limits.max_parts {
            break Some(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_many_parts",
                format!(
                    "at most {} files per request",
                    state.config.limits.max_parts
                ),
            ));
        }
        if field.name() != Some("files") {
            let name = field.name().unwrap_or("").to_owned();
            rejected.push(RejectedFile::file(
                field.file_name().unwrap_or(""),
                "unexpected_part",
                format!("multipart part {name:?} is not `files`; it was ignored"),
            ));
            continue;
        }
        match receive_file(&state, &id, field, &mut budget).await {
            FileOutcome::Admitted {
                accepted: cards,
                rejected: refused,
            } => {
                accepted.extend(cards);
                rejected.extend(refused);
            }
            FileOutcome::Fatal(e) => break Some(e),
        }
    };
    if let Some(err) = fatal {
        // The request broke: take back what it added, so it changed nothing.
        for (card, sha256) in accepted.iter().rev() {
            if let Err(e) = state.store.remove_image(&id, card.id, sha256).await {
                tracing::warn!(card = card.id, error = %e, "could not take back an upload");
            }
        }
        return Err(err);
    }
    if parts == 0 {
        return Err(ApiError::bad_request(
            "no_files",
            "the request holds no files: send one or more multipart parts named `files`",
        ));
    }
    if accepted.is_empty() {
        return Err(all_rejected(rejected));
    }
    // A card both of whose sides came in this request is reported once,
    // as it is at the end, where it first appeared.
    let mut cards: Vec<Card> = Vec::with_capacity(accepted.len());
    for (card, _) in accepted {
        let card = Card::from(card);
        match cards.iter_mut().find(|c| c.id == card.id) {
            Some(seen) => *seen = card,
            None => cards.push(card),
        }
    }
    let unpaired = match batch.two_sided {
        None => Vec::new(),
        Some(pairing) => cards
            .iter()
            .filter_map(|c| Unpaired::of(c, pairing.into()))
            .collect(),
    };
    Ok(UploadResponse {
        accepted: cards,
        rejected,
        unpaired,
    })
}

/// The error for an upload in which every file was refused: the status
/// fits the reason when all share one, and the per-file report is kept.
fn all_rejected(rejected: Vec<RejectedFile>) -> ApiError {
    let first = rejected[0].error.code.clone();
    let same = rejected.iter().all(|r| r.error.code == first);
    let (status, code) = if same {
        let status = match first.as_str() {
            "file_too_large" => StatusCode::PAYLOAD_TOO_LARGE,
            "not_an_image" | "unsupported_format" | "pdf_unsupported" => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            "duplicate_image" => StatusCode::CONFLICT,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        (status, first)
    } else {
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "files_rejected".to_owned(),
        )
    };
    let message = if rejected.len() == 1 {
        format!(
            "{:?}: {}",
            rejected[0].original_name, rejected[0].error.message
        )
    } else {
        format!(
            "none of the {} files was accepted; see `rejected`",
            rejected.len()
        )
    };
    ApiError::new(status, code, message)
        .with("accepted", serde_json::json!([]))
        .with(
            "rejected",
            serde_json::to_value(&rejected).unwrap_or_default(),
        )
}

/// The batch's cards in upload order.
#[utoipa::path(get, path = "/api/batches/{id}/images",
    operation_id = "list_cards", tag = "images",
    params(("id" = String, Path, description = "Batch id")),
    responses((status = 200, body = Vec<Card>), (status = 404, body = ErrorBody)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<Json<Vec<Card>>, ApiError> {
    let cards = state.store.list_cards(&batch_id(id)?).await?;
    Ok(Json(cards.into_iter().map(Card::from).collect()))
}

/// JPEG bytes, for the OpenAPI document.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)]
pub struct Jpeg(Vec<u8>);

/// Which image of a card to show.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PreviewQuery {
    /// `back` for a two-sided card's back; the front when absent.
    pub side: Option<Side>,
}

/// One card as the engine receives it: upright (EXIF orientation applied),
/// its first page or frame, scaled to the model's longest side, as JPEG —
/// so any stored format, TIFF included, can be shown in a browser.
/// `?side=back` shows a two-sided card's back.
#[utoipa::path(get, path = "/api/batches/{id}/images/{card_id}/preview",
    operation_id = "preview_card", tag = "images",
    params(("id" = String, Path, description = "Batch id"), ("card_id" = i64, Path, description = "Card id"), PreviewQuery),
    responses(
        (status = 200, description = "The prepared image", content_type = "image/jpeg", body = Jpeg),
        (status = 400, body = ErrorBody, description = "An unknown side"),
        (status = 404, body = ErrorBody, description = "No such card, or it has no back"),
        (status = 422, body = ErrorBody, description = "The stored image cannot be read"),
    ))]
pub(crate) async fn preview(
    State(state): State<AppState>,
    PathParams((id, card_id)): PathParams<(String, i64)>,
    QueryParams(query): QueryParams<PreviewQuery>,
) -> Result<Response, ApiError> {
    let side = query.side.map_or(cardex_core::Side::Front, Into::into);
    let image = prepared_card(&state, &batch_id(id)?, card_id, side).await?;
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(image.mime)),
            // A card's image never changes (ids are never reused), but
            // the preview's size follows the server's settings.
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, max-age=3600"),
            ),
        ],
        image.bytes,
    )
        .into_response())
}

/// Reads and prepares a card's image as a model receives it, taking its
/// turn with the runner's cards.
async fn prepared_card(
    state: &AppState,
    batch_id: &str,
    card_id: i64,
    side: cardex_core::Side,
) -> Result<PreparedImage, ApiError> {
    let path = state.store.card_path(batch_id, card_id, side).await?;
    state
        .runner
        .prepare_file(path)
        .await
        .map_err(|e| ApiError::invalid(e.code(), e.to_string()))
}

/// Removes one uploaded card while the batch is open.
#[utoipa::path(delete, path = "/api/batches/{id}/images/{card_id}",
    operation_id = "delete_card", tag = "images",
    params(("id" = String, Path, description = "Batch id"), ("card_id" = i64, Path, description = "Card id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "The batch is locked"),
    ))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    PathParams((id, card_id)): PathParams<(String, i64)>,
) -> Result<StatusCode, ApiError> {
    state.store.delete_card(&batch_id(id)?, card_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The upload route takes bodies far over axum's default 2 MB limit: it
/// enforces its own per-file and per-request limits while streaming.
pub(crate) fn no_body_limit() -> DefaultBodyLimit {
    DefaultBodyLimit::disable()
}
