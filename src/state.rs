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

/// One replicated change, as the cluster layer carries it: a delta of a table
/// row, or of a grow-only counter. Merging a change is idempotent, so a change
/// may arrive any number of times, in any order, by push or by anti-entropy.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Change {
    /// A delta of row `id` of table `table`.
    Row {
        table: String,
        id: String,
        row: lww::LwwMap,
    },
    /// A delta of the counter named `key` (its owner knows how to read the name).
    Counter {
        key: String,
        counter: counter::GCounter,
    },
}

impl Change {
    /// The identity of the replicated item this change is about, unique across
    /// tables and counters: what anti-entropy digests are keyed by.
    pub fn item(&self) -> String {
        match self {
            Change::Row { table, id, .. } => row_item(table, id),
            Change::Counter { key, .. } => counter_item(key),
        }
    }
}

/// The item name of a table row.
pub fn row_item(table: &str, id: &str) -> String {
    format!("row\0{table}\0{id}")
}

/// The item name of a counter.
pub fn counter_item(key: &str) -> String {
    format!("ctr\0{key}")
}
