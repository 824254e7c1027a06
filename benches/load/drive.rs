//! The load generator of `benches/load.rs`: closed-loop workers, or an open
//! loop at a fixed rate, against one target; latency to the last byte, and
//! the CPU the target's process spent per request.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// Where load goes: a URL, the body, extra headers, and the process whose
/// CPU is counted (the proxy under test).
#[derive(Clone)]
pub struct Target {
    pub url: String,
    pub body: Bytes,
    pub headers: Vec<(&'static str, String)>,
    pub pid: Option<u32>,
}

pub struct Stats {
    pub p50: Duration,
    pub p99: Duration,
    pub rps: f64,
    pub errors: u64,
    /// CPU of `Target::pid` per request, µs (user + system).
    pub cpu_us: Option<f64>,
}

type Http = Client<HttpConnector, Full<Bytes>>;

fn client(idle: usize) -> Http {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(idle)
        .build(http)
}

/// One request to the last byte: its latency, or `None` for a failure.
async fn once(client: &Http, t: &Target, uri: &http::Uri) -> bool {
    let mut req = http::Request::post(uri.clone()).header("content-type", "application/json");
    for (k, v) in &t.headers {
        req = req.header(*k, v);
    }
    let req = req.body(Full::new(t.body.clone())).unwrap();
    match client.request(req).await {
        Ok(resp) => {
            let ok = resp.status().is_success();
            resp.into_body().collect().await.is_ok() && ok
        }
        Err(_) => false,
    }
}

/// User + system CPU of `pid` so far, in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command (which may hold spaces) in parentheses.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

fn summarise(mut lat: Vec<Duration>, errors: u64, elapsed: Duration, cpu: Option<u64>) -> Stats {
    lat.sort();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    let n = lat.len().max(1) as f64;
    Stats {
        p50: pct(0.50),
        p99: pct(0.99),
        rps: lat.len() as f64 / elapsed.as_secs_f64(),
        errors,
        cpu_us: cpu.map(|ticks| ticks as f64 / clock_ticks_per_second() * 1e6 / n),
    }
}

/// Closed loop: `concurrency` workers, each sending its next request when
/// the last one has been read, for `seconds` after a one-second warm-up.
pub async fn closed(t: &Target, concurrency: usize, seconds: u64) -> Stats {
    let client = client(concurrency * 2);
    let uri: http::Uri = t.url.parse().unwrap();
    let run = |dur: Duration| {
        let (client, uri, t) = (client.clone(), uri.clone(), t.clone());
        async move {
            let stop = Instant::now() + dur;
            let workers: Vec<_> = (0..concurrency)
                .map(|_| {
                    let (client, uri, t) = (client.clone(), uri.clone(), t.clone());
                    tokio::spawn(async move {
                        let mut lat = Vec::with_capacity(100_000);
                        let mut errors = 0u64;
                        while Instant::now() < stop {
                            let at = Instant::now();
                            if once(&client, &t, &uri).await {
                                lat.push(at.elapsed());
                            } else {
                                errors += 1;
                            }
                        }
                        (lat, errors)
                    })
                })
                .collect();
            let (mut all, mut errors) = (Vec::new(), 0);
            for w in workers {
                let (l, e) = w.await.unwrap();
                all.extend(l);
                errors += e;
            }
            (all, errors)
        }
    };
    run(Duration::from_secs(1)).await; // warm-up: connections, caches
    let before = t.pid.and_then(cpu_ticks);
    let started = Instant::now();
    let (lat, errors) = run(Duration::from_secs(seconds)).await;
    let elapsed = started.elapsed();
    let cpu = before.and_then(|b| Some(cpu_ticks(t.pid?)? - b));
    summarise(lat, errors, elapsed, cpu)
}

/// Open loop: requests sent at `rate` per second whatever the answers do,
/// each one's latency counted from when it was due (so a stall is counted
/// in full, not hidden by waiting workers); at most 4,096 in flight.
pub async fn open(t: &Target, rate: u64, seconds: u64) -> Stats {
    let client = client(256);
    let uri: http::Uri = t.url.parse().unwrap();
    let go = |dur: Duration| {
        let (client, uri, t) = (client.clone(), uri.clone(), t.clone());
        async move {
            let gap = Duration::from_secs_f64(1.0 / rate.max(1) as f64);
            let total = (dur.as_secs_f64() * rate as f64) as u64;
            let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(4096));
            let start = tokio::time::Instant::now();
            let mut tasks = Vec::with_capacity(total as usize);
            for i in 0..total {
                let due = start + gap * i as u32;
                tokio::time::sleep_until(due).await;
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    tasks.push(None);
                    continue;
                };
                let (client, uri, t) = (client.clone(), uri.clone(), t.clone());
                tasks.push(Some(tokio::spawn(async move {
                    let ok = once(&client, &t, &uri).await;
                    drop(slot);
                    ok.then(|| due.elapsed())
                })));
            }
            let (mut lat, mut errors) = (Vec::new(), 0);
            for task in tasks {
                match task {
                    Some(task) => match task.await.unwrap() {
                        Some(l) => lat.push(l),
                        None => errors += 1,
                    },
                    None => errors += 1,
                }
            }
            (lat, errors)
        }
    };
    go(Duration::from_secs(1)).await;
    let before = t.pid.and_then(cpu_ticks);
    let started = Instant::now();
    let (lat, errors) = go(Duration::from_secs(seconds)).await;
    let elapsed = started.elapsed();
    let cpu = before.and_then(|b| Some(cpu_ticks(t.pid?)? - b));
    summarise(lat, errors, elapsed, cpu)
}
