//! Branches.
//!
//! ```text
//! CREATE BRANCH name FROM ds [AS OF <ref>]
//! DROP BRANCH name ON ds
//! USE BRANCH name ON ds
//! ALTER BRANCH old RENAME TO new ON ds
//! SHOW BRANCHES ON ds
//! ```
//!
//! `main` cannot be renamed. `RENAME BRANCH …` is refused with this grammar in the message.

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
    if c.eat_all(&["ALTER", "BRANCH"]) {
        let usage = "ALTER BRANCH: expected ALTER BRANCH old RENAME TO new ON ds";
        let from = c.name("the branch to rename")?;
        if !c.eat_all(&["RENAME", "TO"]) {
            return Err(c.error(usage));
        }
        let to = c.name("the new branch name")?;
        if !c.eat("ON") {
            return Err(c.error(usage));
        }
        let dataset = c.name("a dataset name")?;
        return Ok(Statement::RenameBranch { dataset, from, to });
    }
    c.expect("SHOW")?;
    c.expect("BRANCHES")?;
    c.expect("ON")?;
    Ok(Statement::ShowBranches {
        dataset: c.name("a dataset name")?,
    })
}
