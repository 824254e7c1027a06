//! The response cache across real `tollgate` processes: an answer stored
//! through one node is a hit through the other, within its owner's
//! partition only, and a clear through one node clears every node.
//!
//! How long an answer took to reach the other node is printed (run with
//! `--nocapture`), never asserted.

use std::time::Duration;

use cluster_tests::{Mock, Node, eventually, joined_pair};
use serde_json::json;

const SECRET: &str = "cluster-secret-for-tests-0123456789";
const LIMIT: Duration = Duration::from_secs(30);

/// `(status, x-tollgate-cache, body)` of a chat completion through `node`.
async fn ask(node: &Node, secret: &str, question: &str) -> (u16, String, String) {
    let r = reqwest::Client::new()
        .post(node.url("/v1/chat/completions"))
        .bearer_auth(secret)
        .json(&json!({"model": "mock/mock-1", "messages": [{"role": "user", "content": question}]}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let cache = r
        .headers()
        .get("x-tollgate-cache")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, cache, r.text().await.unwrap())
}

async fn imported(node: &Node) -> u64 {
    let (_, v) = node.admin_get("/api/cache").await;
    v["replication"]["imported"].as_u64().unwrap_or(0)
}

async fn key_secret(node: &Node, name: &str) -> (String, String) {
    let (status, k) = node.admin_post("/api/keys", json!({"name": name})).await;
    assert_eq!(status, 201, "{k}");
    (
        k["id"].as_str().unwrap().to_string(),
        k["secret"].as_str().unwrap().to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_cached_through_one_node_is_a_hit_through_another() {
    let mock = Mock::start().await;
    let mut env = mock.provider_env();
    env.push(("TOLLGATE_CACHE__ENABLED", "true".into()));
    env.push(("TOLLGATE_CLIENT__ENFORCE_AUTH", "true".into()));
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let (n1, n2) = joined_pair(SECRET, &dirs, &env).await;
    let (owner_id, owner) = key_secret(&n1, "owner").await;
    let (_, stranger) = key_secret(&n1, "stranger").await;
    for secret in [&owner, &stranger] {
        eventually(LIMIT, "the keys reach node 2", || async {
            let (status, _, _) = ask(&n2, secret, "warm-up").await;
            (status == 200).then_some(())
        })
        .await;
    }
    let before = mock.requests().await;

    let (status, cache, first) = ask(&n1, &owner, "what is a gateway?").await;
    assert_eq!((status, cache.as_str()), (200, "miss"), "{first}");
    let (_, took) = eventually(LIMIT, "node 2 imports the answer", || async {
        (imported(&n2).await >= 1).then_some(())
    })
    .await;
    println!("an answer stored through node 1 was stored on node 2 {took:?} later");
    let (status, cache, second) = ask(&n2, &owner, "what is a gateway?").await;
    assert_eq!((status, cache.as_str()), (200, "hit"), "{second}");
    let text = |body: &str| {
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        v["choices"][0]["message"]["content"].clone()
    };
    assert_eq!(text(&first), text(&second));
    // Another owner's request is in another partition on every node.
    let (_, cache, _) = ask(&n2, &stranger, "what is a gateway?").await;
    assert_eq!(cache, "miss");
    assert_eq!(mock.requests().await, before + 2);
    // Node 1 holds both warm-ups and the stranger's answer from node 2.
    eventually(LIMIT, "node 1 imports node 2's answers", || async {
        (imported(&n1).await >= 3).then_some(())
    })
    .await;

    // A clear through node 2 clears node 1 too.
    let r = reqwest::Client::new()
        .delete(n2.url(&format!("/api/cache?key={owner_id}")))
        .bearer_auth("admin-token-for-tests")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["nodes"].as_object().unwrap().len(), 2, "{v}");
    assert_eq!(
        v["removed"], 4,
        "owner's warm-up and question, on each node: {v}"
    );
    assert_eq!(v["missing_nodes"], json!([]), "{v}");
    let (_, cache, _) = ask(&n1, &owner, "what is a gateway?").await;
    assert_eq!(cache, "miss");
    // The stranger's answers were left alone.
    let (_, cache, _) = ask(&n1, &stranger, "what is a gateway?").await;
    assert_eq!(cache, "hit");
}
