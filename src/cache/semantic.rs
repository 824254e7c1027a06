//! The semantic cache's index: for each partition (everything of a request
//! but its last question, `key::Semantic`), the embeddings of the questions
//! whose answers are stored, and for a new question the stored one nearest
//! to it.
//!
//! A partition of up to [`FLAT_MAX`] questions is searched exactly, by
//! comparing with each. A larger one is an HNSW graph (`hnsw_rs`, an
//! approximate nearest-neighbour search; built on a thread of its own when
//! the partition grows past the bound, and searched flat meanwhile): a
//! partition that holds 100 k questions (one tenant, one model, one system
//! prompt) is searched in about as many steps as one of a few hundred.
//!
//! Questions leave with their answers (expiry, eviction, clearing). A graph
//! cannot delete a point, so a departed question is only hidden from
//! searches; once the hidden outnumber the live, the graph is rebuilt from
//! its live points on a thread of its own (searches use the old one until
//! the swap), or becomes flat again when few are left. The index is in memory only:
//! each stored answer's row holds its question's embedding, and
//! `store::CacheStore::open` rebuilds the index from the rows at start.
//!
//! Every vector is a unit vector (the embedder normalises), so the
//! similarity of two questions is the dot product of their embeddings:
//! 1 for the same text, about 0 for unrelated ones.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use hnsw_rs::anndists::dist::Distance;
use hnsw_rs::hnsw::Hnsw;
use hnsw_rs::prelude::FilterT;

use super::key::Key;

/// Up to this many questions a partition is searched by comparing with each
/// (256 dimensions × 1,024 is a quarter of a million multiply-adds, tens of
/// microseconds); past it, by its graph.
pub const FLAT_MAX: usize = 1024;

/// Graph parameters: links per point, and candidates kept while building
/// and while searching. Larger is slower and finds the true nearest more
/// often; these found it in `tests` and `benches/cache_hit.rs`.
const LINKS: usize = 16;
const EF_BUILD: usize = 100;
const EF_SEARCH: usize = 32;
const LAYERS: usize = 16;

/// A stored question in a partition: its point id, its answer's exact key
/// and its embedding.
type Point = (usize, Key, Vec<f32>);

/// The nearest stored question, and how similar it is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Nearest {
    /// The exact key its answer is stored under.
    pub key: Key,
    pub similarity: f32,
}

/// Cosine distance of unit vectors, never negative (rounding can make the
/// dot product of a vector with itself pass 1).
#[derive(Debug, Clone, Copy, Default)]
struct Cosine;

impl Distance<f32> for Cosine {
    fn eval(&self, a: &[f32], b: &[f32]) -> f32 {
        (1.0 - dot(a, b)).max(0.0)
    }
}

/// The dot product, in eight independent sums: a single running sum makes
/// each addition wait for the one before (floating-point addition is not
/// reordered for us), which made a 256-dimension comparison, done thousands
/// of times per graph search, latency-bound; eight lanes let the compiler
/// use vector instructions.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut lanes = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for ((l, x), y) in lanes.iter_mut().zip(x).zip(y) {
            *l += x * y;
        }
    }
    lanes.iter().sum::<f32>() + tail
}

struct Graph {
    hnsw: Hnsw<'static, f32, Cosine>,
    /// Points still stored, by point id.
    live: HashMap<usize, Key>,
    /// Points hidden from searches.
    hidden: usize,
    /// A rebuild of this graph is under way ([`rebuild`]).
    rebuilding: bool,
}

/// Searches see only live points.
struct Live<'a>(&'a HashMap<usize, Key>);

impl FilterT for Live<'_> {
    fn hnsw_filter(&self, id: &usize) -> bool {
        self.0.contains_key(id)
    }
}

impl Graph {
    fn build(points: &[Point]) -> Graph {
        let hnsw = Hnsw::new(
            LINKS,
            points.len().max(FLAT_MAX * 2),
            LAYERS,
            EF_BUILD,
            Cosine,
        );
        let data: Vec<(&[f32], usize)> = points
            .iter()
            .map(|(id, _, v)| (v.as_slice(), *id))
            .collect();
        hnsw.parallel_insert_slice(&data);
        Graph {
            hnsw,
            live: points.iter().map(|(id, k, _)| (*id, *k)).collect(),
            hidden: 0,
            rebuilding: false,
        }
    }

    /// Every live point with its vector, read back from the graph.
    fn live_points(&self) -> Vec<Point> {
        self.live_points_where(|_| true)
    }

    /// The live points whose id `pick` takes, with their vectors.
    fn live_points_where(&self, pick: impl Fn(usize) -> bool) -> Vec<Point> {
        let points = self.hnsw.get_point_indexation();
        let mut out = Vec::new();
        for layer in 0..=usize::from(points.get_max_level_observed()) {
            for p in points.get_layer_iterator(layer) {
                let id = p.get_origin_id();
                if let Some(k) = self.live.get(&id)
                    && pick(id)
                {
                    out.push((id, *k, p.get_v().to_vec()));
                }
            }
        }
        out
    }
}

enum Points {
    Flat(Vec<Point>),
    Graph(Graph),
}

impl Points {
    fn len(&self) -> usize {
        match self {
            Points::Flat(v) => v.len(),
            Points::Graph(g) => g.live.len(),
        }
    }

    /// Adds a point; `true` when a flat list has just grown past
    /// [`FLAT_MAX`] and wants its graph built, off the caller's thread
    /// ([`rebuild`]; it is searched flat until then).
    fn insert(&mut self, id: usize, key: Key, v: Vec<f32>) -> bool {
        match self {
            Points::Flat(points) => {
                points.push((id, key, v));
                points.len() == FLAT_MAX + 1
            }
            Points::Graph(g) => {
                g.hnsw.insert_slice((&v, id));
                g.live.insert(id, key);
                false
            }
        }
    }

    /// Removes a point. Once a graph's hidden points outnumber its live
    /// ones it is replaced: by a flat list at once when few are left, else
    /// by a graph built from them off the caller's thread — `true` asks the
    /// caller to start that ([`rebuild`]).
    fn remove(&mut self, id: usize) -> bool {
        match self {
            Points::Flat(points) => {
                if let Some(at) = points.iter().position(|p| p.0 == id) {
                    points.swap_remove(at);
                }
                false
            }
            Points::Graph(g) => {
                if g.live.remove(&id).is_some() {
                    g.hidden += 1;
                }
                if g.hidden <= g.live.len() || g.rebuilding {
                    return false;
                }
                if g.live.len() <= FLAT_MAX {
                    *self = Points::Flat(g.live_points());
                    return false;
                }
                g.rebuilding = true;
                true
            }
        }
    }

    /// Keeps the points `keep` names (by id and key): a graph hides the
    /// others.
    fn retain(&mut self, keep: impl Fn(&usize, &Key) -> bool) {
        match self {
            Points::Flat(points) => points.retain(|(id, key, _)| keep(id, key)),
            Points::Graph(g) => {
                let before = g.live.len();
                g.live.retain(|id, key| keep(id, key));
                g.hidden += before - g.live.len();
            }
        }
    }

    /// The live points whose id `pick` takes, with their vectors.
    fn points_where(&self, pick: impl Fn(usize) -> bool) -> Vec<Point> {
        match self {
            Points::Flat(points) => points.iter().filter(|p| pick(p.0)).cloned().collect(),
            Points::Graph(g) => g.live_points_where(pick),
        }
    }

    /// The ids of the live points.
    fn ids(&self) -> std::collections::HashSet<usize> {
        match self {
            Points::Flat(points) => points.iter().map(|p| p.0).collect(),
            Points::Graph(g) => g.live.keys().copied().collect(),
        }
    }

    /// Every live point with its vector.
    fn into_points(self) -> Vec<Point> {
        match self {
            Points::Flat(points) => points,
            Points::Graph(g) => g.live_points(),
        }
    }

    fn nearest(&self, q: &[f32]) -> Option<Nearest> {
        match self {
            Points::Flat(points) => points
                .iter()
                .map(|(_, key, v)| Nearest {
                    key: *key,
                    similarity: dot(q, v),
                })
                .max_by(|a, b| a.similarity.total_cmp(&b.similarity)),
            Points::Graph(g) => g
                .hnsw
                .search_filter(
                    q,
                    1,
                    EF_SEARCH,
                    // Without hidden points, every point is live.
                    (g.hidden > 0).then_some(&Live(&g.live) as &dyn FilterT),
                )
                .into_iter()
                .filter_map(|n| {
                    g.live.get(&n.d_id).map(|key| Nearest {
                        key: *key,
                        similarity: 1.0 - n.distance,
                    })
                })
                .max_by(|a, b| a.similarity.total_cmp(&b.similarity)),
        }
    }
}

/// Replaces the graph in `slot` by one built from its live points, with no
/// lock held while building; what was added meanwhile joins the new graph
/// and what was removed meanwhile stays out of it. Searches go on in the old
/// graph until the swap.
fn rebuild(slot: &RwLock<Points>) {
    let snapshot = slot.read().expect("points").points_where(|_| true);
    let mut fresh = Graph::build(&snapshot);
    let had: std::collections::HashSet<usize> = snapshot.iter().map(|p| p.0).collect();
    let mut points = slot.write().expect("points");
    if matches!(&*points, Points::Flat(current) if current.len() <= FLAT_MAX) {
        // Shrunk back meanwhile: it stays flat.
        return;
    }
    let live = points.ids();
    let meanwhile = points.points_where(|id| !had.contains(&id));
    fresh.live.retain(|id, _| live.contains(id));
    fresh.hidden = had.len() - fresh.live.len();
    for (id, key, v) in meanwhile {
        fresh.hnsw.insert_slice((&v, id));
        fresh.live.insert(id, key);
    }
    *points = Points::Graph(fresh);
}

/// Where a stored question is.
#[derive(Clone, Copy)]
struct Place {
    partition: Key,
    id: usize,
}

/// The semantic index of one node.
pub struct SemanticIndex {
    /// Every vector's length: given, or that of the first one seen.
    dims: std::sync::OnceLock<usize>,
    partitions: RwLock<HashMap<Key, Arc<RwLock<Points>>>>,
    /// Each stored answer's question, by its exact key.
    places: Mutex<HashMap<Key, Place>>,
    next_id: std::sync::atomic::AtomicUsize,
    /// Graph rebuilds under way (or finished, until the next one starts).
    rebuilds: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

/// An embedding of the wrong length (another model's): never compared.
#[derive(Debug, thiserror::Error)]
#[error("an embedding of {found} dimensions, the index holds {dims}")]
pub struct WrongDimensions {
    pub found: usize,
    pub dims: usize,
}

impl SemanticIndex {
    /// An index of vectors of `dims` dimensions (`None`: as many as the
    /// first one has).
    pub fn new(dims: Option<usize>) -> SemanticIndex {
        let known = std::sync::OnceLock::new();
        if let Some(d) = dims {
            let _ = known.set(d);
        }
        SemanticIndex {
            dims: known,
            partitions: RwLock::default(),
            places: Mutex::default(),
            next_id: Default::default(),
            rebuilds: Mutex::default(),
        }
    }

    fn check(&self, v: &[f32]) -> Result<(), WrongDimensions> {
        let dims = *self.dims.get_or_init(|| v.len());
        if v.len() == dims && dims > 0 {
            Ok(())
        } else {
            Err(WrongDimensions {
                found: v.len(),
                dims,
            })
        }
    }

    fn partition(&self, p: &Key) -> Option<Arc<RwLock<Points>>> {
        self.partitions.read().expect("partitions").get(p).cloned()
    }

    /// Adds the question of the answer stored under `key`, in `partition`
    /// (replacing what `key` had).
    pub fn insert(&self, partition: Key, key: Key, v: Vec<f32>) -> Result<(), WrongDimensions> {
        self.check(&v)?;
        self.remove(&key);
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let points = self
            .partitions
            .write()
            .expect("partitions")
            .entry(partition)
            .or_insert_with(|| Arc::new(RwLock::new(Points::Flat(Vec::new()))))
            .clone();
        self.places
            .lock()
            .expect("places")
            .insert(key, Place { partition, id });
        if points.write().expect("points").insert(id, key, v) {
            self.spawn_rebuild(points);
        }
        Ok(())
    }

    /// Builds `slot`'s graph on a thread of its own ([`rebuild`]).
    fn spawn_rebuild(&self, slot: Arc<RwLock<Points>>) {
        let mut rebuilds = self.rebuilds.lock().expect("rebuilds");
        rebuilds.retain(|h| !h.is_finished());
        let building = slot.clone();
        match std::thread::Builder::new()
            .name("cache-graph".into())
            .spawn(move || rebuild(&building))
        {
            Ok(h) => rebuilds.push(h),
            Err(e) => {
                // No thread: the points stay as they are (searched flat, or
                // with hidden points: slower, never a wrong answer).
                tracing::warn!(error = %e, "cannot start a semantic index build");
                if let Points::Graph(g) = &mut *slot.write().expect("points") {
                    g.rebuilding = false;
                }
            }
        }
    }

    /// Adds many questions at once (at start, on a thread of its own): a
    /// large partition's graph is built in one parallel pass, with no lock
    /// held, so lookups and stores go on meanwhile. A question whose answer
    /// was stored again or dropped while the graph was being built is left
    /// out; one stored meanwhile is kept.
    pub fn extend(&self, rows: Vec<(Key, Key, Vec<f32>)>) {
        let mut by_partition: HashMap<Key, Vec<Point>> = HashMap::new();
        for (partition, key, v) in rows {
            if self.check(&v).is_err() {
                continue;
            }
            self.remove(&key);
            let id = self
                .next_id
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.places
                .lock()
                .expect("places")
                .insert(key, Place { partition, id });
            by_partition
                .entry(partition)
                .or_default()
                .push((id, key, v));
        }
        for (partition, points) in by_partition {
            let mut built = if points.len() > FLAT_MAX {
                Points::Graph(Graph::build(&points))
            } else {
                Points::Flat(points)
            };
            let shared = self
                .partitions
                .write()
                .expect("partitions")
                .entry(partition)
                .or_insert_with(|| Arc::new(RwLock::new(Points::Flat(Vec::new()))))
                .clone();
            let mut slot = shared.write().expect("points");
            {
                let places = self.places.lock().expect("places");
                built.retain(|id, key| places.get(key).is_some_and(|p| p.id == *id));
            }
            // What was stored while the graph was built joins it (or the
            // reverse, when that is the larger).
            let meanwhile = std::mem::replace(&mut *slot, Points::Flat(Vec::new()));
            let (mut into, from) = if built.len() >= meanwhile.len() {
                (built, meanwhile)
            } else {
                (meanwhile, built)
            };
            let mut wants_graph = false;
            for (id, key, v) in from.into_points() {
                wants_graph |= into.insert(id, key, v);
            }
            *slot = into;
            drop(slot);
            if wants_graph {
                self.spawn_rebuild(shared);
            }
        }
    }

    /// Forgets the question of the answer stored under `key`.
    pub fn remove(&self, key: &Key) {
        let Some(place) = self.places.lock().expect("places").remove(key) else {
            return;
        };
        let Some(slot) = self.partition(&place.partition) else {
            return;
        };
        let mut points = slot.write().expect("points");
        let wants_graph = points.remove(place.id);
        if wants_graph {
            drop(points);
            self.spawn_rebuild(slot.clone());
            points = slot.write().expect("points");
        }
        if points.len() == 0 {
            drop(points);
            let mut partitions = self.partitions.write().expect("partitions");
            if partitions
                .get(&place.partition)
                .is_some_and(|p| p.read().expect("points").len() == 0)
            {
                partitions.remove(&place.partition);
            }
        }
    }

    /// Waits for the graph rebuilds under way.
    pub fn wait_for_rebuilds(&self) {
        let handles = std::mem::take(&mut *self.rebuilds.lock().expect("rebuilds"));
        for h in handles {
            let _ = h.join();
        }
    }

    /// Forgets everything.
    pub fn clear(&self) {
        self.places.lock().expect("places").clear();
        self.partitions.write().expect("partitions").clear();
    }

    /// The stored question in `partition` nearest to `q`.
    pub fn nearest(&self, partition: &Key, q: &[f32]) -> Result<Option<Nearest>, WrongDimensions> {
        self.check(q)?;
        Ok(self
            .partition(partition)
            .and_then(|p| p.read().expect("points").nearest(q)))
    }

    /// The exact keys of every question the index holds.
    pub fn keys(&self) -> Vec<Key> {
        self.places
            .lock()
            .expect("places")
            .keys()
            .copied()
            .collect()
    }

    /// How many questions the index holds.
    pub fn len(&self) -> usize {
        self.places.lock().expect("places").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic unit vector near `base` when `spread` is small.
    fn vector(seed: u64, dims: usize) -> Vec<f32> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut v: Vec<f32> = (0..dims)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x % 2001) as f32 / 1000.0 - 1.0
            })
            .collect();
        let n = v.iter().map(|a| a * a).sum::<f32>().sqrt();
        v.iter_mut().for_each(|a| *a /= n);
        v
    }

    fn near(v: &[f32], seed: u64, by: f32) -> Vec<f32> {
        let noise = vector(seed, v.len());
        let mut out: Vec<f32> = v.iter().zip(&noise).map(|(a, b)| a + by * b).collect();
        let n = out.iter().map(|a| a * a).sum::<f32>().sqrt();
        out.iter_mut().for_each(|a| *a /= n);
        out
    }

    fn key(n: u32) -> Key {
        let mut k = [0u8; 32];
        k[..4].copy_from_slice(&n.to_be_bytes());
        Key(k)
    }

    /// What an exact search over `stored` finds for `q`.
    fn brute(stored: &[(Key, Vec<f32>)], q: &[f32]) -> Key {
        stored
            .iter()
            .max_by(|a, b| dot(q, &a.1).total_cmp(&dot(q, &b.1)))
            .unwrap()
            .0
    }

    #[test]
    fn the_dot_product_of_any_length() {
        for n in [0, 1, 7, 8, 9, 256, 259] {
            let a: Vec<f32> = (0..n).map(|i| i as f32 * 0.5 - 3.0).collect();
            let b: Vec<f32> = (0..n).map(|i| 1.0 - i as f32 * 0.25).collect();
            let plain: f64 = a.iter().zip(&b).map(|(x, y)| f64::from(x * y)).sum();
            assert!(
                (f64::from(dot(&a, &b)) - plain).abs() < 1e-3 * (1.0 + plain.abs()),
                "{n}"
            );
        }
    }

    #[test]
    fn partitions_never_meet_and_departed_questions_are_never_found() {
        let idx = SemanticIndex::new(Some(8));
        let (p, other) = (key(1000), key(2000));
        let v = vector(1, 8);
        idx.insert(p, key(1), v.clone()).unwrap();
        let found = idx.nearest(&p, &v).unwrap().unwrap();
        assert_eq!(found.key, key(1));
        assert!((found.similarity - 1.0).abs() < 1e-5);
        assert_eq!(idx.nearest(&other, &v).unwrap(), None);
        idx.remove(&key(1));
        assert_eq!(idx.nearest(&p, &v).unwrap(), None);
        assert!(idx.is_empty());
        assert!(idx.insert(p, key(2), vec![1.0; 9]).is_err());
        assert!(idx.nearest(&p, &[1.0; 3]).is_err());
    }

    /// Past `FLAT_MAX` a partition is a graph; a question near a stored one
    /// still finds it, removal hides it, and after most are removed the
    /// graph is rebuilt from the rest, which are still found.
    #[test]
    fn a_large_partition_finds_what_an_exact_search_finds() {
        let dims = 32;
        let idx = SemanticIndex::new(Some(dims));
        let p = key(u32::MAX);
        let n = FLAT_MAX as u32 * 2;
        let stored: Vec<(Key, Vec<f32>)> =
            (0..n).map(|i| (key(i), vector(i as u64, dims))).collect();
        for (k, v) in &stored {
            idx.insert(p, *k, v.clone()).unwrap();
        }
        // Past FLAT_MAX the graph is built beside the inserts.
        idx.wait_for_rebuilds();
        assert!(matches!(
            *idx.partition(&p).unwrap().read().unwrap(),
            Points::Graph(_)
        ));
        let mut agree = 0;
        for i in 0..200u32 {
            let q = near(&stored[(i * 7 % n) as usize].1, 10_000 + i as u64, 0.2);
            if idx.nearest(&p, &q).unwrap().unwrap().key == brute(&stored, &q) {
                agree += 1;
            }
        }
        assert!(
            agree >= 196,
            "the graph found the nearest {agree} times of 200"
        );
        // Remove three quarters: hidden, then rebuilt from the rest.
        let kept: Vec<(Key, Vec<f32>)> = stored
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 4 == 0)
            .map(|(_, s)| s.clone())
            .collect();
        for (i, (k, _)) in stored.iter().enumerate() {
            if i % 4 != 0 {
                idx.remove(k);
            }
        }
        assert_eq!(idx.len(), kept.len());
        assert!(matches!(
            *idx.partition(&p).unwrap().read().unwrap(),
            Points::Flat(_)
        ));
        for (i, (k, v)) in kept.iter().enumerate().take(50) {
            let found = idx.nearest(&p, v).unwrap().unwrap();
            assert_eq!(found.key, *k, "{i}");
        }
    }

    /// A large graph that lost most of its points is rebuilt off the
    /// caller's thread; what was stored and removed while it was being
    /// rebuilt is kept and left out, and searches find the live ones.
    #[test]
    fn a_graph_rebuilt_in_the_background_keeps_what_changed_meanwhile() {
        let dims = 16;
        let idx = SemanticIndex::new(Some(dims));
        let p = key(u32::MAX);
        let n = FLAT_MAX as u32 * 4;
        let stored: Vec<(Key, Vec<f32>)> =
            (0..n).map(|i| (key(i), vector(i as u64, dims))).collect();
        idx.extend(stored.iter().map(|(k, v)| (p, *k, v.clone())).collect());
        // Remove two of every three: the hidden outnumber the live, and more
        // than FLAT_MAX are left, so a rebuild starts.
        for (i, (k, _)) in stored.iter().enumerate() {
            if i % 3 != 0 {
                idx.remove(k);
            }
        }
        // Meanwhile (the rebuild may or may not have finished): one more
        // stored, one more removed.
        let late = vector(99_999, dims);
        idx.insert(p, key(n + 1), late.clone()).unwrap();
        idx.remove(&stored[3].0);
        idx.wait_for_rebuilds();
        let slot = idx.partition(&p).unwrap();
        match &*slot.read().unwrap() {
            Points::Graph(g) => {
                assert!(!g.rebuilding);
                assert!(g.hidden <= g.live.len(), "{} hidden", g.hidden);
                assert_eq!(g.live.len(), idx.len());
            }
            Points::Flat(_) => panic!("more than FLAT_MAX are left: a graph"),
        }
        assert_eq!(idx.nearest(&p, &late).unwrap().unwrap().key, key(n + 1));
        assert_ne!(
            idx.nearest(&p, &stored[3].1).unwrap().unwrap().key,
            stored[3].0
        );
        for (k, v) in stored.iter().step_by(3).skip(2).take(50) {
            assert_eq!(idx.nearest(&p, v).unwrap().unwrap().key, *k);
        }
    }

    #[test]
    fn a_large_partition_loaded_at_once_is_one_graph() {
        let dims = 16;
        let idx = SemanticIndex::new(Some(dims));
        let p = key(u32::MAX);
        let rows: Vec<(Key, Key, Vec<f32>)> = (0..FLAT_MAX as u32 + 10)
            .map(|i| (p, key(i), vector(i as u64, dims)))
            .chain([(key(7), key(u32::MAX - 1), vector(5, dims))])
            .collect();
        let v3 = rows[3].2.clone();
        idx.extend(rows);
        assert_eq!(idx.len(), FLAT_MAX + 11);
        assert_eq!(idx.nearest(&p, &v3).unwrap().unwrap().key, key(3));
        assert_eq!(
            idx.nearest(&key(7), &vector(5, dims)).unwrap().unwrap().key,
            key(u32::MAX - 1)
        );
        idx.clear();
        assert!(idx.is_empty());
        assert_eq!(idx.nearest(&p, &v3).unwrap(), None);
    }
}
