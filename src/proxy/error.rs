//! The proxy's error: who caused it, whether another attempt may help, and the
//! one function that turns it into a status code and a body in the client's
//! wire format.

use axum::body::Body;
use http::{HeaderValue, Response, StatusCode};

use crate::providers::openai::{self, ErrorObject};
use crate::translate::{self, Format};

/// Who is to blame, for logs and for deciding what to try next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The request itself is wrong; no retry or fallback can fix it.
    Client,
    /// An upstream failed or refused; another attempt or target may succeed.
    Upstream,
    /// The gateway failed.
    Gateway,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    InvalidRequest,
    Unauthenticated,
    Forbidden,
    BudgetExceeded,
    ModelNotFound,
    BodyTooLarge,
    /// The body did not arrive within `server.body_read_timeout`: 408.
    BodyTimeout,
    RateLimited,
    UpstreamFailed,
    UpstreamTimeout,
    /// The node cannot govern the request right now (its disk refuses
    /// writes): 503, try another node or later.
    Unavailable,
    Internal,
}

/// An error answered to the client.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ProxyError {
    pub kind: ErrorKind,
    pub cause: Cause,
    pub message: String,
    pub param: Option<&'static str>,
    /// Seconds, for 429.
    pub retry_after: Option<u64>,
}

impl ProxyError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ProxyError {
        let cause = match kind {
            ErrorKind::InvalidRequest
            | ErrorKind::Unauthenticated
            | ErrorKind::Forbidden
            | ErrorKind::BudgetExceeded
            | ErrorKind::ModelNotFound
            | ErrorKind::BodyTooLarge
            | ErrorKind::BodyTimeout => Cause::Client,
            ErrorKind::RateLimited | ErrorKind::UpstreamFailed | ErrorKind::UpstreamTimeout => {
                Cause::Upstream
            }
            ErrorKind::Internal | ErrorKind::Unavailable => Cause::Gateway,
        };
        ProxyError {
            kind,
            cause,
            message: message.into(),
            param: None,
            retry_after: None,
        }
    }

    pub fn with_param(mut self, param: Option<&'static str>) -> ProxyError {
        self.param = param;
        self
    }

    pub fn status(&self) -> StatusCode {
        match self.kind {
            ErrorKind::InvalidRequest => StatusCode::BAD_REQUEST,
            ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::BudgetExceeded => StatusCode::PAYMENT_REQUIRED,
            ErrorKind::ModelNotFound => StatusCode::NOT_FOUND,
            ErrorKind::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            ErrorKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::UpstreamFailed => StatusCode::BAD_GATEWAY,
            ErrorKind::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The OpenAI error object for this error.
    pub fn object(&self) -> ErrorObject<'_> {
        let (kind, code) = match self.kind {
            ErrorKind::InvalidRequest => ("invalid_request_error", None),
            ErrorKind::Unauthenticated => ("authentication_error", Some("invalid_api_key")),
            ErrorKind::Forbidden => ("permission_error", Some("model_not_allowed")),
            ErrorKind::BudgetExceeded => ("budget_exceeded", Some("budget_exceeded")),
            ErrorKind::ModelNotFound => ("invalid_request_error", Some("model_not_found")),
            ErrorKind::BodyTooLarge => ("invalid_request_error", Some("request_too_large")),
            ErrorKind::BodyTimeout => ("invalid_request_error", Some("request_timeout")),
            ErrorKind::RateLimited => ("rate_limit_error", Some("rate_limit_exceeded")),
            ErrorKind::UpstreamFailed => ("upstream_error", Some("upstream_error")),
            ErrorKind::UpstreamTimeout => ("upstream_error", Some("upstream_timeout")),
            ErrorKind::Unavailable => ("server_error", Some("unavailable")),
            ErrorKind::Internal => ("server_error", None),
        };
        ErrorObject {
            message: &self.message,
            kind,
            param: self.param,
            code,
        }
    }

    pub fn into_response(self) -> Response<Body> {
        self.into_response_for(Format::OpenAi)
    }

    /// The response in the client's wire format.
    pub fn into_response_for(self, format: Format) -> Response<Body> {
        let body = translate::error_body(format, self.status().as_u16(), &self.message)
            .unwrap_or_else(|| openai::error_body(&self.object()));
        let mut resp = Response::new(Body::from(body));
        *resp.status_mut() = self.status();
        let h = resp.headers_mut();
        h.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(secs) = self.retry_after {
            h.insert(http::header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if format == Format::Bedrock {
            let name = translate::bedrock::exception_name(self.status().as_u16());
            h.insert("x-amzn-errortype", HeaderValue::from_static(name));
        }
        resp
    }
}

/// The error a request body fails with when it has not arrived within
/// `server.body_read_timeout` (the server loop wraps every body in it).
#[derive(Debug, thiserror::Error)]
#[error("the body did not arrive within {0:?} (server.body_read_timeout)")]
pub struct BodyReadTimeout(pub std::time::Duration);

/// Whether `e`, or an error it wraps, is a [`BodyReadTimeout`].
pub fn is_body_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut at = Some(e);
    while let Some(err) = at {
        if err.is::<BodyReadTimeout>() {
            return true;
        }
        at = err.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_shapes() {
        let e = ProxyError::new(ErrorKind::ModelNotFound, "model 'x' not found")
            .with_param(Some("model"));
        assert_eq!(e.status(), 404);
        assert_eq!(e.cause, Cause::Client);
        let body = openai::error_body(&e.object());
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["code"], "model_not_found");
        assert_eq!(v["error"]["param"], "model");
        assert_eq!(v["error"]["type"], "invalid_request_error");

        let mut e = ProxyError::new(ErrorKind::RateLimited, "slow down");
        e.retry_after = Some(3);
        let r = e.into_response();
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()[http::header::RETRY_AFTER], "3");
    }
}
