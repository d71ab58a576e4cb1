//! Results and errors of a batch. Exports are streamed page by page from
//! the database, so memory stays flat whatever the batch size.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use cardex_store::{FailedCard, ResultRow, Store};
use serde::Deserialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::batch_id;
use crate::error::ErrorBody;
use crate::extract::{PathParams, QueryParams};
use crate::{ApiError, AppState};

/// Rows fetched from the database per streamed chunk.
const PAGE: i64 = 500;

/// Export formats.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// One JSON array of result rows.
    #[default]
    Json,
    /// One result row per line.
    Jsonl,
    /// `card_id, original_name, state, <fields...>, error`.
    Csv,
}

/// Query of the results export.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ResultsQuery {
    /// `json` (default), `jsonl` or `csv`.
    #[param(inline)]
    pub format: Option<Format>,
    /// `1` adds a UTF-8 byte-order mark to CSV, for Excel.
    pub bom: Option<u8>,
}

/// The batch's results so far, one row per card, streamed.
#[utoipa::path(get, path = "/api/batches/{id}/results", tag = "results",
    params(("id" = String, Path, description = "Batch id"), ResultsQuery),
    responses(
        (status = 200, body = Vec<ResultRow>, description = "JSON array; JSONL and CSV as text"),
        (status = 404, body = ErrorBody),
    ))]
pub(crate) async fn results(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    QueryParams(q): QueryParams<ResultsQuery>,
) -> Result<Response, ApiError> {
    let id = batch_id(id)?;
    let batch = state.store.get_batch(&id).await?;
    let format = q.format.unwrap_or_default();
    let columns: Vec<String> = batch
        .fields
        .iter()
        .filter(|f| f.active)
        .map(|f| f.name.clone())
        .collect();
    let (content_type, ext) = match format {
        Format::Json => ("application/json", "json"),
        Format::Jsonl => ("application/x-ndjson", "jsonl"),
        Format::Csv => ("text/csv; charset=utf-8", "csv"),
    };
    let mut head = Vec::new();
    match format {
        Format::Json => head.push(b'['),
        Format::Csv => {
            if q.bom == Some(1) {
                head.extend_from_slice("\u{feff}".as_bytes());
            }
            let mut header = vec!["card_id".to_owned(), "original_name".into(), "state".into()];
            header.extend(columns.iter().cloned());
            header.push("error".into());
            head.extend(csv_line(&header));
        }
        Format::Jsonl => {}
    }
    let body = export_stream(state.store.clone(), id, format, columns, head);
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}.{ext}\"", batch.name),
            ),
        ],
        body,
    )
        .into_response())
}

/// Pages through the rows, rendering each page into one chunk.
fn export_stream(
    store: Store,
    id: String,
    format: Format,
    columns: Vec<String>,
    head: Vec<u8>,
) -> Body {
    struct Cursor {
        after: i64,
        first: bool,
        done: bool,
        head: Option<Vec<u8>>,
    }
    let start = Cursor {
        after: 0,
        first: true,
        done: false,
        head: Some(head),
    };
    let stream = futures_util::stream::unfold(start, move |mut cur| {
        let (store, id, columns) = (store.clone(), id.clone(), columns.clone());
        async move {
            if cur.done {
                return None;
            }
            let mut chunk = cur.head.take().unwrap_or_default();
            let rows = match store.results_page(&id, cur.after, PAGE).await {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::error!(error = %e, "results export failed mid-stream");
                    return Some((Err(std::io::Error::other(e.to_string())), cur));
                }
            };
            if let Some(last) = rows.last() {
                cur.after = last.card_id;
            }
            for row in &rows {
                match format {
                    Format::Json => {
                        if !cur.first {
                            chunk.push(b',');
                        }
                        chunk.extend(serde_json::to_vec(row).unwrap_or_default());
                    }
                    Format::Jsonl => {
                        chunk.extend(serde_json::to_vec(row).unwrap_or_default());
                        chunk.push(b'\n');
                    }
                    Format::Csv => chunk.extend(csv_line(&csv_row(row, &columns))),
                }
                cur.first = false;
            }
            if (rows.len() as i64) < PAGE {
                cur.done = true;
                if matches!(format, Format::Json) {
                    chunk.push(b']');
                }
            }
            Some((Ok::<_, std::io::Error>(Bytes::from(chunk)), cur))
        }
    });
    Body::from_stream(stream)
}

fn csv_row(row: &ResultRow, columns: &[String]) -> Vec<String> {
    let mut out = vec![
        row.card_id.to_string(),
        row.original_name.clone(),
        row.state.clone(),
    ];
    for c in columns {
        out.push(match row.result.as_ref().and_then(|r| r.get(c)) {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                .collect::<Vec<_>>()
                .join("; "),
            Some(other) => other.to_string(),
        });
    }
    out.push(
        row.error
            .as_ref()
            .and_then(|e| e["message"].as_str())
            .unwrap_or_default()
            .to_owned(),
    );
    out
}

fn csv_line(cells: &[String]) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    // Writing to a Vec cannot fail.
    let _ = w.write_record(cells);
    w.into_inner().unwrap_or_default()
}

/// The failed cards with their errors and earlier attempts.
#[utoipa::path(get, path = "/api/batches/{id}/errors", tag = "results",
    params(("id" = String, Path, description = "Batch id")),
    responses((status = 200, body = Vec<FailedCard>), (status = 404, body = ErrorBody)))]
pub(crate) async fn errors(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<Json<Vec<FailedCard>>, ApiError> {
    Ok(Json(state.store.failed_cards(&batch_id(id)?).await?))
}
