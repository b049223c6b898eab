//! Content-defined chunking and statistics aggregation.
//!
//! # Chunking rule
//!
//! For a key `k` and a level `l` let
//! `h(l, k) = u64::from_le_bytes(blake3([l] || k)[0..8])` (one level byte, then the key).
//!
//! * Level 0 (leaves): a leaf ends after a group whose key `k` has
//!   `h(0, k) < u64::MAX / max(leaf_target, 1)`.
//! * Level `l >= 1` (internal): an internal node ends after a child whose `last_key` `k`
//!   has `h(l, k) < u64::MAX / max(fanout, 2)`.
//! * Levels `>= MAX_LEVEL` (48) never split, so the tree height is bounded.
//! * The rightmost node of a level may end without a boundary. The root is the single
//!   node of the lowest level that has exactly one node (an empty tree is an empty leaf).
//!
//! Since a child ends at a boundary of its own level, a level-`l` node boundary falls
//! after a key that passes the tests of every level `0..=l` ("nested" boundaries). Every
//! boundary depends on the keys only, so the tree is a function of the set of entries.

use crate::node::{ColumnStats, GroupEntry, StatValue};
use crate::{ChildEntry, Hash, Key, TreeConfig};
use std::cmp::Ordering;

/// Levels at and above this never split.
pub(crate) const MAX_LEVEL: u8 = 48;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Chunker {
    leaf_threshold: u64,
    internal_threshold: u64,
}

impl Chunker {
    pub(crate) fn new(cfg: &TreeConfig) -> Self {
        Chunker {
            leaf_threshold: u64::MAX / u64::from(cfg.leaf_target.max(1)),
            internal_threshold: u64::MAX / u64::from(cfg.fanout.max(2)),
        }
    }

    /// Does a level-`level` node end after (a child ending with) `key`?
    pub(crate) fn boundary(&self, level: u8, key: &[u8]) -> bool {
        if level >= MAX_LEVEL {
            return false;
        }
        let mut h = blake3::Hasher::new();
        h.update(&[level]);
        h.update(key);
        let d = h.finalize();
        let mut a = [0u8; 8];
        a.copy_from_slice(&d.as_bytes()[..8]);
        let v = u64::from_le_bytes(a);
        let t = if level == 0 {
            self.leaf_threshold
        } else {
            self.internal_threshold
        };
        v < t
    }

    /// Is `key` a boundary at every level `0..=level` (so a level-`level` node ending
    /// with `key` is closed by a genuine boundary, not by the end of the data)?
    pub(crate) fn nested_boundary(&self, level: u8, key: &[u8]) -> bool {
        (0..=level).all(|l| self.boundary(l, key))
    }
}

/// Aggregate statistics over parts (groups or children), each given as (stats, rows).
///
/// min = min of mins, max = max of maxes (within one variant; Float by `total_cmp`,
/// Bytes bytewise), null_count = sum. A part whose min (max) is `None` while not all of
/// its rows are null makes the aggregate min (max) `None` (unknown); all-null parts
/// (`null_count == rows`) do not contribute. Mixed variants also give `None`.
pub(crate) fn aggregate<'a>(
    parts: impl Iterator<Item = (&'a [ColumnStats], u64)> + Clone,
) -> Vec<ColumnStats> {
    let ncols = parts.clone().map(|(s, _)| s.len()).max().unwrap_or(0);
    let missing = ColumnStats::default();
    (0..ncols)
        .map(|j| {
            let mut min = Agg::Empty;
            let mut max = Agg::Empty;
            let mut nulls: u64 = 0;
            for (stats, rows) in parts.clone() {
                let s = stats.get(j).unwrap_or(&missing);
                nulls = nulls.saturating_add(s.null_count);
                let all_null = s.null_count >= rows;
                min.add(s.min.as_ref(), all_null, Ordering::Less);
                max.add(s.max.as_ref(), all_null, Ordering::Greater);
            }
            ColumnStats {
                min: min.into_value(),
                max: max.into_value(),
                null_count: nulls,
            }
        })
        .collect()
}

enum Agg {
    Empty,
    Value(StatValue),
    Unknown,
}

impl Agg {
    /// Fold in one value; keep the one that compares as `keep` against the other.
    fn add(&mut self, v: Option<&StatValue>, all_null: bool, keep: Ordering) {
        match (&*self, v) {
            (Agg::Unknown, _) => {}
            (_, None) => {
                if !all_null {
                    *self = Agg::Unknown;
                }
            }
            (Agg::Empty, Some(v)) => *self = Agg::Value(v.clone()),
            (Agg::Value(cur), Some(v)) => match compare(v, cur) {
                None => *self = Agg::Unknown,
                Some(o) if o == keep => *self = Agg::Value(v.clone()),
                Some(_) => {}
            },
        }
    }

    fn into_value(self) -> Option<StatValue> {
        match self {
            Agg::Value(v) => Some(v),
            Agg::Empty | Agg::Unknown => None,
        }
    }
}

/// Compare two statistics values of the same variant (None for mixed variants).
pub(crate) fn compare(a: &StatValue, b: &StatValue) -> Option<Ordering> {
    match (a, b) {
        (StatValue::Bool(x), StatValue::Bool(y)) => Some(x.cmp(y)),
        (StatValue::Int(x), StatValue::Int(y)) => Some(x.cmp(y)),
        (StatValue::Float(x), StatValue::Float(y)) => Some(x.total_cmp(y)),
        (StatValue::Bytes(x), StatValue::Bytes(y)) => Some(x.as_slice().cmp(y.as_slice())),
        _ => None,
    }
}

/// The ChildEntry describing a leaf with these entries (stored under `hash`).
pub(crate) fn leaf_child_entry(hash: Hash, entries: &[GroupEntry]) -> ChildEntry {
    let first_key: Key = entries.first().map(|e| e.key.clone()).unwrap_or_default();
    let last_key: Key = entries.last().map(|e| e.key.clone()).unwrap_or_default();
    ChildEntry {
        hash,
        first_key,
        last_key,
        rows: entries.iter().fold(0u64, |a, e| a.saturating_add(e.rows)),
        groups: entries.len() as u64,
        stats: aggregate(entries.iter().map(|e| (e.stats.as_slice(), e.rows))).into(),
    }
}

/// The ChildEntry describing an internal node with these children (stored under `hash`).
pub(crate) fn internal_child_entry(hash: Hash, children: &[ChildEntry]) -> ChildEntry {
    let first_key: Key = children
        .first()
        .map(|c| c.first_key.clone())
        .unwrap_or_default();
    let last_key: Key = children
        .last()
        .map(|c| c.last_key.clone())
        .unwrap_or_default();
    ChildEntry {
        hash,
        first_key,
        last_key,
        rows: children.iter().fold(0u64, |a, c| a.saturating_add(c.rows)),
        groups: children
            .iter()
            .fold(0u64, |a, c| a.saturating_add(c.groups)),
        stats: aggregate(children.iter().map(|c| (&c.stats[..], c.rows))).into(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn cs(min: Option<i64>, max: Option<i64>, nulls: u64) -> ColumnStats {
        ColumnStats {
            min: min.map(StatValue::Int),
            max: max.map(StatValue::Int),
            null_count: nulls,
        }
    }

    #[test]
    fn aggregate_min_max_nulls() {
        let a = vec![cs(Some(3), Some(9), 1)];
        let b = vec![cs(Some(-2), Some(4), 0)];
        let c = vec![cs(None, None, 5)]; // all null: ignored
        let parts = [(a.as_slice(), 4u64), (b.as_slice(), 2), (c.as_slice(), 5)];
        let agg = aggregate(parts.iter().copied());
        assert_eq!(agg, vec![cs(Some(-2), Some(9), 6)]);
    }

    #[test]
    fn aggregate_unknown_is_conservative() {
        let a = vec![cs(Some(3), Some(9), 0)];
        let b = vec![cs(None, Some(4), 0)]; // unknown min, non-null rows
        let parts = [(a.as_slice(), 4u64), (b.as_slice(), 2)];
        assert_eq!(aggregate(parts.iter().copied()), vec![cs(None, Some(9), 0)]);
        // Missing column counts as unknown.
        let e: Vec<ColumnStats> = vec![];
        let parts = [(a.as_slice(), 4u64), (e.as_slice(), 2)];
        assert_eq!(aggregate(parts.iter().copied()), vec![cs(None, None, 0)]);
        // Mixed variants are unknown.
        let f = vec![ColumnStats {
            min: Some(StatValue::Float(1.0)),
            max: Some(StatValue::Float(2.0)),
            null_count: 0,
        }];
        let parts = [(a.as_slice(), 4u64), (f.as_slice(), 2)];
        assert_eq!(aggregate(parts.iter().copied()), vec![cs(None, None, 0)]);
        let none: [(&[ColumnStats], u64); 0] = [];
        assert!(aggregate(none.iter().copied()).is_empty());
    }

    #[test]
    fn floats_and_bytes() {
        let f = |a: f64, b: f64| ColumnStats {
            min: Some(StatValue::Float(a)),
            max: Some(StatValue::Float(b)),
            null_count: 0,
        };
        let x = vec![f(0.5, 2.0)];
        let y = vec![f(-1.5, 1.0)];
        let parts = [(x.as_slice(), 1u64), (y.as_slice(), 1)];
        assert_eq!(aggregate(parts.iter().copied()), vec![f(-1.5, 2.0)]);
        let bs = |a: &[u8], b: &[u8]| ColumnStats {
            min: Some(StatValue::Bytes(a.to_vec())),
            max: Some(StatValue::Bytes(b.to_vec())),
            null_count: 0,
        };
        let x = vec![bs(b"b", b"d")];
        let y = vec![bs(b"a", b"c")];
        let parts = [(x.as_slice(), 1u64), (y.as_slice(), 1)];
        assert_eq!(aggregate(parts.iter().copied()), vec![bs(b"a", b"d")]);
    }

    #[test]
    fn boundary_rate_is_about_one_in_target() {
        let c = Chunker::new(&TreeConfig {
            leaf_target: 16,
            fanout: 16,
        });
        let n = (0..16000u32)
            .filter(|i| c.boundary(0, format!("k{i}").as_bytes()))
            .count();
        assert!((700..1300).contains(&n), "{n}");
        assert!(!c.boundary(MAX_LEVEL, b"x"));
        let all = Chunker::new(&TreeConfig {
            leaf_target: 1,
            fanout: 1,
        });
        assert!(all.boundary(0, b"x"));
    }
}
