//! `fsck`: verify a whole catalog, report what is wrong, repair only what is safe.
//!
//! [`Catalog::fsck`] lists the catalog once, then for every dataset:
//! * checks its configuration and whether it was published (the first entry of its main
//!   branch exists): a configuration without that entry, or refs without a configuration,
//!   is a **half-created** dataset (a creation or drop that did not finish);
//! * decodes every entry of every ref (branches, tags…): an undecodable entry, or a gap in
//!   a ref's sequence, is **corrupt**, named by its catalog-relative path; a head whose
//!   target commit does not exist is a **dangling ref**;
//! * walks every commit reachable from the refs' heads and pending merges; for each, its
//!   layout pointer (`datasets/<ds>/layouts/<commit>`), the layout it names, the layout's
//!   base and deltas and every pack those name, re-hashing each object against its address:
//!   a mismatch or an undecodable object (or pointer) is **corrupt**, an absent one is a
//!   **missing object**. A layout must also describe its commit: its content hash must be
//!   the commit's `root` and its base and deltas must hold the rows it counts, else the
//!   pointer (naming a wrong layout) or the layout is **corrupt**;
//! * decodes the schema registry, metadata and pending merges.
//!
//! A pack rewritten by an erasure ([`crate::erase`]) no longer hashes to its address: it is
//! sound when its bytes hash to what its erasure record says they are (counted in
//! `erased_packs`), and its sums file describes those bytes; an erasure cut short (the pack
//! or its sums still the bytes before) is **erasure incomplete**, fixed by running the
//! erasure again; bytes neither the address nor the record explains are **corrupt**.
//! Erasure records of packs no ref reaches are orphans; records and asset tombstones that
//! do not decode are corrupt.
//!
//! The lineage log and `catalog.json` are decoded too. Objects (commits, layouts, bases,
//! deltas, packs) no ref reaches are **orphans**: counted and listed, never deleted
//! (removing them is VACUUM's job); so are the layout pointers of commits no ref reaches,
//! files left in `tmp/`, and what storage format 1 left (tree nodes, pack index files),
//! which format 2 reads no more.
//!
//! `repair` removes the leftovers of half-created datasets (never visible, so nothing
//! reachable is touched) and nothing else. Run it while no dataset of the same name is
//! being created.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use quiver_store::{parse_ref_entry_path, Store, StoreError};
use quiver_tree::Hash;
use serde::Serialize;

use crate::catalog::{config_path, dataset_dir, main_ref, Catalog};
use crate::dataset::COMMIT_KIND;
use crate::error::{CoreError, Result};
use crate::merge::PendingMerge;
use crate::model::{Commit, DatasetConfig};
use crate::nodes::NODE_KIND;
use crate::packs::PACK_KIND;
use crate::schema_registry::SchemaVersion;
use crate::storage::format::{Base, Delta, Layout, BASE_KIND, DELTA_KIND, LAYOUT_KIND};
use crate::storage::{layout_pointer, View};

/// Objects verified concurrently.
const CONCURRENCY: usize = 16;

/// A progress callback: called with a short line describing the current phase.
pub type Progress = Arc<dyn Fn(&str) + Send + Sync>;

/// Options of [`Catalog::fsck`].
#[derive(Clone, Default)]
pub struct FsckOptions {
    /// Remove the leftovers of half-created datasets (the only repair that is always safe).
    pub repair: bool,
    /// Called as the check moves through phases and every few thousand objects.
    pub progress: Option<Progress>,
}

/// What kind of problem was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// A ref's head names a commit that does not exist.
    DanglingRef,
    /// An object (or a commit's layout pointer) reachable from a ref does not exist.
    MissingObject,
    /// A file or object does not decode or does not hash to its address, or a layout does
    /// not describe the commit whose pointer names it.
    Corrupt,
    /// A dataset whose creation (or drop) did not finish.
    HalfCreated,
    /// An erasure that did not finish: a pack, or its sums file, still holds what was
    /// there before. Running the erasure again finishes it.
    ErasureIncomplete,
}

/// One problem, naming the file by its path relative to the catalog root.
#[derive(Debug, Clone, Serialize)]
pub struct FsckProblem {
    pub kind: ProblemKind,
    pub path: String,
    pub detail: String,
    /// Fixed by `repair`.
    pub repaired: bool,
}

/// What [`Catalog::fsck`] found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FsckReport {
    pub datasets: u64,
    pub refs: u64,
    pub ref_entries: u64,
    pub commits: u64,
    pub layouts: u64,
    pub bases: u64,
    pub deltas: u64,
    pub packs: u64,
    /// Packs whose bytes are what an erasure left (counted in `packs` too).
    pub erased_packs: u64,
    /// Erased assets (their tombstones decode).
    pub erased_assets: u64,
    /// Other files decoded (layout pointers, configurations, schema versions, lineage
    /// records…).
    pub files: u64,
    pub problems: Vec<FsckProblem>,
    /// Objects no ref reaches, the layout pointers of commits no ref reaches, format-1
    /// leftovers and files left in `tmp/` (garbage for VACUUM, not problems).
    pub orphans: Vec<String>,
}

impl FsckReport {
    /// No problem left (orphans are not problems).
    pub fn is_clean(&self) -> bool {
        self.problems.iter().all(|p| p.repaired)
    }

    /// Number of problems of `kind`.
    pub fn count(&self, kind: ProblemKind) -> usize {
        self.problems.iter().filter(|p| p.kind == kind).count()
    }

    fn problem(&mut self, kind: ProblemKind, path: impl Into<String>, detail: impl Into<String>) {
        self.problems.push(FsckProblem {
            kind,
            path: path.into(),
            detail: detail.into(),
            repaired: false,
        });
    }
}

/// Why an object could not be verified.
enum Bad {
    Missing,
    Corrupt(String),
    /// Its bytes hash to this, not to its address (a pack may be erased: see its record).
    Mismatch(Hash),
}

/// The state of one walk over the catalog.
struct Walk<'a> {
    store: &'a Store,
    files: HashSet<String>,
    /// Object paths verified (or found bad) so far, across datasets.
    seen: HashSet<String>,
    /// Decoded layouts, bases and deltas (`None`: missing or bad), across datasets.
    layouts: HashMap<Hash, Option<Arc<Layout>>>,
    bases: HashMap<Hash, Option<Arc<Base>>>,
    deltas: HashMap<Hash, Option<Arc<Delta>>>,
    /// Datasets whose versions were walked.
    walked: HashSet<String>,
    report: FsckReport,
    progress: Option<Progress>,
    ticks: u64,
}

impl Catalog {
    /// Verify the whole catalog (see the module docs of `fsck`).
    pub async fn fsck(&self, opts: FsckOptions) -> Result<FsckReport> {
        let store = self.store();
        let say = |m: &str| {
            if let Some(p) = &opts.progress {
                p(m)
            }
        };
        say("listing the catalog");
        let listed = store.list("").await?;
        let mut w = Walk {
            store,
            files: listed.iter().cloned().collect(),
            seen: HashSet::new(),
            layouts: HashMap::new(),
            bases: HashMap::new(),
            deltas: HashMap::new(),
            walked: HashSet::new(),
            report: FsckReport::default(),
            progress: opts.progress.clone(),
            ticks: 0,
        };
        if w.files.contains("catalog.json") {
            w.json_file::<serde_json::Value>("catalog.json").await?;
        }
        let mut names = BTreeSet::new();
        for f in &listed {
            let rest = f
                .strip_prefix("datasets/")
                .or_else(|| f.strip_prefix("refs/datasets/"));
            if let Some((name, _)) = rest.and_then(|r| r.split_once('/')) {
                names.insert(name.to_string());
            }
        }
        for name in &names {
            say(&format!("checking dataset {name}"));
            self.check_dataset(&mut w, &listed, name, opts.repair)
                .await?;
        }
        say("checking erasure records");
        for f in listed
            .iter()
            .filter(|f| f.starts_with(crate::erase::PACK_RECORDS))
        {
            let ok = crate::erase::record::pack_of_record(f).is_some_and(|p| {
                // reachable packs' records were read with their pack
                w.seen.contains(&Store::object_path(PACK_KIND, &p))
            });
            if ok {
                continue;
            }
            w.report.files += 1;
            let decoded = match (
                crate::erase::record::pack_of_record(f),
                store.get_file_opt(f).await?,
            ) {
                (Some(p), Some(b)) => crate::erase::ErasureRecord::decode(f, &p, &b).map(|_| ()),
                (_, None) => Ok(()),
                (None, _) => Err(CoreError::Corrupt {
                    what: f.clone(),
                    reason: "not named after a pack".into(),
                }),
            };
            match decoded {
                // the record of a pack no version reaches: garbage with its pack
                Ok(()) => w.report.orphans.push(f.clone()),
                Err(e) => w.report.problem(ProblemKind::Corrupt, f, e.to_string()),
            }
        }
        for f in listed
            .iter()
            .filter(|f| f.starts_with(crate::assets::TOMBSTONES))
        {
            w.report.files += 1;
            if let Some(b) = store.get_file_opt(f).await? {
                match crate::assets::Tombstone::decode(f, &b) {
                    Ok(_) => w.report.erased_assets += 1,
                    Err(e) => w.report.problem(ProblemKind::Corrupt, f, e.to_string()),
                }
            }
        }
        say("checking the lineage log");
        for f in listed.iter().filter(|f| f.starts_with("lineage/")) {
            if f.ends_with(".json") {
                w.json_file::<serde_json::Value>(f).await?;
            }
        }
        let kinds = [
            COMMIT_KIND,
            LAYOUT_KIND,
            BASE_KIND,
            DELTA_KIND,
            PACK_KIND,
            NODE_KIND,
        ];
        for f in &listed {
            let object = f.strip_prefix("objects/").and_then(|r| r.split_once('/'));
            let in_dataset: Vec<&str> = f.split('/').collect();
            let garbage = match (object, in_dataset.as_slice()) {
                (Some((kind, _)), _) => kinds.contains(&kind) && !w.seen.contains(f),
                // the layout pointer of a commit no ref reaches
                (None, ["datasets", ds, "layouts", commit]) => {
                    w.walked.contains(*ds)
                        && Hash::from_hex(commit)
                            .is_some_and(|c| !w.seen.contains(&Store::object_path(COMMIT_KIND, &c)))
                }
                // format 1's pack index files
                (None, ["datasets", _, "packidx", _]) => true,
                (None, _) => f.starts_with("tmp/"),
            };
            if garbage {
                w.report.orphans.push(f.clone());
            }
        }
        say("done");
        Ok(w.report)
    }

    async fn check_dataset(
        &self,
        w: &mut Walk<'_>,
        listed: &[String],
        name: &str,
        repair: bool,
    ) -> Result<()> {
        let cfg = config_path(name);
        let entry0 = Store::ref_entry_path(&main_ref(name), 0);
        let (has_cfg, published) = (w.files.contains(&cfg), w.files.contains(&entry0));
        if !has_cfg || !published {
            let detail = if has_cfg {
                "configuration but no main branch: a creation (or drop) that did not finish"
            } else {
                "refs but no configuration: a drop that did not finish"
            };
            let shown = if has_cfg {
                cfg.clone()
            } else {
                format!("refs/{}", dataset_dir(name))
            };
            w.report.problem(ProblemKind::HalfCreated, shown, detail);
            if repair && !self.is_published(name).await? {
                self.remove_leftovers(name, true).await?;
                if let Some(p) = w.report.problems.last_mut() {
                    p.repaired = true;
                }
            }
            return Ok(());
        }
        w.report.datasets += 1;
        if let Some(c) = w.json_file::<DatasetConfig>(&cfg).await? {
            if c.format_version != crate::model::FORMAT_VERSION {
                // never judge another format's objects by this one's rules
                return Err(CoreError::UnsupportedFormat {
                    dataset: name.to_string(),
                    found: c.format_version,
                    supported: crate::model::FORMAT_VERSION,
                });
            }
        }
        let dir = dataset_dir(name);
        let mut roots: Vec<(Hash, String)> = Vec::new();

        // refs: every entry decodes, no gaps, the head names an existing commit
        let mut refs: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        for f in listed
            .iter()
            .filter(|f| f.starts_with(&format!("refs/{dir}")))
        {
            if let Some((refpath, seq)) = parse_ref_entry_path(f) {
                refs.entry(refpath).or_default().push(seq);
            }
        }
        for (refpath, mut seqs) in refs {
            w.report.refs += 1;
            seqs.sort_unstable();
            if let Some(i) = (0u64..)
                .zip(&seqs)
                .find_map(|(i, s)| (*s != i).then_some(i))
            {
                w.report.problem(
                    ProblemKind::Corrupt,
                    Store::ref_entry_path(&refpath, i),
                    "missing: the ref's entries have a gap",
                );
            }
            let mut head = None;
            for seq in &seqs {
                w.report.ref_entries += 1;
                let path = Store::ref_entry_path(&refpath, *seq);
                match w.store.read_ref_entry(&refpath, *seq).await {
                    Ok(Some(e)) => head = Some(e),
                    Ok(None) => {}
                    Err(StoreError::MalformedRef { reason, .. }) => {
                        head = None;
                        w.report.problem(ProblemKind::Corrupt, &path, reason);
                    }
                    Err(e @ StoreError::InvalidRefName { .. }) => {
                        head = None;
                        w.report.problem(ProblemKind::Corrupt, &path, e.to_string());
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            if let Some(target) = head.and_then(|e| e.new) {
                let path = Store::ref_entry_path(&refpath, *seqs.last().unwrap_or(&0));
                let commit = Store::object_path(COMMIT_KIND, &target);
                if !w.exists(&commit).await? {
                    w.report.problem(
                        ProblemKind::DanglingRef,
                        &path,
                        format!("names commit {target}, which does not exist"),
                    );
                } else {
                    roots.push((target, path));
                }
            }
        }

        // pending merges name commits too
        let mine = |sub: &str| -> Vec<String> {
            let prefix = format!("{dir}{sub}");
            listed
                .iter()
                .filter(|f| f.starts_with(&prefix))
                .cloned()
                .collect()
        };
        for f in mine("merges/") {
            if let Some(p) = w.json_file::<PendingMerge>(&f).await? {
                for id in [&p.base, &p.ours, &p.theirs] {
                    if let Some(h) = Hash::from_hex(id) {
                        roots.push((h, f.clone()));
                    }
                }
            }
        }
        for f in mine("schemas/") {
            w.json_file::<SchemaVersion>(&f).await?;
        }
        for f in mine("branch_settings/") {
            w.json_file::<crate::branch_settings::BranchSettings>(&f)
                .await?;
        }
        if w.files.contains(&format!("{dir}metadata.json")) {
            w.json_file::<serde_json::Value>(&format!("{dir}metadata.json"))
                .await?;
        }
        w.walked.insert(name.to_string());
        w.walk(name, roots).await
    }
}

impl Walk<'_> {
    fn tick(&mut self) {
        self.ticks += 1;
        if self.ticks.is_multiple_of(5000) {
            if let Some(p) = &self.progress {
                p(&format!("verified {} objects", self.ticks));
            }
        }
    }

    /// Whether a file exists (listed, or written since the listing).
    async fn exists(&self, path: &str) -> Result<bool> {
        if self.files.contains(path) {
            return Ok(true);
        }
        Ok(self.store.get_file_opt(path).await?.is_some())
    }

    /// Decode a JSON file; a file that does not decode is reported, not an error.
    async fn json_file<T: serde::de::DeserializeOwned>(&mut self, path: &str) -> Result<Option<T>> {
        self.report.files += 1;
        let bytes = match self.store.get_file(path).await {
            Ok(b) => b,
            // deleted since the listing (e.g. a merge finished)
            Err(StoreError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        match serde_json::from_slice(&bytes) {
            Ok(v) => Ok(Some(v)),
            Err(e) => {
                self.report
                    .problem(ProblemKind::Corrupt, path, format!("does not decode: {e}"));
                Ok(None)
            }
        }
    }

    /// Read and re-hash objects of `kind` concurrently (each at most once per fsck).
    async fn fetch(
        &mut self,
        kind: &str,
        hashes: Vec<Hash>,
    ) -> Result<Vec<(Hash, std::result::Result<bytes::Bytes, Bad>)>> {
        let todo: Vec<Hash> = hashes
            .into_iter()
            .filter(|h| self.seen.insert(Store::object_path(kind, h)))
            .collect();
        let store = self.store;
        let out: Vec<_> = futures::stream::iter(todo)
            .map(|h| async move {
                match store.get_object(kind, &h).await {
                    Ok(b) => Ok((h, Ok(b))),
                    Err(StoreError::NotFound { .. }) => Ok((h, Err(Bad::Missing))),
                    Err(StoreError::Corrupt { actual, .. }) => Ok((
                        h,
                        Err(match Hash::from_hex(&actual) {
                            Some(a) => Bad::Mismatch(a),
                            None => Bad::Corrupt(format!(
                                "does not match its address: its blake3 is {actual}"
                            )),
                        }),
                    )),
                    Err(e) => Err(CoreError::from(e)),
                }
            })
            .buffer_unordered(CONCURRENCY)
            .try_collect()
            .await?;
        for _ in &out {
            self.tick();
        }
        Ok(out)
    }

    /// Read packs whole concurrently (each at most once per fsck): their bytes and blake3.
    async fn fetch_packs(
        &mut self,
        hashes: Vec<Hash>,
    ) -> Result<Vec<(Hash, std::result::Result<(bytes::Bytes, Hash), Bad>)>> {
        let todo: Vec<Hash> = hashes
            .into_iter()
            .filter(|h| self.seen.insert(Store::object_path(PACK_KIND, h)))
            .collect();
        let store = self.store;
        let out: Vec<_> = futures::stream::iter(todo)
            .map(|h| async move {
                match store.get_file(&Store::object_path(PACK_KIND, &h)).await {
                    Ok(b) => {
                        let b2 = b.clone();
                        let actual = tokio::task::spawn_blocking(move || Hash::of(&b2))
                            .await
                            .map_err(|e| CoreError::Join(e.to_string()))?;
                        Ok((h, Ok((b, actual))))
                    }
                    Err(StoreError::NotFound { .. }) => Ok((h, Err(Bad::Missing))),
                    Err(e) => Err(CoreError::from(e)),
                }
            })
            .buffer_unordered(CONCURRENCY)
            .try_collect()
            .await?;
        for _ in &out {
            self.tick();
        }
        Ok(out)
    }

    fn bad(&mut self, kind: &str, h: &Hash, bad: Bad, from: &str) {
        let path = Store::object_path(kind, h);
        match bad {
            Bad::Missing => self.report.problem(
                ProblemKind::MissingObject,
                path,
                format!("reachable from {from}, but does not exist"),
            ),
            Bad::Corrupt(e) => self.report.problem(ProblemKind::Corrupt, path, e),
            Bad::Mismatch(actual) => self.report.problem(
                ProblemKind::Corrupt,
                path,
                format!("does not match its address: its blake3 is {actual}"),
            ),
        }
    }

    /// A reachable pack read whole: its bytes (hashing to `actual`) are the original ones
    /// or those its erasure record says an erasure left; an erasure cut short (a record
    /// naming bytes the pack does not hold, or a sums file still describing the bytes
    /// before) is reported; bytes neither explains are corrupt.
    async fn check_pack(
        &mut self,
        pack: &Hash,
        bytes: Option<&bytes::Bytes>,
        actual: &Hash,
    ) -> Result<()> {
        let path = Store::object_path(PACK_KIND, pack);
        let rpath = crate::erase::record_path(pack);
        let record = if self.files.contains(&rpath) {
            self.seen.insert(rpath.clone());
            match self.store.get_file_opt(&rpath).await? {
                Some(b) => match crate::erase::ErasureRecord::decode(&rpath, pack, &b) {
                    Ok(r) => Some(r),
                    Err(e) => {
                        self.report
                            .problem(ProblemKind::Corrupt, &rpath, e.to_string());
                        None
                    }
                },
                None => None,
            }
        } else {
            None
        };
        let Some(record) = record else {
            if actual == pack {
                self.report.packs += 1;
            } else {
                self.bad(PACK_KIND, pack, Bad::Mismatch(*actual), "");
            }
            return Ok(());
        };
        if record.blake3 != *actual {
            if record.knows(actual) {
                self.report.packs += 1;
                self.report.problem(
                    ProblemKind::ErasureIncomplete,
                    &path,
                    format!(
                        "its erasure record says it holds bytes of blake3 {}, it holds {actual}                          (an erasure cut short): run the erasure again",
                        record.blake3
                    ),
                );
            } else {
                self.bad(PACK_KIND, pack, Bad::Mismatch(*actual), "");
            }
            return Ok(());
        }
        self.report.packs += 1;
        if actual == pack {
            return Ok(());
        }
        self.report.erased_packs += 1;
        // the sums of the erased bytes were written after them
        let sums = crate::pack_sums::sums_path(pack);
        let stored = self.store.get_file_opt(&sums).await?;
        let fresh = match bytes {
            Some(b) => Some(crate::pack_sums::PackSums::compute(*pack, b)?),
            None => None,
        };
        let ok = match (stored, fresh) {
            (Some(s), Some(f)) => {
                crate::pack_sums::PackSums::decode(&sums, pack, &s).is_ok_and(|s| s == f)
            }
            (None, _) => true,
            (Some(_), None) => true,
        };
        if !ok {
            self.report.problem(
                ProblemKind::ErasureIncomplete,
                sums,
                "describes the pack's bytes before its erasure (an erasure cut short):                  run the erasure again",
            );
        }
        Ok(())
    }

    /// Walk the commits reachable from `roots`, their layouts, bases, deltas and packs.
    async fn walk(&mut self, dataset: &str, roots: Vec<(Hash, String)>) -> Result<()> {
        let mut from: HashMap<Hash, String> = HashMap::new();
        let mut frontier = Vec::new();
        for (h, f) in roots {
            from.entry(h).or_insert(f);
            frontier.push(h);
        }
        // (commit, root) of every version reached
        let mut versions: Vec<(Hash, Hash)> = Vec::new();
        while !frontier.is_empty() {
            let mut next = Vec::new();
            for (h, got) in self.fetch(COMMIT_KIND, frontier).await? {
                let origin = from.get(&h).cloned().unwrap_or_default();
                let bytes = match got {
                    Ok(b) => b,
                    Err(b) => {
                        self.bad(COMMIT_KIND, &h, b, &origin);
                        continue;
                    }
                };
                self.report.commits += 1;
                let path = Store::object_path(COMMIT_KIND, &h);
                match Commit::decode(h, &bytes) {
                    Ok(c) if c.data.dataset == dataset => {
                        versions.push((h, c.root));
                        for p in c.parents {
                            from.entry(p).or_insert_with(|| path.clone());
                            next.push(p);
                        }
                    }
                    Ok(c) => self.report.problem(
                        ProblemKind::Corrupt,
                        path,
                        format!(
                            "is a commit of dataset '{}', reached from dataset '{dataset}'",
                            c.data.dataset
                        ),
                    ),
                    Err(e) => self
                        .report
                        .problem(ProblemKind::Corrupt, path, e.to_string()),
                }
            }
            frontier = next;
        }

        // every version's layout pointer
        let store = self.store;
        let pointers: Vec<(Hash, Hash, String, Option<bytes::Bytes>)> =
            futures::stream::iter(versions)
                .map(|(commit, root)| async move {
                    let path = layout_pointer(dataset, &commit);
                    let body = store.get_file_opt(&path).await?;
                    Ok::<_, CoreError>((commit, root, path, body))
                })
                .buffer_unordered(CONCURRENCY)
                .try_collect()
                .await?;
        // (commit, root, pointer path, layout)
        let mut pointed: Vec<(Hash, Hash, String, Hash)> = Vec::new();
        for (commit, root, path, body) in pointers {
            self.report.files += 1;
            let Some(body) = body else {
                self.report.problem(
                    ProblemKind::MissingObject,
                    path,
                    format!("the layout pointer of commit {commit} does not exist: the commit cannot be read"),
                );
                continue;
            };
            match std::str::from_utf8(&body)
                .ok()
                .and_then(|s| Hash::from_hex(s.trim()))
            {
                Some(layout) => pointed.push((commit, root, path, layout)),
                None => self.report.problem(
                    ProblemKind::Corrupt,
                    path,
                    format!("does not hold a layout hash (the layout of commit {commit})"),
                ),
            }
        }

        // layouts, then their bases and deltas
        let mut todo: Vec<Hash> = Vec::new();
        for (_, _, path, layout) in &pointed {
            if !self.layouts.contains_key(layout) {
                from.entry(*layout).or_insert_with(|| path.clone());
                todo.push(*layout);
            }
        }
        todo.sort();
        todo.dedup();
        let mut fresh: Vec<Hash> = Vec::new();
        for (h, got) in self.fetch(LAYOUT_KIND, todo).await? {
            let origin = from.get(&h).cloned().unwrap_or_default();
            let decoded = match got {
                Ok(b) => {
                    self.report.layouts += 1;
                    let path = Store::object_path(LAYOUT_KIND, &h);
                    match Layout::decode(&b, &path) {
                        Ok(l) => Some(Arc::new(l)),
                        Err(e) => {
                            self.report
                                .problem(ProblemKind::Corrupt, path, e.to_string());
                            None
                        }
                    }
                }
                Err(b) => {
                    self.bad(LAYOUT_KIND, &h, b, &origin);
                    None
                }
            };
            if decoded.is_some() {
                fresh.push(h);
            }
            self.layouts.insert(h, decoded);
        }
        for (commit, root, path, layout) in &pointed {
            if let Some(Some(l)) = self.layouts.get(layout) {
                let digest = l.content.digest();
                if digest != *root {
                    self.report.problem(
                        ProblemKind::Corrupt,
                        path.clone(),
                        format!(
                            "names layout {layout}, whose content hash {digest} is not the root {root} of commit {commit}"
                        ),
                    );
                }
            }
        }
        let mut bases = Vec::new();
        let mut deltas = Vec::new();
        for h in &fresh {
            let Some(Some(l)) = self.layouts.get(h) else {
                continue;
            };
            let path = Store::object_path(LAYOUT_KIND, h);
            if !self.bases.contains_key(&l.base) {
                from.entry(l.base).or_insert_with(|| path.clone());
                bases.push(l.base);
            }
            for d in l.deltas.iter().chain(l.folds.iter().map(|f| &f.changes)) {
                if !self.deltas.contains_key(d) {
                    from.entry(*d).or_insert_with(|| path.clone());
                    deltas.push(*d);
                }
            }
        }
        bases.sort();
        bases.dedup();
        deltas.sort();
        deltas.dedup();
        let mut packs: Vec<Hash> = Vec::new();
        for (h, got) in self.fetch(BASE_KIND, bases).await? {
            let origin = from.get(&h).cloned().unwrap_or_default();
            let path = Store::object_path(BASE_KIND, &h);
            let decoded = match got {
                Ok(b) => {
                    self.report.bases += 1;
                    match Base::decode(&b, &path) {
                        Ok(base) => {
                            for c in &base.chunks {
                                from.entry(c.pack).or_insert_with(|| path.clone());
                                packs.push(c.pack);
                            }
                            Some(Arc::new(base))
                        }
                        Err(e) => {
                            self.report
                                .problem(ProblemKind::Corrupt, path, e.to_string());
                            None
                        }
                    }
                }
                Err(b) => {
                    self.bad(BASE_KIND, &h, b, &origin);
                    None
                }
            };
            self.bases.insert(h, decoded);
        }
        for (h, got) in self.fetch(DELTA_KIND, deltas).await? {
            let origin = from.get(&h).cloned().unwrap_or_default();
            let path = Store::object_path(DELTA_KIND, &h);
            let decoded = match got {
                Ok(b) => {
                    self.report.deltas += 1;
                    match Delta::decode(&b, &path) {
                        Ok(delta) => {
                            if let Some(p) = delta.pack {
                                from.entry(p).or_insert_with(|| path.clone());
                                packs.push(p);
                            }
                            Some(Arc::new(delta))
                        }
                        Err(e) => {
                            self.report
                                .problem(ProblemKind::Corrupt, path, e.to_string());
                            None
                        }
                    }
                }
                Err(b) => {
                    self.bad(DELTA_KIND, &h, b, &origin);
                    None
                }
            };
            self.deltas.insert(h, decoded);
        }
        // a layout's base and deltas hold the rows it counts
        for h in fresh {
            let Some(Some(l)) = self.layouts.get(&h) else {
                continue;
            };
            let Some(Some(base)) = self.bases.get(&l.base) else {
                continue;
            };
            let Some(deltas) = l
                .deltas
                .iter()
                .map(|d| self.deltas.get(d).cloned().flatten())
                .collect::<Option<Vec<_>>>()
            else {
                continue;
            };
            let rows = l.rows;
            let view = View::new(h, (**l).clone(), base.clone(), deltas);
            let held: u64 = view.parts().iter().map(|(_, loc)| loc.rows).sum();
            if held != rows {
                self.report.problem(
                    ProblemKind::Corrupt,
                    Store::object_path(LAYOUT_KIND, &h),
                    format!("counts {rows} rows, but its base and deltas hold {held}"),
                );
            }
        }
        packs.sort();
        packs.dedup();
        for (h, got) in self.fetch_packs(packs).await? {
            match got {
                Ok((b, actual)) => self.check_pack(&h, Some(&b), &actual).await?,
                Err(b) => {
                    let origin = from.get(&h).cloned().unwrap_or_default();
                    self.bad(PACK_KIND, &h, b, &origin)
                }
            }
        }
        Ok(())
    }
}
