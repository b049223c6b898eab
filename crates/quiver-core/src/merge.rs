//! Three-way merge of versions, with conflicts surfaced at label level.
//!
//! * **Merge base**: the lowest common ancestor of the two commits. With several (criss-cross
//!   histories) the newest by timestamp wins, ties broken by the smaller commit id, so the
//!   choice is deterministic.
//! * **Group level**: from the tree diffs base→ours and base→theirs (cost follows the
//!   changes, not the dataset size), a group changed on one side only is taken from that
//!   side; changed identically on both sides it is taken once.
//! * **Label level**: a group changed differently on both sides is merged label by label
//!   (by label key): a label changed on one side only is taken from that side; a label
//!   changed on both sides in different ways (or deleted on one, modified on the other, or
//!   added on both with different content) is a **conflict**.
//! * Conflicts are never resolved silently: the merge makes no commit, and records a
//!   *pending merge* on the target branch (`datasets/<ds>/merges/<branch>.json`). The user
//!   resolves conflicts (ours / theirs for some or all labels, or by writing the wanted rows
//!   to the target branch: a conflicting label whose row on the target changed after the
//!   merge started counts as resolved by that write) and commits, or aborts.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use bytes::Bytes;
use quiver_tree::{Hash, Key, LocatedChange};
use serde::{Deserialize, Serialize};

use crate::catalog::dataset_dir;
use crate::dataset::{BranchHead, Dataset};
use crate::encoding::{self, GroupHasher};
use crate::error::{CoreError, Result};
use crate::model::{Commit, VersionSpec};

/// How a merge ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeKind {
    /// Target already contains the source: nothing to do.
    UpToDate,
    /// Target was an ancestor of the source: the branch moved forward, no new commit.
    FastForward,
    /// A merge commit with two parents was made.
    Merged,
    /// Conflicts were found: nothing was committed, a pending merge was recorded.
    Conflicts,
}

impl MergeKind {
    /// Lower-case name (`up-to-date`, `fast-forward`, `merged`, `conflicts`).
    pub fn as_str(&self) -> &'static str {
        match self {
            MergeKind::UpToDate => "up-to-date",
            MergeKind::FastForward => "fast-forward",
            MergeKind::Merged => "merged",
            MergeKind::Conflicts => "conflicts",
        }
    }
}

/// The result of a merge.
#[derive(Debug, Clone)]
pub struct MergeReport {
    pub kind: MergeKind,
    /// The new head of the target branch (unchanged when there are conflicts).
    pub head: Hash,
    /// The merge commit, when one was made.
    pub commit: Option<Commit>,
    /// Groups taken from the source side or merged label by label.
    pub groups_changed: u64,
    /// Groups merged label by label without conflict.
    pub groups_label_merged: u64,
    /// Conflicting labels.
    pub conflicts: u64,
}

/// Why a label conflicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConflictKind {
    /// Modified differently on both sides.
    BothModified,
    /// Added on both sides with different content.
    BothAdded,
    /// Deleted by ours, modified by theirs.
    DeletedByOurs,
    /// Modified by ours, deleted by theirs.
    DeletedByTheirs,
}

impl ConflictKind {
    /// snake_case name used in conflict tables.
    pub fn as_str(&self) -> &'static str {
        match self {
            ConflictKind::BothModified => "both_modified",
            ConflictKind::BothAdded => "both_added",
            ConflictKind::DeletedByOurs => "deleted_by_ours",
            ConflictKind::DeletedByTheirs => "deleted_by_theirs",
        }
    }
}

/// One conflicting label with its three versions (rows of one row each, or None).
#[derive(Debug, Clone)]
pub struct LabelConflict {
    pub group: Key,
    pub label: Key,
    pub kind: ConflictKind,
    pub base: Option<RecordBatch>,
    pub ours: Option<RecordBatch>,
    pub theirs: Option<RecordBatch>,
}

/// A recorded resolution of one label.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum Resolution {
    Ours,
    Theirs,
}

/// Side chosen by `resolve`.
pub use Resolution as Side;

/// A merge waiting for its conflicts to be resolved.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingMerge {
    pub target: String,
    pub source: String,
    pub base: String,
    pub ours: String,
    pub theirs: String,
    pub message: String,
    /// Resolutions by hex(group) + "/" + hex(label).
    pub resolutions: BTreeMap<String, Resolution>,
    /// Groups whose rows the user wrote explicitly: hex(group) → IPC-free JSON is not used;
    /// explicit rows are applied with [`Dataset::resolve_with_rows`] and recorded here as
    /// the keys of labels they settle.
    pub written: BTreeSet<String>,
}

impl PendingMerge {
    /// A merge of `theirs` into `target` (whose head is `ours`) from `base`, nothing
    /// resolved yet.
    pub(crate) fn new(
        target: &str,
        source: &VersionSpec,
        base: &Commit,
        ours: &Commit,
        theirs: &Commit,
        message: String,
    ) -> Self {
        PendingMerge {
            target: target.into(),
            source: source.to_string(),
            base: base.id.to_hex(),
            ours: ours.id.to_hex(),
            theirs: theirs.id.to_hex(),
            message,
            resolutions: BTreeMap::new(),
            written: BTreeSet::new(),
        }
    }
}

/// What a merge would do ([`Dataset::merge_preview`]): nothing is written.
#[derive(Debug, Clone)]
pub struct MergePreview {
    /// What `merge` would end with now (`Merged`: a clean merge commit).
    pub kind: MergeKind,
    /// The merge base (`None` only when both sides are one commit and share no ancestor).
    pub base: Option<Hash>,
    /// The head of the target branch.
    pub ours: Hash,
    /// The commit merged.
    pub theirs: Hash,
    /// Groups the merge would write on the target (taken from the source, or merged label
    /// by label); groups with conflicts are not counted.
    pub groups_changed: u64,
    /// Of those, groups changed on both sides and merged label by label.
    pub groups_label_merged: u64,
    /// Labels the merge would add to, remove from and modify on the target (clean changes).
    pub labels_added: u64,
    pub labels_removed: u64,
    pub labels_modified: u64,
    /// The conflicting labels (empty when the merge would go through).
    pub conflicts: Vec<LabelConflict>,
}

fn label_id(group: &[u8], label: &[u8]) -> String {
    format!("{}/{}", hex::encode(group), hex::encode(label))
}

/// Per-label view of a group's rows: label key → (row index, row hash).
pub(crate) fn label_map(batch: Option<&RecordBatch>, li: usize) -> BTreeMap<Key, (usize, Hash)> {
    let mut out = BTreeMap::new();
    if let Some(b) = batch {
        let h = GroupHasher::for_batch(b);
        for r in 0..b.num_rows() {
            if let Some(k) = encoding::key_bytes(b.column(li).as_ref(), r) {
                out.insert(k, (r, h.hash(r, 1)));
            }
        }
    }
    out
}

/// Outcome of merging one group label by label.
struct GroupMerge {
    /// The merged rows (None = group deleted) when there is no unresolved conflict.
    rows: Option<Option<RecordBatch>>,
    conflicts: Vec<LabelConflict>,
}

/// What a merge writes, and what stops it.
#[derive(Default)]
pub(crate) struct MergePlan {
    /// Groups to write on the target: theirs, or merged label by label (None = delete).
    pub(crate) writes: Vec<(Key, Option<RecordBatch>)>,
    /// Our current rows of each written group (None = absent on our side).
    pub(crate) ours_rows: BTreeMap<Key, Option<RecordBatch>>,
    /// Label conflicts left after the pending merge's resolutions.
    pub(crate) conflicts: Vec<LabelConflict>,
    /// Groups changed on both sides and merged label by label.
    pub(crate) label_merged: u64,
}

impl Dataset {
    /// Lowest common ancestor of two commits (deterministic for criss-cross histories).
    pub async fn merge_base(&self, a: &Commit, b: &Commit) -> Result<Option<Commit>> {
        let (hist_a, hist_b) = futures::try_join!(self.history_of(a), self.history_of(b))?;
        let anc_a: HashSet<Hash> = hist_a.into_iter().map(|c| c.id).collect();
        let common: Vec<Commit> = hist_b
            .into_iter()
            .filter(|c| anc_a.contains(&c.id))
            .collect();
        if common.is_empty() {
            return Ok(None);
        }
        // Drop common ancestors that are ancestors of another common ancestor. The common
        // ancestors are closed under "parent of" (both histories are), so a strict ancestor
        // of one of them is a parent of another: the parents of the set are exactly the
        // dominated commits, found without walking any history again.
        let dominated: HashSet<Hash> = common
            .iter()
            .flat_map(|c| c.parents.iter().copied())
            .collect();
        let mut best: Vec<Commit> = common
            .into_iter()
            .filter(|c| !dominated.contains(&c.id))
            .collect();
        best.sort_by(|x, y| {
            y.data
                .timestamp
                .cmp(&x.data.timestamp)
                .then(x.id.cmp(&y.id))
        });
        Ok(best.into_iter().next())
    }

    fn merge_path(&self, target: &str) -> String {
        format!("{}merges/{target}.json", dataset_dir(self.name()))
    }

    /// The pending merge on a branch, if any.
    pub async fn pending_merge(&self, target: &str) -> Result<Option<PendingMerge>> {
        match self.store().get_file_opt(&self.merge_path(target)).await? {
            Some(b) => Ok(Some(serde_json::from_slice(&b)?)),
            None => Ok(None),
        }
    }

    async fn save_pending(&self, p: &PendingMerge) -> Result<()> {
        self.store()
            .put_file(
                &self.merge_path(&p.target),
                Bytes::from(serde_json::to_vec_pretty(p)?),
            )
            .await?;
        Ok(())
    }

    /// The two sides of a merge of `source` into branch `target` and their merge base
    /// (`None`: no common history), after the checks every merge makes (same label schema).
    async fn merge_sides(
        &self,
        source: &VersionSpec,
        target: &str,
    ) -> Result<(BranchHead, Commit, Option<Commit>)> {
        let theirs = self.resolve(source).await?;
        let ours_head = self.branch_head(target).await?;
        let ours = &ours_head.commit;
        if theirs.data.schema_id != ours.data.schema_id {
            return Err(CoreError::SchemaMismatch {
                dataset: self.name().into(),
                reason: format!("{source} and branch '{target}' have different label schemas; migrate one side first"),
            });
        }
        let base = self.merge_base(ours, &theirs).await?;
        Ok((ours_head, theirs, base))
    }

    /// What `MERGE source INTO target` would do now, without doing it: no commit, no
    /// pending merge, no ref moves. Conflicts are computed as the merge computes them
    /// (label by label); a pending merge already recorded on `target` is ignored.
    pub async fn merge_preview(&self, source: &VersionSpec, target: &str) -> Result<MergePreview> {
        let (ours_head, theirs, base) = self.merge_sides(source, target).await?;
        let ours = ours_head.commit;
        let mut preview = MergePreview {
            kind: MergeKind::UpToDate,
            base: base.as_ref().map(|b| b.id),
            ours: ours.id,
            theirs: theirs.id,
            groups_changed: 0,
            groups_label_merged: 0,
            labels_added: 0,
            labels_removed: 0,
            labels_modified: 0,
            conflicts: Vec::new(),
        };
        if theirs.id == ours.id || base.as_ref().is_some_and(|b| b.id == theirs.id) {
            return Ok(preview);
        }
        let base = base.ok_or_else(|| CoreError::NoMergeBase {
            dataset: self.name().into(),
            from: source.to_string(),
            target: target.into(),
        })?;
        preview.kind = if base.id == ours.id {
            MergeKind::FastForward
        } else {
            MergeKind::Merged
        };
        let pending = PendingMerge::new(target, source, &base, &ours, &theirs, String::new());
        let plan = self
            .plan_merge(&base, &ours, &theirs, &pending, None)
            .await?;
        let li = self.schema().index_of(&self.config.label_key)?;
        for (k, new) in &plan.writes {
            let old = plan.ours_rows.get(k).and_then(Option::as_ref);
            let (a, r, m) = crate::write::label_changes(old, new.as_ref(), li);
            preview.labels_added += a;
            preview.labels_removed += r;
            preview.labels_modified += m;
        }
        preview.groups_changed = plan.writes.len() as u64;
        preview.groups_label_merged = plan.label_merged;
        if !plan.conflicts.is_empty() {
            preview.kind = MergeKind::Conflicts;
        }
        preview.conflicts = plan.conflicts;
        Ok(preview)
    }

    /// Merge `source` (a branch, tag or version) into branch `target`.
    pub async fn merge(
        &self,
        source: &VersionSpec,
        target: &str,
        message: Option<&str>,
        author: &str,
    ) -> Result<MergeReport> {
        if let Some(p) = self.pending_merge(target).await? {
            return Err(CoreError::MergePending {
                dataset: self.name().into(),
                branch: target.into(),
                from: p.source,
            });
        }
        let (ours_head, theirs, base) = self.merge_sides(source, target).await?;
        let ours = ours_head.commit.clone();
        let up_to_date = |kind| MergeReport {
            kind,
            head: ours.id,
            commit: None,
            groups_changed: 0,
            groups_label_merged: 0,
            conflicts: 0,
        };
        if theirs.id == ours.id || base.as_ref().is_some_and(|b| b.id == theirs.id) {
            return Ok(up_to_date(MergeKind::UpToDate));
        }
        if base.as_ref().is_some_and(|b| b.id == ours.id) {
            // the branch takes the source's commit as it is: its checks judge that commit
            self.check_merge_into(target, &theirs).await?;
            match self
                .move_branch(
                    target,
                    ours_head.seq,
                    theirs.id,
                    author,
                    &format!("fast-forward to {source}"),
                )
                .await?
            {
                Ok(_) => {
                    return Ok(MergeReport {
                        kind: MergeKind::FastForward,
                        head: theirs.id,
                        ..up_to_date(MergeKind::FastForward)
                    })
                }
                Err(()) => {
                    return Err(CoreError::Conflict {
                        dataset: self.name().into(),
                        branch: target.into(),
                        keys: "(branch moved during the merge; retry)".into(),
                    })
                }
            }
        }
        let base = match base {
            Some(b) => b,
            None => {
                return Err(CoreError::NoMergeBase {
                    dataset: self.name().into(),
                    from: source.to_string(),
                    target: target.into(),
                })
            }
        };
        let msg = message
            .map(str::to_string)
            .unwrap_or_else(|| format!("merge {source} into {target}"));
        let pending = PendingMerge::new(target, source, &base, &ours, &theirs, msg);
        let plan = self
            .plan_merge(&base, &ours, &theirs, &pending, None)
            .await?;
        let (groups_changed, label_merged) = (plan.writes.len() as u64, plan.label_merged);
        if !plan.conflicts.is_empty() {
            self.save_pending(&pending).await?;
            return Ok(MergeReport {
                kind: MergeKind::Conflicts,
                head: ours.id,
                commit: None,
                groups_changed,
                groups_label_merged: label_merged,
                conflicts: plan.conflicts.len() as u64,
            });
        }
        let commit = self
            .commit_plan(target, &ours, &theirs, plan, &pending.message, author)
            .await?;
        Ok(MergeReport {
            kind: MergeKind::Merged,
            head: commit.id,
            commit: Some(commit),
            groups_changed,
            groups_label_merged: label_merged,
            conflicts: 0,
        })
    }

    async fn commit_plan(
        &self,
        target: &str,
        ours: &Commit,
        theirs: &Commit,
        plan: MergePlan,
        message: &str,
        author: &str,
    ) -> Result<Commit> {
        let mut txn = self.begin(target).await?.author(author);
        if txn.base_commit().id != ours.id {
            return Err(CoreError::Conflict {
                dataset: self.name().into(),
                branch: target.into(),
                keys: "(the branch moved since the merge started; abort and merge again)".into(),
            });
        }
        // our rows of the groups written, already read by the plan
        txn.preload_base(plan.ours_rows);
        txn.replace_groups(plan.writes).await?;
        txn.add_parent(theirs.id);
        txn.as_merge();
        txn.set_operation("merge");
        txn.commit(message).await
    }

    /// Compute the groups to write and the label conflicts left after `pending`'s resolutions.
    pub(crate) async fn plan_merge(
        &self,
        base: &Commit,
        ours: &Commit,
        theirs: &Commit,
        pending: &PendingMerge,
        original_ours: Option<&Commit>,
    ) -> Result<MergePlan> {
        let (sb, so, st) = (
            self.snapshot(base.clone()),
            self.snapshot(ours.clone()),
            self.snapshot(theirs.clone()),
        );
        // the two diffs walk on their own blocking threads
        let (d_ours, d_theirs) = futures::try_join!(sb.diff_located(&so), sb.diff_located(&st))?;
        let d_ours: BTreeMap<Key, LocatedChange> = d_ours
            .into_iter()
            .map(|c| (c.change.key.clone(), c))
            .collect();
        let mut both: BTreeSet<Key> = BTreeSet::new();
        let mut take_theirs: BTreeSet<Key> = BTreeSet::new();
        for c in &d_theirs {
            match d_ours.get(&c.change.key) {
                None => {
                    take_theirs.insert(c.change.key.clone());
                }
                Some(o) if o.change.new == c.change.new => {}
                Some(_) => {
                    both.insert(c.change.key.clone());
                }
            }
        }
        // Rows read at the positions the diffs found (no tree walk), concurrently: theirs'
        // groups; the base version of every group theirs changed (for a group only theirs
        // changed, it is also our version, which the commit needs); our groups in `both`.
        let wanted = |k: &Key| take_theirs.contains(k) || both.contains(k);
        let (theirs_rows, base_rows, ours_rows) = futures::try_join!(
            st.read_at(
                d_theirs
                    .iter()
                    .filter_map(LocatedChange::new_rows)
                    .filter(|r| wanted(r.0))
            ),
            sb.read_at(
                d_theirs
                    .iter()
                    .filter_map(LocatedChange::old_rows)
                    .filter(|r| wanted(r.0))
            ),
            so.read_at(
                both.iter()
                    .filter_map(|k| d_ours.get(k).and_then(LocatedChange::new_rows))
            ),
        )?;
        let orig_rows = match original_ours {
            Some(o) if o.id != ours.id => Some(self.snapshot(o.clone()).read_groups(&both).await?),
            _ => None,
        };
        let mut plan = MergePlan::default();
        for k in &take_theirs {
            plan.writes.push((k.clone(), theirs_rows.get(k).cloned()));
            plan.ours_rows.insert(k.clone(), base_rows.get(k).cloned());
        }
        for k in &both {
            let gm = self.merge_group(
                k,
                base_rows.get(k),
                ours_rows.get(k),
                theirs_rows.get(k),
                pending,
                orig_rows.as_ref().map(|m| m.get(k)),
            )?;
            match gm.rows {
                Some(rows) if gm.conflicts.is_empty() => {
                    plan.label_merged += 1;
                    plan.writes.push((k.clone(), rows));
                    plan.ours_rows.insert(k.clone(), ours_rows.get(k).cloned());
                }
                _ => plan.conflicts.extend(gm.conflicts),
            }
        }
        Ok(plan)
    }

    fn merge_group(
        &self,
        group: &Key,
        base: Option<&RecordBatch>,
        ours: Option<&RecordBatch>,
        theirs: Option<&RecordBatch>,
        pending: &PendingMerge,
        original_ours: Option<Option<&RecordBatch>>,
    ) -> Result<GroupMerge> {
        let li = self.schema().index_of(&self.config.label_key)?;
        let (mb, mo, mt) = (
            label_map(base, li),
            label_map(ours, li),
            label_map(theirs, li),
        );
        // labels rewritten on the target after the merge started: resolved by that write
        let mw = original_ours.map(|o| label_map(o, li));
        let keys: BTreeSet<&Key> = mb.keys().chain(mo.keys()).chain(mt.keys()).collect();
        // (source batch index: 0 = ours, 1 = theirs, row)
        let mut pick: Vec<(usize, usize)> = Vec::new();
        let mut conflicts = Vec::new();
        for lk in keys {
            let (b, o, t) = (mb.get(lk), mo.get(lk), mt.get(lk));
            let (bh, oh, th) = (b.map(|x| x.1), o.map(|x| x.1), t.map(|x| x.1));
            let choose = if oh == th || th == bh {
                Some(0)
            } else if oh == bh {
                Some(1)
            } else {
                let written = mw.as_ref().is_some_and(|m| m.get(lk).map(|x| x.1) != oh);
                match pending.resolutions.get(&label_id(group, lk)) {
                    _ if written => Some(0),
                    Some(Resolution::Ours) => Some(0),
                    Some(Resolution::Theirs) => Some(1),
                    None => {
                        let kind = match (b.is_some(), o.is_some(), t.is_some()) {
                            (false, _, _) => ConflictKind::BothAdded,
                            (true, false, _) => ConflictKind::DeletedByOurs,
                            (true, _, false) => ConflictKind::DeletedByTheirs,
                            _ => ConflictKind::BothModified,
                        };
                        let row = |batch: Option<&RecordBatch>, e: Option<&(usize, Hash)>| match (
                            batch, e,
                        ) {
                            (Some(bt), Some((r, _))) => Some(bt.slice(*r, 1)),
                            _ => None,
                        };
                        conflicts.push(LabelConflict {
                            group: group.clone(),
                            label: lk.clone(),
                            kind,
                            base: row(base, b),
                            ours: row(ours, o),
                            theirs: row(theirs, t),
                        });
                        None
                    }
                }
            };
            match choose {
                Some(0) => {
                    if let Some((r, _)) = o {
                        pick.push((0, *r));
                    }
                }
                Some(_) => {
                    if let Some((r, _)) = t {
                        pick.push((1, *r));
                    }
                }
                None => {}
            }
        }
        if !conflicts.is_empty() {
            return Ok(GroupMerge {
                rows: None,
                conflicts,
            });
        }
        if pick.is_empty() {
            return Ok(GroupMerge {
                rows: Some(None),
                conflicts,
            });
        }
        let empty = RecordBatch::new_empty(self.schema());
        let srcs = [ours.unwrap_or(&empty), theirs.unwrap_or(&empty)];
        let merged = arrow::compute::interleave_record_batch(&srcs, &pick)?;
        Ok(GroupMerge {
            rows: Some(Some(merged)),
            conflicts,
        })
    }

    /// (pending merge, base, current head of the target, theirs, target head at merge start).
    async fn pending_commits(
        &self,
        target: &str,
    ) -> Result<(PendingMerge, Commit, Commit, Commit, Commit)> {
        let p = self
            .pending_merge(target)
            .await?
            .ok_or_else(|| CoreError::NoPendingMerge {
                dataset: self.name().into(),
                branch: target.into(),
            })?;
        let get = |h: &str| {
            Hash::from_hex(h).ok_or_else(|| CoreError::Corrupt {
                what: self.merge_path(target),
                reason: "bad commit id".into(),
            })
        };
        let (b, o, t) = (get(&p.base)?, get(&p.ours)?, get(&p.theirs)?);
        let (b, o, t) = (
            self.commit(&b).await?,
            self.commit(&o).await?,
            self.commit(&t).await?,
        );
        let head = self.branch_head(target).await?.commit;
        Ok((p, b, head, t, o))
    }

    /// Conflicts of the pending merge on `target` that are not resolved yet.
    pub async fn conflicts(&self, target: &str) -> Result<Vec<LabelConflict>> {
        let (p, b, o, t, orig) = self.pending_commits(target).await?;
        Ok(self
            .plan_merge(&b, &o, &t, &p, Some(&orig))
            .await?
            .conflicts)
    }

    /// Resolve pending conflicts by taking one side; `only` limits it to some
    /// (group, label) keys. Returns how many conflicts were resolved.
    pub async fn resolve_conflicts(
        &self,
        target: &str,
        side: Resolution,
        only: Option<&BTreeSet<(Key, Key)>>,
    ) -> Result<u64> {
        let (mut p, b, o, t, orig) = self.pending_commits(target).await?;
        let conflicts = self
            .plan_merge(&b, &o, &t, &p, Some(&orig))
            .await?
            .conflicts;
        let mut n = 0;
        for c in conflicts {
            if only.is_none_or(|set| set.contains(&(c.group.clone(), c.label.clone()))) {
                p.resolutions
                    .insert(label_id(&c.group, &c.label), side.clone());
                n += 1;
            }
        }
        self.save_pending(&p).await?;
        Ok(n)
    }

    /// Commit the pending merge on `target` once no conflict is left (two parents).
    pub async fn commit_merge(
        &self,
        target: &str,
        message: Option<&str>,
        author: &str,
    ) -> Result<Commit> {
        let (p, b, o, t, orig) = self.pending_commits(target).await?;
        let plan = self.plan_merge(&b, &o, &t, &p, Some(&orig)).await?;
        if !plan.conflicts.is_empty() {
            return Err(CoreError::UnresolvedConflicts {
                dataset: self.name().into(),
                branch: target.into(),
                count: plan.conflicts.len() as u64,
            });
        }
        let msg = message.map(str::to_string).unwrap_or(p.message.clone());
        let c = self.commit_plan(target, &o, &t, plan, &msg, author).await?;
        self.store().delete(&self.merge_path(target)).await?;
        Ok(c)
    }

    /// Drop the pending merge on `target`; the branch is left as it was.
    pub async fn abort_merge(&self, target: &str) -> Result<()> {
        self.pending_commits(target).await?;
        self.store().delete(&self.merge_path(target)).await?;
        Ok(())
    }

    /// Conflicts as one table: group key, label key, kind, then `base_<col>`, `ours_<col>`,
    /// `theirs_<col>` for every non-key column.
    pub fn conflicts_table(&self, conflicts: &[LabelConflict]) -> Result<RecordBatch> {
        let schema = self.schema();
        let (gi, li) = (
            schema.index_of(&self.config.group_key)?,
            schema.index_of(&self.config.label_key)?,
        );
        let mut fields = vec![
            schema.field(gi).clone().with_nullable(false),
            schema.field(li).clone().with_nullable(false),
            Field::new("kind", DataType::Utf8, false),
        ];
        let mut cols: Vec<ArrayRef> = Vec::new();
        let keyrow = |c: &LabelConflict| -> Option<RecordBatch> {
            c.ours.clone().or(c.theirs.clone()).or(c.base.clone())
        };
        let rows: Vec<RecordBatch> = conflicts.iter().filter_map(keyrow).collect();
        let empty = RecordBatch::new_empty(schema.clone());
        let all = if rows.is_empty() {
            empty.clone()
        } else {
            arrow::compute::concat_batches(&schema, &rows)?
        };
        cols.push(all.column(gi).clone());
        cols.push(all.column(li).clone());
        cols.push(std::sync::Arc::new(StringArray::from(
            conflicts
                .iter()
                .map(|c| c.kind.as_str())
                .collect::<Vec<_>>(),
        )));
        for (side, get) in [
            (
                "base",
                (|c: &LabelConflict| c.base.clone()) as fn(&LabelConflict) -> Option<RecordBatch>,
            ),
            ("ours", |c: &LabelConflict| c.ours.clone()),
            ("theirs", |c: &LabelConflict| c.theirs.clone()),
        ] {
            for (i, f) in schema.fields().iter().enumerate() {
                if i == gi || i == li {
                    continue;
                }
                let parts: Vec<ArrayRef> = conflicts
                    .iter()
                    .map(|c| match get(c) {
                        Some(b) => b.column(i).clone(),
                        None => arrow::array::new_null_array(f.data_type(), 1),
                    })
                    .collect();
                let refs: Vec<&dyn arrow::array::Array> =
                    parts.iter().map(|a| a.as_ref()).collect();
                let col = if refs.is_empty() {
                    arrow::array::new_empty_array(f.data_type())
                } else {
                    arrow::compute::concat(&refs)?
                };
                fields.push(Field::new(
                    format!("{side}_{}", f.name()),
                    f.data_type().clone(),
                    true,
                ));
                cols.push(col);
            }
        }
        Ok(RecordBatch::try_new(
            std::sync::Arc::new(Schema::new(fields)),
            cols,
        )?)
    }
}
