//! Load benchmark: the gateway in front of the mock provider vs the mock
//! provider direct, in the same run on the same machine.
//!
//! ```text
//! cargo bench --bench load                       # defaults below
//! LOAD_SECONDS=10 LOAD_CONCURRENCY=1,16,64 cargo bench --bench load
//! ```
//!
//! For each concurrency and mode (JSON, SSE stream) it drives closed-loop load
//! (each worker sends its next request when the previous one finished) for
//! `LOAD_SECONDS` after a one-second warm-up, first straight at the mock, then
//! through the gateway, and reports p50/p99 latency (to the last byte),
//! throughput, the added latency, and the gateway's peak RSS (VmHWM).
//!
//! As a reference for what any proxy adds on the same machine, when
//! `haproxy` is installed (or `LOAD_HAPROXY` names its binary) the same load
//! also goes through HAProxy in HTTP mode with keep-alive to the mock, and
//! its added latency and throughput ratio are reported beside the gateway's.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

mod support;

use support::{Proc, free_addr, status_kib};

const BIN: &str = env!("CARGO_BIN_EXE_tollgate");

/// Waits until `GET path` on `addr` answers 200.
fn wait_up(addr: SocketAddr, path: &str) {
    support::wait_up(addr, path, Duration::from_secs(30));
}

/// Peak resident set size of a process, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmHWM:").unwrap_or(0)
}

struct Stats {
    p50: Duration,
    p99: Duration,
    rps: f64,
    errors: u64,
}

async fn drive(url: &str, body: Bytes, concurrency: usize, seconds: u64) -> Stats {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(concurrency * 2)
        .build(http);
    let uri: http::Uri = url.parse().unwrap();
    let run = |dur: Duration| {
        let client = client.clone();
        let uri = uri.clone();
        let body = body.clone();
        async move {
            let stop = Instant::now() + dur;
            let workers: Vec<_> = (0..concurrency)
                .map(|_| {
                    let client = client.clone();
                    let uri = uri.clone();
                    let body = body.clone();
                    tokio::spawn(async move {
                        let mut lat = Vec::with_capacity(100_000);
                        let mut errors = 0u64;
                        while Instant::now() < stop {
                            let t = Instant::now();
                            let req = http::Request::post(uri.clone())
                                .header("content-type", "application/json")
                                .body(Full::new(body.clone()))
                                .unwrap();
                            match client.request(req).await {
                                Ok(resp) => {
                                    let ok = resp.status().is_success();
                                    let drained = resp.into_body().collect().await.is_ok();
                                    if ok && drained {
                                        lat.push(t.elapsed());
                                    } else {
                                        errors += 1;
                                    }
                                }
                                Err(_) => errors += 1,
                            }
                        }
                        (lat, errors)
                    })
                })
                .collect();
            let mut all = Vec::new();
            let mut errors = 0;
            for w in workers {
                let (l, e) = w.await.unwrap();
                all.extend(l);
                errors += e;
            }
            (all, errors)
        }
    };
    run(Duration::from_secs(1)).await; // warm-up: connections, caches
    let started = Instant::now();
    let (mut lat, errors) = run(Duration::from_secs(seconds)).await;
    let elapsed = started.elapsed();
    lat.sort();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Stats {
        p50: pct(0.50),
        p99: pct(0.99),
        rps: lat.len() as f64 / elapsed.as_secs_f64(),
        errors,
    }
}

/// `GET path` on `addr`, the body as text.
fn http_get(addr: SocketAddr, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

/// The bucket bounds (µs) under which half and 99% of the gateway's own
/// per-request time fell, from its `tollgate_gateway_overhead_seconds` histogram.
fn overhead_quantiles(metrics: &str) -> (f64, f64, u64) {
    let buckets: Vec<(f64, u64)> = metrics
        .lines()
        .filter_map(|l| l.strip_prefix("tollgate_gateway_overhead_seconds_bucket{le=\""))
        .filter_map(|l| {
            let (le, n) = l.split_once("\"} ")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le * 1e6, n.trim().parse().ok()?))
        })
        .collect();
    let total = buckets.last().map_or(0, |b| b.1);
    let at = |q: f64| {
        buckets
            .iter()
            .find(|(_, n)| *n as f64 >= q * total as f64)
            .map_or(f64::NAN, |b| b.0)
    };
    (at(0.5), at(0.99), total)
}

/// HAProxy in front of `mock` at `listen`, if it is installed: a reference
/// for what a lean HTTP proxy adds on this machine.
fn start_haproxy(dir: &std::path::Path, listen: SocketAddr, mock: SocketAddr) -> Option<Proc> {
    let bin = std::env::var("LOAD_HAPROXY").unwrap_or_else(|_| "haproxy".into());
    Command::new(&bin).arg("-v").output().ok()?;
    let config = dir.join("haproxy.cfg");
    std::fs::write(
        &config,
        format!(
            "global\n  maxconn 4096\ndefaults\n  mode http\n  option http-keep-alive\n  http-reuse always\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\nfrontend load\n  bind {listen}\n  default_backend mock\nbackend mock\n  server mock {mock}\n"
        ),
    )
    .ok()?;
    let child = Command::new(&bin)
        .arg("-f")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let proc = Proc(child);
    wait_up(listen, "/v1/models");
    Some(proc)
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let seconds: u64 = std::env::var("LOAD_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let levels: Vec<usize> = std::env::var("LOAD_CONCURRENCY")
        .unwrap_or_else(|_| "1,16,64".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let mock_addr = free_addr();
    let gw_addr = free_addr();
    let data = tempfile::tempdir().unwrap();
    let _mock = Proc(
        Command::new(BIN)
            .args(["mock", "--listen", &mock_addr.to_string()])
            .env("TOLLGATE_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let config = data.path().join("tollgate.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"{gw_addr}\"\ndata_dir = \"{}\"\n[providers.mock]\nbase_url = \"http://{mock_addr}/v1\"\n",
            data.path().join("data").display()
        ),
    )
    .unwrap();
    let gateway = Proc(
        Command::new(BIN)
            .args(["serve", "--config"])
            .arg(&config)
            .env("TOLLGATE_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_up(mock_addr, "/v1/models");
    wait_up(gw_addr, "/ready");
    let gw_pid = gateway.0.id();
    let haproxy_addr = free_addr();
    let haproxy = start_haproxy(data.path(), haproxy_addr, mock_addr);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let direct = format!("http://{mock_addr}/v1/chat/completions");
    let through = format!("http://{gw_addr}/v1/chat/completions");
    println!(
        "load benchmark: {seconds}s per cell after 1s warm-up, closed loop, 1 load-generator thread"
    );
    println!(
        "{} cores; gateway pid {gw_pid}\n",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let reference = format!("http://{haproxy_addr}/v1/chat/completions");
    match &haproxy {
        Some(_) => println!("reference: HAProxy (HTTP mode, keep-alive) in front of the mock\n"),
        None => println!("reference: haproxy is not installed, its columns are empty\n"),
    }
    println!(
        "| mode | conc | direct p50 µs | direct p99 µs | direct rps | gateway p50 µs | gateway p99 µs | gateway rps | added p50 µs | added p99 µs | rps ratio | errors | gateway peak RSS MiB | haproxy added p50 µs | haproxy added p99 µs | haproxy rps ratio |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (mode, stream) in [("json", false), ("stream", true)] {
        let body = Bytes::from(format!(
            "{{\"model\":\"mock-1\",\"stream\":{stream},\"messages\":[{{\"role\":\"system\",\"content\":\"You are a helpful assistant.\"}},{{\"role\":\"user\",\"content\":\"Write a haiku about gateways and budgets.\"}}]}}"
        ));
        let gw_body =
            Bytes::from(String::from_utf8_lossy(&body).replace("\"mock-1\"", "\"mock/mock-1\""));
        for &c in &levels {
            let d = rt.block_on(drive(&direct, body.clone(), c, seconds));
            let g = rt.block_on(drive(&through, gw_body.clone(), c, seconds));
            let h = haproxy.as_ref().map_or_else(
                || " | | ".to_string(),
                |_| {
                    let h = rt.block_on(drive(&reference, body.clone(), c, seconds));
                    format!(
                        "{:.0} | {:.0} | {:.2}",
                        us(h.p50) - us(d.p50),
                        us(h.p99) - us(d.p99),
                        h.rps / d.rps.max(1.0)
                    )
                },
            );
            println!(
                "| {mode} | {c} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.2} | {} | {:.1} | {h} |",
                us(d.p50),
                us(d.p99),
                d.rps,
                us(g.p50),
                us(g.p99),
                g.rps,
                us(g.p50) - us(d.p50),
                us(g.p99) - us(d.p99),
                g.rps / d.rps.max(1.0),
                d.errors + g.errors,
                peak_rss_kib(gw_pid) as f64 / 1024.0,
            );
        }
    }
    let (p50, p99, n) = overhead_quantiles(&http_get(gw_addr, "/metrics"));
    println!(
        "\ngateway's own time per request (x-tollgate-overhead-us: handler entry to response ready, upstream wait excluded), over all {n} requests: p50 <= {p50} µs, p99 <= {p99} µs (histogram bucket bounds)"
    );
}
