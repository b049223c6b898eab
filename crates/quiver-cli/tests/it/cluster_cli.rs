//! Distributed SQL end to end: `quiver cluster scheduler` and two `quiver cluster
//! executor` processes on loopback; the same statements through `quiver sql --cluster`
//! and plain `quiver sql` must print the same rows. Run on a local catalog, and on the S3
//! server of `QUIVER_TEST_S3_URL` (scripts/test.sh starts one).

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free loopback port (bound, then released for the process that takes it). It is one
/// of Linux's ephemeral ports (32768–60999), never one of the fixed ports of
/// docs/SCALE.md's block (250xx), which runs in parallel with these tests: with the
/// block on Ballista's 50050, a parallel test's connection once held that port and the
/// block's scheduler failed to bind it.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Two distinct free loopback ports: both listeners are held until both ports are known
/// (two calls of [`free_port`] in a row can return the same port, the first being released
/// before the second bind; an executor given one port twice never registers).
fn free_port_pair() -> (u16, u16) {
    let a = TcpListener::bind("127.0.0.1:0").unwrap();
    let b = TcpListener::bind("127.0.0.1:0").unwrap();
    (
        a.local_addr().unwrap().port(),
        b.local_addr().unwrap().port(),
    )
}

/// Processes stopped when the test ends, whatever happened.
struct Procs(Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn spawn(args: &[String], dir: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_quiver"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn wait_listening(port: u16) {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "nothing listens on port {port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One scheduler and two executors; the scheduler's address.
fn start_cluster(dir: &std::path::Path) -> (Procs, String) {
    let sched = free_port();
    let mut procs = Procs(vec![spawn(
        &["cluster", "scheduler", "--port", &sched.to_string()].map(String::from),
        dir,
    )]);
    wait_listening(sched);
    let addr = format!("127.0.0.1:{sched}");
    // a scheduler alone: `cluster wait` gives up after its timeout and says what it had
    let (ok, _, err) = run(
        "unused",
        dir,
        &["cluster", "wait", "--scheduler", &addr, "--timeout", "0.5"],
    );
    assert!(!ok, "no executor yet");
    assert!(
        err.contains(&addr) && err.contains("0 executor(s) registered, 1 needed"),
        "{err}"
    );
    for _ in 0..2 {
        let (flight, grpc) = free_port_pair();
        let work = tempfile::tempdir_in(dir).unwrap().keep();
        procs.0.push(spawn(
            &[
                "cluster",
                "executor",
                "--scheduler",
                &addr,
                "--port",
                &flight.to_string(),
                "--grpc-port",
                &grpc.to_string(),
                "--concurrent-tasks",
                "2",
                "--work-dir",
                work.to_str().unwrap(),
            ]
            .map(String::from),
            dir,
        ));
        wait_listening(flight);
    }
    // both registered: what scripts run instead of a `sleep`
    let (ok, out, err) = run(
        "unused",
        dir,
        &["cluster", "wait", "--scheduler", &addr, "--executors", "2"],
    );
    assert!(ok, "{err}");
    assert!(out.contains("2 executor(s) registered"), "{out}");
    (procs, addr)
}

fn run(catalog: &str, dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_quiver"))
        .args(["--catalog", catalog, "--sync", "false"])
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The statements compared: full scan, aggregates, a slice, AS OF TAG, `"ds@ref"`, a join
/// of two versions, DIFF and `quiver_diff`, a system table joined with a dataset; on the
/// demo dataset (string keys, 13 columns) and an integer-keyed one.
const QUERIES: &[&str] = &[
    "SELECT * FROM demo ORDER BY sample_id, label_id",
    "SELECT class, count(*) AS n, round(avg(score), 4) AS s, min(bbox_x), max(bbox_w) \
     FROM demo GROUP BY class ORDER BY class",
    "SELECT sample_id, label_id, class, score FROM demo \
     WHERE class IN ('person', 'dog') AND score > 0.5 ORDER BY sample_id, label_id",
    "SELECT count(*), sum(label_id), count(DISTINCT sample_id) FROM demo AS OF TAG 'v1'",
    "SELECT review_state, count(*) FROM \"demo@v1\" GROUP BY review_state ORDER BY 1",
    "SELECT a.sample_id, a.label_id, a.class AS old, b.class AS new \
     FROM demo AS OF TAG 'v1' a JOIN demo b USING (sample_id, label_id) \
     WHERE a.class <> b.class OR a.score IS DISTINCT FROM b.score ORDER BY 1, 2",
    "SELECT count(*) FROM demo AS OF TAG 'v1' a LEFT JOIN demo b USING (sample_id, label_id) \
     WHERE b.class IS NULL",
    "DIFF demo BETWEEN TAG 'v1' AND BRANCH 'main'",
    "SELECT change, count(*) FROM quiver_diff('demo', 'v1', 'main') GROUP BY change ORDER BY 1",
    "SELECT d.class, count(*) FROM demo d JOIN quiver_diff('demo', 'v1', 'main') q \
     ON d.sample_id = q.sample_id AND d.label_id = q.label_id GROUP BY d.class ORDER BY 1",
    "SELECT k, v FROM ints WHERE k % 7 = 3 ORDER BY k",
    // Quiver's binary-aware length functions, on the scheduler and executors too
    "SELECT sample_id, label_id, length(decode(image_hash, 'hex')) AS b, \
     char_length(class) AS c FROM demo ORDER BY sample_id, label_id LIMIT 50",
    "SELECT sum(v), count(*) FROM ints AS OF TAG 't1'",
    "SELECT dataset, tag FROM quiver.tags ORDER BY 1, 2",
    "SELECT t.tag, count(*) FROM quiver.tags t JOIN demo d ON t.dataset = 'demo' \
     GROUP BY t.tag ORDER BY 1",
];

/// Versions with holes: v1, then updates, deletes and inserts on main, so a scan that
/// lost the pack row selections would return deleted or replaced rows.
const SETUP: &str = "CREATE TAG 'v1' ON demo; \
    UPDATE demo SET class = 'dog', score = 0.99 WHERE label_id = 1 AND sample_id LIKE '%1'; \
    DELETE FROM demo WHERE label_id = 2 OR sample_id LIKE '%7'; \
    INSERT INTO demo SELECT concat(sample_id, '-x'), label_id, image_hash, class, bbox_x, \
      bbox_y, bbox_w, bbox_h, score, review_state, reviewer, reviewed_at, schema_version \
      FROM demo AS OF TAG 'v1' WHERE sample_id LIKE '%3'; \
    CREATE TABLE ints (k BIGINT NOT NULL, v BIGINT, PRIMARY KEY (k)); \
    INSERT INTO ints (k, v) SELECT value, value * 3 FROM generate_series(1, 3000); \
    CREATE TAG 't1' ON ints; \
    DELETE FROM ints WHERE k % 5 = 0; \
    UPDATE ints SET v = -v WHERE k % 3 = 0";

fn same_answers(catalog: &str, dir: &std::path::Path) {
    let (ok, _, err) = run(catalog, dir, &["demo", "--rows", "3000"]);
    assert!(ok, "demo: {err}");
    let (ok, _, err) = run(catalog, dir, &["sql", "-c", SETUP]);
    assert!(ok, "setup: {err}");

    let (_procs, addr) = start_cluster(dir);
    for q in QUERIES {
        let (ok, local, err) = run(catalog, dir, &["sql", "--format", "csv", "-c", q]);
        assert!(ok, "{q} on one machine: {err}");
        let (ok, dist, err) = run(
            catalog,
            dir,
            &["sql", "--cluster", &addr, "--format", "csv", "-c", q],
        );
        assert!(ok, "{q} on the cluster: {err}");
        assert!(local.lines().count() > 1, "{q}: no rows\n{local}");
        assert_eq!(dist, local, "{q}: the cluster's answer differs");
    }

    // the queries really went to the cluster: with no scheduler there, they fail
    let nobody = format!("127.0.0.1:{}", free_port());
    let (ok, _, err) = run(
        catalog,
        dir,
        &[
            "sql",
            "--cluster",
            &nobody,
            "-c",
            "SELECT count(*) FROM demo",
        ],
    );
    assert!(!ok, "a query over a dataset must reach the scheduler");
    assert!(!err.is_empty());
    // a query that reads no dataset runs here
    let (ok, out, err) = run(
        catalog,
        dir,
        &[
            "sql",
            "--cluster",
            &nobody,
            "--format",
            "csv",
            "-c",
            "SELECT 1 AS one",
        ],
    );
    assert!(ok && out.contains("one"), "{err}");
    // writes run here too, and the cluster then reads the new commit
    let (ok, _, err) = run(
        catalog,
        dir,
        &["sql", "-c", "DELETE FROM ints WHERE k < 100"],
    );
    assert!(ok, "{err}");
    let (_, local, _) = run(
        catalog,
        dir,
        &["sql", "--format", "csv", "-c", "SELECT count(*) FROM ints"],
    );
    let (ok, dist, err) = run(
        catalog,
        dir,
        &[
            "sql",
            "--cluster",
            &addr,
            "--format",
            "csv",
            "-c",
            "SELECT count(*) FROM ints",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(dist, local);
}

#[test]
fn cluster_answers_like_one_machine_on_a_local_catalog() {
    let dir = tempfile::tempdir().unwrap();
    let cat = dir.path().join("cat");
    same_answers(cat.to_str().unwrap(), dir.path());
}

#[test]
#[ignore = "needs an S3 server: set QUIVER_TEST_S3_URL (scripts/test.sh starts one)"]
fn cluster_answers_like_one_machine_on_s3() {
    let base = std::env::var("QUIVER_TEST_S3_URL")
        .expect("QUIVER_TEST_S3_URL names the S3 prefix to test (scripts/moto-s3.sh)");
    let dir = tempfile::tempdir().unwrap();
    let unique = dir
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let url = format!("{}/cluster-{unique}", base.trim_end_matches('/'));
    same_answers(&url, dir.path());
}

#[test]
fn cluster_help_teaches_and_bad_addresses_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out, _) = run("unused", dir.path(), &["cluster", "--help"]);
    assert!(
        ok && out.contains("scheduler") && out.contains("executor") && out.contains("wait"),
        "{out}"
    );
    // nothing listening: named, once the timeout has passed
    let nobody = format!("127.0.0.1:{}", free_port());
    let (ok, _, err) = run(
        "unused",
        dir.path(),
        &[
            "cluster",
            "wait",
            "--scheduler",
            &nobody,
            "--timeout",
            "0.3",
        ],
    );
    assert!(!ok && err.contains(&nobody), "{err}");
    let (ok, _, err) = run(
        "unused",
        dir.path(),
        &["cluster", "wait", "--timeout", "-1"],
    );
    assert!(!ok && err.contains("--timeout"), "{err}");
    // the long help teaches a whole set-up
    assert!(
        out.contains("quiver cluster executor --scheduler 127.0.0.1:25050")
            && out.contains("sql --cluster 127.0.0.1:25050")
            && out.contains("no credential travels"),
        "{out}"
    );
    let cat = dir.path().join("cat");
    let (ok, _, err) = run(
        cat.to_str().unwrap(),
        dir.path(),
        &["sql", "--cluster", "host:notaport", "-c", "SELECT 1"],
    );
    assert!(!ok);
    assert!(
        err.contains("host:notaport") && err.contains("port"),
        "{err}"
    );
}

/// The "Run it" block of docs/SCALE.md, verbatim, with the built `quiver` first on PATH.
#[test]
fn scale_doc_block_runs() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/SCALE.md"))
        .unwrap();
    let block = doc
        .split("## Run it")
        .nth(1)
        .and_then(|s| s.split("```sh\n").nth(1))
        .and_then(|s| s.split("```").next())
        .expect("a sh block under 'Run it'");
    let dir = tempfile::tempdir().unwrap();
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_quiver"))
        .parent()
        .unwrap()
        .to_path_buf();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // the block's background processes are stopped however it ends, and a block that
    // hangs is stopped after five minutes
    let script = format!("trap 'kill $(jobs -p) 2>/dev/null' EXIT\n{block}");
    let out = Command::new("timeout")
        .args(["300", "bash", "-e", "-c", &script])
        .env("PATH", path)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // the query's table: a header with n and five classes
    assert!(stdout.contains("| n "), "{stdout}");
    assert!(
        stdout.lines().filter(|l| l.starts_with("| ")).count() >= 6,
        "{stdout}"
    );
}
