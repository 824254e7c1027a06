//! The OTLP trace export request (`ExportTraceServiceRequest` of
//! opentelemetry-proto's `collector/trace/v1`), encoded by hand: the few
//! messages a span needs, written straight into one buffer. The tests decode
//! it with the official definitions.

use super::{SpanData, Status, Value};

/// Protobuf wire types.
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

/// The resource and scope every exported span is under.
pub struct Resource {
    pub attributes: Vec<(String, Value)>,
    pub scope_name: &'static str,
    pub scope_version: &'static str,
}

/// `ExportTraceServiceRequest { resource_spans: [ResourceSpans { resource,
/// scope_spans: [ScopeSpans { scope, spans }] }] }`.
pub fn export_request(resource: &Resource, spans: &[SpanData]) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + spans.len() * 512);
    nested(&mut out, 1, |rs| {
        nested(rs, 1, |r| {
            for (k, v) in &resource.attributes {
                nested(r, 1, |kv| key_value(kv, k, v));
            }
        });
        nested(rs, 2, |ss| {
            nested(ss, 1, |scope| {
                string(scope, 1, resource.scope_name);
                string(scope, 2, resource.scope_version);
            });
            for s in spans {
                nested(ss, 2, |out| span(out, s));
            }
        });
    });
    out
}

fn span(out: &mut Vec<u8>, s: &SpanData) {
    bytes(out, 1, &s.context.trace_id);
    bytes(out, 2, &s.context.span_id);
    if let Some(p) = &s.parent {
        bytes(out, 4, p);
    }
    string(out, 5, &s.name);
    tag(out, 6, VARINT);
    varint(out, s.kind as u64);
    tag(out, 7, FIXED64);
    out.extend_from_slice(&s.start_unix_nanos.to_le_bytes());
    tag(out, 8, FIXED64);
    out.extend_from_slice(&s.end_unix_nanos.to_le_bytes());
    for (k, v) in &s.attributes {
        nested(out, 9, |kv| key_value(kv, k, v));
    }
    if s.dropped_attributes > 0 {
        tag(out, 10, VARINT);
        varint(out, s.dropped_attributes.into());
    }
    if let Status::Error(message) = &s.status {
        nested(out, 15, |st| {
            string(st, 2, message);
            tag(st, 3, VARINT);
            varint(st, 2); // STATUS_CODE_ERROR
        });
    }
    // flags: the W3C trace flags (sampled), and that the parent's
    // remoteness is known (SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK).
    tag(out, 16, FIXED32);
    out.extend_from_slice(&(0x100u32 | u32::from(s.context.sampled)).to_le_bytes());
}

fn key_value(out: &mut Vec<u8>, key: &str, value: &Value) {
    string(out, 1, key);
    nested(out, 2, |any| match value {
        Value::Str(s) => string(any, 1, s),
        Value::Bool(b) => {
            tag(any, 2, VARINT);
            varint(any, u64::from(*b));
        }
        Value::Int(n) => {
            tag(any, 3, VARINT);
            varint(any, *n as u64);
        }
        Value::Float(f) => {
            tag(any, 4, FIXED64);
            any.extend_from_slice(&f.to_le_bytes());
        }
    });
}

fn tag(out: &mut Vec<u8>, field: u32, wire: u8) {
    varint(out, u64::from(field << 3 | u32::from(wire)));
}

fn varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn bytes(out: &mut Vec<u8>, field: u32, b: &[u8]) {
    tag(out, field, LEN);
    varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn string(out: &mut Vec<u8>, field: u32, s: &str) {
    bytes(out, field, s.as_bytes());
}

/// A length-delimited submessage written by `body`: encoded in place, then
/// its length is inserted before it.
fn nested(out: &mut Vec<u8>, field: u32, body: impl FnOnce(&mut Vec<u8>)) {
    tag(out, field, LEN);
    let start = out.len();
    body(out);
    let len = out.len() - start;
    let mut prefix = Vec::with_capacity(10);
    varint(&mut prefix, len as u64);
    out.splice(start..start, prefix);
}
