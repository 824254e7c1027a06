//! The semantic cache through the real binary, the real embedding model and
//! the mock: a paraphrase is answered from the cache, another intent is
//! not; partitions, thresholds and per-route and per-key settings; replays
//! as streams in every surface; the index rebuilt at start; a question the
//! model cannot embed goes upstream; a missing model stops the node naming
//! its path; saved spend.
//!
//! The model is not in the repository: `scripts/test.sh` fetches it and
//! sets `TOLLGATE_EMBED_MODEL`. Without that variable these tests say why
//! they did nothing and pass.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};
use tollgate::cache::embed::Embedder;

const TOKEN: &str = "semantic-cache-admin-token-0123456789";
const ENV: &str = "TOLLGATE_EMBED_MODEL";

const QUESTION: &str = "What is the capital of France?";
const PARAPHRASE: &str = "what's the capital city of France";
const OTHER_INTENT: &str = "What is the population of France?";

fn model_dir() -> Option<PathBuf> {
    let dir = std::env::var_os(ENV).map(PathBuf::from);
    if dir.is_none() {
        eprintln!(
            "{ENV} is not set: this test did nothing. Run \
             `export {ENV}=\"$(scripts/cache/fetch-model.sh)\"` (scripts/test.sh does)."
        );
    }
    dir
}

/// The similarities of the paraphrase and of the other intent to the
/// question, and a threshold between them: the tests check the gateway's
/// decisions, not the model's quality (`tests/cache_semantic_set.rs` does).
fn similarities(dir: &Path) -> (f32, f32, f32) {
    let e = Embedder::load(dir).unwrap();
    let q = e.embed(QUESTION).unwrap();
    let sim = |t: &str| -> f32 {
        let v = e.embed(t).unwrap();
        q.iter().zip(&v).map(|(a, b)| a * b).sum()
    };
    let (para, other) = (sim(PARAPHRASE), sim(OTHER_INTENT));
    assert!(
        para > other + 0.01,
        "the model must tell these apart: paraphrase {para}, other intent {other}"
    );
    (para, other, (para + other) / 2.0)
}

fn config(mock: &Proc, dir: &Path, threshold: f32, extra: &str) -> String {
    format!(
        "[server]\nadmin_token = \"{TOKEN}\"\n\
         [client]\nenforce_auth = true\n\
         [cache]\nenabled = true\n\
         [cache.semantic]\nenabled = true\nmodel = \"{}\"\nthreshold = {threshold}\n\
         {extra}\n\
         [pricing.\"mock-1\"]\ninput = 1000000\noutput = 2000000\n\
         [pricing.\"mock-2\"]\ninput = 1000000\noutput = 2000000\n{}",
        dir.display(),
        mock_provider("mock", mock, ""),
    )
}

struct Answer {
    status: u16,
    cache: String,
    kind: String,
    similarity: Option<f32>,
    body: String,
}

async fn send(
    gw: &Gateway,
    path: &str,
    key: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> Answer {
    let mut req = reqwest::Client::new()
        .post(gw.url(path))
        .bearer_auth(key)
        .json(body);
    for (h, v) in headers {
        req = req.header(*h, *v);
    }
    let r = req.send().await.unwrap();
    let header = |name: &str| {
        r.headers()
            .get(name)
            .map_or(String::new(), |v| v.to_str().unwrap().to_string())
    };
    let (cache, kind) = (header("x-tollgate-cache"), header("x-tollgate-cache-type"));
    let similarity = r
        .headers()
        .get("x-tollgate-cache-similarity")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    Answer {
        status: r.status().as_u16(),
        cache,
        kind,
        similarity,
        body: r.text().await.unwrap(),
    }
}

fn ask(text: &str) -> Value {
    json!({"model": "mock/mock-1", "messages": [
        {"role": "system", "content": "Answer in one sentence."},
        {"role": "user", "content": text}]})
}

async fn chat(gw: &Gateway, key: &str, headers: &[(&str, &str)], body: &Value) -> Answer {
    send(gw, "/v1/chat/completions", key, headers, body).await
}

async fn cache_stats(gw: &Gateway) -> Value {
    cache_stats_with(gw, TOKEN).await
}

/// Answers are stored at the request's finish: waits until `n` are.
async fn stored(gw: &Gateway, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while cache_stats(gw).await["stores"].as_u64() < Some(n) {
        assert!(Instant::now() < deadline, "never stored {n} answers");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn new_key(gw: &Gateway, body: Value) -> String {
    create_key(gw, TOKEN, body).await
}

#[tokio::test]
async fn a_paraphrase_hits_and_another_intent_misses() {
    let Some(dir) = model_dir() else { return };
    let (para, _, threshold) = similarities(&dir);
    let mock = start_mock(&[]).await;
    let gw = Gateway::start(&config(&mock, &dir, threshold, "")).await;
    let key = new_key(&gw, json!({"name": "asker"})).await;

    let first = chat(&gw, &key, &[], &ask(QUESTION)).await;
    assert_eq!(
        (first.status, first.cache.as_str()),
        (200, "miss"),
        "{}",
        first.body
    );
    stored(&gw, 1).await;
    let hit = chat(&gw, &key, &[], &ask(PARAPHRASE)).await;
    assert_eq!(
        (hit.status, hit.cache.as_str(), hit.kind.as_str()),
        (200, "hit", "semantic"),
        "{}",
        hit.body
    );
    let shown = hit.similarity.expect("a semantic hit says how similar");
    assert!(
        (shown - para).abs() < 1e-3,
        "header {shown}, computed {para}"
    );
    assert_eq!(
        text_of(&hit.body),
        text_of(&first.body),
        "the cached answer"
    );
    assert_eq!(
        upstream_requests(&mock).await,
        1,
        "a hit never reaches the upstream"
    );

    // The same question again is an exact hit.
    let exact = chat(&gw, &key, &[], &ask(QUESTION)).await;
    assert_eq!(
        (exact.cache.as_str(), exact.kind.as_str()),
        ("hit", "exact")
    );
    assert_eq!(exact.similarity, None);

    let other = chat(&gw, &key, &[], &ask(OTHER_INTENT)).await;
    assert_eq!(
        (other.status, other.cache.as_str()),
        (200, "miss"),
        "another intent"
    );
    assert_ne!(text_of(&other.body), text_of(&first.body));
    stored(&gw, 2).await;

    // Whatever else differs keeps the paraphrase out of the question's
    // partition; these are not stored, so they never meet each other.
    let no_store = ("x-tollgate-cache-no-store", "true");
    let mut other_system = ask(PARAPHRASE);
    other_system["messages"][0]["content"] = json!("Answer at length.");
    let mut other_temperature = ask(PARAPHRASE);
    other_temperature["temperature"] = json!(0.2);
    let mut other_model = ask(PARAPHRASE);
    other_model["model"] = json!("mock/mock-2");
    let mut earlier_turn = ask(PARAPHRASE);
    earlier_turn["messages"]
        .as_array_mut()
        .unwrap()
        .insert(1, json!({"role": "user", "content": "Hello."}));
    for (what, body) in [
        ("system prompt", other_system),
        ("temperature", other_temperature),
        ("model", other_model),
        ("an earlier turn", earlier_turn),
    ] {
        let a = chat(&gw, &key, &[no_store], &body).await;
        assert_eq!(
            (a.status, a.cache.as_str()),
            (200, "miss"),
            "{what}: {}",
            a.body
        );
    }
    // Another key's questions are another partition.
    let stranger = new_key(&gw, json!({"name": "stranger"})).await;
    let a = chat(&gw, &stranger, &[no_store], &ask(PARAPHRASE)).await;
    assert_eq!(a.cache, "miss", "another owner");
    // The request may narrow it: exact only, or a stricter threshold.
    let a = chat(
        &gw,
        &key,
        &[no_store, ("x-tollgate-cache", "exact")],
        &ask(PARAPHRASE),
    )
    .await;
    assert_eq!(a.cache, "miss", "exact only");
    let a = chat(
        &gw,
        &key,
        &[no_store, ("x-tollgate-cache-threshold", "1")],
        &ask(PARAPHRASE),
    )
    .await;
    assert_eq!(a.cache, "miss", "threshold 1");
    // … or looser: a threshold below the other intent's similarity serves
    // the nearest stored question, which is the other intent itself.
    let a = chat(
        &gw,
        &key,
        &[no_store, ("x-tollgate-cache-threshold", "0.0001")],
        &ask("What is the population of France"),
    )
    .await;
    assert_eq!((a.cache.as_str(), a.kind.as_str()), ("hit", "semantic"));
    assert_eq!(text_of(&a.body), text_of(&other.body));
    for bad in ["0", "1.5", "high"] {
        let a = chat(
            &gw,
            &key,
            &[("x-tollgate-cache-threshold", bad)],
            &ask(PARAPHRASE),
        )
        .await;
        assert_eq!(a.status, 400, "{bad}: {}", a.body);
        assert!(a.body.contains("x-tollgate-cache-threshold"), "{}", a.body);
    }
    assert_eq!(upstream_requests(&mock).await, 9);

    // Money: both hits cost 0 and saved what the first answer cost.
    let page = logs_until(&gw, "?limit=100", Some(TOKEN), |p| {
        p["data"].as_array().is_some_and(|d| d.len() >= 12)
    })
    .await;
    let logs = page["data"].as_array().unwrap();
    let original = logs.last().unwrap();
    let cost = original["cost_micros"].as_u64().unwrap();
    assert!(cost > 0, "{original}");
    let semantic: Vec<&Value> = logs
        .iter()
        .filter(|l| l["cache"]["similarity"].is_number())
        .collect();
    assert_eq!(semantic.len(), 2, "{page}");
    let first_hit = semantic.last().unwrap();
    assert_eq!(first_hit["cost_micros"], 0);
    assert_eq!(first_hit["cache"]["saved_micros"], cost);
    let (s, spend) = admin_call(
        gw.url("/api/spend?group_by=key"),
        TOKEN,
        reqwest::Method::GET,
        None,
    )
    .await;
    assert_eq!(s, 200, "{spend}");
    let asker = spend["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["cache_hits"] == 3)
        .unwrap_or_else(|| panic!("the asker's row has its three hits: {spend}"));
    assert!(
        asker["saved_micros"].as_u64().unwrap() >= 2 * cost,
        "{asker}"
    );

    let stats = cache_stats(&gw).await;
    assert_eq!(stats["semantic_hits"], 2, "{stats}");
    assert_eq!(stats["questions"], 2, "{stats}");
    let metrics = metrics_text(&gw).await;
    assert!(
        metrics.contains("tollgate_cache_lookups_total{result=\"hit\",type=\"semantic\"} 2"),
        "{metrics}"
    );
}

#[tokio::test]
async fn routes_and_keys_set_their_own_semantic_cache() {
    let Some(dir) = model_dir() else { return };
    let (_, _, threshold) = similarities(&dir);
    let mock = start_mock(&[]).await;
    let routes = "[[cache.routes]]\nmodel = \"mock/mock-2\"\nsemantic = false\n\
                  [[cache.routes]]\nmodel = \"mock/mock-3*\"\nenabled = false\n";
    let gw = Gateway::start(&config(&mock, &dir, threshold, routes)).await;
    let open = new_key(&gw, json!({"name": "open"})).await;
    let exact_only = new_key(&gw, json!({"name": "exact", "cache": {"semantic": false}})).await;
    let strict = new_key(&gw, json!({"name": "strict", "cache": {"threshold": 1.0}})).await;
    let off = new_key(&gw, json!({"name": "off", "cache": {"enabled": false}})).await;
    let (s, refused) = admin_call(
        gw.url("/api/keys"),
        TOKEN,
        reqwest::Method::POST,
        Some(json!({"name": "bad", "cache": {"threshold": 2}})),
    )
    .await;
    assert_eq!(s, 400, "{refused}");
    assert!(refused.to_string().contains("cache"), "{refused}");

    let on = |model: &str, text: &str| {
        let mut b = ask(text);
        b["model"] = json!(model);
        b
    };
    let mut stores = 0;
    for k in [&open, &exact_only, &strict] {
        assert_eq!(chat(&gw, k, &[], &ask(QUESTION)).await.cache, "miss");
        stores += 1;
        stored(&gw, stores).await;
    }
    let hit = chat(&gw, &open, &[], &ask(PARAPHRASE)).await;
    assert_eq!((hit.cache.as_str(), hit.kind.as_str()), ("hit", "semantic"));
    assert_eq!(
        chat(&gw, &exact_only, &[], &ask(PARAPHRASE)).await.cache,
        "miss",
        "key: semantic off"
    );
    assert_eq!(
        chat(&gw, &strict, &[], &ask(PARAPHRASE)).await.cache,
        "miss",
        "key: threshold 1"
    );
    // The key's exact cache still works.
    assert_eq!(
        chat(&gw, &exact_only, &[], &ask(QUESTION)).await.kind,
        "exact"
    );
    let a = chat(&gw, &off, &[], &ask(QUESTION)).await;
    assert_eq!(a.cache, "bypass", "key: cache off");

    // Route mock-2: exact only; mock-3*: no cache.
    assert_eq!(
        chat(&gw, &open, &[], &on("mock/mock-2", QUESTION))
            .await
            .cache,
        "miss"
    );
    // Stored by now: the three questions, the paraphrases that missed for
    // the exact-only and the strict key, and this one.
    stores += 3;
    stored(&gw, stores).await;
    assert_eq!(
        chat(&gw, &open, &[], &on("mock/mock-2", QUESTION))
            .await
            .kind,
        "exact"
    );
    assert_eq!(
        chat(&gw, &open, &[], &on("mock/mock-2", PARAPHRASE))
            .await
            .cache,
        "miss",
        "route: semantic off"
    );
    // A request may still ask for it where the operator left it off.
    let asked = chat(
        &gw,
        &open,
        &[("x-tollgate-cache", "semantic")],
        &on("mock/mock-2", PARAPHRASE),
    )
    .await;
    assert_eq!(asked.cache, "hit", "asked for: {}", asked.body);
    for _ in 0..2 {
        assert_eq!(
            chat(&gw, &open, &[], &on("mock/mock-3-large", QUESTION))
                .await
                .cache,
            "bypass"
        );
    }
}

#[tokio::test]
async fn semantic_hits_are_replayed_as_streams_in_every_surface() {
    let Some(dir) = model_dir() else { return };
    let (_, _, threshold) = similarities(&dir);
    let mock = start_mock(&[]).await;
    let gw = Gateway::start(&config(&mock, &dir, threshold, "")).await;
    let key = new_key(&gw, json!({"name": "streams"})).await;
    // Each surface gets its own system prompt, so its own partition: the
    // same question through two surfaces can share one entry (the key
    // goldens show it), which would make the second surface's first request
    // a hit.
    // (surface, path of the stored whole answer, its body, path and body of
    // the streamed paraphrase, what carries the text in the stream)
    let anthropic = |text: &str, stream: bool| {
        json!({"model": "mock/mock-1", "max_tokens": 200, "stream": stream, "system": "Answer briefly, for Claude.",
            "messages": [{"role": "user", "content": text}]})
    };
    let gemini = |text: &str| {
        json!({"systemInstruction": {"parts": [{"text": "Answer briefly, for Gemini."}]},
            "contents": [{"role": "user", "parts": [{"text": text}]}]})
    };
    let responses = |text: &str, stream: bool| json!({"model": "mock/mock-1", "stream": stream, "instructions": "Answer briefly, for Responses.", "input": text});
    let mut openai_stream = ask(PARAPHRASE);
    openai_stream["stream"] = json!(true);
    let cases: Vec<(&str, String, Value, String, Value, &str)> = vec![
        (
            "openai",
            "/v1/chat/completions".into(),
            ask(QUESTION),
            "/v1/chat/completions".into(),
            openai_stream,
            "/choices/0/delta/content",
        ),
        (
            "anthropic",
            "/anthropic/v1/messages".into(),
            anthropic(QUESTION, false),
            "/anthropic/v1/messages".into(),
            anthropic(PARAPHRASE, true),
            "/delta/text",
        ),
        (
            "gemini",
            "/genai/v1beta/models/mock/mock-1:generateContent".into(),
            gemini(QUESTION),
            "/genai/v1beta/models/mock/mock-1:streamGenerateContent?alt=sse".into(),
            gemini(PARAPHRASE),
            "/candidates/0/content/parts/0/text",
        ),
        (
            "responses",
            "/v1/responses".into(),
            responses(QUESTION, false),
            "/v1/responses".into(),
            responses(PARAPHRASE, true),
            "/delta",
        ),
    ];
    let mut stores = 0;
    for (surface, whole_path, whole, stream_path, stream, text_at) in cases {
        let first = send(&gw, &whole_path, &key, &[], &whole).await;
        assert_eq!(
            (first.status, first.cache.as_str()),
            (200, "miss"),
            "{surface}: {}",
            first.body
        );
        stores += 1;
        stored(&gw, stores).await;
        let replay = send(&gw, &stream_path, &key, &[], &stream).await;
        assert_eq!(
            (replay.status, replay.cache.as_str(), replay.kind.as_str()),
            (200, "hit", "semantic"),
            "{surface}: {}",
            replay.body
        );
        let events: Vec<Value> = sse_data(&replay.body)
            .iter()
            .filter_map(|d| serde_json::from_str(d).ok())
            .collect();
        assert!(!events.is_empty(), "{surface}: a stream: {}", replay.body);
        let text: String = events
            .iter()
            .filter(|v| surface != "responses" || v["type"] == "response.output_text.delta")
            .filter_map(|v| v.pointer(text_at).and_then(Value::as_str))
            .collect();
        let whole_text = whole_text(surface, &first.body);
        assert_eq!(text, whole_text, "{surface}: the cached answer, streamed");
    }
    assert_eq!(upstream_requests(&mock).await, 4);
}

/// The answer's text in a whole response of `surface`.
fn whole_text(surface: &str, body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap();
    let at = match surface {
        "openai" => "/choices/0/message/content",
        "anthropic" => "/content/0/text",
        "gemini" => "/candidates/0/content/parts/0/text",
        _ => "/output/0/content/0/text",
    };
    v.pointer(at)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{surface}: no text at {at}: {body}"))
        .to_string()
}

#[tokio::test]
async fn the_index_is_rebuilt_at_start_and_unembeddable_questions_go_upstream() {
    let Some(dir) = model_dir() else { return };
    let (_, _, threshold) = similarities(&dir);
    let mock = start_mock(&[]).await;
    let cfg = config(&mock, &dir, threshold, "");
    let gw = Gateway::start(&cfg).await;
    let key = new_key(&gw, json!({"name": "restart"})).await;
    assert_eq!(chat(&gw, &key, &[], &ask(QUESTION)).await.cache, "miss");
    stored(&gw, 1).await;
    let gw = gw.restart(&cfg).await;
    // The stored questions are indexed beside the running node; the exact
    // answer is served meanwhile.
    assert_eq!(chat(&gw, &key, &[], &ask(QUESTION)).await.kind, "exact");
    let deadline = Instant::now() + Duration::from_secs(30);
    while cache_stats(&gw).await["indexing"] != false {
        assert!(
            Instant::now() < deadline,
            "the stored questions were never indexed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let hit = chat(&gw, &key, &[], &ask(PARAPHRASE)).await;
    assert_eq!(
        (hit.cache.as_str(), hit.kind.as_str()),
        ("hit", "semantic"),
        "after a restart"
    );
    assert_eq!(cache_stats(&gw).await["questions"], 1);

    // Past the embedder's 16 KiB cap: no semantic lookup, counted, and the
    // request goes upstream and is still cached exactly.
    let long = format!("{} {}", QUESTION, "and more ".repeat(2500));
    let a = chat(&gw, &key, &[], &ask(&long)).await;
    assert_eq!((a.status, a.cache.as_str()), (200, "miss"), "{}", a.body);
    stored(&gw, 1).await;
    let stats = cache_stats(&gw).await;
    assert_eq!(stats["semantic_errors"], 1, "{stats}");
    assert_eq!(chat(&gw, &key, &[], &ask(&long)).await.kind, "exact");
    assert_eq!(upstream_requests(&mock).await, 2);
}

/// With `embedding_model`, questions are embedded by an embeddings model
/// the gateway serves (here the mock's, whose vectors are near for texts
/// that share most words), through the gateway itself with the caller's
/// key: each embedding is a request of its own in the logs, priced to the
/// key, and a semantic hit costs that embedding and nothing else. A model
/// that cannot embed sends the request upstream, counted.
#[tokio::test]
async fn a_served_embeddings_model_embeds_through_the_gateway() {
    let mock = start_mock(&[]).await;
    let question = "What is the capital of France?";
    let near = "what is the capital of france, please";
    let cfg = |model: &str| {
        format!(
            "[server]\nadmin_token = \"{TOKEN}\"\n\
             [client]\nenforce_auth = true\n\
             [cache]\nenabled = true\n\
             [cache.semantic]\nenabled = true\nembedding_model = \"{model}\"\nthreshold = 0.85\n\
             [pricing.\"mock-1\"]\ninput = 1000000\noutput = 2000000\n\
             [pricing.\"mock-embed\"]\ninput = 1000000\noutput = 0\n{}",
            mock_provider("mock", &mock, ""),
        )
    };
    let gw = Gateway::start(&cfg("mock/mock-embed")).await;
    let key = new_key(&gw, json!({"name": "served"})).await;
    let first = chat(&gw, &key, &[], &ask(question)).await;
    assert_eq!(
        (first.status, first.cache.as_str()),
        (200, "miss"),
        "{}",
        first.body
    );
    stored(&gw, 1).await;
    // One embedding and one answer upstream.
    assert_eq!(upstream_requests(&mock).await, 2);
    let hit = chat(&gw, &key, &[], &ask(near)).await;
    assert_eq!(
        (hit.cache.as_str(), hit.kind.as_str()),
        ("hit", "semantic"),
        "{}",
        hit.body
    );
    let similarity = hit.similarity.unwrap();
    assert!((0.85..1.0).contains(&similarity), "{similarity}");
    assert_eq!(text_of(&hit.body), text_of(&first.body));
    // The hit asked the upstream for its embedding only.
    assert_eq!(upstream_requests(&mock).await, 3);
    let other = chat(
        &gw,
        &key,
        &[],
        &ask("How do I bake sourdough bread at home?"),
    )
    .await;
    assert_eq!(other.cache, "miss");
    assert_eq!(upstream_requests(&mock).await, 5);

    // Three embeddings requests in the logs, each priced to the key.
    let logs = logs_until(&gw, "?limit=50", Some(TOKEN), |v| {
        v["data"].as_array().is_some_and(|d| d.len() >= 6)
    })
    .await;
    let records = logs["data"].as_array().unwrap();
    let embeddings: Vec<&Value> = records
        .iter()
        .filter(|r| r["endpoint"] == "embeddings")
        .collect();
    assert_eq!(embeddings.len(), 3, "{logs}");
    for r in &embeddings {
        assert!(r["cost_micros"].as_u64().unwrap() > 0, "{r}");
        assert_eq!(r["status"], 200, "{r}");
        assert!(r["virtual_key"].is_string(), "{r}");
    }
    let hit_record = records
        .iter()
        .find(|r| r["cache"]["status"] == "hit")
        .unwrap();
    assert_eq!(hit_record["cost_micros"], 0, "{hit_record}");
    drop(gw);

    // An embeddings model the gateway cannot reach: counted, and the
    // request is answered upstream (and still cached exactly).
    let gw = Gateway::start(&cfg("nowhere/embed")).await;
    let key = new_key(&gw, json!({"name": "unreachable"})).await;
    let a = chat(&gw, &key, &[], &ask(question)).await;
    assert_eq!((a.status, a.cache.as_str()), (200, "miss"), "{}", a.body);
    stored(&gw, 1).await;
    assert_eq!(cache_stats(&gw).await["semantic_errors"], 1);
    assert_eq!(chat(&gw, &key, &[], &ask(question)).await.kind, "exact");
}

#[tokio::test]
async fn a_missing_model_stops_the_node_naming_its_path() {
    let mock = start_mock(&[]).await;
    let missing = PathBuf::from("/nonexistent/tollgate-model-dir");
    let data = tempfile::tempdir().unwrap();
    let path = data.path().join("tollgate.toml");
    std::fs::write(&path, config(&mock, &missing, 0.9, "")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .arg("serve")
        .arg("--config")
        .arg(&path)
        .env("TOLLGATE_SERVER__LISTEN", "127.0.0.1:0")
        .env("TOLLGATE_SERVER__DATA_DIR", data.path().join("data"))
        .output()
        .unwrap();
    assert!(!out.status.success(), "the node must not start");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "/nonexistent/tollgate-model-dir/tokenizers/l2_supercat_tokenizer_config.json"
        ),
        "{stderr}"
    );
}
