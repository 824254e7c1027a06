//! The most tokens an upstream request can be billed for, read from the very
//! body that is sent, in the upstream's own format.
//!
//! Budgets reserve a request's worst case before it is sent. That worst case
//! is only a bound if the upstream cannot produce more than it assumed, so
//! [`enforce`] first writes the output cap into the body in the provider's
//! own field when the client sent none, then reads the bound from what the
//! body now says: prompt tokens (every text token is at least one byte of
//! the body's strings; each media part is counted at a floor of
//! [`MEDIA_TOKENS`]), output tokens (the cap, times every choice or
//! candidate asked for; reasoning and thinking count inside the cap on every
//! supported format). Fields that change the price in ways the gateway
//! cannot bound (paid server tools, audio, documents of unknown page count,
//! premium service tiers) are refused with the field named. An OpenAI-format
//! body's `web_search_options` is reported in the bound instead
//! ([`Bound::web_search`]): whether a price covers it (Perplexity's
//! per-request search fee) is the price's to say.
//!
//! Pure: no I/O, no governance.

use bytes::Bytes;
use serde_json::{Map, Value};

use super::openai::Units;
use super::presets::Format;

/// Tokens assumed for one image part at least. Providers scale images down
/// before counting (Anthropic to ~1.15 MP, about 1,600 tokens; OpenAI's high
/// detail tiles stay under ~1,600 for current models; Gemini's 768 px tiles
/// are 258 tokens each, at most 16 tiles), so this is above each of them.
pub const MEDIA_TOKENS: u64 = 8_192;

/// Tokens a provider adds to the prompt of a request that offers tools
/// (Anthropic's tool-use system prompt is 300–500 of them; OpenAI and Gemini
/// render the declarations in their own templates), on top of the tools'
/// own bytes.
pub const TOOLS_TOKENS: u64 = 1_024;

/// [`TOOLS_TOKENS`] when `v` offers any tools.
fn tools_overhead(v: &Map<String, Value>) -> u64 {
    let offered = ["tools", "functions"].iter().any(|f| {
        v.get(*f)
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
    });
    if offered { TOOLS_TOKENS } else { 0 }
}

/// What a request may be billed for, at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Bound {
    pub prompt_tokens: u64,
    pub output_tokens: u64,
    /// The search context an OpenAI-format body's `web_search_options`
    /// asks for, when it has them. Only a price with a per-request search
    /// fee (Perplexity's) covers them; the caller refuses them otherwise.
    pub web_search: Option<SearchContext>,
    /// The most of each unit billed besides tokens.
    pub units: Units,
}

impl Bound {
    /// A bound of tokens only.
    pub fn of_tokens(prompt_tokens: u64, output_tokens: u64) -> Bound {
        Bound {
            prompt_tokens,
            output_tokens,
            ..Bound::default()
        }
    }
}

/// How much web context a search-backed request retrieves
/// (`web_search_options.search_context_size`), which sets Perplexity's
/// per-request fee. Absent, it is `low`, as Perplexity documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum SearchContext {
    #[default]
    Low,
    Medium,
    High,
}

impl SearchContext {
    fn parse(s: &str) -> Option<SearchContext> {
        match s {
            "low" => Some(SearchContext::Low),
            "medium" => Some(SearchContext::Medium),
            "high" => Some(SearchContext::High),
            _ => None,
        }
    }

    /// The size `web_search_options` (as sent, or absent) asks for, read
    /// leniently for charging: an unknown size (which only a key without a
    /// budget can send, see [`enforce`]) counts as the largest.
    pub fn of_options(options: Option<&Value>) -> SearchContext {
        match options.and_then(|o| o.get("search_context_size")) {
            None | Some(Value::Null) => SearchContext::Low,
            Some(s) => s
                .as_str()
                .and_then(SearchContext::parse)
                .unwrap_or(SearchContext::High),
        }
    }
}

/// `web_search_options` as a priced request may send them: a known context
/// size, and the standard (`fast`) search only.
fn web_search(o: &Value) -> Result<SearchContext, Unpriceable> {
    if !o.is_object() {
        return Err(unpriceable("web_search_options", "it must be an object"));
    }
    if let Some(t) = o.get("search_type").filter(|t| !t.is_null())
        && t != "fast"
    {
        return Err(unpriceable(
            "web_search_options.search_type",
            "only the standard ('fast') search is priced",
        ));
    }
    match o.get("search_context_size") {
        None | Some(Value::Null) => Ok(SearchContext::Low),
        Some(s) => s.as_str().and_then(SearchContext::parse).ok_or_else(|| {
            unpriceable(
                "web_search_options.search_context_size",
                "it must be 'low', 'medium' or 'high'",
            )
        }),
    }
}

/// A field whose cost the gateway cannot bound; refused for keys with budgets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{field}' cannot be priced in advance, so requests under a budget may not use it: {why}")]
pub struct Unpriceable {
    pub field: String,
    pub why: &'static str,
}

fn unpriceable(field: impl Into<String>, why: &'static str) -> Unpriceable {
    Unpriceable {
        field: field.into(),
        why,
    }
}

/// What kind of OpenAI-format request the body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Chat,
    Completions,
    Embeddings,
}

/// The output-cap field an OpenAI-format upstream is given: OpenAI itself
/// (and Azure) want `max_completion_tokens` (reasoning models refuse
/// `max_tokens`); the compatible family reads `max_tokens`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapField {
    MaxCompletionTokens,
    MaxTokens,
}

/// Writes `cap` into `body` (an upstream request in `wire`) when it names no
/// output cap, and returns the bound of what the body now asks for.
///
/// A client's own cap is kept as sent: it is what the upstream obeys, and so
/// what the bound reads.
pub fn enforce(
    wire: Format,
    kind: Kind,
    cap_field: CapField,
    body: &mut Bytes,
    cap: u64,
) -> Result<Bound, Unpriceable> {
    let mut v: Map<String, Value> = match serde_json::from_slice(body) {
        Ok(Value::Object(o)) => o,
        // The gateway wrote this body; anything else is a bug worth refusing.
        _ => return Err(unpriceable("body", "it is not a JSON object")),
    };
    let (bound, changed) = match wire {
        Format::OpenAi | Format::Responses => openai(&mut v, kind, cap_field, cap)?,
        Format::Anthropic => anthropic(&mut v, cap)?,
        Format::Gemini => gemini(&mut v, cap)?,
        Format::Bedrock => bedrock(&mut v, cap)?,
        Format::Cohere => cohere(&mut v, cap)?,
    };
    if changed {
        *body = Bytes::from(Value::Object(v).to_string());
    }
    Ok(bound)
}

fn uint(v: &Map<String, Value>, field: &str) -> Option<u64> {
    v.get(field).and_then(Value::as_u64)
}

/// How many answers a count field asks for; absent is one. A count that is
/// not a small positive integer is left to the upstream to refuse, but
/// bounded as the largest it could mean.
fn count(v: &Map<String, Value>, field: &str) -> Result<u64, Unpriceable> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(1),
        Some(n) => match n.as_u64() {
            Some(n) if (1..=128).contains(&n) => Ok(n),
            _ => Err(unpriceable(field, "it must be an integer from 1 to 128")),
        },
    }
}

fn openai(
    v: &mut Map<String, Value>,
    kind: Kind,
    cap_field: CapField,
    cap: u64,
) -> Result<(Bound, bool), Unpriceable> {
    if let Some(tier) = v.get("service_tier").and_then(Value::as_str)
        && !matches!(tier, "auto" | "default" | "flex")
    {
        return Err(unpriceable(
            "service_tier",
            "only 'auto', 'default' and 'flex' are priced",
        ));
    }
    for field in ["prediction", "audio"] {
        if v.get(field).is_some_and(|x| !x.is_null()) {
            return Err(unpriceable(field, "it is billed beyond tokens"));
        }
    }
    let searched = match v.get("web_search_options") {
        None | Some(Value::Null) => None,
        Some(o) => Some(web_search(o)?),
    };
    if let Some(m) = v.get("modalities").and_then(Value::as_array)
        && m.iter().any(|x| x.as_str() != Some("text"))
    {
        return Err(unpriceable("modalities", "only text output is priced"));
    }
    if let Some(tools) = v.get("tools").and_then(Value::as_array) {
        for t in tools {
            let ty = t.get("type").and_then(Value::as_str).unwrap_or("function");
            if !matches!(ty, "function" | "custom") {
                return Err(unpriceable(format!("tools[type={ty}]"), "a server tool"));
            }
        }
    }
    let prompt = prompt_bound(
        v,
        &[
            "messages",
            "prompt",
            "input",
            "tools",
            "functions",
            "suffix",
        ],
    )?;
    if kind == Kind::Embeddings {
        return Ok((
            Bound {
                prompt_tokens: prompt,
                output_tokens: 0,
                web_search: searched,
                ..Bound::default()
            },
            false,
        ));
    }
    let choices = count(v, "n")?.max(if kind == Kind::Completions {
        count(v, "best_of")?
    } else {
        1
    });
    let given = [uint(v, "max_completion_tokens"), uint(v, "max_tokens")]
        .into_iter()
        .flatten()
        .max();
    let (each, changed) = match given {
        Some(n) => (n, false),
        None => {
            let field = match (kind, cap_field) {
                (Kind::Chat, CapField::MaxCompletionTokens) => "max_completion_tokens",
                _ => "max_tokens",
            };
            v.insert(field.to_string(), Value::from(cap));
            (cap, true)
        }
    };
    Ok((
        Bound {
            prompt_tokens: prompt,
            output_tokens: each.saturating_mul(choices),
            web_search: searched,
            ..Bound::default()
        },
        changed,
    ))
}

fn anthropic(v: &mut Map<String, Value>, cap: u64) -> Result<(Bound, bool), Unpriceable> {
    for field in ["container", "mcp_servers"] {
        if v.get(field).is_some_and(|x| !x.is_null()) {
            return Err(unpriceable(
                field,
                "its results enter the prompt unseen by the gateway",
            ));
        }
    }
    if let Some(tier) = v.get("service_tier").and_then(Value::as_str)
        && tier != "standard_only"
    {
        return Err(unpriceable(
            "service_tier",
            "only 'standard_only' is priced",
        ));
    }
    if let Some(tools) = v.get("tools").and_then(Value::as_array) {
        for t in tools {
            // Client tools have no type, or "custom"; typed ones are Anthropic's
            // own. Those that run on Anthropic's side are billed beyond tokens.
            let ty = t.get("type").and_then(Value::as_str).unwrap_or("custom");
            if ["web_search", "web_fetch", "code_execution"]
                .iter()
                .any(|p| ty.starts_with(p))
            {
                return Err(unpriceable(format!("tools[type={ty}]"), "a server tool"));
            }
        }
    }
    let prompt = prompt_bound(v, &["system", "messages", "tools"])?;
    // Thinking's budget must be below max_tokens, so the cap covers it.
    let (each, changed) = capped(v, "max_tokens", cap);
    Ok((Bound::of_tokens(prompt, each), changed))
}

fn gemini(v: &mut Map<String, Value>, cap: u64) -> Result<(Bound, bool), Unpriceable> {
    if let Some(tools) = v.get("tools").and_then(Value::as_array) {
        for t in tools.iter().filter_map(Value::as_object) {
            for name in t.keys() {
                if !matches!(
                    name.as_str(),
                    "functionDeclarations"
                        | "function_declarations"
                        | "codeExecution"
                        | "code_execution"
                ) {
                    return Err(unpriceable(format!("tools.{name}"), "a server tool"));
                }
            }
        }
    }
    if v.get("cachedContent").is_some() || v.get("cached_content").is_some() {
        return Err(unpriceable(
            "cachedContent",
            "its tokens are not in the request",
        ));
    }
    let prompt = prompt_bound(
        v,
        &[
            "contents",
            "systemInstruction",
            "system_instruction",
            "tools",
        ],
    )?;
    let config = section(v, "generationConfig")?;
    let candidates = count(config, "candidateCount")?;
    // Gemini's thinking tokens count inside maxOutputTokens.
    let (each, changed) = capped(config, "maxOutputTokens", cap);
    Ok((
        Bound::of_tokens(prompt, each.saturating_mul(candidates)),
        changed,
    ))
}

/// The prompt bound of `fields` of `v` (those present), tools' framing included.
fn prompt_bound(v: &Map<String, Value>, fields: &[&str]) -> Result<u64, Unpriceable> {
    fields
        .iter()
        .try_fold(tools_overhead(v), |n, field| match v.get(*field) {
            Some(x) => Ok(n + text_bound(x, field)?),
            None => Ok(n),
        })
}

/// The object `name` of `v`, made when absent.
fn section<'a>(
    v: &'a mut Map<String, Value>,
    name: &str,
) -> Result<&'a mut Map<String, Value>, Unpriceable> {
    v.entry(name)
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .ok_or_else(|| unpriceable(name, "it must be an object"))
}

/// The output cap `field` of `o` names, or `cap` written there: (the cap in
/// force, whether it was written).
fn capped(o: &mut Map<String, Value>, field: &str, cap: u64) -> (u64, bool) {
    match uint(o, field) {
        Some(n) => (n, false),
        None => {
            o.insert(field.into(), Value::from(cap));
            (cap, true)
        }
    }
}

fn cohere(v: &mut Map<String, Value>, cap: u64) -> Result<(Bound, bool), Unpriceable> {
    let prompt = prompt_bound(v, &["messages", "tools", "documents"])?;
    // A thinking budget counts inside max_tokens.
    let (each, changed) = capped(v, "max_tokens", cap);
    Ok((Bound::of_tokens(prompt, each), changed))
}

fn bedrock(v: &mut Map<String, Value>, cap: u64) -> Result<(Bound, bool), Unpriceable> {
    if v.get("guardrailConfig").is_some_and(|x| !x.is_null()) {
        return Err(unpriceable(
            "guardrailConfig",
            "guardrails are billed beyond tokens",
        ));
    }
    if let Some(l) = v
        .get("performanceConfig")
        .and_then(|c| c.get("latency"))
        .and_then(Value::as_str)
        && l != "standard"
    {
        return Err(unpriceable(
            "performanceConfig.latency",
            "only 'standard' latency is priced",
        ));
    }
    let prompt = prompt_bound(v, &["system", "messages", "toolConfig"])?;
    // Claude's thinking budget must be below maxTokens, so the cap covers it.
    let (each, changed) = capped(section(v, "inferenceConfig")?, "maxTokens", cap);
    Ok((Bound::of_tokens(prompt, each), changed))
}

/// Prompt tokens `v` can be counted as: its strings' bytes (a token is at
/// least one byte), a few for structure, and [`MEDIA_TOKENS`] at least for
/// each image. Parts whose token count does not follow from their bytes
/// (audio, video, PDFs, files by reference) are refused.
fn text_bound(v: &Value, path: &str) -> Result<u64, Unpriceable> {
    match v {
        Value::String(s) => Ok(s.len() as u64),
        Value::Array(a) => a.iter().try_fold(8u64, |n, x| {
            Ok(n.saturating_add(text_bound(x, path)?).saturating_add(4))
        }),
        Value::Object(o) => {
            let media = media_part(o, path)?;
            o.iter().try_fold(media, |n, (k, x)| {
                Ok(n.saturating_add(k.len() as u64)
                    .saturating_add(text_bound(x, path)?))
            })
        }
        _ => Ok(4),
    }
}

/// The media floor of one content part, or why it cannot be bounded.
fn media_part(o: &Map<String, Value>, path: &str) -> Result<u64, Unpriceable> {
    let refuse = |what: &str| {
        Err(unpriceable(
            format!("{path}[{what}]"),
            "its token count does not follow from its size",
        ))
    };
    match o.get("type").and_then(Value::as_str) {
        Some("image_url" | "input_image" | "image") => return Ok(MEDIA_TOKENS),
        Some("input_audio" | "audio" | "file" | "input_file") => return refuse("file or audio"),
        Some("document") => {
            // Plain-text documents are counted by their bytes like any text.
            let text = o
                .get("source")
                .and_then(|s| s.get("type"))
                .and_then(Value::as_str)
                .is_some_and(|t| matches!(t, "text" | "content"));
            return if text { Ok(0) } else { refuse("document") };
        }
        _ => {}
    }
    // Bedrock Converse blocks (`{"image": {"format", "source"}}`).
    let block = |k: &str| o.get(k).and_then(|b| b.get("source")).is_some();
    if path == "messages" {
        if block("image") {
            return Ok(MEDIA_TOKENS);
        }
        if block("document") || block("video") {
            return refuse("document or video");
        }
    }
    // Gemini parts.
    if o.contains_key("fileData") || o.contains_key("file_data") {
        return refuse("fileData");
    }
    if let Some(inline) = o.get("inlineData").or_else(|| o.get("inline_data")) {
        let mime = inline
            .get("mimeType")
            .or_else(|| inline.get("mime_type"))
            .and_then(Value::as_str)
            .unwrap_or("");
        return if mime.starts_with("image/") {
            Ok(MEDIA_TOKENS)
        } else {
            refuse("inlineData")
        };
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(wire: Format, kind: Kind, body: Value, cap: u64) -> (Result<Bound, Unpriceable>, Value) {
        let mut bytes = Bytes::from(body.to_string());
        let r = enforce(wire, kind, CapField::MaxCompletionTokens, &mut bytes, cap);
        (r, serde_json::from_slice(&bytes).unwrap())
    }

    #[test]
    fn a_missing_cap_is_written_in_each_formats_own_field() {
        let msgs = json!([{"role": "user", "content": "hi"}]);
        let (b, sent) = run(
            Format::OpenAi,
            Kind::Chat,
            json!({"model": "m", "messages": msgs}),
            100,
        );
        assert_eq!(b.unwrap().output_tokens, 100);
        assert_eq!(sent["max_completion_tokens"], 100);
        let (b, sent) = run(
            Format::Anthropic,
            Kind::Chat,
            json!({"model": "m", "messages": msgs}),
            100,
        );
        assert_eq!(b.unwrap().output_tokens, 100);
        assert_eq!(sent["max_tokens"], 100);
        let (b, sent) = run(
            Format::Gemini,
            Kind::Chat,
            json!({"contents": [{"parts": [{"text": "hi"}]}], "generationConfig": {"temperature": 1}}),
            100,
        );
        assert_eq!(b.unwrap().output_tokens, 100);
        assert_eq!(sent["generationConfig"]["maxOutputTokens"], 100);
        assert_eq!(sent["generationConfig"]["temperature"], 1);
        let mut compat = Bytes::from(json!({"model": "m", "prompt": "x"}).to_string());
        enforce(
            Format::OpenAi,
            Kind::Completions,
            CapField::MaxTokens,
            &mut compat,
            7,
        )
        .unwrap();
        assert!(String::from_utf8_lossy(&compat).contains(r#""max_tokens":7"#));
    }

    #[test]
    fn a_clients_cap_is_kept_and_choices_multiply_it() {
        let msgs = json!([{"role": "user", "content": "hi"}]);
        let body = json!({"model": "m", "messages": msgs, "max_tokens": 50, "n": 3});
        let mut bytes = Bytes::from(body.to_string());
        let before = bytes.clone();
        let b = enforce(
            Format::OpenAi,
            Kind::Chat,
            CapField::MaxCompletionTokens,
            &mut bytes,
            1000,
        )
        .unwrap();
        assert_eq!(b.output_tokens, 150);
        assert_eq!(bytes, before, "a body with a cap goes out byte for byte");
        let (b, _) = run(
            Format::OpenAi,
            Kind::Completions,
            json!({"model": "m", "prompt": "x", "max_tokens": 10, "n": 2, "best_of": 5}),
            1000,
        );
        assert_eq!(b.unwrap().output_tokens, 50);
        let (b, _) = run(
            Format::Gemini,
            Kind::Chat,
            json!({"contents": [], "generationConfig": {"candidateCount": 4}}),
            10,
        );
        assert_eq!(b.unwrap().output_tokens, 40);
        let (b, _) = run(
            Format::OpenAi,
            Kind::Chat,
            json!({"messages": msgs, "n": 100000}),
            10,
        );
        assert_eq!(b.unwrap_err().field, "n");
    }

    #[test]
    fn prompts_count_every_byte_and_a_floor_per_image() {
        let text = "x".repeat(1000);
        let (b, _) = run(
            Format::OpenAi,
            Kind::Chat,
            json!({"messages": [{"role": "user", "content": [
                {"type": "text", "text": text},
                {"type": "image_url", "image_url": {"url": "https://e.x/a.png"}}
            ]}]}),
            10,
        );
        let p = b.unwrap().prompt_tokens;
        assert!(p >= 1000 + MEDIA_TOKENS, "{p}");
        let (b, _) = run(
            Format::Gemini,
            Kind::Chat,
            json!({"contents": [{"parts": [{"inlineData": {"mimeType": "image/png", "data": "AAAA"}}]}]}),
            10,
        );
        assert!(b.unwrap().prompt_tokens >= MEDIA_TOKENS);
        let (b, _) = run(
            Format::Anthropic,
            Kind::Chat,
            json!({"messages": [], "tools": [{"name": "a", "input_schema": {}}]}),
            10,
        );
        assert!(
            b.unwrap().prompt_tokens >= TOOLS_TOKENS,
            "a tool's template counts"
        );
    }

    #[test]
    fn web_search_options_are_reported_for_the_price_to_cover() {
        let msgs = json!([{"role": "user", "content": "hi"}]);
        for (options, expected) in [
            (Value::Null, None),
            (json!({}), Some(SearchContext::Low)),
            (
                json!({"search_context_size": "medium", "search_type": "fast"}),
                Some(SearchContext::Medium),
            ),
            (
                json!({"search_context_size": "high", "user_location": {"country": "FR"}}),
                Some(SearchContext::High),
            ),
        ] {
            let body = json!({"messages": msgs, "web_search_options": options});
            let (b, _) = run(Format::OpenAi, Kind::Chat, body, 10);
            assert_eq!(b.unwrap().web_search, expected, "{options}");
            let charged = SearchContext::of_options(Some(&options));
            assert_eq!(charged, expected.unwrap_or_default(), "charged as bounded");
        }
        // Charging reads leniently: an unknown size costs the most.
        assert_eq!(
            SearchContext::of_options(Some(&json!({"search_context_size": "max"}))),
            SearchContext::High
        );
    }

    #[test]
    fn fields_that_cannot_be_bounded_are_refused_by_name() {
        let msgs = json!([{"role": "user", "content": "hi"}]);
        let cases = [
            (
                Format::OpenAi,
                json!({"messages": msgs, "service_tier": "priority"}),
                "service_tier",
            ),
            (
                Format::OpenAi,
                json!({"messages": msgs, "web_search_options": {"search_type": "pro"}}),
                "web_search_options.search_type",
            ),
            (
                Format::OpenAi,
                json!({"messages": msgs, "web_search_options": {"search_context_size": "max"}}),
                "web_search_options.search_context_size",
            ),
            (
                Format::OpenAi,
                json!({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]}),
                "messages[file or audio]",
            ),
            (
                Format::Anthropic,
                json!({"messages": msgs, "tools": [{"type": "web_search_20250305", "name": "web_search"}]}),
                "tools[type=web_search_20250305]",
            ),
            (
                Format::Anthropic,
                json!({"messages": [{"role": "user", "content": [{"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "AA"}}]}]}),
                "messages[document]",
            ),
            (
                Format::Anthropic,
                json!({"messages": msgs, "mcp_servers": []}),
                "mcp_servers",
            ),
            (
                Format::Gemini,
                json!({"contents": [], "tools": [{"googleSearch": {}}]}),
                "tools.googleSearch",
            ),
            (
                Format::Gemini,
                json!({"contents": [{"parts": [{"fileData": {"fileUri": "gs://x"}}]}]}),
                "contents[fileData]",
            ),
        ];
        for (wire, body, field) in cases {
            let (r, _) = run(wire, Kind::Chat, body, 10);
            assert_eq!(r.unwrap_err().field, field);
        }
        let (ok, _) = run(
            Format::Anthropic,
            Kind::Chat,
            json!({"messages": [{"role": "user", "content": [{"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "abc"}}]}]}),
            10,
        );
        assert!(ok.is_ok());
    }
}
