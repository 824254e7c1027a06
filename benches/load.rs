//! Load benchmark: the gateway in front of the mock provider vs the mock
//! provider direct and HAProxy, in the same run on the same machine.
//!
//! ```text
//! cargo bench --bench load                       # defaults below
//! LOAD_SECONDS=10 LOAD_CONCURRENCY=1,16,64 LOAD_RATE=2000 cargo bench --bench load
//! ```
//!
//! Four tables (`benches/README.md` says how to read them):
//!
//! 1. JSON and SSE chat completions at each of `LOAD_CONCURRENCY`, closed
//!    loop (each worker sends its next request when the last one has been
//!    read to the last byte) for `LOAD_SECONDS` after a one-second warm-up:
//!    the mock direct, through HAProxy, through the gateway with defaults
//!    (no key), and through the gateway with governance on (an enforced
//!    virtual key whose team has a budget and a rate limit; request logging
//!    is on in both, as it always is).
//! 2. At `LOAD_CASE_CONCURRENCY` (16): 16 KiB request bodies; Anthropic
//!    Messages in to an OpenAI-format upstream, and OpenAI in to an
//!    Anthropic upstream, each beside the same format end to end.
//! 3. An open loop at `LOAD_RATE` requests/s (2,000), below saturation, so
//!    that latency is what each hop adds rather than queueing.
//! 4. At `LOAD_CASE_CONCURRENCY`: governed JSON and SSE with spend synced
//!    in groups (the default) and through a second gateway that syncs each
//!    journal row and settlement on its own (`spend_sync_interval = "0s"`).
//!
//! Each cell gives throughput, its ratio to direct, p50/p99 latency added to
//! direct, the gateway's CPU per request (`/proc/<pid>/stat`) and its peak
//! RSS (`VmHWM`). HAProxy runs when `haproxy` is installed (or
//! `LOAD_HAPROXY` names its binary), in HTTP mode with keep-alive.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use bytes::Bytes;

#[path = "load/drive.rs"]
mod drive;
mod support;

use drive::{Stats, Target};
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

/// `POST path` on `addr` with an admin `token` and a JSON `body`; the answer's body.
fn http_post(addr: SocketAddr, path: &str, token: &str, body: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.0\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
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

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// A chat completion body in OpenAI's format (`stream`, and a user message of
/// `pad` extra bytes), and the same in Anthropic's.
fn bodies(model: &str, stream: bool, pad: usize) -> (Bytes, Bytes) {
    let text = format!(
        "Write a haiku about gateways and budgets.{}",
        " ".repeat(pad)
    );
    let openai = format!(
        r#"{{"model":"{model}","stream":{stream},"messages":[{{"role":"system","content":"You are a helpful assistant."}},{{"role":"user","content":"{text}"}}]}}"#
    );
    let anthropic = format!(
        r#"{{"model":"{model}","stream":{stream},"max_tokens":64,"system":"You are a helpful assistant.","messages":[{{"role":"user","content":"{text}"}}]}}"#
    );
    (Bytes::from(openai), Bytes::from(anthropic))
}

/// `+p50 / +p99` of `s` over `base`, µs.
fn added(s: &Stats, base: &Stats) -> String {
    format!(
        "{:.0} | {:.0}",
        us(s.p50) - us(base.p50),
        us(s.p99) - us(base.p99)
    )
}

fn ratio(s: &Stats, base: &Stats) -> String {
    format!("{:.2}", s.rps / base.rps.max(1.0))
}

fn cpu(s: &Stats) -> String {
    s.cpu_us.map_or(String::new(), |c| format!("{c:.0}"))
}

/// A row of table 2 for a translated case `t`, beside direct `d` and the
/// same format end to end through the gateway, `same`.
fn translated(case: &str, d: &Stats, same: &Stats, t: &Stats) {
    println!(
        "| {case} | {:.0} | | {:.0} | {} | {} | {} | {:.0} | {:.2} | {} |",
        d.rps,
        t.rps,
        ratio(t, d),
        added(t, d),
        cpu(t),
        same.rps,
        t.rps / same.rps.max(1.0),
        d.errors + same.errors + t.errors,
    );
}

struct Bench {
    rt: tokio::runtime::Runtime,
    seconds: u64,
    mock: SocketAddr,
    gateway: SocketAddr,
    gw_pid: u32,
    haproxy: Option<(SocketAddr, Proc)>,
    /// `Authorization` of the governed key.
    governed: String,
    /// A second gateway that syncs each spend write on its own: address,
    /// pid, its governed key's `Authorization`.
    strict: (SocketAddr, u32, String),
}

impl Bench {
    fn closed(&self, t: &Target, c: usize) -> Stats {
        self.rt.block_on(drive::closed(t, c, self.seconds))
    }

    fn open(&self, t: &Target, rate: u64) -> Stats {
        self.rt.block_on(drive::open(t, rate, self.seconds))
    }

    fn direct(&self, path: &str, body: &Bytes) -> Target {
        Target {
            url: format!("http://{}{path}", self.mock),
            body: body.clone(),
            headers: Vec::new(),
            pid: None,
        }
    }

    fn haproxy(&self, path: &str, body: &Bytes) -> Option<Target> {
        let (addr, proc) = self.haproxy.as_ref()?;
        Some(Target {
            url: format!("http://{addr}{path}"),
            body: body.clone(),
            headers: Vec::new(),
            pid: Some(proc.0.id()),
        })
    }

    fn through(&self, path: &str, body: &Bytes, governed: bool) -> Target {
        Target {
            url: format!("http://{}{path}", self.gateway),
            body: body.clone(),
            headers: if governed {
                vec![("authorization", self.governed.clone())]
            } else {
                Vec::new()
            },
            pid: Some(self.gw_pid),
        }
    }

    fn strict(&self, path: &str, body: &Bytes) -> Target {
        let (addr, pid, auth) = &self.strict;
        Target {
            url: format!("http://{addr}{path}"),
            body: body.clone(),
            headers: vec![("authorization", auth.clone())],
            pid: Some(*pid),
        }
    }

    fn rss(&self) -> String {
        format!("{:.1}", peak_rss_kib(self.gw_pid) as f64 / 1024.0)
    }
}

/// The mock, the gateway in front of it (as `mock`, OpenAI format, and as
/// `ant`, Anthropic format), a governed key, and HAProxy if installed.
fn start(dir: &std::path::Path, seconds: u64) -> (Bench, Vec<Proc>) {
    let mock = free_addr();
    let mut procs = vec![Proc(
        Command::new(BIN)
            .args(["mock", "--listen", &mock.to_string()])
            .env("TOLLGATE_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    )];
    wait_up(mock, "/v1/models");
    let (gateway, gw, governed) = start_gateway(&dir.join("gw"), mock, "");
    let gw_pid = gw.0.id();
    procs.push(gw);
    // The same, each journal row and settlement synced on its own (as
    // before group commit): table 4.
    let (strict, strict_gw, strict_key) =
        start_gateway(&dir.join("strict"), mock, "spend_sync_interval = \"0s\"\n");
    let strict = (strict, strict_gw.0.id(), strict_key);
    procs.push(strict_gw);
    let haproxy_addr = free_addr();
    let haproxy = start_haproxy(dir, haproxy_addr, mock).map(|p| (haproxy_addr, p));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let bench = Bench {
        rt,
        seconds,
        mock,
        gateway,
        gw_pid,
        haproxy,
        governed,
        strict,
    };
    (bench, procs)
}

/// A gateway in `dir` in front of `mock` (as `mock`, OpenAI format, and as
/// `ant`, Anthropic format), with `server` lines added to its `[server]`
/// table; returns its address, process and a governed key's
/// `Authorization`.
fn start_gateway(
    dir: &std::path::Path,
    mock: SocketAddr,
    server: &str,
) -> (SocketAddr, Proc, String) {
    std::fs::create_dir_all(dir).unwrap();
    let gateway = free_addr();
    let config = dir.join("tollgate.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"{gateway}\"\ndata_dir = \"{}\"\n{server}[providers.mock]\nbase_url = \"http://{mock}/v1\"\n[providers.ant]\nkind = \"anthropic\"\napi_key = \"mock-key\"\nbase_url = \"http://{mock}/v1\"\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    let gw = Proc(
        Command::new(BIN)
            .args(["serve", "--config"])
            .arg(&config)
            .env("TOLLGATE_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_up(gateway, "/ready");
    let token = std::fs::read_to_string(dir.join("data/admin-token")).unwrap();
    let token = token.trim();
    // A team budget and a rate limit far above what the bench spends: every
    // request reserves, is counted and settles, and none is refused.
    let team = http_post(
        gateway,
        "/api/teams",
        token,
        r#"{"name":"bench","budgets":[{"limit_usd":1000000,"period":"1d"}],"rate_limits":[{"requests":1000000000,"window":"1m"}]}"#,
    );
    let team: serde_json::Value = serde_json::from_str(&team).expect("a team");
    let key = http_post(
        gateway,
        "/api/keys",
        token,
        &format!(
            r#"{{"name":"bench","team_id":"{}"}}"#,
            team["id"].as_str().unwrap()
        ),
    );
    let key: serde_json::Value = serde_json::from_str(&key).expect("a key");
    (
        gateway,
        gw,
        format!("Bearer {}", key["secret"].as_str().unwrap()),
    )
}

const CHAT: &str = "/v1/chat/completions";
const MESSAGES: &str = "/v1/messages";
const GW_MESSAGES: &str = "/anthropic/v1/messages";

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let seconds: u64 = env_or("LOAD_SECONDS", 5);
    let levels: Vec<usize> = std::env::var("LOAD_CONCURRENCY")
        .unwrap_or_else(|_| "1,16,64".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let case_c: usize = env_or("LOAD_CASE_CONCURRENCY", 16);
    let rate: u64 = env_or("LOAD_RATE", 2000);
    let data = tempfile::tempdir().unwrap();
    let (b, _procs) = start(data.path(), seconds);
    println!(
        "load benchmark: {seconds}s per cell after 1s warm-up, 1 load-generator thread, {} cores; gateway pid {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        b.gw_pid
    );
    match &b.haproxy {
        Some(_) => println!("reference: HAProxy (HTTP mode, keep-alive) in front of the mock\n"),
        None => println!("reference: haproxy is not installed, its columns are empty\n"),
    }
    let none = || String::from(" | ");

    println!(
        "| mode | conc | direct rps | direct p50 µs | haproxy ratio | haproxy +p50 µs | haproxy +p99 µs | haproxy CPU µs/req | gateway ratio | gateway +p50 µs | gateway +p99 µs | gateway CPU µs/req | governed ratio | governed +p50 µs | governed +p99 µs | governed CPU µs/req | governed / defaults | errors | gateway peak RSS MiB |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (mode, stream) in [("json", false), ("stream", true)] {
        let (direct_body, _) = bodies("mock-1", stream, 0);
        let (gw_body, _) = bodies("mock/mock-1", stream, 0);
        for &c in &levels {
            let d = b.closed(&b.direct(CHAT, &direct_body), c);
            let h = b.haproxy(CHAT, &direct_body).map(|t| b.closed(&t, c));
            let g = b.closed(&b.through(CHAT, &gw_body, false), c);
            let v = b.closed(&b.through(CHAT, &gw_body, true), c);
            let hcols = h.as_ref().map_or(format!("{} | ", none()), |h| {
                format!("{} | {} | {}", ratio(h, &d), added(h, &d), cpu(h))
            });
            println!(
                "| {mode} | {c} | {:.0} | {:.0} | {hcols} | {} | {} | {} | {} | {} | {} | {:.2} | {} | {} |",
                d.rps,
                us(d.p50),
                ratio(&g, &d),
                added(&g, &d),
                cpu(&g),
                ratio(&v, &d),
                added(&v, &d),
                cpu(&v),
                v.rps / g.rps.max(1.0),
                d.errors + g.errors + v.errors + h.as_ref().map_or(0, |h| h.errors),
                b.rss(),
            );
        }
    }

    println!("\nAt concurrency {case_c}:\n");
    println!(
        "| case | direct rps | haproxy ratio | gateway rps | gateway ratio | gateway +p50 µs | gateway +p99 µs | gateway CPU µs/req | same format through the gateway, rps | translated / same format | errors |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    {
        let (direct_body, _) = bodies("mock-1", false, 16 * 1024);
        let (gw_body, _) = bodies("mock/mock-1", false, 16 * 1024);
        let d = b.closed(&b.direct(CHAT, &direct_body), case_c);
        let h = b.haproxy(CHAT, &direct_body).map(|t| b.closed(&t, case_c));
        let g = b.closed(&b.through(CHAT, &gw_body, true), case_c);
        println!(
            "| JSON, 16 KiB request body, governed | {:.0} | {} | {:.0} | {} | {} | {} | | | {} |",
            d.rps,
            h.as_ref().map_or(String::new(), |h| ratio(h, &d)),
            g.rps,
            ratio(&g, &d),
            added(&g, &d),
            cpu(&g),
            d.errors + g.errors,
        );
    }
    for stream in [false, true] {
        let kind = if stream { "SSE" } else { "JSON" };
        // Anthropic Messages in, the OpenAI-format mock out; beside OpenAI in and out.
        let (openai_direct, _) = bodies("mock-1", stream, 0);
        let (openai_gw, anthropic_gw) = bodies("mock/mock-1", stream, 0);
        let d = b.closed(&b.direct(CHAT, &openai_direct), case_c);
        let same = b.closed(&b.through(CHAT, &openai_gw, false), case_c);
        let t = b.closed(&b.through(GW_MESSAGES, &anthropic_gw, false), case_c);
        translated(
            &format!("{kind}, Anthropic in → OpenAI upstream"),
            &d,
            &same,
            &t,
        );
        // OpenAI in, the mock's Anthropic surface out; beside Anthropic in and out.
        let (_, anthropic_direct) = bodies("mock-1", stream, 0);
        let (openai_gw, anthropic_gw) = bodies("ant/mock-1", stream, 0);
        let d = b.closed(&b.direct(MESSAGES, &anthropic_direct), case_c);
        let same = b.closed(&b.through(GW_MESSAGES, &anthropic_gw, false), case_c);
        let t = b.closed(&b.through(CHAT, &openai_gw, false), case_c);
        translated(
            &format!("{kind}, OpenAI in → Anthropic upstream"),
            &d,
            &same,
            &t,
        );
    }

    println!("\nOpen loop at {rate} requests/s (JSON), latency from when each request was due:\n");
    println!(
        "| direct p50 µs | direct p99 µs | haproxy +p50 µs | haproxy +p99 µs | gateway +p50 µs | gateway +p99 µs | governed +p50 µs | governed +p99 µs | gateway CPU µs/req | errors |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    {
        let (direct_body, _) = bodies("mock-1", false, 0);
        let (gw_body, _) = bodies("mock/mock-1", false, 0);
        let d = b.open(&b.direct(CHAT, &direct_body), rate);
        let h = b.haproxy(CHAT, &direct_body).map(|t| b.open(&t, rate));
        let g = b.open(&b.through(CHAT, &gw_body, false), rate);
        let v = b.open(&b.through(CHAT, &gw_body, true), rate);
        println!(
            "| {:.0} | {:.0} | {} | {} | {} | {} | {} |",
            us(d.p50),
            us(d.p99),
            h.as_ref().map_or(none(), |h| added(h, &d)),
            added(&g, &d),
            added(&v, &d),
            cpu(&g),
            d.errors + g.errors + v.errors + h.as_ref().map_or(0, |h| h.errors),
        );
    }
    println!(
        "\nGovernance's durability at concurrency {case_c}: governed requests with spend synced in groups (server.spend_sync_interval, default 10ms) and with each write synced (0s), each beside the same run's direct:\n"
    );
    println!(
        "| mode | direct rps | groups ratio | groups +p50 µs | groups +p99 µs | groups CPU µs/req | each write ratio | each write +p50 µs | each write +p99 µs | each write CPU µs/req | groups / each write | errors |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (mode, stream) in [("json", false), ("stream", true)] {
        let (direct_body, _) = bodies("mock-1", stream, 0);
        let (gw_body, _) = bodies("mock/mock-1", stream, 0);
        let d = b.closed(&b.direct(CHAT, &direct_body), case_c);
        let v = b.closed(&b.through(CHAT, &gw_body, true), case_c);
        let e = b.closed(&b.strict(CHAT, &gw_body), case_c);
        println!(
            "| {mode} | {:.0} | {} | {} | {} | {} | {} | {} | {:.2} | {} |",
            d.rps,
            ratio(&v, &d),
            added(&v, &d),
            cpu(&v),
            ratio(&e, &d),
            added(&e, &d),
            cpu(&e),
            v.rps / e.rps.max(1.0),
            d.errors + v.errors + e.errors,
        );
    }
    let (p50, p99, n) = overhead_quantiles(&http_get(b.gateway, "/metrics"));
    println!(
        "\ngateway's own time per request (x-tollgate-overhead-us: handler entry to response ready, upstream wait excluded), over all {n} requests: p50 <= {p50} µs, p99 <= {p99} µs (histogram bucket bounds); peak RSS {} MiB",
        b.rss()
    );
}
