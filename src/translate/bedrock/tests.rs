//! Converse requests, responses and ConverseStream events both ways, with
//! golden files in `tests/golden/translate/` (`UPDATE_GOLDEN=1` rewrites
//! them).

use serde_json::{Value, json};

use super::*;
use crate::translate::{Format, Transcoder, anthropic, canonical, decoder, encoder, openai};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/translate");

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{DIR}/{name}")).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

fn golden_json(name: &str, v: &Value) {
    crate::providers::openai::tests::golden_file(
        &format!("{DIR}/{name}"),
        &(serde_json::to_string_pretty(v).unwrap() + "\n"),
    );
}

fn golden(name: &str, text: &str) {
    crate::providers::openai::tests::golden_file(&format!("{DIR}/{name}"), text);
}

fn run(mut t: Transcoder, input: &[u8], piece: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for p in input.chunks(piece.max(1)) {
        out.extend_from_slice(&t.push(p).unwrap());
    }
    out.extend_from_slice(&t.finish());
    out
}

#[test]
fn a_converse_request_reads_into_canonical_and_back() {
    let v: Value = serde_json::from_slice(&fixture("bedrock_request.json")).unwrap();
    let model = "us.anthropic.claude-sonnet-4-5-20250929-v1:0";
    let r = request_from_bedrock(&v, model, true).unwrap();
    assert_eq!(r.model, model);
    assert!(r.stream);
    assert_eq!(r.system, ["You are a careful assistant."]);
    assert_eq!(r.system_cache, [(0, CacheControl { ttl: None })]);
    assert_eq!(r.max_tokens, Some(1024));
    assert_eq!(r.stop, ["END"]);
    assert_eq!(
        r.thinking,
        Some(Thinking {
            budget_tokens: 2048
        })
    );
    assert_eq!(r.tool_choice, Some(ToolChoice::Tool("get_weather".into())));
    assert_eq!(r.tools[0].cache, Some(CacheControl { ttl: None }));
    let first = &r.messages[0].content;
    assert_eq!(first.len(), 3, "{first:?}");
    assert!(
        matches!(&first[1], Part::Image(Image::Base64 { media_type, .. }) if media_type == "image/jpeg")
    );
    assert!(
        matches!(&first[2], Part::Document(d) if d.media_type == "application/pdf" && d.name.as_deref() == Some("notes"))
    );
    golden_json(
        "bedrock_request.to_openai.json",
        &openai::request_to_openai(&r, model, true),
    );
    golden_json(
        "bedrock_request.to_anthropic.json",
        &anthropic::request_to_anthropic(&r, model),
    );
    let back = request_to_bedrock(&r, model);
    golden_json("bedrock_request.to_bedrock.json", &back);
    // Everything the canonical model holds comes back as it was sent.
    for field in [
        "system",
        "inferenceConfig",
        "toolConfig",
        "additionalModelRequestFields",
    ] {
        assert_eq!(back[field], v[field], "{field}");
    }
    assert_eq!(back["messages"][1], v["messages"][1]);
    assert_eq!(
        back["messages"][2]["content"][1],
        json!({"cachePoint": {"type": "default"}})
    );
}

#[test]
fn other_formats_reach_converse() {
    for name in ["openai_request", "anthropic_request", "responses_request"] {
        let v: Value = serde_json::from_slice(&fixture(&format!("{name}.json"))).unwrap();
        let r = match name {
            "openai_request" => openai::request_from_openai(&v).unwrap(),
            "anthropic_request" => anthropic::request_from_anthropic(&v).unwrap(),
            _ => {
                crate::translate::responses::request_from_responses(&v)
                    .unwrap()
                    .request
            }
        };
        let out = request_to_bedrock(&r, "us.anthropic.claude-haiku-4-5-20251001-v1:0");
        golden_json(&format!("{name}.to_bedrock.json"), &out);
        let text = out.to_string();
        assert!(
            !text.contains("\"text\":\"\""),
            "no blank text blocks: {text}"
        );
    }
    // Thinking is Claude's field: other models are not sent it.
    let r = canonical::Request {
        thinking: Some(Thinking {
            budget_tokens: 1024,
        }),
        ..canonical::Request::default()
    };
    assert!(
        request_to_bedrock(&r, "us.amazon.nova-pro-v1:0")
            .get("additionalModelRequestFields")
            .is_none()
    );
    assert!(
        request_to_bedrock(&r, "global.anthropic.claude-opus-4-5-20251101-v1:0")
            .get("additionalModelRequestFields")
            .is_some()
    );
}

#[test]
fn a_converse_response_reaches_every_format() {
    let v: Value = serde_json::from_slice(&fixture("bedrock_response.json")).unwrap();
    let r = response_from_bedrock(&v);
    assert_eq!(r.usage.prompt_tokens, 1000, "cache reads count as prompt");
    assert_eq!(r.usage.cached_tokens, 900);
    assert_eq!(r.stop, StopReason::ToolUse);
    let internal = openai::response_to_openai(&r);
    golden_json("bedrock_response.to_openai.json", &internal);
    let back = response_to_bedrock(&openai::response_from_openai(&internal));
    golden_json("bedrock_response.to_bedrock.json", &back);
    assert_eq!(back["output"], v["output"]);
    assert_eq!(back["stopReason"], v["stopReason"]);
    for k in ["inputTokens", "outputTokens", "cacheReadInputTokens"] {
        assert_eq!(back["usage"][k], v["usage"][k], "{k}");
    }
}

/// The internal stream fixture, encoded as ConverseStream, decodes back to
/// the same content however the bytes are cut.
#[test]
fn streams_encode_to_event_stream_and_decode_back() {
    let input = fixture("openai_stream.sse");
    let frames = run(
        encoder(Format::Bedrock, "m", "", Box::new(|_| {})).unwrap(),
        &input,
        input.len(),
    );
    // Every frame is a valid event-stream message of a known event.
    let mut d = eventstream::Decoder::new();
    d.push(&frames);
    let mut names = Vec::new();
    while let Some(m) = d.next_message().unwrap() {
        assert_eq!(m.header(":message-type"), Some("event"));
        names.push(m.header(":event-type").unwrap().to_string());
    }
    d.finish().unwrap();
    assert_eq!(names.first().map(String::as_str), Some("messageStart"));
    assert_eq!(&names[names.len() - 2..], ["messageStop", "metadata"]);
    let decoded = run(decoder(Format::Bedrock).unwrap(), &frames, frames.len());
    let decoded = String::from_utf8(decoded).unwrap();
    golden("openai_stream.through_bedrock.sse", &decoded);
    for piece in [1, 5, 64] {
        let cut = run(decoder(Format::Bedrock).unwrap(), &frames, piece);
        assert_eq!(
            String::from_utf8(cut).unwrap(),
            decoded,
            "pieces of {piece}"
        );
    }
    for needle in [
        r#""reasoning_content":"Two lookups.""#,
        r#""content":"Let me ""#,
        r#""arguments":"{\"city\":\"Paris\"}""#,
        r#""arguments":"{\"tz\":""#,
        r#""finish_reason":"tool_calls""#,
        r#""cached_tokens":900"#,
        r#""prompt_tokens":1000"#,
        "data: [DONE]",
    ] {
        assert!(decoded.contains(needle), "{needle} in {decoded}");
    }
}

#[test]
fn exceptions_and_broken_frames_end_the_stream_with_an_error() {
    let mut frames = Vec::new();
    event_frame("messageStart", &json!({"role": "assistant"}), &mut frames);
    event_frame(
        "contentBlockDelta",
        &json!({"contentBlockIndex": 0, "delta": {"text": "Hel"}}),
        &mut frames,
    );
    let mut with_exception = frames.clone();
    exception_frame(
        "throttlingException",
        "Too many tokens, slow down",
        &mut with_exception,
    );
    let out =
        String::from_utf8(run(decoder(Format::Bedrock).unwrap(), &with_exception, 7)).unwrap();
    assert!(out.contains(r#""content":"Hel""#), "{out}");
    assert!(
        out.contains("throttlingException: Too many tokens"),
        "{out}"
    );
    assert!(!out.contains("[DONE]"), "{out}");

    // A frame whose CRC does not match: the stream cannot be read on.
    let mut bad = frames.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    let mut t = decoder(Format::Bedrock).unwrap();
    assert!(t.push(&bad).is_err());
    // A stream that stops before messageStop is incomplete: no [DONE].
    let out = String::from_utf8(run(decoder(Format::Bedrock).unwrap(), &frames, 3)).unwrap();
    assert!(!out.contains("[DONE]"), "{out}");
}

#[test]
fn an_encoded_stream_cut_short_ends_with_an_exception() {
    let mut t = encoder(Format::Bedrock, "m", "", Box::new(|_| {})).unwrap();
    let mut out = t
        .push(b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n")
        .unwrap()
        .to_vec();
    out.extend_from_slice(&t.finish());
    let mut d = eventstream::Decoder::new();
    d.push(&out);
    let mut last = None;
    while let Some(m) = d.next_message().unwrap() {
        last = Some(m);
    }
    let m = last.unwrap();
    assert_eq!(m.header(":message-type"), Some("exception"));
    assert_eq!(
        m.header(":exception-type"),
        Some("modelStreamErrorException")
    );
}

#[test]
fn errors_name_the_exception_the_sdks_raise() {
    assert_eq!(
        error_body(429, "slow down")["__type"],
        "ThrottlingException"
    );
    assert_eq!(error_body(400, "bad")["__type"], "ValidationException");
    assert_eq!(error_body(404, "no")["message"], "no");
}
