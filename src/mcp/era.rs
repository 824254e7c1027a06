//! The two eras of the MCP protocol on `/mcp`, told apart per request.
//!
//! Up to 2025-11-25 a client opens a session with `initialize` and sends its
//! `Mcp-Session-Id` on every later request. From 2026-07-28 every request
//! stands alone: its `params._meta` names the protocol version and the
//! client's capabilities, and the `MCP-Protocol-Version`, `Mcp-Method` and
//! `Mcp-Name` headers repeat what the body says so that an intermediary can
//! route without reading the body. This module decides which era a request
//! belongs to and runs the stateless era's checks; it does no I/O.

use http::{HeaderMap, StatusCode};
use rmcp::model::ProtocolVersion;
use serde_json::{Value, json};

/// The stateless protocol versions this gateway serves.
pub const STATELESS_VERSIONS: &[&str] = &["2026-07-28"];

/// The header carrying a session-era request's session id.
pub const SESSION_HEADER: &str = "mcp-session-id";
pub const VERSION_HEADER: &str = "mcp-protocol-version";
pub const METHOD_HEADER: &str = "mcp-method";
pub const NAME_HEADER: &str = "mcp-name";

pub const PROTOCOL_VERSION_META: &str = "io.modelcontextprotocol/protocolVersion";
pub const CLIENT_CAPABILITIES_META: &str = "io.modelcontextprotocol/clientCapabilities";
pub const SERVER_INFO_META: &str = "io.modelcontextprotocol/serverInfo";

// JSON-RPC error codes of the stateless era.
pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const HEADER_MISMATCH: i64 = -32020;
pub const MISSING_REQUIRED_CLIENT_CAPABILITY: i64 = -32021;
pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;

/// Why a stateless request was refused before dispatch: a JSON-RPC error.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    pub code: i64,
    pub message: String,
    pub data: Option<Value>,
}

fn reject(code: i64, message: impl Into<String>) -> Fault {
    Fault {
        code,
        message: message.into(),
        data: None,
    }
}

/// The HTTP status a stateless-era error answer carries (2026-07-28
/// streamable HTTP); the session era answers every JSON-RPC error with 200.
pub fn status_of(code: i64) -> StatusCode {
    match code {
        PARSE_ERROR
        | INVALID_REQUEST
        | INVALID_PARAMS
        | HEADER_MISMATCH
        | MISSING_REQUIRED_CLIENT_CAPABILITY
        | UNSUPPORTED_PROTOCOL_VERSION => StatusCode::BAD_REQUEST,
        METHOD_NOT_FOUND => StatusCode::NOT_FOUND,
        _ => StatusCode::OK,
    }
}

/// Whether `version` is one of the session era's (it has `initialize`).
fn has_handshake(version: &str) -> bool {
    ProtocolVersion::KNOWN_VERSIONS
        .iter()
        .any(|v| v.as_str() == version && v.has_initialize())
}

/// Every version `/mcp` speaks, oldest first: what `server/discover` lists.
pub fn supported_versions() -> Vec<ProtocolVersion> {
    ProtocolVersion::KNOWN_VERSIONS
        .iter()
        .filter(|v| v.has_initialize() || STATELESS_VERSIONS.contains(&v.as_str()))
        .cloned()
        .collect()
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Whether a request (other than `initialize`) is of the stateless era: it
/// carries no session, and either its version header names no session-era
/// version, its `_meta` names a protocol version, or it is `server/discover`.
/// A request that says nothing either way is the session era's (and is
/// refused there for want of a session).
pub fn is_stateless(headers: &HeaderMap, method: &str, params: &Value) -> bool {
    if headers.contains_key(SESSION_HEADER) {
        return false;
    }
    let by_header = header(headers, VERSION_HEADER).is_some_and(|v| !has_handshake(v));
    let by_meta = params
        .get("_meta")
        .and_then(Value::as_object)
        .is_some_and(|m| m.contains_key(PROTOCOL_VERSION_META));
    by_header || by_meta || method == "server/discover"
}

/// The params field a method's `Mcp-Name` header repeats.
fn named_param(method: &str) -> Option<&'static str> {
    match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        _ => None,
    }
}

/// A header value as sent: verbatim, or the UTF-8 inside `=?base64?…?=`
/// (how clients send values that are not plain visible ASCII). A malformed
/// wrapper is `None`, so it never matches.
fn decode_header_value(raw: &str) -> Option<String> {
    use base64::Engine;
    let Some(payload) = raw
        .strip_prefix("=?base64?")
        .and_then(|r| r.strip_suffix("?="))
    else {
        return Some(raw.to_string());
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(payload)
        .ok()?;
    String::from_utf8(bytes).ok()
}

/// The checks a stateless request must pass before it is dispatched, in the
/// specification's order (the first failure answers): the routing headers
/// appear once each; `_meta` carries the protocol version and the client's
/// capabilities; the headers agree with the body; the version is one this
/// gateway serves. Returns the version.
pub fn check(headers: &HeaderMap, method: &str, params: &Value) -> Result<String, Fault> {
    for name in [VERSION_HEADER, METHOD_HEADER, NAME_HEADER] {
        if headers.get_all(name).iter().count() > 1 {
            return Err(reject(
                HEADER_MISMATCH,
                format!("{name} header appears more than once"),
            ));
        }
    }
    let Some(meta) = params.get("_meta").and_then(Value::as_object) else {
        return Err(reject(
            INVALID_PARAMS,
            format!(
                "params._meta must be an object carrying '{PROTOCOL_VERSION_META}' and '{CLIENT_CAPABILITIES_META}'"
            ),
        ));
    };
    let missing: Vec<&str> = [PROTOCOL_VERSION_META, CLIENT_CAPABILITIES_META]
        .into_iter()
        .filter(|k| !meta.contains_key(*k))
        .collect();
    if !missing.is_empty() {
        return Err(reject(
            INVALID_PARAMS,
            format!(
                "params._meta is missing the required key(s): {}",
                missing.join(", ")
            ),
        ));
    }
    let version = &meta[PROTOCOL_VERSION_META];
    if header(headers, VERSION_HEADER).is_none_or(|h| Some(h) != version.as_str()) {
        return Err(reject(
            HEADER_MISMATCH,
            format!("{VERSION_HEADER} header does not match params._meta's protocol version"),
        ));
    }
    if header(headers, METHOD_HEADER) != Some(method) {
        return Err(reject(
            HEADER_MISMATCH,
            format!("{METHOD_HEADER} header does not match the request's method"),
        ));
    }
    if let Some(field) = named_param(method)
        && let Some(named) = params.get(field).and_then(Value::as_str)
        && header(headers, NAME_HEADER)
            .and_then(decode_header_value)
            .as_deref()
            != Some(named)
    {
        return Err(reject(
            HEADER_MISMATCH,
            format!("{NAME_HEADER} header does not match the request's '{field}'"),
        ));
    }
    let Some(version) = version.as_str() else {
        return Err(reject(
            INVALID_PARAMS,
            "the protocol version in params._meta must be a string",
        ));
    };
    if !STATELESS_VERSIONS.contains(&version) {
        let mut r = reject(UNSUPPORTED_PROTOCOL_VERSION, "Unsupported protocol version");
        r.data = Some(json!({"supported": STATELESS_VERSIONS, "requested": version}));
        return Err(r);
    }
    Ok(version.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn meta(version: &str) -> Value {
        json!({PROTOCOL_VERSION_META: version, CLIENT_CAPABILITIES_META: {}})
    }

    #[test]
    fn a_request_is_stateless_only_without_a_session_and_with_a_sign_of_the_era() {
        let none = Value::Null;
        let modern = headers(&[(VERSION_HEADER, "2026-07-28")]);
        assert!(is_stateless(&modern, "tools/list", &none));
        assert!(is_stateless(
            &HeaderMap::new(),
            "tools/list",
            &json!({"_meta": meta("2026-07-28")})
        ));
        assert!(is_stateless(&HeaderMap::new(), "server/discover", &none));
        // A session-era client names its negotiated version in the header.
        let old = headers(&[(VERSION_HEADER, "2025-06-18")]);
        assert!(!is_stateless(&old, "tools/list", &none));
        assert!(!is_stateless(&HeaderMap::new(), "tools/list", &none));
        let with_session = headers(&[(VERSION_HEADER, "2026-07-28"), ("mcp-session-id", "s")]);
        assert!(!is_stateless(&with_session, "tools/list", &none));
    }

    #[test]
    fn the_checks_run_in_order_and_name_what_failed() {
        let ok = headers(&[
            (VERSION_HEADER, "2026-07-28"),
            (METHOD_HEADER, "tools/call"),
            (NAME_HEADER, "files-echo"),
        ]);
        let params = json!({"name": "files-echo", "_meta": meta("2026-07-28")});
        assert_eq!(
            check(&ok, "tools/call", &params).as_deref(),
            Ok("2026-07-28")
        );
        let code = |h: &HeaderMap, m: &str, p: &Value| check(h, m, p).unwrap_err().code;
        assert_eq!(code(&ok, "tools/call", &json!({})), INVALID_PARAMS);
        assert_eq!(
            code(
                &ok,
                "tools/call",
                &json!({"_meta": {PROTOCOL_VERSION_META: "2026-07-28"}})
            ),
            INVALID_PARAMS
        );
        // The body and the headers disagree.
        assert_eq!(code(&ok, "tools/list", &params), HEADER_MISMATCH);
        let other_tool = json!({"name": "files-add", "_meta": meta("2026-07-28")});
        assert_eq!(code(&ok, "tools/call", &other_tool), HEADER_MISMATCH);
        let wrong_version = json!({"name": "files-echo", "_meta": meta("2025-06-18")});
        assert_eq!(code(&ok, "tools/call", &wrong_version), HEADER_MISMATCH);
        let twice = headers(&[
            (VERSION_HEADER, "2026-07-28"),
            (METHOD_HEADER, "tools/call"),
            (METHOD_HEADER, "tools/call"),
            (NAME_HEADER, "files-echo"),
        ]);
        assert_eq!(code(&twice, "tools/call", &params), HEADER_MISMATCH);
        // A version the gateway does not serve, named consistently.
        let future = headers(&[
            (VERSION_HEADER, "2099-01-01"),
            (METHOD_HEADER, "tools/list"),
        ]);
        let r = check(&future, "tools/list", &json!({"_meta": meta("2099-01-01")})).unwrap_err();
        assert_eq!(r.code, UNSUPPORTED_PROTOCOL_VERSION);
        assert_eq!(
            r.data.unwrap(),
            json!({"supported": ["2026-07-28"], "requested": "2099-01-01"})
        );
        assert_eq!(status_of(r.code), StatusCode::BAD_REQUEST);
        assert_eq!(status_of(METHOD_NOT_FOUND), StatusCode::NOT_FOUND);
        assert_eq!(status_of(-32000), StatusCode::OK);
    }

    #[test]
    fn names_outside_visible_ascii_arrive_wrapped_in_base64() {
        let h = headers(&[
            (VERSION_HEADER, "2026-07-28"),
            (METHOD_HEADER, "prompts/get"),
            (NAME_HEADER, "=?base64?ZmlsZXMtaMOpbGxv?="),
        ]);
        let params = json!({"name": "files-héllo", "_meta": meta("2026-07-28")});
        assert!(check(&h, "prompts/get", &params).is_ok());
        let broken = headers(&[
            (VERSION_HEADER, "2026-07-28"),
            (METHOD_HEADER, "prompts/get"),
            (NAME_HEADER, "=?base64?not base64?="),
        ]);
        assert_eq!(
            check(&broken, "prompts/get", &params).unwrap_err().code,
            HEADER_MISMATCH
        );
        assert_eq!(decode_header_value("plain").as_deref(), Some("plain"));
    }

    #[test]
    fn discovery_lists_both_eras() {
        let v: Vec<String> = supported_versions().iter().map(|v| v.to_string()).collect();
        assert!(v.contains(&"2024-11-05".to_string()));
        assert!(v.contains(&"2025-11-25".to_string()));
        assert_eq!(v.last().map(String::as_str), Some("2026-07-28"));
    }
}
