//! Listing MCP tools for a key: 500 tools over 16 servers, filtered by a key
//! with a mix of single-tool patterns, server globs and a tool group — what
//! `tools/list` on `/mcp` does between authentication and the response
//! (filter the index, join the visible tools' pre-encoded JSON, encode the
//! JSON-RPC envelope).
//!
//! ```text
//! cargo bench --bench mcp_tools            # MCP_BENCH_ITERS=20000 by default
//! ```

use std::sync::Arc;
use std::time::Instant;

use rmcp::model::Tool;
use serde_json::json;
use tollgate::governance::ToolScope;
use tollgate::governance::objects::{McpServer, McpTransport};
use tollgate::mcp::index::ToolIndex;
use tollgate::mcp::server::RpcResult;

const SERVERS: usize = 16;
const TOOLS: usize = 500;

fn main() {
    let iters: usize = std::env::var("MCP_BENCH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let schema = Arc::new(
        json!({"type": "object", "properties": {
            "path": {"type": "string", "description": "a path"},
            "limit": {"type": "integer"}}, "required": ["path"]})
        .as_object()
        .unwrap()
        .clone(),
    );
    let servers: Vec<McpServer> = (0..SERVERS)
        .map(|s| McpServer {
            id: format!("server{s}"),
            transport: McpTransport::Http {
                url: "http://127.0.0.1:1/mcp".into(),
                headers: Default::default(),
            },
            tool_prices: Default::default(),
            auto_execute: vec![],
            code_mode: false,
            oauth: None,
            enabled: true,
            created_at: 0,
        })
        .collect();
    let tools: Vec<Vec<Tool>> = (0..SERVERS)
        .map(|s| {
            (0..TOOLS)
                .filter(|t| t % SERVERS == s)
                .map(|t| {
                    Tool::new(
                        format!("tool_{t}"),
                        "A synthetic tool of the benchmark",
                        schema.clone(),
                    )
                })
                .collect()
        })
        .collect();
    let index = ToolIndex::build(servers.iter().zip(&tools).map(|(s, t)| (s, &t[..])));
    assert_eq!(index.len(), TOOLS);

    // Four whole servers, twenty single tools elsewhere, and a group's worth
    // of patterns (groups are resolved into the key's patterns in memory).
    let mut patterns: Vec<String> = (0..4).map(|s| format!("server{s}-*")).collect();
    patterns.extend(
        (0..20).map(|i| format!("server{}-tool_{}", 4 + i % 12, (4 + i % 12) + SERVERS * i)),
    );
    patterns.extend((0..10).map(|i| format!("server15-tool_{}", 15 + SERVERS * i)));
    let scoped = ToolScope::new(Some(&patterns), &[]);
    let everything = ToolScope::new(None, &[]);

    for (label, scope) in [("scoped key", &scoped), ("unrestricted key", &everything)] {
        let mut samples = Vec::with_capacity(iters);
        let mut visible = 0;
        let mut bytes = 0;
        for _ in 0..iters {
            let start = Instant::now();
            let result = index.list_json(scope, "");
            let body = serde_json::to_vec(&RpcResult::new(json!(1), result)).unwrap();
            samples.push(start.elapsed().as_nanos() as u64);
            visible = index.visible(scope).count();
            bytes = body.len();
        }
        samples.sort_unstable();
        let at = |q: f64| {
            samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)] as f64 / 1000.0
        };
        println!(
            "{label}: {visible} of {TOOLS} tools ({bytes} bytes), {iters} iterations: p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs",
            at(0.50),
            at(0.99),
            at(1.0)
        );
    }
}
