//! Write transactions: append, upsert and delete by key, ending as one commit.
//!
//! Edits are kept per label group (the unit of hashing and copy-on-write): the first time a
//! transaction touches a group it reads the group's rows from the base version, and from
//! then on holds the group's complete new rows. `commit` applies the changed groups to the
//! snapshot tree, writes the rows of the tree's new leaves into one new pack, writes the
//! new nodes and the commit, and moves the branch by compare-and-swap. If another writer
//! moved the branch meanwhile, the transaction rebases when the other commit changed
//! different groups, and fails with [`CoreError::Conflict`] naming the groups otherwise.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch};
use arrow::compute::{concat_batches, lexsort_to_indices, take_record_batch, SortColumn};
use quiver_tree::{ColumnStats, Hash, Key};

use crate::dataset::{BranchHead, Dataset};
use crate::encoding::{self, GroupHasher};
use crate::error::{CoreError, Result};
use crate::model::{Commit, OperationSummary, VersionSpec};
use crate::storage::build::{self, BaseBuilder};

/// The new rows of a group (sorted by label key) with their hash and statistics.
#[derive(Clone, Debug)]
struct GroupRows {
    batch: RecordBatch,
    hash: Hash,
    stats: Vec<ColumnStats>,
}

#[derive(Clone, Debug)]
struct GroupState {
    /// Rows in the transaction's base version (None = group absent there).
    base: Option<RecordBatch>,
    base_hash: Option<Hash>,
    /// Rows after the transaction's edits (None = deleted).
    current: Option<GroupRows>,
}

/// Deltas on a branch head past which a commit starts an OPTIMIZE in the background.
pub const AUTO_OPTIMIZE_DELTAS: usize = 64;

/// Branches (store URL, dataset, branch) with a background OPTIMIZE running.
static OPTIMIZING: std::sync::LazyLock<std::sync::Mutex<std::collections::HashSet<String>>> =
    std::sync::LazyLock::new(Default::default);

/// A run of rows of one group in a sorted batch: (group key, offset, length).
type Run = (Key, usize, usize);

/// How rows given to a write combine with existing labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// New labels only: an existing (group, label) key is an error.
    Append,
    /// Insert or replace labels by key.
    Upsert,
}

/// An open write transaction on a branch.
pub struct WriteTxn {
    ds: Dataset,
    branch: String,
    base: BranchHead,
    groups: BTreeMap<Key, GroupState>,
    ops: BTreeSet<&'static str>,
    author: String,
    extra_parents: Vec<Hash>,
    /// Bytes written by the last successful commit (packs, nodes, commit object).
    pub bytes_written: u64,
    /// The dataset is being created: committing publishes it (creates its main branch).
    creating: bool,
    /// A layout built outside the group states (a bulk import into an empty version),
    /// with the bytes written for it and its summary: committed as is.
    prebuilt: Option<(crate::storage::Layout, u64, OperationSummary)>,
    /// Whether a commit that finds the branch moved rebases over disjoint changes (else it
    /// fails with a conflict).
    rebase: bool,
    /// The commit is the result of a merge: allowed on a protected branch, judged by the
    /// branch's pre-merge checks ([`crate::branch_settings`]).
    merge: bool,
    /// The schema registry's rules for written rows, read at the first write (inner None:
    /// the dataset has no schema version, nothing to enforce).
    registry: Option<Option<crate::schema_registry::RegistryCheck>>,
}

impl WriteTxn {
    pub(crate) fn new(ds: Dataset, branch: String, base: BranchHead) -> Self {
        let author = ds.author();
        WriteTxn {
            ds,
            branch,
            base,
            groups: BTreeMap::new(),
            ops: BTreeSet::new(),
            author,
            extra_parents: Vec::new(),
            bytes_written: 0,
            creating: false,
            prebuilt: None,
            rebase: true,
            merge: false,
            registry: None,
        }
    }

    /// A transaction on `main` of a dataset being created, based on its initial commit.
    pub(crate) fn creating(ds: Dataset, initial: Commit) -> Self {
        let base = crate::dataset::BranchHead {
            seq: 0,
            commit: initial,
        };
        let mut t = Self::new(ds, crate::DEFAULT_BRANCH.to_string(), base);
        t.creating = true;
        t
    }

    /// Set the commit author.
    pub fn author(mut self, author: &str) -> Self {
        self.author = author.to_string();
        self
    }

    /// The dataset this transaction writes to.
    pub fn dataset(&self) -> &Dataset {
        &self.ds
    }

    /// The commit this transaction started from.
    pub fn base_commit(&self) -> &Commit {
        &self.base.commit
    }

    /// Fail the commit with a conflict if the branch moved since the transaction began,
    /// instead of rebasing over disjoint changes (a reset must land exactly where it was
    /// computed).
    pub(crate) fn no_rebase(&mut self) {
        self.rebase = false;
    }

    /// Mark the commit as the result of a merge (see [`crate::branch_settings`]).
    pub(crate) fn as_merge(&mut self) {
        self.merge = true;
    }

    /// Record an additional parent (used by merges).
    pub fn add_parent(&mut self, parent: Hash) {
        self.extra_parents.push(parent);
    }

    /// Number of label groups touched so far.
    pub fn touched_groups(&self) -> usize {
        self.groups.len()
    }

    fn stats_indices(&self) -> Vec<usize> {
        let schema = self.ds.schema();
        self.ds
            .config
            .stats_columns
            .iter()
            .filter_map(|c| schema.index_of(c).ok())
            .collect()
    }

    fn key_indices(&self) -> Result<(usize, usize)> {
        let schema = self.ds.schema();
        let idx = |c: &str| {
            schema.index_of(c).map_err(|_| CoreError::ColumnNotFound {
                dataset: self.ds.name().into(),
                column: c.into(),
            })
        };
        Ok((
            idx(&self.ds.config.group_key)?,
            idx(&self.ds.config.label_key)?,
        ))
    }

    /// Reorder/check a batch against the dataset schema (layouts of the same values only:
    /// every surface converts types before its rows get here, see [`crate::conform`]).
    fn conform(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        crate::conform::conform(
            self.ds.name(),
            &self.ds.schema(),
            batch,
            crate::conform::ConformRules::PLANNED,
        )
    }

    /// Sort by (group, label) and split into runs of one group: (key, offset, len).
    fn runs(
        &self,
        batch: &RecordBatch,
        gi: usize,
        li: Option<usize>,
    ) -> Result<(RecordBatch, Vec<Run>)> {
        let mut sort = vec![SortColumn {
            values: batch.column(gi).clone(),
            options: None,
        }];
        if let Some(li) = li {
            sort.push(SortColumn {
                values: batch.column(li).clone(),
                options: None,
            });
        }
        let idx = lexsort_to_indices(&sort, None)?;
        let sorted = take_record_batch(batch, &idx)?;
        let g = sorted.column(gi);
        let group_col = &self.ds.config.group_key;
        let mut runs: Vec<(Key, usize, usize)> = Vec::new();
        for row in 0..sorted.num_rows() {
            let k = encoding::key_bytes(g.as_ref(), row)
                .ok_or_else(|| self.null_or_type(g, group_col))?;
            match runs.last_mut() {
                Some(last) if last.0 == k => last.2 += 1,
                _ => runs.push((k, row, 1)),
            }
        }
        Ok((sorted, runs))
    }

    fn null_or_type(&self, col: &ArrayRef, name: &str) -> CoreError {
        if encoding::is_key_type(col.data_type()) {
            CoreError::NullKey {
                dataset: self.ds.name().into(),
                column: name.into(),
            }
        } else {
            CoreError::UnsupportedKeyType {
                dataset: self.ds.name().into(),
                column: name.into(),
                data_type: col.data_type().to_string(),
            }
        }
    }

    fn display_key(&self, col: usize, key: &[u8]) -> String {
        encoding::key_display(self.ds.schema().field(col).data_type(), key)
    }

    /// Load the base rows of groups not yet touched by this transaction.
    async fn load_base(&mut self, keys: Vec<Key>) -> Result<()> {
        let missing: BTreeSet<Key> = keys
            .into_iter()
            .filter(|k| !self.groups.contains_key(k))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let snap = self.ds.snapshot(self.base.commit.clone());
        let mut found = if snap.summary().await?.groups == 0 {
            BTreeMap::new()
        } else {
            snap.read_groups(&missing).await?
        };
        self.preload_base(missing.into_iter().map(|k| {
            let rows = found.remove(&k);
            (k, rows)
        }));
        Ok(())
    }

    /// Take `rows` as the base version's rows of these groups (None = absent) instead of
    /// reading them, for callers that read them already (a merge). Groups this transaction
    /// touched keep their state.
    pub(crate) fn preload_base(
        &mut self,
        rows: impl IntoIterator<Item = (Key, Option<RecordBatch>)>,
    ) {
        for (k, base) in rows {
            if self.groups.contains_key(&k) {
                continue;
            }
            let current = base
                .as_ref()
                .map(|b| self.group_rows(b.clone(), 0, b.num_rows()));
            // the canonical hash of the base rows is the one `group_rows` computed
            let base_hash = current.as_ref().map(|c| c.hash);
            self.groups.insert(
                k,
                GroupState {
                    base,
                    base_hash,
                    current,
                },
            );
        }
    }

    fn group_rows(&self, batch: RecordBatch, offset: usize, len: usize) -> GroupRows {
        let hash = GroupHasher::for_batch(&batch).hash(offset, len);
        let stats = self
            .stats_indices()
            .iter()
            .map(|&i| encoding::column_stats(batch.column(i).as_ref(), offset, len))
            .collect();
        GroupRows {
            batch: batch.slice(offset, len),
            hash,
            stats,
        }
    }

    /// Insert new labels; an existing (group, label) key is an error and nothing changes.
    pub async fn append(&mut self, batch: &RecordBatch) -> Result<()> {
        self.write(batch, WriteMode::Append).await
    }

    /// Insert or replace labels by (group, label) key.
    pub async fn upsert(&mut self, batch: &RecordBatch) -> Result<()> {
        self.write(batch, WriteMode::Upsert).await
    }

    /// Write rows with the given mode.
    pub async fn write(&mut self, batch: &RecordBatch, mode: WriteMode) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let batch = self.conform(batch)?;
        if self.registry.is_none() {
            self.registry = Some(self.ds.registry_check().await?);
        }
        if let Some(Some(rules)) = &self.registry {
            rules.check(&batch)?;
        }
        let (gi, li) = self.key_indices()?;
        let (sorted, runs) = self.runs(&batch, gi, Some(li))?;
        // duplicate keys within the input
        let lcol = sorted.column(li);
        let mut label_keys = Vec::with_capacity(sorted.num_rows());
        for row in 0..sorted.num_rows() {
            label_keys.push(
                encoding::key_bytes(lcol.as_ref(), row)
                    .ok_or_else(|| self.null_or_type(lcol, &self.ds.config.label_key))?,
            );
        }
        for (k, off, len) in &runs {
            for r in *off + 1..*off + *len {
                if label_keys[r] == label_keys[r - 1] {
                    return Err(CoreError::DuplicateKey {
                        dataset: self.ds.name().into(),
                        group: self.display_key(gi, k),
                        label: self.display_key(li, &label_keys[r]),
                        reason: "the key appears twice in the rows written".into(),
                    });
                }
            }
        }
        self.load_base(runs.iter().map(|r| r.0.clone()).collect())
            .await?;
        // compute all new states first so that an error changes nothing
        let mut updates = Vec::with_capacity(runs.len());
        for (k, off, len) in runs {
            let state = self
                .groups
                .get(&k)
                .ok_or_else(|| CoreError::Join("group state missing".into()))?;
            let new_rows = match &state.current {
                None => self.group_rows(sorted.clone(), off, len),
                Some(cur) => {
                    let cur_keys: Vec<Key> = (0..cur.batch.num_rows())
                        .filter_map(|r| encoding::key_bytes(cur.batch.column(li).as_ref(), r))
                        .collect();
                    if mode == WriteMode::Append {
                        let existing: BTreeSet<&Key> = cur_keys.iter().collect();
                        if let Some(dup) = label_keys[off..off + len]
                            .iter()
                            .find(|lk| existing.contains(lk))
                        {
                            return Err(CoreError::DuplicateKey {
                                dataset: self.ds.name().into(),
                                group: self.display_key(gi, &k),
                                label: self.display_key(li, dup),
                                reason: "the label already exists (use upsert to replace it)"
                                    .into(),
                            });
                        }
                    }
                    let merged = merge_rows(
                        &cur.batch,
                        &cur_keys,
                        &sorted.slice(off, len),
                        &label_keys[off..off + len],
                    )?;
                    self.group_rows(merged.clone(), 0, merged.num_rows())
                }
            };
            updates.push((k, new_rows));
        }
        for (k, rows) in updates {
            if let Some(st) = self.groups.get_mut(&k) {
                st.current = Some(rows);
            }
        }
        self.ops.insert(match mode {
            WriteMode::Append => "append",
            WriteMode::Upsert => "upsert",
        });
        Ok(())
    }

    /// Delete labels by key. `keys` holds the group key column and, optionally, the label
    /// key column: with it, the named labels are deleted; without it, whole groups are.
    /// Keys that do not exist are ignored.
    pub async fn delete(&mut self, keys: &RecordBatch) -> Result<()> {
        if keys.num_rows() == 0 {
            return Ok(());
        }
        let gname = self.ds.config.group_key.clone();
        let lname = self.ds.config.label_key.clone();
        let schema = keys.schema();
        let gi = schema
            .index_of(&gname)
            .map_err(|_| CoreError::ColumnNotFound {
                dataset: self.ds.name().into(),
                column: gname.clone(),
            })?;
        let li = schema.index_of(&lname).ok();
        let ds_schema = self.ds.schema();
        let (dgi, dli) = self.key_indices()?;
        for (i, di, n) in [(Some(gi), dgi, &gname), (li, dli, &lname)] {
            if let Some(i) = i {
                let want = ds_schema.field(di).data_type();
                if schema.field(i).data_type() != want {
                    return Err(CoreError::SchemaMismatch {
                        dataset: self.ds.name().into(),
                        reason: format!(
                            "key column '{n}' has type {} but the dataset expects {want}",
                            schema.field(i).data_type()
                        ),
                    });
                }
            }
        }
        let (sorted, runs) = self.runs(keys, gi, li)?;
        self.load_base(runs.iter().map(|r| r.0.clone()).collect())
            .await?;
        let mut updates = Vec::new();
        for (k, off, len) in runs {
            let Some(state) = self.groups.get(&k) else {
                continue;
            };
            let Some(cur) = &state.current else { continue };
            let new = match li {
                None => None,
                Some(li) => {
                    let del: BTreeSet<Key> = (off..off + len)
                        .filter_map(|r| encoding::key_bytes(sorted.column(li).as_ref(), r))
                        .collect();
                    let keep: Vec<u32> = (0..cur.batch.num_rows())
                        .filter(|&r| {
                            encoding::key_bytes(cur.batch.column(dli).as_ref(), r)
                                .is_none_or(|lk| !del.contains(&lk))
                        })
                        .map(|r| r as u32)
                        .collect();
                    if keep.is_empty() {
                        None
                    } else if keep.len() == cur.batch.num_rows() {
                        continue;
                    } else {
                        let idx = arrow::array::UInt32Array::from(keep);
                        let b = take_record_batch(&cur.batch, &idx)?;
                        Some(self.group_rows(b.clone(), 0, b.num_rows()))
                    }
                }
            };
            updates.push((k, new));
        }
        for (k, rows) in updates {
            if let Some(st) = self.groups.get_mut(&k) {
                st.current = rows;
            }
        }
        self.ops.insert("delete");
        Ok(())
    }

    /// Replace whole groups: each key gets exactly the given rows (sorted or not), or is
    /// deleted with `None`. Used by merges and conflict resolution.
    pub async fn replace_groups(&mut self, groups: Vec<(Key, Option<RecordBatch>)>) -> Result<()> {
        self.load_base(groups.iter().map(|g| g.0.clone()).collect())
            .await?;
        let (_, li) = self.key_indices()?;
        let mut updates = Vec::with_capacity(groups.len());
        for (k, rows) in groups {
            let new = match rows {
                Some(b) if b.num_rows() > 0 => {
                    let b = self.conform(&b)?;
                    let idx = lexsort_to_indices(
                        &[SortColumn {
                            values: b.column(li).clone(),
                            options: None,
                        }],
                        None,
                    )?;
                    let sorted = take_record_batch(&b, &idx)?;
                    Some(self.group_rows(sorted.clone(), 0, sorted.num_rows()))
                }
                _ => None,
            };
            updates.push((k, new));
        }
        for (k, rows) in updates {
            if let Some(st) = self.groups.get_mut(&k) {
                st.current = rows;
            }
        }
        Ok(())
    }

    /// Rows of the given groups as this transaction sees them (None = absent).
    pub async fn group(&mut self, key: &Key) -> Result<Option<RecordBatch>> {
        self.load_base(vec![key.clone()]).await?;
        Ok(self
            .groups
            .get(key)
            .and_then(|s| s.current.as_ref().map(|c| c.batch.clone())))
    }

    /// Throw every edit away.
    pub fn rollback(self) {}

    fn summary(&self) -> Result<OperationSummary> {
        let (_, li) = self.key_indices()?;
        let mut s = OperationSummary {
            operation: match self.ops.len() {
                0 => "noop".to_string(),
                1 => self
                    .ops
                    .iter()
                    .next()
                    .map(|s| s.to_string())
                    .unwrap_or_default(),
                _ => "write".to_string(),
            },
            ..Default::default()
        };
        for st in self.groups.values() {
            match (&st.base, &st.current) {
                (None, None) => {}
                (None, Some(c)) => {
                    s.groups_added += 1;
                    s.labels_added += c.batch.num_rows() as u64;
                }
                (Some(b), None) => {
                    s.groups_removed += 1;
                    s.labels_removed += b.num_rows() as u64;
                }
                (Some(b), Some(c)) => {
                    if Some(c.hash) == st.base_hash {
                        continue;
                    }
                    s.groups_modified += 1;
                    let (a, r, m) = label_delta(b, &c.batch, li);
                    s.labels_added += a;
                    s.labels_removed += r;
                    s.labels_modified += m;
                }
            }
        }
        Ok(s)
    }

    /// Set the operation name recorded in the summary (e.g. "import", "merge").
    pub fn set_operation(&mut self, op: &'static str) {
        self.ops.clear();
        self.ops.insert(op);
    }

    /// Commit the edits as one commit on the branch (rebasing over concurrent commits that
    /// touched other groups). With no effective change, returns the current head and writes nothing.
    pub async fn commit(&mut self, message: &str) -> Result<Commit> {
        // announced to gc from before the first put until the ref moved (crate::lease)
        let lease = self.ds.catalog.write_lease("commit").await?;
        let res = self.commit_leased(message).await;
        lease.release().await;
        if let Ok(c) = &res {
            self.maybe_optimize(c).await;
        }
        res
    }

    /// Past [`AUTO_OPTIMIZE_DELTAS`] deltas on the new head, fold them in the background
    /// (an OPTIMIZE that fails or is cut short leaves only garbage; the next commit
    /// past the threshold tries again). `QUIVER_AUTO_OPTIMIZE=0` turns it off.
    async fn maybe_optimize(&self, head: &Commit) {
        if std::env::var("QUIVER_AUTO_OPTIMIZE").is_ok_and(|v| v == "0") {
            return;
        }
        // the layout and its deltas (kilobytes), not the folded view: that would decode
        // the base record and build every scan partition on each commit
        let snap = self.ds.snapshot(head.clone());
        let Ok(layered) = snap.layered().await else {
            return;
        };
        if layered.deltas.len() < AUTO_OPTIMIZE_DELTAS {
            return;
        }
        // one background OPTIMIZE per branch at a time: commits landing while it runs
        // would otherwise each start another over the same deltas
        let key = format!("{}#{}", self.ds.fold_scope(), self.branch);
        let claimed = OPTIMIZING.lock().map(|mut s| s.insert(key.clone()));
        if !matches!(claimed, Ok(true)) {
            return;
        }
        let (ds, branch) = (self.ds.clone(), self.branch.clone());
        tokio::spawn(async move {
            loop {
                let folded = ds.auto_optimize(&branch).await.is_ok();
                // release first, then look: a commit landing after the release starts its
                // own fold; one that landed before it (and found the claim taken) is seen
                if let Ok(mut s) = OPTIMIZING.lock() {
                    s.remove(&key);
                }
                if !folded {
                    return;
                }
                let Ok(head) = ds.head(&branch).await else {
                    return;
                };
                let past = head
                    .layered()
                    .await
                    .is_ok_and(|l| l.deltas.len() >= AUTO_OPTIMIZE_DELTAS);
                let reclaimed = past && OPTIMIZING.lock().is_ok_and(|mut s| s.insert(key.clone()));
                if !reclaimed {
                    return;
                }
            }
        });
    }

    /// Commit `layout` (built by the caller over this transaction's empty base version,
    /// e.g. by a bulk import) instead of the transaction's group edits.
    pub(crate) fn set_prebuilt(
        &mut self,
        layout: crate::storage::Layout,
        bytes: u64,
        summary: OperationSummary,
    ) {
        self.groups.clear();
        self.prebuilt = Some((layout, bytes, summary));
    }

    async fn commit_leased(&mut self, message: &str) -> Result<Commit> {
        let summary = match &self.prebuilt {
            Some((_, _, s)) => s.clone(),
            None => self.summary()?,
        };
        let changed: BTreeMap<Key, Option<GroupRows>> = self
            .groups
            .iter()
            .filter(|(_, st)| st.current.as_ref().map(|c| c.hash) != st.base_hash)
            .map(|(k, st)| (k.clone(), st.current.clone()))
            .collect();
        if self.creating {
            return self.commit_creation(&changed, message, summary).await;
        }
        if changed.is_empty() && self.extra_parents.is_empty() && self.prebuilt.is_none() {
            return Ok(self.base.commit.clone());
        }
        // the commit point of every write: a protected branch takes merges only, and a
        // merge result must pass the branch's checks before the branch moves to it
        let settings = self.ds.read_settings(&self.branch).await?;
        if settings.protected && !self.merge {
            return Err(CoreError::ProtectedBranch {
                dataset: self.ds.name().into(),
                branch: self.branch.clone(),
                operation: format!("a direct write ({})", summary.operation),
            });
        }
        let mut base = self.base.clone();
        loop {
            let (commit, bytes) = self
                .try_commit(&base, &changed, message, summary.clone())
                .await?;
            if self.merge {
                self.ds
                    .run_branch_checks(&self.branch, &settings.checks, &commit)
                    .await?;
            }
            match self
                .ds
                .move_branch(
                    &self.branch,
                    base.seq,
                    commit.id,
                    &self.author,
                    &format!("commit: {message}"),
                )
                .await?
            {
                Ok(seq) => {
                    self.bytes_written = bytes;
                    self.base = crate::dataset::BranchHead {
                        seq,
                        commit: commit.clone(),
                    };
                    self.groups.clear();
                    self.prebuilt = None;
                    return Ok(commit);
                }
                Err(()) if self.prebuilt.is_some() => {
                    return Err(CoreError::Conflict {
                        dataset: self.ds.name().into(),
                        branch: self.branch.clone(),
                        keys: "(the branch moved during a bulk load; run it again)".into(),
                    });
                }
                Err(()) if !self.rebase => {
                    return Err(CoreError::Conflict {
                        dataset: self.ds.name().into(),
                        branch: self.branch.clone(),
                        keys: "(the branch moved while the commit was made; run it again)".into(),
                    });
                }
                Err(()) => {
                    // someone else moved the branch: rebase if disjoint
                    let head = self.ds.branch_head(&self.branch).await?;
                    let theirs = self
                        .ds
                        .snapshot(base.commit.clone())
                        .diff(&self.ds.snapshot(head.commit.clone()))
                        .await?;
                    let overlap: Vec<String> = theirs
                        .iter()
                        .filter(|c| changed.contains_key(&c.key))
                        .take(20)
                        .map(|c| {
                            self.display_key(self.key_indices().map(|k| k.0).unwrap_or(0), &c.key)
                        })
                        .collect();
                    if !overlap.is_empty() {
                        return Err(CoreError::Conflict {
                            dataset: self.ds.name().into(),
                            branch: self.branch.clone(),
                            keys: overlap.join(", "),
                        });
                    }
                    base = head;
                }
            }
        }
    }

    /// Commit the first data of a dataset being created and publish the dataset: nothing
    /// is visible before its main branch is created, here, last.
    async fn commit_creation(
        &mut self,
        changed: &BTreeMap<Key, Option<GroupRows>>,
        message: &str,
        summary: OperationSummary,
    ) -> Result<Commit> {
        let base = self.base.clone();
        let (commit, bytes) =
            if changed.is_empty() && self.extra_parents.is_empty() && self.prebuilt.is_none() {
                (base.commit.clone(), 0)
            } else {
                self.try_commit(&base, changed, message, summary).await?
            };
        let seq = self.ds.publish(&commit, &self.author).await?;
        self.creating = false;
        self.bytes_written = bytes;
        self.base = crate::dataset::BranchHead {
            seq,
            commit: commit.clone(),
        };
        self.groups.clear();
        self.prebuilt = None;
        Ok(commit)
    }

    async fn try_commit(
        &self,
        base: &BranchHead,
        changed: &BTreeMap<Key, Option<GroupRows>>,
        message: &str,
        summary: OperationSummary,
    ) -> Result<(Commit, u64)> {
        let ds = &self.ds;
        let mut parents = vec![base.commit.id];
        parents.extend(self.extra_parents.iter().copied());
        if let Some((layout, bytes, _)) = &self.prebuilt {
            let (commit, b, _) = ds
                .write_version(layout, parents, &self.author, message, summary)
                .await?;
            return Ok((commit, bytes + b));
        }
        let snap = ds.snapshot(base.commit.clone());
        let view = snap.view().await?;
        let bulk = view.layout.rows == 0
            && view.deltas.is_empty()
            && !changed.is_empty()
            && changed.values().all(|v| v.is_some());
        let (layout, bytes, delta) = if bulk {
            let (layout, bytes) = self.bulk_layout(changed).await?;
            (layout, bytes, None)
        } else {
            self.delta_layout(&snap, &view, changed).await?
        };
        let (commit, b, lh) = ds
            .write_version(&layout, parents, &self.author, message, summary)
            .await?;
        if let Some(delta) = delta {
            remember_next_view(&view, &layout, lh, delta, ds.name())?;
        }
        Ok((commit, bytes + b))
    }

    /// A first load into an empty version: the groups become base chunks directly.
    async fn bulk_layout(
        &self,
        changed: &BTreeMap<Key, Option<GroupRows>>,
    ) -> Result<(crate::storage::Layout, u64)> {
        let ds = &self.ds;
        let (gi, _) = self.key_indices()?;
        let mut builder = BaseBuilder::new(
            ds.store().clone(),
            ds.schema(),
            self.stats_indices(),
            ds.config.chunk_groups,
        );
        let mut parts: Vec<RecordBatch> = Vec::new();
        let mut hashes: Vec<Hash> = Vec::new();
        let mut rows = 0usize;
        let flush = |parts: &mut Vec<RecordBatch>, hashes: &mut Vec<Hash>| -> Result<_> {
            let batch = concat_batches(&ds.schema(), parts.iter())?;
            parts.clear();
            let runs = build::group_runs(&batch, gi).ok_or_else(|| CoreError::NullKey {
                dataset: ds.name().into(),
                column: ds.config.group_key.clone(),
            })?;
            Ok((batch, runs, std::mem::take(hashes)))
        };
        for g in changed.values().flatten() {
            rows += g.batch.num_rows();
            parts.push(g.batch.clone());
            hashes.push(g.hash);
            if rows >= 64 * 1024 {
                let (batch, runs, hs) = flush(&mut parts, &mut hashes)?;
                builder.push(&batch, &runs, &hs).await?;
                rows = 0;
            }
        }
        if !parts.is_empty() {
            let (batch, runs, hs) = flush(&mut parts, &mut hashes)?;
            builder.push(&batch, &runs, &hs).await?;
        }
        builder.finish_layout().await
    }

    /// A delta over the base version's layout: one small pack with the new rows of the
    /// changed groups and a record of where their old rows were.
    async fn delta_layout(
        &self,
        snap: &crate::Snapshot,
        view: &crate::storage::View,
        changed: &BTreeMap<Key, Option<GroupRows>>,
    ) -> Result<(
        crate::storage::Layout,
        u64,
        Option<Arc<crate::storage::Delta>>,
    )> {
        use crate::storage::{Delta, DeltaEntry, GroupRef};
        let ds = &self.ds;
        let mut layout = view.layout.clone();
        if changed.is_empty() {
            return Ok((layout, 0, None));
        }
        let keys: BTreeSet<Key> = changed.keys().cloned().collect();
        // where the old rows are in the version this commit is based on (re-read on every
        // attempt: a rebase may land on another layout)
        let found = snap.find(&keys).await?;
        let mut batches = Vec::new();
        let mut stats = Vec::new();
        let mut entries = Vec::with_capacity(changed.len());
        // copies of the old rows this transaction read, written after the new rows
        let mut befores: Vec<(usize, RecordBatch)> = Vec::new();
        let schema = ds.schema();
        let mut row = 0u64;
        let old_hash = |k: &Key| self.groups.get(k).and_then(|st| st.base_hash);
        for (k, new) in changed {
            let old = match found.get(k) {
                Some((at, rows, h)) => {
                    let hash = h
                        .or_else(|| old_hash(k))
                        .ok_or_else(|| CoreError::Corrupt {
                            what: format!("dataset '{}'", ds.name()),
                            reason: format!("no hash for the old rows of group {}", hex::encode(k)),
                        })?;
                    Some(GroupRef {
                        hash,
                        at: *at,
                        rows: *rows,
                    })
                }
                None => None,
            };
            if let Some(o) = &old {
                layout.content.remove(&o.hash);
                layout.rows -= o.rows;
                layout.groups -= 1;
            }
            // the rows read at the start of the transaction are a faithful copy only when
            // they are still the old rows here (a rebase may have moved past them)
            let copy = old.and_then(|o| {
                let st = self.groups.get(k)?;
                let b = st.base.as_ref()?;
                (st.base_hash == Some(o.hash)
                    && b.num_rows() as u64 == o.rows
                    && b.schema().fields() == schema.fields())
                .then(|| b.clone())
            });
            if let Some(b) = copy {
                befores.push((entries.len(), b));
            }
            let new = match new {
                Some(g) => {
                    let n = g.batch.num_rows() as u64;
                    layout.content.add(&g.hash);
                    layout.rows += n;
                    layout.groups += 1;
                    crate::storage::format::merge_stats(&mut stats, &g.stats, batches.is_empty());
                    batches.push(g.batch.clone());
                    let r = GroupRef {
                        hash: g.hash,
                        at: crate::storage::view::at(Hash([0; 32]), row),
                        rows: n,
                    };
                    row += n;
                    Some(r)
                }
                None => None,
            };
            entries.push(DeltaEntry {
                key: k.clone(),
                old,
                new,
                before: None,
            });
        }
        // copies follow the new rows: scans read only `0..row`
        let mut at = row;
        for (i, b) in befores {
            entries[i].before = Some(at);
            at += b.num_rows() as u64;
            batches.push(b);
        }
        let mut bytes = 0;
        let pack = if batches.is_empty() {
            None
        } else {
            let one = concat_batches(&schema, batches.iter())?;
            let (pack, b) =
                build::write_change_pack(ds.store(), &schema, vec![one], &ds.catalog.inner.meta)
                    .await?;
            bytes += b;
            for e in &mut entries {
                if let Some(n) = &mut e.new {
                    n.at.leaf = pack;
                }
            }
            Some(pack)
        };
        let delta = Delta {
            pack,
            rows: row,
            stats,
            entries,
        };
        let encoded = bytes::Bytes::from(delta.encode());
        bytes += encoded.len() as u64;
        let dh = ds
            .store()
            .put_object(crate::storage::format::DELTA_KIND, encoded.clone())
            .await?;
        layout.deltas.push(dh);
        // the delta as a reader decodes it from the bytes written
        let what = format!("delta {dh} of dataset '{}'", ds.name());
        let written = Arc::new(Delta::decode(&encoded, &what)?);
        Ok((layout, bytes, Some(written)))
    }
}

/// Keep the view of a version a commit just wrote: the view it was based on with one more
/// delta, so a diff, a scan or the next commit of that version in this process reads no
/// layout or delta object back (a diff right after a commit took 1.5x its steady time).
/// The layout kept is decoded from its own encoding, as a reader would load it; a layout
/// that is not the base view's plus `delta` (never, today) is left to be loaded.
fn remember_next_view(
    view: &crate::storage::View,
    layout: &crate::storage::Layout,
    id: Hash,
    delta: Arc<crate::storage::Delta>,
    dataset: &str,
) -> Result<()> {
    let n = view.deltas.len();
    let extends = layout.base == view.layout.base
        && view.layout.deltas.len() == n
        && layout.deltas.len() == n + 1
        && layout.deltas[..n] == view.layout.deltas[..];
    if !extends {
        return Ok(());
    }
    let layout = crate::storage::Layout::decode(
        &layout.encode(),
        &format!("layout {id} of dataset '{dataset}'"),
    )?;
    let mut deltas = view.deltas.clone();
    deltas.push(delta);
    crate::storage::view::remember(Arc::new(crate::storage::View::new(
        id,
        layout,
        view.base.clone(),
        deltas,
    )));
    Ok(())
}

/// Merge `new` rows into `cur` by label key (new wins), sorted by label key.
fn merge_rows(
    cur: &RecordBatch,
    cur_keys: &[Key],
    new: &RecordBatch,
    new_keys: &[Key],
) -> Result<RecordBatch> {
    let both = concat_batches(&cur.schema(), [cur, new])?;
    let mut winner: BTreeMap<&Key, u32> = BTreeMap::new();
    for (i, k) in cur_keys.iter().chain(new_keys.iter()).enumerate() {
        winner.insert(k, i as u32);
    }
    let idx = arrow::array::UInt32Array::from(winner.into_values().collect::<Vec<_>>());
    Ok(take_record_batch(&both, &idx)?)
}

/// (added, removed, modified) labels between two versions of one group, either of which
/// may be absent (`None`: the group has no rows there).
pub(crate) fn label_changes(
    old: Option<&RecordBatch>,
    new: Option<&RecordBatch>,
    li: usize,
) -> (u64, u64, u64) {
    match (old, new) {
        (None, None) => (0, 0, 0),
        (None, Some(n)) => (n.num_rows() as u64, 0, 0),
        (Some(o), None) => (0, o.num_rows() as u64, 0),
        (Some(o), Some(n)) => label_delta(o, n, li),
    }
}

/// (added, removed, modified) labels between two versions of one group.
fn label_delta(base: &RecordBatch, cur: &RecordBatch, li: usize) -> (u64, u64, u64) {
    let hashes = |b: &RecordBatch| -> HashMap<Key, Hash> {
        let h = GroupHasher::for_batch(b);
        (0..b.num_rows())
            .filter_map(|r| {
                encoding::key_bytes(b.column(li).as_ref(), r).map(|k| (k, h.hash(r, 1)))
            })
            .collect()
    };
    let (hb, hc) = (hashes(base), hashes(cur));
    let added = hc.keys().filter(|k| !hb.contains_key(*k)).count() as u64;
    let removed = hb.keys().filter(|k| !hc.contains_key(*k)).count() as u64;
    let modified = hc
        .iter()
        .filter(|(k, h)| hb.get(*k).is_some_and(|b| b != *h))
        .count() as u64;
    (added, removed, modified)
}

impl Dataset {
    /// Append rows to a branch as one commit.
    pub async fn append(
        &self,
        branch: &str,
        batches: &[RecordBatch],
        message: &str,
    ) -> Result<Commit> {
        let mut t = self.begin(branch).await?;
        for b in batches {
            t.append(b).await?;
        }
        t.commit(message).await
    }

    /// Upsert rows into a branch as one commit.
    pub async fn upsert(
        &self,
        branch: &str,
        batches: &[RecordBatch],
        message: &str,
    ) -> Result<Commit> {
        let mut t = self.begin(branch).await?;
        for b in batches {
            t.upsert(b).await?;
        }
        t.commit(message).await
    }

    /// Delete labels (or whole groups) by key from a branch as one commit.
    pub async fn delete(&self, branch: &str, keys: &RecordBatch, message: &str) -> Result<Commit> {
        let mut t = self.begin(branch).await?;
        t.delete(keys).await?;
        t.commit(message).await
    }

    /// Open the head of a branch read-only.
    pub async fn head(&self, branch: &str) -> Result<crate::Snapshot> {
        self.checkout(&VersionSpec::Branch(branch.into())).await
    }
}
