//! Cache keys (`tollgate::cache::key`): golden hashes per surface, and
//! property tests of what changes a key and what does not.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::{Value, json};
use tollgate::cache::key::{self, Keys, NotKeyed, Scope, Uncacheable};
use tollgate::translate::Format;

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/cache/keys.json");

fn format(name: &str) -> Format {
    match name {
        "openai" => Format::OpenAi,
        "responses" => Format::Responses,
        "anthropic" => Format::Anthropic,
        "gemini" => Format::Gemini,
        other => panic!("unknown surface {other}"),
    }
}

fn scope<'a>(tenant: &'a str, target: &'a str) -> Scope<'a> {
    Scope {
        tenant,
        target,
        upstream: Format::OpenAi,
    }
}

fn keys_of(surface: Format, body: &Value, scope: &Scope<'_>) -> Keys {
    key::keys(surface, body.to_string().as_bytes(), scope).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[test]
fn golden_keys_are_stable_and_equal_across_surfaces() {
    let mut file: Value = serde_json::from_str(&std::fs::read_to_string(GOLDEN).unwrap()).unwrap();
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut groups: BTreeMap<String, Vec<(String, Keys)>> = BTreeMap::new();
    let mut changed = Vec::new();
    for case in file["cases"].as_array_mut().unwrap() {
        let name = case["name"].as_str().unwrap().to_string();
        let body = match case.get("raw").and_then(Value::as_str) {
            Some(raw) => raw.as_bytes().to_vec(),
            None => case["body"].to_string().into_bytes(),
        };
        let scope = Scope {
            tenant: case["tenant"].as_str().unwrap(),
            target: case["target"].as_str().unwrap(),
            upstream: format(case["upstream"].as_str().unwrap()),
        };
        let keys = key::keys(format(case["surface"].as_str().unwrap()), &body, &scope)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let exact = json!(keys.exact.to_string());
        let partition = keys
            .semantic
            .as_ref()
            .map_or(Value::Null, |s| json!(s.partition.to_string()));
        if case.get("exact") != Some(&exact) || case.get("partition") != Some(&partition) {
            changed.push(name.clone());
        }
        if update {
            case["exact"] = exact;
            case["partition"] = partition;
        }
        if let Some(same) = case.get("same").and_then(Value::as_str) {
            groups
                .entry(same.to_string())
                .or_default()
                .push((name, keys));
        }
    }
    for (group, members) in &groups {
        let (first, k) = &members[0];
        for (name, other) in &members[1..] {
            assert_eq!(
                k, other,
                "{first} and {name} ask the same ({group}) but key apart"
            );
        }
    }
    assert!(groups["paris"].len() >= 5 && groups["tools"].len() >= 2);
    if update {
        let mut text = serde_json::to_string_pretty(&file).unwrap();
        text.push('\n');
        std::fs::write(GOLDEN, text).unwrap();
        return;
    }
    assert_eq!(
        file["version"],
        json!(key::VERSION),
        "cache::key::VERSION changed: rewrite the goldens with UPDATE_GOLDEN=1"
    );
    assert!(
        changed.is_empty(),
        "cache keys changed for {changed:?}: the key encoding changed; bump \
         cache::key::VERSION and rewrite the goldens with UPDATE_GOLDEN=1"
    );
}

#[test]
fn the_semantic_text_is_the_last_user_turn() {
    let body = json!({"model": "m", "messages": [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": [{"type": "text", "text": "What is Rust?"},
                                     {"type": "text", "text": "Briefly."}]}]});
    let k = keys_of(Format::OpenAi, &body, &scope("t", "openai/m"));
    assert_eq!(k.semantic.unwrap().text, "What is Rust?\nBriefly.");
}

#[test]
fn requests_not_ending_with_a_user_text_turn_have_no_partition() {
    let s = scope("t", "openai/m");
    let cases = [
        // Assistant prefill last.
        (
            Format::Anthropic,
            json!({"model": "m", "max_tokens": 5, "messages": [
            {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hel"}]}),
        ),
        // A tool result last.
        (
            Format::OpenAi,
            json!({"model": "m", "messages": [{"role": "user", "content": "Hi"},
            {"role": "assistant", "tool_calls": [{"id": "c", "type": "function",
                "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c", "content": "ok"}]}),
        ),
        // An inline image in the last turn.
        (
            Format::OpenAi,
            json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}]}),
        ),
        // Something the canonical model lacks in the last turn.
        (
            Format::OpenAi,
            json!({"model": "m", "messages": [{"role": "user", "name": "bob", "content": "Hi"}]}),
        ),
        // No user turn at all.
        (
            Format::Gemini,
            json!({"contents": [{"role": "model", "parts": [{"text": "Hello"}]}]}),
        ),
    ];
    for (surface, body) in cases {
        assert_eq!(
            keys_of(surface, &body, &s).semantic,
            None,
            "{body} has a partition"
        );
    }
}

#[test]
fn uncacheable_requests_say_why() {
    let s = scope("t", "openai/m");
    let user = json!([{"role": "user", "content": "Hi"}]);
    let cases = [
        (
            Format::OpenAi,
            json!({"model": "m", "n": 3, "temperature": 0.7, "messages": user}),
            Uncacheable::SeveralChoices { field: "n", n: 3 },
        ),
        (
            Format::Gemini,
            json!({"contents": [{"parts": [{"text": "Hi"}]}], "generationConfig": {"candidateCount": 2}}),
            Uncacheable::SeveralChoices {
                field: "candidateCount",
                n: 2,
            },
        ),
        (
            Format::OpenAi,
            json!({"model": "m", "logprobs": true, "messages": user}),
            Uncacheable::LogProbabilities { field: "logprobs" },
        ),
        (
            Format::OpenAi,
            json!({"model": "m", "modalities": ["text", "audio"], "audio": {"voice": "alloy", "format": "wav"}, "messages": user}),
            Uncacheable::NonTextOutput {
                field: "modalities",
            },
        ),
        (
            Format::Anthropic,
            json!({"model": "m", "max_tokens": 9, "messages": [{"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "x", "content": [
                    {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}]}]}]}),
            Uncacheable::RemoteImage {
                url: "https://example.com/a.png".into(),
            },
        ),
        (
            Format::Responses,
            json!({"model": "m", "conversation": "conv_1", "input": "Hi"}),
            Uncacheable::UpstreamState {
                field: "conversation",
            },
        ),
    ];
    for (surface, body, why) in cases {
        let got = key::keys(surface, body.to_string().as_bytes(), &s);
        assert_eq!(got, Err(NotKeyed::Uncacheable(why.clone())), "{body}");
        assert!(got.unwrap_err().to_string().contains("not cacheable"));
    }
    // `n: 1` is the default, not a reason.
    keys_of(
        Format::OpenAi,
        &json!({"model": "m", "n": 1, "messages": user}),
        &s,
    );
}

#[test]
fn a_body_the_translator_refuses_is_invalid_not_uncacheable() {
    let s = scope("t", "openai/m");
    for (surface, body) in [
        (Format::OpenAi, &b"{not json"[..]),
        (Format::OpenAi, b"[1]"),
        (Format::Anthropic, br#"{"messages": []}"#),
        (
            Format::OpenAi,
            br#"{"model": "m", "messages": [{"role": "robot", "content": "x"}]}"#,
        ),
    ] {
        assert!(
            matches!(key::keys(surface, body, &s), Err(NotKeyed::Invalid(_))),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
}

/// Fields the canonical model does not hold still change the key: each
/// pair is a request and the same one with such a field added or changed.
#[test]
fn fields_the_translators_drop_still_change_the_key() {
    let s = scope("t", "openai/m");
    let chat = json!({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}]});
    let mut detail = chat.clone();
    detail["messages"][0]["content"][1]["image_url"]["detail"] = json!("high");
    let mut audio_part = chat.clone();
    audio_part["messages"][0]["content"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}));
    let claude =
        json!({"model": "m", "max_tokens": 9, "messages": [{"role": "user", "content": "Hi"}]});
    let mut server_tool = claude.clone();
    server_tool["tools"] = json!([{"type": "web_search_20250305", "name": "web_search"}]);
    let mut document = claude.clone();
    document["messages"][0]["content"] = json!([{"type": "document",
        "source": {"type": "text", "media_type": "text/plain", "data": "A"}}, {"type": "text", "text": "Hi"}]);
    let gem = json!({"contents": [{"parts": [{"text": "Hi"}]}]});
    let resp = json!({"model": "m", "input": "Hi"});
    let cases = [
        (Format::OpenAi, chat.clone(), detail),
        (Format::OpenAi, chat, audio_part),
        (
            Format::Anthropic,
            claude.clone(),
            with(&claude, json!({"top_k": 5})),
        ),
        (Format::Anthropic, claude.clone(), server_tool),
        (Format::Anthropic, claude.clone(), document),
        (
            Format::Anthropic,
            claude.clone(),
            with(
                &claude,
                json!({"thinking": {"type": "enabled", "budget_tokens": 2048}}),
            ),
        ),
        (
            Format::Gemini,
            gem.clone(),
            with(
                &gem,
                json!({"safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}]}),
            ),
        ),
        (
            Format::Gemini,
            gem.clone(),
            with(&gem, json!({"generation_config": {"top_k": 3}})),
        ),
        (
            Format::Gemini,
            gem.clone(),
            with(&gem, json!({"cachedContent": "cachedContents/abc"})),
        ),
        (
            Format::Responses,
            resp.clone(),
            with(
                &resp,
                json!({"text": {"format": {"type": "json_schema", "name": "x", "schema": {"type": "object"}}}}),
            ),
        ),
        (
            Format::Responses,
            resp.clone(),
            with(&resp, json!({"previous_response_id": "resp_1"})),
        ),
        (
            Format::Responses,
            with(&resp, json!({"reasoning": {"effort": "minimal"}})),
            with(&resp, json!({"reasoning": {"effort": "none"}})),
        ),
    ];
    for (surface, a, b) in cases {
        assert_ne!(
            keys_of(surface, &a, &s).exact,
            keys_of(surface, &b, &s).exact,
            "{a} and {b} share a key"
        );
    }
}

#[test]
fn defaults_are_the_upstreams() {
    let body = |extra: Value| {
        let mut b = json!({"model": "m", "messages": [{"role": "user", "content": "Hi"}]});
        b.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        b
    };
    let key = |b: &Value, upstream| {
        let s = Scope {
            tenant: "t",
            target: "p/m",
            upstream,
        };
        keys_of(Format::OpenAi, b, &s).exact
    };
    // OpenAI samples at top_p 1 unless told; Gemini's default varies by
    // model, so stating it there is a different request.
    let stated = body(json!({"top_p": 1}));
    assert_eq!(
        key(&body(json!({})), Format::OpenAi),
        key(&stated, Format::OpenAi)
    );
    assert_ne!(
        key(&body(json!({})), Format::Gemini),
        key(&stated, Format::Gemini)
    );
    // Anthropic gets max_tokens 4096 from the gateway when none is named.
    let max = body(json!({"max_tokens": 4096}));
    assert_eq!(
        key(&body(json!({})), Format::Anthropic),
        key(&max, Format::Anthropic)
    );
    assert_ne!(
        key(&body(json!({})), Format::OpenAi),
        key(&max, Format::OpenAi)
    );
}

// ------------------------------------------------------------ property tests

/// A question, written out in each surface's format.
#[derive(Debug, Clone)]
struct Question {
    system: Option<String>,
    /// Alternating user / assistant texts, starting and ending with a user's.
    turns: Vec<String>,
    temperature: Option<f64>,
    max_tokens: u64,
    stop: Vec<String>,
    tools: Vec<(String, String, String)>,
}

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z][a-zA-Z0-9 ?.,é\n]{0,23}"
}

fn question() -> impl Strategy<Value = Question> {
    (
        proptest::option::of(text()),
        (0usize..3).prop_flat_map(|n| proptest::collection::vec(text(), 2 * n + 1)),
        proptest::option::of((0u32..=20).prop_map(|t| f64::from(t) / 10.0)),
        1u64..5000,
        proptest::collection::vec("[a-z#]{1,4}", 0..3),
        proptest::collection::vec(("[a-z_]{1,8}", text(), "[a-z]{1,6}"), 0..3),
    )
        .prop_map(
            |(system, turns, temperature, max_tokens, stop, tools)| Question {
                system,
                turns,
                temperature,
                max_tokens,
                stop,
                tools,
            },
        )
}

fn role(i: usize) -> &'static str {
    if i.is_multiple_of(2) {
        "user"
    } else {
        "assistant"
    }
}

fn schema(property: &str) -> Value {
    json!({"type": "object", "properties": {property: {"type": "string"}}, "required": [property]})
}

impl Question {
    fn openai(&self) -> Value {
        let mut messages: Vec<Value> = self
            .system
            .iter()
            .map(|s| json!({"role": "system", "content": s}))
            .collect();
        for (i, t) in self.turns.iter().enumerate() {
            messages.push(json!({"role": role(i), "content": t}));
        }
        let mut b = json!({"model": "m", "messages": messages, "max_tokens": self.max_tokens});
        if let Some(t) = self.temperature {
            b["temperature"] = json!(t);
        }
        if !self.stop.is_empty() {
            b["stop"] = json!(self.stop);
        }
        if !self.tools.is_empty() {
            let tools: Vec<Value> = self
                .tools
                .iter()
                .map(|(n, d, p)| {
                    json!({"type": "function",
                "function": {"name": n, "description": d, "parameters": schema(p)}})
                })
                .collect();
            b["tools"] = json!(tools);
        }
        b
    }

    fn anthropic(&self) -> Value {
        let messages: Vec<Value> = self
            .turns
            .iter()
            .enumerate()
            .map(|(i, t)| json!({"role": role(i), "content": [{"type": "text", "text": t}]}))
            .collect();
        let mut b = json!({"model": "m", "messages": messages, "max_tokens": self.max_tokens});
        if let Some(s) = &self.system {
            b["system"] = json!(s);
        }
        if let Some(t) = self.temperature {
            b["temperature"] = json!(t);
        }
        if !self.stop.is_empty() {
            b["stop_sequences"] = json!(self.stop);
        }
        if !self.tools.is_empty() {
            let tools: Vec<Value> = self
                .tools
                .iter()
                .map(|(n, d, p)| json!({"name": n, "description": d, "input_schema": schema(p)}))
                .collect();
            b["tools"] = json!(tools);
        }
        b
    }

    fn gemini(&self) -> Value {
        let contents: Vec<Value> = self
            .turns
            .iter()
            .enumerate()
            .map(|(i, t)| json!({"role": if i.is_multiple_of(2) { "user" } else { "model" }, "parts": [{"text": t}]}))
            .collect();
        let mut g = json!({"maxOutputTokens": self.max_tokens});
        if let Some(t) = self.temperature {
            g["temperature"] = json!(t);
        }
        if !self.stop.is_empty() {
            g["stopSequences"] = json!(self.stop);
        }
        let mut b = json!({"contents": contents, "generationConfig": g});
        if let Some(s) = &self.system {
            b["systemInstruction"] = json!({"parts": [{"text": s}]});
        }
        if !self.tools.is_empty() {
            let decls: Vec<Value> = self
                .tools
                .iter()
                .map(|(n, d, p)| json!({"name": n, "description": d, "parameters": schema(p)}))
                .collect();
            b["tools"] = json!([{"functionDeclarations": decls}]);
        }
        b
    }
}

/// `v` written with its object keys in a random order and random whitespace.
fn relayout(v: &Value, rng: &mut fastrand::Rng, out: &mut String) {
    let ws = |rng: &mut fastrand::Rng, out: &mut String| {
        for _ in 0..rng.usize(0..3) {
            out.push([' ', '\n', '\t', '\r'][rng.usize(0..4)]);
        }
    };
    ws(rng, out);
    match v {
        Value::Object(o) => {
            let mut fields: Vec<_> = o.iter().collect();
            rng.shuffle(&mut fields);
            out.push('{');
            for (i, (k, v)) in fields.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                ws(rng, out);
                out.push_str(&Value::String(k.clone()).to_string());
                ws(rng, out);
                out.push(':');
                relayout(v, rng, out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, v) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                relayout(v, rng, out);
            }
            out.push(']');
        }
        v => out.push_str(&v.to_string()),
    }
    ws(rng, out);
}

fn exact(surface: Format, body: &Value) -> key::Key {
    keys_of(surface, body, &scope("tenant", "openai/gpt-4o-mini")).exact
}

fn partition(body: &Value) -> key::Key {
    keys_of(Format::OpenAi, body, &scope("tenant", "openai/gpt-4o-mini"))
        .semantic
        .expect("ends with a user turn of text")
        .partition
}

/// `b` with the extra top-level fields of `extra`.
fn with(b: &Value, extra: Value) -> Value {
    let mut b = b.clone();
    b.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    b
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn layout_does_not_change_the_key(q in question(), seed in any::<u64>()) {
        let mut rng = fastrand::Rng::with_seed(seed);
        for (surface, body) in [(Format::OpenAi, q.openai()), (Format::Anthropic, q.anthropic()), (Format::Gemini, q.gemini())] {
            let mut raw = String::new();
            relayout(&body, &mut rng, &mut raw);
            let s = scope("tenant", "openai/gpt-4o-mini");
            let relaid = key::keys(surface, raw.as_bytes(), &s).unwrap();
            prop_assert_eq!(relaid, keys_of(surface, &body, &s));
        }
    }

    #[test]
    fn the_same_question_has_one_key_on_every_surface(q in question()) {
        let openai = exact(Format::OpenAi, &q.openai());
        prop_assert_eq!(openai, exact(Format::Anthropic, &q.anthropic()));
        prop_assert_eq!(openai, exact(Format::Gemini, &q.gemini()));
    }

    #[test]
    fn fields_that_cannot_change_the_answer_are_left_out(q in question(), user in text()) {
        let b = q.openai();
        let k = exact(Format::OpenAi, &b);
        let noise = json!({"user": user, "stream": true, "stream_options": {"include_usage": true},
            "metadata": {"request_id": "req_1", "trace": user}, "store": false,
            "fallbacks": ["anthropic/claude-haiku-4-5"], "model": "another-name"});
        prop_assert_eq!(k, exact(Format::OpenAi, &with(&b, noise)));
        let a = q.anthropic();
        let noise = json!({"stream": true, "metadata": {"user_id": user}});
        prop_assert_eq!(exact(Format::Anthropic, &a), exact(Format::Anthropic, &with(&a, noise)));
    }

    #[test]
    fn stated_defaults_key_like_absent_ones(q in question()) {
        let b = q.openai();
        let mut stated = with(&b, json!({"top_p": 1.0, "n": 1, "presence_penalty": 0,
            "frequency_penalty": 0.0, "logprobs": false, "response_format": {"type": "text"}}));
        if q.temperature.is_none() {
            stated["temperature"] = json!(1);
        }
        if !q.tools.is_empty() {
            stated["tool_choice"] = json!("auto");
            stated["parallel_tool_calls"] = json!(true);
        }
        prop_assert_eq!(exact(Format::OpenAi, &b), exact(Format::OpenAi, &stated));
    }

    #[test]
    fn anything_that_can_change_the_answer_changes_the_key(q in question(), pick in any::<prop::sample::Index>(), extra in text()) {
        let b = q.openai();
        let k = exact(Format::OpenAi, &b);
        let first_turn = usize::from(q.system.is_some());
        let n_turns = q.turns.len();
        let mut changed = Vec::new();
        // Every message's text.
        for i in 0..b["messages"].as_array().unwrap().len() {
            let mut c = b.clone();
            let t = c["messages"][i]["content"].as_str().unwrap().to_string();
            c["messages"][i]["content"] = json!(format!("{t}{extra}"));
            changed.push(c);
        }
        // A role.
        let mut c = b.clone();
        let at = first_turn + pick.index(n_turns);
        c["messages"][at]["role"] = json!(if role(at - first_turn) == "user" { "system" } else { "user" });
        changed.push(c);
        // Sampling parameters, limits, stop sequences, output format, tools.
        changed.push(with(&b, json!({"temperature": q.temperature.map_or(0.5, |t| t + 0.05)})));
        changed.push(with(&b, json!({"top_p": 0.9})));
        changed.push(with(&b, json!({"max_tokens": q.max_tokens + 1})));
        changed.push(with(&b, json!({"stop": [format!("{extra}!")]})));
        changed.push(with(&b, json!({"seed": 7})));
        changed.push(with(&b, json!({"frequency_penalty": 0.5})));
        changed.push(with(&b, json!({"response_format": {"type": "json_object"}})));
        changed.push(with(&b, json!({"reasoning_effort": "high"})));
        let tool = json!({"type": "function", "function": {"name": "extra_tool", "parameters": schema("x")}});
        let mut tools = b.get("tools").cloned().unwrap_or(json!([]));
        tools.as_array_mut().unwrap().push(tool);
        changed.push(with(&b, json!({"tools": tools})));
        if !q.tools.is_empty() {
            let mut c = b.clone();
            c["tools"][0]["function"]["parameters"] = schema("other_property");
            changed.push(c);
            let mut c = b.clone();
            c["tools"][0]["function"]["description"] = json!(format!("{extra}."));
            changed.push(c);
            changed.push(with(&b, json!({"tool_choice": "required"})));
        }
        for c in &changed {
            prop_assert_ne!(k, exact(Format::OpenAi, c), "same key for {} and {}", b, c);
        }
        // The target and the tenant.
        let s = |tenant, target| Scope { tenant, target, upstream: Format::OpenAi };
        prop_assert_ne!(k, keys_of(Format::OpenAi, &b, &s("tenant", "openai/gpt-4o")).exact);
        prop_assert_ne!(k, keys_of(Format::OpenAi, &b, &s("tenant-2", "openai/gpt-4o-mini")).exact);
    }

    #[test]
    fn the_partition_is_all_but_the_last_user_turn(q in question(), other in text(), extra in text()) {
        let b = q.openai();
        let p = partition(&b);
        let last = b["messages"].as_array().unwrap().len() - 1;
        let mut asked_otherwise = b.clone();
        asked_otherwise["messages"][last]["content"] = json!(other.clone());
        prop_assert_eq!(p, partition(&asked_otherwise));
        prop_assert_eq!(
            keys_of(Format::OpenAi, &asked_otherwise, &scope("tenant", "openai/gpt-4o-mini")).semantic.unwrap().text,
            other
        );
        let mut changed = Vec::new();
        for i in 0..last {
            let mut c = b.clone();
            let t = c["messages"][i]["content"].as_str().unwrap().to_string();
            c["messages"][i]["content"] = json!(format!("{t}{extra}"));
            changed.push(c);
        }
        let mut c = b.clone();
        c["messages"].as_array_mut().unwrap().insert(0, json!({"role": "system", "content": extra}));
        changed.push(c);
        changed.push(with(&b, json!({"temperature": q.temperature.map_or(0.5, |t| t + 0.05)})));
        changed.push(with(&b, json!({"max_tokens": q.max_tokens + 1})));
        changed.push(with(&b, json!({"seed": 7})));
        changed.push(with(&b, json!({"tools": [{"type": "function", "function": {"name": "t", "parameters": schema("x")}}]})));
        for c in &changed {
            prop_assert_ne!(p, partition(c), "same partition for {} and {}", b, c);
        }
        let k = |tenant, target| keys_of(Format::OpenAi, &b, &Scope { tenant, target, upstream: Format::OpenAi })
            .semantic.unwrap().partition;
        prop_assert_ne!(p, k("tenant", "openai/gpt-4o"));
        prop_assert_ne!(p, k("tenant-2", "openai/gpt-4o-mini"));
        // The partition is not the exact key of any request.
        prop_assert_ne!(p, exact(Format::OpenAi, &b));
    }
}
