//! Convergence time of a write across a 3-node cluster on loopback: a
//! benchmark, not a check (ignored by default; `benches/README.md` says how
//! to run it). Each write is a customer created on node 1; the time is from
//! the moment the admin API answered to the moment nodes 2 and 3 both serve
//! the object, polled every 200 µs.

use std::time::{Duration, Instant};

use cluster_tests::{Node, eventually};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: cargo test -p cluster-tests --test convergence -- --ignored --nocapture"]
async fn write_convergence_across_three_nodes() {
    const SECRET: &str = "cluster-secret-for-benchmarks-0123";
    let writes: usize = std::env::var("CONVERGENCE_WRITES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let n1 = Node::start(SECRET, &[], dirs[0].path()).await;
    let n2 = Node::start(SECRET, &[n1.quic], dirs[1].path()).await;
    let n3 = Node::start(SECRET, &[n1.quic], dirs[2].path()).await;
    for n in [&n1, &n2, &n3] {
        eventually(Duration::from_secs(30), "cluster formed", || async {
            (n.alive_peers().await == 2).then_some(())
        })
        .await;
    }
    let client = reqwest::Client::new();
    let mut times = Vec::with_capacity(writes);
    for i in 0..writes {
        let (status, c) = n1
            .admin_post("/api/customers", json!({"name": format!("c{i}")}))
            .await;
        assert_eq!(status, 201);
        let written = Instant::now();
        let id = c["id"].as_str().unwrap();
        for n in [&n2, &n3] {
            let url = n.url(&format!("/api/customers/{id}"));
            loop {
                let r = client
                    .get(&url)
                    .bearer_auth("admin-token-for-tests")
                    .send()
                    .await
                    .unwrap();
                if r.status() == 200 {
                    break;
                }
                assert!(
                    written.elapsed() < Duration::from_secs(30),
                    "never converged"
                );
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
        }
        times.push(written.elapsed());
    }
    times.sort();
    let pct = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)];
    println!(
        "convergence of a write to 2 peers over {writes} writes: p50 {:?}, p99 {:?}, max {:?}",
        pct(0.50),
        pct(0.99),
        times[times.len() - 1]
    );
}
