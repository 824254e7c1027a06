//! The node-to-node wire format (documented message by message in
//! `proto/README.md`).
//!
//! Every message is an [`Envelope`] encoded with postcard: the sender's wire
//! version, its node id, and a [`Body`]. On a QUIC datagram the envelope is
//! the whole datagram; on a stream each envelope is a frame, a 4-byte
//! big-endian length and then the bytes.
//!
//! Compatibility rules, so that nodes one version apart interoperate during a
//! rolling upgrade: the envelope's first two fields never change; variants of
//! [`Body`] are only ever appended (postcard encodes a variant as its index);
//! a message a node cannot decode is counted and dropped, never fatal; a new
//! kind of information travels in a new variant, which older nodes ignore.
//! Golden encodings of every message live in `proto/samples/` and must keep
//! decoding (`cargo test proto`).

use serde::{Deserialize, Serialize};

use crate::cache::store::Shared;
use crate::health::{RouteId, Summary};
use crate::state::{Change, NodeId};

/// The version this build speaks: 2 added [`Body::CacheEntries`], sent
/// only to peers that speak 2.
pub const WIRE_VERSION: u16 = 2;
/// The oldest version this build still understands.
pub const MIN_WIRE_VERSION: u16 = 1;
/// Largest frame accepted on a stream; a larger length is a broken or
/// hostile peer.
pub const MAX_FRAME: usize = 64 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub version: u16,
    pub from: NodeId,
    pub body: Body,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Body {
    /// A SWIM message, in foca's own postcard encoding (datagram).
    Swim(Vec<u8>),
    /// Changes pushed as they happen (unidirectional stream).
    Changes(Vec<Change>),
    /// Anti-entropy, step 1 (bidirectional stream, initiator): every item the
    /// initiator holds and a hash of its state.
    SyncDigest(Vec<(String, u64)>),
    /// Step 2 (responder): the whole state of every item the initiator lacks
    /// or holds differently, and the items the responder wants in return.
    SyncReply {
        changes: Vec<Change>,
        wants: Vec<String>,
    },
    /// Step 3 (initiator): the wanted items.
    SyncFinish(Vec<Change>),
    /// A node leaving on purpose, so peers stop waiting for it at once.
    Leaving,
    /// The sender lacks `amount` µ$ of allowance in the budget window named
    /// `key` (a spend counter name); the receiver may give it some, which
    /// then travels as a `Changes` of its gift counter (uni stream).
    AllowanceRequest { key: String, amount: u64 },
    /// A read-only query of the receiver's node-local data (bidirectional
    /// stream), answered with one `Answer`: `what` names the query (`logs`:
    /// a `LogQuery`, answered with a `MarkedPage`; `spend`: a `SpendQuery`
    /// with `since` and `until` set, answered with a `SpendReport`;
    /// `cache_clear`: a `ClearArgs`, answered with how many cached answers
    /// were deleted), `args` is its JSON. A node that does not know `what` answers an error.
    Query { what: String, args: String },
    /// The answer: JSON, or an error message.
    Answer(Result<String, String>),
    /// The sender's own health summaries of the routes it used (datagram-
    /// free: a unidirectional stream, every second).
    Health(Vec<(RouteId, Summary)>),
    /// Paged anti-entropy, one page (bidirectional stream, initiator): the
    /// initiator's digest of every item it holds with a name in
    /// `(after, upto]` (`None`: from the start, to the end of the name
    /// space), at most `cluster.sync_page_items` of them
    /// ([`super::sync`]). Replaces `SyncDigest` between nodes that know it.
    SyncPage {
        after: Option<String>,
        upto: Option<String>,
        digest: Vec<(String, u64)>,
    },
    /// The responder's answer to a page: its whole state of the items in
    /// `(after, covered]` the initiator lacks or holds differently (at most
    /// `cluster.sync_reply_bytes` of them, one item at least), the names in
    /// that range it wants back, and `covered`, up to which name it looked
    /// (`None`: to the end). The initiator's next page starts after it.
    SyncPageReply {
        covered: Option<String>,
        changes: Vec<Change>,
        wants: Vec<String>,
    },
    /// The initiator's wanted items of one page, in frames of at most
    /// `cluster.sync_reply_bytes` each.
    SyncGive(Vec<Change>),
    /// Leases (bidirectional stream, answered with one `LeaseGrant`): the
    /// ceiling the sender asks of the receiver, its deputy, in each budget
    /// window named (a spend counter name), at most `MAX_LEASES` of them.
    Lease(Vec<(String, u64)>),
    /// The ceilings granted, on the deputy's disk before it answers; a
    /// window it cannot price is left out.
    LeaseGrant(Vec<(String, u64)>),
    /// Answers the sender's cache stored (unidirectional stream, at a lower
    /// priority than governance's): each its key and stored row, at most
    /// [`MAX_CACHE_BATCH`] bytes of rows a message. Version 2.
    CacheEntries(Vec<Shared>),
}

/// Most bytes of rows one `CacheEntries` message carries (one row larger
/// than this travels alone).
pub const MAX_CACHE_BATCH: usize = 1024 * 1024;

/// Most windows one `Lease` message asks for.
pub const MAX_LEASES: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("undecodable message: {0}")]
    Decode(postcard::Error),
    #[error("peer speaks wire version {0}, this node reads {MIN_WIRE_VERSION}..={WIRE_VERSION}")]
    Version(u16),
    #[error("frame of {0} bytes is over the limit")]
    TooLarge(usize),
}

impl Envelope {
    pub fn new(from: NodeId, body: Body) -> Envelope {
        Envelope {
            version: WIRE_VERSION,
            from,
            body,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        postcard::to_stdvec(self).expect("envelopes encode")
    }

    /// Decodes an envelope from a peer. Versions outside the supported range
    /// are refused; so is anything that does not decode whole.
    pub fn decode(bytes: &[u8]) -> Result<Envelope, WireError> {
        let env: Envelope = postcard::from_bytes(bytes).map_err(WireError::Decode)?;
        if env.version < MIN_WIRE_VERSION {
            return Err(WireError::Version(env.version));
        }
        Ok(env)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::counter::GCounter;
    use crate::state::hlc::Timestamp;
    use crate::state::lww::LwwMap;

    /// One of each message, with fixed contents.
    fn samples() -> Vec<(&'static str, Envelope)> {
        let mut row = LwwMap::default();
        let ts = Timestamp {
            wall_ms: 1_795_000_000_000,
            counter: 2,
            node: 7,
        };
        row.set("name", ts, Some(b"\"ci\"".to_vec()));
        row.set("deleted", ts, None);
        let row_change = Change::Row {
            table: "keys".into(),
            id: "vk_abc".into(),
            row,
        };
        let mut counter = GCounter::default();
        counter.add(7, 1_500);
        counter.add(9, 20);
        let counter_change = Change::Counter {
            key: format!(
                "spend\0key:vk_abc\0{:020}\0{:020}",
                1_795_000_000_000u64, 1_795_086_400_000u64
            ),
            counter,
        };
        let env = |body| Envelope::new(7, body);
        vec![
            ("swim", env(Body::Swim(vec![1, 2, 3, 250]))),
            (
                "changes",
                env(Body::Changes(vec![
                    row_change.clone(),
                    counter_change.clone(),
                ])),
            ),
            (
                "sync_digest",
                env(Body::SyncDigest(vec![
                    (row_change.item(), 0x0123_4567_89ab_cdef),
                    (counter_change.item(), 42),
                ])),
            ),
            (
                "sync_reply",
                env(Body::SyncReply {
                    changes: vec![counter_change.clone()],
                    wants: vec![row_change.item()],
                }),
            ),
            (
                "sync_finish",
                env(Body::SyncFinish(vec![row_change.clone()])),
            ),
            ("leaving", env(Body::Leaving)),
            (
                "query",
                env(Body::Query {
                    what: "logs".into(),
                    args: r#"{"provider":"mock","limit":50}"#.into(),
                }),
            ),
            (
                "health",
                env(Body::Health(vec![(
                    RouteId {
                        provider: "groq".into(),
                        key: "team-a".into(),
                        model: "llama-3.3-70b-versatile".into(),
                    },
                    Summary {
                        errors: 0.25,
                        latency_ms: 180.5,
                        samples: 40,
                    },
                )])),
            ),
            (
                "answer",
                env(Body::Answer(Ok(r#"{"data":[],"next_cursor":null}"#.into()))),
            ),
            (
                "allowance_request",
                env(Body::AllowanceRequest {
                    key: format!(
                        "spend\0team:team_1\0{:020}\0{:020}",
                        1_795_000_000_000u64, 1_795_086_400_000u64
                    ),
                    amount: 25_000,
                }),
            ),
            (
                "sync_page",
                env(Body::SyncPage {
                    after: Some(counter_change.item()),
                    upto: Some(row_change.item()),
                    digest: vec![(row_change.item(), 0x0123_4567_89ab_cdef)],
                }),
            ),
            (
                "sync_page_reply",
                env(Body::SyncPageReply {
                    covered: None,
                    changes: vec![counter_change.clone()],
                    wants: vec![row_change.item()],
                }),
            ),
            ("sync_give", env(Body::SyncGive(vec![row_change]))),
            (
                "lease",
                env(Body::Lease(vec![(
                    format!(
                        "spend\0team:team_1\0{:020}\0{:020}",
                        1_795_000_000_000u64, 1_795_086_400_000u64
                    ),
                    125_000,
                )])),
            ),
            (
                "cache_entries",
                env(Body::CacheEntries(vec![Shared {
                    key: crate::cache::key::Key([0xab; 32]),
                    row: vec![2, 10, 20, 30],
                }])),
            ),
            (
                "lease_grant",
                env(Body::LeaseGrant(vec![(
                    format!(
                        "spend\0team:team_1\0{:020}\0{:020}",
                        1_795_000_000_000u64, 1_795_086_400_000u64
                    ),
                    125_000,
                )])),
            ),
        ]
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    /// Every golden sample in `proto/samples/v<N>/` decodes to the message
    /// it was made from; `UPDATE_GOLDEN=1` writes the current version's.
    #[test]
    fn golden_samples_still_decode() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("proto/samples");
        let current = root.join(format!("v{WIRE_VERSION}"));
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::create_dir_all(&current).unwrap();
            for (name, env) in samples() {
                std::fs::write(
                    current.join(format!("{name}.hex")),
                    hex(&env.encode()) + "\n",
                )
                .unwrap();
            }
        }
        for (name, env) in samples() {
            let path = current.join(format!("{name}.hex"));
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", path.display()));
            let decoded = Envelope::decode(&unhex(&text)).unwrap();
            assert_eq!(decoded, env, "{name}");
            assert_eq!(hex(&env.encode()), text.trim(), "{name}: encoding changed");
        }
        // Samples of every older version still supported must decode too.
        for entry in std::fs::read_dir(&root).unwrap() {
            let dir = entry.unwrap().path();
            let v: u16 = dir.file_name().unwrap().to_str().unwrap()[1..]
                .parse()
                .unwrap();
            if v == WIRE_VERSION || v < MIN_WIRE_VERSION {
                continue;
            }
            for sample in std::fs::read_dir(&dir).unwrap() {
                let text = std::fs::read_to_string(sample.unwrap().path()).unwrap();
                Envelope::decode(&unhex(&text)).unwrap();
            }
        }
    }

    /// What a node of the next version sends: a known message under a newer
    /// version number is read; a message kind this build does not know is an
    /// error the receiver counts and drops.
    #[test]
    fn messages_of_the_next_version_are_read_or_cleanly_refused() {
        let newer = Envelope {
            version: WIRE_VERSION + 1,
            from: 9,
            body: Body::Leaving,
        };
        assert_eq!(Envelope::decode(&newer.encode()).unwrap(), newer);
        // version 2, from 9, then a variant index past the last one known.
        let unknown_kind = [WIRE_VERSION as u8 + 1, 9, 200, 1, 0];
        assert!(matches!(
            Envelope::decode(&unknown_kind),
            Err(WireError::Decode(_))
        ));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(Envelope::decode(&[]).is_err());
        assert!(Envelope::decode(&[0xff; 64]).is_err());
        let mut bytes = samples()[1].1.encode();
        bytes.truncate(bytes.len() / 2);
        assert!(Envelope::decode(&bytes).is_err());
        let old = Envelope {
            version: 0,
            from: 1,
            body: Body::Leaving,
        };
        assert!(matches!(
            Envelope::decode(&old.encode()),
            Err(WireError::Version(0))
        ));
    }
}
