//! The byte encoding keys are hashed from: SHA-256 over a domain string, the
//! encoding's version, the kind of key, then the request's fields in a fixed
//! order, each a tag byte and a length-prefixed or fixed-width payload.
//!
//! Nothing here depends on a map's iteration order, on `std::hash::Hash` or
//! on how `serde_json` prints: the same values hash alike on every node, in
//! every release that keeps [`super::VERSION`].

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Written first, so that no other SHA-256 use in the gateway can collide
/// with a cache key.
const DOMAIN: &[u8] = b"tollgate/cache-key\0";

pub(super) struct Enc(Sha256);

impl Enc {
    pub fn new(version: u8, kind: u8) -> Enc {
        let mut h = Sha256::new();
        h.update(DOMAIN);
        h.update([version, kind]);
        Enc(h)
    }

    pub fn tag(&mut self, t: u8) {
        self.0.update([t]);
    }

    pub fn u64(&mut self, n: u64) {
        self.0.update(n.to_be_bytes());
    }

    pub fn len(&mut self, n: usize) {
        self.u64(n as u64);
    }

    pub fn bool(&mut self, b: bool) {
        self.tag(u8::from(b));
    }

    pub fn str(&mut self, s: &str) {
        self.len(s.len());
        self.0.update(s.as_bytes());
    }

    /// IEEE-754 bits, big-endian; `-0.0` is `0.0`. JSON has no NaN.
    pub fn f64(&mut self, x: f64) {
        let x = if x == 0.0 { 0.0 } else { x };
        self.0.update(x.to_bits().to_be_bytes());
    }

    /// `0` for absent, `1` then the value.
    pub fn opt<T>(&mut self, v: Option<T>, mut f: impl FnMut(&mut Enc, T)) {
        match v {
            None => self.tag(0),
            Some(v) => {
                self.tag(1);
                f(self, v);
            }
        }
    }

    /// Canonical JSON: object keys sorted by their UTF-8 bytes, numbers of
    /// integral value (`1`, `1.0`, `1e0`) as integers, others as `f64`
    /// bits; array order kept.
    pub fn json(&mut self, v: &Value) {
        match v {
            Value::Null => self.tag(b'n'),
            Value::Bool(false) => self.tag(b'f'),
            Value::Bool(true) => self.tag(b't'),
            Value::Number(n) => match integral(n) {
                Some(i) => {
                    self.tag(b'i');
                    self.0.update(i.to_be_bytes());
                }
                None => {
                    self.tag(b'd');
                    self.f64(n.as_f64().unwrap_or(0.0));
                }
            },
            Value::String(s) => {
                self.tag(b's');
                self.str(s);
            }
            Value::Array(a) => {
                self.tag(b'a');
                self.len(a.len());
                a.iter().for_each(|v| self.json(v));
            }
            Value::Object(o) => {
                self.tag(b'o');
                self.len(o.len());
                let mut fields: Vec<(&String, &Value)> = o.iter().collect();
                fields.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
                for (k, v) in fields {
                    self.str(k);
                    self.json(v);
                }
            }
        }
    }

    pub fn finish(self) -> [u8; 32] {
        self.0.finalize().into()
    }
}

/// `n` as an integer when it has an integral value that an `i128` holds.
fn integral(n: &serde_json::Number) -> Option<i128> {
    if let Some(i) = n.as_i64() {
        return Some(i.into());
    }
    if let Some(u) = n.as_u64() {
        return Some(u.into());
    }
    let x = n.as_f64()?;
    // 2^63: beyond it an f64 is still integral, but keep it a float so that
    // the conversion below cannot saturate.
    (x.fract() == 0.0 && x.abs() < 9_223_372_036_854_775_808.0).then_some(x as i64 as i128)
}

/// Two JSON values equal as [`Enc::json`] sees them (`0` is `0.0`).
pub(super) fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (integral(x), integral(y)) {
            (Some(x), Some(y)) => x == y,
            (None, None) => x.as_f64() == y.as_f64(),
            _ => false,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}
