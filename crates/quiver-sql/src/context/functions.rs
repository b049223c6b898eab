//! Table functions of a session: `quiver_diff`, `quiver_conflicts`,
//! `quiver_merge_preview` and `quiver_history`.

use super::*;
use datafusion::arrow::compute::{cast_with_options, CastOptions};

/// `quiver_diff('ds', 'from', 'to')`: label-level changes between two versions.
#[derive(Debug)]
pub(super) struct DiffFunction {
    pub(super) shared: Arc<Shared>,
}

/// The string-literal arguments of a table function.
pub(crate) fn string_args<const N: usize>(
    name: &str,
    usage: &str,
    args: &[Expr],
) -> DfResult<[String; N]> {
    let mut s = Vec::new();
    for e in args {
        match e {
            Expr::Literal(
                ScalarValue::Utf8(Some(v))
                | ScalarValue::Utf8View(Some(v))
                | ScalarValue::LargeUtf8(Some(v)),
                _,
            ) => s.push(v.clone()),
            _ => {
                return Err(df_err(SqlError::Parse(format!(
                    "{name} takes {N} string literals: {usage}"
                ))))
            }
        }
    }
    <[String; N]>::try_from(s).map_err(|_| {
        df_err(SqlError::Parse(format!(
            "{name} takes {N} arguments: {usage}"
        )))
    })
}

/// The arguments of a function answering with a conflicts table (`'dataset', 'source',
/// 'target'`): the dataset, source, target and the table's schema.
fn conflicts_args(
    shared: &Shared,
    name: &str,
    usage: &str,
    args: &TableFunctionArgs,
) -> DfResult<(Dataset, String, String, SchemaRef)> {
    let [ds, source, target] = string_args(name, usage, args.exprs())?;
    let dataset = shared
        .cached_dataset(&ds)
        .ok_or_else(|| df_err(CoreError::DatasetNotFound(ds.clone())))?;
    let schema = dataset
        .conflicts_table(&[])
        .map_err(|e| df_err(SqlError::Core(e)))?
        .schema();
    Ok((dataset, source, target, schema))
}

/// `quiver_conflicts('ds', 'source', 'target')`: the conflicts of the pending merge of
/// `source` into branch `target`.
#[derive(Debug)]
pub(super) struct ConflictsFunction {
    pub(super) shared: Arc<Shared>,
}

impl TableFunctionImpl for ConflictsFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> DfResult<Arc<dyn TableProvider>> {
        let (dataset, source, target, schema) = conflicts_args(
            &self.shared,
            "quiver_conflicts",
            "('dataset', 'source', 'target')",
            &args,
        )?;
        Ok(Arc::new(ComputedTable(ConflictsTable {
            dataset,
            source,
            target,
            schema,
        })))
    }
}

#[derive(Debug)]
pub(super) struct ConflictsTable {
    pub(super) dataset: Dataset,
    pub(super) source: String,
    pub(super) target: String,
    pub(super) schema: SchemaRef,
}

#[async_trait::async_trait]
impl Computed for ConflictsTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
    async fn rows(&self) -> DfResult<Vec<RecordBatch>> {
        let ds = &self.dataset;
        let core = |e: CoreError| df_err(SqlError::Core(e));
        let pending = ds.pending_merge(&self.target).await.map_err(core)?;
        let source = ds.resolve_loose(&self.source).await.map_err(core)?;
        match pending {
            Some(p) if p.theirs == source.id.to_hex() => {}
            // no merge pending: a state of the branch, not a mistake in the statement
            None => {
                return Err(core(CoreError::NoPendingMerge {
                    dataset: ds.name().into(),
                    branch: self.target.clone(),
                }))
            }
            Some(p) => {
                return Err(df_err(SqlError::Transaction(format!(
                    "no pending merge of '{}' into branch '{}' of dataset '{}' (the pending merge is of commit {})",
                    self.source,
                    self.target,
                    ds.name(),
                    p.theirs.get(..12).unwrap_or(&p.theirs)
                ))))
            }
        }
        let b = crate::merge_sql::conflicts(ds, &self.target)
            .await
            .map_err(df_err)?;
        Ok(vec![b])
    }
}

/// `quiver_merge_preview('ds', 'source', 'target')`: the labels that would conflict if
/// `source` (a branch, tag or version, as in `"ds@source"`) were merged into branch
/// `target` now; nothing is written (no pending merge, no commit).
#[derive(Debug)]
pub(super) struct MergePreviewFunction {
    pub(super) shared: Arc<Shared>,
}

impl TableFunctionImpl for MergePreviewFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> DfResult<Arc<dyn TableProvider>> {
        let (dataset, source, target, schema) = conflicts_args(
            &self.shared,
            "quiver_merge_preview",
            "('dataset', 'source', 'target branch')",
            &args,
        )?;
        Ok(Arc::new(ComputedTable(MergePreviewTable {
            shared: self.shared.clone(),
            dataset,
            source: RefSpec::decode(&source),
            target,
            schema,
        })))
    }
}

#[derive(Debug)]
pub(super) struct MergePreviewTable {
    pub(super) shared: Arc<Shared>,
    pub(super) dataset: Dataset,
    pub(super) source: RefSpec,
    pub(super) target: String,
    pub(super) schema: SchemaRef,
}

#[async_trait::async_trait]
impl Computed for MergePreviewTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
    async fn rows(&self) -> DfResult<Vec<RecordBatch>> {
        let ds = &self.dataset;
        let spec = self.shared.spec(ds, &self.source).await.map_err(df_err)?;
        let p = ds
            .merge_preview(&spec, &self.target)
            .await
            .map_err(|e| df_err(SqlError::Core(e)))?;
        let b = ds
            .conflicts_table(&p.conflicts)
            .map_err(|e| df_err(SqlError::Core(e)))?;
        Ok(vec![b])
    }
}

/// `quiver_history('ds', group [, label [, 'ref']])`: every commit of the first-parent
/// history of `ref` (default: the session's branch, main) that changed the labels of group
/// key `group` — or only label `label` of it (NULL: the whole group) — newest first, with
/// who, when, the message, the change and the old and new values
/// ([`Dataset::label_history`]).
#[derive(Debug)]
pub(super) struct HistoryFunction {
    pub(super) shared: Arc<Shared>,
}

const HISTORY_USAGE: &str = "quiver_history('dataset', group key [, label key or NULL [, 'ref']])";

/// A key argument of `quiver_history` as the key bytes of column `column` (None: NULL).
fn key_arg(ds: &Dataset, column: &str, e: &Expr) -> DfResult<Option<quiver_core::Key>> {
    let bad = |why: String| df_err(SqlError::Parse(format!("{HISTORY_USAGE}: {why}")));
    let value = match e {
        Expr::Literal(v, _) => v.clone(),
        Expr::Negative(inner) => match inner.as_ref() {
            Expr::Literal(v, _) => v.arithmetic_negate()?,
            _ => return Err(bad(format!("the {column} must be a literal, not {e}"))),
        },
        _ => return Err(bad(format!("the {column} must be a literal, not {e}"))),
    };
    if value.is_null() {
        return Ok(None);
    }
    let field = ds
        .schema()
        .field_with_name(column)
        .map_err(|e| df_err(SqlError::Arrow(e)))?
        .clone();
    let opts = CastOptions {
        safe: false,
        ..Default::default()
    };
    let shown = match &value {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::Utf8View(Some(s))
        | ScalarValue::LargeUtf8(Some(s)) => {
            format!("'{s}'")
        }
        v => v.to_string(),
    };
    let array =
        cast_with_options(&value.to_array_of_size(1)?, field.data_type(), &opts).map_err(|_| {
            bad(format!(
                "{shown} is not a value of {column} ({})",
                field.data_type()
            ))
        })?;
    quiver_core::encoding::key_bytes(array.as_ref(), 0)
        .map(Some)
        .ok_or_else(|| {
            df_err(CoreError::UnsupportedKeyType {
                dataset: ds.name().into(),
                column: column.into(),
                data_type: field.data_type().to_string(),
            })
        })
}

impl TableFunctionImpl for HistoryFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> DfResult<Arc<dyn TableProvider>> {
        let exprs = args.exprs();
        if !(2..=4).contains(&exprs.len()) {
            return Err(df_err(SqlError::Parse(format!(
                "{HISTORY_USAGE} takes 2 to 4 arguments, not {}",
                exprs.len()
            ))));
        }
        let [ds] = string_args("quiver_history", HISTORY_USAGE, &exprs[..1])?;
        let dataset = self
            .shared
            .cached_dataset(&ds)
            .ok_or_else(|| df_err(CoreError::DatasetNotFound(ds.clone())))?;
        let cfg = dataset.config();
        let group = key_arg(&dataset, &cfg.group_key, &exprs[1])?.ok_or_else(|| {
            df_err(SqlError::Parse(format!(
                "{HISTORY_USAGE}: the group key ({}) may not be NULL",
                cfg.group_key
            )))
        })?;
        let label = match exprs.get(2) {
            Some(e) => key_arg(&dataset, &cfg.label_key, e)?,
            None => None,
        };
        let at = match exprs.get(3) {
            Some(e) => {
                let [r] = string_args("quiver_history", HISTORY_USAGE, std::slice::from_ref(e))?;
                RefSpec::decode(&r)
            }
            None => RefSpec::Session,
        };
        let schema = dataset
            .label_history_schema()
            .map_err(|e| df_err(SqlError::Core(e)))?;
        Ok(Arc::new(ComputedTable(HistoryTable {
            shared: self.shared.clone(),
            dataset,
            group,
            label,
            at,
            schema,
        })))
    }
}

#[derive(Debug)]
pub(super) struct HistoryTable {
    pub(super) shared: Arc<Shared>,
    pub(super) dataset: Dataset,
    pub(super) group: quiver_core::Key,
    pub(super) label: Option<quiver_core::Key>,
    pub(super) at: RefSpec,
    pub(super) schema: SchemaRef,
}

#[async_trait::async_trait]
impl Computed for HistoryTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
    async fn rows(&self) -> DfResult<Vec<RecordBatch>> {
        let ds = &self.dataset;
        let core = |e: CoreError| df_err(SqlError::Core(e));
        let head = self.shared.resolve(ds, &self.at).await.map_err(df_err)?;
        let changes = ds
            .label_history(&head, &self.group, self.label.as_ref())
            .await
            .map_err(core)?;
        Ok(vec![ds.label_history_table(&changes).map_err(core)?])
    }
}

impl TableFunctionImpl for DiffFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> DfResult<Arc<dyn TableProvider>> {
        let [ds, from, to] = string_args("quiver_diff", "('dataset', 'from', 'to')", args.exprs())?;
        let dataset = self
            .shared
            .cached_dataset(&ds)
            .ok_or_else(|| df_err(CoreError::DatasetNotFound(ds.clone())))?;
        let schema = crate::diff::diff_schema(&dataset);
        Ok(Arc::new(ComputedTable(DiffTable {
            shared: self.shared.clone(),
            dataset,
            from: RefSpec::decode(&from),
            to: RefSpec::decode(&to),
            schema,
        })))
    }
}

#[derive(Debug)]
pub(super) struct DiffTable {
    pub(super) shared: Arc<Shared>,
    pub(super) dataset: Dataset,
    pub(super) from: RefSpec,
    pub(super) to: RefSpec,
    pub(super) schema: SchemaRef,
}

#[async_trait::async_trait]
impl Computed for DiffTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
    async fn rows(&self) -> DfResult<Vec<RecordBatch>> {
        let b = diff_batch(&self.shared, &self.dataset, &self.from, &self.to)
            .await
            .map_err(df_err)?;
        Ok(vec![b])
    }
}

pub(super) async fn diff_batch(
    shared: &Shared,
    ds: &Dataset,
    from: &RefSpec,
    to: &RefSpec,
) -> Result<RecordBatch> {
    let a = shared.resolve(ds, from).await?;
    let b = shared.resolve(ds, to).await?;
    crate::diff::diff_labels(ds, a, b).await
}
