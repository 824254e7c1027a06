//! A configuration value that must never be printed: API keys, tokens, headers.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A secret written in config either literally or as `env.VAR`. References
/// are resolved once at load ([`Secret::resolve`]); `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    /// `Some(VAR)` when written as `env.VAR`.
    env_var: Option<String>,
    value: String,
}

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret {
            env_var: None,
            value: value.into(),
        }
    }

    /// The secret itself. Call only where it is sent or compared.
    pub fn expose(&self) -> &str {
        &self.value
    }

    /// The `env.VAR` reference this secret was written as, if any.
    pub fn env_var(&self) -> Option<&str> {
        self.env_var.as_deref()
    }

    /// Fills an `env.VAR` reference from `vars`; an unset variable is an error.
    pub(crate) fn resolve(&mut self, vars: &[(String, String)]) -> Result<(), String> {
        let Some(var) = &self.env_var else {
            return Ok(());
        };
        match vars.iter().find(|(k, _)| k == var) {
            Some((_, v)) => {
                self.value = v.clone();
                Ok(())
            }
            None => Err(var.clone()),
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.env_var {
            Some(var) => write!(f, "Secret(env.{var})"),
            None => f.write_str("Secret(***)"),
        }
    }
}

/// Written back as it was given: `env.VAR`, or the literal (for storage of
/// providers set through the admin API; the API never shows literals).
impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.env_var {
            Some(var) => s.serialize_str(&format!("env.{var}")),
            None => s.serialize_str(&self.value),
        }
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Ok(match raw.strip_prefix("env.") {
            Some(var) if !var.is_empty() => Secret {
                env_var: Some(var.to_string()),
                value: String::new(),
            },
            _ => Secret::new(raw),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("sk-very-secret");
        assert!(!format!("{s:?}").contains("very"));
    }
}

/// A 32-byte key for one `purpose`, from a high-entropy shared `secret`:
/// HKDF-SHA256 (RFC 5869), extract with a fixed salt, expand with the
/// purpose as info, so keys for different uses are independent.
pub fn derive_key(secret: &[u8], purpose: &str) -> [u8; 32] {
    use hmac::{Hmac, Mac};
    type HmacSha256 = Hmac<sha2::Sha256>;
    let mut extract =
        HmacSha256::new_from_slice(b"tollgate hkdf salt v1").expect("HMAC takes any key length");
    extract.update(secret);
    let prk = extract.finalize().into_bytes();
    let mut expand = HmacSha256::new_from_slice(&prk).expect("HMAC takes any key length");
    expand.update(purpose.as_bytes());
    expand.update(&[1]);
    expand.finalize().into_bytes().into()
}

#[cfg(test)]
mod kdf_tests {
    use super::derive_key;

    #[test]
    fn hkdf_matches_rfc_5869_shape_and_separates_purposes() {
        let a = derive_key(b"a cluster secret of some length", "ca");
        assert_eq!(a, derive_key(b"a cluster secret of some length", "ca"));
        assert_ne!(
            a,
            derive_key(b"a cluster secret of some length", "sessions")
        );
        assert_ne!(a, derive_key(b"another cluster secret of length", "ca"));
    }
}

/// Writes `contents` to a new file at `path` readable by its owner only:
/// created with mode 0600, so it is never readable by others, not even
/// for a moment before a chmod. An existing file is replaced.
pub fn write_private(path: &std::path::Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut open = std::fs::OpenOptions::new();
    open.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        open.mode(0o600);
    }
    let mut f = open.open(&tmp)?;
    f.write_all(contents)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Creates `dir` (and its parents) and makes it accessible to its owner
/// only. A directory this process may not change (a volume mounted with
/// another owner) is left as it is, with a warning.
pub fn private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        match std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)) {
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                tracing::warn!(dir = %dir.display(), "cannot make the data directory private (mode 0700): {e}");
            }
            other => other?,
        }
    }
    Ok(())
}
