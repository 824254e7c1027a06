//! Real `tollgate` processes on loopback, over real QUIC with mutual TLS.
//!
//! Timings are printed (run with `--nocapture` to see them) and never
//! asserted: every wait is bounded generously only so a broken cluster fails
//! instead of hanging.

use std::time::Duration;

use cluster_tests::{Node, eventually};
use serde_json::json;

const SECRET: &str = "cluster-secret-for-tests-0123456789";
const LIMIT: Duration = Duration::from_secs(30);

async fn until_peers(node: &Node, n: usize) -> Duration {
    eventually(
        LIMIT,
        &format!("{} sees {n} live peers", node.http),
        || async { (node.alive_peers().await == n).then_some(()) },
    )
    .await
    .1
}

async fn until_visible(
    node: &Node,
    path: &str,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> Duration {
    eventually(LIMIT, &format!("{path} on {}", node.http), || async {
        let (status, v) = node.admin_get(path).await;
        (status == 200 && pred(&v)).then_some(())
    })
    .await
    .1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_replicate_and_a_restarted_node_catches_up() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let n1 = Node::start(SECRET, &[], dirs[0].path()).await;
    let n2 = Node::start(SECRET, &[n1.quic], dirs[1].path()).await;
    let n3 = Node::start(SECRET, &[n1.quic, n2.quic], dirs[2].path()).await;
    for n in [&n1, &n2, &n3] {
        let t = until_peers(n, 2).await;
        println!("{} sees both peers after {t:?}", n.http);
    }

    // A write on node 1 is readable on nodes 2 and 3.
    let (status, customer) = n1
        .admin_post(
            "/api/customers",
            json!({"name": "acme", "budgets": [{"limit_usd": 100, "period": "1M"}]}),
        )
        .await;
    assert_eq!(status, 201, "{customer}");
    let id = customer["id"].as_str().unwrap().to_string();
    for n in [&n2, &n3] {
        let t = until_visible(n, &format!("/api/customers/{id}"), |v| v["name"] == "acme").await;
        println!("customer visible on {} after {t:?}", n.http);
    }

    // A key made on node 2 is visible, then its deactivation too, on node 3.
    let (status, key) = n2
        .admin_post("/api/keys", json!({"name": "ci", "customer_id": id}))
        .await;
    assert_eq!(status, 201, "{key}");
    let key_id = key["id"].as_str().unwrap().to_string();
    until_visible(&n3, &format!("/api/keys/{key_id}"), |v| v["active"] == true).await;
    let r = reqwest::Client::new()
        .patch(n1.url(&format!("/api/keys/{key_id}")))
        .bearer_auth("admin-token-for-tests")
        .json(&json!({"active": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    for n in [&n2, &n3] {
        let t = until_visible(n, &format!("/api/keys/{key_id}"), |v| v["active"] == false).await;
        println!("deactivation visible on {} after {t:?}", n.http);
    }

    // Node 3 goes away without a goodbye; the others mark it down.
    let mut n3 = n3;
    let _ = n3.child.kill();
    let _ = n3.child.wait();
    let killed = std::time::Instant::now();
    eventually(LIMIT, "node 1 marks node 3 down", || async {
        let (_, v) = n1.admin_get("/api/cluster").await;
        let members = v["members"].as_array().cloned().unwrap_or_default();
        members
            .iter()
            .any(|m| m["quic"] == n3.quic.to_string() && m["state"] == "down")
            .then_some(())
    })
    .await;
    println!("node 3 marked down after {:?}", killed.elapsed());

    // Writes while it is down reach it when it comes back from its data.
    let (status, team) = n1
        .admin_post("/api/teams", json!({"name": "platform", "customer_id": id}))
        .await;
    assert_eq!(status, 201, "{team}");
    let team_id = team["id"].as_str().unwrap().to_string();
    let n3 = n3.restart().await;
    let (status, c) = n3.admin_get(&format!("/api/customers/{id}")).await;
    assert_eq!(
        (status, &c["name"]),
        (200, &json!("acme")),
        "persisted before the crash"
    );
    let t = until_visible(&n3, &format!("/api/teams/{team_id}"), |v| {
        v["name"] == "platform"
    })
    .await;
    println!("restarted node 3 caught up after {t:?}");
    until_peers(&n3, 2).await;
    let (_, k) = n3.admin_get(&format!("/api/keys/{key_id}")).await;
    assert_eq!(k["active"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_the_secret_is_rejected() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let n1 = Node::start(SECRET, &[], dirs[0].path()).await;
    let outsider = Node::start(
        "some-other-cluster-secret-0123456789",
        &[n1.quic],
        dirs[1].path(),
    )
    .await;
    let n2 = Node::start(SECRET, &[n1.quic], dirs[2].path()).await;
    until_peers(&n1, 1).await;
    until_peers(&n2, 1).await;

    // The outsider has been knocking all along: its handshakes fail.
    eventually(LIMIT, "the outsider's handshakes are refused", || async {
        let body = reqwest::get(outsider.url("/metrics"))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        body.lines()
            .any(|l| {
                l.starts_with("tollgate_cluster_errors_total{cause=\"handshake\"}")
                    && !l.ends_with(" 0")
            })
            .then_some(())
    })
    .await;
    let (_, view) = n1.admin_get("/api/cluster").await;
    let members = view["members"].as_array().unwrap();
    assert_eq!(members.len(), 1, "only the node with the secret: {view}");
    assert_eq!(members[0]["quic"], n2.quic.to_string());
    assert_eq!(outsider.alive_peers().await, 0);

    // And nothing it writes reaches the cluster.
    let (status, c) = outsider
        .admin_post("/api/customers", json!({"name": "intruder"}))
        .await;
    assert_eq!(status, 201);
    let id = c["id"].as_str().unwrap().to_string();
    // Give a push every chance to happen, then check it did not.
    let (status, c) = n2
        .admin_post("/api/customers", json!({"name": "insider"}))
        .await;
    assert_eq!(status, 201);
    let insider = c["id"].as_str().unwrap().to_string();
    until_visible(&n1, &format!("/api/customers/{insider}"), |_| true).await;
    let (status, _) = n1.admin_get(&format!("/api/customers/{id}")).await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_log_queries_fan_out_to_every_node() {
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let n1 = Node::start(SECRET, &[], dirs[0].path()).await;
    let n2 = Node::start(SECRET, &[n1.quic], dirs[1].path()).await;
    until_peers(&n1, 1).await;
    until_peers(&n2, 1).await;
    // Requests that fail (no such provider) are logged like any other.
    let client = reqwest::Client::new();
    for (node, n) in [(&n1, 3), (&n2, 2)] {
        for _ in 0..n {
            let r = client
                .post(node.url("/v1/chat/completions"))
                .json(
                    &json!({"model": "nowhere/m", "messages": [{"role": "user", "content": "hi"}]}),
                )
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 404);
        }
    }
    let (page, _) = eventually(LIMIT, "node 1 lists both nodes' requests", || async {
        let (_, v) = n1.admin_get("/api/logs").await;
        (v["data"].as_array()?.len() == 5).then_some(v)
    })
    .await;
    let from = |v: &serde_json::Value, node: &serde_json::Value| {
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["node"] == *node)
            .count()
    };
    let (_, c1) = n1.admin_get("/api/cluster").await;
    let (_, c2) = n2.admin_get("/api/cluster").await;
    assert_eq!(from(&page, &c1["node"]), 3);
    assert_eq!(from(&page, &c2["node"]), 2);
    assert!(page["missing_nodes"].as_array().unwrap().is_empty());

    // Paged two at a time from node 2: every record once, newest first.
    let mut ids = Vec::new();
    let mut path = "/api/logs?limit=2".to_string();
    loop {
        let (status, v) = n2.admin_get(&path).await;
        assert_eq!(status, 200, "{v}");
        let data = v["data"].as_array().unwrap();
        assert!(data.len() <= 2);
        ids.extend(
            data.iter()
                .map(|r| (r["ts_ms"].as_u64().unwrap(), r["id"].to_string())),
        );
        match v["next_cursor"].as_str() {
            Some(c) => path = format!("/api/logs?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(ids.len(), 5, "{ids:?}");
    assert!(
        ids.windows(2).all(|w| w[0].0 >= w[1].0),
        "newest first: {ids:?}"
    );
    let unique: std::collections::HashSet<_> = ids.iter().map(|(_, id)| id).collect();
    assert_eq!(unique.len(), 5);

    let (_, local) = n2.admin_get("/api/logs?node=local").await;
    assert_eq!(local["data"].as_array().unwrap().len(), 2);

    // Spend reports sum every node's requests.
    let requests = |v: &serde_json::Value| -> u64 {
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["requests"].as_u64().unwrap())
            .sum()
    };
    let (status, all) = n2.admin_get("/api/spend?group_by=key").await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(requests(&all), 5, "{all}");
    let (_, local) = n1.admin_get("/api/spend?group_by=key&node=local").await;
    assert_eq!(requests(&local), 3, "{local}");
}

/// Reported on three processes: $0.80 spent through node 1, the team's $1
/// budget raised to $1.01 through node 2, and the team ended at $1.80 — the
/// edit moved the budget's home to node 2, which then held the whole new
/// limit. An edit now never moves a home: what is left is what was left.
/// (Scaled down: 10 µ$ a request, a 100 µ$ budget raised to 101 µ$.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_a_budget_on_another_node_grants_only_what_is_left() {
    let mock = cluster_tests::Mock::start().await;
    let env = mock.provider_env();
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let [n1, n2, n3] = three_nodes(&dirs, &env).await;
    let client = reqwest::Client::new();
    let admin = |method: reqwest::Method, node: &Node, path: &str, body: serde_json::Value| {
        client
            .request(method, node.url(path))
            .bearer_auth("admin-token-for-tests")
            .json(&body)
            .send()
    };
    let (team_id, secret) = budgeted_key(&n1, &[&n2, &n3], "0.000100").await;
    // 10 output tokens at 1 µ$ each: exactly 10 µ$ a request.
    let chat = |node: &Node| ten_token_chat(&client, node, &secret);
    for _ in 0..8 {
        assert_eq!(chat(&n1).await.unwrap().status(), 200);
    }
    let r = admin(
        reqwest::Method::PATCH,
        &n2,
        &format!("/api/teams/{team_id}"),
        json!({"budgets": [{"limit_usd": "0.000101", "period": "1d"}]}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    for n in [&n1, &n3] {
        until_visible(n, &format!("/api/teams/{team_id}"), |v| {
            v["budgets"][0]["limit_usd"] == "0.000101"
        })
        .await;
    }
    let mut served = 0;
    for i in 0..30 {
        let node = [&n1, &n2, &n3][i % 3];
        match chat(node).await.unwrap().status().as_u16() {
            200 => served += 1,
            402 => {}
            other => panic!("unexpected {other}"),
        }
    }
    let total = 80 + served * 10;
    println!("after the edit: {served} more served, {total} µ$ of 101 µ$");
    assert!(total <= 101, "spent {total} µ$ of a 101 µ$ budget");
    assert!(served >= 1, "the 21 µ$ left are spendable");
}

/// Three nodes with data in `dirs` and extra environment `env`, joined
/// through the first, once each sees the other two.
async fn three_nodes(dirs: &[tempfile::TempDir], env: &[(&str, String)]) -> [Node; 3] {
    let n1 = Node::start_with(SECRET, &[], dirs[0].path(), env).await;
    let n2 = Node::start_with(SECRET, &[n1.quic], dirs[1].path(), env).await;
    let n3 = Node::start_with(SECRET, &[n1.quic, n2.quic], dirs[2].path(), env).await;
    for n in [&n1, &n2, &n3] {
        until_peers(n, 2).await;
    }
    [n1, n2, n3]
}

/// A chat completion through `node` capped at 10 output tokens (10 µ$ at
/// the price `budgeted_key` sets), as the key `secret`.
fn ten_token_chat(
    client: &reqwest::Client,
    node: &Node,
    secret: &str,
) -> impl std::future::Future<Output = reqwest::Result<reqwest::Response>> + use<> {
    client
        .post(node.url("/v1/chat/completions"))
        .bearer_auth(secret)
        .json(&json!({"model": "mock/mock-1", "max_tokens": 10,
                      "messages": [{"role": "user", "content": "hi"}]}))
        .send()
}

/// A team with one budget of `limit_usd` a day and a key in it, created on
/// `home`, with mock-1 priced at 1 µ$ per output token, once `others` see
/// them all; returns the team's id and the key's secret.
async fn budgeted_key(home: &Node, others: &[&Node], limit_usd: &str) -> (String, String) {
    let r = reqwest::Client::new()
        .put(home.url("/api/pricing/mock-1"))
        .bearer_auth("admin-token-for-tests")
        .json(&json!({"input": 0, "output": 1_000_000}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let (status, team) = home
        .admin_post(
            "/api/teams",
            json!({"name": "t", "budgets": [{"limit_usd": limit_usd, "period": "1d"}]}),
        )
        .await;
    assert_eq!(status, 201, "{team}");
    let team_id = team["id"].as_str().unwrap().to_string();
    let (status, key) = home
        .admin_post("/api/keys", json!({"name": "k", "team_id": team_id}))
        .await;
    assert_eq!(status, 201, "{key}");
    let secret = key["secret"].as_str().unwrap().to_string();
    let key_id = key["id"].as_str().unwrap().to_string();
    for n in others {
        until_visible(n, &format!("/api/keys/{key_id}"), |v| v["name"] == "k").await;
        until_visible(n, "/api/pricing/mock-1", |v| {
            v["price"]["output"] == 1_000_000
        })
        .await;
    }
    (team_id, secret)
}

/// How many allowance `event`s `node` counted.
async fn allowance_events(node: &Node, event: &str) -> u64 {
    node.counter(&format!(
        "tollgate_cluster_allowance_total{{event=\"{event}\"}}"
    ))
    .await
}

/// A budget's home is killed (`kill -9`) holding the whole limit: after the
/// takeover delay its deputy takes over what it held beyond its lease's
/// ceiling, the others spend it, and the home, back, spends only what its
/// ceiling left. Total spend never passes the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_homes_allowance_returns_to_the_cluster() {
    let mock = cluster_tests::Mock::start().await;
    let mut env = mock.provider_env();
    env.push(("TOLLGATE_CLUSTER__LEASE_TAKEOVER", "\"2s\"".into()));
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let [n1, n2, n3] = three_nodes(&dirs, &env).await;
    let client = reqwest::Client::new();
    // 800 µ$ homed at node 1: it leases 1/8 (100 µ$) above its outflow.
    let (_, secret) = budgeted_key(&n1, &[&n2, &n3], "0.000800").await;
    let chat = |node: &Node| ten_token_chat(&client, node, &secret);
    eventually(LIMIT, "node 1 holds a lease", || async {
        (allowance_events(&n1, "lease_granted").await > 0).then_some(())
    })
    .await;
    let mut served = 0u64;
    for _ in 0..5 {
        assert_eq!(chat(&n1).await.unwrap().status(), 200);
        served += 1;
    }
    // The home dies with 750 µ$ of the limit in its hands.
    let n1 = {
        let mut n1 = n1;
        n1.child.kill().unwrap();
        n1.child.wait().unwrap();
        n1
    };
    let (_, took) = eventually(
        LIMIT,
        "a request through node 2 is served again",
        || async { (chat(&n2).await.unwrap().status() == 200).then_some(()) },
    )
    .await;
    served += 1;
    println!("allowance back in the cluster {took:?} after the kill");
    let mut after_crash = 1;
    for i in 0..100 {
        let node = [&n2, &n3][i % 2];
        match chat(node).await.unwrap().status().as_u16() {
            200 => after_crash += 1,
            402 => {}
            other => panic!("unexpected {other}"),
        }
    }
    served += after_crash - 1;
    let takes = allowance_events(&n2, "took_over").await + allowance_events(&n3, "took_over").await;
    assert!(takes >= 1, "a deputy took over");
    assert!(
        after_crash * 10 >= 600,
        "{after_crash} requests after the crash: what node 1 held beyond its ceiling came back"
    );
    // Node 1 comes back: it may spend only what its ceiling left.
    let n1 = n1.restart().await;
    until_peers(&n1, 2).await;
    for _ in 0..20 {
        match chat(&n1).await.unwrap().status().as_u16() {
            200 => served += 1,
            402 => {}
            other => panic!("unexpected {other}"),
        }
    }
    println!(
        "served {served} requests ({} µ$) of an 800 µ$ budget, {after_crash} of them after the home was killed",
        served * 10
    );
    assert!(served * 10 <= 800, "spent {} µ$ of 800", served * 10);
}

/// A node's count of messages of `kind` it sent (`/metrics`).
async fn sent(node: &Node, kind: &str) -> u64 {
    node.counter(&format!(
        "tollgate_cluster_messages_total{{direction=\"out\",kind=\"{kind}\"}}"
    ))
    .await
}

/// The names of every customer a node serves.
async fn customer_names(node: &Node) -> std::collections::BTreeSet<String> {
    let (_, v) = node.admin_get("/api/customers?limit=1000").await;
    v["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect()
}

/// Two nodes that wrote while apart converge by anti-entropy alone on a
/// state of many pages and many replies: pages of 8 items and replies of
/// 2 KiB here (`cluster.sync_page_items`, `cluster.sync_reply_bytes`),
/// against 60 customers written on each side (each row a few hundred
/// bytes) that no push carried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_larger_than_a_page_and_a_reply_syncs_in_pages() {
    let caps = [
        ("TOLLGATE_CLUSTER__SYNC_PAGE_ITEMS", "8".to_string()),
        ("TOLLGATE_CLUSTER__SYNC_REPLY_BYTES", "2048".to_string()),
    ];
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let n1 = Node::start_with(SECRET, &[], dirs[0].path(), &caps).await;
    // Node 2 first runs alone (its only seed answers nothing).
    let nowhere: std::net::SocketAddr = format!("127.0.0.1:{}", cluster_tests::free_udp_port())
        .parse()
        .unwrap();
    let n2 = Node::start_with(SECRET, &[nowhere], dirs[1].path(), &caps).await;
    let mut expected = std::collections::BTreeSet::new();
    for i in 0..60 {
        for (n, side) in [(&n1, "one"), (&n2, "two")] {
            let name = format!("{side}-{i:03}-{}", "x".repeat(100));
            let (status, c) = n.admin_post("/api/customers", json!({"name": name})).await;
            assert_eq!(status, 201, "{c}");
            expected.insert(name);
        }
    }
    assert_eq!(customer_names(&n1).await.len(), 60);
    // Then it restarts from its data and joins node 1.
    let n2 = {
        let mut n2 = n2;
        let _ = n2.child.kill();
        let _ = n2.child.wait();
        Node::start_with(SECRET, &[n1.quic], dirs[1].path(), &caps).await
    };
    until_peers(&n2, 1).await;
    for n in [&n1, &n2] {
        let t = eventually(
            LIMIT,
            &format!("all 120 customers on {}", n.http),
            || async { (customer_names(n).await == expected).then_some(()) },
        )
        .await
        .1;
        println!("{} holds both sides' customers after {t:?}", n.http);
    }
    let (mut pages, mut replies, mut gives, mut whole) = (0, 0, 0, 0);
    for n in [&n1, &n2] {
        pages += sent(n, "sync_page").await;
        replies += sent(n, "sync_page_reply").await;
        gives += sent(n, "sync_give").await;
        whole += sent(n, "sync_digest").await;
    }
    println!("pages {pages}, replies {replies}, gives {gives}, whole-state digests {whole}");
    assert!(pages >= 120 / 8, "one round is many pages: {pages}");
    assert!(replies >= 60 * 100 / 2048, "replies capped: {replies}");
    assert!(gives >= 60 * 100 / 2048, "gives capped in frames: {gives}");
    assert_eq!(whole, 0, "no whole-state round between nodes that page");
}

/// Rate-limit counts over real QUIC: node 1's admissions reach node 2 on a
/// stream node 2's QUIC stack acknowledges, after which node 1 records them
/// as held there and sends nothing more while nothing changes (before, every
/// tick would resend them until acknowledged).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_counts_are_acknowledged_and_then_not_sent_again() {
    let mock = cluster_tests::Mock::start().await;
    let env = mock.provider_env();
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let n1 = Node::start_with(SECRET, &[], dirs[0].path(), &env).await;
    let n2 = Node::start_with(SECRET, &[n1.quic], dirs[1].path(), &env).await;
    until_peers(&n1, 1).await;
    until_peers(&n2, 1).await;
    let (status, key) = n1
        .admin_post(
            "/api/keys",
            json!({"name": "limited", "rate_limits": [{"requests": 3, "window": "1h"}]}),
        )
        .await;
    assert_eq!(status, 201, "{key}");
    let (id, secret) = (key["id"].as_str().unwrap(), key["secret"].as_str().unwrap());
    until_visible(&n2, &format!("/api/keys/{id}"), |_| true).await;
    let client = reqwest::Client::new();
    let chat = |node: &Node| {
        client
            .post(node.url("/v1/chat/completions"))
            .bearer_auth(secret)
            .json(&json!({"model": "mock/mock-1", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}))
            .send()
    };
    for _ in 0..3 {
        assert_eq!(chat(&n1).await.unwrap().status(), 200);
    }
    let t = eventually(
        LIMIT,
        "node 2 refuses at the cluster-wide limit",
        || async { (chat(&n2).await.unwrap().status() == 429).then_some(()) },
    )
    .await
    .1;
    println!("node 1's counts refused the key on node 2 after {t:?}");
    // Settled: node 2 acknowledged the counts, so ticks find nothing to send.
    let (_, settled) = eventually(LIMIT, "node 1's pushes settle", || async {
        let before = sent(&n1, "changes").await;
        tokio::time::sleep(cluster_base_tick() * 5).await;
        (sent(&n1, "changes").await == before).then_some(())
    })
    .await;
    let quiet = sent(&n1, "changes").await;
    tokio::time::sleep(cluster_base_tick() * 20).await;
    assert_eq!(
        sent(&n1, "changes").await,
        quiet,
        "20 ticks with nothing new sent nothing"
    );
    println!("node 1's pushes settled after {settled:?}");
}

/// `cluster::RATE_SYNC`, the period of rate-count pushes.
fn cluster_base_tick() -> Duration {
    tollgate::cluster::RATE_SYNC
}
