//! A read-only version of a dataset: scan planning, reads of label groups, diffs.
//!
//! A version's rows are described by its layout (base chunks + deltas, see
//! [`crate::storage`]); the snapshot loads it on first use and shares it through a
//! process-wide cache keyed by layout hash.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::BuildHasherDefault;
use std::ops::Range;
use std::sync::{Arc, LazyLock, Mutex};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use quiver_tree::{Change, ChildEntry, GroupAt, GroupEntry, Hash, Key, LocatedChange};

use crate::dataset::Dataset;
use crate::encoding;
use crate::error::{CoreError, Result};
use crate::model::Commit;
use crate::packs::{self, DigestHasher, LeafLoc};
use crate::storage::cache::Lru;
use crate::storage::format::{Chunk, Delta, GroupRef};
use crate::storage::view::{Found, Layered, View};

/// Rows of one pack that a scan reads.
#[derive(Debug, Clone)]
pub struct PackScan {
    pub pack: Hash,
    /// Path of the pack relative to the catalog root.
    pub path: String,
    /// Row ranges in the pack, ascending and non-overlapping (adjacent partitions merged).
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

/// Group partition locations by pack (packs in hash order), merging adjacent row ranges.
pub fn plan_locs<'a>(locs: impl IntoIterator<Item = &'a LeafLoc>) -> Vec<PackScan> {
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
#[derive(Clone)]
pub struct Snapshot {
    ds: Dataset,
    commit: Commit,
    view: Arc<tokio::sync::OnceCell<Arc<View>>>,
    layered: Arc<tokio::sync::OnceCell<Arc<Layered>>>,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Snapshot({}@{})", self.ds.name(), self.commit.short_id())
    }
}

/// A predicate over partition statistics: return false to skip the partition.
pub type KeepFn = Box<dyn FnMut(&ChildEntry) -> bool + Send>;

/// A predicate judging many partitions at once: push one flag per partition (false skips
/// it).
pub type KeepBatchFn = Box<dyn FnMut(&[ChildEntry], &mut Vec<bool>) + Send>;

/// Group runs of base chunks: `(key, first row in the pack, rows)`, by (pack, chunk start).
type Runs = Arc<Vec<(Key, u64, u64)>>;
static RUNS: LazyLock<Mutex<Lru<(Hash, u64), Runs>>> =
    LazyLock::new(|| Mutex::new(Lru::new(4 << 20)));

impl Snapshot {
    pub(crate) fn new(ds: Dataset, commit: Commit) -> Self {
        Snapshot {
            ds,
            commit,
            view: Arc::default(),
            layered: Arc::default(),
        }
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
    /// Content hash of this version (history-independent).
    pub fn root(&self) -> Hash {
        self.commit.root
    }

    /// The layout of this version, loaded and folded (cached).
    pub async fn view(&self) -> Result<Arc<View>> {
        self.view
            .get_or_try_init(|| self.ds.load_view(&self.commit))
            .await
            .cloned()
    }

    /// The layout of this version with its deltas, without its base (cached).
    pub(crate) async fn layered(&self) -> Result<Arc<Layered>> {
        if let Some(v) = self.view.get() {
            return Ok(Arc::new(v.layered()));
        }
        self.layered
            .get_or_try_init(|| self.ds.load_layered(&self.commit))
            .await
            .cloned()
    }

    /// Identity of this version's physical layout: what scan plans may be cached under
    /// (OPTIMIZE gives a version a new layout with the same content).
    pub async fn layout_id(&self) -> Result<Hash> {
        Ok(self.view().await?.id)
    }

    /// The version described with its counts and statistics.
    pub async fn summary(&self) -> Result<ChildEntry> {
        let v = self.view().await?;
        let chunks = &v.base.chunks;
        let mut first = chunks.first().map(|c| c.first_key.clone());
        let mut last = chunks.last().map(|c| c.last_key.clone());
        for (k, e) in v.touched() {
            if e.new.is_some() {
                if first.as_ref().is_none_or(|f| k < f) {
                    first = Some(k.clone());
                }
                if last.as_ref().is_none_or(|l| k > l) {
                    last = Some(k.clone());
                }
            }
        }
        Ok(ChildEntry {
            hash: self.commit.root,
            first_key: first.unwrap_or_default(),
            last_key: last.unwrap_or_default(),
            rows: v.layout.rows,
            groups: v.layout.groups,
            stats: v.stats().into(),
        })
    }

    /// Number of labels.
    pub async fn num_rows(&self) -> Result<u64> {
        Ok(self.view().await?.layout.rows)
    }

    /// The scan partitions, those of packs holding erased rows without statistics (their
    /// recorded bounds describe the rows before the erasure: [`crate::erase::known`]).
    async fn partitions(&self) -> Result<Vec<ChildEntry>> {
        let v = self.view().await?;
        let erased = self.ds.catalog.erased_packs().await?;
        Ok(v.parts()
            .iter()
            .map(|(e, loc)| {
                let mut e = e.clone();
                if erased.packs.contains(&loc.pack) {
                    e.stats = Default::default();
                }
                e
            })
            .collect())
    }

    /// Partitions kept by `keep` (called on each; false skips it).
    pub async fn leaves(&self, mut keep: KeepFn) -> Result<Vec<ChildEntry>> {
        Ok(self
            .partitions()
            .await?
            .into_iter()
            .filter(|e| keep(e))
            .collect())
    }

    /// Partitions kept by `keep`, judged all at once (see [`KeepBatchFn`]).
    pub async fn leaves_batch(&self, mut keep: KeepBatchFn) -> Result<Vec<ChildEntry>> {
        let entries = self.partitions().await?;
        let mut flags = Vec::with_capacity(entries.len());
        keep(&entries, &mut flags);
        Ok(entries
            .into_iter()
            .zip(flags.into_iter().chain(std::iter::repeat(true)))
            .filter(|(_, k)| *k)
            .map(|(e, _)| e)
            .collect())
    }

    /// Group the rows of `leaves` by pack, merging adjacent ranges.
    pub async fn plan(&self, leaves: &[ChildEntry]) -> Result<Vec<PackScan>> {
        let locs = self.locate_leaves(leaves).await?;
        Ok(plan_locs(locs.iter().flatten()))
    }

    /// Where the rows of each of `leaves` (partitions of this version) are, in the same
    /// order (`None` for a partition without rows).
    pub async fn locate_leaves(&self, leaves: &[ChildEntry]) -> Result<Vec<Option<LeafLoc>>> {
        let v = self.view().await?;
        leaves
            .iter()
            .map(|l| {
                if l.rows == 0 {
                    return Ok(None);
                }
                v.loc(&l.hash).map(Some).ok_or_else(|| CoreError::Corrupt {
                    what: format!("dataset '{}'", self.ds.name()),
                    reason: format!("partition {} is not in this version's layout", l.hash),
                })
            })
            .collect()
    }

    /// Read every label of the snapshot (optionally projected).
    pub async fn scan(&self, projection: Option<Vec<usize>>) -> Result<Vec<RecordBatch>> {
        let v = self.view().await?;
        let plan = plan_locs(v.parts().iter().map(|(_, l)| l));
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

    /// The group runs of a base chunk (read from its key column once, then cached).
    async fn chunk_runs(&self, c: &Chunk) -> Result<Runs> {
        let key = (c.pack, c.start);
        if let Some(r) = RUNS.lock().ok().and_then(|mut m| m.get(&key)) {
            return Ok(r);
        }
        let gi = self.group_key_index()?;
        let batches = packs::read_ranges(
            self.ds.store(),
            &self.ds.catalog.inner.meta,
            &c.pack,
            std::slice::from_ref(&(c.start..c.start + c.rows)),
            Some(&[gi]),
        )
        .await?;
        let mut runs: Vec<(Key, u64, u64)> = Vec::with_capacity(c.groups as usize);
        let mut row = c.start;
        for b in batches.into_iter().flatten() {
            let col = b.column(0);
            for i in 0..b.num_rows() {
                let k = encoding::key_bytes(col.as_ref(), i).ok_or_else(|| CoreError::Corrupt {
                    what: format!("pack {}", c.pack),
                    reason: "null group key".into(),
                })?;
                match runs.last_mut() {
                    Some(last) if last.0 == k => last.2 += 1,
                    _ => runs.push((k, row, 1)),
                }
                row += 1;
            }
        }
        if row != c.start + c.rows {
            return Err(CoreError::Corrupt {
                what: format!("pack {}", c.pack),
                reason: "fewer rows than its chunk says".into(),
            });
        }
        let runs = Arc::new(runs);
        let weight = runs.iter().map(|r| r.0.len() + 24).sum::<usize>() / 64 + 1;
        if let Ok(mut m) = RUNS.lock() {
            m.insert(key, runs.clone(), weight);
        }
        Ok(runs)
    }

    /// Where the groups `keys` are in this version: position and rows, with the group
    /// hash when the layout knows it (groups a delta wrote) or the pack's footer does
    /// (erased groups); absent keys are left out. No key: nothing is read (not even the
    /// version's view).
    pub(crate) async fn find(
        &self,
        keys: &BTreeSet<Key>,
    ) -> Result<BTreeMap<Key, (GroupAt, u64, Option<Hash>)>> {
        if keys.is_empty() {
            return Ok(BTreeMap::new());
        }
        let v = self.view().await?;
        let mut out = BTreeMap::new();
        let mut by_chunk: BTreeMap<usize, Vec<&Key>> = BTreeMap::new();
        for k in keys {
            match v.find(k) {
                Found::Delta(Some(g)) => {
                    out.insert(k.clone(), (g.at, g.rows, Some(g.hash)));
                }
                Found::Delta(None) | Found::Absent => {}
                Found::Chunk(i) => by_chunk.entry(i).or_default().push(k),
            }
        }
        // chunks concurrently: each is one key-column read when not cached
        let mut tasks = Vec::with_capacity(by_chunk.len());
        for (i, ks) in by_chunk {
            let c = v.base.chunks[i].clone();
            let ks: Vec<Key> = ks.into_iter().cloned().collect();
            let me = self.clone();
            tasks.push(tokio::spawn(async move {
                let runs = me.chunk_runs(&c).await?;
                // erased groups keep their recorded hash in the pack's footer
                // ([`crate::erase::footer`]): their rows no longer hash to it
                let erased = me
                    .ds
                    .catalog
                    .inner
                    .meta
                    .erased_groups(me.ds.store(), &c.pack)
                    .await?;
                let mut found = Vec::new();
                for k in ks {
                    if let Ok(j) = runs.binary_search_by(|r| r.0.as_slice().cmp(&k)) {
                        let (_, start, rows) = &runs[j];
                        let hash = erased.hash_at(*start, *rows);
                        found.push((k, crate::storage::view::at(c.pack, *start), *rows, hash));
                    }
                }
                Ok::<_, CoreError>(found)
            }));
        }
        for t in tasks {
            for (k, at, rows, hash) in t.await.map_err(|e| CoreError::Join(e.to_string()))?? {
                out.insert(k, (at, rows, hash));
            }
        }
        Ok(out)
    }

    /// The rows of the given groups that exist in this snapshot (sorted by label key).
    pub async fn read_groups(&self, keys: &BTreeSet<Key>) -> Result<BTreeMap<Key, RecordBatch>> {
        let found = self.find(keys).await?;
        self.read_at(found.iter().map(|(k, (at, rows, _))| (k, *at, *rows)))
            .await
    }

    /// The entries and row positions of those `keys` this snapshot holds, in key order
    /// (group hashes computed from the rows where the layout does not record them).
    pub async fn locate(&self, keys: &BTreeSet<Key>) -> Result<Vec<(GroupEntry, GroupAt)>> {
        let refs = self.group_refs(keys).await?;
        Ok(refs
            .into_iter()
            .map(|(k, g)| {
                (
                    GroupEntry {
                        key: k,
                        hash: g.hash,
                        rows: g.rows,
                        stats: Vec::new(),
                    },
                    g.at,
                )
            })
            .collect())
    }

    /// Position, rows and group hash of each of `keys` present in this version.
    pub(crate) async fn group_refs(&self, keys: &BTreeSet<Key>) -> Result<BTreeMap<Key, GroupRef>> {
        let found = self.find(keys).await?;
        let need: Vec<(&Key, GroupAt, u64)> = found
            .iter()
            .filter(|(_, f)| f.2.is_none())
            .map(|(k, f)| (k, f.0, f.1))
            .collect();
        let rows = self.read_at(need).await?;
        let mut out = BTreeMap::new();
        for (k, (at, n, h)) in found {
            let hash = match h {
                Some(h) => h,
                None => match rows.get(&k) {
                    Some(b) => group_hash(b),
                    None => continue,
                },
            };
            out.insert(k, GroupRef { hash, at, rows: n });
        }
        Ok(out)
    }

    /// Read the rows of groups at known positions (`(key, position, rows)`, e.g. from
    /// [`Snapshot::locate`] or [`Snapshot::diff_located`]); groups with no rows are left out.
    pub async fn read_at<'a>(
        &self,
        groups: impl IntoIterator<Item = (&'a Key, GroupAt, u64)>,
    ) -> Result<BTreeMap<Key, RecordBatch>> {
        let by_pack = ranges_by_pack(groups);
        let mut out = BTreeMap::new();
        // Scattered rows cost a page decode per column each: split every pack's ranges into
        // a few runs read (and decoded) concurrently, one task each.
        let workers = crate::packs::cores();
        // a small pack is decoded whole once and kept: its ranges are slices of the kept
        // rows, so one task reads them all (each task checks the object again); the
        // footers that tell are loaded together, as the tasks would
        let (store, meta) = (self.ds.store(), &self.ds.catalog.inner.meta);
        let smalls = futures::future::try_join_all(
            by_pack
                .keys()
                .map(|pack| packs::is_small(store, meta, pack)),
        )
        .await?;
        let mut tasks = Vec::new();
        for ((pack, mut items), small) in by_pack.into_iter().zip(smalls) {
            items.sort_by_key(|i| i.1.start);
            let per = if small {
                items.len()
            } else {
                items.len().div_ceil(2 * workers).max(32)
            };
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

    /// The index of the group-key column in the dataset's schema.
    fn group_key_index(&self) -> Result<usize> {
        self.ds
            .schema()
            .index_of(&self.ds.config.group_key)
            .map_err(|_| CoreError::ColumnNotFound {
                dataset: self.ds.name().into(),
                column: self.ds.config.group_key.clone(),
            })
    }

    /// Like [`Snapshot::read_at`], but every group's rows in one batch: `(batch, key ->
    /// (first row, rows))`. No batch per group: a diff of thousands of changed groups reads
    /// them this way.
    pub async fn read_at_flat<'a>(
        &self,
        groups: impl IntoIterator<Item = (&'a Key, GroupAt, u64)>,
    ) -> Result<(RecordBatch, BTreeMap<Key, (usize, usize)>)> {
        let by_pack = ranges_by_pack(groups);
        let schema = self.ds.schema();
        let workers = crate::packs::cores();
        let mut tasks = Vec::new();
        for (pack, mut items) in by_pack {
            items.sort_by_key(|i| i.1.start);
            let per = items.len().div_ceil(2 * workers).max(256);
            for part in items.chunks(per) {
                let keys: Vec<(Key, usize)> = part
                    .iter()
                    .map(|i| (i.0.clone(), (i.1.end - i.1.start) as usize))
                    .collect();
                let ranges: Vec<Range<u64>> = part.iter().map(|i| i.1.clone()).collect();
                let (store, meta) = (self.ds.store().clone(), self.ds.catalog.inner.meta.clone());
                let schema = schema.clone();
                tasks.push(tokio::spawn(async move {
                    let b = packs::read_ranges_flat(&store, &meta, &pack, &ranges, &schema).await?;
                    Ok::<_, CoreError>((keys, b))
                }));
            }
        }
        let mut at = BTreeMap::new();
        let mut batches = Vec::with_capacity(tasks.len());
        let mut row = 0usize;
        for t in tasks {
            let (keys, b) = t.await.map_err(|e| CoreError::Join(e.to_string()))??;
            for (k, n) in keys {
                at.insert(k, (row, n));
                row += n;
            }
            batches.push(b);
        }
        let batch = arrow::compute::concat_batches(&schema, &batches)?;
        Ok((batch, at))
    }

    /// Group-level changes from this snapshot to `other`.
    pub async fn diff(&self, other: &Snapshot) -> Result<Vec<Change>> {
        Ok(self
            .diff_located(other)
            .await?
            .into_iter()
            .map(|c| c.change)
            .collect())
    }

    /// Group-level changes from this snapshot to `other`, with the positions of each
    /// change's old rows (here) and new rows (in `other`), for [`Snapshot::read_at`].
    ///
    /// Versions on the same base differ only by their deltas: the changes are read from
    /// the delta records after their common prefix (before- and after-images are both
    /// recorded), without reading any rows. So do versions whose bases descend from one
    /// base by OPTIMIZE's fold links: each fold record stands for the delta from the base
    /// it folded to the base it made. Versions on unrelated bases compare chunk hashes,
    /// then the groups of differing chunks and of every delta.
    pub async fn diff_located(&self, other: &Snapshot) -> Result<Vec<LocatedChange>> {
        if self.commit.root == other.commit.root {
            return Ok(Vec::new());
        }
        let (la, lb) = futures::try_join!(self.layered(), other.layered())?;
        let own = |l: &Layered| {
            l.deltas
                .iter()
                .map(|d| (d.clone(), OWN))
                .collect::<Vec<_>>()
        };
        if la.layout.base == lb.layout.base {
            return self
                .located(other, same_base_states(&own(&la), &own(&lb)))
                .await;
        }
        if let Some((a, b)) = self.ds.over_common_base(&la, &lb).await? {
            return self.located(other, same_base_states(&a, &b)).await;
        }
        self.diff_unrelated(other).await
    }

    /// [`Snapshot::diff_located`] of versions whose bases share no ancestor by fold links:
    /// the chunks one base lacks are read and hashed group by group (§6.8 of FORMAT.md).
    async fn diff_unrelated(&self, other: &Snapshot) -> Result<Vec<LocatedChange>> {
        let (a, b) = futures::try_join!(self.view(), other.view())?;
        // the groups of the chunks one base has and the other lacks, hashed in bulk
        let ident = |c: &Chunk| (c.hash, c.first_key.clone(), c.last_key.clone());
        let in_a: BTreeSet<_> = a.base.chunks.iter().map(ident).collect();
        let in_b: BTreeSet<_> = b.base.chunks.iter().map(ident).collect();
        let only = |v: &View, other: &BTreeSet<_>| -> BTreeSet<usize> {
            (0..v.base.chunks.len())
                .filter(|&i| !other.contains(&ident(&v.base.chunks[i])))
                .collect()
        };
        let (only_a, only_b) = (only(&a, &in_b), only(&b, &in_a));
        let (ca, cb) = futures::try_join!(
            self.chunk_states(&a, &only_a),
            other.chunk_states(&b, &only_b)
        )?;
        let mut keys: BTreeSet<Key> = a.touched().map(|(k, _)| k.clone()).collect();
        keys.extend(b.touched().map(|(k, _)| k.clone()));
        keys.extend(ca.keys().cloned());
        keys.extend(cb.keys().cloned());
        // a side's state: its deltas' latest, else its own chunk's group (or none
        // there), else unknown: a chunk both bases share, looked up below
        let mut all: BTreeMap<Key, (Option<GroupRef>, Option<GroupRef>)> = BTreeMap::new();
        let (mut need_a, mut need_b) = (BTreeSet::new(), BTreeSet::new());
        for k in keys {
            let x = known_state(&a, &only_a, &ca, &k);
            let y = known_state(&b, &only_b, &cb, &k);
            if x.is_none() {
                need_a.insert(k.clone());
            }
            if y.is_none() {
                need_b.insert(k.clone());
            }
            all.insert(k, (x.flatten(), y.flatten()));
        }
        let (sa, sb) = futures::try_join!(self.group_refs(&need_a), other.group_refs(&need_b))?;
        for (k, g) in sa {
            if let Some(e) = all.get_mut(&k) {
                e.0 = Some(g);
            }
        }
        for (k, g) in sb {
            if let Some(e) = all.get_mut(&k) {
                e.1 = Some(g);
            }
        }
        // rows of equal group hash are equal rows: read a state from a change pack's
        // copy when one holds it (e.g. the base rows kept by an OPTIMIZE's merged
        // delta) rather than from a large base pack
        let mut copies: HashMap<Hash, GroupAt> = HashMap::new();
        for d in a.deltas.iter().chain(&b.deltas) {
            for e in &d.entries {
                if let (Some(o), Some(_)) = (e.old_readable(d.pack), e.before) {
                    copies.insert(o.hash, o.at);
                }
            }
        }
        let cheap = |g: Option<GroupRef>| {
            g.map(|g| match copies.get(&g.hash) {
                Some(at) => GroupRef { at: *at, ..g },
                None => g,
            })
        };
        Ok(to_changes(
            all.into_iter().map(|(k, (x, y))| (k, cheap(x), cheap(y))),
        ))
    }

    /// Changes from states found in delta records: the states that differ, each at a
    /// position a live version holds. A state whose position only a fold record gave, in
    /// a base neither version is on (its packs may be gone), is looked up in the version
    /// it belongs to (this one for old states, `other` for new ones).
    async fn located(
        &self,
        other: &Snapshot,
        states: Vec<(Key, State, State)>,
    ) -> Result<Vec<LocatedChange>> {
        let states: Vec<(Key, State, State)> = states
            .into_iter()
            .filter(|(_, x, y)| x.map(|s| s.0.hash) != y.map(|s| s.0.hash))
            .collect();
        let (mut lost_old, mut lost_new) = (BTreeSet::new(), BTreeSet::new());
        for (k, x, y) in &states {
            if x.is_some_and(|s| !s.1) {
                lost_old.insert(k.clone());
            }
            if y.is_some_and(|s| !s.1) {
                lost_new.insert(k.clone());
            }
        }
        let (found_old, found_new) =
            futures::try_join!(self.find(&lost_old), other.find(&lost_new))?;
        let mut out = Vec::with_capacity(states.len());
        for (k, x, y) in states {
            let x = self.state_at(&k, x, &found_old)?;
            let y = other.state_at(&k, y, &found_new)?;
            out.push((k, x, y));
        }
        Ok(to_changes(out))
    }

    /// A state's group at a position this version holds: its own when trusted, else the
    /// one `found` (row count and hash must agree).
    fn state_at(
        &self,
        k: &Key,
        s: State,
        found: &BTreeMap<Key, (GroupAt, u64, Option<Hash>)>,
    ) -> Result<Option<GroupRef>> {
        let Some((g, trusted)) = s else {
            return Ok(None);
        };
        if trusted {
            return Ok(Some(g));
        }
        match found.get(k) {
            Some(&(at, rows, hash)) if rows == g.rows && hash.is_none_or(|h| h == g.hash) => {
                Ok(Some(GroupRef { at, ..g }))
            }
            _ => Err(CoreError::Corrupt {
                what: format!("dataset '{}' at {}", self.ds.name(), self.commit.id),
                reason: format!(
                    "a fold record names group {} with {} rows, which this version does not hold",
                    hex::encode(k),
                    g.rows
                ),
            }),
        }
    }

    /// Every group of the base chunks `chunks` (indexes into `v`'s base) with its hash and
    /// position (an erased group keeps its recorded hash). Groups later deltas replaced
    /// are included. Chunks are small next to a pack's pages: the chunks of a pack are
    /// read together (each page decoded once), in a few stretches read and hashed
    /// concurrently.
    async fn chunk_states(
        &self,
        v: &View,
        chunks: &BTreeSet<usize>,
    ) -> Result<BTreeMap<Key, GroupRef>> {
        use futures::{StreamExt, TryStreamExt};
        if chunks.is_empty() {
            return Ok(BTreeMap::new());
        }
        let gi = self.group_key_index()?;
        let mut by_pack: BTreeMap<Hash, Vec<Chunk>> = BTreeMap::new();
        for &i in chunks {
            let c = &v.base.chunks[i];
            by_pack.entry(c.pack).or_default().push(c.clone());
        }
        // stretches of about 64k rows, a few in flight: memory stays bounded by them
        let mut jobs: Vec<(Hash, Vec<Chunk>)> = Vec::new();
        for (pack, mut list) in by_pack {
            list.sort_by_key(|c| c.start);
            let mut part: Vec<Chunk> = Vec::new();
            let mut rows = 0u64;
            for c in list {
                rows += c.rows;
                part.push(c);
                if rows >= STATE_READ_ROWS {
                    jobs.push((pack, std::mem::take(&mut part)));
                    rows = 0;
                }
            }
            if !part.is_empty() {
                jobs.push((pack, part));
            }
        }
        let workers = crate::packs::cores();
        let parts: Vec<Vec<(Key, GroupRef)>> = futures::stream::iter(jobs)
            .map(|(pack, part): (Hash, Vec<Chunk>)| {
                let store = self.ds.store().clone();
                let meta = self.ds.catalog.inner.meta.clone();
                let schema = self.ds.schema();
                let task = tokio::spawn(async move {
                    let ranges: Vec<Range<u64>> =
                        part.iter().map(|c| c.start..c.start + c.rows).collect();
                    let read = packs::read_ranges(&store, &meta, &pack, &ranges, None).await?;
                    let erased = meta.erased_groups(&store, &pack).await?;
                    tokio::task::spawn_blocking(move || {
                        stretch_states(&pack, &part, read, &erased, &schema, gi)
                    })
                    .await
                    .map_err(|e| CoreError::Join(e.to_string()))?
                });
                async move { task.await.map_err(|e| CoreError::Join(e.to_string()))? }
            })
            .buffer_unordered(2 * workers)
            .try_collect()
            .await?;
        Ok(parts.into_iter().flatten().collect())
    }
}

/// The groups of the chunks `part` of `pack` with their hashes and positions, from the
/// rows `read` for them (per chunk, as [`packs::read_ranges`] gives them); an erased group
/// keeps its recorded hash.
fn stretch_states(
    pack: &Hash,
    part: &[Chunk],
    read: Vec<Vec<RecordBatch>>,
    erased: &crate::erase::ErasedGroups,
    schema: &SchemaRef,
    gi: usize,
) -> Result<Vec<(Key, GroupRef)>> {
    let corrupt = |reason: &str| CoreError::Corrupt {
        what: format!("pack {pack}"),
        reason: reason.into(),
    };
    let mut out = Vec::new();
    for (c, batches) in part.iter().zip(read) {
        let b = arrow::compute::concat_batches(schema, &batches)?;
        if b.num_rows() as u64 != c.rows {
            return Err(corrupt("fewer rows than its chunk says"));
        }
        let runs =
            crate::storage::build::group_runs(&b, gi).ok_or_else(|| corrupt("null group key"))?;
        let hashes = crate::storage::build::hash_runs(&b, &runs);
        for ((k, off, n), h) in runs.into_iter().zip(hashes) {
            let first = c.start + off as u64;
            let g = GroupRef {
                hash: erased.hash_at(first, n as u64).unwrap_or(h),
                at: crate::storage::view::at(*pack, first),
                rows: n as u64,
            };
            out.push((k, g));
        }
    }
    Ok(out)
}

/// Rows a stretch of [`Snapshot::chunk_states`] reads at once (about).
const STATE_READ_ROWS: u64 = 64 * 1024;

/// Groups at known positions as row ranges per pack (each key once; groups without rows
/// left out).
fn ranges_by_pack<'a>(
    groups: impl IntoIterator<Item = (&'a Key, GroupAt, u64)>,
) -> BTreeMap<Hash, Vec<(&'a Key, Range<u64>)>> {
    let mut by_pack: BTreeMap<Hash, Vec<(&Key, Range<u64>)>> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for (key, at, rows) in groups {
        if rows == 0 || !seen.insert(key) {
            continue;
        }
        by_pack
            .entry(at.leaf)
            .or_default()
            .push((key, at.offset..at.offset + rows));
    }
    by_pack
}

/// A group's state in a view as far as its deltas and the groups of its chunks in `only`
/// (`groups`, from [`Snapshot::chunk_states`]) tell; `None`: in a chunk outside `only`.
fn known_state(
    v: &View,
    only: &BTreeSet<usize>,
    groups: &BTreeMap<Key, GroupRef>,
    k: &Key,
) -> Option<Option<GroupRef>> {
    match v.find(k) {
        Found::Delta(g) => Some(g),
        Found::Absent => Some(None),
        Found::Chunk(i) if only.contains(&i) => Some(groups.get(k).copied()),
        Found::Chunk(_) => None,
    }
}

/// (key, old state, new state) as located changes, equal states dropped.
fn to_changes(
    states: impl IntoIterator<Item = (Key, Option<GroupRef>, Option<GroupRef>)>,
) -> Vec<LocatedChange> {
    {
        let mut out = Vec::new();
        for (key, old, new) in states {
            if old.map(|g| g.hash) == new.map(|g| g.hash) {
                continue;
            }
            let entry = |g: &GroupRef| GroupEntry {
                key: key.clone(),
                hash: g.hash,
                rows: g.rows,
                stats: Vec::new(),
            };
            out.push(LocatedChange {
                change: Change {
                    key: key.clone(),
                    old: old.as_ref().map(entry),
                    new: new.as_ref().map(entry),
                },
                old_at: old.map(|g| g.at),
                new_at: new.map(|g| g.at),
            });
        }
        out
    }
}

impl Dataset {
    /// The deltas of two layouts on different bases, each from the nearest base both
    /// descend from by their fold links (fold records first, oldest fold first, then the
    /// layout's own deltas); `None` when their links reach no common base, or a fold
    /// record is gone.
    pub(crate) async fn over_common_base(
        &self,
        a: &Layered,
        b: &Layered,
    ) -> Result<Option<(Vec<(Arc<Delta>, Trust)>, Vec<(Arc<Delta>, Trust)>)>> {
        let chain = |l: &Layered| -> Vec<Hash> {
            std::iter::once(l.layout.base)
                .chain(l.layout.folds.iter().map(|f| f.base))
                .collect()
        };
        let (ca, cb) = (chain(a), chain(b));
        let Some((i, j)) = (0..ca.len())
            .flat_map(|i| (0..cb.len()).map(move |j| (i, j)))
            .filter(|&(i, j)| ca[i] == cb[j])
            .min_by_key(|&(i, j)| (i + j, i))
        else {
            return Ok(None);
        };
        let live = [a.layout.base, b.layout.base];
        let Some(sa) = self.deltas_from(a, &ca, i, &live).await? else {
            return Ok(None);
        };
        let Some(sb) = self.deltas_from(b, &cb, j, &live).await? else {
            return Ok(None);
        };
        Ok(Some((sa, sb)))
    }

    /// The deltas of layout `l` from base `chain[level]` of its fold chain (`chain[0]`:
    /// its own base): the records of its nearest `level` folds, oldest first, then its own
    /// deltas; a record's positions are trusted where they lie in a base of `live`.
    /// `None` when a fold record is gone.
    async fn deltas_from(
        &self,
        l: &Layered,
        chain: &[Hash],
        level: usize,
        live: &[Hash; 2],
    ) -> Result<Option<Vec<(Arc<Delta>, Trust)>>> {
        let mut v = Vec::with_capacity(level + l.deltas.len());
        // fold k (1-based, nearest first) made base chain[k-1] from base chain[k]
        for k in (1..=level).rev() {
            let Some(record) = self.fold_record(&l.layout.folds[k - 1].changes).await? else {
                return Ok(None);
            };
            let trust = Trust {
                old: live.contains(&chain[k]),
                new: live.contains(&chain[k - 1]),
            };
            v.push((record, trust));
        }
        v.extend(l.deltas.iter().map(|d| (d.clone(), OWN)));
        Ok(Some(v))
    }

    /// A fold record (cached: records are immutable), `None` when it is gone.
    async fn fold_record(&self, h: &Hash) -> Result<Option<Arc<Delta>>> {
        if let Some(d) = FOLD_RECORDS.lock().ok().and_then(|mut m| m.get(h)) {
            return Ok(Some(d));
        }
        let b = match self
            .store()
            .get_object(crate::storage::format::DELTA_KIND, h)
            .await
        {
            Ok(b) => b,
            Err(quiver_store::StoreError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let what = format!("fold record {h} of dataset '{}'", self.name());
        let d = Arc::new(Delta::decode(&b, &what)?);
        if let Ok(mut m) = FOLD_RECORDS.lock() {
            m.insert(*h, d.clone(), d.entries.len() + 1);
        }
        Ok(Some(d))
    }
}

/// Fold records by hash, weighed in entries.
static FOLD_RECORDS: LazyLock<Mutex<Lru<Hash, Arc<Delta>>>> =
    LazyLock::new(|| Mutex::new(Lru::new(1 << 20)));

/// Whether the positions a delta record gives name rows of a live version: a layout's
/// own deltas always do; a fold record's `old` positions are in the base it folded and its
/// `new` ones in the base it made, so each only when that base is one of the two versions'.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Trust {
    pub old: bool,
    pub new: bool,
}

/// A layout's own delta.
pub(crate) const OWN: Trust = Trust {
    old: true,
    new: true,
};

/// A group's state and whether its position is trusted ([`Trust`]); `None`: no group.
type State = Option<(GroupRef, bool)>;

/// States of the groups that differ between two versions on one base, each given as the
/// deltas from that base: the deltas after their common prefix name every such group
/// with its before- and after-images.
fn same_base_states(
    a: &[(Arc<Delta>, Trust)],
    b: &[(Arc<Delta>, Trust)],
) -> Vec<(Key, State, State)> {
    let p = a
        .iter()
        .zip(b)
        .take_while(|(x, y)| Arc::ptr_eq(&x.0, &y.0) || x.0 == y.0)
        .count();
    // latest state on each side after the prefix, and the state at the prefix (the first
    // before-image on either side)
    let mut states: BTreeMap<&Key, [Option<State>; 3]> = BTreeMap::new();
    for (side, v) in [(0usize, a), (1usize, b)] {
        for (d, trust) in &v[p..] {
            for e in &d.entries {
                let s = states.entry(&e.key).or_insert([None, None, None]);
                if s[2].is_none() {
                    // the copy of the old rows in the delta's small pack when it has one
                    s[2] = Some(e.old_readable(d.pack).map(|g| (g, trust.old)));
                }
                s[side] = Some(e.new.map(|g| (g, trust.new)));
            }
        }
    }
    states
        .into_iter()
        .map(|(k, s)| {
            let at_prefix = s[2].flatten();
            let old = s[0].unwrap_or(at_prefix);
            let new = s[1].unwrap_or(at_prefix);
            (k.clone(), old, new)
        })
        .collect()
}

/// The group hash of a group's rows (sorted by label key), as the writer computes it.
pub(crate) fn group_hash(b: &RecordBatch) -> Hash {
    encoding::GroupHasher::for_batch(b).hash(0, b.num_rows())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// `plan_locs` = group by pack (hash order), sort and merge touching ranges.
        #[test]
        fn plan_locs_groups_sorts_and_merges(
            leaves in proptest::collection::vec((0u8..3, 0u64..40, 1u64..4), 0..60)
        ) {
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
