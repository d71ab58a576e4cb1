//! Optional bearer-token auth for every `/api` route but the liveness
//! probe `GET /api/health` (DESIGN §7, §17).

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
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
    let path = req.uri().path();
    if !path.starts_with("/api") || (path == "/api/health" && req.method() == Method::GET) {
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

/// The `access_token` of a query string, percent-decoded: browsers encode
/// `+`, `/` and `=` (every base64 token has them) as `%2B`, `%2F`, `%3D`.
fn query_token(query: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == "access_token")
        .map(|(_, value)| value.into_owned())
}

/// `uri` as it may appear in logs: the value of `access_token` (and of any
/// other secret-looking parameter) replaced by `<redacted>`.
pub(crate) fn redacted_uri(uri: &axum::http::Uri) -> String {
    let Some(query) = uri.query() else {
        return uri.path().to_owned();
    };
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        let secret = ["token", "key", "secret", "password"]
            .iter()
            .any(|s| key.to_ascii_lowercase().contains(s));
        out.append_pair(&key, if secret { "<redacted>" } else { &value });
    }
    format!("{}?{}", uri.path(), out.finish())
}

fn unauthorized(message: &str) -> Response {
    let mut res = ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message).into_response();
    res.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    res
}
