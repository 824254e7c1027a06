//! Grow-only counters: one slot per node, each written only by its node.
//!
//! Spend and usage are counted this way: a node adds to its own slot, merge
//! takes the slot-wise maximum, and the value is the sum. A new budget period
//! is a new counter, so resets need no coordination.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Merge, NodeId};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GCounter {
    pub slots: BTreeMap<NodeId, u64>,
}

impl Merge for GCounter {
    fn merge(&mut self, other: &Self) {
        for (&node, &n) in &other.slots {
            let mine = self.slots.entry(node).or_insert(0);
            *mine = (*mine).max(n);
        }
    }
}

impl GCounter {
    /// Adds to `node`'s slot; returns the delta (that slot's new value).
    pub fn add(&mut self, node: NodeId, n: u64) -> GCounter {
        let slot = self.slots.entry(node).or_insert(0);
        *slot = slot.saturating_add(n);
        GCounter {
            slots: BTreeMap::from([(node, *slot)]),
        }
    }

    pub fn value(&self) -> u64 {
        self.slots.values().fold(0u64, |a, &b| a.saturating_add(b))
    }

    pub fn of(&self, node: NodeId) -> u64 {
        self.slots.get(&node).copied().unwrap_or(0)
    }
}
