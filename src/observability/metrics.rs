//! Prometheus metrics of one node, rendered at `GET /metrics`.

pub mod usage;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};

/// Seconds; from 50 µs (a cache hit) to two minutes (a long generation).
const LATENCY_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];
/// Seconds; the gateway's own time per request is meant to stay in microseconds.
const OVERHEAD_BUCKETS: &[f64] = &[
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05,
];

pub struct Metrics {
    registry: Registry,
    /// Requests finished, by endpoint, provider, model and HTTP status.
    pub requests: IntCounterVec,
    /// Time from sending upstream to the last byte of the response.
    pub upstream_latency: HistogramVec,
    /// Time from the client's request to the first content chunk of a stream.
    pub time_to_first_token: HistogramVec,
    /// Time the gateway itself spent on a request (the `x-tollgate-overhead-us` header).
    pub overhead: Histogram,
    /// Tokens by provider, model and kind (`prompt`, `completion`, `cached`).
    pub tokens: IntCounterVec,
    /// Failed upstream attempts by provider and cause.
    pub upstream_errors: IntCounterVec,
    /// Retries and key rotations by provider and cause.
    pub retries: IntCounterVec,
    /// Requests whose fallback target (not the first) answered.
    pub fallbacks: IntCounterVec,
    pub in_flight: IntGauge,
    /// Request log records dropped because the writer fell behind.
    pub logs_dropped: IntCounter,
    /// Requests that cost more than they reserved: a broken bound, which
    /// should never happen (each is also logged as an error).
    pub reservation_exceeded: IntCounter,
    /// OpenTelemetry spans by outcome: `exported`, `dropped` (the export
    /// queue was full) or `failed` (their export failed or timed out).
    pub otel_spans: IntCounterVec,
    /// The database: whether it takes writes (1) or its last write failed
    /// (0), writes that failed, times writes worked again after a failure,
    /// and probe writes made while it was failing. Set from
    /// `Store::health` at every scrape.
    pub store_writable: IntGauge,
    pub store_write_errors: IntCounter,
    pub store_recoveries: IntCounter,
    pub store_probes: IntCounter,
    /// The exact response cache, set from `CacheStore::stats` at every
    /// scrape: lookups by result (`hit`, `miss`, `bypass`), answers stored,
    /// evicted (least recently used past `cache.max_bytes`) and expired,
    /// database errors the cache passed over, and its entries and bytes.
    pub cache_lookups: IntCounterVec,
    pub cache_semantic_errors: IntCounter,
    pub cache_questions: IntGauge,
    /// Sharing answers with the cluster, by event (`CacheStore::stats`).
    pub cache_replicated: IntCounterVec,
    pub cache_stores: IntCounter,
    pub cache_evictions: IntCounter,
    pub cache_expirations: IntCounter,
    pub cache_errors: IntCounter,
    pub cache_entries: IntGauge,
    pub cache_bytes: IntGauge,
    /// Route health, set from the health book at every scrape.
    pub route_state: prometheus::IntGaugeVec,
    pub route_score: prometheus::GaugeVec,
    pub route_errors: prometheus::GaugeVec,
    /// Spend by provider, model, team, customer (and key), MCP tool calls,
    /// budget utilisation.
    pub usage: usage::UsageMetrics,
}

impl Metrics {
    /// The counters a tracer keeps (`tollgate_otel_spans_total`).
    pub fn otel_counters(&self) -> crate::observability::otel::Counters {
        let c = |outcome| self.otel_spans.with_label_values(&[outcome]);
        crate::observability::otel::Counters {
            exported: c("exported"),
            dropped: c("dropped"),
            failed: c("failed"),
        }
    }

    pub fn new() -> Metrics {
        Metrics::with(usage::Settings::default())
    }

    pub fn with(settings: usage::Settings) -> Metrics {
        let registry = Registry::new_custom(Some("tollgate".into()), None)
            .expect("static registry settings are valid");
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric");
            c
        };
        let histogram = |name: &str, help: &str, labels: &[&str], buckets: &[f64]| {
            let h = HistogramVec::new(
                HistogramOpts::new(name, help).buckets(buckets.to_vec()),
                labels,
            )
            .expect("valid metric");
            registry
                .register(Box::new(h.clone()))
                .expect("unique metric");
            h
        };
        let requests = counter(
            "requests_total",
            "Requests answered, by endpoint, provider, model and status.",
            &["endpoint", "provider", "model", "status"],
        );
        let upstream_latency = histogram(
            "upstream_latency_seconds",
            "Upstream response time, request sent to last byte.",
            &["provider", "model"],
            LATENCY_BUCKETS,
        );
        let time_to_first_token = histogram(
            "time_to_first_token_seconds",
            "Client request to first streamed content chunk.",
            &["provider", "model"],
            LATENCY_BUCKETS,
        );
        let overhead = Histogram::with_opts(
            HistogramOpts::new(
                "gateway_overhead_seconds",
                "Time the gateway itself spent on a request, upstream time excluded.",
            )
            .buckets(OVERHEAD_BUCKETS.to_vec()),
        )
        .expect("valid metric");
        registry
            .register(Box::new(overhead.clone()))
            .expect("unique metric");
        let tokens = counter(
            "tokens_total",
            "Tokens by provider, model and kind.",
            &["provider", "model", "kind"],
        );
        let upstream_errors = counter(
            "upstream_errors_total",
            "Failed upstream attempts by provider and cause.",
            &["provider", "cause"],
        );
        let retries = counter(
            "retries_total",
            "Upstream retries and key rotations by provider and cause.",
            &["provider", "cause"],
        );
        let fallbacks = counter(
            "fallbacks_total",
            "Requests answered by a fallback target, by the provider that answered.",
            &["provider"],
        );
        let in_flight =
            IntGauge::new("in_flight_requests", "Requests being served.").expect("valid metric");
        registry
            .register(Box::new(in_flight.clone()))
            .expect("unique metric");
        let logs_dropped = IntCounter::new(
            "request_logs_dropped_total",
            "Request log records dropped because the log writer fell behind.",
        )
        .expect("valid metric");
        registry
            .register(Box::new(logs_dropped.clone()))
            .expect("unique metric");
        let reservation_exceeded = IntCounter::new(
            "budget_reservation_exceeded_total",
            "Requests whose actual cost passed their reservation (should stay 0).",
        )
        .expect("valid metric");
        registry
            .register(Box::new(reservation_exceeded.clone()))
            .expect("unique metric");
        let int_counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric");
            c
        };
        let store_write_errors = int_counter(
            "store_write_errors_total",
            "Database writes that failed (a full or failing disk).",
        );
        let store_recoveries = int_counter(
            "store_recoveries_total",
            "Times the database took writes again after one had failed.",
        );
        let store_probes = int_counter(
            "store_recovery_probes_total",
            "Probe writes made while the database refused writes.",
        );
        let store_writable = IntGauge::new(
            "store_writable",
            "1 while the database takes writes, 0 from a failed write until one succeeds.",
        )
        .expect("valid metric");
        registry
            .register(Box::new(store_writable.clone()))
            .expect("unique metric");
        let otel_spans = counter(
            "otel_spans_total",
            "OpenTelemetry spans by outcome: exported, dropped (export queue full) or failed (export failed).",
            &["outcome"],
        );
        let cache_lookups = counter(
            "cache_lookups_total",
            "Cache lookups by result (hit, miss, or bypass: not cacheable or turned off) and, for hits, type (exact or semantic).",
            &["result", "type"],
        );
        let cache_semantic_errors = int_counter(
            "cache_semantic_errors_total",
            "Questions the semantic cache could not embed or look up; the request went on with the exact cache only.",
        );
        let cache_replicated = counter(
            "cache_replicated_total",
            "Cached answers shared with the cluster: queued for the peers, dropped (the outbox or a peer's in-flight batches were full), sent (one a peer), and from peers received, imported, refused (unreadable, expired or too large).",
            &["event"],
        );
        let cache_stores = int_counter("cache_stores_total", "Answers stored in the exact cache.");
        let cache_evictions = int_counter(
            "cache_evictions_total",
            "Cached answers evicted, least recently used first, past cache.max_bytes.",
        );
        let cache_expirations = int_counter(
            "cache_expirations_total",
            "Cached answers found expired and deleted.",
        );
        let cache_errors = int_counter(
            "cache_errors_total",
            "Cache lookups and stores the database failed; the request went on without the cache.",
        );
        let int_gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).expect("valid metric");
            registry
                .register(Box::new(g.clone()))
                .expect("unique metric");
            g
        };
        let cache_entries = int_gauge("cache_entries", "Answers in the exact cache.");
        let cache_bytes = int_gauge(
            "cache_bytes",
            "Bytes the cache's answers take (encoded rows and keys, embeddings included).",
        );
        let cache_questions = int_gauge(
            "cache_questions",
            "Questions in the semantic cache's index.",
        );
        let route_labels = ["provider", "key", "model"];
        let route_state = prometheus::IntGaugeVec::new(
            Opts::new(
                "route_state",
                "Route health state: 0 healthy, 1 degraded, 2 failed, 3 recovering.",
            ),
            &route_labels,
        )
        .expect("valid metric");
        registry
            .register(Box::new(route_state.clone()))
            .expect("unique metric");
        let gauge = |name: &str, help: &str| {
            let g = prometheus::GaugeVec::new(Opts::new(name, help), &route_labels)
                .expect("valid metric");
            registry
                .register(Box::new(g.clone()))
                .expect("unique metric");
            g
        };
        let route_score = gauge(
            "route_score",
            "Route selection score at weight 1 (0 while failed or rate-limited).",
        );
        let route_errors = gauge(
            "route_error_rate",
            "Route error rate, this node's results blended with its peers'.",
        );
        Metrics {
            usage: usage::UsageMetrics::register(&registry, settings),
            registry,
            route_state,
            route_score,
            route_errors,
            requests,
            upstream_latency,
            time_to_first_token,
            overhead,
            tokens,
            upstream_errors,
            retries,
            fallbacks,
            in_flight,
            logs_dropped,
            reservation_exceeded,
            otel_spans,
            store_writable,
            store_write_errors,
            store_recoveries,
            store_probes,
            cache_lookups,
            cache_stores,
            cache_evictions,
            cache_expirations,
            cache_errors,
            cache_entries,
            cache_bytes,
            cache_semantic_errors,
            cache_questions,
            cache_replicated,
        }
    }

    /// Copies the cache's counters (see `CacheStore::stats`).
    pub fn set_cache(&self, s: crate::cache::store::Stats) {
        let catch_up = |c: &IntCounter, to: u64| c.inc_by(to.saturating_sub(c.get()));
        for (result, kind, n) in [
            ("hit", "exact", s.hits.saturating_sub(s.semantic_hits)),
            ("hit", "semantic", s.semantic_hits),
            ("miss", "", s.misses),
            ("bypass", "", s.bypasses),
        ] {
            catch_up(&self.cache_lookups.with_label_values(&[result, kind]), n);
        }
        catch_up(&self.cache_semantic_errors, s.semantic_errors);
        let r = s.replication;
        for (event, n) in [
            ("queued", r.queued),
            ("dropped", r.dropped),
            ("sent", r.sent),
            ("received", r.received),
            ("imported", r.imported),
            ("refused", r.refused),
        ] {
            catch_up(&self.cache_replicated.with_label_values(&[event]), n);
        }
        self.cache_questions.set(s.questions as i64);
        catch_up(&self.cache_stores, s.stores);
        catch_up(&self.cache_evictions, s.evictions);
        catch_up(&self.cache_expirations, s.expirations);
        catch_up(&self.cache_errors, s.errors);
        self.cache_entries.set(s.entries as i64);
        self.cache_bytes.set(s.bytes as i64);
    }

    /// Copies the database's counters (see `Store::health`).
    pub fn set_store(&self, h: crate::store::StoreHealth) {
        self.store_writable.set(i64::from(h.writable));
        let catch_up = |c: &IntCounter, to: u64| c.inc_by(to.saturating_sub(c.get()));
        catch_up(&self.store_write_errors, h.write_errors);
        catch_up(&self.store_recoveries, h.recoveries);
        catch_up(&self.store_probes, h.probes);
    }

    /// The registry, for layers that keep their own metrics (the cluster).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding into a Vec cannot fail");
        String::from_utf8(out).expect("exposition is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_recorded_values() {
        let m = Metrics::new();
        m.requests
            .with_label_values(&["chat", "mock", "mock-1", "200"])
            .inc();
        m.overhead.observe(0.00004);
        let text = m.render();
        assert!(text.contains(
            "tollgate_requests_total{endpoint=\"chat\",model=\"mock-1\",provider=\"mock\",status=\"200\"} 1"
        ), "{text}");
        assert!(
            text.contains("tollgate_gateway_overhead_seconds_count 1"),
            "{text}"
        );
    }
}
