//! Connections to the upstream MCP servers registered in governance.
//!
//! Each node connects to each enabled server itself, one task per server:
//! connect (speaking 2026-07-28 to a server that answers `server/discover`,
//! else the `initialize` handshake), list tools, resources, resource
//! templates and prompts, then check liveness and refresh until the
//! connection fails, then reconnect with exponential backoff. A stdio server
//! is one long-lived child process reused by every call; when it exits, the
//! task sees the connection close and starts a new process. Every change of
//! what a server lists rebuilds the [`ToolIndex`] and the [`Catalog`] and
//! swaps them in. Nothing here decides who may call what.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use rmcp::model::{
    CallToolRequest, CallToolRequestParams, CallToolResult, CancelledNotification,
    CancelledNotificationParam, ClientConfig, ClientRequest, DiscoverRequest,
    DiscoverRequestParams, GetPromptRequestParams, GetPromptResult, Implementation, JsonObject,
    PingRequest, ProgressNotificationParam, ProgressToken, ProtocolVersion,
    ReadResourceRequestParams, ReadResourceResult, RequestId, ServerResult, Tool,
};
use rmcp::service::{NotificationContext, Peer, PeerRequestOptions, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ClientHandler, ClientLifecycleMode, ClientServiceExt, RoleClient, ServiceExt};
use serde::Serialize;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use super::catalog::{Catalog, Kind, Listed};
use super::index::{IndexedTool, ToolIndex};
use super::oauth::bearer::{Bearer, Presented};
use super::oauth::{Broker, GATEWAY, Needed};
use crate::config::{McpConfig, Secret};
use crate::governance::Governance;
use crate::governance::objects::{McpServer, McpTransport, OAuthMode};
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
    /// An OAuth server the gateway holds no usable token for: an admin must
    /// authorise it (`POST /api/mcp/servers/{name}/oauth`).
    NeedsAuthorisation,
}

/// What the admin API shows about one server on this node.
#[derive(Debug, Clone, Serialize)]
pub struct ServerStatus {
    pub state: ConnState,
    /// The protocol version spoken with it on this node, once connected.
    pub protocol_version: Option<String>,
    pub tools: usize,
    pub resources: usize,
    pub resource_templates: usize,
    pub prompts: usize,
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
    /// Its counts are read off `tools` and `listed` (see [`Live::status`]).
    status: ServerStatus,
    tools: Vec<Tool>,
    listed: Listed,
    peer: Option<Peer<RoleClient>>,
    stop: CancellationToken,
}

impl Live {
    /// The status as shown, with what is listed now counted.
    fn status(&self) -> ServerStatus {
        ServerStatus {
            tools: self.tools.len(),
            resources: self.listed.resources.len(),
            resource_templates: self.listed.templates.len(),
            prompts: self.listed.prompts.len(),
            ..self.status.clone()
        }
    }
}

/// How many times each kind of list has changed on this node: `/mcp`
/// streams announce a kind whose count moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Changes {
    pub tools: u64,
    /// Resources or resource templates.
    pub resources: u64,
    pub prompts: u64,
}

/// A progress notification of an upstream call, as the caller relays it.
pub type Progress = ProgressNotificationParam;

/// Where each in-flight call's progress notifications go, by the server and
/// the progress token the gateway sent it (tokens are numbered per
/// connection, so two servers use the same ones; neither can reach the
/// other's calls).
type ProgressRoutes = Arc<Mutex<HashMap<(Arc<str>, ProgressToken), mpsc::Sender<Progress>>>>;

/// Every upstream connection of this node, and the index of their tools.
pub struct Upstreams {
    governance: Arc<Governance>,
    config: McpConfig,
    live: Mutex<HashMap<String, Live>>,
    index: ArcSwap<ToolIndex>,
    catalog: ArcSwap<Catalog>,
    /// Moves whenever the index or the catalog does (for `/mcp` list_changed notices).
    changes: tokio::sync::watch::Sender<Changes>,
    progress: ProgressRoutes,
    tasks: Tasks,
    oauth: Arc<Broker>,
    /// Per-user OAuth servers' connections, one per (server, subject).
    personal: personal::Personal,
    /// The enabled per-user servers, as of the last reconcile (so that
    /// `/mcp` listings do not read the servers table).
    per_user_servers: ArcSwap<Vec<McpServer>>,
}

pub mod personal;

/// Whether each user of `server` authorises for themselves (so the server
/// has no connection of the gateway's own).
pub fn per_user(server: &McpServer) -> bool {
    server
        .oauth
        .as_ref()
        .is_some_and(|o| o.mode == OAuthMode::PerUser)
}

/// The token of an OAuth connection and when to refresh it.
struct Auth {
    subject: String,
    presented: Arc<Presented>,
    refresh_at_ms: u64,
}

/// The gateway as an MCP client: notes list changes and routes progress.
#[derive(Clone)]
struct Client {
    server: Arc<str>,
    list_changed: Arc<Notify>,
    progress: ProgressRoutes,
}

impl ClientHandler for Client {
    async fn on_tool_list_changed(&self, _ctx: NotificationContext<RoleClient>) {
        self.list_changed.notify_one();
    }

    async fn on_resource_list_changed(&self, _ctx: NotificationContext<RoleClient>) {
        self.list_changed.notify_one();
    }

    async fn on_prompt_list_changed(&self, _ctx: NotificationContext<RoleClient>) {
        self.list_changed.notify_one();
    }

    async fn on_progress(
        &self,
        p: ProgressNotificationParam,
        _ctx: NotificationContext<RoleClient>,
    ) {
        let route = self
            .progress
            .lock()
            .expect("progress lock")
            .get(&(self.server.clone(), p.progress_token.clone()))
            .cloned();
        // A caller that cannot keep up misses notices rather than slowing the connection.
        if let Some(tx) = route {
            let _ = tx.try_send(p);
        }
    }

    fn get_info(&self) -> ClientConfig {
        let mut info = ClientConfig::default();
        info.client_info = Implementation::new("tollgate", env!("CARGO_PKG_VERSION"));
        info
    }
}

impl Upstreams {
    pub fn new(
        governance: Arc<Governance>,
        config: McpConfig,
        tasks: Tasks,
        oauth: Arc<Broker>,
    ) -> Arc<Upstreams> {
        Arc::new(Upstreams {
            oauth,
            personal: personal::Personal::default(),
            per_user_servers: ArcSwap::from_pointee(Vec::new()),
            governance,
            config,
            live: Mutex::new(HashMap::new()),
            index: ArcSwap::from_pointee(ToolIndex::default()),
            catalog: ArcSwap::from_pointee(Catalog::default()),
            changes: tokio::sync::watch::Sender::new(Changes::default()),
            progress: Default::default(),
            tasks,
        })
    }

    /// The OAuth side of this node.
    pub fn oauth(&self) -> &Arc<Broker> {
        &self.oauth
    }

    /// The current tool index.
    pub fn index(&self) -> Arc<ToolIndex> {
        self.index.load_full()
    }

    /// The current resources, templates and prompts.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.load_full()
    }

    /// Changes whenever the tool index or the catalog does.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<Changes> {
        self.changes.subscribe()
    }

    /// This node's view of every registered server, in name order.
    pub fn statuses(&self) -> Vec<(String, ServerStatus)> {
        let live = self.live.lock().expect("upstreams lock");
        let mut out: Vec<(String, ServerStatus)> =
            live.iter().map(|(n, l)| (n.clone(), l.status())).collect();
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
            .map(Live::status)
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
        let (personal, wanted): (Vec<McpServer>, Vec<McpServer>) = servers
            .into_iter()
            .filter(|s| s.enabled)
            .partition(per_user);
        self.per_user_servers.store(Arc::new(personal));
        let wanted: HashMap<String, McpServer> =
            wanted.into_iter().map(|s| (s.id.clone(), s)).collect();
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
                        protocol_version: None,
                        tools: 0,
                        resources: 0,
                        resource_templates: 0,
                        prompts: 0,
                        last_error: None,
                        connects: 0,
                    },
                    tools: Vec::new(),
                    listed: Listed::default(),
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
        let connected = || {
            live.values()
                .filter(|l| l.status.state == ConnState::Connected)
        };
        let index = ToolIndex::build(connected().map(|l| (&l.server, &l.tools[..])));
        let catalog = Catalog::build(connected().map(|l| (&l.server, &l.listed)));
        let (old_index, old_catalog) = (self.index.load(), self.catalog.load());
        let tools = !old_index.same(&index);
        let resources = !old_catalog.same(&catalog, Kind::Resources)
            || !old_catalog.same(&catalog, Kind::Templates);
        let prompts = !old_catalog.same(&catalog, Kind::Prompts);
        self.index.store(Arc::new(index));
        self.catalog.store(Arc::new(catalog));
        if tools || resources || prompts {
            self.changes.send_modify(|c| {
                c.tools += u64::from(tools);
                c.resources += u64::from(resources);
                c.prompts += u64::from(prompts);
            });
        }
    }

    /// One server's connection, for as long as it stays registered unchanged.
    async fn keep_connected(self: Arc<Self>, server: McpServer, stop: CancellationToken) {
        let mut backoff = self.config.backoff_base;
        loop {
            self.update(&server, |l| l.status.state = ConnState::Connecting);
            let auth = match self.authorise(&server, GATEWAY).await {
                Ok(auth) => Ok(auth),
                Err(Needed::Authorisation { why, .. }) => {
                    self.update(&server, |l| {
                        l.status.state = ConnState::NeedsAuthorisation;
                        l.status.last_error = Some(format!(
                            "{why}: an admin must authorise the gateway (POST /api/mcp/servers/{}/oauth)",
                            server.id
                        ));
                    });
                    // Until a credential is written (on any node), or a while;
                    // at most four looks a second, however busy governance is.
                    let mut changes = self.governance.subscribe();
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                        _ = stop.cancelled() => return,
                    }
                    tokio::select! {
                        _ = changes.changed() => {}
                        _ = tokio::time::sleep(self.config.backoff_max) => {}
                        _ = stop.cancelled() => return,
                    }
                    continue;
                }
                Err(Needed::Failed(why)) => Err(why),
            };
            let list_changed = Arc::new(Notify::new());
            let attempt = match &auth {
                Err(why) => Ok(Err(why.clone())),
                Ok(auth) => {
                    let presented = auth.as_ref().map(|a| a.presented.clone());
                    let client = self.client(&server, list_changed.clone());
                    tokio::select! {
                        r = tokio::time::timeout(self.config.call_timeout, connect(&server, &self.config, client, presented)) => r,
                        _ = stop.cancelled() => return,
                    }
                }
            };
            if let Ok(Some(a)) = &auth
                && attempt.as_ref().is_ok_and(|r| r.is_err())
                && a.presented.rejected()
            {
                // Refused although not expired: revoked. Refresh, or ask again.
                self.oauth.rejected(&server.id, &a.subject);
                continue;
            }
            match attempt {
                Ok(Ok(service)) => {
                    self.update(&server, |l| l.status.connects += 1);
                    let since = tokio::time::Instant::now();
                    let auth = auth.ok().flatten();
                    let why = self
                        .serve(&server, service, list_changed, auth, &stop)
                        .await;
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
                        l.peer = None;
                        l.tools.clear();
                        l.listed = Listed::default();
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

    fn client(&self, server: &McpServer, list_changed: Arc<Notify>) -> Client {
        Client {
            server: Arc::from(server.id.as_str()),
            list_changed,
            progress: self.progress.clone(),
        }
    }

    /// The token to connect to an OAuth server with, for `subject`
    /// (`None` for a server without OAuth).
    async fn authorise(&self, server: &McpServer, subject: &str) -> Result<Option<Auth>, Needed> {
        if server.oauth.is_none() {
            return Ok(None);
        }
        let token = self.oauth.token(server, subject).await?;
        Ok(Some(Auth {
            subject: subject.to_string(),
            presented: Presented::new(token.access),
            refresh_at_ms: token.refresh_at_ms,
        }))
    }

    /// Refreshes `auth`'s token if it is due; `Err` when the connection
    /// cannot go on (the subject must authorise again).
    async fn keep_fresh(&self, server: &McpServer, auth: &mut Auth) -> Result<(), String> {
        let now = self.governance.now_ms();
        if auth.refresh_at_ms == 0 || now < auth.refresh_at_ms {
            return Ok(());
        }
        match self.oauth.token(server, &auth.subject).await {
            Ok(t) => {
                auth.presented.replace(t.access);
                auth.refresh_at_ms = t.refresh_at_ms;
                Ok(())
            }
            Err(Needed::Authorisation { why, .. }) => Err(format!("authorisation needed: {why}")),
            Err(Needed::Failed(why)) => {
                // Tried again in a moment; the token may still be good.
                auth.refresh_at_ms = now + 1_000;
                tracing::warn!(server = %server.id, error = %why, "OAuth refresh failed");
                Ok(())
            }
        }
    }

    /// Lists what the server offers, then checks it is alive and lists again
    /// until the connection fails or `stop`; returns why it ended. An OAuth
    /// connection's token is refreshed when due, in place.
    async fn serve(
        &self,
        server: &McpServer,
        service: RunningService<RoleClient, Client>,
        list_changed: Arc<Notify>,
        mut auth: Option<Auth>,
        stop: &CancellationToken,
    ) -> String {
        let peer = service.peer().clone();
        let closer = service.cancellation_token();
        let waiting = service.waiting();
        tokio::pin!(waiting);
        let timeout = self.config.call_timeout;
        let version = peer.peer_info().map(|i| i.protocol_version.clone());
        let stateless = version.as_ref().is_some_and(|v| !v.has_initialize());
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
                let due = auth.as_ref().map_or(u64::MAX, |a| a.refresh_at_ms).max(1);
                let until_due = Duration::from_millis(due.saturating_sub(self.governance.now_ms()));
                tokio::select! {
                    _ = stop.cancelled() => break ("stopped".to_string(), false),
                    _ = &mut waiting => break ("the connection closed".to_string(), true),
                    _ = list_changed.notified() => true,
                    _ = refresh.tick() => true,
                    _ = tokio::time::sleep(until_due), if due != u64::MAX => {
                        match self.keep_fresh(server, auth.as_mut().expect("due only with auth")).await {
                            Ok(()) => false,
                            Err(why) => break (why, false),
                        }
                    }
                    _ = ping.tick() => {
                        if let Some(a) = &auth
                            && !self.oauth.holds(&server.id, &a.subject)
                        {
                            break ("its OAuth tokens were forgotten or refused".to_string(), false);
                        }
                        match tokio::time::timeout(timeout, alive(&peer, stateless)).await {
                            Ok(Ok(())) => false,
                            Ok(Err(e)) => {
                                if let Some(a) = auth.as_ref().filter(|a| a.presented.rejected()) {
                                    self.oauth.rejected(&server.id, &a.subject);
                                }
                                break (format!("ping failed: {e}"), false)
                            }
                            Err(_) => break ("ping timed out".to_string(), false),
                        }
                    }
                }
            };
            if list {
                let listing = async {
                    let tools = peer
                        .list_all_tools()
                        .await
                        .map_err(|e| format!("listing tools failed: {e}"))?;
                    Ok::<_, String>((tools, list_catalog(&peer).await))
                };
                match tokio::time::timeout(timeout, listing).await {
                    Ok(Ok((tools, mut listed))) => {
                        if listed.bound() {
                            tracing::warn!(server = %server.id, most = super::catalog::MAX_PER_SERVER, "MCP server lists too many resources or prompts: cut");
                        }
                        tracing::info!(server = %server.id, tools = tools.len(), resources = listed.resources.len(), prompts = listed.prompts.len(), "MCP server listed");
                        self.update_indexed(server, |l| {
                            // A refresh that found the same lists changes nothing
                            // (and sends no list_changed to `/mcp` clients).
                            let same = l.status.state == ConnState::Connected
                                && l.tools == tools
                                && l.listed == listed;
                            l.status.state = ConnState::Connected;
                            l.status.protocol_version = version.as_ref().map(|v| v.to_string());
                            l.status.last_error = None;
                            l.tools = tools;
                            l.listed = listed;
                            l.peer = Some(peer.clone());
                            !same
                        });
                    }
                    Ok(Err(e)) => break (e, false),
                    Err(_) => break ("listing timed out".to_string(), false),
                }
            }
        };
        if !closed {
            closer.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(5), waiting).await;
        }
        why
    }

    fn peer_of(&self, server: &str) -> Result<Peer<RoleClient>, CallError> {
        let live = self.live.lock().expect("upstreams lock");
        live.get(server)
            .and_then(|l| l.peer.clone())
            .ok_or_else(|| CallError::NotConnected(server.to_string()))
    }

    /// The gateway's connection to `server`, or `subject`'s for a per-user server.
    async fn peer_for(
        &self,
        server: &str,
        subject: Option<&str>,
    ) -> Result<Peer<RoleClient>, CallError> {
        match subject {
            Some(subject) => self.personal_peer(server, subject).await,
            None => self.peer_of(server),
        }
    }

    /// Calls `tool` at its server with `arguments`. Progress the server
    /// reports goes to `progress`; dropping the future tells the server the
    /// call is cancelled.
    pub async fn call(
        &self,
        tool: &IndexedTool,
        arguments: Option<JsonObject>,
        progress: Option<mpsc::Sender<Progress>>,
    ) -> Result<CallToolResult, CallError> {
        let server = tool.server.to_string();
        let peer = self.peer_for(&server, tool.subject.as_deref()).await?;
        let mut params = CallToolRequestParams::new(tool.tool.clone());
        params.arguments = arguments;
        let request = ClientRequest::CallToolRequest(CallToolRequest::new(params));
        let answered = async {
            let handle = peer
                .send_request_with_option(request, PeerRequestOptions::no_options())
                .await?;
            let _route = progress.map(|tx| {
                ProgressRoute::open(
                    &self.progress,
                    (tool.server.clone(), handle.progress_token.clone()),
                    tx,
                )
            });
            let mut abandoned = Abandoned::new(&peer, handle.id.clone());
            let answer = handle.await_response().await;
            abandoned.disarm();
            answer
        };
        match self.bounded(&server, answered).await? {
            ServerResult::CallToolResult(r) => Ok(r),
            _ => Err(CallError::Upstream {
                server,
                message: "answered tools/call with something other than a tool result".into(),
            }),
        }
    }

    /// `resources/read` of `uri` at `server`.
    pub async fn read_resource(
        &self,
        server: &str,
        subject: Option<&str>,
        uri: &str,
    ) -> Result<ReadResourceResult, CallError> {
        let peer = self.peer_for(server, subject).await?;
        let read = peer.read_resource(ReadResourceRequestParams::new(uri));
        self.bounded(server, read).await
    }

    /// `prompts/get` of the prompt `name` at `server`.
    pub async fn get_prompt(
        &self,
        server: &str,
        subject: Option<&str>,
        name: &str,
        arguments: Option<JsonObject>,
    ) -> Result<GetPromptResult, CallError> {
        let peer = self.peer_for(server, subject).await?;
        let mut params = GetPromptRequestParams::new(name);
        params.arguments = arguments;
        self.bounded(server, peer.get_prompt(params)).await
    }

    async fn bounded<T>(
        &self,
        server: &str,
        call: impl Future<Output = Result<T, rmcp::ServiceError>>,
    ) -> Result<T, CallError> {
        match tokio::time::timeout(self.config.call_timeout, call).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => Err(CallError::Upstream {
                server: server.to_string(),
                message: e.to_string(),
            }),
            Err(_) => Err(CallError::Timeout(server.to_string())),
        }
    }
}

/// Whether the server still answers: `ping` in the session era, which
/// 2026-07-28 removed; there, `server/discover` (sent as a request of its
/// own, not served from the client's cache).
async fn alive(peer: &Peer<RoleClient>, stateless: bool) -> Result<(), rmcp::ServiceError> {
    let request = if stateless {
        ClientRequest::DiscoverRequest(DiscoverRequest::new(DiscoverRequestParams {}))
    } else {
        ClientRequest::PingRequest(PingRequest::default())
    };
    peer.send_request(request).await.map(|_| ())
}

/// Resources, templates and prompts of a server that offers them. A server
/// that says it offers them but fails to list them contributes none: its
/// tools still work.
async fn list_catalog(peer: &Peer<RoleClient>) -> Listed {
    let caps = peer
        .peer_info()
        .map(|i| i.capabilities.clone())
        .unwrap_or_default();
    let mut listed = Listed::default();
    if caps.resources.is_some() {
        listed.resources = peer.list_all_resources().await.unwrap_or_default();
        listed.templates = peer.list_all_resource_templates().await.unwrap_or_default();
    }
    if caps.prompts.is_some() {
        listed.prompts = peer.list_all_prompts().await.unwrap_or_default();
    }
    listed
}

/// A call's progress route, removed when the call ends.
struct ProgressRoute {
    routes: ProgressRoutes,
    token: (Arc<str>, ProgressToken),
}

impl ProgressRoute {
    fn open(
        routes: &ProgressRoutes,
        token: (Arc<str>, ProgressToken),
        tx: mpsc::Sender<Progress>,
    ) -> ProgressRoute {
        routes
            .lock()
            .expect("progress lock")
            .insert(token.clone(), tx);
        ProgressRoute {
            routes: routes.clone(),
            token,
        }
    }
}

impl Drop for ProgressRoute {
    fn drop(&mut self) {
        self.routes
            .lock()
            .expect("progress lock")
            .remove(&self.token);
    }
}

/// Sends `notifications/cancelled` for a request abandoned before its answer
/// (the caller went away, or the call timed out).
struct Abandoned {
    peer: Option<Peer<RoleClient>>,
    id: RequestId,
}

impl Abandoned {
    fn new(peer: &Peer<RoleClient>, id: RequestId) -> Abandoned {
        Abandoned {
            peer: Some(peer.clone()),
            id,
        }
    }

    fn disarm(&mut self) {
        self.peer = None;
    }
}

impl Drop for Abandoned {
    fn drop(&mut self) {
        let Some(peer) = self.peer.take() else {
            return;
        };
        let cancelled = CancelledNotification::new(CancelledNotificationParam::new(
            Some(self.id.clone()),
            Some("the gateway's caller went away".to_string()),
        ));
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = peer.send_notification(cancelled.into()).await;
            });
        }
    }
}

/// `env.VAR` secrets filled from this node's environment.
fn resolved(
    secrets: &std::collections::BTreeMap<String, Secret>,
) -> Result<Vec<(String, String)>, String> {
    secrets
        .iter()
        .map(|(k, v)| Ok((k.clone(), resolve_secret(v)?)))
        .collect()
}

/// A secret's value, an `env.VAR` one read from this node's environment.
pub fn resolve_secret(secret: &Secret) -> Result<String, String> {
    let vars: Vec<(String, String)> = std::env::vars().collect();
    let mut v = secret.clone();
    v.resolve(&vars)
        .map_err(|var| format!("environment variable {var} is not set on this node"))?;
    Ok(v.expose().to_string())
}

/// Opens a connection in the server's era: 2026-07-28 if it answers
/// `server/discover` with it, else the `initialize` handshake — also when it
/// answers discovery by naming only handshake-era versions, which rmcp's own
/// fallback does not cover (the connection is then opened again).
async fn connect(
    server: &McpServer,
    config: &McpConfig,
    client: Client,
    token: Option<Arc<Presented>>,
) -> Result<RunningService<RoleClient, Client>, String> {
    let either = ClientLifecycleMode::Auto {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        legacy_version: None,
    };
    match open(server, config, client.clone(), either, token.clone()).await {
        Err(Opening::HandshakeOnly) => open(
            server,
            config,
            client,
            ClientLifecycleMode::Initialize,
            token,
        )
        .await
        .map_err(Opening::into_message),
        r => r.map_err(Opening::into_message),
    }
}

/// Why a connection did not open.
enum Opening {
    /// The server speaks only session-era versions.
    HandshakeOnly,
    Failed(String),
}

impl Opening {
    fn into_message(self) -> String {
        match self {
            Opening::HandshakeOnly => "the server refused every protocol version offered".into(),
            Opening::Failed(why) => why,
        }
    }
}

impl From<String> for Opening {
    fn from(why: String) -> Opening {
        Opening::Failed(why)
    }
}

impl From<rmcp::service::ClientInitializeError> for Opening {
    fn from(e: rmcp::service::ClientInitializeError) -> Opening {
        match e {
            rmcp::service::ClientInitializeError::NoCompatibleProtocolVersion {
                server_supported,
                ..
            } if server_supported.iter().any(ProtocolVersion::has_initialize) => {
                Opening::HandshakeOnly
            }
            e => Opening::Failed(e.to_string()),
        }
    }
}

/// Opens a connection with one lifecycle.
async fn open(
    server: &McpServer,
    config: &McpConfig,
    client: Client,
    lifecycle: ClientLifecycleMode,
    token: Option<Arc<Presented>>,
) -> Result<RunningService<RoleClient, Client>, Opening> {
    match &server.transport {
        McpTransport::Stdio { command, args, env } => {
            if !config.allow_stdio {
                return Err(Opening::Failed(
                    "stdio servers are not allowed on this node (mcp.allow_stdio)".into(),
                ));
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
            Ok(client.serve_with_lifecycle(transport, lifecycle).await?)
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
            if let Some(token) = token {
                let bearer = Bearer {
                    inner: http_client()?,
                    token,
                };
                let transport = StreamableHttpClientTransport::with_client(bearer, config);
                return Ok(client.serve_with_lifecycle(transport, lifecycle).await?);
            }
            let transport = StreamableHttpClientTransport::with_client(http_client()?, config);
            Ok(client.serve_with_lifecycle(transport, lifecycle).await?)
        }
        McpTransport::Sse { url, headers } => {
            let transport =
                super::sse_client::SseClientTransport::connect(url, &resolved(headers)?)
                    .await
                    .map_err(|e| e.to_string())?;
            // The HTTP+SSE transport is of 2024-11-05: the handshake only.
            Ok(client.serve(transport).await?)
        }
    }
}

/// The HTTP client for streamable-HTTP servers: rustls with the `ring`
/// provider and the built-in web roots, so the node needs no system
/// certificate store (rmcp's default client refuses to start without one).
pub fn http_client() -> Result<reqwest_rmcp::Client, String> {
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
