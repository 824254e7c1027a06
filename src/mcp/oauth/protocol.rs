//! The gateway's side of the MCP authorization specification, as an OAuth
//! 2.1 client: finding the authorization server of a protected MCP server
//! (RFC 9728 protected-resource metadata, then RFC 8414 / OpenID
//! authorization-server metadata), registering (a client ID metadata
//! document, or RFC 7591 dynamic registration), the authorization-code grant
//! with PKCE (S256) and the refresh grant, every request naming the MCP
//! server as its RFC 8707 `resource`.
//!
//! Every answer read here is bounded in bytes and time: these are requests
//! to servers the gateway does not control.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::Uri;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Longest metadata or token answer read, bytes.
const MAX_ANSWER: usize = 64 * 1024;
/// Longest wait for one request to an authorization server.
const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("{0}")]
    Discovery(String),
    #[error("{0}")]
    Http(String),
    /// The authorization server refused a grant (`invalid_grant` and kin):
    /// the user must authorise again.
    #[error("the authorization server refused: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Refused {
        error: String,
        description: Option<String>,
    },
}

/// What discovery found for one MCP server.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Discovered {
    /// The resource indicator tokens are requested for.
    pub resource: String,
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub registration_endpoint: Option<String>,
    pub client_id_metadata_documents: bool,
    /// What to ask for when the operator named nothing.
    pub scope: Option<String>,
}

/// A registered client of an authorization server.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ClientId {
    pub id: String,
    pub secret: Option<String>,
}

/// What a token endpoint granted.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Granted {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub expires_in: Option<u64>,
    pub scope: Option<String>,
}

/// A PKCE pair: the verifier stays with the gateway (sealed in the state),
/// the challenge goes in the authorization URL.
pub fn pkce() -> (String, String) {
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).expect("the OS random source works");
    let verifier = URL_SAFE_NO_PAD.encode(raw);
    (challenge_of(&verifier), verifier)
}

/// The S256 challenge of `verifier` (RFC 7636 §4.2).
pub fn challenge_of(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// `application/x-www-form-urlencoded` of `pairs` (also a query string).
pub fn form(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        escape(k, &mut out);
        out.push('=');
        escape(v, &mut out);
    }
    out
}

fn escape(s: &str, out: &mut String) {
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
}

/// The `resource_metadata` and `scope` parameters of a `WWW-Authenticate: Bearer` challenge.
pub fn challenge_params(header: &str) -> (Option<String>, Option<String>) {
    let param = |name: &str| {
        let at = header.find(&format!("{name}=\""))? + name.len() + 2;
        let rest = &header[at..];
        Some(rest[..rest.find('"')?].to_string())
    };
    (param("resource_metadata"), param("scope"))
}

/// Well-known URLs at `url`'s origin with `url`'s path after the suffix
/// (RFC 8414 §3.1, RFC 9728 §3.1), then at the root.
fn well_known(url: &str, suffix: &str) -> Result<Vec<String>, OAuthError> {
    let uri: Uri = url
        .parse()
        .map_err(|e| OAuthError::Discovery(format!("'{url}' is not a URL: {e}")))?;
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        return Err(OAuthError::Discovery(format!(
            "'{url}' is not an absolute URL"
        )));
    };
    let origin = format!("{scheme}://{authority}");
    let path = uri.path().trim_end_matches('/');
    let mut out = Vec::new();
    if !path.is_empty() {
        out.push(format!("{origin}/.well-known/{suffix}{path}"));
    }
    out.push(format!("{origin}/.well-known/{suffix}"));
    Ok(out)
}

/// The candidate metadata URLs of an issuer: OAuth first, then OpenID
/// Connect in both of its placements.
fn issuer_metadata_urls(issuer: &str) -> Result<Vec<String>, OAuthError> {
    let oauth = well_known(issuer, "oauth-authorization-server")?;
    let openid = well_known(issuer, "openid-configuration")?;
    let mut out = vec![oauth[0].clone(), openid[0].clone()];
    if oauth.len() > 1 {
        // An issuer with a path: OpenID's placement after the path too.
        out.push(format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        ));
    }
    out.dedup();
    Ok(out)
}

/// An HTTP client to authorization servers.
pub struct Http {
    client: reqwest_rmcp::Client,
}

impl Http {
    pub fn new(client: reqwest_rmcp::Client) -> Http {
        Http { client }
    }

    /// Finds the authorization server of the MCP server at `server_url`.
    pub async fn discover(&self, server_url: &str) -> Result<Discovered, OAuthError> {
        // A request without a token: a protected server answers 401 and
        // names its metadata in the challenge.
        let probe = self
            .client
            .post(server_url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(r#"{"jsonrpc":"2.0","id":0,"method":"ping"}"#)
            .timeout(TIMEOUT)
            .send()
            .await
            .map_err(|e| OAuthError::Http(format!("{server_url}: {e}")))?;
        let (named, challenged_scope) = probe
            .headers()
            .get_all("www-authenticate")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.trim_start().to_ascii_lowercase().starts_with("bearer"))
            .map(challenge_params)
            .unwrap_or_default();
        let mut candidates: Vec<String> = named.into_iter().collect();
        candidates.extend(well_known(server_url, "oauth-protected-resource")?);
        let (prm_url, prm) = self.first_json(&candidates).await.map_err(|why| {
            OAuthError::Discovery(format!("no protected-resource metadata: {why}"))
        })?;
        let issuer = issuer_of(&prm_url, &prm)?;
        let (as_url, meta) = self
            .first_json(&issuer_metadata_urls(&issuer)?)
            .await
            .map_err(|why| {
                OAuthError::Discovery(format!(
                    "no metadata for authorization server {issuer}: {why}"
                ))
            })?;
        discovered(server_url, &prm, issuer, &as_url, &meta, challenged_scope)
    }
}

/// The authorization server protected-resource metadata names (its first).
pub fn issuer_of(prm_url: &str, prm: &Value) -> Result<String, OAuthError> {
    prm["authorization_servers"]
        .as_array()
        .and_then(|a| a.first())
        .and_then(Value::as_str)
        .filter(|i| secure(i))
        .map(str::to_string)
        .ok_or_else(|| OAuthError::Discovery(format!("{prm_url} names no authorization server")))
}

/// What the gateway needs of a server's protected-resource metadata and
/// its authorization server's metadata.
pub fn discovered(
    server_url: &str,
    prm: &Value,
    issuer: String,
    as_url: &str,
    meta: &Value,
    challenged_scope: Option<String>,
) -> Result<Discovered, OAuthError> {
    let resource = prm["resource"].as_str().unwrap_or(server_url).to_string();
    // RFC 9728 §3.3: metadata about another resource is not this server's.
    if origin(&resource) != origin(server_url) {
        return Err(OAuthError::Discovery(format!(
            "the metadata describes {resource}, not {server_url}"
        )));
    }
    // The MCP authorization spec: authorization server endpoints are HTTPS
    // (plain HTTP only on this machine's loopback, for development).
    let text = |field: &str| {
        meta[field]
            .as_str()
            .filter(|u| secure(u))
            .map(str::to_string)
    };
    let s256 = meta["code_challenge_methods_supported"]
        .as_array()
        .is_some_and(|m| m.iter().any(|m| m == "S256"));
    if !s256 {
        // The MCP authorization spec: no PKCE support advertised, no flow.
        return Err(OAuthError::Discovery(format!(
            "{as_url} does not advertise PKCE with S256"
        )));
    }
    let scope = challenged_scope.or_else(|| {
        prm["scopes_supported"].as_array().map(|s| {
            s.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" ")
        })
    });
    Ok(Discovered {
        resource,
        issuer,
        authorization_endpoint: text("authorization_endpoint").ok_or_else(|| {
            OAuthError::Discovery(format!("{as_url} has no authorization_endpoint"))
        })?,
        token_endpoint: text("token_endpoint")
            .ok_or_else(|| OAuthError::Discovery(format!("{as_url} has no token_endpoint")))?,
        registration_endpoint: text("registration_endpoint"),
        client_id_metadata_documents: meta["client_id_metadata_document_supported"]
            == Value::Bool(true),
        scope: scope.filter(|s| !s.is_empty()),
    })
}

impl Http {
    /// RFC 7591 registration of a public client with one redirect URI.
    pub async fn register(
        &self,
        endpoint: &str,
        redirect_uri: &str,
        client_name: &str,
    ) -> Result<ClientId, OAuthError> {
        let body = serde_json::json!({
            "client_name": client_name,
            "redirect_uris": [redirect_uri],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        });
        let v = self
            .post(endpoint, "application/json", body.to_string())
            .await?;
        Ok(ClientId {
            id: v["client_id"]
                .as_str()
                .ok_or_else(|| OAuthError::Http(format!("{endpoint} returned no client_id")))?
                .to_string(),
            secret: v["client_secret"].as_str().map(str::to_string),
        })
    }

    /// A token request (`grant_type` with its parameters) at `endpoint`.
    pub async fn token(
        &self,
        endpoint: &str,
        client: &ClientId,
        params: &[(&str, &str)],
    ) -> Result<Granted, OAuthError> {
        let mut pairs = params.to_vec();
        pairs.push(("client_id", &client.id));
        if let Some(secret) = &client.secret {
            pairs.push(("client_secret", secret));
        }
        let v = self
            .post(endpoint, "application/x-www-form-urlencoded", form(&pairs))
            .await?;
        granted(v).map_err(|e| OAuthError::Http(format!("{endpoint}: {e}")))
    }

    /// POSTs `body` to `endpoint`; its JSON answer, or the refusal it is.
    async fn post(
        &self,
        endpoint: &str,
        content_type: &str,
        body: String,
    ) -> Result<Value, OAuthError> {
        let answer = self
            .client
            .post(endpoint)
            .header("content-type", content_type)
            .header("accept", "application/json")
            .body(body)
            .timeout(TIMEOUT)
            .send()
            .await
            .map_err(|e| OAuthError::Http(format!("{endpoint}: {e}")))?;
        let status = answer.status();
        let v = read_json(answer).await?;
        if !status.is_success() {
            return Err(refusal(&v, status));
        }
        Ok(v)
    }

    /// The first of `urls` that answers 200 with a JSON object.
    async fn first_json(&self, urls: &[String]) -> Result<(String, Value), String> {
        let mut why = Vec::new();
        for url in urls {
            let answer = match self.client.get(url).timeout(TIMEOUT).send().await {
                Ok(a) => a,
                Err(e) => {
                    why.push(format!("{url}: {e}"));
                    continue;
                }
            };
            if !answer.status().is_success() {
                why.push(format!("{url}: {}", answer.status()));
                continue;
            }
            match read_json(answer).await {
                Ok(v) if v.is_object() => return Ok((url.clone(), v)),
                Ok(_) => why.push(format!("{url}: not a JSON object")),
                Err(e) => why.push(format!("{url}: {e}")),
            }
        }
        Err(why.join("; "))
    }
}

/// The scheme and authority of `url`.
fn origin(url: &str) -> Option<String> {
    let uri: Uri = url.parse().ok()?;
    Some(format!("{}://{}", uri.scheme_str()?, uri.authority()?).to_ascii_lowercase())
}

/// An `https://` URL, or `http://` to a loopback host.
pub fn secure(url: &str) -> bool {
    let Ok(uri) = url.parse::<Uri>() else {
        return false;
    };
    match (uri.scheme_str(), uri.host()) {
        (Some("https"), Some(_)) => true,
        (Some("http"), Some(host)) => {
            host == "localhost"
                || host
                    .trim_matches(['[', ']'])
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        _ => false,
    }
}

/// A token endpoint's successful answer (RFC 6749 §5.1), checked.
pub fn granted(v: Value) -> Result<Granted, String> {
    let g: Granted = serde_json::from_value(v).map_err(|e| format!("not a token answer: {e}"))?;
    if g.access_token.is_empty() || g.access_token.len() > 16 * 1024 {
        return Err("an empty or oversized access token".into());
    }
    // A token that must be put in a header must fit in one.
    if !g.access_token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("an access token with characters a header cannot carry".into());
    }
    Ok(g)
}

/// The error of a refused request (RFC 6749 §5.2), else its status.
fn refusal(v: &Value, status: http::StatusCode) -> OAuthError {
    match v["error"].as_str() {
        Some(error) => OAuthError::Refused {
            error: error.chars().take(100).collect(),
            description: v["error_description"]
                .as_str()
                .map(|d| d.chars().take(300).collect()),
        },
        None => OAuthError::Http(format!("answered {status}")),
    }
}

/// A JSON answer of at most [`MAX_ANSWER`] bytes.
async fn read_json(mut answer: reqwest_rmcp::Response) -> Result<Value, OAuthError> {
    let mut body = Vec::new();
    while let Some(chunk) = answer
        .chunk()
        .await
        .map_err(|e| OAuthError::Http(e.to_string()))?
    {
        if body.len() + chunk.len() > MAX_ANSWER {
            return Err(OAuthError::Http(format!(
                "an answer over {MAX_ANSWER} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|e| OAuthError::Http(format!("not JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s256_matches_rfc_7636_appendix_b() {
        assert_eq!(
            challenge_of("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let (challenge, verifier) = pkce();
        assert_eq!(challenge, challenge_of(&verifier));
        assert_eq!(verifier.len(), 43);
    }

    #[test]
    fn metadata_must_be_this_servers_secure_and_offer_s256() {
        let prm = serde_json::json!({"resource": "https://mcp.example/mcp",
            "authorization_servers": ["https://auth.example"], "scopes_supported": ["a", "b"]});
        let meta = serde_json::json!({"authorization_endpoint": "https://auth.example/authorize",
            "token_endpoint": "https://auth.example/token", "code_challenge_methods_supported": ["S256"]});
        let issuer = issuer_of("m", &prm).unwrap();
        let d = discovered(
            "https://mcp.example/mcp",
            &prm,
            issuer.clone(),
            "a",
            &meta,
            None,
        )
        .unwrap();
        assert_eq!(d.scope.as_deref(), Some("a b"));
        assert!(!d.client_id_metadata_documents && d.registration_endpoint.is_none());
        // Metadata of another resource is refused (RFC 9728 §3.3).
        assert!(
            discovered(
                "https://other.example/mcp",
                &prm,
                issuer.clone(),
                "a",
                &meta,
                None
            )
            .is_err()
        );
        // No S256, no flow; plain-HTTP endpoints only on loopback.
        let mut plain = meta.clone();
        plain["code_challenge_methods_supported"] = serde_json::json!(["plain"]);
        assert!(
            discovered(
                "https://mcp.example/mcp",
                &prm,
                issuer.clone(),
                "a",
                &plain,
                None
            )
            .is_err()
        );
        let mut http = meta.clone();
        http["token_endpoint"] = "http://auth.example/token".into();
        assert!(discovered("https://mcp.example/mcp", &prm, issuer, "a", &http, None).is_err());
        assert!(
            secure("http://127.0.0.1:9/t")
                && secure("http://[::1]/t")
                && secure("http://localhost/t")
        );
        assert!(!secure("http://10.0.0.1/t") && !secure("ftp://x/t") && !secure("nonsense"));
        assert!(
            issuer_of(
                "m",
                &serde_json::json!({"authorization_servers": ["javascript:x"]})
            )
            .is_err()
        );
    }

    #[test]
    fn forms_escape_all_but_unreserved() {
        assert_eq!(
            form(&[("redirect_uri", "http://a/b?c=d e"), ("x", "~._-")]),
            "redirect_uri=http%3A%2F%2Fa%2Fb%3Fc%3Dd%20e&x=~._-"
        );
    }

    #[test]
    fn challenges_name_metadata_and_scope() {
        let h = r#"Bearer error="invalid_token", resource_metadata="https://mcp.example/.well-known/oauth-protected-resource/mcp", scope="repo read""#;
        assert_eq!(
            challenge_params(h),
            (
                Some("https://mcp.example/.well-known/oauth-protected-resource/mcp".into()),
                Some("repo read".into())
            )
        );
        assert_eq!(challenge_params("Bearer"), (None, None));
    }

    #[test]
    fn well_known_urls_keep_the_path_then_try_the_root() {
        assert_eq!(
            well_known("https://mcp.example/v1/mcp", "oauth-protected-resource").unwrap(),
            [
                "https://mcp.example/.well-known/oauth-protected-resource/v1/mcp",
                "https://mcp.example/.well-known/oauth-protected-resource"
            ]
        );
        assert_eq!(
            issuer_metadata_urls("https://auth.example/tenant").unwrap(),
            [
                "https://auth.example/.well-known/oauth-authorization-server/tenant",
                "https://auth.example/.well-known/openid-configuration/tenant",
                "https://auth.example/tenant/.well-known/openid-configuration",
            ]
        );
        assert_eq!(
            issuer_metadata_urls("https://auth.example").unwrap(),
            [
                "https://auth.example/.well-known/oauth-authorization-server",
                "https://auth.example/.well-known/openid-configuration",
            ]
        );
        assert!(well_known("not a url", "x").is_err());
    }
}
