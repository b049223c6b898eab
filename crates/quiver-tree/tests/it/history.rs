//! History independence: any edit history reaching a set of entries gives the root that
//! `build` gives for that set.

use std::collections::BTreeMap;

use proptest::prelude::*;
use quiver_tree::{apply, build, empty, entries, Edit, MemNodeStore, TreeConfig, TreeError};

use crate::common::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn apply_equals_build(
        cfg in configs(),
        initial in model(600, 300),
        edits in edits(600, 120),
        batch in 1usize..40,
    ) {
        let store = MemNodeStore::new();
        let root0 = build(&store, &cfg, model_entries(&initial)).unwrap();
        let mut want = initial.clone();
        apply_model(&mut want, &edits);
        let want_root = build(&store, &cfg, model_entries(&want)).unwrap();

        // One batch, in the given order (later edits of a key win).
        let one = apply(&store, &cfg, root0, edits.iter().map(to_edit)).unwrap();
        prop_assert_eq!(one, want_root);

        // Several batches applied one after the other.
        let mut r = root0;
        for chunk in edits.chunks(batch) {
            r = apply(&store, &cfg, r, chunk.iter().map(to_edit)).unwrap();
        }
        prop_assert_eq!(r, want_root);

        // The net edits in reverse key order, one by one.
        let mut net: BTreeMap<u32, Option<u8>> = BTreeMap::new();
        for &(n, v) in &edits {
            net.insert(n, v);
        }
        let mut r = root0;
        for (&n, &v) in net.iter().rev() {
            r = apply(&store, &cfg, r, [to_edit(&(n, v))]).unwrap();
        }
        prop_assert_eq!(r, want_root);

        // From the empty tree, inserting the final set in a scrambled order.
        let mut keys: Vec<(u32, u8)> = want.iter().map(|(&n, &v)| (n, v)).collect();
        keys.sort_by_key(|&(n, _)| n.wrapping_mul(2_654_435_761) % 1009);
        let mut r = empty(&store).unwrap();
        for c in keys.chunks(batch) {
            r = apply(&store, &cfg, r, c.iter().map(|&(n, v)| Edit::Upsert(group(n, v)))).unwrap();
        }
        prop_assert_eq!(r, want_root);

        prop_assert_eq!(entries(&store, want_root).unwrap(), model_entries(&want));
    }
}

#[test]
fn delete_everything_gives_the_empty_tree() {
    let store = MemNodeStore::new();
    let cfg = TreeConfig {
        leaf_target: 4,
        fanout: 4,
    };
    let m: Model = (0..500).map(|n| (n, 1)).collect();
    let root = build(&store, &cfg, model_entries(&m)).unwrap();
    let r = apply(&store, &cfg, root, (0..500).map(|n| Edit::Delete(key(n)))).unwrap();
    assert_eq!(r, empty(&store).unwrap());
    assert_eq!(r, build(&store, &cfg, Vec::new()).unwrap());
    // Deleting missing keys and empty batches change nothing.
    assert_eq!(
        apply(&store, &cfg, root, [Edit::Delete(key(9999))]).unwrap(),
        root
    );
    assert_eq!(apply(&store, &cfg, root, []).unwrap(), root);
}

#[test]
fn build_rejects_unsorted_and_duplicate_keys() {
    let store = MemNodeStore::new();
    let cfg = TreeConfig::default();
    let r = build(&store, &cfg, vec![group(2, 0), group(1, 0)]);
    assert!(matches!(r, Err(TreeError::Unsorted { .. })), "{r:?}");
    let r = build(&store, &cfg, vec![group(1, 0), group(1, 1)]);
    assert!(matches!(r, Err(TreeError::Unsorted { .. })), "{r:?}");
}

#[test]
fn build_is_deterministic_and_config_dependent() {
    let m: Model = (0..3000).map(|n| (n, (n % 4) as u8)).collect();
    let s1 = MemNodeStore::new();
    let s2 = MemNodeStore::new();
    let a = build(&s1, &TreeConfig::default(), model_entries(&m)).unwrap();
    let b = build(&s2, &TreeConfig::default(), model_entries(&m)).unwrap();
    assert_eq!(a, b);
    let c = build(
        &s2,
        &TreeConfig {
            leaf_target: 16,
            fanout: 16,
        },
        model_entries(&m),
    )
    .unwrap();
    assert_ne!(a, c);
    assert_eq!(entries(&s2, c).unwrap(), entries(&s1, a).unwrap());
}
