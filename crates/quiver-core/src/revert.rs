//! Revert of a commit and reset of a branch, both as new commits: history is never
//! rewritten, every existing commit id stays.
//!
//! * **Revert** of commit `C` (parent `P`, its first parent for a merge commit) on a branch
//!   whose head is `H`: a three-way merge with base `C`, ours `H` and theirs `P` — the
//!   changes `C` made are undone where no later commit touched the same labels; a label a
//!   later commit changed differently is a conflict, and a revert with conflicts commits
//!   nothing and names them ([`CoreError::RevertConflicts`]). The new commit has one
//!   parent, `H`. `C` must be in the branch's history.
//! * **Reset** of branch `b` to a version `R`: one commit on top of the head whose content
//!   is exactly `R`'s (its content hash equals `R`'s). The changed groups are found by the
//!   storage diff between the head and `R` (cost follows the changes) and written with
//!   `R`'s rows. A concurrent commit on the branch makes the reset fail rather than rebase:
//!   a rebased reset would no longer equal `R`.
//!
//! Both go through a [`crate::WriteTxn`], so every rule of a commit on the branch applies
//! (a protected branch refuses them).

use std::collections::BTreeMap;

use quiver_tree::{Key, LocatedChange};

use crate::dataset::Dataset;
use crate::encoding;
use crate::error::{CoreError, Result};
use crate::merge::PendingMerge;
use crate::model::{Commit, VersionSpec};

/// Conflicting labels named in a [`CoreError::RevertConflicts`] message at most.
const NAMED_CONFLICTS: usize = 10;

/// What a revert or a reset did.
#[derive(Debug, Clone)]
pub struct RewindReport {
    /// The head of the branch afterwards: the new commit, or the old head when there was
    /// nothing to change.
    pub head: Commit,
    /// Whether a commit was made.
    pub committed: bool,
    /// Label groups the commit rewrote.
    pub groups_changed: u64,
}

impl Dataset {
    /// Undo the changes of commit `commit` on `branch` with a new commit (see the module
    /// docs). With nothing left to undo (reverted already), the branch stays as it is.
    pub async fn revert(
        &self,
        commit: &VersionSpec,
        branch: &str,
        message: Option<&str>,
        author: &str,
    ) -> Result<RewindReport> {
        let c = self.resolve(commit).await?;
        let head = self.branch_head(branch).await?;
        let cannot = |reason: String| CoreError::CannotRevert {
            dataset: self.name().into(),
            commit: c.id.to_hex(),
            reason,
        };
        let Some(parent) = c.parents.first() else {
            return Err(cannot(format!(
                "it is the first commit of the dataset (it has no parent to go back to); \
                 RESET BRANCH {branch} ON {} TO another version instead",
                self.name()
            )));
        };
        if !self
            .history_of(&head.commit)
            .await?
            .iter()
            .any(|h| h.id == c.id)
        {
            return Err(cannot(format!(
                "it is not in the history of branch '{branch}'"
            )));
        }
        let parent = self.commit(parent).await?;
        // computed as a merge (never recorded): base the reverted commit, theirs its parent
        let parent_spec = VersionSpec::Version(parent.id.to_hex());
        let pending = PendingMerge::new(
            branch,
            &parent_spec,
            &c,
            &head.commit,
            &parent,
            String::new(),
        );
        let plan = self
            .plan_merge(&c, &head.commit, &parent, &pending, None)
            .await?;
        if !plan.conflicts.is_empty() {
            let schema = self.schema();
            let (gi, li) = (
                schema.index_of(&self.config.group_key)?,
                schema.index_of(&self.config.label_key)?,
            );
            let key =
                |col: usize, k: &[u8]| encoding::key_display(schema.field(col).data_type(), k);
            let named: Vec<String> = plan
                .conflicts
                .iter()
                .take(NAMED_CONFLICTS)
                .map(|x| format!("({}, {})", key(gi, &x.group), key(li, &x.label)))
                .collect();
            return Err(CoreError::RevertConflicts {
                dataset: self.name().into(),
                commit: c.short_id(),
                branch: branch.into(),
                count: plan.conflicts.len() as u64,
                labels: named.join(", "),
            });
        }
        let groups_changed = plan.writes.len() as u64;
        if plan.writes.is_empty() {
            return Ok(RewindReport {
                head: head.commit,
                committed: false,
                groups_changed: 0,
            });
        }
        let msg = message
            .map(str::to_string)
            .unwrap_or_else(|| format!("revert {} ({})", c.short_id(), c.data.message));
        let mut txn = self.begin(branch).await?.author(author);
        if txn.base_commit().id != head.commit.id {
            return Err(moved(self, branch));
        }
        txn.preload_base(plan.ours_rows);
        txn.replace_groups(plan.writes).await?;
        txn.set_operation("revert");
        let new = txn.commit(&msg).await?;
        Ok(RewindReport {
            head: new,
            committed: true,
            groups_changed,
        })
    }

    /// Make the content of `branch` equal to the version `to` with one new commit on top
    /// of its head (see the module docs). When the content is equal already, the branch
    /// stays as it is.
    pub async fn reset_branch(
        &self,
        branch: &str,
        to: &VersionSpec,
        message: Option<&str>,
        author: &str,
    ) -> Result<RewindReport> {
        let target = self.resolve(to).await?;
        let head = self.branch_head(branch).await?;
        if target.root == head.commit.root {
            return Ok(RewindReport {
                head: head.commit,
                committed: false,
                groups_changed: 0,
            });
        }
        let (now, then) = (
            self.snapshot(head.commit.clone()),
            self.snapshot(target.clone()),
        );
        let changes = now.diff_located(&then).await?;
        let (old_rows, new_rows) = futures::try_join!(
            now.read_at(changes.iter().filter_map(LocatedChange::old_rows)),
            then.read_at(changes.iter().filter_map(LocatedChange::new_rows)),
        )?;
        let keys: Vec<Key> = changes.into_iter().map(|c| c.change.key).collect();
        let base: BTreeMap<Key, Option<arrow::array::RecordBatch>> = keys
            .iter()
            .map(|k| (k.clone(), old_rows.get(k).cloned()))
            .collect();
        let writes: Vec<(Key, Option<arrow::array::RecordBatch>)> = keys
            .iter()
            .map(|k| (k.clone(), new_rows.get(k).cloned()))
            .collect();
        let groups_changed = writes.len() as u64;
        let msg = message
            .map(str::to_string)
            .unwrap_or_else(|| format!("reset {branch} to {to} ({})", target.short_id()));
        let mut txn = self.begin(branch).await?.author(author);
        if txn.base_commit().id != head.commit.id {
            return Err(moved(self, branch));
        }
        txn.no_rebase();
        txn.preload_base(base);
        txn.replace_groups(writes).await?;
        txn.set_operation("reset");
        let new = txn.commit(&msg).await?;
        if new.root != target.root {
            // cannot happen: the groups written are the target's, the others were equal
            return Err(CoreError::Corrupt {
                what: format!("dataset '{}'", self.name()),
                reason: format!(
                    "the reset of branch '{branch}' made content {} instead of {}",
                    new.root, target.root
                ),
            });
        }
        Ok(RewindReport {
            head: new,
            committed: true,
            groups_changed,
        })
    }
}

fn moved(ds: &Dataset, branch: &str) -> CoreError {
    CoreError::Conflict {
        dataset: ds.name().into(),
        branch: branch.into(),
        keys: "(the branch moved while the commit was prepared; run it again)".into(),
    }
}
