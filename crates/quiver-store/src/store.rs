//! [`Store`]: one catalog root on any `object_store` backend.
//!
//! A store is a root URL (bare local path, `file://`, `memory://` or `s3://bucket/prefix`)
//! plus an `Arc<dyn ObjectStore>`. It offers three things on top of it:
//!
//! * content-addressed, immutable objects at `objects/<kind>/<hex[0..2]>/<hex>` (this
//!   module), written with create-if-absent and verified against their blake3 on every read;
//! * plain files at caller-chosen paths (Parquet packs, metadata JSON…) (this module);
//! * refs moved by compare-and-swap, portable to every backend (see [`crate::refs`]).
//!
//! Every successful write through a `Store` (and its clones) is added to
//! [`Store::bytes_written`], which benchmarks and tests use to check write amplification.
//!
//! **Durability on local disk.** `object_store`'s `LocalFileSystem` writes a staging file
//! and renames (or hard-links) it into place but never calls `fsync`, so after a power loss
//! a ref entry could survive while the objects it names are empty or gone. With
//! [`StoreOptions::sync`] (the default) every write of a local store is followed by a sync
//! step (module `durable`): the file is fsynced, then its directory (and, the first time,
//! every directory above it up to the root, which may have been created by the write).
//! Writes are synced before they return, so everything a writer put before it creates a
//! ref entry is durable before that entry exists, and the entry itself is durable before
//! `update_ref` returns. Memory and S3 stores are unaffected.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use quiver_tree::Hash;

use crate::durable::Durability;
use crate::error::{Result, StoreError};

/// How a store is opened.
#[derive(Debug, Clone, Copy)]
pub struct StoreOptions {
    /// Make every write of a local store durable (fsync of the file and its directory)
    /// before the write returns. Default on; ignored by memory and S3 stores.
    pub sync: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions { sync: true }
    }
}

/// A handle on one catalog root. Cheap to clone (an `Arc` inside); clones share the
/// byte counter.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn ObjectStore>,
    /// Path prefix inside `store`, without leading or trailing `/` (may be empty).
    prefix: String,
    url: String,
    bytes_written: AtomicU64,
    /// Set for local stores opened with `sync`: how to make writes durable.
    durable: Option<Durability>,
    /// The directory of a local store: small plain files are read from it in place
    /// (see [`Store::get_file_opt`]).
    local_dir: Option<std::path::PathBuf>,
}

/// Plain files up to this size are read in place on a local store.
const SMALL_LOCAL_READ: u64 = 64 * 1024;

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("url", &self.inner.url)
            .field("prefix", &self.inner.prefix)
            .finish()
    }
}

impl Store {
    /// Open a store from a URL: a bare local path or `file://` URL (the directory is
    /// created if missing), `memory://` (a fresh, private in-memory store) or
    /// `s3://bucket/prefix` (configured from the `AWS_*` environment, including
    /// `AWS_ENDPOINT_URL` and `AWS_ALLOW_HTTP` for S3-compatible servers).
    pub fn open(url: &str) -> Result<Store> {
        Self::open_with(url, StoreOptions::default())
    }

    /// [`Store::open`] with options (e.g. `sync: false` to skip fsync on local disk).
    pub fn open_with(url: &str, opts: StoreOptions) -> Result<Store> {
        let invalid = |reason: String| StoreError::InvalidUrl {
            url: url.to_string(),
            reason,
        };
        let Some((scheme, _)) = url.split_once("://") else {
            return Self::open_local(url, std::path::PathBuf::from(url), opts);
        };
        match scheme.to_ascii_lowercase().as_str() {
            "file" => {
                let parsed = url::Url::parse(url).map_err(|e| invalid(e.to_string()))?;
                let dir = parsed
                    .to_file_path()
                    .map_err(|()| invalid("not a local file path".to_string()))?;
                Self::open_local(url, dir, opts)
            }
            "memory" => Ok(Self::from_parts(Arc::new(InMemory::new()), "", url)),
            "s3" | "s3a" => {
                let parsed = url::Url::parse(url).map_err(|e| invalid(e.to_string()))?;
                let bucket = parsed
                    .host_str()
                    .filter(|b| !b.is_empty())
                    .ok_or_else(|| invalid("missing bucket name".to_string()))?;
                let s3 = AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .build()
                    .map_err(|e| invalid(e.to_string()))?;
                Ok(Self::from_parts(Arc::new(s3), parsed.path(), url))
            }
            other => Err(invalid(format!(
                "unsupported scheme {other:?} (expected a local path, file://, memory:// or s3://)"
            ))),
        }
    }

    fn open_local(url: &str, dir: std::path::PathBuf, opts: StoreOptions) -> Result<Store> {
        std::fs::create_dir_all(&dir).map_err(|source| StoreError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        let fs = LocalFileSystem::new_with_prefix(&dir).map_err(|e| StoreError::InvalidUrl {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
        let fs = Arc::new(fs);
        let reads = Arc::new(crate::local_reads::LocalReads::new(fs.clone()));
        let mut store = Self::from_parts(reads, "", url);
        let durable = if opts.sync {
            Some(Durability::new(fs, &dir)?)
        } else {
            None
        };
        if let Some(inner) = Arc::get_mut(&mut store.inner) {
            inner.durable = durable;
            inner.local_dir = Some(dir);
        }
        Ok(store)
    }

    /// Wrap an existing object store (e.g. a fault-injecting one in tests); all paths are
    /// placed under `prefix`.
    pub fn from_object_store(inner: Arc<dyn ObjectStore>, prefix: &str) -> Store {
        let url = format!("{inner}/{}", prefix.trim_matches('/'));
        Self::from_parts(inner, prefix, &url)
    }

    fn from_parts(store: Arc<dyn ObjectStore>, prefix: &str, url: &str) -> Store {
        Store {
            inner: Arc::new(Inner {
                store,
                prefix: prefix.trim_matches('/').to_string(),
                url: url.to_string(),
                bytes_written: AtomicU64::new(0),
                durable: None,
                local_dir: None,
            }),
        }
    }

    /// Whether this store is a local directory (a HEAD is a `stat`, not a round trip).
    pub fn is_local(&self) -> bool {
        self.inner.local_dir.is_some()
    }

    /// The directory of a local store (its object paths are relative to it).
    pub fn local_dir(&self) -> Option<&std::path::Path> {
        self.inner.local_dir.as_deref()
    }

    /// The URL this store was opened from.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// The underlying object store (paths inside it are given by [`Store::full_path`]).
    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        Arc::clone(&self.inner.store)
    }

    /// The path inside [`Store::object_store`] of a path relative to the store root.
    pub fn full_path(&self, rel: &str) -> Path {
        let rel = rel.trim_matches('/');
        let joined = if self.inner.prefix.is_empty() {
            rel.to_string()
        } else if rel.is_empty() {
            self.inner.prefix.clone()
        } else {
            format!("{}/{rel}", self.inner.prefix)
        };
        // `parse` keeps already-valid paths byte for byte (so listed paths round-trip);
        // anything else is percent-encoded by `from`.
        Path::parse(&joined).unwrap_or_else(|_| Path::from(joined.as_str()))
    }

    /// The path relative to the store root of a path inside the object store.
    pub(crate) fn rel_path(&self, full: &Path) -> String {
        let s = full.as_ref();
        if self.inner.prefix.is_empty() {
            return s.to_string();
        }
        s.strip_prefix(self.inner.prefix.as_str())
            .map(|r| r.trim_start_matches('/'))
            .unwrap_or(s)
            .to_string()
    }

    /// Total bytes successfully written through this store and its clones (objects,
    /// files, ref entries and hints). Puts that found the object already present count 0.
    pub fn bytes_written(&self) -> u64 {
        self.inner.bytes_written.load(Ordering::Relaxed)
    }

    /// Whether writes are made durable (a local store opened with `sync`).
    pub fn syncs(&self) -> bool {
        self.inner.durable.is_some()
    }

    /// Files fsynced so far by this store and its clones (0 unless [`Store::syncs`]).
    pub fn synced_files(&self) -> u64 {
        self.inner.durable.as_ref().map_or(0, |d| d.synced_files())
    }

    /// Make the file at `path` (relative to the root) and its directory entry durable, for
    /// files written around the store (e.g. a staged upload renamed into place). A no-op
    /// unless [`Store::syncs`].
    pub async fn sync_path(&self, path: &str) -> Result<()> {
        match &self.inner.durable {
            Some(d) => d.sync(&self.full_path(path)).await,
            None => Ok(()),
        }
    }

    // ---------------------------------------------------------------- objects

    /// Path (relative to the store root) of the object `hash` of `kind`.
    pub fn object_path(kind: &str, hash: &Hash) -> String {
        let hex = hash.to_hex();
        format!("objects/{kind}/{}/{hex}", &hex[..2])
    }

    /// Store `bytes` as an immutable object of `kind` (e.g. `node`, `commit`, `asset`) and
    /// return its blake3 address. Idempotent: an object already present is not rewritten.
    pub async fn put_object(&self, kind: &str, bytes: Bytes) -> Result<Hash> {
        validate_kind(kind)?;
        let hash = Hash::of(&bytes);
        let rel = Self::object_path(kind, &hash);
        let len = bytes.len() as u64;
        if !self.put_create(&rel, bytes.clone()).await? {
            // Already there. On a durable store, make sure the copy is whole and durable:
            // a writer that crashed between its rename and its fsync may have left an empty
            // or short file (content addressing makes rewriting it with these bytes safe).
            if let Some(d) = &self.inner.durable {
                let full = self.full_path(&rel);
                let size = self.inner.store.head(&full).await.map(|m| m.size).ok();
                if size == Some(len) {
                    d.sync(&full).await?;
                } else {
                    self.put_file(&rel, bytes).await?;
                }
            }
        }
        Ok(hash)
    }

    /// Read the object `hash` of `kind`, verifying its blake3: a mismatch is
    /// [`StoreError::Corrupt`], never the bytes.
    pub async fn get_object(&self, kind: &str, hash: &Hash) -> Result<Bytes> {
        validate_kind(kind)?;
        let rel = Self::object_path(kind, hash);
        let bytes = self.get_file(&rel).await?;
        let actual = Hash::of(&bytes);
        if actual != *hash {
            return Err(StoreError::Corrupt {
                path: rel,
                expected: hash.to_hex(),
                actual: actual.to_hex(),
            });
        }
        Ok(bytes)
    }

    /// Whether the object `hash` of `kind` exists (its content is not verified).
    pub async fn has_object(&self, kind: &str, hash: &Hash) -> Result<bool> {
        validate_kind(kind)?;
        let rel = Self::object_path(kind, hash);
        match self.inner.store.head(&self.full_path(&rel)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    // ---------------------------------------------------------------- files

    /// Write a plain file at `path` (relative to the root), overwriting any previous one.
    pub async fn put_file(&self, path: &str, bytes: Bytes) -> Result<()> {
        self.put_overwrite(path, bytes).await?;
        self.sync_path(path).await
    }

    /// Overwriting put without the sync step (advisory files such as a ref's head hint).
    pub(crate) async fn put_overwrite(&self, path: &str, bytes: Bytes) -> Result<()> {
        let len = bytes.len() as u64;
        self.inner
            .store
            .put(&self.full_path(path), PutPayload::from(bytes))
            .await?;
        self.inner.bytes_written.fetch_add(len, Ordering::Relaxed);
        Ok(())
    }

    /// Write a plain file at `path` only if nothing is there yet (atomic create-if-absent).
    /// Returns `false` if the file already existed (it is left unchanged).
    pub async fn put_file_if_absent(&self, path: &str, bytes: Bytes) -> Result<bool> {
        self.put_create(path, bytes).await
    }

    /// Create-if-absent put; `Ok(false)` when the path already exists.
    pub(crate) async fn put_create(&self, rel: &str, bytes: Bytes) -> Result<bool> {
        let len = bytes.len() as u64;
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self
            .inner
            .store
            .put_opts(&self.full_path(rel), PutPayload::from(bytes), opts)
            .await
        {
            Ok(_) => {
                self.inner.bytes_written.fetch_add(len, Ordering::Relaxed);
                self.sync_path(rel).await?;
                Ok(true)
            }
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// `Some(content)` (`Some(None)`: absent) when `path` is a small file of a local store
    /// read in place; `None` when the read is left to the object store: not a local store,
    /// a path with characters the object store would encode, a large file, or any error
    /// (reported by the object store the usual way).
    fn small_local_file(&self, path: &str) -> Option<Option<Bytes>> {
        use std::io::Read;
        let dir = self.inner.local_dir.as_ref()?;
        let rel = path.trim_matches('/');
        let plain = !rel.is_empty()
            && rel
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"._-/".contains(&c))
            && rel
                .split('/')
                .all(|s| !s.is_empty() && s != "." && s != ".." && !s.starts_with('.'));
        if !plain || !self.inner.prefix.is_empty() {
            return None;
        }
        let mut file = match std::fs::File::open(dir.join(rel)) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Some(None),
            Err(_) => return None,
        };
        let meta = file.metadata().ok()?;
        if !meta.is_file() || meta.len() > SMALL_LOCAL_READ {
            return None;
        }
        let mut buf = Vec::with_capacity(meta.len() as usize);
        file.read_to_end(&mut buf).ok()?;
        Some(Some(Bytes::from(buf)))
    }

    /// Read the plain file at `path`; [`StoreError::NotFound`] if absent.
    pub async fn get_file(&self, path: &str) -> Result<Bytes> {
        self.get_file_opt(path)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                path: path.to_string(),
            })
    }

    /// Read the plain file at `path`, or `None` if absent.
    ///
    /// On a local store a small file (a ref entry, a head hint, a dataset's configuration)
    /// is read in place: `object_store`'s local reads hand every open and every read to the
    /// blocking thread pool, and resolving a ref reads three such files, so a statement's
    /// metadata reads were mostly thread hand-offs.
    pub async fn get_file_opt(&self, path: &str) -> Result<Option<Bytes>> {
        if let Some(read) = self.small_local_file(path) {
            return Ok(read);
        }
        match self.inner.store.get(&self.full_path(path)).await {
            Ok(r) => match r.bytes().await {
                Ok(b) => Ok(Some(b)),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e.into()),
            },
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// All files under `prefix` (segment-wise, recursive), as sorted paths relative to the
    /// store root.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let full = self.full_path(prefix);
        let prefix_opt = if full.as_ref().is_empty() {
            None
        } else {
            Some(&full)
        };
        let metas: Vec<_> = self.inner.store.list(prefix_opt).try_collect().await?;
        let mut out: Vec<String> = metas.iter().map(|m| self.rel_path(&m.location)).collect();
        out.sort();
        Ok(out)
    }

    /// All files under `prefix` (segment-wise, recursive) with their size and last
    /// modification time (the storage clock), sorted by path relative to the store root.
    pub async fn list_meta(&self, prefix: &str) -> Result<Vec<FileMeta>> {
        let full = self.full_path(prefix);
        let prefix_opt = if full.as_ref().is_empty() {
            None
        } else {
            Some(&full)
        };
        let metas: Vec<_> = self.inner.store.list(prefix_opt).try_collect().await?;
        let mut out: Vec<FileMeta> = metas
            .iter()
            .map(|m| FileMeta {
                path: self.rel_path(&m.location),
                size: m.size,
                modified: m.last_modified,
            })
            .collect();
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// The direct children of `prefix` (not recursive): `(files, sub-directories)`, both
    /// as sorted paths relative to the store root.
    pub async fn list_dir(&self, prefix: &str) -> Result<(Vec<String>, Vec<String>)> {
        let full = self.full_path(prefix);
        let prefix_opt = if full.as_ref().is_empty() {
            None
        } else {
            Some(&full)
        };
        let res = self.inner.store.list_with_delimiter(prefix_opt).await?;
        let mut files: Vec<String> = res
            .objects
            .iter()
            .map(|m| self.rel_path(&m.location))
            .collect();
        let mut dirs: Vec<String> = res
            .common_prefixes
            .iter()
            .map(|p| self.rel_path(p))
            .collect();
        files.sort();
        dirs.sort();
        Ok((files, dirs))
    }

    /// Delete the file at `path`. Deleting a missing file is not an error.
    pub async fn delete(&self, path: &str) -> Result<()> {
        match self.inner.store.delete(&self.full_path(path)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// A listed file: path relative to the store root, size and last modification time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMeta {
    /// Path relative to the store root.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Last modification (creation, for immutable objects) time by the storage clock.
    pub modified: chrono::DateTime<chrono::Utc>,
}

/// An object kind is one path segment: non-empty ASCII letters, digits, `-` and `_`.
fn validate_kind(kind: &str) -> Result<()> {
    let ok = !kind.is_empty()
        && kind
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidPath {
            path: kind.to_string(),
            reason: "object kind must be non-empty ASCII letters, digits, '-' or '_'".to_string(),
        })
    }
}
