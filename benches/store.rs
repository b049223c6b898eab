//! Versioned label store benchmark (issue 3).
//!
//! A plain `main` (no criterion): builds a synthetic computer-vision label dataset in a
//! local temporary catalog and measures build, branch/tag creation, a 500-edit scattered
//! upsert commit (time and bytes written), the diff of that commit and a full scan, plus a
//! plain-Parquet baseline written/read with the `parquet` crate in the same run. Prints a
//! markdown table and pass/fail against the targets.
//!
//! ```text
//! CARGO_TARGET_DIR=/tmp/target-bench cargo bench --bench store            # 1M groups
//! CARGO_TARGET_DIR=/tmp/target-bench cargo bench --bench store -- 100000  # 100k groups
//! QUIVER_BENCH_GROUPS=100000 QUIVER_BENCH_RUNS=5 QUIVER_BENCH_BUILD_RUNS=1 cargo bench --bench store
//! ```
//!
//! Every measurement runs `QUIVER_BENCH_RUNS` times (default 5) and reports min and median;
//! the initial build runs `QUIVER_BENCH_BUILD_RUNS` times (default 3), each into a fresh
//! catalog (the last one is kept for the other measurements).

#![allow(clippy::unwrap_used)]

use std::fs::File;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{
    ArrayRef, Float32Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use quiver_core::{Catalog, ChangeKind, DatasetOptions, Snapshot, VersionSpec};

const EDITS: usize = 500;
const BATCH_GROUPS: usize = 100_000;

use quiver_core::demo::CLASSES;
const STATES: [&str; 3] = ["approved", "pending", "rejected"];
const REVIEWERS: [&str; 12] = [
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory",
    "oscar",
];
/// 2026-01-01T00:00:00Z in microseconds.
const T0: i64 = 1_767_225_600_000_000;

/// splitmix64: a small deterministic generator, so every run sees the same data.
struct Rng(u64);
impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
}

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("sample_id", DataType::Utf8, false),
        Field::new("label_id", DataType::Int64, false),
        Field::new("class", DataType::Utf8, false),
        Field::new("bbox_x", DataType::Float32, false),
        Field::new("bbox_y", DataType::Float32, false),
        Field::new("bbox_w", DataType::Float32, false),
        Field::new("bbox_h", DataType::Float32, false),
        Field::new("score", DataType::Float32, true),
        Field::new("review_state", DataType::Utf8, false),
        Field::new("reviewer", DataType::Utf8, true),
        Field::new(
            "reviewed_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
    ]))
}

#[derive(Default)]
struct Cols {
    sample_id: Vec<String>,
    label_id: Vec<i64>,
    class: Vec<&'static str>,
    bx: Vec<f32>,
    by: Vec<f32>,
    bw: Vec<f32>,
    bh: Vec<f32>,
    score: Vec<Option<f32>>,
    state: Vec<&'static str>,
    reviewer: Vec<Option<&'static str>>,
    reviewed_at: Vec<Option<i64>>,
}

impl Cols {
    fn batch(self, schema: &SchemaRef) -> RecordBatch {
        let cols: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(self.sample_id)),
            Arc::new(Int64Array::from(self.label_id)),
            Arc::new(StringArray::from(self.class)),
            Arc::new(Float32Array::from(self.bx)),
            Arc::new(Float32Array::from(self.by)),
            Arc::new(Float32Array::from(self.bw)),
            Arc::new(Float32Array::from(self.bh)),
            Arc::new(Float32Array::from(self.score)),
            Arc::new(StringArray::from(self.state)),
            Arc::new(StringArray::from(self.reviewer)),
            Arc::new(TimestampMicrosecondArray::from(self.reviewed_at).with_timezone("UTC")),
        ];
        RecordBatch::try_new(schema.clone(), cols).unwrap()
    }
}

fn sample_id(g: usize) -> String {
    format!("img_{:09}", g)
}

/// Number of labels of group `g` (1..=3, mean 2).
fn labels_in(g: usize) -> usize {
    1 + (Rng::new(g as u64).next() % 3) as usize
}

/// Append the labels of group `g`; `edit` > 0 gives a re-reviewed version of label 0.
fn push_group(c: &mut Cols, g: usize, edit: u64) {
    let mut r = Rng::new(g as u64);
    let n = 1 + (r.next() % 3) as usize;
    for l in 0..n {
        let x = r.unit() * 0.8;
        let y = r.unit() * 0.8;
        let w = 0.02 + r.unit() * (0.98 - x).min(0.4);
        let h = 0.02 + r.unit() * (0.98 - y).min(0.4);
        let class = CLASSES[r.below(CLASSES.len() as u64) as usize];
        let state = STATES[r.below(STATES.len() as u64) as usize];
        let score = if r.below(10) == 0 {
            None
        } else {
            Some(0.3 + 0.7 * r.unit())
        };
        let reviewer = REVIEWERS[r.below(REVIEWERS.len() as u64) as usize];
        let at = T0 + r.below(90 * 24 * 3600 * 1_000_000) as i64;
        let pending = state == "pending";
        if edit > 0 && l == 0 {
            // a re-review pass: new state, reviewer, time and a nudged box
            let mut e = Rng::new(edit ^ (g as u64) << 20);
            c.sample_id.push(sample_id(g));
            c.label_id.push(l as i64);
            c.class.push(class);
            c.bx.push(x + 0.001);
            c.by.push(y);
            c.bw.push(w);
            c.bh.push(h);
            c.score.push(score);
            c.state.push(if state == "approved" {
                "rejected"
            } else {
                "approved"
            });
            c.reviewer
                .push(Some(REVIEWERS[e.below(REVIEWERS.len() as u64) as usize]));
            c.reviewed_at.push(Some(
                T0 + 100 * 24 * 3600 * 1_000_000 + e.below(1_000_000_000) as i64,
            ));
            return;
        }
        c.sample_id.push(sample_id(g));
        c.label_id.push(l as i64);
        c.class.push(class);
        c.bx.push(x);
        c.by.push(y);
        c.bw.push(w);
        c.bh.push(h);
        c.score.push(score);
        c.state.push(state);
        c.reviewer.push(if pending { None } else { Some(reviewer) });
        c.reviewed_at.push(if pending { None } else { Some(at) });
    }
}

/// All labels of `groups` groups, in batches of `BATCH_GROUPS` groups (in key order).
fn generate(groups: usize, schema: &SchemaRef) -> Vec<RecordBatch> {
    (0..groups)
        .step_by(BATCH_GROUPS)
        .map(|start| {
            let mut c = Cols::default();
            for g in start..(start + BATCH_GROUPS).min(groups) {
                push_group(&mut c, g, 0);
            }
            c.batch(schema)
        })
        .collect()
}

/// `EDITS` distinct scattered groups for edit round `round`.
fn edit_groups(groups: usize, round: u64) -> Vec<usize> {
    let mut r = Rng::new(0xED17 + round * 7919);
    let mut set = std::collections::BTreeSet::new();
    while set.len() < EDITS.min(groups) {
        set.insert(r.below(groups as u64) as usize);
    }
    set.into_iter().collect()
}

fn edit_batch(gs: &[usize], round: u64, schema: &SchemaRef) -> RecordBatch {
    let mut c = Cols::default();
    for &g in gs {
        push_group(&mut c, g, round + 1);
    }
    c.batch(schema)
}

// ------------------------------------------------------------------ measuring

struct Stat {
    runs: Vec<Duration>,
}
impl Stat {
    fn new() -> Stat {
        Stat { runs: Vec::new() }
    }
    fn push(&mut self, d: Duration) {
        self.runs.push(d);
    }
    fn sorted(&self) -> Vec<Duration> {
        let mut v = self.runs.clone();
        v.sort();
        v
    }
    fn min(&self) -> Duration {
        self.sorted()[0]
    }
    fn median(&self) -> Duration {
        let v = self.sorted();
        v[v.len() / 2]
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

fn fmt_bytes(b: u64) -> String {
    let b = b as f64;
    if b >= 1e9 {
        format!("{:.2} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.1} kB", b / 1e3)
    } else {
        format!("{b} B")
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

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn dir_bytes(p: &std::path::Path) -> u64 {
    let mut total = 0;
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let m = match e.metadata() {
                Ok(m) => m,
                Err(_) => continue,
            };
            total += if m.is_dir() {
                dir_bytes(&e.path())
            } else {
                m.len()
            };
        }
    }
    total
}

fn options() -> DatasetOptions {
    DatasetOptions {
        stats_columns: Some(vec![
            "class".into(),
            "review_state".into(),
            "reviewed_at".into(),
            "score".into(),
        ]),
        ..Default::default()
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    // `cargo bench` passes `--bench`; a bare number argument chooses the size.
    let groups = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.replace('_', "").parse().ok())
        .unwrap_or_else(|| env_usize("QUIVER_BENCH_GROUPS", 1_000_000));
    let runs = env_usize("QUIVER_BENCH_RUNS", 5).max(1);
    let build_runs = env_usize("QUIVER_BENCH_BUILD_RUNS", 3).max(1);
    let schema = schema();

    let t = Instant::now();
    let batches = generate(groups, &schema);
    let rows: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
    eprintln!(
        "generated {groups} groups, {rows} labels in {}",
        fmt_d(t.elapsed())
    );
    debug_assert_eq!(rows, (0..groups).map(labels_in).sum::<usize>() as u64);

    // ---- build: one append commit of every row, into a fresh catalog each run
    let mut build = Stat::new();
    let mut load_bytes = 0u64;
    let mut keep = None;
    for i in 0..build_runs {
        let dir = tempfile::tempdir().unwrap();
        let cat = Catalog::open(dir.path().to_str().unwrap()).await.unwrap();
        let ds = cat
            .create_dataset("labels", schema.clone(), options())
            .await
            .unwrap();
        let before = cat.store().bytes_written();
        let t = Instant::now();
        ds.append("main", &batches, "initial load").await.unwrap();
        let d = t.elapsed();
        build.push(d);
        load_bytes = cat.store().bytes_written() - before;
        eprintln!(
            "build run {i}: {} ({} written)",
            fmt_d(d),
            fmt_bytes(load_bytes)
        );
        keep = Some((dir, cat, ds));
    }
    let (dir, cat, ds) = keep.unwrap();
    let base = ds.branch_head("main").await.unwrap().commit;
    let base_spec = VersionSpec::Version(base.id.to_hex());
    let summary = ds.snapshot(base.clone()).summary().await.unwrap();
    assert_eq!(summary.rows, rows);
    assert_eq!(summary.groups, groups as u64);
    let on_disk = dir_bytes(dir.path());
    let kind = |k: &str| dir_bytes(&dir.path().join("objects").join(k));
    let (load_pack, load_node) = (kind("pack"), kind("node"));

    // ---- branch and tag creation (one ref entry each)
    let mut branch = Stat::new();
    let mut tag = Stat::new();
    for i in 0..runs {
        let t = Instant::now();
        ds.create_branch(&format!("bench-branch-{i}"), &base_spec)
            .await
            .unwrap();
        branch.push(t.elapsed());
        let t = Instant::now();
        ds.create_tag(&format!("bench-tag-{i}"), &base_spec)
            .await
            .unwrap();
        tag.push(t.elapsed());
    }

    // ---- 500 scattered upserts, one commit, each run on its own branch off the base
    let mut edit = Stat::new();
    let mut edit_bytes = Vec::new();
    let mut edited = Vec::new();
    let mut edit_split: Vec<(u64, u64, u64)> = Vec::new();
    for i in 0..runs {
        let b = format!("relabel-{i}");
        ds.create_branch(&b, &base_spec).await.unwrap();
        let gs = edit_groups(groups, i as u64);
        let batch = edit_batch(&gs, i as u64, &schema);
        let (p0, n0) = (kind("pack"), kind("node"));
        let before = cat.store().bytes_written();
        let t = Instant::now();
        let c = ds
            .upsert(&b, &[batch], "re-review 500 labels")
            .await
            .unwrap();
        edit.push(t.elapsed());
        let w = cat.store().bytes_written() - before;
        edit_split.push((w, kind("pack") - p0, kind("node") - n0));
        assert_eq!(c.data.summary.groups_modified, gs.len() as u64);
        edit_bytes.push(w);
        edited.push(c);
    }
    edit_bytes.sort();
    let edit_bytes_med = edit_bytes[edit_bytes.len() / 2];
    let edit_bytes_max = *edit_bytes.last().unwrap();
    let edit_pct = 100.0 * edit_bytes_med as f64 / load_bytes as f64;

    // ---- diff of those 500 changes: warm (caches of this catalog) and cold (a freshly opened catalog)
    let base_snap = ds.snapshot(base.clone());
    let mut diff_warm = Stat::new();
    let mut diff_cold = Stat::new();
    let url = dir.path().to_str().unwrap().to_string();
    for (i, c) in edited.iter().enumerate() {
        let t = Instant::now();
        let changes = base_snap.diff(&ds.snapshot(c.clone())).await.unwrap();
        diff_warm.push(t.elapsed());
        assert_eq!(changes.len(), EDITS.min(groups), "run {i}");
        assert!(changes.iter().all(|c| c.kind() == ChangeKind::Modified));

        let cat2 = Catalog::open(&url).await.unwrap();
        let ds2 = cat2.dataset("labels").await.unwrap();
        let t = Instant::now();
        let a = ds2.checkout(&base_spec).await.unwrap();
        let b = ds2
            .checkout(&VersionSpec::Version(c.id.to_hex()))
            .await
            .unwrap();
        let changes = a.diff(&b).await.unwrap();
        diff_cold.push(t.elapsed());
        assert_eq!(changes.len(), EDITS.min(groups));
    }

    // ---- full read of the base snapshot (fresh catalog each run: tree walk + pack index + Parquet)
    let mut scan = Stat::new();
    for _ in 0..runs {
        let cat2 = Catalog::open(&url).await.unwrap();
        let ds2 = cat2.dataset("labels").await.unwrap();
        let t = Instant::now();
        let snap: Snapshot = ds2.checkout(&base_spec).await.unwrap();
        let out = snap.scan(None).await.unwrap();
        scan.push(t.elapsed());
        let n: u64 = out.iter().map(|b| b.num_rows() as u64).sum();
        assert_eq!(n, rows);
    }

    // ---- baseline: the same rows as one plain Parquet file (same writer properties as packs)
    let pdir = tempfile::tempdir().unwrap();
    let ppath = pdir.path().join("labels.parquet");
    let mut pwrite = Stat::new();
    for _ in 0..runs.min(3) {
        let t = Instant::now();
        let f = File::create(&ppath).unwrap();
        let mut w = ArrowWriter::try_new(
            f,
            schema.clone(),
            Some(quiver_core::packs::writer_properties()),
        )
        .unwrap();
        for b in &batches {
            w.write(b).unwrap();
        }
        w.close().unwrap();
        pwrite.push(t.elapsed());
    }
    let parquet_bytes = std::fs::metadata(&ppath).unwrap().len();
    let mut pread = Stat::new();
    for _ in 0..runs {
        let t = Instant::now();
        let f = File::open(&ppath).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(f)
            .unwrap()
            .with_batch_size(64 * 1024)
            .build()
            .unwrap();
        let mut n = 0u64;
        let mut out = Vec::new();
        for b in reader {
            let b = b.unwrap();
            n += b.num_rows() as u64;
            out.push(b);
        }
        pread.push(t.elapsed());
        assert_eq!(n, rows);
    }

    // ---- report
    let pass = |ok: bool| if ok { "pass" } else { "**FAIL**" };
    let branch_ok = branch.median() < Duration::from_millis(5);
    let tag_ok = tag.median() < Duration::from_millis(5);
    let edit_ok = edit_pct < 3.0;
    let diff_ok = diff_cold.median() < Duration::from_millis(50);
    let diff_warm_ok = diff_warm.median() < Duration::from_millis(50);
    let scan_rate = rows as f64 / scan.median().as_secs_f64();
    let parquet_rate = rows as f64 / pread.median().as_secs_f64();

    println!();
    println!(
        "Quiver store benchmark: {groups} label groups, {rows} labels; leaf_target {} groups, fanout {}; {runs} runs (build {build_runs})",
        ds.config().leaf_target, ds.config().fanout
    );
    println!();
    println!("| measurement | min | median | target | result |");
    println!("|---|---|---|---|---|");
    println!(
        "| build: append all labels as one commit | {} | {} | | {} ({} written) |",
        fmt_d(build.min()),
        fmt_d(build.median()),
        fmt_rate(rows, build.median()),
        fmt_bytes(load_bytes)
    );
    println!(
        "| create branch | {} | {} | < 5 ms | {} |",
        fmt_d(branch.min()),
        fmt_d(branch.median()),
        pass(branch_ok)
    );
    println!(
        "| create tag | {} | {} | < 5 ms | {} |",
        fmt_d(tag.min()),
        fmt_d(tag.median()),
        pass(tag_ok)
    );
    println!(
        "| commit {EDITS} scattered upserts: time | {} | {} | | |",
        fmt_d(edit.min()),
        fmt_d(edit.median())
    );
    println!(
        "| commit {EDITS} scattered upserts: bytes written | {} | {} (max {}) | < 3% of load | {:.2}% of {} — {} |",
        fmt_bytes(edit_bytes[0]),
        fmt_bytes(edit_bytes_med),
        fmt_bytes(edit_bytes_max),
        edit_pct,
        fmt_bytes(load_bytes),
        pass(edit_ok)
    );
    println!(
        "| diff of the {EDITS} changes (fresh catalog, cold caches) | {} | {} | < 50 ms | {} |",
        fmt_d(diff_cold.min()),
        fmt_d(diff_cold.median()),
        pass(diff_ok)
    );
    println!(
        "| diff of the {EDITS} changes (warm node cache) | {} | {} | < 50 ms | {} |",
        fmt_d(diff_warm.min()),
        fmt_d(diff_warm.median()),
        pass(diff_warm_ok)
    );
    println!(
        "| full read: Snapshot::scan (fresh catalog) | {} | {} | | {} |",
        fmt_d(scan.min()),
        fmt_d(scan.median()),
        fmt_rate(rows, scan.median())
    );
    println!(
        "| baseline: write one Parquet file (ArrowWriter) | {} | {} | | {} |",
        fmt_d(pwrite.min()),
        fmt_d(pwrite.median()),
        fmt_bytes(parquet_bytes)
    );
    println!(
        "| baseline: read it fully (ParquetRecordBatchReader) | {} | {} | | {} |",
        fmt_d(pread.min()),
        fmt_d(pread.median()),
        fmt_rate(rows, pread.median())
    );
    println!(
        "| scan / plain Parquet read throughput | | | | {:.2}× |",
        scan_rate / parquet_rate
    );
    println!();
    println!(
        "catalog on disk after all runs: {} (initial load {} vs plain Parquet {}: {:.2}×)",
        fmt_bytes(on_disk),
        fmt_bytes(load_bytes),
        fmt_bytes(parquet_bytes),
        load_bytes as f64 / parquet_bytes as f64
    );
    edit_split.sort();
    let (ew, ep, en) = edit_split[edit_split.len() / 2];
    println!(
        "initial load by kind: packs {} + tree nodes {} + other {}; median 500-edit commit: packs {} + tree nodes {} + other {} = {}",
        fmt_bytes(load_pack),
        fmt_bytes(load_node),
        fmt_bytes(load_bytes.saturating_sub(load_pack + load_node)),
        fmt_bytes(ep),
        fmt_bytes(en),
        fmt_bytes(ew.saturating_sub(ep + en)),
        fmt_bytes(ew)
    );
    let all_ok = branch_ok && tag_ok && edit_ok && diff_ok;
    println!(
        "targets: {}",
        if all_ok { "all met" } else { "NOT all met" }
    );
}
