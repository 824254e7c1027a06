//! What a governance object must satisfy before it is written: the checks
//! of each kind (names, patterns, references to other objects), the blank
//! objects API creates start from, and how a PATCH lays fields over an
//! object. Nothing here writes.

use serde_json::{Map, Value};

use super::objects::{
    AdminToken, Customer, McpServer, McpTransport, Object, RoutingRule, Team, ToolGroup, VirtualKey,
};
use super::{GovError, Governance, invalid};

impl Governance {
    fn check_customer(&self, c: &Customer) -> Result<(), GovError> {
        non_empty("name", &c.name)?;
        self.check_groups(&c.tool_groups)
    }

    /// Every named tool group must exist.
    fn check_groups(&self, names: &[String]) -> Result<(), GovError> {
        match names.iter().find(|g| self.get::<ToolGroup>(g).is_none()) {
            Some(g) => Err(invalid(
                "tool_groups",
                format!("tool group '{g}' does not exist"),
            )),
            None => Ok(()),
        }
    }

    fn check_team(&self, t: &Team) -> Result<(), GovError> {
        non_empty("name", &t.name)?;
        self.check_groups(&t.tool_groups)?;
        if let Some(c) = &t.customer_id
            && self.get::<Customer>(c).is_none()
        {
            return Err(invalid(
                "customer_id",
                format!("customer '{c}' does not exist"),
            ));
        }
        Ok(())
    }

    pub(super) fn check_key(&self, k: &VirtualKey) -> Result<(), GovError> {
        non_empty("name", &k.name)?;
        if let Some(t) = &k.team_id
            && self.get::<Team>(t).is_none()
        {
            return Err(invalid("team_id", format!("team '{t}' does not exist")));
        }
        if let Some(c) = &k.customer_id
            && self.get::<Customer>(c).is_none()
        {
            return Err(invalid(
                "customer_id",
                format!("customer '{c}' does not exist"),
            ));
        }
        if k.team_id.is_some() && k.customer_id.is_some() {
            return Err(invalid(
                "customer_id",
                "a key in a team belongs to the team's customer; set one of team_id, customer_id",
            ));
        }
        self.check_groups(&k.tool_groups)?;
        if let Some(problem) = k.cache.as_ref().and_then(|c| c.problem()) {
            return Err(invalid("cache", problem));
        }
        for (field, list) in [
            ("models", &k.models),
            ("providers", &k.providers),
            ("tools", &k.tools),
            ("auto_execute", &k.auto_execute),
        ] {
            if list.iter().any(|p| p.trim().is_empty()) {
                return Err(invalid(field, "patterns must not be empty"));
            }
        }
        Ok(())
    }
}

/// An object with every optional field empty, to create from API fields.
pub trait Blank {
    fn blank(id: String, now_ms: u64) -> Self;
}

impl Blank for Customer {
    fn blank(id: String, now_ms: u64) -> Customer {
        Customer {
            id,
            name: String::new(),
            budgets: Vec::new(),
            rate_limits: Vec::new(),
            tool_groups: Vec::new(),
            log_content: false,
            created_at: now_ms,
        }
    }
}

impl Blank for Team {
    fn blank(id: String, now_ms: u64) -> Team {
        Team {
            id,
            name: String::new(),
            customer_id: None,
            budgets: Vec::new(),
            rate_limits: Vec::new(),
            tool_groups: Vec::new(),
            log_content: false,
            created_at: now_ms,
        }
    }
}

impl Blank for RoutingRule {
    fn blank(id: String, now_ms: u64) -> RoutingRule {
        RoutingRule {
            id,
            name: String::new(),
            priority: 0,
            scope: crate::rules::RuleScope::Global,
            condition: "true".into(),
            targets: Vec::new(),
            enabled: true,
            created_at: now_ms,
        }
    }
}

impl Blank for McpServer {
    /// Without a `transport` in the body, the empty command is refused.
    fn blank(id: String, now_ms: u64) -> McpServer {
        McpServer {
            id,
            transport: McpTransport::Stdio {
                command: String::new(),
                args: Vec::new(),
                env: Default::default(),
            },
            tool_prices: Default::default(),
            auto_execute: Vec::new(),
            code_mode: false,
            oauth: None,
            enabled: true,
            created_at: now_ms,
        }
    }
}

impl Validate for RoutingRule {
    fn validate(&self, gov: &Governance) -> Result<(), GovError> {
        gov.check_rule(self)
    }
}

impl Blank for ToolGroup {
    fn blank(id: String, now_ms: u64) -> ToolGroup {
        ToolGroup {
            id,
            description: String::new(),
            tools: Vec::new(),
            created_at: now_ms,
        }
    }
}

impl Validate for AdminToken {
    fn validate(&self, _gov: &Governance) -> Result<(), GovError> {
        if self.name.trim().is_empty() {
            return Err(invalid("name", "must not be empty"));
        }
        Ok(())
    }
}

impl Validate for McpServer {
    fn validate(&self, gov: &Governance) -> Result<(), GovError> {
        if self.id.is_empty()
            || !self
                .id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            // `-` separates server and tool in `server-tool`.
            return Err(invalid(
                "name",
                "use letters, digits and '_' only (no '-': it separates server and tool)",
            ));
        }
        let secrets = match &self.transport {
            McpTransport::Stdio { command, env, .. } => {
                non_empty("transport.command", command)?;
                if !gov.mcp_allow_stdio {
                    return Err(invalid(
                        "transport",
                        "stdio servers run a command on every node; this node's config does not \
                         allow them through the API (mcp.allow_stdio)",
                    ));
                }
                env
            }
            McpTransport::Http { url, headers } | McpTransport::Sse { url, headers } => {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(invalid(
                        "transport.url",
                        "must be an http:// or https:// URL",
                    ));
                }
                headers
            }
        };
        let prefix = &gov.mcp_env_prefix;
        if let Some(var) = secrets
            .values()
            .filter_map(|s| s.env_var())
            .find(|v| !v.starts_with(prefix.as_str()))
        {
            return Err(invalid(
                "transport",
                format!(
                    "env.{var}: servers written through the API may only name variables \
                     starting with '{prefix}' (mcp.env_prefix)"
                ),
            ));
        }
        let vars: Vec<(String, String)> = std::env::vars().collect();
        for secret in secrets.values() {
            secret.clone().resolve(&vars).map_err(|var| {
                invalid(
                    "transport",
                    format!("environment variable {var} is not set on this node"),
                )
            })?;
        }
        if self.auto_execute.iter().any(|p| p.trim().is_empty()) {
            return Err(invalid("auto_execute", "patterns must not be empty"));
        }
        if let Some(oauth) = &self.oauth {
            check_oauth(gov, self, oauth)?;
        }
        Ok(())
    }
}

/// OAuth is for streamable-HTTP servers; a secret needs its client id and
/// follows the transport's rules for `env.VAR`.
fn check_oauth(
    gov: &Governance,
    server: &McpServer,
    oauth: &super::objects::McpOAuth,
) -> Result<(), GovError> {
    if !matches!(server.transport, McpTransport::Http { .. }) {
        return Err(invalid(
            "oauth",
            "OAuth is available for streamable-HTTP servers (transport type \"http\") only",
        ));
    }
    if oauth
        .client_id
        .as_deref()
        .is_some_and(|c| c.trim().is_empty())
    {
        return Err(invalid("oauth.client_id", "must not be empty"));
    }
    if oauth.scopes.iter().any(|s| s.is_empty() || s.contains(' ')) {
        return Err(invalid(
            "oauth.scopes",
            "one scope per item, without spaces",
        ));
    }
    if let Some(secret) = &oauth.client_secret {
        if oauth.client_id.is_none() {
            return Err(invalid("oauth.client_secret", "needs oauth.client_id"));
        }
        if let Some(var) = secret.env_var()
            && !var.starts_with(gov.mcp_env_prefix.as_str())
        {
            return Err(invalid(
                "oauth.client_secret",
                format!(
                    "env.{var}: must start with '{}' (mcp.env_prefix)",
                    gov.mcp_env_prefix
                ),
            ));
        }
    }
    Ok(())
}

impl Validate for ToolGroup {
    fn validate(&self, _gov: &Governance) -> Result<(), GovError> {
        if self.id.trim().is_empty() || self.id.contains('/') {
            return Err(invalid("name", "must not be empty or contain '/'"));
        }
        if self.tools.is_empty() {
            return Err(invalid("tools", "list at least one tool pattern"));
        }
        if self.tools.iter().any(|p| p.trim().is_empty()) {
            return Err(invalid("tools", "patterns must not be empty"));
        }
        Ok(())
    }
}

/// Validation of a whole object against the others it refers to.
pub trait Validate {
    fn validate(&self, gov: &Governance) -> Result<(), GovError>;
}

impl Validate for Customer {
    fn validate(&self, gov: &Governance) -> Result<(), GovError> {
        gov.check_customer(self)
    }
}

impl Validate for Team {
    fn validate(&self, gov: &Governance) -> Result<(), GovError> {
        gov.check_team(self)
    }
}

impl Validate for VirtualKey {
    fn validate(&self, gov: &Governance) -> Result<(), GovError> {
        gov.check_key(self)
    }
}

pub(super) fn non_empty(field: &str, v: &str) -> Result<(), GovError> {
    if v.trim().is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    Ok(())
}

/// `base` with `fields` laid over it. Only patchable fields are accepted, and
/// the result must still be a well-typed object. Returns it and the names of
/// the fields that changed.
pub(super) fn overlay<T: Object>(
    base: &T,
    fields: Map<String, Value>,
) -> Result<(T, Vec<String>), GovError> {
    let Value::Object(mut merged) = serde_json::to_value(base).expect("objects serialize") else {
        unreachable!("objects are structs");
    };
    let mut changed = Vec::new();
    for (k, v) in fields {
        if !T::PATCHABLE.contains(&k.as_str()) {
            return Err(invalid(
                &k,
                format!(
                    "unknown or read-only field (settable: {})",
                    T::PATCHABLE.join(", ")
                ),
            ));
        }
        if merged.get(&k) != Some(&v) {
            changed.push(k.clone());
        }
        merged.insert(k, v);
    }
    let obj = serde_json::from_value(Value::Object(merged))
        .map_err(|e| invalid("body", e.to_string()))?;
    Ok((obj, changed))
}
