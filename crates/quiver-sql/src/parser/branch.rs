//! Branches.
//!
//! ```text
//! CREATE BRANCH name FROM ds [AS OF <ref>]
//! DROP BRANCH name ON ds
//! USE BRANCH name ON ds
//! ALTER BRANCH old RENAME TO new ON ds
//! ALTER BRANCH name ON ds SET PROTECTED | UNSET PROTECTED
//! ALTER BRANCH name ON ds ADD CHECK check AS 'query'
//! ALTER BRANCH name ON ds DROP CHECK check
//! SHOW BRANCHES ON ds
//! ```
//!
//! `main` cannot be renamed. `RENAME BRANCH …` is refused with this grammar in the message.
//! A protected branch changes only by merges; a check is a query that must return no rows
//! on the result of every merge into the branch (`quiver_core::branch_settings`). Settings
//! are not versioned: they apply from the statement on.

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
        return parse_alter(c);
    }
    c.expect("SHOW")?;
    c.expect("BRANCHES")?;
    c.expect("ON")?;
    Ok(Statement::ShowBranches {
        dataset: c.name("a dataset name")?,
    })
}

/// `ALTER BRANCH …` after its two words.
fn parse_alter(c: &mut Cursor) -> Result<Statement> {
    let usage = "ALTER BRANCH: expected ALTER BRANCH old RENAME TO new ON ds, or ALTER BRANCH b \
                 ON ds SET PROTECTED | UNSET PROTECTED | ADD CHECK name AS 'query' | DROP CHECK name";
    let branch = c.name("a branch name")?;
    if c.eat_all(&["RENAME", "TO"]) {
        let to = c.name("the new branch name")?;
        if !c.eat("ON") {
            return Err(c.error("ALTER BRANCH: expected ALTER BRANCH old RENAME TO new ON ds"));
        }
        let dataset = c.name("a dataset name")?;
        return Ok(Statement::RenameBranch {
            dataset,
            from: branch,
            to,
        });
    }
    if !c.eat("ON") {
        return Err(c.error(usage));
    }
    let dataset = c.name("a dataset name")?;
    for (words, protected) in [
        (["SET", "PROTECTED"], true),
        (["UNSET", "PROTECTED"], false),
    ] {
        if c.eat_all(&words) {
            return Ok(Statement::SetBranchProtection {
                dataset,
                branch,
                protected,
            });
        }
    }
    if c.eat_all(&["ADD", "CHECK"]) {
        let name = c.name("a check name")?;
        c.expect("AS")?;
        let query = c.string("the check's query as a string ('SELECT … that returns no rows')")?;
        return Ok(Statement::AddBranchCheck {
            dataset,
            branch,
            name,
            query,
        });
    }
    if c.eat_all(&["DROP", "CHECK"]) {
        let name = c.name("a check name")?;
        return Ok(Statement::DropBranchCheck {
            dataset,
            branch,
            name,
        });
    }
    Err(c.error(usage))
}
