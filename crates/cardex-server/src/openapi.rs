//! The OpenAPI 3.1 document (built from the handlers' annotations) and the
//! interactive docs at `/api/docs`, served from files inside the binary.

use axum::Router;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use crate::AppState;

/// The document's fixed parts; paths are added by `routes!`.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "cardex",
        description = "Turn scanned cards into structured data. Errors are \
            `{\"error\": {\"code\", \"message\"}}` with a fitting status.",
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "batches", description = "Create, inspect, start and delete batches"),
        (name = "images", description = "Card images of a batch"),
        (name = "fields", description = "What to extract"),
        (name = "prompt", description = "The generated prompt and JSON Schema"),
        (name = "templates", description = "Saved field lists"),
        (name = "results", description = "Results and errors of a batch"),
        (name = "system", description = "Health and engines"),
    )
)]
pub struct ApiDoc;

/// Declares the optional bearer token (DESIGN §7).
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// `/api/openapi.json` and the Swagger UI at `/api/docs` (vendored, no CDN).
pub(crate) fn docs(api: utoipa::openapi::OpenApi) -> Router<AppState> {
    SwaggerUi::new("/api/docs")
        .url("/api/openapi.json", api)
        .into()
}
