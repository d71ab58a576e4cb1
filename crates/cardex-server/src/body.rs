//! Slow clients: a request body other than an upload is read in full, up to
//! [`MAX_JSON_BODY`], within `request_timeout` before its handler runs, so a
//! client trickling a JSON body one byte a second is answered 408 instead of
//! holding a connection. Uploads stream and keep their own pace
//! ([`crate::upload::RequestBudget`]); slow headers are cut off by the HTTP
//! server ([`crate::serve`]).

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;

use crate::{ApiError, AppState};

/// Largest body other than an upload (axum's JSON limit).
pub const MAX_JSON_BODY: usize = 2 * 1024 * 1024;

pub(crate) async fn read_in_time(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let streams_itself = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/"));
    if streams_itself || matches!(*req.method(), Method::GET | Method::HEAD) {
        return next.run(req).await;
    }
    let timeout = state.config.limits.request_timeout;
    let (parts, body) = req.into_parts();
    match tokio::time::timeout(timeout, read_limited(body)).await {
        Err(_) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!(
                "the request body did not arrive within {} seconds",
                timeout.as_secs()
            ),
        )
        .into_response(),
        Ok(Err(e)) => e.into_response(),
        Ok(Ok(bytes)) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
    }
}

async fn read_limited(body: Body) -> Result<Vec<u8>, ApiError> {
    let mut stream = body.into_data_stream();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::bad_request(
                "invalid_body",
                format!("the request body could not be read: {e}"),
            )
        })?;
        if bytes.len() + chunk.len() > MAX_JSON_BODY {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("the request body is larger than {MAX_JSON_BODY} bytes"),
            ));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}
