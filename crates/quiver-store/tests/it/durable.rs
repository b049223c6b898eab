//! Durability of local stores: every write is fsynced (file and directory) before it
//! returns, ref entries included; `sync: false`, memory and S3 stores skip it.

use bytes::Bytes;
use quiver_store::{Store, StoreOptions};
use quiver_tree::Hash;

#[tokio::test]
async fn local_writes_are_synced_before_they_return() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().to_str().unwrap()).unwrap();
    assert!(store.syncs());
    let h = store
        .put_object("node", Bytes::from_static(b"abc"))
        .await
        .unwrap();
    assert_eq!(store.synced_files(), 1, "the object");
    store
        .put_file("datasets/d/x.json", Bytes::from_static(b"{}"))
        .await
        .unwrap();
    assert_eq!(store.synced_files(), 2, "the file");
    store
        .update_ref("datasets/d/branches/main", None, Some(h), "t", "c")
        .await
        .unwrap();
    assert_eq!(
        store.synced_files(),
        3,
        "the ref entry (the head hint is advisory)"
    );
    // an object that is already there is checked whole and synced, not skipped
    store
        .put_object("node", Bytes::from_static(b"abc"))
        .await
        .unwrap();
    assert_eq!(store.synced_files(), 4);
}

#[tokio::test]
async fn a_torn_object_is_rewritten_by_the_next_put() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().to_str().unwrap()).unwrap();
    let bytes = Bytes::from_static(b"the whole object");
    let h = Hash::of(&bytes);
    // a crash between rename and fsync can leave an empty file at the object's path
    let path = dir.path().join(Store::object_path("node", &h));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, b"").unwrap();
    store.put_object("node", bytes.clone()).await.unwrap();
    assert_eq!(store.get_object("node", &h).await.unwrap(), bytes);
}

#[tokio::test]
async fn sync_off_and_memory_stores_do_not_sync() {
    let dir = tempfile::tempdir().unwrap();
    let off = Store::open_with(dir.path().to_str().unwrap(), StoreOptions { sync: false }).unwrap();
    off.put_object("node", Bytes::from_static(b"abc"))
        .await
        .unwrap();
    assert!(!off.syncs());
    assert_eq!(off.synced_files(), 0);
    let mem = Store::open("memory://").unwrap();
    mem.put_object("node", Bytes::from_static(b"abc"))
        .await
        .unwrap();
    assert_eq!(mem.synced_files(), 0);
}
