//! The mock's Vertex AI endpoints: a token endpoint (`POST /token`) that
//! exchanges a service account's signed JWT for an access token living
//! `--token-ttl` seconds, and the Vertex model routes
//! (`/v1/projects/{p}/locations/{l}/publishers/{google|anthropic}/models/
//! {model}:{method}`), which answer as the Gemini and Anthropic endpoints
//! do. A model route takes a token this mock issued and has not expired, or
//! any token starting `ya29.` (one given as it is); anything else is 401
//! `UNAUTHENTICATED`, as Vertex answers. Claude requests must carry
//! `anthropic_version: vertex-2023-10-16` and no `model` (it is in the URL).

use std::sync::atomic::{AtomicU64, Ordering};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use http::{HeaderMap, StatusCode, header};
use serde_json::{Value, json};

use super::Mock;

static ISSUED: AtomicU64 = AtomicU64::new(0);

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn error(status: u16, message: &str, name: &str) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        code,
        Json(json!({"error": {"code": status, "message": message, "status": name}})),
    )
        .into_response()
}

/// `POST /token`: a JWT-bearer grant for the cloud-platform scope, well
/// formed and not expired, gets an access token.
pub(super) async fn token(State(m): State<Mock>, body: Bytes) -> Response {
    let form = String::from_utf8_lossy(&body);
    let field = |name: &str| {
        form.split('&')
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .unwrap_or("")
            .to_string()
    };
    let refuse = |why: &str| {
        (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant", "error_description": why})),
        )
            .into_response()
    };
    if field("grant_type") != "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer" {
        return refuse("unsupported grant_type");
    }
    let assertion = field("assertion");
    let claims: Option<Value> = assertion.split('.').nth(1).and_then(|c| {
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(c)
            .ok()?;
        serde_json::from_slice(&raw).ok()
    });
    let Some(c) = claims.filter(|_| assertion.split('.').count() == 3) else {
        return refuse("Invalid JWT");
    };
    let (iat, exp) = (
        c["iat"].as_u64().unwrap_or(0),
        c["exp"].as_u64().unwrap_or(0),
    );
    if c["scope"] != crate::providers::vertex::SCOPE
        || !c["aud"].as_str().unwrap_or("").ends_with("/token")
        || c["iss"].as_str().is_none_or(str::is_empty)
        || exp <= iat
        || exp + 60 < now()
    {
        return refuse("Invalid JWT Signature or claims");
    }
    // Named by the process too: a restarted mock never reissues a name.
    let token = format!(
        "mock-vertex-token-{}-{}",
        std::process::id(),
        ISSUED.fetch_add(1, Ordering::Relaxed) + 1
    );
    let ttl = m.opts.token_ttl.as_secs();
    m.tokens
        .lock()
        .expect("tokens lock")
        .insert(token.clone(), now() + ttl);
    Json(json!({"access_token": token, "expires_in": ttl, "token_type": "Bearer"})).into_response()
}

/// The Vertex model routes, behind Vertex's token check.
pub(super) async fn predict(
    State(m): State<Mock>,
    Path((_project, _location, publisher, call)): Path<(String, String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let issued = m.tokens.lock().expect("tokens lock").get(bearer).copied();
    let valid = bearer.starts_with("ya29.") || issued.is_some_and(|exp| exp > now());
    if !valid {
        return error(
            401,
            "Request had invalid authentication credentials. Expected OAuth 2 access token.",
            "UNAUTHENTICATED",
        );
    }
    match publisher.as_str() {
        "google" => super::gemini::generate(State(m), Path(call), headers, body).await,
        "anthropic" => {
            let Some((model, method)) = call.rsplit_once(':') else {
                return error(404, "no method", "NOT_FOUND");
            };
            let stream = match method {
                "rawPredict" => false,
                "streamRawPredict" => true,
                _ => return error(404, "unknown method", "NOT_FOUND"),
            };
            let mut v: serde_json::Map<String, Value> = match serde_json::from_slice(&body) {
                Ok(v) => v,
                Err(e) => return error(400, &e.to_string(), "INVALID_ARGUMENT"),
            };
            if v.get("anthropic_version").and_then(Value::as_str)
                != Some(crate::providers::vertex::ANTHROPIC_VERSION)
                || v.contains_key("model")
            {
                return error(
                    400,
                    "anthropic_version must be vertex-2023-10-16 and the model is named in the URL",
                    "INVALID_ARGUMENT",
                );
            }
            v.insert("model".into(), json!(model));
            if stream {
                v.insert("stream".into(), json!(true));
            }
            let body = Bytes::from(Value::Object(v).to_string());
            super::anthropic::messages(State(m), headers, body).await
        }
        other => error(404, &format!("no publisher {other}"), "NOT_FOUND"),
    }
}
