//! The OpenAI-compatible HTTP surface: `/v1/...` and the same under `/openai/v1/...`.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::routing::{MethodRouter, get, post};
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
        .route("/chat/completions", serve(Endpoint::ChatCompletions))
        .route("/completions", serve(Endpoint::Completions))
        .route("/embeddings", serve(Endpoint::Embeddings))
        .route("/rerank", serve(Endpoint::Rerank))
        .route("/images/generations", serve(Endpoint::ImageGenerations))
        .route("/audio/speech", serve(Endpoint::Speech))
        .route("/audio/transcriptions", serve(Endpoint::Transcriptions))
        .route("/moderations", serve(Endpoint::Moderations))
        .route("/models", get(models))
        .with_state(state.clone());
    Router::new()
        .nest("/v1", v1.clone())
        .nest("/openai/v1", v1)
        // Cohere's v2 SDK reranks here; the body is the same.
        .route("/v2/rerank", serve(Endpoint::Rerank).with_state(state))
        .merge(super::native::routes(gw))
}

/// `POST` of `endpoint` through the pipeline.
fn serve(endpoint: Endpoint) -> MethodRouter<ApiState> {
    post(move |State(s): State<ApiState>, req: Request| handle(s.gw, endpoint, req))
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
