//! [`QuiverContext`]: a SQL session over a Quiver catalog.
//!
//! Wraps a DataFusion `SessionContext` whose default schema resolves table names lazily:
//! `ds` is the head of the session's branch for `ds` (default `main`, changed with
//! `USE BRANCH`), `"ds@ref"` any branch, tag or version (`Dataset::resolve_loose`), and the
//! names produced by the `AS OF` rewrite (`"ds@tag:v1"`, …). The schema `quiver` holds the
//! system tables; `quiver_diff('ds', 'from', 'to')`, `quiver_conflicts`,
//! `quiver_merge_preview` and `quiver_history` are table functions. The extension
//! statements of [`crate::parser`] and DML (INSERT/UPDATE/DELETE, each a commit, or one
//! commit per `BEGIN … COMMIT`) are executed here.
//!
//! Layout: this module holds the session (construction, planning, the statement
//! dispatcher [`QuiverContext::execute`]); [`catalog`] the schemas DataFusion resolves table
//! names in; [`functions`] the table functions; one `exec_*` module per statement family
//! (datasets, refs, history, transactions, merges, revert/reset, taxonomy, lineage,
//! maintenance, DML).
//!
//! Known limitation: inside `BEGIN … COMMIT`, queries (and the row selection of UPDATE and
//! DELETE) read the committed head of the branch, not the transaction's pending writes.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, LazyLock, Mutex, Weak};

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{
    MemoryCatalogProvider, MemoryCatalogProviderList, SchemaProvider, TableFunctionArgs,
    TableFunctionImpl,
};
use datafusion::common::ScalarValue;
use datafusion::datasource::{MemTable, TableProvider};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::execution::session_state::{SessionState, SessionStateBuilder};
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

mod catalog;
mod exec_dataset;
mod exec_dml;
mod exec_history;
mod exec_lineage;
mod exec_maintenance;
mod exec_merge;
mod exec_refs;
mod exec_rewind;
mod exec_schema;
mod exec_txn;
mod functions;
mod pins;

use catalog::{as_typed, DatasetSchema, Shared, SystemSchema};
use exec_dml::quote_ident;
pub(crate) use functions::string_args;
use functions::{
    diff_batch, ConflictsFunction, DiffFunction, HistoryFunction, MergePreviewFunction,
};
pub use pins::VersionPins;

/// A statement handed to the executor of another family (a bug, not a user error).
fn misrouted(st: &Statement) -> SqlError {
    SqlError::Unsupported(format!(
        "internal error: {} reached the wrong executor",
        st.kind()
    ))
}

/// DataFusion session states already built, by (configuration, runtime): building one
/// with every default function, rule and planner cost more than planning a short
/// statement, and the Flight server opens a session per request. A session starts from a
/// clone of the template with a catalog list of its own.
type Templates = Vec<(
    Vec<(String, Option<String>)>,
    Weak<RuntimeEnv>,
    SessionState,
)>;
static TEMPLATES: LazyLock<Mutex<Templates>> = LazyLock::new(Mutex::default);
/// Templates kept at most (distinct configurations of one process are few).
const MAX_TEMPLATES: usize = 8;

fn session_state(config: SessionConfig, runtime: Arc<RuntimeEnv>) -> SessionState {
    let key: Vec<(String, Option<String>)> = config
        .options()
        .entries()
        .into_iter()
        .map(|e| (e.key, e.value))
        .collect();
    let fresh = |config: SessionConfig, runtime: Arc<RuntimeEnv>| {
        let mut state = SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(runtime)
            .with_default_features()
            .build();
        // catalog-independent functions belong to the template, registered once
        for f in crate::asset_fn::length_udfs() {
            // replacing DataFusion's own length functions; the old ones are not needed
            let _ = datafusion::execution::FunctionRegistry::register_udf(&mut state, Arc::new(f));
        }
        state
    };
    let Ok(mut templates) = TEMPLATES.lock() else {
        return fresh(config, runtime);
    };
    templates.retain(|(_, rt, _)| rt.strong_count() > 0);
    let found = templates
        .iter()
        .find(|(k, rt, _)| *k == key && rt.upgrade().is_some_and(|r| Arc::ptr_eq(&r, &runtime)));
    let mut state = match found {
        Some((_, _, t)) => t.clone(),
        None => {
            let t = fresh(config, runtime.clone());
            if templates.len() >= MAX_TEMPLATES {
                templates.remove(0);
            }
            templates.push((key, Arc::downgrade(&runtime), t.clone()));
            t
        }
    };
    // the template's catalogs are shared by its clones: each session gets its own list
    state.register_catalog_list(Arc::new(MemoryCatalogProviderList::new()));
    state
}

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

/// An open `BEGIN … COMMIT` transaction: one write transaction per (dataset, branch).
#[derive(Default)]
struct Txn {
    writes: BTreeMap<(String, String), WriteTxn>,
}

/// Whether planning `st` may enumerate the catalog's tables: `SHOW TABLES`, `SHOW COLUMNS`,
/// or a statement naming a relation in `information_schema` (a CTE of that name included:
/// listing is only ever extra work).
fn enumerates_tables(st: &DfStatement) -> bool {
    use datafusion::sql::sqlparser::ast::visit_relations;
    let st = match st {
        DfStatement::Statement(st) => st,
        DfStatement::Explain(e) => return enumerates_tables(&e.statement),
        _ => return false,
    };
    if matches!(
        st.as_ref(),
        SqlStatement::ShowTables { .. } | SqlStatement::ShowColumns { .. }
    ) {
        return true;
    }
    let found = visit_relations(st.as_ref(), |name| {
        if name.0.iter().any(|part| {
            part.as_ident()
                .is_some_and(|i| i.value.eq_ignore_ascii_case("information_schema"))
        }) {
            std::ops::ControlFlow::Break(())
        } else {
            std::ops::ControlFlow::Continue(())
        }
    });
    found.is_break()
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

impl QuiverContext {
    /// A session over `catalog` with DataFusion's default configuration.
    pub async fn new(catalog: Catalog) -> Result<Self> {
        Self::with_options(catalog, SessionConfig::new(), SessionOptions::default()).await
    }

    /// A session with DataFusion's default configuration and [`SessionOptions`].
    pub async fn with_session_options(catalog: Catalog, opts: SessionOptions) -> Result<Self> {
        Self::with_options(catalog, SessionConfig::new(), opts).await
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
        let config = crate::options::with_env_settings(config)?
            .with_information_schema(true)
            .with_default_catalog_and_schema("datafusion", "public");
        let runtime = match &opts.runtime {
            Some(r) => r.clone(),
            None => {
                crate::options::runtime_with_memory_limit(crate::options::default_memory_limit())?
            }
        };
        // merges made through this catalog run their branches' checks as SQL
        crate::checks::install(&catalog);
        let mut state = session_state(config, runtime);
        if let Some(hook) = &opts.state_hook {
            state = (hook.0)(state)?;
        }
        let ctx = SessionContext::new_with_state(state);
        // sessions on one catalog register its (read-only) store in the shared runtime
        // under one URL, not one more registry entry per session
        let url = provider::store_url(catalog.instance_id())?;
        provider::register_store(&ctx, &url, &catalog);
        let shared = Arc::new(Shared {
            catalog,
            url,
            packs: PackInfoCache::default(),
            branches: Mutex::default(),
            datasets: Mutex::default(),
            listed: Mutex::default(),
            listing: tokio::sync::OnceCell::new(),
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
        ctx.register_udtf(
            "quiver_merge_preview",
            Arc::new(MergePreviewFunction {
                shared: shared.clone(),
            }),
        );
        ctx.register_udtf(
            "quiver_history",
            Arc::new(HistoryFunction {
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
        // existing datasets are listed for `SHOW TABLES`/information_schema when a
        // statement enumerates tables (`plan_query`), not for every session
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
                if rows.len() == 1 {
                    let row = rows.into_iter().next().unwrap_or_default();
                    return Ok(self
                        .plan_query((*q).clone())
                        .await?
                        .with_param_values(row)?);
                }
                // The results of the rows come back in the rows' order, each in its own
                // order (a client matches them up by position): every row's result is
                // numbered (row, position within it) and the union sorted on that.
                use datafusion::functions_window::expr_fn::row_number;
                use datafusion::prelude::{col, lit};
                const ROW: &str = "__quiver_param_row";
                const POS: &str = "__quiver_param_pos";
                let mut out: Option<DataFrame> = None;
                for (i, row) in rows.into_iter().enumerate() {
                    let df = self
                        .plan_query((*q).clone())
                        .await?
                        .with_param_values(row)?
                        .with_column(POS, row_number())?
                        .with_column(ROW, lit(i as u64))?;
                    out = Some(match out {
                        None => df,
                        Some(all) => all.union(df)?,
                    });
                }
                let out = out.ok_or_else(|| SqlError::Parse("no parameters".into()))?;
                Ok(out
                    .sort(vec![col(ROW).sort(true, false), col(POS).sort(true, false)])?
                    .drop_columns(&[ROW, POS])?)
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
        if enumerates_tables(&statement) {
            self.shared.ensure_listed().await?;
        }
        let state = self.ctx.state();
        let mut wildcard = false;
        if let DfStatement::Statement(st) = &mut statement {
            if let SqlStatement::Query(q) = st.as_mut() {
                crate::column_names::name_result_columns(q);
                wildcard = crate::column_names::wildcard_result(q);
            }
        }
        let mut plan = state.statement_to_plan(statement).await?;
        if wildcard {
            plan = crate::column_names::hide_implicit_keys(plan)?;
        }
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
        if self.opts.read_only && st.is_write() {
            let text: String = st.to_string().chars().take(80).collect();
            return Err(SqlError::PermissionDenied(format!(
                "'{text}' changes the catalog and this session is read-only (a read-only token)"
            )));
        }
        match st {
            st @ (Statement::CreateDataset { .. }
            | Statement::CreateTable { .. }
            | Statement::DropTable { .. }
            | Statement::AlterMetadata { .. }
            | Statement::ShowMetadata { .. }
            | Statement::ShowDatasets) => self.exec_dataset(st).await,
            st @ (Statement::CreateBranch { .. }
            | Statement::DropBranch { .. }
            | Statement::RenameBranch { .. }
            | Statement::SetBranchProtection { .. }
            | Statement::AddBranchCheck { .. }
            | Statement::DropBranchCheck { .. }
            | Statement::RenameTag { .. }
            | Statement::CreateTag { .. }
            | Statement::DropTag { .. }
            | Statement::ShowBranches { .. }
            | Statement::ShowTags { .. }
            | Statement::UseBranch { .. }) => self.exec_refs(st).await,
            st @ (Statement::ShowHistory { .. } | Statement::Diff { .. }) => {
                self.exec_history(st).await
            }
            st @ (Statement::Begin | Statement::Commit { .. } | Statement::Rollback) => {
                self.exec_txn(st).await
            }
            st @ (Statement::Merge { .. }
            | Statement::MergePreview { .. }
            | Statement::ShowConflicts { .. }
            | Statement::ResolveConflicts { .. }
            | Statement::AbortMerge { .. }
            | Statement::CommitMerge { .. }) => self.exec_merge(st).await,
            st @ (Statement::Revert { .. } | Statement::ResetBranch { .. }) => {
                self.exec_rewind(st).await
            }
            st @ (Statement::CreateSchemaVersion { .. }
            | Statement::ShowSchemas { .. }
            | Statement::ShowSchema { .. }
            | Statement::Migrate { .. }) => self.exec_schema(st).await,
            st @ (Statement::CreateRun { .. }
            | Statement::CreateModel { .. }
            | Statement::InsertPredictions { .. }) => self.exec_lineage(st).await,
            st @ (Statement::Optimize { .. }
            | Statement::Vacuum { .. }
            | Statement::Erase { .. }) => self.exec_maintenance(st).await,
            st @ Statement::DataFusion(_) if st.is_dml() => self.exec_dml(st).await,
            Statement::DataFusion(q) => {
                self.preload(&q).await?;
                Ok(self.plan_query(*q).await?.collect().await?)
            }
        }
    }
}
