//! The mock LLM provider: an HTTP server for tests, demos and benchmarks
//! (`tollgate mock`) that answers in the OpenAI format, and in Anthropic's
//! (`/v1/messages`), Gemini's (`/v1beta/models/{model}:generateContent`) and
//! Bedrock's Converse (`/model/{modelId}/converse[-stream]`, SigV4 checked:
//! the secret of access key id `X` is `X-secret`), Cohere's v2 chat
//! (`/v2/chat`) and Vertex AI's routes with a token endpoint.
//!
//! The gateway reaches it through the same provider code path as any real
//! upstream (preset `mock`). Answers are deterministic functions of the
//! request. Behaviour is set by flags for the whole server and per request by
//! headers (which a provider's `headers` config can send):
//!
//! | header | effect |
//! |---|---|
//! | `x-mock-latency-ms` | wait before answering |
//! | `x-mock-chunks` | content chunks in a stream (default 8) |
//! | `x-mock-chunk-delay-ms` | wait between stream chunks |
//! | `x-mock-words` | words of generated text (default 12, capped by `max_tokens`) |
//! | `x-mock-error-rate`, `x-mock-error-status` | fail this share of requests (exactly, by count) with that status |
//! | `x-mock-fail-after` | cut the stream's connection after N content chunks |
//! | `x-mock-single-write` | send the whole stream in one write (`1`) |
//! | `x-mock-retry-after` | `Retry-After` seconds sent with a 429 |
//!
//! An API key `mock-status-<code>` makes every request with it fail with that
//! status (e.g. `mock-status-429`, `mock-status-401`). Faults can also be set
//! per API key at run time: `PUT /mock/faults/{key}` with
//! `{"error_rate": 0.5, "status": 500}` fails that share of the key's requests
//! (exactly, by count) until `DELETE /mock/faults/{key}` heals it. `GET /mock/stats` counts
//! requests per API key (and the output tokens of every answer made) and `GET /mock/last` shows the last request body
//! (with its `anthropic-version`, `anthropic-beta` and `traceparent` headers, and a
//! SigV4 signature's `Credential`), so tests can
//! see what reached the upstream.
//!
//! The Anthropic endpoint caches prompts as Anthropic bills them: the prompt
//! up to the last block marked `cache_control` is a cache write the first
//! time the mock sees it (an hour's write up to the last `"ttl": "1h"`
//! marker) and a cache read after; `usage` reports both.
//!
//! When tools are offered and the last message is the user's, the mock calls
//! a tool: the one a user message `call <tool> <JSON arguments>` names (if it
//! is offered), else the first, with example arguments from its schema.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::{Value, json};

mod anthropic;
mod bedrock;
mod cohere;
mod gemini;
mod media;
mod vertex;

/// Server-wide defaults; headers override them per request.
#[derive(Debug, Clone)]
pub struct MockOptions {
    pub latency: Duration,
    pub chunks: usize,
    pub chunk_delay: Duration,
    pub words: usize,
    pub error_rate: f64,
    pub error_status: u16,
    /// Lifetime of the Vertex token endpoint's access tokens.
    pub token_ttl: Duration,
}

impl Default for MockOptions {
    fn default() -> Self {
        MockOptions {
            latency: Duration::ZERO,
            chunks: 8,
            chunk_delay: Duration::ZERO,
            words: 12,
            error_rate: 0.0,
            error_status: 500,
            token_ttl: Duration::from_secs(3600),
        }
    }
}

#[derive(Default)]
struct Stats {
    total: AtomicU64,
    /// Output tokens of every answer made (what a provider would bill,
    /// whether or not the client read it all).
    output_tokens: AtomicU64,
    by_key: Mutex<HashMap<String, u64>>,
    /// The last request body and its format headers, for `GET /mock/last`.
    last: Mutex<Value>,
}

#[derive(Clone)]
struct Mock {
    opts: Arc<MockOptions>,
    stats: Arc<Stats>,
    /// Requests that have asked for error injection, for exact-rate failures.
    injected: Arc<AtomicU64>,
    /// Faults set at run time per API key.
    faults: Arc<Mutex<HashMap<String, Fault>>>,
    /// Prompt prefixes written to the Anthropic endpoint's prompt cache.
    prompt_cache: Arc<Mutex<std::collections::HashSet<u64>>>,
    /// Access tokens the Vertex token endpoint issued, and when each
    /// expires (Unix seconds).
    tokens: Arc<Mutex<HashMap<String, u64>>>,
}

impl Mock {
    /// Counts an answer's output tokens in `/mock/stats`.
    fn bill(&self, tokens: u64) {
        self.stats
            .output_tokens
            .fetch_add(tokens, Ordering::Relaxed);
    }
}

/// A run-time fault of one API key.
#[derive(Debug, Clone, serde::Deserialize)]
struct Fault {
    error_rate: f64,
    #[serde(default = "server_error")]
    status: u16,
    /// Requests seen under this fault, for exact-rate failures.
    #[serde(skip)]
    seen: u64,
}

fn server_error() -> u16 {
    500
}

/// Whether request `n` (from 0) of a stream failing `rate` of requests fails:
/// exactly `rate` of them do, spread evenly.
fn fails(n: u64, rate: f64) -> bool {
    let n = n as f64;
    ((n + 1.0) * rate).floor() > (n * rate).floor()
}

pub fn router(opts: MockOptions) -> Router {
    let state = Mock {
        opts: Arc::new(opts),
        stats: Arc::default(),
        injected: Arc::default(),
        faults: Arc::default(),
        prompt_cache: Arc::default(),
        tokens: Arc::default(),
    };
    Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/completions", post(completions))
        .route("/v1/embeddings", post(embeddings))
        .route("/v1/rerank", post(media::rerank))
        .route("/v1/images/generations", post(media::images))
        .route("/v1/audio/speech", post(media::speech))
        .route("/v1/audio/transcriptions", post(media::transcriptions))
        .route("/v1/moderations", post(media::moderations))
        .route("/v2/rerank", post(media::cohere_rerank))
        .route("/v2/embed", post(media::cohere_embed))
        .route("/v1/models", get(models))
        .route("/v1/messages", post(anthropic::messages))
        .route("/v1beta/models/{*call}", post(gemini::generate))
        .route("/model/{model}/{op}", post(bedrock::converse))
        .route("/v2/chat", post(cohere::chat))
        .route("/token", post(vertex::token))
        .route(
            "/v1/projects/{project}/locations/{location}/publishers/{publisher}/models/{*call}",
            post(vertex::predict),
        )
        .route("/mock/stats", get(stats))
        .route("/mock/last", get(last))
        .route(
            "/mock/faults/{key}",
            axum::routing::put(set_fault).delete(heal),
        )
        .with_state(state)
}

/// Serves the mock until the process ends.
pub async fn serve(addr: SocketAddr, opts: MockOptions) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "mock provider serving");
    axum::serve(listener, router(opts)).await
}

/// Per-request settings: defaults overridden by headers.
struct Plan {
    latency: Duration,
    chunks: usize,
    chunk_delay: Duration,
    words: usize,
    fail_after: Option<usize>,
    single_write: bool,
}

fn header_num<T: std::str::FromStr>(h: &HeaderMap, name: &str) -> Option<T> {
    h.get(name)?.to_str().ok()?.trim().parse().ok()
}

impl Mock {
    /// Counts the request and decides whether it fails; `Err` is the failure to send.
    fn admit(&self, h: &HeaderMap) -> Result<Plan, Injected> {
        let key = h
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .or_else(|| h.get("x-api-key").and_then(|v| v.to_str().ok()))
            .or_else(|| h.get("x-goog-api-key").and_then(|v| v.to_str().ok()))
            .or_else(|| {
                h.get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(bedrock::access_key_id)
            })
            .unwrap_or("")
            .to_string();
        self.stats.total.fetch_add(1, Ordering::Relaxed);
        *self
            .stats
            .by_key
            .lock()
            .expect("stats lock")
            .entry(key.clone())
            .or_default() += 1;

        let retry_after: u64 = header_num(h, "x-mock-retry-after").unwrap_or(1);
        if let Some(code) = key
            .strip_prefix("mock-status-")
            .and_then(|c| c.parse::<u16>().ok())
        {
            return Err(Injected {
                status: code,
                retry_after,
            });
        }
        if let Some(f) = self.faults.lock().expect("faults lock").get_mut(&key) {
            let n = f.seen;
            f.seen += 1;
            if fails(n, f.error_rate) {
                return Err(Injected {
                    status: f.status,
                    retry_after,
                });
            }
        }
        let rate: f64 = header_num(h, "x-mock-error-rate").unwrap_or(self.opts.error_rate);
        if rate > 0.0 {
            let n = self.injected.fetch_add(1, Ordering::Relaxed);
            if fails(n, rate) {
                let status = header_num(h, "x-mock-error-status").unwrap_or(self.opts.error_status);
                return Err(Injected {
                    status,
                    retry_after,
                });
            }
        }
        Ok(Plan {
            latency: header_num(h, "x-mock-latency-ms")
                .map(Duration::from_millis)
                .unwrap_or(self.opts.latency),
            chunks: header_num(h, "x-mock-chunks")
                .unwrap_or(self.opts.chunks)
                .max(1),
            chunk_delay: header_num(h, "x-mock-chunk-delay-ms")
                .map(Duration::from_millis)
                .unwrap_or(self.opts.chunk_delay),
            words: header_num(h, "x-mock-words").unwrap_or(self.opts.words),
            fail_after: header_num(h, "x-mock-fail-after"),
            single_write: header_num::<u8>(h, "x-mock-single-write") == Some(1),
        })
    }
}

impl Mock {
    /// Admission, then the body as JSON; `Err` is what to answer instead.
    fn begin(&self, h: &HeaderMap, body: &[u8]) -> Result<(Plan, Value), Refusal> {
        let plan = self.admit(h).map_err(Refusal::Injected)?;
        let req: Value =
            serde_json::from_slice(body).map_err(|e| Refusal::BadJson(e.to_string()))?;
        let header = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
        *self.stats.last.lock().expect("stats lock") = json!({"body": req,
            "anthropic-version": header("anthropic-version"), "anthropic-beta": header("anthropic-beta"), "traceparent": header("traceparent"),
            "aws-credential": header("authorization").as_deref().and_then(bedrock::credential_scope)});
        Ok((plan, req))
    }
}

enum Refusal {
    Injected(Injected),
    BadJson(String),
}

impl Refusal {
    /// The refusal in a native format, given that format's error response.
    fn response_as(self, error: fn(u16, &str) -> Response) -> Response {
        match self {
            Refusal::Injected(i) => {
                let mut r = error(i.status, &format!("mock error {}", i.status));
                if i.status == 429 {
                    r.headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from(i.retry_after));
                }
                r
            }
            Refusal::BadJson(e) => error(400, &format!("invalid JSON: {e}")),
        }
    }
}

impl Refusal {
    fn response(self) -> Response {
        match self {
            Refusal::Injected(i) => i.response(),
            Refusal::BadJson(e) => bad_request(format!("invalid JSON: {e}")),
        }
    }
}

/// A failure the mock was asked to produce.
struct Injected {
    status: u16,
    retry_after: u64,
}

impl Injected {
    fn response(self) -> Response {
        error(self.status, self.retry_after)
    }
}

fn error(status: u16, retry_after: u64) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = (
        code,
        Json(json!({"error": {"message": format!("mock error {status}"), "type": "mock_error", "param": null, "code": status.to_string()}})),
    )
        .into_response();
    if status == 429 {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    }
    r
}

fn bad_request(msg: impl std::fmt::Display) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": {"message": msg.to_string(), "type": "invalid_request_error", "param": null, "code": null}})),
    )
        .into_response()
}

/// A thinking signature as the real APIs send them: base64 (Gemini's SDK
/// decodes it as bytes), here of a readable, seed-determined text.
fn signature(seed: u64) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("mock-signature-{seed:016x}"))
}

/// FNV-1a: a stable hash, so answers are the same across runs and platforms.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

const VOCAB: &[&str] = &[
    "the", "gateway", "routes", "tokens", "through", "a", "cluster", "of", "nodes", "budget",
    "holds", "every", "request", "stream", "model", "answers", "quickly", "and", "mock", "data",
];

fn text_for(seed: u64, words: usize) -> Vec<String> {
    let mut h = seed;
    (0..words)
        .map(|_| {
            h = h
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            VOCAB[(h >> 33) as usize % VOCAB.len()].to_string()
        })
        .collect()
}

/// A rough, deterministic token count: one token per four bytes of text.
fn count_tokens(v: &Value) -> u64 {
    fn chars(v: &Value) -> usize {
        match v {
            Value::String(s) => s.len(),
            Value::Array(a) => a.iter().map(chars).sum(),
            Value::Object(o) => o.values().map(chars).sum(),
            _ => 0,
        }
    }
    (chars(v) as u64).div_ceil(4).max(1)
}

fn word_budget(req: &Value, plan: &Plan) -> usize {
    let cap = req
        .get("max_completion_tokens")
        .or_else(|| req.get("max_tokens"))
        .and_then(Value::as_u64)
        .map_or(usize::MAX, |n| n as usize);
    plan.words.min(cap).max(1)
}

/// Arguments satisfying a JSON schema's required properties, with placeholder values.
fn example_args(schema: &Value) -> Value {
    let mut out = serde_json::Map::new();
    let props = schema.get("properties").and_then(Value::as_object);
    let required = schema.get("required").and_then(Value::as_array);
    if let (Some(props), Some(required)) = (props, required) {
        for name in required.iter().filter_map(Value::as_str) {
            let p = props.get(name).cloned().unwrap_or(Value::Null);
            let v = if let Some(first) = p
                .get("enum")
                .and_then(Value::as_array)
                .and_then(|e| e.first())
            {
                first.clone()
            } else {
                match p.get("type").and_then(Value::as_str) {
                    Some("integer") => json!(1),
                    Some("number") => json!(1.5),
                    Some("boolean") => json!(true),
                    Some("array") => json!([]),
                    Some("object") => example_args(&p),
                    _ => json!("example"),
                }
            };
            out.insert(name.to_string(), v);
        }
    }
    Value::Object(out)
}

/// The tool call the mock makes, if any: when tools are offered, not refused by
/// `tool_choice`, and the last message is the user's (not a tool result).
fn tool_call(req: &Value, seed: u64) -> Option<Value> {
    let tools = req.get("tools")?.as_array()?;
    if req.get("tool_choice").and_then(Value::as_str) == Some("none") {
        return None;
    }
    let last_role = req
        .get("messages")?
        .as_array()?
        .last()?
        .get("role")?
        .as_str()?;
    if last_role != "user" {
        return None;
    }
    let last = req["messages"].as_array()?.last()?;
    let asked = last["content"]
        .as_str()
        .and_then(|t| t.trim().strip_prefix("call "))
        .and_then(|rest| rest.split_once(' '))
        .and_then(|(name, args)| Some((name, serde_json::from_str::<Value>(args).ok()?)))
        .filter(|(name, _)| {
            tools
                .iter()
                .any(|t| t["function"]["name"].as_str() == Some(*name))
        });
    let (name, args) = match asked {
        Some((name, args)) => (name, args),
        None => {
            let f = tools.first()?.get("function")?;
            let name = f.get("name")?.as_str()?;
            (
                name,
                example_args(f.get("parameters").unwrap_or(&Value::Null)),
            )
        }
    };
    Some(json!({
        "id": format!("call_{:012x}", seed & 0xffff_ffff_ffff),
        "type": "function",
        "function": {"name": name, "arguments": args.to_string()},
    }))
}

const CREATED: u64 = 1_700_000_000;

async fn chat(State(m): State<Mock>, headers: HeaderMap, body: Bytes) -> Response {
    let (plan, req) = match m.begin(&headers, &body) {
        Ok(v) => v,
        Err(r) => return r.response(),
    };
    let Some(model) = req.get("model").and_then(Value::as_str).map(str::to_string) else {
        return bad_request("model is required");
    };
    let Some(messages) = req.get("messages") else {
        return bad_request("messages is required");
    };
    let seed = fnv(&body);
    let prompt_tokens = count_tokens(messages);
    let call = tool_call(&req, seed);
    let words = text_for(seed, word_budget(&req, &plan));
    // `n` answers on whole responses, each as long as allowed (streams give one).
    let n = req
        .get("n")
        .and_then(Value::as_u64)
        .filter(|_| !req.get("stream").and_then(Value::as_bool).unwrap_or(false))
        .unwrap_or(1)
        .clamp(1, 128);
    let completion_tokens = n * if call.is_some() {
        8
    } else {
        words.len() as u64
    };
    m.bill(completion_tokens);
    let usage = json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    });
    let id = format!("chatcmpl-mock-{seed:016x}");
    if !plan.latency.is_zero() {
        tokio::time::sleep(plan.latency).await;
    }
    let stream = req.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let finish = if call.is_some() { "tool_calls" } else { "stop" };
    if !stream {
        let message = match &call {
            Some(c) => json!({"role": "assistant", "content": null, "tool_calls": [c]}),
            None => json!({"role": "assistant", "content": words.join(" ")}),
        };
        let choices: Vec<Value> = (0..n)
            .map(|i| json!({"index": i, "message": message, "finish_reason": finish, "logprobs": null}))
            .collect();
        return Json(json!({
            "id": id, "object": "chat.completion", "created": CREATED, "model": model,
            "choices": choices,
            "usage": usage,
        }))
        .into_response();
    }
    let include_usage = req
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let chunk = |delta: Value, finish: Option<&str>| {
        json!({
            "id": id, "object": "chat.completion.chunk", "created": CREATED, "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        })
    };
    let mut events = vec![chunk(json!({"role": "assistant", "content": ""}), None)];
    match &call {
        Some(c) => {
            let args = c["function"]["arguments"]
                .as_str()
                .unwrap_or("{}")
                .to_string();
            events.push(chunk(
                json!({"tool_calls": [{"index": 0, "id": c["id"], "type": "function", "function": {"name": c["function"]["name"], "arguments": ""}}]}),
                None,
            ));
            for part in split_even(&args, plan.chunks) {
                events.push(chunk(
                    json!({"tool_calls": [{"index": 0, "function": {"arguments": part}}]}),
                    None,
                ));
            }
        }
        None => {
            for part in split_words(&words, plan.chunks) {
                events.push(chunk(json!({"content": part}), None));
            }
        }
    }
    events.push(chunk(json!({}), Some(finish)));
    if include_usage {
        events.push(json!({
            "id": id, "object": "chat.completion.chunk", "created": CREATED, "model": model,
            "choices": [], "usage": usage,
        }));
    }
    sse(events, plan)
}

async fn completions(State(m): State<Mock>, headers: HeaderMap, body: Bytes) -> Response {
    let (plan, req) = match m.begin(&headers, &body) {
        Ok(v) => v,
        Err(r) => return r.response(),
    };
    let Some(model) = req.get("model").and_then(Value::as_str).map(str::to_string) else {
        return bad_request("model is required");
    };
    let Some(prompt) = req.get("prompt") else {
        return bad_request("prompt is required");
    };
    let seed = fnv(&body);
    let words = text_for(seed, word_budget(&req, &plan));
    let prompt_tokens = count_tokens(prompt);
    m.bill(words.len() as u64);
    let usage = json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": words.len(),
        "total_tokens": prompt_tokens + words.len() as u64,
    });
    let id = format!("cmpl-mock-{seed:016x}");
    if !plan.latency.is_zero() {
        tokio::time::sleep(plan.latency).await;
    }
    if !req.get("stream").and_then(Value::as_bool).unwrap_or(false) {
        return Json(json!({
            "id": id, "object": "text_completion", "created": CREATED, "model": model,
            "choices": [{"index": 0, "text": words.join(" "), "finish_reason": "stop", "logprobs": null}],
            "usage": usage,
        }))
        .into_response();
    }
    let chunk = |text: &str, finish: Option<&str>| {
        json!({
            "id": id, "object": "text_completion", "created": CREATED, "model": model,
            "choices": [{"index": 0, "text": text, "finish_reason": finish, "logprobs": null}],
        })
    };
    let mut events: Vec<Value> = split_words(&words, plan.chunks)
        .iter()
        .map(|p| chunk(p, None))
        .collect();
    events.push(chunk("", Some("stop")));
    if req
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        .unwrap_or(false)
    {
        events.push(json!({"id": id, "object": "text_completion", "created": CREATED, "model": model, "choices": [], "usage": usage}));
    }
    sse(events, plan)
}

async fn embeddings(State(m): State<Mock>, headers: HeaderMap, body: Bytes) -> Response {
    let (plan, req) = match m.begin(&headers, &body) {
        Ok(v) => v,
        Err(r) => return r.response(),
    };
    let model = req
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("mock-embed")
        .to_string();
    let inputs: Vec<Value> = match req.get("input") {
        Some(Value::Array(a)) if a.iter().all(Value::is_number) => vec![Value::Array(a.clone())],
        Some(Value::Array(a)) => a.clone(),
        Some(v @ Value::String(_)) => vec![v.clone()],
        _ => return bad_request("input must be a string or an array"),
    };
    let dims = req
        .get("dimensions")
        .and_then(Value::as_u64)
        .unwrap_or(64)
        .clamp(1, 4096) as usize;
    let base64 = req.get("encoding_format").and_then(Value::as_str) == Some("base64");
    if !plan.latency.is_zero() {
        tokio::time::sleep(plan.latency).await;
    }
    let mut tokens = 0;
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, input)| {
            tokens += count_tokens(input);
            let v = embed(&input.to_string(), dims);
            let embedding = if base64 {
                let bytes: Vec<u8> = v.iter().flat_map(|f| f.to_le_bytes()).collect();
                json!(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(v)
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    Json(json!({
        "object": "list", "data": data, "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }))
    .into_response()
}

/// A unit vector determined by the text's words: the normalised sum of a
/// pseudo-random vector for each lower-cased word, so texts that share most
/// of their words are close (what a semantic cache needs to be tested
/// against) and unrelated ones are nearly orthogonal. A text without words
/// gets the vector of its whole bytes.
pub fn embed(text: &str, dims: usize) -> Vec<f32> {
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let mut v = vec![0f32; dims];
    let mut add = |seed: &[u8]| {
        let mut h = fnv(seed);
        for x in v.iter_mut() {
            h = h
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            *x += ((h >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0;
        }
    };
    if words.is_empty() {
        add(text.as_bytes());
    }
    for w in words {
        add(w.as_bytes());
    }
    let norm = v
        .iter()
        .map(|x| x * x)
        .sum::<f32>()
        .sqrt()
        .max(f32::MIN_POSITIVE);
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

async fn models() -> Json<Value> {
    Json(json!({"object": "list", "data": [
        {"id": "mock-1", "object": "model", "created": CREATED, "owned_by": "mock"},
        {"id": "mock-embed", "object": "model", "created": CREATED, "owned_by": "mock"},
    ]}))
}

async fn last(State(m): State<Mock>) -> Json<Value> {
    Json(m.stats.last.lock().expect("stats lock").clone())
}

async fn stats(State(m): State<Mock>) -> Json<Value> {
    let by_key = m.stats.by_key.lock().expect("stats lock").clone();
    Json(
        json!({"requests": m.stats.total.load(Ordering::Relaxed), "by_key": by_key,
                "output_tokens": m.stats.output_tokens.load(Ordering::Relaxed)}),
    )
}

/// Splits words into at most `n` non-empty pieces that concatenate to the text.
fn split_words(words: &[String], n: usize) -> Vec<String> {
    let n = n.min(words.len()).max(1);
    let per = words.len().div_ceil(n);
    words
        .chunks(per.max(1))
        .enumerate()
        .map(|(i, c)| {
            let s = c.join(" ");
            if i == 0 { s } else { format!(" {s}") }
        })
        .collect()
}

fn split_even(s: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    let per = chars.len().div_ceil(n.max(1)).max(1);
    chars.chunks(per).map(|c| c.iter().collect()).collect()
}

/// A stream of `events`, then `[DONE]`; cut (connection aborted) after
/// `fail_after` content events when asked.
fn sse(events: Vec<Value>, plan: Plan) -> Response {
    let mut frames: Vec<Bytes> = events
        .iter()
        .map(|e| Bytes::from(format!("data: {e}\n\n")))
        .collect();
    frames.push(Bytes::from_static(b"data: [DONE]\n\n"));
    // Event 0 is the role-only preamble; content events follow it.
    let cut_at = plan.fail_after.map(|n| n + 1);
    sse_frames(frames, cut_at, &plan)
}

/// Whole SSE events, cut (connection aborted) before frame `cut_at` when set.
fn sse_frames(frames: Vec<Bytes>, cut_at: Option<usize>, plan: &Plan) -> Response {
    stream_frames(frames, cut_at, plan, "text/event-stream")
}

/// Whole frames of a stream of `content_type`, cut (connection aborted)
/// before frame `cut_at` when set.
fn stream_frames(
    frames: Vec<Bytes>,
    cut_at: Option<usize>,
    plan: &Plan,
    content_type: &'static str,
) -> Response {
    let body = if plan.single_write {
        Body::from(frames.concat())
    } else {
        Body::from_stream(async_stream(frames, plan.chunk_delay, cut_at))
    };
    let mut r = Response::new(body);
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

fn async_stream(
    frames: Vec<Bytes>,
    delay: Duration,
    cut_at: Option<usize>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    futures_util::stream::unfold((frames, 0usize), move |(frames, i)| async move {
        if cut_at == Some(i) {
            // Yield first so the server flushes what was sent before the cut;
            // otherwise the abort can discard buffered events.
            tokio::time::sleep(Duration::from_millis(10)).await;
            return Some((
                Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionAborted,
                    "mock cut the stream",
                )),
                (frames, usize::MAX),
            ));
        }
        if i >= frames.len() {
            return None;
        }
        if i > 0 && !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        Some((Ok(frames[i].clone()), (frames, i + 1)))
    })
}

/// `PUT /mock/faults/{key}`: from now on, fail a share of this key's requests.
async fn set_fault(
    State(m): State<Mock>,
    axum::extract::Path(key): axum::extract::Path<String>,
    Json(fault): Json<Fault>,
) -> StatusCode {
    if !(0.0..=1.0).contains(&fault.error_rate) {
        return StatusCode::BAD_REQUEST;
    }
    m.faults.lock().expect("faults lock").insert(key, fault);
    StatusCode::NO_CONTENT
}

/// `DELETE /mock/faults/{key}`: the key's requests succeed again.
async fn heal(
    State(m): State<Mock>,
    axum::extract::Path(key): axum::extract::Path<String>,
) -> StatusCode {
    m.faults.lock().expect("faults lock").remove(&key);
    StatusCode::NO_CONTENT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_cover_the_text() {
        let words: Vec<String> = ["a", "b", "c", "d", "e"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(split_words(&words, 2).concat(), "a b c d e");
        assert_eq!(split_words(&words, 10).len(), 5);
        assert_eq!(split_even("{\"x\":1}", 3).concat(), "{\"x\":1}");
    }

    #[test]
    fn example_args_follow_the_schema() {
        let schema = json!({"type": "object", "properties": {
            "city": {"type": "string"}, "days": {"type": "integer"},
            "unit": {"type": "string", "enum": ["c", "f"]}, "opt": {"type": "string"}},
            "required": ["city", "days", "unit"]});
        assert_eq!(
            example_args(&schema),
            json!({"city": "example", "days": 1, "unit": "c"})
        );
    }

    #[test]
    fn embeddings_are_deterministic_unit_vectors() {
        let a = embed("hello", 32);
        assert_eq!(a, embed("hello", 32));
        assert_ne!(a, embed("world", 32));
        let norm: f32 = a.iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-4);
        assert_eq!(embed("!?", 8).len(), 8);
    }

    /// Texts sharing most words are near; unrelated ones are not.
    #[test]
    fn embeddings_of_texts_sharing_words_are_near() {
        let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
        let q = embed("What is the capital of France?", 256);
        let near = embed("what is the capital of france, please", 256);
        let far = embed("How do I bake sourdough bread at home?", 256);
        assert!(dot(&q, &near) > 0.85, "{}", dot(&q, &near));
        assert!(dot(&q, &far) < 0.5, "{}", dot(&q, &far));
        assert!((dot(&q, &embed("WHAT is the capital of france", 256)) - 1.0).abs() < 1e-4);
    }
}
