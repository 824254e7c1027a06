//! Leases: how the allowance of a node that crashed or was cut off returns
//! to the cluster before its window ends, without consensus and without
//! trusting clocks.
//!
//! Every node that holds allowance in a window (the budget's home holds the
//! whole limit) takes a *lease* from one peer, its *deputy* for that window:
//! a *ceiling* on its outflow there — its spend, its gifts and its
//! reservations in flight. The holder never lets its outflow pass the
//! ceiling its deputy has granted, and asks for more ahead of need (a
//! request that finds the ceiling short waits for the raise, like a request
//! waiting for a gift). The deputy keeps every ceiling it granted, on disk.
//!
//! When the holder has been down for the cluster's takeover delay (or left
//! on purpose), the deputy *takes over* what the holder received beyond its
//! ceiling: `inflow − ceiling`, where inflow is the holder's home share plus
//! the gifts and takeovers it received, as far as the deputy knows, less
//! the debts of other nodes that a home carries (after a home move). The
//! take is a grow-only counter written only by the taker, replicated like a
//! gift: it raises the taker's allowance and lowers the holder's.
//!
//! Why this never overspends, whatever the network does or whether the
//! holder is really dead: the holder's true outflow is at most its ceiling
//! `C`; the deputy takes `A = inflow_seen − C`, and what the deputy has seen
//! of grow-only counters is never more than their true value, so the
//! holder's outflow plus the take is at most its true inflow. After a take,
//! the deputy grants a higher ceiling only out of what the holder received
//! since (`inflow_seen − A`), so the bound keeps holding when the holder
//! comes back. A holder never changes deputy within a window: the old one
//! could still take over. The invariant is property-tested with takes at
//! any moment, the holder alive or not (`budgets::tests`).
//!
//! The price: while a holder's deputy is unreachable it can spend only up to
//! its ceiling; what a take cannot return is what the holder's ceiling
//! covered and did not spend (at most one headroom, `1/LEASE_SHARE` of the
//! limit, plus its reservations in flight).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::{
    Books, COUNTER_VERSION, CounterKey, Escrow, Ledger, Micros, from_and_to, written_name,
};
use crate::state::{Change, NodeId};
use crate::store::{self, CF_STATE, Store, StoreError};

/// A ceiling leaves this fraction of the budget's limit as headroom above
/// the holder's outflow, and is raised when less than half of it is left.
pub const LEASE_SHARE: u64 = 8;

/// This node's lease in one window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub deputy: NodeId,
    pub ceiling: Micros,
}

/// A ceiling this node wants from its deputy in window `key` (a spend
/// counter name); `deputy` is `None` when the window has no lease yet and
/// the caller must pick one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseWant {
    pub key: String,
    pub deputy: Option<NodeId>,
    pub ceiling: Micros,
}

const LEASE_PREFIX: &[u8] = b"lease\0";
const GUARD_PREFIX: &[u8] = b"ceil\0";

fn lease_row(key: &CounterKey) -> Vec<u8> {
    [LEASE_PREFIX, key.name().as_bytes()].concat()
}

fn guard_row(holder: NodeId, key: &CounterKey) -> Vec<u8> {
    [
        GUARD_PREFIX,
        format!("{holder:016x}\0").as_bytes(),
        key.name().as_bytes(),
    ]
    .concat()
}

/// The name of the counter of what `taker` took over in window `key`.
pub fn taken_name(taker: NodeId, key: &CounterKey) -> String {
    written_name("take", taker, key)
}

/// Loads this node's leases and the ceilings it granted.
pub(super) fn load(store: &Store, books: &mut Books) -> Result<(), StoreError> {
    for (_, (k, l)) in
        store.load_prefix::<(CounterKey, Lease)>(CF_STATE, LEASE_PREFIX, COUNTER_VERSION)?
    {
        books.leases.insert(k, l);
    }
    for (_, (holder, k, c)) in store.load_prefix::<(NodeId, CounterKey, Micros)>(
        CF_STATE,
        GUARD_PREFIX,
        COUNTER_VERSION,
    )? {
        books.guarded.insert((holder, k), c);
    }
    Ok(())
}

/// Forgets leases and granted ceilings of windows that ended before
/// `before`; returns their store keys.
pub(super) fn collect(books: &mut Books, before: u64) -> Vec<Vec<u8>> {
    let mut rows = Vec::new();
    books.leases.retain(|k, _| {
        let keep = k.end_ms > before;
        if !keep {
            rows.push(lease_row(k));
        }
        keep
    });
    books.guarded.retain(|(h, k), _| {
        let keep = k.end_ms > before;
        if !keep {
            rows.push(guard_row(*h, k));
        }
        keep
    });
    rows
}

impl Books {
    /// What `holder` received in window `key`, as far as this node knows:
    /// its home share, gifts and takes.
    fn inflow(&self, holder: NodeId, key: &CounterKey, e: Escrow) -> i128 {
        let base = if holder == e.home {
            i128::from(e.limit)
        } else {
            0
        };
        let (received, _) = from_and_to(self.given.get(key), holder);
        let (_, took) = from_and_to(self.taken.get(key), holder);
        base + received + took
    }

    /// What `holder` received in window `key` net of the debts it carries:
    /// a home carries every other node's negative balance (see
    /// `Books::allowance`), so a deputy must not take that part.
    fn net_inflow(&self, holder: NodeId, key: &CounterKey, e: Escrow) -> i128 {
        let inflow = self.inflow(holder, key, e);
        if holder != e.home {
            return inflow;
        }
        let debts: i128 = self
            .nodes_in(key)
            .filter(|n| *n != holder)
            .map(|n| (-self.own_allowance(n, key, e)).max(0))
            .sum();
        inflow - debts
    }

    /// What this node (as `taker`) already took from `holder` in `key`.
    fn took_from(&self, taker: NodeId, holder: NodeId, key: &CounterKey) -> Micros {
        self.taken
            .get(key)
            .and_then(|by| by.get(&taker))
            .map_or(0, |c| c.of(holder))
    }
}

impl Ledger {
    /// The ceiling this node should ask for in window `key`, if any: none
    /// while it holds nothing there, or while the room under its ceiling
    /// covers `extra` (what a waiting request lacks) and half a headroom.
    pub fn lease_want(&self, key: &CounterKey, e: Escrow, extra: Micros) -> Option<LeaseWant> {
        let books = self.books.lock().expect("ledger lock");
        let headroom = (e.limit / LEASE_SHARE).max(1);
        let outflow = books.outflow(self.node, key);
        let reserved = books.reserved.get(key).copied().unwrap_or(0);
        let free = (books.allowance(self.node, key, e) - i128::from(reserved)).max(0);
        let wanted = outflow + free.min(i128::from(extra) + i128::from(headroom));
        let wanted = Micros::try_from(wanted.max(0)).unwrap_or(Micros::MAX);
        match books.leases.get(key) {
            None if free > 0 => Some(LeaseWant {
                key: key.name(),
                deputy: None,
                ceiling: wanted,
            }),
            None => None,
            Some(l) => {
                let room = i128::from(l.ceiling) - outflow;
                let enough = room >= i128::from(extra).max(i128::from(headroom / 2));
                (!enough && wanted > l.ceiling).then(|| LeaseWant {
                    key: key.name(),
                    deputy: Some(l.deputy),
                    ceiling: wanted,
                })
            }
        }
    }

    /// Every window with allowance, reservations or counters of this node
    /// that is still open at `now_ms`.
    pub fn open_windows(&self, now_ms: u64) -> Vec<CounterKey> {
        let books = self.books.lock().expect("ledger lock");
        let mut keys: Vec<CounterKey> = books
            .spend
            .keys()
            .chain(books.given.keys())
            .chain(books.taken.keys())
            .chain(books.reserved.keys())
            .chain(books.leases.keys())
            .filter(|k| k.end_ms > now_ms)
            .cloned()
            .collect();
        keys.sort_by(|a, b| (&a.scope, a.start_ms).cmp(&(&b.scope, b.start_ms)));
        keys.dedup();
        keys
    }

    /// Takes a lease from `deputy` in window `key` with `ceiling`, before
    /// asking the deputy for it: from now on this node keeps its outflow
    /// there under `ceiling`, whether or not the deputy ever hears of it.
    /// False (and nothing written) if the window has a lease already.
    pub fn begin_lease(
        &self,
        key: &CounterKey,
        deputy: NodeId,
        ceiling: Micros,
    ) -> Result<bool, StoreError> {
        Ok(self.begin_leases(deputy, &[(key.clone(), ceiling)])?[0])
    }

    /// [`Ledger::begin_lease`] for many windows with one deputy, in one
    /// durable write (a new window of every budget homed here starts at
    /// once). Returns, for each, whether a lease was taken.
    pub fn begin_leases(
        &self,
        deputy: NodeId,
        wants: &[(CounterKey, Micros)],
    ) -> Result<Vec<bool>, StoreError> {
        let mut books = self.books.lock().expect("ledger lock");
        let mut rows = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut taken = Vec::with_capacity(wants.len());
        for (key, ceiling) in wants {
            let fresh = deputy != self.node && !books.leases.contains_key(key) && seen.insert(key);
            taken.push(fresh);
            if fresh {
                let outflow = Micros::try_from(books.outflow(self.node, key)).unwrap_or(0);
                let lease = Lease {
                    deputy,
                    ceiling: (*ceiling).max(outflow),
                };
                let row = store::encode(COUNTER_VERSION, &(key, lease))?;
                rows.push((key.clone(), lease, row));
            }
        }
        if rows.is_empty() {
            return Ok(taken);
        }
        let keys: Vec<Vec<u8>> = rows.iter().map(|(k, _, _)| lease_row(k)).collect();
        self.store.write_durable(
            CF_STATE,
            keys.iter()
                .zip(&rows)
                .map(|(k, (_, _, row))| (k.as_slice(), row.as_slice())),
            [],
        )?;
        for (key, lease, _) in rows {
            books.leases.insert(key, lease);
        }
        Ok(taken)
    }

    /// Takes a ceiling `deputy` granted in window `key`, if it is this
    /// window's deputy and the ceiling is higher. Returns whether it rose.
    pub fn raise_lease(
        &self,
        key: &CounterKey,
        deputy: NodeId,
        granted: Micros,
    ) -> Result<bool, StoreError> {
        let mut books = self.books.lock().expect("ledger lock");
        let Some(mut lease) = books.leases.get(key).copied() else {
            return Ok(false);
        };
        if lease.deputy != deputy || granted <= lease.ceiling {
            return Ok(false);
        }
        lease.ceiling = granted;
        let row = store::encode(COUNTER_VERSION, &(key, lease))?;
        self.store
            .write_durable(CF_STATE, [(lease_row(key).as_slice(), row.as_slice())], [])?;
        books.leases.insert(key.clone(), lease);
        Ok(true)
    }

    /// This node's lease in window `key`.
    pub fn lease(&self, key: &CounterKey) -> Option<Lease> {
        self.books
            .lock()
            .expect("ledger lock")
            .leases
            .get(key)
            .copied()
    }

    /// As deputy: grants `holder` a ceiling in window `key`, on disk before
    /// it is answered. Before any take, what was asked (ceilings only rise);
    /// after one, no more than what the holder received beyond the take.
    pub fn grant(
        &self,
        holder: NodeId,
        key: &CounterKey,
        asked: Micros,
        e: Escrow,
    ) -> Result<Micros, StoreError> {
        Ok(self.grant_all(holder, &[(key.clone(), asked, e)])?[0])
    }

    /// [`Ledger::grant`] for many windows of one holder, in one durable
    /// write; the ceilings granted, in order.
    pub fn grant_all(
        &self,
        holder: NodeId,
        asks: &[(CounterKey, Micros, Escrow)],
    ) -> Result<Vec<Micros>, StoreError> {
        let mut books = self.books.lock().expect("ledger lock");
        let mut granted = Vec::with_capacity(asks.len());
        let mut changed: HashMap<&CounterKey, Micros> = HashMap::new();
        for (key, asked, e) in asks {
            let before = changed
                .get(key)
                .copied()
                .or_else(|| books.guarded.get(&(holder, key.clone())).copied());
            let took = books.took_from(self.node, holder, key);
            let g = if took == 0 {
                *asked
            } else {
                let left = books.net_inflow(holder, key, *e) - i128::from(took);
                Micros::try_from(left.clamp(0, i128::from(*asked))).unwrap_or(0)
            };
            let g = g.max(before.unwrap_or(0));
            if before != Some(g) {
                changed.insert(key, g);
            }
            granted.push(g);
        }
        if changed.is_empty() {
            return Ok(granted);
        }
        let rows: Vec<(Vec<u8>, Vec<u8>)> = changed
            .iter()
            .map(|(k, c)| {
                store::encode(COUNTER_VERSION, &(holder, k, *c)).map(|v| (guard_row(holder, k), v))
            })
            .collect::<Result<_, _>>()?;
        // On disk before any of it is answered.
        self.store.write_durable(
            CF_STATE,
            rows.iter().map(|(k, v)| (k.as_slice(), v.as_slice())),
            [],
        )?;
        for (k, c) in changed {
            books.guarded.insert((holder, k.clone()), c);
        }
        Ok(granted)
    }

    /// As deputy: the holders this node granted ceilings to in windows
    /// still open at `now_ms`.
    pub fn guarded_holders(&self, now_ms: u64) -> Vec<NodeId> {
        let books = self.books.lock().expect("ledger lock");
        let mut holders: Vec<NodeId> = books
            .guarded
            .keys()
            .filter(|(_, k)| k.end_ms > now_ms)
            .map(|(h, _)| *h)
            .collect();
        holders.sort_unstable();
        holders.dedup();
        holders
    }

    /// As deputy of `holder`, which is down: takes over what it received
    /// beyond its ceiling in every open window (`escrow` knows the budgets).
    /// Durable before it is returned; returns the changes to replicate.
    pub fn take_over(
        &self,
        holder: NodeId,
        now_ms: u64,
        escrow: impl Fn(&CounterKey) -> Option<Escrow>,
    ) -> Result<Vec<Change>, StoreError> {
        let mut books = self.books.lock().expect("ledger lock");
        let windows: Vec<(CounterKey, Micros)> = books
            .guarded
            .iter()
            .filter(|((h, k), _)| *h == holder && k.end_ms > now_ms)
            .map(|((_, k), c)| (k.clone(), *c))
            .collect();
        let mut out = Vec::new();
        for (key, ceiling) in windows {
            let Some(e) = escrow(&key) else { continue };
            let target = books.net_inflow(holder, &key, e) - i128::from(ceiling);
            let took = books.took_from(self.node, holder, &key);
            if target <= i128::from(took) {
                continue;
            }
            let more = Micros::try_from(target - i128::from(took)).unwrap_or(0);
            let mut mine = books
                .taken
                .get(&key)
                .and_then(|by| by.get(&self.node))
                .cloned()
                .unwrap_or_default();
            let delta = mine.add(holder, more);
            let name = taken_name(self.node, &key);
            let row = store::encode(COUNTER_VERSION, &(self.node, &key, &mine))?;
            // On disk before it counts here: a take this node forgot in a
            // crash must not have let it spend.
            self.store
                .write_durable(CF_STATE, [(name.as_bytes(), row.as_slice())], [])?;
            books
                .taken
                .entry(key.clone())
                .or_default()
                .insert(self.node, mine);
            out.push(Change::Counter {
                key: name,
                counter: delta,
            });
        }
        Ok(out)
    }
}
