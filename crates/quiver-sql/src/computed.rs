//! Tables whose rows are computed when they are scanned: the results of table functions
//! (`quiver_diff`, `quiver_conflicts`, `quiver_lineage_of_model`, …).

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;

/// The rows of a computed table.
#[async_trait::async_trait]
pub(crate) trait Computed: std::fmt::Debug + Send + Sync {
    /// Schema of the rows.
    fn schema(&self) -> SchemaRef;
    /// Compute the rows (at scan time).
    async fn rows(&self) -> DfResult<Vec<RecordBatch>>;
}

/// A temporary table over a [`Computed`]: scanning it computes the rows and serves them
/// from memory with the requested projection.
#[derive(Debug)]
pub(crate) struct ComputedTable<T>(pub T);

#[async_trait::async_trait]
impl<T: Computed + 'static> TableProvider for ComputedTable<T> {
    fn schema(&self) -> SchemaRef {
        self.0.schema()
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
        let rows = self.0.rows().await?;
        Ok(MemorySourceConfig::try_new_exec(
            &[rows],
            self.0.schema(),
            projection.cloned(),
        )?)
    }
}
