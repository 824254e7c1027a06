//! Encryption of what the gateway keeps of OAuth: tokens at rest (in the
//! replicated `mcp_credentials` table) and the `state` of an authorisation
//! in flight (which carries the PKCE verifier through the user's browser).
//!
//! AES-256-GCM under a key derived from the `/mcp` session key, so every node
//! of a cluster (which shares that key through the cluster secret) can open
//! what another sealed, and nothing else can. Each sealed value is bound to
//! what it is for by the associated data (the credential's id, or "state"):
//! a token sealed for one user cannot be moved under another's id.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

/// Seals and opens values with the cluster's OAuth key.
pub struct Vault {
    key: LessSafeKey,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("sealed by another cluster, for another purpose, or altered")]
pub struct Unsealable;

impl Vault {
    pub fn new(key: [u8; 32]) -> Vault {
        let unbound = UnboundKey::new(&AES_256_GCM, &key).expect("a 32-byte key fits AES-256");
        Vault {
            key: LessSafeKey::new(unbound),
        }
    }

    /// `plain`, encrypted and bound to `purpose`: base64url of nonce ‖ ciphertext ‖ tag.
    pub fn seal(&self, purpose: &str, plain: &[u8]) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).expect("the OS random source works");
        let mut out = Vec::with_capacity(NONCE_LEN + plain.len() + AES_256_GCM.tag_len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plain);
        let tag = self
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(purpose.as_bytes()),
                &mut out[NONCE_LEN..],
            )
            .expect("sealing fits in memory");
        out.extend_from_slice(tag.as_ref());
        URL_SAFE_NO_PAD.encode(out)
    }

    /// What [`Vault::seal`] sealed for `purpose`.
    pub fn open(&self, purpose: &str, sealed: &str) -> Result<Vec<u8>, Unsealable> {
        let mut bytes = URL_SAFE_NO_PAD.decode(sealed).map_err(|_| Unsealable)?;
        if bytes.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(Unsealable);
        }
        let nonce: [u8; NONCE_LEN] = bytes[..NONCE_LEN].try_into().expect("length checked");
        let plain = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(purpose.as_bytes()),
                &mut bytes[NONCE_LEN..],
            )
            .map_err(|_| Unsealable)?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_what_it_sealed_for_the_same_purpose_only() {
        let v = Vault::new([7; 32]);
        let sealed = v.seal("gh|key:a", b"token");
        assert_eq!(v.open("gh|key:a", &sealed).unwrap(), b"token");
        assert_eq!(v.open("gh|key:b", &sealed), Err(Unsealable));
        assert_eq!(
            Vault::new([8; 32]).open("gh|key:a", &sealed),
            Err(Unsealable)
        );
        assert_ne!(
            sealed,
            v.seal("gh|key:a", b"token"),
            "a fresh nonce each time"
        );
    }

    #[test]
    fn altered_or_short_values_do_not_open() {
        let v = Vault::new([7; 32]);
        let sealed = v.seal("state", b"abc");
        let mut bytes = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert_eq!(
            v.open("state", &URL_SAFE_NO_PAD.encode(bytes)),
            Err(Unsealable)
        );
        assert_eq!(v.open("state", "AAAA"), Err(Unsealable));
        assert_eq!(v.open("state", "not base64!"), Err(Unsealable));
    }
}
