//! Cohere's v2 Chat API as an upstream: canonical → `/v2/chat` bodies, and
//! its answers and SSE events → internal chat completions.
//!
//! v2 is close to OpenAI's chat: the same roles, tool definitions and tool
//! calls. It differs in names (`p`, `stop_sequences`), in `tool_choice`
//! (`REQUIRED` / `NONE` only: a named tool becomes `REQUIRED`), in answers
//! (content as typed blocks, `finish_reason` in capitals, usage as billed
//! units) and in its stream, whose events name what they carry. Citations
//! and the tool plan are dropped. No client speaks Cohere to the gateway:
//! this is one direction only.

use serde_json::{Map, Value, json};

use super::canonical::{Part, Request, Response, StopReason, ToolCall, ToolChoice, Usage, str_of};
use super::openai::ChunkWriter;
use super::{Transcode, openai};
use crate::providers::sse::SseEvent;

/// The `/v2/chat` body for `r` to `model`.
pub fn request_to_cohere(r: &Request, model: &str) -> Value {
    // Cohere's chat reads documents from its own `documents` field, as text
    // it is given, not files: they are left out.
    let read;
    let r = match r.without_documents() {
        Some(stripped) => {
            read = stripped;
            &read
        }
        None => r,
    };
    let Value::Object(mut v) = openai::request_to_openai(r, model, false) else {
        unreachable!("a request is an object")
    };
    for (from, to) in [("top_p", "p"), ("stop", "stop_sequences")] {
        if let Some(x) = v.remove(from) {
            v.insert(to.into(), x);
        }
    }
    for gone in [
        "fallbacks",
        "reasoning_effort",
        "parallel_tool_calls",
        "stream_options",
        "max_completion_tokens",
    ] {
        v.remove(gone);
    }
    if let Some(Value::Array(messages)) = v.get_mut("messages") {
        for m in messages.iter_mut().filter_map(Value::as_object_mut) {
            m.remove("reasoning_content");
            m.remove("reasoning_signature");
            if m.get("content").is_some_and(Value::is_null) {
                m.remove("content");
            }
        }
    }
    match &r.tool_choice {
        Some(ToolChoice::Required | ToolChoice::Tool(_)) => {
            v.insert("tool_choice".into(), json!("REQUIRED"));
        }
        Some(ToolChoice::None) => {
            v.insert("tool_choice".into(), json!("NONE"));
        }
        _ => {
            v.remove("tool_choice");
        }
    }
    if let Some(t) = r.thinking {
        v.insert(
            "thinking".into(),
            json!({"type": "enabled", "token_budget": t.budget_tokens}),
        );
    }
    v.insert("stream".into(), json!(r.stream));
    Value::Object(v)
}

fn stop_from(s: &str) -> StopReason {
    match s {
        "MAX_TOKENS" => StopReason::MaxTokens,
        "STOP_SEQUENCE" => StopReason::StopSequence,
        "TOOL_CALL" => StopReason::ToolUse,
        "ERROR_TOXIC" => StopReason::ContentFilter,
        _ => StopReason::EndTurn,
    }
}

/// Usage as Cohere bills it (`billed_units`), else as it counted it (`tokens`).
pub fn usage_from(u: &Value) -> Usage {
    let counted = |k: &str| {
        u.pointer(&format!("/billed_units/{k}"))
            .or_else(|| u.pointer(&format!("/tokens/{k}")))
            .and_then(Value::as_f64)
            .map_or(0, |n| n.max(0.0).ceil() as u64)
    };
    let (input, output) = (counted("input_tokens"), counted("output_tokens"));
    Usage {
        prompt_tokens: input,
        completion_tokens: output,
        total_tokens: input.saturating_add(output),
        cached_tokens: u.get("cached_tokens").and_then(Value::as_u64).unwrap_or(0),
        ..Usage::default()
    }
}

fn tool_call(c: &Value) -> ToolCall {
    ToolCall {
        id: str_of(c, "id").unwrap_or_default(),
        name: c
            .pointer("/function/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        arguments: c
            .pointer("/function/arguments")
            .and_then(Value::as_str)
            .unwrap_or("{}")
            .to_string(),
    }
}

pub fn response_from_cohere(v: &Value) -> Response {
    let m = v.get("message").unwrap_or(&Value::Null);
    let mut content = Vec::new();
    for b in m
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match b.get("type").and_then(Value::as_str) {
            Some("text") => content.push(Part::Text(str_of(b, "text").unwrap_or_default())),
            Some("thinking") => content.push(Part::Thinking {
                text: str_of(b, "thinking").unwrap_or_default(),
                signature: None,
            }),
            _ => {}
        }
    }
    for c in m
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        content.push(Part::ToolCall(tool_call(c)));
    }
    Response {
        id: str_of(v, "id").unwrap_or_default(),
        model: String::new(),
        stop: v
            .get("finish_reason")
            .and_then(Value::as_str)
            .map_or(StopReason::EndTurn, stop_from),
        content,
        usage: usage_from(v.get("usage").unwrap_or(&Value::Null)),
    }
}

/// Cohere's chat SSE → internal chunks: `message-start`, content and tool
/// call blocks of start, delta and end, `message-end` with the finish reason
/// and usage.
#[derive(Default)]
pub struct Decoder {
    w: ChunkWriter,
    /// Cohere's tool-call index → the chunks' ordinal.
    calls: Vec<(u64, u64)>,
    done: bool,
}

impl Transcode for Decoder {
    fn event(&mut self, ev: &SseEvent, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        let Some(data) = ev.data() else { return };
        let Ok(v) = serde_json::from_str::<Value>(&data) else {
            return;
        };
        let kind = v
            .get("type")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| ev.event_type())
            .unwrap_or_default();
        let index = v.get("index").and_then(Value::as_u64).unwrap_or(0);
        let m = v.pointer("/delta/message").unwrap_or(&Value::Null);
        match kind.as_str() {
            "message-start" => {
                self.w.id = str_of(&v, "id").unwrap_or_default();
                self.w.begin(out);
            }
            "content-delta" => {
                self.w.begin(out);
                if let Some(t) = m.pointer("/content/text").and_then(Value::as_str) {
                    self.w.delta(json!({"content": t}), None, out);
                } else if let Some(t) = m.pointer("/content/thinking").and_then(Value::as_str) {
                    self.w.delta(json!({"reasoning_content": t}), None, out);
                }
            }
            "tool-call-start" => {
                self.w.begin(out);
                let ordinal = self.calls.len() as u64;
                self.calls.push((index, ordinal));
                let c = m.get("tool_calls").unwrap_or(&Value::Null);
                let call = tool_call(c);
                self.w.delta(
                    json!({"tool_calls": [{"index": ordinal, "id": call.id, "type": "function",
                        "function": {"name": call.name, "arguments": c.pointer("/function/arguments").and_then(Value::as_str).unwrap_or("")}}]}),
                    None,
                    out,
                );
            }
            "tool-call-delta" => {
                let Some(&(_, ordinal)) = self.calls.iter().find(|(i, _)| *i == index) else {
                    return;
                };
                if let Some(a) = m
                    .pointer("/tool_calls/function/arguments")
                    .and_then(Value::as_str)
                {
                    self.w.delta(
                        json!({"tool_calls": [{"index": ordinal, "function": {"arguments": a}}]}),
                        None,
                        out,
                    );
                }
            }
            "message-end" => {
                self.w.begin(out);
                let d = v.get("delta").unwrap_or(&Value::Null);
                let stop = d
                    .get("finish_reason")
                    .and_then(Value::as_str)
                    .map_or(StopReason::EndTurn, stop_from);
                let stop = if self.calls.is_empty() || stop != StopReason::EndTurn {
                    stop
                } else {
                    StopReason::ToolUse
                };
                self.w
                    .delta(json!({}), Some(openai::finish_reason(stop)), out);
                self.w
                    .usage(&usage_from(d.get("usage").unwrap_or(&Value::Null)), out);
                ChunkWriter::done(out);
                self.done = true;
            }
            "error" => {
                let message = v
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("upstream error");
                ChunkWriter::error(message, out);
                self.done = true;
            }
            // content-start/end, tool-call-end, tool-plan-delta, citations.
            _ => {}
        }
    }

    /// A stream that ended before `message-end` is incomplete: nothing is
    /// added, and the client's encoder fails it.
    fn end(&mut self, _out: &mut Vec<u8>) {}
}

/// A Cohere answer as the fields a mock or a test builds it from.
pub fn response_to_cohere(r: &Response) -> Value {
    let mut content = Vec::new();
    let mut calls = Vec::new();
    for p in &r.content {
        match p {
            Part::Text(t) => content.push(json!({"type": "text", "text": t})),
            Part::Thinking { text, .. } => {
                content.push(json!({"type": "thinking", "thinking": text}))
            }
            Part::ToolCall(c) => calls.push(json!({"id": c.id, "type": "function",
                "function": {"name": c.name, "arguments": c.arguments}})),
            _ => {}
        }
    }
    let mut message = Map::new();
    message.insert("role".into(), json!("assistant"));
    message.insert("content".into(), Value::Array(content));
    if !calls.is_empty() {
        message.insert("tool_calls".into(), Value::Array(calls));
    }
    let finish = match r.stop {
        StopReason::MaxTokens => "MAX_TOKENS",
        StopReason::StopSequence => "STOP_SEQUENCE",
        StopReason::ToolUse => "TOOL_CALL",
        StopReason::ContentFilter => "ERROR_TOXIC",
        StopReason::EndTurn => "COMPLETE",
    };
    json!({"id": r.id, "finish_reason": finish, "message": message,
        "usage": {"billed_units": {"input_tokens": r.usage.prompt_tokens, "output_tokens": r.usage.completion_tokens},
                  "tokens": {"input_tokens": r.usage.prompt_tokens, "output_tokens": r.usage.completion_tokens}}})
}

#[cfg(test)]
mod tests;
