//! A sample MCP server built on rmcp, for tests, demos and docker compose:
//! `tollgate sample-mcp --stdio | --http ADDR | --sse ADDR [--tools N] [--dir D]`.
//!
//! Real tools — `echo`, `add`, `write_file` and `read_file` (inside one
//! directory), `exit` (ends the process, to exercise restarts) — plus `N`
//! synthetic tools `synthetic_0..N` for scale tests; with `--progress-tool`,
//! `count` (reports progress, and notes a cancellation in its directory).
//! Resources: `readme` (`sample://readme`) and the template `file`
//! (`sample://files/{path}`, the directory's files); a prompt, `greet`. It
//! speaks both protocol eras, or only the session one with `--legacy-only`.
//! With `--oauth-issuer URL` its streamable HTTP is an OAuth-protected
//! resource of that authorization server ([`guard`]) and it has `whoami`.
//! `--sse` speaks the legacy HTTP+SSE transport (2024-11-05), which rmcp no
//! longer serves: the rmcp server runs over an in-memory pipe and this module
//! frames it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::{StatusCode, header};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, GetPromptRequestParams,
    GetPromptResponse, GetPromptResult, Implementation, JsonObject, ListPromptsResult,
    ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
    ProgressNotificationParam, Prompt, PromptMessage, ProtocolVersion, ReadResourceRequestParams,
    ReadResourceResponse, ReadResourceResult, Resource, ResourceContents, ResourceTemplate, Role,
    ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

pub mod guard;

/// The sample server's tools and where its files live.
#[derive(Clone)]
pub struct SampleServer {
    tools: Arc<Vec<Tool>>,
    dir: Arc<PathBuf>,
    legacy_only: bool,
}

/// The URI prefix of the `file` template's resources.
const FILES_URI: &str = "sample://files/";

fn schema(v: Value) -> Arc<JsonObject> {
    Arc::new(v.as_object().cloned().unwrap_or_default())
}

impl SampleServer {
    /// With `synthetic` generated tools, keeping files in `dir`.
    pub fn new(synthetic: usize, dir: PathBuf) -> SampleServer {
        let string = |d: &str| json!({"type": "string", "description": d});
        let mut tools = vec![
            Tool::new(
                "echo",
                "Returns its text",
                schema(
                    json!({"type": "object", "properties": {"text": string("text to return")}, "required": ["text"]}),
                ),
            ),
            Tool::new(
                "add",
                "Adds two numbers",
                schema(
                    json!({"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}, "required": ["a", "b"]}),
                ),
            ),
            Tool::new(
                "write_file",
                "Writes a file in the server's directory",
                schema(
                    json!({"type": "object", "properties": {"path": string("relative path"), "content": string("text")}, "required": ["path", "content"]}),
                ),
            ),
            Tool::new(
                "read_file",
                "Reads a file in the server's directory",
                schema(
                    json!({"type": "object", "properties": {"path": string("relative path")}, "required": ["path"]}),
                ),
            ),
            Tool::new(
                "exit",
                "Ends the server process (to test restarts)",
                schema(json!({"type": "object", "properties": {}})),
            ),
        ];
        for i in 0..synthetic {
            tools.push(Tool::new(
                format!("synthetic_{i}"),
                format!("Synthetic tool number {i}; returns its arguments"),
                schema(json!({"type": "object", "properties": {"value": string("anything")}})),
            ));
        }
        SampleServer {
            tools: Arc::new(tools),
            dir: Arc::new(dir),
            legacy_only: false,
        }
    }

    /// Adds `count`, which reports `n` steps of progress `delay_ms` apart
    /// and, if cancelled, writes `cancelled-count` in its directory.
    pub fn with_progress_tool(mut self) -> SampleServer {
        let mut tools = self.tools.as_ref().clone();
        tools.push(Tool::new(
            "count",
            "Counts to n, reporting progress",
            schema(json!({"type": "object", "properties": {
                "n": {"type": "integer"}, "delay_ms": {"type": "integer"}}, "required": ["n"]})),
        ));
        self.tools = Arc::new(tools);
        self
    }

    /// Adds `whoami`, which answers the user of the request's OAuth token.
    pub fn with_whoami(mut self) -> SampleServer {
        let mut tools = self.tools.as_ref().clone();
        tools.push(Tool::new(
            "whoami",
            "The user whose OAuth token the request carried",
            schema(json!({"type": "object", "properties": {}})),
        ));
        self.tools = Arc::new(tools);
        self
    }

    /// Speaks only the protocol versions with the `initialize` handshake.
    pub fn legacy_only(mut self) -> SampleServer {
        self.legacy_only = true;
        self
    }

    /// `count`: progress notifications while it counts, unless cancelled.
    async fn count(
        &self,
        args: &JsonObject,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<String, String> {
        let n = args
            .get("n")
            .and_then(Value::as_u64)
            .ok_or("'n' must be a whole number")?;
        let delay =
            Duration::from_millis(args.get("delay_ms").and_then(Value::as_u64).unwrap_or(0));
        let token = ctx.meta.get_progress_token();
        for i in 1..=n.min(1000) {
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = ctx.ct.cancelled() => {
                    let _ = tokio::fs::write(self.dir.join("cancelled-count"), i.to_string()).await;
                    return Err("cancelled".into());
                }
            }
            if let Some(token) = &token {
                let mut p = ProgressNotificationParam::new(token.clone(), i as f64);
                p.total = Some(n as f64);
                p.message = Some(format!("step {i}"));
                let _ = ctx.peer.notify_progress(p).await;
            }
        }
        // Finishing takes a step too, as real work does.
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = ctx.ct.cancelled() => return Err("cancelled".into()),
        }
        Ok(format!("counted to {n}"))
    }

    /// `rel` inside the server's directory, refusing escapes.
    fn file(&self, rel: &str) -> Result<PathBuf, String> {
        let p = Path::new(rel);
        if rel.is_empty() || p.components().any(|c| !matches!(c, Component::Normal(_))) {
            return Err(format!("'{rel}' is not a plain relative path"));
        }
        Ok(self.dir.join(p))
    }

    async fn run(&self, name: &str, args: &JsonObject) -> Result<String, String> {
        let text = |k: &str| {
            args.get(k)
                .and_then(Value::as_str)
                .ok_or_else(|| format!("'{k}' must be a string"))
        };
        let number = |k: &str| {
            args.get(k)
                .and_then(Value::as_f64)
                .ok_or_else(|| format!("'{k}' must be a number"))
        };
        match name {
            "echo" => Ok(text("text")?.to_string()),
            "add" => Ok((number("a")? + number("b")?).to_string()),
            "write_file" => {
                let path = self.file(text("path")?)?;
                let content = text("content")?;
                tokio::fs::write(&path, content)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(format!("wrote {} bytes", content.len()))
            }
            "read_file" => tokio::fs::read_to_string(self.file(text("path")?)?)
                .await
                .map_err(|e| e.to_string()),
            "exit" => std::process::exit(3),
            _ => Ok(Value::Object(args.clone()).to_string()),
        }
    }
}

impl ServerHandler for SampleServer {
    fn get_info(&self) -> ServerConfig {
        let capabilities: ServerCapabilities =
            serde_json::from_value(json!({"tools": {}, "resources": {}, "prompts": {}}))
                .expect("capabilities decode");
        ServerConfig::new(capabilities).with_server_info(Implementation::new(
            "tollgate-sample",
            env!("CARGO_PKG_VERSION"),
        ))
    }

    fn supported_protocol_versions(&self) -> std::borrow::Cow<'static, [ProtocolVersion]> {
        if self.legacy_only {
            let old: Vec<ProtocolVersion> = ProtocolVersion::KNOWN_VERSIONS
                .iter()
                .filter(|v| v.has_initialize())
                .cloned()
                .collect();
            return std::borrow::Cow::Owned(old);
        }
        std::borrow::Cow::Borrowed(ProtocolVersion::KNOWN_VERSIONS)
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let readme: Resource = serde_json::from_value(json!({
            "uri": "sample://readme", "name": "readme", "mimeType": "text/markdown"}))
        .expect("resources decode");
        Ok(ListResourcesResult {
            resources: vec![readme],
            ..Default::default()
        })
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        let files: ResourceTemplate = serde_json::from_value(json!({
            "uriTemplate": format!("{FILES_URI}{{path}}"), "name": "file",
            "description": "A file of the server's directory"}))
        .expect("templates decode");
        Ok(ListResourceTemplatesResult {
            resource_templates: vec![files],
            ..Default::default()
        })
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let text = if request.uri == "sample://readme" {
            "# The sample MCP server\n".to_string()
        } else if let Some(rel) = request.uri.strip_prefix(FILES_URI) {
            let path = self
                .file(rel)
                .map_err(|e| ErrorData::invalid_params(e, None))?;
            tokio::fs::read_to_string(path)
                .await
                .map_err(|e| ErrorData::resource_not_found(e.to_string(), None))?
        } else {
            return Err(ErrorData::resource_not_found(
                format!("no resource {}", request.uri),
                None,
            ));
        };
        let contents = ResourceContents::text(text, request.uri);
        Ok(ReadResourceResult::new(vec![contents]).into())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        let greet: Prompt = serde_json::from_value(json!({
            "name": "greet", "description": "Greets someone",
            "arguments": [{"name": "name", "required": true}]}))
        .expect("prompts decode");
        Ok(ListPromptsResult {
            prompts: vec![greet],
            ..Default::default()
        })
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        if request.name != "greet" {
            return Err(ErrorData::invalid_params(
                format!("unknown prompt {}", request.name),
                None,
            ));
        }
        let who = request
            .arguments
            .as_ref()
            .and_then(|a| a.get("name"))
            .and_then(Value::as_str)
            .ok_or_else(|| ErrorData::invalid_params("'name' is required", None))?;
        let message = PromptMessage::new_text(Role::User, format!("Say hello to {who}."));
        Ok(GetPromptResult::new(vec![message]).into())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult {
            tools: self.tools.as_ref().clone(),
            ..Default::default()
        })
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.tools.iter().find(|t| t.name == name).cloned()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        if self.get_tool(&request.name).is_none() {
            return Err(ErrorData::invalid_params(
                format!("unknown tool {}", request.name),
                None,
            ));
        }
        let args = request.arguments.unwrap_or_default();
        let outcome = if request.name == "count" {
            self.count(&args, &ctx).await
        } else if request.name == "whoami" {
            ctx.extensions
                .get::<http::request::Parts>()
                .and_then(|p| p.headers.get(guard::USER_HEADER))
                .and_then(|u| u.to_str().ok())
                .map(str::to_string)
                .ok_or_else(|| "no user: this server is not protected".to_string())
        } else {
            self.run(&request.name, &args).await
        };
        let result = match outcome {
            Ok(text) => CallToolResult::success(vec![ContentBlock::text(text)]),
            Err(e) => CallToolResult::error(vec![ContentBlock::text(e)]),
        };
        Ok(result.into())
    }
}

/// Serves MCP on stdin/stdout until the client goes away.
pub async fn serve_stdio(server: SampleServer) -> std::io::Result<()> {
    let running = server
        .serve(rmcp::transport::stdio())
        .await
        .map_err(std::io::Error::other)?;
    running.waiting().await.map_err(std::io::Error::other)?;
    Ok(())
}

/// Serves streamable HTTP at `addr` under `/mcp`.
pub async fn serve_http(server: SampleServer, addr: SocketAddr) -> std::io::Result<()> {
    serve_http_on(server, tokio::net::TcpListener::bind(addr).await?).await
}

/// [`serve_http`] on a listener already bound.
pub async fn serve_http_on(
    server: SampleServer,
    listener: tokio::net::TcpListener,
) -> std::io::Result<()> {
    serve_http_guarded(server, listener, None).await
}

/// [`serve_http_on`], behind `guard` when there is one.
pub async fn serve_http_guarded(
    server: SampleServer,
    listener: tokio::net::TcpListener,
    guard: Option<guard::Guard>,
) -> std::io::Result<()> {
    let service = StreamableHttpService::new(
        move || Ok(server.clone()),
        LocalSessionManager::default().into(),
        // A fixture reached by service name in docker compose, not by a
        // browser: any Host is fine.
        StreamableHttpServerConfig::default().disable_allowed_hosts(),
    );
    let mcp = Router::new().nest_service("/mcp", service);
    let app = match guard {
        Some(g) => mcp
            .layer(axum::middleware::from_fn_with_state(
                g.clone(),
                guard::require_token,
            ))
            .merge(
                Router::new()
                    .route(guard::METADATA_PATH, get(guard::metadata))
                    .route(
                        "/.well-known/oauth-protected-resource",
                        get(guard::metadata),
                    )
                    .with_state(g),
            ),
        None => mcp,
    };
    let app = app.route("/health", get(|| async { "ok" }));
    axum::serve(listener, app).await
}

/// Legacy SSE sessions: where to write the client's messages.
#[derive(Clone, Default)]
struct SseSessions {
    inbound: Arc<Mutex<HashMap<String, mpsc::Sender<Bytes>>>>,
    server: Option<SampleServer>,
}

/// Serves the legacy HTTP+SSE transport at `addr`: `GET /sse`, `POST /messages`.
pub async fn serve_sse(server: SampleServer, addr: SocketAddr) -> std::io::Result<()> {
    let sessions = SseSessions {
        server: Some(server),
        ..Default::default()
    };
    let app = Router::new()
        .route("/sse", get(sse_stream))
        .route("/messages", post(sse_message))
        .route("/health", get(|| async { "ok" }))
        .with_state(sessions);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, app).await
}

/// One session: an rmcp server on one end of a pipe of JSON lines; the
/// stream carries what it writes, `POST /messages` feeds what it reads.
async fn sse_stream(State(s): State<SseSessions>) -> Response {
    let id = crate::governance::random_token(16);
    let (ours, theirs) = tokio::io::duplex(1 << 20);
    let server = s.server.clone().expect("set at start");
    tokio::spawn(async move {
        if let Ok(running) = server.serve(theirs).await {
            let _ = running.waiting().await;
        }
    });
    let (read, mut write) = tokio::io::split(ours);
    let (tx, mut rx) = mpsc::channel::<Bytes>(64);
    s.inbound
        .lock()
        .expect("sessions lock")
        .insert(id.clone(), tx);
    tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            if write.write_all(&msg).await.is_err() || write.write_all(b"\n").await.is_err() {
                break;
            }
        }
    });
    let endpoint = Bytes::from(format!(
        "event: endpoint\ndata: /messages?sessionId={id}\n\n"
    ));
    let lines = BufReader::new(read).lines();
    let events =
        futures_util::stream::unfold((Some(endpoint), lines), |(first, mut lines)| async move {
            if let Some(e) = first {
                return Some((Ok::<_, std::io::Error>(e), (None, lines)));
            }
            let line = lines.next_line().await.ok().flatten()?;
            let ev = Bytes::from(format!("event: message\ndata: {line}\n\n"));
            Some((Ok(ev), (None, lines)))
        });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .body(Body::from_stream(events))
        .expect("static headers are valid")
}

#[derive(serde::Deserialize)]
struct SessionQuery {
    #[serde(rename = "sessionId")]
    session_id: String,
}

async fn sse_message(
    State(s): State<SseSessions>,
    Query(q): Query<SessionQuery>,
    body: Bytes,
) -> Response {
    let tx = s
        .inbound
        .lock()
        .expect("sessions lock")
        .get(&q.session_id)
        .cloned();
    let Some(tx) = tx else {
        return (StatusCode::NOT_FOUND, "unknown session").into_response();
    };
    // One JSON value per line on the pipe: re-encode to drop any newlines.
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "not JSON").into_response();
    };
    if tx.send(Bytes::from(v.to_string())).await.is_err() {
        return (StatusCode::GONE, "session ended").into_response();
    }
    StatusCode::ACCEPTED.into_response()
}
