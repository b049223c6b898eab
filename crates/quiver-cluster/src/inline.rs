//! [`InlineTable`]: rows computed by the Quiver front end that travel inside a plan.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;

/// The rows of a table the front end computed (a system table, `quiver_diff`, the
/// lineage functions): sent to the cluster as Arrow IPC inside the logical plan.
#[derive(Debug)]
pub struct InlineTable {
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
}

impl InlineTable {
    /// A table of `batches` (all of `schema`).
    pub fn new(schema: SchemaRef, batches: Vec<RecordBatch>) -> Self {
        InlineTable { schema, batches }
    }

    /// The rows.
    pub fn batches(&self) -> &[RecordBatch] {
        &self.batches
    }
}

#[async_trait::async_trait]
impl TableProvider for InlineTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        Ok(MemorySourceConfig::try_new_exec(
            std::slice::from_ref(&self.batches),
            self.schema.clone(),
            projection.cloned(),
        )?)
    }
}
