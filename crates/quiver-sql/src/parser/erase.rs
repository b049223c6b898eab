//! Erasure of labels from every version (privacy requests).
//!
//! ```text
//! ERASE FROM ds WHERE <predicate> [REASON 'text']
//! ```
//!
//! `<predicate>` is a SQL expression over the dataset's columns (no subqueries), evaluated
//! on the rows of every version: a row that matches in any version has its values erased
//! there, whichever versions still hold it. Commit ids and content hashes do not change
//! (`quiver_core::erase`). The `REASON` is recorded with the erasure.

use super::cursor::Cursor;
use super::Statement;
use crate::error::Result;

/// `ERASE FROM …` (the cursor is on `ERASE`).
pub(super) fn parse_erase(c: &mut Cursor) -> Result<Statement> {
    c.expect("ERASE")?;
    c.expect("FROM")?;
    let dataset = c.name("a dataset name")?;
    if !c.eat("WHERE") {
        return Err(c.error(
            "ERASE: expected WHERE <predicate> (to erase every label, say so: WHERE true)",
        ));
    }
    let filter = Box::new(c.sql(|p| p.parse_expr())?);
    let reason = if c.eat("REASON") {
        Some(c.string("the reason, a string literal")?)
    } else {
        None
    };
    Ok(Statement::Erase {
        dataset,
        filter,
        reason,
    })
}
