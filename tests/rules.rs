//! Routing rules through the real server: a budget-threshold rule switches
//! targets exactly when the key crosses it; rules are validated and managed
//! through the admin API.

mod common;

use common::*;
use serde_json::{Value, json};

const TOKEN: &str = "rules-admin-token-for-tests";

async fn call(
    gw: &Gateway,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .request(method, gw.url(path))
        .bearer_auth(TOKEN);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_budget_threshold_rule_switches_targets_at_the_threshold() {
    let mock = start_mock(&[]).await;
    // mock-1 costs 1 µ$ per output token; 20 tokens per request = 20 µ$.
    // mock-cheap is marked free (a model under a budget must be priced).
    let config = format!(
        "[server]\nadmin_token = \"{TOKEN}\"\n[pricing.\"mock-1\"]\ninput = 0\noutput = 1000000\n\
         [pricing.\"mock-cheap\"]\ninput = 0\noutput = 0\n{}",
        mock_provider("mock", &mock, "headers = { \"x-mock-words\" = \"100\" }")
    );
    let gw = Gateway::start(&config).await;
    let (s, key) = call(
        &gw,
        reqwest::Method::POST,
        "/api/keys",
        Some(json!({"name": "metered", "budgets": [{"limit_usd": "0.0002", "period": "1d", "calendar": true}]})),
    )
    .await;
    assert_eq!(s, 201, "{key}");
    let secret = key["secret"].as_str().unwrap().to_string();
    let key_id = key["id"].as_str().unwrap();

    // A rule that does not compile, or routes nowhere, is refused whole.
    for bad in [
        json!({"name": "x", "scope": {"kind": "global"}, "condition": "model ==", "targets": [{"model": "mock/a"}]}),
        json!({"name": "x", "scope": {"kind": "global"}, "condition": "true", "targets": []}),
        json!({"name": "x", "scope": {"kind": "global"}, "condition": "true", "targets": [{"model": "no-provider"}]}),
    ] {
        let (s, v) = call(&gw, reqwest::Method::POST, "/api/routing-rules", Some(bad)).await;
        assert_eq!(s, 400, "{v}");
    }
    let (s, rule) = call(
        &gw,
        reqwest::Method::POST,
        "/api/routing-rules",
        Some(json!({
            "name": "cheap when half spent",
            "scope": {"kind": "key", "id": key_id},
            "condition": "budget_used_percent >= 50.0",
            "targets": [{"model": "mock/mock-cheap"}],
        })),
    )
    .await;
    assert_eq!(s, 201, "{rule}");

    let body = json!({"model": "mock/mock-1", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]});
    let mut served = Vec::new();
    for _ in 0..8 {
        let (s, v) = chat_as(&gw, &secret, &body).await;
        assert_eq!(s, 200, "{v}");
        served.push(v["model"].as_str().unwrap().to_string());
    }
    // 5 × 20 µ$ = 100 µ$ = 50% of the budget: from the 6th request on, the rule holds.
    assert_eq!(
        served,
        [
            "mock-1",
            "mock-1",
            "mock-1",
            "mock-1",
            "mock-1",
            "mock-cheap",
            "mock-cheap",
            "mock-cheap"
        ]
    );
    // The log is written off the request path: wait for all eight.
    let page = logs_until(&gw, "?limit=8", Some(TOKEN), |p| {
        p["data"].as_array().is_some_and(|d| d.len() == 8)
    })
    .await;
    assert_eq!(
        page["data"][0]["requested_model"], "mock/mock-1",
        "the log keeps what was asked"
    );
    assert_eq!(page["data"][0]["model"], "mock-cheap");

    // Disabled, the rule stops applying; deleted, it is gone.
    let id = rule["id"].as_str().unwrap();
    let (s, _) = call(
        &gw,
        reqwest::Method::PATCH,
        &format!("/api/routing-rules/{id}"),
        Some(json!({"enabled": false})),
    )
    .await;
    assert_eq!(s, 200);
    let (_, r) = chat_as(&gw, &secret, &body).await;
    assert_eq!(r["model"], "mock-1");
    let (s, list) = call(&gw, reqwest::Method::GET, "/api/routing-rules", None).await;
    assert_eq!((s, list["data"].as_array().unwrap().len()), (200, 1));
    let (s, _) = call(
        &gw,
        reqwest::Method::DELETE,
        &format!("/api/routing-rules/{id}"),
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (s, _) = call(
        &gw,
        reqwest::Method::GET,
        &format!("/api/routing-rules/{id}"),
        None,
    )
    .await;
    assert_eq!(s, 404);
}

/// Found by fuzzing: a malformed 864-byte condition kept the CEL parser busy
/// for 20 s and 2 GB. Through the admin API it is now a 400, and the node's
/// memory stays where it was.
#[tokio::test]
async fn a_condition_that_would_send_the_parser_exponential_is_a_400() {
    let gw = Gateway::start(&format!("[server]\nadmin_token = \"{TOKEN}\"\n")).await;
    let fuzzed = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fuzz/regressions/admin_body/cel-parser-exponential"
    ))
    .unwrap();
    // The target's first byte picks the admin operation; the rest is the body.
    let mut body: Value = serde_json::from_slice(&fuzzed[1..]).unwrap();
    body["targets"] = json!([{"model": "anything"}]);
    let before = status_kib(gw.proc.child.id(), "VmRSS:");
    let (s, v) = call(&gw, reqwest::Method::POST, "/api/routing-rules", Some(body)).await;
    assert_eq!(s, 400, "{v}");
    assert!(v.to_string().contains("condition"), "{v}");
    let after = status_kib(gw.proc.child.id(), "VmHWM:");
    println!("RSS before {before} KiB, peak after {after} KiB");
    assert!(
        after < before + 64 * 1024,
        "peak RSS grew by {} KiB",
        after - before
    );
}
