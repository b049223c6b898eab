//! Merges and their conflicts.
//!
//! ```text
//! MERGE <ref> INTO target_branch ON ds [MESSAGE 'm']   (<ref>: what is merged)
//! SHOW CONFLICTS ON ds                                 (the pending merge into the session's branch)
//! RESOLVE CONFLICTS ON ds USING OURS | THEIRS [WHERE <predicate over the conflict table>]
//! ABORT MERGE ON ds
//! COMMIT MERGE ON ds [MESSAGE 'm']                     (a bare COMMIT also works)
//! ```

use super::cursor::Cursor;
use super::Statement;
use crate::error::Result;

/// One merge statement (the cursor is on its first word).
pub(super) fn parse_merge(c: &mut Cursor) -> Result<Statement> {
    if c.eat_all(&["SHOW", "CONFLICTS"]) {
        c.expect("ON")?;
        return Ok(Statement::ShowConflicts {
            dataset: c.name("a dataset name")?,
        });
    }
    if c.eat_all(&["RESOLVE", "CONFLICTS"]) {
        c.expect("ON")?;
        let dataset = c.name("a dataset name")?;
        c.expect("USING")?;
        let theirs = if c.eat("OURS") {
            false
        } else if c.eat("THEIRS") {
            true
        } else {
            return Err(c.error("expected OURS or THEIRS"));
        };
        let filter = if c.eat("WHERE") {
            Some(Box::new(c.sql(|p| p.parse_expr())?))
        } else {
            None
        };
        return Ok(Statement::ResolveConflicts {
            dataset,
            theirs,
            filter,
        });
    }
    if c.eat_all(&["ABORT", "MERGE"]) {
        c.expect("ON")?;
        return Ok(Statement::AbortMerge {
            dataset: c.name("a dataset name")?,
        });
    }
    if c.eat_all(&["COMMIT", "MERGE"]) {
        c.expect("ON")?;
        let dataset = c.name("a dataset name")?;
        let message = c.opt_message()?;
        return Ok(Statement::CommitMerge { dataset, message });
    }
    c.expect("MERGE")?;
    let source = c.version_ref()?;
    c.expect("INTO")?;
    let target = c.name("the branch to merge into")?;
    c.expect("ON")?;
    let dataset = c.name("a dataset name")?;
    let message = c.opt_message()?;
    Ok(Statement::Merge {
        dataset,
        source,
        target,
        message,
    })
}
