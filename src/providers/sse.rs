//! Incremental Server-Sent Events framing.
//!
//! Upstream bytes arrive in arbitrary pieces; the parser hands out whole events
//! (the raw bytes, terminator included, so they can be forwarded untouched) and
//! reads their `data:` and `event:` fields on demand. Lines may end in `\n` or
//! `\r\n`, per the SSE specification.

use bytes::{Bytes, BytesMut};

/// Events larger than this are a protocol error, not something to buffer forever.
pub const MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("server-sent event exceeds {MAX_EVENT_BYTES} bytes")]
pub struct EventTooLarge;

#[derive(Default)]
pub struct SseParser {
    buf: BytesMut,
    /// Bytes of `buf` already searched for a terminator.
    scanned: usize,
}

/// One complete event as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub raw: Bytes,
}

impl SseParser {
    pub fn new() -> SseParser {
        SseParser::default()
    }

    pub fn push(&mut self, chunk: &[u8]) -> Result<(), EventTooLarge> {
        if self.buf.len() + chunk.len() > MAX_EVENT_BYTES && self.find_end().is_none() {
            return Err(EventTooLarge);
        }
        self.buf.extend_from_slice(chunk);
        Ok(())
    }

    /// The next complete event, if one has arrived.
    pub fn next_event(&mut self) -> Option<SseEvent> {
        let end = self.find_end()?;
        self.scanned = 0;
        Some(SseEvent {
            raw: self.buf.split_to(end).freeze(),
        })
    }

    /// Bytes of an event not yet terminated (what was cut off if the stream ends now).
    pub fn pending(&self) -> &[u8] {
        &self.buf
    }

    /// End offset (exclusive) of the first event: the index after a blank line.
    fn find_end(&mut self) -> Option<usize> {
        let b = &self.buf;
        // Resume a little before the last scan point: a terminator may straddle pushes.
        let mut i = self.scanned.saturating_sub(3);
        while i < b.len() {
            if b[i] == b'\n' {
                match b.get(i + 1) {
                    Some(b'\n') => return Some(i + 2),
                    Some(b'\r') if b.get(i + 2) == Some(&b'\n') => return Some(i + 3),
                    _ => {}
                }
            }
            i += 1;
        }
        self.scanned = b.len();
        None
    }
}

impl SseEvent {
    pub fn from_static(s: &'static str) -> SseEvent {
        SseEvent {
            raw: Bytes::from_static(s.as_bytes()),
        }
    }

    fn lines(&self) -> impl Iterator<Item = &[u8]> {
        self.raw
            .split(|&c| c == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
    }

    fn field(line: &[u8], name: &[u8]) -> Option<String> {
        let rest = line.strip_prefix(name)?.strip_prefix(b":")?;
        let rest = rest.strip_prefix(b" ").unwrap_or(rest);
        Some(String::from_utf8_lossy(rest).into_owned())
    }

    /// The `data` field: all `data:` lines joined with `\n`; `None` when there are none.
    pub fn data(&self) -> Option<String> {
        let mut out: Option<String> = None;
        for line in self.lines() {
            if let Some(v) = Self::field(line, b"data") {
                match &mut out {
                    Some(s) => {
                        s.push('\n');
                        s.push_str(&v);
                    }
                    None => out = Some(v),
                }
            }
        }
        out
    }

    /// The `event` field, if present.
    pub fn event_type(&self) -> Option<String> {
        self.lines().find_map(|l| Self::field(l, b"event"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(pieces: &[&[u8]]) -> Vec<SseEvent> {
        let mut p = SseParser::new();
        let mut out = vec![];
        for piece in pieces {
            p.push(piece).unwrap();
            while let Some(e) = p.next_event() {
                out.push(e);
            }
        }
        out
    }

    #[test]
    fn splits_events_across_arbitrary_chunking() {
        let stream = b"data: {\"a\":1}\n\ndata: [DONE]\n\n";
        let whole = collect(&[stream]);
        assert_eq!(whole.len(), 2);
        // Every split point yields the same events.
        for cut in 0..stream.len() {
            let parts = collect(&[&stream[..cut], &stream[cut..]]);
            assert_eq!(parts, whole, "cut at {cut}");
        }
        // Byte by byte too.
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(collect(&bytes), whole);
        assert_eq!(whole[0].data().as_deref(), Some("{\"a\":1}"));
        assert_eq!(whole[1].data().as_deref(), Some("[DONE]"));
    }

    #[test]
    fn crlf_and_multiline_data_and_event_names() {
        let ev = collect(&[b"event: message_start\r\ndata: a\r\ndata:b\r\n\r\n"]);
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].event_type().as_deref(), Some("message_start"));
        assert_eq!(ev[0].data().as_deref(), Some("a\nb"));
    }

    #[test]
    fn comments_have_no_data_and_partial_events_stay_pending() {
        let mut p = SseParser::new();
        p.push(b": keep-alive\n\ndata: par").unwrap();
        let e = p.next_event().unwrap();
        assert_eq!(e.data(), None);
        assert!(p.next_event().is_none());
        assert_eq!(p.pending(), b"data: par");
    }

    #[test]
    fn oversized_events_are_refused() {
        let mut p = SseParser::new();
        let big = vec![b'x'; MAX_EVENT_BYTES];
        p.push(b"data: ").unwrap();
        assert_eq!(p.push(&big), Err(EventTooLarge));
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    fn events() -> impl Strategy<Value = Vec<String>> {
        prop::collection::vec("[a-z0-9 {}\":,\\[\\]]{0,40}", 0..8)
    }

    proptest! {
        /// However the bytes are cut, the same events come out, whole and in order.
        #[test]
        fn chunking_never_changes_the_events(payloads in events(), cuts in prop::collection::vec(0usize..400, 0..10), crlf in any::<bool>()) {
            let nl = if crlf { "\r\n" } else { "\n" };
            let stream: String = payloads.iter().map(|p| format!("data: {p}{nl}{nl}")).collect();
            let bytes = stream.as_bytes();
            let mut points: Vec<usize> = cuts.into_iter().map(|c| c.min(bytes.len())).collect();
            points.sort();
            let mut p = SseParser::new();
            let mut got = Vec::new();
            let mut last = 0;
            for cut in points.into_iter().chain([bytes.len()]) {
                p.push(&bytes[last..cut]).unwrap();
                last = cut;
                while let Some(ev) = p.next_event() {
                    got.push(ev.data().unwrap());
                }
            }
            prop_assert_eq!(got, payloads);
            prop_assert!(p.pending().is_empty());
        }

        /// Arbitrary bytes from a hostile upstream never panic the parser.
        #[test]
        fn arbitrary_bytes_are_survived(chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..16)) {
            let mut p = SseParser::new();
            for c in &chunks {
                p.push(c).unwrap();
                while let Some(ev) = p.next_event() {
                    let _ = ev.data();
                    let _ = ev.event_type();
                    if let Some(d) = ev.data() {
                        let _ = crate::providers::openai::chunk_kind(&d);
                        let _ = crate::providers::openai::chunk_text(&d);
                    }
                }
            }
        }
    }
}
