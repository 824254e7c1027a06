//! Named admin tokens: created with a role, listed, renamed or given
//! another role, revoked; replicated like every governance object. Only the
//! SHA-256 of a secret is stored, and a secret is shown once, when made.

use serde_json::{Map, Value};

use super::objects::{self, AdminToken, Role};
use super::{GovError, Governance, hash_secret, invalid, random_token};

/// What every admin token secret starts with.
pub const ADMIN_TOKEN_PREFIX: &str = "tg-adm-";

/// A token as the admin API shows it: no hash.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PublicAdminToken {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub secret_prefix: String,
    pub created_at: u64,
}

impl From<&AdminToken> for PublicAdminToken {
    fn from(t: &AdminToken) -> Self {
        PublicAdminToken {
            id: t.id.clone(),
            name: t.name.clone(),
            role: t.role,
            secret_prefix: t.secret_prefix.clone(),
            created_at: t.created_at,
        }
    }
}

impl Governance {
    /// Makes a token from `{"name", "role"}`; returns it and its secret.
    pub fn create_admin_token(
        &self,
        fields: Map<String, Value>,
    ) -> Result<(AdminToken, String), GovError> {
        // Required, and named in the error: a token is never given a role
        // its maker did not choose.
        let role: Role = serde_json::from_value(fields.get("role").cloned().unwrap_or(Value::Null))
            .map_err(|_| invalid("role", "one of 'admin', 'operator', 'viewer'"))?;
        let secret = format!("{ADMIN_TOKEN_PREFIX}{}", random_token(40));
        let base = AdminToken {
            id: Self::new_id::<AdminToken>(),
            name: String::new(),
            role,
            secret_hash: hash_secret(&secret),
            secret_prefix: secret[..ADMIN_TOKEN_PREFIX.len() + 4].to_string(),
            created_at: self.now_ms(),
        };
        let (token, _) = super::validate::overlay(&base, fields)?;
        super::Validate::validate(&token, self)?;
        self.write(&token, None)?;
        Ok((token, secret))
    }

    /// The fields of the live object `id` of table `kind`, as JSON (for the
    /// audit log; the caller redacts secrets).
    pub fn object_json(&self, kind: &str, id: &str) -> Option<Value> {
        let row = self.table_named(kind)?.get(id)?;
        if row.get(objects::DELETED) == Some(b"true") {
            return None;
        }
        let fields: Map<String, Value> = row
            .fields
            .iter()
            .filter(|(k, _)| k.as_str() != objects::DELETED)
            .filter_map(|(k, reg)| {
                let v = serde_json::from_slice(reg.value.as_ref()?).ok()?;
                Some((k.clone(), v))
            })
            .collect();
        Some(Value::Object(fields))
    }

    /// The live token whose secret is `secret`, if any.
    pub fn admin_token_for(&self, secret: &str) -> Option<AdminToken> {
        if !secret.starts_with(ADMIN_TOKEN_PREFIX) {
            return None;
        }
        let hash = hash_secret(secret);
        self.admin_tokens
            .rows()
            .into_iter()
            .filter_map(|(_, row)| objects::from_row::<AdminToken>(&row))
            .find(|t| t.secret_hash == hash)
    }
}
