//! `/mcp` for per-user OAuth servers: whose tools a request reaches (its
//! subject: the virtual key, or an end user of it named by
//! `mcp.user_header`), and a call of one of them, or the link to authorise
//! when the subject holds no token.

use super::*;
use crate::mcp::upstream::personal::{AUTHORIZE_TOOL, Reach};

/// Longest end-user name accepted in `mcp.user_header`.
const MAX_USER: usize = 128;

/// The request's subject: `key:<id>`, or `key:<id>:user:<name>` when the
/// operator's user header names one. Users of one key never share tokens
/// with users of another key.
pub(super) fn subject(s: &McpState, headers: &HeaderMap, key: &KeyView) -> Result<String, String> {
    let own = format!("key:{}", key.key.id);
    if s.user_header.is_empty() {
        return Ok(own);
    }
    let Some(v) = headers.get(&*s.user_header) else {
        return Ok(own);
    };
    match v.to_str() {
        Ok(user)
            if !user.is_empty()
                && user.len() <= MAX_USER
                && user.bytes().all(|b| b.is_ascii_graphic() && b != b'|') =>
        {
            Ok(format!("{own}:user:{user}"))
        }
        _ => Err(format!(
            "{}: at most {MAX_USER} printable ASCII characters, without '|'",
            s.user_header
        )),
    }
}

/// A `tools/call` of a name outside the node's index: a tool of a per-user
/// server over the subject's connection, its `authorize` tool, or unknown.
pub(super) async fn call(
    s: &McpState,
    key: &KeyView,
    subject: &str,
    p: CallToolRequestParams,
    span: &mut Span,
    progress: Option<mpsc::Sender<Progress>>,
) -> Answer {
    let unknown = || Err(fault(INVALID_PARAMS, format!("unknown tool: {}", p.name)));
    let Some((server_name, tool_name)) = crate::mcp::split_tool_name(&p.name) else {
        return unknown();
    };
    let authorize = tool_name == AUTHORIZE_TOOL;
    let allowed = key.tools.allows(&p.name) || (authorize && key.tools.reaches_server(server_name));
    let server = s
        .upstreams
        .per_user_servers()
        .iter()
        .find(|x| x.id == server_name)
        .cloned();
    let (true, Some(server)) = (allowed, server) else {
        return unknown();
    };
    match s.upstreams.reach(&server, subject).await {
        Ok(Reach::Tools(index)) => match index.get_direct(&key.tools, &p.name) {
            Some(tool) => {
                let outcome = s
                    .calls()
                    .execute_relaying(key, tool, p.arguments, None, span.context(), progress)
                    .await;
                tool_answer(outcome, span)
            }
            None if authorize => text_result(
                format!("The gateway is already authorised for '{server_name}' for you."),
                false,
                None,
            ),
            None => unknown(),
        },
        Ok(Reach::Authorise { url, why }) => {
            if !authorize {
                span.fail("authorisation_needed", why.clone());
            }
            text_result(
                format!(
                    "Authorisation needed for the MCP server '{server_name}' ({why}). Open this link in a browser, then call the tool again: {url}"
                ),
                !authorize,
                Some(json!({"authorization_url": url})),
            )
        }
        Err(why) => {
            span.fail("tool_error", why.clone());
            text_result(
                format!("MCP server '{server_name}' failed: {why}"),
                true,
                None,
            )
        }
    }
}

fn text_result(text: String, is_error: bool, structured: Option<Value>) -> Answer {
    let mut result = if is_error {
        CallToolResult::error(vec![rmcp::model::ContentBlock::text(text)])
    } else {
        CallToolResult::success(vec![rmcp::model::ContentBlock::text(text)])
    };
    result.structured_content = structured;
    Ok(Reply::Value(
        serde_json::to_value(result).expect("results encode"),
    ))
}
