//! Going back: revert of a commit and reset of a branch, both as new commits (history is
//! never rewritten).
//!
//! ```text
//! REVERT <commit> ON ds [BRANCH b] [MESSAGE 'm']
//! RESET BRANCH b ON ds TO <ref> [MESSAGE 'm']
//!
//! <commit>, <ref> = 'name' | BRANCH 'b' | TAG 't' | VERSION 'id' | TIMESTAMP <time>
//! ```
//!
//! A bare `'name'` is resolved as `"ds@name"` is: a branch, then a tag, then a commit id or
//! unique prefix (`'tag:v1'`, `'branch:b'` name the kind; `'~n'` is the n-th commit of the
//! branch). `REVERT` makes a commit on branch `b` (default: the session's branch of `ds`)
//! that undoes the changes of `<commit>`, and stops on labels a later commit changed too;
//! `RESET BRANCH` makes a commit on `b` whose content is exactly `<ref>`'s (same content
//! hash).

use super::cursor::Cursor;
use super::Statement;
use crate::error::Result;

/// One revert or reset statement (the cursor is on its first word).
pub(super) fn parse_rewind(c: &mut Cursor) -> Result<Statement> {
    if c.eat("REVERT") {
        let commit = c.loose_or_version_ref()?;
        c.expect("ON")?;
        let dataset = c.name("a dataset name")?;
        let branch = if c.eat("BRANCH") {
            Some(c.name("the branch to revert on")?)
        } else {
            None
        };
        let message = c.opt_message()?;
        return Ok(Statement::Revert {
            dataset,
            commit,
            branch,
            message,
        });
    }
    c.expect("RESET")?;
    c.expect("BRANCH")?;
    let branch = c.name("the branch to reset")?;
    c.expect("ON")?;
    let dataset = c.name("a dataset name")?;
    c.expect("TO")?;
    let to = c.loose_or_version_ref()?;
    let message = c.opt_message()?;
    Ok(Statement::ResetBranch {
        dataset,
        branch,
        to,
        message,
    })
}
