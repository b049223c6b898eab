//! Tags.
//!
//! ```text
//! CREATE TAG 'name' ON ds [AS OF <ref>]
//! DROP TAG 'name' ON ds
//! ALTER TAG 'old' RENAME TO 'new' ON ds
//! SHOW TAGS ON ds
//! ```
//!
//! `RENAME TAG …` (another engine's spelling) is refused with this grammar in the message.

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
    if c.eat_all(&["ALTER", "TAG"]) {
        let usage = "ALTER TAG: expected ALTER TAG 'old' RENAME TO 'new' ON ds";
        let from = c.name("the tag to rename")?;
        if !c.eat_all(&["RENAME", "TO"]) {
            return Err(c.error(usage));
        }
        let to = c.name("the new tag name")?;
        if !c.eat("ON") {
            return Err(c.error(usage));
        }
        let dataset = c.name("a dataset name")?;
        return Ok(Statement::RenameTag { dataset, from, to });
    }
    c.expect("SHOW")?;
    c.expect("TAGS")?;
    c.expect("ON")?;
    Ok(Statement::ShowTags {
        dataset: c.name("a dataset name")?,
    })
}
