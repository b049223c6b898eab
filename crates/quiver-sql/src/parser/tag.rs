//! Tags.
//!
//! ```text
//! CREATE TAG 'name' ON ds [AS OF <ref>]
//! DROP TAG 'name' ON ds
//! SHOW TAGS ON ds
//! ```

use super::cursor::Cursor;
use super::Statement;
use crate::error::Result;

/// One tag statement (the cursor is on its first word).
pub(super) fn parse_tag(c: &mut Cursor) -> Result<Statement> {
    if c.eat_all(&["CREATE", "TAG"]) {
        let tag = c.name("a tag name")?;
        c.expect("ON")?;
        let dataset = c.name("a dataset name")?;
        let at = c.opt_as_of()?;
        return Ok(Statement::CreateTag { dataset, tag, at });
    }
    if c.eat_all(&["DROP", "TAG"]) {
        let tag = c.name("a tag name")?;
        c.expect("ON")?;
        let dataset = c.name("a dataset name")?;
        return Ok(Statement::DropTag { dataset, tag });
    }
    c.expect("SHOW")?;
    c.expect("TAGS")?;
    c.expect("ON")?;
    Ok(Statement::ShowTags {
        dataset: c.name("a dataset name")?,
    })
}
