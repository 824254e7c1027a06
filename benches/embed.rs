//! The semantic cache's embedded model: load time and resident memory of
//! WordLlama `l2_supercat_256`, and the time to embed one prompt (a 50-word
//! one, a one-line one, and the largest text the default limits accept).
//! Printed, not asserted (docs/cache.md, "Embeddings").
//!
//! ```sh
//! cargo bench --bench embed                       # fetches the model if needed
//! TOLLGATE_EMBED_MODEL=dir EMBED_ITERS=5000 cargo bench --bench embed
//! ```

use std::time::{Duration, Instant};

use tollgate::cache::embed::{Embedder, Limits};

mod support;

use support::model_dir;

/// 50 words, the size of an ordinary chat question with a little context.
const PROMPT_50: &str = "I am planning a three day trip to Lisbon in late October with \
    our two children, aged seven and ten. We like museums, good food and \
    short walks, but not long queues. Could you suggest a relaxed daily plan, with one \
    rainy day option, and tell us where to stay?";

/// This process's resident set, from /proc (Linux), in KiB.
fn rss_kib(field: &str) -> Option<u64> {
    support::status_kib(std::process::id(), field)
}

fn time(e: &Embedder, text: &str, iters: usize) -> (Duration, Duration, usize) {
    let tokens = e.tokenize(text).unwrap().len();
    for _ in 0..iters.div_ceil(10) {
        std::hint::black_box(e.embed(text).unwrap());
    }
    let mut samples: Vec<Duration> = (0..iters)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(e.embed(std::hint::black_box(text)).unwrap());
            t.elapsed()
        })
        .collect();
    samples.sort();
    (samples[iters / 2], samples[iters * 99 / 100], tokens)
}

fn main() {
    let iters: usize = std::env::var("EMBED_ITERS")
        .ok()
        .map(|s| s.parse().expect("EMBED_ITERS is a number"))
        .unwrap_or(2000);
    let dir = model_dir();
    let before = rss_kib("VmRSS:");
    let t = Instant::now();
    let e = Embedder::load(&dir).unwrap();
    let load = t.elapsed();
    let after = rss_kib("VmRSS:");
    println!(
        "model {} ({} tokens x {} dims), loaded in {:.0} ms",
        dir.display(),
        e.vocab(),
        e.dim(),
        load.as_secs_f64() * 1e3
    );
    if let (Some(b), Some(a), Some(peak)) = (before, after, rss_kib("VmHWM:")) {
        println!(
            "resident memory: {:.1} MiB added by the model ({:.1} MiB process RSS, peak {:.1} MiB)",
            (a.saturating_sub(b)) as f64 / 1024.0,
            a as f64 / 1024.0,
            peak as f64 / 1024.0
        );
    }
    assert_eq!(PROMPT_50.split_whitespace().count(), 50);
    // The longest run of 50-word prompts both default limits accept.
    let mut largest = String::new();
    loop {
        let next = format!("{largest}{PROMPT_50} ");
        if next.len() > Limits::DEFAULT_MAX_BYTES || e.tokenize(&next).is_err() {
            break;
        }
        largest = next;
    }
    println!(
        "{:<34} {:>7} {:>9} {:>9}",
        "text", "tokens", "p50 µs", "p99 µs"
    );
    for (name, text, n) in [
        (
            "one line (9 words)",
            "What is the capital city of France, please?",
            iters,
        ),
        ("50-word prompt", PROMPT_50, iters),
        (
            "largest accepted (~16 KiB)",
            largest.as_str(),
            iters.div_ceil(20),
        ),
    ] {
        let (p50, p99, tokens) = time(&e, text, n);
        println!(
            "{name:<34} {tokens:>7} {:>9.1} {:>9.1}",
            p50.as_secs_f64() * 1e6,
            p99.as_secs_f64() * 1e6
        );
    }
}
