//! Backend-independent checks, run against every backend by the other modules.

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;
use object_store::ObjectStoreExt;
use quiver_store::{Store, StoreError};
use quiver_tree::Hash;

fn h(s: &str) -> Hash {
    Hash::of(s.as_bytes())
}

/// Putting the same object twice stores it once; reads round-trip.
pub async fn put_twice_stores_once(store: &Store) {
    let data = Bytes::from_static(b"hello labels");
    let before = store.bytes_written();
    let a = store.put_object("node", data.clone()).await.unwrap();
    let after_first = store.bytes_written();
    assert_eq!(after_first - before, data.len() as u64);
    let b = store.put_object("node", data.clone()).await.unwrap();
    assert_eq!(a, b);
    assert_eq!(a, Hash::of(&data));
    assert_eq!(store.bytes_written(), after_first, "second put wrote bytes");
    let listed = store.list("objects/node").await.unwrap();
    assert_eq!(listed, vec![Store::object_path("node", &a)]);
    assert!(store.has_object("node", &a).await.unwrap());
    assert!(!store.has_object("node", &h("other")).await.unwrap());
    assert!(!store.has_object("commit", &a).await.unwrap());
    assert_eq!(store.get_object("node", &a).await.unwrap(), data);
    match store.get_object("node", &h("missing")).await {
        Err(StoreError::NotFound { path }) => assert!(path.starts_with("objects/node/")),
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert!(matches!(
        store.put_object("no/slash", data).await,
        Err(StoreError::InvalidPath { .. })
    ));
}

/// Overwriting an object's bytes behind the store's back is detected on read.
pub async fn corruption_detected(store: &Store) {
    let data = Bytes::from_static(b"a label group that will rot");
    let hash = store.put_object("leaf", data.clone()).await.unwrap();
    let mut rotten = data.to_vec();
    rotten[3] ^= 0x01;
    let full = store.full_path(&Store::object_path("leaf", &hash));
    store
        .object_store()
        .put(&full, Bytes::from(rotten.clone()).into())
        .await
        .unwrap();
    assert_corrupt(store, &hash, &rotten).await;
}

pub async fn assert_corrupt(store: &Store, hash: &Hash, rotten: &[u8]) {
    match store.get_object("leaf", hash).await {
        Err(e @ StoreError::Corrupt { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains(&hash.to_hex()), "{msg}");
            assert!(msg.contains(&Hash::of(rotten).to_hex()), "{msg}");
            assert!(msg.contains("is corrupt"), "{msg}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

/// Plain files: overwrite, create-if-absent, typed NotFound, sorted relative listing, delete.
pub async fn plain_files(store: &Store) {
    store
        .put_file("meta/b.json", Bytes::from_static(b"1"))
        .await
        .unwrap();
    store
        .put_file("meta/b.json", Bytes::from_static(b"2"))
        .await
        .unwrap();
    assert_eq!(
        store.get_file("meta/b.json").await.unwrap(),
        Bytes::from_static(b"2")
    );
    assert!(store
        .put_file_if_absent("meta/a.json", Bytes::from_static(b"x"))
        .await
        .unwrap());
    assert!(!store
        .put_file_if_absent("meta/a.json", Bytes::from_static(b"y"))
        .await
        .unwrap());
    assert_eq!(
        store.get_file("meta/a.json").await.unwrap(),
        Bytes::from_static(b"x")
    );
    store
        .put_file("meta/sub/c.json", Bytes::from_static(b"c"))
        .await
        .unwrap();
    assert_eq!(
        store.list("meta").await.unwrap(),
        vec!["meta/a.json", "meta/b.json", "meta/sub/c.json"]
    );
    assert!(store.list("nothing/here").await.unwrap().is_empty());
    assert!(matches!(
        store.get_file("meta/zzz.json").await,
        Err(StoreError::NotFound { path }) if path == "meta/zzz.json"
    ));
    assert_eq!(store.get_file_opt("meta/zzz.json").await.unwrap(), None);
    store.delete("meta/a.json").await.unwrap();
    store.delete("meta/a.json").await.unwrap();
    assert_eq!(store.get_file_opt("meta/a.json").await.unwrap(), None);
}

/// Create, move, stale move, delete, re-create; ref log and listing.
pub async fn ref_cas(store: &Store) {
    let r = "datasets/cats/branches/main";
    assert_eq!(store.read_ref(r).await.unwrap(), None);
    assert!(store.ref_log(r).await.unwrap().is_empty());

    let s0 = store
        .update_ref(r, None, Some(h("c0")), "ann", "create")
        .await
        .unwrap();
    assert_eq!((s0.seq, s0.target), (0, Some(h("c0"))));
    // Creating again conflicts.
    match store
        .update_ref(r, None, Some(h("x")), "bob", "create")
        .await
    {
        Err(e @ StoreError::RefConflict { .. }) => {
            assert!(e.to_string().contains(r), "{e}");
            assert!(matches!(
                e,
                StoreError::RefConflict {
                    actual: Some(0),
                    expected: None,
                    ..
                }
            ));
        }
        other => panic!("expected conflict, got {other:?}"),
    }
    let s1 = store
        .update_ref(r, Some(0), Some(h("c1")), "ann", "commit")
        .await
        .unwrap();
    assert_eq!(s1.seq, 1);
    assert_eq!(store.read_ref(r).await.unwrap(), Some(s1));
    // Stale expected seq.
    match store
        .update_ref(r, Some(0), Some(h("c2")), "bob", "commit")
        .await
    {
        Err(StoreError::RefConflict {
            name,
            expected,
            actual,
        }) => {
            assert_eq!((name.as_str(), expected, actual), (r, Some(0), Some(1)));
        }
        other => panic!("expected conflict, got {other:?}"),
    }
    // Expected seq from the future.
    assert!(matches!(
        store
            .update_ref(r, Some(7), Some(h("c2")), "bob", "commit")
            .await,
        Err(StoreError::RefConflict {
            actual: Some(1),
            ..
        })
    ));
    assert_eq!(store.read_ref(r).await.unwrap(), Some(s1));

    // A second ref, and a tag; then delete main.
    let dev = "datasets/cats/branches/dev";
    store
        .update_ref(dev, None, Some(h("c1")), "bob", "branch")
        .await
        .unwrap();
    let tag = "datasets/cats/tags/v1";
    store
        .update_ref(tag, None, Some(h("c1")), "bob", "tag")
        .await
        .unwrap();
    let nested = "datasets/cats/branches/dev/feature";
    store
        .update_ref(nested, None, Some(h("c9")), "bob", "branch")
        .await
        .unwrap();

    let del = store
        .update_ref(r, Some(1), None, "ann", "delete")
        .await
        .unwrap();
    assert_eq!(
        del,
        quiver_store::RefState {
            seq: 2,
            target: None
        }
    );
    assert_eq!(store.read_ref(r).await.unwrap(), Some(del));
    let names: Vec<String> = store
        .list_refs("datasets/cats/branches")
        .await
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, vec![dev.to_string(), nested.to_string()]);
    let all = store.list_refs("").await.unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[2].0, tag);
    assert_eq!(all[2].1.target, Some(h("c1")));
    assert!(store.list_refs("datasets/dogs").await.unwrap().is_empty());

    // Re-create from the tombstone.
    assert!(matches!(
        store
            .update_ref(r, None, Some(h("c3")), "ann", "create")
            .await,
        Err(StoreError::RefConflict {
            actual: Some(2),
            ..
        })
    ));
    let s3 = store
        .update_ref(r, Some(2), Some(h("c3")), "ann", "recreate")
        .await
        .unwrap();
    assert_eq!(s3.seq, 3);
    assert_eq!(
        store
            .list_refs("datasets/cats/branches")
            .await
            .unwrap()
            .len(),
        3
    );

    let log = store.ref_log(r).await.unwrap();
    let summary: Vec<_> = log
        .iter()
        .map(|e| (e.seq, e.old, e.new, e.author.as_str(), e.reason.as_str()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (0, None, Some(h("c0")), "ann", "create"),
            (1, Some(h("c0")), Some(h("c1")), "ann", "commit"),
            (2, Some(h("c1")), None, "ann", "delete"),
            (3, None, Some(h("c3")), "ann", "recreate"),
        ]
    );
    let now = chrono::Utc::now();
    for w in log.windows(2) {
        assert!(w[0].time <= w[1].time);
    }
    assert!((now - log[0].time).num_seconds().abs() < 120);
}

/// Invalid ref names are rejected before touching storage.
pub async fn invalid_names(store: &Store) {
    for bad in [
        "a/../b",
        "x.lock",
        "",
        "a b",
        "a//b",
        "/a",
        "a/",
        ".hidden",
        "a\\b",
        "a:b",
        "a~1",
        "a^",
        "a?",
        "a*",
        "a[",
        "a\tb",
        "a/HEAD",
        "a/00000000000000000001.json",
        "a..b",
    ] {
        match store.update_ref(bad, None, Some(h("c")), "x", "y").await {
            Err(StoreError::InvalidRefName { name, .. }) => assert_eq!(name, bad),
            other => panic!("{bad:?} accepted: {other:?}"),
        }
        assert!(matches!(
            store.read_ref(bad).await,
            Err(StoreError::InvalidRefName { .. })
        ));
    }
    for bad in ["", ".", "..", "x.lock", "a b", "a/b", "HEAD"] {
        assert!(quiver_store::validate_ref_segment(bad).is_err(), "{bad:?}");
    }
    for good in ["main", "feature-1", "v1.0", "release_2024", "ünïcode"] {
        quiver_store::validate_ref_segment(good).unwrap();
    }
    // names are bounded (bytes, not characters), and an over-long name is not echoed whole
    let longest = "n".repeat(quiver_store::MAX_NAME_BYTES);
    quiver_store::validate_ref_segment(&longest).unwrap();
    for long in ["n".repeat(241), "é".repeat(121), "x".repeat(10_000)] {
        let err = quiver_store::validate_ref_segment(&long).expect_err("too long");
        let msg = err.to_string();
        assert!(msg.contains("at most 240 bytes"), "{msg}");
        assert!(msg.len() < 300, "{msg}");
    }
    assert!(store.list("refs").await.unwrap().is_empty());
}

/// 16 writers race from the same seq: exactly one wins. Then 16 writers with a retry loop
/// all land, none lost.
pub async fn race(store: &Store) {
    let r = "datasets/race/branches/main";
    store
        .update_ref(r, None, Some(h("base")), "t", "create")
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.update_ref(r, Some(0), Some(h(&format!("w{i}"))), "t", "race")
                .await
        }));
    }
    let mut wins = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(st) => {
                assert_eq!(st.seq, 1);
                wins += 1;
            }
            Err(StoreError::RefConflict { name, .. }) => assert_eq!(name, r),
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    assert_eq!(wins, 1);
    assert_eq!(store.read_ref(r).await.unwrap().unwrap().seq, 1);

    let r2 = "datasets/race/branches/retry";
    store
        .update_ref(r2, None, Some(h("base")), "t", "create")
        .await
        .unwrap();
    let store = Arc::new(store.clone());
    let mut tasks = Vec::new();
    for i in 0..16 {
        let s = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let target = h(&format!("r{i}"));
            let mut attempts = 0;
            loop {
                attempts += 1;
                let cur = s.read_ref(r2).await.unwrap().unwrap();
                match s
                    .update_ref(r2, Some(cur.seq), Some(target), &format!("w{i}"), "retry")
                    .await
                {
                    Ok(_) => return attempts,
                    Err(StoreError::RefConflict { .. }) => tokio::task::yield_now().await,
                    Err(e) => panic!("unexpected error {e}"),
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let head = store.read_ref(r2).await.unwrap().unwrap();
    assert_eq!(head.seq, 16);
    let log = store.ref_log(r2).await.unwrap();
    assert_eq!(log.len(), 17);
    let moves: BTreeSet<Hash> = log[1..].iter().filter_map(|e| e.new).collect();
    assert_eq!(moves.len(), 16, "lost or duplicated moves");
    for w in log.windows(2) {
        assert_eq!(
            w[1].old, w[0].new,
            "ref log chain broken at seq {}",
            w[1].seq
        );
    }
    assert_eq!(head.target, log[16].new);
}

/// A HEAD hint behind or ahead of reality (or garbage, or missing) still yields the true head.
pub async fn stale_hint(store: &Store) {
    let r = "datasets/hint/branches/main";
    store
        .update_ref(r, None, Some(h("0")), "t", "c")
        .await
        .unwrap();
    for i in 1..=5 {
        store
            .update_ref(r, Some(i - 1), Some(h(&i.to_string())), "t", "c")
            .await
            .unwrap();
    }
    let truth = store.read_ref(r).await.unwrap().unwrap();
    assert_eq!(truth.seq, 5);
    let hint = format!("refs/{r}/HEAD");
    for content in ["2\n", "0", "999\n", "garbage"] {
        store.put_file(&hint, Bytes::from(content)).await.unwrap();
        assert_eq!(
            store.read_ref(r).await.unwrap(),
            Some(truth),
            "hint {content:?}"
        );
    }
    store.delete(&hint).await.unwrap();
    assert_eq!(store.read_ref(r).await.unwrap(), Some(truth));
    // CAS still works from a stale hint.
    store
        .put_file(&hint, Bytes::from_static(b"1"))
        .await
        .unwrap();
    assert!(matches!(
        store.update_ref(r, Some(1), Some(h("x")), "t", "c").await,
        Err(StoreError::RefConflict {
            actual: Some(5),
            ..
        })
    ));
    let s6 = store
        .update_ref(r, Some(5), Some(h("6")), "t", "c")
        .await
        .unwrap();
    assert_eq!(store.read_ref(r).await.unwrap(), Some(s6));
    assert_eq!(store.ref_log(r).await.unwrap().len(), 7);
    // A hint ahead of reality on a never-created ref.
    let ghost = "datasets/hint/branches/ghost";
    store
        .put_file(&format!("refs/{ghost}/HEAD"), Bytes::from_static(b"3"))
        .await
        .unwrap();
    assert_eq!(store.read_ref(ghost).await.unwrap(), None);
}

/// Everything at once, for backends set up by the caller.
pub async fn all(store: &Store) {
    put_twice_stores_once(store).await;
    corruption_detected(store).await;
    plain_files(store).await;
    invalid_names(store).await;
    ref_cas(store).await;
    race(store).await;
    stale_hint(store).await;
}
