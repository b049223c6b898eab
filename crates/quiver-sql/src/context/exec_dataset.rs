//! Executes `CREATE DATASET`, `CREATE TABLE`, `DROP TABLE` / `DROP DATASET` and `SHOW DATASETS`.

use super::*;

impl QuiverContext {
    /// Run one statement of this family.
    pub(super) async fn exec_dataset(&self, st: Statement) -> Result<Vec<RecordBatch>> {
        let sh = &self.shared;
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
            Statement::ShowDatasets => {
                let b = crate::system::system_table(&sh.catalog, "datasets").await?;
                Ok(b.into_iter().collect())
            }
            Statement::AlterMetadata {
                dataset,
                column,
                set,
                unset,
            } => {
                let ds = sh.dataset(&dataset).await?;
                let changes: Vec<(String, Option<serde_json::Value>)> = set
                    .iter()
                    .map(|(k, v)| (k.clone(), Some(v.to_json())))
                    .chain(unset.iter().map(|k| (k.clone(), None)))
                    .collect();
                for (k, v) in &changes {
                    match &column {
                        None => ds.set_metadata(k, v.clone()).await?,
                        Some(c) => ds.set_column_metadata(c, k, v.clone()).await?,
                    }
                }
                Ok(vec![count_batch(changes.len() as u64)?])
            }
            Statement::ShowMetadata { dataset } => {
                let ds = sh.dataset(&dataset).await?;
                Ok(vec![metadata_batch(&ds).await?])
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
                    if let Ok(mut l) = sh.listed.lock() {
                        l.remove(n);
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
            other => Err(misrouted(&other)),
        }
    }

    /// Create dataset `name` with the columns of a SQL column list (planned in a private
    /// in-memory session) keyed on (`group_key`, `label_key`).
    pub(super) async fn create_dataset(
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
}

/// The metadata of a dataset as rows (column — NULL for the dataset itself —, key, value):
/// strings as they are, other values as JSON text.
async fn metadata_batch(ds: &Dataset) -> Result<RecordBatch> {
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut column: Vec<Option<String>> = Vec::new();
    let mut key = Vec::new();
    let mut value = Vec::new();
    for (k, v) in ds.metadata().await? {
        column.push(None);
        key.push(k);
        value.push(text(&v));
    }
    for f in ds.schema().fields() {
        for (k, v) in ds.column_metadata(f.name()).await? {
            column.push(Some(f.name().clone()));
            key.push(k);
            value.push(text(&v));
        }
    }
    let schema = Arc::new(Schema::new(vec![
        Field::new("column", DataType::Utf8, true),
        Field::new("key", DataType::Utf8, false),
        Field::new("value", DataType::Utf8, false),
    ]));
    Ok(RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(column)),
            Arc::new(StringArray::from(key)),
            Arc::new(StringArray::from(value)),
        ],
    )
    .map_err(DataFusionError::from)?)
}
