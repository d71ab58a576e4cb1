//! `POST /api/batches/{id}/test`: run one card through the batch's engine
//! now, changing nothing — the verification step before starting.

use std::time::Instant;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use cardex_engine::{CompiledPrompt, EngineError, retry_attempts};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::batch_id;
use crate::error::ErrorBody;
use crate::extract::{JsonBody, PathParams};
use crate::{ApiError, AppState};

/// Body of the one-card test; without `card_id`, the batch's first card.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestRequest {
    /// The card to test.
    pub card_id: Option<i64>,
}

/// What the engine made of the card.
#[derive(Debug, Serialize, ToSchema)]
pub struct TestResult {
    /// The card tested.
    pub card_id: i64,
    /// Its file name.
    pub original_name: String,
    /// Field → value, validated.
    #[schema(value_type = Object)]
    pub result: serde_json::Map<String, serde_json::Value>,
    /// The engine's answer text.
    pub raw: String,
    /// Time for the successful attempt, in milliseconds.
    pub elapsed_ms: u64,
    /// Time for everything (preparation and retries), in milliseconds.
    pub total_ms: u64,
    /// Attempts made.
    pub attempts: u32,
    /// What reading it cost, every attempt summed (tokens where the
    /// server reports them).
    pub usage: crate::api::CardUsage,
}

/// Extracts one card now, without starting the batch or changing anything.
#[utoipa::path(post, path = "/api/batches/{id}/test", tag = "prompt",
    params(("id" = String, Path, description = "Batch id")),
    request_body = TestRequest,
    responses(
        (status = 200, body = TestResult),
        (status = 404, body = ErrorBody, description = "No such batch or card"),
        (status = 409, body = ErrorBody, description = "No active field, or no card"),
        (status = 422, body = ErrorBody, description = "The card's image cannot be read"),
        (status = 502, body = ErrorBody, description = "The engine failed"),
        (status = 503, body = ErrorBody, description = "The batch's engine is not available"),
    ))]
pub(crate) async fn test_card(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    JsonBody(body): JsonBody<TestRequest>,
) -> Result<Json<TestResult>, ApiError> {
    let started = Instant::now();
    let id = batch_id(id)?;
    let batch = state.store.get_batch(&id).await?;
    super::need_active_fields(&batch, "testing")?;
    let card = match body.card_id {
        Some(card_id) => state.store.get_card(&id, card_id).await?,
        None => state
            .store
            .list_cards(&id)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::CONFLICT,
                    "no_images",
                    "upload a card to test first",
                )
            })?,
    };
    let engine = super::batch_engine(&state, &batch)?;
    let prompt = CompiledPrompt::new(&batch.fields).map_err(ApiError::internal)?;
    // As the runner will read it: the original for the OCR engine, in the
    // batch's language.
    // Both sides of a two-sided card, as the runner will send them.
    let images = super::card_images(&state, &id, &card, engine.as_ref()).await?;
    let lang = batch.ocr_lang.as_deref();
    let attempted = retry_attempts(&state.config.runner.retry, || {
        engine.extract_in(&images, &prompt, lang)
    })
    .await;
    match attempted.result {
        Ok(x) => Ok(Json(TestResult {
            card_id: card.id,
            original_name: card.original_name,
            result: x.fields,
            raw: x.raw,
            elapsed_ms: x.elapsed.as_millis() as u64,
            total_ms: started.elapsed().as_millis() as u64,
            attempts: attempted.attempts,
            usage: attempted.usage.into(),
        })),
        Err(e) => {
            let mut err = ApiError::new(StatusCode::BAD_GATEWAY, e.code(), e.to_string());
            if let EngineError::BadAnswer { raw, .. } = &e {
                err = err.with("raw", serde_json::Value::String(raw.clone()));
            }
            Err(err)
        }
    }
}
