//! The proxy end to end: the real binary in front of the real mock provider,
//! over real sockets.

mod common;

use common::*;
use serde_json::{Value, json};

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

async fn post(gw: &Gateway, path: &str, body: &Value) -> reqwest::Response {
    client().post(gw.url(path)).json(body).send().await.unwrap()
}

#[tokio::test]
async fn chat_json_with_overhead_header_and_usage() {
    let mock = start_mock(&[]).await;
    let gw = Gateway::start(&mock_provider("mock", &mock, "")).await;
    for path in ["/v1/chat/completions", "/openai/v1/chat/completions"] {
        let r = post(&gw, path, &chat_body("mock/mock-1")).await;
        assert_eq!(r.status(), 200);
        let overhead: u64 = r.headers()["x-tollgate-overhead-us"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(overhead < 60_000_000);
        assert_eq!(r.headers()["x-tollgate-provider"], "mock");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["object"], "chat.completion");
        assert_eq!(
            v["model"], "mock-1",
            "the upstream sees the model without the provider prefix"
        );
        assert!(
            !v["choices"][0]["message"]["content"]
                .as_str()
                .unwrap()
                .is_empty()
        );
        assert!(v["usage"]["total_tokens"].as_u64().unwrap() > 0);
    }
    // A bare name resolves through the catalog.
    let r = post(&gw, "/v1/chat/completions", &chat_body("mock-1")).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn chat_stream_relays_chunks_and_usage() {
    let mock = start_mock(&["--chunks", "5"]).await;
    let gw = Gateway::start(&mock_provider("mock", &mock, "")).await;

    let mut body = chat_body("mock/mock-1");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let r = post(&gw, "/v1/chat/completions", &body).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-tollgate-overhead-us"));
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let events = sse_data(&r.text().await.unwrap());
    assert_eq!(events.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert!(text.split(' ').count() >= 5, "{text}");
    let usage = &chunks.last().unwrap()["usage"];
    assert!(
        usage["completion_tokens"].as_u64().unwrap() > 0,
        "client asked for usage: {usage}"
    );

    // Without include_usage the client gets no usage chunk, but the gateway
    // asked for one and logs the tokens.
    body.as_object_mut().unwrap().remove("stream_options");
    let r = post(&gw, "/v1/chat/completions", &body).await;
    let events = sse_data(&r.text().await.unwrap());
    assert!(
        events.iter().all(|e| !e.contains("\"usage\":{")),
        "{events:?}"
    );
    let page = logs_until(&gw, "?limit=1", None, |p| {
        p["data"].as_array().is_some_and(|d| {
            d.len() == 1
                && d[0]["stream"] == true
                && d[0]["usage"]["completion_tokens"].as_u64() > Some(0)
        })
    })
    .await;
    assert!(page["data"][0]["ttft_us"].as_u64().is_some());
}

#[tokio::test]
async fn a_stream_arriving_in_one_piece_is_relayed_whole() {
    let mock = start_mock(&["--chunks", "6"]).await;
    let gw = Gateway::start(&mock_provider(
        "mock",
        &mock,
        "headers = { \"x-mock-single-write\" = \"1\" }",
    ))
    .await;
    let mut body = chat_body("mock/mock-1");
    body["stream"] = json!(true);
    let text = post(&gw, "/v1/chat/completions", &body)
        .await
        .text()
        .await
        .unwrap();
    let events = sse_data(&text);
    assert_eq!(events.last().unwrap(), "[DONE]", "{events:?}");
    assert!(
        events.iter().all(|e| !e.contains("\"error\"")),
        "{events:?}"
    );
    let contents = events
        .iter()
        .filter(|e| e.contains("\"content\":\""))
        .count();
    assert!(contents >= 6, "{events:?}");
}

#[tokio::test]
async fn tool_calls_and_multimodal_parts_pass_through() {
    let mock = start_mock(&[]).await;
    let gw = Gateway::start(&mock_provider("mock", &mock, "")).await;
    let body = json!({
        "model": "mock/mock-1",
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "what is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
        ]}],
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {
            "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}],
    });
    let v: Value = post(&gw, "/v1/chat/completions", &body)
        .await
        .json()
        .await
        .unwrap();
    let call = &v["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "get_weather");
    assert_eq!(call["function"]["arguments"], "{\"city\":\"example\"}");
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");

    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let text = post(&gw, "/v1/chat/completions", &streamed)
        .await
        .text()
        .await
        .unwrap();
    let args: String = sse_data(&text)
        .iter()
        .filter(|e| *e != "[DONE]")
        .filter_map(|e| {
            let c: Value = serde_json::from_str(e).unwrap();
            c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
                .as_str()
                .map(String::from)
        })
        .collect();
    assert_eq!(args, "{\"city\":\"example\"}");
}

#[tokio::test]
async fn completions_embeddings_and_models() {
    let mock = start_mock(&[]).await;
    let gw = Gateway::start(&mock_provider("mock", &mock, "")).await;
    let v: Value = post(
        &gw,
        "/v1/completions",
        &json!({"model": "mock/mock-1", "prompt": "once upon"}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(v["object"], "text_completion");
    assert!(!v["choices"][0]["text"].as_str().unwrap().is_empty());

    let v: Value = post(
        &gw,
        "/v1/embeddings",
        &json!({"model": "mock/mock-embed", "input": ["a", "b"], "dimensions": 8}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    assert_eq!(v["data"][0]["embedding"].as_array().unwrap().len(), 8);
    assert_ne!(v["data"][0]["embedding"], v["data"][1]["embedding"]);

    for path in ["/v1/models", "/openai/v1/models"] {
        let v: Value = client()
            .get(gw.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let ids: Vec<&str> = v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["mock/mock-1", "mock/mock-embed"]);
    }
}

#[tokio::test]
async fn fallbacks_after_retries_are_exhausted() {
    let mock = start_mock(&[]).await;
    let config = mock_provider(
        "broken",
        &mock,
        "max_retries = 2\nheaders = { \"x-mock-error-rate\" = \"1\", \"x-mock-error-status\" = \"503\" }",
    ) + &mock_provider("good", &mock, "");
    let gw = Gateway::start(&format!(
        "[upstream]\nbackoff_base = \"1ms\"\nbackoff_max = \"5ms\"\n{config}"
    ))
    .await;
    let mut body = chat_body("broken/mock-1");
    body["fallbacks"] = json!(["good/mock-1"]);
    let r = post(&gw, "/v1/chat/completions", &body).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-tollgate-provider"], "good");
    assert_eq!(
        r.headers()["x-tollgate-attempts"],
        "4",
        "3 tries of broken, then good"
    );
    let page = logs_until(&gw, "?limit=1", None, |p| p["data"][0]["target_index"] == 1).await;
    assert_eq!(page["data"][0]["provider"], "good");
    assert_eq!(page["data"][0]["requested_model"], "broken/mock-1");

    // Without a fallback the client sees a 502 naming the upstream failure.
    let r = post(&gw, "/v1/chat/completions", &chat_body("broken/mock-1")).await;
    assert_eq!(r.status(), 502);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["type"], "upstream_error");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("503"),
        "{v}"
    );
}

#[tokio::test]
async fn rate_limited_key_rotates_and_cools_down() {
    let mock = start_mock(&[]).await;
    let config = mock_provider(
        "mock",
        &mock,
        "headers = { \"x-mock-retry-after\" = \"600\" }\n\
         [[providers.mock.keys]]\nname = \"limited\"\nsecret = \"mock-status-429\"\nweight = 1000\n\
         [[providers.mock.keys]]\nname = \"spare\"\nsecret = \"spare-key\"\nweight = 1\n",
    );
    let gw = Gateway::start(&config).await;
    for _ in 0..10 {
        let r = post(&gw, "/v1/chat/completions", &chat_body("mock/mock-1")).await;
        assert_eq!(r.status(), 200);
    }
    let stats: Value = client()
        .get(mock.url("/mock/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // The limited key is tried once, then cooled down for its Retry-After.
    assert_eq!(stats["by_key"]["mock-status-429"], 1, "{stats}");
    assert_eq!(stats["by_key"]["spare-key"], 10, "{stats}");
    let page = logs_until(&gw, "?limit=10", None, |p| {
        p["data"].as_array().is_some_and(|d| d.len() == 10)
    })
    .await;
    assert!(
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["provider_key"] == "spare")
    );
    // The log never holds a provider secret.
    let raw = client()
        .get(gw.url("/api/logs"))
        .bearer_auth(gw.generated_admin_token())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!raw.contains("spare-key") && !raw.contains("mock-status-429"));
}

#[tokio::test]
async fn all_keys_rate_limited_gives_429_with_retry_after() {
    let mock = start_mock(&[]).await;
    let config = mock_provider(
        "mock",
        &mock,
        "api_key = \"mock-status-429\"\nheaders = { \"x-mock-retry-after\" = \"7\" }",
    );
    let gw = Gateway::start(&config).await;
    let r = post(&gw, "/v1/chat/completions", &chat_body("mock/mock-1")).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "7");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "rate_limit_exceeded");
}

#[tokio::test]
async fn rejected_key_leaves_rotation_for_the_request() {
    let mock = start_mock(&[]).await;
    let config = mock_provider(
        "mock",
        &mock,
        "[[providers.mock.keys]]\nname = \"revoked\"\nsecret = \"mock-status-401\"\nweight = 1000\n\
         [[providers.mock.keys]]\nname = \"good\"\nsecret = \"good-key\"\n",
    );
    let gw = Gateway::start(&config).await;
    let r = post(&gw, "/v1/chat/completions", &chat_body("mock/mock-1")).await;
    assert_eq!(r.status(), 200);
    let only_bad = mock_provider("bad", &mock, "api_key = \"mock-status-403\"");
    let gw2 = Gateway::start(&only_bad).await;
    let r = post(&gw2, "/v1/chat/completions", &chat_body("bad/mock-1")).await;
    assert_eq!(r.status(), 502);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("rejected every configured key"),
        "{v}"
    );
}

#[tokio::test]
async fn stream_failing_before_first_chunk_fails_over_cleanly() {
    let mock = start_mock(&[]).await;
    let config = mock_provider(
        "flaky",
        &mock,
        "max_retries = 1\nheaders = { \"x-mock-fail-after\" = \"0\" }",
    ) + &mock_provider("good", &mock, "");
    let gw = Gateway::start(&format!(
        "[upstream]\nbackoff_base = \"1ms\"\nbackoff_max = \"2ms\"\n{config}"
    ))
    .await;
    let mut body = chat_body("flaky/mock-1");
    body["stream"] = json!(true);
    body["fallbacks"] = json!(["good/mock-1"]);
    let r = post(&gw, "/v1/chat/completions", &body).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-tollgate-provider"], "good");
    let events = sse_data(&r.text().await.unwrap());
    assert_eq!(events.last().unwrap(), "[DONE]");
    assert!(
        events.iter().all(|e| !e.contains("\"error\"")),
        "{events:?}"
    );
}

#[tokio::test]
async fn stream_cut_after_content_ends_with_an_error_event() {
    let mock = start_mock(&["--chunks", "6"]).await;
    let config = mock_provider("cut", &mock, "headers = { \"x-mock-fail-after\" = \"2\" }");
    let gw = Gateway::start(&config).await;
    let mut body = chat_body("cut/mock-1");
    body["stream"] = json!(true);
    let r = post(&gw, "/v1/chat/completions", &body).await;
    assert_eq!(r.status(), 200);
    let events = sse_data(&r.text().await.unwrap());
    let last: Value = serde_json::from_str(events.last().unwrap()).unwrap();
    assert_eq!(last["error"]["type"], "upstream_error", "{events:?}");
    assert!(
        events.iter().any(|e| e.contains("\"content\":\"")),
        "content came first: {events:?}"
    );
    assert!(!events.contains(&"[DONE]".to_string()));
    let page = logs_until(&gw, "?status=5xx", None, |p| {
        p["data"].as_array().is_some_and(|d| !d.is_empty())
    })
    .await;
    assert!(
        page["data"][0]["error"]
            .as_str()
            .unwrap()
            .contains("upstream")
    );
}

#[tokio::test]
async fn upstream_timeout_is_504() {
    let mock = start_mock(&[]).await;
    let config = mock_provider(
        "slow",
        &mock,
        "first_byte_timeout = \"200ms\"\nmax_retries = 0\nheaders = { \"x-mock-latency-ms\" = \"3000\" }",
    );
    let gw = Gateway::start(&config).await;
    let r = post(&gw, "/v1/chat/completions", &chat_body("slow/mock-1")).await;
    assert_eq!(r.status(), 504);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "upstream_timeout");
}

#[tokio::test]
async fn upstream_silence_between_chunks_hits_the_idle_timeout() {
    let mock = start_mock(&[]).await;
    // The role chunk comes at once, the first content a second later: past the
    // idle timeout, and before any content reached the client, so a clean 504.
    let config = mock_provider(
        "stalling",
        &mock,
        "idle_timeout = \"300ms\"\nmax_retries = 0\nheaders = { \"x-mock-chunk-delay-ms\" = \"1000\" }",
    );
    let gw = Gateway::start(&config).await;
    let mut body = chat_body("stalling/mock-1");
    body["stream"] = json!(true);
    let r = post(&gw, "/v1/chat/completions", &body).await;
    assert_eq!(r.status(), 504);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "upstream_timeout");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("sent nothing"),
        "{v}"
    );
}

#[tokio::test]
async fn dead_upstream_is_502() {
    // Nothing listens on port 9 (discard) on loopback here.
    let gw = Gateway::start("[upstream]\nmax_retries = 0\n[providers.dead]\nkind = \"mock\"\nbase_url = \"http://127.0.0.1:9/v1\"\n").await;
    let r = post(&gw, "/v1/chat/completions", &chat_body("dead/mock-1")).await;
    assert_eq!(r.status(), 502);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cannot connect"),
        "{v}"
    );
}

#[tokio::test]
async fn client_errors_have_precise_statuses() {
    let mock = start_mock(&[]).await;
    let gw = Gateway::start(&format!(
        "[server]\nmax_body_bytes = 4096\n{}",
        mock_provider("mock", &mock, "")
    ))
    .await;
    let c = client();
    let chat = gw.url("/v1/chat/completions");

    let r = c
        .post(&chat)
        .body("{not json")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["type"], "invalid_request_error");

    let r = c
        .post(&chat)
        .json(&json!({"messages": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["param"], "model");

    let big = json!({"model": "mock/mock-1", "messages": [{"role": "user", "content": "x".repeat(10_000)}]});
    let r = c.post(&chat).json(&big).send().await.unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "request_too_large"
    );

    let r = c
        .post(&chat)
        .json(&chat_body("nosuch/model"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "model_not_found");
    assert_eq!(v["error"]["param"], "model");

    let mut body = chat_body("mock/mock-1");
    body["fallbacks"] = json!(["nosuch"]);
    let r = c.post(&chat).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["param"],
        "fallbacks"
    );

    let r = c.get(gw.url("/v2/nothing")).send().await.unwrap();
    assert_eq!(r.status(), 404);

    let r = c
        .post(&chat)
        .json(&json!({"model": "mock/mock-1", "messages": [], "stream": "yes"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["param"], "stream");
}

#[tokio::test]
async fn upstream_client_errors_pass_through_unretried() {
    let mock = start_mock(&[]).await;
    let config = mock_provider(
        "picky",
        &mock,
        "api_key = \"picky-key\"\nheaders = { \"x-mock-error-rate\" = \"1\", \"x-mock-error-status\" = \"422\" }",
    ) + &mock_provider("good", &mock, "");
    let gw = Gateway::start(&config).await;
    let mut body = chat_body("picky/mock-1");
    body["fallbacks"] = json!(["good/mock-1"]);
    let r = post(&gw, "/v1/chat/completions", &body).await;
    assert_eq!(
        r.status(),
        422,
        "the request is at fault: no retry, no fallback"
    );
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["message"], "mock error 422");
    let stats: Value = client()
        .get(mock.url("/mock/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["by_key"]["picky-key"], 1);
    assert_eq!(stats["requests"], 1);
}

#[tokio::test]
async fn logs_filters_admin_token_and_metrics() {
    let mock = start_mock(&[]).await;
    let config = format!(
        "[server]\nadmin_token = \"env.TEST_ADMIN_TOKEN\"\n{}",
        mock_provider("mock", &mock, "")
    );
    let gw = Gateway::start_with_env(
        &config,
        tempfile::tempdir().unwrap(),
        &[("TEST_ADMIN_TOKEN", "s3cret-admin-token-for-tests")],
    )
    .await;
    post(&gw, "/v1/chat/completions", &chat_body("mock/mock-1")).await;
    post(&gw, "/v1/chat/completions", &chat_body("nosuch")).await;

    let c = client();
    let r = c.get(gw.url("/api/logs")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    for (query, token, status) in [
        ("", "wrong", 401),
        ("?status=banana", "s3cret-admin-token-for-tests", 400),
        ("?colour=red", "s3cret-admin-token-for-tests", 400),
        ("?limit=5000", "s3cret-admin-token-for-tests", 400),
    ] {
        let r = c
            .get(gw.url(&format!("/api/logs{query}")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{query} with {token}");
    }

    let page = logs_until(
        &gw,
        "?status=404",
        Some("s3cret-admin-token-for-tests"),
        |p| p["data"].as_array().is_some_and(|d| d.len() == 1),
    )
    .await;
    assert_eq!(page["data"][0]["requested_model"], "nosuch");
    let page = logs_until(
        &gw,
        "?provider=mock&status=2xx",
        Some("s3cret-admin-token-for-tests"),
        |p| p["data"].as_array().is_some_and(|d| d.len() == 1),
    )
    .await;
    let rec = &page["data"][0];
    assert_eq!(rec["model"], "mock-1");
    assert!(rec["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    assert!(rec["latency_us"].as_u64().unwrap() >= rec["overhead_us"].as_u64().unwrap());

    let metrics = c
        .get(gw.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("tollgate_requests_total{endpoint=\"chat\",model=\"mock-1\",provider=\"mock\",status=\"200\"} 1"), "{metrics}");
    assert!(metrics.contains(
        "tollgate_requests_total{endpoint=\"chat\",model=\"\",provider=\"\",status=\"404\"} 1"
    ));
    assert!(metrics.contains("tollgate_gateway_overhead_seconds_count 2"));
    assert!(
        metrics
            .contains("tollgate_tokens_total{kind=\"prompt\",model=\"mock-1\",provider=\"mock\"}")
    );
    assert!(metrics.contains("tollgate_upstream_latency_seconds_bucket"));
    assert_eq!(c.get(gw.url("/health")).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn without_a_configured_admin_token_the_node_makes_one() {
    let gw = Gateway::start("").await;
    let token = gw.generated_admin_token();
    assert!(token.len() >= 32);
    let c = client();
    assert_eq!(
        c.get(gw.url("/api/logs")).send().await.unwrap().status(),
        401
    );
    let r = c
        .get(gw.url("/api/logs"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(gw.dir.path().join("data/admin-token"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[tokio::test]
async fn logs_survive_a_restart() {
    let mock = start_mock(&[]).await;
    let config = mock_provider("mock", &mock, "");
    let gw = Gateway::start(&config).await;
    post(&gw, "/v1/chat/completions", &chat_body("mock/mock-1")).await;
    logs_until(&gw, "", None, |p| {
        p["data"].as_array().is_some_and(|d| d.len() == 1)
    })
    .await;
    gw.proc.terminate();
    let Gateway { mut proc, dir } = gw;
    let status = proc.child.wait().unwrap();
    assert!(status.success(), "graceful exit: {status}");
    let gw = Gateway::start_in(&config, dir).await;
    let page = logs_until(&gw, "", None, |p| {
        p["data"].as_array().is_some_and(|d| d.len() == 1)
    })
    .await;
    assert_eq!(page["data"][0]["status"], 200);
}

#[tokio::test]
async fn sigterm_fails_ready_and_finishes_an_inflight_stream() {
    let mock = start_mock(&["--chunks", "10", "--chunk-delay-ms", "100"]).await;
    // The drain delay keeps the node answering (with /ready failing) so a load
    // balancer can take it out of rotation before the listener closes.
    let gw = Gateway::start(&format!(
        "[server]\ndrain_delay = \"5s\"\n{}",
        mock_provider("mock", &mock, "")
    ))
    .await;
    let mut body = chat_body("mock/mock-1");
    body["stream"] = json!(true);
    let r = post(&gw, "/v1/chat/completions", &body).await;
    assert_eq!(r.status(), 200);
    gw.proc.terminate();
    let c = client();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let ready = c.get(gw.url("/ready")).send().await.unwrap().status();
        if ready == 503 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "/ready never failed");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    // The stream started before SIGTERM runs to its end.
    let events = sse_data(&r.text().await.unwrap());
    assert_eq!(events.last().unwrap(), "[DONE]");
    let Gateway { mut proc, .. } = gw;
    assert!(proc.child.wait().unwrap().success());
}
