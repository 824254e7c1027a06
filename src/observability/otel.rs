//! OpenTelemetry traces: spans made on the request path, exported over OTLP
//! (HTTP/protobuf or gRPC) off it.
//!
//! ```text
//! request path ── Span::drop ──▶ bounded queue ──▶ exporter task ──▶ collector
//!                  (try_send;     (otel.max_queue)  (batches, one      (timeout,
//!                   full: drop                       export at a time)   failure:
//!                   and count)                                          count)
//! ```
//!
//! A span is a few attributes in a box; ending it is a `try_send`. Nothing on
//! the request path waits for the collector: a full queue drops the span and
//! counts it (`tollgate_otel_spans_total{outcome="dropped"}`), a failed
//! export counts its spans as `failed`.
//!
//! Context comes in and goes out as W3C `traceparent`
//! ([`SpanContext::parse`], [`SpanContext::header`]). With tracing off the
//! client's `traceparent` is passed to the upstream unchanged.

mod export;
pub mod proto;

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use http::HeaderValue;
use prometheus::IntCounter;
use tokio::sync::mpsc;

use crate::config::otel::OtelConfig;

/// Longest attribute value kept, in bytes (longer ones are clipped).
const MAX_VALUE_BYTES: usize = 1024;
/// Most attributes a span keeps; later ones are counted as dropped.
const MAX_ATTRIBUTES: usize = 64;

/// Where a span sits in a trace, as `traceparent` carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanContext {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub sampled: bool,
}

impl SpanContext {
    /// A W3C `traceparent` value (`version-traceid-parentid-flags`); `None`
    /// for anything the recommendation says to ignore. Versions above `00`
    /// are read as `00` when their first four fields have its shape.
    pub fn parse(v: &[u8]) -> Option<SpanContext> {
        if v.len() < 55 || (v.len() > 55 && v[55] != b'-') {
            return None;
        }
        let version = hex::<1>(&v[0..2])?;
        if version[0] == 0xff || (version[0] == 0 && v.len() != 55) {
            return None;
        }
        if v[2] != b'-' || v[35] != b'-' || v[52] != b'-' {
            return None;
        }
        let trace_id = hex::<16>(&v[3..35])?;
        let span_id = hex::<8>(&v[36..52])?;
        let flags = hex::<1>(&v[53..55])?;
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(SpanContext {
            trace_id,
            span_id,
            sampled: flags[0] & 1 == 1,
        })
    }

    /// From the `traceparent` header, when there is exactly one valid one.
    pub fn from_headers(headers: &http::HeaderMap) -> Option<SpanContext> {
        let mut values = headers.get_all("traceparent").iter();
        let first = values.next()?;
        if values.next().is_some() {
            return None;
        }
        SpanContext::parse(first.as_bytes())
    }

    /// This context as a `traceparent` header value.
    pub fn header(&self) -> HeaderValue {
        let mut s = String::with_capacity(55);
        s.push_str("00-");
        push_hex(&mut s, &self.trace_id);
        s.push('-');
        push_hex(&mut s, &self.span_id);
        s.push_str(if self.sampled { "-01" } else { "-00" });
        HeaderValue::from_str(&s).expect("hex is a valid header value")
    }

    pub fn trace_id_hex(&self) -> String {
        let mut s = String::with_capacity(32);
        push_hex(&mut s, &self.trace_id);
        s
    }
}

/// Lowercase hex only, as `traceparent` is written.
fn hex<const N: usize>(s: &[u8]) -> Option<[u8; N]> {
    if s.len() != 2 * N {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; N];
    for (i, pair) in s.chunks_exact(2).enumerate() {
        out[i] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

fn push_hex(s: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
}

/// A span's name: a constant, or a closure that makes it, called only when
/// the span records (so a node with tracing off formats no names).
pub trait Name {
    fn make(self) -> Cow<'static, str>;
}

impl Name for &'static str {
    fn make(self) -> Cow<'static, str> {
        Cow::Borrowed(self)
    }
}

impl<F: FnOnce() -> String> Name for F {
    fn make(self) -> Cow<'static, str> {
        Cow::Owned(self())
    }
}

/// What a span does in its trace (OTLP's `SpanKind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Internal = 1,
    Server = 2,
    Client = 3,
}

/// An attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(Cow<'static, str>),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl From<&'static str> for Value {
    fn from(s: &'static str) -> Value {
        Value::Str(Cow::Borrowed(s))
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Str(Cow::Owned(crate::observability::clip(s, MAX_VALUE_BYTES)))
    }
}

impl From<&String> for Value {
    fn from(s: &String) -> Value {
        Value::from(s.clone())
    }
}

impl From<&Arc<str>> for Value {
    fn from(s: &Arc<str>) -> Value {
        Value::from(s.to_string())
    }
}

impl From<u64> for Value {
    fn from(n: u64) -> Value {
        Value::Int(n.min(i64::MAX as u64) as i64)
    }
}

impl From<u32> for Value {
    fn from(n: u32) -> Value {
        Value::Int(n.into())
    }
}

impl From<u16> for Value {
    fn from(n: u16) -> Value {
        Value::Int(n.into())
    }
}

impl From<f64> for Value {
    fn from(n: f64) -> Value {
        Value::Float(n)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

/// A span's status (OTLP's `Status`): errors carry a message.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Status {
    #[default]
    Unset,
    Error(String),
}

/// A finished span, as the exporter encodes it.
#[derive(Debug, Clone)]
pub struct SpanData {
    pub context: SpanContext,
    pub parent: Option<[u8; 8]>,
    pub name: Cow<'static, str>,
    pub kind: Kind,
    pub start_unix_nanos: u64,
    pub end_unix_nanos: u64,
    pub attributes: Vec<(&'static str, Value)>,
    pub dropped_attributes: u32,
    pub status: Status,
}

/// A span being recorded. It ends (and is queued for export) when dropped,
/// so every path out of a request ends its spans. Unsampled spans and the
/// spans of a disabled tracer record nothing; they still carry the context
/// that `traceparent` passes on.
pub struct Span {
    context: Option<SpanContext>,
    recording: Option<Box<Recording>>,
}

struct Recording {
    data: SpanData,
    started: Instant,
    tracer: Arc<Inner>,
}

impl Span {
    /// A span that records nothing and has no context.
    pub const fn none() -> Span {
        Span {
            context: None,
            recording: None,
        }
    }

    /// What to send as `traceparent` to the next hop: this span, or with
    /// tracing off the client's own context.
    pub fn context(&self) -> Option<SpanContext> {
        self.context
    }

    pub fn is_recording(&self) -> bool {
        self.recording.is_some()
    }

    pub fn set(&mut self, key: &'static str, value: impl Into<Value>) {
        let Some(r) = self.recording.as_mut() else {
            return;
        };
        let value = value.into();
        let attrs = &mut r.data.attributes;
        if let Some(slot) = attrs.iter_mut().find(|(k, _)| *k == key) {
            slot.1 = value;
        } else if attrs.len() < MAX_ATTRIBUTES {
            attrs.push((key, value));
        } else {
            r.data.dropped_attributes += 1;
        }
    }

    /// Sets `key` when `value` is there.
    pub fn set_some(&mut self, key: &'static str, value: Option<impl Into<Value>>) {
        if let Some(v) = value {
            self.set(key, v);
        }
    }

    pub fn rename(&mut self, name: impl Name) {
        if let Some(r) = self.recording.as_mut() {
            r.data.name = name.make();
        }
    }

    /// Marks the span failed with `error.type` and a message.
    pub fn fail(&mut self, error_type: impl Into<Value>, message: impl Into<String>) {
        if self.recording.is_none() {
            return;
        }
        self.set("error.type", error_type);
        if let Some(r) = self.recording.as_mut() {
            r.data.status =
                Status::Error(crate::observability::clip(message.into(), MAX_VALUE_BYTES));
        }
    }

    /// A child of this span (recording when this one is).
    pub fn child(&self, name: impl Name, kind: Kind) -> Span {
        match &self.recording {
            Some(r) => Tracer {
                inner: Some(r.tracer.clone()),
            }
            .start(name, kind, self.context),
            None => Span {
                context: self.context,
                recording: None,
            },
        }
    }
}

impl Drop for Span {
    fn drop(&mut self) {
        let Some(r) = self.recording.take() else {
            return;
        };
        let Recording {
            mut data,
            started,
            tracer,
        } = *r;
        data.end_unix_nanos = data
            .start_unix_nanos
            .saturating_add(started.elapsed().as_nanos() as u64);
        tracer.enqueue(data);
    }
}

/// How traces are sampled: by a share of trace ids, and (parent-based) as
/// the caller's `traceparent` says when it sent one.
#[derive(Debug, Clone, Copy)]
pub struct Sampler {
    pub ratio: f64,
    pub parent_based: bool,
}

impl Sampler {
    pub fn sampled(&self, parent: Option<&SpanContext>, trace_id: &[u8; 16]) -> bool {
        if let (true, Some(p)) = (self.parent_based, parent) {
            return p.sampled;
        }
        if self.ratio >= 1.0 {
            return true;
        }
        if self.ratio <= 0.0 || self.ratio.is_nan() {
            return false;
        }
        // The trace id's random low half against the ratio's share of 2^64:
        // every node that sees the trace decides alike.
        let low = u64::from_be_bytes(trace_id[8..].try_into().expect("8 bytes"));
        (low as f64) < self.ratio * (u64::MAX as f64)
    }
}

/// Counts of spans by what became of them (`tollgate_otel_spans_total`).
#[derive(Clone)]
pub struct Counters {
    pub exported: IntCounter,
    pub dropped: IntCounter,
    pub failed: IntCounter,
}

enum Queued {
    Span(Box<SpanData>),
    /// Export what is queued now, then answer.
    Flush(tokio::sync::oneshot::Sender<()>),
}

struct Inner {
    sampler: Sampler,
    queue: mpsc::Sender<Queued>,
    counters: Counters,
}

impl Inner {
    fn enqueue(&self, data: SpanData) {
        if self.queue.try_send(Queued::Span(Box::new(data))).is_err() {
            self.counters.dropped.inc();
        }
    }
}

/// Makes spans; cheap to clone. The default tracer is off.
#[derive(Clone, Default)]
pub struct Tracer {
    inner: Option<Arc<Inner>>,
}

impl Tracer {
    /// A tracer exporting as `config` says, its exporter running on the
    /// current runtime until every clone is gone; off when `config` is.
    pub fn exporting(config: &OtelConfig, node: &str, counters: Counters) -> Tracer {
        let Some(url) = config.traces_url() else {
            return Tracer::default();
        };
        let target = match export::Target::of(config, &url) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(endpoint = %url, error = %e, "OpenTelemetry export is off: its endpoint is unusable");
                return Tracer::default();
            }
        };
        let (queue, rx) = mpsc::channel(config.max_queue);
        tokio::spawn(export::run(
            export::Exporter::new(target, config, node, counters.clone()),
            rx,
        ));
        tracing::info!(endpoint = %url, protocol = config.protocol.as_str(), ratio = config.sample_ratio, "exporting OpenTelemetry traces");
        Tracer {
            inner: Some(Arc::new(Inner {
                sampler: Sampler {
                    ratio: config.sample_ratio,
                    parent_based: config.parent_based,
                },
                queue,
                counters,
            })),
        }
    }

    pub fn is_on(&self) -> bool {
        self.inner.is_some()
    }

    /// A span under `parent` (a client's `traceparent`, or a span of this
    /// node), or the root of a new trace. Whether it records is decided here.
    pub fn start(&self, name: impl Name, kind: Kind, parent: Option<SpanContext>) -> Span {
        let Some(inner) = &self.inner else {
            // Off: the caller's context is passed on untouched.
            return Span {
                context: parent,
                recording: None,
            };
        };
        let trace_id = match &parent {
            Some(p) => p.trace_id,
            None => random_nonzero(),
        };
        let context = SpanContext {
            trace_id,
            span_id: random_nonzero(),
            sampled: inner.sampler.sampled(parent.as_ref(), &trace_id),
        };
        let recording = context.sampled.then(|| {
            Box::new(Recording {
                data: SpanData {
                    context,
                    parent: parent.map(|p| p.span_id),
                    name: name.make(),
                    kind,
                    start_unix_nanos: unix_nanos(),
                    end_unix_nanos: 0,
                    attributes: Vec::with_capacity(16),
                    dropped_attributes: 0,
                    status: Status::Unset,
                },
                started: Instant::now(),
                tracer: inner.clone(),
            })
        });
        Span {
            context: Some(context),
            recording,
        }
    }

    /// Exports what is queued, waiting at most `timeout` (graceful shutdown).
    pub async fn flush(&self, timeout: std::time::Duration) {
        let Some(inner) = &self.inner else {
            return;
        };
        let (done, answered) = tokio::sync::oneshot::channel();
        let asked = async {
            if inner.queue.send(Queued::Flush(done)).await.is_ok() {
                let _ = answered.await;
            }
        };
        if tokio::time::timeout(timeout, asked).await.is_err() {
            tracing::warn!(
                ?timeout,
                "OpenTelemetry spans were not all exported before shutdown"
            );
        }
    }
}

fn random_nonzero<const N: usize>() -> [u8; N] {
    loop {
        let mut b = [0u8; N];
        rand::Rng::fill_bytes(&mut rand::rng(), &mut b);
        if b != [0; N] {
            return b;
        }
    }
}

fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// `gen_ai.provider.name` for a provider preset: the semantic conventions'
/// well-known value where there is one, else the preset's own name.
pub fn gen_ai_provider(preset: &'static str) -> &'static str {
    match preset {
        "azure" => "azure.ai.openai",
        "gemini" => "gcp.gemini",
        "vertex" => "gcp.vertex_ai",
        "bedrock" => "aws.bedrock",
        "mistral" => "mistral_ai",
        "xai" => "x_ai",
        "watsonx" => "ibm.watsonx.ai",
        other => other,
    }
}

#[cfg(test)]
mod tests;
