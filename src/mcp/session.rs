//! Self-contained `/mcp` session ids, so that any node can continue a session
//! another node began, with no shared session table and no sticky routing.
//!
//! A session id is `v1.<key id>.<issued ms>.<protocol version>.<mac>`, the mac
//! being HMAC-SHA256 under a 32-byte key every node shares, over everything
//! before it. Nodes share the key by deriving it from the cluster secret;
//! a node without one uses a random key kept in its data directory, so its
//! sessions survive its restarts but no other node can read them. The id is
//! bound to the virtual key that opened it; it grants nothing by itself (each
//! request still presents its key), it only proves the handshake happened.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// The environment variable holding the cluster's shared secret.
const KEY_FILE: &str = "mcp-session-key";
const VERSION: &str = "v1";

/// Seals and opens session ids.
#[derive(Clone)]
pub struct Sealer {
    key: [u8; 32],
}

/// What a valid session id says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub key_id: String,
    pub issued_ms: u64,
    pub protocol_version: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SessionError {
    #[error("malformed or forged session id")]
    Invalid,
    #[error("session expired")]
    Expired,
}

impl Sealer {
    pub fn new(key: [u8; 32]) -> Sealer {
        Sealer { key }
    }

    /// The sealing key: derived from the cluster secret (`cluster.secret` /
    /// `TOLLGATE_CLUSTER_SECRET`) when there is one, so every node of the
    /// cluster derives the same; otherwise a random key created once in
    /// `<data_dir>/mcp-session-key` (mode 0600).
    pub fn for_node(
        data_dir: &Path,
        cluster_secret: Option<&crate::config::Secret>,
    ) -> std::io::Result<Sealer> {
        match cluster_secret {
            Some(secret) if !secret.expose().is_empty() => {
                Ok(Sealer::from_secret(secret.expose().as_bytes()))
            }
            _ => Ok(Sealer::new(persisted_key(&data_dir.join(KEY_FILE))?)),
        }
    }

    /// A key derived from a shared secret, separated from other uses of it.
    pub fn from_secret(secret: &[u8]) -> Sealer {
        Sealer::new(crate::config::derive_key(
            secret,
            "tollgate mcp session key v2",
        ))
    }

    /// A key of its own for `purpose`, derived from this one: every node
    /// that shares the session key derives the same.
    pub fn subkey(&self, purpose: &str) -> [u8; 32] {
        crate::config::derive_key(&self.key, purpose)
    }

    pub fn seal(&self, s: &Session) -> String {
        let body = format!(
            "{VERSION}.{}.{}.{}",
            URL_SAFE_NO_PAD.encode(&s.key_id),
            s.issued_ms,
            URL_SAFE_NO_PAD.encode(&s.protocol_version)
        );
        let tag = URL_SAFE_NO_PAD.encode(self.mac(&body).finalize().into_bytes());
        format!("{body}.{tag}")
    }

    /// The session an id stands for, if this cluster sealed it and it is not
    /// older than `ttl_ms` at `now_ms`.
    pub fn open(&self, id: &str, now_ms: u64, ttl_ms: u64) -> Result<Session, SessionError> {
        let (body, tag) = id.rsplit_once('.').ok_or(SessionError::Invalid)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| SessionError::Invalid)?;
        // verify_slice compares in constant time.
        self.mac(body)
            .verify_slice(&tag)
            .map_err(|_| SessionError::Invalid)?;
        let mut parts = body.split('.');
        let (Some(VERSION), Some(key), Some(issued), Some(proto), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(SessionError::Invalid);
        };
        let text = |b64: &str| {
            URL_SAFE_NO_PAD
                .decode(b64)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or(SessionError::Invalid)
        };
        let session = Session {
            key_id: text(key)?,
            issued_ms: issued.parse().map_err(|_| SessionError::Invalid)?,
            protocol_version: text(proto)?,
        };
        if now_ms.saturating_sub(session.issued_ms) > ttl_ms {
            return Err(SessionError::Expired);
        }
        Ok(session)
    }

    fn mac(&self, body: &str) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(body.as_bytes());
        mac
    }
}

/// The key in `path`, or a new random one written there (0600).
fn persisted_key(path: &Path) -> std::io::Result<[u8; 32]> {
    if let Ok(hex) = std::fs::read_to_string(path)
        && let Some(key) = from_hex(hex.trim())
    {
        return Ok(key);
    }
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).expect("the OS random source works");
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    crate::config::write_private(path, hex.as_bytes())?;
    Ok(key)
}

fn from_hex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// A short, non-reversible tag of a session id for logs.
pub fn fingerprint(id: &str) -> String {
    Sha256::digest(id.as_bytes())[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Session {
        Session {
            key_id: "vk_abc".into(),
            issued_ms: 1_000,
            protocol_version: "2025-06-18".into(),
        }
    }

    #[test]
    fn sealed_ids_open_on_any_node_with_the_same_secret() {
        let a = Sealer::from_secret(b"cluster secret");
        let b = Sealer::from_secret(b"cluster secret");
        let id = a.seal(&session());
        assert_eq!(b.open(&id, 2_000, 10_000), Ok(session()));
        let other = Sealer::from_secret(b"another cluster");
        assert_eq!(other.open(&id, 2_000, 10_000), Err(SessionError::Invalid));
    }

    #[test]
    fn tampered_or_expired_ids_are_refused() {
        let s = Sealer::new([7; 32]);
        let id = s.seal(&session());
        assert_eq!(s.open(&id, 20_000, 10_000), Err(SessionError::Expired));
        // Another key id under the original tag.
        let forged = id.replacen(
            &URL_SAFE_NO_PAD.encode("vk_abc"),
            &URL_SAFE_NO_PAD.encode("vk_xyz"),
            1,
        );
        assert_ne!(forged, id);
        assert_eq!(s.open(&forged, 2_000, 10_000), Err(SessionError::Invalid));
        for junk in ["", ".", "v1.a.b.c.d", "no-dots-here", &id[..id.len() - 2]] {
            assert_eq!(
                s.open(junk, 2_000, 10_000),
                Err(SessionError::Invalid),
                "{junk}"
            );
        }
    }

    #[test]
    fn the_node_key_is_persisted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE);
        let k1 = persisted_key(&path).unwrap();
        let k2 = persisted_key(&path).unwrap();
        assert_eq!(k1, k2);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
