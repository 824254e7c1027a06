//! The cache phase: after the caller is authenticated, its access to every
//! target checked and its rate limits admitted, and before anything is
//! reserved or sent, an exact hit answers the request, or else (semantic
//! cache on) a stored answer to the nearest question of the request's
//! partition, when it is close enough; a miss goes on upstream and its
//! answer is stored once it is complete, with its question's embedding.
//!
//! ```text
//! … check_access ─▶ admit ─▶ lookup ─┬─ hit ──▶ stored answer (cost 0) ─▶ respond in the client's format
//!                                    ├─ miss ─▶ reserve ─▶ attempts ─▶ respond ─▶ finish: store if 2xx and complete
//!                                    └─ bypass (off, not cacheable) ─▶ reserve ─▶ …
//! ```
//!
//! What is stored is the pipeline's internal answer, an OpenAI chat
//! completion: a whole answer as it came back, a streamed one assembled from
//! its chunks once the stream ended with its end marker. A hit is turned
//! into the client's format by the same translators a live answer goes
//! through, and a streaming request is replayed as internal chunks through
//! the client's stream encoder. The cache never fails a request: a database
//! error is counted and the request goes on as a miss (or its answer is
//! returned unstored).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::{Value, json};

use super::{Ctx, ErrorKind, Gateway, ProxyError};
use crate::cache::Embeddings;
use crate::cache::key::{self, Key, Keys, Scope};
use crate::cache::store::{Entry, Hit, Question};
use crate::config::{CacheConfig, CacheScope};
use crate::governance::KeyView;
use crate::governance::objects::CacheSettings;
use crate::observability::request_log::{CacheLog, CacheStatus, now_ms};
use crate::providers::openai::Endpoint;
use crate::routing::Pattern;
use crate::routing::Target;
use crate::translate::canonical::Part;
use crate::translate::openai::{ChunkWriter, finish_reason};
use crate::translate::{self, Format, Transcoder};

/// What a request asks of the cache, from its headers.
pub(super) struct Asked {
    /// `x-tollgate-cache`, when sent.
    mode: Option<Mode>,
    threshold: Option<f32>,
    no_store: bool,
    ttl: Option<Duration>,
    /// Headers forwarded upstream that can change the answer (Anthropic's
    /// beta flags): part of the partition.
    forwarded: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Off,
    Exact,
    Semantic,
}

impl Asked {
    /// Reads `x-tollgate-cache` (`off`, `exact`, `semantic`),
    /// `x-tollgate-cache-threshold` (a similarity in (0, 1]),
    /// `x-tollgate-cache-ttl` (a duration: `30s`, `10m`, or plain seconds)
    /// and `x-tollgate-cache-no-store` (`true`/`1`). A value that means
    /// nothing is the client's 400.
    pub(super) fn from_headers(h: &http::HeaderMap) -> Result<Asked, ProxyError> {
        let text = |name: &str| -> Result<Option<String>, ProxyError> {
            h.get(name)
                .map(|v| {
                    v.to_str()
                        .map(|s| s.trim().to_ascii_lowercase())
                        .map_err(|_| {
                            ProxyError::new(
                                ErrorKind::InvalidRequest,
                                format!("header {name} is not text"),
                            )
                        })
                })
                .transpose()
        };
        let mode = match text("x-tollgate-cache")?.as_deref() {
            None => None,
            Some("exact") => Some(Mode::Exact),
            Some("semantic" | "on") => Some(Mode::Semantic),
            Some("off") => Some(Mode::Off),
            Some(other) => {
                return Err(ProxyError::new(
                    ErrorKind::InvalidRequest,
                    format!("x-tollgate-cache: '{other}' is not one of off, exact, semantic"),
                ));
            }
        };
        let no_store = match text("x-tollgate-cache-no-store")?.as_deref() {
            None | Some("false" | "0") => false,
            Some("true" | "1" | "") => true,
            Some(other) => {
                return Err(ProxyError::new(
                    ErrorKind::InvalidRequest,
                    format!("x-tollgate-cache-no-store: '{other}' is not true or false"),
                ));
            }
        };
        let threshold = match text("x-tollgate-cache-threshold")? {
            None => None,
            Some(t) => match t.parse::<f32>() {
                Ok(v) if crate::cache::valid_threshold(v) => Some(v),
                _ => {
                    return Err(ProxyError::new(
                        ErrorKind::InvalidRequest,
                        format!("x-tollgate-cache-threshold: '{t}' is not a similarity in (0, 1]"),
                    ));
                }
            },
        };
        let ttl = match text("x-tollgate-cache-ttl")? {
            None => None,
            Some(t) => {
                let parsed = match t.parse::<u64>() {
                    Ok(secs) => Ok(Duration::from_secs(secs)),
                    Err(_) => humantime::parse_duration(&t).map_err(|e| e.to_string()),
                };
                match parsed {
                    Ok(d) if !d.is_zero() => Some(d),
                    Ok(_) => {
                        return Err(ProxyError::new(
                            ErrorKind::InvalidRequest,
                            "x-tollgate-cache-ttl must be positive (use x-tollgate-cache-no-store not to store)",
                        ));
                    }
                    Err(e) => {
                        return Err(ProxyError::new(
                            ErrorKind::InvalidRequest,
                            format!("x-tollgate-cache-ttl: '{t}' is not a duration ({e})"),
                        ));
                    }
                }
            }
        };
        let forwarded = h
            .get_all("anthropic-beta")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(",");
        Ok(Asked {
            mode,
            threshold,
            no_store,
            ttl,
            forwarded,
        })
    }
}

/// The cache's part of a request.
#[derive(Default)]
pub(super) struct State {
    pub(super) status: Option<CacheStatus>,
    saved_micros: u64,
    /// On a semantic hit, how close the question was.
    pub(super) similarity: Option<f32>,
    /// Set on a miss that may store its answer.
    pending: Option<Pending>,
    /// A whole successful answer, to store at finish.
    whole: Option<Bytes>,
    /// A streamed answer, assembled once its end marker passed.
    streamed: Option<Arc<Mutex<Option<Bytes>>>>,
}

impl State {
    pub(super) fn log(&self) -> Option<CacheLog> {
        self.status.map(|status| CacheLog {
            status,
            saved_micros: self.saved_micros,
            similarity: self.similarity,
        })
    }

    /// Whether an answer now may be stored (the attempts keep it then).
    pub(super) fn wants_answer(&self) -> bool {
        self.pending.is_some()
    }

    pub(super) fn keep_whole(&mut self, body: &Bytes) {
        if self.pending.is_some() {
            self.whole = Some(body.clone());
        }
    }
}

/// What a miss needs to store its answer under the key of the target that
/// gives it (a fallback's answer is stored under the fallback's key).
struct Pending {
    format: Format,
    raw: Bytes,
    tenant: String,
    primary: Key,
    /// The first target's semantic partition, when the request has one
    /// and the semantic cache embedded its question.
    primary_partition: Option<Key>,
    /// The question's embedding (the embedding model's fingerprint and the
    /// vector), stored with the answer for later semantic lookups.
    embedding: Option<(u64, Vec<f32>)>,
    /// Every target, `provider/model` and wire format, by index.
    targets: Vec<(String, Format)>,
    ttl: Duration,
    /// The virtual key that asked, stored with the answer (clearing by key).
    asker: Option<String>,
}

/// The cache settings in force for a request: the request's headers over
/// the key's settings, over the first route of `[[cache.routes]]` matching
/// the target, over `[cache]`. The semantic cache can only be on where its
/// model was loaded (`cache.semantic.enabled`).
#[derive(Debug, Clone, Copy, PartialEq)]
struct InForce {
    enabled: bool,
    semantic: bool,
    threshold: f32,
}

fn in_force(
    cfg: &CacheConfig,
    model_loaded: bool,
    target: &str,
    caller: Option<&KeyView>,
    asked: &Asked,
) -> InForce {
    let base = CacheSettings {
        enabled: Some(cfg.enabled),
        semantic: Some(cfg.semantic.enabled),
        threshold: Some(cfg.semantic.threshold),
    };
    let route = cfg
        .routes
        .iter()
        .find(|r| Pattern::new(r.model.as_str()).matches(target))
        .map(|r| r.settings())
        .unwrap_or_default();
    let key = caller.and_then(|k| k.key.cache.clone()).unwrap_or_default();
    let s = key.over(&route).over(&base);
    let enabled = s.enabled.unwrap_or(false) && asked.mode != Some(Mode::Off);
    let semantic = match asked.mode {
        Some(Mode::Semantic) => true,
        Some(Mode::Exact | Mode::Off) => false,
        None => s.semantic.unwrap_or(false),
    };
    InForce {
        enabled,
        semantic: enabled && semantic && model_loaded,
        threshold: asked
            .threshold
            .or(s.threshold)
            .unwrap_or(crate::cache::DEFAULT_THRESHOLD),
    }
}

/// The partition's owner: the key, its team or its customer (a key without
/// the wider one falls back to the narrower), or every keyless caller. A
/// key with budgets gets its output cap written into bodies that name none,
/// so the cap is part of its partition, as are forwarded headers.
fn tenant(scope: CacheScope, caller: Option<&KeyView>, asked: &Asked) -> String {
    let mut t = match caller {
        None => "anonymous".to_string(),
        Some(k) => {
            let key = || format!("key:{}", k.key.id);
            let team = || k.key.team_id.as_ref().map(|t| format!("team:{t}"));
            let customer = || k.customer_id.as_ref().map(|c| format!("customer:{c}"));
            match scope {
                CacheScope::Key => key(),
                CacheScope::Team => team().unwrap_or_else(key),
                CacheScope::Customer => customer().or_else(team).unwrap_or_else(key),
            }
        }
    };
    if let Some(k) = caller.filter(|k| super::has_budgets(k)) {
        let cap = k
            .key
            .default_max_tokens
            .unwrap_or(crate::governance::objects::DEFAULT_MAX_TOKENS);
        t.push_str(&format!("\0cap={cap}"));
    }
    if !asked.forwarded.is_empty() {
        t.push_str("\0beta=");
        t.push_str(&asked.forwarded);
    }
    t
}

fn target_name(t: &Target) -> String {
    format!("{}/{}", t.provider.name, t.model)
}

fn keys_for(
    format: Format,
    raw: &[u8],
    tenant: &str,
    (target, upstream): (&str, Format),
) -> Result<Keys, key::NotKeyed> {
    let scope = Scope {
        tenant,
        target,
        upstream,
    };
    key::keys(format, raw, &scope)
}

/// The lookup phase. `Some` is a hit to answer with; `None` goes upstream,
/// with the answer stored at finish when it may be.
pub(super) async fn lookup(
    gw: &Arc<Gateway>,
    ctx: &mut Ctx,
    asked: &Asked,
    caller: Option<&KeyView>,
    credential: Option<&str>,
    raw: &Bytes,
    targets: &[Target],
) -> Option<Hit> {
    let cfg = &gw.config.cache;
    let named: Vec<(String, Format)> = targets.iter().map(|t| (target_name(t), t.wire)).collect();
    let force = in_force(cfg, gw.embeddings.is_some(), &named[0].0, caller, asked);
    if !force.enabled && asked.mode.is_none() && !cfg.enabled {
        // Off everywhere and not asked about: no cache status at all.
        return None;
    }
    let counters = &gw.cache.counters;
    let bump = |c: &AtomicU64| {
        c.fetch_add(1, Ordering::Relaxed);
    };
    let bypass = |ctx: &mut Ctx| {
        bump(&counters.bypasses);
        ctx.cache.status = Some(CacheStatus::Bypass);
        None
    };
    if !force.enabled || ctx.endpoint != Endpoint::ChatCompletions {
        return bypass(ctx);
    }
    let tenant = tenant(cfg.scope, caller, asked);
    let keys = match keys_for(ctx.inbound, raw, &tenant, (&named[0].0, named[0].1)) {
        Ok(k) => k,
        Err(e) => {
            tracing::debug!(request = %ctx.id, reason = %e, "not cached");
            return bypass(ctx);
        }
    };
    let get = |key: &Key| {
        gw.cache.get(key, now_ms()).unwrap_or_else(|e| {
            bump(&counters.errors);
            tracing::warn!(error = %e, "cache lookup failed; the request goes upstream");
            None
        })
    };
    let mut found = get(&keys.exact).map(|hit| (hit, None));
    let mut embedding = None;
    let mut partition = None;
    // On an exact miss the question is embedded (when the model is loaded)
    // to look it up semantically and to store it with its answer, so that
    // later requests may find it semantically even if this one did not.
    let embed = force.semantic || !asked.no_store;
    if found.is_none()
        && embed
        && let (Some(embeddings), Some(sem)) = (&gw.embeddings, &keys.semantic)
    {
        match embed_question(gw, embeddings, &sem.text, credential).await {
            Ok(v) => {
                if force.semantic
                    && let Some(n) = gw.cache.nearest(&sem.partition, &v)
                    && n.similarity >= force.threshold
                {
                    found = get(&n.key).map(|hit| (hit, Some(n.similarity)));
                }
                embedding = Some((embeddings.fingerprint(), v));
                partition = Some(sem.partition);
            }
            Err(e) => {
                bump(&counters.semantic_errors);
                tracing::debug!(request = %ctx.id, error = %e, "question not embedded; exact lookup only");
            }
        }
    }
    match found {
        Some((hit, similarity)) => {
            bump(&counters.hits);
            if similarity.is_some() {
                bump(&counters.semantic_hits);
            }
            ctx.cache.status = Some(CacheStatus::Hit);
            ctx.cache.saved_micros = hit.cost_micros;
            ctx.cache.similarity = similarity;
            ctx.on_target(0, &targets[0], None);
            Some(hit)
        }
        None => {
            bump(&counters.misses);
            ctx.cache.status = Some(CacheStatus::Miss);
            if !asked.no_store {
                ctx.cache.pending = Some(Pending {
                    format: ctx.inbound,
                    raw: raw.clone(),
                    tenant,
                    primary: keys.exact,
                    primary_partition: partition,
                    embedding,
                    targets: named,
                    ttl: asked.ttl.unwrap_or(cfg.ttl),
                    asker: caller.map(|k| k.key.id.clone()),
                });
            }
            None
        }
    }
}

/// Largest answer of a served embeddings model read (8,192 dimensions as
/// JSON numbers take about 100 KiB).
const MAX_EMBEDDING_ANSWER: usize = 1024 * 1024;

/// The question's unit-length embedding: from the local model, or from the
/// served model through this gateway's own `/v1/embeddings`, as the caller
/// (its `credential`, the virtual key it presented), so that it is routed,
/// governed, priced and logged like any embeddings request. An error says
/// why not (the request then goes on with the exact cache only).
async fn embed_question(
    gw: &Arc<Gateway>,
    embeddings: &Embeddings,
    text: &str,
    credential: Option<&str>,
) -> Result<Vec<f32>, String> {
    let model = match embeddings {
        Embeddings::Local(e) => return e.embed(text).map_err(|e| e.to_string()),
        Embeddings::Served { model } => model,
    };
    let max = crate::cache::embed::Limits::DEFAULT_MAX_BYTES;
    if text.len() > max {
        return Err(format!(
            "text is {} bytes, over the embedding limit of {max} bytes",
            text.len()
        ));
    }
    if text.trim().is_empty() {
        return Err("text has nothing to embed".into());
    }
    let mut req = http::Request::post("/v1/embeddings")
        .header(http::header::CONTENT_TYPE, "application/json");
    if let Some(c) = credential {
        req = req.header(http::header::AUTHORIZATION, format!("Bearer {c}"));
    }
    let req = req
        .body(Body::from(
            json!({"model": model, "input": text}).to_string(),
        ))
        .map_err(|e| e.to_string())?;
    // The embeddings request is a request of its own through the gateway
    // (it is never cached, so this does not recurse further).
    let resp = super::handle_boxed(gw.clone(), Endpoint::Embeddings, req).await;
    if !resp.status().is_success() {
        return Err(format!("{model} answered {}", resp.status()));
    }
    let bytes = axum::body::to_bytes(resp.into_body(), MAX_EMBEDDING_ANSWER)
        .await
        .map_err(|e| format!("{model}'s answer: {e}"))?;
    crate::cache::embed::served_embedding(&bytes).map_err(|e| format!("{model}'s answer: {e}"))
}

/// At finish: a complete, successful answer is stored under its target's
/// key with what it cost, and with its question's embedding under the
/// target's partition. A database error is counted, never returned.
pub(super) fn store(gw: &Gateway, ctx: &mut Ctx, cost_micros: u64) {
    let Some(p) = ctx.cache.pending.take() else {
        return;
    };
    if !(200..300).contains(&ctx.status) {
        return;
    }
    let streamed = ctx
        .cache
        .streamed
        .take()
        .and_then(|slot| slot.lock().expect("answer slot").take());
    let Some(body) = ctx.cache.whole.take().or(streamed) else {
        return;
    };
    let index = ctx.target_index as usize;
    let Some((name, wire)) = p.targets.get(index) else {
        return;
    };
    let (key, partition) = if index == 0 {
        (p.primary, p.primary_partition)
    } else {
        match keys_for(p.format, &p.raw, &p.tenant, (name, *wire)) {
            Ok(k) => (k.exact, k.semantic.map(|s| s.partition)),
            Err(_) => return,
        }
    };
    let question = match (partition, p.embedding) {
        (Some(partition), Some((model, vector))) => Some(Question {
            model,
            partition,
            vector,
        }),
        _ => None,
    };
    let entry = Entry {
        body: &body,
        cost_micros,
        target: name,
        now_ms: now_ms(),
        ttl_ms: p.ttl.as_millis() as u64,
        question,
        asker: p.asker.as_deref(),
    };
    if let Err(e) = gw.cache.put(&key, &entry) {
        gw.cache.counters.errors.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(error = %e, "storing an answer in the cache failed");
    }
}

/// For a streamed miss that may be stored: the relay's internal chunks pass
/// through unchanged while a Responses encoder (its output dropped) puts the
/// answer together; it hands the answer over only when the end marker
/// arrives, so a cut or failed stream stores nothing.
pub(super) fn assembler(ctx: &mut Ctx) -> Option<Transcoder> {
    if !ctx.cache.wants_answer() {
        return None;
    }
    let slot: Arc<Mutex<Option<Bytes>>> = Arc::default();
    ctx.cache.streamed = Some(slot.clone());
    let model = ctx.model.clone().unwrap_or_default();
    let on_done = Box::new(move |r: translate::canonical::Response| {
        let body = translate::openai::response_to_openai(&r).to_string();
        *slot.lock().expect("answer slot") = Some(Bytes::from(body));
    });
    Some(Transcoder::new(Box::new(
        translate::responses::Encoder::new(String::new(), model, on_done),
    )))
}

/// The relay's chunks, shown to the [`assembler`] on their way. The relay
/// finishes the request (and so stores the answer) only after its last
/// chunk, the end marker, has passed here. A stream longer than `limit`
/// bytes could not be stored anyway: past it the assembler is dropped, so
/// what it holds stays bounded and no answer is stored.
pub(super) fn tee(relay: Body, assembler: Option<Transcoder>, limit: u64) -> Body {
    let Some(assembler) = assembler else {
        return relay;
    };
    let mut assembler = Some(assembler);
    let mut seen = 0u64;
    let chunks = relay.into_data_stream().map(move |frame| {
        if let Ok(data) = &frame {
            seen = seen.saturating_add(data.len() as u64);
            if seen > limit {
                assembler = None;
            }
            if let Some(a) = assembler.as_mut() {
                let _ = a.push(data);
            }
        }
        frame
    });
    Body::from_stream(chunks)
}

/// A stored answer as the internal chunks of a stream: the role, reasoning,
/// text and each tool call, the finish reason, usage when `usage`, and the
/// end marker. The client's stream encoder takes it from there.
pub(super) fn replay(body: &[u8], usage: bool) -> Bytes {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let model = v.get("model").and_then(Value::as_str).unwrap_or_default();
    let r = translate::read_response(body, model).unwrap_or_default();
    let w = ChunkWriter::new(r.id.clone(), r.model.clone());
    let mut out = Vec::new();
    w.delta(json!({"role": "assistant", "content": ""}), None, &mut out);
    let mut calls = 0;
    for p in &r.content {
        match p {
            Part::Thinking { text, signature } => {
                w.delta(json!({"reasoning_content": text}), None, &mut out);
                if let Some(s) = signature {
                    w.delta(json!({"reasoning_signature": s}), None, &mut out);
                }
            }
            Part::Text(t) => w.delta(json!({"content": t}), None, &mut out),
            Part::ToolCall(c) => {
                let call = json!({"index": calls, "id": c.id, "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments}});
                w.delta(json!({"tool_calls": [call]}), None, &mut out);
                calls += 1;
            }
            _ => {}
        }
    }
    w.delta(json!({}), Some(finish_reason(r.stop)), &mut out);
    if usage {
        w.usage(&r.usage, &mut out);
    }
    ChunkWriter::done(&mut out);
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, http::HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn cache_headers_are_read_or_refused_by_name() {
        let a = Asked::from_headers(&headers(&[
            ("x-tollgate-cache", "OFF"),
            ("x-tollgate-cache-ttl", "90"),
            ("x-tollgate-cache-no-store", "true"),
        ]))
        .unwrap();
        assert!(a.mode == Some(Mode::Off) && a.no_store);
        assert_eq!(a.ttl, Some(Duration::from_secs(90)));
        let a = Asked::from_headers(&headers(&[("x-tollgate-cache-ttl", "10m")])).unwrap();
        assert_eq!(a.ttl, Some(Duration::from_secs(600)));
        assert!(a.mode.is_none() && !a.no_store);
        for (h, v, named) in [
            ("x-tollgate-cache", "sometimes", "x-tollgate-cache"),
            ("x-tollgate-cache-ttl", "soon", "x-tollgate-cache-ttl"),
            ("x-tollgate-cache-ttl", "0", "x-tollgate-cache-ttl"),
            (
                "x-tollgate-cache-no-store",
                "maybe",
                "x-tollgate-cache-no-store",
            ),
        ] {
            let e = Asked::from_headers(&headers(&[(h, v)])).err().unwrap();
            assert_eq!(e.status().as_u16(), 400);
            assert!(e.message.contains(named), "{}", e.message);
        }
    }

    #[test]
    fn a_replayed_answer_carries_its_text_tool_calls_and_end_marker() {
        let body = json!({"id": "c1", "model": "m", "object": "chat.completion",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant",
                "content": "Let me look.", "tool_calls": [{"id": "call_1", "type": "function",
                    "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}});
        let out = replay(body.to_string().as_bytes(), true);
        let text = String::from_utf8(out.to_vec()).unwrap();
        let events: Vec<&str> = text
            .split("\n\n")
            .filter_map(|e| e.strip_prefix("data: "))
            .collect();
        assert_eq!(events.last(), Some(&"[DONE]"));
        let chunks: Vec<Value> = events[..events.len() - 1]
            .iter()
            .map(|e| serde_json::from_str(e).unwrap())
            .collect();
        assert_eq!(chunks[1]["choices"][0]["delta"]["content"], "Let me look.");
        assert_eq!(
            chunks[2]["choices"][0]["delta"]["tool_calls"][0]["function"]["name"],
            "get_weather"
        );
        assert_eq!(chunks[3]["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(chunks[4]["usage"]["total_tokens"], 7);
    }

    /// The answer a streamed miss puts together, through [`tee`]: `None`
    /// when the stream passed `limit` bytes.
    fn assembled(stream: Bytes, limit: u64) -> Option<String> {
        let answer: Arc<Mutex<Option<String>>> = Arc::default();
        let slot = answer.clone();
        let on_done = Box::new(move |r: translate::canonical::Response| {
            *slot.lock().unwrap() = Some(translate::openai::response_to_openai(&r).to_string());
        });
        let assembler = Transcoder::new(Box::new(translate::responses::Encoder::new(
            String::new(),
            "m".into(),
            on_done,
        )));
        let chunks: Vec<Result<Bytes, std::io::Error>> = stream
            .chunks(7)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let relay = Body::from_stream(futures_util::stream::iter(chunks));
        let out = tee(relay, Some(assembler), limit);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let passed = rt.block_on(axum::body::to_bytes(out, usize::MAX)).unwrap();
        assert_eq!(passed, stream, "the client gets every byte either way");
        answer.lock().unwrap().take()
    }

    #[test]
    fn a_stream_past_the_cache_size_is_relayed_but_not_assembled() {
        let body = json!({"id": "c1", "model": "m", "object": "chat.completion",
            "choices": [{"index": 0, "finish_reason": "stop",
                "message": {"role": "assistant", "content": "Hello there."}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}});
        let stream = replay(body.to_string().as_bytes(), true);
        let whole = assembled(stream.clone(), stream.len() as u64).expect("assembled");
        assert!(whole.contains("Hello there."), "{whole}");
        assert_eq!(assembled(stream.clone(), stream.len() as u64 - 1), None);
    }
}
