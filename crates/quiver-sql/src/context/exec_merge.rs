//! Executes `MERGE`, `MERGE … PREVIEW`, `SHOW CONFLICTS`, `RESOLVE CONFLICTS`, `ABORT MERGE` and `COMMIT MERGE`.

use super::*;

impl QuiverContext {
    /// Run one statement of this family.
    pub(super) async fn exec_merge(&self, st: Statement) -> Result<Vec<RecordBatch>> {
        let sh = &self.shared;
        match st {
            Statement::Merge {
                dataset,
                source,
                target,
                message,
            } => {
                let ds = sh.dataset(&dataset).await?;
                let spec = sh.spec(&ds, &source).await?;
                let r = crate::merge_sql::merge(
                    &ds,
                    &spec,
                    &target,
                    message.as_deref(),
                    &self.opts.author(),
                )
                .await?;
                if r.kind == quiver_core::MergeKind::Conflicts {
                    if let Ok(mut m) = sh.merges.lock() {
                        m.insert((dataset.clone(), target.clone()));
                    }
                }
                Ok(vec![crate::merge_sql::merge_row(&r)?])
            }
            Statement::MergePreview {
                dataset,
                source,
                target,
            } => {
                let ds = sh.dataset(&dataset).await?;
                let spec = sh.spec(&ds, &source).await?;
                let p = ds.merge_preview(&spec, &target).await?;
                Ok(vec![crate::merge_sql::preview_row(&p)?])
            }
            Statement::ShowConflicts { dataset } => {
                let ds = sh.dataset(&dataset).await?;
                let target = sh.session_branch(&dataset);
                Ok(vec![crate::merge_sql::conflicts(&ds, &target).await?])
            }
            Statement::ResolveConflicts {
                dataset,
                theirs,
                filter,
            } => {
                let ds = sh.dataset(&dataset).await?;
                let target = sh.session_branch(&dataset);
                Ok(vec![
                    crate::merge_sql::resolve(
                        &ds,
                        &target,
                        theirs,
                        filter.map(|f| f.to_string()).as_deref(),
                    )
                    .await?,
                ])
            }
            Statement::AbortMerge { dataset } => {
                let ds = sh.dataset(&dataset).await?;
                let target = sh.session_branch(&dataset);
                ds.abort_merge(&target).await?;
                if let Ok(mut m) = sh.merges.lock() {
                    m.remove(&(dataset.clone(), target.clone()));
                }
                Ok(vec![message_batch(&[("aborted_merge_into", target)])?])
            }
            Statement::CommitMerge { dataset, message } => {
                let ds = sh.dataset(&dataset).await?;
                let target = sh.session_branch(&dataset);
                let row =
                    crate::merge_sql::commit(&ds, &target, message.as_deref(), &self.opts.author())
                        .await?;
                if let Ok(mut m) = sh.merges.lock() {
                    m.remove(&(dataset.clone(), target.clone()));
                }
                Ok(vec![crate::merge_sql::commits_row(&[row])?])
            }
            other => Err(misrouted(&other)),
        }
    }
}
