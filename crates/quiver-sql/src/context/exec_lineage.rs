//! Executes the lineage statements: `CREATE RUN`, `CREATE MODEL`,
//! `INSERT INTO quiver.predictions`.

use super::*;

impl QuiverContext {
    /// Run one statement of this family.
    pub(super) async fn exec_lineage(&self, st: Statement) -> Result<Vec<RecordBatch>> {
        let sh = &self.shared;
        match st {
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
            other => Err(misrouted(&other)),
        }
    }

    /// `INSERT INTO quiver.predictions [(cols)] VALUES …|SELECT …`: rows with `model`,
    /// `sample_id`, `class`, `score`, stored as one prediction batch per model.
    pub(super) async fn insert_predictions(
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
}
