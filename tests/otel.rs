//! OpenTelemetry traces from the real binary, received by an OTLP receiver
//! in this test (HTTP/protobuf and gRPC over HTTP/2) and decoded with the
//! official opentelemetry-proto definitions.

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::Response;
use axum::routing::post;
use common::{BIN, Gateway, Proc, metrics_text, mock_provider, start_mock};
use http_body_util::StreamBody;
use hyper::body::Frame;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::{Value, json};

const CLIENT_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

/// What the receiver got: each export's path, content type and request.
#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<(String, String, ExportTraceServiceRequest)>>>);

impl Received {
    fn spans(&self) -> Vec<Span> {
        let got = self.0.lock().unwrap();
        got.iter()
            .flat_map(|(_, _, r)| r.resource_spans.iter())
            .flat_map(|rs| rs.scope_spans.iter())
            .flat_map(|ss| ss.spans.iter().cloned())
            .collect()
    }

    /// Polls until `pred` holds for the spans received, failing after 30 s.
    async fn until(&self, what: &str, pred: impl Fn(&[Span]) -> bool) -> Vec<Span> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let spans = self.spans();
            if pred(&spans) {
                return spans;
            }
            assert!(
                Instant::now() < deadline,
                "never received {what}; got {:#?}",
                spans.iter().map(|s| &s.name).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn http_export(State(r): State<Received>, headers: http::HeaderMap, body: Bytes) -> Response {
    let req = ExportTraceServiceRequest::decode(body).expect("an OTLP export request");
    let ct = header(&headers, "content-type");
    r.0.lock().unwrap().push(("/v1/traces".into(), ct, req));
    Response::builder()
        .header("content-type", "application/x-protobuf")
        .body(Body::from(
            ExportTraceServiceResponse::default().encode_to_vec(),
        ))
        .unwrap()
}

/// The gRPC method: one length-prefixed message in, one out, status in the trailers.
async fn grpc_export(State(r): State<Received>, headers: http::HeaderMap, body: Bytes) -> Response {
    assert_eq!(body[0], 0, "uncompressed");
    let len = u32::from_be_bytes(body[1..5].try_into().unwrap()) as usize;
    assert_eq!(body.len(), 5 + len, "one whole message");
    let req = ExportTraceServiceRequest::decode(&body[5..]).expect("an OTLP export request");
    let ct = header(&headers, "content-type");
    r.0.lock().unwrap().push(("grpc".into(), ct, req));
    let msg = ExportTraceServiceResponse::default().encode_to_vec();
    let mut framed = vec![0u8];
    framed.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    framed.extend_from_slice(&msg);
    let mut trailers = http::HeaderMap::new();
    trailers.insert("grpc-status", "0".parse().unwrap());
    let frames = futures_util::stream::iter(vec![
        Ok::<_, Infallible>(Frame::data(Bytes::from(framed))),
        Ok(Frame::trailers(trailers)),
    ]);
    Response::builder()
        .header("content-type", "application/grpc")
        .body(Body::new(StreamBody::new(frames)))
        .unwrap()
}

fn header(h: &http::HeaderMap, name: &str) -> String {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// An OTLP receiver on a free port (HTTP/1.1 and HTTP/2 prior knowledge).
async fn receiver() -> (SocketAddr, Received) {
    let received = Received::default();
    let app = Router::new()
        .route("/v1/traces", post(http_export))
        .route(
            "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            post(grpc_export),
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, received)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

fn attr(s: &Span, key: &str) -> Option<Any> {
    s.attributes
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| a.value.clone())
        .and_then(|v| v.value)
}

fn str_attr(s: &Span, key: &str) -> String {
    match attr(s, key) {
        Some(Any::StringValue(v)) => v,
        other => panic!("{} has no string {key}: {other:?}", s.name),
    }
}

fn int_attr(s: &Span, key: &str) -> i64 {
    match attr(s, key) {
        Some(Any::IntValue(v)) => v,
        other => panic!("{} has no int {key}: {other:?}", s.name),
    }
}

const KIND_SERVER: i32 = 2;
const KIND_CLIENT: i32 = 3;
const KIND_INTERNAL: i32 = 1;
const STATUS_ERROR: i32 = 2;

fn is_error(s: &Span) -> bool {
    s.status.as_ref().is_some_and(|st| st.code == STATUS_ERROR)
}

/// A streamed chat completion under the client's trace: the first provider
/// fails twice (one retry), the fallback answers. One server span, three
/// attempt spans under it, and the fallback got the last attempt's
/// `traceparent`.
#[tokio::test]
async fn a_streamed_request_with_a_retry_and_a_fallback_is_one_trace() {
    let (otlp, received) = receiver().await;
    let mock = start_mock(&[]).await;
    let config = format!(
        "[upstream]\nbackoff_base = \"1ms\"\nbackoff_max = \"2ms\"\n\
         [otel]\nendpoint = \"http://{otlp}\"\nexport_interval = \"100ms\"\n\
         {}{}",
        mock_provider(
            "flaky",
            &mock,
            "max_retries = 1\nheaders = { x-mock-error-rate = \"1\", x-mock-error-status = \"503\" }"
        ),
        mock_provider("steady", &mock, ""),
    );
    let gw = Gateway::start(&config).await;
    let r = reqwest::Client::new()
        .post(gw.url("/v1/chat/completions"))
        .header("traceparent", format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"))
        .json(&json!({
            "model": "flaky/mock-model",
            "fallbacks": ["steady/mock-model"],
            "stream": true,
            "stream_options": {"include_usage": true},
            "messages": [{"role": "user", "content": "hello there"}],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-tollgate-attempts"], "3");
    let body = r.text().await.unwrap();
    assert!(body.contains("[DONE]"), "{body}");

    let spans = received
        .until("a request span and three attempts", |s| {
            s.iter().filter(|s| s.kind == KIND_CLIENT).count() >= 3
                && s.iter().any(|s| s.kind == KIND_SERVER)
        })
        .await;
    let request = spans.iter().find(|s| s.kind == KIND_SERVER).unwrap();
    assert_eq!(request.name, "chat flaky/mock-model");
    assert_eq!(hex(&request.trace_id), CLIENT_TRACE);
    assert_eq!(hex(&request.parent_span_id), CLIENT_SPAN);
    assert_eq!(str_attr(request, "gen_ai.operation.name"), "chat");
    assert_eq!(
        str_attr(request, "gen_ai.request.model"),
        "flaky/mock-model"
    );
    assert_eq!(str_attr(request, "gen_ai.response.model"), "mock-model");
    assert_eq!(str_attr(request, "gen_ai.provider.name"), "mock");
    assert_eq!(str_attr(request, "tollgate.provider"), "steady");
    assert!(int_attr(request, "gen_ai.usage.input_tokens") > 0);
    assert!(int_attr(request, "gen_ai.usage.output_tokens") > 0);
    assert_eq!(int_attr(request, "http.response.status_code"), 200);
    assert_eq!(int_attr(request, "tollgate.attempts"), 3);
    assert_eq!(attr(request, "tollgate.stream"), Some(Any::BoolValue(true)));
    assert!(!is_error(request));

    let mut attempts: Vec<&Span> = spans.iter().filter(|s| s.kind == KIND_CLIENT).collect();
    attempts.sort_by_key(|s| int_attr(s, "tollgate.attempt"));
    assert_eq!(attempts.len(), 3);
    for a in &attempts {
        assert_eq!(a.trace_id, request.trace_id);
        assert_eq!(
            a.parent_span_id, request.span_id,
            "{} is the request's child",
            a.name
        );
        assert_eq!(a.name, "chat mock-model");
        assert_eq!(str_attr(a, "gen_ai.request.model"), "mock-model");
    }
    let shape: Vec<(String, i64, i64, bool)> = attempts
        .iter()
        .map(|a| {
            (
                str_attr(a, "tollgate.provider"),
                int_attr(a, "tollgate.retry"),
                int_attr(a, "tollgate.fallback_index"),
                is_error(a),
            )
        })
        .collect();
    assert_eq!(
        shape,
        vec![
            ("flaky".into(), 0, 0, true),
            ("flaky".into(), 1, 0, true),
            ("steady".into(), 0, 1, false),
        ]
    );
    for failed in &attempts[..2] {
        assert_eq!(int_attr(failed, "http.response.status_code"), 503);
        assert_eq!(str_attr(failed, "error.type"), "status_5xx");
    }
    let answered = attempts[2];
    assert!(int_attr(answered, "gen_ai.usage.output_tokens") > 0);
    // The stream's attempt lasts until the stream ends, inside the request.
    assert!(answered.end_time_unix_nano <= request.end_time_unix_nano);
    assert!(answered.start_time_unix_nano >= request.start_time_unix_nano);

    // The upstream was sent the answering attempt's context.
    let last = common::get_json(mock.url("/mock/last")).await;
    assert_eq!(
        last["traceparent"],
        format!("00-{CLIENT_TRACE}-{}-01", hex(&answered.span_id))
    );
    let exports = received.0.lock().unwrap();
    let (path, ct, first) = &exports[0];
    assert_eq!(
        (path.as_str(), ct.as_str()),
        ("/v1/traces", "application/x-protobuf")
    );
    let resource = first.resource_spans[0].resource.as_ref().unwrap();
    let service = resource
        .attributes
        .iter()
        .find(|a| a.key == "service.name")
        .and_then(|a| a.value.clone())
        .and_then(|v| v.value);
    assert_eq!(service, Some(Any::StringValue("tollgate".into())));
}

/// Runs `tollgate sample-mcp --http` at a free port.
async fn start_sample() -> Proc {
    let addr: SocketAddr = format!("127.0.0.1:{}", common::free_port())
        .parse()
        .unwrap();
    let mut child = std::process::Command::new(BIN)
        .args(["sample-mcp", "--http", &addr.to_string()])
        .env("TOLLGATE_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    common::wait_until_up(&format!("http://{addr}/health"), &mut child).await;
    Proc { child, addr }
}

async fn mcp(
    gw: &Gateway,
    key: &str,
    session: Option<&str>,
    body: Value,
) -> (Option<String>, Value) {
    let mut req = reqwest::Client::new()
        .post(gw.url("/mcp"))
        .bearer_auth(key)
        .header("accept", "application/json, text/event-stream")
        .header("traceparent", format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"))
        .json(&body);
    if let Some(s) = session {
        req = req.header("mcp-session-id", s);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), 200);
    let sid = r
        .headers()
        .get("mcp-session-id")
        .map(|v| v.to_str().unwrap().to_string());
    (sid, r.json().await.unwrap())
}

/// Over gRPC, configured only by the standard variables: a direct MCP tool
/// call is a server span with the upstream call under it, and a Code Mode
/// script is a span under its call with each of its tool calls under it.
#[tokio::test]
async fn mcp_calls_and_code_mode_scripts_are_traced_over_grpc() {
    let (otlp, received) = receiver().await;
    let sample = start_sample().await;
    let endpoint = format!("http://{otlp}");
    let gw = Gateway::start_with_env(
        "",
        tempfile::tempdir().unwrap(),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_SERVICE_NAME", "gateway-under-test"),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    )
    .await;
    let token = gw.generated_admin_token();
    let base = gw.url("");
    let (s, v) = common::admin_call(
        format!("{base}/api/mcp/servers/local"),
        &token,
        reqwest::Method::PUT,
        Some(json!({"transport": {"type": "http", "url": format!("http://{}/mcp", sample.addr)}})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, v) = common::admin_call(
            format!("{base}/api/mcp/servers/local"),
            &token,
            reqwest::Method::GET,
            None,
        )
        .await;
        if v["status"]["state"] == "connected" {
            break;
        }
        assert!(Instant::now() < deadline, "never connected: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let key = common::create_key(&gw, &token, json!({"name": "k", "tools": ["local-echo"]})).await;
    let (sid, _) = mcp(
        &gw,
        &key,
        None,
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "test", "version": "1"}}}),
    )
    .await;
    let sid = sid.expect("a session");
    let (_, called) = mcp(
        &gw,
        &key,
        Some(&sid),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
               "params": {"name": "local-echo", "arguments": {"text": "hop"}}}),
    )
    .await;
    assert_eq!(called["result"]["content"][0]["text"], "hop", "{called}");

    let direct = received
        .until("the direct call and its upstream call", |s| {
            s.iter()
                .any(|s| s.name == "tools/call local-echo" && s.kind == KIND_SERVER)
                && s.iter().any(|s| s.kind == KIND_CLIENT)
        })
        .await;
    let server = direct
        .iter()
        .find(|s| s.name == "tools/call local-echo" && s.kind == KIND_SERVER)
        .unwrap();
    assert_eq!(hex(&server.trace_id), CLIENT_TRACE);
    assert_eq!(hex(&server.parent_span_id), CLIENT_SPAN);
    assert_eq!(str_attr(server, "mcp.method.name"), "tools/call");
    assert_eq!(str_attr(server, "gen_ai.tool.name"), "local-echo");
    assert_eq!(str_attr(server, "gen_ai.operation.name"), "execute_tool");
    assert_eq!(str_attr(server, "jsonrpc.request.id"), "2");
    assert_eq!(str_attr(server, "mcp.protocol.version"), "2025-06-18");
    let upstream = direct.iter().find(|s| s.kind == KIND_CLIENT).unwrap();
    assert_eq!(upstream.parent_span_id, server.span_id);
    assert_eq!(str_attr(upstream, "tollgate.mcp.server"), "local");
    assert_eq!(str_attr(upstream, "gen_ai.tool.name"), "local-echo");

    // Code Mode on: a script with two tool calls.
    let (s, v) = common::admin_call(
        format!("{base}/api/mcp/servers/local"),
        &token,
        reqwest::Method::PATCH,
        Some(json!({"code_mode": true})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let script = "a = local.echo(text = 'one')\nb = local.echo(text = 'two')\nresult = a + b";
    let deadline = Instant::now() + Duration::from_secs(30);
    let ran = loop {
        let (_, ran) = mcp(
            &gw,
            &key,
            Some(&sid),
            json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                   "params": {"name": "executeToolCode", "arguments": {"code": script}}}),
        )
        .await;
        if ran["result"]["content"][0]["text"] == "result = \"onetwo\"\n" {
            break ran;
        }
        assert!(Instant::now() < deadline, "the script never ran: {ran}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let _ = ran;
    let spans = received
        .until("the script and its two calls", |s| {
            s.iter()
                .any(|s| s.name == "code_mode.execute" && !is_error(s))
        })
        .await;
    let script_span = spans
        .iter()
        .rev()
        .find(|s| s.name == "code_mode.execute" && !is_error(s))
        .unwrap();
    assert_eq!(script_span.kind, KIND_INTERNAL);
    let call = spans
        .iter()
        .find(|s| s.span_id == script_span.parent_span_id)
        .expect("the script's call is exported");
    assert_eq!(call.name, "tools/call executeToolCode");
    assert_eq!(call.kind, KIND_SERVER);
    assert_eq!(hex(&call.parent_span_id), CLIENT_SPAN);
    assert!(str_attr(script_span, "tollgate.code_mode.execution").starts_with("exec-"));
    let nested: Vec<&Span> = spans
        .iter()
        .filter(|s| s.parent_span_id == script_span.span_id)
        .collect();
    assert_eq!(nested.len(), 2, "one span per tool call of the script");
    for n in nested {
        assert_eq!(n.name, "tools/call local-echo");
        assert_eq!(n.kind, KIND_CLIENT);
        assert_eq!(n.trace_id, script_span.trace_id);
    }
    let exports = received.0.lock().unwrap();
    for (path, ct, req) in exports.iter() {
        assert_eq!((path.as_str(), ct.as_str()), ("grpc", "application/grpc"));
        let attrs = &req.resource_spans[0].resource.as_ref().unwrap().attributes;
        let service = attrs
            .iter()
            .find(|a| a.key == "service.name")
            .and_then(|a| a.value.clone())
            .and_then(|v| v.value);
        assert_eq!(service, Some(Any::StringValue("gateway-under-test".into())));
    }
}

/// The number in a `/metrics` line `name{labels} n`.
fn metric(text: &str, line_start: &str) -> u64 {
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// A collector that accepts connections and never answers: the one export
/// in flight waits for its long timeout, the small queue fills, later spans
/// are dropped and counted, and every request is answered meanwhile.
#[tokio::test]
async fn a_collector_that_never_answers_neither_fails_nor_holds_requests() {
    let hole = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hole_addr = hole.local_addr().unwrap();
    let held = Arc::new(Mutex::new(Vec::new()));
    let keep = held.clone();
    tokio::spawn(async move {
        loop {
            let (conn, _) = hole.accept().await.unwrap();
            keep.lock().unwrap().push(conn);
        }
    });
    let mock = start_mock(&[]).await;
    let config = format!(
        "[otel]\nendpoint = \"http://{hole_addr}\"\nexport_interval = \"10ms\"\n\
         export_timeout = \"10m\"\nmax_queue = 4\nmax_batch = 4\n{}",
        mock_provider("m", &mock, ""),
    );
    let gw = Gateway::start(&config).await;
    let client = reqwest::Client::new();
    let requests = 40;
    for i in 0..requests {
        let r = client
            .post(gw.url("/v1/chat/completions"))
            .json(&json!({"model": "m/mock-model", "stream": i % 2 == 0,
                          "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
    }
    // Two spans a request; at most one batch in flight and one queue full.
    let text = metrics_text(&gw).await;
    let dropped = metric(&text, "tollgate_otel_spans_total{outcome=\"dropped\"}");
    assert!(
        dropped >= 2 * requests - 8,
        "{dropped} dropped of {} spans",
        2 * requests
    );
    assert_eq!(
        metric(&text, "tollgate_otel_spans_total{outcome=\"exported\"}"),
        0
    );
    assert!(!held.lock().unwrap().is_empty(), "the exporter did connect");
}

/// A collector that is not there: exports fail and are counted; requests
/// are unaffected.
#[tokio::test]
async fn a_dead_collector_fails_exports_not_requests() {
    let dead = common::free_port();
    let mock = start_mock(&[]).await;
    let config = format!(
        "[otel]\nendpoint = \"http://127.0.0.1:{dead}\"\nexport_interval = \"10ms\"\n{}",
        mock_provider("m", &mock, ""),
    );
    let gw = Gateway::start(&config).await;
    for _ in 0..5 {
        let r = reqwest::Client::new()
            .post(gw.url("/v1/chat/completions"))
            .json(&common::chat_body("m/mock-model"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = metrics_text(&gw).await;
        if metric(&text, "tollgate_otel_spans_total{outcome=\"failed\"}") >= 10 {
            break;
        }
        assert!(Instant::now() < deadline, "exports never failed:\n{text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// With tracing off the gateway is transparent: the client's own
/// `traceparent` reaches the upstream unchanged.
#[tokio::test]
async fn with_tracing_off_the_clients_traceparent_passes_through() {
    let mock = start_mock(&[]).await;
    let gw = Gateway::start(&mock_provider("m", &mock, "")).await;
    let sent = format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01");
    let r = reqwest::Client::new()
        .post(gw.url("/v1/chat/completions"))
        .header("traceparent", &sent)
        .json(&common::chat_body("m/mock-model"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let last = common::get_json(mock.url("/mock/last")).await;
    assert_eq!(last["traceparent"], sent.as_str());
}
