//! A replicated table: objects by id, each an [`LwwMap`] of fields, kept in
//! memory and persisted in RocksDB (`state` column family, key `table\0id`).
//!
//! Every change, local or remote, is a delta merged with [`Table::apply`]:
//! merge in memory, then persist the merged row in one write, so a row on
//! disk is always a whole state that some sequence of merges produced.

use std::collections::BTreeMap;
use std::sync::RwLock;

use super::Merge;
use super::lww::LwwMap;
use crate::store::{self, CF_STATE, Store, StoreError};

/// Format version of persisted rows.
const ROW_VERSION: u8 = 1;

/// The field whose value `true` marks a deleted object (a tombstone).
pub const TOMBSTONE: &str = "deleted";

pub struct Table {
    name: &'static str,
    store: Store,
    rows: RwLock<BTreeMap<String, LwwMap>>,
    /// Tombstones written before this (Unix ms) were collected: a peer's
    /// copy of one is not brought back.
    collected_before: std::sync::atomic::AtomicU64,
}

/// When `row` was deleted, if it is a tombstone: deleted, and nothing
/// written after.
fn deleted_at(row: &LwwMap) -> Option<u64> {
    let tomb = row.fields.get(TOMBSTONE)?;
    let newest = row.last_write()?;
    (tomb.value.as_deref() == Some(b"true") && newest == tomb.ts).then_some(tomb.ts.wall_ms)
}

impl Table {
    /// Loads every row of table `name` from the store.
    pub fn open(name: &'static str, store: Store) -> Result<Table, StoreError> {
        let rows = store
            .load_prefix::<LwwMap>(CF_STATE, &Self::prefix(name), ROW_VERSION)?
            .into_iter()
            .map(|(id, row)| (String::from_utf8_lossy(&id).into_owned(), row))
            .collect();
        Ok(Table {
            name,
            store,
            rows: RwLock::new(rows),
            collected_before: Default::default(),
        })
    }

    fn prefix(name: &str) -> Vec<u8> {
        let mut p = name.as_bytes().to_vec();
        p.push(0);
        p
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Merges a peer's delta into row `id`; persists and returns `true` only
    /// if it changed the row (a change seen before is a no-op).
    pub fn apply_if_changed(&self, id: &str, delta: &LwwMap) -> Result<bool, StoreError> {
        let collected = self
            .collected_before
            .load(std::sync::atomic::Ordering::Relaxed);
        let unchanged = match self.rows.read().expect("table lock").get(id) {
            Some(row) => {
                let mut merged = row.clone();
                merged.merge(delta);
                merged == *row
            }
            // A tombstone this node already collected.
            None => deleted_at(delta).is_some_and(|at| at < collected),
        };
        if unchanged {
            return Ok(false);
        }
        self.apply(id, delta)?;
        Ok(true)
    }

    /// Merges `delta` into row `id` and persists the result; returns the merged row.
    pub fn apply(&self, id: &str, delta: &LwwMap) -> Result<LwwMap, StoreError> {
        let mut rows = self.rows.write().expect("table lock");
        let mut row = rows.get(id).cloned().unwrap_or_default();
        row.merge(delta);
        let mut key = Self::prefix(self.name);
        key.extend_from_slice(id.as_bytes());
        self.store
            .put(CF_STATE, &key, &store::encode(ROW_VERSION, &row)?)?;
        rows.insert(id.to_string(), row.clone());
        Ok(row)
    }

    /// Removes every row deleted before `before` (Unix ms) and not written
    /// since, in memory and on disk; from then on a peer's copy of such a
    /// tombstone is ignored. Returns how many rows went.
    pub fn collect_tombstones(&self, before: u64) -> Result<usize, StoreError> {
        self.collected_before
            .fetch_max(before, std::sync::atomic::Ordering::Relaxed);
        // Found under the read lock (most minutes find nothing); a row
        // written since is checked again under the write lock below.
        let old: Vec<String> = self
            .rows
            .read()
            .expect("table lock")
            .iter()
            .filter(|(_, row)| deleted_at(row).is_some_and(|at| at < before))
            .map(|(id, _)| id.clone())
            .collect();
        if old.is_empty() {
            return Ok(0);
        }
        let mut rows = self.rows.write().expect("table lock");
        let old: Vec<String> = old
            .into_iter()
            .filter(|id| {
                rows.get(id)
                    .and_then(deleted_at)
                    .is_some_and(|at| at < before)
            })
            .collect();
        if old.is_empty() {
            return Ok(0);
        }
        let keys: Vec<Vec<u8>> = old
            .iter()
            .map(|id| [Self::prefix(self.name), id.as_bytes().to_vec()].concat())
            .collect();
        self.store
            .write_durable(CF_STATE, [], keys.iter().map(Vec::as_slice))?;
        for id in &old {
            rows.remove(id);
        }
        Ok(old.len())
    }

    pub fn get(&self, id: &str) -> Option<LwwMap> {
        self.rows.read().expect("table lock").get(id).cloned()
    }

    /// Every row, in id order.
    pub fn rows(&self) -> Vec<(String, LwwMap)> {
        self.rows
            .read()
            .expect("table lock")
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::hlc::Timestamp;

    fn ts(ms: u64) -> Timestamp {
        Timestamp {
            wall_ms: ms,
            counter: 0,
            node: 1,
        }
    }

    #[test]
    fn deltas_merge_persist_and_reload() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            let t = Table::open("keys", store.clone()).unwrap();
            let mut d = LwwMap::default();
            d.set("name", ts(2), Some(b"\"new\"".to_vec()));
            t.apply("k1", &d).unwrap();
            let mut old = LwwMap::default();
            old.set("name", ts(1), Some(b"\"old\"".to_vec()));
            let merged = t.apply("k1", &old).unwrap();
            assert_eq!(
                merged.get("name"),
                Some(&b"\"new\""[..]),
                "older write loses"
            );
            // Another table's rows are separate.
            let other = Table::open("teams", store.clone()).unwrap();
            other.apply("k1", &old).unwrap();
            store.flush().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let t = Table::open("keys", store).unwrap();
        assert_eq!(t.rows().len(), 1);
        assert_eq!(t.get("k1").unwrap().get("name"), Some(&b"\"new\""[..]));
    }

    #[test]
    fn old_tombstones_are_collected_and_not_brought_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let t = Table::open("keys", store.clone()).unwrap();
        let mut gone = LwwMap::default();
        gone.set("name", ts(1), Some(b"\"a\"".to_vec()));
        gone.set(TOMBSTONE, ts(5), Some(b"true".to_vec()));
        t.apply("gone", &gone).unwrap();
        // Deleted, then written again: not a tombstone.
        let mut back = gone.clone();
        back.set("name", ts(6), Some(b"\"b\"".to_vec()));
        t.apply("back", &back).unwrap();
        let mut recent = LwwMap::default();
        recent.set(TOMBSTONE, ts(50), Some(b"true".to_vec()));
        t.apply("recent", &recent).unwrap();
        let mut live = LwwMap::default();
        live.set("name", ts(2), Some(b"\"c\"".to_vec()));
        t.apply("live", &live).unwrap();

        assert_eq!(t.collect_tombstones(10).unwrap(), 1);
        let ids: Vec<String> = t.rows().into_iter().map(|(id, _)| id).collect();
        assert_eq!(ids, ["back", "live", "recent"]);
        assert!(
            !t.apply_if_changed("gone", &gone).unwrap(),
            "a peer's copy of the collected tombstone stays out"
        );
        assert!(t.get("gone").is_none());
        assert!(
            t.apply_if_changed("new", &live).unwrap(),
            "other rows still land"
        );
        drop(t);
        let t = Table::open("keys", store).unwrap();
        assert!(t.get("gone").is_none(), "gone from disk too");
        assert_eq!(t.rows().len(), 4);
    }
}
