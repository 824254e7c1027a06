//! Translation between wire formats through one canonical model.
//!
//! Pure: bytes and JSON in, bytes and JSON out; no socket, no server, no
//! governance. The proxy's pipeline speaks OpenAI Chat Completions; a request
//! in another format is read into [`canonical::Request`] at the edge, and the
//! pipeline sends each upstream the request in that upstream's own format.
//! Upstream answers come back to the pipeline as Chat Completions (with the
//! reasoning extensions of [`openai`]) and leave in the client's format.
//! When client and upstream both speak OpenAI, none of this runs.
//!
//! Streams are translated event by event by small state machines
//! ([`Transcode`]) over parsed SSE events; nothing is buffered whole.

pub mod anthropic;
pub mod bedrock;
pub mod canonical;
pub mod cohere;
pub mod gemini;
pub mod openai;
pub mod responses;

use bytes::Bytes;
use serde_json::Value;

use crate::providers::aws::eventstream;
use crate::providers::openai::RawObject;
pub use crate::providers::presets::Format;
use crate::providers::sse::{EventTooLarge, SseEvent, SseParser};
pub use canonical::{Invalid, Request};

/// A client request read into canonical form, and the Chat Completions body
/// the pipeline reads (model, stream, limits, prompt) from it.
pub struct Inbound {
    pub request: Request,
    pub internal: Bytes,
    /// Responses: the earlier response this one continues.
    pub previous: Option<String>,
    /// Responses: whether the answer may be continued later.
    pub store: bool,
}

/// The Chat Completions body the pipeline reads for `r`.
pub fn internal_body(r: &Request) -> Bytes {
    Bytes::from(openai::request_to_openai(r, &r.model, true).to_string())
}

/// Reads a request body in `format` (not OpenAI: that is never translated).
/// Streams ask for usage so the client's format can report it. `rename`
/// may replace the requested model (tier mapping).
pub fn read_request(
    format: Format,
    body: &[u8],
    rename: impl Fn(&str) -> Option<String>,
) -> Result<Inbound, Invalid> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| canonical::invalid(format!("request body is not valid JSON: {e}")))?;
    if !v.is_object() {
        return Err(canonical::invalid("request body must be a JSON object"));
    }
    let (mut previous, mut store) = (None, false);
    let mut request = match format {
        Format::Cohere => {
            return Err(canonical::invalid(
                "requests in Cohere's format are not served (Cohere is an upstream only)",
            ));
        }
        Format::OpenAi => openai::request_from_openai(&v)?,
        Format::Responses => {
            let read = responses::request_from_responses(&v)?;
            (previous, store) = (read.previous, read.store);
            read.request
        }
        Format::Anthropic => anthropic::request_from_anthropic(&v)?,
        // Gemini names the model and streaming in the URL; the route puts
        // them in the body as `model` and `stream` before it gets here.
        Format::Gemini | Format::Bedrock => {
            let model = canonical::str_of(&v, "model").unwrap_or_default();
            let stream = v.get("stream").and_then(Value::as_bool).unwrap_or(false);
            if format == Format::Gemini {
                gemini::request_from_gemini(&v, &model, stream)?
            } else {
                bedrock::request_from_bedrock(&v, &model, stream)?
            }
        }
    };
    if let Some(m) = rename(&request.model) {
        request.model = m;
    }
    Ok(Inbound {
        internal: internal_body(&request),
        request,
        previous,
        store,
    })
}

/// The path under the provider's base URL of a chat request to `wire`.
pub fn upstream_path(wire: Format, model: &str, stream: bool) -> String {
    match wire {
        // Nothing is reached through the Responses API: OpenAI chat instead.
        Format::OpenAi | Format::Responses => "/chat/completions".to_string(),
        Format::Anthropic => "/messages".to_string(),
        Format::Cohere => "/chat".to_string(),
        Format::Gemini if stream => format!(
            "/models/{}:streamGenerateContent?alt=sse",
            crate::providers::openai::path_segment(model)
        ),
        Format::Gemini => format!(
            "/models/{}:generateContent",
            crate::providers::openai::path_segment(model)
        ),
        Format::Bedrock => format!(
            "/model/{}/{}",
            crate::providers::openai::path_segment(model),
            if stream {
                "converse-stream"
            } else {
                "converse"
            }
        ),
    }
}

/// The path under the provider's base URL, and the body, for an upstream of
/// `wire`. `reasoning_effort`: whether an OpenAI-format upstream takes it
/// (many OpenAI-compatible models refuse a request that names it).
pub fn upstream_request(
    wire: Format,
    r: &Request,
    model: &str,
    ask_usage: bool,
    reasoning_effort: bool,
) -> (String, Bytes) {
    let v = match wire {
        Format::OpenAi | Format::Responses => {
            let mut v = openai::request_to_openai(r, model, ask_usage);
            if let Some(o) = v.as_object_mut() {
                // The gateway's own field: the pipeline read it already.
                o.remove("fallbacks");
                if !reasoning_effort {
                    o.remove("reasoning_effort");
                }
            }
            v
        }
        Format::Anthropic => anthropic::request_to_anthropic(r, model),
        Format::Gemini => gemini::request_to_gemini(r),
        Format::Bedrock => bedrock::request_to_bedrock(r, model),
        Format::Cohere => cohere::request_to_cohere(r, model),
    };
    (
        upstream_path(wire, model, r.stream),
        Bytes::from(v.to_string()),
    )
}

/// A client's body for an upstream of its own format: every field as sent,
/// but the model (in the body for Anthropic, in the path for Gemini) and the
/// gateway's own fields.
pub fn passthrough_body(format: Format, raw: &[u8], model: &str) -> Option<Bytes> {
    let obj = RawObject::parse(raw).ok()?;
    match format {
        Format::Anthropic => Some(crate::providers::openai::upstream_body(&obj, model, false)),
        Format::Gemini | Format::Bedrock => {
            // `model` and `stream` were put in by the route, from the path.
            let kept: serde_json::Map<String, Value> = obj
                .fields
                .iter()
                .filter(|(k, _)| !matches!(k.as_ref(), "model" | "stream" | "fallbacks"))
                .filter_map(|(k, v)| Some((k.to_string(), serde_json::from_str(v.get()).ok()?)))
                .collect();
            Some(Bytes::from(Value::Object(kept).to_string()))
        }
        Format::OpenAi | Format::Responses | Format::Cohere => None,
    }
}

/// An upstream's success body in `wire`, as an internal chat completion.
/// `None` when it is not the JSON that format answers with.
pub fn upstream_response(wire: Format, body: &[u8]) -> Option<Bytes> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let r = match wire {
        Format::OpenAi | Format::Responses => return Some(Bytes::copy_from_slice(body)),
        Format::Anthropic => anthropic::response_from_anthropic(&v),
        Format::Gemini => gemini::response_from_gemini(&v),
        Format::Bedrock => bedrock::response_from_bedrock(&v),
        Format::Cohere => cohere::response_from_cohere(&v),
    };
    Some(Bytes::from(openai::response_to_openai(&r).to_string()))
}

/// An internal chat completion as canonical, reporting `model`.
pub fn read_response(body: &[u8], model: &str) -> Option<canonical::Response> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let mut r = openai::response_from_openai(&v);
    model.clone_into(&mut r.model);
    Some(r)
}

/// A response in the client's `format`; `id` names Responses answers.
pub fn client_response(format: Format, r: &canonical::Response, id: &str) -> Bytes {
    let out = match format {
        Format::OpenAi => openai::response_to_openai(r),
        Format::Anthropic => anthropic::response_to_anthropic(r),
        Format::Gemini => gemini::response_to_gemini(r),
        Format::Bedrock => bedrock::response_to_bedrock(r),
        Format::Cohere => cohere::response_to_cohere(r),
        Format::Responses => responses::response_to_responses(r, id),
    };
    Bytes::from(out.to_string())
}

/// An error body in the client's `format`.
pub fn error_body(format: Format, status: u16, message: &str) -> Option<Bytes> {
    let v = match format {
        Format::OpenAi => return None,
        Format::Anthropic => anthropic::error_body(status, message),
        Format::Gemini => gemini::error_body(status, message),
        Format::Bedrock => bedrock::error_body(status, message),
        Format::Cohere => serde_json::json!({"message": message}),
        Format::Responses => responses::error_body(status, message),
    };
    Some(Bytes::from(v.to_string()))
}

/// One direction of a stream translation, fed one SSE event at a time.
pub trait Transcode: Send {
    /// Appends to `out` what `ev` becomes on the other side.
    fn event(&mut self, ev: &SseEvent, out: &mut Vec<u8>);
    /// The input ended, cleanly or not: appends anything still owed (for a
    /// client, an error event if the stream was incomplete).
    fn end(&mut self, out: &mut Vec<u8>);
}

/// The content blocks of a block-structured stream being written
/// (Anthropic's, Bedrock's): one open at a time, numbered from 0.
#[derive(Debug)]
pub struct Blocks<K> {
    open: Option<(u64, K)>,
    next: u64,
}

impl<K> Default for Blocks<K> {
    fn default() -> Self {
        Blocks {
            open: None,
            next: 0,
        }
    }
}

/// What entering a block of a kind comes to.
pub enum Entered {
    /// A block of that kind is open: this one.
    Open(u64),
    /// A new block, after closing `closed` (if one was open).
    New { closed: Option<u64>, index: u64 },
}

impl<K: Copy + PartialEq> Blocks<K> {
    /// The block of `kind`: the open one, or a new one.
    pub fn enter(&mut self, kind: K) -> Entered {
        if let Some(i) = self.open_as(kind) {
            return Entered::Open(i);
        }
        let closed = self.close();
        let index = self.next;
        self.next += 1;
        self.open = Some((index, kind));
        Entered::New { closed, index }
    }

    /// The open block's index, if it is of `kind`.
    pub fn open_as(&self, kind: K) -> Option<u64> {
        self.open.filter(|(_, k)| *k == kind).map(|(i, _)| i)
    }

    /// Closes the open block, if any: its index.
    pub fn close(&mut self) -> Option<u64> {
        self.open.take().map(|(i, _)| i)
    }
}

/// The client side of a stream: what a format makes of each piece of an
/// internal chunk. Its [`Transcode`] comes with it: once finished, the rest
/// is ignored, and input that ends before the end marker fails the stream.
pub trait Encode: Send {
    fn finished(&self) -> bool;
    fn delta(&mut self, d: openai::Delta, out: &mut Vec<u8>);
    /// The end marker arrived: the stream is complete.
    fn complete(&mut self, out: &mut Vec<u8>);
    /// Ends the stream with the format's error event.
    fn fail(&mut self, message: &str, out: &mut Vec<u8>);
}

impl<E: Encode> Transcode for E {
    fn event(&mut self, ev: &SseEvent, out: &mut Vec<u8>) {
        if self.finished() {
            return;
        }
        match openai::read_chunk(ev) {
            None => {}
            Some(openai::Chunk::Done) => self.complete(out),
            Some(openai::Chunk::Error(message)) => self.fail(&message, out),
            Some(openai::Chunk::Delta(d)) => self.delta(d, out),
        }
    }

    fn end(&mut self, out: &mut Vec<u8>) {
        if !self.finished() {
            self.fail("the stream ended before it was complete", out);
        }
    }
}

/// A [`Transcode`] behind an incremental parser of its input's framing:
/// bytes in any pieces in, translated bytes out.
pub struct Transcoder {
    framing: Framing,
    inner: Box<dyn Transcode>,
}

enum Framing {
    Sse(SseParser),
    /// The AWS event-stream (Bedrock's ConverseStream); each message is
    /// read as an event ([`bedrock::event_of`]).
    EventStream(eventstream::Decoder),
}

/// Input a transcoder cannot read on from.
#[derive(Debug, thiserror::Error)]
pub enum FramingError {
    #[error(transparent)]
    Sse(#[from] EventTooLarge),
    #[error(transparent)]
    EventStream(#[from] eventstream::Error),
}

impl Transcoder {
    pub fn new(inner: Box<dyn Transcode>) -> Transcoder {
        Transcoder {
            framing: Framing::Sse(SseParser::new()),
            inner,
        }
    }

    /// A transcoder of event-stream input.
    pub fn event_stream(inner: Box<dyn Transcode>) -> Transcoder {
        Transcoder {
            framing: Framing::EventStream(eventstream::Decoder::new()),
            inner,
        }
    }

    pub fn push(&mut self, bytes: &[u8]) -> Result<Bytes, FramingError> {
        let mut out = Vec::new();
        match &mut self.framing {
            Framing::Sse(parser) => {
                parser.push(bytes)?;
                while let Some(ev) = parser.next_event() {
                    self.inner.event(&ev, &mut out);
                }
            }
            Framing::EventStream(decoder) => {
                decoder.push(bytes);
                while let Some(m) = decoder.next_message()? {
                    self.inner.event(&bedrock::event_of(&m), &mut out);
                }
            }
        }
        Ok(Bytes::from(out))
    }

    pub fn finish(&mut self) -> Bytes {
        let mut out = Vec::new();
        self.inner.end(&mut out);
        Bytes::from(out)
    }
}

/// Upstream SSE of `wire` → internal chunks; `None` for OpenAI (no translation).
pub fn decoder(wire: Format) -> Option<Transcoder> {
    match wire {
        Format::OpenAi | Format::Responses => None,
        Format::Anthropic => Some(Transcoder::new(Box::<anthropic::Decoder>::default())),
        Format::Gemini => Some(Transcoder::new(Box::<gemini::Decoder>::default())),
        Format::Bedrock => Some(Transcoder::event_stream(Box::<bedrock::Decoder>::default())),
        Format::Cohere => Some(Transcoder::new(Box::<cohere::Decoder>::default())),
    }
}

/// Internal chunks → the client's `format`; `None` for OpenAI. `id` names
/// Responses answers, and `on_done` receives a Responses answer once complete.
pub fn encoder(
    format: Format,
    model: &str,
    id: &str,
    on_done: Box<dyn FnOnce(canonical::Response) + Send>,
) -> Option<Transcoder> {
    match format {
        Format::OpenAi => None,
        Format::Anthropic => Some(Transcoder::new(Box::new(anthropic::Encoder::new(
            model.to_string(),
        )))),
        Format::Gemini => Some(Transcoder::new(Box::new(gemini::Encoder::new(
            model.to_string(),
        )))),
        Format::Bedrock => Some(Transcoder::new(Box::<bedrock::Encoder>::default())),
        // No client speaks Cohere (`read_request` refuses it).
        Format::Cohere => None,
        Format::Responses => Some(Transcoder::new(Box::new(responses::Encoder::new(
            id.to_string(),
            model.to_string(),
            on_done,
        )))),
    }
}

#[cfg(test)]
mod tests;
