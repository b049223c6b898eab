//! Executes `OPTIMIZE`, `VACUUM` and `ERASE`.

use super::*;

impl QuiverContext {
    /// Run one statement of this family.
    pub(super) async fn exec_maintenance(&self, st: Statement) -> Result<Vec<RecordBatch>> {
        let sh = &self.shared;
        match st {
            Statement::Optimize {
                dataset,
                branch,
                full,
            } => {
                let ds = sh.dataset(&dataset).await?;
                let branch = branch.unwrap_or_else(|| sh.session_branch(&dataset));
                let r = ds.optimize_with(&branch, full).await?;
                crate::optimize_sql::report_batch(&dataset, &branch, &r)
            }
            Statement::Vacuum {
                dataset,
                retain_hours,
                dry_run,
            } => {
                crate::vacuum_sql::vacuum(&sh.dataset(&dataset).await?, retain_hours, dry_run).await
            }
            Statement::Erase {
                dataset,
                filter,
                reason,
            } => {
                if self.in_transaction().await {
                    return Err(SqlError::Transaction(
                        "ERASE acts on every version at once and cannot be rolled back, so \
                         it is not part of a transaction: COMMIT or ROLLBACK first"
                            .into(),
                    ));
                }
                let ds = sh.dataset(&dataset).await?;
                let ds = ds.with_author(&self.opts.author());
                let rows = crate::erase_sql::SqlRows::new(&self.ctx.state(), &ds, &filter)?;
                let r = ds.erase(&rows, reason.as_deref().unwrap_or("")).await?;
                crate::erase_sql::report_batch(&dataset, &r)
            }
            other => Err(misrouted(&other)),
        }
    }
}
