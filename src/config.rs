//! Typed, validated node configuration.
//!
//! Sources, later ones winning: built-in defaults, the TOML file given with
//! `--config`, then `TOLLGATE_*` environment variables (see [`overrides`]).
//! Every user-facing table rejects unknown fields: a typo in a limit is a bug
//! we want to hear about at start-up, not in production. Secrets may be written
//! as `env.VAR` and are resolved once, here. This module knows nothing about
//! HTTP servers or providers' wire formats.

pub mod otel;
mod overrides;
mod secret;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use indexmap::IndexMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use secret::{Secret, derive_key, private_dir, write_private};

use crate::governance::pricing::Price;
use crate::providers::presets::{self, ProviderKind};

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("environment variable {var}: {reason}")]
    Env { var: String, reason: String },
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Every one of `positive` must be non-zero, and a section's backoff base
/// must not exceed its maximum.
fn durations(
    positive: &[(&str, Duration)],
    (section, base, max): (&str, Duration, Duration),
) -> Result<(), ConfigError> {
    if let Some((name, _)) = positive.iter().find(|(_, d)| d.is_zero()) {
        return Err(invalid(*name, "must be positive"));
    }
    if base > max {
        return Err(invalid(
            format!("{section}.backoff_base"),
            format!("must not exceed {section}.backoff_max"),
        ));
    }
    Ok(())
}

/// The whole node configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    /// Defaults for every provider's upstream calls; a provider may override any of them.
    pub upstream: UpstreamConfig,
    pub logs: LogsConfig,
    pub client: ClientConfig,
    pub cluster: ClusterConfig,
    /// The MCP gateway: `/mcp` and its upstream servers.
    pub mcp: McpConfig,
    /// The exact response cache (`docs/cache.md`).
    pub cache: CacheConfig,
    /// What `/metrics` breaks spend down by.
    pub metrics: MetricsConfig,
    /// OpenTelemetry trace export (`docs/observability.md`).
    pub otel: otel::OtelConfig,
    /// Price overrides by model id (or `provider/model`), in micro-dollars per
    /// million tokens: `[pricing."gpt-4o"] input = 2500000, output = 10000000`.
    pub pricing: HashMap<String, Price>,
    /// Providers by name. The name is what clients write before the `/` in
    /// `provider/model`. Order matters: a bare model name found in several
    /// providers' catalogs resolves to the first.
    pub providers: IndexMap<String, ProviderConfig>,
    /// How requests on the Anthropic surface (`/anthropic/v1/...`) name models.
    pub anthropic: AnthropicConfig,
}

/// Model tiers for Anthropic clients. Claude Code asks for `claude-opus-*`,
/// `claude-sonnet-*` and `claude-haiku-*` models; each tier set here sends
/// those requests to a `provider/model` of any format instead.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnthropicConfig {
    pub opus_model: Option<String>,
    pub sonnet_model: Option<String>,
    pub haiku_model: Option<String>,
}

impl AnthropicConfig {
    /// The configured model for `requested`'s tier, if it is a Claude tier
    /// name and that tier is set.
    pub fn tier_model(&self, requested: &str) -> Option<&str> {
        if !requested.starts_with("claude-") {
            return None;
        }
        [
            ("opus", &self.opus_model),
            ("sonnet", &self.sonnet_model),
            ("haiku", &self.haiku_model),
        ]
        .into_iter()
        .find(|(tier, _)| requested.contains(tier))
        .and_then(|(_, m)| m.as_deref())
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            server: ServerConfig::default(),
            upstream: UpstreamConfig::default(),
            logs: LogsConfig::default(),
            client: ClientConfig::default(),
            cluster: ClusterConfig::default(),
            mcp: McpConfig::default(),
            cache: CacheConfig::default(),
            metrics: MetricsConfig::default(),
            otel: otel::OtelConfig::default(),
            pricing: HashMap::new(),
            providers: IndexMap::new(),
            anthropic: AnthropicConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address the HTTP server binds. Default `127.0.0.1:8080`: reachable
    /// from this machine only until the operator says otherwise (the
    /// container images set `0.0.0.0:8080`).
    pub listen: SocketAddr,
    /// Directory for RocksDB and other node-local data. Default `./data`.
    pub data_dir: PathBuf,
    /// Largest request body accepted, in bytes; larger bodies get 413. Default 32 MiB
    /// (room for a few base64 images in a multimodal request).
    pub max_body_bytes: usize,
    /// Token required by `/api/...` as `Authorization: Bearer <token>`, at
    /// least 20 characters of which 8 distinct. When unset, the node makes a
    /// random one on first start in `data_dir/admin-token` (mode 0600); the
    /// admin API is never open.
    pub admin_token: Option<Secret>,
    /// When set, `/metrics` requires it as `Authorization: Bearer <token>`
    /// (same strength rule as `admin_token`). Unset, `/metrics` is open to
    /// whoever reaches the port.
    pub metrics_token: Option<Secret>,
    /// After SIGTERM, how long the node keeps serving with `/ready` failing, so a
    /// load balancer stops sending it new requests before the listener closes.
    #[serde(deserialize_with = "duration")]
    pub drain_delay: Duration,
    /// Then, how long it waits for in-flight requests and streams to finish.
    #[serde(deserialize_with = "duration")]
    pub shutdown_grace: Duration,
    /// Open client connections at most; past it, new ones wait in the
    /// kernel's accept queue until one closes. Default 4096.
    pub max_connections: usize,
    /// Longest a client may take to send a request's headers (HTTP/1),
    /// idle keep-alive time included; then the connection is closed.
    /// Default 30s.
    #[serde(deserialize_with = "duration")]
    pub header_read_timeout: Duration,
    /// Longest a request's body may take to arrive after its headers; then
    /// the request fails with 408. Default 60s.
    #[serde(deserialize_with = "duration")]
    pub body_read_timeout: Duration,
    /// Requests being served at once at most (a streamed answer counts
    /// until its body ends); more get 503 with `Retry-After: 1`. Default 4096.
    pub max_in_flight: usize,
    /// How long a dashboard login lasts (the session cookie's lifetime).
    /// Default 12h.
    #[serde(deserialize_with = "duration")]
    pub session_ttl: Duration,
    /// How often journal rows and settled spend are synced to disk, for
    /// every governed request of the interval at once (a killed process
    /// loses none of them; a power loss, at most one interval's). `0s`
    /// syncs each write before the request goes on. Default 10ms, at most
    /// 1s.
    #[serde(deserialize_with = "duration")]
    pub spend_sync_interval: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./data"),
            max_body_bytes: 32 * 1024 * 1024,
            admin_token: None,
            metrics_token: None,
            drain_delay: Duration::ZERO,
            shutdown_grace: Duration::from_secs(30),
            max_connections: 4096,
            header_read_timeout: Duration::from_secs(30),
            body_read_timeout: Duration::from_secs(60),
            max_in_flight: 4096,
            session_ttl: Duration::from_secs(12 * 3600),
            spend_sync_interval: Duration::from_millis(10),
        }
    }
}

/// Membership and replication between nodes (`docs/cluster.md`). The node
/// joins a cluster when `secret` is set; without it, it runs alone.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// Shared by every node; the cluster's TLS CA and the MCP session key are
    /// derived from it (HKDF-SHA256), so a process without it can neither
    /// join nor send anything. At least 32 characters of which 10 distinct
    /// (`openssl rand -base64 32`). Also read from `TOLLGATE_CLUSTER_SECRET`.
    pub secret: Option<Secret>,
    /// UDP address of the node's QUIC endpoint. Default `0.0.0.0:7946`.
    pub listen: SocketAddr,
    /// `host:port` peers reach this node's QUIC endpoint at, resolved at
    /// start. Default: `listen`, which must then not be a wildcard address.
    pub advertise: Option<String>,
    /// `host:port` of this node's HTTP server as peers and operators reach
    /// it (shown in `/api/cluster`). Default: the advertised host with the
    /// port of `server.listen`.
    pub advertise_http: Option<String>,
    /// `host:port` of nodes to join through; names are resolved again on
    /// every attempt. Also read from `TOLLGATE_SEEDS` (comma-separated).
    pub seeds: Vec<String>,
    /// How often the node compares its whole state with a random peer's.
    #[serde(deserialize_with = "duration")]
    pub sync_interval: Duration,
    /// Share route health with peers (and use theirs). Default true.
    pub share_health: bool,
    /// How long a node must be seen down (or gone, having left) before
    /// its deputy takes over the allowance it holds beyond its lease's
    /// ceiling (`docs/cluster.md`, leases). Default 30s.
    #[serde(deserialize_with = "duration")]
    pub lease_takeover: Duration,
    /// Most digest entries in one anti-entropy page. Default 4096
    /// (`cluster::sync::PAGE_ITEMS`).
    pub sync_page_items: usize,
    /// Most bytes of item state in one anti-entropy reply or give frame (an
    /// item larger than that travels alone). Default 4 MiB
    /// (`cluster::sync::REPLY_BYTES`); at most a quarter of the 64 MiB
    /// frame limit.
    pub sync_reply_bytes: usize,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            secret: None,
            listen: SocketAddr::from(([0, 0, 0, 0], 7946)),
            advertise: None,
            advertise_http: None,
            seeds: Vec::new(),
            sync_interval: Duration::from_secs(10),
            share_health: true,
            lease_takeover: Duration::from_secs(30),
            sync_page_items: crate::cluster::sync::PAGE_ITEMS,
            sync_reply_bytes: crate::cluster::sync::REPLY_BYTES,
        }
    }
}

/// Timeouts and retry policy for upstream calls.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamConfig {
    /// TCP + TLS connect timeout.
    #[serde(deserialize_with = "duration")]
    pub connect_timeout: Duration,
    /// Time from sending the request to receiving response headers.
    #[serde(deserialize_with = "duration")]
    pub first_byte_timeout: Duration,
    /// Longest silence allowed between two body chunks (streams and plain bodies).
    #[serde(deserialize_with = "duration")]
    pub idle_timeout: Duration,
    /// Retries of one target after 5xx, network errors and timeouts, before the
    /// next fallback target is tried. Key rotation on 429/401/403 is not counted.
    pub max_retries: u32,
    /// First backoff delay; doubled per retry, with full jitter, capped at `backoff_max`.
    #[serde(deserialize_with = "duration")]
    pub backoff_base: Duration,
    #[serde(deserialize_with = "duration")]
    pub backoff_max: Duration,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        UpstreamConfig {
            connect_timeout: Duration::from_secs(5),
            first_byte_timeout: Duration::from_secs(120),
            idle_timeout: Duration::from_secs(60),
            max_retries: 2,
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(2),
        }
    }
}

impl UpstreamConfig {
    /// These defaults with a provider's overrides applied.
    pub fn for_provider(&self, p: &ProviderConfig) -> UpstreamConfig {
        UpstreamConfig {
            connect_timeout: p.connect_timeout.unwrap_or(self.connect_timeout),
            first_byte_timeout: p.first_byte_timeout.unwrap_or(self.first_byte_timeout),
            idle_timeout: p.idle_timeout.unwrap_or(self.idle_timeout),
            max_retries: p.max_retries.unwrap_or(self.max_retries),
            ..self.clone()
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Series per virtual key (`tollgate_key_*`). Off by default: one
    /// series per key grows with the keys.
    pub per_key: bool,
    /// Distinct values each client- or admin-made label (team, customer,
    /// key, MCP server, tool, budget scope) may take; later ones are
    /// counted as `other`. Default 1000.
    pub max_series: usize,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            per_key: false,
            max_series: 1000,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogsConfig {
    /// Request logs older than this are deleted. Default 7 days.
    #[serde(deserialize_with = "duration")]
    pub retention: Duration,
    /// The most each log (requests, tool calls) takes on disk, bytes; past
    /// it the oldest records go first, whatever the retention. Default 1 GiB.
    pub max_bytes: u64,
}

impl Default for LogsConfig {
    fn default() -> Self {
        LogsConfig {
            retention: Duration::from_secs(7 * 24 * 3600),
            max_bytes: 1 << 30,
        }
    }
}

/// The response cache: answers stored in this node's database and served
/// again to identical requests of the same tenant (exact), and with
/// `[cache.semantic]` to requests that ask the same in other words.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// Off by default: a platform team turns it on. A request may still
    /// opt out with `x-tollgate-cache: off`.
    pub enabled: bool,
    /// How long a stored answer is served. Default 1 hour; a request may
    /// store its answer for another time with `x-tollgate-cache-ttl`.
    #[serde(deserialize_with = "duration")]
    pub ttl: Duration,
    /// The most the stored answers take, bytes (encoded rows, keys
    /// included); past it the least recently used go first. Default 256 MiB.
    pub max_bytes: u64,
    /// Whose answers a request may be served: `key` (the virtual key that
    /// asked, the default), `team` (any key of the same team) or `customer`.
    pub scope: CacheScope,
    /// The semantic cache.
    pub semantic: SemanticCacheConfig,
    /// Settings by target: the first whose `model` pattern matches the
    /// target's `provider/model` applies; a key's own settings and the
    /// request's headers go over it.
    pub routes: Vec<CacheRoute>,
}

/// `[cache.semantic]`: a question close enough to a cached one, in the
/// same partition, is answered from it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SemanticCacheConfig {
    /// Off by default (and nothing is loaded); needs `cache.enabled`.
    pub enabled: bool,
    /// The directory of the embedding model, as
    /// `scripts/cache/fetch-model.sh` writes it. A missing or unreadable
    /// model stops the node at start, naming the file.
    pub model: PathBuf,
    /// Instead of the local model, an embeddings model this gateway serves
    /// (`provider/model` or a route alias, as a client would name it at
    /// `/v1/embeddings`): each question is embedded by a request through
    /// the gateway itself, with the caller's key, priced and logged like
    /// any embeddings request. `model` is then not loaded.
    pub embedding_model: Option<String>,
    /// The similarity (0, 1] at or above which a cached answer is served;
    /// default [`crate::cache::DEFAULT_THRESHOLD`].
    pub threshold: f32,
}

impl Default for SemanticCacheConfig {
    fn default() -> Self {
        SemanticCacheConfig {
            enabled: false,
            model: PathBuf::from("/var/cache/tollgate/models/wordllama-l2_supercat_256"),
            embedding_model: None,
            threshold: crate::cache::DEFAULT_THRESHOLD,
        }
    }
}

/// `[[cache.routes]]`: cache settings for the targets a pattern matches.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheRoute {
    /// A `provider/model` pattern (`*` matches any run of characters).
    pub model: String,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub semantic: Option<bool>,
    #[serde(default)]
    pub threshold: Option<f32>,
}

impl CacheRoute {
    pub fn settings(&self) -> crate::governance::objects::CacheSettings {
        crate::governance::objects::CacheSettings {
            enabled: self.enabled,
            semantic: self.semantic,
            threshold: self.threshold,
        }
    }
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            enabled: false,
            ttl: Duration::from_secs(3600),
            max_bytes: 256 << 20,
            scope: CacheScope::Key,
            semantic: SemanticCacheConfig::default(),
            routes: Vec::new(),
        }
    }
}

/// The partition a cached answer is shared in. A key without a team (or
/// customer) falls back to the narrower scope it has: the key itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheScope {
    Key,
    Team,
    Customer,
}

/// The MCP gateway.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct McpConfig {
    /// `Host` header values (without port) `/mcp` accepts; requests naming
    /// another host get 403 (a guard against DNS rebinding). Default: loopback
    /// only (`localhost`, `127.0.0.1`, `::1`). Behind a load balancer, list
    /// the names clients use; `"*"` accepts any host.
    pub allowed_hosts: Vec<String>,
    /// How often each node pings each connected upstream server; a failed
    /// ping marks it disconnected and starts reconnecting.
    #[serde(deserialize_with = "duration")]
    pub ping_interval: Duration,
    /// How often each node lists every upstream server's tools again (besides
    /// on `notifications/tools/list_changed`).
    #[serde(deserialize_with = "duration")]
    pub tool_refresh_interval: Duration,
    /// Longest wait for an upstream to connect, list its tools or answer a call.
    #[serde(deserialize_with = "duration")]
    pub call_timeout: Duration,
    /// First reconnect delay after a failure; doubled per failure up to `backoff_max`.
    #[serde(deserialize_with = "duration")]
    pub backoff_base: Duration,
    #[serde(deserialize_with = "duration")]
    pub backoff_max: Duration,
    /// How long a `/mcp` session id stays valid after `initialize`.
    #[serde(deserialize_with = "duration")]
    pub session_ttl: Duration,
    /// The `ttlMs` of 2026-07-28 list results (tools, resources, templates,
    /// prompts): how long a client may reuse one before listing again.
    #[serde(deserialize_with = "duration")]
    pub list_ttl: Duration,
    /// Agent mode: most rounds of tool execution the gateway runs for one
    /// chat completion before it hands the tool calls to the client.
    pub agent_max_depth: u32,
    /// Code Mode: how stubs are laid out, and the limits of every script.
    pub code_mode: CodeModeConfig,
    /// Run stdio servers (a command on every node) registered through the
    /// admin API. Default false: an admin token alone cannot run programs
    /// on the nodes; a node with it off refuses such registrations (400) and
    /// does not start them when they replicate from a peer.
    pub allow_stdio: bool,
    /// `env.VAR` references in MCP servers written through the admin API must
    /// name variables that start with this, so that a registered server
    /// cannot be handed the node's other secrets (its provider keys).
    /// Default `MCP_`; empty allows any variable.
    pub env_prefix: String,
    /// Open `GET /mcp` event streams on this node at most; more get 429.
    pub max_streams: usize,
    /// Open `GET /mcp` event streams per virtual key at most.
    pub max_streams_per_key: usize,
    /// The gateway's address as browsers and authorization servers reach
    /// it (`https://gateway.example.com`, the load balancer's): OAuth
    /// redirect URIs and the client ID metadata document are under it.
    /// Empty: `http://` this node's `server.listen` (one node, or tests).
    pub public_url: String,
    /// Per-user OAuth servers: a header naming the end user of a virtual
    /// key (`x-tollgate-user`, say); each named user then authorises for
    /// themselves. Empty: every key is one user.
    pub user_header: String,
}

/// `[mcp.code_mode]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CodeModeConfig {
    /// `server`: one stub file per server (`servers/<name>.pyi`); `tool`:
    /// one per tool (`servers/<name>/<tool>.pyi`). The same on every node.
    pub binding: CodeModeBinding,
    /// Starlark evaluation steps per script.
    pub max_steps: u64,
    /// Starlark heap per script, bytes.
    pub max_heap_bytes: usize,
    pub max_call_depth: usize,
    pub max_tool_calls: usize,
    /// `print` output plus `result`, bytes.
    pub max_output_bytes: usize,
    /// Wall-clock time per script; its worker is killed when it runs out.
    #[serde(deserialize_with = "duration")]
    pub wall_time: Duration,
    /// Address space of a script's worker process, bytes (virtual memory:
    /// the allocator reserves far more than it uses, so keep it ≥ 1 GiB).
    pub memory_bytes: u64,
    /// Resident memory of a script's worker, bytes, enforced by a cgroup of
    /// its own where the node can make one (docs/mcp.md).
    pub resident_bytes: u64,
    /// Scripts running at once on this node; more are refused at once.
    pub max_workers: usize,
    /// Scripts running at once for one virtual key.
    pub max_workers_per_key: usize,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CodeModeBinding {
    #[default]
    Server,
    Tool,
}

impl Default for CodeModeConfig {
    fn default() -> Self {
        let l = crate::codemode::sandbox::Limits::default();
        CodeModeConfig {
            binding: CodeModeBinding::Server,
            max_steps: l.max_steps,
            max_heap_bytes: l.max_heap_bytes,
            max_call_depth: l.max_call_depth,
            max_tool_calls: l.max_tool_calls,
            max_output_bytes: l.max_output_bytes,
            wall_time: Duration::from_millis(l.wall_ms),
            memory_bytes: l.memory_bytes,
            resident_bytes: l.resident_bytes,
            max_workers: 8,
            max_workers_per_key: 2,
        }
    }
}

impl CodeModeConfig {
    pub fn limits(&self) -> crate::codemode::sandbox::Limits {
        crate::codemode::sandbox::Limits {
            max_steps: self.max_steps,
            max_heap_bytes: self.max_heap_bytes,
            max_call_depth: self.max_call_depth,
            max_tool_calls: self.max_tool_calls,
            max_output_bytes: self.max_output_bytes,
            wall_ms: self.wall_time.as_millis() as u64,
            memory_bytes: self.memory_bytes,
            resident_bytes: self.resident_bytes,
        }
    }
}

impl Default for McpConfig {
    fn default() -> Self {
        McpConfig {
            allowed_hosts: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
            ping_interval: Duration::from_secs(15),
            tool_refresh_interval: Duration::from_secs(300),
            call_timeout: Duration::from_secs(60),
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            session_ttl: Duration::from_secs(24 * 3600),
            list_ttl: Duration::from_secs(60),
            agent_max_depth: 5,
            code_mode: CodeModeConfig::default(),
            allow_stdio: false,
            env_prefix: "MCP_".into(),
            max_streams: 1024,
            max_streams_per_key: 4,
            public_url: String::new(),
            user_header: String::new(),
        }
    }
}

/// How the proxy treats its callers.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientConfig {
    /// Refuse (401) requests without a valid virtual key. Off by default for a
    /// single developer; a presented `sk-tg-...` key is checked either way.
    pub enforce_auth: bool,
    /// With `enforce_auth` off, serve requests without a virtual key on the
    /// operator's provider keys even when `server.listen` is not a loopback
    /// address — anyone who reaches the port spends on those keys. Off: such
    /// a node refuses to start while a configured provider has keys, and
    /// refuses (401) keyless requests to providers with keys added later.
    pub allow_unauthenticated: bool,
}

/// Why a secret setting is too weak to protect anything.
fn weak(value: &str, min_len: usize, min_distinct: usize) -> Option<String> {
    if value.trim().is_empty() {
        return Some("is empty (an unset or empty environment variable?)".into());
    }
    let distinct = value
        .bytes()
        .collect::<std::collections::HashSet<_>>()
        .len();
    if value.len() < min_len || distinct < min_distinct {
        return Some(format!(
            "is too weak: use at least {min_len} characters with {min_distinct} or more distinct \
             ones, e.g. the output of `openssl rand -base64 32`"
        ));
    }
    None
}

/// One upstream provider. Also the body of `PUT /api/providers/{name}`, and
/// stored as written (secrets as `env.VAR` references or literals).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProviderConfig {
    /// Preset: decides the default base URL, auth header and catalog. Defaults to
    /// the provider's name when that names a preset.
    pub kind: Option<ProviderKind>,
    /// Base URL of the API, up to and including its version segment
    /// (`https://api.openai.com/v1`). For Azure: the resource endpoint
    /// (`https://NAME.openai.azure.com`).
    pub base_url: Option<String>,
    /// Shorthand for a single key with weight 1 and no model restriction.
    pub api_key: Option<Secret>,
    pub keys: Vec<KeyConfig>,
    /// Models this provider serves, for bare-name resolution and `/v1/models`.
    /// Defaults to the preset's catalog. `provider/model` reaches any model
    /// whether listed or not.
    pub models: Option<Vec<String>>,
    /// Extra headers sent upstream on every request (values may be `env.VAR`).
    pub headers: IndexMap<String, Secret>,
    /// Whether the upstream honours `stream_options.include_usage` (default:
    /// the preset's). When it does not, streamed tokens are counted by the gateway.
    pub stream_usage: Option<bool>,
    /// OpenAI-format upstreams: models (patterns with `*`) that take
    /// `reasoning_effort`, to which thinking requests from other formats are
    /// mapped (default: the preset's list). Others get the request without it.
    pub reasoning_models: Option<Vec<String>>,
    /// Azure OpenAI: `api-version` query parameter.
    pub api_version: Option<String>,
    /// Azure OpenAI: model name → deployment name (default: the model name).
    pub deployments: IndexMap<String, String>,
    /// Overrides of `[upstream]` for this provider.
    #[serde(deserialize_with = "opt_duration", serialize_with = "ser_opt_duration")]
    pub connect_timeout: Option<Duration>,
    #[serde(deserialize_with = "opt_duration", serialize_with = "ser_opt_duration")]
    pub first_byte_timeout: Option<Duration>,
    #[serde(deserialize_with = "opt_duration", serialize_with = "ser_opt_duration")]
    pub idle_timeout: Option<Duration>,
    pub max_retries: Option<u32>,
    /// Bedrock: the AWS region of keys that name none (default: `AWS_REGION`,
    /// then `AWS_DEFAULT_REGION`, then `us-east-1`); `{region}` in the base
    /// URL is replaced by each key's. Vertex: the location (default
    /// `us-central1`; `global` for the global endpoint), `{location}` in
    /// the base URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Vertex: the Google Cloud project of keys that name none (default: the
    /// service account's, then `GOOGLE_CLOUD_PROJECT`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
}

/// One API key of a provider.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// Name shown in logs and metrics; the secret never is. Default `key-N`.
    pub name: Option<String>,
    pub secret: Secret,
    /// Relative share of traffic among the keys that may serve a model.
    #[serde(default = "one")]
    pub weight: u32,
    /// Model patterns this key may serve (`*` matches any run of characters).
    /// Empty: every model.
    #[serde(default)]
    pub models: Vec<String>,
    /// Bedrock: with an access key id, `secret` is its secret access key and
    /// requests are signed (SigV4); without, `secret` is a Bedrock API key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    /// Bedrock: the session token of temporary credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_token: Option<Secret>,
    /// Bedrock: this key's AWS region; Vertex: its location (default: the
    /// provider's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Vertex: this key's project (default: the provider's). Its `secret`
    /// is a service account key file's JSON, or an access token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
}

fn one() -> u32 {
    1
}

impl KeyConfig {
    /// A key named `name` with `secret`, weight 1, every model, nothing else set.
    pub fn new(name: &str, secret: Secret) -> KeyConfig {
        KeyConfig {
            name: Some(name.into()),
            secret,
            weight: 1,
            models: Vec::new(),
            access_key_id: None,
            session_token: None,
            region: None,
            project: None,
        }
    }
}

impl Config {
    /// Defaults, then the file (if any), then `TOLLGATE_*` overrides, then
    /// providers found in the environment when none are configured; validated.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let text = match path {
            Some(p) => std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                path: p.to_path_buf(),
                source,
            })?,
            None => String::new(),
        };
        let vars: Vec<(String, String)> = std::env::vars().collect();
        Self::from_parts(&text, &vars)
    }

    /// [`Config::load`] with the file text and environment given explicitly (tests).
    pub fn from_parts(text: &str, vars: &[(String, String)]) -> Result<Config, ConfigError> {
        let mut doc: toml::Table = toml::from_str(text)?;
        overrides::apply(&mut doc, vars)?;
        overrides::cluster_shorthands(&mut doc, vars)?;
        let mut config: Config = Config::deserialize(toml::Value::Table(doc))?;
        config.otel.apply_env(vars)?;
        config.resolve_secrets(vars)?;
        if config.providers.is_empty() {
            config.providers = providers_from_env(vars);
        }
        config.validate()?;
        Ok(config)
    }

    fn resolve_secrets(&mut self, vars: &[(String, String)]) -> Result<(), ConfigError> {
        let unset = |field: String| {
            move |var: String| invalid(field, format!("environment variable {var} is not set"))
        };
        if let Some(t) = &mut self.server.admin_token {
            t.resolve(vars)
                .map_err(unset("server.admin_token".into()))?;
        }
        if let Some(t) = &mut self.server.metrics_token {
            t.resolve(vars)
                .map_err(unset("server.metrics_token".into()))?;
        }
        if let Some(t) = &mut self.cluster.secret {
            t.resolve(vars).map_err(unset("cluster.secret".into()))?;
        }
        for (h, v) in &mut self.otel.headers {
            v.resolve(vars)
                .map_err(unset(format!("otel.headers.{h}")))?;
        }
        for (name, p) in &mut self.providers {
            if let Some(k) = &mut p.api_key {
                k.resolve(vars)
                    .map_err(unset(format!("providers.{name}.api_key")))?;
            }
            for (i, k) in p.keys.iter_mut().enumerate() {
                k.secret
                    .resolve(vars)
                    .map_err(unset(format!("providers.{name}.keys[{i}].secret")))?;
                if let Some(t) = &mut k.session_token {
                    t.resolve(vars)
                        .map_err(unset(format!("providers.{name}.keys[{i}].session_token")))?;
                }
            }
            for (h, v) in &mut p.headers {
                v.resolve(vars)
                    .map_err(unset(format!("providers.{name}.headers.{h}")))?;
            }
        }
        Ok(())
    }

    /// Whether keyless callers from beyond this machine would be served on
    /// provider keys the operator did not explicitly open up.
    pub fn relays_for_anyone(&self) -> bool {
        !self.client.enforce_auth
            && !self.client.allow_unauthenticated
            && !self.server.listen.ip().is_loopback()
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.server.max_body_bytes == 0 {
            return Err(invalid("server.max_body_bytes", "must be positive"));
        }
        self.otel.validate()?;
        if self.metrics.max_series == 0 {
            return Err(invalid("metrics.max_series", "must be positive"));
        }
        if self.server.max_in_flight == 0 {
            return Err(invalid("server.max_in_flight", "must be positive"));
        }
        if self.server.max_connections == 0 {
            return Err(invalid("server.max_connections", "must be positive"));
        }
        if self.server.header_read_timeout.is_zero() {
            return Err(invalid("server.header_read_timeout", "must be positive"));
        }
        if self.server.body_read_timeout.is_zero() {
            return Err(invalid("server.body_read_timeout", "must be positive"));
        }
        if self.server.session_ttl < Duration::from_secs(60)
            || self.server.session_ttl > Duration::from_secs(30 * 86_400)
        {
            return Err(invalid("server.session_ttl", "must be between 1m and 30d"));
        }
        if self.server.spend_sync_interval > Duration::from_secs(1) {
            return Err(invalid("server.spend_sync_interval", "must be at most 1s"));
        }
        let u = &self.upstream;
        durations(
            &[
                ("upstream.connect_timeout", u.connect_timeout),
                ("upstream.first_byte_timeout", u.first_byte_timeout),
                ("upstream.idle_timeout", u.idle_timeout),
            ],
            ("upstream", u.backoff_base, u.backoff_max),
        )?;
        let m = &self.mcp;
        durations(
            &[
                ("mcp.ping_interval", m.ping_interval),
                ("mcp.tool_refresh_interval", m.tool_refresh_interval),
                ("mcp.call_timeout", m.call_timeout),
                ("mcp.backoff_base", m.backoff_base),
                ("mcp.session_ttl", m.session_ttl),
                ("mcp.code_mode.wall_time", m.code_mode.wall_time),
            ],
            ("mcp", m.backoff_base, m.backoff_max),
        )?;
        let cm = &m.code_mode;
        for (name, value) in [
            ("mcp.code_mode.max_steps", cm.max_steps),
            ("mcp.code_mode.max_heap_bytes", cm.max_heap_bytes as u64),
            ("mcp.code_mode.max_call_depth", cm.max_call_depth as u64),
            ("mcp.code_mode.max_output_bytes", cm.max_output_bytes as u64),
            ("mcp.code_mode.max_workers", cm.max_workers as u64),
            ("mcp.max_streams", m.max_streams as u64),
            ("mcp.max_streams_per_key", m.max_streams_per_key as u64),
            (
                "mcp.code_mode.max_workers_per_key",
                cm.max_workers_per_key as u64,
            ),
        ] {
            if value == 0 {
                return Err(invalid(name, "must be positive"));
            }
        }
        if cm.memory_bytes < 256 << 20 {
            return Err(invalid(
                "mcp.code_mode.memory_bytes",
                "must be at least 256 MiB (it limits virtual memory, which the allocator reserves generously)",
            ));
        }
        if self.cache.ttl.is_zero() {
            return Err(invalid("cache.ttl", "must be positive"));
        }
        if self.cache.max_bytes == 0 {
            return Err(invalid("cache.max_bytes", "must be positive"));
        }
        let t = self.cache.semantic.threshold;
        if !crate::cache::valid_threshold(t) {
            return Err(invalid(
                "cache.semantic.threshold",
                format!("{t} is not in (0, 1]"),
            ));
        }
        if self.cache.semantic.enabled && !self.cache.enabled {
            return Err(invalid(
                "cache.semantic.enabled",
                "needs cache.enabled = true (the semantic cache serves answers the cache stores)",
            ));
        }
        if let Some(m) = &self.cache.semantic.embedding_model
            && (m.trim().is_empty() || m.len() > 256)
        {
            return Err(invalid(
                "cache.semantic.embedding_model",
                "must name a model (provider/model), at most 256 bytes",
            ));
        }
        for (i, r) in self.cache.routes.iter().enumerate() {
            if r.model.trim().is_empty() {
                return Err(invalid(
                    format!("cache.routes[{i}].model"),
                    "must not be empty",
                ));
            }
            if let Some(why) = r.settings().problem() {
                return Err(invalid(format!("cache.routes[{i}].threshold"), why));
            }
        }
        for (name, p) in &self.providers {
            p.validate(name)?;
        }
        if let Some(t) = &self.server.admin_token
            && let Some(why) = weak(t.expose(), 20, 8)
        {
            return Err(invalid("server.admin_token", why));
        }
        if let Some(t) = &self.server.metrics_token
            && let Some(why) = weak(t.expose(), 20, 8)
        {
            return Err(invalid("server.metrics_token", why));
        }
        let c = &self.cluster;
        if let Some(s) = &c.secret
            && let Some(why) = weak(s.expose(), 32, 10)
        {
            return Err(invalid("cluster.secret", why));
        }
        if self.relays_for_anyone()
            && let Some(name) = self
                .providers
                .iter()
                .find_map(|(n, p)| (!p.all_keys().is_empty()).then_some(n))
        {
            return Err(invalid(
                "client.enforce_auth",
                format!(
                    "server.listen {} is not a loopback address and provider '{name}' has keys: \
                     anyone reaching the port could spend on them. Set client.enforce_auth = true \
                     (virtual keys required), listen on 127.0.0.1, or set \
                     client.allow_unauthenticated = true to accept that",
                    self.server.listen
                ),
            ));
        }
        if c.secret.is_none() && !c.seeds.is_empty() {
            return Err(invalid(
                "cluster.seeds",
                "joining a cluster needs cluster.secret (or TOLLGATE_CLUSTER_SECRET)",
            ));
        }
        if c.sync_interval.is_zero() {
            return Err(invalid("cluster.sync_interval", "must be positive"));
        }
        if c.sync_page_items == 0 {
            return Err(invalid("cluster.sync_page_items", "must be positive"));
        }
        if c.sync_reply_bytes == 0 || c.sync_reply_bytes > crate::cluster::proto::MAX_FRAME / 4 {
            return Err(invalid(
                "cluster.sync_reply_bytes",
                format!(
                    "must be between 1 and {} (a quarter of the frame limit)",
                    crate::cluster::proto::MAX_FRAME / 4
                ),
            ));
        }
        if c.secret.is_some() && c.advertise.is_none() && c.listen.ip().is_unspecified() {
            return Err(invalid(
                "cluster.advertise",
                "required when cluster.listen is a wildcard address: peers need an address to reach this node",
            ));
        }
        Ok(())
    }
}

impl ProviderConfig {
    /// Fills `env.VAR` secrets from `vars`; names the first unset variable.
    pub fn resolve_secrets(&mut self, vars: &[(String, String)]) -> Result<(), String> {
        if let Some(k) = &mut self.api_key {
            k.resolve(vars)?;
        }
        for k in &mut self.keys {
            k.secret.resolve(vars)?;
        }
        for (_, v) in &mut self.headers {
            v.resolve(vars)?;
        }
        Ok(())
    }

    /// Checks this provider as `[providers.<name>]` would be checked.
    pub fn check(&self, name: &str) -> Result<(), ConfigError> {
        self.validate(name)
    }

    /// The preset this provider follows.
    pub fn resolved_kind(&self, name: &str) -> Option<ProviderKind> {
        self.kind.or_else(|| ProviderKind::from_name(name))
    }

    /// All keys, the `api_key` shorthand first.
    pub fn all_keys(&self) -> Vec<KeyConfig> {
        let mut keys = Vec::with_capacity(self.keys.len() + 1);
        if let Some(secret) = &self.api_key {
            keys.push(KeyConfig::new("default", secret.clone()));
        }
        keys.extend(self.keys.iter().cloned());
        keys
    }

    fn validate(&self, name: &str) -> Result<(), ConfigError> {
        let field = |f: &str| format!("providers.{name}.{f}");
        if name.is_empty() || name.contains('/') || name.chars().any(char::is_whitespace) {
            return Err(invalid(
                format!("providers.{name:?}"),
                "a provider name must be non-empty, without '/' or spaces",
            ));
        }
        let Some(kind) = self.resolved_kind(name) else {
            return Err(invalid(
                field("kind"),
                format!(
                    "required: '{name}' is not a preset name (presets: {})",
                    presets::names().join(", ")
                ),
            ));
        };
        let preset = kind.preset();
        let base = self.base_url.as_deref().or(preset.base_url).map(|b| {
            b.replace("{region}", "us-east-1")
                .replace("{location}", "us-central1")
        });
        match base.as_deref() {
            None => return Err(invalid(field("base_url"), "required for this kind")),
            Some(b) => {
                let uri: http::Uri = b
                    .parse()
                    .map_err(|e| invalid(field("base_url"), format!("{b:?}: {e}")))?;
                if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
                    return Err(invalid(
                        field("base_url"),
                        format!("{b:?} is not an http(s) URL"),
                    ));
                }
                if uri.query().is_some() {
                    return Err(invalid(field("base_url"), "must not carry a query"));
                }
            }
        }
        let keys = self.all_keys();
        if keys.is_empty() && preset.needs_key {
            return Err(invalid(
                field("keys"),
                "this provider needs at least one key (api_key or [[keys]])",
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, k) in keys.iter().enumerate() {
            if k.weight == 0 {
                return Err(invalid(
                    field(&format!("keys[{i}].weight")),
                    "must be positive",
                ));
            }
            if let Some(n) = &k.name
                && !seen.insert(n.clone())
            {
                return Err(invalid(
                    field(&format!("keys[{i}].name")),
                    "duplicate key name",
                ));
            }
            for m in &k.models {
                if m.is_empty() {
                    return Err(invalid(
                        field(&format!("keys[{i}].models")),
                        "empty model pattern",
                    ));
                }
            }
        }
        let regions = std::iter::once(("region".to_string(), &self.region)).chain(
            keys.iter()
                .enumerate()
                .map(|(i, k)| (format!("keys[{i}].region"), &k.region)),
        );
        for (f, region) in regions {
            if let Some(r) = region
                && (r.is_empty()
                    || !r
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'))
            {
                return Err(invalid(
                    field(&f),
                    format!("{r:?} is not an AWS region (like us-east-1)"),
                ));
            }
        }
        if kind == ProviderKind::Vertex {
            for (i, k) in keys.iter().enumerate() {
                if k.secret.expose().trim_start().starts_with('{') {
                    let sa = crate::providers::vertex::ServiceAccount::parse(k.secret.expose())
                        .and_then(|sa| {
                            crate::providers::vertex::assertion(&sa, "check", 0).map(|_| sa)
                        })
                        .map_err(|e| invalid(field(&format!("keys[{i}].secret")), e.to_string()))?;
                    let _ = sa;
                }
            }
        }
        if kind == ProviderKind::Azure && self.api_version.is_none() {
            return Err(invalid(field("api_version"), "required for Azure OpenAI"));
        }
        for (h, _) in &self.headers {
            http::HeaderName::from_bytes(h.as_bytes())
                .map_err(|_| invalid(field("headers"), format!("{h:?} is not a header name")))?;
        }
        for (label, d) in [
            ("connect_timeout", self.connect_timeout),
            ("first_byte_timeout", self.first_byte_timeout),
            ("idle_timeout", self.idle_timeout),
        ] {
            if d.is_some_and(|d| d.is_zero()) {
                return Err(invalid(field(label), "must be positive"));
            }
        }
        Ok(())
    }
}

/// With no providers configured, every preset whose key variable is set
/// (`OPENAI_API_KEY`, `GROQ_API_KEY`, ...) becomes a provider named after it.
fn providers_from_env(vars: &[(String, String)]) -> IndexMap<String, ProviderConfig> {
    let get = |name: &str| {
        vars.iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.clone())
    };
    let mut out = IndexMap::new();
    for kind in ProviderKind::ALL {
        let preset = kind.preset();
        let Some(var) = preset.key_env else { continue };
        let Some(secret) = get(var) else { continue };
        let mut p = ProviderConfig {
            kind: Some(*kind),
            api_key: Some(Secret::new(secret)),
            ..Default::default()
        };
        if *kind == ProviderKind::Azure {
            // Azure needs its endpoint and API version besides the key.
            let (Some(endpoint), Some(version)) =
                (get("AZURE_OPENAI_ENDPOINT"), get("OPENAI_API_VERSION"))
            else {
                continue;
            };
            p.base_url = Some(endpoint);
            p.api_version = Some(version);
        }
        if *kind == ProviderKind::Databricks {
            // The workspace, as the Databricks SDKs and CLI read it.
            let Some(host) = get("DATABRICKS_HOST") else {
                continue;
            };
            let host = host.trim_end_matches('/');
            let scheme = if host.contains("://") { "" } else { "https://" };
            p.base_url = Some(format!("{scheme}{host}/serving-endpoints"));
        }
        out.insert(preset.name.to_string(), p);
    }
    out
}

/// `"30s"`, `"1500ms"`, `"2m"`: durations in config are humantime strings.
fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    humantime::parse_duration(&s).map_err(serde::de::Error::custom)
}

fn ser_opt_duration<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_str(&humantime::format_duration(*d).to_string()),
        None => s.serialize_none(),
    }
}

fn opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let s: Option<String> = Option::deserialize(d)?;
    s.map(|s| humantime::parse_duration(&s).map_err(serde::de::Error::custom))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn empty_config_gives_defaults() {
        let c = Config::from_parts("", &[]).unwrap();
        assert_eq!(c.server.listen.port(), 8080);
        assert_eq!(c.server.data_dir, PathBuf::from("./data"));
        assert!(c.providers.is_empty());
    }

    #[test]
    fn anti_entropy_page_sizes_are_bounded() {
        let c = Config::from_parts("[cluster]\nsync_page_items = 8\n", &[]).unwrap();
        assert_eq!(c.cluster.sync_page_items, 8);
        assert_eq!(
            c.cluster.sync_reply_bytes,
            crate::cluster::sync::REPLY_BYTES
        );
        for text in [
            "[cluster]\nsync_page_items = 0\n",
            "[cluster]\nsync_reply_bytes = 0\n",
            "[cluster]\nsync_reply_bytes = 20000000\n",
        ] {
            let err = Config::from_parts(text, &[]).unwrap_err();
            assert!(
                matches!(&err, ConfigError::Invalid { field, .. } if field.starts_with("cluster.sync_")),
                "{text}: {err}"
            );
        }
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let err = Config::from_parts("[server]\nlisten_addr = \"0.0.0.0:1\"\n", &[]).unwrap_err();
        assert!(err.to_string().contains("listen_addr"), "{err}");
        let err = Config::from_parts("[providers.openai]\napi_key = \"x\"\nmax_retrys = 3\n", &[])
            .unwrap_err();
        assert!(err.to_string().contains("max_retrys"), "{err}");
    }

    #[test]
    fn env_secrets_resolve_and_missing_ones_fail() {
        let text = "[providers.groq]\napi_key = \"env.MY_GROQ\"\n";
        let c = Config::from_parts(text, &vars(&[("MY_GROQ", "gsk-1")])).unwrap();
        assert_eq!(
            c.providers["groq"].api_key.as_ref().unwrap().expose(),
            "gsk-1"
        );
        let err = Config::from_parts(text, &[]).unwrap_err();
        assert!(err.to_string().contains("MY_GROQ"), "{err}");
    }

    #[test]
    fn env_overrides_win_over_file() {
        let c = Config::from_parts(
            "[server]\nlisten = \"127.0.0.1:1000\"\n",
            &vars(&[
                ("TOLLGATE_SERVER__LISTEN", "127.0.0.1:2000"),
                ("TOLLGATE_UPSTREAM__MAX_RETRIES", "5"),
            ]),
        )
        .unwrap();
        assert_eq!(c.server.listen.port(), 2000);
        assert_eq!(c.upstream.max_retries, 5);
    }

    #[test]
    fn providers_come_from_env_only_without_config() {
        let env = vars(&[("OPENAI_API_KEY", "sk-a"), ("GROQ_API_KEY", "gsk-b")]);
        let c = Config::from_parts("", &env).unwrap();
        assert_eq!(c.providers.keys().collect::<Vec<_>>(), ["openai", "groq"]);
        let c = Config::from_parts("[providers.mock]\n", &env).unwrap();
        assert_eq!(c.providers.keys().collect::<Vec<_>>(), ["mock"]);
    }

    #[test]
    fn new_presets_register_from_their_documented_variables() {
        let env = vars(&[
            ("HF_TOKEN", "hf_a"),
            ("DASHSCOPE_API_KEY", "sk-b"),
            ("ZHIPUAI_API_KEY", "c"),
            // Databricks needs its workspace besides the token.
            ("DATABRICKS_TOKEN", "dapi-d"),
        ]);
        let c = Config::from_parts("", &env).unwrap();
        assert_eq!(
            c.providers.keys().collect::<Vec<_>>(),
            ["huggingface", "dashscope", "zhipu"]
        );
        let mut env = env;
        env.push((
            "DATABRICKS_HOST".into(),
            "adb-1.azuredatabricks.net/".into(),
        ));
        let c = Config::from_parts("", &env).unwrap();
        assert_eq!(
            c.providers["databricks"].base_url.as_deref(),
            Some("https://adb-1.azuredatabricks.net/serving-endpoints")
        );
    }

    #[test]
    fn validation_names_the_field() {
        for (text, needle) in [
            ("[mcp]\nping_interval = \"0s\"\n", "mcp.ping_interval"),
            (
                "[mcp]\nbackoff_base = \"1m\"\nbackoff_max = \"1s\"\n",
                "mcp.backoff_base",
            ),
            (
                "[upstream]\nbackoff_base = \"3s\"\n",
                "upstream.backoff_base",
            ),
            (
                "[providers.custom]\nbase_url = \"http://x\"\n",
                "providers.custom.kind",
            ),
            ("[providers.openai]\n", "providers.openai.keys"),
            (
                "[providers.x]\nkind = \"openai_compatible\"\nbase_url = \"ftp://x\"\n",
                "base_url",
            ),
            (
                "[providers.mock]\n[[providers.mock.keys]]\nsecret = \"a\"\nweight = 0\n",
                "weight",
            ),
            (
                "[providers.az]\nkind = \"azure\"\nbase_url = \"https://r.openai.azure.com\"\napi_key = \"k\"\n",
                "api_version",
            ),
            ("[upstream]\nconnect_timeout = \"0s\"\n", "connect_timeout"),
            (
                "[upstream]\nconnect_timeout = \"soon\"\n",
                "connect_timeout",
            ),
        ] {
            let err = Config::from_parts(text, &[]).unwrap_err().to_string();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }

    #[test]
    fn keys_combine_shorthand_and_list() {
        let c = Config::from_parts(
            "[providers.openai]\napi_key = \"a\"\n[[providers.openai.keys]]\nname = \"b\"\nsecret = \"b\"\nweight = 3\nmodels = [\"gpt-4o*\"]\n",
            &[],
        )
        .unwrap();
        let keys = c.providers["openai"].all_keys();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[1].weight, 3);
    }
}
