//! Datasets: creating one with a key.
//!
//! ```text
//! CREATE DATASET name (column_definition [, …]) KEY (group_column, label_column)
//! ```
//!
//! `CREATE TABLE … PRIMARY KEY (group, label)` and `DROP TABLE` are parsed by DataFusion's
//! parser and typed in [`crate::table_ddl`].

use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::Token;

use super::cursor::Cursor;
use super::Statement;
use crate::error::Result;

/// `CREATE DATASET` (the cursor is on `CREATE`).
pub(super) fn parse_create_dataset(c: &mut Cursor) -> Result<Statement> {
    c.expect("CREATE")?;
    c.expect("DATASET")?;
    let name = c.name("a dataset name")?;
    c.expect_token(
        Token::LParen,
        "CREATE DATASET: expected '(' and a column list",
    )?;
    let columns = c.sql(|p| p.parse_comma_separated(Parser::parse_column_def))?;
    c.expect_token(
        Token::RParen,
        "CREATE DATASET: expected ')' after the columns",
    )?;
    c.expect("KEY")?;
    let usage = "CREATE DATASET: expected KEY (group_column, label_column)";
    c.expect_token(Token::LParen, usage)?;
    let group_key = c.name("the group key column")?;
    c.expect_token(Token::Comma, usage)?;
    let label_key = c.name("the label key column")?;
    c.expect_token(
        Token::RParen,
        "CREATE DATASET: expected ')' after the key columns",
    )?;
    Ok(Statement::CreateDataset {
        name,
        columns,
        group_key,
        label_key,
    })
}
