//! The MCP part of the admin API: upstream servers (with this node's
//! connection state), tool groups, the tool index and the tool log.
//!
//! `/api/mcp/servers[/{name}]`, `/api/mcp/tool-groups[/{name}]` (PUT creates
//! or replaces by name, PATCH changes fields, both validated whole),
//! `GET /api/mcp/tools`, `GET /api/tool-logs`.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::objects::{self, Answer, Page, Shown, body_object, hide};
use super::{AdminState, query};
use crate::governance::GovError;
use crate::governance::objects::{McpServer, Object, ToolGroup};
use crate::observability::tool_log::ToolLogQuery;

pub fn routes() -> Router<AdminState> {
    Router::new()
        .route("/api/mcp/servers", get(list_servers))
        .route(
            "/api/mcp/servers/{name}",
            get(get_server)
                .put(put_server)
                .patch(patch_server)
                .delete(objects::delete::<McpServer>),
        )
        .route(
            "/api/mcp/servers/{name}/oauth",
            get(oauth_standing).post(oauth_start).delete(oauth_forget),
        )
        .route("/api/mcp/tool-groups", get(objects::list::<ToolGroup>))
        .route(
            "/api/mcp/tool-groups/{name}",
            get(objects::get_one::<ToolGroup>)
                .put(objects::put::<ToolGroup>)
                .patch(objects::patch::<ToolGroup>)
                .delete(objects::delete::<ToolGroup>),
        )
        .route("/api/mcp/tools", get(list_tools))
        .route("/api/tool-logs", get(tool_logs))
}

/// As stored, literal secrets of headers and environment replaced by `***`.
impl Shown for McpServer {
    fn shown(&self) -> Value {
        let mut v = serde_json::to_value(self).expect("servers serialize");
        for field in ["headers", "env"] {
            if let Some(m) = v["transport"].get_mut(field).and_then(Value::as_object_mut) {
                m.values_mut().for_each(hide);
            }
        }
        if let Some(secret) = v.get_mut("oauth").and_then(|o| o.get_mut("client_secret"))
            && !secret.is_null()
        {
            hide(secret);
        }
        v
    }
}

/// A server with this node's view of its connection.
fn with_status(s: &AdminState, server: &McpServer) -> Value {
    let mut v = server.shown();
    v["status"] = match s.upstreams.status(server) {
        Some(st) => serde_json::to_value(st).expect("statuses serialize"),
        // Connected per user, on demand: the gateway has no connection of its own.
        None if server.enabled && crate::mcp::upstream::per_user(server) => {
            json!({"state": "per_user", "tools": 0, "last_error": null})
        }
        None if !server.enabled => json!({"state": "disabled", "tools": 0, "last_error": null}),
        // Registered or changed a moment ago: its task has not started yet.
        None => json!({"state": "connecting", "tools": 0, "last_error": null}),
    };
    v
}

async fn list_servers(
    State(s): State<AdminState>,
    q: Result<Query<Page>, QueryRejection>,
) -> Answer {
    let page = query(q)?;
    let limit = page.limit()?;
    let (items, more) = s
        .governance
        .list::<McpServer>(page.cursor.as_deref(), limit);
    let next_cursor = more.then(|| items.last().map(|i| i.id.clone())).flatten();
    let data: Vec<Value> = items.iter().map(|i| with_status(&s, i)).collect();
    Ok(Json(json!({"data": data, "next_cursor": next_cursor})).into_response())
}

async fn get_server(State(s): State<AdminState>, Path(name): Path<String>) -> Answer {
    let server = s
        .governance
        .get::<McpServer>(&name)
        .ok_or(GovError::NotFound {
            kind: McpServer::KIND,
            id: name,
        })?;
    let mut v = with_status(&s, &server);
    let index = s.upstreams.index();
    let all = crate::governance::ToolScope::new(None, &[]);
    let tools: Vec<&str> = index
        .visible(&all)
        .filter(|t| *t.server == *server.id)
        .map(|t| t.name())
        .collect();
    v["tools"] = json!(tools);
    Ok(Json(v).into_response())
}

async fn put_server(
    State(s): State<AdminState>,
    Path(name): Path<String>,
    body: Result<Json<Value>, JsonRejection>,
) -> Answer {
    let server = s.governance.put::<McpServer>(&name, body_object(body)?)?;
    Ok(Json(with_status(&s, &server)).into_response())
}

async fn patch_server(
    State(s): State<AdminState>,
    Path(name): Path<String>,
    body: Result<Json<Value>, JsonRejection>,
) -> Answer {
    let server = s.governance.patch::<McpServer>(&name, body_object(body)?)?;
    Ok(Json(with_status(&s, &server)).into_response())
}

fn oauth_server(s: &AdminState, name: &str) -> Result<McpServer, GovError> {
    let server = s
        .governance
        .get::<McpServer>(name)
        .ok_or(GovError::NotFound {
            kind: McpServer::KIND,
            id: name.to_string(),
        })?;
    if server.oauth.is_none() {
        return Err(crate::governance::invalid(
            "oauth",
            "this server has no oauth settings",
        ));
    }
    Ok(server)
}

#[derive(serde::Deserialize)]
struct Subject {
    subject: Option<String>,
}

/// `?subject=`, the gateway's own tokens without one.
fn subject_of(q: Result<Query<Subject>, QueryRejection>) -> Result<String, super::ApiError> {
    Ok(query(q)?
        .subject
        .unwrap_or_else(|| crate::mcp::oauth::GATEWAY.into()))
}

/// `GET /api/mcp/servers/{name}/oauth[?subject=]`: whether the gateway (or
/// the subject) holds a token, when it expires, and why it must authorise
/// again if it must. Never the token.
async fn oauth_standing(
    State(s): State<AdminState>,
    Path(name): Path<String>,
    q: Result<Query<Subject>, QueryRejection>,
) -> Answer {
    let server = oauth_server(&s, &name)?;
    let subject = subject_of(q)?;
    let standing = s.upstreams.oauth().standing(&server.id, &subject);
    let (authorised, expires_at_ms, problem) = standing.unwrap_or((false, 0, String::new()));
    Ok(Json(json!({
        "server": server.id,
        "mode": server.oauth.as_ref().map(|o| o.mode),
        "subject": subject,
        "authorised": authorised,
        "expires_at_ms": (expires_at_ms > 0).then_some(expires_at_ms),
        "problem": (!problem.is_empty()).then_some(problem),
    }))
    .into_response())
}

/// `POST /api/mcp/servers/{name}/oauth`: the link at which an admin
/// authorises the gateway (gateway mode; per-user servers are authorised
/// by each user through the link `/mcp` gives them).
async fn oauth_start(State(s): State<AdminState>, Path(name): Path<String>) -> Answer {
    let server = oauth_server(&s, &name)?;
    if crate::mcp::upstream::per_user(&server) {
        return Err(crate::governance::invalid(
            "oauth.mode",
            "a per-user server is authorised by each user: /mcp answers their calls with their link",
        )
        .into());
    }
    match s
        .upstreams
        .oauth()
        .authorization_url(&server, crate::mcp::oauth::GATEWAY)
        .await
    {
        Ok(url) => Ok(Json(json!({"authorization_url": url})).into_response()),
        Err(e) => Ok((
            http::StatusCode::BAD_GATEWAY,
            Json(json!({"error": {"type": "oauth_discovery", "message": e.to_string()}})),
        )
            .into_response()),
    }
}

/// `DELETE /api/mcp/servers/{name}/oauth[?subject=]`: forgets the tokens
/// (the gateway's, or a user's); the next use asks for a new authorisation.
async fn oauth_forget(
    State(s): State<AdminState>,
    Path(name): Path<String>,
    q: Result<Query<Subject>, QueryRejection>,
) -> Answer {
    let server = oauth_server(&s, &name)?;
    let subject = subject_of(q)?;
    s.upstreams.oauth().forget(&server.id, &subject)?;
    Ok(http::StatusCode::NO_CONTENT.into_response())
}

/// Every tool this node currently exposes (whoever may call it).
async fn list_tools(State(s): State<AdminState>) -> Response {
    let index = s.upstreams.index();
    let all = crate::governance::ToolScope::new(None, &[]);
    let data: Vec<Value> = index
        .visible(&all)
        .map(|t| {
            json!({
                "name": t.name(),
                "server": &*t.server,
                "tool": t.tool,
                "description": t.shown.description,
                "price_micros": t.price_micros,
                "auto_execute": t.server_auto_execute,
                "code_mode": t.code_mode,
            })
        })
        .collect();
    Json(json!({"data": data})).into_response()
}

async fn tool_logs(
    State(s): State<AdminState>,
    q: Result<Query<ToolLogQuery>, QueryRejection>,
) -> Response {
    let q = match query(q) {
        Ok(q) => q,
        Err(e) => return e.into_response(),
    };
    let logs = s.tool_logs.clone();
    super::log_page(move || logs.query(&q)).await
}
