//! SQL over the lineage graph and the schema registry: the table functions
//! `quiver_lineage_of_model('m')` and `quiver_models_trained_on('ds', 'sample')`, the
//! statements `CREATE RUN`, `CREATE MODEL`, `INSERT INTO quiver.predictions`,
//! `CREATE SCHEMA VERSION`, `SHOW SCHEMAS`, `SHOW SCHEMA`, `MIGRATE`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::{
    ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray, UInt64Array,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::TableFunctionImpl;
use datafusion::datasource::TableProvider;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::Expr;
use datafusion::prelude::{SessionConfig, SessionContext};
use quiver_core::{Catalog, Dataset, Hash, ModelRecord, RunRecord};

use crate::computed::{Computed, ComputedTable};
use crate::context::string_args;
use crate::error::{df_err, Result, SqlError};
use crate::provider::{self, PackInfoCache, QuiverTableProvider};
use crate::system::{ts_type, utf8};

/// What `quiver_lineage_of_model('m')` needs, resolved before planning.
#[derive(Debug, Clone)]
pub struct ModelLineage {
    pub model: ModelRecord,
    pub runs: Vec<RunRecord>,
    pub dataset: Dataset,
}

/// Models resolved for the statement being planned.
pub type LineageCache = Arc<Mutex<HashMap<String, ModelLineage>>>;

/// Resolve the models named in `quiver_lineage_of_model(...)` calls of `sql`.
pub async fn preload_models(catalog: &Catalog, cache: &LineageCache, sql: &str) -> Result<()> {
    for m in crate::parser::function_first_args(sql, "quiver_lineage_of_model") {
        let model = catalog.model(&m).await?;
        let runs = catalog.run(&model.run_id).await?;
        let first = runs
            .first()
            .map(|r| r.dataset.clone())
            .ok_or_else(|| quiver_core::CoreError::RunNotFound(model.run_id.clone()))?;
        if runs.iter().any(|r| r.dataset != first) {
            return Err(SqlError::Unsupported(format!(
                "run '{}' of model '{m}' read several datasets; query each with quiver.runs",
                model.run_id
            )));
        }
        let dataset = catalog.dataset(&first).await?;
        if let Ok(mut c) = cache.lock() {
            c.insert(
                m.clone(),
                ModelLineage {
                    model,
                    runs,
                    dataset,
                },
            );
        }
    }
    Ok(())
}

/// A read of one (dataset, commit) selection into memory, with the run's filter.
async fn read_selection(
    ds: &Dataset,
    commit_hex: &str,
    filter: Option<&str>,
    extra_where: Option<String>,
    packs: PackInfoCache,
) -> Result<Vec<RecordBatch>> {
    let id = Hash::from_hex(commit_hex).ok_or_else(|| quiver_core::CoreError::Corrupt {
        what: format!("lineage record of dataset '{}'", ds.name()),
        reason: format!("bad commit id '{commit_hex}'"),
    })?;
    let commit = ds.commit(&id).await?;
    let ctx = SessionContext::new_with_config(SessionConfig::new());
    let url = provider::store_url(u64::MAX)?;
    provider::register_store(&ctx, &url, ds.catalog());
    let p = QuiverTableProvider::new(ds.snapshot(commit), url, packs)?;
    ctx.register_table("labels", Arc::new(p))?;
    let mut preds: Vec<String> = Vec::new();
    if let Some(f) = filter.filter(|f| !f.trim().is_empty()) {
        preds.push(format!("({f})"));
    }
    if let Some(w) = extra_where {
        preds.push(w);
    }
    let q = if preds.is_empty() {
        "SELECT * FROM labels".to_string()
    } else {
        format!("SELECT * FROM labels WHERE {}", preds.join(" AND "))
    };
    Ok(ctx.sql(&q).await?.collect().await?)
}

/// `quiver_lineage_of_model('m')`: the labels model `m` was trained on — its run, the exact
/// commit(s) the run read, and every label of the run's selection with all its columns
/// (reviewer, reviewed_at, …).
#[derive(Debug)]
pub struct LineageOfModel {
    pub cache: LineageCache,
    pub packs: PackInfoCache,
}

fn lineage_schema(ds: &Dataset) -> SchemaRef {
    let mut fields = vec![
        Field::new("model", DataType::Utf8, false),
        Field::new("run_id", DataType::Utf8, false),
        Field::new("dataset", DataType::Utf8, false),
        Field::new("commit_id", DataType::Utf8, false),
    ];
    // the label columns as SQL reads them (strings as views)
    let labels = provider::read_schema(&ds.schema());
    fields.extend(labels.fields().iter().map(|f| f.as_ref().clone()));
    Arc::new(Schema::new(fields))
}

impl TableFunctionImpl for LineageOfModel {
    fn call(&self, args: &[Expr]) -> DfResult<Arc<dyn TableProvider>> {
        let [m] = string_args("quiver_lineage_of_model", "('model')", args)?;
        let info = self
            .cache
            .lock()
            .ok()
            .and_then(|c| c.get(&m).cloned())
            .ok_or_else(|| df_err(quiver_core::CoreError::ModelNotFound(m.clone())))?;
        Ok(Arc::new(ComputedTable(LineageTable {
            schema: lineage_schema(&info.dataset),
            info,
            packs: self.packs.clone(),
        })))
    }
}

#[derive(Debug)]
struct LineageTable {
    info: ModelLineage,
    schema: SchemaRef,
    packs: PackInfoCache,
}

#[async_trait::async_trait]
impl Computed for LineageTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
    async fn rows(&self) -> DfResult<Vec<RecordBatch>> {
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for r in &self.info.runs {
            // a run that read the same commit and selection twice (restarts) counts once
            if !seen.insert((r.commit.clone(), r.filter.clone())) {
                continue;
            }
            let batches = read_selection(
                &self.info.dataset,
                &r.commit,
                r.filter.as_deref(),
                None,
                self.packs.clone(),
            )
            .await
            .map_err(df_err)?;
            for b in batches {
                let n = b.num_rows();
                let mut cols: Vec<ArrayRef> = vec![
                    utf8(vec![self.info.model.model.clone(); n]),
                    utf8(vec![r.run_id.clone(); n]),
                    utf8(vec![r.dataset.clone(); n]),
                    utf8(vec![r.commit.clone(); n]),
                ];
                cols.extend(b.columns().iter().cloned());
                out.push(RecordBatch::try_new(self.schema.clone(), cols)?);
            }
        }
        Ok(out)
    }
}

/// `quiver_models_trained_on('ds', 'sample')`: every model whose training run read a
/// version of dataset `ds` in which `sample` (a group key) was part of the run's selection.
#[derive(Debug)]
pub struct ModelsTrainedOn {
    pub catalog: Catalog,
    pub packs: PackInfoCache,
}

fn trained_on_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("model", DataType::Utf8, false),
        Field::new("run_id", DataType::Utf8, false),
        Field::new("dataset", DataType::Utf8, false),
        Field::new("commit_id", DataType::Utf8, false),
        Field::new("sample", DataType::Utf8, false),
        Field::new("labels", DataType::UInt64, false),
        Field::new("registered_at", ts_type(), false),
    ]))
}

impl TableFunctionImpl for ModelsTrainedOn {
    fn call(&self, args: &[Expr]) -> DfResult<Arc<dyn TableProvider>> {
        let [dataset, sample] =
            string_args("quiver_models_trained_on", "('dataset', 'sample')", args)?;
        Ok(Arc::new(ComputedTable(TrainedOnTable {
            catalog: self.catalog.clone(),
            packs: self.packs.clone(),
            dataset,
            sample,
        })))
    }
}

#[derive(Debug)]
struct TrainedOnTable {
    catalog: Catalog,
    packs: PackInfoCache,
    dataset: String,
    sample: String,
}

#[async_trait::async_trait]
impl Computed for TrainedOnTable {
    fn schema(&self) -> SchemaRef {
        trained_on_schema()
    }
    async fn rows(&self) -> DfResult<Vec<RecordBatch>> {
        let ds = self.catalog.dataset(&self.dataset).await.map_err(df_err)?;
        let key = ds.config().group_key.clone();
        let runs = self.catalog.runs().await.map_err(df_err)?;
        let mut rows: Vec<(ModelRecord, RunRecord, u64)> = Vec::new();
        for m in self.catalog.models().await.map_err(df_err)? {
            for r in runs
                .iter()
                .filter(|r| r.run_id == m.run_id && r.dataset == self.dataset)
            {
                let w = format!(
                    "\"{}\" = {}",
                    key.replace('"', "\"\""),
                    crate::parser::sql_string(&self.sample)
                );
                let batches = read_selection(
                    &ds,
                    &r.commit,
                    r.filter.as_deref(),
                    Some(w),
                    self.packs.clone(),
                )
                .await
                .map_err(df_err)?;
                let n: usize = batches.iter().map(|b| b.num_rows()).sum();
                if n > 0 {
                    rows.push((m.clone(), r.clone(), n as u64));
                }
            }
        }
        let s = |f: &dyn Fn(&(ModelRecord, RunRecord, u64)) -> String| {
            utf8(rows.iter().map(f).collect())
        };
        let b = RecordBatch::try_new(
            trained_on_schema(),
            vec![
                s(&|r| r.0.model.clone()),
                s(&|r| r.1.run_id.clone()),
                s(&|r| r.1.dataset.clone()),
                s(&|r| r.1.commit.clone()),
                s(&|_| self.sample.clone()),
                Arc::new(UInt64Array::from(
                    rows.iter().map(|r| r.2).collect::<Vec<_>>(),
                )),
                Arc::new(
                    TimestampMicrosecondArray::from(
                        rows.iter()
                            .map(|r| r.0.registered_at.timestamp_micros())
                            .collect::<Vec<_>>(),
                    )
                    .with_timezone("UTC"),
                ),
            ],
        )?;
        Ok(vec![b])
    }
}

/// Rows of a taxonomy: `kind` (class | attribute), `name`, `class_id`, `data_type`.
pub fn taxonomy_batch(version: &str, t: &quiver_core::Taxonomy) -> Result<RecordBatch> {
    let mut kind = Vec::new();
    let mut name = Vec::new();
    let mut id: Vec<Option<i64>> = Vec::new();
    let mut ty: Vec<Option<String>> = Vec::new();
    let mut classes: Vec<(&String, &i64)> = t.classes.iter().collect();
    classes.sort_by_key(|c| *c.1);
    for (n, i) in classes {
        kind.push("class".to_string());
        name.push(n.clone());
        id.push(Some(*i));
        ty.push(None);
    }
    for (n, d) in &t.attributes {
        kind.push("attribute".to_string());
        name.push(n.clone());
        id.push(None);
        ty.push(Some(d.clone()));
    }
    let n = kind.len();
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("version", DataType::Utf8, false),
            Field::new("kind", DataType::Utf8, false),
            Field::new("name", DataType::Utf8, false),
            Field::new("class_id", DataType::Int64, true),
            Field::new("data_type", DataType::Utf8, true),
        ])),
        vec![
            utf8(vec![version.to_string(); n]),
            utf8(kind),
            utf8(name),
            Arc::new(Int64Array::from(id)),
            Arc::new(StringArray::from(ty)),
        ],
    )?)
}
