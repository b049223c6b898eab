//! Shared helpers.

use std::collections::BTreeMap;

use proptest::prelude::*;
use quiver_tree::{ColumnStats, GroupEntry, Hash, StatValue, TreeConfig};

/// Key of the n-th test group.
pub fn key(n: u32) -> Vec<u8> {
    format!("k{n:06}").into_bytes()
}

/// A group with key `key(n)` in version `v`: stats one Int column [n, n + v].
pub fn group(n: u32, v: u8) -> GroupEntry {
    let key = key(n);
    let mut h = key.clone();
    h.push(v);
    GroupEntry {
        hash: Hash::of(&h),
        key,
        rows: 1 + u64::from(v % 3),
        stats: vec![ColumnStats {
            min: Some(StatValue::Int(i64::from(n))),
            max: Some(StatValue::Int(i64::from(n) + i64::from(v))),
            null_count: u64::from(v % 2),
        }],
    }
}

/// A model of a tree: key number -> version.
pub type Model = BTreeMap<u32, u8>;

pub fn model_entries(m: &Model) -> Vec<GroupEntry> {
    m.iter().map(|(&n, &v)| group(n, v)).collect()
}

/// Configurations small enough to give several levels on a few hundred entries.
pub fn configs() -> impl Strategy<Value = TreeConfig> {
    prop_oneof![
        Just(TreeConfig {
            leaf_target: 1,
            fanout: 2
        }),
        Just(TreeConfig {
            leaf_target: 2,
            fanout: 2
        }),
        Just(TreeConfig {
            leaf_target: 4,
            fanout: 3
        }),
        Just(TreeConfig {
            leaf_target: 8,
            fanout: 4
        }),
        Just(TreeConfig::default()),
    ]
}

pub fn model(max_key: u32, max_len: usize) -> impl Strategy<Value = Model> {
    prop::collection::btree_map(0..max_key, 0u8..4, 0..max_len)
}

/// Random edits: (key number, Some(version) = upsert, None = delete).
pub fn edits(max_key: u32, max_len: usize) -> impl Strategy<Value = Vec<(u32, Option<u8>)>> {
    prop::collection::vec(
        (0..max_key, prop::option::weighted(0.7, 0u8..8)),
        0..max_len,
    )
}

pub fn to_edit(&(n, v): &(u32, Option<u8>)) -> quiver_tree::Edit {
    match v {
        Some(v) => quiver_tree::Edit::Upsert(group(n, v)),
        None => quiver_tree::Edit::Delete(key(n)),
    }
}

pub fn apply_model(m: &mut Model, edits: &[(u32, Option<u8>)]) {
    for &(n, v) in edits {
        match v {
            Some(v) => {
                m.insert(n, v);
            }
            None => {
                m.remove(&n);
            }
        }
    }
}
