//! Bringing written rows to a dataset's schema: the one place every write path (SQL DML,
//! Flight DoPut and bulk ingest, the Python client's writes, file imports, and the write
//! transaction itself) decides which columns and types it accepts.
//!
//! Columns are matched by name and put in the dataset's order. String columns may come in
//! any of Arrow's layouts (`Utf8`, `LargeUtf8`, `Utf8View`), binary columns likewise, key
//! columns included: they are the same values, stored in the dataset's layout. What else
//! converts is set by [`ConformRules`].

use std::sync::Arc;

use arrow::array::{new_null_array, ArrayRef, RecordBatch};
use arrow::compute::{cast_with_options, CastOptions};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::error::{CoreError, Result};

/// The implicit group key of a table created without a primary key: a unique id is
/// generated for every row written without one (Dolt's keyless tables, by another route).
pub const IMPLICIT_ROW_ID: &str = "_quiver_row_id";
/// The implicit label key of a table whose primary key has fewer than two columns: one
/// label per group, numbered 0 when a row is written without it.
pub const IMPLICIT_LABEL: &str = "_quiver_label";

/// `batch` with the implicit key columns of `schema` filled where a row has none: a fresh
/// unique id in [`IMPLICIT_ROW_ID`], 0 in [`IMPLICIT_LABEL`]. Batches of datasets without
/// them are returned as they are.
pub fn fill_implicit_keys(schema: &SchemaRef, batch: &RecordBatch) -> Result<RecordBatch> {
    use arrow::array::{Array, Int64Array, StringArray};
    let has = |n: &str| schema.field_with_name(n).is_ok();
    if !has(IMPLICIT_ROW_ID) && !has(IMPLICIT_LABEL) {
        return Ok(batch.clone());
    }
    let rows = batch.num_rows();
    let mut fields: Vec<Field> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    let mut cols: Vec<ArrayRef> = batch.columns().to_vec();
    let mut put = |name: &str,
                   dt: DataType,
                   fill: &dyn Fn(Option<&ArrayRef>) -> Result<ArrayRef>|
     -> Result<()> {
        match fields.iter().position(|f| f.name() == name) {
            Some(i) => {
                if cols[i].null_count() > 0 || cols[i].data_type() == &DataType::Null {
                    cols[i] = fill(Some(&cols[i]))?;
                    fields[i] = Field::new(name, dt, false);
                }
            }
            None => {
                cols.push(fill(None)?);
                fields.push(Field::new(name, dt, false));
            }
        }
        Ok(())
    };
    if has(IMPLICIT_ROW_ID) {
        let prefix = row_id_prefix();
        put(IMPLICIT_ROW_ID, DataType::Utf8, &|old| {
            let old = match old {
                Some(a) if a.data_type() != &DataType::Null => Some(cast_with_options(
                    a,
                    &DataType::Utf8,
                    &CastOptions::default(),
                )?),
                _ => None,
            };
            let strings = old
                .as_ref()
                .and_then(|a| a.as_any().downcast_ref::<StringArray>());
            let ids: StringArray = (0..rows)
                .map(|i| match strings {
                    Some(s) if s.is_valid(i) => Some(s.value(i).to_string()),
                    _ => Some(format!("{prefix}{i:08x}")),
                })
                .collect();
            Ok(Arc::new(ids) as ArrayRef)
        })?;
    }
    if has(IMPLICIT_LABEL) {
        put(IMPLICIT_LABEL, DataType::Int64, &|old| {
            let old = match old {
                Some(a) if a.data_type() != &DataType::Null => Some(cast_with_options(
                    a,
                    &DataType::Int64,
                    &CastOptions::default(),
                )?),
                _ => None,
            };
            let ints = old
                .as_ref()
                .and_then(|a| a.as_any().downcast_ref::<Int64Array>());
            let v: Int64Array = (0..rows)
                .map(|i| match ints {
                    Some(a) if a.is_valid(i) => Some(a.value(i)),
                    _ => Some(0),
                })
                .collect();
            Ok(Arc::new(v) as ArrayRef)
        })?;
    }
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)?)
}

/// 16 hex characters unique to this call: blake3 of the time, the process and a counter.
fn row_id_prefix() -> String {
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut h = blake3::Hasher::new();
    h.update(b"quiver/row-id/1");
    h.update(&nanos.to_le_bytes());
    h.update(&std::process::id().to_le_bytes());
    h.update(&n.to_le_bytes());
    h.finalize().to_hex()[..16].to_string()
}

/// Which type conversions a write accepts beyond another layout of the same values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Casts {
    /// Only another layout of the same values (string and binary layouts). For rows a
    /// planner already cast, such as SQL's, and for the write transaction's final check.
    Layout,
    /// PostgreSQL-style assignment casts: numbers among themselves, strings among
    /// themselves, strings and timestamps into temporal columns, nulls into anything. A
    /// string is never silently read as a number, nor a number written as a string.
    Assignment,
    /// Any conversion Arrow makes without losing a value (an unconvertible value is an
    /// error, never a null). For uploads and files whose types a reader inferred.
    Any,
}

/// How [`conform`] treats a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConformRules {
    /// The conversions accepted.
    pub casts: Casts,
    /// Whether a nullable column the batch lacks is written as nulls (else it is an error).
    pub fill_missing: bool,
}

impl ConformRules {
    /// Rows a planner already cast to the dataset's types: layouts only, every column given.
    pub const PLANNED: ConformRules = ConformRules {
        casts: Casts::Layout,
        fill_missing: false,
    };
    /// Rows from a client or a file: any lossless conversion, missing nullable columns null.
    pub const UPLOAD: ConformRules = ConformRules {
        casts: Casts::Any,
        fill_missing: true,
    };
    /// Values a user typed: assignment casts, missing nullable columns null.
    pub const ASSIGNMENT: ConformRules = ConformRules {
        casts: Casts::Assignment,
        fill_missing: true,
    };
}

/// Whether `a` and `b` hold the same values in another layout: the string types (`Utf8`,
/// `LargeUtf8`, `Utf8View`) among themselves, and likewise the binary types.
pub fn same_values(a: &DataType, b: &DataType) -> bool {
    use DataType::*;
    let strings = |t: &DataType| matches!(t, Utf8 | LargeUtf8 | Utf8View);
    let binaries = |t: &DataType| matches!(t, Binary | LargeBinary | BinaryView);
    (strings(a) && strings(b)) || (binaries(a) && binaries(b))
}

/// Whether `rules` let a column of type `from` be written into a column of type `to`
/// (the values may still fail to convert; [`conform`] reports that).
pub fn castable(from: &DataType, to: &DataType, casts: Casts) -> bool {
    if from == to || same_values(from, to) || *from == DataType::Null {
        return true;
    }
    let string =
        |t: &DataType| matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View);
    match casts {
        Casts::Layout => false,
        Casts::Assignment => {
            (from.is_numeric() && to.is_numeric())
                || (string(from) && to.is_temporal())
                || (from.is_temporal() && to.is_temporal())
                || (from == &DataType::Boolean && to == &DataType::Boolean)
        }
        Casts::Any => arrow::compute::can_cast_types(from, to),
    }
}

/// `batch` with the dataset's schema: columns matched by name in the dataset's order,
/// converted as `rules` allow, non-nullable columns checked. Errors name the dataset, the
/// column and both types.
pub fn conform(
    dataset: &str,
    schema: &SchemaRef,
    batch: &RecordBatch,
    rules: ConformRules,
) -> Result<RecordBatch> {
    let mismatch = |reason: String| CoreError::SchemaMismatch {
        dataset: dataset.into(),
        reason,
    };
    let filled = fill_implicit_keys(schema, batch)?;
    let batch = &filled;
    if batch.schema().fields() == schema.fields() {
        for (f, c) in schema.fields().iter().zip(batch.columns()) {
            check_nulls(dataset, f, c)?;
        }
        return Ok(batch.clone());
    }
    for f in batch.schema().fields() {
        if schema.field_with_name(f.name()).is_err() {
            return Err(CoreError::ColumnNotFound {
                dataset: dataset.into(),
                column: f.name().clone(),
            });
        }
    }
    let mut cols = Vec::with_capacity(schema.fields().len());
    for f in schema.fields() {
        let col = match batch.column_by_name(f.name()) {
            Some(c) => conform_column(dataset, f, c, rules.casts)?,
            None if rules.fill_missing && f.is_nullable() => {
                new_null_array(f.data_type(), batch.num_rows())
            }
            None if rules.fill_missing => {
                return Err(mismatch(format!(
                    "column '{}' is missing and may not be null",
                    f.name()
                )))
            }
            None => return Err(mismatch(format!("column '{}' is missing", f.name()))),
        };
        check_nulls(dataset, f, &col)?;
        cols.push(col);
    }
    Ok(RecordBatch::try_new(schema.clone(), cols)?)
}

/// One column converted to `field`'s type as `casts` allow.
pub fn conform_column(
    dataset: &str,
    field: &Field,
    col: &ArrayRef,
    casts: Casts,
) -> Result<ArrayRef> {
    let (from, to) = (col.data_type(), field.data_type());
    if from == to {
        return Ok(col.clone());
    }
    let mismatch = |detail: String| CoreError::SchemaMismatch {
        dataset: dataset.into(),
        reason: format!(
            "column '{}' expects {to} but got {from}{detail}",
            field.name()
        ),
    };
    if !castable(from, to, casts) {
        return Err(mismatch(String::new()));
    }
    let opts = CastOptions {
        safe: false,
        ..Default::default()
    };
    cast_with_options(col, to, &opts)
        .map_err(|e| mismatch(format!(" values that do not convert ({e})")))
}

fn check_nulls(dataset: &str, f: &Field, col: &ArrayRef) -> Result<()> {
    if !f.is_nullable() && col.null_count() > 0 {
        return Err(CoreError::SchemaMismatch {
            dataset: dataset.into(),
            reason: format!("column '{}' may not contain nulls", f.name()),
        });
    }
    Ok(())
}

/// The named columns of `batch` (e.g. the key columns of rows to delete) in the dataset's
/// types, as `rules` allow; the batch keeps its own column set and order.
pub fn conform_columns(
    dataset: &str,
    schema: &Schema,
    batch: &RecordBatch,
    casts: Casts,
) -> Result<RecordBatch> {
    let mut fields = Vec::with_capacity(batch.num_columns());
    let mut cols = Vec::with_capacity(batch.num_columns());
    for (f, c) in batch.schema().fields().iter().zip(batch.columns()) {
        let stored = schema
            .field_with_name(f.name())
            .map_err(|_| CoreError::ColumnNotFound {
                dataset: dataset.into(),
                column: f.name().clone(),
            })?;
        cols.push(conform_column(dataset, stored, c, casts)?);
        fields.push(stored.clone());
    }
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use arrow::array::{Float64Array, Int64Array, StringArray, StringViewArray};

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, false),
            Field::new("score", DataType::Float32, true),
            Field::new("note", DataType::Utf8, true),
        ]))
    }

    #[test]
    fn view_and_large_strings_are_accepted_for_keys() {
        let s = Arc::new(Schema::new(vec![
            Field::new("score", DataType::Float32, true),
            Field::new("id", DataType::Utf8View, false),
        ]));
        let b = RecordBatch::try_new(
            s,
            vec![
                Arc::new(arrow::array::Float32Array::from(vec![1.0])),
                Arc::new(StringViewArray::from(vec!["img-1"])),
            ],
        )
        .unwrap();
        let out = conform("d", &schema(), &b, ConformRules::PLANNED);
        assert!(out.is_err(), "PLANNED does not fill 'note'");
        let out = conform("d", &schema(), &b, ConformRules::ASSIGNMENT).unwrap();
        assert_eq!(out.schema(), schema());
        assert_eq!(out.column(2).null_count(), 1);
    }

    #[test]
    fn assignment_refuses_numbers_into_strings_and_any_converts_them() {
        let s = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, false),
            Field::new("note", DataType::Float64, true),
        ]));
        let b = RecordBatch::try_new(
            s,
            vec![
                Arc::new(StringArray::from(vec!["a"])),
                Arc::new(Float64Array::from(vec![2.5])),
            ],
        )
        .unwrap();
        let e = conform("d", &schema(), &b, ConformRules::ASSIGNMENT)
            .unwrap_err()
            .to_string();
        assert!(e.contains("'note' expects Utf8 but got Float64"), "{e}");
        let out = conform("d", &schema(), &b, ConformRules::UPLOAD).unwrap();
        assert_eq!(
            out.column(2)
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap()
                .value(0),
            "2.5"
        );
    }

    #[test]
    fn unknown_columns_nulls_in_keys_and_bad_values_are_errors() {
        let s = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, true),
            Field::new("other", DataType::Int64, true),
        ]));
        let b = RecordBatch::try_new(
            s,
            vec![
                Arc::new(StringArray::from(vec![Some("a")])),
                Arc::new(Int64Array::from(vec![1])),
            ],
        )
        .unwrap();
        let e = conform("d", &schema(), &b, ConformRules::UPLOAD).unwrap_err();
        assert!(matches!(e, CoreError::ColumnNotFound { .. }), "{e}");
        let s = Arc::new(Schema::new(vec![Field::new("id", DataType::Utf8, true)]));
        let b =
            RecordBatch::try_new(s, vec![Arc::new(StringArray::from(vec![None::<&str>]))]).unwrap();
        let e = conform("d", &schema(), &b, ConformRules::UPLOAD)
            .unwrap_err()
            .to_string();
        assert!(e.contains("'id' may not contain nulls"), "{e}");
        let s = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, false),
            Field::new("score", DataType::Utf8, true),
        ]));
        let b = RecordBatch::try_new(
            s,
            vec![
                Arc::new(StringArray::from(vec!["a"])),
                Arc::new(StringArray::from(vec!["not a number"])),
            ],
        )
        .unwrap();
        let e = conform("d", &schema(), &b, ConformRules::UPLOAD)
            .unwrap_err()
            .to_string();
        assert!(e.contains("do not convert"), "{e}");
    }
}
