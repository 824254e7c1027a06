//! Last-writer-wins registers and per-field LWW maps.
//!
//! A replicated object (a virtual key, a team, a provider) is an [`LwwMap`] of
//! its fields: each field is its own register, so concurrent edits of
//! different fields both survive and concurrent edits of one field resolve to
//! the later timestamp. Deleting the object is a write to its `deleted`
//! register: a tombstone that wins over older writes and loses to newer ones.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Merge;
use super::hlc::Timestamp;

/// A value and the timestamp of the write that set it. Merge keeps the write
/// with the greater timestamp; timestamps are unique per write, so no ties.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LwwRegister<T> {
    pub ts: Timestamp,
    pub value: T,
}

impl<T: Clone> Merge for LwwRegister<T> {
    fn merge(&mut self, other: &Self) {
        if other.ts > self.ts {
            *self = other.clone();
        }
    }
}

impl<T: Clone> LwwRegister<T> {
    pub fn new(ts: Timestamp, value: T) -> LwwRegister<T> {
        LwwRegister { ts, value }
    }

    /// Writes `value` at `ts` if `ts` is newer. The delta of this mutation is
    /// the register `(ts, value)` itself.
    pub fn set(&mut self, ts: Timestamp, value: T) {
        self.merge(&LwwRegister { ts, value });
    }
}

/// Fields of an object, each a register. Values are opaque bytes (an encoded
/// field) so that the map can be persisted and sent with a non-self-describing
/// encoding; `None` is a cleared field.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LwwMap {
    pub fields: BTreeMap<String, LwwRegister<Option<Vec<u8>>>>,
}

impl Merge for LwwMap {
    fn merge(&mut self, other: &Self) {
        for (k, reg) in &other.fields {
            match self.fields.get_mut(k) {
                Some(mine) => mine.merge(reg),
                None => {
                    self.fields.insert(k.clone(), reg.clone());
                }
            }
        }
    }
}

impl LwwMap {
    /// Sets one field; returns the delta (a map holding just that field).
    pub fn set(&mut self, field: &str, ts: Timestamp, value: Option<Vec<u8>>) -> LwwMap {
        let reg = LwwRegister::new(ts, value);
        let mut delta = LwwMap::default();
        delta.fields.insert(field.to_string(), reg);
        self.merge(&delta);
        delta
    }

    pub fn get(&self, field: &str) -> Option<&[u8]> {
        self.fields.get(field)?.value.as_deref()
    }

    /// The newest write to any field.
    pub fn last_write(&self) -> Option<Timestamp> {
        self.fields.values().map(|r| r.ts).max()
    }
}
