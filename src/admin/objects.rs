//! CRUD for governance objects: `/api/customers`, `/api/teams`, `/api/keys`.
//!
//! Bodies are JSON objects; unknown or read-only fields are refused with 400
//! naming the field, missing objects are 404, and a refused write changes
//! nothing. A key's secret appears only in the answers to create and rotate.

use axum::Json;
use axum::Router;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{AdminState, ApiError};
use crate::config::ProviderConfig;
use crate::governance::objects::{
    Customer, Object, PriceOverride, ProviderObject, RoutingRule, Team, ToolGroup, VirtualKey,
};
use crate::governance::{Blank, GovError, PublicKey, Validate};

const MAX_PAGE: usize = 1000;

pub fn routes() -> Router<AdminState> {
    Router::new()
        .route(
            "/api/customers",
            post(create::<Customer>).get(list::<Customer>),
        )
        .route(
            "/api/customers/{id}",
            get(get_one::<Customer>)
                .patch(patch::<Customer>)
                .delete(delete::<Customer>),
        )
        .route("/api/teams", post(create::<Team>).get(list::<Team>))
        .route(
            "/api/teams/{id}",
            get(get_one::<Team>)
                .patch(patch::<Team>)
                .delete(delete::<Team>),
        )
        .route("/api/keys", post(create_key).get(list::<VirtualKey>))
        .route(
            "/api/keys/{id}",
            get(get_one::<VirtualKey>)
                .patch(patch::<VirtualKey>)
                .delete(delete::<VirtualKey>),
        )
        .route("/api/keys/{id}/rotate", post(rotate_key))
        .route("/api/providers", get(list_providers))
        .route(
            "/api/providers/{name}",
            get(get_provider)
                .put(put_provider)
                .delete(delete::<ProviderObject>),
        )
        .route(
            "/api/routing-rules",
            post(create::<RoutingRule>).get(list::<RoutingRule>),
        )
        .route(
            "/api/routing-rules/{id}",
            get(get_one::<RoutingRule>)
                .patch(patch::<RoutingRule>)
                .delete(delete::<RoutingRule>),
        )
        .route("/api/pricing", get(list::<PriceOverride>))
        .route(
            "/api/pricing/{*model}",
            get(get_price)
                .put(put_price)
                .delete(delete::<PriceOverride>),
        )
}

/// How an object is shown by the API: as stored, except keys (no hash).
pub(super) trait Shown: serde::Serialize {
    fn shown(&self) -> Value {
        serde_json::to_value(self).expect("objects serialize")
    }
}

impl Shown for Customer {}
impl Shown for Team {}
impl Shown for PriceOverride {}
impl Shown for RoutingRule {}
impl Shown for ToolGroup {}

impl Shown for ProviderObject {
    fn shown(&self) -> Value {
        json!({"name": self.id, "source": "api", "config": redacted(&self.config)})
    }
}

/// A literal secret replaced by `***`; an `env.VAR` reference is kept.
pub(super) fn hide(v: &mut Value) {
    if let Some(s) = v.as_str()
        && !s.starts_with("env.")
    {
        *v = Value::from("***");
    }
}

/// A provider's settings with every literal secret replaced by `***`
/// (`env.VAR` references are shown: they name a variable, not a secret).
fn redacted(p: &ProviderConfig) -> Value {
    let mut v = serde_json::to_value(p).expect("providers serialize");
    if let Some(k) = v.get_mut("api_key") {
        hide(k);
    }
    if let Some(keys) = v.get_mut("keys").and_then(Value::as_array_mut) {
        for k in keys {
            if let Some(secret) = k.get_mut("secret") {
                hide(secret);
            }
        }
    }
    if let Some(headers) = v.get_mut("headers").and_then(Value::as_object_mut) {
        headers.values_mut().for_each(hide);
    }
    v
}

/// Config-file providers first, then those set through the API; paged like
/// the other lists, the cursor being the last name of the previous page.
async fn list_providers(
    State(s): State<AdminState>,
    q: Result<Query<Page>, QueryRejection>,
) -> Answer {
    let page = super::query(q)?;
    let limit = page.limit()?;
    let (api, _) = s.governance.list::<ProviderObject>(None, usize::MAX);
    let all: Vec<(String, Value)> = s
        .config_providers
        .iter()
        .map(|(name, p)| {
            (
                name.clone(),
                json!({"name": name, "source": "config", "config": redacted(p)}),
            )
        })
        .chain(api.iter().map(|p| (p.id.clone(), p.shown())))
        .collect();
    let start = match &page.cursor {
        Some(c) => all
            .iter()
            .position(|(n, _)| n == c)
            .map_or(all.len(), |i| i + 1),
        None => 0,
    };
    let rest = &all[start.min(all.len())..];
    let data: Vec<&Value> = rest.iter().take(limit).map(|(_, v)| v).collect();
    let next_cursor = (rest.len() > limit).then(|| rest[limit - 1].0.clone());
    Ok(Json(json!({"data": data, "next_cursor": next_cursor})).into_response())
}

async fn get_provider(State(s): State<AdminState>, Path(name): Path<String>) -> Answer {
    if let Some(p) = s.config_providers.get(&name) {
        return Ok(
            Json(json!({"name": name, "source": "config", "config": redacted(p)})).into_response(),
        );
    }
    let p = s
        .governance
        .get::<ProviderObject>(&name)
        .ok_or(GovError::NotFound {
            kind: ProviderObject::KIND,
            id: name,
        })?;
    Ok(Json(p.shown()).into_response())
}

async fn put_provider(
    State(s): State<AdminState>,
    Path(name): Path<String>,
    body: Result<Json<Value>, JsonRejection>,
) -> Answer {
    let p = s.governance.set_provider(&name, body_object(body)?)?;
    Ok(Json(p.shown()).into_response())
}

impl Shown for VirtualKey {
    fn shown(&self) -> Value {
        serde_json::to_value(PublicKey::from(self)).expect("keys serialize")
    }
}

impl From<GovError> for ApiError {
    fn from(e: GovError) -> ApiError {
        match e {
            GovError::NotFound { .. } => ApiError::new(StatusCode::NOT_FOUND, "not_found", e),
            GovError::Invalid { .. } => ApiError::bad_request(e),
            GovError::Store(_) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", e)
            }
        }
    }
}

pub(super) type Answer = Result<Response, ApiError>;

pub(super) fn body_object(
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Map<String, Value>, ApiError> {
    match body {
        Ok(Json(Value::Object(m))) => Ok(m),
        Ok(Json(_)) => Err(ApiError::bad_request("the body must be a JSON object")),
        Err(e) => Err(ApiError::new(
            e.status(),
            "invalid_request_error",
            e.body_text(),
        )),
    }
}

/// Read-your-writes through a load balancer: a write that names an object
/// (its own id, or a `team_id`/`customer_id` it refers to) may arrive at a
/// node a few milliseconds before that object does, when the object was just
/// written on another node. In a cluster, such a write waits up to
/// [`REPLICATION_GRACE`] for the objects it names before it is refused.
async fn await_named(s: &AdminState, own: Option<(&str, &str)>, fields: &Map<String, Value>) {
    if !s.cluster.as_ref().is_some_and(|c| c.has_peers()) {
        return;
    }
    let mut wanted: Vec<(&str, &str)> = own.into_iter().collect();
    for (field, kind) in [("team_id", Team::KIND), ("customer_id", Customer::KIND)] {
        if let Some(id) = fields.get(field).and_then(Value::as_str) {
            wanted.push((kind, id));
        }
    }
    let present = |(kind, id): &(&str, &str)| s.governance.exists(kind, id);
    let deadline = tokio::time::Instant::now() + REPLICATION_GRACE;
    while !wanted.iter().all(present) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

const REPLICATION_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

async fn create<T: Object + Blank + Validate + Shown>(
    State(s): State<AdminState>,
    body: Result<Json<Value>, JsonRejection>,
) -> Answer {
    let fields = body_object(body)?;
    await_named(&s, None, &fields).await;
    let obj = s.governance.create::<T>(fields)?;
    Ok((StatusCode::CREATED, Json(obj.shown())).into_response())
}

async fn create_key(
    State(s): State<AdminState>,
    body: Result<Json<Value>, JsonRejection>,
) -> Answer {
    let fields = body_object(body)?;
    await_named(&s, None, &fields).await;
    let issued = s.governance.create_key(fields)?;
    Ok((StatusCode::CREATED, Json(issued)).into_response())
}

/// The price in effect for a model (`provider/model` or a bare id), whichever
/// layer sets it.
async fn get_price(State(s): State<AdminState>, Path(model): Path<String>) -> Answer {
    let (provider, bare) = model.split_once('/').unwrap_or(("", model.as_str()));
    // A configured provider is priced by its preset; any other prefix is
    // read as a preset's own name (`openai/gpt-4o`).
    let configured = s
        .config_providers
        .get(provider)
        .cloned()
        .or_else(|| {
            s.governance
                .api_providers()
                .into_iter()
                .find_map(|(n, p)| (n == provider).then_some(p))
        })
        .and_then(|p| p.resolved_kind(provider));
    let kind = configured.map_or(provider, |k| k.preset().name);
    match s.governance.price(provider, kind, bare) {
        Some(p) => Ok(Json(json!({"model": model, "price": p})).into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no price for '{model}'"),
        )),
    }
}

async fn put_price(
    State(s): State<AdminState>,
    Path(model): Path<String>,
    body: Result<Json<Value>, JsonRejection>,
) -> Answer {
    let price = s.governance.set_price(&model, body_object(body)?)?;
    Ok(Json(price.shown()).into_response())
}

/// `PUT /api/.../{name}`: creates or replaces a named object, validated whole.
pub(super) async fn put<T: Object + Blank + Validate + Shown>(
    State(s): State<AdminState>,
    Path(name): Path<String>,
    body: Result<Json<Value>, JsonRejection>,
) -> Answer {
    let obj = s.governance.put::<T>(&name, body_object(body)?)?;
    Ok(Json(obj.shown()).into_response())
}

async fn rotate_key(State(s): State<AdminState>, Path(id): Path<String>) -> Answer {
    Ok(Json(s.governance.rotate_key(&id)?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Page {
    limit: Option<usize>,
    pub(super) cursor: Option<String>,
}

impl Page {
    /// The page size asked for (default 100), within 1..=MAX_PAGE.
    pub(super) fn limit(&self) -> Result<usize, ApiError> {
        let limit = self.limit.unwrap_or(100);
        if limit == 0 || limit > MAX_PAGE {
            return Err(ApiError::bad_request(format!(
                "limit must be between 1 and {MAX_PAGE}"
            )));
        }
        Ok(limit)
    }
}

pub(super) async fn list<T: Object + Shown>(
    State(s): State<AdminState>,
    q: Result<Query<Page>, QueryRejection>,
) -> Answer {
    let page = super::query(q)?;
    let limit = page.limit()?;
    let (items, more) = s.governance.list::<T>(page.cursor.as_deref(), limit);
    let next_cursor = if more {
        items.last().map(|i| i.id().to_string())
    } else {
        None
    };
    let data: Vec<Value> = items.iter().map(Shown::shown).collect();
    Ok(Json(json!({"data": data, "next_cursor": next_cursor})).into_response())
}

pub(super) async fn get_one<T: Object + Shown>(
    State(s): State<AdminState>,
    Path(id): Path<String>,
) -> Answer {
    let obj = s
        .governance
        .get::<T>(&id)
        .ok_or(GovError::NotFound { kind: T::KIND, id })?;
    Ok(Json(obj.shown()).into_response())
}

pub(super) async fn patch<T: Object + Shown + Validate>(
    State(s): State<AdminState>,
    Path(id): Path<String>,
    body: Result<Json<Value>, JsonRejection>,
) -> Answer {
    let fields = body_object(body)?;
    await_named(&s, Some((T::KIND, &id)), &fields).await;
    let obj = s.governance.patch::<T>(&id, fields)?;
    Ok(Json(obj.shown()).into_response())
}

pub(super) async fn delete<T: Object>(
    State(s): State<AdminState>,
    Path(id): Path<String>,
) -> Answer {
    await_named(&s, Some((T::KIND, &id)), &Map::new()).await;
    s.governance.delete::<T>(&id)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
