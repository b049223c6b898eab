//! Per-branch settings kept in the catalog, outside the versioned data: protection and
//! pre-merge checks — the quality gates of a branch that changes only by reviewed merges.
//!
//! * A **protected** branch refuses every write that is not a merge: the refusal is made
//!   where a write transaction commits ([`crate::WriteTxn::commit`]), so no surface (SQL
//!   DML, REVERT/RESET, imports, Flight DoPut, the Python client) can go around it; a
//!   protected branch cannot be deleted or renamed either. Merges into it (a merge commit,
//!   COMMIT of a resolved merge, or a fast-forward) are allowed.
//! * A **check** is a named SQL query over the dataset that must return no rows. Every
//!   merge into the branch (protected or not) runs each check against the merged result —
//!   the new commit, written but not yet published — before the branch moves; the first
//!   check that returns rows refuses the merge, naming it and a sample of its rows
//!   ([`CoreError::CheckFailed`]). The commit left behind is garbage for VACUUM.
//!
//! Checks are SQL, and this crate has no SQL engine: the SQL layer installs a
//! [`CheckRunner`] on the catalog ([`Catalog::set_check_runner`]). A branch with checks
//! refuses merges in a program that installed none (fails closed).
//!
//! Storage: `datasets/<ds>/branch_settings/<branch>.json`, one small JSON file per branch
//! with settings (overwritten on change, not versioned; removed with the branch).

use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::catalog::{dataset_dir, Catalog};
use crate::dataset::Dataset;
use crate::error::{CoreError, Result};
use crate::model::Commit;

/// A named query that must return no rows on every merge result of a branch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BranchCheck {
    pub name: String,
    /// SQL returning the offending rows; the dataset's own name in it reads the merge result.
    pub query: String,
}

/// The settings of one branch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BranchSettings {
    /// Writes only by merge.
    #[serde(default)]
    pub protected: bool,
    /// Checks every merge result must pass, in the order they were added.
    #[serde(default)]
    pub checks: Vec<BranchCheck>,
}

impl BranchSettings {
    /// Whether nothing is set (the file is removed).
    pub fn is_default(&self) -> bool {
        !self.protected && self.checks.is_empty()
    }
}

/// What running a check gave.
#[derive(Debug, Clone)]
pub enum CheckOutcome {
    /// No rows: the check passes.
    Passed,
    /// Rows: how many, and the first few as text.
    Failed { rows: u64, sample: String },
    /// The query could not run (why); a merge is refused as for a failure.
    Error(String),
}

/// Runs pre-merge checks (SQL) against a candidate commit; installed by the SQL layer.
#[async_trait::async_trait]
pub trait CheckRunner: Send + Sync {
    /// Run `check` with `ds` read at `commit`.
    async fn run(&self, ds: &Dataset, commit: &Commit, check: &BranchCheck)
        -> Result<CheckOutcome>;
}

impl Catalog {
    /// Install the runner of pre-merge checks (replaces any earlier one).
    pub fn set_check_runner(&self, runner: Arc<dyn CheckRunner>) {
        if let Ok(mut r) = self.inner.checks.write() {
            *r = Some(runner);
        }
    }

    /// Whether a runner of pre-merge checks is installed.
    pub fn has_check_runner(&self) -> bool {
        self.inner.checks.read().is_ok_and(|r| r.is_some())
    }

    fn check_runner(&self) -> Option<Arc<dyn CheckRunner>> {
        self.inner.checks.read().ok().and_then(|r| r.clone())
    }
}

/// Check names: letters, digits, `_` and `-`, 1 to 64 characters.
fn validate_check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(CoreError::InvalidName {
            name: name.chars().take(64).collect(),
            reason: "a check name has 1 to 64 letters, digits, '_' or '-'".into(),
        })
    }
}

impl Dataset {
    fn settings_path(&self, branch: &str) -> String {
        format!("{}branch_settings/{branch}.json", dataset_dir(self.name()))
    }

    /// The settings of `branch` (defaults when none were set). The branch must exist.
    pub async fn branch_settings(&self, branch: &str) -> Result<BranchSettings> {
        self.branch_head(branch).await?;
        self.read_settings(branch).await
    }

    /// Settings as stored, without checking that the branch exists.
    pub(crate) async fn read_settings(&self, branch: &str) -> Result<BranchSettings> {
        if crate::catalog::validate_name(branch).is_err() {
            return Ok(BranchSettings::default());
        }
        let path = self.settings_path(branch);
        match self.store().get_file_opt(&path).await? {
            None => Ok(BranchSettings::default()),
            Some(b) => serde_json::from_slice(&b).map_err(|e| CoreError::Corrupt {
                what: path,
                reason: e.to_string(),
            }),
        }
    }

    /// The settings of every branch that has some, by branch name.
    pub async fn all_branch_settings(
        &self,
    ) -> Result<std::collections::BTreeMap<String, BranchSettings>> {
        let dir = format!("{}branch_settings/", dataset_dir(self.name()));
        let mut out = std::collections::BTreeMap::new();
        for path in self.store().list(&dir).await? {
            let Some(branch) = path
                .strip_prefix(&dir)
                .and_then(|f| f.strip_suffix(".json"))
            else {
                continue;
            };
            out.insert(branch.to_string(), self.read_settings(branch).await?);
        }
        Ok(out)
    }

    async fn write_settings(&self, branch: &str, s: &BranchSettings) -> Result<()> {
        let path = self.settings_path(branch);
        if s.is_default() {
            self.store().delete(&path).await?;
        } else {
            self.store()
                .put_file(&path, Bytes::from(serde_json::to_vec_pretty(s)?))
                .await?;
        }
        Ok(())
    }

    /// Drop the settings of a branch that is gone, or move them to its new name.
    pub(crate) async fn move_settings(&self, from: &str, to: Option<&str>) -> Result<()> {
        let s = self.read_settings(from).await?;
        if s.is_default() {
            return Ok(());
        }
        if let Some(to) = to {
            self.write_settings(to, &s).await?;
        }
        self.store().delete(&self.settings_path(from)).await?;
        Ok(())
    }

    /// Protect `branch` (writes only by merge) or lift its protection.
    pub async fn set_branch_protected(
        &self,
        branch: &str,
        protected: bool,
    ) -> Result<BranchSettings> {
        let mut s = self.branch_settings(branch).await?;
        s.protected = protected;
        self.write_settings(branch, &s).await?;
        Ok(s)
    }

    /// Add a pre-merge check to `branch`. The query is stored as given: the SQL layer
    /// validates it first.
    pub async fn add_branch_check(
        &self,
        branch: &str,
        name: &str,
        query: &str,
    ) -> Result<BranchSettings> {
        validate_check_name(name)?;
        let mut s = self.branch_settings(branch).await?;
        if s.checks.iter().any(|c| c.name == name) {
            return Err(CoreError::CheckExists {
                dataset: self.name().into(),
                branch: branch.into(),
                check: name.into(),
            });
        }
        s.checks.push(BranchCheck {
            name: name.into(),
            query: query.into(),
        });
        self.write_settings(branch, &s).await?;
        Ok(s)
    }

    /// Remove the pre-merge check `name` from `branch`.
    pub async fn drop_branch_check(&self, branch: &str, name: &str) -> Result<BranchSettings> {
        let mut s = self.branch_settings(branch).await?;
        let before = s.checks.len();
        s.checks.retain(|c| c.name != name);
        if s.checks.len() == before {
            return Err(CoreError::CheckNotFound {
                dataset: self.name().into(),
                branch: branch.into(),
                check: name.into(),
            });
        }
        self.write_settings(branch, &s).await?;
        Ok(s)
    }

    /// Refuse `operation` on `branch` when it is protected.
    pub(crate) async fn refuse_if_protected(&self, branch: &str, operation: &str) -> Result<()> {
        if self.read_settings(branch).await?.protected {
            return Err(CoreError::ProtectedBranch {
                dataset: self.name().into(),
                branch: branch.into(),
                operation: operation.into(),
            });
        }
        Ok(())
    }

    /// Run the pre-merge checks of `branch` against `candidate`, the result of a merge
    /// into it; the first check that returns rows refuses the merge.
    pub(crate) async fn run_branch_checks(
        &self,
        branch: &str,
        checks: &[BranchCheck],
        candidate: &Commit,
    ) -> Result<()> {
        if checks.is_empty() {
            return Ok(());
        }
        let runner = self
            .catalog
            .check_runner()
            .ok_or_else(|| CoreError::ChecksUnavailable {
                dataset: self.name().into(),
                branch: branch.into(),
            })?;
        for check in checks {
            match runner.run(self, candidate, check).await? {
                CheckOutcome::Passed => {}
                CheckOutcome::Failed { rows, sample } => {
                    return Err(CoreError::CheckFailed {
                        dataset: self.name().into(),
                        branch: branch.into(),
                        check: check.name.clone(),
                        rows,
                        sample,
                    })
                }
                CheckOutcome::Error(reason) => {
                    return Err(CoreError::CheckError {
                        dataset: self.name().into(),
                        branch: branch.into(),
                        check: check.name.clone(),
                        reason,
                    })
                }
            }
        }
        Ok(())
    }

    /// The checks of `branch` judge `candidate` before a merge moves the branch to it.
    pub(crate) async fn check_merge_into(&self, branch: &str, candidate: &Commit) -> Result<()> {
        let s = self.read_settings(branch).await?;
        self.run_branch_checks(branch, &s.checks, candidate).await
    }
}
