//! The values erased rows read back with.
//!
//! An erased row keeps its key columns (layouts address rows by position and key) and
//! every other column is replaced: by NULL where the column is nullable; where it is not,
//! by a value of its type that reads as erased — the text [`ERASED_TEXT`] for strings,
//! empty bytes, zeros (numbers, decimals, times, timestamps at the epoch), `false`, empty
//! lists, structs of such values. The same rows erase to the same values, so rows that
//! were equal before an erasure are equal after it.

use std::sync::Arc;

use arrow::array::{
    make_array, new_null_array, Array, ArrayData, ArrayRef, BooleanArray, RecordBatch, StringArray,
};
use arrow::buffer::Buffer;
use arrow::compute::kernels::zip::zip;
use arrow::datatypes::{DataType, Field};

use crate::error::{CoreError, Result};

/// The text erased string values read as (in columns that cannot be NULL).
pub const ERASED_TEXT: &str = "<erased>";

/// `len` erased values of `field` (see the module docs); an error naming the column for a
/// type without an erased value.
pub fn erased_values(dataset: &str, field: &Field, len: usize) -> Result<ArrayRef> {
    if field.is_nullable() {
        return Ok(new_null_array(field.data_type(), len));
    }
    not_null(field.data_type(), len).ok_or_else(|| CoreError::CannotErase {
        dataset: dataset.to_string(),
        reason: format!(
            "column '{}' is NOT NULL and of type {}, which has no erased value (make it \
             nullable, or erase whole groups with DELETE in new versions)",
            field.name(),
            field.data_type()
        ),
    })
}

fn not_null(dt: &DataType, len: usize) -> Option<ArrayRef> {
    use DataType as D;
    Some(match dt {
        D::Utf8 => Arc::new(StringArray::from(vec![ERASED_TEXT; len])),
        D::LargeUtf8 | D::Utf8View => {
            arrow::compute::cast(&StringArray::from(vec![ERASED_TEXT; len]), dt).ok()?
        }
        D::Null => new_null_array(dt, len),
        D::Boolean => Arc::new(BooleanArray::from(vec![false; len])),
        D::Binary | D::LargeBinary | D::BinaryView => {
            let empty = arrow::array::BinaryArray::from_iter_values(std::iter::repeat_n(
                b"".as_slice(),
                len,
            ));
            arrow::compute::cast(&empty, dt).ok()?
        }
        D::List(_) | D::LargeList(_) => {
            let width = if matches!(dt, D::List(_)) { 4 } else { 8 };
            let child = match dt {
                D::List(f) | D::LargeList(f) => f.data_type().clone(),
                _ => return None,
            };
            let data = ArrayData::builder(dt.clone())
                .len(len)
                .add_buffer(Buffer::from(vec![0u8; (len + 1) * width]))
                .add_child_data(ArrayData::new_empty(&child))
                .build()
                .ok()?;
            make_array(data)
        }
        D::Struct(fields) => {
            let children: Option<Vec<ArrayData>> = fields
                .iter()
                .map(|f| {
                    let a = if f.is_nullable() {
                        new_null_array(f.data_type(), len)
                    } else {
                        not_null(f.data_type(), len)?
                    };
                    Some(a.to_data())
                })
                .collect();
            let data = ArrayData::builder(dt.clone())
                .len(len)
                .child_data(children?)
                .build()
                .ok()?;
            make_array(data)
        }
        D::Dictionary(_, value) => {
            let values = not_null(value, len)?;
            arrow::compute::cast(&values, dt).ok()?
        }
        D::FixedSizeBinary(w) => {
            let data = ArrayData::builder(dt.clone())
                .len(len)
                .add_buffer(Buffer::from(vec![0u8; len * (*w).max(0) as usize]))
                .build()
                .ok()?;
            make_array(data)
        }
        // numbers, decimals, dates, times, timestamps, durations, intervals: zeros
        dt if dt.is_primitive() => {
            let width = dt.primitive_width()?;
            let data = ArrayData::builder(dt.clone())
                .len(len)
                .add_buffer(Buffer::from(vec![0u8; len * width]))
                .build()
                .ok()?;
            make_array(data)
        }
        _ => return None,
    })
}

/// `batch` with the rows where `mask` is true erased: every column but `keep` (the key
/// columns) replaced by its erased values. Row count and order are unchanged.
pub fn erase_rows(
    dataset: &str,
    batch: &RecordBatch,
    mask: &BooleanArray,
    keep: &[usize],
) -> Result<RecordBatch> {
    let schema = batch.schema();
    let mut cols = Vec::with_capacity(batch.num_columns());
    for (i, col) in batch.columns().iter().enumerate() {
        if keep.contains(&i) {
            cols.push(col.clone());
            continue;
        }
        let erased = erased_values(dataset, schema.field(i), batch.num_rows())?;
        cols.push(zip(mask, &erased, col)?);
    }
    Ok(RecordBatch::try_new(schema, cols)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::AsArray;

    /// Every demo column erases to a value of its type; nullable ones to NULL; NOT NULL
    /// strings read as erased.
    #[test]
    fn demo_columns_erase() {
        let batch = crate::demo::DemoLabels::new(10, 1).next().expect("a batch");
        let mask = BooleanArray::from(
            (0..batch.num_rows())
                .map(|i| i % 2 == 0)
                .collect::<Vec<_>>(),
        );
        let out = erase_rows("demo", &batch, &mask, &[0, 1]).expect("erase");
        assert_eq!(out.num_rows(), batch.num_rows());
        assert_eq!(out.column(0), batch.column(0));
        let class = out
            .column_by_name("class")
            .expect("class")
            .as_string::<i32>();
        assert_eq!(class.value(0), ERASED_TEXT);
        assert_ne!(class.value(1), ERASED_TEXT);
        let score = out.column_by_name("score").expect("score");
        assert!(score.is_null(0) && !score.is_null(1));
        assert_eq!(out.schema(), batch.schema());
    }

    /// NOT NULL values of many types, including nested ones.
    #[test]
    fn not_null_values_of_many_types() {
        use arrow::datatypes::{Fields, TimeUnit};
        let types = [
            DataType::Int8,
            DataType::UInt64,
            DataType::Float64,
            DataType::Decimal128(10, 2),
            DataType::Date32,
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            DataType::Utf8View,
            DataType::LargeBinary,
            DataType::FixedSizeBinary(32),
            DataType::Boolean,
            DataType::List(Arc::new(Field::new("item", DataType::Int32, true))),
            DataType::Struct(Fields::from(vec![
                Field::new("a", DataType::Utf8, false),
                Field::new("b", DataType::Float32, true),
            ])),
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
        ];
        for dt in types {
            let f = Field::new("c", dt.clone(), false);
            let a = erased_values("ds", &f, 3).unwrap_or_else(|e| panic!("{dt}: {e}"));
            assert_eq!(
                (a.len(), a.data_type(), a.null_count()),
                (3, &dt, 0),
                "{dt}"
            );
        }
        let union = DataType::Union(
            arrow::datatypes::UnionFields::from_fields(vec![Field::new("i", DataType::Int8, true)]),
            arrow::datatypes::UnionMode::Dense,
        );
        let e = erased_values("ds", &Field::new("u", union, false), 1).expect_err("no value");
        assert!(e.to_string().contains("column 'u'"), "{e}");
    }
}
