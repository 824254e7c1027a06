//! The semantic cache's embedded model against WordLlama itself: the real
//! `l2_supercat_256` files, embedded in Rust, compared with the vectors the
//! Python `wordllama` package computed for the same texts
//! (`tests/golden/cache/embeddings.json`, written by
//! `scripts/cache/reference_embeddings.py`).
//!
//! The model is not in the repository. `scripts/test.sh` fetches it with
//! `scripts/cache/fetch-model.sh` and sets `TOLLGATE_EMBED_MODEL`; without that
//! variable these tests say why they did nothing and pass. With it set, a
//! missing or broken model fails them.

use tollgate::cache::embed::{EmbedError, Embedder};

const ENV: &str = "TOLLGATE_EMBED_MODEL";

fn model() -> Option<Embedder> {
    let Some(dir) = std::env::var_os(ENV) else {
        eprintln!(
            "{ENV} is not set: this test did nothing. Run \
             `export {ENV}=\"$(scripts/cache/fetch-model.sh)\"` (scripts/test.sh does)."
        );
        return None;
    };
    match Embedder::load(&dir) {
        Ok(e) => Some(e),
        Err(e) => panic!("{ENV}={} does not load: {e}", dir.to_string_lossy()),
    }
}

#[derive(serde::Deserialize)]
struct Golden {
    wordllama: String,
    texts: Vec<GoldenText>,
}

#[derive(serde::Deserialize)]
struct GoldenText {
    text: String,
    ids: Vec<u32>,
    embedding: Vec<f32>,
}

fn golden() -> Golden {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/golden/cache/embeddings.json"
    );
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

#[test]
fn embeddings_match_the_wordllama_package() {
    let Some(embedder) = model() else { return };
    let golden = golden();
    assert!(golden.texts.len() >= 20);
    assert_eq!(embedder.dim(), 256);
    let mut worst = f64::INFINITY;
    for g in &golden.texts {
        assert_eq!(
            embedder.tokenize(&g.text).unwrap(),
            g.ids,
            "token ids differ from wordllama {} for {:?}",
            golden.wordllama,
            g.text
        );
        let v = embedder.embed(&g.text).unwrap();
        assert_eq!(v.len(), g.embedding.len());
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "norm {norm} for {:?}", g.text);
        let c = cosine(&v, &g.embedding);
        assert!(c >= 0.999, "cosine {c} with wordllama for {:?}", g.text);
        worst = worst.min(c);
    }
    eprintln!(
        "{} texts, lowest cosine with wordllama {}: {worst:.9}",
        golden.texts.len(),
        golden.wordllama
    );
}

#[test]
fn a_paraphrase_is_closer_than_a_different_question() {
    let Some(e) = model() else { return };
    let q = e.embed("What is the capital of France?").unwrap();
    let paraphrase = e.embed("what's the capital city of france").unwrap();
    let other = e
        .embed("How do I reverse a linked list in Python?")
        .unwrap();
    let (near, far) = (cosine(&q, &paraphrase), cosine(&q, &other));
    assert!(near > far, "paraphrase {near} vs different intent {far}");
}

#[test]
fn the_real_model_refuses_text_past_the_limits() {
    let Some(e) = model() else { return };
    let limits = e.limits();
    let long = "word ".repeat(limits.max_bytes / 5 + 1);
    assert!(matches!(
        e.embed(&long),
        Err(EmbedError::TextTooLong { max, .. }) if max == limits.max_bytes
    ));
    // Under the byte cap but one token per byte: the token cap stops it.
    let bytes = "\u{1}".repeat(limits.max_tokens + 1);
    assert!(matches!(
        e.embed(&bytes),
        Err(EmbedError::TooManyTokens { max, .. }) if max == limits.max_tokens
    ));
}

/// Whatever text arrives (any Unicode, control characters, the tokenizer's
/// special tokens, runs of spaces), the real model gives a finite unit vector
/// or one of the documented refusals, and refuses as empty only the empty
/// string (the normaliser's `▁` makes every other text at least one token).
#[test]
fn any_text_embeds_to_a_unit_vector_or_a_documented_refusal() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    let Some(e) = model() else { return };
    let piece = prop_oneof![
        any::<char>().prop_map(String::from),
        "[a-zA-Z]{1,8}",
        Just("<s>".to_string()),
        Just("</s>".to_string()),
        Just("<unk>".to_string()),
        Just("   ".to_string()),
        Just("\n\t\r\0".to_string()),
    ];
    let text = prop::collection::vec(piece, 0..300).prop_map(|p| p.concat());
    let mut runner = TestRunner::new(Config {
        cases: 256,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&text, |text| {
            match e.embed(&text) {
                Ok(v) => {
                    prop_assert_eq!(v.len(), e.dim());
                    prop_assert!(v.iter().all(|x| x.is_finite()));
                    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                    prop_assert!((norm - 1.0).abs() < 1e-5, "norm {}", norm);
                }
                Err(EmbedError::Empty) => prop_assert!(text.is_empty()),
                Err(EmbedError::TextTooLong { .. } | EmbedError::TooManyTokens { .. }) => {}
                Err(other) => prop_assert!(false, "unexpected error {other}"),
            }
            Ok(())
        })
        .unwrap();
}
