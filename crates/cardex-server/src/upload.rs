//! Receiving uploaded images: each multipart part is streamed to a file in
//! the batch's staging dir (never held in memory) and hashed on the way;
//! the runner's intake then checks it by content, names and records it.
//!
//! A PDF or multi-page TIFF adds a card per page; a refused page is
//! reported with its number, and the file's other pages are kept.
//!
//! A bad file is reported and skipped; the others go on. A broken request
//! (malformed multipart, body over the limit, stalled client) fails as a
//! whole and takes back the cards it had already added, so a request either
//! adds what it reported or nothing.

use std::path::Path;
use std::time::{Duration, Instant};

use axum::extract::multipart::{Field, MultipartError};
use axum::http::StatusCode;
use cardex_core::naming::check_file_name;
use cardex_runner::intake::{Admission, IntakeError, page_name};
use cardex_store::Card;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use utoipa::ToSchema;

use crate::error::ErrorDetail;
use crate::{ApiError, AppState, Limits};

/// A file, or one page of a PDF or TIFF, that was not added, and why.
#[derive(Debug, Serialize, ToSchema)]
pub struct RejectedFile {
    /// The name the client sent (lossily shown if it could not be kept);
    /// for a page, `<file> p. <page>`.
    pub original_name: String,
    /// For a refused page: the file's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_name: Option<String>,
    /// For a refused page: its number in the file, from 1. Absent when
    /// the whole file was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page: Option<i64>,
    /// Why it was refused.
    pub error: ErrorDetail,
}

impl RejectedFile {
    /// A whole file refused.
    pub(crate) fn file(original_name: &str, code: &str, message: impl Into<String>) -> Self {
        Self {
            original_name: original_name.to_owned(),
            source_name: None,
            page: None,
            error: ErrorDetail {
                code: code.to_owned(),
                message: message.into(),
            },
        }
    }
}

/// The outcome of one file: its cards and refusals (a refused single
/// file, or some pages of a PDF; the request goes on), or a failure of
/// the whole request.
#[derive(Debug)]
pub(crate) enum FileOutcome {
    /// What the file added and what it had refused, page by page.
    Admitted {
        /// Recorded, in page order: each image's card as it is now, and
        /// the image's SHA-256.
        accepted: Vec<(Card, String)>,
        /// Refused, with the reasons.
        rejected: Vec<RejectedFile>,
    },
    /// Nothing more can be added (server-side failure, locked batch).
    Fatal(ApiError),
}

/// One upload request's allowance: bytes left under the request limit, and
/// the pace the client must keep. A client that stops sending for
/// `idle_timeout`, or whose average falls below `min_upload_rate` once
/// `idle_timeout` has passed, is cut off, so a trickling client cannot hold
/// a connection and a staging file for hours.
pub(crate) struct RequestBudget {
    limits: Limits,
    started: Instant,
    received: u64,
}

impl RequestBudget {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            started: Instant::now(),
            received: 0,
        }
    }

    /// Awaits `next` (the next part or chunk) within the client's pace.
    pub async fn paced<T>(&self, next: impl Future<Output = T>) -> Result<T, ApiError> {
        let Limits {
            idle_timeout,
            min_upload_rate,
            ..
        } = self.limits;
        let earned = Duration::from_secs_f64(self.received as f64 / min_upload_rate.max(1) as f64);
        let until_deadline =
            (self.started + idle_timeout + earned).saturating_duration_since(Instant::now());
        let wait = until_deadline.min(idle_timeout);
        tokio::time::timeout(wait, next).await.map_err(|_| {
            let why = if wait == idle_timeout {
                format!("no data arrived for {} seconds", idle_timeout.as_secs())
            } else {
                format!("the upload was slower than {min_upload_rate} bytes a second")
            };
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "upload_stalled",
                format!("{why}; it was abandoned"),
            )
        })
    }

    /// Takes `spent` — time the server worked on a received file (a long
    /// PDF is split before the next part is read) — off the client's
    /// clock: it is not the client's slowness.
    fn credit(&mut self, spent: Duration) {
        self.started += spent;
    }

    /// Counts `bytes` received against the request limit.
    fn take(&mut self, bytes: u64) -> Result<(), ApiError> {
        self.received += bytes;
        if self.received > self.limits.max_request_bytes {
            return Err(upload_too_large(self.limits.max_request_bytes));
        }
        Ok(())
    }
}

/// The error for an upload request over `max` bytes.
pub(crate) fn upload_too_large(max: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!(
            "the upload is larger than the limit of {max} bytes per request; send fewer files at a time"
        ),
    )
}

fn reject(original_name: &str, code: &str, message: impl Into<String>) -> FileOutcome {
    FileOutcome::Admitted {
        accepted: Vec::new(),
        rejected: vec![RejectedFile::file(original_name, code, message)],
    }
}

fn multipart_error(e: MultipartError) -> ApiError {
    let status = e.status();
    let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
        "body_too_large"
    } else {
        "invalid_multipart"
    };
    ApiError::new(status, code, e.body_text())
}

/// Streams one part to disk and turns it into a card of `batch_id`.
pub(crate) async fn receive_file(
    state: &AppState,
    batch_id: &str,
    mut field: Field<'_>,
    budget: &mut RequestBudget,
) -> FileOutcome {
    let shown_name =
        String::from_utf8_lossy(field.file_name().unwrap_or("").as_bytes()).into_owned();
    let original_name = match check_file_name(field.file_name()) {
        Ok(n) => n,
        Err(message) => {
            // Drain the part so the next one can be read.
            return match drain(&mut field, budget).await {
                Ok(()) => reject(&shown_name, "invalid_file_name", message),
                Err(fatal) => FileOutcome::Fatal(fatal),
            };
        }
    };
    let incoming = match state.intake.incoming(batch_id) {
        Ok(i) => i,
        Err(e) => return FileOutcome::Fatal(ApiError::from_io(e)),
    };
    let max_file_bytes = state.intake.limits().max_file_bytes;
    let received = match write_part(&mut field, incoming.path(), max_file_bytes, budget).await {
        Ok(r) => r,
        Err(fatal) => return FileOutcome::Fatal(fatal),
    };
    let admitted = match received {
        Some((size, sha256)) => {
            let started = Instant::now();
            let admitted = state
                .intake
                .admit(batch_id, incoming, &original_name, size, sha256)
                .await;
            budget.credit(started.elapsed());
            admitted
        }
        None => Ok(vec![Admission::too_large(max_file_bytes)]),
    };
    outcome(&original_name, admitted)
}

/// What a file's admissions mean for the upload request.
fn outcome(original_name: &str, admitted: Result<Vec<Admission>, IntakeError>) -> FileOutcome {
    let admitted = match admitted {
        Ok(a) => a,
        Err(IntakeError::Store(e)) => return FileOutcome::Fatal(e.into()),
        Err(IntakeError::Io(e)) => return FileOutcome::Fatal(ApiError::from_io(e)),
        Err(e) => return FileOutcome::Fatal(ApiError::internal(e)),
    };
    let (mut accepted, mut rejected) = (Vec::new(), Vec::new());
    for a in admitted {
        match a {
            Admission::Accepted { card, sha256 } => accepted.push((*card, sha256)),
            Admission::Rejected {
                code,
                message,
                page: None,
            } => rejected.push(RejectedFile::file(original_name, &code, message)),
            Admission::Rejected {
                code,
                message,
                page: Some(page),
            } => rejected.push(RejectedFile {
                original_name: page_name(original_name, page),
                source_name: Some(original_name.to_owned()),
                page: Some(page),
                error: ErrorDetail { code, message },
            }),
        }
    }
    FileOutcome::Admitted { accepted, rejected }
}

/// Writes the part to `path`, hashing it. `Ok(None)` when it is over the
/// per-file limit (the rest is read and dropped so the next part can follow).
async fn write_part(
    field: &mut Field<'_>,
    path: &Path,
    max_file_bytes: u64,
    budget: &mut RequestBudget,
) -> Result<Option<(u64, String)>, ApiError> {
    let mut file = tokio::fs::File::create(path)
        .await
        .map_err(ApiError::from_io)?;
    let mut hasher = Sha256::new();
    let mut size: u64 = 0;
    while let Some(chunk) = next_chunk(field, budget).await? {
        size += chunk.len() as u64;
        if size > max_file_bytes {
            continue;
        }
        hasher.update(&chunk);
        file.write_all(&chunk).await.map_err(ApiError::from_io)?;
    }
    if size > max_file_bytes {
        return Ok(None);
    }
    // An accepted upload must survive a crash: the card row will point at it.
    file.sync_data().await.map_err(ApiError::from_io)?;
    Ok(Some((size, hex::encode(hasher.finalize()))))
}

async fn drain(field: &mut Field<'_>, budget: &mut RequestBudget) -> Result<(), ApiError> {
    while next_chunk(field, budget).await?.is_some() {}
    Ok(())
}

/// The next chunk of a part, within the request's byte limit and pace.
async fn next_chunk(
    field: &mut Field<'_>,
    budget: &mut RequestBudget,
) -> Result<Option<axum::body::Bytes>, ApiError> {
    let chunk = budget
        .paced(field.chunk())
        .await?
        .map_err(multipart_error)?;
    if let Some(c) = &chunk {
        budget.take(c.len() as u64)?;
    }
    Ok(chunk)
}
