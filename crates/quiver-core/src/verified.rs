//! [`VerifiedStore`]: the catalog's object store with every range read of a pack verified.
//!
//! Packs are read in byte ranges — by DataFusion's Parquet scan through the store a SQL
//! session registers ([`crate::Catalog::query_store`]) and by this crate's own readers
//! ([`crate::packs`]) — so both go through this wrapper. For a path that names a pack object
//! (`objects/pack/<xx>/<hex>`), every get widens the requested range to whole verification
//! units ([`PackSums::widen`]), reads the widened range in one request, checks each unit's
//! CRC-32 and returns the requested sub-slice of the same buffer (no copy). A mismatch fails
//! the read with `object_store::Error::Generic` whose source is
//! [`CoreError::Corrupt`] naming the pack by its relative path and the unit's byte range;
//! the corrupt bytes are never returned. Everything else (other paths, heads, lists,
//! writes) passes through unchanged.
//!
//! The sums of a pack are read from its sums file on first use and kept in a bounded cache
//! (it starts over past [`SUMS_CACHE_BYTES`] or [`SUMS_CACHE_ENTRIES`]). With a budget set
//! ([`VerifiedStore::read_cache`]), the verified bytes of range reads of a local catalog's
//! packs are kept too and served again while the pack file is the same file
//! ([`crate::read_cache`]). A pack without a sums file (written before they existed) is
//! read whole once, checked against its blake3 address (or the bytes its erasure record
//! names), and its sums derived from the verified bytes.
//!
//! **Packs rewritten by an erasure** ([`crate::erase`]) keep their path, so sums, footers and
//! sizes cached before the erasure are stale. Every pack has a *generation*: 0, raised each
//! time this store learns that the pack's bytes changed — when this process erased it
//! ([`VerifiedStore::forget`]), when a unit does not match and the sums file, read again,
//! differs from the cached sums (another process erased it), or when sums read again after
//! the cache started over differ from the ones seen before. Caches of footers and sizes
//! ([`crate::packs::MetaCache`], the SQL layer's pack sizes) remember the generation they
//! were filled at and drop entries of an older one. The read that learns of a change fails
//! with [`CoreError::PackRewritten`] (its caller may hold a stale footer; running it again
//! reads the new one); a mismatch the sums file and the erasure record do not explain is
//! corruption as before. A pack whose bytes are new while its sums file is still the old
//! one (an erasure cut short between the two writes) is read whole, checked against its
//! erasure record, and its sums derived.
//!
//! Finding the error: walk `std::error::Error::source()` from whatever the caller got
//! (a `DataFusionError`, a `ParquetError`, an `object_store::Error`) and downcast each
//! link to [`CoreError`]; [`CoreError::find_corrupt`] does exactly that.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetRange, GetResult, GetResultPayload, ListResult, MultipartUpload,
    ObjectMeta, ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
};
use quiver_store::Store;
use quiver_tree::Hash;

use crate::error::{CoreError, Result};
use crate::pack_sums::{sums_path, PackSums};
use crate::packs::pack_path;
use crate::read_cache::{FileId, ReadCache};

/// Bytes of sums tables a [`VerifiedStore`] keeps before its cache starts over.
pub const SUMS_CACHE_BYTES: usize = 64 << 20;
/// Sums tables a [`VerifiedStore`] keeps before its cache starts over.
pub const SUMS_CACHE_ENTRIES: usize = 4096;

#[derive(Default)]
struct SumsCache {
    map: HashMap<Hash, Arc<PackSums>>,
    weight: usize,
}

/// Packs whose sums this store has seen: a fingerprint of the last sums of each (to notice
/// a change after the cache started over) and the generation of the packs that changed.
#[derive(Default)]
struct Seen {
    fingerprints: HashMap<Hash, u128>,
    generations: HashMap<Hash, u64>,
    next: u64,
}

/// Packs whose sums fingerprints a [`VerifiedStore`] remembers before it starts over.
pub const SEEN_ENTRIES: usize = 1 << 22;

fn fingerprint(s: &PackSums) -> u128 {
    let h = blake3::hash(&s.encode());
    let mut b = [0u8; 16];
    b.copy_from_slice(&h.as_bytes()[..16]);
    u128::from_le_bytes(b)
}

/// An `ObjectStore` over a catalog's store that verifies every range read of a pack
/// against the pack's sums (see the module doc).
pub struct VerifiedStore {
    store: Store,
    inner: Arc<dyn ObjectStore>,
    /// `store.full_path("")` with a trailing `/`, or empty.
    prefix: String,
    cache: Mutex<SumsCache>,
    seen: Mutex<Seen>,
    bytes: ReadCache,
}

impl std::fmt::Debug for VerifiedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VerifiedStore({})", self.inner)
    }
}

impl std::fmt::Display for VerifiedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Verified({})", self.inner)
    }
}

/// A read failure of the verifying store, as the `ObjectStore` trait must return it: the
/// typed [`CoreError`] is its source.
fn os_err(e: CoreError) -> object_store::Error {
    match e {
        CoreError::Store(quiver_store::StoreError::ObjectStore(e)) => e,
        CoreError::Store(quiver_store::StoreError::NotFound { path }) => {
            object_store::Error::NotFound {
                source: format!("{path} not found").into(),
                path,
            }
        }
        e => object_store::Error::Generic {
            store: "quiver",
            source: Box::new(e),
        },
    }
}

impl VerifiedStore {
    /// Verify pack reads of `store`'s object store.
    pub fn new(store: Store) -> VerifiedStore {
        let inner = store.object_store();
        let root = store.full_path("");
        let prefix = if root.as_ref().is_empty() {
            String::new()
        } else {
            format!("{}/", root.as_ref())
        };
        VerifiedStore {
            store,
            inner,
            prefix,
            cache: Mutex::default(),
            seen: Mutex::default(),
            bytes: ReadCache::default(),
        }
    }

    /// The cache of verified pack bytes (off until given a budget).
    pub fn read_cache(&self) -> &ReadCache {
        &self.bytes
    }

    /// The identity of the file of `location` when verified bytes of it may be cached.
    fn cacheable_file(&self, location: &Path) -> Option<FileId> {
        if !self.bytes.enabled() {
            return None;
        }
        FileId::of(&self.store.local_dir()?.join(location.as_ref()))
    }

    /// The generation of `pack`'s bytes as this store knows them (see the module doc).
    pub fn generation(&self, pack: &Hash) -> u64 {
        self.seen
            .lock()
            .ok()
            .and_then(|s| s.generations.get(pack).copied())
            .unwrap_or(0)
    }

    /// The bytes of `pack` changed: a new generation, and none of its old bytes served.
    fn bump(&self, pack: &Hash) {
        self.bytes.forget(pack);
        if let Ok(mut s) = self.seen.lock() {
            s.next += 1;
            let g = s.next;
            s.generations.insert(*pack, g);
        }
    }

    /// The size of `pack` its cached sums say, if they are cached.
    pub fn cached_size(&self, pack: &Hash) -> Option<u64> {
        self.cache
            .lock()
            .ok()
            .and_then(|c| c.map.get(pack).map(|s| s.size()))
    }

    /// This process rewrote `pack` (an erasure): drop its sums and raise its generation.
    pub fn forget(&self, pack: &Hash) {
        if let Ok(mut c) = self.cache.lock() {
            if let Some(old) = c.map.remove(pack) {
                c.weight = c.weight.saturating_sub(old.weight());
            }
        }
        if let Ok(mut s) = self.seen.lock() {
            s.fingerprints.remove(pack);
        }
        // raising the generation also drops the pack's cached bytes
        self.bump(pack);
    }

    /// Remember the sums just read for `pack`; true when they differ from the ones seen
    /// before (the pack was rewritten meanwhile).
    fn note(&self, pack: &Hash, sums: &PackSums) -> bool {
        let fp = fingerprint(sums);
        let changed = match self.seen.lock() {
            Ok(mut s) => {
                if s.fingerprints.len() >= SEEN_ENTRIES {
                    s.fingerprints.clear();
                }
                s.fingerprints
                    .insert(*pack, fp)
                    .is_some_and(|old| old != fp)
            }
            Err(_) => false,
        };
        if changed {
            self.bump(pack);
        }
        changed
    }

    fn cache_sums(&self, pack: &Hash, sums: &Arc<PackSums>) {
        if let Ok(mut c) = self.cache.lock() {
            if let Some(old) = c.map.remove(pack) {
                c.weight = c.weight.saturating_sub(old.weight());
            }
            let w = sums.weight();
            if c.map.len() >= SUMS_CACHE_ENTRIES || c.weight + w > SUMS_CACHE_BYTES {
                c.map.clear();
                c.weight = 0;
            }
            if w <= SUMS_CACHE_BYTES {
                c.weight += w;
                c.map.insert(*pack, sums.clone());
            }
        }
    }

    /// The sums of `pack` from its sums file (or derived from the verified whole pack when
    /// it has none, or when `derive`), bypassing the cache.
    async fn load(&self, pack: &Hash, derive: bool) -> Result<PackSums> {
        let path = sums_path(pack);
        if !derive {
            if let Some(b) = self.store.get_file_opt(&path).await? {
                return PackSums::decode(&path, pack, &b);
            }
        }
        let (bytes, _) = crate::erase::read_pack_whole(&self.store, pack).await?;
        let pack = *pack;
        tokio::task::spawn_blocking(move || PackSums::compute(pack, &bytes))
            .await
            .map_err(|e| CoreError::Join(e.to_string()))?
    }

    /// A range outside `pack` as its sums `used` know it: the caller knows a pack rewritten
    /// since (a longer one), or asks for bytes that are not there (`refused`).
    async fn beyond(
        &self,
        pack: &Hash,
        used: &PackSums,
        refused: object_store::Error,
    ) -> object_store::Error {
        let c = CoreError::Corrupt {
            what: pack_path(pack),
            reason: refused.to_string(),
        };
        match self.recheck(pack, used, c).await {
            r @ CoreError::PackRewritten { .. } => os_err(r),
            _ => refused,
        }
    }

    /// A unit of `pack` did not match `used` (or the pack's size did not): read the sums
    /// again. Sums that changed mean the pack was rewritten (an erasure): they replace the
    /// cached ones and the read fails with [`CoreError::PackRewritten`]. When the sums file
    /// did not change, an erasure cut short between its pack and sums writes may still
    /// explain the bytes (derived from the pack, checked against its erasure record);
    /// otherwise `corrupt` is the answer.
    async fn recheck(&self, pack: &Hash, used: &PackSums, corrupt: CoreError) -> CoreError {
        let rewritten = || CoreError::PackRewritten {
            pack: pack_path(pack),
        };
        for derive in [false, true] {
            if derive
                && !matches!(
                    crate::erase::read_record(&self.store, pack).await,
                    Ok(Some(_))
                )
            {
                break;
            }
            match self.load(pack, derive).await {
                Ok(fresh) if fresh != *used => {
                    let fresh = Arc::new(fresh);
                    self.note(pack, &fresh);
                    self.cache_sums(pack, &fresh);
                    self.bump(pack);
                    return rewritten();
                }
                Ok(_) => {}
                Err(e @ CoreError::Corrupt { .. }) if derive => return e,
                Err(_) => break,
            }
        }
        corrupt
    }

    /// The pack a path inside the object store names, if it names one.
    fn pack_of(&self, location: &Path) -> Option<Hash> {
        let rel = location.as_ref().strip_prefix(self.prefix.as_str())?;
        let hex = rel.strip_prefix("objects/pack/")?.rsplit('/').next()?;
        let pack = Hash::from_hex(hex)?;
        (pack_path(&pack) == rel).then_some(pack)
    }

    /// The sums of `pack`, from the cache or its sums file (or derived from the verified
    /// whole pack when it has none). Sums read again that differ from the ones seen before
    /// fail with [`CoreError::PackRewritten`] (see the module doc), once.
    pub async fn sums(&self, pack: &Hash) -> Result<Arc<PackSums>> {
        if let Some(s) = self
            .cache
            .lock()
            .ok()
            .and_then(|c| c.map.get(pack).cloned())
        {
            return Ok(s);
        }
        let sums = Arc::new(self.load(pack, false).await?);
        let changed = self.note(pack, &sums);
        self.cache_sums(pack, &sums);
        if changed {
            return Err(CoreError::PackRewritten {
                pack: pack_path(pack),
            });
        }
        Ok(sums)
    }

    /// Check `bytes` (read at `range`, whole units) of `pack`.
    fn check(sums: &PackSums, range: &Range<u64>, bytes: &Bytes) -> Result<()> {
        let what = pack_path(&sums.pack());
        if bytes.len() as u64 != range.end - range.start {
            return Err(CoreError::Corrupt {
                what,
                reason: format!(
                    "short read: {} bytes at {}..{}",
                    bytes.len(),
                    range.start,
                    range.end
                ),
            });
        }
        sums.verify(range.start, bytes)
            .map_err(|m| CoreError::Corrupt {
                what,
                reason: format!(
                    "checksum mismatch in bytes {}..{} (verification unit {})",
                    m.range.start, m.range.end, m.unit
                ),
            })
    }
}

/// The bounded byte range a get asks for in an object of `size` bytes, or `None` when it
/// is not a valid range.
fn requested(range: &Option<GetRange>, size: u64) -> Option<Range<u64>> {
    let r = match range {
        None => 0..size,
        Some(GetRange::Bounded(r)) => r.start..r.end.min(size),
        Some(GetRange::Offset(o)) => *o..size,
        Some(GetRange::Suffix(n)) => size.saturating_sub(*n)..size,
    };
    (r.start <= r.end && r.start <= size).then_some(r)
}

/// A requested range that is not inside the pack: refused here (never passed on, so no
/// byte of a pack is ever served unverified).
fn out_of_range(pack: &Hash, range: &Option<GetRange>, size: u64) -> object_store::Error {
    object_store::Error::Generic {
        store: "quiver",
        source: format!(
            "range {range:?} is outside {} ({size} bytes)",
            pack_path(pack)
        )
        .into(),
    }
}

#[async_trait]
impl ObjectStore for VerifiedStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        let pack = match self.pack_of(location) {
            Some(p) if !options.head => p,
            _ => return self.inner.get_opts(location, options).await,
        };
        let sums = self.sums(&pack).await.map_err(os_err)?;
        let Some(want) = requested(&options.range, sums.size()) else {
            return Err(self
                .beyond(
                    &pack,
                    &sums,
                    out_of_range(&pack, &options.range, sums.size()),
                )
                .await);
        };
        let wide = sums.widen(&want);
        let mut opts = options;
        opts.range = Some(GetRange::Bounded(wide.clone()));
        let res = self.inner.get_opts(location, opts).await?;
        let (meta, attributes) = (res.meta.clone(), res.attributes.clone());
        if meta.size != sums.size() {
            let e = CoreError::Corrupt {
                what: pack_path(&pack),
                reason: format!("{} bytes long, its sums say {}", meta.size, sums.size()),
            };
            return Err(os_err(self.recheck(&pack, &sums, e).await));
        }
        let bytes = res.bytes().await?;
        if let Err(e) = Self::check(&sums, &wide, &bytes) {
            return Err(os_err(self.recheck(&pack, &sums, e).await));
        }
        let out = bytes.slice((want.start - wide.start) as usize..(want.end - wide.start) as usize);
        Ok(GetResult {
            payload: GetResultPayload::Stream(
                futures::stream::once(async move { Ok(out) }).boxed(),
            ),
            meta,
            range: want,
            attributes,
        })
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        let Some(pack) = self.pack_of(location) else {
            return self.inner.get_ranges(location, ranges).await;
        };
        // identity taken before the read: bytes read from a file replaced meanwhile are
        // kept under the old identity, which the next lookup no longer matches
        let file = self.cacheable_file(location);
        if let Some(hit) = file.and_then(|f| self.bytes.get(&pack, f, ranges)) {
            return Ok(hit);
        }
        let sums = self.sums(&pack).await.map_err(os_err)?;
        if let Some(r) = ranges
            .iter()
            .find(|r| r.start > r.end || r.end > sums.size())
        {
            let r = Some(GetRange::Bounded(r.clone()));
            return Err(self
                .beyond(&pack, &sums, out_of_range(&pack, &r, sums.size()))
                .await);
        }
        // whole units covering each range, merged where they overlap or touch
        let mut wide: Vec<Range<u64>> = ranges.iter().map(|r| sums.widen(r)).collect();
        wide.sort_by_key(|r| r.start);
        let mut merged: Vec<Range<u64>> = Vec::with_capacity(wide.len());
        for r in wide {
            match merged.last_mut() {
                Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
                _ => merged.push(r),
            }
        }
        let fetched = match self.inner.get_ranges(location, &merged).await {
            Ok(f) => f,
            // a range past the end: the pack may have been rewritten shorter
            Err(e) => {
                let c = CoreError::Corrupt {
                    what: pack_path(&pack),
                    reason: e.to_string(),
                };
                return Err(match self.recheck(&pack, &sums, c).await {
                    r @ CoreError::PackRewritten { .. } => os_err(r),
                    _ => e,
                });
            }
        };
        for (r, b) in merged.iter().zip(&fetched) {
            if let Err(e) = Self::check(&sums, r, b) {
                return Err(os_err(self.recheck(&pack, &sums, e).await));
            }
        }
        if let Some(f) = file {
            let kept = merged
                .iter()
                .zip(&fetched)
                .map(|(r, b)| (r.start, b.clone()));
            self.bytes.put(&pack, f, kept);
        }
        ranges
            .iter()
            .map(|r| {
                let i = merged.partition_point(|m| m.end < r.end);
                let (m, b) = merged
                    .get(i)
                    .zip(fetched.get(i))
                    .filter(|(m, _)| m.start <= r.start && r.end <= m.end)
                    .ok_or_else(|| {
                        os_err(CoreError::Join(format!("range {r:?} not among the reads")))
                    })?;
                Ok(b.slice((r.start - m.start) as usize..(r.end - m.start) as usize))
            })
            .collect()
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(
        &self,
        from: &Path,
        to: &Path,
        options: RenameOptions,
    ) -> object_store::Result<()> {
        self.inner.rename_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::RecordBatch;
    use object_store::ObjectStoreExt;

    /// A pack of `rows` demo labels in `store`.
    async fn demo_pack(store: &Store, rows: u64) -> Hash {
        let batches: Vec<RecordBatch> = crate::demo::DemoLabels::new(rows, 1).collect();
        crate::packs::write_pack(
            store,
            "ds",
            &crate::demo::schema(),
            vec![(Hash::of(b"leaf"), batches)],
        )
        .await
        .expect("pack")
        .0
    }

    /// Every kind of get (ranges, overlapping ones, suffix, offset, bounded,
    /// whole) returns exactly the bytes the plain store returns; a range outside the pack
    /// is refused; a flipped byte is a corruption error naming the pack.
    #[tokio::test]
    async fn gets_serve_exact_bytes_and_catch_flips() {
        let store = Store::open("memory://").expect("store");
        let pack = demo_pack(&store, 5_000).await;
        let v = VerifiedStore::new(store.clone());
        let path = store.full_path(&pack_path(&pack));
        let raw = store.object_store();
        let n = raw.head(&path).await.expect("head").size;
        let ranges = vec![0..1, 3..900, 800..1200, n - 8..n, 17..18, n / 2..n / 2 + 3];
        assert_eq!(
            v.get_ranges(&path, &ranges).await.expect("verified"),
            raw.get_ranges(&path, &ranges).await.expect("raw")
        );
        for r in [
            GetRange::Suffix(8),
            GetRange::Offset(n - 100),
            GetRange::Bounded(5..77),
        ] {
            let opts = GetOptions::new().with_range(Some(r));
            let got = v.get_opts(&path, opts.clone()).await.expect("verified");
            let want = raw.get_opts(&path, opts).await.expect("raw");
            assert_eq!(got.range, want.range);
            assert_eq!(
                got.bytes().await.expect("bytes"),
                want.bytes().await.expect("bytes")
            );
        }
        let whole = raw
            .get(&path)
            .await
            .expect("get")
            .bytes()
            .await
            .expect("bytes");
        assert_eq!(
            v.get(&path)
                .await
                .expect("get")
                .bytes()
                .await
                .expect("bytes"),
            whole
        );
        let beyond = vec![n - 8..n, n - 1..n + 1];
        assert!(v.get_ranges(&path, &beyond).await.is_err());

        let mut b = whole.to_vec();
        b[(n / 2) as usize] ^= 1;
        raw.put(&path, b.into()).await.expect("put");
        for e in [
            v.get_range(&path, n / 2..n / 2 + 1)
                .await
                .expect_err("flip"),
            v.get_ranges(&path, &[0..4, n / 2 - 3..n / 2 + 3])
                .await
                .expect_err("flip"),
        ] {
            let c = CoreError::find_corrupt(&e).expect("typed corruption");
            assert!(
                matches!(c, CoreError::Corrupt { what, .. } if *what == pack_path(&pack)),
                "{c}"
            );
        }
        // bytes away from the flip are still served
        assert_eq!(
            v.get_range(&path, 0..4).await.expect("clean unit"),
            whole.slice(0..4)
        );
    }

    /// With a budget, repeated range reads of a local pack are served from memory, the
    /// same bytes; once the pack file changes on disk (rewritten by rename, or written in
    /// place) nothing cached is served: the next read checks the new bytes.
    #[tokio::test]
    #[allow(clippy::single_range_in_vec_init)]
    async fn cached_bytes_are_served_only_from_the_same_file() {
        use std::os::unix::fs::FileExt;
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::open(&dir.path().display().to_string()).expect("store");
        let pack = demo_pack(&store, 20_000).await;
        let v = VerifiedStore::new(store.clone());
        v.read_cache().set_budget(64 << 20);
        let path = store.full_path(&pack_path(&pack));
        let raw = store.object_store();
        let n = raw.head(&path).await.expect("head").size;
        let ranges = vec![0..100, n / 2..n / 2 + 50, n - 8..n];
        let want = raw.get_ranges(&path, &ranges).await.expect("raw");
        assert_eq!(v.get_ranges(&path, &ranges).await.expect("first"), want);
        assert!(v.read_cache().weight() > 0, "verified bytes kept");
        assert_eq!(v.get_ranges(&path, &ranges).await.expect("cached"), want);
        assert_eq!(
            v.get_ranges(&path, &[n / 2 + 10..n / 2 + 20])
                .await
                .expect("sub-range"),
            vec![want[1].slice(10..20)]
        );

        // written in place: same inode, new modification time
        let file = dir.path().join(path.as_ref());
        let flip = |at: u64| {
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&file)
                .expect("open");
            let mut b = [0u8; 1];
            f.read_exact_at(&mut b, at).expect("read");
            b[0] ^= 1;
            f.write_all_at(&b, at).expect("write");
        };
        std::thread::sleep(std::time::Duration::from_millis(25));
        flip(n / 2 + 1);
        let e = v
            .get_ranges(&path, &ranges)
            .await
            .expect_err("changed in place");
        assert!(CoreError::find_corrupt(&e).is_some(), "{e}");
        flip(n / 2 + 1);

        // rewritten by rename (as an erasure does): a new file
        assert_eq!(v.get_ranges(&path, &ranges).await.expect("restored"), want);
        let mut b = raw
            .get(&path)
            .await
            .expect("get")
            .bytes()
            .await
            .expect("bytes")
            .to_vec();
        b[(n / 2 + 1) as usize] ^= 1;
        raw.put(&path, b.into()).await.expect("put");
        let e = v.get_ranges(&path, &ranges).await.expect_err("rewritten");
        assert!(CoreError::find_corrupt(&e).is_some(), "{e}");
    }
}
