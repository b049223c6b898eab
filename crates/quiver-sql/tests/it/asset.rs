//! `quiver_asset(image_hash)` returns verified asset bytes next to the labels.

use datafusion::arrow::array::{Array, AsArray};
use quiver_core::Catalog;
use quiver_sql::context::QuiverContext;

#[tokio::test]
async fn quiver_asset_returns_the_image_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let cat = Catalog::open(dir.path().to_str().unwrap()).await.unwrap();
    let png = b"\x89PNG\r\n\x1a\nnot really an image".to_vec();
    let h = cat
        .assets()
        .put_bytes(bytes::Bytes::from(png.clone()))
        .await
        .unwrap();
    let ctx = QuiverContext::new(cat.clone()).await.unwrap();
    ctx.sql("CREATE DATASET ds (sample_id VARCHAR NOT NULL, label_id INT NOT NULL, image_hash VARCHAR) KEY (sample_id, label_id)")
        .await
        .unwrap();
    ctx.sql(&format!(
        "INSERT INTO ds VALUES ('a', 1, '{h}'), ('b', 1, NULL)"
    ))
    .await
    .unwrap();
    let out = ctx
        .sql("SELECT sample_id, quiver_asset(image_hash) AS img FROM ds ORDER BY sample_id")
        .await
        .unwrap();
    let b = &out[0];
    let img = b.column(1).as_binary::<i32>();
    assert_eq!(img.value(0), png.as_slice());
    assert!(img.is_null(1));

    // the bytes compose with other functions (the issue's `length(quiver_asset(h))`)
    let out = ctx
        .sql("SELECT length(quiver_asset(image_hash)) AS n, octet_length(quiver_asset(image_hash)) AS o FROM ds WHERE sample_id = 'a'")
        .await
        .unwrap();
    for col in [0, 1] {
        let n = datafusion::arrow::compute::cast(
            out[0].column(col),
            &datafusion::arrow::datatypes::DataType::Int64,
        )
        .unwrap();
        assert_eq!(
            n.as_primitive::<datafusion::arrow::datatypes::Int64Type>()
                .value(0),
            png.len() as i64
        );
    }
    // strings keep their character count
    let out = ctx
        .sql("SELECT length('héllo'), octet_length('héllo')")
        .await
        .unwrap();
    let chars = datafusion::arrow::compute::cast(
        out[0].column(0),
        &datafusion::arrow::datatypes::DataType::Int64,
    )
    .unwrap();
    let bytes = datafusion::arrow::compute::cast(
        out[0].column(1),
        &datafusion::arrow::datatypes::DataType::Int64,
    )
    .unwrap();
    assert_eq!(
        chars
            .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
            .value(0),
        5
    );
    assert_eq!(
        bytes
            .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
            .value(0),
        6
    );

    let e = ctx
        .sql("SELECT quiver_asset('zz')")
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("'zz' is not an asset hash"), "{e}");
    let missing = "0".repeat(64);
    let e = ctx
        .sql(&format!("SELECT quiver_asset('{missing}')"))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains(&missing), "{e}");
}

/// An erased asset reads as erased (when, by whom, why); an erased label's image hash
/// ('<erased>') gives NULL; `quiver.erased_assets` lists the tombstones.
#[tokio::test]
async fn erased_assets_and_erased_labels() {
    let cat = Catalog::open("memory://").await.unwrap();
    let h = cat
        .assets()
        .put_bytes(bytes::Bytes::from_static(b"a face"))
        .await
        .unwrap();
    let ctx = QuiverContext::new(cat.clone()).await.unwrap();
    ctx.sql("CREATE DATASET ds (sample_id VARCHAR NOT NULL, label_id INT NOT NULL, image_hash VARCHAR NOT NULL) KEY (sample_id, label_id)")
        .await
        .unwrap();
    ctx.sql(&format!(
        "INSERT INTO ds VALUES ('a', 1, '{h}'), ('b', 1, '{h}')"
    ))
    .await
    .unwrap();
    ctx.sql("ERASE FROM ds WHERE sample_id = 'b' REASON 'asked'")
        .await
        .unwrap();
    let out = ctx
        .sql("SELECT sample_id, image_hash, quiver_asset(image_hash) FROM ds ORDER BY sample_id")
        .await
        .unwrap();
    let b = &out[0];
    assert_eq!(b.column(1).as_string_view().value(1), "<erased>");
    let img = b.column(2).as_binary::<i32>();
    assert_eq!(img.value(0), b"a face");
    assert!(img.is_null(1));

    cat.assets()
        .erase(&h, "subject asked", "dpo")
        .await
        .unwrap();
    let e = ctx
        .sql("SELECT quiver_asset(image_hash) FROM ds WHERE sample_id = 'a'")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&format!("asset {h} was erased on")) && e.contains("by dpo (subject asked)"),
        "{e}"
    );
    let t = ctx
        .sql("SELECT hash, author, reason, size FROM quiver.erased_assets")
        .await
        .unwrap();
    assert_eq!(t[0].num_rows(), 1);
    assert_eq!(t[0].column(0).as_string::<i32>().value(0), h.to_hex());
    assert_eq!(t[0].column(2).as_string::<i32>().value(0), "subject asked");
}
