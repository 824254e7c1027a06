//! The admin REST API under `/api/...`.
//!
//! Every route requires the admin token (`Authorization: Bearer <token>`),
//! compared in constant time, when one is configured. Errors are JSON
//! `{"error": {"message", "type"}}` with a precise 4xx.

use std::sync::Arc;

use axum::extract::{Query, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use http::StatusCode;
use serde_json::json;

use crate::config::Secret;
use crate::observability::request_log::{LogQuery, QueryError, RequestLogs};

#[derive(Clone)]
pub struct AdminState {
    pub logs: RequestLogs,
    pub token: Option<Secret>,
}

pub fn routes(state: AdminState) -> Router {
    let token = Arc::new(state.token.clone());
    Router::new()
        .route("/api/logs", get(logs))
        .route_layer(middleware::from_fn(move |req: Request, next: Next| {
            let token = token.clone();
            async move { authorize(token.as_ref().as_ref(), req, next).await }
        }))
        .with_state(state)
}

pub fn error(status: StatusCode, kind: &str, message: impl std::fmt::Display) -> Response {
    (
        status,
        Json(json!({"error": {"message": message.to_string(), "type": kind}})),
    )
        .into_response()
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

async fn logs(
    State(s): State<AdminState>,
    q: Result<Query<LogQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(q) = match q {
        Ok(q) => q,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                e.body_text(),
            );
        }
    };
    // The scan reads RocksDB: keep it off the async workers.
    let logs = s.logs.clone();
    match tokio::task::spawn_blocking(move || logs.query(&q)).await {
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
