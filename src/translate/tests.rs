//! Golden tests of the translators: one fixture per source format, one
//! snapshot per target format, for requests, responses and streams. Files
//! live in `tests/golden/translate/`; `UPDATE_GOLDEN=1 cargo test` rewrites
//! the snapshots, which are then reviewed in the diff like code.

use serde_json::{Value, json};

use super::canonical::{Document, Part};
use super::*;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/translate");

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{DIR}/{name}")).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

fn fixture_json(name: &str) -> Value {
    serde_json::from_slice(&fixture(name)).unwrap()
}

fn golden(name: &str, actual: &str) {
    crate::providers::openai::tests::golden_file(&format!("{DIR}/{name}"), actual);
}

fn golden_json(name: &str, v: &Value) {
    golden(name, &(serde_json::to_string_pretty(v).unwrap() + "\n"));
}

/// An encoder for `format` whose Responses answers go nowhere.
fn enc(format: Format, model: &str) -> Option<Transcoder> {
    encoder(format, model, "resp_test", Box::new(|_| {}))
}

/// Runs a whole stream through a transcoder, cut into pieces of `piece` bytes.
fn transcode(mut t: Transcoder, input: &[u8], piece: usize) -> String {
    let mut out = Vec::new();
    for p in input.chunks(piece) {
        out.extend_from_slice(&t.push(p).unwrap());
    }
    out.extend_from_slice(&t.finish());
    String::from_utf8(out).unwrap()
}

#[test]
fn anthropic_request_to_every_format() {
    let v = fixture_json("anthropic_request.json");
    let r = anthropic::request_from_anthropic(&v).unwrap();
    assert_eq!(r.system, ["You are a careful assistant."]);
    assert_eq!(
        r.thinking,
        Some(canonical::Thinking {
            budget_tokens: 2048
        })
    );
    assert_eq!(
        r.tools.len(),
        2,
        "server tools have no schema and are dropped"
    );
    golden_json(
        "anthropic_request.to_openai.json",
        &openai::request_to_openai(&r, "gpt-4o", false),
    );
    let back = anthropic::request_to_anthropic(&r, "claude-sonnet-4-5");
    golden_json("anthropic_request.to_anthropic.json", &back);
    // What Anthropic shares with itself survives the round trip whole.
    assert_eq!(anthropic::request_from_anthropic(&back).unwrap(), r);
    for field in [
        "system",
        "messages",
        "stop_sequences",
        "temperature",
        "thinking",
    ] {
        assert!(back.get(field).is_some(), "{field}");
    }
    assert_eq!(
        back["messages"][1]["content"][0]["signature"],
        "c2lnLWFiYw=="
    );
}

#[test]
fn openai_request_to_every_format() {
    let v = fixture_json("openai_request.json");
    let r = openai::request_from_openai(&v).unwrap();
    assert_eq!(r.fallbacks, ["oai/mock-1"]);
    assert_eq!(r.parallel_tool_calls, Some(false));
    // Consecutive tool results become one user turn.
    assert_eq!(r.messages.len(), 3);
    let a = anthropic::request_to_anthropic(&r, "claude-sonnet-4-5");
    golden_json("openai_request.to_anthropic.json", &a);
    assert_eq!(
        a["tool_choice"],
        json!({"type": "tool", "name": "get_weather", "disable_parallel_tool_use": true})
    );
    assert_eq!(a["thinking"]["budget_tokens"], 8192);
    assert!(a["max_tokens"].as_u64().unwrap() > 8192);
    let o = openai::request_to_openai(&r, &r.model, true);
    golden_json("openai_request.to_openai.json", &o);
    assert_eq!(openai::request_from_openai(&o).unwrap(), r);
}

#[test]
fn anthropic_response_to_every_format() {
    let v = fixture_json("anthropic_response.json");
    let r = anthropic::response_from_anthropic(&v);
    assert_eq!(r.usage.prompt_tokens, 1000, "cached input counts as prompt");
    assert_eq!(r.usage.cached_tokens, 900);
    let internal = openai::response_to_openai(&r);
    golden_json("anthropic_response.to_openai.json", &internal);
    let back = anthropic::response_to_anthropic(&openai::response_from_openai(&internal));
    golden_json("anthropic_response.to_anthropic.json", &back);
    assert_eq!(back["content"], v["content"]);
    assert_eq!(back["usage"], v["usage"]);
}

#[test]
fn anthropic_stream_decodes_to_chunks_and_back() {
    let input = fixture("anthropic_stream.sse");
    let chunks = transcode(decoder(Format::Anthropic).unwrap(), &input, input.len());
    golden("anthropic_stream.to_openai.sse", &chunks);
    // However the upstream's bytes are cut, the same chunks come out.
    for piece in [1, 7, 64] {
        let cut = transcode(decoder(Format::Anthropic).unwrap(), &input, piece);
        assert_eq!(cut, chunks, "pieces of {piece}");
    }
    let again = transcode(
        enc(Format::Anthropic, "claude-sonnet-4-5").unwrap(),
        chunks.as_bytes(),
        chunks.len(),
    );
    golden("anthropic_stream.to_anthropic.sse", &again);
    // Same blocks, deltas and stop reason as the original; usage restored.
    let kinds = |s: &str| -> Vec<String> {
        s.lines()
            .filter_map(|l| l.strip_prefix("event: "))
            .filter(|e| *e != "ping")
            .map(str::to_string)
            .collect()
    };
    let original = String::from_utf8(input).unwrap();
    assert_eq!(kinds(&again), kinds(&original));
    assert!(again.contains(r#""usage":{"cache_creation_input_tokens":0,"cache_read_input_tokens":900,"input_tokens":100,"output_tokens":40}"#), "{again}");
}

#[test]
fn openai_stream_encodes_to_anthropic() {
    let input = fixture("openai_stream.sse");
    let out = transcode(
        enc(Format::Anthropic, "groq/llama").unwrap(),
        &input,
        input.len(),
    );
    golden("openai_stream.to_anthropic.sse", &out);
    assert!(out.contains(r#""stop_reason":"tool_use""#));
}

#[test]
fn an_encoded_stream_cut_short_ends_with_an_error_event() {
    let input = fixture("openai_stream.sse");
    let text = String::from_utf8(input).unwrap();
    // Cut inside an event: that partial event never completes.
    let cut = &text[..text.find("tool_calls").unwrap()];
    let whole_events = &cut[..cut.rfind("\n\n").unwrap() + 2];
    let out = transcode(enc(Format::Anthropic, "m").unwrap(), cut.as_bytes(), 16);
    let last = out.trim_end().rsplit("\n\n").next().unwrap();
    assert!(last.starts_with("event: error\n"), "{out}");
    assert!(!out.contains("message_stop"));
    // An upstream error chunk in the middle becomes the same error event.
    let with_error = format!("{whole_events}data: {{\"error\":{{\"message\":\"boom\"}}}}\n\n");
    let out = transcode(
        enc(Format::Anthropic, "m").unwrap(),
        with_error.as_bytes(),
        16,
    );
    assert!(out.ends_with("event: error\ndata: {\"error\":{\"message\":\"boom\",\"type\":\"api_error\"},\"type\":\"error\"}\n\n"), "{out}");
}

#[test]
fn errors_take_the_clients_shape() {
    let b = error_body(Format::Anthropic, 429, "slow down").unwrap();
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(
        v,
        json!({"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}})
    );
    assert_eq!(error_body(Format::OpenAi, 429, "x"), None);
}

#[test]
fn gemini_request_to_every_format() {
    let v = fixture_json("gemini_request.json");
    let r = gemini::request_from_gemini(&v, "gemini-2.5-flash", false).unwrap();
    assert_eq!(
        r.tool_choice,
        Some(canonical::ToolChoice::Tool("get_weather".into()))
    );
    assert_eq!(
        r.tools[0].parameters["properties"]["city"]["type"], "string",
        "Gemini's capitalized types become JSON Schema's"
    );
    golden_json(
        "gemini_request.to_openai.json",
        &openai::request_to_openai(&r, "gpt-4o", false),
    );
    golden_json(
        "gemini_request.to_anthropic.json",
        &anthropic::request_to_anthropic(&r, "claude-sonnet-4-5"),
    );
    let back = gemini::request_to_gemini(&r);
    golden_json("gemini_request.to_gemini.json", &back);
    assert_eq!(
        gemini::request_from_gemini(&back, "gemini-2.5-flash", false).unwrap(),
        r
    );
}

#[test]
fn other_requests_to_gemini() {
    let r = anthropic::request_from_anthropic(&fixture_json("anthropic_request.json")).unwrap();
    let g = gemini::request_to_gemini(&r);
    golden_json("anthropic_request.to_gemini.json", &g);
    // Results name the function of the call they answer.
    let results = &g["contents"][2]["parts"];
    assert_eq!(results[0]["functionResponse"]["name"], "get_weather");
    assert_eq!(results[1]["functionResponse"]["name"], "get_time");
    let r = openai::request_from_openai(&fixture_json("openai_request.json")).unwrap();
    golden_json(
        "openai_request.to_gemini.json",
        &gemini::request_to_gemini(&r),
    );
}

#[test]
fn gemini_response_to_every_format() {
    let r = gemini::response_from_gemini(&fixture_json("gemini_response.json"));
    assert_eq!(
        r.stop,
        canonical::StopReason::ToolUse,
        "calls mean tool use"
    );
    assert_eq!(r.usage.completion_tokens, 40, "thoughts count as output");
    assert_eq!(r.usage.cached_tokens, 900);
    let internal = openai::response_to_openai(&r);
    golden_json("gemini_response.to_openai.json", &internal);
    golden_json(
        "gemini_response.to_anthropic.json",
        &anthropic::response_to_anthropic(&r),
    );
    golden_json(
        "gemini_response.to_gemini.json",
        &gemini::response_to_gemini(&openai::response_from_openai(&internal)),
    );
    // Anthropic's answer in Gemini's format.
    let a = anthropic::response_from_anthropic(&fixture_json("anthropic_response.json"));
    golden_json(
        "anthropic_response.to_gemini.json",
        &gemini::response_to_gemini(&a),
    );
}

#[test]
fn gemini_stream_decodes_and_every_stream_encodes_to_gemini() {
    let input = fixture("gemini_stream.sse");
    let chunks = transcode(decoder(Format::Gemini).unwrap(), &input, input.len());
    golden("gemini_stream.to_openai.sse", &chunks);
    for piece in [1, 5, 50] {
        let cut = transcode(decoder(Format::Gemini).unwrap(), &input, piece);
        assert_eq!(cut, chunks, "pieces of {piece}");
    }
    assert!(chunks.ends_with("data: [DONE]\n\n"));
    let to_anthropic = transcode(
        enc(Format::Anthropic, "gem/gemini-2.5-flash").unwrap(),
        chunks.as_bytes(),
        chunks.len(),
    );
    golden("gemini_stream.to_anthropic.sse", &to_anthropic);
    let back = transcode(
        enc(Format::Gemini, "gemini-2.5-flash").unwrap(),
        chunks.as_bytes(),
        chunks.len(),
    );
    golden("gemini_stream.to_gemini.sse", &back);
    let openai = fixture("openai_stream.sse");
    let out = transcode(
        enc(Format::Gemini, "groq/llama").unwrap(),
        &openai,
        openai.len(),
    );
    golden("openai_stream.to_gemini.sse", &out);
    // Tool calls leave whole, with the finish reason, in the last chunk.
    let last: Value =
        serde_json::from_str(out.trim_end().rsplit("data: ").next().unwrap()).unwrap();
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    assert_eq!(
        last["candidates"][0]["content"]["parts"][1]["functionCall"],
        json!({"name": "get_time", "args": {"tz": "UTC"}})
    );
    // A Gemini stream without a finish reason was cut: no end marker is made up.
    let cut = &input[..input.len() / 2];
    let cut = &cut[..cut.len() - cut.rsplitn(2, |&b| b == b'\n').next().unwrap().len()];
    let partial = transcode(decoder(Format::Gemini).unwrap(), cut, 16);
    assert!(!partial.contains("[DONE]"), "{partial}");
}

#[test]
fn responses_request_to_every_format() {
    let read = responses::request_from_responses(&fixture_json("responses_request.json")).unwrap();
    assert_eq!(read.previous.as_deref(), Some("resp_abc"));
    assert!(!read.store);
    let r = read.request;
    assert_eq!(r.tools.len(), 1, "built-in tools are dropped");
    assert_eq!(
        r.messages.len(),
        3,
        "reasoning, text and call form one assistant turn"
    );
    golden_json(
        "responses_request.to_openai.json",
        &openai::request_to_openai(&r, "gpt-4o", true),
    );
    golden_json(
        "responses_request.to_anthropic.json",
        &anthropic::request_to_anthropic(&r, "claude-sonnet-4-5"),
    );
    golden_json(
        "responses_request.to_gemini.json",
        &gemini::request_to_gemini(&r),
    );
}

#[test]
fn responses_answers_and_streams() {
    let a = anthropic::response_from_anthropic(&fixture_json("anthropic_response.json"));
    let v = responses::response_to_responses(&a, "resp_1");
    golden_json("anthropic_response.to_responses.json", &v);
    let kinds: Vec<&str> = v["output"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["reasoning", "message", "function_call", "function_call"]
    );
    assert_eq!(v["usage"]["input_tokens_details"]["cached_tokens"], 900);

    let input = fixture("openai_stream.sse");
    let done = std::sync::Arc::new(std::sync::Mutex::new(None));
    let sink = done.clone();
    let t = encoder(
        Format::Responses,
        "groq/llama",
        "resp_1",
        Box::new(move |r| *sink.lock().unwrap() = Some(r)),
    )
    .unwrap();
    let out = transcode(t, &input, 9);
    golden("openai_stream.to_responses.sse", &out);
    // The whole answer is handed over for `previous_response_id`.
    let r = done.lock().unwrap().take().expect("completed");
    assert_eq!(canonical::text_of(&r.content), "Let me check.");
    let calls: Vec<&str> = r
        .content
        .iter()
        .filter_map(|p| match p {
            canonical::Part::ToolCall(c) => Some(c.arguments.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(calls, [r#"{"city":"Paris"}"#, r#"{"tz":"UTC"}"#]);
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    fn every_transcoder() -> Vec<Transcoder> {
        let mut all: Vec<Transcoder> = [Format::Anthropic, Format::Gemini, Format::Bedrock]
            .into_iter()
            .filter_map(decoder)
            .collect();
        all.extend(
            [
                Format::Anthropic,
                Format::Gemini,
                Format::Bedrock,
                Format::Responses,
            ]
            .into_iter()
            .filter_map(|f| enc(f, "m")),
        );
        all
    }

    /// Events shaped like the real ones, with fields missing or of the wrong type.
    fn hostile_events() -> impl Strategy<Value = Vec<String>> {
        let value = prop_oneof![
            Just("null".to_string()),
            Just("1".to_string()),
            Just("\"x\"".to_string()),
            Just("{}".to_string()),
            Just("[]".to_string()),
            Just("18446744073709551615".to_string()),
        ];
        let event = (
            prop::sample::select(vec![
                "message_start",
                "content_block_start",
                "content_block_delta",
                "message_delta",
                "message_stop",
                "error",
            ]),
            value.clone(),
            value,
        )
            .prop_map(|(t, a, b)| {
                format!(
                    "data: {{\"type\":\"{t}\",\"index\":{a},\"delta\":{b},\"choices\":[{{\"delta\":{{\"tool_calls\":[{{\"index\":{a}}}],\"content\":{b}}}}}],\"candidates\":[{{\"content\":{{\"parts\":{b}}}}}]}}\n\n"
                )
            });
        prop::collection::vec(event, 0..12)
    }

    proptest! {
        /// Arbitrary bytes from an upstream or the relay never panic a translator.
        #[test]
        fn arbitrary_bytes_are_survived(chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..16)) {
            for mut t in every_transcoder() {
                for c in &chunks {
                    let _ = t.push(c);
                }
                let _ = t.finish();
            }
        }

        /// Well-framed events with wrong shapes never panic a translator either.
        #[test]
        fn malformed_events_are_survived(events in hostile_events()) {
            for mut t in every_transcoder() {
                for e in &events {
                    let _ = t.push(e.as_bytes());
                }
                let _ = t.push(b"data: [DONE]\n\n");
                let _ = t.finish();
            }
        }
    }
}

#[test]
fn openai_cache_markers_reach_anthropic_and_no_one_else() {
    let v = fixture_json("openai_cache_request.json");
    let r = openai::request_from_openai(&v).unwrap();
    let a = anthropic::request_to_anthropic(&r, "claude-sonnet-4-5");
    golden_json("openai_cache_request.to_anthropic.json", &a);
    let hour = json!({"type": "ephemeral", "ttl": "1h"});
    assert_eq!(a["tools"][0]["cache_control"], hour);
    assert_eq!(a["system"][0]["cache_control"], hour);
    assert!(a["system"][1].get("cache_control").is_none());
    assert_eq!(
        a["messages"][0]["content"][0]["cache_control"],
        json!({"type": "ephemeral"})
    );
    assert_eq!(
        a["messages"][2]["content"][0]["cache_control"],
        json!({"type": "ephemeral", "ttl": "5m"}),
        "a tool message's marker is on its tool_result block"
    );
    // Read back from Anthropic, the same breakpoints.
    assert_eq!(
        anthropic::request_from_anthropic(&a).unwrap().messages,
        r.messages
    );
    // Formats without markers carry none.
    for other in [
        openai::request_to_openai(&r, "gpt-4o", false),
        gemini::request_to_gemini(&r),
    ] {
        assert!(!other.to_string().contains("cache_control"), "{other}");
    }
    // Unmarked, the body is what it always was.
    let plain = fixture_json("openai_request.json");
    let p = openai::request_from_openai(&plain).unwrap();
    assert!(
        !anthropic::request_to_anthropic(&p, "m")
            .to_string()
            .contains("cache_control")
    );
}

#[test]
fn cache_markers_are_checked_as_anthropic_would() {
    let part = |c: Value| json!({"type": "text", "text": "x", "cache_control": c});
    let chat = |content: Vec<Value>| json!({"model": "m", "messages": [{"role": "user", "content": content}]});
    let e = json!({"type": "ephemeral"});
    let four = chat(vec![part(e.clone()); 4]);
    assert!(openai::request_from_openai(&four).is_ok());
    let five = openai::request_from_openai(&chat(vec![part(e.clone()); 5])).unwrap_err();
    assert!(five.0.contains("at most 4"), "{five}");
    // A message-level marker on an already marked last part is one breakpoint.
    let mut twice = chat(vec![part(e.clone()); 4]);
    twice["messages"][0]["cache_control"] = e.clone();
    assert!(openai::request_from_openai(&twice).is_ok());
    for bad in [
        json!({"type": "persistent"}),
        json!({"type": "ephemeral", "ttl": "2h"}),
        json!({"ttl": "5m"}),
    ] {
        let err = openai::request_from_openai(&chat(vec![part(bad.clone())])).unwrap_err();
        assert!(err.0.starts_with("cache_control:"), "{bad}: {err}");
    }
    let late_hour = chat(vec![
        part(e.clone()),
        part(json!({"type": "ephemeral", "ttl": "1h"})),
    ]);
    assert!(openai::request_from_openai(&late_hour).is_err());
    let resp = json!({"model": "m", "input": [{"role": "user",
        "content": vec![json!({"type": "input_text", "text": "x", "cache_control": e}); 5]}]});
    assert!(responses::request_from_responses(&resp).is_err());
    // Anthropic's own clients are not second-guessed: what Anthropic would
    // refuse is left out of the canonical request, not an error.
    let own = json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user",
        "content": vec![part(json!({"type": "ephemeral", "ttl": "2h"})); 5]}]});
    assert!(anthropic::request_from_anthropic(&own).is_ok());
}

/// `fallbacks` is the gateway's own field: the pipeline reads it from the
/// internal body, and no upstream is sent it.
#[test]
fn no_upstream_body_carries_the_gateways_fallbacks() {
    let v = fixture_json("openai_request.json");
    let r = openai::request_from_openai(&v).unwrap();
    assert!(!r.fallbacks.is_empty(), "the fixture names fallbacks");
    for wire in [
        Format::OpenAi,
        Format::Anthropic,
        Format::Gemini,
        Format::Bedrock,
        Format::Cohere,
    ] {
        let (_, body) = upstream_request(wire, &r, "m", false, true);
        let sent: Value = serde_json::from_slice(&body).unwrap();
        assert!(sent.get("fallbacks").is_none(), "{wire:?}: {sent}");
    }
    assert!(internal_body(&r).windows(9).any(|w| w == b"fallbacks"));
}

#[test]
fn documents_cross_every_format_in_each_ones_own_form() {
    const PDF: &str = "JVBERi0xLjQK";
    let inbound = [
        (
            Format::OpenAi,
            json!({"model": "m", "messages": [{"role": "user", "content": [
                {"type": "text", "text": "summarise"},
                {"type": "file", "file": {"file_data": format!("data:application/pdf;base64,{PDF}"), "filename": "q3 report.pdf"}}]}]}),
        ),
        (
            Format::Anthropic,
            json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": [
                {"type": "text", "text": "summarise"},
                {"type": "document", "title": "q3 report.pdf", "source": {"type": "base64", "media_type": "application/pdf", "data": PDF}}]}]}),
        ),
        (
            Format::Gemini,
            json!({"model": "m", "contents": [{"role": "user", "parts": [
                {"text": "summarise"},
                {"inlineData": {"mimeType": "application/pdf", "data": PDF, "displayName": "q3 report.pdf"}}]}]}),
        ),
        (
            Format::Bedrock,
            json!({"model": "m", "messages": [{"role": "user", "content": [
                {"text": "summarise"},
                {"document": {"format": "pdf", "name": "q3 report.pdf", "source": {"bytes": PDF}}}]}]}),
        ),
        (
            Format::Responses,
            json!({"model": "m", "input": [{"role": "user", "content": [
                {"type": "input_text", "text": "summarise"},
                {"type": "input_file", "file_data": format!("data:application/pdf;base64,{PDF}"), "filename": "q3 report.pdf"}]}]}),
        ),
    ];
    for (format, body) in inbound {
        let read = read_request(format, body.to_string().as_bytes(), |_| None).unwrap();
        let docs: Vec<&Document> = read.request.messages[0]
            .content
            .iter()
            .filter_map(|p| match p {
                Part::Document(d) => Some(d),
                _ => None,
            })
            .collect();
        assert_eq!(docs.len(), 1, "{format:?}");
        assert_eq!(
            (docs[0].media_type.as_str(), docs[0].data.as_str()),
            ("application/pdf", PDF),
            "{format:?}"
        );
        let sent = |wire| {
            let (_, b) = upstream_request(wire, &read.request, "m", false, false);
            serde_json::from_slice::<Value>(&b).unwrap()
        };
        let openai = sent(Format::OpenAi);
        assert_eq!(
            openai["messages"][0]["content"][1]["file"]["file_data"],
            format!("data:application/pdf;base64,{PDF}"),
            "{format:?}: {openai}"
        );
        let anthropic = sent(Format::Anthropic);
        assert_eq!(
            anthropic["messages"][0]["content"][1]["source"],
            json!({"type": "base64", "media_type": "application/pdf", "data": PDF}),
            "{format:?}: {anthropic}"
        );
        let gemini = sent(Format::Gemini);
        assert_eq!(
            gemini["contents"][0]["parts"][1]["inlineData"],
            json!({"mimeType": "application/pdf", "data": PDF}),
            "{format:?}: {gemini}"
        );
        let bedrock = sent(Format::Bedrock);
        let doc = &bedrock["messages"][0]["content"][1]["document"];
        assert_eq!(doc["format"], "pdf", "{format:?}: {bedrock}");
        assert_eq!(doc["source"]["bytes"], PDF);
        let name = doc["name"].as_str().unwrap();
        assert!(
            name.chars()
                .all(|c| c.is_alphanumeric() || " -()[]".contains(c)),
            "Converse's name rules: {name}"
        );
        let cohere = sent(Format::Cohere);
        assert!(
            !cohere.to_string().contains(PDF),
            "Cohere chat has no document part: {cohere}"
        );
    }
    // A text document from Anthropic goes back to Anthropic as text.
    let body = json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": [
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "hello"}}]}]});
    let read = read_request(Format::Anthropic, body.to_string().as_bytes(), |_| None).unwrap();
    let (_, b) = upstream_request(Format::Anthropic, &read.request, "m", false, false);
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(
        v["messages"][0]["content"][0]["source"],
        json!({"type": "text", "media_type": "text/plain", "data": "hello"})
    );
}
