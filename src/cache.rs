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
/// request sets another. Chosen on the labelled set in
/// `tests/data/cache/` (`docs/cache.md`, "Hit and false-hit rates").
pub const DEFAULT_THRESHOLD: f32 = 0.95;

/// Whether `t` can be a similarity threshold: a number in (0, 1] (0 would
/// serve any stored answer, and no similarity passes 1).
pub fn valid_threshold(t: f32) -> bool {
    t > 0.0 && t <= 1.0
}

pub mod embed;
pub mod key;
pub mod semantic;
pub mod store;
