//! Atomic dataset creation: a dataset exists only once the first entry of its main branch
//! does; a half-created one is invisible, does not block its name, and fsck reports it.

use std::sync::Arc;

use object_store::memory::InMemory;
use object_store::{ObjectStore, ObjectStoreExt};
use quiver_core::{Catalog, CoreError, DatasetOptions, FsckOptions, ProblemKind};
use quiver_store::testing::FaultyStore;
use quiver_store::Store;

use crate::common::*;

/// A creation killed after its configuration, before its ref: the name stays free.
#[tokio::test]
async fn half_created_dataset_is_invisible_and_does_not_block_its_name() {
    let mem: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let faulty = Arc::new(FaultyStore::new(mem.clone()));
    let cat = Catalog::from_store(Store::from_object_store(faulty.clone(), ""))
        .await
        .unwrap();
    cat.create_dataset("kept", schema(), DatasetOptions::default())
        .await
        .unwrap();
    faulty.fail_puts_matching("refs/");
    cat.create_dataset("labels", schema(), DatasetOptions::default())
        .await
        .unwrap_err();
    faulty.heal();
    assert!(mem
        .head(&"datasets/labels/dataset.json".into())
        .await
        .is_ok());

    let cat = Catalog::from_store(Store::from_object_store(mem.clone(), ""))
        .await
        .unwrap();
    assert_eq!(cat.list_datasets().await.unwrap(), vec!["kept"]);
    assert!(matches!(
        cat.dataset("labels").await,
        Err(CoreError::DatasetNotFound(_))
    ));
    let report = cat.fsck(FsckOptions::default()).await.unwrap();
    assert_eq!(report.count(ProblemKind::HalfCreated), 1, "{report:?}");
    assert_eq!(report.problems[0].path, "datasets/labels/dataset.json");

    // creating the name again succeeds and cleans the leftovers
    let ds = cat
        .create_dataset("labels", schema(), DatasetOptions::default())
        .await
        .unwrap();
    ds.append("main", &[synthetic(10, 2, 0.0)], "load")
        .await
        .unwrap();
    assert_eq!(cat.list_datasets().await.unwrap(), vec!["kept", "labels"]);
    assert!(cat.fsck(FsckOptions::default()).await.unwrap().is_clean());
}

/// A catalog with a dataset `kept` (40 rows) and a dataset `half` whose creation failed
/// at its ref: the underlying store, the fault switch and the catalog.
async fn kept_and_half_created() -> (Arc<dyn ObjectStore>, Arc<FaultyStore>, Catalog) {
    let mem: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let faulty = Arc::new(FaultyStore::new(mem.clone()));
    let cat = Catalog::from_store(Store::from_object_store(faulty.clone(), ""))
        .await
        .unwrap();
    let ds = cat
        .create_dataset("kept", schema(), DatasetOptions::default())
        .await
        .unwrap();
    ds.append("main", &[synthetic(20, 2, 0.0)], "load")
        .await
        .unwrap();
    faulty.fail_puts_matching("refs/datasets/half");
    cat.create_dataset("half", schema(), DatasetOptions::default())
        .await
        .unwrap_err();
    faulty.heal();
    (mem, faulty, cat)
}

/// `fsck --repair` removes a half-created dataset's leftovers, and only those.
#[tokio::test]
async fn fsck_repair_removes_half_created_leftovers() {
    let (_, _, cat) = kept_and_half_created().await;
    let report = cat
        .fsck(FsckOptions {
            repair: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(report.count(ProblemKind::HalfCreated), 1);
    assert!(report.is_clean(), "repaired: {report:?}");
    assert!(cat.store().list("datasets/half/").await.unwrap().is_empty());
    let again = cat.fsck(FsckOptions::default()).await.unwrap();
    assert!(again.problems.is_empty(), "{again:?}");
    assert_eq!(
        rows(
            &cat.dataset("kept")
                .await
                .unwrap()
                .head("main")
                .await
                .unwrap()
        )
        .await
        .len(),
        40
    );
}

/// Data written in the creating transaction appears with the dataset, all at once.
#[tokio::test]
async fn begin_dataset_publishes_data_and_dataset_together() {
    let (cat, _) = new_dataset("memory://").await;
    let mut txn = cat
        .begin_dataset("demo", schema(), DatasetOptions::default())
        .await
        .unwrap();
    txn.append(&synthetic(30, 3, 0.0)).await.unwrap();
    assert!(!cat.list_datasets().await.unwrap().contains(&"demo".into()));
    // abandoned (a killed `quiver demo`): nothing visible
    drop(txn);
    assert!(cat.dataset("demo").await.is_err());
    assert!(!cat.list_datasets().await.unwrap().contains(&"demo".into()));

    let mut txn = cat
        .begin_dataset("demo", schema(), DatasetOptions::default())
        .await
        .unwrap();
    txn.append(&synthetic(30, 3, 0.0)).await.unwrap();
    let c = txn.commit("demo data").await.unwrap();
    let ds = cat.dataset("demo").await.unwrap();
    assert_eq!(ds.branch_head("main").await.unwrap().commit.id, c.id);
    assert_eq!(rows(&ds.head("main").await.unwrap()).await.len(), 90);
    assert_eq!(ds.history("main").await.unwrap().len(), 2);
    assert!(matches!(
        cat.begin_dataset("demo", schema(), DatasetOptions::default())
            .await,
        Err(CoreError::DatasetExists(_))
    ));
}

/// Dropping removes the dataset's commit point first: a drop cut short leaves an invisible
/// dataset whose name can be reused.
#[tokio::test]
async fn drop_cut_short_leaves_an_invisible_dataset() {
    let (cat, ds) = new_dataset("memory://").await;
    ds.append("main", &[synthetic(10, 1, 0.0)], "load")
        .await
        .unwrap();
    // what a drop killed right after its first delete leaves
    cat.store()
        .delete("refs/datasets/labels/branches/main/00000000000000000000.json")
        .await
        .unwrap();
    assert!(cat.list_datasets().await.unwrap().is_empty());
    assert!(cat.dataset("labels").await.is_err());
    let ds = cat
        .create_dataset("labels", schema(), DatasetOptions::default())
        .await
        .unwrap();
    assert_eq!(rows(&ds.head("main").await.unwrap()).await.len(), 0);
    cat.drop_dataset("labels").await.unwrap();
    assert!(cat.list_datasets().await.unwrap().is_empty());
}

/// An import that creates its dataset publishes it with the labels: cut short (here its
/// pack cannot be written, and its cleanup cannot delete, as after a kill) it leaves no
/// empty dataset behind.
#[tokio::test]
async fn import_cut_short_leaves_no_empty_dataset() {
    use quiver_core::import::tabular::{import_csv, TableKeys};
    use quiver_core::import::ImportOptions;
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("labels.csv");
    std::fs::write(&f, "img,box,class\na.jpg,1,cat\nb.jpg,1,dog\n").unwrap();
    let keys = TableKeys {
        group_key: "img".into(),
        label_key: "box".into(),
    };
    let mem: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let faulty = Arc::new(FaultyStore::new(mem.clone()));
    let cat = Catalog::from_store(Store::from_object_store(faulty.clone(), ""))
        .await
        .unwrap();
    faulty.fail_puts_matching("objects/pack");
    faulty.fail_after_deletes(0);
    import_csv(&cat, &f, &keys, &ImportOptions::new("t"))
        .await
        .unwrap_err();
    faulty.heal();
    assert!(cat.list_datasets().await.unwrap().is_empty());
    assert!(cat.dataset("t").await.is_err());
    let r = import_csv(&cat, &f, &keys, &ImportOptions::new("t"))
        .await
        .unwrap();
    assert!(r.created_dataset);
    assert_eq!(r.labels, 2);
    let ds = cat.dataset("t").await.unwrap();
    assert_eq!(ds.history("main").await.unwrap().len(), 2);
}

/// `fsck --repair` cut short at its k-th delete, for every k: the live dataset still reads,
/// the half-created one stays invisible, and a second repair finishes the job.
#[tokio::test]
async fn fsck_repair_failing_at_every_delete_is_safe_and_resumable() {
    let mut k = 0;
    loop {
        let (mem, faulty, cat) = kept_and_half_created().await;
        faulty.fail_after_deletes(k);
        let repair = FsckOptions {
            repair: true,
            ..Default::default()
        };
        let first = cat.fsck(repair.clone()).await;
        let cut_short = faulty.failed_deletes() > 0;
        faulty.heal();
        let cat = Catalog::from_store(Store::from_object_store(mem.clone(), ""))
            .await
            .unwrap();
        assert_eq!(cat.list_datasets().await.unwrap(), vec!["kept"], "k = {k}");
        let kept = cat.dataset("kept").await.unwrap();
        assert_eq!(rows(&kept.head("main").await.unwrap()).await.len(), 40);
        let second = cat.fsck(repair.clone()).await.unwrap();
        assert!(second.is_clean(), "k = {k}: {second:?}");
        let after = cat.fsck(FsckOptions::default()).await.unwrap();
        assert!(after.problems.is_empty(), "k = {k}: {after:?}");
        if !cut_short {
            assert!(first.unwrap().is_clean());
            break;
        }
        k += 1;
        assert!(
            k < 100,
            "a repair of one half-created dataset should take few deletes"
        );
    }
}
