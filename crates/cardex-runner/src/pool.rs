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

#[cfg(test)]
use cardex_engine::CheckFailed;
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
    /// Whether a probe task is out for it (never two).
    probing: bool,
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
        let shared = servers.len() > 1;
        let endpoints = servers
            .into_iter()
            .map(|engine| {
                let limiter = Limiter::sharing(
                    engine.name(),
                    engine.endpoint(),
                    fixed,
                    max,
                    (freed.clone(), shared),
                );
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
    /// most free room, other than those in `avoid` (the ones that just
    /// failed this card) while another is in use. Returns the server's
    /// index.
    pub async fn acquire(&self, avoid: &[usize]) -> (usize, Permit) {
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
            // Every release of a shared pool wakes every waiter, so room
            // on any server is seen by one that can use it.
            freed.await;
        }
    }

    fn try_acquire(&self, avoid: &[usize]) -> Option<(usize, Permit)> {
        let mut candidates: Vec<usize> = (0..self.endpoints.len())
            .filter(|&i| self.endpoints[i].is_up())
            .collect();
        if candidates.iter().any(|i| !avoid.contains(i)) {
            candidates.retain(|i| !avoid.contains(i));
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
            endpoint.log("a model server set aside answers again and is used");
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
        let probe = {
            let mut health = endpoint.health();
            if health.aside.is_some() {
                return;
            }
            health.aside = Some((Instant::now(), why.clone()));
            !std::mem::replace(&mut health.probing, true)
        };
        endpoint.log(&format!("a model server stopped answering and is set aside; its cards go to the others, and it is probed until it answers: {why}"));
        if probe {
            let pool = self.clone();
            tokio::spawn(async move { pool.probe(at).await });
        }
    }

    /// Probes server `at`, set aside, with backoff until it answers: any
    /// HTTP answer under 500 counts (a server whose `/models` a proxy
    /// hides is still there; its cards will tell).
    async fn probe(self: Arc<Self>, at: usize) {
        let endpoint = &self.endpoints[at];
        let mut wait = endpoint.health().backoff.max(FIRST_PROBE_WAIT);
        loop {
            tokio::time::sleep(wait).await;
            let answered = match endpoint.engine.check().await {
                Ok(()) => true,
                Err(e) => {
                    tracing::debug!(server = endpoint.engine.endpoint().unwrap_or("-"), error = %e.message, ?wait, "a model server set aside was probed");
                    e.answered
                }
            };
            let next = (wait * 2).min(LAST_PROBE_WAIT);
            let mut health = endpoint.health();
            if health.aside.is_none() {
                // An answer to a card brought it back meanwhile.
                health.probing = false;
                return;
            }
            if answered {
                health.streak = 0;
                // Kept until a card's answer: if it fails again soon, its
                // probes start later.
                health.backoff = next;
                health.aside = None;
                health.probing = false;
                drop(health);
                endpoint.log("a model server set aside answers again and is used");
                self.freed.notify_waiters();
                return;
            }
            wait = next;
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

    /// Logs `what` happened to the server, with its figures.
    fn log(&self, what: &str) {
        tracing::warn!(
            engine = self.engine.name(),
            server = self.engine.endpoint().unwrap_or("-"),
            limit = self.limiter.limit(),
            completions = self.completions.load(Ordering::Relaxed),
            errors = self.errors.load(Ordering::Relaxed),
            "{what}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cardex_engine::{CompiledPrompt, PreparedImage};
    use futures_util::future::BoxFuture;
    use std::sync::atomic::AtomicBool;

    /// A server whose health check answers while `answers` is set, with
    /// 404 while `hides_models` is (a proxy in front of it).
    #[derive(Debug)]
    struct Fake {
        url: String,
        answers: AtomicBool,
        hides_models: AtomicBool,
    }

    impl Engine for Fake {
        fn name(&self) -> &str {
            "vlm"
        }
        fn extract<'a>(
            &'a self,
            _: &'a [PreparedImage],
            _: &'a CompiledPrompt,
        ) -> BoxFuture<'a, Result<Extraction, EngineError>> {
            unreachable!("the pool's tests send no card")
        }
        fn endpoint(&self) -> Option<&str> {
            Some(&self.url)
        }
        fn check(&self) -> BoxFuture<'_, Result<(), CheckFailed>> {
            let up = self.answers.load(Ordering::Relaxed);
            let hides = self.hides_models.load(Ordering::Relaxed);
            Box::pin(async move {
                match (up, hides) {
                    (true, false) => Ok(()),
                    (true, true) => Err(CheckFailed {
                        message: "404".into(),
                        answered: true,
                    }),
                    (false, _) => Err(CheckFailed {
                        message: "refused".into(),
                        answered: false,
                    }),
                }
            })
        }
    }

    fn fakes(n: usize) -> Vec<Arc<Fake>> {
        (0..n)
            .map(|i| {
                Arc::new(Fake {
                    url: format!("http://server-{i}/v1"),
                    answers: AtomicBool::new(false),
                    hides_models: AtomicBool::new(false),
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
            let (at, permit) = pool.acquire(&[]).await;
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
            async move { pool.acquire(&[]).await.0 }
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
            assert_eq!(pool.acquire(&[]).await.0, 1);
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
        let (first, _p) = pool.acquire(&[]).await;
        let (second, _q) = pool.acquire(&[]).await;
        assert_ne!(first, second);
        // An answer brings a server back without waiting for its probe.
        pool.record(first, &Ok(Extraction::of(Default::default())));
        assert!(!aside(&pool)[first]);
    }

    #[tokio::test]
    async fn a_single_server_is_never_set_aside_nor_rerouted_from() {
        let servers = fakes(1);
        let pool = Pool::single(servers[0].clone(), Limiter::fixed("vlm", 2));
        assert!(!pool.record(0, &failed(Unavailable::Unreachable)));
        assert_eq!(aside(&pool), [false]);
        assert_eq!(pool.acquire(&[0]).await.0, 0);
    }

    #[tokio::test]
    async fn the_card_that_failed_avoids_its_server_while_another_is_in_use() {
        let pool = pool_of(&fakes(2), 4);
        let held = pool.acquire(&[]).await; // server 0 has less room now…
        assert_eq!(held.0, 0);
        // …yet the card that failed on server 1 is not sent back there.
        assert_eq!(pool.acquire(&[1]).await.0, 0);
    }

    /// Waits (in paused time) until server `at` is back, or `within`.
    async fn back_within(pool: &Pool, at: usize, within: Duration) -> Option<Duration> {
        let started = tokio::time::Instant::now();
        while aside(pool)[at] {
            if started.elapsed() > within {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Some(started.elapsed())
    }

    #[tokio::test(start_paused = true)]
    async fn a_server_set_aside_is_probed_with_backoff_until_it_answers() {
        let servers = fakes(2);
        let pool = pool_of(&servers, 2);
        pool.record(0, &failed(Unavailable::Unreachable));
        // Probes at 1, 3, 7, 15, 23 s …: refused for the first 20 s.
        tokio::time::sleep(Duration::from_secs(20)).await;
        assert_eq!(aside(&pool), [true, false]);
        servers[0].answers.store(true, Ordering::Relaxed);
        let back = back_within(&pool, 0, LAST_PROBE_WAIT * 2).await.unwrap();
        assert!(back <= LAST_PROBE_WAIT, "{back:?}");
        assert_eq!(pool.engine().endpoint(), Some("http://server-0/v1"));

        // Set aside again soon after: its probes start later than 1 s.
        pool.record(0, &failed(Unavailable::Unreachable));
        assert!(back_within(&pool, 0, FIRST_PROBE_WAIT).await.is_none());
        assert!(back_within(&pool, 0, LAST_PROBE_WAIT).await.is_some());
        // A card's answer clears that.
        pool.record(0, &Ok(Extraction::of(Default::default())));
        pool.record(0, &failed(Unavailable::Unreachable));
        let quick = back_within(&pool, 0, LAST_PROBE_WAIT).await.unwrap();
        assert!(
            quick <= FIRST_PROBE_WAIT + Duration::from_millis(100),
            "{quick:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_server_that_hides_its_model_list_still_comes_back() {
        let servers = fakes(2);
        servers[0].answers.store(true, Ordering::Relaxed);
        servers[0].hides_models.store(true, Ordering::Relaxed);
        let pool = pool_of(&servers, 2);
        pool.record(0, &failed(Unavailable::Unreachable));
        assert!(back_within(&pool, 0, FIRST_PROBE_WAIT * 2).await.is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn one_probe_at_a_time() {
        let servers = fakes(2);
        let pool = pool_of(&servers, 2);
        for _ in 0..5 {
            pool.record(0, &failed(Unavailable::Unreachable));
            pool.record(0, &Ok(Extraction::of(Default::default())));
        }
        pool.record(0, &failed(Unavailable::Unreachable));
        assert!(pool.endpoints[0].health().probing);
        // Six set-asides in a row started one probe, still out a minute on.
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(pool.endpoints[0].health().probing);
        assert_eq!(Arc::strong_count(&pool), 2, "the test's and one probe's");
    }
}
