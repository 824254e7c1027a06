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
//! the real model. Then the gateway starts on that directory, rebuilds its
//! index, and is sent, one at a time, stored questions verbatim (exact hits)
//! and reworded ones (lower case, "how can i" for "How do I", no question
//! mark: semantic hits). Gateway time is the `x-tollgate-overhead-us` the
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
        .env("TOLLGATE_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let proc = Proc(child);
    wait_up(addr, "/ready", Duration::from_secs(1800));
    (proc, addr, t.elapsed())
}

struct Probe {
    overhead_us: Vec<u64>,
    round_trip: Vec<Duration>,
    kinds: std::collections::BTreeMap<String, usize>,
}

async fn probe(client: &reqwest::Client, url: &str, bodies: &[Vec<u8>]) -> Probe {
    let mut p = Probe {
        overhead_us: Vec::new(),
        round_trip: Vec::new(),
        kinds: Default::default(),
    };
    for b in bodies {
        let t = Instant::now();
        let r = client
            .post(url)
            .header("content-type", "application/json")
            .body(b.clone())
            .send()
            .await
            .unwrap();
        let h = |n: &str| r.headers().get(n).map(|v| v.to_str().unwrap().to_string());
        let kind = match (h("x-tollgate-cache"), h("x-tollgate-cache-type")) {
            (Some(c), Some(t)) => format!("{c} {t}"),
            (Some(c), None) => c,
            _ => "direct".into(),
        };
        if let Some(o) = h("x-tollgate-overhead-us") {
            p.overhead_us.push(o.parse().unwrap());
        }
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
        p.round_trip.push(t.elapsed());
        *p.kinds.entry(kind).or_default() += 1;
    }
    p.overhead_us.sort();
    p.round_trip.sort();
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
    println!(
        "| entries | fill | start (index rebuilt) | RSS added per entry | kind | hits | gateway p50 | gateway p99 | round trip p50 | round trip p99 |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for n in sizes {
        let dir = tempfile::tempdir().unwrap();
        let filled = fill(dir.path(), n, &embedder);
        let (gw, addr, started) = start(dir.path(), &model, mock_addr);
        let rss = status_kib(gw.0.id(), "VmRSS:").unwrap_or(0);
        let per_entry = (rss.saturating_sub(base_rss) as f64 * 1024.0) / n as f64;
        let url = format!("http://{addr}/v1/chat/completions");
        let stride = (n / probes.max(1)).max(1);
        let picked: Vec<String> = (0..probes)
            .map(|i| question((i * stride + i) % n))
            .collect();
        let exact: Vec<Vec<u8>> = picked.iter().map(|q| body(q)).collect();
        let semantic: Vec<Vec<u8>> = picked.iter().map(|q| body(&reworded(q))).collect();
        let direct: Vec<Vec<u8>> = picked
            .iter()
            .take(probes.min(500))
            .map(|q| {
                serde_json::json!({"model": "mock-1", "messages": [
                    {"role": "system", "content": "You are a concise programming assistant."},
                    {"role": "user", "content": q}]})
                .to_string()
                .into_bytes()
            })
            .collect();
        let runs = rt.block_on(async {
            // Warm the connection and the page cache.
            probe(&client, &url, &exact[..exact.len().min(50)]).await;
            vec![
                ("exact", probe(&client, &url, &exact).await),
                ("semantic", probe(&client, &url, &semantic).await),
                (
                    "mock direct",
                    probe(
                        &client,
                        &format!("http://{mock_addr}/v1/chat/completions"),
                        &direct,
                    )
                    .await,
                ),
            ]
        });
        for (kind, p) in runs {
            let hits: Vec<String> = p.kinds.iter().map(|(k, n)| format!("{k}: {n}")).collect();
            let us = |d: Option<u64>| d.map_or("—".into(), |v| format!("{v} µs"));
            let rt_us = |d: Option<Duration>| {
                d.map_or("—".into(), |v| format!("{:.0} µs", v.as_secs_f64() * 1e6))
            };
            println!(
                "| {n} | {:.1} s | {:.1} s | {per_entry:.0} B | {kind} | {} | {} | {} | {} | {} |",
                filled.as_secs_f64(),
                started.as_secs_f64(),
                hits.join(", "),
                us(q(&p.overhead_us, 0.5)),
                us(q(&p.overhead_us, 0.99)),
                rt_us(q(&p.round_trip, 0.5)),
                rt_us(q(&p.round_trip, 0.99)),
            );
        }
        drop(gw);
    }
}
