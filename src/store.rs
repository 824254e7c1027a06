//! Node-local persistence on RocksDB.
//!
//! One database per node under `data_dir/db`, one column family per kind of
//! data. Values carry a one-byte format version in front of their postcard
//! encoding ([`encode`], [`decode`]) so later releases can migrate old rows
//! instead of failing on them. This module knows nothing about what it stores.
//!
//! A full or failing disk: once a write fails (the write-ahead log or a
//! flush could not be written), RocksDB refuses every write until it has
//! resumed. For "no space" it resumes by itself (its `SstFileManager` checks
//! the free space and retries every 5 s); for a retryable I/O error it
//! retries up to `max_bgerror_resume_count` times, every
//! `bgerror_resume_retry_interval`. [`Store::health`] says whether the last
//! write failed, and [`Store::probe`] writes one small row durably, so a
//! caller can find out when writes are taken again (see `node`).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rocksdb::{ColumnFamilyDescriptor, DBWithThreadMode, IteratorMode, MultiThreaded, Options};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Column families, created on open.
pub const CF_REQUEST_LOGS: &str = "request_logs";
pub const CF_META: &str = "meta";
/// One row per MCP tool execution, keyed like the request log.
pub const CF_TOOL_LOGS: &str = "tool_logs";
/// Replicated state (governance objects), keyed `table \0 id`.
pub const CF_STATE: &str = "state";
/// The exact response cache (`cache::store`), keyed by the 32-byte cache key.
pub const CF_CACHE: &str = "response_cache";
/// The audit log (`observability::audit`), keyed `node ‖ seq`.
pub const CF_AUDIT: &str = "audit";
const FAMILIES: &[&str] = &[
    CF_REQUEST_LOGS,
    CF_META,
    CF_STATE,
    CF_TOOL_LOGS,
    CF_CACHE,
    CF_AUDIT,
];

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("rocksdb: {0}")]
    Db(#[from] rocksdb::Error),
    #[error("encode: {0}")]
    Encode(postcard::Error),
    #[error("stored value has format version {found}, this build reads up to {supported}")]
    UnknownVersion { found: u8, supported: u8 },
    #[error("stored value is corrupt: {0}")]
    Decode(postcard::Error),
    #[error("empty stored value")]
    Empty,
}

type Db = DBWithThreadMode<MultiThreaded>;

/// A shared handle to the node's database.
#[derive(Clone)]
pub struct Store {
    db: Arc<Db>,
    health: Arc<Health>,
}

/// What the writes so far say about the disk.
#[derive(Default)]
struct Health {
    /// The last write failed.
    failing: AtomicBool,
    write_errors: AtomicU64,
    /// Times a write succeeded after one had failed.
    recoveries: AtomicU64,
    probes: AtomicU64,
}

/// Counters for metrics (`tollgate_store_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreHealth {
    /// False from a failed write until a write succeeds again.
    pub writable: bool,
    pub write_errors: u64,
    pub recoveries: u64,
    pub probes: u64,
}

/// The row [`Store::probe`] writes and deletes.
const PROBE_KEY: &[u8] = b"probe\0store";
/// The row [`Store::sync_wal`] writes (empty; nothing reads it).
const SYNC_KEY: &[u8] = b"sync\0wal";

impl Store {
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        // A gateway node's data is small; keep memtables small so the process
        // stays small (the node's RSS budget is tens of MiB, not hundreds).
        opts.set_write_buffer_size(4 * 1024 * 1024);
        opts.set_max_write_buffer_number(2);
        opts.set_keep_log_file_num(4);
        opts.set_max_total_wal_size(32 * 1024 * 1024);
        opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
        // RocksDB's own resume after a retryable write error (its defaults,
        // stated here because `node` relies on them): retry for ever, once a
        // second. "No space" is resumed by its default `SstFileManager`.
        let opts = opts.get_options_from_string(
            "max_bgerror_resume_count=2147483647;bgerror_resume_retry_interval=1000000",
        )?;
        // The default family too, though nothing is written to it: RocksDB
        // keeps the largest family's write buffer free on disk before it
        // resumes writes after "no space", and the default family's own
        // default is 64 MiB (a disk with less free than that would never be
        // written again without a restart).
        let families =
            std::iter::once(rocksdb::DEFAULT_COLUMN_FAMILY_NAME).chain(FAMILIES.iter().copied());
        let cfs = families.map(|name| {
            let mut o = Options::default();
            o.set_write_buffer_size(4 * 1024 * 1024);
            o.set_max_write_buffer_number(2);
            o.set_compression_type(rocksdb::DBCompressionType::Lz4);
            ColumnFamilyDescriptor::new(name, o)
        });
        let db = Db::open_cf_descriptors(&opts, dir, cfs)?;
        Ok(Store {
            db: Arc::new(db),
            health: Arc::default(),
        })
    }

    /// Counts a write's outcome: a failure marks the store failing until a
    /// write succeeds again.
    fn wrote<T>(&self, r: Result<T, rocksdb::Error>) -> Result<T, StoreError> {
        let h = &self.health;
        match r {
            Ok(v) => {
                if h.failing.swap(false, Ordering::SeqCst) {
                    h.recoveries.fetch_add(1, Ordering::Relaxed);
                    tracing::info!("the database takes writes again");
                }
                Ok(v)
            }
            Err(e) => {
                h.write_errors.fetch_add(1, Ordering::Relaxed);
                if !h.failing.swap(true, Ordering::SeqCst) {
                    tracing::error!(error = %e, "the database refuses writes (full or failing disk?)");
                }
                Err(e.into())
            }
        }
    }

    pub fn health(&self) -> StoreHealth {
        let h = &self.health;
        StoreHealth {
            writable: !h.failing.load(Ordering::SeqCst),
            write_errors: h.write_errors.load(Ordering::Relaxed),
            recoveries: h.recoveries.load(Ordering::Relaxed),
            probes: h.probes.load(Ordering::Relaxed),
        }
    }

    /// Writes one small row and deletes it, durably: whether the disk takes
    /// writes now. Only a `meta` row nobody reads, so a crash between the
    /// two writes leaves nothing that means anything.
    pub fn probe(&self) -> Result<(), StoreError> {
        self.health.probes.fetch_add(1, Ordering::Relaxed);
        self.write_durable(CF_META, [(PROBE_KEY, &[0u8][..])], [])?;
        self.write_durable(CF_META, [], [PROBE_KEY])
    }

    fn cf(&self, name: &str) -> Arc<rocksdb::BoundColumnFamily<'_>> {
        self.db
            .cf_handle(name)
            .unwrap_or_else(|| panic!("column family {name} is created on open"))
    }

    /// Writes many rows of one column family atomically.
    pub fn put_batch<'a>(
        &self,
        family: &str,
        rows: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
    ) -> Result<(), StoreError> {
        self.write_logged(family, rows, [])
    }

    /// Writes `puts` and `deletes` of one column family in one batch, with
    /// `opts`.
    fn write_with<'a>(
        &self,
        family: &str,
        puts: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
        deletes: impl IntoIterator<Item = &'a [u8]>,
        opts: &rocksdb::WriteOptions,
    ) -> Result<(), StoreError> {
        let cf = self.cf(family);
        let mut batch = rocksdb::WriteBatch::default();
        for (k, v) in puts {
            batch.put_cf(&cf, k, v);
        }
        for k in deletes {
            batch.delete_cf(&cf, k);
        }
        self.wrote(self.db.write_opt(batch, opts))
    }

    /// Writes `puts` and `deletes` of one column family atomically, and
    /// returns only once they are on stable storage (the WAL is synced):
    /// for records that others will act on, or that a crash must not lose.
    pub fn write_durable<'a>(
        &self,
        family: &str,
        puts: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
        deletes: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<(), StoreError> {
        let mut opts = rocksdb::WriteOptions::default();
        opts.set_sync(true);
        self.write_with(family, puts, deletes, &opts)
    }

    /// Writes `puts` and `deletes` of one column family atomically to the
    /// write-ahead log without waiting for the disk: once this returns the
    /// write is in the kernel's page cache, so a killed process loses
    /// nothing, while a power loss may lose what no later
    /// [`Store::sync_wal`] or durable write covered.
    pub fn write_logged<'a>(
        &self,
        family: &str,
        puts: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
        deletes: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<(), StoreError> {
        self.write_with(family, puts, deletes, &rocksdb::WriteOptions::default())
    }

    /// Syncs the write-ahead log to stable storage: every write that
    /// returned before this began is durable once it returns.
    ///
    /// By a synced write of one `meta` row nobody reads, not by RocksDB's
    /// `FlushWAL`: a synced write syncs the log up to itself, and while the
    /// database holds a background error (a full disk) it fails at once
    /// with that error. `FlushWAL` instead syncs the log file writer that
    /// failed, and its "Writer has previous error" replaces the no-space
    /// error with one RocksDB does not recover from by itself (seen in
    /// `tests/disk.rs`: the node never took writes again).
    pub fn sync_wal(&self) -> Result<(), StoreError> {
        self.write_durable(CF_META, [(SYNC_KEY, &[][..])], [])
    }

    /// Writes `puts` and `deletes` of one column family atomically without
    /// the write-ahead log: nothing is synced and the WAL that durable
    /// writes sync does not grow. For data a crash may lose (it is flushed
    /// at graceful shutdown and whenever its memtable fills): the cache.
    pub fn write_unlogged<'a>(
        &self,
        family: &str,
        puts: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
        deletes: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<(), StoreError> {
        let mut opts = rocksdb::WriteOptions::default();
        opts.disable_wal(true);
        self.write_with(family, puts, deletes, &opts)
    }

    pub fn put(&self, family: &str, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.wrote(self.db.put_cf(&self.cf(family), key, value))
    }

    pub fn get(&self, family: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get_cf(&self.cf(family), key)?)
    }

    /// Visits rows in descending key order starting at or below `from`
    /// (`None`: from the end) until `visit` returns false.
    pub fn scan_rev(
        &self,
        family: &str,
        from: Option<&[u8]>,
        mut visit: impl FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StoreError> {
        let cf = self.cf(family);
        let mode = match from {
            Some(k) => IteratorMode::From(k, rocksdb::Direction::Reverse),
            None => IteratorMode::End,
        };
        for item in self.db.iterator_cf(&cf, mode) {
            let (k, v) = item?;
            if !visit(&k, &v) {
                break;
            }
        }
        Ok(())
    }

    /// Visits rows whose key starts with `prefix`, in ascending order.
    pub fn scan_prefix(
        &self,
        family: &str,
        prefix: &[u8],
        mut visit: impl FnMut(&[u8], &[u8]),
    ) -> Result<(), StoreError> {
        let cf = self.cf(family);
        let mode = IteratorMode::From(prefix, rocksdb::Direction::Forward);
        for item in self.db.iterator_cf(&cf, mode) {
            let (k, v) = item?;
            if !k.starts_with(prefix) {
                break;
            }
            visit(&k, &v);
        }
        Ok(())
    }

    /// Every row under `prefix`, decoded as `T` of at most format `version`;
    /// the first row that cannot be read fails the whole load (a node must not
    /// start on partial state).
    pub fn load_prefix<T: DeserializeOwned>(
        &self,
        family: &str,
        prefix: &[u8],
        version: u8,
    ) -> Result<Vec<(Vec<u8>, T)>, StoreError> {
        let mut rows = Vec::new();
        let mut failure = None;
        self.scan_prefix(family, prefix, |k, v| {
            if failure.is_some() {
                return;
            }
            match versioned(v, version).and_then(|(_, body)| decode::<T>(body)) {
                Ok(row) => rows.push((k[prefix.len()..].to_vec(), row)),
                Err(e) => failure = Some(e),
            }
        })?;
        match failure {
            Some(e) => Err(e),
            None => Ok(rows),
        }
    }

    /// Deletes every row with key in `[from, to)`.
    pub fn delete_range(&self, family: &str, from: &[u8], to: &[u8]) -> Result<(), StoreError> {
        let cf = self.cf(family);
        let mut batch = rocksdb::WriteBatch::default();
        batch.delete_range_cf(&cf, from, to);
        self.wrote(self.db.write(batch))
    }

    /// About how many bytes `family` takes: its SST files (compressed, as
    /// on disk) and its memtables.
    pub fn approximate_bytes(&self, family: &str) -> Result<u64, StoreError> {
        let cf = self.cf(family);
        let prop = |name: &str| self.db.property_int_value_cf(&cf, name);
        let sst = prop("rocksdb.total-sst-files-size")?.unwrap_or(0);
        let mem = prop("rocksdb.cur-size-all-mem-tables")?.unwrap_or(0);
        Ok(sst.saturating_add(mem))
    }

    /// The first key of `family`, if it has any.
    pub fn first_key(&self, family: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let cf = self.cf(family);
        match self.db.iterator_cf(&cf, IteratorMode::Start).next() {
            Some(item) => Ok(Some(item?.0.to_vec())),
            None => Ok(None),
        }
    }

    /// Deletes `[from, to)` and compacts that range at once, so the space is
    /// given back now rather than at some later compaction.
    pub fn delete_range_now(&self, family: &str, from: &[u8], to: &[u8]) -> Result<(), StoreError> {
        self.delete_range(family, from, to)?;
        let cf = self.cf(family);
        self.wrote(self.db.flush_cf(&cf))?;
        self.db.compact_range_cf(&cf, Some(from), Some(to));
        Ok(())
    }

    /// Flushes memtables and the WAL to disk (graceful shutdown).
    pub fn flush(&self) -> Result<(), StoreError> {
        for name in FAMILIES {
            self.wrote(self.db.flush_cf(&self.cf(name)))?;
        }
        self.wrote(self.db.flush_wal(true))
    }
}

/// A value prefixed with its format version.
pub fn encode<T: Serialize>(version: u8, value: &T) -> Result<Vec<u8>, StoreError> {
    let mut out = vec![version];
    let body = postcard::to_stdvec(value).map_err(StoreError::Encode)?;
    out.extend_from_slice(&body);
    Ok(out)
}

/// Splits a stored value into its version and body; the caller migrates by version.
pub fn versioned(bytes: &[u8], supported: u8) -> Result<(u8, &[u8]), StoreError> {
    let (&version, body) = bytes.split_first().ok_or(StoreError::Empty)?;
    if version == 0 || version > supported {
        return Err(StoreError::UnknownVersion {
            found: version,
            supported,
        });
    }
    Ok((version, body))
}

/// Decodes a body of a known version.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, StoreError> {
    postcard::from_bytes(body).map_err(StoreError::Decode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_through_a_reopened_database() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = Store::open(dir.path()).unwrap();
            let v = encode(1, &("a".to_string(), 7u32)).unwrap();
            s.put(CF_META, b"k1", &v).unwrap();
            s.put(CF_META, b"k2", &v).unwrap();
            s.flush().unwrap();
        }
        let s = Store::open(dir.path()).unwrap();
        let raw = s.get(CF_META, b"k1").unwrap().unwrap();
        let (ver, body) = versioned(&raw, 1).unwrap();
        assert_eq!(ver, 1);
        assert_eq!(decode::<(String, u32)>(body).unwrap(), ("a".to_string(), 7));
        let mut keys = vec![];
        s.scan_rev(CF_META, None, |k, _| {
            keys.push(k.to_vec());
            true
        })
        .unwrap();
        assert_eq!(keys, vec![b"k2".to_vec(), b"k1".to_vec()]);
    }

    #[test]
    fn unknown_versions_are_refused() {
        assert!(matches!(
            versioned(&[9, 1, 2], 1),
            Err(StoreError::UnknownVersion {
                found: 9,
                supported: 1
            })
        ));
        assert!(matches!(versioned(&[], 1), Err(StoreError::Empty)));
    }
}
