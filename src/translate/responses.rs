//! OpenAI Responses API ↔ canonical, and its SSE event stream (client side).
//!
//! Only the client direction exists: Responses requests are served by any
//! provider; no provider is reached through the Responses API.

use serde_json::{Value, json};

use super::Encode;
use super::canonical::{
    CacheControl, Invalid, Message, Part, Request, Response, Role, StopReason, Thinking, ToolCall,
    Usage, document_from_data_url, invalid, mark_last, str_of, strings,
};
use super::openai::{
    Delta, image_from_url, named_event, push, push_system, tool_choice_from, tool_from,
};

/// A Responses request: the canonical request (without the history a
/// `previous_response_id` names), that id, and whether to store the answer.
pub struct Read {
    pub request: Request,
    pub previous: Option<String>,
    pub store: bool,
}

/// An item's content as parts; a part's `cache_control` (the prompt-cache
/// extension, as for chat) becomes a breakpoint after it.
fn content_parts(content: &Value) -> Result<Vec<Part>, Invalid> {
    let items = match content {
        Value::String(s) => return Ok(vec![Part::Text(s.clone())]),
        Value::Array(items) => items,
        _ => return Ok(vec![]),
    };
    let mut out = Vec::new();
    for it in items {
        let part = match it.get("type").and_then(Value::as_str) {
            Some("input_text" | "output_text" | "text") => {
                Some(Part::Text(str_of(it, "text").unwrap_or_default()))
            }
            Some("input_image") => it
                .get("image_url")
                .and_then(Value::as_str)
                .map(|u| Part::Image(image_from_url(u))),
            Some("input_file") => it
                .get("file_data")
                .and_then(Value::as_str)
                .and_then(|u| document_from_data_url(u, str_of(it, "filename")))
                .map(Part::Document),
            // File ids, refusals, audio: no counterpart.
            _ => None,
        };
        if let Some(p) = part {
            out.push(p);
            if let Some(c) = CacheControl::of(it)? {
                mark_last(&mut out, c);
            }
        }
    }
    Ok(out)
}

pub fn request_from_responses(v: &Value) -> Result<Read, Invalid> {
    let mut r = Request {
        model: str_of(v, "model").ok_or_else(|| invalid("model is required"))?,
        stream: v.get("stream").and_then(Value::as_bool).unwrap_or(false),
        temperature: v.get("temperature").and_then(Value::as_f64),
        top_p: v.get("top_p").and_then(Value::as_f64),
        max_tokens: v.get("max_output_tokens").and_then(Value::as_u64),
        parallel_tool_calls: v.get("parallel_tool_calls").and_then(Value::as_bool),
        thinking: v
            .pointer("/reasoning/effort")
            .and_then(Value::as_str)
            .and_then(Thinking::from_effort),
        fallbacks: strings(v.get("fallbacks")),
        ..Request::default()
    };
    if let Some(i) = v.get("instructions").and_then(Value::as_str) {
        r.system.push(i.to_string());
    }
    match v.get("input") {
        Some(Value::String(s)) => push(&mut r.messages, Role::User, vec![Part::Text(s.clone())]),
        Some(Value::Array(items)) => {
            for it in items {
                let kind = it.get("type").and_then(Value::as_str).unwrap_or("message");
                match kind {
                    "message" => {
                        let mut parts = content_parts(it.get("content").unwrap_or(&Value::Null))?;
                        if let Some(c) = CacheControl::of(it)? {
                            mark_last(&mut parts, c);
                        }
                        match it.get("role").and_then(Value::as_str) {
                            Some("assistant") => {
                                for p in parts {
                                    append_assistant(&mut r.messages, p);
                                }
                            }
                            Some("system" | "developer") => push_system(&mut r, parts),
                            _ => push(&mut r.messages, Role::User, parts),
                        }
                    }
                    "function_call" => {
                        let call = Part::ToolCall(ToolCall {
                            id: str_of(it, "call_id").unwrap_or_default(),
                            name: str_of(it, "name").unwrap_or_default(),
                            arguments: str_of(it, "arguments").unwrap_or_else(|| "{}".into()),
                        });
                        append_assistant(&mut r.messages, call);
                    }
                    "function_call_output" => {
                        let output = match it.get("output") {
                            Some(Value::String(s)) => vec![Part::Text(s.clone())],
                            Some(o) => content_parts(o)?,
                            None => vec![],
                        };
                        let mut parts = vec![Part::ToolResult {
                            call_id: str_of(it, "call_id").unwrap_or_default(),
                            content: output,
                            is_error: false,
                        }];
                        if let Some(c) = CacheControl::of(it)? {
                            mark_last(&mut parts, c);
                        }
                        push(&mut r.messages, Role::User, parts);
                    }
                    "reasoning" => {
                        let text = it
                            .get("summary")
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                            .filter_map(|s| s.get("text").and_then(Value::as_str))
                            .collect::<Vec<_>>()
                            .join("\n");
                        let part = Part::Thinking {
                            text,
                            signature: str_of(it, "encrypted_content"),
                        };
                        append_assistant(&mut r.messages, part);
                    }
                    // Built-in tool calls (web search, file search, computer use...).
                    _ => {}
                }
            }
        }
        _ => return Err(invalid("input is required")),
    }
    for t in v
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if t.get("type").and_then(Value::as_str) == Some("function") {
            r.tools.push(tool_from(t)?);
        }
    }
    r.tool_choice = tool_choice_from(v.get("tool_choice"), "/name");
    r.check_cache_breakpoints()?;
    Ok(Read {
        request: r,
        previous: str_of(v, "previous_response_id"),
        store: v.get("store").and_then(Value::as_bool).unwrap_or(true),
    })
}

/// Items of one assistant turn arrive one by one: they join the turn.
fn append_assistant(messages: &mut Vec<Message>, part: Part) {
    match messages.last_mut() {
        Some(m) if m.role == Role::Assistant => m.content.push(part),
        _ => messages.push(Message {
            role: Role::Assistant,
            content: vec![part],
        }),
    }
}

/// The `resp_…` id the gateway gives the answer to request `request_id`.
pub fn response_id(request_id: &str) -> String {
    format!("resp_{}", request_id.trim_start_matches("req_"))
}

fn usage_value(u: &Usage) -> Value {
    json!({
        "input_tokens": u.prompt_tokens,
        "input_tokens_details": {"cached_tokens": u.cached_tokens},
        "output_tokens": u.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": u.prompt_tokens.saturating_add(u.completion_tokens),
    })
}

/// The output items of `r`, with ids derived from the response's.
fn output_items(r: &Response, id: &str) -> Vec<Value> {
    let tail = id.trim_start_matches("resp_");
    let mut out = Vec::new();
    let mut text = String::new();
    for (i, p) in r.content.iter().enumerate() {
        match p {
            Part::Thinking { text, signature } => {
                let mut item = json!({"type": "reasoning", "id": format!("rs_{tail}_{i}"),
                    "summary": [{"type": "summary_text", "text": text}]});
                if let Some(s) = signature {
                    item["encrypted_content"] = json!(s);
                }
                out.push(item);
            }
            Part::Text(t) => text.push_str(t),
            Part::ToolCall(c) => out.push(
                json!({"type": "function_call", "id": format!("fc_{tail}_{i}"),
                "call_id": c.id, "name": c.name, "arguments": c.arguments, "status": "completed"}),
            ),
            _ => {}
        }
    }
    if !text.is_empty() {
        let at = out
            .iter()
            .position(|o| o["type"] == "function_call")
            .unwrap_or(out.len());
        out.insert(at, message_item(&format!("msg_{tail}"), &text, "completed"));
    }
    out
}

fn message_item(id: &str, text: &str, status: &str) -> Value {
    json!({"type": "message", "id": id, "status": status, "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}]})
}

/// A whole `response` object; `status` is `completed`, `incomplete` or `in_progress`.
fn envelope(
    id: &str,
    model: &str,
    output: Vec<Value>,
    usage: Option<&Usage>,
    stop: Option<StopReason>,
) -> Value {
    let (status, incomplete) = match stop {
        None => ("in_progress", Value::Null),
        Some(StopReason::MaxTokens) => ("incomplete", json!({"reason": "max_output_tokens"})),
        Some(StopReason::ContentFilter) => ("incomplete", json!({"reason": "content_filter"})),
        Some(_) => ("completed", Value::Null),
    };
    json!({
        "id": id, "object": "response", "created_at": 0, "status": status, "model": model,
        "output": output, "parallel_tool_calls": true, "tool_choice": "auto", "tools": [],
        "error": null, "incomplete_details": incomplete, "instructions": null, "metadata": {},
        "usage": usage.map(usage_value), "text": {"format": {"type": "text"}},
    })
}

pub fn response_to_responses(r: &Response, id: &str) -> Value {
    envelope(
        id,
        &r.model,
        output_items(r, id),
        Some(&r.usage),
        Some(r.stop),
    )
}

/// The error shape of the Responses API (that of OpenAI, with codes).
pub fn error_body(status: u16, message: &str) -> Value {
    let (kind, code) = match status {
        400 | 413 | 422 => ("invalid_request_error", Value::Null),
        401 => ("authentication_error", json!("invalid_api_key")),
        402 => ("budget_exceeded", json!("budget_exceeded")),
        403 => ("permission_error", json!("model_not_allowed")),
        404 => ("invalid_request_error", json!("not_found")),
        429 => ("rate_limit_error", json!("rate_limit_exceeded")),
        500..=599 => ("server_error", json!("upstream_error")),
        _ => ("invalid_request_error", Value::Null),
    };
    json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
}

/// Internal chunks → Responses SSE: `response.created`, `response.in_progress`,
/// output items added / their deltas / done, `response.completed` — or
/// `error` and `response.failed` if the stream breaks. When it completes,
/// `on_done` gets the whole answer (for `previous_response_id`).
pub struct Encoder {
    id: String,
    model: String,
    seq: u64,
    started: bool,
    /// Output items so far; the open one is last.
    items: Vec<Value>,
    /// Each item's text, summary or arguments so far, written into the item
    /// when it closes (appending to a JSON string per delta would copy it
    /// whole every time).
    acc: Vec<String>,
    open: Option<Open>,
    /// Tool calls by chunk index → item position.
    calls: Vec<(u64, usize)>,
    stop: Option<StopReason>,
    usage: Usage,
    finished: bool,
    content: Vec<Part>,
    on_done: Option<Box<dyn FnOnce(Response) + Send>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Open {
    Reasoning,
    Message,
    Call(u64),
}

impl Encoder {
    pub fn new(id: String, model: String, on_done: Box<dyn FnOnce(Response) + Send>) -> Encoder {
        Encoder {
            id,
            model,
            seq: 0,
            started: false,
            items: Vec::new(),
            acc: Vec::new(),
            open: None,
            calls: Vec::new(),
            stop: None,
            usage: Usage::default(),
            finished: false,
            content: Vec::new(),
            on_done: Some(on_done),
        }
    }

    fn emit(&mut self, kind: &str, mut v: Value, out: &mut Vec<u8>) {
        v["type"] = json!(kind);
        v["sequence_number"] = json!(self.seq);
        self.seq += 1;
        named_event(kind, &v, out);
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        let r = envelope(&self.id, &self.model, vec![], None, None);
        self.emit("response.created", json!({"response": r}), out);
        let r = envelope(&self.id, &self.model, vec![], None, None);
        self.emit("response.in_progress", json!({"response": r}), out);
    }

    fn item_id(&self, prefix: &str) -> String {
        format!(
            "{prefix}_{}_{}",
            self.id.trim_start_matches("resp_"),
            self.items.len()
        )
    }

    /// Writes an item's accumulated text into it.
    fn sync(&mut self, index: usize) {
        let text = json!(self.acc[index]);
        let item = &mut self.items[index];
        match item["type"].as_str() {
            Some("message") => item["content"][0]["text"] = text,
            Some("reasoning") => item["summary"][0]["text"] = text,
            Some("function_call") => item["arguments"] = text,
            _ => {}
        }
    }

    /// Closes the open item: its `.done` events, with its full content.
    fn close(&mut self, out: &mut Vec<u8>) {
        let Some(open) = self.open.take() else { return };
        let index = self.items.len() - 1;
        self.sync(index);
        let item_id = self.items[index]["id"].clone();
        match open {
            Open::Message => {
                let text = self.items[index]["content"][0]["text"].clone();
                self.emit("response.output_text.done", json!({"item_id": item_id, "output_index": index, "content_index": 0, "text": text}), out);
                let part = self.items[index]["content"][0].clone();
                self.emit("response.content_part.done", json!({"item_id": item_id, "output_index": index, "content_index": 0, "part": part}), out);
            }
            Open::Reasoning => {
                let text = self.items[index]["summary"][0]["text"].clone();
                self.emit("response.reasoning_summary_text.done", json!({"item_id": item_id, "output_index": index, "summary_index": 0, "text": text}), out);
                let part = self.items[index]["summary"][0].clone();
                self.emit("response.reasoning_summary_part.done", json!({"item_id": item_id, "output_index": index, "summary_index": 0, "part": part}), out);
            }
            Open::Call(_) => {
                let args = self.items[index]["arguments"].clone();
                self.emit(
                    "response.function_call_arguments.done",
                    json!({"item_id": item_id, "output_index": index, "arguments": args}),
                    out,
                );
            }
        }
        self.items[index]["status"] = json!("completed");
        let item = self.items[index].clone();
        self.emit(
            "response.output_item.done",
            json!({"output_index": index, "item": item}),
            out,
        );
    }

    /// Makes `kind` the open item, adding it if needed; returns its index.
    fn open(&mut self, kind: Open, item: impl FnOnce(String) -> Value, out: &mut Vec<u8>) -> usize {
        if self.open == Some(kind) {
            return self.items.len() - 1;
        }
        self.close(out);
        let prefix = match kind {
            Open::Reasoning => "rs",
            Open::Message => "msg",
            Open::Call(_) => "fc",
        };
        let mut v = item(self.item_id(prefix));
        v["status"] = json!("in_progress");
        let index = self.items.len();
        self.items.push(v.clone());
        self.acc.push(String::new());
        self.open = Some(kind);
        if kind == Open::Reasoning {
            self.items[index]["summary"] = json!([{"type": "summary_text", "text": ""}]);
            v["summary"] = json!([]);
        }
        self.emit(
            "response.output_item.added",
            json!({"output_index": index, "item": v}),
            out,
        );
        let item_id = self.items[index]["id"].clone();
        match kind {
            Open::Message => self.emit(
                "response.content_part.added",
                json!({"item_id": item_id, "output_index": index, "content_index": 0,
                "part": {"type": "output_text", "text": "", "annotations": []}}),
                out,
            ),
            Open::Reasoning => self.emit(
                "response.reasoning_summary_part.added",
                json!({"item_id": item_id, "output_index": index, "summary_index": 0,
                "part": {"type": "summary_text", "text": ""}}),
                out,
            ),
            Open::Call(_) => {}
        }
        index
    }
}

impl Encode for Encoder {
    fn finished(&self) -> bool {
        self.finished
    }

    fn delta(&mut self, c: Delta, out: &mut Vec<u8>) {
        let Delta {
            id: _,
            usage,
            delta: d,
            finish,
        } = c;
        self.start(out);
        if let Some(u) = usage {
            self.usage = u;
        }
        let d = &d;
        if let Some(t) = d.get("reasoning_content").and_then(Value::as_str)
            && !t.is_empty()
        {
            let i = self.open(
                Open::Reasoning,
                |id| json!({"type": "reasoning", "id": id}),
                out,
            );
            self.acc[i].push_str(t);
            let item_id = self.items[i]["id"].clone();
            self.emit(
                "response.reasoning_summary_text.delta",
                json!({"item_id": item_id, "output_index": i, "summary_index": 0, "delta": t}),
                out,
            );
            match self.content.last_mut() {
                Some(Part::Thinking { text, .. }) => text.push_str(t),
                _ => self.content.push(Part::Thinking {
                    text: t.into(),
                    signature: None,
                }),
            }
        }
        if let Some(s) = d.get("reasoning_signature").and_then(Value::as_str)
            && let Some(Part::Thinking { signature, .. }) = self.content.last_mut()
        {
            *signature = Some(s.to_string());
            if let Some(i) = self.items.iter().rposition(|it| it["type"] == "reasoning") {
                self.items[i]["encrypted_content"] = json!(s);
            }
        }
        if let Some(t) = d.get("content").and_then(Value::as_str)
            && !t.is_empty()
        {
            let i = self.open(
                Open::Message,
                |id| {
                    json!({"type": "message", "id": id, "role": "assistant",
                    "content": [{"type": "output_text", "text": "", "annotations": []}]})
                },
                out,
            );
            self.acc[i].push_str(t);
            let item_id = self.items[i]["id"].clone();
            self.emit(
                "response.output_text.delta",
                json!({"item_id": item_id, "output_index": i, "content_index": 0, "delta": t}),
                out,
            );
            match self.content.last_mut() {
                Some(Part::Text(s)) => s.push_str(t),
                _ => self.content.push(Part::Text(t.into())),
            }
        }
        for c in d
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let ordinal = c.get("index").and_then(Value::as_u64).unwrap_or(0);
            let i = match self.calls.iter().find(|(o, _)| *o == ordinal) {
                Some(&(_, i)) => i,
                None => {
                    let call_id = c
                        .get("id")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string();
                    let name = c
                        .pointer("/function/name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string();
                    let i = self.open(
                        Open::Call(ordinal),
                        |id| json!({"type": "function_call", "id": id, "call_id": call_id, "name": name, "arguments": ""}),
                        out,
                    );
                    self.calls.push((ordinal, i));
                    self.content.push(Part::ToolCall(ToolCall {
                        id: self.items[i]["call_id"].as_str().unwrap_or_default().into(),
                        name: self.items[i]["name"].as_str().unwrap_or_default().into(),
                        arguments: String::new(),
                    }));
                    i
                }
            };
            if let Some(a) = c.pointer("/function/arguments").and_then(Value::as_str)
                && !a.is_empty()
            {
                self.acc[i].push_str(a);
                let item_id = self.items[i]["id"].clone();
                self.emit(
                    "response.function_call_arguments.delta",
                    json!({"item_id": item_id, "output_index": i, "delta": a}),
                    out,
                );
                let call_id = self.items[i]["call_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                for p in self.content.iter_mut().rev() {
                    if let Part::ToolCall(tc) = p
                        && tc.id == call_id
                    {
                        tc.arguments.push_str(a);
                        break;
                    }
                }
            }
        }
        if let Some(f) = finish {
            self.stop = Some(f);
        }
    }

    /// The end marker: close what is open and end the stream as the format does.
    fn complete(&mut self, out: &mut Vec<u8>) {
        self.start(out);
        self.close(out);
        self.finished = true;
        let stop = self.stop.unwrap_or_default();
        let r = envelope(
            &self.id,
            &self.model,
            self.items.clone(),
            Some(&self.usage),
            Some(stop),
        );
        self.emit("response.completed", json!({"response": r}), out);
        if let Some(done) = self.on_done.take() {
            done(Response {
                id: self.id.clone(),
                model: self.model.clone(),
                content: std::mem::take(&mut self.content),
                stop,
                usage: self.usage,
            });
        }
    }

    fn fail(&mut self, message: &str, out: &mut Vec<u8>) {
        self.finished = true;
        self.start(out);
        self.emit(
            "error",
            json!({"code": "upstream_error", "message": message, "param": null}),
            out,
        );
        if self.open.is_some() {
            self.sync(self.items.len() - 1);
        }
        let mut r = envelope(
            &self.id,
            &self.model,
            self.items.clone(),
            Some(&self.usage),
            None,
        );
        r["status"] = json!("failed");
        r["error"] = json!({"code": "server_error", "message": message});
        self.emit("response.failed", json!({"response": r}), out);
    }
}
