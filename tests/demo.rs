//! `tollgate serve --demo` through the real binary, with no config at all:
//! the in-process mock answers as provider `demo`, and the in-process
//! sample MCP server is registered as MCP server `demo` and connected. A
//! node with no provider at all says so at start, and what to do.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

const TOKEN: &str = "demo-admin-token-0123456789abcdef";

#[tokio::test]
async fn a_demo_node_serves_the_mock_and_the_sample_mcp_server() {
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = Command::new(BIN)
        .args(["serve", "--demo"])
        .env("TOLLGATE_SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("TOLLGATE_SERVER__DATA_DIR", data.path())
        .env("TOLLGATE_SERVER__ADMIN_TOKEN", TOKEN)
        .env("TOLLGATE_LOG", "warn")
        .env_remove("TOLLGATE_CONFIG")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    wait_until_up(&format!("{url}/ready"), &mut child).await;
    let node = Proc {
        child,
        addr: format!("127.0.0.1:{port}").parse().unwrap(),
    };

    let r = reqwest::Client::new()
        .post(node.url("/v1/chat/completions"))
        .json(&json!({"model": "demo/mock-1", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert!(v["choices"][0]["message"]["content"].is_string(), "{v}");

    let deadline = Instant::now() + Duration::from_secs(30);
    let server = loop {
        let (status, v) = admin_call(
            node.url("/api/mcp/servers/demo"),
            TOKEN,
            reqwest::Method::GET,
            None,
        )
        .await;
        if status == 200 && v["status"]["state"] == "connected" {
            break v;
        }
        assert!(
            Instant::now() < deadline,
            "MCP server demo never connected: {status} {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let tools: Vec<&str> = server["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(tools.contains(&"demo-echo"), "{server}");
}

/// What a node started with no config and no provider keys in its
/// environment logs before it is ready (`extra`: more arguments).
async fn start_up_log(extra: &[&str]) -> String {
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let log = data.path().join("out.log");
    let mut child = Command::new(BIN)
        .arg("serve")
        .args(extra)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", data.path())
        .env("TOLLGATE_SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("TOLLGATE_SERVER__DATA_DIR", data.path().join("data"))
        .env("TOLLGATE_LOG", "warn")
        .stdout(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    wait_until_up(&format!("http://127.0.0.1:{port}/ready"), &mut child).await;
    let _ = child.kill();
    let _ = child.wait();
    std::fs::read_to_string(&log).unwrap()
}

#[tokio::test]
async fn a_node_without_providers_says_so_and_what_to_do() {
    let log = start_up_log(&[]).await;
    assert!(log.contains("no provider is configured"), "{log}");
    assert!(log.contains("tollgate serve --demo"), "{log}");
    let log = start_up_log(&["--demo"]).await;
    assert!(!log.contains("no provider is configured"), "{log}");
}
