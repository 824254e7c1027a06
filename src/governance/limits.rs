//! Rate limits: requests and tokens per window, per scope, cluster-wide.
//!
//! Model: fixed windows aligned to the UTC clock (`1m` windows start on the
//! minute). Each node counts what it admits in its own slot of the window
//! (requests at admission, tokens when the request finishes) and a node
//! admits a request when the window's count over all nodes — its own, exact,
//! plus the latest it has heard from every peer — is below the limit. Every
//! `cluster::RATE_SYNC` a node sends each live peer its slots that the peer
//! has not acknowledged holding ([`Limiter::unacked`], [`Limiter::acked`]):
//! a lost push is sent again on the next tick, and nothing is sent while
//! nothing changed (the cluster layer drives this; see `docs/cluster.md`).
//!
//! Bound: on one node the request count never exceeds its limit. In a
//! cluster of `n` nodes, a window can admit at most the limit plus what the
//! other `n − 1` nodes admit before their counts arrive: one sync period
//! plus a network hop when nothing is lost, one more sync period for each
//! push to a peer that is lost (it is repeated until acknowledged, so a
//! loss delays the count, never drops it); while partitioned, each
//! side counts only what it hears, so each side can admit up to the limit.
//! Tokens exceed their limit by at most what the requests admitted before it
//! filled up went on to use. Refusals carry the time until the window ends
//! (`Retry-After`). Window counts live in memory: a restarted node forgets
//! its own past admissions in the current window.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::budgets::{Period, Scope};
use crate::state::counter::GCounter;
use crate::state::{Change, NodeId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Requests per window.
    #[serde(default)]
    pub requests: Option<u64>,
    /// Prompt + completion tokens per window.
    #[serde(default)]
    pub tokens: Option<u64>,
    pub window: Period,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rate limit of {scope} reached: {limit} {what} per {window}; retry in {retry_after_secs}s")]
pub struct RateLimited {
    pub scope: Scope,
    pub what: &'static str,
    pub limit: u64,
    pub window: &'static str,
    pub retry_after_secs: u64,
}

#[derive(Default, Clone, Copy, PartialEq, Eq)]
struct Counts {
    requests: u64,
    tokens: u64,
}

/// One window of one scope: `[start, end)` in Unix ms.
type WindowKey = (Scope, u64, u64);

#[derive(Default)]
struct Window {
    own: Counts,
    /// The highest counts heard from each peer.
    peers: HashMap<NodeId, Counts>,
    /// The own counts each peer is known to hold (its transport
    /// acknowledged them); what exceeds them is sent again every tick.
    acked: HashMap<NodeId, Counts>,
}

impl Window {
    fn total(&self) -> Counts {
        self.peers.values().fold(self.own, |a, c| Counts {
            requests: a.requests + c.requests,
            tokens: a.tokens + c.tokens,
        })
    }
}

/// The windows a request was counted in, to add its tokens to later.
#[derive(Debug, Default)]
pub struct Admitted {
    windows: Vec<WindowKey>,
}

pub struct Limiter {
    node: NodeId,
    windows: Mutex<HashMap<WindowKey, Window>>,
}

fn window_of(p: Period, now_ms: u64) -> (u64, u64) {
    let b = super::budgets::Budget {
        limit_usd: super::budgets::Usd(0),
        period: p,
        calendar: true,
        anchor_ms: 0,
    };
    super::budgets::window(&b, now_ms)
}

/// Counter names: `rate\0<scope>\0<start>\0<end>\0r` (requests) or `…\0t` (tokens).
fn counter_name((scope, start, end): &WindowKey, what: char) -> String {
    format!("rate\0{scope}\0{start}\0{end}\0{what}")
}

fn parse_name(name: &str) -> Option<(WindowKey, char)> {
    let mut parts = name.strip_prefix("rate\0")?.split('\0');
    let scope = parts.next()?.to_string();
    let start = parts.next()?.parse().ok()?;
    let end = parts.next()?.parse().ok()?;
    let what = parts.next()?.chars().next()?;
    parts
        .next()
        .is_none()
        .then_some(((scope, start, end), what))
}

impl Limiter {
    pub fn new(node: NodeId) -> Limiter {
        Limiter {
            node,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Admits and counts one request against every limit, or refuses it
    /// without counting anything.
    pub fn admit(
        &self,
        limits: &[(Scope, RateLimit)],
        now_ms: u64,
    ) -> Result<Admitted, RateLimited> {
        let mut windows = self.windows.lock().expect("limiter lock");
        // Ended windows are dropped as time moves on; the map stays small.
        windows.retain(|(_, _, end), _| *end > now_ms);
        let mut admitted = Admitted::default();
        for (scope, l) in limits {
            let (start, end) = window_of(l.window, now_ms);
            let key = (scope.clone(), start, end);
            let c = windows.get(&key).map(Window::total).unwrap_or_default();
            let refuse = |what, limit| RateLimited {
                scope: scope.clone(),
                what,
                limit,
                window: l.window.label(),
                retry_after_secs: (end - now_ms).div_ceil(1000).max(1),
            };
            if let Some(max) = l.requests
                && c.requests >= max
            {
                return Err(refuse("requests", max));
            }
            if let Some(max) = l.tokens
                && c.tokens >= max
            {
                return Err(refuse("tokens", max));
            }
            if !admitted.windows.contains(&key) {
                admitted.windows.push(key);
            }
        }
        for w in &admitted.windows {
            windows.entry(w.clone()).or_default().own.requests += 1;
        }
        Ok(admitted)
    }

    /// Un-counts a request that was admitted here but refused later (by a budget).
    pub fn undo(&self, a: &Admitted) {
        let mut windows = self.windows.lock().expect("limiter lock");
        for w in &a.windows {
            if let Some(c) = windows.get_mut(w) {
                c.own.requests = c.own.requests.saturating_sub(1);
            }
        }
    }

    /// Adds a finished request's tokens to the windows it was admitted in.
    pub fn record_tokens(&self, a: &Admitted, tokens: u64) {
        if tokens == 0 {
            return;
        }
        let mut windows = self.windows.lock().expect("limiter lock");
        for w in &a.windows {
            windows.entry(w.clone()).or_default().own.tokens += tokens;
        }
    }

    /// This node's counts in open windows that `peer` is not known to hold,
    /// as counter changes for it: sent every tick until [`Limiter::acked`]
    /// records them, so a lost push is repeated, and nothing is sent once
    /// the peer has everything. (A count that an undo lowered is not sent
    /// lower: peers keep the higher value, which only makes them stricter.)
    pub fn unacked(&self, peer: NodeId, now_ms: u64) -> Vec<Change> {
        let mut windows = self.windows.lock().expect("limiter lock");
        windows.retain(|(_, _, end), _| *end > now_ms);
        let mut out = Vec::new();
        for (key, w) in windows.iter() {
            let held = w.acked.get(&peer).copied().unwrap_or_default();
            for (what, own, held) in [
                ('r', w.own.requests, held.requests),
                ('t', w.own.tokens, held.tokens),
            ] {
                if own > held {
                    let mut counter = GCounter::default();
                    counter.slots.insert(self.node, own);
                    out.push(Change::Counter {
                        key: counter_name(key, what),
                        counter,
                    });
                }
            }
        }
        out
    }

    /// Records that `peer` holds `sent` (changes from [`Limiter::unacked`]),
    /// so they are not sent to it again. Windows already over are ignored.
    pub fn acked(&self, peer: NodeId, sent: &[Change]) {
        let mut windows = self.windows.lock().expect("limiter lock");
        for c in sent {
            let Change::Counter { key, counter } = c else {
                continue;
            };
            let (Some((key, what)), Some(&n)) = (parse_name(key), counter.slots.get(&self.node))
            else {
                continue;
            };
            let Some(w) = windows.get_mut(&key) else {
                continue;
            };
            let held = w.acked.entry(peer).or_default();
            let slot = if what == 'r' {
                &mut held.requests
            } else {
                &mut held.tokens
            };
            *slot = (*slot).max(n);
        }
    }

    /// Forgets what departed peers hold (keeps only `peers`), so the map
    /// stays as small as the membership; a peer that comes back is sent
    /// everything again.
    pub fn keep_peers(&self, peers: &[NodeId]) {
        let mut windows = self.windows.lock().expect("limiter lock");
        for w in windows.values_mut() {
            w.acked.retain(|p, _| peers.contains(p));
        }
    }

    /// Takes in a peer's counts. Names that are not rate counters, and
    /// windows already over, are ignored (`false`).
    pub fn merge(&self, name: &str, counter: &GCounter, now_ms: u64) -> bool {
        let Some((key, what)) = parse_name(name) else {
            return false;
        };
        if key.2 <= now_ms {
            return false;
        }
        let mut windows = self.windows.lock().expect("limiter lock");
        let w = windows.entry(key).or_default();
        let mut changed = false;
        for (&node, &n) in counter.slots.iter().filter(|(n, _)| **n != self.node) {
            let c = w.peers.entry(node).or_default();
            let slot = if what == 'r' {
                &mut c.requests
            } else {
                &mut c.tokens
            };
            if n > *slot {
                *slot = n;
                changed = true;
            }
        }
        changed
    }
}

/// Whether a counter name belongs to the limiter.
pub fn is_rate_counter(name: &str) -> bool {
    name.starts_with("rate\0")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(requests: Option<u64>, tokens: Option<u64>) -> Vec<(Scope, RateLimit)> {
        vec![(
            "key:k".into(),
            RateLimit {
                requests,
                tokens,
                window: Period::Minute,
            },
        )]
    }

    #[test]
    fn requests_are_capped_per_window_with_retry_after() {
        let l = Limiter::new(1);
        let limits = limit(Some(3), None);
        let t0 = 1_800_000_000_000 + 10_000; // 10 s into a minute
        for _ in 0..3 {
            l.admit(&limits, t0).unwrap();
        }
        let e = l.admit(&limits, t0 + 5_000).unwrap_err();
        assert_eq!((e.what, e.limit, e.retry_after_secs), ("requests", 3, 45));
        // The next minute is a new window.
        assert!(l.admit(&limits, t0 + 50_000).is_ok());
    }

    #[test]
    fn tokens_count_after_the_fact_and_undo_uncounts() {
        let l = Limiter::new(1);
        let limits = limit(Some(10), Some(100));
        let now = 1_800_000_000_000;
        let a = l.admit(&limits, now).unwrap();
        l.record_tokens(&a, 150);
        assert_eq!(l.admit(&limits, now).unwrap_err().what, "tokens");
        let l = Limiter::new(1);
        let limits = limit(Some(1), None);
        let a = l.admit(&limits, now).unwrap();
        l.undo(&a);
        assert!(l.admit(&limits, now).is_ok());
    }

    #[test]
    fn a_refusal_counts_nothing_at_other_levels() {
        let l = Limiter::new(1);
        let now = 1_800_000_000_000;
        let limits = vec![
            (
                "key:k".into(),
                RateLimit {
                    requests: Some(10),
                    tokens: None,
                    window: Period::Minute,
                },
            ),
            (
                "team:t".into(),
                RateLimit {
                    requests: Some(1),
                    tokens: None,
                    window: Period::Hour,
                },
            ),
        ];
        l.admit(&limits, now).unwrap();
        for _ in 0..5 {
            assert_eq!(l.admit(&limits, now).unwrap_err().scope, "team:t");
        }
        // The key's own window holds only the one admitted request.
        let key_only = &limits[..1];
        for _ in 0..9 {
            l.admit(key_only, now).unwrap();
        }
        assert!(l.admit(key_only, now).is_err());
    }

    #[test]
    fn peers_counts_add_up_to_one_cluster_wide_limit() {
        let (a, b) = (Limiter::new(1), Limiter::new(2));
        let limits = limit(Some(5), None);
        let now = 1_800_000_000_000;
        for _ in 0..3 {
            a.admit(&limits, now).unwrap();
        }
        let sent = a.unacked(2, now);
        assert_eq!(sent.len(), 1);
        for c in &sent {
            let Change::Counter { key, counter } = c else {
                unreachable!()
            };
            assert!(b.merge(key, counter, now));
            assert!(
                !b.merge(key, counter, now),
                "the same count twice is no news"
            );
        }
        a.acked(2, &sent);
        assert!(a.unacked(2, now).is_empty(), "nothing new to send");
        b.admit(&limits, now).unwrap();
        b.admit(&limits, now).unwrap();
        assert_eq!(
            b.admit(&limits, now).unwrap_err().what,
            "requests",
            "3 + 2 of 5"
        );
        // Ended windows are not taken in.
        a.admit(&limits, now).unwrap();
        let Change::Counter { key, counter } = a.unacked(2, now).remove(0) else {
            unreachable!()
        };
        assert!(!b.merge(&key, &counter, now + 120_000));
        assert!(!b.merge("spend\0key:k\0x\0y", &counter, now));
    }

    #[test]
    fn counts_are_resent_until_acknowledged_per_peer() {
        let a = Limiter::new(1);
        let limits = limit(Some(100), Some(1_000));
        let now = 1_800_000_000_000;
        let adm = a.admit(&limits, now).unwrap();
        // Lost: never acknowledged, so the next tick sends it again.
        let first = a.unacked(2, now);
        assert_eq!(first, a.unacked(2, now), "repeated until acknowledged");
        assert_eq!(a.unacked(3, now), first, "each peer on its own");
        a.acked(2, &first);
        assert!(a.unacked(2, now).is_empty());
        assert_eq!(a.unacked(3, now).len(), 1, "3 has not acknowledged");
        // Growth is sent again, and only what grew.
        a.record_tokens(&adm, 50);
        let grown = a.unacked(2, now);
        assert_eq!(grown.len(), 1);
        let Change::Counter { key, counter } = &grown[0] else {
            unreachable!()
        };
        assert!(key.ends_with("\0t"));
        assert_eq!(counter.slots.get(&1), Some(&50));
        // An acknowledgement of an older value does not cover a newer one.
        a.acked(2, &first);
        assert_eq!(a.unacked(2, now), grown);
        a.acked(2, &grown);
        assert!(a.unacked(2, now).is_empty());
        // A departed peer is forgotten; if it comes back it gets everything.
        a.keep_peers(&[3]);
        assert_eq!(a.unacked(2, now).len(), 2);
        // Ended windows are dropped, with their acknowledgements.
        assert!(a.unacked(3, now + 120_000).is_empty());
        assert!(a.windows.lock().unwrap().is_empty());
    }
}
