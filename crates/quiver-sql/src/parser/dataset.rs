//! Datasets: creating one with a key, dropping one, listing them.
//!
//! ```text
//! CREATE DATASET name (column_definition [, …]) KEY (group_column, label_column)
//! DROP DATASET [IF EXISTS] name [, …]      -- the same as DROP TABLE
//! SHOW DATASETS                            -- the rows of quiver.datasets
//! ```
//!
//! A dropped dataset's refs and configuration go at once; its data objects stay until
//! `quiver gc` / `VACUUM` collects them.
//!
//! `CREATE TABLE … PRIMARY KEY (group, label)` and `DROP TABLE` are parsed by DataFusion's
//! parser and typed in [`crate::table_ddl`].

use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::Token;

use super::cursor::Cursor;
use super::Statement;
use crate::error::Result;

/// `DROP DATASET` (typed as `DROP TABLE`) or `SHOW DATASETS`.
pub(super) fn parse_drop_or_show(c: &mut Cursor) -> Result<Statement> {
    if c.eat_all(&["SHOW", "DATASETS"]) {
        return Ok(Statement::ShowDatasets);
    }
    c.expect("DROP")?;
    c.expect("DATASET")?;
    let if_exists = c.eat_all(&["IF", "EXISTS"]);
    let mut names = vec![c.name("a dataset name")?];
    while c.p.consume_token(&Token::Comma) {
        names.push(c.name("a dataset name")?);
    }
    Ok(Statement::DropTable { names, if_exists })
}

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
