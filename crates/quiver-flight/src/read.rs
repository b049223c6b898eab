//! Reads for trainers: a selection of one pinned commit (columns + SQL predicate), split into
//! disjoint shards of label partitions.

use std::sync::Arc;

use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::prelude::{DataFrame, SessionConfig, SessionContext};
use quiver_core::{Catalog, Commit, Dataset, Hash};
use quiver_sql::names::RefSpec;
use quiver_sql::provider::{register_store, store_url, PackInfoCache};
use quiver_sql::{QuiverTableProvider, ShardSpec};
use serde::{Deserialize, Serialize};

use crate::error::{FlightError, Result};

/// The descriptor a trainer sends to `GetFlightInfo` (JSON).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadCommand {
    pub dataset: String,
    /// `branch:NAME`, `tag:NAME`, `version:PREFIX` or a bare name; default `main`.
    #[serde(rename = "ref", default)]
    pub reference: Option<String>,
    #[serde(default)]
    pub columns: Option<Vec<String>>,
    /// A SQL predicate over the dataset's columns.
    #[serde(default)]
    pub filter: Option<String>,
    #[serde(default)]
    pub shards: Option<u32>,
    /// Seed of the shuffle of label partitions across and within shards.
    #[serde(default)]
    pub seed: Option<u64>,
    /// Recorded in the lineage log with the commit the ref resolved to.
    #[serde(default)]
    pub run_id: Option<String>,
}

/// The ticket of one shard (JSON): everything needed to re-create the read, pinned to a
/// commit id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardTicket {
    /// Ticket format version.
    pub v: u32,
    pub dataset: String,
    pub commit: String,
    #[serde(default)]
    pub columns: Option<Vec<String>>,
    #[serde(default)]
    pub filter: Option<String>,
    pub shard: u32,
    pub shards: u32,
    #[serde(default)]
    pub seed: Option<u64>,
}

/// Bytes of a ticket's endpoint around its JSON (`app_metadata`, protobuf framing): for
/// the [`crate::ServerLimits::max_flight_info_bytes`] estimate.
pub const ENDPOINT_OVERHEAD: usize = 128;

/// Resolve a ref string of a dataset to its commit.
pub async fn resolve_ref(ds: &Dataset, reference: &str) -> Result<Commit> {
    let spec = RefSpec::decode(reference);
    Ok(match spec.to_spec(quiver_core::DEFAULT_BRANCH)? {
        Some(s) => ds.resolve(&s).await?,
        None => ds.resolve_loose(reference).await?,
    })
}

/// A DataFusion session that reads one catalog.
pub fn read_session(catalog: &Catalog) -> Result<(SessionContext, ObjectStoreUrl)> {
    // larger batches: fewer, bigger Flight messages for trainers
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_batch_size(65_536));
    let url = store_url(0)?;
    register_store(&ctx, &url, catalog);
    Ok((ctx, url))
}

/// A planned read: the provider (for pruning estimates) and the DataFrame to execute.
pub struct Selection {
    pub ctx: SessionContext,
    pub provider: Arc<QuiverTableProvider>,
    pub df: DataFrame,
    pub filter: Option<datafusion::prelude::Expr>,
}

/// Plan the read of `commit` of `ds`: optional shard, columns and predicate.
pub async fn plan_selection(
    ds: &Dataset,
    commit: Commit,
    packs: PackInfoCache,
    columns: Option<&[String]>,
    filter: Option<&str>,
    shard: Option<ShardSpec>,
    limits: &quiver_sql::SqlLimits,
) -> Result<Selection> {
    let schema = ds.schema();
    if let Some(cols) = columns {
        if cols.is_empty() {
            return Err(FlightError::InvalidArgument(
                "'columns' is empty: leave it out to read every column".into(),
            ));
        }
        for c in cols {
            if schema.field_with_name(c).is_err() {
                return Err(FlightError::InvalidArgument(format!(
                    "column '{c}' not found in dataset '{}' (columns: {})",
                    ds.name(),
                    quiver_core::import::column_names(&schema)
                )));
            }
        }
    }
    let (ctx, url) = read_session(ds.catalog())?;
    let mut provider = QuiverTableProvider::new(ds.snapshot(commit), url, packs)?;
    if let Some(s) = shard {
        provider = provider.with_shard(s);
    }
    let provider = Arc::new(provider);
    ctx.register_table("labels", provider.clone())?;
    let mut df = ctx.table("labels").await?;
    let mut expr = None;
    if let Some(f) = filter.filter(|f| !f.trim().is_empty()) {
        // bounded before DataFusion parses and plans it (a deep OR chain is a deep tree)
        quiver_sql::guard::check_expr(f, limits)?;
        let e = ctx.parse_sql_expr(f, df.schema()).map_err(|e| {
            FlightError::InvalidArgument(format!(
                "filter '{f}' is not a valid predicate on dataset '{}': {e}",
                ds.name()
            ))
        })?;
        df = df.filter(e).map_err(|e| {
            FlightError::InvalidArgument(format!("filter '{f}' cannot be applied: {e}"))
        })?;
        // the same predicate over unqualified columns, for tree pruning estimates
        let plain = datafusion::common::DFSchema::try_from(schema.as_ref().clone())?;
        expr = ctx.parse_sql_expr(f, &plain).ok();
    }
    if let Some(cols) = columns {
        let names: Vec<&str> = cols.iter().map(String::as_str).collect();
        df = df.select_columns(&names)?;
    }
    Ok(Selection {
        ctx,
        provider,
        df,
        filter: expr,
    })
}

/// Rows and (compressed) bytes of the partitions of each shard.
pub async fn shard_sizes(
    sel: &Selection,
    shards: u32,
    seed: Option<u64>,
) -> Result<Vec<(u64, u64)>> {
    let state = sel.ctx.state();
    let filters: Vec<_> = sel.filter.iter().cloned().collect();
    Ok(sel
        .provider
        .shard_sizes(&state, &filters, shards, seed)
        .await?)
}

/// Parse a ticket's commit id.
pub fn parse_commit(ds: &str, s: &str) -> Result<Hash> {
    Hash::from_hex(s).ok_or_else(|| {
        FlightError::InvalidArgument(format!(
            "ticket for dataset '{ds}' names commit '{s}', which is not a 64-digit hex id"
        ))
    })
}
