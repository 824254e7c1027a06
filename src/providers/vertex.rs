//! Google Vertex AI's authentication, as the Vertex provider needs it: a
//! service account's key signs a JWT ([`assertion`], RS256), which Google's
//! token endpoint exchanges for an OAuth access token ([`exchange_form`],
//! [`parse_token`]); [`TokenCache`] keeps it and says when to fetch the
//! next one, before the current one expires. Pure: the provider makes the
//! HTTP call.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use crate::config::Secret;

/// The scope Vertex AI's endpoints accept.
pub const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

/// Google's token endpoint (a service account file names its own).
pub const TOKEN_URI: &str = "https://oauth2.googleapis.com/token";

/// A token is fetched again this long before it expires, so no request
/// starts (or streams on) with one about to lapse.
pub const REFRESH_BEFORE_SECS: u64 = 300;

/// Largest service account file and token answer read.
pub const MAX_JSON: usize = 64 * 1024;

/// The fields of a service account key file the exchange needs (`Debug`
/// does not show the key).
#[derive(Debug, Clone, Deserialize)]
pub struct ServiceAccount {
    pub client_email: String,
    /// PEM, PKCS #8 (`-----BEGIN PRIVATE KEY-----`).
    pub private_key: Secret,
    #[serde(default)]
    pub private_key_id: Option<String>,
    #[serde(default)]
    pub token_uri: Option<String>,
    #[serde(default)]
    pub project_id: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VertexError {
    #[error("service account JSON: {0}")]
    Json(String),
    #[error("service account private_key is not a PKCS #8 RSA key in PEM: {0}")]
    Key(String),
    #[error("token endpoint answer: {0}")]
    Token(String),
}

impl ServiceAccount {
    /// Reads a service account key file's text (at most [`MAX_JSON`]).
    pub fn parse(text: &str) -> Result<ServiceAccount, VertexError> {
        if text.len() > MAX_JSON {
            return Err(VertexError::Json(format!("over {MAX_JSON} bytes")));
        }
        serde_json::from_str(text).map_err(|e| VertexError::Json(e.to_string()))
    }

    /// Where the assertion is exchanged.
    pub fn token_uri(&self) -> &str {
        self.token_uri.as_deref().unwrap_or(TOKEN_URI)
    }
}

/// The signed JWT asserting `sa` for `scope`, issued at `now` (Unix
/// seconds) and valid for an hour, the longest Google accepts.
pub fn assertion(sa: &ServiceAccount, scope: &str, now: u64) -> Result<String, VertexError> {
    let key = key_pair(sa.private_key.expose())?;
    let mut header = serde_json::json!({"alg": "RS256", "typ": "JWT"});
    if let Some(kid) = &sa.private_key_id {
        header["kid"] = kid.clone().into();
    }
    let claims = serde_json::json!({
        "iss": sa.client_email,
        "scope": scope,
        "aud": sa.token_uri(),
        "iat": now,
        "exp": now + 3600,
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut signature = vec![0u8; key.public().modulus_len()];
    key.sign(
        &ring::signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        signing_input.as_bytes(),
        &mut signature,
    )
    .map_err(|_| VertexError::Key("signing failed".into()))?;
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature)
    ))
}

fn key_pair(pem: &str) -> Result<ring::signature::RsaKeyPair, VertexError> {
    let body: String = pem
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|e| VertexError::Key(e.to_string()))?;
    ring::signature::RsaKeyPair::from_pkcs8(&der).map_err(|e| VertexError::Key(e.to_string()))
}

/// The form body that exchanges `assertion` for an access token.
pub fn exchange_form(assertion: &str) -> String {
    format!(
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={assertion}"
    )
}

/// An access token and for how many seconds it is valid, from the token
/// endpoint's answer.
pub fn parse_token(body: &[u8]) -> Result<(String, u64), VertexError> {
    if body.len() > MAX_JSON {
        return Err(VertexError::Token(format!("over {MAX_JSON} bytes")));
    }
    #[derive(Deserialize)]
    struct Answer {
        access_token: Option<String>,
        expires_in: Option<u64>,
        error: Option<String>,
        error_description: Option<String>,
    }
    let a: Answer = serde_json::from_slice(body).map_err(|e| VertexError::Token(e.to_string()))?;
    match (a.access_token, a.error) {
        (Some(t), None) if !t.is_empty() => Ok((t, a.expires_in.unwrap_or(3600))),
        (_, Some(e)) => Err(VertexError::Token(match a.error_description {
            Some(d) => format!("{e}: {d}"),
            None => e,
        })),
        _ => Err(VertexError::Token("no access_token".into())),
    }
}

/// The current access token, and when to fetch the next one.
#[derive(Debug, Default)]
pub struct TokenCache {
    token: Option<(String, u64)>,
}

impl TokenCache {
    /// The token, while it has more than [`REFRESH_BEFORE_SECS`] left at
    /// `now` (Unix seconds).
    pub fn fresh(&self, now: u64) -> Option<&str> {
        self.token
            .as_ref()
            .filter(|(_, expires)| *expires > now + REFRESH_BEFORE_SECS)
            .map(|(t, _)| t.as_str())
    }

    /// Keeps a token received at `now`, valid for `expires_in` seconds.
    pub fn store(&mut self, token: String, expires_in: u64, now: u64) {
        self.token = Some((token, now + expires_in));
    }

    /// Forgets the token (the upstream refused it: fetch another).
    pub fn clear(&mut self) {
        self.token = None;
    }
}

/// A Vertex key as the request path uses it: where its requests go and the
/// token they carry.
#[derive(Debug)]
pub struct Key {
    pub project: String,
    pub location: String,
    /// The base URL with this key's location in it.
    base_url: String,
    auth: KeyAuth,
}

#[derive(Debug)]
enum KeyAuth {
    /// An access token given as it is (refreshed by whoever gave it).
    Token(Secret),
    /// A service account: its tokens are fetched, kept, and fetched again
    /// before they expire, one fetch at a time.
    Account {
        account: Box<ServiceAccount>,
        cache: tokio::sync::Mutex<TokenCache>,
    },
}

impl Key {
    /// A key from its secret (a service account file's JSON, or an access
    /// token), for `project` (default: the service account's) at
    /// `location`, under `base_url` (with `{location}` in it, dropped with
    /// its `-` for `global`).
    pub fn new(
        secret: &Secret,
        project: Option<String>,
        location: &str,
        base_url: &str,
    ) -> Result<Key, VertexError> {
        let (auth, account_project) = if secret.expose().trim_start().starts_with('{') {
            let sa = ServiceAccount::parse(secret.expose())?;
            let p = sa.project_id.clone();
            let account = KeyAuth::Account {
                account: Box::new(sa),
                cache: tokio::sync::Mutex::new(TokenCache::default()),
            };
            (account, p)
        } else {
            (KeyAuth::Token(secret.clone()), None)
        };
        let project = project.or(account_project).ok_or_else(|| {
            VertexError::Json("no project: set project on the provider or key".into())
        })?;
        let base_url = if location == "global" {
            base_url
                .replace("{location}-", "")
                .replace("{location}", "global")
        } else {
            base_url.replace("{location}", location)
        };
        Ok(Key {
            project,
            location: location.to_string(),
            base_url,
            auth,
        })
    }

    /// The URL of a request for `model`: Gemini models under Google's
    /// publisher in their own format, Claude under Anthropic's.
    pub fn url(&self, model: &str, anthropic: bool, stream: bool) -> String {
        let (publisher, method) = match (anthropic, stream) {
            (true, false) => ("anthropic", "rawPredict"),
            (true, true) => ("anthropic", "streamRawPredict"),
            (false, false) => ("google", "generateContent"),
            (false, true) => ("google", "streamGenerateContent?alt=sse"),
        };
        format!(
            "{}/v1/projects/{}/locations/{}/publishers/{publisher}/models/{}:{method}",
            self.base_url,
            crate::providers::openai::path_segment(&self.project),
            crate::providers::openai::path_segment(&self.location),
            crate::providers::openai::path_segment(model),
        )
    }

    /// The bearer token for a request made now (`now` in Unix seconds):
    /// the given one, or the service account's, fetched with `fetch(token
    /// URL, form body)` when the kept one nears expiry. Requests wait for
    /// the one fetch in progress rather than making their own.
    pub async fn token<F, Fut>(&self, now: u64, fetch: F) -> Result<String, VertexError>
    where
        F: FnOnce(String, String) -> Fut,
        Fut: std::future::Future<Output = Result<Vec<u8>, String>>,
    {
        let (account, cache) = match &self.auth {
            KeyAuth::Token(t) => return Ok(t.expose().to_string()),
            KeyAuth::Account { account, cache } => (account, cache),
        };
        let mut cache = cache.lock().await;
        if let Some(t) = cache.fresh(now) {
            return Ok(t.to_string());
        }
        let form = exchange_form(&assertion(account, SCOPE, now)?);
        let body = fetch(account.token_uri().to_string(), form)
            .await
            .map_err(VertexError::Token)?;
        let (token, expires_in) = parse_token(&body)?;
        cache.store(token.clone(), expires_in, now);
        Ok(token)
    }

    /// Whether this key's tokens are fetched (and so may be fetched again).
    pub fn refreshes(&self) -> bool {
        matches!(self.auth, KeyAuth::Account { .. })
    }

    /// The upstream refused the token: the next request fetches another.
    pub async fn forget(&self) {
        if let KeyAuth::Account { cache, .. } = &self.auth {
            cache.lock().await.clear();
        }
    }
}

/// A Claude request body for Vertex: Anthropic's Messages, with the model in
/// the URL instead and the API version Vertex names in the body.
pub fn anthropic_body(body: &[u8]) -> Option<bytes::Bytes> {
    let mut v: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(body).ok()?;
    v.remove("model");
    v.entry("anthropic_version")
        .or_insert_with(|| ANTHROPIC_VERSION.into());
    Some(bytes::Bytes::from(serde_json::Value::Object(v).to_string()))
}

/// The `anthropic_version` Claude on Vertex takes.
pub const ANTHROPIC_VERSION: &str = "vertex-2023-10-16";

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::KeyPair;

    /// A throwaway 2048-bit key made for these tests (`openssl genpkey`).
    const KEY: &str = include_str!("vertex/test_key.pem");

    fn account() -> ServiceAccount {
        ServiceAccount::parse(
            &serde_json::json!({
                "type": "service_account",
                "project_id": "proj-1",
                "private_key_id": "kid-1",
                "private_key": KEY,
                "client_email": "gw@proj-1.iam.gserviceaccount.com",
                "token_uri": "http://127.0.0.1:9/token",
            })
            .to_string(),
        )
        .unwrap()
    }

    #[test]
    fn the_assertion_is_a_jwt_the_key_signed() {
        let sa = account();
        let jwt = assertion(&sa, SCOPE, 1_700_000_000).unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let json = |p: &str| -> serde_json::Value {
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap()
        };
        assert_eq!(
            json(parts[0]),
            serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": "kid-1"})
        );
        let claims = json(parts[1]);
        assert_eq!(claims["iss"], "gw@proj-1.iam.gserviceaccount.com");
        assert_eq!(claims["aud"], "http://127.0.0.1:9/token");
        assert_eq!(claims["scope"], SCOPE);
        assert_eq!(claims["exp"], 1_700_003_600u64);
        let public = key_pair(KEY).unwrap().public_key().as_ref().to_vec();
        let verify = |input: &str| {
            ring::signature::UnparsedPublicKey::new(
                &ring::signature::RSA_PKCS1_2048_8192_SHA256,
                &public,
            )
            .verify(input.as_bytes(), &URL_SAFE_NO_PAD.decode(parts[2]).unwrap())
        };
        assert!(verify(&format!("{}.{}", parts[0], parts[1])).is_ok());
        assert!(verify(&format!("{}.{}x", parts[0], parts[1])).is_err());
        assert!(!format!("{sa:?}").contains("PRIVATE"));
    }

    #[test]
    fn bad_keys_files_and_answers_are_errors() {
        let mut sa = account();
        sa.private_key =
            Secret::new("-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----");
        assert!(matches!(assertion(&sa, SCOPE, 0), Err(VertexError::Key(_))));
        assert!(ServiceAccount::parse("{}").is_err());
        assert!(ServiceAccount::parse(&" ".repeat(MAX_JSON + 1)).is_err());
        assert_eq!(
            parse_token(br#"{"access_token":"ya29.x","expires_in":3599,"token_type":"Bearer"}"#),
            Ok(("ya29.x".into(), 3599))
        );
        assert_eq!(
            parse_token(br#"{"error":"invalid_grant","error_description":"Invalid JWT"}"#),
            Err(VertexError::Token("invalid_grant: Invalid JWT".into()))
        );
        assert!(parse_token(b"<html>").is_err());
        assert!(parse_token(br#"{"access_token":""}"#).is_err());
        assert!(exchange_form("a.b.c").ends_with("&assertion=a.b.c"));
    }

    #[test]
    fn a_token_is_fetched_again_before_it_expires() {
        let mut c = TokenCache::default();
        assert_eq!(c.fresh(0), None);
        c.store("t1".into(), 3600, 1000);
        assert_eq!(c.fresh(1000), Some("t1"));
        assert_eq!(c.fresh(1000 + 3600 - REFRESH_BEFORE_SECS - 1), Some("t1"));
        assert_eq!(c.fresh(1000 + 3600 - REFRESH_BEFORE_SECS), None);
        c.store("t2".into(), 3600, 5000);
        assert_eq!(c.fresh(5000), Some("t2"));
        c.clear();
        assert_eq!(c.fresh(5000), None);
    }

    #[test]
    fn keys_know_their_urls_and_need_a_project() {
        let token = Secret::new("ya29.given");
        let base = "https://{location}-aiplatform.googleapis.com";
        let k = Key::new(&token, Some("p-1".into()), "us-east5", base).unwrap();
        assert_eq!(
            k.url("gemini-2.5-flash", false, true),
            "https://us-east5-aiplatform.googleapis.com/v1/projects/p-1/locations/us-east5/publishers/google/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
        );
        assert_eq!(
            k.url("claude-sonnet-4-5@20250929", true, false),
            "https://us-east5-aiplatform.googleapis.com/v1/projects/p-1/locations/us-east5/publishers/anthropic/models/claude-sonnet-4-5%4020250929:rawPredict"
        );
        let g = Key::new(&token, Some("p-1".into()), "global", base).unwrap();
        assert!(
            g.url("m", true, true).starts_with(
                "https://aiplatform.googleapis.com/v1/projects/p-1/locations/global/publishers/anthropic/models/m:streamRawPredict"
            ),
            "{}",
            g.url("m", true, true)
        );
        assert!(!k.refreshes());
        assert!(
            Key::new(&token, None, "us-east5", base).is_err(),
            "a token names no project"
        );
        // A service account names its own.
        let sa = Secret::new(
            serde_json::json!({"client_email": "a@b", "private_key": KEY, "project_id": "from-file"})
                .to_string(),
        );
        let k = Key::new(&sa, None, "europe-west1", base).unwrap();
        assert_eq!(k.project, "from-file");
        assert!(k.refreshes());
    }

    #[tokio::test]
    async fn tokens_are_fetched_once_and_again_when_forgotten_or_near_expiry() {
        let sa = Secret::new(
            serde_json::json!({"client_email": "a@b", "private_key": KEY, "project_id": "p",
                "token_uri": "http://127.0.0.1:9/token"})
            .to_string(),
        );
        let k = Key::new(&sa, None, "us-central1", "http://{location}").unwrap();
        let fetches = std::sync::atomic::AtomicU32::new(0);
        let fetch = |url: String, form: String| {
            let n = fetches.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            async move {
                assert_eq!(url, "http://127.0.0.1:9/token");
                assert!(form.contains("jwt-bearer&assertion="), "{form}");
                Ok(format!(r#"{{"access_token":"t{n}","expires_in":3600}}"#).into_bytes())
            }
        };
        assert_eq!(k.token(1000, fetch).await.unwrap(), "t1");
        assert_eq!(k.token(2000, fetch).await.unwrap(), "t1", "kept");
        assert_eq!(
            k.token(1000 + 3600 - REFRESH_BEFORE_SECS, fetch)
                .await
                .unwrap(),
            "t2"
        );
        k.forget().await;
        assert_eq!(k.token(5000, fetch).await.unwrap(), "t3");
        let refused = |_: String, _: String| async { Ok(br#"{"error":"invalid_grant"}"#.to_vec()) };
        k.forget().await;
        assert!(k.token(6000, refused).await.is_err());
    }

    #[test]
    fn claude_bodies_name_the_vertex_version_not_the_model() {
        let b = anthropic_body(br#"{"model":"claude-x","max_tokens":5,"messages":[]}"#).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert!(v.get("model").is_none());
        assert_eq!(v["anthropic_version"], ANTHROPIC_VERSION);
        assert_eq!(v["max_tokens"], 5);
    }
}
