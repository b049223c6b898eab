//! `OPTIMIZE ds [ON BRANCH b] [FULL]`: runs [`quiver_core::Dataset::optimize`] and returns one
//! row describing what it did.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::error::DataFusionError;
use quiver_core::OptimizeReport;

use crate::error::Result;

/// The result row of OPTIMIZE.
pub fn report_batch(dataset: &str, branch: &str, r: &OptimizeReport) -> Result<Vec<RecordBatch>> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("dataset", DataType::Utf8, false),
        Field::new("branch", DataType::Utf8, false),
        Field::new("commit", DataType::Utf8, false),
        Field::new("deltas_folded", DataType::UInt64, false),
        Field::new("chunks_rewritten", DataType::UInt64, false),
        Field::new("chunks", DataType::UInt64, false),
        Field::new("rows_written", DataType::UInt64, false),
        Field::new("bytes_written", DataType::UInt64, false),
        Field::new("delta_groups", DataType::UInt64, false),
    ]));
    let u = |v: u64| -> ArrayRef { Arc::new(UInt64Array::from(vec![v])) };
    let s = |v: &str| -> ArrayRef { Arc::new(StringArray::from(vec![v.to_string()])) };
    let cols = vec![
        s(dataset),
        s(branch),
        s(&r.commit),
        u(r.deltas_folded),
        u(r.chunks_rewritten),
        u(r.chunks),
        u(r.rows_written),
        u(r.bytes_written),
        u(r.delta_groups),
    ];
    Ok(vec![
        RecordBatch::try_new(schema, cols).map_err(DataFusionError::from)?
    ])
}
