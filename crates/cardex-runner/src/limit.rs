//! How many requests an engine gets at once: a fixed number, or one found
//! by climbing on measured throughput.
//!
//! The adaptive control starts like TCP's slow start: while answers come
//! back as fast as the first ones did, each answer lets [`RAMP_FACTOR`]
//! requests go out in its place, so the limit grows that many times per
//! round trip, not per window. The first answer that takes twice as long
//! as the fastest (requests are queueing) ends it: the limit becomes the
//! best rate answers came at while one was out, times the time of an
//! answer that did not queue (the server's bandwidth-delay product, as
//! BBR estimates it), and from there the climb below takes over. A 429
//! ends it too.
//!
//! The climb measures completed requests per second over windows of about
//! two limits' worth of completions. It doubles the limit
//! while doubling pays (≥ 10% more throughput), then settles and probes a
//! step up and a step down now and then: up is kept when it brings more
//! throughput, down when it costs none. Latency alone would mislead: a
//! continuous-batching server (vLLM) answers each request more slowly as it
//! gets busier while its total throughput still rises, so latency is only
//! a reason to step down when throughput does not fall with it. A 429, a
//! 503 or a timeout cuts the limit by a quarter at once.
//!
//! [`Control`] is a plain state machine fed with times, so it is tested
//! against simulated servers without a clock; [`Limiter`] wraps it as an
//! async permit pool for the runner.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// The limit an adaptive engine starts with.
pub const INITIAL_LIMIT: usize = 16;
/// How many requests each answer of the start lets go out in its place.
pub const RAMP_FACTOR: usize = 8;
/// An answer this many times slower than the fastest ends the start.
const RAMP_EXIT: f64 = 2.0;
/// The highest limit an adaptive engine may reach unless configured.
pub const DEFAULT_MAX_LIMIT: usize = 256;

/// Gain from doubling the limit that is worth the extra latency.
const DOUBLING_GAIN: f64 = 0.10;
/// Gain from a step up that is worth keeping.
const STEP_GAIN: f64 = 0.03;
/// Loss from a step down that still counts as none (measurement noise).
const STEP_LOSS: f64 = 0.01;
/// Fewest completions in a measurement window.
const MIN_WINDOW: usize = 24;
/// Windows to hold a settled limit before the first probe; doubles after
/// each probe that changes nothing, so a settled limit is rarely disturbed.
const FIRST_HOLD: u32 = 2;
const MAX_HOLD: u32 = 32;
/// Windows a refusal keeps probes below the limit that caused it.
const CEILING_WINDOWS: u32 = 64;

/// What a finished request says about the server's load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// An answer came back (good or bad, it was served).
    Served,
    /// The server is overloaded: 429, 503, a timeout.
    Overloaded,
    /// Nothing about load (a connection error, a 500): no sample.
    Other,
}

/// Throughput measured at one limit.
#[derive(Debug, Clone, Copy)]
struct Measure {
    limit: usize,
    per_second: f64,
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    /// The start: growing with every answer while answers stay fast.
    Starting,
    /// Doubling, window by window.
    Growing,
    /// At a settled limit; the next probe goes `up` or down.
    Holding {
        windows_left: u32,
        hold: u32,
        up: bool,
    },
    /// Trying `base ± step`, to keep or go back from.
    Probing { up: bool, hold: u32 },
}

/// The adaptive state machine.
#[derive(Debug)]
pub struct Control {
    limit: usize,
    max: usize,
    /// A configured limit: counted, never changed.
    fixed: bool,
    phase: Phase,
    /// Throughput at the settled limit (or the last doubling).
    base: Option<Measure>,
    /// Bumped at each change; requests sent before it say nothing about
    /// the new limit.
    generation: u64,
    /// The limit at which the server last refused, less one: probes stay
    /// under it for a while.
    ceiling: Option<(usize, u32)>,
    /// Requests out now.
    in_flight: usize,
    /// Requests of earlier generations still out; the next window opens
    /// when none are left.
    stale: usize,
    window: Option<Window>,
    /// The fastest answer yet, in seconds.
    fastest: Option<f64>,
    /// When the latest answers came, for the start's rate.
    answered: std::collections::VecDeque<Instant>,
    /// What the start has measured.
    ramp: Ramp,
}

/// What the start measures: the best rate answers came at, and the time
/// of the answers that came back fast (not queued).
#[derive(Debug, Default)]
struct Ramp {
    best_rate: f64,
    fast_sum: f64,
    fast: usize,
    /// Fast answers since the limit reached the top.
    at_top: usize,
}

/// Measurements since a window opened. Throughput is taken from Little's
/// law, mean requests in flight over mean latency: it needs no whole
/// number of server rounds in the window, so requests that finish in
/// waves do not make it jump.
#[derive(Debug)]
struct Window {
    start: Instant,
    last: Instant,
    /// Requests in flight integrated over time (request·seconds).
    load: f64,
    completions: usize,
    latency_sum: f64,
}

impl Window {
    fn open(now: Instant) -> Self {
        Self {
            start: now,
            last: now,
            load: 0.0,
            completions: 0,
            latency_sum: 0.0,
        }
    }
}

impl Control {
    /// Starts at `initial`, never above `max`.
    pub fn new(initial: usize, max: usize) -> Self {
        let max = max.max(1);
        Self {
            limit: initial.clamp(1, max),
            max,
            fixed: false,
            phase: Phase::Starting,
            base: None,
            generation: 0,
            ceiling: None,
            in_flight: 0,
            stale: 0,
            window: None,
            fastest: None,
            answered: std::collections::VecDeque::new(),
            ramp: Ramp::default(),
        }
    }

    /// Always `n`.
    pub fn fixed(n: usize) -> Self {
        Self {
            fixed: true,
            ..Self::new(n, n)
        }
    }

    /// Whether a request may be sent now.
    pub fn has_room(&self) -> bool {
        self.in_flight < self.limit
    }

    /// The current limit.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// A request is sent now; returns its generation, for [`Self::record`].
    pub fn sent(&mut self, now: Instant) -> u64 {
        self.advance(now);
        self.in_flight += 1;
        if self.window.is_none() && self.stale == 0 {
            self.window = Some(Window::open(now));
        }
        self.generation
    }

    /// A request sent in generation `sent` ended after `latency` with
    /// `signal`. Returns the new limit if it changed.
    pub fn record(
        &mut self,
        now: Instant,
        signal: Signal,
        sent: u64,
        latency: Duration,
    ) -> Option<usize> {
        self.advance(now);
        self.in_flight = self.in_flight.saturating_sub(1);
        if self.fixed {
            return None;
        }
        // Requests sent under an earlier limit say nothing about this one,
        // and one cut per round of requests is enough.
        if sent != self.generation {
            self.stale = self.stale.saturating_sub(1);
            if self.stale == 0 {
                self.window = Some(Window::open(now));
            }
            return None;
        }
        match signal {
            Signal::Other => None,
            Signal::Overloaded => self.overloaded(now),
            Signal::Served => self.served(now, latency),
        }
    }

    fn advance(&mut self, now: Instant) {
        if let Some(w) = &mut self.window {
            w.load += self.in_flight as f64 * now.saturating_duration_since(w.last).as_secs_f64();
            w.last = now;
        }
    }

    fn overloaded(&mut self, now: Instant) -> Option<usize> {
        let cut = (self.limit * 3 / 4).max(1);
        self.ceiling = Some(((self.limit - 1).max(1), CEILING_WINDOWS));
        self.base = None;
        self.phase = Phase::Holding {
            windows_left: FIRST_HOLD,
            hold: FIRST_HOLD,
            up: false,
        };
        self.change(cut, now)
    }

    /// One answer of the start: a fast one lets [`RAMP_FACTOR`] requests
    /// go out in its place; a slow one ends the start at the estimated
    /// bandwidth-delay product.
    fn starting(&mut self, now: Instant, latency: Duration) -> Option<usize> {
        let secs = latency.as_secs_f64();
        let fastest = self.fastest.map_or(secs, |f| f.min(secs));
        self.fastest = Some(fastest);
        // The rate answers came at while this one was out: at a busy
        // server, its serving rate (BBR's delivery-rate sample).
        let since = now.checked_sub(latency).unwrap_or(now);
        while self.answered.front().is_some_and(|t| *t < since) || self.answered.len() >= 4096 {
            self.answered.pop_front();
        }
        self.answered.push_back(now);
        if secs >= 0.001 {
            let rate = self.answered.len() as f64 / secs;
            self.ramp.best_rate = self.ramp.best_rate.max(rate);
        }
        if secs <= RAMP_EXIT * fastest {
            self.ramp.fast_sum += secs;
            self.ramp.fast += 1;
            let next = (self.limit + RAMP_FACTOR - 1).min(self.top());
            if next == self.limit {
                // At the top: wait for a slow answer to measure by, but
                // not for ever (a server with room for all of them).
                self.ramp.at_top += 1;
                if self.ramp.at_top >= 2 * self.limit {
                    return self.end_start(next, now);
                }
                return None;
            }
            // Requests out stay counted as the same round: no new generation.
            self.limit = next;
            return Some(next);
        }
        // Queueing: the server's rate times an answer's time unloaded.
        let unloaded = self.ramp.fast_sum / self.ramp.fast.max(1) as f64;
        let product = (self.ramp.best_rate * unloaded).round() as usize;
        let next = product.clamp(1, self.top());
        tracing::debug!(rate = self.ramp.best_rate, unloaded, next, "the start ends");
        self.end_start(next, now)
    }

    fn end_start(&mut self, next: usize, now: Instant) -> Option<usize> {
        self.phase = Phase::Growing;
        self.base = None;
        self.answered.clear();
        let changed = self.change(next, now);
        if changed.is_none() {
            // Same limit: measure it from a fresh window all the same.
            self.generation += 1;
            self.stale = self.in_flight;
            self.window = (self.stale == 0).then(|| Window::open(now));
        }
        changed
    }

    fn served(&mut self, now: Instant, latency: Duration) -> Option<usize> {
        if matches!(self.phase, Phase::Starting) {
            return self.starting(now, latency);
        }
        let w = self.window.as_mut()?;
        w.completions += 1;
        w.latency_sum += latency.as_secs_f64();
        if w.completions < (2 * self.limit).max(MIN_WINDOW) {
            return None;
        }
        let seconds = now.saturating_duration_since(w.start).as_secs_f64();
        let mean_latency = w.latency_sum / w.completions as f64;
        if seconds <= 0.0 || mean_latency <= 0.0 {
            return None;
        }
        let measured = Measure {
            limit: self.limit,
            per_second: (w.load / seconds) / mean_latency,
        };
        self.window = Some(Window::open(now));
        if let Some((limit, windows)) = self.ceiling {
            self.ceiling = (windows > 1).then_some((limit, windows - 1));
        }
        tracing::debug!(?measured, phase = ?self.phase, base = ?self.base, "concurrency window");
        let next = self.decide(measured);
        self.change(next, now)
    }

    /// The highest limit to try now.
    fn top(&self) -> usize {
        self.ceiling.map_or(self.max, |(c, _)| c.min(self.max))
    }

    /// The limit to use after a window measured `m` at the current limit.
    fn decide(&mut self, m: Measure) -> usize {
        let step = |l: usize| (l / 16).max(1);
        let top = self.top();
        match self.phase {
            Phase::Starting | Phase::Growing => match self.base {
                // A step short of a doubling (up to the top) needs the
                // gain in proportion.
                Some(b)
                    if m.per_second
                        < b.per_second
                            * (1.0
                                + DOUBLING_GAIN
                                    * (m.limit as f64 / b.limit as f64).log2().max(0.0)) =>
                {
                    // Doubling no longer pays: settle on the last limit
                    // that did, and look below it first.
                    self.settle(false, FIRST_HOLD);
                    b.limit
                }
                _ => {
                    self.base = Some(m);
                    if self.limit >= top {
                        self.settle(false, FIRST_HOLD);
                        self.limit
                    } else {
                        (self.limit * 2).min(top)
                    }
                }
            },
            Phase::Holding {
                windows_left,
                hold,
                up,
            } => {
                // Follow the server's present speed while holding.
                self.base = Some(m);
                if windows_left > 1 {
                    self.phase = Phase::Holding {
                        windows_left: windows_left - 1,
                        hold,
                        up,
                    };
                    return self.limit;
                }
                let next = if up {
                    (self.limit + step(self.limit)).min(top)
                } else {
                    self.limit.saturating_sub(step(self.limit)).max(1)
                };
                if next == self.limit {
                    // Nowhere to go this way: try the other next time.
                    self.settle(!up, hold);
                    return self.limit;
                }
                self.phase = Phase::Probing { up, hold };
                next
            }
            Phase::Probing { up, hold } => {
                let b = self.base.unwrap_or(m);
                let keep = if up {
                    m.per_second > b.per_second * (1.0 + STEP_GAIN)
                } else {
                    m.per_second >= b.per_second * (1.0 - STEP_LOSS)
                };
                if keep {
                    // Keep going the same way. Going down, the reference
                    // stays the best throughput seen, so steps down cannot
                    // add up to a loss.
                    self.base = Some(Measure {
                        limit: m.limit,
                        per_second: if up {
                            m.per_second
                        } else {
                            b.per_second.max(m.per_second)
                        },
                    });
                    let next = if up {
                        (m.limit + step(m.limit)).min(top)
                    } else {
                        m.limit.saturating_sub(step(m.limit)).max(1)
                    };
                    if next == m.limit {
                        self.settle(!up, FIRST_HOLD);
                    }
                    next
                } else {
                    // Back to where it was; probe less often from now on.
                    self.settle(!up, (hold * 2).min(MAX_HOLD));
                    b.limit
                }
            }
        }
    }

    fn settle(&mut self, up: bool, hold: u32) {
        self.phase = Phase::Holding {
            windows_left: hold,
            hold,
            up,
        };
    }

    fn change(&mut self, next: usize, now: Instant) -> Option<usize> {
        if next == self.limit {
            return None;
        }
        self.limit = next;
        self.generation += 1;
        self.stale = self.in_flight;
        self.window = (self.stale == 0).then(|| Window::open(now));
        Some(next)
    }
}

/// An engine's request permits: a fixed or adaptive number.
#[derive(Debug)]
pub struct Limiter {
    name: String,
    /// The server it limits, for the log, when an engine has several.
    server: Option<String>,
    control: Mutex<Control>,
    /// Told when a permit is given back; shared by the limiters of one
    /// engine's servers ([`crate::pool`]), so a waiter for any is woken.
    freed: Arc<Notify>,
    /// Wake every waiter on a release, not one: when the notify is shared,
    /// the first waiter may not be able to use this server's room.
    wake_all: bool,
}

impl Limiter {
    /// Always `n` requests at once.
    pub fn fixed(name: &str, n: usize) -> Arc<Self> {
        Self::build(name, None, Control::fixed(n), Arc::default(), false)
    }

    /// Finds its own limit, never above `max`.
    pub fn adaptive(name: &str, max: usize) -> Arc<Self> {
        Self::build(
            name,
            None,
            Control::new(INITIAL_LIMIT, max),
            Arc::default(),
            false,
        )
    }

    /// A limiter for `server` of engine `name`, fixed at `n` (`Some(n)`)
    /// or adaptive up to `max`, which tells `freed` when a permit is given
    /// back: every waiter when the notify is `shared` by several servers'
    /// limiters.
    pub(crate) fn sharing(
        name: &str,
        server: Option<&str>,
        fixed: Option<usize>,
        max: usize,
        (freed, shared): (Arc<Notify>, bool),
    ) -> Arc<Self> {
        let control = match fixed {
            Some(n) => Control::fixed(n),
            None => Control::new(INITIAL_LIMIT, max),
        };
        Self::build(name, server, control, freed, shared)
    }

    fn build(
        name: &str,
        server: Option<&str>,
        control: Control,
        freed: Arc<Notify>,
        wake_all: bool,
    ) -> Arc<Self> {
        Arc::new(Self {
            name: name.to_owned(),
            server: server.map(str::to_owned),
            control: Mutex::new(control),
            freed,
            wake_all,
        })
    }

    /// The number of requests allowed at once now.
    pub fn limit(&self) -> usize {
        self.control.lock().expect("lock poisoned").limit()
    }

    /// Requests out now.
    pub fn in_flight(&self) -> usize {
        self.control.lock().expect("lock poisoned").in_flight
    }

    /// What is told when a permit is given back.
    pub(crate) fn freed(&self) -> &Arc<Notify> {
        &self.freed
    }

    /// How many more requests may go out now.
    pub fn room(&self) -> usize {
        let control = self.control.lock().expect("lock poisoned");
        control.limit().saturating_sub(control.in_flight)
    }

    /// A permit if there is room now.
    pub fn try_acquire(self: &Arc<Self>) -> Option<Permit> {
        let mut control = self.control.lock().expect("lock poisoned");
        control.has_room().then(|| {
            let started = Instant::now();
            Permit {
                limiter: self.clone(),
                generation: control.sent(started),
                started,
                signal: Signal::Other,
            }
        })
    }

    /// Waits for a free permit.
    pub async fn acquire(self: &Arc<Self>) -> Permit {
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            // Registered before looking, so a release in between is seen.
            freed.as_mut().enable();
            if let Some(permit) = self.try_acquire() {
                return permit;
            }
            freed.await;
        }
    }

    fn release(&self, signal: Signal, generation: u64, started: Instant) {
        let now = Instant::now();
        let changed = self.control.lock().expect("lock poisoned").record(
            now,
            signal,
            generation,
            now.duration_since(started),
        );
        if let Some(limit) = changed {
            let server = self.server.as_deref().unwrap_or("-");
            tracing::info!(engine = %self.name, server, limit, "requests in flight adjusted");
        }
        if changed.is_some() || self.wake_all {
            self.freed.notify_waiters();
        } else {
            self.freed.notify_one();
        }
    }
}

/// One request's permit; given back when dropped.
#[derive(Debug)]
pub struct Permit {
    limiter: Arc<Limiter>,
    generation: u64,
    started: Instant,
    signal: Signal,
}

impl Permit {
    /// Records what the request said about the server's load.
    pub fn finish(mut self, signal: Signal) {
        self.signal = signal;
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.limiter
            .release(self.signal, self.generation, self.started);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;

    /// A model server for the control to find its way on.
    #[derive(Clone, Copy)]
    enum Server {
        /// `slots` requests served at once, each taking `latency`; the rest
        /// wait in line (as `vlm-sim`, llama.cpp, Ollama).
        Queueing { slots: usize, latency: f64 },
        /// Continuous batching (vLLM): every request in flight is served,
        /// each more slowly the more there are.
        Batching { base: f64, knee: f64 },
        /// Refuses with 429 what it cannot serve at once.
        Refusing { slots: usize, latency: f64 },
    }

    /// Runs the control against `server` for `seconds` of simulated time
    /// and returns (completions/s over the last half, final limit).
    fn run(server: Server, max: usize, seconds: f64) -> (f64, usize) {
        let (rate, limit, _) = simulate(server, max, seconds, usize::MAX);
        (rate, limit)
    }

    /// [`run`], stopping early once `cards` requests were served; also
    /// returns the simulated seconds that took.
    fn simulate(server: Server, max: usize, seconds: f64, cards: usize) -> (f64, usize, f64) {
        let origin = Instant::now();
        let at = |t: f64| origin + Duration::from_secs_f64(t);
        let mut control = Control::new(INITIAL_LIMIT, max);
        // (finish µs, refused, generation, sent µs)
        let mut out: BinaryHeap<Reverse<(u64, bool, u64, u64)>> = BinaryHeap::new();
        let mut slot_free: Vec<f64> = Vec::new();
        let mut now = 0.0;
        let mut served_late = 0usize;
        // Service times vary by ±10%, as real ones do.
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut jitter = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            0.9 + 0.2 * (seed % 1000) as f64 / 1000.0
        };
        let mut send = |now: f64, in_flight: usize, slot_free: &mut Vec<f64>| -> (f64, bool) {
            let jitter = jitter();
            match server {
                Server::Queueing { slots, latency } => {
                    if slot_free.len() < slots {
                        slot_free.resize(slots, 0.0);
                    }
                    let (i, free) = slot_free
                        .iter()
                        .copied()
                        .enumerate()
                        .min_by(|a, b| a.1.total_cmp(&b.1))
                        .unwrap();
                    let end = free.max(now) + latency * jitter;
                    slot_free[i] = end;
                    (end, false)
                }
                Server::Batching { base, knee } => (
                    now + jitter * base * (1.0 + (in_flight + 1) as f64 / knee),
                    false,
                ),
                Server::Refusing { slots, latency } => {
                    if in_flight >= slots {
                        (now + 0.001, true)
                    } else {
                        (now + latency * jitter, false)
                    }
                }
            }
        };
        let us = |t: f64| (t * 1e6) as u64;
        let mut served = 0usize;
        while now < seconds && served < cards {
            while out.len() < control.limit() {
                let (end, refused) = send(now, out.len(), &mut slot_free);
                let generation = control.sent(at(now));
                out.push(Reverse((us(end), refused, generation, us(now))));
            }
            let Reverse((end, refused, sent, sent_at)) = out.pop().unwrap();
            now = end as f64 / 1e6;
            let signal = if refused {
                Signal::Overloaded
            } else {
                if now > seconds / 2.0 {
                    served_late += 1;
                }
                served += 1;
                Signal::Served
            };
            control.record(at(now), signal, sent, Duration::from_micros(end - sent_at));
        }
        (served_late as f64 / (seconds / 2.0), control.limit(), now)
    }

    #[test]
    fn ramps_up_to_a_big_server_within_a_few_round_trips() {
        // 900 cards at 128 slots × 1.5 s: the whole run at ≥ 0.85 of what
        // the server can do (it takes 10.5 s at best).
        let (slots, latency) = (128, 1.5);
        let (_, limit, seconds) = simulate(Server::Queueing { slots, latency }, 256, 600.0, 900);
        let share = 900.0 / (slots as f64 / latency * seconds);
        assert!(
            share >= 0.85,
            "{share:.2} of capacity in {seconds:.1} s, limit {limit}"
        );
    }

    #[test]
    fn holds_a_queueing_server_full_whatever_its_slots() {
        for (slots, latency) in [(4, 0.1), (32, 0.2), (128, 0.5), (200, 1.0)] {
            let capacity = slots as f64 / latency;
            let (rate, limit) = run(Server::Queueing { slots, latency }, 256, 300.0);
            assert!(
                rate >= 0.97 * capacity,
                "{slots} slots: {rate:.1}/s of {capacity:.1}/s, limit {limit}"
            );
            // Not far above what the server can hold: no needless queueing.
            assert!(
                limit <= slots + slots / 4 + 2,
                "{slots} slots: limit {limit}"
            );
        }
    }

    #[test]
    fn climbs_on_a_batching_server_although_latency_grows() {
        // Throughput keeps rising with concurrency up to the maximum.
        let server = Server::Batching {
            base: 0.5,
            knee: 64.0,
        };
        let (rate, limit) = run(server, 256, 300.0);
        let best = 256.0 / (0.5 * (1.0 + 256.0 / 64.0));
        assert!(limit >= 200, "limit {limit}");
        assert!(rate >= 0.9 * best, "{rate:.1}/s of {best:.1}/s");
    }

    #[test]
    fn backs_off_a_server_that_refuses() {
        let (rate, limit) = run(
            Server::Refusing {
                slots: 16,
                latency: 0.2,
            },
            256,
            120.0,
        );
        assert!(limit <= 20, "limit {limit}");
        assert!(rate >= 0.8 * 80.0, "{rate:.1}/s");
    }

    #[test]
    fn never_exceeds_the_maximum() {
        let (_, limit) = run(
            Server::Queueing {
                slots: 500,
                latency: 0.1,
            },
            48,
            60.0,
        );
        assert_eq!(limit, 48);
    }

    #[tokio::test]
    async fn permits_wait_for_a_free_one() {
        let limiter = Limiter::fixed("test", 2);
        let a = limiter.acquire().await;
        let _b = limiter.acquire().await;
        let waiting = tokio::spawn({
            let limiter = limiter.clone();
            async move { limiter.acquire().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished());
        a.finish(Signal::Served);
        let c = tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .expect("a freed permit wakes the waiter")
            .unwrap();
        drop(c);
        assert_eq!(limiter.limit(), 2);
    }
}
