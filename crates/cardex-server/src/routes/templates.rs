//! Templates: saved field lists.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Deserialize;
use utoipa::ToSchema;

use super::fields::check_fields;
use crate::api::{Field, Template};
use crate::error::ErrorBody;
use crate::extract::{JsonBody, PathParams};
use crate::{ApiError, AppState};

/// Longest template name, in characters.
const MAX_TEMPLATE_NAME: usize = 100;

/// Body of `POST /api/templates` and `PUT /api/templates/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateBody {
    /// Unique, ignoring case; 1–100 characters.
    #[schema(example = "Library catalog card")]
    pub name: String,
    /// The fields, in order.
    pub fields: Vec<Field>,
}

impl TemplateBody {
    fn checked(self) -> Result<(String, Vec<cardex_core::Field>), ApiError> {
        let name = self.name.trim().to_owned();
        if name.is_empty()
            || name.chars().count() > MAX_TEMPLATE_NAME
            || name.chars().any(char::is_control)
        {
            return Err(ApiError::invalid(
                "invalid_name",
                format!(
                    "a template name needs 1 to {MAX_TEMPLATE_NAME} characters, without control characters"
                ),
            ));
        }
        Ok((name, check_fields(self.fields)?))
    }
}

/// Every template, by name.
#[utoipa::path(get, path = "/api/templates",
    operation_id = "list_templates", tag = "templates",
    responses((status = 200, body = Vec<Template>)))]
pub(crate) async fn list(State(state): State<AppState>) -> Result<Json<Vec<Template>>, ApiError> {
    let templates = state.store.list_templates().await?;
    Ok(Json(templates.into_iter().map(Template::from).collect()))
}

/// Saves a new template.
#[utoipa::path(post, path = "/api/templates",
    operation_id = "create_template", tag = "templates", request_body = TemplateBody,
    responses(
        (status = 201, body = Template),
        (status = 409, body = ErrorBody, description = "The name is taken"),
        (status = 422, body = ErrorBody),
    ))]
pub(crate) async fn create(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<TemplateBody>,
) -> Result<impl IntoResponse, ApiError> {
    let (name, fields) = body.checked()?;
    let t = Template::from(state.store.create_template(&name, &fields).await?);
    let location = format!("/api/templates/{}", t.id);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(t)))
}

/// One template.
#[utoipa::path(get, path = "/api/templates/{id}",
    operation_id = "get_template", tag = "templates",
    params(("id" = String, Path, description = "Template id")),
    responses((status = 200, body = Template), (status = 404, body = ErrorBody)))]
pub(crate) async fn get(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<Json<Template>, ApiError> {
    Ok(Json(state.store.get_template(&id).await?.into()))
}

/// Renames a template or replaces its fields. Batches made from it keep theirs.
#[utoipa::path(put, path = "/api/templates/{id}",
    operation_id = "update_template", tag = "templates",
    params(("id" = String, Path, description = "Template id")),
    request_body = TemplateBody,
    responses(
        (status = 200, body = Template),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "The name is taken"),
        (status = 422, body = ErrorBody),
    ))]
pub(crate) async fn update(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    JsonBody(body): JsonBody<TemplateBody>,
) -> Result<Json<Template>, ApiError> {
    let (name, fields) = body.checked()?;
    Ok(Json(
        state
            .store
            .update_template(&id, &name, &fields)
            .await?
            .into(),
    ))
}

/// Deletes a template.
#[utoipa::path(delete, path = "/api/templates/{id}",
    operation_id = "delete_template", tag = "templates",
    params(("id" = String, Path, description = "Template id")),
    responses((status = 204, description = "Deleted"), (status = 404, body = ErrorBody)))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    state.store.delete_template(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
