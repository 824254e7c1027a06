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
use super::semantic::{Nearest, SemanticIndex};
use crate::store::{self, CF_CACHE, Store, StoreError};

/// Format version of stored rows (see `store`): 2 added the question's
/// embedding, 3 the virtual key that asked; older rows are read with none.
const ROW_VERSION: u8 = 3;

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
    /// The question's embedding, for the semantic cache.
    question: Option<Question>,
    /// The id of the virtual key whose request stored it (none: keyless).
    asker: Option<String>,
}

/// A row of version 2: the same without the asker.
#[derive(Serialize, Deserialize)]
struct RowV2 {
    stored_ms: u64,
    expires_ms: u64,
    cost_micros: u64,
    target: String,
    body: Vec<u8>,
    question: Option<Question>,
}

/// A row of version 1: the same without the question.
#[derive(Serialize, Deserialize)]
struct RowV1 {
    stored_ms: u64,
    expires_ms: u64,
    cost_micros: u64,
    target: String,
    body: Vec<u8>,
}

/// What the semantic cache keeps of a stored answer's question.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Question {
    /// The embedding model's fingerprint (`Embedder::fingerprint`): a
    /// vector of another model is never compared.
    pub model: u64,
    /// The semantic partition (`key::Semantic::partition`).
    pub partition: Key,
    /// The embedding, a unit vector.
    pub vector: Vec<f32>,
}

impl Eq for Question {}

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
    pub question: Option<Question>,
    /// The virtual key that asked.
    pub asker: Option<&'a str>,
}

/// Which answers [`CacheStore::clear`] deletes: those matching every
/// field given (none given: all).
#[derive(Debug, Clone, Copy, Default)]
pub struct Clear<'a> {
    /// `provider/model`: the answers that target gave.
    pub target: Option<&'a str>,
    /// A virtual key id: the answers its requests stored.
    pub asker: Option<&'a str>,
}

/// [`Clear`] as the admin API and the cluster's queries carry it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ClearArgs {
    /// `provider/model`.
    pub model: Option<String>,
    /// A virtual key id.
    pub key: Option<String>,
}

impl ClearArgs {
    pub fn clear(&self) -> Clear<'_> {
        Clear {
            target: self.model.as_deref(),
            asker: self.key.as_deref(),
        }
    }
}

impl Clear<'_> {
    fn all(&self) -> bool {
        self.target.is_none() && self.asker.is_none()
    }

    fn matches(&self, m: &Meta) -> bool {
        self.target.is_none_or(|t| &*m.target == t)
            && self.asker.is_none_or(|a| m.asker.as_deref() == Some(a))
    }
}

struct Meta {
    bytes: u64,
    expires_ms: u64,
    tick: u64,
    target: Arc<str>,
    asker: Option<Arc<str>>,
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

    fn insert(&mut self, key: Key, bytes: u64, row: &Row) {
        self.remove(&key);
        let tick = self.next_tick;
        self.next_tick += 1;
        self.entries.insert(
            key,
            Meta {
                bytes,
                expires_ms: row.expires_ms,
                tick,
                target: row.target.as_str().into(),
                asker: row.asker.as_deref().map(Into::into),
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

/// An answer as it travels to the other nodes of a cluster: its key and
/// its stored row, encoded as this node stores it (format version first,
/// so a peer of another version reads it or refuses it whole).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shared {
    pub key: Key,
    pub row: Vec<u8>,
}

/// Sharing answers with the cluster, since start: rows offered to the
/// outbox and dropped because it was full, rows sent to a peer (one count
/// a peer), and rows received from peers: stored, or refused (unreadable,
/// expired, too large).
#[derive(Debug, Default)]
pub struct Replication {
    pub queued: AtomicU64,
    pub dropped: AtomicU64,
    pub sent: AtomicU64,
    pub received: AtomicU64,
    pub imported: AtomicU64,
    pub refused: AtomicU64,
}

/// [`Replication`], read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ReplicationStats {
    pub queued: u64,
    pub dropped: u64,
    pub sent: u64,
    pub received: u64,
    pub imported: u64,
    pub refused: u64,
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
    /// Hits (of `hits`) found semantically.
    pub semantic_hits: AtomicU64,
    /// Questions the semantic cache could not embed (too long, empty) or
    /// look up: those requests went on with the exact cache only.
    pub semantic_errors: AtomicU64,
    pub replication: Replication,
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
    pub semantic_hits: u64,
    pub semantic_errors: u64,
    /// Questions in the semantic index.
    pub questions: u64,
    /// Whether the questions stored before start are still being indexed
    /// (until then, their answers hit only exactly).
    pub indexing: bool,
    pub replication: ReplicationStats,
}

/// The cache of one node: answers by exact key, and when the semantic
/// cache is on, their questions' embeddings by partition.
pub struct CacheStore {
    store: Store,
    index: Mutex<Index>,
    max_bytes: u64,
    semantic: Option<Semantic>,
    outbox: std::sync::OnceLock<tokio::sync::mpsc::Sender<Shared>>,
    pub counters: Counters,
}

/// The semantic index, and the model whose vectors it holds.
struct Semantic {
    model: u64,
    index: SemanticIndex,
    /// Questions read at open, not yet in the index
    /// ([`CacheStore::index_stored_questions`]).
    unindexed: Mutex<Vec<(Key, Key, Vec<f32>)>>,
    /// Set from open until they are all in.
    indexing: std::sync::atomic::AtomicBool,
}

/// The embedding model of the semantic cache, as the store needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Model {
    /// `Embedder::fingerprint`.
    pub fingerprint: u64,
    /// The vectors' length (`None`: learned from the first).
    pub dims: Option<usize>,
}

impl CacheStore {
    /// The largest entry this cache could hold: its whole size.
    pub fn max_entry_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Reads the index of every stored row: expired and unreadable rows
    /// are deleted, and the least recently stored beyond `max_bytes`. With
    /// a `model`, the semantic index is rebuilt from the rows' questions
    /// (those of another model are left out: their answers still hit
    /// exactly).
    pub fn open(
        store: Store,
        max_bytes: u64,
        now_ms: u64,
        model: Option<Model>,
    ) -> Result<CacheStore, StoreError> {
        let mut rows: Vec<(Key, u64, Row)> = Vec::new();
        let mut questions: HashMap<Key, (Key, Vec<f32>)> = HashMap::new();
        let mut dead: Vec<Vec<u8>> = Vec::new();
        store.scan_prefix(CF_CACHE, &[], |k, v| {
            let key = <[u8; 32]>::try_from(k).ok().map(Key);
            match (key, decode(v)) {
                (Some(key), Ok(mut row)) if row.expires_ms > now_ms => {
                    if let (Some(m), Some(q)) = (model, row.question.take())
                        && q.model == m.fingerprint
                    {
                        questions.insert(key, (q.partition, q.vector));
                    }
                    row.body = Vec::new();
                    rows.push((key, v.len() as u64 + OVERHEAD, row));
                }
                _ => dead.push(k.to_vec()),
            }
        })?;
        rows.sort_by_key(|r| r.2.stored_ms);
        let mut index = Index::default();
        for (key, bytes, row) in &rows {
            index.insert(*key, *bytes, row);
        }
        let evicted = index.over(max_bytes);
        for k in &evicted {
            questions.remove(k);
        }
        dead.extend(evicted.iter().map(|k| k.0.to_vec()));
        if !dead.is_empty() {
            store.write_unlogged(CF_CACHE, [], dead.iter().map(Vec::as_slice))?;
        }
        let semantic = model.map(|m| Semantic {
            model: m.fingerprint,
            index: SemanticIndex::new(m.dims),
            indexing: (!questions.is_empty()).into(),
            unindexed: Mutex::new(
                questions
                    .into_iter()
                    .map(|(key, (partition, v))| (partition, key, v))
                    .collect(),
            ),
        });
        Ok(CacheStore {
            store,
            index: Mutex::new(index),
            max_bytes,
            semantic,
            outbox: Default::default(),
            counters: Counters::default(),
        })
    }

    /// Puts the stored questions [`CacheStore::open`] read into the
    /// semantic index. Until it returns, their answers hit only exactly (a
    /// graph of 100 k questions takes a minute or more to build): the node
    /// calls it on a thread of its own after start, so readiness does not
    /// wait. A second call does nothing.
    pub fn index_stored_questions(&self) {
        let Some(s) = &self.semantic else {
            return;
        };
        let rows = std::mem::take(&mut *s.unindexed.lock().expect("unindexed"));
        if rows.is_empty() {
            return;
        }
        let n = rows.len();
        let started = std::time::Instant::now();
        s.index.extend(rows);
        // Answers evicted or expired meanwhile were forgotten before their
        // questions were in; forget them again.
        let gone: Vec<Key> = {
            let index = self.index();
            s.index
                .keys()
                .into_iter()
                .filter(|k| !index.entries.contains_key(k))
                .collect()
        };
        self.forget(&gone);
        s.indexing.store(false, Ordering::Relaxed);
        tracing::info!(
            questions = n,
            seconds = started.elapsed().as_secs_f64(),
            "semantic cache index built"
        );
    }

    /// Whether stored questions are still waiting for
    /// [`CacheStore::index_stored_questions`].
    pub fn indexing(&self) -> bool {
        self.semantic
            .as_ref()
            .is_some_and(|s| s.indexing.load(Ordering::Relaxed))
    }

    /// The stored question in `partition` nearest to `vector`; `None` when
    /// the semantic cache is off or the partition is empty.
    pub fn nearest(&self, partition: &Key, vector: &[f32]) -> Option<Nearest> {
        let s = self.semantic.as_ref()?;
        s.index.nearest(partition, vector).ok().flatten()
    }

    /// Questions in the semantic index.
    pub fn questions(&self) -> usize {
        self.semantic.as_ref().map_or(0, |s| s.index.len())
    }

    /// Forgets the questions of answers no longer stored.
    fn forget<'a>(&self, keys: impl IntoIterator<Item = &'a Key>) {
        if let Some(s) = &self.semantic {
            for k in keys {
                s.index.remove(k);
            }
        }
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
                    self.forget([key]);
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
            self.forget([key]);
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
    /// recently used past the bound, and offers the row to the cluster
    /// ([`CacheStore::share_to`]). Returns how many were evicted.
    pub fn put(&self, key: &Key, e: &Entry<'_>) -> Result<usize, StoreError> {
        let row = Row {
            stored_ms: e.now_ms,
            expires_ms: e.now_ms.saturating_add(e.ttl_ms),
            cost_micros: e.cost_micros,
            target: e.target.to_string(),
            body: e.body.to_vec(),
            question: e.question.clone(),
            asker: e.asker.map(str::to_string),
        };
        let value = store::encode(ROW_VERSION, &row)?;
        let Some(evicted) = self.insert_row(key, row, &value)? else {
            return Ok(0);
        };
        if let Some(out) = self.outbox.get() {
            let shared = Shared {
                key: *key,
                row: value,
            };
            let r = &self.counters.replication;
            match out.try_send(shared) {
                Ok(()) => r.queued.fetch_add(1, Ordering::Relaxed),
                Err(_) => r.dropped.fetch_add(1, Ordering::Relaxed),
            };
        }
        Ok(evicted)
    }

    /// Stores a row a peer stored and shared ([`Shared`]), under the same
    /// bounds as this node's own: one that does not decode, has expired by
    /// this node's clock or is larger than the whole cache is refused
    /// (`Ok(false)`). Its question enters the semantic index when this
    /// node's model embedded it. It is not shared again.
    pub fn import(&self, shared: &Shared, now_ms: u64) -> Result<bool, StoreError> {
        let r = &self.counters.replication;
        r.received.fetch_add(1, Ordering::Relaxed);
        let row = match decode(&shared.row) {
            Ok(row) if row.expires_ms > now_ms => row,
            _ => {
                r.refused.fetch_add(1, Ordering::Relaxed);
                return Ok(false);
            }
        };
        let stored = self.insert_row(&shared.key, row, &shared.row)?.is_some();
        let event = if stored { &r.imported } else { &r.refused };
        event.fetch_add(1, Ordering::Relaxed);
        Ok(stored)
    }

    /// Writes `value` (the encoding of `row`) under `key`, indexes it and
    /// its question, and evicts past the bound; `None` when it is larger
    /// than the whole cache (not stored).
    fn insert_row(&self, key: &Key, row: Row, value: &[u8]) -> Result<Option<usize>, StoreError> {
        let bytes = value.len() as u64 + OVERHEAD;
        if bytes > self.max_bytes {
            self.counters.too_large.fetch_add(1, Ordering::Relaxed);
            return Ok(None);
        }
        // The row is written before the index names it, so a lookup that
        // finds it in the index finds it on disk (or sees it gone, and misses).
        self.store
            .write_unlogged(CF_CACHE, [(key.as_bytes().as_slice(), value)], [])?;
        let evicted = {
            let mut index = self.index();
            index.insert(*key, bytes, &row);
            index.over(self.max_bytes)
        };
        self.counters.stores.fetch_add(1, Ordering::Relaxed);
        if let Some(s) = &self.semantic {
            match row.question {
                Some(q) if q.model == s.model && !evicted.contains(key) => {
                    if s.index.insert(q.partition, *key, q.vector).is_err() {
                        self.counters.errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                _ => s.index.remove(key),
            }
        }
        self.forget(&evicted);
        if !evicted.is_empty() {
            self.counters
                .evictions
                .fetch_add(evicted.len() as u64, Ordering::Relaxed);
            self.store
                .write_unlogged(CF_CACHE, [], evicted.iter().map(|k| k.0.as_slice()))?;
        }
        Ok(Some(evicted.len()))
    }

    /// From now on, every answer this node stores is also offered to
    /// `outbox` (the cluster's, which sends it to the peers); when it is
    /// full the row is not shared and counted. Set once.
    pub fn share_to(&self, outbox: tokio::sync::mpsc::Sender<Shared>) {
        let _ = self.outbox.set(outbox);
    }

    /// Deletes the stored answers `which` names. Returns how many.
    pub fn clear(&self, which: &Clear<'_>) -> Result<u64, StoreError> {
        let gone: Vec<Key> = {
            let mut index = self.index();
            let keys: Vec<Key> = index
                .entries
                .iter()
                .filter(|(_, m)| which.matches(m))
                .map(|(k, _)| *k)
                .collect();
            for k in &keys {
                index.remove(k);
            }
            keys
        };
        match &self.semantic {
            Some(s) if which.all() => s.index.clear(),
            _ => self.forget(&gone),
        }
        if which.all() {
            self.store
                .delete_range(CF_CACHE, &[0u8; 32], &[0xffu8; 33])?
        } else {
            self.store
                .write_unlogged(CF_CACHE, [], gone.iter().map(|k| k.0.as_slice()))?
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
            semantic_hits: n(&c.semantic_hits),
            semantic_errors: n(&c.semantic_errors),
            questions: self.questions() as u64,
            indexing: self.indexing(),
            replication: ReplicationStats {
                queued: n(&c.replication.queued),
                dropped: n(&c.replication.dropped),
                sent: n(&c.replication.sent),
                received: n(&c.replication.received),
                imported: n(&c.replication.imported),
                refused: n(&c.replication.refused),
            },
        }
    }
}

/// Reads a row of any format: an older one is upgraded one format at a
/// time, each step leaving empty what its format did not hold.
fn decode(v: &[u8]) -> Result<Row, StoreError> {
    let (version, body) = store::versioned(v, ROW_VERSION)?;
    match version {
        1 => Ok(RowV2::from(store::decode::<RowV1>(body)?).into()),
        2 => Ok(store::decode::<RowV2>(body)?.into()),
        _ => store::decode(body),
    }
}

impl From<RowV1> for RowV2 {
    fn from(r: RowV1) -> RowV2 {
        RowV2 {
            stored_ms: r.stored_ms,
            expires_ms: r.expires_ms,
            cost_micros: r.cost_micros,
            target: r.target,
            body: r.body,
            question: None,
        }
    }
}

impl From<RowV2> for Row {
    fn from(r: RowV2) -> Row {
        Row {
            stored_ms: r.stored_ms,
            expires_ms: r.expires_ms,
            cost_micros: r.cost_micros,
            target: r.target,
            body: r.body,
            question: r.question,
            asker: None,
        }
    }
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
            question: None,
            asker: Some("vk_1"),
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
                question: None,
                asker: Some("vk_1".into()),
            },
        )
        .unwrap();
        let each = row.len() as u64 + OVERHEAD;
        {
            let s = CacheStore::open(Store::open(dir.path()).unwrap(), 3 * each, 0, None).unwrap();
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
        let s = CacheStore::open(Store::open(dir.path()).unwrap(), 3 * each, 40, None).unwrap();
        assert_eq!(s.stats().entries, 2);
        assert_eq!(s.get(&key(3), 50).unwrap().unwrap().body.len(), 1000);
        // Reopened later than every expiry: nothing left.
        drop(s);
        let s = CacheStore::open(Store::open(dir.path()).unwrap(), 3 * each, 5000, None).unwrap();
        assert_eq!(s.stats().entries, 0);
    }

    fn unit(v: &[f32]) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / n).collect()
    }

    fn asked(n: u8, v: &[f32], model: u64) -> Entry<'static> {
        Entry {
            question: Some(Question {
                model,
                partition: key(200 + n % 2),
                vector: unit(v),
            }),
            ..entry(b"answer", 0, 1000)
        }
    }

    const MODEL: Model = Model {
        fingerprint: 7,
        dims: Some(3),
    };

    /// Questions are stored with their answers, leave with them, and are
    /// indexed again at start, unless another model embedded them.
    #[test]
    fn questions_live_and_die_with_their_answers_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let p = key(200);
        {
            let s = CacheStore::open(Store::open(dir.path()).unwrap(), 1 << 20, 0, Some(MODEL))
                .unwrap();
            s.put(&key(2), &asked(2, &[1.0, 0.1, 0.0], 7)).unwrap();
            s.put(&key(4), &asked(4, &[0.0, 1.0, 0.0], 7)).unwrap();
            // Partition 201: never found from 200.
            s.put(&key(3), &asked(3, &[1.0, 0.1, 0.0], 7)).unwrap();
            // Another model's vector is stored with its answer, not indexed.
            s.put(&key(6), &asked(6, &[1.0, 0.0, 0.0], 8)).unwrap();
            assert_eq!(s.questions(), 3);
            let n = s.nearest(&p, &unit(&[1.0, 0.0, 0.0])).unwrap();
            assert_eq!(n.key, key(2));
            assert!(n.similarity > 0.99 && n.similarity < 1.0, "{n:?}");
            assert_eq!(
                s.nearest(&key(201), &unit(&[0.0, 1.0, 0.0])).unwrap().key,
                key(3)
            );
            s.store.flush().unwrap();
        }
        let s =
            CacheStore::open(Store::open(dir.path()).unwrap(), 1 << 20, 10, Some(MODEL)).unwrap();
        // Until the stored questions are indexed, they are not found; an
        // answer stored meanwhile is, and stays found after.
        assert!(s.indexing() && s.stats().indexing);
        assert_eq!(s.questions(), 0);
        assert_eq!(s.nearest(&p, &unit(&[0.1, 1.0, 0.0])), None);
        s.put(&key(5), &asked(5, &[0.0, 0.0, 1.0], 7)).unwrap();
        s.index_stored_questions();
        assert!(!s.indexing());
        assert_eq!(s.questions(), 4);
        assert_eq!(
            s.nearest(&key(201), &unit(&[0.0, 0.1, 1.0])).unwrap().key,
            key(5)
        );
        assert_eq!(s.nearest(&p, &unit(&[0.1, 1.0, 0.0])).unwrap().key, key(4));
        // Expired: the question goes with the answer.
        assert!(s.get(&key(4), 1000).unwrap().is_none());
        assert_eq!(s.nearest(&p, &unit(&[0.1, 1.0, 0.0])).unwrap().key, key(2));
        s.clear(&Clear {
            target: Some("mock/m"),
            ..Clear::default()
        })
        .unwrap();
        assert_eq!(s.questions(), 0);
        assert_eq!(s.nearest(&p, &unit(&[1.0, 0.0, 0.0])), None);
        s.index_stored_questions();
        assert_eq!(s.questions(), 0);
        drop(s);
        // Another model at start: the stored vectors are not compared.
        let s = CacheStore::open(
            Store::open(dir.path()).unwrap(),
            1 << 20,
            10,
            Some(Model {
                fingerprint: 9,
                ..MODEL
            }),
        )
        .unwrap();
        s.index_stored_questions();
        assert_eq!(s.questions(), 0);
        // Without the semantic cache, nothing is indexed.
        drop(s);
        let s = CacheStore::open(Store::open(dir.path()).unwrap(), 1 << 20, 10, None).unwrap();
        assert_eq!(s.nearest(&p, &unit(&[1.0, 0.0, 0.0])), None);
    }

    /// What one node stores reaches its outbox; another node imports it
    /// and finds it exactly and by its question; expired or unreadable rows
    /// are refused, and nothing imported is offered again.
    #[test]
    fn a_shared_row_is_imported_whole_and_not_shared_again() {
        let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let a =
            CacheStore::open(Store::open(a_dir.path()).unwrap(), 1 << 20, 0, Some(MODEL)).unwrap();
        let b =
            CacheStore::open(Store::open(b_dir.path()).unwrap(), 1 << 20, 0, Some(MODEL)).unwrap();
        let (a_tx, mut a_rx) = tokio::sync::mpsc::channel(1);
        let (b_tx, mut b_rx) = tokio::sync::mpsc::channel(1);
        a.share_to(a_tx);
        b.share_to(b_tx);
        a.put(&key(2), &asked(2, &[1.0, 0.0, 0.0], 7)).unwrap();
        // The outbox holds one: a second answer is dropped, and counted.
        a.put(&key(4), &asked(4, &[0.0, 1.0, 0.0], 7)).unwrap();
        let shared = a_rx.try_recv().unwrap();
        assert!(a_rx.try_recv().is_err());
        let r = a.stats().replication;
        assert_eq!((r.queued, r.dropped), (1, 1));

        assert!(b.import(&shared, 10).unwrap());
        let hit = b.get(&key(2), 10).unwrap().unwrap();
        assert_eq!(hit, a.get(&key(2), 10).unwrap().unwrap());
        assert_eq!(
            b.nearest(&key(200), &unit(&[1.0, 0.1, 0.0])).unwrap().key,
            key(2)
        );
        assert!(
            b_rx.try_recv().is_err(),
            "an imported row is not shared again"
        );
        // Expired by the importer's clock, or not a row: refused.
        assert!(!b.import(&shared, 1000).unwrap());
        let garbage = Shared {
            key: key(9),
            row: vec![ROW_VERSION, 0xff, 0xff],
        };
        assert!(!b.import(&garbage, 10).unwrap());
        assert!(b.get(&key(9), 10).unwrap().is_none());
        let r = b.stats().replication;
        assert_eq!((r.received, r.imported, r.refused), (3, 1, 2));
    }

    /// Evicted answers take their questions along.
    #[test]
    fn an_evicted_answer_is_not_found_semantically() {
        let dir = tempfile::tempdir().unwrap();
        let probe =
            CacheStore::open(Store::open(dir.path()).unwrap(), 1 << 20, 0, Some(MODEL)).unwrap();
        probe.put(&key(1), &asked(1, &[1.0, 0.0, 0.0], 7)).unwrap();
        let each = probe.stats().bytes;
        probe.clear(&Clear::default()).unwrap();
        drop(probe);
        let s =
            CacheStore::open(Store::open(dir.path()).unwrap(), 2 * each, 0, Some(MODEL)).unwrap();
        s.put(&key(2), &asked(2, &[1.0, 0.0, 0.0], 7)).unwrap();
        s.put(&key(4), &asked(4, &[0.0, 1.0, 0.0], 7)).unwrap();
        s.put(&key(6), &asked(6, &[0.0, 0.0, 1.0], 7)).unwrap();
        assert_eq!(s.stats().evictions, 1);
        assert_eq!(s.questions(), 2);
        assert_ne!(
            s.nearest(&key(200), &unit(&[1.0, 0.0, 0.0])).unwrap().key,
            key(2)
        );
    }

    /// Rows of every older format are still read, with what they lack
    /// left empty.
    #[test]
    fn rows_of_older_versions_are_read() {
        let question = Some(Question {
            model: 7,
            partition: key(200),
            vector: vec![1.0, 0.0],
        });
        let v2 = store::encode(
            2,
            &RowV2 {
                stored_ms: 1,
                expires_ms: 2,
                cost_micros: 3,
                target: "mock/m".into(),
                body: b"a".to_vec(),
                question: question.clone(),
            },
        )
        .unwrap();
        let row = decode(&v2).unwrap();
        assert_eq!((row.question, row.asker), (question, None));
        assert_eq!((row.stored_ms, row.expires_ms, row.cost_micros), (1, 2, 3));
        let v1 = store::encode(
            1,
            &RowV1 {
                stored_ms: 4,
                expires_ms: 5,
                cost_micros: 6,
                target: "mock/m".into(),
                body: b"b".to_vec(),
            },
        )
        .unwrap();
        let row = decode(&v1).unwrap();
        assert_eq!((row.question, row.asker), (None, None));
        assert_eq!(
            (row.stored_ms, row.cost_micros, row.body),
            (4, 6, b"b".to_vec())
        );
    }

    #[test]
    fn clearing_by_target_or_asker_keeps_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let s = CacheStore::open(Store::open(dir.path()).unwrap(), 1 << 20, 0, None).unwrap();
        s.put(&key(1), &entry(b"a", 0, 1000)).unwrap();
        let other = Entry {
            target: "mock/other",
            ..entry(b"b", 0, 1000)
        };
        s.put(&key(2), &other).unwrap();
        let keyless = Entry {
            asker: None,
            ..entry(b"c", 0, 1000)
        };
        s.put(&key(3), &keyless).unwrap();
        let by = |target, asker| Clear { target, asker };
        assert_eq!(s.clear(&by(Some("mock/other"), Some("vk_2"))).unwrap(), 0);
        assert_eq!(s.clear(&by(Some("mock/other"), None)).unwrap(), 1);
        assert!(s.get(&key(2), 1).unwrap().is_none());
        assert!(s.get(&key(1), 1).unwrap().is_some());
        // Stored by vk_1, after a reopen too; the keyless answer stays.
        s.store.flush().unwrap();
        let s = CacheStore::open(s.store.clone(), 1 << 20, 0, None).unwrap();
        assert_eq!(s.clear(&by(None, Some("vk_1"))).unwrap(), 1);
        assert!(s.get(&key(1), 1).unwrap().is_none());
        assert!(s.get(&key(3), 1).unwrap().is_some());
        assert_eq!(s.clear(&Clear::default()).unwrap(), 1);
        assert!(s.get(&key(1), 1).unwrap().is_none());
        assert_eq!(s.stats().bytes, 0);
        // An answer larger than the whole cache is not stored.
        let small = CacheStore::open(s.store.clone(), 10, 0, None).unwrap();
        assert_eq!(small.put(&key(3), &entry(b"too big", 0, 1000)).unwrap(), 0);
        assert_eq!(small.stats().too_large, 1);
    }
}
