//! One upstream tool call under governance: counted against the key's rate
//! limits, its price reserved, executed, logged and settled. `/mcp`
//! (`server`), agent mode and Code Mode's scripts all call tools through it;
//! it knows none of them.

use std::sync::Arc;

use rmcp::model::{CallToolResult, ContentBlock};
use serde_json::Value;

use super::upstream::Upstreams;
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
        arguments: Option<rmcp::model::JsonObject>,
        parent_request: Option<String>,
        trace: Option<SpanContext>,
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
        let result = match self.upstreams.call(tool, arguments).await {
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
        let mut shown = serde_json::to_string(&result.content).unwrap_or_default();
        if shown.chars().count() > LOGGED_RESULT_CHARS {
            shown = shown.chars().take(LOGGED_RESULT_CHARS).collect::<String>() + "…";
        }
        self.tool_logs.record(ToolLog {
            id: String::new(),
            ts_ms,
            tool: tool.name().to_string(),
            server: tool.server.to_string(),
            arguments: logged_args.to_string(),
            result: shown,
            is_error: failed,
            latency_us: started.elapsed().as_micros() as u64,
            virtual_key: Some(key.key.id.clone()),
            parent_request,
            cost_micros: cost,
        });
        Ok(result)
    }
}
