//! `/mcp`: the gateway as one MCP server (streamable HTTP: `POST`, `GET`
//! stream, `DELETE`), showing each virtual key exactly the tools it may use.
//!
//! The endpoint is written over axum with rmcp's model types rather than
//! rmcp's session manager, because its sessions must outlive the node that
//! opened them: the session id is sealed ([`super::session`]) and every
//! request carries everything needed to serve it, so any node behind the load
//! balancer can answer any request of any session. Answers are plain JSON
//! (`application/json`), which every streamable-HTTP client accepts; the
//! `GET` stream carries `notifications/tools/list_changed`.
//!
//! Phases of a request: check the `Host` → authenticate the virtual key →
//! open the session (all but `initialize`) → dispatch the JSON-RPC method.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use rmcp::model::{
    CallToolRequestParams, CallToolResult, Implementation, InitializeResult, ProtocolVersion,
    ServerCapabilities,
};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::call::ToolCalls;
use super::session::{Sealer, Session};
use super::upstream::Upstreams;
use crate::codemode::meta::{self, CodeMode, MetaTool};
use crate::governance::{Governance, KeyView};
use crate::observability::otel::{Kind, Span, SpanContext, Tracer};
use crate::observability::tool_log::ToolLogs;

/// The header carrying the session id.
pub const SESSION_HEADER: &str = "mcp-session-id";
/// Results longer than this are cut in the tool log.
const KEEPALIVE: Duration = Duration::from_secs(15);

// JSON-RPC error codes.
const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;
const METHOD_NOT_FOUND: i64 = -32601;
const INVALID_PARAMS: i64 = -32602;
/// Refused by policy (budget, rate limit); in the implementation-defined range.
const REFUSED: i64 = -32000;

#[derive(Clone)]
pub struct McpState {
    pub upstreams: Arc<Upstreams>,
    pub governance: Arc<Governance>,
    pub tool_logs: ToolLogs,
    pub tracer: Tracer,
    pub sealer: Sealer,
    /// Lower-case host names; `*` accepts any.
    pub allowed_hosts: Arc<Vec<String>>,
    pub session_ttl: Duration,
    /// Cancelled when the node starts draining: open `GET` streams end.
    pub closing: CancellationToken,
    /// `[mcp] agent_max_depth`.
    pub agent_max_depth: u32,
    /// `[server] max_body_bytes`.
    pub max_body_bytes: usize,
    pub code_mode: Arc<CodeMode>,
    /// Open `GET /mcp` streams, bounded on the node and per key.
    pub streams: Arc<crate::governance::slots::Slots>,
}

impl McpState {
    /// What a governed tool call needs of this state.
    pub fn calls(&self) -> ToolCalls {
        ToolCalls {
            upstreams: self.upstreams.clone(),
            governance: self.governance.clone(),
            tool_logs: self.tool_logs.clone(),
            tracer: self.tracer.clone(),
        }
    }
}

pub fn routes(state: McpState) -> Router {
    Router::new()
        .route("/mcp", post(post_mcp).get(get_mcp).delete(delete_mcp))
        .with_state(state)
}

/// A JSON-RPC error answer with an HTTP status.
pub struct RpcError {
    status: StatusCode,
    id: Value,
    code: i64,
    message: String,
}

impl IntoResponse for RpcError {
    fn into_response(self) -> Response {
        let body = json!({"jsonrpc": "2.0", "id": self.id,
            "error": {"code": self.code, "message": self.message}});
        (self.status, axum::Json(body)).into_response()
    }
}

fn refusal(status: StatusCode, id: Value, code: i64, message: impl Into<String>) -> RpcError {
    RpcError {
        status,
        id,
        code,
        message: message.into(),
    }
}

fn rpc_error(status: StatusCode, id: Value, code: i64, message: impl Into<String>) -> Response {
    refusal(status, id, code, message).into_response()
}

/// A JSON-RPC result. Encoded straight from `result` (no `Value` tree in
/// between), so pre-encoded parts pass through as they are.
#[derive(serde::Serialize)]
pub struct RpcResult<T> {
    jsonrpc: &'static str,
    id: Value,
    result: T,
}

impl<T> RpcResult<T> {
    pub fn new(id: Value, result: T) -> RpcResult<T> {
        RpcResult {
            jsonrpc: "2.0",
            id,
            result,
        }
    }
}

fn rpc_result(id: Value, result: impl serde::Serialize) -> Response {
    axum::Json(RpcResult::new(id, result)).into_response()
}

/// The host a request names, without its port, lower-cased: its `Host`
/// header, or for HTTP/2 (which may send none) its URI's authority.
fn request_host(headers: &HeaderMap, uri: &Uri) -> Option<String> {
    let raw = match headers.get(header::HOST) {
        Some(h) => h.to_str().ok()?.trim(),
        None => uri.authority()?.as_str(),
    };
    let host = if let Some(rest) = raw.strip_prefix('[') {
        rest.split(']').next()?
    } else {
        raw.rsplit_once(':').map_or(raw, |(h, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                raw
            }
        })
    };
    Some(host.to_ascii_lowercase())
}

impl McpState {
    /// Host check and authentication, common to every method.
    fn admit(&self, headers: &HeaderMap, uri: &Uri) -> Result<Arc<KeyView>, RpcError> {
        let host_ok = self.allowed_hosts.iter().any(|h| h == "*")
            || request_host(headers, uri).is_some_and(|h| self.allowed_hosts.contains(&h));
        if !host_ok {
            return Err(refusal(
                StatusCode::FORBIDDEN,
                Value::Null,
                INVALID_REQUEST,
                "this Host is not allowed for /mcp (see [mcp] allowed_hosts)",
            ));
        }
        let Some(secret) = crate::proxy::presented_key(headers) else {
            return Err(refusal(
                StatusCode::UNAUTHORIZED,
                Value::Null,
                INVALID_REQUEST,
                "send your virtual key as 'Authorization: Bearer sk-tg-...'",
            ));
        };
        self.governance.authenticate(secret).map_err(|e| {
            refusal(
                StatusCode::UNAUTHORIZED,
                Value::Null,
                INVALID_REQUEST,
                e.to_string(),
            )
        })
    }

    /// The session a request continues; it must belong to the presenting key.
    fn session(&self, headers: &HeaderMap, key: &KeyView, id: &Value) -> Result<Session, RpcError> {
        let Some(sealed) = headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok()) else {
            return Err(refusal(
                StatusCode::BAD_REQUEST,
                id.clone(),
                INVALID_REQUEST,
                "missing Mcp-Session-Id: send initialize first",
            ));
        };
        let ttl = self.session_ttl.as_millis() as u64;
        match self.sealer.open(sealed, self.governance.now_ms(), ttl) {
            Ok(s) if s.key_id == key.key.id => Ok(s),
            // 404 tells the client to initialize a new session.
            _ => Err(refusal(
                StatusCode::NOT_FOUND,
                id.clone(),
                INVALID_REQUEST,
                "unknown or expired session",
            )),
        }
    }
}

/// The version to answer `initialize` with: the client's if this gateway
/// knows it and it still has the handshake, else the newest that does.
/// One JSON-RPC request of a POSTed body, as far as `/mcp` dispatches on it.
pub struct RpcRequest {
    pub id: Value,
    pub method: String,
    pub params: Value,
}

/// Reads a POSTed body: `Ok(None)` for a notification or a response to the
/// gateway (nothing to answer), an error answer for anything that is not
/// one JSON-RPC message.
pub fn read_message(body: &[u8]) -> Result<Option<RpcRequest>, RpcError> {
    let msg: Value = serde_json::from_slice(body).map_err(|e| {
        refusal(
            StatusCode::BAD_REQUEST,
            Value::Null,
            PARSE_ERROR,
            e.to_string(),
        )
    })?;
    let Value::Object(mut obj) = msg else {
        return Err(refusal(
            StatusCode::BAD_REQUEST,
            Value::Null,
            INVALID_REQUEST,
            "expected one JSON-RPC message (batches are not supported)",
        ));
    };
    let method = match obj.get("method") {
        Some(Value::String(m)) => m.clone(),
        _ => return Ok(None),
    };
    let Some(id) = obj.remove("id") else {
        return Ok(None);
    };
    let params = obj.remove("params").unwrap_or(Value::Null);
    Ok(Some(RpcRequest { id, method, params }))
}

/// The session-based version a client's `initialize` settles on.
pub fn negotiate(requested: Option<&str>) -> ProtocolVersion {
    ProtocolVersion::KNOWN_VERSIONS
        .iter()
        .find(|v| Some(v.as_str()) == requested && v.has_initialize())
        .cloned()
        .unwrap_or(ProtocolVersion::LATEST_WITH_INITIALIZE)
}

async fn post_mcp(
    State(s): State<McpState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let key = match s.admit(&headers, &uri) {
        Ok(k) => k,
        Err(r) => return r.into_response(),
    };
    let RpcRequest { id, method, params } = match read_message(&body) {
        Ok(Some(r)) => r,
        // A notification or a response to us: nothing to answer.
        Ok(None) => return StatusCode::ACCEPTED.into_response(),
        Err(e) => return e.into_response(),
    };
    let method = method.as_str();
    let mut span = request_span(&s.tracer, &headers, method, &id, &params);
    if method == "initialize" {
        return initialize(&s, &key, id, &params);
    }
    match s.session(&headers, &key, &id) {
        Ok(session) => span.set("mcp.protocol.version", session.protocol_version),
        Err(r) => {
            span.fail("invalid_session", "unknown, expired or missing session");
            return r.into_response();
        }
    }
    match method {
        "ping" => rpc_result(id, json!({})),
        // Encoded when the index was built; a listing only joins bytes.
        "tools/list" => rpc_result(id, s.upstreams.index().list_json(&key.tools)),
        "tools/call" => match serde_json::from_value::<CallToolRequestParams>(params) {
            Ok(p) => call_tool(&s, &key, id, p, &mut span).await,
            Err(e) => {
                span.fail(INVALID_PARAMS.to_string(), e.to_string());
                rpc_error(StatusCode::OK, id, INVALID_PARAMS, e.to_string())
            }
        },
        other => rpc_error(
            StatusCode::OK,
            id,
            METHOD_NOT_FOUND,
            format!("method not found: {other}"),
        ),
    }
}

fn initialize(s: &McpState, key: &KeyView, id: Value, params: &Value) -> Response {
    let version = negotiate(params.get("protocolVersion").and_then(Value::as_str));
    let sealed = s.sealer.seal(&Session {
        key_id: key.key.id.clone(),
        issued_ms: s.governance.now_ms(),
        protocol_version: version.to_string(),
    });
    let mut result = InitializeResult::new(
        ServerCapabilities::builder()
            .enable_tools()
            .enable_tool_list_changed()
            .build(),
    );
    result.protocol_version = version;
    result.server_info = Implementation::new("tollgate", env!("CARGO_PKG_VERSION"));
    result.instructions =
        Some("Tools of every MCP server this gateway connects, named server-tool.".to_string());
    let mut r = rpc_result(id, result);
    r.headers_mut().insert(
        SESSION_HEADER,
        HeaderValue::from_str(&sealed).expect("sealed ids are visible ASCII"),
    );
    r
}

/// The span of one `/mcp` request (the MCP semantic conventions), under the
/// caller's `traceparent` header or, as MCP carries it, `params._meta.traceparent`.
fn request_span(
    tracer: &Tracer,
    headers: &HeaderMap,
    method: &str,
    id: &Value,
    params: &Value,
) -> Span {
    let parent = SpanContext::from_headers(headers).or_else(|| {
        params
            .pointer("/_meta/traceparent")
            .and_then(Value::as_str)
            .and_then(|t| SpanContext::parse(t.as_bytes()))
    });
    let tool = (method == "tools/call")
        .then(|| params.get("name").and_then(Value::as_str))
        .flatten();
    let name = || match tool {
        Some(t) => format!("{method} {t}"),
        None => method.to_string(),
    };
    let mut span = tracer.start(name, Kind::Server, parent);
    if span.is_recording() {
        span.set("mcp.method.name", method.to_string());
        span.set("network.transport", "tcp");
        span.set("network.protocol.name", "http");
        match id {
            Value::String(s) => span.set("jsonrpc.request.id", s.clone()),
            Value::Number(n) => span.set("jsonrpc.request.id", n.to_string()),
            _ => {}
        }
        if let Some(t) = tool {
            span.set("gen_ai.tool.name", t.to_string());
            span.set("gen_ai.operation.name", "execute_tool");
        }
    }
    span
}

/// Resolves, admits, charges, executes and logs one tool call.
async fn call_tool(
    s: &McpState,
    key: &KeyView,
    id: Value,
    p: CallToolRequestParams,
    span: &mut Span,
) -> Response {
    let index = s.upstreams.index();
    if let Some(m) = MetaTool::offered(&p.name, &index, &key.tools) {
        let call = meta::Call {
            key,
            parent: None,
            trace: span.context(),
            auto_only: false,
        };
        let outcome = meta::call(&s.calls(), &s.code_mode, m, p.arguments, call).await;
        return tool_answer(id, outcome, span);
    }
    // A tool outside the key's scope is refused exactly like one that does
    // not exist, so names cannot be probed. Code Mode tools are reached
    // through the meta-tools only.
    let Some(tool) = index.get_direct(&key.tools, &p.name) else {
        span.fail(INVALID_PARAMS.to_string(), "unknown tool");
        return rpc_error(
            StatusCode::OK,
            id,
            INVALID_PARAMS,
            format!("unknown tool: {}", p.name),
        );
    };
    let outcome = s
        .calls()
        .execute(key, tool, p.arguments, None, span.context())
        .await;
    tool_answer(id, outcome, span)
}

fn tool_answer(id: Value, outcome: Result<CallToolResult, String>, span: &mut Span) -> Response {
    match &outcome {
        Ok(r) if r.is_error == Some(true) => span.fail("tool_error", "the tool answered an error"),
        Ok(_) => {}
        Err(refused) => span.fail(REFUSED.to_string(), refused.clone()),
    }
    match outcome {
        Ok(mut result) => {
            // Sessions negotiate versions before 2026-07-28, which have no `resultType`.
            result.result_type = None;
            rpc_result(id, result)
        }
        Err(refused) => rpc_error(StatusCode::OK, id, REFUSED, refused),
    }
}

async fn get_mcp(State(s): State<McpState>, uri: Uri, headers: HeaderMap) -> Response {
    let key = match s.admit(&headers, &uri) {
        Ok(k) => k,
        Err(r) => return r.into_response(),
    };
    if let Err(r) = s.session(&headers, &key, &Value::Null) {
        return r.into_response();
    }
    // Held by the stream: given back when the client goes away.
    let slot = match s.streams.take(&key.key.id) {
        Ok(slot) => slot,
        Err(full) => {
            let why = match full {
                crate::governance::slots::Full::Node(n) => {
                    format!("{n} event streams are open on this node, its most (mcp.max_streams)")
                }
                crate::governance::slots::Full::Key(n) => format!(
                    "this key has {n} event streams open, its most (mcp.max_streams_per_key)"
                ),
            };
            return rpc_error(StatusCode::TOO_MANY_REQUESTS, Value::Null, REFUSED, why);
        }
    };
    let changes = s.upstreams.subscribe();
    let closing = s.closing.clone();
    let mut keepalive =
        tokio::time::interval_at(tokio::time::Instant::now() + KEEPALIVE, KEEPALIVE);
    keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let events = futures_util::stream::unfold(
        (changes, keepalive, closing, slot),
        |(mut changes, mut keepalive, closing, slot)| async move {
            let chunk = tokio::select! {
                r = changes.changed() => match r {
                    Ok(()) => Bytes::from_static(
                        b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}\n\n",
                    ),
                    Err(_) => return None,
                },
                _ = keepalive.tick() => Bytes::from_static(b": keep-alive\n\n"),
                _ = closing.cancelled() => return None,
            };
            Some((
                Ok::<_, std::convert::Infallible>(chunk),
                (changes, keepalive, closing, slot),
            ))
        },
    );
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(events))
        .expect("static headers are valid")
}

/// Ends a session. Sessions are sealed, not stored, so there is nothing to
/// forget: the id stays valid until it expires, but only for its own key.
async fn delete_mcp(State(s): State<McpState>, uri: Uri, headers: HeaderMap) -> Response {
    let key = match s.admit(&headers, &uri) {
        Ok(k) => k,
        Err(r) => return r.into_response(),
    };
    match s.session(&headers, &key, &Value::Null) {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(r) => r.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(v: &str) -> Option<String> {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_str(v).unwrap());
        request_host(&h, &Uri::from_static("/mcp"))
    }

    #[test]
    fn hosts_lose_their_port() {
        assert_eq!(host("127.0.0.1:8080").as_deref(), Some("127.0.0.1"));
        assert_eq!(
            host("Gateway.Example:443").as_deref(),
            Some("gateway.example")
        );
        assert_eq!(host("[::1]:8080").as_deref(), Some("::1"));
        assert_eq!(host("localhost").as_deref(), Some("localhost"));
        // HTTP/2 without a Host header: the URI's authority.
        let h2: Uri = "http://[::1]:8080/mcp".parse().unwrap();
        assert_eq!(request_host(&HeaderMap::new(), &h2).as_deref(), Some("::1"));
        let h2: Uri = "https://Gateway.Example/mcp".parse().unwrap();
        assert_eq!(
            request_host(&HeaderMap::new(), &h2).as_deref(),
            Some("gateway.example")
        );
        assert_eq!(
            request_host(&HeaderMap::new(), &Uri::from_static("/mcp")),
            None
        );
    }

    #[test]
    fn versions_negotiate_to_one_with_a_handshake() {
        assert_eq!(negotiate(Some("2025-06-18")), ProtocolVersion::V_2025_06_18);
        assert_eq!(negotiate(Some("2024-11-05")), ProtocolVersion::V_2024_11_05);
        assert_eq!(
            negotiate(Some("1999-01-01")),
            ProtocolVersion::LATEST_WITH_INITIALIZE
        );
        assert!(negotiate(Some(ProtocolVersion::LATEST.as_str())).has_initialize());
    }
}
