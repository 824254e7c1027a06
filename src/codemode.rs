//! Code Mode: instead of every tool's schema, a model sees four meta-tools,
//! reads only the Python stubs it needs, and sends one script that calls the
//! tools inside the gateway (`docs/mcp.md`, Code Mode).
//!
//! - [`stubs`]: Python signatures and docs of MCP tools.
//! - [`sandbox`]: scripts run in a limited worker process.
//! - [`meta`]: the four meta-tools `/mcp` and agent mode show.

pub mod cgroup;
pub mod meta;
pub mod sandbox;
pub mod seccomp;
pub mod stubs;
