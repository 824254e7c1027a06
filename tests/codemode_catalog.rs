//! The token benchmark's catalog generator and task suite
//! (`benches/codemode/catalog/`), checked on their own: exact sizes, the
//! same core servers at every size, deterministic tools, and every task's
//! classic-mode policy finishing with calls that succeed. The benchmark
//! itself (`benches/codemode_tokens.rs`, run by the test command) checks that
//! both modes reach the same answers through a real gateway.

#[path = "../benches/codemode/catalog/mod.rs"]
#[allow(dead_code)]
mod catalog;
