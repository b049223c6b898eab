//! Garbage collection (`VACUUM` / `quiver gc`): delete the commits, tree nodes, packs, pack
//! index files and assets that no live version needs.
//!
//! **Live** is everything reachable (commits through their parents, trees through their
//! nodes, leaves to every pack that holds them, rows to the assets they name) from these
//! roots of every dataset: the head of every branch and tag; the commits of a pending
//! merge; the commit every recorded training run read; and both sides (`old`, `new`) of
//! every ref-log entry younger than the retention window — so a branch reset or deleted
//! within the window can still be restored, and a reader that resolved a version shortly
//! before it stopped being a head keeps reading it.
//!
//! **Safe against crashes**: only unmarked objects are deleted, in an order that never
//! leaves a live name pointing at nothing (a commit's listing marker before the commit, a
//! pack's index file before the pack); a gc that fails part-way leaves only garbage and the
//! next run finishes the job.
//!
//! **Safe against concurrent writers and readers**: objects younger than the retention
//! window are never deleted (a write in flight put them moments ago), and writers announce
//! themselves with leases so that a gc deletes only after every write that could reuse an
//! old object has committed, and after marking again (see [`crate::lease`]).
//!
//! A gc runs in two phases that tests can interleave with writes: [`Catalog::gc_plan`]
//! (list candidates, mark) and [`GcPlan::sweep`] (lock, wait for writers, mark again,
//! delete). [`Catalog::gc`] and [`Dataset::vacuum`] run both.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use quiver_store::{FileMeta, Store, StoreError};
use quiver_tree::{Hash, Node};

use crate::assets::{asset_columns, collect_hashes, ASSET_KIND};
use crate::catalog::Catalog;
use crate::dataset::{Dataset, COMMIT_KIND};
use crate::error::{CoreError, Result};
use crate::import::{NoProgress, Progress};
use crate::lease::{unique_id, EPOCH_PATH};
use crate::nodes::NODE_KIND;
use crate::packs::{idx_dir, read_idx_file, PACK_KIND};

/// Default retention window: 7 days.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// Options of a gc run.
#[derive(Clone)]
pub struct VacuumOptions {
    /// Retention window: objects younger than this are never deleted, and ref-log entries
    /// younger than this keep their versions alive. Default 7 days.
    pub retain: Duration,
    /// Only report what would be deleted.
    pub dry_run: bool,
    /// Collect only this dataset's commits, pack index files and packs (plus the catalog's
    /// shared garbage: unreferenced tree nodes, assets and packs no dataset indexes).
    /// `None`: the whole catalog.
    pub dataset: Option<String>,
    /// Delete only assets (and staged asset uploads).
    pub only_assets: bool,
    /// Break a gc lock left by a gc that crashed (or failed to release it) even if it is
    /// not stale yet. Only when no other gc is running.
    pub break_lock: bool,
    /// How long to wait for writes in progress before giving up (deleting nothing).
    pub wait_for_writers: Duration,
    /// The clock ("now") against which ages are measured; `None`: the system clock.
    pub now: Option<DateTime<Utc>>,
    /// Progress receiver.
    pub progress: Arc<dyn Progress>,
}

impl Default for VacuumOptions {
    fn default() -> Self {
        VacuumOptions {
            retain: DEFAULT_RETENTION,
            dry_run: false,
            dataset: None,
            only_assets: false,
            break_lock: false,
            wait_for_writers: Duration::from_secs(60),
            now: None,
            progress: Arc::new(NoProgress),
        }
    }
}

impl std::fmt::Debug for VacuumOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VacuumOptions")
            .field("retain", &self.retain)
            .field("dry_run", &self.dry_run)
            .field("dataset", &self.dataset)
            .field("only_assets", &self.only_assets)
            .finish()
    }
}

/// Parse a retention such as `7d`, `12h`, `0d`, `30m` or `90s`.
pub fn parse_retention(s: &str) -> Result<Duration> {
    let bad = || CoreError::InvalidRetention(s.chars().take(40).collect());
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| bad())?;
    let secs = match unit.trim().to_ascii_lowercase().as_str() {
        "d" | "day" | "days" => 86_400,
        "h" | "hour" | "hours" => 3_600,
        "m" | "min" | "minutes" => 60,
        "s" | "sec" | "seconds" => 1,
        _ => return Err(bad()),
    };
    n.checked_mul(secs)
        .filter(|&v| v <= 100 * 365 * 86_400)
        .map(Duration::from_secs)
        .ok_or_else(bad)
}

/// Count and size of one kind of deleted object.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Removed {
    pub count: u64,
    pub bytes: u64,
}

impl Removed {
    fn add(&mut self, m: &FileMeta) {
        self.count += 1;
        self.bytes += m.size;
    }
}

/// What a gc found and deleted (or, in a dry run, would delete).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VacuumReport {
    pub dry_run: bool,
    /// Live commits, tree nodes, packs and assets.
    pub live_commits: u64,
    pub live_nodes: u64,
    pub live_packs: u64,
    pub live_assets: u64,
    /// Assets in the store when the gc listed them.
    pub assets_seen: u64,
    pub commits: Removed,
    pub commit_markers: Removed,
    pub nodes: Removed,
    pub packs: Removed,
    /// Page-checksum files of the deleted packs.
    pub pack_sums: Removed,
    pub pack_indexes: Removed,
    pub assets: Removed,
    /// Staged (unfinished) asset uploads.
    pub staged: Removed,
    /// Unreferenced objects kept because they are younger than the retention window.
    pub kept_young: u64,
    /// Hashes of the deleted assets, sorted.
    pub deleted_assets: Vec<Hash>,
}

impl VacuumReport {
    /// Objects and files deleted, all kinds together.
    pub fn deleted(&self) -> u64 {
        self.kinds().iter().map(|(_, r)| r.count).sum()
    }

    /// Bytes freed, all kinds together.
    pub fn bytes_freed(&self) -> u64 {
        self.kinds().iter().map(|(_, r)| r.bytes).sum()
    }

    /// (kind name, removed) for every kind, in deletion order.
    pub fn kinds(&self) -> [(&'static str, Removed); 8] {
        [
            ("commit markers", self.commit_markers),
            ("commits", self.commits),
            ("pack indexes", self.pack_indexes),
            ("packs", self.packs),
            ("pack checksums", self.pack_sums),
            ("tree nodes", self.nodes),
            ("assets", self.assets),
            ("staged uploads", self.staged),
        ]
    }
}

/// What is live, built incrementally (a second mark only walks what is new).
#[derive(Default)]
struct Marks {
    commits: HashSet<Hash>,
    nodes: HashSet<Hash>,
    /// Leaf nodes by dataset.
    leaves: HashMap<String, HashSet<Hash>>,
    /// Leaves whose asset columns were read, by dataset.
    asset_leaves: HashMap<String, HashSet<Hash>>,
    assets: HashSet<Hash>,
    packs: HashSet<Hash>,
}

/// Candidates listed before marking: nothing written after the listing can be deleted.
struct Candidates {
    commits: Vec<(Hash, FileMeta)>,
    nodes: Vec<(Hash, FileMeta)>,
    packs: Vec<(Hash, FileMeta)>,
    /// `packsums/<hh>/<hex>`: a pack's page checksums, by pack.
    sums: HashMap<Hash, FileMeta>,
    assets: Vec<(Hash, FileMeta)>,
    staged: Vec<FileMeta>,
    /// `datasets/<ds>/commits/<hex>`: (dataset, commit, meta).
    markers: Vec<(String, Hash, FileMeta)>,
    /// `datasets/<ds>/packidx/<hex>`: (dataset, pack, meta).
    indexes: Vec<(String, Hash, FileMeta)>,
}

/// A planned gc: candidates listed and marked; [`GcPlan::sweep`] deletes.
pub struct GcPlan {
    catalog: Catalog,
    opts: VacuumOptions,
    id: String,
    candidates: Candidates,
    marks: Marks,
}

impl std::fmt::Debug for GcPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GcPlan")
            .field("id", &self.id)
            .field("opts", &self.opts)
            .finish()
    }
}

fn hash_of(meta: &FileMeta) -> Option<Hash> {
    meta.path.rsplit('/').next().and_then(Hash::from_hex)
}

async fn list_objects(store: &Store, kind: &str) -> Result<Vec<(Hash, FileMeta)>> {
    Ok(store
        .list_meta(&format!("objects/{kind}/"))
        .await?
        .into_iter()
        .filter_map(|m| hash_of(&m).map(|h| (h, m)))
        .collect())
}

impl Catalog {
    /// Collect garbage in the whole catalog (or one dataset, see
    /// [`VacuumOptions::dataset`]): [`Catalog::gc_plan`] then [`GcPlan::sweep`].
    pub async fn gc(&self, opts: &VacuumOptions) -> Result<VacuumReport> {
        self.gc_plan(opts).await?.sweep().await
    }

    /// First phase of a gc: list every candidate, then mark what the live roots reach.
    pub async fn gc_plan(&self, opts: &VacuumOptions) -> Result<GcPlan> {
        if let Some(ds) = &opts.dataset {
            self.dataset(ds).await?;
        }
        let store = self.store();
        let progress = opts.progress.as_ref();
        progress.phase("listing objects", None);
        let mut markers = Vec::new();
        let mut indexes = Vec::new();
        for m in store.list_meta("datasets/").await? {
            let parts: Vec<&str> = m.path.split('/').collect();
            if let [_, ds, dir, file] = parts.as_slice() {
                let Some(h) = Hash::from_hex(file) else {
                    continue;
                };
                let entry = (ds.to_string(), h, m.clone());
                match *dir {
                    "commits" => markers.push(entry),
                    "packidx" => indexes.push(entry),
                    _ => {}
                }
            }
        }
        let candidates = Candidates {
            commits: list_objects(store, COMMIT_KIND).await?,
            nodes: list_objects(store, NODE_KIND).await?,
            packs: list_objects(store, PACK_KIND).await?,
            sums: store
                .list_meta("packsums/")
                .await?
                .into_iter()
                .filter_map(|m| hash_of(&m).map(|h| (h, m)))
                .collect(),
            assets: list_objects(store, ASSET_KIND).await?,
            staged: store.list_meta(crate::assets::STAGING).await?,
            markers,
            indexes,
        };
        let mut plan = GcPlan {
            catalog: self.clone(),
            opts: opts.clone(),
            id: unique_id(),
            candidates,
            marks: Marks::default(),
        };
        plan.mark().await?;
        Ok(plan)
    }
}

impl Dataset {
    /// `VACUUM`: collect this dataset's garbage (and the catalog's shared garbage), see
    /// [`Catalog::gc`].
    pub async fn vacuum(&self, opts: &VacuumOptions) -> Result<VacuumReport> {
        let mut o = opts.clone();
        o.dataset = Some(self.name().to_string());
        self.catalog().gc(&o).await
    }
}

impl GcPlan {
    fn now(&self) -> DateTime<Utc> {
        self.opts.now.unwrap_or_else(Utc::now)
    }

    fn cutoff(&self) -> DateTime<Utc> {
        let retain = chrono::Duration::from_std(self.opts.retain).unwrap_or(chrono::Duration::MAX);
        self.now()
            .checked_sub_signed(retain)
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    /// Mark everything the live roots reach now (incrementally: what earlier marks
    /// reached is not walked again).
    async fn mark(&mut self) -> Result<()> {
        let cat = self.catalog.clone();
        let progress = self.opts.progress.clone();
        progress.phase("marking live versions", None);
        let cutoff = self.cutoff();
        let runs = cat.runs().await?;
        for name in cat.list_datasets().await? {
            let ds = match cat.dataset(&name).await {
                Ok(ds) => ds,
                // half-created or dropped: nothing of it is live
                Err(CoreError::DatasetNotFound(_)) => continue,
                Err(e) => return Err(e),
            };
            let mut roots = dataset_roots(&ds, cutoff).await?;
            roots.extend(
                runs.iter()
                    .filter(|r| r.dataset == name)
                    .filter_map(|r| Hash::from_hex(&r.commit)),
            );
            let trees = self.mark_commits(&ds, roots).await?;
            let new_leaves = self.mark_trees(&name, trees).await?;
            progress.advance(1);
            if !new_leaves.is_empty() {
                self.mark_assets(&ds).await?;
            }
        }
        // packs holding a live leaf of the dataset that indexes them
        let store = cat.store();
        let mut names: Vec<String> = self.marks.leaves.keys().cloned().collect();
        names.sort();
        for name in names {
            let Some(leaves) = self.marks.leaves.get(&name) else {
                continue;
            };
            for path in store.list(&idx_dir(&name)).await? {
                let entries = match read_idx_file(store, &path).await {
                    Ok(e) => e,
                    Err(CoreError::Store(StoreError::NotFound { .. })) => continue,
                    Err(e) => return Err(e),
                };
                if let Some((_, loc)) = entries.iter().find(|(l, _)| leaves.contains(l)) {
                    self.marks.packs.insert(loc.pack);
                }
            }
        }
        Ok(())
    }

    /// Mark the commits reachable from `roots`; returns the tree roots of new ones.
    async fn mark_commits(&mut self, ds: &Dataset, roots: Vec<Hash>) -> Result<Vec<Hash>> {
        let mut stack = roots;
        let mut trees = Vec::new();
        while let Some(h) = stack.pop() {
            if !self.marks.commits.insert(h) {
                continue;
            }
            match ds.commit(&h).await {
                Ok(c) => {
                    trees.push(c.root);
                    stack.extend(c.parents.iter().copied());
                }
                // named by an old ref-log entry or a run, and collected long ago
                Err(CoreError::VersionNotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(trees)
    }

    /// Mark the nodes of the trees `roots`, level by level; returns the new leaves.
    async fn mark_trees(&mut self, dataset: &str, roots: Vec<Hash>) -> Result<Vec<Hash>> {
        let store = self.catalog.store().clone();
        let mut frontier: Vec<Hash> = roots
            .into_iter()
            .filter(|h| self.marks.nodes.insert(*h))
            .collect();
        let mut new_leaves = Vec::new();
        while !frontier.is_empty() {
            let nodes: Vec<(Hash, Option<Node>)> = futures::stream::iter(frontier)
                .map(|h| {
                    let store = store.clone();
                    async move {
                        match store.get_object(NODE_KIND, &h).await {
                            Ok(b) => Ok((h, Some(Node::decode(&b)?))),
                            // unreadable already: nothing below it can be found from here
                            Err(StoreError::NotFound { .. }) => Ok((h, None)),
                            Err(e) => Err(CoreError::from(e)),
                        }
                    }
                })
                .buffer_unordered(32)
                .try_collect()
                .await?;
            let mut next = Vec::new();
            for (h, node) in nodes {
                match node {
                    Some(Node::Internal { children, .. }) => next.extend(
                        children
                            .iter()
                            .map(|c| c.hash)
                            .filter(|c| self.marks.nodes.insert(*c)),
                    ),
                    Some(Node::Leaf { .. }) => {
                        self.marks
                            .leaves
                            .entry(dataset.to_string())
                            .or_default()
                            .insert(h);
                        new_leaves.push(h);
                    }
                    None => {}
                }
            }
            frontier = next;
        }
        Ok(new_leaves)
    }

    /// Read the asset columns of the dataset's live leaves not read yet.
    async fn mark_assets(&mut self, ds: &Dataset) -> Result<()> {
        let cols = asset_columns(ds).await?;
        if cols.is_empty() {
            return Ok(());
        }
        let name = ds.name().to_string();
        let done = self.marks.asset_leaves.get(&name);
        let todo: Vec<Hash> = self
            .marks
            .leaves
            .get(&name)
            .map(|l| {
                l.iter()
                    .filter(|h| done.is_none_or(|d| !d.contains(h)))
                    .copied()
                    .collect()
            })
            .unwrap_or_default();
        let store = ds.catalog().store().clone();
        let mut with_rows = Vec::new();
        {
            let nodes = ds.nodes().fetch_many(&todo).await?;
            for h in &todo {
                if let Some(Node::Leaf { entries }) = nodes.get(h).map(|n| n.as_ref()) {
                    if !entries.is_empty() {
                        with_rows.push(*h);
                    }
                }
            }
        }
        let locs = crate::packs::locate(&store, &name, &ds.packs, &with_rows).await?;
        let projection: Vec<usize> = cols.iter().map(|c| c.0).collect();
        for scan in crate::snapshot::plan_locs(locs.iter()) {
            let batches = crate::packs::read_ranges_concat(
                &store,
                &ds.catalog().inner.meta,
                &scan.pack,
                &scan.ranges,
                Some(&projection),
            )
            .await?;
            for b in batches {
                for col in b.columns() {
                    collect_hashes(col.as_ref(), &mut self.marks.assets);
                }
            }
        }
        self.marks
            .asset_leaves
            .entry(name)
            .or_default()
            .extend(todo);
        Ok(())
    }

    /// Second phase: take the gc lock, wait for writes in progress, mark again, delete.
    /// A dry run only reports (it takes no lock and deletes nothing).
    pub async fn sweep(mut self) -> Result<VacuumReport> {
        if self.opts.dry_run {
            return Ok(self.select().0);
        }
        let cat = self.catalog.clone();
        if self.opts.break_lock {
            cat.release_gc_lock().await?;
        }
        cat.take_gc_lock(&self.id).await?;
        let res = self.sweep_locked().await;
        let released = cat.release_gc_lock().await;
        cat.clear_caches();
        let report = res?;
        released?;
        Ok(report)
    }

    async fn sweep_locked(&mut self) -> Result<VacuumReport> {
        let cat = self.catalog.clone();
        let store = cat.store().clone();
        store
            .put_file(EPOCH_PATH, bytes::Bytes::from(self.id.clone()))
            .await?;
        self.wait_for_writers().await?;
        self.mark().await?;
        let (report, doomed) = self.select();
        let progress = self.opts.progress.clone();
        progress.phase("deleting", Some(doomed.len() as u64));
        for path in doomed {
            store.delete(&path).await?;
            progress.advance(1);
        }
        progress.finish();
        Ok(report)
    }

    /// Wait until no fresh write lease is left, or give up.
    async fn wait_for_writers(&self) -> Result<()> {
        let start = std::time::Instant::now();
        loop {
            let leases = self.catalog.live_leases(Utc::now()).await?;
            let Some((path, first)) = leases.first() else {
                return Ok(());
            };
            if start.elapsed() >= self.opts.wait_for_writers {
                return Err(CoreError::GcBusy(format!(
                    "{} write(s) in progress (the oldest: {} by pid {} since {}, lease {path}); \
                     nothing was deleted, run gc again later",
                    leases.len(),
                    first.what,
                    first.pid,
                    first.started
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The report, and the paths to delete in a crash-safe order.
    fn select(&self) -> (VacuumReport, Vec<String>) {
        let cutoff = self.cutoff();
        let m = &self.marks;
        let c = &self.candidates;
        let scope = self.opts.dataset.as_deref();
        let only_assets = self.opts.only_assets;
        let mut r = VacuumReport {
            dry_run: self.opts.dry_run,
            live_commits: m.commits.len() as u64,
            live_nodes: m.nodes.len() as u64,
            live_packs: m.packs.len() as u64,
            live_assets: m.assets.len() as u64,
            assets_seen: c.assets.len() as u64,
            ..Default::default()
        };
        let mut doomed = Vec::new();
        let mut kept_young = 0u64;
        let mut old = |meta: &FileMeta| {
            if meta.modified > cutoff {
                kept_young += 1;
                false
            } else {
                true
            }
        };
        if !only_assets {
            let in_scope = |ds: &str| scope.is_none_or(|s| s == ds);
            // commits: markers first, then the objects
            let marked_by: HashMap<Hash, &str> = c
                .markers
                .iter()
                .map(|(ds, h, _)| (*h, ds.as_str()))
                .collect();
            for (ds, h, meta) in &c.markers {
                if in_scope(ds) && !m.commits.contains(h) && old(meta) {
                    r.commit_markers.add(meta);
                    doomed.push(meta.path.clone());
                }
            }
            for (h, meta) in &c.commits {
                let owned = marked_by.get(h).is_none_or(|ds| in_scope(ds));
                if owned && !m.commits.contains(h) && old(meta) {
                    r.commits.add(meta);
                    doomed.push(meta.path.clone());
                }
            }
            // packs: index files first, then the packs
            let indexed_by: HashMap<Hash, Vec<&str>> =
                c.indexes
                    .iter()
                    .fold(HashMap::new(), |mut acc, (ds, h, _)| {
                        acc.entry(*h).or_default().push(ds.as_str());
                        acc
                    });
            for (ds, h, meta) in &c.indexes {
                if in_scope(ds) && !m.packs.contains(h) && old(meta) {
                    r.pack_indexes.add(meta);
                    doomed.push(meta.path.clone());
                }
            }
            for (h, meta) in &c.packs {
                let owned = indexed_by
                    .get(h)
                    .is_none_or(|dss| dss.iter().all(|ds| in_scope(ds)));
                if owned && !m.packs.contains(h) && old(meta) {
                    r.packs.add(meta);
                    doomed.push(meta.path.clone());
                    // its page checksums after it (sums without their pack are inert)
                    if let Some(sums) = c.sums.get(h) {
                        r.pack_sums.add(sums);
                        doomed.push(sums.path.clone());
                    }
                }
            }
            for (h, meta) in &c.nodes {
                if !m.nodes.contains(h) && old(meta) {
                    r.nodes.add(meta);
                    doomed.push(meta.path.clone());
                }
            }
        }
        for (h, meta) in &c.assets {
            if !m.assets.contains(h) && old(meta) {
                r.assets.add(meta);
                r.deleted_assets.push(*h);
                doomed.push(meta.path.clone());
            }
        }
        for meta in &c.staged {
            if old(meta) {
                r.staged.add(meta);
                doomed.push(meta.path.clone());
            }
        }
        r.kept_young = kept_young;
        r.deleted_assets.sort();
        (r, doomed)
    }
}

/// Roots of one dataset: ref heads, pending merges, and both sides of every ref-log entry
/// at or after `cutoff` (of live and deleted refs alike).
async fn dataset_roots(ds: &Dataset, cutoff: DateTime<Utc>) -> Result<Vec<Hash>> {
    let store = ds.catalog().store();
    let prefix = format!("refs/datasets/{}/", ds.name());
    let mut refpaths: Vec<String> = store
        .list(&prefix)
        .await?
        .iter()
        .filter_map(|p| {
            let (dir, file) = p.rsplit_once('/')?;
            let digits = file.strip_suffix(".json")?;
            (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
                .then(|| dir.strip_prefix("refs/").map(str::to_string))?
        })
        .collect();
    refpaths.sort();
    refpaths.dedup();
    let mut roots = Vec::new();
    for rp in refpaths {
        let log = store.ref_log(&rp).await?;
        if let Some(head) = log.last().and_then(|e| e.new) {
            roots.push(head);
        }
        for e in log.iter().filter(|e| e.time >= cutoff) {
            roots.extend(e.old);
            roots.extend(e.new);
        }
    }
    let merges = format!("datasets/{}/merges/", ds.name());
    for path in store.list(&merges).await? {
        let Some(bytes) = store.get_file_opt(&path).await? else {
            continue;
        };
        let doc: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| CoreError::Corrupt {
                what: path.clone(),
                reason: e.to_string(),
            })?;
        for k in ["base", "ours", "theirs"] {
            if let Some(h) = doc.get(k).and_then(|v| v.as_str()).and_then(Hash::from_hex) {
                roots.push(h);
            }
        }
    }
    Ok(roots)
}
