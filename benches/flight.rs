//! Flight benchmark (issue 5): DoGet throughput into a pyarrow client on loopback against the
//! same query scanned in process, in the same run; labels/second into a PyTorch DataLoader.
//!
//! For each size in `QUIVER_BENCH_SIZES` (labels, default `10000000`):
//!
//! * writes the deterministic demo dataset (seed 42) to a temporary local catalog, tag `v1`,
//!   and runs `sync` so the timed reads do not overlap the write-back of the new pack;
//! * in process: `SELECT <numeric columns> FROM demo AS OF TAG 'v1'` through `QuiverContext`,
//!   drained as a stream; bytes = Arrow buffer bytes of the batches;
//! * starts the Flight server in this process on 127.0.0.1:0 and runs
//!   `benches/flight_client.py` (the venv's python, `QUIVER_PY`, default
//!   `~/.cache/quiver/venv/bin/python`): pyarrow `do_get` of the same projection as 1 shard
//!   and as 4 shards read by 4 threads, a `DataLoader(num_workers=2)` over `to_torch`, and
//!   the projection as a SQL statement through ADBC Flight SQL;
//! * prints rates and the ratio Flight / in-process. Each figure: min/median of
//!   `QUIVER_BENCH_RUNS` runs (default 5), in-process and Flight runs interleaved.
//!
//! ```text
//! CARGO_TARGET_DIR=/tmp/target-bench cargo bench --bench flight
//! ```

#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::Instant;

use futures::StreamExt;
use quiver_core::{demo, Catalog, VersionSpec};
use quiver_sql::QuiverContext;

const NUMERIC: &str = "label_id, bbox_x, bbox_y, bbox_w, bbox_h, score";

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

async fn in_process(cat: &Catalog) -> (u64, u64, f64) {
    let ctx = QuiverContext::new(cat.clone()).await.unwrap();
    let t = Instant::now();
    let df = ctx
        .sql_df(&format!("SELECT {NUMERIC} FROM demo AS OF TAG 'v1'"))
        .await
        .unwrap();
    let mut s = df.execute_stream().await.unwrap();
    let (mut rows, mut bytes) = (0u64, 0u64);
    while let Some(b) = s.next().await {
        let b = b.unwrap();
        rows += b.num_rows() as u64;
        bytes += b
            .columns()
            .iter()
            .map(|c| c.to_data().get_slice_memory_size().unwrap_or(0) as u64)
            .sum::<u64>();
    }
    (rows, bytes, t.elapsed().as_secs_f64())
}

#[tokio::main]
async fn main() {
    let sizes: Vec<u64> = std::env::var("QUIVER_BENCH_SIZES")
        .unwrap_or_else(|_| "10000000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let runs: usize = std::env::var("QUIVER_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5)
        .max(3);
    let py = std::env::var("QUIVER_PY").unwrap_or_else(|_| {
        format!(
            "{}/.cache/quiver/venv/bin/python",
            std::env::var("HOME").unwrap_or_default()
        )
    });
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/flight_client.py");
    for n in sizes {
        let dir = tempfile::tempdir().unwrap();
        let cat = Catalog::open(dir.path().to_str().unwrap()).await.unwrap();
        let t = Instant::now();
        let ds = cat
            .create_dataset("demo", demo::schema(), demo::options())
            .await
            .unwrap();
        let mut txn = ds.begin("main").await.unwrap();
        for b in demo::DemoLabels::new(n, 42) {
            txn.append(&b).await.unwrap();
        }
        txn.commit("demo").await.unwrap();
        ds.create_tag("v1", &VersionSpec::main()).await.unwrap();
        println!(
            "## {n} labels (written in {:.1} s)",
            t.elapsed().as_secs_f64()
        );
        // measure reads, not the kernel writing back the pack just written (~0.8 GB at 10M
        // labels, flushed over the next ~30 s otherwise: the span of the timed runs)
        let t = Instant::now();
        let synced = Command::new("sync").status().map(|s| s.success());
        println!("(sync: {synced:?} in {:.1} s)", t.elapsed().as_secs_f64());

        let bound = quiver_flight::bind("127.0.0.1:0").await.unwrap();
        let url = format!("grpc://{}", bound.local_addr());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server_cat = cat.clone();
        let server = tokio::spawn(async move {
            quiver_flight::serve(server_cat, bound, Default::default(), async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });

        let (mut local_mbs, mut local_rows_s) = (Vec::new(), Vec::new());
        let mut flight: Vec<serde_json::Value> = Vec::new();
        let mut local_bytes = 0;
        for _ in 0..runs {
            let (rows, bytes, secs) = in_process(&cat).await;
            assert_eq!(rows, n);
            local_bytes = bytes;
            local_mbs.push(bytes as f64 / secs / 1e6);
            local_rows_s.push(rows as f64 / secs);
            // the python client in a child process (one run per call)
            let out = tokio::task::spawn_blocking({
                let (py, url) = (py.clone(), url.clone());
                move || {
                    Command::new(&py)
                        .args([script, &url, NUMERIC, "1"])
                        // this clone's client, whatever the venv has installed
                        .env("PYTHONPATH", concat!(env!("CARGO_MANIFEST_DIR"), "/python"))
                        .output()
                        .unwrap()
                }
            })
            .await
            .unwrap();
            if !out.status.success() {
                panic!(
                    "flight_client.py failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            for k in [
                "doget_1_rows",
                "doget_4_rows",
                "dataloader_labels",
                "adbc_sql_rows",
            ] {
                assert_eq!(v[k].as_u64(), Some(n), "{k}");
            }
            flight.push(v);
        }
        let get = |k: &str| -> Vec<f64> { flight.iter().map(|v| v[k].as_f64().unwrap()).collect() };
        let (lm, lr) = (median(&mut local_mbs), median(&mut local_rows_s));
        let mut f1 = get("doget_1_mbs");
        let mut f4 = get("doget_4_mbs");
        let mut dl = get("dataloader_labels_s");
        let mut adbc = get("adbc_sql_mbs");
        let (m1, m4, mdl) = (median(&mut f1), median(&mut f4), median(&mut dl));
        let madbc = median(&mut adbc);
        println!(
            "projection: {NUMERIC} ({:.0} MB of Arrow buffers)",
            local_bytes as f64 / 1e6
        );
        println!(
            "in-process scan        median {lm:8.0} MB/s  ({:.2} M rows/s)  min..max {:.0}..{:.0}",
            lr / 1e6,
            local_mbs.first().unwrap(),
            local_mbs.last().unwrap()
        );
        println!(
            "pyarrow DoGet 1 shard  median {m1:8.0} MB/s  ratio {:.2}  min..max {:.0}..{:.0}",
            m1 / lm,
            f1.first().unwrap(),
            f1.last().unwrap()
        );
        println!(
            "pyarrow DoGet 4 shards median {m4:8.0} MB/s  ratio {:.2}  min..max {:.0}..{:.0}",
            m4 / lm,
            f4.first().unwrap(),
            f4.last().unwrap()
        );
        println!(
            "DataLoader 2 workers   median {:8.2} M labels/s  min..max {:.2}..{:.2}",
            mdl / 1e6,
            dl.first().unwrap() / 1e6,
            dl.last().unwrap() / 1e6
        );
        println!(
            "ADBC Flight SQL query   median {madbc:8.0} MB/s  ratio {:.2}  min..max {:.0}..{:.0}",
            madbc / lm,
            adbc.first().unwrap(),
            adbc.last().unwrap()
        );
        let _ = tx.send(());
        server.await.unwrap();
    }
}
