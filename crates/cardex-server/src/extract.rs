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
