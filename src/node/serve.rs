//! The HTTP server loop: hyper connections with the limits that keep one
//! client from exhausting the node — a cap on open connections (past it,
//! new ones wait in the kernel's backlog), a deadline for each request's
//! headers (slowloris), a cap on requests in flight (past it, 503 at once;
//! a streamed answer holds its place until its body ends), and graceful
//! shutdown of every connection.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::proxy::error::BodyReadTimeout;

/// What one node accepts of its clients at once.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    /// How long a request's body may take to arrive, from its headers on.
    pub body_read_timeout: Duration,
    pub max_in_flight: usize,
}

/// A response body that holds a place among the requests in flight until
/// it ends or is dropped.
/// A request body that fails once its time is up: a client cannot hold a
/// connection, and the request's place, by sending its body slowly.
struct Timed {
    inner: Incoming,
    deadline: std::pin::Pin<Box<tokio::time::Sleep>>,
    limit: Duration,
}

impl http_body::Body for Timed {
    type Data = bytes::Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        use std::task::Poll;
        if let Poll::Ready(frame) = std::pin::Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(Box::new(BodyReadTimeout(self.limit)))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

struct Holding {
    inner: Body,
    _place: tokio::sync::OwnedSemaphorePermit,
}

impl http_body::Body for Holding {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// `app` refusing (503) what comes past `max` requests in flight.
fn bounded(app: Router, max: usize) -> Router {
    let places = Arc::new(tokio::sync::Semaphore::new(max));
    app.layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| {
            let places = places.clone();
            async move {
                let Ok(place) = places.try_acquire_owned() else {
                    return overloaded();
                };
                let resp = next.run(req).await;
                resp.map(|inner| {
                    Body::new(Holding {
                        inner,
                        _place: place,
                    })
                })
            }
        },
    ))
}

fn overloaded() -> axum::response::Response {
    let mut r = axum::response::Response::new(Body::from(
        r#"{"error":{"message":"this node is serving as many requests as it may (server.max_in_flight); retry shortly","type":"server_error","code":"overloaded"}}"#,
    ));
    *r.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r.headers_mut().insert(
        http::header::RETRY_AFTER,
        http::HeaderValue::from_static("1"),
    );
    r
}

/// Serves `app` on `listener` until `stop` resolves; then stops accepting,
/// asks every connection to finish its requests, and returns once they have.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    stop: impl Future<Output = ()>,
) {
    let app = bounded(app, limits.max_in_flight);
    let permits = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    tokio::pin!(stop);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            () = &mut stop => break,
        };
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    // Out of file descriptors, most likely: let some close.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let _ = tcp.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone().map_request(
            move |req: http::Request<Incoming>| {
                req.map(|inner| {
                    Body::new(Timed {
                        inner,
                        deadline: Box::pin(tokio::time::sleep(limits.body_read_timeout)),
                        limit: limits.body_read_timeout,
                    })
                })
            },
        ));
        let conn = builder
            .serve_connection_with_upgrades(TokioIo::new(tcp), service)
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::trace!(error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
