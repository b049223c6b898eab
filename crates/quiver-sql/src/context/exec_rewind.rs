//! Executes `REVERT` and `RESET BRANCH`: new commits that undo a commit or bring back a
//! version's content (history is never rewritten).

use super::*;

impl QuiverContext {
    /// Run one statement of this family.
    pub(super) async fn exec_rewind(&self, st: Statement) -> Result<Vec<RecordBatch>> {
        let sh = &self.shared;
        match st {
            Statement::Revert {
                dataset,
                commit,
                branch,
                message,
            } => {
                let ds = sh.dataset(&dataset).await?;
                let branch = branch.unwrap_or_else(|| sh.session_branch(&dataset));
                // `~n` counts on the branch reverted on
                let spec = sh.spec_on(&ds, &commit, &branch).await?;
                let reverted = ds.resolve(&spec).await.map_err(|e| as_typed(e, &commit))?;
                let spec = VersionSpec::Version(reverted.id.to_hex());
                let r = ds
                    .revert(&spec, &branch, message.as_deref(), &self.opts.author())
                    .await?;
                let result = if r.committed {
                    "reverted"
                } else {
                    "up-to-date"
                };
                rewind_row(
                    &[
                        ("result", result.into()),
                        ("branch", branch),
                        ("commit_id", r.head.id.to_hex()),
                        ("reverted_commit", reverted.id.to_hex()),
                    ],
                    r.groups_changed,
                )
            }
            Statement::ResetBranch {
                dataset,
                branch,
                to,
                message,
            } => {
                let ds = sh.dataset(&dataset).await?;
                let spec = sh.spec_on(&ds, &to, &branch).await?;
                let r = ds
                    .reset_branch(&branch, &spec, message.as_deref(), &self.opts.author())
                    .await
                    .map_err(|e| as_typed(e, &to))?;
                let result = if r.committed { "reset" } else { "up-to-date" };
                rewind_row(
                    &[
                        ("result", result.into()),
                        ("branch", branch),
                        ("commit_id", r.head.id.to_hex()),
                        ("content_hash", r.head.root.to_hex()),
                    ],
                    r.groups_changed,
                )
            }
            other => Err(misrouted(&other)),
        }
    }
}

/// The one report row of REVERT / RESET: text columns, then `groups_changed`.
fn rewind_row(text: &[(&str, String)], groups_changed: u64) -> Result<Vec<RecordBatch>> {
    let mut fields: Vec<Field> = text
        .iter()
        .map(|(name, _)| Field::new(*name, DataType::Utf8, false))
        .collect();
    let mut arrays: Vec<ArrayRef> = text
        .iter()
        .map(|(_, v)| Arc::new(StringArray::from(vec![v.clone()])) as ArrayRef)
        .collect();
    fields.push(Field::new("groups_changed", DataType::UInt64, false));
    arrays.push(Arc::new(UInt64Array::from(vec![groups_changed])));
    Ok(vec![RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        arrays,
    )
    .map_err(DataFusionError::from)?])
}
