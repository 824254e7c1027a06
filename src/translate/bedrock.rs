//! Bedrock Converse ↔ canonical, and ConverseStream's events both ways.
//!
//! Converse is close to Anthropic's Messages: typed content blocks, tool
//! results in user turns, cache points as blocks of their own. Images
//! travel as bytes (base64 in JSON); an image given by URL cannot be, and
//! is left out. ConverseStream's events arrive in the AWS event-stream
//! framing ([`crate::providers::aws::eventstream`]); the transcoder turns
//! each message into an event named by its `:event-type` (or, for an
//! exception, its `:exception-type`) before [`Decoder`] reads it, and
//! [`Encoder`] writes its events in that framing.

use serde_json::{Map, Value, json};

use super::canonical::{
    CacheControl, DOCUMENT_FORMATS, Document, Image, Invalid, Part, Request, Response, Role,
    StopReason, Thinking, Tool, ToolCall, ToolChoice, Usage, invalid, mark_last, str_of, strings,
};
use super::openai::{ChunkWriter, Delta, push};
use super::{Encode, Transcode};
use crate::providers::aws::eventstream;
use crate::providers::sse::SseEvent;

const CACHE_POINT: &str = "cachePoint";

fn cache_point() -> Value {
    json!({CACHE_POINT: {"type": "default"}})
}

/// `image/png` → `png`, as Converse names image formats.
fn image_format(media_type: &str) -> Option<&str> {
    match media_type.strip_prefix("image/")? {
        "jpg" => Some("jpeg"),
        f @ ("png" | "jpeg" | "gif" | "webp") => Some(f),
        _ => None,
    }
}

fn block_from(b: &Value) -> Option<Part> {
    if let Some(t) = b.get("text").and_then(Value::as_str) {
        return Some(Part::Text(t.to_string()));
    }
    if let Some(i) = b.get("image") {
        let format = str_of(i, "format").unwrap_or_else(|| "png".into());
        return Some(Part::Image(Image::Base64 {
            media_type: format!("image/{format}"),
            data: i.pointer("/source/bytes")?.as_str()?.to_string(),
        }));
    }
    if let Some(u) = b.get("toolUse") {
        return Some(Part::ToolCall(ToolCall {
            id: str_of(u, "toolUseId").unwrap_or_default(),
            name: str_of(u, "name").unwrap_or_default(),
            arguments: u.get("input").map_or("{}".into(), Value::to_string),
        }));
    }
    if let Some(r) = b.get("toolResult") {
        let content = r
            .get("content")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|c| match c.get("json") {
                Some(j) => Some(Part::Text(j.to_string())),
                None => block_from(c),
            })
            .collect();
        return Some(Part::ToolResult {
            call_id: str_of(r, "toolUseId").unwrap_or_default(),
            content,
            is_error: r.get("status").and_then(Value::as_str) == Some("error"),
        });
    }
    if let Some(t) = b.pointer("/reasoningContent/reasoningText") {
        return Some(Part::Thinking {
            text: str_of(t, "text").unwrap_or_default(),
            signature: str_of(t, "signature"),
        });
    }
    if let Some(d) = b.get("document") {
        let format = str_of(d, "format").unwrap_or_default();
        let media_type = DOCUMENT_FORMATS.iter().find(|(f, _)| *f == format)?.1;
        return Some(Part::Document(Document {
            media_type: media_type.to_string(),
            data: d
                .pointer("/source/bytes")
                .and_then(Value::as_str)?
                .to_string(),
            name: str_of(d, "name"),
        }));
    }
    // Videos, documents in S3, guardrail content, redacted reasoning: no
    // counterpart in the other formats.
    None
}

fn blocks_from(blocks: Option<&Value>) -> Vec<Part> {
    let mut out = Vec::new();
    for b in blocks.and_then(Value::as_array).into_iter().flatten() {
        if b.get(CACHE_POINT).is_some() {
            mark_last(&mut out, CacheControl { ttl: None });
        } else if let Some(p) = block_from(b) {
            out.push(p);
        }
    }
    out
}

/// A Converse body as canonical; the model and streaming come from the URL.
pub fn request_from_bedrock(v: &Value, model: &str, stream: bool) -> Result<Request, Invalid> {
    let c = v.get("inferenceConfig").unwrap_or(&Value::Null);
    let mut r = Request {
        model: model.to_string(),
        stream,
        temperature: c.get("temperature").and_then(Value::as_f64),
        top_p: c.get("topP").and_then(Value::as_f64),
        max_tokens: c.get("maxTokens").and_then(Value::as_u64),
        stop: strings(c.get("stopSequences")),
        fallbacks: strings(v.get("fallbacks")),
        ..Request::default()
    };
    for s in v
        .get("system")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if s.get(CACHE_POINT).is_some() {
            if let Some(last) = r.system.len().checked_sub(1) {
                r.system_cache.push((last, CacheControl { ttl: None }));
            }
        } else if let Some(t) = s.get("text").and_then(Value::as_str) {
            r.system.push(t.to_string());
        }
    }
    for m in v
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("messages is required"))?
    {
        let role = match m.get("role").and_then(Value::as_str) {
            Some("assistant") => Role::Assistant,
            Some("user") => Role::User,
            other => {
                return Err(invalid(format!(
                    "a message's role must be user or assistant, not {}",
                    other.unwrap_or("missing")
                )));
            }
        };
        push(&mut r.messages, role, blocks_from(m.get("content")));
    }
    let tc = v.get("toolConfig").unwrap_or(&Value::Null);
    for t in tc
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if t.get(CACHE_POINT).is_some() {
            if let Some(last) = r.tools.last_mut() {
                last.cache = Some(CacheControl { ttl: None });
            }
            continue;
        }
        let Some(spec) = t.get("toolSpec") else {
            continue;
        };
        r.tools.push(Tool {
            name: str_of(spec, "name").unwrap_or_default(),
            description: str_of(spec, "description"),
            parameters: spec
                .pointer("/inputSchema/json")
                .cloned()
                .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
            cache: None,
        });
    }
    if let Some(choice) = tc.get("toolChoice") {
        r.tool_choice = Some(if choice.get("any").is_some() {
            ToolChoice::Required
        } else if let Some(name) = choice.pointer("/tool/name").and_then(Value::as_str) {
            ToolChoice::Tool(name.to_string())
        } else {
            ToolChoice::Auto
        });
    }
    // Claude's extended thinking, as Bedrock passes it through.
    if let Some(t) = v.pointer("/additionalModelRequestFields/thinking")
        && t.get("type").and_then(Value::as_str) == Some("enabled")
    {
        r.thinking = Some(Thinking {
            budget_tokens: t
                .get("budget_tokens")
                .and_then(Value::as_u64)
                .unwrap_or(8192),
        });
    }
    Ok(r)
}

fn block_to(p: &Part) -> Option<Value> {
    Some(match p {
        // Converse refuses blank text blocks.
        Part::Text(t) if t.trim().is_empty() => return None,
        Part::Text(t) => json!({"text": t}),
        Part::Image(Image::Base64 { media_type, data }) => {
            let format = image_format(media_type).unwrap_or("png");
            json!({"image": {"format": format, "source": {"bytes": data}}})
        }
        // Converse takes images as bytes or S3 objects only.
        Part::Image(Image::Url(_)) => return None,
        // A type Converse has no format for is left out.
        Part::Document(d) => {
            let format = DOCUMENT_FORMATS
                .iter()
                .find(|(_, t)| *t == d.media_type)
                .map(|(f, _)| *f)?;
            let name = document_name(d.name.as_deref());
            json!({"document": {"format": format, "name": name, "source": {"bytes": d.data}}})
        }
        Part::Thinking { text, signature } => {
            let mut t = json!({"text": text});
            if let Some(s) = signature {
                t["signature"] = json!(s);
            }
            json!({"reasoningContent": {"reasoningText": t}})
        }
        Part::ToolCall(c) => {
            let input: Value = serde_json::from_str(&c.arguments).unwrap_or_else(|_| json!({}));
            json!({"toolUse": {"toolUseId": c.id, "name": c.name, "input": input}})
        }
        Part::ToolResult {
            call_id,
            content,
            is_error,
        } => {
            let mut inner: Vec<Value> = content.iter().filter_map(block_to).collect();
            if inner.is_empty() {
                inner.push(json!({"text": "(empty)"}));
            }
            json!({"toolResult": {"toolUseId": call_id, "content": inner,
                "status": if *is_error { "error" } else { "success" }}})
        }
        Part::CacheBreak(_) => cache_point(),
    })
}

/// The Converse body for `r` to `model` (the model goes in the URL; it
/// says whether Claude's thinking field may be sent).
pub fn request_to_bedrock(r: &Request, model: &str) -> Value {
    let messages: Vec<Value> = r
        .messages
        .iter()
        .filter_map(|m| {
            let content: Vec<Value> = m.content.iter().filter_map(block_to).collect();
            // A turn of nothing but cache points is no turn.
            (content.iter().any(|b| b.get(CACHE_POINT).is_none())).then(|| {
                json!({"role": if m.role == Role::User { "user" } else { "assistant" }, "content": content})
            })
        })
        .collect();
    let mut out = Map::new();
    out.insert("messages".into(), Value::Array(messages));
    if !r.system.is_empty() {
        let mut system = Vec::new();
        for (i, s) in r.system.iter().enumerate() {
            system.push(json!({"text": s}));
            if r.system_cache.iter().any(|(at, _)| *at == i) {
                system.push(cache_point());
            }
        }
        out.insert("system".into(), Value::Array(system));
    }
    let mut c = Map::new();
    if let Some(n) = r.max_tokens {
        c.insert("maxTokens".into(), json!(n));
    }
    if let Some(t) = r.temperature {
        c.insert("temperature".into(), json!(t));
    }
    if let Some(p) = r.top_p {
        c.insert("topP".into(), json!(p));
    }
    if !r.stop.is_empty() {
        c.insert("stopSequences".into(), json!(r.stop));
    }
    if !c.is_empty() {
        out.insert("inferenceConfig".into(), Value::Object(c));
    }
    if !r.tools.is_empty() && r.tool_choice != Some(ToolChoice::None) {
        let mut tools = Vec::new();
        for t in &r.tools {
            tools.push(json!({"toolSpec": {
                "name": t.name,
                "description": t.description.clone().unwrap_or_else(|| t.name.clone()),
                "inputSchema": {"json": t.parameters},
            }}));
            if t.cache.is_some() {
                tools.push(cache_point());
            }
        }
        let mut config = json!({"tools": tools});
        match &r.tool_choice {
            Some(ToolChoice::Required) => config["toolChoice"] = json!({"any": {}}),
            Some(ToolChoice::Tool(n)) => config["toolChoice"] = json!({"tool": {"name": n}}),
            _ => {}
        }
        out.insert("toolConfig".into(), config);
    }
    if let Some(t) = r.thinking
        && is_claude(model)
    {
        out.insert(
            "additionalModelRequestFields".into(),
            json!({"thinking": {"type": "enabled", "budget_tokens": t.budget_tokens}}),
        );
    }
    Value::Object(out)
}

/// Claude on Bedrock: `anthropic.claude-…`, or an inference profile of it
/// (`us.anthropic.claude-…`, `global.anthropic.claude-…`).
fn is_claude(model: &str) -> bool {
    model.contains("anthropic.claude")
}

fn stop_from(s: &str) -> StopReason {
    match s {
        "tool_use" => StopReason::ToolUse,
        "max_tokens" | "model_context_window_exceeded" => StopReason::MaxTokens,
        "stop_sequence" => StopReason::StopSequence,
        "guardrail_intervened" | "content_filtered" => StopReason::ContentFilter,
        _ => StopReason::EndTurn,
    }
}

fn stop_to(s: StopReason) -> &'static str {
    match s {
        StopReason::EndTurn => "end_turn",
        StopReason::ToolUse => "tool_use",
        StopReason::MaxTokens => "max_tokens",
        StopReason::StopSequence => "stop_sequence",
        StopReason::ContentFilter => "content_filtered",
    }
}

/// Converse's `inputTokens` leave out cache reads and writes (as Anthropic's
/// do); canonical prompt tokens count them.
pub fn usage_from(u: &Value) -> Usage {
    let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
    let (read, write) = (n("cacheReadInputTokens"), n("cacheWriteInputTokens"));
    let prompt = n("inputTokens").saturating_add(read).saturating_add(write);
    Usage {
        prompt_tokens: prompt,
        completion_tokens: n("outputTokens"),
        total_tokens: prompt.saturating_add(n("outputTokens")),
        cached_tokens: read,
        cache_write_tokens: write,
        ..Usage::default()
    }
}

pub fn usage_to(u: &Usage) -> Value {
    let input = u
        .prompt_tokens
        .saturating_sub(u.cached_tokens)
        .saturating_sub(u.cache_write_tokens);
    json!({
        "inputTokens": input,
        "outputTokens": u.completion_tokens,
        "totalTokens": input
            .saturating_add(u.completion_tokens)
            .saturating_add(u.cached_tokens)
            .saturating_add(u.cache_write_tokens),
        "cacheReadInputTokens": u.cached_tokens,
        "cacheWriteInputTokens": u.cache_write_tokens,
    })
}

pub fn response_from_bedrock(v: &Value) -> Response {
    let content = blocks_from(v.pointer("/output/message/content"));
    Response {
        id: String::new(),
        model: String::new(),
        stop: v
            .get("stopReason")
            .and_then(Value::as_str)
            .map_or(StopReason::EndTurn, stop_from),
        content,
        usage: usage_from(v.get("usage").unwrap_or(&Value::Null)),
    }
}

pub fn response_to_bedrock(r: &Response) -> Value {
    let content: Vec<Value> = r
        .content
        .iter()
        .filter(|p| !matches!(p, Part::CacheBreak(_)))
        .filter_map(block_to)
        .collect();
    json!({
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop_to(r.stop),
        "usage": usage_to(&r.usage),
        "metrics": {"latencyMs": 0},
    })
}

/// The exception Bedrock names an HTTP status by (what the AWS SDKs raise).
pub fn exception_name(status: u16) -> &'static str {
    match status {
        400 | 413 | 422 => "ValidationException",
        401 | 403 => "AccessDeniedException",
        402 => "ServiceQuotaExceededException",
        404 => "ResourceNotFoundException",
        408 | 504 => "ModelTimeoutException",
        424 => "ModelErrorException",
        429 => "ThrottlingException",
        503 => "ServiceUnavailableException",
        _ => "InternalServerException",
    }
}

/// An error body as Bedrock's REST API writes one: the SDKs read the
/// exception's name from `__type` and the text from `message`.
pub fn error_body(status: u16, message: &str) -> Value {
    json!({"__type": exception_name(status), "message": message})
}

/// An event-stream message as the SSE event [`Decoder`] reads: named by its
/// event (or exception) type, its JSON payload as data on one line.
pub fn event_of(m: &eventstream::Message) -> SseEvent {
    let name = match m.header(":message-type") {
        Some("exception") | Some("error") => m
            .header(":exception-type")
            .or_else(|| m.header(":error-code"))
            .unwrap_or("internalServerException"),
        _ => m.header(":event-type").unwrap_or(""),
    };
    // Raw line breaks are only whitespace in valid JSON.
    let data: String = String::from_utf8_lossy(&m.payload)
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect();
    let name: String = name.chars().filter(|c| !c.is_control()).collect();
    SseEvent {
        raw: bytes::Bytes::from(format!("event: {name}\ndata: {data}\n\n")),
    }
}

/// ConverseStream events → internal chunks. Usage arrives after
/// `messageStop`, in `metadata`; the stream ends there.
#[derive(Default)]
pub struct Decoder {
    w: ChunkWriter,
    usage: Usage,
    /// Content block index → tool-call ordinal, for blocks that are tool calls.
    tools: Vec<(u64, u64)>,
    stop: Option<StopReason>,
    done: bool,
}

impl Decoder {
    fn finish(&mut self, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        self.done = true;
        let finish = super::openai::finish_reason(self.stop.unwrap_or_default());
        self.w.delta(json!({}), Some(finish), out);
        self.w.usage(&self.usage, out);
        ChunkWriter::done(out);
    }
}

impl Transcode for Decoder {
    fn event(&mut self, ev: &SseEvent, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        let name = ev.event_type().unwrap_or_default();
        let Some(data) = ev.data() else { return };
        let v: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
        let index = v
            .get("contentBlockIndex")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        match name.as_str() {
            "messageStart" => self.w.begin(out),
            "contentBlockStart" => {
                self.w.begin(out);
                if let Some(u) = v.pointer("/start/toolUse") {
                    let ordinal = self.tools.len() as u64;
                    self.tools.push((index, ordinal));
                    self.w.delta(
                        json!({"tool_calls": [{"index": ordinal, "id": u["toolUseId"], "type": "function",
                            "function": {"name": u["name"], "arguments": ""}}]}),
                        None,
                        out,
                    );
                }
            }
            "contentBlockDelta" => {
                self.w.begin(out);
                let d = v.get("delta").unwrap_or(&Value::Null);
                let delta = if let Some(t) = d.get("text") {
                    json!({"content": t})
                } else if let Some(input) = d.pointer("/toolUse/input") {
                    let Some(&(_, ordinal)) = self.tools.iter().find(|(i, _)| *i == index) else {
                        return;
                    };
                    json!({"tool_calls": [{"index": ordinal, "function": {"arguments": input}}]})
                } else if let Some(t) = d.pointer("/reasoningContent/text") {
                    json!({"reasoning_content": t})
                } else if let Some(s) = d.pointer("/reasoningContent/signature") {
                    json!({"reasoning_signature": s})
                } else {
                    return;
                };
                self.w.delta(delta, None, out);
            }
            "messageStop" => {
                self.stop = Some(
                    v.get("stopReason")
                        .and_then(Value::as_str)
                        .map_or(StopReason::EndTurn, stop_from),
                );
            }
            "metadata" => {
                if let Some(u) = v.get("usage") {
                    self.usage = usage_from(u);
                }
                if self.stop.is_some() {
                    self.finish(out);
                }
            }
            "contentBlockStop" | "" => {}
            exception => {
                let message = v
                    .get("message")
                    .or_else(|| v.get("Message"))
                    .and_then(Value::as_str)
                    .unwrap_or(exception);
                self.done = true;
                ChunkWriter::error(&format!("{exception}: {message}"), out);
            }
        }
    }

    /// The stream ended: complete if `messageStop` came (without usage if
    /// `metadata` did not).
    fn end(&mut self, out: &mut Vec<u8>) {
        if self.stop.is_some() && self.w.begun() {
            self.finish(out);
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Text,
    Reasoning,
    /// A tool call, by its index in the chunks' `tool_calls`.
    Tool(u64),
}

/// Internal chunks → ConverseStream's events in the event-stream framing:
/// `messageStart`, blocks of (start,) deltas and stop, `messageStop`, then
/// `metadata` with the usage; or an exception if the stream fails.
#[derive(Default)]
pub struct Encoder {
    started: bool,
    blocks: super::Blocks<Block>,
    stop: Option<StopReason>,
    usage: Usage,
    finished: bool,
}

/// One event of `name` with JSON `payload`.
pub fn event_frame(name: &str, payload: &Value, out: &mut Vec<u8>) {
    out.extend_from_slice(&eventstream::encode(
        &[
            (":event-type", eventstream::Value::String(name.into())),
            (
                ":content-type",
                eventstream::Value::String("application/json".into()),
            ),
            (":message-type", eventstream::Value::String("event".into())),
        ],
        payload.to_string().as_bytes(),
    ));
}

/// An exception of `name`, as ConverseStream ends a failed stream.
pub fn exception_frame(name: &str, message: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(&eventstream::encode(
        &[
            (":exception-type", eventstream::Value::String(name.into())),
            (
                ":content-type",
                eventstream::Value::String("application/json".into()),
            ),
            (
                ":message-type",
                eventstream::Value::String("exception".into()),
            ),
        ],
        json!({"message": message}).to_string().as_bytes(),
    ));
}

fn stop_block(index: u64, out: &mut Vec<u8>) {
    event_frame(
        "contentBlockStop",
        &json!({"contentBlockIndex": index}),
        out,
    );
}

impl Encoder {
    fn start(&mut self, out: &mut Vec<u8>) {
        if !self.started {
            self.started = true;
            event_frame("messageStart", &json!({"role": "assistant"}), out);
        }
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        if let Some(index) = self.blocks.close() {
            stop_block(index, out);
        }
    }

    /// The index of the open block of `kind`, opening one (and closing
    /// another) as needed; `start` is sent for a new one when given.
    fn block(&mut self, kind: Block, start: Option<Value>, out: &mut Vec<u8>) -> u64 {
        let (closed, index) = match self.blocks.enter(kind) {
            super::Entered::Open(i) => return i,
            super::Entered::New { closed, index } => (closed, index),
        };
        if let Some(c) = closed {
            stop_block(c, out);
        }
        if let Some(s) = start {
            event_frame(
                "contentBlockStart",
                &json!({"contentBlockIndex": index, "start": s}),
                out,
            );
        }
        index
    }

    fn delta(&mut self, index: u64, delta: Value, out: &mut Vec<u8>) {
        event_frame(
            "contentBlockDelta",
            &json!({"contentBlockIndex": index, "delta": delta}),
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
            usage,
            delta: d,
            finish,
            ..
        } = c;
        self.start(out);
        if let Some(u) = usage {
            self.usage = u;
        }
        if let Some(t) = d.get("reasoning_content").and_then(Value::as_str)
            && !t.is_empty()
        {
            let i = self.block(Block::Reasoning, None, out);
            self.delta(i, json!({"reasoningContent": {"text": t}}), out);
        }
        if let Some(s) = d.get("reasoning_signature").and_then(Value::as_str) {
            let i = self.block(Block::Reasoning, None, out);
            self.delta(i, json!({"reasoningContent": {"signature": s}}), out);
        }
        if let Some(t) = d.get("content").and_then(Value::as_str)
            && !t.is_empty()
        {
            let i = self.block(Block::Text, None, out);
            self.delta(i, json!({"text": t}), out);
        }
        for call in d
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let ordinal = call.get("index").and_then(Value::as_u64).unwrap_or(0);
            let start = json!({"toolUse": {
                "toolUseId": call.get("id").and_then(Value::as_str).unwrap_or_default(),
                "name": call.pointer("/function/name").and_then(Value::as_str).unwrap_or_default(),
            }});
            let i = self.block(Block::Tool(ordinal), Some(start), out);
            if let Some(a) = call.pointer("/function/arguments").and_then(Value::as_str)
                && !a.is_empty()
            {
                self.delta(i, json!({"toolUse": {"input": a}}), out);
            }
        }
        if let Some(f) = finish {
            self.stop = Some(f);
        }
    }

    fn complete(&mut self, out: &mut Vec<u8>) {
        self.start(out);
        self.close(out);
        event_frame(
            "messageStop",
            &json!({"stopReason": stop_to(self.stop.unwrap_or_default())}),
            out,
        );
        event_frame(
            "metadata",
            &json!({"usage": usage_to(&self.usage), "metrics": {"latencyMs": 0}}),
            out,
        );
        self.finished = true;
    }

    fn fail(&mut self, message: &str, out: &mut Vec<u8>) {
        self.finished = true;
        exception_frame("modelStreamErrorException", message, out);
    }
}

#[cfg(test)]
mod tests;

/// A document's name as Converse takes it: letters, digits, single spaces,
/// hyphens, parentheses and square brackets, at most 200 characters; others
/// become hyphens (and no name at all, `document`).
fn document_name(name: Option<&str>) -> String {
    let mut out = String::new();
    for c in name.unwrap_or_default().chars().take(200) {
        let c = if c.is_alphanumeric() || matches!(c, '-' | '(' | ')' | '[' | ']') {
            c
        } else if c == ' ' && !out.ends_with(' ') {
            ' '
        } else {
            '-'
        };
        out.push(c);
    }
    let trimmed = out.trim().to_string();
    if trimmed.is_empty() {
        "document".into()
    } else {
        trimmed
    }
}
