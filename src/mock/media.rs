//! The mock's endpoints beyond chat: `/v1/rerank` (as Jina and vLLM answer
//! it, usage in tokens), `/v1/images/generations`, `/v1/audio/speech`,
//! `/v1/audio/transcriptions` (a multipart form; seconds from a WAV
//! header, else one per 16,000 bytes), `/v1/moderations`, and Cohere's
//! `/v2/rerank` (billed in search units) and `/v2/embed`. Answers are
//! deterministic functions of the request, so tests can check what the
//! gateway passed on and charged.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::{Value, json};

use super::{Mock, bad_request, count_tokens, embed};
use crate::providers::multipart::Form;

fn words(s: &str) -> Vec<String> {
    s.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// The share of the query's words a document holds.
fn relevance(query: &str, doc: &str) -> f64 {
    let q = words(query);
    if q.is_empty() {
        return 0.0;
    }
    let d = words(doc);
    q.iter().filter(|w| d.contains(w)).count() as f64 / q.len() as f64
}

fn doc_text(d: &Value) -> String {
    match d {
        Value::String(s) => s.clone(),
        Value::Object(o) => o
            .get("text")
            .and_then(Value::as_str)
            .map_or_else(|| d.to_string(), str::to_string),
        other => other.to_string(),
    }
}

/// Results ranked by relevance, at most `top_n`.
fn ranked(req: &Value) -> Result<Vec<(usize, f64)>, &'static str> {
    let query = req
        .get("query")
        .and_then(Value::as_str)
        .ok_or("query is required")?;
    let docs = req
        .get("documents")
        .and_then(Value::as_array)
        .ok_or("documents must be an array")?;
    let mut scored: Vec<(usize, f64)> = docs
        .iter()
        .enumerate()
        .map(|(i, d)| (i, relevance(query, &doc_text(d))))
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    if let Some(n) = req.get("top_n").and_then(Value::as_u64) {
        scored.truncate(n as usize);
    }
    Ok(scored)
}

/// `/v1/rerank`, OpenAI-compatible rerankers' shape: tokens as usage.
pub(super) async fn rerank(State(m): State<Mock>, headers: HeaderMap, body: Bytes) -> Response {
    let (_, req) = match m.begin(&headers, &body) {
        Ok(v) => v,
        Err(r) => return r.response(),
    };
    let scored = match ranked(&req) {
        Ok(s) => s,
        Err(e) => return bad_request(e),
    };
    let docs = req["documents"].as_array().cloned().unwrap_or_default();
    let query_tokens = count_tokens(&req["query"]);
    let tokens: u64 = docs.iter().map(|d| query_tokens + count_tokens(d)).sum();
    let with_docs = req.get("return_documents").and_then(Value::as_bool) == Some(true);
    let results: Vec<Value> = scored
        .iter()
        .map(|&(i, score)| {
            let mut r = json!({"index": i, "relevance_score": score});
            if with_docs {
                r["document"] = json!({"text": doc_text(&docs[i])});
            }
            r
        })
        .collect();
    Json(json!({"model": req["model"], "results": results, "usage": {"total_tokens": tokens}}))
        .into_response()
}

fn cohere_error(status: u16, message: &str) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    (code, Json(json!({"message": message}))).into_response()
}

/// Cohere's `/v2/rerank`: documents must be strings; billed in search units.
pub(super) async fn cohere_rerank(
    State(m): State<Mock>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (_, req) = match m.begin(&headers, &body) {
        Ok(v) => v,
        Err(r) => return r.response_as(cohere_error),
    };
    for f in ["return_documents", "rank_fields", "max_chunks_per_doc"] {
        if req.get(f).is_some() {
            return cohere_error(400, &format!("invalid request: unknown field: {f}"));
        }
    }
    let Some(docs) = req.get("documents").and_then(Value::as_array) else {
        return cohere_error(400, "invalid request: documents is required");
    };
    if !docs.iter().all(Value::is_string) {
        return cohere_error(400, "invalid request: documents must be strings");
    }
    let scored = match ranked(&req) {
        Ok(s) => s,
        Err(e) => return cohere_error(400, e),
    };
    let units = (docs.len() as u64).div_ceil(100).max(1);
    let results: Vec<Value> = scored
        .iter()
        .map(|&(i, score)| json!({"index": i, "relevance_score": score}))
        .collect();
    Json(json!({
        "id": "mock-rerank", "results": results,
        "meta": {"api_version": {"version": "2"}, "billed_units": {"search_units": units}},
    }))
    .into_response()
}

/// Cohere's `/v2/embed`: `input_type` and float `embedding_types` required.
pub(super) async fn cohere_embed(
    State(m): State<Mock>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (_, req) = match m.begin(&headers, &body) {
        Ok(v) => v,
        Err(r) => return r.response_as(cohere_error),
    };
    if req.get("input_type").and_then(Value::as_str).is_none() {
        return cohere_error(400, "invalid request: input_type is required");
    }
    if req["embedding_types"] != json!(["float"]) {
        return cohere_error(400, "invalid request: the mock embeds as float only");
    }
    let Some(texts) = req.get("texts").and_then(Value::as_array) else {
        return cohere_error(400, "invalid request: texts is required");
    };
    let dims = req
        .get("output_dimension")
        .and_then(Value::as_u64)
        .unwrap_or(64)
        .clamp(1, 4096) as usize;
    let vectors: Vec<Vec<f32>> = texts.iter().map(|t| embed(&t.to_string(), dims)).collect();
    let tokens: u64 = texts.iter().map(count_tokens).sum();
    Json(json!({
        "id": "mock-embed", "texts": texts, "embeddings": {"float": vectors},
        "meta": {"billed_units": {"input_tokens": tokens}}, "response_type": "embeddings_by_type",
    }))
    .into_response()
}

/// `/v1/images/generations`: `n` images of the prompt's bytes, as base64
/// or as URLs; token-billed models (`gpt-image-*`) report usage.
pub(super) async fn images(State(m): State<Mock>, headers: HeaderMap, body: Bytes) -> Response {
    let (_, req) = match m.begin(&headers, &body) {
        Ok(v) => v,
        Err(r) => return r.response(),
    };
    let Some(prompt) = req.get("prompt").and_then(Value::as_str) else {
        return bad_request("prompt is required");
    };
    let n = req.get("n").and_then(Value::as_u64).unwrap_or(1);
    if !(1..=10).contains(&n) {
        return bad_request("n must be between 1 and 10");
    }
    let model = req.get("model").and_then(Value::as_str).unwrap_or("");
    let url = req.get("response_format").and_then(Value::as_str) == Some("url");
    let data: Vec<Value> = (0..n)
        .map(|i| {
            if url {
                json!({"url": format!("https://mock.invalid/images/{i}.png")})
            } else {
                let png = [b"\x89PNG mock ".as_slice(), prompt.as_bytes()].concat();
                json!({"b64_json": base64::engine::general_purpose::STANDARD.encode(png)})
            }
        })
        .collect();
    let mut out = json!({"created": 0, "data": data});
    if model.starts_with("gpt-image") {
        let text = count_tokens(&req["prompt"]);
        out["usage"] = json!({"input_tokens": text, "output_tokens": 1056 * n, "total_tokens": text + 1056 * n,
            "input_tokens_details": {"text_tokens": text, "image_tokens": 0}});
    }
    Json(out).into_response()
}

/// `/v1/audio/speech`: "audio" made of the input's bytes.
pub(super) async fn speech(State(m): State<Mock>, headers: HeaderMap, body: Bytes) -> Response {
    let (_, req) = match m.begin(&headers, &body) {
        Ok(v) => v,
        Err(r) => return r.response(),
    };
    let Some(input) = req.get("input").and_then(Value::as_str) else {
        return bad_request("input is required");
    };
    if req.get("voice").is_none() {
        return bad_request("voice is required");
    }
    let (kind, magic): (&'static str, &[u8]) =
        match req.get("response_format").and_then(Value::as_str) {
            Some("wav") => ("audio/wav", b"RIFF"),
            Some("opus") => ("audio/ogg", b"OggS"),
            _ => ("audio/mpeg", b"ID3"),
        };
    let audio = [magic, b" mock speech: ", input.as_bytes()].concat();
    let mut r = (StatusCode::OK, audio).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    r
}

/// Whole seconds of `file`: a WAV header's, else one per 16,000 bytes.
fn audio_seconds(file: &[u8]) -> f64 {
    if file.len() >= 44 && &file[..4] == b"RIFF" && &file[8..12] == b"WAVE" {
        let rate = u32::from_le_bytes(file[28..32].try_into().expect("4 bytes"));
        if rate > 0 {
            return (file.len() - 44) as f64 / f64::from(rate);
        }
    }
    file.len() as f64 / 16_000.0
}

/// `/v1/audio/transcriptions`: a form with `file` and `model`; seconds as
/// usage, in the `response_format` asked for.
pub(super) async fn transcriptions(
    State(m): State<Mock>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(i) = m.admit(&headers) {
        return i.response();
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let form = match Form::read(content_type, body).await {
        Ok(f) => f,
        Err(e) => return bad_request(e),
    };
    let text = |name: &str| form.text(name).ok().flatten().map(str::to_string);
    let Some(file) = form.get("file").filter(|f| f.file_name.is_some()) else {
        return bad_request("file is required");
    };
    let Some(model) = text("model") else {
        return bad_request("model is required");
    };
    *m.stats.last.lock().expect("stats lock") = json!({"body": {
        "model": model, "file_name": file.file_name, "file_bytes": file.data.len(),
        "language": text("language"), "fields": form.parts.iter().map(|p| p.name.clone()).collect::<Vec<_>>(),
    }});
    let seconds = audio_seconds(&file.data);
    let transcript = format!("mock transcript of {} bytes", file.data.len());
    match text("response_format").as_deref() {
        Some("text") => transcript.into_response(),
        Some("verbose_json") => Json(json!({
            "task": "transcribe", "language": "english", "duration": seconds, "text": transcript,
        }))
        .into_response(),
        _ => Json(
            json!({"text": transcript, "usage": {"type": "duration", "seconds": seconds.ceil()}}),
        )
        .into_response(),
    }
}

/// `/v1/moderations`: flags inputs that say "attack".
pub(super) async fn moderations(
    State(m): State<Mock>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (_, req) = match m.begin(&headers, &body) {
        Ok(v) => v,
        Err(r) => return r.response(),
    };
    let inputs: Vec<String> = match req.get("input") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a.iter().map(doc_text).collect(),
        _ => return bad_request("input is required"),
    };
    let results: Vec<Value> = inputs
        .iter()
        .map(|t| {
            let flagged = words(t).iter().any(|w| w == "attack");
            let score = if flagged { 0.9 } else { 0.01 };
            json!({"flagged": flagged, "categories": {"violence": flagged},
                "category_scores": {"violence": score}})
        })
        .collect();
    Json(json!({"id": "modr-mock", "model": req["model"], "results": results})).into_response()
}
