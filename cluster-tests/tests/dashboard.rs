//! The dashboard's session and overview across real `tollgate` processes:
//! a login on one node is a session on the other, a logout on one ends it
//! on both, the overview counts the requests of every node, and a named
//! admin token made on one node is accepted, with its role, on the other.

use std::time::Duration;

use cluster_tests::{Mock, Node, eventually, joined_pair};
use serde_json::{Value, json};

const SECRET: &str = "cluster-secret-for-tests-0123456789";
const LIMIT: Duration = Duration::from_secs(30);

async fn get_with_cookie(node: &Node, path: &str, cookie: &str) -> u16 {
    reqwest::Client::new()
        .get(node.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_from_one_node_is_valid_on_another_until_logout() {
    let mock = Mock::start().await;
    let env = mock.provider_env();
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let (n1, n2) = joined_pair(SECRET, &dirs, &env).await;
    let r = reqwest::Client::new()
        .post(n1.url("/api/session"))
        .json(&json!({"token": "admin-token-for-tests"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let csrf = r.json::<Value>().await.unwrap()["csrf"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(get_with_cookie(&n2, "/api/keys", &cookie).await, 200);

    // Requests through both nodes, counted by either node's overview.
    for n in [&n1, &n2] {
        for _ in 0..2 {
            let status = cluster_tests::chat(&reqwest::Client::new(), n).await;
            assert_eq!(status, 200);
        }
    }
    eventually(LIMIT, "the overview of node 2 counts all four", || async {
        let (_, v) = n2.admin_get("/api/overview").await;
        (v["totals"]["requests"] == 4 && v["missing_nodes"] == json!([])).then_some(())
    })
    .await;

    // A named token made through node 1 works on node 2, with its role.
    let (status, t) = n1
        .admin_post(
            "/api/admin-tokens",
            json!({"name": "viewer", "role": "viewer"}),
        )
        .await;
    assert_eq!(status, 201, "{t}");
    let viewer = t["secret"].as_str().unwrap().to_string();
    eventually(LIMIT, "the token reaches node 2", || async {
        let r = reqwest::Client::new()
            .get(n2.url("/api/keys"))
            .bearer_auth(&viewer)
            .send()
            .await
            .unwrap();
        (r.status() == 200).then_some(())
    })
    .await;
    let r = reqwest::Client::new()
        .post(n2.url("/api/teams"))
        .bearer_auth(&viewer)
        .json(&json!({"name": "t"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "a viewer may not write on node 2 either");

    let r = reqwest::Client::new()
        .delete(n2.url("/api/session"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    for n in [&n1, &n2] {
        assert_eq!(
            get_with_cookie(n, "/api/keys", &cookie).await,
            401,
            "logout on node 2 ends the session on {}",
            n.http
        );
    }
}
