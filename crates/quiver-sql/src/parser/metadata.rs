//! Dataset and column metadata: notes kept with a dataset outside its versions (owner,
//! licence, source, what a column means), as Deep Lake's `info` is. Setting them makes no
//! commit.
//!
//! ```text
//! ALTER DATASET ds [ALTER COLUMN c] SET METADATA 'key' = value [, 'key' = value …]
//! ALTER DATASET ds [ALTER COLUMN c] UNSET METADATA 'key' [, 'key' …]
//! SHOW METADATA ON ds
//! ```
//!
//! A value is a string literal, a number or TRUE/FALSE (stored as JSON).

use datafusion::sql::sqlparser::tokenizer::Token;

use super::cursor::Cursor;
use super::{MetaValue, Statement};
use crate::error::Result;

const USAGE: &str = "expected ALTER DATASET ds [ALTER COLUMN c] SET METADATA 'key' = value [, …] \
     or … UNSET METADATA 'key' [, …]";

/// One metadata statement (the cursor is on `ALTER` or `SHOW`).
pub(super) fn parse_metadata(c: &mut Cursor) -> Result<Statement> {
    if c.eat_all(&["SHOW", "METADATA"]) {
        c.expect("ON")?;
        let dataset = c.name("a dataset name")?;
        return Ok(Statement::ShowMetadata { dataset });
    }
    c.expect("ALTER")?;
    c.expect("DATASET")?;
    let dataset = c.name("a dataset name")?;
    let column = if c.eat_all(&["ALTER", "COLUMN"]) {
        Some(c.name("a column name")?)
    } else {
        None
    };
    if c.eat_all(&["SET", "METADATA"]) {
        let mut set = Vec::new();
        loop {
            let key = c.string("a metadata key (a string literal)")?;
            c.expect_token(Token::Eq, "expected '=' and a value")?;
            set.push((key, value(c)?));
            if !c.p.consume_token(&Token::Comma) {
                break;
            }
        }
        return Ok(Statement::AlterMetadata {
            dataset,
            column,
            set,
            unset: Vec::new(),
        });
    }
    if c.eat_all(&["UNSET", "METADATA"]) {
        let mut unset = vec![c.string("a metadata key (a string literal)")?];
        while c.p.consume_token(&Token::Comma) {
            unset.push(c.string("a metadata key (a string literal)")?);
        }
        return Ok(Statement::AlterMetadata {
            dataset,
            column,
            set: Vec::new(),
            unset,
        });
    }
    Err(c.error(&format!(
        "{USAGE} (datasets cannot be renamed or altered otherwise)"
    )))
}

/// A metadata value: a string literal, a (signed) number, TRUE or FALSE.
fn value(c: &mut Cursor) -> Result<MetaValue> {
    if c.eat("TRUE") {
        return Ok(MetaValue::Bool(true));
    }
    if c.eat("FALSE") {
        return Ok(MetaValue::Bool(false));
    }
    let negative = c.p.consume_token(&Token::Minus);
    let v = match &c.p.peek_token_ref().token {
        Token::SingleQuotedString(s) if !negative => MetaValue::Text(s.clone()),
        Token::Number(n, _) => {
            let n = if negative { format!("-{n}") } else { n.clone() };
            if serde_json::from_str::<serde_json::Number>(&n).is_err() {
                return Err(c.error("expected a number that JSON can hold"));
            }
            MetaValue::Number(n)
        }
        _ => return Err(c.error("expected a value: a string, a number, TRUE or FALSE")),
    };
    c.p.next_token();
    Ok(v)
}
