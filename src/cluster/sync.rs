//! Paged anti-entropy: which names one page of a round covers and what each
//! side sends for it, as pure logic over sorted digests. It does no I/O and
//! reads no state: the caller fetches items, sends frames and applies what
//! arrives, so the same code runs between real nodes and in unit tests.
//!
//! A round is a sequence of pages on one bidirectional stream. Names are
//! compared as bytes (Rust's `str` order), and a page covers the half-open
//! range `(after, upto]`, `None` meaning the start, resp. the end, of the
//! name space:
//!
//! 1. the initiator sends its digest for its next [`Limits::page_items`]
//!    names after `after` (`SyncPage`); `upto` is the last of them, or
//!    `None` when it holds no more names, so the page also covers every
//!    name beyond its own that the responder may hold;
//! 2. the responder walks both sides of the range in order and answers
//!    (`SyncPageReply`) with its state of every item the initiator lacks or
//!    holds differently, until the next item would take the reply past
//!    [`Limits::reply_bytes`] (one item always goes, however large), with
//!    the names it wants back, and with `covered`, the last name it
//!    considered (`upto` when it got through the whole range);
//! 3. the initiator applies the changes, sends the wanted items in frames
//!    of at most `reply_bytes` each (`SyncGive`), and continues after
//!    `covered`, until a reply covers the end of the name space.
//!
//! Every name of either side lies in exactly one covered range, so every
//! item that differs is sent exactly once and wanted exactly once per round
//! (tested below), and no frame carries more than one page of digest or one
//! reply's worth of changes.

/// Most digest entries an initiator sends in one page. 4,096 entries of
/// names under ~100 bytes keep a page under half a MiB.
pub const PAGE_ITEMS: usize = 4096;

/// Most bytes of changes (postcard-encoded) in one reply or one give frame;
/// a single item larger than this travels alone in its frame (and must
/// still fit `proto::MAX_FRAME`).
pub const REPLY_BYTES: usize = 4 * 1024 * 1024;

/// A digest: item names and hashes of their state.
pub type Digest = Vec<(String, u64)>;

/// The sizes of a round's pages (`cluster.sync_page_items`,
/// `cluster.sync_reply_bytes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub page_items: usize,
    pub reply_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            page_items: PAGE_ITEMS,
            reply_bytes: REPLY_BYTES,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncError {
    #[error("the peer's reply covers up to {covered:?}, outside the page ({after:?}, {upto:?}]")]
    Cover {
        after: Option<String>,
        upto: Option<String>,
        covered: Option<String>,
    },
    #[error("a reply arrived with no page outstanding")]
    NoPage,
    #[error("the peer ended the round before the name space was covered")]
    Ended,
}

/// Sorts a digest by name and keeps one entry per name.
pub fn sorted(mut digest: Digest) -> Digest {
    digest.sort_by(|a, b| a.0.cmp(&b.0));
    digest.dedup_by(|a, b| a.0 == b.0);
    digest
}

/// The indices of `sorted`'s names in `(after, upto]`.
fn range(sorted: &[(String, u64)], after: Option<&str>, upto: Option<&str>) -> (usize, usize) {
    let start = after.map_or(0, |a| sorted.partition_point(|(n, _)| n.as_str() <= a));
    let end = upto.map_or(sorted.len(), |u| {
        sorted.partition_point(|(n, _)| n.as_str() <= u)
    });
    (start, end.max(start))
}

fn in_range(name: &str, after: Option<&str>, upto: Option<&str>) -> bool {
    after.is_none_or(|a| name > a) && upto.is_none_or(|u| name <= u)
}

/// One page an initiator sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub after: Option<String>,
    pub upto: Option<String>,
    pub digest: Digest,
}

/// The initiator's side of a round: which page comes next, and which of its
/// items a reply asks for.
pub struct Initiator {
    mine: Digest,
    page_items: usize,
    /// Where the next page starts; `None` at the start of the name space.
    after: Option<String>,
    /// The page sent and not yet answered.
    outstanding: Option<Page>,
    done: bool,
}

impl Initiator {
    pub fn new(digest: Digest, limits: Limits) -> Initiator {
        Initiator {
            mine: sorted(digest),
            page_items: limits.page_items.max(1),
            after: None,
            outstanding: None,
            done: false,
        }
    }

    /// The next page to send, or `None` once a reply covered the end of the
    /// name space.
    pub fn next_page(&mut self) -> Option<Page> {
        if self.done {
            return None;
        }
        let (start, _) = range(&self.mine, self.after.as_deref(), None);
        let end = (start + self.page_items).min(self.mine.len());
        let upto = (end < self.mine.len()).then(|| self.mine[end - 1].0.clone());
        let page = Page {
            after: self.after.clone(),
            upto,
            digest: self.mine[start..end].to_vec(),
        };
        self.outstanding = Some(page.clone());
        Some(page)
    }

    /// Takes the reply to the outstanding page: returns the names of the
    /// page's items the responder wants (only those it covered, and only
    /// names this side sent), and moves on after `covered`. A `covered`
    /// that does not move forward, or lies outside the page, is a broken
    /// peer: the round stops rather than loop.
    pub fn on_reply(
        &mut self,
        covered: Option<String>,
        wants: &[String],
    ) -> Result<Vec<String>, SyncError> {
        let page = self.outstanding.take().ok_or(SyncError::NoPage)?;
        let fits = match (&covered, &page.upto) {
            (None, None) => true,
            (None, Some(_)) => false,
            (Some(c), upto) => in_range(c, page.after.as_deref(), upto.as_deref()),
        };
        if !fits {
            return Err(SyncError::Cover {
                after: page.after,
                upto: page.upto,
                covered,
            });
        }
        let (start, end) = range(&page.digest, page.after.as_deref(), covered.as_deref());
        let mut wanted: Vec<&str> = wants.iter().map(String::as_str).collect();
        wanted.sort_unstable();
        let give = page.digest[start..end]
            .iter()
            .filter(|(n, _)| wanted.binary_search(&n.as_str()).is_ok())
            .map(|(n, _)| n.clone())
            .collect();
        match covered {
            None => self.done = true,
            Some(c) => self.after = Some(c),
        }
        Ok(give)
    }
}

/// The responder's reply to one page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply<C> {
    pub changes: Vec<C>,
    pub wants: Vec<String>,
    pub covered: Option<String>,
}

/// Answers the page `(after, upto]` whose initiator digest is `theirs`, from
/// this node's sorted digest `mine`. `fetch` gives an item's whole state and
/// its encoded size (`None` if it vanished meanwhile: it is then not sent).
pub fn answer<C>(
    mine: &[(String, u64)],
    after: Option<&str>,
    upto: Option<&str>,
    theirs: &[(String, u64)],
    reply_bytes: usize,
    mut fetch: impl FnMut(&str) -> Option<(C, usize)>,
) -> Reply<C> {
    // The peer's page should be sorted and in range; nothing relies on it.
    let mut theirs: Vec<&(String, u64)> = theirs
        .iter()
        .filter(|(n, _)| in_range(n, after, upto))
        .collect();
    theirs.sort_by(|a, b| a.0.cmp(&b.0));
    theirs.dedup_by(|a, b| a.0 == b.0);
    let (start, end) = range(mine, after, upto);
    let (mut m, mut t) = (
        mine[start..end].iter().peekable(),
        theirs.into_iter().peekable(),
    );
    let mut reply = Reply {
        changes: Vec::new(),
        wants: Vec::new(),
        covered: upto.map(str::to_string),
    };
    let mut bytes = 0usize;
    let mut last: Option<&str> = None;
    loop {
        let (name, mine_h, theirs_h) = match (m.peek(), t.peek()) {
            (None, None) => break,
            (Some((a, ha)), None) => (a.as_str(), Some(*ha), None),
            (None, Some((b, hb))) => (b.as_str(), None, Some(*hb)),
            (Some((a, ha)), Some((b, hb))) => match a.cmp(b) {
                std::cmp::Ordering::Less => (a.as_str(), Some(*ha), None),
                std::cmp::Ordering::Greater => (b.as_str(), None, Some(*hb)),
                std::cmp::Ordering::Equal => (a.as_str(), Some(*ha), Some(*hb)),
            },
        };
        if mine_h.is_some()
            && mine_h != theirs_h
            && let Some((change, size)) = fetch(name)
        {
            if !reply.changes.is_empty() && bytes.saturating_add(size) > reply_bytes {
                // This item starts the next reply: the range is covered up
                // to the one before it.
                reply.covered = last.map(str::to_string);
                return reply;
            }
            bytes = bytes.saturating_add(size);
            reply.changes.push(change);
        }
        if theirs_h.is_some() && mine_h != theirs_h {
            reply.wants.push(name.to_string());
        }
        if mine_h.is_some() {
            m.next();
        }
        if theirs_h.is_some() {
            t.next();
        }
        last = Some(name);
    }
    reply
}

/// Splits items (with their encoded sizes) into frames of at most
/// `max_bytes` each; an item larger than that gets a frame of its own.
pub fn chunks<C>(items: Vec<(C, usize)>, max_bytes: usize) -> Vec<Vec<C>> {
    let mut out: Vec<Vec<C>> = Vec::new();
    let mut bytes = 0usize;
    for (item, size) in items {
        match out.last_mut() {
            Some(frame) if bytes.saturating_add(size) <= max_bytes => {
                bytes = bytes.saturating_add(size);
                frame.push(item);
            }
            _ => {
                bytes = size;
                out.push(vec![item]);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// An item: its hash and its encoded size.
    type Side = BTreeMap<String, (u64, usize)>;

    fn side(items: &[(&str, u64, usize)]) -> Side {
        items
            .iter()
            .map(|(n, h, s)| (n.to_string(), (*h, *s)))
            .collect()
    }

    fn digest(s: &Side) -> Digest {
        // Unsorted on purpose: both ends sort.
        s.iter().rev().map(|(n, (h, _))| (n.clone(), *h)).collect()
    }

    /// What one whole round did.
    #[derive(Debug, Default)]
    struct Round {
        /// The covered ranges, in order.
        ranges: Vec<(Option<String>, Option<String>)>,
        /// Items the responder sent, in order.
        sent: Vec<String>,
        /// Items the initiator gave back, in order.
        given: Vec<String>,
        /// Bytes of each reply's changes.
        reply_bytes: Vec<usize>,
    }

    /// Runs a round between `a` (initiator) and `b`, then merges what moved
    /// (the larger hash wins, standing in for a CRDT merge).
    fn round(a: &mut Side, b: &mut Side, limits: Limits) -> Round {
        let mut r = Round::default();
        let mut init = Initiator::new(digest(a), limits);
        let theirs_mine = sorted(digest(b));
        let mut pages = 0;
        while let Some(page) = init.next_page() {
            pages += 1;
            assert!(pages < 10_000, "the round does not end");
            assert!(page.digest.len() <= limits.page_items.max(1));
            let reply = answer(
                &theirs_mine,
                page.after.as_deref(),
                page.upto.as_deref(),
                &page.digest,
                limits.reply_bytes,
                |n| b.get(n).map(|(h, s)| ((n.to_string(), *h, *s), *s)),
            );
            r.reply_bytes
                .push(reply.changes.iter().map(|(_, _, s)| s).sum());
            r.ranges.push((page.after.clone(), reply.covered.clone()));
            let give = init.on_reply(reply.covered, &reply.wants).unwrap();
            for (n, h, s) in reply.changes {
                r.sent.push(n.clone());
                let e = a.entry(n).or_insert((h, s));
                *e = (*e).max((h, s));
            }
            let frames = chunks(
                give.iter().map(|n| ((n.clone(), a[n]), a[n].1)).collect(),
                limits.reply_bytes,
            );
            for frame in frames {
                let bytes: usize = frame.iter().map(|(_, (_, s))| s).sum();
                assert!(frame.len() == 1 || bytes <= limits.reply_bytes);
                for (n, v) in frame {
                    r.given.push(n.clone());
                    let e = b.entry(n).or_insert(v);
                    *e = (*e).max(v);
                }
            }
        }
        r
    }

    /// The ranges tile the name space: each starts where the last ended, the
    /// last reaches the end, and every name lies in exactly one.
    fn assert_tiles(r: &Round, names: &[&String]) {
        let mut after: Option<String> = None;
        for (from, to) in &r.ranges {
            assert_eq!(from, &after, "ranges are contiguous: {:?}", r.ranges);
            if let (Some(f), Some(t)) = (from, to) {
                assert!(t > f, "a range moves forward");
            }
            after = to.clone();
        }
        assert_eq!(after, None, "the last range reaches the end");
        for n in names {
            let hits = r
                .ranges
                .iter()
                .filter(|(f, t)| in_range(n, f.as_deref(), t.as_deref()))
                .count();
            assert_eq!(hits, 1, "{n:?} is in exactly one range");
        }
    }

    /// One round between `a` and `b` leaves both equal, sends each differing
    /// item of `b` once and gives back each differing item of `a` once.
    fn check(mut a: Side, mut b: Side, limits: Limits) -> Round {
        let differs = |x: &Side, y: &Side| -> Vec<String> {
            x.iter()
                .filter(|(n, v)| y.get(*n) != Some(v))
                .map(|(n, _)| n.clone())
                .collect()
        };
        let (to_send, to_give) = (differs(&b, &a), differs(&a, &b));
        let all: Vec<String> = a.keys().chain(b.keys()).cloned().collect();
        let r = round(&mut a, &mut b, limits);
        assert_eq!(a, b, "both sides hold the merge");
        assert_eq!(r.sent, to_send, "each differing item sent once, in order");
        assert_eq!(r.given, to_give, "each wanted item given once, in order");
        assert_tiles(&r, &all.iter().collect::<Vec<_>>());
        for bytes in &r.reply_bytes {
            let biggest = a.values().map(|(_, s)| *s).max().unwrap_or(0);
            assert!(*bytes <= limits.reply_bytes.max(biggest));
        }
        r
    }

    fn many(prefix: &str, n: usize, hash: u64, size: usize) -> Vec<(String, u64, usize)> {
        (0..n)
            .map(|i| (format!("{prefix}{i:05}"), hash, size))
            .collect()
    }

    fn side_of(items: Vec<(String, u64, usize)>) -> Side {
        items.into_iter().map(|(n, h, s)| (n, (h, s))).collect()
    }

    const SMALL: Limits = Limits {
        page_items: 3,
        reply_bytes: 100,
    };

    #[test]
    fn names_that_share_prefixes_are_each_covered_once() {
        let names = [
            "a",
            "a\0",
            "a\0b",
            "a\0b\0",
            "ab",
            "b",
            "row\0t\0x",
            "row\0t\0x\0",
        ];
        let a = side(
            &names
                .iter()
                .step_by(2)
                .map(|n| (*n, 1, 10))
                .collect::<Vec<_>>(),
        );
        let b = side(
            &names
                .iter()
                .skip(1)
                .map(|n| (*n, 2, 10))
                .collect::<Vec<_>>(),
        );
        for page_items in 1..=4 {
            for reply_bytes in [1, 15, 30, 1000] {
                check(
                    a.clone(),
                    b.clone(),
                    Limits {
                        page_items,
                        reply_bytes,
                    },
                );
            }
        }
    }

    #[test]
    fn empty_sides() {
        let r = check(Side::new(), Side::new(), SMALL);
        assert_eq!(r.ranges, vec![(None, None)], "one empty page");
        let full = side_of(many("row\0keys\0", 20, 7, 30));
        let r = check(Side::new(), full.clone(), SMALL);
        assert!(r.given.is_empty());
        assert!(r.ranges.len() >= 20 * 30 / 100, "capped replies: {r:?}");
        let r = check(full, Side::new(), SMALL);
        assert!(r.sent.is_empty());
        assert!(r.ranges.len() >= 20 / 3, "one page per 3 items");
    }

    #[test]
    fn one_side_much_larger_and_items_on_one_side_only() {
        let mut big = many("ctr\0spend\0", 500, 1, 20);
        big.extend(many("row\0teams\0", 300, 1, 40));
        let mut small = many("ctr\0spend\0", 5, 1, 20); // the same
        small.extend(many("ctr\0spend\0x", 4, 9, 20)); // only here
        small.push((format!("row\0teams\0{:05}", 7), 2, 40)); // differs
        let (big, small) = (side_of(big), side_of(small));
        check(big.clone(), small.clone(), SMALL);
        check(small.clone(), big.clone(), SMALL);
        check(small, big, Limits::default());
    }

    #[test]
    fn a_reply_cap_smaller_than_one_item_still_moves_one_item_a_reply() {
        let b = side_of(many("row\0keys\0", 10, 3, 500));
        let r = check(Side::new(), b, SMALL);
        assert_eq!(r.ranges.len(), 10, "one item a reply");
        assert!(r.reply_bytes.iter().all(|b| *b == 500));
    }

    #[test]
    fn equal_sides_send_nothing() {
        let s = side_of(many("row\0keys\0", 50, 3, 10));
        let r = check(s.clone(), s, SMALL);
        assert!(r.sent.is_empty() && r.given.is_empty());
        assert_eq!(r.ranges.len(), 50usize.div_ceil(3));
    }

    #[test]
    fn a_reply_that_does_not_move_forward_is_refused() {
        let mut init = Initiator::new(digest(&side_of(many("x", 10, 1, 1))), SMALL);
        let page = init.next_page().unwrap();
        assert_eq!(page.upto.as_deref(), Some("x00002"));
        assert!(init.on_reply(None, &[]).is_err(), "past the page's end");
        init.next_page().unwrap();
        assert!(init.on_reply(Some("y".into()), &[]).is_err());
        init.next_page().unwrap();
        let give = init
            .on_reply(
                Some("x00001".into()),
                &["x00001".into(), "x00002".into(), "zz".into()],
            )
            .unwrap();
        assert_eq!(give, vec!["x00001".to_string()], "only what was covered");
        let page = init.next_page().unwrap();
        assert_eq!(page.after.as_deref(), Some("x00001"));
        assert!(
            init.on_reply(Some("x00001".into()), &[]).is_err(),
            "no progress"
        );
    }

    #[test]
    fn chunks_respect_the_cap_and_a_big_item_goes_alone() {
        let frames = chunks(vec![(1, 40), (2, 40), (3, 40), (4, 500), (5, 10)], 100);
        assert_eq!(frames, vec![vec![1, 2], vec![3], vec![4], vec![5]]);
        assert!(chunks::<u8>(vec![], 100).is_empty());
    }
}
