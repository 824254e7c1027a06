//! Helpers of the MCP tests: the sample server, gateway nodes, the admin
//! API, and rmcp and raw JSON-RPC clients of `/mcp`.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rmcp::model::{CallToolRequestParams, CallToolResult, JsonObject};
use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};

use super::{BIN, Gateway, Proc};

/// Fast pings and reconnects, so failures show within a second or two.
pub const CONFIG: &str = r#"
[mcp]
allow_stdio = true
ping_interval = "200ms"
backoff_base = "100ms"
backoff_max = "400ms"
call_timeout = "5s"
"#;

pub const SECRET: &str = "a shared cluster secret for tests";

pub fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// Runs `tollgate sample-mcp` serving `mode` (`--http` or `--sse`) at `addr`.
pub async fn start_sample(mode: &str, addr: SocketAddr) -> Proc {
    let mut child = Command::new(BIN)
        .args(["sample-mcp", mode, &addr.to_string()])
        .env("TOLLGATE_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    super::wait_until_up(&format!("http://{addr}/health"), &mut child).await;
    Proc { child, addr }
}

/// A node of a cluster with secret `SECRET`, its QUIC endpoint on a free
/// loopback port, joining through `seed` if given.
pub async fn start_node(dir: tempfile::TempDir, secret: &str, seed: Option<&str>) -> Gateway {
    Gateway::start_with_env(
        CONFIG,
        dir,
        &[
            ("TOLLGATE_CLUSTER_SECRET", secret),
            ("TOLLGATE_CLUSTER__LISTEN", "127.0.0.1:0"),
            ("TOLLGATE_SEEDS", seed.unwrap_or("")),
            ("MCP_TEST_TOKEN", "a token for an MCP server"),
        ],
    )
    .await
}

pub async fn start_gateway(dir: tempfile::TempDir) -> Gateway {
    start_node(dir, SECRET, None).await
}

pub struct Admin {
    pub base: String,
    pub token: String,
}

impl Admin {
    pub fn new(gw: &Gateway) -> Admin {
        Admin {
            base: gw.url(""),
            token: gw.generated_admin_token(),
        }
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        super::admin_call(format!("{}{path}", self.base), &self.token, method, body).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Value {
        let (status, v) = self.send(reqwest::Method::PUT, path, Some(body)).await;
        assert_eq!(status, 200, "PUT {path}: {v}");
        v
    }

    pub async fn key(&self, body: Value) -> String {
        let (status, v) = self
            .send(reqwest::Method::POST, "/api/keys", Some(body))
            .await;
        assert_eq!(status, 201, "{v}");
        v["secret"].as_str().unwrap().to_string()
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, None).await
    }

    /// Polls a server's status until `pred` holds, failing after 30 s (a
    /// server not there yet, as on a node it is replicating to, is waited for).
    pub async fn server_until(
        &self,
        name: &str,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (status, v) = self.get(&format!("/api/mcp/servers/{name}")).await;
            if status == 200 && pred(&v) {
                return v;
            }
            assert!(Instant::now() < deadline, "{name} never became {what}: {v}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn connected(&self, name: &str) -> Value {
        self.server_until(name, "connected", |v| v["status"]["state"] == "connected")
            .await
    }
}

pub fn stdio_server(extra: &[&str]) -> Value {
    let mut args = vec!["sample-mcp", "--stdio"];
    args.extend_from_slice(extra);
    json!({"transport": {"type": "stdio", "command": BIN, "args": args, "env": {"TOLLGATE_LOG": "warn"}}})
}

pub type Client = RunningService<RoleClient, ()>;

pub async fn client(gw: &Gateway, secret: &str) -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut config = StreamableHttpClientTransportConfig::with_uri(gw.url("/mcp"));
    config.auth_header = Some(secret.to_string());
    ().serve(StreamableHttpClientTransport::from_config(config))
        .await
        .expect("the MCP handshake succeeds")
}

pub async fn tool_names(c: &Client) -> Vec<String> {
    let mut names: Vec<String> = c
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    names.sort();
    names
}

pub async fn call(
    c: &Client,
    tool: &str,
    args: Value,
) -> Result<CallToolResult, rmcp::ServiceError> {
    let args: JsonObject = serde_json::from_value(args).unwrap();
    c.call_tool(CallToolRequestParams::new(tool.to_string()).with_arguments(args))
        .await
}

pub fn text(r: &CallToolResult) -> String {
    r.content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect()
}

pub const SAMPLE_TOOLS: [&str; 5] = ["add", "echo", "exit", "read_file", "write_file"];

pub fn prefixed(server: &str) -> Vec<String> {
    SAMPLE_TOOLS
        .iter()
        .map(|t| format!("{server}-{t}"))
        .collect()
}

/// One raw JSON-RPC POST to `/mcp`: (status, session header, body).
pub async fn post(
    gw: &Gateway,
    secret: &str,
    session: Option<&str>,
    body: Value,
) -> (u16, Option<String>, Value) {
    let mut req = reqwest::Client::new()
        .post(gw.url("/mcp"))
        .bearer_auth(secret)
        .header("accept", "application/json, text/event-stream")
        .json(&body);
    if let Some(s) = session {
        req = req.header("mcp-session-id", s);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let sid = r
        .headers()
        .get("mcp-session-id")
        .map(|v| v.to_str().unwrap().to_string());
    let text = r.text().await.unwrap();
    (
        status,
        sid,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

pub fn init_body() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "test", "version": "1"}}})
}

pub fn list_body() -> Value {
    json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
}

/// A load balancer with no stickiness: each HTTP request goes to the next
/// of `backends` in turn (so consecutive requests of one client land on
/// different nodes). Returns its address; it runs until the test ends.
pub async fn alternating_proxy(backends: Vec<String>) -> SocketAddr {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::body::{Body, Bytes};
    use axum::extract::{Request, State};
    use axum::response::{IntoResponse, Response};

    #[derive(Clone)]
    struct Lb {
        backends: Arc<Vec<String>>,
        next: Arc<AtomicUsize>,
        http: reqwest::Client,
    }
    async fn forward(State(lb): State<Lb>, req: Request) -> Response {
        let i = lb.next.fetch_add(1, Ordering::Relaxed) % lb.backends.len();
        let path = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default();
        let (parts, body) = req.into_parts();
        let body: Bytes = axum::body::to_bytes(body, 1 << 24).await.unwrap();
        let mut headers = parts.headers.clone();
        headers.remove(http::header::HOST);
        let r = lb
            .http
            .request(parts.method, format!("{}{path}", lb.backends[i]))
            .headers(headers)
            .body(body)
            .send()
            .await;
        match r {
            Ok(r) => {
                let mut out = Response::builder().status(r.status());
                for (k, v) in r.headers() {
                    out = out.header(k, v);
                }
                out.body(Body::from_stream(r.bytes_stream())).unwrap()
            }
            Err(e) => (http::StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
        }
    }
    let lb = Lb {
        backends: Arc::new(backends),
        next: Arc::new(AtomicUsize::new(0)),
        http: reqwest::Client::new(),
    };
    let app = axum::Router::new().fallback(forward).with_state(lb);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// The `_meta` every 2026-07-28 request carries.
pub fn stateless_meta() -> Value {
    json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28",
           "io.modelcontextprotocol/clientCapabilities": {},
           "io.modelcontextprotocol/clientInfo": {"name": "test", "version": "1"}})
}

/// One 2026-07-28 request to `url` (`/mcp` of a node), with its routing
/// headers: (status, content type, body as text).
pub async fn stateless_raw(
    url: &str,
    secret: &str,
    method: &str,
    mut params: Value,
    extra: &[(&str, &str)],
) -> (u16, String, String) {
    if params.is_null() {
        params = json!({});
    }
    if params.get("_meta").is_none() {
        params["_meta"] = stateless_meta();
    }
    let name = params
        .get("name")
        .or_else(|| params.get("uri"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let mut req = reqwest::Client::new()
        .post(url)
        .bearer_auth(secret)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", method)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}));
    if let Some(n) = name {
        req = req.header("mcp-name", n);
    }
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let ctype = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    assert!(
        r.headers().get("mcp-session-id").is_none(),
        "a stateless answer opens no session"
    );
    (status, ctype, r.text().await.unwrap())
}

/// [`stateless_raw`] of a JSON answer: (status, body).
pub async fn stateless(gw: &Gateway, secret: &str, method: &str, params: Value) -> (u16, Value) {
    let (status, _, body) = stateless_raw(&gw.url("/mcp"), secret, method, params, &[]).await;
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}
