//! Corrupt packs are never served through SQL: single bytes flipped in a pack on local disk
//! make `SELECT *`, a projection and a filtered query either fail with a corruption error
//! naming the pack (findable by downcast in the DataFusion error, as the Flight layer sees
//! it) or — only when the query never reads the flipped bytes — return exactly the rows of
//! the clean pack. Never different rows with success.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::util::pretty::pretty_format_batches;
use quiver_core::{Catalog, CoreError, DatasetOptions};
use quiver_sql::context::QuiverContext;
use quiver_sql::SqlError;

const QUERIES: [&str; 3] = [
    "SELECT * FROM labels ORDER BY sample_id, label_id",
    "SELECT sample_id, score FROM labels ORDER BY sample_id, label_id",
    "SELECT * FROM labels WHERE score > 0.9 ORDER BY sample_id, label_id",
];

fn labels(groups: usize, per: usize) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("sample_id", DataType::Utf8, false),
        Field::new("label_id", DataType::Int64, false),
        Field::new("class", DataType::Utf8, true),
        Field::new("score", DataType::Float64, true),
    ]));
    let n = groups * per;
    let s: Vec<String> = (0..n).map(|i| format!("s{:07}", i / per)).collect();
    let l: Vec<i64> = (0..n).map(|i| (i % per) as i64).collect();
    let c: Vec<&str> = (0..n).map(|i| ["car", "dog", "cat"][i % 3]).collect();
    let sc: Vec<f64> = (0..n).map(|i| ((i * 37) % 100) as f64 / 100.0).collect();
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(s)),
            Arc::new(Int64Array::from(l)),
            Arc::new(StringArray::from(c)),
            Arc::new(Float64Array::from(sc)),
        ],
    )
    .unwrap()
}

/// The only pack file of the catalog at `root`.
fn pack_file(root: &Path) -> PathBuf {
    let mut found = Vec::new();
    for d in std::fs::read_dir(root.join("objects/pack")).unwrap() {
        for f in std::fs::read_dir(d.unwrap().path()).unwrap() {
            found.push(f.unwrap().path());
        }
    }
    assert_eq!(found.len(), 1, "{found:?}");
    found.remove(0)
}

/// Run `q` on a fresh catalog and session (nothing cached): its rows as text, or the error.
async fn run(url: &str, q: &str) -> Result<String, SqlError> {
    let cat = Catalog::open(url).await?;
    let ctx = QuiverContext::new(cat).await?;
    let batches = ctx.sql(q).await?;
    Ok(pretty_format_batches(&batches)?.to_string())
}

/// The same query through plain DataFusion: the error a Flight stream would see.
async fn run_df(url: &str, q: &str) -> Result<usize, datafusion::error::DataFusionError> {
    let cat = Catalog::open(url).await.unwrap();
    let ctx = QuiverContext::new(cat).await.unwrap();
    let batches = ctx.session().sql(q).await?.collect().await?;
    Ok(batches.iter().map(|b| b.num_rows()).sum())
}

#[tokio::test]
async fn flipped_pack_bytes_fail_sql_reads_naming_the_pack() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().to_str().unwrap().to_string();
    let cat = Catalog::open(&url).await.unwrap();
    let ds = cat
        .create_dataset("labels", labels(1, 1).schema(), DatasetOptions::default())
        .await
        .unwrap();
    ds.append("main", &[labels(3_000, 3)], "load")
        .await
        .unwrap();
    let file = pack_file(dir.path());
    let rel = file
        .strip_prefix(dir.path())
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let clean = std::fs::read(&file).unwrap();
    let n = clean.len();
    // where column chunks (dictionary and data pages) end and page indexes begin
    let meta = parquet::file::metadata::ParquetMetaDataReader::new()
        .parse_and_finish(&bytes::Bytes::from(clean.clone()))
        .unwrap();
    let data_end = meta
        .row_groups()
        .iter()
        .flat_map(|rg| rg.columns())
        .map(|c| {
            let (start, len) = c.byte_range();
            start + len
        })
        .max()
        .unwrap() as usize;

    let mut expected = Vec::new();
    for q in QUERIES {
        expected.push(run(&url, q).await.unwrap());
    }

    let mut positions: Vec<usize> = (0..40).map(|i| 5 + i * (data_end - 10) / 40).collect();
    positions.extend([data_end + 3, (data_end + n) / 2, n - 30, n - 7, n - 2]);
    let mut errors = [0usize; 3];
    for &at in &positions {
        let mut bytes = clean.clone();
        bytes[at] ^= 0x04;
        std::fs::write(&file, &bytes).unwrap();
        for (qi, q) in QUERIES.iter().enumerate() {
            match run(&url, q).await {
                Ok(got) => {
                    assert_eq!(got, expected[qi], "flip at {at} of {n} served by {q}");
                    assert!(
                        qi > 0 || at >= data_end,
                        "flip at {at} in the data pages did not fail {q}"
                    );
                }
                Err(e) => {
                    let msg = e.to_string();
                    assert!(
                        matches!(&e, SqlError::Core(CoreError::Corrupt { what, .. }) if *what == rel),
                        "flip at {at}, {q}: expected corruption of {rel}, got {msg}"
                    );
                    assert!(!msg.contains(&url), "absolute path in {msg}");
                    errors[qi] += 1;
                }
            }
        }
        if at < data_end {
            let e = run_df(&url, QUERIES[0]).await.unwrap_err();
            let found = CoreError::find_corrupt(&e)
                .unwrap_or_else(|| panic!("flip at {at}: no corruption error in {e}"));
            assert!(
                matches!(found, CoreError::Corrupt { what, .. } if *what == rel),
                "{found}"
            );
        }
    }
    assert!(errors.iter().all(|&e| e > 0), "{errors:?}");
    std::fs::write(&file, &clean).unwrap();
    for (q, want) in QUERIES.iter().zip(&expected) {
        assert_eq!(&run(&url, q).await.unwrap(), want);
    }
}
