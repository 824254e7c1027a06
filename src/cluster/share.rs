//! Sharing the response cache: every answer a node stores is sent to its
//! live peers, so that a question asked through one node is a hit on every
//! other (`docs/cache.md`, "Across the cluster").
//!
//! The cache's outbox ([`OUTBOX`] rows) is drained into batches of at most
//! [`MAX_CACHE_BATCH`] bytes, each sent to every live peer that speaks wire
//! version 2 on a unidirectional stream of its own at a priority below
//! governance's, so a burst of answers never delays a budget or a key.
//! Every bound drops instead of waiting: a full outbox drops the row, and
//! a peer with [`IN_FLIGHT`] batches still on their way gets no more until
//! they land. A dropped or lost row costs a miss on some node, never a
//! wrong answer; nothing repairs it later (a cache is not anti-entropy's
//! business), and a node that was down misses what was stored meanwhile.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use super::proto::{Body, Envelope, MAX_CACHE_BATCH};
use super::transport::Transport;
use super::{Cluster, now_ms};
use crate::cache::store::Shared;
use crate::state::NodeId;

/// Rows the outbox holds before it drops.
pub const OUTBOX: usize = 4096;

/// Batches one peer may have on their way at once.
pub const IN_FLIGHT: usize = 8;

/// The wire version that knows `CacheEntries`.
const CACHE_WIRE: u16 = 2;

/// Priority of cache streams on a connection: below governance's (0).
const PRIORITY: i32 = -1;

/// Batches on their way, by peer.
#[derive(Default)]
pub(super) struct InFlight(Mutex<HashMap<NodeId, usize>>);

impl InFlight {
    fn take(&self, peer: NodeId) -> bool {
        let mut m = self.0.lock().expect("in flight");
        let n = m.entry(peer).or_default();
        if *n >= IN_FLIGHT {
            return false;
        }
        *n += 1;
        true
    }

    fn land(&self, peer: NodeId) {
        if let Some(n) = self.0.lock().expect("in flight").get_mut(&peer) {
            *n = n.saturating_sub(1);
        }
    }
}

/// Takes from `outbox` what is there, up to about [`MAX_CACHE_BATCH`] bytes.
fn batch(first: Shared, outbox: &mut mpsc::Receiver<Shared>) -> Vec<Shared> {
    let mut bytes = first.row.len();
    let mut rows = vec![first];
    while bytes < MAX_CACHE_BATCH {
        match outbox.try_recv() {
            Ok(s) => {
                bytes += s.row.len();
                rows.push(s);
            }
            Err(_) => break,
        }
    }
    rows
}

impl Cluster {
    /// Sends what the cache stores to the peers until `cancel`.
    pub(super) async fn share_cache(
        self: Arc<Self>,
        mut outbox: mpsc::Receiver<Shared>,
        cancel: tokio_util::sync::CancellationToken,
    ) {
        while let Some(Some(first)) = cancel.run_until_cancelled(outbox.recv()).await {
            let rows = batch(first, &mut outbox);
            let n = rows.len() as u64;
            let env = Arc::new(Envelope::new(self.me.node, Body::CacheEntries(rows)));
            for peer in self.alive() {
                if peer.wire.1 < CACHE_WIRE {
                    continue;
                }
                if !self.cache_in_flight.take(peer.node) {
                    self.cache
                        .counters
                        .replication
                        .dropped
                        .fetch_add(n, Ordering::Relaxed);
                    continue;
                }
                let (cl, env) = (self.clone(), env.clone());
                tokio::spawn(async move {
                    let sent = match cl.connect(peer.addr).await {
                        Ok(conn) => Transport::send_uni_at(&conn, &env, PRIORITY).await,
                        Err(e) => Err(e),
                    };
                    cl.cache_in_flight.land(peer.node);
                    match sent {
                        Ok(bytes) => {
                            cl.metrics.sent("cache_entries", bytes);
                            let r = &cl.cache.counters.replication;
                            r.sent.fetch_add(n, Ordering::Relaxed);
                        }
                        Err(e) => {
                            cl.metrics.errors.with_label_values(&["send"]).inc();
                            tracing::debug!(peer = %peer.addr, error = %e, "cache rows not sent");
                        }
                    }
                });
            }
        }
    }

    /// Stores a peer's shared answers (on a blocking thread: it writes
    /// RocksDB).
    pub(super) async fn import_cache(&self, rows: Vec<Shared>) {
        let cache = self.cache.clone();
        let done = tokio::task::spawn_blocking(move || {
            let now = now_ms();
            for row in &rows {
                if let Err(e) = cache.import(row, now) {
                    cache.counters.errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %e, "storing a peer's cached answer failed");
                }
            }
        });
        if let Err(e) = done.await {
            tracing::error!(error = %e, "importing a peer's cached answers panicked");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::key::Key;

    fn row(n: u8, len: usize) -> Shared {
        Shared {
            key: Key([n; 32]),
            row: vec![n; len],
        }
    }

    #[test]
    fn a_batch_takes_what_is_waiting_up_to_its_size() {
        let (tx, mut rx) = mpsc::channel(16);
        for n in 0..5 {
            tx.try_send(row(n, MAX_CACHE_BATCH / 2)).unwrap();
        }
        let first = rx.try_recv().unwrap();
        // The first and one more fill a batch; the rest wait.
        assert_eq!(batch(first, &mut rx).len(), 2);
        let first = rx.try_recv().unwrap();
        assert_eq!(batch(first, &mut rx).len(), 2);
        let first = rx.try_recv().unwrap();
        assert_eq!(batch(first, &mut rx).len(), 1);
        // A row larger than a batch goes alone.
        tx.try_send(row(9, MAX_CACHE_BATCH * 2)).unwrap();
        tx.try_send(row(10, 1)).unwrap();
        let first = rx.try_recv().unwrap();
        assert_eq!(batch(first, &mut rx).len(), 1);
    }

    #[test]
    fn a_peer_gets_no_more_than_its_batches_in_flight() {
        let f = InFlight::default();
        for _ in 0..IN_FLIGHT {
            assert!(f.take(1));
        }
        assert!(!f.take(1));
        assert!(f.take(2), "another peer is not held back");
        f.land(1);
        assert!(f.take(1));
    }
}
