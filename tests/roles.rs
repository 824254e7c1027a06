//! Named admin tokens and their roles through the real binary: each role is
//! refused exactly what it may not do, a revoked token (and the sessions
//! opened with it) stops working, and the bootstrap token stays an admin.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

const TOKEN: &str = "roles-bootstrap-token-0123456789";

async fn call(gw: &Gateway, token: &str, method: &str, path: &str, body: Option<Value>) -> u16 {
    admin_call(gw.url(path), token, method.parse().unwrap(), body)
        .await
        .0
}

async fn token(gw: &Gateway, name: &str, role: &str) -> (String, String) {
    let (status, v) = admin_call(
        gw.url("/api/admin-tokens"),
        TOKEN,
        Method::POST,
        Some(json!({"name": name, "role": role})),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    assert!(v.get("secret_hash").is_none(), "{v}");
    (
        v["id"].as_str().unwrap().to_string(),
        v["secret"].as_str().unwrap().to_string(),
    )
}

#[tokio::test]
async fn each_role_is_refused_exactly_what_it_may_not_do() {
    let mock = start_mock(&[]).await;
    let gw = Gateway::start(&format!(
        "[server]\nadmin_token = \"{TOKEN}\"\n{}",
        mock_provider("mock", &mock, "models = [\"mock-1\"]")
    ))
    .await;
    let (_, admin) = token(&gw, "ops lead", "admin").await;
    let (_, operator) = token(&gw, "support desk", "operator").await;
    let (viewer_id, viewer) = token(&gw, "finance", "viewer").await;
    let (status, v) = admin_call(
        gw.url("/api/admin-tokens"),
        TOKEN,
        Method::POST,
        Some(json!({"name": "x", "role": "root"})),
    )
    .await;
    assert_eq!(status, 400, "{v}");

    // The objects each write needs, made by the bootstrap token.
    let (_, key) = admin_call(
        gw.url("/api/keys"),
        TOKEN,
        Method::POST,
        Some(json!({"name": "k"})),
    )
    .await;
    let key = key["id"].as_str().unwrap().to_string();
    let provider = json!({"kind": "mock", "base_url": format!("http://{}/v1", mock.addr)});

    // (method, path, body, expected status for [admin, operator, viewer]).
    let cases: Vec<(&str, String, Option<Value>, [u16; 3])> = vec![
        ("GET", "/api/keys".into(), None, [200, 200, 200]),
        ("GET", "/api/logs".into(), None, [200, 200, 200]),
        ("GET", "/api/providers".into(), None, [200, 200, 200]),
        ("GET", "/api/admin-tokens".into(), None, [200, 403, 403]),
        (
            "POST",
            "/api/teams".into(),
            Some(json!({"name": "t"})),
            [201, 201, 403],
        ),
        (
            "POST",
            "/api/customers".into(),
            Some(json!({"name": "c"})),
            [201, 201, 403],
        ),
        (
            "POST",
            "/api/keys".into(),
            Some(json!({"name": "k2"})),
            [201, 201, 403],
        ),
        (
            "PATCH",
            format!("/api/keys/{key}"),
            Some(json!({"budgets": [{"limit_usd": "5", "period": "1d"}]})),
            [200, 200, 403],
        ),
        (
            "POST",
            format!("/api/keys/{key}/rotate"),
            None,
            [200, 200, 403],
        ),
        (
            "PUT",
            "/api/providers/extra".into(),
            Some(provider),
            [200, 403, 403],
        ),
        (
            "DELETE",
            "/api/providers/extra".into(),
            None,
            [204, 403, 403],
        ),
        (
            "PUT",
            "/api/mcp/tool-groups/g".into(),
            Some(json!({"tools": ["x-*"]})),
            [200, 403, 403],
        ),
        (
            "PUT",
            "/api/pricing/mock-1".into(),
            Some(json!({"input": 1, "output": 1})),
            [200, 403, 403],
        ),
        ("DELETE", "/api/cache".into(), None, [200, 403, 403]),
        (
            "POST",
            "/api/admin-tokens".into(),
            Some(json!({"name": "n", "role": "viewer"})),
            [201, 403, 403],
        ),
    ];
    for (method, path, body, expected) in &cases {
        for (who, secret, want) in [
            ("admin", &admin, expected[0]),
            ("operator", &operator, expected[1]),
            ("viewer", &viewer, expected[2]),
        ] {
            let got = call(&gw, secret, method, path, body.clone()).await;
            assert_eq!(got, want, "{who}: {method} {path}");
        }
    }
    let (status, v) = admin_call(
        gw.url("/api/teams"),
        &viewer,
        Method::POST,
        Some(json!({"name": "t"})),
    )
    .await;
    assert_eq!(
        (status, v["error"]["type"].as_str()),
        (403, Some("permission_error")),
        "{v}"
    );

    // A viewer's session is a viewer's; revoking the token ends it.
    let (status, cookie, _, v) = login(&gw, &viewer).await;
    assert_eq!(status, 200, "{v}");
    let cookie = cookie.unwrap();
    assert_eq!(
        (v["role"].as_str(), v["token"].as_str()),
        (Some("viewer"), Some("finance"))
    );
    let with_cookie = |method: Method, path: &str| {
        reqwest::Client::new()
            .request(method, gw.url(path))
            .header("cookie", &cookie)
            .header("x-csrf-token", v["csrf"].as_str().unwrap())
            .json(&json!({"name": "t"}))
            .send()
    };
    assert_eq!(
        with_cookie(Method::GET, "/api/keys")
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        with_cookie(Method::POST, "/api/teams")
            .await
            .unwrap()
            .status(),
        403
    );

    assert_eq!(
        call(
            &gw,
            TOKEN,
            "DELETE",
            &format!("/api/admin-tokens/{viewer_id}"),
            None
        )
        .await,
        204
    );
    assert_eq!(
        call(&gw, &viewer, "GET", "/api/keys", None).await,
        401,
        "a revoked token"
    );
    assert_eq!(
        with_cookie(Method::GET, "/api/keys")
            .await
            .unwrap()
            .status(),
        401,
        "its session"
    );
    // The bootstrap token cannot be revoked through the API and stays an admin.
    assert_eq!(
        call(&gw, TOKEN, "GET", "/api/admin-tokens", None).await,
        200
    );
}
