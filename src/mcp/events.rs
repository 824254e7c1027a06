//! The event streams of list changes `/mcp` offers: the session era's `GET`
//! stream and 2026-07-28's `subscriptions/listen`. Both announce a kind of
//! list (tools, resources and templates, prompts) when it changes on this
//! node, send keep-alive comments, and end when the node drains; a listen
//! stream first acknowledges what it will send, stamps every frame with
//! its subscription, and ends with its result.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::response::Response;
use http::header;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::upstream::Changes;
use crate::governance::slots::Slot;

/// How often an idle stream gets a comment, so proxies keep it open.
const KEEPALIVE: Duration = Duration::from_secs(15);
const SUBSCRIPTION_META: &str = "io.modelcontextprotocol/subscriptionId";

/// One server-sent event carrying a JSON-RPC message.
pub fn sse_event(json: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(json.len() + 24);
    out.extend_from_slice(b"event: message\ndata: ");
    out.extend_from_slice(json);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// Which kinds of list changes a stream announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted {
    pub tools: bool,
    pub resources: bool,
    pub prompts: bool,
}

impl Wanted {
    /// The `GET` stream announces every kind.
    pub const ALL: Wanted = Wanted {
        tools: true,
        resources: true,
        prompts: true,
    };

    /// What a `subscriptions/listen` filter asks for, of what the gateway
    /// sends (`resourceSubscriptions` are not honored: upstream
    /// `resources/updated` notifications are not relayed).
    pub fn from_filter(filter: &Value) -> Wanted {
        let asked = |k: &str| filter.get(k).and_then(Value::as_bool) == Some(true);
        Wanted {
            tools: asked("toolsListChanged"),
            resources: asked("resourcesListChanged"),
            prompts: asked("promptsListChanged"),
        }
    }

    /// The honored filter, as the acknowledgment states it.
    fn honored(&self) -> Value {
        let mut f = serde_json::Map::new();
        for (on, k) in [
            (self.tools, "toolsListChanged"),
            (self.resources, "resourcesListChanged"),
            (self.prompts, "promptsListChanged"),
        ] {
            if on {
                f.insert(k.to_string(), json!(true));
            }
        }
        Value::Object(f)
    }
}

/// A stream's frames: plain (`GET`), or of the listen request `id`.
enum Framing {
    Plain,
    Listen { id: Value },
}

impl Framing {
    fn notification(&self, method: &str) -> Bytes {
        let n = match self {
            Framing::Plain => json!({"jsonrpc": "2.0", "method": method}),
            Framing::Listen { id } => json!({"jsonrpc": "2.0", "method": method,
                "params": {"_meta": {SUBSCRIPTION_META: id}}}),
        };
        sse_event(&serde_json::to_vec(&n).expect("values encode"))
    }

    /// The notifications for each wanted kind that moved from `seen` to `now`.
    fn changes(&self, wanted: Wanted, seen: Changes, now: Changes) -> Option<Bytes> {
        let mut out = Vec::new();
        for (moved, method) in [
            (
                wanted.tools && seen.tools != now.tools,
                "notifications/tools/list_changed",
            ),
            (
                wanted.resources && seen.resources != now.resources,
                "notifications/resources/list_changed",
            ),
            (
                wanted.prompts && seen.prompts != now.prompts,
                "notifications/prompts/list_changed",
            ),
        ] {
            if moved {
                out.extend_from_slice(&self.notification(method));
            }
        }
        (!out.is_empty()).then(|| Bytes::from(out))
    }

    /// What ends the stream when the node drains: the listen request's result.
    fn last(&self) -> Option<Bytes> {
        match self {
            Framing::Plain => None,
            Framing::Listen { id } => {
                let r = json!({"jsonrpc": "2.0", "id": id, "result": {
                    "_meta": {SUBSCRIPTION_META: id}, "resultType": "complete"}});
                Some(sse_event(&serde_json::to_vec(&r).expect("values encode")))
            }
        }
    }
}

/// The session era's `GET /mcp` stream.
pub fn get_stream(
    changes: watch::Receiver<Changes>,
    closing: CancellationToken,
    slot: Slot,
) -> Response {
    stream(changes, closing, slot, Wanted::ALL, Framing::Plain, None)
}

/// The answer to `subscriptions/listen` request `id`: acknowledged, then
/// the wanted changes.
pub fn listen_stream(
    changes: watch::Receiver<Changes>,
    closing: CancellationToken,
    slot: Slot,
    wanted: Wanted,
    id: Value,
) -> Response {
    let ack = json!({"jsonrpc": "2.0", "method": "notifications/subscriptions/acknowledged",
        "params": {"notifications": wanted.honored(), "_meta": {SUBSCRIPTION_META: id}}});
    let first = sse_event(&serde_json::to_vec(&ack).expect("values encode"));
    stream(
        changes,
        closing,
        slot,
        wanted,
        Framing::Listen { id },
        Some(first),
    )
}

fn stream(
    mut changes: watch::Receiver<Changes>,
    closing: CancellationToken,
    slot: Slot,
    wanted: Wanted,
    framing: Framing,
    first: Option<Bytes>,
) -> Response {
    struct State {
        changes: watch::Receiver<Changes>,
        seen: Changes,
        keepalive: tokio::time::Interval,
        closing: CancellationToken,
        framing: Framing,
        wanted: Wanted,
        first: Option<Bytes>,
        done: bool,
        // Held by the stream: given back when the client goes away.
        _slot: Slot,
    }
    let seen = *changes.borrow_and_update();
    let mut keepalive =
        tokio::time::interval_at(tokio::time::Instant::now() + KEEPALIVE, KEEPALIVE);
    keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let state = State {
        changes,
        seen,
        keepalive,
        closing,
        framing,
        wanted,
        first,
        done: false,
        _slot: slot,
    };
    let events = futures_util::stream::unfold(state, |mut st| async move {
        if let Some(first) = st.first.take() {
            return Some((Ok::<_, std::convert::Infallible>(first), st));
        }
        if st.done {
            return None;
        }
        loop {
            let chunk = tokio::select! {
                r = st.changes.changed() => {
                    if r.is_err() {
                        return None;
                    }
                    let now = *st.changes.borrow_and_update();
                    let chunk = st.framing.changes(st.wanted, st.seen, now);
                    st.seen = now;
                    match chunk {
                        Some(c) => c,
                        // Nothing this stream wants moved.
                        None => continue,
                    }
                }
                _ = st.keepalive.tick() => Bytes::from_static(b": keep-alive\n\n"),
                _ = st.closing.cancelled() => {
                    st.done = true;
                    st.framing.last()?
                }
            };
            return Some((Ok(chunk), st));
        }
    });
    event_stream(Body::from_stream(events))
}

/// An answer whose body is a stream of server-sent events.
pub fn event_stream(body: Body) -> Response {
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(body)
        .expect("static headers are valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changes(tools: u64, resources: u64, prompts: u64) -> Changes {
        Changes {
            tools,
            resources,
            prompts,
        }
    }

    #[test]
    fn streams_announce_only_what_moved_and_was_asked_for() {
        let text = |b: Option<Bytes>| b.map(|b| String::from_utf8(b.to_vec()).unwrap());
        let plain = Framing::Plain;
        let all = text(plain.changes(Wanted::ALL, changes(1, 1, 1), changes(2, 1, 3))).unwrap();
        assert!(all.contains("tools/list_changed") && all.contains("prompts/list_changed"));
        assert!(!all.contains("resources/list_changed"));
        assert!(!all.contains("_meta"));
        assert_eq!(
            plain.changes(Wanted::ALL, changes(1, 1, 1), changes(1, 1, 1)),
            None
        );

        let wanted =
            Wanted::from_filter(&json!({"toolsListChanged": true, "promptsListChanged": false}));
        assert_eq!(
            wanted,
            Wanted {
                tools: true,
                resources: false,
                prompts: false
            }
        );
        assert_eq!(wanted.honored(), json!({"toolsListChanged": true}));
        let listen = Framing::Listen { id: json!("l-1") };
        assert_eq!(
            listen.changes(wanted, changes(1, 1, 1), changes(1, 2, 2)),
            None
        );
        let moved = text(listen.changes(wanted, changes(1, 1, 1), changes(2, 1, 1))).unwrap();
        let data: Value =
            serde_json::from_str(moved.trim().strip_prefix("event: message\ndata: ").unwrap())
                .unwrap();
        assert_eq!(
            data,
            json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed",
                   "params": {"_meta": {SUBSCRIPTION_META: "l-1"}}})
        );
        assert!(text(listen.last()).unwrap().contains(r#""id":"l-1""#));
        assert_eq!(plain.last(), None);
    }
}
