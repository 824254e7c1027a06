//! The overshoot table: how far past a budget real clusters of real
//! processes (over QUIC) let spend go, scenario by scenario, at 1, 3 and 5
//! nodes. The mock always answers with as many tokens as it is allowed, at
//! 1 µ$ per output token, and clients send no `max_tokens`, so every request
//! the provider serves costs exactly the key's default cap.
//!
//!     cargo bench -p cluster-tests --bench overshoot
//!
//! Prints a Markdown table; `benches/README.md` keeps the last one. Figures
//! are measured, not asserted (the tests assert the bounds).

use std::time::{Duration, Instant};

use cluster_tests::{Mock, Node};
use serde_json::{Value, json};

const SECRET: &str = "cluster-secret-for-the-overshoot-bench";
const ADMIN: &str = "admin-token-for-tests";
/// Output tokens per request, and so µ$ per request.
const CAP: u64 = 10;

struct Row {
    scenario: String,
    nodes: usize,
    limit: u64,
    served: u64,
    charged: u64,
}

async fn cluster(n: usize, mock: &Mock, dirs: &[tempfile::TempDir]) -> Vec<Node> {
    let mut env = mock.provider_env();
    env.retain(|(k, _)| *k != "TOLLGATE_PROVIDERS__MOCK__KEYS");
    env.push((
        "TOLLGATE_PROVIDERS__MOCK__HEADERS",
        r#"{"x-mock-words" = "50000", "x-mock-chunk-delay-ms" = "200"}"#.into(),
    ));
    env.push(("TOLLGATE_PRICING__MOCK-1__INPUT", "0".into()));
    env.push(("TOLLGATE_PRICING__MOCK-1__OUTPUT", "1000000".into()));
    let mut nodes: Vec<Node> = Vec::new();
    for d in dirs.iter().take(n) {
        let seeds: Vec<_> = nodes.iter().map(|n| n.quic).collect();
        nodes.push(Node::start_with(SECRET, &seeds, d.path(), &env).await);
    }
    for node in &nodes {
        wait(|| async { node.alive_peers().await == n - 1 }).await;
    }
    nodes
}

async fn wait<F, Fut>(mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check().await {
        assert!(Instant::now() < deadline, "the cluster did not settle");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn admin(
    client: &reqwest::Client,
    method: reqwest::Method,
    node: &Node,
    path: &str,
    body: Value,
) -> Value {
    let r = client
        .request(method, node.url(path))
        .bearer_auth(ADMIN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.unwrap()
}

/// A team with a budget of `limit` µ$ made on node 1, and a key in it; once
/// every node knows the key.
async fn budgeted_key(client: &reqwest::Client, nodes: &[Node], limit: u64) -> (String, String) {
    let usd = format!("0.{limit:06}");
    let team = admin(
        client,
        reqwest::Method::POST,
        &nodes[0],
        "/api/teams",
        json!({"name": "t", "budgets": [{"limit_usd": usd, "period": "1d"}]}),
    )
    .await;
    let team_id = team["id"].as_str().unwrap().to_string();
    let key = admin(
        client,
        reqwest::Method::POST,
        &nodes[0],
        "/api/keys",
        json!({"name": "k", "team_id": team_id, "default_max_tokens": CAP}),
    )
    .await;
    let secret = key["secret"].as_str().unwrap().to_string();
    for n in nodes {
        wait(|| async { self_view(client, n, &secret).await.is_some() }).await;
    }
    (team_id, secret)
}

/// The team budget's spend as node `n` knows it, in µ$.
async fn self_view(client: &reqwest::Client, n: &Node, secret: &str) -> Option<u64> {
    let r = client
        .get(n.url("/api/self"))
        .bearer_auth(secret)
        .send()
        .await
        .ok()?;
    if !r.status().is_success() {
        return None;
    }
    let v: Value = r.json().await.ok()?;
    let spent = v["budgets"].as_array()?.first()?["spent_usd"].as_str()?;
    tollgate::governance::budgets::Usd::parse(spent)
        .ok()
        .map(|u| u.0)
}

/// What the cluster charged, once every node agrees.
async fn charged(client: &reqwest::Client, nodes: &[Node], secret: &str) -> u64 {
    let mut last = None;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut views = Vec::new();
        for n in nodes {
            views.push(self_view(client, n, secret).await);
        }
        let agreed = views.windows(2).all(|w| w[0] == w[1]);
        if agreed && views[0].is_some() && last == views[0] {
            return views[0].unwrap();
        }
        last = if agreed { views[0] } else { None };
        assert!(Instant::now() < deadline, "nodes never agreed: {views:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// `count` requests at once, spread over `nodes`; how many were served.
async fn burst(client: &reqwest::Client, nodes: &[&Node], secret: &str, count: usize) -> u64 {
    let tasks: Vec<_> = (0..count)
        .map(|i| {
            let req = client
                .post(nodes[i % nodes.len()].url("/v1/chat/completions"))
                .bearer_auth(secret)
                .json(&json!({"model": "mock/mock-1", "messages": [{"role": "user", "content": "all of it"}]}));
            tokio::spawn(async move { req.send().await.map(|r| r.status().as_u16()).unwrap_or(0) })
        })
        .collect();
    let mut served = 0;
    for t in tasks {
        if t.await.unwrap() == 200 {
            served += 1;
        }
    }
    served
}

/// Concurrent requests on every node against one budget.
async fn concurrency(n: usize, mock: &Mock) -> Row {
    let dirs: Vec<_> = (0..n).map(|_| tempfile::tempdir().unwrap()).collect();
    let nodes = cluster(n, mock, &dirs).await;
    let client = reqwest::Client::new();
    let limit = 1_000;
    let (_, secret) = budgeted_key(&client, &nodes, limit).await;
    let all: Vec<&Node> = nodes.iter().collect();
    let mut served = 0;
    for _ in 0..3 {
        served += burst(&client, &all, &secret, 100).await;
    }
    Row {
        scenario: "concurrency (3 × 100 at once)".into(),
        nodes: n,
        limit,
        served: served * CAP,
        charged: charged(&client, &nodes, &secret).await,
    }
}

/// 80% spent through node 1, the budget raised by 1% through the last node,
/// then bursts everywhere.
async fn home_move(n: usize, mock: &Mock) -> Row {
    let dirs: Vec<_> = (0..n).map(|_| tempfile::tempdir().unwrap()).collect();
    let nodes = cluster(n, mock, &dirs).await;
    let client = reqwest::Client::new();
    let limit = 1_000;
    let (team, secret) = budgeted_key(&client, &nodes, limit).await;
    let mut served = burst(&client, &[&nodes[0]], &secret, 80).await;
    let raised = 1_010;
    admin(
        &client,
        reqwest::Method::PATCH,
        nodes.last().unwrap(),
        &format!("/api/teams/{team}"),
        json!({"budgets": [{"limit_usd": format!("0.{raised:06}"), "period": "1d"}]}),
    )
    .await;
    let all: Vec<&Node> = nodes.iter().collect();
    for _ in 0..3 {
        served += burst(&client, &all, &secret, 100).await;
    }
    Row {
        scenario: "budget edited on another node (80% spent, +1%)".into(),
        nodes: n,
        limit: raised,
        served: served * CAP,
        charged: charged(&client, &nodes, &secret).await,
    }
}

/// 20 streams in flight on node 1, then `kill -9` and a restart.
async fn crash(n: usize, mock: &Mock) -> Row {
    let dirs: Vec<_> = (0..n).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut nodes = cluster(n, mock, &dirs).await;
    let client = reqwest::Client::new();
    let limit = 1_000;
    let (_, secret) = budgeted_key(&client, &nodes, limit).await;
    let mut streams = Vec::new();
    for _ in 0..20 {
        let mut r = client
            .post(nodes[0].url("/v1/chat/completions"))
            .bearer_auth(&secret)
            .json(&json!({"model": "mock/mock-1", "stream": true,
                          "messages": [{"role": "user", "content": "all of it"}]}))
            .send()
            .await
            .unwrap();
        if r.status() == 200 && r.chunk().await.ok().flatten().is_some() {
            streams.push(r);
        }
    }
    let served = streams.len() as u64;
    let first = nodes.remove(0);
    let restarted = first.restart().await;
    drop(streams);
    nodes.insert(0, restarted);
    Row {
        scenario: "kill -9 with 20 streams in flight".into(),
        nodes: n,
        limit,
        served: served * CAP,
        charged: charged(&client, &nodes, &secret).await,
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mock = Mock::start().await;
    let mut rows = Vec::new();
    for n in [1, 3, 5] {
        rows.push(concurrency(n, &mock).await);
        if n > 1 {
            rows.push(home_move(n, &mock).await);
        }
        rows.push(crash(n, &mock).await);
    }
    println!(
        "| scenario | nodes | limit µ$ | served µ$ (provider's bill) | charged µ$ | overshoot µ$ | uncharged µ$ |"
    );
    println!("|---|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            r.scenario,
            r.nodes,
            r.limit,
            r.served,
            r.charged,
            r.served.saturating_sub(r.limit),
            r.served.saturating_sub(r.charged),
        );
    }
}
