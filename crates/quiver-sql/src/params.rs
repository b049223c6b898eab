//! Statements with rows of parameters (`$1, $2, …`), as Flight SQL drivers bind them to
//! prepared statements: `executemany`, JDBC batches, ADBC `bind` of a record batch.
//!
//! - A **query** runs once per row of parameters; the results are concatenated
//!   (`UNION ALL`), as ADBC specifies for a query bound to several rows.
//! - An **`INSERT`/`UPDATE`/`DELETE`** runs once per row inside one transaction, so all rows
//!   land as **one commit**. Each row's values are bound into the statement's AST (literals
//!   replacing the placeholders, rendered by DataFusion's unparser) and the bound statement
//!   goes through the session's own parser and checks, read-only refusals included. An
//!   `INSERT … VALUES (…placeholders…)` of one row template is bound to many rows at once:
//!   one `VALUES` list per [`INSERT_ROWS_PER_STATEMENT`] rows.

use std::ops::ControlFlow;

use datafusion::common::ScalarValue;
use datafusion::logical_expr::Expr as LogicalExpr;
use datafusion::sql::sqlparser::ast::{
    visit_expressions_mut, Expr, SetExpr, Statement as SqlStatement, Value,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;

use crate::error::{Result, SqlError};

/// Rows of one `INSERT … VALUES` bound into a single statement.
pub const INSERT_ROWS_PER_STATEMENT: usize = 1000;

/// The SQL literal of one parameter value.
fn literal(v: &ScalarValue) -> Result<Expr> {
    let unparser = datafusion::sql::unparser::Unparser::default();
    Ok(unparser.expr_to_sql(&LogicalExpr::Literal(v.clone(), None))?)
}

/// Replace placeholders `$1…$n` in `st` by the literals of `row` (1-based).
fn bind(st: &mut SqlStatement, row: &[Expr]) -> Result<()> {
    let flow = visit_expressions_mut(st, |e| {
        if let Expr::Value(v) = e {
            if let Value::Placeholder(p) = &v.value {
                let Some(i) = p.strip_prefix('$').and_then(|n| n.parse::<usize>().ok()) else {
                    return ControlFlow::Break(SqlError::Unsupported(format!(
                        "placeholder '{p}' (use ? or $1, $2, …)"
                    )));
                };
                let Some(value) = i.checked_sub(1).and_then(|i| row.get(i)) else {
                    return ControlFlow::Break(SqlError::Unsupported(format!(
                        "placeholder '{p}' has no value: {} parameter(s) bound per row",
                        row.len()
                    )));
                };
                *e = value.clone();
            }
        }
        ControlFlow::Continue(())
    });
    match flow {
        ControlFlow::Break(e) => Err(e),
        ControlFlow::Continue(()) => Ok(()),
    }
}

/// The statements that run a DML statement `sql` for every row of parameters, to be run
/// in one transaction (see the module docs).
pub fn bind_dml(sql: &str, rows: &[Vec<ScalarValue>]) -> Result<Vec<String>> {
    let mut parsed =
        Parser::parse_sql(&GenericDialect {}, sql).map_err(|e| SqlError::Parse(e.to_string()))?;
    let template = match (parsed.pop(), parsed.is_empty()) {
        (Some(s), true) => s,
        _ => return Err(SqlError::Parse("expected one statement".into())),
    };
    let literals = rows
        .iter()
        .map(|r| r.iter().map(literal).collect::<Result<Vec<_>>>())
        .collect::<Result<Vec<_>>>()?;
    // INSERT … VALUES (one row of placeholders): many rows in one statement
    if let SqlStatement::Insert(ins) = &template {
        if let Some(SetExpr::Values(v)) = ins.source.as_ref().map(|s| s.body.as_ref()) {
            if v.rows.len() == 1 {
                let mut out = Vec::new();
                for chunk in literals.chunks(INSERT_ROWS_PER_STATEMENT) {
                    let mut st = template.clone();
                    let mut bound_rows = Vec::with_capacity(chunk.len());
                    for row in chunk {
                        let mut one = template.clone();
                        bind(&mut one, row)?;
                        if let SqlStatement::Insert(i) = one {
                            if let Some(SetExpr::Values(v)) = i.source.map(|s| *s.body) {
                                bound_rows.extend(v.rows);
                            }
                        }
                    }
                    if let SqlStatement::Insert(i) = &mut st {
                        if let Some(src) = i.source.as_mut() {
                            if let SetExpr::Values(v) = src.body.as_mut() {
                                v.rows = bound_rows;
                            }
                        }
                    }
                    out.push(st.to_string());
                }
                return Ok(out);
            }
        }
    }
    literals
        .iter()
        .map(|row| {
            let mut st = template.clone();
            bind(&mut st, row)?;
            Ok(st.to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_rows_bind_into_one_values_list() {
        let rows = vec![
            vec![ScalarValue::from("a'b"), ScalarValue::Int64(Some(1))],
            vec![ScalarValue::from("c"), ScalarValue::Int64(None)],
        ];
        let out = bind_dml("INSERT INTO t (s, n) VALUES ($1, $2)", &rows).expect("bind");
        assert_eq!(
            out,
            ["INSERT INTO t (s, n) VALUES ('a''b', 1), ('c', NULL)"]
        );
        let many: Vec<Vec<ScalarValue>> = (0..2500)
            .map(|i| vec![ScalarValue::Int64(Some(i))])
            .collect();
        assert_eq!(
            bind_dml("INSERT INTO t VALUES ($1)", &many)
                .expect("bind")
                .len(),
            3
        );
    }

    #[test]
    fn other_statements_bind_once_per_row() {
        let rows = vec![
            vec![ScalarValue::from("x"), ScalarValue::Int64(Some(2))],
            vec![ScalarValue::from("y"), ScalarValue::Int64(Some(3))],
        ];
        let out = bind_dml("UPDATE t SET c = $1 WHERE id = $2", &rows).expect("bind");
        assert_eq!(
            out,
            [
                "UPDATE t SET c = 'x' WHERE id = 2",
                "UPDATE t SET c = 'y' WHERE id = 3"
            ]
        );
        // a string parameter stays a string: no SQL is injected through a value
        let evil = vec![vec![
            ScalarValue::from("1; DROP TABLE t"),
            ScalarValue::Int64(Some(1)),
        ]];
        let out = bind_dml("DELETE FROM t WHERE c = $1 AND id = $2", &evil).expect("bind");
        assert_eq!(
            out,
            ["DELETE FROM t WHERE c = '1; DROP TABLE t' AND id = 1"]
        );
        let err = bind_dml("DELETE FROM t WHERE id = $3", &rows).expect_err("missing");
        assert!(err.to_string().contains("'$3' has no value"), "{err}");
    }
}
