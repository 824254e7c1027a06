//! The OpenAI wire format, as far as the gateway needs to read it.
//!
//! Requests are parsed only to their top level ([`RawObject`]): the fields the
//! gateway acts on (`model`, `stream`, `fallbacks`, ...) are read, and every
//! other field passes to the upstream byte for byte, so parameters the gateway
//! has never heard of keep working. Responses are scanned only for `usage`.

use std::borrow::Cow;
use std::fmt::Write as _;

use bytes::Bytes;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Which OpenAI endpoint a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    ChatCompletions,
    Completions,
    Embeddings,
    /// `/v1/rerank`, in the request shape Cohere, Jina and vLLM share.
    Rerank,
    ImageGenerations,
    /// Text to speech: JSON in, audio out.
    Speech,
    /// Speech to text: a multipart form in.
    Transcriptions,
    Moderations,
}

impl Endpoint {
    /// Path under the provider's base URL.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::ChatCompletions => "/chat/completions",
            Endpoint::Completions => "/completions",
            Endpoint::Embeddings => "/embeddings",
            Endpoint::Rerank => "/rerank",
            Endpoint::ImageGenerations => "/images/generations",
            Endpoint::Speech => "/audio/speech",
            Endpoint::Transcriptions => "/audio/transcriptions",
            Endpoint::Moderations => "/moderations",
        }
    }

    /// Short name for logs and metric labels.
    pub fn label(self) -> &'static str {
        match self {
            Endpoint::ChatCompletions => "chat",
            Endpoint::Completions => "completions",
            Endpoint::Embeddings => "embeddings",
            Endpoint::Rerank => "rerank",
            Endpoint::ImageGenerations => "images",
            Endpoint::Speech => "speech",
            Endpoint::Transcriptions => "transcriptions",
            Endpoint::Moderations => "moderations",
        }
    }

    /// Whether requests to it may stream (those of the others are refused
    /// with `stream`).
    pub fn streams(self) -> bool {
        matches!(self, Endpoint::ChatCompletions | Endpoint::Completions)
    }

    /// The field without which a request to it means nothing.
    fn required_field(self) -> &'static str {
        match self {
            Endpoint::ChatCompletions => "messages",
            Endpoint::Completions => "prompt",
            Endpoint::Rerank => "documents",
            Endpoint::ImageGenerations => "prompt",
            Endpoint::Transcriptions => "file",
            Endpoint::Embeddings | Endpoint::Speech | Endpoint::Moderations => "input",
        }
    }
}

/// A JSON object read only to its top level: keys in order, values as raw JSON.
#[derive(Debug)]
pub struct RawObject<'a> {
    pub fields: Vec<(Cow<'a, str>, &'a RawValue)>,
}

impl<'de: 'a, 'a> Deserialize<'de> for RawObject<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = RawObject<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(k) = map.next_key::<Cow<'de, str>>()? {
                    let v: &'de RawValue = map.next_value()?;
                    fields.push((k, v));
                }
                Ok(RawObject { fields })
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

impl<'a> RawObject<'a> {
    /// Reads the top level of `body`. Fields are kept raw, so the string
    /// escapes the raw reader does not check are checked here: a lone UTF-16
    /// surrogate (`"\ud800"`) is refused as every JSON decoder past this one
    /// (the translators, the bounds, the upstream) would refuse it.
    pub fn parse(body: &'a [u8]) -> Result<RawObject<'a>, serde_json::Error> {
        let obj: RawObject<'a> = serde_json::from_slice(body)?;
        check_escapes(body).map_err(<serde_json::Error as serde::de::Error>::custom)?;
        Ok(obj)
    }

    pub fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    /// A field decoded as `T`; `Ok(None)` when absent or `null`.
    pub fn decode<T: Deserialize<'a>>(&self, key: &str) -> Result<Option<T>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(v) if v.get() == "null" => Ok(None),
            Some(v) => serde_json::from_str(v.get())
                .map(Some)
                .map_err(|e| format!("'{key}': {e}")),
        }
    }
}

/// Checks the `\u` escapes of a JSON text the raw reader accepted: every
/// surrogate must be half of a pair. Backslashes occur only inside strings,
/// so the scan needs no parser.
fn check_escapes(text: &[u8]) -> Result<(), &'static str> {
    let hex4 = |at: usize| -> Option<u16> {
        let digits = std::str::from_utf8(text.get(at..at + 4)?).ok()?;
        u16::from_str_radix(digits, 16).ok()
    };
    let mut i = 0;
    while let Some(off) = text.get(i..).and_then(|t| memchr::memchr(b'\\', t)) {
        let at = i + off;
        match text.get(at + 1) {
            Some(b'u') => {
                let unit = hex4(at + 2).ok_or("invalid \\u escape")?;
                i = at + 6;
                if (0xDC00..0xE000).contains(&unit) {
                    return Err("a lone UTF-16 surrogate in a string");
                }
                if (0xD800..0xDC00).contains(&unit) {
                    let low = (text.get(i..i + 2) == Some(b"\\u"))
                        .then(|| hex4(i + 2))
                        .flatten();
                    if !low.is_some_and(|l| (0xDC00..0xE000).contains(&l)) {
                        return Err("a lone UTF-16 surrogate in a string");
                    }
                    i += 6;
                }
            }
            _ => i = at + 2,
        }
    }
    Ok(())
}

/// What the gateway reads from a request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestView {
    pub model: String,
    pub stream: bool,
    /// `stream_options.include_usage` as the client sent it.
    pub include_usage: bool,
    pub fallbacks: Vec<String>,
    pub max_tokens: Option<u64>,
}

/// A request the gateway cannot act on; becomes a 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidRequest {
    pub message: String,
    pub param: Option<&'static str>,
}

fn invalid(message: impl Into<String>, param: Option<&'static str>) -> InvalidRequest {
    InvalidRequest {
        message: message.into(),
        param,
    }
}

#[derive(Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

impl RequestView {
    pub fn read(obj: &RawObject<'_>, endpoint: Endpoint) -> Result<RequestView, InvalidRequest> {
        let model: String = obj
            .decode("model")
            .map_err(|e| invalid(format!("invalid {e}"), Some("model")))?
            .ok_or_else(|| invalid("you must provide a model parameter", Some("model")))?;
        check_model_id(&model).map_err(|m| invalid(m, Some("model")))?;
        let stream: bool = obj
            .decode("stream")
            .map_err(|e| invalid(format!("invalid {e}"), Some("stream")))?
            .unwrap_or(false);
        if stream && !endpoint.streams() {
            return Err(invalid(
                format!("{} requests cannot be streamed", endpoint.label()),
                Some("stream"),
            ));
        }
        let include_usage = obj
            .decode::<StreamOptions>("stream_options")
            .map_err(|e| invalid(format!("invalid {e}"), Some("stream_options")))?
            .is_some_and(|o| o.include_usage);
        let fallbacks: Vec<String> = obj
            .decode("fallbacks")
            .map_err(|e| invalid(format!("invalid {e}"), Some("fallbacks")))?
            .unwrap_or_default();
        if fallbacks.len() > MAX_FALLBACKS {
            return Err(invalid(
                format!("at most {MAX_FALLBACKS} fallbacks may be given"),
                Some("fallbacks"),
            ));
        }
        for f in &fallbacks {
            check_model_id(f).map_err(|m| invalid(m, Some("fallbacks")))?;
        }
        let max_tokens = match obj.decode::<u64>("max_completion_tokens") {
            Ok(Some(n)) => Some(n),
            _ => obj.decode::<u64>("max_tokens").ok().flatten(),
        };
        let required = endpoint.required_field();
        if obj.get(required).is_none() {
            let article = if required.starts_with(['a', 'e', 'i', 'o', 'u']) {
                "an"
            } else {
                "a"
            };
            return Err(invalid(
                format!("you must provide {article} {required} parameter"),
                Some(required),
            ));
        }
        Ok(RequestView {
            model,
            stream,
            include_usage,
            fallbacks,
            max_tokens,
        })
    }
}

/// The most fallbacks one request may name.
pub const MAX_FALLBACKS: usize = 8;

/// The longest model id accepted, `provider/` prefix included.
pub const MAX_MODEL_ID: usize = 256;

/// Whether `id` can be a model id: at most [`MAX_MODEL_ID`] bytes of ASCII
/// letters, digits and `- . _ : @ / +`, in `/`-separated segments none of
/// which is empty, `.` or `..`. What passes has no path, query or fragment
/// syntax, so the id that is authorised and priced is the one the upstream
/// reads (it is percent-encoded where it enters a URL path as well).
pub fn check_model_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("model must not be empty".into());
    }
    if id.len() > MAX_MODEL_ID {
        return Err(format!(
            "a model id is at most {MAX_MODEL_ID} bytes; this one is {}",
            id.len()
        ));
    }
    if let Some(c) = id.chars().find(|c| {
        !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | ':' | '@' | '/' | '+'))
    }) {
        return Err(format!(
            "model id contains {c:?}: only letters, digits and - . _ : @ / + are allowed"
        ));
    }
    if id.split('/').any(|seg| matches!(seg, "" | "." | "..")) {
        return Err("model id has an empty, '.' or '..' path segment".into());
    }
    Ok(())
}

/// `s` with every byte but ASCII letters, digits and `- . _ ~` percent-encoded:
/// one URL path segment whatever it holds.
pub fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An upper bound of the prompt's tokens: the UTF-8 bytes of every string in
/// the fields that make up the prompt (no tokenizer maps a token to less than
/// one byte), plus a few tokens of framing per message or input.
pub fn prompt_token_bound(obj: &RawObject<'_>) -> u64 {
    fn walk(v: &serde_json::Value) -> u64 {
        match v {
            serde_json::Value::String(s) => s.len() as u64,
            serde_json::Value::Array(a) => a.iter().map(|x| walk(x) + 4).sum(),
            serde_json::Value::Object(o) => o.iter().map(|(k, x)| k.len() as u64 + walk(x)).sum(),
            serde_json::Value::Number(_) => 4,
            _ => 1,
        }
    }
    ["messages", "prompt", "input", "tools", "functions"]
        .iter()
        .filter_map(|f| obj.get(f))
        .filter_map(|raw| serde_json::from_str::<serde_json::Value>(raw.get()).ok())
        .map(|v| walk(&v) + 8)
        .sum()
}

/// The prompt's text: every string under `content`, `text`, `prompt`, `input`
/// or `arguments` (image data and other structure left out), for token counting.
pub fn prompt_text(obj: &RawObject<'_>) -> String {
    fn walk(v: &serde_json::Value, textual: bool, out: &mut String) {
        match v {
            serde_json::Value::String(s) if textual => {
                out.push_str(s);
                out.push('\n');
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, textual, out)),
            serde_json::Value::Object(o) => o.iter().for_each(|(k, x)| {
                walk(
                    x,
                    matches!(k.as_str(), "content" | "text" | "arguments"),
                    out,
                )
            }),
            _ => {}
        }
    }
    let mut out = String::new();
    for (field, textual) in [("messages", false), ("prompt", true), ("input", true)] {
        if let Some(raw) = obj.get(field)
            && let Ok(v) = serde_json::from_str::<serde_json::Value>(raw.get())
        {
            walk(&v, textual, &mut out);
        }
    }
    out
}

/// The text a stream chunk adds: content, reasoning, refusal, tool-call
/// arguments and legacy completion text.
pub fn chunk_text(data: &str) -> String {
    #[derive(Deserialize)]
    struct Chunk {
        #[serde(default)]
        choices: Vec<Choice>,
    }
    #[derive(Deserialize)]
    struct Choice {
        #[serde(default)]
        delta: Option<Delta>,
        #[serde(default)]
        text: Option<String>,
    }
    #[derive(Deserialize)]
    struct Delta {
        #[serde(default)]
        content: Option<String>,
        #[serde(default)]
        reasoning_content: Option<String>,
        #[serde(default)]
        refusal: Option<String>,
        #[serde(default)]
        tool_calls: Vec<ToolCall>,
    }
    #[derive(Deserialize)]
    struct ToolCall {
        #[serde(default)]
        function: Option<Function>,
    }
    #[derive(Deserialize)]
    struct Function {
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        arguments: Option<String>,
    }
    let Ok(chunk) = serde_json::from_str::<Chunk>(data) else {
        return String::new();
    };
    let mut out = String::new();
    for c in chunk.choices {
        out.extend(c.text);
        if let Some(d) = c.delta {
            out.extend(d.content);
            out.extend(d.reasoning_content);
            out.extend(d.refusal);
            for t in d.tool_calls {
                if let Some(f) = t.function {
                    out.extend(f.name);
                    out.extend(f.arguments);
                }
            }
        }
    }
    out
}

/// Fields that are the gateway's and never reach an upstream.
const GATEWAY_FIELDS: &[&str] = &["fallbacks"];

/// The body for the upstream: `model` replaced, gateway fields removed, and —
/// when `ask_usage` is set on a stream — `stream_options.include_usage` turned
/// on. Every other field is copied byte for byte.
pub fn upstream_body(obj: &RawObject<'_>, upstream_model: &str, ask_usage: bool) -> Bytes {
    let len: usize = obj
        .fields
        .iter()
        .map(|(k, v)| k.len() + v.get().len() + 4)
        .sum();
    let mut out = String::with_capacity(len + upstream_model.len() + 48);
    out.push('{');
    let mut first = true;
    let mut sep = |out: &mut String| {
        if !first {
            out.push(',');
        }
        first = false;
    };
    let mut wrote_options = false;
    for (k, v) in &obj.fields {
        if GATEWAY_FIELDS.contains(&k.as_ref()) {
            continue;
        }
        sep(&mut out);
        write_json_str(&mut out, k);
        out.push(':');
        if k == "model" {
            write_json_str(&mut out, upstream_model);
        } else if k == "stream_options" && ask_usage {
            out.push_str(&with_include_usage(v));
            wrote_options = true;
        } else {
            out.push_str(v.get());
        }
    }
    if ask_usage && !wrote_options {
        sep(&mut out);
        out.push_str("\"stream_options\":{\"include_usage\":true}");
    }
    out.push('}');
    Bytes::from(out)
}

/// `stream_options` with `include_usage: true`, other options kept.
fn with_include_usage(v: &RawValue) -> String {
    match RawObject::parse(v.get().as_bytes()) {
        Ok(o) => {
            let mut out = String::from("{\"include_usage\":true");
            for (k, v) in o.fields.iter().filter(|(k, _)| k != "include_usage") {
                out.push(',');
                write_json_str(&mut out, k);
                out.push(':');
                out.push_str(v.get());
            }
            out.push('}');
            out
        }
        // Not an object: leave it for the upstream to reject.
        Err(_) => v.get().to_string(),
    }
}

fn write_json_str(out: &mut String, s: &str) {
    // Keys and model ids rarely need escaping: copy those straight through.
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        out.push_str(&serde_json::to_string(s).expect("strings always serialize"));
    }
}

/// Token usage as the OpenAI format reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
    #[serde(default)]
    pub total_tokens: u64,
    /// Prompt tokens served from the provider's prompt cache.
    #[serde(default)]
    pub cached_tokens: u64,
    /// Prompt tokens written to the provider's prompt cache (Anthropic), of
    /// every lifetime; part of `prompt_tokens`, charged at the write price.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache_write_tokens: u64,
    /// Of `cache_write_tokens`, those written for an hour (Anthropic's dearer rate).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache_write_1h_tokens: u64,
    /// What the request was billed for besides tokens.
    #[serde(default, skip_serializing_if = "Units::is_none")]
    pub units: Units,
}

/// Billed units that are not tokens: rerank search units (a query over up
/// to 100 documents), generated images, seconds of transcribed audio, and
/// characters of synthesised speech.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Units {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub search_units: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub images: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub audio_seconds: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub characters: u64,
}

impl Units {
    pub fn is_none(&self) -> bool {
        *self == Units::default()
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    #[serde(default)]
    total_tokens: u64,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
}

#[derive(Deserialize)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
    /// Not OpenAI's: the gateway's own report of prompt-cache writes, when a
    /// translated upstream (Anthropic) made some.
    #[serde(default)]
    cache_write_tokens: Option<u64>,
    #[serde(default)]
    cache_write_1h_tokens: Option<u64>,
}

impl From<WireUsage> for Usage {
    fn from(w: WireUsage) -> Usage {
        Usage {
            prompt_tokens: w.prompt_tokens,
            completion_tokens: w.completion_tokens,
            total_tokens: if w.total_tokens > 0 {
                w.total_tokens
            } else {
                w.prompt_tokens.saturating_add(w.completion_tokens)
            },
            cached_tokens: w
                .prompt_tokens_details
                .as_ref()
                .and_then(|d| d.cached_tokens)
                .unwrap_or(0),
            cache_write_tokens: w
                .prompt_tokens_details
                .as_ref()
                .and_then(|d| d.cache_write_tokens)
                .unwrap_or(0),
            cache_write_1h_tokens: w
                .prompt_tokens_details
                .as_ref()
                .and_then(|d| d.cache_write_1h_tokens)
                .unwrap_or(0),
            units: Units::default(),
        }
    }
}

/// The `usage` of a response body or stream chunk, if it carries one.
pub fn usage_of(json: &[u8]) -> Option<Usage> {
    let obj = RawObject::parse(json).ok()?;
    obj.decode::<WireUsage>("usage")
        .ok()
        .flatten()
        .map(Usage::from)
}

#[derive(Deserialize)]
struct ChoiceView<'a> {
    #[serde(default, borrow)]
    delta: Option<DeltaView<'a>>,
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    finish_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct DeltaView<'a> {
    #[serde(default, borrow)]
    content: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    refusal: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    tool_calls: Option<&'a RawValue>,
}

/// What one stream chunk means to the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkKind {
    /// Carries output the client would show: text, reasoning, a tool call, or a finish reason.
    Content,
    /// No output: a role-only delta, an empty keep-alive chunk.
    Preamble,
    /// `choices` empty and `usage` set: the chunk `include_usage` adds at the end.
    UsageOnly,
    /// `[DONE]`.
    Done,
    /// An upstream `{"error": ...}` in the stream.
    Error,
    /// Not JSON the gateway understands; forwarded as is.
    Other,
}

/// Classifies a chunk's `data` field.
pub fn chunk_kind(data: &str) -> ChunkKind {
    if data.trim() == "[DONE]" {
        return ChunkKind::Done;
    }
    let Ok(obj) = RawObject::parse(data.as_bytes()) else {
        return ChunkKind::Other;
    };
    if obj.get("error").is_some() {
        return ChunkKind::Error;
    }
    let Some(choices) = obj.get("choices") else {
        return ChunkKind::Other;
    };
    let Ok(choices) = serde_json::from_str::<Vec<ChoiceView>>(choices.get()) else {
        return ChunkKind::Other;
    };
    if choices.is_empty() {
        return match obj.get("usage") {
            Some(u) if u.get() != "null" => ChunkKind::UsageOnly,
            _ => ChunkKind::Preamble,
        };
    }
    let has_output = choices.iter().any(|c| {
        c.finish_reason.is_some()
            || c.text.as_deref().is_some_and(|t| !t.is_empty())
            || c.delta.as_ref().is_some_and(|d| {
                d.content.as_deref().is_some_and(|t| !t.is_empty())
                    || d.reasoning_content
                        .as_deref()
                        .is_some_and(|t| !t.is_empty())
                    || d.refusal.as_deref().is_some_and(|t| !t.is_empty())
                    || d.tool_calls.is_some_and(|t| t.get() != "null")
            })
    });
    if has_output {
        ChunkKind::Content
    } else {
        ChunkKind::Preamble
    }
}

/// The text of the `error.message` of an upstream error body, if it has one.
/// `text` with whatever looks like a credential or an account id replaced
/// by `[redacted]`: provider keys (`sk-…`, `AIza…`, `gsk_…`, `xai-…`),
/// organisation and project ids (`org-…`, `proj_…`), and any run of 32 or
/// more letters, digits, `-` and `_` that holds a digit and at most two
/// dashes (a key, a token, an account number — not a model id). Upstream error messages pass through this before a
/// client or a log sees them.
pub fn redact(text: &str) -> String {
    const PREFIXES: &[&str] = &[
        "sk-", "sk_", "rk_", "pk_", "org-", "org_", "proj_", "proj-", "AIza", "gsk_", "xai-",
        "pplx-", "key-", "key_", "acct_", "user-", "user_",
    ];
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        // Model ids are long and dashed (`claude-3-5-sonnet-20241022`);
        // keys and tokens are long and dense.
        let dense = word.len() >= 32
            && word.bytes().any(|b| b.is_ascii_digit())
            && word.bytes().filter(|&b| b == b'-').count() <= 2;
        let secret = dense
            || PREFIXES
                .iter()
                .any(|p| word.starts_with(p) && word.len() > p.len() + 3);
        if secret {
            out.push_str("[redacted]");
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '*' {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// An upstream's error body as a client may see it: a JSON `error.message`
/// (or a string `error`) redacted in place, other fields kept; any other
/// body redacted as text.
pub fn redact_error_body(body: &[u8]) -> bytes::Bytes {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(mut v) => {
            let scrub = |s: &mut serde_json::Value| {
                if let serde_json::Value::String(text) = s {
                    *text = redact(text);
                }
            };
            if let Some(e) = v.get_mut("error") {
                if e.is_string() {
                    scrub(e);
                } else if let Some(m) = e.get_mut("message") {
                    scrub(m);
                }
            }
            if let Some(m) = v.get_mut("message") {
                scrub(m);
            }
            bytes::Bytes::from(v.to_string())
        }
        Err(_) => bytes::Bytes::from(redact(&String::from_utf8_lossy(body))),
    }
}

pub fn error_message(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct E {
        error: Inner,
    }
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Inner {
        Obj { message: String },
        Str(String),
    }
    match serde_json::from_slice::<E>(body).ok()?.error {
        Inner::Obj { message } | Inner::Str(message) => Some(message),
    }
}

/// An OpenAI-shaped error object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorObject<'a> {
    pub message: &'a str,
    #[serde(rename = "type")]
    pub kind: &'a str,
    pub param: Option<&'a str>,
    pub code: Option<&'a str>,
}

/// `{"error": {...}}`, the body of every error response.
pub fn error_body(e: &ErrorObject<'_>) -> Bytes {
    #[derive(Serialize)]
    struct Envelope<'a> {
        error: &'a ErrorObject<'a>,
    }
    Bytes::from(serde_json::to_vec(&Envelope { error: e }).expect("error serializes"))
}

/// The event that ends a stream which failed after content was sent. The OpenAI
/// SDKs raise an `APIError` on a `data:` line that carries `error`.
pub fn stream_error_event(e: &ErrorObject<'_>) -> Bytes {
    let mut out = String::from("data: ");
    out.push_str(std::str::from_utf8(&error_body(e)).expect("JSON is UTF-8"));
    let _ = write!(out, "\n\n");
    Bytes::from(out)
}

#[cfg(test)]
pub(crate) mod tests;
