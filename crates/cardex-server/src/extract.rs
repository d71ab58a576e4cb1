//! Extractors whose rejections are [`ApiError`]s, so malformed requests get
//! the same error envelope as everything else.

use axum::extract::FromRequest;
use axum::extract::FromRequestParts;

use crate::ApiError;

/// `axum::Json` with enveloped rejections (bad syntax, wrong content type,
/// unknown fields, too large).
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct JsonBody<T>(pub T);

/// `axum::extract::Path` with enveloped rejections.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct PathParams<T>(pub T);

/// `axum::extract::Query` with enveloped rejections.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct QueryParams<T>(pub T);

/// A JSON object body as `T`: [`JsonBody`], but an array is refused even
/// where `T`'s fields could all be read from one (serde reads a struct
/// from a sequence too, so `[null, null]` would pass for a struct of two
/// optional fields).
#[derive(Debug)]
pub struct JsonObject<T>(pub T);

impl<T, S> FromRequest<S> for JsonObject<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        let JsonBody(value) = JsonBody::<serde_json::Value>::from_request(req, state).await?;
        object(value).map(Self)
    }
}

/// `value` as `T`, when it is a JSON object that fits.
fn object<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    if !value.is_object() {
        return Err(ApiError::invalid(
            "invalid_body",
            "the body must be a JSON object",
        ));
    }
    serde_json::from_value(value)
        .map_err(|e| ApiError::invalid("invalid_body", format!("the body does not fit: {e}")))
}

/// A [`JsonObject`] body that may be left out: no body at all, or `null`,
/// reads as `T::default()`, so a bare `POST` keeps working where options
/// were added.
#[derive(Debug)]
pub struct OptionalJsonObject<T>(pub T);

impl<T, S> FromRequest<S> for OptionalJsonObject<T>
where
    T: serde::de::DeserializeOwned + Default,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        use axum::http::header;
        // HTTP/1.1 (what the server speaks) says a body is there by its
        // length or its chunking; neither means none.
        let headers = req.headers();
        let empty = !headers.contains_key(header::TRANSFER_ENCODING)
            && headers
                .get(header::CONTENT_LENGTH)
                .is_none_or(|len| len.as_bytes() == b"0");
        if empty {
            return Ok(Self(T::default()));
        }
        let JsonBody(value) = JsonBody::<serde_json::Value>::from_request(req, state).await?;
        if value.is_null() {
            return Ok(Self(T::default()));
        }
        object(value).map(Self)
    }
}
