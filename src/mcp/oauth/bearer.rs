//! The streamable-HTTP client of an OAuth connection: rmcp's reqwest
//! client, with the connection's current access token on every request
//! (swapped in place when it is refreshed, so the connection stays open)
//! and a note when the server rejects it (401), so the owner can refresh or
//! ask for a new authorisation.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;
use futures_util::stream::BoxStream;
use http::{HeaderName, HeaderValue};
use rmcp::model::ClientJsonRpcMessage;
use rmcp::transport::streamable_http_client::{
    SseError, StreamableHttpClient, StreamableHttpError, StreamableHttpPostResponse,
    StreamableHttpResponseLimits,
};
use sse_stream::Sse;

/// The token a connection presents, shared with whoever refreshes it.
pub struct Presented {
    current: ArcSwap<String>,
    rejected: AtomicBool,
}

impl Presented {
    pub fn new(token: String) -> Arc<Presented> {
        Arc::new(Presented {
            current: ArcSwap::from_pointee(token),
            rejected: AtomicBool::new(false),
        })
    }

    /// Presents `token` from the next request on.
    pub fn replace(&self, token: String) {
        if **self.current.load() != token {
            self.current.store(Arc::new(token));
            self.rejected.store(false, Ordering::Relaxed);
        }
    }

    /// Whether the server answered 401 to the token presented now.
    pub fn rejected(&self) -> bool {
        self.rejected.load(Ordering::Relaxed)
    }

    fn header(&self) -> Option<String> {
        Some((**self.current.load()).clone())
    }

    fn note<T, E>(&self, r: &Result<T, StreamableHttpError<E>>)
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        if matches!(r, Err(StreamableHttpError::AuthRequired(_))) {
            self.rejected.store(true, Ordering::Relaxed);
        }
    }
}

/// rmcp's reqwest client presenting [`Presented`]'s token.
#[derive(Clone)]
pub struct Bearer {
    pub inner: reqwest_rmcp::Client,
    pub token: Arc<Presented>,
}

type Failure = StreamableHttpError<reqwest_rmcp::Error>;

impl StreamableHttpClient for Bearer {
    type Error = reqwest_rmcp::Error;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        _auth: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<StreamableHttpPostResponse, Failure> {
        let r = self
            .inner
            .post_message(
                uri,
                message,
                session_id,
                self.token.header(),
                custom_headers,
            )
            .await;
        self.token.note(&r);
        r
    }

    async fn post_message_with_response_limits(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        _auth: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        limits: StreamableHttpResponseLimits,
    ) -> Result<StreamableHttpPostResponse, Failure> {
        let r = self
            .inner
            .post_message_with_response_limits(
                uri,
                message,
                session_id,
                self.token.header(),
                custom_headers,
                limits,
            )
            .await;
        self.token.note(&r);
        r
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        _auth: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<(), Failure> {
        let r = self
            .inner
            .delete_session(uri, session_id, self.token.header(), custom_headers)
            .await;
        self.token.note(&r);
        r
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        _auth: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<BoxStream<'static, Result<Sse, SseError>>, Failure> {
        let r = self
            .inner
            .get_stream(
                uri,
                session_id,
                last_event_id,
                self.token.header(),
                custom_headers,
            )
            .await;
        self.token.note(&r);
        r
    }

    async fn get_stream_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        _auth: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<BoxStream<'static, Result<Sse, SseError>>, Failure> {
        let r = self
            .inner
            .get_stream_with_max_sse_event_size(
                uri,
                session_id,
                last_event_id,
                self.token.header(),
                custom_headers,
                max_sse_event_size,
            )
            .await;
        self.token.note(&r);
        r
    }
}
