//! Executes `SHOW HISTORY` and `DIFF`.

use super::*;

impl QuiverContext {
    /// Run one statement of this family.
    pub(super) async fn exec_history(&self, st: Statement) -> Result<Vec<RecordBatch>> {
        let sh = &self.shared;
        match st {
            Statement::ShowHistory { dataset, at } => {
                let ds = sh.dataset(&dataset).await?;
                let head = sh.resolve(&ds, &at).await?;
                let rows: Vec<_> = ds
                    .history_of(&head)
                    .await?
                    .into_iter()
                    .map(|c| (dataset.clone(), c))
                    .collect();
                Ok(vec![crate::system::commits_batch(&rows, false)?])
            }
            Statement::Diff { dataset, from, to } => {
                let ds = sh.dataset(&dataset).await?;
                Ok(vec![diff_batch(sh, &ds, &from, &to).await?])
            }
            other => Err(misrouted(&other)),
        }
    }
}
