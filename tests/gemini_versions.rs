//! The Gemini surface under every API version Google's clients use: the
//! current `google-genai` SDK calls `/v1/models/...` by default, older ones
//! `/v1beta/...`, and preview features go to `/v1alpha/...`. Each version
//! is the same surface, through the real binary against the real mock: model
//! list, generateContent, streamGenerateContent and countTokens. A version
//! Google does not publish gets a clear 404.

mod common;

use common::*;
use serde_json::{Value, json};

const VERSIONS: [&str; 3] = ["v1", "v1beta", "v1alpha"];

fn config(mock: &Proc) -> String {
    format!(
        "[providers.oai]\nkind = \"mock\"\nbase_url = \"http://{a}/v1\"\nmodels = [\"mock-1\"]\n\
         [providers.gem]\nkind = \"gemini\"\nbase_url = \"http://{a}/v1beta\"\napi_key = \"mock-key\"\n",
        a = mock.addr
    )
}

fn ask() -> Value {
    json!({"contents": [{"role": "user", "parts": [{"text": "weather in Paris?"}]}],
        "generationConfig": {"maxOutputTokens": 256}})
}

async fn post(gw: &Gateway, path: &str, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(gw.url(path))
        .header("x-goog-api-key", "unused")
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn every_published_version_serves_the_same_surface() {
    let mock = start_mock(&[]).await;
    let gw = Gateway::start(&config(&mock)).await;
    for version in VERSIONS {
        for model in ["oai/mock-1", "gem/gemini-mock"] {
            let base = format!("/genai/{version}/models/{model}");

            let r = post(&gw, &format!("{base}:generateContent"), &ask()).await;
            assert_eq!(r.status(), 200, "{version} {model}");
            let v: Value = r.json().await.unwrap();
            let text = v["candidates"][0]["content"]["parts"][0]["text"]
                .as_str()
                .unwrap_or_default();
            assert_eq!(text.split(' ').count(), 12, "{version} {model}: {v}");
            assert_eq!(v["candidates"][0]["finishReason"], "STOP", "{v}");
            assert_eq!(v["usageMetadata"]["candidatesTokenCount"], 12, "{v}");

            let r = post(
                &gw,
                &format!("{base}:streamGenerateContent?alt=sse"),
                &ask(),
            )
            .await;
            assert_eq!(r.status(), 200, "{version} {model}");
            let events: Vec<Value> = sse_data(&r.text().await.unwrap())
                .iter()
                .map(|d| serde_json::from_str(d).unwrap())
                .collect();
            let streamed: String = events
                .iter()
                .filter_map(|e| e["candidates"][0]["content"]["parts"][0]["text"].as_str())
                .collect();
            assert_eq!(streamed.split(' ').count(), 12, "{version} {model}");
            let last = events.last().expect("at least one event");
            assert_eq!(last["usageMetadata"]["candidatesTokenCount"], 12);

            let r = post(&gw, &format!("{base}:countTokens"), &ask()).await;
            assert_eq!(r.status(), 200, "{version} {model}");
            let v: Value = r.json().await.unwrap();
            assert!(v["totalTokens"].as_u64().is_some_and(|n| n > 0), "{v}");
        }

        let r = reqwest::Client::new()
            .get(gw.url(&format!("/genai/{version}/models")))
            .header("x-goog-api-key", "unused")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{version}");
        let v: Value = r.json().await.unwrap();
        let names: Vec<&str> = v["models"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"models/oai/mock-1"), "{version}: {v}");
    }
}

#[tokio::test]
async fn an_unpublished_version_is_a_clear_404() {
    let mock = start_mock(&[]).await;
    let gw = Gateway::start(&config(&mock)).await;
    let r = post(&gw, "/genai/v2/models/oai/mock-1:generateContent", &ask()).await;
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.unwrap();
    let message = v["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("/genai/v2/models"), "{v}");
}
