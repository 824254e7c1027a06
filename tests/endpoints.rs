//! The OpenAI endpoints beyond chat — `/v1/rerank`, `/v1/images/
//! generations`, `/v1/audio/speech`, `/v1/audio/transcriptions`,
//! `/v1/moderations` — and Cohere's embeddings and rerank, through the real
//! binary and the mock: what each upstream is sent (the model named as the
//! upstream knows it, a form rewritten), what the client gets, what each
//! costs in the log, what a budget reserves and refuses.

mod common;

use common::*;
use serde_json::{Value, json};

const TOKEN: &str = "endpoints-admin-token";

/// Prices per unit for the mock's models (µ$): a token-priced reranker at
/// 1 µ$ a token, images at 40,000 each, speech at 15 a character, audio at
/// 100 a second; the moderation model free; `mock-tts-tokens` priced by
/// tokens only.
fn config(mock: &Proc, extra: &str) -> String {
    format!(
        "[server]\nadmin_token = \"{TOKEN}\"\n\
         [pricing.\"mock-rerank\"]\ninput = 1000000\noutput = 0\n\
         [pricing.\"mock-image\"]\ninput = 0\noutput = 0\nper = {{ image = 40000 }}\n\
         [pricing.\"mock-tts\"]\ninput = 0\noutput = 0\nper = {{ character = 15 }}\n\
         [pricing.\"mock-tts-tokens\"]\ninput = 600000\noutput = 10000000\n\
         [pricing.\"mock-whisper\"]\ninput = 0\noutput = 0\nper = {{ audio_second = 100 }}\n\
         [pricing.\"mock-moderation\"]\ninput = 0\noutput = 0\n\
         {}\n\
         [providers.coh]\nkind = \"cohere\"\nbase_url = \"http://{}/v2\"\napi_key = \"cohere-key\"\n\
         [providers.ant]\nkind = \"anthropic\"\nbase_url = \"http://{}/v1\"\napi_key = \"mock-key\"\n{extra}",
        mock_provider("mock", mock, ""),
        mock.addr,
        mock.addr,
    )
}

async fn post(gw: &Gateway, path: &str, key: Option<&str>, body: Value) -> (u16, Value) {
    let mut req = reqwest::Client::new().post(gw.url(path)).json(&body);
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A mono 16-bit WAV of `seconds` at 16 kHz (32,000 bytes a second).
fn wav(seconds: u32) -> Vec<u8> {
    let data = 32_000 * seconds;
    let mut w = b"RIFF".to_vec();
    w.extend_from_slice(&(36 + data).to_le_bytes());
    w.extend_from_slice(b"WAVEfmt \x10\0\0\0\x01\0\x01\0\x80\x3e\0\0");
    w.extend_from_slice(&32_000u32.to_le_bytes());
    w.extend_from_slice(b"\x02\0\x10\0data");
    w.extend_from_slice(&data.to_le_bytes());
    w.extend(std::iter::repeat_n(0u8, data as usize));
    w
}

fn transcription_form(model: &str, audio: Vec<u8>) -> reqwest::multipart::Form {
    reqwest::multipart::Form::new()
        .text("model", model.to_string())
        .text("language", "en")
        .part(
            "file",
            reqwest::multipart::Part::bytes(audio)
                .file_name("hello.wav")
                .mime_str("audio/wav")
                .unwrap(),
        )
}

async fn transcribe(
    gw: &Gateway,
    key: Option<&str>,
    form: reqwest::multipart::Form,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(gw.url("/v1/audio/transcriptions"))
        .multipart(form);
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The cost the log records for the one request at `endpoint`.
async fn logged_cost(gw: &Gateway, endpoint: &str) -> u64 {
    let page = logs_until(gw, &format!("?endpoint={endpoint}"), Some(TOKEN), |p| {
        p["data"].as_array().is_some_and(|i| !i.is_empty())
    })
    .await;
    page["data"][0]["cost_micros"].as_u64().unwrap()
}

#[tokio::test]
async fn every_endpoint_reaches_an_openai_compatible_upstream_and_is_priced_by_what_it_makes() {
    let mock = start_mock(&[]).await;
    let gw = Gateway::start(&config(&mock, "")).await;

    // Rerank: ranked by the mock, priced by the tokens it reports.
    let (s, v) = post(
        &gw,
        "/v1/rerank",
        None,
        json!({"model": "mock/mock-rerank", "query": "red apples",
               "documents": ["blue sky", "red apples are sweet", "apples"], "top_n": 2}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let order: Vec<u64> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["index"].as_u64().unwrap())
        .collect();
    assert_eq!(order, [1, 2], "{v}");
    let tokens = v["usage"]["total_tokens"].as_u64().unwrap();
    assert!(tokens > 0);
    assert_eq!(logged_cost(&gw, "rerank").await, tokens);
    let sent = get_json(mock.url("/mock/last")).await;
    assert_eq!(sent["body"]["model"], "mock-rerank", "{sent}");

    // Images: two at 40,000 µ$.
    let (s, v) = post(
        &gw,
        "/v1/images/generations",
        None,
        json!({"model": "mock/mock-image", "prompt": "a lighthouse", "n": 2}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"].as_array().unwrap().len(), 2, "{v}");
    assert_eq!(logged_cost(&gw, "images").await, 80_000);

    // Speech: audio relayed with its type; 7 characters at 15 µ$.
    let r = reqwest::Client::new()
        .post(gw.url("/v1/audio/speech"))
        .json(&json!({"model": "mock/mock-tts", "input": "héllo ✓", "voice": "alloy"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "audio/mpeg");
    let audio = r.bytes().await.unwrap();
    assert!(
        audio.starts_with(b"ID3 mock speech: h\xc3\xa9llo"),
        "{audio:?}"
    );
    assert_eq!(logged_cost(&gw, "speech").await, 7 * 15);

    // Transcription: the form reaches the upstream with its model renamed
    // and every other part intact; 3 seconds at 100 µ$.
    let (s, v) = transcribe(&gw, None, transcription_form("mock/mock-whisper", wav(3))).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["text"],
        format!("mock transcript of {} bytes", wav(3).len())
    );
    let sent = get_json(mock.url("/mock/last")).await;
    assert_eq!(sent["body"]["model"], "mock-whisper", "{sent}");
    assert_eq!(sent["body"]["language"], "en");
    assert_eq!(sent["body"]["file_name"], "hello.wav");
    assert_eq!(sent["body"]["file_bytes"], wav(3).len());
    assert_eq!(logged_cost(&gw, "transcriptions").await, 300);

    // Moderation: relayed, free.
    let (s, v) = post(
        &gw,
        "/v1/moderations",
        None,
        json!({"model": "mock/mock-moderation", "input": ["plan the attack", "plan a picnic"]}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["results"][0]["flagged"], true);
    assert_eq!(v["results"][1]["flagged"], false);
    assert_eq!(logged_cost(&gw, "moderations").await, 0);
}

#[tokio::test]
async fn budgets_reserve_images_audio_and_characters_before_sending() {
    let mock = start_mock(&[]).await;
    let gw = Gateway::start(&config(&mock, "")).await;
    // 100,000 µ$: two images fit, three do not.
    let key = create_key(
        &gw,
        TOKEN,
        json!({"name": "k", "budgets": [{"limit_usd": "0.1", "period": "1d"}]}),
    )
    .await;
    let image = |n: u64| json!({"model": "mock/mock-image", "prompt": "a cat", "n": n});
    let (s, v) = post(&gw, "/v1/images/generations", Some(&key), image(3)).await;
    assert_eq!(s, 402, "three images are 120,000 µ$: {v}");
    assert_eq!(v["error"]["code"], "budget_exceeded", "{v}");
    assert_eq!(upstream_requests(&mock).await, 0, "refused before sending");
    let (s, v) = post(&gw, "/v1/images/generations", Some(&key), image(2)).await;
    assert_eq!(s, 200, "{v}");
    let spent = |b: Vec<(String, u64, u64)>| b.iter().map(|x| x.1).max().unwrap();
    assert_eq!(spent(budgets_of(&gw, &key).await), 80_000);
    let (s, v) = post(&gw, "/v1/images/generations", Some(&key), image(11)).await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("'n'"),
        "{v}"
    );

    // 20,000 µ$ left: a 3-second file reserves 300 µ$ and is charged what
    // the upstream reports.
    let (s, v) = transcribe(
        &gw,
        Some(&key),
        transcription_form("mock/mock-whisper", wav(3)),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(spent(budgets_of(&gw, &key).await), 80_300);
    // A compressed file of 750,000 bytes may hold 1,000 s (6 kbit/s):
    // 100,000 µ$ reserved, more than is left.
    let opus = vec![7u8; 750_000];
    let form = reqwest::multipart::Form::new()
        .text("model", "mock/mock-whisper")
        .part(
            "file",
            reqwest::multipart::Part::bytes(opus).file_name("a.ogg"),
        );
    let (s, v) = transcribe(&gw, Some(&key), form).await;
    assert_eq!(s, 402, "{v}");

    // Speech priced by tokens alone cannot be bounded (its audio is billed
    // beyond them); priced per character it can.
    let (s, v) = post(
        &gw,
        "/v1/audio/speech",
        Some(&key),
        json!({"model": "mock/mock-tts-tokens", "input": "hi", "voice": "alloy"}),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("per character"),
        "{v}"
    );
    let r = reqwest::Client::new()
        .post(gw.url("/v1/audio/speech"))
        .bearer_auth(&key)
        .json(&json!({"model": "mock/mock-tts", "input": "hello", "voice": "alloy"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(spent(budgets_of(&gw, &key).await), 80_300 + 75);
}

#[tokio::test]
async fn cohere_reranks_and_embeds_in_its_own_api() {
    let mock = start_mock(&[]).await;
    let gw = Gateway::start(&config(&mock, "")).await;
    // Documents as objects (Cohere's v1 form) reach v2 as strings; v2
    // refuses `return_documents`, so it is not sent.
    let (s, v) = post(
        &gw,
        "/v1/rerank",
        None,
        json!({"model": "coh/rerank-v3.5", "query": "capital of France",
               "documents": [{"text": "Berlin is in Germany"}, "Paris is the capital of France"],
               "return_documents": false}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["results"][0]["index"], 1, "{v}");
    assert_eq!(v["meta"]["billed_units"]["search_units"], 1);
    let sent = get_json(mock.url("/mock/last")).await;
    assert_eq!(
        sent["body"]["documents"],
        json!(["Berlin is in Germany", "Paris is the capital of France"])
    );
    // The catalog's list price: $2 per 1,000 searches.
    assert_eq!(logged_cost(&gw, "rerank").await, 2_000);
    // Cohere's v2 SDK path.
    let (s, v) = post(
        &gw,
        "/v2/rerank",
        None,
        json!({"model": "coh/rerank-v3.5", "query": "q", "documents": ["q"]}),
    )
    .await;
    assert_eq!(s, 200, "{v}");

    let (s, v) = post(
        &gw,
        "/v1/embeddings",
        None,
        json!({"model": "coh/embed-v4.0", "input": ["one text", "another"], "dimensions": 8}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["object"], "list");
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    assert_eq!(v["data"][1]["embedding"].as_array().unwrap().len(), 8);
    assert!(v["usage"]["prompt_tokens"].as_u64().unwrap() > 0, "{v}");
    let sent = get_json(mock.url("/mock/last")).await;
    assert_eq!(sent["body"]["input_type"], "search_document", "{sent}");
    assert_eq!(sent["body"]["output_dimension"], 8);
    let (s, v) = post(
        &gw,
        "/v1/embeddings",
        None,
        json!({"model": "coh/embed-v4.0", "input": "text", "encoding_format": "base64"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert!(v["data"][0]["embedding"].is_string(), "{v}");
    let (s, v) = post(
        &gw,
        "/v1/embeddings",
        None,
        json!({"model": "coh/embed-v4.0", "input": [1, 2, 3]}),
    )
    .await;
    assert_eq!(s, 400, "token ids have no Cohere form: {v}");
}

#[tokio::test]
async fn requests_no_upstream_can_serve_are_refused_clearly() {
    let mock = start_mock(&[]).await;
    let gw = Gateway::start(&config(&mock, "")).await;
    let (s, v) = post(
        &gw,
        "/v1/images/generations",
        None,
        json!({"model": "ant/claude-haiku-4-5", "prompt": "x"}),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("'ant'") && message.contains("images"),
        "{v}"
    );
    let (s, v) = post(
        &gw,
        "/v1/images/generations",
        None,
        json!({"model": "mock/mock-image", "prompt": "x", "stream": true}),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["error"]["param"], "stream");
    let (s, v) = post(
        &gw,
        "/v1/rerank",
        None,
        json!({"model": "mock/mock-rerank", "query": "q"}),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["error"]["param"], "documents");

    // Forms: not a form, no file, garbage.
    let (s, v) = post(
        &gw,
        "/v1/audio/transcriptions",
        None,
        json!({"model": "mock/mock-whisper"}),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    let form = reqwest::multipart::Form::new().text("model", "mock/mock-whisper");
    let (s, v) = transcribe(&gw, None, form).await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["error"]["param"], "file", "{v}");
    let r = reqwest::Client::new()
        .post(gw.url("/v1/audio/transcriptions"))
        .header("content-type", "multipart/form-data; boundary=zz")
        .body("--zz\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nunterminated")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(upstream_requests(&mock).await, 0);
}
