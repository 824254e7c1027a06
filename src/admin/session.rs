//! Logging in to the dashboard: `POST /api/session` trades the admin token
//! for a session cookie, `GET` tells the page whether it holds one (and its
//! CSRF token), `DELETE` logs out on every live node. The admin API accepts
//! a valid session in place of the bearer token; writes made with one must
//! carry its CSRF token ([`crate::session`]).

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use serde_json::json;

use super::tokens::{Principal, permitted};
use super::{AdminState, bearer, error, token_is};
use crate::governance::objects::AdminToken;
use crate::session::{Revocation, Session, Sessions};

pub fn routes() -> Router<AdminState> {
    Router::new().route("/api/session", post(login).get(current).delete(logout))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    token: String,
}

/// Whether the browser reached the node over HTTPS (directly or through a
/// proxy that says so), so the cookie may be marked `Secure`.
fn over_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.eq_ignore_ascii_case("https"))
}

fn session_answer(s: &AdminState, session: &Session, who: &Principal) -> Response {
    let mut r = Json(json!({
        "csrf": s.sessions.csrf(session),
        "expires_at": session.expires_ms,
        "node": format!("{:016x}", s.governance.node()),
        "token": who.name,
        "role": who.role,
    }))
    .into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

async fn login(
    State(s): State<AdminState>,
    headers: HeaderMap,
    body: Result<Json<Login>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let now = s.governance.now_ms();
    if let Some(retry) = s.sessions.login_throttled(now) {
        let mut r = error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_exceeded",
            "too many failed logins on this node: try again in a minute",
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry));
        return r;
    }
    let Json(login) = match body {
        Ok(b) => b,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                format!("send {{\"token\": \"<admin token>\"}}: {}", e.body_text()),
            );
        }
    };
    let Some(who) = principal_for(&s, &login.token) else {
        s.sessions.login_failed(now);
        return error(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "wrong admin token",
        );
    };
    let (session, value) = s.sessions.issue(now, who.token.as_deref().unwrap_or(""));
    let mut r = session_answer(&s, &session, &who);
    let cookie = s.sessions.cookie(&value, over_https(&headers));
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).expect("cookies are ASCII"),
    );
    r
}

async fn current(State(s): State<AdminState>, headers: HeaderMap) -> Response {
    let session = s.sessions.from_headers(&headers, s.governance.now_ms());
    match session.and_then(|session| Some((principal_of(&s, &session)?, session))) {
        Some((who, session)) => session_answer(&s, &session, &who),
        None => error(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "not logged in",
        ),
    }
}

async fn logout(State(s): State<AdminState>, headers: HeaderMap) -> Response {
    let now = s.governance.now_ms();
    let Some(session) = s.sessions.from_headers(&headers, now) else {
        return error(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "not logged in",
        );
    };
    if !s.sessions.csrf_ok(&session, &headers) {
        return csrf_refused();
    }
    s.sessions.revoke(session.id, session.expires_ms, now);
    if let Some(cluster) = &s.cluster {
        let revocation = Revocation::of(&session);
        let (_, missing) = cluster
            .ask_peers::<_, bool>("session_revoke", |_| Some(&revocation))
            .await;
        if !missing.is_empty() {
            tracing::warn!(
                ?missing,
                "a logout could not reach every node: those accept the session until it expires"
            );
        }
    }
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&Sessions::removal_cookie(over_https(&headers)))
            .expect("cookies are ASCII"),
    );
    r
}

fn csrf_refused() -> Response {
    error(
        StatusCode::FORBIDDEN,
        "csrf_error",
        "a write made with a dashboard session must carry its X-CSRF-Token",
    )
}

/// The admin API's gate: the bootstrap token, a named admin token, or a
/// valid session (whose writes carry its CSRF token); then the role's
/// rules ([`permitted`]). A write that succeeds goes to the audit log
/// with its [`Principal`]; a read carries the principal on.
/// Fails closed: without a token (or with an empty one, which config
/// refuses anyway) no bearer passes.
pub async fn authorize(s: &AdminState, mut req: Request, next: Next) -> Response {
    let headers = req.headers();
    let (principal, session) = if let Some(p) = bearer(headers).and_then(|b| principal_for(s, b)) {
        (p, None)
    } else if let Some(session) = s.sessions.from_headers(headers, s.governance.now_ms()) {
        match principal_of(s, &session) {
            Some(p) => (p, Some(session)),
            None => {
                return error(
                    StatusCode::UNAUTHORIZED,
                    "authentication_error",
                    "the admin token this session was opened with was revoked: log in again",
                );
            }
        }
    } else {
        return error(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "missing or wrong admin token",
        );
    };
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if let Some(session) = &session
        && !safe
        && !s.sessions.csrf_ok(session, req.headers())
    {
        return csrf_refused();
    }
    if let Err(why) = permitted(principal.role, req.method(), req.uri().path()) {
        return error(StatusCode::FORBIDDEN, "permission_error", why);
    }
    if safe {
        req.extensions_mut().insert(principal);
        return next.run(req).await;
    }
    super::audit::recorded(s, principal, req, next).await
}

/// Who presents `given` as an admin token: the bootstrap token, or a live
/// named one.
fn principal_for(s: &AdminState, given: &str) -> Option<Principal> {
    if token_is(given, s.token.as_ref()) {
        return Some(Principal::bootstrap());
    }
    s.governance
        .admin_token_for(given)
        .map(|t| Principal::named(&t))
}

/// Who a session acts as: the bootstrap token, or the named token it was
/// opened with while that token lives (with its role now).
fn principal_of(s: &AdminState, session: &Session) -> Option<Principal> {
    if session.token.is_empty() {
        return Some(Principal::bootstrap());
    }
    let token: AdminToken = s.governance.get(&session.token)?;
    Some(Principal::named(&token))
}
