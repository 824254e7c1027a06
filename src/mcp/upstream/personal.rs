//! Connections to per-user OAuth servers: one per (server, subject), opened
//! on any node when the subject first lists or calls the server's tools,
//! over the subject's own token, and closed when idle. Each has its own
//! small tool index whose tools are called over it and nothing else: one
//! subject's token is never presented for another.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::value::RawValue;

use super::*;
use crate::governance::ToolScope;

/// Most per-user connections a node keeps open; the least recently used
/// beyond that are closed.
const MOST: usize = 512;
/// A per-user connection unused this long is closed.
const IDLE_MS: u64 = 10 * 60_000;

/// The tool a subject without a token sees for a per-user server.
pub const AUTHORIZE_TOOL: &str = "authorize";

#[derive(Default)]
pub(super) struct Personal {
    conns: Mutex<HashMap<(String, String), Arc<Conn>>>,
}

/// One subject's connection to one server.
pub(super) struct Conn {
    server: McpServer,
    peer: Peer<RoleClient>,
    index: Arc<ToolIndex>,
    catalog: Arc<Catalog>,
    auth: tokio::sync::Mutex<Auth>,
    closer: CancellationToken,
    used_ms: AtomicU64,
}

/// What a subject may use of a per-user server now.
pub enum Reach {
    /// Its tools, over the subject's connection.
    Tools(Arc<ToolIndex>),
    /// Nothing until the subject authorises (the link, and why).
    Authorise { url: String, why: String },
}

impl Upstreams {
    /// The per-user servers registered and enabled now.
    pub fn per_user_servers(&self) -> Arc<Vec<McpServer>> {
        self.per_user_servers.load_full()
    }

    /// `subject`'s reach of `server`, connecting over its token if needed.
    pub async fn reach(&self, server: &McpServer, subject: &str) -> Result<Reach, String> {
        match self.personal_conn(server, subject).await {
            Ok(c) => Ok(Reach::Tools(c.index.clone())),
            Err(Needed::Authorisation { why }) => {
                match self.oauth.authorization_url(server, subject).await {
                    Ok(url) => Ok(Reach::Authorise { url, why }),
                    Err(e) => Err(format!("{why}, and no authorisation link can be made: {e}")),
                }
            }
            Err(Needed::Failed(why)) => Err(why),
        }
    }

    /// The `tools/list` entries of the per-user servers `scope` reaches, for
    /// `subject`: their tools where it holds a token, else the server's
    /// `authorize` tool. A server that fails contributes nothing.
    pub async fn personal_listing(&self, scope: &ToolScope, subject: &str) -> Vec<Box<RawValue>> {
        let mut out = Vec::new();
        for server in self.per_user_servers().iter() {
            if !scope.reaches_server(&server.id) {
                continue;
            }
            match self.personal_conn(server, subject).await {
                Ok(c) => out.extend(c.index.direct(scope).map(|t| t.json.clone())),
                Err(Needed::Authorisation { .. }) => out.push(authorize_tool(&server.id)),
                Err(Needed::Failed(why)) => {
                    tracing::warn!(server = %server.id, error = %why, "per-user MCP server unavailable")
                }
            }
        }
        out
    }

    /// The resources, templates and prompts of the per-user servers `scope`
    /// reaches that `subject` holds a token for.
    pub async fn personal_catalogs(&self, scope: &ToolScope, subject: &str) -> Vec<Arc<Catalog>> {
        let mut out = Vec::new();
        for server in self.per_user_servers().iter() {
            if scope.reaches_server(&server.id)
                && let Ok(c) = self.personal_conn(server, subject).await
            {
                out.push(c.catalog.clone());
            }
        }
        out
    }

    async fn personal_conn(&self, server: &McpServer, subject: &str) -> Result<Arc<Conn>, Needed> {
        let id = (server.id.clone(), subject.to_string());
        let found = self
            .personal
            .conns
            .lock()
            .expect("personal lock")
            .get(&id)
            .cloned();
        if let Some(c) = found
            && c.server == *server
            && !c.closer.is_cancelled()
            && self.oauth.holds(&server.id, subject)
        {
            c.used_ms.store(self.governance.now_ms(), Ordering::Relaxed);
            let mut auth = c.auth.lock().await;
            match self.keep_fresh(server, &mut auth).await {
                Ok(()) if !auth.presented.rejected() => return Ok(c.clone()),
                Ok(()) => self.oauth.rejected(&server.id, subject),
                Err(_) => {}
            }
            drop(auth);
            c.closer.cancel();
        }
        if let Some(c) = self
            .personal
            .conns
            .lock()
            .expect("personal lock")
            .remove(&id)
        {
            c.closer.cancel();
        }
        // A second try covers a token refused at once (revoked): refreshed,
        // or an authorisation asked for.
        let mut last = String::new();
        for _ in 0..2 {
            let auth = self
                .authorise(server, subject)
                .await?
                .expect("per-user servers have OAuth");
            let presented = auth.presented.clone();
            let client = self.client(server, Arc::new(Notify::new()));
            let opened = tokio::time::timeout(
                self.config.call_timeout,
                connect(server, &self.config, client, Some(presented.clone())),
            )
            .await;
            let service = match opened {
                Ok(Ok(service)) => service,
                Ok(Err(why)) if presented.rejected() => {
                    self.oauth.rejected(&server.id, subject);
                    last = why;
                    continue;
                }
                Ok(Err(why)) => return Err(Needed::Failed(why)),
                Err(_) => {
                    return Err(Needed::Failed(format!(
                        "timed out connecting to {}",
                        server.id
                    )));
                }
            };
            let peer = service.peer().clone();
            let listing = async {
                let tools = peer.list_all_tools().await?;
                let mut listed = list_catalog(&peer).await;
                listed.bound();
                Ok::<_, rmcp::ServiceError>((tools, listed))
            };
            let (tools, listed) =
                match tokio::time::timeout(self.config.call_timeout, listing).await {
                    Ok(Ok(lists)) => lists,
                    Ok(Err(e)) => return Err(Needed::Failed(format!("listing failed: {e}"))),
                    Err(_) => return Err(Needed::Failed("listing timed out".into())),
                };
            let conn = Arc::new(Conn {
                server: server.clone(),
                peer,
                index: Arc::new(ToolIndex::personal(server, &tools, subject)),
                catalog: Arc::new(Catalog::personal(server, &listed, subject)),
                auth: tokio::sync::Mutex::new(auth),
                closer: CancellationToken::new(),
                used_ms: AtomicU64::new(self.governance.now_ms()),
            });
            self.keep(id, conn.clone(), service);
            return Ok(conn);
        }
        Err(Needed::Failed(last))
    }

    /// Keeps `conn` until it closes, idles out or is replaced.
    fn keep(
        &self,
        id: (String, String),
        conn: Arc<Conn>,
        service: RunningService<RoleClient, Client>,
    ) {
        let now = self.governance.now_ms();
        {
            let mut conns = self.personal.conns.lock().expect("personal lock");
            conns.retain(|_, c| {
                let keep = !c.closer.is_cancelled()
                    && now.saturating_sub(c.used_ms.load(Ordering::Relaxed)) < IDLE_MS;
                if !keep {
                    c.closer.cancel();
                }
                keep
            });
            while conns.len() >= MOST {
                let oldest = conns
                    .iter()
                    .min_by_key(|(_, c)| c.used_ms.load(Ordering::Relaxed))
                    .map(|(k, _)| k.clone())
                    .expect("not empty");
                if let Some(c) = conns.remove(&oldest) {
                    c.closer.cancel();
                }
            }
            if let Some(old) = conns.insert(id, conn.clone()) {
                old.closer.cancel();
            }
        }
        let idle = Duration::from_millis(IDLE_MS);
        let governance = self.governance.clone();
        self.tasks.spawn(move |shutdown| async move {
            let closer = service.cancellation_token();
            let waiting = service.waiting();
            tokio::pin!(waiting);
            loop {
                tokio::select! {
                    _ = &mut waiting => break,
                    _ = shutdown.cancelled() => {
                        closer.cancel();
                        let _ = tokio::time::timeout(Duration::from_secs(5), &mut waiting).await;
                        break;
                    }
                    _ = conn.closer.cancelled() => {
                        closer.cancel();
                        let _ = tokio::time::timeout(Duration::from_secs(5), &mut waiting).await;
                        break;
                    }
                    _ = tokio::time::sleep(idle) => {
                        let used = conn.used_ms.load(Ordering::Relaxed);
                        if governance.now_ms().saturating_sub(used) >= IDLE_MS {
                            conn.closer.cancel();
                        }
                    }
                }
            }
            conn.closer.cancel();
        });
    }

    /// The peer of `subject`'s connection to `server`, for a call.
    pub(super) async fn personal_peer(
        &self,
        server: &str,
        subject: &str,
    ) -> Result<Peer<RoleClient>, CallError> {
        let servers = self.per_user_servers();
        let Some(registered) = servers.iter().find(|s| s.id == server) else {
            return Err(CallError::NotConnected(server.to_string()));
        };
        match self.personal_conn(registered, subject).await {
            Ok(c) => Ok(c.peer.clone()),
            Err(e) => Err(CallError::Upstream {
                server: server.to_string(),
                message: e.to_string(),
            }),
        }
    }
}

/// The `server-authorize` tool: what a subject without a token sees.
fn authorize_tool(server: &str) -> Box<RawValue> {
    let tool = serde_json::json!({
        "name": crate::mcp::tool_name(server, AUTHORIZE_TOOL),
        "description": format!(
            "Authorise the gateway to use the MCP server '{server}' on your behalf: returns a link to open in a browser. Its tools are listed once you have."
        ),
        "inputSchema": {"type": "object", "properties": {}},
    });
    serde_json::value::to_raw_value(&tool).expect("tools encode")
}
