//! The canonical request and response every wire format maps into and out of.
//!
//! It holds what the formats share (see `docs/translation.md` for the table of
//! what each side drops): system prompts, turns of text, images, thinking,
//! tool calls and results, tool definitions and choice, sampling limits, stop
//! reasons and usage. Tool arguments stay JSON text, as the OpenAI format
//! carries them, so partial arguments in streams need no re-encoding.

use serde_json::Value;

pub use crate::providers::openai::Usage;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Request {
    pub model: String,
    /// System prompt parts, in order.
    pub system: Vec<String>,
    /// Prompt-cache breakpoints on system parts: the index of the part in
    /// `system` each follows, in order.
    pub system_cache: Vec<(usize, CacheControl)>,
    pub messages: Vec<Message>,
    pub tools: Vec<Tool>,
    pub tool_choice: Option<ToolChoice>,
    /// `false` when the client asked for at most one tool call per turn.
    pub parallel_tool_calls: Option<bool>,
    pub stop: Vec<String>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub max_tokens: Option<u64>,
    pub thinking: Option<Thinking>,
    pub stream: bool,
    /// The gateway's own `fallbacks`, carried across formats.
    pub fallbacks: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub role: Role,
    pub content: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Text(String),
    Image(Image),
    /// A file the model reads (a PDF, plain text, an office document).
    Document(Document),
    /// Model reasoning; the signature lets Anthropic verify it on the next turn.
    Thinking {
        text: String,
        signature: Option<String>,
    },
    ToolCall(ToolCall),
    ToolResult {
        call_id: String,
        content: Vec<Part>,
        is_error: bool,
    },
    /// A prompt-cache breakpoint on the part before it (Anthropic's
    /// `cache_control`): the prompt up to and including that part may be
    /// cached. Only Anthropic has the concept; other writers skip it.
    CacheBreak(CacheControl),
}

/// A prompt-cache breakpoint, as Anthropic's `cache_control` carries it and
/// as OpenAI-format clients send it (the extension LiteLLM and OpenRouter
/// accept): `{"type": "ephemeral", "ttl"?: "5m" | "1h"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheControl {
    /// `None`: the provider's default (five minutes), and no `ttl` is written.
    pub ttl: Option<CacheTtl>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheTtl {
    FiveMinutes,
    OneHour,
}

/// Anthropic refuses a request with more breakpoints than this.
pub const MAX_CACHE_BREAKPOINTS: usize = 4;

impl CacheControl {
    /// Reads `v`'s `cache_control` field, if any: `type` must be
    /// `ephemeral`, `ttl` (optional) `5m` or `1h`.
    pub fn of(v: &Value) -> Result<Option<CacheControl>, Invalid> {
        let Some(c) = v.get("cache_control").filter(|c| !c.is_null()) else {
            return Ok(None);
        };
        if c.get("type").and_then(Value::as_str) != Some("ephemeral") {
            return Err(invalid(format!(
                "cache_control: type must be 'ephemeral', not {}",
                c.get("type").unwrap_or(&Value::Null)
            )));
        }
        let ttl = match c.get("ttl") {
            None | Some(Value::Null) => None,
            Some(t) if t == "5m" => Some(CacheTtl::FiveMinutes),
            Some(t) if t == "1h" => Some(CacheTtl::OneHour),
            Some(t) => {
                return Err(invalid(format!(
                    "cache_control: ttl must be '5m' or '1h', not {t}"
                )));
            }
        };
        Ok(Some(CacheControl { ttl }))
    }

    /// The `cache_control` object Anthropic reads.
    pub fn to_value(self) -> Value {
        match self.ttl {
            None => serde_json::json!({"type": "ephemeral"}),
            Some(CacheTtl::FiveMinutes) => serde_json::json!({"type": "ephemeral", "ttl": "5m"}),
            Some(CacheTtl::OneHour) => serde_json::json!({"type": "ephemeral", "ttl": "1h"}),
        }
    }

    fn hour(self) -> bool {
        self.ttl == Some(CacheTtl::OneHour)
    }
}

/// Removes every cache breakpoint from `parts`, nested ones included.
pub fn strip_cache_breaks(parts: &mut Vec<Part>) {
    parts.retain(|p| !matches!(p, Part::CacheBreak(_)));
    for p in parts {
        if let Part::ToolResult { content, .. } = p {
            strip_cache_breaks(content);
        }
    }
}

/// Marks the last part of `parts` as a cache breakpoint (once: a part
/// already marked keeps the longer of the two lifetimes).
pub fn mark_last(parts: &mut Vec<Part>, c: CacheControl) {
    match parts.last_mut() {
        None => {}
        Some(Part::CacheBreak(old)) if c.hour() => *old = c,
        Some(Part::CacheBreak(_)) => {}
        Some(_) => parts.push(Part::CacheBreak(c)),
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Image {
    Base64 { media_type: String, data: String },
    Url(String),
}

/// A document given inline: its media type, its bytes as base64, and the
/// name it was sent with (Bedrock requires one).
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub media_type: String,
    pub data: String,
    pub name: Option<String>,
}

/// The media types of the formats Bedrock's `document` block names
/// (`format`), both ways.
pub const DOCUMENT_FORMATS: [(&str, &str); 9] = [
    ("pdf", "application/pdf"),
    ("csv", "text/csv"),
    ("doc", "application/msword"),
    (
        "docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ),
    ("xls", "application/vnd.ms-excel"),
    (
        "xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ),
    ("html", "text/html"),
    ("txt", "text/plain"),
    ("md", "text/markdown"),
];

/// Whether `media_type` is a document's rather than an image's (Gemini
/// sends both as `inlineData`).
pub fn is_document_type(media_type: &str) -> bool {
    !media_type.starts_with("image/")
}

/// `data:<type>;base64,<data>` read into a document, or `None`.
pub fn document_from_data_url(url: &str, name: Option<String>) -> Option<Document> {
    let (media_type, data) = url.strip_prefix("data:")?.split_once(";base64,")?;
    Some(Document {
        media_type: media_type.to_string(),
        data: data.to_string(),
        name,
    })
}

impl Document {
    pub fn data_url(&self) -> String {
        format!("data:{};base64,{}", self.media_type, self.data)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// A JSON object as text.
    pub arguments: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tool {
    pub name: String,
    pub description: Option<String>,
    /// JSON schema of the arguments.
    pub parameters: Value,
    /// A prompt-cache breakpoint after this tool's definition.
    pub cache: Option<CacheControl>,
}

impl Tool {
    /// `{"name", "description"?, <schema_key>: parameters}`: the declaration
    /// every format writes, under its own name for the schema.
    pub fn declaration(&self, schema_key: &str) -> Value {
        let mut d = serde_json::json!({"name": self.name});
        if let Some(desc) = &self.description {
            d["description"] = Value::String(desc.clone());
        }
        d[schema_key] = self.parameters.clone();
        d
    }
}

/// An error object's message, if `v` is an `{"error": ...}` body or event.
pub fn error_message(v: &Value) -> Option<&str> {
    let e = v.get("error")?;
    Some(
        e.get("message")
            .and_then(Value::as_str)
            .unwrap_or("upstream error"),
    )
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    Auto,
    None,
    /// Some tool must be called.
    Required,
    /// This tool must be called.
    Tool(String),
}

/// Extended thinking / reasoning. Anthropic and Gemini speak budgets, OpenAI
/// speaks effort; each side converts with [`Thinking::effort`] and
/// [`Thinking::from_effort`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thinking {
    pub budget_tokens: u64,
}

impl Thinking {
    pub fn effort(self) -> &'static str {
        match self.budget_tokens {
            0..4096 => "low",
            4096..16384 => "medium",
            _ => "high",
        }
    }

    pub fn from_effort(effort: &str) -> Option<Thinking> {
        let budget_tokens = match effort {
            "minimal" | "none" => return None,
            "low" => 1024,
            "medium" => 8192,
            _ => 24576,
        };
        Some(Thinking { budget_tokens })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StopReason {
    #[default]
    EndTurn,
    MaxTokens,
    StopSequence,
    ToolUse,
    ContentFilter,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Response {
    pub id: String,
    pub model: String,
    pub content: Vec<Part>,
    pub stop: StopReason,
    pub usage: Usage,
}

impl Request {
    /// The request without its documents, when it has any.
    pub fn without_documents(&self) -> Option<Request> {
        let has = |m: &Message| m.content.iter().any(|p| matches!(p, Part::Document(_)));
        if !self.messages.iter().any(has) {
            return None;
        }
        let mut r = self.clone();
        for m in &mut r.messages {
            m.content.retain(|p| !matches!(p, Part::Document(_)));
        }
        Some(r)
    }

    /// Every text of the prompt, for token counting.
    pub fn prompt_text(&self) -> String {
        fn part(p: &Part, out: &mut String) {
            match p {
                Part::Text(t) | Part::Thinking { text: t, .. } => out.push_str(t),
                Part::ToolCall(c) => {
                    out.push_str(&c.name);
                    out.push_str(&c.arguments);
                }
                Part::ToolResult { content, .. } => content.iter().for_each(|p| part(p, out)),
                Part::Image(_) | Part::Document(_) => {}
                Part::CacheBreak(_) => return,
            }
            out.push('\n');
        }
        let mut out = self.system.join("\n");
        for m in &self.messages {
            m.content.iter().for_each(|p| part(p, &mut out));
        }
        for t in &self.tools {
            out.push_str(&t.name);
            out.extend(t.description.as_deref());
            out.push_str(&t.parameters.to_string());
        }
        out
    }
}

impl Request {
    /// Checks the request's prompt-cache breakpoints as Anthropic would, so
    /// that a client hears of a mistake from the gateway in its own format
    /// rather than as an upstream error: at most
    /// [`MAX_CACHE_BREAKPOINTS`], and (in prompt order: tools, system,
    /// messages) no one-hour breakpoint after a shorter one.
    pub fn check_cache_breakpoints(&self) -> Result<(), Invalid> {
        fn walk(parts: &[Part], out: &mut Vec<CacheControl>) {
            for p in parts {
                match p {
                    Part::CacheBreak(c) => out.push(*c),
                    Part::ToolResult { content, .. } => walk(content, out),
                    _ => {}
                }
            }
        }
        let mut marks: Vec<CacheControl> = self.tools.iter().filter_map(|t| t.cache).collect();
        marks.extend(self.system_cache.iter().map(|(_, c)| *c));
        for m in &self.messages {
            walk(&m.content, &mut marks);
        }
        if marks.len() > MAX_CACHE_BREAKPOINTS {
            return Err(invalid(format!(
                "cache_control: at most {MAX_CACHE_BREAKPOINTS} blocks may be marked for \
                 prompt caching (Anthropic's limit); this request marks {}",
                marks.len()
            )));
        }
        if let Some(i) = marks.iter().position(|c| !c.hour())
            && marks[i..].iter().any(|c| c.hour())
        {
            return Err(invalid(
                "cache_control: a 'ttl': '1h' breakpoint must come before every shorter one \
                 (in prompt order: tools, system, messages)",
            ));
        }
        Ok(())
    }
}

/// The text parts of `parts`, joined.
pub fn text_of(parts: &[Part]) -> String {
    parts
        .iter()
        .filter_map(|p| match p {
            Part::Text(t) => Some(t.as_str()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("")
}

/// The string at `key`, if it is one.
pub fn str_of(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

/// A string, or the strings of an array (others skipped); empty when absent.
pub fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect(),
        _ => vec![],
    }
}

/// A request the translator cannot read; the proxy answers 400 with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

pub fn invalid(msg: impl Into<String>) -> Invalid {
    Invalid(msg.into())
}
