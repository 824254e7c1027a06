//! OAuth to upstream MCP servers: the gateway authorises itself (one token
//! for the whole gateway) or each of its users (a token per virtual key or
//! end user) at a protected server, keeps the tokens sealed in replicated
//! state so any node can use them, and refreshes them before they expire,
//! one node at a time.
//!
//! An authorisation starts on any node ([`Broker::authorization_url`]): the
//! link carries a sealed `state` holding everything the callback needs (the
//! server, the subject, the PKCE verifier, the client), so the browser may
//! come back to any node behind the load balancer ([`routes`]). A refresh is
//! made by the node that holds the credential's lease (a replicated
//! last-writer-wins field, see [`Broker::token`]); a refresh the
//! authorization server refuses clears the tokens and asks for a new
//! authorisation, which replaces them, so nobody is locked out.

pub mod bearer;
pub mod protocol;
pub mod vault;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::governance::Governance;
use crate::governance::objects::{McpCredential, McpServer, McpTransport, Registration};
use protocol::{ClientId, Discovered, Granted, Http, OAuthError};
use vault::Vault;

/// The subject of gateway-wide credentials.
pub const GATEWAY: &str = "gateway";
/// How long an authorisation link stays good.
const STATE_TTL_MS: u64 = 10 * 60_000;
/// How long discovery results are reused.
const DISCOVERY_TTL: Duration = Duration::from_secs(300);
/// How long a node holds a refresh lease at most.
const LEASE_MS: u64 = 15_000;
/// Wait after writing a lease before trusting it: other nodes' competing
/// writes arrive by then, and last-writer-wins has picked one.
const LEASE_SETTLE: Duration = Duration::from_millis(300);
/// Path of the callback every redirect URI names.
pub const CALLBACK_PATH: &str = "/oauth/callback";
/// Path of the gateway's client ID metadata document.
pub const CLIENT_DOCUMENT_PATH: &str = "/oauth/client.json";

/// A usable access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub access: String,
    /// 0: not said.
    pub expires_at_ms: u64,
    /// When to refresh it (0: never needed).
    pub refresh_at_ms: u64,
}

/// Why no token can be had now.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Needed {
    /// The subject must (again) authorise ([`Broker::authorization_url`]).
    #[error("authorisation needed: {why}")]
    Authorisation { why: String },
    /// Something failed that another try may fix (the authorization server
    /// is unreachable, say).
    #[error("{0}")]
    Failed(String),
}

/// What the sealed credential holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Tokens {
    access_token: String,
    refresh_token: Option<String>,
    expires_at_ms: u64,
    obtained_ms: u64,
    token_endpoint: String,
    resource: String,
    client: ClientId,
}

/// What the sealed `state` of an authorisation link holds.
#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    server: String,
    subject: String,
    verifier: String,
    redirect_uri: String,
    token_endpoint: String,
    resource: String,
    client: ClientId,
    issued_ms: u64,
}

/// The OAuth side of this node.
pub struct Broker {
    governance: Arc<Governance>,
    vault: Vault,
    http: Http,
    /// Where browsers and authorization servers reach the gateway.
    public_url: String,
    /// Whether `public_url` was set, so that a client ID metadata document
    /// there can be fetched by the authorization server.
    published: bool,
    discovered: Mutex<HashMap<String, (Instant, Discovered)>>,
    /// Dynamic registrations of this node, by issuer.
    registered: Mutex<HashMap<String, ClientId>>,
}

/// The id of `subject`'s credential at `server`.
pub fn credential_id(server: &str, subject: &str) -> String {
    format!("{server}|{subject}")
}

impl Broker {
    pub fn new(
        governance: Arc<Governance>,
        key: [u8; 32],
        http: reqwest_rmcp::Client,
        public_url: &str,
        listen: std::net::SocketAddr,
    ) -> Broker {
        let published = !public_url.is_empty();
        let public_url = if published {
            public_url.trim_end_matches('/').to_string()
        } else if listen.ip().is_unspecified() {
            format!("http://127.0.0.1:{}", listen.port())
        } else {
            format!("http://{listen}")
        };
        Broker {
            governance,
            vault: Vault::new(key),
            http: Http::new(http),
            public_url,
            published,
            discovered: Mutex::default(),
            registered: Mutex::default(),
        }
    }

    fn redirect_uri(&self) -> String {
        format!("{}{CALLBACK_PATH}", self.public_url)
    }

    fn document_url(&self) -> String {
        format!("{}{CLIENT_DOCUMENT_PATH}", self.public_url)
    }

    /// The gateway's client ID metadata document (served at [`CLIENT_DOCUMENT_PATH`]).
    pub fn client_document(&self) -> serde_json::Value {
        serde_json::json!({
            "client_id": self.document_url(),
            "client_name": "Tollgate MCP gateway",
            "redirect_uris": [self.redirect_uri()],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        })
    }

    async fn discover(&self, url: &str) -> Result<Discovered, OAuthError> {
        if let Some((at, d)) = self.discovered.lock().expect("oauth lock").get(url)
            && at.elapsed() < DISCOVERY_TTL
        {
            return Ok(d.clone());
        }
        let d = self.http.discover(url).await?;
        self.discovered
            .lock()
            .expect("oauth lock")
            .insert(url.to_string(), (Instant::now(), d.clone()));
        Ok(d)
    }

    /// The client the gateway is at the server's authorization server.
    async fn client(&self, server: &McpServer, d: &Discovered) -> Result<ClientId, OAuthError> {
        let oauth = server.oauth.as_ref().expect("called for OAuth servers");
        if let Some(id) = &oauth.client_id {
            let secret = oauth
                .client_secret
                .as_ref()
                .map(crate::mcp::upstream::resolve_secret)
                .transpose()
                .map_err(OAuthError::Discovery)?;
            return Ok(ClientId {
                id: id.clone(),
                secret,
            });
        }
        let document = match oauth.registration {
            Registration::MetadataDocument => true,
            Registration::Dynamic => false,
            Registration::Auto => d.client_id_metadata_documents && self.published,
        };
        if document {
            if !d.client_id_metadata_documents {
                return Err(OAuthError::Discovery(format!(
                    "{} does not accept client ID metadata documents",
                    d.issuer
                )));
            }
            return Ok(ClientId {
                id: self.document_url(),
                secret: None,
            });
        }
        if let Some(c) = self.registered.lock().expect("oauth lock").get(&d.issuer) {
            return Ok(c.clone());
        }
        let Some(endpoint) = &d.registration_endpoint else {
            return Err(OAuthError::Discovery(format!(
                "{} offers no dynamic registration and accepts no client ID metadata \
                 documents here (set mcp.public_url, or oauth.client_id)",
                d.issuer
            )));
        };
        let c = self
            .http
            .register(endpoint, &self.redirect_uri(), "Tollgate MCP gateway")
            .await?;
        self.registered
            .lock()
            .expect("oauth lock")
            .insert(d.issuer.clone(), c.clone());
        Ok(c)
    }

    /// A link at which `subject` authorises the gateway at `server`.
    pub async fn authorization_url(
        &self,
        server: &McpServer,
        subject: &str,
    ) -> Result<String, OAuthError> {
        let McpTransport::Http { url, .. } = &server.transport else {
            return Err(OAuthError::Discovery("not a streamable-HTTP server".into()));
        };
        let oauth = server
            .oauth
            .as_ref()
            .ok_or_else(|| OAuthError::Discovery("the server has no oauth settings".into()))?;
        let d = self.discover(url).await?;
        let client = self.client(server, &d).await?;
        let (challenge, verifier) = protocol::pkce();
        let pending = Pending {
            server: server.id.clone(),
            subject: subject.to_string(),
            verifier,
            redirect_uri: self.redirect_uri(),
            token_endpoint: d.token_endpoint.clone(),
            resource: d.resource.clone(),
            client: client.clone(),
            issued_ms: self.governance.now_ms(),
        };
        let state = self.vault.seal(
            "state",
            &serde_json::to_vec(&pending).expect("pending encodes"),
        );
        let scope = if oauth.scopes.is_empty() {
            d.scope.clone().unwrap_or_default()
        } else {
            oauth.scopes.join(" ")
        };
        let mut params = vec![
            ("response_type", "code"),
            ("client_id", client.id.as_str()),
            ("redirect_uri", pending.redirect_uri.as_str()),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("state", state.as_str()),
            ("resource", d.resource.as_str()),
        ];
        if !scope.is_empty() {
            params.push(("scope", scope.as_str()));
        }
        let join = if d.authorization_endpoint.contains('?') {
            '&'
        } else {
            '?'
        };
        Ok(format!(
            "{}{join}{}",
            d.authorization_endpoint,
            protocol::form(&params)
        ))
    }

    /// The callback: exchanges `code` for tokens and keeps them; returns the
    /// server and subject authorised.
    pub async fn complete(&self, code: &str, state: &str) -> Result<(String, String), String> {
        let pending: Pending = self
            .vault
            .open("state", state)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or("this link was not made by this gateway, or was altered")?;
        if self.governance.now_ms().saturating_sub(pending.issued_ms) > STATE_TTL_MS {
            return Err("this authorisation link expired: ask for a new one".into());
        }
        let server = self
            .governance
            .get::<McpServer>(&pending.server)
            .filter(|s| s.oauth.is_some())
            .ok_or("the MCP server is no longer registered with OAuth")?;
        let granted = self
            .http
            .token(
                &pending.token_endpoint,
                &pending.client,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", code),
                    ("redirect_uri", &pending.redirect_uri),
                    ("code_verifier", &pending.verifier),
                    ("resource", &pending.resource),
                ],
            )
            .await
            .map_err(|e| e.to_string())?;
        let tokens = self.tokens_of(
            granted,
            None,
            pending.token_endpoint,
            pending.resource,
            pending.client,
        );
        self.save(&server.id, &pending.subject, &tokens)
            .map_err(|e| e.to_string())?;
        tracing::info!(server = %server.id, subject = %pending.subject, "OAuth authorisation completed");
        Ok((server.id, pending.subject))
    }

    fn tokens_of(
        &self,
        g: Granted,
        old_refresh: Option<String>,
        token_endpoint: String,
        resource: String,
        client: ClientId,
    ) -> Tokens {
        let now = self.governance.now_ms();
        Tokens {
            access_token: g.access_token,
            // A refresh answer without a new refresh token keeps the old one.
            refresh_token: g.refresh_token.or(old_refresh),
            expires_at_ms: g.expires_in.map_or(0, |s| now.saturating_add(s * 1000)),
            obtained_ms: now,
            token_endpoint,
            resource,
            client,
        }
    }

    fn save(
        &self,
        server: &str,
        subject: &str,
        t: &Tokens,
    ) -> Result<(), crate::governance::GovError> {
        let id = credential_id(server, subject);
        let sealed = self
            .vault
            .seal(&id, &serde_json::to_vec(t).expect("tokens encode"));
        self.governance
            .save_credential(&id, sealed, t.expires_at_ms, "")
    }

    /// Forgets `subject`'s tokens at `server` (they must authorise again).
    pub fn forget(&self, server: &str, subject: &str) -> Result<(), crate::governance::GovError> {
        self.governance.save_credential(
            &credential_id(server, subject),
            String::new(),
            0,
            "forgotten by an admin",
        )
    }

    /// Whether `subject` still holds tokens at `server` (an admin may have
    /// forgotten them, or a refresh was refused).
    pub fn holds(&self, server: &str, subject: &str) -> bool {
        self.standing(server, subject)
            .is_some_and(|(held, _, _)| held)
    }

    /// Whether `subject` holds tokens at `server`, and their expiry.
    pub fn standing(&self, server: &str, subject: &str) -> Option<(bool, u64, String)> {
        let c = self
            .governance
            .get::<McpCredential>(&credential_id(server, subject))?;
        Some((!c.sealed.is_empty(), c.expires_at_ms, c.problem))
    }

    fn open_tokens(&self, c: &McpCredential) -> Option<Tokens> {
        if c.sealed.is_empty() {
            return None;
        }
        let plain = self.vault.open(&c.id, &c.sealed).ok()?;
        serde_json::from_slice(&plain).ok()
    }

    fn token_of(t: &Tokens) -> Token {
        // Refreshed when a third of its life is left (at most a minute before).
        let refresh_at_ms = match (t.expires_at_ms, &t.refresh_token) {
            (0, _) | (_, None) => 0,
            (exp, Some(_)) => {
                let life = exp.saturating_sub(t.obtained_ms);
                exp.saturating_sub((life / 3).min(60_000))
            }
        };
        Token {
            access: t.access_token.clone(),
            expires_at_ms: t.expires_at_ms,
            refresh_at_ms,
        }
    }

    fn needs(why: &str) -> Needed {
        Needed::Authorisation {
            why: why.to_string(),
        }
    }

    /// `subject`'s access token at `server`, refreshed first when it is due.
    pub async fn token(&self, server: &McpServer, subject: &str) -> Result<Token, Needed> {
        let id = credential_id(&server.id, subject);
        for _ in 0..3 {
            let Some(c) = self.governance.get::<McpCredential>(&id) else {
                return Err(Self::needs("not authorised yet"));
            };
            let Some(tokens) = self.open_tokens(&c) else {
                let why = if c.problem.is_empty() {
                    "not authorised yet"
                } else {
                    c.problem.as_str()
                };
                return Err(Self::needs(why));
            };
            let token = Self::token_of(&tokens);
            let now = self.governance.now_ms();
            if token.refresh_at_ms == 0 || now < token.refresh_at_ms {
                if token.expires_at_ms != 0 && now >= token.expires_at_ms {
                    return Err(Self::needs("the token expired and cannot be refreshed"));
                }
                return Ok(token);
            }
            match self.refresh(server, subject, &c, tokens).await {
                Refreshed::Done(t) => return Ok(Self::token_of(&t)),
                Refreshed::Refused(why) => return Err(Self::needs(&why)),
                Refreshed::Failed(why) if now < token.expires_at_ms => {
                    tracing::warn!(server = %server.id, error = %why, "token refresh failed; the token is still good for now");
                    return Ok(token);
                }
                Refreshed::Failed(why) => return Err(Needed::Failed(why)),
                // Another node refreshes it: read what it wrote.
                Refreshed::Elsewhere => self.governance.credential_changed(&id, &c).await,
            }
        }
        Err(Needed::Failed(
            "the token is being refreshed by another node; try again".into(),
        ))
    }

    /// Refreshes under the credential's lease.
    async fn refresh(
        &self,
        server: &McpServer,
        subject: &str,
        c: &McpCredential,
        tokens: Tokens,
    ) -> Refreshed {
        let gov = &self.governance;
        if !gov.take_lease(&c.id, LEASE_MS) {
            return Refreshed::Elsewhere;
        }
        tokio::time::sleep(LEASE_SETTLE).await;
        if !gov.holds_lease(&c.id) {
            return Refreshed::Elsewhere;
        }
        // Another node may have refreshed just before this lease.
        if let Some(now) = gov.get::<McpCredential>(&c.id)
            && now.sealed != c.sealed
        {
            gov.release_lease(&c.id);
            return match self.open_tokens(&now) {
                Some(t) => Refreshed::Done(t),
                None => Refreshed::Refused(now.problem),
            };
        }
        let Some(refresh_token) = tokens.refresh_token.clone() else {
            gov.release_lease(&c.id);
            return Refreshed::Refused("no refresh token".into());
        };
        let answer = self
            .http
            .token(
                &tokens.token_endpoint,
                &tokens.client,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &refresh_token),
                    ("resource", &tokens.resource),
                ],
            )
            .await;
        match answer {
            Ok(g) => {
                let fresh = self.tokens_of(
                    g,
                    Some(refresh_token),
                    tokens.token_endpoint,
                    tokens.resource,
                    tokens.client,
                );
                // Saving writes the new tokens and clears the lease together.
                if let Err(e) = self.save(&server.id, subject, &fresh) {
                    return Refreshed::Failed(format!("cannot keep the refreshed token: {e}"));
                }
                tracing::info!(server = %server.id, subject, "OAuth token refreshed");
                Refreshed::Done(fresh)
            }
            Err(OAuthError::Refused { error, description }) => {
                let why = format!(
                    "the authorization server refused the refresh ({error}{}): authorise again",
                    description.map(|d| format!(": {d}")).unwrap_or_default()
                );
                tracing::warn!(server = %server.id, subject, reason = %why, "OAuth refresh refused");
                let _ = gov.save_credential(&c.id, String::new(), 0, &why);
                Refreshed::Refused(why)
            }
            Err(e) => {
                gov.release_lease(&c.id);
                Refreshed::Failed(format!("token refresh failed: {e}"))
            }
        }
    }

    /// A token the server rejected (401) although it had not expired: it was
    /// revoked. Its refresh is tried at once on the next use.
    pub fn rejected(&self, server: &str, subject: &str) {
        let id = credential_id(server, subject);
        if let Some(c) = self.governance.get::<McpCredential>(&id)
            && let Some(mut t) = self.open_tokens(&c)
        {
            let now = self.governance.now_ms();
            t.obtained_ms = now.saturating_sub(2);
            t.expires_at_ms = now.saturating_add(1).max(1);
            if t.refresh_token.is_none() {
                let _ = self.governance.save_credential(
                    &id,
                    String::new(),
                    0,
                    "the server rejected the token: authorise again",
                );
                return;
            }
            let _ = self.save(server, subject, &t);
        }
    }
}

enum Refreshed {
    Done(Tokens),
    Refused(String),
    Failed(String),
    Elsewhere,
}

#[derive(Deserialize)]
struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /oauth/callback` (the redirect URI; no virtual key: the sealed
/// state is the proof) and `GET /oauth/client.json`.
pub fn routes(broker: Arc<Broker>) -> Router {
    Router::new()
        .route(CALLBACK_PATH, get(callback))
        .route(CLIENT_DOCUMENT_PATH, get(client_document))
        .with_state(broker)
}

async fn client_document(State(b): State<Arc<Broker>>) -> Response {
    Json(b.client_document()).into_response()
}

async fn callback(
    State(b): State<Arc<Broker>>,
    q: Result<Query<Callback>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let page = |status: StatusCode, title: &str, text: &str| {
        let body = format!(
            "<!doctype html><meta charset=utf-8><title>{title}</title><h1>{title}</h1><p>{}</p>",
            html_escape(text)
        );
        (status, Html(body)).into_response()
    };
    let Ok(Query(q)) = q else {
        return page(
            StatusCode::BAD_REQUEST,
            "Authorisation failed",
            "malformed callback",
        );
    };
    if let Some(error) = q.error {
        let text = format!(
            "the authorization server answered {error}{}",
            q.error_description
                .map(|d| format!(": {d}"))
                .unwrap_or_default()
        );
        return page(StatusCode::BAD_REQUEST, "Authorisation failed", &text);
    }
    let (Some(code), Some(state)) = (q.code, q.state) else {
        return page(
            StatusCode::BAD_REQUEST,
            "Authorisation failed",
            "the callback lacks code or state",
        );
    };
    if code.len() > 4096 || state.len() > 8192 {
        return page(
            StatusCode::BAD_REQUEST,
            "Authorisation failed",
            "oversized callback",
        );
    }
    match b.complete(&code, &state).await {
        Ok((server, _)) => page(
            StatusCode::OK,
            "Authorised",
            &format!(
                "Tollgate may now use the MCP server '{server}' for you. You can close this window."
            ),
        ),
        Err(why) => page(StatusCode::BAD_REQUEST, "Authorisation failed", &why),
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
