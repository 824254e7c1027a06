//! The mock's Cohere endpoint (`POST /v2/chat`): the mock's deterministic
//! answers in Cohere's v2 format — a tool call of the first tool when tools
//! are offered and the last turn is the user's, a thinking block when
//! `thinking` is enabled, usage as billed units — and its named SSE events
//! (`message-start`, content and tool-call blocks, `message-end`).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::{Mock, count_tokens, example_args, fnv, split_words, sse_frames, text_for};

fn error(status: u16, message: &str) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, Json(json!({"message": message}))).into_response()
}

/// The tool call answering a user turn, when tools are offered.
fn tool_call(req: &Value, seed: u64) -> Option<Value> {
    let f = req.get("tools")?.as_array()?.first()?.get("function")?;
    let last = req.get("messages")?.as_array()?.last()?;
    if last.get("role").and_then(Value::as_str) != Some("user") || req["tool_choice"] == "NONE" {
        return None;
    }
    let args = example_args(f.get("parameters").unwrap_or(&Value::Null));
    Some(
        json!({"id": format!("call_{seed:016x}"), "type": "function",
        "function": {"name": f.get("name")?, "arguments": args.to_string()}}),
    )
}

pub(super) async fn chat(State(m): State<Mock>, headers: HeaderMap, body: Bytes) -> Response {
    let (plan, req) = match m.begin(&headers, &body) {
        Ok(v) => v,
        Err(r) => return r.response_as(error),
    };
    let Some(messages) = req.get("messages").filter(|v| v.is_array()) else {
        return error(400, "invalid request: messages is required");
    };
    for field in ["top_p", "stop", "stream_options", "reasoning_effort"] {
        if req.get(field).is_some() {
            return error(
                400,
                &format!("invalid request: unknown field: parameter {field} is not a valid field"),
            );
        }
    }
    let seed = fnv(&body);
    let input = count_tokens(messages);
    let cap = req
        .get("max_tokens")
        .and_then(Value::as_u64)
        .map_or(usize::MAX, |n| n as usize);
    let words = text_for(seed, plan.words.min(cap).max(1));
    let call = tool_call(&req, seed);
    let thinking = (req.pointer("/thinking/type").and_then(Value::as_str) == Some("enabled"))
        .then(|| format!("The user wrote {input} tokens; answer plainly."));
    let output = if call.is_some() {
        8
    } else {
        words.len() as u64
    } + if thinking.is_some() { 8 } else { 0 };
    m.bill(output);
    let usage = json!({"billed_units": {"input_tokens": input, "output_tokens": output},
        "tokens": {"input_tokens": input + 5, "output_tokens": output}});
    let finish = if call.is_some() {
        "TOOL_CALL"
    } else {
        "COMPLETE"
    };
    let id = format!("mock-{seed:016x}");
    if !plan.latency.is_zero() {
        tokio::time::sleep(plan.latency).await;
    }
    if req.get("stream").and_then(Value::as_bool) != Some(true) {
        let mut content = Vec::new();
        if let Some(t) = &thinking {
            content.push(json!({"type": "thinking", "thinking": t}));
        }
        let mut message = json!({"role": "assistant", "content": content});
        match call {
            Some(c) => {
                message["tool_plan"] = json!("I will call the tool.");
                message["tool_calls"] = json!([c]);
            }
            None => message["content"]
                .as_array_mut()
                .expect("content is an array")
                .push(json!({"type": "text", "text": words.join(" ")})),
        }
        return Json(
            json!({"id": id, "finish_reason": finish, "message": message, "usage": usage}),
        )
        .into_response();
    }
    let mut events: Vec<Value> = vec![json!({"type": "message-start", "id": id,
        "delta": {"message": {"role": "assistant", "content": [], "tool_plan": "", "tool_calls": [], "citations": []}}})];
    let mut index = 0;
    if let Some(t) = thinking {
        events.push(json!({"type": "content-start", "index": 0, "delta": {"message": {"content": {"type": "thinking", "thinking": ""}}}}));
        events.push(json!({"type": "content-delta", "index": 0, "delta": {"message": {"content": {"thinking": t}}}}));
        events.push(json!({"type": "content-end", "index": 0}));
        index = 1;
    }
    match call {
        Some(c) => {
            events.push(json!({"type": "tool-plan-delta", "delta": {"message": {"tool_plan": "I will call the tool."}}}));
            let args = c["function"]["arguments"]
                .as_str()
                .unwrap_or("{}")
                .to_string();
            let cut = (0..=args.len() / 2)
                .rev()
                .find(|&i| args.is_char_boundary(i))
                .unwrap_or(0);
            events.push(json!({"type": "tool-call-start", "index": 0, "delta": {"message": {"tool_calls":
                {"id": c["id"], "type": "function", "function": {"name": c["function"]["name"], "arguments": ""}}}}}));
            for piece in [&args[..cut], &args[cut..]] {
                events.push(json!({"type": "tool-call-delta", "index": 0, "delta": {"message": {"tool_calls": {"function": {"arguments": piece}}}}}));
            }
            events.push(json!({"type": "tool-call-end", "index": 0}));
        }
        None => {
            events.push(json!({"type": "content-start", "index": index, "delta": {"message": {"content": {"type": "text", "text": ""}}}}));
            for w in split_words(&words, plan.chunks) {
                events.push(json!({"type": "content-delta", "index": index, "delta": {"message": {"content": {"text": w}}}}));
            }
            events.push(json!({"type": "content-end", "index": index}));
        }
    }
    events.push(json!({"type": "message-end", "delta": {"finish_reason": finish, "usage": usage}}));
    let frames: Vec<Bytes> = events
        .iter()
        .map(|e| {
            Bytes::from(format!(
                "event: {}\ndata: {e}\n\n",
                e["type"].as_str().unwrap_or("")
            ))
        })
        .collect();
    // Frame 0 is `message-start`; content follows it.
    let cut_at = plan.fail_after.map(|n| n + 2);
    sse_frames(frames, cut_at, &plan)
}
