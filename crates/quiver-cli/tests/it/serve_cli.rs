//! `quiver serve` flags: every server limit is a flag with its default shown, and a limit
//! of zero is refused before anything is served.
#![allow(clippy::unwrap_used)]

use std::process::Command;

fn quiver(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_quiver"))
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
fn limit_flags_with_defaults_and_zero_refused() {
    let (ok, out, err) = quiver(&["serve", "--help"]);
    assert!(ok, "{err}");
    for (flag, default) in [
        ("--max-shards", "[default: 4096]"),
        ("--max-flight-info-bytes", "[default: 4194304]"),
        ("--max-statement-bytes", "[default: 1048576]"),
        ("--call-timeout-secs", "[default: 300]"),
        ("--max-calls-per-connection", "[default: 32]"),
        ("--max-streams-per-connection", "[default: 64]"),
        ("--max-message-bytes", "[default: 67108864]"),
    ] {
        let at = out
            .find(flag)
            .unwrap_or_else(|| panic!("{flag} in:\n{out}"));
        let line_end = out[at..].find(" [default").map(|i| at + i).unwrap_or(at);
        assert!(
            out[line_end..].trim_start().starts_with(default),
            "{flag} shows {default}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, err) = quiver(&[
        "--catalog",
        dir.path().to_str().unwrap(),
        "serve",
        "--no-demo",
        "--addr",
        "127.0.0.1:0",
        "--max-shards",
        "0",
    ]);
    assert!(!ok);
    assert!(err.contains("--max-shards must be at least 1"), "{err}");
}

/// `--replica` takes Flight URLs; anything else is refused before anything is served, and
/// `--cluster` takes HOST:PORT.
#[test]
fn replica_and_cluster_flags_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let cat = dir.path().to_str().unwrap();
    for bad in ["localhost:50051", "grpc://", "http://h:1"] {
        let (ok, _, err) = quiver(&[
            "--catalog",
            cat,
            "serve",
            "--no-demo",
            "--addr",
            "127.0.0.1:0",
            "--replica",
            bad,
        ]);
        assert!(!ok, "{bad}");
        assert!(
            err.contains("--replica") && err.contains("grpc://host"),
            "{err}"
        );
    }
    let (ok, _, err) = quiver(&[
        "--catalog",
        cat,
        "serve",
        "--no-demo",
        "--addr",
        "127.0.0.1:0",
        "--cluster",
        "h:port",
    ]);
    assert!(!ok);
    assert!(err.contains("h:port"), "{err}");
    let (ok, out, _) = quiver(&["serve", "--help"]);
    assert!(ok && out.contains("--replica <URL>") && out.contains("--cluster <HOST:PORT>"));
}
