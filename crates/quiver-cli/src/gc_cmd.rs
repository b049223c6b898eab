//! `quiver gc`: collect what no live version needs (see `quiver_core::gc`).

use clap::Args;
use quiver_core::{parse_retention, Catalog, CoreError, VacuumOptions};

/// `quiver gc` arguments.
#[derive(Args)]
#[command(after_help = "\
What is live (kept):
  every version reachable from a branch or a tag, the versions of a pending merge, the
  version each recorded training run read, and every version a branch or tag pointed at
  within the retention window (so a deleted branch or a reset can still be restored, and
  a reader that resolved a version just before it moved keeps reading it); for each, its
  layout with the base, deltas and packs it names, and the layout OPTIMIZE replaced within
  the retention window (a reader may still be reading it).

What goes:
  commits, layouts, bases, deltas and packs of aborted writes, deleted branches and
  versions older than the retention window, layouts OPTIMIZE replaced, format-1 leftovers
  (tree nodes, pack index files), and assets (images) that no live version of any dataset
  references. Objects younger than the retention window are never deleted.

Safe to run while others work: writes in progress hold leases, and gc deletes only after
they have committed (waiting up to --wait-secs, then giving up without deleting). A gc that
is interrupted leaves only garbage; run it again.

Examples:
  quiver gc --dry-run                  # what would go, with the default 7-day retention
  quiver gc --retain 1d                # keep one day of unreachable history
  quiver gc --dataset coco --retain 12h
  quiver gc --retain 0d                # everything unreachable now (no undo)

SQL: VACUUM ds [RETAIN n DAYS|HOURS] [DRY RUN]")]
pub struct GcArgs {
    /// Collect only this dataset's commits and layout pointers (plus the catalog's shared
    /// garbage: unreferenced layouts, bases, deltas, packs and assets). Default: the whole
    /// catalog.
    #[arg(long, short = 'd')]
    dataset: Option<String>,
    /// Retention window: a number with d (days), h (hours), m (minutes) or s (seconds).
    #[arg(long, default_value = "7d")]
    retain: String,
    /// Only report what would be deleted.
    #[arg(long)]
    dry_run: bool,
    /// How long to wait for writes in progress before giving up.
    #[arg(long, default_value_t = 60)]
    wait_secs: u64,
    /// Break the lock of a gc that crashed (only when no other gc is running).
    #[arg(long)]
    break_lock: bool,
}

/// Run `quiver gc`; progress on stderr, the summary on stdout.
pub async fn run(cat: &Catalog, a: GcArgs) -> Result<(), CoreError> {
    let retain = parse_retention(&a.retain)?;
    let opts = VacuumOptions {
        retain,
        dry_run: a.dry_run,
        dataset: a.dataset.clone(),
        break_lock: a.break_lock,
        wait_for_writers: std::time::Duration::from_secs(a.wait_secs),
        progress: crate::io_cmd::Bar::new(),
        ..Default::default()
    };
    let r = cat.gc(&opts).await?;
    let verb = if r.dry_run { "would delete" } else { "deleted" };
    println!(
        "live: {} commits, {} layouts, {} bases, {} deltas, {} packs, {} assets",
        r.live_commits, r.live_layouts, r.live_bases, r.live_deltas, r.live_packs, r.live_assets
    );
    for (kind, removed) in r.kinds() {
        if removed.count > 0 {
            println!(
                "{verb} {} {kind} ({:.1} kB)",
                removed.count,
                removed.bytes as f64 / 1e3
            );
        }
    }
    println!(
        "{verb} {} objects, {:.1} kB freed; kept {} unreferenced objects younger than {}",
        r.deleted(),
        r.bytes_freed() as f64 / 1e3,
        r.kept_young,
        a.retain
    );
    Ok(())
}
