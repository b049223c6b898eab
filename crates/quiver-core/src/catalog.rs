//! The catalog: a root URL holding datasets (and later the asset store and lineage log).
//!
//! # Creating and dropping a dataset atomically
//!
//! A dataset `d` is `datasets/d/dataset.json` (its configuration) plus its refs; it
//! **exists** exactly when the first entry of its main branch,
//! `refs/datasets/d/branches/main/00000000000000000000.json`, exists. Creation writes the
//! configuration, the initial commit and (for [`Catalog::begin_dataset`]) the first data
//! commit, and creates that entry last: a creation killed at any earlier point leaves a
//! *half-created* dataset that no reader sees ([`Catalog::list_datasets`] and
//! [`Catalog::dataset`] skip it), that creating the name again cleans up, and that
//! `fsck` reports (and `fsck --repair` removes). Dropping deletes that entry first, so a
//! drop killed midway leaves a half-created dataset, never a visible broken one.
//!
//! Two creations of the same name race on that entry (create-if-absent): one wins, the
//! other fails with [`CoreError::DatasetExists`]. The winner re-reads the configuration after
//! winning and rewrites its own if the loser (taking the other for leftovers) overwrote it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arrow::datatypes::SchemaRef;
use bytes::Bytes;
use quiver_store::Store;
use quiver_tree::Hash;

use crate::dataset::Dataset;
use crate::error::{CoreError, Result};
use crate::model::{Commit, DatasetConfig, FORMAT_VERSION};
use crate::packs::MetaCache;
use crate::verified::VerifiedStore;
use crate::write::WriteTxn;
use crate::{encoding, DEFAULT_BRANCH};

/// Options for creating a dataset.
#[derive(Debug, Clone)]
pub struct DatasetOptions {
    /// Group key column (one sample): default `sample_id`.
    pub group_key: String,
    /// Label key column (one label within a sample): default `label_id`.
    pub label_key: String,
    /// Columns with statistics in the snapshot tree; `None` = every non-key column of a
    /// supported type.
    pub stats_columns: Option<Vec<String>>,
    /// Storage format 1 only (kept for configuration compatibility; unused).
    pub leaf_target: u32,
    /// Storage format 1 only (kept for configuration compatibility; unused).
    pub fanout: u32,
    /// Average label groups per base chunk (the unit of scan partitions, pruning
    /// statistics and OPTIMIZE rewrites).
    pub chunk_groups: u32,
    /// Author of the initial commit.
    pub author: String,
}

impl Default for DatasetOptions {
    fn default() -> Self {
        DatasetOptions {
            group_key: "sample_id".into(),
            label_key: "label_id".into(),
            stats_columns: None,
            leaf_target: 16,
            fanout: 16,
            chunk_groups: crate::model::DEFAULT_CHUNK_GROUPS,
            author: default_author(),
        }
    }
}

/// The user name recorded on commits when none is given (`$QUIVER_AUTHOR`, `$USER`, "quiver").
pub fn default_author() -> String {
    std::env::var("QUIVER_AUTHOR")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "quiver".to_string())
}

pub(crate) struct CatalogInner {
    pub store: Store,
    pub meta: Arc<MetaCache>,
    pub commits: Mutex<HashMap<Hash, Commit>>,
    /// Layout of each commit read so far (see [`crate::storage`]).
    pub layouts: Mutex<HashMap<Hash, Hash>>,
    /// The gc epoch (see [`crate::lease`]) the caches above were filled under.
    pub gc_epoch: Mutex<Option<Bytes>>,
    /// Distinct for every [`Catalog::open`] in this process.
    pub instance: u64,
    /// The runner of pre-merge checks ([`crate::branch_settings`]).
    pub checks: std::sync::RwLock<Option<Arc<dyn crate::branch_settings::CheckRunner>>>,
    /// Packs holding erased rows ([`crate::erase::known`]).
    pub erased: Mutex<crate::erase::known::ErasedSet>,
}

static NEXT_INSTANCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// An open catalog. Cheap to clone; caches are shared by every clone.
#[derive(Clone)]
pub struct Catalog {
    pub(crate) inner: Arc<CatalogInner>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Catalog({})", self.inner.store.url())
    }
}

/// Every JSON record (`*.json`) under `prefix`, in listing order, read concurrently; a
/// record that does not parse is reported as corrupt, naming its path.
pub(crate) async fn read_json_records<T: serde::de::DeserializeOwned>(
    store: &Store,
    prefix: &str,
) -> Result<Vec<T>> {
    use futures::{StreamExt, TryStreamExt};
    let paths: Vec<String> = store
        .list(prefix)
        .await?
        .into_iter()
        .filter(|p| p.ends_with(".json"))
        .collect();
    futures::stream::iter(paths)
        .map(|path| async move {
            let bytes = store.get_file(&path).await?;
            serde_json::from_slice(&bytes).map_err(|e| CoreError::Corrupt {
                what: path,
                reason: e.to_string(),
            })
        })
        .buffered(16)
        .try_collect()
        .await
}

pub(crate) fn dataset_dir(name: &str) -> String {
    format!("datasets/{name}/")
}

/// Path of a dataset's configuration.
pub(crate) fn config_path(name: &str) -> String {
    format!("{}dataset.json", dataset_dir(name))
}

/// Ref path of a dataset's main branch.
pub(crate) fn main_ref(name: &str) -> String {
    format!("datasets/{name}/branches/{DEFAULT_BRANCH}")
}

impl Catalog {
    /// Open (creating if needed) the catalog at `url`: a local path, `file://…`,
    /// `memory://` or `s3://bucket/prefix`.
    pub async fn open(url: &str) -> Result<Catalog> {
        Self::from_store(Store::open(url)?).await
    }

    /// [`Catalog::open`] with store options (e.g. `sync: false`: no fsync on local disk).
    pub async fn open_with(url: &str, opts: quiver_store::StoreOptions) -> Result<Catalog> {
        Self::from_store(Store::open_with(url, opts)?).await
    }

    /// Open a catalog over an already configured store (used to inject faults in tests).
    pub async fn from_store(store: Store) -> Result<Catalog> {
        let marker = serde_json::json!({ "format": "quiver", "format_version": FORMAT_VERSION });
        let existing = store
            .get_file_opt("catalog.json")
            .await
            .map_err(|e| unreachable_catalog(store.url(), e))?;
        if existing.is_none() {
            store
                .put_file_if_absent("catalog.json", Bytes::from(serde_json::to_vec(&marker)?))
                .await
                .map_err(|e| unreachable_catalog(store.url(), e))?;
        }
        let gc_epoch = store.get_file_opt(crate::lease::EPOCH_PATH).await?;
        Ok(Catalog {
            inner: Arc::new(CatalogInner {
                gc_epoch: Mutex::new(gc_epoch),
                meta: Arc::new(MetaCache::new(Arc::new(VerifiedStore::new(store.clone())))),
                store,
                commits: Mutex::default(),
                layouts: Mutex::default(),
                instance: NEXT_INSTANCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                checks: Default::default(),
                erased: Mutex::default(),
            }),
        })
    }

    /// A number distinct for every opened catalog of this process (clones share it), e.g.
    /// to register its store with a query engine once.
    pub fn instance_id(&self) -> u64 {
        self.inner.instance
    }

    /// The underlying store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The catalog's object store as query engines (DataFusion sessions) get it: the same
    /// paths as [`Store::object_store`] (see [`Store::full_path`]), reads only — every put,
    /// multipart upload, copy, rename and delete is refused ([`quiver_store::ReadOnlyStore`])
    /// — and every range read of a pack verified against the pack's checksums
    /// ([`VerifiedStore`]).
    pub fn query_store(&self) -> Arc<dyn object_store::ObjectStore> {
        Arc::new(quiver_store::ReadOnlyStore::new(
            self.inner.meta.pack_store(),
        ))
    }

    /// Keep up to `bytes` of verified pack bytes in memory and serve repeated range reads
    /// from them (local catalogs; 0 turns it off, the default). For long-running readers
    /// such as `quiver serve`, whose clients read the same versions again and again; see
    /// [`crate::read_cache`].
    pub fn set_read_cache(&self, bytes: usize) {
        self.inner.meta.verified().read_cache().set_budget(bytes);
    }

    /// Shared cache of Parquet footers.
    pub fn meta_cache(&self) -> Arc<MetaCache> {
        self.inner.meta.clone()
    }

    /// Create a dataset with `schema`; it starts with one empty commit on `main`.
    pub async fn create_dataset(
        &self,
        name: &str,
        schema: SchemaRef,
        opts: DatasetOptions,
    ) -> Result<Dataset> {
        let mut txn = self.begin_dataset(name, schema, opts).await?;
        txn.commit("create dataset").await?;
        self.dataset(name).await
    }

    /// Start creating a dataset together with its first data: the returned transaction
    /// writes on `main` of the new dataset, which becomes visible only when the transaction
    /// commits (with the initial empty commit as its parent, or as the head if nothing was
    /// written). Dropped uncommitted, it leaves an invisible half-created dataset (see the
    /// module docs). Fails with [`CoreError::DatasetExists`] if the dataset exists.
    pub async fn begin_dataset(
        &self,
        name: &str,
        schema: SchemaRef,
        opts: DatasetOptions,
    ) -> Result<WriteTxn> {
        validate_name(name)?;
        let find = |col: &str| {
            schema
                .field_with_name(col)
                .map_err(|_| CoreError::ColumnNotFound {
                    dataset: name.to_string(),
                    column: col.to_string(),
                })
        };
        for f in schema.fields() {
            if let Some(t) = encoding::unstorable_type(f.data_type()) {
                return Err(CoreError::UnsupportedColumnType {
                    dataset: name.into(),
                    column: f.name().clone(),
                    data_type: t.to_string(),
                });
            }
        }
        for key in [&opts.group_key, &opts.label_key] {
            let f = find(key)?;
            if !encoding::is_key_type(f.data_type()) {
                return Err(CoreError::UnsupportedKeyType {
                    dataset: name.into(),
                    column: key.clone(),
                    data_type: f.data_type().to_string(),
                });
            }
        }
        if opts.group_key == opts.label_key {
            return Err(CoreError::InvalidName {
                name: opts.label_key.clone(),
                reason: "group key and label key must be different columns".into(),
            });
        }
        let stats_columns = match &opts.stats_columns {
            Some(cols) => {
                for c in cols {
                    let f = find(c)?;
                    if !encoding::is_stats_type(f.data_type()) {
                        return Err(CoreError::SchemaMismatch {
                            dataset: name.into(),
                            reason: format!(
                                "statistics are not supported for column '{c}' of type {}",
                                f.data_type()
                            ),
                        });
                    }
                }
                cols.clone()
            }
            None => schema
                .fields()
                .iter()
                .filter(|f| {
                    f.name() != &opts.group_key
                        && f.name() != &opts.label_key
                        && encoding::is_stats_type(f.data_type())
                })
                .map(|f| f.name().clone())
                .collect(),
        };
        let config = DatasetConfig {
            format_version: FORMAT_VERSION,
            name: name.to_string(),
            fields: DatasetConfig::fields_of(&schema),
            group_key: opts.group_key.clone(),
            label_key: opts.label_key.clone(),
            stats_columns,
            leaf_target: opts.leaf_target.max(2),
            fanout: opts.fanout.max(2),
            chunk_groups: opts.chunk_groups.max(1),
            created_at: chrono::Utc::now(),
        };
        let path = config_path(name);
        let bytes = Bytes::from(serde_json::to_vec_pretty(&config)?);
        let store = &self.inner.store;
        if !store.put_file_if_absent(&path, bytes.clone()).await? {
            if self.is_published(name).await? {
                return Err(CoreError::DatasetExists(name.to_string()));
            }
            // leftovers of a creation or drop that did not finish: never visible, so
            // nothing reads them
            self.remove_leftovers(name, false).await?;
            store.put_file(&path, bytes).await?;
        }
        let ds = Dataset::new(self.clone(), config)?;
        let initial = ds.initial_commit(&opts.author).await?;
        Ok(WriteTxn::creating(ds, initial).author(&opts.author))
    }

    /// Whether dataset `name` exists: the first entry of its main branch exists.
    pub(crate) async fn is_published(&self, name: &str) -> Result<bool> {
        Ok(self
            .inner
            .store
            .ref_entry_exists(&main_ref(name), 0)
            .await?)
    }

    /// Delete what a half-created (or half-dropped) dataset left behind: its refs, schema
    /// registry, metadata and pending merges, and with `all` its configuration, commit
    /// markers and pack indexes too. Objects stay for VACUUM. Returns the deleted paths.
    pub(crate) async fn remove_leftovers(&self, name: &str, all: bool) -> Result<Vec<String>> {
        let store = &self.inner.store;
        let mut gone = store.list(&format!("refs/{}", dataset_dir(name))).await?;
        let dir = dataset_dir(name);
        for p in store.list(&dir).await? {
            let rest = p.strip_prefix(&dir).unwrap_or(&p);
            let kept = rest == "dataset.json"
                || rest.starts_with("commits/")
                || rest.starts_with("packidx/");
            if all || !kept {
                gone.push(p);
            }
        }
        for p in &gone {
            store.delete(p).await?;
        }
        Ok(gone)
    }

    /// Open a dataset by name.
    pub async fn dataset(&self, name: &str) -> Result<Dataset> {
        if validate_name(name).is_err() {
            return Err(CoreError::DatasetNotFound(name.to_string()));
        }
        let path = config_path(name);
        let bytes = self
            .inner
            .store
            .get_file_opt(&path)
            .await?
            .ok_or_else(|| CoreError::DatasetNotFound(name.to_string()))?;
        // a dataset whose creation did not finish has no main branch: treat as absent
        if !self.is_published(name).await? {
            return Err(CoreError::DatasetNotFound(name.to_string()));
        }
        let config: DatasetConfig =
            serde_json::from_slice(&bytes).map_err(|e| CoreError::Corrupt {
                what: path.clone(),
                reason: e.to_string(),
            })?;
        if config.format_version != FORMAT_VERSION {
            return Err(CoreError::UnsupportedFormat {
                dataset: name.to_string(),
                found: config.format_version,
                supported: FORMAT_VERSION,
            });
        }
        let ds = Dataset::new(self.clone(), config)?;
        if ds.try_branch_head(DEFAULT_BRANCH).await?.is_none() {
            return Err(CoreError::DatasetNotFound(name.to_string()));
        }
        Ok(ds)
    }

    /// Names of all datasets, sorted. Half-created datasets (see the module docs) are not
    /// listed.
    pub async fn list_datasets(&self) -> Result<Vec<String>> {
        use futures::{StreamExt, TryStreamExt};
        // one directory level (a recursive listing would walk every commit marker and
        // layout pointer of every dataset: sessions list the datasets on every request)
        let (_, dirs) = self.inner.store.list_dir("datasets/").await?;
        let mut names: Vec<String> = dirs
            .iter()
            .filter_map(|p| p.strip_prefix("datasets/"))
            .map(|n| n.trim_end_matches('/'))
            .filter(|n| !n.is_empty() && !n.contains('/'))
            .map(str::to_string)
            .collect();
        names.sort();
        names.dedup();
        let published: Vec<(String, bool)> = futures::stream::iter(names)
            .map(|n| async move {
                // a dataset is listed once published (its main branch's first entry) and
                // while its configuration exists
                let p = self.is_published(&n).await?
                    && self
                        .inner
                        .store
                        .get_file_opt(&config_path(&n))
                        .await?
                        .is_some();
                Ok::<_, CoreError>((n, p))
            })
            .buffered(16)
            .try_collect()
            .await?;
        Ok(published
            .into_iter()
            .filter_map(|(n, p)| p.then_some(n))
            .collect())
    }

    /// Drop a dataset: its configuration, refs and indexes go; data objects stay until gc.
    /// The first entry of its main branch goes first, so the dataset disappears at once.
    pub async fn drop_dataset(&self, name: &str) -> Result<()> {
        self.dataset(name).await?;
        let store = &self.inner.store;
        store
            .delete(&Store::ref_entry_path(&main_ref(name), 0))
            .await?;
        self.remove_leftovers(name, true).await?;
        Ok(())
    }
}

/// Validate a dataset, branch or tag name (git-like rules, at most
/// [`quiver_store::MAX_NAME_BYTES`] bytes).
pub fn validate_name(name: &str) -> Result<()> {
    if name.len() > quiver_store::MAX_NAME_BYTES {
        // the error names the first characters only: the name may be arbitrarily long
        let head: String = name.chars().take(40).collect();
        return Err(CoreError::InvalidName {
            name: format!("{head}…"),
            reason: format!(
                "names may be at most {} bytes long, this one has {}",
                quiver_store::MAX_NAME_BYTES,
                name.len()
            ),
        });
    }
    if name.contains('/') || name.contains('@') {
        return Err(CoreError::InvalidName {
            name: name.to_string(),
            reason: "names may not contain '/' or '@'".into(),
        });
    }
    quiver_store::validate_ref_segment(name).map_err(|e| CoreError::InvalidName {
        name: name.to_string(),
        reason: e.to_string(),
    })
}

/// The settings an `s3://` catalog is opened with (object_store reads them from the
/// environment), for error messages and `--help`.
pub const S3_SETTINGS: &str = "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (AWS_SESSION_TOKEN \
for temporary credentials), AWS_REGION (AWS_DEFAULT_REGION), AWS_ENDPOINT_URL for an \
S3-compatible server (MinIO, Ceph, moto) and AWS_ALLOW_HTTP=true when it speaks plain http";

/// The first read of a catalog failed: for an `s3://` catalog, say which setting is the
/// likely cause instead of the object store's raw text.
fn unreachable_catalog(url: &str, e: quiver_store::StoreError) -> CoreError {
    let s3 = url.starts_with("s3://") || url.starts_with("s3a://");
    if !s3 {
        return e.into();
    }
    let text = format!("{e:?} {e}");
    let bucket = url
        .split_once("://")
        .map(|(_, rest)| rest.split('/').next().unwrap_or_default())
        .unwrap_or_default();
    let endpoint = std::env::var("AWS_ENDPOINT_URL")
        .map(|e| format!("the S3 server at {e} (AWS_ENDPOINT_URL)"))
        .unwrap_or_else(|_| "AWS S3 (set AWS_ENDPOINT_URL for another server)".into());
    let reason = if text.contains("NoSuchBucket") {
        format!("bucket '{bucket}' does not exist on {endpoint}: create it, or name another bucket")
    } else if [
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "AccessDenied",
        "Missing credentials",
        "credential",
        "ExpiredToken",
    ]
    .iter()
    .any(|k| text.contains(k))
    {
        format!(
            "{endpoint} refused the credentials for bucket '{bucket}': set \
             AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for \
             temporary credentials) — {e}"
        )
    } else {
        format!("{e} — an s3:// catalog is configured by {S3_SETTINGS}")
    };
    CoreError::CatalogUnreachable {
        url: url.to_string(),
        reason,
    }
}
