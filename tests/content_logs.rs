//! Content logging through the real binary: a key, team or customer that
//! turns it on has its requests' bodies and answers stored with their logs
//! (cut to 64 KiB each, headers never), searchable with `/api/logs?q=`;
//! everyone else's are not.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

const TOKEN: &str = "content-admin-token-0123456789";

#[tokio::test]
async fn bodies_are_logged_for_keys_that_opt_in_and_are_searchable() {
    let mock = start_mock(&[]).await;
    let gw = Gateway::start(&format!(
        "[server]\nadmin_token = \"{TOKEN}\"\n{}",
        mock_provider("mock", &mock, "models = [\"mock-1\"]")
    ))
    .await;
    let (_, team) = admin_call(
        gw.url("/api/teams"),
        TOKEN,
        Method::POST,
        Some(json!({"name": "audited", "log_content": true})),
    )
    .await;
    let logged = create_key(
        &gw,
        TOKEN,
        json!({"name": "in team", "team_id": team["id"]}),
    )
    .await;
    let quiet = create_key(&gw, TOKEN, json!({"name": "alone"})).await;

    let ask = |secret: &str, text: &str, stream: bool| {
        let body = json!({"model": "mock/mock-1", "stream": stream,
                          "messages": [{"role": "user", "content": text}]});
        let req = reqwest::Client::new()
            .post(gw.url("/v1/chat/completions"))
            .bearer_auth(secret)
            .json(&body);
        async move {
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.text().await.unwrap()
        }
    };
    let answer = ask(&logged, "The Zebra Question", false).await;
    let streamed = ask(&logged, "a streamed question", true).await;
    ask(&quiet, "The Zebra Question, unlogged", false).await;
    let huge = "x".repeat(200 * 1024);
    ask(&logged, &huge, false).await;

    let page = logs_until(&gw, "?q=zebra%20question", Some(TOKEN), |p| {
        p["data"].as_array().is_some_and(|d| !d.is_empty())
    })
    .await;
    let data = page["data"].as_array().unwrap();
    assert_eq!(
        data.len(),
        1,
        "only the logged key's request has content: {page}"
    );
    let content = &data[0]["content"];
    assert!(
        content["request"]
            .as_str()
            .unwrap()
            .contains("The Zebra Question")
    );
    let answer: Value = serde_json::from_str(&answer).unwrap();
    let said = answer["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(
        content["response"].as_str().unwrap().contains(said),
        "{content}"
    );

    let (status, v) = admin_call(
        gw.url(&format!("/api/logs?q={}", "z".repeat(257))),
        TOKEN,
        Method::GET,
        None,
    )
    .await;
    assert_eq!(status, 400, "a search is bounded: {v}");

    let all = logs_until(&gw, "", Some(TOKEN), |p| {
        p["data"].as_array().is_some_and(|d| d.len() >= 4)
    })
    .await;
    let text = all.to_string();
    assert!(
        !text.contains(&logged) && !text.contains(&quiet),
        "a secret was logged"
    );
    for rec in all["data"].as_array().unwrap() {
        let content = &rec["content"];
        let req = content["request"].as_str().unwrap_or("");
        if req.contains("unlogged") || content.is_null() {
            assert!(content.is_null(), "the quiet key's body was logged: {rec}");
        } else if req.contains("streamed") {
            let relayed = content["response"].as_str().unwrap();
            assert!(
                relayed.contains("data: ") && streamed.starts_with(&relayed[..20]),
                "{relayed}"
            );
        }
    }
    let cut: Vec<&str> = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["content"]["request"].as_str())
        .filter(|r| r.len() > 60_000)
        .collect();
    assert_eq!(cut.len(), 1, "the 200 KiB request is logged");
    assert!(
        cut[0].len() <= 64 * 1024 && cut[0].ends_with('…'),
        "cut to 64 KiB: {}",
        cut[0].len()
    );
    let quiet_count = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["content"].is_null())
        .count();
    assert_eq!(quiet_count, 1, "{all}");
}
