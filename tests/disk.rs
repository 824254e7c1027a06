//! A full disk, on a small tmpfs under a real node: while writes fail,
//! governed requests are refused with 503 and `/ready` fails; whatever the
//! node served it has recorded (after a `kill -9` and a restart nothing
//! served is uncharged, nothing charged is lost); and when there is room
//! again the node takes writes again by itself, without a restart. Needs
//! root (to mount the tmpfs); elsewhere it says so and checks nothing.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

const TOKEN: &str = "disk-admin-token-for-tests";

struct Tmpfs(std::path::PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes zeros to `path` (appending) until the filesystem refuses, to the
/// last byte it has.
fn fill(path: &Path) {
    let out = Command::new("dd")
        .args(["if=/dev/zero", "bs=64k", "oflag=append", "conv=notrunc"])
        .arg(format!("of={}", path.display()))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("No space left"),
        "dd stopped for another reason: {err}"
    );
}

async fn metric(gw: &Gateway, name: &str) -> u64 {
    let text = reqwest::get(gw.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics")) as u64
}

#[tokio::test]
async fn a_full_disk_refuses_governed_requests_and_the_node_recovers_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=32m", "tmpfs"])
        .arg(dir.path())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("SKIPPED: cannot mount a tmpfs here (needs root)");
        return;
    }
    let _unmount = Tmpfs(dir.path().to_path_buf());
    let mock = start_mock(&[]).await;
    let config = format!(
        "[server]\nadmin_token = \"{TOKEN}\"\n[pricing.\"mock-1\"]\ninput = 0\noutput = 1000000\n{}",
        mock_provider("mock", &mock, "")
    );
    let gw = Gateway::start_in(&config, dir).await;
    let client = reqwest::Client::new();
    let key: serde_json::Value = client
        .post(gw.url("/api/keys"))
        .bearer_auth(TOKEN)
        .json(&json!({"name": "k", "budgets": [{"limit_usd": "10", "period": "1d"}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = key["secret"].as_str().unwrap().to_string();
    let body = json!({"model": "mock/mock-1", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(chat_as(&gw, &secret, &body).await.0, 200);
    // Every request costs what the first one did (the mock is deterministic).
    let each = budgets_of(&gw, &secret).await[0].1;
    assert!(each > 0, "the first request was charged nothing");
    let mut served = 1u64;

    // Fill the disk to its last byte, then keep asking, 16 at a time, until
    // a write fails. RocksDB's write-ahead log has space preallocated, so it
    // takes some megabytes of records (request logs, the spend journal)
    // before one does; those requests were durably recorded and are served.
    let filler = gw.dir.path().join("filler");
    fill(&filler);
    let started = Instant::now();
    let mut refusal = None;
    let mut sent = 0u64;
    while refusal.is_none() {
        assert!(
            sent < 200_000,
            "{sent} requests on a full disk and no write ever failed"
        );
        let wave: Vec<_> = (0..16)
            .map(|_| {
                let req = client
                    .post(gw.url("/v1/chat/completions"))
                    .bearer_auth(&secret)
                    .json(&body);
                tokio::spawn(async move {
                    let r = req.send().await.unwrap();
                    let status = r.status().as_u16();
                    (status, r.json::<serde_json::Value>().await.ok())
                })
            })
            .collect();
        for t in wave {
            sent += 1;
            match t.await.unwrap() {
                (200, _) => served += 1,
                (503, v) => refusal = v,
                (other, v) => panic!("unexpected {other}: {v:?}"),
            }
        }
    }
    let refusal = refusal.unwrap();
    println!(
        "full disk: {sent} requests in {:?}, {served} served in all before the first 503: {refusal}",
        started.elapsed()
    );
    let message = refusal["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("spend cannot be recorded"),
        "the 503 does not say why: {refusal}"
    );
    assert!(metric(&gw, "tollgate_store_write_errors_total").await > 0);

    // Keep it full (a failed flush may have given some space back): every
    // governed request is refused and the node is not ready, while requests
    // that need no disk still work.
    fill(&filler);
    for _ in 0..20 {
        let (status, v) = chat_as(&gw, &secret, &body).await;
        assert_eq!(status, 503, "served on a full disk: {v}");
    }
    let ready = client.get(gw.url("/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    assert!(ready.text().await.unwrap().contains("cannot record spend"));
    assert_eq!(
        client.get(gw.url("/health")).send().await.unwrap().status(),
        200
    );
    let charged_while_full = budgets_of(&gw, &secret).await[0].1;

    // Room again: the node finds out by itself (nothing polls `/ready`
    // meanwhile) and serves governed requests again, without a restart.
    std::fs::remove_file(&filler).unwrap();
    let freed = Instant::now();
    let deadline = freed + Duration::from_secs(120);
    loop {
        if metric(&gw, "tollgate_store_writable").await == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the store never took writes again"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("writable again {:?} after space was freed", freed.elapsed());
    assert!(metric(&gw, "tollgate_store_recoveries_total").await >= 1);
    assert_eq!(
        client.get(gw.url("/ready")).send().await.unwrap().status(),
        200
    );
    for _ in 0..5 {
        let (status, v) = chat_as(&gw, &secret, &body).await;
        assert_eq!(status, 200, "refused after the disk had room again: {v}");
        served += 1;
    }

    // kill -9 and a restart: every served request is charged, and nothing
    // charged before is lost.
    let Gateway { proc, dir } = gw;
    drop(proc);
    let gw = Gateway::start_in(&config, dir).await;
    let charged = budgets_of(&gw, &secret).await[0].1;
    println!(
        "{served} requests of {each} µ$ served, {charged} µ$ charged (was {charged_while_full} µ$ while full)"
    );
    // Exactly: a request settled while writes failed keeps its journal
    // row until the next write that succeeds removes it together with the
    // counter that holds its spend, so nothing is charged twice either (and
    // every request costs exactly its reservation here).
    assert_eq!(
        charged,
        served * each,
        "{served} requests of {each} µ$ served, {charged} µ$ charged"
    );
    assert!(charged >= charged_while_full + 5 * each);
}
