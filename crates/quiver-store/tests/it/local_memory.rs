//! The backend-independent checks on local disk (bare path and `file://`) and memory.

use bytes::Bytes;
use quiver_store::{Store, StoreError};

use crate::checks;

fn local() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("catalog");
    let store = Store::open(root.to_str().unwrap()).unwrap();
    (dir, store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn all_checks_local() {
    let (_dir, store) = local();
    checks::all(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn all_checks_memory() {
    let store = Store::open("memory://").unwrap();
    assert_eq!(store.url(), "memory://");
    checks::all(&store).await;
}

#[tokio::test]
async fn file_url_and_prefixed_store() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}/nested/root", dir.path().display());
    let store = Store::open(&url).unwrap();
    assert_eq!(store.url(), url);
    let hash = store
        .put_object("asset", Bytes::from_static(b"img"))
        .await
        .unwrap();
    let on_disk = dir
        .path()
        .join("nested/root")
        .join(Store::object_path("asset", &hash));
    assert!(on_disk.is_file(), "{}", on_disk.display());

    // A prefixed store over memory keeps everything under its prefix.
    let mem: std::sync::Arc<dyn object_store::ObjectStore> =
        std::sync::Arc::new(object_store::memory::InMemory::new());
    let store = Store::from_object_store(mem.clone(), "/some/prefix/");
    checks::ref_cas(&store).await;
    checks::plain_files(&store).await;
    let plain = Store::from_object_store(mem, "");
    let all = plain.list("").await.unwrap();
    assert!(!all.is_empty());
    assert!(all.iter().all(|p| p.starts_with("some/prefix/")), "{all:?}");
    assert_eq!(store.full_path("x/y").as_ref(), "some/prefix/x/y");
}

#[tokio::test]
async fn flipped_byte_on_disk_is_detected() {
    let (dir, store) = local();
    let data = b"0123456789 some label bytes".to_vec();
    let hash = store
        .put_object("leaf", Bytes::from(data.clone()))
        .await
        .unwrap();
    let file = dir
        .path()
        .join("catalog")
        .join(Store::object_path("leaf", &hash));
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[5] ^= 0x80;
    std::fs::write(&file, &bytes).unwrap();
    checks::assert_corrupt(&store, &hash, &bytes).await;
    // Truncation too.
    std::fs::write(&file, &bytes[..3]).unwrap();
    assert!(matches!(
        store.get_object("leaf", &hash).await,
        Err(StoreError::Corrupt { .. })
    ));
}

#[test]
fn unknown_scheme_is_rejected() {
    match Store::open("ftp://host/x") {
        Err(e @ StoreError::InvalidUrl { .. }) => assert!(e.to_string().contains("ftp"), "{e}"),
        other => panic!("expected InvalidUrl, got {other:?}"),
    }
    assert!(matches!(
        Store::open("s3:///nobucket"),
        Err(StoreError::InvalidUrl { .. })
    ));
}

/// Small plain files of a local store are read in place, large ones and names the object
/// store encodes through it: every kind reads back what was written, and what another
/// writer changes on disk is seen at once (nothing is cached).
#[tokio::test]
async fn local_files_read_in_place_or_through_the_object_store() {
    let (dir, store) = local();
    let small = Bytes::from_static(b"{\"seq\": 3}");
    let large = Bytes::from(vec![7u8; 200 * 1024]);
    store.put_file("refs/a/HEAD", small.clone()).await.unwrap();
    store.put_file("big/file.bin", large.clone()).await.unwrap();
    store.put_file("odd name/x y", small.clone()).await.unwrap();
    assert_eq!(
        store.get_file_opt("refs/a/HEAD").await.unwrap(),
        Some(small.clone())
    );
    assert_eq!(store.get_file("big/file.bin").await.unwrap(), large);
    assert_eq!(
        store.get_file_opt("odd name/x y").await.unwrap(),
        Some(small.clone())
    );
    assert_eq!(store.get_file_opt("refs/b/HEAD").await.unwrap(), None);
    assert!(matches!(
        store.get_file("refs/missing").await,
        Err(StoreError::NotFound { .. })
    ));
    // a directory is not a file
    assert!(store.get_file_opt("refs/a").await.unwrap().is_none());
    // rewritten behind the store's back: read again, not remembered
    std::fs::write(dir.path().join("catalog/refs/a/HEAD"), b"4\n").unwrap();
    assert_eq!(
        store.get_file_opt("refs/a/HEAD").await.unwrap(),
        Some(Bytes::from_static(b"4\n"))
    );
}
