//! Executes the taxonomy statements: `CREATE SCHEMA VERSION`, `SHOW SCHEMAS`, `SHOW SCHEMA`,
//! `MIGRATE`.

use super::*;

impl QuiverContext {
    /// Run one statement of this family.
    pub(super) async fn exec_schema(&self, st: Statement) -> Result<Vec<RecordBatch>> {
        let sh = &self.shared;
        match st {
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
            other => Err(misrouted(&other)),
        }
    }

    /// `MIGRATE ds TO SCHEMA 'v' [USING (…)]`: one commit that moves every label onto schema
    /// `v` (class renames of `v`'s delta and of the mapping applied, `schema_version` set).
    /// Labels whose class has no place in `v` are reported in the error and nothing is
    /// written.
    pub(super) async fn migrate(
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
}
