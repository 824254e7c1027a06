//! MCP tools in chat completions, and agent mode.
//!
//! A chat completion (or a non-streaming Anthropic Messages, Responses or
//! Gemini generateContent request, read into one and answered back in its
//! own format) sent with `x-tollgate-mcp: tools` gets the MCP tools its
//! key may use appended to its `tools` (narrowed by
//! `x-tollgate-mcp-include: pattern,...`). With `x-tollgate-mcp: agent` the
//! gateway also runs the loop: when the model answers with tool calls that
//! are all auto-executable (on the key's `auto_execute` list or the server's),
//! it executes them in parallel, appends the results and calls the model
//! again, up to `[mcp] agent_max_depth` rounds (a request may lower it with
//! `x-tollgate-mcp-max-depth`). An answer with any other tool call goes back
//! to the client unexecuted, since the client must answer every call of it.
//!
//! Tools of Code Mode servers are not appended; the four Code Mode
//! meta-tools are ([`crate::codemode::meta`]). The three that read stubs
//! always auto-execute; `executeToolCode` does when every tool its script
//! can reach is auto-executable, and each call the script makes is checked
//! again when it happens.
//!
//! This sits in front of the proxy as a layer: every model call of the loop
//! is a whole pass through the proxy pipeline (authentication, limits,
//! budgets, logs), and every tool execution goes through
//! [`super::call::ToolCalls::execute`], which logs it with the model call
//! that asked for it as its parent.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Method, StatusCode, header};
use rmcp::model::{CallToolResult, JsonObject};
use serde_json::{Value, json};

use super::index::IndexedTool;
use super::server::McpState;
use crate::codemode::meta::{self, CodeModeTools, MetaTool};
use crate::governance::KeyView;
use crate::providers::openai::Endpoint;
use crate::proxy::Gateway;
use crate::routing::Pattern;
use crate::translate::Format;

/// Selects the mode: `tools` or `agent`.
pub const MODE_HEADER: &str = "x-tollgate-mcp";
pub const INCLUDE_HEADER: &str = "x-tollgate-mcp-include";
pub const MAX_DEPTH_HEADER: &str = "x-tollgate-mcp-max-depth";
/// On the answer: how many rounds of tools the gateway executed.
pub const DEPTH_HEADER: &str = "x-tollgate-mcp-depth";

#[derive(Clone)]
pub struct AgentState {
    pub gateway: Arc<Gateway>,
    pub mcp: McpState,
    pub max_depth: u32,
    pub max_body_bytes: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Tools,
    Agent,
}

fn refuse(message: &str) -> Response {
    let body = json!({"error": {"message": message, "type": "invalid_request_error"}});
    (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
}

/// The layer over the proxy's routes: chat completions asking for MCP tools
/// come here, everything else passes.
pub async fn layer(State(s): State<Arc<AgentState>>, req: Request, next: Next) -> Response {
    let Some(raw) = req.headers().get(MODE_HEADER) else {
        return next.run(req).await;
    };
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let Some(format) = surface(req.uri().path()) else {
        return next.run(req).await;
    };
    let mode = match raw.to_str() {
        Ok("tools") => Mode::Tools,
        Ok("agent") => Mode::Agent,
        _ => return refuse("x-tollgate-mcp must be 'tools' or 'agent'"),
    };
    let key = crate::proxy::presented_key(req.headers())
        .and_then(|secret| s.mcp.governance.authenticate(secret).ok());
    let Some(key) = key else {
        // The pipeline refuses it with the precise reason.
        return next.run(req).await;
    };
    let depth_limit = match req.headers().get(MAX_DEPTH_HEADER) {
        None => s.max_depth,
        Some(v) => match v.to_str().ok().and_then(|v| v.parse::<u32>().ok()) {
            Some(d) => d.min(s.max_depth),
            None => return refuse("x-tollgate-mcp-max-depth must be a whole number"),
        },
    };
    let include: Option<Vec<Pattern>> = req
        .headers()
        .get(INCLUDE_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(Pattern::new)
                .collect()
        });
    let (mut parts, body) = req.into_parts();
    // The whole loop is one span; each model call and tool call is a child.
    let mut agent_span = s.gateway.tracer.start(
        "agent",
        crate::observability::otel::Kind::Server,
        crate::observability::otel::SpanContext::from_headers(&parts.headers),
    );
    if let Some(c) = agent_span.context() {
        parts.headers.insert("traceparent", c.header());
    }
    let Ok(bytes) = axum::body::to_bytes(body, s.max_body_bytes).await else {
        return refuse("request body too large or unreadable");
    };
    let mut body = if format == Format::OpenAi {
        let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&bytes) else {
            // Not an object: the pipeline says what is wrong with it.
            let req = Request::from_parts(parts, Body::from(bytes));
            return crate::proxy::handle(s.gateway.clone(), Endpoint::ChatCompletions, req).await;
        };
        body
    } else {
        match native_body(format, parts.uri.path(), &bytes) {
            Ok(body) => body,
            Err(message) => return native_error(format, StatusCode::BAD_REQUEST, &message),
        }
    };
    let requested_model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    agent_span.rename(|| format!("agent {requested_model}"));
    agent_span.set("gen_ai.operation.name", "invoke_agent");
    agent_span.set("gen_ai.request.model", requested_model.clone());
    let trace = agent_span.context();
    let index = s.mcp.upstreams.index();
    let offered: Vec<&Arc<IndexedTool>> = index
        .direct(&key.tools)
        .filter(|t| {
            include
                .as_ref()
                .is_none_or(|ps| ps.iter().any(|p| p.matches(t.name())))
        })
        .collect();
    let tools = body
        .entry("tools")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(list) = tools {
        let meta = index
            .has_code_mode(&key.tools)
            .then_some(&*meta::DEFINITIONS)
            .into_iter()
            .flatten();
        let shown = offered.iter().map(|t| &t.shown).chain(meta);
        list.extend(shown.map(|t| {
            json!({"type": "function", "function": {
                "name": t.name,
                "description": t.description,
                "parameters": t.input_schema,
            }})
        }));
    }
    let streaming = body.get("stream").and_then(Value::as_bool) == Some(true);
    let mut depth = 0u32;
    loop {
        let mut req = Request::from_parts(
            parts.clone(),
            Body::from(serde_json::to_vec(&body).expect("JSON serializes")),
        );
        req.headers_mut().remove(header::CONTENT_LENGTH);
        let resp = crate::proxy::handle(s.gateway.clone(), Endpoint::ChatCompletions, req).await;
        if mode == Mode::Tools || streaming || resp.status() != StatusCode::OK {
            return in_format(format, &requested_model, with_depth(resp, depth)).await;
        }
        let (rparts, rbody) = resp.into_parts();
        let Ok(rbytes) = axum::body::to_bytes(rbody, usize::MAX).await else {
            return (
                StatusCode::BAD_GATEWAY,
                "the model's answer could not be read",
            )
                .into_response();
        };
        let answer: Value = serde_json::from_slice(&rbytes).unwrap_or(Value::Null);
        let message = &answer["choices"][0]["message"];
        let calls = message["tool_calls"].as_array().filter(|c| !c.is_empty());
        let runnable = calls.and_then(|calls| auto_calls(&key, &index, calls));
        let (Some(runnable), true) = (runnable, depth < depth_limit) else {
            let resp = with_depth(Response::from_parts(rparts, Body::from(rbytes)), depth);
            return in_format(format, &requested_model, resp).await;
        };
        depth += 1;
        let parent = rparts
            .headers
            .get("x-tollgate-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let results =
            futures_util::future::join_all(runnable.into_iter().map(|(id, target, args)| {
                let mcp = &s.mcp;
                let key = &key;
                let parent = parent.clone();
                async move {
                    let outcome = match target {
                        Target::Tool(tool) => {
                            mcp.calls().execute(key, &tool, args, parent, trace).await
                        }
                        Target::Meta(m) => {
                            let call = meta::Call {
                                key,
                                parent,
                                trace,
                                auto_only: true,
                            };
                            meta::call(&mcp.calls(), &mcp.code_mode, m, args, call).await
                        }
                    };
                    let text = match outcome {
                        Ok(r) => result_text(&r),
                        Err(refused) => format!("refused: {refused}"),
                    };
                    json!({"role": "tool", "tool_call_id": id, "content": text})
                }
            }))
            .await;
        let messages = body
            .entry("messages")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(list) = messages {
            list.push(message.clone());
            list.extend(results);
        }
    }
}

/// What an auto-executed call runs.
enum Target {
    Tool(Arc<IndexedTool>),
    Meta(MetaTool),
}

/// A tool call the gateway runs itself: (call id, what it runs, arguments).
type AutoCall = (String, Target, Option<JsonObject>);

/// The calls as (id, target, arguments) if every one of them is one the
/// gateway may run for the model; `None` if any must go to the client.
///
/// A direct tool must be on the key's or its server's auto-execute list. Of
/// the Code Mode meta-tools, the three that read stubs always run;
/// `executeToolCode` runs only if every tool its script can reach is
/// auto-executable (and each call it makes is checked again as it happens).
fn auto_calls(
    key: &KeyView,
    index: &super::index::ToolIndex,
    calls: &[Value],
) -> Option<Vec<AutoCall>> {
    calls
        .iter()
        .map(|c| {
            let name = c["function"]["name"].as_str()?;
            let args = match c["function"]["arguments"].as_str() {
                Some(a) if !a.trim().is_empty() => serde_json::from_str::<JsonObject>(a).ok(),
                _ => None,
            };
            let target = match MetaTool::offered(name, index, &key.tools) {
                Some(m) if m.read_only() => Target::Meta(m),
                Some(m) => {
                    let code = args.as_ref()?.get("code")?.as_str()?;
                    let reach = CodeModeTools::of(index, &key.tools).reachable(code);
                    if !reach.iter().all(|t| meta::auto_executable(&key.tools, t)) {
                        return None;
                    }
                    Target::Meta(m)
                }
                None => {
                    let tool = index.get_direct(&key.tools, name)?;
                    if !meta::auto_executable(&key.tools, tool) {
                        return None;
                    }
                    Target::Tool(tool.clone())
                }
            };
            Some((c["id"].as_str()?.to_string(), target, args))
        })
        .collect()
}

/// What a tool result says, as text for the model.
fn result_text(r: &CallToolResult) -> String {
    let texts: Vec<&str> = r
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.as_str()))
        .collect();
    if texts.len() == r.content.len() && !texts.is_empty() {
        texts.join("\n")
    } else {
        serde_json::to_string(&r.content).unwrap_or_default()
    }
}

/// The wire format of a route agent mode serves: chat completions, and the
/// native surfaces' whole-response routes.
fn surface(path: &str) -> Option<Format> {
    if path.ends_with("/chat/completions") {
        Some(Format::OpenAi)
    } else if path.ends_with("/anthropic/v1/messages") {
        Some(Format::Anthropic)
    } else if path.ends_with("/responses") {
        Some(Format::Responses)
    } else if crate::proxy::is_gemini_models_path(path)
        && (path.ends_with(":generateContent") || path.ends_with(":streamGenerateContent"))
    {
        Some(Format::Gemini)
    } else {
        None
    }
}

/// A native request as the chat completion the loop runs on. Agent mode
/// answers whole responses, so a native streaming request is refused.
fn native_body(
    format: Format,
    path: &str,
    bytes: &[u8],
) -> Result<serde_json::Map<String, Value>, String> {
    let mut v: Value = serde_json::from_slice(bytes)
        .map_err(|e| format!("request body is not valid JSON: {e}"))?;
    let streaming = v.get("stream").and_then(Value::as_bool) == Some(true)
        || path.ends_with(":streamGenerateContent");
    if streaming {
        return Err(
            "x-tollgate-mcp on this surface answers whole responses: send the request without streaming"
                .into(),
        );
    }
    if format == Format::Gemini {
        // Gemini names the model in the path: models/{model}:generateContent.
        let model = path
            .rsplit_once("/models/")
            .and_then(|(_, rest)| rest.split_once(':'))
            .map(|(m, _)| m.to_string())
            .unwrap_or_default();
        if let Value::Object(o) = &mut v {
            o.insert("model".into(), Value::String(model));
        }
    }
    let bytes = serde_json::to_vec(&v).expect("JSON serializes");
    let read = crate::translate::read_request(format, &bytes, |_| None).map_err(|e| e.0)?;
    match serde_json::from_slice::<Value>(&read.internal) {
        Ok(Value::Object(mut body)) => {
            body.insert("stream".into(), Value::Bool(false));
            body.remove("stream_options");
            Ok(body)
        }
        _ => Err("the request could not be read".into()),
    }
}

/// An error in the client's format.
fn native_error(format: Format, status: StatusCode, message: &str) -> Response {
    match crate::translate::error_body(format, status.as_u16(), message) {
        Some(body) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response(),
        None => refuse(message),
    }
}

/// The loop's final answer (a chat completion) in the client's format.
async fn in_format(format: Format, model: &str, resp: Response) -> Response {
    if format == Format::OpenAi {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return native_error(
            format,
            StatusCode::BAD_GATEWAY,
            "the model's answer could not be read",
        );
    };
    if parts.status != StatusCode::OK {
        let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let message = v["error"]["message"].as_str().unwrap_or("request failed");
        let mut err = native_error(format, parts.status, message);
        for name in [DEPTH_HEADER, "x-tollgate-request-id", "retry-after"] {
            if let Some(v) = parts.headers.get(name) {
                err.headers_mut().insert(name, v.clone());
            }
        }
        return err;
    }
    let Some(answer) = crate::translate::read_response(&bytes, model) else {
        return native_error(
            format,
            StatusCode::BAD_GATEWAY,
            "the model's answer could not be read",
        );
    };
    let id = parts
        .headers
        .get("x-tollgate-request-id")
        .and_then(|v| v.to_str().ok())
        .map_or_else(|| "resp_agent".to_string(), |r| format!("resp_{r}"));
    let out = crate::translate::client_response(format, &answer, &id);
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(out))
}

fn with_depth(mut resp: Response, depth: u32) -> Response {
    resp.headers_mut()
        .insert(DEPTH_HEADER, HeaderValue::from(depth));
    resp
}
