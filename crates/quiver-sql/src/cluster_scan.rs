//! [`QuiverScanExec`]: a Quiver scan that can leave the process that planned it.
//!
//! A [`crate::QuiverTableProvider`] scans with DataFusion's own Parquet `DataSourceExec`,
//! each pack file carrying a `ParquetRowSelection` (the rows of the kept partitions, with
//! the holes later commits punched). DataFusion's protobuf form of a file scan drops those
//! per-file extensions, so a distributed engine (Ballista) that shipped the plain
//! `DataSourceExec` to another process would read every row of every pack: deleted and
//! replaced labels included. A provider made for a cluster
//! ([`crate::QuiverTableProvider::for_cluster`]) therefore puts this node above its scan.
//! An extension codec (crate `quiver-cluster`) writes it as the catalog's location plus
//! the [`FileRows`] of every file of the scan below it (never a credential), and puts the
//! row selections back on the files when it reads the plan.
//!
//! The scan stays this node's child, so a scheduler that gives each task only some of the
//! scan's partitions (Ballista cuts the file groups of a `DataSourceExec`) cuts it as it
//! cuts any file scan; the rows of each file travel on the file itself.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::parquet::ParquetRowSelection;
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::parquet::arrow::arrow_reader::{RowSelection, RowSelector};
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PhysicalExpr, PlanProperties,
};

/// Rows of one pack file a scan reads: `ranges` (ascending, disjoint) of `rows`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileRows {
    /// Ascending, disjoint row ranges read.
    pub ranges: Vec<Range<u64>>,
    /// Rows in the file.
    pub rows: u64,
}

impl FileRows {
    /// The Parquet row selection of these rows.
    pub fn selection(&self) -> RowSelection {
        let mut sel = Vec::with_capacity(self.ranges.len() * 2 + 1);
        let mut pos = 0u64;
        for r in &self.ranges {
            if r.start > pos {
                sel.push(RowSelector::skip((r.start - pos) as usize));
            }
            sel.push(RowSelector::select((r.end - r.start) as usize));
            pos = r.end;
        }
        if self.rows > pos {
            sel.push(RowSelector::skip((self.rows - pos) as usize));
        }
        RowSelection::from(sel)
    }

    /// `file` reading exactly these rows (the Parquet row selection, and these rows
    /// themselves for a codec to write).
    pub fn attach(self, file: PartitionedFile) -> PartitionedFile {
        file.with_extension(ParquetRowSelection::new(self.selection()))
            .with_extension(self)
    }
}

/// The file scan of `plan` or of its first descendants with one child each (an optimizer
/// may have put a sort or a filter between a [`QuiverScanExec`] and its scan).
pub fn file_scan(plan: &Arc<dyn ExecutionPlan>) -> Option<&FileScanConfig> {
    let mut node = plan;
    loop {
        if let Some(c) = node
            .downcast_ref::<DataSourceExec>()
            .and_then(|d| d.data_source().downcast_ref::<FileScanConfig>())
        {
            return Some(c);
        }
        match node.children().as_slice() {
            [child] => node = child,
            _ => return None,
        }
    }
}

/// The rows of each file of the file scan below a [`QuiverScanExec`], per file group.
pub fn scan_files(plan: &Arc<dyn ExecutionPlan>) -> DfResult<Vec<Vec<FileRows>>> {
    let config = file_scan(plan).ok_or_else(|| {
        DataFusionError::Internal("a Quiver scan is not above a file scan".into())
    })?;
    config
        .file_groups
        .iter()
        .map(|g| {
            g.iter()
                .map(|f| {
                    f.extension::<FileRows>().cloned().ok_or_else(|| {
                        DataFusionError::Internal(format!(
                            "file {} of a Quiver scan carries no row selection",
                            f.object_meta.location
                        ))
                    })
                })
                .collect()
        })
        .collect()
}

/// Marks a Quiver file scan (its only child) as one that may be sent to another process.
#[derive(Debug, Clone)]
pub struct QuiverScanExec {
    input: Arc<dyn ExecutionPlan>,
    /// Where the catalog lives (`/abs/path`, `file:///…`, `s3://bucket/prefix`).
    catalog_url: String,
}

impl QuiverScanExec {
    /// Mark `input` (a Parquet `DataSourceExec` whose files carry [`FileRows`]) as a scan of
    /// the catalog at `catalog_url`.
    pub fn new(input: Arc<dyn ExecutionPlan>, catalog_url: String) -> Self {
        QuiverScanExec { input, catalog_url }
    }

    /// The scan below.
    pub fn input(&self) -> &Arc<dyn ExecutionPlan> {
        &self.input
    }

    /// Where the catalog lives.
    pub fn catalog_url(&self) -> &str {
        &self.catalog_url
    }
}

impl DisplayAs for QuiverScanExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        match t {
            DisplayFormatType::TreeRender => write!(f, "catalog={}", self.catalog_url),
            _ => write!(f, "QuiverScanExec: catalog={}", self.catalog_url),
        }
    }
}

impl ExecutionPlan for QuiverScanExec {
    fn name(&self) -> &str {
        "QuiverScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    /// It does keep the order of its input, but saying so would let optimizers push sorts
    /// between it and the scan it marks.
    fn maintains_input_order(&self) -> Vec<bool> {
        vec![false]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        match (children.pop(), children.is_empty()) {
            (Some(input), true) => Ok(Arc::new(QuiverScanExec {
                input,
                catalog_url: self.catalog_url.clone(),
            })),
            _ => Err(DataFusionError::Internal(
                "QuiverScanExec takes exactly one child".into(),
            )),
        }
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        self.input.execute(partition, context)
    }
}
