//! Flight SQL bulk ingest (`CommandStatementIngest`): what ADBC's `adbc_ingest`, pandas
//! `to_sql` over ADBC and BI tools' imports send.
//!
//! The uploaded batches go into branch `main` of the dataset named by the command's table,
//! as **one commit**, with the modes of the command's table definition options:
//!
//! | table exists? | option | what happens |
//! |---|---|---|
//! | no | `CREATE` | the dataset is created with the upload's schema and rows (one transaction: invisible until it commits). Its key is the default `(sample_id, label_id)`, which the upload must have; other tables are created first with `CREATE TABLE … PRIMARY KEY (group, label)` and then appended to. |
//! | no | `FAIL` / unspecified | `NOT_FOUND` |
//! | yes | `APPEND` | rows inserted (a key that exists is an error and nothing changes) |
//! | yes | `REPLACE` | every row of `main` replaced by the upload, as one commit: the dataset and its history stay (rows must fit its schema) |
//! | yes | `FAIL` / unspecified | `ALREADY_EXISTS` |
//!
//! Uploaded columns are matched by name and cast like DoPut writes. Temporary tables,
//! transactions and ingest options are not supported and refused, as GetSqlInfo says. A
//! read-only caller is refused before anything is read.

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::error::FlightError as ArrowFlightError;
use arrow_flight::sql::{CommandStatementIngest, TableExistsOption, TableNotExistOption};
use futures::TryStreamExt;
use quiver_core::{CoreError, DatasetOptions, WriteTxn};

use crate::auth::Caller;
use crate::error::{FlightError, Result};
use crate::server::{FlightDataStream, QuiverFlightSql};

/// What to do with an existing table, or a missing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    Create,
    Append,
    Replace,
}

fn upload_error(source: ArrowFlightError) -> FlightError {
    FlightError::Upload {
        what: "uploaded batches",
        source,
    }
}

impl QuiverFlightSql {
    /// DoPut `CommandStatementIngest` (see the module docs); the number of rows written.
    pub(crate) async fn ingest(
        &self,
        caller: &Caller,
        cmd: CommandStatementIngest,
        stream: FlightDataStream,
    ) -> Result<i64> {
        let table = cmd.table.clone();
        caller.require_write(&format!("bulk ingest into table '{table}'"))?;
        check_command(&cmd)?;
        let catalog = &self.inner.catalog;
        let exists = match catalog.dataset(&table).await {
            Ok(_) => true,
            Err(CoreError::DatasetNotFound(_)) => false,
            Err(e) => return Err(e.into()),
        };
        let opts = cmd.table_definition_options.unwrap_or_default();
        let plan = if exists {
            match TableExistsOption::try_from(opts.if_exists) {
                Ok(TableExistsOption::Append) => Plan::Append,
                Ok(TableExistsOption::Replace) => Plan::Replace,
                _ => return Err(CoreError::DatasetExists(table).into()),
            }
        } else {
            match TableNotExistOption::try_from(opts.if_not_exist) {
                Ok(TableNotExistOption::Create) => Plan::Create,
                _ => return Err(CoreError::DatasetNotFound(table).into()),
            }
        };
        let mut input =
            FlightRecordBatchStream::new_from_flight_data(stream.map_err(ArrowFlightError::from));
        // the first batch (or the end of the stream) tells the upload's schema
        let first = input.try_next().await.map_err(upload_error)?;
        let mut txn = match plan {
            Plan::Create => {
                let Some(schema) = first
                    .as_ref()
                    .map(|b| b.schema())
                    .or_else(|| input.schema().cloned())
                else {
                    return Err(FlightError::InvalidArgument(format!(
                        "bulk ingest into table '{table}': the upload has no schema"
                    )));
                };
                let (schema, key) = keyed_schema(&table, &schema)?;
                let opts = DatasetOptions {
                    group_key: key.0,
                    label_key: key.1,
                    author: caller.name.clone(),
                    ..Default::default()
                };
                catalog.begin_dataset(&table, schema, opts).await?
            }
            Plan::Append | Plan::Replace => {
                let ds = catalog.dataset(&table).await?.with_author(&caller.name);
                let mut txn = ds.begin(quiver_core::DEFAULT_BRANCH).await?;
                if plan == Plan::Replace {
                    self.delete_every_row(caller, &mut txn).await?;
                }
                txn
            }
        };
        let target = txn.dataset().schema();
        let mut rows = 0u64;
        let mut next = first;
        while let Some(batch) = next {
            if batch.num_rows() > 0 {
                let batch = crate::service::conform(&table, &target, &batch)?;
                rows += batch.num_rows() as u64;
                txn.append(&batch).await?;
            }
            next = input.try_next().await.map_err(upload_error)?;
        }
        if plan != Plan::Append || rows > 0 {
            let what = match plan {
                Plan::Create => "create",
                Plan::Append => "append",
                Plan::Replace => "replace",
            };
            txn.commit(&format!(
                "bulk ingest ({what}) of {rows} rows over Flight SQL"
            ))
            .await?;
        }
        Ok(rows as i64)
    }

    /// Delete every row of the transaction's base version (by group key).
    async fn delete_every_row(&self, caller: &Caller, txn: &mut WriteTxn) -> Result<()> {
        let ds = txn.dataset();
        let group = ds.config().group_key.clone();
        let sql = format!(
            "SELECT DISTINCT {} FROM {}",
            quote(&group),
            quote(&format!(
                "{}@version:{}",
                ds.config().name,
                txn.base_commit().id.to_hex()
            ))
        );
        let key_field = ds.schema().field_with_name(&group)?.clone();
        let key_schema = std::sync::Arc::new(Schema::new(vec![key_field.clone()]));
        let ctx = self.session(caller).await?;
        for k in ctx.sql(&sql).await? {
            // the session reads strings as views; the dataset's key has its own type
            let col = arrow::compute::cast(k.column(0), key_field.data_type())?;
            let keys = arrow::array::RecordBatch::try_new(key_schema.clone(), vec![col])?;
            txn.delete(&keys).await?;
        }
        Ok(())
    }
}

fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// Refuse what this server does not do (GetSqlInfo says so too).
fn check_command(cmd: &CommandStatementIngest) -> Result<()> {
    let refuse = |why: String| {
        Err(FlightError::InvalidArgument(format!(
            "bulk ingest into table '{}': {why}",
            cmd.table
        )))
    };
    if cmd.table.is_empty() {
        return refuse("no table named".into());
    }
    if let Some(c) = cmd.catalog.as_deref().filter(|c| !c.is_empty()) {
        if c != "datafusion" {
            return refuse(format!("catalog '{c}' does not exist (use 'datafusion')"));
        }
    }
    if let Some(s) = cmd.schema.as_deref().filter(|s| !s.is_empty()) {
        if s != "public" {
            return refuse(format!(
                "schema '{s}' does not take tables (datasets are in schema 'public')"
            ));
        }
    }
    if cmd.temporary {
        return refuse("temporary tables are not supported".into());
    }
    if cmd.transaction_id.is_some() {
        return refuse("transactions are not supported: an ingest is one commit".into());
    }
    if let Some(k) = cmd.options.keys().next() {
        return refuse(format!("ingest option '{k}' is not supported"));
    }
    Ok(())
}

/// The schema of a dataset created from an upload, and its key: the default key columns
/// `(sample_id, label_id)` when the upload has both (they become `NOT NULL`), else the
/// implicit key of a keyless table (`_quiver_row_id`, `_quiver_label`, generated for every
/// row written without them), so any table a client ingests is versioned.
fn keyed_schema(table: &str, upload: &SchemaRef) -> Result<(SchemaRef, (String, String))> {
    let defaults = DatasetOptions::default();
    let (g, l) = (defaults.group_key, defaults.label_key);
    let keyed = upload.field_with_name(&g).is_ok() && upload.field_with_name(&l).is_ok();
    if !keyed {
        use quiver_core::conform::{IMPLICIT_LABEL, IMPLICIT_ROW_ID};
        let mut fields: Vec<Field> = upload
            .fields()
            .iter()
            .filter(|f| f.name() != IMPLICIT_ROW_ID && f.name() != IMPLICIT_LABEL)
            .map(|f| f.as_ref().clone())
            .collect();
        if fields.is_empty() {
            return Err(FlightError::InvalidArgument(format!(
                "bulk ingest cannot create table '{table}': the upload has no columns"
            )));
        }
        fields.push(Field::new(IMPLICIT_ROW_ID, DataType::Utf8, false));
        fields.push(Field::new(IMPLICIT_LABEL, DataType::Int64, false));
        return Ok((
            std::sync::Arc::new(Schema::new_with_metadata(fields, upload.metadata().clone())),
            (IMPLICIT_ROW_ID.to_string(), IMPLICIT_LABEL.to_string()),
        ));
    }
    let fields: Vec<Field> = upload
        .fields()
        .iter()
        .map(|f| {
            let f = f.as_ref().clone();
            if f.name() == &g || f.name() == &l {
                f.with_nullable(false)
            } else {
                f
            }
        })
        .collect();
    Ok((
        std::sync::Arc::new(Schema::new_with_metadata(fields, upload.metadata().clone())),
        (g, l),
    ))
}
