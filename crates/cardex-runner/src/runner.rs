//! The batch runner: claims pending cards of running batches (oldest batch
//! first), prepares each image on bounded blocking threads while requests
//! are in flight, runs it through the batch's engine with retries, and
//! commits the outcome with its event in one transaction.
//!
//! Each engine has a [`Limiter`] for its requests in flight (fixed, or
//! found by [`limit`]'s throughput climb). The runner claims a few cards
//! more than that limit, so that the next images are already prepared and
//! waiting when a request slot frees up: the model server never waits on
//! decoding. A permit is held for one request only, not through the waits
//! between retries.
//!
//! Results are committed in groups: card tasks hand them to one committer,
//! which writes everything waiting in one transaction and then publishes
//! the events. Under load a commit carries many cards; alone, a card is
//! committed at once.
//!
//! A card that fails after its retries is quarantined and the batch goes
//! on; an engine that refuses our credentials pauses the batch instead of
//! failing every card. On shutdown, cards in flight go back to `pending`.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use cardex_core::flag::review_flags;
use cardex_core::{BatchState, Flag, Prices, Usage};
use cardex_engine::{
    CompiledPrompt, Engine, EngineError, Extraction, PrepareOptions, RetryPolicy, Unavailable,
    retry_attempts,
};
use cardex_store::{
    CardFailure, ClaimedCard, Completion, GroupCommitted, Reason, SharedStore, Spent, StoreError,
    StoredEvent,
};
use futures_util::FutureExt;
use serde_json::{Value, json};
use tokio::sync::{Notify, Semaphore, mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::check::CrossCheck;
use crate::engines::{EngineSlot, Engines, SlotGuard};
use crate::hub::{self, Hub};
use crate::limit::Signal;

/// Settings of the runner.
#[derive(Debug, Clone, Copy)]
pub struct RunnerConfig {
    /// How images are prepared.
    pub prepare: PrepareOptions,
    /// How hard each card is tried.
    pub retry: RetryPolicy,
    /// Values whose confidence is under this are flagged `low_confidence`.
    pub low_confidence: f64,
    /// What the model's tokens cost; without, batches have no cost and a
    /// cost budget cannot be reached.
    pub prices: Option<Prices>,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        Self {
            prepare: PrepareOptions::default(),
            retry: RetryPolicy::default(),
            low_confidence: DEFAULT_LOW_CONFIDENCE,
            prices: None,
        }
    }
}

/// Whether engine `name` is paid per token (a model server; the OCR
/// engine runs here and costs nothing).
pub fn is_priced(engine: &str) -> bool {
    engine == "vlm"
}

/// What `batch`'s tokens cost at `prices`, in US dollars: `None` without
/// prices, and for engines that are not priced per token (OCR).
pub fn batch_cost(batch: &cardex_store::Batch, prices: Option<&Prices>) -> Option<f64> {
    prices
        .filter(|_| is_priced(&batch.engine))
        .map(|p| p.cost(&batch.usage))
}

/// Why batches pause at their budget.
pub const BUDGET_REACHED: &str = "budget_reached";

/// The default confidence under which a value is flagged (DESIGN §13).
pub const DEFAULT_LOW_CONFIDENCE: f64 = 0.6;

/// The batch runner. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Runner {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: SharedStore,
    engines: Engines,
    hub: Hub,
    config: RunnerConfig,
    wake: Notify,
    /// Bounds image preparation to the cores, apart from async work.
    prepare_slots: Semaphore,
    /// The disk is full: no new cards are taken until there is room.
    disk_full: AtomicBool,
    /// Cards whose release could not be written, to put back later.
    unreleased: Mutex<Vec<i64>>,
    /// Panics so far of cards whose processing panicked, by card id.
    panics: Mutex<HashMap<i64, u32>>,
    /// Batches paused or cancelled since their cards were claimed: their
    /// cards not yet sent are put back rather than sent (a batch paused at
    /// its budget spends no more than its requests in flight).
    held: Mutex<std::collections::HashSet<String>>,
    /// Each batch's compiled prompt and OCR language, by batch id; they
    /// never change after start.
    prompts: Mutex<HashMap<String, Arc<BatchPlan>>>,
    /// The cross-check of model results against the cards' own text.
    cross_check: Option<CrossCheck>,
    /// Wakes the cross-check when results wait for it.
    check_wake: Notify,
    /// Results on their way to the group committer.
    commits: mpsc::Sender<PendingCommit>,
    /// The committer's end, taken by [`Runner::run`].
    commit_queue: Mutex<Option<mpsc::Receiver<PendingCommit>>>,
    stop: CancellationToken,
}

/// How a batch's cards are read: its compiled prompt and OCR language.
#[derive(Debug)]
struct BatchPlan {
    prompt: CompiledPrompt,
    /// Hex SHA-256 of the prompt as sent (system, user, schema), for each
    /// result's provenance: for one image, and for a two-sided card's two.
    prompt_sha256: [String; 2],
    ocr_lang: Option<String>,
}

/// A card's result waiting for the group commit.
struct PendingCommit {
    card: ClaimedCard,
    result: Value,
    raw: String,
    flags: Vec<Flag>,
    confidence: Value,
    text: Option<String>,
    /// The result is to be cross-checked.
    check: bool,
    /// What reading the card cost.
    usage: Usage,
    /// Where the result came from.
    provenance: Value,
    /// Answered once the result is committed; dropped unanswered when
    /// it was not, and the card task then puts the card back.
    done: oneshot::Sender<()>,
}

impl std::fmt::Debug for PendingCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingCommit")
            .field("card", &self.card.id)
            .finish_non_exhaustive()
    }
}

/// Why batches pause when the data dir's disk is full.
const DISK_FULL: Reason<'static> = Reason {
    code: "disk_full",
    message: "the disk holding the data dir is full; processing resumes by itself once there is room",
};
/// How often a full disk is checked for room again.
const DISK_PROBE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);
/// Room that counts as "room again": enough for many commits.
const DISK_ROOM: u64 = 4 * 1024 * 1024;

/// Panics a card may cause before it fails with `internal_error`.
const MAX_PANICS: u32 = 3;

/// The text of a panic, as far as it has one.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// Most cards in one group commit.
const MAX_GROUP: usize = 256;

impl Runner {
    /// A runner over `store`; call [`Runner::run`] to start it. With
    /// `check`, every result a model gives is cross-checked against the
    /// card's own text ([`crate::check`]).
    pub fn new(
        store: SharedStore,
        engines: Engines,
        hub: Hub,
        config: RunnerConfig,
        check: Option<CrossCheck>,
        stop: CancellationToken,
    ) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let (commits, commit_queue) = mpsc::channel(MAX_GROUP * 4);
        Self {
            inner: Arc::new(Inner {
                store,
                engines,
                hub,
                config,
                wake: Notify::new(),
                prepare_slots: Semaphore::new(cores),
                prompts: Mutex::new(HashMap::new()),
                held: Mutex::new(Default::default()),
                panics: Mutex::new(HashMap::new()),
                disk_full: AtomicBool::new(false),
                unreleased: Mutex::new(Vec::new()),
                cross_check: check,
                check_wake: Notify::new(),
                commits,
                commit_queue: Mutex::new(Some(commit_queue)),
                stop,
            }),
        }
    }

    /// Whether results of models are cross-checked.
    pub fn cross_checks(&self) -> bool {
        self.inner.cross_check.is_some()
    }

    pub(crate) fn store(&self) -> &SharedStore {
        &self.inner.store
    }

    pub(crate) fn stopped(&self) -> tokio_util::sync::WaitForCancellationFuture<'_> {
        self.inner.stop.cancelled()
    }

    pub(crate) fn check_wake(&self) -> &Notify {
        &self.inner.check_wake
    }

    pub(crate) fn max_pixels(&self) -> u64 {
        self.inner.config.prepare.max_pixels
    }

    /// The engines.
    pub fn engines(&self) -> &Engines {
        &self.inner.engines
    }

    /// The progress hub.
    pub fn hub(&self) -> &Hub {
        &self.inner.hub
    }

    /// Tells the runner there may be new work (start, resume, retry).
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// Publishes a durable event to the batch's watchers.
    pub fn publish(&self, batch_id: &str, event: &StoredEvent) {
        self.inner.hub.publish(batch_id, event.payload.clone());
    }

    /// Runs until the stop token is cancelled; cards in flight then go
    /// back to `pending`.
    pub async fn run(self) {
        let queue = self
            .inner
            .commit_queue
            .lock()
            .expect("lock poisoned")
            .take();
        let committer = queue.map(|q| tokio::spawn(self.clone().commit_loop(q)));
        let checker = self
            .inner
            .cross_check
            .clone()
            .map(|check| tokio::spawn(self.clone().check_loop(check)));
        let mut in_flight: JoinSet<()> = JoinSet::new();
        loop {
            self.pause_engineless().await;
            // A full disk takes no new cards until there is room again.
            let claimed = if self.inner.disk_full.load(Ordering::Acquire) {
                0
            } else {
                self.claim(&mut in_flight).await
            };
            tokio::select! {
                biased;
                _ = self.inner.stop.cancelled() => break,
                Some(res) = in_flight.join_next(), if !in_flight.is_empty() => {
                    if let Err(e) = res {
                        tracing::error!(error = %e, "a card task panicked");
                    }
                }
                _ = self.inner.wake.notified() => {}
                _ = tokio::time::sleep(std::time::Duration::from_secs(1)), if claimed == 0 => {}
            }
        }
        // Workers see the same token and release their cards.
        while in_flight.join_next().await.is_some() {}
        if let Some(c) = committer {
            let _ = c.await;
        }
        if let Some(c) = checker {
            let _ = c.await;
        }
    }

    /// Commits waiting results in groups until stopped.
    async fn commit_loop(self, mut queue: mpsc::Receiver<PendingCommit>) {
        let mut group = Vec::with_capacity(MAX_GROUP);
        loop {
            tokio::select! {
                biased;
                _ = self.inner.stop.cancelled() => break,
                n = queue.recv_many(&mut group, MAX_GROUP) => if n == 0 { break },
            }
            let committed = self.commit_group(&group).await;
            for p in group.drain(..) {
                if committed {
                    let _ = p.done.send(());
                }
            }
        }
    }

    /// Commits and publishes a group; false when nothing was committed.
    async fn commit_group(&self, group: &[PendingCommit]) -> bool {
        let items: Vec<Completion<'_>> = group
            .iter()
            .map(|p| Completion {
                card: &p.card,
                result: &p.result,
                raw: &p.raw,
                flags: &p.flags,
                confidence: &p.confidence,
                text: p.text.as_deref(),
                check: p.check,
                usage: &p.usage,
                provenance: &p.provenance,
            })
            .collect();
        let committed = match self.inner.store.complete_cards(&items).await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(cards = group.len(), error = %e, "could not record results; the cards will be retried");
                self.note_store_error(&e);
                return false;
            }
        };
        self.announce(&committed).await;
        if group.iter().any(|p| p.check) {
            self.inner.check_wake.notify_one();
        }
        true
    }

    /// Claims cards up to each engine's target; returns how many.
    async fn claim(&self, in_flight: &mut JoinSet<()>) -> usize {
        let mut claimed = 0;
        for (name, slot) in &self.inner.engines.engines {
            let free = slot
                .target()
                .saturating_sub(slot.claimed.load(Ordering::Acquire));
            if free == 0 {
                continue;
            }
            let cards = match self.inner.store.claim_cards(name, free).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(error = %e, "claiming cards failed");
                    self.note_store_error(&e);
                    continue;
                }
            };
            claimed += cards.len();
            for card in cards {
                slot.claimed.fetch_add(1, Ordering::AcqRel);
                let guard = SlotGuard(slot.claimed.clone());
                let runner = self.clone();
                let slot = slot.clone();
                in_flight.spawn(async move {
                    let _guard = guard;
                    let id = card.id;
                    let card_ref = card.clone();
                    let processed = AssertUnwindSafe(runner.process(card, &slot))
                        .catch_unwind()
                        .await;
                    if let Err(panic) = processed {
                        runner.after_panic(&card_ref, panic_message(&*panic)).await;
                    } else {
                        runner.forget_panics(id);
                    }
                });
            }
        }
        claimed
    }

    /// Pauses running batches whose engine this server does not have, with
    /// the reason, rather than leaving them waiting forever.
    async fn pause_engineless(&self) {
        let Ok(running) = self.inner.store.running_batches().await else {
            return;
        };
        for (id, engine) in running {
            if self.inner.engines.get(&engine).is_some() {
                continue;
            }
            let reason = format!(
                "the {engine} engine is not available on this server; configure it and resume the batch"
            );
            let _ = self
                .pause_batch(
                    &id,
                    Reason {
                        code: "engine_unavailable",
                        message: &reason,
                    },
                )
                .await;
        }
    }

    /// Pauses batch `id` if it is running, with `reason`, and tells its
    /// watchers; `Ok(false)` when it was no longer running (paused or
    /// ended meanwhile, or another card paused it first).
    async fn pause_batch(&self, id: &str, reason: Reason<'_>) -> Result<bool, StoreError> {
        let paused = self
            .inner
            .store
            .transition(id, &[BatchState::Running], BatchState::Paused, Some(reason))
            .await;
        match paused {
            Ok(events) => {
                self.hold(id);
                tracing::warn!(batch = %id, code = reason.code, "batch paused: {}", reason.message);
                for event in &events {
                    self.publish(id, event);
                }
                Ok(true)
            }
            Err(StoreError::Conflict { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Puts a card back in line; when even that cannot be written (a full
    /// disk), it is kept to be put back once the store takes writes again.
    async fn release(&self, card_id: i64) {
        if let Err(e) = self.inner.store.release_card(card_id).await {
            tracing::error!(card = card_id, error = %e, "could not put a card back in line");
            self.note_store_error(&e);
            self.inner
                .unreleased
                .lock()
                .expect("lock poisoned")
                .push(card_id);
        }
    }

    /// Reacts to a store failure: when the disk is full, the runner stops
    /// taking cards, pauses the running batches with reason `disk_full`
    /// and waits for room ([`Runner::wait_for_room`]).
    fn note_store_error(&self, e: &StoreError) {
        if e.is_disk_full() && !self.inner.disk_full.swap(true, Ordering::AcqRel) {
            tracing::error!(
                "the disk holding the data dir is full: processing stops until there is room"
            );
            tokio::spawn(self.clone().wait_for_room());
        }
    }

    /// While the disk is full: pauses the running batches (as soon as that
    /// can be written), then checks for room every few seconds; once there
    /// is, puts back the cards it could not, resumes the batches it paused
    /// and takes cards again. Nothing was lost: every card not committed is
    /// `pending` again, and none counts the failure as an attempt.
    async fn wait_for_room(self) {
        // The reserve's room lets the pause and the cards put back be written.
        let freed = self.inner.store.layout().free_reserve().await;
        tracing::warn!(
            reserve_freed = freed,
            "pausing the running batches until the disk has room"
        );
        let mut paused = false;
        loop {
            if !paused {
                paused = self.pause_running(DISK_FULL).await;
            }
            tokio::select! {
                _ = self.inner.stop.cancelled() => return,
                _ = tokio::time::sleep(DISK_PROBE_INTERVAL) => {}
            }
            let layout = self.inner.store.layout();
            if !layout
                .has_room(DISK_ROOM + cardex_store::layout::RESERVE_BYTES)
                .await
            {
                continue;
            }
            layout.restore_reserve().await;
            let held = std::mem::take(&mut *self.inner.unreleased.lock().expect("lock poisoned"));
            for card_id in held {
                self.release(card_id).await;
            }
            if !self
                .inner
                .unreleased
                .lock()
                .expect("lock poisoned")
                .is_empty()
            {
                continue;
            }
            match self.inner.store.resume_paused(DISK_FULL.code).await {
                Ok(resumed) => {
                    for (batch_id, event) in &resumed {
                        self.unhold(batch_id);
                        self.publish(batch_id, event);
                    }
                    tracing::info!(
                        batches = resumed.len(),
                        "the disk has room again: processing resumes"
                    );
                    self.inner.disk_full.store(false, Ordering::Release);
                    self.wake();
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot resume the batches paused for a full disk yet")
                }
            }
        }
    }

    /// Pauses every running batch with `reason`; true when all were paused.
    async fn pause_running(&self, reason: Reason<'_>) -> bool {
        let Ok(running) = self.inner.store.running_batches().await else {
            return false;
        };
        let mut all = true;
        for (id, _) in running {
            all &= self.pause_batch(&id, reason).await.is_ok();
        }
        all
    }

    /// A card's processing panicked (a bug, whatever the card): the card is
    /// not left held. It goes back in line, and after [`MAX_PANICS`]
    /// panics it fails with `internal_error`, so one bad card cannot stop
    /// the batch, nor be tried forever.
    async fn after_panic(&self, card: &ClaimedCard, message: String) {
        let panics = {
            let mut counts = self.inner.panics.lock().expect("lock poisoned");
            let n = counts.entry(card.id).or_insert(0);
            *n += 1;
            *n
        };
        tracing::error!(card = card.id, file = %card.original_name, panics, "processing a card panicked: {message}");
        if panics < MAX_PANICS {
            self.release(card.id).await;
            self.wake();
            return;
        }
        self.forget_panics(card.id);
        let failure = CardFailure {
            code: "internal_error".into(),
            message: format!(
                "processing this card failed unexpectedly {MAX_PANICS} times ({message}); this is a bug in cardex, please report it"
            ),
            attempts: 0,
            last_answer: None,
            usage: Usage::default(),
        };
        self.fail(card, failure).await;
    }

    fn forget_panics(&self, card_id: i64) {
        let mut counts = self.inner.panics.lock().expect("lock poisoned");
        if !counts.is_empty() {
            counts.remove(&card_id);
        }
    }

    /// One card, start to end.
    async fn process(&self, card: ClaimedCard, slot: &EngineSlot) {
        let stop = self.inner.stop.clone();
        tokio::select! {
            _ = stop.cancelled() => {
                self.release(card.id).await;
            }
            _ = self.work(&card, slot) => {}
        }
    }

    async fn work(&self, card: &ClaimedCard, slot: &EngineSlot) {
        let outcome = match self.plan_for(&card.batch_id).await {
            Err(e) => Err(CardFailure {
                code: "internal".into(),
                message: e,
                attempts: 0,
                last_answer: None,
                usage: Usage::default(),
            }),
            Ok(plan) => match self.prepare(card, slot.pool.engine().as_ref()).await {
                Err(e) => Err(CardFailure {
                    code: e.code().into(),
                    message: e.to_string(),
                    attempts: 1,
                    last_answer: None,
                    usage: Usage::default(),
                }),
                Ok(images) => {
                    let (first, held) = (AtomicBool::new(true), AtomicBool::new(false));
                    let served_by = AtomicUsize::new(0);
                    // What requests that went elsewhere without counting as
                    // an attempt cost.
                    let rerouted = Mutex::new(Usage::default());
                    let mut attempted = retry_attempts(&self.inner.config.retry, || async {
                        let mut tried = Vec::new();
                        loop {
                            let (at, permit) = slot.pool.acquire(&tried).await;
                            if first.swap(false, Ordering::Relaxed) && self.is_held(&card.batch_id)
                            {
                                held.store(true, Ordering::Relaxed);
                                return Err(EngineError::Config {
                                    message: "the batch was paused".into(),
                                });
                            }
                            let result = slot
                                .pool
                                .engine_at(at)
                                .extract_in(&images, &plan.prompt, plan.ocr_lang.as_deref())
                                .await;
                            permit.finish(load_signal(&result));
                            served_by.store(at, Ordering::Relaxed);
                            tried.push(at);
                            // A server that is not answering: the card goes
                            // to one not yet tried, in this same attempt.
                            if slot.pool.record(at, &result) && tried.len() < slot.pool.servers() {
                                if let Err(e) = &result {
                                    rerouted.lock().expect("lock poisoned").add(&e.usage());
                                }
                                continue;
                            }
                            return result;
                        }
                    })
                    .await;
                    attempted
                        .usage
                        .add(&rerouted.into_inner().expect("lock poisoned"));
                    if held.load(Ordering::Relaxed) {
                        // Never sent: back in line for when the batch resumes.
                        self.release(card.id).await;
                        return;
                    }
                    match attempted.result {
                        Ok(mut x) => {
                            x.flags.extend(review_flags(
                                &plan.prompt.fields,
                                &x.fields,
                                &x.confidence,
                                self.inner.config.low_confidence,
                            ));
                            let engine = slot.pool.engine_at(served_by.into_inner());
                            let provenance = json!({
                                "engine": engine.name(),
                                "model": engine.model(),
                                "endpoint": engine.endpoint(),
                                "prompt_sha256": plan.prompt_sha256[images.len().clamp(1, 2) - 1],
                                "response_mode": x.response_mode,
                            });
                            Ok((x, attempted.usage, provenance))
                        }
                        Err(EngineError::Config { message }) => {
                            self.pause_for(card, &message).await;
                            return;
                        }
                        Err(e) => Err(CardFailure {
                            code: e.code().into(),
                            message: e.to_string(),
                            attempts: attempted.attempts,
                            last_answer: attempted
                                .last_answer
                                .as_deref()
                                .map(|r| cardex_engine::vlm::excerpt(r, 500)),
                            usage: attempted.usage,
                        }),
                    }
                }
            },
        };
        match outcome {
            Ok((x, usage, provenance)) => self.commit(card, x, usage, provenance).await,
            Err(failure) => self.fail(card, failure).await,
        }
    }

    /// Hands a result to the group committer and waits for it.
    async fn commit(&self, card: &ClaimedCard, x: Extraction, usage: Usage, provenance: Value) {
        let (done, committed) = oneshot::channel();
        let pending = PendingCommit {
            card: card.clone(),
            result: Value::Object(x.fields),
            raw: x.raw,
            flags: x.flags,
            confidence: Value::Object(x.confidence),
            // What the engine did not read itself is read by the check.
            check: x.text.is_none() && self.inner.cross_check.is_some(),
            text: x.text.map(|r| r.text),
            usage,
            provenance,
            done,
        };
        let sent = self.inner.commits.send(pending).await.is_ok();
        if !sent || committed.await.is_err() {
            // Not committed: back to `pending`, to be read again.
            tracing::warn!(
                card = card.id,
                "a result was not committed; the card goes back to the queue"
            );
            self.release(card.id).await;
        }
    }

    /// Records a card's failure and quarantines its image.
    async fn fail(&self, card: &ClaimedCard, failure: CardFailure) {
        tracing::warn!(card = card.id, file = %card.original_name, code = %failure.code, "card failed: {}", failure.message);
        match self.inner.store.fail_card(card, &failure).await {
            Ok(Some(c)) => {
                let batch = || card.batch_id.clone();
                self.announce(&GroupCommitted {
                    events: vec![(batch(), c.event)],
                    finished: c.finished.map(|f| (batch(), f)).into_iter().collect(),
                    spent: vec![(batch(), c.spent)],
                })
                .await;
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(card = card.id, error = %e, "could not record a card's outcome; it will be retried");
                self.note_store_error(&e);
                self.release(card.id).await;
            }
        }
    }

    /// What every card of the batch is read with, compiled once.
    async fn plan_for(&self, batch_id: &str) -> Result<Arc<BatchPlan>, String> {
        if let Some(p) = self
            .inner
            .prompts
            .lock()
            .expect("lock poisoned")
            .get(batch_id)
        {
            return Ok(p.clone());
        }
        let batch = self
            .inner
            .store
            .get_batch(batch_id)
            .await
            .map_err(|e| e.to_string())?;
        let prompt = CompiledPrompt::new(&batch.fields)?;
        let plan = Arc::new(BatchPlan {
            prompt_sha256: [prompt_sha256(&prompt, 1), prompt_sha256(&prompt, 2)],
            prompt,
            ocr_lang: batch.ocr_lang,
        });
        self.inner
            .prompts
            .lock()
            .expect("lock poisoned")
            .insert(batch_id.to_owned(), plan.clone());
        Ok(plan)
    }

    /// Prepares a card's images: its front, and a two-sided card's back.
    async fn prepare(
        &self,
        card: &ClaimedCard,
        engine: &dyn Engine,
    ) -> Result<Vec<cardex_engine::PreparedImage>, cardex_engine::image::ImageError> {
        let layout = self.inner.store.layout();
        let sides = std::iter::once(&card.stored_name).chain(&card.back_stored_name);
        let mut images = Vec::with_capacity(2);
        for stored in sides {
            let path = layout.batch_image(&card.batch_name, stored);
            images.push(self.prepare_for(path, engine).await?);
        }
        Ok(images)
    }

    /// Prepares the image at `path` as `engine` reads it: the original,
    /// grey, for the OCR engine; scaled and encoded for a model otherwise.
    /// In turn with every other preparation, like [`Runner::prepare_file`].
    pub async fn prepare_for(
        &self,
        path: std::path::PathBuf,
        engine: &dyn Engine,
    ) -> Result<cardex_engine::PreparedImage, cardex_engine::image::ImageError> {
        if !engine.reads_original() {
            return self.prepare_file(path).await;
        }
        let _slot = self
            .inner
            .prepare_slots
            .acquire()
            .await
            .expect("never closed");
        let max_pixels = self.inner.config.prepare.max_pixels;
        tokio::task::spawn_blocking(move || {
            cardex_engine::prepare::prepare_for_ocr(&path, max_pixels)
        })
        .await
        .unwrap_or_else(|e| Err(cardex_engine::image::ImageError::Corrupt(e.to_string())))
    }

    /// Prepares the image at `path` for the engines, on a blocking thread,
    /// at most one per core at a time: the runner's cards, the one-card
    /// test and previews all take turns, so decoding stays bounded in
    /// memory and CPU however many requests come in.
    pub async fn prepare_file(
        &self,
        path: std::path::PathBuf,
    ) -> Result<cardex_engine::PreparedImage, cardex_engine::image::ImageError> {
        let _slot = self
            .inner
            .prepare_slots
            .acquire()
            .await
            .expect("never closed");
        let options = self.inner.config.prepare;
        tokio::task::spawn_blocking(move || cardex_engine::prepare::prepare_file(&path, &options))
            .await
            .unwrap_or_else(|e| Err(cardex_engine::image::ImageError::Corrupt(e.to_string())))
    }

    /// The engine refused our configuration: put the card back and pause
    /// the batch with the reason, once.
    async fn pause_for(&self, card: &ClaimedCard, message: &str) {
        self.release(card.id).await;
        // Only the first card to see the refusal pauses; for the others the
        // batch is no longer running.
        let reason = Reason {
            code: "engine_misconfigured",
            message,
        };
        if let Err(e) = self.pause_batch(&card.batch_id, reason).await {
            tracing::error!(batch = %card.batch_id, error = %e, "could not pause the batch: {message}");
        }
    }

    /// Publishes committed cards' events, a `progress` event for each batch
    /// that is due one (or has ended), then the ends of batches.
    async fn announce(&self, committed: &GroupCommitted) {
        let hub = &self.inner.hub;
        let mut progress_due: Vec<&str> = Vec::new();
        for (batch_id, event) in &committed.events {
            self.publish(batch_id, event);
            if hub.record_completion(batch_id) && !progress_due.contains(&batch_id.as_str()) {
                progress_due.push(batch_id);
            }
        }
        for (batch_id, _) in &committed.finished {
            if !progress_due.contains(&batch_id.as_str()) {
                progress_due.push(batch_id);
            }
        }
        for batch_id in progress_due {
            self.send_progress(batch_id).await;
        }
        for (batch_id, state) in &committed.finished {
            self.forget_batch(batch_id);
            self.publish(batch_id, state);
        }
        for (batch_id, spent) in &committed.spent {
            if committed.finished.iter().all(|(id, _)| id != batch_id) {
                self.hold_to_budget(batch_id, spent).await;
            }
        }
    }

    /// Pauses a running batch that has reached its budget, with reason
    /// `budget_reached`. Its cards in flight finish and are kept (and
    /// counted); raising the budget and resuming goes on.
    async fn hold_to_budget(&self, batch_id: &str, spent: &Spent) {
        let Some(why) = spent
            .budget
            .reached(&spent.usage, self.inner.config.prices.as_ref())
        else {
            return;
        };
        let reason = Reason {
            code: BUDGET_REACHED,
            message: &why,
        };
        if let Err(e) = self.pause_batch(batch_id, reason).await {
            tracing::error!(batch = %batch_id, error = %e, "could not pause a batch at its budget");
        }
    }

    /// What the model's tokens cost, when prices are configured.
    pub fn prices(&self) -> Option<&Prices> {
        self.inner.config.prices.as_ref()
    }

    /// Drops what the runner keeps of a batch that will read no more cards
    /// (finished, cancelled or deleted): its compiled prompt. A retry
    /// compiles it anew.
    pub fn forget_batch(&self, batch_id: &str) {
        self.inner
            .prompts
            .lock()
            .expect("lock poisoned")
            .remove(batch_id);
        self.inner
            .held
            .lock()
            .expect("lock poisoned")
            .remove(batch_id);
    }

    /// Batch `batch_id` was paused or cancelled: its claimed cards whose
    /// first request has not gone out yet go back in line instead. The
    /// requests in flight finish.
    pub fn hold(&self, batch_id: &str) {
        self.inner
            .held
            .lock()
            .expect("lock poisoned")
            .insert(batch_id.to_owned());
    }

    /// Batch `batch_id` runs again (resumed, or its failed cards retried).
    pub fn unhold(&self, batch_id: &str) {
        self.inner
            .held
            .lock()
            .expect("lock poisoned")
            .remove(batch_id);
    }

    fn is_held(&self, batch_id: &str) -> bool {
        let held = self.inner.held.lock().expect("lock poisoned");
        !held.is_empty() && held.contains(batch_id)
    }

    /// Publishes a `progress` event for the batch.
    pub async fn send_progress(&self, batch_id: &str) {
        let Ok(batch) = self.inner.store.get_batch(batch_id).await else {
            return;
        };
        let remaining = batch.counts.pending + batch.counts.processing;
        let rate = self.inner.hub.rate(batch_id, remaining);
        let mut body = hub::progress_body(
            &batch,
            rate,
            self.inner.engines.concurrency(&batch.engine),
            self.prices(),
        );
        body["type"] = json!("progress");
        body["seq"] = json!(batch.last_seq);
        body["batch_id"] = json!(batch_id);
        self.inner.hub.publish(batch_id, body);
    }
}

/// Hex SHA-256 of a compiled prompt as a model receives it: system text,
/// user text and JSON Schema.
fn prompt_sha256(prompt: &CompiledPrompt, images: usize) -> String {
    use sha2::Digest;
    let p = &prompt.prompt;
    let sent =
        json!({"system": p.system, "user": p.user_for(images), "json_schema": p.json_schema});
    let digest = sha2::Sha256::digest(sent.to_string().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// What an engine call says about the server's load.
fn load_signal(result: &Result<Extraction, EngineError>) -> Signal {
    match result {
        Ok(_) | Err(EngineError::BadAnswer { .. }) => Signal::Served,
        Err(e) if e.unavailable().is_some_and(Unavailable::overloaded) => Signal::Overloaded,
        Err(_) => Signal::Other,
    }
}
