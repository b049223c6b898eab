//! Parquet and CSV imports: the schema comes from the file (Parquet) or is inferred from
//! the whole file (CSV, with a header row); the key columns are named by the caller.

use std::path::Path;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::{
    check_unique_keys, column_names, invalid, io_err, write_import, ImportOptions, ImportReport,
    Parsed,
};
use crate::catalog::Catalog;
use crate::encoding;
use crate::error::Result;

/// Key columns of a tabular import.
#[derive(Debug, Clone)]
pub struct TableKeys {
    pub group_key: String,
    pub label_key: String,
}

impl Default for TableKeys {
    fn default() -> Self {
        TableKeys {
            group_key: "sample_id".into(),
            label_key: "label_id".into(),
        }
    }
}

/// Read a Parquet file into batches.
pub fn read_parquet(path: &Path) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let file = std::fs::File::open(path).map_err(|e| io_err(path, e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| invalid(path, None, format!("not a readable Parquet file: {e}")))?;
    let schema = builder.schema().clone();
    let reader = builder
        .with_batch_size(64 * 1024)
        .build()
        .map_err(|e| invalid(path, None, format!("not a readable Parquet file: {e}")))?;
    let mut batches = Vec::new();
    let mut rows = 0usize;
    for b in reader {
        let b = b.map_err(|e| invalid(path, Some(format!("after row {rows}")), e.to_string()))?;
        rows += b.num_rows();
        batches.push(b);
    }
    Ok((schema, batches))
}

/// Read a CSV file with a header row; the schema is inferred from every record.
pub fn read_csv(path: &Path) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let open = || std::fs::File::open(path).map_err(|e| io_err(path, e));
    let format = arrow::csv::reader::Format::default().with_header(true);
    let (schema, _) = format
        .infer_schema(open()?, None)
        .map_err(|e| invalid(path, None, format!("cannot infer the CSV schema: {e}")))?;
    let schema = Arc::new(schema);
    let reader = arrow::csv::ReaderBuilder::new(schema.clone())
        .with_header(true)
        .with_batch_size(64 * 1024)
        .build(open()?)
        .map_err(|e| invalid(path, None, e.to_string()))?;
    let mut batches = Vec::new();
    let mut rows = 0usize;
    for b in reader {
        // arrow-csv errors name the line; add where the batch started as a fallback
        let b = b.map_err(|e| {
            invalid(
                path,
                Some(format!("a record after data row {rows}")),
                e.to_string(),
            )
        })?;
        rows += b.num_rows();
        batches.push(b);
    }
    Ok((schema, batches))
}

fn check_keys(path: &Path, schema: &Schema, keys: &TableKeys) -> Result<()> {
    for (flag, col) in [
        ("group key", &keys.group_key),
        ("label key", &keys.label_key),
    ] {
        let f = schema.field_with_name(col).map_err(|_| {
            invalid(
                path,
                None,
                format!(
                    "the {flag} column '{col}' is not in the file (columns: {})",
                    column_names(schema)
                ),
            )
        })?;
        if !encoding::is_key_type(f.data_type()) {
            return Err(invalid(
                path,
                None,
                format!(
                    "the {flag} column '{col}' has type {} (use an integer or string column)",
                    f.data_type()
                ),
            ));
        }
    }
    if keys.group_key == keys.label_key {
        return Err(invalid(
            path,
            None,
            "the group key and the label key must be different columns",
        ));
    }
    Ok(())
}

async fn import_table(
    cat: &Catalog,
    path: &Path,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    keys: &TableKeys,
    opts: &ImportOptions,
    (row_name, first_row): (&str, usize),
) -> Result<ImportReport> {
    check_keys(path, &schema, keys)?;
    check_unique_keys(
        &batches,
        &keys.group_key,
        &keys.label_key,
        path,
        row_name,
        first_row,
    )?;
    let parsed = Parsed {
        schema,
        group_key: keys.group_key.clone(),
        label_key: keys.label_key.clone(),
        batches,
        source: path.display().to_string(),
        assets: 0,
        asset_bytes: 0,
    };
    write_import(cat, opts, parsed).await
}

/// Import a Parquet file into a dataset branch as one commit.
pub async fn import_parquet(
    cat: &Catalog,
    path: &Path,
    keys: &TableKeys,
    opts: &ImportOptions,
) -> Result<ImportReport> {
    // sorted input into an empty version streams; anything else is read whole
    if let super::bulk::Streamed::Done(r) =
        super::bulk::stream_parquet(cat, path, keys, opts).await?
    {
        return Ok(*r);
    }
    opts.progress.phase("reading Parquet", None);
    let (schema, batches) = read_parquet(path)?;
    import_table(cat, path, schema, batches, keys, opts, ("row", 0)).await
}

/// Import a CSV file (header row required) into a dataset branch as one commit.
pub async fn import_csv(
    cat: &Catalog,
    path: &Path,
    keys: &TableKeys,
    opts: &ImportOptions,
) -> Result<ImportReport> {
    opts.progress.phase("reading CSV", None);
    let (schema, batches) = read_csv(path)?;
    import_table(cat, path, schema, batches, keys, opts, ("line", 2)).await
}
