//! A read-only version of a dataset: tree walks, scan planning and reads of label rows.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use quiver_tree::{Change, ChildEntry, GroupAt, GroupEntry, Hash, Key, LocatedChange};

use crate::dataset::Dataset;
use crate::error::{CoreError, Result};
use crate::model::Commit;
use crate::packs;

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
        let hashes: Vec<Hash> = leaves
            .iter()
            .filter(|l| l.rows > 0)
            .map(|l| l.hash)
            .collect();
        let locs = packs::locate(self.ds.store(), self.ds.name(), &self.ds.packs, &hashes).await?;
        let mut by_pack: BTreeMap<Hash, Vec<Range<u64>>> = BTreeMap::new();
        for l in locs {
            by_pack
                .entry(l.pack)
                .or_default()
                .push(l.start..l.start + l.rows);
        }
        Ok(by_pack
            .into_iter()
            .map(|(pack, mut ranges)| {
                ranges.sort_by_key(|r| r.start);
                let mut merged: Vec<Range<u64>> = Vec::with_capacity(ranges.len());
                for r in ranges {
                    match merged.last_mut() {
                        Some(last) if last.end == r.start => last.end = r.end,
                        _ => merged.push(r),
                    }
                }
                let rows = merged.iter().map(|r| r.end - r.start).sum();
                PackScan {
                    pack,
                    path: packs::pack_path(&pack),
                    ranges: merged,
                    rows,
                }
            })
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
