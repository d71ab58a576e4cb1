//! Everything outside the API: the web UI from its build folder, with
//! `index.html` for deep links, and JSON 404s for unknown `/api` paths.

use axum::extract::{Request, State};
use axum::response::{Html, IntoResponse, Response};
use tower::ServiceExt;
use tower_http::services::{ServeDir, ServeFile};

use crate::AppState;
use crate::error::route_not_found;

pub(crate) async fn fallback(State(state): State<AppState>, req: Request) -> Response {
    let path = req.uri().path();
    if path == "/api" || path.starts_with("/api/") {
        return route_not_found(req.uri().clone()).await.into_response();
    }
    match &state.config.web_dir {
        Some(dir) if dir.join("index.html").is_file() => {
            let index = ServeFile::new(dir.join("index.html"));
            match ServeDir::new(dir).fallback(index).oneshot(req).await {
                Ok(res) => res.into_response(),
                Err(never) => match never {},
            }
        }
        _ => Html(NO_UI).into_response(),
    }
}

const NO_UI: &str = "<!doctype html><meta charset=utf-8><title>cardex</title>\
<h1>cardex is running</h1>\
<p>The web UI has not been built: run <code>make run</code> from the source folder, \
or pass <code>--web-dir</code>.</p>\
<p>The HTTP API is documented at <a href=\"/api/docs\">/api/docs</a>.</p>";
