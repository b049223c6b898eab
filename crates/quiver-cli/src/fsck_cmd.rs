//! `quiver fsck`: verify a catalog (refs, commits, layouts, packs, records) and report
//! dangling refs, corrupt or missing objects, half-created datasets and orphans.

use std::sync::Arc;

use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use quiver_core::{Catalog, FsckOptions, FsckReport};

use crate::CliError;

/// How to print the report.
#[derive(Clone, Copy, ValueEnum)]
pub enum FsckFormat {
    /// A summary, then one line per problem.
    Human,
    /// The whole report as one JSON object.
    Json,
}

/// The long help of `quiver fsck` (set on the subcommand, where clap reads it).
pub const LONG_ABOUT: &str =
    "Verify every dataset of the catalog: every entry of every ref (branches, tags), \
every commit reachable from them and from pending merges, each commit's layout pointer, and the \
layout, base, deltas and packs it names (each object re-hashed against its address; a layout \
must hold its commit's content and rows), plus configurations, schema versions, metadata and \
lineage records.\n\n\
Problems (exit code 1):\n  \
dangling_ref    a branch or tag names a commit that does not exist\n  \
missing_object  an object (or a layout pointer) reachable from a ref does not exist\n  \
corrupt         a file does not decode, an object does not match its hash, or a layout does not \
describe its commit (named by its path)\n  \
half_created    a dataset whose creation (or drop) did not finish; invisible to readers\n\n\
Orphans are objects no ref reaches (left by unfinished or aborted writes, or replaced by \
OPTIMIZE) and what storage format 1 left: they are counted and listed, never deleted here \
(VACUUM removes them), and are not problems.";

/// Arguments of `quiver fsck`.
#[derive(Args)]
#[command(
    after_help = "Examples:\n  quiver fsck                     check; exit code 0 when clean, 1 when problems are found\n  quiver fsck --repair            also remove the leftovers of half-created datasets\n  quiver fsck --format json       the report as JSON (problems, orphans, counts)"
)]
pub struct FsckArgs {
    /// Remove the leftovers of half-created datasets, the only repair that is always safe
    /// (nothing reachable is ever deleted). Run it while no dataset is being created.
    #[arg(long)]
    pub repair: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    pub format: FsckFormat,
    /// List every orphan instead of the first 20 (human format).
    #[arg(long)]
    pub all_orphans: bool,
}

/// Run `quiver fsck`; problems left unrepaired are an error (exit code 1).
pub async fn run(cat: &Catalog, a: FsckArgs) -> Result<(), CliError> {
    // a spinner on stderr, drawn only when stderr is a terminal
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("fsck: {msg} {spinner}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    let shown = bar.clone();
    let opts = FsckOptions {
        repair: a.repair,
        progress: Some(Arc::new(move |m: &str| shown.set_message(m.to_string()))),
    };
    let report = cat.fsck(opts).await;
    bar.finish_and_clear();
    let report = report?;
    match a.format {
        FsckFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(|e| CliError::Usage(e.to_string()))?
        ),
        FsckFormat::Human => print_human(&report, a.all_orphans),
    }
    let left = report.problems.iter().filter(|p| !p.repaired).count();
    if left > 0 {
        return Err(CliError::Usage(format!(
            "fsck found {left} problem{} in the catalog",
            if left == 1 { "" } else { "s" }
        )));
    }
    Ok(())
}

fn print_human(r: &FsckReport, all_orphans: bool) {
    println!(
        "checked {} datasets, {} refs ({} entries), {} commits, {} layouts, {} bases, {} deltas, {} packs, {} files",
        r.datasets,
        r.refs,
        r.ref_entries,
        r.commits,
        r.layouts,
        r.bases,
        r.deltas,
        r.packs,
        r.files
    );
    if r.erased_packs > 0 || r.erased_assets > 0 {
        println!(
            "{} packs hold erased labels, {} assets were erased (erasures, not problems)",
            r.erased_packs, r.erased_assets
        );
    }
    for p in &r.problems {
        let kind = serde_json::to_value(p.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let fixed = if p.repaired { " [repaired]" } else { "" };
        println!("{kind:<15} {}: {}{fixed}", p.path, p.detail);
    }
    if !r.orphans.is_empty() {
        println!(
            "{} orphans (objects no ref reaches; not a problem, VACUUM removes them)",
            r.orphans.len()
        );
        let shown = if all_orphans { r.orphans.len() } else { 20 };
        for o in r.orphans.iter().take(shown) {
            println!("  orphan {o}");
        }
        if r.orphans.len() > shown {
            println!(
                "  … and {} more (--all-orphans lists them)",
                r.orphans.len() - shown
            );
        }
    }
    let left = r.problems.iter().filter(|p| !p.repaired).count();
    if left == 0 {
        println!("catalog is clean");
    } else {
        println!("{left} problems");
    }
}
