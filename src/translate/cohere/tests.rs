//! Cohere v2 bodies, answers and streams, with golden files in
//! `tests/golden/translate/` (`UPDATE_GOLDEN=1` rewrites them).

use serde_json::Value;

use super::*;
use crate::translate::{Format, anthropic, decoder};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/translate");

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{DIR}/{name}")).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

fn golden(name: &str, text: &str) {
    crate::providers::openai::tests::golden_file(&format!("{DIR}/{name}"), text);
}

#[test]
fn requests_reach_cohere_in_its_own_names() {
    for name in ["openai_request", "anthropic_request"] {
        let v: Value = serde_json::from_slice(&fixture(&format!("{name}.json"))).unwrap();
        let r = match name {
            "openai_request" => openai::request_from_openai(&v).unwrap(),
            _ => anthropic::request_from_anthropic(&v).unwrap(),
        };
        let out = request_to_cohere(&r, "command-a-03-2025");
        golden(
            &format!("{name}.to_cohere.json"),
            &(serde_json::to_string_pretty(&out).unwrap() + "\n"),
        );
        for gone in [
            "top_p",
            "stop",
            "reasoning_effort",
            "parallel_tool_calls",
            "stream_options",
            "fallbacks",
        ] {
            assert!(out.get(gone).is_none(), "{name}: {gone} in {out}");
        }
        if let Some(c) = out.get("tool_choice") {
            assert!(c == "REQUIRED" || c == "NONE", "{name}: {c}");
        }
        for m in out["messages"].as_array().unwrap() {
            assert!(!m.get("content").is_some_and(Value::is_null), "{m}");
        }
    }
}

#[test]
fn an_answer_reads_as_billed() {
    let v: Value = serde_json::from_slice(&fixture("cohere_response.json")).unwrap();
    let r = response_from_cohere(&v);
    assert_eq!(r.stop, StopReason::ToolUse);
    assert_eq!(
        r.usage.prompt_tokens, 100,
        "billed units, not counted tokens"
    );
    assert_eq!(r.usage.completion_tokens, 40);
    assert_eq!(r.content.len(), 3, "{:?}", r.content);
    let internal = openai::response_to_openai(&r);
    golden(
        "cohere_response.to_openai.json",
        &(serde_json::to_string_pretty(&internal).unwrap() + "\n"),
    );
    let back = response_from_cohere(&response_to_cohere(&r));
    assert_eq!(back.content, r.content);
    assert_eq!(back.stop, r.stop);
}

#[test]
fn a_stream_decodes_to_chunks_however_it_is_cut() {
    let input = fixture("cohere_stream.sse");
    let run = |piece: usize| {
        let mut t = decoder(Format::Cohere).unwrap();
        let mut out = Vec::new();
        for p in input.chunks(piece) {
            out.extend_from_slice(&t.push(p).unwrap());
        }
        out.extend_from_slice(&t.finish());
        String::from_utf8(out).unwrap()
    };
    let chunks = run(input.len());
    golden("cohere_stream.to_openai.sse", &chunks);
    for piece in [1, 7, 64] {
        assert_eq!(run(piece), chunks, "pieces of {piece}");
    }
    for needle in [
        r#""reasoning_content":"Two lookups.""#,
        r#""content":"Let me ""#,
        r#""arguments":"{\"city\":""#,
        r#""finish_reason":"tool_calls""#,
        r#""prompt_tokens":100"#,
        "data: [DONE]",
    ] {
        assert!(chunks.contains(needle), "{needle} in {chunks}");
    }
    // Cut before message-end: no [DONE], so the client's encoder fails it.
    let cut = String::from_utf8_lossy(&input[..input.len() / 2]).to_string();
    let mut t = decoder(Format::Cohere).unwrap();
    let mut out = t.push(cut.as_bytes()).unwrap().to_vec();
    out.extend_from_slice(&t.finish());
    assert!(!String::from_utf8(out).unwrap().contains("[DONE]"));
}
