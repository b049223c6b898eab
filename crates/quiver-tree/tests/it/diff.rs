//! Diff: equal to a naive comparison of all entries, and cheap for small changes.

use std::collections::BTreeMap;

use proptest::prelude::*;
use quiver_tree::{
    apply, build, diff, diff_with, entries, Change, ChangeKind, Edit, GroupEntry, Hash,
    MemNodeStore, TreeConfig,
};

use crate::common::*;

fn naive_diff(a: &[GroupEntry], b: &[GroupEntry]) -> Vec<Change> {
    let a: BTreeMap<_, _> = a.iter().map(|e| (e.key.clone(), e.clone())).collect();
    let b: BTreeMap<_, _> = b.iter().map(|e| (e.key.clone(), e.clone())).collect();
    let mut keys: Vec<_> = a.keys().chain(b.keys()).cloned().collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|k| {
            let old = a.get(&k).cloned();
            let new = b.get(&k).cloned();
            (old != new).then_some(Change { key: k, old, new })
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn diff_matches_naive_after_edits(cfg in configs(), m in model(800, 400), edits in edits(800, 60)) {
        let store = MemNodeStore::new();
        let a = build(&store, &cfg, model_entries(&m)).unwrap();
        let b = apply(&store, &cfg, a, edits.iter().map(to_edit)).unwrap();
        let ea = entries(&store, a).unwrap();
        let eb = entries(&store, b).unwrap();
        prop_assert_eq!(diff(&store, a, b).unwrap(), naive_diff(&ea, &eb));
        prop_assert_eq!(diff(&store, b, a).unwrap(), naive_diff(&eb, &ea));
    }

    #[test]
    fn diff_matches_naive_unrelated(cfg in configs(), m1 in model(400, 200), m2 in model(400, 200)) {
        let store = MemNodeStore::new();
        let a = build(&store, &cfg, model_entries(&m1)).unwrap();
        let b = build(&store, &cfg, model_entries(&m2)).unwrap();
        let want = naive_diff(&model_entries(&m1), &model_entries(&m2));
        prop_assert_eq!(diff(&store, a, b).unwrap(), want);
    }
}

#[test]
fn kinds_and_streaming_errors() {
    let store = MemNodeStore::new();
    let cfg = TreeConfig {
        leaf_target: 4,
        fanout: 4,
    };
    let m: Model = (0..100).map(|n| (n * 2, 0)).collect();
    let a = build(&store, &cfg, model_entries(&m)).unwrap();
    let b = apply(
        &store,
        &cfg,
        a,
        [
            Edit::Upsert(group(3, 0)),
            Edit::Delete(key(10)),
            Edit::Upsert(group(20, 1)),
        ],
    )
    .unwrap();
    let d = diff(&store, a, b).unwrap();
    let kinds: Vec<_> = d.iter().map(|c| (c.key.clone(), c.kind())).collect();
    assert_eq!(
        kinds,
        vec![
            (key(3), ChangeKind::Added),
            (key(10), ChangeKind::Removed),
            (key(20), ChangeKind::Modified)
        ]
    );
    assert_eq!(ChangeKind::Modified.as_str(), "modified");
    assert!(diff(&store, a, a).unwrap().is_empty());
    // An error from the callback stops the walk and is returned.
    let mut seen = 0;
    let r = diff_with(&store, a, b, &mut |_| {
        seen += 1;
        Err(quiver_tree::TreeError::Store("stop".into()))
    });
    assert!(r.is_err());
    assert_eq!(seen, 1);
    // A missing node is an error, not a panic.
    assert!(diff(&store, a, Hash([9; 32])).is_err());
}

/// 100k groups, default config.
pub fn big_tree(store: &MemNodeStore, cfg: &TreeConfig) -> Hash {
    build(store, cfg, (0..100_000).map(|n| group(n, 0))).unwrap()
}

#[test]
fn diff_cost_is_logarithmic() {
    let store = MemNodeStore::new();
    let cfg = TreeConfig::default();
    let a = big_tree(&store, &cfg);
    let h = quiver_tree::height(&store, a).unwrap();
    assert!(h >= 2, "height {h}");

    let cases: Vec<(Edit, ChangeKind)> = vec![
        (Edit::Upsert(group(54_321, 1)), ChangeKind::Modified),
        (Edit::Delete(key(77_777)), ChangeKind::Removed),
        (Edit::Upsert(group(200_000, 0)), ChangeKind::Added),
        (Edit::Delete(key(0)), ChangeKind::Removed),
    ];
    for (edit, kind) in cases {
        let b = apply(&store, &cfg, a, [edit]).unwrap();
        store.reset_counters();
        let d = diff(&store, a, b).unwrap();
        let reads = store.nodes_read();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].kind(), kind);
        eprintln!("{kind:?}: diff read {reads} nodes (height {h})");
        assert!(reads < 40, "{kind:?}: diff read {reads} nodes");
        assert!(
            reads <= 2 * (u64::from(h) + 1) + 4,
            "{kind:?}: diff read {reads} nodes"
        );
    }

    // 20 scattered modifications: cost grows with d, far below the ~1600 leaves.
    let edits: Vec<Edit> = (0..20)
        .map(|i| Edit::Upsert(group(i * 4999 + 17, 2)))
        .collect();
    let b = apply(&store, &cfg, a, edits).unwrap();
    store.reset_counters();
    assert_eq!(diff(&store, a, b).unwrap().len(), 20);
    let reads = store.nodes_read();
    assert!(
        reads < 20 * 2 * (u64::from(h) + 2),
        "diff of 20 read {reads} nodes"
    );
}
