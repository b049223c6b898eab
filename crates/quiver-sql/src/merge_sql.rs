//! Execution of the merge statements: MERGE, MERGE … PREVIEW / `quiver_merge_preview`,
//! SHOW CONFLICTS / `quiver_conflicts`, RESOLVE CONFLICTS, ABORT MERGE and COMMIT of a
//! pending merge.

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, Int64Array, RecordBatch, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Int64Type, Schema};
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use quiver_core::{Dataset, MergePreview, MergeReport, Resolution, VersionSpec};

use crate::error::{Result, SqlError};

/// One summary row of a merge: result, head commit and counts.
pub fn merge_row(r: &MergeReport) -> Result<RecordBatch> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("result", DataType::Utf8, false),
        Field::new("commit_id", DataType::Utf8, false),
        Field::new("groups_changed", DataType::UInt64, false),
        Field::new("groups_label_merged", DataType::UInt64, false),
        Field::new("conflicts", DataType::UInt64, false),
    ]));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec![r.kind.as_str()])),
        Arc::new(StringArray::from(vec![r.head.to_hex()])),
        Arc::new(UInt64Array::from(vec![r.groups_changed])),
        Arc::new(UInt64Array::from(vec![r.groups_label_merged])),
        Arc::new(UInt64Array::from(vec![r.conflicts])),
    ];
    Ok(RecordBatch::try_new(schema, cols).map_err(DataFusionError::from)?)
}

/// The schema of the row of `MERGE … PREVIEW`.
pub fn preview_schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("result", DataType::Utf8, false),
        Field::new("target_commit", DataType::Utf8, false),
        Field::new("source_commit", DataType::Utf8, false),
        Field::new("base_commit", DataType::Utf8, true),
        Field::new("groups_changed", DataType::UInt64, false),
        Field::new("groups_label_merged", DataType::UInt64, false),
        Field::new("labels_added", DataType::UInt64, false),
        Field::new("labels_removed", DataType::UInt64, false),
        Field::new("labels_modified", DataType::UInt64, false),
        Field::new("conflicts", DataType::UInt64, false),
    ]))
}

/// The row of `MERGE … PREVIEW`: what MERGE would end with (`result`, as MERGE names it),
/// the commits involved, and the counts of clean changes and of conflicts.
pub fn preview_row(p: &MergePreview) -> Result<RecordBatch> {
    let n = |v: u64| -> ArrayRef { Arc::new(UInt64Array::from(vec![v])) };
    let s = |v: Option<String>| -> ArrayRef { Arc::new(StringArray::from(vec![v])) };
    let cols: Vec<ArrayRef> = vec![
        s(Some(p.kind.as_str().to_string())),
        s(Some(p.ours.to_hex())),
        s(Some(p.theirs.to_hex())),
        s(p.base.map(|b| b.to_hex())),
        n(p.groups_changed),
        n(p.groups_label_merged),
        n(p.labels_added),
        n(p.labels_removed),
        n(p.labels_modified),
        n(p.conflicts.len() as u64),
    ];
    Ok(RecordBatch::try_new(preview_schema(), cols).map_err(DataFusionError::from)?)
}

/// `MERGE <source> INTO target ON ds`.
pub async fn merge(
    ds: &Dataset,
    source: &VersionSpec,
    target: &str,
    message: Option<&str>,
    author: &str,
) -> Result<MergeReport> {
    Ok(ds.merge(source, target, message, author).await?)
}

/// The conflict table of the pending merge into `target`.
pub async fn conflicts(ds: &Dataset, target: &str) -> Result<RecordBatch> {
    let c = ds.conflicts(target).await?;
    Ok(ds.conflicts_table(&c)?)
}

/// `RESOLVE CONFLICTS ON ds USING OURS|THEIRS [WHERE p]`: returns (resolved, remaining).
pub async fn resolve(
    ds: &Dataset,
    target: &str,
    theirs: bool,
    filter: Option<&str>,
) -> Result<RecordBatch> {
    let side = if theirs {
        Resolution::Theirs
    } else {
        Resolution::Ours
    };
    let only = match filter {
        None => None,
        Some(p) => {
            let conflicts = ds.conflicts(target).await?;
            let table = ds.conflicts_table(&conflicts)?;
            // number the rows, select the numbers the predicate keeps
            let mut fields: Vec<Field> = table
                .schema()
                .fields()
                .iter()
                .map(|f| f.as_ref().clone())
                .collect();
            fields.push(Field::new("__row", DataType::Int64, false));
            let mut cols = table.columns().to_vec();
            cols.push(Arc::new(Int64Array::from_iter_values(
                0..table.num_rows() as i64,
            )));
            let numbered = RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)
                .map_err(DataFusionError::from)?;
            let ctx = SessionContext::new();
            let mem = MemTable::try_new(numbered.schema(), vec![vec![numbered]])?;
            ctx.register_table("conflicts", Arc::new(mem))?;
            let rows = ctx
                .sql(&format!("SELECT __row FROM conflicts WHERE {p}"))
                .await
                .map_err(|e| SqlError::Parse(format!("RESOLVE CONFLICTS … WHERE {p}: {e}")))?
                .collect()
                .await?;
            let mut set = BTreeSet::new();
            for b in rows {
                for i in b.column(0).as_primitive::<Int64Type>().values() {
                    if let Some(c) = conflicts.get(*i as usize) {
                        set.insert((c.group.clone(), c.label.clone()));
                    }
                }
            }
            Some(set)
        }
    };
    let n = ds.resolve_conflicts(target, side, only.as_ref()).await?;
    let left = ds.conflicts(target).await?.len() as u64;
    let schema = Arc::new(Schema::new(vec![
        Field::new("resolved", DataType::UInt64, false),
        Field::new("remaining", DataType::UInt64, false),
    ]));
    Ok(RecordBatch::try_new(
        schema,
        vec![
            Arc::new(UInt64Array::from(vec![n])),
            Arc::new(UInt64Array::from(vec![left])),
        ],
    )
    .map_err(DataFusionError::from)?)
}

/// Commit the pending merge into `target`; one row (dataset, branch, commit_id).
pub async fn commit(
    ds: &Dataset,
    target: &str,
    message: Option<&str>,
    author: &str,
) -> Result<(String, String, String)> {
    let c = ds.commit_merge(target, message, author).await?;
    Ok((ds.name().to_string(), target.to_string(), c.id.to_hex()))
}

/// Rows (dataset, branch, commit_id) as a batch.
pub fn commits_row(rows: &[(String, String, String)]) -> Result<RecordBatch> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("dataset", DataType::Utf8, false),
        Field::new("branch", DataType::Utf8, false),
        Field::new("commit_id", DataType::Utf8, false),
    ]));
    let col = |f: fn(&(String, String, String)) -> String| -> ArrayRef {
        Arc::new(StringArray::from(rows.iter().map(f).collect::<Vec<_>>()))
    };
    Ok(RecordBatch::try_new(
        schema,
        vec![
            col(|r| r.0.clone()),
            col(|r| r.1.clone()),
            col(|r| r.2.clone()),
        ],
    )
    .map_err(DataFusionError::from)?)
}
