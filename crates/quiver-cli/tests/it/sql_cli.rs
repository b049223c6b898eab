//! `quiver sql` and `quiver merge` end to end through the binary.

use std::process::Command;

/// Run the binary on `catalog`: (exit status, stdout, stderr).
fn quiver_status(catalog: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_quiver"))
        .arg("--catalog")
        .arg(catalog)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Run the binary on `catalog`: (success, stdout, stderr).
fn quiver(catalog: &str, args: &[&str]) -> (bool, String, String) {
    let (code, out, err) = quiver_status(catalog, args);
    (code == Some(0), out, err)
}

#[test]
fn sql_versions_diff_merge_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cat = dir.path().to_str().unwrap();
    let (ok, out, err) = quiver(cat, &["quickstart", "--rows", "2000"]);
    assert!(ok, "{err}");
    assert!(out.contains("(tag: v1)"), "{out}");

    let (ok, out, err) = quiver(
        cat,
        &[
            "sql",
            "-c",
            "SELECT count(*) AS n FROM demo AS OF TAG 'v1'",
            "--format",
            "csv",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "n\n2000");
    // unaliased columns are named by their SQL text, as in other engines
    let (ok, out, err) = quiver(
        cat,
        &[
            "sql",
            "-c",
            "SELECT 1, count(*) FROM demo AS OF TAG 'v1'",
            "--format",
            "csv",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "1,count(*)\n1,2000");

    let (ok, _, err) = quiver(
        cat,
        &["sql", "-c", "CREATE BRANCH fix FROM demo; USE BRANCH fix ON demo; UPDATE demo SET score = 1.0 WHERE sample_id = 'img-00000003'"],
    );
    assert!(ok, "{err}");
    let (ok, out, err) = quiver(
        cat,
        &[
            "sql",
            "-c",
            "DIFF demo BETWEEN TAG 'v1' AND BRANCH 'fix'",
            "--format",
            "json",
        ],
    );
    assert!(ok, "{err}");
    assert!(
        out.lines().count() >= 1 && out.lines().all(|l| l.contains("\"change\":\"modified\"")),
        "{out}"
    );

    let (ok, out, err) = quiver(cat, &["merge", "demo", "fix"]);
    assert!(ok, "{err}");
    assert!(out.contains("fast-forwarded main"), "{out}");

    let (ok, _, err) = quiver(cat, &["sql", "-c", "SELECT * FROM demo AS OF TAG 'nope'"]);
    assert!(!ok);
    assert!(
        err.contains("tag 'nope' not found in dataset 'demo'"),
        "{err}"
    );
    let (ok, _, err) = quiver(cat, &["sql", "-c", "SELEC 1"]);
    assert!(!ok);
    assert!(err.starts_with("error:"), "{err}");
}

#[test]
fn merge_exit_status_tells_a_script_what_happened() {
    let dir = tempfile::tempdir().unwrap();
    let cat = dir.path().to_str().unwrap();
    let (ok, _, err) = quiver(cat, &["quickstart", "--rows", "500"]);
    assert!(ok, "{err}");
    // the same label changed differently on both sides
    let (ok, _, err) = quiver(
        cat,
        &["sql", "-c", "CREATE BRANCH a FROM demo; USE BRANCH a ON demo; UPDATE demo SET score = 0.25 WHERE sample_id = 'img-00000003'"],
    );
    assert!(ok, "{err}");
    let (ok, _, err) = quiver(
        cat,
        &[
            "sql",
            "-c",
            "UPDATE demo SET score = 0.75 WHERE sample_id = 'img-00000003'",
        ],
    );
    assert!(ok, "{err}");
    let status = |args: &[&str]| quiver_status(cat, args);
    let (code, out, err) = status(&["merge", "demo", "a"]);
    assert_eq!(code, Some(2), "stdout: {out}\nstderr: {err}");
    assert!(
        out.contains("conflicting labels: nothing committed"),
        "{out}"
    );
    assert!(err.contains("nothing was committed"), "{err}");
    // resolving and continuing succeed with 0; an error is 1
    let (code, _, err) = status(&["merge", "demo", "--resolve", "theirs", "--continue"]);
    assert_eq!(code, Some(0), "{err}");
    let (code, out, err) = status(&["merge", "demo", "a"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("already contains"), "{out}");
    let (code, _, err) = status(&["merge", "demo", "nope"]);
    assert_eq!(code, Some(1), "{err}");
    let (_, out, _) = status(&["merge", "--help"]);
    assert!(out.contains("Exit status: 0 merged"), "{out}");
}

#[test]
fn merge_preview_tells_what_a_merge_would_do_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cat = dir.path().to_str().unwrap();
    let (ok, _, err) = quiver(cat, &["quickstart", "--rows", "500"]);
    assert!(ok, "{err}");
    let (ok, _, err) = quiver(
        cat,
        &["sql", "-c", "CREATE BRANCH a FROM demo; USE BRANCH a ON demo; UPDATE demo SET score = 0.25 WHERE sample_id IN ('img-00000003', 'img-00000004')"],
    );
    assert!(ok, "{err}");
    let status = |args: &[&str]| quiver_status(cat, args);
    let log = |cat: &str| quiver(cat, &["log", "demo"]).1;
    // a clean fast-forward: exit 0, counts, nothing moved
    let before = log(cat);
    let (code, out, err) = status(&["merge", "demo", "a", "--preview"]);
    assert_eq!(code, Some(0), "stdout: {out}\nstderr: {err}");
    assert!(out.contains("would fast-forward main"), "{out}");
    assert!(out.contains("clean changes: 2 groups"), "{out}");
    assert_eq!(log(cat), before);
    // conflicts: exit 2, the conflict table, no pending merge recorded
    let (ok, _, err) = quiver(
        cat,
        &[
            "sql",
            "-c",
            "UPDATE demo SET score = 0.75 WHERE sample_id = 'img-00000003'",
        ],
    );
    assert!(ok, "{err}");
    let before = log(cat);
    let (code, out, err) = status(&["merge", "demo", "a", "--dry-run"]);
    assert_eq!(code, Some(2), "stdout: {out}\nstderr: {err}");
    assert!(out.contains("would stop on"), "{out}");
    assert!(
        out.contains("img-00000003") && out.contains("both_modified"),
        "{out}"
    );
    assert!(!out.contains("img-00000004"), "{out}");
    assert!(out.contains("clean changes: 1 groups"), "{out}");
    assert!(err.contains("preview: nothing was written"), "{err}");
    assert_eq!(log(cat), before);
    let (code, _, err) = status(&["merge", "demo", "--conflicts"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("has no pending merge"), "{err}");
    // errors are errors; --preview needs something to merge
    let (code, _, err) = status(&["merge", "demo", "nope", "--preview"]);
    assert_eq!(code, Some(1), "{err}");
    let (code, _, _) = status(&["merge", "demo", "--preview"]);
    assert_eq!(code, Some(2), "clap usage error");
    // the same through SQL
    let (ok, out, err) = quiver(
        cat,
        &[
            "sql",
            "-c",
            "MERGE BRANCH a INTO main ON demo PREVIEW",
            "--format",
            "csv",
        ],
    );
    assert!(ok, "{err}");
    assert!(
        out.lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("conflicts,")),
        "{out}"
    );
}

#[test]
fn revert_and_reset_are_new_commits() {
    let dir = tempfile::tempdir().unwrap();
    let cat = dir.path().to_str().unwrap();
    let (ok, _, err) = quiver(cat, &["quickstart", "--rows", "300"]);
    assert!(ok, "{err}");
    let sql = |q: &str| {
        let (ok, out, err) = quiver(cat, &["sql", "-c", q, "--format", "csv"]);
        assert!(ok, "{q}: {err}");
        out
    };
    sql("UPDATE demo SET class = 'zz-kite' WHERE sample_id = 'img-00000003'");
    sql("CREATE TAG 'kites' ON demo");
    sql("UPDATE demo SET class = 'zz-owl' WHERE sample_id = 'img-00000005'");
    let count = |q: &str| sql(q).lines().nth(1).unwrap_or_default().to_string();
    let v1_hash = count("SELECT content_hash FROM quiver.commits c JOIN quiver.tags t ON c.commit_id = t.commit_id WHERE t.tag = 'v1'");
    let (code, out, err) = quiver_status(cat, &["revert", "demo", "kites"]);
    assert_eq!(code, Some(0), "stdout: {out}\nstderr: {err}");
    assert!(out.contains("reverted kites on main"), "{out}");
    assert_eq!(
        count("SELECT count(*) FROM demo WHERE class = 'zz-kite'"),
        "0"
    );
    assert_ne!(
        count("SELECT count(*) FROM demo WHERE class = 'zz-owl'"),
        "0"
    );
    let (code, out, _) = quiver_status(cat, &["revert", "demo", "kites"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("nothing to revert"), "{out}");
    // a later change to the same labels: exit 2, nothing committed
    sql("UPDATE demo SET class = 'zz-hawk' WHERE sample_id = 'img-00000005'");
    let before = quiver(cat, &["log", "demo"]).1;
    let (code, out, err) = quiver_status(cat, &["revert", "demo", "~-3"]);
    assert_eq!(code, Some(2), "stdout: {out}\nstderr: {err}");
    assert!(
        err.contains("conflicts with later commits") && err.contains("img-00000005"),
        "{err}"
    );
    assert_eq!(quiver(cat, &["log", "demo"]).1, before);
    // reset: the content hash of v1, every old commit kept
    let commits = count("SELECT count(*) FROM quiver.commits WHERE dataset = 'demo'");
    let (code, out, err) = quiver_status(
        cat,
        &["reset", "demo", "main", "--to", "v1", "-m", "back to v1"],
    );
    assert_eq!(code, Some(0), "stdout: {out}\nstderr: {err}");
    assert!(out.contains("reset main to v1"), "{out}");
    let head_hash = count("SELECT content_hash FROM quiver.commits c JOIN quiver.branches b ON c.commit_id = b.commit_id WHERE b.branch = 'main'");
    assert_eq!(head_hash, v1_hash);
    let after = count("SELECT count(*) FROM quiver.commits WHERE dataset = 'demo'");
    assert_eq!(
        after.parse::<u64>().unwrap(),
        commits.parse::<u64>().unwrap() + 1
    );
    let (code, _, err) = quiver_status(cat, &["reset", "demo", "main", "--to", "nope"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("'nope' not found"), "{err}");
    let (code, _, err) = quiver_status(cat, &["revert", "demo", "v1", "--branch", "ghost"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("branch 'ghost' not found"), "{err}");
}

#[test]
fn protected_branches_take_only_merges_that_pass_their_checks() {
    let dir = tempfile::tempdir().unwrap();
    let cat = dir.path().to_str().unwrap();
    let (ok, _, err) = quiver(cat, &["quickstart", "--rows", "300"]);
    assert!(ok, "{err}");
    let sql = |q: &str| quiver_status(cat, &["sql", "-c", q]);
    let (code, _, err) = sql("UPDATE demo SET score = 0.5 WHERE sample_id = 'img-00000001'");
    assert_eq!(code, Some(0), "{err}");
    let v1 = dir.path().join("v1.parquet");
    let (ok, _, err) = quiver(
        cat,
        &[
            "export",
            "parquet",
            "-d",
            "demo",
            "--ref",
            "v1",
            v1.to_str().unwrap(),
        ],
    );
    assert!(ok, "{err}");
    let (ok, out, err) = quiver(cat, &["branch", "demo", "--protect", "main"]);
    assert!(ok && out.contains("protected branch main"), "{out}{err}");
    let (_, out, _) = quiver(cat, &["branch", "demo"]);
    assert!(
        out.lines()
            .any(|l| l.starts_with("main\t") && l.ends_with("\tprotected")),
        "{out}"
    );
    let head = |cat: &str| quiver(cat, &["log", "demo", "-n", "1"]).1;
    let before = head(cat);
    // every direct write is refused, whatever command makes it
    let (code, _, err) = quiver_status(
        cat,
        &["import", "parquet", v1.to_str().unwrap(), "-d", "demo"],
    );
    assert_eq!(code, Some(1));
    assert!(
        err.contains("branch 'main' of dataset 'demo' is protected"),
        "{err}"
    );
    let (code, _, err) = sql("DELETE FROM demo WHERE sample_id = 'img-00000002'");
    assert_eq!(code, Some(1));
    assert!(
        err.contains("is protected: it changes only by MERGE"),
        "{err}"
    );
    let (code, _, err) = quiver_status(cat, &["revert", "demo", "~-1"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("is protected"), "{err}");
    let (code, _, err) = quiver_status(cat, &["reset", "demo", "main", "--to", "v1"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("is protected"), "{err}");
    let (code, _, err) = quiver_status(cat, &["branch", "demo", "--delete", "main"]);
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(head(cat), before);
    // a merge that fails a pre-merge check is refused by `quiver merge` too
    let (code, _, err) = sql("ALTER BRANCH main ON demo ADD CHECK scored AS 'SELECT sample_id, label_id FROM demo WHERE score > 1'");
    assert_eq!(code, Some(0), "{err}");
    let (code, _, err) = sql("CREATE BRANCH fix FROM demo; UPDATE \"demo@branch:fix\" SET score = 2.0 WHERE sample_id = 'img-00000003'");
    assert_eq!(code, Some(0), "{err}");
    let (code, out, err) = quiver_status(cat, &["merge", "demo", "fix"]);
    assert_eq!(code, Some(1), "stdout: {out}\nstderr: {err}");
    assert!(err.contains("pre-merge check 'scored' returned"), "{err}");
    assert!(err.contains("sample_id=img-00000003"), "{err}");
    assert_eq!(head(cat), before);
    let (_, out, _) = quiver(cat, &["branch", "demo"]);
    assert!(out.contains("protected\tchecks: scored"), "{out}");
    let (code, _, err) =
        sql("UPDATE \"demo@branch:fix\" SET score = 0.75 WHERE sample_id = 'img-00000003'");
    assert_eq!(code, Some(0), "{err}");
    let (code, out, err) = quiver_status(cat, &["merge", "demo", "fix"]);
    assert_eq!(code, Some(0), "stdout: {out}\nstderr: {err}");
    assert_ne!(head(cat), before);
    // lifted: direct writes go through again
    let (ok, out, err) = quiver(cat, &["branch", "demo", "--unprotect", "main"]);
    assert!(ok && out.contains("no longer protected"), "{out}{err}");
    let (code, _, err) = sql("DELETE FROM demo WHERE sample_id = 'img-00000002'");
    assert_eq!(code, Some(0), "{err}");
    let (code, _, err) = quiver_status(cat, &["branch", "demo", "--protect", "ghost"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("branch 'ghost' not found"), "{err}");
}

#[test]
fn empty_results_and_closed_pipes() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let cat = dir.path().to_str().unwrap();
    let (ok, _, err) = quiver(cat, &["quickstart", "--rows", "20000"]);
    assert!(ok, "{err}");
    // an empty result says so
    let (ok, out, err) = quiver(
        cat,
        &["sql", "-c", "SELECT sample_id FROM demo WHERE score > 100"],
    );
    assert!(ok, "{err}");
    assert!(out.starts_with("(0 rows"), "{out:?}");
    // a reader that stops after one line (`| head -1`) is not an error
    for format in ["csv", "table", "json"] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_quiver"))
            .args(["--catalog", cat, "sql", "--format", format, "-c"])
            .arg("SELECT * FROM demo")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        assert!(!first.is_empty());
        // the read end is dropped here, with most of the output unread
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{format}: {err}");
        assert!(err.is_empty(), "{format}: {err}");
    }
}

/// Rename a tag and a branch, drop a dataset, and `~n` in flags, through the CLI.
#[test]
fn rename_drop_and_index_refs() {
    let dir = tempfile::tempdir().unwrap();
    let cat = dir.path().to_str().unwrap();
    let (ok, _, err) = quiver(cat, &["quickstart", "--rows", "300"]);
    assert!(ok, "{err}");
    let (ok, out, err) = quiver(cat, &["tag", "demo", "--rename", "v1", "--to", "v1-gold"]);
    assert!(ok, "{err}");
    assert!(out.contains("renamed tag v1 to v1-gold"), "{out}");
    let (_, out, _) = quiver(cat, &["tag", "demo"]);
    assert!(
        out.contains("v1-gold") && !out.lines().any(|l| l.starts_with("v1\t")),
        "{out}"
    );
    let (ok, _, err) = quiver(cat, &["tag", "demo", "--rename", "v1", "--to", "x"]);
    assert!(!ok && err.contains("tag 'v1' not found"), "{err}");
    let (ok, _, err) = quiver(cat, &["tag", "demo", "--rename", "v1-gold"]);
    assert!(!ok && err.contains("--to"), "{err}");

    let (ok, _, err) = quiver(
        cat,
        &["branch", "demo", "--create", "first", "--from", "~0"],
    );
    assert!(ok, "{err}");
    let (ok, out, err) = quiver(
        cat,
        &["branch", "demo", "--rename", "first", "--to", "origin"],
    );
    assert!(ok, "{err}");
    assert!(out.contains("renamed branch first to origin"), "{out}");
    let (ok, out, err) = quiver(
        cat,
        &[
            "sql",
            "-c",
            "SELECT count(*) AS n FROM \"demo@origin\"",
            "--format",
            "csv",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "n\n0");
    let (ok, _, err) = quiver(
        cat,
        &["branch", "demo", "--rename", "main", "--to", "trunk"],
    );
    assert!(
        !ok && err.contains("main branch cannot be renamed"),
        "{err}"
    );

    let (ok, _, err) = quiver(cat, &["demo", "--rows", "50", "--dataset", "scratch"]);
    assert!(ok, "{err}");
    let (ok, out, err) = quiver(cat, &["datasets", "--drop", "scratch"]);
    assert!(ok, "{err}");
    assert!(out.contains("dropped dataset scratch"), "{out}");
    let (_, out, _) = quiver(cat, &["datasets"]);
    assert!(out.contains("demo") && !out.contains("scratch"), "{out}");
    let (ok, _, err) = quiver(cat, &["datasets", "--drop", "scratch"]);
    assert!(!ok && err.contains("scratch"), "{err}");
}

/// Run the `quiver …` lines of the first `sh` block of README section `heading` verbatim,
/// one by one, on a fresh quickstart catalog; returns how many ran.
fn run_readme_block(heading: &str) -> usize {
    let readme = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"),
    )
    .unwrap();
    let section = readme.split(heading).nth(1).expect("README section");
    let block = section
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("sh block");
    let dir = tempfile::tempdir().unwrap();
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_quiver"));
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = |line: &str| {
        Command::new("sh")
            .arg("-c")
            .arg(line)
            .current_dir(dir.path())
            .env("PATH", &path)
            .env_remove("QUIVER_CATALOG")
            .output()
            .unwrap()
    };
    let out = run("quiver --catalog ./quiver-data quickstart --rows 300");
    assert!(out.status.success(), "{out:?}");
    let mut n = 0;
    for line in block.lines().filter(|l| l.starts_with("quiver ")) {
        let out = run(line);
        assert!(
            out.status.success(),
            "{line}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        n += 1;
    }
    n
}

/// The README's "Time travel and catalog operations" block, run verbatim line by line on a
/// quickstart catalog.
#[test]
fn readme_time_travel_block_runs() {
    let n = run_readme_block("### Time travel and catalog operations");
    assert!(n >= 10, "{n} lines");
}

/// The README's "Merge workflow" block, run verbatim line by line on a quickstart catalog.
#[test]
fn readme_merge_workflow_block_runs() {
    let n = run_readme_block("### Merge workflow");
    assert!(n >= 10, "{n} lines");
}

/// The README's "Erasing labels and images" block, run verbatim line by line on a
/// quickstart catalog.
#[test]
fn readme_erasure_block_runs() {
    let n = run_readme_block("### Erasing labels and images");
    assert!(n >= 7, "{n} lines");
}

/// DataFusion settings come from the environment (`SET` is refused): a valid value is the
/// session's, and the same query answers the same with Parquet filter pushdown on; a value
/// the setting refuses is an error naming the variable.
#[test]
fn datafusion_settings_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let cat = dir.path().to_str().unwrap();
    let (ok, _, err) = quiver(cat, &["quickstart", "--rows", "5000"]);
    assert!(ok, "{err}");
    let run = |env: &[(&str, &str)], sql: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_quiver"))
            .args(["--catalog", cat, "sql", "--format", "csv", "-c", sql])
            .envs(env.iter().copied())
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let setting = "SELECT value FROM information_schema.df_settings \
                   WHERE name = 'datafusion.execution.parquet.pushdown_filters'";
    let (ok, out, err) = run(&[], setting);
    assert!(ok, "{err}");
    assert!(out.contains("false"), "{out}");
    let on = [("DATAFUSION_EXECUTION_PARQUET_PUSHDOWN_FILTERS", "true")];
    let (ok, out, err) = run(&on, setting);
    assert!(ok, "{err}");
    assert!(out.contains("true"), "{out}");
    let query = "SELECT sample_id, label_id, class FROM demo \
                 WHERE review_state = 'approved' AND score > 0.5 ORDER BY sample_id, label_id";
    let (ok, plain, err) = run(&[], query);
    assert!(ok, "{err}");
    let (ok, pushed, err) = run(&on, query);
    assert!(ok, "{err}");
    assert_eq!(plain, pushed);
    assert!(plain.lines().count() > 10, "{plain}");
    let (ok, _, err) = run(&[("DATAFUSION_EXECUTION_BATCH_SIZE", "many")], "SELECT 1");
    assert!(!ok);
    assert!(err.contains("DATAFUSION_EXECUTION_BATCH_SIZE"), "{err}");
}
