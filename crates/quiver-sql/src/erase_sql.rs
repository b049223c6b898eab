//! `ERASE FROM ds WHERE <predicate> [REASON 'text']`: the predicate as the rows an erasure
//! removes ([`quiver_core::erase`]), and the row ERASE answers with.
//!
//! The predicate is planned once against the dataset's columns as SQL reads them (strings
//! and binaries as views, [`crate::provider::read_schema`]; the dataset name may qualify a
//! column) and evaluated by DataFusion on the rows of every pack the erasure reads: rows of
//! old versions are judged by their own values. Subqueries are refused (the predicate is
//! evaluated row by row, without a plan around it).

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, RecordBatch, StringArray, UInt64Array,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::DFSchema;
use datafusion::error::DataFusionError;
use datafusion::execution::session_state::SessionState;
use datafusion::logical_expr::ExprSchemable;
use datafusion::physical_plan::PhysicalExpr;
use datafusion::sql::sqlparser::ast::{Expr as SqlExpr, ExprWithAlias};
use quiver_core::{CoreError, Dataset, EraseReport, RowMatcher};

use crate::error::{Result, SqlError};

const SUBQUERIES: &str = "subqueries are not supported here; name the rows by their own \
    columns (e.g. sample_id IN ('a', 'b'))";

/// The rows a SQL predicate matches, for [`Dataset::erase`].
pub struct SqlRows {
    dataset: String,
    /// The dataset's schema as SQL reads it.
    schema: SchemaRef,
    predicate: Arc<dyn PhysicalExpr>,
    text: String,
}

impl std::fmt::Debug for SqlRows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SqlRows({}: {})", self.dataset, self.text)
    }
}

impl SqlRows {
    /// Plan `filter` over `ds`'s columns.
    pub fn new(state: &SessionState, ds: &Dataset, filter: &SqlExpr) -> Result<SqlRows> {
        let text = filter.to_string();
        let bad =
            |why: String| SqlError::Parse(format!("ERASE FROM {} WHERE {text}: {why}", ds.name()));
        let mut subquery = false;
        let _ = datafusion::sql::sqlparser::ast::visit_expressions(filter, |e| {
            if matches!(
                e,
                SqlExpr::Subquery(_) | SqlExpr::InSubquery { .. } | SqlExpr::Exists { .. }
            ) {
                subquery = true;
                return std::ops::ControlFlow::Break(());
            }
            std::ops::ControlFlow::Continue(())
        });
        if subquery {
            return Err(bad(SUBQUERIES.into()));
        }
        let schema = crate::provider::read_schema(&ds.schema());
        let df_schema = DFSchema::try_from_qualified_schema(ds.name(), &schema)?;
        let expr = state
            .create_logical_expr_from_sql_expr(
                ExprWithAlias {
                    expr: filter.clone(),
                    alias: None,
                },
                &df_schema,
            )
            .map_err(|e| bad(e.strip_backtrace()))?;
        let dt = expr
            .get_type(&df_schema)
            .map_err(|e| bad(e.strip_backtrace()))?;
        if !matches!(dt, DataType::Boolean | DataType::Null) {
            return Err(bad(format!(
                "the predicate must be true or false for a row; it is of type {dt}"
            )));
        }
        let predicate = state
            .create_physical_expr(expr, &df_schema)
            .map_err(|e| bad(e.strip_backtrace()))?;
        Ok(SqlRows {
            dataset: ds.name().to_string(),
            schema,
            predicate,
            text,
        })
    }
}

#[async_trait::async_trait]
impl RowMatcher for SqlRows {
    async fn matches(&self, batch: &RecordBatch) -> quiver_core::Result<BooleanArray> {
        let err = |e: String| CoreError::CannotErase {
            dataset: self.dataset.clone(),
            reason: format!("WHERE {} could not be evaluated: {e}", self.text),
        };
        // the columns as SQL reads them (views), as the predicate was planned
        let cols: Vec<ArrayRef> = batch
            .columns()
            .iter()
            .zip(self.schema.fields())
            .map(|(c, f)| {
                if c.data_type() == f.data_type() {
                    Ok(c.clone())
                } else {
                    datafusion::arrow::compute::cast(c, f.data_type())
                }
            })
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| err(e.to_string()))?;
        let view =
            RecordBatch::try_new(self.schema.clone(), cols).map_err(|e| err(e.to_string()))?;
        let out = self
            .predicate
            .evaluate(&view)
            .and_then(|v| v.into_array(view.num_rows()))
            .map_err(|e: DataFusionError| err(e.strip_backtrace()))?;
        match out.data_type() {
            DataType::Boolean => Ok(out.as_boolean().clone()),
            // WHERE NULL: nothing
            DataType::Null => Ok(BooleanArray::from(vec![false; out.len()])),
            other => Err(err(format!("it gave values of type {other}"))),
        }
    }

    fn describe(&self) -> String {
        format!("WHERE {}", self.text)
    }
}

/// The row ERASE answers with.
pub fn report_batch(dataset: &str, r: &EraseReport) -> Result<Vec<RecordBatch>> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("dataset", DataType::Utf8, false),
        Field::new("erasure_id", DataType::Utf8, false),
        Field::new("versions", DataType::UInt64, false),
        Field::new("packs_scanned", DataType::UInt64, false),
        Field::new("packs_rewritten", DataType::UInt64, false),
        Field::new("rows_erased", DataType::UInt64, false),
        Field::new("labels_erased", DataType::UInt64, false),
    ]));
    let u = |v: u64| -> ArrayRef { Arc::new(UInt64Array::from(vec![v])) };
    let s = |v: &str| -> ArrayRef { Arc::new(StringArray::from(vec![v.to_string()])) };
    let cols = vec![
        s(dataset),
        s(&r.id),
        u(r.versions),
        u(r.packs_scanned),
        u(r.packs_rewritten),
        u(r.rows_erased),
        u(r.labels_erased),
    ];
    Ok(vec![
        RecordBatch::try_new(schema, cols).map_err(DataFusionError::from)?
    ])
}
