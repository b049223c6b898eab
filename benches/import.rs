//! Import and asset store benchmark (issue 7).
//!
//! A plain `main` (no criterion), all in one run on a local temporary catalog:
//!
//! * COCO import throughput (labels/s): a generated COCO detection file of
//!   `QUIVER_BENCH_IMAGES` × `QUIVER_BENCH_PER_IMAGE` annotations, imported into a fresh
//!   dataset (parse + validate + one commit); then a re-import of the same file with 1% of
//!   the annotations edited (the diff commit).
//! * Asset store put throughput (MB/s) against a plain `std::fs::copy` of the same image
//!   files (sequential, the same files, page cache warm for both), a COCO import with
//!   `--images` of those files (end to end, puts run 8 at a time), and one large file put
//!   through the streaming (multipart) path against `std::fs::copy` of it.
//!
//! ```text
//! CARGO_TARGET_DIR=/tmp/target-bench cargo bench --bench import
//! QUIVER_BENCH_IMAGES=20000 QUIVER_BENCH_ASSET_FILES=1000 QUIVER_BENCH_ASSET_KB=256 cargo bench --bench import
//! ```
//!
//! Every measurement runs `QUIVER_BENCH_RUNS` times (default 3) and reports min and median.

#![allow(clippy::unwrap_used)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use quiver_core::import::{coco, ImportOptions};
use quiver_core::Catalog;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

const CLASSES: [&str; 10] = [
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "bus",
    "truck",
    "dog",
    "cat",
    "bird",
    "chair",
];

/// A COCO file; `edit` changes the bbox of every 100th annotation.
fn write_coco(path: &Path, images: usize, per: usize, edit: bool) -> usize {
    let mut s = String::with_capacity(images * per * 160);
    s.push_str("{\"images\":[");
    for i in 0..images {
        if i > 0 {
            s.push(',');
        }
        write!(
            s,
            "{{\"id\":{},\"file_name\":\"img_{i:07}.jpg\",\"width\":640,\"height\":480}}",
            i + 1
        )
        .unwrap();
    }
    s.push_str("],\"annotations\":[");
    let mut id = 0usize;
    for i in 0..images {
        for j in 0..per {
            id += 1;
            if id > 1 {
                s.push(',');
            }
            let w = if edit && id.is_multiple_of(100) {
                99.5
            } else {
                20.0 + j as f64
            };
            write!(
                s,
                "{{\"id\":{id},\"image_id\":{},\"category_id\":{},\"bbox\":[{}.5,{}.25,{w},30.0],\"area\":{},\"iscrowd\":0,\"segmentation\":[[1.0,2.0,3.0,4.0,5.0,6.0]]}}",
                i + 1,
                (i + j) % CLASSES.len() + 1,
                (i * 7 + j) % 600,
                (i * 3 + j) % 400,
                w * 30.0
            )
            .unwrap();
        }
    }
    s.push_str("],\"categories\":[");
    for (k, c) in CLASSES.iter().enumerate() {
        if k > 0 {
            s.push(',');
        }
        write!(s, "{{\"id\":{},\"name\":\"{c}\"}}", k + 1).unwrap();
    }
    s.push_str("]}");
    std::fs::write(path, s).unwrap();
    id
}

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

fn dir_size(files: &[PathBuf]) -> u64 {
    files
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum()
}

#[tokio::main]
async fn main() {
    let runs = env("QUIVER_BENCH_RUNS", 3).max(1);
    let n_images = env("QUIVER_BENCH_IMAGES", 20_000);
    let per = env("QUIVER_BENCH_PER_IMAGE", 10);
    let n_files = env("QUIVER_BENCH_ASSET_FILES", 1000);
    let file_kb = env("QUIVER_BENCH_ASSET_KB", 256);
    let big_mb = env("QUIVER_BENCH_BIG_MB", 512);
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let mut table = Vec::<(String, String, String)>::new();

    // ---------------------------------------------------------------- COCO labels/s
    let ann = root.join("ann.json");
    let labels = write_coco(&ann, n_images, per, false);
    let edited = root.join("edited.json");
    write_coco(&edited, n_images, per, true);
    let mb = std::fs::metadata(&ann).unwrap().len() as f64 / 1e6;
    println!("COCO file: {n_images} images, {labels} annotations, {mb:.1} MB");
    let mut t_import = Vec::new();
    let mut t_reimport = Vec::new();
    for r in 0..runs {
        let cat = Catalog::open(root.join(format!("cat-labels-{r}")).to_str().unwrap())
            .await
            .unwrap();
        let t = Instant::now();
        let rep = coco::import(&cat, &ann, &ImportOptions::new("coco"))
            .await
            .unwrap();
        t_import.push(t.elapsed());
        assert_eq!(rep.labels as usize, labels);
        let t = Instant::now();
        let rep = coco::import(&cat, &edited, &ImportOptions::new("coco"))
            .await
            .unwrap();
        t_reimport.push(t.elapsed());
        assert_eq!(
            rep.commit.data.summary.labels_modified as usize,
            labels / 100
        );
    }
    let s = stat(t_import);
    table.push((
        format!("COCO import, new dataset ({labels} labels, {mb:.0} MB JSON)"),
        format!(
            "{:.2} s / {:.2} s",
            s.min.as_secs_f64(),
            s.median.as_secs_f64()
        ),
        format!("{:.0} labels/s", labels as f64 / s.median.as_secs_f64()),
    ));
    let s = stat(t_reimport);
    table.push((
        format!(
            "COCO re-import, 1% of labels edited ({} changed)",
            labels / 100
        ),
        format!(
            "{:.2} s / {:.2} s",
            s.min.as_secs_f64(),
            s.median.as_secs_f64()
        ),
        format!("{:.0} labels/s", labels as f64 / s.median.as_secs_f64()),
    ));

    // ---------------------------------------------------------------- assets MB/s
    let img_dir = root.join("images");
    std::fs::create_dir_all(&img_dir).unwrap();
    let mut files = Vec::with_capacity(n_files);
    for i in 0..n_files {
        let p = img_dir.join(format!("img_{i:07}.jpg"));
        std::fs::write(&p, bytes(i as u64 + 1, file_kb * 1024)).unwrap();
        files.push(p);
    }
    let total = dir_size(&files);
    let total_mb = total as f64 / 1e6;
    let small_ann = root.join("small.json");
    write_coco(&small_ann, n_files, 2, false);
    let (mut t_copy, mut t_put, mut t_coco) = (Vec::new(), Vec::new(), Vec::new());
    for r in 0..runs {
        // plain copy of the same files
        let dest = root.join(format!("copy-{r}"));
        std::fs::create_dir_all(&dest).unwrap();
        let t = Instant::now();
        for f in &files {
            std::fs::copy(f, dest.join(f.file_name().unwrap())).unwrap();
        }
        t_copy.push(t.elapsed());
        std::fs::remove_dir_all(&dest).unwrap();
        // asset store put, sequential
        let cat_dir = root.join(format!("cat-assets-{r}"));
        let cat = Catalog::open(cat_dir.to_str().unwrap()).await.unwrap();
        let assets = cat.assets();
        let t = Instant::now();
        for f in &files {
            assets.put_file(f).await.unwrap();
        }
        t_put.push(t.elapsed());
        drop(cat);
        std::fs::remove_dir_all(&cat_dir).unwrap();
        // COCO import with --images (puts 8 at a time, then the labels commit)
        let cat_dir = root.join(format!("cat-coco-img-{r}"));
        let cat = Catalog::open(cat_dir.to_str().unwrap()).await.unwrap();
        let t = Instant::now();
        let rep = coco::import(&cat, &small_ann, &ImportOptions::new("c").images(&img_dir))
            .await
            .unwrap();
        t_coco.push(t.elapsed());
        assert_eq!(rep.assets as usize, n_files);
        drop(cat);
        std::fs::remove_dir_all(&cat_dir).unwrap();
    }
    let row = |name: String, s: Stat, mb: f64| {
        (
            name,
            format!(
                "{:.3} s / {:.3} s",
                s.min.as_secs_f64(),
                s.median.as_secs_f64()
            ),
            format!("{:.0} MB/s", mb / s.median.as_secs_f64()),
        )
    };
    let what = format!("{n_files} files × {file_kb} KiB = {total_mb:.0} MB");
    let copy = stat(t_copy);
    let put = stat(t_put);
    let ratio = copy.median.as_secs_f64() / put.median.as_secs_f64();
    table.push(row(
        format!("std::fs::copy, sequential ({what})"),
        copy,
        total_mb,
    ));
    table.push(row(
        format!("AssetStore::put_file, sequential ({what}) — {ratio:.2}× copy speed"),
        put,
        total_mb,
    ));
    table.push(row(
        format!("COCO import --images ({what}, {} labels)", n_files * 2),
        stat(t_coco),
        total_mb,
    ));

    // one large file through the streaming path
    let big = root.join("big.bin");
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&big).unwrap());
        for i in 0..big_mb {
            f.write_all(&bytes(1_000_000 + i as u64, 1 << 20)).unwrap();
        }
    }
    let big_size = std::fs::metadata(&big).unwrap().len() as f64 / 1e6;
    let (mut t_bcopy, mut t_bput) = (Vec::new(), Vec::new());
    for r in 0..runs {
        let dest = root.join(format!("big-copy-{r}"));
        let t = Instant::now();
        std::fs::copy(&big, &dest).unwrap();
        t_bcopy.push(t.elapsed());
        std::fs::remove_file(&dest).unwrap();
        let cat_dir = root.join(format!("cat-big-{r}"));
        let cat = Catalog::open(cat_dir.to_str().unwrap()).await.unwrap();
        let t = Instant::now();
        cat.assets().put_file(&big).await.unwrap();
        t_bput.push(t.elapsed());
        drop(cat);
        std::fs::remove_dir_all(&cat_dir).unwrap();
    }
    table.push(row(
        format!("std::fs::copy, one {big_size:.0} MB file"),
        stat(t_bcopy),
        big_size,
    ));
    table.push(row(
        format!("AssetStore::put_file, one {big_size:.0} MB file (streamed, bounded memory)"),
        stat(t_bput),
        big_size,
    ));

    println!("\n| measurement | time (min / median of {runs}) | throughput (median) |");
    println!("|---|---|---|");
    for (a, b, c) in &table {
        println!("| {a} | {b} | {c} |");
    }
}
