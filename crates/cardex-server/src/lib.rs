//! The cardex server: HTTP API under `/api` (DESIGN §4), its OpenAPI
//! document and docs, and the web UI on the same port.
//!
//! [`serve`] takes an already bound listener and a shutdown future, so tests
//! run the real server on `127.0.0.1:0`.

pub mod api;
mod auth;
mod body;
mod config;
mod error;
pub mod export;
mod extract;
mod guard;
mod openapi;
mod routes;
mod spa;
mod state;
mod upload;

use std::future::Future;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

pub use config::{CrossCheckMode, EngineConfig, Limits, OcrConfig, ServerConfig};
pub use error::{ApiError, ErrorBody};
pub use guard::WebAccess;
pub use state::AppState;
pub use upload::RejectedFile;

/// The OpenAPI document served at `/api/openapi.json`, for clients that
/// generate their types from it (the web UI does, at build time).
pub fn openapi_json() -> String {
    let (_, openapi) = api();
    serde_json::to_string_pretty(&openapi).expect("a JSON value always serialises")
}

/// The API's routes and their finished OpenAPI document.
fn api() -> (Router<AppState>, serde_json::Value) {
    let (router, openapi) = routes::api_router().split_for_parts();
    let openapi = openapi::with_links(openapi::with_common_errors(openapi));
    (router, openapi::to_json(&openapi))
}

/// The whole application: API, docs, UI.
pub fn app(state: AppState) -> Router {
    let (api, openapi) = api();
    Router::new()
        .merge(api)
        .merge(openapi::docs(openapi))
        .fallback(spa::fallback)
        .method_not_allowed_fallback(error::method_not_allowed)
        // Outermost but for panics and tracing, so unknown /api paths are
        // guarded too and reveal nothing without the token.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            body::read_in_time,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ))
        // Before the token: a page of another site learns nothing, not
        // even whether a token is needed.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::check_host_and_origin,
        ))
        .layer(CatchPanicLayer::custom(error::panic_response))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .with_state(state)
}

/// The span of a request in traces: method and URI, with secrets in the
/// query (`access_token`) replaced, so no log level ever shows them.
fn request_span(req: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    tracing::debug_span!(
        "request",
        method = %req.method(),
        uri = %auth::redacted_uri(req.uri()),
        version = ?req.version(),
    )
}

/// Serves `app(state)` on `listener` and runs the batch runner, until
/// `shutdown` completes. Then progress streams close, cards in flight go
/// back to `pending`, and open requests finish.
///
/// The accept loop is hyper's HTTP/1 server with a timer, so a client that
/// sends its headers slowly is cut off after `request_timeout` (axum's
/// `serve` sets no timer, and with none hyper waits forever).
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let stop = state.stop.clone();
    let header_timeout = state.config.limits.request_timeout;
    let runner = tokio::spawn(state.runner.clone().run());
    let app = app(state);
    let connections = TaskTracker::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, say: wait instead of spinning.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        connections.spawn(serve_connection(
            stream,
            app.clone(),
            header_timeout,
            stop.clone(),
        ));
    }
    stop.cancel();
    connections.close();
    connections.wait().await;
    if let Err(e) = runner.await {
        tracing::error!(error = %e, "the batch runner panicked");
    }
    Ok(())
}

/// Serves one connection (WebSocket upgrades included) until the client
/// leaves, or until `stop`, when it finishes the request under way.
async fn serve_connection(
    stream: TcpStream,
    app: Router,
    header_timeout: Duration,
    stop: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(app))
        .with_upgrades();
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            return;
        }
        () = stop.cancelled() => conn.as_mut().graceful_shutdown(),
    }
    let _ = conn.await;
}
