//! Executes `INSERT`, `UPDATE` and `DELETE` on a dataset. DataFusion plans the statement
//! (a `LogicalPlan::Dml` whose input holds the rows: INSERT's values cast to the column
//! types, UPDATE's new rows, DELETE's matching rows, subqueries and `UPDATE … FROM` joins
//! included); the input is streamed, conformed by [`quiver_core::conform`] and written
//! through one write transaction (the session's open one, or one of their own that
//! commits at once).

use datafusion::common::Column;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{ExprSchemable, LogicalPlan, LogicalPlanBuilder, WriteOp};
use datafusion::physical_plan::SendableRecordBatchStream;
use futures::StreamExt;
use quiver_core::WriteMode;

use super::*;

impl QuiverContext {
    /// Run one statement of this family.
    pub(super) async fn exec_dml(&self, st: Statement) -> Result<Vec<RecordBatch>> {
        match st {
            Statement::DataFusion(q) if st_is_dml(&q) => match *q {
                DfStatement::Statement(s) => self.dml(*s).await,
                other => Err(SqlError::Unsupported(other.to_string())),
            },
            other => Err(misrouted(&other)),
        }
    }

    /// The dataset and branch a DML statement writes to; tags and versions are read-only.
    pub(super) async fn write_target(&self, table: &str) -> Result<(Dataset, String)> {
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

    /// Stream the rows of `input` into a write on a branch: inside a transaction they join
    /// it, otherwise they commit as one commit. Returns the number of rows written (or keys
    /// deleted). Rows are conformed batch by batch; nothing is collected into memory here.
    ///
    /// A failure before any row was staged leaves an open transaction as it was; a failure
    /// after some were rolls the whole transaction back (as PostgreSQL aborts one), since
    /// the statement cannot be undone on its own, and says so.
    async fn apply_stream(
        &self,
        ds: &Dataset,
        branch: &str,
        kind: WriteKind,
        mut stream: SendableRecordBatchStream,
        message: &str,
    ) -> Result<u64> {
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
        let schema = ds.schema();
        let mut n = 0u64;
        let mut staged = false;
        let result: Result<()> = async {
            while let Some(batch) = stream.next().await {
                let batch = batch?;
                if batch.num_rows() == 0 {
                    continue;
                }
                match kind {
                    // the transaction conforms the rows to the dataset (layouts only: the
                    // plan already cast them)
                    WriteKind::Append => txn.write(&batch, WriteMode::Append).await?,
                    WriteKind::Upsert => txn.write(&batch, WriteMode::Upsert).await?,
                    WriteKind::Delete => {
                        let keys = quiver_core::conform::conform_columns(
                            ds.name(),
                            &schema,
                            &batch,
                            quiver_core::Casts::Layout,
                        )?;
                        txn.delete(&keys).await?;
                    }
                }
                staged = true;
                n += batch.num_rows() as u64;
            }
            Ok(())
        }
        .await;
        match result {
            Err(e) if in_txn && staged => {
                guard.take();
                Err(SqlError::Transaction(format!(
                    "{e}; the statement had written part of its rows, so the transaction was rolled back"
                )))
            }
            Err(e) => Err(e),
            Ok(()) => {
                if !in_txn && n > 0 {
                    txn.commit(message).await?;
                }
                Ok(n)
            }
        }
    }

    /// INSERT, UPDATE or DELETE: planned by DataFusion (its casts to the column types, its
    /// subqueries and joins), the rows of the plan's input streamed into the branch.
    pub(super) async fn dml(&self, mut st: SqlStatement) -> Result<Vec<RecordBatch>> {
        let message: String = st.to_string().chars().take(200).collect();
        let target = match &st {
            SqlStatement::Insert(ins) => {
                let TableObject::TableName(name) = &ins.table else {
                    return Err(SqlError::Unsupported("INSERT INTO a table function".into()));
                };
                if ins.source.is_none() {
                    return Err(SqlError::Unsupported(
                        "INSERT without VALUES or SELECT".into(),
                    ));
                }
                object_name(name)?
            }
            SqlStatement::Update(u) => {
                let TableFactor::Table { name, .. } = &u.table.relation else {
                    return Err(SqlError::Unsupported(
                        "UPDATE of something that is not a table".into(),
                    ));
                };
                if !u.table.joins.is_empty() {
                    return Err(SqlError::Unsupported(
                        "UPDATE of a join (name the other tables in FROM)".into(),
                    ));
                }
                object_name(name)?
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
                    return Err(SqlError::Unsupported(
                        "DELETE … USING / joins (use WHERE key IN (SELECT …))".into(),
                    ));
                }
                object_name(name)?
            }
            other => return Err(SqlError::Unsupported(other.to_string())),
        };
        let (ds, branch) = self.write_target(&target).await?;
        if let SqlStatement::Insert(ins) = &mut st {
            // positional VALUES / SELECT fill the columns the table was created with: the
            // implicit key columns are generated (crate::column_names). A `SELECT *` source
            // still brings every column (a keyless table's key included), as before.
            let schema = ds.schema();
            let wildcard = ins
                .source
                .as_ref()
                .is_some_and(|q| crate::column_names::wildcard_result(q));
            if ins.columns.is_empty()
                && !wildcard
                && schema
                    .fields()
                    .iter()
                    .any(|f| crate::column_names::is_implicit_key(f.name()))
            {
                ins.columns = schema
                    .fields()
                    .iter()
                    .filter(|f| !crate::column_names::is_implicit_key(f.name()))
                    .map(|f| {
                        ObjectName::from(vec![datafusion::sql::sqlparser::ast::Ident::with_quote(
                            '"',
                            f.name(),
                        )])
                    })
                    .collect();
            }
        }
        if let SqlStatement::Update(u) = &st {
            let cfg = ds.config();
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
            }
            if u.from.is_some() {
                // DataFusion 55 refuses UPDATE … FROM (apache/datafusion#19950): plan the
                // new rows as the equivalent join query instead
                let rows = self.update_from_rows(u, &ds).await?;
                return self
                    .write_rows(&ds, &branch, WriteKind::Upsert, rows, &message)
                    .await;
            }
        }
        let plan = self
            .ctx
            .state()
            .statement_to_plan(DfStatement::Statement(Box::new(st)))
            .await?;
        let LogicalPlan::Dml(dml) = plan else {
            return Err(SqlError::Unsupported(format!(
                "'{message}' did not plan as a write"
            )));
        };
        // the rows to write are a query: it may read, never write
        crate::guard::query_options().verify_plan(&dml.input)?;
        let input = Arc::unwrap_or_clone(dml.input);
        let (kind, input) = match dml.op {
            WriteOp::Insert(InsertOp::Append) => (WriteKind::Append, input),
            WriteOp::Insert(InsertOp::Replace) => (WriteKind::Upsert, input),
            WriteOp::Insert(InsertOp::Overwrite) => {
                return Err(SqlError::Unsupported(
                    "INSERT OVERWRITE (DELETE the rows, then INSERT, in one BEGIN … COMMIT)".into(),
                ))
            }
            WriteOp::Update => (WriteKind::Upsert, input),
            WriteOp::Delete => {
                let cfg = ds.config();
                let key =
                    |c: &str| Expr::Column(Column::new(Some(dml.table_name.clone()), c)).alias(c);
                let keys = LogicalPlanBuilder::from(input)
                    .project(vec![key(&cfg.group_key), key(&cfg.label_key)])?
                    .build()?;
                (WriteKind::Delete, keys)
            }
            other => {
                return Err(SqlError::Unsupported(format!("{other} on a dataset")));
            }
        };
        self.write_rows(&ds, &branch, kind, input, &message).await
    }

    /// Execute `rows` (a plan whose columns are named as the dataset's) and stream them
    /// into the branch; answers the affected-row count.
    async fn write_rows(
        &self,
        ds: &Dataset,
        branch: &str,
        kind: WriteKind,
        rows: LogicalPlan,
        message: &str,
    ) -> Result<Vec<RecordBatch>> {
        let run = async {
            let stream = self
                .ctx
                .execute_logical_plan(rows)
                .await?
                .execute_stream()
                .await?;
            self.apply_stream(ds, branch, kind, stream, message).await
        };
        let n = run.await.map_err(|e| conversion_error(ds.name(), e))?;
        Ok(vec![count_batch(n)?])
    }

    /// The new rows of `UPDATE t SET c = e … FROM s WHERE p`: the query
    /// `SELECT <e or t.c for every column> FROM t, s WHERE p`, built on the AST (no SQL
    /// text), planned by DataFusion and cast to the column types as an UPDATE is.
    async fn update_from_rows(
        &self,
        u: &datafusion::sql::sqlparser::ast::Update,
        ds: &Dataset,
    ) -> Result<LogicalPlan> {
        use datafusion::sql::sqlparser::ast::{
            Expr as SqlExpr, Ident, SelectItem, SetExpr, UpdateTableFromKind,
        };
        let TableFactor::Table { name, alias, .. } = &u.table.relation else {
            return Err(SqlError::Unsupported(
                "UPDATE of something that is not a table".into(),
            ));
        };
        let from = match &u.from {
            Some(UpdateTableFromKind::BeforeSet(f) | UpdateTableFromKind::AfterSet(f)) => f,
            None => return Err(SqlError::Unsupported("UPDATE without FROM".into())),
        };
        let qualifier: Vec<Ident> = match alias {
            Some(a) => vec![a.name.clone()],
            None => name
                .0
                .iter()
                .filter_map(|p| p.as_ident().cloned())
                .collect(),
        };
        let mut assigned: HashMap<String, SqlExpr> = HashMap::new();
        for a in &u.assignments {
            if let AssignmentTarget::ColumnName(c) = &a.target {
                assigned.insert(object_name(c)?, a.value.clone());
            }
        }
        let target = provider::read_schema(&ds.schema());
        let mut skeleton = datafusion::sql::sqlparser::parser::Parser::parse_sql(
            &datafusion::sql::sqlparser::dialect::GenericDialect {},
            "SELECT 1",
        )
        .map_err(|e| SqlError::Parse(e.to_string()))?;
        let Some(SqlStatement::Query(mut query)) = skeleton.pop() else {
            return Err(SqlError::Parse("internal: SELECT skeleton".into()));
        };
        let SetExpr::Select(select) = query.body.as_mut() else {
            return Err(SqlError::Parse("internal: SELECT skeleton".into()));
        };
        select.projection = target
            .fields()
            .iter()
            .map(|f| {
                let alias = Ident::with_quote('"', f.name());
                let expr = match assigned.get(f.name()) {
                    Some(e) => e.clone(),
                    None => {
                        let mut parts = qualifier.clone();
                        parts.push(Ident::with_quote('"', f.name()));
                        SqlExpr::CompoundIdentifier(parts)
                    }
                };
                SelectItem::ExprWithAlias { expr, alias }
            })
            .collect();
        select.from = std::iter::once(u.table.clone())
            .chain(from.iter().cloned())
            .collect();
        select.selection = u.selection.clone();
        let plan = self
            .ctx
            .state()
            .statement_to_plan(DfStatement::Statement(Box::new(SqlStatement::Query(query))))
            .await?;
        crate::guard::query_options().verify_plan(&plan)?;
        let casts = target
            .fields()
            .iter()
            .map(|f| {
                Expr::Column(Column::new_unqualified(f.name()))
                    .cast_to(f.data_type(), plan.schema())
                    .map(|e| e.alias(f.name()))
            })
            .collect::<DfResult<Vec<_>>>()?;
        Ok(LogicalPlanBuilder::from(plan).project(casts)?.build()?)
    }
}

/// A value DataFusion could not cast to a column's type (`INSERT … VALUES ('x')` into a
/// number), reported as a write error of the dataset rather than an optimizer failure.
fn conversion_error(dataset: &str, e: SqlError) -> SqlError {
    if let SqlError::DataFusion(d) = &e {
        if let DataFusionError::ArrowError(a, _) = d.find_root() {
            if let datafusion::arrow::error::ArrowError::CastError(reason) = a.as_ref() {
                return SqlError::ValueConversion {
                    dataset: dataset.into(),
                    reason: reason.clone(),
                };
            }
        }
    }
    e
}

/// What the rows of a DML statement do to the branch.
#[derive(Clone, Copy, PartialEq, Eq)]
enum WriteKind {
    /// New labels (an existing key is an error).
    Append,
    /// Labels inserted or replaced by key.
    Upsert,
    /// The rows are the keys of labels to delete.
    Delete,
}

pub(super) fn object_name(n: &ObjectName) -> Result<String> {
    n.0.last()
        .and_then(|p| p.as_ident())
        .map(|i| i.value.clone())
        .ok_or_else(|| SqlError::Parse(format!("unsupported table name {n}")))
}

pub(super) fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}
