//! Budgets against hostile clients, through the real binary: every
//! reservation bounds what the upstream may bill, on every inbound surface
//! and every upstream format; unpriced models and fields that cannot be
//! priced are refused; model ids cannot smuggle path syntax; keys whose
//! team is gone fail closed.
//!
//! The mock answers with as many words as it is allowed (`x-mock-words` far
//! above every cap), at 1 µ$ per output token and nothing for input, so a
//! request's cost is exactly its output cap times its choices.

mod common;

use common::*;
use serde_json::{Value, json};

const TOKEN: &str = "bounds-admin-token-for-tests";

/// Providers of each upstream format, all served by the mock.
fn config(mock: &Proc) -> String {
    let greedy = "headers = { \"x-mock-words\" = \"50000\" }";
    let pricing: String = [
        "mock-1",
        "claude-mock",
        "gemini-mock",
        "bedrock-mock",
        "cohere-mock",
    ]
    .iter()
    .map(|m| format!("[pricing.\"{m}\"]\ninput = 0\noutput = 1000000\n"))
    .collect();
    format!(
        "[server]\nadmin_token = \"{TOKEN}\"\n[client]\nenforce_auth = true\n{pricing}\
         [providers.oai]\nkind = \"mock\"\nbase_url = \"http://{a}/v1\"\n{greedy}\n\
         [providers.ant]\nkind = \"anthropic\"\nbase_url = \"http://{a}/v1\"\napi_key = \"mock-key\"\n{greedy}\n\
         [providers.gem]\nkind = \"gemini\"\nbase_url = \"http://{a}/v1beta\"\napi_key = \"mock-key\"\n{greedy}\n\
         [providers.bed]\nkind = \"bedrock\"\nbase_url = \"http://{a}\"\napi_key = \"a-bedrock-api-key\"\n{greedy}\n\
         [providers.vx]\nkind = \"vertex\"\nbase_url = \"http://{a}\"\nproject = \"p\"\napi_key = \"ya29.t\"\n{greedy}\n\
         [providers.coh]\nkind = \"cohere\"\nbase_url = \"http://{a}/v2\"\napi_key = \"k\"\n{greedy}\n\
         [providers.local]\nkind = \"vllm\"\nbase_url = \"http://{a}/v1\"\nmodels = [\"unpriced-model\"]\n",
        a = mock.addr
    )
}

async fn admin(gw: &Gateway, method: reqwest::Method, path: &str, body: Value) -> Value {
    let r = reqwest::Client::new()
        .request(method, gw.url(path))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{path} {body}: {}", r.status());
    r.json().await.unwrap_or(Value::Null)
}

async fn key(gw: &Gateway, fields: Value) -> String {
    let k = admin(gw, reqwest::Method::POST, "/api/keys", fields).await;
    k["secret"].as_str().unwrap().to_string()
}

/// A key with a $1 budget and a key without budgets.
async fn budgeted_and_free(gw: &Gateway) -> (String, String) {
    let budgeted = key(
        gw,
        json!({"name": "b", "budgets": [{"limit_usd": "1", "period": "1d"}]}),
    )
    .await;
    (budgeted, key(gw, json!({"name": "f"})).await)
}

/// Spent and limit of the key's first budget, in micro-dollars.
async fn spent_micros(gw: &Gateway, secret: &str) -> (u64, u64) {
    let (_, spent, limit) = budgets_of(gw, secret).await.swap_remove(0);
    (spent, limit)
}

#[derive(Clone, Copy, Debug)]
enum Surface {
    Chat,
    Responses,
    Gemini,
    Anthropic,
}

/// A request on `surface` for `model` that names no output cap (Anthropic's
/// Messages require one: there the client's own is sent, and bounded).
fn request(surface: Surface, model: &str) -> (String, Value) {
    let text = "tell me everything";
    match surface {
        Surface::Chat => (
            "/v1/chat/completions".into(),
            json!({"model": model, "messages": [{"role": "user", "content": text}]}),
        ),
        Surface::Responses => (
            "/v1/responses".into(),
            json!({"model": model, "input": text}),
        ),
        Surface::Gemini => (
            format!("/genai/v1beta/models/{model}:generateContent"),
            json!({"contents": [{"role": "user", "parts": [{"text": text}]}]}),
        ),
        Surface::Anthropic => (
            "/anthropic/v1/messages".into(),
            json!({"model": model, "max_tokens": 100, "messages": [{"role": "user", "content": text}]}),
        ),
    }
}

/// Reported: a request without `max_tokens` reserved the key's default cap
/// while nothing capped the upstream, so a long answer cost several times
/// its reservation (six concurrent requests on a $0.05 budget spent $0.16).
/// Now the cap is written into every upstream body: on every inbound
/// surface and every upstream format, concurrent requests never pass the
/// budget, and what was served is exactly what was charged.
#[tokio::test]
async fn requests_without_an_output_cap_cannot_overspend_on_any_surface_or_upstream() {
    let mock = start_mock(&[]).await;
    let gw = Gateway::start(&config(&mock)).await;
    let client = reqwest::Client::new();
    for surface in [
        Surface::Chat,
        Surface::Responses,
        Surface::Gemini,
        Surface::Anthropic,
    ] {
        for model in [
            "oai/mock-1",
            "ant/claude-mock",
            "gem/gemini-mock",
            "bed/bedrock-mock",
            "vx/gemini-mock",
            "vx/claude-mock",
            "coh/cohere-mock",
        ] {
            // 100 output tokens per request (the key's default cap, or the
            // Anthropic client's own): 500 µ$ is room for exactly five.
            let secret = key(
                &gw,
                json!({"name": "greedy", "default_max_tokens": 100,
                       "budgets": [{"limit_usd": "0.000500", "period": "1d"}]}),
            )
            .await;
            let (path, body) = request(surface, model);
            let tasks: Vec<_> = (0..12)
                .map(|_| {
                    let req = client.post(gw.url(&path)).bearer_auth(&secret).json(&body);
                    tokio::spawn(async move { req.send().await.unwrap().status().as_u16() })
                })
                .collect();
            let mut served = 0;
            for t in tasks {
                match t.await.unwrap() {
                    200 => served += 1,
                    402 | 429 => {}
                    other => panic!("{surface:?} {model}: unexpected {other}"),
                }
            }
            let (spent, limit) = spent_micros(&gw, &secret).await;
            assert!(
                spent <= limit,
                "{surface:?} → {model}: spent {spent} µ$ of {limit}"
            );
            assert!(served >= 1, "{surface:?} → {model}: nothing served");
            assert_eq!(
                spent,
                served * 100,
                "{surface:?} → {model}: every served token is charged"
            );
        }
    }
}

/// `n` answers cost `n` times the cap, so they are reserved that way.
#[tokio::test]
async fn choices_multiply_the_reservation() {
    let mock = start_mock(&[]).await;
    let gw = Gateway::start(&config(&mock)).await;
    let secret = key(
        &gw,
        json!({"name": "n", "budgets": [{"limit_usd": "0.000250", "period": "1d"}]}),
    )
    .await;
    let ask = |n: u64| {
        json!({"model": "oai/mock-1", "max_tokens": 100, "n": n,
                              "messages": [{"role": "user", "content": "hi"}]})
    };
    let (status, v) = chat_as(&gw, &secret, &ask(3)).await;
    assert_eq!(status, 402, "300 µ$ of worst case on a 250 µ$ budget: {v}");
    let (status, v) = chat_as(&gw, &secret, &ask(2)).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["choices"].as_array().unwrap().len(), 2);
    assert_eq!(spent_micros(&gw, &secret).await.0, 200);
}

/// A model without a price would cost nothing and so never exhaust a
/// budget: under a budget it is refused, naming the model, until an
/// operator prices it or marks it free (price 0).
#[tokio::test]
async fn unpriced_models_are_refused_under_a_budget_until_priced() {
    let mock = start_mock(&[]).await;
    let gw = Gateway::start(&config(&mock)).await;
    let (budgeted, free) = budgeted_and_free(&gw).await;
    let body = chat_body("local/unpriced-model");
    let (status, v) = chat_as(&gw, &budgeted, &body).await;
    assert_eq!(status, 400, "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.contains("local/unpriced-model"), "{message}");
    assert!(message.contains("no price"), "{message}");
    let (status, _) = chat_as(&gw, &free, &body).await;
    assert_eq!(status, 200, "a key without budgets may use it");
    admin(
        &gw,
        reqwest::Method::PUT,
        "/api/pricing/local/unpriced-model",
        json!({"input": 0, "output": 0}),
    )
    .await;
    let (status, v) = chat_as(&gw, &budgeted, &body).await;
    assert_eq!(status, 200, "marked free by its operator: {v}");
}

/// Fields that change the bill in ways the gateway cannot bound are refused
/// for keys with budgets, with the field named; keys without budgets pass
/// them through.
#[tokio::test]
async fn fields_that_cannot_be_priced_are_refused_under_a_budget() {
    let mock = start_mock(&[]).await;
    let gw = Gateway::start(&config(&mock)).await;
    let (budgeted, free) = budgeted_and_free(&gw).await;
    let client = reqwest::Client::new();
    let cases = [
        (
            "/v1/chat/completions".to_string(),
            json!({"model": "oai/mock-1", "service_tier": "priority",
                   "messages": [{"role": "user", "content": "hi"}]}),
            "service_tier",
        ),
        (
            "/genai/v1beta/models/gem/gemini-mock:generateContent".to_string(),
            json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}],
                   "tools": [{"googleSearch": {}}]}),
            "googleSearch",
        ),
        (
            "/anthropic/v1/messages".to_string(),
            json!({"model": "ant/claude-mock", "max_tokens": 50,
                   "tools": [{"type": "web_search_20250305", "name": "web_search"}],
                   "messages": [{"role": "user", "content": "hi"}]}),
            "web_search",
        ),
    ];
    for (path, body, field) in cases {
        let r = client
            .post(gw.url(&path))
            .bearer_auth(&budgeted)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        assert_eq!(status, 400, "{path}: {text}");
        assert!(text.contains(field), "{path}: {text}");
        let r = client
            .post(gw.url(&path))
            .bearer_auth(&free)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_ne!(r.status(), 400, "{path}: no budget, nothing to bound");
    }
}

/// Reported: the model string went into upstream URLs unencoded, so `#`,
/// `?` or `..` changed what was served from what was priced and
/// authorised. Now such ids are refused on every surface, and the id the
/// upstream reads is the one the gateway checked.
#[tokio::test]
async fn model_ids_with_path_syntax_are_refused_and_the_checked_id_is_sent() {
    let mock = start_mock(&[]).await;
    let gw = Gateway::start(&config(&mock)).await;
    let secret = key(&gw, json!({"name": "k", "models": ["oai/mock-1", "gem/*"]})).await;
    let long = format!("oai/{}", "m".repeat(300));
    for model in [
        "oai/mock-1#fragment",
        "oai/mock-1?alt=x",
        "gem/../../v1/models/x",
        "oai/mock 1",
        "oai//mock-1",
        long.as_str(),
    ] {
        let (status, v) = chat_as(&gw, &secret, &chat_body(model)).await;
        assert_eq!(status, 400, "{model}: {v}");
        assert_eq!(v["error"]["param"], "model", "{model}: {v}");
    }
    let (status, v) = chat_as(
        &gw,
        &secret,
        &json!({"model": "oai/mock-1", "fallbacks": ["oai/x?y"], "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["error"]["param"], "fallbacks");
    // Through the Gemini path, where the model is part of the URL.
    let r = reqwest::Client::new()
        .post(gw.url("/genai/v1beta/models/gem%2F..%2Fsecret:generateContent"))
        .bearer_auth(&secret)
        .json(&json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // A valid id reaches the upstream as it was checked.
    let (status, _) = chat_as(&gw, &secret, &chat_body("gem/gemini-mock")).await;
    assert_eq!(status, 200);
}

/// Found by fuzzing: a string with a lone UTF-16 surrogate passed the raw
/// reader, then failed every later decoder — under a budget as "'body'
/// cannot be priced". It is now a 400 that says what is wrong, on every key.
#[tokio::test]
async fn a_lone_surrogate_is_a_clear_400() {
    let mock = start_mock(&[]).await;
    let gw = Gateway::start(&config(&mock)).await;
    let (budgeted, free) = budgeted_and_free(&gw).await;
    let body = r#"{"model":"oai/mock-1","messages":[{"role":"user","content":"hi \ud800"}]}"#;
    for secret in [&budgeted, &free] {
        let r = reqwest::Client::new()
            .post(gw.url("/v1/chat/completions"))
            .bearer_auth(secret)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let v: Value = r.json().await.unwrap();
        let message = v["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("surrogate"), "{v}");
    }
    assert_eq!(
        mock_output_tokens(&mock).await,
        0,
        "nothing reached the upstream"
    );
}

/// Reported: a key whose team or customer does not resolve kept working
/// without their budgets. Now it is refused until its parent exists.
#[tokio::test]
async fn a_key_whose_team_is_gone_is_refused() {
    let mock = start_mock(&[]).await;
    let gw = Gateway::start(&config(&mock)).await;
    let team = admin(
        &gw,
        reqwest::Method::POST,
        "/api/teams",
        json!({"name": "t", "budgets": [{"limit_usd": "0.000100", "period": "1d"}]}),
    )
    .await;
    let secret = key(&gw, json!({"name": "k", "team_id": team["id"]})).await;
    let (status, _) = chat_as(&gw, &secret, &json!({"model": "oai/mock-1", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]})).await;
    assert_eq!(status, 200);
    let r = reqwest::Client::new()
        .delete(gw.url(&format!("/api/teams/{}", team["id"].as_str().unwrap())))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let (status, v) = chat_as(&gw, &secret, &chat_body("oai/mock-1")).await;
    assert_eq!(status, 401, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("team or customer"),
        "{v}"
    );
}

/// Reported: reservations of requests in flight at a `kill -9` were
/// forgotten, so what the provider billed was never charged (ten streams
/// served, then `kill -9` and a restart: $0). Reservations are now
/// journaled before the request is sent; the restarted node charges each at
/// its reservation.
#[tokio::test]
async fn a_kill_9_with_twenty_streams_in_flight_charges_them_all() {
    let mock = start_mock(&[]).await;
    let config = format!(
        "[server]\nadmin_token = \"{TOKEN}\"\n[pricing.\"mock-1\"]\ninput = 0\noutput = 1000000\n{}",
        mock_provider(
            "mock",
            &mock,
            // 100 words (the cap) in 100 chunks half a second apart: no
            // stream ends before the kill.
            "headers = { \"x-mock-words\" = \"1000\", \"x-mock-chunk-delay-ms\" = \"500\", \"x-mock-chunks\" = \"100\" }"
        )
    );
    let gw = Gateway::start(&config).await;
    let secret = key(
        &gw,
        json!({"name": "s", "default_max_tokens": 100,
               "budgets": [{"limit_usd": "1", "period": "1d"}]}),
    )
    .await;
    let client = reqwest::Client::new();
    let opened: Vec<_> = (0..20)
        .map(|_| {
            let req = client
                .post(gw.url("/v1/chat/completions"))
                .bearer_auth(&secret)
                .json(&json!({"model": "mock/mock-1", "stream": true,
                              "messages": [{"role": "user", "content": "a long story"}]}));
            tokio::spawn(async move {
                let mut r = req.send().await.unwrap();
                assert_eq!(r.status(), 200);
                // The first content has arrived: the upstream is serving it.
                assert!(r.chunk().await.unwrap().is_some());
                r
            })
        })
        .collect();
    let mut streams = Vec::new();
    for o in opened {
        streams.push(o.await.unwrap());
    }
    let Gateway { proc, dir } = gw;
    drop(proc); // SIGKILL: no drain, no settling
    drop(streams);
    let gw = Gateway::start_in(&config, dir).await;
    let (spent, _) = spent_micros(&gw, &secret).await;
    assert_eq!(spent, 20 * 100, "each stream charged at its reservation");
}

/// Spend is synced to disk in groups (`server.spend_sync_interval`), so a
/// settled request's spend may not be synced yet when the process dies: it
/// is in the write-ahead log, which a killed process does not lose. With a
/// 1 s interval, a `kill -9` right after 60 requests settled: every one
/// charged after the restart, none twice (their journal rows went with
/// their spend).
#[tokio::test]
async fn a_kill_9_before_the_group_sync_loses_no_settled_spend() {
    let mock = start_mock(&[]).await;
    let config = format!(
        "[server]\nadmin_token = \"{TOKEN}\"\nspend_sync_interval = \"1s\"\n\
         [pricing.\"mock-1\"]\ninput = 0\noutput = 1000000\n{}",
        mock_provider("mock", &mock, "headers = { \"x-mock-words\" = \"50000\" }")
    );
    let gw = Gateway::start(&config).await;
    let secret = key(
        &gw,
        json!({"name": "s", "budgets": [{"limit_usd": "1", "period": "1d"}]}),
    )
    .await;
    let mut billed = 0;
    for i in 0..60u64 {
        let cap = 3 + i % 5;
        let (status, v) = chat_as(
            &gw,
            &secret,
            &json!({"model": "mock/mock-1", "max_tokens": cap,
                    "messages": [{"role": "user", "content": "count"}]}),
        )
        .await;
        assert_eq!(status, 200, "{v}");
        billed += v["usage"]["completion_tokens"].as_u64().unwrap();
    }
    assert!(billed >= 60 * 3, "the mock answered at each cap: {billed}");
    // Settled on this node (a whole answer settles before it is sent)...
    let (spent, _) = spent_micros(&gw, &secret).await;
    assert_eq!(spent, billed, "settled before the kill");
    // ...then killed before the next sync of the log.
    let Gateway { proc, dir } = gw;
    drop(proc);
    let gw = Gateway::start_in(&config, dir).await;
    let (spent, _) = spent_micros(&gw, &secret).await;
    assert_eq!(spent, billed, "every settled request charged once");
}

/// Random traffic against budgets at every level: each request picks its
/// surface and upstream format, a cap or none, `n`, streaming, and whether
/// the client walks away after the first chunk; waves of ten run at once.
/// The mock bills (and `/mock/stats` counts) every output token it makes,
/// at 1 µ$ each. Whatever the mix: what the provider billed never passes
/// the tightest budget, and the gateway charged at least all of it.
#[tokio::test]
async fn random_traffic_never_passes_a_budget_and_every_served_token_is_charged() {
    let mock = start_mock(&[]).await;
    let gw = Gateway::start(&config(&mock)).await;
    let client = reqwest::Client::new();
    for seed in [6u64, 7, 11] {
        let mut rng = fastrand::Rng::with_seed(seed);
        let before = mock_output_tokens(&mock).await;
        // The tightest budget sits at a different level each seed.
        let tight = "0.002000";
        let level = ["key", "team", "customer"][(seed % 3) as usize];
        let pick =
            |l: &str| json!([{"limit_usd": if l == level { tight } else { "1" }, "period": "1d"}]);
        let customer = admin(
            &gw,
            reqwest::Method::POST,
            "/api/customers",
            json!({"name": "c", "budgets": pick("customer")}),
        )
        .await;
        let team = admin(
            &gw,
            reqwest::Method::POST,
            "/api/teams",
            json!({"name": "t", "customer_id": customer["id"], "budgets": pick("team")}),
        )
        .await;
        let secret = key(
            &gw,
            json!({"name": "k", "team_id": team["id"], "default_max_tokens": 40, "budgets": pick("key")}),
        )
        .await;
        for _wave in 0..15 {
            let tasks: Vec<_> = (0..10)
                .map(|_| {
                    let surface = [
                        Surface::Chat,
                        Surface::Responses,
                        Surface::Gemini,
                        Surface::Anthropic,
                    ][rng.usize(..4)];
                    let model =
                        ["oai/mock-1", "ant/claude-mock", "gem/gemini-mock"][rng.usize(..3)];
                    let stream = rng.bool();
                    let leave_early = stream && rng.bool();
                    let (mut path, mut body) = request(surface, model);
                    if let Some(cap) = rng.bool().then(|| rng.u64(1..60)) {
                        match surface {
                            Surface::Chat | Surface::Anthropic => body["max_tokens"] = cap.into(),
                            Surface::Responses => body["max_output_tokens"] = cap.into(),
                            Surface::Gemini => {
                                body["generationConfig"] = json!({"maxOutputTokens": cap})
                            }
                        }
                    }
                    if matches!(surface, Surface::Chat) && !stream {
                        body["n"] = rng.u64(1..4).into();
                    }
                    if stream {
                        match surface {
                            Surface::Gemini => {
                                path = path
                                    .replace(":generateContent", ":streamGenerateContent?alt=sse");
                            }
                            _ => body["stream"] = true.into(),
                        }
                    }
                    let req = client.post(gw.url(&path)).bearer_auth(&secret).json(&body);
                    tokio::spawn(async move {
                        let mut r = req.send().await.unwrap();
                        let status = r.status().as_u16();
                        if leave_early {
                            let _ = r.chunk().await;
                            drop(r);
                        } else {
                            while let Ok(Some(_)) = r.chunk().await {}
                        }
                        status
                    })
                })
                .collect();
            for t in tasks {
                let status = t.await.unwrap();
                assert!(matches!(status, 200 | 402), "unexpected {status}");
            }
        }
        let billed = mock_output_tokens(&mock).await - before;
        // Settling happens as each request finishes: wait for the last.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let charged = loop {
            let charged = budget_spent(&gw, &secret, level).await;
            if charged >= billed || std::time::Instant::now() > deadline {
                break charged;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        println!("seed {seed}, tight {level} budget: billed {billed} µ$, charged {charged} µ$");
        assert!(
            billed <= 2_000,
            "seed {seed}: the provider billed {billed} µ$ of a 2000 µ$ budget"
        );
        assert!(
            charged >= billed,
            "seed {seed}: billed {billed} µ$, charged only {charged} µ$"
        );
        assert!(charged <= 2_000, "seed {seed}: charged {charged} µ$");
    }
}

async fn mock_output_tokens(mock: &Proc) -> u64 {
    let v: Value = reqwest::get(format!("http://{}/mock/stats", mock.addr))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["output_tokens"].as_u64().unwrap()
}

/// Spent of the key's budget at `level` (`key`, `team`, `customer`), in µ$.
async fn budget_spent(gw: &Gateway, secret: &str, level: &str) -> u64 {
    budgets_of(gw, secret)
        .await
        .into_iter()
        .find_map(|(scope, spent, _)| scope.starts_with(level).then_some(spent))
        .unwrap()
}
