//! The exporter task: takes spans off the queue, batches them and sends each
//! batch to the collector, one export at a time, each bounded by
//! `otel.export_timeout`. A failed export is counted and its spans are not
//! sent again (the queue keeps filling meanwhile and drops past its bound).

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::sync::mpsc;

use super::proto::{self, Resource};
use super::{Counters, Queued, SpanData, Value};
use crate::config::otel::{OtelConfig, Protocol};
use crate::proxy::upstream::{HttpClient, https_connector};

/// The gRPC method every OTLP/gRPC collector serves.
const GRPC_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
/// The most of a collector's answer read (its status is all that matters).
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Where and how batches go.
pub struct Target {
    pub url: http::Uri,
    pub protocol: Protocol,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl Target {
    pub fn of(config: &OtelConfig, url: &str) -> Result<Target, String> {
        let mut uri: http::Uri = url.parse().map_err(|e| format!("not a URL: {e}"))?;
        if config.protocol == Protocol::Grpc {
            let mut parts = uri.into_parts();
            parts.path_and_query = Some(http::uri::PathAndQuery::from_static(GRPC_PATH));
            uri = http::Uri::from_parts(parts).map_err(|e| e.to_string())?;
        }
        let headers = config
            .headers
            .iter()
            .map(|(k, v)| {
                let name = HeaderName::from_bytes(k.as_bytes()).map_err(|e| e.to_string())?;
                let value = HeaderValue::from_str(v.expose()).map_err(|e| e.to_string())?;
                Ok((name, value))
            })
            .collect::<Result<_, String>>()?;
        Ok(Target {
            url: uri,
            protocol: config.protocol,
            headers,
        })
    }
}

pub struct Exporter {
    target: Target,
    client: HttpClient,
    resource: Resource,
    max_batch: usize,
    interval: Duration,
    timeout: Duration,
    counters: Counters,
}

impl Exporter {
    pub fn new(target: Target, config: &OtelConfig, node: &str, counters: Counters) -> Exporter {
        let mut builder = Client::builder(TokioExecutor::new());
        builder.pool_idle_timeout(Duration::from_secs(90));
        // gRPC is HTTP/2 only; over plain TCP that is prior knowledge.
        builder.http2_only(target.protocol == Protocol::Grpc);
        let client = builder.build(https_connector(config.export_timeout));
        let mut attributes = vec![
            (
                "service.name".to_string(),
                Value::from(config.service_name.clone()),
            ),
            (
                "service.version".to_string(),
                env!("CARGO_PKG_VERSION").into(),
            ),
            (
                "service.instance.id".to_string(),
                Value::from(node.to_string()),
            ),
            ("telemetry.sdk.name".to_string(), "tollgate".into()),
            ("telemetry.sdk.language".to_string(), "rust".into()),
        ];
        for (k, v) in &config.resource_attributes {
            match attributes.iter_mut().find(|(have, _)| have == k) {
                Some(slot) => slot.1 = Value::from(v.clone()),
                None => attributes.push((k.clone(), Value::from(v.clone()))),
            }
        }
        Exporter {
            target,
            client,
            resource: Resource {
                attributes,
                scope_name: "tollgate",
                scope_version: env!("CARGO_PKG_VERSION"),
            },
            max_batch: config.max_batch,
            interval: config.export_interval,
            timeout: config.export_timeout,
            counters,
        }
    }

    async fn export(&self, batch: &mut Vec<SpanData>) {
        if batch.is_empty() {
            return;
        }
        let body = proto::export_request(&self.resource, batch);
        let n = batch.len() as u64;
        batch.clear();
        match tokio::time::timeout(self.timeout, self.send(body)).await {
            Ok(Ok(())) => self.counters.exported.inc_by(n),
            Ok(Err(e)) => {
                self.counters.failed.inc_by(n);
                tracing::debug!(error = %e, spans = n, "OpenTelemetry export failed");
            }
            Err(_) => {
                self.counters.failed.inc_by(n);
                tracing::debug!(timeout = ?self.timeout, spans = n, "OpenTelemetry export timed out");
            }
        }
    }

    async fn send(&self, message: Vec<u8>) -> Result<(), String> {
        let grpc = self.target.protocol == Protocol::Grpc;
        let body = if grpc {
            // A gRPC message: uncompressed flag, big-endian length, bytes.
            let mut framed = Vec::with_capacity(5 + message.len());
            framed.push(0);
            framed.extend_from_slice(&(message.len() as u32).to_be_bytes());
            framed.extend_from_slice(&message);
            framed
        } else {
            message
        };
        let mut req = Request::post(self.target.url.clone())
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        let h = req.headers_mut();
        for (k, v) in &self.target.headers {
            h.insert(k.clone(), v.clone());
        }
        if grpc {
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/grpc"),
            );
            h.insert(header::TE, HeaderValue::from_static("trailers"));
        } else {
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-protobuf"),
            );
        }
        h.insert(
            header::USER_AGENT,
            HeaderValue::from_static(concat!("tollgate/", env!("CARGO_PKG_VERSION"))),
        );
        let resp = self.client.request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status();
        if !status.is_success() {
            return Err(format!("the collector answered {status}"));
        }
        if !grpc {
            return Ok(());
        }
        // A gRPC status is in the trailers, or in the headers of a
        // trailers-only answer.
        let grpc_status = |m: &http::HeaderMap| {
            m.get("grpc-status")
                .and_then(|v| v.to_str().ok())
                .map(|s| (s.to_string(), m.get("grpc-message").cloned()))
        };
        let mut seen = grpc_status(resp.headers());
        if seen.is_none() {
            let collected = Limited::new(resp.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|e| e.to_string())?;
            seen = collected.trailers().and_then(grpc_status);
        }
        match seen {
            Some((code, _)) if code == "0" => Ok(()),
            Some((code, message)) => Err(format!(
                "gRPC status {code}: {}",
                message.as_ref().and_then(|m| m.to_str().ok()).unwrap_or("")
            )),
            None => Err("the collector's answer has no grpc-status".into()),
        }
    }
}

/// Batches spans from `rx` and exports them until every sender is gone.
pub async fn run(exporter: Exporter, mut rx: mpsc::Receiver<Queued>) {
    let mut batch: Vec<SpanData> = Vec::with_capacity(exporter.max_batch);
    loop {
        let Some(first) = rx.recv().await else {
            exporter.export(&mut batch).await;
            return;
        };
        let mut flushed = None;
        match first {
            Queued::Span(s) => batch.push(*s),
            Queued::Flush(done) => flushed = Some(done),
        }
        if flushed.is_none() {
            // Gather until the batch is full or the interval since its first span is up.
            let deadline = tokio::time::sleep(exporter.interval);
            tokio::pin!(deadline);
            while batch.len() < exporter.max_batch {
                tokio::select! {
                    next = rx.recv() => match next {
                        Some(Queued::Span(s)) => batch.push(*s),
                        Some(Queued::Flush(done)) => {
                            flushed = Some(done);
                            break;
                        }
                        None => break,
                    },
                    () = &mut deadline => break,
                }
            }
        }
        if let Some(done) = flushed {
            // Everything queued before the flush was asked for.
            while let Ok(Queued::Span(s)) = rx.try_recv() {
                batch.push(*s);
                if batch.len() >= exporter.max_batch {
                    exporter.export(&mut batch).await;
                }
            }
            exporter.export(&mut batch).await;
            let _ = done.send(());
        } else {
            exporter.export(&mut batch).await;
        }
    }
}
