//! Token benchmark: classic MCP against Code Mode.
//!
//! For each synthetic catalog (96 tools on 6 servers, 251 on 11, 508 on 16;
//! `codemode/catalog/`), this serves every server as a real MCP server
//! (streamable HTTP, in this process), starts a real `tollgate serve` in
//! front of them, and has a scripted agent solve every task of the suite
//! twice through the gateway's `/mcp`: with the servers registered normally
//! (classic: every tool schema in every turn, one tool call per turn, every
//! result appended) and with `code_mode: true` (the four meta-tools: list
//! the files, read the stubs it needs, ask for a doc or two, send one
//! script). It counts with a real tokenizer (tiktoken's `o200k_base`) every
//! token the model would receive across all turns: the tool definitions and
//! the whole conversation so far, as the JSON a chat completion carries.
//!
//! ```sh
//! cargo bench --bench codemode_tokens            # all three catalogs
//! CODEMODE_SIZES=96 cargo bench --bench codemode_tokens
//! ```
//!
//! It fails (exit 1) if any task's answer differs between the modes. The
//! classic agent calls one tool per turn; as a bound for agents that batch
//! independent calls, the report also gives what any classic agent must
//! receive at the least: every task needs three turns (a first call, a call
//! that depends on its result, the answer), each carrying the tool
//! definitions, the system message and the prompt.

// Shared with `tests/codemode_catalog.rs`, which uses other parts of it.
#[path = "codemode/catalog/mod.rs"]
#[allow(dead_code)]
mod catalog;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use catalog::{Catalog, ServerDef, Step, Task};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    JsonObject, ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::{RequestContext, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{
    StreamableHttpClientTransport, StreamableHttpServerConfig, StreamableHttpService,
};
use rmcp::{ErrorData, RoleClient, RoleServer, ServerHandler, ServiceExt};
use serde_json::{Value, json};
use tiktoken_rs::CoreBPE;

const SIZES: [(usize, usize); 3] = [(6, 96), (11, 251), (16, 508)];
const SYSTEM: &str = "You are an operations assistant. Use the tools to complete the user's \
                      task, then reply with the answer only.";

/// One catalog server as an MCP server.
#[derive(Clone)]
struct CatalogServer {
    name: Arc<str>,
    tools: Arc<Vec<Tool>>,
}

impl CatalogServer {
    fn new(def: &ServerDef) -> CatalogServer {
        let tools = def
            .tools
            .iter()
            .map(|t| {
                Tool::new(
                    t.name.clone(),
                    t.description.clone(),
                    Arc::new(t.input_schema.as_object().cloned().unwrap_or_default()),
                )
            })
            .collect();
        CatalogServer {
            name: Arc::from(def.name.as_str()),
            tools: Arc::new(tools),
        }
    }
}

impl ServerHandler for CatalogServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(self.name.to_string(), "1.0.0"))
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

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let args = Value::Object(request.arguments.unwrap_or_default());
        // Structured content for scripts, the same JSON as text for models:
        // what well-behaved servers send.
        let result = match catalog::call(&self.name, &request.name, &args) {
            Ok(v) => {
                let mut r = CallToolResult::success(vec![ContentBlock::text(v.to_string())]);
                r.structured_content = Some(v);
                r
            }
            Err(e) => CallToolResult::error(vec![ContentBlock::text(e)]),
        };
        Ok(result.into())
    }
}

/// Serves every server of `catalog` at `http://addr/<server>/mcp`.
async fn serve_catalog(catalog: &Catalog) -> SocketAddr {
    let mut app = Router::new();
    for def in &catalog.servers {
        let server = CatalogServer::new(def);
        let service = StreamableHttpService::new(
            move || Ok(server.clone()),
            LocalSessionManager::default().into(),
            StreamableHttpServerConfig::default().disable_allowed_hosts(),
        );
        app = app.nest_service(&format!("/{}/mcp", def.name), service);
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

struct Gateway {
    child: Child,
    base: String,
    token: String,
    _dir: tempfile::TempDir,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_gateway() -> Gateway {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.path().join("tollgate.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\ndata_dir = {:?}\n",
            dir.path().join("data")
        ),
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["serve", "--config"])
        .arg(&config)
        .env("TOLLGATE_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = reqwest::get(format!("{base}/ready")).await
            && r.status().is_success()
        {
            break;
        }
        assert!(Instant::now() < deadline, "the gateway did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let token = admin_token(&dir.path().join("data"));
    Gateway {
        child,
        base,
        token,
        _dir: dir,
    }
}

fn admin_token(data: &Path) -> String {
    std::fs::read_to_string(data.join("admin-token"))
        .expect("the node writes its admin token")
        .trim()
        .to_string()
}

impl Gateway {
    async fn admin(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let r = reqwest::Client::new()
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {v}");
        v
    }

    /// Registers (or re-registers) every server, in Code Mode or not, and
    /// waits until this node lists `tools` tools from them.
    async fn register(&self, catalog: &Catalog, at: SocketAddr, code_mode: bool) {
        for s in &catalog.servers {
            let body = json!({"transport": {"type": "http", "url": format!("http://{at}/{}/mcp", s.name)},
                              "code_mode": code_mode});
            self.admin(
                reqwest::Method::PUT,
                &format!("/api/mcp/servers/{}", s.name),
                body,
            )
            .await;
        }
        let want: usize = catalog.servers.iter().map(|s| s.tools.len()).sum();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let v = self
                .admin(reqwest::Method::GET, "/api/mcp/tools", Value::Null)
                .await;
            let data = v["data"].as_array().cloned().unwrap_or_default();
            if data.len() == want && data.iter().all(|t| t["code_mode"] == code_mode) {
                return;
            }
            assert!(Instant::now() < deadline, "servers did not connect");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

type Client = RunningService<RoleClient, ()>;

async fn mcp_client(gw: &Gateway, key: &str) -> Client {
    let mut config = StreamableHttpClientTransportConfig::with_uri(format!("{}/mcp", gw.base));
    config.auth_header = Some(key.to_string());
    ().serve(StreamableHttpClientTransport::from_config(config))
        .await
        .expect("the MCP handshake succeeds")
}

async fn call(c: &Client, name: &str, args: Value) -> CallToolResult {
    let args: JsonObject = serde_json::from_value(args).unwrap();
    c.call_tool(CallToolRequestParams::new(name.to_string()).with_arguments(args))
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn text_of(r: &CallToolResult) -> String {
    r.content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect()
}

/// What the model sees: tool definitions and the conversation, counted as
/// the JSON of a chat completion request carries them.
struct Conversation<'a> {
    bpe: &'a CoreBPE,
    /// Tokens of the tool definitions, sent with every turn.
    tool_tokens: usize,
    messages: Vec<Value>,
    /// Tokens of each message.
    message_tokens: Vec<usize>,
    /// Input tokens over all turns so far.
    input: usize,
    /// Tokens the model wrote (tool calls, the script, the answer).
    output: usize,
    turns: usize,
    calls: usize,
}

impl<'a> Conversation<'a> {
    fn new(bpe: &'a CoreBPE, tools: &[Tool], prompt: &str) -> Conversation<'a> {
        let tool_tokens = tools
            .iter()
            .map(|t| {
                let def = json!({"type": "function", "function": {
                    "name": t.name, "description": t.description, "parameters": t.input_schema}});
                count(bpe, &def.to_string())
            })
            .sum();
        let mut c = Conversation {
            bpe,
            tool_tokens,
            messages: Vec::new(),
            message_tokens: Vec::new(),
            input: 0,
            output: 0,
            turns: 0,
            calls: 0,
        };
        c.push(json!({"role": "system", "content": SYSTEM}));
        c.push(json!({"role": "user", "content": prompt}));
        c
    }

    fn push(&mut self, m: Value) {
        self.message_tokens.push(count(self.bpe, &m.to_string()));
        self.messages.push(m);
    }

    /// The model is called: it receives everything so far.
    fn turn(&mut self) {
        self.turns += 1;
        self.input += self.tool_tokens + self.message_tokens.iter().sum::<usize>();
    }

    /// The model's turn ends in a tool call whose result is `result`.
    fn tool_call(&mut self, name: &str, args: &Value, result: &str) {
        self.turn();
        self.calls += 1;
        let id = format!("call_{}", self.calls);
        let call = json!({"role": "assistant", "tool_calls": [{"id": id, "type": "function",
            "function": {"name": name, "arguments": args.to_string()}}]});
        self.output += count(self.bpe, &call.to_string());
        self.push(call);
        self.push(json!({"role": "tool", "tool_call_id": id, "content": result}));
    }

    /// The model's last turn: the answer.
    fn answer(&mut self, answer: &str) {
        self.turn();
        self.output += count(self.bpe, answer);
    }
}

fn count(bpe: &CoreBPE, text: &str) -> usize {
    bpe.encode_with_special_tokens(text).len()
}

/// One task in classic mode: the agent calls one tool per turn.
async fn classic<'b>(
    c: &Client,
    tools: &[Tool],
    bpe: &'b CoreBPE,
    task: &Task,
) -> (String, Conversation<'b>) {
    let mut conv = Conversation::new(bpe, tools, &task.prompt);
    let mut results = Vec::new();
    for _ in 0..64 {
        match task.classic_next(&results) {
            Step::Call { server, tool, args } => {
                let name = format!("{server}-{tool}");
                let r = call(c, &name, args.clone()).await;
                let text = text_of(&r);
                assert_ne!(r.is_error, Some(true), "{name}: {text}");
                conv.tool_call(&name, &args, &text);
                results.push(serde_json::from_str(&text).unwrap_or(Value::String(text)));
            }
            Step::Answer(answer) => {
                conv.answer(&answer);
                return (answer, conv);
            }
        }
    }
    panic!("{}: no answer after 64 steps", task.name);
}

/// One task in Code Mode: list, read the stubs it needs, a doc or two, one
/// script.
async fn code_mode<'b>(
    c: &Client,
    tools: &[Tool],
    bpe: &'b CoreBPE,
    task: &Task,
) -> (String, Conversation<'b>) {
    let mut conv = Conversation::new(bpe, tools, &task.prompt);
    let meta = async |conv: &mut Conversation<'_>, name: &str, args: Value| {
        let r = call(c, name, args.clone()).await;
        let text = text_of(&r);
        conv.tool_call(name, &args, &text);
        (r.is_error == Some(true), text)
    };
    meta(&mut conv, "listToolFiles", json!({})).await;
    for server in task.code_servers() {
        let (failed, text) = meta(
            &mut conv,
            "readToolFile",
            json!({"fileName": format!("servers/{server}.pyi")}),
        )
        .await;
        assert!(!failed, "{server}: {text}");
    }
    for (server, tool) in task.code_docs() {
        let (failed, text) = meta(
            &mut conv,
            "getToolDocs",
            json!({"server": server, "tool": tool}),
        )
        .await;
        assert!(!failed, "{server}.{tool}: {text}");
    }
    let (failed, out) = meta(&mut conv, "executeToolCode", json!({"code": task.script()})).await;
    assert!(!failed, "{}: the script failed: {out}", task.name);
    let answer = out
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("result = "))
        .and_then(|r| serde_json::from_str::<String>(r).ok())
        .unwrap_or_else(|| panic!("{}: the script set no string result: {out}", task.name));
    conv.answer(&answer);
    (answer, conv)
}

struct Row {
    size: usize,
    task: &'static str,
    /// (input, output, turns).
    classic: (usize, usize, usize),
    /// The least input any classic agent receives: three turns without results.
    classic_floor: usize,
    code: (usize, usize, usize),
    same: bool,
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let only: Option<usize> = std::env::var("CODEMODE_SIZES")
        .ok()
        .and_then(|v| v.parse().ok());
    let bpe = tiktoken_rs::o200k_base().expect("the bundled o200k_base vocabulary loads");
    let tasks = catalog::tasks();
    let mut rows = Vec::new();
    for (servers, size) in SIZES
        .into_iter()
        .filter(|(_, t)| only.is_none_or(|o| o == *t))
    {
        let catalog = catalog::generate(servers, size);
        let at = serve_catalog(&catalog).await;
        let gw = start_gateway().await;
        let key = gw
            .admin(reqwest::Method::POST, "/api/keys", json!({"name": "bench"}))
            .await["secret"]
            .as_str()
            .unwrap()
            .to_string();

        gw.register(&catalog, at, false).await;
        let c = mcp_client(&gw, &key).await;
        let tools = c.list_all_tools().await.unwrap();
        assert_eq!(tools.len(), size);
        let mut classic_runs = Vec::new();
        for t in &tasks {
            classic_runs.push(classic(&c, &tools, &bpe, t).await);
        }
        drop(c);

        gw.register(&catalog, at, true).await;
        let c = mcp_client(&gw, &key).await;
        let tools = c.list_all_tools().await.unwrap();
        assert_eq!(tools.len(), 4, "only the meta-tools are listed");
        for (t, (classic_answer, cl)) in tasks.iter().zip(classic_runs) {
            let (answer, cm) = code_mode(&c, &tools, &bpe, t).await;
            let floor = 3 * (cl.tool_tokens + cl.message_tokens[..2].iter().sum::<usize>());
            rows.push(Row {
                size,
                task: t.name,
                classic: (cl.input, cl.output, cl.turns),
                classic_floor: floor,
                code: (cm.input, cm.output, cm.turns),
                same: answer == classic_answer,
            });
            if answer != classic_answer {
                eprintln!(
                    "{}: classic {classic_answer:?} ≠ Code Mode {answer:?}",
                    t.name
                );
            }
        }
    }
    report(&rows);
    if rows.iter().any(|r| !r.same) {
        std::process::exit(1);
    }
}

fn report(rows: &[Row]) {
    println!(
        "| tools | task | classic input | classic turns | Code Mode input | Code Mode turns | fewer input tokens | classic floor | fewer than the floor | classic output | Code Mode output | same answer |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    let pct = |a: usize, b: usize| 100.0 * (1.0 - b as f64 / a as f64);
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {} | {} | {:.1}% | {} | {:.1}% | {} | {} | {} |",
            r.size,
            r.task,
            r.classic.0,
            r.classic.2,
            r.code.0,
            r.code.2,
            pct(r.classic.0, r.code.0),
            r.classic_floor,
            pct(r.classic_floor, r.code.0),
            r.classic.1,
            r.code.1,
            if r.same { "yes" } else { "**no**" }
        );
    }
    println!();
    println!(
        "| tools | classic input (all tasks) | Code Mode input (all tasks) | fewer input tokens | classic floor (all tasks) | fewer than the floor |"
    );
    println!("|---|---|---|---|---|---|");
    let mut sizes: Vec<usize> = rows.iter().map(|r| r.size).collect();
    sizes.dedup();
    for size in sizes {
        let of =
            |f: fn(&Row) -> usize| -> usize { rows.iter().filter(|r| r.size == size).map(f).sum() };
        let (a, b, f) = (
            of(|r| r.classic.0),
            of(|r| r.code.0),
            of(|r| r.classic_floor),
        );
        println!(
            "| {size} | {a} | {b} | {:.1}% | {f} | {:.1}% |",
            pct(a, b),
            pct(f, b)
        );
    }
}
