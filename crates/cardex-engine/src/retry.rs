//! Retrying an engine call: exponential backoff with jitter for transient
//! errors, honouring the server's `Retry-After`; a short fixed pause before
//! asking again after an unusable answer.

use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};

use crate::answer::CompiledPrompt;
use crate::engine::{Engine, EngineError, Extraction};
use crate::prepare::PreparedImage;
use cardex_core::Usage;

/// How hard to try one card.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// Wait before the second attempt; doubles each time.
    pub first_delay: Duration,
    /// Longest wait between attempts (a `Retry-After` may ask for more).
    pub max_delay: Duration,
    /// Longest wait a server's `Retry-After` is granted.
    pub max_server_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            first_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_server_wait: crate::vlm::MAX_RETRY_AFTER,
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
    /// What every attempt cost together: tokens of the answers (usable or
    /// not), requests, engine time.
    pub usage: Usage,
}

/// Calls `engine` until it succeeds, fails for good, or attempts run out.
pub async fn extract_with_retries(
    engine: &dyn Engine,
    images: &[PreparedImage],
    prompt: &CompiledPrompt,
    policy: &RetryPolicy,
) -> Attempted {
    retry_attempts(policy, || engine.extract(images, prompt)).await
}

/// Runs `attempt` until it succeeds, fails for good, or attempts run out.
///
/// Each attempt is its own future, so a caller can hold a concurrency
/// permit for the request alone and not through the waits between tries.
pub async fn retry_attempts<F, Fut>(policy: &RetryPolicy, attempt: F) -> Attempted
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<Extraction, EngineError>>,
{
    let attempts = AtomicU32::new(0);
    let last_answer = Mutex::new(None);
    let spent = Mutex::new(Usage::default());
    let backoff = ExponentialBuilder::default()
        .with_min_delay(policy.first_delay)
        .with_max_delay(policy.max_delay)
        .with_max_times(policy.max_attempts.saturating_sub(1) as usize)
        .with_jitter();
    let result = (|| async {
        attempts.fetch_add(1, Ordering::Relaxed);
        let result = attempt().await;
        let usage = match &result {
            Ok(x) => Usage {
                requests: x.usage.requests.max(1),
                ..x.usage
            },
            Err(e) => e.usage(),
        };
        spent.lock().expect("lock poisoned").add(&usage);
        if let Err(EngineError::BadAnswer { raw, .. }) = &result {
            *last_answer.lock().expect("lock poisoned") = Some(raw.clone());
        }
        result
    })
    .retry(backoff)
    .when(EngineError::is_retryable)
    // Backing off is for a busy server. An unusable answer says nothing
    // about load, so it is retried after the short first delay.
    .adjust(|err, planned| match err {
        EngineError::Transient {
            retry_after: Some(wait),
            ..
        } => planned.map(|_| (*wait).min(policy.max_server_wait)),
        EngineError::BadAnswer { .. } => planned.map(|_| policy.first_delay),
        _ => planned,
    })
    .notify(|err, wait| tracing::debug!(error = %err, ?wait, "engine attempt failed; retrying"))
    .await;
    Attempted {
        result,
        attempts: attempts.load(Ordering::Relaxed),
        last_answer: last_answer.into_inner().expect("lock poisoned"),
        usage: spent.into_inner().expect("lock poisoned"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Extraction;
    use futures_util::future::BoxFuture;
    use std::sync::Mutex as StdMutex;
    use std::time::Instant;

    /// Fails with the queued errors, then succeeds.
    #[derive(Debug)]
    struct Scripted(StdMutex<Vec<EngineError>>);

    impl Engine for Scripted {
        fn name(&self) -> &str {
            "scripted"
        }
        fn extract<'a>(
            &'a self,
            _: &'a [PreparedImage],
            _: &'a CompiledPrompt,
        ) -> BoxFuture<'a, Result<Extraction, EngineError>> {
            let next = self.0.lock().unwrap().pop();
            Box::pin(async move {
                match next {
                    Some(e) => Err(e),
                    None => Ok(Extraction::of(Default::default())),
                }
            })
        }
    }

    fn inputs() -> (PreparedImage, CompiledPrompt) {
        let image = PreparedImage {
            bytes: vec![],
            mime: "image/jpeg",
            width: 1,
            height: 1,
            passthrough: true,
        };
        let prompt = CompiledPrompt::new(&[]).unwrap();
        (image, prompt)
    }

    fn transient(retry_after: Option<Duration>) -> EngineError {
        EngineError::Transient {
            message: "busy".into(),
            retry_after,
            cause: crate::engine::Unavailable::Busy,
        }
    }

    fn bad() -> EngineError {
        EngineError::BadAnswer {
            message: "no json".into(),
            raw: "sorry".into(),
            usage: cardex_core::Usage {
                prompt_tokens: 10,
                completion_tokens: 2,
                total_tokens: 12,
                ..Default::default()
            },
        }
    }

    const POLICY: RetryPolicy = RetryPolicy {
        max_attempts: 4,
        first_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(40),
        max_server_wait: Duration::from_secs(1),
    };

    #[tokio::test]
    async fn transient_errors_and_bad_answers_are_retried() {
        let (image, prompt) = inputs();
        let engine = Scripted(StdMutex::new(vec![bad(), transient(None), transient(None)]));
        let a = extract_with_retries(&engine, std::slice::from_ref(&image), &prompt, &POLICY).await;
        assert!(a.result.is_ok());
        assert_eq!(a.attempts, 4);
        assert_eq!(a.last_answer.as_deref(), Some("sorry"));
        // Every request counts, and the unusable answer's tokens too.
        assert_eq!(a.usage.requests, 4);
        assert_eq!(a.usage.total_tokens, 12);
    }

    #[tokio::test]
    async fn attempts_are_bounded_and_permanent_errors_not_retried() {
        let (image, prompt) = inputs();
        let engine = Scripted(StdMutex::new(vec![bad(); 10]));
        let a = extract_with_retries(&engine, std::slice::from_ref(&image), &prompt, &POLICY).await;
        assert!(matches!(a.result, Err(EngineError::BadAnswer { .. })));
        assert_eq!(a.attempts, 4);
        let engine = Scripted(StdMutex::new(vec![EngineError::Config {
            message: "401".into(),
        }]));
        let a = extract_with_retries(&engine, std::slice::from_ref(&image), &prompt, &POLICY).await;
        assert!(matches!(a.result, Err(EngineError::Config { .. })));
        assert_eq!(a.attempts, 1);
    }

    #[tokio::test]
    async fn a_retry_after_longer_than_allowed_is_cut_to_the_most_allowed() {
        let (image, prompt) = inputs();
        let engine = Scripted(StdMutex::new(vec![transient(Some(Duration::from_secs(
            3600,
        )))]));
        let started = Instant::now();
        let a = extract_with_retries(&engine, std::slice::from_ref(&image), &prompt, &POLICY).await;
        assert!(a.result.is_ok());
        let took = started.elapsed();
        assert!(
            took >= POLICY.max_server_wait && took < Duration::from_secs(3),
            "{took:?}"
        );
    }

    #[tokio::test]
    async fn retry_after_is_honoured() {
        let (image, prompt) = inputs();
        let engine = Scripted(StdMutex::new(vec![transient(Some(Duration::from_millis(
            300,
        )))]));
        let started = Instant::now();
        let a = extract_with_retries(&engine, std::slice::from_ref(&image), &prompt, &POLICY).await;
        assert!(a.result.is_ok());
        assert!(
            started.elapsed() >= Duration::from_millis(300),
            "{:?}",
            started.elapsed()
        );
    }
}
