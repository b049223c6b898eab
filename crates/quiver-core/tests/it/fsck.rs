//! `Catalog::fsck`: a clean catalog is clean; dangling refs, corrupt objects and ref
//! entries are named by path; orphans are listed, not problems.

use bytes::Bytes;
use quiver_core::{FsckOptions, FsckReport, ProblemKind, VersionSpec};
use quiver_store::Store;

use crate::common::*;

async fn fsck(cat: &quiver_core::Catalog) -> FsckReport {
    cat.fsck(FsckOptions::default()).await.unwrap()
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
    assert!(r.nodes > 1 && r.packs == 2, "{r:?}");
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

    // a node under a live commit goes missing
    let (cat, ds) = populated().await;
    let root = ds.branch_head("main").await.unwrap().commit.root;
    cat.store()
        .delete(&Store::object_path("node", &root))
        .await
        .unwrap();
    let r = fsck(&cat).await;
    assert_eq!(r.count(ProblemKind::MissingObject), 1, "{r:?}");
    assert_eq!(r.problems[0].path, Store::object_path("node", &root));
}

#[tokio::test]
async fn corrupt_objects_and_ref_entries_are_named_by_path() {
    let (cat, ds) = populated().await;
    let root = ds.branch_head("main").await.unwrap().commit.root;
    let node = Store::object_path("node", &root);
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
async fn orphans_are_listed_not_problems() {
    let (cat, ds) = populated().await;
    // an object no ref reaches, as an unfinished write leaves
    let orphan = cat
        .store()
        .put_object("node", Bytes::from_static(b"orphan"))
        .await
        .unwrap();
    let _ = ds;
    let r = fsck(&cat).await;
    assert!(r.is_clean(), "{r:?}");
    assert_eq!(r.orphans, vec![Store::object_path("node", &orphan)]);
}
