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

pub struct Table {
    name: &'static str,
    store: Store,
    rows: RwLock<BTreeMap<String, LwwMap>>,
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
        let unchanged = self
            .rows
            .read()
            .expect("table lock")
            .get(id)
            .is_some_and(|row| {
                let mut merged = row.clone();
                merged.merge(delta);
                merged == *row
            });
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
}
