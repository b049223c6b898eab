//! Fault injection: a failed put leaves refs and objects at their last committed state.

use std::sync::Arc;

use bytes::Bytes;
use object_store::memory::InMemory;
use object_store::ObjectStore;
use quiver_store::testing::FaultyStore;
use quiver_store::{Store, StoreError};
use quiver_tree::Hash;

fn faulty() -> (Arc<FaultyStore>, Store) {
    let inner: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let faulty = Arc::new(FaultyStore::new(inner));
    let store = Store::from_object_store(faulty.clone(), "cat");
    (faulty, store)
}

#[tokio::test]
async fn failed_ref_put_changes_nothing() {
    let (faults, store) = faulty();
    let r = "datasets/d/branches/main";
    let s0 = store
        .update_ref(r, None, Some(Hash::of(b"a")), "t", "c")
        .await
        .unwrap();
    faults.fail_puts_matching("refs/");
    let before = store.bytes_written();
    let err = store
        .update_ref(r, Some(0), Some(Hash::of(b"b")), "t", "c")
        .await;
    assert!(matches!(err, Err(StoreError::ObjectStore(_))), "{err:?}");
    assert_eq!(faults.failed_puts(), 1);
    assert_eq!(store.bytes_written(), before);
    assert_eq!(store.read_ref(r).await.unwrap(), Some(s0));
    assert_eq!(store.ref_log(r).await.unwrap().len(), 1);
    faults.heal();
    let s1 = store
        .update_ref(r, Some(0), Some(Hash::of(b"b")), "t", "c")
        .await
        .unwrap();
    assert_eq!(store.read_ref(r).await.unwrap(), Some(s1));
}

#[tokio::test]
async fn failed_hint_write_still_moves_ref() {
    let (faults, store) = faulty();
    let r = "datasets/d/branches/main";
    store
        .update_ref(r, None, Some(Hash::of(b"a")), "t", "c")
        .await
        .unwrap();
    faults.fail_puts_matching("/HEAD");
    let s1 = store
        .update_ref(r, Some(0), Some(Hash::of(b"b")), "t", "c")
        .await
        .unwrap();
    assert_eq!(faults.failed_puts(), 1);
    assert_eq!(store.read_ref(r).await.unwrap(), Some(s1));
}

#[tokio::test]
async fn fail_after_puts_then_heal() {
    let (faults, store) = faulty();
    faults.fail_after_puts(2);
    store
        .put_object("node", Bytes::from_static(b"1"))
        .await
        .unwrap();
    store.put_file("f", Bytes::from_static(b"2")).await.unwrap();
    assert!(store
        .put_object("node", Bytes::from_static(b"3"))
        .await
        .is_err());
    assert!(store.put_file("g", Bytes::from_static(b"4")).await.is_err());
    assert!(!store.has_object("node", &Hash::of(b"3")).await.unwrap());
    // Reads still work.
    assert_eq!(store.get_file("f").await.unwrap(), Bytes::from_static(b"2"));
    faults.heal();
    store
        .put_object("node", Bytes::from_static(b"3"))
        .await
        .unwrap();
    assert_eq!(store.bytes_written(), 3);
}
