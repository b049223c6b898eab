//! Pruning of snapshot-tree subtrees and leaves with DataFusion's [`PruningPredicate`].
//!
//! Internal nodes of the snapshot tree list every child with min/max/null-count statistics
//! of the dataset's statistics columns ([`ChildEntry::stats`], aligned with
//! `DatasetConfig::stats_columns`). [`EntryStats`] exposes one entry as a single
//! "container" of [`PruningStatistics`], so the scan's filter decides, before any pack is
//! touched, whether a whole subtree can be skipped.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use datafusion::arrow::array::{
    new_null_array, Array, ArrayRef, BooleanArray, Float64Array, Int64Array, StringArray,
    UInt64Array,
};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::pruning::PruningStatistics;
use datafusion::common::{Column, ScalarValue};
use datafusion::physical_optimizer::pruning::PruningPredicate;
use quiver_core::ChildEntry;
use quiver_tree::StatValue;
use std::collections::HashSet;

/// Counters of one scan's tree pruning.
#[derive(Debug, Default)]
pub struct PruneCounters {
    /// Subtrees and leaves the predicate was evaluated on.
    pub evaluated: AtomicU64,
    /// Subtrees and leaves skipped.
    pub pruned: AtomicU64,
}

/// Where each statistics column sits in `ChildEntry::stats`, with its Arrow type.
#[derive(Debug, Clone)]
pub struct StatsLayout {
    cols: HashMap<String, (usize, DataType)>,
}

impl StatsLayout {
    /// Layout for a dataset schema and its statistics columns.
    pub fn new(schema: &SchemaRef, stats_columns: &[String]) -> Self {
        let cols = stats_columns
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                schema
                    .field_with_name(c)
                    .ok()
                    .map(|f| (c.clone(), (i, f.data_type().clone())))
            })
            .collect();
        StatsLayout { cols }
    }
}

/// The children of one tree node seen as pruning containers (one per child), so the
/// predicate is evaluated once per node over arrays of statistics.
pub struct EntriesStats<'a> {
    entries: &'a [ChildEntry],
    layout: &'a StatsLayout,
}

/// An Arrow array of one statistic (`pick` selects min or max) of `entries`, cast to the
/// column's type; values of another kind than the first non-null one become nulls
/// (unknown: the container is kept).
fn stat_array(
    entries: &[ChildEntry],
    col: usize,
    dt: &DataType,
    pick: fn(&quiver_tree::ColumnStats) -> &Option<StatValue>,
) -> Option<ArrayRef> {
    fn get(
        e: &ChildEntry,
        col: usize,
        pick: fn(&quiver_tree::ColumnStats) -> &Option<StatValue>,
    ) -> Option<&StatValue> {
        e.stats.get(col).and_then(|s| pick(s).as_ref())
    }
    let kind = entries.iter().find_map(|e| get(e, col, pick));
    let raw: ArrayRef = match kind {
        None => return Some(new_null_array(dt, entries.len())),
        Some(StatValue::Int(_)) => {
            Arc::new(Int64Array::from_iter(entries.iter().map(|e| {
                match get(e, col, pick) {
                    Some(StatValue::Int(i)) => Some(*i),
                    _ => None,
                }
            })))
        }
        Some(StatValue::Float(_)) => Arc::new(Float64Array::from_iter(entries.iter().map(|e| {
            match get(e, col, pick) {
                Some(StatValue::Float(f)) => Some(*f),
                _ => None,
            }
        }))),
        Some(StatValue::Bool(_)) => Arc::new(BooleanArray::from_iter(entries.iter().map(|e| {
            match get(e, col, pick) {
                Some(StatValue::Bool(b)) => Some(*b),
                _ => None,
            }
        }))),
        Some(StatValue::Bytes(_)) => Arc::new(StringArray::from_iter(entries.iter().map(|e| {
            match get(e, col, pick) {
                Some(StatValue::Bytes(b)) => std::str::from_utf8(b).ok(),
                _ => None,
            }
        }))),
    };
    if raw.data_type() == dt {
        Some(raw)
    } else {
        datafusion::arrow::compute::cast(&raw, dt).ok()
    }
}

impl EntriesStats<'_> {
    fn col(&self, column: &Column) -> Option<(usize, &DataType)> {
        self.layout.cols.get(column.name()).map(|(i, dt)| (*i, dt))
    }
}

impl PruningStatistics for EntriesStats<'_> {
    fn min_values(&self, column: &Column) -> Option<ArrayRef> {
        let (i, dt) = self.col(column)?;
        stat_array(self.entries, i, dt, |s| &s.min)
    }
    fn max_values(&self, column: &Column) -> Option<ArrayRef> {
        let (i, dt) = self.col(column)?;
        stat_array(self.entries, i, dt, |s| &s.max)
    }
    fn num_containers(&self) -> usize {
        self.entries.len()
    }
    fn null_counts(&self, column: &Column) -> Option<ArrayRef> {
        let (i, _) = self.col(column)?;
        // a partition holding part of a chunk's or delta's rows does not know its null count
        Some(
            Arc::new(UInt64Array::from_iter(self.entries.iter().map(|e| {
                e.stats
                    .get(i)
                    .map(|s| s.null_count)
                    .filter(|&n| n != quiver_core::storage::view::UNKNOWN_NULLS)
            }))) as ArrayRef,
        )
    }
    fn row_counts(&self) -> Option<ArrayRef> {
        Some(Arc::new(UInt64Array::from_iter_values(
            self.entries.iter().map(|e| e.rows),
        )))
    }
    fn contained(&self, _column: &Column, _values: &HashSet<ScalarValue>) -> Option<BooleanArray> {
        None
    }
}

/// A `keep` callback for `Snapshot::leaves_batch`: false for a child when the predicate
/// proves that no row of its subtree can match; evaluated once per node over all its
/// children. Errors in evaluation keep the subtrees (never wrong, only slower).
pub fn keep_batch_fn(
    predicate: Option<Arc<PruningPredicate>>,
    layout: Arc<StatsLayout>,
    counters: Arc<PruneCounters>,
) -> quiver_core::snapshot::KeepBatchFn {
    Box::new(move |entries: &[ChildEntry], flags: &mut Vec<bool>| {
        let Some(p) = &predicate else {
            flags.extend(entries.iter().map(|e| e.rows > 0));
            return;
        };
        counters
            .evaluated
            .fetch_add(entries.len() as u64, Ordering::Relaxed);
        let stats = EntriesStats {
            entries,
            layout: &layout,
        };
        let verdict = p.prune(&stats).ok().filter(|v| v.len() == entries.len());
        let mut pruned = 0u64;
        for (i, e) in entries.iter().enumerate() {
            let keep = e.rows > 0 && verdict.as_ref().is_none_or(|v| v[i]);
            if !keep && e.rows > 0 {
                pruned += 1;
            }
            flags.push(keep);
        }
        counters.pruned.fetch_add(pruned, Ordering::Relaxed);
    })
}
