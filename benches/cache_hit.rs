//! The response cache's hit path through the real binary: gateway time of an
//! exact hit and of a semantic hit (embedding included) with 10 k, 100 k and
//! 1 M answers cached, the time to rebuild the index at start, and the
//! memory each cached answer adds, beside the mock answering the same
//! request directly. Printed, not asserted (`benches/README.md`).
//!
//! ```sh
//! cargo bench --bench cache_hit                          # 10k,100k,1M; fetches the model if needed
//! CACHE_ENTRIES=10000 CACHE_PROBES=200 cargo test --bench cache_hit   # quick, debug
//! ```
//!
//! For each size a data directory is filled through the library
//! (`CacheStore::put`, the same rows the gateway writes) with that many
//! answers in **one partition** — the worst case for the index: one tenant,
//! one model, one system prompt, only the question differs. The questions
//! are generated from templates ("How do I parse a CSV file in Rust
//! without a library?"), so they have close neighbours, and embedded with
//! the real model. Then the gateway starts on that directory (ready at
//! once; the bench waits until `GET /api/cache` says the stored questions
//! are indexed, and reports both times), and is sent, one at a time, stored
//! questions verbatim (exact hits) and reworded ones (lower case, "how can
//! i" for "How do I", no question mark) with `x-tollgate-cache-threshold`
//! set to `CACHE_THRESHOLD` (default 0.85, below most rewordings'
//! similarity, which the bench prints): semantic hits, and which stored
//! answer each one was served. Gateway time is the `x-tollgate-overhead-us` the
//! gateway reports on each answer (all of a hit's time is the gateway's);
//! the client's round trip is shown too, with the mock's own round trip for
//! the same request as the direct baseline.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tollgate::cache::embed::Embedder;
use tollgate::cache::key::{self, Scope};
use tollgate::cache::store::{CacheStore, Entry, Question};
use tollgate::store::Store;
use tollgate::translate::Format;

mod support;

use support::{Proc, free_addr, model_dir, status_kib, wait_up};

const BIN: &str = env!("CARGO_BIN_EXE_tollgate");
const TARGET: &str = "mock/mock-1";

const VERBS: [&str; 24] = [
    "parse",
    "sort",
    "reverse",
    "serialize",
    "deduplicate",
    "merge",
    "filter",
    "compress",
    "encrypt",
    "validate",
    "stream",
    "cache",
    "paginate",
    "index",
    "split",
    "join",
    "hash",
    "format",
    "benchmark",
    "test",
    "profile",
    "log",
    "retry",
    "schedule",
];
const OBJECTS: [&str; 24] = [
    "a CSV file",
    "a JSON document",
    "a list of numbers",
    "a dictionary",
    "dates and times",
    "unicode strings",
    "an HTTP response",
    "a binary tree",
    "a database query",
    "log lines",
    "environment variables",
    "command line arguments",
    "a YAML config",
    "an image",
    "a large text file",
    "a websocket message",
    "a linked list",
    "a matrix",
    "XML",
    "a URL",
    "a zip archive",
    "a priority queue",
    "a graph",
    "a time series",
];
const LANGS: [&str; 20] = [
    "Python",
    "Rust",
    "Go",
    "Java",
    "JavaScript",
    "TypeScript",
    "C++",
    "C",
    "Ruby",
    "PHP",
    "Kotlin",
    "Swift",
    "Scala",
    "Haskell",
    "Elixir",
    "C#",
    "Bash",
    "Lua",
    "Perl",
    "R",
];
const EXTRAS: [&str; 24] = [
    "",
    "quickly",
    "safely",
    "without a library",
    "in place",
    "for large inputs",
    "with the standard library",
    "in parallel",
    "lazily",
    "with error handling",
    "in one line",
    "without copying",
    "on Windows",
    "in a web server",
    "with tests",
    "idiomatically",
    "with low memory",
    "asynchronously",
    "for beginners",
    "in production",
    "with a streaming API",
    "incrementally",
    "with type hints",
    "step by step",
];

/// The `i`-th generated question (distinct for every `i` below 276,480 per
/// suffix; a numbered suffix makes larger sets distinct too).
fn question(i: usize) -> String {
    let (v, rest) = (i % VERBS.len(), i / VERBS.len());
    let (o, rest) = (rest % OBJECTS.len(), rest / OBJECTS.len());
    let (l, rest) = (rest % LANGS.len(), rest / LANGS.len());
    let (e, round) = (rest % EXTRAS.len(), rest / EXTRAS.len());
    let mut q = format!("How do I {} {} in {}", VERBS[v], OBJECTS[o], LANGS[l]);
    if !EXTRAS[e].is_empty() {
        q.push(' ');
        q.push_str(EXTRAS[e]);
    }
    if round > 0 {
        q.push_str(&format!(" (case {round})"));
    }
    q.push('?');
    q
}

/// The same question reworded: what a semantic hit is probed with.
fn reworded(q: &str) -> String {
    q.replacen("How do I", "how can i", 1)
        .trim_end_matches('?')
        .to_lowercase()
}

fn body(q: &str) -> Vec<u8> {
    serde_json::json!({"model": TARGET, "messages": [
        {"role": "system", "content": "You are a concise programming assistant."},
        {"role": "user", "content": q}]})
    .to_string()
    .into_bytes()
}

fn answer(i: usize) -> Vec<u8> {
    serde_json::json!({"id": format!("chatcmpl-{i}"), "object": "chat.completion", "created": 1,
        "model": "mock-1", "choices": [{"index": 0, "finish_reason": "stop",
            "message": {"role": "assistant", "content": format!("Answer number {i}: use the standard library's parser, check each field, and report the line of the first error you meet.")}}],
        "usage": {"prompt_tokens": 30, "completion_tokens": 25, "total_tokens": 55}})
    .to_string()
    .into_bytes()
}

/// Fills `dir` with `n` cached answers, as a keyless caller's requests
/// through the gateway would have stored them.
fn fill(dir: &Path, n: usize, e: &Embedder) -> Duration {
    let t = Instant::now();
    // Where the node keeps its database (`node::run`: `data_dir/db`).
    let store = Store::open(&dir.join("db")).unwrap();
    let cache = CacheStore::open(store.clone(), u64::MAX / 4, 0, None).unwrap();
    let scope = Scope {
        tenant: "anonymous",
        target: TARGET,
        upstream: Format::OpenAi,
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    for i in 0..n {
        let q = question(i);
        let keys = key::keys(Format::OpenAi, &body(&q), &scope).unwrap();
        let sem = keys.semantic.expect("a question ends the request");
        let entry = Entry {
            body: &answer(i),
            cost_micros: 75,
            target: TARGET,
            now_ms: now,
            ttl_ms: 24 * 3_600_000,
            question: Some(Question {
                model: e.fingerprint(),
                partition: sem.partition,
                vector: e.embed(&sem.text).unwrap(),
            }),
            asker: None,
        };
        cache.put(&keys.exact, &entry).unwrap();
    }
    store.flush().unwrap();
    t.elapsed()
}

fn start(dir: &Path, model: &Path, mock: SocketAddr) -> (Proc, SocketAddr, Duration) {
    let addr = free_addr();
    let cfg = dir.join("tollgate.toml");
    std::fs::write(
        &cfg,
        format!(
            "[cache]\nenabled = true\nmax_bytes = {}\n[cache.semantic]\nenabled = true\nmodel = \"{}\"\n\
             [providers.mock]\nkind = \"mock\"\nbase_url = \"http://{mock}/v1\"\n",
            u64::MAX / 4,
            model.display()
        ),
    )
    .unwrap();
    let t = Instant::now();
    let child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&cfg)
        .env("TOLLGATE_SERVER__LISTEN", addr.to_string())
        .env("TOLLGATE_SERVER__DATA_DIR", dir)
        .env("TOLLGATE_SERVER__ADMIN_TOKEN", ADMIN)
        .env("TOLLGATE_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let proc = Proc(child);
    wait_up(addr, "/ready", Duration::from_secs(1800));
    (proc, addr, t.elapsed())
}

const ADMIN: &str = "cache-bench-admin-token-0123456789";

/// Waits until the gateway at `addr` has indexed the stored questions
/// (`indexing` in `GET /api/cache` is false); how long that took since
/// `since`.
async fn indexed(client: &reqwest::Client, addr: SocketAddr, since: Instant) -> Duration {
    loop {
        let v: serde_json::Value = client
            .get(format!("http://{addr}/api/cache"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if v["indexing"] == false {
            return since.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What one kind of probe saw: gateway time (µs) and round trips by the
/// answer's cache status, and each probe's status and answer text.
#[derive(Default)]
struct Probe {
    overhead_us: std::collections::BTreeMap<String, Vec<u64>>,
    round_trip: std::collections::BTreeMap<String, Vec<Duration>>,
    answers: Vec<(String, String)>,
}

async fn probe(
    client: &reqwest::Client,
    url: &str,
    bodies: &[Vec<u8>],
    headers: &[(&str, String)],
) -> Probe {
    let mut p = Probe::default();
    for b in bodies {
        let t = Instant::now();
        let mut req = client
            .post(url)
            .header("content-type", "application/json")
            .body(b.clone());
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let r = req.send().await.unwrap();
        let h = |n: &str| r.headers().get(n).map(|v| v.to_str().unwrap().to_string());
        let kind = match (h("x-tollgate-cache"), h("x-tollgate-cache-type")) {
            (Some(c), Some(t)) => format!("{c} {t}"),
            (Some(c), None) => c,
            _ => "direct".into(),
        };
        if let Some(o) = h("x-tollgate-overhead-us") {
            p.overhead_us
                .entry(kind.clone())
                .or_default()
                .push(o.parse().unwrap());
        }
        assert_eq!(r.status(), 200);
        let text = String::from_utf8_lossy(&r.bytes().await.unwrap()).into_owned();
        p.round_trip
            .entry(kind.clone())
            .or_default()
            .push(t.elapsed());
        p.answers.push((kind, text));
    }
    p.overhead_us.values_mut().for_each(|v| v.sort());
    p.round_trip.values_mut().for_each(|v| v.sort());
    p
}

fn q<T: Copy>(v: &[T], at: f64) -> Option<T> {
    (!v.is_empty()).then(|| v[((v.len() - 1) as f64 * at).round() as usize])
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let sizes: Vec<usize> = std::env::var("CACHE_ENTRIES")
        .unwrap_or_else(|_| "10000,100000,1000000".into())
        .split(',')
        .map(|s| s.trim().parse().expect("CACHE_ENTRIES: numbers"))
        .collect();
    let probes: usize = std::env::var("CACHE_PROBES")
        .ok()
        .map_or(2000, |s| s.parse().expect("CACHE_PROBES: a number"));
    let model = model_dir();
    let embedder = Embedder::load(&model).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let mock_addr = free_addr();
    let _mock = Proc(
        Command::new(BIN)
            .args(["mock", "--listen", &mock_addr.to_string()])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_up(mock_addr, "/v1/models", Duration::from_secs(30));
    let client = reqwest::Client::new();

    // The empty gateway's memory, to subtract.
    let empty = tempfile::tempdir().unwrap();
    let (gw, _, _) = start(empty.path(), &model, mock_addr);
    std::thread::sleep(Duration::from_millis(500));
    let base_rss = status_kib(gw.0.id(), "VmRSS:").unwrap_or(0);
    drop(gw);

    println!(
        "{} probes of each kind, one at a time; all entries in one partition (cores: {})\n",
        probes,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let threshold: f32 = std::env::var("CACHE_THRESHOLD")
        .ok()
        .map_or(0.85, |s| s.parse().expect("CACHE_THRESHOLD: a number"));
    println!(
        "| entries | fill | ready | indexed | RSS added per entry | probe | answered | n | gateway p50 | gateway p99 | round trip p50 | round trip p99 |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut notes = Vec::new();
    for n in sizes {
        let dir = tempfile::tempdir().unwrap();
        let filled = fill(dir.path(), n, &embedder);
        let t = Instant::now();
        let (gw, addr, ready) = start(dir.path(), &model, mock_addr);
        let indexed = rt.block_on(indexed(&client, addr, t));
        let rss = status_kib(gw.0.id(), "VmRSS:").unwrap_or(0);
        let per_entry = (rss.saturating_sub(base_rss) as f64 * 1024.0) / n as f64;
        let url = format!("http://{addr}/v1/chat/completions");
        let stride = (n / probes.max(1)).max(1);
        let picked: Vec<usize> = (0..probes).map(|i| (i * stride + i) % n).collect();
        let exact: Vec<Vec<u8>> = picked.iter().map(|&i| body(&question(i))).collect();
        let semantic: Vec<Vec<u8>> = picked
            .iter()
            .map(|&i| body(&reworded(&question(i))))
            .collect();
        let sims: Vec<f32> = picked
            .iter()
            .map(|&i| {
                let q = question(i);
                let a = embedder.embed(&q).unwrap();
                let b = embedder.embed(&reworded(&q)).unwrap();
                a.iter().zip(&b).map(|(x, y)| x * y).sum()
            })
            .collect();
        let direct: Vec<Vec<u8>> = picked
            .iter()
            .take(probes.min(500))
            .map(|&i| {
                serde_json::json!({"model": "mock-1", "messages": [
                    {"role": "system", "content": "You are a concise programming assistant."},
                    {"role": "user", "content": question(i)}]})
                .to_string()
                .into_bytes()
            })
            .collect();
        let at = [("x-tollgate-cache-threshold", threshold.to_string())];
        let runs = rt.block_on(async {
            // Warm the connection and the page cache.
            probe(&client, &url, &exact[..exact.len().min(50)], &[]).await;
            vec![
                ("exact", probe(&client, &url, &exact, &[]).await),
                ("reworded", probe(&client, &url, &semantic, &at).await),
                (
                    "mock direct",
                    probe(
                        &client,
                        &format!("http://{mock_addr}/v1/chat/completions"),
                        &direct,
                        &[],
                    )
                    .await,
                ),
            ]
        });
        for (kind, p) in &runs {
            for (answered, us) in &p.overhead_us {
                let trips = &p.round_trip[answered];
                let fmt_us = |d: Option<u64>| d.map_or("—".into(), |v| format!("{v} µs"));
                let rt_us = |d: Option<Duration>| {
                    d.map_or("—".into(), |v| format!("{:.0} µs", v.as_secs_f64() * 1e6))
                };
                println!(
                    "| {n} | {:.1} s | {:.1} s | {:.1} s | {per_entry:.0} B | {kind} | {answered} | {} | {} | {} | {} | {} |",
                    filled.as_secs_f64(),
                    ready.as_secs_f64(),
                    indexed.as_secs_f64(),
                    us.len(),
                    fmt_us(q(us, 0.5)),
                    fmt_us(q(us, 0.99)),
                    rt_us(q(trips, 0.5)),
                    rt_us(q(trips, 0.99)),
                );
            }
            if p.overhead_us.is_empty() {
                let trips: Vec<Duration> = p.round_trip.values().flatten().copied().collect();
                let mut trips = trips;
                trips.sort();
                let rt_us = |d: Option<Duration>| {
                    d.map_or("—".into(), |v| format!("{:.0} µs", v.as_secs_f64() * 1e6))
                };
                println!(
                    "| {n} | | | | | {kind} | | {} | — | — | {} | {} |",
                    trips.len(),
                    rt_us(q(&trips, 0.5)),
                    rt_us(q(&trips, 0.99)),
                );
            }
        }
        // Which stored answer each reworded probe was served: its own
        // question's, or a neighbour's.
        let (_, reworded_run) = &runs[1];
        let mut right = 0;
        let mut wrong = 0;
        for ((answered, text), &i) in reworded_run.answers.iter().zip(&picked) {
            if answered == "hit semantic" {
                if text.contains(&format!("Answer number {i}:")) {
                    right += 1;
                } else {
                    wrong += 1;
                }
            }
        }
        let mut sorted = sims.clone();
        sorted.sort_by(f32::total_cmp);
        notes.push(format!(
            "{n} entries: reworded probes at threshold {threshold}: {right} served their own question's answer, {wrong} a neighbour's; similarity of each reworded probe to its own question p10 {:.3}, p50 {:.3}, p90 {:.3}",
            q(&sorted, 0.1).unwrap_or(0.0),
            q(&sorted, 0.5).unwrap_or(0.0),
            q(&sorted, 0.9).unwrap_or(0.0),
        ));
        drop(gw);
    }
    println!();
    for n in notes {
        println!("{n}");
    }
}
