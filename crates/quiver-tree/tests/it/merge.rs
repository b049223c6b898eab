//! Three-way merge against a naive model.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use quiver_tree::{apply, build, entries, merge3, MemNodeStore, TreeConfig};

use crate::common::*;

/// Naive three-way merge: (merged model, conflict keys).
fn naive_merge(base: &Model, ours: &Model, theirs: &Model) -> (Model, BTreeSet<u32>) {
    let keys: BTreeSet<u32> = base
        .keys()
        .chain(ours.keys())
        .chain(theirs.keys())
        .copied()
        .collect();
    let mut merged = BTreeMap::new();
    let mut conflicts = BTreeSet::new();
    for k in keys {
        let (b, o, t) = (base.get(&k), ours.get(&k), theirs.get(&k));
        let pick = if o == t {
            o
        } else if o == b {
            t
        } else if t == b {
            o
        } else {
            conflicts.insert(k);
            o
        };
        if let Some(&v) = pick {
            merged.insert(k, v);
        }
    }
    (merged, conflicts)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn merge_matches_naive(
        cfg in configs(),
        base in model(300, 200),
        // Shared key range 0..300 for both sides gives overlapping changes;
        // 300..400 only for ours and 400..500 only for theirs gives disjoint ones.
        ours_shared in edits(300, 40),
        theirs_shared in edits(300, 40),
        ours_own in edits(100, 20),
        theirs_own in edits(100, 20),
        same in edits(300, 10),
    ) {
        let store = MemNodeStore::new();
        let b = build(&store, &cfg, model_entries(&base)).unwrap();

        let shift = |e: &[(u32, Option<u8>)], by: u32| -> Vec<(u32, Option<u8>)> { e.iter().map(|&(n, v)| (n + by, v)).collect() };
        let mut ours_edits = ours_shared.clone();
        ours_edits.extend(shift(&ours_own, 300));
        ours_edits.extend(same.iter().copied());
        let mut theirs_edits = theirs_shared.clone();
        theirs_edits.extend(shift(&theirs_own, 400));
        theirs_edits.extend(same.iter().copied());

        let mut om = base.clone();
        apply_model(&mut om, &ours_edits);
        let mut tm = base.clone();
        apply_model(&mut tm, &theirs_edits);
        let o = apply(&store, &cfg, b, ours_edits.iter().map(to_edit)).unwrap();
        let t = apply(&store, &cfg, b, theirs_edits.iter().map(to_edit)).unwrap();

        let out = merge3(&store, &cfg, b, o, t).unwrap();
        let (want, want_conflicts) = naive_merge(&base, &om, &tm);
        prop_assert_eq!(entries(&store, out.root).unwrap(), model_entries(&want));
        prop_assert_eq!(out.root, build(&store, &cfg, model_entries(&want)).unwrap());
        let got: Vec<u32> = out.conflicts.iter().map(|c| {
            std::str::from_utf8(&c.key[1..]).unwrap().parse().unwrap()
        }).collect();
        prop_assert_eq!(got, want_conflicts.iter().copied().collect::<Vec<_>>());
        for c in &out.conflicts {
            let n: u32 = std::str::from_utf8(&c.key[1..]).unwrap().parse().unwrap();
            prop_assert_eq!(c.base.clone(), base.get(&n).map(|&v| group(n, v)));
            prop_assert_eq!(c.ours.clone(), om.get(&n).map(|&v| group(n, v)));
            prop_assert_eq!(c.theirs.clone(), tm.get(&n).map(|&v| group(n, v)));
        }
    }
}

#[test]
fn merge_fast_paths_and_symmetry_of_clean_merges() {
    let store = MemNodeStore::new();
    let cfg = TreeConfig {
        leaf_target: 4,
        fanout: 4,
    };
    let base: Model = (0..200).map(|n| (n, 0)).collect();
    let b = build(&store, &cfg, model_entries(&base)).unwrap();
    let o = apply(
        &store,
        &cfg,
        b,
        [to_edit(&(5, Some(1))), to_edit(&(300, Some(0)))],
    )
    .unwrap();
    let t = apply(
        &store,
        &cfg,
        b,
        [to_edit(&(150, None)), to_edit(&(7, Some(2)))],
    )
    .unwrap();
    let m1 = merge3(&store, &cfg, b, o, t).unwrap();
    let m2 = merge3(&store, &cfg, b, t, o).unwrap();
    assert!(m1.conflicts.is_empty());
    assert_eq!(m1.root, m2.root);
    assert_eq!(merge3(&store, &cfg, b, o, b).unwrap().root, o);
    assert_eq!(merge3(&store, &cfg, b, b, t).unwrap().root, t);
    assert_eq!(merge3(&store, &cfg, b, o, o).unwrap().root, o);
    // Conflict: both modify 5 differently; ours is kept.
    let t2 = apply(&store, &cfg, b, [to_edit(&(5, Some(3)))]).unwrap();
    let m = merge3(&store, &cfg, b, o, t2).unwrap();
    assert_eq!(m.conflicts.len(), 1);
    assert_eq!(m.root, o);
    // Both delete the same key: no conflict.
    let o3 = apply(&store, &cfg, b, [to_edit(&(9, None))]).unwrap();
    let t3 = apply(&store, &cfg, b, [to_edit(&(9, None)), to_edit(&(10, None))]).unwrap();
    let m = merge3(&store, &cfg, b, o3, t3).unwrap();
    assert!(m.conflicts.is_empty());
    assert_eq!(m.root, t3);
}
