//! `quiver fsck` and `--sync` through the binary: exit codes, human and JSON reports, a
//! half-created dataset skipped by `quiver datasets` and repaired.

use crate::io_cli::quiver;

#[test]
fn fsck_reports_clean_problems_and_repairs_half_created_datasets() {
    let dir = tempfile::tempdir().unwrap();
    let cat = dir.path().join("cat");
    let (ok, _, err) = quiver(&cat, &["--sync", "false", "demo", "--rows", "500"]);
    assert!(ok, "{err}");
    let (ok, out, err) = quiver(&cat, &["fsck"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("catalog is clean"), "{out}");

    // a creation that stopped after its configuration
    let half = cat.join("datasets/half");
    std::fs::create_dir_all(&half).unwrap();
    std::fs::copy(
        cat.join("datasets/demo/dataset.json"),
        half.join("dataset.json"),
    )
    .unwrap();
    let (ok, out, err) = quiver(&cat, &["datasets"]);
    assert!(ok, "{err}");
    assert!(out.contains("demo") && !out.contains("half"), "{out}");
    let (ok, out, err) = quiver(&cat, &["fsck", "--format", "json"]);
    assert!(!ok, "problems exit non-zero");
    assert!(err.contains("1 problem"), "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["problems"][0]["kind"], "half_created");
    assert_eq!(report["problems"][0]["path"], "datasets/half/dataset.json");
    let (ok, out, err) = quiver(&cat, &["fsck", "--repair"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("[repaired]"), "{out}");
    assert!(!half.join("dataset.json").exists());

    // a branch naming a commit that is gone
    let commits = cat.join("objects/commit");
    for sub in std::fs::read_dir(&commits).unwrap() {
        std::fs::remove_dir_all(sub.unwrap().path()).unwrap();
    }
    let (ok, out, _) = quiver(&cat, &["fsck"]);
    assert!(!ok);
    assert!(
        out.contains("dangling_ref") && out.contains("refs/datasets/demo/branches/main/"),
        "{out}"
    );
}

#[test]
fn fsck_help_teaches() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out, _) = quiver(dir.path(), &["fsck", "--help"]);
    assert!(ok);
    for word in [
        "dangling_ref",
        "half_created",
        "orphan",
        "--repair",
        "--format",
        "VACUUM",
    ] {
        assert!(out.contains(word), "{word} missing from:\n{out}");
    }
    let (ok, _, err) = quiver(dir.path(), &["--sync", "maybe", "datasets"]);
    assert!(!ok && err.contains("--sync"), "{err}");
}
