//! Spend in `/metrics` through the real binary: by provider and model, by
//! team and customer, per key when `[metrics] per_key` is on (capped at
//! `max_series` distinct keys, the rest as `other`), and each budget's
//! utilisation of its window.

mod common;

use common::*;
use serde_json::json;

const TOKEN: &str = "metrics-admin-token-0123456789";

/// The value of the series `name{labels}` in a scrape.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.trim().parse().unwrap())
}

#[tokio::test]
async fn spend_is_broken_down_by_model_team_customer_and_key() {
    let mock = start_mock(&[]).await;
    // mock-1 at 1 µ$ per output token and nothing for input.
    let gw = Gateway::start(&format!(
        "[server]\nadmin_token = \"{TOKEN}\"\n[metrics]\nper_key = true\nmax_series = 2\n\
         [pricing.\"mock-1\"]\ninput = 0\noutput = 1000000\n{}",
        mock_provider("mock", &mock, "models = [\"mock-1\"]")
    ))
    .await;
    let post = |path: &'static str, body: serde_json::Value| {
        let url = gw.url(path);
        async move {
            admin_call(url, TOKEN, reqwest::Method::POST, Some(body))
                .await
                .1
        }
    };
    let customer = post("/api/customers", json!({"name": "acme"})).await;
    let team = post(
        "/api/teams",
        json!({"name": "search", "customer_id": customer["id"],
               "budgets": [{"limit_usd": "1", "period": "1d"}]}),
    )
    .await;
    let (team_id, customer_id) = (
        team["id"].as_str().unwrap(),
        customer["id"].as_str().unwrap(),
    );
    let mut secrets = Vec::new();
    for name in ["a", "b", "c"] {
        secrets.push(create_key(&gw, TOKEN, json!({"name": name, "team_id": team_id})).await);
    }
    let mut cost = 0;
    for secret in &secrets {
        let (status, v) = chat_as(&gw, secret, &chat_body("mock/mock-1")).await;
        assert_eq!(status, 200, "{v}");
        cost += v["usage"]["completion_tokens"].as_u64().unwrap();
    }
    assert!(cost > 0);

    let text = metrics_text(&gw).await;
    let spend = |series: &str| value(&text, series).unwrap_or_else(|| panic!("{series} in {text}"));
    assert_eq!(
        spend("tollgate_spend_micros_total{model=\"mock-1\",provider=\"mock\"}") as u64,
        cost
    );
    assert_eq!(
        spend(&format!(
            "tollgate_team_spend_micros_total{{team=\"{team_id}\"}}"
        )) as u64,
        cost
    );
    assert_eq!(
        spend(&format!(
            "tollgate_customer_spend_micros_total{{customer=\"{customer_id}\"}}"
        )) as u64,
        cost
    );
    // Three keys, two series: the third key counts as `other`.
    let keyed: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("tollgate_key_requests_total{"))
        .collect();
    assert_eq!(keyed.len(), 3, "{keyed:?}");
    assert!(
        keyed.iter().any(|l| l.contains("key=\"other\"} 1")),
        "{keyed:?}"
    );
    assert_eq!(
        spend("tollgate_metric_series_capped_total{family=\"key\"}"),
        1.0
    );

    let ratio = spend(&format!(
        "tollgate_budget_utilisation_ratio{{period=\"1d\",scope=\"team:{team_id}\"}}"
    ));
    let expected = cost as f64 / 1_000_000.0;
    assert!((ratio - expected).abs() < 1e-9, "{ratio} vs {expected}");
}

/// Every series the Grafana dashboard (`deploy/grafana/tollgate.json`)
/// queries is one the node registers: its name (without the `tollgate_`
/// prefix and a histogram's `_bucket`) is a metric name in `src/`.
#[test]
fn the_grafana_dashboard_queries_only_metrics_the_node_registers() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dash: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("deploy/grafana/tollgate.json")).unwrap(),
    )
    .expect("the dashboard is JSON");
    let mut sources = String::new();
    let mut dirs = vec![root.join("src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                sources.push_str(&std::fs::read_to_string(path).unwrap());
            }
        }
    }
    let mut names = Vec::new();
    for panel in dash["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap();
            let mut rest = expr;
            while let Some(at) = rest.find("tollgate_") {
                let tail = &rest[at + "tollgate_".len()..];
                let end = tail
                    .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
                    .unwrap_or(tail.len());
                names.push(tail[..end].trim_end_matches("_bucket").to_string());
                rest = &tail[end..];
            }
        }
    }
    assert!(names.len() > 20, "{names:?}");
    for name in names {
        assert!(
            sources.contains(&format!("\"{name}\"")),
            "the dashboard queries tollgate_{name}, which no code registers"
        );
    }
}
