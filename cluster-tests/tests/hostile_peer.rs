//! A peer that holds the cluster secret but lies, against a real node
//! process over real QUIC: about who it is (an id its certificate does not
//! carry), about whose writes it pushes (another node's), and about the time
//! (a write stamped a day ahead, a clock counter at its end). The lies are
//! dropped and counted; the truthful writes land; the node stays up and
//! keeps ordering its own writes.

use std::time::Duration;

use cluster_tests::{Node, eventually};
use serde_json::json;
use tollgate::cluster::proto::{Body, Envelope};
use tollgate::cluster::tls::{SERVER_NAME, node_tls};
use tollgate::cluster::transport::write_frame;
use tollgate::governance::objects::{Object, Team, to_delta};
use tollgate::state::Change;
use tollgate::state::hlc::Timestamp;

const SECRET: &str = "hostile-peer-test-secret-of-enough-length";
const LIMIT: Duration = Duration::from_secs(20);
const ROGUE: u64 = 0x0bad_0bad_0bad_0bad;
const VICTIM: u64 = 0x1111_2222_3333_4444;

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A team row as its writer `node` would push it, stamped `wall_ms`/`counter`.
fn team(name: &str, node: u64, wall_ms: u64, counter: u32) -> Change {
    let t: Team = serde_json::from_value(json!({
        "id": format!("team_{name}"), "name": name, "created_at": wall_ms
    }))
    .unwrap();
    let ts = Timestamp {
        wall_ms,
        counter,
        node,
    };
    Change::Row {
        table: Team::KIND.into(),
        id: t.id.clone(),
        row: to_delta(&t, ts, None),
    }
}

async fn team_names(node: &Node) -> Vec<String> {
    let (_, v) = node.admin_get("/api/teams?limit=100").await;
    v["data"]
        .as_array()
        .or(v.as_array())
        .into_iter()
        .flatten()
        .filter_map(|t| t["name"].as_str().map(str::to_string))
        .collect()
}

async fn identity_errors(node: &Node) -> u64 {
    node.counter("tollgate_cluster_errors_total{cause=\"identity\"}")
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lying_peer_is_dropped_and_counted_and_the_truth_lands() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(SECRET, &[], dir.path()).await;

    let tls = node_tls(SECRET, Duration::from_secs(10), ROGUE).unwrap();
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    endpoint.set_default_client_config(tls.client);
    let conn = endpoint
        .connect(node.quic, SERVER_NAME)
        .unwrap()
        .await
        .unwrap();
    let push = |from: u64, changes: Vec<Change>| {
        let conn = conn.clone();
        async move {
            let mut s = conn.open_uni().await.unwrap();
            write_frame(&mut s, &Envelope::new(from, Body::Changes(changes)))
                .await
                .unwrap();
            s.finish().unwrap();
            let _ = s.stopped().await;
        }
    };

    let now = now_ms();
    // Claims to be another node: its certificate names only ROGUE.
    push(VICTIM, vec![team("impostor", VICTIM, now, 0)]).await;
    // Speaks as itself, but pushes a write stamped by another node.
    push(ROGUE, vec![team("forged", VICTIM, now, 0)]).await;
    // A write from a day ahead would order every later write behind it.
    push(ROGUE, vec![team("future", ROGUE, now + 86_400_000, 0)]).await;
    // The clock counter at its end: the node must move past it, not wrap.
    push(
        ROGUE,
        vec![team("last-counter", ROGUE, now + 60_000, u32::MAX)],
    )
    .await;
    push(ROGUE, vec![team("honest", ROGUE, now, 0)]).await;

    eventually(LIMIT, "the truthful writes land", || async {
        let names = team_names(&node).await;
        (names.iter().any(|n| n == "honest") && names.iter().any(|n| n == "last-counter"))
            .then_some(())
    })
    .await;
    eventually(LIMIT, "the lies are counted", || async {
        (identity_errors(&node).await >= 2).then_some(())
    })
    .await;

    // The node's own write after the counter at its end is ordered after it
    // (it wins over the peer's row on the same id), and the node is up.
    let (status, t) = node
        .admin_post("/api/teams", json!({"name": "after"}))
        .await;
    assert_eq!(status, 201, "{t}");
    let r = reqwest::Client::new()
        .patch(node.url("/api/teams/team_last-counter"))
        .bearer_auth("admin-token-for-tests")
        .json(&json!({"name": "renamed-here"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let names = team_names(&node).await;
    println!("teams: {names:?}");
    for absent in ["impostor", "forged", "future", "last-counter"] {
        assert!(!names.iter().any(|n| n == absent), "{absent} in {names:?}");
    }
    for present in ["honest", "after", "renamed-here"] {
        assert!(
            names.iter().any(|n| n == present),
            "{present} not in {names:?}"
        );
    }
    let ready = reqwest::get(node.url("/ready")).await.unwrap();
    assert_eq!(ready.status(), 200);
}
