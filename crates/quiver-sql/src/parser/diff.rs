//! History and differences between versions.
//!
//! ```text
//! SHOW HISTORY ON ds [AS OF <ref>]
//! DIFF ds BETWEEN <ref> AND <ref>
//! <ref> := BRANCH 'b' | TAG 't' | VERSION 'id-or-prefix' | VERSION '~n'
//!        | TIMESTAMP 'time' | TIMESTAMP <constant expression>
//! ```

use super::cursor::Cursor;
use super::Statement;
use crate::error::Result;

/// `SHOW HISTORY` or `DIFF` (the cursor is on the first word).
pub(super) fn parse_diff(c: &mut Cursor) -> Result<Statement> {
    if c.eat_all(&["SHOW", "HISTORY"]) {
        c.expect("ON")?;
        let dataset = c.name("a dataset name")?;
        let at = c.opt_as_of()?;
        return Ok(Statement::ShowHistory { dataset, at });
    }
    c.expect("DIFF")?;
    let dataset = c.name("a dataset name")?;
    c.expect("BETWEEN")?;
    let from = c.version_ref()?;
    c.expect("AND")?;
    let to = c.version_ref()?;
    Ok(Statement::Diff { dataset, from, to })
}
