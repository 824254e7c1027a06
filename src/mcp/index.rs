//! The tool index: every tool of every connected upstream server under its
//! `server-tool` name, rebuilt whenever a server's tool list changes and
//! swapped atomically, so listing for a key is a filter over a slice and a
//! call resolves its tool with one map lookup. No I/O here.

use std::collections::HashMap;
use std::sync::Arc;

use rmcp::model::Tool;
use serde_json::value::RawValue;

use crate::governance::ToolScope;
use crate::governance::objects::McpServer;
use crate::routing::Pattern;

/// One tool as the gateway exposes it.
#[derive(Debug)]
pub struct IndexedTool {
    /// The upstream server's name.
    pub server: Arc<str>,
    /// The tool's name at its server.
    pub tool: String,
    /// The tool as `/mcp` lists it: the upstream definition, renamed `server-tool`.
    pub shown: Tool,
    /// `shown` encoded once, so that listing copies bytes instead of encoding.
    pub json: Box<RawValue>,
    /// Price of one call, micro-dollars.
    pub price_micros: u64,
    /// The server lists it for the gateway to execute itself in agent mode.
    pub server_auto_execute: bool,
    /// Its server is in Code Mode: reached through the meta-tools only.
    pub code_mode: bool,
    /// Whose connection it is called over, for a per-user OAuth server
    /// (`None`: the gateway's own connection to its server).
    pub subject: Option<Arc<str>>,
}

impl IndexedTool {
    pub fn name(&self) -> &str {
        &self.shown.name
    }
}

/// Every exposed tool, in name order.
#[derive(Debug, Default)]
pub struct ToolIndex {
    tools: Vec<Arc<IndexedTool>>,
    by_name: HashMap<String, usize>,
}

impl ToolIndex {
    /// The index of `servers`, each with the tools it listed.
    pub fn build<'a>(servers: impl IntoIterator<Item = (&'a McpServer, &'a [Tool])>) -> ToolIndex {
        Self::build_for(servers, None)
    }

    /// The index of one subject's connection to a per-user OAuth server.
    pub fn personal(server: &McpServer, listed: &[Tool], subject: &str) -> ToolIndex {
        Self::build_for([(server, listed)], Some(Arc::from(subject)))
    }

    fn build_for<'a>(
        servers: impl IntoIterator<Item = (&'a McpServer, &'a [Tool])>,
        subject: Option<Arc<str>>,
    ) -> ToolIndex {
        let mut tools = Vec::new();
        for (server, listed) in servers {
            let name: Arc<str> = Arc::from(server.id.as_str());
            let auto: Vec<Pattern> = server.auto_execute.iter().map(Pattern::new).collect();
            for t in listed {
                let mut shown = t.clone();
                shown.name = super::tool_name(&server.id, &t.name).into();
                tools.push(Arc::new(IndexedTool {
                    server: name.clone(),
                    tool: t.name.to_string(),
                    price_micros: server
                        .tool_prices
                        .get(t.name.as_ref())
                        .copied()
                        .unwrap_or(0),
                    server_auto_execute: auto.iter().any(|p| p.matches(&t.name)),
                    // A per-user server's tools are called directly.
                    code_mode: server.code_mode && subject.is_none(),
                    subject: subject.clone(),
                    json: serde_json::value::to_raw_value(&shown).expect("tools encode"),
                    shown,
                }));
            }
        }
        tools.sort_by(|a, b| a.name().cmp(b.name()));
        // Two servers cannot produce one name: server names contain no `-`,
        // so `server-tool` splits back at its first `-` unambiguously.
        tools.dedup_by(|a, b| a.name() == b.name());
        let by_name = tools
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name().to_string(), i))
            .collect();
        ToolIndex { tools, by_name }
    }

    pub fn len(&self) -> usize {
        self.tools.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }

    /// The tool named `name`, whoever may call it.
    pub fn get(&self, name: &str) -> Option<&Arc<IndexedTool>> {
        self.by_name.get(name).map(|&i| &self.tools[i])
    }

    /// The tool named `name` if `scope` allows it: a tool outside the scope
    /// is indistinguishable from one that does not exist.
    pub fn get_for(&self, scope: &ToolScope, name: &str) -> Option<&Arc<IndexedTool>> {
        self.get(name).filter(|t| scope.allows(t.name()))
    }

    /// The tool named `name` if `scope` allows it and it is called directly
    /// (its server is not in Code Mode).
    pub fn get_direct(&self, scope: &ToolScope, name: &str) -> Option<&Arc<IndexedTool>> {
        self.get_for(scope, name).filter(|t| !t.code_mode)
    }

    /// The tools `scope` allows, in name order, Code Mode ones included.
    pub fn visible<'a>(
        &'a self,
        scope: &'a ToolScope,
    ) -> impl Iterator<Item = &'a Arc<IndexedTool>> {
        self.tools.iter().filter(|t| scope.allows(t.name()))
    }

    /// The tools `scope` allows that are called directly, in name order.
    pub fn direct<'a>(
        &'a self,
        scope: &'a ToolScope,
    ) -> impl Iterator<Item = &'a Arc<IndexedTool>> {
        self.visible(scope).filter(|t| !t.code_mode)
    }

    /// Whether `scope` reaches any Code Mode tool (and so sees the meta-tools).
    pub fn has_code_mode(&self, scope: &ToolScope) -> bool {
        self.visible(scope).any(|t| t.code_mode)
    }

    /// The `tools/list` result for `scope` as JSON: `{"tools": [...]}`: the
    /// direct tools, then the Code Mode meta-tools if the scope reaches any
    /// Code Mode tool; `trailer` (empty, or starting with a comma) adds
    /// fields after the list.
    pub fn list_json(&self, scope: &ToolScope, trailer: &str) -> Box<RawValue> {
        self.list_json_with(scope, &[], trailer)
    }

    /// [`Self::list_json`] with `more` tools (already in the scope) after the direct ones.
    pub fn list_json_with(
        &self,
        scope: &ToolScope,
        more: &[Box<RawValue>],
        trailer: &str,
    ) -> Box<RawValue> {
        let meta = &crate::codemode::meta::DEFINITIONS_JSON;
        let shown = self
            .direct(scope)
            .map(|t| &*t.json)
            .chain(more.iter().map(|m| &**m));
        let meta = self
            .has_code_mode(scope)
            .then(|| meta.iter().map(|m| &**m))
            .into_iter()
            .flatten();
        super::catalog::join("tools", shown.chain(meta), trailer)
    }

    /// Whether both indexes expose the same tools in the same way.
    pub fn same(&self, other: &ToolIndex) -> bool {
        self.tools.len() == other.tools.len()
            && self.tools.iter().zip(&other.tools).all(|(a, b)| {
                a.json.get() == b.json.get()
                    && a.code_mode == b.code_mode
                    && a.price_micros == b.price_micros
                    && a.server_auto_execute == b.server_auto_execute
            })
    }

    /// How many tools `server` contributes.
    pub fn count_of(&self, server: &str) -> usize {
        self.tools.iter().filter(|t| &*t.server == server).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    use crate::governance::objects::McpTransport;

    fn server(name: &str, prices: &[(&str, u64)], auto: &[&str]) -> McpServer {
        McpServer {
            id: name.into(),
            transport: McpTransport::Http {
                url: "http://127.0.0.1:1/mcp".into(),
                headers: Default::default(),
            },
            tool_prices: prices.iter().map(|(t, p)| (t.to_string(), *p)).collect(),
            auto_execute: auto.iter().map(|s| s.to_string()).collect(),
            code_mode: false,
            oauth: None,
            enabled: true,
            created_at: 0,
        }
    }

    fn tools(names: &[&str]) -> Vec<Tool> {
        names
            .iter()
            .map(|n| Tool::new(n.to_string(), "d", Arc::new(Default::default())))
            .collect()
    }

    #[test]
    fn names_prices_and_scopes() {
        let fs = server("filesystem", &[("write_file", 2_000)], &["read_*"]);
        let git = server("git", &[], &[]);
        let fs_tools = tools(&["write_file", "read_file"]);
        let git_tools = tools(&["status"]);
        let index = ToolIndex::build([(&fs, &fs_tools[..]), (&git, &git_tools[..])]);
        let all = ToolScope::new(None, &[]);
        let names: Vec<&str> = index.visible(&all).map(|t| t.name()).collect();
        assert_eq!(
            names,
            [
                "filesystem-read_file",
                "filesystem-write_file",
                "git-status"
            ]
        );
        let w = index.get("filesystem-write_file").unwrap();
        assert_eq!(
            (&*w.server, w.tool.as_str(), w.price_micros),
            ("filesystem", "write_file", 2_000)
        );
        assert!(!w.server_auto_execute);
        assert!(
            index
                .get("filesystem-read_file")
                .unwrap()
                .server_auto_execute
        );

        let only_read = ToolScope::new(Some(&["filesystem-read_file".to_string()]), &[]);
        let names: Vec<&str> = index.visible(&only_read).map(|t| t.name()).collect();
        assert_eq!(names, ["filesystem-read_file"]);
        assert!(index.get_for(&only_read, "filesystem-write_file").is_none());
        assert!(index.get_for(&only_read, "filesystem-read_file").is_some());

        let git_all = ToolScope::new(Some(&["git-*".to_string()]), &[]);
        let names: Vec<&str> = index.visible(&git_all).map(|t| t.name()).collect();
        assert_eq!(names, ["git-status"]);
        let nothing = ToolScope::new(Some(&[]), &[]);
        assert_eq!(index.visible(&nothing).count(), 0);
        assert_eq!(index.count_of("filesystem"), 2);
        let listed: rmcp::model::ListToolsResult =
            serde_json::from_str(index.list_json(&git_all, "").get()).unwrap();
        assert_eq!(listed.tools.len(), 1);
        assert_eq!(listed.tools[0].name, "git-status");
        assert_eq!(listed.tools[0].description.as_deref(), Some("d"));
        let none: Value = serde_json::from_str(index.list_json(&nothing, "").get()).unwrap();
        assert_eq!(none, serde_json::json!({"tools": []}));
    }
}
