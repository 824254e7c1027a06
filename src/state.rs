//! Replicated state: conflict-free replicated data types (CRDTs) and the
//! hybrid logical clock that orders their writes.
//!
//! Every type here implements [`Merge`], whose laws make replication safe
//! without coordination: any two replicas that have merged the same set of
//! states or deltas, in any order and any number of times, are equal. The laws
//! are property-tested for every type (`state/laws.rs`).
//!
//! This module knows nothing about LLMs, keys or budgets, nor about how states
//! travel between nodes: the cluster layer moves them, governance gives them
//! meaning.

pub mod counter;
pub mod hlc;
pub mod lww;
pub mod table;

#[cfg(test)]
mod laws;

/// Node identity inside replicated state (the writer of a register, the owner
/// of a counter slot). Unique per node, stable across restarts.
pub type NodeId = u64;

/// A state-based CRDT.
///
/// Laws, for all states `a`, `b`, `c` (writing `a ⊔ b` for `a` merged with `b`):
/// - commutative: `a ⊔ b == b ⊔ a`
/// - associative: `(a ⊔ b) ⊔ c == a ⊔ (b ⊔ c)`
/// - idempotent:  `a ⊔ a == a`
///
/// and for a delta `d` produced by a mutation of `a` (see each type),
/// `b ⊔ (a with the mutation) == (b ⊔ a) ⊔ d`: shipping deltas is as good as
/// shipping whole states.
pub trait Merge {
    fn merge(&mut self, other: &Self);
}
