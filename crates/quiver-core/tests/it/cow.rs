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

    // every row as a model holds it: each edit's group was rebuilt from its other label,
    // read from the 200k-row base pack by a selective (row range) read
    let mut model = crate::common::rows(&a).await;
    let edited: std::collections::BTreeSet<&str> = edits.iter().map(|e| e.0.as_str()).collect();
    for r in model.iter_mut() {
        if r.1 == 0 && edited.contains(r.0.as_str()) {
            r.2 = Some("edited".into());
            r.3 = Some(0.5);
        }
    }
    assert_eq!(crate::common::rows(&b).await, model);
    let keys: std::collections::BTreeSet<Vec<u8>> = d.iter().map(|c| c.key.clone()).collect();
    let old = a.read_groups(&keys).await.unwrap();
    assert_eq!(old.len(), 500);
    assert!(old.values().all(|g| g.num_rows() == 2));
}

/// A diff on a reopened catalog (nothing cached: the walk falls back to fetching nodes)
/// and the same diff again (warm: cached nodes only) agree, and the rows read at the
/// positions it reports are the rows `read_groups` finds by key.
#[tokio::test]
async fn cold_and_warm_diffs_agree_and_locate_rows() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().to_str().unwrap().to_string();
    let (_, ds) = new_dataset(&url).await;
    let c0 = ds
        .append("main", &[synthetic(5_000, 3, 0.0)], "load")
        .await
        .unwrap();
    let edits: Vec<(String, i64, &str, f64)> = (0..60usize)
        .map(|i| {
            (
                format!("s{:07}", (i * 83) % 5_000),
                (i % 3) as i64,
                "edited",
                0.5,
            )
        })
        .collect();
    let rows: Vec<(&str, i64, &str, f64)> = edits
        .iter()
        .map(|e| (e.0.as_str(), e.1, e.2, e.3))
        .collect();
    ds.upsert("main", &[batch(&rows)], "edits").await.unwrap();

    let cat = Catalog::open(&url).await.unwrap();
    let ds = cat.dataset("labels").await.unwrap();
    let a = ds
        .checkout(&VersionSpec::Version(c0.id.to_hex()))
        .await
        .unwrap();
    let b = ds.head("main").await.unwrap();
    let cold = a.diff_located(&b).await.unwrap();
    let warm = a.diff_located(&b).await.unwrap();
    assert_eq!(cold, warm);
    assert_eq!(cold.len(), 60);
    assert_eq!(
        a.diff(&b).await.unwrap(),
        cold.iter().map(|c| c.change.clone()).collect::<Vec<_>>()
    );
    // both versions share the import's base: the old rows of each change are read from
    // the copy in the commit's change pack, where its new rows are, not from base packs
    for c in &cold {
        if let (Some(o), Some(n)) = (c.old_at, c.new_at) {
            assert_eq!(
                o.leaf, n.leaf,
                "old rows of {:?} outside the change pack",
                c.change.key
            );
        }
    }
    let keys: std::collections::BTreeSet<Vec<u8>> =
        cold.iter().map(|c| c.change.key.clone()).collect();
    for (snap, side) in [(&a, 0), (&b, 1)] {
        let items: Vec<_> = cold
            .iter()
            .filter_map(|c| {
                if side == 0 {
                    c.old_rows()
                } else {
                    c.new_rows()
                }
            })
            .collect();
        let at = snap.read_at(items.clone()).await.unwrap();
        assert_eq!(at, snap.read_groups(&keys).await.unwrap());
        assert_eq!(at.len(), 60);
        // a group asked for twice is read once, and the others are unaffected
        let twice = snap
            .read_at(items.iter().chain(items.iter()).cloned())
            .await
            .unwrap();
        assert_eq!(twice, at);
    }
}
