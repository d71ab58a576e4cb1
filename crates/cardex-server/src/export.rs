//! Rendering result rows as JSON, JSONL or CSV, page by page, for the HTTP
//! export and the `cardex extract` command alike.

use cardex_core::Field;
use cardex_store::{ResultRow, Store, StoreError};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

/// Rows fetched from the database per page.
pub const PAGE: i64 = 500;

/// Export formats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
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

impl Format {
    /// The format a file name's extension asks for.
    pub fn from_extension(path: &std::path::Path) -> Option<Self> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "json" => Some(Self::Json),
            "jsonl" | "ndjson" => Some(Self::Jsonl),
            "csv" => Some(Self::Csv),
            _ => None,
        }
    }

    /// MIME type.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::Jsonl => "application/x-ndjson",
            Self::Csv => "text/csv; charset=utf-8",
        }
    }

    /// File extension.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Jsonl => "jsonl",
            Self::Csv => "csv",
        }
    }
}

/// What an export adds to its rows (`include=`, comma-separated).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Include {
    /// Each card's `usage` and `provenance` (JSONL rows always have them;
    /// CSV gets token, request and model columns).
    pub usage: bool,
}

impl Include {
    /// Parses `include=usage`; an unknown part is named in the error.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut include = Self::default();
        for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "usage" => include.usage = true,
                other => return Err(format!("`include` takes `usage`, not {other:?}")),
            }
        }
        Ok(include)
    }
}

/// The CSV columns `include=usage` adds.
const USAGE_COLUMNS: [&str; 6] = [
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "requests",
    "ms",
    "model",
];

/// Renders rows in one format; feed it pages in order.
#[derive(Debug)]
pub struct Exporter {
    format: Format,
    columns: Vec<String>,
    include: Include,
    first: bool,
}

impl Exporter {
    /// An exporter for a batch with `fields` (active ones become CSV
    /// columns), and the bytes that open the document.
    pub fn new(format: Format, fields: &[Field], bom: bool, include: Include) -> (Self, Vec<u8>) {
        let include = Include {
            usage: include.usage || format == Format::Jsonl,
        };
        let columns: Vec<String> = fields
            .iter()
            .filter(|f| f.active)
            .map(|f| f.name.clone())
            .collect();
        let mut head = Vec::new();
        match format {
            Format::Json => head.push(b'['),
            Format::Csv => {
                if bom {
                    head.extend_from_slice("\u{feff}".as_bytes());
                }
                let mut header = vec!["card_id".to_owned(), "original_name".into(), "state".into()];
                header.extend(columns.iter().cloned());
                header.push("error".into());
                if include.usage {
                    header.extend(USAGE_COLUMNS.map(String::from));
                }
                head.extend(csv_line(&header));
            }
            Format::Jsonl => {}
        }
        let exporter = Self {
            format,
            columns,
            include,
            first: true,
        };
        (exporter, head)
    }

    /// The bytes for a page of rows.
    pub fn rows(&mut self, rows: Vec<ResultRow>) -> Vec<u8> {
        let mut out = Vec::new();
        for row in rows {
            match self.format {
                Format::Json => {
                    if !self.first {
                        out.push(b',');
                    }
                    out.extend(json_row(row, self.include));
                }
                Format::Jsonl => {
                    out.extend(json_row(row, self.include));
                    out.push(b'\n');
                }
                Format::Csv => out.extend(csv_line(&csv_row(&row, &self.columns, self.include))),
            }
            self.first = false;
        }
        out
    }

    /// The bytes that close the document.
    pub fn finish(&self) -> Vec<u8> {
        match self.format {
            Format::Json => b"]".to_vec(),
            _ => Vec::new(),
        }
    }
}

/// Writes a whole batch's results to `out`, page by page.
pub async fn write_results(
    store: &dyn Store,
    batch_id: &str,
    format: Format,
    out: &mut impl std::io::Write,
) -> Result<u64, StoreError> {
    let batch = store.get_batch(batch_id).await?;
    let (mut exporter, head) = Exporter::new(format, &batch.fields, false, Include::default());
    out.write_all(&head)?;
    let (mut after, mut written) = (0, 0u64);
    loop {
        let rows = store.results_page(batch_id, after, PAGE).await?;
        let (n, last) = (rows.len(), rows.last().map(|r| r.card_id));
        out.write_all(&exporter.rows(rows))?;
        written += n as u64;
        match last {
            Some(last) if n as i64 == PAGE => after = last,
            _ => break,
        }
    }
    out.write_all(&exporter.finish())?;
    Ok(written)
}

/// A row as the API shows it, as JSON.
fn json_row(row: ResultRow, include: Include) -> Vec<u8> {
    let mut row = crate::api::ResultRow::from(row);
    if !include.usage {
        row.usage = None;
        row.provenance = None;
    }
    serde_json::to_vec(&row).unwrap_or_default()
}

fn csv_row(row: &ResultRow, columns: &[String], include: Include) -> Vec<String> {
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
    if include.usage {
        let u = row.usage.unwrap_or_default();
        let n = |v: u64| {
            if row.usage.is_some() {
                v.to_string()
            } else {
                String::new()
            }
        };
        out.extend([
            n(u.prompt_tokens),
            n(u.completion_tokens),
            n(u.total_tokens),
            n(u.requests),
            n(u.ms),
        ]);
        out.push(
            row.provenance
                .as_ref()
                .and_then(|p| p["model"].as_str())
                .unwrap_or_default()
                .to_owned(),
        );
    }
    out
}

fn csv_line(cells: &[String]) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    // Writing to a Vec cannot fail.
    let _ = w.write_record(cells);
    w.into_inner().unwrap_or_default()
}
