//! Relaying an upstream SSE stream to the client, event by event.
//!
//! Two stages. [`prefetch`] reads until the first event that carries content
//! (or the end marker); anything that goes wrong before that is an ordinary
//! attempt failure and the pipeline may retry or fail over, because the client
//! has seen nothing yet. [`relay`] then forwards what was buffered and every
//! later event as it arrives; a failure from here on ends the client's stream
//! with an OpenAI-shaped error event, never a hung or silently truncated one.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use super::native::UpstreamBody;
use super::upstream::{Failure, error_chain};
use super::{ErrorKind, Finisher, ProxyError};
use crate::providers::openai::{self, ChunkKind, Usage};
use crate::providers::sse::{SseEvent, SseParser};
use crate::providers::tokens;
use axum::body::Body;
use bytes::Bytes;
use http::Response;
use http_body_util::BodyExt;

/// A stream whose first content event has arrived, with what came before it.
pub struct Prefetched {
    body: UpstreamBody,
    parser: SseParser,
    queue: VecDeque<Bytes>,
    idle: Duration,
    /// Drop the usage-only chunk: the gateway asked for it, the client did not.
    strip_usage: bool,
    usage: Option<Usage>,
    /// For upstreams that report no usage on streams: the prompt's token
    /// count and the text streamed so far, to count instead.
    counted: Option<(u64, String)>,
    done: bool,
}

/// Reads `resp` until its first content event. Failures before it are returned
/// for the pipeline to retry or fail over.
/// `count_from` is the prompt's token count when the upstream will report no
/// usage, so the output is counted as it passes.
pub async fn prefetch(
    resp: Response<UpstreamBody>,
    idle: Duration,
    strip_usage: bool,
    count_from: Option<u64>,
) -> Result<Prefetched, Failure> {
    let mut pre = Prefetched {
        body: resp.into_body(),
        parser: SseParser::new(),
        queue: VecDeque::new(),
        idle,
        strip_usage,
        usage: None,
        counted: count_from.map(|prompt| (prompt, String::new())),
        done: false,
    };
    loop {
        match tokio::time::timeout(idle, pre.body.frame()).await {
            Err(_) => return Err(Failure::IdleTimeout(idle)),
            Ok(None) => {
                return Err(Failure::StreamBroken(
                    "the upstream ended the stream before any content".into(),
                ));
            }
            Ok(Some(Err(e))) => return Err(Failure::StreamBroken(error_chain(&*e))),
            Ok(Some(Ok(frame))) => {
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                pre.parser
                    .push(&data)
                    .map_err(|e| Failure::StreamBroken(e.to_string()))?;
                while let Some(ev) = pre.parser.next_event() {
                    let Some(d) = ev.data() else {
                        pre.queue.push_back(ev.raw);
                        continue;
                    };
                    match openai::chunk_kind(&d) {
                        ChunkKind::Error => {
                            let msg = openai::error_message(d.as_bytes())
                                .unwrap_or_else(|| "error event".into());
                            return Err(Failure::StreamBroken(format!("upstream error: {msg}")));
                        }
                        ChunkKind::Content | ChunkKind::Done => {
                            let done = pre.take(ev, &d);
                            pre.done |= done;
                            return Ok(pre);
                        }
                        ChunkKind::UsageOnly | ChunkKind::Preamble | ChunkKind::Other => {
                            pre.take(ev, &d);
                        }
                    }
                }
            }
        }
    }
}

impl Prefetched {
    /// Whether an event must be read rather than passed on as bytes: the end
    /// marker, a chunk with usage, or any chunk while output is being counted.
    /// Most content chunks take the fast path and are never parsed.
    fn needs_reading(&self, raw: &[u8]) -> bool {
        use memchr::memmem::find;
        self.counted.is_some()
            || find(raw, b"[DONE]").is_some()
            || (find(raw, b"\"usage\"").is_some() && find(raw, b"\"usage\":null").is_none())
    }

    /// Passes an event on, reading it only when it has to.
    fn accept(&mut self, ev: SseEvent) {
        if !self.needs_reading(&ev.raw) {
            self.queue.push_back(ev.raw);
            return;
        }
        match ev.data() {
            Some(d) => {
                let done = self.take(ev, &d);
                self.done |= done;
            }
            None => self.queue.push_back(ev.raw),
        }
    }

    /// Everything queued, as one piece: one body frame per upstream read
    /// rather than one per event.
    fn drain(&mut self) -> Option<Bytes> {
        match self.queue.len() {
            0 => None,
            1 => self.queue.pop_front(),
            _ => {
                let mut out =
                    bytes::BytesMut::with_capacity(self.queue.iter().map(Bytes::len).sum());
                for b in self.queue.drain(..) {
                    out.extend_from_slice(&b);
                }
                Some(out.freeze())
            }
        }
    }

    /// Queues an event for the client (or drops a stripped usage chunk) and
    /// notes usage. Returns whether it was the `[DONE]` marker.
    fn take(&mut self, ev: SseEvent, data: &str) -> bool {
        if data == "[DONE]" {
            self.queue.push_back(ev.raw);
            return true;
        }
        if let Some((_, text)) = &mut self.counted {
            text.push_str(&openai::chunk_text(data));
        }
        // Cheap test first: most chunks carry no usage, or `"usage":null`.
        if data.contains("\"usage\"") && !data.contains("\"usage\":null") {
            if let Some(u) = openai::usage_of(data.as_bytes()) {
                self.usage = Some(u);
            }
            if self.strip_usage && openai::chunk_kind(data) == ChunkKind::UsageOnly {
                return false;
            }
        }
        self.queue.push_back(ev.raw);
        false
    }
}

/// The client's body: buffered events, then the rest of the upstream stream.
/// The request is finished (logged, counted) when the stream ends or the client leaves.
pub fn relay(pre: Prefetched, fin: Finisher) -> Body {
    let state = Relay {
        pre,
        fin,
        ended: false,
    };
    Body::from_stream(futures_util::stream::unfold(state, |mut s| async move {
        s.next().await.map(|b| (Ok::<_, Infallible>(b), s))
    }))
}

struct Relay {
    pre: Prefetched,
    fin: Finisher,
    ended: bool,
}

impl Relay {
    async fn next(&mut self) -> Option<Bytes> {
        loop {
            if let Some(b) = self.pre.drain() {
                if let Some(c) = self.fin.ctx.as_mut().and_then(|c| c.content.as_mut()) {
                    c.push_response(&b);
                }
                return Some(b);
            }
            if self.ended {
                self.complete(None);
                return None;
            }
            // Events that arrived with the first content (one upstream read
            // often carries many) go out before anything new is read.
            if let Some(ev) = self.pre.parser.next_event() {
                self.pre.accept(ev);
                continue;
            }
            let idle = self.pre.idle;
            match tokio::time::timeout(idle, self.pre.body.frame()).await {
                Err(_) => self.fail(
                    ErrorKind::UpstreamTimeout,
                    format!("upstream sent nothing for {idle:?}"),
                ),
                Ok(None) if self.pre.done => self.ended = true,
                Ok(None) => self.fail(
                    ErrorKind::UpstreamFailed,
                    "upstream closed the stream before it was complete".into(),
                ),
                Ok(Some(Err(e))) => self.fail(
                    ErrorKind::UpstreamFailed,
                    format!("upstream stream failed: {}", error_chain(&*e)),
                ),
                Ok(Some(Ok(frame))) => {
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    if let Err(e) = self.pre.parser.push(&data) {
                        self.fail(ErrorKind::UpstreamFailed, e.to_string());
                        continue;
                    }
                    while let Some(ev) = self.pre.parser.next_event() {
                        self.pre.accept(ev);
                    }
                }
            }
        }
    }

    /// Ends the client's stream with an error event.
    fn fail(&mut self, kind: ErrorKind, message: String) {
        let e = ProxyError::new(kind, message);
        self.pre
            .queue
            .push_back(openai::stream_error_event(&e.object()));
        self.ended = true;
        self.complete(Some(e));
    }

    fn complete(&mut self, error: Option<ProxyError>) {
        let usage = self.pre.usage.or_else(|| {
            let (prompt, text) = self.pre.counted.as_ref()?;
            let completion = tokens::count(text);
            Some(Usage {
                prompt_tokens: *prompt,
                completion_tokens: completion,
                total_tokens: prompt + completion,
                ..Usage::default()
            })
        });
        if let Some(ctx) = self.fin.ctx.as_mut() {
            if let Some(u) = usage {
                ctx.usage = u;
            }
            if let Some(e) = error {
                ctx.status = e.status().as_u16();
                ctx.error = Some(e.message);
            }
        }
        self.fin.finish();
    }
}
