//! [`QuiverTableProvider`]: one immutable DataFusion table per resolved snapshot.
//!
//! `scan` walks the snapshot tree once, skipping every subtree whose statistics prove the
//! filter false (no pack footer is read for them), groups the kept leaves by pack
//! (`Snapshot::plan`) and hands DataFusion's own Parquet `DataSourceExec` one file per pack
//! with a [`ParquetRowSelection`] that selects exactly the kept leaves' rows. DataFusion
//! then prunes row groups and pages of those packs with the same predicate and applies
//! projection and limit. Filters are reported `Inexact`: tree and Parquet pruning only skip
//! data that cannot match, so DataFusion keeps its `FilterExec` above the scan.
//!
//! Versions are immutable, so the kept leaves of a (tree, filters) and the pack ranges of
//! an unsharded selection are cached process-wide ([`LEAVES`], [`PLANS`]): a repeated query
//! on a version plans without walking the tree again.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::Session;
use datafusion::common::stats::Precision;
use datafusion::common::{DFSchema, Statistics};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::parquet::metadata::CachedParquetMetaData;
use datafusion::datasource::physical_plan::parquet::ParquetRowSelection;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result as DfResult;
use datafusion::execution::cache::cache_manager::{CachedFileMetadataEntry, FileMetadataCache};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_optimizer::pruning::PruningPredicateBuilder;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::ExecutionPlan;
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStoreExt;
use quiver_core::packs::LeafLoc;
use quiver_core::{plan_locs, ChildEntry, Hash, PackScan, Snapshot};

use crate::cluster_scan::{FileRows, QuiverScanExec};
use crate::error::df_err;
use crate::pruning::{keep_batch_fn, PruneCounters, StatsLayout};

/// What the last scan of a provider read: tree pruning at work.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanStats {
    /// Leaves (label partitions) kept after tree pruning.
    pub leaves_kept: u64,
    /// Subtrees or leaves skipped by their statistics.
    pub entries_pruned: u64,
    /// Subtrees or leaves the predicate was evaluated on.
    pub entries_evaluated: u64,
    /// Rows in the kept leaves.
    pub rows_kept: u64,
    /// Rows in the snapshot.
    pub rows_total: u64,
    /// Packs (Parquet files) the scan opens.
    pub packs: u64,
}

/// Size and row count of a pack object, at a generation of the pack
/// ([`quiver_core::Catalog::pack_generation`]: packs are immutable but for erasures, which
/// rewrite them in place and raise the generation; an entry of an older one is read again).
#[derive(Debug, Clone, Copy)]
pub struct PackInfo {
    pub size: u64,
    pub rows: u64,
    pub generation: u64,
}

/// Cache of [`PackInfo`] shared by the providers of one context.
pub type PackInfoCache = Arc<Mutex<HashMap<Hash, PackInfo>>>;

/// One shard of a snapshot's label partitions, for data-parallel readers.
///
/// The partitions that survive pruning, in key order, are cut into runs of consecutive
/// partitions (about eight runs per shard, so a shard reads long contiguous row ranges of
/// the packs). Without a seed shard `index` of `count` takes the `index`-th contiguous share
/// of the runs; with a seed the runs are ordered by `blake3(seed, first partition hash)` and
/// dealt round-robin. The same commit, filter and seed give every shard the same list, so the
/// shards are disjoint and together cover the selection exactly; label groups never straddle
/// partitions, so a group is never split across shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardSpec {
    pub index: u32,
    pub count: u32,
    pub seed: Option<u64>,
}

/// Runs of consecutive partitions per shard.
const RUNS_PER_SHARD: usize = 8;

impl ShardSpec {
    /// The partitions of this shard, as ascending index ranges into all kept partitions in
    /// key order.
    pub fn runs(&self, leaves: &[ChildEntry]) -> Vec<Range<usize>> {
        let mut all = deal(self.count, self.seed, leaves);
        let i = self.index as usize;
        if i < all.len() {
            all.swap_remove(i)
        } else {
            Vec::new()
        }
    }
}

/// Every shard's partitions ([`ShardSpec::runs`]) of `count` shards at once.
pub fn deal(count: u32, seed: Option<u64>, leaves: &[ChildEntry]) -> Vec<Vec<Range<usize>>> {
    let count = count.max(1) as usize;
    let mut out: Vec<Vec<Range<usize>>> = vec![Vec::new(); count];
    let n = leaves.len();
    if n == 0 {
        return out;
    }
    let runs = (count * RUNS_PER_SHARD).min(n);
    // run r holds the partitions i with i * runs / n == r
    let start = |r: usize| (r * n).div_ceil(runs);
    let owner: Vec<usize> = match seed {
        None => (0..runs).map(|r| r * count / runs).collect(),
        Some(seed) => {
            let mut order: Vec<usize> = (0..runs).collect();
            order.sort_by_cached_key(|&r| {
                let mut h = blake3::Hasher::new();
                h.update(&seed.to_le_bytes());
                h.update(leaves[start(r)].hash.as_bytes());
                *h.finalize().as_bytes()
            });
            let mut owner = vec![0; runs];
            for (pos, r) in order.into_iter().enumerate() {
                owner[r] = pos % count;
            }
            owner
        }
    };
    for (r, o) in owner.into_iter().enumerate() {
        let range = start(r)..start(r + 1);
        match out[o].last_mut() {
            Some(last) if last.end == range.start => last.end = range.end,
            _ => out[o].push(range),
        }
    }
    out
}

/// A DataFusion table over one snapshot (dataset + commit).
#[derive(Debug)]
pub struct QuiverTableProvider {
    snapshot: Snapshot,
    schema: SchemaRef,
    url: ObjectStoreUrl,
    packs: PackInfoCache,
    last: Arc<Mutex<Option<ScanStats>>>,
    shard: Option<ShardSpec>,
    /// Scans are wrapped in a [`QuiverScanExec`] that can be sent to another process.
    cluster: bool,
}

/// A process-wide cache of results for immutable versions that starts over when it holds
/// [`CACHE_ENTRIES`] entries or more than `max_weight` (partitions, row ranges) in total.
struct Bounded<K, V> {
    map: HashMap<K, (V, usize)>,
    weight: usize,
    max_weight: usize,
}

/// Entries a [`Bounded`] cache keeps before it starts over.
const CACHE_ENTRIES: usize = 64;

impl<K: std::hash::Hash + Eq, V: Clone> Bounded<K, V> {
    fn new(max_weight: usize) -> Mutex<Self> {
        Mutex::new(Bounded {
            map: HashMap::new(),
            weight: 0,
            max_weight,
        })
    }

    fn get(&self, key: &K) -> Option<V> {
        self.map.get(key).map(|(v, _)| v.clone())
    }

    fn insert(&mut self, key: K, value: V, weight: usize) {
        if weight > self.max_weight {
            return;
        }
        if let Some((_, old)) = self.map.remove(&key) {
            self.weight -= old;
        }
        if self.map.len() >= CACHE_ENTRIES || self.weight + weight > self.max_weight {
            self.map.clear();
            self.weight = 0;
        }
        self.map.insert(key, (value, weight));
        self.weight += weight;
    }
}

/// What [`QuiverTableProvider::prune`] found for a scan's filters.
struct Pruned {
    predicate: Option<Arc<dyn datafusion::physical_plan::PhysicalExpr>>,
    /// Every kept partition, in key order (before sharding).
    leaves: Arc<Vec<ChildEntry>>,
    /// How many of `leaves` hold rows.
    nonempty: u64,
    /// The provider's shard of them, as index ranges into `leaves`.
    shard: Option<Vec<Range<usize>>>,
    counters: Arc<PruneCounters>,
    /// Cache key of the selection: (tree root, statistics layout + filters).
    key: (Hash, String),
}

impl Pruned {
    /// How many partitions with rows the scan reads (the shard's, or all).
    fn leaves_read(&self) -> u64 {
        match &self.shard {
            None => self.nonempty,
            Some(runs) => runs
                .iter()
                .flat_map(|r| &self.leaves[r.clone()])
                .filter(|l| l.rows > 0)
                .count() as u64,
        }
    }
}

/// Kept partitions of a selection and the pruning counters of its walk.
#[derive(Clone)]
struct CachedLeaves {
    leaves: Arc<Vec<ChildEntry>>,
    /// How many of `leaves` hold rows.
    nonempty: u64,
    evaluated: u64,
    pruned: u64,
}

/// Kept partitions per (layout id, statistics layout + filters), weighed in partitions. The
/// layout id is a content hash, so an entry is valid for every catalog and never stale; the
/// shards of one read (and repeated queries) prune the partitions once.
static LEAVES: std::sync::LazyLock<Mutex<Bounded<(Hash, String), CachedLeaves>>> =
    std::sync::LazyLock::new(|| Bounded::new(1 << 18));

/// Scan plans (pack row ranges) of unsharded selections per (catalog location + dataset,
/// tree root, statistics layout + filters), weighed in ranges. Packs are immutable and a
/// leaf's location never changes once indexed, so an entry stays valid.
#[allow(clippy::type_complexity)]
static PLANS: std::sync::LazyLock<Mutex<Bounded<(String, Hash, String), Arc<Vec<PackScan>>>>> =
    std::sync::LazyLock::new(|| Bounded::new(1 << 20));

/// Locations of the kept partitions of sharded selections (aligned with their [`LEAVES`]
/// entry), same key and validity as [`PLANS`], weighed in partitions: each shard's plan is
/// cut from them without a pack index look-up per partition.
#[allow(clippy::type_complexity)]
static LOCS: std::sync::LazyLock<
    Mutex<Bounded<(String, Hash, String), Arc<Vec<Option<LeafLoc>>>>>,
> = std::sync::LazyLock::new(|| Bounded::new(1 << 21));

/// Packs whose size and footer scan planning reads at the same time.
const PACK_INFO_READS: usize = 16;

impl QuiverTableProvider {
    /// A provider reading `snapshot` through the object store registered at `url`
    /// (see [`register_store`]).
    pub fn new(
        snapshot: Snapshot,
        url: ObjectStoreUrl,
        packs: PackInfoCache,
    ) -> crate::Result<Self> {
        let schema = read_schema(&snapshot.schema());
        Ok(QuiverTableProvider {
            snapshot,
            schema,
            url,
            packs,
            last: Arc::default(),
            shard: None,
            cluster: false,
        })
    }

    /// A provider whose scans can run in other processes (a Ballista scheduler plans them,
    /// executors run them): each scan is a [`QuiverScanExec`] that carries its pack row
    /// selections and the catalog's location.
    pub fn for_cluster(mut self) -> Self {
        self.cluster = true;
        self
    }

    /// The shard this provider reads, if any.
    pub fn shard(&self) -> Option<ShardSpec> {
        self.shard
    }

    /// Read only one shard of the selected partitions (see [`ShardSpec`]).
    pub fn with_shard(mut self, shard: ShardSpec) -> Self {
        self.shard = Some(shard);
        self
    }

    /// Rows and estimated stored (compressed) bytes of each of `count` shards of what
    /// `filters` keep: the rows of a shard's partitions (an upper bound of the rows its
    /// scan returns) and each pack's size in proportion to the rows read from it.
    pub async fn shard_sizes(
        &self,
        state: &dyn Session,
        filters: &[Expr],
        count: u32,
        seed: Option<u64>,
    ) -> DfResult<Vec<(u64, u64)>> {
        let pruned = self.prune(state, filters).await?;
        let locs = self.locations(&pruned).await?;
        let mut out = Vec::with_capacity(count as usize);
        for runs in deal(count, seed, &pruned.leaves) {
            let plan = plan_locs(runs.into_iter().flat_map(|r| locs[r].iter().flatten()));
            let rows = plan.iter().map(|p| p.rows).sum();
            let mut bytes = 0u64;
            for p in &plan {
                let info = self.pack_info(p).await?;
                if info.rows > 0 {
                    bytes += (info.size as u128 * p.rows as u128 / info.rows as u128) as u64;
                }
            }
            out.push((rows, bytes));
        }
        Ok(out)
    }

    /// The filters as a physical predicate, the partitions they keep and this provider's
    /// shard of them.
    async fn prune(&self, state: &dyn Session, filters: &[Expr]) -> DfResult<Pruned> {
        let df_schema = DFSchema::try_from(self.schema.clone())?;
        // each conjunct once: the optimizer can hand the same filter down twice, and the
        // Parquet scan would evaluate it twice
        let mut parts: Vec<Expr> = Vec::new();
        for f in filters {
            for p in datafusion::logical_expr::utils::split_conjunction(f) {
                if !parts.contains(p) {
                    parts.push(p.clone());
                }
            }
        }
        let predicate = match conjunction(parts) {
            Some(e) => Some(state.create_physical_expr(e, &df_schema)?),
            None => None,
        };
        let pruning = predicate
            .as_ref()
            .and_then(|p| {
                PruningPredicateBuilder::new()
                    .with_file_schema(self.schema.clone())
                    .build(p.clone())
            })
            .filter(|p| !p.always_true());
        let cfg = self.snapshot.dataset().config();
        let layout = Arc::new(StatsLayout::new(&self.schema, &cfg.stats_columns));
        let counters = Arc::new(PruneCounters::default());
        // the kept partitions depend on the version's physical layout (content-addressed),
        // the statistics layout, the filters and which packs hold erased rows (their
        // statistics are not used: quiver_core::erase::known)
        let erased = self
            .snapshot
            .dataset()
            .catalog()
            .erased_packs()
            .await
            .map_err(df_err)?;
        let key = (
            self.snapshot.layout_id().await.map_err(df_err)?,
            format!("{:?}|{filters:?}|{}", cfg.stats_columns, erased.epoch),
        );
        let cached = LEAVES.lock().ok().and_then(|m| m.get(&key));
        let (leaves, nonempty) = match cached {
            Some(c) => {
                counters.evaluated.store(c.evaluated, Ordering::Relaxed);
                counters.pruned.store(c.pruned, Ordering::Relaxed);
                (c.leaves, c.nonempty)
            }
            None => {
                let leaves = Arc::new(
                    self.snapshot
                        .leaves_batch(keep_batch_fn(pruning, layout, counters.clone()))
                        .await
                        .map_err(df_err)?,
                );
                let nonempty = leaves.iter().filter(|l| l.rows > 0).count() as u64;
                let entry = CachedLeaves {
                    leaves: leaves.clone(),
                    nonempty,
                    evaluated: counters.evaluated.load(Ordering::Relaxed),
                    pruned: counters.pruned.load(Ordering::Relaxed),
                };
                if let Ok(mut m) = LEAVES.lock() {
                    m.insert(key.clone(), entry, leaves.len());
                }
                (leaves, nonempty)
            }
        };
        let shard = self.shard.map(|s| s.runs(&leaves));
        Ok(Pruned {
            predicate,
            leaves,
            nonempty,
            shard,
            counters,
            key,
        })
    }

    /// Where the selection is cached: catalog location + dataset, tree root, filters.
    fn cache_key(&self, key: &(Hash, String)) -> (String, Hash, String) {
        let ds = self.snapshot.dataset();
        let where_ = format!("{}#{}", ds.catalog().store().full_path(""), ds.name());
        (where_, key.0, key.1.clone())
    }

    /// Pack row ranges of the partitions the scan reads (cached for unsharded selections,
    /// see [`PLANS`]; a shard's are cut from the cached [`LOCS`]).
    async fn plan(&self, pruned: &Pruned) -> DfResult<Arc<Vec<PackScan>>> {
        if let Some(runs) = &pruned.shard {
            let locs = self.locations(pruned).await?;
            let shard = runs.iter().flat_map(|r| locs[r.clone()].iter().flatten());
            return Ok(Arc::new(plan_locs(shard)));
        }
        let key = self.cache_key(&pruned.key);
        if let Some(p) = PLANS.lock().ok().and_then(|m| m.get(&key)) {
            return Ok(p);
        }
        let plan = Arc::new(self.snapshot.plan(&pruned.leaves).await.map_err(df_err)?);
        if let Ok(mut m) = PLANS.lock() {
            let ranges = plan.iter().map(|s| s.ranges.len()).sum();
            m.insert(key, plan.clone(), ranges);
        }
        Ok(plan)
    }

    /// Locations of all kept partitions of the selection, aligned with `pruned.leaves`.
    async fn locations(&self, pruned: &Pruned) -> DfResult<Arc<Vec<Option<LeafLoc>>>> {
        let key = self.cache_key(&pruned.key);
        if let Some(l) = LOCS.lock().ok().and_then(|m| m.get(&key)) {
            return Ok(l);
        }
        let locs = Arc::new(
            self.snapshot
                .locate_leaves(&pruned.leaves)
                .await
                .map_err(df_err)?,
        );
        if let Ok(mut m) = LOCS.lock() {
            m.insert(key, locs.clone(), locs.len());
        }
        Ok(locs)
    }

    /// The snapshot this table reads.
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// Statistics of the most recent scan planned by this provider.
    pub fn last_scan(&self) -> Option<ScanStats> {
        self.last.lock().ok().and_then(|l| l.clone())
    }

    /// Report scan statistics into `sink` (shared with a context) instead of a private slot.
    pub fn with_stats_sink(mut self, sink: Arc<Mutex<Option<ScanStats>>>) -> Self {
        self.last = sink;
        self
    }

    /// Give DataFusion's footer cache the footer (with its page index) that planning
    /// already read for `pack`, so the scan does not read and decode it a second time.
    async fn seed_footer(
        &self,
        footers: &Arc<FileMetadataCache>,
        pack: &Hash,
        object: &object_store::ObjectMeta,
    ) -> DfResult<()> {
        if footers
            .get(&object.location)
            .is_some_and(|e| e.is_valid_for(object))
        {
            return Ok(());
        }
        let cat = self.snapshot.dataset().catalog();
        let footer = cat
            .meta_cache()
            .get(cat.store(), pack)
            .await
            .map_err(df_err)?;
        footers.put(
            &object.location,
            CachedFileMetadataEntry::new(
                object.clone(),
                Arc::new(CachedParquetMetaData::new(footer.metadata().clone())),
            ),
        );
        Ok(())
    }

    async fn pack_info(&self, scan: &PackScan) -> DfResult<PackInfo> {
        let cat = self.snapshot.dataset().catalog();
        let generation = cat.pack_generation(&scan.pack);
        if let Some(i) = self
            .packs
            .lock()
            .ok()
            .and_then(|m| m.get(&scan.pack).copied())
            .filter(|i| i.generation == generation)
        {
            return Ok(i);
        }
        let store = cat.store();
        let head = store
            .object_store()
            .head(&store.full_path(&scan.path))
            .await
            .map_err(|e| datafusion::error::DataFusionError::ObjectStore(Box::new(e)))?;
        // a size other than the one this process knows: rewritten by an erasure elsewhere
        // (its cached sums and footer go, its generation rises) — found while planning,
        // before any read of a stale footer
        cat.pack_observed(&scan.pack, head.size);
        let generation = cat.pack_generation(&scan.pack);
        let meta = cat
            .meta_cache()
            .get(store, &scan.pack)
            .await
            .map_err(df_err)?;
        let rows = meta.metadata().file_metadata().num_rows().max(0) as u64;
        let info = PackInfo {
            size: head.size,
            rows,
            generation,
        };
        if let Ok(mut m) = self.packs.lock() {
            m.insert(scan.pack, info);
        }
        Ok(info)
    }
}

/// The object store URL under which a catalog's store is registered with DataFusion.
pub fn store_url(id: u64) -> DfResult<ObjectStoreUrl> {
    ObjectStoreUrl::parse(format!("quiver://catalog-{id}/"))
}

/// The schema SQL reads a dataset with: its schema with strings as `Utf8View` and binaries
/// as `BinaryView`, as DataFusion reads Parquet by default (views skip a copy of every
/// value and are what its string kernels are fastest on). Writes accept either layout.
pub fn read_schema(schema: &SchemaRef) -> SchemaRef {
    let view = |f: &Arc<datafusion::arrow::datatypes::Field>| {
        let dt = match f.data_type() {
            DataType::Utf8 | DataType::LargeUtf8 => DataType::Utf8View,
            DataType::Binary | DataType::LargeBinary => DataType::BinaryView,
            _ => return f.clone(),
        };
        Arc::new(f.as_ref().clone().with_data_type(dt))
    };
    let fields: Vec<_> = schema.fields().iter().map(view).collect();
    Arc::new(datafusion::arrow::datatypes::Schema::new_with_metadata(
        fields,
        schema.metadata().clone(),
    ))
}

/// Register the catalog's object store with a DataFusion runtime under `url`, read-only:
/// every put, copy, rename or delete through the session's store is refused
/// ([`quiver_core::Catalog::query_store`]), so no statement can write the catalog behind the
/// dataset API. Every place that gives a DataFusion session the catalog's store goes
/// through this function.
pub fn register_store(
    ctx: &datafusion::prelude::SessionContext,
    url: &ObjectStoreUrl,
    catalog: &quiver_core::Catalog,
) {
    ctx.register_object_store(url.as_ref(), catalog.query_store());
}

/// The default of the implicit key columns in an INSERT that leaves them out: NULL, which
/// the write path fills ([`quiver_core::conform::fill_implicit_keys`]).
static IMPLICIT_DEFAULT: std::sync::LazyLock<Expr> =
    std::sync::LazyLock::new(|| Expr::Literal(datafusion::common::ScalarValue::Null, None));

#[async_trait::async_trait]
impl TableProvider for QuiverTableProvider {
    fn get_column_default(&self, column: &str) -> Option<&Expr> {
        (column == quiver_core::conform::IMPLICIT_ROW_ID
            || column == quiver_core::conform::IMPLICIT_LABEL)
            .then(|| &*IMPLICIT_DEFAULT)
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    /// Every filter is `Inexact`: the tree and Parquet statistics only skip partitions,
    /// row groups and pages that cannot match; DataFusion re-applies the filter.
    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let pruned = self.prune(state, filters).await?;
        let rows_total = self.snapshot.num_rows().await.map_err(df_err)?;
        let plan = self.plan(&pruned).await?;
        let counters = &pruned.counters;
        let stats = ScanStats {
            leaves_kept: pruned.leaves_read(),
            entries_pruned: counters.pruned.load(Ordering::Relaxed),
            entries_evaluated: counters.evaluated.load(Ordering::Relaxed),
            rows_kept: plan.iter().map(|p| p.rows).sum(),
            rows_total,
            packs: plan.len() as u64,
        };
        let rows_kept = stats.rows_kept;
        if let Ok(mut l) = self.last.lock() {
            *l = Some(stats);
        }

        let projected = match projection {
            Some(p) => Arc::new(self.schema.project(p)?),
            None => self.schema.clone(),
        };
        if plan.is_empty() {
            return Ok(Arc::new(EmptyExec::new(projected)));
        }

        // one file per pack, spread over the target partitions by rows
        let target = state.config().target_partitions().max(1);
        let mut groups: Vec<(u64, Vec<PartitionedFile>)> =
            vec![(0, Vec::new()); target.min(plan.len())];
        let mut files = Vec::with_capacity(plan.len());
        // the packs' sizes and footers, several at a time (a fresh server reads them all
        // here; an object store answers each after a round trip)
        let reads: Vec<_> = plan.iter().map(|p| self.pack_info(p)).collect();
        let infos: Vec<PackInfo> = futures::stream::iter(reads)
            .buffered(PACK_INFO_READS)
            .try_collect()
            .await?;
        let footers = state.runtime_env().cache_manager.get_file_metadata_cache();
        for (p, info) in plan.iter().zip(infos) {
            let store = self.snapshot.dataset().catalog().store();
            let rows = FileRows {
                ranges: p.ranges.clone(),
                rows: info.rows,
            };
            let file = PartitionedFile::new(store.full_path(&p.path).to_string(), info.size);
            let mut file = if self.cluster {
                rows.attach(file)
            } else {
                file.with_extension(ParquetRowSelection::new(rows.selection()))
            };
            // DataFusion caches footers by path, valid while size and modification time
            // match: the pack's generation stands for its time, so a pack rewritten by an
            // erasure is never read with the footer of its earlier bytes
            file.object_meta.last_modified = chrono::DateTime::from_timestamp(
                i64::try_from(info.generation).unwrap_or(i64::MAX / 2),
                0,
            )
            .unwrap_or_default();
            self.seed_footer(&footers, &p.pack, &file.object_meta)
                .await?;
            files.push((p.rows, file));
        }
        files.sort_by_key(|f| std::cmp::Reverse(f.0));
        for (rows, f) in files {
            if let Some(g) = groups.iter_mut().min_by_key(|g| g.0) {
                g.0 += rows;
                g.1.push(f);
            }
        }
        let file_groups: Vec<FileGroup> = groups
            .into_iter()
            .filter(|g| !g.1.is_empty())
            .map(|g| FileGroup::new(g.1))
            .collect();

        let mut source = ParquetSource::new(self.schema.clone())
            .with_table_parquet_options(state.table_options().parquet.clone());
        if let Some(p) = pruned.predicate.clone() {
            source = source.with_predicate(p);
        }
        let num_rows = if filters.is_empty() {
            Precision::Exact(rows_kept as usize)
        } else {
            Precision::Inexact(rows_kept as usize)
        };
        let statistics = Statistics::new_unknown(&self.schema).with_num_rows(num_rows);
        let config = FileScanConfigBuilder::new(self.url.clone(), Arc::new(source))
            .with_file_groups(file_groups)
            .with_projection_indices(projection.cloned())?
            .with_limit(limit)
            .with_statistics(statistics)
            .build();
        let scan = DataSourceExec::from_data_source(config);
        if !self.cluster {
            return Ok(scan);
        }
        Ok(Arc::new(QuiverScanExec::new(
            scan,
            self.snapshot.dataset().catalog().store().url().to_string(),
        )))
    }

    fn statistics(&self) -> Option<Statistics> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(i: usize) -> ChildEntry {
        ChildEntry {
            hash: Hash(*blake3::hash(&i.to_le_bytes()).as_bytes()),
            first_key: Default::default(),
            last_key: Default::default(),
            rows: 1,
            groups: 1,
            stats: Default::default(),
        }
    }

    /// Shards are disjoint, ascending, cover every partition, and without a seed are
    /// contiguous shares in order; with a seed the deal depends on the seed.
    #[test]
    fn shards_partition_the_kept_partitions() {
        let leaves: Vec<ChildEntry> = (0..1000).map(leaf).collect();
        for n in [0usize, 1, 7, 40, 41, 1000] {
            for count in [1u32, 2, 3, 5, 64, 200] {
                for seed in [None, Some(1u64), Some(2)] {
                    let all = deal(count, seed, &leaves[..n]);
                    assert_eq!(all.len(), count as usize);
                    let mut seen = vec![0u8; n];
                    for (i, runs) in all.iter().enumerate() {
                        let spec = ShardSpec {
                            index: i as u32,
                            count,
                            seed,
                        };
                        assert_eq!(&spec.runs(&leaves[..n]), runs, "runs == deal[i]");
                        for w in runs.windows(2) {
                            assert!(w[0].end < w[1].start, "ascending, merged: {runs:?}");
                        }
                        for r in runs {
                            assert!(!r.is_empty());
                            r.clone().for_each(|j| seen[j] += 1);
                        }
                    }
                    assert!(seen.iter().all(|&c| c == 1), "n={n} count={count}");
                    if seed.is_none() {
                        let flat: Vec<usize> =
                            all.iter().flatten().flat_map(|r| r.clone()).collect();
                        assert_eq!(flat, (0..n).collect::<Vec<_>>(), "contiguous shares");
                    }
                }
            }
        }
        let a = deal(4, Some(1), &leaves);
        assert_ne!(a, deal(4, Some(2), &leaves), "the seed changes the deal");
        assert_eq!(a, deal(4, Some(1), &leaves), "and is deterministic");
        assert!(ShardSpec {
            index: 9,
            count: 4,
            seed: None
        }
        .runs(&leaves)
        .is_empty());
    }

    #[test]
    fn bounded_cache_starts_over_when_full() {
        let cache = Bounded::new(10);
        let mut c = cache.lock().expect("fresh mutex");
        c.insert(1, "a", 4);
        c.insert(2, "b", 4);
        assert_eq!((c.get(&1), c.get(&2)), (Some("a"), Some("b")));
        // replacing an entry replaces its weight
        c.insert(2, "B", 5);
        assert_eq!((c.weight, c.get(&2)), (9, Some("B")));
        // over the weight limit: start over with the new entry only
        c.insert(3, "c", 2);
        assert_eq!((c.get(&1), c.get(&3), c.weight), (None, Some("c"), 2));
        // heavier than the whole cache: not kept, nothing dropped
        c.insert(4, "d", 11);
        assert_eq!((c.get(&4), c.get(&3)), (None, Some("c")));
        // too many entries: start over
        for k in 10..10 + CACHE_ENTRIES as i32 {
            c.insert(k, "x", 0);
        }
        assert_eq!((c.get(&3), c.map.len()), (None, 1));
    }
}
