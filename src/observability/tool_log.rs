//! The tool log: one record per MCP tool execution (from `/mcp`, agent mode
//! or Code Mode), persisted in RocksDB beside the request log and queried by
//! `GET /api/tool-logs`.
//!
//! Keys and cursors are those of the request log (`ts ms`, sequence, both
//! big-endian), so a reverse scan is newest first; so are the writer task
//! (batches, off the caller's path) and the paged scan.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::metrics::Metrics;
use super::request_log::{
    LogWriter, Logged, MAX_FIELD_BYTES, QueryError, Queued, Window, bound_size, prune, scan_page,
};
use crate::store::{self, CF_TOOL_LOGS, Store, StoreError};

/// 2 added `method`; records of 1 read as `tools/call`.
const RECORD_VERSION: u8 = 2;
const CHANNEL_CAPACITY: usize = 4096;

/// One tool execution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolLog {
    /// `ts_ms-seq`, filled in when written.
    pub id: String,
    /// Unix ms when the execution started.
    pub ts_ms: u64,
    /// `server-tool`.
    pub tool: String,
    pub server: String,
    /// The arguments as JSON text.
    pub arguments: String,
    /// The result's content as JSON text, cut to a few KiB.
    pub result: String,
    pub is_error: bool,
    pub latency_us: u64,
    pub virtual_key: Option<String>,
    /// The request that caused it (an agent-mode chat completion, a Code
    /// Mode execution); `None` for a direct `/mcp` call.
    pub parent_request: Option<String>,
    /// What the key was charged, micro-dollars.
    pub cost_micros: u64,
    /// `tools/call`, `resources/read` or `prompts/get`; `tool` is then the
    /// tool's, the resource's (or template's) or the prompt's `server-name`.
    pub method: String,
}

/// A record as version 1 wrote it.
#[derive(Deserialize)]
struct ToolLogV1 {
    id: String,
    ts_ms: u64,
    tool: String,
    server: String,
    arguments: String,
    result: String,
    is_error: bool,
    latency_us: u64,
    virtual_key: Option<String>,
    parent_request: Option<String>,
    cost_micros: u64,
}

impl From<ToolLogV1> for ToolLog {
    fn from(v: ToolLogV1) -> ToolLog {
        ToolLog {
            id: v.id,
            ts_ms: v.ts_ms,
            tool: v.tool,
            server: v.server,
            arguments: v.arguments,
            result: v.result,
            is_error: v.is_error,
            latency_us: v.latency_us,
            virtual_key: v.virtual_key,
            parent_request: v.parent_request,
            cost_micros: v.cost_micros,
            method: "tools/call".to_string(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolLogQuery {
    pub tool: Option<String>,
    pub method: Option<String>,
    pub server: Option<String>,
    pub virtual_key: Option<String>,
    pub parent_request: Option<String>,
    /// `true` for failed executions only, `false` for successful ones only.
    pub is_error: Option<bool>,
    /// Inclusive lower bound, Unix ms.
    pub since: Option<u64>,
    /// Exclusive upper bound, Unix ms.
    pub until: Option<u64>,
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl ToolLogQuery {
    fn matches(&self, r: &ToolLog) -> bool {
        fn eq(filter: &Option<String>, value: Option<&String>) -> bool {
            filter.as_ref().is_none_or(|f| value == Some(f))
        }
        eq(&self.tool, Some(&r.tool))
            && eq(&self.method, Some(&r.method))
            && eq(&self.server, Some(&r.server))
            && eq(&self.virtual_key, r.virtual_key.as_ref())
            && eq(&self.parent_request, r.parent_request.as_ref())
            && self.is_error.is_none_or(|e| e == r.is_error)
    }
}

#[derive(Debug, Serialize)]
pub struct ToolLogPage {
    pub data: Vec<ToolLog>,
    pub next_cursor: Option<String>,
}

/// Hands records to the writer. Cheap to clone.
#[derive(Clone)]
pub struct ToolLogs {
    tx: mpsc::Sender<ToolLog>,
    queued: Queued,
    store: Store,
    metrics: Arc<Metrics>,
}

/// The most of a call's arguments and of its result a record keeps.
pub const MAX_LOGGED_BYTES: usize = 4096;

/// The writer task's end.
pub type ToolLogWriter = LogWriter<ToolLog>;

impl ToolLogs {
    pub fn new(store: Store, metrics: Arc<Metrics>) -> (ToolLogs, ToolLogWriter) {
        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        let queued = Queued::default();
        (
            ToolLogs {
                tx,
                queued: queued.clone(),
                store: store.clone(),
                metrics,
            },
            LogWriter::new(rx, queued, store),
        )
    }

    /// Queues a record, its arguments and result cut to
    /// [`MAX_LOGGED_BYTES`] and its names to [`MAX_FIELD_BYTES`]; never
    /// waits (a full queue, in records or bytes, drops it with a warning).
    pub fn record(&self, log: ToolLog) {
        use super::{clip, clip_opt};
        self.metrics.usage.tool_call(
            &log.server,
            &log.tool,
            log.is_error,
            log.latency_us as f64 / 1e6,
        );
        let m = MAX_FIELD_BYTES;
        let log = ToolLog {
            tool: clip(log.tool, m),
            server: clip(log.server, m),
            arguments: clip(log.arguments, MAX_LOGGED_BYTES),
            result: clip(log.result, MAX_LOGGED_BYTES),
            virtual_key: clip_opt(log.virtual_key, m),
            parent_request: clip_opt(log.parent_request, m),
            ..log
        };
        if !self.queued.send(&self.tx, log) {
            tracing::warn!("tool log queue full: a record was dropped");
        }
    }

    /// Newest first, filtered and paged.
    pub fn query(&self, q: &ToolLogQuery) -> Result<ToolLogPage, QueryError> {
        let window = Window {
            limit: q.limit,
            cursor: q.cursor.as_deref(),
            since: q.since,
            until: q.until,
        };
        let (data, next_cursor) = scan_page(&self.store, CF_TOOL_LOGS, &window, |_, v| {
            let rec = decode(v)?;
            Ok(q.matches(&rec).then_some(rec))
        })?;
        Ok(ToolLogPage { data, next_cursor })
    }

    /// Deletes records older than `retention`.
    pub fn prune(&self, retention: Duration) -> Result<(), StoreError> {
        prune(&self.store, CF_TOOL_LOGS, retention)
    }

    /// Deletes the oldest records while the log takes more than `max_bytes`.
    pub fn bound_size(&self, max_bytes: u64) -> Result<bool, StoreError> {
        bound_size(&self.store, CF_TOOL_LOGS, max_bytes)
    }
}

impl Logged for ToolLog {
    const FAMILY: &'static str = CF_TOOL_LOGS;
    const VERSION: u8 = RECORD_VERSION;
    fn weight(&self) -> usize {
        let opt = |s: &Option<String>| s.as_ref().map_or(0, String::len);
        128 + self.id.len()
            + self.tool.len()
            + self.server.len()
            + self.arguments.len()
            + self.result.len()
            + opt(&self.virtual_key)
            + opt(&self.parent_request)
    }
    fn ts_ms(&self) -> u64 {
        self.ts_ms
    }
    fn stamp(&mut self, seq: u64) {
        self.id = format!("{}-{seq}", self.ts_ms);
    }
}

fn decode(v: &[u8]) -> Result<ToolLog, StoreError> {
    match store::versioned(v, RECORD_VERSION)? {
        (1, body) => store::decode::<ToolLogV1>(body).map(ToolLog::from),
        (_, body) => store::decode(body),
    }
}

#[cfg(test)]
mod tests {
    use tokio_util::sync::CancellationToken;

    use super::*;

    fn rec(ts: u64, tool: &str, key: &str) -> ToolLog {
        ToolLog {
            id: String::new(),
            ts_ms: ts,
            tool: tool.into(),
            server: tool.split('-').next().unwrap().into(),
            arguments: "{}".into(),
            result: "[]".into(),
            is_error: ts.is_multiple_of(3),
            latency_us: 10,
            virtual_key: Some(key.into()),
            parent_request: None,
            cost_micros: 5,
            method: "tools/call".into(),
        }
    }

    #[test]
    fn records_of_version_1_read_as_tool_calls() {
        let old = (
            String::new(),
            7u64,
            "files-echo".to_string(),
            "files".to_string(),
            "{}".to_string(),
            "[]".to_string(),
            false,
            10u64,
            Some("k".to_string()),
            None::<String>,
            5u64,
        );
        let mut bytes = vec![1];
        bytes.extend(postcard::to_allocvec(&old).unwrap());
        let r = decode(&bytes).unwrap();
        assert_eq!(
            (r.tool.as_str(), r.method.as_str(), r.cost_micros),
            ("files-echo", "tools/call", 5)
        );
        let mut now = rec(8, "files-echo", "k");
        now.method = "prompts/get".into();
        let mut bytes = vec![RECORD_VERSION];
        bytes.extend(postcard::to_allocvec(&now).unwrap());
        assert_eq!(decode(&bytes).unwrap(), now);
    }

    #[tokio::test]
    async fn records_are_written_filtered_and_paged_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (logs, writer) = ToolLogs::new(store, Arc::new(Metrics::new()));
        let cancel = CancellationToken::new();
        let task = tokio::spawn(writer.run(cancel.clone()));
        for ts in 1..=9 {
            let tool = if ts % 2 == 0 { "fs-read" } else { "git-status" };
            logs.record(rec(ts, tool, if ts < 5 { "vk_a" } else { "vk_b" }));
        }
        cancel.cancel();
        task.await.unwrap();

        let all = logs.query(&ToolLogQuery::default()).unwrap();
        let ts: Vec<u64> = all.data.iter().map(|r| r.ts_ms).collect();
        assert_eq!(ts, [9, 8, 7, 6, 5, 4, 3, 2, 1]);
        assert!(
            all.data
                .iter()
                .all(|r| r.id.starts_with(&format!("{}-", r.ts_ms)))
        );

        let q = ToolLogQuery {
            server: Some("fs".into()),
            virtual_key: Some("vk_b".into()),
            ..Default::default()
        };
        let ts: Vec<u64> = logs
            .query(&q)
            .unwrap()
            .data
            .iter()
            .map(|r| r.ts_ms)
            .collect();
        assert_eq!(ts, [8, 6]);

        let errors = ToolLogQuery {
            is_error: Some(true),
            ..Default::default()
        };
        let ts: Vec<u64> = logs
            .query(&errors)
            .unwrap()
            .data
            .iter()
            .map(|r| r.ts_ms)
            .collect();
        assert_eq!(ts, [9, 6, 3]);

        let mut q = ToolLogQuery {
            limit: Some(4),
            since: Some(2),
            ..Default::default()
        };
        let first = logs.query(&q).unwrap();
        assert_eq!(first.data.len(), 4);
        q.cursor = first.next_cursor;
        let second = logs.query(&q).unwrap();
        let ts: Vec<u64> = second.data.iter().map(|r| r.ts_ms).collect();
        assert_eq!(ts, [5, 4, 3, 2]);
    }
}
