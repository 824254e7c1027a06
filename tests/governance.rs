//! Virtual keys, teams and customers through the admin API and the proxy,
//! against the real binary.

mod common;

use common::*;
use serde_json::{Value, json};

const TOKEN: &str = "admin-s3cret-for-the-tests";

struct Admin<'a> {
    gw: &'a Gateway,
}

impl Admin<'_> {
    fn new(gw: &Gateway) -> Admin<'_> {
        Admin { gw }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        admin_call(self.gw.url(path), TOKEN, method, body).await
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }
    async fn patch(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::PATCH, path, Some(body)).await
    }
    async fn get(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }
    async fn delete(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::DELETE, path, None).await
    }
}

async fn gateway(mock: &Proc, enforce: bool) -> Gateway {
    let config = format!(
        "[server]\nadmin_token = \"{TOKEN}\"\n[client]\nenforce_auth = {enforce}\n{}",
        mock_provider("mock", mock, "") + &mock_provider("other", mock, "")
    );
    Gateway::start(&config).await
}

async fn chat(gw: &Gateway, key: Option<&str>, model: &str) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(gw.url("/v1/chat/completions"))
        .json(&chat_body(model));
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn admin_crud_for_customers_teams_and_keys() {
    let mock = start_mock(&[]).await;
    let gw = gateway(&mock, false).await;
    let a = Admin::new(&gw);

    let (s, customer) = a.post("/api/customers", json!({"name": "acme"})).await;
    assert_eq!(s, 201, "{customer}");
    let (s, team) = a
        .post(
            "/api/teams",
            json!({"name": "search", "customer_id": customer["id"]}),
        )
        .await;
    assert_eq!(s, 201, "{team}");
    let (s, key) = a
        .post(
            "/api/keys",
            json!({"name": "ci", "team_id": team["id"], "models": ["mock-*"]}),
        )
        .await;
    assert_eq!(s, 201, "{key}");
    let secret = key["secret"].as_str().unwrap();
    assert!(secret.starts_with("sk-tg-") && secret.len() > 40);
    let id = key["id"].as_str().unwrap().to_string();

    // The secret is shown once: never by GET or list, and never its hash.
    let (s, got) = a.get(&format!("/api/keys/{id}")).await;
    assert_eq!(s, 200);
    assert!(
        got.get("secret").is_none() && got.get("secret_hash").is_none(),
        "{got}"
    );
    assert_eq!(got["secret_prefix"].as_str().unwrap(), &secret[..10]);
    let (_, list) = a.get("/api/keys").await;
    assert!(!list.to_string().contains(secret));

    let (s, patched) = a
        .patch(
            &format!("/api/teams/{}", team["id"].as_str().unwrap()),
            json!({"name": "search-2"}),
        )
        .await;
    assert_eq!((s, patched["name"].as_str()), (200, Some("search-2")));

    // Paging.
    for i in 0..3 {
        a.post("/api/customers", json!({"name": format!("c{i}")}))
            .await;
    }
    let (_, p1) = a.get("/api/customers?limit=2").await;
    assert_eq!(p1["data"].as_array().unwrap().len(), 2);
    let cursor = p1["next_cursor"].as_str().unwrap();
    let (_, p2) = a
        .get(&format!("/api/customers?limit=2&cursor={cursor}"))
        .await;
    assert_eq!(p2["data"].as_array().unwrap().len(), 2);
    assert!(p2["next_cursor"].is_null());

    let (s, _) = a
        .delete(&format!(
            "/api/customers/{}",
            p2["data"][1]["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(s, 204);
    let (s, _) = a
        .get(&format!(
            "/api/customers/{}",
            p2["data"][1]["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn admin_refusals_are_precise_and_write_nothing() {
    let mock = start_mock(&[]).await;
    let gw = gateway(&mock, false).await;
    let a = Admin::new(&gw);
    let (_, key) = a.post("/api/keys", json!({"name": "k"})).await;
    let path = format!("/api/keys/{}", key["id"].as_str().unwrap());

    let c = reqwest::Client::new();
    let r = c.get(gw.url("/api/keys")).send().await.unwrap();
    assert_eq!(r.status(), 401, "no token");
    let r = c
        .get(gw.url("/api/keys"))
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "wrong token");
    let r = c
        .post(gw.url("/api/keys"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "malformed JSON");

    for (body, needle) in [
        (json!([1, 2]), "JSON object"),
        (json!({"name": "k2", "colour": "red"}), "colour"),
        (json!({"name": "k2", "active": "yes"}), "body"),
        (
            json!({"name": "k2", "team_id": "team_missing"}),
            "team_missing",
        ),
        (json!({"name": ""}), "name"),
        (json!({"name": "k2", "secret_hash": "00"}), "secret_hash"),
    ] {
        let (s, v) = a.post("/api/keys", body.clone()).await;
        assert_eq!(s, 400, "{body}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(needle),
            "{body}: {v}"
        );
    }
    let (s, v) = a
        .post(
            "/api/teams",
            json!({"name": "t", "customer_id": "cus_missing"}),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    let (s, _) = a
        .post("/api/customers", json!({"name": "c", "budget": 5}))
        .await;
    assert_eq!(s, 400);

    // A refused patch changes nothing, not even its valid fields.
    let (s, _) = a
        .patch(&path, json!({"name": "renamed", "team_id": "team_missing"}))
        .await;
    assert_eq!(s, 400);
    let (_, now) = a.get(&path).await;
    assert_eq!(now["name"], "k");
    let (_, list) = a.get("/api/keys").await;
    assert_eq!(
        list["data"].as_array().unwrap().len(),
        1,
        "no key was half-created"
    );

    let (s, _) = a.patch("/api/keys/vk_missing", json!({"name": "x"})).await;
    assert_eq!(s, 404);
    let (s, _) = a.delete("/api/teams/team_missing").await;
    assert_eq!(s, 404);
    let (s, _) = a.post("/api/keys/vk_missing/rotate", json!({})).await;
    assert_eq!(s, 404);
    let (s, _) = a.get("/api/keys?limit=0").await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn virtual_keys_gate_the_proxy() {
    let mock = start_mock(&[]).await;
    let gw = gateway(&mock, true).await;
    let a = Admin::new(&gw);
    let (_, key) = a
        .post(
            "/api/keys",
            json!({"name": "app", "models": ["mock-*"], "providers": ["mock"]}),
        )
        .await;
    let secret = key["secret"].as_str().unwrap().to_string();
    let path = format!("/api/keys/{}", key["id"].as_str().unwrap());

    let r = chat(&gw, None, "mock/mock-1").await;
    assert_eq!(r.status(), 401, "enforced: no key");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["type"], "authentication_error");
    assert_eq!(
        chat(&gw, Some("sk-tg-unknown"), "mock/mock-1")
            .await
            .status(),
        401
    );
    assert_eq!(chat(&gw, Some(&secret), "mock/mock-1").await.status(), 200);

    // Other SDKs' headers carry the key too.
    for h in ["x-api-key", "x-goog-api-key", "api-key", "x-tollgate-vk"] {
        let r = reqwest::Client::new()
            .post(gw.url("/v1/chat/completions"))
            .header(h, &secret)
            .json(&chat_body("mock/mock-1"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{h}");
    }

    // Models and providers outside the key's lists.
    let r = chat(&gw, Some(&secret), "other/mock-1").await;
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "model_not_allowed"
    );
    let mut body = chat_body("mock/mock-1");
    body["fallbacks"] = json!(["other/mock-1"]);
    let r = reqwest::Client::new()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(&secret)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // The request log attributes requests to the key.
    let page = logs_until(
        &gw,
        &format!("?virtual_key={}", key["id"].as_str().unwrap()),
        Some(TOKEN),
        |p| p["data"].as_array().is_some_and(|d| d.len() >= 5),
    )
    .await;
    assert!(
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["virtual_key"] == key["id"])
    );

    // Revoked: refused on the next request; reactivated: accepted again.
    a.patch(&path, json!({"active": false})).await;
    assert_eq!(chat(&gw, Some(&secret), "mock/mock-1").await.status(), 401);
    a.patch(&path, json!({"active": true})).await;
    assert_eq!(chat(&gw, Some(&secret), "mock/mock-1").await.status(), 200);

    // Expired.
    a.patch(&path, json!({"expires_at": 1})).await;
    let r = chat(&gw, Some(&secret), "mock/mock-1").await;
    assert_eq!(r.status(), 401);
    assert!(
        r.json::<Value>().await.unwrap()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
    a.patch(&path, json!({"expires_at": null})).await;

    // Rotated: the old secret stops, the new one works.
    let (_, rotated) = a.post(&format!("{path}/rotate"), json!({})).await;
    let new_secret = rotated["secret"].as_str().unwrap();
    assert_eq!(chat(&gw, Some(&secret), "mock/mock-1").await.status(), 401);
    assert_eq!(
        chat(&gw, Some(new_secret), "mock/mock-1").await.status(),
        200
    );

    // Deleted.
    a.delete(&path).await;
    assert_eq!(
        chat(&gw, Some(new_secret), "mock/mock-1").await.status(),
        401
    );
}

#[tokio::test]
async fn unenforced_auth_passes_anonymous_requests_but_checks_presented_keys() {
    let mock = start_mock(&[]).await;
    let gw = gateway(&mock, false).await;
    assert_eq!(chat(&gw, None, "mock/mock-1").await.status(), 200);
    assert_eq!(
        chat(&gw, Some("not-a-virtual-key"), "mock/mock-1")
            .await
            .status(),
        200
    );
    assert_eq!(
        chat(&gw, Some("sk-tg-revoked-or-unknown"), "mock/mock-1")
            .await
            .status(),
        401
    );
}

#[tokio::test]
async fn keys_survive_a_restart() {
    let mock = start_mock(&[]).await;
    let gw = gateway(&mock, true).await;
    let (_, key) = Admin::new(&gw)
        .post("/api/keys", json!({"name": "durable"}))
        .await;
    let secret = key["secret"].as_str().unwrap().to_string();
    gw.proc.terminate();
    let Gateway { mut proc, dir } = gw;
    assert!(proc.child.wait().unwrap().success());
    let config = std::fs::read_to_string(dir.path().join("tollgate.toml")).unwrap();
    let gw = Gateway::start_in(&config, dir).await;
    assert_eq!(chat(&gw, Some(&secret), "mock/mock-1").await.status(), 200);
    let (s, got) = Admin::new(&gw)
        .get(&format!("/api/keys/{}", key["id"].as_str().unwrap()))
        .await;
    assert_eq!((s, got["name"].as_str()), (200, Some("durable")));
}

#[tokio::test]
async fn bare_models_route_by_the_keys_providers_and_weights() {
    let mock = start_mock(&[]).await;
    let config = format!(
        "[server]\nadmin_token = \"{TOKEN}\"\n{}",
        mock_provider("a", &mock, "models = [\"shared\"]")
            + &mock_provider("b", &mock, "models = [\"shared\"]")
    );
    let gw = Gateway::start(&config).await;
    let a = Admin::new(&gw);
    let provider_of = |secret: String| {
        let req = reqwest::Client::new()
            .post(gw.url("/v1/chat/completions"))
            .bearer_auth(secret)
            .json(&chat_body("shared"));
        async move {
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.headers()["x-tollgate-provider"]
                .to_str()
                .unwrap()
                .to_string()
        }
    };
    // Without a key or preferences: the first provider in config order.
    assert_eq!(
        chat(&gw, None, "shared").await.headers()["x-tollgate-provider"],
        "a"
    );

    let (_, only_b) = a
        .post("/api/keys", json!({"name": "b-only", "providers": ["b"]}))
        .await;
    let (_, weighted_b) = a
        .post(
            "/api/keys",
            json!({"name": "prefers-b", "provider_weights": {"b": 1}}),
        )
        .await;
    for _ in 0..10 {
        assert_eq!(
            provider_of(only_b["secret"].as_str().unwrap().into()).await,
            "b"
        );
        assert_eq!(
            provider_of(weighted_b["secret"].as_str().unwrap().into()).await,
            "b"
        );
    }
    let (_, split) = a
        .post(
            "/api/keys",
            json!({"name": "split", "provider_weights": {"a": 1, "b": 3}}),
        )
        .await;
    let mut seen = std::collections::HashMap::new();
    for _ in 0..60 {
        *seen
            .entry(provider_of(split["secret"].as_str().unwrap().into()).await)
            .or_insert(0) += 1;
    }
    // Both are used (the chance of either never appearing in 60 draws is below 1e-7).
    assert!(seen.contains_key("a") && seen.contains_key("b"), "{seen:?}");
}

#[tokio::test]
async fn providers_through_the_admin_api() {
    let mock = start_mock(&[]).await;
    let config = format!(
        "[server]\nadmin_token = \"{TOKEN}\"\n{}",
        mock_provider("mock", &mock, "")
    );
    let gw = Gateway::start(&config).await;
    let a = Admin::new(&gw);
    let body = json!({
        "kind": "mock",
        "base_url": format!("http://{}/v1", mock.addr),
        "api_key": "lit-secret",
        "models": ["extra-model"],
    });
    let (s, v) = a
        .call(
            reqwest::Method::PUT,
            "/api/providers/extra",
            Some(body.clone()),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["config"]["api_key"], "***",
        "secrets are never shown: {v}"
    );

    let r = chat(&gw, None, "extra/mock-1").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-tollgate-provider"], "extra");
    assert_eq!(
        chat(&gw, None, "extra-model").await.status(),
        200,
        "bare names of API providers resolve"
    );
    let stats: Value = reqwest::get(mock.url("/mock/stats"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        stats["by_key"]["lit-secret"], 2,
        "the stored key is what goes upstream"
    );
    let models: Value = reqwest::get(gw.url("/v1/models"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(models.to_string().contains("extra/extra-model"), "{models}");

    let (_, list) = a.get("/api/providers").await;
    let sources: Vec<(&str, &str)> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap(), p["source"].as_str().unwrap()))
        .collect();
    assert_eq!(sources, [("mock", "config"), ("extra", "api")]);
    assert!(!list.to_string().contains("lit-secret"));
    let (_, first) = a.get("/api/providers?limit=1").await;
    assert_eq!(first["data"][0]["name"], "mock");
    assert_eq!(first["next_cursor"], "mock");
    let (_, second) = a.get("/api/providers?limit=1&cursor=mock").await;
    assert_eq!(second["data"][0]["name"], "extra");
    assert!(second["next_cursor"].is_null());

    for (name, bad) in [
        ("mock", body.clone()),
        ("extra", json!({"kind": "mock", "base_url": "ftp://x"})),
        ("extra", json!({"kind": "mock", "colour": "red"})),
        (
            "extra",
            json!({"kind": "mock", "api_key": "env.TOLLGATE_TEST_SURELY_UNSET"}),
        ),
        ("extra", json!({"kind": "nonsense"})),
    ] {
        let (s, v) = a
            .call(
                reqwest::Method::PUT,
                &format!("/api/providers/{name}"),
                Some(bad.clone()),
            )
            .await;
        assert_eq!(s, 400, "{name} {bad}: {v}");
    }
    // The refused bodies left the provider as it was.
    assert_eq!(chat(&gw, None, "extra/mock-1").await.status(), 200);

    let (s, _) = a.delete("/api/providers/extra").await;
    assert_eq!(s, 204);
    assert_eq!(chat(&gw, None, "extra/mock-1").await.status(), 404);
    let (s, _) = a.delete("/api/providers/mock").await;
    assert_eq!(s, 404, "config providers are not the API's to delete");

    // API providers survive a restart.
    a.call(reqwest::Method::PUT, "/api/providers/kept", Some(body))
        .await;
    gw.proc.terminate();
    let Gateway { mut proc, dir } = gw;
    assert!(proc.child.wait().unwrap().success());
    let gw = Gateway::start_in(&config, dir).await;
    assert_eq!(chat(&gw, None, "kept/mock-1").await.status(), 200);
}
