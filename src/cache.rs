//! The response cache: answers the gateway has already received, served
//! again to requests that would get the same answer (exact) or ask the same
//! thing in other words (semantic), within one tenant's partition.
//!
//! [`key`]: how a request becomes its cache keys, pure — bytes in, keys
//! out: no I/O, no clock, no governance, no knowledge of HTTP; [`store`]:
//! the cache's bounded, expiring storage in the node's RocksDB, answers with
//! their questions' embeddings; [`embed`]: the small static embedding
//! model, loaded from a local file, that turns the text a semantic key names
//! into a vector; [`semantic`]: the in-memory nearest-neighbour index of the
//! stored questions, by partition. The request-path phase is
//! `proxy::cache`.
//!
//! What a key must never do is put two requests that can get different
//! answers under one key (`docs/cache.md`, "Keys"): a field the key cannot
//! see is either hashed raw or makes the request uncacheable.

/// The similarity (cosine of the prompts' embeddings) at or above which the
/// semantic cache serves a cached answer, unless a route, a key or the
/// request sets another: where the default model's false-hit rate was
/// 0.58% on a labelled set of 2,320 pairs that is not in the repository yet
/// (`docs/cache.md`, "Hit and false-hit rates").
pub const DEFAULT_THRESHOLD: f32 = 0.98;

/// Whether `t` can be a similarity threshold: a number in (0, 1] (0 would
/// serve any stored answer, and no similarity passes 1).
pub fn valid_threshold(t: f32) -> bool {
    t > 0.0 && t <= 1.0
}

/// Where the semantic cache's embeddings come from.
pub enum Embeddings {
    /// The static model, loaded from a local file and run in the node.
    Local(std::sync::Arc<embed::Embedder>),
    /// An embeddings model this gateway serves (`cache.semantic.
    /// embedding_model`), asked through the gateway itself
    /// (`proxy::cache`).
    Served {
        /// As a client names it at `/v1/embeddings`.
        model: String,
    },
}

impl Embeddings {
    /// What the stored vectors are tagged with, so that vectors of another
    /// model are never compared: the local model's weights' fingerprint,
    /// or a hash of the served model's name.
    pub fn fingerprint(&self) -> u64 {
        match self {
            Embeddings::Local(e) => e.fingerprint(),
            Embeddings::Served { model } => {
                use sha2::Digest;
                let d = sha2::Sha256::digest(format!("served embeddings\0{model}"));
                u64::from_be_bytes(d[..8].try_into().expect("8 bytes"))
            }
        }
    }

    /// The vectors' length, when known before the first one (a served
    /// model's is learned from its first answer).
    pub fn dims(&self) -> Option<usize> {
        match self {
            Embeddings::Local(e) => Some(e.dim()),
            Embeddings::Served { .. } => None,
        }
    }
}

pub mod embed;
pub mod key;
pub mod semantic;
pub mod store;
