use std::sync::Arc;

use arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use quiver_core::{Catalog, Dataset, DatasetOptions};

pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("sample_id", DataType::Utf8, false),
        Field::new("label_id", DataType::Int64, false),
        Field::new("class", DataType::Utf8, true),
        Field::new("score", DataType::Float64, true),
    ]))
}

/// Labels: (sample, label, class, score).
pub fn batch(rows: &[(&str, i64, &str, f64)]) -> RecordBatch {
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(StringArray::from(
                rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            )),
            Arc::new(Int64Array::from(
                rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(
                rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            )),
            Arc::new(Float64Array::from(
                rows.iter().map(|r| r.3).collect::<Vec<_>>(),
            )),
        ],
    )
    .unwrap()
}

/// `groups` samples with `per` labels each; sample i named `s{i:07}`.
pub fn synthetic(groups: usize, per: usize, salt: f64) -> RecordBatch {
    let mut s = Vec::new();
    let mut l = Vec::new();
    let mut c = Vec::new();
    let mut sc = Vec::new();
    for g in 0..groups {
        for j in 0..per {
            s.push(format!("s{g:07}"));
            l.push(j as i64);
            c.push(["car", "person", "dog", "cat"][(g + j) % 4]);
            sc.push(((g * 7 + j) % 100) as f64 / 100.0 + salt);
        }
    }
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(StringArray::from(s)),
            Arc::new(Int64Array::from(l)),
            Arc::new(StringArray::from(c)),
            Arc::new(Float64Array::from(sc)),
        ],
    )
    .unwrap()
}

pub async fn new_dataset(url: &str) -> (Catalog, Dataset) {
    let cat = Catalog::open(url).await.unwrap();
    let ds = cat
        .create_dataset("labels", schema(), DatasetOptions::default())
        .await
        .unwrap();
    (cat, ds)
}

/// All rows of a snapshot as sorted (sample, label, class, score) tuples.
pub async fn rows(snap: &quiver_core::Snapshot) -> Vec<(String, i64, Option<String>, Option<f64>)> {
    use arrow::array::AsArray;
    let mut out = Vec::new();
    for b in snap.scan(None).await.unwrap() {
        let s = b.column(0).as_string::<i32>();
        let l = b.column(1).as_primitive::<arrow::datatypes::Int64Type>();
        let c = b.column(2).as_string::<i32>();
        let sc = b.column(3).as_primitive::<arrow::datatypes::Float64Type>();
        for i in 0..b.num_rows() {
            out.push((
                s.value(i).to_string(),
                l.value(i),
                (!c.is_null(i)).then(|| c.value(i).to_string()),
                (!sc.is_null(i)).then(|| sc.value(i)),
            ));
        }
    }
    out.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    out
}
use arrow::array::Array;
