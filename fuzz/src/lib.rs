//! The fuzz targets: one function per parser of untrusted bytes, each
//! running the functions the gateway itself runs on those bytes, in the
//! order it runs them. `fuzz_targets/*.rs` hand them to libFuzzer
//! (`scripts/fuzz.sh`); `tests/fuzz_replay.rs` runs every one over its seeds
//! and their mutations in the test command, so a regression is caught
//! without a fuzzer.
//!
//! A target panics only where the gateway would: any panic is a bug. Where
//! the gateway relies on what it wrote itself (a translated body is a JSON
//! object, an encoded envelope decodes), the target asserts it.

use std::sync::Mutex;

use serde_json::{Map, Value};
use tollgate::cache::key::{Scope, keys};
use tollgate::providers::bound::{self, CapField, Kind};
use tollgate::providers::openai::{self, Endpoint, RawObject, RequestView};
use tollgate::providers::sse::SseParser;
use tollgate::translate::{self, Format};

/// A fuzz target: any bytes in, a panic only for a bug.
pub type Target = fn(&[u8]);

/// Every target, by name: what `scripts/fuzz.sh` and the replay test run.
pub const TARGETS: &[(&str, Target)] = &[
    ("openai_request", openai_request),
    ("anthropic_request", anthropic_request),
    ("gemini_request", gemini_request),
    ("bedrock_request", bedrock_request),
    ("responses_request", responses_request),
    ("upstream_response", upstream_response),
    ("sse_stream", sse_stream),
    ("stream_translate", stream_translate),
    ("mcp_message", mcp_message),
    ("legacy_sse", legacy_sse),
    ("cluster_envelope", cluster_envelope),
    ("admin_body", admin_body),
    ("codemode_worker", codemode_worker),
    ("config_file", config_file),
    ("cache_key", cache_key),
    ("aws_eventstream", aws_eventstream),
    ("vertex_token", vertex_token),
    ("served_embedding", served_embedding),
    ("session_cookie", session_cookie),
    ("audit_entries", audit_entries),
    ("traceparent", traceparent),
    ("multipart_form", multipart_form),
    ("endpoint_answer", endpoint_answer),
    ("oauth_answer", oauth_answer),
];

const WIRES: [Format; 5] = [
    Format::OpenAi,
    Format::Anthropic,
    Format::Gemini,
    Format::Bedrock,
    Format::Cohere,
];
const CLIENTS: [Format; 5] = [
    Format::OpenAi,
    Format::Anthropic,
    Format::Gemini,
    Format::Responses,
    Format::Bedrock,
];

/// The first byte picks among `n` choices; the rest is the input.
fn pick(data: &[u8], n: usize) -> (usize, &[u8]) {
    match data.split_first() {
        Some((b, rest)) => (*b as usize % n, rest),
        None => (0, data),
    }
}

/// Bounds a body the gateway wrote for `wire`, as the proxy does before
/// admission. The body is the gateway's own: it must be a JSON object.
fn bound_of(wire: Format, body: &mut bytes::Bytes) {
    for (kind, cap_field) in [
        (Kind::Chat, CapField::MaxCompletionTokens),
        (Kind::Chat, CapField::MaxTokens),
        (Kind::Completions, CapField::MaxTokens),
        (Kind::Embeddings, CapField::MaxTokens),
    ] {
        let mut b = body.clone();
        if let Err(e) = bound::enforce(wire, kind, cap_field, &mut b, 4096) {
            assert_ne!(
                e.field, "body",
                "the gateway wrote a body that is not an object"
            );
        }
    }
}

/// What the proxy reads of an OpenAI-format body (the client's, or the one
/// a translated request becomes), and every upstream body it builds from it.
fn pipeline(body: &[u8], canonical: Option<&translate::Request>) {
    let Ok(obj) = RawObject::parse(body) else {
        return;
    };
    for ep in [
        Endpoint::ChatCompletions,
        Endpoint::Completions,
        Endpoint::Embeddings,
    ] {
        let _ = RequestView::read(&obj, ep);
    }
    let _ = openai::prompt_token_bound(&obj);
    let text = openai::prompt_text(&obj);
    let _ = tollgate::providers::tokens::count(&text);
    let mut fast = openai::upstream_body(&obj, "model-x", true);
    bound_of(Format::OpenAi, &mut fast);
    let owned;
    let canonical = match canonical {
        Some(c) => c,
        None => {
            let Ok(v) = serde_json::from_slice::<Value>(body) else {
                return;
            };
            let Ok(c) = translate::openai::request_from_openai(&v) else {
                return;
            };
            owned = c;
            &owned
        }
    };
    for wire in WIRES {
        for reasoning in [false, true] {
            let mut c = canonical.clone();
            c.max_tokens.get_or_insert(1024);
            let (_path, mut body) =
                translate::upstream_request(wire, &c, "model-x", true, reasoning);
            bound_of(wire, &mut body);
        }
    }
}

/// An OpenAI-format request body (chat, completions, embeddings).
pub fn openai_request(data: &[u8]) {
    if let Ok(s) = std::str::from_utf8(data)
        && openai::check_model_id(s).is_ok()
    {
        let _ = openai::path_segment(s);
    }
    pipeline(data, None);
}

/// A request in another format: read into canonical form, then every body
/// the proxy builds from it, the client's own format passed through.
fn foreign_request(format: Format, data: &[u8]) {
    let rename = |m: &str| (m == "claude-tier").then(|| "model-y".to_string());
    let Ok(inbound) = translate::read_request(format, data, rename) else {
        return;
    };
    assert!(
        RawObject::parse(&inbound.internal).is_ok(),
        "the internal body of a translated request does not parse"
    );
    if let Some(mut body) = translate::passthrough_body(format, data, "model-x") {
        bound_of(format, &mut body);
    }
    pipeline(&inbound.internal, Some(&inbound.request));
}

pub fn anthropic_request(data: &[u8]) {
    foreign_request(Format::Anthropic, data);
}

pub fn gemini_request(data: &[u8]) {
    foreign_request(Format::Gemini, data);
}

pub fn responses_request(data: &[u8]) {
    foreign_request(Format::Responses, data);
}

pub fn bedrock_request(data: &[u8]) {
    foreign_request(Format::Bedrock, data);
}

/// An upstream's whole answer (success or error), in each wire format, into
/// each client format; and an upstream's `Retry-After`.
pub fn upstream_response(data: &[u8]) {
    let (w, body) = pick(data, WIRES.len() + 1);
    if w == WIRES.len() {
        if let Ok(v) = http::HeaderValue::from_bytes(body) {
            let mut h = http::HeaderMap::new();
            h.insert(http::header::RETRY_AFTER, v);
            let _ = tollgate::proxy::upstream::retry_after(&h);
        }
        return;
    }
    let _ = openai::usage_of(body);
    let _ = openai::error_message(body);
    let _ = openai::redact_error_body(body);
    if let Ok(s) = std::str::from_utf8(body) {
        let _ = openai::redact(s);
    }
    if let Some(internal) = translate::upstream_response(WIRES[w], body)
        && let Some(r) = translate::read_response(&internal, "model-x")
    {
        for format in CLIENTS {
            let _ = translate::client_response(format, &r, "resp_1");
        }
    }
}

/// Splits `data` into pieces at points its own bytes choose, so a stream
/// arrives in awkward chunks.
fn pieces(data: &[u8]) -> Vec<&[u8]> {
    let (step, rest) = pick(data, 64);
    let step = step + 1;
    rest.chunks(step).collect()
}

/// An upstream OpenAI-format event stream, as the proxy reads it: events,
/// chunk kinds, text for token estimates, usage.
pub fn sse_stream(data: &[u8]) {
    let mut parser = SseParser::new();
    for piece in pieces(data) {
        if parser.push(piece).is_err() {
            return;
        }
        while let Some(ev) = parser.next_event() {
            let _ = ev.event_type();
            let _ = translate::openai::read_chunk(&ev);
            if let Some(d) = ev.data() {
                let _ = openai::chunk_kind(&d);
                let _ = openai::chunk_text(&d);
                let _ = openai::usage_of(d.as_bytes());
            }
        }
    }
}

/// An upstream stream in a wire format, decoded to internal chunks and
/// encoded into a client's format, as a translated stream is relayed.
pub fn stream_translate(data: &[u8]) {
    let (choice, rest) = pick(data, WIRES.len() * CLIENTS.len());
    let (wire, client) = (
        WIRES[choice / CLIENTS.len()],
        CLIENTS[choice % CLIENTS.len()],
    );
    let mut decoder = translate::decoder(wire);
    let mut encoder = translate::encoder(client, "model-x", "resp_1", Box::new(|_| {}));
    let mut relay = |internal: &[u8]| match &mut encoder {
        Some(e) => e.push(internal).is_ok(),
        None => true,
    };
    for piece in pieces(rest) {
        let internal = match &mut decoder {
            Some(d) => match d.push(piece) {
                Ok(b) => b,
                Err(_) => return,
            },
            None => bytes::Bytes::copy_from_slice(piece),
        };
        if !relay(&internal) {
            return;
        }
    }
    if let Some(d) = &mut decoder {
        let tail = d.finish();
        relay(&tail);
    }
    if let Some(e) = &mut encoder {
        let _ = e.finish();
    }
}

/// A JSON-RPC message a client POSTs to `/mcp`, read and its params decoded
/// as the server does; and what an upstream MCP server answers with (its
/// messages, its tool list, which becomes the index and Code Mode stubs).
pub fn mcp_message(data: &[u8]) {
    use rmcp::model::{CallToolRequestParams, ListToolsResult, ServerJsonRpcMessage};
    use tollgate::mcp::catalog::template_matches;
    use tollgate::mcp::era;
    use tollgate::mcp::server::{negotiate, read_message};
    if let Ok(Some(r)) = read_message(data) {
        // The routing headers as a client sends them, from the message itself
        // (so that the checks get past their first steps).
        let mut headers = http::HeaderMap::new();
        let named = r
            .params
            .get("name")
            .or_else(|| r.params.get("uri"))
            .and_then(Value::as_str);
        let version = r
            .params
            .pointer("/_meta/io.modelcontextprotocol~1protocolVersion")
            .and_then(Value::as_str);
        for (header, value) in [
            (era::VERSION_HEADER, version),
            (era::METHOD_HEADER, Some(r.method.as_str())),
            (era::NAME_HEADER, named),
        ] {
            if let Some(v) = value.and_then(|v| http::HeaderValue::from_str(v).ok()) {
                headers.insert(header, v);
            }
        }
        if era::is_stateless(&headers, &r.method, &r.params) {
            let _ = era::check(&headers, &r.method, &r.params);
        }
        if r.method == "resources/read"
            && let Some(uri) = r.params.get("uri").and_then(Value::as_str)
        {
            let _ = template_matches("sample://files/{+path}", uri);
            let _ = template_matches("a://{x}/{y}{?q,r}", uri);
        }
        match r.method.as_str() {
            "initialize" => {
                let _ = negotiate(r.params.get("protocolVersion").and_then(Value::as_str));
            }
            "tools/call" => {
                if let Ok(p) = serde_json::from_value::<CallToolRequestParams>(r.params) {
                    let _ = tollgate::mcp::split_tool_name(&p.name);
                    let _ = tollgate::codemode::meta::MetaTool::parse(&p.name);
                }
            }
            _ => {}
        }
    }
    let _ = serde_json::from_slice::<ServerJsonRpcMessage>(data);
    mcp_catalog(data);
    if let Ok(list) = serde_json::from_slice::<ListToolsResult>(data) {
        let server = mcp_server();
        let index = tollgate::mcp::index::ToolIndex::build([(&server, list.tools.as_slice())]);
        let everything = tollgate::governance::ToolScope::new(None, &[]);
        let _ = index.list_json(&everything, "");
        let schemas: Vec<Value> = list
            .tools
            .iter()
            .map(|t| Value::Object((*t.input_schema).clone()))
            .collect();
        let specs: Vec<_> = list
            .tools
            .iter()
            .zip(&schemas)
            .map(|(t, schema)| tollgate::codemode::stubs::ToolSpec {
                server: "srv",
                name: &t.name,
                description: t.description.as_deref(),
                input_schema: schema,
            })
            .collect();
        let _ = tollgate::codemode::stubs::server_stub("srv", &specs);
        for s in &specs {
            let _ = tollgate::codemode::stubs::docs(s);
        }
    }
}

/// What an upstream server lists besides tools, as the catalog takes it:
/// every kind built, listed, and each template matched against itself and
/// against each listed URI (templates come from upstream servers, URIs from
/// clients).
fn mcp_catalog(data: &[u8]) {
    use rmcp::model::{ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult};
    use tollgate::mcp::catalog::{Catalog, Kind as Listing, Listed, template_matches};
    let mut listed = Listed::default();
    if let Ok(r) = serde_json::from_slice::<ListResourcesResult>(data) {
        listed.resources = r.resources;
    }
    if let Ok(t) = serde_json::from_slice::<ListResourceTemplatesResult>(data) {
        listed.templates = t.resource_templates;
    }
    if let Ok(p) = serde_json::from_slice::<ListPromptsResult>(data) {
        listed.prompts = p.prompts;
    }
    listed.bound();
    let server = mcp_server();
    let catalog = Catalog::build([(&server, &listed)]);
    let everything = tollgate::governance::ToolScope::new(None, &[]);
    for kind in Listing::ALL {
        let listing = catalog.list_json(kind, &everything, "");
        assert!(
            serde_json::from_str::<Value>(listing.get()).is_ok(),
            "listings are JSON"
        );
    }
    for t in &listed.templates {
        let _ = template_matches(&t.uri_template, &t.uri_template);
        for r in &listed.resources {
            let _ = template_matches(&t.uri_template, &r.uri);
            let _ = catalog.resource(&everything, &r.uri);
        }
    }
    for p in &listed.prompts {
        let name = tollgate::mcp::tool_name("srv", &p.name);
        assert!(
            catalog.prompt(&everything, &name).is_some(),
            "a listed prompt is found"
        );
    }
}

fn mcp_server() -> tollgate::governance::objects::McpServer {
    serde_json::from_value(serde_json::json!({
        "id": "srv",
        "transport": {"type": "http", "url": "http://127.0.0.1:9/mcp"},
        "auto_execute": ["read_*"],
        "code_mode": true,
        "created_at": 0
    }))
    .expect("a fixed server decodes")
}

/// The legacy HTTP+SSE MCP transport, client side: the `endpoint` event (the
/// first line) resolved against the stream's URL, and the event stream (the
/// rest) read into server messages.
pub fn legacy_sse(data: &[u8]) {
    let split = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let (endpoint, stream) = data.split_at(split);
    if let Ok(e) = std::str::from_utf8(endpoint) {
        let base: http::Uri = "http://mcp.internal:8080/sse/stream"
            .parse()
            .expect("a fixed URL");
        if let Ok(uri) = tollgate::mcp::sse_client::resolve(&base, e.trim()) {
            assert_eq!(
                uri.authority(),
                base.authority(),
                "an endpoint left the origin"
            );
            assert_eq!(uri.scheme(), base.scheme(), "an endpoint changed scheme");
        }
    }
    let mut parser = SseParser::new();
    for piece in pieces(stream) {
        if parser.push(piece).is_err() {
            return;
        }
        while let Some(ev) = parser.next_event() {
            if let Some(d) = ev.data() {
                let _ = serde_json::from_str::<rmcp::model::ServerJsonRpcMessage>(&d);
            }
        }
    }
}

/// A governance instance on a real store in a temporary directory, reopened
/// fresh after `WRITES_PER_STORE` writes so a long run does not grow it
/// without end.
struct Scratch {
    _dir: tempfile::TempDir,
    gov: tollgate::governance::Governance,
    /// A small cache with a 4-dimensional model, for peers' shared answers.
    cache: tollgate::cache::store::CacheStore,
    writes: usize,
    fixtures: Fixtures,
}

#[derive(Default)]
struct Fixtures {
    customer: String,
    team: String,
    key: String,
}

const WRITES_PER_STORE: usize = 2_000;

impl Scratch {
    fn open() -> Scratch {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = tollgate::store::Store::open(dir.path()).expect("a store opens");
        let config = tollgate::config::Config::default();
        let cache = tollgate::cache::store::CacheStore::open(
            store.clone(),
            1 << 20,
            0,
            Some(tollgate::cache::store::Model {
                fingerprint: 1,
                dims: Some(4),
            }),
        )
        .expect("the cache opens");
        let gov = tollgate::governance::Governance::open(
            store,
            std::sync::Arc::new(tollgate::state::hlc::SystemClock),
            &config,
        )
        .expect("governance opens");
        let mut fixtures = Fixtures::default();
        use tollgate::governance::objects::{Customer, Team};
        let obj = |v: Value| v.as_object().cloned().expect("an object");
        fixtures.customer = gov
            .create::<Customer>(obj(serde_json::json!({"name": "c"})))
            .expect("a customer")
            .id;
        fixtures.team = gov
            .create::<Team>(obj(
                serde_json::json!({"name": "t", "customer_id": fixtures.customer}),
            ))
            .expect("a team")
            .id;
        fixtures.key = gov
            .create_key(obj(
                serde_json::json!({"name": "k", "team_id": fixtures.team}),
            ))
            .expect("a key")
            .key
            .id;
        Scratch {
            _dir: dir,
            gov,
            cache,
            writes: 0,
            fixtures,
        }
    }

    /// Runs `f` on the scratch governance, renewed when it has taken enough.
    fn with(slot: &Mutex<Option<Scratch>>, f: impl FnOnce(&mut Scratch)) {
        let mut guard = slot.lock().unwrap_or_else(|p| p.into_inner());
        if guard.as_ref().is_none_or(|s| s.writes >= WRITES_PER_STORE) {
            *guard = None;
            *guard = Some(Scratch::open());
        }
        f(guard.as_mut().expect("just opened"));
    }
}

static CLUSTER: Mutex<Option<Scratch>> = Mutex::new(None);
static ADMIN: Mutex<Option<Scratch>> = Mutex::new(None);

/// A peer's envelope: decoded as the transport does, re-encoded to the same
/// bytes, and what it carries handled as the cluster layer does (changes
/// merged into governance, digests and wants answered, health heard,
/// allowance requests weighed, peers' cached answers imported).
pub fn cluster_envelope(data: &[u8]) {
    use tollgate::cluster::proto::{Body, Envelope};
    let Ok(env) = Envelope::decode(data) else {
        return;
    };
    let bytes = env.encode();
    let again = Envelope::decode(&bytes).expect("an encoded envelope decodes");
    assert_eq!(
        again.encode(),
        bytes,
        "an envelope does not re-encode alike"
    );
    if let Body::Swim(data) = &env.body {
        swim(data);
        return;
    }
    Scratch::with(&CLUSTER, |s| match &env.body {
        Body::Changes(c) | Body::SyncFinish(c) => {
            s.writes += c.len();
            let _ = s.gov.apply_remote(c);
        }
        Body::SyncReply { changes, wants } => {
            s.writes += changes.len();
            let _ = s.gov.apply_remote(changes);
            let _ = s.gov.changes_for(wants);
        }
        Body::SyncDigest(items) => {
            let names: Vec<String> = items.iter().map(|(n, _)| n.clone()).collect();
            let _ = s.gov.changes_for(&names);
        }
        Body::AllowanceRequest { key, amount } => {
            let _ = s.gov.give_allowance(key, env.from, *amount);
        }
        Body::Health(summaries) => {
            let book = tollgate::health::HealthBook::default();
            book.hear(env.from, summaries, 1_000);
            let _ = book.view(1_000);
        }
        Body::SyncPage {
            after,
            upto,
            digest,
        } => {
            let mine = tollgate::cluster::sync::sorted(s.gov.digest());
            let gov = &s.gov;
            let _ = tollgate::cluster::sync::answer(
                &mine,
                after.as_deref(),
                upto.as_deref(),
                digest,
                64 * 1024,
                |name| gov.changes_for(&[name.to_string()]).pop().map(|c| (c, 1)),
            );
        }
        Body::SyncPageReply { changes, wants, .. } => {
            s.writes += changes.len();
            let _ = s.gov.apply_remote(changes);
            let _ = s.gov.changes_for(wants);
        }
        Body::SyncGive(c) => {
            s.writes += c.len();
            let _ = s.gov.apply_remote(c);
        }
        Body::Lease(asks) => {
            s.writes += asks.len();
            let _ = s.gov.grant_leases(env.from, asks.clone());
        }
        Body::LeaseGrant(grants) => {
            for (key, ceiling) in grants {
                s.gov.raise_lease(key, env.from, *ceiling);
            }
        }
        Body::CacheEntries(rows) => {
            s.writes += rows.len();
            for row in rows {
                let _ = s.cache.import(row, 1_000);
            }
        }
        _ => {}
    });
}

/// The CEL parser (antlr-generated) panics on some malformed expressions;
/// `rules::Condition::compile` catches those and answers 400. libFuzzer's
/// panic hook would abort on them first, so panics raised inside the parser
/// are passed over here; any other panic still reaches the previous hook.
fn pass_over_caught_cel_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let file = info.location().map_or("", |l| l.file());
            if file.contains("/antlr4rust-") || file.contains("/cel-parser-") {
                return;
            }
            previous(info);
        }));
    });
}

type Swim = foca::Foca<
    tollgate::cluster::membership::Member,
    foca::PostcardCodec,
    rand::rngs::StdRng,
    foca::NoCustomBroadcast,
>;

/// A SWIM message, into a foca instance configured as a node's, renewed
/// every so often so that the members it learns do not pile up.
fn swim(data: &[u8]) {
    use rand::SeedableRng;
    use tollgate::cluster::membership::{Member, swim_config};
    thread_local! {
        static SWIM: std::cell::RefCell<Option<(Swim, usize)>> = const { std::cell::RefCell::new(None) };
    }
    SWIM.with(|cell| {
        let mut cell = cell.borrow_mut();
        if cell.as_ref().is_none_or(|(_, n)| *n >= WRITES_PER_STORE) {
            let me = Member {
                node: 1,
                addr: "127.0.0.1:7946".parse().expect("a fixed address"),
                http: "127.0.0.1:8080".into(),
                wire: (1, 1),
                bump: 0,
            };
            let rng = rand::rngs::StdRng::seed_from_u64(1);
            *cell = Some((
                foca::Foca::new(me, swim_config(), rng, foca::PostcardCodec),
                0,
            ));
        }
        let (foca, n) = cell.as_mut().expect("just made");
        *n += 1;
        let mut runtime = foca::AccumulatingRuntime::new();
        let _ = foca.handle_data(data, &mut runtime);
        while runtime.to_send().is_some() {}
        while runtime.to_notify().is_some() {}
        while let Some((_, timer)) = runtime.to_schedule() {
            let _ = foca.handle_timer(timer, &mut foca::AccumulatingRuntime::new());
        }
    });
}

/// An admin API body, for each object the admin API writes from one:
/// created (then deleted, so the store stays small), patched, or put.
pub fn admin_body(data: &[u8]) {
    pass_over_caught_cel_panics();
    use tollgate::governance::objects::{
        Customer, McpServer, RoutingRule, Team, ToolGroup, VirtualKey,
    };
    let (op, body) = pick(data, 11);
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
        return;
    };
    let fields: Map<String, Value> = fields;
    Scratch::with(&ADMIN, |s| {
        s.writes += 1;
        let g = &s.gov;
        let f = &s.fixtures;
        match op {
            0 => {
                if let Ok(o) = g.create::<Customer>(fields) {
                    let _ = g.delete::<Customer>(&o.id);
                }
            }
            1 => {
                if let Ok(o) = g.create::<Team>(fields) {
                    let _ = g.delete::<Team>(&o.id);
                }
            }
            2 => {
                if let Ok(k) = g.create_key(fields) {
                    let _ = g.delete::<VirtualKey>(&k.key.id);
                }
            }
            3 => {
                if let Ok(o) = g.create::<RoutingRule>(fields) {
                    let _ = g.delete::<RoutingRule>(&o.id);
                }
            }
            4 => {
                let _ = g.put::<McpServer>("srv", fields);
            }
            5 => {
                let _ = g.put::<ToolGroup>("grp", fields);
            }
            6 => {
                let _ = g.set_provider("prov", fields);
            }
            7 => {
                let _ = g.set_price("openai/model-x", fields);
            }
            8 => {
                let _ = g.patch::<Customer>(&f.customer, fields);
            }
            9 => {
                let _ = g.patch::<Team>(&f.team, fields);
            }
            _ => {
                let _ = g.patch::<VirtualKey>(&f.key, fields);
            }
        }
    });
}

/// What a Code Mode worker (running a model's script) writes back to the
/// gateway: read line by line, bounded, its tool calls answered.
pub fn codemode_worker(data: &[u8]) {
    use tollgate::codemode::sandbox::{Limits, converse};
    let limits = Limits {
        max_output_bytes: 4096,
        max_tool_calls: 8,
        ..Limits::default()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    rt.block_on(async {
        let mut from = tokio::io::BufReader::new(data);
        let mut to = tokio::io::sink();
        let _ = converse(
            &mut from,
            &mut to,
            &limits,
            |server, tool, args| async move {
                if server.is_empty() {
                    Err(format!("no tool {tool}"))
                } else {
                    Ok(args)
                }
            },
        )
        .await;
    });
}

/// A config file, with environment overrides: the text up to a NUL byte is
/// the file, every line after it a `NAME=value` variable.
pub fn config_file(data: &[u8]) {
    let split = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let (file, env) = data.split_at(split);
    let Ok(text) = std::str::from_utf8(file) else {
        return;
    };
    let vars: Vec<(String, String)> = String::from_utf8_lossy(env)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let _ = tollgate::config::Config::from_parts(text, &vars);
}

/// A request body as the response cache keys it, through any surface, for
/// any upstream format: it never panics, and the same bytes key alike twice
/// (a key that changed between two identical requests would never hit).
pub fn cache_key(data: &[u8]) {
    let (pair, rest) = pick(data, CLIENTS.len() * WIRES.len());
    let client = CLIENTS[pair % CLIENTS.len()];
    let upstream = WIRES[pair / CLIENTS.len()];
    let scope = Scope {
        tenant: "team:t",
        target: "p/model-x",
        upstream,
    };
    match (keys(client, rest, &scope), keys(client, rest, &scope)) {
        (Ok(a), Ok(b)) => {
            assert!(a.exact == b.exact, "the same bytes keyed differently");
            assert!(
                a.semantic == b.semantic,
                "the same bytes partitioned differently"
            );
        }
        (Err(_), Err(_)) => {}
        _ => panic!("the same bytes were keyed once and refused once"),
    }
}

/// Bytes of a Bedrock stream in the pieces the first bytes choose: the
/// event-stream decoder yields messages whose re-encoding decodes to them,
/// or an error, and stays broken after one.
pub fn aws_eventstream(data: &[u8]) {
    use tollgate::providers::aws::eventstream::{Decoder, encode};
    let (piece, data) = pick(data, 64);
    let mut d = Decoder::new();
    for chunk in data.chunks(piece + 1) {
        d.push(chunk);
        loop {
            match d.next_message() {
                Ok(Some(m)) => {
                    let headers: Vec<(&str, _)> = m
                        .headers
                        .iter()
                        .map(|(n, v)| (n.as_str(), v.clone()))
                        .collect();
                    let mut again = Decoder::new();
                    again.push(&encode(&headers, &m.payload));
                    assert_eq!(
                        again.next_message(),
                        Ok(Some(m)),
                        "re-encoded message differs"
                    );
                }
                Ok(None) => break,
                Err(_) => {
                    assert!(d.next_message().is_err(), "a broken stream recovered");
                    return;
                }
            }
        }
    }
    let _ = d.finish();
}

/// A token endpoint's answer: a token and its lifetime, or an error.
pub fn vertex_token(data: &[u8]) {
    if let Ok((token, _)) = tollgate::providers::vertex::parse_token(data) {
        assert!(!token.is_empty(), "an empty token was accepted");
    }
}

/// A served embeddings model's answer: a unit vector within the bound, or
/// an error.
pub fn served_embedding(data: &[u8]) {
    use tollgate::cache::embed::{MAX_SERVED_DIMENSIONS, served_embedding};
    if let Ok(v) = served_embedding(data) {
        assert!(!v.is_empty() && v.len() <= MAX_SERVED_DIMENSIONS);
        let norm: f32 = v.iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-3, "not a unit vector: {norm}");
    }
}

/// A `Cookie` header as anyone may send it: never a session unless this
/// node issued it; a session it issued, altered anywhere, is refused.
pub fn session_cookie(data: &[u8]) {
    use tollgate::session::Sessions;
    let sessions = Sessions::new(
        "fuzz-admin-token-0123456789",
        Some("fuzz cluster secret, long enough"),
        std::time::Duration::from_secs(3600),
    );
    let mut headers = http::HeaderMap::new();
    if let Ok(v) = http::HeaderValue::from_bytes(data) {
        headers.insert(http::header::COOKIE, v);
    }
    assert!(
        sessions.from_headers(&headers, 1).is_none(),
        "a cookie this node never issued was accepted"
    );
    let (session, cookie) = sessions.issue(1, "adm_fuzz");
    let mut altered = cookie.clone().into_bytes();
    if let [at, flip, ..] = data
        && *flip != 0
    {
        let i = usize::from(*at) % altered.len();
        altered[i] ^= flip;
    }
    let altered = String::from_utf8_lossy(&altered);
    match sessions.verify(&altered, 1) {
        Some(s) => assert!(
            altered == cookie && s == session,
            "an altered session passed"
        ),
        None => assert_ne!(altered, cookie, "the issued session was refused"),
    }
}

static AUDIT: Mutex<Option<(tempfile::TempDir, tollgate::observability::audit::AuditLog)>> =
    Mutex::new(None);

/// A peer's answer to `audit_after`: whatever this node copies from it
/// links on, so every chain it holds still verifies.
pub fn audit_entries(data: &[u8]) {
    use tollgate::observability::audit::{AuditLog, Stored};
    let Ok(entries) = serde_json::from_slice::<Vec<Stored>>(data) else {
        return;
    };
    let mut guard = AUDIT.lock().unwrap_or_else(|p| p.into_inner());
    let (_, log) = guard.get_or_insert_with(|| {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = tollgate::store::Store::open(dir.path()).expect("a store");
        let log = AuditLog::open(store, 1).expect("an audit log");
        (dir, log)
    });
    if log.import(entries).is_ok_and(|n| n > 0) {
        for chain in log.verify().expect("the store reads") {
            assert!(
                chain.broken.is_none(),
                "an imported chain is broken: {chain:?}"
            );
        }
    }
}

/// A `traceparent` as a client sends it (as a header, or in an MCP
/// request's `params._meta`): a context read from it is written back as a
/// header that reads as the same context (asserted).
pub fn traceparent(data: &[u8]) {
    use tollgate::observability::otel::SpanContext;
    let Some(c) = SpanContext::parse(data) else {
        return;
    };
    let written = c.header();
    assert_eq!(written.len(), 55);
    assert_eq!(SpanContext::parse(written.as_bytes()), Some(c));
}

/// A transcription's `multipart/form-data` body and its audio file: a form
/// within the bounds or an error; a form the gateway rewrites with another
/// model parses back with that model and every other part.
pub fn multipart_form(data: &[u8]) {
    use tollgate::providers::multipart::{Form, MAX_PARTS, audio_seconds_bound};
    let bound = audio_seconds_bound(data);
    assert!(bound <= (data.len() as u64).div_ceil(750).max(1) || data.starts_with(b"RIFF"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let body = bytes::Bytes::copy_from_slice(data);
    let Ok(form) = rt.block_on(Form::read("multipart/form-data; boundary=fz", body)) else {
        return;
    };
    assert!(form.parts.len() <= MAX_PARTS);
    let _ = form.view();
    let written = form.encode_with("model", "m-1");
    let again = rt
        .block_on(Form::read(&form.content_type(), written))
        .expect("a form the gateway writes parses");
    assert_eq!(again.text("model"), Ok(Some("m-1")));
    let others = |f: &Form| {
        f.parts
            .iter()
            .filter(|p| p.name != "model")
            .map(|p| p.data.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        others(&again),
        others(&form),
        "parts other than the model survive"
    );
}

/// An upstream's answer to an endpoint beyond chat (the first byte picks
/// which): the usage read from it, and a Cohere embeddings answer rewritten
/// in OpenAI's shape, which is then JSON the gateway's own readers take.
pub fn endpoint_answer(data: &[u8]) {
    use tollgate::providers::endpoints::{embeddings_from_cohere, usage};
    const ENDPOINTS: [Endpoint; 8] = [
        Endpoint::ChatCompletions,
        Endpoint::Completions,
        Endpoint::Embeddings,
        Endpoint::Rerank,
        Endpoint::ImageGenerations,
        Endpoint::Speech,
        Endpoint::Transcriptions,
        Endpoint::Moderations,
    ];
    let (which, body) = pick(data, ENDPOINTS.len() * 2);
    let endpoint = ENDPOINTS[which / 2];
    let u = usage(endpoint, body, 7);
    if which / 2 >= 3 {
        // Read by the gateway, not taken from the upstream: never wrapped.
        assert_eq!(
            u.total_tokens,
            u.prompt_tokens.saturating_add(u.completion_tokens)
        );
    }
    if endpoint == Endpoint::Speech {
        assert_eq!(
            u.units.characters, 7,
            "speech bills the request's characters"
        );
    }
    if let Some(out) = embeddings_from_cohere(body, "m", which % 2 == 1) {
        let v: Value = serde_json::from_slice(&out).expect("the gateway writes JSON");
        assert!(v["data"].is_array());
        assert!(openai::usage_of(&out).is_some(), "its usage reads back");
    }
}

/// What the OAuth client of upstream MCP servers reads from the network: a
/// `WWW-Authenticate` challenge, protected-resource and authorization-server
/// metadata, a token answer; and the sealed `state` a callback brings back,
/// which opens only unaltered and only if this cluster sealed it (asserted).
pub fn oauth_answer(data: &[u8]) {
    use tollgate::mcp::oauth::{protocol, vault::Vault};
    let text = String::from_utf8_lossy(data);
    let _ = protocol::challenge_params(&text);
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        if let Ok(issuer) = protocol::issuer_of("https://mcp.example/.well-known/x", &v) {
            let _ = protocol::discovered(
                "https://mcp.example/mcp",
                &v,
                issuer,
                "https://as",
                &v,
                None,
            );
        }
        if let Ok(g) = protocol::granted(v) {
            assert!(http::HeaderValue::try_from(format!("Bearer {}", g.access_token)).is_ok());
        }
    }
    let vault = Vault::new([3; 32]);
    assert!(
        vault.open("state", &text).is_err(),
        "opened what it never sealed"
    );
    let sealed = vault.seal("state", data);
    let mut altered = sealed.clone().into_bytes();
    if let [at, flip, ..] = data
        && *flip != 0
    {
        let i = usize::from(*at) % altered.len();
        altered[i] ^= flip;
    }
    let altered = String::from_utf8_lossy(&altered);
    match vault.open("state", &altered) {
        Ok(plain) => assert!(
            altered == sealed && plain == data,
            "an altered state opened"
        ),
        Err(_) => assert_ne!(altered, sealed, "a sealed state did not open"),
    }
}
