//! `GET /api/health`: liveness and version.

use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

/// The server is up.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: &'static str,
    /// The cardex version.
    pub version: &'static str,
}

/// Liveness and version.
#[utoipa::path(get, path = "/api/health", tag = "system",
    responses((status = 200, body = Health)))]
pub(crate) async fn health() -> Json<Health> {
    Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
    })
}
