//! OPTIMIZE: fold a branch head's deltas into new base chunks.
//!
//! Only the chunks the deltas touched are rewritten: a chunk *owns* the keys from its
//! first key up to the next chunk's first key; a chunk is rewritten when a delta replaced
//! some of its rows or added a key it owns. Consecutive rewritten chunks are rebuilt
//! together (their live rows and the deltas' groups they own, merged in key order) at
//! content-defined boundaries; untouched chunks are kept as they are. The head commit is
//! re-pointed at the new layout: same content, same commit id, no deltas.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use arrow::array::RecordBatch;
use arrow::compute::concat_batches;
use bytes::Bytes;
use quiver_tree::{Hash, Key};

use super::build::{self, BaseBuilder};
use super::format::{Base, Chunk, Layout, BASE_KIND, LAYOUT_KIND};
use super::view::subtract;
use crate::dataset::Dataset;
use crate::error::{CoreError, Result};
use crate::packs;

/// What OPTIMIZE did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OptimizeReport {
    /// The commit whose layout was rewritten (the branch head).
    pub commit: String,
    /// Deltas folded into the base.
    pub deltas_folded: u64,
    /// Base chunks rewritten (the others are shared with the old layout).
    pub chunks_rewritten: u64,
    /// Base chunks of the new layout.
    pub chunks: u64,
    /// Rows written into new packs.
    pub rows_written: u64,
    /// Bytes written (packs, base, layout).
    pub bytes_written: u64,
}

impl Dataset {
    /// Fold the deltas of `branch`'s head into its base (see the module docs). The
    /// branch's commit id and content hash do not change.
    pub async fn optimize(&self, branch: &str) -> Result<OptimizeReport> {
        let lease = self.catalog.write_lease("optimize").await?;
        let res = self.optimize_leased(branch).await;
        lease.release().await;
        res
    }

    async fn optimize_leased(&self, branch: &str) -> Result<OptimizeReport> {
        let head = self.branch_head(branch).await?;
        let snap = self.snapshot(head.commit.clone());
        let view = snap.view().await?;
        let mut report = OptimizeReport {
            commit: head.commit.id.to_hex(),
            chunks: view.base.chunks.len() as u64,
            ..Default::default()
        };
        if view.deltas.is_empty() {
            return Ok(report);
        }
        let chunks = &view.base.chunks;
        let owner = |k: &[u8]| -> usize {
            chunks
                .partition_point(|c| c.first_key.as_slice() <= k)
                .saturating_sub(1)
        };
        // holes per pack, and which chunks are affected
        let mut holes: BTreeMap<Hash, Vec<Range<u64>>> = BTreeMap::new();
        let mut affected: BTreeSet<usize> = BTreeSet::new();
        let mut new_groups: Vec<(Key, super::GroupRef)> = Vec::new();
        for d in &view.deltas {
            for e in &d.entries {
                if let Some(o) = &e.old {
                    holes
                        .entry(o.at.leaf)
                        .or_default()
                        .push(o.at.offset..o.at.offset + o.rows);
                }
            }
        }
        for (k, e) in view.touched() {
            if !chunks.is_empty() {
                affected.insert(owner(k));
            }
            if let Some(n) = e.new {
                new_groups.push((k.clone(), n));
            }
        }
        for h in holes.values_mut() {
            h.sort_by_key(|r| r.start);
        }
        for (i, c) in chunks.iter().enumerate() {
            if let Some(h) = holes.get(&c.pack) {
                // the first hole ending after the chunk's start: does it start before its end?
                let j = h.partition_point(|r| r.end <= c.start);
                if h.get(j).is_some_and(|r| r.start < c.start + c.rows) {
                    affected.insert(i);
                }
            }
        }
        // runs of consecutive affected chunks (everything when the base is empty)
        let mut runs: Vec<Range<usize>> = Vec::new();
        for i in affected {
            match runs.last_mut() {
                Some(r) if r.end == i => r.end = i + 1,
                _ => runs.push(i..i + 1),
            }
        }
        let ds_schema = self.schema();
        let gi =
            ds_schema
                .index_of(&self.config.group_key)
                .map_err(|_| CoreError::ColumnNotFound {
                    dataset: self.name().into(),
                    column: self.config.group_key.clone(),
                })?;
        let stats_cols: Vec<usize> = self
            .config
            .stats_columns
            .iter()
            .filter_map(|c| ds_schema.index_of(c).ok())
            .collect();
        let mut builder = BaseBuilder::new(
            self.store().clone(),
            ds_schema.clone(),
            stats_cols,
            self.config.chunk_groups,
        );
        let store = self.store();
        let meta = &self.catalog.inner.meta;
        let mut kept: Vec<Chunk> = Vec::new();
        let mut next = 0usize;
        let work: Vec<Option<Range<usize>>> = if chunks.is_empty() {
            vec![None]
        } else {
            runs.into_iter().map(Some).collect()
        };
        for run in work {
            // the key range this run owns, and its live base rows
            let (lo, hi): (Option<&Key>, Option<&Key>) = match &run {
                None => (None, None),
                Some(r) => {
                    kept.extend(chunks[next..r.start].iter().cloned());
                    next = r.end;
                    report.chunks_rewritten += (r.end - r.start) as u64;
                    (
                        (r.start > 0).then(|| &chunks[r.start].first_key),
                        chunks.get(r.end).map(|c| &c.first_key),
                    )
                }
            };
            // the run's live base rows, in key order: one read per stretch of chunks that
            // sit in the same pack
            let mut base_rows: Vec<RecordBatch> = Vec::new();
            if let Some(r) = &run {
                let mut k = r.start;
                while k < r.end {
                    let pack = chunks[k].pack;
                    let mut live = Vec::new();
                    while k < r.end && chunks[k].pack == pack {
                        let c = &chunks[k];
                        live.extend(subtract(c.start..c.start + c.rows, holes.get(&c.pack)));
                        k += 1;
                    }
                    if !live.is_empty() {
                        let read = packs::read_ranges(store, meta, &pack, &live, None).await?;
                        base_rows.extend(read.into_iter().flatten());
                    }
                }
            }
            let owned: Vec<&(Key, super::GroupRef)> = new_groups
                .iter()
                .filter(|(k, _)| lo.is_none_or(|l| k >= l) && hi.is_none_or(|h| k < h))
                .collect();
            let delta_rows: Vec<(Key, RecordBatch)> = snap
                .read_at(owned.iter().map(|(k, g)| (k, g.at, g.rows)))
                .await?
                .into_iter()
                .collect();
            // merge by key: long stretches of base rows with the deltas' groups between them
            let mut segs: Vec<RecordBatch> = Vec::new();
            let mut di = 0;
            for b in base_rows {
                let runs = build::group_runs(&b, gi).ok_or_else(|| null_key(self))?;
                let mut start = 0;
                for (k, off, _) in runs {
                    while di < delta_rows.len() && delta_rows[di].0 < k {
                        if off > start {
                            segs.push(b.slice(start, off - start));
                            start = off;
                        }
                        segs.push(delta_rows[di].1.clone());
                        di += 1;
                    }
                }
                if b.num_rows() > start {
                    segs.push(b.slice(start, b.num_rows() - start));
                }
            }
            segs.extend(delta_rows[di..].iter().map(|(_, b)| b.clone()));
            // push in batches of about 64k rows; the last group of a batch waits for the
            // next (a group read in two parts is joined)
            let mut carry: Option<RecordBatch> = None;
            let mut pending: Vec<RecordBatch> = Vec::new();
            let mut pending_rows = 0usize;
            let last = segs.len();
            for (i, seg) in segs.into_iter().enumerate() {
                pending_rows += seg.num_rows();
                pending.push(seg);
                if pending_rows < 64 * 1024 && i + 1 < last {
                    continue;
                }
                let mut parts: Vec<&RecordBatch> = Vec::with_capacity(pending.len() + 1);
                if let Some(c) = &carry {
                    parts.push(c);
                }
                parts.extend(pending.iter());
                let batch = concat_batches(&ds_schema, parts)?;
                pending.clear();
                pending_rows = 0;
                let runs = build::group_runs(&batch, gi).ok_or_else(|| null_key(self))?;
                let keep = if i + 1 < last {
                    runs.last().map_or(batch.num_rows(), |r| r.1)
                } else {
                    batch.num_rows()
                };
                let done: Vec<(Key, usize, usize)> =
                    runs.into_iter().take_while(|r| r.1 < keep).collect();
                let head = batch.slice(0, keep);
                let hashes = build::hash_runs(&head, &done);
                report.rows_written += head.num_rows() as u64;
                builder.push(&head, &done, &hashes).await?;
                carry =
                    Some(batch.slice(keep, batch.num_rows() - keep)).filter(|c| c.num_rows() > 0);
            }
            builder.cut();
        }
        kept.extend(chunks[next.min(chunks.len())..].iter().cloned());
        let (rebuilt, _, _, _, bytes) = builder.finish().await?;
        report.bytes_written += bytes;
        let mut all = kept;
        all.extend(rebuilt.chunks);
        all.sort_by(|a, b| a.first_key.cmp(&b.first_key));
        let base = Base { chunks: all };
        let rows = base.rows();
        if rows != view.layout.rows {
            return Err(CoreError::Corrupt {
                what: format!("dataset '{}' at {}", self.name(), head.commit.id),
                reason: format!(
                    "optimize rebuilt {rows} rows but the version holds {}",
                    view.layout.rows
                ),
            });
        }
        report.chunks = base.chunks.len() as u64;
        let encoded = base.encode();
        report.bytes_written += encoded.len() as u64;
        let bh = store.put_object(BASE_KIND, Bytes::from(encoded)).await?;
        let layout = Layout {
            base: bh,
            deltas: Vec::new(),
            rows: view.layout.rows,
            groups: view.layout.groups,
            content: view.layout.content.clone(),
        };
        let encoded = layout.encode();
        report.bytes_written += encoded.len() as u64;
        let lh = store.put_object(LAYOUT_KIND, Bytes::from(encoded)).await?;
        report.bytes_written += self.set_layout(&head.commit.id, &lh).await?;
        report.deltas_folded = view.deltas.len() as u64;
        Ok(report)
    }
}

fn null_key(ds: &Dataset) -> CoreError {
    CoreError::NullKey {
        dataset: ds.name().into(),
        column: ds.config.group_key.clone(),
    }
}
