//! Merge benchmark (issue 6): two branches of an N-label demo dataset each change 500 label
//! groups (disjoint), then one is merged into the other. Run at two sizes in the same
//! process to show that the cost follows the number of changes, not the dataset size.
//! Each size repeats the merge `QUIVER_BENCH_RUNS` times (default 3) with a fresh pair of
//! branches and other groups, and prints the minimum and the median. The dataset is written
//! by a child process (the same binary), so the merging process starts with a freshly
//! opened catalog: the first merge reads the trees' nodes from disk, later ones find them
//! cached, as in a long-running server.
//!
//! ```sh
//! cargo bench --bench merge                     # 1M and 10M labels
//! QUIVER_BENCH_SIZES=200000 cargo bench --bench merge
//! ```

use std::time::Instant;

use arrow::array::{Array, AsArray, Float32Array, RecordBatch};
use quiver_core::{demo, Catalog, MergeKind, VersionSpec};

fn edited(batch: &RecordBatch, bump: f32) -> RecordBatch {
    let score = batch
        .column_by_name("score")
        .map(|c| c.as_primitive::<arrow::datatypes::Float32Type>().clone());
    let mut cols = batch.columns().to_vec();
    if let (Some(s), Ok(i)) = (score, batch.schema().index_of("score")) {
        let v: Float32Array = (0..s.len())
            .map(|r| {
                Some(if s.is_null(r) {
                    bump
                } else {
                    s.value(r) + bump
                })
            })
            .collect();
        cols[i] = std::sync::Arc::new(v);
    }
    RecordBatch::try_new(batch.schema(), cols).expect("same schema")
}

/// Write the N-label demo dataset to a new catalog at `dir` (run in a child process).
async fn load(dir: &str, rows: u64) {
    let cat = Catalog::open(dir).await.expect("catalog");
    let ds = cat
        .create_dataset("bench", demo::schema(), demo::options())
        .await
        .expect("dataset");
    let mut txn = ds.begin("main").await.expect("begin");
    for b in demo::DemoLabels::new(rows, 42) {
        txn.append(&b).await.expect("append");
    }
    txn.commit("load").await.expect("commit");
}

async fn run(rows: u64) -> (f64, f64, MergeKind, u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().to_str().expect("utf8 path");
    // The bulk load runs in a child process, as it would outside a server: one transaction
    // of N labels leaves the loading process with a heap of several GB, and merges timed in
    // that process ran 185-280 ms where a fresh process took 133-149 ms (BENCHMARKS.md).
    let t = Instant::now();
    let status = std::process::Command::new(std::env::current_exe().expect("own path"))
        .env("QUIVER_BENCH_LOAD_INTO", path)
        .env("QUIVER_BENCH_LOAD_ROWS", rows.to_string())
        .status()
        .expect("load process");
    assert!(status.success(), "load failed: {status}");
    eprintln!(
        "  loaded {rows} labels in {:.1}s (child process)",
        t.elapsed().as_secs_f64()
    );
    let cat = Catalog::open(path).await.expect("catalog");
    let ds = cat.dataset("bench").await.expect("dataset");
    let groups = rows / 4;
    let runs: u64 = std::env::var("QUIVER_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    let mut times = Vec::new();
    let mut last = None;
    for run in 0..runs {
        // a fresh pair of branches from main; 500 scattered groups per side, disjoint (side
        // a takes even picks, side b odd ones) and different in every run
        let (a, b) = (format!("a{run}"), format!("b{run}"));
        for (branch, parity) in [(&a, 0u64), (&b, 1u64)] {
            ds.create_branch(branch, &VersionSpec::main())
                .await
                .expect("branch");
            let mut keys = Vec::new();
            for i in 0..500u64 {
                let g = ((i * 2 + parity) * 7919 * 13 + run * 1009) % groups;
                keys.push(format!("img-{g:08}"));
            }
            let head = ds.head(branch).await.expect("head");
            let set: std::collections::BTreeSet<Vec<u8>> =
                keys.iter().map(|k| k.as_bytes().to_vec()).collect();
            let rows = head.read_groups(&set).await.expect("read groups");
            let mut txn = ds.begin(branch).await.expect("begin");
            for rb in rows.values() {
                txn.upsert(&edited(rb, 1.0 + parity as f32))
                    .await
                    .expect("upsert");
            }
            txn.commit("500 edits").await.expect("commit");
        }
        let t = Instant::now();
        let r = ds
            .merge(&VersionSpec::Branch(b.clone()), &a, None, "bench")
            .await
            .expect("merge");
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        eprintln!("  run {run}: {ms:.1} ms ({})", r.kind.as_str());
        times.push(ms);
        last = Some((r.kind, r.groups_changed));
    }
    let (kind, taken) = last.expect("at least one run");
    times.sort_by(|x, y| x.total_cmp(y));
    (times[0], times[times.len() / 2], kind, taken)
}

fn main() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    if let Ok(dir) = std::env::var("QUIVER_BENCH_LOAD_INTO") {
        let rows = std::env::var("QUIVER_BENCH_LOAD_ROWS")
            .ok()
            .and_then(|v| v.parse().ok())
            .expect("QUIVER_BENCH_LOAD_ROWS");
        rt.block_on(load(&dir, rows));
        return;
    }
    let sizes: Vec<u64> = std::env::var("QUIVER_BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1_000_000, 10_000_000]);
    println!(
        "| labels | merge of 500 + 500 changed groups: min (ms) | median (ms) | result | groups taken |"
    );
    println!("|---:|---:|---:|---|---:|");
    for n in sizes {
        let (min, median, kind, g) = rt.block_on(run(n));
        println!("| {n} | {min:.1} | {median:.1} | {} | {g} |", kind.as_str());
    }
}
