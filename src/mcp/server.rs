//! `/mcp`: the gateway as one MCP server (streamable HTTP: `POST`, `GET`
//! stream, `DELETE`), showing each virtual key exactly the tools, resources
//! and prompts it may use.
//!
//! The endpoint is written over axum with rmcp's model types rather than
//! rmcp's session manager, because its sessions must outlive the node that
//! opened them: the session id is sealed ([`super::session`]) and every
//! request carries everything needed to serve it, so any node behind the load
//! balancer can answer any request of any session. Requests of the
//! 2026-07-28 protocol carry no session at all ([`super::era`]): both eras
//! are served side by side, chosen per request. Answers are plain JSON
//! (`application/json`), except a `tools/call` that asks for progress, which
//! is answered with an event stream of its progress and then its result; the
//! `GET` stream carries the `list_changed` notifications.
//!
//! Phases of a request: check the `Host` → authenticate the virtual key →
//! tell the era → open the session (session era, all but `initialize`) or
//! check the request's own protocol fields (stateless era) → dispatch the
//! JSON-RPC method.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use rmcp::model::{
    CacheScope, CallToolRequestParams, CallToolResult, DiscoverResult, GetPromptRequestParams,
    Implementation, InitializeResult, ProtocolVersion, ReadResourceRequestParams,
    ServerCapabilities,
};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::call::ToolCalls;
use super::catalog::Kind as Listing;
use super::era::{self, Fault};
use super::events;
use super::session::{Sealer, Session};
use super::upstream::{Progress, Upstreams};
use crate::codemode::meta::{self, CodeMode, MetaTool};
use crate::governance::{Governance, KeyView};
use crate::observability::otel::{Kind, Span, SpanContext, Tracer};
use crate::observability::tool_log::ToolLogs;

pub use super::era::SESSION_HEADER;

// JSON-RPC error codes.
const PARSE_ERROR: i64 = era::PARSE_ERROR;
const INVALID_REQUEST: i64 = era::INVALID_REQUEST;
const METHOD_NOT_FOUND: i64 = era::METHOD_NOT_FOUND;
const INVALID_PARAMS: i64 = era::INVALID_PARAMS;
/// Refused by policy (budget, rate limit); in the implementation-defined range.
const REFUSED: i64 = -32000;
/// `resources/read` of a URI no server in the key's scope offers (MCP's code).
const RESOURCE_NOT_FOUND: i64 = -32002;
const INSTRUCTIONS: &str =
    "Tools, resources and prompts of every MCP server this gateway connects, named server-name.";

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
    /// `[mcp] list_ttl`: the `ttlMs` of stateless list results.
    pub list_ttl: Duration,
    /// Cancelled when the node starts draining: open `GET` streams end.
    pub closing: CancellationToken,
    /// `[mcp] agent_max_depth`.
    pub agent_max_depth: u32,
    /// `[server] max_body_bytes`.
    pub max_body_bytes: usize,
    pub code_mode: Arc<CodeMode>,
    /// Open `GET /mcp` streams, bounded on the node and per key.
    pub streams: Arc<crate::governance::slots::Slots>,
    /// `[mcp] user_header`, lower-case (empty: none).
    pub user_header: Arc<str>,
}

mod personal;

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
    /// One of the node's and the key's event streams, held by the stream
    /// until the client goes away; 429 when either has its most open.
    fn stream_slot(&self, key: &KeyView) -> Result<crate::governance::slots::Slot, RpcError> {
        self.streams.take(&key.key.id).map_err(|full| {
            let why = match full {
                crate::governance::slots::Full::Node(n) => {
                    format!("{n} event streams are open on this node, its most (mcp.max_streams)")
                }
                crate::governance::slots::Full::Key(n) => format!(
                    "this key has {n} event streams open, its most (mcp.max_streams_per_key)"
                ),
            };
            refusal(StatusCode::TOO_MANY_REQUESTS, Value::Null, REFUSED, why)
        })
    }

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

/// The version to answer `initialize` with: the client's if this gateway
/// knows it and it still has the handshake, else the newest that does.
pub fn negotiate(requested: Option<&str>) -> ProtocolVersion {
    ProtocolVersion::KNOWN_VERSIONS
        .iter()
        .find(|v| Some(v.as_str()) == requested && v.has_initialize())
        .cloned()
        .unwrap_or(ProtocolVersion::LATEST_WITH_INITIALIZE)
}

/// Which protocol era a request is served in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Era {
    /// `initialize` and a sealed `Mcp-Session-Id` (up to 2025-11-25).
    Session,
    /// Every request stands alone (2026-07-28).
    Stateless,
}

/// A result as dispatch produces it: already encoded (listings), or a value.
enum Reply {
    Encoded(Box<RawValue>),
    Value(Value),
}

type Answer = Result<Reply, Fault>;

fn fault(code: i64, message: impl Into<String>) -> Fault {
    Fault {
        code,
        message: message.into(),
        data: None,
    }
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
    let subject = match personal::subject(&s, &headers, &key) {
        Ok(subject) => subject,
        Err(why) => {
            return refusal(StatusCode::BAD_REQUEST, id, INVALID_PARAMS, why).into_response();
        }
    };
    let mut span = request_span(&s.tracer, &headers, method, &id, &params);
    if method == "initialize" {
        return initialize(&s, &key, id, &params);
    }
    let era = if era::is_stateless(&headers, method, &params) {
        match era::check(&headers, method, &params) {
            Ok(version) => span.set("mcp.protocol.version", version),
            Err(f) => {
                span.fail(f.code.to_string(), f.message.clone());
                return respond(Era::Stateless, id, Err(f));
            }
        }
        Era::Stateless
    } else {
        match s.session(&headers, &key, &id) {
            Ok(session) => span.set("mcp.protocol.version", session.protocol_version),
            Err(r) => {
                span.fail("invalid_session", "unknown, expired or missing session");
                return r.into_response();
            }
        }
        Era::Session
    };
    if method == "subscriptions/listen" && era == Era::Stateless {
        if !accepts_event_stream(&headers) {
            return StatusCode::NOT_ACCEPTABLE.into_response();
        }
        let wanted = events::Wanted::from_filter(&params["notifications"]);
        return match s.stream_slot(&key) {
            Ok(slot) => {
                events::listen_stream(s.upstreams.subscribe(), s.closing.clone(), slot, wanted, id)
            }
            Err(full) => full.into_response(),
        };
    }
    if method == "tools/call"
        && let Some(token) = params.pointer("/_meta/progressToken").cloned()
        && accepts_event_stream(&headers)
    {
        return call_with_progress(s, key, subject, era, id, params, token, span);
    }
    let answer = dispatch(&s, &key, &subject, era, method, params, &mut span, None).await;
    respond(era, id, answer)
}

fn accepts_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/event-stream"))
}

fn parse<T: serde::de::DeserializeOwned>(params: Value) -> Result<T, Fault> {
    serde_json::from_value(params).map_err(|e| fault(INVALID_PARAMS, e.to_string()))
}

/// Answers one method for a key (any era; the era decides what differs).
#[allow(clippy::too_many_arguments)]
async fn dispatch(
    s: &McpState,
    key: &KeyView,
    subject: &str,
    era: Era,
    method: &str,
    params: Value,
    span: &mut Span,
    progress: Option<mpsc::Sender<Progress>>,
) -> Answer {
    let stateless = era == Era::Stateless;
    // Stateless list results say how long they may be reused, by this key only.
    let trailer = || match era {
        Era::Stateless => format!(
            r#","ttlMs":{},"cacheScope":"private","resultType":"complete""#,
            s.list_ttl.as_millis()
        ),
        Era::Session => String::new(),
    };
    let scope = &key.tools;
    let listing = async |kind: Listing| -> Answer {
        let more = s.upstreams.personal_catalogs(scope, subject).await;
        Ok(Reply::Encoded(s.upstreams.catalog().list_json_with(
            kind,
            scope,
            &more,
            &trailer(),
        )))
    };
    let answer = match method {
        // 2026-07-28 removed `ping`, and has `server/discover` instead.
        "ping" if !stateless => Ok(Reply::Value(json!({}))),
        "server/discover" if stateless => Ok(Reply::Value(discovery(s.list_ttl))),
        // Encoded when the index was built; a listing only joins bytes.
        "tools/list" => {
            let more = s.upstreams.personal_listing(scope, subject).await;
            Ok(Reply::Encoded(s.upstreams.index().list_json_with(
                scope,
                &more,
                &trailer(),
            )))
        }
        "tools/call" => match parse::<CallToolRequestParams>(params) {
            Ok(p) => call_tool(s, key, subject, p, span, progress).await,
            Err(f) => Err(f),
        },
        "resources/list" => listing(Listing::Resources).await,
        "resources/templates/list" => listing(Listing::Templates).await,
        "prompts/list" => listing(Listing::Prompts).await,
        "resources/read" => match parse::<ReadResourceRequestParams>(params) {
            Ok(p) => read_resource(s, key, subject, &p.uri, span, era).await,
            Err(f) => Err(f),
        },
        "prompts/get" => match parse::<GetPromptRequestParams>(params) {
            Ok(p) => get_prompt(s, key, subject, p, span).await,
            Err(f) => Err(f),
        },
        other => Err(fault(
            METHOD_NOT_FOUND,
            format!("method not found: {other}"),
        )),
    };
    if let Err(f) = &answer
        && f.code != REFUSED
    {
        span.fail(f.code.to_string(), f.message.clone());
    }
    answer
}

/// The answer's JSON-RPC message and its HTTP status: errors of the
/// stateless era carry the status the specification gives their code; the
/// session era answers every JSON-RPC error with 200. Results of the
/// stateless era say `resultType`; the session era's versions have none.
fn encode(era: Era, id: Value, answer: Answer) -> (StatusCode, Vec<u8>) {
    let encoded = match answer {
        Ok(Reply::Encoded(r)) => serde_json::to_vec(&RpcResult::new(id, r)),
        Ok(Reply::Value(mut v)) => {
            if let Some(o) = v.as_object_mut() {
                match era {
                    Era::Stateless => {
                        o.entry("resultType").or_insert_with(|| json!("complete"));
                    }
                    Era::Session => {
                        for field in STATELESS_ONLY_FIELDS {
                            o.remove(field);
                        }
                    }
                }
            }
            serde_json::to_vec(&RpcResult::new(id, v))
        }
        Err(f) => {
            let status = match era {
                Era::Stateless => era::status_of(f.code),
                Era::Session => StatusCode::OK,
            };
            let mut error = json!({"code": f.code, "message": f.message});
            if let Some(data) = f.data {
                error["data"] = data;
            }
            let body = json!({"jsonrpc": "2.0", "id": id, "error": error});
            return (status, serde_json::to_vec(&body).expect("values encode"));
        }
    };
    (StatusCode::OK, encoded.expect("results encode"))
}

/// Result fields of 2026-07-28 that the session era's versions lack (an
/// upstream of that era may send them).
const STATELESS_ONLY_FIELDS: [&str; 3] = ["resultType", "ttlMs", "cacheScope"];

fn respond(era: Era, id: Value, answer: Answer) -> Response {
    let (status, body) = encode(era, id, answer);
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// What `/mcp` offers, in either era: tools, resources and prompts, with
/// their `list_changed` notifications (the `GET` stream, or listen).
fn capabilities() -> ServerCapabilities {
    serde_json::from_value(json!({"tools": {"listChanged": true},
        "resources": {"listChanged": true}, "prompts": {"listChanged": true}}))
    .expect("capabilities decode")
}

/// The `server/discover` result: every version served, what the gateway
/// offers, the same for every key.
fn discovery(ttl: Duration) -> Value {
    let mut d = DiscoverResult::new(era::supported_versions(), capabilities())
        .with_server_info(Implementation::new("tollgate", env!("CARGO_PKG_VERSION")))
        .with_ttl_ms(ttl.as_millis() as u64)
        .with_cache_scope(CacheScope::Public);
    d.instructions = Some(INSTRUCTIONS.to_string());
    serde_json::to_value(d).expect("discovery encodes")
}

/// A `tools/call` that asked for progress, answered as an event stream: the
/// upstream's progress notifications under the client's token, then the
/// result. The call runs inside the stream, so a client that goes away
/// drops it, and the upstream server is told the call is cancelled.
#[allow(clippy::too_many_arguments)]
fn call_with_progress(
    s: McpState,
    key: Arc<KeyView>,
    subject: String,
    era: Era,
    id: Value,
    params: Value,
    token: Value,
    mut span: Span,
) -> Response {
    let (tx, rx) = mpsc::channel::<Progress>(PROGRESS_QUEUE);
    let call: Pin<Box<dyn Future<Output = Bytes> + Send>> = Box::pin(async move {
        let answer = dispatch(
            &s,
            &key,
            &subject,
            era,
            "tools/call",
            params,
            &mut span,
            Some(tx),
        )
        .await;
        let (_, body) = encode(era, id, answer);
        events::sse_event(&body)
    });
    struct Relay {
        call: Option<Pin<Box<dyn Future<Output = Bytes> + Send>>>,
        /// The result, once the call has answered.
        last: Option<Bytes>,
        progress: mpsc::Receiver<Progress>,
        token: Value,
    }
    enum Next {
        Progress(Progress),
        Done(Bytes),
    }
    let relay = Relay {
        call: Some(call),
        last: None,
        progress: rx,
        token,
    };
    let frames = futures_util::stream::unfold(relay, |mut r| async move {
        loop {
            let Some(call) = r.call.as_mut() else {
                // The result is in. rmcp hands each notification to a task of
                // its own, so progress the server sent before its result can
                // reach us just after it: let those tasks run, relay what they
                // bring, then the result (progress after it is dropped).
                let last = r.last.take()?;
                for _ in 0..STRAGGLER_YIELDS {
                    if let Ok(p) = r.progress.try_recv() {
                        r.last = Some(last);
                        let frame = progress_frame(&r.token, p);
                        return Some((Ok::<_, std::convert::Infallible>(frame), r));
                    }
                    tokio::task::yield_now().await;
                }
                return Some((Ok(last), r));
            };
            let next = tokio::select! {
                // What the upstream reported goes out before its result.
                biased;
                Some(p) = r.progress.recv() => Next::Progress(p),
                last = call => Next::Done(last),
            };
            match next {
                Next::Progress(p) => {
                    let frame = progress_frame(&r.token, p);
                    return Some((Ok(frame), r));
                }
                Next::Done(last) => {
                    r.call = None;
                    r.last = Some(last);
                }
            }
        }
    });
    events::event_stream(Body::from_stream(frames))
}

/// One `notifications/progress` frame under the client's token.
fn progress_frame(token: &Value, p: Progress) -> Bytes {
    let mut params = json!({"progressToken": token, "progress": p.progress});
    if let Some(total) = p.total {
        params["total"] = json!(total);
    }
    if let Some(message) = p.message {
        params["message"] = json!(message);
    }
    let n = json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": params});
    events::sse_event(&serde_json::to_vec(&n).expect("values encode"))
}

/// Scheduler turns a finished call waits for progress that raced its result.
const STRAGGLER_YIELDS: usize = 8;

/// Progress notifications waiting for a slow client at most; more are dropped.
const PROGRESS_QUEUE: usize = 64;

fn initialize(s: &McpState, key: &KeyView, id: Value, params: &Value) -> Response {
    let version = negotiate(params.get("protocolVersion").and_then(Value::as_str));
    let sealed = s.sealer.seal(&Session {
        key_id: key.key.id.clone(),
        issued_ms: s.governance.now_ms(),
        protocol_version: version.to_string(),
    });
    let mut result = InitializeResult::new(capabilities());
    result.protocol_version = version;
    result.server_info = Implementation::new("tollgate", env!("CARGO_PKG_VERSION"));
    result.instructions = Some(INSTRUCTIONS.to_string());
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
    let target = match method {
        "tools/call" | "prompts/get" => params.get("name").and_then(Value::as_str),
        "resources/read" => params.get("uri").and_then(Value::as_str),
        _ => None,
    };
    let name = || match target {
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
        match (method, target) {
            ("tools/call", Some(t)) => {
                span.set("gen_ai.tool.name", t.to_string());
                span.set("gen_ai.operation.name", "execute_tool");
            }
            ("prompts/get", Some(t)) => span.set("gen_ai.prompt.name", t.to_string()),
            ("resources/read", Some(t)) => span.set("mcp.resource.uri", t.to_string()),
            _ => {}
        }
    }
    span
}

/// Resolves, admits, charges, executes and logs one tool call.
async fn call_tool(
    s: &McpState,
    key: &KeyView,
    subject: &str,
    p: CallToolRequestParams,
    span: &mut Span,
    progress: Option<mpsc::Sender<Progress>>,
) -> Answer {
    let index = s.upstreams.index();
    if let Some(m) = MetaTool::offered(&p.name, &index, &key.tools) {
        let call = meta::Call {
            key,
            parent: None,
            trace: span.context(),
            auto_only: false,
        };
        let outcome = meta::call(&s.calls(), &s.code_mode, m, p.arguments, call).await;
        return tool_answer(outcome, span);
    }
    // A tool outside the key's scope is refused exactly like one that does
    // not exist, so names cannot be probed. Code Mode tools are reached
    // through the meta-tools only.
    let Some(tool) = index.get_direct(&key.tools, &p.name) else {
        return personal::call(s, key, subject, p, span, progress).await;
    };
    let outcome = s
        .calls()
        .execute_relaying(key, tool, p.arguments, None, span.context(), progress)
        .await;
    tool_answer(outcome, span)
}

fn tool_answer(outcome: Result<CallToolResult, String>, span: &mut Span) -> Answer {
    match outcome {
        Ok(result) => {
            if result.is_error == Some(true) {
                span.fail("tool_error", "the tool answered an error");
            }
            Ok(Reply::Value(
                serde_json::to_value(result).expect("results encode"),
            ))
        }
        Err(refused) => {
            span.fail(REFUSED.to_string(), refused.clone());
            Err(fault(REFUSED, refused))
        }
    }
}

/// `resources/read`: the server that offers `uri` to this key (a listed
/// resource, else a matching template), or -32002 as if none did.
async fn read_resource(
    s: &McpState,
    key: &KeyView,
    subject: &str,
    uri: &str,
    span: &mut Span,
    era: Era,
) -> Answer {
    let catalog = s.upstreams.catalog();
    let personal;
    let found = match catalog.resource(&key.tools, uri) {
        Some(e) => Some(e),
        None => {
            personal = s.upstreams.personal_catalogs(&key.tools, subject).await;
            personal.iter().find_map(|c| c.resource(&key.tools, uri))
        }
    };
    let Some(entry) = found else {
        let mut f = fault(RESOURCE_NOT_FOUND, format!("unknown resource: {uri}"));
        f.data = Some(json!({"uri": uri}));
        return Err(f);
    };
    match s
        .calls()
        .read_resource(key, entry, uri, span.context())
        .await
    {
        Ok(read) => {
            let mut v = serde_json::to_value(read).expect("results encode");
            if era == Era::Stateless {
                // What this key read: not to be reused, nor shared.
                v["ttlMs"] = json!(0);
                v["cacheScope"] = json!("private");
            }
            Ok(Reply::Value(v))
        }
        Err(e) => Err(fault(REFUSED, e)),
    }
}

/// `prompts/get` of a `server-prompt` the key may use.
async fn get_prompt(
    s: &McpState,
    key: &KeyView,
    subject: &str,
    p: GetPromptRequestParams,
    span: &mut Span,
) -> Answer {
    let catalog = s.upstreams.catalog();
    let personal;
    let found = match catalog.prompt(&key.tools, &p.name) {
        Some(e) => Some(e),
        None => {
            personal = s.upstreams.personal_catalogs(&key.tools, subject).await;
            personal.iter().find_map(|c| c.prompt(&key.tools, &p.name))
        }
    };
    let Some(entry) = found else {
        return Err(fault(INVALID_PARAMS, format!("unknown prompt: {}", p.name)));
    };
    match s
        .calls()
        .get_prompt(key, entry, p.arguments, span.context())
        .await
    {
        Ok(got) => Ok(Reply::Value(
            serde_json::to_value(got).expect("results encode"),
        )),
        Err(e) => Err(fault(REFUSED, e)),
    }
}

async fn get_mcp(State(s): State<McpState>, uri: Uri, headers: HeaderMap) -> Response {
    let key = match s.admit(&headers, &uri) {
        Ok(k) => k,
        Err(r) => return r.into_response(),
    };
    if era::is_stateless(&headers, "", &Value::Null) {
        return only_post();
    }
    if let Err(r) = s.session(&headers, &key, &Value::Null) {
        return r.into_response();
    }
    match s.stream_slot(&key) {
        Ok(slot) => events::get_stream(s.upstreams.subscribe(), s.closing.clone(), slot),
        Err(full) => full.into_response(),
    }
}

/// `GET` and `DELETE` of a 2026-07-28 client: that era has neither (no
/// session to end, no stream to open).
fn only_post() -> Response {
    (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, "POST")]).into_response()
}

/// Ends a session. Sessions are sealed, not stored, so there is nothing to
/// forget: the id stays valid until it expires, but only for its own key.
async fn delete_mcp(State(s): State<McpState>, uri: Uri, headers: HeaderMap) -> Response {
    let key = match s.admit(&headers, &uri) {
        Ok(k) => k,
        Err(r) => return r.into_response(),
    };
    if era::is_stateless(&headers, "", &Value::Null) {
        return only_post();
    }
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
