//! Anthropic Messages ↔ canonical, and its SSE event stream in both directions.

use serde_json::{Map, Value, json};

use base64::Engine as _;

use super::canonical::{
    CacheControl, Document, Image, Invalid, Part, Request, Response, Role, StopReason, Thinking,
    Tool, ToolCall, ToolChoice, Usage, error_message, invalid, mark_last, str_of, strings,
};
use super::openai::{ChunkWriter, Delta, named_event, push};
use super::{Encode, Transcode};
use crate::providers::sse::SseEvent;

/// What the API requires when a request names no `max_tokens`.
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

fn text_or_blocks(v: &Value) -> Result<Vec<Part>, Invalid> {
    match v {
        Value::Null => Ok(vec![]),
        Value::String(s) => Ok(vec![Part::Text(s.clone())]),
        Value::Array(blocks) => {
            let mut out = Vec::with_capacity(blocks.len());
            for b in blocks {
                if let Some(p) = block_from(b)? {
                    out.push(p);
                    if let Some(c) = cache_of(b) {
                        mark_last(&mut out, c);
                    }
                }
            }
            Ok(out)
        }
        _ => Err(invalid("content must be a string or an array of blocks")),
    }
}

/// A block's `cache_control`. Anthropic's own clients reach Anthropic with
/// their body untouched, so markers read here only matter on the way to
/// other formats, which drop them: one Anthropic validates is not refused
/// here, only left out when the canonical model cannot hold it.
fn cache_of(b: &Value) -> Option<CacheControl> {
    CacheControl::of(b).ok().flatten()
}

fn block_from(b: &Value) -> Result<Option<Part>, Invalid> {
    let part = match b.get("type").and_then(Value::as_str) {
        Some("text") => Part::Text(str_of(b, "text").unwrap_or_default()),
        Some("image") => {
            let src = b.get("source").unwrap_or(&Value::Null);
            match src.get("type").and_then(Value::as_str) {
                Some("base64") => Part::Image(Image::Base64 {
                    media_type: str_of(src, "media_type").unwrap_or_default(),
                    data: str_of(src, "data").unwrap_or_default(),
                }),
                Some("url") => Part::Image(Image::Url(str_of(src, "url").unwrap_or_default())),
                _ => return Err(invalid("image source must be base64 or url")),
            }
        }
        Some("document") => {
            let src = b.get("source").unwrap_or(&Value::Null);
            let (media_type, data) = match src.get("type").and_then(Value::as_str) {
                Some("base64") => (
                    str_of(src, "media_type").unwrap_or_default(),
                    str_of(src, "data").unwrap_or_default(),
                ),
                Some("text") => (
                    "text/plain".to_string(),
                    base64::engine::general_purpose::STANDARD
                        .encode(str_of(src, "data").unwrap_or_default()),
                ),
                // URL and file sources have no inline bytes to carry.
                _ => return Ok(None),
            };
            Part::Document(Document {
                media_type,
                data,
                name: str_of(b, "title"),
            })
        }
        Some("thinking") => Part::Thinking {
            text: str_of(b, "thinking").unwrap_or_default(),
            signature: str_of(b, "signature"),
        },
        Some("tool_use") => Part::ToolCall(ToolCall {
            id: str_of(b, "id").unwrap_or_default(),
            name: str_of(b, "name").unwrap_or_default(),
            arguments: b.get("input").map_or("{}".into(), Value::to_string),
        }),
        Some("tool_result") => Part::ToolResult {
            call_id: str_of(b, "tool_use_id").unwrap_or_default(),
            content: text_or_blocks(b.get("content").unwrap_or(&Value::Null))?,
            is_error: b.get("is_error").and_then(Value::as_bool).unwrap_or(false),
        },
        // Redacted thinking, documents, search results, server tools: no
        // counterpart in the other formats.
        _ => return Ok(None),
    };
    Ok(Some(part))
}

/// A Messages request body as canonical.
pub fn request_from_anthropic(v: &Value) -> Result<Request, Invalid> {
    let mut r = Request {
        model: str_of(v, "model").ok_or_else(|| invalid("model: field required"))?,
        stream: v.get("stream").and_then(Value::as_bool).unwrap_or(false),
        temperature: v.get("temperature").and_then(Value::as_f64),
        top_p: v.get("top_p").and_then(Value::as_f64),
        max_tokens: v.get("max_tokens").and_then(Value::as_u64),
        stop: strings(v.get("stop_sequences")),
        fallbacks: strings(v.get("fallbacks")),
        ..Request::default()
    };
    match v.get("system") {
        Some(Value::String(s)) => r.system.push(s.clone()),
        Some(Value::Array(blocks)) => {
            for b in blocks {
                let Some(t) = str_of(b, "text").filter(|t| !t.is_empty()) else {
                    continue;
                };
                r.system.push(t);
                if let Some(c) = cache_of(b) {
                    r.system_cache.push((r.system.len() - 1, c));
                }
            }
        }
        _ => {}
    }
    for m in v
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("messages: field required"))?
    {
        let role = match m.get("role").and_then(Value::as_str) {
            Some("user") => Role::User,
            Some("assistant") => Role::Assistant,
            other => return Err(invalid(format!("unknown message role {other:?}"))),
        };
        let content = text_or_blocks(m.get("content").unwrap_or(&Value::Null))?;
        push(&mut r.messages, role, content);
    }
    for t in v
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        // Server tools (web search, code execution) carry a `type` and no schema.
        let Some(schema) = t.get("input_schema") else {
            continue;
        };
        r.tools.push(Tool {
            name: str_of(t, "name").unwrap_or_default(),
            description: str_of(t, "description"),
            parameters: schema.clone(),
            cache: cache_of(t),
        });
    }
    if let Some(c) = v.get("tool_choice") {
        r.tool_choice = match c.get("type").and_then(Value::as_str) {
            Some("any") => Some(ToolChoice::Required),
            Some("none") => Some(ToolChoice::None),
            Some("tool") => str_of(c, "name").map(ToolChoice::Tool),
            _ => Some(ToolChoice::Auto),
        };
        if c.get("disable_parallel_tool_use").and_then(Value::as_bool) == Some(true) {
            r.parallel_tool_calls = Some(false);
        }
    }
    if let Some(t) = v.get("thinking")
        && t.get("type").and_then(Value::as_str) == Some("enabled")
    {
        r.thinking = Some(Thinking {
            budget_tokens: t
                .get("budget_tokens")
                .and_then(Value::as_u64)
                .unwrap_or(1024),
        });
    }
    Ok(r)
}

fn image_block(i: &Image) -> Value {
    match i {
        Image::Base64 { media_type, data } => {
            json!({"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}})
        }
        Image::Url(u) => json!({"type": "image", "source": {"type": "url", "url": u}}),
    }
}

fn block_to(p: &Part) -> Option<Value> {
    Some(match p {
        Part::Text(t) if t.is_empty() => return None,
        Part::Text(t) => json!({"type": "text", "text": t}),
        Part::Image(i) => image_block(i),
        // Plain text as a text source; every other type as base64 (Anthropic
        // takes PDFs, and says so of any other type it refuses).
        Part::Document(d) => {
            let mut b = json!({"type": "document", "source": {"type": "base64", "media_type": d.media_type, "data": d.data}});
            if d.media_type == "text/plain"
                && let Some(text) = base64_text(&d.data)
            {
                b["source"] = json!({"type": "text", "media_type": "text/plain", "data": text});
            }
            if let Some(n) = &d.name {
                b["title"] = json!(n);
            }
            b
        }
        // Anthropic verifies thinking it is sent back; unsigned thinking
        // (from another provider) cannot be, so it is left out.
        Part::Thinking {
            text,
            signature: Some(s),
        } => json!({"type": "thinking", "thinking": text, "signature": s}),
        Part::Thinking { .. } => return None,
        Part::ToolCall(c) => {
            let input: Value = serde_json::from_str(&c.arguments).unwrap_or_else(|_| json!({}));
            json!({"type": "tool_use", "id": c.id, "name": c.name, "input": input})
        }
        Part::ToolResult {
            call_id,
            content,
            is_error,
        } => {
            let blocks = blocks_to(content);
            let mut b = json!({"type": "tool_result", "tool_use_id": call_id, "content": blocks});
            if *is_error {
                b["is_error"] = json!(true);
            }
            b
        }
        Part::CacheBreak(_) => return None,
    })
}

/// The blocks of `parts`, each cache breakpoint written as `cache_control`
/// on the block before it. Anthropic takes the marker on text, image,
/// tool-use and tool-result blocks; after any other (or none) it is left out.
fn blocks_to(parts: &[Part]) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::with_capacity(parts.len());
    let mut last_kept = false;
    for p in parts {
        match p {
            Part::CacheBreak(c) => {
                if last_kept
                    && let Some(b) = out.last_mut()
                    && matches!(
                        b["type"].as_str(),
                        Some("text" | "image" | "tool_use" | "tool_result")
                    )
                {
                    b["cache_control"] = c.to_value();
                }
            }
            p => {
                let block = block_to(p);
                last_kept = block.is_some();
                out.extend(block);
            }
        }
    }
    out
}

/// The Messages body for `r`, naming `model`.
pub fn request_to_anthropic(r: &Request, model: &str) -> Value {
    let mut out = Map::new();
    out.insert("model".into(), json!(model));
    let mut max_tokens = r.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS);
    if let Some(t) = r.thinking {
        // The API wants the budget below max_tokens and at least 1024.
        let budget = t.budget_tokens.max(1024);
        max_tokens = max_tokens.max(budget + 1);
        out.insert(
            "thinking".into(),
            json!({"type": "enabled", "budget_tokens": budget}),
        );
    }
    out.insert("max_tokens".into(), json!(max_tokens));
    if !r.system.is_empty() && r.system_cache.is_empty() {
        out.insert("system".into(), json!(r.system.join("\n\n")));
    } else if !r.system.is_empty() {
        // Breakpoints need blocks: one text block per system part.
        let blocks: Vec<Value> = r
            .system
            .iter()
            .enumerate()
            .filter(|(_, t)| !t.is_empty())
            .map(|(i, t)| {
                let mut b = json!({"type": "text", "text": t});
                if let Some((_, c)) = r.system_cache.iter().find(|(at, _)| *at == i) {
                    b["cache_control"] = c.to_value();
                }
                b
            })
            .collect();
        out.insert("system".into(), Value::Array(blocks));
    }
    let messages: Vec<Value> = r
        .messages
        .iter()
        .filter_map(|m| {
            let blocks = blocks_to(&m.content);
            (!blocks.is_empty()).then(|| {
                json!({"role": if m.role == Role::User { "user" } else { "assistant" }, "content": blocks})
            })
        })
        .collect();
    out.insert("messages".into(), Value::Array(messages));
    if let Some(t) = r.temperature {
        out.insert("temperature".into(), json!(t));
    }
    if let Some(p) = r.top_p {
        out.insert("top_p".into(), json!(p));
    }
    if !r.stop.is_empty() {
        out.insert("stop_sequences".into(), json!(r.stop));
    }
    if !r.tools.is_empty() {
        let tools: Vec<Value> = r
            .tools
            .iter()
            .map(|t| {
                let mut d = t.declaration("input_schema");
                if let Some(c) = t.cache {
                    d["cache_control"] = c.to_value();
                }
                d
            })
            .collect();
        out.insert("tools".into(), Value::Array(tools));
        let mut choice = match &r.tool_choice {
            Some(ToolChoice::Required) => json!({"type": "any"}),
            Some(ToolChoice::None) => json!({"type": "none"}),
            Some(ToolChoice::Tool(n)) => json!({"type": "tool", "name": n}),
            _ => json!({"type": "auto"}),
        };
        if r.parallel_tool_calls == Some(false) {
            choice["disable_parallel_tool_use"] = json!(true);
        }
        if r.tool_choice.is_some() || r.parallel_tool_calls == Some(false) {
            out.insert("tool_choice".into(), choice);
        }
    }
    if r.stream {
        out.insert("stream".into(), json!(true));
    }
    Value::Object(out)
}

pub fn stop_reason(s: StopReason) -> &'static str {
    match s {
        StopReason::EndTurn => "end_turn",
        StopReason::MaxTokens => "max_tokens",
        StopReason::StopSequence => "stop_sequence",
        StopReason::ToolUse => "tool_use",
        StopReason::ContentFilter => "refusal",
    }
}

fn stop_from(s: &str) -> StopReason {
    match s {
        "max_tokens" | "model_context_window_exceeded" => StopReason::MaxTokens,
        "stop_sequence" => StopReason::StopSequence,
        "tool_use" => StopReason::ToolUse,
        "refusal" => StopReason::ContentFilter,
        _ => StopReason::EndTurn,
    }
}

/// Anthropic counts cached input apart from `input_tokens`; canonical usage
/// counts the whole prompt, of which `cached_tokens` came from cache.
pub fn usage_from(u: &Value) -> Usage {
    let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
    let prompt = n("input_tokens")
        .saturating_add(n("cache_read_input_tokens"))
        .saturating_add(n("cache_creation_input_tokens"));
    let hour = u
        .pointer("/cache_creation/ephemeral_1h_input_tokens")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    Usage {
        prompt_tokens: prompt,
        completion_tokens: n("output_tokens"),
        total_tokens: prompt.saturating_add(n("output_tokens")),
        cached_tokens: n("cache_read_input_tokens"),
        cache_write_tokens: n("cache_creation_input_tokens"),
        cache_write_1h_tokens: hour.min(n("cache_creation_input_tokens")),
        ..Usage::default()
    }
}

pub fn usage_to(u: &Usage) -> Value {
    json!({
        "input_tokens": u
            .prompt_tokens
            .saturating_sub(u.cached_tokens)
            .saturating_sub(u.cache_write_tokens),
        "output_tokens": u.completion_tokens,
        "cache_read_input_tokens": u.cached_tokens,
        "cache_creation_input_tokens": u.cache_write_tokens,
    })
}

pub fn response_from_anthropic(v: &Value) -> Response {
    let mut content = Vec::new();
    for b in v
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Ok(Some(p)) = block_from(b) {
            content.push(p);
        }
    }
    Response {
        id: str_of(v, "id").unwrap_or_default(),
        model: str_of(v, "model").unwrap_or_default(),
        content,
        stop: v
            .get("stop_reason")
            .and_then(Value::as_str)
            .map_or(StopReason::EndTurn, stop_from),
        usage: usage_from(v.get("usage").unwrap_or(&Value::Null)),
    }
}

pub fn response_to_anthropic(r: &Response) -> Value {
    let content: Vec<Value> = r
        .content
        .iter()
        .filter_map(|p| match p {
            // Reasoning from providers that do not sign it is still shown.
            Part::Thinking { text, signature } => Some(
                json!({"type": "thinking", "thinking": text, "signature": signature.clone().unwrap_or_default()}),
            ),
            p => block_to(p),
        })
        .collect();
    json!({
        "id": anthropic_id(&r.id), "type": "message", "role": "assistant", "model": r.model,
        "content": content, "stop_reason": stop_reason(r.stop), "stop_sequence": null,
        "usage": usage_to(&r.usage),
    })
}

fn anthropic_id(id: &str) -> String {
    if id.starts_with("msg_") {
        id.to_string()
    } else {
        format!("msg_{}", id.trim_start_matches("chatcmpl-"))
    }
}

/// The error type Anthropic uses for an HTTP status.
pub fn error_type(status: u16) -> &'static str {
    match status {
        400 | 422 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        529 | 503 => "overloaded_error",
        _ => "api_error",
    }
}

pub fn error_body(status: u16, message: &str) -> Value {
    json!({"type": "error", "error": {"type": error_type(status), "message": message}})
}

/// Anthropic SSE → internal chunks.
#[derive(Default)]
pub struct Decoder {
    w: ChunkWriter,
    usage: Usage,
    /// Content block index → tool-call ordinal, for blocks that are tool calls.
    tools: Vec<(u64, u64)>,
    stop: Option<StopReason>,
}

impl Transcode for Decoder {
    fn event(&mut self, ev: &SseEvent, out: &mut Vec<u8>) {
        let Some(data) = ev.data() else { return };
        let Ok(v) = serde_json::from_str::<Value>(&data) else {
            return;
        };
        let index = v.get("index").and_then(Value::as_u64).unwrap_or(0);
        match v.get("type").and_then(Value::as_str).unwrap_or_default() {
            "message_start" => {
                let m = v.get("message").unwrap_or(&Value::Null);
                self.usage = usage_from(m.get("usage").unwrap_or(&Value::Null));
                self.w = ChunkWriter::new(
                    str_of(m, "id").unwrap_or_default(),
                    str_of(m, "model").unwrap_or_default(),
                );
                self.w
                    .delta(json!({"role": "assistant", "content": ""}), None, out);
            }
            "content_block_start" => {
                let b = v.get("content_block").unwrap_or(&Value::Null);
                match b.get("type").and_then(Value::as_str) {
                    Some("tool_use") => {
                        let ordinal = self.tools.len() as u64;
                        self.tools.push((index, ordinal));
                        self.w.delta(
                            json!({"tool_calls": [{"index": ordinal, "id": b["id"], "type": "function",
                                "function": {"name": b["name"], "arguments": ""}}]}),
                            None,
                            out,
                        );
                    }
                    Some("text") => {
                        if let Some(t) = b.get("text").and_then(Value::as_str)
                            && !t.is_empty()
                        {
                            self.w.delta(json!({"content": t}), None, out);
                        }
                    }
                    _ => {}
                }
            }
            "content_block_delta" => {
                let d = v.get("delta").unwrap_or(&Value::Null);
                let delta = match d.get("type").and_then(Value::as_str) {
                    Some("text_delta") => json!({"content": d["text"]}),
                    Some("thinking_delta") => json!({"reasoning_content": d["thinking"]}),
                    Some("signature_delta") => json!({"reasoning_signature": d["signature"]}),
                    Some("input_json_delta") => {
                        let Some(&(_, ordinal)) = self.tools.iter().find(|(i, _)| *i == index)
                        else {
                            return;
                        };
                        json!({"tool_calls": [{"index": ordinal, "function": {"arguments": d["partial_json"]}}]})
                    }
                    _ => return,
                };
                self.w.delta(delta, None, out);
            }
            "message_delta" => {
                if let Some(s) = v.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    self.stop = Some(stop_from(s));
                }
                if let Some(u) = v.get("usage") {
                    let later = usage_from(u);
                    self.usage.completion_tokens = later.completion_tokens;
                    if later.prompt_tokens > 0 {
                        self.usage.prompt_tokens = later.prompt_tokens;
                        self.usage.cached_tokens = later.cached_tokens;
                        self.usage.cache_write_tokens = later.cache_write_tokens;
                        self.usage.cache_write_1h_tokens = later.cache_write_1h_tokens;
                    }
                    self.usage.total_tokens = self
                        .usage
                        .prompt_tokens
                        .saturating_add(self.usage.completion_tokens);
                }
            }
            "message_stop" => {
                let finish = super::openai::finish_reason(self.stop.unwrap_or_default());
                self.w.delta(json!({}), Some(finish), out);
                self.w.usage(&self.usage, out);
                ChunkWriter::done(out);
            }
            "error" => ChunkWriter::error(error_message(&v).unwrap_or("upstream error"), out),
            _ => {}
        }
    }

    fn end(&mut self, _out: &mut Vec<u8>) {}
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Text,
    Thinking,
    /// A tool call, by its index in the chunks' `tool_calls`.
    Tool(u64),
}

/// Internal chunks → Anthropic SSE, with the exact event sequence the SDKs
/// expect: `message_start`, `ping`, blocks of start/delta/stop,
/// `message_delta`, `message_stop`; or an `error` event if the stream fails.
#[derive(Default)]
pub struct Encoder {
    /// The model name to report (the one the client asked for).
    pub model: String,
    started: bool,
    blocks: super::Blocks<Block>,
    stop: Option<StopReason>,
    usage: Usage,
    finished: bool,
}

impl Encoder {
    pub fn new(model: String) -> Encoder {
        Encoder {
            model,
            ..Encoder::default()
        }
    }

    fn start(&mut self, id: &str, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        named_event(
            "message_start",
            &json!({"type": "message_start", "message": {"id": anthropic_id(id), "type": "message",
                "role": "assistant", "model": self.model, "content": [], "stop_reason": null,
                "stop_sequence": null, "usage": {"input_tokens": 0, "output_tokens": 0}}}),
            out,
        );
        named_event("ping", &json!({"type": "ping"}), out);
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        if let Some(index) = self.blocks.close() {
            Self::stop_block(index, out);
        }
    }

    fn stop_block(index: u64, out: &mut Vec<u8>) {
        named_event(
            "content_block_stop",
            &json!({"type": "content_block_stop", "index": index}),
            out,
        );
    }

    /// The index of an open block of `kind`, opening it (and closing another) if needed.
    fn block(&mut self, kind: Block, start: Value, out: &mut Vec<u8>) -> u64 {
        let (closed, index) = match self.blocks.enter(kind) {
            super::Entered::Open(i) => return i,
            super::Entered::New { closed, index } => (closed, index),
        };
        if let Some(c) = closed {
            Self::stop_block(c, out);
        }
        named_event(
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": start}),
            out,
        );
        index
    }

    fn delta(index: u64, delta: Value, out: &mut Vec<u8>) {
        named_event(
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": index, "delta": delta}),
            out,
        );
    }
}

impl Encode for Encoder {
    fn finished(&self) -> bool {
        self.finished
    }

    fn delta(&mut self, c: Delta, out: &mut Vec<u8>) {
        let Delta {
            id,
            usage,
            delta: d,
            finish,
        } = c;
        self.start(id.as_deref().unwrap_or(""), out);
        if let Some(u) = usage {
            self.usage = u;
        }
        let d = &d;
        if let Some(t) = d.get("reasoning_content").and_then(Value::as_str)
            && !t.is_empty()
        {
            let i = self.block(
                Block::Thinking,
                json!({"type": "thinking", "thinking": "", "signature": ""}),
                out,
            );
            Self::delta(i, json!({"type": "thinking_delta", "thinking": t}), out);
        }
        if let Some(s) = d.get("reasoning_signature").and_then(Value::as_str) {
            let i = self.block(
                Block::Thinking,
                json!({"type": "thinking", "thinking": "", "signature": ""}),
                out,
            );
            Self::delta(i, json!({"type": "signature_delta", "signature": s}), out);
        }
        if let Some(t) = d.get("content").and_then(Value::as_str)
            && !t.is_empty()
        {
            let i = self.block(Block::Text, json!({"type": "text", "text": ""}), out);
            Self::delta(i, json!({"type": "text_delta", "text": t}), out);
        }
        for c in d
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let ordinal = c.get("index").and_then(Value::as_u64).unwrap_or(0);
            let kind = Block::Tool(ordinal);
            if self.blocks.open_as(kind).is_none() {
                let start = json!({"type": "tool_use", "id": c.get("id").cloned().unwrap_or(json!(format!("toolu_{ordinal}"))),
                    "name": c.pointer("/function/name").cloned().unwrap_or(json!("")), "input": {}});
                self.block(kind, start, out);
            }
            if let Some(args) = c.pointer("/function/arguments").and_then(Value::as_str)
                && !args.is_empty()
            {
                let i = self.blocks.open_as(kind).expect("opened above");
                Self::delta(
                    i,
                    json!({"type": "input_json_delta", "partial_json": args}),
                    out,
                );
            }
        }
        if let Some(f) = finish {
            self.stop = Some(f);
        }
    }

    /// The end marker: close what is open and end the stream as the format does.
    fn complete(&mut self, out: &mut Vec<u8>) {
        self.start("", out);
        self.close(out);
        let mut usage = usage_to(&self.usage);
        usage["output_tokens"] = json!(self.usage.completion_tokens);
        named_event(
            "message_delta",
            &json!({"type": "message_delta", "delta": {"stop_reason": stop_reason(self.stop.unwrap_or_default()), "stop_sequence": null}, "usage": usage}),
            out,
        );
        named_event("message_stop", &json!({"type": "message_stop"}), out);
        self.finished = true;
    }

    fn fail(&mut self, message: &str, out: &mut Vec<u8>) {
        // The SDKs read no event before `message_start`.
        self.start("", out);
        self.finished = true;
        named_event("error", &error_body(502, message), out);
    }
}

/// Base64 that decodes to UTF-8 text, as that text.
fn base64_text(data: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .ok()?;
    String::from_utf8(bytes).ok()
}
