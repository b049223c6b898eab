//! System tables: `quiver.datasets`, `quiver.commits`, `quiver.branches`, `quiver.tags`,
//! built on demand from the catalog (small tables, one row per dataset/commit/ref), and
//! the result tables of `SHOW BRANCHES|TAGS|HISTORY`.

use std::collections::HashSet;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, RecordBatch, StringArray, TimestampMicrosecondArray, UInt64Array,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use quiver_core::{Catalog, Commit, Dataset, RefInfo, RunRecord};

use crate::error::{Result, SqlError};

/// Names of the system tables.
pub const SYSTEM_TABLES: [&str; 5] = ["datasets", "commits", "branches", "tags", "runs"];

fn utf8(v: Vec<String>) -> ArrayRef {
    Arc::new(StringArray::from(v))
}

fn batch(fields: Vec<Field>, cols: Vec<ArrayRef>) -> Result<RecordBatch> {
    let schema: SchemaRef = Arc::new(Schema::new(fields));
    RecordBatch::try_new(schema, cols).map_err(|e| SqlError::DataFusion(e.into()))
}

fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// Rows of commits (optionally with a leading `dataset` column).
pub fn commits_batch(rows: &[(String, Commit)], with_dataset: bool) -> Result<RecordBatch> {
    let mut fields = Vec::new();
    let mut cols: Vec<ArrayRef> = Vec::new();
    if with_dataset {
        fields.push(Field::new("dataset", DataType::Utf8, false));
        cols.push(utf8(rows.iter().map(|r| r.0.clone()).collect()));
    }
    let s = |f: &dyn Fn(&Commit) -> String| utf8(rows.iter().map(|r| f(&r.1)).collect());
    let n = |f: &dyn Fn(&Commit) -> u64| {
        Arc::new(UInt64Array::from(
            rows.iter().map(|r| f(&r.1)).collect::<Vec<_>>(),
        )) as ArrayRef
    };
    fields.extend([
        Field::new("commit_id", DataType::Utf8, false),
        Field::new("parents", DataType::Utf8, false),
        Field::new("author", DataType::Utf8, false),
        Field::new("message", DataType::Utf8, false),
        Field::new("timestamp", ts_type(), false),
        Field::new("operation", DataType::Utf8, false),
        Field::new("groups_added", DataType::UInt64, false),
        Field::new("groups_removed", DataType::UInt64, false),
        Field::new("groups_modified", DataType::UInt64, false),
        Field::new("labels_added", DataType::UInt64, false),
        Field::new("labels_removed", DataType::UInt64, false),
        Field::new("labels_modified", DataType::UInt64, false),
    ]);
    cols.push(s(&|c| c.id.to_hex()));
    cols.push(s(&|c| {
        c.parents
            .iter()
            .map(|p| p.to_hex())
            .collect::<Vec<_>>()
            .join(",")
    }));
    cols.push(s(&|c| c.data.author.clone()));
    cols.push(s(&|c| c.data.message.clone()));
    cols.push(Arc::new(
        TimestampMicrosecondArray::from(
            rows.iter()
                .map(|r| r.1.data.timestamp.timestamp_micros())
                .collect::<Vec<_>>(),
        )
        .with_timezone("UTC"),
    ));
    cols.push(s(&|c| c.data.summary.operation.clone()));
    cols.push(n(&|c| c.data.summary.groups_added));
    cols.push(n(&|c| c.data.summary.groups_removed));
    cols.push(n(&|c| c.data.summary.groups_modified));
    cols.push(n(&|c| c.data.summary.labels_added));
    cols.push(n(&|c| c.data.summary.labels_removed));
    cols.push(n(&|c| c.data.summary.labels_modified));
    batch(fields, cols)
}

/// Rows of refs (`kind` = "branch" or "tag"), optionally with a leading `dataset` column.
pub fn refs_batch(
    kind: &str,
    rows: &[(String, RefInfo)],
    with_dataset: bool,
) -> Result<RecordBatch> {
    let mut fields = Vec::new();
    let mut cols: Vec<ArrayRef> = Vec::new();
    if with_dataset {
        fields.push(Field::new("dataset", DataType::Utf8, false));
        cols.push(utf8(rows.iter().map(|r| r.0.clone()).collect()));
    }
    fields.push(Field::new(kind, DataType::Utf8, false));
    fields.push(Field::new("commit_id", DataType::Utf8, false));
    cols.push(utf8(rows.iter().map(|r| r.1.name.clone()).collect()));
    cols.push(utf8(rows.iter().map(|r| r.1.commit.to_hex()).collect()));
    batch(fields, cols)
}

async fn all_datasets(catalog: &Catalog) -> Result<Vec<Dataset>> {
    let mut out = Vec::new();
    for name in catalog.list_datasets().await? {
        match catalog.dataset(&name).await {
            Ok(ds) => out.push(ds),
            Err(quiver_core::CoreError::DatasetNotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}

/// Build a system table by name (`None` if there is no such table).
pub async fn system_table(catalog: &Catalog, name: &str) -> Result<Option<RecordBatch>> {
    let dss = all_datasets(catalog).await?;
    Ok(Some(match name {
        "datasets" => {
            let mut names = Vec::new();
            let (mut gk, mut lk, mut cols, mut stats) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for ds in &dss {
                let c = ds.config();
                names.push(c.name.clone());
                gk.push(c.group_key.clone());
                lk.push(c.label_key.clone());
                cols.push(
                    c.fields
                        .iter()
                        .map(|f| format!("{} {}", f.name, f.data_type))
                        .collect::<Vec<_>>()
                        .join(", "),
                );
                stats.push(c.stats_columns.join(","));
            }
            batch(
                vec![
                    Field::new("dataset", DataType::Utf8, false),
                    Field::new("group_key", DataType::Utf8, false),
                    Field::new("label_key", DataType::Utf8, false),
                    Field::new("columns", DataType::Utf8, false),
                    Field::new("stats_columns", DataType::Utf8, false),
                ],
                vec![utf8(names), utf8(gk), utf8(lk), utf8(cols), utf8(stats)],
            )?
        }
        "commits" => {
            let mut rows = Vec::new();
            for ds in &dss {
                let mut seen = HashSet::new();
                let mut commits = Vec::new();
                for b in ds.branches().await? {
                    let head = ds.commit(&b.commit).await?;
                    for c in ds.history_of(&head).await? {
                        if seen.insert(c.id) {
                            commits.push(c);
                        }
                    }
                }
                commits.sort_by(|a, b| {
                    b.data
                        .timestamp
                        .cmp(&a.data.timestamp)
                        .then(b.id.cmp(&a.id))
                });
                rows.extend(commits.into_iter().map(|c| (ds.name().to_string(), c)));
            }
            commits_batch(&rows, true)?
        }
        "branches" | "tags" => {
            let mut rows = Vec::new();
            for ds in &dss {
                let refs = if name == "branches" {
                    ds.branches().await?
                } else {
                    ds.tags().await?
                };
                rows.extend(refs.into_iter().map(|r| (ds.name().to_string(), r)));
            }
            refs_batch(
                if name == "branches" { "branch" } else { "tag" },
                &rows,
                true,
            )?
        }
        "runs" => runs_batch(&catalog.runs().await?)?,
        _ => return Ok(None),
    }))
}

/// Rows of `quiver.runs`: which commit of which dataset each training run read.
pub fn runs_batch(runs: &[RunRecord]) -> Result<RecordBatch> {
    let s = |f: &dyn Fn(&RunRecord) -> String| utf8(runs.iter().map(f).collect());
    batch(
        vec![
            Field::new("run_id", DataType::Utf8, false),
            Field::new("dataset", DataType::Utf8, false),
            Field::new("ref", DataType::Utf8, false),
            Field::new("commit_id", DataType::Utf8, false),
            Field::new("shards", DataType::UInt64, false),
            Field::new("columns", DataType::Utf8, false),
            Field::new("filter", DataType::Utf8, true),
            Field::new("author", DataType::Utf8, false),
            Field::new("recorded_at", ts_type(), false),
        ],
        vec![
            s(&|r| r.run_id.clone()),
            s(&|r| r.dataset.clone()),
            s(&|r| r.reference.clone()),
            s(&|r| r.commit.clone()),
            Arc::new(UInt64Array::from(
                runs.iter().map(|r| r.shards as u64).collect::<Vec<_>>(),
            )),
            s(&|r| r.columns.join(",")),
            Arc::new(StringArray::from(
                runs.iter().map(|r| r.filter.clone()).collect::<Vec<_>>(),
            )),
            s(&|r| r.author.clone()),
            Arc::new(
                TimestampMicrosecondArray::from(
                    runs.iter()
                        .map(|r| r.recorded_at.timestamp_micros())
                        .collect::<Vec<_>>(),
                )
                .with_timezone("UTC"),
            ),
        ],
    )
}
