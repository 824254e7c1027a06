//! Group commit of spend.
//!
//! A governed request writes two rows: its journal row before it is sent and
//! its settled counters (with the row's removal) when it ends. Synced one by
//! one, those two disk flushes cost a governed request far more than all the
//! rest of its handling. In groups, each write goes to RocksDB's
//! write-ahead log only — once it returns it is in the kernel's page cache,
//! so a killed process (`kill -9`, an OOM kill, a panic) loses nothing — and
//! one thread syncs the log every `server.spend_sync_interval` for every
//! request written meanwhile.
//!
//! What a power loss or a kernel crash may lose is what was written since
//! the last sync began: the journal rows and settlements of at most one
//! interval (plus the sync's own duration). Peers hear of settled spend only
//! after the sync that stored it ([`SpendSync::publish_after`], and
//! `Governance::changes_for` syncs before it answers), so a node that lost
//! its last interval never holds counters behind what its peers hold of it:
//! its next spend cannot hide under values peers already have.

use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

use super::ChangeFeed;
use crate::state::Change;
use crate::store::Store;

/// Settled changes held back past this many are dropped unpublished while
/// syncs fail: peers learn those counters by anti-entropy once syncs work.
const MAX_PENDING: usize = 1 << 16;
/// After a sync fails (a full or failing disk), the next is tried this much
/// later rather than every interval.
const RETRY: Duration = Duration::from_secs(1);

/// The thread that syncs spend in groups, and the changes waiting for it.
pub struct SpendSync {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct Shared {
    store: Store,
    interval: Duration,
    feed: OnceLock<ChangeFeed>,
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Default)]
struct State {
    /// Something was logged since the last sync began.
    dirty: bool,
    /// Changes of logged spend, to send to peers once a sync covers them.
    pending: Vec<Change>,
    stop: bool,
}

impl SpendSync {
    /// Starts the thread that syncs `store`'s log every `interval` while
    /// spend is being written.
    pub fn start(store: Store, interval: Duration) -> std::io::Result<SpendSync> {
        let shared = Arc::new(Shared {
            store,
            interval,
            feed: OnceLock::new(),
            state: Mutex::default(),
            wake: Condvar::new(),
        });
        let thread = std::thread::Builder::new()
            .name("spend-sync".into())
            .spawn({
                let shared = shared.clone();
                move || run(&shared)
            })?;
        Ok(SpendSync {
            shared,
            thread: Some(thread),
        })
    }

    /// Where published changes go (set once, with the governance feed).
    pub fn set_feed(&self, feed: ChangeFeed) {
        let _ = self.shared.feed.set(feed);
    }

    /// Notes a write to the log (a journal row) that the next sync covers.
    pub fn logged(&self) {
        self.push(Vec::new());
    }

    /// `changes` describe spend already written to the log: they go to
    /// peers after the next sync that succeeds.
    pub fn publish_after(&self, changes: Vec<Change>) {
        self.push(changes);
    }

    /// Syncs the log now: every write that returned before is durable.
    pub fn sync_now(&self) -> Result<(), crate::store::StoreError> {
        self.shared.store.sync_wal()
    }

    fn push(&self, changes: Vec<Change>) {
        let mut state = self.shared.state.lock().expect("spend sync lock");
        if state.pending.len() + changes.len() <= MAX_PENDING {
            state.pending.extend(changes);
        }
        if !state.dirty {
            state.dirty = true;
            self.shared.wake.notify_one();
        }
    }
}

impl Drop for SpendSync {
    /// Syncs what is left and publishes it, then ends the thread.
    fn drop(&mut self) {
        self.shared.state.lock().expect("spend sync lock").stop = true;
        self.shared.wake.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(shared: &Shared) {
    let mut failing = false;
    let mut state = shared.state.lock().expect("spend sync lock");
    loop {
        while !state.dirty && !state.stop {
            state = shared.wake.wait(state).expect("spend sync lock");
        }
        if !state.dirty {
            return;
        }
        let stopping = state.stop;
        drop(state);
        if !stopping {
            // Gathers the interval's writers into this sync.
            std::thread::sleep(if failing { RETRY } else { shared.interval });
        }
        state = shared.state.lock().expect("spend sync lock");
        state.dirty = false;
        let group = std::mem::take(&mut state.pending);
        drop(state);
        // Every change in `group` was logged before it was pushed, so before
        // this sync begins.
        let synced = shared.store.sync_wal();
        state = shared.state.lock().expect("spend sync lock");
        match synced {
            Ok(()) => {
                if std::mem::take(&mut failing) {
                    tracing::info!("spend is synced to disk again");
                }
                if let Some(feed) = shared.feed.get() {
                    for c in group {
                        // A closed feed means the cluster layer stopped.
                        let _ = feed.send(c);
                    }
                }
            }
            Err(e) => {
                if !std::mem::replace(&mut failing, true) {
                    tracing::error!(error = %e, "cannot sync spend to disk; retrying every second");
                }
                if stopping {
                    return;
                }
                let later = std::mem::replace(&mut state.pending, group);
                state.pending.extend(later);
                state.pending.truncate(MAX_PENDING);
                state.dirty = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(key: &str) -> Change {
        let mut c = crate::state::counter::GCounter::default();
        c.add(1, 5);
        Change::Counter {
            key: key.into(),
            counter: c,
        }
    }

    #[test]
    fn every_change_pushed_is_published_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let sync = SpendSync::start(store.clone(), Duration::from_millis(1)).unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        sync.set_feed(tx);
        store
            .write_logged(crate::store::CF_STATE, [(&b"k"[..], &b"v"[..])], [])
            .unwrap();
        sync.publish_after(vec![change("a"), change("b")]);
        sync.logged();
        sync.publish_after(vec![change("c")]);
        drop(sync);
        let mut got = Vec::new();
        while let Ok(Change::Counter { key, .. }) = rx.try_recv() {
            got.push(key);
        }
        assert_eq!(got, ["a", "b", "c"]);
    }

    #[test]
    fn a_store_left_by_the_thread_reopens() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            let sync = SpendSync::start(store.clone(), Duration::from_millis(50)).unwrap();
            store
                .write_logged(crate::store::CF_STATE, [(&b"k"[..], &b"v"[..])], [])
                .unwrap();
            sync.logged();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(
            store.get(crate::store::CF_STATE, b"k").unwrap().as_deref(),
            Some(&b"v"[..])
        );
    }
}
