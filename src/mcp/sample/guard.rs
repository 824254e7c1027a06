//! The sample server as an OAuth-protected resource (`--oauth-issuer URL`):
//! it publishes RFC 9728 metadata naming the authorization server, answers
//! `/mcp` without a valid token with 401 and a `WWW-Authenticate` challenge
//! naming that metadata, and checks every token by RFC 7662 introspection
//! at the authorization server (so a revoked or expired token is refused at
//! once) and that it was issued for this server (its audience). The user a
//! token belongs to reaches the `whoami` tool in the `x-sample-user` header.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

/// Where the user of the request's token rides to the tool.
pub const USER_HEADER: &str = "x-sample-user";
/// The path of the protected-resource metadata of `/mcp`.
pub const METADATA_PATH: &str = "/.well-known/oauth-protected-resource/mcp";

#[derive(Clone)]
pub struct Guard {
    issuer: Arc<str>,
    introspection: Arc<OnceCell<String>>,
    http: reqwest_rmcp::Client,
}

impl Guard {
    pub fn new(issuer: &str) -> std::io::Result<Guard> {
        Ok(Guard {
            issuer: Arc::from(issuer.trim_end_matches('/')),
            introspection: Arc::default(),
            http: crate::mcp::upstream::http_client().map_err(std::io::Error::other)?,
        })
    }

    /// The introspection endpoint, from the issuer's metadata (read once).
    async fn introspection(&self) -> Option<&str> {
        self.introspection
            .get_or_try_init(|| async {
                let uri: http::Uri = self.issuer.parse().map_err(|_| ())?;
                let origin = format!(
                    "{}://{}",
                    uri.scheme_str().ok_or(())?,
                    uri.authority().ok_or(())?
                );
                let path = uri.path().trim_end_matches('/');
                let url = format!("{origin}/.well-known/oauth-authorization-server{path}");
                let meta: Value = self
                    .http
                    .get(url)
                    .send()
                    .await
                    .map_err(|_| ())?
                    .json()
                    .await
                    .map_err(|_| ())?;
                meta["introspection_endpoint"]
                    .as_str()
                    .map(str::to_string)
                    .ok_or(())
            })
            .await
            .ok()
            .map(String::as_str)
    }

    /// The user of `token` if it is active and issued for `resource`.
    async fn user_of(&self, token: &str, resource: &str) -> Option<String> {
        let endpoint = self.introspection().await?;
        let body = crate::mcp::oauth::protocol::form(&[("token", token)]);
        let answer: Value = self
            .http
            .post(endpoint)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        if answer["active"] != Value::Bool(true) || answer["token_type"] == "refresh_token" {
            return None;
        }
        let audience_ok = match &answer["aud"] {
            Value::String(a) => a == resource,
            Value::Array(a) => a.iter().any(|a| a == resource),
            _ => false,
        };
        if !audience_ok {
            return None;
        }
        answer["sub"].as_str().map(str::to_string)
    }

    fn metadata(&self, origin: &str) -> Value {
        json!({
            "resource": format!("{origin}/mcp"),
            "authorization_servers": [&*self.issuer],
            "bearer_methods_supported": ["header"],
        })
    }
}

fn origin(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}")
}

/// `GET /.well-known/oauth-protected-resource[/mcp]`.
pub async fn metadata(State(g): State<Guard>, headers: HeaderMap) -> Response {
    Json(g.metadata(&origin(&headers))).into_response()
}

/// In front of `/mcp`: a valid token for this server, or 401.
pub async fn require_token(State(g): State<Guard>, mut req: Request, next: Next) -> Response {
    req.headers_mut().remove(USER_HEADER);
    let origin = origin(req.headers());
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    let user = match &token {
        Some(t) => g.user_of(t, &format!("{origin}/mcp")).await,
        None => None,
    };
    match user.and_then(|u| HeaderValue::try_from(u).ok()) {
        Some(u) => {
            req.headers_mut().insert(USER_HEADER, u);
            next.run(req).await
        }
        None => {
            let error = if token.is_some() {
                r#"error="invalid_token", "#
            } else {
                ""
            };
            let challenge = format!(r#"Bearer {error}resource_metadata="{origin}{METADATA_PATH}""#);
            (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, challenge)],
                "a valid bearer token for this server is required",
            )
                .into_response()
        }
    }
}
