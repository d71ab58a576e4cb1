//! Rendering result rows as JSON, JSONL, CSV or an Excel workbook, page by
//! page, for the HTTP export and the `cardex extract` command alike.
//!
//! Every format holds the reviewed values: the machine's with a
//! reviewer's corrections over them (DESIGN §12). JSON rows always carry
//! `flags`, `confidence` and `review`; `include=` adds `machine` and
//! `usage`, and for the tables (CSV, XLSX) also `review`, `flags` and
//! `confidence` columns.

use cardex_store::{Batch, ResultRow, Store, StoreError};
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
    /// `card_id, original_name, state, <fields...>, error, source_name,
    /// page`, and for two-sided cards `back_original_name,
    /// back_source_name, back_page`.
    Csv,
    /// An Excel workbook with the CSV's columns: text cells stay text, a
    /// bold header row stays in view.
    Xlsx,
}

impl Format {
    /// The format a file name's extension asks for.
    pub fn from_extension(path: &std::path::Path) -> Option<Self> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "json" => Some(Self::Json),
            "jsonl" | "ndjson" => Some(Self::Jsonl),
            "csv" => Some(Self::Csv),
            "xlsx" => Some(Self::Xlsx),
            _ => None,
        }
    }

    /// MIME type.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::Jsonl => "application/x-ndjson",
            Self::Csv => "text/csv; charset=utf-8",
            Self::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        }
    }

    /// File extension.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Jsonl => "jsonl",
            Self::Csv => "csv",
            Self::Xlsx => "xlsx",
        }
    }
}

/// What an export adds to its rows (`include=`, comma-separated).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Include {
    /// Each card's `usage` and `provenance` (JSONL rows always have them;
    /// tables get token, request and model columns).
    pub usage: bool,
    /// The machine's values as extracted (tables: `<field>_machine`).
    pub machine: bool,
    /// Tables: `review_status` and `review_note` columns.
    pub review: bool,
    /// Tables: a `flags` column.
    pub flags: bool,
    /// Tables: `<field>_confidence` columns.
    pub confidence: bool,
}

impl Include {
    /// Parses `include=usage,machine,...`; an unknown part is named in the
    /// error.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut include = Self::default();
        for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "usage" => include.usage = true,
                "machine" => include.machine = true,
                "review" => include.review = true,
                "flags" => include.flags = true,
                "confidence" => include.confidence = true,
                other => {
                    return Err(format!(
                        "`include` takes usage, machine, review, flags and confidence, not {other:?}"
                    ));
                }
            }
        }
        Ok(include)
    }
}

/// The table columns naming a two-sided card's back, empty for a card
/// with one side only.
const BACK_COLUMNS: [&str; 3] = ["back_original_name", "back_source_name", "back_page"];

/// The table columns `include=usage` adds.
const USAGE_COLUMNS: [&str; 6] = [
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "requests",
    "ms",
    "model",
];

/// Renders rows in one format; feed it pages in order. XLSX is built
/// whole: see [`Exporter::table_header`], [`Exporter::table_row`] and
/// [`workbook`].
#[derive(Debug)]
pub struct Exporter {
    format: Format,
    columns: Vec<String>,
    include: Include,
    /// The batch's cards are two-sided: the tables name each back.
    two_sided: bool,
    first: bool,
}

impl Exporter {
    /// An exporter for `batch` (its active fields become table columns),
    /// and the bytes that open the document.
    pub fn new(format: Format, batch: &Batch, bom: bool, include: Include) -> (Self, Vec<u8>) {
        let include = Include {
            usage: include.usage || format == Format::Jsonl,
            ..include
        };
        let columns: Vec<String> = batch
            .fields
            .iter()
            .filter(|f| f.active)
            .map(|f| f.name.clone())
            .collect();
        let exporter = Self {
            format,
            columns,
            include,
            two_sided: batch.two_sided.is_some(),
            first: true,
        };
        let mut head = Vec::new();
        match format {
            Format::Json => head.push(b'['),
            Format::Csv => {
                if bom {
                    head.extend_from_slice("\u{feff}".as_bytes());
                }
                head.extend(csv_line(&exporter.table_header()));
            }
            Format::Jsonl | Format::Xlsx => {}
        }
        (exporter, head)
    }

    /// The bytes for a page of rows (JSON, JSONL, CSV).
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
                Format::Csv => {
                    let cells: Vec<String> = self.table_row(&row).iter().map(cell_text).collect();
                    out.extend(csv_line(&cells));
                }
                Format::Xlsx => {}
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

    /// The table's column names.
    pub fn table_header(&self) -> Vec<String> {
        let mut header = vec!["card_id".to_owned(), "original_name".into(), "state".into()];
        header.extend(self.columns.iter().cloned());
        // After the columns every client relies on (DESIGN §4), before
        // the ones `include=` adds.
        header.extend(["error".to_owned(), "source_name".into(), "page".into()]);
        if self.two_sided {
            header.extend(BACK_COLUMNS.map(String::from));
        }
        let inc = self.include;
        if inc.review {
            header.extend(["review_status".to_owned(), "review_note".into()]);
        }
        if inc.machine {
            header.extend(self.columns.iter().map(|c| format!("{c}_machine")));
        }
        if inc.flags {
            header.push("flags".into());
        }
        if inc.confidence {
            header.extend(self.columns.iter().map(|c| format!("{c}_confidence")));
        }
        if inc.usage {
            header.extend(USAGE_COLUMNS.map(String::from));
        }
        header
    }

    /// One row of the table: text as strings, numbers as numbers, yes/no
    /// as booleans, nothing as null. The field columns hold the reviewed
    /// values.
    pub fn table_row(&self, row: &ResultRow) -> Vec<Value> {
        let values = match &row.review {
            Some(r) => Some(cardex_core::review::overlay(
                row.result.as_ref().and_then(Value::as_object),
                &r.corrections,
            )),
            None => row.result.as_ref().and_then(Value::as_object).cloned(),
        };
        let value = |c: &String| values.as_ref().and_then(|v| v.get(c));
        let mut out = vec![
            Value::from(row.card_id),
            Value::from(row.original_name.clone()),
            Value::from(row.state.clone()),
        ];
        out.extend(self.columns.iter().map(|c| table_value(value(c))));
        out.push(text_or_null(
            row.error.as_ref().and_then(|e| e["message"].as_str()),
        ));
        out.push(Value::from(row.source_name.clone()));
        out.push(row.page.map_or(Value::Null, Value::from));
        if self.two_sided {
            let back = row.back.as_ref();
            out.push(text_or_null(back.map(|b| b.original_name.as_str())));
            out.push(text_or_null(back.map(|b| b.source_name.as_str())));
            out.push(back.and_then(|b| b.page).map_or(Value::Null, Value::from));
        }
        let inc = self.include;
        if inc.review {
            let review = row.review.as_ref();
            out.push(Value::from(
                review.map_or("unreviewed", |r| r.status.as_str()),
            ));
            out.push(text_or_null(review.and_then(|r| r.note.as_deref())));
        }
        if inc.machine {
            out.extend(
                self.columns
                    .iter()
                    .map(|c| table_value(row.result.as_ref().and_then(|r| r.get(c)))),
            );
        }
        if inc.flags {
            let flags: Vec<String> = row
                .flags
                .iter()
                .map(|f| match &f.field {
                    Some(field) => format!("{}:{field}", f.code.as_str()),
                    None => f.code.as_str().to_owned(),
                })
                .collect();
            out.push(Value::from(flags.join("; ")));
        }
        if inc.confidence {
            out.extend(
                self.columns
                    .iter()
                    .map(|c| row.confidence.get(c).cloned().unwrap_or(Value::Null)),
            );
        }
        if inc.usage {
            let n = |v: u64| row.usage.map_or(Value::Null, |_| Value::from(v));
            let u = row.usage.unwrap_or_default();
            out.extend([
                n(u.prompt_tokens),
                n(u.completion_tokens),
                n(u.total_tokens),
                n(u.requests),
                n(u.ms),
            ]);
            out.push(text_or_null(
                row.provenance.as_ref().and_then(|p| p["model"].as_str()),
            ));
        }
        out
    }
}

/// A field's value as one table cell: a list joined by `; `.
fn table_value(v: Option<&Value>) -> Value {
    match v {
        None => Value::Null,
        Some(Value::Array(items)) => Value::from(
            items
                .iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                .collect::<Vec<_>>()
                .join("; "),
        ),
        Some(v) => v.clone(),
    }
}

fn text_or_null(s: Option<&str>) -> Value {
    s.map_or(Value::Null, Value::from)
}

/// A cell as CSV text.
fn cell_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A workbook of `header` and `rows`: one sheet, the header bold and
/// frozen, text cells written as text (so call numbers, phone numbers and
/// dates are never turned into numbers or dates by Excel), numbers as
/// numbers.
pub fn workbook(header: &[String], rows: &[Vec<Value>]) -> Result<Vec<u8>, String> {
    use rust_xlsxwriter::{Format as CellFormat, Workbook};
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name("results").map_err(|e| e.to_string())?;
    let bold = CellFormat::new().set_bold();
    let text = CellFormat::new().set_num_format("@");
    for (col, name) in header.iter().enumerate() {
        sheet
            .write_string_with_format(0, col as u16, name, &bold)
            .map_err(|e| e.to_string())?;
    }
    for (i, row) in rows.iter().enumerate() {
        let r = (i + 1) as u32;
        for (col, cell) in row.iter().enumerate() {
            let c = col as u16;
            let written = match cell {
                Value::Null => continue,
                Value::Bool(b) => sheet.write_boolean(r, c, *b).map(|_| ()),
                Value::Number(n) => match n.as_f64() {
                    Some(x) => sheet.write_number(r, c, x).map(|_| ()),
                    None => sheet
                        .write_string_with_format(r, c, n.to_string(), &text)
                        .map(|_| ()),
                },
                Value::String(s) => sheet
                    .write_string_with_format(r, c, cell_sized(s), &text)
                    .map(|_| ()),
                other => sheet
                    .write_string_with_format(r, c, other.to_string(), &text)
                    .map(|_| ()),
            };
            written.map_err(|e| e.to_string())?;
        }
    }
    sheet.set_freeze_panes(1, 0).map_err(|e| e.to_string())?;
    sheet.autofit();
    book.save_to_buffer().map_err(|e| e.to_string())
}

/// Most characters an Excel cell holds.
const MAX_CELL: usize = 32_767;

/// `s`, cut to what a cell holds (marked with `…`) when longer.
fn cell_sized(s: &str) -> std::borrow::Cow<'_, str> {
    match s.char_indices().nth(MAX_CELL - 1) {
        None => s.into(),
        Some((at, _)) => format!("{}…", &s[..at]).into(),
    }
}

/// Every row of a batch, as a table, page by page.
pub async fn table_rows(
    store: &dyn Store,
    batch_id: &str,
    exporter: &Exporter,
) -> Result<Vec<Vec<Value>>, StoreError> {
    let (mut after, mut out) = (0, Vec::new());
    loop {
        let rows = store.results_page(batch_id, after, PAGE).await?;
        let (n, last) = (rows.len(), rows.last().map(|r| r.card_id));
        out.extend(rows.iter().map(|r| exporter.table_row(r)));
        match last {
            Some(last) if n as i64 == PAGE => after = last,
            _ => break,
        }
    }
    Ok(out)
}

/// Writes a whole batch's results to `out`, page by page (an XLSX
/// workbook is built whole, then written).
pub async fn write_results(
    store: &dyn Store,
    batch_id: &str,
    format: Format,
    out: &mut impl std::io::Write,
) -> Result<u64, StoreError> {
    let batch = store.get_batch(batch_id).await?;
    let (mut exporter, head) = Exporter::new(format, &batch, false, Include::default());
    if format == Format::Xlsx {
        let rows = table_rows(store, batch_id, &exporter).await?;
        let bytes = workbook(&exporter.table_header(), &rows).map_err(std::io::Error::other)?;
        out.write_all(&bytes)?;
        return Ok(rows.len() as u64);
    }
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
    if !include.machine {
        row.machine = None;
    }
    serde_json::to_vec(&row).unwrap_or_default()
}

fn csv_line(cells: &[String]) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    // Writing to a Vec cannot fail.
    let _ = w.write_record(cells);
    w.into_inner().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_cut_to_what_excel_holds() {
        assert_eq!(cell_sized("call no. 00123"), "call no. 00123");
        let long = "é".repeat(MAX_CELL + 10);
        let cut = cell_sized(&long);
        assert_eq!(cut.chars().count(), MAX_CELL);
        assert!(cut.ends_with('…'));
        let book = workbook(&["title".into()], &[vec![Value::from(long)]]);
        assert!(book.is_ok(), "{book:?}");
    }
}
