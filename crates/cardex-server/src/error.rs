//! One error type for every handler, rendered as the envelope of DESIGN §4:
//! `{"error": {"code": "...", "message": "..."}}`. Server-side failures get
//! a generic message; their details go to the log only.

use std::any::Any;

use axum::Json;
use axum::extract::multipart::MultipartRejection;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use cardex_store::StoreError;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// An error answer: status, stable code, message for people.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: String,
    message: String,
    /// More top-level members of the body (an upload's per-file report);
    /// boxed to keep `Result<_, ApiError>` small.
    extra: Option<Box<Map<String, Value>>>,
}

/// The error envelope, for the OpenAPI document.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// The inside of the error envelope.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable, e.g. `batch_locked`.
    #[schema(example = "batch_locked")]
    pub code: String,
    /// What happened and what to do, for people.
    pub message: String,
}

impl ApiError {
    /// An error with any status.
    pub fn new(status: StatusCode, code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.into(),
            message: message.into(),
            extra: None,
        }
    }

    /// 400: the request is malformed.
    pub fn bad_request(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404 for a missing thing.
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            format!("{what}_not_found"),
            format!("{what} not found"),
        )
    }

    /// 422: well-formed but not acceptable.
    pub fn invalid(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    /// 500 with a generic message; `detail` is logged, never sent.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(%detail, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the server failed to handle this request; the details are in its log",
        )
    }

    /// Adds a top-level member to the error body.
    pub fn with(mut self, key: &str, value: Value) -> Self {
        self.extra
            .get_or_insert_with(Default::default)
            .insert(key.to_owned(), value);
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable code.
    pub fn code(&self) -> &str {
        &self.code
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = self.extra.map(|b| *b).unwrap_or_default();
        body.insert(
            "error".into(),
            serde_json::json!({"code": self.code, "message": self.message}),
        );
        (self.status, Json(Value::Object(body))).into_response()
    }
}

impl ApiError {
    /// 507: the disk holding the data dir is full. Nothing of the request
    /// was kept.
    pub fn insufficient_storage() -> Self {
        Self::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "insufficient_storage",
            "the server's disk is full; nothing of this request was kept — free some space and send it again",
        )
    }

    /// A failed file operation: 507 when the disk is full, else a 500.
    pub fn from_io(e: std::io::Error) -> Self {
        if cardex_store::io_disk_full(&e) {
            Self::insufficient_storage()
        } else {
            Self::internal(e)
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        if e.is_disk_full() {
            return Self::insufficient_storage();
        }
        match e {
            StoreError::NotFound { what } => Self::not_found(what),
            StoreError::Conflict { code, message } => {
                Self::new(StatusCode::CONFLICT, code, message)
            }
            other => Self::internal(other),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let (code, message) = match &r {
            JsonRejection::JsonDataError(e) => ("invalid_body", e.body_text()),
            JsonRejection::JsonSyntaxError(e) => ("invalid_json", e.body_text()),
            JsonRejection::MissingJsonContentType(_) => (
                "unsupported_media_type",
                "send the body as JSON with `Content-Type: application/json`".to_owned(),
            ),
            JsonRejection::BytesRejection(_) => ("body_too_large", r.body_text()),
            _ => ("invalid_body", r.body_text()),
        };
        Self::new(r.status(), code, message)
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        Self::bad_request("invalid_path", r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        Self::bad_request("invalid_query", r.body_text())
    }
}

impl From<MultipartRejection> for ApiError {
    fn from(r: MultipartRejection) -> Self {
        let status = r.status();
        let code = if status == StatusCode::UNSUPPORTED_MEDIA_TYPE {
            "unsupported_media_type"
        } else {
            "invalid_multipart"
        };
        Self::new(
            status,
            code,
            format!(
                "{}; send images as multipart/form-data parts named `files`",
                r.body_text()
            ),
        )
    }
}

/// JSON 404 for unknown `/api` routes.
pub(crate) async fn route_not_found(uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "route_not_found",
        format!("no API route {}; see /api/docs", uri.path()),
    )
}

/// JSON 405 for a known path with the wrong method.
pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this path does not accept that method; see /api/docs",
    )
}

/// A handler panicked: answer 500 in the envelope and keep serving.
pub(crate) fn panic_response(err: Box<dyn Any + Send + 'static>) -> Response {
    let detail = err
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| err.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    ApiError::internal(format!("handler panicked: {detail}")).into_response()
}
