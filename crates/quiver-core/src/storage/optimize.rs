//! OPTIMIZE: fold a branch head's deltas into new base chunks and one merged delta.
//!
//! A chunk *owns* the keys from its first key up to the next chunk's first key. A chunk
//! is rewritten when the deltas touched at least a quarter of its groups (with `FULL`:
//! any of them); consecutive rewritten chunks are rebuilt together (their live rows and
//! the deltas' groups they own, merged in key order) at content-defined boundaries. The
//! groups the deltas touched in chunks that are kept (scattered edits, a few per chunk)
//! go into one merged delta: its before-images are the base's rows, its after-images the
//! latest rows, copied into one pack. Rewriting a 256-label chunk for one edited label
//! would cost a hundred times what changed (the reason Lance and Delta keep deletion
//! vectors too). Untouched chunks are kept as they are. The head commit is re-pointed at
//! the new layout: same content, same commit id, at most one delta.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::ops::Range;
use std::sync::{Arc, LazyLock, Mutex};

use arrow::array::RecordBatch;
use arrow::compute::concat_batches;
use bytes::Bytes;
use quiver_tree::{Hash, Key};

use super::build::{self, BaseBuilder};
use super::format::{Base, Chunk, Delta, Layout, BASE_KIND, DELTA_KIND, LAYOUT_KIND};

/// A chunk is rewritten when at least 1/DENSE of its groups were touched.
const DENSE: u64 = 4;
use super::view::subtract;
use crate::dataset::Dataset;
use crate::error::{CoreError, Result};
use crate::packs;

/// What OPTIMIZE did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OptimizeReport {
    /// The commit whose layout was rewritten (the branch head).
    pub commit: String,
    /// Deltas folded into the base.
    pub deltas_folded: u64,
    /// Base chunks rewritten (the others are shared with the old layout).
    pub chunks_rewritten: u64,
    /// Base chunks of the new layout.
    pub chunks: u64,
    /// Rows written into new packs (rebuilt chunks and the merged delta).
    pub rows_written: u64,
    /// Label groups kept in the merged delta (touched groups of chunks not rewritten).
    pub delta_groups: u64,
    /// Bytes written (packs, base, layout).
    pub bytes_written: u64,
}

impl Dataset {
    /// Fold the deltas of `branch`'s head into its base (see the module docs). The
    /// branch's commit id and content hash do not change.
    pub async fn optimize(&self, branch: &str) -> Result<OptimizeReport> {
        self.optimize_with(branch, false).await
    }

    /// OPTIMIZE; with `full`, every chunk a delta touched is rewritten and no delta is
    /// left.
    pub async fn optimize_with(&self, branch: &str, full: bool) -> Result<OptimizeReport> {
        let lease = self.catalog.write_lease("optimize").await?;
        let res = self.optimize_leased(branch, full).await;
        lease.release().await;
        res
    }

    /// The automatic fold of a branch head with many deltas (a commit's background
    /// OPTIMIZE): a head that extends a layout an earlier fold replaced (commits that
    /// landed while that fold ran) is rebased onto its result first, which costs a few
    /// small writes; the head is folded only when it still has
    /// [`crate::write::AUTO_OPTIMIZE_DELTAS`] deltas or more after that.
    pub(crate) async fn auto_optimize(&self, branch: &str) -> Result<()> {
        let lease = self.catalog.write_lease("optimize").await?;
        let res = async {
            for f in recent_folds(&self.fold_scope()) {
                if self.rebase_head(branch, &f).await > 0 {
                    break;
                }
            }
            let head = self.branch_head(branch).await?;
            let deltas = self.snapshot(head.commit).layered().await?.deltas.len();
            if deltas >= crate::write::AUTO_OPTIMIZE_DELTAS {
                self.optimize_leased(branch, false).await?;
            }
            Ok(())
        }
        .await;
        lease.release().await;
        res
    }

    /// This dataset in its store: where its folds are remembered (layouts are objects of
    /// the store), and what a background OPTIMIZE claims (with a branch).
    pub(crate) fn fold_scope(&self) -> String {
        format!("{}#{}", self.store().url(), self.name())
    }

    async fn optimize_leased(&self, branch: &str, full: bool) -> Result<OptimizeReport> {
        let head = self.branch_head(branch).await?;
        self.fold_head(branch, &head.commit, full).await
    }

    /// Fold `commit` (the head of `branch` when the fold began), re-point it at the folded
    /// layout, then rebase the commits that landed on the branch meanwhile.
    async fn fold_head(
        &self,
        branch: &str,
        commit: &crate::model::Commit,
        full: bool,
    ) -> Result<OptimizeReport> {
        let snap = self.snapshot(commit.clone());
        let view = snap.view().await?;
        let mut report = OptimizeReport {
            commit: commit.id.to_hex(),
            chunks: view.base.chunks.len() as u64,
            ..Default::default()
        };
        if view.deltas.is_empty() {
            return Ok(report);
        }
        let chunks = &view.base.chunks;
        let owner = |k: &[u8]| -> usize {
            chunks
                .partition_point(|c| c.first_key.as_slice() <= k)
                .saturating_sub(1)
        };
        // one pass over the delta entries: holes per pack, and every touched key's base
        // state (the before-image of its first entry)
        let holes = super::view::holes(&view.deltas);
        // (base state, where a copy of its rows is in a change pack, if anywhere)
        type First = (Option<super::GroupRef>, Option<super::GroupRef>);
        let mut first_old: BTreeMap<&Key, First> = BTreeMap::new();
        for d in &view.deltas {
            for e in &d.entries {
                first_old
                    .entry(&e.key)
                    .or_insert_with(|| (e.old, e.before.and(e.old_readable(d.pack))));
            }
        }
        // touched groups per owning chunk; a chunk is rewritten when they are dense
        let mut touched_in: BTreeMap<usize, u64> = BTreeMap::new();
        for (k, _) in view.touched() {
            if !chunks.is_empty() {
                *touched_in.entry(owner(k)).or_default() += 1;
            }
        }
        let mut affected: BTreeSet<usize> = touched_in
            .iter()
            .filter(|&(&i, &n)| full || n * DENSE >= chunks[i].groups.max(1))
            .map(|(&i, _)| i)
            .collect();
        join_close_runs(chunks, &mut affected);
        if !chunks.is_empty() && affected.is_empty() && view.deltas.len() == 1 {
            // one delta and no dense chunk: as folded as this policy makes it
            return Ok(report);
        }
        // touched groups of rewritten chunks are rebuilt from their latest rows; those of
        // kept chunks go into the merged delta (base state -> latest state)
        let mut new_groups: Vec<(Key, super::GroupRef)> = Vec::new();
        let mut merged: Vec<super::DeltaEntry> = Vec::new();
        let mut copies: BTreeMap<Key, super::GroupRef> = BTreeMap::new();
        // the fold record: every touched group of a rewritten chunk whose hash changed,
        // base state -> latest state
        let mut refolded: Vec<super::DeltaEntry> = Vec::new();
        for (k, e) in view.touched() {
            if chunks.is_empty() || affected.contains(&owner(k)) {
                if let Some(n) = e.new {
                    new_groups.push((k.clone(), n));
                }
                let old = first_old.get(k).and_then(|f| f.0);
                if old.map(|g| g.hash) != e.new.map(|g| g.hash) {
                    refolded.push(super::DeltaEntry {
                        key: k.clone(),
                        old,
                        new: e.new,
                        before: None,
                    });
                }
                continue;
            }
            let (old, copy) = first_old.get(k).copied().unwrap_or((None, None));
            if let Some(c) = copy {
                copies.insert(k.clone(), c);
            }
            if old.map(|g| g.hash) == e.new.map(|g| g.hash) {
                continue; // back to its base state: the base rows are live again
            }
            merged.push(super::DeltaEntry {
                key: k.clone(),
                old,
                new: e.new,
                before: None,
            });
        }
        // runs of consecutive affected chunks of one pack (everything when the base is
        // empty): a run's live base rows are read at once, so a run never spans packs
        let mut runs: Vec<Range<usize>> = Vec::new();
        for i in affected {
            match runs.last_mut() {
                Some(r) if r.end == i && chunks[r.start].pack == chunks[i].pack => r.end = i + 1,
                _ => runs.push(i..i + 1),
            }
        }
        let ds_schema = self.schema();
        let gi =
            ds_schema
                .index_of(&self.config.group_key)
                .map_err(|_| CoreError::ColumnNotFound {
                    dataset: self.name().into(),
                    column: self.config.group_key.clone(),
                })?;
        let stats_cols: Vec<usize> = self
            .config
            .stats_columns
            .iter()
            .filter_map(|c| ds_schema.index_of(c).ok())
            .collect();
        let mut builder = BaseBuilder::new(
            self.store().clone(),
            ds_schema.clone(),
            stats_cols.clone(),
            self.config.chunk_groups,
        );
        let store = self.store();
        let meta = &self.catalog.inner.meta;
        let mut kept: Vec<Chunk> = Vec::new();
        let mut next = 0usize;
        // where the fold record's groups land among the rows pushed to the builder
        let wanted: HashSet<&Key> = refolded
            .iter()
            .filter(|e| e.new.is_some())
            .map(|e| &e.key)
            .collect();
        let mut landed: HashMap<Key, u64> = HashMap::new();
        let mut pushed = 0u64;
        let work: Vec<Option<Range<usize>>> = if chunks.is_empty() {
            vec![None]
        } else {
            runs.into_iter().map(Some).collect()
        };
        for run in work {
            // the key range this run owns, and its live base rows
            let (lo, hi): (Option<&Key>, Option<&Key>) = match &run {
                None => (None, None),
                Some(r) => {
                    kept.extend(chunks[next..r.start].iter().cloned());
                    next = r.end;
                    report.chunks_rewritten += (r.end - r.start) as u64;
                    (
                        (r.start > 0).then(|| &chunks[r.start].first_key),
                        chunks.get(r.end).map(|c| &c.first_key),
                    )
                }
            };
            // the run's live base rows, in key order: one read per stretch of chunks that
            // sit in the same pack; with the recorded hashes of erased groups among them
            let mut base_rows: Vec<RecordBatch> = Vec::new();
            // key -> (the hash its rows have when they are the erased ones, its recorded hash);
            // no row hash for a delta's group: its recorded hash always holds
            let mut recorded: BTreeMap<Key, (Option<Hash>, Hash)> = BTreeMap::new();
            if let Some(r) = &run {
                let mut k = r.start;
                while k < r.end {
                    let pack = chunks[k].pack;
                    let mut live = Vec::new();
                    let erased = meta.erased_groups(store, &pack).await?;
                    while k < r.end && chunks[k].pack == pack {
                        let c = &chunks[k];
                        for a in erased.aliases() {
                            if (c.start..c.start + c.rows).contains(&a.first_row) {
                                recorded.insert(a.key.clone(), (Some(a.erased), a.hash));
                            }
                        }
                        live.extend(subtract(
                            c.start..c.start + c.rows,
                            holes.get(&(super::view::Instance::Base, c.pack)),
                        ));
                        k += 1;
                    }
                    if !live.is_empty() {
                        let read = packs::read_ranges(store, meta, &pack, &live, None).await?;
                        base_rows.extend(read.into_iter().flatten());
                    }
                }
            }
            // new_groups is in key order (view.touched() is)
            let from = lo.map_or(0, |l| new_groups.partition_point(|(k, _)| k < l));
            let to = hi.map_or(new_groups.len(), |h| {
                new_groups.partition_point(|(k, _)| k < h)
            });
            let owned: Vec<&(Key, super::GroupRef)> =
                new_groups[from..to.max(from)].iter().collect();
            // the deltas record the hash of every group they wrote
            for (k, g) in &owned {
                recorded.insert(k.clone(), (None, g.hash));
            }
            let delta_rows: Vec<(Key, RecordBatch)> = snap
                .read_at(owned.iter().map(|(k, g)| (k, g.at, g.rows)))
                .await?
                .into_iter()
                .collect();
            // merge by key: long stretches of base rows with the deltas' groups between them
            let mut segs: Vec<RecordBatch> = Vec::new();
            let mut di = 0;
            for b in base_rows {
                let runs = build::group_runs(&b, gi).ok_or_else(|| null_key(self))?;
                let mut start = 0;
                for (k, off, _) in runs {
                    while di < delta_rows.len() && delta_rows[di].0 < k {
                        if off > start {
                            segs.push(b.slice(start, off - start));
                            start = off;
                        }
                        segs.push(delta_rows[di].1.clone());
                        di += 1;
                    }
                }
                if b.num_rows() > start {
                    segs.push(b.slice(start, b.num_rows() - start));
                }
            }
            segs.extend(delta_rows[di..].iter().map(|(_, b)| b.clone()));
            // push in batches of about 64k rows; the last group of a batch waits for the
            // next (a group read in two parts is joined)
            let mut carry: Option<RecordBatch> = None;
            let mut pending: Vec<RecordBatch> = Vec::new();
            let mut pending_rows = 0usize;
            let last = segs.len();
            for (i, seg) in segs.into_iter().enumerate() {
                pending_rows += seg.num_rows();
                pending.push(seg);
                if pending_rows < 64 * 1024 && i + 1 < last {
                    continue;
                }
                let mut parts: Vec<&RecordBatch> = Vec::with_capacity(pending.len() + 1);
                if let Some(c) = &carry {
                    parts.push(c);
                }
                parts.extend(pending.iter());
                let batch = concat_batches(&ds_schema, parts)?;
                pending.clear();
                pending_rows = 0;
                let runs = build::group_runs(&batch, gi).ok_or_else(|| null_key(self))?;
                let keep = if i + 1 < last {
                    runs.last().map_or(batch.num_rows(), |r| r.1)
                } else {
                    batch.num_rows()
                };
                let done: Vec<(Key, usize, usize)> =
                    runs.into_iter().take_while(|r| r.1 < keep).collect();
                let head = batch.slice(0, keep);
                let row_hashes = build::hash_runs(&head, &done);
                // a group's recorded hash: the delta's, or the erased base group's
                let hashes: Vec<Hash> = done
                    .iter()
                    .zip(&row_hashes)
                    .map(|((k, _, _), rh)| match recorded.get(k) {
                        Some((None, h)) => *h,
                        Some((Some(erased), h)) if erased == rh => *h,
                        _ => *rh,
                    })
                    .collect();
                for (k, off, _) in &done {
                    if wanted.contains(k) {
                        landed.insert(k.clone(), pushed + *off as u64);
                    }
                }
                pushed += head.num_rows() as u64;
                report.rows_written += head.num_rows() as u64;
                builder
                    .push_with(&head, &done, &hashes, Some(&row_hashes))
                    .await?;
                carry =
                    Some(batch.slice(keep, batch.num_rows() - keep)).filter(|c| c.num_rows() > 0);
            }
            builder.cut();
        }
        kept.extend(chunks[next.min(chunks.len())..].iter().cloned());
        let (rebuilt, _, _, _, bytes) = builder.finish().await?;
        report.bytes_written += bytes;
        // no link back to an empty base: its record would have to name every group
        let refolded = if chunks.is_empty() {
            None
        } else {
            place_refolded(refolded, &landed, &rebuilt.chunks, pushed)
        };
        let mut all = kept;
        all.extend(rebuilt.chunks);
        all.sort_by(|a, b| a.first_key.cmp(&b.first_key));
        let base = Base { chunks: all };
        // the merged delta: the latest rows of its groups, in key order, in one pack
        let delta = self
            .merged_delta(&snap, merged, &copies, &stats_cols)
            .await?;
        let (delta_rows, replaced) = delta.as_ref().map_or((0, 0), |(d, _)| {
            let old: u64 = d.entries.iter().filter_map(|e| e.old).map(|g| g.rows).sum();
            (d.rows, old)
        });
        report.delta_groups = delta.as_ref().map_or(0, |(d, _)| d.entries.len() as u64);
        report.rows_written += delta_rows;
        let rows = (base.rows() + delta_rows).checked_sub(replaced);
        if rows != Some(view.layout.rows) {
            return Err(CoreError::Corrupt {
                what: format!("dataset '{}' at {}", self.name(), commit.id),
                reason: format!(
                    "optimize folded {rows:?} rows but the version holds {}",
                    view.layout.rows
                ),
            });
        }
        report.chunks = base.chunks.len() as u64;
        let bh = if report.chunks_rewritten == 0 && !chunks.is_empty() {
            view.layout.base
        } else {
            let encoded = base.encode();
            report.bytes_written += encoded.len() as u64;
            store.put_object(BASE_KIND, Bytes::from(encoded)).await?
        };
        let mut deltas = Vec::new();
        if let Some((d, bytes)) = delta {
            let encoded = d.encode();
            report.bytes_written += bytes + encoded.len() as u64;
            deltas.push(store.put_object(DELTA_KIND, Bytes::from(encoded)).await?);
        }
        // a new base links back to the one it was folded from (a diff or merge with a
        // version on that base reads the fold record, not the chunks); an unchanged base
        // keeps its links
        let folds = if bh == view.layout.base {
            view.layout.folds.clone()
        } else if let Some(entries) = refolded {
            let record = Delta {
                entries,
                ..Default::default()
            }
            .encode();
            report.bytes_written += record.len() as u64;
            let changes = store.put_object(DELTA_KIND, Bytes::from(record)).await?;
            let mut links = vec![super::format::FoldLink {
                base: view.layout.base,
                changes,
            }];
            links.extend(view.layout.folds.iter().copied());
            links.truncate(super::format::MAX_FOLD_LINKS);
            links
        } else {
            Vec::new()
        };
        let layout = Layout {
            base: bh,
            deltas,
            rows: view.layout.rows,
            groups: view.layout.groups,
            content: view.layout.content.clone(),
            folds,
        };
        let encoded = layout.encode();
        report.bytes_written += encoded.len() as u64;
        let lh = store.put_object(LAYOUT_KIND, Bytes::from(encoded)).await?;
        report.bytes_written += self.set_layout(&commit.id, &lh).await?;
        report.deltas_folded = view.deltas.len() as u64;
        let fold = Arc::new(Fold {
            commit: commit.clone(),
            old_base: view.layout.base,
            old_deltas: view.layout.deltas.clone(),
            new_layout: lh,
        });
        remember_fold(self.fold_scope(), fold.clone());
        // commits that landed while the fold ran sit on the layout it replaced: without
        // a rebase the head keeps every delta, and the next commit folds them all again
        self.rebase_head(branch, &fold).await;
        Ok(report)
    }

    /// Rebase the head of `branch` onto `fold` while it extends the layout the fold
    /// replaced (a commit landing meanwhile is rebased in the next round). A failure
    /// leaves the head on its own layout, which is as correct, only longer.
    async fn rebase_head(&self, branch: &str, fold: &Fold) -> u32 {
        let mut rebased = 0;
        for _ in 0..MAX_REBASES {
            let Ok(head) = self.branch_head(branch).await else {
                break;
            };
            if head.commit.id == fold.commit.id {
                break;
            }
            match self.rebase_commit(&head.commit, fold).await {
                Ok(true) => rebased += 1,
                Ok(false) => break,
                Err(e) => {
                    eprintln!(
                        "quiver: warning: dataset '{}': commit {} kept its layout after an \
                         OPTIMIZE of {} ({e})",
                        self.name(),
                        head.commit.id,
                        fold.commit.id
                    );
                    break;
                }
            }
        }
        rebased
    }

    /// Re-point `commit`, whose layout is the layout `fold` replaced plus later deltas, at
    /// the folded layout plus those deltas (same content, same commit). A later delta's
    /// entries name where the rows they replaced were; those that replaced rows of the
    /// folded version are moved to where the fold put them. `false`: the commit's layout
    /// does not extend the replaced one.
    async fn rebase_commit(&self, commit: &crate::model::Commit, fold: &Fold) -> Result<bool> {
        let layered = self.load_layered(commit).await?;
        let layout = &layered.layout;
        let m = fold.old_deltas.len();
        if layout.base != fold.old_base
            || layout.deltas.len() < m
            || layout.deltas[..m] != fold.old_deltas[..]
        {
            return Ok(false);
        }
        let extra = &layered.deltas[m..];
        // the entries whose old rows are the folded version's: a group's first entry in
        // the later deltas (a later entry replaces the rows of an earlier one)
        let mut seen: HashSet<&Key> = HashSet::new();
        let mut moved: Vec<(usize, usize)> = Vec::new();
        let mut keys: BTreeSet<Key> = BTreeSet::new();
        for (di, d) in extra.iter().enumerate() {
            for (ei, e) in d.entries.iter().enumerate() {
                if seen.insert(&e.key) && e.old.is_some() {
                    moved.push((di, ei));
                    keys.insert(e.key.clone());
                }
            }
        }
        let folded = self.snapshot(fold.commit.clone());
        let view = folded.view().await?;
        if view.id != fold.new_layout {
            return Ok(false); // folded again since: rebase onto that fold instead
        }
        let found = folded.find(&keys).await?;
        let mut deltas: Vec<Delta> = extra.iter().map(|d| (**d).clone()).collect();
        let mut changed = vec![false; deltas.len()];
        for (di, ei) in moved {
            let e = &mut deltas[di].entries[ei];
            let Some(old) = e.old.as_mut() else { continue };
            let (at, rows, hash) =
                found
                    .get(&e.key)
                    .copied()
                    .ok_or_else(|| CoreError::Corrupt {
                        what: format!("dataset '{}' at {}", self.name(), commit.id),
                        reason: format!(
                            "a delta replaced group {} of {}, which its folded layout lacks",
                            hex::encode(&e.key),
                            fold.commit.id
                        ),
                    })?;
            if rows != old.rows || hash.is_some_and(|h| h != old.hash) {
                return Err(CoreError::Corrupt {
                    what: format!("dataset '{}' at {}", self.name(), commit.id),
                    reason: format!(
                        "group {} differs between {} and its folded layout",
                        hex::encode(&e.key),
                        fold.commit.id
                    ),
                });
            }
            if old.at != at {
                old.at = at;
                changed[di] = true;
            }
        }
        // the same rows over the new base: base + every delta's new rows - replaced rows
        let mut rows = view.base.rows();
        let all = view.deltas.iter().map(|d| d.as_ref()).chain(deltas.iter());
        for d in all {
            rows += d.rows;
            for e in &d.entries {
                rows = rows.saturating_sub(e.old.map_or(0, |o| o.rows));
            }
        }
        if rows != layout.rows {
            return Err(CoreError::Corrupt {
                what: format!("dataset '{}' at {}", self.name(), commit.id),
                reason: format!(
                    "rebased onto the fold of {} it would hold {rows} rows, not {}",
                    fold.commit.id, layout.rows
                ),
            });
        }
        let store = self.store();
        let mut hashes = view.layout.deltas.clone();
        for ((d, was), changed) in deltas.iter().zip(&layout.deltas[m..]).zip(changed) {
            hashes.push(if changed {
                store
                    .put_object(DELTA_KIND, Bytes::from(d.encode()))
                    .await?
            } else {
                *was
            });
        }
        let rebased = Layout {
            base: view.layout.base,
            deltas: hashes,
            rows: layout.rows,
            groups: layout.groups,
            content: layout.content.clone(),
            folds: view.layout.folds.clone(),
        };
        let lh = store
            .put_object(LAYOUT_KIND, Bytes::from(rebased.encode()))
            .await?;
        self.set_layout(&commit.id, &lh).await?;
        Ok(true)
    }

    /// One delta holding `entries` (key order) with their latest rows copied into one new
    /// pack, followed by the before-images the folded deltas kept copies of (`copies`:
    /// where they are); `None` when there are no entries. Returns it with the pack bytes
    /// written.
    async fn merged_delta(
        &self,
        snap: &crate::snapshot::Snapshot,
        mut entries: Vec<super::DeltaEntry>,
        copies: &BTreeMap<Key, super::GroupRef>,
        stats_cols: &[usize],
    ) -> Result<Option<(Delta, u64)>> {
        if entries.is_empty() {
            return Ok(None);
        }
        let rows = snap
            .read_at(
                entries
                    .iter()
                    .filter_map(|e| e.new.map(|n| (&e.key, n.at, n.rows))),
            )
            .await?;
        let schema = self.schema();
        let mut batches = Vec::new();
        let mut offset = 0u64;
        for e in &mut entries {
            let Some(n) = &mut e.new else { continue };
            let b = rows
                .get(&e.key)
                .filter(|b| b.num_rows() as u64 == n.rows)
                .ok_or_else(|| CoreError::Corrupt {
                    what: format!("dataset '{}'", self.name()),
                    reason: format!("a delta's {} rows of a group are missing", n.rows),
                })?;
            batches.push(b.clone());
            n.at.offset = offset;
            offset += n.rows;
        }
        let new_rows = offset;
        // the before-images, still small-pack reads, after the new rows
        let befores = snap
            .read_at(
                entries
                    .iter()
                    .filter_map(|e| copies.get(&e.key).map(|c| (&e.key, c.at, c.rows))),
            )
            .await?;
        let mut copy_rows = Vec::new();
        for e in &mut entries {
            let (Some(o), Some(b)) = (&e.old, befores.get(&e.key)) else {
                continue;
            };
            if b.num_rows() as u64 != o.rows {
                continue;
            }
            e.before = Some(offset);
            offset += o.rows;
            copy_rows.push(b.clone());
        }
        let (pack, bytes, stats) = if batches.is_empty() && copy_rows.is_empty() {
            (None, 0, Vec::new())
        } else {
            let one = concat_batches(&schema, batches.iter().chain(copy_rows.iter()))?;
            // statistics describe the new rows only (the copies are never scanned)
            let stats = stats_cols
                .iter()
                .map(|&i| {
                    crate::encoding::column_stats(one.column(i).as_ref(), 0, new_rows as usize)
                })
                .collect();
            let (pack, bytes) = build::write_change_pack(
                self.store(),
                &schema,
                vec![one],
                &self.catalog.inner.meta,
            )
            .await?;
            for e in &mut entries {
                if let Some(n) = &mut e.new {
                    n.at.leaf = pack;
                }
            }
            (Some(pack), bytes, stats)
        };
        Ok(Some((
            Delta {
                pack,
                rows: new_rows,
                stats,
                entries,
            },
            bytes,
        )))
    }
}

/// A fold that landed: the layout it replaced and the one it wrote.
#[derive(Debug)]
struct Fold {
    /// The commit it re-pointed.
    commit: crate::model::Commit,
    old_base: Hash,
    old_deltas: Vec<Hash>,
    new_layout: Hash,
}

/// The fold record's entries with each `new` at its row in the rebuilt chunks: `landed`
/// holds the index of its first row among the `pushed` rows given to the base builder,
/// whose `chunks` took them in order. `None` (no record: the fold still lands, without a
/// link) when anything does not add up.
fn place_refolded(
    entries: Vec<super::DeltaEntry>,
    landed: &HashMap<Key, u64>,
    chunks: &[Chunk],
    pushed: u64,
) -> Option<Vec<super::DeltaEntry>> {
    if chunks.iter().map(|c| c.rows).sum::<u64>() != pushed {
        return None;
    }
    let mut starts = Vec::with_capacity(chunks.len());
    let mut at = 0u64;
    for c in chunks {
        starts.push(at);
        at += c.rows;
    }
    let mut out = Vec::with_capacity(entries.len());
    for mut e in entries {
        if let Some(new) = e.new.as_mut() {
            let row = *landed.get(&e.key)?;
            let i = starts.partition_point(|&s| s <= row).checked_sub(1)?;
            let c = &chunks[i];
            if row + new.rows > starts[i] + c.rows || e.key < c.first_key || e.key > c.last_key {
                return None;
            }
            new.at = quiver_tree::GroupAt {
                leaf: c.pack,
                offset: c.start + (row - starts[i]),
            };
        }
        out.push(e);
    }
    Some(out)
}

/// Rebases of one branch head after a fold, at most (each one follows a commit that landed
/// while the previous rebase ran).
const MAX_REBASES: usize = 8;

/// Folds remembered per dataset (store URL and name), newest first.
const FOLDS_KEPT: usize = 4;

static FOLDS: LazyLock<Mutex<HashMap<String, VecDeque<Arc<Fold>>>>> =
    LazyLock::new(Default::default);

fn remember_fold(scope: String, fold: Arc<Fold>) {
    if let Ok(mut m) = FOLDS.lock() {
        let list = m.entry(scope).or_default();
        list.push_front(fold);
        list.truncate(FOLDS_KEPT);
    }
}

fn recent_folds(scope: &str) -> Vec<Arc<Fold>> {
    FOLDS
        .lock()
        .ok()
        .and_then(|m| m.get(scope).map(|l| l.iter().cloned().collect()))
        .unwrap_or_default()
}

/// Kept chunks between two rewritten ones of the same pack, at most this many, are
/// rewritten too (see [`join_close_runs`]).
const JOIN_GAP: usize = 8;

/// Join rewritten chunks separated by at most [`JOIN_GAP`] kept chunks of the same pack
/// into one run. Each run reads its live base rows with one ranged read of its pack, which
/// decodes every page (and dictionary) those rows touch: scattered edits (`FULL`, or many
/// dense chunks) made thousands of runs of one or two chunks, each decoding the same pages
/// again (36 s for `OPTIMIZE FULL` after 100 scattered 500-group commits at 10M labels).
/// Copying a few untouched chunks' rows costs less; the content is the same either way.
fn join_close_runs(chunks: &[Chunk], affected: &mut BTreeSet<usize>) {
    let picked: Vec<usize> = affected.iter().copied().collect();
    for w in picked.windows(2) {
        let (a, b) = (w[0], w[1]);
        let gap = b - a - 1;
        if gap == 0 || gap > JOIN_GAP {
            continue;
        }
        if chunks[a..=b].iter().all(|c| c.pack == chunks[a].pack) {
            affected.extend(a + 1..b);
        }
    }
}

fn null_key(ds: &Dataset) -> CoreError {
    CoreError::NullKey {
        dataset: ds.name().into(),
        column: ds.config.group_key.clone(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::Arc;

    use arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray};
    use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

    use crate::{Catalog, DatasetOptions, Snapshot};

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("sample_id", DataType::Utf8, false),
            Field::new("label_id", DataType::Int64, false),
            Field::new("class", DataType::Utf8, true),
            Field::new("score", DataType::Float64, true),
        ]))
    }

    fn batch(rows: &[(String, i64, &str, f64)]) -> RecordBatch {
        RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(StringArray::from(
                    rows.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(),
                )),
                Arc::new(Int64Array::from(
                    rows.iter().map(|r| r.1).collect::<Vec<_>>(),
                )),
                Arc::new(StringArray::from(
                    rows.iter().map(|r| r.2).collect::<Vec<_>>(),
                )),
                Arc::new(Float64Array::from(
                    rows.iter().map(|r| r.3).collect::<Vec<_>>(),
                )),
            ],
        )
        .unwrap()
    }

    fn s(i: u32) -> String {
        format!("s{i:03}")
    }

    /// Every row of a version, sorted, as text.
    async fn rows(snap: &Snapshot) -> Vec<String> {
        let mut out = Vec::new();
        for b in snap.scan(None).await.unwrap() {
            for i in 0..b.num_rows() {
                out.push(
                    (0..b.num_columns())
                        .map(|c| arrow::util::display::array_value_to_string(b.column(c), i))
                        .collect::<Result<Vec<_>, _>>()
                        .unwrap()
                        .join("|"),
                );
            }
        }
        out.sort();
        out
    }

    /// Commits that land while a fold runs sit on the layout it replaced. The fold
    /// rebases the branch head onto its result: same commit, same rows, the folded base
    /// and one delta per later commit, whatever the later commits replaced (groups of a
    /// rewritten chunk, groups the fold moved into its merged delta, untouched groups of
    /// kept chunks, deletions, new groups). A head left on the old layout after that is
    /// rebased, not folded again, by the automatic OPTIMIZE.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn commits_landing_during_a_fold_are_rebased_onto_it() {
        let dir = tempfile::tempdir().unwrap();
        let cat = Catalog::open(dir.path().to_str().unwrap()).await.unwrap();
        let opts = DatasetOptions {
            chunk_groups: 8,
            ..DatasetOptions::default()
        };
        let ds = cat.create_dataset("labels", schema(), opts).await.unwrap();
        let load: Vec<_> = (0..40)
            .flat_map(|i| [(s(i), 0, "a", i as f64), (s(i), 1, "a", -(i as f64))])
            .collect();
        ds.append("main", &[batch(&load)], "load").await.unwrap();
        // the folded commit's deltas: two groups of the first chunk (dense: rewritten),
        // a scattered edit and a deleted label (kept chunks: the merged delta)
        let up = |rows: Vec<(String, i64, &'static str, f64)>| batch(&rows);
        for b in [
            up(vec![(s(1), 0, "b", 1.5)]),
            up(vec![
                (s(0), 1, "b", 0.5),
                (s(2), 1, "b", 2.5),
                (s(6), 1, "b", 6.5),
            ]),
            up(vec![(s(25), 0, "b", 25.5)]),
        ] {
            ds.upsert("main", &[b], "edit").await.unwrap();
        }
        ds.delete(
            "main",
            &up(vec![(s(33), 1, "x", 0.0)]).project(&[0, 1]).unwrap(),
            "del",
        )
        .await
        .unwrap();
        let folded = ds.head("main").await.unwrap();
        let folded_rows = rows(&folded).await;
        // the commits that land while it is folded
        for b in [
            up(vec![(s(1), 1, "c", 1.25)]), // touched by the fold's deltas, rewritten chunk
            up(vec![(s(3), 0, "c", 3.25)]), // untouched, rewritten chunk
            up(vec![(s(25), 1, "c", 25.25)]), // in the merged delta
            up(vec![(s(30), 0, "c", 30.25)]), // untouched, kept chunk
            up(vec![(s(41), 0, "new", 41.0)]), // a new group
            up(vec![(s(1), 0, "d", 1.75)]), // again: replaces a later delta's rows
        ] {
            ds.upsert("main", &[b], "edit").await.unwrap();
        }
        ds.delete(
            "main",
            &up(vec![(s(20), 0, "x", 0.0), (s(20), 1, "x", 0.0)])
                .project(&[0, 1])
                .unwrap(),
            "del",
        )
        .await
        .unwrap();
        let head = ds.head("main").await.unwrap();
        let head_rows = rows(&head).await;
        let old_layout = head.layout_id().await.unwrap();
        let old_deltas = head.view().await.unwrap().deltas.len();
        assert_eq!(old_deltas, 4 + 7);

        let report = ds.fold_head("main", folded.commit(), false).await.unwrap();
        assert!(report.chunks_rewritten > 0, "{report:?}");
        assert!(report.delta_groups > 0, "{report:?}");
        let f = ds.head("main").await.unwrap();
        assert_eq!(f.commit().id, head.commit().id);
        let fv = f.view().await.unwrap();
        let cv = ds.snapshot(folded.commit().clone()).view().await.unwrap();
        assert_eq!(
            fv.layout.base, cv.layout.base,
            "the head is on the folded base"
        );
        assert_eq!(fv.deltas.len(), cv.deltas.len() + 7);
        assert_eq!(rows(&f).await, head_rows);
        assert_eq!(
            rows(&ds.snapshot(folded.commit().clone())).await,
            folded_rows
        );
        // a head left on the replaced layout (a commit that landed after the rebase) is
        // rebased by the automatic OPTIMIZE without a second fold
        ds.set_layout(&head.commit().id, &old_layout).await.unwrap();
        let stale = ds.head("main").await.unwrap();
        assert_eq!(
            stale.view().await.unwrap().layout.base,
            head.view().await.unwrap().layout.base
        );
        ds.auto_optimize("main").await.unwrap();
        let again = ds.head("main").await.unwrap();
        let av = again.view().await.unwrap();
        assert_eq!(av.layout.base, cv.layout.base);
        assert_eq!(av.deltas.len(), cv.deltas.len() + 7);
        assert_eq!(rows(&again).await, head_rows);
        // a commit on the rebased head
        ds.upsert(
            "main",
            &[up(vec![(s(3), 1, "e", 3.5), (s(25), 0, "e", 25.75)])],
            "edit",
        )
        .await
        .unwrap();
        let mut want = head_rows.clone();
        want.retain(|r| !r.starts_with("s003|1|") && !r.starts_with("s025|0|"));
        want.push("s003|1|e|3.5".into());
        want.push("s025|0|e|25.75".into());
        want.sort();
        let next = ds.head("main").await.unwrap();
        assert_eq!(rows(&next).await, want);
        let nv = next.view().await.unwrap();
        assert_eq!(nv.layout.base, cv.layout.base);
        assert_eq!(nv.deltas.len(), cv.deltas.len() + 8);
    }
}
