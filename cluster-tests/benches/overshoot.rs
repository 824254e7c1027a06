//! The overshoot table: how far past a budget real clusters of real
//! processes (over QUIC) let spend go, scenario by scenario, at 1, 3 and 5
//! nodes. The mock always answers with as many tokens as it is allowed, at
//! 1 µ$ per output token, and clients send no `max_tokens`, so every request
//! the provider serves costs exactly the key's default cap.
//!
//!     cargo bench -p cluster-tests --bench overshoot
//!
//! Prints a Markdown table; `benches/README.md` keeps the last one. Figures
//! are measured, not asserted (the tests assert the bounds).
//!
//! Needs root for two scenarios (others run anyway): the partition cuts the
//! nodes' QUIC traffic with iptables rules on loopback, in a chain of its own
//! (`TOLLGATE_OVERSHOOT`) that is emptied when the cut heals, when the bench
//! fails and at the next start; the full disk puts each node's data on a
//! tmpfs of its own.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use cluster_tests::{Mock, Node};
use serde_json::{Value, json};

const SECRET: &str = "cluster-secret-for-the-overshoot-bench";
const ADMIN: &str = "admin-token-for-tests";
/// Output tokens per request, and so µ$ per request.
const CAP: u64 = 10;

struct Row {
    scenario: String,
    nodes: usize,
    limit: u64,
    served: u64,
    charged: u64,
}

async fn cluster(n: usize, mock: &Mock, dirs: &[tempfile::TempDir]) -> Vec<Node> {
    let mut env = mock.provider_env();
    env.retain(|(k, _)| *k != "TOLLGATE_PROVIDERS__MOCK__KEYS");
    env.push((
        "TOLLGATE_PROVIDERS__MOCK__HEADERS",
        r#"{"x-mock-words" = "50000", "x-mock-chunk-delay-ms" = "200"}"#.into(),
    ));
    // The same mock without the slow answers, for traffic that only has to
    // be plentiful (the full disk's flood).
    env.push(("TOLLGATE_PROVIDERS__FAST__KIND", "mock".into()));
    env.push((
        "TOLLGATE_PROVIDERS__FAST__BASE_URL",
        format!("http://{}/v1", mock.addr),
    ));
    // A node seen down this long loses what it holds beyond its lease's
    // ceiling to its deputy (the crash of a home; both sides of a cut).
    env.push(("TOLLGATE_CLUSTER__LEASE_TAKEOVER", "\"2s\"".into()));
    env.push(("TOLLGATE_PRICING__MOCK-1__INPUT", "0".into()));
    env.push(("TOLLGATE_PRICING__MOCK-1__OUTPUT", "1000000".into()));
    let mut nodes: Vec<Node> = Vec::new();
    for d in dirs.iter().take(n) {
        let seeds: Vec<_> = nodes.iter().map(|n| n.quic).collect();
        nodes.push(Node::start_with(SECRET, &seeds, d.path(), &env).await);
    }
    for node in &nodes {
        wait(|| async { node.alive_peers().await == n - 1 }).await;
    }
    nodes
}

async fn wait<F, Fut>(mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check().await {
        assert!(Instant::now() < deadline, "the cluster did not settle");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn admin(
    client: &reqwest::Client,
    method: reqwest::Method,
    node: &Node,
    path: &str,
    body: Value,
) -> Value {
    let r = client
        .request(method, node.url(path))
        .bearer_auth(ADMIN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.unwrap()
}

/// A team with a budget of `limit` µ$ made on node 1, and a key in it; once
/// every node knows the key.
async fn budgeted_key(client: &reqwest::Client, nodes: &[Node], limit: u64) -> (String, String) {
    let usd = format!("0.{limit:06}");
    let team = admin(
        client,
        reqwest::Method::POST,
        &nodes[0],
        "/api/teams",
        json!({"name": "t", "budgets": [{"limit_usd": usd, "period": "1d"}]}),
    )
    .await;
    let team_id = team["id"].as_str().unwrap().to_string();
    let key = admin(
        client,
        reqwest::Method::POST,
        &nodes[0],
        "/api/keys",
        json!({"name": "k", "team_id": team_id, "default_max_tokens": CAP}),
    )
    .await;
    let secret = key["secret"].as_str().unwrap().to_string();
    for n in nodes {
        wait(|| async { self_view(client, n, &secret).await.is_some() }).await;
    }
    (team_id, secret)
}

/// The team budget's spend as node `n` knows it, in µ$.
async fn self_view(client: &reqwest::Client, n: &Node, secret: &str) -> Option<u64> {
    let r = client
        .get(n.url("/api/self"))
        .bearer_auth(secret)
        .send()
        .await
        .ok()?;
    if !r.status().is_success() {
        return None;
    }
    let v: Value = r.json().await.ok()?;
    let spent = v["budgets"].as_array()?.first()?["spent_usd"].as_str()?;
    tollgate::governance::budgets::Usd::parse(spent)
        .ok()
        .map(|u| u.0)
}

/// What the cluster charged, once every node agrees.
async fn charged(client: &reqwest::Client, nodes: &[Node], secret: &str) -> u64 {
    let mut last = None;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut views = Vec::new();
        for n in nodes {
            views.push(self_view(client, n, secret).await);
        }
        let agreed = views.windows(2).all(|w| w[0] == w[1]);
        if agreed && views[0].is_some() && last == views[0] {
            return views[0].unwrap();
        }
        last = if agreed { views[0] } else { None };
        assert!(Instant::now() < deadline, "nodes never agreed: {views:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// `count` requests at once, spread over `nodes`; how many were served.
async fn burst(client: &reqwest::Client, nodes: &[&Node], secret: &str, count: usize) -> u64 {
    let statuses = burst_statuses(client, nodes, secret, count).await;
    statuses.iter().filter(|s| **s == 200).count() as u64
}

/// `count` requests at once to `node` through the fast provider; how many
/// were served.
async fn flood(client: &reqwest::Client, node: &Node, secret: &str, count: usize) -> usize {
    let tasks: Vec<_> = (0..count)
        .map(|_| {
            let req = client
                .post(node.url("/v1/chat/completions"))
                .bearer_auth(secret)
                .json(&json!({"model": "fast/mock-1", "messages": [{"role": "user", "content": "hi"}]}));
            tokio::spawn(async move { req.send().await.is_ok_and(|r| r.status() == 200) })
        })
        .collect();
    let mut served = 0;
    for t in tasks {
        served += usize::from(t.await.unwrap());
    }
    served
}

/// `count` requests at once, spread over `nodes`; their statuses.
async fn burst_statuses(
    client: &reqwest::Client,
    nodes: &[&Node],
    secret: &str,
    count: usize,
) -> Vec<u16> {
    let tasks: Vec<_> = (0..count)
        .map(|i| {
            let req = client
                .post(nodes[i % nodes.len()].url("/v1/chat/completions"))
                .bearer_auth(secret)
                .json(&json!({"model": "mock/mock-1", "messages": [{"role": "user", "content": "all of it"}]}));
            tokio::spawn(async move { req.send().await.map(|r| r.status().as_u16()).unwrap_or(0) })
        })
        .collect();
    let mut statuses = Vec::with_capacity(count);
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    statuses
}

/// Concurrent requests on every node against one budget.
async fn concurrency(n: usize, mock: &Mock) -> Row {
    let dirs: Vec<_> = (0..n).map(|_| tempfile::tempdir().unwrap()).collect();
    let nodes = cluster(n, mock, &dirs).await;
    let client = reqwest::Client::new();
    let limit = 1_000;
    let (_, secret) = budgeted_key(&client, &nodes, limit).await;
    let all: Vec<&Node> = nodes.iter().collect();
    let mut served = 0;
    for _ in 0..3 {
        served += burst(&client, &all, &secret, 100).await;
    }
    Row {
        scenario: "concurrency (3 × 100 at once)".into(),
        nodes: n,
        limit,
        served: served * CAP,
        charged: charged(&client, &nodes, &secret).await,
    }
}

/// 80% spent through node 1, the budget raised by 1% through the last node,
/// then bursts everywhere.
async fn home_move(n: usize, mock: &Mock) -> Row {
    let dirs: Vec<_> = (0..n).map(|_| tempfile::tempdir().unwrap()).collect();
    let nodes = cluster(n, mock, &dirs).await;
    let client = reqwest::Client::new();
    let limit = 1_000;
    let (team, secret) = budgeted_key(&client, &nodes, limit).await;
    let mut served = burst(&client, &[&nodes[0]], &secret, 80).await;
    let raised = 1_010;
    admin(
        &client,
        reqwest::Method::PATCH,
        nodes.last().unwrap(),
        &format!("/api/teams/{team}"),
        json!({"budgets": [{"limit_usd": format!("0.{raised:06}"), "period": "1d"}]}),
    )
    .await;
    let all: Vec<&Node> = nodes.iter().collect();
    for _ in 0..3 {
        served += burst(&client, &all, &secret, 100).await;
    }
    Row {
        scenario: "budget edited on another node (80% spent, +1%)".into(),
        nodes: n,
        limit: raised,
        served: served * CAP,
        charged: charged(&client, &nodes, &secret).await,
    }
}

/// 20 streams in flight on node 1, then `kill -9` and a restart.
async fn crash(n: usize, mock: &Mock) -> Row {
    let dirs: Vec<_> = (0..n).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut nodes = cluster(n, mock, &dirs).await;
    let client = reqwest::Client::new();
    let limit = 1_000;
    let (_, secret) = budgeted_key(&client, &nodes, limit).await;
    let mut streams = Vec::new();
    for _ in 0..20 {
        let mut r = client
            .post(nodes[0].url("/v1/chat/completions"))
            .bearer_auth(&secret)
            .json(&json!({"model": "mock/mock-1", "stream": true,
                          "messages": [{"role": "user", "content": "all of it"}]}))
            .send()
            .await
            .unwrap();
        if r.status() == 200 && r.chunk().await.ok().flatten().is_some() {
            streams.push(r);
        }
    }
    let served = streams.len() as u64;
    let first = nodes.remove(0);
    let restarted = first.restart().await;
    drop(streams);
    nodes.insert(0, restarted);
    Row {
        scenario: "kill -9 with 20 streams in flight".into(),
        nodes: n,
        limit,
        served: served * CAP,
        charged: charged(&client, &nodes, &secret).await,
    }
}

/// How many ceilings `node`'s deputies granted it (its metrics).
async fn leases_granted(node: &Node) -> u64 {
    node.counter("tollgate_cluster_allowance_total{event=\"lease_granted\"}")
        .await
}

/// The budget's home (node 1) killed with `kill -9` while it holds most of
/// the limit: the others serve what its deputy takes over once it has been
/// down for `lease_takeover`, then the home, restarted, what its ceiling
/// left it.
async fn home_crash(n: usize, mock: &Mock) -> Row {
    let dirs: Vec<_> = (0..n).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut nodes = cluster(n, mock, &dirs).await;
    let client = reqwest::Client::new();
    let limit = 1_000;
    let (_, secret) = budgeted_key(&client, &nodes, limit).await;
    wait(|| async { leases_granted(&nodes[0]).await > 0 }).await;
    let mut served = burst(&client, &[&nodes[0]], &secret, 5).await;
    let mut home = nodes.remove(0);
    let _ = home.child.kill();
    let _ = home.child.wait();
    let killed = Instant::now();
    let rest: Vec<&Node> = nodes.iter().collect();
    loop {
        let s = burst(&client, &rest, &secret, 1).await;
        if s > 0 {
            served += s;
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(60),
            "nothing came back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let back = killed.elapsed();
    loop {
        let s = burst(&client, &rest, &secret, 60).await;
        served += s;
        if s == 0 {
            break;
        }
    }
    let home = home.restart().await;
    wait(|| async { home.alive_peers().await == n - 1 }).await;
    served += burst(&client, &[&home], &secret, 20).await;
    nodes.insert(0, home);
    Row {
        scenario: format!(
            "home kill -9 holding the limit; back by lease in {:.1} s",
            back.as_secs_f64()
        ),
        nodes: n,
        limit,
        served: served * CAP,
        charged: charged(&client, &nodes, &secret).await,
    }
}

const CHAIN: &str = "TOLLGATE_OVERSHOOT";

fn iptables(args: &[&str]) -> bool {
    Command::new("iptables")
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The bench's own iptables chain, jumped to from `INPUT` and empty; false
/// when this process may not change the firewall.
fn firewall_ready() -> bool {
    let _ = iptables(&["-N", CHAIN]);
    if !iptables(&["-F", CHAIN]) {
        return false;
    }
    iptables(&["-C", "INPUT", "-j", CHAIN]) || iptables(&["-I", "INPUT", "-j", CHAIN])
}

/// A network cut between two groups of nodes: their QUIC datagrams to each
/// other are dropped (HTTP from clients still reaches every node). Healed
/// on drop, so also when the bench panics.
struct Cut;

impl Cut {
    fn new(a: &[&Node], b: &[&Node]) -> Cut {
        for x in a {
            for y in b {
                for (from, to) in [(x.quic, y.quic), (y.quic, x.quic)] {
                    let (sport, dport) = (from.port().to_string(), to.port().to_string());
                    assert!(
                        iptables(&[
                            "-A",
                            CHAIN,
                            "-p",
                            "udp",
                            "-s",
                            "127.0.0.1",
                            "-d",
                            "127.0.0.1",
                            "--sport",
                            &sport,
                            "--dport",
                            &dport,
                            "-j",
                            "DROP",
                        ]),
                        "cannot add an iptables rule"
                    );
                }
            }
        }
        Cut
    }
}

impl Drop for Cut {
    fn drop(&mut self) {
        let _ = iptables(&["-F", CHAIN]);
    }
}

/// The last node (3 nodes) or two (5 nodes) cut off from the rest while
/// clients keep sending to both sides; then healed, and both sides send
/// again once membership has them all back.
async fn partition(n: usize, mock: &Mock) -> Row {
    let dirs: Vec<_> = (0..n).map(|_| tempfile::tempdir().unwrap()).collect();
    let nodes = cluster(n, mock, &dirs).await;
    let client = reqwest::Client::new();
    let limit = 1_000;
    let (_, secret) = budgeted_key(&client, &nodes, limit).await;
    let all: Vec<&Node> = nodes.iter().collect();
    // Some spend everywhere first, so allowance has spread.
    let mut served = burst(&client, &all, &secret, 30).await;
    let (big, small) = all.split_at(n - if n >= 5 { 2 } else { 1 });
    {
        let _cut = Cut::new(big, small);
        wait(|| async { nodes[0].alive_peers().await == big.len() - 1 }).await;
        for _ in 0..3 {
            served += burst(&client, big, &secret, 50).await;
            served += burst(&client, small, &secret, 50).await;
        }
    }
    for node in &nodes {
        wait(|| async { node.alive_peers().await == n - 1 }).await;
    }
    served += burst(&client, &all, &secret, 100).await;
    // Once anti-entropy has run (1 s, jittered), every node knows what the
    // other side took over and asks the right peer for it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    served += burst(&client, &all, &secret, 100).await;
    Row {
        scenario: format!(
            "partition ({} cut off from {}), healed",
            small.len(),
            big.len()
        ),
        nodes: n,
        limit,
        served: served * CAP,
        charged: charged(&client, &nodes, &secret).await,
    }
}

/// A tmpfs mounted on a directory; unmounted on drop.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Tmpfs(dir))
    }

    fn path(&self) -> &Path {
        self.0.path()
    }

    /// Fills it to the last byte (appending to a filler file).
    fn fill(&self) {
        let _ = Command::new("dd")
            .args(["if=/dev/zero", "bs=64k", "oflag=append", "conv=notrunc"])
            .arg(format!("of={}", self.path().join("filler").display()))
            .output();
    }

    fn free(&self) {
        let _ = std::fs::remove_file(self.path().join("filler"));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0.path()).status();
    }
}

/// Every node's data on a tmpfs of its own, filled to the last byte; then
/// requests of another key, without a budget, flow until each node's
/// database refuses writes (its write-ahead log had some megabytes set
/// aside); budgeted requests meanwhile and while the disks stay full; then
/// the space is freed (the nodes take writes again by themselves), more
/// budgeted requests, and every node is killed with `kill -9` and restarted.
async fn disk_full(n: usize, mock: &Mock) -> Option<Row> {
    let disks: Vec<Tmpfs> = (0..n).map(|_| Tmpfs::mount("32m")).collect::<Option<_>>()?;
    let dirs: Vec<_> = disks
        .iter()
        .map(|d| tempfile::tempdir_in(d.path()).unwrap())
        .collect();
    let mut nodes = cluster(n, mock, &dirs).await;
    let client = reqwest::Client::new();
    let limit = 1_000;
    let (_, secret) = budgeted_key(&client, &nodes, limit).await;
    let other = admin(
        &client,
        reqwest::Method::POST,
        &nodes[0],
        "/api/keys",
        json!({"name": "no budget", "default_max_tokens": CAP}),
    )
    .await["secret"]
        .as_str()
        .unwrap()
        .to_string();
    for node in &nodes {
        wait(|| async { flood(&client, node, &other, 1).await == 1 }).await;
    }
    let all: Vec<&Node> = nodes.iter().collect();
    let mut served = burst(&client, &all, &secret, 20).await;
    let mut refused = 0;
    for d in &disks {
        d.fill();
    }
    let ready = |node: &Node| {
        let req = client.get(node.url("/ready"));
        async move { req.send().await.is_ok_and(|r| r.status() == 200) }
    };
    for node in &nodes {
        let mut waves = 0;
        while ready(node).await {
            assert!(waves < 10_000, "the disk never refused a write");
            flood(&client, node, &other, 64).await;
            // A budgeted request now and then, so most of the budget is
            // left when the disks refuse writes.
            if waves % 8 == 0 {
                let statuses = burst_statuses(&client, &all, &secret, 1).await;
                served += statuses.iter().filter(|s| **s == 200).count() as u64;
                refused += statuses.iter().filter(|s| **s == 503).count();
            }
            waves += 1;
        }
    }
    for _ in 0..3 {
        for d in &disks {
            d.fill();
        }
        let statuses = burst_statuses(&client, &all, &secret, 100).await;
        served += statuses.iter().filter(|s| **s == 200).count() as u64;
        refused += statuses.iter().filter(|s| **s == 503).count();
    }
    for d in &disks {
        d.free();
    }
    for node in &nodes {
        wait(|| ready(node)).await;
    }
    for _ in 0..3 {
        served += burst(&client, &all, &secret, 100).await;
    }
    let mut restarted = Vec::new();
    for node in nodes.drain(..) {
        restarted.push(node.restart().await);
    }
    Some(Row {
        scenario: format!(
            "disk full while requests flow ({refused} refused with 503), freed, kill -9"
        ),
        nodes: n,
        limit,
        served: served * CAP,
        charged: charged(&client, &restarted, &secret).await,
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mock = Mock::start().await;
    let firewall = firewall_ready();
    if !firewall {
        eprintln!("no partition rows: cannot change the firewall (needs root and iptables)");
    }
    // `OVERSHOOT_SCENARIOS=partition,disk` and `OVERSHOOT_NODES=3` pick a
    // part of the table (all of it by default).
    let picked = std::env::var("OVERSHOOT_SCENARIOS").ok();
    let run = |name: &str| {
        picked
            .as_ref()
            .is_none_or(|p| p.split(',').any(|s| s == name))
    };
    let sizes: Vec<usize> = std::env::var("OVERSHOOT_NODES")
        .ok()
        .map(|v| {
            v.split(',')
                .map(|n| n.parse().expect("OVERSHOOT_NODES: node counts"))
                .collect()
        })
        .unwrap_or_else(|| vec![1, 3, 5]);
    let mut rows = Vec::new();
    for n in sizes {
        if run("concurrency") {
            rows.push(concurrency(n, &mock).await);
        }
        if n > 1 && run("home_move") {
            rows.push(home_move(n, &mock).await);
        }
        if n > 1 && firewall && run("partition") {
            rows.push(partition(n, &mock).await);
        }
        if run("crash") {
            rows.push(crash(n, &mock).await);
        }
        if n > 1 && run("home_crash") {
            rows.push(home_crash(n, &mock).await);
        }
        if run("disk") {
            match disk_full(n, &mock).await {
                Some(row) => rows.push(row),
                None => eprintln!("no disk rows: cannot mount a tmpfs (needs root)"),
            }
        }
    }
    if firewall {
        let _ = iptables(&["-D", "INPUT", "-j", CHAIN]);
        let _ = iptables(&["-X", CHAIN]);
    }
    println!(
        "| scenario | nodes | limit µ$ | served µ$ (provider's bill) | charged µ$ | overshoot µ$ | uncharged µ$ |"
    );
    println!("|---|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            r.scenario,
            r.nodes,
            r.limit,
            r.served,
            r.charged,
            r.served.saturating_sub(r.limit),
            r.served.saturating_sub(r.charged),
        );
    }
}
