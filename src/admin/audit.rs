//! The admin API's audit trail: every write that succeeded is chained onto
//! this node's audit log with who made it and the object before and after
//! (secrets redacted); `GET /api/audit` reads the log (every node holds
//! every node's chain), `GET /api/audit/verify` checks this node's copy.

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::tokens::Principal;
use super::{AdminState, ApiError, off_workers, query};
use crate::observability::audit::{AuditQuery, Write};

/// Largest answer body read back to learn a created object's id.
const MAX_ANSWER_BYTES: usize = 4 << 20;

pub fn routes() -> Router<AdminState> {
    Router::new()
        .route("/api/audit", get(list))
        .route("/api/audit/verify", get(verify))
}

async fn list(
    State(s): State<AdminState>,
    q: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let audit = s.audit.clone();
    let data = off_workers(move || audit.query(&q)).await?;
    Ok(Json(json!({"data": data})).into_response())
}

async fn verify(State(s): State<AdminState>) -> Result<Response, ApiError> {
    let audit = s.audit.clone();
    let chains = off_workers(move || audit.verify()).await?;
    let ok = chains.iter().all(|c| c.broken.is_none());
    Ok(Json(json!({"ok": ok, "chains": chains})).into_response())
}

/// The table and object a write's path names, and its verb when the path
/// says it (`rotate`).
fn target(path: &str) -> (Option<&'static str>, Option<String>, Option<&'static str>) {
    let parts: Vec<&str> = path
        .trim_start_matches("/api/")
        .split('/')
        .filter(|p| !p.is_empty())
        .collect();
    let (kind, rest): (&'static str, &[&str]) = match parts.as_slice() {
        ["customers", rest @ ..] => ("customers", rest),
        ["teams", rest @ ..] => ("teams", rest),
        ["keys", rest @ ..] => ("keys", rest),
        ["providers", rest @ ..] => ("providers", rest),
        ["routing-rules", rest @ ..] => ("routing_rules", rest),
        ["mcp", "servers", rest @ ..] => ("mcp_servers", rest),
        ["mcp", "tool-groups", rest @ ..] => ("tool_groups", rest),
        ["admin-tokens", rest @ ..] => ("admin_tokens", rest),
        ["pricing", rest @ ..] if !rest.is_empty() => {
            return (Some("pricing"), Some(rest.join("/")), None);
        }
        _ => return (None, None, None),
    };
    match rest {
        [] => (Some(kind), None, None),
        [id] => (Some(kind), Some(id.to_string()), None),
        [id, "rotate"] => (Some(kind), Some(id.to_string()), Some("rotate")),
        [id, ..] => (Some(kind), Some(id.to_string()), None),
    }
}

/// `v` with every secret replaced by `***` (an `env.VAR` reference is
/// kept): hashes, keys, tokens, passwords, and every header and
/// environment value.
pub fn redacted(mut v: Value) -> Value {
    fn walk(v: &mut Value, hide_all: bool) {
        match v {
            Value::Object(m) => {
                for (k, child) in m.iter_mut() {
                    let k = k.to_ascii_lowercase();
                    let secret = hide_all
                        || k.contains("secret")
                        || k.contains("password")
                        || k.contains("token")
                        || k == "api_key"
                        || k == "authorization"
                        || k.ends_with("_hash");
                    walk(child, secret || k == "headers" || k == "env");
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|i| walk(i, hide_all)),
            Value::String(s) if hide_all && !s.starts_with("env.") => *v = Value::from("***"),
            _ => {}
        }
    }
    walk(&mut v, false);
    v
}

/// Runs a write and, when it succeeded, appends it to the audit log.
pub async fn recorded(s: &AdminState, who: Principal, req: Request, next: Next) -> Response {
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let shown_path = req
        .uri()
        .path_and_query()
        .map_or(path.clone(), |p| p.as_str().to_string());
    let (kind, id, verb) = target(&path);
    let state = |id: &Option<String>| match (kind, id) {
        (Some(k), Some(id)) => s
            .governance
            .object_json(k, id)
            .map_or(Value::Null, redacted),
        _ => Value::Null,
    };
    let before = state(&id);
    let response = next.run(req).await;
    if !response.status().is_success() {
        return response;
    }
    let status = response.status().as_u16();
    // A create names its new object in its answer.
    let (response, id) = match (kind, id) {
        (Some(_), None) => {
            let (parts, body) = response.into_parts();
            let bytes = axum::body::to_bytes(body, MAX_ANSWER_BYTES)
                .await
                .unwrap_or_default();
            let made: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let id = made["id"]
                .as_str()
                .or(made["name"].as_str())
                .map(str::to_string);
            (Response::from_parts(parts, Body::from(bytes)), id)
        }
        (_, id) => (response, id),
    };
    let action = verb.unwrap_or(match method.as_str() {
        "POST" => "create",
        "PUT" => "put",
        "PATCH" => "update",
        "DELETE" => "delete",
        _ => "write",
    });
    let write = Write {
        ts_ms: s.governance.now_ms(),
        token: who.token,
        token_name: who.name,
        role: who.role.as_str().to_string(),
        method,
        path: shown_path,
        kind: kind.map(str::to_string),
        after: state(&id),
        object: id,
        action: action.to_string(),
        status,
        before,
    };
    let audit = s.audit.clone();
    match tokio::task::spawn_blocking(move || audit.append(write)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            tracing::error!(error = %e, "an admin write could not be added to the audit log")
        }
        Err(e) => tracing::error!(error = %e, "an admin write could not be added to the audit log"),
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_their_objects() {
        assert_eq!(target("/api/keys"), (Some("keys"), None, None));
        assert_eq!(
            target("/api/keys/vk_1/rotate"),
            (Some("keys"), Some("vk_1".into()), Some("rotate"))
        );
        assert_eq!(
            target("/api/mcp/tool-groups/g"),
            (Some("tool_groups"), Some("g".into()), None)
        );
        assert_eq!(
            target("/api/pricing/openai/gpt-4o"),
            (Some("pricing"), Some("openai/gpt-4o".into()), None)
        );
        assert_eq!(target("/api/cache"), (None, None, None));
    }

    #[test]
    fn secrets_are_redacted_and_env_references_kept() {
        let v = redacted(json!({
            "name": "k", "secret_hash": "abc", "api_key": "sk-live",
            "keys": [{"name": "a", "api_key": "env.OPENAI_API_KEY"}, {"api_key": "sk-2"}],
            "headers": {"x-custom": "v"},
            "transport": {"env": {"TOKEN": "t"}, "command": "npx"},
        }));
        assert_eq!(v["name"], "k");
        assert_eq!(v["secret_hash"], "***");
        assert_eq!(v["api_key"], "***");
        assert_eq!(v["keys"][0]["api_key"], "env.OPENAI_API_KEY");
        assert_eq!(v["keys"][1]["api_key"], "***");
        assert_eq!(v["headers"]["x-custom"], "***");
        assert_eq!(v["transport"]["env"]["TOKEN"], "***");
        assert_eq!(v["transport"]["command"], "npx");
    }
}
