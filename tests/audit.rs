//! The audit log through the real binary: every admin write that changed
//! something, with its token, before and after (secrets redacted); and
//! `tollgate audit verify` naming an entry edited, removed or reordered in
//! a stopped node's database.

mod common;

use std::process::Command;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};
use tollgate::observability::audit::{Stored, row_key, row_value};
use tollgate::store::{CF_AUDIT, Store};

const TOKEN: &str = "audit-bootstrap-token-0123456789";

fn verify(data: &std::path::Path) -> (bool, String) {
    let out = Command::new(BIN)
        .args(["audit", "verify", "--data-dir"])
        .arg(data)
        .env_remove("TOLLGATE_SERVER__DATA_DIR")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn admin_writes_are_chained_and_tampering_is_named() {
    let mock = start_mock(&[]).await;
    let gw = Gateway::start(&format!(
        "[server]\nadmin_token = \"{TOKEN}\"\n{}",
        mock_provider("mock", &mock, "models = [\"mock-1\"]")
    ))
    .await;
    let call = |token: String, method: Method, path: &str, body: Option<Value>| {
        let url = gw.url(path);
        async move { admin_call(url, &token, method, body).await }
    };
    let (_, op) = call(
        TOKEN.into(),
        Method::POST,
        "/api/admin-tokens",
        Some(json!({"name": "support", "role": "operator"})),
    )
    .await;
    let operator = op["secret"].as_str().unwrap().to_string();
    let (status, team) = call(
        operator.clone(),
        Method::POST,
        "/api/teams",
        Some(json!({"name": "blue"})),
    )
    .await;
    assert_eq!(status, 201);
    let team_id = team["id"].as_str().unwrap().to_string();
    let (status, _) = call(
        operator.clone(),
        Method::PATCH,
        &format!("/api/teams/{team_id}"),
        Some(json!({"name": "green"})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, key) = call(
        operator.clone(),
        Method::POST,
        "/api/keys",
        Some(json!({"name": "k", "team_id": team_id})),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = call(
        TOKEN.into(),
        Method::PUT,
        "/api/providers/extra",
        Some(json!({"kind": "mock", "base_url": format!("http://{}/v1", mock.addr), "api_key": "sk-very-secret"})),
    )
    .await;
    assert_eq!(status, 200);
    // Refused writes change nothing and are not entries.
    let (status, _) = call(
        operator.clone(),
        Method::PUT,
        "/api/providers/nope",
        Some(json!({"kind": "mock"})),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = call(
        TOKEN.into(),
        Method::POST,
        "/api/teams",
        Some(json!({"name": ""})),
    )
    .await;
    assert_eq!(status, 400);

    let (status, v) = call(TOKEN.into(), Method::GET, "/api/audit", None).await;
    assert_eq!(status, 200, "{v}");
    let entries = v["data"].as_array().unwrap();
    let actions: Vec<(&str, &str, &str)> = entries
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["kind"].as_str().unwrap_or(""),
                e["token_name"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("put", "providers", "bootstrap"),
            ("create", "keys", "support"),
            ("update", "teams", "support"),
            ("create", "teams", "support"),
            ("create", "admin_tokens", "bootstrap"),
        ],
        "{v}"
    );
    let rename = &entries[2];
    assert_eq!(rename["before"]["name"], "blue");
    assert_eq!(rename["after"]["name"], "green");
    assert_eq!(rename["role"], "operator");
    assert_eq!(rename["object"], team_id);
    assert_eq!(entries[1]["object"], key["id"]);
    assert_eq!(entries[1]["after"]["secret_hash"], "***");
    let text = v.to_string();
    assert!(
        !text.contains("sk-very-secret"),
        "a provider secret in the audit log: {text}"
    );
    assert!(
        !text.contains(key["secret"].as_str().unwrap()),
        "a key secret in the audit log"
    );
    assert!(!text.contains(&operator), "a token secret in the audit log");
    let (_, filtered) = call(
        TOKEN.into(),
        Method::GET,
        &format!("/api/audit?object={team_id}"),
        None,
    )
    .await;
    assert_eq!(filtered["data"].as_array().unwrap().len(), 2);
    let (_, checked) = call(TOKEN.into(), Method::GET, "/api/audit/verify", None).await;
    assert_eq!(checked["ok"], true, "{checked}");

    // Stopped, the chain verifies; then three copies, each tampered one way.
    let Gateway { mut proc, dir } = gw;
    proc.terminate();
    proc.child.wait().unwrap();
    let data = dir.path().join("data");
    let (ok, out) = verify(&data);
    assert!(ok, "{out}");
    assert!(out.contains("5 entries, intact"), "{out}");
    let node = {
        let store = Store::open(&data.join("db")).unwrap();
        let mut node = None;
        store
            .scan_prefix(CF_AUDIT, &[], |k, _| {
                node.get_or_insert(u64::from_be_bytes(k[..8].try_into().unwrap()));
            })
            .unwrap();
        node.unwrap()
    };
    let read = |store: &Store, seq: u64| -> Stored {
        let v = store.get(CF_AUDIT, &row_key(node, seq)).unwrap().unwrap();
        serde_json::from_slice(&v[1..]).unwrap()
    };
    let tampered = |name: &str, tamper: &dyn Fn(&Store)| {
        let copy = dir.path().join(name);
        copy_dir(&data, &copy);
        tamper(&Store::open(&copy.join("db")).unwrap());
        verify(&copy)
    };
    let (ok, out) = tampered("edited", &|s| {
        let mut e = read(s, 3);
        e.body = e.body.replace("\"green\"", "\"red\"");
        s.put(CF_AUDIT, &row_key(node, 3), &row_value(&e)).unwrap();
    });
    assert!(!ok && out.contains("entry 3 was altered"), "{out}");
    let (ok, out) = tampered("removed", &|s| {
        s.write_durable(CF_AUDIT, [], [&row_key(node, 2)[..]])
            .unwrap();
    });
    assert!(!ok && out.contains("entry 2 was removed"), "{out}");
    let (ok, out) = tampered("reordered", &|s| {
        let (a, b) = (read(s, 3), read(s, 4));
        s.put(CF_AUDIT, &row_key(node, 3), &row_value(&b)).unwrap();
        s.put(CF_AUDIT, &row_key(node, 4), &row_value(&a)).unwrap();
    });
    assert!(!ok && out.contains("entry 3 was moved"), "{out}");
}
