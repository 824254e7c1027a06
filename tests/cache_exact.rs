//! The exact response cache through the real binary and the real mock:
//! repeats hit whatever their JSON layout, changes miss, TTL expiry,
//! no-store and off, streamed misses stored and replayed as streams to
//! OpenAI and Anthropic clients, cut streams not stored, hits cost 0 and are
//! logged with their saving, allow-lists and tenants, restart, eviction.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

const TOKEN: &str = "cache-test-admin-token-0123456789";

fn config(mock: &Proc, cache: &str, extra: &str) -> String {
    format!(
        "[server]\nadmin_token = \"{TOKEN}\"\n\
         [cache]\nenabled = true\n{cache}\n\
         [pricing.\"mock-1\"]\ninput = 1000000\noutput = 2000000\n\
         {extra}\n{}{}",
        mock_provider("mock", mock, ""),
        mock_provider("cut", mock, "headers = { \"x-mock-fail-after\" = \"2\" }"),
    )
}

struct Answer {
    status: u16,
    cache: String,
    body: String,
}

async fn send(
    gw: &Gateway,
    path: &str,
    key: Option<&str>,
    headers: &[(&str, &str)],
    body: String,
) -> Answer {
    let mut req = reqwest::Client::new()
        .post(gw.url(path))
        .header("content-type", "application/json")
        .body(body);
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    for (h, v) in headers {
        req = req.header(*h, *v);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let cache = r
        .headers()
        .get("x-tollgate-cache")
        .map_or("", |v| v.to_str().unwrap())
        .to_string();
    if cache == "hit" {
        assert_eq!(r.headers()["x-tollgate-cache-type"], "exact");
    }
    Answer {
        status,
        cache,
        body: r.text().await.unwrap(),
    }
}

async fn chat(gw: &Gateway, headers: &[(&str, &str)], body: &Value) -> Answer {
    send(gw, "/v1/chat/completions", None, headers, body.to_string()).await
}

/// The text a stream carried, in OpenAI's or Anthropic's events.
fn streamed_text(body: &str) -> String {
    sse_data(body)
        .iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| {
            v.pointer("/choices/0/delta/content")
                .or_else(|| v.pointer("/delta/text"))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .collect()
}

async fn cache_stats(gw: &Gateway) -> Value {
    cache_stats_with(gw, TOKEN).await
}

#[tokio::test]
async fn repeats_hit_in_any_layout_and_every_change_misses() {
    let mock = start_mock(&[]).await;
    let gw = Gateway::start(&config(&mock, "", "")).await;
    let first = chat(
        &gw,
        &[],
        &json!({"model": "mock/mock-1", "temperature": 0.5,
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is Rust?"}]}),
    )
    .await;
    assert_eq!((first.status, first.cache.as_str()), (200, "miss"));
    assert_eq!(upstream_requests(&mock).await, 1);
    // Other key order, whitespace, an explicit default and a field that
    // cannot change the answer: the same request.
    let relaid = "{ \"messages\" : [ {\"content\":\"Be brief.\",\"role\":\"system\"},\n\
        {\"content\": \"What is Rust?\", \"role\": \"user\"} ],\n\
        \"user\": \"someone\", \"top_p\": 1.0, \"temperature\": 0.50, \"model\": \"mock/mock-1\" }";
    let again = send(&gw, "/v1/chat/completions", None, &[], relaid.to_string()).await;
    assert_eq!(
        (again.status, again.cache.as_str()),
        (200, "hit"),
        "{}",
        again.body
    );
    assert_eq!(text_of(&again.body), text_of(&first.body));
    assert_eq!(
        upstream_requests(&mock).await,
        1,
        "a hit never reaches the upstream"
    );

    let base = json!({"model": "mock/mock-1", "temperature": 0.5,
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is Rust?"}]});
    let mut changed_message = base.clone();
    changed_message["messages"][1]["content"] = json!("What is Go?");
    let mut changed_temperature = base.clone();
    changed_temperature["temperature"] = json!(0.7);
    let mut changed_model = base.clone();
    changed_model["model"] = json!("mock/mock-2");
    for (what, body) in [
        ("message", changed_message),
        ("temperature", changed_temperature),
        ("model", changed_model),
    ] {
        let a = chat(&gw, &[], &body).await;
        assert_eq!((a.status, a.cache.as_str()), (200, "miss"), "{what}");
    }
    assert_eq!(upstream_requests(&mock).await, 4);

    // Off: neither looked up nor stored. Not cacheable: bypass.
    let off = chat(&gw, &[("x-tollgate-cache", "off")], &base).await;
    assert_eq!(off.cache, "bypass");
    let mut several = base.clone();
    several["n"] = json!(2);
    assert_eq!(chat(&gw, &[], &several).await.cache, "bypass");
    // No-store: a miss that stays one.
    let mut fresh = base.clone();
    fresh["messages"][1]["content"] = json!("Never stored?");
    for _ in 0..2 {
        let a = chat(&gw, &[("x-tollgate-cache-no-store", "true")], &fresh).await;
        assert_eq!(a.cache, "miss");
    }
    assert_eq!(chat(&gw, &[], &fresh).await.cache, "miss");
    assert_eq!(chat(&gw, &[], &fresh).await.cache, "hit");
    // A header that means nothing is the client's error.
    let bad = chat(&gw, &[("x-tollgate-cache-ttl", "soon")], &base).await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(bad.body.contains("x-tollgate-cache-ttl"), "{}", bad.body);

    // The hit cost 0 and is logged with what the first answer cost.
    let page = logs_until(&gw, "?limit=100", Some(TOKEN), |p| {
        p["data"].as_array().is_some_and(|d| d.len() >= 12)
    })
    .await;
    let logs = page["data"].as_array().unwrap();
    let hit = logs
        .iter()
        .find(|l| l["cache"]["status"] == "hit")
        .expect("a logged hit");
    let original = logs.last().unwrap();
    assert_eq!(original["cache"]["status"], "miss");
    let cost = original["cost_micros"].as_u64().unwrap();
    assert!(cost > 0, "{original}");
    assert_eq!(hit["cost_micros"], 0);
    assert_eq!(hit["cache"]["saved_micros"], cost);
    assert_eq!(hit["attempts"], 0);

    let stats = cache_stats(&gw).await;
    assert_eq!(stats["hits"], 2, "{stats}");
    assert_eq!(stats["bypasses"], 2, "{stats}");
    let metrics = metrics_text(&gw).await;
    assert!(
        metrics.contains("tollgate_cache_lookups_total{result=\"hit\",type=\"exact\"} 2"),
        "{metrics}"
    );
}

#[tokio::test]
async fn an_answer_expires_after_its_ttl() {
    let mock = start_mock(&[]).await;
    let gw = Gateway::start(&config(&mock, "", "")).await;
    let body = json!({"model": "mock/mock-1", "messages": [{"role": "user", "content": "brief"}]});
    let ttl = [("x-tollgate-cache-ttl", "1s")];
    assert_eq!(chat(&gw, &ttl, &body).await.cache, "miss");
    let stored = Instant::now();
    // A hit until the second has passed, then a miss: polled, never slept through.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let a = chat(&gw, &[("x-tollgate-cache-no-store", "1")], &body).await;
        if a.cache == "miss" {
            assert!(stored.elapsed() >= Duration::from_secs(1));
            break;
        }
        assert_eq!(a.cache, "hit");
        assert!(Instant::now() < deadline, "the answer never expired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(cache_stats(&gw).await["expirations"], 1);
}

#[tokio::test]
async fn streamed_answers_are_stored_once_complete_and_replayed_as_streams() {
    let mock = start_mock(&[]).await;
    let gw = Gateway::start(&config(&mock, "", "")).await;
    let body = json!({"model": "mock/mock-1", "stream": true,
        "messages": [{"role": "user", "content": "stream me a story"}]});
    let first = chat(&gw, &[], &body).await;
    assert_eq!((first.status, first.cache.as_str()), (200, "miss"));
    let text = streamed_text(&first.body);
    assert!(!text.is_empty(), "{}", first.body);
    // Stored only after the stream ended: poll until the store counted it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while cache_stats(&gw).await["stores"] != 1 {
        assert!(
            Instant::now() < deadline,
            "the streamed answer was never stored"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let replay = chat(&gw, &[], &body).await;
    assert_eq!(replay.cache, "hit");
    assert_eq!(streamed_text(&replay.body), text);
    assert_eq!(
        sse_data(&replay.body).last().map(String::as_str),
        Some("[DONE]")
    );
    // `stream` is not in the key: the same question unstreamed hits too.
    let mut whole = body.clone();
    whole["stream"] = json!(false);
    let w = chat(&gw, &[], &whole).await;
    assert_eq!(w.cache, "hit");
    assert_eq!(text_of(&w.body), text);
    assert_eq!(upstream_requests(&mock).await, 1);

    // An Anthropic client: its own stream, stored, then replayed in its events.
    let ant = json!({"model": "mock/mock-1", "max_tokens": 200, "stream": true,
        "messages": [{"role": "user", "content": "a story for Claude"}]});
    let a1 = send(&gw, "/anthropic/v1/messages", None, &[], ant.to_string()).await;
    assert_eq!((a1.status, a1.cache.as_str()), (200, "miss"), "{}", a1.body);
    let deadline = Instant::now() + Duration::from_secs(10);
    while cache_stats(&gw).await["stores"] != 2 {
        assert!(
            Instant::now() < deadline,
            "the Anthropic stream was never stored"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let a2 = send(&gw, "/anthropic/v1/messages", None, &[], ant.to_string()).await;
    assert_eq!(a2.cache, "hit");
    assert!(a2.body.contains("event: message_start"), "{}", a2.body);
    assert!(a2.body.contains("event: message_stop"), "{}", a2.body);
    assert_eq!(streamed_text(&a2.body), streamed_text(&a1.body));
    assert!(!streamed_text(&a2.body).is_empty());

    // A stream the upstream cuts is never stored.
    let cut = json!({"model": "cut/mock-1", "stream": true,
        "messages": [{"role": "user", "content": "cut me off"}]});
    for _ in 0..2 {
        let c = chat(&gw, &[], &cut).await;
        assert_eq!(c.cache, "miss");
    }
    let stats = cache_stats(&gw).await;
    assert_eq!(stats["stores"], 2, "{stats}");
}

async fn key(gw: &Gateway, body: Value) -> String {
    create_key(gw, TOKEN, body).await
}

#[tokio::test]
async fn hits_stay_within_the_partition_and_the_allow_list() {
    let mock = start_mock(&[]).await;
    let gw = Gateway::start(&config(
        &mock,
        "scope = \"team\"",
        "[client]\nenforce_auth = true",
    ))
    .await;
    let (_, team) = admin_call(
        gw.url("/api/teams"),
        TOKEN,
        reqwest::Method::POST,
        Some(json!({"name": "search"})),
    )
    .await;
    let warm = key(&gw, json!({"name": "warm", "team_id": team["id"]})).await;
    let mate = key(&gw, json!({"name": "mate", "team_id": team["id"]})).await;
    let narrow = key(
        &gw,
        json!({"name": "narrow", "team_id": team["id"], "models": ["other-*"]}),
    )
    .await;
    let stranger = key(&gw, json!({"name": "stranger"})).await;
    let body =
        json!({"model": "mock/mock-1", "messages": [{"role": "user", "content": "team question"}]})
            .to_string();
    assert_eq!(
        send(&gw, "/v1/chat/completions", Some(&warm), &[], body.clone())
            .await
            .cache,
        "miss"
    );
    assert_eq!(
        send(&gw, "/v1/chat/completions", Some(&mate), &[], body.clone())
            .await
            .cache,
        "hit",
        "same team, same partition"
    );
    let refused = send(
        &gw,
        "/v1/chat/completions",
        Some(&narrow),
        &[],
        body.clone(),
    )
    .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(refused.cache, "", "refused before the cache is consulted");
    assert_eq!(
        send(
            &gw,
            "/v1/chat/completions",
            Some(&stranger),
            &[],
            body.clone()
        )
        .await
        .cache,
        "miss",
        "another owner"
    );
    assert_eq!(upstream_requests(&mock).await, 2);
    // Cleared by the key that stored it: the stranger's answer goes, the
    // team's stays.
    let (_, keys) = admin_call(gw.url("/api/keys"), TOKEN, reqwest::Method::GET, None).await;
    let id = |name: &str| {
        keys["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["name"] == name)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (s, v) = admin_call(
        gw.url(&format!("/api/cache?key={}", id("stranger"))),
        TOKEN,
        reqwest::Method::DELETE,
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["removed"], 1, "{v}");
    for (secret, expected) in [(&mate, "hit"), (&stranger, "miss")] {
        let r = send(&gw, "/v1/chat/completions", Some(secret), &[], body.clone()).await;
        assert_eq!(r.cache, expected);
    }
    assert_eq!(upstream_requests(&mock).await, 3);
}

#[tokio::test]
async fn the_cache_survives_a_restart_and_evicts_past_max_bytes() {
    let mock = start_mock(&[]).await;
    let cfg = config(&mock, "max_bytes = 4000", "");
    let gw = Gateway::start(&cfg).await;
    let ask = |i: usize| json!({"model": "mock/mock-1", "messages": [{"role": "user", "content": format!("question {i}")}]});
    assert_eq!(chat(&gw, &[], &ask(0)).await.cache, "miss");
    let gw = gw.restart(&cfg).await;
    assert_eq!(
        chat(&gw, &[], &ask(0)).await.cache,
        "hit",
        "kept across the restart"
    );
    for i in 1..=12 {
        assert_eq!(chat(&gw, &[], &ask(i)).await.cache, "miss");
    }
    let stats = cache_stats(&gw).await;
    assert!(stats["evictions"].as_u64().unwrap() > 0, "{stats}");
    assert!(stats["bytes"].as_u64().unwrap() <= 4000, "{stats}");
    // The least recently used went first: question 0 is gone, 12 is there.
    assert_eq!(
        chat(&gw, &[("x-tollgate-cache-no-store", "1")], &ask(12))
            .await
            .cache,
        "hit"
    );
    assert_eq!(
        chat(&gw, &[("x-tollgate-cache-no-store", "1")], &ask(0))
            .await
            .cache,
        "miss"
    );
    // Cleared by model, then all.
    let (s, v) = admin_call(
        gw.url("/api/cache?model=mock/mock-1"),
        TOKEN,
        reqwest::Method::DELETE,
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert!(v["removed"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(cache_stats(&gw).await["entries"], 0);
    let (s, v) = admin_call(
        gw.url("/api/cache?model=mock-1"),
        TOKEN,
        reqwest::Method::DELETE,
        None,
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(
        chat(&gw, &[("x-tollgate-cache-no-store", "1")], &ask(12))
            .await
            .cache,
        "miss"
    );
}
