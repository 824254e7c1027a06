//! The cluster: nodes that find each other and share all governance state,
//! with no leader and nothing beside them (`docs/cluster.md`).
//!
//! - Membership is SWIM (foca, [`membership`]) over QUIC datagrams.
//! - Transport is one quinn endpoint per node with mutual TLS from the
//!   cluster secret ([`tls`], [`transport`]).
//! - Replication: every change this node makes to replicated state (a
//!   governance object's delta, a spend counter's slot) is pushed at once to
//!   every live peer on a QUIC stream; anti-entropy ([`Cluster::sync_with`])
//!   compares digests with a random peer every `sync_interval` and with every
//!   peer that comes up, page by page ([`sync`]), and exchanges whatever
//!   differs. Rate-limit counts are re-sent to each peer every [`RATE_SYNC`]
//!   until it acknowledges them. Merges are CRDT
//!   merges, so order, duplicates and loss do not matter: a node that was
//!   down for an hour, or is new, catches up on its first sync.
//!
//! The wire format is in [`proto`].

mod audit;
mod lease;
pub mod membership;
pub mod proto;
mod share;
pub mod sync;
pub mod tls;
pub mod transport;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use foca::OwnedNotification;
use prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGaugeVec, Opts};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::cache::store::{CacheStore, ClearArgs};
use crate::config::Config;
use crate::governance::Governance;
use crate::governance::budgets::{Lack, Shortfall};
use crate::health::HealthBook;
use crate::observability::audit::AuditLog;
use crate::observability::metrics::Metrics;
use crate::observability::overview::{self, OverviewQuery};
use crate::observability::request_log::{LogQuery, RequestLogs};
use crate::observability::spend::{self, SpendQuery};
use crate::session::{Revocation, Sessions};
use crate::state::{Change, NodeId};
use crate::tasks::Tasks;
use lease::LEASE_TICK;
use membership::{Input, Member, Output};
use proto::{Body, Envelope, MIN_WIRE_VERSION, WIRE_VERSION};
use transport::{Transport, TransportError, read_frame, write_frame};

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cluster TLS: {0}")]
    Tls(#[from] tls::TlsError),
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("cannot resolve cluster.advertise '{0}'")]
    Advertise(String),
    #[error("anti-entropy: {0}")]
    Sync(#[from] sync::SyncError),
}

/// How often a node sends each peer the rate-limit counts it has not
/// acknowledged: with the network hop, the window in which other nodes'
/// admissions are not yet counted here, one more for each lost push (the
/// cluster-wide rate-limit bound, `docs/cluster.md`).
pub const RATE_SYNC: Duration = Duration::from_millis(100);

/// How often a node tells its peers how the routes it uses are doing.
pub const HEALTH_GOSSIP: Duration = Duration::from_secs(1);

/// A peer's state as this node sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PeerState {
    Alive,
    Down,
}

#[derive(Debug, Clone)]
struct Peer {
    member: Member,
    state: PeerState,
    /// When it last changed state (Unix ms).
    since_ms: u64,
    /// Last anti-entropy round with it that completed (Unix ms).
    last_sync_ms: Option<u64>,
    /// How far behind its writer its last pushed change arrived (ms).
    last_lag_ms: Option<u64>,
}

struct ClusterMetrics {
    members: IntGaugeVec,
    messages: IntCounterVec,
    bytes: IntCounterVec,
    syncs: IntCounterVec,
    applied: IntCounterVec,
    lag: Histogram,
    errors: IntCounterVec,
    allowance: IntCounterVec,
}

impl ClusterMetrics {
    fn new(metrics: &Metrics) -> ClusterMetrics {
        let r = metrics.registry();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            r.register(Box::new(c.clone())).expect("unique metric");
            c
        };
        let members = IntGaugeVec::new(
            Opts::new("cluster_members", "Peers by state, as this node sees them."),
            &["state"],
        )
        .expect("valid metric");
        r.register(Box::new(members.clone()))
            .expect("unique metric");
        let lag = Histogram::with_opts(
            HistogramOpts::new(
                "cluster_replication_lag_seconds",
                "Age of a pushed change when it is applied here (its writer's clock to ours).",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
        )
        .expect("valid metric");
        r.register(Box::new(lag.clone())).expect("unique metric");
        ClusterMetrics {
            members,
            messages: counter(
                "cluster_messages_total",
                "Node-to-node messages by direction and kind.",
                &["direction", "kind"],
            ),
            bytes: counter(
                "cluster_bytes_total",
                "Node-to-node bytes (QUIC payload) by direction.",
                &["direction"],
            ),
            syncs: counter(
                "cluster_sync_total",
                "Anti-entropy rounds by role and result.",
                &["role", "result"],
            ),
            applied: counter(
                "cluster_changes_applied_total",
                "Peers' changes that changed local state, by how they came.",
                &["via"],
            ),
            lag,
            errors: counter(
                "cluster_errors_total",
                "Failed handshakes, undecodable messages and transport errors.",
                &["cause"],
            ),
            allowance: counter(
                "cluster_allowance_total",
                "Budget allowance traffic: asked (a request short here asked a peer), no_giver (no peer had any), gave / had_none (answers to peers), handed_back (windows given away on leaving).",
                &["event"],
            ),
        }
    }

    fn sent(&self, kind: &str, bytes: usize) {
        self.messages.with_label_values(&["out", kind]).inc();
        self.bytes.with_label_values(&["out"]).inc_by(bytes as u64);
    }

    fn received(&self, kind: &str, bytes: usize) {
        self.messages.with_label_values(&["in", kind]).inc();
        self.bytes.with_label_values(&["in"]).inc_by(bytes as u64);
    }
}

fn kind(body: &Body) -> &'static str {
    match body {
        Body::Swim(_) => "swim",
        Body::Changes(_) => "changes",
        Body::SyncDigest(_) => "sync_digest",
        Body::SyncReply { .. } => "sync_reply",
        Body::SyncFinish(_) => "sync_finish",
        Body::Leaving => "leaving",
        Body::AllowanceRequest { .. } => "allowance_request",
        Body::Query { .. } => "query",
        Body::Answer(_) => "answer",
        Body::Health(_) => "health",
        Body::Lease(_) => "lease",
        Body::LeaseGrant(_) => "lease_grant",
        Body::SyncPage { .. } => "sync_page",
        Body::SyncPageReply { .. } => "sync_page_reply",
        Body::SyncGive(_) => "sync_give",
        Body::CacheEntries(_) => "cache_entries",
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A running cluster membership and replication.
pub struct Cluster {
    me: Member,
    gov: Arc<Governance>,
    logs: RequestLogs,
    health: Arc<HealthBook>,
    transport: Transport,
    peers: RwLock<BTreeMap<NodeId, Peer>>,
    swim: mpsc::Sender<Input>,
    seeds: Vec<String>,
    share_health: bool,
    lease_takeover: Duration,
    /// Page sizes of anti-entropy rounds.
    sync: sync::Limits,
    metrics: ClusterMetrics,
    /// The response cache peers' answers are stored in ([`share`]).
    cache: Arc<CacheStore>,
    cache_in_flight: share::InFlight,
    /// Dashboard sessions: logouts elsewhere are revoked here too.
    sessions: Arc<Sessions>,
    audit: Arc<AuditLog>,
}

/// What of this node the cluster shares and answers from.
pub struct Local {
    pub governance: Arc<Governance>,
    pub logs: RequestLogs,
    pub health: Arc<HealthBook>,
    /// The response cache: what it stores is shared, what peers share is
    /// stored in it.
    pub cache: Arc<CacheStore>,
    pub sessions: Arc<Sessions>,
    /// The audit log: peers copy every node's chain from it.
    pub audit: Arc<AuditLog>,
}

impl Cluster {
    /// Binds the QUIC endpoint, joins through the seeds and starts
    /// replicating `gov`. Its tasks run on `tasks` until shutdown.
    pub async fn start(
        config: &Config,
        http_addr: SocketAddr,
        local: Local,
        metrics: &Metrics,
        tasks: &Tasks,
    ) -> Result<Arc<Cluster>, ClusterError> {
        let Local {
            governance: gov,
            logs,
            health,
            cache,
            sessions,
            audit,
        } = local;
        let c = &config.cluster;
        let secret = c
            .secret
            .as_ref()
            .expect("the cluster starts only with a secret");
        let tls = tls::node_tls(secret.expose(), Duration::from_secs(15), gov.node())?;
        let transport = Transport::bind(c.listen, tls)?;
        let bound = transport
            .local_addr()
            .map_err(|source| TransportError::Bind {
                addr: c.listen,
                source,
            })?;
        let addr = match &c.advertise {
            Some(a) => resolve(a)
                .await
                .into_iter()
                .next()
                .ok_or_else(|| ClusterError::Advertise(a.clone()))?,
            None => bound,
        };
        let http = c.advertise_http.clone().unwrap_or_else(|| {
            let host = if http_addr.ip().is_unspecified() {
                addr.ip()
            } else {
                http_addr.ip()
            };
            SocketAddr::new(host, http_addr.port()).to_string()
        });
        let me = Member {
            node: gov.node(),
            addr,
            http,
            wire: (MIN_WIRE_VERSION, WIRE_VERSION),
            bump: (now_ms() / 1000) as u32,
        };
        tracing::info!(node = %format!("{:016x}", me.node), quic = %bound, advertise = %addr, "cluster endpoint up");

        let (swim_tx, swim_rx) = mpsc::channel(4096);
        let (out_tx, mut out_rx) = mpsc::unbounded_channel();
        let cluster = Arc::new(Cluster {
            me: me.clone(),
            gov: gov.clone(),
            logs,
            health,
            transport,
            peers: RwLock::new(BTreeMap::new()),
            swim: swim_tx.clone(),
            seeds: c.seeds.clone(),
            share_health: c.share_health,
            lease_takeover: c.lease_takeover,
            sync: sync::Limits {
                page_items: c.sync_page_items,
                reply_bytes: c.sync_reply_bytes,
            },
            metrics: ClusterMetrics::new(metrics),
            cache: cache.clone(),
            cache_in_flight: Default::default(),
            sessions,
            audit,
        });
        let (outbox, outgoing) = mpsc::channel(share::OUTBOX);
        cache.share_to(outbox);
        let cl = cluster.clone();
        tasks.spawn(move |cancel| cl.share_cache(outgoing, cancel));
        let cl = cluster.clone();
        tasks.spawn(move |cancel| cl.pull_audit(cancel));

        let (feed_tx, mut feed_rx) = mpsc::unbounded_channel();
        gov.set_feed(feed_tx);

        let timers = swim_tx.clone();
        tasks.spawn(move |_cancel| {
            membership::run(me, membership::swim_config(), swim_rx, timers, out_tx)
        });
        let cl = cluster.clone();
        tasks.spawn(move |cancel| async move {
            while let Some(Some(out)) = cancel.run_until_cancelled(out_rx.recv()).await {
                match out {
                    Output::Send(addr, data) => cl.send_swim(addr, data),
                    Output::Notify(n) => cl.on_notification(n),
                }
            }
        });
        let cl = cluster.clone();
        tasks.spawn(move |cancel| async move {
            while let Some(Some(incoming)) = cancel.run_until_cancelled(cl.transport.accept()).await
            {
                let cl = cl.clone();
                tokio::spawn(async move {
                    match incoming.await {
                        Ok(conn) => {
                            cl.transport.adopt(&conn).await;
                            cl.serve_connection(conn);
                        }
                        Err(e) => {
                            cl.metrics.errors.with_label_values(&["handshake"]).inc();
                            tracing::warn!(error = %e, "refused a cluster connection");
                        }
                    }
                });
            }
        });
        let cl = cluster.clone();
        tasks.spawn(move |cancel| async move {
            while let Some(Some(first)) = cancel.run_until_cancelled(feed_rx.recv()).await {
                let mut batch = vec![first];
                while batch.len() < 512
                    && let Ok(c) = feed_rx.try_recv()
                {
                    batch.push(c);
                }
                cl.push(batch);
            }
        });
        let cl = cluster.clone();
        tasks.spawn(move |cancel| async move {
            let mut every = tokio::time::interval(RATE_SYNC);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while cancel.run_until_cancelled(every.tick()).await.is_some() {
                cl.push_rate_counts();
            }
        });
        let cl = cluster.clone();
        tasks.spawn(move |cancel| async move {
            let mut every = tokio::time::interval(HEALTH_GOSSIP);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while cancel.run_until_cancelled(every.tick()).await.is_some() {
                let summaries = cl.health.summaries();
                if cl.share_health && !summaries.is_empty() {
                    cl.broadcast(Body::Health(summaries));
                }
            }
        });
        let (short_tx, mut short_rx) = mpsc::unbounded_channel();
        gov.set_allowance_requests(short_tx);
        let cl = cluster.clone();
        tasks.spawn(move |cancel| async move {
            while let Some(Some(short)) = cancel.run_until_cancelled(short_rx.recv()).await {
                match short.lack {
                    Lack::Allowance => cl.ask_for_allowance(short),
                    Lack::Ceiling => cl.ask_for_ceiling(&short),
                }
            }
        });
        let cl = cluster.clone();
        tasks.spawn(move |cancel| async move {
            let mut every = tokio::time::interval(LEASE_TICK);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while cancel.run_until_cancelled(every.tick()).await.is_some() {
                cl.tend_leases().await;
            }
        });
        let cl = cluster.clone();
        tasks.spawn(move |cancel| async move { cl.join_loop(cancel).await });
        let cl = cluster.clone();
        let every = c.sync_interval;
        tasks.spawn(move |cancel| async move {
            let pause = || tokio::time::sleep(every + every.mul_f64(fastrand::f64() * 0.5));
            while cancel.run_until_cancelled(pause()).await.is_some() {
                if let Some(peer) = cl.random_alive_peer() {
                    cl.sync_logged(peer).await;
                }
            }
        });
        Ok(cluster)
    }

    /// Whether any peer is alive (a write may then be racing replication).
    pub fn has_peers(&self) -> bool {
        !self.alive().is_empty()
    }

    pub fn me(&self) -> &Member {
        &self.me
    }

    fn alive(&self) -> Vec<Member> {
        self.peers
            .read()
            .expect("peers lock")
            .values()
            .filter(|p| p.state == PeerState::Alive)
            .map(|p| p.member.clone())
            .collect()
    }

    fn random_alive_peer(&self) -> Option<Member> {
        let alive = self.alive();
        (!alive.is_empty()).then(|| alive[fastrand::usize(..alive.len())].clone())
    }

    /// Announces to every seed (names resolved again each time) until some
    /// peer is alive, then keeps checking, so a node that lost everyone finds
    /// the seeds again.
    async fn join_loop(self: Arc<Self>, cancel: tokio_util::sync::CancellationToken) {
        loop {
            let lonely = self.alive().is_empty();
            if lonely {
                for seed in &self.seeds {
                    for addr in resolve(seed).await {
                        if addr != self.me.addr {
                            let _ = self.swim.send(Input::Announce(addr)).await;
                        }
                    }
                }
            }
            let wait = if lonely {
                Duration::from_secs(1)
            } else {
                Duration::from_secs(15)
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = cancel.cancelled() => break,
            }
        }
    }

    fn send_swim(self: &Arc<Self>, addr: SocketAddr, data: bytes::Bytes) {
        let cl = self.clone();
        tokio::spawn(async move {
            let env = Envelope::new(cl.me.node, Body::Swim(data.to_vec()));
            let sent = match cl.connect(addr).await {
                Ok(conn) => Transport::send_datagram(&conn, &env),
                Err(e) => Err(e),
            };
            match sent {
                Ok(n) => cl.metrics.sent("swim", n),
                Err(e) => {
                    cl.metrics.errors.with_label_values(&["send"]).inc();
                    tracing::debug!(%addr, error = %e, "swim send failed");
                }
            }
        });
    }

    /// The connection to `addr`; a new one is served like an inbound one.
    async fn connect(
        self: &Arc<Self>,
        addr: SocketAddr,
    ) -> Result<quinn::Connection, TransportError> {
        let (conn, fresh) = self.transport.connection(addr).await.inspect_err(|e| {
            if matches!(e, TransportError::Connection(_)) {
                self.metrics.errors.with_label_values(&["handshake"]).inc();
            }
        })?;
        if fresh {
            self.serve_connection(conn.clone());
        }
        Ok(conn)
    }

    fn on_notification(self: &Arc<Self>, n: OwnedNotification<Member>) {
        let now = now_ms();
        let mut came_up = None;
        {
            let mut peers = self.peers.write().expect("peers lock");
            match n {
                OwnedNotification::MemberUp(m) => {
                    tracing::info!(node = %format!("{:016x}", m.node), addr = %m.addr, "member up");
                    came_up = Some(m.clone());
                    peers.insert(
                        m.node,
                        Peer {
                            member: m,
                            state: PeerState::Alive,
                            since_ms: now,
                            last_sync_ms: None,
                            last_lag_ms: None,
                        },
                    );
                }
                OwnedNotification::MemberDown(m) => {
                    tracing::warn!(node = %format!("{:016x}", m.node), addr = %m.addr, "member down");
                    if let Some(p) = peers.get_mut(&m.node)
                        && p.member == m
                    {
                        p.state = PeerState::Down;
                        p.since_ms = now;
                    }
                }
                OwnedNotification::Rename(old, new) => {
                    // The same address with a newer identity: a restart. foca
                    // renames only to a live identity, and says no MemberUp
                    // when it never saw the old one down — even if its
                    // `Leaving` already marked it down here — so the new
                    // identity is alive, and worth a sync (it may have missed
                    // changes while it was away).
                    if old.node != new.node {
                        peers.remove(&old.node);
                    } else if let Some(p) = peers.get_mut(&new.node) {
                        p.member = new.clone();
                        if p.state != PeerState::Alive {
                            p.state = PeerState::Alive;
                            p.since_ms = now;
                        }
                        came_up = Some(new);
                    }
                }
                OwnedNotification::Defunct => {
                    tracing::warn!("this node was declared down by the cluster; rejoining");
                }
                other => tracing::debug!(?other, "membership notification"),
            }
            let alive = peers
                .values()
                .filter(|p| p.state == PeerState::Alive)
                .count();
            self.metrics
                .members
                .with_label_values(&["alive"])
                .set(alive as i64);
            self.metrics
                .members
                .with_label_values(&["down"])
                .set((peers.len() - alive) as i64);
        }
        if let Some(m) = came_up {
            let cl = self.clone();
            tokio::spawn(async move { cl.sync_logged(m).await });
        }
    }

    /// Reads everything a peer sends on one connection: datagrams into SWIM,
    /// unidirectional streams of changes, bidirectional anti-entropy rounds.
    ///
    /// Every envelope must come from the node the connection's certificate
    /// names ([`tls::PeerIdentity`]), and every change it pushes must be one
    /// that node wrote itself ([`governance::authorship`]); others are
    /// dropped and counted (`tollgate_cluster_errors_total{cause="identity"}`).
    fn serve_connection(self: &Arc<Self>, conn: quinn::Connection) {
        let peer = Arc::new(tls::PeerIdentity::new(conn.clone()));
        let cl = self.clone();
        let c = conn.clone();
        let id = peer.clone();
        tokio::spawn(async move {
            while let Ok(d) = c.read_datagram().await {
                match Envelope::decode(&d) {
                    Ok(env) if !id.admits(env.from) => cl.impostor(&env),
                    Ok(Envelope {
                        body: Body::Swim(data),
                        ..
                    }) => {
                        cl.metrics.received("swim", d.len());
                        if cl.swim.send(Input::Datagram(data.into())).await.is_err() {
                            break;
                        }
                    }
                    Ok(other) => cl.unexpected(&other),
                    Err(e) => cl.undecodable(&e),
                }
            }
        });
        let cl = self.clone();
        let c = conn.clone();
        let id = peer.clone();
        tokio::spawn(async move {
            while let Ok(mut s) = c.accept_uni().await {
                let cl = cl.clone();
                let id = id.clone();
                tokio::spawn(async move {
                    let frame = read_frame(&mut s).await;
                    // Read to the end (the sender finished after one frame), so
                    // the stream is not stopped early and the sender's
                    // acknowledgement (rate counts) means delivered.
                    if matches!(frame, Ok(Some(_))) {
                        let _ = s.read_to_end(0).await;
                    }
                    match frame {
                        Ok(Some((env, _))) if !id.admits(env.from) => cl.impostor(&env),
                        Ok(Some((env, n))) => {
                            cl.metrics.received(kind(&env.body), n);
                            match env.body {
                                Body::Changes(changes) => {
                                    let own = cl.own_changes(env.from, changes);
                                    cl.apply(own, "push").await
                                }
                                Body::Leaving => cl.mark_left(env.from),
                                Body::CacheEntries(rows) => cl.import_cache(rows).await,
                                Body::Health(summaries) if cl.share_health => {
                                    cl.health.hear(env.from, &summaries, now_ms());
                                }
                                Body::Health(_) => {}
                                Body::AllowanceRequest { key, amount } => {
                                    let gave = cl.gov.give_allowance(&key, env.from, amount);
                                    let event = if gave { "gave" } else { "had_none" };
                                    cl.metrics.allowance.with_label_values(&[event]).inc();
                                    // A gift is outflow too: when the ceiling held it
                                    // back, raise it for the asker's next try.
                                    cl.ask_for_ceiling(&Shortfall {
                                        key,
                                        amount,
                                        lack: Lack::Ceiling,
                                    });
                                }
                                _ => cl.unexpected(&env),
                            }
                        }
                        Ok(None) => {}
                        Err(e) => cl.undecodable(&e),
                    }
                });
            }
        });
        let cl = self.clone();
        tokio::spawn(async move {
            while let Ok((send, recv)) = conn.accept_bi().await {
                let cl = cl.clone();
                let id = peer.clone();
                tokio::spawn(async move {
                    if let Err(e) = cl.answer_sync(&id, send, recv).await {
                        cl.metrics
                            .syncs
                            .with_label_values(&["responder", "error"])
                            .inc();
                        tracing::debug!(error = %e, "anti-entropy (responder) failed");
                    }
                });
            }
        });
    }

    fn impostor(&self, env: &Envelope) {
        self.metrics.errors.with_label_values(&["identity"]).inc();
        tracing::warn!(
            claimed = %format!("{:016x}", env.from),
            kind = kind(&env.body),
            "a peer claimed a node id its certificate does not carry; message dropped"
        );
    }

    /// The changes of a push that `from` wrote itself: a push carries only
    /// its sender's own writes (anti-entropy carries the rest).
    fn own_changes(&self, from: NodeId, mut changes: Vec<Change>) -> Vec<Change> {
        let before = changes.len();
        changes.retain(|c| crate::governance::authorship::written_only_by(c, from));
        if changes.len() < before {
            self.metrics
                .errors
                .with_label_values(&["identity"])
                .inc_by((before - changes.len()) as u64);
            tracing::warn!(
                peer = %format!("{from:016x}"),
                dropped = before - changes.len(),
                "a peer pushed changes written by another node; dropped"
            );
        }
        changes
    }

    fn unexpected(&self, env: &Envelope) {
        self.metrics.errors.with_label_values(&["unexpected"]).inc();
        tracing::debug!(kind = kind(&env.body), "unexpected message here; ignored");
    }

    fn undecodable(&self, e: &dyn std::fmt::Display) {
        self.metrics.errors.with_label_values(&["decode"]).inc();
        tracing::warn!(error = %e, "undecodable message from a peer; ignored");
    }

    fn mark_left(&self, node: NodeId) {
        if let Some(p) = self.peers.write().expect("peers lock").get_mut(&node) {
            p.state = PeerState::Down;
            p.since_ms = now_ms();
        }
    }

    /// Merges peers' changes into governance (on a blocking thread: it
    /// writes RocksDB).
    async fn apply(self: &Arc<Self>, changes: Vec<Change>, via: &'static str) {
        if changes.is_empty() {
            return;
        }
        let now = now_ms();
        let newest = changes
            .iter()
            .filter_map(|c| match c {
                Change::Row { row, .. } => row.last_write(),
                Change::Counter { .. } => None,
            })
            .max();
        if via == "push"
            && let Some(ts) = newest
        {
            let lag = now.saturating_sub(ts.wall_ms);
            self.metrics.lag.observe(lag as f64 / 1000.0);
            if let Some(p) = self.peers.write().expect("peers lock").get_mut(&ts.node) {
                p.last_lag_ms = Some(lag);
            }
        }
        let gov = self.gov.clone();
        match tokio::task::spawn_blocking(move || gov.apply_remote(&changes)).await {
            Ok(Ok(n)) => self
                .metrics
                .applied
                .with_label_values(&[via])
                .inc_by(n as u64),
            Ok(Err(e)) => tracing::error!(error = %e, "cannot apply a peer's changes"),
            Err(e) => tracing::error!(error = %e, "applying a peer's changes panicked"),
        }
    }

    /// Pushes this node's changes to every live peer. A push that fails is
    /// repaired by the next anti-entropy round.
    fn push(self: &Arc<Self>, changes: Vec<Change>) {
        self.broadcast(Body::Changes(changes));
    }

    /// Sends every live peer the rate-limit counts it has not acknowledged,
    /// on a unidirectional stream each. A stream the peer's QUIC stack
    /// acknowledged whole marks its counts held there; any other outcome
    /// leaves them to be sent again on the next tick, so a lost push costs
    /// one `RATE_SYNC` of delay, not the count. Nothing is sent to a peer
    /// that holds everything.
    fn push_rate_counts(self: &Arc<Self>) {
        let alive = self.alive();
        let nodes: Vec<NodeId> = alive.iter().map(|m| m.node).collect();
        self.gov.rate_peers(&nodes);
        for peer in alive {
            let counts = self.gov.rate_unacked(peer.node);
            if counts.is_empty() {
                continue;
            }
            let cl = self.clone();
            tokio::spawn(async move {
                let env = Envelope::new(cl.me.node, Body::Changes(counts));
                let sent = match cl.connect(peer.addr).await {
                    Ok(conn) => Transport::send_uni_acked(&conn, &env).await,
                    Err(e) => Err(e),
                };
                match sent {
                    Ok(n) => {
                        cl.metrics.sent("changes", n);
                        if let Body::Changes(counts) = &env.body {
                            cl.gov.rate_acked(peer.node, counts);
                        }
                    }
                    Err(e) => {
                        cl.metrics.errors.with_label_values(&["send"]).inc();
                        tracing::debug!(peer = %peer.addr, error = %e, "rate counts not delivered; sent again next tick");
                    }
                }
            });
        }
    }

    /// Sends one message to every live peer on a unidirectional stream each.
    fn broadcast(self: &Arc<Self>, body: Body) {
        let env = Arc::new(Envelope::new(self.me.node, body));
        for peer in self.alive() {
            let cl = self.clone();
            let env = env.clone();
            tokio::spawn(async move { cl.send_to(peer.addr, &env).await });
        }
    }

    /// Sends one message to `addr` on a unidirectional stream, counting it
    /// (or the failure). A lost message is repaired by anti-entropy or asked
    /// again, so failures are only counted and logged.
    async fn send_to(self: &Arc<Self>, addr: SocketAddr, env: &Envelope) {
        let kind = kind(&env.body);
        let sent = match self.connect(addr).await {
            Ok(conn) => Transport::send_uni(&conn, env).await,
            Err(e) => Err(e),
        };
        match sent {
            Ok(n) => self.metrics.sent(kind, n),
            Err(e) => {
                self.metrics.errors.with_label_values(&["send"]).inc();
                tracing::debug!(peer = %addr, error = %e, kind, "send failed");
            }
        }
    }

    /// Asks the live peer that holds the most allowance (as far as this node
    /// knows) for what a refused request lacked. The gift, if any, arrives as
    /// a pushed change and wakes the waiting request.
    fn ask_for_allowance(self: &Arc<Self>, short: Shortfall) {
        let best = self
            .alive()
            .into_iter()
            .map(|m| (self.gov.allowance_of(m.node, &short.key), m))
            .filter(|(free, _)| *free > 0)
            .max_by_key(|(free, _)| *free);
        let Some((_, peer)) = best else {
            self.metrics
                .allowance
                .with_label_values(&["no_giver"])
                .inc();
            return;
        };
        self.metrics.allowance.with_label_values(&["asked"]).inc();
        let cl = self.clone();
        tokio::spawn(async move {
            let env = Envelope::new(
                cl.me.node,
                Body::AllowanceRequest {
                    key: short.key,
                    amount: short.amount,
                },
            );
            cl.send_to(peer.addr, &env).await;
        });
    }

    async fn sync_logged(self: &Arc<Self>, peer: Member) {
        match self.sync_with(peer.addr).await {
            Ok(()) => {
                self.metrics
                    .syncs
                    .with_label_values(&["initiator", "ok"])
                    .inc();
                if let Some(p) = self.peers.write().expect("peers lock").get_mut(&peer.node) {
                    p.last_sync_ms = Some(now_ms());
                }
            }
            Err(e) => {
                self.metrics
                    .syncs
                    .with_label_values(&["initiator", "error"])
                    .inc();
                tracing::debug!(peer = %peer.addr, error = %e, "anti-entropy failed");
            }
        }
    }

    /// One anti-entropy round with the node at `addr`, in pages
    /// ([`sync`]): for each page of our digest, take what the peer has that
    /// we lack and give what it asks for, until the whole name space is
    /// covered. A peer that does not answer the first page (a node built
    /// before paging cannot decode it) gets one whole-state round instead.
    pub async fn sync_with(self: &Arc<Self>, addr: SocketAddr) -> Result<(), ClusterError> {
        let conn = self.connect(addr).await?;
        let (mut send, mut recv) = conn.open_bi().await.map_err(TransportError::from)?;
        let mut round = sync::Initiator::new(self.gov.digest(), self.sync);
        let mut first = true;
        while let Some(page) = round.next_page() {
            let body = Body::SyncPage {
                after: page.after,
                upto: page.upto,
                digest: page.digest,
            };
            let sent = write_frame(&mut send, &Envelope::new(self.me.node, body)).await;
            let read = match sent {
                Ok(n) => {
                    self.metrics.sent("sync_page", n);
                    read_frame(&mut recv).await
                }
                Err(e) => Err(e),
            };
            let (reply, n) = match read {
                Ok(Some(reply)) => reply,
                _ if first => return Ok(self.sync_whole(&conn).await?),
                Ok(None) => return Err(sync::SyncError::Ended.into()),
                Err(e) => return Err(e.into()),
            };
            first = false;
            if !tls::certified_as(&conn, reply.from) {
                self.impostor(&reply);
                return Ok(());
            }
            self.metrics.received(kind(&reply.body), n);
            let Body::SyncPageReply {
                covered,
                changes,
                wants,
            } = reply.body
            else {
                self.unexpected(&reply);
                return Ok(());
            };
            self.apply(changes, "sync").await;
            let give = round.on_reply(covered, &wants)?;
            let give = self.gov.changes_for(&give).into_iter().map(sized).collect();
            for frame in sync::chunks(give, self.sync.reply_bytes) {
                let env = Envelope::new(self.me.node, Body::SyncGive(frame));
                let n = write_frame(&mut send, &env).await?;
                self.metrics.sent("sync_give", n);
            }
        }
        send.finish().map_err(TransportError::from)?;
        // Wait for the peer to read everything before the stream goes away.
        let _ = send.stopped().await;
        Ok(())
    }

    /// A whole-state round in one exchange (`SyncDigest`), for peers that
    /// predate paging: bounded only by the frame limit.
    async fn sync_whole(self: &Arc<Self>, conn: &quinn::Connection) -> Result<(), TransportError> {
        let (mut send, mut recv) = conn.open_bi().await?;
        let digest = Envelope::new(self.me.node, Body::SyncDigest(self.gov.digest()));
        let n = write_frame(&mut send, &digest).await?;
        self.metrics.sent("sync_digest", n);
        let Some((reply, n)) = read_frame(&mut recv).await? else {
            return Ok(());
        };
        if !tls::certified_as(conn, reply.from) {
            self.impostor(&reply);
            return Ok(());
        }
        self.metrics.received("sync_reply", n);
        let Body::SyncReply { changes, wants } = reply.body else {
            self.unexpected(&reply);
            return Ok(());
        };
        self.apply(changes, "sync").await;
        let finish = Envelope::new(self.me.node, Body::SyncFinish(self.gov.changes_for(&wants)));
        let n = write_frame(&mut send, &finish).await?;
        self.metrics.sent("sync_finish", n);
        send.finish()?;
        // Wait for the peer to read everything before the stream goes away.
        let _ = send.stopped().await;
        Ok(())
    }

    async fn answer_sync(
        self: &Arc<Self>,
        peer: &tls::PeerIdentity,
        mut send: quinn::SendStream,
        mut recv: quinn::RecvStream,
    ) -> Result<(), TransportError> {
        let Some((first, n)) = read_frame(&mut recv).await? else {
            return Ok(());
        };
        if !peer.admits(first.from) {
            self.impostor(&first);
            return Ok(());
        }
        self.metrics.received(kind(&first.body), n);
        let theirs = match first.body {
            Body::SyncDigest(theirs) => theirs,
            page @ Body::SyncPage { .. } => {
                return self.answer_pages(first.from, page, send, recv).await;
            }
            Body::Query { what, args } => return self.answer_query(send, what, args).await,
            Body::Lease(asks) => return self.answer_lease(send, first.from, asks).await,
            _ => {
                self.unexpected(&first);
                return Ok(());
            }
        };
        let (changes, wants) = reconcile(&self.gov, theirs);
        let reply = Envelope::new(self.me.node, Body::SyncReply { changes, wants });
        let n = write_frame(&mut send, &reply).await?;
        self.metrics.sent("sync_reply", n);
        send.finish()?;
        if let Some((finish, n)) = read_frame(&mut recv).await? {
            self.metrics.received(kind(&finish.body), n);
            match finish.body {
                _ if finish.from != first.from => self.impostor(&finish),
                Body::SyncFinish(changes) => self.apply(changes, "sync").await,
                _ => self.unexpected(&finish),
            }
        }
        self.metrics
            .syncs
            .with_label_values(&["responder", "ok"])
            .inc();
        Ok(())
    }

    /// The responder's side of a paged round ([`sync`]): answers every page
    /// from one digest taken at the start, applies every give, until the
    /// initiator ends the stream.
    async fn answer_pages(
        self: &Arc<Self>,
        from: NodeId,
        mut body: Body,
        mut send: quinn::SendStream,
        mut recv: quinn::RecvStream,
    ) -> Result<(), TransportError> {
        let mine = sync::sorted(self.gov.digest());
        loop {
            match body {
                Body::SyncPage {
                    after,
                    upto,
                    digest,
                } => {
                    let gov = &self.gov;
                    let reply = sync::answer(
                        &mine,
                        after.as_deref(),
                        upto.as_deref(),
                        &digest,
                        self.sync.reply_bytes,
                        |name| gov.changes_for(&[name.to_string()]).pop().map(sized),
                    );
                    let body = Body::SyncPageReply {
                        covered: reply.covered,
                        changes: reply.changes,
                        wants: reply.wants,
                    };
                    let n = write_frame(&mut send, &Envelope::new(self.me.node, body)).await?;
                    self.metrics.sent("sync_page_reply", n);
                }
                Body::SyncGive(changes) => self.apply(changes, "sync").await,
                other => {
                    self.unexpected(&Envelope::new(from, other));
                    break;
                }
            }
            let Some((next, n)) = read_frame(&mut recv).await? else {
                break;
            };
            if next.from != from {
                self.impostor(&next);
                break;
            }
            self.metrics.received(kind(&next.body), n);
            body = next.body;
        }
        send.finish()?;
        let _ = send.stopped().await;
        self.metrics
            .syncs
            .with_label_values(&["responder", "ok"])
            .inc();
        Ok(())
    }

    async fn answer_query(
        self: &Arc<Self>,
        mut send: quinn::SendStream,
        what: String,
        args: String,
    ) -> Result<(), TransportError> {
        let logs = self.logs.clone();
        let cache = self.cache.clone();
        let sessions = self.sessions.clone();
        let audit = self.audit.clone();
        let now = self.gov.now_ms();
        let answer = tokio::task::spawn_blocking(move || -> Result<String, String> {
            let json = match what.as_str() {
                "logs" => {
                    let q: LogQuery = serde_json::from_str(&args).map_err(|e| e.to_string())?;
                    serde_json::to_string(&logs.query_marked(&q).map_err(|e| e.to_string())?)
                }
                "spend" => {
                    let q: SpendQuery = serde_json::from_str(&args).map_err(|e| e.to_string())?;
                    serde_json::to_string(
                        &spend::report(&logs, &q, now).map_err(|e| e.to_string())?,
                    )
                }
                "overview" => {
                    let q: OverviewQuery =
                        serde_json::from_str(&args).map_err(|e| e.to_string())?;
                    serde_json::to_string(&overview::report(&logs, &q).map_err(|e| e.to_string())?)
                }
                "audit_after" => {
                    let known: BTreeMap<String, u64> =
                        serde_json::from_str(&args).map_err(|e| e.to_string())?;
                    serde_json::to_string(&audit.after(&known).map_err(|e| e.to_string())?)
                }
                "session_revoke" => {
                    let r: Revocation = serde_json::from_str(&args).map_err(|e| e.to_string())?;
                    let id = r.id().ok_or("a session id is 32 hex digits")?;
                    sessions.revoke(id, r.expires_ms, now);
                    serde_json::to_string(&true)
                }
                "cache_clear" => {
                    let q: ClearArgs = serde_json::from_str(&args).map_err(|e| e.to_string())?;
                    serde_json::to_string(&cache.clear(&q.clear()).map_err(|e| e.to_string())?)
                }
                other => return Err(format!("this node does not answer '{other}' queries")),
            };
            Ok(json.expect("answers encode"))
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        let n = write_frame(
            &mut send,
            &Envelope::new(self.me.node, Body::Answer(answer)),
        )
        .await?;
        self.metrics.sent("answer", n);
        send.finish()?;
        let _ = send.stopped().await;
        Ok(())
    }

    /// Live peers (members this node sees alive).
    pub fn peers(&self) -> Vec<Member> {
        self.alive()
    }

    /// Ids (hex) of members this node knows but sees down: a cluster-wide
    /// answer cannot include them.
    pub fn down_peers(&self) -> Vec<String> {
        self.peers
            .read()
            .expect("peers lock")
            .values()
            .filter(|p| p.state == PeerState::Down)
            .map(|p| format!("{:016x}", p.member.node))
            .collect()
    }

    /// Asks every live peer `what` at once, each with the query `for_peer`
    /// makes for it (`None`: that peer is not asked). Returns the answers by
    /// node id (hex), and the nodes that could not answer: those seen down,
    /// and those whose query failed (logged).
    pub async fn ask_peers<Q: serde::Serialize, A: serde::de::DeserializeOwned>(
        self: &Arc<Self>,
        what: &str,
        for_peer: impl Fn(&Member) -> Option<Q>,
    ) -> (Vec<(String, A)>, Vec<String>) {
        let asks = self.peers().into_iter().filter_map(|peer| {
            let q = for_peer(&peer)?;
            Some(async move {
                let answer = self.query_peer(&peer, what, &q).await;
                (format!("{:016x}", peer.node), answer)
            })
        });
        let mut answers = Vec::new();
        let mut missing = self.down_peers();
        for (node, answer) in futures_util::future::join_all(asks).await {
            match answer {
                Ok(a) => answers.push((node, a)),
                Err(e) => {
                    tracing::warn!(%node, what, error = %e, "a peer did not answer a query");
                    missing.push(node);
                }
            }
        }
        (answers, missing)
    }

    /// Runs a query of node-local data (`what`: `logs` or `spend`) on a
    /// peer and decodes its answer.
    pub async fn query_peer<Q: serde::Serialize, A: serde::de::DeserializeOwned>(
        self: &Arc<Self>,
        peer: &Member,
        what: &str,
        q: &Q,
    ) -> Result<A, String> {
        let ask = async {
            let conn = self.connect(peer.addr).await.map_err(|e| e.to_string())?;
            let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
            let body = Body::Query {
                what: what.to_string(),
                args: serde_json::to_string(q).expect("queries encode"),
            };
            let n = write_frame(&mut send, &Envelope::new(self.me.node, body))
                .await
                .map_err(|e| e.to_string())?;
            self.metrics.sent("query", n);
            send.finish().map_err(|e| e.to_string())?;
            let (env, n) = read_frame(&mut recv)
                .await
                .map_err(|e| e.to_string())?
                .ok_or("the peer closed the stream")?;
            self.metrics.received("answer", n);
            match env.body {
                Body::Answer(Ok(json)) => serde_json::from_str(&json).map_err(|e| e.to_string()),
                Body::Answer(Err(e)) => Err(e),
                _ => Err("unexpected answer".to_string()),
            }
        };
        tokio::time::timeout(Duration::from_secs(10), ask)
            .await
            .unwrap_or_else(|_| Err("timed out".into()))
    }

    /// Leaves the cluster on purpose: peers hear it at once instead of
    /// suspecting a failure, then connections close.
    pub async fn leave(self: &Arc<Self>) {
        self.hand_back().await;
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.swim.send(Input::Leave(tx)).await.is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(1), rx).await;
        }
        let env = Envelope::new(self.me.node, Body::Leaving);
        let alive = self.alive();
        let sends = alive.iter().map(|peer| self.send_to(peer.addr, &env));
        let _ = tokio::time::timeout(
            Duration::from_secs(1),
            futures_util::future::join_all(sends),
        )
        .await;
        let _ = tokio::time::timeout(Duration::from_secs(1), self.transport.close()).await;
    }

    /// Gives every open budget window's unspent allowance to the budget's
    /// home (or, for budgets homed here, to a live peer) and delivers the
    /// gifts to every live peer before returning, so nothing this node held
    /// is stranded when it is gone.
    async fn hand_back(self: &Arc<Self>) {
        let alive = self.alive();
        if alive.is_empty() {
            return;
        }
        let me = self.me.node;
        let changes = self.gov.hand_back(|e| {
            if e.home != me && alive.iter().any(|m| m.node == e.home) {
                Some(e.home)
            } else {
                alive.first().map(|m| m.node)
            }
        });
        if changes.is_empty() {
            return;
        }
        tracing::info!(
            gifts = changes.len(),
            "handing allowance back before leaving"
        );
        self.metrics
            .allowance
            .with_label_values(&["handed_back"])
            .inc_by(changes.len() as u64);
        let env = Envelope::new(me, Body::Changes(changes));
        let sends = alive.iter().map(|peer| self.send_to(peer.addr, &env));
        let _ = tokio::time::timeout(
            Duration::from_secs(2),
            futures_util::future::join_all(sends),
        )
        .await;
    }

    /// What `GET /api/cluster` shows.
    pub fn view(&self) -> ClusterView {
        let now = now_ms();
        let peers = self.peers.read().expect("peers lock");
        ClusterView {
            enabled: true,
            node: format!("{:016x}", self.me.node),
            quic: self.me.addr.to_string(),
            http: self.me.http.clone(),
            wire: self.me.wire,
            members: peers
                .values()
                .map(|p| MemberView {
                    node: format!("{:016x}", p.member.node),
                    quic: p.member.addr.to_string(),
                    http: p.member.http.clone(),
                    wire: p.member.wire,
                    state: p.state,
                    since_ms: p.since_ms,
                    last_sync_ago_ms: p.last_sync_ms.map(|t| now.saturating_sub(t)),
                    last_push_lag_ms: p.last_lag_ms,
                })
                .collect(),
        }
    }
}

/// A change with its encoded size, for the page caps.
fn sized(c: Change) -> (Change, usize) {
    let n = postcard::to_stdvec(&c).map_or(0, |b| b.len());
    (c, n)
}

/// The responder's half of a whole-state (pre-paging) round: given the initiator's digest, our
/// whole state of every item it lacks or holds differently, and the items we
/// lack or hold differently. The initiator applies the first and answers the
/// second with [`Governance::changes_for`]; afterwards both hold the merge of
/// both states for every item either had.
pub fn reconcile(gov: &Governance, theirs: Vec<(String, u64)>) -> (Vec<Change>, Vec<String>) {
    let mine: HashMap<String, u64> = gov.digest().into_iter().collect();
    let theirs: HashMap<String, u64> = theirs.into_iter().collect();
    let send: Vec<String> = mine
        .iter()
        .filter(|(item, h)| theirs.get(*item) != Some(h))
        .map(|(item, _)| item.clone())
        .collect();
    let wants = theirs
        .iter()
        .filter(|(item, h)| mine.get(*item) != Some(h))
        .map(|(item, _)| item.clone())
        .collect();
    (gov.changes_for(&send), wants)
}

async fn resolve(host_port: &str) -> Vec<SocketAddr> {
    match tokio::net::lookup_host(host_port).await {
        Ok(addrs) => addrs.collect(),
        Err(e) => {
            tracing::debug!(seed = host_port, error = %e, "cannot resolve");
            Vec::new()
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ClusterView {
    pub enabled: bool,
    pub node: String,
    pub quic: String,
    pub http: String,
    pub wire: (u16, u16),
    pub members: Vec<MemberView>,
}

#[derive(Debug, Serialize)]
pub struct MemberView {
    pub node: String,
    pub quic: String,
    pub http: String,
    pub wire: (u16, u16),
    pub state: PeerState,
    /// When it entered its state (Unix ms).
    pub since_ms: u64,
    /// Time since the last completed anti-entropy round with it.
    pub last_sync_ago_ms: Option<u64>,
    /// How old its last pushed change was on arrival (clocks permitting).
    pub last_push_lag_ms: Option<u64>,
}
