//! Templates: named, saved field lists. A batch created from one gets a copy.

use async_trait::async_trait;
use cardex_core::{Field, naming};
use sqlx::FromRow;

use super::{SqliteStore, now};
use crate::{Result, StoreError, Template, TemplateStore};

#[derive(FromRow)]
struct TemplateRow {
    id: String,
    name: String,
    fields: String,
    created_at: String,
    updated_at: String,
}

impl TemplateRow {
    fn into_template(self) -> Result<Template> {
        Ok(Template {
            fields: serde_json::from_str(&self.fields)?,
            id: self.id,
            name: self.name,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

const TEMPLATE_COLUMNS: &str = "id, name, fields, created_at, updated_at";

fn name_taken(e: sqlx::Error, name: &str) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::conflict(
            "template_name_taken",
            format!("a template named {name:?} already exists"),
        ),
        _ => e.into(),
    }
}

#[async_trait]
impl TemplateStore for SqliteStore {
    /// Saves a new template. The name must be unique, ignoring case.
    async fn create_template(&self, name: &str, fields: &[Field]) -> Result<Template> {
        let now = now();
        let row: TemplateRow = sqlx::query_as(&format!(
            "INSERT INTO templates (id, name, fields, created_at, updated_at) VALUES (?, ?, ?, ?, ?) \
             RETURNING {TEMPLATE_COLUMNS}"
        ))
        .bind(naming::new_id())
        .bind(name)
        .bind(serde_json::to_string(fields)?)
        .bind(&now)
        .bind(&now)
        .fetch_one(&self.write)
        .await
        .map_err(|e| name_taken(e, name))?;
        row.into_template()
    }

    /// Every template, by name.
    async fn list_templates(&self) -> Result<Vec<Template>> {
        let rows: Vec<TemplateRow> = sqlx::query_as(&format!(
            "SELECT {TEMPLATE_COLUMNS} FROM templates ORDER BY name COLLATE NOCASE"
        ))
        .fetch_all(&self.read)
        .await?;
        rows.into_iter().map(TemplateRow::into_template).collect()
    }

    /// One template.
    async fn get_template(&self, id: &str) -> Result<Template> {
        let row: TemplateRow = sqlx::query_as(&format!(
            "SELECT {TEMPLATE_COLUMNS} FROM templates WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.read)
        .await?
        .ok_or(StoreError::NotFound { what: "template" })?;
        row.into_template()
    }

    /// Renames and/or replaces the fields of a template. Batches made from it
    /// keep their own copy.
    async fn update_template(&self, id: &str, name: &str, fields: &[Field]) -> Result<Template> {
        let row: TemplateRow = sqlx::query_as(&format!(
            "UPDATE templates SET name = ?, fields = ?, updated_at = ? WHERE id = ? \
             RETURNING {TEMPLATE_COLUMNS}"
        ))
        .bind(name)
        .bind(serde_json::to_string(fields)?)
        .bind(now())
        .bind(id)
        .fetch_optional(&self.write)
        .await
        .map_err(|e| name_taken(e, name))?
        .ok_or(StoreError::NotFound { what: "template" })?;
        row.into_template()
    }

    /// Deletes a template; batches made from it are not affected.
    async fn delete_template(&self, id: &str) -> Result<()> {
        let deleted = sqlx::query("DELETE FROM templates WHERE id = ?")
            .bind(id)
            .execute(&self.write)
            .await?
            .rows_affected();
        if deleted == 0 {
            return Err(StoreError::NotFound { what: "template" });
        }
        Ok(())
    }
}
