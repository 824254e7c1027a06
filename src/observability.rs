//! What the node tells operators: Prometheus metrics, the request log and
//! the MCP tool log.
//!
//! Both are fed from the request path without blocking it: metrics are atomic
//! counters, and log records go through a bounded channel to a writer task.

pub mod metrics;
pub mod request_log;
pub mod spend;
pub mod tool_log;
