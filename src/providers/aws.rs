//! AWS, as the Bedrock provider needs it: request signing ([`sigv4`]), the
//! binary framing of its streams ([`eventstream`]), and where credentials
//! come from ([`resolve`]).
//!
//! Credentials, in the order an AWS SDK looks for them: keys written in the
//! provider's config; the standard environment variables
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`); the
//! shared credentials file (`AWS_SHARED_CREDENTIALS_FILE`, else
//! `~/.aws/credentials`) under `AWS_PROFILE` (else `default`). A Bedrock API
//! key (`AWS_BEARER_TOKEN_BEDROCK`) is a bearer token instead, and needs no
//! signing.

pub mod eventstream;
pub mod sigv4;

use crate::config::Secret;
use sigv4::Credentials;

/// Largest credentials file read.
const MAX_PROFILE_FILE: usize = 1024 * 1024;

/// How a request to Bedrock proves who sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// Signed with SigV4.
    Keys(Credentials),
    /// A Bedrock API key, sent as `Authorization: Bearer`.
    Bearer(Secret),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CredentialsError {
    #[error(
        "no AWS credentials: set access_key_id and secret_access_key, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, \
         AWS_BEARER_TOKEN_BEDROCK, or a profile in {file}"
    )]
    Missing { file: String },
    #[error("AWS credentials file {file}: {why}")]
    File { file: String, why: String },
}

/// The credentials to use: `configured` first, then the environment (read
/// through `env`, so tests need not set process variables), then the
/// shared credentials file.
pub fn resolve(
    configured: Option<Credentials>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Auth, CredentialsError> {
    if let Some(c) = configured {
        return Ok(Auth::Keys(c));
    }
    let var = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    if let (Some(id), Some(secret)) = (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
        return Ok(Auth::Keys(Credentials {
            access_key_id: id,
            secret_access_key: Secret::new(secret),
            session_token: var("AWS_SESSION_TOKEN").map(Secret::new),
        }));
    }
    if let Some(token) = var("AWS_BEARER_TOKEN_BEDROCK") {
        return Ok(Auth::Bearer(Secret::new(token)));
    }
    let file = var("AWS_SHARED_CREDENTIALS_FILE").unwrap_or_else(|| {
        format!(
            "{}/.aws/credentials",
            var("HOME").unwrap_or_else(|| ".".into())
        )
    });
    let profile = var("AWS_PROFILE").unwrap_or_else(|| "default".into());
    let text = match std::fs::metadata(&file) {
        Ok(m) if m.len() as usize > MAX_PROFILE_FILE => {
            return Err(CredentialsError::File {
                file,
                why: format!("over {MAX_PROFILE_FILE} bytes"),
            });
        }
        Ok(_) => std::fs::read_to_string(&file).map_err(|e| CredentialsError::File {
            file: file.clone(),
            why: e.to_string(),
        })?,
        Err(_) => return Err(CredentialsError::Missing { file }),
    };
    match from_profile(&text, &profile) {
        Some(c) => Ok(Auth::Keys(c)),
        None => Err(CredentialsError::File {
            file,
            why: format!("no aws_access_key_id and aws_secret_access_key in profile '{profile}'"),
        }),
    }
}

/// The keys of `profile` in a shared credentials (or config) file: an INI
/// file of `[name]` (or `[profile name]`) sections of `key = value` lines.
pub fn from_profile(text: &str, profile: &str) -> Option<Credentials> {
    let mut section = None::<String>;
    let (mut id, mut secret, mut token) = (None, None, None);
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.trim();
            section = Some(
                name.strip_prefix("profile ")
                    .unwrap_or(name)
                    .trim()
                    .to_string(),
            );
            continue;
        }
        if section.as_deref() != Some(profile) {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim().to_string();
        match k.trim().to_ascii_lowercase().as_str() {
            "aws_access_key_id" => id = Some(v),
            "aws_secret_access_key" => secret = Some(v),
            "aws_session_token" => token = Some(v),
            _ => {}
        }
    }
    Some(Credentials {
        access_key_id: id?,
        secret_access_key: Secret::new(secret?),
        session_token: token.map(Secret::new),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let m: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    fn keys(id: &str, secret: &str, token: Option<&str>) -> Auth {
        Auth::Keys(Credentials {
            access_key_id: id.into(),
            secret_access_key: Secret::new(secret),
            session_token: token.map(Secret::new),
        })
    }

    #[test]
    fn configured_then_environment_then_bearer_then_profile() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("credentials");
        std::fs::write(
            &file,
            "# comment\n[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = s0\n\
             [profile work]\naws_access_key_id=AKIDWORK\naws_secret_access_key=s1\naws_session_token=t1\n",
        )
        .unwrap();
        let file = file.to_str().unwrap();
        let configured = Credentials {
            access_key_id: "AKIDCONF".into(),
            secret_access_key: Secret::new("s"),
            session_token: None,
        };
        let all = env(&[
            ("AWS_ACCESS_KEY_ID", "AKIDENV"),
            ("AWS_SECRET_ACCESS_KEY", "se"),
            ("AWS_SESSION_TOKEN", "te"),
            ("AWS_BEARER_TOKEN_BEDROCK", "bedrock-api-key"),
            ("AWS_SHARED_CREDENTIALS_FILE", file),
        ]);
        assert_eq!(
            resolve(Some(configured.clone()), &all),
            Ok(Auth::Keys(configured))
        );
        assert_eq!(resolve(None, &all), Ok(keys("AKIDENV", "se", Some("te"))));
        let no_keys = env(&[
            ("AWS_BEARER_TOKEN_BEDROCK", "bedrock-api-key"),
            ("AWS_SHARED_CREDENTIALS_FILE", file),
        ]);
        assert_eq!(
            resolve(None, &no_keys),
            Ok(Auth::Bearer(Secret::new("bedrock-api-key")))
        );
        let profile = |p: &str| env(&[("AWS_SHARED_CREDENTIALS_FILE", file), ("AWS_PROFILE", p)]);
        assert_eq!(
            resolve(None, profile("default")),
            Ok(keys("AKIDDEFAULT", "s0", None))
        );
        assert_eq!(
            resolve(None, profile("work")),
            Ok(keys("AKIDWORK", "s1", Some("t1")))
        );
        assert!(matches!(
            resolve(None, profile("nope")),
            Err(CredentialsError::File { .. })
        ));
        let missing = env(&[("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/creds")]);
        assert_eq!(
            resolve(None, missing),
            Err(CredentialsError::Missing {
                file: "/nonexistent/creds".into()
            })
        );
    }
}
