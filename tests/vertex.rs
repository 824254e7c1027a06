//! Vertex AI as an upstream, through the real binary and the mock's token
//! endpoint and Vertex routes: a service account's signed JWT exchanged for
//! a token that is kept, fetched again near its expiry and when Vertex
//! refuses it; Gemini models in their format and Claude models in
//! Anthropic's (`rawPredict`), JSON and streams, priced; a given access
//! token; the account file `GOOGLE_APPLICATION_CREDENTIALS` names.

mod common;

use std::net::SocketAddr;
use std::process::Command;

use common::*;
use serde_json::{Value, json};

/// A throwaway RSA key made for the tests (`openssl genpkey`).
const KEY: &str = include_str!("../src/providers/vertex/test_key.pem");

fn account(mock: &Proc) -> String {
    json!({"type": "service_account", "project_id": "proj-1", "private_key_id": "kid-1",
        "private_key": KEY, "client_email": "gw@proj-1.iam.gserviceaccount.com",
        "token_uri": mock.url("/token")})
    .to_string()
}

fn free_addr() -> SocketAddr {
    format!("127.0.0.1:{}", free_port()).parse().unwrap()
}

/// A gateway with one Vertex provider `vx` whose key is `secret` (TOML value).
async fn gateway(mock: &Proc, key: &str) -> Gateway {
    Gateway::start(&format!(
        "[providers.vx]\nkind = \"vertex\"\nbase_url = \"http://{}\"\nregion = \"us-east5\"\n{key}\n",
        mock.addr
    ))
    .await
}

async fn chat(gw: &Gateway, model: &str, stream: bool) -> (u16, String) {
    let r = reqwest::Client::new()
        .post(gw.url("/v1/chat/completions"))
        .json(
            &json!({"model": model, "stream": stream, "stream_options": {"include_usage": true},
            "messages": [{"role": "user", "content": "hello there"}]}),
        )
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// The mock's access tokens that reached its model routes, and how often.
async fn tokens_used(mock: &Proc) -> Vec<(String, u64)> {
    let stats = get_json(mock.url("/mock/stats")).await;
    let mut used: Vec<(String, u64)> = stats["by_key"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.starts_with("mock-vertex-token-") || k.starts_with("ya29."))
        .map(|(k, n)| (k.clone(), n.as_u64().unwrap()))
        .collect();
    used.sort();
    used
}

#[tokio::test]
async fn a_service_account_reaches_gemini_and_claude_models_with_one_kept_token() {
    let mock = start_mock(&[]).await;
    let key = format!("api_key = '''{}'''", account(&mock));
    let gw = gateway(&mock, &key).await;
    for model in ["vx/gemini-2.5-flash", "vx/claude-sonnet-4-5@20250929"] {
        let (status, body) = chat(&gw, model, false).await;
        assert_eq!(status, 200, "{model}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        let text = v["choices"][0]["message"]["content"].as_str().unwrap();
        assert_eq!(text.split(' ').count(), 12, "{model}: {v}");
        assert!(
            v["usage"]["completion_tokens"].as_u64().unwrap() > 0,
            "{model}: {v}"
        );
        let (status, body) = chat(&gw, model, true).await;
        assert_eq!(status, 200, "{model}: {body}");
        let data = sse_data(&body);
        assert_eq!(
            data.last().map(String::as_str),
            Some("[DONE]"),
            "{model}: {body}"
        );
        assert!(body.contains("\"completion_tokens\":12"), "{model}: {body}");
    }
    // One exchange served all four requests.
    let used = tokens_used(&mock).await;
    assert_eq!(used.len(), 1, "{used:?}");
    assert_eq!(used[0].1, 4, "{used:?}");
    // Both models are priced: every request was charged.
    let page = logs_until(&gw, "?limit=10", None, |p| {
        p["data"].as_array().is_some_and(|d| d.len() >= 4)
    })
    .await;
    for log in page["data"].as_array().unwrap() {
        assert!(log["cost_micros"].as_u64().unwrap() > 0, "{log}");
        assert_eq!(log["provider"], "vx", "{log}");
    }
}

/// A token is kept only while more than the 300 s refresh margin is left:
/// one issued for exactly 300 s is already near its expiry, so the next
/// request fetches another (no waiting on the clock).
#[tokio::test]
async fn a_token_near_its_expiry_is_fetched_again() {
    let mock = start_mock_at(free_addr(), &["--token-ttl", "300"]).await;
    let gw = gateway(&mock, &format!("api_key = '''{}'''", account(&mock))).await;
    assert_eq!(chat(&gw, "vx/gemini-2.5-flash", false).await.0, 200);
    assert_eq!(chat(&gw, "vx/gemini-2.5-flash", false).await.0, 200);
    let used = tokens_used(&mock).await;
    assert_eq!(
        used.len(),
        2,
        "a new token for the second request: {used:?}"
    );
}

/// The mock restarts and forgets every token it issued: the gateway's kept
/// token is refused with 401, forgotten, and the same request is sent again
/// with a new one.
#[tokio::test]
async fn a_refused_token_is_replaced_within_the_request() {
    let addr = free_addr();
    let mock = start_mock_at(addr, &[]).await;
    // No retries: only the resend with a new token can answer.
    let key = format!("max_retries = 0\napi_key = '''{}'''", account(&mock));
    let gw = gateway(&mock, &key).await;
    assert_eq!(chat(&gw, "vx/gemini-2.5-flash", false).await.0, 200);
    let first = tokens_used(&mock).await;
    mock.terminate();
    drop(mock);
    let mock = start_mock_at(addr, &[]).await;
    let (status, body) = chat(&gw, "vx/claude-sonnet-4-5@20250929", true).await;
    assert_eq!(status, 200, "{body}");
    let now = tokens_used(&mock).await;
    assert_eq!(now.len(), 1, "{now:?}");
    assert_ne!(now[0].0, first[0].0, "a new token");
}

#[tokio::test]
async fn a_given_token_and_the_application_default_credentials_work() {
    let mock = start_mock(&[]).await;
    let gw = gateway(
        &mock,
        "project = \"proj-2\"\napi_key = \"ya29.a-given-token\"",
    )
    .await;
    assert_eq!(chat(&gw, "vx/gemini-2.5-flash", false).await.0, 200);
    assert_eq!(
        tokens_used(&mock).await,
        [("ya29.a-given-token".to_string(), 1)]
    );
    drop(gw);

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sa.json");
    std::fs::write(&file, account(&mock)).unwrap();
    let gw = Gateway::start_with_env(
        &format!(
            "[providers.vx]\nkind = \"vertex\"\nbase_url = \"http://{}\"\n",
            mock.addr
        ),
        tempfile::tempdir().unwrap(),
        &[("GOOGLE_APPLICATION_CREDENTIALS", file.to_str().unwrap())],
    )
    .await;
    let (status, body) = chat(&gw, "vx/claude-sonnet-4-5@20250929", false).await;
    assert_eq!(status, 200, "{body}");
    let issued = tokens_used(&mock).await;
    assert!(
        issued
            .iter()
            .any(|(t, _)| t.starts_with("mock-vertex-token-")),
        "{issued:?}"
    );
}

#[tokio::test]
async fn a_bad_service_account_key_is_refused_at_start_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tollgate.toml");
    std::fs::write(
        &path,
        "[providers.vx]\nkind = \"vertex\"\nproject = \"p\"\n\
         api_key = '{\"client_email\": \"a@b\", \"private_key\": \"not a key\"}'\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--config", path.to_str().unwrap()])
        .env("TOLLGATE_SERVER__DATA_DIR", dir.path().join("data"))
        .env(
            "TOLLGATE_SERVER__LISTEN",
            format!("127.0.0.1:{}", free_port()),
        )
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("providers.vx.keys[0].secret"), "{err}");
}
