//! Merges and their conflicts.
//!
//! ```text
//! MERGE <ref> INTO target_branch ON ds [MESSAGE 'm']   (<ref>: what is merged)
//! MERGE <ref> INTO target_branch ON ds PREVIEW         (what MERGE would do; writes nothing)
//! SHOW CONFLICTS ON ds                                 (the pending merge into the session's branch)
//! RESOLVE CONFLICTS ON ds USING OURS | THEIRS [WHERE <predicate over the conflict table>]
//! ABORT MERGE ON ds
//! COMMIT MERGE ON ds [MESSAGE 'm']                     (a bare COMMIT also works)
//!
//! <ref> = 'name' | BRANCH 'b' | TAG 't' | VERSION 'id' | TIMESTAMP <time>
//! ```
//!
//! A bare `'name'` is resolved as `"ds@name"` is: a branch, then a tag, then a commit id
//! prefix (`'tag:v1'`, `'branch:b'` name the kind). `PREVIEW` reports what the merge would
//! do (fast-forward, clean merge or conflicts, with counts) without a commit, a pending
//! merge or a ref move; the conflicting labels themselves are
//! `quiver_merge_preview('ds', 'source', 'target')`.

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
    let source = c.loose_or_version_ref()?;
    c.expect("INTO")?;
    let target = c.name("the branch to merge into")?;
    c.expect("ON")?;
    let dataset = c.name("a dataset name")?;
    if c.eat("PREVIEW") {
        return Ok(Statement::MergePreview {
            dataset,
            source,
            target,
        });
    }
    let message = c.opt_message()?;
    if c.is_kw(0, "PREVIEW") {
        return Err(c.error(
            "MERGE: a PREVIEW makes no commit and takes no MESSAGE; expected end of statement",
        ));
    }
    Ok(Statement::Merge {
        dataset,
        source,
        target,
        message,
    })
}
