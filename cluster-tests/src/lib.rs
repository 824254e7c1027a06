//! Multi-node scenarios.
//!
//! - `tests/processes.rs`: real `tollgate` processes on loopback, talking
//!   real QUIC with mutual TLS ([`Node`] starts them).
//! - `tests/simulation.rs`: in-process nodes over an in-memory network with a
//!   controlled clock, seeded, for partitions and large clusters.

pub mod sim;

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `tollgate` binary: `TOLLGATE_BIN`, or the one cargo built beside
/// this test executable (`target/<profile>/tollgate`).
pub fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("TOLLGATE_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("tests run from target/<profile>/deps");
    let bin = profile_dir.join("tollgate");
    assert!(
        bin.exists(),
        "{} is missing: build it first (cargo build --workspace)",
        bin.display()
    );
    bin
}

pub fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A node process with its own data directory; killed on drop.
pub struct Node {
    pub child: Child,
    pub http: SocketAddr,
    pub quic: SocketAddr,
    pub data: PathBuf,
    secret: String,
    seeds: Vec<SocketAddr>,
    env: Vec<(String, String)>,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Node {
    /// Starts a node with cluster `secret`, joining through `seeds`, keeping
    /// its data in `data`; returns once it answers `/ready`.
    pub async fn start(secret: &str, seeds: &[SocketAddr], data: &Path) -> Node {
        Self::start_with(secret, seeds, data, &[]).await
    }

    /// [`Node::start`] with extra environment (config overrides).
    pub async fn start_with(
        secret: &str,
        seeds: &[SocketAddr],
        data: &Path,
        env: &[(&str, String)],
    ) -> Node {
        let http: SocketAddr = format!("127.0.0.1:{}", free_tcp_port()).parse().unwrap();
        let quic: SocketAddr = format!("127.0.0.1:{}", free_udp_port()).parse().unwrap();
        Self::start_at(secret, seeds, data, http, quic, env).await
    }

    async fn start_at(
        secret: &str,
        seeds: &[SocketAddr],
        data: &Path,
        http: SocketAddr,
        quic: SocketAddr,
        env: &[(&str, String)],
    ) -> Node {
        let seeds_var = seeds
            .iter()
            .map(SocketAddr::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let mut child = Command::new(binary())
            .arg("serve")
            .env("TOLLGATE_SERVER__LISTEN", http.to_string())
            .env("TOLLGATE_SERVER__DATA_DIR", data)
            .env("TOLLGATE_SERVER__ADMIN_TOKEN", "admin-token-for-tests")
            .env("TOLLGATE_CLUSTER__LISTEN", quic.to_string())
            .env("TOLLGATE_CLUSTER__SYNC_INTERVAL", "\"1s\"")
            .env("TOLLGATE_CLUSTER_SECRET", secret)
            .env("TOLLGATE_SEEDS", seeds_var)
            .env("TOLLGATE_LOG", "warn")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        wait_until_up(&format!("http://{http}/ready"), &mut child).await;
        Node {
            child,
            http,
            quic,
            data: data.to_path_buf(),
            secret: secret.to_string(),
            seeds: seeds.to_vec(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        }
    }

    /// Kills the process (no goodbye) and starts it again on the same
    /// addresses and data directory.
    pub async fn restart(mut self) -> Node {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let (secret, seeds, data) = (self.secret.clone(), self.seeds.clone(), self.data.clone());
        let (http, quic) = (self.http, self.quic);
        let env = std::mem::take(&mut self.env);
        drop(self);
        let env: Vec<(&str, String)> = env.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        Self::start_at(&secret, &seeds, &data, http, quic, &env).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.http, path)
    }

    /// `GET` an admin path as JSON.
    pub async fn admin_get(&self, path: &str) -> (u16, serde_json::Value) {
        let r = reqwest::Client::new()
            .get(self.url(path))
            .bearer_auth("admin-token-for-tests")
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// `POST` JSON to an admin path.
    pub async fn admin_post(
        &self,
        path: &str,
        body: serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let r = reqwest::Client::new()
            .post(self.url(path))
            .bearer_auth("admin-token-for-tests")
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// The value of the counter or gauge `series` (its name and labels as
    /// `/metrics` prints them) on this node; 0 while it is not exported.
    pub async fn counter(&self, series: &str) -> u64 {
        let text = reqwest::get(self.url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .map_or(0, |v| v.trim().parse::<f64>().unwrap() as u64)
    }

    /// How many peers this node sees alive.
    pub async fn alive_peers(&self) -> usize {
        let (_, v) = self.admin_get("/api/cluster").await;
        v["members"]
            .as_array()
            .map_or(0, |m| m.iter().filter(|p| p["state"] == "alive").count())
    }
}

/// A `tollgate mock` provider process; killed on drop.
pub struct Mock {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Mock {
    pub async fn start() -> Mock {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_tcp_port()).parse().unwrap();
        let mut child = Command::new(binary())
            .args(["mock", "--listen", &addr.to_string()])
            .env("TOLLGATE_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        wait_until_up(&format!("http://{addr}/v1/models"), &mut child).await;
        Mock { child, addr }
    }

    /// Config overrides for a provider `mock` at this mock with keys `a` and
    /// `b` (secrets `key-a`, `key-b`), and no retries, so every upstream
    /// failure reaches the client.
    pub fn provider_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("TOLLGATE_PROVIDERS__MOCK__KIND", "mock".into()),
            (
                "TOLLGATE_PROVIDERS__MOCK__BASE_URL",
                format!("http://{}/v1", self.addr),
            ),
            (
                "TOLLGATE_PROVIDERS__MOCK__KEYS",
                r#"[{name = "a", secret = "key-a"}, {name = "b", secret = "key-b"}]"#.into(),
            ),
            ("TOLLGATE_UPSTREAM__MAX_RETRIES", "0".into()),
        ]
    }

    /// Requests the mock has answered since it started (`/mock/stats`).
    pub async fn requests(&self) -> u64 {
        let v: serde_json::Value = reqwest::get(format!("http://{}/mock/stats", self.addr))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["requests"].as_u64().unwrap()
    }

    /// Fails `rate` of the requests made with API key `key` (`None` heals it).
    pub async fn fault(&self, key: &str, rate: Option<f64>) {
        let url = format!("http://{}/mock/faults/{key}", self.addr);
        let client = reqwest::Client::new();
        let r = match rate {
            Some(r) => {
                client
                    .put(url)
                    .json(&serde_json::json!({"error_rate": r}))
                    .send()
                    .await
            }
            None => client.delete(url).send().await,
        };
        assert_eq!(r.unwrap().status(), 204);
    }
}

/// A chat completion for `mock/mock-1` at `node`; its status.
pub async fn chat(client: &reqwest::Client, node: &Node) -> u16 {
    client
        .post(node.url("/v1/chat/completions"))
        .json(&serde_json::json!({"model": "mock/mock-1", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// The health state of route `mock`/`key`/`mock-1` as `node` sees it.
pub async fn route_state(node: &Node, key: &str) -> Option<String> {
    let (_, v) = node.admin_get("/api/routes").await;
    v["data"]
        .as_array()?
        .iter()
        .find(|r| r["provider"] == "mock" && r["key"] == key && r["model"] == "mock-1")
        .and_then(|r| r["state"].as_str().map(str::to_string))
}

/// Polls `check` every 20 ms until it returns `Some`, failing after `limit`
/// with `what`. Returns the value and how long it took.
/// Polls `url` until it answers 2xx, failing if `child` exits first or 30 s pass.
async fn wait_until_up(url: &str, child: &mut Child) {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = client.get(url).send().await
            && r.status().is_success()
        {
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("{url}: the process exited during start-up: {status}");
        }
        assert!(Instant::now() < deadline, "{url} did not come up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> (T, Duration)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return (v, start.elapsed());
        }
        assert!(start.elapsed() < limit, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Two nodes with cluster `secret` and extra environment `env`, the second
/// joined through the first, each keeping its data in one of `dirs`;
/// returned once each sees the other alive (within 30 s).
pub async fn joined_pair(
    secret: &str,
    dirs: &[tempfile::TempDir; 2],
    env: &[(&str, String)],
) -> (Node, Node) {
    let n1 = Node::start_with(secret, &[], dirs[0].path(), env).await;
    let n2 = Node::start_with(secret, &[n1.quic], dirs[1].path(), env).await;
    for n in [&n1, &n2] {
        eventually(
            Duration::from_secs(30),
            "the nodes see each other",
            || async { (n.alive_peers().await == 1).then_some(()) },
        )
        .await;
    }
    (n1, n2)
}
