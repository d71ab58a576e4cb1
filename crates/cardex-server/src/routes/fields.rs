//! A batch's field schema: read, replace while open.

use axum::Json;
use axum::extract::State;
use cardex_core::validate_fields;

use super::batch_id;
use crate::api::{Field, fields_in, fields_out};
use crate::error::ErrorBody;
use crate::extract::{JsonBody, PathParams};
use crate::{ApiError, AppState};

/// The batch's fields, in order.
#[utoipa::path(get, path = "/api/batches/{id}/fields",
    operation_id = "get_fields", tag = "fields",
    params(("id" = String, Path, description = "Batch id")),
    responses((status = 200, body = Vec<Field>), (status = 404, body = ErrorBody)))]
pub(crate) async fn get(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<Json<Vec<Field>>, ApiError> {
    let batch = state.store.get_batch(&batch_id(id)?).await?;
    Ok(Json(fields_out(batch.fields)))
}

/// Replaces the field list while the batch is open.
#[utoipa::path(put, path = "/api/batches/{id}/fields",
    operation_id = "put_fields", tag = "fields",
    params(("id" = String, Path, description = "Batch id")),
    request_body = Vec<Field>,
    responses(
        (status = 200, body = Vec<Field>, description = "The stored fields"),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "The batch is locked"),
        (status = 422, body = ErrorBody, description = "Invalid fields"),
    ))]
pub(crate) async fn put(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    JsonBody(fields): JsonBody<Vec<Field>>,
) -> Result<Json<Vec<Field>>, ApiError> {
    let id = batch_id(id)?;
    let fields = check_fields(fields)?;
    let batch = state.store.set_fields(&id, &fields).await?;
    Ok(Json(fields_out(batch.fields)))
}

/// Validates a field list, as a 422 naming the offending field.
pub(crate) fn check_fields(fields: Vec<Field>) -> Result<Vec<cardex_core::Field>, ApiError> {
    let fields = fields_in(fields);
    validate_fields(&fields).map_err(|e| ApiError::invalid("invalid_fields", e.to_string()))?;
    Ok(fields)
}
