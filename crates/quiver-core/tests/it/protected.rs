//! Protected branches and pre-merge checks, enforced where a write commits.

use std::sync::Arc;

use quiver_core::{
    BranchCheck, CheckOutcome, CheckRunner, Commit, CoreError, Dataset, VersionSpec,
};

use crate::common::*;

/// A check runner without SQL: a check fails when the version holds a label of class
/// `check.query`.
struct ClassRunner;

#[async_trait::async_trait]
impl CheckRunner for ClassRunner {
    async fn run(
        &self,
        ds: &Dataset,
        commit: &Commit,
        check: &BranchCheck,
    ) -> quiver_core::Result<CheckOutcome> {
        let bad: Vec<_> = rows(&ds.snapshot(commit.clone()))
            .await
            .into_iter()
            .filter(|r| r.2.as_deref() == Some(check.query.as_str()))
            .collect();
        Ok(if bad.is_empty() {
            CheckOutcome::Passed
        } else {
            CheckOutcome::Failed {
                rows: bad.len() as u64,
                sample: format!("{:?}", bad[0]),
            }
        })
    }
}

#[tokio::test]
async fn protection_is_decided_when_the_write_commits() {
    let (_, ds) = new_dataset("memory://").await;
    ds.append("main", &[synthetic(10, 2, 0.0)], "base")
        .await
        .unwrap();
    // a transaction begun before the branch was protected is refused when it commits
    let mut txn = ds.begin("main").await.unwrap();
    txn.upsert(&batch(&[("s0000001", 0, "late", 0.1)]))
        .await
        .unwrap();
    ds.set_branch_protected("main", true).await.unwrap();
    let head = ds.branch_head("main").await.unwrap().commit.id;
    match txn.commit("late").await {
        Err(CoreError::ProtectedBranch { branch, .. }) => assert_eq!(branch, "main"),
        other => panic!("expected a protected-branch refusal, got {other:?}"),
    }
    assert_eq!(ds.branch_head("main").await.unwrap().commit.id, head);
    let e = ds
        .append("main", &[batch(&[("s0000099", 0, "x", 0.1)])], "m")
        .await
        .unwrap_err();
    assert!(matches!(e, CoreError::ProtectedBranch { .. }), "{e}");
    ds.create_branch("kept", &VersionSpec::main())
        .await
        .unwrap();
    ds.set_branch_protected("kept", true).await.unwrap();
    for e in [
        ds.delete_branch("kept").await.unwrap_err(),
        ds.rename_branch("kept", "other").await.unwrap_err(),
    ] {
        assert!(matches!(e, CoreError::ProtectedBranch { .. }), "{e}");
    }
    // merges are what it takes
    ds.create_branch("dev", &VersionSpec::main()).await.unwrap();
    ds.upsert("dev", &[batch(&[("s0000001", 0, "dev", 0.1)])], "dev")
        .await
        .unwrap();
    let r = ds
        .merge(&VersionSpec::Branch("dev".into()), "main", None, "t")
        .await
        .unwrap();
    assert_ne!(r.head, head);
    assert!(ds.branch_settings("main").await.unwrap().protected);
}

#[tokio::test]
async fn checks_judge_every_merge_and_fail_closed_without_a_runner() {
    let (cat, ds) = new_dataset("memory://").await;
    ds.append("main", &[synthetic(10, 2, 0.0)], "base")
        .await
        .unwrap();
    ds.add_branch_check("main", "no_bad", "bad").await.unwrap();
    ds.create_branch("dev", &VersionSpec::main()).await.unwrap();
    ds.upsert("dev", &[batch(&[("s0000001", 0, "ok", 0.1)])], "ok")
        .await
        .unwrap();
    let head = ds.branch_head("main").await.unwrap().commit.id;
    let dev = VersionSpec::Branch("dev".into());
    // no runner installed: the merge is refused, never let through unchecked
    let e = ds.merge(&dev, "main", None, "t").await.unwrap_err();
    assert!(matches!(e, CoreError::ChecksUnavailable { .. }), "{e}");
    cat.set_check_runner(Arc::new(ClassRunner));
    // fast-forward: the source's commit is judged
    ds.upsert("dev", &[batch(&[("s0000002", 1, "bad", 0.1)])], "bad")
        .await
        .unwrap();
    match ds.merge(&dev, "main", None, "t").await {
        Err(CoreError::CheckFailed { check, rows, .. }) => {
            assert_eq!((check.as_str(), rows), ("no_bad", 1));
        }
        other => panic!("expected a failed check, got {other:?}"),
    }
    assert_eq!(ds.branch_head("main").await.unwrap().commit.id, head);
    // a merge commit: the merge result is judged
    ds.upsert("main", &[batch(&[("s0000005", 0, "main", 0.1)])], "main")
        .await
        .unwrap();
    let e = ds.merge(&dev, "main", None, "t").await.unwrap_err();
    assert!(matches!(e, CoreError::CheckFailed { .. }), "{e}");
    ds.upsert("dev", &[batch(&[("s0000002", 1, "fine", 0.1)])], "fix")
        .await
        .unwrap();
    let r = ds.merge(&dev, "main", None, "t").await.unwrap();
    assert_eq!(r.kind, quiver_core::MergeKind::Merged);
    // direct writes to an unprotected branch with checks are not judged (pre-merge checks)
    ds.upsert("main", &[batch(&[("s0000009", 0, "bad", 0.1)])], "direct")
        .await
        .unwrap();
}
