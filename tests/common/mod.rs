//! Test harness: the real `tollgate` binary, started as processes on loopback.

#![allow(dead_code)]

pub mod mcp;

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_tollgate");

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `url` until it answers 200 (process start-up), failing after 30 s.
pub async fn wait_until_up(url: &str, child: &mut Child) {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = client.get(url).send().await
            && r.status().is_success()
        {
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("process exited during start-up: {status}");
        }
        assert!(Instant::now() < deadline, "{url} did not come up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A running process, killed on drop.
pub struct Proc {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Sends SIGTERM (graceful shutdown).
    pub fn terminate(&self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
    }
}

pub async fn start_mock(args: &[&str]) -> Proc {
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    start_mock_at(addr, args).await
}

/// `tollgate mock` at `addr` (to start one again where another was).
pub async fn start_mock_at(addr: SocketAddr, args: &[&str]) -> Proc {
    let mut child = Command::new(BIN)
        .arg("mock")
        .arg("--listen")
        .arg(addr.to_string())
        .args(args)
        .env("TOLLGATE_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_until_up(&format!("http://{addr}/v1/models"), &mut child).await;
    Proc { child, addr }
}

/// A gateway node with `config` (TOML) and its own data directory.
pub struct Gateway {
    pub proc: Proc,
    pub dir: tempfile::TempDir,
}

impl Gateway {
    pub async fn start(config: &str) -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(config, dir).await
    }

    pub async fn start_in(config: &str, dir: tempfile::TempDir) -> Gateway {
        Self::start_with_env(config, dir, &[]).await
    }

    /// Starts with extra environment variables (e.g. secrets the config names as `env.VAR`).
    pub async fn start_with_env(
        config: &str,
        dir: tempfile::TempDir,
        env: &[(&str, &str)],
    ) -> Gateway {
        let port = free_port();
        let path: PathBuf = dir.path().join("tollgate.toml");
        std::fs::write(&path, config).unwrap();
        let mut child = Command::new(BIN)
            .arg("serve")
            .arg("--config")
            .arg(&path)
            .env("TOLLGATE_SERVER__LISTEN", format!("127.0.0.1:{port}"))
            .env("TOLLGATE_SERVER__DATA_DIR", dir.path().join("data"))
            .env("TOLLGATE_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        wait_until_up(&format!("http://{addr}/ready"), &mut child).await;
        Gateway {
            proc: Proc { child, addr },
            dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        self.proc.url(path)
    }

    /// Stops the node gracefully (SIGTERM, waited for) and starts it again
    /// on the same data directory with `config`.
    pub async fn restart(self, config: &str) -> Gateway {
        let Gateway { mut proc, dir } = self;
        proc.terminate();
        proc.child.wait().unwrap();
        drop(proc);
        Gateway::start_in(config, dir).await
    }

    /// The admin token the node generated for itself (when its config sets none).
    pub fn generated_admin_token(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("data/admin-token"))
            .expect("a node without admin_token writes one")
    }
}

/// Mock provider config: a provider named `name` at `mock`, with extra TOML lines.
pub fn mock_provider(name: &str, mock: &Proc, extra: &str) -> String {
    format!(
        "[providers.{name}]\nkind = \"mock\"\nbase_url = \"http://{}/v1\"\n{extra}\n",
        mock.addr
    )
}

/// A chat completion at `gw` with virtual key `secret`: status and JSON body.
pub async fn chat_as(
    gw: &Gateway,
    secret: &str,
    body: &serde_json::Value,
) -> (u16, serde_json::Value) {
    let r = reqwest::Client::new()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(secret)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

pub fn chat_body(model: &str) -> serde_json::Value {
    serde_json::json!({"model": model, "messages": [{"role": "user", "content": "hello there"}]})
}

/// The `data:` payloads of an SSE body.
pub fn sse_data(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter_map(|ev| {
            let lines: Vec<&str> = ev
                .lines()
                .filter_map(|l| l.strip_prefix("data:").map(|d| d.trim_start()))
                .collect();
            (!lines.is_empty()).then(|| lines.join("\n"))
        })
        .collect()
}

/// Polls `/api/logs` until `pred` holds for the page (logs are written off
/// the request path), failing after 10 s. Without `token`, uses the node's
/// generated admin token.
pub async fn logs_until(
    gw: &Gateway,
    query: &str,
    token: Option<&str>,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let token = token.map_or_else(|| gw.generated_admin_token(), str::to_string);
    loop {
        let req = client
            .get(gw.url(&format!("/api/logs{query}")))
            .bearer_auth(&token);
        let page: serde_json::Value = req.send().await.unwrap().json().await.unwrap();
        if pred(&page) {
            return page;
        }
        assert!(Instant::now() < deadline, "logs never matched: {page}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One admin API call: (status, JSON body or null).
pub async fn admin_call(
    url: String,
    token: &str,
    method: reqwest::Method,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let mut req = reqwest::Client::new()
        .request(method, url)
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    )
}

/// Each budget over the key `secret` as `/api/self` shows it: (scope,
/// spent, limit), amounts in micro-dollars.
pub async fn budgets_of(gw: &Gateway, secret: &str) -> Vec<(String, u64, u64)> {
    let v: serde_json::Value = reqwest::Client::new()
        .get(gw.url("/api/self"))
        .bearer_auth(secret)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let micros = |s: &serde_json::Value| {
        tollgate::governance::budgets::Usd::parse(s.as_str().unwrap())
            .unwrap()
            .0
    };
    v["budgets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            let scope = b["scope"].as_str().unwrap().to_string();
            (scope, micros(&b["spent_usd"]), micros(&b["limit_usd"]))
        })
        .collect()
}

/// A `/proc/<pid>/status` field (`VmRSS:`, `VmHWM:`) in KiB.
pub fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

/// Requests the mock has answered since it started (`/mock/stats`).
pub async fn upstream_requests(mock: &Proc) -> u64 {
    let v: serde_json::Value = reqwest::get(mock.url("/mock/stats"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["requests"].as_u64().unwrap()
}

/// The text of a whole OpenAI chat completion.
pub fn text_of(body: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    v["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string()
}

/// `GET /api/cache` with admin token `token`.
pub async fn cache_stats_with(gw: &Gateway, token: &str) -> serde_json::Value {
    admin_call(gw.url("/api/cache"), token, reqwest::Method::GET, None)
        .await
        .1
}

/// A GET whose answer is JSON.
pub async fn get_json(url: impl reqwest::IntoUrl) -> serde_json::Value {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

/// `GET /metrics`.
pub async fn metrics_text(gw: &Gateway) -> String {
    reqwest::get(gw.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Creates a virtual key through the admin API with admin token `token`
/// (201 expected) and returns its secret.
pub async fn create_key(gw: &Gateway, token: &str, fields: serde_json::Value) -> String {
    let (s, k) = admin_call(
        gw.url("/api/keys"),
        token,
        reqwest::Method::POST,
        Some(fields),
    )
    .await;
    assert_eq!(s, 201, "{k}");
    k["secret"].as_str().unwrap().to_string()
}

/// A dashboard login at `gw` with admin token `token`: status, the
/// `tollgate_session=…` pair to send back as `Cookie`, the whole
/// `Set-Cookie`, and the JSON answer.
pub async fn login(
    gw: &Gateway,
    token: &str,
) -> (u16, Option<String>, Option<String>, serde_json::Value) {
    let r = reqwest::Client::new()
        .post(gw.url("/api/session"))
        .json(&serde_json::json!({"token": token}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let set = r
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().to_string());
    let pair = set
        .as_deref()
        .map(|s| s.split(';').next().unwrap().to_string());
    (
        status,
        pair,
        set,
        r.json().await.unwrap_or(serde_json::Value::Null),
    )
}
