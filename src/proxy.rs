//! The request path of the LLM proxy.
//!
//! ```text
//! read body ─▶ parse ─▶ resolve targets ─▶ attempt loop ───────────────▶ respond ─▶ finish
//! (413)        (400)    (404)              │ pick key (weights, 429        │ JSON: whole body
//!                                          │   cool-downs, 401/403 drops)  │ SSE: relay events
//!                                          │ send (connect / first-byte    │
//!                                          │   / idle deadlines)           └ log + metrics,
//!                                          │ classify ─▶ retry w/ backoff    off the request path
//!                                          │          ─▶ rotate key
//!                                          └──────────▶ next fallback target
//! ```
//!
//! Each phase is a function over one per-request [`Ctx`]. Errors carry who
//! caused them ([`error::Cause`]) and map to a response in the client's wire
//! format in one place ([`ProxyError::into_response_for`]). Requests in other
//! formats than OpenAI's are translated at the edges ([`native`]). Bodies are parsed only to their top
//! level and forwarded otherwise untouched; streams are relayed event by event
//! and never buffered whole. A stream that fails before its first content
//! chunk is retried or failed over like any other attempt; after content has
//! reached the client it ends with an error event.

mod cache;
mod endpoints;
pub mod error;
pub mod http_api;
mod native;
mod stream;
pub mod upstream;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};

pub use error::{Cause, ErrorKind, ProxyError};
pub use native::{GEMINI_API_VERSIONS, is_gemini_models_path};

use crate::cache::store::CacheStore;
use crate::config::Config;
use crate::governance::budgets::{Refusal, Reservation};
use crate::governance::limits::Admitted;
use crate::governance::objects::DEFAULT_MAX_TOKENS;
use crate::governance::pricing::Micros;
use crate::governance::{Governance, KeyView, SECRET_PREFIX};
use crate::health::{HealthBook, Outcome, RouteId};
use crate::observability::metrics::Metrics;
use crate::observability::metrics::usage::Spent;
use crate::observability::otel::{self, Kind, Span, SpanContext, Tracer};
use crate::observability::request_log::{Content, RequestLog, RequestLogs, now_ms};
use crate::providers::bound::SearchContext;
use crate::providers::endpoints::{self as unit, ImageSpec};
use crate::providers::multipart::Form;
use crate::providers::openai::{self, Endpoint, RawObject, RequestView, Usage};
use crate::providers::presets::ProviderKind;
use crate::providers::{bound, tokens};
use crate::routing::{Catalog, NoKey, ResolveError, Target};
use crate::translate::Format;
use upstream::{Failure, HttpClient, Next};

/// Everything the request path needs, shared by all requests.
pub struct Gateway {
    /// Providers of the config file and of the admin API, rebuilt when the
    /// latter change.
    routes: arc_swap::ArcSwap<Routes>,
    rebuilding: std::sync::Mutex<()>,
    /// The config the routes are built from, before API providers are added.
    config: Config,
    pub metrics: Arc<Metrics>,
    pub logs: RequestLogs,
    pub governance: Arc<Governance>,
    /// Responses this node served, for `previous_response_id`.
    responses: native::ResponseStore,
    /// How every route is doing, here and (gossiped) on the peers.
    pub health: Arc<HealthBook>,
    /// The response cache (used when `config.cache.enabled`).
    pub cache: Arc<CacheStore>,
    /// The semantic cache's embeddings (when `cache.semantic` is on).
    embeddings: Option<crate::cache::Embeddings>,
    pub tracer: Tracer,
    max_body_bytes: usize,
    enforce_auth: bool,
    /// Keyless callers may reach this node from beyond this machine, and the
    /// operator did not allow them the provider keys (`Config::relays_for_anyone`).
    keyless_guard: bool,
}

/// The providers in force: the catalog, one pooled client per provider
/// (indexed by `Provider::index`), and the `/v1/models` answer.
pub struct Routes {
    pub catalog: Catalog,
    clients: Vec<HttpClient>,
    pub models: Bytes,
    /// `Governance::providers_version` these were built at.
    version: u64,
}

impl Gateway {
    pub fn new(
        config: &Config,
        metrics: Arc<Metrics>,
        logs: RequestLogs,
        governance: Arc<Governance>,
        cache: Arc<CacheStore>,
        embeddings: Option<crate::cache::Embeddings>,
        tracer: Tracer,
    ) -> Gateway {
        let routes = build_routes(config, &governance);
        Gateway {
            routes: arc_swap::ArcSwap::from_pointee(routes),
            rebuilding: std::sync::Mutex::new(()),
            config: config.clone(),
            metrics,
            logs,
            governance,
            responses: native::ResponseStore::default(),
            health: Arc::new(HealthBook::default()),
            cache,
            embeddings,
            tracer,
            max_body_bytes: config.server.max_body_bytes,
            enforce_auth: config.client.enforce_auth,
            keyless_guard: config.relays_for_anyone(),
        }
    }

    /// The routes in force, rebuilt first if API providers changed since.
    pub fn routes(&self) -> Arc<Routes> {
        let current = self.routes.load_full();
        if current.version == self.governance.providers_version() {
            return current;
        }
        let _one_at_a_time = self.rebuilding.lock().expect("rebuild lock");
        let current = self.routes.load_full();
        if current.version == self.governance.providers_version() {
            return current;
        }
        let fresh = Arc::new(build_routes(&self.config, &self.governance));
        self.routes.store(fresh.clone());
        fresh
    }
}

/// Config providers first, then the API's; an API provider whose `env.VAR`
/// secret is unset on this node is left out (and said so).
fn build_routes(config: &Config, governance: &Governance) -> Routes {
    let version = governance.providers_version();
    let mut config = config.clone();
    let vars: Vec<(String, String)> = std::env::vars().collect();
    for (name, mut p) in governance.api_providers() {
        match p.resolve_secrets(&vars) {
            Ok(()) => {
                config.providers.insert(name, p);
            }
            Err(var) => {
                tracing::error!(provider = %name, %var, "provider left out: its secret's variable is not set on this node")
            }
        }
    }
    let catalog = Catalog::from_config(&config);
    let clients = catalog
        .providers()
        .iter()
        .map(|p| upstream::http_client(p.upstream.connect_timeout))
        .collect();
    let models = http_api::models_body(&catalog);
    Routes {
        catalog,
        clients,
        models,
        version,
    }
}

/// What the gateway knows about one request as it moves through the phases.
pub struct Ctx {
    pub id: String,
    started: Instant,
    ts_ms: u64,
    endpoint: Endpoint,
    /// The wire format the client speaks; errors and answers leave in it.
    inbound: Format,
    /// Responses requests: the answer's id and the conversation it continues.
    conversation: Option<native::Conversation>,
    requested_model: String,
    stream: bool,
    /// The virtual key's id, when the request presented one, and the team and
    /// customer above it.
    virtual_key: Option<String>,
    team: Option<String>,
    customer: Option<String>,
    /// Worst-case cost held in the caller's budgets until the request settles.
    reservation: Option<Reservation>,
    /// The rate-limit windows the request was counted in.
    admitted: Option<Admitted>,
    /// Time spent waiting on upstreams (and backing off between their failures).
    upstream: Duration,
    attempts: u32,
    target_index: u32,
    provider: Option<Arc<str>>,
    /// The preset of `provider`, which the price catalog keys by.
    provider_kind: &'static str,
    model: Option<String>,
    /// `model` as metrics name it (bounded, see `routing::ModelLabels`).
    model_label: Option<Arc<str>>,
    key: Option<Arc<str>>,
    usage: Usage,
    /// The search context the request asks for, which prices a per-request
    /// search fee (`web_search_options`, as every target is sent it).
    search: SearchContext,
    /// An image request's size and quality, which its price is looked up by.
    image: Option<ImageSpec>,
    /// A speech request's characters (its answer is audio).
    characters: u64,
    ttft: Option<Duration>,
    status: u16,
    error: Option<String>,
    overhead: Duration,
    /// What the cache did and, on a miss, what it needs to store the answer.
    cache: cache::State,
    /// The bodies, when the key logs content.
    content: Option<Content>,
    /// The request's span, and the span of the attempt that answered (a
    /// stream's lasts until the stream ends).
    span: Span,
    attempt_span: Span,
}

impl Ctx {
    fn new(endpoint: Endpoint, inbound: Format) -> Ctx {
        Ctx {
            // Unguessable (a Responses answer's id is derived from it).
            id: format!("req_{}", crate::governance::random_id(22)),
            started: Instant::now(),
            ts_ms: now_ms(),
            endpoint,
            inbound,
            conversation: None,
            requested_model: String::new(),
            stream: false,
            virtual_key: None,
            team: None,
            customer: None,
            reservation: None,
            admitted: None,
            upstream: Duration::ZERO,
            attempts: 0,
            target_index: 0,
            provider: None,
            provider_kind: "",
            model: None,
            model_label: None,
            key: None,
            usage: Usage::default(),
            search: SearchContext::default(),
            image: None,
            characters: 0,
            ttft: None,
            status: 0,
            error: None,
            overhead: Duration::ZERO,
            cache: cache::State::default(),
            content: None,
            span: Span::none(),
            attempt_span: Span::none(),
        }
    }

    fn on_target(&mut self, index: usize, target: &Target, key: Option<usize>) {
        self.target_index = index as u32;
        self.provider = Some(target.provider.name.clone());
        self.provider_kind = target.provider.kind.preset().name;
        self.model = Some(target.model.clone());
        self.model_label = Some(target.label.clone());
        self.key = key.map(|k| target.provider.keys[k].name.clone());
    }

    /// The endpoint as logs and metrics name it.
    fn label(&self) -> &'static str {
        match self.inbound {
            Format::OpenAi => self.endpoint.label(),
            Format::Anthropic => "anthropic_messages",
            Format::Gemini => "gemini_generate_content",
            Format::Bedrock => "bedrock_converse",
            Format::Cohere => "cohere_chat",
            Format::Responses => "responses",
        }
    }

    /// `gen_ai.operation.name` of the endpoint.
    fn operation(&self) -> &'static str {
        match (self.inbound, self.endpoint) {
            (Format::Gemini, _) => "generate_content",
            (_, Endpoint::ChatCompletions) => "chat",
            (_, Endpoint::Completions) => "text_completion",
            (_, Endpoint::Embeddings) => "embeddings",
            (_, Endpoint::Rerank) => "rerank",
            (_, Endpoint::ImageGenerations) => "image_generation",
            (_, Endpoint::Speech) => "speech",
            (_, Endpoint::Transcriptions) => "transcription",
            (_, Endpoint::Moderations) => "moderation",
        }
    }

    /// The request span's last attributes, from the finished request.
    fn end_spans(&mut self, cost: Micros) {
        let operation = self.operation();
        let (mut span, mut attempt) = (
            std::mem::replace(&mut self.span, Span::none()),
            std::mem::replace(&mut self.attempt_span, Span::none()),
        );
        if !span.is_recording() {
            return;
        }
        for s in [&mut span, &mut attempt] {
            s.set_some("gen_ai.response.model", self.model.clone());
            if self.usage != Usage::default() {
                s.set("gen_ai.usage.input_tokens", self.usage.prompt_tokens);
                s.set("gen_ai.usage.output_tokens", self.usage.completion_tokens);
            }
        }
        drop(attempt);
        let model = &self.requested_model;
        span.rename(|| {
            if model.is_empty() {
                operation.to_string()
            } else {
                format!("{operation} {model}")
            }
        });
        span.set("gen_ai.operation.name", operation);
        if !self.requested_model.is_empty() {
            span.set("gen_ai.request.model", self.requested_model.clone());
        }
        if !self.provider_kind.is_empty() {
            span.set(
                "gen_ai.provider.name",
                otel::gen_ai_provider(self.provider_kind),
            );
        }
        span.set_some("tollgate.provider", self.provider.as_ref());
        span.set("http.response.status_code", self.status);
        span.set("tollgate.request_id", self.id.clone());
        span.set("tollgate.endpoint", self.label());
        span.set("tollgate.stream", self.stream);
        span.set("tollgate.attempts", self.attempts);
        span.set("tollgate.fallback_index", self.target_index);
        span.set("tollgate.cost_micros", cost);
        span.set_some("tollgate.virtual_key", self.virtual_key.as_ref());
        span.set_some("tollgate.team", self.team.as_ref());
        span.set_some("tollgate.customer", self.customer.as_ref());
        if let Some(c) = self.cache.status {
            span.set("tollgate.cache", c.as_str());
        }
        if self.status >= 400 {
            let message = self.error.clone().unwrap_or_default();
            span.fail(self.status.to_string(), message);
        }
    }

    /// Fixes the gateway's own time as of now and returns it for the header.
    fn stamp_overhead(&mut self) -> Duration {
        self.overhead = self.started.elapsed().saturating_sub(self.upstream);
        self.overhead
    }
}

/// Owns a request's [`Ctx`] until it is finished; finishing on drop means a
/// client that goes away mid-request or mid-stream is still logged (as 499).
struct Finisher {
    gw: Arc<Gateway>,
    ctx: Option<Ctx>,
}

impl Finisher {
    fn new(gw: Arc<Gateway>, endpoint: Endpoint, inbound: Format) -> Finisher {
        gw.metrics.in_flight.inc();
        Finisher {
            gw,
            ctx: Some(Ctx::new(endpoint, inbound)),
        }
    }

    fn ctx(&mut self) -> &mut Ctx {
        self.ctx.as_mut().expect("ctx lives until finish")
    }

    fn finish(&mut self) {
        let Some(mut ctx) = self.ctx.take() else {
            return;
        };
        let m = &self.gw.metrics;
        let gov = &self.gw.governance;
        let known_usage = ctx.usage != Usage::default();
        let mut cost = match (&ctx.provider, &ctx.model) {
            (Some(p), Some(model)) if known_usage => {
                let image = ctx.image.as_ref();
                gov.cost(p, ctx.provider_kind, model, image, &ctx.usage, ctx.search)
            }
            _ => 0,
        };
        if let Some(r) = ctx.reservation.take() {
            // A success whose usage never arrived, or a request the client
            // left after an upstream took it, is charged its reservation:
            // never less than it may have cost.
            let upstream_may_charge =
                (200..300).contains(&ctx.status) || (ctx.status == 499 && ctx.attempts > 0);
            if !known_usage && upstream_may_charge {
                cost = r.amount();
            }
            // The invariant budgets rest on: the reservation bounded the body
            // that was sent (`providers::bound`), so the cost never passes it.
            // Should it ever, the provider billed it: it is charged in full
            // and reported, not hidden.
            if cost > r.amount() {
                m.reservation_exceeded.inc();
                tracing::error!(request = %ctx.id, cost, reserved = r.amount(), "a request cost more than its reservation");
            }
            gov.settle(r, cost, ctx.provider.as_deref());
        }
        cache::store(&self.gw, &mut ctx, cost);
        ctx.end_spans(cost);
        if let Some(a) = ctx.admitted.take() {
            gov.record_tokens(&a, ctx.usage.total_tokens);
        }
        m.in_flight.dec();
        let provider = ctx.provider.as_deref().unwrap_or("");
        let model = ctx.model_label.as_deref().unwrap_or("");
        // Any three-digit code parses, 499 (client went away) included.
        let status = StatusCode::from_u16(ctx.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        m.requests
            .with_label_values(&[ctx.label(), provider, model, status.as_str()])
            .inc();
        m.overhead.observe(ctx.overhead.as_secs_f64());
        if ctx.provider.is_some() && ctx.attempts > 0 {
            m.upstream_latency
                .with_label_values(&[provider, model])
                .observe(ctx.upstream.as_secs_f64());
        }
        if let Some(t) = ctx.ttft {
            m.time_to_first_token
                .with_label_values(&[provider, model])
                .observe(t.as_secs_f64());
        }
        if ctx.usage != Usage::default() {
            let u = &ctx.usage;
            for (kind, n) in [
                ("prompt", u.prompt_tokens),
                ("completion", u.completion_tokens),
                ("cached", u.cached_tokens),
            ] {
                if n > 0 {
                    m.tokens
                        .with_label_values(&[provider, model, kind])
                        .inc_by(n);
                }
            }
        }
        if ctx.target_index > 0 && ctx.status < 400 {
            m.fallbacks.with_label_values(&[provider]).inc();
        }
        m.usage.request(&Spent {
            provider,
            model,
            team: ctx.team.as_deref(),
            customer: ctx.customer.as_deref(),
            key: ctx.virtual_key.as_deref(),
            cost_micros: cost,
            tokens: ctx.usage.prompt_tokens + ctx.usage.completion_tokens,
        });
        let label = ctx.label();
        self.gw.logs.record(RequestLog {
            id: ctx.id,
            ts_ms: ctx.ts_ms,
            endpoint: label.to_string(),
            requested_model: ctx.requested_model,
            virtual_key: ctx.virtual_key,
            team: ctx.team,
            customer: ctx.customer,
            provider: ctx.provider.map(|p| p.to_string()),
            model: ctx.model,
            provider_key: ctx.key.map(|k| k.to_string()),
            stream: ctx.stream,
            status: ctx.status,
            error: ctx.error,
            usage: ctx.usage.into(),
            cost_micros: cost,
            latency_us: ctx.started.elapsed().as_micros() as u64,
            upstream_us: ctx.upstream.as_micros() as u64,
            ttft_us: ctx.ttft.map(|t| t.as_micros() as u64),
            overhead_us: ctx.overhead.as_micros() as u64,
            attempts: ctx.attempts,
            target_index: ctx.target_index,
            cache: ctx.cache.log(),
            content: ctx.content,
        });
    }
}

impl Drop for Finisher {
    fn drop(&mut self) {
        if let Some(ctx) = self.ctx.as_mut() {
            ctx.status = 499;
            ctx.error
                .get_or_insert_with(|| "client closed the connection".into());
            self.finish();
        }
    }
}

/// The entry point of every proxied OpenAI request.
pub async fn handle(gw: Arc<Gateway>, endpoint: Endpoint, req: Request<Body>) -> Response<Body> {
    handle_in(gw, endpoint, Format::OpenAi, req).await
}

/// [`handle`], boxed: for a request the gateway makes of itself while
/// serving another (a served embeddings model, `cache::lookup`), where the
/// future's type would otherwise contain itself.
pub fn handle_boxed(
    gw: Arc<Gateway>,
    endpoint: Endpoint,
    req: Request<Body>,
) -> futures_util::future::BoxFuture<'static, Response<Body>> {
    Box::pin(handle(gw, endpoint, req))
}

/// The entry point of every proxied request, in the client's `inbound` format.
pub async fn handle_in(
    gw: Arc<Gateway>,
    endpoint: Endpoint,
    inbound: Format,
    req: Request<Body>,
) -> Response<Body> {
    let mut fin = Finisher::new(gw.clone(), endpoint, inbound);
    let parent = SpanContext::from_headers(req.headers());
    fin.ctx().span = gw.tracer.start(fin.ctx().operation(), Kind::Server, parent);
    match serve(&gw, &mut fin, req).await {
        Ok(Reply::Whole(resp)) => {
            let ctx = fin.ctx();
            let mut resp = if inbound == Format::OpenAi {
                resp
            } else {
                let conversation = ctx.conversation.take();
                native::whole_for_client(resp, inbound, &ctx.requested_model, conversation, &gw)
                    .await
            };
            ctx.status = resp.status().as_u16();
            if let Some(content) = &mut ctx.content {
                // The answer as the client gets it (whole answers are in memory already).
                let (parts, body) = resp.into_parts();
                let bytes = axum::body::to_bytes(body, usize::MAX)
                    .await
                    .unwrap_or_default();
                content.push_response(&bytes);
                resp = Response::from_parts(parts, Body::from(bytes));
            }
            let overhead = ctx.stamp_overhead();
            decorate(&mut resp, ctx, overhead);
            fin.finish();
            resp
        }
        Ok(Reply::Stream(pre)) => {
            let ctx = fin.ctx();
            let mut resp = sse_response(ctx);
            let model = ctx.requested_model.clone();
            let conversation = ctx.conversation.take();
            let assembler = cache::assembler(ctx);
            let relay = cache::tee(
                stream::relay(pre, fin),
                assembler,
                gw.cache.max_entry_bytes(),
            );
            *resp.body_mut() =
                native::stream_for_client(relay, inbound, &model, conversation, gw.clone());
            resp
        }
        Ok(Reply::Replay(chunks)) => {
            let ctx = fin.ctx();
            let mut resp = sse_response(ctx);
            let model = ctx.requested_model.clone();
            let conversation = ctx.conversation.take();
            fin.finish();
            *resp.body_mut() = native::stream_for_client(
                Body::from(chunks),
                inbound,
                &model,
                conversation,
                gw.clone(),
            );
            resp
        }
        Err(e) => {
            let ctx = fin.ctx();
            ctx.status = e.status().as_u16();
            ctx.error = Some(e.message.clone());
            let overhead = ctx.stamp_overhead();
            let mut resp = e.into_response_for(inbound);
            decorate(&mut resp, ctx, overhead);
            fin.finish();
            resp
        }
    }
}

/// The head of a streamed answer (status 200, SSE headers, the gateway's
/// own); Bedrock clients' streams are AWS event-streams.
fn sse_response(ctx: &mut Ctx) -> Response<Body> {
    ctx.status = 200;
    let overhead = ctx.stamp_overhead();
    let mut resp = Response::new(Body::empty());
    decorate(&mut resp, ctx, overhead);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(if ctx.inbound == Format::Bedrock {
            "application/vnd.amazon.eventstream"
        } else {
            "text/event-stream"
        }),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp
}

fn decorate(resp: &mut Response<Body>, ctx: &Ctx, overhead: Duration) {
    let h = resp.headers_mut();
    if let Some(s) = ctx.cache.status {
        h.insert("x-tollgate-cache", HeaderValue::from_static(s.as_str()));
        if s == crate::observability::request_log::CacheStatus::Hit {
            match ctx.cache.similarity {
                None => {
                    h.insert("x-tollgate-cache-type", HeaderValue::from_static("exact"));
                }
                Some(sim) => {
                    h.insert(
                        "x-tollgate-cache-type",
                        HeaderValue::from_static("semantic"),
                    );
                    if let Ok(v) = HeaderValue::from_str(&format!("{sim:.4}")) {
                        h.insert("x-tollgate-cache-similarity", v);
                    }
                }
            }
        }
    }
    h.insert(
        "x-tollgate-overhead-us",
        HeaderValue::from(overhead.as_micros() as u64),
    );
    if let Ok(v) = HeaderValue::from_str(&ctx.id) {
        h.insert("x-tollgate-request-id", v);
    }
    if let Some(p) = ctx
        .provider
        .as_deref()
        .and_then(|p| HeaderValue::from_str(p).ok())
    {
        h.insert("x-tollgate-provider", p);
    }
    if ctx.attempts > 0 {
        h.insert("x-tollgate-attempts", HeaderValue::from(ctx.attempts));
    }
}

enum Reply {
    /// A complete response: success, or an upstream's client error passed through.
    Whole(Response<Body>),
    /// A stream whose first content has arrived.
    Stream(stream::Prefetched),
    /// A cached answer to a streaming request, as internal chunks.
    Replay(Bytes),
}

async fn serve(
    gw: &Arc<Gateway>,
    fin: &mut Finisher,
    req: Request<Body>,
) -> Result<Reply, ProxyError> {
    let caller = authenticate(gw, req.headers())?;
    // A served embeddings model is asked as the caller (`cache::lookup`).
    let credential = presented_key(req.headers()).map(str::to_string);
    let asked = cache::Asked::from_headers(req.headers())?;
    let forwarded = native::forwarded_headers(fin.ctx().inbound, req.headers());
    if let Some(k) = &caller {
        let ctx = fin.ctx();
        ctx.virtual_key = Some(k.key.id.clone());
        ctx.team = k.key.team_id.clone();
        ctx.customer = k.customer_id.clone();
    }
    let rules = gw.governance.rule_set();
    let rule_headers = (!rules.is_empty()).then(|| req.headers().clone());
    // Only a form needs its content type (its boundary) past the body.
    let content_type = (fin.ctx().endpoint == Endpoint::Transcriptions)
        .then(|| {
            req.headers()
                .get(header::CONTENT_TYPE)?
                .to_str()
                .ok()
                .map(str::to_string)
        })
        .flatten();
    let raw = read_body(req, gw.max_body_bytes).await?;
    if caller.as_ref().is_some_and(|k| k.log_content) {
        fin.ctx().content = Some(Content::of_request(&raw));
    }
    let (mut body, mut translated) = native::prepare(gw, fin.ctx(), raw.clone(), forwarded)?;
    if fin.ctx().endpoint == Endpoint::Transcriptions {
        let form = Form::read(content_type.as_deref().unwrap_or_default(), body)
            .await
            .map_err(|e| ProxyError::new(ErrorKind::InvalidRequest, e.0))?;
        body = form
            .view()
            .map_err(|e| ProxyError::new(ErrorKind::InvalidRequest, e.0))?;
        translated.form = Some(endpoints::FormRequest::new(form));
    }
    let obj = RawObject::parse(&body).map_err(|e| {
        ProxyError::new(
            ErrorKind::InvalidRequest,
            format!("request body is not a valid JSON object: {e}"),
        )
    })?;
    let ctx = fin.ctx();
    let mut view = RequestView::read(&obj, ctx.endpoint).map_err(|e| {
        // The log keeps what the client asked for, refused or not (as
        // text, clipped like every logged field).
        if let Ok(Some(model)) = obj.decode::<String>("model") {
            ctx.requested_model = model;
        }
        ProxyError::new(ErrorKind::InvalidRequest, e.message).with_param(e.param)
    })?;
    ctx.requested_model = view.model.clone();
    ctx.stream = view.stream;
    let options = obj
        .get("web_search_options")
        .and_then(|v| serde_json::from_str::<serde_json::Value>(v.get()).ok());
    ctx.search = SearchContext::of_options(options.as_ref());
    match ctx.endpoint {
        Endpoint::ImageGenerations => ctx.image = Some(ImageSpec::of(&obj)),
        Endpoint::Speech => ctx.characters = unit::speech_characters(&obj),
        _ => {}
    }
    if let Some(headers) = rule_headers {
        apply_rules(gw, &rules, &headers, caller.as_deref(), &obj, &mut view);
    }
    let routes = gw.routes();
    let targets = resolve_targets(&routes.catalog, &view, caller.as_deref())?;
    translated.read_for(&targets, fin.ctx().endpoint, &body)?;
    if caller.is_none()
        && gw.keyless_guard
        && let Some(t) = targets.iter().find(|t| !t.provider.keys.is_empty())
    {
        return Err(ProxyError::new(
            ErrorKind::Unauthenticated,
            format!(
                "provider '{}' has keys and this node is reachable beyond its own machine: \
                 a virtual key is required (client.allow_unauthenticated is off)",
                t.provider.name
            ),
        ));
    }
    let endpoint = fin.ctx().endpoint;
    if let Some(key) = caller.as_deref().filter(|k| has_budgets(k)) {
        translated.cap_output(key.key.default_max_tokens.unwrap_or(DEFAULT_MAX_TOKENS));
    }
    let mut plans: Vec<Planned<'_>> = targets
        .iter()
        .map(|t| Planned::new(&translated, endpoint, &obj, &view, t))
        .collect();
    let providers: Vec<&str> = targets.iter().map(|t| &*t.provider.name).collect();
    let (mut worst, mut admitted) = (None, None);
    if let Some(key) = &caller {
        check_access(key, &targets)?;
        let audio_seconds = translated.audio_seconds_bound();
        let request = Priced {
            endpoint,
            obj: &obj,
            audio_seconds,
            image: fin.ctx().image.as_ref(),
        };
        worst = worst_cost(gw, key, &request, &targets, &mut plans)?;
        admitted = gw.governance.admit(key, &providers).map_err(|e| {
            let mut err = ProxyError::new(ErrorKind::RateLimited, e.to_string());
            err.cause = Cause::Client;
            err.retry_after = Some(e.retry_after_secs);
            err
        })?;
    }
    // Only now, when the caller could make this request: a hit reserves nothing.
    let hit = cache::lookup(
        gw,
        fin.ctx(),
        &asked,
        caller.as_deref(),
        credential.as_deref(),
        &raw,
        &targets,
    )
    .await;
    if let Some(hit) = hit {
        let ctx = fin.ctx();
        ctx.admitted = admitted;
        if ctx.stream {
            let usage = ctx.inbound != Format::OpenAi || view.include_usage;
            return Ok(Reply::Replay(cache::replay(&hit.body, usage)));
        }
        return Ok(Reply::Whole(whole(StatusCode::OK, None, hit.body)));
    }
    if let Some(key) = &caller {
        let reserved = match worst {
            Some(worst) => gw
                .governance
                .reserve_or_borrow(key, &providers, worst, ALLOWANCE_PATIENCE)
                .await
                .map_err(|e| {
                    let kind = match e {
                        Refusal::Exceeded(_) => ErrorKind::BudgetExceeded,
                        Refusal::Unavailable(_) => ErrorKind::Unavailable,
                    };
                    ProxyError::new(kind, e.to_string())
                }),
            None => Ok(None),
        };
        match reserved {
            Ok(r) => fin.ctx().reservation = r,
            Err(e) => {
                if let Some(a) = &admitted {
                    gw.governance.unadmit(a);
                }
                return Err(e);
            }
        }
        fin.ctx().admitted = admitted;
    }
    attempt_all(gw, &routes, fin, &obj, &view, &targets, &plans).await
}

/// One target's upstream request, built before admission so that what a
/// reservation bounds is exactly what is sent.
struct Planned<'a> {
    path: String,
    body: Bytes,
    forwarded: &'a [(http::HeaderName, HeaderValue)],
    /// Whether the gateway asked for stream usage the client did not.
    ask_usage: bool,
}

impl<'a> Planned<'a> {
    fn new(
        translated: &'a native::Translated,
        endpoint: Endpoint,
        obj: &RawObject<'_>,
        view: &RequestView,
        target: &Target,
    ) -> Planned<'a> {
        let p = &target.provider;
        // Ask for usage on streams when the upstream supports it, so every
        // stream is accounted; the extra chunk is stripped if the client did not ask.
        let ask_usage = view.stream && p.stream_usage && !view.include_usage;
        let (path, mut body, forwarded) = translated.request_for(endpoint, obj, target, ask_usage);
        if p.kind == ProviderKind::Vertex
            && target.wire == Format::Anthropic
            && let Some(b) = crate::providers::vertex::anthropic_body(&body)
        {
            body = b;
        }
        Planned {
            path,
            body,
            forwarded,
            ask_usage,
        }
    }
}

/// Headers a virtual key may arrive in, in the order they are looked at.
const KEY_HEADERS: &[&str] = &["x-tollgate-vk", "x-api-key", "x-goog-api-key", "api-key"];

/// The `sk-tg-` secret a request presents, from whichever header carries it.
pub fn presented_key(headers: &http::HeaderMap) -> Option<&str> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    bearer
        .filter(|v| v.starts_with(SECRET_PREFIX))
        .or_else(|| {
            KEY_HEADERS
                .iter()
                .filter_map(|h| headers.get(*h)?.to_str().ok())
                .find(|v| v.starts_with(SECRET_PREFIX))
        })
        .map(str::trim)
}

/// The caller's virtual key. A presented `sk-tg-` key must be valid; with
/// `enforce_auth` a request without one is refused too. Otherwise the
/// request goes on unattributed.
fn authenticate(
    gw: &Gateway,
    headers: &http::HeaderMap,
) -> Result<Option<Arc<KeyView>>, ProxyError> {
    match presented_key(headers) {
        Some(secret) => gw
            .governance
            .authenticate(secret)
            .map(Some)
            .map_err(|e| ProxyError::new(ErrorKind::Unauthenticated, e.to_string())),
        None if gw.enforce_auth => Err(ProxyError::new(
            ErrorKind::Unauthenticated,
            "a virtual key is required: send it as 'Authorization: Bearer sk-tg-...'",
        )),
        None => Ok(None),
    }
}

/// Holds the request's worst-case cost in every budget above the key: the
/// prompt's token bound plus the output cap, at the dearest of the targets.
/// How long a request waits for a peer's allowance gift before another try
/// (a cluster round trip is a millisecond or two on a LAN).
const ALLOWANCE_PATIENCE: Duration = Duration::from_millis(250);

/// The most a request may cost at any of its targets, when the key has
/// budgets (`None` when nothing needs reserving). Each target's body gets
/// the output cap the reservation assumes ([`bound::enforce`]); a target
/// without a price, or a body with a field no price covers, is refused.
fn worst_cost(
    gw: &Gateway,
    key: &KeyView,
    request: &Priced<'_>,
    targets: &[Target],
    plans: &mut [Planned<'_>],
) -> Result<Option<Micros>, ProxyError> {
    if !has_budgets(key) {
        return Ok(None);
    }
    let cap = key.key.default_max_tokens.unwrap_or(DEFAULT_MAX_TOKENS);
    let kind = match request.endpoint {
        Endpoint::ChatCompletions => Some(bound::Kind::Chat),
        Endpoint::Completions => Some(bound::Kind::Completions),
        Endpoint::Embeddings => Some(bound::Kind::Embeddings),
        // Priced by what they make: one bound for every target.
        _ => None,
    };
    // That one bound, read at the first target.
    let mut made: Option<bound::Bound> = None;
    let mut worst = 0;
    for (i, (t, plan)) in targets.iter().zip(plans.iter_mut()).enumerate() {
        let param = Some(if i == 0 { "model" } else { "fallbacks" });
        let p = &t.provider;
        let preset = p.kind.preset().name;
        let Some(price) = gw
            .governance
            .price_for(&p.name, preset, &t.model, request.image)
        else {
            return Err(ProxyError::new(
                ErrorKind::InvalidRequest,
                format!(
                    "model '{}/{}' has no price, so a key with a budget cannot use it; \
                     an operator can price it, or mark it free at 0 (PUT /api/pricing/{}/{})",
                    p.name, t.model, p.name, t.model
                ),
            )
            .with_param(param));
        };
        let cap_field = match p.kind {
            ProviderKind::OpenAi | ProviderKind::Azure => bound::CapField::MaxCompletionTokens,
            _ => bound::CapField::MaxTokens,
        };
        let refused =
            |e: bound::Unpriceable| ProxyError::new(ErrorKind::InvalidRequest, e.to_string());
        let b = match (kind, made) {
            (Some(kind), _) => {
                bound::enforce(t.wire, kind, cap_field, &mut plan.body, cap).map_err(refused)?
            }
            (None, Some(b)) => b,
            (None, None) => {
                let b = unit::bound(request.endpoint, request.obj, request.audio_seconds)
                    .map_err(refused)?;
                *made.insert(b)
            }
        };
        let most = price.bound(&b).map_err(refused)?;
        worst = worst.max(most);
    }
    Ok(Some(worst))
}

/// What the worst case of a request is read from.
struct Priced<'a> {
    endpoint: Endpoint,
    obj: &'a RawObject<'a>,
    /// The most seconds a transcription's audio can last.
    audio_seconds: u64,
    image: Option<&'a ImageSpec>,
}

fn has_budgets(key: &KeyView) -> bool {
    !key.budgets.is_empty() || !key.provider_budgets.is_empty()
}

fn check_access(key: &KeyView, targets: &[Target]) -> Result<(), ProxyError> {
    for (i, t) in targets.iter().enumerate() {
        if !key.allows(&t.provider.name, &t.model) {
            return Err(ProxyError::new(
                ErrorKind::Forbidden,
                format!(
                    "this key may not use model '{}/{}'",
                    t.provider.name, t.model
                ),
            )
            .with_param(Some(if i == 0 { "model" } else { "fallbacks" })));
        }
    }
    Ok(())
}

/// Reads the body up to `limit` bytes; more is a 413.
async fn read_body(req: Request<Body>, limit: usize) -> Result<Bytes, ProxyError> {
    let too_large = || {
        ProxyError::new(
            ErrorKind::BodyTooLarge,
            format!("request body exceeds the limit of {limit} bytes"),
        )
    };
    if let Some(len) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > limit as u64
    {
        return Err(too_large());
    }
    match Limited::new(req.into_body(), limit).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Err(e) if error::is_body_timeout(e.as_ref()) => Err(ProxyError::new(
            ErrorKind::BodyTimeout,
            format!("cannot read request body: {e}"),
        )),
        Err(e) => Err(ProxyError::new(
            ErrorKind::InvalidRequest,
            format!("cannot read request body: {e}"),
        )),
    }
}

/// The requested model, then each fallback. A bare name several providers
/// serve goes, for a keyed caller, to a provider the key may use — chosen by
/// the key's provider weights when it has them.
fn resolve_targets(
    catalog: &Catalog,
    view: &RequestView,
    caller: Option<&KeyView>,
) -> Result<Vec<Target>, ProxyError> {
    let not_found = |e: ResolveError, param| {
        ProxyError::new(ErrorKind::ModelNotFound, e.to_string()).with_param(Some(param))
    };
    let mut candidates = catalog
        .candidates(&view.model)
        .map_err(|e| not_found(e, "model"))?;
    if let Some(key) = caller
        && candidates.len() > 1
    {
        candidates.retain(|t| key.allows(&t.provider.name, &t.model));
        if candidates.is_empty() {
            return Err(ProxyError::new(
                ErrorKind::Forbidden,
                format!(
                    "this key may not use model '{}' at any provider serving it",
                    view.model
                ),
            )
            .with_param(Some("model")));
        }
    }
    let chosen = match caller {
        Some(key) if candidates.len() > 1 => {
            let w = |t: &Target| {
                u64::from(
                    key.key
                        .provider_weights
                        .get(&*t.provider.name)
                        .copied()
                        .unwrap_or(0),
                )
            };
            let total: u64 = candidates.iter().map(w).sum();
            if total == 0 {
                0
            } else {
                let mut r = fastrand::u64(0..total);
                candidates
                    .iter()
                    .position(|t| {
                        let wt = w(t);
                        if r < wt {
                            true
                        } else {
                            r -= wt;
                            false
                        }
                    })
                    .expect("r < total")
            }
        }
        _ => 0,
    };
    let mut targets = Vec::with_capacity(1 + view.fallbacks.len());
    targets.push(candidates.swap_remove(chosen));
    for f in &view.fallbacks {
        targets.push(catalog.resolve(f).map_err(|e| not_found(e, "fallbacks"))?);
    }
    Ok(targets)
}

/// Why the last target could not be served.
enum Exhausted {
    Failed(Failure, Arc<str>),
    CoolingDown(Duration, Arc<str>),
    KeysRejected(Arc<str>),
}

async fn attempt_all(
    gw: &Gateway,
    routes: &Routes,
    fin: &mut Finisher,
    obj: &RawObject<'_>,
    view: &RequestView,
    targets: &[Target],
    plans: &[Planned<'_>],
) -> Result<Reply, ProxyError> {
    let mut last: Option<Exhausted> = None;
    let endpoint = fin.ctx().endpoint;
    for index in health_order(gw, routes, targets) {
        let target = &targets[index];
        let p = &target.provider;
        let Planned {
            path,
            body,
            forwarded,
            ask_usage,
        } = &plans[index];
        let (ask_usage, forwarded) = (*ask_usage, *forwarded);
        let client = &routes.clients[p.index];
        let mut rejected: Vec<usize> = Vec::new();
        let mut retries = 0u32;
        loop {
            let key = match choose_key(gw, routes, target, &rejected) {
                Ok(k) => k,
                Err(NoKey::CoolingDown(d)) => {
                    last = Some(Exhausted::CoolingDown(d, p.name.clone()));
                    break;
                }
                Err(NoKey::Exhausted) => {
                    last = Some(Exhausted::KeysRejected(p.name.clone()));
                    break;
                }
            };
            let ctx = fin.ctx();
            ctx.on_target(index, target, key);
            ctx.attempts += 1;
            let mut span = attempt_span(ctx, target, retries);
            let route = gw.health.route(&route_id(target, key));
            let in_flight = route.begin();
            let sent = Instant::now();
            let healthy = |route: &crate::health::RouteHealth| {
                let latency_ms = sent.elapsed().as_secs_f64() * 1000.0;
                route.observe(Outcome::Success { latency_ms }, now_ms());
            };
            let out = upstream::Outgoing {
                path,
                forwarded,
                body: body.clone(),
                stream: view.stream,
                trace: span.context(),
            };
            let failure = match upstream::send(client, target, key, out).await {
                Ok(resp) if view.stream => {
                    let resp = native::upstream_stream(resp, target.wire);
                    // Upstreams that never report usage on streams are counted instead.
                    let count_from =
                        (!p.stream_usage).then(|| tokens::count(&openai::prompt_text(obj)));
                    match stream::prefetch(resp, p.upstream.idle_timeout, ask_usage, count_from)
                        .await
                    {
                        Ok(pre) => {
                            healthy(&route);
                            let ctx = fin.ctx();
                            ctx.upstream += sent.elapsed();
                            ctx.ttft = Some(ctx.started.elapsed());
                            span.set("http.response.status_code", 200u16);
                            ctx.attempt_span = span;
                            return Ok(Reply::Stream(pre));
                        }
                        Err(f) => f,
                    }
                }
                Ok(resp) => {
                    let status = resp.status();
                    let content_type = resp.headers().get(header::CONTENT_TYPE).cloned();
                    match upstream::read_body(resp.into_body(), p.upstream.idle_timeout).await {
                        Ok(bytes) => match endpoints::answer(endpoint, target, obj, &bytes) {
                            Some(bytes) => {
                                healthy(&route);
                                let ctx = fin.ctx();
                                ctx.upstream += sent.elapsed();
                                ctx.usage = unit::usage(endpoint, &bytes, ctx.characters);
                                if status.is_success() {
                                    ctx.cache.keep_whole(&bytes);
                                }
                                span.set("http.response.status_code", status.as_u16());
                                ctx.attempt_span = span;
                                return Ok(Reply::Whole(whole(status, content_type, bytes)));
                            }
                            None => Failure::Network(format!(
                                "the answer is not a {} response",
                                target.wire.label()
                            )),
                        },
                        Err(f) => f,
                    }
                }
                Err(f) => f,
            };
            drop(in_flight);
            fin.ctx().upstream += sent.elapsed();
            if let Failure::Status { status, .. } = &failure {
                span.set("http.response.status_code", status.as_u16());
            }
            span.fail(failure.cause(), failure.describe(&p.name));
            drop(span);
            if let Some(outcome) = health_outcome(&failure) {
                route.observe(outcome, now_ms());
            }
            let m = &gw.metrics;
            m.upstream_errors
                .with_label_values(&[&p.name, failure.cause()])
                .inc();
            tracing::debug!(provider = %p.name, model = %target.model, cause = failure.cause(), "upstream attempt failed");
            match failure.next() {
                Next::Retry if retries < p.upstream.max_retries => {
                    retries += 1;
                    m.retries.with_label_values(&[&p.name, "retry"]).inc();
                    let pause = backoff(retries, p.upstream.backoff_base, p.upstream.backoff_max);
                    tokio::time::sleep(pause).await;
                    fin.ctx().upstream += pause;
                }
                // The next pick_key either finds another key or says why not.
                Next::RotateKey(cool) if key.is_some() => {
                    routes
                        .catalog
                        .cool_down(target, key.expect("checked"), cool);
                    m.retries
                        .with_label_values(&[&p.name, "rate_limited_key"])
                        .inc();
                }
                Next::DropKey if key.is_some() => {
                    rejected.push(key.expect("checked"));
                    m.retries
                        .with_label_values(&[&p.name, "rejected_key"])
                        .inc();
                }
                Next::GiveUp => {
                    let Failure::Status {
                        status,
                        body,
                        content_type,
                        ..
                    } = &failure
                    else {
                        unreachable!("only statuses give up")
                    };
                    fin.ctx().error = Some(failure.describe(&p.name));
                    if target.wire != Format::OpenAi {
                        // The pipeline speaks OpenAI: an upstream's own error shape is rewritten.
                        let message = openai::error_message(body)
                            .map(|m| openai::redact(&m))
                            .unwrap_or_else(|| failure.describe(&p.name));
                        let e = ProxyError::new(ErrorKind::InvalidRequest, message);
                        return Ok(Reply::Whole(whole(
                            *status,
                            None,
                            openai::error_body(&e.object()),
                        )));
                    }
                    // The provider's own error, without its account details.
                    return Ok(Reply::Whole(whole(
                        *status,
                        content_type.clone(),
                        openai::redact_error_body(body),
                    )));
                }
                _ => {
                    last = Some(Exhausted::Failed(failure, p.name.clone()));
                    break;
                }
            }
        }
    }
    Err(final_error(last.expect("at least one target was tried")))
}

/// The span of one upstream attempt, a child of the request's.
fn attempt_span(ctx: &Ctx, target: &Target, retry: u32) -> Span {
    let operation = ctx.operation();
    let mut span = ctx
        .span
        .child(|| format!("{operation} {}", target.model), Kind::Client);
    if span.is_recording() {
        let p = &target.provider;
        span.set("gen_ai.operation.name", operation);
        span.set(
            "gen_ai.provider.name",
            otel::gen_ai_provider(p.kind.preset().name),
        );
        span.set("gen_ai.request.model", target.model.clone());
        if let Ok(url) = p.base_url.parse::<http::Uri>() {
            span.set_some("server.address", url.host().map(str::to_string));
            span.set_some("server.port", url.port_u16());
        }
        span.set("tollgate.provider", &p.name);
        span.set_some("tollgate.provider_key", ctx.key.as_ref());
        span.set("tollgate.attempt", ctx.attempts);
        span.set("tollgate.retry", retry);
        span.set("tollgate.fallback_index", ctx.target_index);
    }
    span
}

/// Routing rules: the first rule in scope whose condition holds replaces the
/// requested model with its targets (the one drawn by weight, then the
/// others), ahead of the request's own fallbacks.
fn apply_rules(
    gw: &Gateway,
    rules: &crate::rules::RuleSet,
    headers: &http::HeaderMap,
    caller: Option<&KeyView>,
    obj: &RawObject<'_>,
    view: &mut RequestView,
) {
    let input = crate::rules::RuleInput {
        model: view.model.clone(),
        headers: headers
            .iter()
            .filter(|(name, _)| !is_secret_header(name.as_str()))
            .filter_map(|(n, v)| Some((n.as_str().to_string(), v.to_str().ok()?.to_string())))
            .collect(),
        key: caller.map(|k| k.key.id.clone()),
        team: caller.and_then(|k| k.key.team_id.clone()),
        customer: caller.and_then(|k| k.customer_id.clone()),
        tokens: openai::prompt_token_bound(obj),
        budget_used_percent: caller.map_or(0.0, |k| gw.governance.budget_used_percent(k)),
    };
    let routed = rules.route(&input, fastrand::f64(), |rule, e| {
        tracing::warn!(%rule, error = %e, "routing rule condition failed; skipped");
    });
    if let Some(routed) = routed {
        let mut targets = routed.targets.into_iter();
        if let Some(first) = targets.next() {
            view.model = first;
            let mut fallbacks: Vec<String> = targets.collect();
            fallbacks.append(&mut view.fallbacks);
            view.fallbacks = fallbacks;
        }
    }
}

/// Headers a routing rule never sees: credentials.
fn is_secret_header(name: &str) -> bool {
    matches!(
        name,
        "authorization" | "x-api-key" | "x-goog-api-key" | "api-key" | "x-tollgate-vk" | "cookie"
    )
}

/// A route's identity for health: provider, key name (`-` without keys), model.
fn route_id(target: &Target, key: Option<usize>) -> RouteId {
    RouteId {
        provider: target.provider.name.to_string(),
        key: key.map_or_else(
            || "-".to_string(),
            |k| target.provider.keys[k].name.to_string(),
        ),
        model: target.label.to_string(),
    }
}

/// What a failed attempt says about its route: rate limits pause it, server
/// errors and network failures count against it; the client's own errors
/// (other 4xx) say nothing.
fn health_outcome(f: &Failure) -> Option<Outcome> {
    match f {
        Failure::Status {
            status,
            retry_after,
            ..
        } if status.as_u16() == 429 => Some(Outcome::RateLimited {
            retry_after_ms: retry_after.map_or(1_000, |d| d.as_millis() as u64),
        }),
        Failure::Status { status, .. } if status.is_client_error() => None,
        _ => Some(Outcome::Failure),
    }
}

/// The order to try targets in: as requested (model, then fallbacks), except
/// that targets whose every route is failed or paused go after the others.
fn health_order(gw: &Gateway, routes: &Routes, targets: &[Target]) -> Vec<usize> {
    if targets.len() < 2 {
        return (0..targets.len()).collect();
    }
    let now = now_ms();
    let alive = |t: &Target| -> bool {
        let keys = routes.catalog.usable_keys(t, &[]);
        let ids: Vec<RouteId> = if t.provider.keys.is_empty() {
            vec![route_id(t, None)]
        } else {
            keys.iter().map(|&k| route_id(t, Some(k))).collect()
        };
        ids.iter()
            .any(|id| gw.health.route(id).score(1.0, now) > 0.0)
    };
    let (up, down): (Vec<usize>, Vec<usize>) =
        (0..targets.len()).partition(|&i| alive(&targets[i]));
    up.into_iter().chain(down).collect()
}

/// The key for the next attempt at `target`: by power of two choices over
/// the routes' health scores (weights included); by weight alone when
/// health rules every key out, so a failed route still serves as its own
/// probe when nothing else is left.
fn choose_key(
    gw: &Gateway,
    routes: &Routes,
    target: &Target,
    rejected: &[usize],
) -> Result<Option<usize>, NoKey> {
    let usable = routes.catalog.usable_keys(target, rejected);
    if usable.len() < 2 {
        return routes.catalog.pick_key(target, rejected);
    }
    let ids: Vec<RouteId> = usable.iter().map(|&k| route_id(target, Some(k))).collect();
    let candidates: Vec<(usize, f64, &RouteId)> = usable
        .iter()
        .zip(&ids)
        .map(|(&k, id)| (k, f64::from(target.provider.keys[k].weight), id))
        .collect();
    let mut rng = fastrand::Rng::with_seed(fastrand::u64(..));
    match gw.health.choose(&candidates, now_ms(), &mut rng) {
        Some(k) => Ok(Some(k)),
        None => routes.catalog.pick_key(target, rejected),
    }
}

fn whole(status: StatusCode, content_type: Option<HeaderValue>, body: Bytes) -> Response<Body> {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        content_type.unwrap_or(HeaderValue::from_static("application/json")),
    );
    resp
}

/// Exponential backoff with equal jitter: half the step fixed, half random.
fn backoff(retry: u32, base: Duration, max: Duration) -> Duration {
    let step = base.saturating_mul(1u32 << (retry - 1).min(16)).min(max);
    let half = step / 2;
    half + Duration::from_nanos(fastrand::u64(0..=half.as_nanos() as u64))
}

fn final_error(last: Exhausted) -> ProxyError {
    match last {
        Exhausted::CoolingDown(d, provider) => {
            let mut e = ProxyError::new(
                ErrorKind::RateLimited,
                format!(
                    "every key of provider '{provider}' is rate-limited; retry after {}s",
                    d.as_secs().max(1)
                ),
            );
            e.retry_after = Some(d.as_secs_f64().ceil().max(1.0) as u64);
            e
        }
        Exhausted::KeysRejected(provider) => ProxyError::new(
            ErrorKind::UpstreamFailed,
            format!("provider '{provider}' rejected every configured key"),
        ),
        Exhausted::Failed(f, provider) => {
            let message = f.describe(&provider);
            match &f {
                f if f.is_timeout() => ProxyError::new(ErrorKind::UpstreamTimeout, message),
                Failure::Status {
                    status,
                    retry_after,
                    ..
                } if status.as_u16() == 429 => {
                    let mut e = ProxyError::new(ErrorKind::RateLimited, message);
                    e.retry_after =
                        Some(retry_after.map_or(1, |d| d.as_secs_f64().ceil().max(1.0) as u64));
                    e
                }
                Failure::Status { status, .. } if status.as_u16() == 404 => {
                    ProxyError::new(ErrorKind::ModelNotFound, message).with_param(Some("model"))
                }
                _ => ProxyError::new(ErrorKind::UpstreamFailed, message),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_within_bounds() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(2);
        for _ in 0..200 {
            let b1 = backoff(1, base, max);
            assert!(b1 >= Duration::from_millis(50) && b1 <= base, "{b1:?}");
            let b3 = backoff(3, base, max);
            assert!(
                b3 >= Duration::from_millis(200) && b3 <= Duration::from_millis(400),
                "{b3:?}"
            );
            let b30 = backoff(30, base, max);
            assert!(b30 >= Duration::from_secs(1) && b30 <= max, "{b30:?}");
        }
    }

    #[test]
    fn final_errors_keep_status_semantics() {
        let p: Arc<str> = "p".into();
        assert_eq!(
            final_error(Exhausted::CoolingDown(
                Duration::from_millis(1500),
                p.clone()
            ))
            .retry_after,
            Some(2)
        );
        assert_eq!(
            final_error(Exhausted::KeysRejected(p.clone())).status(),
            502
        );
        assert_eq!(
            final_error(Exhausted::Failed(
                Failure::FirstByteTimeout(Duration::from_secs(1)),
                p.clone()
            ))
            .status(),
            504
        );
        assert_eq!(
            final_error(Exhausted::Failed(Failure::Network("x".into()), p)).status(),
            502
        );
    }
}
