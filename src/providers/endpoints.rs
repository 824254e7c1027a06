//! The OpenAI endpoints priced by what they make rather than by tokens
//! alone — rerank, image generation, speech, transcription, moderation —
//! and embeddings and rerank in Cohere's own API: each request's bound, the
//! usage read from each answer, and the Cohere bodies.
//!
//! Pure: no I/O.

use base64::Engine as _;
use bytes::Bytes;
use serde_json::{Map, Value, json};

use super::bound::{Bound, Unpriceable};
use super::openai::{Endpoint, RawObject, Units, Usage};

/// Documents one Cohere search unit covers.
pub const DOCUMENTS_PER_SEARCH_UNIT: u64 = 100;

/// The most images one request may ask for (OpenAI's limit).
pub const MAX_IMAGES: u64 = 10;

fn field(obj: &RawObject<'_>, name: &str) -> Option<Value> {
    obj.get(name)
        .and_then(|raw| serde_json::from_str::<Value>(raw.get()).ok())
}

fn unpriceable(field: &str, why: &'static str) -> Unpriceable {
    Unpriceable {
        field: field.into(),
        why,
    }
}

/// Bytes of every string in `v`, plus a little per item: at least its tokens.
fn text_bytes(v: &Value) -> u64 {
    match v {
        Value::String(s) => s.len() as u64,
        Value::Array(a) => a.iter().map(|x| text_bytes(x) + 4).sum(),
        Value::Object(o) => o.iter().map(|(k, x)| k.len() as u64 + text_bytes(x)).sum(),
        _ => 4,
    }
}

/// The most a request to `endpoint` (one of those this module prices) is
/// billed for. `audio_seconds` bounds a transcription's file.
pub fn bound(
    endpoint: Endpoint,
    obj: &RawObject<'_>,
    audio_seconds: u64,
) -> Result<Bound, Unpriceable> {
    let mut b = Bound::default();
    match endpoint {
        Endpoint::Rerank => {
            let query = field(obj, "query").map_or(0, |q| text_bytes(&q));
            let Some(Value::Array(docs)) = field(obj, "documents") else {
                return Err(unpriceable("documents", "it must be an array"));
            };
            let n = docs.len() as u64;
            // A rerank is a query over the documents: token-priced rerankers
            // read the query once with each document.
            b.prompt_tokens = docs
                .iter()
                .map(|d| query + text_bytes(d) + 8)
                .fold(0, u64::saturating_add);
            b.units.search_units = n.div_ceil(DOCUMENTS_PER_SEARCH_UNIT).max(1);
        }
        Endpoint::ImageGenerations => {
            let n = match field(obj, "n") {
                None | Some(Value::Null) => 1,
                Some(v) => match v.as_u64() {
                    Some(n) if (1..=MAX_IMAGES).contains(&n) => n,
                    _ => return Err(unpriceable("n", "it must be an integer from 1 to 10")),
                },
            };
            b.prompt_tokens = field(obj, "prompt").map_or(0, |p| text_bytes(&p) + 8);
            b.units.images = n;
        }
        Endpoint::Speech => {
            b.units.characters = speech_characters(obj);
        }
        Endpoint::Transcriptions => {
            b.prompt_tokens = field(obj, "prompt").map_or(0, |p| text_bytes(&p) + 8);
            b.units.audio_seconds = audio_seconds.max(1);
        }
        Endpoint::Moderations => {
            b.prompt_tokens = field(obj, "input").map_or(0, |p| text_bytes(&p) + 8);
        }
        Endpoint::ChatCompletions | Endpoint::Completions | Endpoint::Embeddings => {
            unreachable!("token endpoints are bounded by providers::bound")
        }
    }
    Ok(b)
}

/// The size and quality an image request names, which set its price.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageSpec {
    quality: Option<String>,
    size: Option<String>,
}

impl ImageSpec {
    /// What `obj` asks for; `auto` (the provider's choice) names nothing.
    pub fn of(obj: &RawObject<'_>) -> ImageSpec {
        // Only what a catalog id can spell: a quality of letters, a size of
        // digits and `x`.
        let named = |f: &str, ok: fn(char) -> bool| match field(obj, f) {
            Some(Value::String(s)) if s != "auto" && s.len() <= 32 && s.chars().all(ok) => Some(s),
            _ => None,
        };
        ImageSpec {
            quality: named("quality", |c| c.is_ascii_lowercase()),
            // `1024x1024` as the catalog writes it, `1024-x-1024`.
            size: named("size", |c| c.is_ascii_digit() || c == 'x').map(|s| s.replace('x', "-x-")),
        }
    }

    /// The ids `model` is priced by, most specific first: `quality/size/
    /// model`, `size/model`, then `model` itself (whose per-image rate is
    /// the dearest of its sizes).
    pub fn price_ids(&self, model: &str) -> Vec<String> {
        let mut ids = Vec::with_capacity(3);
        if let Some(size) = &self.size {
            if let Some(q) = &self.quality {
                ids.push(format!("{q}/{size}/{model}"));
            }
            ids.push(format!("{size}/{model}"));
        }
        ids.push(model.to_string());
        ids
    }
}

/// Characters of a speech request's `input` (what text-to-speech bills).
pub fn speech_characters(obj: &RawObject<'_>) -> u64 {
    match field(obj, "input") {
        Some(Value::String(s)) => s.chars().count() as u64,
        _ => 0,
    }
}

/// What an answer of `endpoint` (in the OpenAI shape, or Cohere's rerank)
/// says was billed: tokens for chat, completions and embeddings (their
/// `usage`), and for the others what they make. `characters` are the request's, for speech (whose
/// answer is audio).
pub fn usage(endpoint: Endpoint, body: &[u8], characters: u64) -> Usage {
    if matches!(
        endpoint,
        Endpoint::ChatCompletions | Endpoint::Completions | Endpoint::Embeddings
    ) {
        return super::openai::usage_of(body).unwrap_or_default();
    }
    if endpoint == Endpoint::Speech {
        return Usage {
            units: Units {
                characters,
                ..Units::default()
            },
            ..Usage::default()
        };
    }
    let Ok(Value::Object(v)) = serde_json::from_slice::<Value>(body) else {
        return Usage::default();
    };
    let num = |o: Option<&Value>, k: &str| o.and_then(|o| o.get(k)).and_then(Value::as_u64);
    let usage = v.get("usage");
    let mut u = Usage::default();
    match endpoint {
        Endpoint::Rerank => {
            let billed = v.get("meta").and_then(|m| m.get("billed_units"));
            u.units.search_units = num(billed, "search_units").unwrap_or(0);
            u.prompt_tokens = num(billed, "input_tokens")
                .or_else(|| num(usage, "prompt_tokens"))
                .or_else(|| num(usage, "total_tokens"))
                .unwrap_or(0);
        }
        Endpoint::ImageGenerations => {
            u.units.images = v
                .get("data")
                .and_then(Value::as_array)
                .map_or(0, |d| d.len() as u64);
            // Token-billed image models report their text prompt's tokens.
            let details = usage.and_then(|x| x.get("input_tokens_details"));
            u.prompt_tokens = num(details, "text_tokens")
                .or_else(|| num(usage, "input_tokens"))
                .unwrap_or(0);
        }
        Endpoint::Transcriptions => {
            let seconds = usage
                .filter(|x| x.get("type").and_then(Value::as_str) == Some("duration"))
                .and_then(|x| x.get("seconds"))
                .or_else(|| v.get("duration"))
                .and_then(Value::as_f64);
            u.units.audio_seconds = seconds.map_or(0, |s| s.max(0.0).ceil() as u64);
            u.prompt_tokens = num(usage, "input_tokens").unwrap_or(0);
            u.completion_tokens = num(usage, "output_tokens").unwrap_or(0);
        }
        _ => {
            u.prompt_tokens = num(usage, "prompt_tokens")
                .or_else(|| num(usage, "input_tokens"))
                .unwrap_or(0);
        }
    }
    // Upstream numbers are any u64.
    u.total_tokens = u.prompt_tokens.saturating_add(u.completion_tokens);
    u
}

/// An OpenAI-format rerank body as Cohere's v2 Rerank takes it: documents as
/// strings (an object's `text`, or the object as JSON), and the v1 fields v2
/// dropped (`return_documents`, `rank_fields`, `max_chunks_per_doc`) left
/// out.
pub fn cohere_rerank_body(obj: &RawObject<'_>, model: &str) -> Bytes {
    let mut out = Map::new();
    for (k, raw) in &obj.fields {
        let Ok(v) = serde_json::from_str::<Value>(raw.get()) else {
            continue;
        };
        match &**k {
            "model" => {}
            "return_documents" | "rank_fields" | "max_chunks_per_doc" | "fallbacks" => {}
            "documents" => {
                let docs = match v {
                    Value::Array(a) => a
                        .into_iter()
                        .map(|d| match d {
                            Value::String(s) => Value::String(s),
                            Value::Object(mut o) => match o.remove("text") {
                                Some(Value::String(s)) => Value::String(s),
                                _ => Value::String(Value::Object(o).to_string()),
                            },
                            other => Value::String(other.to_string()),
                        })
                        .collect(),
                    other => other,
                };
                out.insert("documents".into(), docs);
            }
            _ => {
                out.insert(k.to_string(), v);
            }
        }
    }
    out.insert("model".into(), Value::String(model.into()));
    Bytes::from(Value::Object(out).to_string())
}

/// An OpenAI embeddings body as Cohere's v2 Embed takes it: `input` as
/// `texts`, `dimensions` as `output_dimension`, float embeddings, and
/// `input_type` as the client gave it (Cohere's extension) or
/// `search_document`. Token-id inputs have no Cohere form.
pub fn cohere_embed_body(obj: &RawObject<'_>, model: &str) -> Result<Bytes, String> {
    let texts = match field(obj, "input") {
        Some(Value::String(s)) => vec![Value::String(s)],
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => a,
        _ => {
            return Err(
                "Cohere embeds text only: 'input' must be a string or an array of strings".into(),
            );
        }
    };
    let mut out = json!({
        "model": model,
        "texts": texts,
        "input_type": field(obj, "input_type").unwrap_or(json!("search_document")),
        "embedding_types": ["float"],
    });
    if let Some(d) = field(obj, "dimensions").filter(|d| !d.is_null()) {
        out["output_dimension"] = d;
    }
    if let Some(t) = field(obj, "truncate").filter(|t| !t.is_null()) {
        out["truncate"] = t;
    }
    Ok(Bytes::from(out.to_string()))
}

/// A Cohere v2 Embed answer as OpenAI's embeddings list, reporting `model`;
/// `base64` when the client asked for `encoding_format: "base64"`.
pub fn embeddings_from_cohere(body: &[u8], model: &str, base64: bool) -> Option<Bytes> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let vectors = v.get("embeddings")?.get("float")?.as_array()?;
    let data: Vec<Value> = vectors
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let embedding = if base64 {
                let bytes: Vec<u8> = e
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_f64)
                    .flat_map(|f| (f as f32).to_le_bytes())
                    .collect();
                json!(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                e.clone()
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    let tokens = v
        .get("meta")
        .and_then(|m| m.get("billed_units"))
        .and_then(|b| b.get("input_tokens"))
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let out = json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    });
    Some(Bytes::from(out.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(s: &str) -> RawObject<'_> {
        RawObject::parse(s.as_bytes()).unwrap()
    }

    #[test]
    fn rerank_is_bounded_by_search_units_and_query_document_pairs() {
        let docs: Vec<String> = (0..101).map(|i| format!("doc {i}")).collect();
        let body = json!({"model": "r", "query": "abc", "documents": docs}).to_string();
        let b = bound(Endpoint::Rerank, &obj(&body), 0).unwrap();
        assert_eq!(b.units.search_units, 2, "101 documents are two units");
        let pair_bytes: u64 = docs.iter().map(|d| 3 + d.len() as u64 + 8).sum();
        assert_eq!(b.prompt_tokens, pair_bytes);
        let none = bound(Endpoint::Rerank, &obj(r#"{"query":"q","documents":[]}"#), 0).unwrap();
        assert_eq!(none.units.search_units, 1, "a query is one unit at least");
        assert!(
            bound(
                Endpoint::Rerank,
                &obj(r#"{"query":"q","documents":"x"}"#),
                0
            )
            .is_err()
        );
    }

    #[test]
    fn images_are_bounded_by_their_count() {
        let b = bound(
            Endpoint::ImageGenerations,
            &obj(r#"{"prompt":"a cat","n":3}"#),
            0,
        )
        .unwrap();
        assert_eq!((b.units.images, b.prompt_tokens), (3, 5 + 8));
        let one = bound(Endpoint::ImageGenerations, &obj(r#"{"prompt":"x"}"#), 0).unwrap();
        assert_eq!(one.units.images, 1);
        for n in ["0", "11", "2.5", "\"3\""] {
            let body = format!(r#"{{"prompt":"x","n":{n}}}"#);
            assert!(
                bound(Endpoint::ImageGenerations, &obj(&body), 0).is_err(),
                "{n}"
            );
        }
    }

    #[test]
    fn images_are_priced_by_size_and_quality_when_named() {
        let spec = ImageSpec::of(&obj(r#"{"size":"1024x1536","quality":"high"}"#));
        assert_eq!(
            spec.price_ids("gpt-image-1"),
            [
                "high/1024-x-1536/gpt-image-1",
                "1024-x-1536/gpt-image-1",
                "gpt-image-1"
            ]
        );
        let auto = ImageSpec::of(&obj(r#"{"size":"auto","quality":"high"}"#));
        assert_eq!(auto.price_ids("m"), ["m"]);
    }

    #[test]
    fn speech_counts_characters_not_bytes() {
        let o = obj(r#"{"input":"héllo ✓"}"#);
        assert_eq!(speech_characters(&o), 7);
        assert_eq!(bound(Endpoint::Speech, &o, 0).unwrap().units.characters, 7);
        assert_eq!(
            usage(Endpoint::Speech, b"\xff\xfbaudio", 7)
                .units
                .characters,
            7
        );
    }

    #[test]
    fn answers_report_what_was_billed() {
        let cohere = br#"{"results":[],"meta":{"billed_units":{"search_units":2}}}"#;
        assert_eq!(usage(Endpoint::Rerank, cohere, 0).units.search_units, 2);
        let jina = br#"{"results":[],"usage":{"total_tokens":42}}"#;
        assert_eq!(usage(Endpoint::Rerank, jina, 0).prompt_tokens, 42);
        let images = br#"{"data":[{"url":"a"},{"url":"b"}],"usage":{"input_tokens":9,"input_tokens_details":{"text_tokens":7}}}"#;
        let u = usage(Endpoint::ImageGenerations, images, 0);
        assert_eq!((u.units.images, u.prompt_tokens), (2, 7));
        let whisper = br#"{"text":"hi","usage":{"type":"duration","seconds":2.2}}"#;
        assert_eq!(
            usage(Endpoint::Transcriptions, whisper, 0)
                .units
                .audio_seconds,
            3
        );
        let verbose = br#"{"text":"hi","duration":4.0}"#;
        assert_eq!(
            usage(Endpoint::Transcriptions, verbose, 0)
                .units
                .audio_seconds,
            4
        );
        let tokens =
            br#"{"text":"hi","usage":{"type":"tokens","input_tokens":50,"output_tokens":5}}"#;
        let u = usage(Endpoint::Transcriptions, tokens, 0);
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.units.audio_seconds),
            (50, 5, 0)
        );
        assert_eq!(
            usage(Endpoint::Transcriptions, b"plain text", 0),
            Usage::default()
        );
    }

    #[test]
    fn cohere_bodies_are_written_and_read() {
        let o = obj(
            r#"{"model":"x","query":"q","documents":["a",{"text":"b"},{"title":"t"}],"top_n":2,"return_documents":true}"#,
        );
        let v: Value = serde_json::from_slice(&cohere_rerank_body(&o, "rerank-v3.5")).unwrap();
        assert_eq!(v["model"], "rerank-v3.5");
        assert_eq!(v["documents"], json!(["a", "b", "{\"title\":\"t\"}"]));
        assert_eq!(v["top_n"], 2);
        assert!(v.get("return_documents").is_none());
        let e = obj(r#"{"model":"x","input":["a","b"],"dimensions":256}"#);
        let v: Value =
            serde_json::from_slice(&cohere_embed_body(&e, "embed-v4.0").unwrap()).unwrap();
        assert_eq!(v["texts"], json!(["a", "b"]));
        assert_eq!(v["input_type"], "search_document");
        assert_eq!(v["output_dimension"], 256);
        assert!(cohere_embed_body(&obj(r#"{"input":[1,2]}"#), "m").is_err());
        let answer = br#"{"embeddings":{"float":[[0.5,1.0],[0.25,0.0]]},"meta":{"billed_units":{"input_tokens":3}}}"#;
        let v: Value =
            serde_json::from_slice(&embeddings_from_cohere(answer, "m", false).unwrap()).unwrap();
        assert_eq!(v["data"][1]["embedding"], json!([0.25, 0.0]));
        assert_eq!(v["usage"]["prompt_tokens"], 3);
        let b: Value =
            serde_json::from_slice(&embeddings_from_cohere(answer, "m", true).unwrap()).unwrap();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b["data"][0]["embedding"].as_str().unwrap())
            .unwrap();
        assert_eq!(bytes, [0.5f32.to_le_bytes(), 1.0f32.to_le_bytes()].concat());
        assert!(embeddings_from_cohere(b"{}", "m", false).is_none());
    }
}
