//! Property tests of the [`Merge`] laws for every CRDT in `state`.

use proptest::prelude::*;

use super::Merge;
use super::counter::GCounter;
use super::hlc::Timestamp;
use super::lww::{LwwMap, LwwRegister};

fn ts() -> impl Strategy<Value = Timestamp> {
    // A small space so that generated states overlap and conflict.
    (0u64..20, 0u32..3, 0u64..4).prop_map(|(wall_ms, counter, node)| Timestamp {
        wall_ms,
        counter,
        node,
    })
}

/// Registers whose value is a function of the timestamp, as in real use
/// (one write = one timestamp = one value).
fn register() -> impl Strategy<Value = LwwRegister<Option<Vec<u8>>>> {
    ts().prop_map(|ts| {
        let value = (ts.wall_ms % 5 != 0).then(|| format!("{ts:?}").into_bytes());
        LwwRegister::new(ts, value)
    })
}

fn lww_map() -> impl Strategy<Value = LwwMap> {
    prop::collection::btree_map("[a-d]", register(), 0..4).prop_map(|fields| LwwMap { fields })
}

fn gcounter() -> impl Strategy<Value = GCounter> {
    prop::collection::btree_map(0u64..4, 0u64..1000, 0..4).prop_map(|slots| GCounter { slots })
}

fn merged<T: Merge + Clone>(a: &T, b: &T) -> T {
    let mut out = a.clone();
    out.merge(b);
    out
}

fn check_laws<T: Merge + Clone + PartialEq + std::fmt::Debug>(
    a: &T,
    b: &T,
    c: &T,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(merged(a, b), merged(b, a), "commutative");
    prop_assert_eq!(
        merged(&merged(a, b), c),
        merged(a, &merged(b, c)),
        "associative"
    );
    prop_assert_eq!(merged(a, a), a.clone(), "idempotent");
    Ok(())
}

proptest! {
    #[test]
    fn lww_register_laws(a in register(), b in register(), c in register()) {
        check_laws(&a, &b, &c)?;
    }

    #[test]
    fn lww_map_laws(a in lww_map(), b in lww_map(), c in lww_map()) {
        check_laws(&a, &b, &c)?;
    }

    #[test]
    fn gcounter_laws(a in gcounter(), b in gcounter(), c in gcounter()) {
        check_laws(&a, &b, &c)?;
    }

    #[test]
    fn lww_map_delta_equals_full_merge(a in lww_map(), b in lww_map(), field in "[a-d]", t in ts(), v in prop::option::of(prop::collection::vec(any::<u8>(), 0..4))) {
        let mut mutated = a.clone();
        let delta = mutated.set(&field, t, v);
        prop_assert_eq!(merged(&b, &mutated), merged(&merged(&b, &a), &delta));
    }

    #[test]
    fn gcounter_delta_equals_full_merge(a in gcounter(), b in gcounter(), node in 0u64..4, n in 0u64..1000) {
        let mut mutated = a.clone();
        let delta = mutated.add(node, n);
        prop_assert_eq!(merged(&b, &mutated), merged(&merged(&b, &a), &delta));
    }

    #[test]
    fn gcounter_value_never_decreases_on_merge(a in gcounter(), b in gcounter()) {
        let m = merged(&a, &b);
        prop_assert!(m.value() >= a.value() && m.value() >= b.value());
    }
}
