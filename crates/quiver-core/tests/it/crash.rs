use std::sync::Arc;

use object_store::memory::InMemory;
use object_store::ObjectStore;
use quiver_core::{Catalog, DatasetOptions, FsckOptions};
use quiver_store::testing::FaultyStore;
use quiver_store::Store;

use crate::common::*;

/// A write that fails at any of its puts (a delta's pack and its page checksums, the delta,
/// the layout, the commit and its listing marker, the layout pointer, the ref update)
/// leaves the catalog at the last commit, with nothing missing or corrupt; the next writer
/// succeeds.
#[tokio::test]
async fn failed_write_leaves_last_commit_readable() {
    for fail_on in [
        "objects/pack",
        "packsums/",
        "objects/delta",
        "objects/layout",
        "objects/commit",
        "datasets/labels/commits/",
        "datasets/labels/layouts/",
        "refs/",
    ] {
        let mem: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let faulty = Arc::new(FaultyStore::new(mem.clone()));
        let cat = Catalog::from_store(Store::from_object_store(faulty.clone(), ""))
            .await
            .unwrap();
        let ds = cat
            .create_dataset("labels", schema(), DatasetOptions::default())
            .await
            .unwrap();
        let c1 = ds
            .append("main", &[synthetic(200, 2, 0.0)], "load")
            .await
            .unwrap();

        faulty.fail_puts_matching(fail_on);
        let err = ds.upsert("main", &[synthetic(50, 3, 1.0)], "doomed").await;
        assert!(
            err.is_err(),
            "write should fail when puts to {fail_on} fail"
        );
        faulty.heal();

        // a fresh catalog over the same bytes opens at the last commit
        let cat2 = Catalog::from_store(Store::from_object_store(mem.clone(), ""))
            .await
            .unwrap();
        let ds2 = cat2.dataset("labels").await.unwrap();
        let head = ds2.head("main").await.unwrap();
        assert_eq!(head.commit().id, c1.id, "fail on {fail_on}");
        assert_eq!(rows(&head).await.len(), 400);
        let report = cat2.fsck(FsckOptions::default()).await.unwrap();
        assert!(report.problems.is_empty(), "fail on {fail_on}: {report:?}");
        // and a new write lands
        let c2 = ds2
            .upsert("main", &[synthetic(50, 3, 1.0)], "retry")
            .await
            .unwrap();
        assert_eq!(c2.parents, vec![c1.id]);
        assert_eq!(rows(&ds2.head("main").await.unwrap()).await.len(), 450);
    }
}
