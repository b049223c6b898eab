//! Executes `OPTIMIZE` and `VACUUM`.

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
            other => Err(misrouted(&other)),
        }
    }
}
