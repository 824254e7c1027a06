//! Connections to the upstream MCP servers registered in governance.
//!
//! Each node connects to each enabled server itself, one task per server:
//! connect, list tools, then ping and refresh until the connection fails,
//! then reconnect with exponential backoff. A stdio server is one long-lived
//! child process reused by every call; when it exits, the task sees the
//! connection close and starts a new process. Every change of a server's
//! tools rebuilds the [`ToolIndex`] and swaps it in. Nothing here decides who
//! may call what.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientConfig, ClientRequest, Implementation, JsonObject,
    PingRequest, Tool,
};
use rmcp::service::{NotificationContext, Peer, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde::Serialize;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::index::{IndexedTool, ToolIndex};
use crate::config::{McpConfig, Secret};
use crate::governance::Governance;
use crate::governance::objects::{McpServer, McpTransport};
use crate::tasks::Tasks;

/// Where a node stands with one upstream server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnState {
    Connecting,
    Connected,
    /// Was connected; the connection closed or stopped answering pings.
    Disconnected,
    /// The last attempt to connect failed.
    Error,
}

/// What the admin API shows about one server on this node.
#[derive(Debug, Clone, Serialize)]
pub struct ServerStatus {
    pub state: ConnState,
    pub tools: usize,
    pub last_error: Option<String>,
    /// Connections made so far (a stdio server's process starts).
    pub connects: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("MCP server '{0}' is not connected on this node")]
    NotConnected(String),
    #[error("MCP server '{0}' did not answer in time")]
    Timeout(String),
    #[error("MCP server '{server}' failed: {message}")]
    Upstream { server: String, message: String },
}

struct Live {
    server: McpServer,
    status: ServerStatus,
    tools: Vec<Tool>,
    peer: Option<Peer<RoleClient>>,
    stop: CancellationToken,
}

/// Every upstream connection of this node, and the index of their tools.
pub struct Upstreams {
    governance: Arc<Governance>,
    config: McpConfig,
    live: Mutex<HashMap<String, Live>>,
    index: ArcSwap<ToolIndex>,
    /// Bumped whenever the index is swapped (for `/mcp` list_changed notices).
    changes: tokio::sync::watch::Sender<u64>,
    tasks: Tasks,
}

/// The gateway as an MCP client: notes `tools/list_changed`.
#[derive(Clone)]
struct Client {
    list_changed: Arc<Notify>,
}

impl ClientHandler for Client {
    async fn on_tool_list_changed(&self, _ctx: NotificationContext<RoleClient>) {
        self.list_changed.notify_one();
    }

    fn get_info(&self) -> ClientConfig {
        let mut info = ClientConfig::default();
        info.client_info = Implementation::new("tollgate", env!("CARGO_PKG_VERSION"));
        info
    }
}

impl Upstreams {
    pub fn new(governance: Arc<Governance>, config: McpConfig, tasks: Tasks) -> Arc<Upstreams> {
        Arc::new(Upstreams {
            governance,
            config,
            live: Mutex::new(HashMap::new()),
            index: ArcSwap::from_pointee(ToolIndex::default()),
            changes: tokio::sync::watch::Sender::new(0),
            tasks,
        })
    }

    /// The current tool index.
    pub fn index(&self) -> Arc<ToolIndex> {
        self.index.load_full()
    }

    /// Changes whenever the tool index does.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// This node's view of every registered server, in name order.
    pub fn statuses(&self) -> Vec<(String, ServerStatus)> {
        let live = self.live.lock().expect("upstreams lock");
        let mut out: Vec<(String, ServerStatus)> = live
            .iter()
            .map(|(n, l)| (n.clone(), l.status.clone()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// The state of this registration of `server`; `None` until its task
    /// runs (just registered, or changed and about to reconnect: what is
    /// live then is the previous registration).
    pub fn status(&self, server: &McpServer) -> Option<ServerStatus> {
        let live = self.live.lock().expect("upstreams lock");
        live.get(&server.id)
            .filter(|l| l.server == *server)
            .map(|l| l.status.clone())
    }

    /// Follows governance: starts, restarts and stops server tasks as
    /// servers are registered, changed and removed, until `cancel`.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        let mut changes = self.governance.subscribe();
        loop {
            self.reconcile(&cancel);
            tokio::select! {
                r = changes.changed() => if r.is_err() { break },
                _ = cancel.cancelled() => break,
            }
        }
        let live = self.live.lock().expect("upstreams lock");
        for l in live.values() {
            l.stop.cancel();
        }
    }

    fn reconcile(self: &Arc<Self>, cancel: &CancellationToken) {
        let (servers, _) = self.governance.list::<McpServer>(None, usize::MAX);
        let wanted: HashMap<String, McpServer> = servers
            .into_iter()
            .filter(|s| s.enabled)
            .map(|s| (s.id.clone(), s))
            .collect();
        let mut live = self.live.lock().expect("upstreams lock");
        let before = live.len();
        live.retain(|name, l| {
            let keep = wanted.get(name) == Some(&l.server);
            if !keep {
                l.stop.cancel();
            }
            keep
        });
        // Most governance changes are keys and teams: leave the index alone.
        let mut changed = live.len() != before;
        for (name, server) in wanted {
            if live.contains_key(&name) {
                continue;
            }
            changed = true;
            let stop = cancel.child_token();
            live.insert(
                name.clone(),
                Live {
                    server: server.clone(),
                    status: ServerStatus {
                        state: ConnState::Connecting,
                        tools: 0,
                        last_error: None,
                        connects: 0,
                    },
                    tools: Vec::new(),
                    peer: None,
                    stop: stop.clone(),
                },
            );
            let me = self.clone();
            self.tasks
                .spawn(move |_| async move { me.keep_connected(server, stop).await });
        }
        if changed {
            self.store_index(&live);
        }
    }

    /// Updates the live entry of `server`, leaving its tools as they are.
    fn update(&self, server: &McpServer, f: impl FnOnce(&mut Live)) {
        self.update_indexed(server, |l| {
            f(l);
            false
        });
    }

    /// Updates the live entry of `server` if it is still the same
    /// registration, and when `f` says the tools changed, rebuilds the index
    /// under the same lock: a status never says more (or less) than the
    /// index holds.
    fn update_indexed(&self, server: &McpServer, f: impl FnOnce(&mut Live) -> bool) {
        let mut live = self.live.lock().expect("upstreams lock");
        let changed = match live.get_mut(&server.id) {
            Some(l) if l.server == *server => f(l),
            _ => false,
        };
        if changed {
            self.store_index(&live);
        }
    }

    fn store_index(&self, live: &HashMap<String, Live>) {
        let index = ToolIndex::build(
            live.values()
                .filter(|l| l.status.state == ConnState::Connected)
                .map(|l| (&l.server, &l.tools[..])),
        );
        self.index.store(Arc::new(index));
        self.changes.send_modify(|v| *v += 1);
    }

    /// One server's connection, for as long as it stays registered unchanged.
    async fn keep_connected(self: Arc<Self>, server: McpServer, stop: CancellationToken) {
        let mut backoff = self.config.backoff_base;
        loop {
            self.update(&server, |l| l.status.state = ConnState::Connecting);
            let list_changed = Arc::new(Notify::new());
            let attempt = tokio::select! {
                r = tokio::time::timeout(self.config.call_timeout, connect(&server, &self.config, list_changed.clone())) => r,
                _ = stop.cancelled() => return,
            };
            match attempt {
                Ok(Ok(service)) => {
                    self.update(&server, |l| l.status.connects += 1);
                    let since = tokio::time::Instant::now();
                    let why = self.serve(&server, service, list_changed, &stop).await;
                    // A connection that lasted is a fresh start; one that dies
                    // at once (a server crashing on start-up) keeps backing off.
                    if since.elapsed() >= self.config.backoff_max {
                        backoff = self.config.backoff_base;
                    }
                    if stop.is_cancelled() {
                        return;
                    }
                    tracing::warn!(server = %server.id, reason = %why, "MCP server disconnected");
                    self.update_indexed(&server, |l| {
                        l.status.state = ConnState::Disconnected;
                        l.status.last_error = Some(why);
                        l.status.tools = 0;
                        l.peer = None;
                        l.tools.clear();
                        true
                    });
                }
                failed => {
                    let why = match failed {
                        Ok(Err(e)) => e,
                        _ => "timed out connecting".to_string(),
                    };
                    tracing::warn!(server = %server.id, error = %why, "cannot connect to MCP server");
                    self.update(&server, |l| {
                        l.status.state = ConnState::Error;
                        l.status.last_error = Some(why);
                    });
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = stop.cancelled() => return,
            }
            backoff = (backoff * 2).min(self.config.backoff_max);
        }
    }

    /// Lists tools, then pings and refreshes until the connection fails or
    /// `stop`; returns why it ended.
    async fn serve(
        &self,
        server: &McpServer,
        service: RunningService<RoleClient, Client>,
        list_changed: Arc<Notify>,
        stop: &CancellationToken,
    ) -> String {
        let peer = service.peer().clone();
        let closer = service.cancellation_token();
        let waiting = service.waiting();
        tokio::pin!(waiting);
        let timeout = self.config.call_timeout;
        let mut ping = tokio::time::interval(self.config.ping_interval);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut refresh = tokio::time::interval(self.config.tool_refresh_interval);
        refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ping.tick().await;
        let mut first = true;
        let (why, closed) = loop {
            // The first pass lists at once; later passes wait for a reason to.
            let list = if first {
                first = false;
                true
            } else {
                tokio::select! {
                    _ = stop.cancelled() => break ("stopped".to_string(), false),
                    _ = &mut waiting => break ("the connection closed".to_string(), true),
                    _ = list_changed.notified() => true,
                    _ = refresh.tick() => true,
                    _ = ping.tick() => {
                        let ping = peer.send_request(ClientRequest::PingRequest(PingRequest::default()));
                        match tokio::time::timeout(timeout, ping).await {
                            Ok(Ok(_)) => false,
                            Ok(Err(e)) => break (format!("ping failed: {e}"), false),
                            Err(_) => break ("ping timed out".to_string(), false),
                        }
                    }
                }
            };
            if list {
                match tokio::time::timeout(timeout, peer.list_all_tools()).await {
                    Ok(Ok(tools)) => {
                        tracing::info!(server = %server.id, tools = tools.len(), "MCP server tools listed");
                        self.update_indexed(server, |l| {
                            // A refresh that found the same tools changes nothing
                            // (and sends no list_changed to `/mcp` clients).
                            let same = l.status.state == ConnState::Connected && l.tools == tools;
                            l.status.state = ConnState::Connected;
                            l.status.last_error = None;
                            l.status.tools = tools.len();
                            l.tools = tools;
                            l.peer = Some(peer.clone());
                            !same
                        });
                    }
                    Ok(Err(e)) => break (format!("listing tools failed: {e}"), false),
                    Err(_) => break ("listing tools timed out".to_string(), false),
                }
            }
        };
        if !closed {
            closer.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(5), waiting).await;
        }
        why
    }

    /// Calls `tool` at its server with `arguments`.
    pub async fn call(
        &self,
        tool: &IndexedTool,
        arguments: Option<JsonObject>,
    ) -> Result<CallToolResult, CallError> {
        let server = tool.server.to_string();
        let peer = {
            let live = self.live.lock().expect("upstreams lock");
            live.get(&server).and_then(|l| l.peer.clone())
        }
        .ok_or_else(|| CallError::NotConnected(server.clone()))?;
        let mut params = CallToolRequestParams::new(tool.tool.clone());
        params.arguments = arguments;
        match tokio::time::timeout(self.config.call_timeout, peer.call_tool(params)).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => Err(CallError::Upstream {
                server,
                message: e.to_string(),
            }),
            Err(_) => Err(CallError::Timeout(server)),
        }
    }
}

/// `env.VAR` secrets filled from this node's environment.
fn resolved(
    secrets: &std::collections::BTreeMap<String, Secret>,
) -> Result<Vec<(String, String)>, String> {
    let vars: Vec<(String, String)> = std::env::vars().collect();
    secrets
        .iter()
        .map(|(k, v)| {
            let mut v = v.clone();
            v.resolve(&vars)
                .map_err(|var| format!("environment variable {var} is not set on this node"))?;
            Ok((k.clone(), v.expose().to_string()))
        })
        .collect()
}

/// Opens a connection and runs the MCP handshake.
async fn connect(
    server: &McpServer,
    config: &McpConfig,
    list_changed: Arc<Notify>,
) -> Result<RunningService<RoleClient, Client>, String> {
    let client = Client { list_changed };
    match &server.transport {
        McpTransport::Stdio { command, args, env } => {
            if !config.allow_stdio {
                return Err("stdio servers are not allowed on this node (mcp.allow_stdio)".into());
            }
            // A clean environment: the command gets its listed variables and
            // what finding programs needs, never the node's own secrets.
            let mut cmd = tokio::process::Command::new(command);
            cmd.env_clear()
                .envs(
                    ["PATH", "HOME", "LANG"]
                        .iter()
                        .filter_map(|k| Some((*k, std::env::var(k).ok()?))),
                )
                .args(args)
                .envs(resolved(env)?);
            let (transport, _) = TokioChildProcess::builder(cmd)
                .stderr(std::process::Stdio::null())
                .spawn()
                .map_err(|e| format!("cannot start '{command}': {e}"))?;
            client.serve(transport).await.map_err(|e| e.to_string())
        }
        McpTransport::Http { url, headers } => {
            let mut config = StreamableHttpClientTransportConfig::with_uri(url.as_str());
            for (name, value) in resolved(headers)? {
                if name.eq_ignore_ascii_case("authorization") {
                    let token = value.strip_prefix("Bearer ").unwrap_or(&value);
                    config.auth_header = Some(token.to_string());
                    continue;
                }
                let name = http::HeaderName::try_from(name.as_str())
                    .map_err(|e| format!("header {name}: {e}"))?;
                let value = http::HeaderValue::try_from(value)
                    .map_err(|e| format!("header {name}: {e}"))?;
                config.custom_headers.insert(name, value);
            }
            let transport = StreamableHttpClientTransport::with_client(http_client()?, config);
            client.serve(transport).await.map_err(|e| e.to_string())
        }
        McpTransport::Sse { url, headers } => {
            let transport =
                super::sse_client::SseClientTransport::connect(url, &resolved(headers)?)
                    .await
                    .map_err(|e| e.to_string())?;
            client.serve(transport).await.map_err(|e| e.to_string())
        }
    }
}

/// The HTTP client for streamable-HTTP servers: rustls with the `ring`
/// provider and the built-in web roots, so the node needs no system
/// certificate store (rmcp's default client refuses to start without one).
fn http_client() -> Result<reqwest_rmcp::Client, String> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    reqwest_rmcp::Client::builder()
        .tls_backend_preconfigured(tls)
        .build()
        .map_err(|e| e.to_string())
}
