//! The semantic cache's embedded embedding model: WordLlama `l2_supercat_256`
//! (a static table of 256-dimensional token embeddings over the Llama 2
//! vocabulary, and that vocabulary's tokenizer), loaded from local files and
//! run inside the node. Text in, unit vector out.
//!
//! It must not reach the network, know about requests or tenants, or keep any
//! text it was given: the semantic cache decides what to embed and what the
//! vector means. `docs/cache.md` ("Embeddings") says where the files come from.
//!
//! The computation is WordLlama's own (`WordLlamaInference.embed` in the
//! `wordllama` package, `norm=True`, no `trunc_dim`): tokenize without special
//! tokens (a literal `<s>` in the text still matches the added token, as in the
//! Python tokenizer), look each id up in the table (stored as f16, widened to
//! f32), average over the tokens, and divide by the L2 norm. A static model has
//! no context window, so the only limits are ours ([`Limits`]).

use std::fmt;
use std::path::{Path, PathBuf};

use half::f16;
use half::slice::HalfFloatSliceExt;
use safetensors::{Dtype, SafeTensors};
use tokenizers::Tokenizer;

/// The weights file inside a model directory. The directory mirrors
/// WordLlama's own cache layout, so `WordLlama.load(cache_dir=dir)` reads the
/// very files this module reads (what the parity golden file relies on).
pub const WEIGHTS_FILE: &str = "weights/l2_supercat_256.safetensors";
/// The tokenizer (a Hugging Face `tokenizer.json`) inside a model directory.
pub const TOKENIZER_FILE: &str = "tokenizers/l2_supercat_tokenizer_config.json";
/// The tensor holding the embedding table, `[vocab, dim]`.
const TENSOR_KEY: &str = "embedding.weight";

/// Bounds on one input, so that a huge prompt costs a bounded amount of CPU
/// and memory. Inputs past either bound are refused, never truncated: two long
/// prompts that share a prefix must not look alike because their tails were
/// cut off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest text accepted, in UTF-8 bytes; checked before tokenizing.
    pub max_bytes: usize,
    /// Most tokens accepted after tokenizing.
    pub max_tokens: usize,
}

impl Limits {
    /// 16 KiB of text: about 2,500 English words, far past what a semantic
    /// cache entry is worth matching on, and tokenized in a few milliseconds.
    pub const DEFAULT_MAX_BYTES: usize = 16 * 1024;
    /// 4,096 tokens: English runs about 4.5 bytes per token, so ordinary text
    /// under the byte cap stays under this one; text that falls back to one
    /// token per byte (binary, unusual scripts) stops here.
    pub const DEFAULT_MAX_TOKENS: usize = 4096;
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: Self::DEFAULT_MAX_BYTES,
            max_tokens: Self::DEFAULT_MAX_TOKENS,
        }
    }
}

/// Why a model did not load, or a text was not embedded. Load errors name the
/// file; embed errors say which bound was passed.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("cannot read embedding model file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("embedding weights {path} are not a usable safetensors file: {reason}")]
    Weights { path: PathBuf, reason: String },
    #[error("embedding tokenizer {path} is not a usable tokenizer.json: {reason}")]
    Tokenizer { path: PathBuf, reason: String },
    #[error("text is {bytes} bytes, over the embedding limit of {max} bytes")]
    TextTooLong { bytes: usize, max: usize },
    #[error("text is {tokens} tokens, over the embedding limit of {max} tokens")]
    TooManyTokens { tokens: usize, max: usize },
    #[error("text has no tokens to embed")]
    Empty,
    #[error("tokenizing failed: {0}")]
    Tokenize(String),
}

/// A loaded model. Immutable after load, so one instance is shared by every
/// request (`Send + Sync`; embedding takes `&self`).
pub struct Embedder {
    tokenizer: Tokenizer,
    /// Row-major `[vocab, dim]`, kept in the file's f16 (16 MB instead of
    /// 32) and widened row by row when summed; widening is exact, so the sum
    /// is the f32 sum WordLlama computes after its own `astype(float32)`.
    table: Vec<f16>,
    vocab: usize,
    dim: usize,
    limits: Limits,
    fingerprint: u64,
}

impl fmt::Debug for Embedder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Embedder")
            .field("vocab", &self.vocab)
            .field("dim", &self.dim)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Embedder {
    /// Loads the model from a directory holding [`WEIGHTS_FILE`] and
    /// [`TOKENIZER_FILE`] (what `scripts/cache/fetch-model.sh` writes), with
    /// the default [`Limits`].
    pub fn load(dir: impl AsRef<Path>) -> Result<Embedder, EmbedError> {
        let dir = dir.as_ref();
        Self::from_files(dir.join(WEIGHTS_FILE), dir.join(TOKENIZER_FILE))
    }

    /// Loads the model from its two files, with the default [`Limits`].
    pub fn from_files(
        weights: impl AsRef<Path>,
        tokenizer: impl AsRef<Path>,
    ) -> Result<Embedder, EmbedError> {
        let tokenizer = load_tokenizer(tokenizer.as_ref())?;
        let (table, vocab, dim) = load_table(weights.as_ref())?;
        let tokenizer_vocab = tokenizer.get_vocab_size(true);
        if tokenizer_vocab > vocab {
            // WordLlama clamps out-of-range ids to the last row; a tokenizer
            // larger than the table means the two files do not belong together.
            return Err(EmbedError::Weights {
                path: weights.as_ref().to_path_buf(),
                reason: format!(
                    "{vocab} rows but the tokenizer has {tokenizer_vocab} tokens: \
                     the weights and tokenizer are not from the same model"
                ),
            });
        }
        let fingerprint = fingerprint(&table, vocab, dim);
        Ok(Embedder {
            tokenizer,
            table,
            vocab,
            dim,
            limits: Limits::default(),
            fingerprint,
        })
    }

    /// Replaces the input bounds.
    pub fn with_limits(mut self, limits: Limits) -> Embedder {
        self.limits = limits;
        self
    }

    /// The length of every vector [`Embedder::embed`] returns.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Tells this model's vectors from another's: the first 8 bytes of a
    /// SHA-256 over the table's shape and every 97th value. Stored with
    /// each cached question, so that after a model change old vectors are
    /// never compared with new ones.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// Rows in the embedding table.
    pub fn vocab(&self) -> usize {
        self.vocab
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The token ids a text embeds as (no special tokens added), within the
    /// bounds.
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>, EmbedError> {
        if text.len() > self.limits.max_bytes {
            return Err(EmbedError::TextTooLong {
                bytes: text.len(),
                max: self.limits.max_bytes,
            });
        }
        let encoding = self
            .tokenizer
            .encode_fast(text, false)
            .map_err(|e| EmbedError::Tokenize(e.to_string()))?;
        let ids = encoding.get_ids();
        if ids.len() > self.limits.max_tokens {
            return Err(EmbedError::TooManyTokens {
                tokens: ids.len(),
                max: self.limits.max_tokens,
            });
        }
        Ok(ids.to_vec())
    }

    /// The unit-length embedding of a text, of length [`Embedder::dim`].
    pub fn embed(&self, text: &str) -> Result<Vec<f32>, EmbedError> {
        let ids = self.tokenize(text)?;
        if ids.is_empty() {
            return Err(EmbedError::Empty);
        }
        let mut sum = vec![0f32; self.dim];
        let mut row_f32 = vec![0f32; self.dim];
        for &id in &ids {
            // Ids are below the tokenizer's vocabulary size, checked against
            // the table's rows at load; clamp as WordLlama does regardless.
            let row = (id as usize).min(self.vocab - 1);
            let start = row * self.dim;
            // Slice conversion uses F16C where the CPU has it.
            self.table[start..start + self.dim].convert_to_f32_slice(&mut row_f32);
            for (s, w) in sum.iter_mut().zip(&row_f32) {
                *s += w;
            }
        }
        // Mean then normalise, as WordLlama does; the mean's scale cancels in
        // the normalisation but keeps the f32 rounding the same as theirs.
        let count = ids.len() as f32;
        for s in &mut sum {
            *s /= count;
        }
        let norm = sum.iter().map(|x| x * x).sum::<f32>().sqrt();
        if !norm.is_normal() {
            // Only a text whose token vectors cancel exactly: nothing to
            // compare it by.
            return Err(EmbedError::Empty);
        }
        for s in &mut sum {
            *s /= norm;
        }
        Ok(sum)
    }
}

fn fingerprint(table: &[f16], vocab: usize, dim: usize) -> u64 {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update((vocab as u64).to_be_bytes());
    h.update((dim as u64).to_be_bytes());
    for v in table.iter().step_by(97) {
        h.update(v.to_bits().to_be_bytes());
    }
    let d = h.finalize();
    u64::from_be_bytes(d[..8].try_into().expect("8 bytes"))
}

fn load_tokenizer(path: &Path) -> Result<Tokenizer, EmbedError> {
    let bytes = std::fs::read(path).map_err(|source| EmbedError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut tokenizer = Tokenizer::from_bytes(&bytes).map_err(|e| EmbedError::Tokenizer {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    // The file carries no truncation or padding, and WordLlama turns both off
    // for inference; make sure, since either would change the ids.
    tokenizer
        .with_truncation(None)
        .map_err(|e| EmbedError::Tokenizer {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    tokenizer.with_padding(None);
    // The BPE model caches the split of every short input it has seen; with no
    // pre-tokenizer each cached "word" is a whole prompt. Keep no copies of
    // prompts in memory and keep the model's footprint fixed.
    let mut model = tokenizer.get_model().clone();
    model.resize_cache(0);
    tokenizer.with_model(model);
    Ok(tokenizer)
}

fn load_table(path: &Path) -> Result<(Vec<f16>, usize, usize), EmbedError> {
    let bytes = std::fs::read(path).map_err(|source| EmbedError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let bad = |reason: String| EmbedError::Weights {
        path: path.to_path_buf(),
        reason,
    };
    let tensors = SafeTensors::deserialize(&bytes).map_err(|e| bad(e.to_string()))?;
    let view = tensors
        .tensor(TENSOR_KEY)
        .map_err(|e| bad(format!("no tensor {TENSOR_KEY:?}: {e}")))?;
    let &[vocab, dim] = view.shape() else {
        return Err(bad(format!(
            "{TENSOR_KEY:?} has shape {:?}, not [vocab, dim]",
            view.shape()
        )));
    };
    if vocab == 0 || dim == 0 {
        return Err(bad(format!("{TENSOR_KEY:?} is empty ({vocab} x {dim})")));
    }
    // safetensors has checked that the data is exactly shape x dtype size.
    let data = view.data();
    // The format this model ships in; another dtype would be another model.
    if view.dtype() != Dtype::F16 {
        return Err(bad(format!(
            "{TENSOR_KEY:?} is {:?}; expected F16",
            view.dtype()
        )));
    }
    let table: Vec<f16> = data
        .chunks_exact(2)
        .map(|b| f16::from_le_bytes([b[0], b[1]]))
        .collect();
    if let Some(i) = table.iter().position(|x| !x.is_finite()) {
        return Err(bad(format!(
            "{TENSOR_KEY:?} holds a non-finite value at row {}",
            i / dim
        )));
    }
    Ok((table, vocab, dim))
}

/// Most dimensions a served model's embedding may have.
pub const MAX_SERVED_DIMENSIONS: usize = 8192;

/// The unit-length embedding in an OpenAI-format embeddings answer (the
/// first item's `embedding`, as numbers): what a served embeddings model
/// (`cache.semantic.embedding_model`) answered. Untrusted bytes: at most
/// [`MAX_SERVED_DIMENSIONS`], and a vector that cannot be normalised is an
/// error.
pub fn served_embedding(bytes: &[u8]) -> Result<Vec<f32>, String> {
    #[derive(serde::Deserialize)]
    struct Answer {
        data: Vec<Item>,
    }
    #[derive(serde::Deserialize)]
    struct Item {
        embedding: Vec<f32>,
    }
    let answer: Answer = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let mut v = answer
        .data
        .into_iter()
        .next()
        .ok_or("no embedding in the answer")?
        .embedding;
    if v.is_empty() || v.len() > MAX_SERVED_DIMENSIONS {
        return Err(format!("{} dimensions", v.len()));
    }
    // In f64: no f32 value's square under- or overflows there.
    let norm = v
        .iter()
        .map(|x| f64::from(*x) * f64::from(*x))
        .sum::<f64>()
        .sqrt();
    if !norm.is_normal() {
        return Err("a vector that cannot be normalised".into());
    }
    v.iter_mut()
        .for_each(|x| *x = (f64::from(*x) / norm) as f32);
    Ok(v)
}

#[cfg(test)]
mod tests {
    //! Behaviour on a tiny model written here, so these run everywhere; parity
    //! with WordLlama on the real model is `tests/cache_embed.rs`.

    use super::*;

    const DIM: usize = 4;

    /// A model directory laid out as the real one: a BPE tokenizer over the
    /// characters of "abc" with a "▁" word marker, and an f16 table in which
    /// token `i` points along axis `i % DIM`.
    fn tiny_model() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let tokens = ["<unk>", "▁", "a", "b", "c", "▁a", "▁ab"];
        let vocab: serde_json::Map<String, serde_json::Value> = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.to_string(), i.into()))
            .collect();
        // The shape of the real file: normalizers that mark word starts, no
        // pre-tokenizer, a BPE model.
        let tokenizer = serde_json::json!({
            "version": "1.0",
            "truncation": null,
            "padding": null,
            "added_tokens": [{"id": 0, "content": "<unk>", "single_word": false,
                "lstrip": false, "rstrip": false, "normalized": false, "special": true}],
            "normalizer": {"type": "Sequence", "normalizers": [
                {"type": "Prepend", "prepend": "▁"},
                {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
            "pre_tokenizer": null,
            "post_processor": null,
            "decoder": null,
            "model": {"type": "BPE", "dropout": null, "unk_token": "<unk>",
                "continuing_subword_prefix": null, "end_of_word_suffix": null,
                "fuse_unk": true, "byte_fallback": false, "ignore_merges": false,
                "vocab": vocab, "merges": [["▁", "a"], ["▁a", "b"]]}
        });
        std::fs::create_dir_all(dir.path().join("tokenizers")).unwrap();
        std::fs::create_dir_all(dir.path().join("weights")).unwrap();
        std::fs::write(dir.path().join(TOKENIZER_FILE), tokenizer.to_string()).unwrap();
        write_table(&dir.path().join(WEIGHTS_FILE), tokens.len(), DIM);
        dir
    }

    fn write_table(path: &Path, vocab: usize, dim: usize) {
        let mut data = Vec::with_capacity(vocab * dim * 2);
        for row in 0..vocab {
            for col in 0..dim {
                let v = if col == row % dim { 1.0 } else { 0.25 };
                data.extend_from_slice(&half::f16::from_f32(v).to_le_bytes());
            }
        }
        let view =
            safetensors::tensor::TensorView::new(Dtype::F16, vec![vocab, dim], &data).unwrap();
        safetensors::serialize_to_file([(TENSOR_KEY, view)], None, path).unwrap();
    }

    fn norm(v: &[f32]) -> f32 {
        v.iter().map(|x| x * x).sum::<f32>().sqrt()
    }

    #[test]
    fn embeds_to_a_unit_vector_of_the_model_dimension() {
        let dir = tiny_model();
        let e = Embedder::load(dir.path()).unwrap();
        assert_eq!((e.vocab(), e.dim()), (7, DIM));
        assert_eq!(e.tokenize("ab c").unwrap(), vec![6, 1, 4]);
        let v = e.embed("ab c").unwrap();
        assert_eq!(v.len(), DIM);
        assert!((norm(&v) - 1.0).abs() < 1e-6, "norm {}", norm(&v));
        // The mean of rows 6, 1 and 4 points along axes 2, 1 and 0 equally.
        assert!((v[0] - v[1]).abs() < 1e-6 && (v[1] - v[2]).abs() < 1e-6);
        assert!(v[3] < v[0]);
        // Deterministic: the same text gives the same bits.
        assert_eq!(v, e.embed("ab c").unwrap());
    }

    #[test]
    fn a_missing_file_is_an_error_naming_it() {
        let dir = tiny_model();
        std::fs::remove_file(dir.path().join(WEIGHTS_FILE)).unwrap();
        let err = Embedder::load(dir.path()).unwrap_err();
        let path = dir.path().join(WEIGHTS_FILE);
        assert!(
            matches!(&err, EmbedError::Read { path: p, source } if *p == path
                && source.kind() == std::io::ErrorKind::NotFound),
            "{err:?}"
        );
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );

        let empty = tempfile::tempdir().unwrap();
        let err = Embedder::load(empty.path()).unwrap_err();
        assert!(
            err.to_string()
                .contains(&empty.path().join(TOKENIZER_FILE).display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn corrupt_weights_are_an_error_naming_the_file() {
        let dir = tiny_model();
        let path = dir.path().join(WEIGHTS_FILE);
        let good = std::fs::read(&path).unwrap();
        for corrupt in [
            b"not a safetensors file".to_vec(),
            good[..good.len() - 3].to_vec(), // cut short
            Vec::new(),
        ] {
            std::fs::write(&path, &corrupt).unwrap();
            let err = Embedder::load(dir.path()).unwrap_err();
            assert!(
                matches!(&err, EmbedError::Weights { path: p, .. } if *p == path),
                "{err:?}"
            );
            assert!(
                err.to_string().contains(&path.display().to_string()),
                "{err}"
            );
        }
        // A table in another dtype is another model.
        let f32_data = vec![0u8; 7 * DIM * 4];
        let view =
            safetensors::tensor::TensorView::new(Dtype::F32, vec![7, DIM], &f32_data).unwrap();
        safetensors::serialize_to_file([(TENSOR_KEY, view)], None, &path).unwrap();
        let err = Embedder::load(dir.path()).unwrap_err();
        assert!(err.to_string().contains("expected F16"), "{err}");
        // A table with fewer rows than the tokenizer has tokens.
        write_table(&path, 3, DIM);
        let err = Embedder::load(dir.path()).unwrap_err();
        assert!(err.to_string().contains("not from the same model"), "{err}");
    }

    #[test]
    fn a_corrupt_tokenizer_is_an_error_naming_the_file() {
        let dir = tiny_model();
        let path = dir.path().join(TOKENIZER_FILE);
        std::fs::write(&path, b"{\"version\": \"1.0\", \"model\": ").unwrap();
        let err = Embedder::load(dir.path()).unwrap_err();
        assert!(
            matches!(&err, EmbedError::Tokenizer { path: p, .. } if *p == path),
            "{err:?}"
        );
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn inputs_past_the_limits_are_refused_not_truncated() {
        let dir = tiny_model();
        let e = Embedder::load(dir.path()).unwrap().with_limits(Limits {
            max_bytes: 16,
            max_tokens: 4,
        });
        assert!(e.embed("ab ab ab").is_ok()); // 8 bytes, 3 tokens
        assert!(matches!(
            e.embed("ab ab ab ab ab ab"),
            Err(EmbedError::TextTooLong { bytes: 17, max: 16 })
        ));
        // "c c c c c" is 9 bytes but ten tokens ("▁" and "c" each time).
        assert!(matches!(
            e.embed("c c c c c"),
            Err(EmbedError::TooManyTokens { tokens: 10, max: 4 })
        ));
        assert_eq!(Limits::default().max_bytes, Limits::DEFAULT_MAX_BYTES);
    }

    #[test]
    fn empty_text_is_an_error_not_a_nan_vector() {
        let dir = tiny_model();
        let e = Embedder::load(dir.path()).unwrap();
        assert!(matches!(e.embed(""), Err(EmbedError::Empty)));
    }

    #[test]
    fn a_served_answer_is_read_bounded_and_normalised() {
        let v = served_embedding(br#"{"data":[{"embedding":[3.0,4.0]}],"model":"m"}"#).unwrap();
        assert_eq!(v, vec![0.6, 0.8]);
        // Values whose squares leave f32's range still normalise.
        for text in [
            &br#"{"data":[{"embedding":[1e-30,1e-30]}]}"#[..],
            br#"{"data":[{"embedding":[3e38,1]}]}"#,
        ] {
            let v = served_embedding(text).unwrap();
            let norm: f32 = v.iter().map(|x| x * x).sum();
            assert!((norm - 1.0).abs() < 1e-5, "{v:?}");
        }
        for bad in [
            &br#"{"data":[]}"#[..],
            br#"{"data":[{"embedding":[]}]}"#,
            br#"{"data":[{"embedding":[0.0,0.0]}]}"#,
            br#"{"data":[{"embedding":"AAAA"}]}"#,
            b"not json",
        ] {
            assert!(
                served_embedding(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let huge = format!(
            r#"{{"data":[{{"embedding":[{}1]}}]}}"#,
            "1,".repeat(MAX_SERVED_DIMENSIONS)
        );
        assert!(served_embedding(huge.as_bytes()).is_err());
    }
}
