//! The cross-check (DESIGN §13): cards a model read are read again by the
//! embedded OCR engine, and each text value the model gave that the
//! card's own text does not contain is flagged `not_in_text`.
//!
//! It must never slow the model down, so it runs apart from the cards'
//! path: a card is committed as soon as the model's answer is in, marked
//! as waiting for its check, and the check's own workers (few, and at a
//! lower CPU priority, [`cardex_engine::ocr::OcrEngine::in_background`])
//! take the waiting results from the store oldest first. The store is the
//! queue, so nothing is lost when the checks fall behind or the server
//! restarts: they catch up. A card that cannot be read is marked
//! `skipped`, with the reason.

use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use cardex_core::crosscheck::{CardText, MIN_LEGIBLE, not_in_text};
use cardex_engine::{EngineError, Reading};
use cardex_store::{CheckJob, CheckOutcome};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use tokio::task::JoinSet;

use crate::runner::Runner;

/// Reads a card's own text for the cross-check.
pub trait ReadsText: Send + Sync + std::fmt::Debug {
    /// The whole text of an original image file's `bytes`, in `lang`
    /// (`None` = the reader's default), prepared within `max_pixels`.
    fn read_text<'a>(
        &'a self,
        bytes: Vec<u8>,
        max_pixels: u64,
        lang: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Reading, EngineError>>;
}

#[cfg(feature = "ocr")]
impl ReadsText for cardex_engine::ocr::OcrEngine {
    fn read_text<'a>(
        &'a self,
        bytes: Vec<u8>,
        max_pixels: u64,
        lang: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Reading, EngineError>> {
        Box::pin(self.read_original_text(bytes, max_pixels, lang))
    }
}

/// The cross-check's reader and how many cards it reads at once.
#[derive(Debug, Clone)]
pub struct CrossCheck {
    reader: Arc<dyn ReadsText>,
    workers: usize,
}

impl CrossCheck {
    /// Checks with `reader`, `workers` cards at a time (at least one).
    pub fn new(reader: Arc<dyn ReadsText>, workers: usize) -> Self {
        Self {
            reader,
            workers: workers.max(1),
        }
    }

    /// The embedded OCR engine in the background with `workers` threads
    /// reading `lang` by default.
    #[cfg(feature = "ocr")]
    pub fn ocr(lang: &str, workers: usize) -> Result<Self, String> {
        let engine = cardex_engine::ocr::OcrEngine::in_background(lang, workers)?;
        Ok(Self::new(Arc::new(engine), workers))
    }

    /// Cards read at once.
    pub fn workers(&self) -> usize {
        self.workers
    }
}

/// How long a check that could not be recorded waits before it is tried
/// again, so that a failing database is not asked in a tight loop.
const RECORD_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

impl Runner {
    /// Checks waiting results until stopped, `check.workers` at a time,
    /// with one more card each waiting so that no worker idles.
    pub(crate) async fn check_loop(self, check: CrossCheck) {
        let mut tasks: JoinSet<i64> = JoinSet::new();
        let mut in_flight: HashSet<i64> = HashSet::new();
        let room = check.workers * 2;
        loop {
            let mut fetched = 0;
            if tasks.len() < room {
                let skip: Vec<i64> = in_flight.iter().copied().collect();
                match self.store().pending_checks(room - tasks.len(), &skip).await {
                    Ok(jobs) => {
                        fetched = jobs.len();
                        for job in jobs {
                            in_flight.insert(job.card_id);
                            let (runner, check) = (self.clone(), check.clone());
                            tasks.spawn(async move {
                                let id = job.card_id;
                                let checked = AssertUnwindSafe(runner.check_card(&check, job))
                                    .catch_unwind()
                                    .await;
                                if let Err(panic) = checked {
                                    // Marked, or it would be taken again and again.
                                    let note = format!(
                                        "the cross-check failed: {}",
                                        crate::runner::panic_message(panic.as_ref())
                                    );
                                    tracing::error!(card = id, "{note}");
                                    let skipped = CheckOutcome::Skipped {
                                        note: &note,
                                        text: None,
                                    };
                                    runner.record(id, skipped).await;
                                }
                                id
                            });
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot read the cross-check's queue"),
                }
            }
            tokio::select! {
                biased;
                _ = self.stopped() => break,
                Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                    if let Ok(id) = done {
                        in_flight.remove(&id);
                    }
                }
                _ = self.check_wake().notified() => {}
                _ = tokio::time::sleep(std::time::Duration::from_secs(1)), if fetched == 0 => {}
            }
        }
        tasks.shutdown().await;
    }

    /// Reads one card's text, compares the model's values with it and
    /// records the outcome with its event.
    async fn check_card(&self, check: &CrossCheck, job: CheckJob) {
        let path = self
            .store()
            .layout()
            .batch_image(&job.batch_name, &job.stored_name);
        let plan = self.plan_for(&job.batch_id).await;
        let read = match tokio::fs::read(&path).await {
            Err(e) => Err(format!("the card's image could not be read: {e}")),
            Ok(bytes) => check
                .reader
                .read_text(bytes, self.max_pixels(), job.ocr_lang.as_deref())
                .await
                .map_err(|e| format!("OCR could not read the card: {e}")),
        };
        let mut flags = job.flags;
        let mut note = None;
        let reading = match (read, plan) {
            (Ok(reading), _) if reading.confidence < MIN_LEGIBLE => {
                note = Some(format!(
                    "OCR could not read this card well enough to check the model against \
                     (confidence {:.2}): handwriting or a poor scan; check it by eye",
                    reading.confidence
                ));
                Some(reading)
            }
            (Ok(reading), Ok(plan)) => {
                let values = job.result.as_object().cloned().unwrap_or_default();
                flags.extend(not_in_text(
                    &plan.prompt.fields,
                    &values,
                    &CardText::new(&reading.text),
                ));
                Some(reading)
            }
            (Err(why), _) | (_, Err(why)) => {
                note = Some(why);
                None
            }
        };
        let text = reading.as_ref().map(|r| r.text.as_str());
        let outcome = match (&note, text) {
            (None, Some(text)) => CheckOutcome::Done {
                text,
                flags: &flags,
            },
            (note, text) => CheckOutcome::Skipped {
                note: note.as_deref().unwrap_or("not read"),
                text,
            },
        };
        if let CheckOutcome::Skipped { note, .. } = outcome {
            tracing::warn!(card = job.card_id, "cross-check skipped: {note}");
        }
        self.record(job.card_id, outcome).await;
    }

    /// Records a check's outcome and tells the batch's watchers.
    async fn record(&self, card_id: i64, outcome: CheckOutcome<'_>) {
        match self.store().record_check(card_id, outcome).await {
            Ok(Some((batch_id, event))) => self.publish(&batch_id, &event),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(card = card_id, error = %e, "cannot record a cross-check; it is tried again");
                tokio::time::sleep(RECORD_RETRY).await;
            }
        }
    }
}
