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

/// The exact prompt and JSON Schema that would be sent for this batch;
/// for a two-sided batch, as sent with a card's two sides.
#[utoipa::path(get, path = "/api/batches/{id}/prompt", tag = "prompt",
    params(("id" = String, Path, description = "Batch id")),
    responses((status = 200, body = Prompt), (status = 404, body = ErrorBody)))]
pub(crate) async fn for_batch(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<Json<Prompt>, ApiError> {
    let batch = state.store.get_batch(&batch_id(id)?).await?;
    let sides = if batch.two_sided.is_some() { 2 } else { 1 };
    Ok(Json(prompt_for(&batch.fields, sides).into()))
}

/// Body of `POST /api/prompt-preview`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    /// The fields to build a prompt for.
    pub fields: Vec<Field>,
    /// 2 for the prompt of a two-sided card (both images); 1 when absent.
    #[schema(minimum = 1, maximum = 2)]
    pub sides: Option<u8>,
}

/// The prompt for `fields` as sent with a card of `sides` images.
fn prompt_for(fields: &[cardex_core::Field], sides: usize) -> cardex_core::Prompt {
    let mut prompt = build_prompt(fields);
    prompt.user = prompt.user_for(sides).into_owned();
    prompt
}

/// The prompt for a field list, without a batch.
#[utoipa::path(post, path = "/api/prompt-preview", tag = "prompt",
    request_body = PreviewRequest,
    responses((status = 200, body = Prompt), (status = 422, body = ErrorBody)))]
pub(crate) async fn preview(
    JsonBody(body): JsonBody<PreviewRequest>,
) -> Result<Json<Prompt>, ApiError> {
    let fields = check_fields(body.fields)?;
    let sides = match body.sides.unwrap_or(1) {
        n @ (1 | 2) => usize::from(n),
        n => {
            return Err(ApiError::invalid(
                "invalid_sides",
                format!("`sides` is 1 or 2, not {n}"),
            ));
        }
    };
    Ok(Json(prompt_for(&fields, sides).into()))
}
