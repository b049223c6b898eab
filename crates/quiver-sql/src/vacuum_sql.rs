//! `VACUUM ds [RETAIN n DAYS|HOURS] [DRY RUN]`: runs [`quiver_core::Dataset::vacuum`] and
//! returns one row per kind of object: `kind, objects, bytes`, then a `total` row.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{ArrayRef, RecordBatch, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::error::DataFusionError;
use quiver_core::{Dataset, VacuumOptions};

use crate::error::Result;

/// Run VACUUM on `ds`; `retain_hours: None` keeps the default 7-day window.
pub async fn vacuum(
    ds: &Dataset,
    retain_hours: Option<u64>,
    dry_run: bool,
) -> Result<Vec<RecordBatch>> {
    let mut opts = VacuumOptions {
        dry_run,
        ..Default::default()
    };
    if let Some(h) = retain_hours {
        opts.retain = Duration::from_secs(h.saturating_mul(3600));
    }
    let r = ds.vacuum(&opts).await?;
    let mut kinds: Vec<String> = Vec::new();
    let (mut objects, mut bytes) = (Vec::new(), Vec::new());
    for (kind, removed) in r.kinds() {
        kinds.push(kind.to_string());
        objects.push(removed.count);
        bytes.push(removed.bytes);
    }
    kinds.push("total".into());
    objects.push(r.deleted());
    bytes.push(r.bytes_freed());
    let verb = if dry_run { "would_delete" } else { "deleted" };
    let schema = Arc::new(Schema::new(vec![
        Field::new("kind", DataType::Utf8, false),
        Field::new(verb, DataType::UInt64, false),
        Field::new("bytes", DataType::UInt64, false),
    ]));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(kinds)),
        Arc::new(UInt64Array::from(objects)),
        Arc::new(UInt64Array::from(bytes)),
    ];
    Ok(vec![
        RecordBatch::try_new(schema, cols).map_err(DataFusionError::from)?
    ])
}
