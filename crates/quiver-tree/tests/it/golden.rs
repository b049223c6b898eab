//! Golden root hash: an accidental change of the format or of the chunking rule fails here.

use quiver_tree::{
    apply, build, empty, height, ColumnStats, Edit, GroupEntry, Hash, MemNodeStore, StatValue,
    TreeConfig,
};

fn golden_entries() -> impl Iterator<Item = GroupEntry> {
    (0..1000i64).map(|i| {
        let key = format!("sample-{i:06}").into_bytes();
        GroupEntry {
            hash: Hash::of(&key),
            key,
            rows: 1 + (i % 3) as u64,
            stats: vec![ColumnStats {
                min: Some(StatValue::Int(i)),
                max: Some(StatValue::Int(i + 1)),
                null_count: 0,
            }],
        }
    })
}

/// Pinned: node format version 1, chunking rule of `src/chunk.rs`, `TreeConfig::default()`.
/// If this changes, the on-disk format changed: bump `NODE_FORMAT_VERSION` deliberately.
const GOLDEN_ROOT: &str = "23544d9c8340a4ccfa8e6c553e1b6e448a0c60bf1655333d26f9b1b7070214ca";

#[test]
fn golden_root_hash() {
    let store = MemNodeStore::new();
    let root = build(&store, &TreeConfig::default(), golden_entries()).unwrap();
    assert!(height(&store, root).unwrap() >= 1);
    assert_eq!(root.to_hex(), GOLDEN_ROOT);

    // The same content reached by edits from the empty tree, in two batches.
    let all: Vec<GroupEntry> = golden_entries().collect();
    let e = empty(&store).unwrap();
    let r = apply(
        &store,
        &TreeConfig::default(),
        e,
        all[500..].iter().cloned().map(Edit::Upsert),
    )
    .unwrap();
    let r = apply(
        &store,
        &TreeConfig::default(),
        r,
        all[..500].iter().rev().cloned().map(Edit::Upsert),
    )
    .unwrap();
    assert_eq!(r.to_hex(), GOLDEN_ROOT);
}
