//! Route health: how well each (provider, key, model) route is doing, as
//! decaying averages this node observes and its peers report, turned into a
//! state with hysteresis and a score for power-of-two-choices selection.
//!
//! - **Signals**: error rate and latency as exponentially weighted moving
//!   averages over observations (each new result weighs [`ALPHA`]), requests
//!   in flight, and rate-limit refusals with their `Retry-After`.
//! - **States**: `Healthy` → `Degraded` when the error rate reaches
//!   [`DEGRADE_AT`], back below [`RECOVER_BELOW`]; `Failed` from either when
//!   it reaches [`FAIL_AT`]. A failed route rests for a cool-down (doubling
//!   with each relapse, capped), then turns `Recovering`: it gets a small
//!   share of traffic ([`PROBE_SHARE`]) until [`PROBES_TO_RECOVER`]
//!   successes in a row make it `Healthy`, and one failure sends it back.
//!   The gaps between thresholds are the hysteresis that keeps a route from
//!   flapping on noise.
//! - **Score** (higher is better): the configured weight, times
//!   `(1 − errors)⁴` (errors weigh most), divided by `1 + latency/100 ms`
//!   and by `1 + in flight`; zero while failed or rate-limited.
//! - **Sharing**: peers' summaries are blended in as extra evidence weighing
//!   [`PEER_WEIGHT`] of this node's own, so a route that fails elsewhere is
//!   deprioritized here before local users feel it, while this node's own
//!   recent observations still dominate.
//!
//! Selection reads only atomics (state, score inputs); observations take a
//! per-route lock. The table of routes is an `ArcSwap` map, written only when
//! a route is first seen.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};

use crate::state::NodeId;

/// Weight of each new observation in the moving averages.
pub const ALPHA: f64 = 0.05;
/// Error rate at which a healthy route is degraded.
pub const DEGRADE_AT: f64 = 0.25;
/// Error rate under which a degraded route is healthy again.
pub const RECOVER_BELOW: f64 = 0.05;
/// Error rate at which a route is failed.
pub const FAIL_AT: f64 = 0.4;
/// Observations needed before the error rate can change a state.
pub const MIN_SAMPLES: u64 = 5;
/// Share of requests a recovering route receives.
pub const PROBE_SHARE: f64 = 0.05;
/// Consecutive successes that bring a recovering route back.
pub const PROBES_TO_RECOVER: u32 = 3;
/// First cool-down of a failed route, in ms; doubled per relapse up to 60 s.
pub const COOL_DOWN_MS: u64 = 2_000;
const MAX_COOL_DOWN_MS: u64 = 60_000;
/// How much a peer's evidence weighs against this node's own.
pub const PEER_WEIGHT: f64 = 0.5;
/// Scores closer than this (relative) count as equal in a choice.
pub const TIE: f64 = 0.2;
/// Peers' summaries older than this are ignored (ms).
pub const PEER_TTL_MS: u64 = 10_000;

/// One route: a provider key serving a model.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RouteId {
    pub provider: String,
    pub key: String,
    pub model: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum State {
    Healthy = 0,
    Degraded = 1,
    Failed = 2,
    Recovering = 3,
}

impl State {
    fn from_u8(v: u8) -> State {
        match v {
            1 => State::Degraded,
            2 => State::Failed,
            3 => State::Recovering,
            _ => State::Healthy,
        }
    }
}

/// The outcome of one request on a route.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    Success {
        latency_ms: f64,
    },
    /// A 5xx, a timeout, a network error.
    Failure,
    /// A 429: not the route's fault, but it cannot serve until then.
    RateLimited {
        retry_after_ms: u64,
    },
}

/// What this node knows of a route from its own observations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub errors: f64,
    pub latency_ms: f64,
    pub samples: u64,
}

impl Summary {
    /// A peer's summary made safe to weigh: an error rate in `0..=1` and a
    /// latency in `0..=MAX_LATENCY_MS`, whatever it sent (NaN counts as 0).
    fn sane(self) -> Summary {
        let clamp = |x: f64, hi: f64| if x.is_nan() { 0.0 } else { x.clamp(0.0, hi) };
        Summary {
            errors: clamp(self.errors, 1.0),
            latency_ms: clamp(self.latency_ms, MAX_LATENCY_MS),
            samples: self.samples,
        }
    }
}

/// The largest latency a peer's summary may report (ten minutes).
const MAX_LATENCY_MS: f64 = 600_000.0;

/// The most routes a node tracks the health of.
pub const MAX_ROUTES: usize = 4096;

#[derive(Debug)]
struct Evidence {
    own: Summary,
    cool_down_ms: u64,
    probe_successes: u32,
    peers: HashMap<NodeId, (Summary, u64)>,
}

#[derive(Debug)]
pub struct RouteHealth {
    state: AtomicU8,
    /// Blended error rate and latency, as f64 bits (read on selection).
    errors: AtomicU64,
    latency_ms: AtomicU64,
    in_flight: AtomicI64,
    limited_until_ms: AtomicU64,
    /// While Failed: when the rest ends (mirrors the evidence, for readers).
    failed_until_ms: AtomicU64,
    evidence: Mutex<Evidence>,
}

impl Default for RouteHealth {
    fn default() -> Self {
        RouteHealth {
            state: AtomicU8::new(State::Healthy as u8),
            errors: AtomicU64::new(0f64.to_bits()),
            latency_ms: AtomicU64::new(0f64.to_bits()),
            in_flight: AtomicI64::new(0),
            limited_until_ms: AtomicU64::new(0),
            failed_until_ms: AtomicU64::new(0),
            evidence: Mutex::new(Evidence {
                own: Summary::default(),
                cool_down_ms: COOL_DOWN_MS,
                probe_successes: 0,
                peers: HashMap::new(),
            }),
        }
    }
}

impl RouteHealth {
    pub fn state(&self, now_ms: u64) -> State {
        let s = State::from_u8(self.state.load(Ordering::Relaxed));
        if s == State::Failed && now_ms >= self.failed_until_ms.load(Ordering::Relaxed) {
            // The rest is over; a lost race only repeats the same store.
            let _ = self.state.compare_exchange(
                State::Failed as u8,
                State::Recovering as u8,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
            return State::from_u8(self.state.load(Ordering::Relaxed));
        }
        s
    }

    fn set_state(&self, s: State) {
        self.state.store(s as u8, Ordering::Relaxed);
    }

    pub fn errors(&self) -> f64 {
        f64::from_bits(self.errors.load(Ordering::Relaxed))
    }

    pub fn latency_ms(&self) -> f64 {
        f64::from_bits(self.latency_ms.load(Ordering::Relaxed))
    }

    pub fn in_flight(&self) -> i64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Selection score (see the module docs); `weight` is the configured one.
    pub fn score(&self, weight: f64, now_ms: u64) -> f64 {
        if self.limited_until_ms.load(Ordering::Relaxed) > now_ms {
            return 0.0;
        }
        match self.state(now_ms) {
            State::Failed => return 0.0,
            State::Recovering => return weight * PROBE_SHARE,
            State::Healthy | State::Degraded => {}
        }
        let ok = (1.0 - self.errors()).clamp(0.0, 1.0);
        weight * ok.powi(4)
            / (1.0 + self.latency_ms() / 100.0)
            / (1.0 + self.in_flight().max(0) as f64)
    }

    /// Marks a request started; the guard marks it finished.
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    /// Records one result and moves the state machine.
    pub fn observe(&self, outcome: Outcome, now_ms: u64) {
        let mut ev = self.evidence.lock().expect("health lock");
        let failed = match outcome {
            Outcome::RateLimited { retry_after_ms } => {
                self.limited_until_ms
                    .fetch_max(now_ms + retry_after_ms, Ordering::Relaxed);
                return;
            }
            Outcome::Success { latency_ms } => {
                let own = &mut ev.own;
                own.latency_ms = if own.samples == 0 {
                    latency_ms
                } else {
                    own.latency_ms + ALPHA * (latency_ms - own.latency_ms)
                };
                false
            }
            Outcome::Failure => true,
        };
        let own = &mut ev.own;
        own.errors += ALPHA * (f64::from(u8::from(failed)) - own.errors);
        own.samples += 1;
        self.publish(&mut ev, now_ms);
        let state = self.state(now_ms);
        let next = match state {
            State::Recovering => {
                if failed {
                    ev.cool_down_ms = (ev.cool_down_ms * 2).min(MAX_COOL_DOWN_MS);
                    Some(self.fail(&mut ev, now_ms))
                } else {
                    ev.probe_successes += 1;
                    (ev.probe_successes >= PROBES_TO_RECOVER).then(|| {
                        // Back with a clean slate of this node's evidence.
                        ev.own.errors = 0.0;
                        ev.cool_down_ms = COOL_DOWN_MS;
                        self.publish(&mut ev, now_ms);
                        State::Healthy
                    })
                }
            }
            State::Failed => None,
            State::Healthy | State::Degraded => self.judge(&mut ev, state, now_ms),
        };
        if let Some(s) = next {
            self.set_state(s);
        }
    }

    fn fail(&self, ev: &mut Evidence, now_ms: u64) -> State {
        self.failed_until_ms
            .store(now_ms + ev.cool_down_ms, Ordering::Relaxed);
        ev.probe_successes = 0;
        State::Failed
    }

    /// The state the blended error rate calls for, from Healthy or Degraded.
    fn judge(&self, ev: &mut Evidence, state: State, now_ms: u64) -> Option<State> {
        let samples = ev.own.samples + ev.peers.values().map(|(s, _)| s.samples).sum::<u64>();
        if samples < MIN_SAMPLES {
            return None;
        }
        let e = self.errors();
        if e >= FAIL_AT {
            return Some(self.fail(ev, now_ms));
        }
        match state {
            State::Healthy if e >= DEGRADE_AT => Some(State::Degraded),
            State::Degraded if e < RECOVER_BELOW => Some(State::Healthy),
            _ => None,
        }
    }

    /// Recomputes the blended averages that selection reads.
    fn publish(&self, ev: &mut Evidence, now_ms: u64) {
        ev.peers
            .retain(|_, (_, at)| now_ms.saturating_sub(*at) <= PEER_TTL_MS);
        let own_w = ev.own.samples.min(100) as f64;
        let (mut w, mut err, mut lat) = (own_w, own_w * ev.own.errors, own_w * ev.own.latency_ms);
        for (s, _) in ev.peers.values() {
            let pw = PEER_WEIGHT * s.samples.min(100) as f64;
            w += pw;
            err += pw * s.errors;
            lat += pw * s.latency_ms;
        }
        let (err, lat) = if w > 0.0 {
            (err / w, lat / w)
        } else {
            (0.0, 0.0)
        };
        self.errors.store(err.to_bits(), Ordering::Relaxed);
        self.latency_ms.store(lat.to_bits(), Ordering::Relaxed);
    }

    /// Takes in a peer's summary of this route.
    pub fn hear(&self, peer: NodeId, summary: Summary, now_ms: u64) {
        let summary = summary.sane();
        let mut ev = self.evidence.lock().expect("health lock");
        ev.peers.insert(peer, (summary, now_ms));
        self.publish(&mut ev, now_ms);
        let state = State::from_u8(self.state.load(Ordering::Relaxed));
        if matches!(state, State::Healthy | State::Degraded)
            && let Some(s) = self.judge(&mut ev, state, now_ms)
        {
            self.set_state(s);
        }
    }

    fn own(&self) -> Summary {
        self.evidence.lock().expect("health lock").own
    }
}

/// Decrements a route's in-flight count when dropped.
pub struct InFlight(Arc<RouteHealth>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Every route this node has seen.
#[derive(Default)]
pub struct HealthBook {
    routes: ArcSwap<HashMap<RouteId, Arc<RouteHealth>>>,
    insert: Mutex<()>,
}

impl HealthBook {
    /// The route's health, created on first sight.
    pub fn route(&self, id: &RouteId) -> Arc<RouteHealth> {
        if let Some(r) = self.routes.load().get(id) {
            return r.clone();
        }
        let _g = self.insert.lock().expect("health insert lock");
        let current = self.routes.load();
        if let Some(r) = current.get(id) {
            return r.clone();
        }
        let mut next = HashMap::clone(&current);
        let r = Arc::new(RouteHealth::default());
        next.insert(id.clone(), r.clone());
        self.routes.store(Arc::new(next));
        r
    }

    /// Power of two choices: two candidates drawn by weight, the one with the
    /// better score wins. `candidates` are (index, configured weight); returns
    /// an index, or `None` when every candidate scores zero.
    pub fn choose(
        &self,
        candidates: &[(usize, f64, &RouteId)],
        now_ms: u64,
        rng: &mut fastrand::Rng,
    ) -> Option<usize> {
        let scored: Vec<(usize, f64, f64)> = candidates
            .iter()
            .map(|(i, w, id)| (*i, *w, self.route(id).score(*w, now_ms)))
            .collect();
        let draw = |rng: &mut fastrand::Rng| -> Option<(usize, f64)> {
            let total: f64 = scored
                .iter()
                .map(|(_, w, s)| if *s > 0.0 { *w } else { 0.0 })
                .sum();
            if total <= 0.0 {
                return None;
            }
            let mut r = rng.f64() * total;
            for (i, w, s) in &scored {
                if *s <= 0.0 {
                    continue;
                }
                if r < *w {
                    return Some((*i, *s));
                }
                r -= w;
            }
            scored
                .iter()
                .rev()
                .find(|(_, _, s)| *s > 0.0)
                .map(|(i, _, s)| (*i, *s))
        };
        let a = draw(rng)?;
        let b = draw(rng).unwrap_or(a);
        // Scores within TIE of each other are equals: the first draw (by
        // weight) stands, so healthy routes share traffic by their weights
        // instead of the marginally faster one taking it all.
        Some(if b.1 > a.1 * (1.0 + TIE) { b.0 } else { a.0 })
    }

    /// This node's own summaries, for its peers.
    pub fn summaries(&self) -> Vec<(RouteId, Summary)> {
        self.routes
            .load()
            .iter()
            .map(|(id, r)| (id.clone(), r.own()))
            .filter(|(_, s)| s.samples > 0)
            .collect()
    }

    /// Takes in a peer's summaries.
    ///
    /// A peer may name routes this node has not used yet (so that it avoids
    /// a failed one from its first request), but only while the book holds
    /// fewer than [`MAX_ROUTES`]: past that, only known routes are heard.
    pub fn hear(&self, peer: NodeId, summaries: &[(RouteId, Summary)], now_ms: u64) {
        for (id, s) in summaries {
            let routes = self.routes.load();
            let route = match routes.get(id) {
                Some(r) => r.clone(),
                None if routes.len() < MAX_ROUTES => self.route(id),
                None => continue,
            };
            route.hear(peer, *s, now_ms);
        }
    }

    /// Every route with its state and score inputs, for the admin API.
    pub fn view(&self, now_ms: u64) -> Vec<RouteView> {
        let mut out: Vec<RouteView> = self
            .routes
            .load()
            .iter()
            .map(|(id, r)| RouteView {
                route: id.clone(),
                state: r.state(now_ms),
                errors: r.errors(),
                latency_ms: r.latency_ms(),
                in_flight: r.in_flight(),
                score: r.score(1.0, now_ms),
            })
            .collect();
        out.sort_by(|a, b| a.route.cmp(&b.route));
        out
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RouteView {
    #[serde(flatten)]
    pub route: RouteId,
    pub state: State,
    pub errors: f64,
    pub latency_ms: f64,
    pub in_flight: i64,
    /// Score at weight 1.
    pub score: f64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok() -> Outcome {
        Outcome::Success { latency_ms: 20.0 }
    }

    fn id(k: &str) -> RouteId {
        RouteId {
            provider: "mock".into(),
            key: k.into(),
            model: "m".into(),
        }
    }

    #[test]
    fn a_failing_route_fails_rests_then_recovers_through_probes() {
        let r = RouteHealth::default();
        let mut now = 1_000;
        for _ in 0..20 {
            r.observe(ok(), now);
        }
        assert_eq!(r.state(now), State::Healthy);
        let mut steps = 0;
        while r.state(now) != State::Failed {
            r.observe(Outcome::Failure, now);
            steps += 1;
            assert!(steps < 20);
        }
        assert_eq!(r.score(1.0, now), 0.0);
        now += COOL_DOWN_MS;
        assert_eq!(r.state(now), State::Recovering);
        assert!(r.score(1.0, now) > 0.0, "probes get through");
        r.observe(Outcome::Failure, now);
        assert_eq!(r.state(now), State::Failed, "a failed probe sends it back");
        now += COOL_DOWN_MS * 2;
        assert_eq!(r.state(now), State::Recovering, "after a doubled rest");
        for _ in 0..PROBES_TO_RECOVER {
            r.observe(ok(), now);
        }
        assert_eq!(r.state(now), State::Healthy);
    }

    #[test]
    fn peers_cannot_grow_the_book_past_its_bound_or_poison_scores() {
        let book = HealthBook::default();
        let hostile = Summary {
            errors: f64::NAN,
            latency_ms: f64::INFINITY,
            samples: u64::MAX,
        };
        let many: Vec<(RouteId, Summary)> = (0..MAX_ROUTES + 100)
            .map(|i| (id(&format!("r{i}")), hostile))
            .collect();
        book.hear(9, &many, 1_000);
        assert_eq!(book.routes.load().len(), MAX_ROUTES);
        let r = book.route(&id("r0"));
        assert!(r.errors().is_finite() && r.latency_ms().is_finite());
        assert!(r.score(1.0, 1_000).is_finite());
    }

    #[test]
    fn rate_limits_pause_a_route_without_failing_it() {
        let r = RouteHealth::default();
        r.observe(
            Outcome::RateLimited {
                retry_after_ms: 500,
            },
            1_000,
        );
        assert_eq!(r.score(1.0, 1_200), 0.0);
        assert_eq!(r.state(1_200), State::Healthy);
        assert!(r.score(1.0, 1_500) > 0.0);
    }

    #[test]
    fn peers_failures_deprioritize_a_route_before_local_errors() {
        let book = HealthBook::default();
        let (a, b) = (id("a"), id("b"));
        for _ in 0..10 {
            book.route(&a).observe(ok(), 1_000);
            book.route(&b).observe(ok(), 1_000);
        }
        let peer = Summary {
            errors: 0.9,
            latency_ms: 20.0,
            samples: 100,
        };
        book.hear(7, &[(a.clone(), peer)], 1_000);
        assert_eq!(book.route(&a).state(1_000), State::Failed);
        let mut rng = fastrand::Rng::with_seed(1);
        let picks: Vec<usize> = (0..200)
            .filter_map(|_| book.choose(&[(0, 1.0, &a), (1, 1.0, &b)], 1_000, &mut rng))
            .collect();
        assert!(
            picks.iter().all(|&i| i == 1),
            "the failing route gets nothing"
        );
        // Peers' evidence ages out.
        assert_eq!(book.summaries().len(), 2);
        book.route(&a)
            .hear(8, Summary::default(), 1_000 + PEER_TTL_MS + 1);
        assert!(book.route(&a).errors() < 0.01);
    }

    #[test]
    fn choice_follows_weights_and_scores() {
        let book = HealthBook::default();
        let (a, b) = (id("a"), id("b"));
        let mut rng = fastrand::Rng::with_seed(3);
        let mut count = [0usize; 2];
        for _ in 0..4000 {
            let i = book
                .choose(&[(0, 3.0, &a), (1, 1.0, &b)], 0, &mut rng)
                .unwrap();
            count[i] += 1;
        }
        assert!(count[0] > count[1] * 2, "{count:?}");
        for _ in 0..30 {
            book.route(&a)
                .observe(Outcome::Success { latency_ms: 2000.0 }, 0);
            book.route(&b)
                .observe(Outcome::Success { latency_ms: 10.0 }, 0);
        }
        let mut count = [0usize; 2];
        for _ in 0..4000 {
            count[book
                .choose(&[(0, 1.0, &a), (1, 1.0, &b)], 0, &mut rng)
                .unwrap()] += 1;
        }
        assert!(count[1] > count[0] * 2, "the slow route loses: {count:?}");
    }

    proptest! {
        /// No flapping under noise: a route failing 10% of the time (between
        /// the recover and degrade thresholds' noise) changes state rarely.
        #[test]
        fn noise_does_not_make_a_route_flap(seed in 0u64..1000) {
            let r = RouteHealth::default();
            let mut rng = fastrand::Rng::with_seed(seed);
            let mut changes = 0;
            let mut last = r.state(0);
            for t in 0..5_000u64 {
                let outcome = if rng.f64() < 0.08 { Outcome::Failure } else { ok() };
                r.observe(outcome, t * 10);
                let s = r.state(t * 10);
                if s != last {
                    changes += 1;
                    last = s;
                }
            }
            prop_assert!(changes <= 40, "{changes} state changes in 5,000 requests");
        }

        /// Recovery is always reachable: from any history, enough time and
        /// successes bring a route back to Healthy.
        #[test]
        fn recovery_is_always_reachable(history in proptest::collection::vec(0u8..3, 0..300)) {
            let r = RouteHealth::default();
            let mut now = 0u64;
            for h in history {
                let o = match h {
                    0 => ok(),
                    1 => Outcome::Failure,
                    _ => Outcome::RateLimited { retry_after_ms: 100 },
                };
                r.observe(o, now);
                now += 7;
            }
            let mut steps = 0;
            while r.state(now) != State::Healthy {
                now += MAX_COOL_DOWN_MS;
                if r.score(1.0, now) > 0.0 {
                    r.observe(ok(), now);
                }
                steps += 1;
                prop_assert!(steps < 200, "stuck in {:?}", r.state(now));
            }
        }
    }
}
