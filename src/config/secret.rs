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
