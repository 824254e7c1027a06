//! OpenAI Chat Completions ↔ canonical.
//!
//! The proxy's pipeline speaks Chat Completions internally: other formats are
//! brought to it at the edges. Two extensions ride on internal responses and
//! chunks so nothing is lost between two non-OpenAI ends: `reasoning_content`
//! (as DeepSeek and others already send it) and `reasoning_signature`.

use serde_json::{Map, Value, json};

use super::canonical::{
    CacheControl, Image, Invalid, Message, Part, Request, Response, Role, StopReason, Thinking,
    Tool, ToolCall, ToolChoice, Usage, document_from_data_url, invalid, mark_last, str_of, strings,
};

/// Text of an OpenAI `content`: a string or an array of parts. A part's
/// `cache_control` (the prompt-cache extension) becomes a breakpoint after it.
fn parts_of(content: &Value) -> Result<Vec<Part>, Invalid> {
    match content {
        Value::Null => Ok(vec![]),
        Value::String(s) => Ok(vec![Part::Text(s.clone())]),
        Value::Array(items) => {
            let mut out = Vec::new();
            for it in items {
                let before = out.len();
                match it.get("type").and_then(Value::as_str) {
                    Some("text") | Some("input_text") | Some("output_text") => {
                        out.push(Part::Text(str_of(it, "text").unwrap_or_default()))
                    }
                    Some("image_url") => {
                        let url = it
                            .pointer("/image_url/url")
                            .or_else(|| it.get("image_url"))
                            .and_then(Value::as_str)
                            .ok_or_else(|| invalid("image_url part without a url"))?;
                        out.push(Part::Image(image_from_url(url)));
                    }
                    // A file inline as a data URL; uploaded file ids have no
                    // counterpart elsewhere.
                    Some("file") => {
                        let f = it.get("file").unwrap_or(&Value::Null);
                        if let Some(d) = f
                            .get("file_data")
                            .and_then(Value::as_str)
                            .and_then(|u| document_from_data_url(u, str_of(f, "filename")))
                        {
                            out.push(Part::Document(d));
                        }
                    }
                    // Audio, files and refusals have no counterpart: dropped.
                    _ => {}
                }
                if let Some(c) = CacheControl::of(it)?
                    && out.len() > before
                {
                    mark_last(&mut out, c);
                }
            }
            Ok(out)
        }
        _ => Err(invalid("message content must be a string or an array")),
    }
}

/// The `tool_calls` of an assistant message, as parts.
fn tool_calls_of(m: &Value) -> impl Iterator<Item = Part> + '_ {
    let field = |c: &Value, p: &str| c.pointer(p).and_then(Value::as_str).map(str::to_string);
    m.get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(move |c| {
            Part::ToolCall(ToolCall {
                id: field(c, "/id").unwrap_or_default(),
                name: field(c, "/function/name").unwrap_or_default(),
                arguments: field(c, "/function/arguments").unwrap_or_else(|| "{}".into()),
            })
        })
}

/// `data:` URLs become inline images; anything else stays a URL.
pub fn image_from_url(url: &str) -> Image {
    if let Some(rest) = url.strip_prefix("data:")
        && let Some((media_type, data)) = rest.split_once(";base64,")
    {
        return Image::Base64 {
            media_type: media_type.to_string(),
            data: data.to_string(),
        };
    }
    Image::Url(url.to_string())
}

pub fn image_to_url(image: &Image) -> String {
    match image {
        Image::Base64 { media_type, data } => format!("data:{media_type};base64,{data}"),
        Image::Url(u) => u.clone(),
    }
}

/// A Chat Completions request body as canonical. Unknown fields are dropped
/// (this path is only taken when the upstream speaks another format).
pub fn request_from_openai(v: &Value) -> Result<Request, Invalid> {
    let mut r = Request {
        model: str_of(v, "model").unwrap_or_default(),
        stream: v.get("stream").and_then(Value::as_bool).unwrap_or(false),
        temperature: v.get("temperature").and_then(Value::as_f64),
        top_p: v.get("top_p").and_then(Value::as_f64),
        max_tokens: v
            .get("max_completion_tokens")
            .or_else(|| v.get("max_tokens"))
            .and_then(Value::as_u64),
        parallel_tool_calls: v.get("parallel_tool_calls").and_then(Value::as_bool),
        thinking: v
            .get("reasoning_effort")
            .and_then(Value::as_str)
            .and_then(Thinking::from_effort),
        fallbacks: strings(v.get("fallbacks")),
        ..Request::default()
    };
    r.stop = strings(v.get("stop"));
    for m in v
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("you must provide a messages parameter"))?
    {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("user");
        let mut content = parts_of(m.get("content").unwrap_or(&Value::Null))?;
        // On a message, `cache_control` marks its last part (as LiteLLM reads it).
        let marked = CacheControl::of(m)?;
        match role {
            "system" | "developer" => {
                if let Some(c) = marked {
                    mark_last(&mut content, c);
                }
                push_system(&mut r, content);
            }
            "user" => {
                if let Some(c) = marked {
                    mark_last(&mut content, c);
                }
                push(&mut r.messages, Role::User, content)
            }
            "assistant" => {
                let mut parts = Vec::new();
                if let Some(t) = m.get("reasoning_content").and_then(Value::as_str) {
                    parts.push(Part::Thinking {
                        text: t.to_string(),
                        signature: str_of(m, "reasoning_signature"),
                    });
                }
                parts.extend(content);
                parts.extend(tool_calls_of(m));
                if let Some(c) = marked {
                    mark_last(&mut parts, c);
                }
                push(&mut r.messages, Role::Assistant, parts);
            }
            "tool" | "function" => {
                let mut parts = vec![Part::ToolResult {
                    call_id: str_of(m, "tool_call_id").unwrap_or_default(),
                    content,
                    is_error: false,
                }];
                if let Some(c) = marked {
                    mark_last(&mut parts, c);
                }
                push(&mut r.messages, Role::User, parts);
            }
            other => return Err(invalid(format!("unknown message role '{other}'"))),
        }
    }
    for t in v
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(f) = t.get("function") else { continue };
        let mut tool = tool_from(f)?;
        // Beside `function` (as LiteLLM documents it) or inside it.
        tool.cache = tool.cache.or(CacheControl::of(t)?);
        r.tools.push(tool);
    }
    r.tool_choice = tool_choice_from(v.get("tool_choice"), "/function/name");
    r.check_cache_breakpoints()?;
    Ok(r)
}

/// A system or developer message's parts as system prompt parts: its text
/// joined into one, or, when it carries cache breakpoints, one system part
/// per text part, so that each breakpoint stays where the client put it.
pub fn push_system(r: &mut Request, content: Vec<Part>) {
    if !content.iter().any(|p| matches!(p, Part::CacheBreak(_))) {
        r.system.push(super::canonical::text_of(&content));
        return;
    }
    let mut after_text = false;
    for p in content {
        match p {
            Part::Text(t) => {
                r.system.push(t);
                after_text = true;
            }
            Part::CacheBreak(c) if after_text => {
                r.system_cache.push((r.system.len() - 1, c));
                after_text = false;
            }
            _ => after_text = false,
        }
    }
}

/// A function declaration (`name`, `description`, `parameters`,
/// `cache_control`), as both OpenAI APIs write it.
pub fn tool_from(f: &Value) -> Result<Tool, Invalid> {
    Ok(Tool {
        name: str_of(f, "name").unwrap_or_default(),
        description: str_of(f, "description"),
        parameters: f
            .get("parameters")
            .cloned()
            .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
        cache: CacheControl::of(f)?,
    })
}

/// `tool_choice` as both OpenAI APIs write it: a mode, or an object naming
/// the function at `name_at`.
pub fn tool_choice_from(v: Option<&Value>, name_at: &str) -> Option<ToolChoice> {
    match v? {
        Value::String(s) => Some(match s.as_str() {
            "none" => ToolChoice::None,
            "required" => ToolChoice::Required,
            _ => ToolChoice::Auto,
        }),
        o => o
            .pointer(name_at)
            .and_then(Value::as_str)
            .map(|n| ToolChoice::Tool(n.to_string())),
    }
}

/// What a client encoder reads from one internal chunk.
pub enum Chunk {
    /// `[DONE]`: the stream is complete.
    Done,
    /// An `{"error": ...}` chunk: the stream failed.
    Error(String),
    Delta(Delta),
}

/// A content chunk, as far as a client encoder needs it.
pub struct Delta {
    pub id: Option<String>,
    pub usage: Option<Usage>,
    /// The first choice's delta (`null` in a usage-only chunk).
    pub delta: Value,
    pub finish: Option<StopReason>,
}

/// Reads one internal chunk; `None` for comments and what is not JSON.
pub fn read_chunk(ev: &crate::providers::sse::SseEvent) -> Option<Chunk> {
    let data = ev.data()?;
    if data.trim() == "[DONE]" {
        return Some(Chunk::Done);
    }
    let v: Value = serde_json::from_str(&data).ok()?;
    if let Some(msg) = super::canonical::error_message(&v) {
        return Some(Chunk::Error(msg.to_string()));
    }
    let usage = v.get("usage").filter(|u| !u.is_null()).and_then(|u| {
        crate::providers::openai::usage_of(json!({"usage": u}).to_string().as_bytes())
    });
    let choice = v.pointer("/choices/0").unwrap_or(&Value::Null);
    Some(Chunk::Delta(Delta {
        id: str_of(&v, "id"),
        usage,
        delta: choice.get("delta").cloned().unwrap_or(Value::Null),
        finish: choice
            .get("finish_reason")
            .and_then(Value::as_str)
            .map(stop_from_finish),
    }))
}

/// Appends, merging with the previous message of the same role (consecutive
/// tool results become one user turn, as Anthropic and Gemini require).
pub fn push(messages: &mut Vec<Message>, role: Role, content: Vec<Part>) {
    let results = |parts: &[Part]| {
        parts
            .iter()
            .all(|p| matches!(p, Part::ToolResult { .. } | Part::CacheBreak(_)))
    };
    match messages.last_mut() {
        Some(last)
            if last.role == role
                && role == Role::User
                && results(&content)
                && results(&last.content) =>
        {
            last.content.extend(content)
        }
        _ => messages.push(Message { role, content }),
    }
}

fn content_value(parts: &[Part]) -> Value {
    let only_text = parts
        .iter()
        .all(|p| matches!(p, Part::Text(_) | Part::CacheBreak(_)));
    if only_text {
        return Value::String(super::canonical::text_of(parts));
    }
    Value::Array(
        parts
            .iter()
            .filter_map(|p| match p {
                Part::Text(t) => Some(json!({"type": "text", "text": t})),
                Part::Image(i) => {
                    Some(json!({"type": "image_url", "image_url": {"url": image_to_url(i)}}))
                }
                Part::Document(d) => {
                    let mut file = json!({"file_data": d.data_url()});
                    if let Some(n) = &d.name {
                        file["filename"] = json!(n);
                    }
                    Some(json!({"type": "file", "file": file}))
                }
                _ => None,
            })
            .collect(),
    )
}

/// The Chat Completions body for `r`, naming `model`. With `ask_usage` on a
/// stream, usage is requested in the last chunk.
pub fn request_to_openai(r: &Request, model: &str, ask_usage: bool) -> Value {
    let mut messages = Vec::new();
    for s in &r.system {
        messages.push(json!({"role": "system", "content": s}));
    }
    for m in &r.messages {
        match m.role {
            Role::User => {
                let (results, rest): (Vec<&Part>, Vec<&Part>) = m
                    .content
                    .iter()
                    .partition(|p| matches!(p, Part::ToolResult { .. }));
                for p in results {
                    if let Part::ToolResult {
                        call_id, content, ..
                    } = p
                    {
                        messages.push(json!({"role": "tool", "tool_call_id": call_id, "content": super::canonical::text_of(content)}));
                    }
                }
                if !rest.is_empty() {
                    let rest: Vec<Part> = rest.into_iter().cloned().collect();
                    messages.push(json!({"role": "user", "content": content_value(&rest)}));
                }
            }
            Role::Assistant => {
                messages.push(assistant_message(&m.content));
            }
        }
    }
    let mut out = Map::new();
    out.insert("model".into(), json!(model));
    out.insert("messages".into(), Value::Array(messages));
    if let Some(n) = r.max_tokens {
        out.insert("max_tokens".into(), json!(n));
    }
    if let Some(t) = r.temperature {
        out.insert("temperature".into(), json!(t));
    }
    if let Some(p) = r.top_p {
        out.insert("top_p".into(), json!(p));
    }
    if !r.stop.is_empty() {
        out.insert("stop".into(), json!(r.stop));
    }
    if let Some(t) = r.thinking {
        out.insert("reasoning_effort".into(), json!(t.effort()));
    }
    if !r.tools.is_empty() {
        let tools: Vec<Value> = r
            .tools
            .iter()
            .map(|t| json!({"type": "function", "function": t.declaration("parameters")}))
            .collect();
        out.insert("tools".into(), Value::Array(tools));
        if let Some(p) = r.parallel_tool_calls {
            out.insert("parallel_tool_calls".into(), json!(p));
        }
    }
    if let Some(c) = &r.tool_choice {
        let v = match c {
            ToolChoice::Auto => json!("auto"),
            ToolChoice::None => json!("none"),
            ToolChoice::Required => json!("required"),
            ToolChoice::Tool(n) => json!({"type": "function", "function": {"name": n}}),
        };
        out.insert("tool_choice".into(), v);
    }
    if r.stream {
        out.insert("stream".into(), json!(true));
        if ask_usage {
            out.insert("stream_options".into(), json!({"include_usage": true}));
        }
    }
    if !r.fallbacks.is_empty() {
        out.insert("fallbacks".into(), json!(r.fallbacks));
    }
    Value::Object(out)
}

pub fn finish_reason(s: StopReason) -> &'static str {
    match s {
        StopReason::EndTurn | StopReason::StopSequence => "stop",
        StopReason::MaxTokens => "length",
        StopReason::ToolUse => "tool_calls",
        StopReason::ContentFilter => "content_filter",
    }
}

pub fn stop_from_finish(s: &str) -> StopReason {
    match s {
        "length" => StopReason::MaxTokens,
        "tool_calls" | "function_call" => StopReason::ToolUse,
        "content_filter" => StopReason::ContentFilter,
        _ => StopReason::EndTurn,
    }
}

pub fn usage_value(u: &Usage) -> Value {
    let mut details = json!({"cached_tokens": u.cached_tokens});
    // Cache writes are not an OpenAI field; reported only when there were some,
    // so that the gateway's own reader charges them at their rate.
    if u.cache_write_tokens > 0 {
        details["cache_write_tokens"] = u.cache_write_tokens.into();
        details["cache_write_1h_tokens"] = u.cache_write_1h_tokens.into();
    }
    json!({
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.prompt_tokens.saturating_add(u.completion_tokens),
        "prompt_tokens_details": details,
    })
}

/// An assistant message of text and tool calls (content `null` when only calls).
fn assistant_message(parts: &[Part]) -> Value {
    let calls: Vec<Value> = parts
        .iter()
        .filter_map(|p| match p {
            Part::ToolCall(c) => Some(json!({"id": c.id, "type": "function",
                "function": {"name": c.name, "arguments": c.arguments}})),
            _ => None,
        })
        .collect();
    let text = super::canonical::text_of(parts);
    let mut msg = json!({"role": "assistant", "content": text});
    if !calls.is_empty() {
        if text.is_empty() {
            msg["content"] = Value::Null;
        }
        msg["tool_calls"] = Value::Array(calls);
    }
    msg
}

/// A chat completion for `r` (internal: carries the reasoning extensions).
pub fn response_to_openai(r: &Response) -> Value {
    let mut message = assistant_message(&r.content);
    for p in &r.content {
        if let Part::Thinking { text, signature } = p {
            message["reasoning_content"] = json!(text);
            if let Some(s) = signature {
                message["reasoning_signature"] = json!(s);
            }
        }
    }
    json!({
        "id": r.id, "object": "chat.completion", "created": 0, "model": r.model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason(r.stop)}],
        "usage": usage_value(&r.usage),
    })
}

/// A chat completion body as canonical.
pub fn response_from_openai(v: &Value) -> Response {
    let choice = v.pointer("/choices/0").cloned().unwrap_or(Value::Null);
    let m = choice.get("message").cloned().unwrap_or(Value::Null);
    let mut content = Vec::new();
    if let Some(t) = m.get("reasoning_content").and_then(Value::as_str) {
        content.push(Part::Thinking {
            text: t.to_string(),
            signature: str_of(&m, "reasoning_signature"),
        });
    }
    if let Some(t) = m.get("content").and_then(Value::as_str)
        && !t.is_empty()
    {
        content.push(Part::Text(t.to_string()));
    }
    content.extend(tool_calls_of(&m));
    Response {
        id: str_of(v, "id").unwrap_or_default(),
        model: str_of(v, "model").unwrap_or_default(),
        content,
        stop: choice
            .get("finish_reason")
            .and_then(Value::as_str)
            .map_or(StopReason::EndTurn, stop_from_finish),
        usage: crate::providers::openai::usage_of(v.to_string().as_bytes()).unwrap_or_default(),
    }
}

/// Builds internal stream chunks (one `data:` event each).
#[derive(Default)]
pub struct ChunkWriter {
    pub id: String,
    pub model: String,
    /// Whether the first chunk (the assistant's role) was written.
    begun: bool,
}

impl ChunkWriter {
    pub fn new(id: String, model: String) -> ChunkWriter {
        ChunkWriter {
            id,
            model,
            begun: false,
        }
    }

    /// Writes the first chunk, the assistant's role, unless it was written.
    pub fn begin(&mut self, out: &mut Vec<u8>) {
        if !self.begun {
            self.begun = true;
            self.delta(json!({"role": "assistant", "content": ""}), None, out);
        }
    }

    pub fn begun(&self) -> bool {
        self.begun
    }

    pub fn delta(&self, delta: Value, finish: Option<&str>, out: &mut Vec<u8>) {
        let c = json!({"id": self.id, "object": "chat.completion.chunk", "created": 0,
            "model": self.model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
        data_event(&c, out);
    }

    pub fn usage(&self, u: &Usage, out: &mut Vec<u8>) {
        let c = json!({"id": self.id, "object": "chat.completion.chunk", "created": 0,
            "model": self.model, "choices": [], "usage": usage_value(u)});
        data_event(&c, out);
    }

    pub fn done(out: &mut Vec<u8>) {
        out.extend_from_slice(b"data: [DONE]\n\n");
    }

    pub fn error(message: &str, out: &mut Vec<u8>) {
        data_event(
            &json!({"error": {"message": message, "type": "upstream_error", "param": null, "code": "upstream_error"}}),
            out,
        );
    }
}

pub fn data_event(v: &Value, out: &mut Vec<u8>) {
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(v.to_string().as_bytes());
    out.extend_from_slice(b"\n\n");
}

pub fn named_event(name: &str, v: &Value, out: &mut Vec<u8>) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.push(b'\n');
    data_event(v, out);
}
