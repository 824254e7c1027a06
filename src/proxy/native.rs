//! The native (non-OpenAI) surfaces: `/anthropic/v1/...`, and the glue that
//! puts the translators of [`crate::translate`] around the pipeline — the
//! upstream's stream decoded into internal chunks before the relay, the
//! client's answer encoded after it.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::routing::{get, post};
use bytes::Bytes;
use futures_util::StreamExt;
use http::{HeaderName, HeaderValue, Response, StatusCode, header};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use serde_json::{Value, json};

use super::{ErrorKind, Gateway, ProxyError, authenticate, handle_in, read_body};
use crate::providers::openai::{self, Endpoint, RawObject};
use crate::providers::tokens;
use crate::routing::Target;
use crate::translate::canonical::{self, Message, Part, Role};
use crate::translate::{self, Format, Inbound, Transcoder};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An upstream body, translated into internal chunks when the upstream
/// speaks another format.
pub type UpstreamBody = UnsyncBoxBody<Bytes, BoxError>;

/// The upstream's streaming response as the relay reads it: internal chunks.
pub fn upstream_stream(resp: Response<Incoming>, wire: Format) -> Response<UpstreamBody> {
    let Some(decoder) = translate::decoder(wire) else {
        return resp.map(|b| UnsyncBoxBody::new(b.map_err(|e| Box::new(e) as BoxError)));
    };
    resp.map(|b| decoded(b, decoder))
}

fn decoded(body: Incoming, t: Transcoder) -> UpstreamBody {
    let frames =
        futures_util::stream::unfold((body, t, false), |(mut body, mut t, ended)| async move {
            if ended {
                return None;
            }
            loop {
                match body.frame().await {
                    None => {
                        let tail = t.finish();
                        return (!tail.is_empty())
                            .then(|| (Ok(Frame::data(tail)), (body, t, true)));
                    }
                    Some(Err(e)) => return Some((Err(Box::new(e) as BoxError), (body, t, true))),
                    Some(Ok(frame)) => {
                        let Ok(data) = frame.into_data() else {
                            continue;
                        };
                        match t.push(&data) {
                            Ok(out) if out.is_empty() => continue,
                            Ok(out) => return Some((Ok(Frame::data(out)), (body, t, false))),
                            Err(e) => return Some((Err(Box::new(e) as BoxError), (body, t, true))),
                        }
                    }
                }
            }
        });
    UnsyncBoxBody::new(StreamBody::new(frames))
}

/// The relay's internal chunks in the client's `format`. When the relay ends
/// without the end marker, the encoder closes the stream with an error event.
pub fn stream_for_client(
    relay: Body,
    format: Format,
    model: &str,
    conversation: Option<Conversation>,
    gw: Arc<Gateway>,
) -> Body {
    let id = conversation
        .as_ref()
        .map_or(String::new(), |c| c.id.clone());
    let on_done = Box::new(move |r: canonical::Response| {
        if let Some(c) = conversation {
            gw.responses.finish(c, r);
        }
    });
    let Some(encoder) = translate::encoder(format, model, &id, on_done) else {
        return relay;
    };
    let chunks = relay.into_data_stream();
    Body::from_stream(futures_util::stream::unfold(
        (chunks, encoder, false),
        |(mut chunks, mut t, ended)| async move {
            if ended {
                return None;
            }
            loop {
                match chunks.next().await {
                    Some(Ok(data)) => {
                        let out = t.push(&data).unwrap_or_else(|_| t.finish());
                        if !out.is_empty() {
                            return Some((Ok::<_, Infallible>(out), (chunks, t, false)));
                        }
                    }
                    None | Some(Err(_)) => {
                        let tail = t.finish();
                        return (!tail.is_empty()).then_some((Ok(tail), (chunks, t, true)));
                    }
                }
            }
        },
    ))
}

/// A whole internal answer (success or OpenAI-shaped error) in the client's `format`.
pub async fn whole_for_client(
    resp: Response<Body>,
    format: Format,
    model: &str,
    conversation: Option<Conversation>,
    gw: &Gateway,
) -> Response<Body> {
    let (mut parts, body) = resp.into_parts();
    let bytes = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let out = if parts.status.is_success() {
        translate::read_response(&bytes, model).map(|r| {
            let id = conversation
                .as_ref()
                .map_or(String::new(), |c| c.id.clone());
            let out = translate::client_response(format, &r, &id);
            if let Some(c) = conversation {
                gw.responses.finish(c, r);
            }
            out
        })
    } else {
        let message = openai::error_message(&bytes)
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
        translate::error_body(format, parts.status.as_u16(), &message)
    };
    let body = out.unwrap_or_else(|| {
        parts.status = StatusCode::BAD_GATEWAY;
        translate::error_body(format, 502, "the upstream answer could not be translated")
            .unwrap_or_default()
    });
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

/// What the attempts need of a request the pipeline reads translated.
#[derive(Default)]
pub struct Translated {
    /// The request as canonical, when a target may speak another format
    /// than the client.
    pub canonical: Option<canonical::Request>,
    /// The client's own body and headers, for targets of the client's format.
    pub native: Option<Native>,
    /// A transcription's form.
    pub form: Option<super::endpoints::FormRequest>,
}

/// A request as the client sent it.
pub struct Native {
    format: Format,
    body: Bytes,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl Native {
    pub fn new(format: Format, body: Bytes, headers: Vec<(HeaderName, HeaderValue)>) -> Native {
        Native {
            format,
            body,
            headers,
        }
    }
}

/// Headers of the client's format that must reach an upstream of the same
/// format with the body they qualify: Anthropic's beta flags.
pub fn forwarded_headers(
    format: Format,
    headers: &http::HeaderMap,
) -> Vec<(HeaderName, HeaderValue)> {
    match format {
        Format::Anthropic => headers
            .get_all("anthropic-beta")
            .iter()
            .map(|v| (HeaderName::from_static("anthropic-beta"), v.clone()))
            .collect(),
        _ => vec![],
    }
}

/// Reads a client's body in a format other than OpenAI's into canonical form
/// (Claude tiers mapped, a continued Responses conversation expanded) and
/// returns the Chat Completions body the pipeline reads. OpenAI bodies are
/// returned as they are.
pub(super) fn prepare(
    gw: &Gateway,
    ctx: &mut super::Ctx,
    raw: Bytes,
    forwarded: Vec<(HeaderName, HeaderValue)>,
) -> Result<(Bytes, Translated), ProxyError> {
    let format = ctx.inbound;
    if format == Format::OpenAi {
        return Ok((raw, Translated::default()));
    }
    let tiers = &gw.config.anthropic;
    let rename = |m: &str| match format {
        Format::Anthropic => tiers.tier_model(m).map(str::to_string),
        _ => None,
    };
    let mut read = translate::read_request(format, &raw, rename)
        .map_err(|e| ProxyError::new(ErrorKind::InvalidRequest, e.0))?;
    if format == Format::Responses {
        let owner = ctx.virtual_key.clone();
        ctx.conversation = Some(gw.responses.continue_from(
            &mut read,
            &ctx.id,
            owner.as_deref(),
        )?);
    }
    let translated = Translated {
        canonical: Some(read.request),
        native: Some(Native::new(format, raw, forwarded)),
        form: None,
    };
    Ok((read.internal, translated))
}

impl Translated {
    /// An OpenAI request with a target of another format is read whole, once.
    pub(super) fn read_for(
        &mut self,
        targets: &[Target],
        endpoint: Endpoint,
        body: &[u8],
    ) -> Result<(), ProxyError> {
        if self.canonical.is_some() || targets.iter().all(|t| t.wire == Format::OpenAi) {
            return Ok(());
        }
        if endpoint != Endpoint::ChatCompletions {
            return super::endpoints::check_targets(endpoint, targets, body);
        }
        let v: Value = serde_json::from_slice(body).map_err(|e| {
            ProxyError::new(ErrorKind::InvalidRequest, format!("invalid JSON: {e}"))
        })?;
        let r = translate::openai::request_from_openai(&v)
            .map_err(|e| ProxyError::new(ErrorKind::InvalidRequest, e.0))?;
        self.canonical = Some(r);
        Ok(())
    }

    /// The most seconds a transcription's audio can last (0 for other requests).
    pub(super) fn audio_seconds_bound(&self) -> u64 {
        self.form.as_ref().map_or(0, |f| f.audio_seconds)
    }

    /// Gives a translated request the output cap a budget reserves by,
    /// when its client named none, so translators write that cap rather than
    /// a format's own default (bodies that are not translated get it from
    /// `providers::bound`).
    pub(super) fn cap_output(&mut self, cap: u64) {
        if let Some(c) = &mut self.canonical {
            c.max_tokens.get_or_insert(cap);
        }
    }

    /// The path under the target's base URL, the body, and headers to forward.
    /// A target of the client's own format gets the client's body with only
    /// the model changed, so fields the canonical model lacks (prompt-cache
    /// markers, beta features) survive; OpenAI targets of OpenAI clients get
    /// the fast path; every other target gets a translation.
    pub fn request_for(
        &self,
        endpoint: Endpoint,
        obj: &RawObject<'_>,
        target: &Target,
        ask_usage: bool,
    ) -> (String, Bytes, &[(HeaderName, HeaderValue)]) {
        let wire = target.wire;
        if !matches!(endpoint, Endpoint::ChatCompletions | Endpoint::Completions) {
            return super::endpoints::request(endpoint, self.form.as_ref(), obj, target);
        }
        if let (Some(n), Some(c)) = (&self.native, &self.canonical)
            && n.format == wire
            && let Some(body) = translate::passthrough_body(wire, &n.body, &target.model)
        {
            let path = translate::upstream_path(wire, &target.model, c.stream);
            return (path, body, &n.headers);
        }
        let p = &target.provider;
        match (&self.canonical, &self.native) {
            // A client of another format: its stream must report usage, in
            // whatever format it leaves.
            (Some(c), Some(_)) => {
                let ask = c.stream && p.stream_usage;
                let reasoning = p.takes_reasoning_effort(&target.model);
                let (path, body) =
                    translate::upstream_request(wire, c, &target.model, ask, reasoning);
                (path, body, &[])
            }
            (Some(c), None) if wire != Format::OpenAi => {
                let (path, body) = translate::upstream_request(
                    wire,
                    c,
                    &target.model,
                    ask_usage,
                    p.takes_reasoning_effort(&target.model),
                );
                (path, body, &[])
            }
            _ => (
                endpoint.path().to_string(),
                openai::upstream_body(obj, &target.model, ask_usage),
                &[],
            ),
        }
    }
}

/// The Gemini API versions served under `/genai/`. Google publishes the same
/// `models/{model}:generateContent` family under each: google-genai 3 calls
/// `v1` by default, earlier SDKs and Gemini CLI `v1beta`, preview features
/// `v1alpha`. The gateway serves one surface under all three; what a version
/// adds upstream (preview fields) passes through to Gemini-format providers
/// like any other field.
pub const GEMINI_API_VERSIONS: [&str; 3] = ["v1", "v1beta", "v1alpha"];

/// Whether `path` is a Gemini `/genai/{version}/models/...` route.
pub fn is_gemini_models_path(path: &str) -> bool {
    path.strip_prefix("/genai/")
        .and_then(|rest| rest.split_once("/models/"))
        .is_some_and(|(version, _)| GEMINI_API_VERSIONS.contains(&version))
}

/// `/anthropic/v1/...`: Messages (JSON and SSE), token counting, models;
/// `/genai/{v1,v1beta,v1alpha}/models/{model}:generateContent`,
/// `:streamGenerateContent` and `:countTokens`, and the model list.
pub fn routes(gw: Arc<Gateway>) -> Router {
    let mut router = Router::new();
    for version in GEMINI_API_VERSIONS {
        router = router
            .route(&format!("/genai/{version}/models"), get(gemini_models))
            .route(
                &format!("/genai/{version}/models/{{*call}}"),
                post(generate_content),
            );
    }
    router
        .route("/v1/responses", post(responses))
        .route("/openai/v1/responses", post(responses))
        .route("/anthropic/v1/messages", post(messages))
        .route("/anthropic/v1/messages/count_tokens", post(count_tokens))
        .route("/anthropic/v1/models", get(anthropic_models))
        .route("/bedrock/model/{*call}", post(converse))
        .route(
            "/vertex/{version}/projects/{project}/locations/{location}/publishers/{publisher}/models/{*call}",
            post(vertex_predict),
        )
        .with_state(gw)
}

async fn responses(State(gw): State<Arc<Gateway>>, req: Request) -> Response<Body> {
    handle_in(gw, Endpoint::ChatCompletions, Format::Responses, req).await
}

async fn messages(State(gw): State<Arc<Gateway>>, req: Request) -> Response<Body> {
    handle_in(gw, Endpoint::ChatCompletions, Format::Anthropic, req).await
}

fn json_response(status: StatusCode, body: Bytes) -> Response<Body> {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// Counts a request's prompt with the gateway's tokenizer: an estimate for
/// non-OpenAI models, the same one budgets reserve by.
async fn count_tokens(State(gw): State<Arc<Gateway>>, req: Request) -> Response<Body> {
    match count(&gw, Format::Anthropic, req).await {
        Ok(n) => json_response(
            StatusCode::OK,
            Bytes::from(json!({"input_tokens": n}).to_string()),
        ),
        Err(e) => e.into_response_for(Format::Anthropic),
    }
}

/// Counting is work the gateway does for the caller: it is counted against
/// the key's request rate limits, and runs on the blocking pool (linear in
/// the prompt's length, see `tokens::count`) so the async workers that
/// serve `/health`, the cluster and every other request never wait on it.
async fn count(gw: &Gateway, format: Format, req: Request) -> Result<u64, ProxyError> {
    let caller = authenticate(gw, req.headers())?;
    if let Some(key) = &caller {
        gw.governance.admit(key, &[]).map_err(|e| {
            let mut err = ProxyError::new(ErrorKind::RateLimited, e.to_string());
            err.cause = super::Cause::Client;
            err.retry_after = Some(e.retry_after_secs);
            err
        })?;
    }
    let body = read_body(req, gw.max_body_bytes).await?;
    tokio::task::spawn_blocking(move || {
        let read = translate::read_request(format, &body, |_| None)
            .map_err(|e| ProxyError::new(ErrorKind::InvalidRequest, e.0))?;
        Ok(tokens::count(&read.request.prompt_text()))
    })
    .await
    .map_err(|e| ProxyError::new(ErrorKind::Internal, format!("token counting failed: {e}")))?
}

async fn gemini_models(State(gw): State<Arc<Gateway>>, req: Request) -> Response<Body> {
    if let Err(e) = authenticate(&gw, req.headers()) {
        return e.into_response_for(Format::Gemini);
    }
    let models: Vec<Value> = gw
        .routes()
        .catalog
        .listed_models()
        .map(|(p, m)| {
            json!({"name": format!("models/{p}/{m}"), "displayName": format!("{p}/{m}"),
                "supportedGenerationMethods": ["generateContent", "streamGenerateContent", "countTokens"]})
        })
        .collect();
    json_response(
        StatusCode::OK,
        Bytes::from(json!({"models": models}).to_string()),
    )
}

async fn anthropic_models(State(gw): State<Arc<Gateway>>, req: Request) -> Response<Body> {
    if let Err(e) = authenticate(&gw, req.headers()) {
        return e.into_response_for(Format::Anthropic);
    }
    let routes = gw.routes();
    let data: Vec<Value> = routes
        .catalog
        .listed_models()
        .map(|(p, m)| {
            json!({"type": "model", "id": format!("{p}/{m}"), "display_name": format!("{p}/{m}"),
                "created_at": "1970-01-01T00:00:00Z"})
        })
        .collect();
    let first = data.first().map(|m| m["id"].clone()).unwrap_or(Value::Null);
    let last = data.last().map(|m| m["id"].clone()).unwrap_or(Value::Null);
    json_response(
        StatusCode::OK,
        Bytes::from(
            json!({"data": data, "has_more": false, "first_id": first, "last_id": last})
                .to_string(),
        ),
    )
}

/// Gemini names the model and the method in the path (`{model}:{method}`,
/// the model possibly `provider/model`); both are put in the body for the
/// translator. A key may also come as `?key=`, as the Gemini SDKs send it.
async fn generate_content(
    State(gw): State<Arc<Gateway>>,
    Path(call): Path<String>,
    req: Request,
) -> Response<Body> {
    gemini_call(gw, &call, req).await
}

/// Vertex AI's shape of the Gemini and Anthropic surfaces, for the SDKs'
/// Vertex clients given the gateway as their base URL:
/// `/vertex/{v1,v1beta1}/projects/{p}/locations/{l}/publishers/google/models/
/// {model}:generateContent` (and `:streamGenerateContent`, `:countTokens`),
/// and `…/publishers/anthropic/models/{model}:rawPredict` (and
/// `:streamRawPredict`), whose body is Anthropic's with
/// `anthropic_version` and no model. Any other publisher names a provider
/// of the gateway's: google-genai writes a model `provider/model` as
/// `publishers/provider/models/model`. The project and location are the
/// client's business: the gateway routes by model as on every surface. The
/// virtual key comes as the access token (`Authorization: Bearer`).
async fn vertex_predict(
    State(gw): State<Arc<Gateway>>,
    Path((version, _project, _location, publisher, call)): Path<(
        String,
        String,
        String,
        String,
        String,
    )>,
    req: Request,
) -> Response<Body> {
    let format = if publisher == "anthropic" {
        Format::Anthropic
    } else {
        Format::Gemini
    };
    let fail = |e: ProxyError| e.into_response_for(format);
    if !matches!(version.as_str(), "v1" | "v1beta1") {
        return fail(ProxyError::new(
            ErrorKind::ModelNotFound,
            format!("/vertex/{version}/… is not served (v1 or v1beta1)"),
        ));
    }
    if format == Format::Gemini {
        let call = match publisher.as_str() {
            "google" => call,
            provider => format!("{provider}/{call}"),
        };
        return gemini_call(gw, &call, req).await;
    }
    let (model, stream) = match call.rsplit_once(':') {
        Some((m, "rawPredict")) => (m, false),
        Some((m, "streamRawPredict")) => (m, true),
        _ => {
            return fail(ProxyError::new(
                ErrorKind::ModelNotFound,
                format!("'{call}' is not {{model}}:rawPredict or :streamRawPredict"),
            ));
        }
    };
    let (parts, body) = req.into_parts();
    match with_path_fields(&gw, parts, body, model, stream).await {
        Ok(req) => handle_in(gw, Endpoint::ChatCompletions, Format::Anthropic, req).await,
        Err(e) => fail(e),
    }
}

async fn gemini_call(gw: Arc<Gateway>, call: &str, req: Request) -> Response<Body> {
    let fail = |e: ProxyError| e.into_response_for(Format::Gemini);
    let Some((model, method)) = call.rsplit_once(':') else {
        return fail(ProxyError::new(
            ErrorKind::ModelNotFound,
            format!("no method in '{call}': expected {{model}}:generateContent"),
        ));
    };
    let stream = match method {
        "generateContent" | "countTokens" => false,
        "streamGenerateContent" => true,
        other => {
            return fail(ProxyError::new(
                ErrorKind::ModelNotFound,
                format!("method '{other}' is not served"),
            ));
        }
    };
    let (mut parts, body) = req.into_parts();
    let query_key = parts.uri.query().and_then(|q| {
        q.split('&')
            .find_map(|kv| kv.strip_prefix("key="))
            .and_then(|k| HeaderValue::from_str(k).ok())
    });
    if let Some(k) = query_key {
        parts.headers.entry("x-goog-api-key").or_insert(k);
    }
    let req = match with_path_fields(&gw, parts, body, model, stream).await {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    if method == "countTokens" {
        return match count(&gw, Format::Gemini, req).await {
            Ok(n) => json_response(
                StatusCode::OK,
                Bytes::from(json!({"totalTokens": n}).to_string()),
            ),
            Err(e) => fail(e),
        };
    }
    handle_in(gw, Endpoint::ChatCompletions, Format::Gemini, req).await
}

/// The request with the model and streaming its path names put in its body
/// (as `model` and `stream`), for the translator.
async fn with_path_fields(
    gw: &Gateway,
    mut parts: http::request::Parts,
    body: Body,
    model: &str,
    stream: bool,
) -> Result<Request, ProxyError> {
    let bytes = read_body(Request::from_parts(parts.clone(), body), gw.max_body_bytes).await?;
    let mut v: Value = match serde_json::from_slice(&bytes) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            return Err(ProxyError::new(
                ErrorKind::InvalidRequest,
                "request body must be a JSON object",
            ));
        }
    };
    v["model"] = json!(model);
    v["stream"] = json!(stream);
    // Vertex's own field for Claude; the model is now in the body instead.
    if let Some(o) = v.as_object_mut() {
        o.remove("anthropic_version");
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    Ok(Request::from_parts(parts, Body::from(v.to_string())))
}

/// Bedrock's Converse surface (`/bedrock/model/{modelId}/converse` and
/// `/converse-stream`), for AWS SDK clients given `endpoint_url =
/// http://host:8080/bedrock`. The model id is the path up to the operation
/// (the SDKs leave `/` in it unencoded, so `provider/model` works). Clients
/// authenticate with a virtual key as a Bedrock API key (`Authorization:
/// Bearer`, which the SDKs send when `AWS_BEARER_TOKEN_BEDROCK` is set); a
/// SigV4 signature cannot be checked against a key stored hashed, so a
/// signed request counts as one without a key.
async fn converse(
    State(gw): State<Arc<Gateway>>,
    Path(call): Path<String>,
    req: Request,
) -> Response<Body> {
    let fail = |e: ProxyError| e.into_response_for(Format::Bedrock);
    let stream = match call.rsplit_once('/') {
        Some((_, "converse")) => false,
        Some((_, "converse-stream")) => true,
        _ => {
            return fail(ProxyError::new(
                ErrorKind::ModelNotFound,
                format!("'{call}' is not model/{{modelId}}/converse or converse-stream"),
            ));
        }
    };
    let model = call.rsplit_once('/').map_or("", |(m, _)| m);
    let (parts, body) = req.into_parts();
    match with_path_fields(&gw, parts, body, model, stream).await {
        Ok(req) => handle_in(gw, Endpoint::ChatCompletions, Format::Bedrock, req).await,
        Err(e) => fail(e),
    }
}

/// Responses served by this node, kept so a later request may continue one
/// with `previous_response_id`: the whole conversation up to and including
/// the answer. In memory and bounded in count and bytes: the oldest are
/// forgotten first, and a node restart forgets all (the client then gets a
/// 404 and resends the conversation in full). A conversation belongs to the
/// virtual key that made it (or to keyless callers): any other caller is
/// told it does not exist, and ids come from the OS's CSPRNG.
pub struct ResponseStore {
    inner: std::sync::Mutex<Stored>,
}

#[derive(Default)]
struct Stored {
    by_id: std::collections::HashMap<String, StoredConversation>,
    order: std::collections::VecDeque<String>,
    bytes: usize,
}

struct StoredConversation {
    owner: Option<String>,
    messages: Arc<Vec<Message>>,
    bytes: usize,
}

/// How many responses a node keeps for `previous_response_id`.
pub const STORED_RESPONSES: usize = 4096;

/// How many bytes of conversations a node keeps for them, at most.
pub const STORED_BYTES: usize = 64 << 20;

/// About what `messages` take in memory: their text and data bytes.
fn size_of(messages: &[Message]) -> usize {
    fn part(p: &Part) -> usize {
        32 + match p {
            Part::Text(t) => t.len(),
            Part::Image(canonical::Image::Base64 { media_type, data }) => {
                media_type.len() + data.len()
            }
            Part::Image(canonical::Image::Url(u)) => u.len(),
            Part::Document(d) => d.media_type.len() + d.data.len(),
            Part::Thinking { text, signature } => {
                text.len() + signature.as_ref().map_or(0, String::len)
            }
            Part::ToolCall(c) => c.id.len() + c.name.len() + c.arguments.len(),
            Part::ToolResult {
                call_id, content, ..
            } => call_id.len() + content.iter().map(part).sum::<usize>(),
            Part::CacheBreak(_) => 0,
        }
    }
    messages
        .iter()
        .map(|m| 32 + m.content.iter().map(part).sum::<usize>())
        .sum()
}

impl Default for ResponseStore {
    fn default() -> Self {
        ResponseStore {
            inner: std::sync::Mutex::new(Stored::default()),
        }
    }
}

/// A Responses request in flight: its answer's id, and the conversation
/// (history included) to store with the answer when it completes.
pub struct Conversation {
    pub id: String,
    owner: Option<String>,
    messages: Vec<Message>,
    store: bool,
}

impl ResponseStore {
    /// Puts the history `read` continues in front of its input, and the
    /// internal body to match. An unknown id is a 404.
    pub(super) fn continue_from(
        &self,
        read: &mut Inbound,
        request_id: &str,
        owner: Option<&str>,
    ) -> Result<Conversation, ProxyError> {
        if let Some(prev) = &read.previous {
            let history = self
                .inner
                .lock()
                .expect("response store lock")
                .by_id
                .get(prev)
                .filter(|c| c.owner.as_deref() == owner)
                .map(|c| c.messages.clone())
                .ok_or_else(|| {
                    ProxyError::new(
                        ErrorKind::ModelNotFound,
                        format!("previous response with id '{prev}' not found on this node"),
                    )
                    .with_param(Some("previous_response_id"))
                })?;
            let mut messages = (*history).clone();
            // The earlier request's cache breakpoints stay with it: with this
            // one's they could pass Anthropic's limit of four.
            for m in &mut messages {
                canonical::strip_cache_breaks(&mut m.content);
            }
            messages.append(&mut read.request.messages);
            read.request.messages = messages;
            read.internal = translate::internal_body(&read.request);
        }
        Ok(Conversation {
            id: translate::responses::response_id(request_id),
            owner: owner.map(str::to_string),
            messages: read.request.messages.clone(),
            store: read.store,
        })
    }

    /// Stores a completed answer with the conversation it ends.
    pub(super) fn finish(&self, c: Conversation, answer: canonical::Response) {
        if !c.store {
            return;
        }
        let mut messages = c.messages;
        let content: Vec<Part> = answer.content;
        if !content.is_empty() {
            messages.push(Message {
                role: Role::Assistant,
                content,
            });
        }
        let bytes = size_of(&messages);
        if bytes > STORED_BYTES {
            return;
        }
        let mut s = self.inner.lock().expect("response store lock");
        let stored = StoredConversation {
            owner: c.owner,
            messages: Arc::new(messages),
            bytes,
        };
        s.bytes += bytes;
        match s.by_id.insert(c.id.clone(), stored) {
            Some(replaced) => s.bytes -= replaced.bytes,
            None => s.order.push_back(c.id),
        }
        while s.order.len() > STORED_RESPONSES || s.bytes > STORED_BYTES {
            let Some(old) = s.order.pop_front() else {
                break;
            };
            if let Some(gone) = s.by_id.remove(&old) {
                s.bytes -= gone.bytes;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(input: &str, previous: Option<&str>) -> Inbound {
        let mut body = json!({"model": "m", "input": input});
        if let Some(p) = previous {
            body["previous_response_id"] = json!(p);
        }
        translate::read_request(Format::Responses, body.to_string().as_bytes(), |_| None).unwrap()
    }

    fn answer(text: &str) -> canonical::Response {
        canonical::Response {
            content: vec![Part::Text(text.into())],
            ..canonical::Response::default()
        }
    }

    #[test]
    fn gemini_paths_are_recognised_under_every_served_version() {
        for v in GEMINI_API_VERSIONS {
            assert!(is_gemini_models_path(&format!(
                "/genai/{v}/models/mock/m-1:generateContent"
            )));
        }
        assert!(!is_gemini_models_path("/genai/v2/models/m:generateContent"));
        assert!(!is_gemini_models_path("/v1/models/m:generateContent"));
        assert!(!is_gemini_models_path("/genai/v1/files/x"));
    }

    #[test]
    fn continued_conversations_carry_their_history_and_the_oldest_go_first() {
        let store = ResponseStore::default();
        let c = store
            .continue_from(&mut read("hi", None), "req_1", None)
            .unwrap();
        assert_eq!(c.id, "resp_1");
        store.finish(c, answer("hello"));
        let mut next = read("and?", Some("resp_1"));
        let c = store.continue_from(&mut next, "req_2", None).unwrap();
        let texts: Vec<String> = next
            .request
            .messages
            .iter()
            .map(|m| canonical::text_of(&m.content))
            .collect();
        assert_eq!(texts, ["hi", "hello", "and?"]);
        let internal: Value = serde_json::from_slice(&next.internal).unwrap();
        assert_eq!(internal["messages"].as_array().unwrap().len(), 3);
        store.finish(c, answer("more"));
        for i in 0..STORED_RESPONSES {
            let c = store
                .continue_from(&mut read("x", None), &format!("req_f{i}"), None)
                .unwrap();
            store.finish(c, answer("y"));
        }
        let gone = store.continue_from(&mut read("x", Some("resp_1")), "req_3", None);
        assert_eq!(gone.err().map(|e| e.status().as_u16()), Some(404));
        // Answers the client asked not to store are not.
        let mut unstored = read("x", None);
        unstored.store = false;
        let c = store.continue_from(&mut unstored, "req_4", None).unwrap();
        store.finish(c, answer("y"));
        assert!(
            store
                .continue_from(&mut read("x", Some("resp_4")), "req_5", None)
                .is_err()
        );
    }

    #[test]
    fn a_conversation_is_its_owners_alone_and_the_store_is_bounded_in_bytes() {
        let store = ResponseStore::default();
        let c = store
            .continue_from(&mut read("secret plans", None), "req_a", Some("vk_alice"))
            .unwrap();
        store.finish(c, answer("noted"));
        for other in [Some("vk_mallory"), None] {
            let stolen = store.continue_from(&mut read("and?", Some("resp_a")), "req_m", other);
            assert_eq!(
                stolen.err().map(|e| e.status().as_u16()),
                Some(404),
                "{other:?}"
            );
        }
        assert!(
            store
                .continue_from(&mut read("and?", Some("resp_a")), "req_b", Some("vk_alice"))
                .is_ok()
        );
        // 100 conversations of 1 MiB each: the store keeps at most its bytes.
        let big = "x".repeat(1 << 20);
        for i in 0..100 {
            let c = store
                .continue_from(&mut read(&big, None), &format!("req_big{i}"), None)
                .unwrap();
            store.finish(c, answer("ok"));
        }
        let s = store.inner.lock().unwrap();
        assert!(s.bytes <= STORED_BYTES, "{}", s.bytes);
        assert_eq!(s.bytes, s.by_id.values().map(|c| c.bytes).sum::<usize>());
    }
}
