//! Executes the branch and tag statements: `CREATE`/`DROP BRANCH`, `CREATE`/`DROP TAG`,
//! `ALTER BRANCH`/`ALTER TAG … RENAME TO`, `SHOW BRANCHES`, `SHOW TAGS`, `USE BRANCH`.

use super::*;

impl QuiverContext {
    /// Run one statement of this family.
    pub(super) async fn exec_refs(&self, st: Statement) -> Result<Vec<RecordBatch>> {
        let sh = &self.shared;
        match st {
            Statement::CreateBranch {
                dataset,
                branch,
                from,
            } => {
                let ds = sh.dataset(&dataset).await?;
                let spec = sh.spec(&ds, &from).await?;
                let r = ds.create_branch(&branch, &spec).await?;
                Ok(vec![message_batch(&[
                    ("branch", r.name),
                    ("commit_id", r.commit.to_hex()),
                ])?])
            }
            Statement::DropBranch { dataset, branch } => {
                let ds = sh.dataset(&dataset).await?;
                ds.delete_branch(&branch).await?;
                if let Ok(mut b) = sh.branches.lock() {
                    if b.get(&dataset) == Some(&branch) {
                        b.remove(&dataset);
                    }
                }
                Ok(vec![message_batch(&[("dropped_branch", branch)])?])
            }
            Statement::RenameBranch { dataset, from, to } => {
                let ds = sh.dataset(&dataset).await?;
                let r = ds.rename_branch(&from, &to).await?;
                // a session on the old name follows the branch to its new name
                if let Ok(mut b) = sh.branches.lock() {
                    if b.get(&dataset) == Some(&from) {
                        b.insert(dataset.clone(), to.clone());
                    }
                }
                Ok(vec![message_batch(&[
                    ("renamed_branch", from),
                    ("branch", r.name),
                    ("commit_id", r.commit.to_hex()),
                ])?])
            }
            Statement::RenameTag { dataset, from, to } => {
                let ds = sh.dataset(&dataset).await?;
                let r = ds.rename_tag(&from, &to).await?;
                Ok(vec![message_batch(&[
                    ("renamed_tag", from),
                    ("tag", r.name),
                    ("commit_id", r.commit.to_hex()),
                ])?])
            }
            Statement::CreateTag { dataset, tag, at } => {
                let ds = sh.dataset(&dataset).await?;
                let spec = sh.spec(&ds, &at).await?;
                let r = ds.create_tag(&tag, &spec).await?;
                Ok(vec![message_batch(&[
                    ("tag", r.name),
                    ("commit_id", r.commit.to_hex()),
                ])?])
            }
            Statement::DropTag { dataset, tag } => {
                let ds = sh.dataset(&dataset).await?;
                ds.delete_tag(&tag).await?;
                Ok(vec![message_batch(&[("dropped_tag", tag)])?])
            }
            Statement::ShowBranches { dataset } => {
                let ds = sh.dataset(&dataset).await?;
                let rows: Vec<_> = ds
                    .branches()
                    .await?
                    .into_iter()
                    .map(|r| (dataset.clone(), r))
                    .collect();
                Ok(vec![crate::system::refs_batch("branch", &rows, false)?])
            }
            Statement::ShowTags { dataset } => {
                let ds = sh.dataset(&dataset).await?;
                let rows: Vec<_> = ds
                    .tags()
                    .await?
                    .into_iter()
                    .map(|r| (dataset.clone(), r))
                    .collect();
                Ok(vec![crate::system::refs_batch("tag", &rows, false)?])
            }
            Statement::UseBranch { dataset, branch } => {
                let ds = sh.dataset(&dataset).await?;
                ds.branch_head(&branch).await?;
                if let Ok(mut b) = sh.branches.lock() {
                    b.insert(dataset.clone(), branch.clone());
                }
                Ok(vec![message_batch(&[
                    ("dataset", dataset),
                    ("branch", branch),
                ])?])
            }
            other => Err(misrouted(&other)),
        }
    }
}
