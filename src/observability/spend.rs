//! Spend and usage reports (`GET /api/spend`), aggregated from request logs
//! by key, team, customer, provider or model, per time bucket: one node's
//! ([`report`]), and several nodes' summed ([`merge`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::request_log::{CacheStatus, QueryError, RequestLog, RequestLogs};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    Key,
    Team,
    Customer,
    Provider,
    Model,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Bucket {
    #[serde(rename = "1h")]
    Hour,
    #[serde(rename = "1d")]
    Day,
    /// One bucket for the whole range.
    #[serde(rename = "all")]
    All,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpendQuery {
    pub group_by: GroupBy,
    /// Unix ms, inclusive; default 24 hours before `until`.
    pub since: Option<u64>,
    /// Unix ms, exclusive; default now.
    pub until: Option<u64>,
    #[serde(default = "all")]
    pub bucket: Bucket,
    /// `local` for this node's requests only; by default a node in a
    /// cluster reports for every live node.
    #[serde(default)]
    pub node: Option<String>,
}

impl SpendQuery {
    /// The query with its time range made explicit (defaults applied at `now_ms`).
    pub fn resolved(mut self, now_ms: u64) -> SpendQuery {
        let until = self.until.unwrap_or(now_ms.saturating_add(1));
        self.since = Some(self.since.unwrap_or(until.saturating_sub(24 * 3_600_000)));
        self.until = Some(until);
        self
    }
}

fn all() -> Bucket {
    Bucket::All
}

#[derive(Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Row {
    /// The group's value; `null` for requests without one (e.g. no key).
    pub group: Option<String>,
    pub bucket_start_ms: u64,
    pub requests: u64,
    pub errors: u64,
    pub cost_micros: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Requests the response cache answered (they cost 0).
    #[serde(default)]
    pub cache_hits: u64,
    /// What those answers cost when they were first received: what the
    /// cache saved.
    #[serde(default)]
    pub saved_micros: u64,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct SpendReport {
    pub since: u64,
    pub until: u64,
    pub data: Vec<Row>,
    /// The scan stopped at its row cap before reaching `since`.
    pub truncated: bool,
}

fn group_of(r: &RequestLog, g: GroupBy) -> Option<String> {
    match g {
        GroupBy::Key => r.virtual_key.clone(),
        GroupBy::Team => r.team.clone(),
        GroupBy::Customer => r.customer.clone(),
        GroupBy::Provider => r.provider.clone(),
        GroupBy::Model => r.model.clone(),
    }
}

/// Several nodes' reports of the same query, summed row by row.
pub fn merge(reports: Vec<SpendReport>) -> SpendReport {
    let mut out = SpendReport {
        since: reports.first().map_or(0, |r| r.since),
        until: reports.first().map_or(0, |r| r.until),
        data: Vec::new(),
        truncated: false,
    };
    let mut rows: BTreeMap<(u64, Option<String>), Row> = BTreeMap::new();
    for r in reports {
        out.truncated |= r.truncated;
        for row in r.data {
            let sum = rows
                .entry((row.bucket_start_ms, row.group.clone()))
                .or_insert_with(|| Row {
                    group: row.group.clone(),
                    bucket_start_ms: row.bucket_start_ms,
                    ..Row::default()
                });
            sum.requests += row.requests;
            sum.errors += row.errors;
            sum.cost_micros += row.cost_micros;
            sum.prompt_tokens += row.prompt_tokens;
            sum.completion_tokens += row.completion_tokens;
            sum.cache_hits += row.cache_hits;
            sum.saved_micros += row.saved_micros;
        }
    }
    out.data = rows.into_values().collect();
    out
}

pub fn report(logs: &RequestLogs, q: &SpendQuery, now_ms: u64) -> Result<SpendReport, QueryError> {
    let until = q.until.unwrap_or(now_ms.saturating_add(1));
    let since = q.since.unwrap_or(until.saturating_sub(24 * 3_600_000));
    let width = match q.bucket {
        Bucket::Hour => 3_600_000,
        Bucket::Day => 86_400_000,
        Bucket::All => 0,
    };
    let mut rows: BTreeMap<(u64, Option<String>), Row> = BTreeMap::new();
    let truncated = logs.scan_range(since, until, |r| {
        let bucket = r.ts_ms.checked_div(width).map_or(since, |n| n * width);
        let group = group_of(r, q.group_by);
        let row = rows.entry((bucket, group.clone())).or_insert_with(|| Row {
            group,
            bucket_start_ms: bucket,
            ..Row::default()
        });
        row.requests += 1;
        row.errors += u64::from(r.status >= 400);
        row.cost_micros += r.cost_micros;
        row.prompt_tokens += r.usage.prompt_tokens;
        row.completion_tokens += r.usage.completion_tokens;
        if let Some(c) = r.cache.filter(|c| c.status == CacheStatus::Hit) {
            row.cache_hits += 1;
            row.saved_micros += c.saved_micros;
        }
    })?;
    Ok(SpendReport {
        since,
        until,
        data: rows.into_values().collect(),
        truncated,
    })
}
