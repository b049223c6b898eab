//! Storage benchmark against Lance (issue 19): `cargo bench --bench storage`.
//!
//! One run measures Quiver and Lance (pylance) on the same operations over the synthetic
//! label table of the peer benchmark (`shared/bench/peers/peers.py`, `gen_table(n)`: 13
//! columns sorted by (sample_id, label_id), plus its 500-label edit set) and prints a
//! markdown table of figures and ratios Quiver/Lance:
//!
//! 1. import of the table written as one Parquet file (`quiver import parquet`, a child
//!    process: M rows/s and its peak RSS) vs `lance.write_dataset` from the same file;
//! 2. bytes on disk after the load (objects/pack vs everything else) vs the Lance directory;
//! 3. commit of the 500 scattered label edits (`UPDATE … WHERE label_id IN (…)` through
//!    Flight SQL on a warm `quiver serve`): time and bytes written, vs Lance's `update`;
//! 4. `quiver_diff` of those edits with old and new values, warm and as the first query of a
//!    freshly started server, vs Lance's `delta()`;
//! 5. `CREATE TAG` / `CREATE BRANCH` on a warm server vs `tags.create` / `create_branch`;
//! 6. the slice query as the first query after a server restart;
//! 7. full scan, numeric projection and slice query to pyarrow through DoGet and Flight SQL,
//!    vs Lance in process and DuckDB in process on the Parquet file;
//! 8. when the server accepts `OPTIMIZE <ds>`: the scans after 100 successive 500-edit
//!    commits and after OPTIMIZE (Lance: `compact_files`); skipped otherwise.
//!
//! This binary finds (or builds) the `quiver` binary, the peer benchmark and a Python with
//! pyarrow, pylance, duckdb, adbc-driver-flightsql and numpy, then runs the driver
//! `benches/storage.py` once per row count. Environment:
//!
//! * `QUIVER_BENCH_ROWS` — row counts, space- or comma-separated (default `1000000 10000000`);
//! * `QUIVER_BENCH_RUNS` — runs per figure, the median is shown (default 3);
//! * `QUIVER_BIN` — the `quiver` binary to measure; unset: `cargo build --release -p
//!   quiver-cli` (`QUIVER_BENCH_PROFILE` picks another cargo profile) and its output;
//! * `QUIVER_PEERS` — path of `peers.py` (default: `../shared/bench/peers/peers.py` beside
//!   this clone, or beside the main clone of a git worktree);
//! * `QUIVER_PY` — the Python to use; unset: the peers' `.venv` if it has every package, else
//!   `$QUIVER_CACHE/bench-venv` (default `~/.cache/quiver/bench-venv`), created and filled
//!   with pip on first use;
//! * `QUIVER_BENCH_SYNC` — `true` (default) or `false`: the `--sync` of every quiver process;
//! * `QUIVER_BENCH_EDIT_SERIES` — `auto` (default: step 8 only when OPTIMIZE is accepted),
//!   `1` (the 100 commits and their scans even without OPTIMIZE) or `0` (never);
//! * `QUIVER_BENCH_DIR` — scratch directory (default: a temporary directory, removed at the
//!   end; `QUIVER_BENCH_KEEP=1` keeps it); `QUIVER_BENCH_OUT` — where the JSON of every run is
//!   written (default `$TMPDIR/quiver-storage-bench`).
//!
//! ```text
//! cargo bench --bench storage
//! QUIVER_BENCH_ROWS=100000 QUIVER_BIN=target/debug/quiver cargo bench --bench storage --profile dev
//! ```

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");
/// Modules the driver imports (pylance is imported as `lance`).
const PY_MODULES: &str = "pyarrow, lance, duckdb, adbc_driver_flightsql, numpy";
/// What pip installs into the bench venv.
const PY_PACKAGES: [&str; 5] = [
    "pyarrow",
    "pylance",
    "duckdb",
    "adbc-driver-flightsql",
    "numpy",
];

/// A failure reported as one clear message.
struct BenchError(String);

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

type Result<T> = std::result::Result<T, BenchError>;

fn err<T>(msg: impl Into<String>) -> Result<T> {
    Err(BenchError(msg.into()))
}

fn env_opt(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// `QUIVER_BENCH_ROWS`: counts separated by spaces or commas; `_` allowed inside a number.
fn row_counts() -> Result<Vec<u64>> {
    let raw = env_opt("QUIVER_BENCH_ROWS").unwrap_or_else(|| "1000000 10000000".into());
    let mut rows = Vec::new();
    for tok in raw.split(|c: char| c == ',' || c.is_whitespace()) {
        if tok.is_empty() {
            continue;
        }
        match tok.replace('_', "").parse::<u64>() {
            Ok(n) if n >= 1000 => rows.push(n),
            Ok(n) => return err(format!("QUIVER_BENCH_ROWS: {n} is too small (at least 1000)")),
            Err(_) => {
                return err(format!(
                    "QUIVER_BENCH_ROWS: '{tok}' is not a row count (expected e.g. \"1000000 10000000\")"
                ))
            }
        }
    }
    if rows.is_empty() {
        return err("QUIVER_BENCH_ROWS names no row count");
    }
    Ok(rows)
}

fn runs() -> Result<u32> {
    match env_opt("QUIVER_BENCH_RUNS") {
        None => Ok(3),
        Some(v) => match v.trim().parse::<u32>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => err(format!(
                "QUIVER_BENCH_RUNS: '{v}' is not a positive number of runs"
            )),
        },
    }
}

fn choice(name: &str, default: &str, allowed: &[&str]) -> Result<String> {
    let v = env_opt(name).unwrap_or_else(|| default.into());
    let v = v.trim().to_string();
    if allowed.contains(&v.as_str()) {
        Ok(v)
    } else {
        err(format!(
            "{name}: '{v}' is not one of {}",
            allowed.join(", ")
        ))
    }
}

/// The `quiver` binary: `QUIVER_BIN`, or the one `cargo build -p quiver-cli` produces.
fn quiver_bin() -> Result<PathBuf> {
    if let Some(p) = env_opt("QUIVER_BIN") {
        let p = PathBuf::from(p);
        if !p.is_file() {
            return err(format!(
                "QUIVER_BIN={} is not a file (build it with `cargo build --release -p quiver-cli`, \
                 or unset QUIVER_BIN to let the bench build it)",
                p.display()
            ));
        }
        return Ok(p);
    }
    let profile = env_opt("QUIVER_BENCH_PROFILE").unwrap_or_else(|| "release".into());
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    eprintln!(
        "storage bench: building the quiver binary (cargo build --profile {profile} -p quiver-cli); \
         set QUIVER_BIN to skip"
    );
    let mut build = Command::new(&cargo);
    // Cargo gives this process the bench package's CARGO_PKG_*, CARGO_MANIFEST_* and similar
    // variables. Build scripts (ring's, via cc) rerun when those change, which would rebuild
    // ring and everything above it (tonic, object_store, parquet, datafusion) here, and again
    // in the next plain build. The nested build gets the environment of a shell instead.
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        if k.starts_with("CARGO_PKG_")
            || k.starts_with("CARGO_MANIFEST_")
            || k.starts_with("CARGO_BIN_")
            || k.starts_with("CARGO_CFG_")
            || k.starts_with("CARGO_FEATURE_")
            || matches!(
                k.as_ref(),
                "CARGO_CRATE_NAME"
                    | "CARGO_PRIMARY_PACKAGE"
                    | "CARGO_TARGET_TMPDIR"
                    | "CARGO_RUSTC_CURRENT_DIR"
                    | "OUT_DIR"
            )
        {
            build.env_remove(&key);
        }
    }
    let out = build
        .args([
            "build",
            "--profile",
            &profile,
            "-p",
            "quiver-cli",
            "--bin",
            "quiver",
        ])
        .arg("--message-format=json-render-diagnostics")
        .current_dir(MANIFEST_DIR)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| BenchError(format!("cannot run {}: {e}", cargo.to_string_lossy())))?;
    if !out.status.success() {
        return err(format!(
            "cargo build -p quiver-cli failed ({}); see the messages above",
            out.status
        ));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let exe = stdout
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["reason"] == "compiler-artifact" && v["target"]["name"] == "quiver")
        .find_map(|v| v["executable"].as_str().map(PathBuf::from));
    match exe {
        Some(p) if p.is_file() => Ok(p),
        _ => err("cargo build -p quiver-cli reported no `quiver` executable; set QUIVER_BIN"),
    }
}

/// `peers.py`: `QUIVER_PEERS`, else `shared/` beside this clone or beside the main clone.
fn peers_py() -> Result<PathBuf> {
    if let Some(p) = env_opt("QUIVER_PEERS") {
        let p = PathBuf::from(p);
        if !p.is_file() {
            return err(format!("QUIVER_PEERS={} is not a file", p.display()));
        }
        return Ok(p);
    }
    let rel = Path::new("shared/bench/peers/peers.py");
    let mut tried = Vec::new();
    let manifest = Path::new(MANIFEST_DIR);
    if let Some(parent) = manifest.parent() {
        tried.push(parent.join(rel));
    }
    // in a git worktree, shared/ sits beside the main clone (the parent of the common .git)
    if let Ok(out) = Command::new("git")
        .args(["rev-parse", "--git-common-dir"])
        .current_dir(manifest)
        .output()
    {
        if out.status.success() {
            let common = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            let common = if common.is_absolute() {
                common
            } else {
                manifest.join(common)
            };
            if let Some(root_parent) = common.parent().and_then(Path::parent) {
                tried.push(root_parent.join(rel));
            }
        }
    }
    match tried.iter().find(|p| p.is_file()) {
        Some(p) => Ok(p.clone()),
        None => err(format!(
            "peers.py not found (looked at {}); set QUIVER_PEERS",
            tried
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

fn has_modules(py: &Path) -> bool {
    Command::new(py)
        .args(["-c", &format!("import {PY_MODULES}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn cache_dir() -> PathBuf {
    if let Some(c) = env_opt("QUIVER_CACHE") {
        return PathBuf::from(c);
    }
    let home = env_opt("HOME").unwrap_or_else(|| ".".into());
    Path::new(&home).join(".cache/quiver")
}

/// A Python with every module the driver needs (see the module docs for the order).
fn python(peers: &Path) -> Result<PathBuf> {
    if let Some(p) = env_opt("QUIVER_PY") {
        let p = PathBuf::from(p);
        if !has_modules(&p) {
            return err(format!(
                "QUIVER_PY={} cannot import {PY_MODULES} (pip install {})",
                p.display(),
                PY_PACKAGES.join(" ")
            ));
        }
        return Ok(p);
    }
    if let Some(dir) = peers.parent() {
        let p = dir.join(".venv/bin/python");
        if p.is_file() && has_modules(&p) {
            return Ok(p);
        }
    }
    let venv = cache_dir().join("bench-venv");
    let py = venv.join("bin/python");
    if py.is_file() && has_modules(&py) {
        return Ok(py);
    }
    if !py.is_file() {
        eprintln!("storage bench: creating the Python venv {}", venv.display());
        let ok = Command::new("python3")
            .arg("-m")
            .arg("venv")
            .arg(&venv)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            return err(format!(
                "python3 -m venv {} failed; set QUIVER_PY to a Python with {PY_MODULES}",
                venv.display()
            ));
        }
    }
    eprintln!(
        "storage bench: pip install {} into {}",
        PY_PACKAGES.join(" "),
        venv.display()
    );
    let ok = Command::new(&py)
        .args(["-m", "pip", "install", "-q"])
        .args(PY_PACKAGES)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok || !has_modules(&py) {
        return err(format!(
            "could not install {} into {}; set QUIVER_PY to a Python with {PY_MODULES}",
            PY_PACKAGES.join(" "),
            venv.display()
        ));
    }
    Ok(py)
}

fn run() -> Result<()> {
    let rows = row_counts()?;
    let runs = runs()?;
    let sync = choice("QUIVER_BENCH_SYNC", "true", &["true", "false"])?;
    let series = choice("QUIVER_BENCH_EDIT_SERIES", "auto", &["auto", "0", "1"])?;
    let keep = env_opt("QUIVER_BENCH_KEEP").is_some_and(|v| v != "0");
    let peers = peers_py()?;
    let py = python(&peers)?;
    let bin = quiver_bin()?;
    let scratch = match env_opt("QUIVER_BENCH_DIR") {
        Some(d) => tempfile::Builder::new()
            .prefix("quiver-storage-bench-")
            .tempdir_in(&d)
            .map_err(|e| {
                BenchError(format!(
                    "QUIVER_BENCH_DIR={d}: cannot create a directory: {e}"
                ))
            })?,
        None => tempfile::Builder::new()
            .prefix("quiver-storage-bench-")
            .tempdir()
            .map_err(|e| BenchError(format!("cannot create a temporary directory: {e}")))?,
    };
    let out_dir = env_opt("QUIVER_BENCH_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("quiver-storage-bench"));
    std::fs::create_dir_all(&out_dir)
        .map_err(|e| BenchError(format!("cannot create {}: {e}", out_dir.display())))?;
    let script = Path::new(MANIFEST_DIR).join("benches/storage.py");
    // this clone's Python client, whatever the venv has installed
    let mut pythonpath = OsString::from(Path::new(MANIFEST_DIR).join("python"));
    if let Some(old) = std::env::var_os("PYTHONPATH") {
        pythonpath.push(":");
        pythonpath.push(old);
    }
    eprintln!(
        "storage bench: quiver {}, peers {}, python {}, scratch {}",
        bin.display(),
        peers.display(),
        py.display(),
        scratch.path().display()
    );
    for n in rows {
        let json = out_dir.join(format!("storage-{n}.json"));
        let work = scratch.path().join(format!("n{n}"));
        let status = Command::new(&py)
            .arg(&script)
            .arg("--quiver-bin")
            .arg(&bin)
            .arg("--peers")
            .arg(&peers)
            .args(["--rows", &n.to_string(), "--runs", &runs.to_string()])
            .args(["--sync", &sync, "--edit-series", &series])
            .arg("--work")
            .arg(&work)
            .arg("--json")
            .arg(&json)
            .env("PYTHONPATH", &pythonpath)
            .status()
            .map_err(|e| BenchError(format!("cannot run {}: {e}", py.display())))?;
        if !status.success() {
            if keep {
                let _ = scratch.keep();
            }
            return err(format!(
                "benches/storage.py failed at {n} rows ({status}); its message is above"
            ));
        }
        if !keep {
            let _ = std::fs::remove_dir_all(&work);
        }
    }
    if keep {
        let kept = scratch.keep();
        eprintln!("storage bench: scratch kept at {}", kept.display());
    }
    Ok(())
}

fn main() -> ExitCode {
    // `cargo bench` passes `--bench`; this harness takes no arguments
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("storage bench: error: {e}");
            ExitCode::FAILURE
        }
    }
}
