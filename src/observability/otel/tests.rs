use super::*;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value;
use prost::Message;

const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

#[test]
fn traceparent_reads_as_the_w3c_recommendation_says() {
    let c = SpanContext::parse(VALID.as_bytes()).unwrap();
    assert_eq!(c.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(c.span_id, [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]);
    assert!(c.sampled);
    assert_eq!(
        c.header().to_str().unwrap(),
        VALID,
        "written back unchanged"
    );
    let unsampled = VALID.replace("-01", "-00");
    assert!(!SpanContext::parse(unsampled.as_bytes()).unwrap().sampled);
    // A later version with more fields is read as version 00.
    let future = format!("{}-extra", VALID.replacen("00", "01", 1));
    assert!(SpanContext::parse(future.as_bytes()).is_some());
    for bad in [
        "",
        &VALID[..54],
        &format!("{VALID}-"),           // version 00 is exactly 55
        &VALID.replacen("00", "ff", 1), // version ff is invalid
        &VALID.to_uppercase(),          // hex is lowercase
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01", // zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", // zero span id
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
        &format!("{}x", VALID.replacen("00", "01", 1)), // longer, but not with a '-'
    ] {
        assert_eq!(SpanContext::parse(bad.as_bytes()), None, "{bad:?}");
    }
}

#[test]
fn two_traceparent_headers_are_ignored() {
    let mut h = http::HeaderMap::new();
    h.append("traceparent", VALID.parse().unwrap());
    assert!(SpanContext::from_headers(&h).is_some());
    h.append("traceparent", VALID.parse().unwrap());
    assert_eq!(SpanContext::from_headers(&h), None);
}

#[test]
fn sampling_follows_the_parent_then_the_ratio() {
    let parent = SpanContext::parse(VALID.as_bytes()).unwrap();
    let unsampled = SpanContext {
        sampled: false,
        ..parent
    };
    let half = Sampler {
        ratio: 0.5,
        parent_based: true,
    };
    let id = [7u8; 16];
    assert!(half.sampled(Some(&parent), &id));
    assert!(!half.sampled(Some(&unsampled), &id));
    let ignoring = Sampler {
        ratio: 1.0,
        parent_based: false,
    };
    assert!(ignoring.sampled(Some(&unsampled), &id));
    // About half of random trace ids, and the same decision for the same id.
    let mut kept = 0;
    for _ in 0..4000 {
        let id: [u8; 16] = random_nonzero();
        let first = half.sampled(None, &id);
        assert_eq!(first, half.sampled(None, &id));
        kept += usize::from(first);
    }
    assert!((1700..2300).contains(&kept), "{kept} of 4000");
    let none = Sampler {
        ratio: 0.0,
        parent_based: false,
    };
    assert!(!none.sampled(None, &[0xff; 16]));
}

fn counters() -> Counters {
    Counters {
        exported: IntCounter::new("e", "e").unwrap(),
        dropped: IntCounter::new("d", "d").unwrap(),
        failed: IntCounter::new("f", "f").unwrap(),
    }
}

/// A tracer whose queue is read by the test instead of an exporter.
fn tracer(max_queue: usize) -> (Tracer, mpsc::Receiver<Queued>, Counters) {
    let (queue, rx) = mpsc::channel(max_queue);
    let c = counters();
    let t = Tracer {
        inner: Some(Arc::new(Inner {
            sampler: Sampler {
                ratio: 1.0,
                parent_based: true,
            },
            queue,
            counters: c.clone(),
        })),
    };
    (t, rx, c)
}

fn take(rx: &mut mpsc::Receiver<Queued>) -> Box<SpanData> {
    match rx.try_recv().expect("a span was queued") {
        Queued::Span(s) => s,
        Queued::Flush(_) => panic!("a flush"),
    }
}

#[test]
fn children_share_the_trace_and_name_their_parent() {
    let (t, mut rx, _) = tracer(8);
    let parent = SpanContext::parse(VALID.as_bytes()).unwrap();
    let root = t.start("chat m", Kind::Server, Some(parent));
    let child = root.child("chat m", Kind::Client);
    let (rc, cc) = (root.context().unwrap(), child.context().unwrap());
    assert_eq!(rc.trace_id, parent.trace_id);
    assert_eq!(cc.trace_id, parent.trace_id);
    assert_ne!(rc.span_id, parent.span_id);
    drop(child);
    drop(root);
    let (c, r) = (take(&mut rx), take(&mut rx));
    assert_eq!(c.parent, Some(rc.span_id));
    assert_eq!(r.parent, Some(parent.span_id));
    assert!(r.end_unix_nanos >= r.start_unix_nanos);
}

#[test]
fn an_unsampled_or_disabled_span_records_nothing_but_passes_context_on() {
    let (t, mut rx, _) = tracer(8);
    let parent = SpanContext {
        sampled: false,
        ..SpanContext::parse(VALID.as_bytes()).unwrap()
    };
    let mut s = t.start("x", Kind::Server, Some(parent));
    s.set("a", 1u64);
    assert!(!s.is_recording());
    assert_eq!(s.context().unwrap().trace_id, parent.trace_id);
    assert!(!s.context().unwrap().sampled);
    drop(s);
    assert!(rx.try_recv().is_err(), "nothing queued");
    let off = Tracer::default().start("x", Kind::Server, Some(parent));
    assert_eq!(off.context(), Some(parent), "off: the caller's own context");
    assert_eq!(
        Tracer::default().start("x", Kind::Server, None).context(),
        None
    );
}

#[test]
fn a_full_queue_drops_and_counts_without_waiting() {
    let (t, _rx, c) = tracer(2);
    for _ in 0..5 {
        drop(t.start("x", Kind::Internal, None));
    }
    assert_eq!(c.dropped.get(), 3);
}

#[test]
fn attributes_are_bounded_in_number_and_size() {
    let (t, mut rx, _) = tracer(2);
    let mut s = t.start("x", Kind::Internal, None);
    for i in 0..70 {
        let key: &'static str = Box::leak(format!("k{i:02}").into_boxed_str());
        s.set(key, "v");
    }
    s.set("k00", "x".repeat(10_000));
    drop(s);
    let d = take(&mut rx);
    assert_eq!(d.attributes.len(), MAX_ATTRIBUTES);
    assert_eq!(d.dropped_attributes, 6);
    let Value::Str(v) = &d.attributes[0].1 else {
        panic!()
    };
    assert!(v.len() <= MAX_VALUE_BYTES, "{}", v.len());
}

#[test]
fn the_export_request_decodes_with_the_official_definitions() {
    let (t, mut rx, _) = tracer(4);
    let parent = SpanContext::parse(VALID.as_bytes()).unwrap();
    let mut root = t.start("chat gpt-4o", Kind::Server, Some(parent));
    root.set("gen_ai.request.model", "gpt-4o");
    root.set("gen_ai.usage.input_tokens", 12u64);
    root.set("tollgate.stream", true);
    root.set("tollgate.ratio", 0.5f64);
    let mut child = root.child("chat gpt-4o", Kind::Client);
    child.fail("status_5xx", "provider 'a' answered 503");
    let (rc, cc) = (root.context().unwrap(), child.context().unwrap());
    drop(child);
    drop(root);
    let spans = vec![*take(&mut rx), *take(&mut rx)];
    let resource = proto::Resource {
        attributes: vec![("service.name".into(), "tollgate".into())],
        scope_name: "tollgate",
        scope_version: "0.1.0",
    };
    let bytes = proto::export_request(&resource, &spans);
    let req = ExportTraceServiceRequest::decode(bytes.as_slice()).unwrap();
    let rs = &req.resource_spans[0];
    let attr = rs.resource.as_ref().unwrap().attributes[0].clone();
    assert_eq!(attr.key, "service.name");
    let ss = &rs.scope_spans[0];
    assert_eq!(ss.scope.as_ref().unwrap().name, "tollgate");
    let (c, r) = (&ss.spans[0], &ss.spans[1]);
    assert_eq!(r.name, "chat gpt-4o");
    assert_eq!(r.kind, 2, "server");
    assert_eq!(c.kind, 3, "client");
    assert_eq!(r.trace_id, parent.trace_id.to_vec());
    assert_eq!(r.span_id, rc.span_id.to_vec());
    assert_eq!(r.parent_span_id, parent.span_id.to_vec());
    assert_eq!(c.parent_span_id, rc.span_id.to_vec());
    assert_eq!(c.span_id, cc.span_id.to_vec());
    assert!(r.end_time_unix_nano >= r.start_time_unix_nano && r.start_time_unix_nano > 0);
    assert_eq!(r.flags & 0xff, 1, "sampled");
    let value = |key: &str| {
        r.attributes
            .iter()
            .find(|a| a.key == key)
            .and_then(|a| a.value.clone())
            .and_then(|v| v.value)
    };
    assert_eq!(
        value("gen_ai.request.model"),
        Some(any_value::Value::StringValue("gpt-4o".into()))
    );
    assert_eq!(
        value("gen_ai.usage.input_tokens"),
        Some(any_value::Value::IntValue(12))
    );
    assert_eq!(
        value("tollgate.stream"),
        Some(any_value::Value::BoolValue(true))
    );
    assert_eq!(
        value("tollgate.ratio"),
        Some(any_value::Value::DoubleValue(0.5))
    );
    let status = c.status.as_ref().unwrap();
    assert_eq!(status.code, 2, "error");
    assert_eq!(status.message, "provider 'a' answered 503");
}
