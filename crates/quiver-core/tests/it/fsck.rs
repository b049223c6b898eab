//! `Catalog::fsck`: a clean catalog is clean; dangling refs, missing and corrupt objects,
//! layout pointers and ref entries are named by path; a layout that does not describe its
//! commit is corrupt; orphans are listed, not problems.

use bytes::Bytes;
use quiver_core::{FsckOptions, FsckReport, Hash, ProblemKind, VersionSpec};
use quiver_store::Store;

use crate::common::*;

async fn fsck(cat: &quiver_core::Catalog) -> FsckReport {
    cat.fsck(FsckOptions::default()).await.unwrap()
}

fn pointer_path(commit: &Hash) -> String {
    format!("datasets/labels/layouts/{}", commit.to_hex())
}

/// The layout a commit's pointer names.
async fn layout_of(cat: &quiver_core::Catalog, commit: &Hash) -> Hash {
    let body = cat.store().get_file(&pointer_path(commit)).await.unwrap();
    Hash::from_hex(std::str::from_utf8(&body).unwrap().trim()).unwrap()
}

/// A dataset with two commits on main, a branch and a tag.
async fn populated() -> (quiver_core::Catalog, quiver_core::Dataset) {
    let (cat, ds) = new_dataset("memory://").await;
    ds.append("main", &[synthetic(100, 2, 0.0)], "load")
        .await
        .unwrap();
    ds.create_branch("dev", &VersionSpec::main()).await.unwrap();
    ds.create_tag("v1", &VersionSpec::main()).await.unwrap();
    ds.upsert("main", &[synthetic(10, 2, 1.0)], "edit")
        .await
        .unwrap();
    (cat, ds)
}

#[tokio::test]
async fn clean_catalog_reports_clean() {
    let (cat, _) = populated().await;
    let r = fsck(&cat).await;
    assert!(r.problems.is_empty() && r.is_clean(), "{r:?}");
    assert_eq!(r.datasets, 1);
    assert_eq!(r.refs, 3);
    assert_eq!(r.commits, 3);
    // create: an empty base; load: a base and its pack; edit: a delta and its pack
    assert_eq!(
        (r.layouts, r.bases, r.deltas, r.packs),
        (3, 2, 1, 2),
        "{r:?}"
    );
    assert!(r.orphans.is_empty(), "{:?}", r.orphans);
}

#[tokio::test]
async fn dangling_ref_and_missing_objects_are_reported() {
    let (cat, ds) = populated().await;
    let head = ds.branch_head("main").await.unwrap().commit;
    cat.store()
        .delete(&Store::object_path("commit", &head.id))
        .await
        .unwrap();
    let r = fsck(&cat).await;
    assert_eq!(r.count(ProblemKind::DanglingRef), 1, "{r:?}");
    let p = &r.problems[0];
    assert!(
        p.path.starts_with("refs/datasets/labels/branches/main/"),
        "{p:?}"
    );
    assert!(p.detail.contains(&head.id.to_hex()));
    assert!(!r.is_clean());

    // the layout of a live commit goes missing
    let (cat, ds) = populated().await;
    let head = ds.branch_head("main").await.unwrap().commit.id;
    let layout = Store::object_path("layout", &layout_of(&cat, &head).await);
    cat.store().delete(&layout).await.unwrap();
    let r = fsck(&cat).await;
    assert_eq!(r.count(ProblemKind::MissingObject), 1, "{r:?}");
    assert_eq!(r.problems[0].path, layout);
    assert!(r.problems[0].detail.contains("datasets/labels/layouts/"));

    // a live commit's layout pointer goes missing
    let (cat, ds) = populated().await;
    let head = ds.branch_head("main").await.unwrap().commit.id;
    cat.store().delete(&pointer_path(&head)).await.unwrap();
    let r = fsck(&cat).await;
    assert_eq!(r.count(ProblemKind::MissingObject), 1, "{r:?}");
    assert_eq!(r.problems[0].path, pointer_path(&head));
    assert!(r.problems[0].detail.contains(&head.to_hex()));

    // a pack a live base names goes missing (its page checksums stay)
    let (cat, _) = populated().await;
    let packs = cat.store().list("objects/pack/").await.unwrap();
    for p in &packs {
        cat.store().delete(p).await.unwrap();
    }
    let r = fsck(&cat).await;
    assert_eq!(r.count(ProblemKind::MissingObject), 2, "{r:?}");
    assert!(r.problems.iter().all(|p| packs.contains(&p.path)), "{r:?}");
}

#[tokio::test]
async fn corrupt_objects_and_ref_entries_are_named_by_path() {
    let (cat, ds) = populated().await;
    let head = ds.branch_head("main").await.unwrap().commit.id;
    let node = Store::object_path("layout", &layout_of(&cat, &head).await);
    cat.store()
        .put_file(&node, Bytes::from_static(b"flipped"))
        .await
        .unwrap();
    let entry = "refs/datasets/labels/tags/v1/00000000000000000000.json";
    cat.store()
        .put_file(entry, Bytes::from_static(b"{ not json"))
        .await
        .unwrap();
    let r = fsck(&cat).await;
    assert_eq!(r.count(ProblemKind::Corrupt), 2, "{r:?}");
    let paths: Vec<&str> = r.problems.iter().map(|p| p.path.as_str()).collect();
    assert!(
        paths.contains(&node.as_str()) && paths.contains(&entry),
        "{paths:?}"
    );
}

#[tokio::test]
async fn a_layout_that_does_not_describe_its_commit_is_corrupt() {
    // main's head pointed at the tag's (older) layout: a valid object, the wrong content
    let (cat, ds) = populated().await;
    let head = ds.branch_head("main").await.unwrap().commit.id;
    let tagged = ds.tags().await.unwrap()[0].commit;
    let older = layout_of(&cat, &tagged).await;
    cat.store()
        .put_file(&pointer_path(&head), Bytes::from(older.to_hex()))
        .await
        .unwrap();
    let r = fsck(&cat).await;
    assert_eq!(r.count(ProblemKind::Corrupt), 1, "{r:?}");
    assert_eq!(r.problems[0].path, pointer_path(&head));
    assert!(r.problems[0].detail.contains("is not the root"), "{r:?}");
    // the layout main's head used before is no longer reached, nor its delta and pack
    assert_eq!(r.orphans.len(), 3, "{:?}", r.orphans);

    // a pointer that does not hold a hash
    cat.store()
        .put_file(&pointer_path(&head), Bytes::from_static(b"not a hash"))
        .await
        .unwrap();
    let r = fsck(&cat).await;
    assert_eq!(r.count(ProblemKind::Corrupt), 1, "{r:?}");
    assert_eq!(r.problems[0].path, pointer_path(&head));
}

/// A write cut short at its layout pointer leaves a commit no ref names, its layout, delta
/// and pack: orphans, not problems.
#[tokio::test]
async fn an_unfinished_write_leaves_orphans() {
    use object_store::memory::InMemory;
    use quiver_store::testing::FaultyStore;
    use std::sync::Arc;
    let faulty = Arc::new(FaultyStore::new(Arc::new(InMemory::new())));
    let cat = quiver_core::Catalog::from_store(Store::from_object_store(faulty.clone(), ""))
        .await
        .unwrap();
    let ds = cat
        .create_dataset("labels", schema(), Default::default())
        .await
        .unwrap();
    ds.append("main", &[synthetic(20, 2, 0.0)], "load")
        .await
        .unwrap();
    faulty.fail_puts_matching("datasets/labels/layouts/");
    ds.upsert("main", &[synthetic(5, 2, 1.0)], "doomed")
        .await
        .unwrap_err();
    faulty.heal();
    let r = fsck(&cat).await;
    assert!(r.problems.is_empty(), "{r:?}");
    let kinds: Vec<&str> = r
        .orphans
        .iter()
        .map(|o| o.split('/').nth(1).unwrap_or(""))
        .collect();
    assert_eq!(
        kinds,
        vec!["commit", "delta", "layout", "pack"],
        "{:?}",
        r.orphans
    );
}

#[tokio::test]
async fn orphans_are_listed_not_problems() {
    let (cat, ds) = populated().await;
    // an object no ref reaches, as an unfinished write leaves
    let orphan = cat
        .store()
        .put_object("node", Bytes::from_static(b"orphan"))
        .await
        .unwrap();
    let _ = ds;
    // a layout pointer of a commit that is gone, as an interrupted gc leaves
    let pointer = "datasets/labels/layouts/".to_string() + &"ab".repeat(32);
    cat.store()
        .put_file(&pointer, Bytes::from(orphan.to_hex()))
        .await
        .unwrap();
    let r = fsck(&cat).await;
    assert!(r.is_clean(), "{r:?}");
    let mut got = r.orphans.clone();
    got.sort();
    assert_eq!(got, vec![pointer, Store::object_path("node", &orphan)]);
}
