//! The admin REST API under `/api/...`.
//!
//! Every route requires the admin token (`Authorization: Bearer <token>`),
//! compared in constant time: `server.admin_token`, or without one a token
//! generated on first start into `data_dir/admin-token`. Errors are JSON
//! `{"error": {"message", "type"}}` with a precise 4xx.

mod mcp;
mod objects;

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use http::StatusCode;
use serde_json::json;

use crate::config::Secret;
use crate::governance::budgets::Usd;
use crate::governance::{Governance, PublicKey};
use crate::observability::request_log::{LogQuery, QueryError, RequestLogs};
use crate::observability::spend::{self, SpendQuery};

#[derive(Clone)]
pub struct AdminState {
    pub logs: RequestLogs,
    pub governance: Arc<Governance>,
    /// Providers of the config file (shown beside the API's, secrets redacted).
    pub config_providers: Arc<indexmap::IndexMap<String, crate::config::ProviderConfig>>,
    pub token: Option<Secret>,
    /// This node's MCP upstream connections (for their state) and tool index.
    pub upstreams: Arc<crate::mcp::upstream::Upstreams>,
    pub tool_logs: crate::observability::tool_log::ToolLogs,
}

pub fn routes(state: AdminState) -> Router {
    let token = Arc::new(state.token.clone());
    Router::new()
        .route("/api/logs", get(logs))
        .route("/api/spend", get(spend))
        .merge(objects::routes())
        .merge(mcp::routes())
        .route_layer(middleware::from_fn(move |req: Request, next: Next| {
            let token = token.clone();
            async move { authorize(token.as_ref().as_ref(), req, next).await }
        }))
        .with_state(state)
}

/// An admin API error: status, type and message, shown as `{"error": {...}}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        kind: &'static str,
        message: impl std::fmt::Display,
    ) -> ApiError {
        ApiError {
            status,
            kind,
            message: message.to_string(),
        }
    }

    pub fn bad_request(message: impl std::fmt::Display) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"error": {"message": self.message, "type": self.kind}})),
        )
            .into_response()
    }
}

/// A query string parsed into `T`, or a 400 naming what is wrong.
pub fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(q)| q)
        .map_err(|e| ApiError::bad_request(e.body_text()))
}

async fn spend(
    State(s): State<AdminState>,
    q: Result<Query<SpendQuery>, QueryRejection>,
) -> Response {
    let q = match query(q) {
        Ok(q) => q,
        Err(e) => return e.into_response(),
    };
    let logs = s.logs.clone();
    let now = s.governance.now_ms();
    match tokio::task::spawn_blocking(move || spend::report(&logs, &q, now)).await {
        Ok(Ok(report)) => Json(report).into_response(),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", e),
    }
}

/// `GET /api/self`: what a virtual key may still spend, for the key itself
/// (authenticated by the key, not the admin token).
pub fn self_service(governance: Arc<Governance>) -> Router {
    Router::new()
        .route("/api/self", get(key_self))
        .with_state(governance)
}

async fn key_self(State(gov): State<Arc<Governance>>, headers: http::HeaderMap) -> Response {
    let Some(secret) = crate::proxy::presented_key(&headers) else {
        return error(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "send your virtual key as 'Authorization: Bearer sk-tg-...'",
        );
    };
    let view = match gov.authenticate(secret) {
        Ok(v) => v,
        Err(e) => return error(StatusCode::UNAUTHORIZED, "authentication_error", e),
    };
    let now = gov.now_ms();
    let all = view
        .budgets
        .iter()
        .map(|(scope, b)| (scope, b))
        .chain(view.provider_budgets.iter().map(|(_, scope, b)| (scope, b)));
    let budgets: Vec<serde_json::Value> = all
        .map(|(scope, b)| {
            let (start, end) = crate::governance::budgets::window(b, now);
            let spent = gov.spent(scope, b);
            json!({
                "scope": scope,
                "limit_usd": b.limit_usd,
                "period": b.period,
                "calendar": b.calendar,
                "window_start_ms": start,
                "window_end_ms": end,
                "spent_usd": Usd(spent),
                "remaining_usd": Usd(b.limit_usd.0.saturating_sub(spent)),
            })
        })
        .collect();
    Json(json!({"key": PublicKey::from(&view.key), "budgets": budgets})).into_response()
}

pub fn error(status: StatusCode, kind: &'static str, message: impl std::fmt::Display) -> Response {
    ApiError::new(status, kind, message).into_response()
}

async fn authorize(token: Option<&Secret>, req: Request, next: Next) -> Response {
    if let Some(token) = token {
        let given = req
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !constant_time_eq(given.as_bytes(), token.expose().as_bytes()) {
            return error(
                StatusCode::UNAUTHORIZED,
                "authentication_error",
                "missing or wrong admin token",
            );
        }
    }
    next.run(req).await
}

/// Equality whose time depends only on the lengths, not on where bytes differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn logs(State(s): State<AdminState>, q: Result<Query<LogQuery>, QueryRejection>) -> Response {
    let q = match query(q) {
        Ok(q) => q,
        Err(e) => return e.into_response(),
    };
    let logs = s.logs.clone();
    log_page(move || logs.query(&q)).await
}

/// Runs a log query and answers with its page. The scan reads RocksDB: keep
/// it off the async workers.
async fn log_page<T: serde::Serialize + Send + 'static>(
    query: impl FnOnce() -> Result<T, QueryError> + Send + 'static,
) -> Response {
    match tokio::task::spawn_blocking(query).await {
        Ok(Ok(page)) => Json(page).into_response(),
        Ok(Err(QueryError::Store(e))) => {
            error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", e)
        }
        Ok(Err(e)) => error(StatusCode::BAD_REQUEST, "invalid_request_error", e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_is_eq() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(constant_time_eq(b"", b""));
    }
}
