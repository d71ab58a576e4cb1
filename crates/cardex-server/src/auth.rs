//! Optional bearer-token auth for every `/api` route (DESIGN §7).

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::{ApiError, AppState};

/// Lets a request through when no token is configured, or when it carries
/// `Authorization: Bearer <token>`. WebSocket upgrades may instead pass
/// `?access_token=<token>`, since browsers cannot set headers on them.
pub(crate) async fn require_token(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let Some(expected) = state.config.api_token.as_deref() else {
        return next.run(req).await;
    };
    if !req.uri().path().starts_with("/api") {
        return next.run(req).await;
    }
    let from_header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let is_upgrade = req.headers().contains_key(header::UPGRADE);
    let from_query = is_upgrade
        .then(|| query_token(req.uri().query().unwrap_or("")))
        .flatten();
    match from_header.or(from_query.as_deref()) {
        Some(given) if bool::from(given.as_bytes().ct_eq(expected.as_bytes())) => {
            next.run(req).await
        }
        Some(_) => unauthorized("the API token is wrong"),
        None => {
            unauthorized("this server needs an API token: send `Authorization: Bearer <token>`")
        }
    }
}

fn query_token(query: &str) -> Option<String> {
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("access_token="))
        .map(str::to_owned)
}

fn unauthorized(message: &str) -> Response {
    let mut res = ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message).into_response();
    res.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    res
}
