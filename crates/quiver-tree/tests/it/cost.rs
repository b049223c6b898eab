//! Copy-on-write cost of `apply`.

use std::collections::BTreeSet;

use quiver_tree::{apply, height, leaves, Edit, Hash, MemNodeStore, Node, NodeStore, TreeConfig};

use crate::common::*;
use crate::diff::big_tree;

#[test]
fn single_edit_writes_about_depth_nodes() {
    let store = MemNodeStore::new();
    let cfg = TreeConfig::default();
    let root = big_tree(&store, &cfg);
    let h = u64::from(height(&store, root).unwrap());
    for edit in [
        Edit::Upsert(group(12_345, 3)),
        Edit::Delete(key(50_000)),
        Edit::Upsert(group(500_000, 0)),
    ] {
        store.reset_counters();
        let r = apply(&store, &cfg, root, [edit]).unwrap();
        assert_ne!(r, root);
        let (w, rd) = (store.nodes_written(), store.nodes_read());
        // One leaf (two if a boundary moved) and its ancestors.
        assert!(w <= h + 2, "wrote {w} nodes, height {h}");
        // The path, the right spine and a neighbour or two.
        assert!(rd <= 2 * h + 4, "read {rd} nodes, height {h}");
    }
}

/// `k` scattered upserts: 4 in 5 update an existing group, 1 in 5 inserts a new key
/// between two existing ones.
fn scattered(k: u32) -> Vec<Edit> {
    (0..k)
        .map(|i| {
            let n = i.wrapping_mul(2_654_435_761) % 100_000;
            if i % 5 == 0 {
                // A new key between k(n) and k(n + 1).
                let mut g = group(n, 0);
                g.key.push(b'x');
                Edit::Upsert(g)
            } else {
                Edit::Upsert(group(n, 1))
            }
        })
        .collect()
}

/// (bytes of the old leaves that hold or border the edited keys, bytes of all internal nodes).
fn touched_bytes(store: &MemNodeStore, root: Hash, edits: &[Edit]) -> (u64, u64) {
    let all = leaves(store, root, &mut |_| true).unwrap();
    let mut touched = BTreeSet::new();
    for e in edits {
        // The leaf whose last key is the first >= the edited key takes the edit.
        let i = all.partition_point(|l| l.last_key.as_slice() < e.key());
        touched.insert(i.min(all.len() - 1));
    }
    let size = |h: &Hash| store.get_node(h).unwrap().encode().len() as u64;
    let leaf_bytes = touched.iter().map(|&i| size(&all[i].hash)).sum();
    let mut internal = 0;
    let mut stack = vec![root];
    while let Some(h) = stack.pop() {
        if let Node::Internal { children, .. } = &*store.get_node(&h).unwrap() {
            internal += size(&h);
            stack.extend(children.iter().map(|c| c.hash));
        }
    }
    (leaf_bytes, internal)
}

#[test]
fn scattered_upserts_write_only_touched_leaves_and_ancestors() {
    for (cfg, k, max_ratio) in [
        (
            TreeConfig {
                leaf_target: 16,
                fanout: 64,
            },
            500,
            0.30,
        ),
        (TreeConfig::default(), 500, 0.60),
        (TreeConfig::default(), 50, 0.15),
    ] {
        let store = MemNodeStore::new();
        let root = big_tree(&store, &cfg);
        let full = store.bytes_written();
        let nodes = store.nodes_written();
        let edits = scattered(k);
        let (leaf_bytes, internal_bytes) = touched_bytes(&store, root, &edits);
        store.reset_counters();
        let r = apply(&store, &cfg, root, edits).unwrap();
        assert_ne!(r, root);
        let written = store.bytes_written();
        let ratio = written as f64 / full as f64;
        eprintln!(
            "{cfg:?}: full build {full} B in {nodes} nodes; {k} upserts wrote {written} B ({:.1}%) in {} nodes, read {} nodes; \
             touched leaves {leaf_bytes} B, all internal nodes {internal_bytes} B",
            ratio * 100.0,
            store.nodes_written(),
            store.nodes_read()
        );
        // Only the touched leaves (grown a little by the upserts) and internal nodes.
        assert!(
            written as f64 <= 1.15 * leaf_bytes as f64 + internal_bytes as f64,
            "{cfg:?}: wrote {written} B, touched leaves {leaf_bytes} B + internal {internal_bytes} B"
        );
        assert!(
            ratio < max_ratio,
            "{cfg:?}: wrote {:.1}% of the tree",
            ratio * 100.0
        );
    }
}
