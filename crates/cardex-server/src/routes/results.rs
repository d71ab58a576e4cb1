//! Results and errors of a batch. Exports are streamed page by page from
//! the database, so memory stays flat whatever the batch size.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use cardex_store::SharedStore;
use serde::Deserialize;
use utoipa::IntoParams;

use super::batch_id;
use crate::api::{FailedCard, ResultRow};
use crate::error::ErrorBody;
use crate::export::{Exporter, Format, Include, PAGE};
use crate::extract::{PathParams, QueryParams};
use crate::{ApiError, AppState};

/// Query of the results export.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ResultsQuery {
    /// `json` (default), `jsonl`, `csv` or `xlsx`.
    #[param(inline)]
    pub format: Option<Format>,
    /// `1` adds a UTF-8 byte-order mark to CSV, for Excel.
    #[param(minimum = 0, maximum = 1)]
    pub bom: Option<u8>,
    /// Comma-separated extras: `machine` (the machine's values; tables:
    /// `<field>_machine` columns), `usage` (each card's usage and
    /// provenance; JSONL rows always have them; tables: `prompt_tokens`,
    /// `completion_tokens`, `total_tokens`, `requests`, `ms`, `model`), and
    /// for CSV and XLSX `review` (`review_status`, `review_note`), `flags`
    /// and `confidence` (`<field>_confidence`) columns.
    #[param(
        example = "review,flags",
        pattern = "^((usage|machine|review|flags|confidence)(,(usage|machine|review|flags|confidence))*)?$"
    )]
    pub include: Option<String>,
}

/// The batch's results so far, one row per card, streamed.
#[utoipa::path(get, path = "/api/batches/{id}/results", tag = "results",
    params(("id" = String, Path, description = "Batch id"), ResultsQuery),
    responses(
        (status = 200, description = "JSON array; JSONL and CSV as text; XLSX a workbook",
            content((Vec<ResultRow> = "application/json"),
                (String = "application/x-ndjson"),
                (String = "text/csv"),
                (Vec<u8> = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))),
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
    let bom = match q.bom {
        None | Some(0) => false,
        Some(1) => true,
        Some(_) => return Err(ApiError::bad_request("invalid_query", "`bom` is 0 or 1")),
    };
    let include = Include::parse(q.include.as_deref().unwrap_or_default())
        .map_err(|e| ApiError::bad_request("invalid_query", e))?;
    let (exporter, head) = Exporter::new(format, &batch, bom, include);
    let body = if format == Format::Xlsx {
        let rows = crate::export::table_rows(state.store.as_ref(), &id, &exporter).await?;
        let header = exporter.table_header();
        let bytes = tokio::task::spawn_blocking(move || crate::export::workbook(&header, &rows))
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::internal)?;
        Body::from(bytes)
    } else {
        export_stream(state.store.clone(), id, exporter, head)
    };
    Ok((
        [
            (header::CONTENT_TYPE, format.content_type().to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!(
                    "attachment; filename=\"{}.{}\"",
                    batch.name,
                    format.extension()
                ),
            ),
        ],
        body,
    )
        .into_response())
}

/// Pages through the rows, rendering each page into one chunk.
fn export_stream(store: SharedStore, id: String, exporter: Exporter, head: Vec<u8>) -> Body {
    struct Cursor {
        after: i64,
        done: bool,
        head: Option<Vec<u8>>,
        exporter: Exporter,
    }
    let start = Cursor {
        after: 0,
        done: false,
        head: Some(head),
        exporter,
    };
    let stream = futures_util::stream::unfold(start, move |mut cur| {
        let (store, id) = (store.clone(), id.clone());
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
            let n = rows.len();
            if let Some(last) = rows.last() {
                cur.after = last.card_id;
            }
            chunk.extend(cur.exporter.rows(rows));
            if (n as i64) < PAGE {
                cur.done = true;
                chunk.extend(cur.exporter.finish());
            }
            Some((Ok::<_, std::io::Error>(Bytes::from(chunk)), cur))
        }
    });
    Body::from_stream(stream)
}

/// The failed cards with their errors and earlier attempts.
#[utoipa::path(get, path = "/api/batches/{id}/errors", tag = "results",
    params(("id" = String, Path, description = "Batch id")),
    responses((status = 200, body = Vec<FailedCard>), (status = 404, body = ErrorBody)))]
pub(crate) async fn errors(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<Json<Vec<FailedCard>>, ApiError> {
    let failed = state.store.failed_cards(&batch_id(id)?).await?;
    Ok(Json(failed.into_iter().map(FailedCard::from).collect()))
}
