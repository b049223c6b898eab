//! The versioned label taxonomy.
//!
//! ```text
//! CREATE SCHEMA VERSION 'v' ON ds [FROM 'parent'] change [, change …] [MESSAGE 'm']
//! change := ADD CLASS 'name' = id | ADD ATTRIBUTE 'name' type
//!         | REMOVE | DROP CLASS 'name' | REMOVE | DROP ATTRIBUTE 'name'
//!         | RENAME CLASS | ATTRIBUTE 'old' TO 'new'
//! SHOW SCHEMAS ON ds
//! SHOW SCHEMA ON ds [VERSION 'v' | AT 'timestamp']
//! MIGRATE ds TO SCHEMA 'v' [USING ('old' = 'new' [, …])]
//! ```

use datafusion::sql::sqlparser::tokenizer::Token;
use quiver_core::SchemaChange;

use super::cursor::Cursor;
use super::Statement;
use crate::error::Result;

/// One schema statement (the cursor is on its first word).
pub(super) fn parse_schema(c: &mut Cursor) -> Result<Statement> {
    if c.eat_all(&["CREATE", "SCHEMA", "VERSION"]) {
        let version = c.name("a schema version like '2.3'")?;
        c.expect("ON")?;
        let dataset = c.name("a dataset name")?;
        let parent = if c.eat("FROM") {
            Some(c.name("the parent schema version")?)
        } else {
            None
        };
        let mut changes = vec![change(c)?];
        while c.p.consume_token(&Token::Comma) {
            changes.push(change(c)?);
        }
        let message = c.opt_message()?;
        return Ok(Statement::CreateSchemaVersion {
            dataset,
            version,
            parent,
            changes,
            message,
        });
    }
    if c.eat_all(&["SHOW", "SCHEMAS"]) {
        c.expect("ON")?;
        return Ok(Statement::ShowSchemas {
            dataset: c.name("a dataset name")?,
        });
    }
    if c.eat_all(&["SHOW", "SCHEMA"]) {
        c.expect("ON")?;
        let dataset = c.name("a dataset name")?;
        let (mut version, mut at) = (None, None);
        if c.eat("VERSION") {
            version = Some(c.name("a schema version")?);
        } else if c.eat("AT") {
            at = Some(c.name("a timestamp")?);
        }
        return Ok(Statement::ShowSchema {
            dataset,
            version,
            at,
        });
    }
    c.expect("MIGRATE")?;
    let dataset = c.name("a dataset name")?;
    c.expect("TO")?;
    c.expect("SCHEMA")?;
    let version = c.name("a schema version")?;
    let mut mapping = Vec::new();
    if c.eat("USING") {
        c.expect_token(Token::LParen, "expected USING ('old' = 'new', …)")?;
        loop {
            let from = c.name("a class name")?;
            c.expect_token(Token::Eq, "expected '=' in USING ('old' = 'new')")?;
            let to = c.name("a class name")?;
            mapping.push((from, to));
            if c.p.consume_token(&Token::RParen) {
                break;
            }
            c.expect_token(Token::Comma, "expected ',' or ')'")?;
        }
    }
    Ok(Statement::Migrate {
        dataset,
        version,
        mapping,
    })
}

/// One change of `CREATE SCHEMA VERSION`.
fn change(c: &mut Cursor) -> Result<SchemaChange> {
    let verb = c.peek_word(0).unwrap_or_default();
    let what = c.peek_word(1).unwrap_or_default();
    if !matches!(verb.as_str(), "ADD" | "REMOVE" | "DROP" | "RENAME")
        || !matches!(what.as_str(), "CLASS" | "ATTRIBUTE")
    {
        return Err(c.error(
            "CREATE SCHEMA VERSION: expected ADD CLASS 'name' = id, REMOVE CLASS, RENAME CLASS \
             'a' TO 'b', ADD ATTRIBUTE 'name' TYPE, REMOVE ATTRIBUTE or RENAME ATTRIBUTE",
        ));
    }
    c.p.next_token();
    c.p.next_token();
    let name = c.name(&format!("a {} name", what.to_ascii_lowercase()))?;
    Ok(match (verb.as_str(), what.as_str()) {
        ("ADD", "CLASS") => {
            c.expect_token(Token::Eq, "expected ADD CLASS 'name' = id")?;
            let negative = c.p.consume_token(&Token::Minus);
            let id: i64 = c.number(&format!("ADD CLASS '{name}': expected an integer id"))?;
            SchemaChange::AddClass {
                name,
                id: if negative { -id } else { id },
            }
        }
        ("ADD", _) => SchemaChange::AddAttribute {
            name,
            data_type: c.name("an attribute type")?.to_ascii_uppercase(),
        },
        ("REMOVE" | "DROP", "CLASS") => SchemaChange::RemoveClass { name },
        ("REMOVE" | "DROP", _) => SchemaChange::RemoveAttribute { name },
        (_, kind) => {
            c.expect("TO")?;
            let to = c.name("the new name")?;
            if kind == "CLASS" {
                SchemaChange::RenameClass { from: name, to }
            } else {
                SchemaChange::RenameAttribute { from: name, to }
            }
        }
    })
}
