//! The cardex server: HTTP API under `/api` (DESIGN §4), its OpenAPI
//! document and docs, and the web UI on the same port.
//!
//! [`serve`] takes an already bound listener and a shutdown future, so tests
//! run the real server on `127.0.0.1:0`.

mod auth;
mod config;
mod error;
pub mod export;
mod extract;
mod openapi;
mod routes;
pub mod runner;
mod spa;
mod state;
mod upload;

use std::future::Future;

use axum::Router;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

pub use config::{EngineConfig, Limits, OcrConfig, ServerConfig};
pub use error::{ApiError, ErrorBody};
pub use state::AppState;
pub use upload::{FileOutcome, RejectedFile, add_file};

/// The OpenAPI document served at `/api/openapi.json`, for clients that
/// generate their types from it (the web UI does, at build time).
pub fn openapi_json() -> String {
    let (_, openapi) = routes::api_router().split_for_parts();
    openapi
        .to_pretty_json()
        .expect("the OpenAPI document always serialises")
}

/// The whole application: API, docs, UI.
pub fn app(state: AppState) -> Router {
    let (api, openapi) = routes::api_router().split_for_parts();
    Router::new()
        .merge(api)
        .merge(openapi::docs(openapi))
        .fallback(spa::fallback)
        .method_not_allowed_fallback(error::method_not_allowed)
        // Outermost but for panics and tracing, so unknown /api paths are
        // guarded too and reveal nothing without the token.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ))
        .layer(CatchPanicLayer::custom(error::panic_response))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Serves `app(state)` on `listener` and runs the batch runner, until
/// `shutdown` completes. Then progress streams close, cards in flight go
/// back to `pending`, and open requests finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let stop = state.stop.clone();
    let runner = tokio::spawn(state.runner.clone().run());
    let stopping = stop.clone();
    let served = axum::serve(listener, app(state))
        .with_graceful_shutdown(async move {
            shutdown.await;
            stopping.cancel();
        })
        .await;
    stop.cancel();
    if let Err(e) = runner.await {
        tracing::error!(error = %e, "the batch runner panicked");
    }
    served
}
