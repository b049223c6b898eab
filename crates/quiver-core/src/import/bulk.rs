//! Bulk load: rows into an empty version, written straight into base chunks.
//!
//! The input's key columns are encoded as Arrow row-format keys and sorted once (an index
//! permutation; rows already in key order are not moved); the rows are then taken in key
//! order, a slice of about [`SLICE_ROWS`] rows at a time cut at group boundaries, hashed
//! per group and pushed into a [`BaseBuilder`]. Memory is the input plus one slice, never a
//! per-group transaction state.

use arrow::array::RecordBatch;
use arrow::compute::interleave_record_batch;
use arrow::datatypes::SchemaRef;
use arrow::row::{RowConverter, SortField};

use crate::dataset::Dataset;
use crate::error::{CoreError, Result};
use crate::model::OperationSummary;
use crate::storage::build::{self, BaseBuilder};
use crate::storage::Layout;

/// Rows taken (and hashed, and pushed) at a time.
pub const SLICE_ROWS: usize = 64 * 1024;

/// The sort order of `batches` by (group key, label key): `(batch, row)` pairs; a
/// duplicate key is an error naming it.
pub(crate) fn sorted_order(
    batches: &[RecordBatch],
    gi: usize,
    li: usize,
    source: &str,
) -> Result<Vec<(usize, usize)>> {
    let Some(first) = batches.first() else {
        return Ok(Vec::new());
    };
    let fields = vec![
        SortField::new(first.column(gi).data_type().clone()),
        SortField::new(first.column(li).data_type().clone()),
    ];
    let conv = RowConverter::new(fields)?;
    let mut keys = conv.empty_rows(0, 0);
    let mut order: Vec<(usize, usize)> = Vec::new();
    for (bi, b) in batches.iter().enumerate() {
        conv.append(&mut keys, &[b.column(gi).clone(), b.column(li).clone()])?;
        order.extend((0..b.num_rows()).map(|r| (bi, r)));
    }
    let at: Vec<usize> = {
        let mut start = Vec::with_capacity(batches.len());
        let mut n = 0;
        for b in batches {
            start.push(n);
            n += b.num_rows();
        }
        start
    };
    let idx = |p: &(usize, usize)| at[p.0] + p.1;
    let sorted = order
        .windows(2)
        .all(|w| keys.row(idx(&w[0])) <= keys.row(idx(&w[1])));
    if !sorted {
        order.sort_unstable_by(|a, b| keys.row(idx(a)).cmp(&keys.row(idx(b))));
    }
    if let Some(w) = order
        .windows(2)
        .find(|w| keys.row(idx(&w[0])) == keys.row(idx(&w[1])))
    {
        let (b, r) = w[1];
        let show = |c: usize| {
            arrow::util::display::array_value_to_string(batches[b].column(c).as_ref(), r)
                .unwrap_or_else(|_| "?".into())
        };
        return Err(CoreError::InvalidInput {
            file: source.to_string(),
            position: None,
            reason: format!("duplicate key ({}, {})", show(gi), show(li)),
        });
    }
    Ok(order)
}

/// The summary of a commit that loads `layout` into an empty version.
fn import_summary(layout: &Layout) -> OperationSummary {
    OperationSummary {
        operation: "import".into(),
        groups_added: layout.groups,
        labels_added: layout.rows,
        ..Default::default()
    }
}

/// The (batch, row) of the second occurrence, in input order, of the first duplicated
/// key found (for error positions).
pub(crate) fn duplicate_at(
    batches: &[RecordBatch],
    gi: usize,
    li: usize,
) -> Option<(usize, usize)> {
    let first = batches.first()?;
    let fields = vec![
        SortField::new(first.column(gi).data_type().clone()),
        SortField::new(first.column(li).data_type().clone()),
    ];
    let conv = RowConverter::new(fields).ok()?;
    let mut keys = conv.empty_rows(0, 0);
    let mut pos = Vec::new();
    for (bi, b) in batches.iter().enumerate() {
        conv.append(&mut keys, &[b.column(gi).clone(), b.column(li).clone()])
            .ok()?;
        pos.extend((0..b.num_rows()).map(|r| (bi, r)));
    }
    let mut idx: Vec<usize> = (0..pos.len()).collect();
    idx.sort_by(|a, b| keys.row(*a).cmp(&keys.row(*b)).then(a.cmp(b)));
    idx.windows(2)
        .filter(|w| keys.row(w[0]) == keys.row(w[1]))
        .map(|w| w[1])
        .min()
        .map(|i| pos[i])
}

/// Write `batches` (conformed to the dataset schema, unique keys) as the base of a new
/// version; returns its layout, the bytes written and the summary of the commit.
pub(crate) async fn load(
    ds: &Dataset,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    source: &str,
    progress: &dyn super::Progress,
) -> Result<(Layout, u64, OperationSummary)> {
    let cfg = ds.config();
    let col = |name: &str| {
        schema
            .index_of(name)
            .map_err(|_| CoreError::ColumnNotFound {
                dataset: ds.name().into(),
                column: name.into(),
            })
    };
    let (gi, li) = (col(&cfg.group_key)?, col(&cfg.label_key)?);
    for b in batches {
        for (i, name) in [(gi, &cfg.group_key), (li, &cfg.label_key)] {
            if b.column(i).null_count() > 0 {
                return Err(CoreError::NullKey {
                    dataset: ds.name().into(),
                    column: name.clone(),
                });
            }
        }
    }
    let order = sorted_order(batches, gi, li, source)?;
    let stats_cols: Vec<usize> = cfg
        .stats_columns
        .iter()
        .filter_map(|c| schema.index_of(c).ok())
        .collect();
    let mut builder = BaseBuilder::new(
        ds.store().clone(),
        schema.clone(),
        stats_cols,
        cfg.chunk_groups,
    );
    let refs: Vec<&RecordBatch> = batches.iter().collect();
    let key_of =
        |p: &(usize, usize)| crate::encoding::key_bytes(batches[p.0].column(gi).as_ref(), p.1);
    let mut pos = 0usize;
    while pos < order.len() {
        // a slice of about SLICE_ROWS rows, extended to the end of its last group
        let mut end = (pos + SLICE_ROWS).min(order.len());
        if end < order.len() {
            let last = key_of(&order[end - 1]);
            while end < order.len() && key_of(&order[end]) == last {
                end += 1;
            }
        }
        let slice = interleave_record_batch(&refs, &order[pos..end])?;
        let runs = build::group_runs(&slice, gi).ok_or_else(|| CoreError::NullKey {
            dataset: ds.name().into(),
            column: cfg.group_key.clone(),
        })?;
        let hashes = build::hash_runs(&slice, &runs);
        builder.push(&slice, &runs, &hashes).await?;
        progress.advance((end - pos) as u64);
        pos = end;
    }
    let (layout, bytes) = builder.finish_layout().await?;
    let summary = import_summary(&layout);
    Ok((layout, bytes, summary))
}

/// Decode `reader` on a thread of its own, conforming each batch to `schema`; the channel
/// holds at most two batches ahead of the consumer. Dropping the receiver stops the thread
/// at its next batch.
fn decode_ahead(
    reader: parquet::arrow::arrow_reader::ParquetRecordBatchReader,
    path: &std::path::Path,
    schema: SchemaRef,
    source: String,
) -> tokio::sync::mpsc::Receiver<Result<RecordBatch>> {
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    let path = path.to_path_buf();
    let work = move || {
        let mut rows_read = 0u64;
        for b in reader {
            let b = b
                .map_err(|e| {
                    super::invalid(&path, Some(format!("after row {rows_read}")), e.to_string())
                })
                .and_then(|b| {
                    rows_read += b.num_rows() as u64;
                    super::conform_to(&b, &schema, &source)
                });
            let failed = b.is_err();
            let empty = b.as_ref().is_ok_and(|b| b.num_rows() == 0);
            if !empty && (tx.blocking_send(b).is_err() || failed) {
                return;
            }
        }
    };
    if let Err(e) = std::thread::Builder::new()
        .name("quiver-decode".into())
        .spawn(work)
    {
        // no thread to spare: report it as the stream's error
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let _ = tx.try_send(Err(CoreError::Join(format!(
            "could not start the Parquet decoding thread: {e}"
        ))));
        return rx;
    }
    rx
}

/// Why a streamed load gave up (the caller falls back to loading the whole input).
pub(crate) enum Streamed {
    Done(Box<super::ImportReport>),
    /// The input is not in key order (or the target is not an empty version): nothing
    /// was published.
    Fallback,
}

/// Rows arriving in (group key, label key) order, written into the base of a new dataset
/// (published by the commit) or of an empty version of an existing one on `main`, one
/// batch and one pack at a time. A batch out of key order (or with a null key) makes
/// [`SortedLoad::push`] answer `false`: the caller then drops the load, which publishes
/// nothing, and loads its input whole.
pub(crate) struct SortedLoad {
    txn: crate::write::WriteTxn,
    created: bool,
    ds: Dataset,
    schema: SchemaRef,
    registry: Option<crate::schema_registry::RegistryCheck>,
    source: String,
    gi: usize,
    li: usize,
    conv: RowConverter,
    base: BaseBuilder,
    /// The last key pushed.
    last: Option<arrow::row::OwnedRow>,
    /// The last group seen (its key and rows), held back until it is known to be complete.
    carry: Option<(quiver_tree::Key, RecordBatch)>,
}

impl SortedLoad {
    /// Start a load into `opts`' dataset keyed by (`group_key`, `label_key`); `None` when
    /// the target is not a new dataset or an empty version of an existing one on `main`
    /// with those keys (the caller loads whole, which also handles re-imports).
    pub(crate) async fn begin(
        cat: &crate::catalog::Catalog,
        opts: &super::ImportOptions,
        (group_key, label_key): (&str, &str),
        input_schema: &SchemaRef,
        source: String,
    ) -> Result<Option<Self>> {
        if input_schema.index_of(group_key).is_err()
            || input_schema.index_of(label_key).is_err()
            || opts.branch != crate::DEFAULT_BRANCH
        {
            return Ok(None);
        }
        let (mut txn, created) = match cat.dataset(&opts.dataset).await {
            Ok(ds) => {
                let cfg = ds.config();
                if cfg.group_key != group_key || cfg.label_key != label_key {
                    return Ok(None);
                }
                let txn = ds.begin(&opts.branch).await?;
                if ds.snapshot(txn.base_commit().clone()).num_rows().await? != 0 {
                    return Ok(None);
                }
                (txn, false)
            }
            Err(CoreError::DatasetNotFound(_)) => {
                let dopts = crate::catalog::DatasetOptions {
                    group_key: group_key.to_string(),
                    label_key: label_key.to_string(),
                    author: opts.author.clone().unwrap_or_else(crate::default_author),
                    ..Default::default()
                };
                let txn = cat
                    .begin_dataset(&opts.dataset, input_schema.clone(), dopts)
                    .await?;
                (txn, true)
            }
            Err(e) => return Err(e),
        };
        if let Some(a) = &opts.author {
            txn = txn.author(a);
        }
        let ds = txn.dataset().clone();
        let schema = ds.schema();
        // the schema registry holds for streamed rows as for every other write
        let registry = ds.registry_check().await?;
        let cfg = ds.config().clone();
        let gi = schema.index_of(&cfg.group_key)?;
        let li = schema.index_of(&cfg.label_key)?;
        let stats_cols: Vec<usize> = cfg
            .stats_columns
            .iter()
            .filter_map(|c| schema.index_of(c).ok())
            .collect();
        let base = BaseBuilder::new(
            ds.store().clone(),
            schema.clone(),
            stats_cols,
            cfg.chunk_groups,
        );
        let conv = RowConverter::new(vec![
            SortField::new(schema.field(gi).data_type().clone()),
            SortField::new(schema.field(li).data_type().clone()),
        ])?;
        Ok(Some(SortedLoad {
            txn,
            created,
            ds,
            schema,
            registry,
            source,
            gi,
            li,
            conv,
            base,
            last: None,
            carry: None,
        }))
    }

    /// The dataset's label schema (what pushed batches are conformed to).
    pub(crate) fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Push the next batch, conformed to [`Self::schema`]; `false` when it is not in key
    /// order after the rows before it (or holds a null key): nothing may be published then.
    pub(crate) async fn push(
        &mut self,
        b: RecordBatch,
        progress: &dyn super::Progress,
    ) -> Result<bool> {
        if b.num_rows() == 0 {
            return Ok(true);
        }
        if let Some(rules) = &self.registry {
            rules.check(&b)?;
        }
        let (gi, li) = (self.gi, self.li);
        if b.column(gi).null_count() > 0 || b.column(li).null_count() > 0 {
            return Ok(false);
        }
        let rows = self
            .conv
            .convert_columns(&[b.column(gi).clone(), b.column(li).clone()])?;
        let ordered = self.last.as_ref().is_none_or(|l| l.row() < rows.row(0))
            && (1..rows.num_rows()).all(|i| rows.row(i - 1) < rows.row(i));
        if !ordered {
            return Ok(false);
        }
        self.last = Some(rows.row(rows.num_rows() - 1).owned());
        drop(rows);
        let null_key = || CoreError::NullKey {
            dataset: self.ds.name().into(),
            column: self.ds.config().group_key.clone(),
        };
        let mut runs = build::group_runs(&b, gi).ok_or_else(null_key)?;
        // the held-back group: complete unless this batch continues it (then only its
        // rows and that first run are concatenated, never the whole batch)
        let mut from = 0usize;
        if let Some((key, held)) = self.carry.take() {
            let continues = runs.first().is_some_and(|r| r.0 == key);
            let group = if continues {
                let n = runs[0].2;
                let joined = arrow::compute::concat_batches(&self.schema, [&held, &b.slice(0, n)])?;
                if n == b.num_rows() {
                    self.carry = Some((key, joined));
                    return Ok(true);
                }
                from = n;
                runs.remove(0);
                joined
            } else {
                held
            };
            let run = [(key, 0usize, group.num_rows())];
            let hashes = build::hash_runs(&group, &run);
            self.base.push(&group, &run, &hashes).await?;
            progress.advance(group.num_rows() as u64);
        }
        // hold this batch's last group back: the next batch may continue it
        let Some((key, keep_from, _)) = runs.pop() else {
            return Ok(true);
        };
        self.carry = Some((key, b.slice(keep_from, b.num_rows() - keep_from)));
        if !runs.is_empty() {
            let head = b.slice(from, keep_from - from);
            for r in &mut runs {
                r.1 -= from;
            }
            let hashes = build::hash_runs(&head, &runs);
            self.base.push(&head, &runs, &hashes).await?;
            progress.advance(head.num_rows() as u64);
        }
        Ok(true)
    }

    /// Write the last group and the base, and commit (`message`, or one naming the
    /// source).
    pub(crate) async fn finish(
        mut self,
        message: Option<&str>,
        progress: &dyn super::Progress,
    ) -> Result<super::ImportReport> {
        if let Some((key, c)) = self.carry.take() {
            let run = [(key, 0usize, c.num_rows())];
            let hashes = build::hash_runs(&c, &run);
            self.base.push(&c, &run, &hashes).await?;
            progress.advance(c.num_rows() as u64);
        }
        let (layout, bytes) = self.base.finish_layout().await?;
        let summary = import_summary(&layout);
        let (rows, groups) = (layout.rows, layout.groups);
        let mut txn = self.txn;
        txn.set_prebuilt(layout, bytes, summary);
        progress.phase("committing", None);
        let message = message
            .map(str::to_string)
            .unwrap_or_else(|| format!("import {}", self.source));
        let commit = txn.commit(&message).await?;
        progress.finish();
        Ok(super::ImportReport {
            commit,
            created_dataset: self.created,
            unchanged: false,
            labels: rows,
            samples: groups,
            deleted: 0,
            assets: 0,
            asset_bytes: 0,
        })
    }
}

/// Stream a Parquet file sorted by (group key, label key) into the base of a new dataset
/// (or of an empty version of an existing one) on `main`, holding one batch and one pack
/// at a time: peak memory follows the batch and pack size, not the file. The first key
/// out of order (or repeated) stops the stream without publishing anything; the caller
/// then loads the file whole.
pub(crate) async fn stream_parquet(
    cat: &crate::catalog::Catalog,
    path: &std::path::Path,
    keys: &super::tabular::TableKeys,
    opts: &super::ImportOptions,
) -> Result<Streamed> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let progress = opts.progress.as_ref();
    let file = std::fs::File::open(path).map_err(|e| super::io_err(path, e))?;
    let Ok(builder) = ParquetRecordBatchReaderBuilder::try_new(file) else {
        return Ok(Streamed::Fallback);
    };
    let total = builder.metadata().file_metadata().num_rows().max(0) as u64;
    if total == 0 {
        return Ok(Streamed::Fallback);
    }
    let file_schema = builder.schema().clone();
    let source = path.display().to_string();
    let Some(mut load) = SortedLoad::begin(
        cat,
        opts,
        (&keys.group_key, &keys.label_key),
        &file_schema,
        source.clone(),
    )
    .await?
    else {
        return Ok(Streamed::Fallback);
    };
    let reader = builder
        .with_batch_size(opts.stream_batch_rows.max(1))
        .build()
        .map_err(|e| super::invalid(path, None, format!("not a readable Parquet file: {e}")))?;
    progress.phase("writing labels", Some(total));
    // Parquet decoding runs on its own thread, a batch or two ahead of the key checks and
    // hashing here, while the pack before is encoded on a worker: the three overlap.
    let mut batches = decode_ahead(reader, path, load.schema().clone(), source);
    while let Some(b) = batches.recv().await {
        if !load.push(b?, progress).await? {
            return Ok(Streamed::Fallback);
        }
    }
    let report = load.finish(opts.message.as_deref(), progress).await?;
    Ok(Streamed::Done(Box::new(report)))
}
