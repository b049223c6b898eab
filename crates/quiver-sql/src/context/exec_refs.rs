//! Executes the branch and tag statements: `CREATE`/`DROP BRANCH`, `CREATE`/`DROP TAG`,
//! `ALTER BRANCH`/`ALTER TAG … RENAME TO`, `ALTER BRANCH … SET|UNSET PROTECTED`,
//! `ALTER BRANCH … ADD|DROP CHECK`, `SHOW BRANCHES`, `SHOW TAGS`, `USE BRANCH`.

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
                let rows = crate::system::branches_with_settings(&ds).await?;
                Ok(vec![crate::system::branches_batch(&rows, false)?])
            }
            Statement::SetBranchProtection {
                dataset,
                branch,
                protected,
            } => {
                let ds = sh.dataset(&dataset).await?;
                let s = ds.set_branch_protected(&branch, protected).await?;
                settings_row(&dataset, &branch, &s)
            }
            Statement::AddBranchCheck {
                dataset,
                branch,
                name,
                query,
            } => {
                let ds = sh.dataset(&dataset).await?;
                let head = ds.branch_head(&branch).await?.commit;
                // a check that cannot run would refuse every merge: plan it now, on the
                // branch's head
                crate::checks::plan_check(&ds, &head, &query, &self.opts.limits)
                    .await
                    .map_err(|e| {
                        let why = match e {
                            SqlError::Parse(m) => m,
                            other => other.to_string(),
                        };
                        SqlError::Parse(format!(
                            "ALTER BRANCH {branch} ON {dataset} ADD CHECK {name}: {why}"
                        ))
                    })?;
                let s = ds.add_branch_check(&branch, &name, &query).await?;
                settings_row(&dataset, &branch, &s)
            }
            Statement::DropBranchCheck {
                dataset,
                branch,
                name,
            } => {
                let ds = sh.dataset(&dataset).await?;
                let s = ds.drop_branch_check(&branch, &name).await?;
                settings_row(&dataset, &branch, &s)
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

/// The answer of ALTER BRANCH … PROTECTED / ADD CHECK / DROP CHECK: the branch's settings.
fn settings_row(
    dataset: &str,
    branch: &str,
    s: &quiver_core::BranchSettings,
) -> Result<Vec<RecordBatch>> {
    let names: Vec<&str> = s.checks.iter().map(|c| c.name.as_str()).collect();
    Ok(vec![message_batch(&[
        ("dataset", dataset.to_string()),
        ("branch", branch.to_string()),
        ("protected", s.protected.to_string()),
        ("checks", names.join(",")),
    ])?])
}
