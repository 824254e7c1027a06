//! The request log: one record per request, persisted in RocksDB, queried by
//! `GET /api/logs`.
//!
//! Records are keyed by `(timestamp ms, sequence)` big-endian so that a reverse
//! scan returns newest first. Writing happens on a task of its own, batched;
//! the request path only `try_send`s into a bounded channel and counts a drop
//! when the writer is behind, so a slow disk never slows a request.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::metrics::Metrics;
use crate::providers::openai::Usage;
use crate::store::{self, CF_REQUEST_LOGS, Store, StoreError};

/// Format version of stored records (see `store`). Version 2 appended
/// [`RequestLog::cache`], version 3 [`CacheLog::similarity`] (the last
/// field of both); older records read with `None` there (see
/// [`decode_record`]).
const RECORD_VERSION: u8 = 4;
/// Most bytes of a request's body, and of its answer, a record keeps.
pub const MAX_CONTENT_BYTES: usize = 64 * 1024;
/// Longest text `GET /api/logs?q=` searches for.
pub const MAX_SEARCH_BYTES: usize = 256;
const CHANNEL_CAPACITY: usize = 16 * 1024;
/// Bytes (estimated, [`Logged::weight`]) queued for the writer at most; past
/// it records are dropped and counted, as when the queue is full.
pub const MAX_QUEUED_BYTES: usize = 32 << 20;
/// The longest text field a record keeps (an error message, a model name).
pub const MAX_FIELD_BYTES: usize = 2048;
const BATCH: usize = 512;
const LINGER: Duration = Duration::from_millis(10);
/// Most rows one query examines before it returns a cursor to continue from.
const MAX_SCAN: usize = 200_000;
pub const MAX_PAGE: usize = 1000;

/// What the node remembers about one request. Never holds a provider secret:
/// `provider_key` is the key's configured name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestLog {
    pub id: String,
    /// Unix time in milliseconds when the request arrived.
    pub ts_ms: u64,
    pub endpoint: String,
    /// The model as the client wrote it.
    pub requested_model: String,
    /// Id of the virtual key the request presented, if any, and the team and
    /// customer above it.
    pub virtual_key: Option<String>,
    pub team: Option<String>,
    pub customer: Option<String>,
    /// Provider and upstream model that answered (or were tried last).
    pub provider: Option<String>,
    pub model: Option<String>,
    pub provider_key: Option<String>,
    pub stream: bool,
    /// Status sent to the client; 499 when the client went away first.
    pub status: u16,
    pub error: Option<String>,
    pub usage: LogUsage,
    /// What the request was charged, in micro-dollars: the cost of its usage
    /// (0 when the model has no price), or its reservation when a keyed
    /// request's usage never arrived.
    pub cost_micros: u64,
    pub latency_us: u64,
    pub upstream_us: u64,
    pub ttft_us: Option<u64>,
    pub overhead_us: u64,
    /// Upstream attempts made, retries and key rotations included.
    pub attempts: u32,
    /// Index of the target that answered: 0 the requested model, 1.. its fallbacks.
    pub target_index: u32,
    /// What the exact cache did, when it was on for the request. Last, and
    /// defaulted: cluster answers from nodes without it still decode.
    #[serde(default)]
    pub cache: Option<CacheLog>,
    /// The request's body and its answer, when its key, team or customer
    /// logs content (each cut to [`MAX_CONTENT_BYTES`]). Last, defaulted.
    /// (Not skipped when empty: the stored encoding is positional.)
    #[serde(default)]
    pub content: Option<Content>,
}

/// A request's body as the client sent it and the answer as the pipeline
/// saw it (OpenAI format; a stream's events as relayed), cut to
/// [`MAX_CONTENT_BYTES`] each. Headers are never kept.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Content {
    pub request: String,
    pub response: String,
    /// The answer was cut: what comes after is dropped. (Only while the
    /// record is being made; not stored.)
    #[serde(skip)]
    response_cut: bool,
}

impl Content {
    pub fn of_request(body: &[u8]) -> Content {
        let mut c = Content::default();
        push_clipped(&mut c.request, &mut false, body);
        c
    }

    /// Appends answer bytes, up to the bound; nothing after a cut.
    pub fn push_response(&mut self, bytes: &[u8]) {
        push_clipped(&mut self.response, &mut self.response_cut, bytes);
    }
}

/// Appends `bytes` (lossily as UTF-8) to `to` unless it was `cut` before;
/// past [`MAX_CONTENT_BYTES`] it is cut ([`super::clip`]: at a character,
/// marked `…`) and `cut` set.
fn push_clipped(to: &mut String, cut: &mut bool, bytes: &[u8]) {
    if *cut {
        return;
    }
    let room = MAX_CONTENT_BYTES.saturating_sub(to.len());
    // One byte past the room is enough for the cut to be seen.
    to.push_str(&String::from_utf8_lossy(
        &bytes[..bytes.len().min(room + 1)],
    ));
    if to.len() > MAX_CONTENT_BYTES {
        *to = super::clip(std::mem::take(to), MAX_CONTENT_BYTES);
        *cut = true;
    }
}

/// The cache's part of a request's record.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CacheLog {
    pub status: CacheStatus,
    /// On a hit, what the stored answer cost when it was received: what
    /// serving it again saved. 0 otherwise.
    pub saved_micros: u64,
    /// On a semantic hit, how similar the question was to the one whose
    /// answer was served; `None` on exact hits and on misses.
    #[serde(default)]
    pub similarity: Option<f32>,
}

/// Similarities are finite: they are dot products of unit vectors.
impl Eq for CacheLog {}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheStatus {
    Hit,
    Miss,
    Bypass,
}

impl CacheStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Hit => "hit",
            CacheStatus::Miss => "miss",
            CacheStatus::Bypass => "bypass",
        }
    }
}

/// Token counts as a log record keeps them: the layout of record format 1
/// (postcard is positional, and records also travel in cluster answers), so
/// it stays as it is when `Usage` grows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogUsage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
    #[serde(default)]
    pub total_tokens: u64,
    #[serde(default)]
    pub cached_tokens: u64,
}

impl From<Usage> for LogUsage {
    fn from(u: Usage) -> LogUsage {
        LogUsage {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            total_tokens: u.total_tokens,
            cached_tokens: u.cached_tokens,
        }
    }
}

/// Filters of a log query. All present filters must match.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    pub provider: Option<String>,
    pub model: Option<String>,
    /// Exact status (`429`) or a class (`2xx`, `4xx`, `5xx`).
    pub status: Option<String>,
    /// Provider key name.
    pub key: Option<String>,
    /// Virtual key id.
    pub virtual_key: Option<String>,
    pub endpoint: Option<String>,
    /// Inclusive lower bound, Unix ms.
    pub since: Option<u64>,
    /// Exclusive upper bound, Unix ms.
    pub until: Option<u64>,
    pub limit: Option<usize>,
    /// Opaque: the `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// `local` for this node's records only; by default a node in a cluster
    /// answers for every live node (`docs/admin-api.md`).
    pub node: Option<String>,
    /// Text in the logged request or answer body (ASCII case ignored);
    /// only records with content match.
    pub q: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct LogPage {
    pub data: Vec<RequestLog>,
    /// Pass as `cursor` for the next (older) page; absent at the end.
    pub next_cursor: Option<String>,
}

/// A page whose records carry their own cursors.
#[derive(Debug, Serialize, Deserialize)]
pub struct MarkedPage {
    pub data: Vec<(String, RequestLog)>,
    pub next_cursor: Option<String>,
}

/// Where each node's part of a cluster-wide query stands: absent, not read
/// yet; `Some(cursor)`, continue after it; `None`, finished.
pub type NodeCursors = std::collections::BTreeMap<String, Option<String>>;

/// Encodes the cursors of a cluster-wide page as one opaque cursor.
pub fn encode_cluster_cursor(c: &NodeCursors) -> String {
    format!(
        "m{}",
        hex(serde_json::to_string(c).expect("cursors encode").as_bytes())
    )
}

/// The node cursors of a cluster-wide cursor; `None` for a plain one.
pub fn decode_cluster_cursor(s: &str) -> Result<Option<NodeCursors>, QueryError> {
    let Some(h) = s.strip_prefix('m') else {
        return Ok(None);
    };
    if h.len() % 2 != 0 || !h.is_ascii() {
        return Err(QueryError::Cursor);
    }
    let bytes: Vec<u8> = (0..h.len() / 2)
        .map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).map_err(|_| QueryError::Cursor))
        .collect::<Result<_, _>>()?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|_| QueryError::Cursor)
}

/// Merges pages from several nodes (newest first) into one page of `limit`
/// records, each with the node it came from, and the cursors to continue
/// each node exactly after what this page showed (`None` once every node is
/// finished).
pub fn merge_pages(
    pages: Vec<(String, MarkedPage)>,
    limit: usize,
    mut cursors: NodeCursors,
) -> (Vec<(String, RequestLog)>, Option<NodeCursors>) {
    let mut all: Vec<(String, String, RequestLog)> = Vec::new();
    let mut ended = Vec::new();
    for (node, page) in pages {
        if page.next_cursor.is_none() {
            ended.push((node.clone(), page.data.len()));
        }
        all.extend(page.data.into_iter().map(|(c, r)| (node.clone(), c, r)));
    }
    all.sort_by(|a, b| {
        b.2.ts_ms
            .cmp(&a.2.ts_ms)
            .then_with(|| a.0.cmp(&b.0))
            .then_with(|| b.1.cmp(&a.1))
    });
    all.truncate(limit);
    let mut taken: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (node, cursor, _) in &all {
        *taken.entry(node).or_default() += 1;
        cursors.insert(node.clone(), Some(cursor.clone()));
    }
    for (node, n) in ended {
        if taken.get(node.as_str()).copied().unwrap_or(0) == n {
            cursors.insert(node, None);
        }
    }
    let more = cursors.values().any(Option::is_some) || all.len() == limit;
    let data = all.into_iter().map(|(n, _, r)| (n, r)).collect();
    (data, more.then_some(cursors))
}

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("invalid status filter {0:?}: use a code like 429 or a class like 5xx")]
    Status(String),
    #[error("invalid cursor")]
    Cursor,
    #[error("limit must be between 1 and {MAX_PAGE}")]
    Limit,
    #[error("q is at most {MAX_SEARCH_BYTES} bytes")]
    Search,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl LogQuery {
    /// Whether `rec` passes the exact-match filters (status is checked apart, parsed once).
    fn matches(&self, rec: &RequestLog) -> bool {
        fn eq(filter: &Option<String>, value: Option<&String>) -> bool {
            filter.as_ref().is_none_or(|f| value == Some(f))
        }
        eq(&self.provider, rec.provider.as_ref())
            && (eq(&self.model, rec.model.as_ref()) || eq(&self.model, Some(&rec.requested_model)))
            && eq(&self.key, rec.provider_key.as_ref())
            && eq(&self.virtual_key, rec.virtual_key.as_ref())
            && eq(&self.endpoint, Some(&rec.endpoint))
            && self.q.as_ref().is_none_or(|q| {
                rec.content.as_ref().is_some_and(|c| {
                    contains_ignoring_case(&c.request, q) || contains_ignoring_case(&c.response, q)
                })
            })
    }
}

/// Linear in the haystack's length, whatever the needle (at most
/// [`MAX_SEARCH_BYTES`]).
fn contains_ignoring_case(haystack: &str, needle: &str) -> bool {
    memchr::memmem::find(
        haystack.to_ascii_lowercase().as_bytes(),
        needle.to_ascii_lowercase().as_bytes(),
    )
    .is_some()
}

enum StatusFilter {
    Exact(u16),
    Class(u16),
}

impl StatusFilter {
    fn parse(s: &str) -> Result<StatusFilter, QueryError> {
        let bad = || QueryError::Status(s.to_string());
        if let Some(c) = s.strip_suffix("xx") {
            let c: u16 = c.parse().map_err(|_| bad())?;
            return (1..=5)
                .contains(&c)
                .then_some(StatusFilter::Class(c))
                .ok_or_else(bad);
        }
        s.parse().map(StatusFilter::Exact).map_err(|_| bad())
    }

    fn matches(&self, status: u16) -> bool {
        match self {
            StatusFilter::Exact(s) => *s == status,
            StatusFilter::Class(c) => status / 100 == *c,
        }
    }
}

/// Hands records to the writer task. Cheap to clone.
#[derive(Clone)]
pub struct RequestLogs {
    tx: mpsc::Sender<RequestLog>,
    queued: Queued,
    store: Store,
    metrics: Arc<Metrics>,
}

/// The bytes a log's records waiting for the writer weigh, shared by the
/// senders (who add) and the writer (who takes away once written).
#[derive(Clone, Default)]
pub struct Queued(Arc<std::sync::atomic::AtomicUsize>);

impl Queued {
    /// Sends `rec` unless the queue is full in records or in bytes; returns
    /// whether it was queued.
    pub(super) fn send<T: Logged>(&self, tx: &mpsc::Sender<T>, rec: T) -> bool {
        let w = rec.weight();
        if self.0.fetch_add(w, Ordering::Relaxed) + w > MAX_QUEUED_BYTES {
            self.0.fetch_sub(w, Ordering::Relaxed);
            return false;
        }
        if tx.try_send(rec).is_err() {
            self.0.fetch_sub(w, Ordering::Relaxed);
            return false;
        }
        true
    }

    fn written(&self, w: usize) {
        self.0.fetch_sub(w, Ordering::Relaxed);
    }

    /// Bytes waiting now.
    pub fn bytes(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// A record of a log keyed by time ([`key`]) and written by a [`LogWriter`].
pub trait Logged: Serialize + Send + 'static {
    /// The column family of the log.
    const FAMILY: &'static str;
    /// Format version of stored records.
    const VERSION: u8;
    fn ts_ms(&self) -> u64;
    /// About how many bytes the record holds (what the queue is bounded by).
    fn weight(&self) -> usize;
    /// Called with the record's sequence number just before it is stored.
    fn stamp(&mut self, _seq: u64) {}
}

impl Logged for RequestLog {
    const FAMILY: &'static str = CF_REQUEST_LOGS;
    const VERSION: u8 = RECORD_VERSION;
    fn ts_ms(&self) -> u64 {
        self.ts_ms
    }
    fn weight(&self) -> usize {
        let opt = |s: &Option<String>| s.as_ref().map_or(0, String::len);
        256 + self.id.len()
            + self.endpoint.len()
            + self.requested_model.len()
            + opt(&self.virtual_key)
            + opt(&self.team)
            + opt(&self.customer)
            + opt(&self.provider)
            + opt(&self.model)
            + opt(&self.provider_key)
            + opt(&self.error)
            + self
                .content
                .as_ref()
                .map_or(0, |c| c.request.len() + c.response.len())
    }
}

impl RequestLog {
    /// Every text field cut to [`MAX_FIELD_BYTES`].
    fn clipped(self) -> RequestLog {
        use super::{clip, clip_opt};
        let m = MAX_FIELD_BYTES;
        RequestLog {
            id: clip(self.id, m),
            endpoint: clip(self.endpoint, m),
            requested_model: clip(self.requested_model, m),
            virtual_key: clip_opt(self.virtual_key, m),
            team: clip_opt(self.team, m),
            customer: clip_opt(self.customer, m),
            provider: clip_opt(self.provider, m),
            model: clip_opt(self.model, m),
            provider_key: clip_opt(self.provider_key, m),
            error: clip_opt(self.error, m),
            ..self
        }
    }
}

/// The writer task's end; run it with [`LogWriter::run`].
pub struct LogWriter<T = RequestLog> {
    rx: mpsc::Receiver<T>,
    queued: Queued,
    store: Store,
    seq: AtomicU64,
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl RequestLogs {
    pub fn new(store: Store, metrics: Arc<Metrics>) -> (RequestLogs, LogWriter) {
        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        let queued = Queued::default();
        (
            RequestLogs {
                tx,
                queued: queued.clone(),
                store: store.clone(),
                metrics,
            },
            LogWriter::new(rx, queued, store),
        )
    }

    /// Queues a record, its fields clipped; never waits. A full queue (in
    /// records or bytes) drops it and counts the drop.
    pub fn record(&self, log: RequestLog) {
        if !self.queued.send(&self.tx, log.clipped()) {
            self.metrics.logs_dropped.inc();
        }
    }

    /// Newest first, filtered and paged.
    pub fn query(&self, q: &LogQuery) -> Result<LogPage, QueryError> {
        let page = self.query_marked(q)?;
        Ok(LogPage {
            data: page.data.into_iter().map(|(_, r)| r).collect(),
            next_cursor: page.next_cursor,
        })
    }

    /// [`RequestLogs::query`], with each record's own cursor (to continue
    /// right after it), for merging pages of several nodes.
    pub fn query_marked(&self, q: &LogQuery) -> Result<MarkedPage, QueryError> {
        let status = q.status.as_deref().map(StatusFilter::parse).transpose()?;
        if q.q.as_ref().is_some_and(|t| t.len() > MAX_SEARCH_BYTES) {
            return Err(QueryError::Search);
        }
        let window = Window {
            limit: q.limit,
            cursor: q.cursor.as_deref(),
            since: q.since,
            until: q.until,
        };
        let (data, next_cursor) = scan_page(&self.store, CF_REQUEST_LOGS, &window, |k, v| {
            let rec = decode_record(v)?;
            let keep = q.matches(&rec) && status.as_ref().is_none_or(|s| s.matches(rec.status));
            Ok(keep.then(|| (hex(k), rec)))
        })?;
        Ok(MarkedPage { data, next_cursor })
    }

    /// Visits every record with `since <= ts < until`, newest first, up to
    /// the scan cap; returns whether the cap cut the scan short.
    pub fn scan_range(
        &self,
        since: u64,
        until: u64,
        mut visit: impl FnMut(&RequestLog),
    ) -> Result<bool, QueryError> {
        let mut scanned = 0usize;
        let mut truncated = false;
        let mut failure = None;
        let start = predecessor(&key(until, 0));
        self.store.scan_rev(CF_REQUEST_LOGS, Some(&start), |k, v| {
            let ts = u64::from_be_bytes(k[..8].try_into().expect("16-byte keys"));
            if ts < since {
                return false;
            }
            if scanned == MAX_SCAN {
                truncated = true;
                return false;
            }
            scanned += 1;
            match decode_record(v) {
                Ok(rec) => visit(&rec),
                Err(e) => {
                    failure = Some(e);
                    return false;
                }
            }
            true
        })?;
        match failure {
            Some(e) => Err(e.into()),
            None => Ok(truncated),
        }
    }

    /// Deletes records older than `retention`.
    pub fn prune(&self, retention: Duration) -> Result<(), StoreError> {
        prune(&self.store, CF_REQUEST_LOGS, retention)
    }

    /// Deletes the oldest records while the log takes more than `max_bytes`.
    pub fn bound_size(&self, max_bytes: u64) -> Result<bool, StoreError> {
        bound_size(&self.store, CF_REQUEST_LOGS, max_bytes)
    }
}

impl<T: Logged> LogWriter<T> {
    pub(super) fn new(rx: mpsc::Receiver<T>, queued: Queued, store: Store) -> LogWriter<T> {
        LogWriter {
            rx,
            queued,
            store,
            seq: AtomicU64::new(0),
        }
    }

    /// Writes batches until cancelled, then drains what is queued.
    pub async fn run(mut self, cancel: CancellationToken) {
        let mut buf = Vec::with_capacity(BATCH);
        loop {
            tokio::select! {
                n = self.rx.recv_many(&mut buf, BATCH) => {
                    if n == 0 { break; }
                    self.write(&mut buf);
                    // Linger so that busy periods write a few large batches
                    // rather than one small write (and WAL append) per request.
                    tokio::select! {
                        _ = tokio::time::sleep(LINGER) => {}
                        _ = cancel.cancelled() => {}
                    }
                }
                _ = cancel.cancelled() => {
                    self.rx.close();
                    while self.rx.recv_many(&mut buf, BATCH).await > 0 {
                        self.write(&mut buf);
                    }
                    break;
                }
            }
        }
    }

    fn write(&self, buf: &mut Vec<T>) {
        let weight: usize = buf.iter().map(Logged::weight).sum();
        let rows: Vec<(Vec<u8>, Vec<u8>)> = buf
            .drain(..)
            .filter_map(|mut rec| {
                let seq = self.seq.fetch_add(1, Ordering::Relaxed);
                rec.stamp(seq);
                let k = key(rec.ts_ms(), seq);
                match store::encode(T::VERSION, &rec) {
                    Ok(v) => Some((k, v)),
                    Err(e) => {
                        tracing::error!(error = %e, log = T::FAMILY, "cannot encode a log record");
                        None
                    }
                }
            })
            .collect();
        if let Err(e) = self.store.put_batch(
            T::FAMILY,
            rows.iter().map(|(k, v)| (k.as_slice(), v.as_slice())),
        ) {
            tracing::error!(error = %e, log = T::FAMILY, records = rows.len(), "cannot write logs");
        }
        self.queued.written(weight);
    }
}

/// Which page of a time-keyed log a query asks for.
pub(super) struct Window<'a> {
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<&'a str>,
    /// Inclusive lower bound, Unix ms.
    pub since: Option<u64>,
    /// Exclusive upper bound, Unix ms.
    pub until: Option<u64>,
}

/// One page of a log keyed by [`key`], newest first: the records `read`
/// keeps (decoding each row), and the cursor of the next page. Examines at
/// most [`MAX_SCAN`] rows, then returns a cursor to continue from.
pub(super) fn scan_page<T>(
    store: &Store,
    family: &str,
    w: &Window,
    mut read: impl FnMut(&[u8], &[u8]) -> Result<Option<T>, StoreError>,
) -> Result<(Vec<T>, Option<String>), QueryError> {
    let limit = w.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_PAGE {
        return Err(QueryError::Limit);
    }
    // Scan starts strictly below the cursor, or below `until`.
    let start: Option<Vec<u8>> = match (w.cursor, w.until) {
        (Some(c), _) => Some(predecessor(&decode_cursor(c)?)),
        (None, Some(until)) => Some(predecessor(&key(until, 0))),
        (None, None) => None,
    };
    let since = w.since.unwrap_or(0);
    let mut data = Vec::new();
    let mut next_cursor = None;
    let mut scanned = 0usize;
    let mut failure = None;
    store.scan_rev(family, start.as_deref(), |k, v| {
        let Some(ts) = k
            .get(..8)
            .map(|b| u64::from_be_bytes(b.try_into().expect("8 bytes")))
        else {
            return true;
        };
        if ts < since {
            return false;
        }
        scanned += 1;
        match read(k, v) {
            Ok(Some(rec)) => data.push(rec),
            Ok(None) => {}
            Err(e) => {
                failure = Some(e);
                return false;
            }
        }
        if data.len() == limit || scanned >= MAX_SCAN {
            next_cursor = Some(hex(k));
            return false;
        }
        true
    })?;
    match failure {
        Some(e) => Err(e.into()),
        None => Ok((data, next_cursor)),
    }
}

/// Keeps a log keyed by [`key`] under `max_bytes` on disk: when it is over,
/// deletes its oldest records, a share of its time span sized to bring it
/// to three quarters of the bound (at least a tenth of the span). Returns
/// whether it deleted anything.
pub(super) fn bound_size(store: &Store, family: &str, max_bytes: u64) -> Result<bool, StoreError> {
    let size = store.approximate_bytes(family)?;
    if size <= max_bytes {
        return Ok(false);
    }
    let ts = |k: &[u8]| {
        k.get(..8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes)
    };
    let oldest = store.first_key(family)?.as_deref().and_then(ts);
    let mut newest = None;
    store.scan_rev(family, None, |k, _| {
        newest = ts(k);
        false
    })?;
    let (Some(oldest), Some(newest)) = (oldest, newest) else {
        return Ok(false);
    };
    let keep = (max_bytes as f64 * 0.75 / size as f64).min(0.9);
    let span = newest.saturating_sub(oldest);
    let cutoff = newest
        .saturating_sub((span as f64 * keep) as u64)
        .max(oldest + 1);
    store.delete_range_now(family, &key(0, 0), &key(cutoff, 0))?;
    tracing::warn!(
        log = family,
        bytes = size,
        max_bytes,
        "a log passed its size bound: its oldest records were deleted"
    );
    Ok(true)
}

/// Deletes the records of a log keyed by [`key`] older than `retention`.
pub(super) fn prune(store: &Store, family: &str, retention: Duration) -> Result<(), StoreError> {
    let cutoff = now_ms().saturating_sub(retention.as_millis() as u64);
    store.delete_range(family, &key(0, 0), &key(cutoff, 0))
}

fn decode_record(v: &[u8]) -> Result<RequestLog, StoreError> {
    match store::versioned(v, RECORD_VERSION)? {
        // Postcard is positional and writes `None` as one 0 byte: a version
        // 1 record is a version 2 record without its last field (`cache`),
        // a version 2 record with a cache outcome is a version 3 one
        // without the outcome's last (`similarity`), and a version 3 record
        // is a version 4 one without `content`. Zero bytes too many are
        // left unread.
        (1..=3, body) => {
            let mut upgraded = body.to_vec();
            upgraded.extend_from_slice(&[0, 0, 0]);
            store::decode(&upgraded)
        }
        (_, body) => store::decode(body),
    }
}

pub(super) fn key(ts_ms: u64, seq: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(16);
    k.extend_from_slice(&ts_ms.to_be_bytes());
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// The greatest 16-byte key strictly below `k` (for exclusive reverse starts).
fn predecessor(k: &[u8]) -> Vec<u8> {
    let mut n = u128::from_be_bytes(k.try_into().expect("keys are 16 bytes"));
    n = n.saturating_sub(1);
    n.to_be_bytes().to_vec()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn decode_cursor(s: &str) -> Result<Vec<u8>, QueryError> {
    if s.len() != 32 || !s.is_ascii() {
        return Err(QueryError::Cursor);
    }
    (0..16)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| QueryError::Cursor))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(ts: u64, provider: &str, status: u16) -> RequestLog {
        RequestLog {
            id: format!("r{ts}"),
            ts_ms: ts,
            endpoint: "chat".into(),
            requested_model: "m".into(),
            virtual_key: None,
            team: None,
            customer: None,
            provider: Some(provider.into()),
            model: Some("m".into()),
            provider_key: Some("k".into()),
            stream: false,
            status,
            error: None,
            usage: LogUsage::default(),
            cost_micros: 0,
            latency_us: 1,
            upstream_us: 1,
            ttft_us: None,
            overhead_us: 1,
            attempts: 1,
            target_index: 0,
            cache: None,
            content: None,
        }
    }

    #[test]
    fn version_3_records_read_as_version_4_without_content() {
        let mut r = rec(9, "p", 200);
        r.cache = Some(CacheLog {
            status: CacheStatus::Hit,
            saved_micros: 5,
            similarity: Some(0.99),
        });
        // Version 3 is version 4 without its last field (`None`: one 0 byte).
        let mut v3 = store::encode(RECORD_VERSION, &r).unwrap();
        assert_eq!(v3.pop(), Some(0));
        v3[0] = 3;
        assert_eq!(decode_record(&v3).unwrap(), r);
        let mut with = r.clone();
        with.content = Some(Content::of_request(b"{}"));
        let v4 = store::encode(RECORD_VERSION, &with).unwrap();
        assert_eq!(decode_record(&v4).unwrap(), with);
    }

    #[test]
    fn content_is_cut_at_its_bound_on_a_character() {
        let mut c = Content::of_request("é".repeat(MAX_CONTENT_BYTES).as_bytes());
        assert!(c.request.len() <= MAX_CONTENT_BYTES && c.request.ends_with('…'));
        c.push_response(b"ok");
        c.push_response(&vec![b'a'; MAX_CONTENT_BYTES]);
        assert!(c.response.starts_with("ok") && c.response.len() <= MAX_CONTENT_BYTES);
        let full = c.response.clone();
        c.push_response(b"more");
        assert_eq!(c.response, full, "nothing past the bound");
        // A cut that backs off to a character boundary leaves room below
        // the bound; nothing enters it.
        let mut c = Content::default();
        c.push_response("é".repeat(MAX_CONTENT_BYTES).as_bytes());
        let cut = c.response.clone();
        assert!(
            cut.len() < MAX_CONTENT_BYTES && cut.ends_with('…'),
            "{}",
            cut.len()
        );
        c.push_response(b"m");
        assert_eq!(c.response, cut, "not even a byte that would fit");
    }

    #[test]
    fn version_1_records_read_as_version_2_without_a_cache_outcome() {
        // A version 1 record is the postcard of every field up to
        // `target_index`: written here from a tuple of exactly those fields.
        let r = rec(7, "p", 200);
        let v1 = (
            &r.id,
            r.ts_ms,
            &r.endpoint,
            &r.requested_model,
            (&r.virtual_key, &r.team, &r.customer),
            (&r.provider, &r.model, &r.provider_key),
            r.stream,
            r.status,
            &r.error,
            r.usage,
            r.cost_micros,
            (r.latency_us, r.upstream_us, r.ttft_us, r.overhead_us),
            r.attempts,
            r.target_index,
        );
        let encoded = store::encode(1, &v1).unwrap();
        assert_eq!(decode_record(&encoded).unwrap(), r);
        let mut hit = r.clone();
        hit.cache = Some(CacheLog {
            status: CacheStatus::Hit,
            saved_micros: 12,
            similarity: None,
        });
        // Version 2: the outcome without its similarity.
        let mut v2 = store::encode(1, &v1).unwrap();
        v2[0] = 2;
        v2.extend_from_slice(&[1, 0, 12]);
        assert_eq!(decode_record(&v2).unwrap(), hit);
        let mut v2_none = store::encode(1, &v1).unwrap();
        v2_none[0] = 2;
        v2_none.push(0);
        assert_eq!(decode_record(&v2_none).unwrap(), r);
        hit.cache.as_mut().unwrap().similarity = Some(0.97);
        let v3 = store::encode(RECORD_VERSION, &hit).unwrap();
        assert_eq!(decode_record(&v3).unwrap(), hit);
    }

    #[tokio::test]
    async fn records_are_clipped_and_the_queue_is_bounded_in_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let metrics = Arc::new(Metrics::new());
        // No writer runs: everything sent stays queued.
        let (logs, _writer) = RequestLogs::new(store, metrics.clone());
        let huge = "e".repeat(4 * MAX_FIELD_BYTES);
        let mut heaviest = 0;
        for ts in 0..CHANNEL_CAPACITY as u64 {
            let mut r = rec(ts, "p", 502);
            r.error = Some(huge.clone());
            r.requested_model = huge.clone();
            r.model = Some(huge.clone());
            r.provider_key = Some(huge.clone());
            r.virtual_key = Some(huge.clone());
            r.team = Some(huge.clone());
            r.customer = Some(huge.clone());
            r.provider = Some(huge.clone());
            let clipped = r.clone().clipped();
            assert!(clipped.error.as_ref().unwrap().len() <= MAX_FIELD_BYTES);
            heaviest = heaviest.max(clipped.weight());
            logs.record(r);
        }
        assert!(heaviest <= 256 + 11 * MAX_FIELD_BYTES);
        let queued = logs.queued.bytes();
        assert!(queued <= MAX_QUEUED_BYTES, "{queued} bytes queued");
        let dropped = metrics.logs_dropped.get();
        assert!(
            dropped > 0,
            "the byte bound, not the record count, dropped some"
        );
        assert!(
            (CHANNEL_CAPACITY as u64 - dropped) as usize * heaviest >= MAX_QUEUED_BYTES - heaviest,
            "records were dropped only past the byte bound"
        );
    }

    #[tokio::test]
    async fn a_log_over_its_size_bound_loses_its_oldest_records() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (logs, writer) = RequestLogs::new(store.clone(), Arc::new(Metrics::new()));
        let cancel = CancellationToken::new();
        let task = tokio::spawn(writer.run(cancel.clone()));
        let mut rng = fastrand::Rng::with_seed(7);
        for ts in 1..=20_000u64 {
            let mut r = rec(ts, "p", 500);
            // Incompressible, so the bytes on disk are the bytes written.
            r.error = Some((0..200).map(|_| rng.alphanumeric()).collect());
            logs.record(r);
            if ts % 100 == 0 {
                tokio::task::yield_now().await;
            }
        }
        cancel.cancel();
        task.await.unwrap();
        store.flush().unwrap();
        let before = store.approximate_bytes(CF_REQUEST_LOGS).unwrap();
        // (A busy machine may drop a few records from the queue: what counts
        // is what the log held.)
        let newest = logs.query(&LogQuery::default()).unwrap().data[0].ts_ms;
        let max = before / 4;
        assert!(
            !logs.bound_size(before * 2).unwrap(),
            "under the bound, nothing goes"
        );
        let mut rounds = 0;
        while store.approximate_bytes(CF_REQUEST_LOGS).unwrap() > max {
            assert!(logs.bound_size(max).unwrap());
            rounds += 1;
            assert!(rounds <= 5, "the log does not come under its bound");
        }
        let after = store.approximate_bytes(CF_REQUEST_LOGS).unwrap();
        let page = logs.query(&LogQuery::default()).unwrap();
        assert_eq!(page.data[0].ts_ms, newest, "the newest record stays");
        let mut oldest = u64::MAX;
        logs.scan_range(0, u64::MAX, |r| oldest = oldest.min(r.ts_ms))
            .unwrap();
        println!("{before} bytes → {after} (bound {max}) in {rounds} rounds; oldest kept {oldest}");
        assert!(oldest > 10_000, "the oldest records went first: {oldest}");
    }

    #[tokio::test]
    async fn query_filters_pages_newest_first_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            let (logs, writer) = RequestLogs::new(store.clone(), Arc::new(Metrics::new()));
            let cancel = CancellationToken::new();
            let task = tokio::spawn(writer.run(cancel.clone()));
            for ts in 1..=10 {
                logs.record(rec(
                    ts,
                    if ts % 2 == 0 { "a" } else { "b" },
                    if ts == 7 { 502 } else { 200 },
                ));
            }
            cancel.cancel();
            task.await.unwrap();
            store.flush().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let (logs, _w) = RequestLogs::new(store, Arc::new(Metrics::new()));
        let q = |q: LogQuery| logs.query(&q).unwrap();
        let all = q(LogQuery::default());
        assert_eq!(
            all.data.iter().map(|r| r.ts_ms).collect::<Vec<_>>(),
            (1..=10).rev().collect::<Vec<_>>()
        );
        assert!(all.next_cursor.is_none());

        let page1 = q(LogQuery {
            provider: Some("a".into()),
            limit: Some(2),
            ..Default::default()
        });
        assert_eq!(
            page1.data.iter().map(|r| r.ts_ms).collect::<Vec<_>>(),
            vec![10, 8]
        );
        let page2 = q(LogQuery {
            provider: Some("a".into()),
            limit: Some(2),
            cursor: page1.next_cursor.clone(),
            ..Default::default()
        });
        assert_eq!(
            page2.data.iter().map(|r| r.ts_ms).collect::<Vec<_>>(),
            vec![6, 4]
        );

        let errors = q(LogQuery {
            status: Some("5xx".into()),
            ..Default::default()
        });
        assert_eq!(errors.data.len(), 1);
        assert_eq!(errors.data[0].ts_ms, 7);
        let window = q(LogQuery {
            since: Some(3),
            until: Some(6),
            ..Default::default()
        });
        assert_eq!(
            window.data.iter().map(|r| r.ts_ms).collect::<Vec<_>>(),
            vec![5, 4, 3]
        );

        assert!(matches!(
            logs.query(&LogQuery {
                status: Some("abc".into()),
                ..Default::default()
            }),
            Err(QueryError::Status(_))
        ));
        assert!(matches!(
            logs.query(&LogQuery {
                cursor: Some("zz".into()),
                ..Default::default()
            }),
            Err(QueryError::Cursor)
        ));
        assert!(matches!(
            logs.query(&LogQuery {
                limit: Some(0),
                ..Default::default()
            }),
            Err(QueryError::Limit)
        ));
    }

    /// Paging a cluster-wide query (three nodes' logs merged) visits every
    /// record exactly once, newest first, whatever the page size.
    #[tokio::test]
    async fn merged_pages_visit_every_node_record_once_in_order() {
        let mut nodes = Vec::new();
        let mut expected = Vec::new();
        for (n, stamps) in [(0u64, vec![1u64, 4, 4, 9]), (1, vec![2, 4, 8]), (2, vec![])] {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(dir.path()).unwrap();
            let (logs, writer) = RequestLogs::new(store, Arc::new(Metrics::new()));
            let cancel = CancellationToken::new();
            let task = tokio::spawn(writer.run(cancel.clone()));
            for ts in &stamps {
                logs.record(rec(*ts, "p", 200));
                expected.push((*ts, format!("n{n}")));
            }
            cancel.cancel();
            task.await.unwrap();
            nodes.push((format!("n{n}"), logs, dir));
        }
        expected.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        for limit in [1, 2, 3, 7, 20] {
            let mut seen = Vec::new();
            let mut cursors = NodeCursors::new();
            for _ in 0..20 {
                let mut pages = Vec::new();
                for (name, logs, _) in &nodes {
                    let cursor = match cursors.get(name) {
                        Some(None) => continue,
                        Some(Some(c)) => Some(c.clone()),
                        None => None,
                    };
                    let q = LogQuery {
                        cursor,
                        limit: Some(limit),
                        ..LogQuery::default()
                    };
                    pages.push((name.clone(), logs.query_marked(&q).unwrap()));
                }
                let (data, next) = merge_pages(pages, limit, cursors.clone());
                assert!(data.len() <= limit);
                seen.extend(data.into_iter().map(|(n, r)| (r.ts_ms, n)));
                match next {
                    Some(c) => {
                        let round_trip = decode_cluster_cursor(&encode_cluster_cursor(&c));
                        cursors = round_trip.unwrap().unwrap();
                    }
                    None => break,
                }
            }
            assert_eq!(seen, expected, "page size {limit}");
        }
        assert!(decode_cluster_cursor("mzz").is_err());
        assert_eq!(decode_cluster_cursor("00ff").unwrap(), None);
    }
}
