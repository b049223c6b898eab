//! A read-only version of a dataset: tree walks, scan planning and reads of label rows.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use quiver_tree::{Change, ChildEntry, GroupEntry, Hash, Key};

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

    /// Group entries of a leaf.
    pub async fn leaf_entries(&self, leaf: Hash) -> Result<Vec<GroupEntry>> {
        self.ds
            .nodes()
            .run(move |n| Ok(quiver_tree::leaf_entries(n, &leaf)?))
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

    /// Rows of each leaf in `leaves`.
    pub async fn read_leaves(&self, leaves: &[Hash]) -> Result<HashMap<Hash, RecordBatch>> {
        let locs = packs::locate(self.ds.store(), self.ds.name(), &self.ds.packs, leaves).await?;
        let mut by_pack: BTreeMap<Hash, Vec<(Hash, Range<u64>)>> = BTreeMap::new();
        for (h, l) in leaves.iter().zip(locs) {
            by_pack
                .entry(l.pack)
                .or_default()
                .push((*h, l.start..l.start + l.rows));
        }
        let mut out = HashMap::new();
        for (pack, items) in by_pack {
            let ranges: Vec<Range<u64>> = items.iter().map(|i| i.1.clone()).collect();
            let batches = packs::read_ranges_concat(
                self.ds.store(),
                &self.ds.catalog.inner.meta,
                &pack,
                &ranges,
                None,
            )
            .await?;
            for ((h, _), b) in items.into_iter().zip(batches) {
                out.insert(h, b);
            }
        }
        Ok(out)
    }

    /// The rows of the given groups that exist in this snapshot (sorted by label key).
    pub async fn read_groups(&self, keys: &BTreeSet<Key>) -> Result<BTreeMap<Key, RecordBatch>> {
        let mut out = BTreeMap::new();
        if keys.is_empty() {
            return Ok(out);
        }
        let wanted: Arc<BTreeSet<Key>> = Arc::new(keys.clone());
        let w = wanted.clone();
        let leaves = self
            .leaves(Box::new(move |c| {
                w.range(c.first_key.clone()..)
                    .next()
                    .is_some_and(|k| *k <= c.last_key)
            }))
            .await?;
        let leaves: Vec<ChildEntry> = leaves.into_iter().filter(|l| l.rows > 0).collect();
        let hashes: Vec<Hash> = leaves.iter().map(|l| l.hash).collect();
        // the leaf nodes (their group entries), fetched together rather than one by one below
        self.ds.nodes().fetch_many(&hashes).await?;
        let rows = self.read_leaves(&hashes).await?;
        for leaf in &leaves {
            let entries = self.leaf_entries(leaf.hash).await?;
            let batch = rows.get(&leaf.hash).ok_or_else(|| CoreError::Corrupt {
                what: format!("leaf {}", leaf.hash),
                reason: "rows missing".into(),
            })?;
            let mut off = 0usize;
            for e in entries {
                let n = e.rows as usize;
                if wanted.contains(&e.key) {
                    if off + n > batch.num_rows() {
                        return Err(CoreError::Corrupt {
                            what: format!("leaf {}", leaf.hash),
                            reason: "fewer rows than its entries say".into(),
                        });
                    }
                    out.insert(e.key.clone(), batch.slice(off, n));
                }
                off += n;
            }
        }
        Ok(out)
    }

    /// Group-level changes from this snapshot to `other` (structural tree diff).
    pub async fn diff(&self, other: &Snapshot) -> Result<Vec<Change>> {
        let (a, b) = (self.commit.root, other.commit.root);
        let nodes = self.ds.nodes();
        // the nodes the walk will read, fetched level by level and concurrently
        nodes.prefetch_diff(a, b).await?;
        nodes.run(move |n| Ok(quiver_tree::diff(n, a, b)?)).await
    }
}
