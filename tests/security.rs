//! Secure by default, through the real binary: settings that would open the
//! node are refused at start by name, the admin API never opens, keyless
//! callers from the network get no provider keys, token counting cannot
//! stall the node, and hostile model names cannot grow its metrics.

mod common;

use std::process::Command;

use common::*;
use serde_json::{Value, json};

/// `tollgate check-config` with only `env` set: its exit status and output.
fn check_config(env: &[(&str, &str)]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .arg("check-config")
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// Reported: `TOLLGATE_SERVER__ADMIN_TOKEN=` (empty, as compose and
/// Kubernetes render an unset value) was accepted, and a request with no
/// header then passed the admin API. Now empty and weak tokens and cluster
/// secrets stop the node at start, naming the setting.
#[test]
fn empty_or_weak_secrets_are_refused_at_start_by_name() {
    for (var, value, setting) in [
        ("TOLLGATE_SERVER__ADMIN_TOKEN", "", "server.admin_token"),
        (
            "TOLLGATE_SERVER__ADMIN_TOKEN",
            "change-me",
            "server.admin_token",
        ),
        (
            "TOLLGATE_SERVER__ADMIN_TOKEN",
            "aaaaaaaaaaaaaaaaaaaaaaaa",
            "server.admin_token",
        ),
        ("TOLLGATE_CLUSTER_SECRET", "", "cluster.secret"),
        (
            "TOLLGATE_CLUSTER_SECRET",
            "demo-cluster-secret",
            "cluster.secret",
        ),
    ] {
        let mut env = vec![(var, value)];
        if var == "TOLLGATE_CLUSTER_SECRET" {
            env.push(("TOLLGATE_CLUSTER__ADVERTISE", "127.0.0.1:7946"));
        }
        let (ok, out) = check_config(&env);
        assert!(!ok, "{var}={value:?} was accepted: {out}");
        assert!(out.contains(setting), "{var}={value:?}: {out}");
    }
    let (ok, out) = check_config(&[(
        "TOLLGATE_SERVER__ADMIN_TOKEN",
        "a-proper-admin-token-of-some-length",
    )]);
    assert!(ok, "{out}");
}

/// A node on a non-loopback address with `enforce_auth` off would relay
/// anyone's traffic on the operator's provider keys: it refuses to start
/// unless the operator allowed exactly that.
#[test]
fn an_open_relay_on_the_network_needs_an_explicit_setting() {
    let exposed = [
        ("TOLLGATE_SERVER__LISTEN", "0.0.0.0:8080"),
        ("OPENAI_API_KEY", "sk-test"),
    ];
    let (ok, out) = check_config(&exposed);
    assert!(!ok, "{out}");
    assert!(out.contains("client.enforce_auth"), "{out}");
    assert!(out.contains("client.allow_unauthenticated"), "{out}");
    let mut allowed = exposed.to_vec();
    allowed.push(("TOLLGATE_CLIENT__ALLOW_UNAUTHENTICATED", "true"));
    assert!(check_config(&allowed).0);
    let mut enforced = exposed.to_vec();
    enforced.push(("TOLLGATE_CLIENT__ENFORCE_AUTH", "true"));
    assert!(check_config(&enforced).0);
    // The default listens on loopback, where a single developer works.
    assert!(check_config(&[("OPENAI_API_KEY", "sk-test")]).0);
}

/// The admin API fails closed: no header, an empty bearer or a wrong token
/// are all refused.
#[tokio::test]
async fn the_admin_api_never_opens_without_its_token() {
    let gw = Gateway::start("").await;
    let client = reqwest::Client::new();
    for auth in [None, Some(""), Some("wrong")] {
        let mut req = client.get(gw.url("/api/keys"));
        if let Some(a) = auth {
            req = req.header("authorization", format!("Bearer {a}"));
        }
        assert_eq!(req.send().await.unwrap().status(), 401, "{auth:?}");
    }
    let ok = client
        .get(gw.url("/api/keys"))
        .bearer_auth(gw.generated_admin_token())
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let data = gw.dir.path().join("data");
        assert_eq!(mode(&data), 0o700, "data_dir is private");
        assert_eq!(mode(&data.join("admin-token")), 0o600);
    }
}

/// Reported: a long prompt without spaces sent to `count_tokens` kept a
/// worker busy quadratically in its length, and four such calls kept
/// `/health` waiting for 10 s. Counting is now linear and off the async
/// workers: the node keeps answering `/health` while the calls run, and
/// each call is answered.
#[tokio::test]
async fn token_counting_cannot_stall_the_node() {
    let mock = start_mock(&[]).await;
    let gw = Gateway::start(&mock_provider("mock", &mock, "")).await;
    let client = reqwest::Client::new();
    let prompt = "x".repeat(150_000);
    let calls: Vec<_> = (0..4)
        .map(|_| {
            let req = client
                .post(gw.url("/anthropic/v1/messages/count_tokens"))
                .json(&json!({"model": "mock/mock-1", "max_tokens": 10,
                              "messages": [{"role": "user", "content": prompt}]}));
            tokio::spawn(async move { req.send().await.unwrap() })
        })
        .collect();
    for _ in 0..20 {
        let r = client.get(gw.url("/health")).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    for c in calls {
        let r = c.await.unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        let n = v["input_tokens"].as_u64().unwrap();
        assert!(n > 1_000 && n <= 150_000, "{v}");
    }
}

/// Reported: model strings of any length flowed into Prometheus labels and
/// the gossiped route-health map (60 requests with 400 KB names: +245 MiB
/// and an 899 MB `/metrics`). Ids are now at most 256 bytes, and models a
/// provider does not list share a bounded set of labels.
#[tokio::test]
async fn hostile_model_names_cannot_grow_metrics_or_memory() {
    let mock = start_mock(&[]).await;
    let gw = Gateway::start(&mock_provider("mock", &mock, "")).await;
    let client = reqwest::Client::new();
    let huge = format!("mock/{}", "x".repeat(400_000));
    let r = client
        .post(gw.url("/v1/chat/completions"))
        .json(&chat_body(&huge))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let rss_before = status_kib(gw.proc.child.id(), "VmRSS:");
    for i in 0..600 {
        let model = format!("mock/{i:0>200}");
        let r = client
            .post(gw.url("/v1/chat/completions"))
            .json(&chat_body(&model))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{model}");
    }
    let metrics = client
        .get(gw.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let labels: std::collections::HashSet<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("tollgate_requests_total{"))
        .filter_map(|l| l.split("model=\"").nth(1)?.split('"').next())
        .filter(|m| !m.is_empty()) // requests refused before a target was chosen
        .collect();
    assert!(labels.len() <= 256 + 1, "{} model labels", labels.len());
    assert!(
        labels.contains("other"),
        "models past the cap share a label"
    );
    assert!(
        metrics.len() < 4 << 20,
        "/metrics is {} bytes",
        metrics.len()
    );
    let rss_after = status_kib(gw.proc.child.id(), "VmRSS:");
    assert!(
        rss_after < rss_before + 64 * 1024,
        "RSS grew from {rss_before} KiB to {rss_after} KiB"
    );
}

/// `n` connections to `gw`, each having sent `start` of a request and then
/// nothing more.
async fn stalled(gw: &Gateway, n: usize, start: &[u8]) -> Vec<tokio::net::TcpStream> {
    use tokio::io::AsyncWriteExt;
    let mut conns = Vec::new();
    for _ in 0..n {
        let mut s = tokio::net::TcpStream::connect(gw.proc.addr).await.unwrap();
        s.write_all(start).await.unwrap();
        conns.push(s);
    }
    conns
}

/// Reported: no header-read timeout and no connection limit, so a few
/// clients sending headers a byte at a time (slowloris) hold the node. Now
/// a connection that has not sent its headers within
/// `server.header_read_timeout` is closed, and past `max_connections` new
/// connections wait: a node under such an attack keeps answering.
#[tokio::test]
async fn slow_clients_cannot_hold_the_node() {
    use tokio::io::AsyncReadExt;
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start_with_env(
        "",
        dir,
        &[
            ("TOLLGATE_SERVER__MAX_CONNECTIONS", "8"),
            ("TOLLGATE_SERVER__HEADER_READ_TIMEOUT", "\"1s\""),
        ],
    )
    .await;
    // Twice the connection cap, each sending half a request and waiting.
    let slow = stalled(&gw, 16, b"GET /health HTTP/1.1\r\nHost: x\r\n").await;
    // A real client still gets its answer: the stalled connections are
    // closed once their headers are overdue, and the queued ones are served.
    let r = reqwest::Client::new()
        .get(gw.url("/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Every stalled connection was closed by the node (EOF, or a 408).
    for mut s in slow {
        let mut buf = Vec::new();
        let n = tokio::time::timeout(std::time::Duration::from_secs(30), s.read_to_end(&mut buf))
            .await
            .expect("the node closes a connection whose headers never end")
            .unwrap_or(0);
        let said = String::from_utf8_lossy(&buf[..n.min(buf.len())]);
        assert!(n == 0 || said.starts_with("HTTP/1.1 408"), "{said}");
    }
}

/// A body that trickles in cannot hold its connection and its place in
/// `server.max_in_flight`: it fails with 408 at `server.body_read_timeout`,
/// and a client after it is served.
#[tokio::test]
async fn slow_bodies_cannot_hold_the_node() {
    use tokio::io::AsyncReadExt;
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start_with_env(
        "",
        dir,
        &[
            ("TOLLGATE_SERVER__MAX_IN_FLIGHT", "2"),
            ("TOLLGATE_SERVER__BODY_READ_TIMEOUT", "\"1s\""),
        ],
    )
    .await;
    let slow = stalled(
        &gw,
        2,
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{\"model\":",
    )
    .await;
    for mut s in slow {
        let mut buf = vec![0u8; 4096];
        let n = tokio::time::timeout(std::time::Duration::from_secs(30), s.read(&mut buf))
            .await
            .expect("the node answers a body that never ends")
            .unwrap();
        let said = String::from_utf8_lossy(&buf[..n]);
        assert!(said.starts_with("HTTP/1.1 408"), "{said}");
        assert!(said.contains("body_read_timeout"), "{said}");
    }
    // Their places are free again.
    let r = reqwest::Client::new()
        .get(gw.url("/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// `/metrics` can be put behind a token of its own.
#[tokio::test]
async fn metrics_can_require_a_token() {
    let token = "a-metrics-token-for-the-tests";
    let gw = Gateway::start_with_env(
        "",
        tempfile::tempdir().unwrap(),
        &[("TOLLGATE_SERVER__METRICS_TOKEN", token)],
    )
    .await;
    let client = reqwest::Client::new();
    assert_eq!(
        client
            .get(gw.url("/metrics"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let r = client
        .get(gw.url("/metrics"))
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = client
        .get(gw.url("/metrics"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("tollgate_in_flight_requests")
    );
}

/// Requests in flight are bounded (`server.max_in_flight`): past it a
/// request gets 503 at once, and a streamed answer holds its place until
/// its body ends.
#[tokio::test]
async fn requests_in_flight_are_bounded() {
    let mock = start_mock(&[]).await;
    let gw = Gateway::start_with_env(
        &mock_provider(
            "mock",
            &mock,
            "headers = { \"x-mock-chunk-delay-ms\" = \"300\", \"x-mock-chunks\" = \"10\" }",
        ),
        tempfile::tempdir().unwrap(),
        &[("TOLLGATE_SERVER__MAX_IN_FLIGHT", "2")],
    )
    .await;
    let client = reqwest::Client::new();
    let stream = || {
        client
            .post(gw.url("/v1/chat/completions"))
            .json(&json!({"model": "mock/mock-1", "stream": true,
                          "messages": [{"role": "user", "content": "hi"}]}))
            .send()
    };
    let mut open = Vec::new();
    for _ in 0..2 {
        let mut r = stream().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.chunk().await.unwrap().is_some());
        open.push(r);
    }
    let r = client.get(gw.url("/health")).send().await.unwrap();
    assert_eq!(
        r.status(),
        503,
        "a third request while two streams are open"
    );
    assert_eq!(r.headers()["retry-after"], "1");
    for mut r in open {
        while r.chunk().await.unwrap().is_some() {}
    }
    let r = client.get(gw.url("/health")).send().await.unwrap();
    assert_eq!(r.status(), 200, "the streams' places are free again");
}
