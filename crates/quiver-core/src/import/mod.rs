//! Importers (COCO, YOLO, Parquet, CSV) and exporters (Parquet, COCO).
//!
//! Every import parses and validates its whole input first, then writes it to a branch as
//! exactly one commit: rows are upserted by key and labels of the branch head that the
//! input no longer contains are deleted, so re-importing a changed file commits only the
//! labels that changed. Bad input is a [`CoreError::InvalidInput`] naming the file and the
//! position (line/column, record, annotation) and changes nothing.

pub mod bulk;
pub mod coco;
mod coco_stream;
pub mod export;
pub mod tabular;
pub mod yolo;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, BooleanArray, RecordBatch};
use arrow::datatypes::{Schema, SchemaRef};
use futures::StreamExt;
use quiver_tree::Hash;

use crate::catalog::{Catalog, DatasetOptions};
use crate::dataset::Dataset;
use crate::encoding;
use crate::error::{CoreError, Result};
use crate::model::{Commit, VersionSpec};
use crate::write::WriteTxn;
use crate::DEFAULT_BRANCH;

/// Receives progress of a long import or export. Every method has a no-op default.
pub trait Progress: Send + Sync {
    /// A new phase starts (`total` units when known).
    fn phase(&self, _name: &str, _total: Option<u64>) {}
    /// `n` more units of the current phase are done.
    fn advance(&self, _n: u64) {}
    /// The work is over.
    fn finish(&self) {}
}

/// Progress that is not reported anywhere.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;
impl Progress for NoProgress {}

/// Where and how an import writes.
#[derive(Clone)]
pub struct ImportOptions {
    /// Target dataset (created if missing).
    pub dataset: String,
    /// Target branch (default `main`). A new dataset gets it created from `main`; an
    /// existing dataset must already have it.
    pub branch: String,
    /// Commit message (a default naming the file is used when `None`).
    pub message: Option<String>,
    /// Commit author (default: [`crate::default_author`]).
    pub author: Option<String>,
    /// Directory of the image files (COCO); with it every image is put into the asset
    /// store and labels carry its hash in `image_hash`.
    pub images: Option<PathBuf>,
    /// Delete labels of the branch that the input no longer contains (default true).
    pub delete_missing: bool,
    /// Progress receiver.
    pub progress: Arc<dyn Progress>,
    /// Rows decoded at a time when a Parquet file sorted by key is streamed (default
    /// [`bulk::SLICE_ROWS`]): with the pack size, what bounds an import's memory.
    pub stream_batch_rows: usize,
}

impl ImportOptions {
    /// Options for importing into `dataset` on `main`.
    pub fn new(dataset: &str) -> Self {
        ImportOptions {
            dataset: dataset.to_string(),
            branch: DEFAULT_BRANCH.to_string(),
            message: None,
            author: None,
            images: None,
            delete_missing: true,
            progress: Arc::new(NoProgress),
            stream_batch_rows: bulk::SLICE_ROWS,
        }
    }
    /// Set the rows decoded at a time by a streamed Parquet import (at least 1).
    pub fn stream_batch_rows(mut self, rows: usize) -> Self {
        self.stream_batch_rows = rows.max(1);
        self
    }
    /// Set the branch.
    pub fn branch(mut self, b: &str) -> Self {
        self.branch = b.to_string();
        self
    }
    /// Set the image directory.
    pub fn images(mut self, dir: impl Into<PathBuf>) -> Self {
        self.images = Some(dir.into());
        self
    }
    /// Set the commit message.
    pub fn message(mut self, m: &str) -> Self {
        self.message = Some(m.to_string());
        self
    }
    /// Set the progress receiver.
    pub fn progress(mut self, p: Arc<dyn Progress>) -> Self {
        self.progress = p;
        self
    }
}

impl std::fmt::Debug for ImportOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportOptions")
            .field("dataset", &self.dataset)
            .field("branch", &self.branch)
            .field("images", &self.images)
            .finish()
    }
}

/// What an import did.
#[derive(Debug, Clone)]
pub struct ImportReport {
    /// The commit (the unchanged head when the input changed nothing).
    pub commit: Commit,
    /// Whether the dataset was created by this import.
    pub created_dataset: bool,
    /// True when the branch already held exactly the input (no commit was written).
    pub unchanged: bool,
    /// Labels and samples in the input.
    pub labels: u64,
    pub samples: u64,
    /// Labels of the branch deleted because the input no longer has them.
    pub deleted: u64,
    /// Asset files put (and their total size).
    pub assets: u64,
    pub asset_bytes: u64,
}

/// Parsed input, ready to be written.
pub(crate) struct Parsed {
    pub schema: SchemaRef,
    pub group_key: String,
    pub label_key: String,
    pub batches: Vec<RecordBatch>,
    pub source: String,
    pub assets: u64,
    pub asset_bytes: u64,
}

/// An `InvalidInput` error.
pub(crate) fn invalid(
    file: &Path,
    position: Option<String>,
    reason: impl Into<String>,
) -> CoreError {
    CoreError::InvalidInput {
        file: file.display().to_string(),
        position,
        reason: reason.into(),
    }
}

pub(crate) fn io_err(path: &Path, source: std::io::Error) -> CoreError {
    CoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Resolve `rel` (a file name taken from an input file) inside the directory `root`:
/// absolute paths, `..` components and symlinks that lead out of `root` are refused, so an
/// annotation file can never make an import read (and serve through `quiver_asset()`) a file
/// outside the directory the user named. `source`/`position` name the offending record.
pub(crate) fn contained_path(
    root: &Path,
    rel: &str,
    source: &Path,
    position: &str,
) -> Result<PathBuf> {
    use std::path::Component;
    let refuse = |why: &str| {
        invalid(
            source,
            Some(position.to_string()),
            format!(
                "file name '{}' {why}; image files must lie inside {}",
                rel.chars().take(200).collect::<String>(),
                root.display()
            ),
        )
    };
    let rel_path = Path::new(rel);
    for c in rel_path.components() {
        match c {
            Component::Normal(_) | Component::CurDir => {}
            Component::ParentDir => return Err(refuse("contains '..'")),
            Component::RootDir | Component::Prefix(_) => return Err(refuse("is absolute")),
        }
    }
    let joined = root.join(rel_path);
    within(root, &joined).map_err(|why| refuse(&why))?;
    Ok(joined)
}

/// Check that `path` (an existing file, or a missing one) resolves inside `root` once
/// symlinks are followed. A missing file passes here and is reported by the caller.
pub(crate) fn within(root: &Path, path: &Path) -> std::result::Result<(), String> {
    let canon_root = std::fs::canonicalize(root)
        .map_err(|e| format!("cannot be checked: images directory unreadable ({e})"))?;
    match std::fs::canonicalize(path) {
        Ok(real) if real.starts_with(&canon_root) => Ok(()),
        Ok(_) => Err("resolves (through a symbolic link) outside the images directory".into()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // a dangling symlink is refused too: it may be created later pointing anywhere
            if std::fs::symlink_metadata(path).is_ok() {
                Err("is a dangling symbolic link".into())
            } else {
                Ok(())
            }
        }
        Err(e) => Err(format!("cannot be resolved ({e})")),
    }
}

/// Put files into the asset store (a few at a time); returns their hashes in input order
/// and the total bytes. Every file is checked to exist before anything is stored.
pub(crate) async fn put_assets(
    cat: &Catalog,
    files: &[(PathBuf, String)],
    progress: &dyn Progress,
) -> Result<(Vec<Hash>, u64)> {
    let mut total = 0u64;
    for (path, what) in files {
        match tokio::fs::metadata(path).await {
            Ok(m) if m.is_file() => total += m.len(),
            Ok(_) => {
                return Err(invalid(
                    path,
                    Some(what.clone()),
                    "image is not a regular file",
                ))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(invalid(path, Some(what.clone()), "image file not found"))
            }
            Err(e) => return Err(io_err(path, e)),
        }
    }
    progress.phase("storing images", Some(files.len() as u64));
    let assets = cat.assets();
    let results: Vec<Result<Hash>> = futures::stream::iter(files.iter().map(|(p, _)| {
        let assets = assets.clone();
        async move {
            let h = assets.put_file(p).await;
            progress.advance(1);
            h
        }
    }))
    .buffered(8)
    .collect()
    .await;
    let hashes = results.into_iter().collect::<Result<Vec<_>>>()?;
    Ok((hashes, total))
}

/// Write parsed input to the target branch as one commit.
pub(crate) async fn write_import(
    cat: &Catalog,
    opts: &ImportOptions,
    parsed: Parsed,
) -> Result<ImportReport> {
    let progress = opts.progress.as_ref();
    let mut creating = None;
    let (ds, created) = match cat.dataset(&opts.dataset).await {
        Ok(ds) => {
            let cfg = ds.config();
            if cfg.group_key != parsed.group_key || cfg.label_key != parsed.label_key {
                return Err(CoreError::SchemaMismatch {
                    dataset: opts.dataset.clone(),
                    reason: format!(
                        "the dataset is keyed by ({}, {}) but the import by ({}, {})",
                        cfg.group_key, cfg.label_key, parsed.group_key, parsed.label_key
                    ),
                });
            }
            (ds, false)
        }
        Err(CoreError::DatasetNotFound(_)) => {
            let dopts = DatasetOptions {
                group_key: parsed.group_key.clone(),
                label_key: parsed.label_key.clone(),
                author: opts.author.clone().unwrap_or_else(crate::default_author),
                ..Default::default()
            };
            if opts.branch == DEFAULT_BRANCH {
                // the dataset appears with the imported labels, in one commit: an import
                // killed midway leaves no (empty) dataset behind
                let txn = cat
                    .begin_dataset(&opts.dataset, parsed.schema.clone(), dopts)
                    .await?;
                let ds = txn.dataset().clone();
                creating = Some(txn);
                (ds, true)
            } else {
                let ds = cat
                    .create_dataset(&opts.dataset, parsed.schema.clone(), dopts)
                    .await?;
                (ds, true)
            }
        }
        Err(e) => return Err(e),
    };
    let res = write_into(&ds, created, creating, opts, &parsed, progress).await;
    match res {
        Ok((commit, deleted, unchanged, samples)) => {
            progress.finish();
            let labels = parsed.batches.iter().map(|b| b.num_rows() as u64).sum();
            let samples = match samples {
                Some(n) => n,
                None => count_groups(&ds, &parsed.batches)?,
            };
            Ok(ImportReport {
                commit,
                created_dataset: created,
                unchanged,
                labels,
                samples,
                deleted,
                assets: parsed.assets,
                asset_bytes: parsed.asset_bytes,
            })
        }
        Err(e) => {
            progress.finish();
            if created {
                // leave nothing behind: the dataset did not exist before this import
                let _ = cat.drop_dataset(&opts.dataset).await;
            }
            Err(e)
        }
    }
}

fn count_groups(ds: &Dataset, batches: &[RecordBatch]) -> Result<u64> {
    let mut groups = HashSet::new();
    for b in batches {
        if let Some(col) = b.column_by_name(&ds.config().group_key) {
            for r in 0..b.num_rows() {
                if let Some(k) = encoding::key_bytes(col.as_ref(), r) {
                    groups.insert(k);
                }
            }
        }
    }
    Ok(groups.len() as u64)
}

async fn write_into(
    ds: &Dataset,
    created: bool,
    creating: Option<WriteTxn>,
    opts: &ImportOptions,
    parsed: &Parsed,
    progress: &dyn Progress,
) -> Result<(Commit, u64, bool, Option<u64>)> {
    let mut txn = match creating {
        Some(txn) => txn,
        None => {
            if created && opts.branch != DEFAULT_BRANCH {
                ds.create_branch(&opts.branch, &VersionSpec::main()).await?;
            }
            ds.begin(&opts.branch).await?
        }
    };
    if let Some(a) = &opts.author {
        txn = txn.author(a);
    }
    let schema = ds.schema();
    let total: u64 = parsed.batches.iter().map(|b| b.num_rows() as u64).sum();
    // into an empty version: straight into base chunks (see [`bulk`])
    if ds.snapshot(txn.base_commit().clone()).num_rows().await? == 0 && total > 0 {
        progress.phase("writing labels", Some(total));
        let conformed = parsed
            .batches
            .iter()
            .map(|b| conform_to(b, &schema, &parsed.source))
            .collect::<Result<Vec<_>>>()?;
        let (layout, bytes, summary) =
            bulk::load(ds, &schema, &conformed, &parsed.source, progress).await?;
        drop(conformed);
        let samples = summary.groups_added;
        txn.set_prebuilt(layout, bytes, summary);
        progress.phase("committing", None);
        let message = opts
            .message
            .clone()
            .unwrap_or_else(|| format!("import {}", parsed.source));
        let commit = txn.commit(&message).await?;
        return Ok((commit, 0, false, Some(samples)));
    }
    progress.phase("writing labels", Some(total));
    let gname = ds.config().group_key.clone();
    let lname = ds.config().label_key.clone();
    let mut keys: HashSet<(Vec<u8>, Vec<u8>)> = HashSet::new();
    for b in &parsed.batches {
        let b = conform_to(b, &schema, &parsed.source)?;
        let g = b.column_by_name(&gname);
        let l = b.column_by_name(&lname);
        if let (Some(g), Some(l)) = (g, l) {
            for r in 0..b.num_rows() {
                if let (Some(gk), Some(lk)) = (
                    encoding::key_bytes(g.as_ref(), r),
                    encoding::key_bytes(l.as_ref(), r),
                ) {
                    keys.insert((gk, lk));
                }
            }
        }
        txn.upsert(&b).await?;
        progress.advance(b.num_rows() as u64);
    }
    // labels of the branch head that the input no longer has
    let mut deleted = 0u64;
    if opts.delete_missing && !created {
        progress.phase("finding removed labels", None);
        let base = ds.snapshot(txn.base_commit().clone());
        let (gi, li) = (schema.index_of(&gname)?, schema.index_of(&lname)?);
        for b in base.scan(Some(vec![gi, li])).await? {
            let (g, l) = (b.column(0), b.column(1));
            let mask: BooleanArray = (0..b.num_rows())
                .map(|r| {
                    let gk = encoding::key_bytes(g.as_ref(), r);
                    let lk = encoding::key_bytes(l.as_ref(), r);
                    Some(match (gk, lk) {
                        (Some(gk), Some(lk)) => !keys.contains(&(gk, lk)),
                        _ => false,
                    })
                })
                .collect();
            let n = mask.true_count();
            if n > 0 {
                let gone = arrow::compute::filter_record_batch(&b, &mask)?;
                txn.delete(&gone).await?;
                deleted += n as u64;
            }
        }
    }
    txn.set_operation("import");
    progress.phase("committing", None);
    let message = opts
        .message
        .clone()
        .unwrap_or_else(|| format!("import {}", parsed.source));
    let base = txn.base_commit().id;
    let commit = txn.commit(&message).await?;
    let unchanged = commit.id == base;
    Ok((commit, deleted, unchanged, None))
}

/// Bring a batch to `schema` by [`crate::conform`]'s upload rules (CSV inference may pick
/// a narrower type than an existing dataset has); errors name the file.
pub(crate) fn conform_to(
    batch: &RecordBatch,
    schema: &SchemaRef,
    source: &str,
) -> Result<RecordBatch> {
    let bad = |reason: String| CoreError::InvalidInput {
        file: source.to_string(),
        position: None,
        reason,
    };
    crate::conform::conform("", schema, batch, crate::conform::ConformRules::UPLOAD).map_err(|e| {
        match e {
            CoreError::ColumnNotFound { column, .. } => bad(format!(
                "column '{column}' is not in the dataset (its columns: {})",
                column_names(schema)
            )),
            CoreError::SchemaMismatch { reason, .. } => bad(reason),
            other => other,
        }
    })
}

/// The column names of a schema, comma-separated (for error messages).
pub fn column_names(schema: &Schema) -> String {
    schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Check that `(group, label)` keys are unique in the input; names the first duplicate.
pub(crate) fn check_unique_keys(
    batches: &[RecordBatch],
    group: &str,
    label: &str,
    source: &Path,
    row_name: &str,
    first_row: usize,
) -> Result<()> {
    let mut row = first_row;
    let mut at = Vec::with_capacity(batches.len());
    for b in batches {
        let (Some(g), Some(l)) = (b.column_by_name(group), b.column_by_name(label)) else {
            return Err(invalid(
                source,
                None,
                format!("key columns '{group}'/'{label}' missing"),
            ));
        };
        at.push(row);
        for r in 0..b.num_rows() {
            for (c, name) in [(g, group), (l, label)] {
                if c.is_null(r) || !encoding::is_key_type(c.data_type()) {
                    return Err(invalid(
                        source,
                        Some(format!("{row_name} {row}")),
                        format!("empty or unsupported value in key column '{name}'"),
                    ));
                }
            }
            row += 1;
        }
    }
    // duplicates: sort the keys once (no per-key allocation), compare neighbours
    let Some(first) = batches.first() else {
        return Ok(());
    };
    let schema = first.schema();
    let (gi, li) = (schema.index_of(group)?, schema.index_of(label)?);
    if let Err(CoreError::InvalidInput { reason, .. }) =
        bulk::sorted_order(batches, gi, li, &source.display().to_string())
    {
        // name the later row of the duplicate pair
        let (b, r) = bulk::duplicate_at(batches, gi, li).unwrap_or((0, 0));
        return Err(invalid(
            source,
            Some(format!(
                "{row_name} {}",
                at.get(b).copied().unwrap_or(first_row) + r
            )),
            reason,
        ));
    }
    Ok(())
}
