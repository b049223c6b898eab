//! The catalog as DataFusion sees it: the state a session shares with its table providers
//! ([`Shared`]), the default schema of datasets at any version and the `quiver` schema of
//! system tables.

use super::*;

/// State shared by the session and the providers it registers.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) catalog: Catalog,
    pub(super) url: ObjectStoreUrl,
    pub(super) packs: PackInfoCache,
    pub(super) branches: Mutex<HashMap<String, String>>,
    pub(super) datasets: Mutex<HashMap<String, Dataset>>,
    /// Names of the catalog's datasets, listed the first time a statement of the session
    /// enumerates tables (`SHOW TABLES`, information_schema); each is opened on first use.
    pub(super) listed: Mutex<std::collections::BTreeSet<String>>,
    /// Set once the catalog's datasets have been listed into `listed`.
    pub(super) listing: tokio::sync::OnceCell<()>,
    pub(super) last_scan: Arc<Mutex<Option<ScanStats>>>,
    /// Names of table functions: DataFusion asks the schema for them too, and they are not
    /// datasets.
    pub(super) functions: Mutex<std::collections::HashSet<String>>,
    /// (dataset, target branch) of merges this session left pending: a bare COMMIT
    /// commits them.
    pub(super) merges: Mutex<std::collections::BTreeSet<(String, String)>>,
    /// Models named in `quiver_lineage_of_model(…)`, resolved before planning.
    pub(super) lineage: crate::lineage_sql::LineageCache,
    /// The author of the session's writes, when not the process's default.
    pub(super) author: Option<String>,
}

impl Shared {
    pub(super) fn session_branch(&self, ds: &str) -> String {
        self.branches
            .lock()
            .ok()
            .and_then(|b| b.get(ds).cloned())
            .unwrap_or_else(|| DEFAULT_BRANCH.to_string())
    }

    pub(super) async fn dataset(&self, name: &str) -> Result<Dataset> {
        if let Some(ds) = self.datasets.lock().ok().and_then(|m| m.get(name).cloned()) {
            return Ok(ds);
        }
        let ds = self.catalog.dataset(name).await?;
        // branch and tag changes of this session are logged under its author
        let ds = match &self.author {
            Some(a) => ds.with_author(a),
            None => ds,
        };
        if let Ok(mut m) = self.datasets.lock() {
            m.insert(name.to_string(), ds.clone());
        }
        Ok(ds)
    }

    /// List the catalog's datasets into `listed`, once per session: only statements that
    /// enumerate tables need them, and listing costs a directory walk per statement.
    pub(super) async fn ensure_listed(&self) -> Result<()> {
        self.listing
            .get_or_try_init(|| async {
                let names = self.catalog.list_datasets().await?;
                if let Ok(mut l) = self.listed.lock() {
                    l.extend(names);
                }
                Ok::<_, SqlError>(())
            })
            .await?;
        Ok(())
    }

    pub(super) fn cached_dataset(&self, name: &str) -> Option<Dataset> {
        self.datasets.lock().ok().and_then(|m| m.get(name).cloned())
    }

    pub(super) async fn resolve(&self, ds: &Dataset, r: &RefSpec) -> Result<Commit> {
        let branch = self.session_branch(ds.name());
        match r.to_spec(&branch)? {
            Some(spec) => ds.resolve(&spec).await.map_err(|e| as_typed(e, r)),
            None => match r {
                RefSpec::Loose(s) => Ok(ds.resolve_loose(s).await?),
                _ => Err(SqlError::Parse(format!("cannot resolve {r}"))),
            },
        }
    }

    /// The version spec of a ref, pinned to a commit for loose names.
    pub(super) async fn spec(&self, ds: &Dataset, r: &RefSpec) -> Result<VersionSpec> {
        let branch = self.session_branch(ds.name());
        self.spec_on(ds, r, &branch).await
    }

    /// The version spec of a ref whose branch-relative forms (`~n`, a timestamp) count on
    /// `branch`, pinned to a commit for loose names.
    pub(super) async fn spec_on(
        &self,
        ds: &Dataset,
        r: &RefSpec,
        branch: &str,
    ) -> Result<VersionSpec> {
        match r.to_spec(branch)? {
            Some(s) => Ok(s),
            None => match r {
                RefSpec::Loose(s) => {
                    Ok(VersionSpec::Version(ds.resolve_loose(s).await?.id.to_hex()))
                }
                _ => Err(SqlError::Parse(format!("cannot resolve {r}"))),
            },
        }
    }

    pub(super) async fn table(&self, name: &str) -> Result<QuiverTableProvider> {
        let (ds_name, r) = split_table_name(name);
        let ds = self.dataset(&ds_name).await?;
        let commit = self.resolve(&ds, &r).await?;
        self.table_at(&ds, commit)
    }

    /// The provider of `ds` at `commit`.
    pub(super) fn table_at(&self, ds: &Dataset, commit: Commit) -> Result<QuiverTableProvider> {
        Ok(
            QuiverTableProvider::new(ds.snapshot(commit), self.url.clone(), self.packs.clone())?
                .with_stats_sink(self.last_scan.clone()),
        )
    }
}

/// The default schema: datasets (at any version) as tables.
#[derive(Debug)]
pub(super) struct DatasetSchema {
    pub(super) shared: Arc<Shared>,
}

#[async_trait::async_trait]
impl SchemaProvider for DatasetSchema {
    fn table_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .shared
            .datasets
            .lock()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        if let Ok(l) = self.shared.listed.lock() {
            v.extend(l.iter().cloned());
        }
        v.sort();
        v.dedup();
        v
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        if self.shared.functions.lock().is_ok_and(|f| f.contains(name)) {
            return Ok(None);
        }
        let t = self.shared.table(name).await.map_err(df_err)?;
        Ok(Some(Arc::new(t)))
    }

    fn table_exist(&self, name: &str) -> bool {
        let ds = split_table_name(name).0;
        self.shared.cached_dataset(&ds).is_some()
            || self.shared.listed.lock().is_ok_and(|l| l.contains(&ds))
    }
}

/// The `quiver` schema: system tables.
#[derive(Debug)]
pub(super) struct SystemSchema {
    pub(super) shared: Arc<Shared>,
}

#[async_trait::async_trait]
impl SchemaProvider for SystemSchema {
    fn table_names(&self) -> Vec<String> {
        crate::system::SYSTEM_TABLES
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        match crate::system::system_table(&self.shared.catalog, name)
            .await
            .map_err(df_err)?
        {
            Some(b) => Ok(Some(Arc::new(MemTable::try_new(
                b.schema(),
                vec![vec![b]],
            )?))),
            None => Ok(None),
        }
    }

    fn table_exist(&self, name: &str) -> bool {
        crate::system::SYSTEM_TABLES.contains(&name)
    }
}

/// A core error about a timestamp, naming the timestamp as the user wrote it (the core
/// sees only the bound it admits).
pub(super) fn as_typed(e: quiver_core::CoreError, r: &RefSpec) -> SqlError {
    match (e, r) {
        (
            quiver_core::CoreError::NoVersionAtTime {
                dataset, branch, ..
            },
            RefSpec::Timestamp(t),
        ) => SqlError::Core(quiver_core::CoreError::NoVersionAtTime {
            dataset,
            branch,
            timestamp: t.clone(),
        }),
        (e, _) => SqlError::Core(e),
    }
}
