//! The SQL runner of pre-merge checks (`quiver_core::branch_settings`): a check's query
//! runs in a read-only session where the dataset's own name reads the merge result — the
//! candidate commit, written but not yet on any branch — and every other table (other
//! datasets, `"ds@ref"`, system tables) reads as usual.
//!
//! [`install`] puts the runner on a catalog; every [`crate::QuiverContext`] does so for its
//! catalog, and so do the server and the CLI when they open one, so merges run the checks
//! whichever surface makes them.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::prelude::{DataFrame, SessionConfig};
use quiver_core::{BranchCheck, Catalog, CheckOutcome, CheckRunner, Commit, Dataset};

use crate::context::{QuiverContext, VersionPins};
use crate::error::{Result, SqlError};
use crate::guard::SqlLimits;
use crate::options::SessionOptions;

/// Offending rows named in a failed check's message at most.
const SAMPLE_ROWS: usize = 3;
/// Characters of one sample row at most.
const SAMPLE_ROW_CHARS: usize = 240;

/// Runs checks as SQL queries (see the module docs).
#[derive(Debug, Default)]
pub struct SqlCheckRunner;

/// Install the SQL runner of pre-merge checks on `catalog` (once; later calls keep it).
pub fn install(catalog: &Catalog) {
    if !catalog.has_check_runner() {
        catalog.set_check_runner(Arc::new(SqlCheckRunner));
    }
}

/// The check `query` planned in a read-only session that reads `ds` at `commit`. Only a
/// query (SELECT, WITH, VALUES, …) is a check.
pub async fn plan_check(
    ds: &Dataset,
    commit: &Commit,
    query: &str,
    limits: &SqlLimits,
) -> Result<DataFrame> {
    let st = crate::parser::parse_statement_with(query, limits)?;
    if !st.is_query() {
        return Err(SqlError::Parse(format!(
            "a check is a query (SELECT …) that returns the offending rows, not a {} statement",
            st.kind()
        )));
    }
    let opts = SessionOptions {
        read_only: true,
        limits: *limits,
        ..Default::default()
    };
    let ctx = QuiverContext::with_options(ds.catalog().clone(), SessionConfig::new(), opts).await?;
    ctx.pin_versions(Arc::new(VersionPins::new([(
        ds.name().to_string(),
        commit.id,
    )])))?;
    // boxed: planning a statement may plan a check (ALTER BRANCH … ADD CHECK)
    Box::pin(ctx.statement_df(st)).await
}

/// A few rows as `(col=value, …); (…)`, each cut to a bounded length.
fn sample_text(batches: &[RecordBatch]) -> String {
    let opts = FormatOptions::default().with_null("NULL");
    let mut rows = Vec::new();
    for b in batches {
        let fmts: Vec<_> = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts).ok())
            .collect();
        for r in 0..b.num_rows() {
            let cells: Vec<String> = b
                .schema()
                .fields()
                .iter()
                .zip(&fmts)
                .map(|(f, fmt)| {
                    let v = fmt
                        .as_ref()
                        .map(|x| x.value(r).to_string())
                        .unwrap_or_default();
                    format!("{}={v}", f.name())
                })
                .collect();
            let mut row: String = cells.join(", ");
            if row.chars().count() > SAMPLE_ROW_CHARS {
                row = row.chars().take(SAMPLE_ROW_CHARS).collect::<String>() + "…";
            }
            rows.push(format!("({row})"));
        }
    }
    rows.join("; ")
}

async fn run_check(ds: &Dataset, commit: &Commit, query: &str) -> Result<CheckOutcome> {
    let df = plan_check(ds, commit, query, &SqlLimits::default()).await?;
    let rows = df.clone().count().await? as u64;
    if rows == 0 {
        return Ok(CheckOutcome::Passed);
    }
    let sample = df.limit(0, Some(SAMPLE_ROWS))?.collect().await?;
    Ok(CheckOutcome::Failed {
        rows,
        sample: sample_text(&sample),
    })
}

#[async_trait::async_trait]
impl CheckRunner for SqlCheckRunner {
    async fn run(
        &self,
        ds: &Dataset,
        commit: &Commit,
        check: &BranchCheck,
    ) -> quiver_core::Result<CheckOutcome> {
        match run_check(ds, commit, &check.query).await {
            Ok(outcome) => Ok(outcome),
            // the catalog failing (storage, corruption) is that error, not the check's
            Err(SqlError::Core(e)) => Err(e),
            Err(e) => Ok(CheckOutcome::Error(e.to_string())),
        }
    }
}
