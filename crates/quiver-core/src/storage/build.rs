//! Writing format-2 storage: packs, bases built from sorted groups, deltas.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use quiver_store::Store;
use quiver_tree::{ColumnStats, Hash, Key};

use super::format::{merge_stats, Base, Chunk};
use super::lthash::Multiset;
use crate::encoding::{self, GroupHasher};
use crate::erase::{ErasedGroups, GroupAlias};
use crate::error::{CoreError, Result};
use crate::pack_sums::{sums_path, PackSums};
use crate::packs::{writer_properties, PACK_KIND};
use parquet::file::metadata::KeyValue;

/// Rows per base pack file (a pack is closed at the first chunk boundary past this).
pub const PACK_ROWS: u64 = 1 << 20;

/// Whether a chunk ends after the group `key`: content-defined, from the key only, with
/// probability `1 / target` (`target` = average groups per chunk).
pub fn is_boundary(key: &[u8], target: u32) -> bool {
    let mut h = blake3::Hasher::new();
    h.update(b"quiver-chunk-v2");
    h.update(key);
    let d = h.finalize();
    let mut w = [0u8; 8];
    w.copy_from_slice(&d.as_bytes()[..8]);
    u64::from_le_bytes(w) < u64::MAX / target.max(1) as u64
}

/// Write one pack (Parquet) of `batches` and its page-checksum file; returns (pack hash,
/// bytes written).
pub async fn write_pack(
    store: &Store,
    schema: &SchemaRef,
    batches: Vec<RecordBatch>,
) -> Result<(Hash, u64)> {
    let (pack, written, _) = write_pack_with(
        store,
        schema,
        batches,
        writer_properties(),
        ErasedGroups::default(),
    )
    .await?;
    Ok((pack, written))
}

/// [`write_pack`] of a change pack (a commit's delta, a merged delta): zstd-compressed.
/// `meta` is given the pack's footer and decoded rows from the bytes written, so the
/// diffs and reads that follow in this process do not read the pack back.
pub async fn write_change_pack(
    store: &Store,
    schema: &SchemaRef,
    batches: Vec<RecordBatch>,
    meta: &crate::packs::MetaCache,
) -> Result<(Hash, u64)> {
    let (pack, written, bytes) = write_pack_with(
        store,
        schema,
        batches,
        crate::packs::change_pack_properties(),
        ErasedGroups::default(),
    )
    .await?;
    meta.remember_written(store, &pack, bytes).await?;
    Ok((pack, written))
}

/// Encode `batches` as a pack: its bytes, blake3 and sums (`salt`: a footer entry that
/// makes the bytes differ from an erased pack's original, see [`write_pack_with`]).
fn encode_pack(
    schema: SchemaRef,
    batches: &[RecordBatch],
    props: parquet::file::properties::WriterProperties,
    erased: &ErasedGroups,
    salt: u32,
) -> Result<(Bytes, Hash, PackSums)> {
    // room for the pack up front: growing by doubling copied every byte up to 6 times
    // and faulted in fresh pages each time (pages never written are never committed)
    let in_memory: usize = batches.iter().map(|b| b.get_array_memory_size()).sum();
    let mut buf = Vec::with_capacity(in_memory.saturating_add(64 * 1024));
    let mut writer = ArrowWriter::try_new(&mut buf, schema, Some(props))?;
    if !erased.is_empty() {
        writer.append_key_value_metadata(KeyValue::new(
            crate::erase::FOOTER_KEY.to_string(),
            erased.encode(),
        ));
    }
    if salt > 0 {
        writer
            .append_key_value_metadata(KeyValue::new("quiver.salt".to_string(), salt.to_string()));
    }
    for b in batches {
        writer.write(b)?;
    }
    writer.close()?;
    seal(buf)
}

/// An encoded pack's bytes with its address and page sums.
fn seal(buf: Vec<u8>) -> Result<(Bytes, Hash, PackSums)> {
    let buf = Bytes::from(buf);
    let hash = Hash::of(&buf);
    let sums = PackSums::compute(hash, &buf)?;
    Ok((buf, hash, sums))
}

/// Write a pack: the object, then its sums file. `erased` lists the groups whose rows were
/// copied from erased rows, with their recorded hashes ([`crate::erase::footer`]).
///
/// Packs are content-addressed, so a pack with the bytes of one that was erased since
/// would be the erased object (its path holds the erased bytes). Such a pack (found when
/// its object already exists and has an erasure record) is written with a salt entry in
/// its footer instead: other bytes, another address, the rows this write means.
async fn write_pack_with(
    store: &Store,
    schema: &SchemaRef,
    batches: Vec<RecordBatch>,
    props: parquet::file::properties::WriterProperties,
    erased: ErasedGroups,
) -> Result<(Hash, u64, Bytes)> {
    let batches = std::sync::Arc::new(batches);
    let erased = std::sync::Arc::new(erased);
    for salt in 0u32..16 {
        let (schema, batches, props, erased) = (
            schema.clone(),
            batches.clone(),
            props.clone(),
            erased.clone(),
        );
        let (bytes, pack, sums) = tokio::task::spawn_blocking(move || {
            encode_pack(schema, &batches, props, &erased, salt)
        })
        .await
        .map_err(|e| CoreError::Join(e.to_string()))??;
        if let Some(written) = put_pack(store, bytes.clone(), pack, sums).await? {
            return Ok((pack, written, bytes));
        }
    }
    Err(CoreError::Join(
        "could not find an address for a pack that no erased pack has".into(),
    ))
}

/// Store an encoded pack and its sums file; the bytes written, or `None` when its address
/// is an erased pack's (the caller writes it again with a salt).
async fn put_pack(store: &Store, bytes: Bytes, pack: Hash, sums: PackSums) -> Result<Option<u64>> {
    let total = bytes.len() as u64;
    let path = crate::packs::pack_path(&pack);
    if !store.put_file_if_absent(&path, bytes.clone()).await? {
        if crate::erase::read_record(store, &pack).await?.is_some() {
            return Ok(None);
        }
        // already there: the store makes sure the copy is whole
        store.put_object(PACK_KIND, bytes).await?;
    }
    let sums = sums.encode();
    let sums_len = sums.len() as u64;
    store
        .put_file_if_absent(&sums_path(&pack), Bytes::from(sums))
        .await?;
    Ok(Some(total + sums_len))
}

/// A base pack being encoded on a blocking thread while its rows arrive: the rows of each
/// chunk are sent as the chunk takes them, so encoding overlaps with hashing the groups
/// that follow instead of starting when the pack is full (a one-pack import encoded its
/// only pack after every group was hashed). The bytes equal [`encode_pack`]'s of the same
/// batches without salt or erased groups.
struct PackEncoder {
    rows: std::sync::mpsc::Sender<RecordBatch>,
    done: tokio::task::JoinHandle<Result<(Bytes, Hash, PackSums)>>,
}

impl PackEncoder {
    fn start(schema: SchemaRef) -> PackEncoder {
        let (rows, rx) = std::sync::mpsc::channel::<RecordBatch>();
        let done = tokio::task::spawn_blocking(move || {
            let mut buf = Vec::with_capacity(16 << 20);
            let mut writer = ArrowWriter::try_new(&mut buf, schema, Some(writer_properties()))?;
            for b in rx {
                writer.write(&b)?;
            }
            writer.close()?;
            seal(buf)
        });
        PackEncoder { rows, done }
    }

    /// Close the pack and store it (`batches`: its rows again, to write it with a salt
    /// should its address be an erased pack's).
    async fn finish(
        self,
        store: &Store,
        schema: &SchemaRef,
        batches: Vec<RecordBatch>,
    ) -> Result<(Hash, u64)> {
        drop(self.rows);
        let (bytes, pack, sums) = self
            .done
            .await
            .map_err(|e| CoreError::Join(e.to_string()))??;
        match put_pack(store, bytes, pack, sums).await? {
            Some(written) => Ok((pack, written)),
            None => write_pack(store, schema, batches).await,
        }
    }
}

/// Group runs of a batch sorted by (group key, label key): `(key, offset, len)`.
/// `None` when a group key is null or of a type keys cannot have.
pub fn group_runs(batch: &RecordBatch, gi: usize) -> Option<Vec<(Key, usize, usize)>> {
    let g = batch.column(gi);
    if g.null_count() > 0 {
        return None;
    }
    if batch.num_rows() == 0 {
        return Some(Vec::new());
    }
    // equal neighbours compared in place (one key materialized per group, not per row)
    let parts = arrow::compute::partition(std::slice::from_ref(g)).ok()?;
    parts
        .ranges()
        .into_iter()
        .map(|r| Some((encoding::key_bytes(g.as_ref(), r.start)?, r.start, r.len())))
        .collect()
}

/// Runs per hashing thread below which one thread hashes them all.
const HASH_SPLIT_RUNS: usize = 4096;

/// Group hashes of the runs of a sorted batch. Large batches are split across the
/// machine's cores (the hash of every group is independent of the others): on an import
/// this is the critical path beside Parquet decoding.
pub fn hash_runs(batch: &RecordBatch, runs: &[(Key, usize, usize)]) -> Vec<Hash> {
    let h = GroupHasher::for_batch(batch);
    let hash_all = |part: &[(Key, usize, usize)]| -> Vec<Hash> {
        let mut buf = Vec::with_capacity(1024);
        part.iter()
            .map(|(_, o, n)| h.hash_with(*o, *n, &mut buf))
            .collect()
    };
    let threads = crate::packs::cores().min(runs.len() / HASH_SPLIT_RUNS);
    if threads <= 1 {
        return hash_all(runs);
    }
    let per = runs.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let (first, rest) = runs.split_at(per.min(runs.len()));
        let others: Vec<_> = rest
            .chunks(per)
            .map(|part| scope.spawn(move || hash_all(part)))
            .collect();
        let mut out = hash_all(first);
        for t in others {
            // a panic in a hashing thread is a bug: re-raise it here
            out.extend(t.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
        }
        out
    })
}

/// A pack being written in the background: (pack hash, bytes written).
type PackWrite = tokio::task::JoinHandle<Result<(Hash, u64)>>;

/// An open chunk: rows so far (slices of pushed batches) and its summary.
#[derive(Default)]
struct Open {
    first_key: Option<Key>,
    last_key: Key,
    rows: u64,
    groups: u64,
    stats: Vec<ColumnStats>,
    content: Multiset,
    /// First row of the chunk in the pack being filled.
    start: u64,
}

/// Builds a base from label groups pushed in strictly ascending key order: cuts chunks at
/// content-defined boundaries (or at `max_chunk_rows`), fills packs of about
/// [`PACK_ROWS`] rows, and keeps the content multiset of everything pushed.
pub struct BaseBuilder {
    store: Store,
    schema: SchemaRef,
    stats_cols: Vec<usize>,
    target: u32,
    max_chunk_rows: u64,
    open: Open,
    /// Chunks closed in the pack being filled (their `pack` is set when it is written).
    closed: Vec<Chunk>,
    pending: Vec<RecordBatch>,
    pending_rows: u64,
    /// Groups of the pending pack whose rows are erased rows, with their recorded hashes.
    pending_erased: Vec<GroupAlias>,
    chunks: Vec<Chunk>,
    /// The pack being written in the background and the chunks it holds: writing (Parquet
    /// encoding, checksums, the put) overlaps with hashing the next pack's groups.
    inflight: Option<(PackWrite, Vec<Chunk>)>,
    /// The encoder of the pack being filled, fed as its rows arrive.
    encoder: Option<PackEncoder>,
    pub content: Multiset,
    pub rows: u64,
    pub groups: u64,
    pub bytes_written: u64,
    last_key: Option<Key>,
}

impl BaseBuilder {
    pub fn new(store: Store, schema: SchemaRef, stats_cols: Vec<usize>, target: u32) -> Self {
        BaseBuilder {
            store,
            schema,
            stats_cols,
            target: target.max(1),
            max_chunk_rows: (target.max(1) as u64) * 64,
            open: Open::default(),
            closed: Vec::new(),
            pending: Vec::new(),
            pending_rows: 0,
            pending_erased: Vec::new(),
            chunks: Vec::new(),
            inflight: None,
            encoder: None,
            content: Multiset::default(),
            rows: 0,
            groups: 0,
            bytes_written: 0,
            last_key: None,
        }
    }

    /// Push a batch of whole groups sorted by (group, label) with its group runs and hashes
    /// (keys ascending, all greater than any key pushed before).
    pub async fn push(
        &mut self,
        batch: &RecordBatch,
        runs: &[(Key, usize, usize)],
        hashes: &[Hash],
    ) -> Result<()> {
        self.push_with(batch, runs, hashes, None).await
    }

    /// [`BaseBuilder::push`] of groups some of which are erased rows copied from erased
    /// packs: `row_hashes` are the hashes of the rows as they are; where one differs from
    /// the group's recorded hash in `hashes`, the pack's footer keeps the recorded one
    /// ([`crate::erase::footer`]).
    pub async fn push_with(
        &mut self,
        batch: &RecordBatch,
        runs: &[(Key, usize, usize)],
        hashes: &[Hash],
        row_hashes: Option<&[Hash]>,
    ) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let mut seg_start = 0usize;
        for (i, ((key, off, len), h)) in runs.iter().zip(hashes).enumerate() {
            if let Some(rh) = row_hashes.and_then(|r| r.get(i)).filter(|rh| *rh != h) {
                self.pending_erased.push(GroupAlias {
                    key: key.clone(),
                    first_row: self.pending_rows + (*off - seg_start) as u64,
                    rows: *len as u64,
                    hash: *h,
                    erased: *rh,
                });
            }
            if self.last_key.as_ref().is_some_and(|l| l >= key) {
                return Err(CoreError::Join(
                    "base builder: groups not in ascending key order".into(),
                ));
            }
            self.last_key = Some(key.clone());
            let o = &mut self.open;
            if o.first_key.is_none() {
                o.first_key = Some(key.clone());
                o.start = self.pending_rows + (*off - seg_start) as u64;
            }
            o.last_key = key.clone();
            o.rows += *len as u64;
            o.groups += 1;
            // the version's multiset gets each chunk's whole when the chunk closes: one
            // element expansion per group, not two
            o.content.add(h);
            self.rows += *len as u64;
            self.groups += 1;
            if is_boundary(key, self.target) || o.rows >= self.max_chunk_rows {
                let end = off + len;
                self.take_segment(batch, seg_start, end);
                seg_start = end;
                self.close_chunk();
                if self.pending_rows >= PACK_ROWS {
                    self.flush().await?;
                }
            }
        }
        if seg_start < batch.num_rows() {
            self.take_segment(batch, seg_start, batch.num_rows());
        }
        Ok(())
    }

    /// Move rows `from..to` of `batch` into the pending pack, folding their statistics
    /// into the open chunk.
    fn take_segment(&mut self, batch: &RecordBatch, from: usize, to: usize) {
        if to <= from {
            return;
        }
        let stats: Vec<ColumnStats> = self
            .stats_cols
            .iter()
            .map(|&i| encoding::column_stats(batch.column(i).as_ref(), from, to - from))
            .collect();
        let first = self.open.stats.is_empty() && !stats.is_empty();
        merge_stats(&mut self.open.stats, &stats, first);
        let rows = batch.slice(from, to - from);
        let encoder = self
            .encoder
            .get_or_insert_with(|| PackEncoder::start(self.schema.clone()));
        // a send fails only when the encoder stopped on an error, which `flush` reports
        let _ = encoder.rows.send(rows.clone());
        self.pending.push(rows);
        self.pending_rows += (to - from) as u64;
    }

    fn close_chunk(&mut self) {
        let o = std::mem::take(&mut self.open);
        let Some(first_key) = o.first_key else { return };
        self.content.add_all(&o.content);
        self.closed.push(Chunk {
            first_key,
            last_key: o.last_key,
            rows: o.rows,
            groups: o.groups,
            stats: o.stats.into(),
            pack: Hash([0; 32]),
            start: o.start,
            hash: o.content.digest(),
        });
    }

    /// End the open chunk here (a run of rebuilt chunks ends before an untouched one).
    pub fn cut(&mut self) {
        self.close_chunk();
    }

    async fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let batches = std::mem::take(&mut self.pending);
        let closed = std::mem::take(&mut self.closed);
        let erased = ErasedGroups::new(std::mem::take(&mut self.pending_erased));
        self.pending_rows = 0;
        // at most one pack in flight: memory stays bounded by two packs
        self.settle().await?;
        let (store, schema) = (self.store.clone(), self.schema.clone());
        let encoder = self.encoder.take();
        let task = tokio::spawn(async move {
            match encoder {
                // erased rows need their footer entry: encoded again, whole (rare)
                Some(e) if erased.is_empty() => e.finish(&store, &schema, batches).await,
                _ => write_pack_with(&store, &schema, batches, writer_properties(), erased)
                    .await
                    .map(|(pack, written, _)| (pack, written)),
            }
        });
        self.inflight = Some((task, closed));
        Ok(())
    }

    /// Wait for the pack in flight and give its chunks their pack.
    async fn settle(&mut self) -> Result<()> {
        if let Some((task, closed)) = self.inflight.take() {
            let (pack, bytes) = task.await.map_err(|e| CoreError::Join(e.to_string()))??;
            self.bytes_written += bytes;
            for mut c in closed {
                c.pack = pack;
                self.chunks.push(c);
            }
        }
        Ok(())
    }

    /// Close the last chunk and pack, store the base record and return the layout of a
    /// version holding exactly this base, with the bytes written.
    pub async fn finish_layout(self) -> Result<(super::Layout, u64)> {
        let store = self.store.clone();
        let (base, content, rows, groups, mut bytes) = self.finish().await?;
        let encoded = base.encode();
        bytes += encoded.len() as u64;
        let base = store
            .put_object(super::format::BASE_KIND, Bytes::from(encoded))
            .await?;
        let layout = super::Layout {
            base,
            deltas: Vec::new(),
            rows,
            groups,
            content,
            folds: Vec::new(),
        };
        Ok((layout, bytes))
    }

    /// Close the last chunk and pack; returns the base.
    pub async fn finish(mut self) -> Result<(Base, Multiset, u64, u64, u64)> {
        self.close_chunk();
        self.flush().await?;
        self.settle().await?;
        Ok((
            Base {
                chunks: self.chunks,
            },
            self.content,
            self.rows,
            self.groups,
            self.bytes_written,
        ))
    }
}

/// The schema with every column as stored (used by callers building batches for packs).
pub fn same_schema(a: &SchemaRef, b: &SchemaRef) -> bool {
    Arc::ptr_eq(a, b) || a.fields() == b.fields()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use arrow::array::{ArrayRef, Int64Array, StringArray};

    #[test]
    fn split_hashing_matches_one_thread() {
        // 3 * HASH_SPLIT_RUNS groups of 1..=3 rows, sorted by group
        let mut g = Vec::new();
        let mut v = Vec::new();
        for i in 0..(3 * HASH_SPLIT_RUNS) as i64 {
            for j in 0..=(i % 3) {
                g.push(format!("s{i:08}"));
                v.push(i * 10 + j);
            }
        }
        let batch = RecordBatch::try_from_iter([
            ("g", Arc::new(StringArray::from(g)) as ArrayRef),
            ("v", Arc::new(Int64Array::from(v)) as ArrayRef),
        ])
        .unwrap();
        let runs = group_runs(&batch, 0).unwrap();
        assert_eq!(runs.len(), 3 * HASH_SPLIT_RUNS);
        let h = GroupHasher::for_batch(&batch);
        let one: Vec<Hash> = runs.iter().map(|(_, o, n)| h.hash(*o, *n)).collect();
        assert_eq!(hash_runs(&batch, &runs), one);
        assert_eq!(hash_runs(&batch, &runs[..10]), one[..10].to_vec());
    }
}
