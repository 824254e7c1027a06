//! The four Code Mode meta-tools, as `/mcp` and agent mode show them in
//! place of the tools of every Code Mode server:
//!
//! - `listToolFiles()`: the virtual tree of stub files the key may read,
//!   `servers/<name>.pyi` per server or `servers/<name>/<tool>.pyi` per tool
//!   (`[mcp.code_mode] binding`);
//! - `readToolFile(fileName, startLine?, endLine?)`: a stub file, or some of
//!   its lines;
//! - `getToolDocs(server, tool)`: one tool's full documentation;
//! - `executeToolCode(code)`: runs a Starlark script in the sandbox, with the
//!   key's Code Mode tools bound as `server.tool(...)`; every call it makes
//!   goes through [`execute`] (scope, rate limits, budgets, tool log) like a
//!   direct call, logged with the script's execution id as its parent.
//!
//! Which tools a key reaches here is the same question everywhere: the tools
//! of Code Mode servers that its scope allows ([`CodeModeTools`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock};

use rmcp::model::{CallToolResult, ContentBlock, JsonObject, Tool};
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::sandbox::{self, Limits, ScriptError};
use super::stubs::{self, ToolSpec, py_name};
use crate::config::CodeModeBinding;
use crate::governance::slots::Full;
use crate::governance::{KeyView, ToolScope};
use crate::mcp::call::ToolCalls;
use crate::mcp::index::{IndexedTool, ToolIndex};
use crate::observability::tool_log::ToolLog;

pub const LIST_TOOL_FILES: &str = "listToolFiles";
pub const READ_TOOL_FILE: &str = "readToolFile";
pub const GET_TOOL_DOCS: &str = "getToolDocs";
pub const EXECUTE_TOOL_CODE: &str = "executeToolCode";
/// The `server` of `executeToolCode` records in the tool log.
pub const LOG_SERVER: &str = "codemode";

/// A node's Code Mode settings.
#[derive(Debug, Clone)]
pub struct CodeMode {
    pub binding: CodeModeBinding,
    pub limits: Limits,
    /// The `tollgate` binary, started as `tollgate codemode-worker` per script.
    pub worker: PathBuf,
    /// Scripts running now, bounded per node and per key.
    pub slots: std::sync::Arc<crate::governance::slots::Slots>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaTool {
    ListToolFiles,
    ReadToolFile,
    GetToolDocs,
    ExecuteToolCode,
}

impl MetaTool {
    pub fn parse(name: &str) -> Option<MetaTool> {
        match name {
            LIST_TOOL_FILES => Some(MetaTool::ListToolFiles),
            READ_TOOL_FILE => Some(MetaTool::ReadToolFile),
            GET_TOOL_DOCS => Some(MetaTool::GetToolDocs),
            EXECUTE_TOOL_CODE => Some(MetaTool::ExecuteToolCode),
            _ => None,
        }
    }

    /// The meta-tool named `name`, if a key of `scope` is shown the
    /// meta-tools (it reaches a Code Mode tool); otherwise the name is not
    /// one of them, whatever it says.
    pub fn offered(name: &str, index: &ToolIndex, scope: &ToolScope) -> Option<MetaTool> {
        MetaTool::parse(name).filter(|_| index.has_code_mode(scope))
    }

    /// The three that only read stubs: always auto-executed in agent mode.
    pub fn read_only(self) -> bool {
        self != MetaTool::ExecuteToolCode
    }
}

fn schema(v: Value) -> Arc<JsonObject> {
    Arc::new(v.as_object().cloned().expect("schemas are objects"))
}

/// The meta-tools' definitions, names and parameters exactly as agents
/// tuned to Code Mode expect them.
pub static DEFINITIONS: LazyLock<Vec<Tool>> = LazyLock::new(|| {
    vec![
        Tool::new(
            LIST_TOOL_FILES,
            "List the Python stub files of the tools you can call from executeToolCode: \
             servers/<server>.pyi (or servers/<server>/<tool>.pyi). Read a file with \
             readToolFile before calling its tools.",
            schema(json!({"type": "object", "properties": {}})),
        ),
        Tool::new(
            READ_TOOL_FILE,
            "Read a stub file listed by listToolFiles: one compact Python signature per \
             tool, required parameters first, optional ones = None, with a one-line \
             description. startLine and endLine (1-based, inclusive) read part of it.",
            schema(json!({
                "type": "object",
                "properties": {
                    "fileName": {"type": "string", "description": "a path listed by listToolFiles"},
                    "startLine": {"type": "integer", "minimum": 1},
                    "endLine": {"type": "integer", "minimum": 1}
                },
                "required": ["fileName"]
            })),
        ),
        Tool::new(
            GET_TOOL_DOCS,
            "Full documentation of one tool: every argument with its type, nested object \
             shapes and allowed values, what it returns, and an example call.",
            schema(json!({
                "type": "object",
                "properties": {
                    "server": {"type": "string"},
                    "tool": {"type": "string"}
                },
                "required": ["server", "tool"]
            })),
        ),
        Tool::new(
            EXECUTE_TOOL_CODE,
            "Run a Starlark (Python-like) script that calls tools synchronously as \
             server.tool(arg=value), with names as in the stub files. What it prints and \
             the value of a top-level variable named result are returned. No imports, \
             files, network or clock; limits on steps, time, memory, tool calls and \
             output apply.",
            schema(json!({
                "type": "object",
                "properties": {
                    "code": {"type": "string", "description": "the script"}
                },
                "required": ["code"]
            })),
        ),
    ]
});

/// The definitions encoded once, for `tools/list`.
pub static DEFINITIONS_JSON: LazyLock<Vec<Box<RawValue>>> = LazyLock::new(|| {
    DEFINITIONS
        .iter()
        .map(|t| serde_json::value::to_raw_value(t).expect("tools encode"))
        .collect()
});

/// The Code Mode tools one key reaches, by server, each server's tools in
/// name order. Tools whose Python names collide with an earlier one (say
/// `read-file` after `read_file`) are left out: a script could not tell them
/// apart.
pub struct CodeModeTools<'a> {
    servers: BTreeMap<&'a str, Vec<&'a Arc<IndexedTool>>>,
}

impl<'a> CodeModeTools<'a> {
    pub fn of(index: &'a ToolIndex, scope: &'a ToolScope) -> CodeModeTools<'a> {
        let mut servers: BTreeMap<&str, Vec<&Arc<IndexedTool>>> = BTreeMap::new();
        let mut server_names: BTreeMap<String, &str> = BTreeMap::new();
        for t in index.visible(scope).filter(|t| t.code_mode) {
            let server = &*t.server;
            if *server_names.entry(py_name(server)).or_insert(server) != server {
                continue;
            }
            let tools = servers.entry(server).or_default();
            if tools.iter().all(|o| py_name(&o.tool) != py_name(&t.tool)) {
                tools.push(t);
            }
        }
        CodeModeTools { servers }
    }

    /// The tool `tool` (its own name or its Python name) of `server`.
    pub fn get(&self, server: &str, tool: &str) -> Option<&'a Arc<IndexedTool>> {
        let tools = self
            .servers
            .iter()
            .find(|(s, _)| **s == server || py_name(s) == server)?
            .1;
        tools
            .iter()
            .find(|t| t.tool == tool)
            .or_else(|| tools.iter().find(|t| py_name(&t.tool) == tool))
            .copied()
    }

    fn files(&self, binding: CodeModeBinding) -> String {
        let mut out = String::new();
        for (server, tools) in &self.servers {
            match binding {
                CodeModeBinding::Server => {
                    let n = tools.len();
                    let s = if n == 1 { "" } else { "s" };
                    out.push_str(&format!("servers/{server}.pyi  ({n} tool{s})\n"));
                }
                CodeModeBinding::Tool => {
                    for t in tools {
                        out.push_str(&format!("servers/{server}/{}.pyi\n", t.tool));
                    }
                }
            }
        }
        out
    }

    fn file(&self, binding: CodeModeBinding, name: &str) -> Option<String> {
        let path = name
            .trim()
            .trim_start_matches("./")
            .strip_prefix("servers/")?;
        let path = path.strip_suffix(".pyi")?;
        match binding {
            CodeModeBinding::Server => {
                let tools = self.servers.get(path)?;
                let specs: Vec<Spec> = tools.iter().map(|t| Spec::of(t)).collect();
                let specs: Vec<ToolSpec> = specs.iter().map(Spec::spec).collect();
                Some(stubs::server_stub(path, &specs))
            }
            CodeModeBinding::Tool => {
                let (server, tool) = path.split_once('/')?;
                let t = self.servers.get(server)?.iter().find(|t| t.tool == tool)?;
                Some(stubs::tool_stub(&Spec::of(t).spec()))
            }
        }
    }

    /// What a script may call: tool names by server.
    pub fn bindings(&self) -> BTreeMap<String, Vec<String>> {
        self.servers
            .iter()
            .map(|(s, tools)| {
                (
                    s.to_string(),
                    tools.iter().map(|t| t.tool.clone()).collect(),
                )
            })
            .collect()
    }

    /// Every tool `code` can reach, found by reading it: a server named only
    /// as `server.tool` reaches those tools; a server named any other way
    /// (passed around, `getattr`) reaches all of its tools, and so does any
    /// mention of the binding builtin. Errs on the side of more: strings and
    /// comments count too.
    pub fn reachable(&self, code: &str) -> Vec<&'a Arc<IndexedTool>> {
        let words = identifiers(code);
        let raw_call = words.iter().any(|(w, _)| *w == "__call_tool");
        let mut out = Vec::new();
        for (server, tools) in &self.servers {
            let name = py_name(server);
            let uses: Vec<Option<&str>> = words
                .iter()
                .filter(|(w, _)| *w == name)
                .map(|(_, attr)| *attr)
                .collect();
            if raw_call || uses.iter().any(Option::is_none) {
                out.extend(tools.iter().copied());
            } else {
                out.extend(
                    tools
                        .iter()
                        .filter(|t| uses.contains(&Some(py_name(&t.tool).as_str())))
                        .copied(),
                );
            }
        }
        out
    }
}

/// Every identifier in `code` not preceded by `.`, with the attribute that
/// follows it (`name.attr`), if any.
fn identifiers(code: &str) -> Vec<(&str, Option<&str>)> {
    let bytes = code.as_bytes();
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let ident_end = |from: usize| {
        (from..bytes.len())
            .find(|&i| !is_ident(bytes[i]))
            .unwrap_or(bytes.len())
    };
    // An identifier starts with a letter or `_`, not a digit.
    let word_at = |from: usize| {
        let end = ident_end(from);
        (end > from && !bytes[from].is_ascii_digit()).then(|| &code[from..end])
    };
    let skip_space = |mut i: usize| {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !is_ident(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        let end = ident_end(start);
        i = end;
        let before = code[..start].trim_end().as_bytes().last().copied();
        if before == Some(b'.') || word_at(start).is_none() {
            continue;
        }
        let after = skip_space(end);
        let attr = (after < bytes.len() && bytes[after] == b'.')
            .then(|| word_at(skip_space(after + 1)))
            .flatten();
        out.push((&code[start..end], attr));
    }
    out
}

/// A tool's stub inputs, owning the schema as a `Value`.
struct Spec<'a> {
    tool: &'a IndexedTool,
    schema: Value,
}

impl<'a> Spec<'a> {
    fn of(tool: &'a IndexedTool) -> Spec<'a> {
        Spec {
            tool,
            schema: Value::Object((*tool.shown.input_schema).clone()),
        }
    }

    fn spec(&self) -> ToolSpec<'_> {
        ToolSpec {
            server: &self.tool.server,
            name: &self.tool.tool,
            description: self.tool.shown.description.as_deref(),
            input_schema: &self.schema,
        }
    }
}

/// How a meta-tool call came: who asked, and whether the gateway runs it on
/// its own authority (agent mode), in which case a script may only call
/// auto-executable tools.
pub struct Call<'a> {
    pub key: &'a KeyView,
    /// The request that asked for it (agent mode: the model call).
    pub parent: Option<String>,
    /// The span the call is made under (`traceparent`).
    pub trace: Option<crate::observability::otel::SpanContext>,
    pub auto_only: bool,
}

/// Whether the gateway may run `tool` for a key of `scope` without asking
/// the client.
pub fn auto_executable(scope: &ToolScope, tool: &IndexedTool) -> bool {
    scope.auto_executes(tool.name()) || tool.server_auto_execute
}

/// The tool a script's call of `server.tool` reaches, if the call may be
/// made: it must be bound for the key and, when the gateway runs the script
/// on its own authority (`auto_only`), auto-executable.
fn admit_call<'a>(
    tools: &CodeModeTools<'a>,
    scope: &ToolScope,
    auto_only: bool,
    server: &str,
    tool: &str,
) -> Result<&'a Arc<IndexedTool>, String> {
    let Some(found) = tools.get(server, tool) else {
        return Err(format!("no tool {tool} on server {server} for this key"));
    };
    if auto_only && !auto_executable(scope, found) {
        return Err(format!(
            "{} is not on the auto-execute list: the gateway may not run it for a model; \
             ask the client to run this script",
            found.name()
        ));
    }
    Ok(found)
}

fn text(t: impl Into<String>) -> CallToolResult {
    CallToolResult::success(vec![ContentBlock::text(t.into())])
}

fn failure(t: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(t.into())])
}

fn arg_str<'a>(args: &'a Option<JsonObject>, name: &str) -> Option<&'a str> {
    args.as_ref()?.get(name)?.as_str()
}

fn arg_line(args: &Option<JsonObject>, name: &str) -> Result<Option<usize>, String> {
    match args.as_ref().and_then(|a| a.get(name)) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .filter(|&n| n >= 1)
            .map(|n| Some(n as usize))
            .ok_or_else(|| format!("{name} must be a whole number from 1")),
    }
}

/// Runs a meta-tool. `Err` is a refusal by policy (only from scripts that
/// could not start); what the model should read, errors included, is the
/// result.
pub async fn call(
    calls: &ToolCalls,
    code_mode: &CodeMode,
    meta: MetaTool,
    args: Option<JsonObject>,
    c: Call<'_>,
) -> Result<CallToolResult, String> {
    let index = calls.upstreams.index();
    let tools = CodeModeTools::of(&index, &c.key.tools);
    let binding = code_mode.binding;
    Ok(match meta {
        MetaTool::ListToolFiles => {
            let files = tools.files(binding);
            if files.is_empty() {
                text("(no Code Mode tools are available to this key)")
            } else {
                text(files)
            }
        }
        MetaTool::ReadToolFile => {
            let Some(name) = arg_str(&args, "fileName") else {
                return Ok(failure("readToolFile needs fileName"));
            };
            let range = arg_line(&args, "startLine")
                .and_then(|start| arg_line(&args, "endLine").map(|end| (start, end)));
            match (tools.file(binding, name), range) {
                (_, Err(e)) => failure(e),
                (Some(body), Ok((start, end))) => text(stubs::line_range(&body, start, end)),
                (None, _) => failure(format!(
                    "no such file: {name} (listToolFiles lists the files you can read)"
                )),
            }
        }
        MetaTool::GetToolDocs => {
            let (Some(server), Some(tool)) = (arg_str(&args, "server"), arg_str(&args, "tool"))
            else {
                return Ok(failure("getToolDocs needs server and tool"));
            };
            match tools.get(server, tool) {
                Some(t) => text(stubs::docs(&Spec::of(t).spec())),
                None => failure(format!(
                    "no tool {tool} on server {server} (readToolFile shows a server's tools)"
                )),
            }
        }
        MetaTool::ExecuteToolCode => {
            let Some(code) = arg_str(&args, "code") else {
                return Ok(failure("executeToolCode needs code"));
            };
            execute_code(calls, code_mode, &tools, code, c).await
        }
    })
}

/// Runs `code` with the key's Code Mode tools bound and logs the run; its
/// tool calls are logged with the run's execution id as their parent.
async fn execute_code(
    calls: &ToolCalls,
    code_mode: &CodeMode,
    tools: &CodeModeTools<'_>,
    code: &str,
    c: Call<'_>,
) -> CallToolResult {
    let key = c.key;
    // A run is a call like any other: counted against the key's rate
    // limits, and one of a bounded number of workers.
    if let Err(e) = calls.governance.admit(key, &[]) {
        return failure(format!("rate limit: {e}"));
    }
    let _slot = match code_mode.slots.take(&key.key.id) {
        Ok(slot) => slot,
        Err(Full::Node(n)) => {
            return failure(format!(
                "limit error: {n} scripts are running on this node, its most (mcp.code_mode.max_workers); try again shortly"
            ));
        }
        Err(Full::Key(n)) => {
            return failure(format!(
                "limit error: this key already runs {n} scripts, its most (mcp.code_mode.max_workers_per_key); wait for one to finish"
            ));
        }
    };
    let execution = format!("exec-{}", crate::governance::random_token(8));
    // The script's span; its tool calls are its children.
    let mut span = calls.tracer.start(
        "code_mode.execute",
        crate::observability::otel::Kind::Internal,
        c.trace,
    );
    span.set("tollgate.code_mode.execution", execution.clone());
    span.set("tollgate.virtual_key", key.key.id.clone());
    let script_trace = span.context();
    let job = sandbox::Job {
        script: code.to_string(),
        bindings: tools.bindings(),
        limits: code_mode.limits.clone(),
    };
    let started = std::time::Instant::now();
    let ts_ms = calls.governance.now_ms();
    let outcome = sandbox::run(&code_mode.worker, &job, |server, tool, args| {
        let admitted = admit_call(tools, &key.tools, c.auto_only, &server, &tool).cloned();
        let parent = execution.clone();
        async move {
            let trace = script_trace;
            let tool = admitted?;
            let args = match args {
                Value::Object(o) => Some(json_names(&tool, o)),
                _ => None,
            };
            let result = calls.execute(key, &tool, args, Some(parent), trace).await?;
            script_value(result)
        }
    })
    .await;
    let (result, shown) = match outcome {
        Ok(done) => {
            let mut out = done.output;
            if !done.result.is_null() {
                out.push_str(&format!("result = {}\n", done.result));
            }
            if out.is_empty() {
                out = "(the script printed nothing and set no result)".into();
            }
            (text(out.clone()), out)
        }
        Err(e) => {
            let message = explain(&e);
            span.fail(e.kind.clone(), message.clone());
            (failure(message.clone()), message)
        }
    };
    drop(span);
    calls.tool_logs.record(ToolLog {
        id: String::new(),
        ts_ms,
        tool: EXECUTE_TOOL_CODE.into(),
        server: LOG_SERVER.into(),
        arguments: json!({"code": code, "execution": execution}).to_string(),
        result: shown,
        is_error: result.is_error == Some(true),
        latency_us: started.elapsed().as_micros() as u64,
        virtual_key: Some(key.key.id.clone()),
        parent_request: c.parent,
        cost_micros: 0,
        method: "tools/call".into(),
    });
    result
}

/// A script's keyword arguments with the Python names of parameters whose
/// JSON names are not identifiers (`repo_name`) put back (`repo-name`).
fn json_names(tool: &IndexedTool, args: JsonObject) -> JsonObject {
    let Some(props) = tool
        .shown
        .input_schema
        .get("properties")
        .and_then(Value::as_object)
    else {
        return args;
    };
    args.into_iter()
        .map(|(k, v)| {
            if props.contains_key(&k) {
                return (k, v);
            }
            let json = props.keys().find(|p| py_name(p) == k).cloned();
            (json.unwrap_or(k), v)
        })
        .collect()
}

/// A tool's result as a script sees it: its structured content, else its
/// text (one part) or its parts; a failed tool is an error with its text.
fn script_value(r: CallToolResult) -> Result<Value, String> {
    let texts: Vec<&str> = r
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.as_str()))
        .collect();
    if r.is_error == Some(true) {
        return Err(if texts.is_empty() {
            "the tool failed".into()
        } else {
            texts.join("\n")
        });
    }
    if let Some(v) = r.structured_content {
        return Ok(v);
    }
    Ok(match texts.as_slice() {
        [one] if r.content.len() == 1 => Value::String(one.to_string()),
        _ => serde_json::to_value(&r.content).unwrap_or(Value::Null),
    })
}

/// A script error as the model reads it: what went wrong, where, and a hint.
fn explain(e: &ScriptError) -> String {
    let hint = match e.kind.as_str() {
        "compile" => {
            "scripts are Starlark, a Python dialect: no import, class, try/except, while or \
             f-strings"
        }
        "limit" => "do less in one script: fewer steps, tool calls or output",
        _ if e.message.contains("has no attribute") || e.message.contains("not found") => {
            "the stub files (readToolFile) show each server's tool names and parameters"
        }
        _ => "fix the script and run it again",
    };
    format!("{} error: {}\nhint: {hint}", e.kind, e.message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_with_their_attributes() {
        let code = "x = github.list_issues(repo = 'a')\ng = github\nprint(jira . get_issue(id=1))\ny = obj.github\n# slack\n";
        let words = identifiers(code);
        assert!(words.contains(&("github", Some("list_issues"))));
        assert!(words.contains(&("github", None)));
        assert!(words.contains(&("jira", Some("get_issue"))));
        assert!(words.contains(&("slack", None)));
        // `obj.github` is an attribute, not the server.
        assert_eq!(words.iter().filter(|(w, _)| *w == "github").count(), 2);
        assert!(!words.iter().any(|(w, _)| *w == "list_issues"));
    }

    fn index() -> ToolIndex {
        use crate::governance::objects::{McpServer, McpTransport};
        let server = |name: &str, code_mode: bool| McpServer {
            id: name.into(),
            transport: McpTransport::Http {
                url: "http://127.0.0.1:1/mcp".into(),
                headers: Default::default(),
            },
            tool_prices: Default::default(),
            auto_execute: Vec::new(),
            code_mode,
            oauth: None,
            enabled: true,
            created_at: 0,
        };
        let tools = |names: &[&str]| -> Vec<Tool> {
            names
                .iter()
                .map(|n| Tool::new(n.to_string(), "d", Arc::new(Default::default())))
                .collect()
        };
        let (gh, jira, plain) = (
            server("github", true),
            server("jira", true),
            server("plain", false),
        );
        let (gh_tools, jira_tools, plain_tools) = (
            tools(&["list_issues", "delete-repo", "delete_repo", "get_issue"]),
            tools(&["search"]),
            tools(&["echo"]),
        );
        ToolIndex::build([
            (&gh, &gh_tools[..]),
            (&jira, &jira_tools[..]),
            (&plain, &plain_tools[..]),
        ])
    }

    fn names(tools: Vec<&Arc<IndexedTool>>) -> Vec<&str> {
        tools.iter().map(|t| t.name()).collect()
    }

    #[test]
    fn code_mode_tools_bindings_and_what_a_script_reaches() {
        let index = index();
        let all = ToolScope::new(None, &[]);
        let tools = CodeModeTools::of(&index, &all);
        // The direct server is not bound; of two tools with one Python name,
        // the first in name order is.
        assert_eq!(
            tools.bindings(),
            BTreeMap::from([
                (
                    "github".to_string(),
                    vec![
                        "delete-repo".into(),
                        "get_issue".into(),
                        "list_issues".into()
                    ]
                ),
                ("jira".to_string(), vec!["search".into()]),
            ])
        );
        assert_eq!(
            tools.get("github", "delete_repo").unwrap().tool,
            "delete-repo"
        );
        assert!(tools.get("plain", "echo").is_none());
        assert_eq!(
            tools.files(CodeModeBinding::Server),
            "servers/github.pyi  (3 tools)\nservers/jira.pyi  (1 tool)\n"
        );
        assert!(
            tools
                .files(CodeModeBinding::Tool)
                .starts_with("servers/github/delete-repo.pyi\nservers/github/get_issue.pyi\n")
        );
        assert!(
            tools
                .file(CodeModeBinding::Tool, "servers/jira/search.pyi")
                .is_some()
        );
        assert!(
            tools
                .file(CodeModeBinding::Server, "servers/jira/search.pyi")
                .is_none()
        );
        assert!(
            tools
                .file(CodeModeBinding::Server, "servers/plain.pyi")
                .is_none()
        );

        let reach = |code: &str| names(tools.reachable(code));
        assert_eq!(
            reach("x = github.list_issues(repo='a')\ny = github.get_issue(id=1)"),
            ["github-get_issue", "github-list_issues"]
        );
        assert_eq!(reach("print(1)"), Vec::<&str>::new());
        // Any other use of a server reaches all of its tools.
        let every_github = [
            "github-delete-repo",
            "github-get_issue",
            "github-list_issues",
        ];
        assert_eq!(reach("g = github\ng.list_issues()"), every_github);
        assert_eq!(reach("getattr(github, 'delete_repo')()"), every_github);
        assert_eq!(reach("github .delete_repo()"), ["github-delete-repo"]);
        let mut everything = every_github.to_vec();
        everything.push("jira-search");
        assert_eq!(
            reach("__call_tool('github', 'delete-repo', {})"),
            everything
        );

        // A scope narrows all of it.
        let scoped = ToolScope::new(Some(&["github-get_issue".to_string()]), &[]);
        let tools = CodeModeTools::of(&index, &scoped);
        assert_eq!(
            tools.bindings(),
            BTreeMap::from([("github".to_string(), vec!["get_issue".to_string()])])
        );
        assert_eq!(names(tools.reachable("g = github")), ["github-get_issue"]);
    }

    #[test]
    fn auto_executed_scripts_call_only_auto_executable_tools() {
        let index = index();
        let scope = ToolScope::new(None, &["github-get_*".to_string()]);
        let tools = CodeModeTools::of(&index, &scope);
        assert!(admit_call(&tools, &scope, true, "github", "get_issue").is_ok());
        let e = admit_call(&tools, &scope, true, "github", "list_issues").unwrap_err();
        assert!(e.contains("not on the auto-execute list"), "{e}");
        // The client runs it itself: only the scope counts.
        assert!(admit_call(&tools, &scope, false, "github", "list_issues").is_ok());
        let e = admit_call(&tools, &scope, false, "plain", "echo").unwrap_err();
        assert_eq!(e, "no tool echo on server plain for this key");
    }

    #[test]
    fn meta_tools_have_their_exact_names_and_parameters() {
        let names: Vec<&str> = DEFINITIONS.iter().map(|t| t.name.as_ref()).collect();
        assert_eq!(
            names,
            [
                LIST_TOOL_FILES,
                READ_TOOL_FILE,
                GET_TOOL_DOCS,
                EXECUTE_TOOL_CODE
            ]
        );
        let params = |i: usize| -> Vec<String> {
            let mut p: Vec<String> = DEFINITIONS[i].input_schema["properties"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect();
            p.sort();
            p
        };
        assert!(params(0).is_empty());
        assert_eq!(params(1), ["endLine", "fileName", "startLine"]);
        assert_eq!(params(2), ["server", "tool"]);
        assert_eq!(params(3), ["code"]);
        assert_eq!(DEFINITIONS[1].input_schema["required"], json!(["fileName"]));
        for m in [LIST_TOOL_FILES, READ_TOOL_FILE, GET_TOOL_DOCS] {
            assert!(MetaTool::parse(m).unwrap().read_only());
        }
        assert!(!MetaTool::parse(EXECUTE_TOOL_CODE).unwrap().read_only());
        assert_eq!(MetaTool::parse("github-list"), None);
    }
}
