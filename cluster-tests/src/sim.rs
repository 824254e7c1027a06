//! An in-process cluster over an in-memory network with a controlled clock.
//!
//! Each simulated node is the real thing minus its sockets: foca with the
//! node's SWIM settings and identity type, a real [`Governance`] over its own
//! RocksDB, the same push-on-change and anti-entropy ([`reconcile`]) as a
//! running node. The network is a seeded event queue in simulated
//! milliseconds: every message takes 1–5 ms, may be cut by a partition, and
//! is dropped if its receiver is down. Nothing here reads the wall clock, so
//! a run is the same every time for a given seed (up to node ids, which are
//! random per store).

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use foca::{AccumulatingRuntime, Foca, NoCustomBroadcast, OwnedNotification, PostcardCodec, Timer};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tokio::sync::mpsc;

use tollgate::cluster::membership::{Member, swim_config};
use tollgate::cluster::reconcile;
use tollgate::config::Config;
use tollgate::governance::Governance;
use tollgate::state::Change;
use tollgate::state::hlc::ManualClock;
use tollgate::store::Store;

/// Simulated time starts here (Unix ms), so timestamps look like real ones.
const EPOCH_MS: u64 = 1_795_000_000_000;
/// Anti-entropy period of every simulated node.
pub const SYNC_INTERVAL_MS: u64 = 1_000;
/// Rate-limit count period, as `cluster::RATE_SYNC`.
pub const RATE_SYNC_MS: u64 = 100;

enum Event {
    Datagram {
        from: usize,
        to: usize,
        data: Bytes,
    },
    Timer {
        node: usize,
        timer: Timer<Member>,
    },
    Changes {
        from: usize,
        to: usize,
        changes: Vec<Change>,
    },
    SyncTick {
        node: usize,
    },
    AllowanceAsk {
        from: usize,
        to: usize,
        key: String,
        amount: u64,
    },
    RateTick {
        node: usize,
    },
    /// Rate-limit counts; acknowledged to the sender when delivered.
    RateCounts {
        from: usize,
        to: usize,
        changes: Vec<Change>,
    },
}

pub struct SimNode {
    foca: Foca<Member, PostcardCodec, StdRng, NoCustomBroadcast>,
    runtime: AccumulatingRuntime<Member>,
    pub gov: Arc<Governance>,
    feed: mpsc::UnboundedReceiver<Change>,
    clock: Arc<ManualClock>,
    /// Whether the process runs (a crashed or departed node does nothing).
    pub up: bool,
    /// Peers this node's SWIM considers alive.
    pub view: BTreeSet<usize>,
    _dir: tempfile::TempDir,
}

pub struct Sim {
    pub now: u64,
    rng: StdRng,
    seq: u64,
    queue: BinaryHeap<Reverse<(u64, u64)>>,
    events: HashMap<u64, Event>,
    pub nodes: Vec<SimNode>,
    by_addr: HashMap<SocketAddr, usize>,
    /// Ordered pairs that cannot reach each other.
    cut: HashSet<(usize, usize)>,
    /// Whether changes are pushed as they happen (anti-entropy always runs).
    pub push: bool,
    /// Messages delivered, by kind.
    pub delivered: HashMap<&'static str, u64>,
    /// How many of the next rate-count pushes from one node to another the
    /// network loses (a test hook: a lost push is never acknowledged).
    pub lose_rate_pushes: HashMap<(usize, usize), u32>,
}

fn addr(i: usize) -> SocketAddr {
    SocketAddr::from(([10, 0, (i / 250) as u8, (i % 250 + 1) as u8], 7946))
}

impl Sim {
    /// `n` nodes, none joined yet.
    pub fn new(n: usize, seed: u64) -> Sim {
        let mut sim = Sim {
            now: 0,
            rng: StdRng::seed_from_u64(seed),
            seq: 0,
            queue: BinaryHeap::new(),
            events: HashMap::new(),
            nodes: Vec::new(),
            by_addr: HashMap::new(),
            cut: HashSet::new(),
            push: true,
            delivered: HashMap::new(),
            lose_rate_pushes: HashMap::new(),
        };
        for i in 0..n {
            let dir = tempfile::tempdir().unwrap();
            let clock = Arc::new(ManualClock::new(EPOCH_MS));
            let gov = Arc::new(
                Governance::open(
                    Store::open(dir.path()).unwrap(),
                    clock.clone(),
                    &Config::default(),
                )
                .unwrap(),
            );
            let (tx, feed) = mpsc::unbounded_channel();
            gov.set_feed(tx);
            let me = Member {
                node: gov.node(),
                addr: addr(i),
                http: String::new(),
                wire: (1, 1),
                bump: 0,
            };
            let foca = Foca::new(
                me,
                swim_config(),
                StdRng::seed_from_u64(seed.wrapping_mul(1000) + i as u64),
                PostcardCodec,
            );
            sim.by_addr.insert(addr(i), i);
            sim.nodes.push(SimNode {
                foca,
                runtime: AccumulatingRuntime::new(),
                gov,
                feed,
                clock,
                up: true,
                view: BTreeSet::new(),
                _dir: dir,
            });
            let first_tick = sim.rng.random_range(0..SYNC_INTERVAL_MS);
            sim.schedule(first_tick, Event::SyncTick { node: i });
            let first_rate = sim.rng.random_range(0..RATE_SYNC_MS);
            sim.schedule(first_rate, Event::RateTick { node: i });
        }
        sim
    }

    fn schedule(&mut self, after_ms: u64, e: Event) {
        self.seq += 1;
        self.queue.push(Reverse((self.now + after_ms, self.seq)));
        self.events.insert(self.seq, e);
    }

    fn latency(&mut self) -> u64 {
        self.rng.random_range(1..=5)
    }

    fn reachable(&self, from: usize, to: usize) -> bool {
        !self.cut.contains(&(from, to))
    }

    /// Node `i` announces itself to node `seed`.
    pub fn join(&mut self, i: usize, seed: usize) {
        let n = &mut self.nodes[i];
        n.foca
            .announce(Member::seed(addr(seed)), &mut n.runtime)
            .unwrap();
        self.drain(i);
    }

    /// Node `i` leaves gracefully, then stops.
    pub fn leave(&mut self, i: usize) {
        let n = &mut self.nodes[i];
        n.foca.leave_cluster(&mut n.runtime).unwrap();
        self.drain(i);
        self.nodes[i].up = false;
    }

    /// Node `i` stops without a word.
    pub fn crash(&mut self, i: usize) {
        self.nodes[i].up = false;
    }

    /// Cuts every link between `a` and `b` (both directions).
    pub fn partition(&mut self, a: &[usize], b: &[usize]) {
        for &x in a {
            for &y in b {
                self.cut.insert((x, y));
                self.cut.insert((y, x));
            }
        }
    }

    pub fn heal(&mut self) {
        self.cut.clear();
    }

    /// Hands node `i`'s pending outputs to the network.
    fn drain(&mut self, i: usize) {
        while let Some((dst, data)) = self.nodes[i].runtime.to_send() {
            let Some(&to) = self.by_addr.get(&dst.addr) else {
                continue;
            };
            if self.reachable(i, to) {
                let after = self.latency();
                self.schedule(after, Event::Datagram { from: i, to, data });
            }
        }
        while let Some((after, timer)) = self.nodes[i].runtime.to_schedule() {
            self.schedule(after.as_millis() as u64, Event::Timer { node: i, timer });
        }
        while let Some(n) = self.nodes[i].runtime.to_notify() {
            match n {
                OwnedNotification::MemberUp(m) => {
                    if let Some(&p) = self.by_addr.get(&m.addr) {
                        self.nodes[i].view.insert(p);
                    }
                }
                OwnedNotification::MemberDown(m) => {
                    if let Some(&p) = self.by_addr.get(&m.addr) {
                        self.nodes[i].view.remove(&p);
                    }
                }
                _ => {}
            }
        }
        let mut changes = Vec::new();
        while let Ok(c) = self.nodes[i].feed.try_recv() {
            changes.push(c);
        }
        if self.push && !changes.is_empty() {
            let peers: Vec<usize> = self.nodes[i].view.iter().copied().collect();
            for to in peers {
                if self.reachable(i, to) {
                    let after = self.latency();
                    let changes = changes.clone();
                    self.schedule(
                        after,
                        Event::Changes {
                            from: i,
                            to,
                            changes,
                        },
                    );
                }
            }
        }
    }

    /// Runs a local operation on node `i` (at the current simulated time)
    /// and sends out what it changed.
    pub fn on<T>(&mut self, i: usize, op: impl FnOnce(&Governance) -> T) -> T {
        let out = op(&self.nodes[i].gov);
        self.drain(i);
        out
    }

    /// Takes node `i`'s pending local changes without sending them.
    pub fn drain_feed(&mut self, i: usize) -> Vec<Change> {
        let mut out = Vec::new();
        while let Ok(c) = self.nodes[i].feed.try_recv() {
            out.push(c);
        }
        out
    }

    /// One anti-entropy round from `a` with `b`, as the real nodes run it.
    pub fn sync(&mut self, a: usize, b: usize) {
        let digest = self.nodes[a].gov.digest();
        let (changes, wants) = reconcile(&self.nodes[b].gov, digest);
        self.nodes[a].gov.apply_remote(&changes).unwrap();
        let finish = self.nodes[a].gov.changes_for(&wants);
        self.nodes[b].gov.apply_remote(&finish).unwrap();
        *self.delivered.entry("sync").or_default() += 1;
    }

    /// Processes events until `done` holds or `limit_ms` of simulated time
    /// pass; returns the simulated time it took, or `None`.
    pub fn run_until(&mut self, limit_ms: u64, mut done: impl FnMut(&Sim) -> bool) -> Option<u64> {
        let start = self.now;
        loop {
            if done(self) {
                return Some(self.now - start);
            }
            let Reverse((at, seq)) = self.queue.pop()?;
            if at - start > limit_ms {
                self.queue.push(Reverse((at, seq)));
                return None;
            }
            self.now = at;
            for n in &self.nodes {
                n.clock.set(EPOCH_MS + self.now);
            }
            let event = self.events.remove(&seq).expect("scheduled");
            self.handle(event);
        }
    }

    /// Runs for `ms` of simulated time.
    pub fn run_for(&mut self, ms: u64) {
        let end = self.now + ms;
        self.run_until(ms, |_| false);
        self.now = end;
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Datagram { from, to, data } => {
                if !self.nodes[to].up || !self.reachable(from, to) {
                    return;
                }
                *self.delivered.entry("swim").or_default() += 1;
                let n = &mut self.nodes[to];
                // A rejected packet is what a real node would log and drop.
                let _ = n.foca.handle_data(&data, &mut n.runtime);
                self.drain(to);
            }
            Event::Timer { node, timer } => {
                if !self.nodes[node].up {
                    return;
                }
                let n = &mut self.nodes[node];
                let _ = n.foca.handle_timer(timer, &mut n.runtime);
                self.drain(node);
            }
            Event::Changes { from, to, changes } => {
                if !self.nodes[to].up || !self.reachable(from, to) {
                    return;
                }
                *self.delivered.entry("changes").or_default() += 1;
                self.nodes[to].gov.apply_remote(&changes).unwrap();
                self.drain(to);
            }
            Event::AllowanceAsk {
                from,
                to,
                key,
                amount,
            } => {
                if !self.nodes[to].up || !self.reachable(from, to) {
                    return;
                }
                *self.delivered.entry("allowance_request").or_default() += 1;
                let asker = self.nodes[from].gov.node();
                self.nodes[to].gov.give_allowance(&key, asker, amount);
                self.drain(to);
            }
            Event::RateTick { node } => {
                self.schedule(RATE_SYNC_MS, Event::RateTick { node });
                if !self.nodes[node].up {
                    return;
                }
                // As `Cluster::push_rate_counts`: each live peer gets what it
                // has not acknowledged.
                let peers: Vec<usize> = self.nodes[node].view.iter().copied().collect();
                let ids: Vec<_> = peers.iter().map(|p| self.nodes[*p].gov.node()).collect();
                self.nodes[node].gov.rate_peers(&ids);
                for (to, id) in peers.into_iter().zip(ids) {
                    let changes = self.nodes[node].gov.rate_unacked(id);
                    if self.reachable(node, to) && !changes.is_empty() {
                        let after = self.latency();
                        self.schedule(
                            after,
                            Event::RateCounts {
                                from: node,
                                to,
                                changes,
                            },
                        );
                    }
                }
            }
            Event::RateCounts { from, to, changes } => {
                if !self.nodes[to].up || !self.reachable(from, to) {
                    return;
                }
                if let Some(n) = self.lose_rate_pushes.get_mut(&(from, to))
                    && *n > 0
                {
                    *n -= 1;
                    *self.delivered.entry("rate_lost").or_default() += 1;
                    return;
                }
                *self.delivered.entry("rate").or_default() += 1;
                self.nodes[to].gov.apply_remote(&changes).unwrap();
                // The transport's acknowledgement, taken as instant.
                let id = self.nodes[to].gov.node();
                self.nodes[from].gov.rate_acked(id, &changes);
                self.drain(to);
            }
            Event::SyncTick { node } => {
                let jitter = self.rng.random_range(0..SYNC_INTERVAL_MS / 2);
                self.schedule(SYNC_INTERVAL_MS + jitter, Event::SyncTick { node });
                if !self.nodes[node].up {
                    return;
                }
                let peers: Vec<usize> = self.nodes[node].view.iter().copied().collect();
                if peers.is_empty() {
                    return;
                }
                let peer = peers[self.rng.random_range(0..peers.len())];
                if self.nodes[peer].up && self.reachable(node, peer) && self.reachable(peer, node) {
                    self.sync(node, peer);
                    self.drain(node);
                    self.drain(peer);
                }
            }
        }
    }

    /// A request on node `i` with key `secret` that costs `cost` µ$: reserved
    /// and settled if the node's allowance admits it, as the proxy does. When
    /// only this node's allowance is short, it asks the peer it believes
    /// holds the most (the gift arrives later, like on a real network).
    pub fn try_spend(&mut self, i: usize, secret: &str, cost: u64) -> bool {
        let gov = self.nodes[i].gov.clone();
        let key = gov.authenticate(secret).expect("a live key");
        match gov.reserve(&key, &[], cost) {
            Ok(r) => {
                if let Some(r) = r {
                    gov.settle(r, cost, None);
                }
                self.drain(i);
                true
            }
            Err(e) => {
                let shortfall = match e {
                    tollgate::governance::budgets::Refusal::Exceeded(e) => e.shortfall,
                    tollgate::governance::budgets::Refusal::Unavailable(e) => {
                        panic!("the simulated store failed: {e}")
                    }
                };
                if let Some(short) = shortfall {
                    let best = self.nodes[i]
                        .view
                        .iter()
                        .map(|&p| (gov.allowance_of(self.nodes[p].gov.node(), &short.key), p))
                        .filter(|(free, _)| *free > 0)
                        .max();
                    if let Some((_, to)) = best
                        && self.reachable(i, to)
                    {
                        let after = self.latency();
                        self.schedule(
                            after,
                            Event::AllowanceAsk {
                                from: i,
                                to,
                                key: short.key,
                                amount: short.amount,
                            },
                        );
                    }
                }
                false
            }
        }
    }

    /// A request on node `i` with key `secret` through the rate limits
    /// only; whether it was admitted.
    pub fn try_admit(&mut self, i: usize, secret: &str) -> bool {
        let gov = self.nodes[i].gov.clone();
        let key = gov.authenticate(secret).expect("a live key");
        gov.admit(&key, &[]).is_ok()
    }

    /// Whether every running node sees every other running node alive.
    pub fn fully_joined(&self) -> bool {
        let up: BTreeSet<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].up)
            .collect();
        up.iter().all(|&i| {
            let mut want = up.clone();
            want.remove(&i);
            self.nodes[i].view == want
        })
    }

    /// Whether the given nodes hold identical replicated state.
    pub fn converged(&self, nodes: &[usize]) -> bool {
        let mut digests = nodes.iter().map(|&i| {
            let mut d = self.nodes[i].gov.digest();
            d.sort();
            d
        });
        let first = digests.next().unwrap_or_default();
        digests.all(|d| d == first)
    }
}
