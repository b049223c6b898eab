//! `quiver revert` and `quiver reset`: going back with new commits (history is kept).

use clap::Args;
use quiver_core::{default_author, Catalog, CoreError, VersionSpec};

/// Arguments of `quiver revert`.
#[derive(Args)]
#[command(
    after_help = "Examples:\n  quiver revert demo 9f2c41d0              undo commit 9f2c41d0 on main\n  quiver revert demo v2 --branch relabel    undo the commit tag v2 names, on branch relabel\n\nThe new commit undoes the changes of COMMIT; labels a later commit changed too are\nconflicts: the revert names them and commits nothing.\nExit status: 0 reverted (or nothing left to undo); 2 stopped on conflicts; 1 any error."
)]
pub struct RevertArgs {
    /// Dataset name.
    pub dataset: String,
    /// The commit to undo: a commit id or unique prefix, ~n, a tag or a branch (its head).
    pub commit: String,
    /// Branch to make the new commit on.
    #[arg(long, default_value = "main")]
    pub branch: String,
    /// Commit message (default: "revert <id> (<its message>)").
    #[arg(short = 'm', long)]
    pub message: Option<String>,
}

/// Arguments of `quiver reset`.
#[derive(Args)]
#[command(
    after_help = "Examples:\n  quiver reset demo main --to v1            main's content becomes v1's, as a new commit\n  quiver reset demo relabel --to 9f2c41d0\n\nNo commit is removed: the new commit's content hash equals the version's, and every\nearlier commit keeps its id."
)]
pub struct ResetArgs {
    /// Dataset name.
    pub dataset: String,
    /// The branch to reset.
    pub branch: String,
    /// The version whose content the branch takes: a branch, tag, commit id prefix or ~n.
    #[arg(long)]
    pub to: String,
    /// Commit message (default: "reset <branch> to <version>").
    #[arg(short = 'm', long)]
    pub message: Option<String>,
}

/// The commit a name denotes, with `~n` counting on `branch`.
async fn resolve_on(
    ds: &quiver_core::Dataset,
    name: &str,
    branch: &str,
) -> Result<VersionSpec, CoreError> {
    let c = match VersionSpec::parse_loose(name) {
        VersionSpec::Index { index, .. } => {
            ds.resolve(&VersionSpec::Index {
                branch: branch.into(),
                index,
            })
            .await?
        }
        _ => ds.resolve_loose(name).await?,
    };
    Ok(VersionSpec::Version(c.id.to_hex()))
}

/// Run `quiver revert`.
pub async fn revert(cat: &Catalog, a: RevertArgs) -> Result<(), CoreError> {
    let ds = cat.dataset(&a.dataset).await?;
    let spec = resolve_on(&ds, &a.commit, &a.branch).await?;
    let r = ds
        .revert(&spec, &a.branch, a.message.as_deref(), &default_author())
        .await?;
    if r.committed {
        println!(
            "reverted {} on {}: commit {} ({} groups changed)",
            a.commit,
            a.branch,
            r.head.short_id(),
            r.groups_changed
        );
    } else {
        println!(
            "nothing to revert: {} already undoes {}",
            a.branch, a.commit
        );
    }
    Ok(())
}

/// Run `quiver reset`.
pub async fn reset(cat: &Catalog, a: ResetArgs) -> Result<(), CoreError> {
    let ds = cat.dataset(&a.dataset).await?;
    let spec = resolve_on(&ds, &a.to, &a.branch).await?;
    let r = ds
        .reset_branch(&a.branch, &spec, a.message.as_deref(), &default_author())
        .await?;
    if r.committed {
        println!(
            "reset {} to {}: commit {} ({} groups changed), content hash {}",
            a.branch,
            a.to,
            r.head.short_id(),
            r.groups_changed,
            &r.head.root.to_hex()[..12]
        );
    } else {
        println!("{} already has the content of {}", a.branch, a.to);
    }
    Ok(())
}
