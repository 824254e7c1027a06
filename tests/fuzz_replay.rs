//! Every fuzz target (`fuzz/src/lib.rs`) over its seeds, the inputs fuzzing
//! once found (`fuzz/regressions/<target>/`), and a fixed number of seeded
//! mutations of them: the test command's brief run of every target, so a
//! regression in any parser of untrusted bytes is caught without a fuzzer.
//! The long runs are `scripts/fuzz.sh` (libFuzzer, `docs/security.md`).

#[allow(dead_code)]
#[path = "../fuzz/src/lib.rs"]
mod targets;

use std::path::{Path, PathBuf};

/// Mutations per target; each is a few edits of a seed or a splice of two.
const MUTATIONS: usize = 1_500;

/// Bytes that parsers treat specially, spliced in by the mutator.
const TOKENS: &[&[u8]] = &[
    b"\"",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"null",
    b"\\u0000",
    b"\\ud800",
    b"\n",
    b"\n\n",
    b"\r\n",
    b"data: ",
    b"event: ",
    b"18446744073709551616",
    b"-1",
    b"1e309",
    b"0.5",
    b"[DONE]",
    b"{\"a\":",
    b"\x00",
    b"\xff",
    b"//",
    b"../",
    b"%2e%2e/",
    b"http://evil.example/",
];

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    out.retain(|p| p.is_file());
    out.sort();
    out
}

fn mutate(rng: &mut fastrand::Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut v = seeds[rng.usize(..seeds.len())].clone();
    for _ in 0..rng.usize(1..=4) {
        let at = rng.usize(..=v.len());
        match rng.u8(..7) {
            0 if !v.is_empty() => {
                let i = rng.usize(..v.len());
                v[i] ^= 1 << rng.u8(..8);
            }
            1 if !v.is_empty() => {
                let i = rng.usize(..v.len());
                v[i] = rng.u8(..);
            }
            2 => {
                let t = TOKENS[rng.usize(..TOKENS.len())];
                v.splice(at..at, t.iter().copied());
            }
            3 if at < v.len() => {
                let end = rng.usize(at..=v.len().min(at + 64));
                v.drain(at..end);
            }
            4 if at < v.len() => {
                let end = rng.usize(at..=v.len().min(at + 64));
                let part = v[at..end].to_vec();
                v.splice(at..at, part);
            }
            5 => v.truncate(at),
            _ => {
                let other = &seeds[rng.usize(..seeds.len())];
                let from = rng.usize(..=other.len());
                v.splice(at.., other[from..].iter().copied());
            }
        }
    }
    v
}

/// Runs one input; a panic fails the test naming the input, which is kept
/// for `fuzz/regressions/<target>/` once fixed.
fn run(name: &str, target: targets::Target, input: &[u8]) {
    if std::panic::catch_unwind(|| target(input)).is_err() {
        let path = std::env::temp_dir().join(format!("tollgate-fuzz-{name}-crash"));
        std::fs::write(&path, input).unwrap();
        panic!(
            "fuzz target {name} panicked on the input now in {} ({:?})",
            path.display(),
            String::from_utf8_lossy(&input[..input.len().min(300)])
        );
    }
}

#[test]
fn every_fuzz_target_survives_its_seeds_and_their_mutations() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    for (name, target) in targets::TARGETS {
        let mut seeds: Vec<Vec<u8>> = files(&root.join("seeds").join(name))
            .iter()
            .chain(files(&root.join("regressions").join(name)).iter())
            .map(|p| std::fs::read(p).unwrap())
            .collect();
        assert!(!seeds.is_empty(), "fuzz target {name} has no seeds");
        for s in &seeds {
            run(name, *target, s);
        }
        seeds.push(Vec::new());
        let mut rng = fastrand::Rng::with_seed(name.bytes().map(u64::from).sum());
        for _ in 0..MUTATIONS {
            let input = mutate(&mut rng, &seeds);
            run(name, *target, &input);
        }
        println!("{name}: {} seeds, {MUTATIONS} mutations", seeds.len() - 1);
    }
}
