//! The dashboard through the real binary: its page and files with their
//! security headers, logging in for a session cookie, CSRF on writes,
//! logout, the login throttle, and the endpoints the page reads
//! (`/api/status`, `/api/overview`, `/api/{kind}/{id}/budgets`).

mod common;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

const TOKEN: &str = "dashboard-admin-token-0123456789";

fn config(mock: &Proc) -> String {
    format!(
        "[server]\nadmin_token = \"{TOKEN}\"\n{}",
        mock_provider("mock", mock, "models = [\"mock-1\"]")
    )
}

async fn with_cookie(
    gw: &Gateway,
    method: Method,
    path: &str,
    cookie: &str,
    csrf: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .request(method, gw.url(path))
        .header("cookie", cookie);
    if let Some(c) = csrf {
        req = req.header("x-csrf-token", c);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_page_is_served_with_a_strict_policy() {
    let mock = start_mock(&[]).await;
    let gw = Gateway::start(&config(&mock)).await;
    let r = reqwest::get(gw.url("/")).await.unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(h["x-content-type-options"], "nosniff");
    let html = r.text().await.unwrap();
    // Every file the page names is served, as what it is.
    for src in html
        .split("/ui/")
        .skip(1)
        .map(|rest| &rest[..rest.find('"').unwrap()])
    {
        let r = reqwest::get(gw.url(&format!("/ui/{src}"))).await.unwrap();
        assert_eq!(r.status(), 200, "{src}");
        assert!(r.headers().contains_key("content-security-policy"));
    }
    for bad in ["/ui/..%2FCargo.toml", "/ui/nope.js", "/ui/.hidden"] {
        let r = reqwest::get(gw.url(bad)).await.unwrap();
        assert_eq!(r.status(), 404, "{bad}");
    }
}

#[tokio::test]
async fn a_session_stands_in_for_the_token_and_writes_need_its_csrf_token() {
    let mock = start_mock(&[]).await;
    let gw = Gateway::start(&config(&mock)).await;

    let (status, pair, _, v) = login(&gw, "wrong-token-wrong-token").await;
    assert_eq!((status, pair), (401, None), "{v}");
    let (status, _, _) = {
        let r = reqwest::get(gw.url("/api/keys")).await.unwrap();
        (r.status().as_u16(), (), ())
    };
    assert_eq!(status, 401);

    let (status, pair, set, v) = login(&gw, TOKEN).await;
    assert_eq!(status, 200, "{v}");
    let (cookie, set) = (pair.unwrap(), set.unwrap());
    assert!(cookie.starts_with("tollgate_session="), "{set}");
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    assert!(!set.contains(TOKEN), "the token itself is never the cookie");
    let csrf = v["csrf"].as_str().unwrap().to_string();
    assert!(v["expires_at"].as_u64().unwrap() > 0);

    // The page finds its session (and CSRF token) again after a reload.
    let (status, again) = with_cookie(&gw, Method::GET, "/api/session", &cookie, None, None).await;
    assert_eq!((status, again["csrf"].as_str()), (200, Some(csrf.as_str())));

    let (status, _) = with_cookie(&gw, Method::GET, "/api/keys", &cookie, None, None).await;
    assert_eq!(status, 200);
    let team = json!({"name": "from the page"});
    let (status, v) = with_cookie(
        &gw,
        Method::POST,
        "/api/teams",
        &cookie,
        None,
        Some(team.clone()),
    )
    .await;
    assert_eq!(status, 403, "no CSRF token: {v}");
    assert_eq!(v["error"]["type"], "csrf_error");
    let (status, _) = with_cookie(
        &gw,
        Method::POST,
        "/api/teams",
        &cookie,
        Some("forged"),
        Some(team.clone()),
    )
    .await;
    assert_eq!(status, 403);
    let (status, v) = with_cookie(
        &gw,
        Method::POST,
        "/api/teams",
        &cookie,
        Some(&csrf),
        Some(team),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    let (_, list) = admin_call(gw.url("/api/teams"), TOKEN, Method::GET, None).await;
    assert_eq!(list["data"][0]["name"], "from the page");

    // A forged or altered cookie is no session.
    let forged = format!("{}x", cookie);
    let (status, _) = with_cookie(&gw, Method::GET, "/api/keys", &forged, None, None).await;
    assert_eq!(status, 401);

    let (status, _) = with_cookie(&gw, Method::DELETE, "/api/session", &cookie, None, None).await;
    assert_eq!(status, 403, "logout needs the CSRF token too");
    let (status, _) = with_cookie(
        &gw,
        Method::DELETE,
        "/api/session",
        &cookie,
        Some(&csrf),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = with_cookie(&gw, Method::GET, "/api/keys", &cookie, None, None).await;
    assert_eq!(status, 401, "the session ended at logout");
    let (status, _) = with_cookie(&gw, Method::GET, "/api/session", &cookie, None, None).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn failed_logins_are_throttled_and_the_token_still_works() {
    let mock = start_mock(&[]).await;
    let gw = Gateway::start(&config(&mock)).await;
    let mut refused = None;
    for i in 0..40 {
        let (status, _, _, _) = login(&gw, "not-the-admin-token-at-all").await;
        if status == 429 {
            refused = Some(i);
            break;
        }
        assert_eq!(status, 401);
    }
    // 20 a minute; a minute boundary during the loop allows up to 20 more.
    let refused = refused.expect("logins were throttled");
    assert!((20..=40).contains(&refused), "{refused}");
    let (status, _) = admin_call(gw.url("/api/keys"), TOKEN, Method::GET, None).await;
    assert_eq!(status, 200, "the bearer token is not throttled");
}

#[tokio::test]
async fn status_says_when_no_provider_is_configured() {
    let gw = Gateway::start(&format!("[server]\nadmin_token = \"{TOKEN}\"\n")).await;
    let (status, v) = admin_call(gw.url("/api/status"), TOKEN, Method::GET, None).await;
    assert_eq!(status, 200);
    assert_eq!(v["providers"], 0);
    let warnings = v["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().contains("no provider is configured")),
        "{v}"
    );

    let mock = start_mock(&[]).await;
    let gw = Gateway::start(&config(&mock)).await;
    let (_, v) = admin_call(gw.url("/api/status"), TOKEN, Method::GET, None).await;
    assert_eq!(v["providers"], 1);
    assert_eq!(v["warnings"], json!([]));
}

#[tokio::test]
async fn the_overview_counts_requests_and_budgets_show_their_spend() {
    let mock = start_mock(&[]).await;
    let gw = Gateway::start(&config(&mock)).await;
    let (_, team) = admin_call(
        gw.url("/api/teams"),
        TOKEN,
        Method::POST,
        Some(json!({"name": "t", "budgets": [{"limit_usd": "5", "period": "1d"}]})),
    )
    .await;
    let team_id = team["id"].as_str().unwrap().to_string();
    let secret = create_key(&gw, TOKEN, json!({"name": "k", "team_id": team_id})).await;
    for _ in 0..3 {
        let (status, v) = chat_as(&gw, &secret, &chat_body("mock/mock-1")).await;
        assert_eq!(status, 200, "{v}");
    }
    let (status, _) = chat_as(&gw, &secret, &chat_body("mock/no-such-model")).await;
    assert!((400..500).contains(&status), "{status}");
    logs_until(&gw, "", Some(TOKEN), |p| {
        p["data"].as_array().is_some_and(|d| d.len() >= 4)
    })
    .await;

    let (status, v) = admin_call(gw.url("/api/overview"), TOKEN, Method::GET, None).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["totals"]["requests"], 4, "{v}");
    assert_eq!(v["totals"]["errors"], 1, "{v}");
    assert!(v["totals"]["p50_us"].as_u64().unwrap() > 0);
    assert!(v["totals"]["completion_tokens"].as_u64().unwrap() > 0);
    let series = v["series"].as_array().unwrap();
    assert!(series.len() <= 100 && !series.is_empty());
    let summed: u64 = series.iter().map(|b| b["requests"].as_u64().unwrap()).sum();
    assert_eq!(summed, 4);

    let (status, v) = admin_call(
        gw.url("/api/overview?since=10&until=5"),
        TOKEN,
        Method::GET,
        None,
    )
    .await;
    assert_eq!(status, 400, "{v}");

    let (status, v) = admin_call(
        gw.url(&format!("/api/teams/{team_id}/budgets")),
        TOKEN,
        Method::GET,
        None,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let b = &v["data"][0];
    assert_eq!(b["scope"], format!("team:{team_id}"));
    assert!(b["window_end_ms"].as_u64().unwrap() > b["window_start_ms"].as_u64().unwrap());
    assert!(b["limit_usd"].as_str().unwrap().starts_with('5'), "{b}");
    assert!(b["spent_usd"].is_string(), "{b}");
    let (status, _) = admin_call(
        gw.url("/api/teams/team_nope/budgets"),
        TOKEN,
        Method::GET,
        None,
    )
    .await;
    assert_eq!(status, 404);
}
