//! The audit log: every admin write that changed something, as a hash
//! chain per node (the node that accepted the write), replicated to every
//! node, verifiable offline (`tollgate audit verify`).
//!
//! An entry's `body` is its JSON (who, what, before and after, when, and
//! `prev`: the hash of the chain's entry before it); its `hash` is the
//! SHA-256 of `body`. Entries are stored under `node ‖ seq` and never
//! rewritten. An entry edited in place no longer matches its hash; one
//! removed leaves a gap in `seq`; entries swapped no longer sit under their
//! own `seq` or no longer name their predecessor. A node copies a peer's
//! entries only in order and only when each links to the one before, so a
//! tampered chain stops replicating at the first bad entry. Removing a
//! chain's last entries is seen only by comparing with a copy: the
//! verifier reports each chain's length, and every node holds a copy.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::store::{CF_AUDIT, Store, StoreError};

/// Most entries one replication answer carries.
pub const MAX_BATCH: usize = 1_000;
/// Most entries one query scans.
const MAX_SCAN: usize = 200_000;
const FORMAT: u8 = 1;

/// One entry of a chain: what an admin write did, and where it sits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The node that accepted the write (hex id) and the entry's place in
    /// that node's chain (from 1).
    pub node: String,
    pub seq: u64,
    #[serde(flatten)]
    pub write: Write,
    /// Hash of the chain's previous entry; empty for the first.
    pub prev: String,
}

/// An entry as stored and replicated: its exact JSON and that JSON's hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stored {
    pub body: String,
    pub hash: String,
}

/// What one admin write did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Write {
    pub ts_ms: u64,
    /// The admin token: a named token's id and name, or `null` and
    /// `bootstrap` for the configured one.
    pub token: Option<String>,
    pub token_name: String,
    pub role: String,
    pub method: String,
    pub path: String,
    /// The table written (`keys`, `teams`, `providers`, …), when one was.
    pub kind: Option<String>,
    pub object: Option<String>,
    /// `create`, `update`, `put`, `delete`, `rotate` or another verb.
    pub action: String,
    pub status: u16,
    /// The object before and after, secrets redacted; `null` where there
    /// was none.
    pub before: Value,
    pub after: Value,
}

fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The key of entry `seq` of `node`'s chain.
pub fn row_key(node: u64, seq: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&node.to_be_bytes());
    k[8..].copy_from_slice(&seq.to_be_bytes());
    k
}

fn node_id(hex: &str) -> Option<u64> {
    (hex.len() == 16).then(|| u64::from_str_radix(hex, 16).ok())?
}

pub struct AuditLog {
    store: Store,
    node: u64,
    /// Every chain's last entry here: node → (seq, hash).
    heads: Mutex<BTreeMap<u64, (u64, String)>>,
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("audit entry {node}/{seq}: {why}")]
    Refused { node: String, seq: u64, why: String },
}

impl AuditLog {
    /// The log of the node `node` in `store`, its chains' heads read.
    pub fn open(store: Store, node: u64) -> Result<AuditLog, StoreError> {
        // Each chain's last row, read backwards one chain at a time: as
        // many reads as chains, however long they are.
        let mut heads = BTreeMap::new();
        let mut below: Option<[u8; 16]> = None;
        loop {
            let mut last = None;
            store.scan_rev(CF_AUDIT, below.as_ref().map(|k| &k[..]), |k, v| {
                last = parse_row(k, v);
                last.is_none() // skip a malformed key, stop at the first row
            })?;
            let Some(((chain, seq), stored)) = last else {
                break;
            };
            heads.insert(chain, (seq, stored.hash));
            let Some(before) = chain.checked_sub(1) else {
                break;
            };
            below = Some(row_key(before, u64::MAX));
        }
        Ok(AuditLog {
            store,
            node,
            heads: Mutex::new(heads),
        })
    }

    /// Chains an admin write onto this node's chain and stores it durably.
    pub fn append(&self, w: Write) -> Result<Entry, AuditError> {
        let mut heads = self.heads.lock().expect("audit heads");
        let (seq, prev) = heads
            .get(&self.node)
            .map_or((1, String::new()), |(s, h)| (s + 1, h.clone()));
        let entry = Entry {
            node: format!("{:016x}", self.node),
            seq,
            write: w,
            prev,
        };
        let body = serde_json::to_string(&entry).expect("entries encode");
        let stored = Stored {
            hash: hex_sha256(body.as_bytes()),
            body,
        };
        self.put(self.node, seq, &stored)?;
        heads.insert(self.node, (seq, stored.hash));
        Ok(entry)
    }

    fn put(&self, node: u64, seq: u64, stored: &Stored) -> Result<(), AuditError> {
        let value = row_value(stored);
        self.store
            .write_durable(CF_AUDIT, [(&row_key(node, seq)[..], &value[..])], [])?;
        Ok(())
    }

    /// Every chain's length here, by node (hex): what a peer asks past.
    pub fn heads(&self) -> BTreeMap<String, u64> {
        self.heads
            .lock()
            .expect("audit heads")
            .iter()
            .map(|(n, (s, _))| (format!("{n:016x}"), *s))
            .collect()
    }

    /// Entries this node holds past `known` (chain → length), in chain
    /// order, at most [`MAX_BATCH`].
    pub fn after(&self, known: &BTreeMap<String, u64>) -> Result<Vec<Stored>, AuditError> {
        let heads: Vec<(u64, u64)> = self
            .heads
            .lock()
            .expect("audit heads")
            .iter()
            .map(|(n, (s, _))| (*n, *s))
            .collect();
        let mut out = Vec::new();
        for (node, head) in heads {
            let have = known.get(&format!("{node:016x}")).copied().unwrap_or(0);
            for seq in have + 1..=head {
                if out.len() == MAX_BATCH {
                    return Ok(out);
                }
                match self.store.get(CF_AUDIT, &row_key(node, seq))? {
                    Some(v) => out.push(decode_row(&v).map_err(|why| AuditError::Refused {
                        node: format!("{node:016x}"),
                        seq,
                        why,
                    })?),
                    // A gap: send nothing past it; the chain is broken here.
                    None => break,
                }
            }
        }
        Ok(out)
    }

    /// Stores a peer's entries that extend a chain here: each must be the
    /// next of its chain and name its predecessor's hash, and its hash
    /// must be its body's. Stops at the first that is not. Returns how
    /// many were stored.
    pub fn import(&self, entries: Vec<Stored>) -> Result<usize, AuditError> {
        let mut heads = self.heads.lock().expect("audit heads");
        let mut stored = 0;
        for s in entries {
            let e: Entry = serde_json::from_str(&s.body).map_err(|e| AuditError::Refused {
                node: "?".into(),
                seq: 0,
                why: format!("unreadable: {e}"),
            })?;
            let refuse = |why: &str| AuditError::Refused {
                node: e.node.clone(),
                seq: e.seq,
                why: why.into(),
            };
            let node = node_id(&e.node).ok_or_else(|| refuse("not a node id"))?;
            if node == self.node {
                continue; // this node's own chain is written only here
            }
            let (have, prev) = heads.get(&node).cloned().unwrap_or((0, String::new()));
            if e.seq <= have {
                continue; // already here
            }
            if e.seq != have + 1 {
                return Err(refuse("does not follow this node's copy of its chain"));
            }
            if hex_sha256(s.body.as_bytes()) != s.hash {
                return Err(refuse("its hash is not its body's"));
            }
            if e.prev != prev {
                return Err(refuse("does not name the previous entry's hash"));
            }
            self.put(node, e.seq, &s)?;
            heads.insert(node, (e.seq, s.hash));
            stored += 1;
        }
        Ok(stored)
    }

    /// Checks every chain this node holds ([`verify`]).
    pub fn verify(&self) -> Result<Vec<ChainReport>, StoreError> {
        verify(&self.store)
    }

    /// Entries newest first, filtered, at most `q.limit` (default 100).
    pub fn query(&self, q: &AuditQuery) -> Result<Vec<Value>, AuditError> {
        let mut out: Vec<(u64, String, u64, Value)> = Vec::new();
        let mut scanned = Vec::new();
        self.store.scan_rev(CF_AUDIT, None, |k, v| {
            scanned.extend(parse_row(k, v));
            scanned.len() < MAX_SCAN
        })?;
        for ((node, seq), s) in scanned {
            let Ok(e) = serde_json::from_str::<Entry>(&s.body) else {
                continue;
            };
            let w = &e.write;
            let keep = q.node.as_ref().is_none_or(|n| *n == e.node)
                && q.kind.as_ref().is_none_or(|k| w.kind.as_ref() == Some(k))
                && q.object
                    .as_ref()
                    .is_none_or(|o| w.object.as_ref() == Some(o))
                && q.action.as_ref().is_none_or(|a| *a == w.action)
                && q.token
                    .as_ref()
                    .is_none_or(|t| w.token.as_ref() == Some(t) || *t == w.token_name)
                && q.since.is_none_or(|t| w.ts_ms >= t)
                && q.until.is_none_or(|t| w.ts_ms < t);
            if keep {
                let mut v = serde_json::to_value(&e).expect("entries encode");
                v["hash"] = Value::from(s.hash);
                out.push((e.write.ts_ms, format!("{node:016x}"), seq, v));
            }
        }
        out.sort_by(|a, b| (b.0, &b.1, b.2).cmp(&(a.0, &a.1, a.2)));
        Ok(out
            .into_iter()
            .take(q.limit.unwrap_or(100).min(1000))
            .map(|(_, _, _, v)| v)
            .collect())
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    pub node: Option<String>,
    pub kind: Option<String>,
    pub object: Option<String>,
    pub action: Option<String>,
    /// A named token's id, or a token name (`bootstrap`).
    pub token: Option<String>,
    pub since: Option<u64>,
    pub until: Option<u64>,
    pub limit: Option<usize>,
}

fn decode_row(v: &[u8]) -> Result<Stored, String> {
    match v.split_first() {
        Some((&FORMAT, body)) => serde_json::from_slice(body).map_err(|e| e.to_string()),
        Some((other, _)) => Err(format!("unknown format {other}")),
        None => Err("empty".into()),
    }
}

/// Where a row sits: (node, seq).
type ChainPlace = (u64, u64);

/// Every stored row: ((node, seq), entry), in key order.
fn rows(store: &Store) -> Result<Vec<(ChainPlace, Stored)>, StoreError> {
    let mut out = Vec::new();
    store.scan_prefix(CF_AUDIT, &[], |k, v| out.extend(parse_row(k, v)))?;
    Ok(out)
}

/// A row's place and entry; `None` for a key that is not `node ‖ seq`. An
/// unreadable value is an entry with an empty hash (verify names it).
fn parse_row(k: &[u8], v: &[u8]) -> Option<(ChainPlace, Stored)> {
    if k.len() != 16 {
        return None;
    }
    let node = u64::from_be_bytes(k[..8].try_into().expect("8 bytes"));
    let seq = u64::from_be_bytes(k[8..].try_into().expect("8 bytes"));
    let s = decode_row(v).unwrap_or(Stored {
        body: String::new(),
        hash: String::new(),
    });
    Some(((node, seq), s))
}

/// One chain's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainReport {
    pub node: String,
    /// Entries that verified, from the first.
    pub entries: u64,
    /// The first entry that was altered, removed or moved, and how.
    pub broken: Option<String>,
}

/// Checks every chain in `store`: each entry's hash is its body's, sits
/// under its own `seq` with no gap from 1, and names its predecessor's hash.
pub fn verify(store: &Store) -> Result<Vec<ChainReport>, StoreError> {
    let mut chains: BTreeMap<u64, Vec<(u64, Stored)>> = BTreeMap::new();
    for ((node, seq), s) in rows(store)? {
        chains.entry(node).or_default().push((seq, s));
    }
    Ok(chains
        .into_iter()
        .map(|(node, entries)| verify_chain(node, &entries))
        .collect())
}

fn verify_chain(node: u64, entries: &[(u64, Stored)]) -> ChainReport {
    let name = format!("{node:016x}");
    let mut prev = String::new();
    let mut expected = 1;
    for (seq, s) in entries {
        let broken = |why: String| ChainReport {
            node: name.clone(),
            entries: expected - 1,
            broken: Some(why),
        };
        if *seq != expected {
            return broken(format!(
                "entry {expected} was removed (the next stored is {seq})"
            ));
        }
        if s.hash.is_empty() || hex_sha256(s.body.as_bytes()) != s.hash {
            return broken(format!(
                "entry {seq} was altered (its hash is not its body's)"
            ));
        }
        let Ok(e) = serde_json::from_str::<Entry>(&s.body) else {
            return broken(format!("entry {seq} was altered (unreadable)"));
        };
        if e.seq != *seq || e.node != name {
            return broken(format!(
                "entry {seq} was moved: it holds entry {} of chain {}",
                e.seq, e.node
            ));
        }
        if e.prev != prev {
            return broken(format!(
                "entry {seq} does not follow entry {}: entries were removed or reordered before it",
                seq - 1
            ));
        }
        prev = s.hash.clone();
        expected += 1;
    }
    ChainReport {
        node: name,
        entries: expected - 1,
        broken: None,
    }
}

/// The stored value of `s`.
pub fn row_value(s: &Stored) -> Vec<u8> {
    let mut value = vec![FORMAT];
    value.extend_from_slice(&serde_json::to_vec(s).expect("entries encode"));
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(n: u64) -> Write {
        Write {
            ts_ms: n,
            token: None,
            token_name: "bootstrap".into(),
            role: "admin".into(),
            method: "POST".into(),
            path: "/api/teams".into(),
            kind: Some("teams".into()),
            object: Some(format!("team_{n}")),
            action: "create".into(),
            status: 201,
            before: Value::Null,
            after: serde_json::json!({"name": format!("t{n}")}),
        }
    }

    fn log(node: u64) -> (tempfile::TempDir, AuditLog) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        (dir, AuditLog::open(store, node).unwrap())
    }

    fn stored(log: &AuditLog, node: u64, seq: u64) -> Stored {
        decode_row(
            &log.store
                .get(CF_AUDIT, &row_key(node, seq))
                .unwrap()
                .unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn a_chain_verifies_and_replicates_in_order() {
        let (_d, a) = log(1);
        for n in 1..=5 {
            a.append(write(n)).unwrap();
        }
        let report = verify(&a.store).unwrap();
        assert_eq!(
            report,
            vec![ChainReport {
                node: format!("{:016x}", 1),
                entries: 5,
                broken: None
            }]
        );
        let (_d2, b) = log(2);
        let sent = a.after(&b.heads()).unwrap();
        assert_eq!(sent.len(), 5);
        assert_eq!(b.import(sent).unwrap(), 5);
        assert_eq!(
            b.import(a.after(&BTreeMap::new()).unwrap()).unwrap(),
            0,
            "nothing twice"
        );
        assert_eq!(verify(&b.store).unwrap(), verify(&a.store).unwrap());
        // A reopened copy knows the head of every chain it holds.
        b.append(write(9)).unwrap();
        let b = AuditLog::open(b.store.clone(), 2).unwrap();
        let heads = b.heads();
        assert_eq!(heads.get(&format!("{:016x}", 1)), Some(&5));
        assert_eq!(heads.get(&format!("{:016x}", 2)), Some(&1));
        assert_eq!(b.append(write(10)).unwrap().seq, 2);
        // A reopened log continues its chain.
        let store = a.store.clone();
        drop(a);
        let a = AuditLog::open(store, 1).unwrap();
        assert_eq!(a.append(write(6)).unwrap().seq, 6);
        assert_eq!(verify(&a.store).unwrap()[0].entries, 6);
    }

    #[test]
    fn tampering_is_named() {
        // Altered in place.
        let (_d, a) = log(1);
        for n in 1..=4 {
            a.append(write(n)).unwrap();
        }
        let mut s = stored(&a, 1, 2);
        s.body = s.body.replace("\"t2\"", "\"t9\"");
        a.store
            .put(CF_AUDIT, &row_key(1, 2), &row_value(&s))
            .unwrap();
        let r = &verify(&a.store).unwrap()[0];
        assert_eq!(r.entries, 1);
        assert!(
            r.broken.as_ref().unwrap().contains("entry 2 was altered"),
            "{r:?}"
        );
        // Altered with its hash recomputed: the next entry no longer follows it.
        s.hash = hex_sha256(s.body.as_bytes());
        a.store
            .put(CF_AUDIT, &row_key(1, 2), &row_value(&s))
            .unwrap();
        let r = &verify(&a.store).unwrap()[0];
        assert!(
            r.broken
                .as_ref()
                .unwrap()
                .contains("entry 3 does not follow"),
            "{r:?}"
        );

        // Removed.
        let (_d, b) = log(1);
        for n in 1..=4 {
            b.append(write(n)).unwrap();
        }
        b.store
            .write_durable(CF_AUDIT, [], [&row_key(1, 3)[..]])
            .unwrap();
        let r = &verify(&b.store).unwrap()[0];
        assert!(
            r.broken.as_ref().unwrap().contains("entry 3 was removed"),
            "{r:?}"
        );

        // Reordered (two entries swapped).
        let (_d, c) = log(1);
        for n in 1..=4 {
            c.append(write(n)).unwrap();
        }
        let (two, three) = (stored(&c, 1, 2), stored(&c, 1, 3));
        c.store
            .put(CF_AUDIT, &row_key(1, 2), &row_value(&three))
            .unwrap();
        c.store
            .put(CF_AUDIT, &row_key(1, 3), &row_value(&two))
            .unwrap();
        let r = &verify(&c.store).unwrap()[0];
        assert!(
            r.broken.as_ref().unwrap().contains("entry 2 was moved"),
            "{r:?}"
        );
    }

    #[test]
    fn a_peer_copy_refuses_entries_that_do_not_link() {
        let (_d, a) = log(1);
        for n in 1..=3 {
            a.append(write(n)).unwrap();
        }
        let mut sent = a.after(&BTreeMap::new()).unwrap();
        sent[1].body = sent[1].body.replace("\"t2\"", "\"tx\"");
        let (_d2, b) = log(2);
        let err = b.import(sent).unwrap_err().to_string();
        assert!(err.contains("hash"), "{err}");
        assert_eq!(
            b.heads().get(&format!("{:016x}", 1)),
            Some(&1),
            "the good prefix is kept"
        );
    }

    #[test]
    fn queries_filter_and_come_newest_first() {
        let (_d, a) = log(1);
        for n in 1..=3 {
            a.append(write(n)).unwrap();
        }
        let all = a.query(&AuditQuery::default()).unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[0]["seq"], 3);
        let one = a
            .query(&AuditQuery {
                object: Some("team_2".into()),
                ..AuditQuery::default()
            })
            .unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0]["after"]["name"], "t2");
        assert!(one[0]["hash"].as_str().unwrap().len() == 64);
    }
}
