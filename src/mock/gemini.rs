//! The mock's Gemini endpoint (`POST /v1beta/models/{model}:generateContent`
//! and `:streamGenerateContent?alt=sse`): the mock's deterministic answers in
//! Gemini's wire format — a `functionCall` of the first declared function
//! when tools are offered and the last turn is the user's own, a thought
//! part when `includeThoughts` is set, chunked streams, Gemini-shaped errors.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::{Mock, count_tokens, example_args, fnv, split_words, sse_frames, text_for};

fn error(status: u16, message: &str) -> Response {
    let name = match status {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        503 => "UNAVAILABLE",
        _ => "INTERNAL",
    };
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        code,
        Json(json!({"error": {"code": status, "message": message, "status": name}})),
    )
        .into_response()
}

/// A field by its camelCase or snake_case name: the API takes both, and the
/// SDKs send a mix.
fn field<'a>(v: &'a Value, camel: &str) -> Option<&'a Value> {
    v.get(camel).or_else(|| {
        let snake: String = camel
            .chars()
            .flat_map(|c| {
                let lower = c.to_ascii_lowercase();
                (c.is_ascii_uppercase().then_some('_').into_iter()).chain([lower])
            })
            .collect();
        v.get(snake)
    })
}

/// `field` along a path of camelCase names.
fn path<'a>(v: &'a Value, names: &[&str]) -> Option<&'a Value> {
    names.iter().try_fold(v, |v, n| field(v, n))
}

fn function_call(req: &Value) -> Option<Value> {
    let decl = req
        .get("tools")?
        .as_array()?
        .iter()
        .find_map(|t| field(t, "functionDeclarations")?.as_array()?.first())?;
    if path(req, &["toolConfig", "functionCallingConfig", "mode"]) == Some(&json!("NONE")) {
        return None;
    }
    let last = req.get("contents")?.as_array()?.last()?;
    if last.get("role").and_then(Value::as_str) == Some("model") {
        return None;
    }
    let answered = last
        .get("parts")
        .and_then(Value::as_array)
        .is_some_and(|ps| ps.iter().any(|p| field(p, "functionResponse").is_some()));
    if answered {
        return None;
    }
    let schema = field(decl, "parametersJsonSchema")
        .or_else(|| decl.get("parameters"))
        .unwrap_or(&Value::Null);
    Some(json!({"functionCall": {"name": decl.get("name")?, "args": example_args(schema)}}))
}

pub(super) async fn generate(
    State(m): State<Mock>,
    Path(call): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (plan, req) = match m.begin(&headers, &body) {
        Ok(v) => v,
        Err(r) => return r.response_as(error),
    };
    let (model, stream) = match call.rsplit_once(':') {
        Some((m, "generateContent")) => (m.to_string(), false),
        Some((m, "streamGenerateContent")) => (m.to_string(), true),
        _ => return error(404, &format!("unknown method in {call}")),
    };
    let Some(contents) = req.get("contents") else {
        return error(400, "contents is required");
    };
    let seed = fnv(&body);
    let prompt_tokens = count_tokens(contents);
    let cap = path(&req, &["generationConfig", "maxOutputTokens"])
        .and_then(Value::as_u64)
        .map_or(usize::MAX, |n| n as usize);
    let words = text_for(seed, plan.words.min(cap).max(1));
    let call = function_call(&req);
    let thought = (path(
        &req,
        &["generationConfig", "thinkingConfig", "includeThoughts"],
    ) == Some(&json!(true)))
    .then(|| format!("The user wrote {prompt_tokens} tokens; answer plainly."));
    let output_tokens = if call.is_some() {
        8
    } else {
        words.len() as u64
    };
    let thoughts_tokens = thought.as_ref().map_or(0, |_| 8);
    m.bill(output_tokens + thoughts_tokens);
    let usage = json!({"promptTokenCount": prompt_tokens, "candidatesTokenCount": output_tokens,
        "thoughtsTokenCount": thoughts_tokens, "totalTokenCount": prompt_tokens + output_tokens + thoughts_tokens});
    let id = format!("mock-{seed:016x}");
    if !plan.latency.is_zero() {
        tokio::time::sleep(plan.latency).await;
    }
    let thought_part = thought
        .map(|t| json!({"text": t, "thought": true, "thoughtSignature": super::signature(seed)}));
    let chunk = |parts: Vec<Value>, last: bool| {
        let mut cand = json!({"content": {"role": "model", "parts": parts}, "index": 0});
        let mut v = json!({"modelVersion": model, "responseId": id});
        if last {
            cand["finishReason"] = json!("STOP");
            v["usageMetadata"] = usage.clone();
        }
        v["candidates"] = json!([cand]);
        v
    };
    if !stream {
        let mut parts: Vec<Value> = thought_part.into_iter().collect();
        parts.push(call.unwrap_or_else(|| json!({"text": words.join(" ")})));
        return Json(chunk(parts, true)).into_response();
    }
    let mut events: Vec<Value> = thought_part
        .map(|p| chunk(vec![p], false))
        .into_iter()
        .collect();
    match call {
        Some(c) => events.push(chunk(vec![c], false)),
        None => events.extend(
            split_words(&words, plan.chunks)
                .into_iter()
                .map(|w| chunk(vec![json!({"text": w})], false)),
        ),
    }
    events.push(chunk(vec![], true));
    let frames: Vec<Bytes> = events
        .iter()
        .map(|e| Bytes::from(format!("data: {e}\r\n\r\n")))
        .collect();
    let cut_at = plan.fail_after;
    sse_frames(frames, cut_at, &plan)
}
