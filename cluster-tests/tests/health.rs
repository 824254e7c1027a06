//! Health-adaptive routing over real processes: a provider with two keys
//! (two routes) at the mock, one of which starts failing. Figures are
//! printed (`--nocapture`), never asserted as times; waits are bounded only
//! so a broken build fails instead of hanging.

use std::time::{Duration, Instant};

use cluster_tests::{Mock, Node, chat, eventually, route_state};

const SECRET: &str = "cluster-secret-for-health-tests-01";
const LIMIT: Duration = Duration::from_secs(60);

async fn mock_requests(mock: &Mock, key: &str) -> u64 {
    let v: serde_json::Value = reqwest::get(format!("http://{}/mock/stats", mock.addr))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["by_key"][key].as_u64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_route_loses_its_traffic_and_wins_it_back_when_healed() {
    let mock = Mock::start().await;
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start_with(SECRET, &[], dir.path(), &mock.provider_env()).await;
    let client = reqwest::Client::new();
    for _ in 0..60 {
        assert_eq!(chat(&client, &node).await, 200);
    }
    let (a0, b0) = (
        mock_requests(&mock, "key-a").await,
        mock_requests(&mock, "key-b").await,
    );
    assert!(
        a0 > 10 && b0 > 10,
        "both routes serve while healthy: {a0} / {b0}"
    );

    // Route a starts failing half of its requests.
    mock.fault("key-a", Some(0.5)).await;
    let (mut sent, mut failed) = (0, 0);
    while route_state(&node, "a").await.as_deref() == Some("healthy") {
        sent += 1;
        if chat(&client, &node).await != 200 {
            failed += 1;
        }
        assert!(sent < 1000, "the route never left healthy");
    }
    let state = route_state(&node, "a").await.unwrap();
    println!("route a went {state} after {sent} requests, {failed} of which failed");
    let metrics = reqwest::get(node.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = metrics
        .lines()
        .find(|l| {
            l.starts_with("tollgate_route_state{key=\"a\",model=\"mock-1\",provider=\"mock\"}")
        })
        .expect("route a is exported");
    assert!(
        !line.ends_with(" 0"),
        "not healthy in the metrics either: {line}"
    );
    let a1 = mock_requests(&mock, "key-a").await;
    let mut later_failed = 0;
    for _ in 0..100 {
        if chat(&client, &node).await != 200 {
            later_failed += 1;
        }
    }
    let to_a = mock_requests(&mock, "key-a").await - a1;
    println!("next 100 requests: {to_a} went to route a, {later_failed} failed");
    assert!(
        to_a < 30,
        "traffic shifted away from the failing route: {to_a} of 100"
    );

    // Healed: probes and traffic bring it back.
    mock.fault("key-a", None).await;
    let healed = Instant::now();
    let (_, took) = eventually(LIMIT, "route a is healthy again", || async {
        chat(&client, &node).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        (route_state(&node, "a").await.as_deref() == Some("healthy")).then_some(())
    })
    .await;
    println!(
        "route a healthy again {:?} after healing ({took:?} polling)",
        healed.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_health_spares_the_nodes_that_did_not_see_the_failures() {
    let mock = Mock::start().await;
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let env = mock.provider_env();
    let mut quiet = env.clone();
    quiet.push(("TOLLGATE_CLUSTER__SHARE_HEALTH", "false".into()));
    let n1 = Node::start_with(SECRET, &[], dirs[0].path(), &env).await;
    let n2 = Node::start_with(SECRET, &[n1.quic], dirs[1].path(), &env).await;
    let n3 = Node::start_with(SECRET, &[n1.quic], dirs[2].path(), &quiet).await;
    for n in [&n1, &n2, &n3] {
        eventually(LIMIT, "cluster formed", || async {
            (n.alive_peers().await == 2).then_some(())
        })
        .await;
    }
    let client = reqwest::Client::new();
    mock.fault("key-a", Some(1.0)).await;
    // Node 1 meets the failures first.
    let mut first = 0;
    while route_state(&n1, "a").await.as_deref() != Some("failed") {
        if chat(&client, &n1).await != 200 {
            first += 1;
        }
        assert!(first < 500, "node 1 never failed the route");
    }
    // Node 2 hears of it through the cluster; node 3 does not listen.
    let (_, heard) = eventually(LIMIT, "node 2 hears route a failed", || async {
        (route_state(&n2, "a").await.as_deref() == Some("failed")).then_some(())
    })
    .await;
    let mut failures = [0u32; 2];
    for (i, n) in [&n2, &n3].into_iter().enumerate() {
        for _ in 0..40 {
            if chat(&client, n).await != 200 {
                failures[i] += 1;
            }
        }
    }
    println!(
        "node 1 saw {first} failures before failing the route; node 2 heard within {heard:?}; \
         of 40 requests each, node 2 (sharing) failed {}, node 3 (not sharing) failed {}",
        failures[0], failures[1]
    );
    assert!(
        failures[0] < failures[1],
        "sharing must spare node 2: {failures:?}"
    );
}
