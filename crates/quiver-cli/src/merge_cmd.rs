//! `quiver merge`: three-way merges with surfaced conflicts.

use arrow::util::pretty::pretty_format_batches;
use clap::Args;
use quiver_core::{default_author, Catalog, CoreError, MergeKind, Resolution, VersionSpec};

/// Arguments of `quiver merge`.
#[derive(Args)]
#[command(
    after_help = "Examples:\n  quiver merge demo relabel                 merge branch 'relabel' into main\n  quiver merge demo v1 --into fix           merge tag or version 'v1' into branch 'fix'\n  quiver merge demo relabel --preview       what the merge would do; nothing is written\n  quiver merge demo --conflicts             show the pending merge's conflicts\n  quiver merge demo --resolve theirs        take their side for every conflict\n  quiver merge demo --continue -m 'done'    commit the resolved merge\n  quiver merge demo --abort                 drop the pending merge\n\nExit status: 0 merged, fast-forwarded or already up to date; 2 stopped on conflicts\n(nothing committed, a pending merge recorded); 1 any error. With --preview: 0 the merge\nwould go through, 2 it would stop on conflicts (nothing is recorded either way)."
)]
pub struct MergeArgs {
    /// Dataset name.
    pub dataset: String,
    /// What to merge: a branch, tag or commit id prefix.
    pub source: Option<String>,
    /// Branch to merge into.
    #[arg(long, default_value = "main")]
    pub into: String,
    /// Commit message of the merge commit.
    #[arg(short = 'm', long)]
    pub message: Option<String>,
    /// Show what merging SOURCE would do (fast-forward, merge or conflicts, with counts and
    /// the conflicting labels) without committing, recording a pending merge or moving a ref.
    #[arg(long, visible_alias = "dry-run", requires = "source",
          conflicts_with_all = ["conflicts", "resolve", "continue_", "abort", "message"])]
    pub preview: bool,
    /// Show the conflicts of the pending merge.
    #[arg(long, conflicts_with_all = ["resolve", "continue_", "abort"])]
    pub conflicts: bool,
    /// Resolve every remaining conflict by taking one side: ours or theirs.
    #[arg(long, value_parser = ["ours", "theirs"])]
    pub resolve: Option<String>,
    /// Commit the pending merge (all conflicts must be resolved).
    #[arg(long = "continue", id = "continue_")]
    pub continue_: bool,
    /// Drop the pending merge; the branch stays as it was.
    #[arg(long, conflicts_with = "continue_")]
    pub abort: bool,
}

/// What a merge command ended with, for the exit status.
pub enum Outcome {
    Done,
    /// The merge stopped on this many conflicting labels (exit status 2).
    Conflicts(u64),
    /// A preview found this many conflicting labels (exit status 2).
    WouldConflict(u64),
}

/// Run `quiver merge`.
pub async fn run(cat: &Catalog, a: MergeArgs) -> Result<Outcome, CoreError> {
    let ds = cat.dataset(&a.dataset).await?;
    let author = default_author();
    if a.abort {
        ds.abort_merge(&a.into).await?;
        println!("aborted the pending merge into {}", a.into);
        return Ok(Outcome::Done);
    }
    if a.conflicts || a.resolve.is_some() || a.continue_ {
        if let Some(side) = &a.resolve {
            let side = if side == "ours" {
                Resolution::Ours
            } else {
                Resolution::Theirs
            };
            let n = ds.resolve_conflicts(&a.into, side, None).await?;
            println!("resolved {n} conflicts");
        }
        if a.conflicts {
            let conflicts = ds.conflicts(&a.into).await?;
            let table = ds.conflicts_table(&conflicts)?;
            println!("{}", pretty_format_batches(&[table])?);
            println!("{} conflicts", conflicts.len());
        }
        if a.continue_ {
            let c = ds
                .commit_merge(&a.into, a.message.as_deref(), &author)
                .await?;
            println!("merge committed as {} on {}", c.short_id(), a.into);
        }
        return Ok(Outcome::Done);
    }
    let Some(source) = a.source else {
        return Err(CoreError::InvalidName {
            name: String::new(),
            reason: "name what to merge (a branch, tag or version), or use --conflicts/--resolve/--continue/--abort".into(),
        });
    };
    let spec = VersionSpec::Version(ds.resolve_loose(&source).await?.id.to_hex());
    if a.preview {
        return preview(&ds, &spec, &source, &a.into).await;
    }
    let r = ds
        .merge(&spec, &a.into, a.message.as_deref(), &author)
        .await?;
    match r.kind {
        MergeKind::UpToDate => println!("{} already contains {source}", a.into),
        MergeKind::FastForward => {
            println!("fast-forwarded {} to {}", a.into, &r.head.to_hex()[..12])
        }
        MergeKind::Merged => println!(
            "merged {source} into {}: commit {} ({} groups changed, {} merged label by label)",
            a.into,
            &r.head.to_hex()[..12],
            r.groups_changed,
            r.groups_label_merged
        ),
        MergeKind::Conflicts => {
            println!(
                "{} conflicting labels: nothing committed. Inspect with `quiver merge {} --conflicts --into {}`, then --resolve ours|theirs and --continue, or --abort.",
                r.conflicts, a.dataset, a.into
            );
            return Ok(Outcome::Conflicts(r.conflicts));
        }
    }
    Ok(Outcome::Done)
}

/// `quiver merge DATASET SOURCE --preview`: what the merge would do, nothing written.
async fn preview(
    ds: &quiver_core::Dataset,
    spec: &VersionSpec,
    source: &str,
    into: &str,
) -> Result<Outcome, CoreError> {
    let p = ds.merge_preview(spec, into).await?;
    let what = match p.kind {
        MergeKind::UpToDate => format!("{into} already contains {source}: nothing to merge"),
        MergeKind::FastForward => format!(
            "merging {source} into {into} would fast-forward {into} to {}",
            &p.theirs.to_hex()[..12]
        ),
        MergeKind::Merged => format!("merging {source} into {into} would make a merge commit"),
        MergeKind::Conflicts => format!(
            "merging {source} into {into} would stop on {} conflicting labels",
            p.conflicts.len()
        ),
    };
    println!("{what}");
    if p.kind != MergeKind::UpToDate {
        println!(
            "clean changes: {} groups ({} merged label by label), +{} -{} ~{} labels",
            p.groups_changed,
            p.groups_label_merged,
            p.labels_added,
            p.labels_removed,
            p.labels_modified
        );
    }
    if p.conflicts.is_empty() {
        return Ok(Outcome::Done);
    }
    let table = ds.conflicts_table(&p.conflicts)?;
    println!("{}", pretty_format_batches(&[table])?);
    println!("preview only: nothing was committed and no pending merge was recorded");
    Ok(Outcome::WouldConflict(p.conflicts.len() as u64))
}
