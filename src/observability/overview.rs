//! The dashboard's overview (`GET /api/overview`): requests, errors,
//! tokens, spend and latency percentiles per time step, from the request
//! logs — one node's ([`report`]), several nodes' summed ([`merge`]), and
//! made into series ([`Report::series`]).
//!
//! Latency is kept per bucket as a histogram with 8 bins per doubling, so
//! the nodes' histograms add up exactly and a percentile is read off the
//! merged one; the value shown is its bin's geometric middle, within 4.5%
//! of the true percentile.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::request_log::{CacheStatus, QueryError, RequestLogs};

/// Most buckets one answer holds.
pub const MAX_BUCKETS: u64 = 1_000;
/// Bins per doubling of the latency histogram.
const BINS_PER_OCTAVE: f64 = 8.0;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverviewQuery {
    /// Unix ms, inclusive; default 24 hours before `until`.
    pub since: Option<u64>,
    /// Unix ms, exclusive; default now.
    pub until: Option<u64>,
    /// Bucket width in ms; default the smallest of 1m, 5m, 15m, 1h, 6h, 1d
    /// that makes at most 100 buckets.
    pub step_ms: Option<u64>,
    /// `local` for this node only.
    #[serde(default)]
    pub node: Option<String>,
}

impl OverviewQuery {
    /// The query with its range and step explicit, or what is wrong with it.
    pub fn resolved(mut self, now_ms: u64) -> Result<OverviewQuery, String> {
        let until = self.until.unwrap_or(now_ms.saturating_add(1));
        let since = self.since.unwrap_or(until.saturating_sub(24 * 3_600_000));
        if since >= until {
            return Err("since must be before until".into());
        }
        let range = until - since;
        let step = match self.step_ms {
            Some(s) if s < 1_000 => return Err("step_ms must be at least 1000".into()),
            Some(s) => s,
            None => [60_000, 300_000, 900_000, 3_600_000, 21_600_000, 86_400_000]
                .into_iter()
                .find(|s| range.div_ceil(*s) <= 100)
                .unwrap_or(range.div_ceil(100)),
        };
        if range.div_ceil(step) > MAX_BUCKETS {
            return Err(format!(
                "{} buckets of step_ms {step} cover the range: at most {MAX_BUCKETS}",
                range.div_ceil(step)
            ));
        }
        self.since = Some(since);
        self.until = Some(until);
        self.step_ms = Some(step);
        Ok(self)
    }
}

/// One time step's counts.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    pub requests: u64,
    pub errors: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cost_micros: u64,
    pub cache_hits: u64,
    /// Latency histogram: bin → requests.
    pub latency: BTreeMap<u16, u64>,
}

impl Bucket {
    fn add(&mut self, other: &Bucket) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
        self.cost_micros += other.cost_micros;
        self.cache_hits += other.cache_hits;
        for (bin, n) in &other.latency {
            *self.latency.entry(*bin).or_default() += n;
        }
    }

    /// The latency at quantile `q` (0..=1), in µs; `None` without requests.
    pub fn quantile_us(&self, q: f64) -> Option<u64> {
        let total: u64 = self.latency.values().sum();
        if total == 0 {
            return None;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (bin, n) in &self.latency {
            seen += n;
            if seen >= rank {
                return Some(bin_middle(*bin));
            }
        }
        None
    }

    fn shown(&self) -> Value {
        json!({
            "requests": self.requests,
            "errors": self.errors,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_micros": self.cost_micros,
            "cache_hits": self.cache_hits,
            "p50_us": self.quantile_us(0.5),
            "p99_us": self.quantile_us(0.99),
        })
    }
}

/// The histogram bin of a latency: 0 holds 0–1 µs, then 8 bins per doubling.
pub fn bin_of(us: u64) -> u16 {
    if us <= 1 {
        return 0;
    }
    ((us as f64).log2() * BINS_PER_OCTAVE).floor() as u16 + 1
}

/// The geometric middle of a bin, in µs.
fn bin_middle(bin: u16) -> u64 {
    if bin == 0 {
        return 1;
    }
    let low = f64::from(bin - 1) / BINS_PER_OCTAVE;
    (2f64.powf(low + 0.5 / BINS_PER_OCTAVE)).round() as u64
}

/// One node's (or several nodes' merged) buckets of a resolved query.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub since: u64,
    pub until: u64,
    pub step_ms: u64,
    /// Bucket index → counts; buckets without requests are absent.
    pub buckets: BTreeMap<u64, Bucket>,
    /// The scan stopped at its row cap before reaching `since`.
    pub truncated: bool,
}

/// This node's buckets of `q` (resolved).
pub fn report(logs: &RequestLogs, q: &OverviewQuery) -> Result<Report, QueryError> {
    let (since, until) = (q.since.unwrap_or(0), q.until.unwrap_or(u64::MAX));
    let step = q.step_ms.unwrap_or(60_000).max(1);
    let mut buckets: BTreeMap<u64, Bucket> = BTreeMap::new();
    let truncated = logs.scan_range(since, until, |r| {
        let b = buckets.entry((r.ts_ms - since) / step).or_default();
        b.requests += 1;
        b.errors += u64::from(r.status >= 400);
        b.prompt_tokens += r.usage.prompt_tokens;
        b.completion_tokens += r.usage.completion_tokens;
        b.cost_micros += r.cost_micros;
        b.cache_hits += u64::from(r.cache.is_some_and(|c| c.status == CacheStatus::Hit));
        *b.latency.entry(bin_of(r.latency_us)).or_default() += 1;
    })?;
    Ok(Report {
        since,
        until,
        step_ms: step,
        buckets,
        truncated,
    })
}

/// Reports of the same query, summed.
pub fn merge(mut reports: Vec<Report>) -> Option<Report> {
    let mut out = reports.pop()?;
    for r in reports {
        out.truncated |= r.truncated;
        for (i, b) in r.buckets {
            out.buckets.entry(i).or_default().add(&b);
        }
    }
    Some(out)
}

impl Report {
    /// The answer: every bucket of the range in order (zeros included) and
    /// the range's totals.
    pub fn series(&self) -> Value {
        let n = (self.until - self.since).div_ceil(self.step_ms);
        let empty = Bucket::default();
        let series: Vec<Value> = (0..n)
            .map(|i| {
                let mut v = self.buckets.get(&i).unwrap_or(&empty).shown();
                v["bucket_start_ms"] = json!(self.since + i * self.step_ms);
                v
            })
            .collect();
        let mut total = Bucket::default();
        for b in self.buckets.values() {
            total.add(b);
        }
        json!({
            "since": self.since,
            "until": self.until,
            "step_ms": self.step_ms,
            "series": series,
            "totals": total.shown(),
            "truncated": self.truncated,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(since: u64, until: u64, step: Option<u64>) -> Result<OverviewQuery, String> {
        OverviewQuery {
            since: Some(since),
            until: Some(until),
            step_ms: step,
            node: None,
        }
        .resolved(0)
    }

    #[test]
    fn the_default_step_makes_at_most_100_buckets() {
        assert_eq!(q(0, 3_600_000, None).unwrap().step_ms, Some(60_000));
        assert_eq!(q(0, 86_400_000, None).unwrap().step_ms, Some(900_000));
        assert_eq!(
            q(0, 7 * 86_400_000, None).unwrap().step_ms,
            Some(21_600_000)
        );
        let long = q(0, 400 * 86_400_000, None).unwrap().step_ms.unwrap();
        assert!((400 * 86_400_000u64).div_ceil(long) <= 100);
    }

    #[test]
    fn bad_ranges_and_steps_are_refused() {
        assert!(q(5, 5, None).is_err());
        assert!(q(0, 10_000, Some(999)).is_err());
        assert!(q(0, 86_400_000, Some(1_000)).is_err(), "86,400 buckets");
    }

    #[test]
    fn quantiles_are_within_the_bin_precision() {
        for us in [1u64, 2, 3, 10, 999, 1_000, 12_345, 5_000_000, 3_600_000_000] {
            let mut b = Bucket::default();
            b.latency.insert(bin_of(us), 1);
            let got = b.quantile_us(0.5).unwrap() as f64;
            let err = (got - us as f64).abs() / us as f64;
            assert!(err <= 0.05 || us < 3, "{us} µs read as {got}");
        }
    }

    #[test]
    fn percentiles_of_merged_buckets_are_those_of_all_requests() {
        let mut a = Bucket::default();
        let mut b = Bucket::default();
        for us in 1..=90u64 {
            *a.latency.entry(bin_of(us * 1_000)).or_default() += 1;
        }
        for us in 91..=100u64 {
            *b.latency.entry(bin_of(us * 1_000)).or_default() += 1;
        }
        a.add(&b);
        let p50 = a.quantile_us(0.5).unwrap() as f64;
        let p99 = a.quantile_us(0.99).unwrap() as f64;
        assert!((p50 - 50_000.0).abs() / 50_000.0 < 0.05, "{p50}");
        assert!((p99 - 99_000.0).abs() / 99_000.0 < 0.05, "{p99}");
        assert_eq!(Bucket::default().quantile_us(0.5), None);
    }

    #[test]
    fn series_has_every_bucket_and_totals() {
        let mut buckets = BTreeMap::new();
        buckets.insert(
            2,
            Bucket {
                requests: 3,
                errors: 1,
                cost_micros: 7,
                ..Bucket::default()
            },
        );
        let r = Report {
            since: 1_000,
            until: 61_000,
            step_ms: 10_000,
            buckets,
            truncated: false,
        };
        let other = Report {
            buckets: BTreeMap::from([(
                2,
                Bucket {
                    requests: 1,
                    ..Bucket::default()
                },
            )]),
            ..r.clone()
        };
        let v = merge(vec![r, other]).unwrap().series();
        let series = v["series"].as_array().unwrap();
        assert_eq!(series.len(), 6);
        assert_eq!(series[2]["bucket_start_ms"], 21_000);
        assert_eq!(series[2]["requests"], 4);
        assert_eq!(series[0]["requests"], 0);
        assert_eq!(series[0]["p50_us"], Value::Null);
        assert_eq!(v["totals"]["requests"], 4);
        assert_eq!(v["totals"]["errors"], 1);
    }
}
