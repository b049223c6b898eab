//! Point lookups, summaries, leaf access.

use quiver_tree::{
    build, empty, get, leaf_entries, leaves, summary, MemNodeStore, Node, NodeStore, TreeConfig,
};

use crate::common::*;

#[test]
fn get_finds_present_and_misses_absent() {
    let store = MemNodeStore::new();
    let cfg = TreeConfig {
        leaf_target: 8,
        fanout: 4,
    };
    let m: Model = (0..2000).map(|n| (n * 3 + 1, (n % 4) as u8)).collect();
    let root = build(&store, &cfg, model_entries(&m)).unwrap();
    for (&n, &v) in &m {
        assert_eq!(
            get(&store, root, &key(n)).unwrap(),
            Some(group(n, v)),
            "key {n}"
        );
    }
    for n in [0, 2, 3, 5, 3000, 5999, 6001, 999_999] {
        assert_eq!(get(&store, root, &key(n)).unwrap(), None, "key {n}");
    }
    assert_eq!(get(&store, root, b"").unwrap(), None);
    assert_eq!(get(&store, root, b"zzz").unwrap(), None);
    // O(log N) reads.
    let h = u64::from(quiver_tree::height(&store, root).unwrap());
    store.reset_counters();
    get(&store, root, &key(1501)).unwrap();
    assert_eq!(store.nodes_read(), h + 1);

    let e = empty(&store).unwrap();
    assert_eq!(get(&store, e, &key(1)).unwrap(), None);
}

#[test]
fn summary_and_leaf_access() {
    let store = MemNodeStore::new();
    let cfg = TreeConfig {
        leaf_target: 8,
        fanout: 4,
    };
    let m: Model = (0..1000).map(|n| (n, (n % 4) as u8)).collect();
    let root = build(&store, &cfg, model_entries(&m)).unwrap();
    let s = summary(&store, root).unwrap();
    assert_eq!(s.hash, root);
    assert_eq!(s.groups, 1000);
    assert_eq!(
        s.rows,
        model_entries(&m).iter().map(|e| e.rows).sum::<u64>()
    );
    assert_eq!(s.first_key, key(0));
    assert_eq!(s.last_key, key(999));
    assert_eq!(s.stats[0].min, Some(quiver_tree::StatValue::Int(0)));
    assert_eq!(s.stats[0].max, Some(quiver_tree::StatValue::Int(999 + 3)));
    assert_eq!(
        s.stats[0].null_count,
        m.values().filter(|&&v| v % 2 == 1).count() as u64
    );

    let all = leaves(&store, root, &mut |_| true).unwrap();
    assert!(all.len() > 1);
    let mut got = Vec::new();
    for l in &all {
        let es = leaf_entries(&store, &l.hash).unwrap();
        assert_eq!(es.first().unwrap().key, l.first_key);
        assert_eq!(es.last().unwrap().key, l.last_key);
        assert_eq!(es.len() as u64, l.groups);
        got.extend(es);
    }
    assert_eq!(got, model_entries(&m));
    // leaf_entries on an internal node is an error.
    assert!(leaf_entries(&store, &root).is_err());

    let e = empty(&store).unwrap();
    let s = summary(&store, e).unwrap();
    assert_eq!(
        (s.groups, s.rows, s.first_key.len(), s.last_key.len()),
        (0, 0, 0, 0)
    );
    assert!(leaves(&store, e, &mut |_| true).unwrap().is_empty());
    assert!(matches!(&*store.get_node(&e).unwrap(), Node::Leaf { entries } if entries.is_empty()));
}

/// The rows of a group at `at`: the sum of the rows of the leaf's entries before it.
fn check_at(store: &MemNodeStore, e: &quiver_tree::GroupEntry, at: &quiver_tree::GroupAt) {
    let entries = leaf_entries(store, &at.leaf).unwrap();
    let i = entries
        .iter()
        .position(|x| x.key == e.key)
        .expect("group in its leaf");
    assert_eq!(&entries[i], e);
    let before: u64 = entries[..i].iter().map(|x| x.rows).sum();
    assert_eq!(at.offset, before, "offset of key {:?}", e.key);
}

#[test]
fn locate_finds_entries_and_row_positions_in_one_descent() {
    let store = MemNodeStore::new();
    let cfg = TreeConfig {
        leaf_target: 8,
        fanout: 4,
    };
    // rows vary by group (group(n, v) has 1 + v % 3 rows), so offsets are not multiples
    let m: Model = (0..3000).map(|n| (n * 3 + 1, (n % 5) as u8)).collect();
    let root = build(&store, &cfg, model_entries(&m)).unwrap();
    let mut keys: Vec<u32> = (0..9100).step_by(7).collect();
    keys.extend([0, 2, 9001, 9002, 100_000]);
    keys.sort();
    keys.dedup();
    let ks: Vec<Vec<u8>> = keys.iter().map(|&n| key(n)).collect();
    store.reset_counters();
    let found = quiver_tree::locate(&store, root, &ks).unwrap();
    let read = store.nodes_read();
    assert_eq!(found.len(), keys.len());
    let mut hits = 0;
    for (n, f) in keys.iter().zip(&found) {
        match (m.get(n), f) {
            (Some(&v), Some((e, at))) => {
                assert_eq!(e, &group(*n, v));
                check_at(&store, e, at);
                hits += 1;
            }
            (None, None) => {}
            (want, got) => panic!("key {n}: model {want:?}, located {got:?}"),
        }
    }
    assert!(hits > 400);
    // each node at most once (fewer than a get per key would read)
    let h = u64::from(quiver_tree::height(&store, root).unwrap());
    assert!(read < hits * (h + 1), "{read} nodes read");
    assert_eq!(quiver_tree::locate(&store, root, &[]).unwrap(), vec![]);
    let e = empty(&store).unwrap();
    assert_eq!(
        quiver_tree::locate(&store, e, &ks[..3]).unwrap(),
        vec![None, None, None]
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(32))]

    /// Every located change points at its old row position in `a` and new one in `b`.
    #[test]
    fn diff_positions_point_at_the_rows(cfg in configs(), m in model(600, 300), edits in edits(600, 40)) {
        let store = MemNodeStore::new();
        let a = build(&store, &cfg, model_entries(&m)).unwrap();
        let b = quiver_tree::apply(&store, &cfg, a, edits.iter().map(to_edit)).unwrap();
        let located = quiver_tree::diff_located(&store, a, b).unwrap();
        let plain = quiver_tree::diff(&store, a, b).unwrap();
        proptest::prop_assert_eq!(located.iter().map(|c| c.change.clone()).collect::<Vec<_>>(), plain);
        for c in &located {
            proptest::prop_assert_eq!(c.old_at.is_some(), c.change.old.is_some());
            proptest::prop_assert_eq!(c.new_at.is_some(), c.change.new.is_some());
            if let (Some(e), Some(at)) = (&c.change.old, &c.old_at) {
                check_at(&store, e, at);
            }
            if let (Some(e), Some(at)) = (&c.change.new, &c.new_at) {
                check_at(&store, e, at);
            }
        }
    }
}
