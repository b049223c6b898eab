//! Ballista extension codecs for Quiver's tables and scans.
//!
//! **Logical** ([`QuiverLogicalCodec`]): a client sends the scheduler a logical plan. A
//! [`QuiverTableProvider`] travels as `(catalog location, dataset, resolved commit id,
//! shard)`: the scheduler opens the catalog itself (its own `AWS_*` configuration for
//! `s3://`), reads that immutable commit and plans the scan with Quiver's tree pruning. An
//! [`InlineTable`] (rows the client computed: system tables, `quiver_diff`, …) travels
//! as Arrow IPC.
//!
//! **Physical** ([`QuiverPhysicalCodec`]): the scheduler sends executors stage plans. A
//! [`QuiverScanExec`] travels as the catalog location, DataFusion's own protobuf form of the
//! Parquet scan, and the row selection of every pack file (which that protobuf form would
//! drop). The executor opens the catalog and registers its read-only store under the
//! executor's own URL for it.
//!
//! Neither codec ever writes a credential: only locations, ids, plans and row ranges.
//! Everything else is Ballista's own codec's.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::catalog::TableProvider;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::TableReference;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfig};
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{AggregateUDF, Extension, LogicalPlan, ScalarUDF, WindowUDF};
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use quiver_core::Hash;
use quiver_sql::cluster_scan::{file_scan, scan_files, FileRows, QuiverScanExec};
use quiver_sql::provider::PackInfoCache;
use quiver_sql::{QuiverTableProvider, ShardSpec};
use serde::{Deserialize, Serialize};

use crate::catalogs;
use crate::inline::InlineTable;

/// Tags that open every Quiver-encoded buffer (anything else is Ballista's).
const TABLE_TAG: &[u8; 4] = b"QVT1";
const INLINE_TAG: &[u8; 4] = b"QVI1";
const SCAN_TAG: &[u8; 4] = b"QVS1";

fn not_a_scan() -> DataFusionError {
    DataFusionError::Internal("a Quiver scan fragment is not a Parquet file scan".into())
}

fn external(e: impl std::error::Error + Send + Sync + 'static) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

/// A tagged buffer: tag, length of the JSON header, header, then raw bytes.
fn frame(tag: &[u8; 4], header: &impl Serialize, body: &[u8], buf: &mut Vec<u8>) -> DfResult<()> {
    let header = serde_json::to_vec(header).map_err(external)?;
    buf.extend_from_slice(tag);
    buf.extend_from_slice(&(header.len() as u64).to_le_bytes());
    buf.extend_from_slice(&header);
    buf.extend_from_slice(body);
    Ok(())
}

/// The header and body of a buffer tagged `tag`, or None for another tag.
fn unframe<'a, H: Deserialize<'a>>(
    tag: &[u8; 4],
    buf: &'a [u8],
) -> DfResult<Option<(H, &'a [u8])>> {
    let Some(rest) = buf.strip_prefix(tag.as_slice()) else {
        return Ok(None);
    };
    let bad = || DataFusionError::Internal("truncated Quiver plan fragment".into());
    let (len, rest) = rest.split_first_chunk::<8>().ok_or_else(bad)?;
    let len = usize::try_from(u64::from_le_bytes(*len)).map_err(|_| bad())?;
    if rest.len() < len {
        return Err(bad());
    }
    let (header, body) = rest.split_at(len);
    let header = serde_json::from_slice(header).map_err(external)?;
    Ok(Some((header, body)))
}

/// A Quiver table in a logical plan.
#[derive(Serialize, Deserialize)]
struct TableMsg {
    catalog: String,
    dataset: String,
    commit: String,
    shard: Option<(u32, u32, Option<u64>)>,
}

/// A Quiver scan in a physical plan (its input, DataFusion's Parquet scan, travels as
/// DataFusion's protobuf, which drops the row selection of each file: here it is).
#[derive(Serialize, Deserialize)]
struct ScanMsg {
    catalog: String,
    files: Vec<Vec<FileRows>>,
}

/// Ballista's logical codec plus Quiver's tables (see the module docs).
#[derive(Debug)]
pub struct QuiverLogicalCodec {
    inner: Arc<dyn LogicalExtensionCodec>,
    packs: PackInfoCache,
}

impl Default for QuiverLogicalCodec {
    fn default() -> Self {
        QuiverLogicalCodec {
            inner: Arc::new(ballista_core::serde::BallistaLogicalExtensionCodec::default()),
            packs: PackInfoCache::default(),
        }
    }
}

impl LogicalExtensionCodec for QuiverLogicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[LogicalPlan],
        ctx: &TaskContext,
    ) -> DfResult<Extension> {
        self.inner.try_decode(buf, inputs, ctx)
    }

    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> DfResult<()> {
        self.inner.try_encode(node, buf)
    }

    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        table_ref: &TableReference,
        schema: SchemaRef,
        ctx: &TaskContext,
    ) -> DfResult<Arc<dyn TableProvider>> {
        if let Some((msg, _)) = unframe::<TableMsg>(TABLE_TAG, buf)? {
            return self.decode_table(msg, table_ref, ctx);
        }
        if let Some(((), body)) = unframe::<()>(INLINE_TAG, buf)? {
            let batches = read_ipc(body)?;
            return Ok(Arc::new(InlineTable::new(schema, batches)));
        }
        self.inner
            .try_decode_table_provider(buf, table_ref, schema, ctx)
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> DfResult<()> {
        if let Some(p) = node.downcast_ref::<QuiverTableProvider>() {
            let snapshot = p.snapshot();
            let catalog = catalogs::portable_location(snapshot.dataset().catalog().store().url())
                .map_err(external)?;
            let msg = TableMsg {
                catalog,
                dataset: snapshot.dataset().name().to_string(),
                commit: snapshot.commit().id.to_hex(),
                shard: p.shard().map(|s| (s.index, s.count, s.seed)),
            };
            return frame(TABLE_TAG, &msg, &[], buf);
        }
        if let Some(t) = node.downcast_ref::<InlineTable>() {
            let body = write_ipc(&t.schema(), t.batches())?;
            return frame(INLINE_TAG, &(), &body, buf);
        }
        self.inner.try_encode_table_provider(table_ref, node, buf)
    }

    fn try_decode_file_format(
        &self,
        buf: &[u8],
        ctx: &TaskContext,
    ) -> DfResult<Arc<dyn datafusion::datasource::file_format::FileFormatFactory>> {
        self.inner.try_decode_file_format(buf, ctx)
    }

    fn try_encode_file_format(
        &self,
        buf: &mut Vec<u8>,
        node: Arc<dyn datafusion::datasource::file_format::FileFormatFactory>,
    ) -> DfResult<()> {
        self.inner.try_encode_file_format(buf, node)
    }

    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> DfResult<Arc<ScalarUDF>> {
        self.inner.try_decode_udf(name, buf)
    }

    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> DfResult<()> {
        self.inner.try_encode_udf(node, buf)
    }

    fn try_decode_udaf(&self, name: &str, buf: &[u8]) -> DfResult<Arc<AggregateUDF>> {
        self.inner.try_decode_udaf(name, buf)
    }

    fn try_encode_udaf(&self, node: &AggregateUDF, buf: &mut Vec<u8>) -> DfResult<()> {
        self.inner.try_encode_udaf(node, buf)
    }

    fn try_decode_udwf(&self, name: &str, buf: &[u8]) -> DfResult<Arc<WindowUDF>> {
        self.inner.try_decode_udwf(name, buf)
    }

    fn try_encode_udwf(&self, node: &WindowUDF, buf: &mut Vec<u8>) -> DfResult<()> {
        self.inner.try_encode_udwf(node, buf)
    }
}

impl QuiverLogicalCodec {
    /// The provider of one immutable commit, planned for the cluster.
    fn decode_table(
        &self,
        msg: TableMsg,
        table_ref: &TableReference,
        ctx: &TaskContext,
    ) -> DfResult<Arc<dyn TableProvider>> {
        let commit = Hash::from_hex(&msg.commit).ok_or_else(|| {
            DataFusionError::Plan(format!(
                "table {table_ref}: {:?} is not a commit id",
                msg.commit
            ))
        })?;
        let packs = self.packs.clone();
        let TableMsg {
            catalog: location,
            dataset,
            shard,
            ..
        } = msg;
        let url = catalogs::store_url(&location)?;
        let provider_url = url.clone();
        let (catalog, provider) = catalogs::block_on(async move {
            let catalog = catalogs::open(&location).await.map_err(external)?;
            let ds = catalog.dataset(&dataset).await.map_err(external)?;
            let commit = ds.commit(&commit).await.map_err(external)?;
            let mut provider = QuiverTableProvider::new(ds.snapshot(commit), provider_url, packs)
                .map_err(external)?;
            if let Some((index, count, seed)) = shard {
                provider = provider.with_shard(ShardSpec { index, count, seed });
            }
            Ok::<_, DataFusionError>((catalog, provider.for_cluster()))
        })??;
        // the scheduler's planning reads pack footers through its own runtime
        let runtime = ctx.runtime_env();
        if runtime.object_store(&url).is_err() {
            runtime.register_object_store(url.as_ref(), catalog.query_store());
        }
        Ok(Arc::new(provider))
    }
}

/// Ballista's physical codec plus Quiver's scan (see the module docs).
#[derive(Debug)]
pub struct QuiverPhysicalCodec {
    inner: Arc<dyn PhysicalExtensionCodec>,
}

impl Default for QuiverPhysicalCodec {
    fn default() -> Self {
        QuiverPhysicalCodec {
            inner: Arc::new(ballista_core::serde::BallistaPhysicalExtensionCodec::default()),
        }
    }
}

impl PhysicalExtensionCodec for QuiverPhysicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let Some((msg, _)) = unframe::<ScanMsg>(SCAN_TAG, buf)? else {
            return self.inner.try_decode(buf, inputs, ctx, proto_converter);
        };
        let [input] = inputs else {
            return Err(DataFusionError::Internal(format!(
                "a Quiver scan fragment has {} inputs, not one",
                inputs.len()
            )));
        };
        let config = file_scan(input).ok_or_else(not_a_scan)?;
        if config.file_groups.len() != msg.files.len() {
            return Err(DataFusionError::Internal(format!(
                "a Quiver scan fragment has {} file groups and {} row selections",
                config.file_groups.len(),
                msg.files.len()
            )));
        }
        let mut groups = Vec::with_capacity(msg.files.len());
        for (group, rows) in config.file_groups.iter().zip(msg.files) {
            if group.len() != rows.len() {
                return Err(DataFusionError::Internal(
                    "a Quiver scan fragment's files and row selections differ".into(),
                ));
            }
            let files: Vec<_> = group
                .iter()
                .zip(rows)
                .map(|(file, r)| r.attach(file.clone()))
                .collect();
            groups.push(FileGroup::new(files));
        }
        let mut config = config.clone();
        config.file_groups = groups;
        let scan = DataSourceExec::from_data_source(config);
        // put the scan with its row selections where the decoded one was
        let input = Arc::clone(input)
            .transform_down(|node| {
                if node
                    .downcast_ref::<DataSourceExec>()
                    .is_some_and(|d| d.data_source().downcast_ref::<FileScanConfig>().is_some())
                {
                    Ok(Transformed::new(
                        scan.clone(),
                        true,
                        TreeNodeRecursion::Stop,
                    ))
                } else {
                    Ok(Transformed::no(node))
                }
            })?
            .data;
        Ok(Arc::new(QuiverScanExec::new(input, msg.catalog)))
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> DfResult<()> {
        let Some(scan) = node.downcast_ref::<QuiverScanExec>() else {
            return self.inner.try_encode(node, buf, proto_converter);
        };
        let files = scan_files(scan.input())?;
        let msg = ScanMsg {
            catalog: catalogs::portable_location(scan.catalog_url()).map_err(external)?,
            files,
        };
        frame(SCAN_TAG, &msg, &[], buf)
    }

    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> DfResult<Arc<ScalarUDF>> {
        self.inner.try_decode_udf(name, buf)
    }

    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> DfResult<()> {
        self.inner.try_encode_udf(node, buf)
    }

    fn try_decode_udaf(&self, name: &str, buf: &[u8]) -> DfResult<Arc<AggregateUDF>> {
        self.inner.try_decode_udaf(name, buf)
    }

    fn try_encode_udaf(&self, node: &AggregateUDF, buf: &mut Vec<u8>) -> DfResult<()> {
        self.inner.try_encode_udaf(node, buf)
    }

    fn try_decode_udwf(&self, name: &str, buf: &[u8]) -> DfResult<Arc<WindowUDF>> {
        self.inner.try_decode_udwf(name, buf)
    }

    fn try_encode_udwf(&self, node: &WindowUDF, buf: &mut Vec<u8>) -> DfResult<()> {
        self.inner.try_encode_udwf(node, buf)
    }
}

fn write_ipc(schema: &SchemaRef, batches: &[RecordBatch]) -> DfResult<Vec<u8>> {
    let mut out = Vec::new();
    let mut w = StreamWriter::try_new(&mut out, schema)?;
    for b in batches {
        w.write(b)?;
    }
    w.finish()?;
    drop(w);
    Ok(out)
}

fn read_ipc(body: &[u8]) -> DfResult<Vec<RecordBatch>> {
    let reader = StreamReader::try_new(body, None)?;
    Ok(reader.collect::<Result<Vec<_>, _>>()?)
}
