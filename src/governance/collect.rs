//! Collection of replicated state that can no longer matter: counters of
//! windows that ended (spend, gifts, takes, leases) and tombstones of
//! deleted objects old enough that every node has heard of them.
//!
//! A tombstone collected on every node is gone for good, so a node that was
//! away longer than [`TOMBSTONE_TTL_MS`] could bring the deleted object back
//! from its stale copy. Such a node refuses to join a cluster at start (its
//! data directory is marked in use every minute); it must start from an
//! empty data directory and sync.

use super::Governance;
use crate::store::{CF_META, Store, StoreError};

/// Counters are kept this long after their window ends (late pushes of
/// them are then harmless), then collected.
pub const COUNTERS_KEPT_MS: u64 = 3_600_000;
/// Tombstones are kept this long after the delete, then collected.
pub const TOMBSTONE_TTL_MS: u64 = 7 * 86_400_000;
/// How often state is collected and the data directory marked in use.
pub const COLLECT_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

const IN_USE: &[u8] = b"in_use_ms";

impl Governance {
    /// Collects ended windows' counters and old tombstones; returns how many
    /// of each went.
    pub fn collect_garbage(&self) -> Result<(usize, usize), StoreError> {
        let now = self.now_ms();
        let counters = self.ledger.collect(now.saturating_sub(COUNTERS_KEPT_MS))?;
        let mut rows = 0;
        for (_, t) in self.tables() {
            rows += t.collect_tombstones(now.saturating_sub(TOMBSTONE_TTL_MS))?;
        }
        Ok((counters, rows))
    }
}

/// Marks the data directory as in use at `now_ms`.
pub fn mark_in_use(store: &Store, now_ms: u64) -> Result<(), StoreError> {
    store.put(CF_META, IN_USE, &now_ms.to_be_bytes())
}

/// When the data directory was last marked in use, if ever.
pub fn last_in_use(store: &Store) -> Result<Option<u64>, StoreError> {
    Ok(store
        .get(CF_META, IN_USE)?
        .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
        .map(u64::from_be_bytes))
}

/// Whether data last in use at `last` (Unix ms) is too old to join a
/// cluster at `now_ms`: its tombstones may be gone everywhere else.
pub fn too_stale_to_join(last: Option<u64>, now_ms: u64) -> bool {
    last.is_some_and(|t| now_ms.saturating_sub(t) > TOMBSTONE_TTL_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_older_than_the_tombstone_ttl_is_too_stale_to_join() {
        let now = 100 * 86_400_000;
        assert!(!too_stale_to_join(None, now), "a new data directory");
        assert!(!too_stale_to_join(Some(now - TOMBSTONE_TTL_MS), now));
        assert!(too_stale_to_join(Some(now - TOMBSTONE_TTL_MS - 1), now));
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(last_in_use(&store).unwrap(), None);
        mark_in_use(&store, 42).unwrap();
        assert_eq!(last_in_use(&store).unwrap(), Some(42));
    }
}
