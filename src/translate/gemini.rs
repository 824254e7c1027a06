//! Gemini `generateContent` ↔ canonical, and its SSE stream in both directions.
//!
//! Gemini pairs a function's response with its call by name (ids are
//! optional), so calls read without an id take their function's name as id,
//! and results sent to Gemini name the function of the call they answer.
//! Its streams carry no end marker: the chunk with `finishReason` ends them.

use serde_json::{Map, Value, json};

use super::canonical::{
    Document, Image, Invalid, Part, Request, Response, Role, StopReason, Thinking, Tool, ToolCall,
    ToolChoice, Usage, error_message, invalid, is_document_type, str_of, strings,
};
use super::openai::{ChunkWriter, Delta, data_event, push};
use super::{Encode, Transcode};
use crate::providers::sse::SseEvent;

/// `camelCase` or `snake_case`: the API accepts both, SDKs send either.
fn field<'a>(v: &'a Value, camel: &str, snake: &str) -> Option<&'a Value> {
    v.get(camel).or_else(|| v.get(snake))
}

fn part_from(p: &Value) -> Option<Part> {
    if let Some(t) = p.get("text").and_then(Value::as_str) {
        if p.get("thought").and_then(Value::as_bool) == Some(true) {
            return Some(Part::Thinking {
                text: t.to_string(),
                signature: field(p, "thoughtSignature", "thought_signature")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            });
        }
        return Some(Part::Text(t.to_string()));
    }
    if let Some(d) = field(p, "inlineData", "inline_data") {
        let media_type = field(d, "mimeType", "mime_type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let data = str_of(d, "data").unwrap_or_default();
        if is_document_type(&media_type) {
            return Some(Part::Document(Document {
                media_type,
                data,
                name: field(d, "displayName", "display_name")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            }));
        }
        return Some(Part::Image(Image::Base64 { media_type, data }));
    }
    if let Some(d) = field(p, "fileData", "file_data") {
        return Some(Part::Image(Image::Url(
            field(d, "fileUri", "file_uri")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        )));
    }
    if let Some(c) = field(p, "functionCall", "function_call") {
        let name = str_of(c, "name").unwrap_or_default();
        return Some(Part::ToolCall(ToolCall {
            id: str_of(c, "id").unwrap_or_else(|| name.clone()),
            arguments: c.get("args").map_or("{}".into(), Value::to_string),
            name,
        }));
    }
    if let Some(r) = field(p, "functionResponse", "function_response") {
        let name = str_of(r, "name").unwrap_or_default();
        let response = r.get("response").cloned().unwrap_or(Value::Null);
        return Some(Part::ToolResult {
            call_id: str_of(r, "id").unwrap_or(name),
            content: vec![Part::Text(response.to_string())],
            is_error: response.get("error").is_some(),
        });
    }
    None
}

fn parts_of(content: &Value) -> Vec<Part> {
    content
        .get("parts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(part_from)
        .collect()
}

/// A `generateContent` body as canonical; the model and streaming come from the URL.
pub fn request_from_gemini(v: &Value, model: &str, stream: bool) -> Result<Request, Invalid> {
    let g = field(v, "generationConfig", "generation_config").unwrap_or(&Value::Null);
    let num = |camel, snake| field(g, camel, snake).and_then(Value::as_f64);
    let mut r = Request {
        model: model.to_string(),
        stream,
        temperature: num("temperature", "temperature"),
        top_p: num("topP", "top_p"),
        max_tokens: field(g, "maxOutputTokens", "max_output_tokens").and_then(Value::as_u64),
        stop: strings(field(g, "stopSequences", "stop_sequences")),
        fallbacks: strings(v.get("fallbacks")),
        ..Request::default()
    };
    if let Some(t) = field(g, "thinkingConfig", "thinking_config")
        && let Some(b) = field(t, "thinkingBudget", "thinking_budget").and_then(Value::as_i64)
        && b != 0
    {
        // -1 is Gemini's "dynamic": a generous budget elsewhere.
        r.thinking = Some(Thinking {
            budget_tokens: if b < 0 { 8192 } else { b as u64 },
        });
    }
    if let Some(s) = field(v, "systemInstruction", "system_instruction") {
        let text = super::canonical::text_of(&parts_of(s));
        if !text.is_empty() {
            r.system.push(text);
        }
    }
    for c in v
        .get("contents")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("contents is required"))?
    {
        let role = match c.get("role").and_then(Value::as_str) {
            Some("model") => Role::Assistant,
            _ => Role::User,
        };
        push(&mut r.messages, role, parts_of(c));
    }
    for t in v
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for f in field(t, "functionDeclarations", "function_declarations")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            r.tools.push(Tool {
                name: str_of(f, "name").unwrap_or_default(),
                description: str_of(f, "description"),
                parameters: field(f, "parametersJsonSchema", "parameters_json_schema")
                    .or_else(|| f.get("parameters"))
                    .map_or_else(|| json!({"type": "object", "properties": {}}), lower_types),
                cache: None,
            });
        }
    }
    if let Some(fc) = field(v, "toolConfig", "tool_config")
        .and_then(|t| field(t, "functionCallingConfig", "function_calling_config"))
    {
        let allowed = strings(field(fc, "allowedFunctionNames", "allowed_function_names"));
        r.tool_choice = match fc.get("mode").and_then(Value::as_str) {
            Some("NONE") => Some(ToolChoice::None),
            Some("ANY") if allowed.len() == 1 => Some(ToolChoice::Tool(allowed[0].clone())),
            Some("ANY") => Some(ToolChoice::Required),
            _ => Some(ToolChoice::Auto),
        };
    }
    Ok(r)
}

/// Gemini's OpenAPI-style schemas spell types in capitals (`STRING`); JSON
/// Schema, which the other formats take, spells them in lower case.
fn lower_types(schema: &Value) -> Value {
    match schema {
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| {
                    let v = match (k.as_str(), v) {
                        ("type", Value::String(t)) => Value::String(t.to_ascii_lowercase()),
                        _ => lower_types(v),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(lower_types).collect()),
        v => v.clone(),
    }
}

fn part_to(p: &Part, names: &[(&str, &str)]) -> Option<Value> {
    Some(match p {
        Part::Text(t) if t.is_empty() => return None,
        Part::Text(t) => json!({"text": t}),
        Part::Image(Image::Base64 { media_type, data }) => {
            json!({"inlineData": {"mimeType": media_type, "data": data}})
        }
        Part::Image(Image::Url(u)) => json!({"fileData": {"fileUri": u}}),
        Part::Document(d) => json!({"inlineData": {"mimeType": d.media_type, "data": d.data}}),
        Part::Thinking { text, signature } => {
            let mut v = json!({"text": text, "thought": true});
            if let Some(s) = signature.as_deref().filter(|s| is_base64(s)) {
                v["thoughtSignature"] = json!(s);
            }
            v
        }
        Part::ToolCall(c) => {
            let args: Value = serde_json::from_str(&c.arguments).unwrap_or_else(|_| json!({}));
            json!({"functionCall": {"name": c.name, "args": args}})
        }
        Part::ToolResult {
            call_id, content, ..
        } => {
            let name = names
                .iter()
                .find(|(id, _)| id == call_id)
                .map_or(call_id.as_str(), |(_, n)| n);
            let text = super::canonical::text_of(content);
            let response = match serde_json::from_str::<Value>(&text) {
                Ok(v @ Value::Object(_)) => v,
                _ => json!({"result": text}),
            };
            json!({"functionResponse": {"name": name, "response": response}})
        }
        // Gemini caches by explicit `cachedContent` objects, not markers.
        Part::CacheBreak(_) => return None,
    })
}

/// The `generateContent` body for `r` (the model goes in the URL).
pub fn request_to_gemini(r: &Request) -> Value {
    // Call ids → function names, for the results that answer them.
    let names: Vec<(&str, &str)> = r
        .messages
        .iter()
        .flat_map(|m| &m.content)
        .filter_map(|p| match p {
            Part::ToolCall(c) => Some((c.id.as_str(), c.name.as_str())),
            _ => None,
        })
        .collect();
    let contents: Vec<Value> = r
        .messages
        .iter()
        .filter_map(|m| {
            let parts: Vec<Value> = m
                .content
                .iter()
                .filter_map(|p| part_to(p, &names))
                .collect();
            (!parts.is_empty()).then(|| {
                json!({"role": if m.role == Role::User { "user" } else { "model" }, "parts": parts})
            })
        })
        .collect();
    let mut out = Map::new();
    out.insert("contents".into(), Value::Array(contents));
    if !r.system.is_empty() {
        out.insert(
            "systemInstruction".into(),
            json!({"parts": [{"text": r.system.join("\n\n")}]}),
        );
    }
    let mut g = Map::new();
    if let Some(t) = r.temperature {
        g.insert("temperature".into(), json!(t));
    }
    if let Some(p) = r.top_p {
        g.insert("topP".into(), json!(p));
    }
    if let Some(n) = r.max_tokens {
        g.insert("maxOutputTokens".into(), json!(n));
    }
    if !r.stop.is_empty() {
        g.insert("stopSequences".into(), json!(r.stop));
    }
    if let Some(t) = r.thinking {
        g.insert(
            "thinkingConfig".into(),
            json!({"thinkingBudget": t.budget_tokens, "includeThoughts": true}),
        );
    }
    if !g.is_empty() {
        out.insert("generationConfig".into(), Value::Object(g));
    }
    if !r.tools.is_empty() {
        let decls: Vec<Value> = r
            .tools
            .iter()
            .map(|t| t.declaration("parametersJsonSchema"))
            .collect();
        out.insert("tools".into(), json!([{"functionDeclarations": decls}]));
        let config = match &r.tool_choice {
            Some(ToolChoice::None) => Some(json!({"mode": "NONE"})),
            Some(ToolChoice::Required) => Some(json!({"mode": "ANY"})),
            Some(ToolChoice::Tool(n)) => Some(json!({"mode": "ANY", "allowedFunctionNames": [n]})),
            _ => None,
        };
        if let Some(c) = config {
            out.insert("toolConfig".into(), json!({"functionCallingConfig": c}));
        }
    }
    Value::Object(out)
}

fn finish_from(s: &str) -> StopReason {
    match s {
        "MAX_TOKENS" => StopReason::MaxTokens,
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" => {
            StopReason::ContentFilter
        }
        _ => StopReason::EndTurn,
    }
}

fn finish_to(s: StopReason) -> &'static str {
    match s {
        StopReason::MaxTokens => "MAX_TOKENS",
        StopReason::ContentFilter => "SAFETY",
        _ => "STOP",
    }
}

/// Gemini counts thoughts apart from candidates; canonical output counts both.
pub fn usage_from(u: &Value) -> Usage {
    let n = |camel, snake| field(u, camel, snake).and_then(Value::as_u64).unwrap_or(0);
    let prompt = n("promptTokenCount", "prompt_token_count");
    let output = n("candidatesTokenCount", "candidates_token_count")
        .saturating_add(n("thoughtsTokenCount", "thoughts_token_count"));
    Usage {
        prompt_tokens: prompt,
        completion_tokens: output,
        total_tokens: prompt.saturating_add(output),
        cached_tokens: n("cachedContentTokenCount", "cached_content_token_count"),
        ..Usage::default()
    }
}

pub fn usage_to(u: &Usage) -> Value {
    json!({
        "promptTokenCount": u.prompt_tokens,
        "candidatesTokenCount": u.completion_tokens,
        "totalTokenCount": u.prompt_tokens.saturating_add(u.completion_tokens),
        "cachedContentTokenCount": u.cached_tokens,
    })
}

pub fn response_from_gemini(v: &Value) -> Response {
    let c = v.pointer("/candidates/0").unwrap_or(&Value::Null);
    let content = parts_of(c.get("content").unwrap_or(&Value::Null));
    let has_calls = content.iter().any(|p| matches!(p, Part::ToolCall(_)));
    Response {
        id: str_of(v, "responseId").unwrap_or_default(),
        model: str_of(v, "modelVersion").unwrap_or_default(),
        stop: if has_calls {
            StopReason::ToolUse
        } else {
            c.get("finishReason")
                .and_then(Value::as_str)
                .map_or(StopReason::EndTurn, finish_from)
        },
        content,
        usage: usage_from(field(v, "usageMetadata", "usage_metadata").unwrap_or(&Value::Null)),
    }
}

pub fn response_to_gemini(r: &Response) -> Value {
    let parts: Vec<Value> = r.content.iter().filter_map(|p| part_to(p, &[])).collect();
    json!({
        "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": finish_to(r.stop), "index": 0}],
        "usageMetadata": usage_to(&r.usage),
        "modelVersion": r.model,
        "responseId": r.id,
    })
}

/// Gemini's signatures are bytes, sent as base64; one that is not (from
/// another provider) cannot be sent and is left out.
fn is_base64(s: &str) -> bool {
    s.len().is_multiple_of(4)
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
}

/// The gRPC-style status Google APIs name an HTTP status by.
pub fn status_name(status: u16) -> &'static str {
    match status {
        400 | 413 | 422 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        402 | 403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        502 | 503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "INTERNAL",
    }
}

pub fn error_body(status: u16, message: &str) -> Value {
    json!({"error": {"code": status, "message": message, "status": status_name(status)}})
}

/// Gemini SSE → internal chunks.
#[derive(Default)]
pub struct Decoder {
    w: ChunkWriter,
    calls: u64,
    usage: Usage,
    finish: Option<StopReason>,
}

impl Transcode for Decoder {
    fn event(&mut self, ev: &SseEvent, out: &mut Vec<u8>) {
        let Some(data) = ev.data() else { return };
        let Ok(v) = serde_json::from_str::<Value>(&data) else {
            return;
        };
        if let Some(msg) = error_message(&v) {
            ChunkWriter::error(msg, out);
            return;
        }
        if !self.w.begun() {
            self.w.id = str_of(&v, "responseId").unwrap_or_default();
            self.w.model = str_of(&v, "modelVersion").unwrap_or_default();
            self.w.begin(out);
        }
        if let Some(u) = field(&v, "usageMetadata", "usage_metadata") {
            self.usage = usage_from(u);
        }
        let c = v.pointer("/candidates/0").unwrap_or(&Value::Null);
        for p in parts_of(c.get("content").unwrap_or(&Value::Null)) {
            let delta = match p {
                Part::Text(t) => json!({"content": t}),
                Part::Thinking { text, signature } => {
                    let mut d = json!({"reasoning_content": text});
                    if let Some(s) = signature {
                        d["reasoning_signature"] = json!(s);
                    }
                    d
                }
                Part::ToolCall(call) => {
                    let index = self.calls;
                    self.calls += 1;
                    self.finish = Some(StopReason::ToolUse);
                    json!({"tool_calls": [{"index": index, "id": call.id, "type": "function",
                        "function": {"name": call.name, "arguments": call.arguments}}]})
                }
                _ => continue,
            };
            self.w.delta(delta, None, out);
        }
        if let Some(f) = c.get("finishReason").and_then(Value::as_str) {
            let stop = match self.finish {
                Some(StopReason::ToolUse) => StopReason::ToolUse,
                _ => finish_from(f),
            };
            self.finish = Some(stop);
            self.w
                .delta(json!({}), Some(super::openai::finish_reason(stop)), out);
        }
    }

    /// The stream ended: complete only if a finish reason came.
    fn end(&mut self, out: &mut Vec<u8>) {
        if self.finish.is_some() && self.w.begun() {
            self.w.usage(&self.usage, out);
            ChunkWriter::done(out);
        }
    }
}

/// How far past the known tool calls a new call's index may point.
const MAX_CALL_GAP: usize = 64;

/// Internal chunks → Gemini SSE: one `GenerateContentResponse` per chunk of
/// text or thought; tool calls, whose arguments stream in pieces, leave whole
/// in the last chunk with the finish reason and usage.
#[derive(Default)]
pub struct Encoder {
    pub model: String,
    id: String,
    /// (id, name, arguments so far) by tool-call index.
    calls: Vec<(String, String, String)>,
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

    fn chunk(&self, parts: Vec<Value>, finish: Option<StopReason>, out: &mut Vec<u8>) {
        let mut cand = json!({"content": {"role": "model", "parts": parts}, "index": 0});
        let mut v = json!({"modelVersion": self.model, "responseId": self.id});
        if let Some(f) = finish {
            cand["finishReason"] = json!(finish_to(f));
            v["usageMetadata"] = usage_to(&self.usage);
        }
        v["candidates"] = json!([cand]);
        data_event(&v, out);
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
        if self.id.is_empty()
            && let Some(id) = id
        {
            self.id = id;
        }
        if let Some(u) = usage {
            self.usage = u;
        }
        let d = &d;
        let mut parts = Vec::new();
        if let Some(t) = d.get("reasoning_content").and_then(Value::as_str)
            && !t.is_empty()
        {
            parts.push(json!({"text": t, "thought": true}));
        }
        if let Some(s) = d
            .get("reasoning_signature")
            .and_then(Value::as_str)
            .filter(|s| is_base64(s))
        {
            parts.push(json!({"text": "", "thought": true, "thoughtSignature": s}));
        }
        if let Some(t) = d.get("content").and_then(Value::as_str)
            && !t.is_empty()
        {
            parts.push(json!({"text": t}));
        }
        for c in d
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let i = c.get("index").and_then(Value::as_u64).unwrap_or(0) as usize;
            // Indexes count up from 0; a wild one must not size the table.
            if i > self.calls.len() + MAX_CALL_GAP {
                continue;
            }
            if i >= self.calls.len() {
                self.calls.resize(i + 1, Default::default());
            }
            let call = &mut self.calls[i];
            if let Some(id) = c.get("id").and_then(Value::as_str) {
                id.clone_into(&mut call.0);
            }
            if let Some(n) = c.pointer("/function/name").and_then(Value::as_str) {
                n.clone_into(&mut call.1);
            }
            if let Some(a) = c.pointer("/function/arguments").and_then(Value::as_str) {
                call.2.push_str(a);
            }
        }
        if let Some(f) = finish {
            self.stop = Some(f);
        }
        if !parts.is_empty() {
            self.chunk(parts, None, out);
        }
    }

    /// The end marker: close what is open and end the stream as the format does.
    fn complete(&mut self, out: &mut Vec<u8>) {
        let parts = self
            .calls
            .iter()
            .map(|(id, name, args)| {
                let call = ToolCall {
                    id: id.clone(),
                    name: name.clone(),
                    arguments: args.clone(),
                };
                part_to(&Part::ToolCall(call), &[]).expect("calls always have a part")
            })
            .collect();
        self.chunk(parts, Some(self.stop.unwrap_or_default()), out);
        self.finished = true;
    }

    /// Ends the stream with Gemini's error object, as the API does mid-stream.
    fn fail(&mut self, message: &str, out: &mut Vec<u8>) {
        self.finished = true;
        data_event(&error_body(502, message), out);
    }
}
