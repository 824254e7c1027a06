//! The mock's Bedrock endpoint (`POST /model/{modelId}/converse` and
//! `/converse-stream`): the mock's deterministic answers in Converse's wire
//! format, streams in the AWS event-stream framing, errors as Bedrock writes
//! them (`x-amzn-ErrorType`, `{"message"}`).
//!
//! Requests must be authenticated as Bedrock's are: a Bedrock API key
//! (`Authorization: Bearer …`, any value), or SigV4, which the mock checks
//! for real: the secret of access key id `X` is `X-secret`, and a request
//! whose signature does not cover exactly the path, headers and body it was
//! sent with is refused (403 `InvalidSignatureException`). A `toolUse` of the
//! first tool answers a user turn when tools are offered; Claude's thinking
//! field adds a reasoning block; cache points write, then read, the prompt
//! prefix before the last one.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use serde_json::{Value, json};

use super::{Mock, count_tokens, example_args, fnv, split_words, stream_frames, text_for};
use crate::config::Secret;
use crate::providers::aws::sigv4;
use crate::translate::bedrock::{event_frame, exception_name};

fn error(status: u16, message: &str) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = (code, Json(json!({"message": message}))).into_response();
    r.headers_mut().insert(
        "x-amzn-errortype",
        HeaderValue::from_static(exception_name(status)),
    );
    r
}

/// The access key id a SigV4 `Authorization` names, if it is one.
pub(super) fn access_key_id(authorization: &str) -> Option<&str> {
    let rest = authorization.strip_prefix("AWS4-HMAC-SHA256 ")?;
    let cred = rest
        .split(", ")
        .find_map(|p| p.strip_prefix("Credential="))?;
    cred.split('/').next()
}

/// The `Credential=` of a SigV4 `Authorization` (key id, date, region,
/// service), for `/mock/last`.
pub(super) fn credential_scope(authorization: &str) -> Option<String> {
    access_key_id(authorization)?;
    authorization
        .split(", ")
        .find_map(|p| p.split_once("Credential=").map(|(_, v)| v.to_string()))
}

/// Checks the request's authentication as Bedrock would; `Err` says why not.
fn authenticate(h: &HeaderMap, uri: &Uri, body: &[u8]) -> Result<(), &'static str> {
    let auth = h
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if auth.starts_with("Bearer ") {
        return Ok(());
    }
    let refuse = Err;
    let Some(id) = access_key_id(auth) else {
        return refuse("Missing Authentication Token");
    };
    let field = |name: &str| {
        auth.split(", ")
            .find_map(|p| p.split_once(name).map(|(_, v)| v))
            .unwrap_or("")
    };
    let scope: Vec<&str> = field("Credential=").split('/').collect();
    let signed: Vec<&str> = field("SignedHeaders=").split(';').collect();
    let (Some(region), Some(service)) = (scope.get(2), scope.get(3)) else {
        return refuse("malformed Credential scope");
    };
    let values: Vec<(&str, String)> = signed
        .iter()
        .map(|name| {
            let v = match *name {
                "host" => h
                    .get(header::HOST)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string(),
                n => h
                    .get(n)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string(),
            };
            (*name, v)
        })
        .collect();
    let headers: Vec<(&str, &str)> = values.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let date = h
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let session_token = h
        .get("x-amz-security-token")
        .and_then(|v| v.to_str().ok())
        .map(Secret::new);
    let expected = sigv4::authorization(
        &sigv4::Signable {
            method: "POST",
            path: uri.path(),
            query: &[],
            headers: &headers,
            payload_hash: &sigv4::sha256_hex(body),
        },
        &sigv4::Credentials {
            access_key_id: id.to_string(),
            secret_access_key: Secret::new(format!("{id}-secret")),
            session_token,
        },
        region,
        service,
        date,
    );
    if expected != auth || !signed.contains(&"host") || !signed.contains(&"x-amz-date") {
        return refuse(
            "The request signature we calculated does not match the signature you provided.",
        );
    }
    Ok(())
}

/// The `toolUse` answering a user turn, when tools are offered.
fn tool_use(req: &Value, seed: u64) -> Option<Value> {
    let spec = req
        .pointer("/toolConfig/tools")?
        .as_array()?
        .iter()
        .find_map(|t| t.get("toolSpec"))?;
    let last = req.get("messages")?.as_array()?.last()?;
    if last.get("role").and_then(Value::as_str) != Some("user") {
        return None;
    }
    let answered = last
        .get("content")
        .and_then(Value::as_array)
        .is_some_and(|c| c.iter().any(|b| b.get("toolResult").is_some()));
    if answered {
        return None;
    }
    let schema = spec.pointer("/inputSchema/json").unwrap_or(&Value::Null);
    Some(
        json!({"toolUseId": format!("tooluse_{seed:016x}"), "name": spec.get("name")?,
        "input": example_args(schema)}),
    )
}

/// Input tokens, split as a prompt cache would: (plain, written, read).
fn prompt_tokens(m: &Mock, req: &Value) -> (u64, u64, u64) {
    let mut blocks: Vec<&Value> = Vec::new();
    for list in [req.get("system"), req.pointer("/toolConfig/tools")] {
        blocks.extend(list.and_then(Value::as_array).into_iter().flatten());
    }
    for msg in req
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        blocks.extend(
            msg.get("content")
                .and_then(Value::as_array)
                .into_iter()
                .flatten(),
        );
    }
    let tokens = |bs: &[&Value]| bs.iter().map(|b| count_tokens(b)).sum::<u64>();
    let all = tokens(&blocks);
    let Some(last) = blocks.iter().rposition(|b| b.get("cachePoint").is_some()) else {
        return (all, 0, 0);
    };
    let prefix = tokens(&blocks[..last]);
    let key = fnv(serde_json::to_string(&blocks[..last])
        .unwrap_or_default()
        .as_bytes());
    let fresh = m.prompt_cache.lock().expect("mock cache lock").insert(key);
    if fresh {
        (all - prefix, prefix, 0)
    } else {
        (all - prefix, 0, prefix)
    }
}

pub(super) async fn converse(
    State(m): State<Mock>,
    Path((model, op)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let stream = match op.as_str() {
        "converse" => false,
        "converse-stream" => true,
        _ => return error(404, &format!("unknown operation {op}")),
    };
    if let Err(why) = authenticate(&headers, &uri, &body) {
        let mut r = error(403, why);
        r.headers_mut().insert(
            "x-amzn-errortype",
            HeaderValue::from_static("InvalidSignatureException"),
        );
        return r;
    }
    let (plan, req) = match m.begin(&headers, &body) {
        Ok(v) => v,
        Err(r) => return r.response_as(error),
    };
    if !req.get("messages").is_some_and(Value::is_array) {
        return error(400, "messages is required");
    }
    let seed = fnv(&body);
    let (input, written, read) = prompt_tokens(&m, &req);
    let cap = req
        .pointer("/inferenceConfig/maxTokens")
        .and_then(Value::as_u64)
        .map_or(usize::MAX, |n| n as usize);
    let words = text_for(seed, plan.words.min(cap).max(1));
    let call = tool_use(&req, seed);
    let thinking = req
        .pointer("/additionalModelRequestFields/thinking/type")
        .and_then(Value::as_str)
        == Some("enabled");
    let reasoning = thinking.then(|| format!("The user wrote {input} tokens; answer plainly."));
    let output = if call.is_some() {
        8
    } else {
        words.len() as u64
    } + if thinking { 8 } else { 0 };
    m.bill(output);
    let usage = json!({"inputTokens": input, "outputTokens": output,
        "totalTokens": input + output + written + read,
        "cacheReadInputTokens": read, "cacheWriteInputTokens": written});
    let stop = if call.is_some() {
        "tool_use"
    } else {
        "end_turn"
    };
    if !plan.latency.is_zero() {
        tokio::time::sleep(plan.latency).await;
    }
    let signature = super::signature(seed);
    if !stream {
        let mut content = Vec::new();
        if let Some(r) = &reasoning {
            content.push(
                json!({"reasoningContent": {"reasoningText": {"text": r, "signature": signature}}}),
            );
        }
        content.push(match call {
            Some(c) => json!({"toolUse": c}),
            None => json!({"text": words.join(" ")}),
        });
        let _ = model;
        return Json(json!({
            "output": {"message": {"role": "assistant", "content": content}},
            "stopReason": stop,
            "usage": usage,
            "metrics": {"latencyMs": 1},
        }))
        .into_response();
    }
    let mut events: Vec<(&str, Value)> = vec![("messageStart", json!({"role": "assistant"}))];
    let mut index = 0;
    if let Some(r) = reasoning {
        events.push((
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": r}}}),
        ));
        events.push(("contentBlockDelta", json!({"contentBlockIndex": 0, "delta": {"reasoningContent": {"signature": signature}}})));
        events.push(("contentBlockStop", json!({"contentBlockIndex": 0})));
        index = 1;
    }
    match call {
        Some(c) => {
            events.push((
                "contentBlockStart",
                json!({"contentBlockIndex": index,
                "start": {"toolUse": {"toolUseId": c["toolUseId"], "name": c["name"]}}}),
            ));
            let input = c["input"].to_string();
            let cut = input.len() / 2;
            let cut = (0..=cut)
                .rev()
                .find(|&i| input.is_char_boundary(i))
                .unwrap_or(0);
            for piece in [&input[..cut], &input[cut..]] {
                events.push((
                    "contentBlockDelta",
                    json!({"contentBlockIndex": index,
                    "delta": {"toolUse": {"input": piece}}}),
                ));
            }
        }
        None => {
            for w in split_words(&words, plan.chunks) {
                events.push((
                    "contentBlockDelta",
                    json!({"contentBlockIndex": index, "delta": {"text": w}}),
                ));
            }
        }
    }
    events.push(("contentBlockStop", json!({"contentBlockIndex": index})));
    events.push(("messageStop", json!({"stopReason": stop})));
    events.push((
        "metadata",
        json!({"usage": usage, "metrics": {"latencyMs": 1}}),
    ));
    let frames: Vec<Bytes> = events
        .iter()
        .map(|(name, payload)| {
            let mut out = Vec::new();
            event_frame(name, payload, &mut out);
            Bytes::from(out)
        })
        .collect();
    // Frame 0 is `messageStart`; content follows it.
    let cut_at = plan.fail_after.map(|n| n + 1);
    stream_frames(frames, cut_at, &plan, "application/vnd.amazon.eventstream")
}
