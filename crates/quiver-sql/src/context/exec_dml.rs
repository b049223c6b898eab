//! Executes `INSERT`, `UPDATE` and `DELETE` on a dataset: the rows are computed by a query
//! over the branch head, conformed to the dataset schema and written through one write
//! transaction (the session's open one, or one of their own that commits at once).

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

    /// Apply a write to a branch: inside a transaction it joins it, otherwise it commits.
    pub(super) async fn apply(
        &self,
        ds: &Dataset,
        branch: &str,
        write: Write,
        message: &str,
    ) -> Result<()> {
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
    pub(super) async fn conform(
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

    pub(super) async fn dml(&self, st: SqlStatement) -> Result<Vec<RecordBatch>> {
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

/// A write to apply to a branch.
pub(super) enum Write {
    Append(arrow::array::RecordBatch),
    Upsert(arrow::array::RecordBatch),
    Delete(arrow::array::RecordBatch),
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

pub(super) fn is_string(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    )
}

/// Cast a written column to the dataset's type, refusing conversions that hide mistakes
/// (a string into a number, a number into a string).
pub(super) fn conform_column(dataset: &str, field: &Field, col: &ArrayRef) -> Result<ArrayRef> {
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
pub(super) fn key_columns_as_stored(ds: &Dataset, keys: RecordBatch) -> Result<RecordBatch> {
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
