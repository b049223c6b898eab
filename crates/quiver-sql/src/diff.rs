//! Label-level diffs between two versions, from the structural tree diff.
//!
//! `Snapshot::diff` lists the changed label groups by walking both trees and skipping equal
//! subtrees; only those groups are read on each side (`Snapshot::read_groups`) and compared
//! label by label. The cost follows the number of changed groups, not the dataset size.
//! Output columns: the group key, the label key, `change` (`added` | `removed` |
//! `modified`), then `old_<col>` and `new_<col>` for every other column.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arrow::array::{new_null_array, Array, ArrayRef, RecordBatch, StringArray, UInt32Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use quiver_core::encoding::{key_bytes, GroupHasher};
use quiver_core::{Commit, Dataset, Key};
use quiver_tree::{Change, LocatedChange};

use crate::error::Result;

/// Schema of the diff rows of a dataset (quiver-core Arrow types).
pub fn diff_schema(ds: &Dataset) -> SchemaRef {
    let schema = ds.schema();
    let cfg = ds.config();
    let mut fields = Vec::new();
    for k in [&cfg.group_key, &cfg.label_key] {
        if let Ok(f) = schema.field_with_name(k) {
            fields.push(Field::new(k, f.data_type().clone(), false));
        }
    }
    fields.push(Field::new("change", DataType::Utf8, false));
    for f in schema.fields() {
        if f.name() == &cfg.group_key || f.name() == &cfg.label_key {
            continue;
        }
        fields.push(Field::new(
            format!("old_{}", f.name()),
            f.data_type().clone(),
            true,
        ));
        fields.push(Field::new(
            format!("new_{}", f.name()),
            f.data_type().clone(),
            true,
        ));
    }
    Arc::new(Schema::new(fields))
}

/// The label keys of rows `at .. at + n` of `b`, each with its row.
fn label_rows(b: &RecordBatch, li: usize, at: usize, n: usize) -> BTreeMap<Key, usize> {
    (at..at + n)
        .filter_map(|r| key_bytes(b.column(li).as_ref(), r).map(|k| (k, r)))
        .collect()
}

fn take_opt(col: &ArrayRef, idx: &[Option<u32>]) -> Result<ArrayRef> {
    if col.is_empty() {
        return Ok(new_null_array(col.data_type(), idx.len()));
    }
    let i = UInt32Array::from(idx.to_vec());
    Ok(arrow::compute::take(col.as_ref(), &i, None)?)
}

/// Label-level changes from `from` to `to` (quiver-core Arrow batch; one batch).
pub async fn diff_labels(ds: &Dataset, from: Commit, to: Commit) -> Result<RecordBatch> {
    let schema = ds.schema();
    let out_schema = diff_schema(ds);
    let cfg = ds.config();
    let gi = schema.index_of(&cfg.group_key)?;
    let li = schema.index_of(&cfg.label_key)?;
    let (a, b) = (ds.snapshot(from), ds.snapshot(to));
    let located = a.diff_located(&b).await?;
    if located.is_empty() {
        return Ok(RecordBatch::new_empty(out_schema));
    }
    // the rows of each side, read at the positions the diff found (no second tree walk),
    // each side in one batch
    let ((old_all, old_offs), (new_all, new_offs)) = futures::try_join!(
        a.read_at_flat(located.iter().filter_map(LocatedChange::old_rows)),
        b.read_at_flat(located.iter().filter_map(LocatedChange::new_rows))
    )?;
    let changes: Vec<Change> = located.into_iter().map(|c| c.change).collect();
    let names: Vec<(String, usize)> = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| (f.name().clone(), i))
        .collect();
    let hasher = |b: &RecordBatch| -> Vec<ArrayRef> {
        names.iter().map(|(_, i)| b.column(*i).clone()).collect()
    };
    let (old_cols, new_cols) = (hasher(&old_all), hasher(&new_all));
    let old_h = GroupHasher::new(
        names
            .iter()
            .map(|(n, _)| n.as_str())
            .zip(old_cols.iter())
            .collect(),
    );
    let new_h = GroupHasher::new(
        names
            .iter()
            .map(|(n, _)| n.as_str())
            .zip(new_cols.iter())
            .collect(),
    );

    let mut old_idx: Vec<Option<u32>> = Vec::new();
    let mut new_idx: Vec<Option<u32>> = Vec::new();
    let mut kinds: Vec<&'static str> = Vec::new();
    let mut scratch = (Vec::new(), Vec::new());
    for c in &changes {
        let ol = old_offs
            .get(&c.key)
            .map(|&(at, n)| label_rows(&old_all, li, at, n))
            .unwrap_or_default();
        let nl = new_offs
            .get(&c.key)
            .map(|&(at, n)| label_rows(&new_all, li, at, n))
            .unwrap_or_default();
        let labels: BTreeSet<&Key> = ol.keys().chain(nl.keys()).collect();
        for l in labels {
            let (o, n) = (ol.get(l).copied(), nl.get(l).copied());
            let kind = match (o, n) {
                (Some(_), None) => "removed",
                (None, Some(_)) => "added",
                (Some(o), Some(n)) => {
                    if old_h.same_row(o, &new_h, n, &mut scratch) {
                        continue;
                    }
                    "modified"
                }
                (None, None) => continue,
            };
            kinds.push(kind);
            old_idx.push(o.map(|x| x as u32));
            new_idx.push(n.map(|x| x as u32));
        }
    }
    let mut cols: Vec<ArrayRef> = Vec::new();
    for ki in [gi, li] {
        // key from the new side when present, else from the old side
        let src: Vec<(usize, usize)> = old_idx
            .iter()
            .zip(&new_idx)
            .map(|(o, n)| match (o, n) {
                (_, Some(n)) => (1, *n as usize),
                (Some(o), None) => (0, *o as usize),
                (None, None) => (1, 0),
            })
            .collect();
        let arrays: [&dyn Array; 2] = [old_all.column(ki).as_ref(), new_all.column(ki).as_ref()];
        cols.push(arrow::compute::interleave(&arrays, &src)?);
    }
    cols.push(Arc::new(StringArray::from(kinds)));
    for (name, i) in &names {
        if name == &cfg.group_key || name == &cfg.label_key {
            continue;
        }
        cols.push(take_opt(old_all.column(*i), &old_idx)?);
        cols.push(take_opt(new_all.column(*i), &new_idx)?);
    }
    Ok(RecordBatch::try_new(out_schema, cols)?)
}
