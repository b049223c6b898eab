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

/// `--help` names the settings an s3:// catalog is opened with.
#[test]
fn help_names_the_s3_settings() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out, _) = quiver(dir.path(), &["--help"]);
    assert!(ok);
    for word in [
        "s3://bucket/prefix",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_REGION",
        "AWS_ENDPOINT_URL",
        "AWS_ALLOW_HTTP",
    ] {
        assert!(out.contains(word), "{word} missing from:\n{out}");
    }
}

/// A bucket that does not exist is named, with the server asked (needs the S3 server of
/// `QUIVER_TEST_S3_URL`, which scripts/test.sh starts).
#[test]
#[ignore = "needs an S3 server: set QUIVER_TEST_S3_URL (scripts/test.sh starts one)"]
fn a_missing_bucket_is_named() {
    assert!(
        std::env::var("QUIVER_TEST_S3_URL").is_ok(),
        "QUIVER_TEST_S3_URL names the S3 prefix to test (scripts/moto-s3.sh)"
    );
    let dir = tempfile::tempdir().unwrap();
    let url = "s3://quiver-no-such-bucket-4711/labels";
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_quiver"))
        .args(["--catalog", url, "datasets"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("bucket 'quiver-no-such-bucket-4711' does not exist")
            && err.contains("AWS_ENDPOINT_URL"),
        "{err}"
    );
}

/// `quiver metadata`: set, show, remove; dataset and column entries; no commit made.
#[test]
fn metadata_is_set_shown_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let cat = dir.path().join("cat");
    let (ok, _, err) = quiver(&cat, &["--sync", "false", "demo", "--rows", "200"]);
    assert!(ok, "{err}");
    let (ok, log_before, _) = quiver(&cat, &["log", "demo"]);
    assert!(ok);
    let (ok, out, _) = quiver(&cat, &["metadata", "demo"]);
    assert!(ok);
    assert!(out.contains("(no metadata)"), "{out}");
    let (ok, out, err) = quiver(
        &cat,
        &[
            "metadata",
            "demo",
            "--set",
            "owner=vision-team",
            "--set",
            "fps=30",
        ],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("owner\tvision-team") && out.contains("fps\t30"),
        "{out}"
    );
    let (ok, out, err) = quiver(
        &cat,
        &[
            "metadata",
            "demo",
            "--column",
            "bbox_x",
            "--set",
            "unit=fraction of width",
        ],
    );
    assert!(ok, "{err}");
    assert!(out.contains("bbox_x.unit\tfraction of width"), "{out}");
    let (ok, out, err) = quiver(&cat, &["metadata", "demo", "--unset", "fps"]);
    assert!(ok, "{err}");
    assert!(!out.contains("fps") && out.contains("bbox_x.unit"), "{out}");
    let (ok, _, err) = quiver(
        &cat,
        &["metadata", "demo", "--column", "nope", "--set", "a=b"],
    );
    assert!(!ok && err.contains("column 'nope' not found"), "{err}");
    let (ok, _, err) = quiver(&cat, &["metadata", "demo", "--set", "novalue"]);
    assert!(!ok && err.contains("expected KEY=VALUE"), "{err}");
    // no commit was made by any of it
    let (ok, log_after, _) = quiver(&cat, &["log", "demo"]);
    assert!(ok);
    assert_eq!(log_after, log_before);
}
