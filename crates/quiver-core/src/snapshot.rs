//! A read-only version of a dataset: tree walks, scan planning and reads of label rows.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::BuildHasherDefault;
use std::ops::Range;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use quiver_tree::{Change, ChildEntry, GroupAt, GroupEntry, Hash, Key, LocatedChange};

use crate::dataset::Dataset;
use crate::error::{CoreError, Result};
use crate::model::Commit;
use crate::packs::{self, DigestHasher, LeafLoc};

/// Rows of one pack that a scan reads.
#[derive(Debug, Clone)]
pub struct PackScan {
    pub pack: Hash,
    /// Path of the pack relative to the catalog root.
    pub path: String,
    /// Row ranges in the pack, ascending and non-overlapping (adjacent leaves merged).
    pub ranges: Vec<Range<u64>>,
    pub rows: u64,
}

/// Append `r` to ascending ranges, extending the last one when `r` starts where it ends.
fn push_merged(ranges: &mut Vec<Range<u64>>, r: Range<u64>) {
    match ranges.last_mut() {
        Some(last) if last.end == r.start => last.end = r.end,
        _ => ranges.push(r),
    }
}

/// Group leaf locations by pack (packs in hash order), merging adjacent row ranges.
pub fn plan_locs<'a>(locs: impl IntoIterator<Item = &'a LeafLoc>) -> Vec<PackScan> {
    // consecutive leaves mostly sit side by side in one pack: extend the last range
    let mut slot_of: HashMap<Hash, usize, BuildHasherDefault<DigestHasher>> = HashMap::default();
    let mut packs: Vec<(Hash, Vec<Range<u64>>)> = Vec::new();
    let mut last: Option<(Hash, usize)> = None;
    for l in locs {
        let slot = match last {
            Some((pack, slot)) if pack == l.pack => slot,
            _ => {
                let slot = *slot_of.entry(l.pack).or_insert_with(|| {
                    packs.push((l.pack, Vec::new()));
                    packs.len() - 1
                });
                last = Some((l.pack, slot));
                slot
            }
        };
        push_merged(&mut packs[slot].1, l.start..l.start + l.rows);
    }
    packs.sort_by_key(|p| p.0);
    packs
        .into_iter()
        .map(|(pack, mut ranges)| {
            if !ranges.is_sorted_by_key(|r| r.start) {
                ranges.sort_by_key(|r| r.start);
                let mut merged = Vec::with_capacity(ranges.len());
                for r in ranges {
                    push_merged(&mut merged, r);
                }
                ranges = merged;
            }
            let rows = ranges.iter().map(|r| r.end - r.start).sum();
            PackScan {
                pack,
                path: packs::pack_path(&pack),
                ranges,
                rows,
            }
        })
        .collect()
}

/// One version of a dataset, opened read-only.
#[derive(Clone, Debug)]
pub struct Snapshot {
    ds: Dataset,
    commit: Commit,
}

/// A predicate over subtree/leaf statistics: return false to skip the subtree.
pub type KeepFn = Box<dyn FnMut(&ChildEntry) -> bool + Send>;

/// A predicate judging all children of one node at once: push one flag per child (false
/// skips that subtree or leaf).
pub type KeepBatchFn = Box<dyn FnMut(&[ChildEntry], &mut Vec<bool>) + Send>;

impl Snapshot {
    pub(crate) fn new(ds: Dataset, commit: Commit) -> Self {
        Snapshot { ds, commit }
    }
    /// The commit of this version.
    pub fn commit(&self) -> &Commit {
        &self.commit
    }
    /// The dataset.
    pub fn dataset(&self) -> &Dataset {
        &self.ds
    }
    /// Arrow schema.
    pub fn schema(&self) -> SchemaRef {
        self.ds.schema()
    }
    /// Root of the snapshot tree.
    pub fn root(&self) -> Hash {
        self.commit.root
    }

    /// Root described with its counts and statistics.
    pub async fn summary(&self) -> Result<ChildEntry> {
        let root = self.commit.root;
        self.ds
            .nodes()
            .run(move |n| Ok(quiver_tree::summary(n, root)?))
            .await
    }

    /// Number of labels.
    pub async fn num_rows(&self) -> Result<u64> {
        Ok(self.summary().await?.rows)
    }

    /// Leaves kept by `keep` (called on every subtree and leaf; false skips it).
    pub async fn leaves(&self, mut keep: KeepFn) -> Result<Vec<ChildEntry>> {
        let root = self.commit.root;
        self.ds
            .nodes()
            .run(move |n| Ok(quiver_tree::leaves(n, root, &mut *keep)?))
            .await
    }

    /// Leaves kept by `keep`, called once per internal node with all its children (see
    /// [`KeepBatchFn`]); the same leaves, in key order, as [`Snapshot::leaves`] with the
    /// per-child predicate. Each level's kept nodes are fetched concurrently.
    pub async fn leaves_batch(&self, mut keep: KeepBatchFn) -> Result<Vec<ChildEntry>> {
        let root = self.commit.root;
        self.ds
            .nodes()
            .run(move |n| Ok(quiver_tree::leaves_batch(n, root, &mut *keep)?))
            .await
    }

    /// Group the rows of `leaves` by pack, merging adjacent ranges.
    pub async fn plan(&self, leaves: &[ChildEntry]) -> Result<Vec<PackScan>> {
        let locs = self.locate_leaves(leaves).await?;
        Ok(plan_locs(locs.iter().flatten()))
    }

    /// Where the rows of each of `leaves` are, in the same order (`None` for a leaf
    /// without rows): what [`plan_locs`] plans any subset of them from without another
    /// pack index look-up.
    pub async fn locate_leaves(&self, leaves: &[ChildEntry]) -> Result<Vec<Option<LeafLoc>>> {
        let hashes: Vec<Hash> = leaves
            .iter()
            .filter(|l| l.rows > 0)
            .map(|l| l.hash)
            .collect();
        let mut found = packs::locate(self.ds.store(), self.ds.name(), &self.ds.packs, &hashes)
            .await?
            .into_iter();
        Ok(leaves
            .iter()
            .map(|l| if l.rows > 0 { found.next() } else { None })
            .collect())
    }

    /// Read every label of the snapshot (optionally projected), in key order per pack.
    pub async fn scan(&self, projection: Option<Vec<usize>>) -> Result<Vec<RecordBatch>> {
        let leaves = self.leaves(Box::new(|_| true)).await?;
        let plan = self.plan(&leaves).await?;
        let mut out = Vec::new();
        for p in plan {
            let batches = packs::read_ranges(
                self.ds.store(),
                &self.ds.catalog.inner.meta,
                &p.pack,
                &p.ranges,
                projection.as_deref(),
            )
            .await?;
            out.extend(batches.into_iter().flatten().filter(|b| b.num_rows() > 0));
        }
        Ok(out)
    }

    /// The rows of the given groups that exist in this snapshot (sorted by label key).
    pub async fn read_groups(&self, keys: &BTreeSet<Key>) -> Result<BTreeMap<Key, RecordBatch>> {
        let found = self.locate(keys).await?;
        self.read_at(found.iter().map(|(e, at)| (&e.key, *at, e.rows)))
            .await
    }

    /// The entries and row positions of those `keys` this snapshot holds, in key order: one
    /// descent of the tree for all keys (see [`quiver_tree::locate`]).
    pub async fn locate(&self, keys: &BTreeSet<Key>) -> Result<Vec<(GroupEntry, GroupAt)>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<Key> = keys.iter().cloned().collect();
        let root = self.commit.root;
        let found = self
            .ds
            .nodes()
            .run(move |n| Ok(quiver_tree::locate(n, root, &keys)?))
            .await?;
        Ok(found.into_iter().flatten().collect())
    }

    /// Read the rows of groups at known positions (`(key, position, rows)`, e.g. from
    /// [`Snapshot::locate`] or [`Snapshot::diff_located`]): only those rows are selected in
    /// the packs, and no tree node is read. Groups with no rows are left out.
    pub async fn read_at<'a>(
        &self,
        groups: impl IntoIterator<Item = (&'a Key, GroupAt, u64)>,
    ) -> Result<BTreeMap<Key, RecordBatch>> {
        // one entry per key: overlapping ranges would shift the row selection
        let groups: BTreeMap<&Key, (GroupAt, u64)> = groups
            .into_iter()
            .filter(|g| g.2 > 0)
            .map(|(k, at, rows)| (k, (at, rows)))
            .collect();
        let mut out = BTreeMap::new();
        if groups.is_empty() {
            return Ok(out);
        }
        let leaves: Vec<Hash> = {
            let distinct: BTreeSet<Hash> = groups.values().map(|g| g.0.leaf).collect();
            distinct.into_iter().collect()
        };
        let locs = packs::locate(self.ds.store(), self.ds.name(), &self.ds.packs, &leaves).await?;
        let loc_of: HashMap<Hash, packs::LeafLoc> = leaves.into_iter().zip(locs).collect();
        let mut by_pack: BTreeMap<Hash, Vec<(&Key, Range<u64>)>> = BTreeMap::new();
        for (key, (at, rows)) in groups {
            let loc = loc_of.get(&at.leaf).ok_or_else(|| CoreError::Corrupt {
                what: format!("leaf {}", at.leaf),
                reason: "no pack location".into(),
            })?;
            if at.offset + rows > loc.rows {
                return Err(CoreError::Corrupt {
                    what: format!("leaf {}", at.leaf),
                    reason: "fewer rows than its entries say".into(),
                });
            }
            let start = loc.start + at.offset;
            by_pack
                .entry(loc.pack)
                .or_default()
                .push((key, start..start + rows));
        }
        // Scattered rows cost a page decode per column each: split every pack's ranges into
        // a few runs read (and decoded) concurrently, one task each.
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        let mut tasks = Vec::new();
        for (pack, mut items) in by_pack {
            items.sort_by_key(|i| i.1.start);
            // two runs per core: one decodes while the other waits for its reads
            let per = items.len().div_ceil(2 * workers).max(32);
            for chunk in items.chunks(per) {
                let keys: Vec<Key> = chunk.iter().map(|i| i.0.clone()).collect();
                let ranges: Vec<Range<u64>> = chunk.iter().map(|i| i.1.clone()).collect();
                let (store, meta) = (self.ds.store().clone(), self.ds.catalog.inner.meta.clone());
                tasks.push(tokio::spawn(async move {
                    let batches =
                        packs::read_ranges_concat(&store, &meta, &pack, &ranges, None).await?;
                    Ok::<_, CoreError>(keys.into_iter().zip(batches).collect::<Vec<_>>())
                }));
            }
        }
        for t in tasks {
            let read = t.await.map_err(|e| CoreError::Join(e.to_string()))??;
            out.extend(read);
        }
        Ok(out)
    }

    /// Group-level changes from this snapshot to `other` (structural tree diff).
    pub async fn diff(&self, other: &Snapshot) -> Result<Vec<Change>> {
        let (a, b) = (self.commit.root, other.commit.root);
        self.walk_two(a, b, move |n| quiver_tree::diff(n, a, b))
            .await
    }

    /// Like [`Snapshot::diff`], with the positions of each change's old rows (in this
    /// snapshot) and new rows (in `other`), for [`Snapshot::read_at`].
    pub async fn diff_located(&self, other: &Snapshot) -> Result<Vec<LocatedChange>> {
        let (a, b) = (self.commit.root, other.commit.root);
        self.walk_two(a, b, move |n| quiver_tree::diff_located(n, a, b))
            .await
    }

    /// Run a walk over the trees of `a` and `b` (a diff): first on the cached nodes only,
    /// which succeeds when the caches are warm; after a miss, fetch the nodes the walk reads
    /// level by level and concurrently ([`crate::nodes::TxnNodes::prefetch_diff`]), then
    /// walk again.
    async fn walk_two<R, F>(&self, a: Hash, b: Hash, walk: F) -> Result<R>
    where
        R: Send + 'static,
        F: Fn(&dyn quiver_tree::NodeStore) -> quiver_tree::Result<R> + Send + Sync + 'static,
    {
        let walk = std::sync::Arc::new(walk);
        let cached = self.ds.cached_nodes();
        let w = walk.clone();
        match cached.run(move |n| Ok(w(n)?)).await {
            Err(_) if cached.missed() => {}
            done => return done,
        }
        let nodes = self.ds.nodes();
        nodes.prefetch_diff(a, b).await?;
        nodes.run(move |n| Ok(walk(n)?)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// `plan_locs` = group by pack (hash order), sort and merge touching ranges, for
        /// leaves in any order (in key order they mostly follow each other in one pack).
        #[test]
        fn plan_locs_groups_sorts_and_merges(
            leaves in proptest::collection::vec((0u8..3, 0u64..40, 1u64..4), 0..60)
        ) {
            // distinct leaves: one row range per (pack, start) slot of 4 rows
            let mut seen = BTreeSet::new();
            let locs: Vec<LeafLoc> = leaves
                .into_iter()
                .filter(|(p, s, _)| seen.insert((*p, *s)))
                .map(|(p, s, rows)| LeafLoc { pack: Hash([p; 32]), start: s * 4, rows })
                .collect();
            let mut want: BTreeMap<Hash, Vec<Range<u64>>> = BTreeMap::new();
            for l in &locs {
                want.entry(l.pack).or_default().push(l.start..l.start + l.rows);
            }
            let want: Vec<(Hash, Vec<Range<u64>>, u64)> = want
                .into_iter()
                .map(|(p, mut rs)| {
                    rs.sort_by_key(|r| r.start);
                    let mut m: Vec<Range<u64>> = Vec::new();
                    for r in rs {
                        match m.last_mut() {
                            Some(x) if x.end == r.start => x.end = r.end,
                            _ => m.push(r),
                        }
                    }
                    let rows = m.iter().map(|r| r.end - r.start).sum();
                    (p, m, rows)
                })
                .collect();
            let got: Vec<(Hash, Vec<Range<u64>>, u64)> = plan_locs(&locs)
                .into_iter()
                .map(|s| {
                    assert_eq!(s.path, packs::pack_path(&s.pack));
                    (s.pack, s.ranges, s.rows)
                })
                .collect();
            prop_assert_eq!(got, want);
        }
    }
}
