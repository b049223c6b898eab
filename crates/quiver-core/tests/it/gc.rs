//! Garbage collection: what no live version needs goes, nothing a live version, a reader
//! within the retention window or a concurrent writer needs is ever deleted, and a gc
//! interrupted at any delete leaves a readable catalog that the next run cleans up.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use object_store::memory::InMemory;
use object_store::ObjectStore;
use quiver_core::{Catalog, CoreError, DatasetOptions, Hash, VacuumOptions, VersionSpec};
use quiver_store::testing::FaultyStore;
use quiver_store::Store;

use crate::common::*;

/// Retention 0: everything unreferenced is old enough.
fn now_opts() -> VacuumOptions {
    VacuumOptions {
        retain: Duration::ZERO,
        wait_for_writers: Duration::ZERO,
        ..Default::default()
    }
}

async fn faulty_catalog() -> (Arc<dyn ObjectStore>, Arc<FaultyStore>, Catalog) {
    let mem: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let faulty = Arc::new(FaultyStore::new(mem.clone()));
    let cat = Catalog::from_store(Store::from_object_store(faulty.clone(), ""))
        .await
        .unwrap();
    (mem, faulty, cat)
}

async fn count(cat: &Catalog, kind: &str) -> usize {
    cat.store()
        .list(&format!("objects/{kind}/"))
        .await
        .unwrap()
        .len()
}

/// Packs, layouts and deltas in the store.
async fn storage_counts(cat: &Catalog) -> [usize; 3] {
    [
        count(cat, "pack").await,
        count(cat, "layout").await,
        count(cat, "delta").await,
    ]
}

/// Every version every branch and tag reaches reads in full (a fresh catalog over `mem`,
/// so no cache hides a missing object). Returns the number of versions read.
async fn all_versions_read(mem: &Arc<dyn ObjectStore>) -> usize {
    let cat = Catalog::from_store(Store::from_object_store(mem.clone(), ""))
        .await
        .unwrap();
    let mut n = 0;
    for name in cat.list_datasets().await.unwrap() {
        let ds = cat.dataset(&name).await.unwrap();
        let mut heads: Vec<Hash> = ds
            .branches()
            .await
            .unwrap()
            .iter()
            .map(|r| r.commit)
            .collect();
        heads.extend(ds.tags().await.unwrap().iter().map(|r| r.commit));
        for h in heads {
            let head = ds.commit(&h).await.unwrap();
            for c in ds.history_of(&head).await.unwrap() {
                let snap = ds.snapshot(c.clone());
                let got = snap.scan(None).await.unwrap_or_else(|e| {
                    panic!("{name} version {} does not read: {e}", c.short_id())
                });
                let rows: usize = got.iter().map(|b| b.num_rows()).sum();
                assert_eq!(rows as u64, snap.num_rows().await.unwrap());
                n += 1;
            }
        }
    }
    n
}

/// A write whose commit object fails to land leaves a pack (with its page checksums), a
/// delta and a layout behind.
async fn abort_a_write(faulty: &FaultyStore, ds: &quiver_core::Dataset, salt: f64) {
    faulty.fail_puts_matching("objects/commit");
    let err = ds.upsert("main", &[synthetic(40, 2, salt)], "doomed").await;
    assert!(err.is_err(), "the commit put was made to fail");
    faulty.heal();
}

#[tokio::test]
async fn aborted_write_garbage_is_collected_once_past_retention() {
    let (mem, faulty, cat) = faulty_catalog().await;
    let ds = cat
        .create_dataset("labels", schema(), DatasetOptions::default())
        .await
        .unwrap();
    ds.append("main", &[synthetic(200, 2, 0.0)], "load")
        .await
        .unwrap();
    let before = storage_counts(&cat).await;
    abort_a_write(&faulty, &ds, 5.0).await;
    let after = storage_counts(&cat).await;
    let [packs0, layouts0, deltas0] = before;
    let [packs1, layouts1, deltas1] = after;
    assert!(
        packs1 > packs0 && layouts1 > layouts0 && deltas1 > deltas0,
        "the aborted write left objects: {before:?} -> {after:?}"
    );

    // within the default 7-day retention nothing young is touched
    let kept = cat.gc(&VacuumOptions::default()).await.unwrap();
    assert_eq!(kept.deleted(), 0, "{kept:?}");
    assert!(
        kept.kept_young as usize >= (packs1 - packs0) + (layouts1 - layouts0) + (deltas1 - deltas0)
    );

    // a dry run past retention reports without deleting
    let dry = cat
        .gc(&VacuumOptions {
            dry_run: true,
            ..now_opts()
        })
        .await
        .unwrap();
    assert_eq!(dry.packs.count as usize, packs1 - packs0, "{dry:?}");
    assert_eq!(count(&cat, "pack").await, packs1);

    let r = cat.gc(&now_opts()).await.unwrap();
    assert_eq!(r.packs.count as usize, packs1 - packs0, "{r:?}");
    // each deleted pack's page checksums go with it; the live packs keep theirs
    assert_eq!(r.pack_sums.count, r.packs.count, "{r:?}");
    assert_eq!(
        cat.store().list("packsums/").await.unwrap().len(),
        packs0,
        "sums files left = live packs"
    );
    assert_eq!(r.layouts.count as usize, layouts1 - layouts0, "{r:?}");
    assert_eq!(r.deltas.count as usize, deltas1 - deltas0, "{r:?}");
    assert_eq!((r.commits.count, r.layout_pointers.count), (0, 0), "{r:?}");
    assert!(r.bytes_freed() > 0);
    assert_eq!(storage_counts(&cat).await, before);
    assert_eq!(all_versions_read(&mem).await, 2);
    // a second run finds nothing more
    assert_eq!(cat.gc(&now_opts()).await.unwrap().deleted(), 0);

    // the same write again, in the same process (whose caches knew the deleted objects),
    // writes them anew and reads back
    ds.upsert("main", &[synthetic(40, 2, 5.0)], "retry")
        .await
        .unwrap();
    assert_eq!(rows(&ds.head("main").await.unwrap()).await.len(), 400);
    assert_eq!(all_versions_read(&mem).await, 3);
}

#[tokio::test]
async fn tags_and_recent_ref_moves_survive_and_deleted_branches_go() {
    let mem: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let cat = Catalog::from_store(Store::from_object_store(mem.clone(), ""))
        .await
        .unwrap();
    let ds = cat
        .create_dataset("labels", schema(), DatasetOptions::default())
        .await
        .unwrap();
    ds.append("main", &[synthetic(100, 3, 0.0)], "v1")
        .await
        .unwrap();
    ds.create_tag("v1", &VersionSpec::main()).await.unwrap();
    let tagged = rows(&ds.checkout(&VersionSpec::Tag("v1".into())).await.unwrap()).await;
    ds.upsert("main", &[synthetic(100, 3, 1.0)], "rewrite every label")
        .await
        .unwrap();
    // an experiment branch, committed to and deleted
    ds.create_branch("exp", &VersionSpec::main()).await.unwrap();
    let exp = ds
        .upsert("exp", &[synthetic(30, 3, 9.0)], "experiment")
        .await
        .unwrap();
    ds.delete_branch("exp").await.unwrap();
    let reader = ds.checkout(&VersionSpec::Tag("v1".into())).await.unwrap();

    // within retention the deleted branch's commit is kept (it can be restored)
    let r = cat.gc(&VacuumOptions::default()).await.unwrap();
    assert_eq!(r.deleted(), 0, "{r:?}");
    assert!(ds.commit(&exp.id).await.is_ok());

    let r = cat.gc(&now_opts()).await.unwrap();
    assert_eq!(r.commits.count, 1, "the experiment's commit goes: {r:?}");
    assert_eq!(r.commit_markers.count, 1);
    assert_eq!(r.layout_pointers.count, 1, "and its layout pointer: {r:?}");
    assert!(
        r.packs.count >= 1 && r.deltas.count >= 1 && r.layouts.count >= 1,
        "{r:?}"
    );
    assert!(matches!(
        ds.commit(&exp.id).await,
        Err(CoreError::VersionNotFound { .. })
    ));
    // a reader that resolved the tag before the gc, and a new one, still read it
    assert_eq!(rows(&reader).await, tagged);
    let fresh = Catalog::from_store(Store::from_object_store(mem.clone(), ""))
        .await
        .unwrap();
    let again = fresh
        .dataset("labels")
        .await
        .unwrap()
        .checkout(&VersionSpec::Tag("v1".into()))
        .await
        .unwrap();
    assert_eq!(rows(&again).await, tagged);
    // main: create, v1, rewrite; tag v1: create, v1
    assert_eq!(all_versions_read(&mem).await, 5);
}

/// Builds a catalog with garbage of every kind: an aborted write, a deleted branch, an
/// orphan asset, and live data with a tag.
async fn catalog_with_garbage() -> (Arc<dyn ObjectStore>, Arc<FaultyStore>, Catalog) {
    let (mem, faulty, cat) = faulty_catalog().await;
    let ds = cat
        .create_dataset("labels", schema(), DatasetOptions::default())
        .await
        .unwrap();
    ds.append("main", &[synthetic(120, 2, 0.0)], "v1")
        .await
        .unwrap();
    ds.create_tag("v1", &VersionSpec::main()).await.unwrap();
    ds.create_branch("exp", &VersionSpec::main()).await.unwrap();
    ds.upsert("exp", &[synthetic(50, 2, 3.0)], "exp")
        .await
        .unwrap();
    ds.delete_branch("exp").await.unwrap();
    ds.upsert("main", &[synthetic(60, 2, 1.0)], "v2")
        .await
        .unwrap();
    abort_a_write(&faulty, &ds, 7.0).await;
    cat.assets()
        .put_bytes(b"orphan".to_vec().into())
        .await
        .unwrap();
    (mem, faulty, cat)
}

#[tokio::test]
async fn gc_failing_at_every_delete_leaves_live_versions_readable() {
    let (_, _, cat) = catalog_with_garbage().await;
    let total = cat.gc(&now_opts()).await.unwrap().deleted();
    assert!(total >= 8, "enough garbage to interrupt: {total}");
    // every delete is a chance to fail: the gc's own deletes, then releasing its lock
    for k in 0..=total + 1 {
        let (mem, faulty, cat) = catalog_with_garbage().await;
        let versions = all_versions_read(&mem).await;
        faulty.fail_after_deletes(k);
        let res = cat.gc(&now_opts()).await;
        assert!(
            res.is_err() == (k <= total),
            "k = {k}: {res:?} ({} failed deletes)",
            faulty.failed_deletes()
        );
        faulty.heal();
        assert_eq!(all_versions_read(&mem).await, versions, "k = {k}");
        // the next run completes and leaves no garbage (breaking the crashed run's lock)
        let rerun = cat
            .gc(&VacuumOptions {
                break_lock: true,
                ..now_opts()
            })
            .await
            .unwrap_or_else(|e| panic!("k = {k}: re-run failed: {e}"));
        assert!(
            rerun.deleted() <= total - k.min(total),
            "k = {k}: {rerun:?}"
        );
        assert_eq!(cat.gc(&now_opts()).await.unwrap().deleted(), 0, "k = {k}");
        assert_eq!(all_versions_read(&mem).await, versions, "k = {k}");
    }
}

#[tokio::test]
async fn gc_keeps_the_objects_of_a_commit_that_lands_while_it_runs() {
    let (mem, faulty, cat) = faulty_catalog().await;
    let ds = cat
        .create_dataset("labels", schema(), DatasetOptions::default())
        .await
        .unwrap();
    ds.append("main", &[synthetic(200, 2, 0.0)], "load")
        .await
        .unwrap();
    // an aborted write leaves a pack, a delta and a layout nothing references …
    abort_a_write(&faulty, &ds, 5.0).await;
    let packs = count(&cat, "pack").await;
    // … a gc lists them and finds them unreferenced …
    let plan = cat.gc_plan(&now_opts()).await.unwrap();
    // … while the same write is retried: it reuses those very objects (they exist, so
    // nothing is rewritten) and commits
    let c = ds
        .upsert("main", &[synthetic(40, 2, 5.0)], "retry")
        .await
        .unwrap();
    assert_eq!(
        count(&cat, "pack").await,
        packs,
        "the retry reused the pack"
    );
    // the gc's delete phase must see that commit
    let r = plan.sweep().await.unwrap();
    assert_eq!(
        (r.packs.count, r.deltas.count, r.layouts.count),
        (0, 0, 0),
        "{r:?}"
    );
    assert_eq!(all_versions_read(&mem).await, 3);
    let fresh = Catalog::from_store(Store::from_object_store(mem.clone(), ""))
        .await
        .unwrap();
    let head = fresh
        .dataset("labels")
        .await
        .unwrap()
        .head("main")
        .await
        .unwrap();
    assert_eq!(head.commit().id, c.id);
    assert_eq!(rows(&head).await.len(), 400);
}

#[tokio::test]
async fn gc_deletes_nothing_while_a_write_is_in_progress() {
    let (mem, faulty, cat) = faulty_catalog().await;
    let ds = cat
        .create_dataset("labels", schema(), DatasetOptions::default())
        .await
        .unwrap();
    ds.append("main", &[synthetic(50, 2, 0.0)], "load")
        .await
        .unwrap();
    abort_a_write(&faulty, &ds, 5.0).await;
    let lease = cat.write_lease("a slow import").await.unwrap();
    let err = cat.gc(&now_opts()).await.unwrap_err();
    assert!(
        matches!(&err, CoreError::GcBusy(m) if m.contains("a slow import")),
        "{err}"
    );
    lease.release().await;
    // the lock was released: writers go on, and the next gc runs
    ds.upsert("main", &[synthetic(5, 1, 2.0)], "after")
        .await
        .unwrap();
    let packs = count(&cat, "pack").await;
    let r = cat.gc(&now_opts()).await.unwrap();
    assert!(
        r.packs.count >= 1 && count(&cat, "pack").await < packs,
        "{r:?}"
    );
    assert_eq!(all_versions_read(&mem).await, 3);
}

fn asset_schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("sample_id", DataType::Utf8, false),
        Field::new("label_id", DataType::Int64, false),
        Field::new("image_hash", DataType::Utf8, true),
    ]))
}

fn labels_of(image: &Hash, n: usize) -> RecordBatch {
    RecordBatch::try_new(
        asset_schema(),
        vec![
            Arc::new(StringArray::from(vec!["img"; n])),
            Arc::new(Int64Array::from_iter_values(0..n as i64)),
            Arc::new(StringArray::from(vec![image.to_hex(); n])),
        ],
    )
    .unwrap()
}

/// The reproduced race: an import puts an image that is already in the store (an old,
/// unreferenced one: the put changes nothing, not even its mtime) while a gc runs; the
/// labels that reference it commit between the gc's listing and its deletes.
#[tokio::test]
async fn asset_gc_never_deletes_an_image_an_import_is_committing() {
    let mem: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let cat = Catalog::from_store(Store::from_object_store(mem.clone(), ""))
        .await
        .unwrap();
    let ds = cat
        .create_dataset("photos", asset_schema(), DatasetOptions::default())
        .await
        .unwrap();
    let image = cat
        .assets()
        .put_bytes(b"an image imported long ago".to_vec().into())
        .await
        .unwrap();
    let assets_only = VacuumOptions {
        only_assets: true,
        ..now_opts()
    };
    // the import starts: it announces itself and puts the image (already there)
    let lease = cat.write_lease("import").await.unwrap();
    assert_eq!(
        cat.assets()
            .put_bytes(b"an image imported long ago".to_vec().into())
            .await
            .unwrap(),
        image
    );
    // a gc lists the assets and marks: the image is unreferenced so far
    let plan = cat.gc_plan(&assets_only).await.unwrap();
    // the import commits 2,000 labels that reference the image, and ends
    ds.append("main", &[labels_of(&image, 2000)], "import")
        .await
        .unwrap();
    lease.release().await;
    // the gc's delete phase
    let r = plan.sweep().await.unwrap();
    assert_eq!(r.assets.count, 0, "{r:?}");
    assert!(
        cat.assets().exists(&image).await.unwrap(),
        "the committed labels' image is gone"
    );
    assert_eq!(
        cat.assets().get(&image).await.unwrap().as_ref(),
        b"an image imported long ago"
    );

    // while the import is still running, the gc deletes nothing at all
    let orphan = cat
        .assets()
        .put_bytes(b"orphan".to_vec().into())
        .await
        .unwrap();
    let lease = cat.write_lease("import").await.unwrap();
    let plan = cat.gc_plan(&assets_only).await.unwrap();
    assert!(matches!(plan.sweep().await, Err(CoreError::GcBusy(_))));
    assert!(cat.assets().exists(&orphan).await.unwrap());
    lease.release().await;
    // and once it is over, only the unreferenced asset goes
    let r = cat.gc(&assets_only).await.unwrap();
    assert_eq!(r.deleted_assets, vec![orphan]);
    assert!(cat.assets().exists(&image).await.unwrap());
}

#[tokio::test]
async fn vacuum_of_one_dataset_and_bad_options() {
    let (mem, faulty, cat) = faulty_catalog().await;
    let a = cat
        .create_dataset("a", schema(), DatasetOptions::default())
        .await
        .unwrap();
    let b = cat
        .create_dataset("b", schema(), DatasetOptions::default())
        .await
        .unwrap();
    a.append("main", &[synthetic(30, 2, 0.0)], "a")
        .await
        .unwrap();
    b.append("main", &[synthetic(30, 2, 50.0)], "b")
        .await
        .unwrap();
    // writes that fail at their layout pointer leave a commit (listed under its dataset)
    // with no way to read it, and a layout, a delta and a pack no dataset owns
    for (ds, salt) in [(&a, 1.0), (&b, 2.0)] {
        faulty.fail_puts_matching(&format!("datasets/{}/layouts/", ds.name()));
        let err = ds.upsert("main", &[synthetic(40, 2, salt)], "doomed").await;
        assert!(err.is_err(), "the pointer put was made to fail");
        faulty.heal();
    }
    let listed = |ds: &str, dir: &str| {
        let cat = cat.clone();
        let path = format!("datasets/{ds}/{dir}/");
        async move { cat.store().list(&path).await.unwrap().len() }
    };
    let (a0, b0) = (listed("a", "commits").await, listed("b", "commits").await);
    let r = a.vacuum(&now_opts()).await.unwrap();
    assert_eq!(
        (
            r.commits.count,
            r.commit_markers.count,
            r.layout_pointers.count
        ),
        (1, 1, 0),
        "{r:?}"
    );
    assert_eq!(
        (listed("a", "commits").await, listed("b", "commits").await),
        (a0 - 1, b0),
        "b's commits are b's"
    );
    // layouts, deltas and packs belong to no dataset: both aborted writes' go
    assert_eq!(
        (r.layouts.count, r.deltas.count, r.packs.count),
        (2, 2, 2),
        "{r:?}"
    );
    let r = b.vacuum(&now_opts()).await.unwrap();
    assert_eq!((r.commits.count, r.commit_markers.count), (1, 1), "{r:?}");
    assert_eq!(listed("b", "commits").await, b0 - 1);
    assert_eq!(all_versions_read(&mem).await, 4);
    assert!(matches!(
        cat.gc(&VacuumOptions {
            dataset: Some("nope".into()),
            ..now_opts()
        })
        .await,
        Err(CoreError::DatasetNotFound(_))
    ));
    assert_eq!(
        quiver_core::parse_retention("7d").unwrap(),
        Duration::from_secs(7 * 86400)
    );
    assert_eq!(
        quiver_core::parse_retention("12h").unwrap(),
        Duration::from_secs(43200)
    );
    for bad in ["", "7", "d", "-1d", "7 weeks", "99999999999999d"] {
        assert!(
            matches!(
                quiver_core::parse_retention(bad),
                Err(CoreError::InvalidRetention(_))
            ),
            "{bad:?}"
        );
    }
}

/// A dataset with a base and two deltas on main: loaded, then edited twice.
async fn with_deltas(cat: &Catalog) -> quiver_core::Dataset {
    let ds = cat
        .create_dataset("labels", schema(), DatasetOptions::default())
        .await
        .unwrap();
    ds.append("main", &[synthetic(200, 2, 0.0)], "load")
        .await
        .unwrap();
    ds.upsert("main", &[synthetic(20, 2, 1.0)], "edit 1")
        .await
        .unwrap();
    ds.upsert("main", &[synthetic(10, 2, 2.0)], "edit 2")
        .await
        .unwrap();
    ds
}

/// OPTIMIZE re-points main's head at a new layout. A reader (another process) that loaded
/// the old layout before keeps reading it through a gc within the retention window, even
/// though every object of that layout is older than the window; past it, they go.
#[tokio::test]
async fn the_layout_optimize_replaced_stays_readable_within_retention() {
    let mem: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let cat = Catalog::from_store(Store::from_object_store(mem.clone(), ""))
        .await
        .unwrap();
    let ds = with_deltas(&cat).await;
    let reader_cat = Catalog::from_store(Store::from_object_store(mem.clone(), ""))
        .await
        .unwrap();
    let reader = reader_cat
        .dataset("labels")
        .await
        .unwrap()
        .head("main")
        .await
        .unwrap();
    let want = rows(&reader).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let between = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let opt = ds.optimize("main").await.unwrap();
    assert_eq!(opt.deltas_folded, 2, "{opt:?}");

    // the gc's clock puts the cutoff between the commits and the OPTIMIZE: the old layout,
    // its last delta and that delta's pack are old and no live pointer names them, but
    // the head's pointer was written within the window
    let hour = Duration::from_secs(3600);
    let within = VacuumOptions {
        retain: hour,
        now: Some(between + hour),
        wait_for_writers: Duration::ZERO,
        ..Default::default()
    };
    let r = cat.gc(&within).await.unwrap();
    assert_eq!(r.deleted(), 0, "{r:?}");
    assert_eq!(rows(&reader).await, want, "the reader still reads");

    // past the window the replaced layout goes, with the delta and pack only it named
    let past = VacuumOptions {
        now: Some(chrono::Utc::now() + hour * 2),
        ..within
    };
    let r = cat.gc(&past).await.unwrap();
    assert_eq!(
        (
            r.layouts.count,
            r.deltas.count,
            r.packs.count,
            r.commits.count
        ),
        (1, 1, 1, 0),
        "{r:?}"
    );
    assert_eq!(all_versions_read(&mem).await, 4);
    let fresh = Catalog::from_store(Store::from_object_store(mem.clone(), ""))
        .await
        .unwrap();
    let head = fresh
        .dataset("labels")
        .await
        .unwrap()
        .head("main")
        .await
        .unwrap();
    assert_eq!(rows(&head).await, want);
}

/// An OPTIMIZE cut short at its pointer leaves a base, its pack and a layout nothing names;
/// a gc lists them as garbage, then the retried OPTIMIZE writes the very same objects (they
/// exist: only the pointer changes) and re-points the head, which the gc already marked.
/// The gc's second mark reads the changed pointer and keeps them (without that, the head
/// would be left pointing at a deleted layout).
#[tokio::test]
async fn gc_keeps_what_an_optimize_reuses_while_it_runs() {
    let (mem, faulty, cat) = faulty_catalog().await;
    let ds = with_deltas(&cat).await;
    let want = rows(&ds.head("main").await.unwrap()).await;
    faulty.fail_puts_matching("datasets/labels/layouts/");
    ds.optimize("main").await.unwrap_err();
    faulty.heal();
    let counts = |cat: Catalog| async move {
        [
            count(&cat, "layout").await,
            count(&cat, "base").await,
            count(&cat, "pack").await,
        ]
    };
    let left = counts(cat.clone()).await;
    let plan = cat.gc_plan(&now_opts()).await.unwrap();
    ds.optimize("main").await.unwrap();
    assert_eq!(
        counts(cat.clone()).await,
        left,
        "the retry reused the objects"
    );
    // (the layout the head had when the gc planned was live then: it stays this time)
    let r = plan.sweep().await.unwrap();
    assert_eq!(r.deleted(), 0, "{r:?}");
    assert_eq!(all_versions_read(&mem).await, 4);
    // the next gc collects the replaced layout, with the delta and pack only it named
    let r = cat.gc(&now_opts()).await.unwrap();
    assert_eq!(
        (
            r.layouts.count,
            r.bases.count,
            r.deltas.count,
            r.packs.count
        ),
        (1, 0, 1, 1),
        "{r:?}"
    );
    assert_eq!(all_versions_read(&mem).await, 4);
    let fresh = Catalog::from_store(Store::from_object_store(mem.clone(), ""))
        .await
        .unwrap();
    let head = fresh
        .dataset("labels")
        .await
        .unwrap()
        .head("main")
        .await
        .unwrap();
    assert_eq!(rows(&head).await, want);
}

/// A catalog that still holds a format-1 dataset is not collected (its objects are not
/// understood); in a format-2 catalog, format-1 leftovers go.
#[tokio::test]
async fn format_1_datasets_stop_gc_and_format_1_leftovers_go() {
    let mem: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let cat = Catalog::from_store(Store::from_object_store(mem.clone(), ""))
        .await
        .unwrap();
    let ds = cat
        .create_dataset("labels", schema(), DatasetOptions::default())
        .await
        .unwrap();
    ds.append("main", &[synthetic(20, 2, 0.0)], "load")
        .await
        .unwrap();
    let node = cat
        .store()
        .put_object("node", bytes::Bytes::from_static(b"a format-1 tree node"))
        .await
        .unwrap();
    let idx = format!("datasets/labels/packidx/{}", node.to_hex());
    cat.store()
        .put_file(&idx, bytes::Bytes::from_static(b"a format-1 pack index"))
        .await
        .unwrap();
    let cfg = "datasets/labels/dataset.json";
    let original = cat.store().get_file(cfg).await.unwrap();
    let mut doc: serde_json::Value = serde_json::from_slice(&original).unwrap();
    doc["format_version"] = serde_json::json!(1);
    cat.store()
        .put_file(cfg, serde_json::to_vec(&doc).unwrap().into())
        .await
        .unwrap();
    let err = cat.gc(&now_opts()).await.unwrap_err();
    assert!(matches!(err, CoreError::UnsupportedFormat { .. }), "{err}");
    assert_eq!(count(&cat, "node").await, 1);
    assert!(cat.store().get_file_opt(&idx).await.unwrap().is_some());

    cat.store().put_file(cfg, original).await.unwrap();
    let r = cat.gc(&now_opts()).await.unwrap();
    assert_eq!(r.legacy.count, 2, "{r:?}");
    assert_eq!(r.deleted(), 2, "{r:?}");
    assert_eq!(count(&cat, "node").await, 0);
    assert!(cat.store().get_file_opt(&idx).await.unwrap().is_none());
    assert_eq!(all_versions_read(&mem).await, 2);
}

/// Assets are read from the rows of every live version: an image only an older version
/// (its rows replaced by a later delta) references stays, as after OPTIMIZE; an image
/// only a deleted branch referenced goes.
#[tokio::test]
async fn asset_gc_reads_the_rows_of_every_live_version() {
    let mem: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let cat = Catalog::from_store(Store::from_object_store(mem.clone(), ""))
        .await
        .unwrap();
    let ds = cat
        .create_dataset("photos", asset_schema(), DatasetOptions::default())
        .await
        .unwrap();
    let put = |b: &'static [u8]| {
        let cat = cat.clone();
        async move { cat.assets().put_bytes(b.to_vec().into()).await.unwrap() }
    };
    let (a, b, c, d) = (
        put(b"image a").await,
        put(b"image b").await,
        put(b"image c").await,
        put(b"never used").await,
    );
    ds.append("main", &[labels_of(&a, 3)], "a").await.unwrap();
    ds.upsert("main", &[labels_of(&b, 3)], "b replaces a")
        .await
        .unwrap();
    ds.create_branch("exp", &VersionSpec::main()).await.unwrap();
    ds.upsert("exp", &[labels_of(&c, 3)], "c").await.unwrap();
    ds.delete_branch("exp").await.unwrap();
    ds.optimize("main").await.unwrap();
    let assets_only = VacuumOptions {
        only_assets: true,
        ..now_opts()
    };
    let r = cat.gc(&assets_only).await.unwrap();
    let mut gone = vec![c, d];
    gone.sort();
    assert_eq!(r.deleted_assets, gone, "{r:?}");
    assert_eq!(r.live_assets, 2, "{r:?}");
    for h in [a, b] {
        assert!(cat.assets().exists(&h).await.unwrap());
    }
}
