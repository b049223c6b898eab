//! A dataset: its refs (branches, tags), history, version resolution and metadata.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use quiver_store::{RefLogEntry, StoreError};
use quiver_tree::Hash;
use serde_json::Value;

use crate::catalog::{dataset_dir, validate_name, Catalog};
use crate::error::{CoreError, Result};
use crate::model::{
    Commit, CommitData, DatasetConfig, OperationSummary, RefInfo, VersionSpec, FORMAT_VERSION,
};
use crate::snapshot::Snapshot;
use crate::write::WriteTxn;
use crate::DEFAULT_BRANCH;

/// Object kind of commits.
pub const COMMIT_KIND: &str = "commit";

/// An open dataset. Cheap to clone.
#[derive(Clone)]
pub struct Dataset {
    pub(crate) catalog: Catalog,
    pub(crate) config: Arc<DatasetConfig>,
    pub(crate) schema: SchemaRef,
    /// Who acts on this handle (see [`Dataset::with_author`]); `None`: [`default_author`].
    ///
    /// [`default_author`]: crate::default_author
    pub(crate) author: Option<Arc<str>>,
}

impl std::fmt::Debug for Dataset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Dataset({})", self.config.name)
    }
}

/// The head of a branch: the ref entry number (for compare-and-swap) and the commit.
#[derive(Debug, Clone)]
pub struct BranchHead {
    pub seq: u64,
    pub commit: Commit,
}

impl Dataset {
    pub(crate) fn new(catalog: Catalog, config: DatasetConfig) -> Result<Dataset> {
        let schema = config.schema()?;
        Ok(Dataset {
            catalog,
            config: Arc::new(config),
            schema,
            author: None,
        })
    }

    /// The same dataset, acting for `author`: ref-log entries of branch and tag changes and
    /// the default author of [`Dataset::begin`]'s commits name them (a server acting for an
    /// authenticated caller), instead of the process's [`crate::default_author`].
    pub fn with_author(&self, author: &str) -> Dataset {
        Dataset {
            author: Some(Arc::from(author)),
            ..self.clone()
        }
    }

    /// Who acts on this handle: the [`Dataset::with_author`] name, else
    /// [`crate::default_author`].
    pub fn author(&self) -> String {
        match &self.author {
            Some(a) => a.to_string(),
            None => crate::catalog::default_author(),
        }
    }

    /// Dataset name.
    pub fn name(&self) -> &str {
        &self.config.name
    }
    /// Arrow schema of the labels.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
    /// Configuration (keys, statistics columns, chunking).
    pub fn config(&self) -> &DatasetConfig {
        &self.config
    }
    /// The catalog holding this dataset.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub(crate) fn store(&self) -> &quiver_store::Store {
        &self.catalog.inner.store
    }

    pub(crate) fn ref_prefix(&self, kind: &str) -> String {
        format!("datasets/{}/{kind}", self.config.name)
    }
    fn branch_ref(&self, b: &str) -> String {
        format!("{}/{b}", self.ref_prefix("branches"))
    }
    fn tag_ref(&self, t: &str) -> String {
        format!("{}/{t}", self.ref_prefix("tags"))
    }

    // ---------------------------------------------------------------- commits

    /// Write a version: its layout object, the commit (whose root is the layout's content
    /// hash) and the pointer from the commit to the layout. Returns the commit, the bytes
    /// written and the hash of the layout object.
    pub(crate) async fn write_version(
        &self,
        layout: &crate::storage::Layout,
        parents: Vec<Hash>,
        author: &str,
        message: &str,
        summary: OperationSummary,
    ) -> Result<(Commit, u64, Hash)> {
        let bytes = layout.encode();
        let mut written = bytes.len() as u64;
        let lh = self
            .store()
            .put_object(crate::storage::format::LAYOUT_KIND, Bytes::from(bytes))
            .await?;
        let commit = self
            .write_commit(layout.content.digest(), parents, author, message, summary)
            .await?;
        written += self.set_layout(&commit.id, &lh).await?;
        Ok((commit, written, lh))
    }

    /// Point `commit` at the layout `layout` (a new commit, or OPTIMIZE re-pointing one to
    /// an equivalent layout).
    pub(crate) async fn set_layout(&self, commit: &Hash, layout: &Hash) -> Result<u64> {
        let body = layout.to_hex();
        let n = body.len() as u64;
        self.store()
            .put_file(
                &crate::storage::layout_pointer(&self.config.name, commit),
                Bytes::from(body),
            )
            .await?;
        if let Ok(mut m) = self.catalog.inner.layouts.lock() {
            m.insert(*commit, *layout);
        }
        Ok(n)
    }

    /// The layout hash of a commit.
    pub(crate) async fn layout_of(&self, commit: &Hash) -> Result<Hash> {
        if let Some(h) = self
            .catalog
            .inner
            .layouts
            .lock()
            .ok()
            .and_then(|m| m.get(commit).copied())
        {
            return Ok(h);
        }
        let path = crate::storage::layout_pointer(&self.config.name, commit);
        let body = self.store().get_file_opt(&path).await?.ok_or_else(|| {
            CoreError::Corrupt {
                what: format!("commit {commit} of dataset '{}'", self.config.name),
                reason: "it has no layout (a commit of an unfinished write, or of an older storage format: run `quiver fsck`)".into(),
            }
        })?;
        let h = std::str::from_utf8(&body)
            .ok()
            .and_then(|s| Hash::from_hex(s.trim()))
            .ok_or_else(|| CoreError::Corrupt {
                what: path.clone(),
                reason: "not a layout hash".into(),
            })?;
        if let Ok(mut m) = self.catalog.inner.layouts.lock() {
            m.insert(*commit, h);
        }
        Ok(h)
    }

    /// Load (or take from the cache) the folded layout of a commit.
    pub(crate) async fn load_view(&self, commit: &Commit) -> Result<Arc<crate::storage::View>> {
        use crate::storage::format::{Base, BASE_KIND};
        let id = self.layout_of(&commit.id).await?;
        if let Some(v) = crate::storage::view::cached(&id) {
            return Ok(v);
        }
        let layered = self.load_layered(commit).await?;
        let bh = layered.layout.base;
        let base = match crate::storage::view::cached_base(&bh) {
            Some(b) => b,
            None => {
                let b = self.store().get_object(BASE_KIND, &bh).await?;
                let what = format!("base {bh} of dataset '{}'", self.config.name);
                let base = Arc::new(Base::decode(&b, &what)?);
                crate::storage::view::remember_base(bh, base.clone());
                base
            }
        };
        let v = Arc::new(crate::storage::View::new(
            id,
            layered.layout.clone(),
            base,
            layered.deltas.clone(),
        ));
        crate::storage::view::remember(v.clone());
        Ok(v)
    }

    /// The layout of a version with its deltas, without its base (cached).
    pub(crate) async fn load_layered(
        &self,
        commit: &Commit,
    ) -> Result<Arc<crate::storage::view::Layered>> {
        use crate::storage::format::{Delta, Layout, DELTA_KIND, LAYOUT_KIND};
        let id = self.layout_of(&commit.id).await?;
        if let Some(l) = crate::storage::view::cached_layered(&id) {
            return Ok(l);
        }
        let store = self.store();
        let what = |kind: &str, h: &Hash| format!("{kind} {h} of dataset '{}'", self.config.name);
        let layout = Layout::decode(
            &store.get_object(LAYOUT_KIND, &id).await?,
            &what("layout", &id),
        )?;
        if layout.content.digest() != commit.root {
            return Err(CoreError::Corrupt {
                what: what("layout", &id),
                reason: format!("its content hash is not commit {}'s root", commit.id),
            });
        }
        let deltas = futures::future::try_join_all(layout.deltas.iter().map(|h| async move {
            let b = store.get_object(DELTA_KIND, h).await?;
            Delta::decode(&b, &what("delta", h)).map(Arc::new)
        }))
        .await?;
        let l = Arc::new(crate::storage::view::Layered { id, layout, deltas });
        crate::storage::view::remember_layered(l.clone());
        Ok(l)
    }

    /// Write a commit object (and its listing marker); returns the commit.
    pub(crate) async fn write_commit(
        &self,
        root: Hash,
        parents: Vec<Hash>,
        author: &str,
        message: &str,
        summary: OperationSummary,
    ) -> Result<Commit> {
        let now = Utc::now();
        let data = CommitData {
            format_version: FORMAT_VERSION,
            dataset: self.config.name.clone(),
            root: root.to_hex(),
            parents: parents.iter().map(Hash::to_hex).collect(),
            schema_id: self.config.schema_id().to_hex(),
            author: author.to_string(),
            message: message.to_string(),
            timestamp: now,
            client_timestamp: now,
            summary,
            label_schema: self.current_schema_version().await?,
        };
        let bytes = Commit::encode(&data)?;
        let id = self
            .store()
            .put_object(COMMIT_KIND, Bytes::from(bytes))
            .await?;
        self.store()
            .put_file(
                &format!("{}commits/{}", dataset_dir(&self.config.name), id.to_hex()),
                Bytes::new(),
            )
            .await?;
        let c = Commit {
            id,
            root,
            parents,
            data,
        };
        if let Ok(mut cache) = self.catalog.inner.commits.lock() {
            cache.insert(id, c.clone());
        }
        Ok(c)
    }

    /// Look a commit up by full id.
    pub async fn commit(&self, id: &Hash) -> Result<Commit> {
        if let Some(c) = self
            .catalog
            .inner
            .commits
            .lock()
            .ok()
            .and_then(|m| m.get(id).cloned())
        {
            return Ok(c);
        }
        let bytes = match self.store().get_object(COMMIT_KIND, id).await {
            Ok(b) => b,
            Err(StoreError::NotFound { .. }) => {
                return Err(CoreError::VersionNotFound {
                    dataset: self.config.name.clone(),
                    version: id.to_hex(),
                })
            }
            Err(e) => return Err(e.into()),
        };
        let c = Commit::decode(*id, &bytes)?;
        if c.data.dataset != self.config.name {
            return Err(CoreError::VersionNotFound {
                dataset: self.config.name.clone(),
                version: id.to_hex(),
            });
        }
        if let Ok(mut cache) = self.catalog.inner.commits.lock() {
            cache.insert(*id, c.clone());
        }
        Ok(c)
    }

    /// Write the initial (empty) commit of a dataset being created; no ref names it yet.
    pub(crate) async fn initial_commit(&self, author: &str) -> Result<Commit> {
        let base = self
            .store()
            .put_object(
                crate::storage::format::BASE_KIND,
                Bytes::from(crate::storage::Base::default().encode()),
            )
            .await?;
        let layout = crate::storage::Layout {
            base,
            deltas: Vec::new(),
            rows: 0,
            groups: 0,
            content: crate::storage::Multiset::default(),
            folds: Vec::new(),
        };
        let summary = OperationSummary {
            operation: "create".into(),
            ..Default::default()
        };
        Ok(self
            .write_version(&layout, vec![], author, "create dataset", summary)
            .await?
            .0)
    }

    /// Publish a dataset being created: create the first entry of its main branch at
    /// `commit` (the dataset's commit point), then make sure the configuration on storage
    /// is this dataset's (see the catalog module docs on racing creators).
    pub(crate) async fn publish(&self, commit: &Commit, author: &str) -> Result<u64> {
        let created = self
            .store()
            .update_ref(
                &self.branch_ref(DEFAULT_BRANCH),
                None,
                Some(commit.id),
                author,
                "create dataset",
            )
            .await;
        let st = match created {
            Ok(st) => st,
            Err(StoreError::RefConflict { .. }) => {
                return Err(CoreError::DatasetExists(self.config.name.clone()))
            }
            Err(e) => return Err(e.into()),
        };
        let path = crate::catalog::config_path(&self.config.name);
        let mine = serde_json::to_vec_pretty(self.config.as_ref())?;
        if self.store().get_file_opt(&path).await?.as_deref() != Some(mine.as_slice()) {
            self.store().put_file(&path, Bytes::from(mine)).await?;
        }
        Ok(st.seq)
    }

    // ---------------------------------------------------------------- branches

    pub(crate) async fn try_branch_head(&self, branch: &str) -> Result<Option<BranchHead>> {
        if validate_name(branch).is_err() {
            return Ok(None);
        }
        match self.store().read_ref(&self.branch_ref(branch)).await? {
            Some(st) => match st.target {
                Some(h) => Ok(Some(BranchHead {
                    seq: st.seq,
                    commit: self.commit(&h).await?,
                })),
                None => Ok(None),
            },
            None => Ok(None),
        }
    }

    /// The head of a branch (typed error if missing).
    pub async fn branch_head(&self, branch: &str) -> Result<BranchHead> {
        self.try_branch_head(branch)
            .await?
            .ok_or_else(|| CoreError::BranchNotFound {
                dataset: self.config.name.clone(),
                branch: branch.to_string(),
            })
    }

    /// Move a branch by compare-and-swap from ref entry `expected`.
    pub(crate) async fn move_branch(
        &self,
        branch: &str,
        expected: u64,
        to: Hash,
        author: &str,
        reason: &str,
    ) -> Result<std::result::Result<u64, ()>> {
        match self
            .store()
            .update_ref(
                &self.branch_ref(branch),
                Some(expected),
                Some(to),
                author,
                reason,
            )
            .await
        {
            Ok(st) => Ok(Ok(st.seq)),
            Err(StoreError::RefConflict { .. }) => Ok(Err(())),
            Err(e) => Err(e.into()),
        }
    }

    /// All branches with their head commit ids, sorted by name.
    pub async fn branches(&self) -> Result<Vec<RefInfo>> {
        self.list_refs("branches").await
    }

    async fn list_refs(&self, kind: &str) -> Result<Vec<RefInfo>> {
        let prefix = format!("{}/", self.ref_prefix(kind));
        let refs = self.store().list_refs(&prefix).await?;
        Ok(refs
            .into_iter()
            .filter_map(|(name, st)| {
                let n = name.strip_prefix(&prefix).unwrap_or(&name).to_string();
                st.target.map(|commit| RefInfo { name: n, commit })
            })
            .collect())
    }

    /// Create a branch at a version. O(1): writes one ref entry.
    pub async fn create_branch(&self, name: &str, from: &VersionSpec) -> Result<RefInfo> {
        validate_name(name)?;
        let c = self.resolve(from).await?;
        let r = self.branch_ref(name);
        let expected = match self.store().read_ref(&r).await? {
            Some(st) if st.target.is_some() => {
                return Err(CoreError::BranchExists {
                    dataset: self.config.name.clone(),
                    branch: name.into(),
                })
            }
            Some(st) => Some(st.seq),
            None => None,
        };
        match self
            .store()
            .update_ref(
                &r,
                expected,
                Some(c.id),
                &self.author(),
                &format!("create branch from {from}"),
            )
            .await
        {
            Ok(_) => {
                // settings left by an earlier branch of that name (a delete cut short) are
                // not the new branch's
                self.move_settings(name, None).await?;
                Ok(RefInfo {
                    name: name.into(),
                    commit: c.id,
                })
            }
            Err(StoreError::RefConflict { .. }) => Err(CoreError::BranchExists {
                dataset: self.config.name.clone(),
                branch: name.into(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Delete a branch (`main` cannot be deleted).
    pub async fn delete_branch(&self, name: &str) -> Result<()> {
        if name == DEFAULT_BRANCH {
            return Err(CoreError::InvalidName {
                name: name.into(),
                reason: "the main branch cannot be deleted".into(),
            });
        }
        let head = self.branch_head(name).await?;
        self.refuse_if_protected(name, "deleting it").await?;
        self.store()
            .update_ref(
                &self.branch_ref(name),
                Some(head.seq),
                None,
                &self.author(),
                "delete branch",
            )
            .await?;
        self.move_settings(name, None).await?;
        Ok(())
    }

    /// Rename a branch: creates the new name at the same commit, then deletes the old one.
    pub async fn rename_branch(&self, from: &str, to: &str) -> Result<RefInfo> {
        if from == DEFAULT_BRANCH {
            return Err(CoreError::InvalidName {
                name: from.into(),
                reason: "the main branch cannot be renamed".into(),
            });
        }
        let head = self.branch_head(from).await?;
        self.refuse_if_protected(from, "renaming it").await?;
        let info = self
            .create_branch(to, &VersionSpec::Version(head.commit.id.to_hex()))
            .await?;
        // the checks go with the branch to its new name
        self.move_settings(from, Some(to)).await?;
        self.delete_branch(from).await?;
        Ok(info)
    }

    /// Every move of a branch (its ref log), oldest first.
    pub async fn branch_log(&self, name: &str) -> Result<Vec<RefLogEntry>> {
        self.branch_head(name).await?;
        Ok(self.store().ref_log(&self.branch_ref(name)).await?)
    }

    // ---------------------------------------------------------------- tags

    /// All tags with their commit ids, sorted by name.
    pub async fn tags(&self) -> Result<Vec<RefInfo>> {
        self.list_refs("tags").await
    }

    /// The commit a tag names.
    pub async fn tag(&self, name: &str) -> Result<Commit> {
        let missing = || CoreError::TagNotFound {
            dataset: self.config.name.clone(),
            tag: name.into(),
        };
        if validate_name(name).is_err() {
            return Err(missing());
        }
        match self.store().read_ref(&self.tag_ref(name)).await? {
            Some(st) => match st.target {
                Some(h) => self.commit(&h).await,
                None => Err(missing()),
            },
            None => Err(missing()),
        }
    }

    /// Create an immutable tag at a version. O(1).
    pub async fn create_tag(&self, name: &str, at: &VersionSpec) -> Result<RefInfo> {
        validate_name(name)?;
        let c = self.resolve(at).await?;
        let r = self.tag_ref(name);
        let expected = match self.store().read_ref(&r).await? {
            Some(st) if st.target.is_some() => {
                return Err(CoreError::TagExists {
                    dataset: self.config.name.clone(),
                    tag: name.into(),
                })
            }
            Some(st) => Some(st.seq),
            None => None,
        };
        match self
            .store()
            .update_ref(
                &r,
                expected,
                Some(c.id),
                &self.author(),
                &format!("create tag at {at}"),
            )
            .await
        {
            Ok(_) => Ok(RefInfo {
                name: name.into(),
                commit: c.id,
            }),
            Err(StoreError::RefConflict { .. }) => Err(CoreError::TagExists {
                dataset: self.config.name.clone(),
                tag: name.into(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Delete a tag explicitly.
    pub async fn delete_tag(&self, name: &str) -> Result<()> {
        self.tag(name).await?;
        let st = self.store().read_ref(&self.tag_ref(name)).await?;
        let seq = st.map(|s| s.seq);
        self.store()
            .update_ref(&self.tag_ref(name), seq, None, &self.author(), "delete tag")
            .await?;
        Ok(())
    }

    /// Rename a tag (create the new name at the same commit, delete the old).
    pub async fn rename_tag(&self, from: &str, to: &str) -> Result<RefInfo> {
        let c = self.tag(from).await?;
        let info = self
            .create_tag(to, &VersionSpec::Version(c.id.to_hex()))
            .await?;
        self.delete_tag(from).await?;
        Ok(info)
    }

    // ---------------------------------------------------------------- history

    /// Commits reachable from a version, newest first (by timestamp, then id).
    pub async fn history_of(&self, head: &Commit) -> Result<Vec<Commit>> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        let mut stack = vec![head.id];
        while let Some(id) = stack.pop() {
            if !seen.insert(id) {
                continue;
            }
            let c = self.commit(&id).await?;
            stack.extend(c.parents.iter().copied());
            out.push(c);
        }
        out.sort_by(|a, b| {
            b.data
                .timestamp
                .cmp(&a.data.timestamp)
                .then(b.id.cmp(&a.id))
        });
        Ok(out)
    }

    /// History of a branch, newest first.
    pub async fn history(&self, branch: &str) -> Result<Vec<Commit>> {
        let head = self.branch_head(branch).await?;
        self.history_of(&head.commit).await
    }

    /// Resolve any way of naming a version to its commit.
    pub async fn resolve(&self, spec: &VersionSpec) -> Result<Commit> {
        match spec {
            VersionSpec::Branch(b) => Ok(self.branch_head(b).await?.commit),
            VersionSpec::Tag(t) => self.tag(t).await,
            VersionSpec::Version(v) => match VersionSpec::parse_loose(v) {
                // `~n` names the n-th commit of main wherever a version is accepted
                index @ VersionSpec::Index { .. } => Box::pin(self.resolve(&index)).await,
                _ => self.resolve_prefix(v).await,
            },
            VersionSpec::Timestamp { branch, at } => {
                let hist = self.history(branch).await?;
                hist.into_iter()
                    .find(|c| c.data.timestamp <= *at)
                    .ok_or_else(|| CoreError::NoVersionAtTime {
                        dataset: self.config.name.clone(),
                        branch: branch.clone(),
                        timestamp: at.to_rfc3339(),
                    })
            }
            VersionSpec::Index { branch, index } => {
                let mut hist = self.history(branch).await?;
                hist.reverse();
                let len = hist.len();
                let i = if *index < 0 {
                    len as i64 + *index
                } else {
                    *index
                };
                if i < 0 || i >= len as i64 {
                    return Err(CoreError::IndexOutOfRange {
                        dataset: self.config.name.clone(),
                        branch: branch.clone(),
                        index: *index,
                        len,
                    });
                }
                Ok(hist.swap_remove(i as usize))
            }
        }
    }

    /// Resolve a name the way `ds@name` does: branch, then tag, then commit id prefix.
    pub async fn resolve_loose(&self, name: &str) -> Result<Commit> {
        if let VersionSpec::Index { .. } = VersionSpec::parse_loose(name) {
            return self.resolve(&VersionSpec::parse_loose(name)).await;
        }
        if let Some(h) = self.try_branch_head(name).await? {
            return Ok(h.commit);
        }
        match self.tag(name).await {
            Ok(c) => return Ok(c),
            Err(CoreError::TagNotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        self.resolve_prefix(name).await
    }

    async fn resolve_prefix(&self, prefix: &str) -> Result<Commit> {
        let p = prefix.to_ascii_lowercase();
        let not_found = || CoreError::VersionNotFound {
            dataset: self.config.name.clone(),
            version: prefix.into(),
        };
        if p.len() < 4 || !p.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(not_found());
        }
        if let Some(h) = Hash::from_hex(&p) {
            return self.commit(&h).await;
        }
        let dir = format!("{}commits/", dataset_dir(&self.config.name));
        let all = self.store().list(&dir).await?;
        let matches: Vec<&str> = all
            .iter()
            .filter_map(|f| f.strip_prefix(&dir))
            .filter(|id| id.starts_with(&p))
            .collect();
        match matches.as_slice() {
            [] => Err(not_found()),
            [one] => {
                let h = Hash::from_hex(one).ok_or_else(not_found)?;
                self.commit(&h).await
            }
            many => Err(CoreError::AmbiguousVersion {
                dataset: self.config.name.clone(),
                prefix: prefix.into(),
                candidates: many.iter().map(|m| &m[..12]).collect::<Vec<_>>().join(", "),
            }),
        }
    }

    /// Open a version read-only.
    pub async fn checkout(&self, spec: &VersionSpec) -> Result<Snapshot> {
        let c = self.resolve(spec).await?;
        Ok(Snapshot::new(self.clone(), c))
    }

    /// Open a commit read-only.
    pub fn snapshot(&self, commit: Commit) -> Snapshot {
        Snapshot::new(self.clone(), commit)
    }

    // ---------------------------------------------------------------- writes

    /// Start a write transaction on a branch; it ends as one commit.
    pub async fn begin(&self, branch: &str) -> Result<WriteTxn> {
        let head = self.branch_head(branch).await?;
        Ok(WriteTxn::new(self.clone(), branch.to_string(), head))
    }

    // ---------------------------------------------------------------- metadata

    fn metadata_path(&self) -> String {
        format!("{}metadata.json", dataset_dir(&self.config.name))
    }

    async fn read_metadata_doc(&self) -> Result<Value> {
        match self.store().get_file_opt(&self.metadata_path()).await? {
            Some(b) => Ok(serde_json::from_slice(&b)?),
            None => Ok(serde_json::json!({ "dataset": {}, "columns": {} })),
        }
    }

    /// Dataset-level metadata (key → JSON value).
    pub async fn metadata(&self) -> Result<BTreeMap<String, Value>> {
        let doc = self.read_metadata_doc().await?;
        Ok(serde_json::from_value(doc["dataset"].clone()).unwrap_or_default())
    }

    /// Set (or with `None` remove) a dataset metadata key; persisted immediately.
    pub async fn set_metadata(&self, key: &str, value: Option<Value>) -> Result<()> {
        check_metadata_key(key)?;
        self.update_metadata(|doc| set_key(&mut doc["dataset"], key, value))
            .await
    }

    /// Metadata of one column.
    pub async fn column_metadata(&self, column: &str) -> Result<BTreeMap<String, Value>> {
        self.check_column(column)?;
        let doc = self.read_metadata_doc().await?;
        Ok(serde_json::from_value(doc["columns"][column].clone()).unwrap_or_default())
    }

    /// Set (or remove) a column metadata key; persisted immediately.
    pub async fn set_column_metadata(
        &self,
        column: &str,
        key: &str,
        value: Option<Value>,
    ) -> Result<()> {
        self.check_column(column)?;
        check_metadata_key(key)?;
        self.update_metadata(|doc| {
            if !doc["columns"][column].is_object() {
                doc["columns"][column] = serde_json::json!({});
            }
            set_key(&mut doc["columns"][column], key, value)
        })
        .await
    }

    fn check_column(&self, column: &str) -> Result<()> {
        self.schema
            .field_with_name(column)
            .map(|_| ())
            .map_err(|_| CoreError::ColumnNotFound {
                dataset: self.config.name.clone(),
                column: column.into(),
            })
    }

    async fn update_metadata(&self, f: impl FnOnce(&mut Value)) -> Result<()> {
        let mut doc = self.read_metadata_doc().await?;
        if !doc["dataset"].is_object() {
            doc["dataset"] = serde_json::json!({});
        }
        if !doc["columns"].is_object() {
            doc["columns"] = serde_json::json!({});
        }
        f(&mut doc);
        self.store()
            .put_file(
                &self.metadata_path(),
                Bytes::from(serde_json::to_vec_pretty(&doc)?),
            )
            .await?;
        Ok(())
    }

    /// Time of the newest commit on `branch`.
    pub async fn last_modified(&self, branch: &str) -> Result<DateTime<Utc>> {
        Ok(self.branch_head(branch).await?.commit.data.timestamp)
    }
}

fn set_key(obj: &mut Value, key: &str, value: Option<Value>) {
    if let Some(m) = obj.as_object_mut() {
        match value {
            Some(v) => {
                m.insert(key.to_string(), v);
            }
            None => {
                m.remove(key);
            }
        }
    }
}

/// Metadata keys have 1 to 128 characters.
fn check_metadata_key(key: &str) -> Result<()> {
    let n = key.chars().count();
    if n == 0 || n > 128 {
        return Err(CoreError::InvalidName {
            name: key.chars().take(128).collect(),
            reason: "a metadata key has 1 to 128 characters".into(),
        });
    }
    Ok(())
}
