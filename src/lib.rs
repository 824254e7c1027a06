//! Tollgate: a clustered AI gateway.
//!
//! The crate is laid out as future crates would be (see `docs/architecture.md`):
//! layers point one way — `store` ← `state` ← `governance` ← `cluster`/`proxy`
//! ← `admin` ← `node` ← `main`, with `observability` beside `governance` and
//! `mcp` beside `proxy` — and `providers` is pure wire-format knowledge with no
//! server in it. `state` knows nothing about LLMs; `mock` is a separate server
//! reached over HTTP.

pub mod admin;
pub mod cache;
pub mod cluster;
pub mod codemode;
pub mod config;
pub mod dashboard;
pub mod demo;
pub mod governance;
pub mod health;
pub mod launch;
pub mod mcp;
pub mod mock;
pub mod node;
pub mod observability;
pub mod providers;
pub mod proxy;
pub mod routing;
pub mod rules;
pub mod session;
pub mod state;
pub mod store;
pub mod tasks;
pub mod translate;
