//! Erasure: remove the bytes of labels from every version of a dataset without rewriting
//! its history (privacy requests).
//!
//! Commit ids and content hashes are computed from the group hashes recorded in layouts,
//! base chunks and deltas (an LtHash over them), never from pack bytes. So the rows of a
//! pack can be replaced in place — same row count, same order, same key columns, so every
//! layout still addresses them — and every commit id, root and diff stays as it was. What
//! [`Dataset::erase`] does:
//!
//! 1. **Every version.** Collect every pack any version of the dataset uses: the commits of
//!    its listing markers (every commit ever written, until `VACUUM` deletes it), the heads
//!    of its branches and tags and their ancestors; each commit's layout; every layout
//!    object of the catalog with the content of one of those commits (what OPTIMIZE
//!    replaced and readers may still use); their bases' packs and their deltas' change
//!    packs. A change pack holds a commit's new rows *and* the before-image copies of the
//!    rows it replaced: both are erased, since every row of the pack is matched.
//! 2. **Each pack**: read it whole and verify it (its blake3 is its address, or the bytes its
//!    erasure record says it holds now); match the rows ([`RowMatcher`]: keys, or a SQL
//!    predicate the SQL layer evaluates); replace the non-key columns of the matching rows by
//!    erased values ([`values`]); for base packs, keep the recorded group hash of every
//!    erased group in the footer ([`footer`]); encode the pack again with the same writer
//!    settings.
//! 3. **Crash-safe write order**: the erasure record first (`erasures/packs/…`, [`record`]:
//!    naming the bytes the pack holds and the bytes it will hold), then the new bytes at the
//!    *same* object path, then the new sums file. A crash between leaves a pack whose bytes
//!    are the record's earlier state (readers and `fsck` accept it, `fsck` reports the
//!    erasure as unfinished; running it again finishes it) or the new bytes with the old
//!    sums (readers find the sums wrong, read the pack whole and check it against the
//!    record).
//! 4. **Caches** of this process (pack footers, sums, scan plans' pack sizes) are dropped
//!    for the pack. Another process that cached the pack finds out on its next read of it:
//!    the sums it holds do not match, it reads them again, and the read fails once with
//!    [`CoreError::PackRewritten`] ("run the statement again"); its caches of that pack are
//!    dropped and the next read is served from the new bytes.
//! 5. **Twice**: after the first pass, the versions are collected again and packs written
//!    meanwhile (a commit racing the erasure) are erased too, until a pass finds none. A
//!    transaction that read rows before the erasure and commits after its last pass writes
//!    them again: run the erasure again.
//!
//! Erased rows keep their key and their group's recorded hash, so diffs, merges and
//! history between versions work as before; their values read as erased (NULL, or
//! `'<erased>'` and zeros in NOT NULL columns). A pack shared by several datasets (the same
//! bytes written twice) is erased for all of them. Objects no version names (left by
//! crashed writes) are not read: `VACUUM` deletes them once they are older than its
//! retention window.

pub mod footer;
pub mod known;
pub mod record;
pub mod values;

use std::collections::{BTreeMap, BTreeSet, HashSet};

use arrow::array::{Array, BooleanArray, RecordBatch};
use bytes::Bytes;
use chrono::Utc;
use futures::{StreamExt, TryStreamExt};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::metadata::KeyValue;
use quiver_store::StoreError;
use quiver_tree::{Hash, Key};

use crate::dataset::Dataset;
use crate::encoding::{self, GroupHasher};
use crate::error::{CoreError, Result};
use crate::import::{NoProgress, Progress};
use crate::pack_sums::{sums_path, PackSums};
use crate::packs::pack_path;
use crate::storage::format::{Base, Delta, Layout, BASE_KIND, DELTA_KIND, LAYOUT_KIND};

pub use footer::{ErasedGroups, GroupAlias, FOOTER_KEY};
pub use known::{ErasedPacks, ERASED_TTL};
pub use record::{read_record, record_path, ErasureEvent, ErasureRecord, PACK_RECORDS};
pub use values::{erase_rows, erased_values, ERASED_TEXT};

/// Which rows an erasure removes.
#[async_trait::async_trait]
pub trait RowMatcher: Send + Sync {
    /// One flag per row of `batch` (rows of a pack, with the dataset's schema as stored):
    /// true erases the row. NULL counts as false.
    async fn matches(&self, batch: &RecordBatch) -> Result<BooleanArray>;
    /// What was asked for, as recorded (e.g. `WHERE sample_id = 'img-1'`).
    fn describe(&self) -> String;
}

/// Rows named by key: every label of some groups, and some single labels.
#[derive(Debug, Clone)]
pub struct EraseKeys {
    gi: usize,
    li: usize,
    types: (arrow::datatypes::DataType, arrow::datatypes::DataType),
    groups: BTreeSet<Key>,
    labels: BTreeSet<(Key, Key)>,
    shown: Vec<String>,
}

impl EraseKeys {
    /// No keys yet, for `ds`'s key columns.
    pub fn new(ds: &Dataset) -> Result<EraseKeys> {
        let (gi, li) = ds.key_columns()?;
        let schema = ds.schema();
        Ok(EraseKeys {
            gi,
            li,
            types: (
                schema.field(gi).data_type().clone(),
                schema.field(li).data_type().clone(),
            ),
            groups: BTreeSet::new(),
            labels: BTreeSet::new(),
            shown: Vec::new(),
        })
    }

    /// Every label of group `key` (key bytes, [`crate::encoding::key_bytes`]).
    pub fn group(mut self, key: Key) -> Self {
        self.shown.push(encoding::key_display(&self.types.0, &key));
        self.groups.insert(key);
        self
    }

    /// The label `label` of group `group`.
    pub fn label(mut self, group: Key, label: Key) -> Self {
        self.shown.push(format!(
            "({}, {})",
            encoding::key_display(&self.types.0, &group),
            encoding::key_display(&self.types.1, &label)
        ));
        self.labels.insert((group, label));
        self
    }
}

#[async_trait::async_trait]
impl RowMatcher for EraseKeys {
    async fn matches(&self, batch: &RecordBatch) -> Result<BooleanArray> {
        let (g, l) = (batch.column(self.gi), batch.column(self.li));
        Ok((0..batch.num_rows())
            .map(|r| {
                let Some(gk) = encoding::key_bytes(g.as_ref(), r) else {
                    return Some(false);
                };
                if self.groups.contains(&gk) {
                    return Some(true);
                }
                let hit = !self.labels.is_empty()
                    && encoding::key_bytes(l.as_ref(), r)
                        .is_some_and(|lk| self.labels.contains(&(gk, lk)));
                Some(hit)
            })
            .collect())
    }

    fn describe(&self) -> String {
        format!("keys {}", self.shown.join(", "))
    }
}

/// What an erasure did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EraseReport {
    /// The erasure's id (shared by the records of every pack it rewrote).
    pub id: String,
    /// Commits whose versions were searched.
    pub versions: u64,
    /// Packs read.
    pub packs_scanned: u64,
    /// Packs rewritten (they held matching rows).
    pub packs_rewritten: u64,
    /// Rows erased, counting every copy (a label kept in several packs counts in each).
    pub rows_erased: u64,
    /// Distinct (group, label) keys erased.
    pub labels_erased: u64,
    /// Bytes written (packs, sums, records).
    pub bytes_written: u64,
}

/// A pack some version uses, and whether a base chunk names it.
#[derive(Debug, Clone, Copy, Default)]
struct PackUse {
    base: bool,
}

/// What erasing one pack did.
struct PackOutcome {
    rows: u64,
    labels: Vec<(String, String)>,
    bytes: u64,
}

/// Fields of the event every rewritten pack records.
struct EventInfo<'a> {
    id: String,
    author: String,
    reason: &'a str,
    filter: String,
}

/// Erasures of a dataset as the `quiver.erasures` table lists them: one per (erasure,
/// label), with the number of packs it was erased from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErasedLabel {
    pub dataset: String,
    pub id: String,
    pub group: String,
    pub label: String,
    pub time: chrono::DateTime<Utc>,
    pub author: String,
    pub reason: String,
    pub filter: String,
    pub packs: u64,
}

impl Dataset {
    /// The indices of the group key and label key columns.
    pub(crate) fn key_columns(&self) -> Result<(usize, usize)> {
        let find = |c: &str| {
            self.schema
                .index_of(c)
                .map_err(|_| CoreError::ColumnNotFound {
                    dataset: self.name().into(),
                    column: c.into(),
                })
        };
        Ok((find(&self.config.group_key)?, find(&self.config.label_key)?))
    }

    /// Erase the rows `rows` matches from every version of the dataset (see the module
    /// docs); `reason` is recorded.
    pub async fn erase(&self, rows: &dyn RowMatcher, reason: &str) -> Result<EraseReport> {
        self.erase_with(rows, reason, &NoProgress).await
    }

    /// [`Dataset::erase`] reporting progress (one unit per pack).
    pub async fn erase_with(
        &self,
        rows: &dyn RowMatcher,
        reason: &str,
        progress: &dyn Progress,
    ) -> Result<EraseReport> {
        let lease = self.catalog.write_lease("erase").await?;
        let res = self.erase_leased(rows, reason, progress).await;
        lease.release().await;
        progress.finish();
        res
    }

    async fn erase_leased(
        &self,
        rows: &dyn RowMatcher,
        reason: &str,
        progress: &dyn Progress,
    ) -> Result<EraseReport> {
        let id = Hash::of(format!("{}\0{}", self.name(), crate::lease::unique_id()).as_bytes())
            .to_hex()[..16]
            .to_string();
        let ev = EventInfo {
            id: id.clone(),
            author: self.author(),
            reason,
            filter: rows.describe(),
        };
        let mut report = EraseReport {
            id,
            ..Default::default()
        };
        let mut done: HashSet<Hash> = HashSet::new();
        let mut labels: BTreeSet<(String, String)> = BTreeSet::new();
        // until a pass finds no pack it has not seen (commits racing the erasure)
        for pass in 0..8 {
            progress.phase(
                if pass == 0 {
                    "finding every version"
                } else {
                    "looking for new versions"
                },
                None,
            );
            let (versions, packs) = self.packs_of_every_version().await?;
            report.versions = report.versions.max(versions);
            let todo: Vec<(Hash, PackUse)> = packs
                .into_iter()
                .filter(|(p, _)| !done.contains(p))
                .collect();
            if todo.is_empty() {
                break;
            }
            progress.phase("erasing packs", Some(todo.len() as u64));
            for (pack, used) in todo {
                done.insert(pack);
                report.packs_scanned += 1;
                if let Some(o) = self.erase_pack(pack, used, rows, &ev).await? {
                    report.packs_rewritten += 1;
                    report.rows_erased += o.rows;
                    report.bytes_written += o.bytes;
                    labels.extend(o.labels);
                }
                progress.advance(1);
            }
        }
        report.labels_erased = labels.len() as u64;
        Ok(report)
    }

    /// Every pack a version of the dataset uses (module docs, step 1), and how many commits
    /// were found.
    async fn packs_of_every_version(&self) -> Result<(u64, BTreeMap<Hash, PackUse>)> {
        let store = self.store().clone();
        let dir = format!("{}commits/", crate::catalog::dataset_dir(self.name()));
        let mut stack: Vec<Hash> = store
            .list(&dir)
            .await?
            .iter()
            .filter_map(|p| p.strip_prefix(&dir).and_then(Hash::from_hex))
            .collect();
        stack.extend(self.branches().await?.iter().map(|r| r.commit));
        stack.extend(self.tags().await?.iter().map(|r| r.commit));
        let mut seen: HashSet<Hash> = HashSet::new();
        let mut roots: HashSet<Hash> = HashSet::new();
        let mut commits: Vec<Hash> = Vec::new();
        while let Some(h) = stack.pop() {
            if !seen.insert(h) {
                continue;
            }
            match self.commit(&h).await {
                Ok(c) => {
                    roots.insert(c.root);
                    stack.extend(c.parents.iter().copied());
                    commits.push(h);
                }
                // a marker whose commit a gc deleted, or an unfinished write's
                Err(CoreError::VersionNotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        // the layouts of those commits, read from their pointers as they are now
        let name = self.name().to_string();
        let pointed: Vec<Option<Hash>> = futures::stream::iter(commits.iter().copied())
            .map(|c| {
                let (store, name) = (store.clone(), name.clone());
                async move {
                    let path = crate::storage::layout_pointer(&name, &c);
                    Ok::<_, CoreError>(store.get_file_opt(&path).await?.and_then(|b| {
                        std::str::from_utf8(&b)
                            .ok()
                            .and_then(|s| Hash::from_hex(s.trim()))
                    }))
                }
            })
            .buffer_unordered(16)
            .try_collect()
            .await?;
        let mut layouts: HashSet<Hash> = pointed.into_iter().flatten().collect();
        let mut decoded: Vec<Layout> = Vec::new();
        // every layout object: those with one of the versions' content are kept too
        let all: Vec<Hash> = store
            .list(&format!("objects/{LAYOUT_KIND}/"))
            .await?
            .iter()
            .filter_map(|p| p.rsplit('/').next().and_then(Hash::from_hex))
            .collect();
        let read: Vec<(Hash, Option<Bytes>)> = futures::stream::iter(all)
            .map(|h| {
                let store = store.clone();
                async move {
                    match store.get_object(LAYOUT_KIND, &h).await {
                        Ok(b) => Ok((h, Some(b))),
                        Err(StoreError::NotFound { .. }) => Ok((h, None)),
                        Err(e) => Err(CoreError::from(e)),
                    }
                }
            })
            .buffer_unordered(16)
            .try_collect()
            .await?;
        for (h, b) in read {
            let Some(b) = b else { continue };
            let l = Layout::decode(&b, &format!("layout {h}"))?;
            if layouts.contains(&h) || roots.contains(&l.content.digest()) {
                layouts.insert(h);
                decoded.push(l);
            }
        }
        let mut packs: BTreeMap<Hash, PackUse> = BTreeMap::new();
        let bases: BTreeSet<Hash> = decoded.iter().map(|l| l.base).collect();
        let deltas: BTreeSet<Hash> = decoded.iter().flat_map(|l| l.deltas.clone()).collect();
        for b in bases {
            let bytes = match store.get_object(BASE_KIND, &b).await {
                Ok(x) => x,
                Err(StoreError::NotFound { .. }) => continue,
                Err(e) => return Err(e.into()),
            };
            for c in Base::decode(&bytes, &format!("base {b}"))?.chunks {
                packs.entry(c.pack).or_default().base = true;
            }
        }
        for d in deltas {
            let bytes = match store.get_object(DELTA_KIND, &d).await {
                Ok(x) => x,
                Err(StoreError::NotFound { .. }) => continue,
                Err(e) => return Err(e.into()),
            };
            if let Some(p) = Delta::decode(&bytes, &format!("delta {d}"))?.pack {
                packs.entry(p).or_default();
            }
        }
        Ok((commits.len() as u64, packs))
    }

    /// Erase the matching rows of one pack (module docs, steps 2–4); `None` when it holds
    /// none (or is gone).
    async fn erase_pack(
        &self,
        pack: Hash,
        used: PackUse,
        rows: &dyn RowMatcher,
        ev: &EventInfo<'_>,
    ) -> Result<Option<PackOutcome>> {
        let store = self.store().clone();
        let path = pack_path(&pack);
        let bytes = match store.get_file(&path).await {
            Ok(b) => b,
            Err(StoreError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let b2 = bytes.clone();
        let actual = tokio::task::spawn_blocking(move || Hash::of(&b2))
            .await
            .map_err(|e| CoreError::Join(e.to_string()))?;
        let size = bytes.len() as u64;
        let record = match read_record(&store, &pack).await? {
            Some(r) => r.settle(&actual, size).ok_or_else(|| CoreError::Corrupt {
                what: path.clone(),
                reason: format!(
                    "its blake3 is {actual}: neither its address nor a state its erasure \
                     record names"
                ),
            })?,
            None if actual == pack => ErasureRecord::new(pack, size),
            None => {
                return Err(CoreError::Corrupt {
                    what: path,
                    reason: format!("does not match its address: its blake3 is {actual}"),
                })
            }
        };
        let (gi, li) = self.key_columns()?;
        let schema = self.schema();
        let what = path.clone();
        let (batch, existing, props) =
            tokio::task::spawn_blocking(move || decode_pack(&what, &pack, bytes, &schema))
                .await
                .map_err(|e| CoreError::Join(e.to_string()))??;
        let mask = rows.matches(&batch).await?;
        if mask.len() != batch.num_rows() {
            return Err(CoreError::Join(format!(
                "the erasure filter gave {} flags for {} rows",
                mask.len(),
                batch.num_rows()
            )));
        }
        let mask = match mask.nulls() {
            Some(_) => arrow::compute::prep_null_mask_filter(&mask),
            None => mask,
        };
        let n = mask.true_count() as u64;
        if n == 0 {
            return Ok(None);
        }
        let erased = erase_rows(self.name(), &batch, &mask, &[gi, li])?;
        let schema = self.schema();
        let (gdt, ldt) = (
            schema.field(gi).data_type().clone(),
            schema.field(li).data_type().clone(),
        );
        let mut labels = Vec::with_capacity(n as usize);
        for r in (0..batch.num_rows()).filter(|&r| mask.value(r)) {
            let g = encoding::key_bytes(batch.column(gi).as_ref(), r).unwrap_or_default();
            let l = encoding::key_bytes(batch.column(li).as_ref(), r).unwrap_or_default();
            labels.push((
                encoding::key_display(&gdt, &g),
                encoding::key_display(&ldt, &l),
            ));
        }
        let aliases = if used.base {
            group_aliases(&batch, &erased, &mask, gi, &existing)?
        } else {
            existing
        };
        let (new_bytes, new_hash, sums) =
            tokio::task::spawn_blocking(move || encode_pack(&pack, &erased, &aliases, props))
                .await
                .map_err(|e| CoreError::Join(e.to_string()))??;
        if new_hash == actual {
            // the rows already read as erased: nothing to write, unless an erasure cut
            // short left the sums of the bytes before
            let spath = sums_path(&pack);
            let stored = store.get_file_opt(&spath).await?;
            let current = stored
                .as_deref()
                .and_then(|b| PackSums::decode(&spath, &pack, b).ok())
                .is_some_and(|s| s == sums);
            let mut bytes = 0;
            if !current && stored.is_some() {
                let enc = Bytes::from(sums.encode());
                bytes = enc.len() as u64;
                store.put_file(&spath, enc).await?;
                self.catalog.pack_rewritten(&pack);
            }
            return Ok(Some(PackOutcome {
                rows: n,
                labels,
                bytes,
            }));
        }
        let mut record = record;
        record.events.push(ErasureEvent {
            id: ev.id.clone(),
            dataset: self.name().to_string(),
            time: Utc::now(),
            author: ev.author.clone(),
            reason: ev.reason.to_string(),
            filter: ev.filter.clone(),
            rows: n,
            before: actual.to_hex(),
            blake3: new_hash.to_hex(),
            size: new_bytes.len() as u64,
            labels: labels.clone(),
        });
        record.blake3 = new_hash;
        record.size = new_bytes.len() as u64;
        let encoded = Bytes::from(record.encode()?);
        let sums = Bytes::from(sums.encode());
        let written = (encoded.len() + new_bytes.len() + sums.len()) as u64;
        // record, pack, sums: see the module docs
        store.put_file(&record_path(&pack), encoded).await?;
        store.put_file(&path, new_bytes).await?;
        store.put_file(&sums_path(&pack), sums).await?;
        self.catalog.pack_rewritten(&pack);
        Ok(Some(PackOutcome {
            rows: n,
            labels,
            bytes: written,
        }))
    }

    /// Every label erased from this dataset, newest erasure first (from the erasure records
    /// of the catalog).
    pub async fn erased_labels(&self) -> Result<Vec<ErasedLabel>> {
        let mut all = self.catalog.erased_labels().await?;
        all.retain(|l| l.dataset == self.name());
        Ok(all)
    }
}

impl crate::Catalog {
    /// Every label erased from any dataset of the catalog, newest erasure first: one per
    /// (erasure, label), with the number of packs it was erased from.
    pub async fn erased_labels(&self) -> Result<Vec<ErasedLabel>> {
        let store = self.store();
        type Id = (String, String, String, String);
        let mut by: BTreeMap<Id, ErasedLabel> = BTreeMap::new();
        let paths: Vec<String> = store.list(PACK_RECORDS).await?;
        let read: Vec<Option<ErasureRecord>> = futures::stream::iter(paths)
            .map(|path| async move {
                let Some(pack) = record::pack_of_record(&path) else {
                    return Ok(None);
                };
                match store.get_file_opt(&path).await? {
                    Some(b) => ErasureRecord::decode(&path, &pack, &b).map(Some),
                    None => Ok(None),
                }
            })
            .buffered(16)
            .try_collect()
            .await?;
        for r in read.into_iter().flatten() {
            for e in &r.events {
                let mut seen: HashSet<&(String, String)> = HashSet::new();
                for l in &e.labels {
                    if !seen.insert(l) {
                        continue;
                    }
                    let id = (e.dataset.clone(), e.id.clone(), l.0.clone(), l.1.clone());
                    by.entry(id)
                        .and_modify(|x| {
                            x.packs += 1;
                            x.time = x.time.min(e.time);
                        })
                        .or_insert_with(|| ErasedLabel {
                            dataset: e.dataset.clone(),
                            id: e.id.clone(),
                            group: l.0.clone(),
                            label: l.1.clone(),
                            time: e.time,
                            author: e.author.clone(),
                            reason: e.reason.clone(),
                            filter: e.filter.clone(),
                            packs: 1,
                        });
                }
            }
        }
        let mut out: Vec<ErasedLabel> = by.into_values().collect();
        out.sort_by(|a, b| {
            b.time.cmp(&a.time).then_with(|| {
                (&a.dataset, &a.group, &a.label).cmp(&(&b.dataset, &b.group, &b.label))
            })
        });
        Ok(out)
    }
}

/// A pack's rows as one batch of the dataset's schema, its erased groups and the writer
/// settings to encode it again with.
fn decode_pack(
    what: &str,
    pack: &Hash,
    bytes: Bytes,
    schema: &arrow::datatypes::SchemaRef,
) -> Result<(
    RecordBatch,
    ErasedGroups,
    parquet::file::properties::WriterProperties,
)> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes)?;
    if builder.schema().fields() != schema.fields() {
        return Err(CoreError::Corrupt {
            what: what.to_string(),
            reason: "its columns are not the dataset's".into(),
        });
    }
    let meta = builder.metadata().clone();
    let existing = ErasedGroups::of_footer(pack, &meta)?;
    let zstd = meta
        .row_groups()
        .iter()
        .flat_map(|rg| rg.columns())
        .any(|c| matches!(c.compression(), Compression::ZSTD(_)));
    let props = if zstd {
        crate::packs::change_pack_properties()
    } else {
        crate::packs::writer_properties()
    };
    let rows = meta.file_metadata().num_rows().max(0) as usize;
    let batches: Vec<RecordBatch> = builder
        .with_batch_size(rows.max(1))
        .build()?
        .collect::<std::result::Result<_, _>>()?;
    let batch = arrow::compute::concat_batches(schema, &batches)?;
    if batch.num_rows() != rows {
        return Err(CoreError::Corrupt {
            what: what.to_string(),
            reason: format!("holds {} rows, its footer says {rows}", batch.num_rows()),
        });
    }
    Ok((batch, existing, props))
}

/// The erased groups of a base pack after erasing `mask`: every group (a run of one group
/// key: base packs hold each group once, in key order) with an erased row, with the hash
/// it was recorded with (the earlier entry's for a group erased before) and the hash of
/// its rows now; the earlier entries of other groups are kept.
fn group_aliases(
    before: &RecordBatch,
    after: &RecordBatch,
    mask: &BooleanArray,
    gi: usize,
    existing: &ErasedGroups,
) -> Result<ErasedGroups> {
    let runs = crate::storage::build::group_runs(before, gi).ok_or_else(|| CoreError::Corrupt {
        what: "a base pack".into(),
        reason: "a null group key".into(),
    })?;
    let (hb, ha) = (
        GroupHasher::for_batch(before),
        GroupHasher::for_batch(after),
    );
    let mut out: BTreeMap<u64, GroupAlias> = existing
        .aliases()
        .into_iter()
        .map(|a| (a.first_row, a.clone()))
        .collect();
    for (key, off, len) in runs {
        if !(off..off + len).any(|r| mask.value(r)) {
            continue;
        }
        let first_row = off as u64;
        let hash = existing
            .hash_at(first_row, len as u64)
            .unwrap_or_else(|| hb.hash(off, len));
        let erased = ha.hash(off, len);
        if hash == erased {
            out.remove(&first_row);
            continue;
        }
        out.insert(
            first_row,
            GroupAlias {
                key,
                first_row,
                rows: len as u64,
                hash,
                erased,
            },
        );
    }
    Ok(ErasedGroups::new(out.into_values()))
}

/// Encode the erased rows as a pack (same settings, the erased groups in the footer):
/// bytes, their blake3 and their sums (under the pack's address).
fn encode_pack(
    pack: &Hash,
    batch: &RecordBatch,
    aliases: &ErasedGroups,
    props: parquet::file::properties::WriterProperties,
) -> Result<(Bytes, Hash, PackSums)> {
    let mut buf = Vec::new();
    let mut w = ArrowWriter::try_new(&mut buf, batch.schema(), Some(props))?;
    if !aliases.is_empty() {
        w.append_key_value_metadata(KeyValue::new(FOOTER_KEY.to_string(), aliases.encode()));
    }
    w.write(batch)?;
    w.close()?;
    let bytes = Bytes::from(buf);
    let hash = Hash::of(&bytes);
    let sums = PackSums::compute(*pack, &bytes)?;
    Ok((bytes, hash, sums))
}

/// Read a whole pack and check it: its blake3 is its address, or a state its erasure
/// record names (an erased pack). Returns the bytes and the record.
pub async fn read_pack_whole(
    store: &quiver_store::Store,
    pack: &Hash,
) -> Result<(Bytes, Option<ErasureRecord>)> {
    let path = pack_path(pack);
    let bytes = store.get_file(&path).await?;
    let b2 = bytes.clone();
    let actual = tokio::task::spawn_blocking(move || Hash::of(&b2))
        .await
        .map_err(|e| CoreError::Join(e.to_string()))?;
    if actual == *pack {
        return Ok((bytes, None));
    }
    match read_record(store, pack).await? {
        Some(r) if r.knows(&actual) => Ok((bytes, Some(r))),
        _ => Err(CoreError::Corrupt {
            what: path,
            reason: format!("expected blake3 {pack}, found {actual}"),
        }),
    }
}
