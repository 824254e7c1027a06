//! A client transport for the legacy HTTP+SSE MCP transport (protocol
//! 2024-11-05), which rmcp 3 no longer ships and many servers still speak.
//!
//! The client opens `GET <url>` as an event stream; the server's first event
//! (`endpoint`) names the URL to POST messages to, and every later `message`
//! event carries one JSON-RPC message from the server. Replies to our POSTs
//! arrive on the stream, not in the POST's response. The stream is read by a
//! task owned by the transport and aborted with it.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use rmcp::RoleClient;
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::Transport;
use tokio::sync::mpsc;

use crate::providers::sse::SseParser;
use crate::proxy::upstream::{HttpClient, http_client};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The most of a POST's own answer read (the real answer comes on the stream).
const MAX_POST_ANSWER: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum SseError {
    #[error("invalid URL or header: {0}")]
    Invalid(String),
    #[error("HTTP: {0}")]
    Http(String),
    #[error("the server answered {0}")]
    Status(http::StatusCode),
    #[error("the event stream ended before the server named its endpoint")]
    NoEndpoint,
    #[error("the event stream is broken: {0}")]
    Stream(String),
}

pub struct SseClientTransport {
    client: HttpClient,
    post_to: Uri,
    headers: HeaderMap,
    incoming: mpsc::Receiver<ServerJsonRpcMessage>,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for SseClientTransport {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl SseClientTransport {
    /// Opens the event stream of `url` and waits for the server's endpoint.
    pub async fn connect(url: &str, headers: &[(String, String)]) -> Result<Self, SseError> {
        let uri: Uri = url.parse().map_err(|e| SseError::Invalid(format!("{e}")))?;
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            let name =
                HeaderName::try_from(k.as_str()).map_err(|e| SseError::Invalid(e.to_string()))?;
            let value =
                HeaderValue::try_from(v.as_str()).map_err(|e| SseError::Invalid(e.to_string()))?;
            map.insert(name, value);
        }
        let client = http_client(CONNECT_TIMEOUT);
        let mut req = Request::builder()
            .method(Method::GET)
            .uri(uri.clone())
            .header(header::ACCEPT, "text/event-stream")
            .body(Full::new(Bytes::new()))
            .map_err(|e| SseError::Invalid(e.to_string()))?;
        req.headers_mut().extend(map.clone());
        let resp = client
            .request(req)
            .await
            .map_err(|e| SseError::Http(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(SseError::Status(resp.status()));
        }
        let mut events = Events {
            body: resp.into_body(),
            parser: SseParser::new(),
        };
        let endpoint = loop {
            let ev = events.next().await?.ok_or(SseError::NoEndpoint)?;
            if ev.0.as_deref() == Some("endpoint") {
                break ev.1;
            }
        };
        let post_to = resolve(&uri, endpoint.trim())?;
        let (tx, incoming) = mpsc::channel(64);
        let reader = tokio::spawn(async move {
            loop {
                match events.next().await {
                    Ok(Some((kind, data))) => {
                        if kind.as_deref().is_some_and(|k| k != "message") {
                            continue;
                        }
                        match serde_json::from_str::<ServerJsonRpcMessage>(&data) {
                            Ok(m) => {
                                if tx.send(m).await.is_err() {
                                    return;
                                }
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "unreadable message on an MCP SSE stream")
                            }
                        }
                    }
                    Ok(None) => return,
                    Err(e) => {
                        tracing::warn!(error = %e, "MCP SSE stream broke");
                        return;
                    }
                }
            }
        });
        Ok(SseClientTransport {
            client,
            post_to,
            headers: map,
            incoming,
            reader,
        })
    }
}

/// The `endpoint` event's URL, which may be relative to the stream's. An
/// absolute one must be of the stream's own origin: the messages carry the
/// server's credentials, which must not follow a server's word elsewhere.
pub fn resolve(base: &Uri, endpoint: &str) -> Result<Uri, SseError> {
    let bad = |e: String| SseError::Invalid(format!("endpoint {endpoint:?}: {e}"));
    if endpoint.starts_with("http://") || endpoint.starts_with("https://") {
        let uri: Uri = endpoint
            .parse()
            .map_err(|e: http::uri::InvalidUri| bad(e.to_string()))?;
        if uri.scheme() != base.scheme() || uri.authority() != base.authority() {
            return Err(bad("it names another origin than the event stream's".into()));
        }
        return Ok(uri);
    }
    if endpoint.starts_with("//") {
        return Err(bad("it names another origin than the event stream's".into()));
    }
    let path = if endpoint.starts_with('/') {
        endpoint.to_string()
    } else {
        let dir = base.path().rsplit_once('/').map_or("", |(d, _)| d);
        format!("{dir}/{endpoint}")
    };
    let mut parts = base.clone().into_parts();
    parts.path_and_query = Some(
        path.parse()
            .map_err(|e: http::uri::InvalidUri| bad(e.to_string()))?,
    );
    Uri::from_parts(parts).map_err(|e| bad(e.to_string()))
}

/// The events of a response body: (event type, data).
struct Events {
    body: Incoming,
    parser: SseParser,
}

impl Events {
    async fn next(&mut self) -> Result<Option<(Option<String>, String)>, SseError> {
        loop {
            if let Some(ev) = self.parser.next_event() {
                match ev.data() {
                    Some(data) => return Ok(Some((ev.event_type(), data))),
                    // A comment or keep-alive.
                    None => continue,
                }
            }
            match self.body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.parser
                            .push(&data)
                            .map_err(|e| SseError::Stream(e.to_string()))?;
                    }
                }
                Some(Err(e)) => return Err(SseError::Stream(e.to_string())),
                None => return Ok(None),
            }
        }
    }
}

impl Transport<RoleClient> for SseClientTransport {
    type Error = SseError;

    fn send(
        &mut self,
        item: ClientJsonRpcMessage,
    ) -> impl Future<Output = Result<(), SseError>> + Send + 'static {
        let client = self.client.clone();
        let uri = self.post_to.clone();
        let headers = self.headers.clone();
        async move {
            let body = serde_json::to_vec(&item).map_err(|e| SseError::Invalid(e.to_string()))?;
            let mut req = Request::builder()
                .method(Method::POST)
                .uri(uri)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::from(body)))
                .map_err(|e| SseError::Invalid(e.to_string()))?;
            req.headers_mut().extend(headers);
            let resp = client
                .request(req)
                .await
                .map_err(|e| SseError::Http(e.to_string()))?;
            let status = resp.status();
            // The answer travels on the event stream; drain what the POST's
            // body holds, up to a bound (past it the connection is dropped
            // rather than read further).
            let mut body = resp.into_body();
            let mut drained = 0usize;
            while drained <= MAX_POST_ANSWER
                && let Some(Ok(frame)) = body.frame().await
            {
                drained += frame.data_ref().map_or(0, Bytes::len);
            }
            if status.is_success() {
                Ok(())
            } else {
                Err(SseError::Status(status))
            }
        }
    }

    fn receive(&mut self) -> impl Future<Output = Option<ServerJsonRpcMessage>> + Send {
        self.incoming.recv()
    }

    async fn close(&mut self) -> Result<(), SseError> {
        self.reader.abort();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_resolve_against_the_stream_url() {
        let base: Uri = "http://127.0.0.1:9/mcp/sse?x=1".parse().unwrap();
        assert_eq!(
            resolve(&base, "/messages?sessionId=a").unwrap().to_string(),
            "http://127.0.0.1:9/messages?sessionId=a"
        );
        assert_eq!(
            resolve(&base, "messages?sessionId=a").unwrap().to_string(),
            "http://127.0.0.1:9/mcp/messages?sessionId=a"
        );
        assert_eq!(
            resolve(&base, "http://127.0.0.1:9/m").unwrap().to_string(),
            "http://127.0.0.1:9/m"
        );
        for elsewhere in [
            "http://127.0.0.1:10/m",
            "https://127.0.0.1:9/m",
            "http://evil.example/m",
            "//evil.example/m",
        ] {
            assert!(resolve(&base, elsewhere).is_err(), "{elsewhere}");
        }
    }
}
