//! The OpenAI-compatible HTTP surface: `/v1/...` and the same under `/openai/v1/...`.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::routing::{get, post};
use bytes::Bytes;
use http::{HeaderValue, Response, header};
use serde::Serialize;

use super::{Gateway, handle};
use crate::providers::openai::Endpoint;
use crate::routing::Catalog;

#[derive(Clone)]
struct ApiState {
    gw: Arc<Gateway>,
}

/// Routes of the proxy, mounted at the root and under `/openai`.
pub fn routes(gw: Arc<Gateway>) -> Router {
    let state = ApiState { gw: gw.clone() };
    let v1 = Router::new()
        .route("/chat/completions", post(chat))
        .route("/completions", post(completions))
        .route("/embeddings", post(embeddings))
        .route("/models", get(models))
        .with_state(state);
    Router::new()
        .nest("/v1", v1.clone())
        .nest("/openai/v1", v1)
        .merge(super::native::routes(gw))
}

async fn chat(State(s): State<ApiState>, req: Request) -> Response<Body> {
    handle(s.gw, Endpoint::ChatCompletions, req).await
}

async fn completions(State(s): State<ApiState>, req: Request) -> Response<Body> {
    handle(s.gw, Endpoint::Completions, req).await
}

async fn embeddings(State(s): State<ApiState>, req: Request) -> Response<Body> {
    handle(s.gw, Endpoint::Embeddings, req).await
}

async fn models(State(s): State<ApiState>) -> Response<Body> {
    // Rendered once per change of providers, with the routes.
    let mut resp = Response::new(Body::from(s.gw.routes().models.clone()));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

#[derive(Serialize)]
struct ModelList<'a> {
    object: &'static str,
    data: Vec<Model<'a>>,
}

#[derive(Serialize)]
struct Model<'a> {
    id: String,
    object: &'static str,
    created: u64,
    owned_by: &'a str,
}

/// The `/v1/models` answer for `catalog`.
pub(super) fn models_body(catalog: &Catalog) -> Bytes {
    let data = catalog
        .listed_models()
        .map(|(provider, model)| Model {
            id: format!("{provider}/{model}"),
            object: "model",
            created: 0,
            owned_by: provider,
        })
        .collect();
    let list = ModelList {
        object: "list",
        data,
    };
    Bytes::from(serde_json::to_vec(&list).expect("model list serializes"))
}
