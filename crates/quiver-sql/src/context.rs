//! [`QuiverContext`]: a SQL session over a Quiver catalog.
//!
//! Wraps a DataFusion `SessionContext` whose default schema resolves table names lazily:
//! `ds` is the head of the session's branch for `ds` (default `main`, changed with
//! `USE BRANCH`), `"ds@ref"` any branch, tag or version (`Dataset::resolve_loose`), and the
//! names produced by the `AS OF` rewrite (`"ds@tag:v1"`, …). The schema `quiver` holds the
//! system tables; `quiver_diff('ds', 'from', 'to')` is a table function. The extension
//! statements of [`crate::parser`] and DML (INSERT/UPDATE/DELETE, each a commit, or one
//! commit per `BEGIN … COMMIT`) are executed here.
//!
//! Known limitation: inside `BEGIN … COMMIT`, queries (and the row selection of UPDATE and
//! DELETE) read the committed head of the branch, not the transaction's pending writes.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray, UInt64Array};
use datafusion::arrow::compute::{cast_with_options, CastOptions};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{
    MemoryCatalogProvider, SchemaProvider, TableFunctionArgs, TableFunctionImpl,
};
use datafusion::common::ScalarValue;
use datafusion::datasource::{MemTable, TableProvider};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::Expr;
use datafusion::prelude::{DataFrame, SessionConfig, SessionContext};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    AssignmentTarget, FromTable, ObjectName, Statement as SqlStatement, TableFactor, TableObject,
};
use quiver_core::{
    Catalog, Commit, CoreError, Dataset, DatasetOptions, VersionSpec, WriteTxn, DEFAULT_BRANCH,
};

use crate::computed::{Computed, ComputedTable};
use crate::error::{df_err, Result, SqlError};
use crate::names::{split_table_name, RefSpec};
use crate::options::SessionOptions;
use crate::parser::{self, Statement};
use crate::provider::{self, PackInfoCache, QuiverTableProvider, ScanStats};

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// Whether a DataFusion statement is INSERT, UPDATE or DELETE.
fn st_is_dml(st: &DfStatement) -> bool {
    matches!(
        st,
        DfStatement::Statement(s) if matches!(
            s.as_ref(),
            SqlStatement::Insert(_) | SqlStatement::Update(_) | SqlStatement::Delete(_)
        )
    )
}

/// Column definitions as the text of a SQL column list.
fn column_list(columns: &[datafusion::sql::sqlparser::ast::ColumnDef]) -> String {
    columns
        .iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// State shared by the session and the providers it registers.
#[derive(Debug)]
struct Shared {
    catalog: Catalog,
    url: ObjectStoreUrl,
    packs: PackInfoCache,
    branches: Mutex<HashMap<String, String>>,
    datasets: Mutex<HashMap<String, Dataset>>,
    last_scan: Arc<Mutex<Option<ScanStats>>>,
    /// Names of table functions: DataFusion asks the schema for them too, and they are not
    /// datasets.
    functions: Mutex<std::collections::HashSet<String>>,
    /// (dataset, target branch) of merges this session left pending: a bare COMMIT
    /// commits them.
    merges: Mutex<std::collections::BTreeSet<(String, String)>>,
    /// Models named in `quiver_lineage_of_model(…)`, resolved before planning.
    lineage: crate::lineage_sql::LineageCache,
    /// The author of the session's writes, when not the process's default.
    author: Option<String>,
}

impl Shared {
    fn session_branch(&self, ds: &str) -> String {
        self.branches
            .lock()
            .ok()
            .and_then(|b| b.get(ds).cloned())
            .unwrap_or_else(|| DEFAULT_BRANCH.to_string())
    }

    async fn dataset(&self, name: &str) -> Result<Dataset> {
        if let Some(ds) = self.datasets.lock().ok().and_then(|m| m.get(name).cloned()) {
            return Ok(ds);
        }
        let ds = self.catalog.dataset(name).await?;
        // branch and tag changes of this session are logged under its author
        let ds = match &self.author {
            Some(a) => ds.with_author(a),
            None => ds,
        };
        if let Ok(mut m) = self.datasets.lock() {
            m.insert(name.to_string(), ds.clone());
        }
        Ok(ds)
    }

    fn cached_dataset(&self, name: &str) -> Option<Dataset> {
        self.datasets.lock().ok().and_then(|m| m.get(name).cloned())
    }

    async fn resolve(&self, ds: &Dataset, r: &RefSpec) -> Result<Commit> {
        let branch = self.session_branch(ds.name());
        match r.to_spec(&branch)? {
            Some(spec) => Ok(ds.resolve(&spec).await?),
            None => match r {
                RefSpec::Loose(s) => Ok(ds.resolve_loose(s).await?),
                _ => Err(SqlError::Parse(format!("cannot resolve {r}"))),
            },
        }
    }

    /// The version spec of a ref, pinned to a commit for loose names.
    async fn spec(&self, ds: &Dataset, r: &RefSpec) -> Result<VersionSpec> {
        let branch = self.session_branch(ds.name());
        match r.to_spec(&branch)? {
            Some(s) => Ok(s),
            None => Ok(VersionSpec::Version(self.resolve(ds, r).await?.id.to_hex())),
        }
    }

    async fn table(&self, name: &str) -> Result<QuiverTableProvider> {
        let (ds_name, r) = split_table_name(name);
        let ds = self.dataset(&ds_name).await?;
        let commit = self.resolve(&ds, &r).await?;
        Ok(
            QuiverTableProvider::new(ds.snapshot(commit), self.url.clone(), self.packs.clone())?
                .with_stats_sink(self.last_scan.clone()),
        )
    }
}

/// The default schema: datasets (at any version) as tables.
#[derive(Debug)]
struct DatasetSchema {
    shared: Arc<Shared>,
}

#[async_trait::async_trait]
impl SchemaProvider for DatasetSchema {
    fn table_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .shared
            .datasets
            .lock()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        if self.shared.functions.lock().is_ok_and(|f| f.contains(name)) {
            return Ok(None);
        }
        let t = self.shared.table(name).await.map_err(df_err)?;
        Ok(Some(Arc::new(t)))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.shared
            .cached_dataset(&split_table_name(name).0)
            .is_some()
    }
}

/// The `quiver` schema: system tables.
#[derive(Debug)]
struct SystemSchema {
    shared: Arc<Shared>,
}

#[async_trait::async_trait]
impl SchemaProvider for SystemSchema {
    fn table_names(&self) -> Vec<String> {
        crate::system::SYSTEM_TABLES
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        match crate::system::system_table(&self.shared.catalog, name)
            .await
            .map_err(df_err)?
        {
            Some(b) => Ok(Some(Arc::new(MemTable::try_new(
                b.schema(),
                vec![vec![b]],
            )?))),
            None => Ok(None),
        }
    }

    fn table_exist(&self, name: &str) -> bool {
        crate::system::SYSTEM_TABLES.contains(&name)
    }
}

/// `quiver_diff('ds', 'from', 'to')`: label-level changes between two versions.
#[derive(Debug)]
struct DiffFunction {
    shared: Arc<Shared>,
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

/// `quiver_conflicts('ds', 'source', 'target')`: the conflicts of the pending merge of
/// `source` into branch `target`.
#[derive(Debug)]
struct ConflictsFunction {
    shared: Arc<Shared>,
}

impl TableFunctionImpl for ConflictsFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> DfResult<Arc<dyn TableProvider>> {
        let [ds, source, target] = string_args(
            "quiver_conflicts",
            "('dataset', 'source', 'target')",
            args.exprs(),
        )?;
        let dataset = self
            .shared
            .cached_dataset(&ds)
            .ok_or_else(|| df_err(CoreError::DatasetNotFound(ds.clone())))?;
        let schema = dataset
            .conflicts_table(&[])
            .map_err(|e| df_err(SqlError::Core(e)))?
            .schema();
        Ok(Arc::new(ComputedTable(ConflictsTable {
            dataset,
            source,
            target,
            schema,
        })))
    }
}

#[derive(Debug)]
struct ConflictsTable {
    dataset: Dataset,
    source: String,
    target: String,
    schema: SchemaRef,
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
struct DiffTable {
    shared: Arc<Shared>,
    dataset: Dataset,
    from: RefSpec,
    to: RefSpec,
    schema: SchemaRef,
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

async fn diff_batch(
    shared: &Shared,
    ds: &Dataset,
    from: &RefSpec,
    to: &RefSpec,
) -> Result<RecordBatch> {
    let a = shared.resolve(ds, from).await?;
    let b = shared.resolve(ds, to).await?;
    crate::diff::diff_labels(ds, a, b).await
}

/// A write to apply to a branch.
enum Write {
    Append(arrow::array::RecordBatch),
    Upsert(arrow::array::RecordBatch),
    Delete(arrow::array::RecordBatch),
}

/// An open `BEGIN … COMMIT` transaction: one write transaction per (dataset, branch).
#[derive(Default)]
struct Txn {
    writes: BTreeMap<(String, String), WriteTxn>,
}

/// A SQL session over a Quiver catalog.
pub struct QuiverContext {
    ctx: SessionContext,
    shared: Arc<Shared>,
    opts: SessionOptions,
    txn: tokio::sync::Mutex<Option<Txn>>,
}

impl std::fmt::Debug for QuiverContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "QuiverContext({:?})", self.shared.catalog)
    }
}

/// The `count` of a DML result (0 when there is none).
fn affected(batches: &[RecordBatch]) -> u64 {
    batches
        .iter()
        .filter_map(|b| b.column_by_name("count"))
        .filter_map(|c| c.as_any().downcast_ref::<UInt64Array>())
        .filter(|a| !a.is_empty())
        .map(|a| a.value(0))
        .sum()
}

fn count_batch(n: u64) -> Result<RecordBatch> {
    let schema = Arc::new(Schema::new(vec![Field::new(
        "count",
        DataType::UInt64,
        false,
    )]));
    Ok(RecordBatch::try_new(
        schema,
        vec![Arc::new(UInt64Array::from(vec![n])) as ArrayRef],
    )
    .map_err(DataFusionError::from)?)
}

fn message_batch(cols: &[(&str, String)]) -> Result<RecordBatch> {
    let fields: Vec<Field> = cols
        .iter()
        .map(|(n, _)| Field::new(*n, DataType::Utf8, false))
        .collect();
    let arrays: Vec<ArrayRef> = cols
        .iter()
        .map(|(_, v)| Arc::new(StringArray::from(vec![v.clone()])) as ArrayRef)
        .collect();
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
        .map_err(DataFusionError::from)?)
}

fn object_name(n: &ObjectName) -> Result<String> {
    n.0.last()
        .and_then(|p| p.as_ident())
        .map(|i| i.value.clone())
        .ok_or_else(|| SqlError::Parse(format!("unsupported table name {n}")))
}

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn is_string(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    )
}

/// Cast a written column to the dataset's type, refusing conversions that hide mistakes
/// (a string into a number, a number into a string).
fn conform_column(dataset: &str, field: &Field, col: &ArrayRef) -> Result<ArrayRef> {
    let (from, to) = (col.data_type(), field.data_type());
    if from == to {
        return Ok(col.clone());
    }
    let mismatch = |actual: String| SqlError::TypeMismatch {
        dataset: dataset.into(),
        column: field.name().clone(),
        expected: to.to_string(),
        actual,
    };
    let ok = *from == DataType::Null
        || (is_string(from) && is_string(to))
        || (from.is_numeric() && to.is_numeric())
        || (is_string(from) && to.is_temporal())
        || (from.is_temporal() && to.is_temporal());
    if !ok {
        return Err(mismatch(from.to_string()));
    }
    let opts = CastOptions {
        safe: false,
        ..Default::default()
    };
    cast_with_options(col, to, &opts)
        .map_err(|e| mismatch(format!("{from} values that do not convert ({e})")))
}

/// `keys` (key columns as SQL read them) with each column cast to the dataset's type.
fn key_columns_as_stored(ds: &Dataset, keys: RecordBatch) -> Result<RecordBatch> {
    let schema = ds.schema();
    let mut fields = Vec::with_capacity(keys.num_columns());
    let mut cols = Vec::with_capacity(keys.num_columns());
    for (f, c) in keys.schema().fields().iter().zip(keys.columns()) {
        let stored = schema
            .field_with_name(f.name())
            .map_err(|_| CoreError::ColumnNotFound {
                dataset: ds.name().into(),
                column: f.name().clone(),
            })?;
        cols.push(conform_column(ds.name(), stored, c)?);
        fields.push(stored.clone());
    }
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).map_err(DataFusionError::from)?)
}

impl QuiverContext {
    /// A session over `catalog` with DataFusion's default configuration.
    pub async fn new(catalog: Catalog) -> Result<Self> {
        Self::with_options(catalog, SessionConfig::new(), SessionOptions::default()).await
    }

    /// A session with a given DataFusion configuration.
    pub async fn with_config(catalog: Catalog, config: SessionConfig) -> Result<Self> {
        Self::with_options(catalog, config, SessionOptions::default()).await
    }

    /// A session with a given DataFusion configuration and [`SessionOptions`] (read-only,
    /// limits, shared runtime, author).
    pub async fn with_options(
        catalog: Catalog,
        config: SessionConfig,
        opts: SessionOptions,
    ) -> Result<Self> {
        let config = config
            .with_information_schema(true)
            .with_default_catalog_and_schema("datafusion", "public");
        let runtime = match &opts.runtime {
            Some(r) => r.clone(),
            None => {
                crate::options::runtime_with_memory_limit(crate::options::default_memory_limit())?
            }
        };
        let ctx = SessionContext::new_with_config_rt(config, runtime);
        let url = provider::store_url(NEXT_ID.fetch_add(1, Ordering::Relaxed))?;
        provider::register_store(&ctx, &url, &catalog);
        let shared = Arc::new(Shared {
            catalog,
            url,
            packs: PackInfoCache::default(),
            branches: Mutex::default(),
            datasets: Mutex::default(),
            last_scan: Arc::default(),
            functions: Mutex::default(),
            merges: Mutex::default(),
            lineage: Arc::default(),
            author: opts.author.clone(),
        });
        let cat = MemoryCatalogProvider::new();
        datafusion::catalog::CatalogProvider::register_schema(
            &cat,
            "public",
            Arc::new(DatasetSchema {
                shared: shared.clone(),
            }),
        )?;
        datafusion::catalog::CatalogProvider::register_schema(
            &cat,
            "quiver",
            Arc::new(SystemSchema {
                shared: shared.clone(),
            }),
        )?;
        ctx.register_catalog("datafusion", Arc::new(cat));
        ctx.register_udtf(
            "quiver_diff",
            Arc::new(DiffFunction {
                shared: shared.clone(),
            }),
        );
        ctx.register_udf(crate::asset_fn::asset_udf(shared.catalog.clone()));
        ctx.register_udtf(
            "quiver_lineage_of_model",
            Arc::new(crate::lineage_sql::LineageOfModel {
                cache: shared.lineage.clone(),
                packs: shared.packs.clone(),
            }),
        );
        ctx.register_udtf(
            "quiver_models_trained_on",
            Arc::new(crate::lineage_sql::ModelsTrainedOn {
                catalog: shared.catalog.clone(),
                packs: shared.packs.clone(),
            }),
        );
        ctx.register_udtf(
            "quiver_conflicts",
            Arc::new(ConflictsFunction {
                shared: shared.clone(),
            }),
        );
        if let Ok(mut f) = shared.functions.lock() {
            f.extend(ctx.state().table_functions().keys().cloned());
        }
        let me = QuiverContext {
            ctx,
            shared,
            opts,
            txn: tokio::sync::Mutex::new(None),
        };
        // make existing datasets visible to `SHOW TABLES`/information_schema
        for name in me.shared.catalog.list_datasets().await? {
            let _ = me.shared.dataset(&name).await;
        }
        Ok(me)
    }

    /// The DataFusion context (for registering more tables or functions).
    pub fn session(&self) -> &SessionContext {
        &self.ctx
    }

    /// The catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.shared.catalog
    }

    /// The branch this session reads and writes for `dataset`.
    pub fn current_branch(&self, dataset: &str) -> String {
        self.shared.session_branch(dataset)
    }

    /// Tree-pruning statistics of the most recently planned dataset scan.
    pub fn last_scan_stats(&self) -> Option<ScanStats> {
        self.shared.last_scan.lock().ok().and_then(|l| l.clone())
    }

    /// Whether a `BEGIN … COMMIT` transaction is open.
    pub async fn in_transaction(&self) -> bool {
        self.txn.lock().await.is_some()
    }

    /// The options this session was made with.
    pub fn options(&self) -> &SessionOptions {
        &self.opts
    }

    /// Run a script of `;`-separated statements; returns the rows of the last one.
    pub async fn sql(&self, sql: &str) -> Result<Vec<RecordBatch>> {
        let mut last = Vec::new();
        for st in parser::parse_script_with(sql, &self.opts.limits)? {
            last = self.execute(st).await?;
        }
        Ok(last)
    }

    /// Plan one statement as a DataFrame (queries stream; other statements run now and
    /// return their result rows).
    pub async fn sql_df(&self, sql: &str) -> Result<DataFrame> {
        self.statement_df(parser::parse_statement_with(sql, &self.opts.limits)?)
            .await
    }

    /// Plan one parsed statement as a DataFrame (queries stream; other statements run now
    /// and return their result rows).
    pub async fn statement_df(&self, st: Statement) -> Result<DataFrame> {
        match st {
            Statement::DataFusion(q) if !st_is_dml(&q) => {
                self.preload(&q).await?;
                self.plan_query(*q).await
            }
            st => {
                let batches = self.execute(st).await?;
                Ok(self.ctx.read_batches(batches)?)
            }
        }
    }

    /// Create dataset `name` with the columns of a SQL column list (planned in a private
    /// in-memory session) keyed on (`group_key`, `label_key`).
    async fn create_dataset(
        &self,
        name: &str,
        columns: &str,
        group_key: String,
        label_key: String,
    ) -> Result<()> {
        let sh = &self.shared;
        let tmp = SessionContext::new_with_config(
            SessionConfig::new()
                .set_bool("datafusion.sql_parser.map_string_types_to_utf8view", false),
        );
        // a private in-memory session: only the column list is planned here
        let ddl_only = datafusion::execution::context::SQLOptions::new()
            .with_allow_dml(false)
            .with_allow_statements(false);
        tmp.sql_with_options(&format!("CREATE TABLE t ({columns})"), ddl_only)
            .await?
            .collect()
            .await?;
        let schema = tmp.table_provider("t").await?.schema();
        let opts = DatasetOptions {
            group_key,
            label_key,
            author: self.opts.author(),
            ..Default::default()
        };
        let ds = sh.catalog.create_dataset(name, schema, opts).await?;
        let ds = match &sh.author {
            Some(a) => ds.with_author(a),
            None => ds,
        };
        if let Ok(mut m) = sh.datasets.lock() {
            m.insert(name.to_string(), ds);
        }
        Ok(())
    }

    /// Plan one statement bound to rows of parameters ([`crate::params`]): a query runs once
    /// per row, its results concatenated; `INSERT`/`UPDATE`/`DELETE` run once per row as one
    /// commit (in the session's open transaction, or in one of their own) and return the
    /// affected rows as `count`. With no rows, the statement is planned unbound.
    pub async fn sql_df_with_params(
        &self,
        sql: &str,
        rows: Vec<Vec<ScalarValue>>,
    ) -> Result<DataFrame> {
        if rows.is_empty() {
            return self.sql_df(sql).await;
        }
        match parser::parse_statement_with(sql, &self.opts.limits)? {
            Statement::DataFusion(q) if !st_is_dml(&q) => {
                self.preload(&q).await?;
                let mut out: Option<DataFrame> = None;
                for row in rows {
                    let df = self
                        .plan_query((*q).clone())
                        .await?
                        .with_param_values(row)?;
                    out = Some(match out {
                        None => df,
                        Some(all) => all.union(df)?,
                    });
                }
                // `rows` is not empty
                out.ok_or_else(|| SqlError::Parse("no parameters".into()))
            }
            Statement::DataFusion(q) => {
                let s = q.to_string();
                let n_rows = rows.len();
                let statements = crate::params::bind_dml(&s, &rows)?;
                let own = !self.in_transaction().await;
                if own {
                    self.execute(Statement::Begin).await?;
                }
                let mut n = 0u64;
                for text in statements {
                    let run = async {
                        match parser::parse_statement_with(&text, &self.opts.limits)? {
                            st if st.is_dml() => self.execute(st).await,
                            other => Err(SqlError::Unsupported(format!(
                                "binding parameters made '{}' a different statement",
                                other.to_string().chars().take(60).collect::<String>()
                            ))),
                        }
                    };
                    match run.await {
                        Ok(batches) => n += affected(&batches),
                        Err(e) => {
                            if own {
                                self.txn.lock().await.take();
                            }
                            return Err(e);
                        }
                    }
                }
                if own {
                    let head: String = s.chars().take(200).collect();
                    self.execute(Statement::Commit {
                        message: Some(format!("{head} ({n_rows} rows of parameters)")),
                    })
                    .await?;
                }
                Ok(self.ctx.read_batches(vec![count_batch(n)?])?)
            }
            other => Err(SqlError::Unsupported(format!(
                "parameters are bound to queries and INSERT/UPDATE/DELETE, not to '{}'",
                other.to_string().chars().take(60).collect::<String>()
            ))),
        }
    }

    /// Plan a query the user wrote: its unaliased result columns named by their SQL text
    /// ([`crate::column_names`]), the plan checked to read only.
    async fn plan_query(&self, mut statement: DfStatement) -> Result<DataFrame> {
        let state = self.ctx.state();
        if let DfStatement::Statement(st) = &mut statement {
            if let SqlStatement::Query(q) = st.as_mut() {
                crate::column_names::name_result_columns(q);
            }
        }
        let plan = state.statement_to_plan(statement).await?;
        crate::guard::query_options().verify_plan(&plan)?;
        Ok(self.ctx.execute_logical_plan(plan).await?)
    }

    async fn preload(&self, st: &DfStatement) -> Result<()> {
        let sql = &st.to_string();
        for ds in parser::diff_datasets(sql) {
            self.shared.dataset(&ds).await?;
        }
        crate::lineage_sql::preload_models(&self.shared.catalog, &self.shared.lineage, sql).await?;
        Ok(())
    }

    /// Execute one parsed statement.
    pub async fn execute(&self, st: Statement) -> Result<Vec<RecordBatch>> {
        let sh = &self.shared;
        if self.opts.read_only && st.is_write() {
            let text: String = st.to_string().chars().take(80).collect();
            return Err(SqlError::PermissionDenied(format!(
                "'{text}' changes the catalog and this session is read-only (a read-only token)"
            )));
        }
        match st {
            Statement::CreateDataset {
                name,
                columns,
                group_key,
                label_key,
            } => {
                self.create_dataset(&name, &column_list(&columns), group_key, label_key)
                    .await?;
                Ok(vec![message_batch(&[("dataset", name)])?])
            }
            Statement::CreateTable {
                name,
                columns,
                group_key,
                label_key,
                if_not_exists,
            } => {
                match self
                    .create_dataset(&name, &columns, group_key, label_key)
                    .await
                {
                    // IF NOT EXISTS: an existing dataset is left as it is, whatever its columns
                    Err(SqlError::Core(CoreError::DatasetExists(_))) if if_not_exists => {}
                    r => r?,
                }
                Ok(vec![message_batch(&[("dataset", name)])?])
            }
            Statement::DropTable { names, if_exists } => {
                // every name checked before any is dropped
                let existing = sh.catalog.list_datasets().await?;
                let mut dropped = Vec::new();
                for n in &names {
                    if existing.contains(n) {
                        dropped.push(n.clone());
                    } else if !if_exists {
                        return Err(CoreError::DatasetNotFound(n.clone()).into());
                    }
                }
                for n in &dropped {
                    sh.catalog.drop_dataset(n).await?;
                    if let Ok(mut m) = sh.datasets.lock() {
                        m.remove(n);
                    }
                    if let Ok(mut b) = sh.branches.lock() {
                        b.remove(n);
                    }
                }
                let schema = Arc::new(Schema::new(vec![Field::new(
                    "dropped_table",
                    DataType::Utf8,
                    false,
                )]));
                let b = RecordBatch::try_new(schema, vec![Arc::new(StringArray::from(dropped))])
                    .map_err(DataFusionError::from)?;
                Ok(vec![b])
            }
            Statement::CreateBranch {
                dataset,
                branch,
                from,
            } => {
                let ds = sh.dataset(&dataset).await?;
                let spec = sh.spec(&ds, &from).await?;
                let r = ds.create_branch(&branch, &spec).await?;
                Ok(vec![message_batch(&[
                    ("branch", r.name),
                    ("commit_id", r.commit.to_hex()),
                ])?])
            }
            Statement::DropBranch { dataset, branch } => {
                let ds = sh.dataset(&dataset).await?;
                ds.delete_branch(&branch).await?;
                if let Ok(mut b) = sh.branches.lock() {
                    if b.get(&dataset) == Some(&branch) {
                        b.remove(&dataset);
                    }
                }
                Ok(vec![message_batch(&[("dropped_branch", branch)])?])
            }
            Statement::CreateTag { dataset, tag, at } => {
                let ds = sh.dataset(&dataset).await?;
                let spec = sh.spec(&ds, &at).await?;
                let r = ds.create_tag(&tag, &spec).await?;
                Ok(vec![message_batch(&[
                    ("tag", r.name),
                    ("commit_id", r.commit.to_hex()),
                ])?])
            }
            Statement::DropTag { dataset, tag } => {
                let ds = sh.dataset(&dataset).await?;
                ds.delete_tag(&tag).await?;
                Ok(vec![message_batch(&[("dropped_tag", tag)])?])
            }
            Statement::ShowBranches { dataset } => {
                let ds = sh.dataset(&dataset).await?;
                let rows: Vec<_> = ds
                    .branches()
                    .await?
                    .into_iter()
                    .map(|r| (dataset.clone(), r))
                    .collect();
                Ok(vec![crate::system::refs_batch("branch", &rows, false)?])
            }
            Statement::ShowTags { dataset } => {
                let ds = sh.dataset(&dataset).await?;
                let rows: Vec<_> = ds
                    .tags()
                    .await?
                    .into_iter()
                    .map(|r| (dataset.clone(), r))
                    .collect();
                Ok(vec![crate::system::refs_batch("tag", &rows, false)?])
            }
            Statement::ShowHistory { dataset, at } => {
                let ds = sh.dataset(&dataset).await?;
                let head = sh.resolve(&ds, &at).await?;
                let rows: Vec<_> = ds
                    .history_of(&head)
                    .await?
                    .into_iter()
                    .map(|c| (dataset.clone(), c))
                    .collect();
                Ok(vec![crate::system::commits_batch(&rows, false)?])
            }
            Statement::Diff { dataset, from, to } => {
                let ds = sh.dataset(&dataset).await?;
                Ok(vec![diff_batch(sh, &ds, &from, &to).await?])
            }
            Statement::UseBranch { dataset, branch } => {
                let ds = sh.dataset(&dataset).await?;
                ds.branch_head(&branch).await?;
                if let Ok(mut b) = sh.branches.lock() {
                    b.insert(dataset.clone(), branch.clone());
                }
                Ok(vec![message_batch(&[
                    ("dataset", dataset),
                    ("branch", branch),
                ])?])
            }
            Statement::Begin => {
                let mut t = self.txn.lock().await;
                if t.is_some() {
                    return Err(SqlError::Transaction(
                        "a transaction is already open (COMMIT or ROLLBACK it first)".into(),
                    ));
                }
                *t = Some(Txn::default());
                Ok(vec![])
            }
            Statement::Commit { message } => {
                let txn = self.txn.lock().await.take();
                let Some(txn) = txn else {
                    // no transaction: COMMIT finishes this session's pending merges
                    let pending: Vec<(String, String)> = sh
                        .merges
                        .lock()
                        .map(|m| m.iter().cloned().collect())
                        .unwrap_or_default();
                    if pending.is_empty() {
                        return Err(SqlError::Transaction("COMMIT without BEGIN".into()));
                    }
                    let mut rows = Vec::new();
                    for (d, target) in pending {
                        let ds = sh.dataset(&d).await?;
                        rows.push(
                            crate::merge_sql::commit(
                                &ds,
                                &target,
                                message.as_deref(),
                                &self.opts.author(),
                            )
                            .await?,
                        );
                        if let Ok(mut m) = sh.merges.lock() {
                            m.remove(&(d, target));
                        }
                    }
                    return Ok(vec![crate::merge_sql::commits_row(&rows)?]);
                };
                let msg = message.unwrap_or_else(|| "commit".into());
                let mut out = Vec::new();
                for ((ds, branch), mut w) in txn.writes {
                    let c = w.commit(&msg).await?;
                    out.push((ds, branch, c.id.to_hex()));
                }
                let schema = Arc::new(Schema::new(vec![
                    Field::new("dataset", DataType::Utf8, false),
                    Field::new("branch", DataType::Utf8, false),
                    Field::new("commit_id", DataType::Utf8, false),
                ]));
                let col = |f: fn(&(String, String, String)) -> String| -> ArrayRef {
                    Arc::new(StringArray::from(out.iter().map(f).collect::<Vec<_>>()))
                };
                let b = RecordBatch::try_new(
                    schema,
                    vec![
                        col(|r| r.0.clone()),
                        col(|r| r.1.clone()),
                        col(|r| r.2.clone()),
                    ],
                )
                .map_err(DataFusionError::from)?;
                Ok(vec![b])
            }
            Statement::Merge {
                dataset,
                source,
                target,
                message,
            } => {
                let ds = sh.dataset(&dataset).await?;
                let spec = sh.spec(&ds, &source).await?;
                let r = crate::merge_sql::merge(
                    &ds,
                    &spec,
                    &target,
                    message.as_deref(),
                    &self.opts.author(),
                )
                .await?;
                if r.kind == quiver_core::MergeKind::Conflicts {
                    if let Ok(mut m) = sh.merges.lock() {
                        m.insert((dataset.clone(), target.clone()));
                    }
                }
                Ok(vec![crate::merge_sql::merge_row(&r)?])
            }
            Statement::ShowConflicts { dataset } => {
                let ds = sh.dataset(&dataset).await?;
                let target = sh.session_branch(&dataset);
                Ok(vec![crate::merge_sql::conflicts(&ds, &target).await?])
            }
            Statement::ResolveConflicts {
                dataset,
                theirs,
                filter,
            } => {
                let ds = sh.dataset(&dataset).await?;
                let target = sh.session_branch(&dataset);
                Ok(vec![
                    crate::merge_sql::resolve(
                        &ds,
                        &target,
                        theirs,
                        filter.map(|f| f.to_string()).as_deref(),
                    )
                    .await?,
                ])
            }
            Statement::AbortMerge { dataset } => {
                let ds = sh.dataset(&dataset).await?;
                let target = sh.session_branch(&dataset);
                ds.abort_merge(&target).await?;
                if let Ok(mut m) = sh.merges.lock() {
                    m.remove(&(dataset.clone(), target.clone()));
                }
                Ok(vec![message_batch(&[("aborted_merge_into", target)])?])
            }
            Statement::CommitMerge { dataset, message } => {
                let ds = sh.dataset(&dataset).await?;
                let target = sh.session_branch(&dataset);
                let row =
                    crate::merge_sql::commit(&ds, &target, message.as_deref(), &self.opts.author())
                        .await?;
                if let Ok(mut m) = sh.merges.lock() {
                    m.remove(&(dataset.clone(), target.clone()));
                }
                Ok(vec![crate::merge_sql::commits_row(&[row])?])
            }
            Statement::Rollback => {
                if self.txn.lock().await.take().is_none() {
                    return Err(SqlError::Transaction("ROLLBACK without BEGIN".into()));
                }
                Ok(vec![])
            }
            Statement::CreateSchemaVersion {
                dataset,
                version,
                parent,
                changes,
                message,
            } => {
                let ds = sh.dataset(&dataset).await?;
                let n = changes.len();
                let v = ds
                    .create_schema_version(
                        &version,
                        parent.as_deref(),
                        changes,
                        &self.opts.author(),
                        message.as_deref().unwrap_or_default(),
                    )
                    .await?;
                Ok(vec![message_batch(&[
                    ("dataset", dataset),
                    ("schema_version", v.version),
                    ("parent", v.parent.unwrap_or_default()),
                    ("changes", n.to_string()),
                ])?])
            }
            Statement::ShowSchemas { dataset } => {
                let ds = sh.dataset(&dataset).await?;
                Ok(vec![crate::system::schemas_batch(&ds.taxonomies().await?)?])
            }
            Statement::ShowSchema {
                dataset,
                version,
                at,
            } => {
                let ds = sh.dataset(&dataset).await?;
                let v = match (version, at) {
                    (Some(v), _) => ds.schema_version(&v).await?.version,
                    (None, Some(t)) => {
                        let when = crate::names::parse_timestamp(&t)?;
                        ds.schema_version_at(when)
                            .await?
                            .ok_or_else(|| CoreError::SchemaVersionNotFound {
                                dataset: dataset.clone(),
                                version: format!("(in force at {t}: none yet)"),
                            })?
                            .version
                    }
                    (None, None) => ds.current_schema_version().await?.ok_or_else(|| {
                        CoreError::SchemaVersionNotFound {
                            dataset: dataset.clone(),
                            version: "(current: none recorded)".into(),
                        }
                    })?,
                };
                let t = ds.taxonomy(&v).await?;
                Ok(vec![crate::lineage_sql::taxonomy_batch(&v, &t)?])
            }
            Statement::Migrate {
                dataset,
                version,
                mapping,
            } => self.migrate(&dataset, &version, mapping).await,
            Statement::CreateRun {
                run_id,
                dataset,
                at,
            } => {
                let ds = sh.dataset(&dataset).await?;
                let c = sh.resolve(&ds, &at).await?;
                sh.catalog
                    .record_run(&quiver_core::RunRecord {
                        run_id: run_id.clone(),
                        dataset: dataset.clone(),
                        reference: at.to_string(),
                        commit: c.id.to_hex(),
                        shards: 1,
                        columns: vec![],
                        filter: None,
                        author: self.opts.author(),
                        recorded_at: chrono::Utc::now(),
                    })
                    .await?;
                Ok(vec![message_batch(&[
                    ("run_id", run_id),
                    ("dataset", dataset),
                    ("commit_id", c.id.to_hex()),
                ])?])
            }
            Statement::CreateModel {
                model,
                run_id,
                message,
            } => {
                sh.catalog
                    .register_model(&quiver_core::ModelRecord {
                        model: model.clone(),
                        run_id: run_id.clone(),
                        author: self.opts.author(),
                        registered_at: chrono::Utc::now(),
                        message: message.unwrap_or_default(),
                    })
                    .await?;
                Ok(vec![message_batch(&[
                    ("model", model),
                    ("run_id", run_id),
                ])?])
            }
            Statement::InsertPredictions { columns, query } => {
                self.insert_predictions(columns, *query).await
            }
            Statement::DataFusion(q) if st_is_dml(&q) => match *q {
                DfStatement::Statement(s) => self.dml(*s).await,
                other => Err(SqlError::Unsupported(other.to_string())),
            },
            Statement::Optimize {
                dataset,
                branch,
                full,
            } => {
                let ds = sh.dataset(&dataset).await?;
                let branch = branch.unwrap_or_else(|| sh.session_branch(&dataset));
                let r = ds.optimize_with(&branch, full).await?;
                crate::optimize_sql::report_batch(&dataset, &branch, &r)
            }
            Statement::Vacuum {
                dataset,
                retain_hours,
                dry_run,
            } => {
                crate::vacuum_sql::vacuum(&sh.dataset(&dataset).await?, retain_hours, dry_run).await
            }
            Statement::DataFusion(q) => {
                self.preload(&q).await?;
                Ok(self.plan_query(*q).await?.collect().await?)
            }
        }
    }

    /// The dataset and branch a DML statement writes to; tags and versions are read-only.
    async fn write_target(&self, table: &str) -> Result<(Dataset, String)> {
        let (name, r) = split_table_name(table);
        let ds = self.shared.dataset(&name).await?;
        let ro = |target: String, reason: &str| SqlError::ReadOnly {
            dataset: name.clone(),
            target,
            reason: reason.into(),
        };
        match r {
            RefSpec::Session => {
                let b = self.shared.session_branch(&name);
                ds.branch_head(&b).await?;
                Ok((ds, b))
            }
            RefSpec::Branch(b) => {
                ds.branch_head(&b).await?;
                Ok((ds, b))
            }
            RefSpec::Tag(t) => {
                ds.tag(&t).await?;
                Err(ro(
                    format!("tag '{t}'"),
                    "tags are immutable; write to a branch",
                ))
            }
            RefSpec::Version(v) => Err(ro(
                format!("version '{v}'"),
                "versions are immutable; write to a branch",
            )),
            RefSpec::Timestamp(t) => Err(ro(
                format!("timestamp '{t}'"),
                "past versions are immutable; write to a branch",
            )),
            RefSpec::Loose(s) => {
                if ds.branch_head(&s).await.is_ok() {
                    return Ok((ds, s));
                }
                if ds.tag(&s).await.is_ok() {
                    return Err(ro(
                        format!("tag '{s}'"),
                        "tags are immutable; write to a branch",
                    ));
                }
                ds.resolve_loose(&s).await?;
                Err(ro(
                    format!("version '{s}'"),
                    "versions are immutable; write to a branch",
                ))
            }
        }
    }

    /// Apply a write to a branch: inside a transaction it joins it, otherwise it commits.
    async fn apply(&self, ds: &Dataset, branch: &str, write: Write, message: &str) -> Result<()> {
        let mut guard = self.txn.lock().await;
        let in_txn = guard.is_some();
        let mut own;
        let txn: &mut WriteTxn = match guard.as_mut() {
            Some(t) => {
                let key = (ds.name().to_string(), branch.to_string());
                if !t.writes.contains_key(&key) {
                    t.writes.insert(
                        key.clone(),
                        ds.begin(branch).await?.author(&self.opts.author()),
                    );
                }
                t.writes
                    .get_mut(&key)
                    .ok_or_else(|| SqlError::Transaction("write transaction missing".into()))?
            }
            None => {
                own = ds.begin(branch).await?.author(&self.opts.author());
                &mut own
            }
        };
        match &write {
            Write::Append(b) => txn.append(b).await?,
            Write::Upsert(b) => txn.upsert(b).await?,
            Write::Delete(b) => txn.delete(b).await?,
        }
        if !in_txn {
            txn.commit(message).await?;
        }
        Ok(())
    }

    /// Rows of a query conformed to the dataset schema (columns matched by `columns`, or
    /// by position), as one quiver-core batch.
    async fn conform(
        &self,
        ds: &Dataset,
        query: &str,
        columns: Option<Vec<String>>,
    ) -> Result<arrow::array::RecordBatch> {
        let target = ds.schema();
        let df = self
            .ctx
            .sql_with_options(query, crate::guard::query_options())
            .await?;
        let planned: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let batches = df.collect().await?;
        // the batches' own schema: a CASE over a view column may come out as a view while
        // the plan says Utf8
        let src_schema = batches.first().map_or(planned, |b| b.schema());
        let src = datafusion::arrow::compute::concat_batches(&src_schema, &batches)
            .map_err(DataFusionError::from)?;
        let names: Vec<String> = match columns {
            Some(c) => c,
            None => target
                .fields()
                .iter()
                .take(src.num_columns())
                .map(|f| f.name().clone())
                .collect(),
        };
        if names.len() != src.num_columns() {
            return Err(SqlError::Core(CoreError::SchemaMismatch {
                dataset: ds.name().into(),
                reason: format!(
                    "{} values given for {} columns (the dataset has {})",
                    src.num_columns(),
                    names.len(),
                    target.fields().len()
                ),
            }));
        }
        let mut cols = Vec::with_capacity(target.fields().len());
        for f in target.fields() {
            let col = match names.iter().position(|n| n == f.name()) {
                Some(i) => conform_column(ds.name(), f, src.column(i))?,
                None => datafusion::arrow::array::new_null_array(f.data_type(), src.num_rows()),
            };
            if !f.is_nullable() && col.null_count() > 0 {
                return Err(SqlError::Core(CoreError::SchemaMismatch {
                    dataset: ds.name().into(),
                    reason: format!("column '{}' may not contain nulls", f.name()),
                }));
            }
            cols.push(col);
        }
        for n in &names {
            if target.field_with_name(n).is_err() {
                return Err(SqlError::Core(CoreError::ColumnNotFound {
                    dataset: ds.name().into(),
                    column: n.clone(),
                }));
            }
        }
        let out = RecordBatch::try_new(target, cols).map_err(DataFusionError::from)?;
        Ok(out)
    }

    /// `MIGRATE ds TO SCHEMA 'v' [USING (…)]`: one commit that moves every label onto schema
    /// `v` (class renames of `v`'s delta and of the mapping applied, `schema_version` set).
    /// Labels whose class has no place in `v` are reported in the error and nothing is
    /// written.
    async fn migrate(
        &self,
        dataset: &str,
        version: &str,
        mapping: Vec<(String, String)>,
    ) -> Result<Vec<RecordBatch>> {
        let ds = self.shared.dataset(dataset).await?;
        let schema = ds.schema();
        for col in ["class", "schema_version"] {
            if schema.field_with_name(col).is_err() {
                return Err(SqlError::Unsupported(format!(
                    "MIGRATE needs columns 'class' and 'schema_version'; dataset '{dataset}' has no '{col}'"
                )));
            }
        }
        let sv = ds.schema_version(version).await?;
        let target = ds.taxonomy(version).await?;
        let mut map: BTreeMap<String, String> = BTreeMap::new();
        for c in &sv.changes {
            if let quiver_core::SchemaChange::RenameClass { from, to } = c {
                map.insert(from.clone(), to.clone());
            }
        }
        for (from, to) in mapping {
            if !target.classes.contains_key(&to) {
                return Err(CoreError::InvalidSchemaChange {
                    dataset: dataset.into(),
                    version: version.into(),
                    reason: format!(
                        "USING maps '{from}' to '{to}', which is not a class of this version"
                    ),
                }
                .into());
            }
            map.insert(from, to);
        }
        let lit = crate::parser::sql_string;
        let placeable: Vec<String> = target
            .classes
            .keys()
            .chain(map.keys())
            .map(|c| lit(c))
            .collect();
        let table = quote_ident(dataset);
        let branch_table = quote_ident(&format!(
            "{dataset}@branch:{}",
            self.shared.session_branch(dataset)
        ));
        let check = format!(
            "SELECT class, count(*) AS labels FROM {branch_table} {} GROUP BY class ORDER BY labels DESC, class",
            if placeable.is_empty() {
                String::new()
            } else {
                format!("WHERE class NOT IN ({})", placeable.join(", "))
            }
        );
        let bad = self
            .ctx
            .sql_with_options(&check, crate::guard::query_options())
            .await?
            .collect()
            .await?;
        let mut report = Vec::new();
        let mut total = 0i64;
        for b in &bad {
            let classes = arrow::compute::cast(b.column(0), &DataType::Utf8)
                .map_err(DataFusionError::from)?;
            let (Some(c), Some(n)) = (
                classes.as_any().downcast_ref::<StringArray>(),
                b.column(1)
                    .as_any()
                    .downcast_ref::<arrow::array::Int64Array>(),
            ) else {
                continue;
            };
            for i in 0..b.num_rows() {
                total += n.value(i);
                if report.len() < 10 {
                    report.push(format!("'{}' ({} labels)", c.value(i), n.value(i)));
                }
            }
        }
        if total > 0 {
            return Err(CoreError::InvalidSchemaChange {
                dataset: dataset.into(),
                version: version.into(),
                reason: format!(
                    "{total} labels have classes with no place in this version: {} — map them with USING ('old' = 'new'); nothing was migrated",
                    report.join(", ")
                ),
            }
            .into());
        }
        let case = if map.is_empty() {
            "class".to_string()
        } else {
            format!(
                "CASE class {} ELSE class END",
                map.iter()
                    .map(|(f, t)| format!("WHEN {} THEN {}", lit(f), lit(t)))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        };
        let mut cond = vec![format!("schema_version <> {}", lit(version))];
        if !map.is_empty() {
            cond.push(format!(
                "class IN ({})",
                map.keys().map(|k| lit(k)).collect::<Vec<_>>().join(", ")
            ));
        }
        let update = format!(
            "UPDATE {table} SET class = {case}, schema_version = {} WHERE {}",
            lit(version),
            cond.join(" OR ")
        );
        match parser::parse_statement_with(&update, &self.opts.limits)? {
            Statement::DataFusion(q) => match *q {
                DfStatement::Statement(s) => self.dml(*s).await,
                other => Err(SqlError::Unsupported(other.to_string())),
            },
            other => Err(SqlError::Unsupported(other.to_string())),
        }
    }

    /// `INSERT INTO quiver.predictions [(cols)] VALUES …|SELECT …`: rows with `model`,
    /// `sample_id`, `class`, `score`, stored as one prediction batch per model.
    async fn insert_predictions(
        &self,
        columns: Vec<String>,
        query: datafusion::sql::sqlparser::ast::Query,
    ) -> Result<Vec<RecordBatch>> {
        use arrow::array::Array;
        let query = DfStatement::Statement(Box::new(SqlStatement::Query(Box::new(query))));
        let batches = self.plan_query(query).await?.collect().await?;
        let columns = (!columns.is_empty()).then_some(columns);
        let names: Vec<String> = columns.unwrap_or_else(|| {
            ["model", "sample_id", "class", "score"]
                .iter()
                .map(|s| s.to_string())
                .collect()
        });
        let mut written = 0u64;
        for b in batches {
            if b.num_columns() != names.len() {
                return Err(SqlError::Parse(format!(
                    "INSERT INTO quiver.predictions: {} columns given, {} values per row",
                    names.len(),
                    b.num_columns()
                )));
            }
            let fields: Vec<Field> = names
                .iter()
                .zip(b.columns())
                .map(|(n, c)| Field::new(n, c.data_type().clone(), true))
                .collect();
            let b = RecordBatch::try_new(Arc::new(Schema::new(fields)), b.columns().to_vec())
                .map_err(DataFusionError::from)?;
            let models = b
                .column_by_name("model")
                .ok_or_else(|| SqlError::Parse("predictions need a 'model' column".into()))?;
            let models =
                arrow::compute::cast(models, &DataType::Utf8).map_err(DataFusionError::from)?;
            let models = models
                .as_any()
                .downcast_ref::<StringArray>()
                .ok_or_else(|| SqlError::Parse("'model' must be a string".into()))?;
            let mut distinct: Vec<String> = (0..models.len())
                .filter(|i| !models.is_null(*i))
                .map(|i| models.value(i).to_string())
                .collect();
            distinct.sort();
            distinct.dedup();
            for m in distinct {
                let mask = arrow::array::BooleanArray::from(
                    (0..models.len())
                        .map(|i| !models.is_null(i) && models.value(i) == m)
                        .collect::<Vec<_>>(),
                );
                let part = arrow::compute::filter_record_batch(&b, &mask)
                    .map_err(DataFusionError::from)?;
                let idx: Vec<usize> = (0..part.num_columns())
                    .filter(|i| part.schema().field(*i).name() != "model")
                    .collect();
                let part = part.project(&idx).map_err(DataFusionError::from)?;
                let r = self
                    .shared
                    .catalog
                    .write_predictions(&m, &part, &self.opts.author())
                    .await?;
                written += r.rows;
            }
        }
        Ok(vec![count_batch(written)?])
    }

    async fn dml(&self, st: SqlStatement) -> Result<Vec<RecordBatch>> {
        let message: String = st.to_string().chars().take(200).collect();
        match st {
            SqlStatement::Insert(ins) => {
                let TableObject::TableName(name) = &ins.table else {
                    return Err(SqlError::Unsupported("INSERT INTO a table function".into()));
                };
                let (ds, branch) = self.write_target(&object_name(name)?).await?;
                let Some(source) = &ins.source else {
                    return Err(SqlError::Unsupported(
                        "INSERT without VALUES or SELECT".into(),
                    ));
                };
                let columns = if ins.columns.is_empty() {
                    None
                } else {
                    Some(
                        ins.columns
                            .iter()
                            .map(object_name)
                            .collect::<Result<Vec<_>>>()?,
                    )
                };
                let batch = self.conform(&ds, &source.to_string(), columns).await?;
                let n = batch.num_rows() as u64;
                self.apply(&ds, &branch, Write::Append(batch), &message)
                    .await?;
                Ok(vec![count_batch(n)?])
            }
            SqlStatement::Update(u) => {
                let TableFactor::Table { name, .. } = &u.table.relation else {
                    return Err(SqlError::Unsupported(
                        "UPDATE of something that is not a table".into(),
                    ));
                };
                if u.from.is_some() || !u.table.joins.is_empty() {
                    return Err(SqlError::Unsupported("UPDATE … FROM / joins".into()));
                }
                let (ds, branch) = self.write_target(&object_name(name)?).await?;
                let cfg = ds.config();
                let mut set: HashMap<String, String> = HashMap::new();
                for a in &u.assignments {
                    let AssignmentTarget::ColumnName(c) = &a.target else {
                        return Err(SqlError::Unsupported("tuple assignment in UPDATE".into()));
                    };
                    let c = object_name(c)?;
                    if ds.schema().field_with_name(&c).is_err() {
                        return Err(SqlError::Core(CoreError::ColumnNotFound {
                            dataset: ds.name().into(),
                            column: c,
                        }));
                    }
                    if c == cfg.group_key || c == cfg.label_key {
                        return Err(SqlError::Unsupported(format!(
                            "UPDATE of key column '{c}' (delete the label and insert it under the new key)"
                        )));
                    }
                    set.insert(c, a.value.to_string());
                }
                let items: Vec<String> = ds
                    .schema()
                    .fields()
                    .iter()
                    .map(|f| match set.get(f.name()) {
                        Some(e) => format!("({e}) AS {}", quote_ident(f.name())),
                        None => quote_ident(f.name()),
                    })
                    .collect();
                let q = format!(
                    "SELECT {} FROM {} AS {}{}",
                    items.join(", "),
                    quote_ident(&format!("{}@branch:{branch}", ds.name())),
                    quote_ident(ds.name()),
                    u.selection
                        .as_ref()
                        .map(|s| format!(" WHERE {s}"))
                        .unwrap_or_default()
                );
                let batch = self.conform(&ds, &q, None).await?;
                let n = batch.num_rows() as u64;
                if n > 0 {
                    self.apply(&ds, &branch, Write::Upsert(batch), &message)
                        .await?;
                }
                Ok(vec![count_batch(n)?])
            }
            SqlStatement::Delete(d) => {
                let (FromTable::WithFromKeyword(tables) | FromTable::WithoutKeyword(tables)) =
                    &d.from;
                let [t] = tables.as_slice() else {
                    return Err(SqlError::Unsupported("DELETE from several tables".into()));
                };
                let TableFactor::Table { name, .. } = &t.relation else {
                    return Err(SqlError::Unsupported(
                        "DELETE from something that is not a table".into(),
                    ));
                };
                if d.using.is_some() || !t.joins.is_empty() {
                    return Err(SqlError::Unsupported("DELETE … USING / joins".into()));
                }
                let (ds, branch) = self.write_target(&object_name(name)?).await?;
                let cfg = ds.config();
                let q = format!(
                    "SELECT {}, {} FROM {} AS {}{}",
                    quote_ident(&cfg.group_key),
                    quote_ident(&cfg.label_key),
                    quote_ident(&format!("{}@branch:{branch}", ds.name())),
                    quote_ident(ds.name()),
                    d.selection
                        .as_ref()
                        .map(|s| format!(" WHERE {s}"))
                        .unwrap_or_default()
                );
                let df = self
                    .ctx
                    .sql_with_options(&q, crate::guard::query_options())
                    .await?;
                let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
                let batches = df.collect().await?;
                let keys = datafusion::arrow::compute::concat_batches(&schema, &batches)
                    .map_err(DataFusionError::from)?;
                // SQL reads strings as views; the write path takes the dataset's layout
                let keys = key_columns_as_stored(&ds, keys)?;
                let n = keys.num_rows() as u64;
                if n > 0 {
                    let keys = keys.clone();
                    self.apply(&ds, &branch, Write::Delete(keys), &message)
                        .await?;
                }
                Ok(vec![count_batch(n)?])
            }
            other => Err(SqlError::Unsupported(other.to_string())),
        }
    }
}
