use quiver_core::{CoreError, VersionSpec};

use crate::common::*;

/// Writers racing on one branch: disjoint changes all land (rebased), none is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_disjoint_writers_lose_nothing() {
    let (_, ds) = new_dataset("memory://").await;
    ds.append("main", &[synthetic(100, 1, 0.0)], "base")
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for w in 0..8 {
        let ds = ds.clone();
        tasks.push(tokio::spawn(async move {
            let name = format!("w{w}");
            ds.append(
                "main",
                &[batch(&[(name.as_str(), 1, "car", w as f64)])],
                &format!("writer {w}"),
            )
            .await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let head = ds.head("main").await.unwrap();
    assert_eq!(rows(&head).await.len(), 108);
    assert_eq!(ds.history("main").await.unwrap().len(), 10);
}

/// Overlapping changes: the second writer fails with a conflict naming the group.
#[tokio::test]
async fn overlapping_writers_conflict() {
    let (_, ds) = new_dataset("memory://").await;
    ds.append("main", &[synthetic(10, 1, 0.0)], "base")
        .await
        .unwrap();
    let mut t1 = ds.begin("main").await.unwrap();
    let mut t2 = ds.begin("main").await.unwrap();
    t1.upsert(&batch(&[("s0000003", 0, "dog", 1.0)]))
        .await
        .unwrap();
    t2.upsert(&batch(&[
        ("s0000003", 0, "cat", 2.0),
        ("s0000004", 0, "cat", 2.0),
    ]))
    .await
    .unwrap();
    let c1 = t1.commit("first").await.unwrap();
    let err = t2.commit("second").await.unwrap_err();
    match &err {
        CoreError::Conflict { keys, .. } => assert!(keys.contains("s0000003"), "{err}"),
        e => panic!("expected conflict, got {e}"),
    }
    assert_eq!(ds.head("main").await.unwrap().commit().id, c1.id);
    let _ = VersionSpec::main();
}
