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
        if !value.is_object() {
            return Err(ApiError::invalid(
                "invalid_body",
                "the body must be a JSON object",
            ));
        }
        serde_json::from_value(value)
            .map(Self)
            .map_err(|e| ApiError::invalid("invalid_body", format!("the body does not fit: {e}")))
    }
}
