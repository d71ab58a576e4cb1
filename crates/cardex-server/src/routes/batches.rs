//! Batches: create, list, get, delete, start.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use cardex_core::BatchName;
use cardex_store::NewBatch;
use serde::Deserialize;
use utoipa::ToSchema;

use super::batch_id;
use crate::api::{Batch, Budget, Pairing, Quality};
use crate::error::ErrorBody;
use crate::extract::{JsonBody, JsonObject, OptionalJsonObject, PathParams};
use crate::{ApiError, AppState};

/// Body of `POST /api/batches`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBatch {
    /// Any text; made filesystem-safe for the batch's name.
    #[schema(example = "Hemingway Letters")]
    pub name: String,
    /// Copy this template's fields into the new batch.
    pub template_id: Option<String>,
    /// `ocr` or `vlm`; the server's default when absent.
    pub engine: Option<String>,
    /// Tesseract language code(s) for the OCR engine, e.g. `deu` or
    /// `deu+eng`; the server's `--ocr-lang` when absent.
    /// Each must be installed (`GET /api/engines` lists them).
    #[schema(
        example = "deu+eng",
        pattern = "^[a-z_]{3,16}(\\+[a-z_]{3,16}){0,7}$",
        max_length = 64
    )]
    pub ocr_lang: Option<String>,
    /// Most tokens the batch may use; reaching it pauses the batch.
    #[schema(minimum = 1)]
    pub max_tokens: Option<u64>,
    /// Most US dollars the batch may cost at the server's prices.
    #[schema(exclusive_minimum = 0.0)]
    pub max_cost: Option<f64>,
    /// 2 for two-sided cards, whose front and back are paired into one
    /// card (DESIGN §16); 1 when absent.
    #[schema(minimum = 1, maximum = 2)]
    pub sides: Option<u8>,
    /// How a two-sided batch pairs its images: by side marks in the file
    /// names (the default) or by upload order. Only with `sides: 2`.
    pub pairing: Option<Pairing>,
}

impl CreateBatch {
    /// The pairing of a two-sided batch, `None` for one-sided cards.
    fn two_sided(&self) -> Result<Option<cardex_core::Pairing>, ApiError> {
        match (self.sides.unwrap_or(1), self.pairing) {
            (1, None) => Ok(None),
            (1, Some(_)) => Err(ApiError::invalid(
                "invalid_sides",
                "`pairing` is for two-sided cards: send it with `sides: 2`",
            )),
            (2, pairing) => Ok(Some(pairing.unwrap_or(Pairing::Name).into())),
            (n, _) => Err(ApiError::invalid(
                "invalid_sides",
                format!("`sides` is 1 or 2 (a card's front and back), not {n}"),
            )),
        }
    }
}

/// Body of `POST /api/batches/{id}/start`; may be left out.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartBatch {
    /// Start a two-sided batch although some of its cards have one side
    /// only; those are read as they are.
    #[serde(default)]
    pub accept_singles: bool,
}

/// Every batch, newest first, with counts.
#[utoipa::path(get, path = "/api/batches",
    operation_id = "list_batches", tag = "batches",
    responses((status = 200, body = Vec<Batch>)))]
pub(crate) async fn list(State(state): State<AppState>) -> Result<Json<Vec<Batch>>, ApiError> {
    let batches = state.store.list_batches().await?;
    Ok(Json(
        batches.into_iter().map(|b| state.batch_out(b)).collect(),
    ))
}

/// Creates an open batch, blank or with a copy of a template's fields.
#[utoipa::path(post, path = "/api/batches",
    operation_id = "create_batch", tag = "batches", request_body = CreateBatch,
    responses(
        (status = 201, body = Batch, description = "Created; `Location` names it"),
        (status = 404, body = ErrorBody, description = "The template does not exist"),
        (status = 422, body = ErrorBody, description = "Unusable name, unknown engine, or `sides` other than 1 or 2"),
    ))]
pub(crate) async fn create(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<CreateBatch>,
) -> Result<impl IntoResponse, ApiError> {
    let two_sided = body.two_sided()?;
    let engine = match body.engine.as_deref() {
        None => state.config.default_engine(),
        Some(e) => state
            .config
            .engine_names()
            .into_iter()
            .find(|n| *n == e)
            .ok_or_else(|| {
                ApiError::invalid(
                    "unknown_engine",
                    format!(
                        "no engine {e:?} is configured; available: {}",
                        state.config.engine_names().join(", ")
                    ),
                )
            })?,
    };
    let id = cardex_core::naming::new_id();
    let name = BatchName::new(&body.name, time_now(), &id)
        .map_err(|e| ApiError::invalid("invalid_name", e.to_string()))?;
    let ocr_lang = body.ocr_lang.as_deref();
    if let Some(lang) = ocr_lang
        && !cardex_core::naming::is_ocr_lang(lang)
    {
        return Err(ApiError::invalid(
            "invalid_ocr_lang",
            format!(
                "{lang:?} is not a Tesseract language code: use codes such as eng, deu or fra, joined by + (deu+eng)"
            ),
        ));
    }
    if let Some(lang) = ocr_lang {
        // Refused now rather than found missing when the first card is read.
        let installed = cardex_engine::tessdata::installed_languages();
        let missing: Vec<&str> = lang
            .split('+')
            .filter(|code| !installed.iter().any(|i| i == code))
            .collect();
        if !installed.is_empty() && !missing.is_empty() {
            return Err(ApiError::invalid(
                "unknown_ocr_lang",
                format!(
                    "no Tesseract data is installed for {}: install {} (Debian), or use one of {}",
                    missing.join(", "),
                    missing
                        .iter()
                        .map(|m| format!("tesseract-ocr-{}", m.replace('_', "-")))
                        .collect::<Vec<_>>()
                        .join(" "),
                    installed.join(", ")
                ),
            ));
        }
    }
    let priced = state.runner.prices().is_some() && cardex_runner::is_priced(engine);
    let budget = Budget {
        max_tokens: body.max_tokens,
        max_cost: body.max_cost,
    }
    .checked(priced)?;
    let batch = state
        .store
        .create_batch(&NewBatch {
            name: &name,
            engine,
            template_id: body.template_id.as_deref(),
            ocr_lang,
            budget,
            two_sided,
        })
        .await?;
    let location = format!("/api/batches/{}", batch.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(state.batch_out(batch)),
    ))
}

fn time_now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

/// One batch: state, fields, counts, progress.
#[utoipa::path(get, path = "/api/batches/{id}",
    operation_id = "get_batch", tag = "batches",
    params(("id" = String, Path, description = "Batch id")),
    responses((status = 200, body = Batch), (status = 404, body = ErrorBody)))]
pub(crate) async fn get(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<Json<Batch>, ApiError> {
    let batch = state.store.get_batch(&batch_id(id)?).await?;
    let quality = match batch.state {
        cardex_core::BatchState::Open => None,
        _ => Some(Quality::of(
            &batch,
            state.store.batch_quality(&batch.id).await?,
        )),
    };
    Ok(Json(Batch {
        quality,
        ..state.batch_out(batch)
    }))
}

/// Deletes a batch with its images and results. Refused while running.
#[utoipa::path(delete, path = "/api/batches/{id}",
    operation_id = "delete_batch", tag = "batches",
    params(("id" = String, Path, description = "Batch id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "The batch is running"),
    ))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    let id = batch_id(id)?;
    state.store.delete_batch(&id).await?;
    state.runner.forget_batch(&id);
    state.runner.hub().remove(&id);
    Ok(StatusCode::NO_CONTENT)
}

/// Locks the batch, moves its images into place and queues every card. A
/// two-sided batch with cards of one side only (`counts.unpaired`) starts
/// only with `accept_singles`.
#[utoipa::path(post, path = "/api/batches/{id}/start",
    operation_id = "start_batch", tag = "batches",
    params(("id" = String, Path, description = "Batch id")),
    request_body(content = Option<StartBatch>, description = "Optional: a bare POST starts as `{}` does"),
    responses(
        (status = 200, body = Batch, description = "Started"),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "No images, no active field, cards without their other side (`unpaired_images`), or already started"),
        (status = 422, body = ErrorBody, description = "A body that is not a JSON object of the options"),
    ))]
pub(crate) async fn start(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    OptionalJsonObject(body): OptionalJsonObject<StartBatch>,
) -> Result<Json<Batch>, ApiError> {
    let id = batch_id(id)?;
    let (batch, event) = state.store.start_batch(&id, body.accept_singles).await?;
    state.runner.publish(&id, &event);
    state.runner.wake();
    Ok(Json(state.batch_out(batch)))
}

/// Sets the batch's budget (`null` for no bound) while it may still read
/// cards. A batch paused at its budget goes on once resumed.
#[utoipa::path(put, path = "/api/batches/{id}/budget",
    operation_id = "set_budget", tag = "batches",
    params(("id" = String, Path, description = "Batch id")),
    request_body = Budget,
    responses(
        (status = 200, body = Batch),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "The batch has ended"),
        (status = 422, body = ErrorBody, description = "A bound is not above 0, or a cost bound without prices"),
    ))]
pub(crate) async fn set_budget(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    JsonObject(body): JsonObject<Budget>,
) -> Result<Json<Batch>, ApiError> {
    let id = batch_id(id)?;
    let engine = state.store.get_batch(&id).await?.engine;
    let budget =
        body.checked(state.runner.prices().is_some() && cardex_runner::is_priced(&engine))?;
    let batch = state.store.set_budget(&id, budget).await?;
    Ok(Json(state.batch_out(batch)))
}
