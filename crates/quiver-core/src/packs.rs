//! Physical storage of label partitions: Parquet *packs* and the pack index.
//!
//! The snapshot tree is logical: its leaves are identified by the hash of their canonical
//! content. Their rows live in packs — Parquet files holding the rows of many leaves in key
//! order — written once per commit (only the commit's new leaves) and stored as
//! content-addressed objects of kind `pack`. For every pack a small index file
//! `datasets/<ds>/packidx/<pack hex>` maps each leaf hash to its row range in the pack.
//! Readers load every index file of the dataset once and cache the map; leaf hashes,
//! roots and commit ids never depend on where a leaf is stored, so repacking (OPTIMIZE)
//! only adds index files.
//!
//! Next to every pack a *sums file* (`packsums/<xx>/<pack hex>`, [`crate::pack_sums`])
//! holds a CRC-32 per Parquet page, per page index and of the footer; every range read of a
//! pack — ours here and DataFusion's — goes through [`crate::verified::VerifiedStore`],
//! which checks them, so a corrupt pack fails the read naming the pack instead of being
//! served. Write order: pack, sums file, index file (a reader finds a pack only through its
//! index, so its sums are there first).

// parquet 59 deprecates ParquetObjectReader in favour of a hand-written AsyncFileReader;
// it remains the maintained object_store reader at this version, so we keep it for now.
#![allow(deprecated)]

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::ops::Range;
use std::sync::{Arc, Mutex};

use crate::storage::cache::Lru;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use bytes::Bytes;
use futures::TryStreamExt;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, RowSelection, RowSelector,
};
use parquet::arrow::async_reader::ParquetObjectReader;
use parquet::arrow::{ArrowWriter, ParquetRecordBatchStreamBuilder};
use parquet::basic::{Compression, Encoding};
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterVersion};
use quiver_store::Store;
use quiver_tree::Hash;

use crate::error::{CoreError, Result};
use crate::pack_sums::{sums_path, PackSums};
use crate::verified::VerifiedStore;

/// Object kind of Parquet packs.
pub const PACK_KIND: &str = "pack";
const IDX_MAGIC: &[u8; 8] = b"QVPIDX01";
/// Rows per Parquet row group in a pack.
pub const ROW_GROUP_ROWS: usize = 128 * 1024;

/// Where a leaf's rows are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeafLoc {
    pub pack: Hash,
    pub start: u64,
    pub rows: u64,
}

/// The dataset's leaf → location map, loaded incrementally from index files.
#[derive(Default)]
pub struct PackIndex {
    loaded: HashSet<String>,
    map: HashMap<Hash, LeafLoc, BuildHasherDefault<DigestHasher>>,
}

/// Hasher for maps keyed by content digests: blake3 output is uniform already, so folding
/// its words is as good as SipHash and several times cheaper (a scan plan looks up every
/// kept leaf; a 10M-label selection has ~150k).
#[derive(Default)]
pub struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for c in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            self.0 = self.0.rotate_left(17) ^ u64::from_le_bytes(w);
        }
    }
}

/// Shared, lockable pack index of one dataset.
pub type SharedPackIndex = Arc<Mutex<PackIndex>>;

pub(crate) fn idx_dir(dataset: &str) -> String {
    format!("datasets/{dataset}/packidx/")
}

/// Path (relative to the catalog root) of a pack object.
pub fn pack_path(pack: &Hash) -> String {
    quiver_store::Store::object_path(PACK_KIND, pack)
}

impl PackIndex {
    /// Look a leaf up without refreshing.
    pub fn get(&self, leaf: &Hash) -> Option<LeafLoc> {
        self.map.get(leaf).copied()
    }
}

/// Load index files not seen yet.
pub async fn refresh(store: &Store, dataset: &str, index: &SharedPackIndex) -> Result<()> {
    let names = store.list(&idx_dir(dataset)).await?;
    let todo: Vec<String> = {
        let idx = index
            .lock()
            .map_err(|_| CoreError::Join("pack index poisoned".into()))?;
        names
            .into_iter()
            .filter(|n| !idx.loaded.contains(n))
            .collect()
    };
    for name in todo {
        let bytes = store.get_file(&name).await?;
        let entries = decode_idx(&name, &bytes)?;
        let mut idx = index
            .lock()
            .map_err(|_| CoreError::Join("pack index poisoned".into()))?;
        for (leaf, loc) in entries {
            idx.map.entry(leaf).or_insert(loc);
        }
        idx.loaded.insert(name);
    }
    Ok(())
}

/// Locations of `leaves`, refreshing the index once if some are unknown.
pub async fn locate(
    store: &Store,
    dataset: &str,
    index: &SharedPackIndex,
    leaves: &[Hash],
) -> Result<Vec<LeafLoc>> {
    for attempt in 0..2 {
        let mut out = Vec::with_capacity(leaves.len());
        let mut missing = None;
        {
            let idx = index
                .lock()
                .map_err(|_| CoreError::Join("pack index poisoned".into()))?;
            for l in leaves {
                match idx.get(l) {
                    Some(loc) => out.push(loc),
                    None => {
                        missing = Some(*l);
                        break;
                    }
                }
            }
        }
        match missing {
            None => return Ok(out),
            Some(l) if attempt == 1 => {
                return Err(CoreError::Corrupt {
                    what: format!("dataset '{dataset}'"),
                    reason: format!("leaf {l} has no pack (missing pack index entry)"),
                })
            }
            Some(_) => refresh(store, dataset, index).await?,
        }
    }
    Ok(Vec::new())
}

/// Read and decode the index file at `path`: (leaf, location) pairs.
pub(crate) fn decode_idx(name: &str, b: &[u8]) -> Result<Vec<(Hash, LeafLoc)>> {
    let bad = |r: &str| CoreError::Corrupt {
        what: name.to_string(),
        reason: r.to_string(),
    };
    if b.len() < 40 || &b[..8] != IDX_MAGIC || !(b.len() - 40).is_multiple_of(48) {
        return Err(bad("not a pack index"));
    }
    let mut pack = [0u8; 32];
    pack.copy_from_slice(&b[8..40]);
    let pack = Hash(pack);
    let mut out = Vec::new();
    for chunk in b[40..].chunks_exact(48) {
        let mut h = [0u8; 32];
        h.copy_from_slice(&chunk[..32]);
        let start = u64::from_le_bytes(chunk[32..40].try_into().map_err(|_| bad("entry"))?);
        let rows = u64::from_le_bytes(chunk[40..48].try_into().map_err(|_| bad("entry"))?);
        out.push((Hash(h), LeafLoc { pack, start, rows }));
    }
    Ok(out)
}

/// Largest dictionary page of a column chunk. A reader of any row of a row group decodes
/// the whole dictionary page of every column it reads; with the default (1 MiB) the
/// high-cardinality columns of label data (image hashes, box coordinates, times) carried
/// ~4.5 MB of dictionaries per 128k-row group, which scattered reads of a few groups (diff,
/// merge) paid in every row group they touched. Past this size a column falls back to plain
/// pages; low-cardinality columns (classes, states, reviewers) stay dictionary-encoded.
pub const DICTIONARY_PAGE_BYTES: usize = 64 * 1024;

/// A page is stored compressed only when compression makes it at most this fraction of
/// its size.
pub const COMPRESSION_MUST_SAVE: f64 = 0.9;

/// Writer properties of packs: large row groups for scans, small pages with statistics and
/// the page index for pruning and scattered reads, small dictionaries, snappy where it
/// pays (data page v2).
pub fn writer_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_data_page_row_count_limit(2 * 1024)
        .set_dictionary_page_size_limit(DICTIONARY_PAGE_BYTES)
        .set_compression(Compression::SNAPPY)
        // data page v2 can store a page uncompressed when compression does not pay (box
        // coordinates and scores: snappy saves nothing on them), so reading such a page
        // is no copy instead of a "decompression" that copies every byte
        .set_writer_version(WriterVersion::PARQUET_2_0)
        .set_data_page_v2_compression_ratio_threshold(COMPRESSION_MUST_SAVE)
        // v2's default fallbacks (DELTA_BYTE_ARRAY, DELTA_BINARY_PACKED) decode slower
        .set_encoding(Encoding::PLAIN)
        .build()
}

/// Writer properties of change packs (a commit's new rows and before-image copies, an
/// OPTIMIZE's merged delta): the pack properties with zstd instead of snappy. These packs
/// are small and written on every commit, so their bytes are what a commit costs; zstd
/// makes them about a third smaller for a decode cost that a few thousand rows never
/// notice. Base packs keep snappy, whose decode speed full scans do notice.
pub fn change_pack_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_data_page_row_count_limit(2 * 1024)
        .set_dictionary_page_size_limit(DICTIONARY_PAGE_BYTES)
        .set_compression(Compression::ZSTD(
            parquet::basic::ZstdLevel::try_new(3).unwrap_or_default(),
        ))
        .set_writer_version(WriterVersion::PARQUET_2_0)
        .set_data_page_v2_compression_ratio_threshold(COMPRESSION_MUST_SAVE)
        .set_encoding(Encoding::PLAIN)
        .build()
}

/// Write a pack holding `leaves` (each a list of batches, in key order) and its index.
/// Returns (pack hash, bytes written).
pub async fn write_pack(
    store: &Store,
    dataset: &str,
    schema: &SchemaRef,
    leaves: Vec<(Hash, Vec<RecordBatch>)>,
) -> Result<(Hash, u64)> {
    let schema = schema.clone();
    let (bytes, entries, sums) =
        tokio::task::spawn_blocking(move || -> Result<(Bytes, Vec<IdxEntry>, PackSums)> {
            let mut buf = Vec::new();
            let mut writer = ArrowWriter::try_new(&mut buf, schema, Some(writer_properties()))?;
            let mut entries = Vec::with_capacity(leaves.len());
            let mut row = 0u64;
            for (leaf, batches) in leaves {
                let n: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
                for b in &batches {
                    writer.write(b)?;
                }
                entries.push((leaf, row, n));
                row += n;
            }
            writer.close()?;
            let buf = Bytes::from(buf);
            // addressed below, once the store has hashed the pack
            let sums = PackSums::compute(Hash([0; 32]), &buf)?;
            Ok((buf, entries, sums))
        })
        .await
        .map_err(|e| CoreError::Join(e.to_string()))??;
    let total = bytes.len() as u64;
    let pack = store.put_object(PACK_KIND, bytes).await?;
    let sums = sums.with_pack(pack).encode();
    let sums_len = sums.len() as u64;
    store
        .put_file_if_absent(&sums_path(&pack), Bytes::from(sums))
        .await?;
    let mut idx = Vec::with_capacity(40 + 48 * entries.len());
    idx.extend_from_slice(IDX_MAGIC);
    idx.extend_from_slice(pack.as_bytes());
    for (leaf, start, rows) in &entries {
        idx.extend_from_slice(leaf.as_bytes());
        idx.extend_from_slice(&start.to_le_bytes());
        idx.extend_from_slice(&rows.to_le_bytes());
    }
    let idx_len = idx.len() as u64;
    store
        .put_file(
            &format!("{}{}", idx_dir(dataset), pack.to_hex()),
            Bytes::from(idx),
        )
        .await?;
    Ok((pack, total + sums_len + idx_len))
}

/// (leaf, first row, row count) of one leaf in a pack being written.
type IdxEntry = (Hash, u64, u64);

/// A cached footer: reader metadata, the erased groups it lists, and the generation of the
/// pack it was read at ([`VerifiedStore::generation`]).
#[derive(Clone)]
struct Footer {
    meta: ArrowReaderMetadata,
    erased: Arc<crate::erase::ErasedGroups>,
    generation: u64,
}

/// Cache of Parquet footers (with page index) by pack hash, shared across queries, and
/// the verifying store every pack read of this crate goes through. An entry read at an
/// older generation of its pack (the pack was rewritten by an erasure since) is read again.
pub struct MetaCache {
    map: Mutex<HashMap<Hash, Footer>>,
    packs: Arc<VerifiedStore>,
    /// Decoded rows of small packs (a commit's change pack), with the generation they were
    /// read at: diffs and merges of recent versions read the same few change packs again
    /// and again, and decoding one costs more than its rows (a zstd context per column).
    small: Mutex<Lru<Hash, SmallPack>>,
}

/// The decoded rows of a small pack and what identified its bytes when they were read: the
/// pack's generation in this process and the object's size, modification time and e-tag
/// (another process's erasure rewrites the object; a cached copy must not outlive that).
#[derive(Clone)]
struct SmallPack {
    generation: u64,
    object: (u64, chrono::DateTime<chrono::Utc>, Option<String>),
    rows: Arc<Vec<RecordBatch>>,
}

/// Packs of at most this many rows are decoded whole and kept by [`MetaCache`].
pub const SMALL_PACK_ROWS: i64 = 64 * 1024;
/// Bytes of decoded small packs a [`MetaCache`] keeps.
pub const SMALL_PACK_CACHE_BYTES: usize = 64 << 20;

impl MetaCache {
    /// Forget every cached footer and decoded pack.
    pub(crate) fn clear(&self) {
        if let Ok(mut m) = self.map.lock() {
            m.clear();
        }
        if let Ok(mut m) = self.small.lock() {
            *m = Lru::new(SMALL_PACK_CACHE_BYTES);
        }
    }

    /// An empty cache reading packs through `packs`.
    pub fn new(packs: Arc<VerifiedStore>) -> MetaCache {
        MetaCache {
            map: Mutex::default(),
            packs,
            small: Mutex::new(Lru::new(SMALL_PACK_CACHE_BYTES)),
        }
    }

    /// Every row of a small pack, decoded once per generation of the pack.
    async fn small_rows(
        &self,
        store: &Store,
        pack: &Hash,
        meta: ArrowReaderMetadata,
    ) -> Result<Arc<Vec<RecordBatch>>> {
        let generation = self.packs.generation(pack);
        // one head of the object per read: cheap next to decoding, and it tells an object
        // rewritten by another process's erasure
        use object_store::ObjectStoreExt;
        let head = store
            .object_store()
            .head(&store.full_path(&pack_path(pack)))
            .await
            .map_err(|e| CoreError::Store(e.into()))?;
        let object = (head.size, head.last_modified, head.e_tag);
        let cached = self.small.lock().ok().and_then(|mut m| m.get(pack));
        if let Some(c) = cached {
            if c.generation == generation && c.object == object {
                return Ok(c.rows);
            }
        }
        let reader = self.reader(store, pack);
        let batches: Vec<RecordBatch> =
            ParquetRecordBatchStreamBuilder::new_with_metadata(reader, meta)
                .with_batch_size(SMALL_PACK_ROWS as usize)
                .build()?
                .try_collect()
                .await
                .map_err(lift_corrupt)?;
        let weight = batches.iter().map(|b| b.get_array_memory_size()).sum();
        let rows = Arc::new(batches);
        if let Ok(mut m) = self.small.lock() {
            let entry = SmallPack {
                generation,
                object,
                rows: rows.clone(),
            };
            m.insert(*pack, entry, weight);
        }
        Ok(rows)
    }

    /// The verifying object store pack reads go through (paths as in the catalog's store).
    pub fn pack_store(&self) -> Arc<dyn object_store::ObjectStore> {
        self.packs.clone()
    }

    /// The verifying store itself (e.g. to size its cache of verified bytes).
    pub fn verified(&self) -> &VerifiedStore {
        &self.packs
    }

    /// This process rewrote `pack`: drop its footer, decoded rows and sums, raise its
    /// generation.
    pub(crate) fn forget(&self, pack: &Hash) {
        if let Ok(mut m) = self.map.lock() {
            m.remove(pack);
        }
        if let Ok(mut m) = self.small.lock() {
            m.remove(pack);
        }
        self.packs.forget(pack);
    }

    /// A Parquet reader of `pack` whose every range is verified.
    fn reader(&self, store: &Store, pack: &Hash) -> ParquetObjectReader {
        ParquetObjectReader::new(self.pack_store(), store.full_path(&pack_path(pack)))
    }

    async fn footer(&self, store: &Store, pack: &Hash) -> Result<Footer> {
        let generation = self.packs.generation(pack);
        if let Some(f) = self
            .map
            .lock()
            .ok()
            .and_then(|m| m.get(pack).cloned())
            .filter(|f| f.generation == generation)
        {
            return Ok(f);
        }
        let mut reader = self.reader(store, pack);
        let meta = ArrowReaderMetadata::load_async(
            &mut reader,
            ArrowReaderOptions::new()
                .with_page_index_policy(parquet::file::metadata::PageIndexPolicy::Optional),
        )
        .await
        .map_err(lift_corrupt)?;
        let erased = Arc::new(crate::erase::ErasedGroups::of_footer(
            pack,
            meta.metadata(),
        )?);
        let f = Footer {
            meta,
            erased,
            generation,
        };
        if let Ok(mut m) = self.map.lock() {
            m.insert(*pack, f.clone());
        }
        Ok(f)
    }

    /// Keep the footer of a pack this process just wrote, and its decoded rows when it is
    /// small ([`SMALL_PACK_ROWS`]) and the store local, both taken from `bytes`, the pack's
    /// bytes as written: what reading it back would give, without the read. Kept rows
    /// carry the object's identity from a HEAD; on an object store that is a round trip
    /// every commit would pay, so there only the footer is kept.
    pub(crate) async fn remember_written(
        &self,
        store: &Store,
        pack: &Hash,
        bytes: Bytes,
    ) -> Result<()> {
        let generation = self.packs.generation(pack);
        let meta = ArrowReaderMetadata::load(
            &bytes,
            ArrowReaderOptions::new()
                .with_page_index_policy(parquet::file::metadata::PageIndexPolicy::Optional),
        )
        .map_err(lift_corrupt)?;
        let erased = Arc::new(crate::erase::ErasedGroups::of_footer(
            pack,
            meta.metadata(),
        )?);
        if let Ok(mut m) = self.map.lock() {
            m.insert(
                *pack,
                Footer {
                    meta: meta.clone(),
                    erased,
                    generation,
                },
            );
        }
        if !holds_few_rows(&meta) || !store.is_local() {
            return Ok(());
        }
        use object_store::ObjectStoreExt;
        let head = store
            .object_store()
            .head(&store.full_path(&pack_path(pack)))
            .await
            .map_err(|e| CoreError::Store(e.into()))?;
        let batches: Vec<RecordBatch> =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::new_with_metadata(
                bytes, meta,
            )
            .with_batch_size(SMALL_PACK_ROWS as usize)
            .build()?
            .collect::<std::result::Result<_, _>>()?;
        let weight = batches.iter().map(|b| b.get_array_memory_size()).sum();
        if let Ok(mut m) = self.small.lock() {
            let entry = SmallPack {
                generation,
                object: (head.size, head.last_modified, head.e_tag),
                rows: Arc::new(batches),
            };
            m.insert(*pack, entry, weight);
        }
        Ok(())
    }

    /// The reader metadata of a pack, loading (and caching) it on first use.
    pub async fn get(&self, store: &Store, pack: &Hash) -> Result<ArrowReaderMetadata> {
        Ok(self.footer(store, pack).await?.meta)
    }

    /// The groups of a pack whose rows were erased, with their recorded hashes
    /// ([`crate::erase::footer`]).
    pub async fn erased_groups(
        &self,
        store: &Store,
        pack: &Hash,
    ) -> Result<Arc<crate::erase::ErasedGroups>> {
        Ok(self.footer(store, pack).await?.erased)
    }

    /// The generation of `pack` (see [`VerifiedStore::generation`]).
    pub fn generation(&self, pack: &Hash) -> u64 {
        self.packs.generation(pack)
    }

    /// The size of `pack` as this process knows it (its cached sums), if it does.
    pub(crate) fn known_size(&self, pack: &Hash) -> Option<u64> {
        self.packs.cached_size(pack)
    }
}

/// The cores this process may use (read once: the standard library reads the cgroup
/// files again on every call).
pub(crate) fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
}

/// Whether a pack with this footer is decoded whole and kept ([`SMALL_PACK_ROWS`]).
fn holds_few_rows(m: &ArrowReaderMetadata) -> bool {
    m.metadata().file_metadata().num_rows() <= SMALL_PACK_ROWS
}

/// Whether `pack` is small enough to be decoded whole and kept ([`SMALL_PACK_ROWS`]).
pub(crate) async fn is_small(store: &Store, meta: &MetaCache, pack: &Hash) -> Result<bool> {
    Ok(holds_few_rows(&meta.get(store, pack).await?))
}

/// Largest batch a range read decodes at once.
const RANGE_BATCH_ROWS: usize = 64 * 1024;

/// Read row ranges of one pack; returns the batches of each range, in the order given.
pub async fn read_ranges(
    store: &Store,
    meta: &MetaCache,
    pack: &Hash,
    ranges: &[Range<u64>],
    projection: Option<&[usize]>,
) -> Result<Vec<Vec<RecordBatch>>> {
    if ranges.is_empty() {
        return Ok(Vec::new());
    }
    // sort ranges, remember original order
    let mut order: Vec<usize> = (0..ranges.len()).collect();
    order.sort_by_key(|&i| ranges[i].start);
    let mut selectors = Vec::new();
    let mut pos = 0u64;
    for &i in &order {
        let r = &ranges[i];
        if r.start > pos {
            selectors.push(RowSelector::skip((r.start - pos) as usize));
        }
        selectors.push(RowSelector::select((r.end - r.start) as usize));
        pos = r.end;
    }
    let m = meta.get(store, pack).await?;
    if holds_few_rows(&m) {
        let all = meta.small_rows(store, pack, m).await?;
        let all: Vec<RecordBatch> = match projection {
            Some(p) => all
                .iter()
                .map(|b| b.project(p))
                .collect::<std::result::Result<_, _>>()?,
            None => all.as_ref().clone(),
        };
        // the decoded rows of the sorted ranges, in order, as the selective read gives
        let mut picked = Vec::new();
        for &i in &order {
            picked.extend(rows_of(pack, &all, &ranges[i])?);
        }
        return split_ranges(pack, &picked, ranges, &order);
    }
    let batches = decode_selected(store, meta, pack, m, selectors, ranges, projection).await?;
    split_ranges(pack, &batches, ranges, &order)
}

/// Decode the rows `selectors` pick from a (large) pack: the rows of `ranges`, sorted, back
/// to back.
async fn decode_selected(
    store: &Store,
    meta: &MetaCache,
    pack: &Hash,
    m: ArrowReaderMetadata,
    selectors: Vec<RowSelector>,
    ranges: &[Range<u64>],
    projection: Option<&[usize]>,
) -> Result<Vec<RecordBatch>> {
    let reader = meta.reader(store, pack);
    // The reader sizes every column's value buffer by the batch size, once per row group
    // it reads: 64k rows of 13 columns in each of the ~80 row groups that 500 scattered
    // groups touch were a gigabyte of fresh memory (page faults were 90% of a cold commit's
    // reads). A batch of the rows selected, when fewer, costs what is read.
    let selected: u64 = ranges.iter().map(|r| r.end - r.start).sum();
    let batch =
        usize::try_from(selected).map_or(RANGE_BATCH_ROWS, |n| n.clamp(1, RANGE_BATCH_ROWS));
    let mut builder = ParquetRecordBatchStreamBuilder::new_with_metadata(reader, m)
        .with_row_selection(RowSelection::from(selectors))
        .with_batch_size(batch);
    if let Some(p) = projection {
        let mask =
            parquet::arrow::ProjectionMask::roots(builder.parquet_schema(), p.iter().copied());
        builder = builder.with_projection(mask);
    }
    builder.build()?.try_collect().await.map_err(lift_corrupt)
}

/// The rows of sorted, disjoint `ranges` of a pack, back to back in one batch (`schema`
/// when no row is read): no batch per range, as a diff of thousands of groups reads them.
pub async fn read_ranges_flat(
    store: &Store,
    meta: &MetaCache,
    pack: &Hash,
    ranges: &[Range<u64>],
    schema: &SchemaRef,
) -> Result<RecordBatch> {
    if ranges.iter().any(|r| r.end < r.start) || ranges.windows(2).any(|w| w[0].end > w[1].start) {
        return Err(CoreError::Corrupt {
            what: format!("pack {pack}"),
            reason: "overlapping or unsorted row ranges asked for".into(),
        });
    }
    let total: u64 = ranges.iter().map(|r| r.end - r.start).sum();
    if total == 0 {
        return Ok(RecordBatch::new_empty(schema.clone()));
    }
    let m = meta.get(store, pack).await?;
    let batches: Vec<RecordBatch> = if holds_few_rows(&m) {
        // the kept rows: one `take` per decoded batch
        let all = meta.small_rows(store, pack, m).await?;
        let mut out = Vec::new();
        let (mut at, mut ri) = (0u64, 0usize);
        for b in all.iter() {
            let n = b.num_rows() as u64;
            let mut idx: Vec<u32> = Vec::new();
            while let Some(r) = ranges.get(ri).filter(|r| r.start < at + n) {
                let (from, to) = (r.start.max(at), r.end.min(at + n));
                idx.extend((from - at) as u32..(to - at) as u32);
                if r.end > at + n {
                    break;
                }
                ri += 1;
            }
            if !idx.is_empty() {
                out.push(arrow::compute::take_record_batch(
                    b,
                    &arrow::array::UInt32Array::from(idx),
                )?);
            }
            at += n;
        }
        out
    } else {
        let mut selectors = Vec::new();
        let mut pos = 0u64;
        for r in ranges {
            if r.start > pos {
                selectors.push(RowSelector::skip((r.start - pos) as usize));
            }
            selectors.push(RowSelector::select((r.end - r.start) as usize));
            pos = r.end;
        }
        decode_selected(store, meta, pack, m, selectors, ranges, None).await?
    };
    let out = match batches.first() {
        Some(b) => arrow::compute::concat_batches(&b.schema(), &batches)?,
        None => RecordBatch::new_empty(schema.clone()),
    };
    if out.num_rows() as u64 != total {
        return Err(CoreError::Corrupt {
            what: format!("pack {pack}"),
            reason: "fewer rows than its index says".into(),
        });
    }
    Ok(out)
}

/// A Parquet error whose cause is a failed pack checksum becomes that
/// [`CoreError::Corrupt`] (naming the pack), one whose cause is a pack rewritten by an
/// erasure that [`CoreError::PackRewritten`]; any other stays a Parquet error.
fn lift_corrupt(e: parquet::errors::ParquetError) -> CoreError {
    match CoreError::find_corrupt(&e) {
        Some(CoreError::Corrupt { what, reason }) => CoreError::Corrupt {
            what: what.clone(),
            reason: reason.clone(),
        },
        Some(CoreError::PackRewritten { pack }) => CoreError::PackRewritten { pack: pack.clone() },
        _ => CoreError::Parquet(e),
    }
}

/// Rows `range` of the batches of a whole pack, as slices (no copy).
fn rows_of(pack: &Hash, batches: &[RecordBatch], range: &Range<u64>) -> Result<Vec<RecordBatch>> {
    let mut out = Vec::new();
    let mut at = 0u64;
    for b in batches {
        let n = b.num_rows() as u64;
        let (from, to) = (range.start.max(at), range.end.min(at + n));
        if from < to {
            out.push(b.slice((from - at) as usize, (to - from) as usize));
        }
        at += n;
    }
    if at < range.end {
        return Err(CoreError::Corrupt {
            what: format!("pack {pack}"),
            reason: "fewer rows than its index says".into(),
        });
    }
    Ok(out)
}

/// Split the rows read for sorted `ranges` back into one list of batches per range (in
/// the caller's order) without copying: ranges map onto slices of the decoded batches.
fn split_ranges(
    pack: &Hash,
    batches: &[RecordBatch],
    ranges: &[Range<u64>],
    order: &[usize],
) -> Result<Vec<Vec<RecordBatch>>> {
    let short = || CoreError::Corrupt {
        what: format!("pack {pack}"),
        reason: "fewer rows than its index says".into(),
    };
    let mut out: Vec<Vec<RecordBatch>> = vec![Vec::new(); ranges.len()];
    let (mut bi, mut off) = (0usize, 0usize);
    for &i in order {
        let mut need = (ranges[i].end - ranges[i].start) as usize;
        while need > 0 {
            let b = batches.get(bi).ok_or_else(short)?;
            let take = need.min(b.num_rows() - off);
            if take > 0 {
                out[i].push(b.slice(off, take));
            }
            need -= take;
            off += take;
            if off == b.num_rows() {
                bi += 1;
                off = 0;
            }
        }
    }
    Ok(out)
}

/// Like [`read_ranges`] but one batch per range (concatenated when a range spans batches).
pub async fn read_ranges_concat(
    store: &Store,
    meta: &MetaCache,
    pack: &Hash,
    ranges: &[Range<u64>],
    projection: Option<&[usize]>,
) -> Result<Vec<RecordBatch>> {
    let parts = read_ranges(store, meta, pack, ranges, projection).await?;
    let mut out = Vec::with_capacity(parts.len());
    for p in parts {
        out.push(match p.len() {
            1 => p
                .into_iter()
                .next()
                .ok_or_else(|| CoreError::Join("empty range".into()))?,
            0 => {
                return Err(CoreError::Corrupt {
                    what: format!("pack {pack}"),
                    reason: "empty row range".into(),
                })
            }
            _ => arrow::compute::concat_batches(&p[0].schema(), &p)?,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `read_ranges_flat` gives the rows of the ranges back to back, as `read_ranges` gives
    /// them per range: in a small (kept, decoded whole) pack and a large (selective read)
    /// one, with ranges across decoded batches, at both ends, and adjacent; overlapping
    /// ranges are refused.
    /// A change pack written with a cache keeps its footer and (small) decoded rows in it,
    /// equal to what another process's cache reads back from storage.
    #[tokio::test]
    async fn a_written_change_pack_is_kept_as_read_back() {
        let dir = tempfile::tempdir().expect("a directory");
        let store = Store::open(dir.path().to_str().expect("a path")).expect("a store");
        let mine = MetaCache::new(Arc::new(VerifiedStore::new(store.clone())));
        let schema = crate::demo::schema();
        let batches: Vec<RecordBatch> = crate::demo::DemoLabels::new(3_000, 3).collect();
        let (pack, _) =
            crate::storage::build::write_change_pack(&store, &schema, batches.clone(), &mine)
                .await
                .expect("pack");
        let kept = |c: &MetaCache| c.small.lock().expect("lock").get(&pack).map(|p| p.rows);
        let rows = kept(&mine).expect("the written rows are kept");
        let fresh = MetaCache::new(Arc::new(VerifiedStore::new(store.clone())));
        assert!(kept(&fresh).is_none());
        let m = fresh.get(&store, &pack).await.expect("footer");
        let read = fresh
            .small_rows(&store, &pack, m.clone())
            .await
            .expect("rows");
        let concat =
            |b: &[RecordBatch]| arrow::compute::concat_batches(&schema, b).expect("one batch");
        assert_eq!(concat(&rows), concat(&read));
        assert_eq!(concat(&rows), concat(&batches));
        let cached = mine.get(&store, &pack).await.expect("footer");
        assert_eq!(cached.metadata().as_ref(), m.metadata().as_ref());
        assert_eq!(cached.schema(), m.schema());
    }

    #[tokio::test]
    async fn flat_range_reads_match_range_reads() {
        let store = Store::from_object_store(Arc::new(object_store::memory::InMemory::new()), "");
        let meta = MetaCache::new(Arc::new(VerifiedStore::new(store.clone())));
        let schema = crate::demo::schema();
        for rows in [3_000u64, 70_000] {
            let batches: Vec<RecordBatch> = crate::demo::DemoLabels::new(rows, 3).collect();
            let n: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
            let (pack, _) = crate::storage::build::write_pack(&store, &schema, batches)
                .await
                .expect("pack");
            assert_eq!(
                holds_few_rows(&meta.get(&store, &pack).await.expect("meta")),
                rows < 10_000
            );
            let sets: Vec<Vec<Range<u64>>> = vec![
                vec![0..1],
                vec![n - 1..n],
                vec![0..n],
                vec![5..9, 9..10, 100..2_000, 2_100..n - 500, n - 3..n],
                (0..n).step_by(997).map(|s| s..(s + 3).min(n)).collect(),
            ];
            for ranges in sets {
                let flat = read_ranges_flat(&store, &meta, &pack, &ranges, &schema)
                    .await
                    .expect("flat");
                let parts = read_ranges(&store, &meta, &pack, &ranges, None)
                    .await
                    .expect("ranges");
                let want = arrow::compute::concat_batches(
                    &schema,
                    parts.iter().flatten().collect::<Vec<_>>(),
                )
                .expect("concat");
                assert_eq!(flat, want, "{rows} rows, {} ranges", ranges.len());
            }
            let overlapping = [0..5, 3..8];
            assert!(
                read_ranges_flat(&store, &meta, &pack, &overlapping, &schema)
                    .await
                    .is_err()
            );
        }
    }

    /// High-cardinality columns (image hashes, box coordinates, times) do not carry
    /// dictionaries larger than [`DICTIONARY_PAGE_BYTES`]: a reader touching one row of a
    /// row group decodes at most that much dictionary per column.
    #[test]
    fn dictionary_pages_stay_small() {
        let batches: Vec<RecordBatch> = crate::demo::DemoLabels::new(150_000, 7).collect();
        let mut buf = Vec::new();
        let mut w =
            ArrowWriter::try_new(&mut buf, crate::demo::schema(), Some(writer_properties()))
                .expect("writer");
        for b in &batches {
            w.write(b).expect("write");
        }
        let meta = w.close().expect("close");
        let mut checked = 0;
        for rg in meta.row_groups() {
            for col in rg.columns() {
                if let Some(dict) = col.dictionary_page_offset() {
                    let size = col.data_page_offset() - dict;
                    // the limit is checked between value batches: allow one batch over it
                    assert!(
                        size as usize <= DICTIONARY_PAGE_BYTES + 8192,
                        "{}: dictionary page of {size} bytes",
                        col.column_path()
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked > 0);
    }

    /// Pages that snappy cannot shrink (random floats) are stored uncompressed, so reading
    /// them copies nothing; pages it shrinks (plain-encoded sample ids) stay compressed.
    #[test]
    fn incompressible_pages_are_stored_plain() {
        use parquet::column::page::Page;
        use parquet::file::reader::{FileReader, SerializedFileReader};
        let mut buf = Vec::new();
        let mut w =
            ArrowWriter::try_new(&mut buf, crate::demo::schema(), Some(writer_properties()))
                .expect("writer");
        for b in crate::demo::DemoLabels::new(20_000, 7) {
            w.write(&b).expect("write");
        }
        w.close().expect("close");
        let reader = SerializedFileReader::new(bytes::Bytes::from(buf)).expect("reader");
        let schema = crate::demo::schema();
        let rg = reader.get_row_group(0).expect("row group");
        let pages = |name: &str| -> (usize, usize) {
            let i = schema.index_of(name).expect("column");
            let (mut plain, mut compressed) = (0, 0);
            for page in rg.get_column_page_reader(i).expect("pages") {
                match page.expect("page") {
                    Page::DataPageV2 { is_compressed, .. } => {
                        if is_compressed {
                            compressed += 1
                        } else {
                            plain += 1
                        }
                    }
                    Page::DataPage { .. } => panic!("{name}: a v1 data page"),
                    Page::DictionaryPage { .. } => {}
                }
            }
            (plain, compressed)
        };
        let (plain, compressed) = pages("bbox_x");
        assert!(
            plain > 0 && compressed == 0,
            "bbox_x: {plain} plain, {compressed} compressed"
        );
        let (plain, compressed) = pages("sample_id");
        assert!(
            compressed > 0,
            "sample_id: {plain} plain, {compressed} compressed"
        );
    }
}
