//! `[otel]`: OpenTelemetry trace export, and the standard `OTEL_*`
//! environment variables, which win over the file (`docs/observability.md`).
//! As the OpenTelemetry specification says, a variable set to the empty
//! string counts as unset.

use std::time::Duration;

use indexmap::IndexMap;
use serde::Deserialize;

use super::{ConfigError, Secret, duration, invalid};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Protocol {
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
    #[serde(rename = "grpc")]
    Grpc,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::HttpProtobuf => "http/protobuf",
            Protocol::Grpc => "grpc",
        }
    }

    fn parse(s: &str) -> Result<Protocol, String> {
        match s {
            "http/protobuf" => Ok(Protocol::HttpProtobuf),
            "grpc" => Ok(Protocol::Grpc),
            "http/json" => Err("http/json is not supported: use http/protobuf or grpc".into()),
            other => Err(format!(
                "unknown protocol {other:?} (http/protobuf or grpc)"
            )),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OtelConfig {
    /// Export traces. Unset: on when an endpoint is set.
    pub enabled: Option<bool>,
    /// The collector's base URL; `http/protobuf` posts to `<endpoint>/v1/traces`.
    /// Default `http://localhost:4318` (`http://localhost:4317` for gRPC).
    pub endpoint: Option<String>,
    /// The full URL for traces, used as it is (wins over `endpoint`).
    pub traces_endpoint: Option<String>,
    pub protocol: Protocol,
    /// Sent with every export (e.g. a vendor's API key: `"env.VAR"`).
    pub headers: IndexMap<String, Secret>,
    pub service_name: String,
    /// Extra resource attributes (`deployment.environment.name`, ...).
    pub resource_attributes: IndexMap<String, String>,
    /// Share of new traces recorded, 0 to 1.
    pub sample_ratio: f64,
    /// Follow the caller's `traceparent` sampled flag when it sends one.
    pub parent_based: bool,
    /// Spans waiting for export; more are dropped (and counted).
    pub max_queue: usize,
    /// Spans per export.
    pub max_batch: usize,
    /// Longest wait from a span's end to its export.
    #[serde(deserialize_with = "duration")]
    pub export_interval: Duration,
    /// Bound on one export, connecting included.
    #[serde(deserialize_with = "duration")]
    pub export_timeout: Duration,
}

impl Default for OtelConfig {
    fn default() -> Self {
        OtelConfig {
            enabled: None,
            endpoint: None,
            traces_endpoint: None,
            protocol: Protocol::HttpProtobuf,
            headers: IndexMap::new(),
            service_name: "tollgate".into(),
            resource_attributes: IndexMap::new(),
            sample_ratio: 1.0,
            parent_based: true,
            max_queue: 2048,
            max_batch: 512,
            export_interval: Duration::from_secs(5),
            export_timeout: Duration::from_secs(10),
        }
    }
}

impl OtelConfig {
    pub fn is_on(&self) -> bool {
        self.enabled
            .unwrap_or(self.endpoint.is_some() || self.traces_endpoint.is_some())
    }

    /// Where spans are sent, when tracing is on.
    pub fn traces_url(&self) -> Option<String> {
        if !self.is_on() {
            return None;
        }
        if let Some(full) = &self.traces_endpoint {
            return Some(full.clone());
        }
        let base = self.endpoint.clone().unwrap_or_else(|| {
            match self.protocol {
                Protocol::HttpProtobuf => "http://localhost:4318",
                Protocol::Grpc => "http://localhost:4317",
            }
            .into()
        });
        Some(match self.protocol {
            Protocol::HttpProtobuf => format!("{}/v1/traces", base.trim_end_matches('/')),
            // gRPC names its method in the path.
            Protocol::Grpc => base,
        })
    }

    /// Applies the `OTEL_*` variables over the file's settings.
    pub(super) fn apply_env(&mut self, vars: &[(String, String)]) -> Result<(), ConfigError> {
        let get = |name: &str| {
            vars.iter()
                .find(|(k, v)| k == name && !v.trim().is_empty())
                .map(|(_, v)| v.trim().to_string())
        };
        // The traces-specific variable wins over the general one.
        let pick = |general: &str, traces: &str| {
            get(traces)
                .map(|v| (traces.to_string(), v))
                .or_else(|| get(general).map(|v| (general.to_string(), v)))
        };
        let env = |var: &str, reason: String| ConfigError::Env {
            var: var.to_string(),
            reason,
        };
        let millis = |var: &str, v: &str| {
            v.parse::<u64>()
                .map(Duration::from_millis)
                .map_err(|_| env(var, format!("{v:?} is not a number of milliseconds")))
        };
        let count = |var: &str, v: &str| {
            v.parse::<usize>()
                .map_err(|_| env(var, format!("{v:?} is not a count")))
        };
        if let Some(v) = get("OTEL_SDK_DISABLED")
            && v.eq_ignore_ascii_case("true")
        {
            self.enabled = Some(false);
            return Ok(());
        }
        match get("OTEL_TRACES_EXPORTER").as_deref() {
            None | Some("otlp") => {}
            Some("none") => {
                self.enabled = Some(false);
                return Ok(());
            }
            Some(other) => {
                return Err(env(
                    "OTEL_TRACES_EXPORTER",
                    format!("{other:?} is not supported (otlp or none)"),
                ));
            }
        }
        if let Some(v) = get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
            self.traces_endpoint = Some(v);
        }
        if let Some(v) = get("OTEL_EXPORTER_OTLP_ENDPOINT") {
            self.endpoint = Some(v);
        }
        if let Some((var, v)) = pick(
            "OTEL_EXPORTER_OTLP_PROTOCOL",
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        ) {
            self.protocol = Protocol::parse(&v).map_err(|r| env(&var, r))?;
        }
        for var in [
            "OTEL_EXPORTER_OTLP_HEADERS",
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
        ] {
            if let Some(v) = get(var) {
                for (k, val) in pairs(&v).map_err(|r| env(var, r))? {
                    self.headers.insert(k, Secret::new(val));
                }
            }
        }
        if let Some((var, v)) = pick(
            "OTEL_EXPORTER_OTLP_TIMEOUT",
            "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
        ) {
            self.export_timeout = millis(&var, &v)?;
        }
        if let Some(v) = get("OTEL_SERVICE_NAME") {
            self.service_name = v;
        }
        if let Some(v) = get("OTEL_RESOURCE_ATTRIBUTES") {
            for (k, val) in pairs(&v).map_err(|r| env("OTEL_RESOURCE_ATTRIBUTES", r))? {
                self.resource_attributes.insert(k, val);
            }
        }
        if let Some(v) = get("OTEL_TRACES_SAMPLER") {
            let (parent_based, ratio) = match v.as_str() {
                "always_on" => (false, Some(1.0)),
                "always_off" => (false, Some(0.0)),
                "traceidratio" => (false, None),
                "parentbased_always_on" => (true, Some(1.0)),
                "parentbased_always_off" => (true, Some(0.0)),
                "parentbased_traceidratio" => (true, None),
                other => {
                    return Err(env(
                        "OTEL_TRACES_SAMPLER",
                        format!("{other:?} is not a sampler this node has"),
                    ));
                }
            };
            self.parent_based = parent_based;
            if let Some(r) = ratio {
                self.sample_ratio = r;
            }
        }
        if let Some(v) = get("OTEL_TRACES_SAMPLER_ARG") {
            self.sample_ratio = v.parse().map_err(|_| {
                env(
                    "OTEL_TRACES_SAMPLER_ARG",
                    format!("{v:?} is not a ratio between 0 and 1"),
                )
            })?;
        }
        if let Some(v) = get("OTEL_BSP_SCHEDULE_DELAY") {
            self.export_interval = millis("OTEL_BSP_SCHEDULE_DELAY", &v)?;
        }
        if let Some(v) = get("OTEL_BSP_EXPORT_TIMEOUT") {
            self.export_timeout = millis("OTEL_BSP_EXPORT_TIMEOUT", &v)?;
        }
        if let Some(v) = get("OTEL_BSP_MAX_QUEUE_SIZE") {
            self.max_queue = count("OTEL_BSP_MAX_QUEUE_SIZE", &v)?;
        }
        if let Some(v) = get("OTEL_BSP_MAX_EXPORT_BATCH_SIZE") {
            self.max_batch = count("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", &v)?;
        }
        Ok(())
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !(0.0..=1.0).contains(&self.sample_ratio) {
            return Err(invalid("otel.sample_ratio", "must be between 0 and 1"));
        }
        if self.max_queue == 0 || self.max_queue > 1_000_000 {
            return Err(invalid("otel.max_queue", "must be between 1 and 1000000"));
        }
        if self.max_batch == 0 || self.max_batch > self.max_queue {
            return Err(invalid(
                "otel.max_batch",
                "must be positive and at most otel.max_queue",
            ));
        }
        if self.export_interval.is_zero() {
            return Err(invalid("otel.export_interval", "must be positive"));
        }
        if self.export_timeout.is_zero() {
            return Err(invalid("otel.export_timeout", "must be positive"));
        }
        if self.service_name.is_empty() {
            return Err(invalid("otel.service_name", "must not be empty"));
        }
        for (field, url) in [
            ("otel.endpoint", &self.endpoint),
            ("otel.traces_endpoint", &self.traces_endpoint),
        ] {
            if let Some(u) = url {
                check_url(u).map_err(|r| invalid(field, r))?;
            }
        }
        for (name, value) in &self.headers {
            if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(invalid(
                    format!("otel.headers.{name}"),
                    "is not a valid header name",
                ));
            }
            if http::HeaderValue::from_str(value.expose()).is_err() {
                return Err(invalid(
                    format!("otel.headers.{name}"),
                    "is not a valid header value",
                ));
            }
        }
        Ok(())
    }
}

fn check_url(u: &str) -> Result<(), String> {
    let uri: http::Uri = u.parse().map_err(|e| format!("{u:?} is not a URL: {e}"))?;
    match uri.scheme_str() {
        Some("http" | "https") if uri.host().is_some() => Ok(()),
        _ => Err(format!(
            "{u:?} must be an http:// or https:// URL with a host"
        )),
    }
}

/// `k=v,k2=v2` as the OTel variables write lists, values percent-decoded.
fn pairs(s: &str) -> Result<Vec<(String, String)>, String> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p
                .split_once('=')
                .ok_or_else(|| format!("{p:?} is not key=value"))?;
            let (k, v) = (percent_decode(k.trim())?, percent_decode(v.trim())?);
            if k.is_empty() {
                return Err(format!("{p:?} has an empty key"));
            }
            Ok((k, v))
        })
        .collect()
}

fn percent_decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("{s:?} has a bad percent escape"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{s:?} is not UTF-8 once decoded"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn off_unless_an_endpoint_or_enabled_is_set() {
        let mut c = OtelConfig::default();
        assert!(!c.is_on());
        assert_eq!(c.traces_url(), None);
        c.enabled = Some(true);
        assert_eq!(
            c.traces_url().as_deref(),
            Some("http://localhost:4318/v1/traces")
        );
        c.protocol = Protocol::Grpc;
        assert_eq!(c.traces_url().as_deref(), Some("http://localhost:4317"));
    }

    #[test]
    fn standard_variables_win_and_empty_ones_count_as_unset() {
        let mut c = OtelConfig {
            endpoint: Some("http://file:4318".into()),
            ..OtelConfig::default()
        };
        c.apply_env(&vars(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/"),
            ("OTEL_SERVICE_NAME", "gw"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=a%3Db, other = 2"),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "deployment.environment.name=prod",
            ),
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
            ("OTEL_BSP_MAX_QUEUE_SIZE", ""),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "1500"),
        ]))
        .unwrap();
        c.validate().unwrap();
        assert_eq!(
            c.traces_url().as_deref(),
            Some("http://collector:4318/v1/traces")
        );
        assert_eq!(c.service_name, "gw");
        assert_eq!(c.headers["x-api-key"].expose(), "a=b");
        assert_eq!(c.headers["other"].expose(), "2");
        assert_eq!(c.resource_attributes["deployment.environment.name"], "prod");
        assert!(c.parent_based);
        assert_eq!(c.sample_ratio, 0.25);
        assert_eq!(c.max_queue, 2048, "an empty variable is unset");
        assert_eq!(c.export_timeout, Duration::from_millis(1500));

        let mut c = OtelConfig::default();
        c.apply_env(&vars(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "https://traces.example/otlp/v1/traces",
            ),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ]))
        .unwrap();
        assert_eq!(c.protocol, Protocol::Grpc, "the traces variable wins");
        assert_eq!(
            c.traces_url().as_deref(),
            Some("https://traces.example/otlp/v1/traces")
        );
    }

    #[test]
    fn disabling_and_bad_values_are_named() {
        let mut c = OtelConfig {
            endpoint: Some("http://c:4318".into()),
            ..OtelConfig::default()
        };
        c.apply_env(&vars(&[("OTEL_SDK_DISABLED", "true")]))
            .unwrap();
        assert!(!c.is_on());
        let mut c = OtelConfig::default();
        c.apply_env(&vars(&[("OTEL_TRACES_EXPORTER", "none")]))
            .unwrap();
        assert!(!c.is_on());
        for (var, value) in [
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ("OTEL_TRACES_EXPORTER", "zipkin"),
            ("OTEL_TRACES_SAMPLER", "jaeger_remote"),
            ("OTEL_TRACES_SAMPLER_ARG", "half"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "10s"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "novalue"),
        ] {
            let err = OtelConfig::default()
                .apply_env(&vars(&[(var, value)]))
                .unwrap_err()
                .to_string();
            assert!(err.contains(var), "{var}: {err}");
        }
        let bad = |c: OtelConfig| c.validate().unwrap_err().to_string();
        assert!(
            bad(OtelConfig {
                sample_ratio: 1.5,
                ..Default::default()
            })
            .contains("sample_ratio")
        );
        assert!(
            bad(OtelConfig {
                max_batch: 4096,
                ..Default::default()
            })
            .contains("max_batch")
        );
        assert!(
            bad(OtelConfig {
                endpoint: Some("collector:4318".into()),
                ..Default::default()
            })
            .contains("otel.endpoint")
        );
    }
}
