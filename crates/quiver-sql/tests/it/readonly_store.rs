//! The catalog's object store registered in a SQL session is read-only: no statement or
//! caller holding the session can write an object or ref through it.

use std::sync::Arc;

use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::physical_plan::ExecutionPlan;
use object_store::{ObjectStoreExt, PutPayload};
use quiver_core::Catalog;
use quiver_sql::context::QuiverContext;

/// The object store URL a scan plan reads packs from.
fn scan_url(plan: &Arc<dyn ExecutionPlan>) -> Option<ObjectStoreUrl> {
    if let Some(exec) = plan.downcast_ref::<DataSourceExec>() {
        if let Some(cfg) = exec.data_source().downcast_ref::<FileScanConfig>() {
            return Some(cfg.object_store_url.clone());
        }
    }
    plan.children().into_iter().find_map(scan_url)
}

#[tokio::test]
async fn session_store_refuses_every_write() {
    let dir = tempfile::tempdir().unwrap();
    let cat = Catalog::open(dir.path().to_str().unwrap()).await.unwrap();
    let ctx = QuiverContext::new(cat.clone()).await.unwrap();
    ctx.sql("CREATE DATASET ds (sample_id VARCHAR NOT NULL, label_id INT NOT NULL, class VARCHAR) KEY (sample_id, label_id)")
        .await
        .unwrap();
    ctx.sql("INSERT INTO ds VALUES ('a', 1, 'cat'), ('b', 1, 'dog')")
        .await
        .unwrap();
    let plan = ctx
        .sql_df("SELECT * FROM ds")
        .await
        .unwrap()
        .create_physical_plan()
        .await
        .unwrap();
    let url = scan_url(&plan).expect("a Parquet scan");
    let store = ctx.session().runtime_env().object_store(&url).unwrap();

    // reads go through: the catalog marker is there
    let marker = cat.store().full_path("catalog.json");
    let before = store.get(&marker).await.unwrap().bytes().await.unwrap();
    assert!(!before.is_empty());

    // every write is refused, naming the operation
    let forged = cat
        .store()
        .full_path("refs/datasets/ds/tags/v1/00000000000000000001.json");
    let e = store
        .put(&forged, PutPayload::from_static(b"{}"))
        .await
        .unwrap_err();
    assert!(
        matches!(e, object_store::Error::PermissionDenied { .. }),
        "{e}"
    );
    assert!(e.to_string().contains("read-only"), "{e}");
    assert!(store.put_multipart(&forged).await.is_err());
    assert!(store.copy(&marker, &forged).await.is_err());
    assert!(store.copy_if_not_exists(&marker, &forged).await.is_err());
    assert!(store.rename(&marker, &forged).await.is_err());
    let e = store.delete(&marker).await.unwrap_err();
    assert!(
        matches!(e, object_store::Error::PermissionDenied { .. }),
        "{e}"
    );

    // and nothing changed on disk
    assert!(!dir
        .path()
        .join("refs/datasets/ds/tags/v1/00000000000000000001.json")
        .exists());
    let after = cat.store().get_file("catalog.json").await.unwrap();
    assert_eq!(before, after);
    let rows: usize = ctx
        .sql("SELECT * FROM ds")
        .await
        .unwrap()
        .iter()
        .map(|b| b.num_rows())
        .sum();
    assert_eq!(rows, 2);
}
