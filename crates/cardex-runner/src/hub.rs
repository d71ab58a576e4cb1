//! The progress hub: one broadcast channel per batch, and the moving window
//! of completions that gives `progress` events their rate and ETA.
//!
//! Publishing never waits: a watcher that falls more than the channel's
//! capacity behind is told to `reset` and reconnect with `since`, so a slow
//! client never slows the runner.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::broadcast;

/// Events a watcher may fall behind before it is reset.
pub const CHANNEL_CAPACITY: usize = 1024;
/// At most this many `progress` events a second per batch.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(250);
/// Completions older than this do not count towards the rate.
const WINDOW: Duration = Duration::from_secs(60);
/// Completions kept for the rate, at most.
const WINDOW_CARDS: usize = 200;

/// Shared per-batch channels and rate windows.
#[derive(Debug, Clone, Default)]
pub struct Hub {
    inner: Arc<Mutex<HashMap<String, BatchChannel>>>,
}

/// An event as the watchers get it: its JSON, to filter on, and its text,
/// serialised once for all of them.
#[derive(Debug)]
pub struct Published {
    /// The event.
    pub event: Value,
    /// The event as JSON text (always valid UTF-8).
    pub text: Bytes,
}

#[derive(Debug)]
struct BatchChannel {
    tx: broadcast::Sender<Arc<Published>>,
    completions: VecDeque<Instant>,
    last_progress: Option<Instant>,
}

impl BatchChannel {
    fn new() -> Self {
        Self {
            tx: broadcast::channel(CHANNEL_CAPACITY).0,
            completions: VecDeque::new(),
            last_progress: None,
        }
    }
}

/// Rate and ETA from the moving window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Cards finished per minute, recently.
    pub cards_per_minute: f64,
    /// Seconds until the rest is done at that rate, if known.
    pub eta_seconds: Option<f64>,
}

impl Hub {
    /// Receives every event published for `batch_id` from now on.
    pub fn subscribe(&self, batch_id: &str) -> broadcast::Receiver<Arc<Published>> {
        let mut map = self.inner.lock().expect("hub lock poisoned");
        map.entry(batch_id.to_owned())
            .or_insert_with(BatchChannel::new)
            .tx
            .subscribe()
    }

    /// Sends an event to the batch's watchers, if any; never waits.
    pub fn publish(&self, batch_id: &str, event: Value) {
        let tx = {
            let map = self.inner.lock().expect("hub lock poisoned");
            match map.get(batch_id) {
                Some(ch) if ch.tx.receiver_count() > 0 => ch.tx.clone(),
                _ => return,
            }
        };
        let text = Bytes::from(event.to_string());
        let _ = tx.send(Arc::new(Published { event, text }));
    }

    /// Records a finished card; returns true when a `progress` event is due.
    pub fn record_completion(&self, batch_id: &str) -> bool {
        let now = Instant::now();
        let mut map = self.inner.lock().expect("hub lock poisoned");
        let ch = map
            .entry(batch_id.to_owned())
            .or_insert_with(BatchChannel::new);
        ch.completions.push_back(now);
        while ch.completions.len() > WINDOW_CARDS
            || ch.completions.front().is_some_and(|t| now - *t > WINDOW)
        {
            ch.completions.pop_front();
        }
        let due = ch
            .last_progress
            .is_none_or(|t| now - t >= PROGRESS_INTERVAL);
        if due {
            ch.last_progress = Some(now);
        }
        due
    }

    /// The recent rate of a batch and the ETA for `remaining` cards.
    pub fn rate(&self, batch_id: &str, remaining: u64) -> Rate {
        let map = self.inner.lock().expect("hub lock poisoned");
        let window = map.get(batch_id).map(|c| &c.completions);
        let per_second = match window {
            Some(w) if w.len() >= 2 => {
                let span =
                    (*w.back().expect("len >= 2") - *w.front().expect("len >= 2")).as_secs_f64();
                (span > 0.0).then(|| (w.len() - 1) as f64 / span)
            }
            _ => None,
        };
        Rate {
            cards_per_minute: per_second.map_or(0.0, |r| (r * 600.0).round() / 10.0),
            eta_seconds: per_second.map(|r| (remaining as f64 / r).round()),
        }
    }

    /// Forgets a deleted batch.
    pub fn remove(&self, batch_id: &str) {
        self.inner
            .lock()
            .expect("hub lock poisoned")
            .remove(batch_id);
    }
}

/// The `progress`/`snapshot` body for a batch.
pub fn progress_body(
    batch: &cardex_store::Batch,
    rate: Rate,
    concurrency: Option<usize>,
    prices: Option<&cardex_core::Prices>,
) -> Value {
    let c = &batch.counts;
    let finished = c.done + c.failed;
    let position = if finished >= c.total {
        c.total
    } else {
        finished + 1
    };
    json!({
        "state": batch.state,
        "done": c.done,
        "failed": c.failed,
        "total": c.total,
        "percent": batch.percent,
        "position": format!("file {position} of {}", c.total),
        "eta_seconds": rate.eta_seconds,
        "cards_per_minute": rate.cards_per_minute,
        "concurrency": concurrency,
        "usage": usage_body(&batch.usage, crate::runner::batch_cost(batch, prices)),
    })
}

/// A batch's usage as the API and the progress stream give it.
pub fn usage_body(usage: &cardex_core::Usage, cost: Option<f64>) -> Value {
    json!({
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "cached_tokens": usage.cached_tokens,
        "requests": usage.requests,
        "ms": usage.ms,
        "cost": cost,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_comes_from_recent_completions() {
        let hub = Hub::default();
        assert_eq!(hub.rate("b", 10).eta_seconds, None);
        hub.record_completion("b");
        std::thread::sleep(Duration::from_millis(50));
        hub.record_completion("b");
        let r = hub.rate("b", 10);
        assert!(r.cards_per_minute > 100.0, "{r:?}");
        assert!(r.eta_seconds.unwrap() < 5.0, "{r:?}");
    }

    #[test]
    fn progress_is_throttled() {
        let hub = Hub::default();
        assert!(hub.record_completion("b"));
        assert!(!hub.record_completion("b"));
        std::thread::sleep(PROGRESS_INTERVAL);
        assert!(hub.record_completion("b"));
    }

    #[test]
    fn lagging_watchers_are_detected_not_waited_for() {
        let hub = Hub::default();
        let mut rx = hub.subscribe("b");
        for i in 0..CHANNEL_CAPACITY + 10 {
            hub.publish("b", json!({"i": i}));
        }
        assert!(matches!(
            rx.try_recv(),
            Err(broadcast::error::TryRecvError::Lagged(_))
        ));
    }
}
