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

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

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

/// How long a check whose outcome could not be written waits before it
/// tries again (doubling each time), and how often it tries.
const RECORD_RETRY: Duration = Duration::from_secs(1);
const RECORD_ATTEMPTS: u32 = 4;

/// Longest wait for one card's reading; a hung one is given up on (the
/// card is marked skipped).
const READ_TIMEOUT: Duration = Duration::from_secs(120);

impl Runner {
    /// Checks waiting results until stopped, `check.workers` at a time,
    /// with one more card each waiting so that no worker idles.
    pub(crate) async fn check_loop(self, check: CrossCheck) {
        let mut tasks: JoinSet<()> = JoinSet::new();
        // Card of each running task, so that a card is let go however its
        // task ends.
        let mut cards: HashMap<tokio::task::Id, i64> = HashMap::new();
        let room = check.workers * 2;
        loop {
            let mut fetched = 0;
            if tasks.len() < room {
                let skip: Vec<i64> = cards.values().copied().collect();
                match self.store().pending_checks(room - tasks.len(), &skip).await {
                    Ok(jobs) => {
                        fetched = jobs.len();
                        for job in jobs {
                            let id = job.card_id;
                            let (runner, check) = (self.clone(), check.clone());
                            let task = tasks.spawn(async move {
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
                            });
                            cards.insert(task.id(), id);
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot read the cross-check's queue"),
                }
            }
            tokio::select! {
                biased;
                _ = self.stopped() => break,
                Some(done) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                    let task = match &done {
                        Ok((task, ())) => *task,
                        Err(e) => e.id(),
                    };
                    cards.remove(&task);
                }
                _ = self.check_wake().notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)), if fetched == 0 => {}
            }
        }
        tasks.shutdown().await;
    }

    /// Reads one card's text, compares the model's values with it and
    /// records the outcome with its event.
    async fn check_card(&self, check: &CrossCheck, job: CheckJob) {
        let mut flags = job.flags.clone();
        // The card's text, or why it was not judged (with its text when
        // it was read, too poorly).
        let checked: Result<String, (String, Option<String>)> =
            match self.read_card(check, &job).await {
                Err(why) => {
                    tracing::warn!(card = job.card_id, "cross-check skipped: {why}");
                    Err((why, None))
                }
                Ok(reading) if reading.confidence < MIN_LEGIBLE => {
                    let why = format!(
                        "OCR could not read this card well enough to check the model against \
                         (confidence {:.2}): handwriting or a poor scan; check it by eye",
                        reading.confidence
                    );
                    Err((why, Some(reading.text)))
                }
                Ok(reading) => {
                    let values = job.result.as_object().cloned().unwrap_or_default();
                    let card = CardText::new(&reading.text);
                    flags.extend(not_in_text(&job.fields, &values, &card));
                    Ok(reading.text)
                }
            };
        let outcome = match &checked {
            Ok(text) => CheckOutcome::Done {
                text,
                flags: &flags,
            },
            Err((note, text)) => CheckOutcome::Skipped {
                note,
                text: text.as_deref(),
            },
        };
        self.record(job.card_id, outcome).await;
    }

    /// The card's own text (both sides' of a two-sided card), or why not.
    /// A reading that takes longer than [`READ_TIMEOUT`] is given up on.
    async fn read_card(&self, check: &CrossCheck, job: &CheckJob) -> Result<Reading, String> {
        let front = self.read_side(check, job, &job.stored_name).await?;
        match &job.back_stored_name {
            None => Ok(front),
            Some(back) => Ok(Reading::join(
                front,
                self.read_side(check, job, back).await?,
            )),
        }
    }

    /// The text of one of a card's images.
    async fn read_side(
        &self,
        check: &CrossCheck,
        job: &CheckJob,
        stored_name: &str,
    ) -> Result<Reading, String> {
        let path = self
            .store()
            .layout()
            .batch_image(&job.batch_name, stored_name);
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(|e| format!("the card's image could not be read: {e}"))?;
        let reading = check
            .reader
            .read_text(bytes, self.max_pixels(), job.ocr_lang.as_deref());
        tokio::time::timeout(READ_TIMEOUT, reading)
            .await
            .map_err(|_| format!("OCR took over {} s", READ_TIMEOUT.as_secs()))?
            .map_err(|e| format!("OCR could not read the card: {e}"))
    }

    /// Records a check's outcome and tells the batch's watchers; a failed
    /// write is tried again a few times, so the card is not read again.
    async fn record(&self, card_id: i64, outcome: CheckOutcome<'_>) {
        let mut wait = RECORD_RETRY;
        for attempt in 1..=RECORD_ATTEMPTS {
            match self.store().record_check(card_id, outcome).await {
                Ok(Some((batch_id, event))) => return self.publish(&batch_id, &event),
                Ok(None) => return,
                Err(e) if attempt < RECORD_ATTEMPTS => {
                    tracing::warn!(card = card_id, error = %e, "cannot record a cross-check; trying again");
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
                Err(e) => {
                    tracing::warn!(card = card_id, error = %e, "cannot record a cross-check; it stays waiting");
                }
            }
        }
    }
}
