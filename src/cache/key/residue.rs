//! What the canonical model does not hold: for each surface, every field of
//! the raw body that the translator does not read losslessly and that is not
//! known to leave the answer unchanged. Such fields are kept, raw, under
//! their JSON pointer, and enter the key tagged with the surface's name; a
//! few make the request uncacheable instead.
//!
//! Each walker mirrors its translator in `src/translate/`: a field the
//! translator reads is listed as read; anything else it meets is kept. A
//! translator that learns to read a new field makes the key miss more, never
//! collide; one that stops reading a field must be mirrored here.

use serde_json::Value;

use super::Uncacheable;
use super::encode::same;

/// Fields that cannot change the answer, on every surface: the model (the
/// key names the resolved target instead), streaming, the gateway's own
/// `fallbacks`, and who or what the request is for.
const NEVER: &[&str] = &[
    "model",
    "stream",
    "stream_options",
    "fallbacks",
    "user",
    "metadata",
    "store",
    "prompt_cache_key",
    "prompt_cache_retention",
    "safety_identifier",
];

/// The residue of one request.
#[derive(Debug, Default)]
pub(super) struct Residue {
    pub surface: &'static str,
    /// `(JSON pointer, value)`, in walk order (sorted before hashing).
    pub kept: Vec<(String, Value)>,
    /// The reasoning settings as sent (the canonical budget is lossy).
    pub thinking: Option<Value>,
    /// The pointer of the last turn, when it is a user's.
    pub last_user: Option<String>,
}

impl Residue {
    fn new(surface: &'static str) -> Residue {
        Residue {
            surface,
            ..Residue::default()
        }
    }

    /// Keeps `v` at `at`, unless it is `null` (absent, on every surface)
    /// or the surface's documented default there.
    fn keep(&mut self, at: String, v: &Value) {
        if v.is_null() || default_of(self.surface, &at).is_some_and(|d| same(&d, v)) {
            return;
        }
        self.kept.push((at, v.clone()));
    }

    /// Keeps every field of `o` that is not in `read` (nor in [`NEVER`] at
    /// the top level, `at == ""`); `o` itself when it is not an object.
    fn rest(&mut self, at: &str, o: &Value, read: &[&str]) {
        let Some(m) = o.as_object() else {
            self.keep(at.to_string(), o);
            return;
        };
        for (k, v) in m {
            let k = if self.surface == "gemini" {
                camel(k)
            } else {
                k.clone()
            };
            if read.contains(&k.as_str()) || (at.is_empty() && NEVER.contains(&k.as_str())) {
                continue;
            }
            self.keep(format!("{at}/{}", escape(&k)), v);
        }
    }

    /// A number the translator reads with `as_f64`: kept when it is not one.
    fn number(&mut self, at: &str, v: Option<&Value>) {
        if let Some(v) = v.filter(|v| !v.is_number()) {
            self.keep(at.to_string(), v);
        }
    }

    /// A count the translator reads with `as_u64`.
    fn count(&mut self, at: &str, v: Option<&Value>) {
        if let Some(v) = v.filter(|v| v.as_u64().is_none()) {
            self.keep(at.to_string(), v);
        }
    }

    fn boolean(&mut self, at: &str, v: Option<&Value>) {
        if let Some(v) = v.filter(|v| !v.is_boolean()) {
            self.keep(at.to_string(), v);
        }
    }

    /// A string or an array of strings (`canonical::strings`).
    fn strings(&mut self, at: &str, v: Option<&Value>) {
        let fine = |v: &Value| match v {
            Value::String(_) => true,
            Value::Array(a) => a.iter().all(Value::is_string),
            _ => false,
        };
        if let Some(v) = v.filter(|v| !fine(v)) {
            self.keep(at.to_string(), v);
        }
    }
}

/// Documented defaults of kept fields: stating one is the same as leaving
/// it out.
fn default_of(surface: &str, at: &str) -> Option<Value> {
    use serde_json::json;
    Some(match (surface, at) {
        ("openai", "/n") | ("gemini", "/generationConfig/candidateCount") => json!(1),
        ("openai", "/presence_penalty" | "/frequency_penalty" | "/top_logprobs")
        | ("responses", "/top_logprobs")
        | ("gemini", "/generationConfig/presencePenalty" | "/generationConfig/frequencyPenalty") => {
            json!(0)
        }
        ("openai", "/logprobs") | ("responses", "/background") => json!(false),
        ("gemini", "/generationConfig/responseLogprobs") => json!(false),
        ("openai", "/response_format") => json!({"type": "text"}),
        ("responses", "/text") => json!({"format": {"type": "text"}}),
        ("openai", "/modalities") => json!(["text"]),
        ("gemini", "/generationConfig/responseModalities") => json!(["TEXT"]),
        ("gemini", "/generationConfig/responseMimeType") => json!("text/plain"),
        ("openai", "/logit_bias") => json!({}),
        ("openai" | "responses" | "anthropic", "/service_tier") => json!("auto"),
        ("responses", "/truncation") => json!("disabled"),
        (_, at) if at.ends_with("/detail") => json!("auto"),
        _ => return None,
    })
}

/// `snake_case` → `camelCase`: Gemini accepts both spellings of a field.
fn camel(k: &str) -> String {
    let mut out = String::with_capacity(k.len());
    let mut up = false;
    for c in k.chars() {
        match c {
            '_' => up = true,
            c if up => {
                out.extend(c.to_uppercase());
                up = false;
            }
            c => out.push(c),
        }
    }
    out
}

/// A key as a JSON pointer token (RFC 6901).
fn escape(k: &str) -> String {
    k.replace('~', "~0").replace('/', "~1")
}

fn items(v: Option<&Value>) -> &[Value] {
    v.and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

fn str_at<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str)
}

/// `n` choices (or candidates) asked for: more than one is uncacheable,
/// since a stored answer holds one.
fn choices(field: &'static str, v: Option<&Value>) -> Result<(), Uncacheable> {
    match v.and_then(Value::as_u64) {
        Some(n) if n > 1 => Err(Uncacheable::SeveralChoices { field, n }),
        _ => Ok(()),
    }
}

fn truthy(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|x| x != 0.0),
        _ => false,
    }
}

// ---------------------------------------------------------------- OpenAI chat

pub(super) fn openai(v: &Value) -> Result<Residue, Uncacheable> {
    let mut r = Residue::new("openai");
    choices("n", v.get("n"))?;
    if truthy(v.get("logprobs")) || truthy(v.get("top_logprobs")) {
        return Err(Uncacheable::LogProbabilities { field: "logprobs" });
    }
    if items(v.get("modalities")).iter().any(|m| m != "text")
        || v.get("audio").is_some_and(|a| !a.is_null())
    {
        return Err(Uncacheable::NonTextOutput {
            field: "modalities",
        });
    }
    r.number("/temperature", v.get("temperature"));
    r.number("/top_p", v.get("top_p"));
    r.count("/max_completion_tokens", v.get("max_completion_tokens"));
    match (v.get("max_completion_tokens"), v.get("max_tokens")) {
        // The translator reads the first; the second is kept.
        (Some(a), Some(b)) if !a.is_null() => r.keep("/max_tokens".into(), b),
        _ => r.count("/max_tokens", v.get("max_tokens")),
    }
    r.boolean("/parallel_tool_calls", v.get("parallel_tool_calls"));
    r.strings("/stop", v.get("stop"));
    r.thinking = v.get("reasoning_effort").filter(|t| !t.is_null()).cloned();
    let messages = items(v.get("messages"));
    for (i, m) in messages.iter().enumerate() {
        let at = format!("/messages/{i}");
        let role = str_at(m, "role").unwrap_or("user");
        let read: &[&str] = match role {
            "assistant" => &[
                "role",
                "content",
                "cache_control",
                "tool_calls",
                "reasoning_content",
                "reasoning_signature",
            ],
            "tool" | "function" => &["role", "content", "cache_control", "tool_call_id"],
            _ => &["role", "content", "cache_control"],
        };
        r.rest(&at, m, read);
        // System prompts keep only their text (`push_system`).
        let system = matches!(role, "system" | "developer");
        openai_content(&mut r, &format!("{at}/content"), m.get("content"), system);
        for (j, c) in items(m.get("tool_calls")).iter().enumerate() {
            let at = format!("{at}/tool_calls/{j}");
            r.rest(&at, c, &["id", "type", "function"]);
            if str_at(c, "type").is_some_and(|t| t != "function") {
                r.keep(format!("{at}/type"), &c["type"]);
            }
            if let Some(f) = c.get("function") {
                r.rest(&format!("{at}/function"), f, &["name", "arguments"]);
            }
        }
        if i + 1 == messages.len() && role == "user" {
            r.last_user = Some(at);
        }
    }
    for (i, t) in items(v.get("tools")).iter().enumerate() {
        let at = format!("/tools/{i}");
        match t.get("function") {
            None => r.keep(at, t),
            Some(f) => {
                r.rest(&at, t, &["type", "function", "cache_control"]);
                r.rest(
                    &format!("{at}/function"),
                    f,
                    &["name", "description", "parameters", "cache_control"],
                );
            }
        }
    }
    openai_tool_choice(&mut r, v.get("tool_choice"), true);
    r.rest(
        "",
        v,
        &[
            "temperature",
            "top_p",
            "max_tokens",
            "max_completion_tokens",
            "parallel_tool_calls",
            "stop",
            "messages",
            "tools",
            "tool_choice",
            "reasoning_effort",
            "n",
            "logprobs",
            "top_logprobs",
            "modalities",
            "audio",
        ],
    );
    Ok(r)
}

/// An OpenAI `content`: a string, or parts of text and images (`parts_of`).
fn openai_content(r: &mut Residue, at: &str, content: Option<&Value>, system: bool) {
    let Some(Value::Array(parts)) = content else {
        return;
    };
    for (j, p) in parts.iter().enumerate() {
        let at = format!("{at}/{j}");
        match str_at(p, "type") {
            Some("text" | "input_text" | "output_text") => {
                r.rest(&at, p, &["type", "text", "cache_control"])
            }
            Some("image_url") if !system => {
                r.rest(&at, p, &["type", "image_url", "cache_control"]);
                if let Some(u @ Value::Object(_)) = p.get("image_url") {
                    r.rest(&format!("{at}/image_url"), u, &["url"]);
                }
            }
            _ => r.keep(at, p),
        }
    }
}

/// `tool_choice` as `tool_choice_from` reads it: a known mode, or a
/// function named at `/function/name` (chat) or `/name` (Responses).
fn openai_tool_choice(r: &mut Residue, c: Option<&Value>, chat: bool) {
    match c {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if matches!(s.as_str(), "auto" | "none" | "required") => {}
        Some(o @ Value::Object(_)) if str_at(o, "type") == Some("function") => {
            if chat && o.pointer("/function/name").is_some_and(Value::is_string) {
                r.rest("/tool_choice", o, &["type", "function"]);
                r.rest("/tool_choice/function", &o["function"], &["name"]);
            } else if !chat && o.get("name").is_some_and(Value::is_string) {
                r.rest("/tool_choice", o, &["type", "name"]);
            } else {
                r.keep("/tool_choice".into(), o);
            }
        }
        Some(other) => r.keep("/tool_choice".into(), other),
    }
}

// ------------------------------------------------------------------ Responses

pub(super) fn responses(v: &Value) -> Result<Residue, Uncacheable> {
    let mut r = Residue::new("responses");
    if truthy(v.get("top_logprobs"))
        || items(v.get("include"))
            .iter()
            .any(|i| i == "message.output_text.logprobs")
    {
        return Err(Uncacheable::LogProbabilities {
            field: "top_logprobs",
        });
    }
    if v.get("conversation").is_some_and(|c| !c.is_null()) {
        return Err(Uncacheable::UpstreamState {
            field: "conversation",
        });
    }
    r.number("/temperature", v.get("temperature"));
    r.number("/top_p", v.get("top_p"));
    r.count("/max_output_tokens", v.get("max_output_tokens"));
    r.boolean("/parallel_tool_calls", v.get("parallel_tool_calls"));
    if let Some(i) = v.get("instructions").filter(|i| !i.is_string()) {
        r.keep("/instructions".into(), i);
    }
    r.thinking = v.get("reasoning").filter(|t| !t.is_null()).cloned();
    match v.get("input") {
        Some(Value::String(_)) => r.last_user = Some("/input".into()),
        Some(Value::Array(input)) => {
            for (i, it) in input.iter().enumerate() {
                let at = format!("/input/{i}");
                // Item ids and statuses never reach an upstream: Responses
                // requests are always rebuilt from the canonical model.
                match str_at(it, "type").unwrap_or("message") {
                    "message" => {
                        r.rest(
                            &at,
                            it,
                            &["type", "role", "content", "cache_control", "id", "status"],
                        );
                        responses_content(&mut r, &format!("{at}/content"), it.get("content"));
                        let user = !matches!(
                            str_at(it, "role"),
                            Some("assistant" | "system" | "developer")
                        );
                        if i + 1 == input.len() && user {
                            r.last_user = Some(at);
                        }
                    }
                    "function_call" => r.rest(
                        &at,
                        it,
                        &["type", "call_id", "name", "arguments", "id", "status"],
                    ),
                    "function_call_output" => {
                        r.rest(
                            &at,
                            it,
                            &["type", "call_id", "output", "cache_control", "id", "status"],
                        );
                        if !it.get("output").is_some_and(Value::is_string) {
                            responses_content(&mut r, &format!("{at}/output"), it.get("output"));
                        }
                    }
                    "reasoning" => {
                        r.rest(
                            &at,
                            it,
                            &["type", "summary", "encrypted_content", "id", "status"],
                        );
                        for (j, s) in items(it.get("summary")).iter().enumerate() {
                            r.rest(&format!("{at}/summary/{j}"), s, &["type", "text"]);
                        }
                    }
                    _ => r.keep(at, it),
                }
            }
        }
        _ => {}
    }
    for (i, t) in items(v.get("tools")).iter().enumerate() {
        let at = format!("/tools/{i}");
        if str_at(t, "type") == Some("function") {
            r.rest(
                &at,
                t,
                &["type", "name", "description", "parameters", "cache_control"],
            );
        } else {
            r.keep(at, t);
        }
    }
    openai_tool_choice(&mut r, v.get("tool_choice"), false);
    r.rest(
        "",
        v,
        &[
            "temperature",
            "top_p",
            "max_output_tokens",
            "parallel_tool_calls",
            "instructions",
            "input",
            "tools",
            "tool_choice",
            "reasoning",
        ],
    );
    Ok(r)
}

/// A Responses item's content (`content_parts`).
fn responses_content(r: &mut Residue, at: &str, content: Option<&Value>) {
    let Some(Value::Array(parts)) = content else {
        return;
    };
    for (j, p) in parts.iter().enumerate() {
        let at = format!("{at}/{j}");
        match str_at(p, "type") {
            // Annotations and logprobs on earlier answers are never sent on.
            Some("input_text" | "output_text" | "text") => r.rest(
                &at,
                p,
                &["type", "text", "cache_control", "annotations", "logprobs"],
            ),
            Some("input_image") if p.get("image_url").is_some_and(Value::is_string) => {
                r.rest(&at, p, &["type", "image_url", "cache_control"])
            }
            _ => r.keep(at, p),
        }
    }
}

// ------------------------------------------------------------------ Anthropic

pub(super) fn anthropic(v: &Value) -> Result<Residue, Uncacheable> {
    let mut r = Residue::new("anthropic");
    r.number("/temperature", v.get("temperature"));
    r.number("/top_p", v.get("top_p"));
    r.count("/max_tokens", v.get("max_tokens"));
    r.strings("/stop_sequences", v.get("stop_sequences"));
    r.thinking = v
        .get("thinking")
        .filter(|t| !t.is_null() && str_at(t, "type") != Some("disabled"))
        .cloned();
    match v.get("system") {
        None | Some(Value::Null | Value::String(_)) => {}
        Some(Value::Array(blocks)) => {
            for (i, b) in blocks.iter().enumerate() {
                let at = format!("/system/{i}");
                if str_at(b, "type") == Some("text") {
                    r.rest(&at, b, &["type", "text", "cache_control"]);
                } else {
                    r.keep(at, b);
                }
            }
        }
        Some(other) => r.keep("/system".into(), other),
    }
    let messages = items(v.get("messages"));
    for (i, m) in messages.iter().enumerate() {
        let at = format!("/messages/{i}");
        r.rest(&at, m, &["role", "content"]);
        anthropic_blocks(&mut r, &format!("{at}/content"), m.get("content"));
        if i + 1 == messages.len() && str_at(m, "role") == Some("user") {
            r.last_user = Some(at);
        }
    }
    for (i, t) in items(v.get("tools")).iter().enumerate() {
        let at = format!("/tools/{i}");
        // Server tools carry a type of their own and no schema: kept whole.
        if t.get("input_schema").is_none() {
            r.keep(at, t);
            continue;
        }
        r.rest(
            &at,
            t,
            &[
                "name",
                "description",
                "input_schema",
                "cache_control",
                "type",
            ],
        );
        if str_at(t, "type").is_some_and(|k| k != "custom") {
            r.keep(format!("{at}/type"), &t["type"]);
        }
    }
    if let Some(c) = v.get("tool_choice").filter(|c| !c.is_null()) {
        match str_at(c, "type") {
            Some("auto" | "any" | "none") => {
                r.rest("/tool_choice", c, &["type", "disable_parallel_tool_use"])
            }
            Some("tool") if c.get("name").is_some_and(Value::is_string) => r.rest(
                "/tool_choice",
                c,
                &["type", "name", "disable_parallel_tool_use"],
            ),
            _ => r.keep("/tool_choice".into(), c),
        }
        r.boolean(
            "/tool_choice/disable_parallel_tool_use",
            c.get("disable_parallel_tool_use"),
        );
    }
    r.rest(
        "",
        v,
        &[
            "temperature",
            "top_p",
            "max_tokens",
            "stop_sequences",
            "system",
            "messages",
            "tools",
            "tool_choice",
            "thinking",
            // A prompt-cache marker, like the per-block ones.
            "cache_control",
        ],
    );
    Ok(r)
}

/// Anthropic content blocks (`text_or_blocks`), tool results' included.
fn anthropic_blocks(r: &mut Residue, at: &str, content: Option<&Value>) {
    let Some(Value::Array(blocks)) = content else {
        return;
    };
    for (j, b) in blocks.iter().enumerate() {
        let at = format!("{at}/{j}");
        match str_at(b, "type") {
            Some("text") => r.rest(&at, b, &["type", "text", "cache_control"]),
            Some("image") => {
                r.rest(&at, b, &["type", "source", "cache_control"]);
                let src = b.get("source").unwrap_or(&Value::Null);
                let read: &[&str] = match str_at(src, "type") {
                    Some("base64") => &["type", "media_type", "data"],
                    _ => &["type", "url"],
                };
                r.rest(&format!("{at}/source"), src, read);
            }
            Some("thinking") => r.rest(&at, b, &["type", "thinking", "signature", "cache_control"]),
            Some("tool_use") => r.rest(&at, b, &["type", "id", "name", "input", "cache_control"]),
            Some("tool_result") => {
                r.rest(
                    &at,
                    b,
                    &[
                        "type",
                        "tool_use_id",
                        "content",
                        "is_error",
                        "cache_control",
                    ],
                );
                anthropic_blocks(r, &format!("{at}/content"), b.get("content"));
            }
            _ => r.keep(at, b),
        }
    }
}

// --------------------------------------------------------------------- Gemini

/// `camelCase` or `snake_case`, as the translator reads Gemini fields.
fn field<'a>(v: &'a Value, camel: &str, snake: &str) -> Option<&'a Value> {
    v.get(camel).or_else(|| v.get(snake))
}

pub(super) fn gemini(v: &Value) -> Result<Residue, Uncacheable> {
    let mut r = Residue::new("gemini");
    let null = Value::Null;
    let g = field(v, "generationConfig", "generation_config").unwrap_or(&null);
    choices(
        "candidateCount",
        field(g, "candidateCount", "candidate_count"),
    )?;
    if truthy(field(g, "responseLogprobs", "response_logprobs")) {
        return Err(Uncacheable::LogProbabilities {
            field: "responseLogprobs",
        });
    }
    if items(field(g, "responseModalities", "response_modalities"))
        .iter()
        .any(|m| !m.as_str().is_some_and(|m| m.eq_ignore_ascii_case("text")))
    {
        return Err(Uncacheable::NonTextOutput {
            field: "responseModalities",
        });
    }
    r.number("/generationConfig/temperature", g.get("temperature"));
    r.number("/generationConfig/topP", field(g, "topP", "top_p"));
    r.count(
        "/generationConfig/maxOutputTokens",
        field(g, "maxOutputTokens", "max_output_tokens"),
    );
    r.strings(
        "/generationConfig/stopSequences",
        field(g, "stopSequences", "stop_sequences"),
    );
    r.thinking = field(g, "thinkingConfig", "thinking_config")
        .filter(|t| !t.is_null())
        .map(|t| match t {
            Value::Object(o) => {
                Value::Object(o.iter().map(|(k, v)| (camel(k), v.clone())).collect())
            }
            t => t.clone(),
        });
    r.rest(
        "/generationConfig",
        g,
        &[
            "temperature",
            "topP",
            "maxOutputTokens",
            "stopSequences",
            "thinkingConfig",
            "responseModalities",
            "responseLogprobs",
            "candidateCount",
        ],
    );
    if let Some(s) = field(v, "systemInstruction", "system_instruction").filter(|s| !s.is_null()) {
        r.rest("/systemInstruction", s, &["parts", "role"]);
        let parts = items(s.get("parts"));
        if parts.len() > 1 {
            // The translator joins the texts into one; keep how they were cut.
            r.keep("/systemInstruction/parts".into(), &s["parts"]);
        } else if let Some(p) = parts.first() {
            r.rest("/systemInstruction/parts/0", p, &["text"]);
        }
    }
    let contents = items(v.get("contents"));
    for (i, c) in contents.iter().enumerate() {
        let at = format!("/contents/{i}");
        r.rest(&at, c, &["role", "parts"]);
        let role = str_at(c, "role");
        if role.is_some_and(|k| k != "user" && k != "model") {
            r.keep(format!("{at}/role"), &c["role"]);
        }
        for (j, p) in items(c.get("parts")).iter().enumerate() {
            gemini_part(&mut r, &format!("{at}/parts/{j}"), p);
        }
        if i + 1 == contents.len() && role.is_none_or(|k| k == "user") {
            r.last_user = Some(at);
        }
    }
    for (i, t) in items(v.get("tools")).iter().enumerate() {
        let at = format!("/tools/{i}");
        r.rest(&at, t, &["functionDeclarations"]);
        for (j, d) in items(field(t, "functionDeclarations", "function_declarations"))
            .iter()
            .enumerate()
        {
            let at = format!("{at}/functionDeclarations/{j}");
            r.rest(
                &at,
                d,
                &["name", "description", "parameters", "parametersJsonSchema"],
            );
            if field(d, "parametersJsonSchema", "parameters_json_schema").is_some()
                && let Some(p) = d.get("parameters")
            {
                r.keep(format!("{at}/parameters"), p);
            }
        }
    }
    if let Some(t) = field(v, "toolConfig", "tool_config").filter(|t| !t.is_null()) {
        r.rest("/toolConfig", t, &["functionCallingConfig"]);
        if let Some(fc) = field(t, "functionCallingConfig", "function_calling_config") {
            let at = "/toolConfig/functionCallingConfig";
            r.rest(at, fc, &["mode", "allowedFunctionNames"]);
            let mode = str_at(fc, "mode");
            if !matches!(mode, None | Some("NONE" | "ANY" | "AUTO")) {
                r.keep(format!("{at}/mode"), &fc["mode"]);
            }
            // One allowed name under ANY is a forced tool; anything else
            // the canonical choice cannot say.
            let allowed = field(fc, "allowedFunctionNames", "allowed_function_names");
            if let Some(a) = allowed
                && !(mode == Some("ANY") && items(Some(a)).len() == 1)
            {
                r.keep(format!("{at}/allowedFunctionNames"), a);
            }
        }
    }
    r.rest(
        "",
        v,
        &[
            "generationConfig",
            "systemInstruction",
            "contents",
            "tools",
            "toolConfig",
        ],
    );
    Ok(r)
}

/// One Gemini part (`part_from`): what it reads first wins, the rest is kept.
fn gemini_part(r: &mut Residue, at: &str, p: &Value) {
    let sub = |r: &mut Residue, name: &str, snake: &str, read: &[&str]| {
        r.rest(at, p, &[name]);
        r.rest(
            &format!("{at}/{name}"),
            field(p, name, snake).unwrap_or(&Value::Null),
            read,
        );
    };
    if p.get("text").is_some_and(Value::is_string) {
        r.rest(at, p, &["text", "thought", "thoughtSignature"]);
    } else if field(p, "inlineData", "inline_data").is_some() {
        sub(r, "inlineData", "inline_data", &["mimeType", "data"]);
    } else if field(p, "fileData", "file_data").is_some() {
        sub(r, "fileData", "file_data", &["fileUri"]);
    } else if field(p, "functionCall", "function_call").is_some() {
        sub(r, "functionCall", "function_call", &["name", "id", "args"]);
    } else if field(p, "functionResponse", "function_response").is_some() {
        sub(
            r,
            "functionResponse",
            "function_response",
            &["name", "id", "response"],
        );
    } else {
        r.keep(at.to_string(), p);
    }
}
