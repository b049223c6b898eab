//! Revert and reset as new commits: content, content hashes, history kept, conflicts.

use quiver_core::{CoreError, VersionSpec};

use crate::common::*;

fn v(c: &quiver_core::Commit) -> VersionSpec {
    VersionSpec::Version(c.id.to_hex())
}

#[tokio::test]
async fn reset_equals_the_target_content_hash_and_keeps_history() {
    let (_, ds) = new_dataset("memory://").await;
    let v1 = ds
        .append("main", &[synthetic(300, 3, 0.0)], "base")
        .await
        .unwrap();
    // edits of every kind, then an OPTIMIZE: the head's layout is on another base than v1's
    let mut t = ds.begin("main").await.unwrap();
    t.upsert(&batch(&[
        ("s0000001", 0, "kite", 0.5),
        ("s0000400", 0, "new", 0.1),
    ]))
    .await
    .unwrap();
    t.commit("edit").await.unwrap();
    ds.delete(
        "main",
        &batch(&[("s0000002", 1, "x", 0.0)])
            .project(&[0, 1])
            .unwrap(),
        "delete",
    )
    .await
    .unwrap();
    ds.optimize_with("main", true).await.unwrap();
    let before: Vec<_> = ds.history("main").await.unwrap();
    let r = ds
        .reset_branch("main", &v(&v1), None, "tester")
        .await
        .unwrap();
    assert!(r.committed);
    assert_eq!(r.head.root, v1.root, "same content hash as the target");
    assert_ne!(r.head.id, v1.id, "a new commit");
    assert_eq!(r.head.parents, vec![before[0].id]);
    assert_eq!(
        rows(&ds.head("main").await.unwrap()).await,
        rows(&ds.snapshot(v1.clone())).await
    );
    // every earlier commit is still there, unchanged
    let after = ds.history("main").await.unwrap();
    assert_eq!(after.len(), before.len() + 1);
    assert!(before.iter().all(|c| after.iter().any(|a| a.id == c.id)));
    // equal content: nothing to do
    let again = ds
        .reset_branch("main", &v(&v1), None, "tester")
        .await
        .unwrap();
    assert!(!again.committed);
    assert_eq!(again.head.id, r.head.id);
}

#[tokio::test]
async fn revert_undoes_one_commit_and_stops_on_later_changes_to_its_labels() {
    let (_, ds) = new_dataset("memory://").await;
    ds.append("main", &[synthetic(50, 2, 0.0)], "base")
        .await
        .unwrap();
    let base = ds.head("main").await.unwrap();
    let edit = ds
        .upsert("main", &[batch(&[("s0000003", 0, "kite", 0.9)])], "edit")
        .await
        .unwrap();
    let later = ds
        .upsert("main", &[batch(&[("s0000007", 1, "bus", 0.2)])], "later")
        .await
        .unwrap();
    let r = ds.revert(&v(&edit), "main", None, "tester").await.unwrap();
    assert!(r.committed);
    assert_eq!(r.head.parents, vec![later.id]);
    assert_eq!(r.head.data.summary.operation, "revert");
    let got = rows(&ds.head("main").await.unwrap()).await;
    // `later`'s content with the edited label as it was before the edit
    let orig = rows(&base)
        .await
        .into_iter()
        .find(|x| x.0 == "s0000003" && x.1 == 0)
        .unwrap();
    let want: Vec<_> = rows(&ds.snapshot(later.clone()))
        .await
        .into_iter()
        .map(|row| {
            if row.0 == "s0000003" && row.1 == 0 {
                orig.clone()
            } else {
                row
            }
        })
        .collect();
    assert_eq!(got, want);
    // a label changed again after the reverted commit is a conflict: nothing committed
    let edit2 = ds
        .upsert("main", &[batch(&[("s0000009", 0, "owl", 0.3)])], "edit2")
        .await
        .unwrap();
    let head = ds
        .upsert("main", &[batch(&[("s0000009", 0, "hawk", 0.3)])], "again")
        .await
        .unwrap();
    match ds.revert(&v(&edit2), "main", None, "tester").await {
        Err(CoreError::RevertConflicts { count, labels, .. }) => {
            assert_eq!(count, 1);
            assert_eq!(labels, "(s0000009, 0)");
        }
        other => panic!("expected a revert conflict, got {other:?}"),
    }
    assert_eq!(ds.branch_head("main").await.unwrap().commit.id, head.id);
}

#[tokio::test]
async fn revert_of_a_merge_commit_undoes_what_the_merge_brought() {
    let (_, ds) = new_dataset("memory://").await;
    ds.append("main", &[synthetic(40, 2, 0.0)], "base")
        .await
        .unwrap();
    let before_merge = ds.head("main").await.unwrap();
    ds.create_branch("feat", &VersionSpec::main())
        .await
        .unwrap();
    ds.upsert("feat", &[batch(&[("s0000001", 0, "feat", 0.1)])], "feat")
        .await
        .unwrap();
    ds.upsert("main", &[batch(&[("s0000002", 0, "main", 0.2)])], "main")
        .await
        .unwrap();
    let ours = ds.head("main").await.unwrap();
    let m = ds
        .merge(&VersionSpec::Branch("feat".into()), "main", None, "tester")
        .await
        .unwrap();
    let merge_commit = m.commit.unwrap();
    assert_eq!(merge_commit.parents.len(), 2);
    let r = ds
        .revert(&v(&merge_commit), "main", None, "tester")
        .await
        .unwrap();
    assert!(r.committed);
    // back to the first parent's content: main's own change stays, feat's is gone
    assert_eq!(r.head.root, ours.commit().root);
    assert_ne!(r.head.root, before_merge.commit().root);
}

#[tokio::test]
async fn revert_refuses_the_first_commit_and_commits_off_the_branch() {
    let (_, ds) = new_dataset("memory://").await;
    ds.append("main", &[synthetic(5, 1, 0.0)], "base")
        .await
        .unwrap();
    let first = ds.history("main").await.unwrap().pop().unwrap();
    let e = ds.revert(&v(&first), "main", None, "t").await.unwrap_err();
    assert!(e.to_string().contains("it is the first commit"), "{e}");
    ds.create_branch("side", &VersionSpec::main())
        .await
        .unwrap();
    let side = ds
        .upsert("side", &[batch(&[("s0000001", 0, "x", 0.1)])], "side")
        .await
        .unwrap();
    let e = ds.revert(&v(&side), "main", None, "t").await.unwrap_err();
    assert!(
        e.to_string()
            .contains("not in the history of branch 'main'"),
        "{e}"
    );
}
