//! Budgets through the real server: concurrent admission, every level of the
//! hierarchy, persistence across a restart.

mod common;

use common::*;
use serde_json::{Value, json};

const TOKEN: &str = "budget-admin-token-for-tests";

/// The mock model costs nothing per input token and 1 µ$ per output token; a
/// request with `max_tokens = 20` gets exactly 20 output tokens, so its
/// reservation (its worst case) and its actual cost are both 20 µ$.
fn config(mock: &Proc) -> String {
    format!(
        "[server]\nadmin_token = \"{TOKEN}\"\n[client]\nenforce_auth = true\n\
         [pricing.\"mock-1\"]\ninput = 0\noutput = 1000000\n{}",
        mock_provider(
            "mock",
            mock,
            "headers = { \"x-mock-words\" = \"100\", \"x-mock-latency-ms\" = \"20\" }"
        )
    )
}

async fn admin(gw: &Gateway, path: &str, body: Value) -> Value {
    let r = reqwest::Client::new()
        .post(gw.url(path))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{path} {body}");
    r.json().await.unwrap()
}

fn budget(usd: &str) -> Value {
    json!([{"limit_usd": usd, "period": "1d", "calendar": true}])
}

async fn fire(gw: &Gateway, secret: &str, n: usize) -> (usize, usize) {
    let body = json!({"model": "mock/mock-1", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]});
    let client = reqwest::Client::new();
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let req = client
                .post(gw.url("/v1/chat/completions"))
                .bearer_auth(secret)
                .json(&body);
            tokio::spawn(async move {
                let r = req.send().await.unwrap();
                let status = r.status().as_u16();
                let v: Value = r.json().await.unwrap();
                (status, v)
            })
        })
        .collect();
    let (mut ok, mut refused) = (0, 0);
    for t in tasks {
        let (status, v) = t.await.unwrap();
        match status {
            200 => ok += 1,
            402 => {
                assert_eq!(v["error"]["code"], "budget_exceeded", "{v}");
                refused += 1;
            }
            other => panic!("unexpected {other}: {v}"),
        }
    }
    (ok, refused)
}

async fn spent(gw: &Gateway, secret: &str) -> Vec<(String, String, String)> {
    let v: Value = reqwest::Client::new()
        .get(gw.url("/api/self"))
        .bearer_auth(secret)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["budgets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["scope"]
                    .as_str()
                    .unwrap()
                    .split(':')
                    .next()
                    .unwrap()
                    .to_string(),
                b["spent_usd"].as_str().unwrap().to_string(),
                b["limit_usd"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn fifty_concurrent_requests_against_a_budget_for_ten_at_every_level() {
    let mock = start_mock(&[]).await;
    let gw = Gateway::start(&config(&mock)).await;
    // The binding budget (200 µ$ = ten requests) sits at a different level each time.
    for level in ["key", "team", "customer"] {
        let tight = "0.000200";
        let loose = "1";
        let pick = |l: &str| budget(if l == level { tight } else { loose });
        let customer = admin(
            &gw,
            "/api/customers",
            json!({"name": "c", "budgets": pick("customer")}),
        )
        .await;
        let team = admin(
            &gw,
            "/api/teams",
            json!({"name": "t", "customer_id": customer["id"], "budgets": pick("team")}),
        )
        .await;
        let key = admin(
            &gw,
            "/api/keys",
            json!({"name": "k", "team_id": team["id"], "budgets": pick("key")}),
        )
        .await;
        let secret = key["secret"].as_str().unwrap();

        let (ok, refused) = fire(&gw, secret, 50).await;
        assert_eq!((ok, refused), (10, 40), "binding budget at the {level}");

        let spends = spent(&gw, secret).await;
        assert_eq!(spends.len(), 3, "{spends:?}");
        for (scope, spent, limit) in &spends {
            assert_eq!(spent, "0.000200", "{scope} at {level}: {spends:?}");
            let (s, l): (f64, f64) = (spent.parse().unwrap(), limit.parse().unwrap());
            assert!(s <= l, "{scope} overspent: {spent} > {limit}");
        }
        // The logs agree on what was charged.
        let page = logs_until(
            &gw,
            &format!("?virtual_key={}&status=200", key["id"].as_str().unwrap()),
            Some(TOKEN),
            |p| p["data"].as_array().is_some_and(|d| d.len() == 10),
        )
        .await;
        let charged: u64 = page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["cost_micros"].as_u64().unwrap())
            .sum();
        assert_eq!(charged, 200);
    }
}

#[tokio::test]
async fn spend_survives_a_restart() {
    let mock = start_mock(&[]).await;
    let gw = Gateway::start(&config(&mock)).await;
    let key = admin(
        &gw,
        "/api/keys",
        json!({"name": "k", "budgets": budget("0.000060")}),
    )
    .await;
    let secret = key["secret"].as_str().unwrap().to_string();
    assert_eq!(fire(&gw, &secret, 3).await, (3, 0));
    assert_eq!(fire(&gw, &secret, 1).await, (0, 1));

    gw.proc.terminate();
    let Gateway { mut proc, dir } = gw;
    assert!(proc.child.wait().unwrap().success());
    let cfg = std::fs::read_to_string(dir.path().join("tollgate.toml")).unwrap();
    let gw = Gateway::start_in(&cfg, dir).await;
    assert_eq!(spent(&gw, &secret).await[0].1, "0.000060");
    assert_eq!(
        fire(&gw, &secret, 1).await,
        (0, 1),
        "still exhausted after the restart"
    );
}

#[tokio::test]
async fn budget_bodies_are_validated() {
    let mock = start_mock(&[]).await;
    let gw = Gateway::start(&config(&mock)).await;
    for budgets in [
        json!([{"limit_usd": "ten", "period": "1d"}]),
        json!([{"limit_usd": "1", "period": "2d"}]),
        json!([{"limit_usd": "1", "period": "1d", "reset": "daily"}]),
        json!([{"limit_usd": 1.5, "period": "1d"}]),
        json!([{"limit_usd": "0.0000001", "period": "1d"}]),
    ] {
        let r = reqwest::Client::new()
            .post(gw.url("/api/keys"))
            .bearer_auth(TOKEN)
            .json(&json!({"name": "k", "budgets": budgets}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{budgets}");
    }
    let r = reqwest::Client::new()
        .get(gw.url("/api/self"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn rate_limits_refuse_with_retry_after_at_every_level() {
    let mock = start_mock(&[]).await;
    let gw = Gateway::start(&config(&mock)).await;
    let body = json!({"model": "mock/mock-1", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]});
    let send = |secret: String| {
        let req = reqwest::Client::new()
            .post(gw.url("/v1/chat/completions"))
            .bearer_auth(secret)
            .json(&body);
        async move { req.send().await.unwrap() }
    };

    // Requests per window on the key.
    let key = admin(
        &gw,
        "/api/keys",
        json!({"name": "k", "rate_limits": [{"requests": 3, "window": "1h"}]}),
    )
    .await;
    let secret = key["secret"].as_str().unwrap().to_string();
    for _ in 0..3 {
        assert_eq!(send(secret.clone()).await.status(), 200);
    }
    let r = send(secret.clone()).await;
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&retry), "{retry}");
    let v: Value = r.json().await.unwrap();
    assert!(
        v["error"]["message"].as_str().unwrap().contains("requests"),
        "{v}"
    );

    // Tokens per window on the team: the first request uses them up.
    let team = admin(
        &gw,
        "/api/teams",
        json!({"name": "t", "rate_limits": [{"tokens": 10, "window": "1d"}]}),
    )
    .await;
    let member = admin(
        &gw,
        "/api/keys",
        json!({"name": "m", "team_id": team["id"]}),
    )
    .await;
    let secret = member["secret"].as_str().unwrap().to_string();
    assert_eq!(send(secret.clone()).await.status(), 200);
    let r = send(secret).await;
    assert_eq!(r.status(), 429);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["error"]["message"].as_str().unwrap().contains("tokens"),
        "{v}"
    );
}

#[tokio::test]
async fn spend_reports_group_by_key_team_customer_provider_and_model() {
    let mock = start_mock(&[]).await;
    let gw = Gateway::start(&config(&mock)).await;
    let customer = admin(&gw, "/api/customers", json!({"name": "c"})).await;
    let team = admin(
        &gw,
        "/api/teams",
        json!({"name": "t", "customer_id": customer["id"]}),
    )
    .await;
    let key = admin(
        &gw,
        "/api/keys",
        json!({"name": "k", "team_id": team["id"]}),
    )
    .await;
    assert_eq!(fire(&gw, key["secret"].as_str().unwrap(), 3).await, (3, 0));
    logs_until(&gw, "?status=200", Some(TOKEN), |p| {
        p["data"].as_array().is_some_and(|d| d.len() == 3)
    })
    .await;

    let report = |q: &'static str| {
        let req = reqwest::Client::new()
            .get(gw.url(&format!("/api/spend{q}")))
            .bearer_auth(TOKEN);
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    for (group, id) in [
        ("key", &key["id"]),
        ("team", &team["id"]),
        ("customer", &customer["id"]),
    ] {
        let (s, v) = report(match group {
            "key" => "?group_by=key",
            "team" => "?group_by=team&bucket=1h",
            _ => "?group_by=customer&bucket=1d",
        })
        .await;
        assert_eq!(s, 200);
        let rows = v["data"].as_array().unwrap();
        assert_eq!(rows.len(), 1, "{group}: {v}");
        assert_eq!(&rows[0]["group"], id);
        assert_eq!(rows[0]["requests"], 3);
        assert_eq!(rows[0]["cost_micros"], 60);
        assert_eq!(rows[0]["completion_tokens"], 60);
    }
    let (_, v) = report("?group_by=model").await;
    assert_eq!(v["data"][0]["group"], "mock-1");
    let (s, _) = report("?group_by=colour").await;
    assert_eq!(s, 400);
    let (s, _) = report("").await;
    assert_eq!(s, 400, "group_by is required");
}

#[tokio::test]
async fn streams_without_usage_are_counted_and_charged() {
    let mock = start_mock(&["--words", "30"]).await;
    let config = format!(
        "[server]\nadmin_token = \"{TOKEN}\"\n[pricing.\"mock-1\"]\ninput = 1000000\noutput = 1000000\n{}",
        mock_provider("quiet", &mock, "stream_usage = false")
    );
    let gw = Gateway::start(&config).await;
    let key = admin(
        &gw,
        "/api/keys",
        json!({"name": "k", "budgets": budget("1")}),
    )
    .await;
    let body = json!({"model": "quiet/mock-1", "stream": true, "messages": [{"role": "user", "content": "count me please"}]});
    let r = reqwest::Client::new()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(key["secret"].as_str().unwrap())
        .json(&body)
        .send()
        .await
        .unwrap();
    let text = r.text().await.unwrap();
    assert!(
        !text.contains("\"usage\":{"),
        "the upstream sent no usage: {text}"
    );
    let page = logs_until(&gw, "?limit=1", Some(TOKEN), |p| {
        p["data"].as_array().is_some_and(|d| d.len() == 1)
    })
    .await;
    let rec = &page["data"][0];
    let completion = rec["usage"]["completion_tokens"].as_u64().unwrap();
    // 30 words of mock text: counted with a real tokenizer, about a token a word.
    assert!((25..=40).contains(&completion), "{rec}");
    assert!(
        rec["usage"]["prompt_tokens"].as_u64().unwrap() >= 3,
        "{rec}"
    );
    assert_eq!(
        rec["cost_micros"].as_u64().unwrap(),
        rec["usage"]["total_tokens"].as_u64().unwrap(),
        "1 µ$ a token"
    );
}

#[tokio::test]
async fn pricing_overrides_through_the_admin_api() {
    let mock = start_mock(&[]).await;
    let gw = Gateway::start(&config(&mock)).await;
    let c = reqwest::Client::new();
    let call = |method: reqwest::Method, path: &str, body: Option<Value>| {
        let mut req = c.request(method, gw.url(path)).bearer_auth(TOKEN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        async move {
            let r = req.send().await.unwrap();
            let s = r.status().as_u16();
            (s, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let key = admin(&gw, "/api/keys", json!({"name": "k"})).await;
    let secret = key["secret"].as_str().unwrap().to_string();
    let cost_of_next = || {
        let gw = &gw;
        let secret = secret.clone();
        async move {
            assert_eq!(fire(gw, &secret, 1).await, (1, 0));
            let page = logs_until(gw, "?limit=1&status=200", Some(TOKEN), |p| {
                p["data"].as_array().is_some_and(|d| !d.is_empty())
            })
            .await;
            page["data"][0]["cost_micros"].as_u64().unwrap()
        }
    };
    // The config's price: 1 µ$ per output token, 20 tokens.
    assert_eq!(cost_of_next().await, 20);

    let (s, v) = call(
        reqwest::Method::PUT,
        "/api/pricing/mock-1",
        Some(json!({"input": 0, "output": 2000000})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = call(reqwest::Method::GET, "/api/pricing/mock/mock-1", None).await;
    assert_eq!((s, v["price"]["output"].as_u64()), (200, Some(2_000_000)));
    // Logs are written off the request path: wait for the newest to differ.
    assert_eq!(fire(&gw, &secret, 1).await, (1, 0));
    logs_until(&gw, "?limit=1&status=200", Some(TOKEN), |p| {
        p["data"][0]["cost_micros"] == 40
    })
    .await;

    for body in [
        json!({"input": 1}),
        json!({"input": 1, "output": 2, "bonus": 3}),
        json!({"input": -1, "output": 2}),
    ] {
        let (s, _) = call(
            reqwest::Method::PUT,
            "/api/pricing/mock-1",
            Some(body.clone()),
        )
        .await;
        assert_eq!(s, 400, "{body}");
    }
    let (_, list) = call(reqwest::Method::GET, "/api/pricing", None).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    let (s, _) = call(reqwest::Method::DELETE, "/api/pricing/mock-1", None).await;
    assert_eq!(s, 204);
    let (s, _) = call(reqwest::Method::GET, "/api/pricing/nosuch-model", None).await;
    assert_eq!(s, 404);
    assert_eq!(fire(&gw, &secret, 1).await, (1, 0));
    logs_until(&gw, "?limit=1&status=200", Some(TOKEN), |p| {
        p["data"][0]["cost_micros"] == 20
    })
    .await;
}

#[tokio::test]
async fn a_keys_budget_at_one_provider_limits_only_that_provider() {
    let mock = start_mock(&[]).await;
    let config =
        config(&mock) + &mock_provider("other", &mock, "headers = { \"x-mock-words\" = \"100\" }");
    let gw = Gateway::start(&config).await;
    // 40 µ$ at provider "mock": two requests of 20 µ$; "other" is unbudgeted.
    let key = admin(
        &gw,
        "/api/keys",
        json!({"name": "k", "provider_budgets": {"mock": budget("0.000040")}}),
    )
    .await;
    let secret = key["secret"].as_str().unwrap().to_string();
    let send = |model: &'static str| {
        let req = reqwest::Client::new()
            .post(gw.url("/v1/chat/completions"))
            .bearer_auth(&secret)
            .json(&json!({"model": model, "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}));
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(send("mock/mock-1").await, 200);
    assert_eq!(send("mock/mock-1").await, 200);
    assert_eq!(send("mock/mock-1").await, 402);
    for _ in 0..3 {
        assert_eq!(
            send("other/mock-1").await,
            200,
            "another provider is not held by this budget"
        );
    }
    let spends = spent(&gw, &secret).await;
    assert_eq!(spends.len(), 1);
    assert_eq!(
        spends[0].1, "0.000040",
        "only the budgeted provider's spend counts: {spends:?}"
    );
}

#[tokio::test]
async fn a_keys_rate_limit_at_one_provider_limits_only_that_provider() {
    let mock = start_mock(&[]).await;
    let config = config(&mock) + &mock_provider("other", &mock, "");
    let gw = Gateway::start(&config).await;
    let key = admin(
        &gw,
        "/api/keys",
        json!({"name": "k", "provider_rate_limits": {"mock": [{"requests": 2, "window": "1h"}]}}),
    )
    .await;
    let secret = key["secret"].as_str().unwrap().to_string();
    let send = |model: &'static str| {
        let req = reqwest::Client::new()
            .post(gw.url("/v1/chat/completions"))
            .bearer_auth(&secret)
            .json(&json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}));
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(send("mock/mock-1").await, 200);
    assert_eq!(send("mock/mock-1").await, 200);
    assert_eq!(send("mock/mock-1").await, 429);
    assert_eq!(send("other/mock-1").await, 200);
}

#[tokio::test]
async fn a_client_leaving_mid_stream_is_charged_its_reservation() {
    let mock = start_mock(&["--chunks", "10", "--chunk-delay-ms", "200"]).await;
    let gw = Gateway::start(&config(&mock)).await;
    let key = admin(
        &gw,
        "/api/keys",
        json!({"name": "k", "budgets": budget("1")}),
    )
    .await;
    let secret = key["secret"].as_str().unwrap().to_string();
    let mut r = reqwest::Client::new()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(&secret)
        .json(
            &json!({"model": "mock/mock-1", "stream": true, "max_tokens": 20,
                      "messages": [{"role": "user", "content": "hi"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.chunk().await.unwrap().is_some(), "the stream started");
    drop(r);
    // The upstream may have billed what it generated; the gateway never
    // charges less than the reservation (20 output tokens at 1 µ$).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let spends = spent(&gw, &secret).await;
        if spends[0].1 != "0.000000" {
            assert_eq!(spends[0].1, "0.000020");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never settled: {spends:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let page = logs_until(&gw, "?status=499", Some(TOKEN), |p| {
        p["data"].as_array().is_some_and(|d| d.len() == 1)
    })
    .await;
    assert_eq!(
        page["data"][0]["cost_micros"], 20,
        "the log records what was charged"
    );
}
