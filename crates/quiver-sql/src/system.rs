//! System tables: `quiver.datasets`, `quiver.commits`, `quiver.branches` (with each
//! branch's protection and check names), `quiver.branch_checks`, `quiver.tags`, …,
//! `quiver.erasures` (every erased label: when, by whom, why) and `quiver.erased_assets`,
//! built on demand from the catalog (small tables, one row per dataset/commit/ref), and
//! the result tables of `SHOW BRANCHES|TAGS|HISTORY`.

use std::collections::HashSet;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanArray, RecordBatch, StringArray, TimestampMicrosecondArray, UInt64Array,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use quiver_core::{BranchSettings, Catalog, Commit, Dataset, RefInfo, RunRecord};

use crate::error::{Result, SqlError};

/// Names of the system tables.
pub const SYSTEM_TABLES: [&str; 13] = [
    "datasets",
    "commits",
    "branches",
    "branch_checks",
    "tags",
    "runs",
    "models",
    "predictions",
    "lineage",
    "schemas",
    "schema_classes",
    "erasures",
    "erased_assets",
];

pub(crate) fn utf8(v: Vec<String>) -> ArrayRef {
    Arc::new(StringArray::from(v))
}

fn batch(fields: Vec<Field>, cols: Vec<ArrayRef>) -> Result<RecordBatch> {
    let schema: SchemaRef = Arc::new(Schema::new(fields));
    RecordBatch::try_new(schema, cols).map_err(|e| SqlError::DataFusion(e.into()))
}

pub(crate) fn ts_type() -> DataType {
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
        Field::new("label_schema", DataType::Utf8, true),
        Field::new("content_hash", DataType::Utf8, false),
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
    cols.push(Arc::new(StringArray::from(
        rows.iter()
            .map(|r| r.1.data.label_schema.clone())
            .collect::<Vec<_>>(),
    )));
    // the snapshot's content hash: equal for equal content, whatever history made it
    cols.push(s(&|c| c.root.to_hex()));
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

/// Branches with their settings: (`dataset`), `branch`, `commit_id`, `protected` (writes
/// only by merge) and `checks` (the names of its pre-merge checks, comma-separated).
pub fn branches_batch(
    rows: &[(String, RefInfo, BranchSettings)],
    with_dataset: bool,
) -> Result<RecordBatch> {
    let refs: Vec<(String, RefInfo)> = rows.iter().map(|r| (r.0.clone(), r.1.clone())).collect();
    let b = refs_batch("branch", &refs, with_dataset)?;
    let schema = b.schema();
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    let mut cols = b.columns().to_vec();
    fields.push(Field::new("protected", DataType::Boolean, false));
    cols.push(Arc::new(BooleanArray::from(
        rows.iter().map(|r| r.2.protected).collect::<Vec<_>>(),
    )));
    fields.push(Field::new("checks", DataType::Utf8, false));
    cols.push(utf8(
        rows.iter()
            .map(|r| {
                r.2.checks
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect(),
    ));
    batch(fields, cols)
}

/// Branches of `ds` with their settings, sorted by name.
pub async fn branches_with_settings(
    ds: &Dataset,
) -> Result<Vec<(String, RefInfo, BranchSettings)>> {
    let mut settings = ds.all_branch_settings().await?;
    Ok(ds
        .branches()
        .await?
        .into_iter()
        .map(|r| {
            let s = settings.remove(&r.name).unwrap_or_default();
            (ds.name().to_string(), r, s)
        })
        .collect())
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
    // tables of the lineage log need no dataset
    match name {
        "runs" => return Ok(Some(runs_batch(&catalog.runs().await?)?)),
        "models" => return Ok(Some(models_batch(&catalog.models().await?)?)),
        "predictions" => {
            let schema = quiver_core::lineage::predictions_schema();
            let batches = catalog.predictions().await?;
            return Ok(Some(arrow::compute::concat_batches(&schema, &batches)?));
        }
        "erasures" => return Ok(Some(erasures_batch(&catalog.erased_labels().await?)?)),
        "erased_assets" => {
            return Ok(Some(erased_assets_batch(
                &catalog.assets().tombstones().await?,
            )?))
        }
        _ => {}
    }
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
        "branches" => {
            let mut rows = Vec::new();
            for ds in &dss {
                rows.extend(branches_with_settings(ds).await?);
            }
            branches_batch(&rows, true)?
        }
        "branch_checks" => {
            let (mut d, mut b, mut c, mut q) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for ds in &dss {
                for (_, r, s) in branches_with_settings(ds).await? {
                    for check in s.checks {
                        d.push(ds.name().to_string());
                        b.push(r.name.clone());
                        c.push(check.name);
                        q.push(check.query);
                    }
                }
            }
            let fields = ["dataset", "branch", "check", "query"]
                .map(|n| Field::new(n, DataType::Utf8, false))
                .to_vec();
            batch(fields, vec![utf8(d), utf8(b), utf8(c), utf8(q)])?
        }
        "tags" => {
            let mut rows = Vec::new();
            for ds in &dss {
                rows.extend(
                    ds.tags()
                        .await?
                        .into_iter()
                        .map(|r| (ds.name().to_string(), r)),
                );
            }
            refs_batch("tag", &rows, true)?
        }
        "lineage" => lineage_batch(catalog, &dss).await?,
        "schemas" => {
            let mut rows = Vec::new();
            for ds in &dss {
                rows.extend(ds.taxonomies().await?);
            }
            schemas_batch(&rows)?
        }
        "schema_classes" => {
            let (mut d, mut v, mut c, mut id) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for ds in &dss {
                for (sv, t) in ds.taxonomies().await? {
                    for (name, i) in t.classes {
                        d.push(ds.name().to_string());
                        v.push(sv.version.clone());
                        c.push(name);
                        id.push(i);
                    }
                }
            }
            batch(
                vec![
                    Field::new("dataset", DataType::Utf8, false),
                    Field::new("version", DataType::Utf8, false),
                    Field::new("class", DataType::Utf8, false),
                    Field::new("class_id", DataType::Int64, false),
                ],
                vec![
                    utf8(d),
                    utf8(v),
                    utf8(c),
                    Arc::new(arrow::array::Int64Array::from(id)),
                ],
            )?
        }
        _ => return Ok(None),
    }))
}

/// Rows of `quiver.erasures`: every label erased from a dataset, one row per (erasure,
/// label), newest first; `packs` is how many packs (copies in versions, before-images) it
/// was erased from.
pub fn erasures_batch(rows: &[quiver_core::ErasedLabel]) -> Result<RecordBatch> {
    let s = |f: &dyn Fn(&quiver_core::ErasedLabel) -> String| utf8(rows.iter().map(f).collect());
    batch(
        vec![
            Field::new("dataset", DataType::Utf8, false),
            Field::new("erasure_id", DataType::Utf8, false),
            Field::new("group_key", DataType::Utf8, false),
            Field::new("label_key", DataType::Utf8, false),
            Field::new("erased_at", ts_type(), false),
            Field::new("author", DataType::Utf8, false),
            Field::new("reason", DataType::Utf8, false),
            Field::new("filter", DataType::Utf8, false),
            Field::new("packs", DataType::UInt64, false),
        ],
        vec![
            s(&|r| r.dataset.clone()),
            s(&|r| r.id.clone()),
            s(&|r| r.group.clone()),
            s(&|r| r.label.clone()),
            ts_array(rows.iter().map(|r| r.time.timestamp_micros()).collect()),
            s(&|r| r.author.clone()),
            s(&|r| r.reason.clone()),
            s(&|r| r.filter.clone()),
            Arc::new(UInt64Array::from(
                rows.iter().map(|r| r.packs).collect::<Vec<_>>(),
            )),
        ],
    )
}

/// Rows of `quiver.erased_assets`: the tombstones of erased assets, oldest first.
pub fn erased_assets_batch(rows: &[quiver_core::assets::Tombstone]) -> Result<RecordBatch> {
    batch(
        vec![
            Field::new("hash", DataType::Utf8, false),
            Field::new("erased_at", ts_type(), false),
            Field::new("author", DataType::Utf8, false),
            Field::new("reason", DataType::Utf8, false),
            Field::new("size", DataType::UInt64, true),
        ],
        vec![
            utf8(rows.iter().map(|t| t.hash.clone()).collect()),
            ts_array(rows.iter().map(|t| t.time.timestamp_micros()).collect()),
            utf8(rows.iter().map(|t| t.author.clone()).collect()),
            utf8(rows.iter().map(|t| t.reason.clone()).collect()),
            Arc::new(UInt64Array::from(
                rows.iter().map(|t| t.size).collect::<Vec<_>>(),
            )),
        ],
    )
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

fn ts_array(v: Vec<i64>) -> ArrayRef {
    Arc::new(TimestampMicrosecondArray::from(v).with_timezone("UTC"))
}

/// Rows of `quiver.models`: each model and the run (and so the commits) it came from.
pub fn models_batch(models: &[quiver_core::ModelRecord]) -> Result<RecordBatch> {
    let s = |f: &dyn Fn(&quiver_core::ModelRecord) -> String| utf8(models.iter().map(f).collect());
    batch(
        vec![
            Field::new("model", DataType::Utf8, false),
            Field::new("run_id", DataType::Utf8, false),
            Field::new("author", DataType::Utf8, false),
            Field::new("registered_at", ts_type(), false),
            Field::new("message", DataType::Utf8, false),
        ],
        vec![
            s(&|m| m.model.clone()),
            s(&|m| m.run_id.clone()),
            s(&|m| m.author.clone()),
            ts_array(
                models
                    .iter()
                    .map(|m| m.registered_at.timestamp_micros())
                    .collect(),
            ),
            s(&|m| m.message.clone()),
        ],
    )
}

/// Rows of `quiver.schemas`: every schema version of every dataset with its delta.
pub fn schemas_batch(
    rows: &[(quiver_core::SchemaVersion, quiver_core::Taxonomy)],
) -> Result<RecordBatch> {
    let s = |f: &dyn Fn(&quiver_core::SchemaVersion) -> String| {
        utf8(rows.iter().map(|r| f(&r.0)).collect())
    };
    batch(
        vec![
            Field::new("dataset", DataType::Utf8, false),
            Field::new("version", DataType::Utf8, false),
            Field::new("parent", DataType::Utf8, true),
            Field::new("changes", DataType::Utf8, false),
            Field::new("classes", DataType::UInt64, false),
            Field::new("attributes", DataType::UInt64, false),
            Field::new("author", DataType::Utf8, false),
            Field::new("created_at", ts_type(), false),
            Field::new("message", DataType::Utf8, false),
        ],
        vec![
            s(&|v| v.dataset.clone()),
            s(&|v| v.version.clone()),
            Arc::new(StringArray::from(
                rows.iter().map(|r| r.0.parent.clone()).collect::<Vec<_>>(),
            )),
            s(&|v| {
                v.changes
                    .iter()
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>()
                    .join("; ")
            }),
            Arc::new(UInt64Array::from(
                rows.iter()
                    .map(|r| r.1.classes.len() as u64)
                    .collect::<Vec<_>>(),
            )),
            Arc::new(UInt64Array::from(
                rows.iter()
                    .map(|r| r.1.attributes.len() as u64)
                    .collect::<Vec<_>>(),
            )),
            s(&|v| v.author.clone()),
            ts_array(
                rows.iter()
                    .map(|r| r.0.created_at.timestamp_micros())
                    .collect(),
            ),
            s(&|v| v.message.clone()),
        ],
    )
}

/// (from_kind, from_id, relation, to_kind, to_id, dataset, author, at)
type Edge = (String, String, String, String, String, String, String, i64);

/// Rows of `quiver.lineage`: the edges of the lineage graph — commit → parent commit,
/// run → commit it consumed, model → run that produced it, prediction batch → model.
pub async fn lineage_batch(catalog: &Catalog, dss: &[Dataset]) -> Result<RecordBatch> {
    let mut e: Vec<Edge> = Vec::new();
    for ds in dss {
        let mut seen = HashSet::new();
        for b in ds.branches().await? {
            let head = ds.commit(&b.commit).await?;
            for c in ds.history_of(&head).await? {
                if !seen.insert(c.id) {
                    continue;
                }
                for p in &c.parents {
                    e.push((
                        "commit".into(),
                        c.id.to_hex(),
                        "parent".into(),
                        "commit".into(),
                        p.to_hex(),
                        ds.name().into(),
                        c.data.author.clone(),
                        c.data.timestamp.timestamp_micros(),
                    ));
                }
            }
        }
    }
    for r in catalog.runs().await? {
        e.push((
            "run".into(),
            r.run_id.clone(),
            "consumed".into(),
            "commit".into(),
            r.commit.clone(),
            r.dataset.clone(),
            r.author.clone(),
            r.recorded_at.timestamp_micros(),
        ));
    }
    for m in catalog.models().await? {
        e.push((
            "model".into(),
            m.model.clone(),
            "trained_by".into(),
            "run".into(),
            m.run_id.clone(),
            String::new(),
            m.author.clone(),
            m.registered_at.timestamp_micros(),
        ));
    }
    for p in catalog.prediction_batches().await? {
        e.push((
            "predictions".into(),
            p.batch_id.clone(),
            "predicted_by".into(),
            "model".into(),
            p.model.clone(),
            String::new(),
            p.author.clone(),
            p.predicted_at.timestamp_micros(),
        ));
    }
    let s = |f: &dyn Fn(&Edge) -> String| utf8(e.iter().map(f).collect());
    batch(
        vec![
            Field::new("from_kind", DataType::Utf8, false),
            Field::new("from_id", DataType::Utf8, false),
            Field::new("relation", DataType::Utf8, false),
            Field::new("to_kind", DataType::Utf8, false),
            Field::new("to_id", DataType::Utf8, false),
            Field::new("dataset", DataType::Utf8, false),
            Field::new("author", DataType::Utf8, false),
            Field::new("at", ts_type(), false),
        ],
        vec![
            s(&|x| x.0.clone()),
            s(&|x| x.1.clone()),
            s(&|x| x.2.clone()),
            s(&|x| x.3.clone()),
            s(&|x| x.4.clone()),
            s(&|x| x.5.clone()),
            s(&|x| x.6.clone()),
            ts_array(e.iter().map(|x| x.7).collect()),
        ],
    )
}
