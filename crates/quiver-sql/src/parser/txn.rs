//! Transactions: several DML statements, one commit.
//!
//! ```text
//! BEGIN [TRANSACTION | WORK] | START TRANSACTION
//! COMMIT [TRANSACTION | WORK] ['message']
//! ROLLBACK [TRANSACTION | WORK]
//! ```

use datafusion::sql::sqlparser::tokenizer::Token;

use super::cursor::Cursor;
use super::Statement;
use crate::error::Result;

/// One transaction statement (the cursor is on its first word).
pub(super) fn parse_txn(c: &mut Cursor) -> Result<Statement> {
    let work = |c: &mut Cursor| c.eat("TRANSACTION") || c.eat("WORK");
    if c.eat_all(&["START", "TRANSACTION"]) {
        return Ok(Statement::Begin);
    }
    if c.eat("BEGIN") {
        work(c);
        return Ok(Statement::Begin);
    }
    if c.eat("ROLLBACK") {
        work(c);
        return Ok(Statement::Rollback);
    }
    c.expect("COMMIT")?;
    work(c);
    let message = match &c.p.peek_token_ref().token {
        Token::SingleQuotedString(s) => Some(s.clone()),
        _ => None,
    };
    if message.is_some() {
        c.p.next_token();
    }
    Ok(Statement::Commit { message })
}
