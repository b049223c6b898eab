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
