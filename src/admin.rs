//! The admin REST API under `/api/...`.
//!
//! Every route requires the admin token (`Authorization: Bearer <token>`),
//! compared in constant time: `server.admin_token`, or without one a token
//! generated on first start into `data_dir/admin-token`. Errors are JSON
//! `{"error": {"message", "type"}}` with a precise 4xx.

mod audit;
mod mcp;
mod objects;
mod session;
mod tokens;

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use http::StatusCode;
use serde_json::json;

use crate::cache::store::ClearArgs;
use crate::config::Secret;
use crate::governance::budgets::{Budget, Usd};
use crate::governance::objects::{Customer, Object, Team, VirtualKey};
use crate::governance::{GovError, Governance, PublicKey};
use crate::observability::overview::{self, OverviewQuery};
use crate::observability::request_log::{LogQuery, QueryError, RequestLogs};
use crate::observability::spend::{self, SpendQuery};

#[derive(Clone)]
pub struct AdminState {
    pub logs: RequestLogs,
    pub governance: Arc<Governance>,
    /// Providers of the config file (shown beside the API's, secrets redacted).
    pub config_providers: Arc<indexmap::IndexMap<String, crate::config::ProviderConfig>>,
    pub token: Option<Secret>,
    /// `None` when the node runs alone (no cluster secret).
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
    pub health: Arc<crate::health::HealthBook>,
    /// This node's MCP upstream connections (for their state) and tool index.
    pub upstreams: Arc<crate::mcp::upstream::Upstreams>,
    pub tool_logs: crate::observability::tool_log::ToolLogs,
    /// This node's exact response cache.
    pub cache: Arc<crate::cache::store::CacheStore>,
    /// Dashboard login sessions, accepted in place of the token.
    pub sessions: Arc<crate::session::Sessions>,
    /// What the operator should fix, shown at start and on the dashboard.
    pub warnings: Warnings,
    /// Every admin write that changed something, chained per node.
    pub audit: Arc<crate::observability::audit::AuditLog>,
}

/// Set-up problems an operator should hear about: logged at start and
/// answered by `GET /api/status` (so the dashboard shows them) while they last.
#[derive(Clone)]
pub struct Warnings {
    /// How many providers the node can route to now.
    pub providers: Arc<dyn Fn() -> usize + Send + Sync>,
    /// Set when anyone who reaches the node may use its provider keys.
    pub open_relay: Option<String>,
}

impl Warnings {
    pub fn now(&self) -> Vec<String> {
        let mut out = Vec::new();
        if (self.providers)() == 0 {
            out.push(NO_PROVIDER.to_string());
        }
        out.extend(self.open_relay.clone());
        out
    }
}

pub const NO_PROVIDER: &str = "no provider is configured: every model request will be refused until one is. \
     Set a provider's key in the environment (OPENAI_API_KEY, ANTHROPIC_API_KEY, GEMINI_API_KEY, …), \
     add [providers.NAME] to the config, PUT /api/providers/NAME, or try `tollgate serve --demo`";

pub fn routes(state: AdminState) -> Router {
    let gate = state.clone();
    Router::new()
        .route("/api/logs", get(logs))
        .route("/api/spend", get(spend))
        .route("/api/overview", get(overview))
        .route("/api/status", get(status))
        .route(
            "/api/customers/{id}/budgets",
            get(object_budgets::<Customer>),
        )
        .route("/api/teams/{id}/budgets", get(object_budgets::<Team>))
        .route("/api/keys/{id}/budgets", get(key_budgets))
        .route("/api/cluster", get(cluster))
        .route("/api/routes", get(routes_health))
        .route("/api/cache", get(cache_stats).delete(cache_clear))
        .route("/api/cluster/forget/{node}", axum::routing::post(forget))
        .merge(objects::routes())
        .merge(mcp::routes())
        .merge(tokens::routes())
        .merge(audit::routes())
        .route_layer(middleware::from_fn(move |req: Request, next: Next| {
            let s = gate.clone();
            async move { session::authorize(&s, req, next).await }
        }))
        .merge(session::routes())
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
    let now = s.governance.now_ms();
    // One time range for every node, fixed here.
    let q = q.resolved(now);
    let logs = s.logs.clone();
    let mine = q.clone();
    let fanned = here_and_peers(&s, q.node.as_deref(), "spend", &q, move || {
        spend::report(&logs, &mine, now)
    })
    .await;
    match fanned {
        Err(e) => e.into_response(),
        Ok((local, None)) => Json(local).into_response(),
        Ok((local, Some((answers, missing)))) => {
            let mut reports = vec![local];
            reports.extend(answers.into_iter().map(|(_, r)| r));
            let mut merged = serde_json::to_value(spend::merge(reports)).expect("reports encode");
            merged["missing_nodes"] = json!(missing);
            Json(merged).into_response()
        }
    }
}

/// Peers' answers to a fan-out query, and the nodes that did not answer.
type PeerAnswers<A> = (Vec<(String, A)>, Vec<String>);

/// Runs `local` (a scan of this node's data) off the async workers, then,
/// in a cluster and unless `node` is `local`, asks every live peer `what`
/// with `q`: this node's answer and, when peers were asked, theirs.
async fn here_and_peers<Q, A, E>(
    s: &AdminState,
    node: Option<&str>,
    what: &str,
    q: &Q,
    local: impl FnOnce() -> Result<A, E> + Send + 'static,
) -> Result<(A, Option<PeerAnswers<A>>), ApiError>
where
    Q: serde::Serialize,
    A: serde::de::DeserializeOwned + Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    let mine = off_workers(local).await?;
    let Some(cluster) = s.cluster.as_ref().filter(|_| node != Some("local")) else {
        return Ok((mine, None));
    };
    Ok((mine, Some(cluster.ask_peers(what, |_| Some(q)).await)))
}

/// Runs `f` (a scan or a write of the database) off the async workers;
/// its failure, or its task's, is a 500.
async fn off_workers<A, E>(f: impl FnOnce() -> Result<A, E> + Send + 'static) -> Result<A, ApiError>
where
    A: Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    let server_error = |e: &dyn std::fmt::Display| {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", e)
    };
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| server_error(&e))?
        .map_err(|e| server_error(&e))
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
        .map(|(scope, b)| budget_usage(&gov, scope, b, now))
        .collect();
    Json(json!({"key": PublicKey::from(&view.key), "budgets": budgets})).into_response()
}

/// A budget with its current window and what was spent in it.
fn budget_usage(gov: &Governance, scope: &str, b: &Budget, now: u64) -> serde_json::Value {
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
}

/// `GET /api/{customers,teams}/{id}/budgets`: the object's budgets with
/// their windows and spend.
async fn object_budgets<T: Object>(
    State(s): State<AdminState>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Response, ApiError> {
    let (_, data) = own_budgets::<T>(&s, &id)?;
    Ok(Json(json!({"data": data})).into_response())
}

/// `GET /api/keys/{id}/budgets`: a key's budgets, then its provider budgets.
async fn key_budgets(
    State(s): State<AdminState>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Response, ApiError> {
    let (key, mut data) = own_budgets::<VirtualKey>(&s, &id)?;
    let now = s.governance.now_ms();
    for (provider, budgets) in &key.provider_budgets {
        let scope = crate::governance::provider_scope(&id, provider);
        data.extend(
            budgets
                .iter()
                .map(|b| budget_usage(&s.governance, &scope, b, now)),
        );
    }
    Ok(Json(json!({"data": data})).into_response())
}

fn own_budgets<T: Object>(
    s: &AdminState,
    id: &str,
) -> Result<(T, Vec<serde_json::Value>), ApiError> {
    let mut object: T = s.governance.get(id).ok_or(GovError::NotFound {
        kind: T::KIND,
        id: id.into(),
    })?;
    let now = s.governance.now_ms();
    let scope = format!("{}:{id}", T::KIND.trim_end_matches('s'));
    let data = object
        .budgets_mut()
        .map(|bs| {
            bs.iter()
                .map(|b| budget_usage(&s.governance, &scope, b, now))
                .collect()
        })
        .unwrap_or_default();
    Ok((object, data))
}

/// `GET /api/status`: what the dashboard shows on every page: this node,
/// its version, how many providers it can route to, and set-up warnings.
async fn status(State(s): State<AdminState>) -> Response {
    Json(json!({
        "node": format!("{:016x}", s.governance.node()),
        "version": env!("CARGO_PKG_VERSION"),
        "providers": (s.warnings.providers)(),
        "warnings": s.warnings.now(),
        "cluster": s.cluster.is_some(),
    }))
    .into_response()
}

/// `GET /api/overview`: requests, errors, tokens, spend and latency
/// percentiles per time step, of every live node (or `node=local`).
async fn overview(
    State(s): State<AdminState>,
    q: Result<Query<OverviewQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?
        .resolved(s.governance.now_ms())
        .map_err(ApiError::bad_request)?;
    let logs = s.logs.clone();
    let mine = q.clone();
    let (local, peers) = here_and_peers(&s, q.node.as_deref(), "overview", &q, move || {
        overview::report(&logs, &mine)
    })
    .await?;
    let (answers, missing): PeerAnswers<overview::Report> = peers.unwrap_or_default();
    let mut reports = vec![local];
    reports.extend(answers.into_iter().map(|(_, r)| r));
    let mut v = overview::merge(reports)
        .expect("one report at least")
        .series();
    v["missing_nodes"] = json!(missing);
    Ok(Json(v).into_response())
}

pub fn error(status: StatusCode, kind: &'static str, message: impl std::fmt::Display) -> Response {
    ApiError::new(status, kind, message).into_response()
}

/// Whether `headers` carry `Authorization: Bearer <token>`, compared in
/// constant time; never with no token or an empty one.
pub fn bearer_is(headers: &http::HeaderMap, token: Option<&Secret>) -> bool {
    token_is(bearer(headers).unwrap_or(""), token)
}

/// Whether `given` is `token`, compared in constant time; never with no
/// token or an empty one.
pub fn token_is(given: &str, token: Option<&Secret>) -> bool {
    let expected = token.map_or("", Secret::expose);
    !expected.is_empty() && constant_time_eq(given.as_bytes(), expected.as_bytes())
}

/// The token of `Authorization: Bearer <token>`, if any.
pub fn bearer(headers: &http::HeaderMap) -> Option<&str> {
    headers
        .get(http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
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
    let local_only = match q.node.as_deref() {
        None | Some("all") => false,
        Some("local") => true,
        Some(other) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                format!("node must be 'local' or 'all', not '{other}'"),
            );
        }
    };
    match &s.cluster {
        Some(cluster) if !local_only => cluster_logs(&s, cluster, q).await,
        _ => local_logs(&s, q).await,
    }
}

fn query_error(e: QueryError) -> Response {
    match e {
        QueryError::Store(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", e),
        e => error(StatusCode::BAD_REQUEST, "invalid_request_error", e),
    }
}

async fn local_logs(s: &AdminState, q: LogQuery) -> Response {
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
        Ok(Err(e)) => query_error(e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", e),
    }
}

/// The records of every live node, merged newest first; each record names
/// its node, and the cursor continues every node exactly where this page
/// stopped. Nodes that did not answer are listed in `missing_nodes`.
async fn cluster_logs(
    s: &AdminState,
    cluster: &Arc<crate::cluster::Cluster>,
    q: LogQuery,
) -> Response {
    use crate::observability::request_log::{
        NodeCursors, decode_cluster_cursor, encode_cluster_cursor, merge_pages,
    };
    let limit = q.limit.unwrap_or(100);
    let cursors: NodeCursors = match q.cursor.as_deref().map(decode_cluster_cursor) {
        None => NodeCursors::new(),
        Some(Ok(Some(c))) => c,
        Some(Ok(None)) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "this cursor is from a node-local query; add node=local",
            );
        }
        Some(Err(e)) => return query_error(e),
    };
    // Each node's own query: its cursor, or none yet; finished nodes are skipped.
    let for_node = |node: &str| -> Option<LogQuery> {
        let cursor = match cursors.get(node) {
            Some(None) => return None,
            Some(Some(c)) => Some(c.clone()),
            None => None,
        };
        Some(LogQuery {
            cursor,
            node: Some("local".into()),
            ..q.clone()
        })
    };
    let me = cluster.me().clone();
    let mut pages = Vec::new();
    if let Some(mine) = for_node(&hex_node(me.node)) {
        let logs = s.logs.clone();
        match tokio::task::spawn_blocking(move || logs.query_marked(&mine)).await {
            Ok(Ok(page)) => pages.push((hex_node(me.node), page)),
            Ok(Err(e)) => return query_error(e),
            Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", e),
        }
    }
    let (answers, missing) = cluster
        .ask_peers("logs", |peer| for_node(&hex_node(peer.node)))
        .await;
    pages.extend(answers);
    let (data, next) = merge_pages(pages, limit, cursors);
    let data: Vec<serde_json::Value> = data
        .into_iter()
        .map(|(node, rec)| {
            let mut v = serde_json::to_value(rec).expect("records encode");
            v["node"] = json!(node);
            v
        })
        .collect();
    Json(json!({
        "data": data,
        "next_cursor": next.as_ref().map(encode_cluster_cursor),
        "missing_nodes": missing,
    }))
    .into_response()
}

fn hex_node(node: u64) -> String {
    format!("{node:016x}")
}

/// `GET /api/routes`: every (provider, key, model) route this node has used
/// or heard of, with its health state and score inputs.
async fn routes_health(State(s): State<AdminState>) -> Response {
    Json(json!({"data": s.health.view(s.governance.now_ms())})).into_response()
}

/// `GET /api/cache`: this node's exact cache — entries, bytes, its bound,
/// and counters since start.
async fn cache_stats(State(s): State<AdminState>) -> Response {
    Json(s.cache.stats()).into_response()
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CacheClear {
    /// `provider/model`: only the answers that target gave.
    model: Option<String>,
    /// A virtual key id: only the answers its requests stored.
    key: Option<String>,
    /// `local`: this node only.
    node: Option<String>,
}

/// `DELETE /api/cache[?model=provider/model][&key=vk_…][&node=local]`:
/// deletes the cached answers that match (all of them when nothing is
/// named) on every node, or on this one only with `node=local`. The
/// answer counts what each node removed; nodes that did not answer are in
/// `missing_nodes`.
async fn cache_clear(
    State(s): State<AdminState>,
    q: Result<Query<CacheClear>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    if let Some(m) = &q.model
        && !m.contains('/')
    {
        return Err(ApiError::bad_request(format!(
            "model '{m}' must be written provider/model, as the cache names the target that answered"
        )));
    }
    let args = ClearArgs {
        model: q.model.clone(),
        key: q.key.clone(),
    };
    let cache = s.cache.clone();
    let mine = args.clone();
    let (removed, peers) = here_and_peers(&s, q.node.as_deref(), "cache_clear", &args, move || {
        cache.clear(&mine.clear())
    })
    .await?;
    let (answers, missing): PeerAnswers<u64> = peers.unwrap_or_default();
    let me = format!("{:016x}", s.governance.node());
    let mut nodes = serde_json::Map::new();
    nodes.insert(me, json!(removed));
    nodes.extend(answers.into_iter().map(|(node, n)| (node, json!(n))));
    let total: u64 = nodes.values().filter_map(serde_json::Value::as_u64).sum();
    Ok(Json(json!({
        "removed": total,
        "nodes": nodes,
        "missing_nodes": missing,
        "model": q.model,
        "key": q.key,
    }))
    .into_response())
}

/// `POST /api/cluster/forget/{node}`: this node becomes the home of every
/// budget homed at `node` (hex id), releasing the budget share a node that is
/// gone for good would otherwise hold until the window ends.
async fn forget(
    State(s): State<AdminState>,
    axum::extract::Path(node): axum::extract::Path<String>,
) -> Result<Response, ApiError> {
    let id = u64::from_str_radix(&node, 16)
        .map_err(|_| ApiError::bad_request(format!("'{node}' is not a node id (16 hex digits)")))?;
    if id == s.governance.node() {
        return Err(ApiError::bad_request("a node cannot forget itself"));
    }
    let moved = s
        .governance
        .adopt_budgets_of(id)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", e))?;
    Ok(Json(json!({
        "forgotten": node,
        "new_home": format!("{:016x}", s.governance.node()),
        "objects_moved": moved,
    }))
    .into_response())
}

/// `GET /api/cluster`: this node, its peers, their states and replication lag.
async fn cluster(State(s): State<AdminState>) -> Response {
    match &s.cluster {
        Some(c) => Json(c.view()).into_response(),
        None => Json(json!({
            "enabled": false,
            "node": format!("{:016x}", s.governance.node()),
            "members": [],
        }))
        .into_response(),
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
