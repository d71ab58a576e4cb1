//! The `/api` routes, one module per resource. Each handler carries its
//! `#[utoipa::path]`, and `routes!` registers handler and document together,
//! so the OpenAPI document cannot miss a route.

mod batches;
mod control;
mod engines;
mod estimate;
mod events;
mod fields;
mod health;
mod images;
mod prompt;
mod results;
mod reviews;
mod templates;
mod verify;

use utoipa::OpenApi;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use crate::openapi::ApiDoc;
use crate::{ApiError, AppState};

/// Every `/api` route with its OpenAPI description.
pub(crate) fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::health))
        .routes(routes!(engines::list))
        .routes(routes!(batches::list, batches::create))
        .routes(routes!(batches::get, batches::delete))
        .routes(routes!(batches::start))
        .routes(routes!(batches::set_budget))
        .routes(routes!(estimate::estimate))
        .routes(routes!(control::pause))
        .routes(routes!(control::resume))
        .routes(routes!(control::cancel))
        .routes(routes!(control::retry_failed))
        .routes(routes!(results::results))
        .routes(routes!(results::errors))
        .routes(routes!(verify::test_card))
        .routes(routes!(reviews::card))
        .routes(routes!(reviews::review))
        .routes(routes!(reviews::queue))
        .routes(routes!(events::events))
        .routes(routes!(images::upload, images::list).layer(images::no_body_limit()))
        .routes(routes!(images::delete))
        .routes(routes!(images::preview))
        .routes(routes!(fields::get, fields::put))
        .routes(routes!(prompt::for_batch))
        .routes(routes!(prompt::preview))
        .routes(routes!(templates::list, templates::create))
        .routes(routes!(
            templates::get,
            templates::update,
            templates::delete
        ))
}

/// Batch ids are 8 characters of base32; anything else cannot exist.
pub(crate) fn batch_id(id: String) -> Result<String, ApiError> {
    if cardex_core::naming::is_valid_id(&id) {
        Ok(id)
    } else {
        Err(ApiError::not_found("batch"))
    }
}

/// 409 `no_active_fields` unless `batch` has a field to read; `doing` says
/// what needs one ("testing").
pub(crate) fn need_active_fields(batch: &cardex_store::Batch, doing: &str) -> Result<(), ApiError> {
    if batch.fields.iter().any(|f| f.active) {
        return Ok(());
    }
    Err(ApiError::new(
        axum::http::StatusCode::CONFLICT,
        "no_active_fields",
        format!("define at least one active field before {doing}"),
    ))
}

/// The engine that reads `batch`, or 503 `engine_unavailable`.
pub(crate) fn batch_engine(
    state: &AppState,
    batch: &cardex_store::Batch,
) -> Result<std::sync::Arc<dyn cardex_engine::Engine>, ApiError> {
    state.runner.engines().get(&batch.engine).ok_or_else(|| {
        ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "engine_unavailable",
            format!(
                "the {} engine is not available on this server",
                batch.engine
            ),
        )
    })
}

/// A card's images prepared as `engine` reads them, front first (two for a
/// paired two-sided card), each taking its turn with the runner's cards.
pub(crate) async fn card_images(
    state: &AppState,
    batch_id: &str,
    card: &cardex_store::Card,
    engine: &dyn cardex_engine::Engine,
) -> Result<Vec<cardex_engine::PreparedImage>, ApiError> {
    let mut sides = vec![cardex_core::Side::Front];
    if card.back.is_some() {
        sides.push(cardex_core::Side::Back);
    }
    let mut images = Vec::with_capacity(sides.len());
    for side in sides {
        let path = state.store.card_path(batch_id, card.id, side).await?;
        let image = state
            .runner
            .prepare_for(path, engine)
            .await
            .map_err(|e| ApiError::invalid(e.code(), e.to_string()))?;
        images.push(image);
    }
    Ok(images)
}
