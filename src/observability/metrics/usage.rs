//! What requests and tool calls cost, by who made them: spend by provider
//! and model, by team and by customer, per virtual key when the operator
//! opts in, MCP tool calls by server and tool, and each budget's use of its
//! window.
//!
//! Label values that clients or admins create (team, customer and key ids,
//! tool names, budget scopes) are capped: past `[metrics] max_series`
//! distinct values in one family, new values are counted as `other`
//! (and `tollgate_metric_series_capped_total{family}` says so), so no
//! client can grow the scrape without bound.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use prometheus::{GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

/// Seconds; from a millisecond (a local tool) to two minutes.
const TOOL_LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

/// The label shown for values past a family's cap.
pub const OTHER: &str = "other";

/// `[metrics]` settings these series need.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Series per virtual key (`key_*`): off by default.
    pub per_key: bool,
    /// Distinct values one capped label family may take.
    pub max_series: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            per_key: false,
            max_series: 1000,
        }
    }
}

/// Distinct label values seen per family, up to the cap.
struct Cap {
    max: usize,
    seen: Mutex<HashMap<&'static str, HashSet<String>>>,
    capped: IntCounterVec,
}

impl Cap {
    /// `value`, or [`OTHER`] once `family` holds `max` other values.
    fn label<'a>(&self, family: &'static str, value: &'a str) -> &'a str {
        let mut seen = self.seen.lock().expect("label cap");
        let set = seen.entry(family).or_default();
        if set.contains(value) {
            return value;
        }
        if set.len() < self.max {
            set.insert(value.to_string());
            return value;
        }
        self.capped.with_label_values(&[family]).inc();
        OTHER
    }
}

pub struct UsageMetrics {
    per_key: bool,
    cap: Cap,
    spend: IntCounterVec,
    team_spend: IntCounterVec,
    customer_spend: IntCounterVec,
    key_requests: IntCounterVec,
    key_spend: IntCounterVec,
    key_tokens: IntCounterVec,
    tool_calls: IntCounterVec,
    tool_latency: HistogramVec,
    budget_use: GaugeVec,
}

/// What one finished request adds.
pub struct Spent<'a> {
    pub provider: &'a str,
    pub model: &'a str,
    pub team: Option<&'a str>,
    pub customer: Option<&'a str>,
    pub key: Option<&'a str>,
    pub cost_micros: u64,
    pub tokens: u64,
}

impl UsageMetrics {
    pub fn register(registry: &Registry, settings: Settings) -> UsageMetrics {
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric");
            c
        };
        let tool_latency = HistogramVec::new(
            HistogramOpts::new(
                "mcp_tool_latency_seconds",
                "MCP tool call time, by server and tool (Code Mode scripts as server codemode).",
            )
            .buckets(TOOL_LATENCY_BUCKETS.to_vec()),
            &["server", "tool"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(tool_latency.clone()))
            .expect("unique metric");
        let budget_use = GaugeVec::new(
            Opts::new(
                "budget_utilisation_ratio",
                "Spend in the current window over the limit, per budget scope and period (set at every scrape).",
            ),
            &["scope", "period"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(budget_use.clone()))
            .expect("unique metric");
        UsageMetrics {
            per_key: settings.per_key,
            cap: Cap {
                max: settings.max_series,
                seen: Mutex::new(HashMap::new()),
                capped: counter(
                    "metric_series_capped_total",
                    "Label values counted as 'other' because their family reached [metrics] max_series.",
                    &["family"],
                ),
            },
            spend: counter(
                "spend_micros_total",
                "What requests cost, in micro-dollars, by provider and model.",
                &["provider", "model"],
            ),
            team_spend: counter(
                "team_spend_micros_total",
                "What requests cost, in micro-dollars, by team id.",
                &["team"],
            ),
            customer_spend: counter(
                "customer_spend_micros_total",
                "What requests cost, in micro-dollars, by customer id.",
                &["customer"],
            ),
            key_requests: counter(
                "key_requests_total",
                "Requests by virtual key id ([metrics] per_key).",
                &["key"],
            ),
            key_spend: counter(
                "key_spend_micros_total",
                "What requests cost, in micro-dollars, by virtual key id ([metrics] per_key).",
                &["key"],
            ),
            key_tokens: counter(
                "key_tokens_total",
                "Tokens (prompt and completion) by virtual key id ([metrics] per_key).",
                &["key"],
            ),
            tool_calls: counter(
                "mcp_tool_calls_total",
                "MCP tool calls by server, tool and result (ok or error).",
                &["server", "tool", "result"],
            ),
            tool_latency,
            budget_use,
        }
    }

    /// Counts a finished request.
    pub fn request(&self, s: &Spent<'_>) {
        if s.cost_micros > 0 {
            self.spend
                .with_label_values(&[s.provider, s.model])
                .inc_by(s.cost_micros);
            if let Some(team) = s.team {
                let team = self.cap.label("team", team);
                self.team_spend
                    .with_label_values(&[team])
                    .inc_by(s.cost_micros);
            }
            if let Some(customer) = s.customer {
                let customer = self.cap.label("customer", customer);
                self.customer_spend
                    .with_label_values(&[customer])
                    .inc_by(s.cost_micros);
            }
        }
        if let (true, Some(key)) = (self.per_key, s.key) {
            let key = self.cap.label("key", key);
            self.key_requests.with_label_values(&[key]).inc();
            self.key_spend
                .with_label_values(&[key])
                .inc_by(s.cost_micros);
            self.key_tokens.with_label_values(&[key]).inc_by(s.tokens);
        }
    }

    /// Counts a tool call.
    pub fn tool_call(&self, server: &str, tool: &str, failed: bool, seconds: f64) {
        let server = self.cap.label("server", server);
        let tool = self.cap.label("tool", tool);
        let result = if failed { "error" } else { "ok" };
        self.tool_calls
            .with_label_values(&[server, tool, result])
            .inc();
        self.tool_latency
            .with_label_values(&[server, tool])
            .observe(seconds);
    }

    /// Sets every budget's utilisation: `(scope, period, spent / limit)`.
    /// Budgets that are gone are removed from the scrape.
    pub fn set_budgets(&self, budgets: impl IntoIterator<Item = (String, &'static str, f64)>) {
        self.budget_use.reset();
        for (scope, period, ratio) in budgets {
            let scope = self.cap.label("budget", &scope);
            if scope != OTHER {
                self.budget_use
                    .with_label_values(&[scope, period])
                    .set(ratio);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(per_key: bool, max_series: usize) -> (Registry, UsageMetrics) {
        let r = Registry::new();
        let m = UsageMetrics::register(
            &r,
            Settings {
                per_key,
                max_series,
            },
        );
        (r, m)
    }

    fn text(r: &Registry) -> String {
        use prometheus::Encoder;
        let mut out = Vec::new();
        prometheus::TextEncoder::new()
            .encode(&r.gather(), &mut out)
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    fn spent<'a>(team: &'a str, key: &'a str, cost: u64) -> Spent<'a> {
        Spent {
            provider: "p",
            model: "m",
            team: Some(team),
            customer: None,
            key: Some(key),
            cost_micros: cost,
            tokens: 10,
        }
    }

    #[test]
    fn spend_is_counted_by_provider_model_and_team() {
        let (r, m) = metrics(false, 10);
        m.request(&spent("team_a", "vk_1", 30));
        m.request(&spent("team_a", "vk_1", 12));
        let t = text(&r);
        assert!(
            t.contains("spend_micros_total{model=\"m\",provider=\"p\"} 42"),
            "{t}"
        );
        assert!(
            t.contains("team_spend_micros_total{team=\"team_a\"} 42"),
            "{t}"
        );
        assert!(
            !t.contains("key_requests_total{"),
            "per-key series are opt-in: {t}"
        );
    }

    #[test]
    fn label_values_past_the_cap_are_other() {
        let (r, m) = metrics(true, 2);
        for key in ["vk_1", "vk_2", "vk_3", "vk_4"] {
            m.request(&spent("t", key, 1));
        }
        let t = text(&r);
        assert!(t.contains("key_requests_total{key=\"vk_2\"} 1"), "{t}");
        assert!(t.contains("key_requests_total{key=\"other\"} 2"), "{t}");
        assert!(!t.contains("vk_3"), "{t}");
        assert!(
            t.contains("metric_series_capped_total{family=\"key\"} 2"),
            "{t}"
        );
    }

    #[test]
    fn tool_calls_and_budgets_are_shown() {
        let (r, m) = metrics(false, 10);
        m.tool_call("srv", "echo", false, 0.002);
        m.tool_call("srv", "echo", true, 0.002);
        m.set_budgets([("team:t".to_string(), "1d", 0.25)]);
        let t = text(&r);
        assert!(
            t.contains("mcp_tool_calls_total{result=\"error\",server=\"srv\",tool=\"echo\"} 1"),
            "{t}"
        );
        assert!(
            t.contains("mcp_tool_latency_seconds_count{server=\"srv\",tool=\"echo\"} 2"),
            "{t}"
        );
        assert!(
            t.contains("budget_utilisation_ratio{period=\"1d\",scope=\"team:t\"} 0.25"),
            "{t}"
        );
        m.set_budgets([]);
        assert!(
            !text(&r).contains("scope=\"team:t\""),
            "a deleted budget leaves the scrape"
        );
    }
}
