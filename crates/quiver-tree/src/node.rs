//! Tree node types and their canonical binary encoding.

use crate::{Hash, Key};

/// A statistics value. Within one column every value has the same variant.
#[derive(Clone, Debug, PartialEq)]
pub enum StatValue {
    Bool(bool),
    Int(i64),
    Float(f64),
    /// Strings (UTF-8 bytes) and binaries, compared bytewise.
    Bytes(Vec<u8>),
}

/// Min/max/null count of one column over a group, leaf or subtree.
/// `min`/`max` are `None` when unknown or when every value is null.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ColumnStats {
    pub min: Option<StatValue>,
    pub max: Option<StatValue>,
    pub null_count: u64,
}

/// One label group in a leaf.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupEntry {
    pub key: Key,
    /// blake3 of the group's canonical row encoding.
    pub hash: Hash,
    /// Number of labels (rows) in the group.
    pub rows: u64,
    /// Statistics of the dataset's statistics columns, in a fixed column order.
    pub stats: Vec<ColumnStats>,
}

/// One child of an internal node (also used to describe a leaf to callers).
#[derive(Clone, Debug, PartialEq)]
pub struct ChildEntry {
    pub hash: Hash,
    pub first_key: Key,
    pub last_key: Key,
    pub rows: u64,
    pub groups: u64,
    /// Statistics of the dataset's statistics columns, shared: a scan's partitions copy
    /// the entries of every chunk of a layout, and their statistics are never changed.
    pub stats: std::sync::Arc<[ColumnStats]>,
}

/// A tree node.
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    /// Level 0: groups in strictly ascending key order.
    Leaf { entries: Vec<GroupEntry> },
    /// Level >= 1: children in ascending key order.
    Internal {
        level: u8,
        children: Vec<ChildEntry>,
    },
}

impl StatValue {
    /// Compare two values of the same variant (`Float` by `total_cmp`, `Bytes` bytewise);
    /// `None` when the variants differ.
    pub fn compare(&self, other: &StatValue) -> Option<std::cmp::Ordering> {
        crate::chunk::compare(self, other)
    }
}
