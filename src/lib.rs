//! Tollgate: a clustered AI gateway.
//!
//! The crate is laid out as future crates would be (see `docs/architecture.md`):
//! layers point one way, `store` ← `observability` ← `proxy` ← `admin` ← `node`
//! ← `main`, and `providers` is pure wire-format knowledge with no server in it.

pub mod admin;
pub mod config;
pub mod governance;
pub mod mock;
pub mod node;
pub mod observability;
pub mod providers;
pub mod proxy;
pub mod routing;
pub mod state;
pub mod store;
