//! The MCP gateway: clients of the upstream MCP servers the platform team
//! registered ([`upstream`]), the tool index and the catalog of resources and
//! prompts built from what they expose ([`index`], [`catalog`]), and the
//! `/mcp` endpoint agents connect to ([`server`]) in both protocol eras
//! ([`era`]), with its self-contained sealed sessions ([`session`]), and MCP
//! tools in chat completions with agent mode ([`agent`]). [`sample`] is a
//! small MCP server for tests and demos.
//!
//! Which tools a key may call is governance's business ([`ToolScope`]); this
//! module only applies it. It knows nothing about LLM wire formats.
//!
//! [`ToolScope`]: crate::governance::ToolScope

pub mod agent;
pub mod call;
pub mod catalog;
pub mod era;
pub mod events;
pub mod index;
pub mod oauth;
pub mod sample;
pub mod server;
pub mod session;
pub mod sse_client;
pub mod upstream;

/// Separates server and tool in the names `/mcp` shows (`filesystem-read_file`).
/// Server names may not contain it; tool names may.
pub const SEPARATOR: char = '-';

/// `server-tool`.
pub fn tool_name(server: &str, tool: &str) -> String {
    format!("{server}{SEPARATOR}{tool}")
}

/// The server and tool of a `server-tool` name.
pub fn split_tool_name(name: &str) -> Option<(&str, &str)> {
    name.split_once(SEPARATOR)
        .filter(|(s, t)| !s.is_empty() && !t.is_empty())
}
