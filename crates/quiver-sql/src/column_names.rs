//! Result column names as other engines give them.
//!
//! DataFusion names an unaliased projection after its logical expression: `SELECT 1` gives a
//! column `Int64(1)`, `SELECT sum(score)` one named `sum(demo.score)`. SQLite, DuckDB and
//! PostgreSQL-style clients (BI tools show these names as headers) expect the SQL text of
//! the expression: `1`, `sum(score)`. Before a query is planned, [`name_result_columns`]
//! gives every unaliased expression of the query's *outermost* projection an alias: its own
//! text as sqlparser prints it (the statement as written, with keyword case and spacing
//! normalized). Aliases the user wrote stay as they are; plain column references
//! (`class`, `d.class`) keep the column's name, as they already do; a name two items
//! would share is left to DataFusion, which keeps the projection's names unique.
//!
//! The implicit key columns of a table created without a full primary key
//! (`_quiver_row_id`, `_quiver_label`: [`quiver_core::conform`]) are not the table's
//! columns as the client created them: like PostgreSQL's system columns they are left out
//! of `SELECT *` ([`hide_implicit_keys`]) and of positional `INSERT … VALUES`, and stay
//! readable by name.

use std::collections::HashMap;

use datafusion::common::Result as DfResult;
use datafusion::logical_expr::{Expr as LogicalExpr, LogicalPlan, LogicalPlanBuilder};
use datafusion::sql::sqlparser::ast::{Expr, Ident, Query, SelectItem, SetExpr};
use quiver_core::conform::{IMPLICIT_LABEL, IMPLICIT_ROW_ID};

/// Whether `name` is one of the implicit key columns of a keyless table.
pub fn is_implicit_key(name: &str) -> bool {
    name == IMPLICIT_ROW_ID || name == IMPLICIT_LABEL
}

/// Whether the implicit key columns in `query`'s result come only from a wildcard: its
/// outermost projection has a `*` and names neither implicit column itself.
pub fn wildcard_result(query: &Query) -> bool {
    let Some(items) = outermost_projection_ref(&query.body) else {
        return false;
    };
    let wildcard = items.iter().any(|i| {
        matches!(
            i,
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)
        )
    });
    // a name check on the statement's own text, to keep what the user asked for by name
    let named = items.iter().any(|i| {
        let text = i.to_string();
        text.contains(IMPLICIT_ROW_ID) || text.contains(IMPLICIT_LABEL)
    });
    wildcard && !named
}

/// `plan` without the implicit key columns in its result, when a wildcard brought them in
/// ([`wildcard_result`]): `SELECT *` gives the columns the table was created with.
pub fn hide_implicit_keys(plan: LogicalPlan) -> DfResult<LogicalPlan> {
    let schema = plan.schema().clone();
    let keep: Vec<LogicalExpr> = schema
        .iter()
        .filter(|(_, f)| !is_implicit_key(f.name()))
        .map(LogicalExpr::from)
        .collect();
    if keep.len() == schema.fields().len() || keep.is_empty() {
        return Ok(plan);
    }
    LogicalPlanBuilder::from(plan).project(keep)?.build()
}

fn outermost_projection_ref(body: &SetExpr) -> Option<&Vec<SelectItem>> {
    match body {
        SetExpr::Select(s) => Some(&s.projection),
        SetExpr::Query(q) => outermost_projection_ref(&q.body),
        SetExpr::SetOperation { left, .. } => outermost_projection_ref(left),
        _ => None,
    }
}

/// Alias each unaliased, non-column expression of `query`'s result columns by its SQL text
/// (see the module docs). For a set operation (`UNION`, …) the names come from its first
/// branch, as in every engine.
pub fn name_result_columns(query: &mut Query) {
    let Some(items) = outermost_projection(&mut query.body) else {
        return;
    };
    let named: Vec<Option<String>> = items.iter().map(result_name).collect();
    let mut uses: HashMap<&str, usize> = HashMap::new();
    for n in named.iter().flatten() {
        *uses.entry(n.as_str()).or_default() += 1;
    }
    let renames: Vec<Option<String>> = items
        .iter()
        .zip(&named)
        .map(|(item, name)| match (item, name) {
            (SelectItem::UnnamedExpr(e), Some(n)) if !is_column(e) && uses[n.as_str()] == 1 => {
                Some(n.clone())
            }
            _ => None,
        })
        .collect();
    for (item, rename) in items.iter_mut().zip(renames) {
        let Some(alias) = rename else { continue };
        if let SelectItem::UnnamedExpr(e) = item {
            let expr =
                std::mem::replace(e, Expr::value(datafusion::sql::sqlparser::ast::Value::Null));
            *item = SelectItem::ExprWithAlias {
                expr,
                // quoted: kept exactly, never case-normalized
                alias: Ident::with_quote('"', alias),
            };
        }
    }
}

/// The projection whose names the result carries.
fn outermost_projection(body: &mut SetExpr) -> Option<&mut Vec<SelectItem>> {
    match body {
        SetExpr::Select(s) => Some(&mut s.projection),
        SetExpr::Query(q) => outermost_projection(&mut q.body),
        SetExpr::SetOperation { left, .. } => outermost_projection(left),
        _ => None,
    }
}

/// A column reference: DataFusion already names it after the column.
fn is_column(e: &Expr) -> bool {
    matches!(e, Expr::Identifier(_) | Expr::CompoundIdentifier(_))
}

/// The name an item's column gets (None for wildcards: not known before planning).
fn result_name(item: &SelectItem) -> Option<String> {
    match item {
        SelectItem::UnnamedExpr(Expr::Identifier(i)) => Some(i.value.clone()),
        SelectItem::UnnamedExpr(Expr::CompoundIdentifier(parts)) => {
            parts.last().map(|i| i.value.clone())
        }
        SelectItem::UnnamedExpr(e) => Some(e.to_string()),
        SelectItem::ExprWithAlias { alias, .. } => Some(alias.value.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn named(sql: &str) -> String {
        let mut st = Parser::parse_sql(&GenericDialect {}, sql).expect("parse");
        let datafusion::sql::sqlparser::ast::Statement::Query(q) = &mut st[0] else {
            panic!("not a query: {sql}")
        };
        name_result_columns(q);
        st[0].to_string()
    }

    fn wildcard(sql: &str) -> bool {
        let st = Parser::parse_sql(&GenericDialect {}, sql).expect("parse");
        let datafusion::sql::sqlparser::ast::Statement::Query(q) = &st[0] else {
            panic!("not a query: {sql}")
        };
        wildcard_result(q)
    }

    #[test]
    fn implicit_keys_are_hidden_only_when_a_wildcard_brings_them() {
        assert!(wildcard("SELECT * FROM t"));
        assert!(wildcard("SELECT t.* FROM t JOIN u ON t.a = u.a"));
        assert!(wildcard("SELECT * FROM a UNION ALL SELECT * FROM b"));
        assert!(!wildcard("SELECT a, b FROM t"));
        assert!(!wildcard("SELECT *, _quiver_row_id FROM t"));
        assert!(!wildcard("SELECT count(DISTINCT _quiver_row_id) FROM t"));
    }

    #[test]
    fn unaliased_expressions_are_named_by_their_text() {
        assert_eq!(named("SELECT 1"), r#"SELECT 1 AS "1""#);
        assert_eq!(
            named("select count(*), class from d group by class"),
            r#"SELECT count(*) AS "count(*)", class FROM d GROUP BY class"#
        );
        // aliases and column references stay; names from the first branch of a UNION
        assert_eq!(
            named("SELECT a + 1 AS x, d.b FROM d UNION ALL SELECT 2, 3"),
            "SELECT a + 1 AS x, d.b FROM d UNION ALL SELECT 2, 3"
        );
        assert_eq!(
            named("(SELECT sum(score) FROM d) UNION SELECT 1"),
            r#"(SELECT sum(score) AS "sum(score)" FROM d) UNION SELECT 1"#
        );
        // a name two items would share is left alone; subqueries are not the result's
        assert_eq!(named("SELECT 1, 1"), "SELECT 1, 1");
        assert_eq!(named("SELECT 1 AS \"2\", 2"), "SELECT 1 AS \"2\", 2");
        assert_eq!(
            named("SELECT * FROM (SELECT 1) t"),
            "SELECT * FROM (SELECT 1) t"
        );
    }
}
