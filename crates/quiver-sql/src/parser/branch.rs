//! Branches.
//!
//! ```text
//! CREATE BRANCH name FROM ds [AS OF <ref>]
//! DROP BRANCH name ON ds
//! USE BRANCH name ON ds
//! SHOW BRANCHES ON ds
//! ```

use super::cursor::Cursor;
use super::Statement;
use crate::error::Result;

/// One branch statement (the cursor is on its first word).
pub(super) fn parse_branch(c: &mut Cursor) -> Result<Statement> {
    if c.eat_all(&["CREATE", "BRANCH"]) {
        let branch = c.name("a branch name")?;
        c.expect("FROM")?;
        let dataset = c.name("a dataset name")?;
        let from = c.opt_as_of()?;
        return Ok(Statement::CreateBranch {
            dataset,
            branch,
            from,
        });
    }
    if c.eat_all(&["DROP", "BRANCH"]) {
        let branch = c.name("a branch name")?;
        c.expect("ON")?;
        let dataset = c.name("a dataset name")?;
        return Ok(Statement::DropBranch { dataset, branch });
    }
    if c.eat_all(&["USE", "BRANCH"]) {
        let branch = c.name("a branch name")?;
        c.expect("ON")?;
        let dataset = c.name("a dataset name")?;
        return Ok(Statement::UseBranch { dataset, branch });
    }
    c.expect("SHOW")?;
    c.expect("BRANCHES")?;
    c.expect("ON")?;
    Ok(Statement::ShowBranches {
        dataset: c.name("a dataset name")?,
    })
}
