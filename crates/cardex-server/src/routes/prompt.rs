//! The generated prompt: for a batch, or for a field list (preview).

use axum::Json;
use axum::extract::State;
use cardex_core::build_prompt;
use serde::Deserialize;
use utoipa::ToSchema;

use super::batch_id;
use super::fields::check_fields;
use crate::api::{Field, Prompt};
use crate::error::ErrorBody;
use crate::extract::{JsonBody, PathParams};
use crate::{ApiError, AppState};

/// The exact prompt and JSON Schema that would be sent for this batch.
#[utoipa::path(get, path = "/api/batches/{id}/prompt", tag = "prompt",
    params(("id" = String, Path, description = "Batch id")),
    responses((status = 200, body = Prompt), (status = 404, body = ErrorBody)))]
pub(crate) async fn for_batch(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<Json<Prompt>, ApiError> {
    let batch = state.store.get_batch(&batch_id(id)?).await?;
    Ok(Json(build_prompt(&batch.fields).into()))
}

/// Body of `POST /api/prompt-preview`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    /// The fields to build a prompt for.
    pub fields: Vec<Field>,
}

/// The prompt for a field list, without a batch.
#[utoipa::path(post, path = "/api/prompt-preview", tag = "prompt",
    request_body = PreviewRequest,
    responses((status = 200, body = Prompt), (status = 422, body = ErrorBody)))]
pub(crate) async fn preview(
    JsonBody(body): JsonBody<PreviewRequest>,
) -> Result<Json<Prompt>, ApiError> {
    let fields = check_fields(body.fields)?;
    Ok(Json(build_prompt(&fields).into()))
}
