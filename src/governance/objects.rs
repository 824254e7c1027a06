//! The governance objects and how they map onto replicated rows.
//!
//! Each object is a plain serde struct; in a [`Table`](crate::state::table::Table)
//! it is an `LwwMap` with one register per top-level field (the field's JSON
//! bytes), plus a `deleted` register as its tombstone. Fields added in later
//! releases default when absent, so old rows keep decoding.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::budgets::Budget;
use super::limits::RateLimit;
use super::pricing::UnitRates;
use crate::state::hlc::Timestamp;
use crate::state::lww::LwwMap;

/// Output tokens a request without `max_tokens` reserves, unless its key says otherwise.
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

/// The field that marks a deleted object.
pub const DELETED: &str = crate::state::table::TOMBSTONE;

/// An object stored in a replicated table.
pub trait Object: Serialize + DeserializeOwned + Clone {
    /// Table name, and the `/api/<kind>` path segment.
    const KIND: &'static str;
    /// Prefix of generated ids (`vk_`, `team_`, `cus_`).
    const ID_PREFIX: &'static str;
    /// Fields a PATCH may change.
    const PATCHABLE: &'static [&'static str];
    fn id(&self) -> &str;
    /// The object's budgets, for objects that carry them.
    fn budgets_mut(&mut self) -> Option<&mut Vec<Budget>> {
        None
    }

    /// Gives rolling budgets without an anchor their first window's start.
    fn anchor_budgets(&mut self, now_ms: u64) {
        for b in self.budgets_mut().into_iter().flatten() {
            if !b.calendar && b.anchor_ms == 0 {
                b.anchor_ms = now_ms;
            }
        }
    }

    /// Before an edit is anchored: every rolling budget that names no anchor
    /// keeps the anchor of `old`'s budget of the same period, so changing a
    /// limit never opens a fresh window on spend already made.
    fn keep_anchors(&mut self, old: &Self) {
        let mut old = old.clone();
        let before: Vec<Budget> = old.budgets_mut().cloned().unwrap_or_default();
        for b in self.budgets_mut().into_iter().flatten() {
            keep_anchor(b, &before);
        }
    }
}

fn keep_anchor(b: &mut Budget, before: &[Budget]) {
    if b.calendar || b.anchor_ms != 0 {
        return;
    }
    if let Some(old) = before
        .iter()
        .find(|o| !o.calendar && o.period == b.period && o.anchor_ms != 0)
    {
        b.anchor_ms = old.anchor_ms;
    }
}

/// A routing rule (`/api/routing-rules`, see `docs/routing.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutingRule {
    pub id: String,
    pub name: String,
    /// Lower first.
    #[serde(default)]
    pub priority: i64,
    pub scope: crate::rules::RuleScope,
    /// A CEL expression over the request (see `rules::RuleInput`).
    pub condition: String,
    pub targets: Vec<crate::rules::WeightedTarget>,
    #[serde(default = "enabled")]
    pub enabled: bool,
    pub created_at: u64,
}

impl Object for RoutingRule {
    const KIND: &'static str = "routing_rules";
    const ID_PREFIX: &'static str = "rr_";
    const PATCHABLE: &'static [&'static str] = &[
        "name",
        "priority",
        "scope",
        "condition",
        "targets",
        "enabled",
    ];
    fn id(&self) -> &str {
        &self.id
    }
}

/// A provider set through the admin API (`PUT /api/providers/{name}`), kept
/// beside those of the config file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProviderObject {
    /// The provider's name.
    pub id: String,
    pub config: crate::config::ProviderConfig,
}

impl Object for ProviderObject {
    const KIND: &'static str = "providers";
    const ID_PREFIX: &'static str = "";
    const PATCHABLE: &'static [&'static str] = &["config"];
    fn id(&self) -> &str {
        &self.id
    }
}

/// A price set through the admin API for one model id (or `provider/model`),
/// laid over the built-in catalog and the config's `[pricing]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceOverride {
    /// The model id the price is for.
    pub id: String,
    /// Micro-dollars per million tokens.
    pub input: u64,
    pub output: u64,
    #[serde(default)]
    pub cached_input: Option<u64>,
    /// Prompt-cache writes (5-minute), and those kept for an hour.
    #[serde(default)]
    pub cache_write: Option<u64>,
    #[serde(default)]
    pub cache_write_1h: Option<u64>,
    /// Rates per search unit, image, second of audio and character, in
    /// micro-dollars per unit; unset ones keep the catalog's.
    #[serde(default, skip_serializing_if = "UnitRates::is_none")]
    pub per: UnitRates,
}

impl Object for PriceOverride {
    const KIND: &'static str = "pricing";
    const ID_PREFIX: &'static str = "";
    const PATCHABLE: &'static [&'static str] = &[
        "input",
        "output",
        "cached_input",
        "cache_write",
        "cache_write_1h",
        "per",
    ];
    fn id(&self) -> &str {
        &self.id
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub budgets: Vec<Budget>,
    #[serde(default)]
    pub rate_limits: Vec<RateLimit>,
    /// MCP tool groups every key of this customer may use.
    #[serde(default)]
    pub tool_groups: Vec<String>,
    /// Store request and response bodies with the request logs of every
    /// key under this customer (`docs/admin-api.md`, content logging).
    #[serde(default)]
    pub log_content: bool,
    /// Unix ms.
    pub created_at: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Team {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub budgets: Vec<Budget>,
    #[serde(default)]
    pub rate_limits: Vec<RateLimit>,
    #[serde(default)]
    pub customer_id: Option<String>,
    /// MCP tool groups every key of this team may use.
    #[serde(default)]
    pub tool_groups: Vec<String>,
    /// Store request and response bodies with the request logs of every
    /// key in this team.
    #[serde(default)]
    pub log_content: bool,
    pub created_at: u64,
}

/// A virtual key. The secret itself is never stored: only its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VirtualKey {
    pub id: String,
    pub name: String,
    /// Hex SHA-256 of the secret.
    pub secret_hash: String,
    /// The secret's first characters, to recognise it in lists (`sk-tg-AbC…`).
    pub secret_prefix: String,
    pub active: bool,
    /// Unix ms after which the key is refused.
    #[serde(default)]
    pub expires_at: Option<u64>,
    #[serde(default)]
    pub team_id: Option<String>,
    /// Customer of a key that belongs to no team.
    #[serde(default)]
    pub customer_id: Option<String>,
    /// Model patterns (`gpt-4o*`, `groq/*`) this key may use; empty = all.
    #[serde(default)]
    pub models: Vec<String>,
    /// Providers this key may use; empty = all.
    #[serde(default)]
    pub providers: Vec<String>,
    /// For a bare model several providers serve: relative weights by provider
    /// name. Providers not listed are not chosen while any listed one can serve.
    #[serde(default)]
    pub provider_weights: std::collections::BTreeMap<String, u32>,
    #[serde(default)]
    pub budgets: Vec<Budget>,
    /// Budgets of this key at one provider (the per-key provider level of
    /// the hierarchy), by provider name.
    #[serde(default)]
    pub provider_budgets: std::collections::BTreeMap<String, Vec<Budget>>,
    #[serde(default)]
    pub rate_limits: Vec<RateLimit>,
    /// Rate limits of this key at one provider, by provider name.
    #[serde(default)]
    pub provider_rate_limits: std::collections::BTreeMap<String, Vec<RateLimit>>,
    /// Output tokens reserved for a request that sets no `max_tokens`
    /// (default [`DEFAULT_MAX_TOKENS`]).
    #[serde(default)]
    pub default_max_tokens: Option<u64>,
    /// MCP tools this key may call, as `server-tool` patterns
    /// (`filesystem-read_file`, `filesystem-*`). With `tool_groups` here and
    /// at the team and customer, the key's tool scope; all empty = every tool.
    #[serde(default)]
    pub tools: Vec<String>,
    /// Names of [`ToolGroup`]s this key may use.
    #[serde(default)]
    pub tool_groups: Vec<String>,
    /// Tools (`server-tool` patterns) the gateway executes itself in agent mode.
    #[serde(default)]
    pub auto_execute: Vec<String>,
    /// This key's response-cache settings, over the route's and the
    /// config's (`docs/cache.md`, "Per route and per key").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheSettings>,
    /// Store request and response bodies with this key's request logs.
    #[serde(default)]
    pub log_content: bool,
    pub created_at: u64,
}

/// Response-cache settings of a route (`[[cache.routes]]`) or a virtual
/// key; what is unset falls through to the next level.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheSettings {
    /// Whether answers are looked up and stored at all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Whether a question close to a cached one is answered from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semantic: Option<bool>,
    /// The similarity at or above which it is, in (0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f32>,
}

/// Thresholds are checked to be numbers in (0, 1] when written.
impl Eq for CacheSettings {}

impl CacheSettings {
    /// `self` where set, else `under`.
    pub fn over(&self, under: &CacheSettings) -> CacheSettings {
        CacheSettings {
            enabled: self.enabled.or(under.enabled),
            semantic: self.semantic.or(under.semantic),
            threshold: self.threshold.or(under.threshold),
        }
    }

    /// Why these settings cannot be used, if they cannot.
    pub fn problem(&self) -> Option<String> {
        match self.threshold {
            Some(t) if !crate::cache::valid_threshold(t) => {
                Some(format!("threshold {t} is not in (0, 1]"))
            }
            _ => None,
        }
    }
}

impl Object for Customer {
    const KIND: &'static str = "customers";
    const ID_PREFIX: &'static str = "cus_";
    const PATCHABLE: &'static [&'static str] = &[
        "name",
        "budgets",
        "rate_limits",
        "tool_groups",
        "log_content",
    ];
    fn id(&self) -> &str {
        &self.id
    }
    fn budgets_mut(&mut self) -> Option<&mut Vec<Budget>> {
        Some(&mut self.budgets)
    }
}

impl Object for Team {
    const KIND: &'static str = "teams";
    const ID_PREFIX: &'static str = "team_";
    const PATCHABLE: &'static [&'static str] = &[
        "name",
        "customer_id",
        "budgets",
        "rate_limits",
        "tool_groups",
        "log_content",
    ];
    fn id(&self) -> &str {
        &self.id
    }
    fn budgets_mut(&mut self) -> Option<&mut Vec<Budget>> {
        Some(&mut self.budgets)
    }
}

impl Object for VirtualKey {
    const KIND: &'static str = "keys";
    const ID_PREFIX: &'static str = "vk_";
    const PATCHABLE: &'static [&'static str] = &[
        "name",
        "active",
        "expires_at",
        "team_id",
        "customer_id",
        "models",
        "providers",
        "provider_weights",
        "budgets",
        "provider_budgets",
        "provider_rate_limits",
        "rate_limits",
        "default_max_tokens",
        "tools",
        "tool_groups",
        "auto_execute",
        "cache",
        "log_content",
    ];
    fn id(&self) -> &str {
        &self.id
    }
    fn budgets_mut(&mut self) -> Option<&mut Vec<Budget>> {
        Some(&mut self.budgets)
    }

    fn anchor_budgets(&mut self, now_ms: u64) {
        let all = self
            .budgets
            .iter_mut()
            .chain(self.provider_budgets.values_mut().flatten());
        for b in all {
            if !b.calendar && b.anchor_ms == 0 {
                b.anchor_ms = now_ms;
            }
        }
    }

    fn keep_anchors(&mut self, old: &Self) {
        for b in &mut self.budgets {
            keep_anchor(b, &old.budgets);
        }
        for (provider, list) in &mut self.provider_budgets {
            let before = old
                .provider_budgets
                .get(provider)
                .map_or(&[][..], Vec::as_slice);
            for b in list {
                keep_anchor(b, before);
            }
        }
    }
}

/// An upstream MCP server registered through the admin API
/// (`PUT /api/mcp/servers/{name}`). Every node connects to it itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct McpServer {
    /// The server's name: the `server` of the `server-tool` names it exposes.
    pub id: String,
    pub transport: McpTransport,
    /// Price of one call, in micro-dollars, by tool name (without the server prefix).
    #[serde(default)]
    pub tool_prices: std::collections::BTreeMap<String, u64>,
    /// Tools (bare names or patterns) the gateway may execute itself in agent mode.
    #[serde(default)]
    pub auto_execute: Vec<String>,
    /// Code Mode: the server's tools are not listed to clients; they are
    /// reached through the four Code Mode meta-tools instead (`docs/mcp.md`).
    #[serde(default)]
    pub code_mode: bool,
    /// OAuth to the server (streamable HTTP only): `None` sends only the
    /// transport's own headers.
    #[serde(default)]
    pub oauth: Option<McpOAuth>,
    /// A disabled server is disconnected and shows no tools.
    #[serde(default = "enabled")]
    pub enabled: bool,
    pub created_at: u64,
}

fn enabled() -> bool {
    true
}

/// How the gateway authorises itself to an OAuth-protected MCP server
/// (`docs/mcp.md#oauth-to-upstream-servers`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpOAuth {
    #[serde(default)]
    pub mode: OAuthMode,
    /// Scopes to ask for; empty asks for what the server's challenge or
    /// metadata names.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// A client registered beforehand at the authorization server; without
    /// one the gateway registers itself (see `registration`).
    #[serde(default)]
    pub client_id: Option<String>,
    /// The secret of `client_id`, if it is a confidential client (`env.VAR` allowed).
    #[serde(default)]
    pub client_secret: Option<crate::config::Secret>,
    #[serde(default)]
    pub registration: Registration,
}

/// Whose token a call to the server carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OAuthMode {
    /// One token for the whole gateway, authorised once by an admin.
    #[default]
    Gateway,
    /// Each virtual key (or end user of a key, by `mcp.user_header`)
    /// authorises for itself; nobody's token is used for anyone else.
    PerUser,
}

/// How the gateway becomes a client of the authorization server when no
/// `client_id` is given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Registration {
    /// A client ID metadata document where the server supports them and
    /// `mcp.public_url` is set, else dynamic registration.
    #[default]
    Auto,
    MetadataDocument,
    Dynamic,
}

/// An OAuth credential of the gateway at one MCP server for one subject
/// (`gateway`, `key:<id>` or `key:<id>:user:<name>`), its tokens sealed
/// with the cluster's key (`mcp::oauth::vault`); replicated like every
/// governance object, never shown by the admin API. Id: `<server>|<subject>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct McpCredential {
    pub id: String,
    /// The sealed tokens; empty when there are none (never authorised,
    /// forgotten, or refused on refresh: authorise again).
    #[serde(default)]
    pub sealed: String,
    /// When the access token expires (0: not said).
    #[serde(default)]
    pub expires_at_ms: u64,
    /// `<node id>:<until ms>`: the node refreshing it now; the others wait.
    #[serde(default)]
    pub lease: String,
    /// Why the subject must authorise again, if it must.
    #[serde(default)]
    pub problem: String,
    pub updated_ms: u64,
    pub created_at: u64,
}

impl Object for McpCredential {
    const KIND: &'static str = "mcp_credentials";
    const ID_PREFIX: &'static str = "";
    const PATCHABLE: &'static [&'static str] = &[];
    fn id(&self) -> &str {
        &self.id
    }
}

/// How a node reaches an upstream MCP server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum McpTransport {
    /// A long-lived child process speaking MCP on stdin/stdout.
    Stdio {
        command: String,
        #[serde(default)]
        args: Vec<String>,
        /// Extra environment; values may be `env.VAR` (read on the node).
        #[serde(default)]
        env: std::collections::BTreeMap<String, crate::config::Secret>,
    },
    /// Streamable HTTP (MCP 2025-03-26 and later).
    Http {
        url: String,
        /// Extra request headers; values may be `env.VAR`.
        #[serde(default)]
        headers: std::collections::BTreeMap<String, crate::config::Secret>,
    },
    /// The legacy HTTP+SSE transport (MCP 2024-11-05).
    Sse {
        url: String,
        #[serde(default)]
        headers: std::collections::BTreeMap<String, crate::config::Secret>,
    },
}

impl Object for McpServer {
    const KIND: &'static str = "mcp_servers";
    const ID_PREFIX: &'static str = "";
    const PATCHABLE: &'static [&'static str] = &[
        "transport",
        "tool_prices",
        "auto_execute",
        "code_mode",
        "oauth",
        "enabled",
    ];
    fn id(&self) -> &str {
        &self.id
    }
}

/// A named set of MCP tools (`server-tool` patterns, across servers),
/// attachable to keys, teams and customers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolGroup {
    /// The group's name.
    pub id: String,
    #[serde(default)]
    pub description: String,
    pub tools: Vec<String>,
    pub created_at: u64,
}

impl Object for ToolGroup {
    const KIND: &'static str = "tool_groups";
    const ID_PREFIX: &'static str = "";
    const PATCHABLE: &'static [&'static str] = &["description", "tools"];
    fn id(&self) -> &str {
        &self.id
    }
}

/// What an admin token may do (`docs/admin-api.md#admin-tokens-and-roles`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything.
    Admin,
    /// Customers, teams and virtual keys (and so budgets and rate limits),
    /// and reading everything but admin tokens.
    Operator,
    /// Reading everything but admin tokens.
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Viewer => "viewer",
        }
    }
}

/// A named admin API token. Only the SHA-256 of its secret is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminToken {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub secret_hash: String,
    /// The secret's first characters, to recognise it.
    pub secret_prefix: String,
    pub created_at: u64,
}

impl Object for AdminToken {
    const KIND: &'static str = "admin_tokens";
    const ID_PREFIX: &'static str = "adm_";
    const PATCHABLE: &'static [&'static str] = &["name", "role"];
    fn id(&self) -> &str {
        &self.id
    }
}

/// The fields of `obj` as a delta written at `ts` (all of them, or only `only`).
pub fn to_delta<T: Object>(obj: &T, ts: Timestamp, only: Option<&[String]>) -> LwwMap {
    let Value::Object(fields) = serde_json::to_value(obj).expect("objects serialize") else {
        unreachable!("objects are structs");
    };
    let mut delta = LwwMap::default();
    for (k, v) in fields {
        if only.is_none_or(|o| o.contains(&k)) {
            delta.set(
                &k,
                ts,
                Some(serde_json::to_vec(&v).expect("values serialize")),
            );
        }
    }
    if only.is_none() {
        delta.set(DELETED, ts, Some(b"false".to_vec()));
    }
    delta
}

/// The tombstone delta.
pub fn deletion(ts: Timestamp) -> LwwMap {
    let mut delta = LwwMap::default();
    delta.set(DELETED, ts, Some(b"true".to_vec()));
    delta
}

/// The object a row holds, or `None` if it is deleted or cannot be read.
pub fn from_row<T: Object>(row: &LwwMap) -> Option<T> {
    if row.get(DELETED) == Some(b"true") {
        return None;
    }
    let mut fields = Map::new();
    for (k, reg) in &row.fields {
        if k == DELETED {
            continue;
        }
        if let Some(bytes) = &reg.value {
            fields.insert(k.clone(), serde_json::from_slice(bytes).ok()?);
        }
    }
    match serde_json::from_value(Value::Object(fields)) {
        Ok(obj) => Some(obj),
        Err(e) => {
            tracing::error!(kind = T::KIND, error = %e, "unreadable replicated object");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(ms: u64, node: u64) -> Timestamp {
        Timestamp {
            wall_ms: ms,
            counter: 0,
            node,
        }
    }

    fn team(name: &str) -> Team {
        Team {
            id: "team_1".into(),
            name: name.into(),
            customer_id: None,
            budgets: vec![],
            rate_limits: vec![],
            tool_groups: vec![],
            log_content: false,
            created_at: 1,
        }
    }

    #[test]
    fn objects_round_trip_and_concurrent_field_edits_both_survive() {
        use crate::state::Merge;
        let mut row = to_delta(&team("a"), ts(1, 1), None);
        assert_eq!(from_row::<Team>(&row), Some(team("a")));
        // Node 1 renames, node 2 sets the customer, concurrently.
        let rename = to_delta(&team("b"), ts(5, 1), Some(&["name".to_string()]));
        let mut with_customer = team("a");
        with_customer.customer_id = Some("cus_1".into());
        let assign = to_delta(&with_customer, ts(5, 2), Some(&["customer_id".to_string()]));
        let mut other = row.clone();
        row.merge(&rename);
        row.merge(&assign);
        other.merge(&assign);
        other.merge(&rename);
        assert_eq!(row, other);
        let t = from_row::<Team>(&row).unwrap();
        assert_eq!(
            (t.name.as_str(), t.customer_id.as_deref()),
            ("b", Some("cus_1"))
        );
    }

    #[test]
    fn deletes_win_over_older_writes_and_lose_to_newer() {
        use crate::state::Merge;
        let mut row = to_delta(&team("a"), ts(1, 1), None);
        row.merge(&deletion(ts(3, 2)));
        row.merge(&to_delta(
            &team("late-edit"),
            ts(2, 1),
            Some(&["name".to_string()]),
        ));
        assert_eq!(from_row::<Team>(&row), None);
        row.merge(&to_delta(&team("recreated"), ts(4, 1), None));
        assert_eq!(from_row::<Team>(&row).unwrap().name, "recreated");
    }
}
