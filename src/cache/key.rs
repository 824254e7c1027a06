//! Cache keys: what a request is, for the cache.
//!
//! A request's **exact key** is a SHA-256 over a versioned byte encoding
//! ([`encode`]) of the tenant scope, the resolved target model and the
//! request in canonical form: read by the translator of its surface into
//! [`translate::canonical::Request`], with defaults made explicit, fields that
//! cannot change the answer left out, and every field the canonical model
//! does not hold added raw ([`residue`]). The same question asked through
//! OpenAI chat, Responses, Anthropic or Gemini, in any byte layout, has one
//! key; a difference that can change the answer changes it.
//!
//! Its **semantic partition** is the same hash with the last user turn left
//! out, and that turn's text is what the semantic cache embeds.
//!
//! A request the key cannot describe faithfully is [`Uncacheable`], with the
//! reason. `docs/cache.md` ("Keys") says what is in and out of each key.

mod encode;
mod residue;

use std::fmt;

use serde_json::Value;

use crate::translate::canonical::{self, Image, Part, Request, Role, ToolChoice};
use crate::translate::{Format, Invalid, anthropic, gemini, openai, responses};
use encode::Enc;
use residue::Residue;

/// The encoding's version, hashed into every key. Any change to what a key
/// covers or to how it is encoded bumps it (old entries then miss, never
/// collide); the golden hashes in `tests/golden/cache/` fail until it does.
pub const VERSION: u8 = 1;

const EXACT: u8 = b'E';
const PARTITION: u8 = b'P';

/// Whose request it is and where it goes.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// The partition's owner as the caller decides it (the key's owner,
    /// team or customer id); two scopes never share an entry.
    pub tenant: &'a str,
    /// The target as the router resolved it: `provider/model`.
    pub target: &'a str,
    /// The wire format the target's provider speaks: its documented
    /// defaults are the ones made explicit, since it is the upstream that
    /// applies them to what the request leaves out.
    pub upstream: Format,
}

/// A 32-byte cache key.
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct Key(pub [u8; 32]);

impl Key {
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({self})")
    }
}

/// The keys of a cacheable request.
#[derive(Debug, Clone, PartialEq)]
pub struct Keys {
    pub exact: Key,
    /// `None` when the request does not end with a user turn of text.
    pub semantic: Option<Semantic>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Semantic {
    /// Everything the exact key covers but the last user turn.
    pub partition: Key,
    /// The last user turn's text (its text parts joined by newlines), to embed.
    pub text: String,
}

/// Why a request has no key. The cache never fails a request for it: the
/// request goes upstream (`x-tollgate-cache: bypass`), or, when it is
/// [`NotKeyed::Invalid`], is refused by the pipeline as it would be anyway.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotKeyed {
    #[error("the request cannot be read: {0}")]
    Invalid(#[from] Invalid),
    #[error("the request is not cacheable: {0}")]
    Uncacheable(#[from] Uncacheable),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Uncacheable {
    /// A stored answer holds one choice.
    #[error("`{field}` asks for {n} answers; the cache stores one")]
    SeveralChoices { field: &'static str, n: u64 },
    /// A stored answer keeps no log probabilities.
    #[error("`{field}` asks for log probabilities, which the cache does not store")]
    LogProbabilities { field: &'static str },
    /// A stored answer is text, tool calls and reasoning.
    #[error("`{field}` asks for output other than text")]
    NonTextOutput { field: &'static str },
    /// The bytes behind a URL are not in the request and may change.
    #[error("an image is given by URL ({url}); only inline images are hashed")]
    RemoteImage { url: String },
    /// The conversation lives upstream and grows between requests.
    #[error("`{field}` names state held upstream, which the key cannot see")]
    UpstreamState { field: &'static str },
    /// Requests on this surface have no cache key yet.
    #[error("requests on the {surface} surface are not cached")]
    Surface { surface: &'static str },
}

/// The keys of `body`, a request in `format` (for Gemini, with `model` and
/// `stream` put in the body by the route, as [`crate::translate::read_request`]
/// takes it).
pub fn keys(format: Format, body: &[u8], scope: &Scope<'_>) -> Result<Keys, NotKeyed> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| canonical::invalid(format!("request body is not valid JSON: {e}")))?;
    if !v.is_object() {
        return Err(canonical::invalid("request body must be a JSON object").into());
    }
    let (mut request, residue) = match format {
        Format::OpenAi => (openai::request_from_openai(&v)?, residue::openai(&v)?),
        Format::Responses => (
            responses::request_from_responses(&v)?.request,
            residue::responses(&v)?,
        ),
        Format::Anthropic => (
            anthropic::request_from_anthropic(&v)?,
            residue::anthropic(&v)?,
        ),
        Format::Gemini => (
            gemini::request_from_gemini(&v, "", false)?,
            residue::gemini(&v)?,
        ),
        Format::Bedrock => return Err(Uncacheable::Surface { surface: "Bedrock" }.into()),
        Format::Cohere => return Err(Uncacheable::Surface { surface: "Cohere" }.into()),
    };
    normalize(&mut request, scope.upstream)?;
    let exact = Key(encode(&request, &residue, scope, EXACT, false));
    Ok(Keys {
        exact,
        semantic: semantic(&request, &residue, scope),
    })
}

/// Cache markers out, stop sequences as a set, the upstream's defaults in.
fn normalize(r: &mut Request, upstream: Format) -> Result<(), Uncacheable> {
    for m in &mut r.messages {
        canonical::strip_cache_breaks(&mut m.content);
        remote_images(&m.content)?;
    }
    r.stop.sort_unstable();
    r.stop.dedup();
    match upstream {
        // Documented defaults: OpenAI (chat; Responses requests reach it as
        // chat) samples at temperature 1 and top_p 1; Anthropic at
        // temperature 1, and the gateway writes max_tokens 4096 when a
        // request names none. Gemini's defaults vary by model: none assumed.
        Format::OpenAi | Format::Responses => {
            r.temperature.get_or_insert(1.0);
            r.top_p.get_or_insert(1.0);
        }
        Format::Anthropic => {
            r.temperature.get_or_insert(1.0);
            r.max_tokens.get_or_insert(anthropic::DEFAULT_MAX_TOKENS);
        }
        Format::Gemini | Format::Bedrock | Format::Cohere => {}
    }
    if r.tools.is_empty() {
        // Without tools, `auto` and `none` mean the same, and parallel
        // calls are moot.
        if matches!(r.tool_choice, Some(ToolChoice::Auto | ToolChoice::None)) {
            r.tool_choice = None;
        }
        r.parallel_tool_calls = None;
    } else {
        // Every surface defaults to `auto` and to parallel calls allowed.
        r.tool_choice.get_or_insert(ToolChoice::Auto);
        r.parallel_tool_calls.get_or_insert(true);
    }
    Ok(())
}

fn remote_images(parts: &[Part]) -> Result<(), Uncacheable> {
    for p in parts {
        match p {
            Part::Image(Image::Url(u)) if !u.starts_with("data:") => {
                return Err(Uncacheable::RemoteImage { url: u.clone() });
            }
            Part::ToolResult { content, .. } => remote_images(content)?,
            _ => {}
        }
    }
    Ok(())
}

/// The partition and text, when the last turn is a user's, of text only,
/// and nothing the canonical model lacks was read from it.
fn semantic(r: &Request, residue: &Residue, scope: &Scope<'_>) -> Option<Semantic> {
    let last = r.messages.last()?;
    let at = residue.last_user.as_deref()?;
    let inside = |p: &str| p == at || p.strip_prefix(at).is_some_and(|t| t.starts_with('/'));
    if last.role != Role::User
        || last.content.is_empty()
        || !last.content.iter().all(|p| matches!(p, Part::Text(_)))
        || residue.kept.iter().any(|(p, _)| inside(p))
    {
        return None;
    }
    let text = last
        .content
        .iter()
        .filter_map(|p| match p {
            Part::Text(t) => Some(t.as_str()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n");
    if text.trim().is_empty() {
        return None;
    }
    Some(Semantic {
        partition: Key(encode(r, residue, scope, PARTITION, true)),
        text,
    })
}

/// The hash of `r` (normalized) for `scope`. With `question_out`, the last
/// message is written as a placeholder: the semantic partition.
fn encode(
    r: &Request,
    residue: &Residue,
    scope: &Scope<'_>,
    kind: u8,
    question_out: bool,
) -> [u8; 32] {
    let mut e = Enc::new(VERSION, kind);
    e.str(scope.tenant);
    e.str(scope.target);
    e.len(r.system.len());
    r.system.iter().for_each(|s| e.str(s));
    e.len(r.messages.len());
    for (i, m) in r.messages.iter().enumerate() {
        if question_out && i + 1 == r.messages.len() {
            e.tag(b'?');
            continue;
        }
        e.tag(match m.role {
            Role::User => b'u',
            Role::Assistant => b'a',
        });
        parts(&mut e, &m.content);
    }
    e.len(r.tools.len());
    for t in &r.tools {
        e.str(&t.name);
        e.opt(t.description.as_deref(), Enc::str);
        e.json(&t.parameters);
    }
    match &r.tool_choice {
        None => e.tag(0),
        Some(ToolChoice::Auto) => e.tag(1),
        Some(ToolChoice::None) => e.tag(2),
        Some(ToolChoice::Required) => e.tag(3),
        Some(ToolChoice::Tool(name)) => {
            e.tag(4);
            e.str(name);
        }
    }
    e.opt(r.parallel_tool_calls, Enc::bool);
    e.len(r.stop.len());
    r.stop.iter().for_each(|s| e.str(s));
    e.opt(r.temperature, Enc::f64);
    e.opt(r.top_p, Enc::f64);
    e.opt(r.max_tokens, Enc::u64);
    e.opt(residue.thinking.as_ref(), |e, t| {
        e.str(residue.surface);
        e.json(t);
    });
    let mut kept: Vec<&(String, Value)> = residue.kept.iter().collect();
    kept.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    e.len(kept.len());
    for (at, v) in kept {
        e.str(residue.surface);
        e.str(at);
        e.json(v);
    }
    e.finish()
}

fn parts(e: &mut Enc, parts: &[Part]) {
    e.len(parts.len());
    for p in parts {
        match p {
            Part::Text(t) => {
                e.tag(b't');
                e.str(t);
            }
            Part::Document(d) => {
                e.tag(b'd');
                e.str(&d.media_type);
                e.str(&d.data);
                e.str(d.name.as_deref().unwrap_or_default());
            }
            Part::Image(Image::Base64 { media_type, data }) => {
                e.tag(b'i');
                e.str(media_type);
                e.str(data);
            }
            Part::Image(Image::Url(u)) => {
                e.tag(b'I');
                e.str(u);
            }
            Part::Thinking { text, signature } => {
                e.tag(b'h');
                e.str(text);
                e.opt(signature.as_deref(), Enc::str);
            }
            Part::ToolCall(c) => {
                e.tag(b'c');
                e.str(&c.id);
                e.str(&c.name);
                json_text(e, &c.arguments);
            }
            Part::ToolResult {
                call_id,
                content,
                is_error,
            } => {
                e.tag(b'r');
                e.str(call_id);
                e.bool(*is_error);
                // A tool's output that is JSON hashes as JSON, whichever
                // way the surface carried it (a string, an object).
                if let [Part::Text(t)] = content.as_slice() {
                    e.tag(b'1');
                    json_text(e, t);
                } else {
                    e.tag(b'n');
                    self::parts(e, content);
                }
            }
            // Stripped in `normalize`; a marker cannot change the answer.
            Part::CacheBreak(_) => {}
        }
    }
}

/// Text that may be a JSON object or array (tool arguments and results):
/// hashed as canonical JSON when it is one, as text otherwise.
fn json_text(e: &mut Enc, t: &str) {
    match serde_json::from_str::<Value>(t) {
        Ok(v @ (Value::Object(_) | Value::Array(_))) => {
            e.tag(b'j');
            e.json(&v);
        }
        _ => {
            e.tag(b's');
            e.str(t);
        }
    }
}
