//! `quiver import` / `export` / `assets` end to end through the binary.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

/// Run `quiver --catalog <catalog> <args>`: (success, stdout, stderr).
pub(crate) fn quiver(catalog: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_quiver"))
        .arg("--catalog")
        .arg(catalog)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn import_export_reimport_and_gc() {
    let dir = tempfile::tempdir().unwrap();
    let cat = dir.path().join("cat");
    let images = dir.path().join("images");
    std::fs::create_dir_all(&images).unwrap();
    std::fs::write(images.join("a.png"), b"image a").unwrap();
    std::fs::write(images.join("b.png"), b"image b").unwrap();
    let ann = dir.path().join("ann.json");
    std::fs::write(
        &ann,
        r#"{"images": [{"id": 1, "file_name": "a.png", "width": 8, "height": 8},
                       {"id": 2, "file_name": "b.png", "width": 8, "height": 8}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 4, 4], "area": 16, "iscrowd": 0},
                            {"id": 2, "image_id": 2, "category_id": 2, "bbox": [1, 1, 2, 2], "area": 4, "iscrowd": 0}],
            "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]}"#,
    )
    .unwrap();
    let (ok, out, err) = quiver(
        &cat,
        &[
            "import",
            "coco",
            ann.to_str().unwrap(),
            "--dataset",
            "d",
            "--images",
            images.to_str().unwrap(),
        ],
    );
    assert!(ok, "{err}");
    assert!(out.contains("imported 2 labels in 2 samples"), "{out}");
    assert!(out.contains("stored 2 images"), "{out}");
    // export COCO and Parquet, re-import: nothing changes
    let exp = dir.path().join("exp.json");
    let (ok, out, err) = quiver(
        &cat,
        &[
            "export",
            "coco",
            "--dataset",
            "d",
            "--ref",
            "main",
            exp.to_str().unwrap(),
        ],
    );
    assert!(ok && out.contains("exported 2 labels"), "{out}{err}");
    let (ok, out, err) = quiver(
        &cat,
        &[
            "import",
            "coco",
            exp.to_str().unwrap(),
            "-d",
            "d",
            "--images",
            images.to_str().unwrap(),
        ],
    );
    assert!(ok && out.contains("nothing to commit"), "{out}{err}");
    let pq = dir.path().join("exp.parquet");
    let (ok, _, err) = quiver(
        &cat,
        &["export", "parquet", "-d", "d", pq.to_str().unwrap()],
    );
    assert!(ok, "{err}");
    let (ok, out, err) = quiver(
        &cat,
        &["import", "parquet", pq.to_str().unwrap(), "-d", "p"],
    );
    assert!(ok && out.contains("imported 2 labels"), "{out}{err}");
    // gc keeps referenced assets
    let (ok, out, err) = quiver(&cat, &["assets", "gc", "--dry-run"]);
    assert!(ok && out.contains("2 assets, 2 referenced"), "{out}{err}");
    // bad input: clear error, non-zero exit
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"images": [], "annotations": [{"id": 1, "image_id": 9, "category_id": 1}], "categories": []}"#).unwrap();
    let (ok, _, err) = quiver(&cat, &["import", "coco", bad.to_str().unwrap(), "-d", "e"]);
    assert!(
        !ok && err.contains("bad.json") && err.contains("image_id 9"),
        "{err}"
    );
}

#[test]
fn gc_reports_collects_and_refuses_bad_options() {
    let dir = tempfile::tempdir().unwrap();
    let cat = dir.path().join("cat");
    let (ok, _, err) = quiver(&cat, &["demo", "--rows", "2000"]);
    assert!(ok, "{err}");
    let (ok, _, err) = quiver(
        &cat,
        &["sql", "-c", "CREATE BRANCH exp FROM demo; USE BRANCH exp ON demo; UPDATE demo SET score = 1.0 WHERE sample_id = 'img-00000003'"],
    );
    assert!(ok, "{err}");
    let (ok, _, err) = quiver(&cat, &["branch", "demo", "--delete", "exp"]);
    assert!(ok, "{err}");

    let (ok, out, err) = quiver(&cat, &["gc", "--help"]);
    assert!(
        ok && out.contains("What is live") && out.contains("--retain"),
        "{out}{err}"
    );
    let (ok, out, err) = quiver(&cat, &["gc", "--dry-run"]);
    assert!(ok && out.contains("would delete 0 objects"), "{out}{err}");
    let (ok, out, err) = quiver(&cat, &["gc", "--retain", "0d", "--dry-run"]);
    assert!(ok && out.contains("would delete"), "{out}{err}");
    let (ok, out, err) = quiver(&cat, &["gc", "--retain", "0d"]);
    assert!(ok && out.contains("deleted"), "{out}{err}");
    let (ok, out, err) = quiver(&cat, &["gc", "--retain", "0d"]);
    assert!(ok && out.contains("deleted 0 objects"), "{out}{err}");
    let (ok, out, err) = quiver(&cat, &["log", "demo"]);
    assert!(ok && !out.is_empty(), "history still reads: {out}{err}");

    let (ok, _, err) = quiver(&cat, &["gc", "--retain", "seven"]);
    assert!(!ok && err.contains("invalid retention 'seven'"), "{err}");
    let (ok, _, err) = quiver(&cat, &["gc", "--dataset", "nope"]);
    assert!(!ok && err.contains("'nope'"), "{err}");
}

/// `quiver import yolo` then `quiver export yolo --images`: the folder comes back with its
/// label lines, class names and images, and importing the export again changes nothing.
#[test]
fn yolo_export_round_trips_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let cat = dir.path().join("cat");
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("images")).unwrap();
    std::fs::create_dir_all(src.join("labels")).unwrap();
    std::fs::write(src.join("classes.txt"), "cat\ndog\n").unwrap();
    std::fs::write(src.join("images/a.png"), b"not really a png").unwrap();
    std::fs::write(
        src.join("labels/a.txt"),
        "1 0.5 0.5 0.25 0.25\n0 0.1 0.2 0.3 0.4\n",
    )
    .unwrap();
    let s = src.to_str().unwrap();
    let (ok, _, err) = quiver(
        &cat,
        &["--sync", "false", "import", "yolo", s, "--dataset", "boxes"],
    );
    assert!(ok, "{err}");
    let out = dir.path().join("out");
    let o = out.to_str().unwrap();
    let (ok, stdout, err) = quiver(
        &cat,
        &["export", "yolo", "--dataset", "boxes", o, "--images"],
    );
    assert!(ok, "{err}");
    assert!(stdout.contains("exported 2 labels"), "{stdout}");
    assert_eq!(
        std::fs::read_to_string(out.join("classes.txt")).unwrap(),
        "cat\ndog\n"
    );
    let mut lines: Vec<String> = std::fs::read_to_string(out.join("labels/a.txt"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    lines.sort();
    assert_eq!(lines, ["0 0.1 0.2 0.3 0.4", "1 0.5 0.5 0.25 0.25"]);
    assert_eq!(
        std::fs::read(out.join("images/a.png")).unwrap(),
        b"not really a png"
    );
    let (ok, stdout, err) = quiver(
        &cat,
        &["--sync", "false", "import", "yolo", o, "--dataset", "boxes"],
    );
    // nothing to commit, and said so
    let said = format!("{stdout}{err}");
    assert!(said.contains("already matches the input"), "{said}");
    let _ = ok;
}
