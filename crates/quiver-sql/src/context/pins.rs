//! Version pins: the commit each dataset table of a statement resolved to, so that the same
//! statement can be planned again later — after a restart, on another server — and read
//! exactly the same versions.
//!
//! [`QuiverContext::pin_versions`] puts a [`VersionPins`] in front of the session's dataset
//! schema. A table name found in the pins (the name as DataFusion asks for it: `ds`,
//! `"ds@v1"`, or the `AS OF` rewrite `ds@tag:v1`) reads its pinned commit; any other name
//! resolves as usual and its commit is recorded. Plan once with empty pins to learn them
//! (a Flight SQL `GetFlightInfo`), plan again with those pins to read the same data (the
//! `DoGet` of its ticket).
//!
//! What is pinned: dataset tables. System tables (`quiver.*`) and table functions
//! (`quiver_diff`, `quiver_conflicts`, `quiver_merge_preview`) read the catalog as it is
//! when they run.

use std::collections::BTreeMap;

use quiver_core::Hash;

use super::*;

/// Table name → commit id, learned while planning or given to pin a re-plan.
#[derive(Debug, Default)]
pub struct VersionPins {
    map: Mutex<BTreeMap<String, Hash>>,
}

impl VersionPins {
    /// Pins from (table name, commit id) pairs.
    pub fn new(pins: impl IntoIterator<Item = (String, Hash)>) -> Self {
        VersionPins {
            map: Mutex::new(pins.into_iter().collect()),
        }
    }

    /// The pins now held, sorted by table name.
    pub fn to_vec(&self) -> Vec<(String, Hash)> {
        self.map
            .lock()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), *v)).collect())
            .unwrap_or_default()
    }

    fn get(&self, name: &str) -> Option<Hash> {
        self.map.lock().ok().and_then(|m| m.get(name).copied())
    }

    fn record(&self, name: &str, id: Hash) {
        if let Ok(mut m) = self.map.lock() {
            m.entry(name.to_string()).or_insert(id);
        }
    }
}

impl QuiverContext {
    /// Resolve dataset tables of this session through `pins` (see the module doc): pinned
    /// names read their commit, others resolve as usual and are recorded in `pins`.
    pub fn pin_versions(&self, pins: Arc<VersionPins>) -> Result<()> {
        let cat = self.ctx.catalog("datafusion").ok_or_else(|| {
            SqlError::Unsupported("internal error: the session has no default catalog".into())
        })?;
        cat.register_schema(
            "public",
            Arc::new(PinnedSchema {
                shared: self.shared.clone(),
                pins,
            }),
        )?;
        Ok(())
    }
}

impl Shared {
    /// The provider of table `name`, through `pins`.
    async fn pinned_table(&self, name: &str, pins: &VersionPins) -> Result<QuiverTableProvider> {
        let (ds_name, r) = split_table_name(name);
        let ds = self.dataset(&ds_name).await?;
        let commit = match pins.get(name) {
            Some(id) => ds.commit(&id).await?,
            None => {
                let c = self.resolve(&ds, &r).await?;
                pins.record(name, c.id);
                c
            }
        };
        self.table_at(&ds, commit)
    }
}

/// The dataset schema with version pins.
#[derive(Debug)]
struct PinnedSchema {
    shared: Arc<Shared>,
    pins: Arc<VersionPins>,
}

#[async_trait::async_trait]
impl SchemaProvider for PinnedSchema {
    fn table_names(&self) -> Vec<String> {
        DatasetSchema {
            shared: self.shared.clone(),
        }
        .table_names()
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        if self.shared.functions.lock().is_ok_and(|f| f.contains(name)) {
            return Ok(None);
        }
        let t = self
            .shared
            .pinned_table(name, &self.pins)
            .await
            .map_err(df_err)?;
        Ok(Some(Arc::new(t)))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.shared
            .cached_dataset(&split_table_name(name).0)
            .is_some()
    }
}
