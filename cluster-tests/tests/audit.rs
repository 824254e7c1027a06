//! The audit log across three real nodes: writes accepted by each node are
//! chained on that node and copied to the others, until every node holds
//! the same entries.

use std::time::Duration;

use cluster_tests::{Node, eventually};
use serde_json::{Value, json};

const SECRET: &str = "cluster-secret-for-tests-0123456789";

async fn hashes(node: &Node) -> Vec<String> {
    let (_, v) = node.admin_get("/api/audit?limit=1000").await;
    let mut h: Vec<String> = v["data"]
        .as_array()
        .map(|d| {
            d.iter()
                .map(|e| e["hash"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default();
    h.sort();
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_holds_every_chain() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let n1 = Node::start(SECRET, &[], dirs[0].path()).await;
    let n2 = Node::start(SECRET, &[n1.quic], dirs[1].path()).await;
    let n3 = Node::start(SECRET, &[n1.quic], dirs[2].path()).await;
    let nodes = [&n1, &n2, &n3];
    for n in nodes {
        eventually(Duration::from_secs(30), "three alive", || async {
            (n.alive_peers().await == 2).then_some(())
        })
        .await;
    }
    for (i, n) in nodes.iter().enumerate() {
        for j in 0..3 {
            let (status, v) = n
                .admin_post("/api/teams", json!({"name": format!("team {i}.{j}")}))
                .await;
            assert_eq!(status, 201, "{v}");
        }
    }
    let (_, took) = eventually(
        Duration::from_secs(60),
        "every node holds all nine entries",
        || async {
            let all = [hashes(&n1).await, hashes(&n2).await, hashes(&n3).await];
            (all[0].len() == 9 && all.iter().all(|h| *h == all[0])).then_some(())
        },
    )
    .await;
    println!("every node held every chain {took:?} after the last write");
    // Three chains of three, each intact on every node.
    for n in nodes {
        let (_, v): (u16, Value) = n.admin_get("/api/audit/verify").await;
        assert_eq!(v["ok"], true, "{v}");
        let chains = v["chains"].as_array().unwrap();
        assert_eq!(chains.len(), 3, "{v}");
        assert!(chains.iter().all(|c| c["entries"] == 3), "{v}");
    }
}
