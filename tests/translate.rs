//! Translation end to end: every inbound format (OpenAI chat, Anthropic
//! Messages, Gemini generateContent) against every upstream format, over real sockets, with the real mock answering in each upstream
//! wire format. Each answer is read back in the client's own format and
//! checked for the same facts: the mock's deterministic text, its tool call
//! with arguments built from the offered schema, stop reasons and usage.

mod common;

use common::*;
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Inbound {
    OpenAi,
    Anthropic,
    Gemini,
    Responses,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Upstream {
    OpenAi,
    Anthropic,
    Gemini,
    Bedrock,
    VertexGemini,
    VertexClaude,
    Cohere,
}

const UPSTREAMS: [Upstream; 7] = [
    Upstream::OpenAi,
    Upstream::Anthropic,
    Upstream::Gemini,
    Upstream::Bedrock,
    Upstream::VertexGemini,
    Upstream::VertexClaude,
    Upstream::Cohere,
];
const INBOUNDS: [Inbound; 4] = [
    Inbound::OpenAi,
    Inbound::Anthropic,
    Inbound::Gemini,
    Inbound::Responses,
];

/// One provider per upstream format, all at the same mock.
fn config(mock: &Proc, extra: &str) -> String {
    format!(
        "[providers.oai]\nkind = \"mock\"\nbase_url = \"http://{a}/v1\"\n{extra}\n\
         [providers.ant]\nkind = \"anthropic\"\nbase_url = \"http://{a}/v1\"\napi_key = \"mock-key\"\n{extra}\n\
         [providers.gem]\nkind = \"gemini\"\nbase_url = \"http://{a}/v1beta\"\napi_key = \"mock-key\"\n{extra}\n\
         [providers.bed]\nkind = \"bedrock\"\nbase_url = \"http://{a}\"\nregion = \"us-west-2\"\n\
         keys = [{{ name = \"signed\", access_key_id = \"AKIDMOCK\", secret = \"AKIDMOCK-secret\" }}]\n{extra}\n\
         [providers.vx]\nkind = \"vertex\"\nbase_url = \"http://{a}\"\nproject = \"proj-1\"\n\
         api_key = \"ya29.matrix-token\"\n{extra}\n\
         [providers.coh]\nkind = \"cohere\"\nbase_url = \"http://{a}/v2\"\napi_key = \"cohere-key\"\n{extra}\n",
        a = mock.addr
    )
}

fn model(up: Upstream) -> &'static str {
    match up {
        Upstream::OpenAi => "oai/mock-1",
        Upstream::Anthropic => "ant/claude-mock",
        Upstream::Gemini => "gem/gemini-mock",
        // A cross-region inference profile: `:` in the path, signed.
        Upstream::Bedrock => "bed/us.anthropic.claude-haiku-4-5-20251001-v1:0",
        Upstream::VertexGemini => "vx/gemini-2.5-flash",
        // Claude on Vertex: Anthropic's format, by rawPredict.
        Upstream::VertexClaude => "vx/claude-sonnet-4-5@20250929",
        Upstream::Cohere => "coh/command-mock",
    }
}

fn weather_schema() -> Value {
    json!({"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city", "days"]})
}

/// What every format's answer is reduced to.
#[derive(Debug, Default)]
struct Answer {
    text: String,
    thinking: String,
    /// (id, name, arguments)
    calls: Vec<(String, String, Value)>,
    /// Normalized: "stop" | "tool" | "length".
    stop: String,
    output_tokens: u64,
    input_tokens: u64,
}

fn request(inbound: Inbound, model: &str, stream: bool, tools: bool) -> (String, Value) {
    match inbound {
        Inbound::OpenAi => {
            let mut b = json!({"model": model, "stream": stream,
                "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "weather in Paris?"}]});
            if stream {
                b["stream_options"] = json!({"include_usage": true});
            }
            if tools {
                b["tools"] = json!([{"type": "function", "function": {"name": "get_weather",
                    "description": "Weather by city", "parameters": weather_schema()}}]);
            }
            ("/v1/chat/completions".into(), b)
        }
        Inbound::Anthropic => {
            let mut b = json!({"model": model, "stream": stream, "max_tokens": 256, "system": "be brief",
                "messages": [{"role": "user", "content": [{"type": "text", "text": "weather in Paris?"}]}]});
            if tools {
                b["tools"] = json!([{"name": "get_weather", "description": "Weather by city",
                    "input_schema": weather_schema()}]);
            }
            ("/anthropic/v1/messages".into(), b)
        }
        Inbound::Gemini => {
            let mut b = json!({"systemInstruction": {"parts": [{"text": "be brief"}]},
                "contents": [{"role": "user", "parts": [{"text": "weather in Paris?"}]}],
                "generationConfig": {"maxOutputTokens": 256}});
            if tools {
                b["tools"] = json!([{"functionDeclarations": [{"name": "get_weather",
                    "description": "Weather by city", "parameters": weather_schema()}]}]);
            }
            let method = if stream {
                "streamGenerateContent?alt=sse"
            } else {
                "generateContent"
            };
            (format!("/genai/v1beta/models/{model}:{method}"), b)
        }
        Inbound::Responses => {
            let mut b = json!({"model": model, "stream": stream, "instructions": "be brief",
                "input": [{"role": "user", "content": "weather in Paris?"}], "max_output_tokens": 256});
            if tools {
                b["tools"] = json!([{"type": "function", "name": "get_weather",
                    "description": "Weather by city", "parameters": weather_schema()}]);
            }
            // Both mounts; Codex CLI uses the second.
            let path = if stream {
                "/openai/v1/responses"
            } else {
                "/v1/responses"
            };
            (path.into(), b)
        }
    }
}

/// A Responses `response` object as an answer.
fn read_responses_json(v: &Value) -> Answer {
    assert_eq!(v["object"], "response", "{v}");
    assert!(v["id"].as_str().unwrap().starts_with("resp_"), "{v}");
    let mut a = Answer {
        output_tokens: v["usage"]["output_tokens"].as_u64().unwrap(),
        input_tokens: v["usage"]["input_tokens"].as_u64().unwrap(),
        ..Answer::default()
    };
    for item in v["output"].as_array().unwrap() {
        match item["type"].as_str().unwrap() {
            "message" => a
                .text
                .push_str(item["content"][0]["text"].as_str().unwrap()),
            "reasoning" => a
                .thinking
                .push_str(item["summary"][0]["text"].as_str().unwrap()),
            "function_call" => a.calls.push((
                item["call_id"].as_str().unwrap().into(),
                item["name"].as_str().unwrap().into(),
                serde_json::from_str(item["arguments"].as_str().unwrap()).unwrap(),
            )),
            t => panic!("unexpected item {t}"),
        }
    }
    a.stop = match (v["status"].as_str().unwrap(), a.calls.is_empty()) {
        ("completed", true) => "stop",
        ("completed", false) => "tool",
        ("incomplete", _) => "length",
        (s, _) => panic!("status {s}"),
    }
    .into();
    a
}

/// Reads a Responses stream: its deltas must add up to the final response.
fn read_responses_stream(body: &str) -> Answer {
    let events = named_events(body);
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names[..2],
        ["response.created", "response.in_progress"],
        "{names:?}"
    );
    assert_eq!(names.last(), Some(&"response.completed"), "{names:?}");
    for (i, (name, v)) in events.iter().enumerate() {
        assert_eq!(v["type"].as_str(), Some(name.as_str()));
        assert_eq!(v["sequence_number"], i as u64);
    }
    let deltas = |kind: &str| -> String {
        events
            .iter()
            .filter(|(n, _)| n == kind)
            .map(|(_, v)| v["delta"].as_str().unwrap())
            .collect()
    };
    let a = read_responses_json(&events.last().unwrap().1["response"]);
    assert_eq!(deltas("response.output_text.delta"), a.text);
    assert_eq!(deltas("response.reasoning_summary_text.delta"), a.thinking);
    let args: String = a.calls.iter().map(|c| c.2.to_string()).collect();
    let streamed: Value = match deltas("response.function_call_arguments.delta") {
        s if s.is_empty() => Value::Null,
        s => serde_json::from_str(&s).unwrap(),
    };
    if !a.calls.is_empty() {
        assert_eq!(streamed.to_string(), args);
    }
    let added = names
        .iter()
        .filter(|n| **n == "response.output_item.added")
        .count();
    let done = names
        .iter()
        .filter(|n| **n == "response.output_item.done")
        .count();
    assert_eq!(added, done, "{names:?}");
    a
}

fn read_openai_json(v: &Value) -> Answer {
    let m = &v["choices"][0]["message"];
    Answer {
        text: m["content"].as_str().unwrap_or_default().to_string(),
        thinking: m["reasoning_content"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        calls: m["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                (
                    c["id"].as_str().unwrap().to_string(),
                    c["function"]["name"].as_str().unwrap().to_string(),
                    serde_json::from_str(c["function"]["arguments"].as_str().unwrap()).unwrap(),
                )
            })
            .collect(),
        stop: match v["choices"][0]["finish_reason"].as_str().unwrap() {
            "tool_calls" => "tool",
            s => s,
        }
        .to_string(),
        output_tokens: v["usage"]["completion_tokens"].as_u64().unwrap(),
        input_tokens: v["usage"]["prompt_tokens"].as_u64().unwrap(),
    }
}

fn read_openai_stream(body: &str) -> Answer {
    let events = sse_data(body);
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"), "{body}");
    let mut a = Answer::default();
    let mut args: Vec<String> = Vec::new();
    for e in &events[..events.len() - 1] {
        let v: Value = serde_json::from_str(e).unwrap();
        assert!(v.get("error").is_none(), "{e}");
        if let Some(u) = v.get("usage").filter(|u| !u.is_null()) {
            a.output_tokens = u["completion_tokens"].as_u64().unwrap();
            a.input_tokens = u["prompt_tokens"].as_u64().unwrap();
        }
        let Some(c) = v["choices"].get(0) else {
            continue;
        };
        let d = &c["delta"];
        a.text.push_str(d["content"].as_str().unwrap_or_default());
        a.thinking
            .push_str(d["reasoning_content"].as_str().unwrap_or_default());
        for t in d["tool_calls"].as_array().into_iter().flatten() {
            let i = t["index"].as_u64().unwrap() as usize;
            if let Some(id) = t["id"].as_str() {
                a.calls.push((
                    id.into(),
                    t["function"]["name"].as_str().unwrap().into(),
                    Value::Null,
                ));
                args.push(String::new());
            }
            args[i].push_str(t["function"]["arguments"].as_str().unwrap_or_default());
        }
        if let Some(f) = c["finish_reason"].as_str() {
            a.stop = if f == "tool_calls" { "tool" } else { f }.into();
        }
    }
    for (c, s) in a.calls.iter_mut().zip(args) {
        c.2 = serde_json::from_str(&s).unwrap();
    }
    a
}

fn anthropic_stop(s: &str) -> String {
    match s {
        "end_turn" => "stop",
        "tool_use" => "tool",
        "max_tokens" => "length",
        s => s,
    }
    .into()
}

fn read_anthropic_json(v: &Value) -> Answer {
    assert_eq!(v["type"], "message", "{v}");
    assert!(v["id"].as_str().unwrap().starts_with("msg_"), "{v}");
    let mut a = Answer {
        stop: anthropic_stop(v["stop_reason"].as_str().unwrap()),
        output_tokens: v["usage"]["output_tokens"].as_u64().unwrap(),
        input_tokens: v["usage"]["input_tokens"].as_u64().unwrap(),
        ..Answer::default()
    };
    for b in v["content"].as_array().unwrap() {
        match b["type"].as_str().unwrap() {
            "text" => a.text.push_str(b["text"].as_str().unwrap()),
            "thinking" => a.thinking.push_str(b["thinking"].as_str().unwrap()),
            "tool_use" => a.calls.push((
                b["id"].as_str().unwrap().into(),
                b["name"].as_str().unwrap().into(),
                b["input"].clone(),
            )),
            t => panic!("unexpected block {t}"),
        }
    }
    a
}

/// One Gemini response (or stream chunk) added to `a`.
fn add_gemini(a: &mut Answer, v: &Value) {
    assert!(v.get("error").is_none(), "{v}");
    let c = &v["candidates"][0];
    for p in c["content"]["parts"].as_array().into_iter().flatten() {
        if let Some(f) = p.get("functionCall") {
            let name = f["name"].as_str().unwrap().to_string();
            a.calls.push((name.clone(), name, f["args"].clone()));
        } else if p["thought"] == true {
            a.thinking.push_str(p["text"].as_str().unwrap());
        } else if let Some(t) = p["text"].as_str() {
            a.text.push_str(t);
        }
    }
    if let Some(f) = c["finishReason"].as_str() {
        a.stop = match f {
            "STOP" if !a.calls.is_empty() => "tool",
            "STOP" => "stop",
            "MAX_TOKENS" => "length",
            f => f,
        }
        .into();
        let u = &v["usageMetadata"];
        a.output_tokens = u["candidatesTokenCount"].as_u64().unwrap();
        a.input_tokens = u["promptTokenCount"].as_u64().unwrap();
    }
}

fn read_gemini_stream(body: &str) -> Answer {
    let mut a = Answer::default();
    for e in sse_data(body) {
        add_gemini(&mut a, &serde_json::from_str(&e).unwrap());
    }
    assert!(
        !a.stop.is_empty(),
        "the last chunk has a finish reason: {body}"
    );
    a
}

/// `(event, data)` pairs of an SSE body.
fn named_events(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let name = e
                .lines()
                .find_map(|l| l.strip_prefix("event: "))
                .unwrap_or_else(|| panic!("no event name in {e:?}"));
            let data = e.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
            (name.to_string(), serde_json::from_str(data).unwrap())
        })
        .collect()
}

/// Reads an Anthropic stream, checking the event grammar as the SDKs do.
fn read_anthropic_stream(body: &str) -> Answer {
    let events = named_events(body);
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names[0], "message_start", "{names:?}");
    assert_eq!(names.last(), Some(&"message_stop"), "{names:?}");
    assert_eq!(names[names.len() - 2], "message_delta", "{names:?}");
    let mut a = Answer::default();
    let mut open: Option<u64> = None;
    let mut blocks: Vec<(String, String)> = Vec::new();
    for (name, v) in &events {
        assert_eq!(v["type"].as_str(), Some(name.as_str()), "{v}");
        match name.as_str() {
            "content_block_start" => {
                assert_eq!(open, None, "a block was still open: {names:?}");
                let i = v["index"].as_u64().unwrap();
                assert_eq!(i as usize, blocks.len(), "indexes count up");
                open = Some(i);
                let b = &v["content_block"];
                blocks.push((b["type"].as_str().unwrap().into(), String::new()));
                if b["type"] == "tool_use" {
                    a.calls.push((
                        b["id"].as_str().unwrap().into(),
                        b["name"].as_str().unwrap().into(),
                        Value::Null,
                    ));
                }
            }
            "content_block_delta" => {
                let i = v["index"].as_u64().unwrap();
                assert_eq!(open, Some(i));
                let d = &v["delta"];
                let piece = match d["type"].as_str().unwrap() {
                    "text_delta" => d["text"].as_str(),
                    "thinking_delta" => d["thinking"].as_str(),
                    "input_json_delta" => d["partial_json"].as_str(),
                    "signature_delta" => Some(""),
                    t => panic!("unexpected delta {t}"),
                };
                blocks[i as usize].1.push_str(piece.unwrap());
            }
            "content_block_stop" => {
                assert_eq!(open.take(), Some(v["index"].as_u64().unwrap()));
            }
            "message_delta" => {
                assert_eq!(open, None);
                a.stop = anthropic_stop(v["delta"]["stop_reason"].as_str().unwrap());
                a.output_tokens = v["usage"]["output_tokens"].as_u64().unwrap();
                a.input_tokens = v["usage"]["input_tokens"].as_u64().unwrap_or(0);
            }
            "message_start" | "message_stop" | "ping" => {}
            "error" => panic!("stream failed: {v}"),
            n => panic!("unexpected event {n}"),
        }
    }
    let mut calls = a.calls.iter_mut();
    for (kind, text) in blocks {
        match kind.as_str() {
            "text" => a.text.push_str(&text),
            "thinking" => a.thinking.push_str(&text),
            "tool_use" => calls.next().unwrap().2 = serde_json::from_str(&text).unwrap(),
            k => panic!("block {k}"),
        }
    }
    a
}

async fn post(gw: &Gateway, path: &str, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(gw.url(path))
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn ask(gw: &Gateway, inbound: Inbound, path: &str, body: &Value) -> Answer {
    let stream = body["stream"] == true || path.contains("streamGenerateContent");
    let r = post(gw, path, body).await;
    let status = r.status();
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    let text = r.text().await.unwrap();
    assert_eq!(status, 200, "{text}");
    assert_eq!(ct.starts_with("text/event-stream"), stream, "{ct}");
    match (inbound, stream) {
        (Inbound::OpenAi, false) => read_openai_json(&serde_json::from_str(&text).unwrap()),
        (Inbound::OpenAi, true) => read_openai_stream(&text),
        (Inbound::Anthropic, false) => read_anthropic_json(&serde_json::from_str(&text).unwrap()),
        (Inbound::Anthropic, true) => read_anthropic_stream(&text),
        (Inbound::Gemini, false) => {
            let mut a = Answer::default();
            add_gemini(&mut a, &serde_json::from_str(&text).unwrap());
            a
        }
        (Inbound::Gemini, true) => read_gemini_stream(&text),
        (Inbound::Responses, false) => read_responses_json(&serde_json::from_str(&text).unwrap()),
        (Inbound::Responses, true) => read_responses_stream(&text),
    }
}

const VOCAB: &[&str] = &[
    "the", "gateway", "routes", "tokens", "through", "a", "cluster", "of", "nodes", "budget",
    "holds", "every", "request", "stream", "model", "answers", "quickly", "and", "mock", "data",
];

#[tokio::test]
async fn every_inbound_format_reaches_every_upstream_format() {
    let mock = start_mock(&["--chunks", "4"]).await;
    let gw = Gateway::start(&config(&mock, "")).await;
    for up in UPSTREAMS {
        for inbound in INBOUNDS {
            for stream in [false, true] {
                let case = format!("{inbound:?} → {up:?}, stream {stream}");
                // Plain text: the mock's 12 words, counted as 12 output tokens.
                let (path, body) = request(inbound, model(up), stream, false);
                let a = ask(&gw, inbound, &path, &body).await;
                let words: Vec<&str> = a.text.split(' ').collect();
                assert_eq!(words.len(), 12, "{case}: {a:?}");
                assert!(words.iter().all(|w| VOCAB.contains(w)), "{case}: {a:?}");
                assert_eq!(a.stop, "stop", "{case}");
                assert!(a.calls.is_empty(), "{case}");
                assert_eq!(a.output_tokens, 12, "{case}: {a:?}");
                assert!(a.input_tokens > 0, "{case}: {a:?}");

                // Tools: the mock calls the first tool with schema-shaped arguments.
                let (path, body) = request(inbound, model(up), stream, true);
                let a = ask(&gw, inbound, &path, &body).await;
                assert_eq!(a.stop, "tool", "{case}: {a:?}");
                assert_eq!(a.calls.len(), 1, "{case}: {a:?}");
                let (id, name, args) = &a.calls[0];
                assert_eq!(name, "get_weather", "{case}");
                assert_eq!(args, &json!({"city": "example", "days": 1}), "{case}");
                assert!(!id.is_empty(), "{case}");

                // The round trip: the tool's result goes back, the model answers in text.
                let body = with_tool_result(inbound, body, id, args);
                let a = ask(&gw, inbound, &path, &body).await;
                assert!(a.calls.is_empty(), "{case}: {a:?}");
                assert_eq!(a.stop, "stop", "{case}: {a:?}");
                assert!(!a.text.is_empty(), "{case}: {a:?}");
            }
        }
    }
    // Bedrock was reached with the signed key every time (the mock checks
    // each signature): 4 inbound formats, 2 modes, 3 requests each.
    let stats = get_json(&mock.url("/mock/stats")).await;
    assert_eq!(stats["by_key"]["AKIDMOCK"], 24, "{stats}");
    // Vertex, both families, with its token.
    assert_eq!(stats["by_key"]["ya29.matrix-token"], 48, "{stats}");
    assert_eq!(stats["by_key"]["cohere-key"], 24, "{stats}");
    // Every request was logged under its inbound endpoint with its usage.
    let page = logs_until(&gw, "?limit=100", None, |p| {
        p["data"].as_array().is_some_and(|d| d.len() >= 96)
    })
    .await;
    for log in page["data"].as_array().unwrap() {
        assert_eq!(log["status"], 200, "{log}");
        assert!(
            log["usage"]["completion_tokens"].as_u64().unwrap() > 0,
            "{log}"
        );
        let endpoint = log["endpoint"].as_str().unwrap();
        assert!(
            [
                "chat",
                "anthropic_messages",
                "gemini_generate_content",
                "responses"
            ]
            .contains(&endpoint),
            "{log}"
        );
    }
}

fn with_tool_result(inbound: Inbound, mut body: Value, id: &str, args: &Value) -> Value {
    match inbound {
        Inbound::OpenAi => {
            let msgs = body["messages"].as_array_mut().unwrap();
            msgs.push(json!({"role": "assistant", "content": null, "tool_calls": [{"id": id, "type": "function",
                "function": {"name": "get_weather", "arguments": args.to_string()}}]}));
            msgs.push(json!({"role": "tool", "tool_call_id": id, "content": "sunny, 21C"}));
        }
        Inbound::Anthropic => {
            let msgs = body["messages"].as_array_mut().unwrap();
            msgs.push(json!({"role": "assistant", "content": [{"type": "tool_use", "id": id, "name": "get_weather", "input": args}]}));
            msgs.push(json!({"role": "user", "content": [{"type": "tool_result", "tool_use_id": id, "content": "sunny, 21C"}]}));
        }
        Inbound::Responses => {
            let items = body["input"].as_array_mut().unwrap();
            items.push(json!({"type": "function_call", "call_id": id, "name": "get_weather", "arguments": args.to_string()}));
            items.push(
                json!({"type": "function_call_output", "call_id": id, "output": "sunny, 21C"}),
            );
        }
        Inbound::Gemini => {
            let turns = body["contents"].as_array_mut().unwrap();
            turns.push(json!({"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": args}}]}));
            turns.push(json!({"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"result": "sunny, 21C"}}}]}));
        }
    }
    body
}

#[tokio::test]
async fn thinking_crosses_from_every_upstream_format_that_has_it() {
    let mock = start_mock(&[]).await;
    let gw = Gateway::start(&config(&mock, "")).await;
    for inbound in INBOUNDS {
        // Every upstream format but OpenAI's, whose mock answers carry no thinking.
        for (up, stream) in UPSTREAMS
            .into_iter()
            .filter(|u| *u != Upstream::OpenAi)
            .flat_map(|u| [(u, false), (u, true)])
        {
            let (path, mut body) = request(inbound, model(up), stream, false);
            match inbound {
                Inbound::OpenAi => body["reasoning_effort"] = json!("low"),
                Inbound::Anthropic => {
                    body["thinking"] = json!({"type": "enabled", "budget_tokens": 1024});
                    body["max_tokens"] = json!(2048);
                }
                Inbound::Gemini => {
                    body["generationConfig"]["thinkingConfig"] =
                        json!({"thinkingBudget": 1024, "includeThoughts": true})
                }
                Inbound::Responses => body["reasoning"] = json!({"effort": "low"}),
            }
            let a = ask(&gw, inbound, &path, &body).await;
            let case = format!("{inbound:?} → {up:?} stream {stream}: {a:?}");
            assert!(a.thinking.starts_with("The user wrote "), "{case}");
            assert_eq!(a.text.split(' ').count(), 12, "{case}");
        }
    }
}

#[tokio::test]
async fn a_stream_cut_upstream_ends_with_an_error_event_in_the_clients_format() {
    let mock = start_mock(&["--chunks", "6"]).await;
    let gw = Gateway::start(&config(
        &mock,
        "headers = { \"x-mock-fail-after\" = \"2\" }",
    ))
    .await;
    for up in UPSTREAMS {
        let (path, body) = request(Inbound::Anthropic, model(up), true, false);
        let r = post(&gw, &path, &body).await;
        assert_eq!(r.status(), 200);
        let events = named_events(&r.text().await.unwrap());
        let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names[0], "message_start", "{up:?}: {names:?}");
        assert!(names.contains(&"content_block_delta"), "{up:?}: {names:?}");
        let (last, v) = events.last().unwrap();
        assert_eq!(last, "error", "{up:?}: {names:?}");
        assert_eq!(v["type"], "error");
        assert_eq!(v["error"]["type"], "api_error");
        assert!(!names.contains(&"message_stop"), "{up:?}: {names:?}");

        // A Gemini client gets Gemini's error object as the last chunk.
        let (path, body) = request(Inbound::Gemini, model(up), true, false);
        let r = post(&gw, &path, &body).await;
        let events = sse_data(&r.text().await.unwrap());
        let last: Value = serde_json::from_str(events.last().unwrap()).unwrap();
        assert_eq!(last["error"]["status"], "UNAVAILABLE", "{up:?}: {events:?}");
        assert!(events.len() > 1, "content came first: {events:?}");

        // A Responses client gets `error`, then `response.failed`.
        let (path, body) = request(Inbound::Responses, model(up), true, false);
        let r = post(&gw, &path, &body).await;
        let events = named_events(&r.text().await.unwrap());
        let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
        assert!(names.contains(&"response.output_text.delta"), "{names:?}");
        assert_eq!(
            names[names.len() - 2..],
            ["error", "response.failed"],
            "{names:?}"
        );
        let failed = &events.last().unwrap().1["response"];
        assert_eq!(failed["status"], "failed");
        assert!(
            failed["error"]["message"]
                .as_str()
                .unwrap()
                .contains("upstream")
        );

        // An OpenAI client gets OpenAI's error chunk.
        let (path, body) = request(Inbound::OpenAi, model(up), true, false);
        let r = post(&gw, &path, &body).await;
        let events = sse_data(&r.text().await.unwrap());
        let last: Value = serde_json::from_str(events.last().unwrap()).unwrap();
        assert_eq!(
            last["error"]["type"], "upstream_error",
            "{up:?}: {events:?}"
        );
    }
}

/// Posts, expects `status`, and returns the error body, whose message must contain `says`.
async fn error_of(gw: &Gateway, path: &str, body: &Value, status: u16, says: &str) -> Value {
    let r = post(gw, path, body).await;
    assert_eq!(r.status(), status);
    let v: Value = r.json().await.unwrap();
    let message = v["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(says), "{v}");
    v
}

#[tokio::test]
async fn errors_come_back_in_the_clients_shape() {
    let mock = start_mock(&[]).await;
    let refusing = format!(
        "[providers.limited]\nkind = \"anthropic\"\nbase_url = \"http://{}/v1\"\n\
         api_key = \"mock-status-400\"\nmax_retries = 0\n",
        mock.addr
    );
    let gw = Gateway::start(&(config(&mock, "") + &refusing)).await;
    // Gateway errors: unknown model, a body that is not a Messages request.
    let (path, body) = request(Inbound::Anthropic, "nope/none", false, false);
    let v = error_of(&gw, &path, &body, 404, "nope/none").await;
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "not_found_error");
    let v = error_of(&gw, &path, &json!({"model": "ant/x"}), 400, "messages").await;
    assert_eq!(v["error"]["type"], "invalid_request_error", "{v}");
    let (path, body) = request(Inbound::Gemini, "nope/none", false, false);
    let v = error_of(&gw, &path, &body, 404, "nope/none").await;
    assert_eq!(v["error"]["status"], "NOT_FOUND");
    assert_eq!(v["error"]["code"], 404);
    let (path, body) = request(Inbound::Responses, "nope/none", false, false);
    let v = error_of(&gw, &path, &body, 404, "nope/none").await;
    assert_eq!(v["error"]["code"], "not_found");
    // An upstream's 400 reaches each client in its own shape.
    let (path, body) = request(Inbound::Anthropic, "limited/claude-mock", false, false);
    let v = error_of(&gw, &path, &body, 400, "mock error 400").await;
    assert_eq!(v["error"]["type"], "invalid_request_error", "{v}");
    let (path, body) = request(Inbound::Gemini, "limited/claude-mock", false, false);
    let v = error_of(&gw, &path, &body, 400, "mock error 400").await;
    assert_eq!(v["error"]["status"], "INVALID_ARGUMENT", "{v}");
    let (path, body) = request(Inbound::OpenAi, "limited/claude-mock", false, false);
    let v = error_of(&gw, &path, &body, 400, "mock error 400").await;
    assert!(v.get("type").is_none(), "OpenAI shape: {v}");
}

#[tokio::test]
async fn models_and_token_counting() {
    let mock = start_mock(&[]).await;
    let gw = Gateway::start(&config(&mock, "models = [\"m-1\"]")).await;
    let v = get_json(&gw.url("/anthropic/v1/models")).await;
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "oai/m-1", "ant/m-1", "gem/m-1", "bed/m-1", "vx/m-1", "coh/m-1"
        ]
    );
    assert_eq!(v["data"][0]["type"], "model");
    let v = get_json(&gw.url("/genai/v1beta/models")).await;
    let names: Vec<&str> = v["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "models/oai/m-1",
            "models/ant/m-1",
            "models/gem/m-1",
            "models/bed/m-1",
            "models/vx/m-1",
            "models/coh/m-1"
        ]
    );
    let count =
        |text: &str| json!({"model": "ant/m-1", "messages": [{"role": "user", "content": text}]});
    let path = "/anthropic/v1/messages/count_tokens";
    let short = json_of(&gw, path, count("hello")).await["input_tokens"].clone();
    let text = "hello there, general ".repeat(20);
    let long = json_of(&gw, path, count(&text)).await["input_tokens"].clone();
    let (short, long) = (short.as_u64().unwrap(), long.as_u64().unwrap());
    assert!(short >= 1 && long > short * 10, "{short} {long}");
    // Gemini's countTokens counts the same text the same way.
    let body = json!({"contents": [{"role": "user", "parts": [{"text": text}]}]});
    let v = json_of(&gw, "/genai/v1beta/models/gem/m-1:countTokens", body).await;
    assert_eq!(v["totalTokens"], long, "{v}");
}

async fn json_of(gw: &Gateway, path: &str, body: Value) -> Value {
    post(gw, path, &body).await.json().await.unwrap()
}

#[tokio::test]
async fn claude_tiers_map_to_configured_models() {
    let mock = start_mock(&[]).await;
    let tiers = "[anthropic]\nsonnet_model = \"oai/mock-1\"\nopus_model = \"ant/claude-mock\"\n";
    let gw = Gateway::start(&(config(&mock, "") + tiers)).await;
    for (asked, provider) in [
        ("claude-sonnet-4-5-20250929", "oai"),
        ("claude-opus-4-1", "ant"),
    ] {
        let (path, body) = request(Inbound::Anthropic, asked, false, false);
        let r = post(&gw, &path, &body).await;
        assert_eq!(r.status(), 200, "{asked}");
        assert_eq!(r.headers()["x-tollgate-provider"], provider, "{asked}");
        let a = read_anthropic_json(&r.json().await.unwrap());
        assert_eq!(a.text.split(' ').count(), 12, "{asked}");
    }
    // An unset tier is an ordinary model name (this one in no catalog).
    let (path, body) = request(Inbound::Anthropic, "claude-haiku-9", false, false);
    error_of(&gw, &path, &body, 404, "claude-haiku-9").await;
}

#[tokio::test]
async fn responses_continue_from_a_previous_response() {
    let mock = start_mock(&[]).await;
    let gw = Gateway::start(&config(&mock, "")).await;
    for up in UPSTREAMS {
        for stream in [false, true] {
            let case = format!("{up:?} stream {stream}");
            let (path, body) = request(Inbound::Responses, model(up), stream, true);
            let r = post(&gw, &path, &body).await;
            let text = r.text().await.unwrap();
            let first = if stream {
                named_events(&text).last().unwrap().1["response"].clone()
            } else {
                serde_json::from_str(&text).unwrap()
            };
            let id = first["id"].as_str().unwrap();
            let call = first["output"]
                .as_array()
                .unwrap()
                .iter()
                .find(|i| i["type"] == "function_call")
                .unwrap_or_else(|| panic!("{case}: {first}"));
            // Only the tool's output is sent: the call and the question come from the node.
            let output = json!({"type": "function_call_output", "call_id": call["call_id"], "output": "sunny, 21C"});
            let mut next = json!({"model": model(up), "input": [output], "previous_response_id": id,
                "tools": body["tools"], "stream": stream});
            let continued = ask(&gw, Inbound::Responses, &path, &next).await;
            assert!(continued.calls.is_empty(), "{case}: {continued:?}");
            assert_eq!(continued.stop, "stop", "{case}");
            next.as_object_mut().unwrap().remove("previous_response_id");
            next["input"] = json!([{"role": "user", "content": "sunny, 21C"}]);
            let alone = ask(&gw, Inbound::Responses, &path, &next).await;
            assert!(
                continued.input_tokens > alone.input_tokens + 5,
                "{case}: the history reached the upstream: {} vs {}",
                continued.input_tokens,
                alone.input_tokens
            );
        }
    }
    let (path, mut body) = request(Inbound::Responses, "oai/mock-1", false, false);
    body["previous_response_id"] = json!("resp_unknown");
    let v = error_of(&gw, &path, &body, 404, "resp_unknown").await;
    assert_eq!(v["error"]["type"], "invalid_request_error");
}

#[tokio::test]
async fn same_format_upstreams_get_the_clients_body_untouched() {
    let mock = start_mock(&[]).await;
    let gw = Gateway::start(&config(&mock, "")).await;
    let last_url = mock.url("/mock/last");
    let last = || get_json(&last_url);
    // Anthropic → Anthropic: prompt-cache markers, metadata and beta flags pass.
    let (path, mut body) = request(Inbound::Anthropic, "ant/claude-mock", false, false);
    body["system"] =
        json!([{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}]);
    body["metadata"] = json!({"user_id": "u-1"});
    body["fallbacks"] = json!(["oai/mock-1"]);
    let r = reqwest::Client::new()
        .post(gw.url(&path))
        .header("anthropic-beta", "interleaved-thinking-2025-05-14")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let seen = last().await;
    let mut expected = body.clone();
    expected["model"] = json!("claude-mock");
    expected.as_object_mut().unwrap().remove("fallbacks");
    assert_eq!(seen["body"], expected);
    assert_eq!(seen["anthropic-beta"], "interleaved-thinking-2025-05-14");
    assert_eq!(seen["anthropic-version"], "2023-06-01");
    // Anthropic → OpenAI: translated, so Anthropic-only fields are gone.
    let (path, mut body) = request(Inbound::Anthropic, "oai/mock-1", false, false);
    body["metadata"] = json!({"user_id": "u-1"});
    assert_eq!(post(&gw, &path, &body).await.status(), 200);
    let seen = last().await;
    assert_eq!(
        seen["body"]["messages"][0],
        json!({"role": "system", "content": "be brief"})
    );
    assert!(seen["body"].get("metadata").is_none(), "{seen}");
    // Gemini → Gemini: fields the canonical model lacks pass; the model stays in the path.
    let (path, mut body) = request(Inbound::Gemini, "gem/gemini-mock", false, false);
    body["safetySettings"] =
        json!([{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}]);
    assert_eq!(post(&gw, &path, &body).await.status(), 200);
    assert_eq!(last().await["body"], body);
    // Each native provider got its key in its own header.
    let stats = get_json(&mock.url("/mock/stats")).await;
    assert_eq!(stats["by_key"]["mock-key"], 2, "{stats}");
}

#[tokio::test]
async fn virtual_keys_and_budgets_hold_on_every_surface() {
    let mock = start_mock(&[]).await;
    // 1 µ$ per output token; 12 tokens per answer (the mock's 12 words, capped at 12).
    let pricing: String = ["mock-1", "claude-mock", "gemini-mock"]
        .iter()
        .map(|m| format!("[pricing.\"{m}\"]\ninput = 0\noutput = 1000000\n"))
        .collect();
    let gw = Gateway::start(&format!(
        "[server]\nadmin_token = \"translate-admin-token-01\"\n[client]\nenforce_auth = true\n{pricing}{}",
        config(&mock, "")
    ))
    .await;
    let c = reqwest::Client::new();
    let key: Value = c
        .post(gw.url("/api/keys"))
        .bearer_auth("translate-admin-token-01")
        .json(&json!({"name": "agent", "budgets": [{"limit_usd": "0.000040", "period": "1d"}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = key["secret"].as_str().unwrap();
    let small = |inbound, model| {
        let (path, mut body) = request(inbound, model, false, false);
        match inbound {
            Inbound::Anthropic => body["max_tokens"] = json!(12),
            Inbound::Gemini => body["generationConfig"]["maxOutputTokens"] = json!(12),
            Inbound::Responses => body["max_output_tokens"] = json!(12),
            Inbound::OpenAi => body["max_tokens"] = json!(12),
        }
        (path, body)
    };
    // No key: refused in each client's shape.
    let (path, body) = small(Inbound::Anthropic, "oai/mock-1");
    let v = error_of(&gw, &path, &body, 401, "virtual key").await;
    assert_eq!(v["error"]["type"], "authentication_error");
    let (gpath, gbody) = small(Inbound::Gemini, "ant/claude-mock");
    let v = error_of(&gw, &gpath, &gbody, 401, "virtual key").await;
    assert_eq!(v["error"]["status"], "UNAUTHENTICATED");
    // The key as each SDK sends it: x-api-key, x-goog-api-key, ?key=, Bearer.
    let (kpath, kbody) = small(Inbound::Gemini, "gem/gemini-mock");
    let (rpath, rbody) = small(Inbound::Responses, "oai/mock-1");
    let anthropic = || {
        c.post(gw.url(&path))
            .header("x-api-key", secret)
            .json(&body)
    };
    let answers = [
        anthropic(),
        c.post(gw.url(&gpath))
            .header("x-goog-api-key", secret)
            .json(&gbody),
        c.post(gw.url(&format!("{kpath}?key={secret}")))
            .json(&kbody),
        // 36 µ$ spent of 40: the next worst case (12 µ$) does not fit.
        c.post(gw.url(&rpath)).bearer_auth(secret).json(&rbody),
        anthropic(),
    ];
    let mut statuses = Vec::new();
    let mut refusals = Vec::new();
    for req in answers {
        let r = req.send().await.unwrap();
        statuses.push(r.status().as_u16());
        let v: Value = r.json().await.unwrap();
        refusals.push(v["error"]["type"].clone());
    }
    assert_eq!(statuses, [200, 200, 200, 402, 402], "{refusals:?}");
    assert_eq!(
        refusals[3..],
        [json!("budget_exceeded"), json!("billing_error")]
    );
    // Spend was settled from each format's own usage report.
    let page = logs_until(&gw, "?status=2xx", Some("translate-admin-token-01"), |p| {
        p["data"].as_array().is_some_and(|d| d.len() == 3)
    })
    .await;
    for log in page["data"].as_array().unwrap() {
        assert_eq!(log["cost_micros"], 12, "{log}");
        assert_eq!(log["virtual_key"], key["id"], "{log}");
    }
}

#[tokio::test]
async fn thinking_reaches_openai_models_only_where_they_take_reasoning_effort() {
    let mock = start_mock(&[]).await;
    let plain = format!(
        "[providers.plain]\nkind = \"mock\"\nbase_url = \"http://{}/v1\"\nreasoning_models = [\"o*\"]\n",
        mock.addr
    );
    let gw = Gateway::start(&(config(&mock, "") + &plain)).await;
    for (model, effort) in [
        ("oai/mock-1", json!("low")),
        ("plain/mock-1", Value::Null),
        ("plain/o3", json!("low")),
    ] {
        let (path, mut body) = request(Inbound::Anthropic, model, false, false);
        body["thinking"] = json!({"type": "enabled", "budget_tokens": 1024});
        assert_eq!(post(&gw, &path, &body).await.status(), 200, "{model}");
        let seen = get_json(&mock.url("/mock/last")).await;
        assert_eq!(seen["body"]["reasoning_effort"], effort, "{model}: {seen}");
    }
}

#[tokio::test]
async fn openai_streams_from_other_formats_are_accounted_without_asking_for_usage() {
    let mock = start_mock(&[]).await;
    let gw = Gateway::start(&config(&mock, "")).await;
    for up in [Upstream::Anthropic, Upstream::Gemini] {
        let (path, mut body) = request(Inbound::OpenAi, model(up), true, false);
        body.as_object_mut().unwrap().remove("stream_options");
        let text = post(&gw, &path, &body).await.text().await.unwrap();
        let events = sse_data(&text);
        assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
        assert!(
            events.iter().all(|e| !e.contains("\"usage\"")),
            "{up:?}: the client did not ask for usage: {events:?}"
        );
    }
    let page = logs_until(&gw, "", None, |p| {
        p["data"].as_array().is_some_and(|d| d.len() == 2)
    })
    .await;
    for log in page["data"].as_array().unwrap() {
        assert_eq!(log["usage"]["completion_tokens"], 12, "{log}");
    }
}
