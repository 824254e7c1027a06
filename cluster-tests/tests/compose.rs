//! The docker compose cluster (`docker-compose.yml` + `compose.test.yml`):
//! three real nodes in containers behind HAProxy, with the mock provider.
//!
//! Needs docker and the images `scripts/images.sh` builds, so it is ignored in
//! plain `cargo test` runs; `scripts/test.sh` builds the images and runs it
//! (`cargo nextest run -p cluster-tests --run-ignored only`). Everything is
//! driven from the host through ports published on 127.0.0.1 (8080 for the
//! load balancer, 18081–18083 for the nodes). Figures are printed, never
//! asserted; waits are bounded only so a broken cluster fails.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cluster_tests::eventually;
use serde_json::{Value, json};

const PROJECT: &str = "tollgate-ct";
const LB: &str = "http://127.0.0.1:8080";
/// HAProxy's statistics page (CSV), published on the host's loopback.
const LB_STATS: &str = "http://127.0.0.1:8404/stats;csv";
const NODES: [&str; 3] = [
    "http://127.0.0.1:18081",
    "http://127.0.0.1:18082",
    "http://127.0.0.1:18083",
];
const ADMIN: &str = "compose-test-admin-token";
const LIMIT: Duration = Duration::from_secs(60);

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs `docker compose` (the plugin, or docker-compose v1) on the project.
fn compose(args: &[&str]) -> String {
    let plugin = Command::new("docker")
        .args(["compose", "version"])
        .output()
        .is_ok_and(|o| o.status.success());
    let mut cmd = if plugin {
        let mut c = Command::new("docker");
        c.arg("compose");
        c
    } else {
        Command::new("docker-compose")
    };
    cmd.current_dir(root())
        .args(["-p", PROJECT, "-f", "docker-compose.yml", "-f"])
        .arg("cluster-tests/compose.test.yml")
        .args(args)
        .env(
            "TOLLGATE_IMAGE",
            std::env::var("TOLLGATE_IMAGE").unwrap_or("tollgate:local".into()),
        )
        .env(
            "HAPROXY_IMAGE",
            std::env::var("HAPROXY_IMAGE").unwrap_or("tollgate-lb:local".into()),
        )
        // The compose file requires one (it has no public default).
        .env(
            "TOLLGATE_CLUSTER_SECRET",
            "compose-test-cluster-secret-0123456789",
        );
    run(cmd, args)
}

fn docker(args: &[&str]) -> String {
    let mut cmd = Command::new("docker");
    cmd.args(args);
    run(cmd, args)
}

/// Runs a command that must succeed; its trimmed stdout.
fn run(mut cmd: Command, args: &[&str]) -> String {
    let out = cmd.output().expect("docker runs");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Tears the project down when the test ends, however it ends.
struct Down;
impl Drop for Down {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(|| compose(&["down", "-v", "--remove-orphans"]));
    }
}

fn container(service: &str) -> String {
    compose(&["ps", "-q", service])
}

struct Client(reqwest::Client);

impl Client {
    async fn admin(&self, method: &str, url: String, body: Option<Value>) -> (u16, Value) {
        let mut req = match method {
            "GET" => self.0.get(url),
            "POST" => self.0.post(url),
            "PUT" => self.0.put(url),
            "PATCH" => self.0.patch(url),
            m => panic!("{m}"),
        }
        .bearer_auth(ADMIN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        match req.send().await {
            Ok(r) => {
                let s = r.status().as_u16();
                (s, r.json().await.unwrap_or(Value::Null))
            }
            Err(_) => (0, Value::Null),
        }
    }

    /// Waits until `observer` sees node `id` down; how long that took.
    async fn until_down(&self, observer: &str, id: &str) -> Duration {
        eventually(LIMIT, &format!("{observer} sees {id} down"), || async {
            let (_, v) = self
                .admin("GET", format!("{observer}/api/cluster"), None)
                .await;
            v["members"]
                .as_array()?
                .iter()
                .any(|m| m["node"] == id && m["state"] == "down")
                .then_some(())
        })
        .await
        .1
    }

    async fn until_ready(&self, base: &str) {
        eventually(LIMIT, &format!("{base}/ready"), || async {
            let r = self.0.get(format!("{base}/ready")).send().await.ok()?;
            r.status().is_success().then_some(())
        })
        .await;
    }

    /// Waits until the load balancer has `server` back in rotation (its
    /// health checks see it `UP`).
    async fn until_in_rotation(&self, server: &str) {
        eventually(
            LIMIT,
            &format!("the load balancer sends to {server}"),
            || async {
                let csv = self.0.get(LB_STATS).send().await.ok()?.text().await.ok()?;
                let mut lines = csv.lines();
                let header: Vec<&str> = lines.next()?.trim_start_matches("# ").split(',').collect();
                let col = |name: &str| header.iter().position(|h| *h == name);
                let (px, sv, status) = (col("pxname")?, col("svname")?, col("status")?);
                lines
                    .map(|l| l.split(',').collect::<Vec<_>>())
                    .any(|f| {
                        f.get(px) == Some(&"nodes")
                            && f.get(sv) == Some(&server)
                            && f.get(status) == Some(&"UP")
                    })
                    .then_some(())
            },
        )
        .await;
    }

    /// `POST`s a new object through the admin API; it must be created.
    async fn create(&self, url: String, body: Value) -> Value {
        let (s, v) = self.admin("POST", url, Some(body)).await;
        assert_eq!(s, 201, "{v}");
        v
    }

    /// A chat completion at `base` with `key` (or none); the status, 0 when
    /// the connection failed.
    async fn chat(&self, base: &str, key: Option<&str>) -> u16 {
        let mut req = self
            .0
            .post(format!("{base}/v1/chat/completions"))
            .json(&json!({
                "model": "mock/mock-1",
                "max_tokens": 16,
                "messages": [{"role": "user", "content": "hello"}],
            }));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        match req.send().await {
            Ok(r) => {
                let s = r.status().as_u16();
                let _ = r.bytes().await;
                s
            }
            Err(_) => 0,
        }
    }

    async fn alive_peers(&self, node: &str) -> usize {
        let (_, v) = self.admin("GET", format!("{node}/api/cluster"), None).await;
        v["members"]
            .as_array()
            .map_or(0, |m| m.iter().filter(|p| p["state"] == "alive").count())
    }
}

async fn until_all_joined(c: &Client) -> Duration {
    eventually(LIMIT, "every node sees both peers", || async {
        for n in NODES {
            if c.alive_peers(n).await != 2 {
                return None;
            }
        }
        Some(())
    })
    .await
    .1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs docker and the local images: run by scripts/test.sh"]
async fn compose_cluster() {
    let _ = std::panic::catch_unwind(|| compose(&["down", "-v", "--remove-orphans"]));
    compose(&["up", "-d", "--no-build"]);
    let _down = Down;
    let c = Client(
        reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
    );
    c.until_ready(LB).await;
    let t = until_all_joined(&c).await;
    println!("cluster formed {t:?} after the load balancer was ready");

    // 1. A key created through the load balancer works on every node.
    let (s, _) = c
        .admin(
            "PUT",
            format!("{LB}/api/pricing/mock-1"),
            Some(json!({"input": 1_000_000, "output": 1_000_000})),
        )
        .await;
    assert_eq!(s, 200);
    let key = c
        .create(format!("{LB}/api/keys"), json!({"name": "everywhere"}))
        .await;
    let secret = key["secret"].as_str().unwrap().to_string();
    let key_id = key["id"].as_str().unwrap().to_string();
    let created = Instant::now();
    for n in NODES {
        let (_, t) = eventually(LIMIT, "the new key works on every node", || async {
            (c.chat(n, Some(&secret)).await == 200).then_some(())
        })
        .await;
        println!(
            "key usable on {n} {:?} after creation ({t:?} polling)",
            created.elapsed()
        );
    }

    // An MCP server registered through the load balancer: every node
    // connects to the sample server itself.
    let (s, _) = c
        .admin(
            "PUT",
            format!("{LB}/api/mcp/servers/sample"),
            Some(json!({"transport": {"type": "http", "url": "http://sample-mcp:9100/mcp"}})),
        )
        .await;
    assert_eq!(s, 200);
    for n in NODES {
        let (_, t) = eventually(
            LIMIT,
            "every node connects to the sample MCP server",
            || async {
                let (s, v) = c
                    .admin("GET", format!("{n}/api/mcp/servers/sample"), None)
                    .await;
                (s == 200 && v["status"]["state"] == "connected").then_some(())
            },
        )
        .await;
        println!("{n} connected to the replicated MCP server after {t:?}");
    }

    // 5. A revoked key is refused on every node.
    let (s, _) = c
        .admin(
            "PATCH",
            format!("{LB}/api/keys/{key_id}"),
            Some(json!({"active": false})),
        )
        .await;
    assert_eq!(s, 200);
    let revoked = Instant::now();
    for n in NODES {
        eventually(LIMIT, "the revoked key is refused everywhere", || async {
            (c.chat(n, Some(&secret)).await == 401).then_some(())
        })
        .await;
    }
    println!(
        "revoked key refused on all 3 nodes {:?} after the PATCH returned",
        revoked.elapsed()
    );

    // 2. Kill a node: it is marked down, the load balancer keeps answering,
    //    and it catches up after a restart.
    let node3 = container("node3");
    let (_, me3) = c
        .admin("GET", format!("{}/api/cluster", NODES[2]), None)
        .await;
    let node3_id = me3["node"].as_str().unwrap().to_string();
    docker(&["kill", &node3]);
    let killed = Instant::now();
    let mut ok = 0;
    for _ in 0..30 {
        if c.chat(LB, None).await == 200 {
            ok += 1;
        }
    }
    println!("through the load balancer right after the kill: {ok}/30 answered 200");
    assert_eq!(ok, 30);
    c.until_down(NODES[0], &node3_id).await;
    println!("failure detected {:?} after the kill", killed.elapsed());
    let team = c
        .create(format!("{LB}/api/teams"), json!({"name": "while-down"}))
        .await;
    let team_id = team["id"].as_str().unwrap().to_string();
    docker(&["start", &node3]);
    let started = Instant::now();
    eventually(LIMIT, "node 3 catches up after restart", || async {
        let (s, _) = c
            .admin("GET", format!("{}/api/teams/{team_id}", NODES[2]), None)
            .await;
        (s == 200).then_some(())
    })
    .await;
    println!(
        "restarted node 3 had the missed write {:?} after start",
        started.elapsed()
    );
    until_all_joined(&c).await;

    // 3. Partition node 3 from the others (its clients still reach it):
    //    both sides serve, writes converge after healing, and spend never
    //    passes the budget.
    let cust = c
        .create(
            format!("{LB}/api/customers"),
            json!({"name": "metered", "budgets": [{"limit_usd": "0.002", "period": "1d"}]}),
        )
        .await;
    let cust_id = cust["id"].as_str().unwrap().to_string();
    let key = c
        .create(
            format!("{LB}/api/keys"),
            json!({"name": "metered", "customer_id": cust_id}),
        )
        .await;
    let metered = key["secret"].as_str().unwrap().to_string();
    for n in NODES {
        eventually(LIMIT, "the metered key works everywhere", || async {
            (c.chat(n, Some(&metered)).await == 200).then_some(())
        })
        .await;
    }
    let network = format!("{PROJECT}_cluster");
    let ip = docker(&[
        "inspect",
        "-f",
        &format!("{{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}}"),
        &node3,
    ]);
    docker(&["network", "disconnect", &network, &node3]);
    let mut served = [0u64; 3];
    let mut refused = 0;
    for round in 0..120 {
        let n = round % 3;
        match c.chat(NODES[n], Some(&metered)).await {
            200 => served[n] += 1,
            402 => refused += 1,
            other => panic!("unexpected status {other} from {}", NODES[n]),
        }
    }
    let left = c
        .create(
            format!("{}/api/customers", NODES[0]),
            json!({"name": "left-side"}),
        )
        .await;
    let right = c
        .create(
            format!("{}/api/customers", NODES[2]),
            json!({"name": "right-side"}),
        )
        .await;
    println!(
        "during the partition: served {served:?} (node1, node2, node3), {refused} refused for budget"
    );
    assert!(served[2] > 0, "the cut-off node kept serving");
    assert!(served[0] + served[1] > 0, "the other side kept serving");
    // Hold the cut until membership notices, so healing has to rejoin the
    // node and repair state rather than just let QUIC retransmit.
    let cut_seen = c.until_down(NODES[0], &node3_id).await;
    println!("partition detected by node 1 after {cut_seen:?}");
    docker(&[
        "network",
        "connect",
        "--ip",
        &ip,
        "--alias",
        "node3.cluster",
        &network,
        &node3,
    ]);
    let healed = Instant::now();
    for n in NODES {
        for id in [&left["id"], &right["id"]] {
            let id = id.as_str().unwrap();
            eventually(LIMIT, "both sides' writes reach every node", || async {
                let (s, _) = c
                    .admin("GET", format!("{n}/api/customers/{id}"), None)
                    .await;
                (s == 200).then_some(())
            })
            .await;
        }
    }
    println!(
        "writes of both sides everywhere {:?} after healing",
        healed.elapsed()
    );
    // Spend as each node's own request log counts it, summed: the true total.
    let cost = |v: &Value| -> u64 {
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|g| g["group"] == cust_id)
            .map(|g| g["cost_micros"].as_u64().unwrap())
            .sum()
    };
    let mut total = 0u64;
    for n in NODES {
        let (_, v) = c
            .admin(
                "GET",
                format!("{n}/api/spend?group_by=customer&node=local"),
                None,
            )
            .await;
        total += cost(&v);
    }
    // Any node's cluster-wide report says the same, once it sees every
    // node alive again (until then it names the ones it cannot ask).
    until_all_joined(&c).await;
    let (_, all) = c
        .admin(
            "GET",
            format!("{}/api/spend?group_by=customer", NODES[1]),
            None,
        )
        .await;
    assert!(all["missing_nodes"].as_array().unwrap().is_empty(), "{all}");
    assert_eq!(cost(&all), total, "{all}");
    println!(
        "budget 2000 µ$, spent {total} µ$ across the cluster (overshoot {} µ$)",
        total.saturating_sub(2000)
    );
    assert!(total <= 2000, "overspent: {total} µ$ of 2000");
    // And every node agrees on it once converged.
    eventually(LIMIT, "every node reports the same spend", || async {
        let mut seen = Vec::new();
        for n in NODES {
            let v: Value =
                c.0.get(format!("{n}/api/self"))
                    .bearer_auth(&metered)
                    .send()
                    .await
                    .ok()?
                    .json()
                    .await
                    .ok()?;
            seen.push(v["budgets"][0]["spent_usd"].clone());
        }
        (seen.iter().all(|s| *s == seen[0])).then_some(())
    })
    .await;

    // 4. Rolling restart of all three under continuous load: zero failures.
    until_all_joined(&c).await;
    let stop = Arc::new(AtomicBool::new(false));
    let total = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (stop, total, failed) = (stop.clone(), total.clone(), failed.clone());
        let client = Client(c.0.clone());
        load.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let s = client.chat(LB, None).await;
                total.fetch_add(1, Ordering::Relaxed);
                if s != 200 {
                    failed.fetch_add(1, Ordering::Relaxed);
                    eprintln!("failed request during rolling restart: status {s}");
                }
            }
        }));
    }
    for (i, service) in ["node1", "node2", "node3"].iter().enumerate() {
        let id = container(service);
        docker(&["restart", "-t", "45", &id]);
        c.until_ready(NODES[i]).await;
        until_all_joined(&c).await;
        // Only then restart the next: the load balancer must have this one
        // back, or the next restart leaves it one node short.
        c.until_in_rotation(service).await;
    }
    stop.store(true, Ordering::Relaxed);
    for l in load {
        l.await.unwrap();
    }
    let (total, failed) = (
        total.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
    );
    println!(
        "rolling restart under load: {total} requests through the load balancer, {failed} failed"
    );
    assert_eq!(failed, 0);
    assert!(total > 0);
}
