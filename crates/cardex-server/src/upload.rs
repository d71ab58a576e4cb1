//! Receiving uploaded images: each multipart part is streamed to a file in
//! the batch's staging dir (never held in memory), hashed on the way,
//! checked by content, renamed to a server-generated name and recorded.
//!
//! A bad file is reported and skipped; the others go on. A broken request
//! (malformed multipart, body over the limit, stalled client) fails as a
//! whole and takes back the cards it had already added, so a request either
//! adds what it reported or nothing.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use axum::extract::multipart::{Field, MultipartError};
use axum::http::StatusCode;
use cardex_core::naming::check_file_name;
use cardex_store::layout::new_stored_name;
use cardex_store::{Card, NewCard, StoreError};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use utoipa::ToSchema;

use crate::error::ErrorDetail;
use crate::{ApiError, AppState, Limits};

/// A file that was not added, and why.
#[derive(Debug, Serialize, ToSchema)]
pub struct RejectedFile {
    /// The name the client sent (lossily shown if it could not be kept).
    pub original_name: String,
    /// Why it was refused.
    pub error: ErrorDetail,
}

/// The outcome of one file: added, refused (the request goes on), or a
/// failure of the whole request.
#[derive(Debug)]
pub enum FileOutcome {
    /// Recorded as a card.
    Accepted(Card),
    /// Refused, with the reason.
    Rejected(RejectedFile),
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

/// Removes a partly received or refused file unless it was kept.
struct Incoming {
    path: PathBuf,
    keep: bool,
}

impl Drop for Incoming {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn reject(original_name: &str, code: &str, message: impl Into<String>) -> FileOutcome {
    FileOutcome::Rejected(RejectedFile {
        original_name: original_name.to_owned(),
        error: ErrorDetail {
            code: code.to_owned(),
            message: message.into(),
        },
    })
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
    let limits = state.config.limits;
    let path = match state.store.dir().incoming_path(batch_id) {
        Ok(p) => p,
        Err(e) => return FileOutcome::Fatal(ApiError::internal(e)),
    };
    let incoming = Incoming { path, keep: false };
    let received = match write_part(&mut field, &incoming.path, state, budget).await {
        Ok(r) => r,
        Err(fatal) => return FileOutcome::Fatal(fatal),
    };
    let Some((size, sha256)) = received else {
        return reject(
            &original_name,
            "file_too_large",
            format!(
                "the file is larger than the limit of {} bytes",
                limits.max_file_bytes
            ),
        );
    };

    admit(state, batch_id, incoming, &original_name, size, sha256).await
}

/// Checks a completely received file, gives it its stored name and records
/// it as a card; the file is removed unless it is kept.
async fn admit(
    state: &AppState,
    batch_id: &str,
    mut incoming: Incoming,
    original_name: &str,
    size: u64,
    sha256: String,
) -> FileOutcome {
    let limits = state.config.limits;
    let dir = state.store.dir();
    let info = {
        let Ok(_slot) = state.decode_slots.acquire().await else {
            return FileOutcome::Fatal(ApiError::internal("decode slots closed"));
        };
        let path = incoming.path.clone();
        match tokio::task::spawn_blocking(move || {
            cardex_engine::image::inspect(&path, limits.max_pixels)
        })
        .await
        {
            Ok(Ok(info)) => info,
            Ok(Err(e)) => return reject(original_name, e.code(), e.to_string()),
            Err(e) => return FileOutcome::Fatal(ApiError::internal(e)),
        }
    };

    let stored_name = new_stored_name(info.format.extension());
    let final_path = dir.staging_dir(batch_id).join(&stored_name);
    if let Err(e) = std::fs::rename(&incoming.path, &final_path) {
        return FileOutcome::Fatal(ApiError::internal(e));
    }
    incoming.path = final_path;
    let card = NewCard {
        original_name: original_name.to_owned(),
        stored_name,
        size_bytes: size as i64,
        sha256,
        format: info.format.name().to_owned(),
        width: i64::from(info.width),
        height: i64::from(info.height),
    };
    match state.store.add_card(batch_id, &card).await {
        Ok(card) => {
            incoming.keep = true;
            FileOutcome::Accepted(card)
        }
        Err(StoreError::Conflict {
            code: "duplicate_image",
            message,
        }) => reject(original_name, "duplicate_image", message),
        Err(e) => FileOutcome::Fatal(e.into()),
    }
}

/// Adds the image file at `path` (outside the data dir) to an open batch,
/// with the same checks as an upload; the original is copied, not moved.
pub async fn add_file(state: &AppState, batch_id: &str, path: &Path) -> FileOutcome {
    let shown = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let original_name = match check_file_name(Some(&shown)) {
        Ok(n) => n,
        Err(message) => return reject(&shown, "invalid_file_name", message),
    };
    let target = match state.store.dir().incoming_path(batch_id) {
        Ok(p) => p,
        Err(e) => return FileOutcome::Fatal(ApiError::internal(e)),
    };
    let incoming = Incoming {
        path: target.clone(),
        keep: false,
    };
    let max = state.config.limits.max_file_bytes;
    let source = path.to_owned();
    let copied = tokio::task::spawn_blocking(move || -> std::io::Result<Option<(u64, String)>> {
        let mut from = std::fs::File::open(&source)?;
        if from.metadata()?.len() > max {
            return Ok(None);
        }
        let mut to = std::fs::File::create(&target)?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 256 * 1024];
        let mut size = 0u64;
        loop {
            let n = std::io::Read::read(&mut from, &mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            std::io::Write::write_all(&mut to, &buf[..n])?;
            size += n as u64;
        }
        to.sync_data()?;
        Ok(Some((size, hex::encode(hasher.finalize()))))
    })
    .await;
    match copied {
        Ok(Ok(Some((size, sha256)))) => {
            admit(state, batch_id, incoming, &original_name, size, sha256).await
        }
        Ok(Ok(None)) => reject(
            &original_name,
            "file_too_large",
            format!("the file is larger than the limit of {max} bytes"),
        ),
        Ok(Err(e)) => reject(&original_name, "unreadable_file", e.to_string()),
        Err(e) => FileOutcome::Fatal(ApiError::internal(e)),
    }
}

/// Writes the part to `path`, hashing it. `Ok(None)` when it is over the
/// per-file limit (the rest is read and dropped so the next part can follow).
async fn write_part(
    field: &mut Field<'_>,
    path: &Path,
    state: &AppState,
    budget: &mut RequestBudget,
) -> Result<Option<(u64, String)>, ApiError> {
    let limits = state.config.limits;
    let mut file = tokio::fs::File::create(path)
        .await
        .map_err(ApiError::internal)?;
    let mut hasher = Sha256::new();
    let mut size: u64 = 0;
    while let Some(chunk) = next_chunk(field, budget).await? {
        size += chunk.len() as u64;
        if size > limits.max_file_bytes {
            continue;
        }
        hasher.update(&chunk);
        file.write_all(&chunk).await.map_err(ApiError::internal)?;
    }
    if size > limits.max_file_bytes {
        return Ok(None);
    }
    // An accepted upload must survive a crash: the card row will point at it.
    file.sync_data().await.map_err(ApiError::internal)?;
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
