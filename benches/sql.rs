//! SQL over versions benchmark (issue 4).
//!
//! A plain `main` (no criterion), all in one run, for each size in `QUIVER_BENCH_SIZES`
//! (labels, default `1000000,10000000`):
//!
//! * builds a local temporary catalog with the deterministic demo dataset `ds`
//!   (`quiver_core::demo`, seed 42) appended as one commit on `main`, tagged `v1`, and writes
//!   the very same record batches as plain Parquet files (~1M rows each, the packs'
//!   `WriterProperties`: snappy, 128 Ki-row row groups, page statistics) registered in a
//!   plain DataFusion `SessionContext` as `plain` (`register_parquet`);
//! * (a) full scan throughput, drained as a stream (rows counted, never collected), of a
//!   numeric projection and of `SELECT *`: Quiver `FROM ds AS OF TAG 'v1'` against plain
//!   DataFusion over the files, runs interleaved (quiver, plain, quiver, …);
//! * (b) the slice query "last quarter's approved labels at tag v1" on both, with Quiver's
//!   tree-pruning statistics (`last_scan_stats()`);
//! * (c) 500 scattered edits on branch `edits` (every label of 500 groups upserted with a
//!   changed score, one commit) and the timing of
//!   `SELECT count(*) FROM quiver_diff('ds', 'v1', 'edits')` and
//!   `DIFF ds BETWEEN TAG 'v1' AND BRANCH 'edits'`, cold (freshly opened catalog and
//!   `QuiverContext`, OS page cache warm) and warm (the second run in that context).
//!
//! Results are validated (row counts equal between Quiver and plain Parquet; diff rows =
//! changed labels, all `modified`); any mismatch aborts the run.
//!
//! ```text
//! CARGO_TARGET_DIR=/tmp/target-bench cargo bench --bench sql
//! QUIVER_BENCH_SIZES=1000000 QUIVER_BENCH_RUNS=7 CARGO_TARGET_DIR=/tmp/target-bench cargo bench --bench sql
//! ```
//!
//! Every measurement runs `QUIVER_BENCH_RUNS` times (default 5, at least 5) and reports min
//! and median.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Array, ArrayRef, Float32Array, Int64Array, RecordBatch, StringArray};
use datafusion::physical_plan::{displayable, ExecutionPlan, ExecutionPlanProperties};
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};
use futures::StreamExt;
use parquet::arrow::ArrowWriter;
use quiver_core::{demo, Catalog, VersionSpec};
use quiver_sql::{QuiverContext, ScanStats};

const SEED: u64 = 42;
const EDIT_GROUPS: usize = 500;
const FILE_ROWS: usize = 1_000_000;
/// Start of the last (calendar) quarter of the demo data (2024-01-01 … 2026-01-01).
const LAST_QUARTER: &str = "2025-10-01 00:00:00";
const NUMERIC: &str = "label_id, bbox_x, bbox_y, bbox_w, bbox_h, score, reviewed_at";

fn sizes() -> Vec<u64> {
    std::env::var("QUIVER_BENCH_SIZES")
        .unwrap_or_else(|_| "1000000,10000000".into())
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            s.trim()
                .replace('_', "")
                .parse()
                .unwrap_or_else(|_| panic!("bad QUIVER_BENCH_SIZES entry {s:?}"))
        })
        .collect()
}

fn runs() -> usize {
    std::env::var("QUIVER_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
        .max(5)
}

#[derive(Clone, Copy)]
struct Stat {
    min: Duration,
    median: Duration,
}

fn stat(mut v: Vec<Duration>) -> Stat {
    v.sort();
    Stat {
        min: v[0],
        median: v[v.len() / 2],
    }
}

fn fmt_d(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 1.0 {
        format!("{s:.2} s")
    } else if s >= 1e-3 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{:.1} µs", s * 1e6)
    }
}

fn fmt_rate(rows: u64, d: Duration) -> String {
    let r = rows as f64 / d.as_secs_f64();
    if r >= 1e6 {
        format!("{:.2}M rows/s", r / 1e6)
    } else {
        format!("{:.0}k rows/s", r / 1e3)
    }
}

fn fmt_bytes(b: u64) -> String {
    format!("{:.1} MB", b as f64 / 1e6)
}

fn dir_bytes(p: &Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(p).unwrap() {
        let e = e.unwrap();
        let m = e.metadata().unwrap();
        total += if m.is_dir() {
            dir_bytes(&e.path())
        } else {
            m.len()
        };
    }
    total
}

fn first_u64(batches: &[RecordBatch]) -> u64 {
    let c = batches
        .first()
        .filter(|b| b.num_rows() == 1)
        .unwrap_or_else(|| panic!("expected one row, got {batches:?}"))
        .column(0);
    if let Some(a) = c.as_any().downcast_ref::<Int64Array>() {
        a.value(0) as u64
    } else if let Some(a) = c.as_any().downcast_ref::<arrow::array::UInt64Array>() {
        a.value(0)
    } else {
        panic!("unexpected count type {}", c.data_type())
    }
}

async fn drain(df: datafusion::dataframe::DataFrame) -> u64 {
    let mut stream = df.execute_stream().await.unwrap();
    let mut n = 0u64;
    while let Some(b) = stream.next().await {
        n += b.unwrap().num_rows() as u64;
    }
    n
}

/// One table row of the report.
struct Row {
    size: u64,
    what: String,
    min: String,
    median: String,
    extra: String,
    target: String,
    result: String,
}

impl Row {
    fn new(size: u64, what: impl Into<String>) -> Row {
        Row {
            size,
            what: what.into(),
            min: String::new(),
            median: String::new(),
            extra: String::new(),
            target: String::new(),
            result: String::new(),
        }
    }
    fn times(mut self, s: Stat) -> Row {
        self.min = fmt_d(s.min);
        self.median = fmt_d(s.median);
        self
    }
    fn extra(mut self, e: impl Into<String>) -> Row {
        self.extra = e.into();
        self
    }
    fn target(mut self, t: &str, pass: bool) -> Row {
        self.target = t.into();
        self.result = if pass {
            "pass".into()
        } else {
            "**FAIL**".into()
        };
        self
    }
}

struct Built {
    _dir: tempfile::TempDir,
    catalog_url: String,
    catalog_path: std::path::PathBuf,
    plain_path: std::path::PathBuf,
    labels: u64,
}

/// The demo dataset in a fresh catalog (tag v1) and the same rows as plain Parquet files.
async fn build(size: u64, rows: &mut Vec<Row>) -> Built {
    let dir = tempfile::tempdir().unwrap();
    let catalog_path = dir.path().join("catalog");
    let plain_path = dir.path().join("plain");
    std::fs::create_dir_all(&plain_path).unwrap();
    let catalog_url = catalog_path.to_str().unwrap().to_string();
    let cat = Catalog::open(&catalog_url).await.unwrap();
    let ds = cat
        .create_dataset("ds", demo::schema(), demo::options())
        .await
        .unwrap();

    let (mut t_gen, mut t_quiver, mut t_plain) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let mut txn = ds.begin("main").await.unwrap();
    let mut writer: Option<ArrowWriter<std::fs::File>> = None;
    let (mut file_rows, mut files, mut labels) = (0usize, 0usize, 0u64);
    let mut gen = demo::DemoLabels::new(size, SEED);
    loop {
        let t = Instant::now();
        let Some(batch) = gen.next() else { break };
        t_gen += t.elapsed();
        labels += batch.num_rows() as u64;

        let t = Instant::now();
        txn.append(&batch).await.unwrap();
        t_quiver += t.elapsed();

        let t = Instant::now();
        if writer.is_none() {
            let f =
                std::fs::File::create(plain_path.join(format!("part-{files:04}.parquet"))).unwrap();
            files += 1;
            writer = Some(
                ArrowWriter::try_new(
                    f,
                    batch.schema(),
                    Some(quiver_core::packs::writer_properties()),
                )
                .unwrap(),
            );
        }
        let w = writer.as_mut().unwrap();
        w.write(&batch).unwrap();
        file_rows += batch.num_rows();
        if file_rows >= FILE_ROWS {
            writer.take().unwrap().close().unwrap();
            file_rows = 0;
        }
        t_plain += t.elapsed();
    }
    let t = Instant::now();
    if let Some(w) = writer.take() {
        w.close().unwrap();
    }
    t_plain += t.elapsed();
    let t = Instant::now();
    let c = txn.commit("demo data").await.unwrap();
    t_quiver += t.elapsed();
    assert_eq!(
        c.data.summary.labels_added, labels,
        "commit summary disagrees with the rows appended"
    );
    let ctx = QuiverContext::new(cat).await.unwrap();
    ctx.sql("CREATE TAG 'v1' ON ds").await.unwrap();
    drop(ctx);

    let (qb, pb) = (dir_bytes(&catalog_path), dir_bytes(&plain_path));
    eprintln!(
        "[{size}] built: {labels} labels; generate {:.1}s, quiver append+commit {:.1}s ({}), plain parquet write {:.1}s ({} in {files} files)",
        t_gen.as_secs_f64(),
        t_quiver.as_secs_f64(),
        fmt_bytes(qb),
        t_plain.as_secs_f64(),
        fmt_bytes(pb),
    );
    rows.push(
        Row::new(size, "load: Quiver append + commit (1 run)")
            .extra(format!(
                "{} labels, {}, {} on disk",
                labels,
                fmt_rate(labels, t_quiver),
                fmt_bytes(qb)
            ))
            .times(Stat {
                min: t_quiver,
                median: t_quiver,
            }),
    );
    rows.push(
        Row::new(size, "load: plain Parquet write (1 run)")
            .extra(format!(
                "{files} files, {}, {} on disk",
                fmt_rate(labels, t_plain),
                fmt_bytes(pb)
            ))
            .times(Stat {
                min: t_plain,
                median: t_plain,
            }),
    );
    Built {
        _dir: dir,
        catalog_url,
        catalog_path,
        plain_path,
        labels,
    }
}

fn ratio_row(size: u64, what: &str, rows: u64, q: Stat, p: Stat, target: Option<f64>) -> Row {
    let by_median = p.median.as_secs_f64() / q.median.as_secs_f64();
    let by_min = p.min.as_secs_f64() / q.min.as_secs_f64();
    let mut r = Row::new(size, format!("{what}: Quiver / plain throughput")).extra(format!(
        "{by_median:.2}× (median), {by_min:.2}× (min); {} vs {}",
        fmt_rate(rows, q.median),
        fmt_rate(rows, p.median)
    ));
    r.min = format!("{by_min:.2}×");
    r.median = format!("{by_median:.2}×");
    if let Some(t) = target {
        r = r.target(&format!("≥ {t}×"), by_median >= t);
    }
    r
}

async fn scan_bench(
    size: u64,
    b: &Built,
    q: &QuiverContext,
    plain: &SessionContext,
    plain_utf8: &SessionContext,
    runs: usize,
    rows: &mut Vec<Row>,
) -> ScanStats {
    let mut full_stats = None;
    for (name, cols) in [("numeric projection", NUMERIC), ("all columns", "*")] {
        let q_sql = format!("SELECT {cols} FROM ds AS OF TAG 'v1'");
        let p_sql = format!("SELECT {cols} FROM plain");
        // strings: DataFusion's listing table reads them as Utf8View by default, Quiver's
        // provider as the dataset's Utf8; the Utf8 variant isolates that difference
        let with_utf8 = cols == "*";
        let (mut tq, mut tp, mut tu) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..runs {
            let t = Instant::now();
            let n = drain(q.sql_df(&q_sql).await.unwrap()).await;
            tq.push(t.elapsed());
            assert_eq!(n, b.labels, "quiver `{q_sql}` returned {n} rows");
            let t = Instant::now();
            let n = drain(plain.sql(&p_sql).await.unwrap()).await;
            tp.push(t.elapsed());
            assert_eq!(n, b.labels, "plain `{p_sql}` returned {n} rows");
            if with_utf8 {
                let t = Instant::now();
                let n = drain(plain_utf8.sql(&p_sql).await.unwrap()).await;
                tu.push(t.elapsed());
                assert_eq!(n, b.labels, "plain (Utf8) `{p_sql}` returned {n} rows");
            }
        }
        let parts = |plan: Arc<dyn ExecutionPlan>| {
            let n = plan.output_partitioning().partition_count();
            eprintln!("[{size}] {}", displayable(plan.as_ref()).indent(false));
            n
        };
        let qp = parts(
            q.sql_df(&q_sql)
                .await
                .unwrap()
                .create_physical_plan()
                .await
                .unwrap(),
        );
        let pp = parts(
            plain
                .sql(&p_sql)
                .await
                .unwrap()
                .create_physical_plan()
                .await
                .unwrap(),
        );
        let st = q
            .last_scan_stats()
            .expect("no scan stats after a Quiver scan");
        assert_eq!(st.rows_kept, b.labels, "full scan pruned rows: {st:?}");
        let packs = st.packs;
        full_stats = Some(st);
        let (sq, sp) = (stat(tq), stat(tp));
        eprintln!(
            "[{size}] scan {name}: quiver median {} / plain median {}",
            fmt_d(sq.median),
            fmt_d(sp.median)
        );
        rows.push(
            Row::new(size, format!("scan {name}: Quiver AS OF TAG"))
                .times(sq)
                .extra(format!(
                    "{} (median), {} (min); {packs} packs, {qp} partitions",
                    fmt_rate(b.labels, sq.median),
                    fmt_rate(b.labels, sq.min)
                )),
        );
        rows.push(
            Row::new(size, format!("scan {name}: plain DataFusion Parquet"))
                .times(sp)
                .extra(format!(
                    "{} (median), {} (min); {pp} partitions",
                    fmt_rate(b.labels, sp.median),
                    fmt_rate(b.labels, sp.min)
                )),
        );
        rows.push(ratio_row(
            size,
            &format!("scan {name}"),
            b.labels,
            sq,
            sp,
            Some(0.9),
        ));
        if with_utf8 {
            let su = stat(tu);
            rows.push(
                Row::new(
                    size,
                    format!("scan {name}: plain DataFusion Parquet, strings as Utf8 (no views)"),
                )
                .times(su)
                .extra(format!(
                    "{} (median), {} (min)",
                    fmt_rate(b.labels, su.median),
                    fmt_rate(b.labels, su.min)
                )),
            );
            rows.push(ratio_row(
                size,
                &format!("scan {name} (Utf8 baseline)"),
                b.labels,
                sq,
                su,
                None,
            ));
        }
    }
    full_stats.unwrap()
}

async fn slice_bench(
    size: u64,
    q: &QuiverContext,
    plain: &SessionContext,
    full: &ScanStats,
    runs: usize,
    rows: &mut Vec<Row>,
) {
    let pred = format!("reviewed_at >= TIMESTAMP '{LAST_QUARTER}' AND review_state = 'approved'");
    let q_sql = format!("SELECT count(*) AS n FROM ds AS OF TAG 'v1' WHERE {pred}");
    let p_sql = format!("SELECT count(*) AS n FROM plain WHERE {pred}");
    // reference count without any pruning: the predicate evaluated above a full scan
    let expect = first_u64(
        &plain
            .sql(&format!(
                "SELECT sum(CASE WHEN {pred} THEN 1 ELSE 0 END) FROM plain"
            ))
            .await
            .unwrap()
            .collect()
            .await
            .unwrap(),
    );
    assert!(expect > 0, "slice query selects nothing");
    let (mut tq, mut tp) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let t = Instant::now();
        let n = first_u64(&q.sql(&q_sql).await.unwrap());
        tq.push(t.elapsed());
        assert_eq!(n, expect, "quiver slice count {n} != {expect}");
        let t = Instant::now();
        let n = first_u64(&plain.sql(&p_sql).await.unwrap().collect().await.unwrap());
        tp.push(t.elapsed());
        assert_eq!(n, expect, "plain slice count {n} != {expect}");
    }
    let (mut pq, mut ppl) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let t = Instant::now();
        let plan = q
            .sql_df(&q_sql)
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        pq.push(t.elapsed());
        drop(plan);
        let t = Instant::now();
        let plan = plain
            .sql(&p_sql)
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        ppl.push(t.elapsed());
        drop(plan);
    }
    let st = q.last_scan_stats().expect("no scan stats after the slice");
    assert!(
        st.leaves_kept < full.leaves_kept,
        "slice query did not prune: {st:?} (full scan {full:?})"
    );
    let (sq, sp) = (stat(tq), stat(tp));
    eprintln!(
        "[{size}] slice: {expect} labels; quiver median {} / plain median {}; {st:?}",
        fmt_d(sq.median),
        fmt_d(sp.median)
    );
    rows.push(
        Row::new(size, "slice (last quarter, approved, tag v1): Quiver")
            .times(sq)
            .extra(format!(
                "count = {expect}; leaves kept {}/{} ({:.1}%), rows kept {}/{}, {} packs opened",
                st.leaves_kept,
                full.leaves_kept,
                100.0 * st.leaves_kept as f64 / full.leaves_kept as f64,
                st.rows_kept,
                st.rows_total,
                st.packs
            )),
    );
    rows.push(
        Row::new(
            size,
            "slice (last quarter, approved): plain DataFusion Parquet",
        )
        .times(sp)
        .extra(format!("count = {expect}")),
    );
    rows.push(Row::new(size, "slice: planning only (SQL → physical plan), Quiver").times(stat(pq)));
    rows.push(Row::new(size, "slice: planning only (SQL → physical plan), plain").times(stat(ppl)));
    let by_median = sp.median.as_secs_f64() / sq.median.as_secs_f64();
    let by_min = sp.min.as_secs_f64() / sq.min.as_secs_f64();
    let mut r = Row::new(size, "slice: Quiver speed-up over plain")
        .extra(format!("{by_median:.2}× (median), {by_min:.2}× (min)"));
    r.min = format!("{by_min:.2}×");
    r.median = format!("{by_median:.2}×");
    rows.push(r);
}

/// Sample names of `EDIT_GROUPS` scattered groups (deterministic).
fn edit_samples(labels: u64) -> Vec<String> {
    // samples carry 1–7 labels (4 on average): stay well inside the sample range
    let range = (labels * 2 / 9).max(EDIT_GROUPS as u64 * 2);
    let mut x: u64 = 0x1234_5678_9ABC_DEF1;
    let mut set = BTreeSet::new();
    while set.len() < EDIT_GROUPS {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        set.insert(x % range);
    }
    set.into_iter().map(|s| format!("img-{s:08}")).collect()
}

/// Upsert every label of 500 scattered groups with a changed score on branch `edits`
/// (one commit). Returns the number of changed labels.
async fn make_edits(b: &Built) -> u64 {
    let cat = Catalog::open(&b.catalog_url).await.unwrap();
    let q = QuiverContext::new(cat.clone()).await.unwrap();
    q.sql("CREATE BRANCH edits FROM ds AS OF TAG 'v1'")
        .await
        .unwrap();
    let samples = edit_samples(b.labels);
    let list = samples
        .iter()
        .map(|s| format!("'{s}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let found = q
        .sql(&format!(
            "SELECT * FROM ds AS OF TAG 'v1' WHERE sample_id IN ({list})"
        ))
        .await
        .unwrap();
    let schema = demo::schema();
    let mut batches = Vec::new();
    let mut groups = BTreeSet::new();
    for f in found.iter().filter(|f| f.num_rows() > 0) {
        // back to the dataset's Arrow types (DataFusion may hand out string views)
        let mut cols: Vec<ArrayRef> = schema
            .fields()
            .iter()
            .map(|fl| {
                let c = f.column(f.schema().index_of(fl.name()).unwrap());
                arrow::compute::cast(c, fl.data_type()).unwrap()
            })
            .collect();
        let si = schema.index_of("score").unwrap();
        let old = cols[si]
            .as_any()
            .downcast_ref::<Float32Array>()
            .unwrap()
            .clone();
        // scores are in [0, 1) or null: the new score always differs
        let new: Float32Array = old
            .iter()
            .map(|s| Some(s.map_or(0.5, |s| s + 2.0)))
            .collect();
        cols[si] = Arc::new(new);
        let batch = RecordBatch::try_new(schema.clone(), cols).unwrap();
        let sid = batch
            .column(0)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        groups.extend(sid.iter().flatten().map(str::to_string));
        batches.push(batch);
    }
    assert_eq!(
        groups.len(),
        EDIT_GROUPS,
        "found {} of the {EDIT_GROUPS} edit groups",
        groups.len()
    );
    let changed: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
    let ds = cat.dataset("ds").await.unwrap();
    let mut txn = ds.begin("edits").await.unwrap();
    for batch in &batches {
        txn.upsert(batch).await.unwrap();
    }
    let c = txn.commit("500 scattered score edits").await.unwrap();
    assert_eq!(
        c.data.summary.labels_modified, changed,
        "edit commit summary: {:?}",
        c.data.summary
    );
    changed
}

async fn diff_bench(size: u64, b: &Built, runs: usize, rows: &mut Vec<Row>) {
    let t = Instant::now();
    let changed = make_edits(b).await;
    eprintln!(
        "[{size}] edits: {changed} labels in {EDIT_GROUPS} groups committed in {:.2}s",
        t.elapsed().as_secs_f64()
    );
    let fn_sql = "SELECT count(*) FROM quiver_diff('ds', 'v1', 'edits')";
    let diff_sql = "DIFF ds BETWEEN TAG 'v1' AND BRANCH 'edits'";
    let check_fn = |out: &[RecordBatch]| {
        let n = first_u64(out);
        assert_eq!(n, changed, "quiver_diff counted {n}, expected {changed}");
    };
    let check_diff = |out: &[RecordBatch]| {
        let n: u64 = out.iter().map(|b| b.num_rows() as u64).sum();
        assert_eq!(n, changed, "DIFF returned {n} rows, expected {changed}");
        for batch in out {
            let ci = batch.schema().index_of("change").unwrap();
            let c =
                arrow::compute::cast(batch.column(ci), &arrow::datatypes::DataType::Utf8).unwrap();
            let c = c.as_any().downcast_ref::<StringArray>().unwrap();
            assert!(
                c.iter().all(|v| v == Some("modified")),
                "DIFF has non-`modified` rows"
            );
        }
    };
    let (mut open, mut fn_cold, mut fn_warm, mut st_cold, mut st_warm) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        for stmt in [fn_sql, diff_sql] {
            let t = Instant::now();
            let cat = Catalog::open(&b.catalog_url).await.unwrap();
            let q = QuiverContext::new(cat).await.unwrap();
            open.push(t.elapsed());
            let mut times = Vec::new();
            for _ in 0..2 {
                let t = Instant::now();
                let out = q.sql(stmt).await.unwrap();
                times.push(t.elapsed());
                if stmt == fn_sql {
                    check_fn(&out)
                } else {
                    check_diff(&out)
                }
            }
            let (cold, warm) = if stmt == fn_sql {
                (&mut fn_cold, &mut fn_warm)
            } else {
                (&mut st_cold, &mut st_warm)
            };
            cold.push(times[0]);
            warm.push(times[1]);
        }
    }
    // where the time goes: the structural tree diff alone (group-level changes)
    let (mut tree_cold, mut tree_warm) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let cat = Catalog::open(&b.catalog_url).await.unwrap();
        let ds = cat.dataset("ds").await.unwrap();
        let a = ds.resolve(&VersionSpec::Tag("v1".into())).await.unwrap();
        let e = ds
            .resolve(&VersionSpec::Branch("edits".into()))
            .await
            .unwrap();
        let (a, e) = (ds.snapshot(a), ds.snapshot(e));
        for i in 0..2 {
            let t = Instant::now();
            let changes = a.diff(&e).await.unwrap();
            [&mut tree_cold, &mut tree_warm][i].push(t.elapsed());
            assert_eq!(
                changes.len(),
                EDIT_GROUPS,
                "tree diff found {} groups",
                changes.len()
            );
        }
    }
    rows.push(
        Row::new(
            size,
            "diagnostic: Snapshot::diff alone (tree diff, 500 groups) — cold",
        )
        .times(stat(tree_cold)),
    );
    rows.push(
        Row::new(
            size,
            "diagnostic: Snapshot::diff alone (tree diff, 500 groups) — warm",
        )
        .times(stat(tree_warm)),
    );
    let target = "< 100 ms";
    let ok = |s: Stat| s.median < Duration::from_millis(100);
    let (fc, fw, sc, sw) = (stat(fn_cold), stat(fn_warm), stat(st_cold), stat(st_warm));
    eprintln!(
        "[{size}] diff: quiver_diff cold {} warm {}; DIFF cold {} warm {}",
        fmt_d(fc.median),
        fmt_d(fw.median),
        fmt_d(sc.median),
        fmt_d(sw.median)
    );
    let note = format!("{changed} modified labels in {EDIT_GROUPS} groups");
    rows.push(
        Row::new(
            size,
            "catalog open + QuiverContext::new (before a cold diff)",
        )
        .times(stat(open)),
    );
    rows.push(
        Row::new(size, "count(*) FROM quiver_diff(…) — cold")
            .times(fc)
            .extra(note.clone())
            .target(target, ok(fc)),
    );
    rows.push(
        Row::new(size, "count(*) FROM quiver_diff(…) — warm")
            .times(fw)
            .extra(note.clone())
            .target(target, ok(fw)),
    );
    rows.push(
        Row::new(size, "DIFF ds BETWEEN TAG 'v1' AND BRANCH 'edits' — cold")
            .times(sc)
            .extra(format!("{changed} rows"))
            .target(target, ok(sc)),
    );
    rows.push(
        Row::new(size, "DIFF ds BETWEEN TAG 'v1' AND BRANCH 'edits' — warm")
            .times(sw)
            .extra(format!("{changed} rows"))
            .target(target, ok(sw)),
    );
}

async fn bench_size(size: u64, runs: usize, rows: &mut Vec<Row>) {
    let b = build(size, rows).await;
    let cat = Catalog::open(&b.catalog_url).await.unwrap();
    let q = QuiverContext::new(cat).await.unwrap();
    // the same configuration QuiverContext starts from
    let plain = SessionContext::new_with_config(SessionConfig::new());
    plain
        .register_parquet(
            "plain",
            format!("{}/", b.plain_path.to_str().unwrap()),
            ParquetReadOptions::default(),
        )
        .await
        .unwrap();
    let plain_utf8 = SessionContext::new_with_config(SessionConfig::new().set_bool(
        "datafusion.execution.parquet.schema_force_view_types",
        false,
    ));
    plain_utf8
        .register_parquet(
            "plain",
            format!("{}/", b.plain_path.to_str().unwrap()),
            ParquetReadOptions::default(),
        )
        .await
        .unwrap();
    let full = scan_bench(size, &b, &q, &plain, &plain_utf8, runs, rows).await;
    slice_bench(size, &q, &plain, &full, runs, rows).await;
    drop(q);
    diff_bench(size, &b, runs, rows).await;
    eprintln!(
        "[{size}] catalog after edits: {}",
        fmt_bytes(dir_bytes(&b.catalog_path))
    );
}

fn main() {
    let runs = runs();
    let sizes = sizes();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut rows = Vec::new();
    for &size in &sizes {
        rt.block_on(bench_size(size, runs, &mut rows));
    }
    let mut out = String::new();
    writeln!(
        out,
        "\n{runs} runs each; {} CPUs; sizes {sizes:?}\n",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    )
    .unwrap();
    out.push_str("| labels | measurement | min | median | notes | target | result |\n");
    out.push_str("|---|---|---|---|---|---|---|\n");
    for r in &rows {
        writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            r.size, r.what, r.min, r.median, r.extra, r.target, r.result
        )
        .unwrap();
    }
    let failed = rows.iter().filter(|r| r.result.contains("FAIL")).count();
    writeln!(
        out,
        "\ntargets: {}",
        if failed == 0 {
            "all met".to_string()
        } else {
            format!("{failed} NOT met")
        }
    )
    .unwrap();
    print!("{out}");
}
