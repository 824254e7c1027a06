//! Prompt-cache markers and per-request fees, through the real binary and
//! the real mock: `cache_control` sent by OpenAI-format clients reaches an
//! Anthropic upstream where the client put it (and nowhere else), bad
//! markers are the gateway's 400, the cache reads and writes Anthropic
//! reports are charged at their own rates on the translated path, streamed
//! or not, and Perplexity's per-request search fee is both reserved and
//! charged.

mod common;

use common::*;
use serde_json::{Value, json};

/// One provider per upstream format at the same mock, and a Perplexity
/// preset pointed at it.
fn config(mock: &Proc, extra: &str) -> String {
    format!(
        "{extra}\n\
         [providers.oai]\nkind = \"mock\"\nbase_url = \"http://{a}/v1\"\n\
         [providers.ant]\nkind = \"anthropic\"\nbase_url = \"http://{a}/v1\"\napi_key = \"mock-key\"\n\
         [providers.gem]\nkind = \"gemini\"\nbase_url = \"http://{a}/v1beta\"\napi_key = \"mock-key\"\n\
         [providers.pplx]\nkind = \"perplexity\"\nbase_url = \"http://{a}/v1\"\napi_key = \"mock-key\"\n",
        a = mock.addr
    )
}

async fn post(gw: &Gateway, path: &str, key: Option<&str>, body: &Value) -> reqwest::Response {
    let mut req = reqwest::Client::new().post(gw.url(path)).json(body);
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    req.send().await.unwrap()
}

fn ephemeral() -> Value {
    json!({"type": "ephemeral"})
}

fn hour() -> Value {
    json!({"type": "ephemeral", "ttl": "1h"})
}

/// An OpenAI chat request with a breakpoint on a tool (1h), a system part
/// (1h), a user content part, and a whole user message (its last part).
fn marked_chat(model: &str, system: &str) -> Value {
    json!({"model": model, "tool_choice": "none",
        "tools": [{"type": "function", "cache_control": hour(), "function": {"name": "get_weather",
            "description": "Weather by city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
        "messages": [
            {"role": "system", "content": [
                {"type": "text", "text": system, "cache_control": hour()},
                {"type": "text", "text": "Today is Monday."}]},
            {"role": "user", "content": [
                {"type": "text", "text": "A long reference document about the weather of Paris.", "cache_control": ephemeral()},
                {"type": "text", "text": "weather in Paris?"}]},
            {"role": "assistant", "content": "It is sunny."},
            {"role": "user", "content": "And tomorrow?", "cache_control": ephemeral()}]})
}

#[tokio::test]
async fn cache_control_from_openai_clients_reaches_anthropic_where_it_was_put() {
    let mock = start_mock(&[]).await;
    let gw = Gateway::start(&config(&mock, "")).await;
    let last = || get_json(mock.url("/mock/last"));

    let r = post(
        &gw,
        "/v1/chat/completions",
        None,
        &marked_chat("ant/claude-mock", "You are terse."),
    )
    .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let sent = last().await["body"].clone();
    assert_eq!(sent["tools"][0]["cache_control"], hour(), "{sent}");
    assert_eq!(
        sent["system"],
        json!([{"type": "text", "text": "You are terse.", "cache_control": hour()},
            {"type": "text", "text": "Today is Monday."}]),
        "a breakpoint stays on the system part it was put on"
    );
    let messages = sent["messages"].as_array().unwrap();
    assert_eq!(
        messages[0]["content"][0]["cache_control"],
        ephemeral(),
        "{sent}"
    );
    assert!(
        messages[0]["content"][1].get("cache_control").is_none(),
        "{sent}"
    );
    assert!(
        messages[1]["content"][0].get("cache_control").is_none(),
        "{sent}"
    );
    assert_eq!(
        messages[2]["content"],
        json!([{"type": "text", "text": "And tomorrow?", "cache_control": ephemeral()}]),
        "a message's cache_control marks its last part"
    );

    // Responses clients mark input parts and function tools the same way.
    let body = json!({"model": "ant/claude-mock", "max_output_tokens": 64,
        "tools": [{"type": "function", "name": "get_weather", "parameters": {"type": "object"},
            "cache_control": ephemeral()}],
        "input": [{"role": "user", "content": [
            {"type": "input_text", "text": "A long reference document.", "cache_control": ephemeral()},
            {"type": "input_text", "text": "Summarise it."}]}]});
    let r = post(&gw, "/v1/responses", None, &body).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let sent = last().await["body"].clone();
    assert_eq!(sent["tools"][0]["cache_control"], ephemeral(), "{sent}");
    assert_eq!(
        sent["messages"][0]["content"][0]["cache_control"],
        ephemeral(),
        "{sent}"
    );
    assert!(
        sent["messages"][0]["content"][1]
            .get("cache_control")
            .is_none(),
        "{sent}"
    );

    // Formats without markers get none: Gemini from an OpenAI client, and an
    // OpenAI-format upstream from a translated (Responses) client.
    let r = post(
        &gw,
        "/v1/chat/completions",
        None,
        &marked_chat("gem/gemini-mock", "You are terse."),
    )
    .await;
    assert_eq!(r.status(), 200);
    let sent = last().await["body"].to_string();
    assert!(!sent.contains("cache_control"), "{sent}");
    let mut to_openai = body.clone();
    to_openai["model"] = json!("oai/mock-1");
    assert_eq!(
        post(&gw, "/v1/responses", None, &to_openai).await.status(),
        200
    );
    let sent = last().await["body"].to_string();
    assert!(!sent.contains("cache_control"), "{sent}");
}

#[tokio::test]
async fn bad_cache_markers_are_the_gateways_400_not_the_upstreams() {
    let mock = start_mock(&[]).await;
    let gw = Gateway::start(&config(&mock, "")).await;
    let upstream_requests = || async { get_json(mock.url("/mock/stats")).await["total"].clone() };
    let before = upstream_requests().await;
    let part = |c: Value| json!({"type": "text", "text": "x", "cache_control": c});
    let five = json!({"model": "ant/claude-mock", "messages": [{"role": "user",
        "content": [part(ephemeral()), part(ephemeral()), part(ephemeral()), part(ephemeral()), part(ephemeral())]}]});
    let persistent = json!({"model": "ant/claude-mock", "messages": [{"role": "user",
        "content": [part(json!({"type": "persistent"}))]}]});
    let two_hours = json!({"model": "ant/claude-mock", "messages": [{"role": "user",
        "content": [part(json!({"type": "ephemeral", "ttl": "2h"}))]}]});
    let hour_after_five_minutes = json!({"model": "ant/claude-mock", "messages": [
        {"role": "system", "content": [part(ephemeral())]},
        {"role": "user", "content": [part(hour())]}]});
    for (body, says) in [
        (five, "at most 4"),
        (persistent, "type must be 'ephemeral'"),
        (two_hours, "ttl must be '5m' or '1h'"),
        (hour_after_five_minutes, "'1h' breakpoint must come before"),
    ] {
        let r = post(&gw, "/v1/chat/completions", None, &body).await;
        assert_eq!(r.status(), 400);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["type"], "invalid_request_error", "{v}");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.contains(says), "{msg}");
    }
    // The same limit for a Responses client.
    let items: Vec<Value> = (0..5)
        .map(|_| json!({"type": "input_text", "text": "x", "cache_control": ephemeral()}))
        .collect();
    let body = json!({"model": "ant/claude-mock", "input": [{"role": "user", "content": items}]});
    let r = post(&gw, "/v1/responses", None, &body).await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at most 4"),
        "{v}"
    );
    assert_eq!(
        upstream_requests().await,
        before,
        "no bad marker reached the upstream"
    );
}

/// Micro-dollars per million tokens: $10 in, $1 cached, $12.50 written,
/// $20 written for an hour, $50 out.
const PRICES: [u64; 5] = [10_000_000, 1_000_000, 12_500_000, 20_000_000, 50_000_000];

/// What the usage an OpenAI client was sent costs at [`PRICES`].
fn expected_cost(u: &Value) -> u64 {
    let n = |p: &str| u.pointer(p).and_then(Value::as_u64).unwrap_or(0);
    let prompt = n("/prompt_tokens");
    let read = n("/prompt_tokens_details/cached_tokens");
    let written = n("/prompt_tokens_details/cache_write_tokens");
    let hour = n("/prompt_tokens_details/cache_write_1h_tokens");
    let plain = prompt - read - written;
    let [input, cached, write, write_1h, output] = PRICES;
    let sum = plain * input
        + read * cached
        + (written - hour) * write
        + hour * write_1h
        + n("/completion_tokens") * output;
    sum.div_ceil(1_000_000)
}

#[tokio::test]
async fn anthropic_cache_reads_and_writes_are_charged_at_their_rates_for_openai_clients() {
    let mock = start_mock(&[]).await;
    let [input, cached, write, write_1h, output] = PRICES;
    let pricing = format!(
        "[server]\nadmin_token = \"cache-admin-token-0001\"\n[client]\nenforce_auth = true\n\
         [pricing.\"claude-mock\"]\ninput = {input}\noutput = {output}\ncached_input = {cached}\n\
         cache_write = {write}\ncache_write_1h = {write_1h}\n"
    );
    let gw = Gateway::start(&config(&mock, &pricing)).await;
    let (status, key) = admin_call(
        gw.url("/api/keys"),
        "cache-admin-token-0001",
        reqwest::Method::POST,
        Some(json!({"name": "cache", "budgets": [{"limit_usd": "10", "period": "1d"}]})),
    )
    .await;
    assert_eq!(status, 201, "{key}");
    let secret = key["secret"].as_str().unwrap();
    let mut seen = Vec::new();
    for stream in [false, true] {
        // A system prompt of its own per mode, so its first request writes.
        let mut body = marked_chat(
            "ant/claude-mock",
            &format!("You are terse (stream {stream})."),
        );
        if stream {
            body["stream"] = json!(true);
            body["stream_options"] = json!({"include_usage": true});
        }
        for turn in ["write", "read"] {
            let r = post(&gw, "/v1/chat/completions", Some(secret), &body).await;
            assert_eq!(r.status(), 200);
            let id = r.headers()["x-tollgate-request-id"]
                .to_str()
                .unwrap()
                .to_string();
            let usage: Value = if stream {
                let text = r.text().await.unwrap();
                let last_usage = sse_data(&text)
                    .iter()
                    .filter_map(|d| serde_json::from_str::<Value>(d).ok())
                    .rfind(|c| !c["usage"].is_null())
                    .unwrap_or_else(|| panic!("no usage chunk: {text}"));
                last_usage["usage"].clone()
            } else {
                r.json::<Value>().await.unwrap()["usage"].clone()
            };
            let details = &usage["prompt_tokens_details"];
            match turn {
                "write" => {
                    assert!(
                        details["cache_write_tokens"].as_u64().unwrap() > 0,
                        "{usage}"
                    );
                    assert!(
                        details["cache_write_1h_tokens"].as_u64().unwrap() > 0,
                        "{usage}"
                    );
                    assert_eq!(details["cached_tokens"], 0, "{usage}");
                }
                _ => {
                    assert!(details["cached_tokens"].as_u64().unwrap() > 0, "{usage}");
                    assert!(details.get("cache_write_tokens").is_none(), "{usage}");
                }
            }
            seen.push((id, usage));
        }
    }
    let page = logs_until(&gw, "", Some("cache-admin-token-0001"), |p| {
        p["data"].as_array().is_some_and(|d| d.len() == seen.len())
    })
    .await;
    let logs = page["data"].as_array().unwrap();
    let mut total = 0;
    for (id, usage) in &seen {
        let log = logs.iter().find(|l| l["id"] == *id).unwrap();
        let cost = log["cost_micros"].as_u64().unwrap();
        assert_eq!(cost, expected_cost(usage), "{log} {usage}");
        let all_plain = (usage["prompt_tokens"].as_u64().unwrap() * input
            + usage["completion_tokens"].as_u64().unwrap() * output)
            .div_ceil(1_000_000);
        assert_ne!(cost, all_plain, "cache tokens were priced apart: {usage}");
        total += cost;
    }
    let budgets = budgets_of(&gw, secret).await;
    assert_eq!(budgets[0].1, total, "the key was charged what was logged");
}

#[tokio::test]
async fn perplexity_requests_pay_their_search_fee_and_reserve_it() {
    let mock = start_mock(&[]).await;
    let admin =
        "[server]\nadmin_token = \"fees-admin-token-00001\"\n[client]\nenforce_auth = true\n";
    let gw = Gateway::start(&config(&mock, admin)).await;
    let key = |limit: &str| {
        let url = gw.url("/api/keys");
        let limit = limit.to_string();
        async move {
            let (status, key) = admin_call(
                url,
                "fees-admin-token-00001",
                reqwest::Method::POST,
                Some(json!({"name": "search", "budgets": [{"limit_usd": limit, "period": "1d"}]})),
            )
            .await;
            assert_eq!(status, 201, "{key}");
            key["secret"].as_str().unwrap().to_string()
        }
    };
    // The catalog's prices for Perplexity's sonar (from LiteLLM's map):
    // $1 per million tokens in and out, and $5 / $8 / $12 per thousand
    // requests by search context size.
    let (status, price) = admin_call(
        gw.url("/api/pricing/pplx/sonar"),
        "fees-admin-token-00001",
        reqwest::Method::GET,
        None,
    )
    .await;
    assert_eq!(status, 200, "{price}");
    assert_eq!(
        price["price"]["request_fee"],
        json!({"low": 5000, "medium": 8000, "high": 12000}),
        "{price}"
    );
    let secret = key("1").await;
    let mut seen = Vec::new();
    let cases = [
        (None, 5000, false),
        (Some("medium"), 8000, false),
        (Some("high"), 12000, false),
        (Some("high"), 12000, true),
    ];
    for (size, fee, stream) in cases {
        let mut body = json!({"model": "pplx/sonar", "max_tokens": 16, "stream": stream,
            "messages": [{"role": "user", "content": "what happened today?"}]});
        if stream {
            body["stream_options"] = json!({"include_usage": true});
        }
        if let Some(s) = size {
            body["web_search_options"] = json!({"search_context_size": s});
        }
        let r = post(&gw, "/v1/chat/completions", Some(&secret), &body).await;
        assert_eq!(r.status(), 200, "{size:?}");
        let id = r.headers()["x-tollgate-request-id"]
            .to_str()
            .unwrap()
            .to_string();
        let usage = if stream {
            let text = r.text().await.unwrap();
            sse_data(&text)
                .iter()
                .filter_map(|d| serde_json::from_str::<Value>(d).ok())
                .rfind(|c| !c["usage"].is_null())
                .unwrap_or_else(|| panic!("no usage chunk: {text}"))["usage"]
                .clone()
        } else {
            r.json::<Value>().await.unwrap()["usage"].clone()
        };
        let tokens =
            usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap();
        // $1 per million tokens: one micro-dollar per token.
        seen.push((id, tokens + fee));
    }
    let page = logs_until(&gw, "", Some("fees-admin-token-00001"), |p| {
        p["data"].as_array().is_some_and(|d| d.len() == seen.len())
    })
    .await;
    for (id, cost) in &seen {
        let log = page["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["id"] == *id)
            .unwrap();
        assert_eq!(log["cost_micros"], *cost, "{log}");
    }
    let spent: u64 = seen.iter().map(|(_, c)| c).sum();
    assert_eq!(budgets_of(&gw, &secret).await[0].1, spent);

    // The reservation holds the fee: a budget that covers the tokens of a
    // request but not its high-context fee refuses it before it is sent.
    let small = key("0.011").await;
    let before = get_json(mock.url("/mock/stats")).await["total"].clone();
    let body = json!({"model": "pplx/sonar", "max_tokens": 16,
        "web_search_options": {"search_context_size": "high"},
        "messages": [{"role": "user", "content": "what happened today?"}]});
    let r = post(&gw, "/v1/chat/completions", Some(&small), &body).await;
    assert_eq!(r.status(), 402, "{}", r.text().await.unwrap());
    assert_eq!(get_json(mock.url("/mock/stats")).await["total"], before);
    // Low context fits the same budget.
    let mut low = body.clone();
    low["web_search_options"] = json!({"search_context_size": "low"});
    assert_eq!(
        post(&gw, "/v1/chat/completions", Some(&small), &low)
            .await
            .status(),
        200
    );

    // What no price covers is refused for keys with budgets, by name.
    for (model, options, says) in [
        (
            "pplx/sonar",
            json!({"search_context_size": "huge"}),
            "search_context_size",
        ),
        (
            "pplx/sonar-pro",
            json!({"search_type": "pro"}),
            "search_type",
        ),
        (
            "oai/mock-1",
            json!({"search_context_size": "low"}),
            "web_search_options",
        ),
    ] {
        let mut b = body.clone();
        b["model"] = json!(model);
        b["web_search_options"] = options;
        let r = post(&gw, "/v1/chat/completions", Some(&secret), &b).await;
        assert_eq!(r.status(), 400, "{model}");
        let v: Value = r.json().await.unwrap();
        assert!(
            v["error"]["message"].as_str().unwrap().contains(says),
            "{v}"
        );
    }
}
