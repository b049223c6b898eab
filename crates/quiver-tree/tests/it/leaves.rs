//! Pruned leaf listing by statistics.

use quiver_tree::{
    build, entries, leaf_entries, leaves, leaves_batch, ChildEntry, MemNodeStore, StatValue,
    TreeConfig,
};

use crate::common::*;

fn overlaps(ce: &ChildEntry, lo: i64, hi: i64) -> bool {
    let s = &ce.stats[0];
    let min_ok = !matches!(s.min, Some(StatValue::Int(min)) if min > hi);
    let max_ok = !matches!(s.max, Some(StatValue::Int(max)) if max < lo);
    min_ok && max_ok
}

/// 10,000 groups in small leaves (16 groups) and nodes (8 children): a tree of some height.
fn ten_thousand_groups() -> (MemNodeStore, quiver_tree::Hash) {
    let store = MemNodeStore::new();
    let cfg = TreeConfig {
        leaf_target: 16,
        fanout: 8,
    };
    let m: Model = (0..10_000).map(|n| (n, (n % 4) as u8)).collect();
    let root = build(&store, &cfg, model_entries(&m)).unwrap();
    (store, root)
}

#[test]
fn keep_callback_prunes_subtrees() {
    let (store, root) = ten_thousand_groups();
    let all = leaves(&store, root, &mut |_| true).unwrap();

    let (lo, hi) = (5000, 5100);
    store.reset_counters();
    let mut calls = 0;
    let kept = leaves(&store, root, &mut |ce| {
        calls += 1;
        overlaps(ce, lo, hi)
    })
    .unwrap();
    assert!(!kept.is_empty());
    assert!(
        kept.len() * 10 < all.len(),
        "kept {} of {}",
        kept.len(),
        all.len()
    );
    assert!(kept.iter().all(|ce| overlaps(ce, lo, hi)));
    assert!(store.nodes_read() < 30, "read {}", store.nodes_read());
    assert!(calls < all.len() / 2, "{calls} calls");
    // Nothing matching was pruned.
    let got: Vec<u32> = kept
        .iter()
        .flat_map(|l| leaf_entries(&store, &l.hash).unwrap())
        .filter(|e| matches!(e.stats[0].min, Some(StatValue::Int(v)) if (lo..=hi).contains(&v)))
        .map(|e| std::str::from_utf8(&e.key[1..]).unwrap().parse().unwrap())
        .collect();
    assert_eq!(got, (5000..=5100).collect::<Vec<u32>>());
    // Kept leaves are in key order.
    assert!(kept.windows(2).all(|w| w[0].last_key < w[1].first_key));

    // Pruning everything.
    assert!(leaves(&store, root, &mut |_| false).unwrap().is_empty());
    assert_eq!(entries(&store, root).unwrap().len(), 10_000);
}

#[test]
fn root_leaf_is_offered_to_keep() {
    let store = MemNodeStore::new();
    let cfg = TreeConfig {
        leaf_target: 1000,
        fanout: 8,
    };
    let m: Model = (0..5).map(|n| (n, 0)).collect();
    let root = build(&store, &cfg, model_entries(&m)).unwrap();
    assert_eq!(quiver_tree::height(&store, root).unwrap(), 0);
    let mut seen = Vec::new();
    let kept = leaves(&store, root, &mut |ce| {
        seen.push(ce.clone());
        true
    })
    .unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(kept, seen);
    assert_eq!(kept[0].hash, root);
    assert_eq!(kept[0].groups, 5);
    assert_eq!(kept[0].stats[0].min, Some(StatValue::Int(0)));
    assert_eq!(kept[0].stats[0].max, Some(StatValue::Int(4)));
    assert!(leaves(&store, root, &mut |_| false).unwrap().is_empty());
}

/// `leaves_batch` asks once per internal node about all its children and keeps exactly
/// what the per-child predicate keeps, in the same (key) order.
#[test]
fn batch_callback_is_called_once_per_node() {
    let (store, root) = ten_thousand_groups();
    let (lo, hi) = (2000, 6000);
    let per_child = leaves(&store, root, &mut |ce| overlaps(ce, lo, hi)).unwrap();
    let (mut calls, mut judged) = (0usize, 0usize);
    store.reset_counters();
    let batched = leaves_batch(&store, root, &mut |children, flags| {
        calls += 1;
        judged += children.len();
        flags.extend(children.iter().map(|c| overlaps(c, lo, hi)));
    })
    .unwrap();
    let hashes = |v: &[ChildEntry]| v.iter().map(|c| c.hash).collect::<Vec<_>>();
    assert_eq!(hashes(&batched), hashes(&per_child));
    // one call per internal node read, each judging all of that node's children
    assert_eq!(calls as u64, store.nodes_read());
    assert!(judged > calls * 2, "{judged} children in {calls} calls");
}
