//! Per-label history: every commit that changed one label group (or one label of it),
//! newest first, along the first-parent history of a version.
//!
//! The walk follows first parents from the starting commit (a merge commit is charged with
//! what the merge brought into the branch, as `git log --first-parent` does). For each
//! commit it takes the storage diff from its first parent ([`Snapshot::diff_located`]):
//! consecutive commits on one base differ by their last delta, so the diff reads only delta
//! records, never rows. Only when the group is among the changes are its rows read, on both
//! sides, and compared label by label. A root commit is compared with an empty version.
//!
//! [`Snapshot::diff_located`]: crate::Snapshot::diff_located

use std::sync::Arc;

use arrow::array::{new_null_array, ArrayRef, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use quiver_tree::{Hash, Key};

use crate::dataset::Dataset;
use crate::error::Result;
use crate::model::Commit;

/// How a commit changed a label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelChangeKind {
    Added,
    Modified,
    Removed,
}

impl LabelChangeKind {
    /// `added`, `modified` or `removed` (the words of `DIFF` and `quiver_diff`).
    pub fn as_str(&self) -> &'static str {
        match self {
            LabelChangeKind::Added => "added",
            LabelChangeKind::Modified => "modified",
            LabelChangeKind::Removed => "removed",
        }
    }
}

/// One change of one label by one commit.
#[derive(Debug, Clone)]
pub struct LabelChange {
    /// The commit that made the change.
    pub commit: Commit,
    /// The label key.
    pub label: Key,
    pub kind: LabelChangeKind,
    /// The label's row before the commit (one row), if it existed.
    pub old: Option<RecordBatch>,
    /// The label's row after the commit (one row), if it exists.
    pub new: Option<RecordBatch>,
}

impl Dataset {
    /// The changes of group `group` (only of its label `label`, when given) made by the
    /// first-parent history of `head`, newest commit first, labels in key order within a
    /// commit (see the module docs).
    pub async fn label_history(
        &self,
        head: &Commit,
        group: &Key,
        label: Option<&Key>,
    ) -> Result<Vec<LabelChange>> {
        let li = self.schema().index_of(&self.config.label_key)?;
        let mut out = Vec::new();
        let mut cur = head.clone();
        loop {
            let parent = match cur.parents.first() {
                Some(p) => Some(self.commit(p).await?),
                None => None,
            };
            let after = self.snapshot(cur.clone());
            let (old, new) = match &parent {
                Some(p) => {
                    let before = self.snapshot(p.clone());
                    let changes = before.diff_located(&after).await?;
                    match changes.iter().find(|c| &c.change.key == group) {
                        None => (None, None),
                        Some(c) => {
                            let (old, new) = futures::try_join!(
                                before.read_at(c.old_rows()),
                                after.read_at(c.new_rows()),
                            )?;
                            (old.get(group).cloned(), new.get(group).cloned())
                        }
                    }
                }
                None => {
                    let keys = std::iter::once(group.clone()).collect();
                    (None, after.read_groups(&keys).await?.remove(group))
                }
            };
            if old.is_some() || new.is_some() {
                let (lo, ln) = (
                    crate::merge::label_map(old.as_ref(), li),
                    crate::merge::label_map(new.as_ref(), li),
                );
                let mut keys: Vec<&Key> = lo.keys().chain(ln.keys()).collect();
                keys.sort();
                keys.dedup();
                for k in keys.into_iter().filter(|k| label.is_none_or(|l| l == *k)) {
                    let (o, n) = (lo.get(k), ln.get(k));
                    let kind = match (o, n) {
                        (None, Some(_)) => LabelChangeKind::Added,
                        (Some(_), None) => LabelChangeKind::Removed,
                        (Some(a), Some(b)) if a.1 != b.1 => LabelChangeKind::Modified,
                        _ => continue,
                    };
                    let row = |b: &Option<RecordBatch>, e: Option<&(usize, Hash)>| {
                        b.as_ref().zip(e).map(|(b, (r, _))| b.slice(*r, 1))
                    };
                    out.push(LabelChange {
                        commit: cur.clone(),
                        label: k.clone(),
                        kind,
                        old: row(&old, o),
                        new: row(&new, n),
                    });
                }
            }
            match parent {
                Some(p) => cur = p,
                None => break,
            }
        }
        Ok(out)
    }

    /// The schema of [`Dataset::label_history_table`].
    pub fn label_history_schema(&self) -> Result<SchemaRef> {
        Ok(self.label_history_table(&[])?.schema())
    }

    /// Label changes as one table: `commit_id`, `timestamp`, `author`, `message`,
    /// `operation`, the group key, the label key, `change` (`added` | `modified` |
    /// `removed`), then `old_<col>` and `new_<col>` for every other column.
    pub fn label_history_table(&self, changes: &[LabelChange]) -> Result<RecordBatch> {
        let schema = self.schema();
        let (gi, li) = (
            schema.index_of(&self.config.group_key)?,
            schema.index_of(&self.config.label_key)?,
        );
        let text = |f: &dyn Fn(&LabelChange) -> String| -> ArrayRef {
            Arc::new(StringArray::from(changes.iter().map(f).collect::<Vec<_>>()))
        };
        let mut fields = vec![
            Field::new("commit_id", DataType::Utf8, false),
            Field::new(
                "timestamp",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                false,
            ),
            Field::new("author", DataType::Utf8, false),
            Field::new("message", DataType::Utf8, false),
            Field::new("operation", DataType::Utf8, false),
        ];
        let mut cols: Vec<ArrayRef> = vec![
            text(&|c| c.commit.id.to_hex()),
            Arc::new(
                TimestampMicrosecondArray::from(
                    changes
                        .iter()
                        .map(|c| c.commit.data.timestamp.timestamp_micros())
                        .collect::<Vec<_>>(),
                )
                .with_timezone("UTC"),
            ),
            text(&|c| c.commit.data.author.clone()),
            text(&|c| c.commit.data.message.clone()),
            text(&|c| c.commit.data.summary.operation.clone()),
        ];
        // the keys from whichever side has the row
        let key_rows: Vec<RecordBatch> = changes
            .iter()
            .filter_map(|c| c.new.clone().or_else(|| c.old.clone()))
            .collect();
        let keys = if key_rows.is_empty() {
            RecordBatch::new_empty(schema.clone())
        } else {
            arrow::compute::concat_batches(&schema, &key_rows)?
        };
        for i in [gi, li] {
            fields.push(schema.field(i).clone().with_nullable(false));
            cols.push(keys.column(i).clone());
        }
        fields.push(Field::new("change", DataType::Utf8, false));
        cols.push(text(&|c| c.kind.as_str().to_string()));
        for (i, f) in schema.fields().iter().enumerate() {
            if i == gi || i == li {
                continue;
            }
            for (side, get) in [
                (
                    "old",
                    (|c: &LabelChange| c.old.clone()) as fn(&LabelChange) -> Option<RecordBatch>,
                ),
                ("new", |c: &LabelChange| c.new.clone()),
            ] {
                let parts: Vec<ArrayRef> = changes
                    .iter()
                    .map(|c| match get(c) {
                        Some(b) => b.column(i).clone(),
                        None => new_null_array(f.data_type(), 1),
                    })
                    .collect();
                let refs: Vec<&dyn arrow::array::Array> =
                    parts.iter().map(|a| a.as_ref()).collect();
                let col = if refs.is_empty() {
                    arrow::array::new_empty_array(f.data_type())
                } else {
                    arrow::compute::concat(&refs)?
                };
                fields.push(Field::new(
                    format!("{side}_{}", f.name()),
                    f.data_type().clone(),
                    true,
                ));
                cols.push(col);
            }
        }
        Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)?)
    }
}
