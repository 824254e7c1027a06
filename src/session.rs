//! Dashboard login sessions: signed, stateless cookies that every node
//! sharing the admin token (and the cluster secret) accepts.
//!
//! A session is `base64url(expires_ms ‖ id ‖ token) "." base64url(tag)`,
//! `token` the id of the named admin token it was opened with (empty for the
//! bootstrap token), the tag an
//! HMAC-SHA256 under a key derived from the admin token and the cluster
//! secret: changing either ends every session. The admin token itself never
//! reaches the browser after the login form sends it once. Writes made with
//! a session also carry its CSRF token (an HMAC of the session id under the
//! same key, sent as `X-CSRF-Token`), so a page of another origin cannot
//! make them even where `SameSite=Strict` is not enforced.
//!
//! Logout revokes the session's id on this node and on every live peer
//! (held in memory until the session would have expired); a node that was
//! down at the time accepts the session until it expires.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::hmac;
use sha2::{Digest, Sha256};

/// The cookie's name.
pub const COOKIE: &str = "tollgate_session";
/// The header that carries the CSRF token on writes.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Failed logins a node accepts per minute; past them it answers 429.
const FAILURES_PER_MINUTE: u32 = 20;
/// Revocations held at most (each is a logged-out, unexpired session).
const MAX_REVOKED: usize = 100_000;

/// A valid session, as read from a cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: [u8; 16],
    pub expires_ms: u64,
    /// The named admin token it was opened with; empty for the bootstrap
    /// token. What it may do is that token's role when it is used.
    pub token: String,
}

/// Longest token id a session carries.
const MAX_TOKEN_ID: usize = 64;

pub struct Sessions {
    key: hmac::Key,
    ttl_ms: u64,
    /// Revoked ids, with when they would have expired anyway.
    revoked: Mutex<HashMap<[u8; 16], u64>>,
    /// Failed logins in the current minute: (minute, count).
    failures: Mutex<(u64, u32)>,
}

impl Sessions {
    /// Sessions keyed by the admin token and (in a cluster) its secret.
    pub fn new(admin_token: &str, cluster_secret: Option<&str>, ttl: std::time::Duration) -> Self {
        let mut h = Sha256::new();
        h.update(b"tollgate dashboard session key v1\0");
        h.update((admin_token.len() as u64).to_be_bytes());
        h.update(admin_token.as_bytes());
        h.update(cluster_secret.unwrap_or("").as_bytes());
        Sessions {
            key: hmac::Key::new(hmac::HMAC_SHA256, &h.finalize()),
            ttl_ms: u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX),
            revoked: Mutex::new(HashMap::new()),
            failures: Mutex::new((0, 0)),
        }
    }

    /// A new session from `now_ms` for `token` (a named token's id, or
    /// empty), and its cookie value.
    pub fn issue(&self, now_ms: u64, token: &str) -> (Session, String) {
        assert!(token.len() <= MAX_TOKEN_ID, "token ids are short");
        let session = Session {
            id: rand::random(),
            expires_ms: now_ms.saturating_add(self.ttl_ms),
            token: token.to_string(),
        };
        let payload = payload(&session);
        let tag = hmac::sign(&self.key, &signed(&payload));
        let value = format!("{}.{}", B64.encode(payload), B64.encode(tag.as_ref()));
        (session, value)
    }

    /// The session a cookie value names, when its tag is right, it has not
    /// expired and it was not revoked.
    pub fn verify(&self, value: &str, now_ms: u64) -> Option<Session> {
        // Longer than any session: never decode what cannot be one.
        if value.len() > 256 {
            return None;
        }
        let (payload, tag) = value.split_once('.')?;
        let payload = B64.decode(payload).ok()?;
        let tag = B64.decode(tag).ok()?;
        if payload.len() < 24 || payload.len() > 24 + MAX_TOKEN_ID {
            return None;
        }
        hmac::verify(&self.key, &signed(&payload), &tag).ok()?;
        let session = Session {
            expires_ms: u64::from_be_bytes(payload[..8].try_into().expect("8 bytes")),
            id: payload[8..24].try_into().expect("16 bytes"),
            token: String::from_utf8(payload[24..].to_vec()).ok()?,
        };
        if session.expires_ms <= now_ms {
            return None;
        }
        if self
            .revoked
            .lock()
            .expect("revoked")
            .contains_key(&session.id)
        {
            return None;
        }
        Some(session)
    }

    /// The session of a request's `Cookie` headers, if one is valid.
    pub fn from_headers(&self, headers: &http::HeaderMap, now_ms: u64) -> Option<Session> {
        headers
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .filter(|(name, _)| *name == COOKIE)
            .find_map(|(_, value)| self.verify(value, now_ms))
    }

    /// The CSRF token of a session.
    pub fn csrf(&self, session: &Session) -> String {
        let mut msg = b"csrf\0".to_vec();
        msg.extend_from_slice(&session.id);
        B64.encode(hmac::sign(&self.key, &msg).as_ref())
    }

    /// Whether `headers` carry the session's CSRF token (compared in constant time).
    pub fn csrf_ok(&self, session: &Session, headers: &http::HeaderMap) -> bool {
        let given = headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let expected = self.csrf(session);
        given.len() == expected.len()
            && given
                .bytes()
                .zip(expected.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }

    /// Ends a session on this node: it is refused from now until it expires.
    pub fn revoke(&self, id: [u8; 16], expires_ms: u64, now_ms: u64) {
        let mut revoked = self.revoked.lock().expect("revoked");
        if revoked.len() >= MAX_REVOKED / 2 {
            revoked.retain(|_, exp| *exp > now_ms);
        }
        if revoked.len() < MAX_REVOKED {
            revoked.insert(id, expires_ms);
        }
    }

    /// Counts a failed login (see [`Sessions::login_throttled`]).
    pub fn login_failed(&self, now_ms: u64) {
        let minute = now_ms / 60_000;
        let mut f = self.failures.lock().expect("failures");
        if f.0 != minute {
            *f = (minute, 0);
        }
        f.1 = f.1.saturating_add(1);
    }

    /// Whether logins are refused for the rest of this minute, and for how
    /// many seconds.
    pub fn login_throttled(&self, now_ms: u64) -> Option<u64> {
        let minute = now_ms / 60_000;
        let f = self.failures.lock().expect("failures");
        (f.0 == minute && f.1 >= FAILURES_PER_MINUTE).then(|| 60 - (now_ms % 60_000) / 1000)
    }

    /// The `Set-Cookie` value that stores `value` in the browser.
    pub fn cookie(&self, value: &str, secure: bool) -> String {
        format!(
            "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
            self.ttl_ms / 1000,
            if secure { "; Secure" } else { "" }
        )
    }

    /// The `Set-Cookie` value that removes it.
    pub fn removal_cookie(secure: bool) -> String {
        format!(
            "{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
            if secure { "; Secure" } else { "" }
        )
    }
}

fn payload(s: &Session) -> Vec<u8> {
    let mut p = s.expires_ms.to_be_bytes().to_vec();
    p.extend_from_slice(&s.id);
    p.extend_from_slice(s.token.as_bytes());
    p
}

fn signed(payload: &[u8]) -> Vec<u8> {
    let mut msg = b"session\0".to_vec();
    msg.extend_from_slice(payload);
    msg
}

/// A revocation sent to peers (`session_revoke` query): hex id and expiry.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Revocation {
    pub id: String,
    pub expires_ms: u64,
}

impl Revocation {
    pub fn of(s: &Session) -> Revocation {
        Revocation {
            id: s.id.iter().map(|b| format!("{b:02x}")).collect(),
            expires_ms: s.expires_ms,
        }
    }

    /// The id, when it is 32 hex digits.
    pub fn id(&self) -> Option<[u8; 16]> {
        if self.id.len() != 32 || !self.id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let mut id = [0u8; 16];
        for (i, byte) in id.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&self.id[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn sessions(token: &str) -> Sessions {
        Sessions::new(token, Some("cluster secret"), Duration::from_secs(3600))
    }

    #[test]
    fn a_session_is_accepted_by_every_node_with_the_same_keys() {
        let (a, b) = (sessions("token-a"), sessions("token-a"));
        let (s, cookie) = a.issue(1_000, "adm_x");
        assert_eq!(b.verify(&cookie, 2_000), Some(s.clone()));
        assert_eq!(s.token, "adm_x");
        assert_eq!(a.csrf(&s), b.csrf(&s));
    }

    #[test]
    fn another_token_or_cluster_refuses_it() {
        let (_, cookie) = sessions("token-a").issue(1_000, "");
        assert_eq!(sessions("token-b").verify(&cookie, 2_000), None);
        let other = Sessions::new("token-a", Some("another"), Duration::from_secs(3600));
        assert_eq!(other.verify(&cookie, 2_000), None);
    }

    #[test]
    fn expired_tampered_and_revoked_sessions_are_refused() {
        let s = sessions("t");
        let (session, cookie) = s.issue(1_000, "");
        assert_eq!(s.verify(&cookie, 1_000 + 3_600_000), None, "expired");
        let (payload, tag) = cookie.split_once('.').unwrap();
        let mut raw = B64.decode(payload).unwrap();
        raw[0] ^= 1; // a later expiry
        let forged = format!("{}.{tag}", B64.encode(&raw));
        assert_eq!(s.verify(&forged, 2_000), None, "tampered");
        for junk in ["", ".", "a.b", &"x".repeat(500), &format!("{payload}.")] {
            assert_eq!(s.verify(junk, 2_000), None, "{junk:?}");
        }
        s.revoke(session.id, session.expires_ms, 2_000);
        assert_eq!(s.verify(&cookie, 2_000), None, "revoked");
    }

    #[test]
    fn csrf_must_match_the_session() {
        let s = sessions("t");
        let (a, _) = s.issue(0, "");
        let (b, _) = s.issue(0, "");
        let mut h = http::HeaderMap::new();
        assert!(!s.csrf_ok(&a, &h));
        h.insert(CSRF_HEADER, s.csrf(&b).parse().unwrap());
        assert!(!s.csrf_ok(&a, &h));
        h.insert(CSRF_HEADER, s.csrf(&a).parse().unwrap());
        assert!(s.csrf_ok(&a, &h));
    }

    #[test]
    fn the_cookie_header_is_searched_for_a_valid_session() {
        let s = sessions("t");
        let (session, cookie) = s.issue(0, "");
        let mut h = http::HeaderMap::new();
        h.append(
            http::header::COOKIE,
            "a=b; tollgate_session=junk".parse().unwrap(),
        );
        h.append(
            http::header::COOKIE,
            format!("x=1; {COOKIE}={cookie}").parse().unwrap(),
        );
        assert_eq!(s.from_headers(&h, 1), Some(session));
    }

    #[test]
    fn failed_logins_are_throttled_per_minute() {
        let s = sessions("t");
        for _ in 0..FAILURES_PER_MINUTE {
            assert_eq!(s.login_throttled(60_000), None);
            s.login_failed(60_000);
        }
        assert_eq!(s.login_throttled(61_000), Some(59));
        assert_eq!(s.login_throttled(120_000), None, "a new minute");
    }

    #[test]
    fn revocations_travel_as_hex() {
        let (session, _) = sessions("t").issue(0, "");
        let r = Revocation::of(&session);
        assert_eq!(r.id(), Some(session.id));
        assert_eq!(
            Revocation {
                id: "zz".repeat(16),
                expires_ms: 0
            }
            .id(),
            None
        );
    }
}
