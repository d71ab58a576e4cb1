//! Retrying an engine call: exponential backoff with jitter, honouring the
//! server's `Retry-After`, for transient errors and unusable answers.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};

use crate::answer::CompiledPrompt;
use crate::engine::{Engine, EngineError, Extraction};
use crate::prepare::PreparedImage;

/// How hard to try one card.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// Wait before the second attempt; doubles each time.
    pub first_delay: Duration,
    /// Longest wait between attempts (a `Retry-After` may ask for more).
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            first_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

/// The outcome of all attempts at one card.
#[derive(Debug)]
pub struct Attempted {
    /// The extraction, or the last error.
    pub result: Result<Extraction, EngineError>,
    /// How many attempts were made.
    pub attempts: u32,
    /// The last unusable answer seen in any attempt, even when a later
    /// attempt failed differently (so a quarantined card keeps it).
    pub last_answer: Option<String>,
}

/// Calls `engine` until it succeeds, fails for good, or attempts run out.
pub async fn extract_with_retries(
    engine: &dyn Engine,
    image: &PreparedImage,
    prompt: &CompiledPrompt,
    policy: &RetryPolicy,
) -> Attempted {
    let attempts = AtomicU32::new(0);
    let last_answer = Mutex::new(None);
    let backoff = ExponentialBuilder::default()
        .with_min_delay(policy.first_delay)
        .with_max_delay(policy.max_delay)
        .with_max_times(policy.max_attempts.saturating_sub(1) as usize)
        .with_jitter();
    let result = (|| async {
        attempts.fetch_add(1, Ordering::Relaxed);
        let result = engine.extract(image, prompt).await;
        if let Err(EngineError::BadAnswer { raw, .. }) = &result {
            *last_answer.lock().expect("lock poisoned") = Some(raw.clone());
        }
        result
    })
    .retry(backoff)
    .when(EngineError::is_retryable)
    .adjust(|err, planned| match err {
        EngineError::Transient {
            retry_after: Some(wait),
            ..
        } => planned.map(|_| *wait),
        _ => planned,
    })
    .notify(|err, wait| tracing::debug!(error = %err, ?wait, "engine attempt failed; retrying"))
    .await;
    Attempted {
        result,
        attempts: attempts.load(Ordering::Relaxed),
        last_answer: last_answer.into_inner().expect("lock poisoned"),
    }
}
