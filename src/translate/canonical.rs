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
}

#[derive(Debug, Clone, PartialEq)]
pub enum Image {
    Base64 { media_type: String, data: String },
    Url(String),
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
                Part::Image(_) => {}
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
