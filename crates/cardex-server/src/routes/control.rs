//! Controlling a started batch: pause, resume, cancel, retry-failed.

use axum::Json;
use axum::extract::State;
use cardex_core::BatchState;

use super::batch_id;
use crate::api::Batch;
use crate::error::ErrorBody;
use crate::extract::PathParams;
use crate::{ApiError, AppState};

async fn move_to(
    state: &AppState,
    id: String,
    from: &[BatchState],
    to: BatchState,
) -> Result<Json<Batch>, ApiError> {
    let id = batch_id(id)?;
    let events = state.store.transition(&id, from, to, None).await?;
    match to {
        BatchState::Paused => state.runner.hold(&id),
        BatchState::Running => state.runner.unhold(&id),
        _ => {}
    }
    if to == BatchState::Cancelled || events.len() > 1 {
        state.runner.forget_batch(&id);
    }
    if to == BatchState::Cancelled {
        // Its claimed cards not sent yet stay unsent.
        state.runner.hold(&id);
    }
    for event in &events {
        state.runner.publish(&id, event);
    }
    state.runner.wake();
    state.runner.send_progress(&id).await;
    Ok(Json(state.read_batch(&id).await?))
}

/// 409 `budget_reached` for a batch with cards still to read that is at
/// its budget: it would only pause again. One with nothing left may go on
/// (and end).
async fn refuse_over_budget(state: &AppState, id: &str) -> Result<(), ApiError> {
    let batch = state.store.get_batch(id).await?;
    let to_read = batch.counts.pending + batch.counts.processing + batch.counts.failed;
    match batch.budget.reached(&batch.usage, state.runner.prices()) {
        Some(why) if to_read > 0 => Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            cardex_runner::BUDGET_REACHED,
            why,
        )),
        _ => Ok(()),
    }
}

/// Stops taking new cards; cards in flight finish, claimed ones not yet
/// sent go back in line.
#[utoipa::path(post, path = "/api/batches/{id}/pause", tag = "batches",
    params(("id" = String, Path, description = "Batch id")),
    responses((status = 200, body = Batch), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "The batch is not running")))]
pub(crate) async fn pause(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<Json<Batch>, ApiError> {
    move_to(&state, id, &[BatchState::Running], BatchState::Paused).await
}

/// Continues a paused batch.
#[utoipa::path(post, path = "/api/batches/{id}/resume", tag = "batches",
    params(("id" = String, Path, description = "Batch id")),
    responses((status = 200, body = Batch), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "The batch is not paused, or it is at its budget")))]
pub(crate) async fn resume(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<Json<Batch>, ApiError> {
    refuse_over_budget(&state, &batch_id(id.clone())?).await?;
    move_to(&state, id, &[BatchState::Paused], BatchState::Running).await
}

/// Stops a batch for good; cards not yet processed stay pending.
#[utoipa::path(post, path = "/api/batches/{id}/cancel", tag = "batches",
    params(("id" = String, Path, description = "Batch id")),
    responses((status = 200, body = Batch), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "The batch is not running or paused")))]
pub(crate) async fn cancel(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<Json<Batch>, ApiError> {
    move_to(
        &state,
        id,
        &[BatchState::Running, BatchState::Paused],
        BatchState::Cancelled,
    )
    .await
}

/// Queues the failed cards again, their images back out of `_errors/`.
#[utoipa::path(post, path = "/api/batches/{id}/retry-failed", tag = "batches",
    params(("id" = String, Path, description = "Batch id")),
    responses((status = 200, body = Batch), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "Nothing failed, the batch is running, or it is at its budget")))]
pub(crate) async fn retry_failed(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<Json<Batch>, ApiError> {
    let id = batch_id(id)?;
    refuse_over_budget(&state, &id).await?;
    let event = state.store.retry_failed(&id).await?;
    state.runner.unhold(&id);
    state.runner.publish(&id, &event);
    state.runner.wake();
    state.runner.send_progress(&id).await;
    Ok(Json(state.read_batch(&id).await?))
}
