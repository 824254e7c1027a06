//! Golden tests of the OpenAI wire handling. Fixtures and snapshots live in
//! `tests/golden/openai/`; `UPDATE_GOLDEN=1 cargo test` rewrites the snapshots,
//! which are then reviewed in the diff like code.

use super::*;
use crate::providers::sse::SseParser;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/openai");

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{DIR}/{name}")).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

fn golden(name: &str, actual: &str) {
    golden_file(&format!("{DIR}/{name}"), actual);
}

/// Compares `actual` with the snapshot at `path`, or rewrites it under `UPDATE_GOLDEN`.
pub(crate) fn golden_file(path: &str, actual: &str) {
    let name = path.rsplit('/').next().unwrap_or(path);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("snapshot {name} missing ({e}); run with UPDATE_GOLDEN=1"));
    assert_eq!(
        actual, expected,
        "snapshot {name} differs; run with UPDATE_GOLDEN=1 and review"
    );
}

fn pretty(bytes: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(bytes).unwrap();
    serde_json::to_string_pretty(&v).unwrap() + "\n"
}

#[test]
fn chat_request_view_and_upstream_body() {
    let body = fixture("chat_request.json");
    let obj = RawObject::parse(&body).unwrap();
    let view = RequestView::read(&obj, Endpoint::ChatCompletions).unwrap();
    assert_eq!(
        view,
        RequestView {
            model: "openai/gpt-4o".into(),
            stream: false,
            include_usage: false,
            fallbacks: vec!["groq/llama-3.3-70b-versatile".into()],
            max_tokens: Some(256),
        }
    );
    let up = upstream_body(&obj, "gpt-4o", false);
    // Exact bytes: everything but `model` and `fallbacks` is copied verbatim.
    golden(
        "chat_request.upstream.json",
        std::str::from_utf8(&up).unwrap(),
    );
    let before: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let mut after: serde_json::Value = serde_json::from_slice(&up).unwrap();
    after["model"] = before["model"].clone();
    after["fallbacks"] = before["fallbacks"].clone();
    assert_eq!(after, before, "only model and fallbacks may change");
}

#[test]
fn streaming_request_asks_for_usage_keeping_other_options() {
    let body = fixture("chat_stream_request.json");
    let obj = RawObject::parse(&body).unwrap();
    let view = RequestView::read(&obj, Endpoint::ChatCompletions).unwrap();
    assert!(view.stream && !view.include_usage);
    let up = upstream_body(&obj, "gpt-4o-mini", true);
    golden(
        "chat_stream_request.upstream.json",
        std::str::from_utf8(&up).unwrap(),
    );
    let v: serde_json::Value = serde_json::from_slice(&up).unwrap();
    assert_eq!(v["stream_options"]["include_usage"], true);
    assert_eq!(v["stream_options"]["chunk_size_hint"], 4);
    // Absent stream_options get added.
    let obj = RawObject::parse(br#"{"model":"m","stream":true,"messages":[]}"#).unwrap();
    let up = upstream_body(&obj, "m2", true);
    assert_eq!(
        &up[..],
        br#"{"model":"m2","stream":true,"messages":[],"stream_options":{"include_usage":true}}"#
    );
}

#[test]
fn response_usage_with_cached_tokens() {
    let usage = usage_of(&fixture("chat_response.json")).unwrap();
    golden(
        "chat_response.usage.json",
        &(serde_json::to_string_pretty(&usage).unwrap() + "\n"),
    );
    assert_eq!(usage.cached_tokens, 64);
}

#[test]
fn stream_events_classified() {
    let mut p = SseParser::new();
    p.push(&fixture("chat_stream.sse")).unwrap();
    let mut lines = String::new();
    while let Some(ev) = p.next_event() {
        let line = match ev.data() {
            None => "(no data)".to_string(),
            Some(d) => {
                let kind = chunk_kind(&d);
                match usage_of(d.as_bytes()) {
                    Some(u) => format!("{kind:?} usage={}", serde_json::to_string(&u).unwrap()),
                    None => format!("{kind:?}"),
                }
            }
        };
        lines.push_str(&line);
        lines.push('\n');
    }
    assert!(p.pending().is_empty());
    golden("chat_stream.events.txt", &lines);
}

#[test]
fn error_shapes() {
    let e = ErrorObject {
        message: "model 'x' not found",
        kind: "invalid_request_error",
        param: Some("model"),
        code: Some("model_not_found"),
    };
    golden("error_body.json", &pretty(&error_body(&e)));
    golden(
        "stream_error_event.sse",
        std::str::from_utf8(&stream_error_event(&ErrorObject {
            message: "upstream closed the stream before it was complete",
            kind: "upstream_error",
            param: None,
            code: Some("upstream_error"),
        }))
        .unwrap(),
    );
    assert_eq!(
        error_message(br#"{"error":{"message":"bad key","type":"x"}}"#).as_deref(),
        Some("bad key")
    );
    assert_eq!(
        error_message(br#"{"error":"plain"}"#).as_deref(),
        Some("plain")
    );
    assert_eq!(error_message(b"<html>"), None);
}

#[test]
fn invalid_requests_name_the_param() {
    for (body, endpoint, param) in [
        (
            &br#"{"messages":[]}"#[..],
            Endpoint::ChatCompletions,
            "model",
        ),
        (
            br#"{"model":5,"messages":[]}"#,
            Endpoint::ChatCompletions,
            "model",
        ),
        (br#"{"model":"m"}"#, Endpoint::ChatCompletions, "messages"),
        (
            br#"{"model":"m","messages":[],"stream":"yes"}"#,
            Endpoint::ChatCompletions,
            "stream",
        ),
        (
            br#"{"model":"m","messages":[],"fallbacks":"x"}"#,
            Endpoint::ChatCompletions,
            "fallbacks",
        ),
        (br#"{"model":"m"}"#, Endpoint::Completions, "prompt"),
        (
            br#"{"model":"m","input":"x","stream":true}"#,
            Endpoint::Embeddings,
            "stream",
        ),
    ] {
        let obj = RawObject::parse(body).unwrap();
        let err = RequestView::read(&obj, endpoint).unwrap_err();
        assert_eq!(err.param, Some(param), "{}", String::from_utf8_lossy(body));
    }
    assert!(RawObject::parse(b"[1,2]").is_err());
    assert!(RawObject::parse(b"{\"a\":").is_err());
}

#[test]
fn upstream_body_escapes_what_needs_it() {
    let obj = RawObject::parse(br#"{"model":"m","we\"ird\u0001":1}"#).unwrap();
    let up = upstream_body(&obj, "odd\"model\\x", false);
    let v: serde_json::Value = serde_json::from_slice(&up).unwrap();
    assert_eq!(v["model"], "odd\"model\\x");
    assert_eq!(v["we\"ird\u{1}"], 1);
}

mod properties {
    use proptest::prelude::*;
    use serde_json::{Map, Value};

    use super::*;

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            "\\PC{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("\\PC{1,8}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
            ]
        })
    }

    proptest! {
        /// Whatever else a request carries reaches the upstream unchanged:
        /// only `model` is replaced and `fallbacks` removed.
        #[test]
        fn upstream_body_changes_only_the_gateways_fields(
            extra in prop::collection::btree_map(r#"[a-z_"\\]{1,10}"#, json_value(), 0..6),
            model in "\\PC{1,20}",
        ) {
            let mut req = Map::new();
            for (k, v) in extra {
                req.insert(k, v);
            }
            req.insert("model".into(), Value::from("orig"));
            req.insert("fallbacks".into(), Value::from(vec!["x/y"]));
            let body = serde_json::to_vec(&Value::Object(req.clone())).unwrap();
            let obj = RawObject::parse(&body).unwrap();
            let out: Value = serde_json::from_slice(&upstream_body(&obj, &model, false)).unwrap();
            let mut expected = req;
            expected.remove("fallbacks");
            expected.insert("model".into(), Value::from(model));
            prop_assert_eq!(out, Value::Object(expected));
        }

        /// Arbitrary bytes as a request body are refused or read, never a panic.
        #[test]
        fn arbitrary_bodies_never_panic(body in prop::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(obj) = RawObject::parse(&body) {
                let _ = RequestView::read(&obj, Endpoint::ChatCompletions);
                let _ = prompt_token_bound(&obj);
                let _ = prompt_text(&obj);
            }
            let _ = usage_of(&body);
            let _ = error_message(&body);
            let _ = redact_error_body(&body);
        }
    }
}

#[test]
fn upstream_errors_lose_their_account_details() {
    let said = r#"{"error": {"message": "Incorrect API key provided: sk-proj-abc123def456ghi. You exceeded your quota for organization org-Zq81xYlemnopQrs in project proj_9sH2kLmN0pQ.", "type": "invalid_request_error", "code": "invalid_api_key", "param": null}}"#;
    let out: serde_json::Value =
        serde_json::from_slice(&redact_error_body(said.as_bytes())).unwrap();
    let message = out["error"]["message"].as_str().unwrap();
    assert_eq!(
        message,
        "Incorrect API key provided: [redacted]. You exceeded your quota for organization [redacted] in project [redacted]."
    );
    assert_eq!(
        out["error"]["code"], "invalid_api_key",
        "other fields are kept"
    );
    assert_eq!(
        redact("key AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY and 1234567890abcdef1234567890abcdef"),
        "key [redacted] and [redacted]"
    );
    for ok in [
        "model 'gpt-4o-mini-2024-07-18' not found",
        "model 'claude-3-5-sonnet-20241022' not found",
        "model 'accounts/fireworks/models/llama-v3p3-70b-instruct' not found",
    ] {
        assert_eq!(redact(ok), ok, "model ids are not secrets");
    }
    assert_eq!(
        String::from_utf8(redact_error_body(b"upstream said sk-live-0123456789abcdef").to_vec())
            .unwrap(),
        "upstream said [redacted]"
    );
}

#[test]
fn lone_surrogates_are_refused_where_the_body_is_first_read() {
    for bad in [
        r#"{"model":"m","x":"\ud800"}"#,
        r#"{"model":"m","x":"\udc00 after"}"#,
        r#"{"model":"m","x":"\ud800\u0041"}"#,
    ] {
        assert!(RawObject::parse(bad.as_bytes()).is_err(), "{bad}");
        assert!(
            serde_json::from_str::<serde_json::Value>(bad).is_err(),
            "{bad}"
        );
    }
    for good in [
        r#"{"model":"m","x":"\ud83d\ude00"}"#,
        r#"{"model":"m","x":"\\ud800 is text"}"#,
        r#"{"model":"m","x":"\u00e9\n\"\\"}"#,
    ] {
        assert!(RawObject::parse(good.as_bytes()).is_ok(), "{good}");
    }
}
