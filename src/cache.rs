//! The response cache (exact and semantic); see `docs/cache.md`.

pub mod embed;
