//! A running node: opens the store, builds the gateway, serves HTTP, and shuts
//! down in order (stop being ready, drain, flush).
//!
//! Background tasks are spawned only through [`Tasks`] (`crate::tasks`),
//! which tracks them and cancels them on shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderValue, StatusCode, header};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

mod serve;

use crate::admin::{self, AdminState};
use crate::cache::Embeddings;
use crate::cache::embed::Embedder;
use crate::cache::store::{CacheStore, Model};
use crate::cluster::Cluster;
use crate::codemode::meta::CodeMode;
use crate::config::{Config, Secret};
use crate::governance::{Governance, collect};
use crate::mcp::agent::{self, AgentState};
use crate::mcp::server::McpState;
use crate::mcp::session::Sealer;
use crate::mcp::upstream::Upstreams;
use crate::observability::metrics::Metrics;
use crate::observability::request_log::RequestLogs;
use crate::observability::tool_log::ToolLogs;
use crate::proxy::{self, Gateway};
use crate::state::hlc::{Clock, SystemClock};
use crate::store::{Store, StoreError};
use crate::tasks::Tasks;

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot open the store: {0}")]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("server failed: {0}")]
    Serve(std::io::Error),
    #[error("cache.semantic is on but its embedding model cannot be loaded: {0}")]
    EmbeddingModel(#[from] crate::cache::embed::EmbedError),
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterError),
    #[error("cannot start the cache's indexing thread: {0}")]
    Thread(std::io::Error),
    #[error("cannot make the HTTP client of MCP OAuth: {0}")]
    Http(String),
    #[error("cannot find this program's own executable (Code Mode runs it): {0}")]
    Executable(std::io::Error),
    #[error(
        "the data directory {path} was last used {days} days ago, longer than deleted objects are remembered ({ttl_days} days): \
         joining the cluster with it could bring deleted keys back; start this node with an empty data directory"
    )]
    StaleData {
        path: String,
        days: u64,
        ttl_days: u64,
    },
}

#[derive(Clone)]
struct OpsState {
    metrics: Arc<Metrics>,
    health: Arc<crate::health::HealthBook>,
    ready: Arc<AtomicBool>,
    governance: Arc<Governance>,
    store: Store,
    cache: Arc<CacheStore>,
    /// `server.metrics_token`: required by `/metrics` when set.
    metrics_token: Option<Secret>,
}

/// Runs a node until `shutdown` resolves, then drains and stops. `on_bound`
/// learns the actual listen address (useful with port 0).
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_bound: impl FnOnce(SocketAddr),
) -> Result<(), NodeError> {
    let data_dir = &config.server.data_dir;
    crate::config::private_dir(data_dir).map_err(|source| NodeError::DataDir {
        path: data_dir.display().to_string(),
        source,
    })?;
    let store = Store::open(&data_dir.join("db"))?;
    let metrics = Arc::new(Metrics::with(
        crate::observability::metrics::usage::Settings {
            per_key: config.metrics.per_key,
            max_series: config.metrics.max_series,
        },
    ));
    let tasks = Tasks::default();

    let (logs, writer) = RequestLogs::new(store.clone(), metrics.clone());
    tasks.spawn(|cancel| writer.run(cancel));
    let (tool_logs, tool_writer) = ToolLogs::new(store.clone(), metrics.clone());
    tasks.spawn(|cancel| tool_writer.run(cancel));
    let retention = config.logs.retention;
    let max_bytes = config.logs.max_bytes;
    let pruner = logs.clone();
    let tool_pruner = tool_logs.clone();
    tasks.spawn(move |cancel| async move {
        // Sizes are checked often (two property reads), retention rarely.
        let mut every = tokio::time::interval(Duration::from_secs(15));
        let mut ticks = 0u64;
        loop {
            tokio::select! {
                _ = every.tick() => {
                    let l = pruner.clone();
                    let t = tool_pruner.clone();
                    let by_age = ticks.is_multiple_of(40);
                    ticks += 1;
                    let done = tokio::task::spawn_blocking(move || {
                        if by_age {
                            l.prune(retention)?;
                            t.prune(retention)?;
                        }
                        l.bound_size(max_bytes)?;
                        t.bound_size(max_bytes).map(|_| ())
                    })
                    .await;
                    if let Ok(Err(e)) = done {
                        tracing::warn!(error = %e, "pruning request logs failed");
                    }
                }
                _ = cancel.cancelled() => break,
            }
        }
    });

    let admin_token = match &config.server.admin_token {
        Some(t) => t.clone(),
        None => generated_admin_token(data_dir)?,
    };
    let last_used = collect::last_in_use(&store)?;
    let now = SystemClock.now_ms();
    if config.cluster.secret.is_some() && collect::too_stale_to_join(last_used, now) {
        return Err(NodeError::StaleData {
            path: data_dir.display().to_string(),
            days: (now - last_used.unwrap_or(now)) / 86_400_000,
            ttl_days: collect::TOMBSTONE_TTL_MS / 86_400_000,
        });
    }
    collect::mark_in_use(&store, now)?;
    let governance = Arc::new(Governance::open(
        store.clone(),
        Arc::new(SystemClock),
        &config,
    )?);
    tasks.spawn({
        let (store, governance) = (store.clone(), governance.clone());
        move |cancel| collect_old_state(store, governance, cancel)
    });
    tasks.spawn({
        let (store, governance) = (store.clone(), governance.clone());
        move |cancel| watch_disk(store, governance, cancel)
    });
    let semantic = &config.cache.semantic;
    let embeddings = match (semantic.enabled, &semantic.embedding_model) {
        (false, _) => None,
        (true, Some(model)) => {
            tracing::info!(%model, "semantic cache embeds through this gateway");
            Some(Embeddings::Served {
                model: model.clone(),
            })
        }
        (true, None) => {
            let e = Embedder::load(&semantic.model)?;
            tracing::info!(model = %semantic.model.display(), dims = e.dim(), "semantic cache model loaded");
            Some(Embeddings::Local(Arc::new(e)))
        }
    };
    let cache = Arc::new(CacheStore::open(
        store.clone(),
        config.cache.max_bytes,
        SystemClock.now_ms(),
        embeddings.as_ref().map(|e| Model {
            fingerprint: e.fingerprint(),
            dims: e.dims(),
        }),
    )?);
    // The stored questions' index is built beside the node, not before it
    // is ready: until then those answers hit exactly only.
    let indexing = cache.clone();
    std::thread::Builder::new()
        .name("cache-index".into())
        .spawn(move || indexing.index_stored_questions())
        .map_err(NodeError::Thread)?;
    let tracer = crate::observability::otel::Tracer::exporting(
        &config.otel,
        &governance.node().to_string(),
        metrics.otel_counters(),
    );
    let gateway = Arc::new(Gateway::new(
        &config,
        metrics.clone(),
        logs.clone(),
        governance.clone(),
        cache.clone(),
        embeddings,
        tracer.clone(),
    ));
    for p in gateway.routes().catalog.providers() {
        tracing::info!(provider = %p.name, kind = ?p.kind, base_url = %p.base_url, keys = p.keys.len(), "provider registered");
    }
    let warnings = admin::Warnings {
        providers: {
            let gateway = gateway.clone();
            Arc::new(move || gateway.routes().catalog.providers().len())
        },
        open_relay: (!config.client.enforce_auth
            && config.client.allow_unauthenticated
            && !config.server.listen.ip().is_loopback())
        .then(|| {
            format!(
                "client.allow_unauthenticated is set and the node listens on {}: ANYONE who reaches \
                 this address can send requests on the configured provider keys without a virtual key",
                config.server.listen
            )
        }),
    };
    for w in warnings.now() {
        tracing::warn!("{w}");
    }
    let addr = config.server.listen;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| NodeError::Bind { addr, source })?;
    let bound = listener.local_addr().map_err(NodeError::Serve)?;
    let health = gateway.health.clone();
    let sessions = Arc::new(crate::session::Sessions::new(
        admin_token.expose(),
        config.cluster.secret.as_ref().map(Secret::expose),
        config.server.session_ttl,
    ));
    let audit = Arc::new(crate::observability::audit::AuditLog::open(
        store.clone(),
        governance.node(),
    )?);
    let cluster = match config.cluster.secret {
        Some(_) => Some(
            Cluster::start(
                &config,
                bound,
                crate::cluster::Local {
                    governance: governance.clone(),
                    logs: logs.clone(),
                    health: health.clone(),
                    cache: cache.clone(),
                    sessions: sessions.clone(),
                    audit: audit.clone(),
                },
                &metrics,
                &tasks,
            )
            .await?,
        ),
        None => None,
    };

    // rmcp's HTTP client (reqwest) uses rustls without a provider of its
    // own: give the process the one the rest of the node uses.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sealer = Sealer::for_node(data_dir, config.cluster.secret.as_ref()).map_err(|source| {
        NodeError::DataDir {
            path: data_dir.display().to_string(),
            source,
        }
    })?;
    let oauth = Arc::new(crate::mcp::oauth::Broker::new(
        governance.clone(),
        sealer.subkey("tollgate mcp oauth v1"),
        crate::mcp::upstream::http_client().map_err(NodeError::Http)?,
        &config.mcp.public_url,
        config.server.listen,
    ));
    let upstreams = Upstreams::new(
        governance.clone(),
        config.mcp.clone(),
        tasks.clone(),
        oauth.clone(),
    );
    tasks.spawn({
        let u = upstreams.clone();
        move |cancel| u.run(cancel)
    });
    let mcp_closing = CancellationToken::new();
    let mcp = McpState {
        streams: Arc::new(crate::governance::slots::Slots::new(
            config.mcp.max_streams,
            config.mcp.max_streams_per_key,
        )),
        user_header: Arc::from(config.mcp.user_header.to_ascii_lowercase()),
        upstreams: upstreams.clone(),
        governance: governance.clone(),
        tool_logs: tool_logs.clone(),
        tracer: tracer.clone(),
        sealer,
        allowed_hosts: Arc::new(
            config
                .mcp
                .allowed_hosts
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
        ),
        session_ttl: config.mcp.session_ttl,
        list_ttl: config.mcp.list_ttl,
        closing: mcp_closing.clone(),
        agent_max_depth: config.mcp.agent_max_depth,
        max_body_bytes: config.server.max_body_bytes,
        code_mode: Arc::new(CodeMode {
            binding: config.mcp.code_mode.binding,
            limits: config.mcp.code_mode.limits(),
            // Scripts run in this same binary, as `tollgate codemode-worker`.
            worker: std::env::current_exe().map_err(NodeError::Executable)?,
            slots: Arc::new(crate::governance::slots::Slots::new(
                config.mcp.code_mode.max_workers,
                config.mcp.code_mode.max_workers_per_key,
            )),
        }),
    };
    let ready = Arc::new(AtomicBool::new(true));
    let app = router(
        gateway,
        AdminState {
            logs,
            governance: governance.clone(),
            config_providers: Arc::new(config.providers.clone()),
            token: Some(admin_token),
            sessions,
            warnings,
            audit,
            cluster: cluster.clone(),
            health: health.clone(),
            upstreams,
            tool_logs,
            cache: cache.clone(),
        },
        OpsState {
            metrics,
            health: health.clone(),
            ready: ready.clone(),
            governance: governance.clone(),
            store: store.clone(),
            cache,
            metrics_token: config.server.metrics_token.clone(),
        },
        mcp,
    );
    tracing::info!(%bound, data_dir = %data_dir.display(), "tollgate node serving");
    on_bound(bound);

    let draining = Arc::new(tokio::sync::Notify::new());
    let drain_signal = draining.clone();
    let drain_delay = config.server.drain_delay;
    let limits = serve::Limits {
        max_connections: config.server.max_connections,
        header_read_timeout: config.server.header_read_timeout,
        body_read_timeout: config.server.body_read_timeout,
        max_in_flight: config.server.max_in_flight,
    };
    let server = serve::serve(listener, app, limits, async move {
        shutdown.await;
        tracing::info!(?drain_delay, "shutting down: /ready fails from now on");
        ready.store(false, Ordering::SeqCst);
        mcp_closing.cancel();
        tokio::time::sleep(drain_delay).await;
        tracing::info!("closing the listener, finishing in-flight requests");
        drain_signal.notify_one();
    });
    let grace = config.server.shutdown_grace;
    tokio::select! {
        () = server => {}
        _ = async { draining.notified().await; tokio::time::sleep(grace).await } => {
            tracing::warn!(?grace, "shutdown grace elapsed; closing remaining connections");
        }
    }
    if let Some(c) = &cluster {
        tracing::info!("leaving the cluster");
        c.leave().await;
    }
    tasks.shutdown().await;
    // Spans of the last requests: sent, unless the collector is slow.
    tracer.flush(Duration::from_secs(5)).await;
    store.flush()?;
    tracing::info!("stopped");
    Ok(())
}

/// With no `server.admin_token`, the admin API still needs one: a random
/// token made on first start and kept in `data_dir/admin-token` (mode 0600).
fn generated_admin_token(data_dir: &std::path::Path) -> Result<Secret, NodeError> {
    let path = data_dir.join("admin-token");
    let io = |source| NodeError::DataDir {
        path: path.display().to_string(),
        source,
    };
    let token = match std::fs::read_to_string(&path) {
        Ok(t) if !t.trim().is_empty() => t.trim().to_string(),
        _ => {
            let t = crate::governance::random_token(40);
            crate::config::write_private(&path, t.as_bytes()).map_err(io)?;
            t
        }
    };
    tracing::info!(path = %path.display(), "no server.admin_token set: the admin API uses the token in this file");
    Ok(Secret::new(token))
}

fn router(gateway: Arc<Gateway>, admin: AdminState, ops: OpsState, mcp: McpState) -> Router {
    // Shared, not cloned per request: the layer sees every proxied request.
    let agent = Arc::new(AgentState {
        gateway: gateway.clone(),
        mcp: mcp.clone(),
        max_depth: mcp.agent_max_depth,
        max_body_bytes: mcp.max_body_bytes,
    });
    let ops_routes = Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .with_state(ops);
    Router::new()
        .merge(
            proxy::http_api::routes(gateway)
                .layer(axum::middleware::from_fn_with_state(agent, agent::layer)),
        )
        .merge(crate::mcp::oauth::routes(admin.upstreams.oauth().clone()))
        .merge(crate::mcp::server::routes(mcp))
        .merge(admin::self_service(admin.governance.clone()))
        .merge(admin::routes(admin))
        .merge(ops_routes)
        .merge(crate::dashboard::routes())
        .fallback(unknown_route)
}

/// How often a node whose database refuses writes tries one.
const DISK_PROBE_PERIOD: Duration = Duration::from_secs(1);

/// Every [`collect::COLLECT_EVERY`]: marks the data directory in use and
/// collects ended windows' counters and old tombstones.
async fn collect_old_state(store: Store, gov: Arc<Governance>, cancel: CancellationToken) {
    let mut every = tokio::time::interval(collect::COLLECT_EVERY);
    while cancel.run_until_cancelled(every.tick()).await.is_some() {
        let (gov, store) = (gov.clone(), store.clone());
        let done = tokio::task::spawn_blocking(move || {
            collect::mark_in_use(&store, gov.now_ms())?;
            gov.collect_garbage()
        })
        .await;
        match done {
            Ok(Ok((0, 0))) => {}
            Ok(Ok((counters, rows))) => {
                tracing::info!(counters, rows, "collected ended windows and old tombstones")
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "collecting old state failed"),
            Err(e) => tracing::warn!(error = %e, "collecting old state panicked"),
        }
    }
}

/// While the database refuses writes (a full or failing disk), tries one
/// small durable write every [`DISK_PROBE_PERIOD`] — one row, so the cost
/// is bounded whatever the outage's length — until one succeeds, so the node
/// takes governed requests again by itself once RocksDB has resumed (it does
/// on its own when space comes back; see `store`), even with nobody polling
/// `/ready`. Each try counts in `tollgate_store_recovery_probes_total`, each
/// return to health in `tollgate_store_recoveries_total`.
async fn watch_disk(store: Store, governance: Arc<Governance>, cancel: CancellationToken) {
    let mut every = tokio::time::interval(DISK_PROBE_PERIOD);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = cancel.cancelled() => return,
        }
        let (s, g) = (store.clone(), governance.clone());
        let _ = tokio::task::spawn_blocking(move || {
            if !s.health().writable {
                let _ = s.probe();
            }
            // Probes the ledger's own way when a journal or spend write
            // failed, and clears its refusal once one works.
            g.can_record_spend()
        })
        .await;
    }
}

/// Ready while not draining and able to record spend: a node whose disk
/// refuses writes would have to refuse every governed request, so it asks
/// its load balancer for none (and finds out here when writes work again).
async fn ready(State(s): State<OpsState>) -> Response {
    if !s.ready.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "draining").into_response();
    }
    let (gov, store) = (s.governance.clone(), s.store.clone());
    let recording =
        tokio::task::spawn_blocking(move || gov.can_record_spend() && store.health().writable)
            .await
            .unwrap_or(false);
    if recording {
        "ready".into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "cannot record spend: the disk refuses writes",
        )
            .into_response()
    }
}

async fn metrics(State(s): State<OpsState>, req: Request) -> Response {
    if s.metrics_token.is_some() && !admin::bearer_is(req.headers(), s.metrics_token.as_ref()) {
        return (StatusCode::UNAUTHORIZED, "missing or wrong metrics token").into_response();
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    for r in s.health.view(now) {
        let labels = [&*r.route.provider, &*r.route.key, &*r.route.model];
        let m = &s.metrics;
        m.route_state.with_label_values(&labels).set(r.state as i64);
        m.route_score.with_label_values(&labels).set(r.score);
        m.route_errors.with_label_values(&labels).set(r.errors);
    }
    s.metrics.set_store(s.store.health());
    s.metrics.set_cache(s.cache.stats());
    s.metrics.usage.set_budgets(s.governance.budget_use());
    let mut r = s.metrics.render().into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    r
}

async fn unknown_route(req: Request) -> Response {
    admin::error(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        format!("no route for {} {}", req.method(), req.uri().path()),
    )
}
