//! One upstream attempt: build the HTTP request, send it with deadlines, and
//! classify what came back into what the pipeline should do next.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::providers::aws::{Auth, sigv4};
use crate::providers::openai;
use crate::providers::presets::Format;
use crate::routing::Target;

pub type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Largest upstream body (non-streaming) the gateway will hold.
const MAX_UPSTREAM_BODY: usize = 64 * 1024 * 1024;

/// An HTTP/1.1 + HTTP/2 client with rustls on the `ring` provider and the
/// Mozilla root set, pooling connections per host.
pub fn http_client(connect_timeout: Duration) -> HttpClient {
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(1024)
        .build(https_connector(connect_timeout))
}

/// HTTP/1.1 and HTTP/2 over TCP or TLS (trusting the built-in web roots).
pub fn https_connector(connect_timeout: Duration) -> HttpsConnector<HttpConnector> {
    let mut http = HttpConnector::new();
    http.set_connect_timeout(Some(connect_timeout));
    http.set_nodelay(true);
    http.enforce_http(false);
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("ring supports the default protocol versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http)
}

/// Why an attempt failed.
#[derive(Debug, Clone)]
pub enum Failure {
    /// Could not connect (refused, DNS, TLS, connect timeout).
    Connect(String),
    /// The connection broke while sending or receiving.
    Network(String),
    FirstByteTimeout(Duration),
    IdleTimeout(Duration),
    /// A stream ended or errored before any content was sent to the client.
    StreamBroken(String),
    /// The upstream answered with a non-success status.
    Status {
        status: StatusCode,
        body: Bytes,
        content_type: Option<HeaderValue>,
        retry_after: Option<Duration>,
    },
}

/// What to do after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Same target again after a backoff (5xx, network, timeouts).
    Retry,
    /// Rate-limited key: cool it down for every request, try another key now.
    RotateKey(Duration),
    /// Key rejected (401/403): skip it for the rest of this request.
    DropKey,
    /// This target cannot serve the request (404): go to the next fallback.
    NextTarget,
    /// The request is at fault (400, 413, 422, ...): answer the client with it.
    GiveUp,
}

/// Cool-down for a 429 that did not say how long to wait.
pub const DEFAULT_COOL_DOWN: Duration = Duration::from_secs(1);

impl Failure {
    pub fn next(&self) -> Next {
        match self {
            Failure::Connect(_)
            | Failure::Network(_)
            | Failure::FirstByteTimeout(_)
            | Failure::IdleTimeout(_)
            | Failure::StreamBroken(_) => Next::Retry,
            Failure::Status {
                status,
                retry_after,
                ..
            } => match status.as_u16() {
                429 => Next::RotateKey(retry_after.unwrap_or(DEFAULT_COOL_DOWN)),
                401 | 403 => Next::DropKey,
                404 => Next::NextTarget,
                408 | 409 | 500..=599 => Next::Retry,
                _ => Next::GiveUp,
            },
        }
    }

    /// Label for metrics.
    pub fn cause(&self) -> &'static str {
        match self {
            Failure::Connect(_) => "connect",
            Failure::Network(_) => "network",
            Failure::FirstByteTimeout(_) => "first_byte_timeout",
            Failure::IdleTimeout(_) => "idle_timeout",
            Failure::StreamBroken(_) => "stream_broken",
            Failure::Status { status, .. } => match status.as_u16() {
                429 => "status_429",
                401 | 403 => "status_auth",
                400..=499 => "status_4xx",
                _ => "status_5xx",
            },
        }
    }

    pub fn is_timeout(&self) -> bool {
        matches!(self, Failure::FirstByteTimeout(_) | Failure::IdleTimeout(_))
    }

    /// A message for the client and the log; never contains a secret.
    pub fn describe(&self, provider: &str) -> String {
        match self {
            Failure::Connect(e) => format!("cannot connect to provider '{provider}': {e}"),
            Failure::Network(e) => format!("connection to provider '{provider}' failed: {e}"),
            Failure::FirstByteTimeout(d) => {
                format!("provider '{provider}' did not answer within {d:?}")
            }
            Failure::IdleTimeout(d) => {
                format!("provider '{provider}' sent nothing for {d:?}")
            }
            Failure::StreamBroken(e) => format!("stream from provider '{provider}' broke: {e}"),
            Failure::Status { status, body, .. } => {
                let detail = openai::error_message(body).unwrap_or_else(|| {
                    String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned()
                });
                let detail = openai::redact(&detail);
                format!("provider '{provider}' answered {status}: {detail}")
            }
        }
    }
}

/// The access token of a Vertex key, exchanged at the token endpoint with
/// the provider's client when the kept one nears expiry.
async fn vertex_token(
    client: &HttpClient,
    key: &crate::providers::vertex::Key,
    timeout: Duration,
) -> Result<String, Failure> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let fetch = |url: String, form: String| async move {
        let req = Request::post(url)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from(form)))
            .map_err(|e| e.to_string())?;
        let resp = tokio::time::timeout(timeout, client.request(req))
            .await
            .map_err(|_| format!("no answer within {timeout:?}"))?
            .map_err(|e| error_chain(&e))?;
        let body =
            http_body_util::Limited::new(resp.into_body(), crate::providers::vertex::MAX_JSON)
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
        Ok(body.to_vec())
    };
    key.token(now, fetch)
        .await
        .map_err(|e| Failure::Network(format!("Vertex access token: {e}")))
}

/// Signs `req` for Bedrock (SigV4, service `bedrock`), as it will be sent:
/// its host, path, `content-type`, the time and the session token.
fn sign(
    req: &mut Request<Full<Bytes>>,
    credentials: &sigv4::Credentials,
    region: &str,
    payload_hash: &str,
) -> Result<(), Failure> {
    let host = req
        .uri()
        .authority()
        .map(|a| a.as_str().to_string())
        .ok_or_else(|| Failure::Connect("the Bedrock URL has no host".into()))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let date = sigv4::amz_date(now);
    let path = req.uri().path().to_string();
    let h = req.headers_mut();
    let bad = |e: http::header::InvalidHeaderValue| Failure::Connect(format!("cannot sign: {e}"));
    h.insert(header::HOST, HeaderValue::from_str(&host).map_err(bad)?);
    h.insert("x-amz-date", HeaderValue::from_str(&date).map_err(bad)?);
    if let Some(t) = &credentials.session_token {
        let mut v = HeaderValue::from_str(t.expose()).map_err(bad)?;
        v.set_sensitive(true);
        h.insert("x-amz-security-token", v);
    }
    let content_type = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let token = credentials.session_token.as_ref().map(|t| t.expose());
    let mut signed: Vec<(&str, &str)> = vec![
        ("host", &host),
        ("x-amz-date", &date),
        ("content-type", &content_type),
    ];
    if let Some(t) = token {
        signed.push(("x-amz-security-token", t));
    }
    let authorization = sigv4::authorization(
        &sigv4::Signable {
            method: "POST",
            path: &path,
            query: &[],
            headers: &signed,
            payload_hash,
        },
        credentials,
        region,
        "bedrock",
        &date,
    );
    let mut v = HeaderValue::from_str(&authorization).map_err(bad)?;
    v.set_sensitive(true);
    req.headers_mut().insert(header::AUTHORIZATION, v);
    Ok(())
}

/// One attempt's request, as the provider's wire format has it.
pub struct Outgoing<'a> {
    pub path: &'a str,
    /// The client's own format headers (`anthropic-version`, ...).
    pub forwarded: &'a [(HeaderName, HeaderValue)],
    pub body: Bytes,
    pub stream: bool,
    /// Sent as `traceparent`.
    pub trace: Option<crate::observability::otel::SpanContext>,
}

/// Sends one attempt and waits for response headers. Non-success statuses are
/// read whole and returned as [`Failure::Status`]. A Vertex service
/// account's token refused with 401 (expired early, revoked) is forgotten
/// and the request sent once more with a new one.
pub async fn send(
    client: &HttpClient,
    target: &Target,
    key: Option<usize>,
    out: Outgoing<'_>,
) -> Result<Response<Incoming>, Failure> {
    let again = Outgoing {
        body: out.body.clone(),
        ..out
    };
    match send_once(client, target, key, out).await {
        Err(Failure::Status { status, .. })
            if status == StatusCode::UNAUTHORIZED
                && key.is_some_and(|k| {
                    target.provider.keys[k]
                        .vertex
                        .as_ref()
                        .is_some_and(|v| v.refreshes())
                }) =>
        {
            send_once(client, target, key, again).await
        }
        other => other,
    }
}

async fn send_once(
    client: &HttpClient,
    target: &Target,
    key: Option<usize>,
    out: Outgoing<'_>,
) -> Result<Response<Incoming>, Failure> {
    let Outgoing {
        path,
        forwarded,
        body,
        stream,
        trace,
    } = out;
    let p = &target.provider;
    let aws = key.and_then(|k| p.keys[k].aws.as_ref());
    let vertex = key.and_then(|k| p.keys[k].vertex.as_ref());
    let url = match (aws, vertex) {
        (Some(a), _) => format!("{}{path}", a.base_url),
        (_, Some(v)) => v.url(&target.model, target.wire == Format::Anthropic, stream),
        _ => p.url(path, &target.model),
    };
    let google_token = match vertex {
        Some(v) => Some(vertex_token(client, v, p.upstream.first_byte_timeout).await?),
        None => None,
    };
    let signed = aws.and_then(|a| match &a.auth {
        Auth::Keys(c) => Some((c, a.region.as_str(), sigv4::sha256_hex(&body))),
        Auth::Bearer(_) => None,
    });
    let mut req = Request::post(url)
        .body(Full::new(body))
        .map_err(|e| Failure::Connect(format!("invalid upstream URL: {e}")))?;
    let h = req.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(
        header::ACCEPT,
        HeaderValue::from_static(match (stream, target.wire) {
            (true, Format::Bedrock) => "application/vnd.amazon.eventstream",
            (true, _) => "text/event-stream",
            (false, _) => "application/json",
        }),
    );
    h.insert(
        header::USER_AGENT,
        HeaderValue::from_static(concat!("tollgate/", env!("CARGO_PKG_VERSION"))),
    );
    if let Some(token) = &google_token {
        let mut v = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|e| {
            Failure::Connect(format!("the Vertex token is not a header value: {e}"))
        })?;
        v.set_sensitive(true);
        h.insert(header::AUTHORIZATION, v);
    } else if let Some(k) = key
        && signed.is_none()
    {
        h.insert(p.auth_header(), p.keys[k].header.clone());
    }
    // The client's own format headers first: the provider's config wins.
    for (name, value) in forwarded.iter().chain(&p.headers) {
        h.insert(name.clone(), value.clone());
    }
    // The attempt's span (or, with tracing off, the client's own context).
    if let Some(t) = trace {
        h.insert("traceparent", t.header());
    }
    if let Some((credentials, region, payload_hash)) = signed {
        sign(&mut req, credentials, region, &payload_hash)?;
    }
    let timeout = p.upstream.first_byte_timeout;
    let resp = match tokio::time::timeout(timeout, client.request(req)).await {
        Err(_) => return Err(Failure::FirstByteTimeout(timeout)),
        Ok(Err(e)) if e.is_connect() => return Err(Failure::Connect(error_chain(&e))),
        Ok(Err(e)) => return Err(Failure::Network(error_chain(&e))),
        Ok(Ok(r)) => r,
    };
    if resp.status().is_success() {
        return Ok(resp);
    }
    let status = resp.status();
    if status == StatusCode::UNAUTHORIZED
        && let Some(v) = vertex
    {
        v.forget().await;
    }
    let retry_after = retry_after(resp.headers());
    let content_type = resp.headers().get(header::CONTENT_TYPE).cloned();
    let body = read_body(resp.into_body(), p.upstream.idle_timeout)
        .await
        .unwrap_or_default();
    Err(Failure::Status {
        status,
        body,
        content_type,
        retry_after,
    })
}

/// Reads a whole body, each frame within `idle`.
pub async fn read_body(mut body: Incoming, idle: Duration) -> Result<Bytes, Failure> {
    let mut out = BytesMut::new();
    loop {
        match tokio::time::timeout(idle, body.frame()).await {
            Err(_) => return Err(Failure::IdleTimeout(idle)),
            Ok(None) => return Ok(out.freeze()),
            Ok(Some(Err(e))) => return Err(Failure::Network(error_chain(&e))),
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    if out.len() + data.len() > MAX_UPSTREAM_BODY {
                        return Err(Failure::Network(format!(
                            "response body exceeds {MAX_UPSTREAM_BODY} bytes"
                        )));
                    }
                    if out.is_empty() {
                        // Most bodies arrive in one frame: keep it without copying.
                        out = BytesMut::from(data);
                    } else {
                        out.extend_from_slice(&data);
                    }
                }
            }
        }
    }
}

/// The longest an upstream's retry hint may cool a key down: a hint past it
/// (a bug, or a hostile upstream) is read as this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

/// `retry-after-ms` (OpenAI), then `retry-after` as seconds or an HTTP date,
/// clamped to [`MAX_RETRY_AFTER`]; numbers of any size never panic.
pub fn retry_after(h: &HeaderMap) -> Option<Duration> {
    let clamp = |d: Duration| d.min(MAX_RETRY_AFTER);
    if let Some(ms) = h
        .get("retry-after-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|ms| ms.is_finite() && *ms >= 0.0)
    {
        let secs = (ms / 1000.0).min(MAX_RETRY_AFTER.as_secs_f64());
        return Some(clamp(Duration::from_secs_f64(secs)));
    }
    let v = h.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(clamp(Duration::from_secs(secs)));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(clamp(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    ))
}

/// An error and its sources on one line; inspected by type elsewhere, only printed here.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        let msg = inner.to_string();
        if !s.contains(&msg) {
            s.push_str(": ");
            s.push_str(&msg);
        }
        cur = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> Failure {
        Failure::Status {
            status: StatusCode::from_u16(code).unwrap(),
            body: Bytes::new(),
            content_type: None,
            retry_after: None,
        }
    }

    #[test]
    fn failures_map_to_next_steps() {
        assert_eq!(status(500).next(), Next::Retry);
        assert_eq!(status(503).next(), Next::Retry);
        assert_eq!(status(408).next(), Next::Retry);
        assert_eq!(status(429).next(), Next::RotateKey(DEFAULT_COOL_DOWN));
        assert_eq!(status(401).next(), Next::DropKey);
        assert_eq!(status(403).next(), Next::DropKey);
        assert_eq!(status(404).next(), Next::NextTarget);
        assert_eq!(status(400).next(), Next::GiveUp);
        assert_eq!(status(422).next(), Next::GiveUp);
        assert_eq!(Failure::Network("reset".into()).next(), Next::Retry);
        assert_eq!(
            Failure::IdleTimeout(Duration::from_secs(1)).next(),
            Next::Retry
        );
        let limited = Failure::Status {
            status: StatusCode::TOO_MANY_REQUESTS,
            body: Bytes::new(),
            content_type: None,
            retry_after: Some(Duration::from_secs(7)),
        };
        assert_eq!(limited.next(), Next::RotateKey(Duration::from_secs(7)));
    }

    #[test]
    fn retry_after_forms() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(header::RETRY_AFTER, HeaderValue::from_static("3"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert("retry-after-ms", HeaderValue::from_static("250"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(250)));
        let mut h = HeaderMap::new();
        let later = std::time::SystemTime::now() + Duration::from_secs(120);
        h.insert(
            header::RETRY_AFTER,
            HeaderValue::from_str(&httpdate::fmt_http_date(later)).unwrap(),
        );
        let d = retry_after(&h).unwrap();
        assert!(
            d > Duration::from_secs(100) && d <= Duration::from_secs(120),
            "{d:?}"
        );
    }

    #[test]
    fn hostile_retry_hints_are_clamped_and_never_panic() {
        for (name, value) in [
            ("retry-after-ms", "1e300"),
            ("retry-after-ms", "18446744073709551615000"),
            ("retry-after", "18446744073709551615"),
            ("retry-after", "Fri, 31 Dec 9999 23:59:59 GMT"),
        ] {
            let mut h = HeaderMap::new();
            h.insert(name, HeaderValue::from_static(value));
            assert_eq!(retry_after(&h), Some(MAX_RETRY_AFTER), "{name}: {value}");
        }
        let mut h = HeaderMap::new();
        h.insert("retry-after-ms", HeaderValue::from_static("NaN"));
        assert_eq!(retry_after(&h), None);
    }
}
