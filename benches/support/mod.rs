//! What the benchmarks share: child processes that die with the bench, free
//! loopback ports, waiting for a server to answer, `/proc` memory figures,
//! and the embedding model's directory.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

/// A child process, killed and reaped when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// Waits until `GET path` on `addr` answers 200, for at most `within`.
pub fn wait_up(addr: SocketAddr, path: &str, within: Duration) {
    use std::io::{Read, Write};
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Ok(mut s) = std::net::TcpStream::connect(addr) {
            let _ = write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
            let mut head = [0u8; 12];
            if s.read_exact(&mut head).is_ok() && head.ends_with(b"200") {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{addr}{path} did not come up");
}

/// A `/proc/{pid}/status` figure in KiB (`VmRSS:`, `VmHWM:`), if present.
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(field))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// The embedding model's directory: `TOLLGATE_EMBED_MODEL`, or what
/// `scripts/cache/fetch-model.sh` fetches.
pub fn model_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("TOLLGATE_EMBED_MODEL") {
        return dir.into();
    }
    let root = env!("CARGO_MANIFEST_DIR");
    let out = std::process::Command::new(format!("{root}/scripts/cache/fetch-model.sh"))
        .output()
        .expect("run scripts/cache/fetch-model.sh");
    assert!(out.status.success(), "scripts/cache/fetch-model.sh failed");
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}
