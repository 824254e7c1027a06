//! One upstream tool call under governance: counted against the key's rate
//! limits, its price reserved, executed, logged and settled. `/mcp`
//! (`server`), agent mode and Code Mode's scripts all call tools through it;
//! it knows none of them. Reading a resource and getting a prompt go the same
//! way (counted, logged; they have no price).

use std::sync::Arc;

use rmcp::model::{CallToolResult, ContentBlock, GetPromptResult, JsonObject, ReadResourceResult};
use serde_json::Value;
use tokio::sync::mpsc;

use super::catalog::Entry;
use super::upstream::{CallError, Progress, Upstreams};
use crate::governance::{Governance, KeyView};
use crate::observability::otel::{Kind, SpanContext, Tracer};
use crate::observability::tool_log::{ToolLog, ToolLogs};

/// Longest result kept in a tool log record, in characters.
const LOGGED_RESULT_CHARS: usize = 4096;

/// What a governed tool call needs: the upstream servers, governance and
/// the tool log.
#[derive(Clone)]
pub struct ToolCalls {
    pub upstreams: Arc<Upstreams>,
    pub governance: Arc<Governance>,
    pub tool_logs: ToolLogs,
    pub tracer: Tracer,
}

impl ToolCalls {
    /// Executes a tool call the key may make: counts it against the key's rate
    /// limits, charges its price to the key's budgets, calls the upstream and
    /// logs the execution. `Err` is a refusal by policy (nothing was called);
    /// failures of the tool itself are results with `isError`, which a model can
    /// read. Shared by `/mcp`, agent mode and Code Mode.
    pub async fn execute(
        &self,
        key: &KeyView,
        tool: &super::index::IndexedTool,
        arguments: Option<JsonObject>,
        parent_request: Option<String>,
        trace: Option<SpanContext>,
    ) -> Result<CallToolResult, String> {
        self.execute_relaying(key, tool, arguments, parent_request, trace, None)
            .await
    }

    /// [`Self::execute`], relaying the server's progress notifications to `progress`.
    pub async fn execute_relaying(
        &self,
        key: &KeyView,
        tool: &super::index::IndexedTool,
        arguments: Option<JsonObject>,
        parent_request: Option<String>,
        trace: Option<SpanContext>,
        progress: Option<mpsc::Sender<Progress>>,
    ) -> Result<CallToolResult, String> {
        // The call to the upstream server (MCP semantic conventions).
        let mut span = self.tracer.start(
            || format!("tools/call {}", tool.name()),
            Kind::Client,
            trace,
        );
        if span.is_recording() {
            span.set("mcp.method.name", "tools/call");
            span.set("gen_ai.operation.name", "execute_tool");
            span.set("gen_ai.tool.name", tool.name().to_string());
            span.set("tollgate.mcp.server", tool.server.to_string());
            span.set("tollgate.virtual_key", key.key.id.clone());
        }
        let admitted = self.governance.admit(key, &[]).map_err(|e| {
            let refused = format!("rate limit: {e}");
            span.fail("rate_limited", refused.clone());
            refused
        })?;
        let reservation = if tool.price_micros > 0 {
            match self.governance.reserve(key, &[], tool.price_micros) {
                // Settled below, or charged in full if this future is dropped
                // while the tool may be running.
                Ok(r) => crate::governance::hold::Hold::new(self.governance.clone(), r),
                Err(e) => {
                    if let Some(a) = &admitted {
                        self.governance.unadmit(a);
                    }
                    span.fail("budget_exceeded", format!("budget: {e}"));
                    return Err(format!("budget: {e}"));
                }
            }
        } else {
            crate::governance::hold::Hold::new(self.governance.clone(), None)
        };
        let started = std::time::Instant::now();
        let ts_ms = self.governance.now_ms();
        let logged_args = arguments.clone().map(Value::Object).unwrap_or(Value::Null);
        let result = match self.upstreams.call(tool, arguments, progress).await {
            Ok(r) => r,
            Err(e) => CallToolResult::error(vec![ContentBlock::text(e.to_string())]),
        };
        let failed = result.is_error == Some(true);
        // A failed call is not charged.
        let cost = if failed { 0 } else { tool.price_micros };
        span.set("tollgate.cost_micros", cost);
        if failed {
            span.fail("tool_error", "the tool answered an error");
        }
        reservation.settle(cost);
        self.tool_logs.record(ToolLog {
            id: String::new(),
            ts_ms,
            tool: tool.name().to_string(),
            server: tool.server.to_string(),
            arguments: logged_args.to_string(),
            result: logged(&result.content),
            is_error: failed,
            latency_us: started.elapsed().as_micros() as u64,
            virtual_key: Some(key.key.id.clone()),
            parent_request,
            cost_micros: cost,
            method: "tools/call".to_string(),
        });
        Ok(result)
    }

    /// Reads the resource `uri` (listed as, or matched by the template,
    /// `entry`) for a key that may: counted against its rate limits, logged.
    /// `Err` is a refusal or the server's failure, as the client is told.
    pub async fn read_resource(
        &self,
        key: &KeyView,
        entry: &Entry,
        uri: &str,
        trace: Option<SpanContext>,
    ) -> Result<ReadResourceResult, String> {
        let read = self
            .upstreams
            .read_resource(&entry.server, entry.subject.as_deref(), uri);
        let args = serde_json::json!({"uri": uri});
        self.fetch("resources/read", key, entry, args, trace, read, |r| {
            logged(&r.contents)
        })
        .await
    }

    /// Gets the prompt `entry` with `arguments` for a key that may.
    pub async fn get_prompt(
        &self,
        key: &KeyView,
        entry: &Entry,
        arguments: Option<JsonObject>,
        trace: Option<SpanContext>,
    ) -> Result<GetPromptResult, String> {
        let args = arguments.clone().map(Value::Object).unwrap_or(Value::Null);
        let get = self.upstreams.get_prompt(
            &entry.server,
            entry.subject.as_deref(),
            &entry.original,
            arguments,
        );
        self.fetch("prompts/get", key, entry, args, trace, get, |r| {
            logged(&r.messages)
        })
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn fetch<T>(
        &self,
        method: &str,
        key: &KeyView,
        entry: &Entry,
        args: Value,
        trace: Option<SpanContext>,
        call: impl Future<Output = Result<T, CallError>>,
        shown: impl Fn(&T) -> String,
    ) -> Result<T, String> {
        let mut span =
            self.tracer
                .start(|| format!("{method} {}", entry.name), Kind::Client, trace);
        if span.is_recording() {
            span.set("mcp.method.name", method.to_string());
            span.set("tollgate.mcp.server", entry.server.to_string());
            span.set("tollgate.virtual_key", key.key.id.clone());
        }
        self.governance.admit(key, &[]).map_err(|e| {
            let refused = format!("rate limit: {e}");
            span.fail("rate_limited", refused.clone());
            refused
        })?;
        let started = std::time::Instant::now();
        let ts_ms = self.governance.now_ms();
        let answer = call.await;
        let (result, is_error) = match &answer {
            Ok(r) => (shown(r), false),
            Err(e) => {
                span.fail("upstream_error", e.to_string());
                (e.to_string(), true)
            }
        };
        self.tool_logs.record(ToolLog {
            id: String::new(),
            ts_ms,
            tool: entry.name.clone(),
            server: entry.server.to_string(),
            arguments: args.to_string(),
            result,
            is_error,
            latency_us: started.elapsed().as_micros() as u64,
            virtual_key: Some(key.key.id.clone()),
            parent_request: None,
            cost_micros: 0,
            method: method.to_string(),
        });
        answer.map_err(|e| e.to_string())
    }
}

/// A result's content as the log keeps it: JSON, cut to a few KiB.
fn logged(content: &impl serde::Serialize) -> String {
    let mut shown = serde_json::to_string(content).unwrap_or_default();
    if shown.chars().count() > LOGGED_RESULT_CHARS {
        shown = shown.chars().take(LOGGED_RESULT_CHARS).collect::<String>() + "…";
    }
    shown
}
