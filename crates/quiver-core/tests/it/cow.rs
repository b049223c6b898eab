use quiver_core::{Catalog, DatasetOptions, Hash, VersionSpec};

use crate::common::*;

/// 500 scattered edits on 100k groups write a small fraction of the dataset's bytes.
#[tokio::test]
async fn scattered_edits_are_copy_on_write() {
    let cat = Catalog::open("memory://").await.unwrap();
    let opts = DatasetOptions {
        stats_columns: Some(vec!["score".into()]),
        leaf_target: 16,
        ..Default::default()
    };
    let ds = cat.create_dataset("labels", schema(), opts).await.unwrap();
    let before = cat.store().bytes_written();
    let c0 = ds
        .append("main", &[synthetic(100_000, 2, 0.0)], "load")
        .await
        .unwrap();
    let full = cat.store().bytes_written() - before;

    let mut edits = Vec::new();
    for i in 0..500usize {
        let g = (i * 7919) % 100_000;
        edits.push((format!("s{g:07}"), 0i64, "edited", 0.5));
    }
    let rows: Vec<(&str, i64, &str, f64)> = edits
        .iter()
        .map(|e| (e.0.as_str(), e.1, e.2, e.3))
        .collect();
    let before = cat.store().bytes_written();
    let mut t = ds.begin("main").await.unwrap();
    t.upsert(&batch(&rows)).await.unwrap();
    let c1 = t.commit("500 edits").await.unwrap();
    let written = cat.store().bytes_written() - before;
    eprintln!("full {full} written {written} txn {}", t.bytes_written);
    assert_eq!(c1.data.summary.groups_modified, 500);
    assert_eq!(c1.data.summary.labels_modified, 500);
    let frac = written as f64 / full as f64;
    assert!(
        frac < 0.25,
        "500 edits wrote {written} of {full} bytes ({:.1}%)",
        frac * 100.0
    );

    // the diff finds exactly those groups
    let a = ds
        .checkout(&VersionSpec::Version(c0.id.to_hex()))
        .await
        .unwrap();
    let b = ds.head("main").await.unwrap();
    let d = a.diff(&b).await.unwrap();
    assert_eq!(d.len(), 500);
    assert_eq!(b.num_rows().await.unwrap(), 200_000);
    let _: Hash = b.root();
}
