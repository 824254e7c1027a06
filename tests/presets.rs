//! The named OpenAI-compatible presets added for issue 16 (Hugging Face,
//! Nebius, SambaNova, Novita, Hyperbolic, DashScope, Moonshot, Zhipu,
//! Databricks, LM Studio, llama.cpp, SGLang), each exercised through the real
//! binary against the real mock with its base URL pointed there, as an
//! operator overriding `base_url` would: chat JSON, a stream, a tool call and
//! embeddings, the key arriving upstream as a bearer token. A budgeted key is
//! refused their unpriced models by name.

mod common;

use common::*;
use serde_json::{Value, json};

const PRESETS: [&str; 12] = [
    "huggingface",
    "nebius",
    "sambanova",
    "novita",
    "hyperbolic",
    "dashscope",
    "moonshot",
    "zhipu",
    "databricks",
    "lmstudio",
    "llamacpp",
    "sglang",
];
const ADMIN: &str = "presets-admin-token-0001";

/// Each preset by its own name (so `kind` defaults to it), at the mock, with
/// a key of its own so the mock's per-key counts show which one arrived.
fn config(mock: &Proc) -> String {
    let mut c = format!("[server]\nadmin_token = \"{ADMIN}\"\n");
    for name in PRESETS {
        c += &format!(
            "[providers.{name}]\nbase_url = \"http://{}/v1\"\napi_key = \"key-{name}\"\n",
            mock.addr
        );
    }
    c
}

async fn post(gw: &Gateway, path: &str, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(gw.url(path))
        .json(body)
        .send()
        .await
        .unwrap()
}

fn weather_tool() -> Value {
    json!([{"type": "function", "function": {"name": "get_weather", "description": "Weather by city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}])
}

#[tokio::test]
async fn every_new_preset_serves_chat_streams_tools_and_embeddings() {
    let mock = start_mock(&[]).await;
    let gw = Gateway::start(&config(&mock)).await;
    for name in PRESETS {
        let model = format!("{name}/some-model");

        let r = post(&gw, "/v1/chat/completions", &chat_body(&model)).await;
        assert_eq!(r.status(), 200, "{name}");
        assert_eq!(r.headers()["x-tollgate-provider"], name);
        let v: Value = r.json().await.unwrap();
        let text = v["choices"][0]["message"]["content"].as_str().unwrap();
        assert_eq!(text.split(' ').count(), 12, "{name}: {v}");
        assert_eq!(v["usage"]["completion_tokens"], 12, "{name}: {v}");

        let mut body = chat_body(&model);
        body["stream"] = json!(true);
        body["stream_options"] = json!({"include_usage": true});
        let r = post(&gw, "/v1/chat/completions", &body).await;
        assert_eq!(r.status(), 200, "{name}");
        let data = sse_data(&r.text().await.unwrap());
        assert_eq!(data.last().map(String::as_str), Some("[DONE]"), "{name}");
        let chunks: Vec<Value> = data[..data.len() - 1]
            .iter()
            .map(|d| serde_json::from_str(d).unwrap())
            .collect();
        let streamed: String = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert_eq!(streamed.split(' ').count(), 12, "{name}");
        let usage = chunks.iter().rev().find(|c| c["usage"].is_object());
        assert!(
            usage.is_some_and(|c| c["usage"]["completion_tokens"].as_u64() > Some(0)),
            "{name}: the client asked for usage and got none"
        );

        let mut body = chat_body(&model);
        body["tools"] = weather_tool();
        let v: Value = post(&gw, "/v1/chat/completions", &body)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            v["choices"][0]["finish_reason"], "tool_calls",
            "{name}: {v}"
        );
        let call = &v["choices"][0]["message"]["tool_calls"][0]["function"];
        assert_eq!(call["name"], "get_weather", "{name}: {v}");
        let args: Value = serde_json::from_str(call["arguments"].as_str().unwrap()).unwrap();
        assert!(args["city"].is_string(), "{name}: {args}");

        let body = json!({"model": format!("{name}/mock-embed"), "input": ["hello", "there"]});
        let r = post(&gw, "/v1/embeddings", &body).await;
        assert_eq!(r.status(), 200, "{name}");
        let v: Value = r.json().await.unwrap();
        let data = v["data"].as_array().unwrap();
        assert_eq!(data.len(), 2, "{name}: {v}");
        assert!(!data[0]["embedding"].as_array().unwrap().is_empty());
    }
    // Every preset's own key reached the upstream for each of its 4 requests.
    let stats: Value = reqwest::get(mock.url("/mock/stats"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for name in PRESETS {
        assert_eq!(stats["by_key"][format!("key-{name}")], 4, "{name}: {stats}");
    }
}

#[tokio::test]
async fn a_budgeted_key_is_refused_their_unpriced_models_by_name() {
    let mock = start_mock(&[]).await;
    let gw = Gateway::start(&config(&mock)).await;
    let (status, key) = admin_call(
        gw.url("/api/keys"),
        ADMIN,
        reqwest::Method::POST,
        Some(json!({"name": "budgeted", "budgets": [{"limit_usd": "5", "period": "1d"}]})),
    )
    .await;
    assert_eq!(status, 201, "{key}");
    let secret = key["secret"].as_str().unwrap();
    for name in ["nebius", "zhipu", "lmstudio"] {
        let (status, v) = chat_as(&gw, secret, &chat_body(&format!("{name}/some-model"))).await;
        assert_eq!(status, 400, "{name}: {v}");
        let message = v["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(&format!("'{name}/some-model' has no price")),
            "{name}: {v}"
        );
    }
    // Priced by the operator, the same model is served and charged.
    let (status, v) = admin_call(
        gw.url("/api/pricing/nebius/some-model"),
        ADMIN,
        reqwest::Method::PUT,
        Some(json!({"input": 1_000_000, "output": 2_000_000})),
    )
    .await;
    assert!(status == 200 || status == 204, "{status} {v}");
    // The snapshot the hot path reads is swapped after the write: poll.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (status, v) = chat_as(&gw, secret, &chat_body("nebius/some-model")).await;
        if status == 200 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{status} {v}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let spent = budgets_of(&gw, secret).await[0].1;
    assert!(spent > 0, "the priced request was charged");
}
