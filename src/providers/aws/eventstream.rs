//! The AWS event-stream framing (`application/vnd.amazon.eventstream`), in
//! which Bedrock's ConverseStream sends its events: binary messages, each
//!
//! ```text
//! total length u32 | headers length u32 | prelude CRC32 u32 |
//! headers … | payload … | message CRC32 u32          (integers big-endian)
//! ```
//!
//! a header being a name (u8 length, UTF-8), a type byte and a typed value.
//! [`Decoder`] takes bytes as they arrive and yields whole messages, with
//! both CRCs checked and every length bounded before anything is buffered
//! beyond it; [`encode`] writes one (the mock and the tests). Untrusted
//! input: fuzzed (`fuzz/`), property-tested below.

use bytes::{Buf, Bytes, BytesMut};

/// The largest message accepted (AWS's own limit for a message is 16 MiB).
pub const MAX_MESSAGE: usize = 16 * 1024 * 1024;

/// Prelude (12 bytes) and message CRC (4).
const OVERHEAD: usize = 16;

/// A header's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Bool(bool),
    Byte(i8),
    Short(i16),
    Int(i32),
    Long(i64),
    Bytes(Vec<u8>),
    String(String),
    /// Milliseconds since the Unix epoch.
    Timestamp(i64),
    Uuid([u8; 16]),
}

/// One message: its headers and payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub headers: Vec<(String, Value)>,
    pub payload: Bytes,
}

impl Message {
    /// The string value of header `name` (`:event-type`, `:message-type`,
    /// `:exception-type`, `:content-type`).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|(n, v)| match v {
            Value::String(s) if n == name => Some(s.as_str()),
            _ => None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("event-stream message of {0} bytes is over the limit of {MAX_MESSAGE}")]
    TooLarge(usize),
    #[error("event-stream message length {0} is shorter than its framing")]
    TooShort(usize),
    #[error("event-stream prelude CRC does not match")]
    PreludeCrc,
    #[error("event-stream message CRC does not match")]
    MessageCrc,
    #[error("event-stream headers are malformed: {0}")]
    Headers(&'static str),
    #[error("event-stream ended inside a message ({0} bytes left over)")]
    Truncated(usize),
}

/// Whole messages out of bytes in any pieces. After an error the stream is
/// broken: the decoder keeps returning it.
#[derive(Default)]
pub struct Decoder {
    buf: BytesMut,
    broken: Option<Error>,
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// Adds bytes as they arrived.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.broken.is_none() {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// The next whole message, `None` until one is complete.
    pub fn next_message(&mut self) -> Result<Option<Message>, Error> {
        if let Some(e) = &self.broken {
            return Err(e.clone());
        }
        match self.decode() {
            Err(e) => {
                self.buf.clear();
                self.broken = Some(e.clone());
                Err(e)
            }
            ok => ok,
        }
    }

    /// At the end of the stream: an error if a message was cut.
    pub fn finish(&self) -> Result<(), Error> {
        match (&self.broken, self.buf.len()) {
            (Some(e), _) => Err(e.clone()),
            (None, 0) => Ok(()),
            (None, n) => Err(Error::Truncated(n)),
        }
    }

    fn decode(&mut self) -> Result<Option<Message>, Error> {
        if self.buf.len() < 12 {
            return Ok(None);
        }
        let total = be32(&self.buf[0..4]) as usize;
        let headers_len = be32(&self.buf[4..8]) as usize;
        if crc32(&self.buf[0..8]) != be32(&self.buf[8..12]) {
            return Err(Error::PreludeCrc);
        }
        if total > MAX_MESSAGE {
            return Err(Error::TooLarge(total));
        }
        if total < OVERHEAD || headers_len > total - OVERHEAD {
            return Err(Error::TooShort(total));
        }
        if self.buf.len() < total {
            return Ok(None);
        }
        let frame = self.buf.split_to(total).freeze();
        if crc32(&frame[..total - 4]) != be32(&frame[total - 4..]) {
            return Err(Error::MessageCrc);
        }
        let headers = parse_headers(&frame[12..12 + headers_len])?;
        let payload = frame.slice(12 + headers_len..total - 4);
        Ok(Some(Message { headers, payload }))
    }
}

fn parse_headers(mut b: &[u8]) -> Result<Vec<(String, Value)>, Error> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let name_len = b.get_u8() as usize;
        if name_len == 0 || b.len() < name_len + 1 {
            return Err(Error::Headers("a name is empty or cut"));
        }
        let name = std::str::from_utf8(&b[..name_len])
            .map_err(|_| Error::Headers("a name is not UTF-8"))?
            .to_string();
        b.advance(name_len);
        let kind = b.get_u8();
        let need = |b: &[u8], n: usize| {
            if b.len() < n {
                Err(Error::Headers("a value is cut"))
            } else {
                Ok(())
            }
        };
        let value = match kind {
            0 => Value::Bool(true),
            1 => Value::Bool(false),
            2 => {
                need(b, 1)?;
                Value::Byte(b.get_i8())
            }
            3 => {
                need(b, 2)?;
                Value::Short(b.get_i16())
            }
            4 => {
                need(b, 4)?;
                Value::Int(b.get_i32())
            }
            5 | 8 => {
                need(b, 8)?;
                let v = b.get_i64();
                if kind == 5 {
                    Value::Long(v)
                } else {
                    Value::Timestamp(v)
                }
            }
            6 | 7 => {
                need(b, 2)?;
                let n = b.get_u16() as usize;
                need(b, n)?;
                let bytes = b[..n].to_vec();
                b.advance(n);
                if kind == 6 {
                    Value::Bytes(bytes)
                } else {
                    Value::String(
                        String::from_utf8(bytes)
                            .map_err(|_| Error::Headers("a string is not UTF-8"))?,
                    )
                }
            }
            9 => {
                need(b, 16)?;
                let mut u = [0u8; 16];
                b.copy_to_slice(&mut u);
                Value::Uuid(u)
            }
            _ => return Err(Error::Headers("unknown value type")),
        };
        out.push((name, value));
    }
    Ok(out)
}

/// One message, framed. Names over 255 bytes and byte or string values over
/// 65,535 are cut to fit (nothing this gateway sends comes near).
pub fn encode(headers: &[(&str, Value)], payload: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    for (name, value) in headers {
        let name = &name.as_bytes()[..name.len().min(255)];
        h.push(name.len() as u8);
        h.extend_from_slice(name);
        match value {
            Value::Bool(true) => h.push(0),
            Value::Bool(false) => h.push(1),
            Value::Byte(v) => {
                h.push(2);
                h.push(*v as u8);
            }
            Value::Short(v) => {
                h.push(3);
                h.extend_from_slice(&v.to_be_bytes());
            }
            Value::Int(v) => {
                h.push(4);
                h.extend_from_slice(&v.to_be_bytes());
            }
            Value::Long(v) | Value::Timestamp(v) => {
                h.push(if matches!(value, Value::Long(_)) {
                    5
                } else {
                    8
                });
                h.extend_from_slice(&v.to_be_bytes());
            }
            Value::Bytes(v) => {
                h.push(6);
                let v = &v[..v.len().min(u16::MAX as usize)];
                h.extend_from_slice(&(v.len() as u16).to_be_bytes());
                h.extend_from_slice(v);
            }
            Value::String(v) => {
                h.push(7);
                let v = &v.as_bytes()[..v.len().min(u16::MAX as usize)];
                h.extend_from_slice(&(v.len() as u16).to_be_bytes());
                h.extend_from_slice(v);
            }
            Value::Uuid(v) => {
                h.push(9);
                h.extend_from_slice(v);
            }
        }
    }
    let total = OVERHEAD + h.len() + payload.len();
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(h.len() as u32).to_be_bytes());
    let prelude_crc = crc32(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(payload);
    let crc = crc32(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// CRC-32 (IEEE 802.3, the polynomial zlib and AWS use).
pub fn crc32(bytes: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    };
    !bytes.iter().fold(!0u32, |c, &b| {
        TABLE[((c ^ b as u32) & 0xff) as usize] ^ (c >> 8)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn event(kind: &str, payload: &str) -> Vec<u8> {
        encode(
            &[
                (":event-type", Value::String(kind.into())),
                (":content-type", Value::String("application/json".into())),
                (":message-type", Value::String("event".into())),
            ],
            payload.as_bytes(),
        )
    }

    #[test]
    fn crc32_of_the_check_string() {
        // The standard check value of CRC-32/ISO-HDLC.
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    /// AWS's documented smallest message: no headers, no payload, total
    /// length 16, prelude CRC 0x05c248eb, message CRC 0x7d98c8ff.
    #[test]
    fn the_empty_message() {
        let m = encode(&[], b"");
        assert_eq!(
            m,
            [
                0, 0, 0, 16, 0, 0, 0, 0, 0x05, 0xc2, 0x48, 0xeb, 0x7d, 0x98, 0xc8, 0xff
            ]
        );
        let mut d = Decoder::new();
        d.push(&m);
        let msg = d.next_message().unwrap().unwrap();
        assert!(msg.headers.is_empty() && msg.payload.is_empty());
        assert!(d.finish().is_ok());
    }

    #[test]
    fn messages_in_any_pieces_and_every_header_type() {
        let all = [
            ("t", Value::Bool(true)),
            ("f", Value::Bool(false)),
            ("b", Value::Byte(-3)),
            ("s", Value::Short(-300)),
            ("i", Value::Int(70_000)),
            ("l", Value::Long(-5_000_000_000)),
            ("bytes", Value::Bytes(vec![0, 1, 255])),
            ("str", Value::String("héllo".into())),
            ("ts", Value::Timestamp(1_700_000_000_000)),
            ("id", Value::Uuid([7; 16])),
        ];
        let mut stream = encode(&all, b"{\"x\":1}");
        stream.extend(event("contentBlockDelta", r#"{"delta":{"text":"hi"}}"#));
        for piece in [1, 3, 7, 1000] {
            let mut d = Decoder::new();
            let mut got = Vec::new();
            for chunk in stream.chunks(piece) {
                d.push(chunk);
                while let Some(m) = d.next_message().unwrap() {
                    got.push(m);
                }
            }
            d.finish().unwrap();
            assert_eq!(got.len(), 2, "pieces of {piece}");
            let names: Vec<(String, Value)> = all
                .iter()
                .map(|(n, v)| (n.to_string(), v.clone()))
                .collect();
            assert_eq!(got[0].headers, names);
            assert_eq!(&got[0].payload[..], b"{\"x\":1}");
            assert_eq!(got[1].header(":event-type"), Some("contentBlockDelta"));
        }
    }

    #[test]
    fn bad_crcs_huge_lengths_and_cut_streams_are_errors() {
        let good = event("messageStop", r#"{"stopReason":"end_turn"}"#);
        let mut bad = good.clone();
        let at = bad.len() - 6;
        bad[at] ^= 1;
        let mut d = Decoder::new();
        d.push(&bad);
        assert_eq!(d.next_message(), Err(Error::MessageCrc));
        // Broken for good: more bytes change nothing.
        d.push(&good);
        assert_eq!(d.next_message(), Err(Error::MessageCrc));

        let mut prelude = good.clone();
        prelude[2] ^= 0x10;
        let mut d = Decoder::new();
        d.push(&prelude);
        assert_eq!(d.next_message(), Err(Error::PreludeCrc));

        // A length past the limit is refused before anything is buffered.
        let mut huge = Vec::new();
        huge.extend_from_slice(&(u32::MAX).to_be_bytes());
        huge.extend_from_slice(&0u32.to_be_bytes());
        let crc = crc32(&huge);
        huge.extend_from_slice(&crc.to_be_bytes());
        let mut d = Decoder::new();
        d.push(&huge);
        assert_eq!(d.next_message(), Err(Error::TooLarge(u32::MAX as usize)));

        // Headers longer than the message.
        let mut short = Vec::new();
        short.extend_from_slice(&20u32.to_be_bytes());
        short.extend_from_slice(&10u32.to_be_bytes());
        let crc = crc32(&short);
        short.extend_from_slice(&crc.to_be_bytes());
        let mut d = Decoder::new();
        d.push(&short);
        assert_eq!(d.next_message(), Err(Error::TooShort(20)));

        let mut d = Decoder::new();
        d.push(&good[..good.len() - 1]);
        assert_eq!(d.next_message(), Ok(None));
        assert_eq!(d.finish(), Err(Error::Truncated(good.len() - 1)));
    }

    proptest! {
        /// Whatever the headers and payload, a message decodes to itself,
        /// split anywhere.
        #[test]
        fn round_trip(
            names in proptest::collection::vec("[a-z:-]{1,20}", 0..6),
            texts in proptest::collection::vec(".{0,40}", 6),
            payload in proptest::collection::vec(any::<u8>(), 0..300),
            cut in 0usize..400,
        ) {
            let headers: Vec<(&str, Value)> = names
                .iter()
                .zip(&texts)
                .map(|(n, t)| (n.as_str(), Value::String(t.clone())))
                .collect();
            let bytes = encode(&headers, &payload);
            let cut = cut.min(bytes.len());
            let mut d = Decoder::new();
            d.push(&bytes[..cut]);
            let early = d.next_message().unwrap();
            d.push(&bytes[cut..]);
            let m = match early {
                Some(m) => m,
                None => d.next_message().unwrap().unwrap(),
            };
            prop_assert_eq!(&m.payload[..], &payload[..]);
            prop_assert_eq!(m.headers.len(), headers.len());
            prop_assert!(d.finish().is_ok());
        }

        /// Any bytes at all: an error or messages, never a panic, and never
        /// a message whose CRCs did not match.
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut d = Decoder::new();
            d.push(&bytes);
            while let Ok(Some(_)) = d.next_message() {}
        }
    }
}
