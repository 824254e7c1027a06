//! Governance: customers, teams and virtual keys — who is calling, and what
//! they may use.
//!
//! Objects live in replicated tables (`state`), so the cluster layer only has
//! to carry deltas. The request path never touches the tables: it reads an
//! immutable [`Snapshot`] that is rebuilt and swapped atomically after every
//! change, so authenticating a request is one hash and one map lookup with no
//! lock. This module knows nothing about HTTP.

pub mod admin_tokens;
pub mod authorship;
pub mod budgets;
pub mod collect;
mod credentials;
mod escrow;
pub mod hold;
pub mod limits;
pub mod objects;
pub mod pricing;
pub mod slots;
mod spend_sync;
mod validate;

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::config::ProviderConfig;
use crate::providers::bound::SearchContext;
use crate::providers::endpoints::ImageSpec;
use crate::providers::openai::Usage;
use crate::routing::Pattern;
use crate::state::hlc::{Clock, Hlc};
use crate::state::lww::LwwMap;
use crate::state::table::Table;
use crate::state::{self, Change, NodeId};
use crate::store::{CF_META, Store, StoreError};
use budgets::{Budget, Ledger, Refusal, Reservation, Scope};
use limits::{Admitted, Limiter, RateLimit, RateLimited};
use objects::{
    AdminToken, Customer, McpCredential, McpServer, Object, PriceOverride, ProviderObject,
    RoutingRule, Team, ToolGroup, VirtualKey,
};
use pricing::{Micros, Price, Pricing};
pub use validate::{Blank, Validate};
use validate::{non_empty, overlay};

/// The register whose writer is the home of an object's budgets: written
/// at creation and by adoption only, never by an edit.
const HOME_FIELD: &str = "created_at";

/// Prefix of every virtual key secret.
pub const SECRET_PREFIX: &str = "sk-tg-";

#[derive(Debug, thiserror::Error)]
pub enum GovError {
    #[error("{kind} '{id}' not found")]
    NotFound { kind: &'static str, id: String },
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub fn invalid(field: &str, reason: impl Into<String>) -> GovError {
    GovError::Invalid {
        field: field.to_string(),
        reason: reason.into(),
    }
}

/// What the request path reads: every live key by secret hash, with its
/// compiled patterns.
#[derive(Default)]
pub struct Snapshot {
    keys_by_hash: HashMap<String, Arc<KeyView>>,
    /// Every budget by scope, with the scope's home node (escrow).
    budgets: HashMap<Scope, (Vec<Budget>, NodeId)>,
}

/// A virtual key ready for the request path.
#[derive(Debug)]
pub struct KeyView {
    pub key: VirtualKey,
    models: Vec<Pattern>,
    providers: Vec<Pattern>,
    /// Every budget that applies: the key's, its team's, its customer's.
    pub budgets: Vec<(Scope, Budget)>,
    /// The key's budgets at single providers: (provider, scope, budget).
    pub provider_budgets: Vec<(String, Scope, Budget)>,
    /// The key's rate limits at single providers: (provider, scope, limit).
    pub provider_limits: Vec<(String, Scope, RateLimit)>,
    /// Every rate limit that applies, likewise.
    pub limits: Vec<(Scope, RateLimit)>,
    /// The customer above the key: its own, or its team's.
    pub customer_id: Option<String>,
    /// The home node of each budget scope above (see [`budgets::Escrow`]).
    pub homes: HashMap<Scope, NodeId>,
    /// The MCP tools the key may call.
    pub tools: ToolScope,
    /// The key names a team or customer that does not resolve.
    missing_parent: bool,
    /// Its requests' bodies are stored with their logs (the key's, its
    /// team's or its customer's `log_content`).
    pub log_content: bool,
}

/// Which MCP tools (`server-tool` names) a key may call and which of them the
/// gateway runs itself in agent mode; tool groups are already resolved.
#[derive(Debug, Default)]
pub struct ToolScope {
    /// `None`: the key, its team and its customer name no tools and no
    /// groups, so every tool is allowed (as an empty `models` allows every model).
    allowed: Option<Vec<Pattern>>,
    auto_execute: Vec<Pattern>,
}

impl ToolScope {
    /// A scope from `server-tool` patterns; `None` allows every tool.
    pub fn new(allowed: Option<&[String]>, auto_execute: &[String]) -> ToolScope {
        ToolScope {
            allowed: allowed.map(|ps| ps.iter().map(Pattern::new).collect()),
            auto_execute: auto_execute.iter().map(Pattern::new).collect(),
        }
    }

    pub fn allows(&self, tool: &str) -> bool {
        self.allowed
            .as_ref()
            .is_none_or(|ps| ps.iter().any(|p| p.matches(tool)))
    }

    /// Whether some tool of `server` (some `server-…` name) may be allowed.
    pub fn reaches_server(&self, server: &str) -> bool {
        let prefix = format!("{server}{}", crate::mcp::SEPARATOR);
        self.allowed.as_ref().is_none_or(|ps| {
            ps.iter().any(|p| match p.as_str().split_once('*') {
                Some((fixed, _)) => prefix.starts_with(fixed) || fixed.starts_with(&prefix),
                None => p.as_str().starts_with(&prefix),
            })
        })
    }

    /// Whether the key lists `tool` for the gateway to execute itself.
    pub fn auto_executes(&self, tool: &str) -> bool {
        self.auto_execute.iter().any(|p| p.matches(tool))
    }
}

/// Why a presented key is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("invalid virtual key")]
    Unknown,
    #[error("this virtual key is deactivated")]
    Inactive,
    #[error("this virtual key has expired")]
    Expired,
    /// Its team or customer is gone (or has not reached this node): using
    /// the key would skip their budgets and limits, so it fails closed.
    #[error("this virtual key's team or customer does not exist")]
    MissingParent,
}

impl KeyView {
    /// Whether this key may use `model` at `provider`. Patterns match either
    /// the bare model or `provider/model`.
    pub fn allows(&self, provider: &str, model: &str) -> bool {
        let provider_ok =
            self.providers.is_empty() || self.providers.iter().any(|p| p.matches(provider));
        let full = format!("{provider}/{model}");
        let model_ok = self.models.is_empty()
            || self
                .models
                .iter()
                .any(|p| p.matches(model) || p.matches(&full));
        provider_ok && model_ok
    }
}

pub struct Governance {
    clock: Arc<dyn Clock>,
    hlc: Hlc,
    customers: Table,
    teams: Table,
    keys: Table,
    snapshot: ArcSwap<Snapshot>,
    ledger: Ledger,
    limiter: Limiter,
    prices: Table,
    providers: Table,
    rules: Table,
    /// The enabled routing rules, compiled.
    rule_set: ArcSwap<crate::rules::RuleSet>,
    mcp_servers: Table,
    tool_groups: Table,
    admin_tokens: Table,
    /// OAuth tokens to MCP servers, sealed (`mcp::oauth`).
    mcp_credentials: Table,
    /// Bumped after every rebuild, for those who follow changes (the MCP
    /// upstream manager).
    changes: tokio::sync::watch::Sender<u64>,
    /// Providers of the config file; the API may not define these names.
    config_providers: Vec<String>,
    /// Bumped whenever the set of API-defined providers changes.
    providers_version: std::sync::atomic::AtomicU64,
    providers_seen: std::sync::Mutex<String>,
    /// Held for a whole rebuild, so that snapshots are stored in the order
    /// their reads of the tables were made: a rebuild that began after a
    /// write always stores last, and a stale one never overwrites it.
    rebuilding: std::sync::Mutex<()>,
    /// A durable write of spend failed and none has succeeded since.
    disk_failing: std::sync::atomic::AtomicBool,
    /// Config's `[pricing]`, under the admin API's overrides.
    config_prices: HashMap<String, Price>,
    pricing: ArcSwap<Pricing>,
    /// `mcp.allow_stdio` and `mcp.env_prefix`: what MCP servers written
    /// through the API may be.
    mcp_allow_stdio: bool,
    mcp_env_prefix: String,
    /// Where this node's own changes go to be replicated (set by the cluster).
    feed: std::sync::OnceLock<ChangeFeed>,
    allowance_requests: std::sync::OnceLock<tokio::sync::mpsc::UnboundedSender<budgets::Shortfall>>,
    allowance_changed: tokio::sync::Notify,
    /// Syncs journal rows and settled spend in groups, and sends settled
    /// spend to peers after; `None` when each write is synced itself
    /// (`server.spend_sync_interval = "0s"`).
    spend_sync: Option<spend_sync::SpendSync>,
}

/// The ledger, and the thread that syncs its spend in groups unless
/// `sync_interval` is zero (or no thread can be started: then each write is
/// synced, as with zero).
fn open_ledger(
    node: NodeId,
    store: Store,
    sync_interval: std::time::Duration,
) -> Result<(Ledger, Option<spend_sync::SpendSync>), StoreError> {
    let ledger = Ledger::open(node, store.clone())?;
    if sync_interval.is_zero() {
        return Ok((ledger, None));
    }
    match spend_sync::SpendSync::start(store, sync_interval) {
        Ok(sync) => Ok((ledger.sync_in_groups(), Some(sync))),
        Err(e) => {
            tracing::warn!(error = %e, "cannot start the spend sync thread: syncing each write");
            Ok((ledger, None))
        }
    }
}

/// Receives every change this node makes to replicated state.
pub type ChangeFeed = tokio::sync::mpsc::UnboundedSender<Change>;

/// A freshly created or rotated key: the only time the secret is seen.
#[derive(Debug, serde::Serialize)]
pub struct IssuedKey {
    #[serde(flatten)]
    pub key: PublicKey,
    pub secret: String,
}

/// A key as the admin API shows it (no hash).
#[derive(Debug, serde::Serialize)]
pub struct PublicKey {
    pub id: String,
    pub name: String,
    pub secret_prefix: String,
    pub active: bool,
    pub expires_at: Option<u64>,
    pub team_id: Option<String>,
    pub customer_id: Option<String>,
    pub models: Vec<String>,
    pub providers: Vec<String>,
    pub provider_weights: std::collections::BTreeMap<String, u32>,
    pub budgets: Vec<Budget>,
    pub provider_budgets: std::collections::BTreeMap<String, Vec<Budget>>,
    pub rate_limits: Vec<RateLimit>,
    pub provider_rate_limits: std::collections::BTreeMap<String, Vec<RateLimit>>,
    pub default_max_tokens: Option<u64>,
    pub created_at: u64,
}

impl From<&VirtualKey> for PublicKey {
    fn from(k: &VirtualKey) -> PublicKey {
        PublicKey {
            id: k.id.clone(),
            name: k.name.clone(),
            secret_prefix: k.secret_prefix.clone(),
            active: k.active,
            expires_at: k.expires_at,
            team_id: k.team_id.clone(),
            customer_id: k.customer_id.clone(),
            models: k.models.clone(),
            providers: k.providers.clone(),
            provider_weights: k.provider_weights.clone(),
            budgets: k.budgets.clone(),
            provider_budgets: k.provider_budgets.clone(),
            provider_rate_limits: k.provider_rate_limits.clone(),
            rate_limits: k.rate_limits.clone(),
            default_max_tokens: k.default_max_tokens,
            created_at: k.created_at,
        }
    }
}

/// The scope of a key's budget at one provider.
pub fn provider_scope(key_id: &str, provider: &str) -> Scope {
    format!("key:{key_id}/provider:{provider}")
}

/// A key's budgets or limits by provider, flattened to (provider, scope, item).
fn per_provider<T: Copy>(
    key_id: &str,
    by_provider: &std::collections::BTreeMap<String, Vec<T>>,
) -> Vec<(String, Scope, T)> {
    by_provider
        .iter()
        .flat_map(|(p, items)| {
            let scope = provider_scope(key_id, p);
            items.iter().map(move |i| (p.clone(), scope.clone(), *i))
        })
        .collect()
}

/// The items of every level, plus those at the providers the request may use.
fn applicable<T: Copy>(
    levels: &[(Scope, T)],
    at_providers: &[(String, Scope, T)],
    providers: &[&str],
) -> Vec<(Scope, T)> {
    let mut out = levels.to_vec();
    out.extend(
        at_providers
            .iter()
            .filter(|(p, _, _)| providers.contains(&p.as_str()))
            .map(|(_, scope, i)| (scope.clone(), *i)),
    );
    out
}

/// A stable 64-bit hash of a replicated item's state (SHA-256 of its postcard
/// encoding, truncated), the same on every node and build.
fn state_hash<T: serde::Serialize>(value: &T) -> u64 {
    let bytes = postcard::to_stdvec(value).expect("state encodes");
    let d = Sha256::digest(&bytes);
    u64::from_be_bytes(d[..8].try_into().expect("8 bytes"))
}

/// A key's tool scope: its own `tools` plus every pattern of the named groups
/// (groups that no longer exist add nothing).
fn tool_scope<'a>(
    key: &VirtualKey,
    group_names: impl Iterator<Item = &'a String>,
    groups: &HashMap<String, ToolGroup>,
) -> ToolScope {
    let mut named_any = !key.tools.is_empty();
    let mut allowed: Vec<Pattern> = key.tools.iter().map(Pattern::new).collect();
    for name in group_names {
        named_any = true;
        if let Some(g) = groups.get(name) {
            allowed.extend(g.tools.iter().map(Pattern::new));
        }
    }
    ToolScope {
        allowed: named_any.then_some(allowed),
        auto_execute: key.auto_execute.iter().map(Pattern::new).collect(),
    }
}

/// Hex SHA-256 of a secret.
pub fn hash_secret(secret: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(64);
    for b in Sha256::digest(secret.as_bytes()) {
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 15)] as char);
    }
    out
}

/// `len` random letters and digits from the OS's random source: for
/// secrets (keys, tokens).
pub fn random_token(bytes: usize) -> String {
    token_from(bytes, |b| {
        getrandom::fill(b).expect("the OS random source works");
    })
}

/// `len` random letters and digits from this thread's CSPRNG (ChaCha,
/// seeded and reseeded from the OS's source): for unguessable ids made on
/// every request, without a system call each.
pub fn random_id(bytes: usize) -> String {
    token_from(bytes, |b| rand::Rng::fill_bytes(&mut rand::rng(), b))
}

fn token_from(bytes: usize, mut fill: impl FnMut(&mut [u8])) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut raw = vec![0u8; bytes];
    fill(&mut raw);
    // 62 symbols: reject bytes ≥ 248 to keep the distribution uniform.
    let mut out = String::with_capacity(bytes);
    let mut i = 0;
    while out.len() < bytes {
        if i == raw.len() {
            fill(&mut raw);
            i = 0;
        }
        let b = raw[i];
        i += 1;
        if b < 248 {
            out.push(ALPHABET[(b % 62) as usize] as char);
        }
    }
    out
}

/// This node's id in replicated state: random on first start, then persisted.
pub fn node_id(store: &Store) -> Result<u64, StoreError> {
    if let Some(v) = store.get(CF_META, b"node_id")?
        && let Ok(b) = <[u8; 8]>::try_from(v.as_slice())
    {
        return Ok(u64::from_be_bytes(b));
    }
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).expect("the OS random source works");
    store.put(CF_META, b"node_id", &b)?;
    Ok(u64::from_be_bytes(b))
}

impl Governance {
    pub fn open(
        store: Store,
        clock: Arc<dyn Clock>,
        config: &crate::config::Config,
    ) -> Result<Governance, StoreError> {
        let price_overrides = &config.pricing;
        let node = node_id(&store)?;
        let (ledger, spend_sync) =
            open_ledger(node, store.clone(), config.server.spend_sync_interval)?;
        let gov = Governance {
            clock,
            hlc: Hlc::new(node),
            customers: Table::open(Customer::KIND, store.clone())?,
            teams: Table::open(Team::KIND, store.clone())?,
            keys: Table::open(VirtualKey::KIND, store.clone())?,
            snapshot: ArcSwap::from_pointee(Snapshot::default()),
            prices: Table::open(PriceOverride::KIND, store.clone())?,
            providers: Table::open(ProviderObject::KIND, store.clone())?,
            rules: Table::open(RoutingRule::KIND, store.clone())?,
            rule_set: ArcSwap::from_pointee(crate::rules::RuleSet::default()),
            mcp_servers: Table::open(McpServer::KIND, store.clone())?,
            tool_groups: Table::open(ToolGroup::KIND, store.clone())?,
            admin_tokens: Table::open(AdminToken::KIND, store.clone())?,
            mcp_credentials: Table::open(McpCredential::KIND, store.clone())?,
            changes: tokio::sync::watch::Sender::new(0),
            config_providers: config.providers.keys().cloned().collect(),
            providers_version: Default::default(),
            providers_seen: Default::default(),
            rebuilding: Default::default(),
            disk_failing: Default::default(),
            ledger,
            spend_sync,
            limiter: Limiter::new(node),
            config_prices: price_overrides.clone(),
            mcp_allow_stdio: config.mcp.allow_stdio,
            mcp_env_prefix: config.mcp.env_prefix.clone(),
            pricing: ArcSwap::from_pointee(Pricing::new(price_overrides)),
            feed: std::sync::OnceLock::new(),
            allowance_requests: std::sync::OnceLock::new(),
            allowance_changed: tokio::sync::Notify::new(),
        };
        // Later writes must be ordered after every write already stored.
        for (_, table) in gov.tables() {
            for (_, row) in table.rows() {
                if let Some(ts) = row.last_write() {
                    gov.hlc.observe(ts);
                }
            }
        }
        gov.rebuild();
        Ok(gov)
    }

    /// Every replicated governance table, by name.
    pub fn tables(&self) -> [(&'static str, &Table); 10] {
        [
            (Customer::KIND, &self.customers),
            (Team::KIND, &self.teams),
            (VirtualKey::KIND, &self.keys),
            (PriceOverride::KIND, &self.prices),
            (ProviderObject::KIND, &self.providers),
            (McpServer::KIND, &self.mcp_servers),
            (ToolGroup::KIND, &self.tool_groups),
            (RoutingRule::KIND, &self.rules),
            (AdminToken::KIND, &self.admin_tokens),
            (McpCredential::KIND, &self.mcp_credentials),
        ]
    }

    fn table<T: Object>(&self) -> &Table {
        match self.table_named(T::KIND) {
            Some(table) => table,
            None => unreachable!("no table for {}", T::KIND),
        }
    }

    fn table_named(&self, kind: &str) -> Option<&Table> {
        self.tables()
            .into_iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, t)| t)
    }

    /// Follows changes: the value changes after every write, local or replicated.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// This node's id in replicated state.
    pub fn node(&self) -> crate::state::NodeId {
        self.hlc.node()
    }

    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Rebuilds the request-path snapshot from the tables.
    fn rebuild(&self) {
        let _order = self.rebuilding.lock().expect("rebuild lock");
        let groups: HashMap<String, ToolGroup> = self
            .tool_groups
            .rows()
            .iter()
            .filter_map(|(_, row)| objects::from_row::<ToolGroup>(row))
            .map(|g| (g.id.clone(), g))
            .collect();
        let mut keys_by_hash = HashMap::new();
        let index = self.budget_index();
        let home_of = |scope: &str| index.get(scope).map_or(self.node(), |(_, h)| *h);
        for (_, row) in self.keys.rows() {
            if let Some(k) = objects::from_row::<VirtualKey>(&row) {
                let own = format!("key:{}", k.id);
                let mut budgets: Vec<(Scope, Budget)> =
                    k.budgets.iter().map(|b| (own.clone(), *b)).collect();
                let mut limits: Vec<(Scope, RateLimit)> =
                    k.rate_limits.iter().map(|l| (own.clone(), *l)).collect();
                let team = k.team_id.as_deref().and_then(|t| self.get::<Team>(t));
                let customer_id = k
                    .customer_id
                    .clone()
                    .or_else(|| team.as_ref().and_then(|t| t.customer_id.clone()));
                if let Some(t) = &team {
                    let scope = format!("team:{}", t.id);
                    budgets.extend(t.budgets.iter().map(|b| (scope.clone(), *b)));
                    limits.extend(t.rate_limits.iter().map(|l| (scope.clone(), *l)));
                }
                let customer = customer_id.as_deref().and_then(|c| self.get::<Customer>(c));
                if let Some(c) = &customer {
                    let scope = format!("customer:{}", c.id);
                    budgets.extend(c.budgets.iter().map(|b| (scope.clone(), *b)));
                    limits.extend(c.rate_limits.iter().map(|l| (scope.clone(), *l)));
                }
                let provider_budgets = per_provider(&k.id, &k.provider_budgets);
                let homes = budgets
                    .iter()
                    .map(|(scope, _)| scope)
                    .chain(provider_budgets.iter().map(|(_, scope, _)| scope))
                    .map(|scope| (scope.clone(), home_of(scope)))
                    .collect();
                let group_names = k
                    .tool_groups
                    .iter()
                    .chain(team.iter().flat_map(|t| &t.tool_groups))
                    .chain(customer.iter().flat_map(|c| &c.tool_groups));
                let tools = tool_scope(&k, group_names, &groups);
                let missing_parent = (k.team_id.is_some() && team.is_none())
                    || (customer_id.is_some() && customer.is_none());
                let log_content = k.log_content
                    || team.as_ref().is_some_and(|t| t.log_content)
                    || customer.as_ref().is_some_and(|c| c.log_content);
                let view = KeyView {
                    log_content,
                    missing_parent,
                    homes,
                    models: k.models.iter().map(Pattern::new).collect(),
                    providers: k.providers.iter().map(Pattern::new).collect(),
                    provider_budgets,
                    provider_limits: per_provider(&k.id, &k.provider_rate_limits),
                    budgets,
                    limits,
                    customer_id,
                    tools,
                    key: k,
                };
                keys_by_hash.insert(view.key.secret_hash.clone(), Arc::new(view));
            }
        }
        self.snapshot.store(Arc::new(Snapshot {
            keys_by_hash,
            budgets: index,
        }));
        self.changes.send_modify(|v| *v += 1);
        let mut prices = self.config_prices.clone();
        for (_, row) in self.prices.rows() {
            if let Some(o) = objects::from_row::<PriceOverride>(&row) {
                let price = Price {
                    input: o.input,
                    output: o.output,
                    cached_input: o.cached_input,
                    cache_write: o.cache_write,
                    cache_write_1h: o.cache_write_1h,
                    long_context: None,
                    request_fee: None,
                    per: o.per,
                    open_ended: false,
                };
                prices.insert(o.id, price);
            }
        }
        self.pricing.store(Arc::new(Pricing::new(&prices)));
        let compiled = self
            .rules
            .rows()
            .iter()
            .filter_map(|(_, row)| objects::from_row::<RoutingRule>(row))
            .filter(|r| r.enabled)
            .filter_map(|r| match crate::rules::Condition::compile(&r.condition) {
                Ok(condition) => Some(crate::rules::CompiledRule {
                    id: r.id,
                    priority: r.priority,
                    scope: r.scope,
                    condition,
                    targets: r.targets,
                }),
                Err(e) => {
                    // Written by a peer whose parser accepted it: skip, loudly.
                    tracing::warn!(rule = %r.id, error = %e, "routing rule does not compile here; ignored");
                    None
                }
            })
            .collect();
        self.rule_set
            .store(Arc::new(crate::rules::RuleSet::new(compiled)));
        let seen = serde_json::to_string(&self.api_providers()).expect("providers serialize");
        let mut last = self.providers_seen.lock().expect("providers lock");
        if *last != seen {
            *last = seen;
            self.providers_version
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// Every budget scope with its budgets and its home: the node that
    /// wrote the object's `created_at` register — its creator, or the node
    /// that adopted it from a forgotten one (`adopt_budgets_of`). Editing a
    /// budget, on any node, writes only `budgets` and so never moves the
    /// home: the home keeps its books and holds the new limit, and no node
    /// is handed a whole limit its window has already spent elsewhere.
    fn budget_index(&self) -> HashMap<Scope, (Vec<Budget>, NodeId)> {
        let mut index = HashMap::new();
        let home = |row: &LwwMap| {
            row.fields
                .get(HOME_FIELD)
                .map_or(self.node(), |reg| reg.ts.node)
        };
        for (_, row) in self.customers.rows() {
            if let Some(c) = objects::from_row::<Customer>(&row) {
                index.insert(format!("customer:{}", c.id), (c.budgets, home(&row)));
            }
        }
        for (_, row) in self.teams.rows() {
            if let Some(t) = objects::from_row::<Team>(&row) {
                index.insert(format!("team:{}", t.id), (t.budgets, home(&row)));
            }
        }
        for (_, row) in self.keys.rows() {
            if let Some(k) = objects::from_row::<VirtualKey>(&row) {
                for (p, list) in &k.provider_budgets {
                    index.insert(provider_scope(&k.id, p), (list.clone(), home(&row)));
                }
                index.insert(format!("key:{}", k.id), (k.budgets, home(&row)));
            }
        }
        index
    }

    /// Changes whenever a provider is set or deleted through the API.
    pub fn providers_version(&self) -> u64 {
        self.providers_version
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Providers defined through the API, by name, as written.
    pub fn api_providers(&self) -> Vec<(String, ProviderConfig)> {
        self.providers
            .rows()
            .iter()
            .filter_map(|(_, row)| objects::from_row::<ProviderObject>(row))
            .map(|p| (p.id, p.config))
            .collect()
    }

    /// Creates or replaces the provider `name` from a `[providers.<name>]`-shaped
    /// body, checked like the config file; `env.VAR` secrets must be set on
    /// this node.
    pub fn set_provider(
        &self,
        name: &str,
        body: Map<String, Value>,
    ) -> Result<ProviderObject, GovError> {
        if self.config_providers.iter().any(|p| p == name) {
            return Err(invalid(
                "name",
                format!("provider '{name}' is defined in the config file; change it there"),
            ));
        }
        let config: ProviderConfig = serde_json::from_value(Value::Object(body))
            .map_err(|e| invalid("body", e.to_string()))?;
        config
            .check(name)
            .map_err(|e| invalid("body", e.to_string()))?;
        let vars: Vec<(String, String)> = std::env::vars().collect();
        config.clone().resolve_secrets(&vars).map_err(|var| {
            invalid(
                "body",
                format!("environment variable {var} is not set on this node"),
            )
        })?;
        let obj = ProviderObject {
            id: name.to_string(),
            config,
        };
        self.write(&obj, None)?;
        Ok(obj)
    }

    /// The price of `model` at the provider named `provider` of preset
    /// `kind`, overrides applied.
    pub fn price(&self, provider: &str, kind: &str, model: &str) -> Option<Price> {
        self.pricing.load().price(provider, kind, model)
    }

    /// The price of `model`, or for an image request of its size and
    /// quality first ([`Pricing::price_of_any`]).
    pub fn price_for(
        &self,
        provider: &str,
        kind: &str,
        model: &str,
        image: Option<&ImageSpec>,
    ) -> Option<Price> {
        let pricing = self.pricing.load();
        match image {
            None => pricing.price(provider, kind, model),
            Some(spec) => {
                let ids = spec.price_ids(model);
                let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
                pricing.price_of_any(provider, kind, &ids)
            }
        }
    }

    /// Sets (creates or replaces) the price override for `model`.
    pub fn set_price(
        &self,
        model: &str,
        fields: Map<String, Value>,
    ) -> Result<PriceOverride, GovError> {
        non_empty("model", model)?;
        let blank = PriceOverride {
            id: model.to_string(),
            input: 0,
            output: 0,
            cached_input: None,
            cache_write: None,
            cache_write_1h: None,
            per: Default::default(),
        };
        let mut required = fields.clone();
        for f in ["input", "output"] {
            if !required.contains_key(f) {
                return Err(invalid(f, "required"));
            }
        }
        for f in ["cached_input", "cache_write", "cache_write_1h"] {
            required.entry(f).or_insert(Value::Null);
        }
        required.entry("per").or_insert(Value::Object(Map::new()));
        let (price, _) = overlay(&blank, required)?;
        self.write(&price, None)?;
        Ok(price)
    }

    /// The routing rules in force.
    pub fn rule_set(&self) -> Arc<crate::rules::RuleSet> {
        self.rule_set.load_full()
    }

    /// The highest share (in percent) of any of `key`'s budgets (its own, its
    /// team's, its customer's) already spent in the current window.
    pub fn budget_used_percent(&self, key: &KeyView) -> f64 {
        key.budgets
            .iter()
            .map(|(scope, b)| {
                if b.limit_usd.0 == 0 {
                    100.0
                } else {
                    self.spent(scope, b) as f64 * 100.0 / b.limit_usd.0 as f64
                }
            })
            .fold(0.0, f64::max)
    }

    fn check_rule(&self, r: &RoutingRule) -> Result<(), GovError> {
        non_empty("name", &r.name)?;
        crate::rules::Condition::compile(&r.condition)
            .map_err(|e| invalid("condition", e.to_string()))?;
        if r.targets.is_empty() {
            return Err(invalid("targets", "a rule needs at least one target"));
        }
        for t in &r.targets {
            if !t.model.contains('/') {
                return Err(invalid(
                    "targets",
                    format!("'{}' is not provider/model", t.model),
                ));
            }
            if t.weight == 0 {
                return Err(invalid("targets", "weights must be positive"));
            }
        }
        Ok(())
    }

    /// The key a secret belongs to, if it may be used now.
    pub fn authenticate(&self, secret: &str) -> Result<Arc<KeyView>, AuthError> {
        let snap = self.snapshot.load();
        let view = snap
            .keys_by_hash
            .get(&hash_secret(secret))
            .ok_or(AuthError::Unknown)?;
        if !view.key.active {
            return Err(AuthError::Inactive);
        }
        if view
            .key
            .expires_at
            .is_some_and(|t| t <= self.clock.now_ms())
        {
            return Err(AuthError::Expired);
        }
        if view.missing_parent {
            return Err(AuthError::MissingParent);
        }
        Ok(view.clone())
    }

    /// Whether a live object of table `kind` has id `id`.
    pub fn exists(&self, kind: &str, id: &str) -> bool {
        self.table_named(kind)
            .and_then(|t| t.get(id))
            .is_some_and(|row| row.get(objects::DELETED) != Some(b"true"))
    }

    pub fn get<T: Object>(&self, id: &str) -> Option<T> {
        self.table::<T>()
            .get(id)
            .and_then(|r| objects::from_row(&r))
    }

    /// Live objects in id order, `limit` after `cursor`; and whether more follow.
    pub fn list<T: Object>(&self, cursor: Option<&str>, limit: usize) -> (Vec<T>, bool) {
        let mut out = Vec::new();
        let mut more = false;
        for (id, row) in self.table::<T>().rows() {
            if cursor.is_some_and(|c| id.as_str() <= c) {
                continue;
            }
            if let Some(obj) = objects::from_row::<T>(&row) {
                if out.len() == limit {
                    more = true;
                    break;
                }
                out.push(obj);
            }
        }
        (out, more)
    }

    fn write<T: Object>(&self, obj: &T, only: Option<&[String]>) -> Result<(), GovError> {
        let ts = self.hlc.tick(self.clock.as_ref());
        self.commit::<T>(obj.id(), objects::to_delta(obj, ts, only))
    }

    /// Applies a local delta, rebuilds the snapshot and hands the delta to
    /// the cluster.
    fn commit<T: Object>(&self, id: &str, delta: LwwMap) -> Result<(), GovError> {
        self.table::<T>().apply(id, &delta)?;
        self.rebuild();
        self.publish(vec![Change::Row {
            table: T::KIND.to_string(),
            id: id.to_string(),
            row: delta,
        }]);
        Ok(())
    }

    fn publish(&self, changes: Vec<Change>) {
        if let Some(feed) = self.feed.get() {
            for c in changes {
                // A closed feed means the cluster layer stopped (shutdown).
                let _ = feed.send(c);
            }
        }
    }

    /// Sends every later local change to `feed`. Set once, by the cluster layer.
    pub fn set_feed(&self, feed: ChangeFeed) {
        if let Some(sync) = &self.spend_sync {
            sync.set_feed(feed.clone());
        }
        if self.feed.set(feed).is_err() {
            tracing::warn!("governance change feed set twice; keeping the first");
        }
    }

    /// Merges changes from a peer; returns how many changed something here.
    pub fn apply_remote(&self, changes: &[Change]) -> Result<usize, GovError> {
        let mut applied = 0;
        let mut rows_changed = false;
        let mut counters_changed = false;
        for change in changes {
            match change {
                Change::Row { table, id, row } => {
                    let Some(t) = self.table_named(table) else {
                        // A table this version does not know (a newer peer's).
                        continue;
                    };
                    if let Some(ts) = row.last_write()
                        && !self.hlc.observe_remote(ts, self.clock.as_ref())
                    {
                        tracing::warn!(
                            table = %table, id = %id, wall_ms = ts.wall_ms, node = ts.node,
                            "refused a replicated write stamped more than {} s ahead of this node's clock",
                            crate::state::hlc::MAX_AHEAD_MS / 1000
                        );
                        continue;
                    }
                    if t.apply_if_changed(id, row)? {
                        applied += 1;
                        rows_changed = true;
                    }
                }
                Change::Counter { key, counter } if limits::is_rate_counter(key) => {
                    if self.limiter.merge(key, counter, self.now_ms()) {
                        applied += 1;
                    }
                }
                Change::Counter { key, counter } => {
                    if self.ledger.merge(key, counter)? {
                        applied += 1;
                        counters_changed = true;
                    }
                }
            }
        }
        if rows_changed {
            self.rebuild();
        }
        if counters_changed || rows_changed {
            self.allowance_changed.notify_waiters();
        }
        Ok(applied)
    }

    /// A digest of every replicated item: its name and a hash of its state.
    /// Two nodes whose digests agree hold the same state.
    pub fn digest(&self) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        for (_, t) in self.tables() {
            for (id, row) in t.rows() {
                out.push((state::row_item(t.name(), &id), state_hash(&row)));
            }
        }
        for (name, c) in self.ledger.counters() {
            out.push((state::counter_item(&name), state_hash(&c)));
        }
        out
    }

    /// The whole state of each named item this node has, as changes.
    pub fn changes_for(&self, items: &[String]) -> Vec<Change> {
        let mut out = Vec::new();
        for item in items {
            if let Some(rest) = item.strip_prefix("row\0") {
                let Some((table, id)) = rest.split_once('\0') else {
                    continue;
                };
                let row = self.table_named(table).and_then(|t| t.get(id));
                if let Some(row) = row {
                    out.push(Change::Row {
                        table: table.to_string(),
                        id: id.to_string(),
                        row,
                    });
                }
            } else if let Some(name) = item.strip_prefix("ctr\0")
                && let Some(counter) = self.ledger.counter(name)
            {
                out.push(Change::Counter {
                    key: name.to_string(),
                    counter,
                });
            }
        }
        // Counters read above may hold spend only logged so far: peers get
        // them once they are on stable storage.
        if let Some(sync) = &self.spend_sync
            && out.iter().any(|c| matches!(c, Change::Counter { .. }))
            && let Err(e) = sync.sync_now()
        {
            tracing::error!(error = %e, "cannot sync spend to disk: not sending counters");
            out.retain(|c| !matches!(c, Change::Counter { .. }));
        }
        out
    }

    pub fn delete<T: Object>(&self, id: &str) -> Result<(), GovError> {
        if self.get::<T>(id).is_none() {
            return Err(GovError::NotFound {
                kind: T::KIND,
                id: id.into(),
            });
        }
        let ts = self.hlc.tick(self.clock.as_ref());
        self.commit::<T>(id, objects::deletion(ts))
    }

    fn new_id<T: Object>() -> String {
        format!("{}{}", T::ID_PREFIX, random_token(16))
    }

    /// Creates a customer or team from the admin API's fields (those of
    /// [`Object::PATCHABLE`]), validated whole before it is written.
    pub fn create<T: Object + Blank + Validate>(
        &self,
        fields: Map<String, Value>,
    ) -> Result<T, GovError> {
        let now = self.now_ms();
        let (mut obj, _) = overlay(&T::blank(Self::new_id::<T>(), now), fields)?;
        obj.anchor_budgets(now);
        obj.validate(self)?;
        self.write(&obj, None)?;
        Ok(obj)
    }

    /// Creates or replaces the object named `name` (objects whose id is their
    /// name: MCP servers, tool groups), validated whole before it is written.
    /// A replaced object keeps its `created_at`.
    pub fn put<T: Object + Blank + Validate>(
        &self,
        name: &str,
        fields: Map<String, Value>,
    ) -> Result<T, GovError> {
        let now = self.now_ms();
        let mut blank = T::blank(name.to_string(), now);
        if let Some(existing) = self.get::<T>(name) {
            let created =
                serde_json::to_value(&existing).expect("objects serialize")["created_at"].clone();
            let mut v = serde_json::to_value(&blank).expect("objects serialize");
            v["created_at"] = created;
            blank = serde_json::from_value(v).map_err(|e| invalid("created_at", e.to_string()))?;
        }
        let (mut obj, _) = overlay(&blank, fields)?;
        obj.anchor_budgets(now);
        obj.validate(self)?;
        self.write(&obj, None)?;
        Ok(obj)
    }

    /// Creates a key from the admin API's fields (those of [`Object::PATCHABLE`]).
    pub fn create_key(&self, fields: Map<String, Value>) -> Result<IssuedKey, GovError> {
        let secret = format!("{SECRET_PREFIX}{}", random_token(40));
        let base = VirtualKey {
            id: Self::new_id::<VirtualKey>(),
            name: String::new(),
            secret_hash: hash_secret(&secret),
            secret_prefix: secret[..SECRET_PREFIX.len() + 4].to_string(),
            active: true,
            expires_at: None,
            team_id: None,
            customer_id: None,
            models: Vec::new(),
            providers: Vec::new(),
            provider_weights: Default::default(),
            budgets: Vec::new(),
            provider_budgets: Default::default(),
            provider_rate_limits: Default::default(),
            rate_limits: Vec::new(),
            default_max_tokens: None,
            tools: Vec::new(),
            tool_groups: Vec::new(),
            auto_execute: Vec::new(),
            cache: None,
            log_content: false,
            created_at: self.now_ms(),
        };
        let (mut key, _) = overlay(&base, fields)?;
        key.anchor_budgets(self.now_ms());
        self.check_key(&key)?;
        self.write(&key, None)?;
        Ok(IssuedKey {
            key: (&key).into(),
            secret,
        })
    }

    /// A new secret for an existing key; the old one stops working at once.
    pub fn rotate_key(&self, id: &str) -> Result<IssuedKey, GovError> {
        let mut key = self
            .get::<VirtualKey>(id)
            .ok_or_else(|| GovError::NotFound {
                kind: VirtualKey::KIND,
                id: id.into(),
            })?;
        let secret = format!("{SECRET_PREFIX}{}", random_token(40));
        key.secret_hash = hash_secret(&secret);
        key.secret_prefix = secret[..SECRET_PREFIX.len() + 4].to_string();
        self.write(&key, Some(&["secret_hash".into(), "secret_prefix".into()]))?;
        Ok(IssuedKey {
            key: (&key).into(),
            secret,
        })
    }

    /// Applies a PATCH body: only [`Object::PATCHABLE`] fields, validated as a
    /// whole object before anything is written.
    pub fn patch<T: Object + Validate>(
        &self,
        id: &str,
        fields: Map<String, Value>,
    ) -> Result<T, GovError> {
        let current = self.get::<T>(id).ok_or_else(|| GovError::NotFound {
            kind: T::KIND,
            id: id.into(),
        })?;
        let (mut updated, changed) = overlay(&current, fields)?;
        updated.keep_anchors(&current);
        updated.anchor_budgets(self.now_ms());
        updated.validate(self)?;
        if !changed.is_empty() {
            self.write(&updated, Some(&changed))?;
        }
        Ok(updated)
    }

    /// Reserves the worst-case `cost` in every budget of `key` and in its
    /// budgets at each of `providers` (every target the request may use), all
    /// or nothing.
    ///
    /// The reservation is journaled on stable storage before it is
    /// returned (see `budgets`), so a crash while the request is in flight
    /// charges it at the next start; when the journal cannot be written the
    /// request is refused.
    pub fn reserve(
        &self,
        key: &KeyView,
        providers: &[&str],
        cost: Micros,
    ) -> Result<Option<Reservation>, Refusal> {
        let budgets = applicable(&key.budgets, &key.provider_budgets, providers);
        if budgets.is_empty() {
            return Ok(None);
        }
        let home = |scope: &str| key.homes.get(scope).copied().unwrap_or(self.node());
        let mut r = self.ledger.reserve(&budgets, cost, self.now_ms(), home)?;
        if let Err(e) = self.ledger.journal(&mut r) {
            tracing::error!(error = %e, "cannot journal a reservation: refusing the request");
            self.disk_failing
                .store(true, std::sync::atomic::Ordering::SeqCst);
            // Through `settle`, so that rows it writes (those of requests
            // settled while writes failed) are synced with the next group.
            self.settle(r, 0, None);
            return Err(Refusal::Unavailable(e));
        }
        self.disk_failing
            .store(false, std::sync::atomic::Ordering::SeqCst);
        if let Some(sync) = &self.spend_sync {
            sync.logged();
        }
        Ok(Some(r))
    }

    /// Whether this node can record spend: false after a durable write
    /// failed (a full or failing disk) until one succeeds again. When it was
    /// failing, this tries a durable write itself, so a node taken out of
    /// rotation by its readiness check finds out when the disk is back.
    pub fn can_record_spend(&self) -> bool {
        use std::sync::atomic::Ordering;
        if !self.disk_failing.load(Ordering::SeqCst) {
            return true;
        }
        match self.ledger.probe() {
            Ok(()) => {
                self.disk_failing.store(false, Ordering::SeqCst);
                tracing::info!("durable writes succeed again: recording spend");
                true
            }
            Err(_) => false,
        }
    }

    /// [`Governance::reserve`], and when only this node's allowance is short
    /// while the cluster has room, asks peers for allowance and tries again
    /// (a few times, waiting up to `patience` for a gift each time).
    pub async fn reserve_or_borrow(
        &self,
        key: &KeyView,
        providers: &[&str],
        cost: Micros,
        patience: std::time::Duration,
    ) -> Result<Option<Reservation>, Refusal> {
        let mut asked = 0;
        loop {
            let refused = match self.reserve(key, providers, cost) {
                Err(Refusal::Exceeded(e)) if asked < 3 => e,
                other => return other,
            };
            let (Some(short), Some(requests)) = (&refused.shortfall, self.allowance_requests.get())
            else {
                return Err(refused.into());
            };
            let gift = self.allowance_changed.notified();
            tokio::pin!(gift);
            gift.as_mut().enable();
            if requests.send(short.clone()).is_err() {
                return Err(refused.into());
            }
            asked += 1;
            let _ = tokio::time::timeout(patience, gift).await;
        }
    }

    /// Counts one request against every rate limit of `key` and its limits
    /// at each of `providers`, or refuses it.
    pub fn admit(
        &self,
        key: &KeyView,
        providers: &[&str],
    ) -> Result<Option<Admitted>, RateLimited> {
        let limits = applicable(&key.limits, &key.provider_limits, providers);
        if limits.is_empty() {
            return Ok(None);
        }
        self.limiter.admit(&limits, self.now_ms()).map(Some)
    }

    /// This node's rate-limit counts that `peer` is not known to hold; sent
    /// to it every `cluster::RATE_SYNC` until [`Governance::rate_acked`].
    pub fn rate_unacked(&self, peer: NodeId) -> Vec<Change> {
        self.limiter.unacked(peer, self.now_ms())
    }

    /// Records that `peer` received `sent` (from [`Governance::rate_unacked`]).
    pub fn rate_acked(&self, peer: NodeId, sent: &[Change]) {
        self.limiter.acked(peer, sent);
    }

    /// Forgets the rate-limit acknowledgements of peers not in `peers`.
    pub fn rate_peers(&self, peers: &[NodeId]) {
        self.limiter.keep_peers(peers);
    }

    /// Un-counts a request refused after admission.
    pub fn unadmit(&self, a: &Admitted) {
        self.limiter.undo(a);
    }

    /// Adds a finished request's tokens to its rate-limit windows.
    pub fn record_tokens(&self, a: &Admitted, tokens: u64) {
        self.limiter.record_tokens(a, tokens);
    }

    /// Releases a reservation and records what the request actually cost,
    /// in the key's budgets at `served_by` but not at the other providers.
    pub fn settle(&self, r: Reservation, actual: Micros, served_by: Option<&str>) {
        let charged = |scope: &str| match scope.split_once("/provider:") {
            Some((_, p)) => served_by == Some(p),
            None => true,
        };
        match self.ledger.settle(r, actual, charged) {
            Ok(changes) => match &self.spend_sync {
                Some(sync) => sync.publish_after(changes),
                None => self.publish(changes),
            },
            Err(e) => {
                // Its journal row stays: the next start charges the whole
                // reservation, which is never less than the actual cost.
                tracing::error!(error = %e, "cannot persist spend");
                self.disk_failing
                    .store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
    }

    /// Every budget's current window use: (scope, period, spent / limit),
    /// in scope order (the `budget_utilisation_ratio` gauges).
    pub fn budget_use(&self) -> Vec<(Scope, &'static str, f64)> {
        let mut out: Vec<(Scope, &'static str, f64)> = self
            .budget_index()
            .into_iter()
            .flat_map(|(scope, (budgets, _))| budgets.into_iter().map(move |b| (scope.clone(), b)))
            .map(|(scope, b)| {
                let spent = self.spent(&scope, &b) as f64;
                let ratio = match b.limit_usd.0 {
                    0 => f64::from(u8::from(spent > 0.0)),
                    limit => spent / limit as f64,
                };
                (scope, b.period.label(), ratio)
            })
            .collect();
        out.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        out
    }

    /// Spend so far in the window of `b` for `scope`.
    pub fn spent(&self, scope: &str, b: &Budget) -> Micros {
        self.ledger.spent(scope, b, self.now_ms())
    }

    /// Cost of `usage` on `model` (an image request's at its size,
    /// [`Governance::price_for`]) at `provider` of preset `kind`, with the
    /// model's per-request fee at the request's `search` context (0 for
    /// unpriced models, which only keys without budgets may use).
    pub fn cost(
        &self,
        provider: &str,
        kind: &str,
        model: &str,
        image: Option<&ImageSpec>,
        usage: &Usage,
        search: SearchContext,
    ) -> Micros {
        self.price_for(provider, kind, model, image)
            .map_or(0, |p| p.cost(usage).saturating_add(p.request_fee(search)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::hlc::ManualClock;
    use serde_json::json;

    #[test]
    fn secrets_hash_to_lower_case_hex_sha256() {
        assert_eq!(
            hash_secret("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    fn fields(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn open(dir: &std::path::Path, clock: Arc<ManualClock>) -> Governance {
        Governance::open(
            Store::open(dir).unwrap(),
            clock,
            &crate::config::Config::default(),
        )
        .unwrap()
    }

    #[test]
    fn keys_authenticate_until_revoked_or_expired() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(1_000_000));
        let gov = open(dir.path(), clock.clone());
        let issued = gov
            .create_key(fields(json!({"name": "ci", "expires_at": 2_000_000})))
            .unwrap();
        assert!(issued.secret.starts_with(SECRET_PREFIX));
        assert_eq!(
            gov.authenticate(&issued.secret).unwrap().key.id,
            issued.key.id
        );
        assert_eq!(
            gov.authenticate("sk-tg-nope").unwrap_err(),
            AuthError::Unknown
        );

        clock.set(2_000_000);
        assert_eq!(
            gov.authenticate(&issued.secret).unwrap_err(),
            AuthError::Expired
        );
        gov.patch::<VirtualKey>(&issued.key.id, fields(json!({"expires_at": null})))
            .unwrap();
        assert!(gov.authenticate(&issued.secret).is_ok());

        gov.patch::<VirtualKey>(&issued.key.id, fields(json!({"active": false})))
            .unwrap();
        assert_eq!(
            gov.authenticate(&issued.secret).unwrap_err(),
            AuthError::Inactive
        );
        gov.patch::<VirtualKey>(&issued.key.id, fields(json!({"active": true})))
            .unwrap();

        let rotated = gov.rotate_key(&issued.key.id).unwrap();
        assert_eq!(
            gov.authenticate(&issued.secret).unwrap_err(),
            AuthError::Unknown
        );
        assert!(gov.authenticate(&rotated.secret).is_ok());

        gov.delete::<VirtualKey>(&issued.key.id).unwrap();
        assert_eq!(
            gov.authenticate(&rotated.secret).unwrap_err(),
            AuthError::Unknown
        );
    }

    #[test]
    fn objects_survive_a_restart_and_later_writes_order_after_them() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(5_000));
        let (team, key) = {
            let gov = open(dir.path(), clock.clone());
            let c = gov
                .create::<Customer>(fields(json!({"name": "acme"})))
                .unwrap();
            let t = gov
                .create::<Team>(fields(json!({"name": "search", "customer_id": c.id})))
                .unwrap();
            let k = gov
                .create_key(fields(json!({"name": "k", "team_id": t.id})))
                .unwrap();
            (t, k)
        };
        // The clock went back across the restart: edits must still win.
        clock.set(10);
        let gov = open(dir.path(), clock);
        assert!(gov.authenticate(&key.secret).is_ok());
        gov.patch::<Team>(&team.id, fields(json!({"name": "renamed"})))
            .unwrap();
        assert_eq!(gov.get::<Team>(&team.id).unwrap().name, "renamed");
    }

    #[test]
    fn bad_writes_are_refused_whole() {
        let dir = tempfile::tempdir().unwrap();
        let gov = open(dir.path(), Arc::new(ManualClock::new(1)));
        let k = gov.create_key(fields(json!({"name": "k"}))).unwrap();
        for body in [
            json!({"name": ""}),
            json!({"team_id": "team_missing"}),
            json!({"secret_hash": "00"}),
            json!({"id": "vk_other"}),
            json!({"colour": "red"}),
            json!({"active": "yes"}),
            json!({"models": ["gpt-4o", " "]}),
            json!({"name": "ok", "models": 7}),
        ] {
            let err = gov
                .patch::<VirtualKey>(&k.key.id, fields(body.clone()))
                .unwrap_err();
            assert!(matches!(err, GovError::Invalid { .. }), "{body}: {err}");
        }
        // Nothing of the refused bodies was written, not even their valid parts.
        let now = gov.get::<VirtualKey>(&k.key.id).unwrap();
        assert_eq!(now.name, "k");
        assert!(matches!(
            gov.create_key(fields(json!({"name": "x", "extra": 1}))),
            Err(GovError::Invalid { .. })
        ));
        assert!(matches!(
            gov.patch::<VirtualKey>("vk_missing", Map::new()),
            Err(GovError::NotFound { .. })
        ));
        assert!(matches!(
            gov.delete::<Team>("team_missing"),
            Err(GovError::NotFound { .. })
        ));
    }

    #[test]
    fn key_access_patterns() {
        let dir = tempfile::tempdir().unwrap();
        let gov = open(dir.path(), Arc::new(ManualClock::new(1)));
        let k = gov
            .create_key(fields(json!({"name": "k", "models": ["gpt-4o*", "groq/*"], "providers": ["openai", "groq"]})))
            .unwrap();
        let view = gov.authenticate(&k.secret).unwrap();
        assert!(view.allows("openai", "gpt-4o-mini"));
        assert!(view.allows("groq", "llama-3.3-70b-versatile"));
        assert!(!view.allows("openai", "o3"));
        assert!(!view.allows("mistral", "gpt-4o"), "provider not listed");
        let open_key = gov.create_key(fields(json!({"name": "open"}))).unwrap();
        assert!(
            gov.authenticate(&open_key.secret)
                .unwrap()
                .allows("any", "thing")
        );
    }

    #[test]
    fn paging_lists_in_id_order() {
        let dir = tempfile::tempdir().unwrap();
        let gov = open(dir.path(), Arc::new(ManualClock::new(1)));
        for i in 0..5 {
            gov.create::<Customer>(fields(json!({"name": format!("c{i}")})))
                .unwrap();
        }
        let (first, more) = gov.list::<Customer>(None, 2);
        assert!(more);
        let (second, _) = gov.list::<Customer>(Some(&first[1].id), 2);
        let (rest, more) = gov.list::<Customer>(Some(&second[1].id), 2);
        assert!(!more);
        let all: Vec<String> = first
            .iter()
            .chain(&second)
            .chain(&rest)
            .map(|c| c.id.clone())
            .collect();
        let mut sorted = all.clone();
        sorted.sort();
        assert_eq!(all.len(), 5);
        assert_eq!(all, sorted);
    }
}
