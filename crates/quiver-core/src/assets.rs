//! The asset store: images, masks and other large blobs, content-addressed by blake3 and
//! stored once in the catalog (`objects/asset/<hex[0..2]>/<hex>`), however many datasets,
//! branches and versions reference them. Labels reference assets by hash (a column named
//! `image_hash`, or the columns listed in the dataset metadata key `asset_columns`).
//!
//! Puts and gets stream: a large file is hashed while it is uploaded in bounded memory
//! (multipart upload to a temporary object, then renamed to its address if absent), and
//! a streamed get verifies the hash at the end. Assets no reachable version references are
//! reclaimed only by an explicit [`AssetStore::gc`].
//!
//! **Erasure** ([`AssetStore::erase`]): an asset's bytes are deleted although labels still
//! name it (a privacy request). A *tombstone* is written first, at
//! `erasures/assets/<hex[0..2]>/<hex>` — `"QVTOMB01"`, the compact JSON of [`Tombstone`]
//! (hash, time, author, reason, size), then the blake3 of everything before it — then the
//! asset object is deleted. Reads of an erased asset fail with [`CoreError::AssetErased`]
//! ("asset … was erased on … by … (reason)") instead of "not found"; labels naming it stay
//! as they are (and `fsck` does not count them as broken: it never required assets to
//! exist). Putting the same bytes again stores them again.

use std::collections::HashSet;
use std::path::Path;
use std::pin::Pin;
use std::time::Duration;

use arrow::array::{Array, AsArray};
use arrow::datatypes::DataType;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use object_store::{ObjectStoreExt, WriteMultipart};
use quiver_store::Store;
use quiver_tree::Hash;
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::catalog::Catalog;
use crate::error::{CoreError, Result};

/// Object kind of assets.
pub const ASSET_KIND: &str = "asset";
/// Column that holds asset hashes by convention.
pub const IMAGE_HASH_COLUMN: &str = "image_hash";
/// Dataset metadata key listing further asset columns (a JSON array of column names).
pub const ASSET_COLUMNS_KEY: &str = "asset_columns";

/// Files up to this size are read whole and put in one request; larger ones stream.
const SMALL_ASSET: u64 = 8 * 1024 * 1024;
/// Part size of streamed uploads.
const PART_SIZE: usize = 8 * 1024 * 1024;
/// Read buffer of streamed uploads.
const READ_CHUNK: usize = 1024 * 1024;
/// Where streamed uploads are staged before they get their address.
pub(crate) const STAGING: &str = "tmp/assets/";
/// Where the tombstones of erased assets live.
pub const TOMBSTONES: &str = "erasures/assets/";
const TOMB_MAGIC: &[u8; 8] = b"QVTOMB01";

/// What is left of an erased asset (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Tombstone {
    /// The asset's hash (hex).
    pub hash: String,
    pub time: chrono::DateTime<chrono::Utc>,
    pub author: String,
    pub reason: String,
    /// Its size in bytes when it was erased (`None`: it was gone already).
    pub size: Option<u64>,
}

impl Tombstone {
    /// Path (relative to the catalog root) of the tombstone of asset `hash`.
    pub fn path(hash: &Hash) -> String {
        let hex = hash.to_hex();
        format!("{TOMBSTONES}{}/{hex}", &hex[..2])
    }

    /// The sealed tombstone.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut b = TOMB_MAGIC.to_vec();
        b.extend_from_slice(&serde_json::to_vec(self)?);
        let seal = blake3::hash(&b);
        b.extend_from_slice(seal.as_bytes());
        Ok(b)
    }

    /// Decode the tombstone at `path`.
    pub fn decode(path: &str, b: &[u8]) -> Result<Tombstone> {
        let bad = |r: String| CoreError::Corrupt {
            what: path.to_string(),
            reason: r,
        };
        if b.len() < 8 + 32 || &b[..8] != TOMB_MAGIC {
            return Err(bad("not an asset tombstone".into()));
        }
        let (rest, seal) = b.split_at(b.len() - 32);
        if blake3::hash(rest).as_bytes() != seal {
            return Err(bad("seal (blake3 of its content) does not match".into()));
        }
        let t: Tombstone =
            serde_json::from_slice(&rest[8..]).map_err(|e| bad(format!("does not decode: {e}")))?;
        if !path.ends_with(&t.hash) {
            return Err(bad("names another asset".into()));
        }
        Ok(t)
    }

    /// The error reads of the erased asset fail with.
    pub fn error(&self) -> CoreError {
        CoreError::AssetErased {
            hash: self.hash.clone(),
            time: self.time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            author: self.author.clone(),
            reason: if self.reason.is_empty() {
                "no reason given".into()
            } else {
                self.reason.clone()
            },
        }
    }
}

/// A stream of verified asset bytes (the last item is an error on hash mismatch).
pub type AssetStream = Pin<Box<dyn Stream<Item = Result<Bytes>> + Send>>;

/// The catalog's asset store. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AssetStore {
    catalog: Catalog,
}

/// Options of [`AssetStore::gc_with`].
#[derive(Debug, Clone, Default)]
pub struct GcOptions {
    /// Only report what would be deleted.
    pub dry_run: bool,
    /// Keep unreferenced assets younger than this (an import running concurrently may
    /// have put them and not yet committed the labels that reference them).
    pub grace: Duration,
}

/// What a gc found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Assets in the store.
    pub assets: u64,
    /// Assets referenced by some reachable version.
    pub referenced: u64,
    /// Unreferenced assets deleted (or, in a dry run, that would be deleted).
    pub deleted: u64,
    pub deleted_bytes: u64,
    /// Unreferenced assets kept because they are younger than the grace period.
    pub kept_young: u64,
    /// Hashes of the deleted assets.
    pub deleted_hashes: Vec<Hash>,
    /// Live versions (commits) whose labels were examined.
    pub versions_scanned: u64,
}

impl Catalog {
    /// The asset store of this catalog.
    pub fn assets(&self) -> AssetStore {
        AssetStore {
            catalog: self.clone(),
        }
    }
}

fn io_err(path: &Path, source: std::io::Error) -> CoreError {
    CoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl AssetStore {
    fn store(&self) -> &Store {
        self.catalog.store()
    }

    /// Path of an asset relative to the catalog root.
    pub fn path_of(hash: &Hash) -> String {
        Store::object_path(ASSET_KIND, hash)
    }

    /// Put bytes; returns their hash. Idempotent.
    pub async fn put_bytes(&self, bytes: Bytes) -> Result<Hash> {
        Ok(self.store().put_object(ASSET_KIND, bytes).await?)
    }

    /// Put the content of a file, streaming large files in bounded memory.
    pub async fn put_file(&self, path: &Path) -> Result<Hash> {
        let meta = tokio::fs::metadata(path)
            .await
            .map_err(|e| io_err(path, e))?;
        if !meta.is_file() {
            return Err(io_err(
                path,
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file"),
            ));
        }
        if meta.len() <= SMALL_ASSET {
            let bytes = tokio::fs::read(path).await.map_err(|e| io_err(path, e))?;
            return self.put_bytes(Bytes::from(bytes)).await;
        }
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|e| io_err(path, e))?;
        self.put_reader(file, &path.display().to_string()).await
    }

    /// Put everything a reader yields, hashing while uploading (bounded memory: one read
    /// buffer plus a few upload parts). `what` names the source in errors.
    pub async fn put_reader<R: AsyncRead + Unpin>(
        &self,
        mut reader: R,
        what: &str,
    ) -> Result<Hash> {
        let os = self.store().object_store();
        let nonce = format!(
            "{}-{}",
            std::process::id(),
            Hash::of(format!("{what}{:?}", std::time::SystemTime::now()).as_bytes()).to_hex()
        );
        let staging = self.store().full_path(&format!("{STAGING}{nonce}"));
        let upload = os.put_multipart(&staging).await.map_err(store_err)?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        let mut hasher = blake3::Hasher::new();
        let mut buf = vec![0u8; READ_CHUNK];
        loop {
            let n = match reader.read(&mut buf).await {
                Ok(n) => n,
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(CoreError::Io {
                        path: what.to_string(),
                        source: e,
                    });
                }
            };
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            if let Err(e) = writer.wait_for_capacity(4).await {
                let _ = writer.abort().await;
                return Err(store_err(e));
            }
            writer.write(&buf[..n]);
        }
        writer.finish().await.map_err(store_err)?;
        // on a durable local store the staged bytes reach the disk before they get the
        // asset's name, so a crash never leaves a short file at that name
        self.store().sync_path(&format!("{STAGING}{nonce}")).await?;
        let hash = Hash(*hasher.finalize().as_bytes());
        let target = self.store().full_path(&Self::path_of(&hash));
        let placed = if self.store().has_object(ASSET_KIND, &hash).await? {
            Ok(())
        } else {
            match os.rename_if_not_exists(&staging, &target).await {
                Ok(()) => {
                    self.store().sync_path(&Self::path_of(&hash)).await?;
                    return Ok(hash);
                }
                Err(object_store::Error::AlreadyExists { .. }) => Ok(()),
                // backends without an atomic create-if-absent rename: the content is
                // addressed by its hash, so an overwriting copy writes the same bytes
                Err(object_store::Error::NotSupported { .. })
                | Err(object_store::Error::NotImplemented { .. }) => {
                    os.copy(&staging, &target).await
                }
                Err(e) => Err(e),
            }
        };
        let _ = os.delete(&staging).await;
        placed.map_err(store_err)?;
        Ok(hash)
    }

    /// Whether the asset exists.
    pub async fn exists(&self, hash: &Hash) -> Result<bool> {
        Ok(self.store().has_object(ASSET_KIND, hash).await?)
    }

    /// The tombstone of an erased asset, if it was erased.
    pub async fn tombstone(&self, hash: &Hash) -> Result<Option<Tombstone>> {
        let path = Tombstone::path(hash);
        match self.store().get_file_opt(&path).await? {
            Some(b) => Tombstone::decode(&path, &b).map(Some),
            None => Ok(None),
        }
    }

    /// Why asset `hash` cannot be read: it was erased, or it is not there.
    async fn missing(&self, hash: &Hash) -> CoreError {
        match self.tombstone(hash).await {
            Ok(Some(t)) => t.error(),
            Ok(None) => CoreError::AssetNotFound(hash.to_hex()),
            Err(e) => e,
        }
    }

    /// Erase an asset (see the module docs): its tombstone, then its bytes are deleted.
    /// Erasing an asset erased before returns its tombstone; one never stored is not found.
    pub async fn erase(&self, hash: &Hash, reason: &str, author: &str) -> Result<Tombstone> {
        let size = match self.size(hash).await {
            Ok(n) => Some(n),
            Err(CoreError::AssetErased { .. }) => None,
            Err(CoreError::AssetNotFound(_)) => {
                return Err(CoreError::AssetNotFound(hash.to_hex()))
            }
            Err(e) => return Err(e),
        };
        let Some(size) = size else {
            // erased already: its tombstone says when and why
            return self
                .tombstone(hash)
                .await?
                .ok_or_else(|| CoreError::AssetNotFound(hash.to_hex()));
        };
        let t = Tombstone {
            hash: hash.to_hex(),
            time: chrono::Utc::now(),
            author: author.to_string(),
            reason: reason.to_string(),
            size: Some(size),
        };
        self.store()
            .put_file(&Tombstone::path(hash), Bytes::from(t.encode()?))
            .await?;
        self.store().delete(&Self::path_of(hash)).await?;
        Ok(t)
    }

    /// Every erased asset's tombstone, oldest first.
    pub async fn tombstones(&self) -> Result<Vec<Tombstone>> {
        let mut out = Vec::new();
        for path in self.store().list(TOMBSTONES).await? {
            if let Some(b) = self.store().get_file_opt(&path).await? {
                out.push(Tombstone::decode(&path, &b)?);
            }
        }
        out.sort_by(|a, b| a.time.cmp(&b.time).then_with(|| a.hash.cmp(&b.hash)));
        Ok(out)
    }

    /// Size in bytes of an asset.
    pub async fn size(&self, hash: &Hash) -> Result<u64> {
        let os = self.store().object_store();
        match os.head(&self.store().full_path(&Self::path_of(hash))).await {
            Ok(m) => Ok(m.size),
            Err(object_store::Error::NotFound { .. }) => Err(self.missing(hash).await),
            Err(e) => Err(store_err(e)),
        }
    }

    /// Read a whole asset, verifying its hash.
    pub async fn get(&self, hash: &Hash) -> Result<Bytes> {
        match self.store().get_object(ASSET_KIND, hash).await {
            Ok(b) => Ok(b),
            Err(quiver_store::StoreError::NotFound { .. }) => Err(self.missing(hash).await),
            Err(e) => Err(e.into()),
        }
    }

    /// Stream an asset in chunks; the hash is verified as the stream ends, and a mismatch
    /// is returned as the stream's last item (a [`CoreError::Store`] corruption error).
    pub async fn open(&self, hash: &Hash) -> Result<AssetStream> {
        let os = self.store().object_store();
        let rel = Self::path_of(hash);
        let res = match os.get(&self.store().full_path(&rel)).await {
            Ok(r) => r,
            Err(object_store::Error::NotFound { .. }) => return Err(self.missing(hash).await),
            Err(e) => return Err(store_err(e)),
        };
        let expected = *hash;
        let inner = res.into_stream();
        let state = (inner, Some(blake3::Hasher::new()));
        let s = futures::stream::unfold(state, move |(mut inner, hasher)| {
            let rel = rel.clone();
            async move {
                let mut hasher = hasher?;
                match inner.next().await {
                    Some(Ok(chunk)) => {
                        hasher.update(&chunk);
                        Some((Ok(chunk), (inner, Some(hasher))))
                    }
                    Some(Err(e)) => Some((Err(store_err(e)), (inner, None))),
                    None => {
                        let actual = Hash(*hasher.finalize().as_bytes());
                        if actual == expected {
                            None
                        } else {
                            let e = CoreError::Store(quiver_store::StoreError::Corrupt {
                                path: rel,
                                expected: expected.to_hex(),
                                actual: actual.to_hex(),
                            });
                            Some((Err(e), (inner, None)))
                        }
                    }
                }
            }
        });
        Ok(Box::pin(s))
    }

    /// Stream an asset into a local file (written to a temporary name and renamed into
    /// place only once the hash has been verified). Returns the bytes written.
    pub async fn get_to_file(&self, hash: &Hash, dest: &Path) -> Result<u64> {
        use tokio::io::AsyncWriteExt;
        let mut stream = self.open(hash).await?;
        let tmp = dest.with_extension(format!("quiver-tmp-{}", std::process::id()));
        let mut f = tokio::fs::File::create(&tmp)
            .await
            .map_err(|e| io_err(&tmp, e))?;
        let mut n = 0u64;
        let res: Result<()> = async {
            while let Some(chunk) = stream.next().await {
                let chunk = chunk?;
                n += chunk.len() as u64;
                f.write_all(&chunk).await.map_err(|e| io_err(&tmp, e))?;
            }
            f.flush().await.map_err(|e| io_err(&tmp, e))?;
            Ok(())
        }
        .await;
        drop(f);
        if let Err(e) = res {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e);
        }
        tokio::fs::rename(&tmp, dest)
            .await
            .map_err(|e| io_err(dest, e))?;
        Ok(n)
    }

    /// Every asset hash in the store.
    pub async fn list(&self) -> Result<Vec<Hash>> {
        Ok(self
            .store()
            .list(&format!("objects/{ASSET_KIND}/"))
            .await?
            .iter()
            .filter_map(|p| p.rsplit('/').next().and_then(Hash::from_hex))
            .collect())
    }

    /// Delete every asset that no live version of any dataset references (see
    /// [`crate::gc`] for what is live). With `dry_run`, only reports.
    pub async fn gc(&self, dry_run: bool) -> Result<GcReport> {
        self.gc_with(&GcOptions {
            dry_run,
            grace: Duration::ZERO,
        })
        .await
    }

    /// [`AssetStore::gc`] with options: an asset-only [`Catalog::gc`] whose retention
    /// window is the grace period.
    pub async fn gc_with(&self, opts: &GcOptions) -> Result<GcReport> {
        let r = self
            .catalog
            .gc(&crate::gc::VacuumOptions {
                retain: opts.grace,
                dry_run: opts.dry_run,
                only_assets: true,
                ..Default::default()
            })
            .await?;
        Ok(GcReport {
            assets: r.assets_seen,
            referenced: r.live_assets,
            deleted: r.assets.count,
            deleted_bytes: r.assets.bytes,
            kept_young: r.kept_young,
            deleted_hashes: r.deleted_assets,
            versions_scanned: r.live_commits,
        })
    }
}

/// Asset columns of a dataset (index, name): `image_hash` plus the columns listed under
/// the metadata key `asset_columns`, in schema order.
pub async fn asset_columns(ds: &crate::Dataset) -> Result<Vec<(usize, String)>> {
    let meta = ds.metadata().await?;
    let mut names: HashSet<String> = HashSet::new();
    names.insert(IMAGE_HASH_COLUMN.to_string());
    if let Some(v) = meta.get(ASSET_COLUMNS_KEY) {
        match v {
            serde_json::Value::Array(items) => {
                names.extend(items.iter().filter_map(|i| i.as_str().map(str::to_string)))
            }
            serde_json::Value::String(s) => {
                names.extend(s.split(',').map(|c| c.trim().to_string()))
            }
            _ => {}
        }
    }
    let schema = ds.schema();
    Ok(schema
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| names.contains(f.name()) && is_hash_type(f.data_type()))
        .map(|(i, f)| (i, f.name().clone()))
        .collect())
}

fn is_hash_type(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
            | DataType::FixedSizeBinary(32)
            | DataType::Binary
    )
}

/// Add the asset hashes held by a column (hex strings or 32-byte binaries).
pub(crate) fn collect_hashes(col: &dyn Array, out: &mut HashSet<Hash>) {
    let mut add_hex = |s: &str| {
        if let Some(h) = Hash::from_hex(s) {
            out.insert(h);
        }
    };
    match col.data_type() {
        DataType::Utf8 => col
            .as_string::<i32>()
            .iter()
            .flatten()
            .for_each(&mut add_hex),
        DataType::LargeUtf8 => col
            .as_string::<i64>()
            .iter()
            .flatten()
            .for_each(&mut add_hex),
        DataType::Utf8View => col.as_string_view().iter().flatten().for_each(&mut add_hex),
        DataType::FixedSizeBinary(32) => {
            for v in col.as_fixed_size_binary().iter().flatten() {
                if let Ok(a) = <[u8; 32]>::try_from(v) {
                    out.insert(Hash(a));
                }
            }
        }
        DataType::Binary => {
            for v in col.as_binary::<i32>().iter().flatten() {
                if let Ok(a) = <[u8; 32]>::try_from(v) {
                    out.insert(Hash(a));
                }
            }
        }
        _ => {}
    }
}

fn store_err(e: object_store::Error) -> CoreError {
    CoreError::Store(e.into())
}

/// Hash a local file in bounded memory (blake3 of its content), without storing it.
pub async fn hash_file(path: &Path) -> Result<Hash> {
    let mut f = tokio::fs::File::open(path)
        .await
        .map_err(|e| io_err(path, e))?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let n = f.read(&mut buf).await.map_err(|e| io_err(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(Hash(*hasher.finalize().as_bytes()))
}
