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

/// One [`ChildEntry`] seen as one pruning container.
pub struct EntryStats<'a> {
    entry: &'a ChildEntry,
    layout: &'a StatsLayout,
}

fn stat_array(v: &Option<StatValue>, dt: &DataType) -> ArrayRef {
    let raw: Option<ArrayRef> = match v {
        None => None,
        Some(StatValue::Int(i)) => Some(Arc::new(Int64Array::from(vec![*i]))),
        Some(StatValue::Float(f)) => Some(Arc::new(Float64Array::from(vec![*f]))),
        Some(StatValue::Bool(b)) => Some(Arc::new(BooleanArray::from(vec![*b]))),
        Some(StatValue::Bytes(b)) => std::str::from_utf8(b)
            .ok()
            .map(|s| Arc::new(StringArray::from(vec![s])) as ArrayRef),
    };
    match raw {
        Some(a) if a.data_type() == dt => a,
        Some(a) => {
            datafusion::arrow::compute::cast(&a, dt).unwrap_or_else(|_| new_null_array(dt, 1))
        }
        None => new_null_array(dt, 1),
    }
}

impl EntryStats<'_> {
    fn stats(&self, column: &Column) -> Option<(&quiver_tree::ColumnStats, &DataType)> {
        let (i, dt) = self.layout.cols.get(column.name())?;
        self.entry.stats.get(*i).map(|s| (s, dt))
    }
}

impl PruningStatistics for EntryStats<'_> {
    fn min_values(&self, column: &Column) -> Option<ArrayRef> {
        self.stats(column).map(|(s, dt)| stat_array(&s.min, dt))
    }
    fn max_values(&self, column: &Column) -> Option<ArrayRef> {
        self.stats(column).map(|(s, dt)| stat_array(&s.max, dt))
    }
    fn num_containers(&self) -> usize {
        1
    }
    fn null_counts(&self, column: &Column) -> Option<ArrayRef> {
        self.stats(column)
            .map(|(s, _)| Arc::new(UInt64Array::from(vec![s.null_count])) as ArrayRef)
    }
    fn row_counts(&self) -> Option<ArrayRef> {
        Some(Arc::new(UInt64Array::from(vec![self.entry.rows])))
    }
    fn contained(&self, _column: &Column, _values: &HashSet<ScalarValue>) -> Option<BooleanArray> {
        None
    }
}

/// A `keep` callback for `Snapshot::leaves`: false when the predicate proves that no row of
/// the subtree can match. Errors in evaluation keep the subtree (never wrong, only slower).
pub fn keep_fn(
    predicate: Option<Arc<PruningPredicate>>,
    layout: Arc<StatsLayout>,
    counters: Arc<PruneCounters>,
) -> quiver_core::snapshot::KeepFn {
    Box::new(move |entry: &ChildEntry| {
        if entry.rows == 0 {
            return false;
        }
        let Some(p) = &predicate else { return true };
        counters.evaluated.fetch_add(1, Ordering::Relaxed);
        let stats = EntryStats {
            entry,
            layout: &layout,
        };
        let keep = match p.prune(&stats) {
            Ok(v) => v.first().copied().unwrap_or(true),
            Err(_) => true,
        };
        if !keep {
            counters.pruned.fetch_add(1, Ordering::Relaxed);
        }
        keep
    })
}
