//! One engine's servers (DESIGN §15): replicas serving the same model, each
//! with its own request limit ([`Limiter`]) and health. A request goes to
//! the server with the most free room. A server that stops answering (a
//! refused connection at once, or [`STREAK`] failures in a row: 5xx,
//! timeouts, connections broken mid-answer) is set aside and probed with
//! backoff until it answers again; meanwhile its cards go to the others,
//! and a failure that sent a card elsewhere does not count against the
//! card's attempts. An engine with one server (the OCR engine, a VLM with
//! one `--vlm-url`) is a pool of one, which behaves as that server alone
//! did before there were pools: never set aside, its failures counted.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cardex_engine::{Engine, EngineError, Extraction, Unavailable};
use tokio::sync::Notify;

use crate::limit::{Limiter, Permit};

/// Failures in a row (5xx, timeouts, broken connections) that set a server
/// aside; a refused connection does at once.
pub const STREAK: u32 = 3;
/// The first wait before probing a server set aside; doubles while probes
/// fail, up to [`LAST_PROBE_WAIT`].
const FIRST_PROBE_WAIT: Duration = Duration::from_secs(1);
/// The longest wait between probes: a server back up is used again within
/// about this long.
const LAST_PROBE_WAIT: Duration = Duration::from_secs(8);
/// How often a request waiting for room looks again even when nothing
/// woke it (a wake-up taken by a waiter that could not use it).
const RECHECK: Duration = Duration::from_millis(100);

/// An engine's servers.
#[derive(Debug)]
pub struct Pool {
    endpoints: Vec<Endpoint>,
    /// Told when any server's permit is given back or a server comes back.
    freed: Arc<Notify>,
}

/// One server of a pool.
#[derive(Debug)]
struct Endpoint {
    engine: Arc<dyn Engine>,
    limiter: Arc<Limiter>,
    health: Mutex<Health>,
    completions: AtomicU64,
    errors: AtomicU64,
}

#[derive(Debug, Default)]
struct Health {
    /// Failures in a row that say the server is not answering.
    streak: u32,
    /// Since when and why the server is set aside, while it is.
    aside: Option<(Instant, String)>,
    /// The wait before the first probe next time the server is set aside:
    /// kept while it fails again soon after coming back, so a server that
    /// comes and goes is probed less often; cleared by an answer.
    backoff: Duration,
}

/// What a pool says about one of its servers, for `GET /api/engines`.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointStatus {
    /// Where requests go (the engine's endpoint; `None` for engines with
    /// no server).
    pub url: Option<String>,
    /// Requests allowed at once now.
    pub limit: usize,
    /// Requests out now.
    pub in_flight: usize,
    /// Cards read.
    pub completions: u64,
    /// Requests that failed (any reason).
    pub errors: u64,
    /// `None` while the server is used; else how long it has been set
    /// aside and why.
    pub set_aside: Option<(Duration, String)>,
}

impl Pool {
    /// A pool of one server.
    pub fn single(engine: Arc<dyn Engine>, limiter: Arc<Limiter>) -> Arc<Self> {
        let freed = limiter.freed().clone();
        Arc::new(Self {
            endpoints: vec![Endpoint::new(engine, limiter)],
            freed,
        })
    }

    /// A pool of `servers`, each with a limiter fixed at `fixed` requests
    /// or, without it, adaptive up to `max`.
    pub fn of(servers: Vec<Arc<dyn Engine>>, fixed: Option<usize>, max: usize) -> Arc<Self> {
        let freed = Arc::new(Notify::new());
        let endpoints = servers
            .into_iter()
            .map(|engine| {
                let name = match engine.endpoint() {
                    Some(url) => format!("{} {url}", engine.name()),
                    None => engine.name().to_owned(),
                };
                let limiter = Limiter::sharing(&name, fixed, max, freed.clone());
                Endpoint::new(engine, limiter)
            })
            .collect();
        Arc::new(Self { endpoints, freed })
    }

    /// The engine to use for one-off requests (a test card, an estimate):
    /// the first server in use.
    pub fn engine(&self) -> &Arc<dyn Engine> {
        let first = self.endpoints.iter().find(|e| e.is_up());
        &first.unwrap_or(&self.endpoints[0]).engine
    }

    /// How many servers.
    pub fn servers(&self) -> usize {
        self.endpoints.len()
    }

    /// Every server's engine.
    pub fn engines(&self) -> Vec<Arc<dyn Engine>> {
        self.endpoints.iter().map(|e| e.engine.clone()).collect()
    }

    /// Server `at`'s engine.
    pub fn engine_at(&self, at: usize) -> &Arc<dyn Engine> {
        &self.endpoints[at].engine
    }

    /// Requests allowed at once over the servers in use (over all of them
    /// while every one is set aside, as they are all still tried).
    pub fn limit(&self) -> usize {
        let up: usize = self.up().map(|e| e.limiter.limit()).sum();
        if up > 0 {
            up
        } else {
            self.endpoints.iter().map(|e| e.limiter.limit()).sum()
        }
    }

    /// Each server's figures.
    pub fn status(&self) -> Vec<EndpointStatus> {
        self.endpoints
            .iter()
            .map(|e| EndpointStatus {
                url: e.engine.endpoint().map(str::to_owned),
                limit: e.limiter.limit(),
                in_flight: e.limiter.in_flight(),
                completions: e.completions.load(Ordering::Relaxed),
                errors: e.errors.load(Ordering::Relaxed),
                set_aside: e
                    .health()
                    .aside
                    .as_ref()
                    .map(|(since, why)| (since.elapsed(), why.clone())),
            })
            .collect()
    }

    fn up(&self) -> impl Iterator<Item = &Endpoint> {
        self.endpoints.iter().filter(|e| e.is_up())
    }

    /// Waits for room on a server and takes it: the server in use with the
    /// most free room, other than `avoid` (the one that just failed this
    /// card) while another is in use. Returns the server's index.
    pub async fn acquire(&self, avoid: Option<usize>) -> (usize, Permit) {
        if let [only] = self.endpoints.as_slice() {
            return (0, only.limiter.acquire().await);
        }
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            // Registered before looking, so a release in between is seen.
            freed.as_mut().enable();
            if let Some(got) = self.try_acquire(avoid) {
                return got;
            }
            let _ = tokio::time::timeout(RECHECK, freed).await;
        }
    }

    fn try_acquire(&self, avoid: Option<usize>) -> Option<(usize, Permit)> {
        let mut candidates: Vec<usize> = (0..self.endpoints.len())
            .filter(|&i| self.endpoints[i].is_up())
            .collect();
        if candidates.iter().any(|&i| Some(i) != avoid) {
            candidates.retain(|&i| Some(i) != avoid);
        }
        if candidates.is_empty() {
            // Every server is set aside: each is still tried (and the card's
            // attempts count), as a single server would be.
            candidates = (0..self.endpoints.len()).collect();
        }
        candidates.sort_by_key(|&i| std::cmp::Reverse(self.endpoints[i].limiter.room()));
        candidates.into_iter().find_map(|i| {
            let permit = self.endpoints[i].limiter.try_acquire()?;
            Some((i, permit))
        })
    }

    /// Records how server `at` did with a request. Returns true when the
    /// failure was the server's (it is not answering) and another server is
    /// in use: the card should go there, without counting the attempt.
    pub fn record(self: &Arc<Self>, at: usize, result: &Result<Extraction, EngineError>) -> bool {
        let endpoint = &self.endpoints[at];
        let cause = match result {
            Ok(_) => {
                endpoint.completions.fetch_add(1, Ordering::Relaxed);
                self.answered(at);
                return false;
            }
            Err(e) => {
                endpoint.errors.fetch_add(1, Ordering::Relaxed);
                e.unavailable()
            }
        };
        let Some(cause) = cause.filter(|c| c.not_answering()) else {
            // An answer, if not a usable one: the server is there.
            self.answered(at);
            return false;
        };
        let streak = {
            let mut health = endpoint.health();
            health.streak += 1;
            health.streak
        };
        if cause == Unavailable::Unreachable || streak >= STREAK {
            let why = result.as_ref().err().map(ToString::to_string);
            self.set_aside(at, why.unwrap_or_default());
        }
        self.endpoints
            .iter()
            .enumerate()
            .any(|(i, e)| i != at && e.is_up())
    }

    /// What a health check of server `at` found (`GET /api/engines` asks
    /// each server): one that does not answer is set aside before a card
    /// finds out; one set aside that answers is used again.
    pub fn checked(self: &Arc<Self>, at: usize, result: &Result<(), String>) {
        match result {
            Ok(()) => self.answered(at),
            Err(e) => self.set_aside(at, e.clone()),
        }
    }

    /// Server `at` answered: its failures in a row end, and a server set
    /// aside (tried because every one was) is used again.
    fn answered(&self, at: usize) {
        let endpoint = &self.endpoints[at];
        let back = {
            let mut health = endpoint.health();
            health.streak = 0;
            health.backoff = Duration::ZERO;
            health.aside.take().is_some()
        };
        if back {
            endpoint.log_back();
            self.freed.notify_waiters();
        }
    }

    fn set_aside(self: &Arc<Self>, at: usize, why: String) {
        if self.endpoints.len() == 1 {
            // Nowhere else to send its cards: a server alone is always
            // used, and its failures count as they always have.
            return;
        }
        let endpoint = &self.endpoints[at];
        {
            let mut health = endpoint.health();
            if health.aside.is_some() {
                return;
            }
            health.aside = Some((Instant::now(), why.clone()));
        }
        let url = endpoint.engine.endpoint().unwrap_or("-");
        tracing::warn!(
            engine = endpoint.engine.name(),
            server = url,
            "a model server stopped answering and is set aside; its cards go to the others, and it is probed until it answers: {why}"
        );
        let pool = self.clone();
        tokio::spawn(async move { pool.probe(at).await });
    }

    /// Probes server `at`, set aside, with backoff until it answers.
    async fn probe(self: Arc<Self>, at: usize) {
        let endpoint = &self.endpoints[at];
        let mut wait = endpoint.health().backoff.max(FIRST_PROBE_WAIT);
        loop {
            tokio::time::sleep(wait).await;
            if endpoint.health().aside.is_none() {
                return; // an answer to a request brought it back
            }
            match endpoint.engine.check().await {
                Ok(()) => {
                    let back = {
                        let mut health = endpoint.health();
                        health.streak = 0;
                        // Kept: if it fails again soon, it waits longer.
                        health.backoff = wait;
                        health.aside.take().is_some()
                    };
                    if back {
                        endpoint.log_back();
                        self.freed.notify_waiters();
                    }
                    return;
                }
                Err(e) => {
                    tracing::debug!(server = endpoint.engine.endpoint().unwrap_or("-"), error = %e, ?wait, "a model server set aside still does not answer");
                    wait = (wait * 2).min(LAST_PROBE_WAIT);
                }
            }
        }
    }
}

impl Endpoint {
    fn new(engine: Arc<dyn Engine>, limiter: Arc<Limiter>) -> Self {
        Self {
            engine,
            limiter,
            health: Mutex::default(),
            completions: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        }
    }

    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health.lock().expect("lock poisoned")
    }

    fn is_up(&self) -> bool {
        self.health().aside.is_none()
    }

    fn log_back(&self) {
        tracing::info!(
            engine = self.engine.name(),
            server = self.engine.endpoint().unwrap_or("-"),
            "a model server set aside answers again and is used"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cardex_engine::{CompiledPrompt, PreparedImage};
    use futures_util::future::BoxFuture;
    use std::sync::atomic::AtomicBool;

    /// A server whose health check answers while `answers` is set.
    #[derive(Debug)]
    struct Fake {
        url: String,
        answers: AtomicBool,
    }

    impl Engine for Fake {
        fn name(&self) -> &str {
            "vlm"
        }
        fn extract<'a>(
            &'a self,
            _: &'a PreparedImage,
            _: &'a CompiledPrompt,
        ) -> BoxFuture<'a, Result<Extraction, EngineError>> {
            unreachable!("the pool's tests send no card")
        }
        fn endpoint(&self) -> Option<&str> {
            Some(&self.url)
        }
        fn check(&self) -> BoxFuture<'_, Result<(), String>> {
            let up = self.answers.load(Ordering::Relaxed);
            Box::pin(async move { if up { Ok(()) } else { Err("refused".into()) } })
        }
    }

    fn fakes(n: usize) -> Vec<Arc<Fake>> {
        (0..n)
            .map(|i| {
                Arc::new(Fake {
                    url: format!("http://server-{i}/v1"),
                    answers: AtomicBool::new(false),
                })
            })
            .collect()
    }

    fn pool_of(servers: &[Arc<Fake>], limit: usize) -> Arc<Pool> {
        let engines = servers
            .iter()
            .map(|f| f.clone() as Arc<dyn Engine>)
            .collect();
        Pool::of(engines, Some(limit), limit)
    }

    fn failed(cause: Unavailable) -> Result<Extraction, EngineError> {
        Err(EngineError::Transient {
            message: format!("{cause:?}"),
            retry_after: None,
            cause,
        })
    }

    fn aside(pool: &Pool) -> Vec<bool> {
        pool.status()
            .iter()
            .map(|s| s.set_aside.is_some())
            .collect()
    }

    #[tokio::test]
    async fn each_request_goes_to_the_server_with_most_room() {
        let pool = pool_of(&fakes(2), 3);
        let mut permits = Vec::new();
        let mut order = Vec::new();
        for _ in 0..6 {
            let (at, permit) = pool.acquire(None).await;
            order.push(at);
            permits.push(permit);
        }
        // Alternating as room evens out; each up to its limit.
        assert_eq!(order.iter().filter(|&&i| i == 0).count(), 3, "{order:?}");
        assert_eq!(pool.limit(), 6);
        let status = pool.status();
        assert_eq!((status[0].in_flight, status[1].in_flight), (3, 3));
        // Full: a waiter gets the first permit given back, wherever it is.
        let freed_on_1 = permits.remove(order.iter().position(|&i| i == 1).unwrap());
        let waiter = tokio::spawn({
            let pool = pool.clone();
            async move { pool.acquire(None).await.0 }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        drop(freed_on_1);
        assert_eq!(waiter.await.unwrap(), 1);
    }

    #[tokio::test]
    async fn a_refused_connection_sets_a_server_aside_at_once() {
        let pool = pool_of(&fakes(2), 4);
        assert!(pool.record(0, &failed(Unavailable::Unreachable)));
        assert_eq!(aside(&pool), [true, false]);
        assert_eq!(pool.limit(), 4, "only the server in use counts");
        for _ in 0..4 {
            assert_eq!(pool.acquire(None).await.0, 1);
        }
        let reason = pool.status()[0].set_aside.clone().unwrap().1;
        assert_eq!(reason, "Unreachable");
    }

    #[tokio::test]
    async fn a_streak_of_failures_sets_aside_and_a_busy_server_is_not() {
        let pool = pool_of(&fakes(2), 4);
        for _ in 0..10 {
            assert!(!pool.record(0, &failed(Unavailable::Busy)), "busy is load");
        }
        // Each failure sends the card to the other server.
        assert!(pool.record(0, &failed(Unavailable::Lost)));
        assert!(pool.record(0, &failed(Unavailable::Failed)));
        assert_eq!(aside(&pool), [false, false]);
        // An answer in between ends the streak.
        pool.record(0, &Ok(Extraction::of(Default::default())));
        assert!(pool.record(0, &failed(Unavailable::TimedOut)));
        assert!(pool.record(0, &failed(Unavailable::Lost)));
        assert_eq!(aside(&pool), [false, false]);
        assert!(pool.record(0, &failed(Unavailable::Lost)));
        assert_eq!(aside(&pool), [true, false]);
        let status = &pool.status()[0];
        assert_eq!((status.completions, status.errors), (1, 15));
        // With the other one gone too, nothing is left to send cards to.
        assert!(!pool.record(1, &failed(Unavailable::Unreachable)));
        assert_eq!(aside(&pool), [true, true]);
    }

    #[tokio::test]
    async fn while_every_server_is_aside_each_is_still_tried() {
        let pool = pool_of(&fakes(2), 1);
        pool.record(0, &failed(Unavailable::Unreachable));
        pool.record(1, &failed(Unavailable::Unreachable));
        assert_eq!(pool.limit(), 2);
        let (first, _p) = pool.acquire(None).await;
        let (second, _q) = pool.acquire(None).await;
        assert_ne!(first, second);
        // An answer brings a server back without waiting for its probe.
        pool.record(first, &Ok(Extraction::of(Default::default())));
        assert!(!aside(&pool)[first]);
    }

    #[tokio::test]
    async fn a_health_check_sets_aside_and_brings_back() {
        let pool = pool_of(&fakes(2), 2);
        pool.checked(1, &Err("could not connect".into()));
        assert_eq!(aside(&pool), [false, true]);
        assert_eq!(
            pool.status()[1].set_aside.clone().unwrap().1,
            "could not connect"
        );
        pool.checked(1, &Ok(()));
        assert_eq!(aside(&pool), [false, false]);
    }

    #[tokio::test]
    async fn a_single_server_is_never_set_aside_nor_rerouted_from() {
        let servers = fakes(1);
        let pool = Pool::single(servers[0].clone(), Limiter::fixed("vlm", 2));
        assert!(!pool.record(0, &failed(Unavailable::Unreachable)));
        pool.checked(0, &Err("refused".into()));
        assert_eq!(aside(&pool), [false]);
        assert_eq!(pool.acquire(Some(0)).await.0, 0);
    }

    #[tokio::test]
    async fn the_card_that_failed_avoids_its_server_while_another_is_in_use() {
        let pool = pool_of(&fakes(2), 4);
        let held = pool.acquire(None).await; // server 0 has less room now…
        assert_eq!(held.0, 0);
        // …yet the card that failed on server 1 is not sent back there.
        assert_eq!(pool.acquire(Some(1)).await.0, 0);
    }

    #[tokio::test]
    async fn a_server_set_aside_is_probed_until_it_answers() {
        let servers = fakes(2);
        let pool = pool_of(&servers, 2);
        pool.record(0, &failed(Unavailable::Unreachable));
        tokio::time::sleep(FIRST_PROBE_WAIT + Duration::from_millis(300)).await;
        assert_eq!(aside(&pool), [true, false], "the first probe was refused");
        servers[0].answers.store(true, Ordering::Relaxed);
        // The next probe comes after twice the first wait.
        let deadline = Instant::now() + FIRST_PROBE_WAIT * 3;
        while aside(&pool)[0] {
            assert!(Instant::now() < deadline, "not probed again in time");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(pool.engine().endpoint(), Some("http://server-0/v1"));
    }
}
