//! The OpenAPI 3.1 document (built from the handlers' annotations) and the
//! interactive docs at `/api/docs`, served from files inside the binary.

use axum::Router;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Ref, RefOr};
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

/// Adds the error answers any operation can give where its annotation does
/// not list them: 400 (malformed path, query or body) and 401 (missing or
/// wrong token, when the server has one); for operations with a body also
/// 408, 413 and 415. All in the error envelope.
pub(crate) fn with_common_errors(mut api: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    for item in api.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for op in operations.into_iter().flatten() {
            let mut errors = vec![
                ("400", "Malformed path, query or body"),
                ("401", "The API token is missing or wrong"),
            ];
            if op.request_body.is_some() {
                errors.extend([
                    ("408", "The body did not arrive in time"),
                    ("413", "The body is too large"),
                    ("415", "The body is not of the documented content type"),
                ]);
            }
            for (status, description) in errors {
                op.responses
                    .responses
                    .entry(status.to_owned())
                    .or_insert_with(|| error_response(description));
            }
        }
    }
    api
}

/// A POST that creates something, and how operations on it are linked.
struct Creator {
    path: &'static str,
    /// Its success status.
    status: &'static str,
    /// The path of what it creates; operations under it get links.
    created: &'static str,
    /// Where a linked operation's path parameters come from.
    parameters: &'static [(&'static str, &'static str)],
}

/// Adds OpenAPI links from the operations that create something to those
/// that take its id, so clients (and schemathesis's stateful tests) can
/// follow a new batch through upload, start, pause and export.
pub(crate) fn with_links(mut api: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    let creators = [
        Creator {
            path: "/api/batches",
            status: "201",
            created: "/api/batches/{id}",
            parameters: &[("id", "$response.body#/id")],
        },
        Creator {
            path: "/api/templates",
            status: "201",
            created: "/api/templates/{id}",
            parameters: &[("id", "$response.body#/id")],
        },
        Creator {
            path: "/api/batches/{id}/images",
            status: "200",
            created: "/api/batches/{id}/images/{card_id}",
            parameters: &[
                ("id", "$request.path.id"),
                ("card_id", "$response.body#/accepted/0/id"),
            ],
        },
    ];
    for Creator {
        path: creator,
        status,
        created,
        parameters,
    } in creators
    {
        let mut links = Vec::new();
        for (path, item) in &api.paths.paths {
            if !path.starts_with(created) {
                continue;
            }
            let operations = [&item.get, &item.put, &item.post, &item.delete, &item.patch];
            for op in operations.into_iter().flatten() {
                let Some(target) = &op.operation_id else {
                    continue;
                };
                let mut link = LinkBuilder::new().operation_id(target);
                for (name, value) in parameters {
                    if path.contains(&format!("{{{name}}}")) {
                        link = link.parameter(*name, *value);
                    }
                }
                links.push((target.clone(), link.build()));
            }
        }
        let response = api
            .paths
            .paths
            .get_mut(creator)
            .and_then(|item| item.post.as_mut())
            .and_then(|op| op.responses.responses.get_mut(status));
        if let Some(RefOr::T(response)) = response {
            for (name, link) in links {
                response.links.insert(name, RefOr::T(link));
            }
        }
    }
    api
}

fn error_response(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
        .into()
}

/// The document as JSON. utoipa 5.5 writes a link's `operationId` as
/// `operation_id` (its `Link` lacks serde's camelCase renaming), which
/// clients cannot resolve; the key is renamed here.
pub(crate) fn to_json(api: &utoipa::openapi::OpenApi) -> serde_json::Value {
    let mut doc = serde_json::to_value(api).expect("the OpenAPI document always serialises");
    let links = doc["paths"]
        .as_object_mut()
        .into_iter()
        .flat_map(|paths| paths.values_mut())
        .filter_map(|item| item.as_object_mut())
        .flat_map(|item| item.values_mut())
        .filter_map(|op| op.get_mut("responses")?.as_object_mut())
        .flat_map(|responses| responses.values_mut())
        .filter_map(|response| response.get_mut("links")?.as_object_mut())
        .flat_map(|links| links.values_mut())
        .filter_map(|link| link.as_object_mut());
    for link in links {
        if let Some(id) = link.remove("operation_id") {
            link.insert("operationId".into(), id);
        }
    }
    doc
}

/// `/api/openapi.json` and the Swagger UI at `/api/docs` (vendored, no CDN).
pub(crate) fn docs(api: serde_json::Value) -> Router<AppState> {
    SwaggerUi::new("/api/docs")
        .external_url_unchecked("/api/openapi.json", api)
        .into()
}
