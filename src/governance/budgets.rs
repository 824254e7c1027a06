//! Budgets: USD limits per period, and the ledger that admits requests
//! against them without overspending.
//!
//! A request *reserves* its worst-case cost in every budget that applies
//! (key, team, customer) before it is sent, under one lock, so concurrent
//! requests can never together pass a limit; when it finishes it *settles*:
//! the reservation is released and the actual cost is added to the period's
//! spend counter. Spend is a grow-only counter per (scope, window), so a new
//! period is simply a new counter and needs no reset.
//!
//! Windows: calendar-aligned budgets follow UTC (minutes, hours, days, weeks
//! from Monday, months, quarters, years); others are fixed-length windows
//! (1m, 1h, 1d, 1w, 30 days, 91 days, 365 days) counted from the budget's
//! anchor time.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Mutex;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::pricing::Micros;
use crate::state::counter::GCounter;
use crate::state::{Change, Merge, NodeId};
use crate::store::{self, CF_STATE, Store, StoreError};

pub mod lease;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Period {
    #[serde(rename = "1m")]
    Minute,
    #[serde(rename = "1h")]
    Hour,
    #[serde(rename = "1d")]
    Day,
    #[serde(rename = "1w")]
    Week,
    #[serde(rename = "1M")]
    Month,
    #[serde(rename = "1Q")]
    Quarter,
    #[serde(rename = "1Y")]
    Year,
}

impl Period {
    pub fn label(self) -> &'static str {
        match self {
            Period::Minute => "1m",
            Period::Hour => "1h",
            Period::Day => "1d",
            Period::Week => "1w",
            Period::Month => "1M",
            Period::Quarter => "1Q",
            Period::Year => "1Y",
        }
    }

    /// Length of a non-calendar window.
    fn fixed_ms(self) -> u64 {
        const MIN: u64 = 60_000;
        const DAY: u64 = 24 * 60 * MIN;
        match self {
            Period::Minute => MIN,
            Period::Hour => 60 * MIN,
            Period::Day => DAY,
            Period::Week => 7 * DAY,
            Period::Month => 30 * DAY,
            Period::Quarter => 91 * DAY,
            Period::Year => 365 * DAY,
        }
    }
}

/// An amount of US dollars held exactly as micro-dollars; written in JSON as
/// a decimal string (`"12.50"`) or a whole number of dollars.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Usd(pub Micros);

impl fmt::Display for Usd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:06}", self.0 / 1_000_000, self.0 % 1_000_000)
    }
}

impl Usd {
    /// Parses `"12"`, `"12.5"`, `"0.000001"`; more than six decimals is an error.
    pub fn parse(s: &str) -> Result<Usd, String> {
        let bad = || format!("{s:?} is not a USD amount like \"12.50\"");
        let (whole, frac) = s.trim().split_once('.').unwrap_or((s.trim(), ""));
        if whole.is_empty()
            || !whole.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        if frac.len() > 6 {
            return Err(format!("{s:?} has more than six decimals (micro-dollars)"));
        }
        let whole: u64 = whole.parse().map_err(|_| bad())?;
        let frac_micros: u64 = format!("{frac:0<6}").parse().map_err(|_| bad())?;
        whole
            .checked_mul(1_000_000)
            .and_then(|w| w.checked_add(frac_micros))
            .map(Usd)
            .ok_or_else(bad)
    }
}

impl Serialize for Usd {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Usd {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Whole(u64),
        }
        match Raw::deserialize(d)? {
            Raw::Text(s) => Usd::parse(&s).map_err(serde::de::Error::custom),
            Raw::Whole(n) => n
                .checked_mul(1_000_000)
                .map(Usd)
                .ok_or_else(|| serde::de::Error::custom("amount too large")),
        }
    }
}

/// A spending limit over a recurring period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    pub limit_usd: Usd,
    pub period: Period,
    /// Align windows to the UTC calendar (months start on the 1st, weeks on Monday).
    #[serde(default)]
    pub calendar: bool,
    /// Start of the first window of a non-calendar budget (Unix ms); set when
    /// the budget is written if absent.
    #[serde(default)]
    pub anchor_ms: u64,
}

/// `[start, end)` of the window containing `now`, in Unix ms.
pub fn window(b: &Budget, now_ms: u64) -> (u64, u64) {
    if !b.calendar {
        let len = b.period.fixed_ms();
        let anchor = b.anchor_ms.min(now_ms);
        let start = anchor + (now_ms - anchor) / len * len;
        return (start, start + len);
    }
    const DAY: u64 = 86_400_000;
    match b.period {
        Period::Minute | Period::Hour | Period::Day => {
            let len = b.period.fixed_ms();
            let start = now_ms / len * len;
            (start, start + len)
        }
        Period::Week => {
            let day = now_ms / DAY;
            // 1970-01-01 was a Thursday: (day + 3) % 7 is days since Monday.
            let monday = day - (day + 3) % 7;
            (monday * DAY, (monday + 7) * DAY)
        }
        Period::Month | Period::Quarter | Period::Year => {
            let (y, m, _) = civil_from_days((now_ms / DAY) as i64);
            let (first_month, months) = match b.period {
                Period::Month => (m, 1),
                Period::Quarter => ((m - 1) / 3 * 3 + 1, 3),
                _ => (1, 12),
            };
            let start = days_from_civil(y, first_month, 1);
            let (ny, nm) = add_months(y, first_month, months);
            let end = days_from_civil(ny, nm, 1);
            (start as u64 * DAY, end as u64 * DAY)
        }
    }
}

fn add_months(y: i64, m: u32, n: u32) -> (i64, u32) {
    let total = (m - 1) + n;
    (y + i64::from(total / 12), total % 12 + 1)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number (inverse of [`days_from_civil`]).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Who a budget belongs to: `key:vk_…`, `team:team_…`, `customer:cus_…`.
pub type Scope = String;

/// One spend counter: a scope's spend in one window.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CounterKey {
    pub scope: Scope,
    pub start_ms: u64,
    pub end_ms: u64,
}

impl CounterKey {
    /// The counter's name: its key in the store and in replication.
    pub fn name(&self) -> String {
        format!(
            "spend\0{}\0{:020}\0{:020}",
            self.scope, self.start_ms, self.end_ms
        )
    }

    /// The key a [`CounterKey::name`] was made from.
    pub fn from_name(name: &str) -> Option<CounterKey> {
        let mut parts = name.strip_prefix("spend\0")?.split('\0');
        let scope = parts.next()?.to_string();
        let start_ms = parts.next()?.parse().ok()?;
        let end_ms = parts.next()?.parse().ok()?;
        if parts.next().is_some() || scope.is_empty() {
            return None;
        }
        Some(CounterKey {
            scope,
            start_ms,
            end_ms,
        })
    }
}

/// A refused admission.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "budget exceeded for {scope}: {limit} USD per {period} (spent {spent}, {reserved} reserved by requests in flight, this request may cost up to {asked})"
)]
pub struct BudgetExceeded {
    pub scope: Scope,
    pub period: &'static str,
    pub limit: Usd,
    pub spent: Usd,
    pub reserved: Usd,
    pub asked: Usd,
    /// Set when the cluster as a whole still has room and only this node's
    /// allowance is short: a peer may give it what is missing.
    pub shortfall: Option<Shortfall>,
}

/// What a node lacks to admit a request: `amount` more allowance in the
/// window named `key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shortfall {
    pub key: String,
    pub amount: Micros,
    pub lack: Lack,
}

/// What a node short of room lacks: allowance (a peer may give some), or
/// room under its lease's ceiling (its deputy may raise it; see `lease`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lack {
    Allowance,
    Ceiling,
}

/// Cost held in every applicable window until the request settles.
#[derive(Debug)]
pub struct Reservation {
    keys: Vec<CounterKey>,
    amount: Micros,
    /// Its row in the journal of reservations in flight, once written.
    journal: Option<u64>,
}

/// Why a reservation was not made.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error(transparent)]
    Exceeded(#[from] BudgetExceeded),
    /// The journal could not be written (a full or failing disk): nothing is
    /// admitted that a crash could forget to charge.
    #[error("spend cannot be recorded on this node: {0}")]
    Unavailable(StoreError),
}

/// Journal rows of reservations in flight: `held\0<id>` → (windows,
/// amount). Written to stable storage before a request is sent and removed
/// in the same durable write that records its spend, so what a crash leaves
/// behind is what was in flight: it is charged in full when the node opens
/// its ledger again.
const HELD_PREFIX: &[u8] = b"held\0";

fn held_key(id: u64) -> Vec<u8> {
    let mut k = HELD_PREFIX.to_vec();
    k.extend_from_slice(&id.to_be_bytes());
    k
}

impl Reservation {
    pub fn amount(&self) -> Micros {
        self.amount
    }
}

/// Where a budget's allowance comes from: its limit, and the node that holds
/// the whole limit at the start of every window (the budget's home).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Escrow {
    pub limit: Micros,
    pub home: NodeId,
}

/// The name of a replicated counter of the ledger: a window's spend (one slot
/// per spending node), or the allowance one node gave away in a window (one
/// slot per receiving node, written only by the giver).
/// A third kind, allowance a deputy took over from a silent holder, is named
/// and written like a gift (`take\0<taker>\0<window>`, one slot per holder
/// it took from, written only by the taker; see `lease`).
enum CounterName {
    Spend(CounterKey),
    Given { giver: NodeId, key: CounterKey },
    Taken { taker: NodeId, key: CounterKey },
}

impl CounterName {
    fn parse(name: &str) -> Option<CounterName> {
        if name.starts_with("spend\0") {
            return CounterKey::from_name(name).map(CounterName::Spend);
        }
        let by_writer = |prefix: &str| -> Option<(NodeId, CounterKey)> {
            let rest = name.strip_prefix(prefix)?;
            let (writer, spend) = rest.split_once('\0')?;
            let writer = u64::from_str_radix(writer, 16).ok()?;
            Some((writer, CounterKey::from_name(&format!("spend\0{spend}"))?))
        };
        if let Some((giver, key)) = by_writer("give\0") {
            return Some(CounterName::Given { giver, key });
        }
        let (taker, key) = by_writer("take\0")?;
        Some(CounterName::Taken { taker, key })
    }
}

/// `prefix\0<writer>\0<window>`: the name of a counter only `writer` writes.
fn written_name(prefix: &str, writer: NodeId, key: &CounterKey) -> String {
    let spend = key.name();
    format!(
        "{prefix}\0{writer:016x}\0{}",
        spend.strip_prefix("spend\0").expect("spend names start so")
    )
}

fn given_name(giver: NodeId, key: &CounterKey) -> String {
    written_name("give", giver, key)
}

#[derive(Default)]
struct Books {
    spend: HashMap<CounterKey, GCounter>,
    /// Allowance given away in each window: giver → its receivers' slots.
    given: HashMap<CounterKey, BTreeMap<NodeId, GCounter>>,
    /// Allowance taken over from silent holders: taker → holders' slots.
    taken: HashMap<CounterKey, BTreeMap<NodeId, GCounter>>,
    reserved: HashMap<CounterKey, Micros>,
    /// This node's leases: its deputy and ceiling in each window.
    leases: HashMap<CounterKey, lease::Lease>,
    /// Ceilings this node granted as deputy: (holder, window) → ceiling.
    guarded: HashMap<(NodeId, CounterKey), Micros>,
    /// Journal rows (store keys, windows) of requests settled here whose
    /// durable write failed: removed by the next write that succeeds.
    stale_held: Vec<(Vec<u8>, Vec<CounterKey>)>,
}

impl Books {
    /// What `node` may still spend in window `key`: the whole limit if it is
    /// the home, plus what it was given, minus what it gave and spent. The
    /// allowances of all nodes sum to the limit minus total spend, whatever
    /// each node knows, because only a giver writes its gifts: a gift lowers
    /// the giver's allowance before anyone can see it raise the receiver's.
    ///
    /// A node's own allowance can go below zero only when the home moved
    /// away from it (a budget edited through another node, or `forget`): it
    /// spent the limit it held as home. Its debt is the new home's to carry,
    /// so the home's allowance is reduced by every other node's debt and the
    /// positive allowances never sum to more than the limit minus the spend
    /// this node knows of (what the old home had in flight when the home
    /// moved is the only slack; see docs/cluster.md).
    fn allowance(&self, node: NodeId, key: &CounterKey, e: Escrow) -> i128 {
        let own = self.own_allowance(node, key, e);
        if node != e.home {
            return own;
        }
        let debts: i128 = self
            .nodes_in(key)
            .filter(|n| *n != node)
            .map(|n| (-self.own_allowance(n, key, e)).max(0))
            .sum();
        own - debts
    }

    fn own_allowance(&self, node: NodeId, key: &CounterKey, e: Escrow) -> i128 {
        let base = if node == e.home {
            i128::from(e.limit)
        } else {
            0
        };
        let (received, gave) = from_and_to(self.given.get(key), node);
        let (lost, took) = from_and_to(self.taken.get(key), node);
        let spent = self.spend.get(key).map_or(0, |c| i128::from(c.of(node)));
        base + received + took - gave - lost - spent
    }

    /// What went out of this node's allowance in window `key`: its spend,
    /// its gifts and its reservations in flight (what a lease's ceiling caps).
    fn outflow(&self, node: NodeId, key: &CounterKey) -> i128 {
        let spent = self.spend.get(key).map_or(0, |c| c.of(node));
        let gave = self
            .given
            .get(key)
            .and_then(|by| by.get(&node))
            .map_or(0, GCounter::value);
        let reserved = self.reserved.get(key).copied().unwrap_or(0);
        i128::from(spent) + i128::from(gave) + i128::from(reserved)
    }

    /// Room under this node's lease in window `key` (none without a lease).
    fn ceiling_room(&self, node: NodeId, key: &CounterKey) -> Option<i128> {
        let l = self.leases.get(key)?;
        Some(i128::from(l.ceiling) - self.outflow(node, key))
    }

    /// What `node` may still give or reserve in window `key`: its unreserved
    /// allowance, capped by the room under its lease.
    fn free(&self, node: NodeId, key: &CounterKey, e: Escrow) -> i128 {
        let reserved = self.reserved.get(key).copied().unwrap_or(0);
        let free = self.allowance(node, key, e) - i128::from(reserved);
        self.ceiling_room(node, key)
            .map_or(free, |room| free.min(room))
    }

    /// Every node that spent, gave or received in window `key`.
    fn nodes_in(&self, key: &CounterKey) -> impl Iterator<Item = NodeId> {
        let mut nodes: std::collections::BTreeSet<NodeId> = self
            .spend
            .get(key)
            .map(|c| c.slots.keys().copied().collect())
            .unwrap_or_default();
        for by in [self.given.get(key), self.taken.get(key)]
            .into_iter()
            .flatten()
        {
            for (writer, c) in by {
                nodes.insert(*writer);
                nodes.extend(c.slots.keys().copied());
            }
        }
        nodes.into_iter()
    }
}

/// What `node` received from the writers of `by` (gifts or takes), and
/// what it wrote itself.
fn from_and_to(by: Option<&BTreeMap<NodeId, GCounter>>, node: NodeId) -> (i128, i128) {
    by.map_or((0, 0), |by| {
        let received = by
            .iter()
            .filter(|(w, _)| **w != node)
            .map(|(_, c)| i128::from(c.of(node)))
            .sum();
        let wrote = by.get(&node).map_or(0, |c| i128::from(c.value()));
        (received, wrote)
    })
}

/// Charges every journal row a crash left (at its whole amount, in every
/// window it held) and removes them, in one durable write.
fn recover_held(node: NodeId, store: &Store, books: &mut Books) -> Result<(), StoreError> {
    let held =
        store.load_prefix::<(Vec<CounterKey>, Micros)>(CF_STATE, HELD_PREFIX, COUNTER_VERSION)?;
    if held.is_empty() {
        return Ok(());
    }
    let mut touched: Vec<CounterKey> = Vec::new();
    for (_, (keys, amount)) in &held {
        for k in keys {
            books.spend.entry(k.clone()).or_default().add(node, *amount);
            if !touched.contains(k) {
                touched.push(k.clone());
            }
        }
    }
    let rows: Vec<(String, Vec<u8>)> = touched
        .iter()
        .map(|k| {
            let counter = books.spend.get(k).expect("just added");
            store::encode(COUNTER_VERSION, &(k, counter)).map(|v| (k.name(), v))
        })
        .collect::<Result<_, _>>()?;
    let ids: Vec<Vec<u8>> = held
        .iter()
        .map(|(id, _)| [HELD_PREFIX, id.as_slice()].concat())
        .collect();
    store.write_durable(
        CF_STATE,
        rows.iter().map(|(k, v)| (k.as_bytes(), v.as_slice())),
        ids.iter().map(Vec::as_slice),
    )?;
    tracing::warn!(
        requests = held.len(),
        "charged the reservations of requests in flight when this node last stopped"
    );
    Ok(())
}

/// Spend counters, allowances and in-flight reservations of this node.
pub struct Ledger {
    node: NodeId,
    store: Store,
    books: Mutex<Books>,
    /// The next journal row id.
    next_held: std::sync::atomic::AtomicU64,
    /// Windows that ended before this (Unix ms) were collected: a peer's
    /// counter of one is dropped rather than brought back.
    collected_before: std::sync::atomic::AtomicU64,
    /// Whether each journal row and each settlement waits for its own sync
    /// of the write-ahead log (`server.spend_sync_interval = "0s"`), or is
    /// only logged, for `SpendSync` to sync with those of other requests.
    each_synced: bool,
}

/// Format version of persisted spend counters.
const COUNTER_VERSION: u8 = 1;

impl Ledger {
    /// Loads every persisted spend and allowance counter.
    pub fn open(node: NodeId, store: Store) -> Result<Ledger, StoreError> {
        let mut books = Books::default();
        for (_, (k, c)) in
            store.load_prefix::<(CounterKey, GCounter)>(CF_STATE, b"spend\0", COUNTER_VERSION)?
        {
            books.spend.entry(k).or_default().merge(&c);
        }
        for (_, (giver, k, c)) in store.load_prefix::<(NodeId, CounterKey, GCounter)>(
            CF_STATE,
            b"give\0",
            COUNTER_VERSION,
        )? {
            books
                .given
                .entry(k)
                .or_default()
                .entry(giver)
                .or_default()
                .merge(&c);
        }
        for (_, (taker, k, c)) in store.load_prefix::<(NodeId, CounterKey, GCounter)>(
            CF_STATE,
            b"take\0",
            COUNTER_VERSION,
        )? {
            books
                .taken
                .entry(k)
                .or_default()
                .entry(taker)
                .or_default()
                .merge(&c);
        }
        lease::load(&store, &mut books)?;
        // Peers learn the charged spend through anti-entropy, like any
        // counter this node wrote while they did not hear it.
        recover_held(node, &store, &mut books)?;
        Ok(Ledger {
            node,
            store,
            books: Mutex::new(books),
            next_held: std::sync::atomic::AtomicU64::new(0),
            collected_before: std::sync::atomic::AtomicU64::new(0),
            each_synced: true,
        })
    }

    /// From now on journal rows and settlements are written to the log
    /// without a sync of their own; the caller syncs them in groups
    /// (`SpendSync`) and tells peers of settled spend only after.
    pub fn sync_in_groups(mut self) -> Ledger {
        self.each_synced = false;
        self
    }

    /// A write of the journal or of settled spend, synced now or logged for
    /// the next group sync.
    fn write_spend<'a>(
        &self,
        puts: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
        deletes: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<(), StoreError> {
        if self.each_synced {
            self.store.write_durable(CF_STATE, puts, deletes)
        } else {
            self.store.write_logged(CF_STATE, puts, deletes)
        }
    }

    /// A durable write and its removal: whether the disk takes writes.
    pub fn probe(&self) -> Result<(), StoreError> {
        // Not under the journal's prefix: a crash between the two writes
        // must not leave a row that reads as a reservation.
        let key = b"probe\0disk".to_vec();
        self.store
            .write_durable(CF_STATE, [(key.as_slice(), &[0u8][..])], [])?;
        self.store.write_durable(CF_STATE, [], [key.as_slice()])
    }

    /// Writes `r` to the journal of reservations in flight before the
    /// request it holds for is sent (synced, or logged for the next group
    /// sync). On failure the reservation is released and the caller must
    /// refuse the request.
    pub fn journal(&self, r: &mut Reservation) -> Result<(), StoreError> {
        let id = self
            .next_held
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let row = store::encode(COUNTER_VERSION, &(&r.keys, r.amount))?;
        self.write_spend([(held_key(id).as_slice(), row.as_slice())], [])?;
        r.journal = Some(id);
        Ok(())
    }

    /// Reserves `amount` in every budget of every scope, or nothing at all.
    /// A budget admits a request only from this node's own allowance
    /// (`escrow` tells each budget's home).
    pub fn reserve(
        &self,
        budgets: &[(Scope, Budget)],
        amount: Micros,
        now_ms: u64,
        home: impl Fn(&str) -> NodeId,
    ) -> Result<Reservation, BudgetExceeded> {
        let mut books = self.books.lock().expect("ledger lock");
        let mut keys = Vec::with_capacity(budgets.len());
        for (scope, b) in budgets {
            let (start_ms, end_ms) = window(b, now_ms);
            let key = CounterKey {
                scope: scope.clone(),
                start_ms,
                end_ms,
            };
            let escrow = Escrow {
                limit: b.limit_usd.0,
                home: home(scope),
            };
            let spent = books.spend.get(&key).map_or(0, GCounter::value);
            let reserved = books.reserved.get(&key).copied().unwrap_or(0);
            let mine = books.allowance(self.node, &key, escrow) - i128::from(reserved);
            if i128::from(amount) > mine {
                let cluster_room =
                    spent.saturating_add(reserved).saturating_add(amount) <= b.limit_usd.0;
                return Err(BudgetExceeded {
                    scope: scope.clone(),
                    period: b.period.label(),
                    limit: b.limit_usd,
                    spent: Usd(spent),
                    reserved: Usd(reserved),
                    asked: Usd(amount),
                    shortfall: cluster_room.then(|| Shortfall {
                        key: key.name(),
                        amount: (i128::from(amount) - mine.max(0)) as Micros,
                        lack: Lack::Allowance,
                    }),
                });
            }
            // Within the allowance, but over the ceiling of this node's
            // lease: its deputy may raise the ceiling.
            if let Some(room) = books.ceiling_room(self.node, &key)
                && i128::from(amount) > room
            {
                return Err(BudgetExceeded {
                    scope: scope.clone(),
                    period: b.period.label(),
                    limit: b.limit_usd,
                    spent: Usd(spent),
                    reserved: Usd(reserved),
                    asked: Usd(amount),
                    shortfall: Some(Shortfall {
                        key: key.name(),
                        amount: (i128::from(amount) - room.max(0)) as Micros,
                        lack: Lack::Ceiling,
                    }),
                });
            }
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        for k in &keys {
            *books.reserved.entry(k.clone()).or_default() += amount;
        }
        Ok(Reservation {
            keys,
            amount,
            journal: None,
        })
    }

    /// Releases a reservation and records the actual cost in the scopes
    /// `charged` accepts (a provider's budget is charged only when that
    /// provider served the request). Returns the counter deltas to replicate.
    pub fn settle(
        &self,
        r: Reservation,
        actual: Micros,
        charged: impl Fn(&str) -> bool,
    ) -> Result<Vec<Change>, StoreError> {
        let mut books = self.books.lock().expect("ledger lock");
        for k in &r.keys {
            if let Some(held) = books.reserved.get_mut(k) {
                *held = held.saturating_sub(r.amount);
                if *held == 0 {
                    books.reserved.remove(k);
                }
            }
        }
        let held = r.journal.map(held_key);
        let mut rows = Vec::with_capacity(r.keys.len());
        let mut changes = Vec::with_capacity(r.keys.len());
        if actual > 0 {
            for k in r.keys.iter().filter(|k| charged(&k.scope)) {
                let counter = books.spend.entry(k.clone()).or_default();
                let delta = counter.add(self.node, actual);
                rows.push((k.name(), store::encode(COUNTER_VERSION, &(k, &*counter))?));
                changes.push(Change::Counter {
                    key: k.name(),
                    counter: delta,
                });
            }
        }
        // Journal rows of requests settled while writes failed go in the
        // same write, with every counter they touched as it now stands:
        // otherwise a later write would persist their spend while their row
        // stayed, and the next start would charge them again.
        let stale = std::mem::take(&mut books.stale_held);
        for (_, keys) in &stale {
            for k in keys {
                if !rows.iter().any(|(name, _)| *name == k.name())
                    && let Some(c) = books.spend.get(k)
                {
                    rows.push((k.name(), store::encode(COUNTER_VERSION, &(k, c))?));
                }
            }
        }
        let deletes: Vec<&[u8]> = held
            .iter()
            .chain(stale.iter().map(|(h, _)| h))
            .map(Vec::as_slice)
            .collect();
        if rows.is_empty() && deletes.is_empty() {
            return Ok(changes);
        }
        // Persisted under the lock (a later write never carries an older
        // value), with the journal row's removal, before any peer can hear
        // of it (in groups: after the sync that covers this write).
        let written = self.write_spend(
            rows.iter().map(|(k, v)| (k.as_bytes(), v.as_slice())),
            deletes,
        );
        if let Err(e) = written {
            books.stale_held = stale;
            if let Some(h) = held {
                books.stale_held.push((h, r.keys.clone()));
            }
            return Err(e);
        }
        Ok(changes)
    }

    /// This node's unreserved allowance in the window named `key` (a spend
    /// counter name), or what `node` holds as far as this node knows.
    pub fn available(&self, node: NodeId, key: &str, e: Escrow) -> i128 {
        let Some(key) = CounterKey::from_name(key) else {
            return 0;
        };
        let books = self.books.lock().expect("ledger lock");
        let reserved = if node == self.node {
            books.reserved.get(&key).copied().unwrap_or(0)
        } else {
            0
        };
        books.allowance(node, &key, e) - i128::from(reserved)
    }

    /// Gives `to` part of this node's unreserved allowance in window `key`:
    /// at least `asked` if it can, and half of what it has if that is more,
    /// so allowance spreads to where requests are in few round trips.
    /// Returns the change to replicate, or `None` if it has nothing to give.
    pub fn give(
        &self,
        key: &str,
        to: NodeId,
        asked: Micros,
        e: Escrow,
    ) -> Result<Option<Change>, StoreError> {
        let Some(key) = CounterKey::from_name(key) else {
            return Ok(None);
        };
        if to == self.node {
            return Ok(None);
        }
        let mut books = self.books.lock().expect("ledger lock");
        let free = books.free(self.node, &key, e);
        if free <= 0 {
            return Ok(None);
        }
        let gift = free.min(i128::from(asked).max(free / 2)) as u64;
        self.record_gift(&mut books, &key, to, gift).map(Some)
    }

    /// Gives away everything this node holds in every window still open at
    /// `now_ms` whose budget `escrow` knows, to the node `to` picks: what a
    /// node does before it leaves the cluster. Returns the changes to send.
    pub fn hand_back(
        &self,
        now_ms: u64,
        escrow: impl Fn(&CounterKey) -> Option<Escrow>,
        to: impl Fn(&Escrow) -> Option<NodeId>,
    ) -> Result<Vec<Change>, StoreError> {
        let mut books = self.books.lock().expect("ledger lock");
        let keys: Vec<CounterKey> = books
            .spend
            .keys()
            .chain(books.given.keys())
            .filter(|k| k.end_ms > now_ms)
            .cloned()
            .collect::<std::collections::HashSet<_>>()
            .into_iter()
            .collect();
        let mut out = Vec::new();
        for key in keys {
            let Some(e) = escrow(&key) else { continue };
            let free = books.free(self.node, &key, e);
            if let Some(receiver) = to(&e)
                && free > 0
                && receiver != self.node
            {
                out.push(self.record_gift(&mut books, &key, receiver, free as u64)?);
            }
        }
        Ok(out)
    }

    fn record_gift(
        &self,
        books: &mut Books,
        key: &CounterKey,
        to: NodeId,
        amount: Micros,
    ) -> Result<Change, StoreError> {
        let mine = books
            .given
            .entry(key.clone())
            .or_default()
            .entry(self.node)
            .or_default();
        let delta = mine.add(to, amount);
        let name = given_name(self.node, key);
        let row = store::encode(COUNTER_VERSION, &(self.node, key, &*mine))?;
        // On stable storage before anyone can hear of it: the gift is never
        // undone, not even by a crash of this node right after sending it.
        self.store
            .write_durable(CF_STATE, [(name.as_bytes(), row.as_slice())], [])?;
        Ok(Change::Counter {
            key: name,
            counter: delta,
        })
    }

    /// Every counter by name, for anti-entropy.
    pub fn counters(&self) -> Vec<(String, GCounter)> {
        let books = self.books.lock().expect("ledger lock");
        let spend = books.spend.iter().map(|(k, c)| (k.name(), c.clone()));
        let given = books.given.iter().flat_map(|(k, by)| {
            by.iter()
                .map(move |(giver, c)| (given_name(*giver, k), c.clone()))
        });
        let taken = books.taken.iter().flat_map(|(k, by)| {
            by.iter()
                .map(move |(taker, c)| (lease::taken_name(*taker, k), c.clone()))
        });
        spend.chain(given).chain(taken).collect()
    }

    /// The counter `name`, if this node has it.
    pub fn counter(&self, name: &str) -> Option<GCounter> {
        let books = self.books.lock().expect("ledger lock");
        match CounterName::parse(name)? {
            CounterName::Spend(key) => books.spend.get(&key).cloned(),
            CounterName::Given { giver, key } => books.given.get(&key)?.get(&giver).cloned(),
            CounterName::Taken { taker, key } => books.taken.get(&key)?.get(&taker).cloned(),
        }
    }

    /// Merges a counter delta from a peer and persists the result. Names that
    /// are not ledger counters are ignored (`Ok(false)`).
    pub fn merge(&self, name: &str, delta: &GCounter) -> Result<bool, StoreError> {
        fn grew(c: &mut GCounter, delta: &GCounter) -> bool {
            let before = c.clone();
            c.merge(delta);
            *c != before
        }
        let Some(parsed) = CounterName::parse(name) else {
            return Ok(false);
        };
        let window = match &parsed {
            CounterName::Spend(k)
            | CounterName::Given { key: k, .. }
            | CounterName::Taken { key: k, .. } => k,
        };
        let collected = self
            .collected_before
            .load(std::sync::atomic::Ordering::Relaxed);
        if window.end_ms <= collected {
            return Ok(false);
        }
        let mut books = self.books.lock().expect("ledger lock");
        let row = match &parsed {
            CounterName::Spend(key) => {
                let c = books.spend.entry(key.clone()).or_default();
                if !grew(c, delta) {
                    return Ok(false);
                }
                store::encode(COUNTER_VERSION, &(key, &*c))?
            }
            CounterName::Given { giver: writer, key }
            | CounterName::Taken { taker: writer, key } => {
                let by = if matches!(parsed, CounterName::Given { .. }) {
                    &mut books.given
                } else {
                    &mut books.taken
                };
                let c = by
                    .entry(key.clone())
                    .or_default()
                    .entry(*writer)
                    .or_default();
                if !grew(c, delta) {
                    return Ok(false);
                }
                store::encode(COUNTER_VERSION, &(writer, key, &*c))?
            }
        };
        self.store.put(CF_STATE, name.as_bytes(), &row)?;
        Ok(true)
    }

    /// Forgets every window that ended before `before` (Unix ms): its spend,
    /// gifts, takes and leases, in memory and on disk; a peer's counter of
    /// such a window is dropped from then on. Returns how many rows went.
    pub fn collect(&self, before: u64) -> Result<usize, StoreError> {
        use std::sync::atomic::Ordering;
        self.collected_before.fetch_max(before, Ordering::Relaxed);
        let mut guard = self.books.lock().expect("ledger lock");
        let books = &mut *guard;
        let ended = |k: &CounterKey| k.end_ms <= before;
        let mut rows: Vec<Vec<u8>> = Vec::new();
        books.spend.retain(|k, _| {
            let keep = !ended(k);
            if !keep {
                rows.push(k.name().into_bytes());
            }
            keep
        });
        for (by, prefix) in [(&mut books.given, "give"), (&mut books.taken, "take")] {
            by.retain(|k, writers| {
                let keep = !ended(k);
                if !keep {
                    rows.extend(
                        writers
                            .keys()
                            .map(|w| written_name(prefix, *w, k).into_bytes()),
                    );
                }
                keep
            });
        }
        rows.extend(lease::collect(books, before));
        if rows.is_empty() {
            return Ok(0);
        }
        self.store
            .write_durable(CF_STATE, [], rows.iter().map(Vec::as_slice))?;
        Ok(rows.len())
    }

    /// Spend of `scope` in the window of `b` containing `now_ms`, cluster-wide.
    pub fn spent(&self, scope: &str, b: &Budget, now_ms: u64) -> Micros {
        let (start_ms, end_ms) = window(b, now_ms);
        let key = CounterKey {
            scope: scope.to_string(),
            start_ms,
            end_ms,
        };
        self.books
            .lock()
            .expect("ledger lock")
            .spend
            .get(&key)
            .map_or(0, GCounter::value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 86_400_000;

    fn ms(y: i64, m: u32, d: u32) -> u64 {
        days_from_civil(y, m, d) as u64 * DAY
    }

    fn budget(limit: &str, period: Period, calendar: bool, anchor_ms: u64) -> Budget {
        Budget {
            limit_usd: Usd::parse(limit).unwrap(),
            period,
            calendar,
            anchor_ms,
        }
    }

    #[test]
    fn usd_parses_exactly() {
        assert_eq!(Usd::parse("12.5").unwrap().0, 12_500_000);
        assert_eq!(Usd::parse("0.000001").unwrap().0, 1);
        assert_eq!(Usd::parse("3").unwrap().0, 3_000_000);
        assert!(Usd::parse("0.0000001").is_err());
        assert!(Usd::parse("-1").is_err());
        assert!(Usd::parse("1e3").is_err());
        assert_eq!(Usd(12_500_000).to_string(), "12.500000");
        let b: Budget =
            serde_json::from_value(serde_json::json!({"limit_usd": 5, "period": "1d"})).unwrap();
        assert_eq!(b.limit_usd.0, 5_000_000);
    }

    #[test]
    fn civil_dates_round_trip() {
        for day in [-800_000i64, -1, 0, 1, 11_016, 20_000, 2_932_896] {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(
            days_from_civil(2024, 2, 29) + 1,
            days_from_civil(2024, 3, 1)
        );
    }

    #[test]
    fn calendar_windows_follow_utc() {
        let now = ms(2026, 11, 27) + 13 * 3_600_000 + 5 * 60_000 + 7_000; // Fri 13:05:07
        let w = |p| window(&budget("1", p, true, 0), now);
        assert_eq!(w(Period::Minute), (now - 7_000, now - 7_000 + 60_000));
        assert_eq!(w(Period::Day), (ms(2026, 11, 27), ms(2026, 11, 28)));
        assert_eq!(
            w(Period::Week),
            (ms(2026, 11, 23), ms(2026, 11, 30)),
            "Monday to Monday"
        );
        assert_eq!(w(Period::Month), (ms(2026, 11, 1), ms(2026, 12, 1)));
        assert_eq!(w(Period::Quarter), (ms(2026, 10, 1), ms(2027, 1, 1)));
        assert_eq!(w(Period::Year), (ms(2026, 1, 1), ms(2027, 1, 1)));
        // February of a leap year.
        let feb = window(&budget("1", Period::Month, true, 0), ms(2028, 2, 29) + 5);
        assert_eq!(feb, (ms(2028, 2, 1), ms(2028, 3, 1)));
    }

    #[test]
    fn rolling_windows_count_from_the_anchor() {
        let anchor = ms(2026, 1, 15) + 12 * 3_600_000;
        let b = budget("1", Period::Month, false, anchor);
        assert_eq!(window(&b, anchor + 5), (anchor, anchor + 30 * DAY));
        assert_eq!(
            window(&b, anchor + 30 * DAY),
            (anchor + 30 * DAY, anchor + 60 * DAY)
        );
        let d = budget("1", Period::Day, false, anchor);
        assert_eq!(window(&d, anchor + DAY - 1).0, anchor);
        assert_eq!(window(&d, anchor + DAY).0, anchor + DAY);
    }

    fn ledger() -> (tempfile::TempDir, Ledger) {
        let dir = tempfile::tempdir().unwrap();
        let l = open_at(1, &dir);
        (dir, l)
    }

    /// Node `node`'s ledger on the store in `dir` (again after a restart).
    fn open_at(node: NodeId, dir: &tempfile::TempDir) -> Ledger {
        Ledger::open(node, Store::open(dir.path()).unwrap()).unwrap()
    }

    #[test]
    fn reservations_never_let_concurrent_requests_pass_a_budget() {
        let (_d, l) = ledger();
        let b = budget("0.000100", Period::Day, true, 0); // 100 µ$
        let budgets = vec![("key:k".to_string(), b)];
        let now = ms(2026, 11, 27);
        // Ten requests of up to 10 µ$ fit; the eleventh does not, while all are in flight.
        let held: Vec<_> = (0..10)
            .map(|_| l.reserve(&budgets, 10, now, |_| 1).unwrap())
            .collect();
        let refused = l.reserve(&budgets, 10, now, |_| 1).unwrap_err();
        assert_eq!((refused.reserved, refused.spent), (Usd(100), Usd(0)));
        // Settling below the reservation frees the difference.
        for r in held {
            l.settle(r, 7, |_| true).unwrap();
        }
        assert_eq!(l.spent("key:k", &b, now), 70);
        assert!(l.reserve(&budgets, 30, now, |_| 1).is_ok());
        assert!(l.reserve(&budgets, 1, now, |_| 1).is_err());
    }

    #[test]
    fn every_level_is_checked_and_a_refusal_reserves_nothing() {
        let (_d, l) = ledger();
        let now = ms(2026, 11, 27);
        let budgets = vec![
            ("key:k".to_string(), budget("1", Period::Day, true, 0)),
            (
                "team:t".to_string(),
                budget("0.000050", Period::Month, true, 0),
            ),
        ];
        let r = l.reserve(&budgets, 40, now, |_| 1).unwrap();
        let e = l.reserve(&budgets, 20, now, |_| 1).unwrap_err();
        assert_eq!(e.scope, "team:t");
        l.settle(r, 40, |_| true).unwrap();
        // The refused request held nothing in the key's budget.
        assert!(l.reserve(&budgets[..1], 999_960, now, |_| 1).is_ok());
    }

    #[test]
    fn a_new_period_starts_from_zero_and_spend_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let b = budget("0.000010", Period::Day, true, 0);
        let budgets = vec![("key:k".to_string(), b)];
        let day1 = ms(2026, 11, 27) + 1000;
        {
            let l = open_at(1, &dir);
            let r = l.reserve(&budgets, 10, day1, |_| 1).unwrap();
            l.settle(r, 10, |_| true).unwrap();
            assert!(l.reserve(&budgets, 1, day1, |_| 1).is_err());
        }
        let l = open_at(1, &dir);
        assert_eq!(l.spent("key:k", &b, day1), 10);
        assert!(
            l.reserve(&budgets, 1, day1 + DAY - 1001, |_| 1).is_err(),
            "still the same day"
        );
        assert!(
            l.reserve(&budgets, 10, day1 + DAY, |_| 1).is_ok(),
            "the next day is a new window"
        );
    }

    #[test]
    fn peers_spend_merges_into_the_same_budget_and_allowance_moves_by_gift() {
        let (_dir, here) = ledger();
        let dir2 = tempfile::tempdir().unwrap();
        let there = open_at(2, &dir2);
        let b = budget("0.000100", Period::Day, true, 0);
        let budgets = vec![("key:k".to_string(), b)];
        let now = ms(2026, 11, 27);
        // Node 2 is the budget's home: it holds the whole limit.
        let home = |_: &str| 2;
        let r = there.reserve(&budgets, 60, now, home).unwrap();
        let changes = there.settle(r, 60, |_| true).unwrap();
        assert_eq!(changes.len(), 1);
        for c in &changes {
            let Change::Counter { key, counter } = c else {
                panic!("spend travels as counters: {c:?}")
            };
            assert_eq!(CounterKey::from_name(key).unwrap().scope, "key:k");
            assert!(
                here.merge(key, counter).unwrap(),
                "new spend changes the counter"
            );
            assert!(
                !here.merge(key, counter).unwrap(),
                "merging twice changes nothing"
            );
        }
        assert_eq!(here.spent("key:k", &b, now), 60);
        let e = here.reserve(&budgets, 41, now, home).unwrap_err();
        assert_eq!(e.shortfall, None, "the cluster has no room for 41");
        let e = here.reserve(&budgets, 30, now, home).unwrap_err();
        let short = e
            .shortfall
            .expect("node 1 holds nothing, but the cluster has 40");
        assert_eq!(short.amount, 30);

        // Node 2 gives at least what was asked, half its free allowance if more.
        let escrow = Escrow {
            limit: 100,
            home: 2,
        };
        let gift = there
            .give(&short.key, 1, short.amount, escrow)
            .unwrap()
            .unwrap();
        let Change::Counter { key, counter } = &gift else {
            panic!("{gift:?}")
        };
        assert_eq!(counter.of(1), 30);
        assert_eq!(there.available(2, &short.key, escrow), 10);
        here.merge(key, counter).unwrap();
        assert_eq!(here.available(1, &short.key, escrow), 30);
        here.reserve(&budgets, 30, now, home).unwrap();
        assert!(
            here.reserve(&budgets, 1, now, home).is_err(),
            "30 was all it got"
        );
        assert!(!here.merge("keys\0vk_1", &GCounter::default()).unwrap());
    }

    #[test]
    fn ended_windows_are_collected_and_stay_collected() {
        let dir = tempfile::tempdir().unwrap();
        let l = open_at(1, &dir);
        let b = budget("0.000100", Period::Day, true, 0);
        let budgets = vec![("key:k".to_string(), b)];
        let day1 = ms(2026, 11, 27);
        let r = l.reserve(&budgets, 10, day1, |_| 1).unwrap();
        l.settle(r, 10, |_| true).unwrap();
        let old = CounterKey {
            scope: "key:k".into(),
            start_ms: window(&b, day1).0,
            end_ms: window(&b, day1).1,
        };
        l.begin_lease(&old, 2, 50).unwrap();
        let gift = l
            .give(
                &old.name(),
                3,
                5,
                Escrow {
                    limit: 100,
                    home: 1,
                },
            )
            .unwrap()
            .unwrap();
        let r = l.reserve(&budgets, 10, day1 + DAY, |_| 1).unwrap();
        l.settle(r, 7, |_| true).unwrap();
        // An hour after day 1 ended: day 1 goes, day 2 stays.
        assert_eq!(l.collect(old.end_ms + 3_600_000).unwrap(), 3);
        assert_eq!(l.spent("key:k", &b, day1), 0);
        assert_eq!(l.spent("key:k", &b, day1 + DAY), 7);
        assert!(l.lease(&old).is_none());
        let mut late = GCounter::default();
        late.add(2, 40);
        assert!(
            !l.merge(&old.name(), &late).unwrap(),
            "a peer's counter of a collected window is dropped"
        );
        let Change::Counter { key, counter } = gift else {
            panic!()
        };
        assert!(!l.merge(&key, &counter).unwrap());
        drop(l);
        let l = open_at(1, &dir);
        assert_eq!(l.spent("key:k", &b, day1), 0, "gone from disk too");
        assert_eq!(l.spent("key:k", &b, day1 + DAY), 7);
        assert_eq!(l.counters().len(), 1);
    }

    #[test]
    fn leases_and_grants_in_batches_survive_a_restart() {
        let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let holder = open_at(1, &d1);
        let deputy = open_at(2, &d2);
        let e = Escrow {
            limit: 800,
            home: 1,
        };
        let key = |scope: &str| CounterKey {
            scope: scope.into(),
            start_ms: 0,
            end_ms: u64::MAX,
        };
        let (a, b) = (key("team:a"), key("team:b"));
        let taken = holder
            .begin_leases(2, &[(a.clone(), 100), (b.clone(), 50), (a.clone(), 7)])
            .unwrap();
        assert_eq!(taken, [true, true, false], "one lease per window");
        assert_eq!(
            holder.begin_leases(2, &[(a.clone(), 300)]).unwrap(),
            [false],
            "a window keeps its lease (and its deputy)"
        );
        let granted = deputy
            .grant_all(
                1,
                &[(a.clone(), 100, e), (b.clone(), 50, e), (b.clone(), 20, e)],
            )
            .unwrap();
        assert_eq!(granted, [100, 50, 50], "ceilings only rise");
        drop((holder, deputy));
        let holder = open_at(1, &d1);
        let deputy = open_at(2, &d2);
        assert_eq!(
            holder.lease(&a).map(|l| (l.deputy, l.ceiling)),
            Some((2, 100))
        );
        assert_eq!(holder.lease(&b).map(|l| l.ceiling), Some(50));
        assert_eq!(deputy.guarded_holders(0), [1]);
        assert_eq!(deputy.grant(1, &b, 10, e).unwrap(), 50, "remembered");
    }

    #[test]
    fn a_deputy_takes_over_what_a_silent_home_held_beyond_its_ceiling() {
        let (_d0, home) = ledger();
        let d1 = tempfile::tempdir().unwrap();
        let deputy = open_at(2, &d1);
        let b = budget("0.000800", Period::Day, true, 0);
        let budgets = vec![("team:t".to_string(), b)];
        let now = ms(2026, 11, 27);
        let (start_ms, end_ms) = window(&b, now);
        let key = CounterKey {
            scope: "team:t".into(),
            start_ms,
            end_ms,
        };
        let escrow = Escrow {
            limit: 800,
            home: 1,
        };
        // The home (node 1) holds 800 and leases 1/8 of it above its outflow.
        let want = home
            .lease_want(&key, escrow, 0)
            .expect("it holds allowance");
        assert_eq!((want.deputy, want.ceiling), (None, 100));
        assert!(home.begin_lease(&key, 2, want.ceiling).unwrap());
        assert_eq!(deputy.grant(1, &key, want.ceiling, escrow).unwrap(), 100);
        let r = home.reserve(&budgets, 60, now, |_| 1).unwrap();
        home.settle(r, 60, |_| true).unwrap();
        let e = home.reserve(&budgets, 50, now, |_| 1).unwrap_err();
        let short = e.shortfall.expect("the cluster has room");
        assert_eq!((short.lack, short.amount), (Lack::Ceiling, 10));
        // The home asks ahead: 60 out, so 60 + 100.
        let want = home.lease_want(&key, escrow, short.amount).unwrap();
        assert_eq!((want.deputy, want.ceiling), (Some(2), 170));
        let granted = deputy.grant(1, &key, want.ceiling, escrow).unwrap();
        assert!(home.raise_lease(&key, 2, granted).unwrap());
        let r = home.reserve(&budgets, 50, now, |_| 1).unwrap();
        home.settle(r, 50, |_| true).unwrap();

        // The home goes silent: its deputy takes what it held beyond 170.
        let changes = deputy.take_over(1, now, |_| Some(escrow)).unwrap();
        assert_eq!(changes.len(), 1);
        assert_eq!(deputy.available(2, &key.name(), escrow), 630);
        assert!(
            deputy
                .take_over(1, now, |_| Some(escrow))
                .unwrap()
                .is_empty(),
            "a second take finds nothing more"
        );
        // The home, back, hears of the take; it can still spend its 60 of
        // room, and its deputy grants no more than it holds.
        for c in changes {
            let Change::Counter { key, counter } = c else {
                panic!("{c:?}")
            };
            home.merge(&key, &counter).unwrap();
        }
        assert_eq!(home.available(1, &key.name(), escrow), 60);
        assert_eq!(deputy.grant(1, &key, 500, escrow).unwrap(), 170);
        assert!(home.reserve(&budgets, 61, now, |_| 1).is_err());
        home.reserve(&budgets, 60, now, |_| 1).unwrap();
    }

    /// The bounded-counter invariant: whatever nodes reserve, spend and give,
    /// whenever deputies take over a holder's allowance (its holder alive or
    /// not), and however late, duplicated or reordered their changes and
    /// lease messages arrive, the spend of all nodes together never passes
    /// the limit.
    #[test]
    fn total_spend_never_passes_the_limit() {
        use proptest::prelude::*;
        #[derive(Debug, Clone)]
        enum Op {
            Spend {
                node: usize,
                amount: u64,
                actual_pct: u64,
            },
            Ask {
                from: usize,
                to: usize,
                amount: u64,
            },
            Deliver {
                pick: usize,
            },
            /// The budget's home moves (an operator forgot the home): once
            /// the new home has heard everything the old one wrote.
            MoveHome {
                to: u64,
            },
            /// A node takes or raises its lease (asking `deputy` if it
            /// has none yet).
            Lease {
                holder: usize,
                deputy: usize,
                extra: u64,
            },
            /// A lease request reaches its deputy, or a grant its holder.
            DeliverLease {
                pick: usize,
            },
            /// A deputy takes over its holder's allowance, as if the holder
            /// were down (it may well be alive and spending).
            TakeOver {
                deputy: usize,
                holder: usize,
            },
        }
        /// A lease message in flight.
        #[derive(Debug, Clone)]
        enum LeaseMsg {
            Ask {
                holder: usize,
                deputy: usize,
                ceiling: u64,
            },
            Grant {
                holder: usize,
                deputy: usize,
                ceiling: u64,
            },
        }
        let op = prop_oneof![
            1 => (0..3u64).prop_map(|to| Op::MoveHome { to }),
            // Spends are small and mostly billed whole, so that budgets
            // run out and every node's share (ceiling, take) gets spent.
            4 => (0..3usize, 1..16u64, 0..=120u64).prop_map(|(node, amount, actual_pct)| Op::Spend {
                node,
                amount,
                actual_pct: actual_pct.min(100)
            }),
            1 => (0..3usize, 0..3usize, 1..40u64).prop_map(|(from, to, amount)| Op::Ask {
                from,
                to,
                amount
            }),
            2 => (0..1000usize).prop_map(|pick| Op::Deliver { pick }),
            2 => (0..3usize, 0..3usize, 0..30u64).prop_map(|(holder, deputy, extra)| Op::Lease {
                holder,
                deputy,
                extra
            }),
            2 => (0..1000usize).prop_map(|pick| Op::DeliverLease { pick }),
            1 => (0..3usize, 0..3usize).prop_map(|(deputy, holder)| Op::TakeOver { deputy, holder }),
        ];
        let config = ProptestConfig {
            cases: 64,
            ..ProptestConfig::default()
        };
        proptest!(config, |(ops in proptest::collection::vec(op, 1..200), first_home in 0..3u64)| {
            let mut home = first_home;
            let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
            let nodes: Vec<Ledger> = dirs
                .iter()
                .enumerate()
                .map(|(i, d)| Ledger::open(i as u64, Store::open(d.path()).unwrap()).unwrap())
                .collect();
            let b = budget("0.000100", Period::Day, true, 0);
            let budgets = vec![("team:t".to_string(), b)];
            let now = ms(2026, 11, 27);
            let window_key = CounterKey { scope: "team:t".into(), start_ms: window(&b, now).0, end_ms: window(&b, now).1 };
            let key = window_key.name();
            // Changes in flight: (receiver, change).
            let mut wire: Vec<(usize, Change)> = Vec::new();
            let mut leases: Vec<LeaseMsg> = Vec::new();
            let mut true_spend = 0u64;
            let broadcast = |wire: &mut Vec<(usize, Change)>, from: usize, changes: Vec<Change>| {
                for c in changes {
                    for to in (0..3).filter(|&t| t != from) {
                        wire.push((to, c.clone()));
                    }
                }
            };
            for op in ops {
                let escrow = Escrow { limit: 100, home };
                match op {
                    Op::Spend { node, amount, actual_pct } => {
                        if let Ok(r) = nodes[node].reserve(&budgets, amount, now, |_| home) {
                            let actual = amount * actual_pct / 100;
                            true_spend += actual;
                            let changes = nodes[node].settle(r, actual, |_| true).unwrap();
                            broadcast(&mut wire, node, changes);
                        }
                    }
                    Op::Ask { from, to, amount } => {
                        if let Some(c) = nodes[from].give(&key, to as u64, amount, escrow).unwrap() {
                            broadcast(&mut wire, from, vec![c]);
                        }
                    }
                    Op::Deliver { pick } => {
                        if !wire.is_empty() {
                            let (to, c) = wire[pick % wire.len()].clone();
                            // Delivered, but it may be delivered again later.
                            if pick % 3 != 0 {
                                wire.remove(pick % wire.len());
                            }
                            let Change::Counter { key, counter } = c else { unreachable!() };
                            nodes[to].merge(&key, &counter).unwrap();
                        }
                    }
                    Op::MoveHome { to } => {
                        for (n, c) in std::mem::take(&mut wire) {
                            let Change::Counter { key, counter } = c else { unreachable!() };
                            nodes[n].merge(&key, &counter).unwrap();
                        }
                        home = to;
                    }
                    Op::Lease { holder, deputy, extra } => {
                        if let Some(want) = nodes[holder].lease_want(&window_key, escrow, extra) {
                            let deputy = match want.deputy {
                                Some(d) => d as usize,
                                None if deputy != holder => {
                                    nodes[holder].begin_lease(&window_key, deputy as u64, want.ceiling).unwrap();
                                    deputy
                                }
                                None => continue,
                            };
                            leases.push(LeaseMsg::Ask { holder, deputy, ceiling: want.ceiling });
                        }
                    }
                    Op::DeliverLease { pick } => {
                        if !leases.is_empty() {
                            let i = pick % leases.len();
                            let msg = if pick % 4 == 0 { leases[i].clone() } else { leases.remove(i) };
                            match msg {
                                LeaseMsg::Ask { holder, deputy, ceiling } => {
                                    let granted = nodes[deputy].grant(holder as u64, &window_key, ceiling, escrow).unwrap();
                                    leases.push(LeaseMsg::Grant { holder, deputy, ceiling: granted });
                                }
                                LeaseMsg::Grant { holder, deputy, ceiling } => {
                                    nodes[holder].raise_lease(&window_key, deputy as u64, ceiling).unwrap();
                                }
                            }
                        }
                    }
                    Op::TakeOver { deputy, holder } => {
                        let changes = nodes[deputy].take_over(holder as u64, now, |_| Some(escrow)).unwrap();
                        broadcast(&mut wire, deputy, changes);
                    }
                }
                prop_assert!(true_spend <= 100, "spent {true_spend} of 100");
            }
            // Once everything arrives, every node agrees on the total.
            for (to, c) in wire {
                let Change::Counter { key, counter } = c else { unreachable!() };
                nodes[to].merge(&key, &counter).unwrap();
            }
            for n in &nodes {
                prop_assert_eq!(n.spent("team:t", &b, now), true_spend);
            }
        });
    }
}
