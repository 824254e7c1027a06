//! The mock's Anthropic Messages endpoint (`POST /v1/messages`): the same
//! deterministic answers as the OpenAI routes, in Anthropic's wire format —
//! text, a `tool_use` of the first tool when tools are offered and the last
//! turn is the user's own, a thinking block when thinking is enabled, the
//! exact SSE event sequence, and errors in Anthropic's shape.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::{Mock, count_tokens, example_args, fnv, split_even, split_words, sse_frames, text_for};

fn error(status: u16, message: &str) -> Response {
    let kind = match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        _ => "api_error",
    };
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        code,
        Json(json!({"type": "error", "error": {"type": kind, "message": message}})),
    )
        .into_response()
}

/// The tool the mock calls: the first offered, unless `tool_choice` is
/// `none` or the last user turn carries tool results.
fn tool_use(req: &Value, seed: u64) -> Option<Value> {
    let tool = req.get("tools")?.as_array()?.first()?;
    if req.pointer("/tool_choice/type").and_then(Value::as_str) == Some("none") {
        return None;
    }
    let last = req.get("messages")?.as_array()?.last()?;
    if last.get("role")?.as_str()? != "user" {
        return None;
    }
    let answered = last
        .get("content")
        .and_then(Value::as_array)
        .is_some_and(|blocks| {
            blocks
                .iter()
                .any(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
        });
    if answered {
        return None;
    }
    let name = tool.get("name")?.as_str()?;
    Some(json!({
        "type": "tool_use",
        "id": format!("toolu_mock_{:012x}", seed & 0xffff_ffff_ffff),
        "name": name,
        "input": example_args(tool.get("input_schema").unwrap_or(&Value::Null)),
    }))
}

/// A request's prompt as Anthropic caches it, in tokens.
#[derive(Debug, Default, PartialEq, Eq)]
struct Cached {
    /// Prompt tokens neither read from nor written to the cache.
    input: u64,
    write_5m: u64,
    write_1h: u64,
    read: u64,
}

/// Prompt caching, deterministically: the blocks of the prompt in cache
/// order (tools, system, then each message's content) up to the last one
/// marked `cache_control` are one cache entry, keyed by their bytes; the
/// first request with that prefix writes it (the part up to the last 1-hour
/// marker for an hour), later ones read it. Without markers, the prompt is
/// `input_tokens` of plain input, as before.
fn prompt_cache(m: &Mock, req: &Value, input_tokens: u64) -> Cached {
    fn items(v: Option<&Value>) -> Vec<&Value> {
        match v {
            Some(Value::Array(a)) => a.iter().collect(),
            Some(v) => vec![v],
            None => vec![],
        }
    }
    let mut blocks: Vec<&Value> = Vec::new();
    blocks.extend(items(req.get("tools")));
    blocks.extend(items(req.get("system")));
    for msg in req
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        blocks.extend(items(msg.get("content")));
    }
    let marked = |b: &&Value| b.get("cache_control").is_some();
    let Some(last) = blocks.iter().rposition(marked) else {
        return Cached {
            input: input_tokens,
            ..Cached::default()
        };
    };
    let hour = blocks
        .iter()
        .rposition(|b| b.pointer("/cache_control/ttl").and_then(Value::as_str) == Some("1h"));
    let tokens = |bs: &[&Value]| bs.iter().map(|b| count_tokens(b)).sum::<u64>();
    let prefix = tokens(&blocks[..=last]);
    let input = tokens(&blocks) - prefix;
    let key = fnv(serde_json::to_string(&blocks[..=last])
        .unwrap_or_default()
        .as_bytes());
    let fresh = m.prompt_cache.lock().expect("mock cache lock").insert(key);
    if !fresh {
        return Cached {
            input,
            read: prefix,
            ..Cached::default()
        };
    }
    let write_1h = hour.map_or(0, |h| tokens(&blocks[..=h.min(last)]));
    Cached {
        input,
        write_5m: prefix - write_1h,
        write_1h,
        read: 0,
    }
}

/// Anthropic's `usage` for a prompt cached as `c` and `output` tokens.
fn usage(c: &Cached, output: u64) -> Value {
    json!({"input_tokens": c.input, "output_tokens": output,
        "cache_creation_input_tokens": c.write_5m + c.write_1h,
        "cache_read_input_tokens": c.read,
        "cache_creation": {"ephemeral_5m_input_tokens": c.write_5m,
            "ephemeral_1h_input_tokens": c.write_1h}})
}

pub(super) async fn messages(State(m): State<Mock>, headers: HeaderMap, body: Bytes) -> Response {
    let (plan, req) = match m.begin(&headers, &body) {
        Ok(v) => v,
        Err(r) => return r.response_as(error),
    };
    let Some(model) = req.get("model").and_then(Value::as_str).map(str::to_string) else {
        return error(400, "model: Field required");
    };
    let Some(messages) = req.get("messages") else {
        return error(400, "messages: Field required");
    };
    let Some(max_tokens) = req.get("max_tokens").and_then(Value::as_u64) else {
        return error(400, "max_tokens: Field required");
    };
    let seed = fnv(&body);
    let cached = prompt_cache(&m, &req, count_tokens(messages));
    let input_tokens = cached.input + cached.read + cached.write_5m + cached.write_1h;
    let call = tool_use(&req, seed);
    let words = text_for(seed, plan.words.min(max_tokens as usize).max(1));
    let thinking = (req.pointer("/thinking/type").and_then(Value::as_str) == Some("enabled"))
        .then(|| format!("The user wrote {input_tokens} tokens; answer plainly."));
    let signature = super::signature(seed);
    let mut content = Vec::new();
    if let Some(t) = &thinking {
        content.push(json!({"type": "thinking", "thinking": t, "signature": signature}));
    }
    match &call {
        Some(c) => content.push(c.clone()),
        None => content.push(json!({"type": "text", "text": words.join(" ")})),
    }
    let output_tokens = if call.is_some() {
        8
    } else {
        words.len() as u64
    } + thinking.as_ref().map_or(0, |_| 8);
    m.bill(output_tokens);
    let stop = if call.is_some() {
        "tool_use"
    } else {
        "end_turn"
    };
    let id = format!("msg_mock_{seed:016x}");
    if !plan.latency.is_zero() {
        tokio::time::sleep(plan.latency).await;
    }
    if !req.get("stream").and_then(Value::as_bool).unwrap_or(false) {
        return Json(json!({
            "id": id, "type": "message", "role": "assistant", "model": model,
            "content": content, "stop_reason": stop, "stop_sequence": null,
            "usage": usage(&cached, output_tokens),
        }))
        .into_response();
    }
    let mut frames = Vec::new();
    let mut deltas = Vec::new();
    let ev = |name: &str, v: Value| Bytes::from(format!("event: {name}\ndata: {v}\n\n"));
    frames.push(ev(
        "message_start",
        json!({"type": "message_start", "message": {"id": id, "type": "message", "role": "assistant",
            "model": model, "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": usage(&cached, 1)}}),
    ));
    frames.push(ev("ping", json!({"type": "ping"})));
    let mut index = 0;
    let mut block = |frames: &mut Vec<Bytes>, start: Value, pieces: Vec<Value>| {
        frames.push(ev(
            "content_block_start",
            json!({"type": "content_block_start", "index": index, "content_block": start}),
        ));
        for d in pieces {
            deltas.push(frames.len());
            frames.push(ev(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": index, "delta": d}),
            ));
        }
        frames.push(ev(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        ));
        index += 1;
    };
    if let Some(t) = &thinking {
        block(
            &mut frames,
            json!({"type": "thinking", "thinking": "", "signature": ""}),
            vec![
                json!({"type": "thinking_delta", "thinking": t}),
                json!({"type": "signature_delta", "signature": signature}),
            ],
        );
    }
    match &call {
        Some(c) => {
            let args = c["input"].to_string();
            let start = json!({"type": "tool_use", "id": c["id"], "name": c["name"], "input": {}});
            let pieces = split_even(&args, plan.chunks)
                .into_iter()
                .map(|p| json!({"type": "input_json_delta", "partial_json": p}))
                .collect();
            block(&mut frames, start, pieces);
        }
        None => {
            let pieces = split_words(&words, plan.chunks)
                .into_iter()
                .map(|p| json!({"type": "text_delta", "text": p}))
                .collect();
            block(&mut frames, json!({"type": "text", "text": ""}), pieces);
        }
    }
    frames.push(ev(
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null},
            "usage": {"output_tokens": output_tokens}}),
    ));
    frames.push(ev("message_stop", json!({"type": "message_stop"})));
    let cut_at = plan.fail_after.and_then(|n| deltas.get(n).copied());
    sse_frames(frames, cut_at, &plan)
}
