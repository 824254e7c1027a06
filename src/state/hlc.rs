//! Hybrid logical clock: timestamps that follow wall time when clocks agree
//! and stay causally ordered when they do not.
//!
//! A [`Timestamp`] is `(wall ms, counter, node)`, ordered lexicographically, so
//! two writes never tie (node ids differ) and a write made after observing
//! another is always ordered after it, however skewed the wall clocks.
//! Time comes from a [`Clock`] so tests can control it.

use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::NodeId;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Timestamp {
    pub wall_ms: u64,
    pub counter: u32,
    pub node: NodeId,
}

/// A source of wall time in Unix milliseconds.
pub trait Clock: Send + Sync {
    fn now_ms(&self) -> u64;
}

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }
}

/// A clock tests move by hand.
#[derive(Default)]
pub struct ManualClock(std::sync::atomic::AtomicU64);

impl ManualClock {
    pub fn new(ms: u64) -> ManualClock {
        ManualClock(std::sync::atomic::AtomicU64::new(ms))
    }
    pub fn set(&self, ms: u64) {
        self.0.store(ms, std::sync::atomic::Ordering::SeqCst);
    }
    pub fn advance(&self, ms: u64) {
        self.0.fetch_add(ms, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// How far ahead of this node's clock a peer's write may be stamped.
/// Further than this is a broken clock or a hostile peer, and the write is
/// refused rather than let it order every later write.
pub const MAX_AHEAD_MS: u64 = 5 * 60 * 1000;

/// One node's hybrid logical clock.
pub struct Hlc {
    node: NodeId,
    last: Mutex<Timestamp>,
}

impl Hlc {
    pub fn new(node: NodeId) -> Hlc {
        Hlc {
            node,
            last: Mutex::new(Timestamp {
                wall_ms: 0,
                counter: 0,
                node,
            }),
        }
    }

    pub fn node(&self) -> NodeId {
        self.node
    }

    /// A timestamp greater than every one this clock has issued or observed.
    pub fn tick(&self, clock: &dyn Clock) -> Timestamp {
        let now = clock.now_ms();
        let mut last = self.last.lock().expect("hlc lock");
        let next = if now > last.wall_ms {
            Timestamp {
                wall_ms: now,
                counter: 0,
                node: self.node,
            }
        } else {
            // A counter at its end moves on to the next millisecond: a
            // timestamp is never reused, and never goes back.
            match last.counter.checked_add(1) {
                Some(counter) => Timestamp {
                    wall_ms: last.wall_ms,
                    counter,
                    node: self.node,
                },
                None => Timestamp {
                    wall_ms: last.wall_ms.saturating_add(1),
                    counter: 0,
                    node: self.node,
                },
            }
        };
        *last = next;
        next
    }

    /// Notes a peer's timestamp, unless it is more than [`MAX_AHEAD_MS`]
    /// ahead of `clock`: a peer whose clock (or whose word) is that far in
    /// the future would otherwise drag every later write here with it.
    /// Returns whether the timestamp is acceptable.
    pub fn observe_remote(&self, remote: Timestamp, clock: &dyn Clock) -> bool {
        if remote.wall_ms > clock.now_ms().saturating_add(MAX_AHEAD_MS) {
            return false;
        }
        self.observe(remote);
        true
    }

    /// Notes a timestamp so that later ticks are ordered after it.
    pub fn observe(&self, remote: Timestamp) {
        let mut last = self.last.lock().expect("hlc lock");
        if (remote.wall_ms, remote.counter) > (last.wall_ms, last.counter) {
            last.wall_ms = remote.wall_ms;
            last.counter = remote.counter;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_monotonic_even_when_the_clock_goes_back() {
        let clock = ManualClock::new(1000);
        let hlc = Hlc::new(1);
        let a = hlc.tick(&clock);
        clock.set(500);
        let b = hlc.tick(&clock);
        assert!(b > a);
        assert_eq!(b.wall_ms, 1000);
        clock.set(2000);
        let c = hlc.tick(&clock);
        assert_eq!((c.wall_ms, c.counter), (2000, 0));
    }

    #[test]
    fn a_counter_at_its_end_moves_to_the_next_millisecond() {
        let clock = ManualClock::new(10);
        let hlc = Hlc::new(3);
        hlc.observe(Timestamp {
            wall_ms: 10,
            counter: u32::MAX,
            node: 1,
        });
        let t = hlc.tick(&clock);
        assert_eq!((t.wall_ms, t.counter), (11, 0));
    }

    #[test]
    fn timestamps_far_ahead_of_the_clock_are_refused() {
        let clock = ManualClock::new(1_000);
        let hlc = Hlc::new(3);
        let far = Timestamp {
            wall_ms: 1_000 + MAX_AHEAD_MS + 1,
            counter: 0,
            node: 1,
        };
        assert!(!hlc.observe_remote(far, &clock));
        assert_eq!(hlc.tick(&clock).wall_ms, 1_000);
        let near = Timestamp {
            wall_ms: 1_000 + MAX_AHEAD_MS,
            ..far
        };
        assert!(hlc.observe_remote(near, &clock));
        assert!(hlc.tick(&clock) > near);
    }

    #[test]
    fn writes_after_observing_are_ordered_after_the_observed() {
        let slow = ManualClock::new(10);
        let hlc = Hlc::new(2);
        let remote = Timestamp {
            wall_ms: 5000,
            counter: 3,
            node: 1,
        };
        hlc.observe(remote);
        let t = hlc.tick(&slow);
        assert!(t > remote, "{t:?} vs {remote:?}");
    }
}
