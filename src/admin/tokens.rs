//! `/api/admin-tokens`: named admin tokens with roles, and what each role
//! may do ([`permitted`]). Tokens are admin-only, even to list.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::response::IntoResponse;
use axum::routing::get;
use http::{Method, StatusCode};
use serde_json::{Value, json};

use super::AdminState;
use super::objects::{Answer, Shown, body_object, delete, get_one, list, patch};
use crate::governance::admin_tokens::PublicAdminToken;
use crate::governance::objects::{AdminToken, Role};

pub fn routes() -> Router<AdminState> {
    Router::new()
        .route("/api/admin-tokens", get(list::<AdminToken>).post(create))
        .route(
            "/api/admin-tokens/{id}",
            get(get_one::<AdminToken>)
                .patch(patch::<AdminToken>)
                .delete(delete::<AdminToken>),
        )
}

impl Shown for AdminToken {
    fn shown(&self) -> Value {
        serde_json::to_value(PublicAdminToken::from(self)).expect("tokens serialize")
    }
}

async fn create(State(s): State<AdminState>, body: Result<Json<Value>, JsonRejection>) -> Answer {
    let (token, secret) = s.governance.create_admin_token(body_object(body)?)?;
    let mut v = token.shown();
    v["secret"] = json!(secret);
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

/// Who made a request: the bootstrap token (`token: None`), or a named one.
#[derive(Debug, Clone)]
pub struct Principal {
    pub token: Option<String>,
    pub name: String,
    pub role: Role,
}

impl Principal {
    pub fn bootstrap() -> Principal {
        Principal {
            token: None,
            name: "bootstrap".into(),
            role: Role::Admin,
        }
    }

    pub fn named(t: &AdminToken) -> Principal {
        Principal {
            token: Some(t.id.clone()),
            name: t.name.clone(),
            role: t.role,
        }
    }
}

/// Whether `role` may make `method` on `path`, or why not. `admin` may do
/// everything; `operator` may read everything but admin tokens and write
/// customers, teams and keys (their budgets and rate limits with them);
/// `viewer` may read everything but admin tokens.
pub fn permitted(role: Role, method: &Method, path: &str) -> Result<(), String> {
    let under = |prefix: &str| {
        path == prefix
            || path
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('/'))
    };
    if role == Role::Admin {
        return Ok(());
    }
    if under("/api/admin-tokens") {
        return Err(format!(
            "a {} token cannot see or change admin tokens: that takes an admin token",
            role.as_str()
        ));
    }
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let objects = under("/api/customers") || under("/api/teams") || under("/api/keys");
    match role {
        Role::Operator if objects => Ok(()),
        Role::Operator => Err(
            "an operator token may change customers, teams and keys only (not providers, pricing, \
             routing rules, MCP servers or tool groups, the cache or the cluster)"
                .into(),
        ),
        _ => Err("a viewer token may only read".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_role_may_do_exactly_its_share() {
        let cases: &[(&str, &str, [bool; 3])] = &[
            // (method, path, [admin, operator, viewer])
            ("GET", "/api/keys", [true, true, true]),
            ("GET", "/api/logs", [true, true, true]),
            ("GET", "/api/providers", [true, true, true]),
            ("GET", "/api/admin-tokens", [true, false, false]),
            ("POST", "/api/admin-tokens", [true, false, false]),
            ("DELETE", "/api/admin-tokens/adm_x", [true, false, false]),
            ("POST", "/api/keys", [true, true, false]),
            ("POST", "/api/keys/vk_1/rotate", [true, true, false]),
            ("PATCH", "/api/teams/team_1", [true, true, false]),
            ("DELETE", "/api/customers/cus_1", [true, true, false]),
            ("PUT", "/api/providers/openai", [true, false, false]),
            ("PUT", "/api/mcp/servers/x", [true, false, false]),
            ("PUT", "/api/mcp/tool-groups/g", [true, false, false]),
            ("PUT", "/api/pricing/gpt-4o", [true, false, false]),
            ("POST", "/api/routing-rules", [true, false, false]),
            ("DELETE", "/api/cache", [true, false, false]),
            ("POST", "/api/cluster/forget/00", [true, false, false]),
            // A lookalike prefix is not the objects.
            ("POST", "/api/keysmith", [true, false, false]),
        ];
        for (method, path, expected) in cases {
            let method: Method = method.parse().unwrap();
            for (role, want) in [Role::Admin, Role::Operator, Role::Viewer]
                .into_iter()
                .zip(expected)
            {
                assert_eq!(
                    permitted(role, &method, path).is_ok(),
                    *want,
                    "{role:?} {method} {path}"
                );
            }
        }
    }
}
