//! The exact cache's storage: answers by [`Key`] in their own RocksDB column
//! family ([`CF_CACHE`]), bounded in bytes with least-recently-used
//! eviction, each with its expiry.
//!
//! What is stored is the gateway's internal answer (an OpenAI chat
//! completion) with what it cost and which target gave it; the request path
//! turns it into the client's format. This module knows nothing about HTTP,
//! formats or governance.
//!
//! Rows are written without the write-ahead log ([`Store::write_unlogged`]):
//! a cache write never waits on a sync, and never grows the log that
//! governance writes sync. The price is that a crash loses the answers
//! stored since the cache's last memtable flush; a graceful shutdown
//! flushes them. The recency order is kept in memory only (a hit does not
//! write): after a restart it starts as the order the answers were stored in.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::key::Key;
use crate::store::{self, CF_CACHE, Store, StoreError};

/// Format version of stored rows (see `store`).
const ROW_VERSION: u8 = 1;

/// What a row costs besides its value: its key and the index's entry.
const OVERHEAD: u64 = 32 + 64;

/// One stored answer, as a row holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Row {
    stored_ms: u64,
    expires_ms: u64,
    /// What the answer cost when it was received: what a hit saves.
    cost_micros: u64,
    /// `provider/model` that answered.
    target: String,
    /// The internal answer (a chat completion, JSON).
    body: Vec<u8>,
}

/// A stored answer, found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub body: Bytes,
    pub cost_micros: u64,
    pub target: String,
    pub stored_ms: u64,
}

/// What to store.
pub struct Entry<'a> {
    pub body: &'a [u8],
    pub cost_micros: u64,
    pub target: &'a str,
    pub now_ms: u64,
    pub ttl_ms: u64,
}

struct Meta {
    bytes: u64,
    expires_ms: u64,
    tick: u64,
    target: Arc<str>,
}

#[derive(Default)]
struct Index {
    entries: HashMap<Key, Meta>,
    /// Recency: the smallest tick is the least recently used.
    lru: BTreeMap<u64, Key>,
    bytes: u64,
    next_tick: u64,
}

impl Index {
    fn touch(&mut self, key: &Key) {
        let tick = self.next_tick;
        if let Some(m) = self.entries.get_mut(key) {
            self.lru.remove(&m.tick);
            m.tick = tick;
            self.lru.insert(tick, *key);
            self.next_tick += 1;
        }
    }

    fn insert(&mut self, key: Key, bytes: u64, expires_ms: u64, target: Arc<str>) {
        self.remove(&key);
        let tick = self.next_tick;
        self.next_tick += 1;
        self.entries.insert(
            key,
            Meta {
                bytes,
                expires_ms,
                tick,
                target,
            },
        );
        self.lru.insert(tick, key);
        self.bytes += bytes;
    }

    fn remove(&mut self, key: &Key) -> bool {
        match self.entries.remove(key) {
            Some(m) => {
                self.lru.remove(&m.tick);
                self.bytes -= m.bytes;
                true
            }
            None => false,
        }
    }

    /// Least recently used keys to drop until `bytes` fit in `max`.
    fn over(&mut self, max: u64) -> Vec<Key> {
        let mut gone = Vec::new();
        while self.bytes > max {
            let Some((_, key)) = self.lru.pop_first() else {
                break;
            };
            if let Some(m) = self.entries.remove(&key) {
                self.bytes -= m.bytes;
            }
            gone.push(key);
        }
        gone
    }
}

/// Counters since start (the `/api/cache` stats and Prometheus).
#[derive(Debug, Default)]
pub struct Counters {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub bypasses: AtomicU64,
    pub stores: AtomicU64,
    pub evictions: AtomicU64,
    pub expirations: AtomicU64,
    /// Lookups and stores the database failed (the request went on).
    pub errors: AtomicU64,
    /// Answers larger than the whole cache, not stored.
    pub too_large: AtomicU64,
}

/// Sizes and counters now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub entries: u64,
    pub bytes: u64,
    pub max_bytes: u64,
    pub hits: u64,
    pub misses: u64,
    pub bypasses: u64,
    pub stores: u64,
    pub evictions: u64,
    pub expirations: u64,
    pub errors: u64,
    pub too_large: u64,
}

/// The exact cache of one node.
pub struct CacheStore {
    store: Store,
    index: Mutex<Index>,
    max_bytes: u64,
    pub counters: Counters,
}

impl CacheStore {
    /// The largest entry this cache could hold: its whole size.
    pub fn max_entry_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Reads the index of every stored row: expired and unreadable rows
    /// are deleted, and the least recently stored beyond `max_bytes`.
    pub fn open(store: Store, max_bytes: u64, now_ms: u64) -> Result<CacheStore, StoreError> {
        let mut rows: Vec<(u64, Key, u64, u64, Arc<str>)> = Vec::new();
        let mut dead: Vec<Vec<u8>> = Vec::new();
        store.scan_prefix(CF_CACHE, &[], |k, v| {
            let key = <[u8; 32]>::try_from(k).ok().map(Key);
            match (key, decode(v)) {
                (Some(key), Ok(row)) if row.expires_ms > now_ms => rows.push((
                    row.stored_ms,
                    key,
                    v.len() as u64 + OVERHEAD,
                    row.expires_ms,
                    row.target.into(),
                )),
                _ => dead.push(k.to_vec()),
            }
        })?;
        rows.sort_by_key(|r| r.0);
        let mut index = Index::default();
        for (_, key, bytes, expires_ms, target) in rows {
            index.insert(key, bytes, expires_ms, target);
        }
        let evicted = index.over(max_bytes);
        dead.extend(evicted.iter().map(|k| k.0.to_vec()));
        if !dead.is_empty() {
            store.write_unlogged(CF_CACHE, [], dead.iter().map(Vec::as_slice))?;
        }
        Ok(CacheStore {
            store,
            index: Mutex::new(index),
            max_bytes,
            counters: Counters::default(),
        })
    }

    fn index(&self) -> std::sync::MutexGuard<'_, Index> {
        self.index.lock().expect("cache index lock")
    }

    /// The answer stored under `key`, if it has not expired. A hit makes it
    /// the most recently used; an expired one is deleted.
    pub fn get(&self, key: &Key, now_ms: u64) -> Result<Option<Hit>, StoreError> {
        {
            let mut index = self.index();
            match index.entries.get(key) {
                None => return Ok(None),
                Some(m) if m.expires_ms <= now_ms => {
                    index.remove(key);
                    drop(index);
                    self.counters.expirations.fetch_add(1, Ordering::Relaxed);
                    self.store
                        .write_unlogged(CF_CACHE, [], [key.as_bytes().as_slice()])?;
                    return Ok(None);
                }
                Some(_) => index.touch(key),
            }
        }
        let Some(raw) = self.store.get(CF_CACHE, key.as_bytes())? else {
            // Cleared or evicted between the index and the read.
            self.index().remove(key);
            return Ok(None);
        };
        let row = decode(&raw)?;
        if row.expires_ms <= now_ms {
            return Ok(None);
        }
        Ok(Some(Hit {
            body: Bytes::from(row.body),
            cost_micros: row.cost_micros,
            target: row.target,
            stored_ms: row.stored_ms,
        }))
    }

    /// Stores an answer under `key` (replacing any), then evicts the least
    /// recently used past the bound. Returns how many were evicted.
    pub fn put(&self, key: &Key, e: &Entry<'_>) -> Result<usize, StoreError> {
        let row = Row {
            stored_ms: e.now_ms,
            expires_ms: e.now_ms.saturating_add(e.ttl_ms),
            cost_micros: e.cost_micros,
            target: e.target.to_string(),
            body: e.body.to_vec(),
        };
        let value = store::encode(ROW_VERSION, &row)?;
        let bytes = value.len() as u64 + OVERHEAD;
        if bytes > self.max_bytes {
            self.counters.too_large.fetch_add(1, Ordering::Relaxed);
            return Ok(0);
        }
        // The row is written before the index names it, so a lookup that
        // finds it in the index finds it on disk (or sees it gone, and misses).
        self.store.write_unlogged(
            CF_CACHE,
            [(key.as_bytes().as_slice(), value.as_slice())],
            [],
        )?;
        let evicted = {
            let mut index = self.index();
            index.insert(*key, bytes, row.expires_ms, e.target.into());
            index.over(self.max_bytes)
        };
        self.counters.stores.fetch_add(1, Ordering::Relaxed);
        if !evicted.is_empty() {
            self.counters
                .evictions
                .fetch_add(evicted.len() as u64, Ordering::Relaxed);
            self.store
                .write_unlogged(CF_CACHE, [], evicted.iter().map(|k| k.0.as_slice()))?;
        }
        Ok(evicted.len())
    }

    /// Deletes every stored answer, or those `target` (`provider/model`)
    /// gave. Returns how many.
    pub fn clear(&self, target: Option<&str>) -> Result<u64, StoreError> {
        let gone: Vec<Key> = {
            let mut index = self.index();
            let keys: Vec<Key> = index
                .entries
                .iter()
                .filter(|(_, m)| target.is_none_or(|t| &*m.target == t))
                .map(|(k, _)| *k)
                .collect();
            for k in &keys {
                index.remove(k);
            }
            keys
        };
        match target {
            None => self
                .store
                .delete_range(CF_CACHE, &[0u8; 32], &[0xffu8; 33])?,
            Some(_) => {
                self.store
                    .write_unlogged(CF_CACHE, [], gone.iter().map(|k| k.0.as_slice()))?
            }
        }
        Ok(gone.len() as u64)
    }

    pub fn stats(&self) -> Stats {
        let (entries, bytes) = {
            let index = self.index();
            (index.entries.len() as u64, index.bytes)
        };
        let c = &self.counters;
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Stats {
            entries,
            bytes,
            max_bytes: self.max_bytes,
            hits: n(&c.hits),
            misses: n(&c.misses),
            bypasses: n(&c.bypasses),
            stores: n(&c.stores),
            evictions: n(&c.evictions),
            expirations: n(&c.expirations),
            errors: n(&c.errors),
            too_large: n(&c.too_large),
        }
    }
}

fn decode(v: &[u8]) -> Result<Row, StoreError> {
    let (_version, body) = store::versioned(v, ROW_VERSION)?;
    store::decode(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> Key {
        Key([n; 32])
    }

    fn entry(body: &[u8], now_ms: u64, ttl_ms: u64) -> Entry<'_> {
        Entry {
            body,
            cost_micros: 42,
            target: "mock/m",
            now_ms,
            ttl_ms,
        }
    }

    #[test]
    fn answers_expire_evict_least_recently_used_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let body = vec![b'x'; 1000];
        let row = store::encode(
            ROW_VERSION,
            &Row {
                stored_ms: 10,
                expires_ms: 1010,
                cost_micros: 42,
                target: "mock/m".into(),
                body: body.clone(),
            },
        )
        .unwrap();
        let each = row.len() as u64 + OVERHEAD;
        {
            let s = CacheStore::open(Store::open(dir.path()).unwrap(), 3 * each, 0).unwrap();
            for n in 1..=3 {
                s.put(&key(n), &entry(&body, 10, 1000)).unwrap();
            }
            assert_eq!(s.stats().bytes, 3 * each);
            // 1 is used, so 2 is the least recently used when 4 arrives.
            assert_eq!(s.get(&key(1), 20).unwrap().unwrap().cost_micros, 42);
            assert_eq!(s.put(&key(4), &entry(&body, 30, 1000)).unwrap(), 1);
            assert!(s.get(&key(2), 40).unwrap().is_none());
            for n in [1, 3, 4] {
                assert!(s.get(&key(n), 40).unwrap().is_some(), "{n}");
            }
            // Expired at 1010: a miss, and gone.
            assert!(s.get(&key(1), 1010).unwrap().is_none());
            assert_eq!(s.stats().entries, 2);
            assert_eq!(s.stats().evictions, 1);
            assert_eq!(s.stats().expirations, 1);
            s.store.flush().unwrap();
        }
        let s = CacheStore::open(Store::open(dir.path()).unwrap(), 3 * each, 40).unwrap();
        assert_eq!(s.stats().entries, 2);
        assert_eq!(s.get(&key(3), 50).unwrap().unwrap().body.len(), 1000);
        // Reopened later than every expiry: nothing left.
        drop(s);
        let s = CacheStore::open(Store::open(dir.path()).unwrap(), 3 * each, 5000).unwrap();
        assert_eq!(s.stats().entries, 0);
    }

    #[test]
    fn clearing_by_target_keeps_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let s = CacheStore::open(Store::open(dir.path()).unwrap(), 1 << 20, 0).unwrap();
        s.put(&key(1), &entry(b"a", 0, 1000)).unwrap();
        let other = Entry {
            target: "mock/other",
            ..entry(b"b", 0, 1000)
        };
        s.put(&key(2), &other).unwrap();
        assert_eq!(s.clear(Some("mock/other")).unwrap(), 1);
        assert!(s.get(&key(2), 1).unwrap().is_none());
        assert!(s.get(&key(1), 1).unwrap().is_some());
        assert_eq!(s.clear(None).unwrap(), 1);
        assert!(s.get(&key(1), 1).unwrap().is_none());
        assert_eq!(s.stats().bytes, 0);
        // An answer larger than the whole cache is not stored.
        let small = CacheStore::open(s.store.clone(), 10, 0).unwrap();
        assert_eq!(small.put(&key(3), &entry(b"too big", 0, 1000)).unwrap(), 0);
        assert_eq!(small.stats().too_large, 1);
    }
}
