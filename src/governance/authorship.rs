//! Who wrote a replicated change. A node pushes only its own writes: rows it
//! stamped with its own clock, counter slots of its own, and gifts it gave
//! (named after the giver, their slots the receivers'), and allowance it took
//! over as a deputy (named after the taker, likewise). The cluster layer
//! drops any pushed change its sender could not have written, so a peer
//! cannot speak for another node's slots by pushing them.

use crate::state::{Change, NodeId};

/// Whether every part of `change` is `node`'s own write.
pub fn written_only_by(change: &Change, node: NodeId) -> bool {
    match change {
        Change::Row { row, .. } => row.fields.values().all(|r| r.ts.node == node),
        Change::Counter { key, counter } => {
            match key
                .strip_prefix("give\0")
                .or_else(|| key.strip_prefix("take\0"))
            {
                Some(rest) => writer(rest) == Some(node),
                None => counter.slots.keys().all(|&n| n == node),
            }
        }
    }
}

/// The writer named at the start of a gift's or take's counter name (16
/// hex digits).
fn writer(rest: &str) -> Option<NodeId> {
    let hex = rest.get(..16)?;
    if rest.as_bytes().get(16) != Some(&0) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::counter::GCounter;
    use crate::state::hlc::Timestamp;
    use crate::state::lww::LwwMap;

    fn counter(key: &str, slots: &[(NodeId, u64)]) -> Change {
        Change::Counter {
            key: key.into(),
            counter: GCounter {
                slots: slots.iter().copied().collect(),
            },
        }
    }

    #[test]
    fn a_node_writes_its_own_slots_rows_and_gifts_only() {
        assert!(written_only_by(&counter("spend\0k", &[(7, 5)]), 7));
        assert!(!written_only_by(&counter("spend\0k", &[(7, 5), (8, 1)]), 7));
        assert!(!written_only_by(&counter("rate\0k", &[(8, 1)]), 7));
        let gift = format!("give\0{:016x}\0key\0k", 7u64);
        assert!(written_only_by(&counter(&gift, &[(9, 100)]), 7));
        assert!(!written_only_by(&counter(&gift, &[(9, 100)]), 9));
        assert!(!written_only_by(&counter("give\0zz", &[(7, 1)]), 7));
        let take = format!("take\0{:016x}\0key\0k", 7u64);
        assert!(written_only_by(&counter(&take, &[(9, 100)]), 7));
        assert!(!written_only_by(&counter(&take, &[(9, 100)]), 9));
        let ts = |node| Timestamp {
            wall_ms: 1,
            counter: 0,
            node,
        };
        let mut row = LwwMap::default();
        row.set("name", ts(7), Some(b"a".to_vec()));
        let mine = Change::Row {
            table: "teams".into(),
            id: "t".into(),
            row: row.clone(),
        };
        assert!(written_only_by(&mine, 7));
        row.set("limit", ts(8), Some(b"b".to_vec()));
        let mixed = Change::Row {
            table: "teams".into(),
            id: "t".into(),
            row,
        };
        assert!(!written_only_by(&mixed, 7));
    }
}
