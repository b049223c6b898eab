//! SQL sessions cannot touch the host or the store, read-only sessions change nothing, and
//! oversized statements are refused before planning (issue: history that cannot be forged).
//!
//! Runs on the demo dataset (string keys `img-…`, 13 columns) as users meet it.

use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::Int64Type;
use quiver_core::{demo, Catalog};
use quiver_sql::context::QuiverContext;
use quiver_sql::{SessionOptions, SqlError};

async fn demo_catalog(dir: &std::path::Path) -> Catalog {
    let cat = Catalog::open(dir.to_str().unwrap()).await.unwrap();
    let ds = cat
        .create_dataset("demo", demo::schema(), demo::options())
        .await
        .unwrap();
    let mut txn = ds.begin("main").await.unwrap();
    for b in demo::DemoLabels::new(2_000, 7) {
        txn.append(&b).await.unwrap();
    }
    txn.commit("demo").await.unwrap();
    ds.create_tag("v1", &quiver_core::VersionSpec::Branch("main".into()))
        .await
        .unwrap();
    cat
}

async fn count(ctx: &QuiverContext, sql: &str) -> i64 {
    let out = ctx.sql(sql).await.unwrap();
    out[0].column(0).as_primitive::<Int64Type>().value(0)
}

/// Everything that identifies the catalog's state: refs (branches, tags with their commits)
/// and the history of main.
async fn state(cat: &Catalog) -> String {
    let ds = cat.dataset("demo").await.unwrap();
    let mut s = String::new();
    for r in ds.branches().await.unwrap() {
        s += &format!("branch {} {}\n", r.name, r.commit.to_hex());
    }
    s += &format!("settings {:?}\n", ds.all_branch_settings().await.unwrap());
    for r in ds.tags().await.unwrap() {
        s += &format!("tag {} {}\n", r.name, r.commit.to_hex());
    }
    s += &format!("datasets {:?}\n", cat.list_datasets().await.unwrap());
    s += &format!("runs {}\n", cat.runs().await.unwrap().len());
    // packs are rewritten in place by an erasure: their bytes, and the erasure records
    for p in cat.store().list("").await.unwrap() {
        if p.starts_with("objects/pack/") || p.starts_with("erasures/") {
            let b = cat.store().get_file(&p).await.unwrap();
            s += &format!("{p} {}\n", quiver_core::Hash::of(&b));
        }
    }
    s
}

/// Every statement kind that writes, as a read-only caller would send it.
const WRITES: &[&str] = &[
    "INSERT INTO demo (sample_id, label_id, class) VALUES ('img-99999999', 0, 'cat')",
    "/* comment */ INSERT/**/INTO demo (sample_id, label_id) VALUES ('img-99999998', 0)",
    "UPDATE demo SET class = 'car' WHERE class = 'truck'",
    "DELETE FROM demo WHERE sample_id = 'img-00000001'",
    "CREATE BRANCH relabel FROM demo",
    "DROP BRANCH main ON demo",
    "CREATE TAG 'v2' ON demo",
    "DROP TAG 'v1' ON demo",
    "ALTER TAG 'v1' RENAME TO 'v1-old' ON demo",
    "ALTER BRANCH main RENAME TO trunk ON demo",
    "DROP DATASET demo",
    "ALTER DATASET demo SET METADATA 'owner' = 'mallory'",
    "ALTER DATASET demo ALTER COLUMN class UNSET METADATA 'note'",
    "MERGE TAG 'v1' INTO main ON demo",
    "REVERT TAG 'v1' ON demo",
    "REVERT '~1' ON demo BRANCH main MESSAGE 'undo'",
    "RESET BRANCH main ON demo TO TAG 'v1'",
    "ALTER BRANCH main ON demo SET PROTECTED",
    "ALTER BRANCH main ON demo UNSET PROTECTED",
    "ALTER BRANCH main ON demo ADD CHECK no_cats AS 'SELECT * FROM demo WHERE class = ''cat'''",
    "ALTER BRANCH main ON demo DROP CHECK no_cats",
    "CREATE DATASET other (k VARCHAR NOT NULL, l INT NOT NULL) KEY (k, l)",
    "CREATE TABLE other (k VARCHAR, l INT, PRIMARY KEY (k, l))",
    "create table if not exists demo (k VARCHAR, l INT, PRIMARY KEY (k, l))",
    "DROP TABLE demo",
    "DROP TABLE IF EXISTS demo, nope",
    "DROP TABLE IF EXISTS nope",
    "CREATE SCHEMA VERSION '9.9' ON demo ADD CLASS 'kite' = 77",
    "MIGRATE demo TO SCHEMA '2.2'",
    "CREATE RUN 'r1' ON demo AS OF TAG 'v1'",
    "CREATE MODEL 'm1' FROM RUN 'r1'",
    "INSERT INTO quiver.predictions (model, sample_id, label_id, class, score) VALUES ('m1', 'img-00000001', 0, 'cat', 0.5)",
    "ABORT MERGE ON demo",
    "COMMIT MERGE ON demo",
    "RESOLVE CONFLICTS ON demo USING THEIRS",
    "VACUUM demo RETAIN 0 HOURS",
    "VACUUM demo DRY RUN",
    "OPTIMIZE demo",
    "OPTIMIZE demo ON BRANCH main",
    "ERASE FROM demo WHERE sample_id = 'img-00000001' REASON 'privacy request'",
    "COMMIT",
];

#[tokio::test]
async fn a_read_only_session_refuses_every_write_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cat = demo_catalog(dir.path()).await;
    let before = state(&cat).await;
    let ro = QuiverContext::with_options(
        cat.clone(),
        Default::default(),
        SessionOptions {
            read_only: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    for w in WRITES {
        match ro.sql(w).await {
            Err(SqlError::PermissionDenied(m)) => assert!(m.contains("read-only"), "{w}: {m}"),
            other => panic!("{w}: expected permission denied, got {other:?}"),
        }
    }
    // reads still work, and a transaction of writes is refused statement by statement
    assert!(count(&ro, "SELECT count(*) FROM demo AS OF TAG 'v1'").await > 0);
    ro.sql("BEGIN").await.unwrap();
    assert!(ro
        .sql("DELETE FROM demo WHERE sample_id = 'img-00000002'")
        .await
        .is_err());
    ro.sql("ROLLBACK").await.unwrap();
    assert_eq!(state(&cat).await, before);
}

/// Statements that only read, one of every reading kind (with `WRITES`, every kind of
/// statement the parser knows).
const READS: &[&str] = &[
    "SELECT count(*) FROM demo AS OF TAG 'v1'",
    "WITH x AS (SELECT * FROM public.demo AS OF TAG 'v1') SELECT count(*) FROM x",
    "EXPLAIN SELECT * FROM demo",
    "SHOW BRANCHES ON demo",
    "SHOW TAGS ON demo",
    "SHOW DATASETS",
    "SHOW METADATA ON demo",
    "SHOW HISTORY ON demo AS OF TAG 'v1'",
    "DIFF demo BETWEEN TAG 'v1' AND BRANCH 'main'",
    "USE BRANCH main ON demo",
    "SHOW CONFLICTS ON demo",
    "MERGE TAG 'v1' INTO main ON demo PREVIEW",
    "SELECT * FROM quiver_merge_preview('demo', 'v1', 'main')",
    "SELECT * FROM quiver_history('demo', 'img-00000001', 0, 'v1')",
    "SHOW SCHEMAS ON demo",
    "SHOW SCHEMA ON demo",
    "BEGIN",
    "ROLLBACK",
];

/// Authorization is decided on the typed statement: every kind of statement is run by a
/// read-only session; each write is refused as such before it runs, no read is, and the
/// catalog is the same afterwards.
#[tokio::test]
async fn every_statement_kind_is_authorized_on_its_type() {
    use quiver_sql::parser::{parse_statement, STATEMENT_KINDS};
    let dir = tempfile::tempdir().unwrap();
    let cat = demo_catalog(dir.path()).await;
    let before = state(&cat).await;
    let ro = QuiverContext::with_options(
        cat.clone(),
        Default::default(),
        SessionOptions {
            read_only: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let mut kinds = std::collections::BTreeSet::new();
    for (sql, write) in WRITES
        .iter()
        .map(|w| (w, true))
        .chain(READS.iter().map(|r| (r, false)))
    {
        let st = parse_statement(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        assert_eq!(st.is_write(), write, "{sql}");
        kinds.insert(st.kind());
        match ro.sql(sql).await {
            Err(SqlError::PermissionDenied(m)) => {
                assert!(write, "{sql}: a read was refused: {m}")
            }
            // a read may fail for its own reasons (no merge pending), never for permission
            _ if !write => {}
            other => panic!("{sql}: expected permission denied, got {other:?}"),
        }
    }
    let all: std::collections::BTreeSet<&str> = STATEMENT_KINDS.iter().copied().collect();
    assert_eq!(kinds, all, "every kind of statement is tested read-only");
    assert_eq!(state(&cat).await, before);
}

#[tokio::test]
async fn no_session_writes_files_or_registers_tables() {
    let dir = tempfile::tempdir().unwrap();
    let cat = demo_catalog(dir.path()).await;
    let before = state(&cat).await;
    let out = dir.path().join("out.csv");
    let out = out.to_str().unwrap();
    let tag_entry = "quiver://catalog-0/refs/datasets/demo/tags/v1/00000000000000000002.json";
    let ctx = QuiverContext::new(cat.clone()).await.unwrap();
    for s in [
        format!("COPY (SELECT 1) TO '{out}'"),
        format!("EXPLAIN ANALYZE COPY (SELECT * FROM demo) TO '{out}'"),
        format!("explain analyze copy (select 1) to '{out}' STORED AS CSV"),
        format!("COPY (SELECT '{{}}' AS x) TO '{tag_entry}' STORED AS JSON"),
        format!("CREATE EXTERNAL TABLE x STORED AS CSV LOCATION '{out}'"),
        "CREATE TABLE t AS SELECT * FROM demo".into(),
        "CREATE VIEW v AS SELECT * FROM demo".into(),
        "SET datafusion.execution.batch_size = 1".into(),
        "PREPARE p AS SELECT 1".into(),
        "EXPLAIN INSERT INTO demo (sample_id, label_id) VALUES ('x', 1)".into(),
        "WITH x AS (SELECT 1) INSERT INTO demo (sample_id, label_id) SELECT 'y', 1".into(),
        "DROP VIEW demo".into(),
        "EXPLAIN DROP TABLE demo".into(),
        "DROP TABLE \"demo@v1\"".into(),
    ] {
        match ctx.sql(&s).await {
            Err(SqlError::Unsupported(m)) => {
                assert!(
                    m.contains("not allowed")
                        || m.contains("not supported")
                        || m.contains("not a table"),
                    "{s}: {m}"
                )
            }
            Err(SqlError::Parse(_)) => {}
            other => panic!("{s}: expected a refusal, got {other:?}"),
        }
    }
    assert!(!std::path::Path::new(out).exists());
    assert_eq!(state(&cat).await, before);
    // reads of the same tables still run, EXPLAIN ANALYZE of a query included
    assert!(!ctx
        .sql("EXPLAIN ANALYZE SELECT count(*) FROM demo")
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn the_catalog_store_in_a_session_is_not_writable_through_sql() {
    // the forged-tag attempt: whatever URL a caller guesses, no statement reaches a put
    let dir = tempfile::tempdir().unwrap();
    let cat = demo_catalog(dir.path()).await;
    let ctx = QuiverContext::new(cat.clone()).await.unwrap();
    let before = state(&cat).await;
    for id in 0..4 {
        let url = format!("quiver://catalog-{id}/refs/datasets/demo/tags/v1/x.json");
        let r = ctx
            .sql(&format!("COPY (SELECT 1 AS a) TO '{url}' STORED AS JSON"))
            .await;
        assert!(r.is_err(), "{url}");
    }
    assert_eq!(state(&cat).await, before);
}

/// Sessions run on runtimes whose threads have [`quiver_sql::options::RUNTIME_STACK_BYTES`]
/// of stack, as `quiver serve` and `quiver sql` do (a test thread has 2 MiB).
fn on_server_runtime(f: impl std::future::Future<Output = ()> + Send + 'static) {
    let stack = quiver_sql::options::RUNTIME_STACK_BYTES;
    std::thread::Builder::new()
        .stack_size(stack)
        .spawn(move || {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_stack_size(stack)
                .enable_all()
                .build()
                .unwrap()
                .block_on(f)
        })
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn deep_or_chains_run_or_are_refused_never_crash() {
    on_server_runtime(deep_or_chains());
}

async fn deep_or_chains() {
    let dir = tempfile::tempdir().unwrap();
    let cat = demo_catalog(dir.path()).await;
    let ctx = QuiverContext::new(cat.clone()).await.unwrap();
    let ors = |n: usize| {
        (0..n)
            .map(|i| format!("sample_id = 'img-{i:08}'"))
            .collect::<Vec<_>>()
            .join(" OR ")
    };
    // 1,000 terms overflowed a tokio worker's stack; now it is planned and answered
    let n = count(
        &ctx,
        &format!("SELECT count(*) FROM demo WHERE {}", ors(1_000)),
    )
    .await;
    let m = count(
        &ctx,
        "SELECT count(*) FROM demo WHERE sample_id < 'img-00001000'",
    )
    .await;
    assert_eq!(n, m);
    // far past the limit: a clear error before planning
    let e = ctx
        .sql(&format!("SELECT count(*) FROM demo WHERE {}", ors(20_000)))
        .await
        .unwrap_err();
    assert!(matches!(e, SqlError::Limit(_)), "{e}");
    assert!(e.to_string().contains("IN (…)"), "{e}");
}

#[tokio::test]
async fn sessions_draw_on_the_configured_memory_pool() {
    let dir = tempfile::tempdir().unwrap();
    let cat = demo_catalog(dir.path()).await;
    let join = "SELECT count(*) FROM generate_series(1, 300000) a(x) \
                JOIN generate_series(1, 300000) b(y) ON x = y";
    // with the default pool the join runs
    let ctx = QuiverContext::new(cat.clone()).await.unwrap();
    assert_eq!(count(&ctx, join).await, 300_000);
    // with a small shared pool it stops with a clear error instead of growing the process
    let runtime = quiver_sql::options::runtime_with_memory_limit(256 << 10).unwrap();
    let small = QuiverContext::with_options(
        cat.clone(),
        Default::default(),
        SessionOptions {
            runtime: Some(runtime.clone()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let e = small.sql(join).await.unwrap_err().to_string();
    assert!(e.contains("Resources exhausted"), "{e}");
    // the pool is the runtime's: another session on it is bound by it too
    let other = QuiverContext::with_options(
        cat.clone(),
        Default::default(),
        SessionOptions {
            runtime: Some(runtime),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(other.sql(join).await.is_err());
}
