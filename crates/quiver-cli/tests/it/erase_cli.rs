//! `quiver erase` and `quiver assets erase` through the binary.

use crate::io_cli::quiver;

#[test]
fn erase_labels_and_assets() {
    let dir = tempfile::tempdir().unwrap();
    let cat = dir.path().join("cat");
    let (ok, _, err) = quiver(&cat, &["--sync", "false", "demo", "--rows", "2000"]);
    assert!(ok, "{err}");
    let (ok, _, err) = quiver(
        &cat,
        &[
            "sql",
            "-c",
            "CREATE TAG 'v1' ON demo; UPDATE demo SET reviewer = 'zed' WHERE sample_id = 'img-00000001'",
        ],
    );
    assert!(ok, "{err}");
    let (ok, before, err) = quiver(&cat, &["log", "demo"]);
    assert!(ok, "{err}");

    let (ok, out, err) = quiver(
        &cat,
        &[
            "erase",
            "--dataset",
            "demo",
            "--where",
            "sample_id = 'img-00000001'",
            "--reason",
            "request 17",
        ],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("erased from 2 of") && out.contains("commit ids and content hashes unchanged"),
        "{out}"
    );
    // the log (commit ids) is the same; the old version reads erased
    let (ok, after, err) = quiver(&cat, &["log", "demo"]);
    assert!(ok, "{err}");
    assert_eq!(before, after);
    for at in ["AS OF TAG 'v1'", ""] {
        let (ok, out, err) = quiver(
            &cat,
            &[
                "sql",
                "-c",
                &format!("SELECT DISTINCT class, reviewer FROM demo {at} WHERE sample_id = 'img-00000001'"),
            ],
        );
        assert!(ok, "{err}");
        assert!(
            out.contains("<erased>") && !out.contains("zed"),
            "{at}: {out}"
        );
    }
    let (ok, out, err) = quiver(
        &cat,
        &["sql", "-c", "SELECT DISTINCT reason FROM quiver.erasures"],
    );
    assert!(ok && out.contains("request 17"), "{out}{err}");
    let (ok, out, err) = quiver(&cat, &["fsck"]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("packs hold erased labels") && out.contains("catalog is clean"),
        "{out}"
    );

    // errors say what was asked, and erase nothing
    for (pred, needle) in [
        ("nope = 1", "nope"),
        (
            "sample_id = 'x'; DROP DATASET demo",
            "expected one statement",
        ),
        ("sample_id = 'x' REASON 'y'", "the reason goes in --reason"),
    ] {
        let (ok, _, err) = quiver(&cat, &["erase", "-d", "demo", "--where", pred]);
        assert!(!ok && err.contains(needle), "{pred}: {err}");
    }
    let (ok, _, err) = quiver(&cat, &["erase", "-d", "nope", "--where", "true"]);
    assert!(
        !ok && err.contains("dataset 'nope' does not exist"),
        "{err}"
    );

    // assets
    let img = dir.path().join("face.png");
    std::fs::write(&img, b"a face").unwrap();
    let (ok, out, err) = quiver(&cat, &["assets", "put", img.to_str().unwrap()]);
    assert!(ok, "{err}");
    let hash = out.trim().to_string();
    let (ok, out, err) = quiver(&cat, &["assets", "erase", &hash, "--reason", "asked"]);
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!("asset {hash} erased (6 bytes)")),
        "{out}"
    );
    let back = dir.path().join("back.png");
    let (ok, _, err) = quiver(&cat, &["assets", "get", &hash, back.to_str().unwrap()]);
    assert!(!ok, "an erased asset is not served");
    assert!(
        err.contains(&format!("asset {hash} was erased on")) && err.contains("(asked)"),
        "{err}"
    );
    let (ok, _, err) = quiver(&cat, &["assets", "erase", "zz"]);
    assert!(!ok && err.contains("not a blake3 hash"), "{err}");
}
