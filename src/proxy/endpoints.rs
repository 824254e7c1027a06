//! The OpenAI endpoints beyond chat and completions on the request path:
//! which upstreams serve them, the request each target is sent, and the
//! answer the client gets. Embeddings and rerank reach Cohere in its own
//! API; every other of them reaches the OpenAI-compatible family as sent.

use bytes::Bytes;
use http::{HeaderName, HeaderValue, header};

use super::{ErrorKind, ProxyError};
use crate::providers::endpoints as unit;
use crate::providers::multipart::Form;
use crate::providers::openai::{self, Endpoint, RawObject};
use crate::routing::Target;
use crate::translate::{self, Format};

/// Whether an upstream of `wire` serves `endpoint` (chat is translated for
/// every wire, elsewhere).
fn serves(wire: Format, endpoint: Endpoint) -> bool {
    match wire {
        Format::OpenAi => true,
        Format::Cohere => matches!(endpoint, Endpoint::Embeddings | Endpoint::Rerank),
        _ => false,
    }
}

/// Refuses a request to `endpoint` (not chat) that a target cannot serve,
/// naming it, and an embeddings request Cohere has no form for.
pub(super) fn check_targets(
    endpoint: Endpoint,
    targets: &[Target],
    body: &[u8],
) -> Result<(), ProxyError> {
    for (i, t) in targets.iter().enumerate() {
        let param = Some(if i == 0 { "model" } else { "fallbacks" });
        if !serves(t.wire, endpoint) {
            return Err(ProxyError::new(
                ErrorKind::InvalidRequest,
                format!(
                    "provider '{}' speaks the {} API, which the gateway reaches for chat only: \
                     it does not serve {} requests",
                    t.provider.name,
                    t.wire.label(),
                    endpoint.label()
                ),
            )
            .with_param(param));
        }
        if t.wire == Format::Cohere && endpoint == Endpoint::Embeddings {
            let obj = RawObject::parse(body)
                .map_err(|e| ProxyError::new(ErrorKind::InvalidRequest, e.to_string()))?;
            unit::cohere_embed_body(&obj, &t.model).map_err(|e| {
                ProxyError::new(ErrorKind::InvalidRequest, e).with_param(Some("input"))
            })?;
        }
    }
    Ok(())
}

/// Text to speech answers in audio, not JSON.
static ACCEPT_ANY: [(HeaderName, HeaderValue); 1] =
    [(header::ACCEPT, HeaderValue::from_static("*/*"))];

/// A transcription's form, and the header it is sent with.
pub struct FormRequest {
    pub form: Form,
    headers: Vec<(HeaderName, HeaderValue)>,
    /// The most seconds its file can hold.
    pub audio_seconds: u64,
}

impl FormRequest {
    pub fn new(form: Form) -> FormRequest {
        let content_type = HeaderValue::from_str(&form.content_type())
            .unwrap_or_else(|_| HeaderValue::from_static("multipart/form-data"));
        let audio_seconds = form.get("file").map_or(0, |f| {
            crate::providers::multipart::audio_seconds_bound(&f.data)
        });
        FormRequest {
            form,
            headers: vec![(header::CONTENT_TYPE, content_type)],
            audio_seconds,
        }
    }
}

/// The path, body and headers of a request to `endpoint` (not chat or
/// completions) for `target`, with the target's model named in it.
pub(super) fn request<'a>(
    endpoint: Endpoint,
    form: Option<&'a FormRequest>,
    obj: &RawObject<'_>,
    target: &Target,
) -> (String, Bytes, &'a [(HeaderName, HeaderValue)]) {
    let model = &target.model;
    match (target.wire, endpoint, form) {
        (Format::Cohere, Endpoint::Rerank, _) => {
            ("/rerank".into(), unit::cohere_rerank_body(obj, model), &[])
        }
        (Format::Cohere, Endpoint::Embeddings, _) => {
            // Checked when the targets were (`check_targets`).
            let body = unit::cohere_embed_body(obj, model).unwrap_or_default();
            ("/embed".into(), body, &[])
        }
        (_, Endpoint::Transcriptions, Some(f)) => (
            endpoint.path().into(),
            f.form.encode_with("model", model),
            &f.headers,
        ),
        (_, Endpoint::Speech, _) => (
            endpoint.path().into(),
            openai::upstream_body(obj, model, false),
            &ACCEPT_ANY,
        ),
        _ => (
            endpoint.path().into(),
            openai::upstream_body(obj, model, false),
            &[],
        ),
    }
}

/// A successful answer as the client gets it: chat translated to OpenAI's
/// shape, Cohere's embeddings as OpenAI's, the rest as the upstream sent
/// them (audio included). `None`: not the answer of the format.
pub(super) fn answer(
    endpoint: Endpoint,
    target: &Target,
    obj: &RawObject<'_>,
    body: &[u8],
) -> Option<Bytes> {
    match (endpoint, target.wire) {
        (Endpoint::ChatCompletions | Endpoint::Completions, wire) => {
            translate::upstream_response(wire, body)
        }
        (Endpoint::Embeddings, Format::Cohere) => {
            let base64 = obj
                .decode::<String>("encoding_format")
                .ok()
                .flatten()
                .is_some_and(|f| f == "base64");
            unit::embeddings_from_cohere(body, &target.model, base64)
        }
        // Audio, or text in the format the client asked for.
        (Endpoint::Speech | Endpoint::Transcriptions, _) => Some(Bytes::copy_from_slice(body)),
        _ => serde_json::from_slice::<serde::de::IgnoredAny>(body)
            .ok()
            .map(|_| Bytes::copy_from_slice(body)),
    }
}
