//! Rate limits: requests and tokens per window, per scope.
//!
//! Model (one node): fixed windows aligned to the UTC clock (`1m` windows
//! start on the minute). A request is admitted when its scope's window has
//! fewer requests than the request limit and fewer tokens than the token
//! limit; admission counts the request at once, and the request's tokens are
//! added when it finishes. So the request count never exceeds its limit, and
//! the token count exceeds its limit by at most what the requests admitted
//! before it filled up went on to use. Refusals carry the time until the
//! window ends (`Retry-After`).

use std::collections::HashMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::budgets::{Period, Scope};

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

#[derive(Default, Clone, Copy)]
struct Counts {
    requests: u64,
    tokens: u64,
}

/// The windows a request was counted in, to add its tokens to later.
#[derive(Debug, Default)]
pub struct Admitted {
    windows: Vec<(Scope, Period, u64)>,
}

#[derive(Default)]
pub struct Limiter {
    windows: Mutex<HashMap<(Scope, Period, u64), Counts>>,
}

fn window_start(p: Period, now_ms: u64) -> (u64, u64) {
    let b = super::budgets::Budget {
        limit_usd: super::budgets::Usd(0),
        period: p,
        calendar: true,
        anchor_ms: 0,
    };
    super::budgets::window(&b, now_ms)
}

impl Limiter {
    /// Admits and counts one request against every limit, or refuses it
    /// without counting anything.
    pub fn admit(
        &self,
        limits: &[(Scope, RateLimit)],
        now_ms: u64,
    ) -> Result<Admitted, RateLimited> {
        let mut windows = self.windows.lock().expect("limiter lock");
        // Old windows are dropped as time moves on; a map of live windows stays small.
        windows.retain(|(_, p, start), _| window_start(*p, now_ms).0 <= *start);
        let mut admitted = Admitted::default();
        for (scope, l) in limits {
            let (start, end) = window_start(l.window, now_ms);
            let c = windows
                .get(&(scope.clone(), l.window, start))
                .copied()
                .unwrap_or_default();
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
            let w = (scope.clone(), l.window, start);
            if !admitted.windows.contains(&w) {
                admitted.windows.push(w);
            }
        }
        for w in &admitted.windows {
            windows.entry(w.clone()).or_default().requests += 1;
        }
        Ok(admitted)
    }

    /// Un-counts a request that was admitted here but refused later (by a budget).
    pub fn undo(&self, a: &Admitted) {
        let mut windows = self.windows.lock().expect("limiter lock");
        for w in &a.windows {
            if let Some(c) = windows.get_mut(w) {
                c.requests = c.requests.saturating_sub(1);
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
            windows.entry(w.clone()).or_default().tokens += tokens;
        }
    }
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
        let l = Limiter::default();
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
        let l = Limiter::default();
        let limits = limit(Some(10), Some(100));
        let now = 1_800_000_000_000;
        let a = l.admit(&limits, now).unwrap();
        l.record_tokens(&a, 150);
        assert_eq!(l.admit(&limits, now).unwrap_err().what, "tokens");
        let l = Limiter::default();
        let limits = limit(Some(1), None);
        let a = l.admit(&limits, now).unwrap();
        l.undo(&a);
        assert!(l.admit(&limits, now).is_ok());
    }

    #[test]
    fn a_refusal_counts_nothing_at_other_levels() {
        let l = Limiter::default();
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
}
