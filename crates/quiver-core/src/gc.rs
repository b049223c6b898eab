//! Garbage collection (`VACUUM` / `quiver gc`): delete the commits, layouts, bases, deltas,
//! packs and assets that no live version needs (storage format 2, see [`crate::storage`]).
//!
//! **Live** is everything reachable from these roots of every dataset: the head of every
//! branch and tag; the commits of a pending merge; the commit every recorded training run
//! read; and both sides (`old`, `new`) of every ref-log entry younger than the retention
//! window — so a branch reset or deleted within the window can still be restored, and a
//! reader that resolved a version shortly before it stopped being a head keeps reading it.
//! Reachable means: commits through their parents; a commit to the layout its pointer
//! `datasets/<ds>/layouts/<commit>` names; a layout to its base and deltas; a base to the
//! packs of its chunks and a delta to its pack (a delta's before-images point into packs
//! the same layout already names); the rows of every live version (its scan partitions) to
//! the assets they name.
//!
//! Layouts no live pointer names are live too, with everything they name, when they have
//! the same content as a live commit whose layout pointer was written within the retention
//! window: OPTIMIZE re-points a commit to an equivalent layout, and a reader that loaded the
//! old one before keeps reading it. (The age of the old layout itself says nothing: it was
//! written with the commit, possibly long ago.)
//!
//! **Safe against crashes**: only unmarked objects are deleted, in an order that never
//! leaves a live name pointing at nothing: a commit's listing marker, then the commit, then
//! its layout pointer (a pointer without its commit is inert garbage; a commit without its
//! pointer could not be read); then layouts, then the bases and deltas they name, then
//! packs, then a pack's page checksums and erasure record ([`crate::erase`]). A gc that fails
//! part-way leaves only garbage and the next run finishes the job. Tombstones of erased
//! assets are kept (they say why an asset labels still name is gone).
//!
//! **Safe against concurrent writers and readers**: objects younger than the retention
//! window are never deleted (a write in flight put them moments ago), and writers (commits,
//! OPTIMIZE, imports) announce themselves with leases so that a gc deletes only after every
//! write that could reuse an old object has committed, and after marking again (see
//! [`crate::lease`]). The second mark reads again the layout pointer of every live commit
//! that changed since the first (OPTIMIZE re-points commits that are already marked).
//!
//! Format-1 leftovers — tree nodes (`objects/node/`) and pack index files
//! (`datasets/<ds>/packidx/`) — are read by nothing any more and are deleted like any
//! unreferenced object. A catalog that still holds a format-1 dataset is not collected at
//! all: opening that dataset fails ([`CoreError::UnsupportedFormat`]), and so does the gc,
//! before it deletes anything.
//!
//! A gc runs in two phases that tests can interleave with writes: [`Catalog::gc_plan`]
//! (list candidates, mark) and [`GcPlan::sweep`] (lock, wait for writers, mark again,
//! delete). [`Catalog::gc`] and [`Dataset::vacuum`] run both.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use quiver_store::{FileMeta, Store, StoreError};
use quiver_tree::Hash;

use crate::assets::{asset_columns, collect_hashes, ASSET_KIND};
use crate::catalog::Catalog;
use crate::dataset::{Dataset, COMMIT_KIND};
use crate::error::{CoreError, Result};
use crate::import::{NoProgress, Progress};
use crate::lease::{unique_id, EPOCH_PATH};
use crate::model::Commit;
use crate::nodes::NODE_KIND;
use crate::packs::PACK_KIND;
use crate::storage::format::{Base, Delta, Layout, BASE_KIND, DELTA_KIND, LAYOUT_KIND};
use crate::storage::{layout_pointer, View};

/// Default retention window: 7 days.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// Objects read concurrently while marking.
const CONCURRENCY: usize = 32;

/// A later mark reads again every layout pointer modified (by the storage clock) less than
/// this before the previous mark listed them, besides those whose modification time
/// changed: a pointer re-pointed within the same clock tick as its listing looks unchanged.
const POINTER_SKEW: Duration = Duration::from_secs(600);

/// Options of a gc run.
#[derive(Clone)]
pub struct VacuumOptions {
    /// Retention window: objects younger than this are never deleted, and ref-log entries
    /// younger than this keep their versions alive. Default 7 days.
    pub retain: Duration,
    /// Only report what would be deleted.
    pub dry_run: bool,
    /// Collect only this dataset's commits, their listing markers and layout pointers
    /// (plus the catalog's shared garbage, which no dataset owns: unreferenced layouts,
    /// bases, deltas, packs, format-1 leftovers and assets). `None`: the whole catalog.
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
    /// Live commits, layouts, bases, deltas, packs and assets.
    pub live_commits: u64,
    pub live_layouts: u64,
    pub live_bases: u64,
    pub live_deltas: u64,
    pub live_packs: u64,
    pub live_assets: u64,
    /// Assets in the store when the gc listed them.
    pub assets_seen: u64,
    pub commit_markers: Removed,
    pub commits: Removed,
    /// Layout pointers (`datasets/<ds>/layouts/<commit>`) of deleted (or absent) commits.
    pub layout_pointers: Removed,
    pub layouts: Removed,
    pub bases: Removed,
    pub deltas: Removed,
    pub packs: Removed,
    /// Page-checksum files of the deleted packs.
    pub pack_sums: Removed,
    /// Erasure records of the deleted packs (and of packs that are gone).
    pub erasure_records: Removed,
    /// Format-1 leftovers: tree nodes and pack index files (format 2 reads neither).
    pub legacy: Removed,
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
    pub fn kinds(&self) -> [(&'static str, Removed); 12] {
        [
            ("commit markers", self.commit_markers),
            ("commits", self.commits),
            ("layout pointers", self.layout_pointers),
            ("format-1 leftovers", self.legacy),
            ("layouts", self.layouts),
            ("bases", self.bases),
            ("deltas", self.deltas),
            ("packs", self.packs),
            ("pack checksums", self.pack_sums),
            ("erasure records", self.erasure_records),
            ("assets", self.assets),
            ("staged uploads", self.staged),
        ]
    }
}

/// The layout pointer of a live commit, as last read.
struct Pointer {
    /// The commit's content hash (its `root`).
    root: Hash,
    /// Whether the pointer was read at all.
    read: bool,
    /// Its listed modification time when it was read (`None`: not listed then).
    modified: Option<DateTime<Utc>>,
    /// The layout it named (`None`: no pointer).
    layout: Option<Hash>,
}

/// What is live, built incrementally (a second mark only walks what is new).
#[derive(Default)]
struct Marks {
    commits: HashSet<Hash>,
    /// Layout pointers of live commits, by dataset and commit.
    pointers: HashMap<String, HashMap<Hash, Pointer>>,
    layouts: HashSet<Hash>,
    bases: HashSet<Hash>,
    deltas: HashSet<Hash>,
    packs: HashSet<Hash>,
    assets: HashSet<Hash>,
    /// (dataset, content hash) of the versions whose asset columns were read.
    asset_contents: HashSet<(String, Hash)>,
    /// Row ranges (ascending, disjoint) whose asset columns were read, by (dataset, pack).
    asset_rows: HashMap<(String, Hash), Vec<Range<u64>>>,
    /// Content hash of candidate layouts read for the equivalence rule (`None`: unreadable).
    digests: HashMap<Hash, Option<Hash>>,
    /// When (by this host's clock) the previous mark listed the layout pointers.
    listed_at: Option<DateTime<Utc>>,
}

/// Candidates listed before marking: nothing written after the listing can be deleted.
struct Candidates {
    commits: Vec<(Hash, FileMeta)>,
    layouts: Vec<(Hash, FileMeta)>,
    bases: Vec<(Hash, FileMeta)>,
    deltas: Vec<(Hash, FileMeta)>,
    packs: Vec<(Hash, FileMeta)>,
    /// `packsums/<hh>/<hex>`: a pack's page checksums, by pack.
    sums: HashMap<Hash, FileMeta>,
    /// `erasures/packs/<hh>/<hex>`: a pack's erasure record, by pack.
    records: HashMap<Hash, FileMeta>,
    assets: Vec<(Hash, FileMeta)>,
    staged: Vec<FileMeta>,
    /// `datasets/<ds>/commits/<hex>`: (dataset, commit, meta).
    markers: Vec<(String, Hash, FileMeta)>,
    /// `datasets/<ds>/layouts/<hex>`: (dataset, commit, meta).
    pointers: Vec<(String, Hash, FileMeta)>,
    /// Format 1: `objects/node/…` and `datasets/<ds>/packidx/<hex>`.
    legacy: Vec<FileMeta>,
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

/// The layout pointers of a dataset as listed now: commit → meta.
async fn list_pointers(store: &Store, dataset: &str) -> Result<HashMap<Hash, FileMeta>> {
    Ok(store
        .list_meta(&format!("datasets/{dataset}/layouts/"))
        .await?
        .into_iter()
        .filter_map(|m| hash_of(&m).map(|h| (h, m)))
        .collect())
}

/// Read a layout pointer: the layout it names, `None` when there is no pointer. A pointer
/// that does not hold a hash is an error: what it named cannot be known, so a gc must not
/// go on and delete it.
async fn read_pointer(store: &Store, dataset: &str, commit: &Hash) -> Result<Option<Hash>> {
    let path = layout_pointer(dataset, commit);
    let Some(body) = store.get_file_opt(&path).await? else {
        return Ok(None);
    };
    std::str::from_utf8(&body)
        .ok()
        .and_then(|s| Hash::from_hex(s.trim()))
        .map(Some)
        .ok_or_else(|| CoreError::Corrupt {
            what: path,
            reason: "not a layout hash; run `quiver fsck`".into(),
        })
}

/// Read objects of `kind` concurrently: `None` for an absent one (and, when `lenient`, for
/// one that does not match its address); any other failure is an error.
async fn fetch_objects(
    store: &Store,
    kind: &'static str,
    hashes: Vec<Hash>,
    lenient: bool,
) -> Result<Vec<(Hash, Option<Bytes>)>> {
    futures::stream::iter(hashes)
        .map(|h| async move {
            match store.get_object(kind, &h).await {
                Ok(b) => Ok((h, Some(b))),
                // gone already: nothing below it can be found from here
                Err(StoreError::NotFound { .. }) => Ok((h, None)),
                Err(StoreError::Corrupt { .. }) if lenient => Ok((h, None)),
                Err(e) => Err(CoreError::from(e)),
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await
}

fn what(kind: &str, h: &Hash) -> String {
    format!("{kind} {h}")
}

/// The folded view of a layout (from the process-wide cache, else read); `None` when an
/// object of it is gone.
async fn load_view(store: &Store, id: Hash) -> Result<Option<Arc<View>>> {
    if let Some(v) = crate::storage::view::cached(&id) {
        return Ok(Some(v));
    }
    let Some((_, Some(b))) = fetch_objects(store, LAYOUT_KIND, vec![id], false)
        .await?
        .pop()
    else {
        return Ok(None);
    };
    let layout = Layout::decode(&b, &what("layout", &id))?;
    let Some((_, Some(b))) = fetch_objects(store, BASE_KIND, vec![layout.base], false)
        .await?
        .pop()
    else {
        return Ok(None);
    };
    let base = Arc::new(Base::decode(&b, &what("base", &layout.base))?);
    let got: HashMap<Hash, Option<Bytes>> =
        fetch_objects(store, DELTA_KIND, layout.deltas.clone(), false)
            .await?
            .into_iter()
            .collect();
    let mut deltas = Vec::with_capacity(layout.deltas.len());
    for h in &layout.deltas {
        let Some(Some(b)) = got.get(h) else {
            return Ok(None);
        };
        deltas.push(Arc::new(Delta::decode(b, &what("delta", h))?));
    }
    Ok(Some(Arc::new(View::new(id, layout, base, deltas))))
}

/// `ranges` minus `done` (both ascending and disjoint).
fn subtract(ranges: &[Range<u64>], done: &[Range<u64>]) -> Vec<Range<u64>> {
    let mut out = Vec::new();
    let mut j = 0;
    for r in ranges {
        let mut pos = r.start;
        while j < done.len() && done[j].end <= pos {
            j += 1;
        }
        let mut k = j;
        while k < done.len() && done[k].start < r.end {
            if done[k].start > pos {
                out.push(pos..done[k].start);
            }
            pos = pos.max(done[k].end);
            k += 1;
        }
        if pos < r.end {
            out.push(pos..r.end);
        }
    }
    out
}

/// Add `more` to `done` (both ascending and disjoint), keeping it ascending and disjoint.
fn union(done: &mut Vec<Range<u64>>, more: &[Range<u64>]) {
    let mut all: Vec<Range<u64>> = done.drain(..).chain(more.iter().cloned()).collect();
    all.sort_by_key(|r| r.start);
    for r in all {
        match done.last_mut() {
            Some(last) if last.end >= r.start => last.end = last.end.max(r.end),
            _ => done.push(r),
        }
    }
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
        let mut pointers = Vec::new();
        let mut legacy = Vec::new();
        for m in store.list_meta("datasets/").await? {
            let parts: Vec<&str> = m.path.split('/').collect();
            if let [_, ds, dir, file] = parts.as_slice() {
                let Some(h) = Hash::from_hex(file) else {
                    continue;
                };
                match *dir {
                    "commits" => markers.push((ds.to_string(), h, m.clone())),
                    "layouts" => pointers.push((ds.to_string(), h, m.clone())),
                    "packidx" => legacy.push(m.clone()),
                    _ => {}
                }
            }
        }
        legacy.extend(
            list_objects(store, NODE_KIND)
                .await?
                .into_iter()
                .map(|(_, m)| m),
        );
        let candidates = Candidates {
            commits: list_objects(store, COMMIT_KIND).await?,
            layouts: list_objects(store, LAYOUT_KIND).await?,
            bases: list_objects(store, BASE_KIND).await?,
            deltas: list_objects(store, DELTA_KIND).await?,
            packs: list_objects(store, PACK_KIND).await?,
            sums: store
                .list_meta("packsums/")
                .await?
                .into_iter()
                .filter_map(|m| hash_of(&m).map(|h| (h, m)))
                .collect(),
            records: store
                .list_meta(crate::erase::PACK_RECORDS)
                .await?
                .into_iter()
                .filter_map(|m| crate::erase::record::pack_of_record(&m.path).map(|h| (h, m)))
                .collect(),
            assets: list_objects(store, ASSET_KIND).await?,
            staged: store.list_meta(crate::assets::STAGING).await?,
            markers,
            pointers,
            legacy,
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
    /// reached is not walked again, but every layout pointer that changed is read again).
    async fn mark(&mut self) -> Result<()> {
        let cat = self.catalog.clone();
        let store = cat.store().clone();
        let progress = self.opts.progress.clone();
        progress.phase("marking live versions", None);
        let cutoff = self.cutoff();
        let listed_at = Utc::now();
        // pointers modified this recently before the previous listing are read again
        let recent = self.marks.listed_at.map(|t| {
            t.checked_sub_signed(chrono::Duration::from_std(POINTER_SKEW).unwrap_or_default())
                .unwrap_or(DateTime::<Utc>::MIN_UTC)
        });
        let runs = cat.runs().await?;
        // content hashes of live commits whose pointer was written within the window
        let mut young_contents: HashSet<Hash> = HashSet::new();
        for name in cat.list_datasets().await? {
            let ds = match cat.dataset(&name).await {
                Ok(ds) => ds,
                // half-created or dropped: nothing of it is live
                Err(CoreError::DatasetNotFound(_)) => continue,
                Err(e) => return Err(e),
            };
            // listed before the roots are read: a pointer missing here is newer than that
            let listed = list_pointers(&store, &name).await?;
            let mut roots = dataset_roots(&ds, cutoff).await?;
            roots.extend(
                runs.iter()
                    .filter(|r| r.dataset == name)
                    .filter_map(|r| Hash::from_hex(&r.commit)),
            );
            let new = self.mark_commits(&ds, roots).await?;
            let pointers = self.marks.pointers.entry(name.clone()).or_default();
            for c in new {
                pointers.insert(
                    c.id,
                    Pointer {
                        root: c.root,
                        read: false,
                        modified: None,
                        layout: None,
                    },
                );
            }
            // read the pointers never read, and those that changed (or might have)
            let mut todo: Vec<(Hash, Option<DateTime<Utc>>)> = Vec::new();
            for (id, p) in pointers.iter() {
                let modified = listed.get(id).map(|m| m.modified);
                // (not listed: written since the listing)
                if modified.is_none_or(|m| m > cutoff) {
                    young_contents.insert(p.root);
                }
                let changed = modified != p.modified
                    || modified.is_some_and(|m| recent.is_some_and(|r| m >= r));
                if !p.read || changed {
                    todo.push((*id, modified));
                }
            }
            let got: Vec<(Hash, Option<DateTime<Utc>>, Option<Hash>)> = futures::stream::iter(todo)
                .map(|(id, modified)| {
                    let (store, name) = (&store, &name);
                    async move {
                        Ok::<_, CoreError>((id, modified, read_pointer(store, name, &id).await?))
                    }
                })
                .buffer_unordered(CONCURRENCY)
                .try_collect()
                .await?;
            let mut layouts = Vec::new();
            for (id, modified, layout) in got {
                if let Some(p) = pointers.get_mut(&id) {
                    p.read = true;
                    p.modified = modified;
                    p.layout = layout;
                }
                layouts.extend(layout);
            }
            self.mark_layouts(&store, layouts, false).await?;
            self.mark_assets(&ds).await?;
            progress.advance(1);
        }
        self.marks.listed_at = Some(listed_at);

        // layouts with the content of a live commit whose pointer was written within the
        // window: kept for readers (see the module docs), with what they name
        if young_contents.is_empty() {
            return Ok(());
        }
        let unknown: Vec<Hash> = self
            .candidates
            .layouts
            .iter()
            .map(|(h, _)| *h)
            .filter(|h| !self.marks.layouts.contains(h) && !self.marks.digests.contains_key(h))
            .collect();
        for (h, b) in fetch_objects(&store, LAYOUT_KIND, unknown, true).await? {
            let digest = b
                .and_then(|b| Layout::decode(&b, &what("layout", &h)).ok())
                .map(|l| l.content.digest());
            self.marks.digests.insert(h, digest);
        }
        let kept: Vec<Hash> = self
            .candidates
            .layouts
            .iter()
            .map(|(h, _)| *h)
            .filter(|h| {
                !self.marks.layouts.contains(h)
                    && self
                        .marks
                        .digests
                        .get(h)
                        .is_some_and(|d| d.is_some_and(|d| young_contents.contains(&d)))
            })
            .collect();
        self.mark_layouts(&store, kept, true).await
    }

    /// Mark the commits reachable from `roots`; returns the new ones.
    async fn mark_commits(&mut self, ds: &Dataset, roots: Vec<Hash>) -> Result<Vec<Commit>> {
        let mut stack = roots;
        let mut new = Vec::new();
        while let Some(h) = stack.pop() {
            if !self.marks.commits.insert(h) {
                continue;
            }
            match ds.commit(&h).await {
                Ok(c) => {
                    stack.extend(c.parents.iter().copied());
                    new.push(c);
                }
                // named by an old ref-log entry or a run, and collected long ago
                Err(CoreError::VersionNotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(new)
    }

    /// Mark the layouts `hashes` and the bases, deltas and packs they name. A layout that
    /// is gone names nothing; one that does not decode is an error (what it names cannot be
    /// known), unless `lenient` (a layout kept for readers, not one a live commit names).
    async fn mark_layouts(
        &mut self,
        store: &Store,
        hashes: Vec<Hash>,
        lenient: bool,
    ) -> Result<()> {
        let todo: Vec<Hash> = hashes
            .into_iter()
            .filter(|h| self.marks.layouts.insert(*h))
            .collect();
        let mut bases = Vec::new();
        let mut deltas = Vec::new();
        for (h, b) in fetch_objects(store, LAYOUT_KIND, todo, lenient).await? {
            let Some(b) = b else { continue };
            let layout = match Layout::decode(&b, &what("layout", &h)) {
                Ok(l) => l,
                Err(_) if lenient => continue,
                Err(e) => return Err(e),
            };
            if self.marks.bases.insert(layout.base) {
                bases.push(layout.base);
            }
            // fold records stay with every layout that links to them (they name no pack
            // of their own: the bases they point into live or go with their layouts)
            deltas.extend(
                layout
                    .deltas
                    .into_iter()
                    .chain(layout.folds.iter().map(|f| f.changes))
                    .filter(|d| self.marks.deltas.insert(*d)),
            );
        }
        for (h, b) in fetch_objects(store, BASE_KIND, bases, false).await? {
            let Some(b) = b else { continue };
            let base = Base::decode(&b, &what("base", &h))?;
            self.marks.packs.extend(base.chunks.iter().map(|c| c.pack));
        }
        for (h, b) in fetch_objects(store, DELTA_KIND, deltas, false).await? {
            let Some(b) = b else { continue };
            let delta = Delta::decode(&b, &what("delta", &h))?;
            self.marks.packs.extend(delta.pack);
        }
        Ok(())
    }

    /// Read the asset columns of the rows of the dataset's live versions whose content was
    /// not read yet (each row range of a pack at most once).
    async fn mark_assets(&mut self, ds: &Dataset) -> Result<()> {
        let name = ds.name().to_string();
        let mut todo: Vec<(Hash, Hash)> = Vec::new();
        let mut seen: HashSet<Hash> = HashSet::new();
        if let Some(pointers) = self.marks.pointers.get(&name) {
            for p in pointers.values() {
                if let Some(layout) = p.layout {
                    if seen.insert(p.root)
                        && !self.marks.asset_contents.contains(&(name.clone(), p.root))
                    {
                        todo.push((p.root, layout));
                    }
                }
            }
        }
        if todo.is_empty() {
            return Ok(());
        }
        let cols = asset_columns(ds).await?;
        if cols.is_empty() {
            return Ok(());
        }
        let projection: Vec<usize> = cols.iter().map(|c| c.0).collect();
        let store = ds.catalog().store().clone();
        let meta = ds.catalog().inner.meta.clone();
        for (root, layout) in todo {
            let Some(view) = load_view(&store, layout).await? else {
                continue;
            };
            let locs = view.parts().iter().map(|(_, l)| l);
            for scan in crate::snapshot::plan_locs(locs) {
                let done = self
                    .marks
                    .asset_rows
                    .entry((name.clone(), scan.pack))
                    .or_default();
                let ranges = subtract(&scan.ranges, done);
                if ranges.is_empty() {
                    continue;
                }
                let batches = crate::packs::read_ranges_concat(
                    &store,
                    &meta,
                    &scan.pack,
                    &ranges,
                    Some(&projection),
                )
                .await?;
                for b in batches {
                    for col in b.columns() {
                        collect_hashes(col.as_ref(), &mut self.marks.assets);
                    }
                }
                union(done, &ranges);
            }
            self.marks.asset_contents.insert((name.clone(), root));
        }
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
            live_layouts: m.layouts.len() as u64,
            live_bases: m.bases.len() as u64,
            live_deltas: m.deltas.len() as u64,
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
            // commits: markers first, then the objects, then their layout pointers
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
            let mut gone: HashSet<Hash> = HashSet::new();
            let mut kept: HashSet<Hash> = HashSet::new();
            for (h, meta) in &c.commits {
                let owned = marked_by.get(h).is_none_or(|ds| in_scope(ds));
                if owned && !m.commits.contains(h) && old(meta) {
                    r.commits.add(meta);
                    doomed.push(meta.path.clone());
                    gone.insert(*h);
                } else {
                    kept.insert(*h);
                }
            }
            // a pointer goes with its commit (or after it, when the commit is gone already)
            for (ds, h, meta) in &c.pointers {
                let commit_goes = gone.contains(h) || !kept.contains(h);
                if in_scope(ds) && !m.commits.contains(h) && commit_goes && old(meta) {
                    r.layout_pointers.add(meta);
                    doomed.push(meta.path.clone());
                }
            }
            for meta in &c.legacy {
                if old(meta) {
                    r.legacy.add(meta);
                    doomed.push(meta.path.clone());
                }
            }
            // layouts, then the bases and deltas they name, then packs
            let kinds = [
                (&c.layouts, &m.layouts, &mut r.layouts),
                (&c.bases, &m.bases, &mut r.bases),
                (&c.deltas, &m.deltas, &mut r.deltas),
            ];
            for (listed, live, removed) in kinds {
                for (h, meta) in listed {
                    if !live.contains(h) && old(meta) {
                        removed.add(meta);
                        doomed.push(meta.path.clone());
                    }
                }
            }
            let listed: HashSet<&Hash> = c.packs.iter().map(|(h, _)| h).collect();
            for (h, meta) in &c.packs {
                if !m.packs.contains(h) && old(meta) {
                    r.packs.add(meta);
                    doomed.push(meta.path.clone());
                    // its page checksums and erasure record after it (inert without it)
                    if let Some(sums) = c.sums.get(h) {
                        r.pack_sums.add(sums);
                        doomed.push(sums.path.clone());
                    }
                    if let Some(rec) = c.records.get(h) {
                        r.erasure_records.add(rec);
                        doomed.push(rec.path.clone());
                    }
                }
            }
            // the records of packs deleted before (a gc cut short between the two)
            for (h, rec) in &c.records {
                if !listed.contains(h) && !m.packs.contains(h) && old(rec) {
                    r.erasure_records.add(rec);
                    doomed.push(rec.path.clone());
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
