//! What a SQL statement may do, decided on its parsed form, and how big it may be.
//!
//! Every statement that is not one of Quiver's own extensions reaches DataFusion, whose
//! default session would run `COPY … TO 'any/path'`, `CREATE EXTERNAL TABLE`, `SET` and
//! `PREPARE`. A Quiver session runs only two kinds of DataFusion statements:
//!
//! * **queries** (`SELECT`, `WITH … SELECT`, `VALUES`, `SHOW TABLES`, `EXPLAIN [ANALYZE]` of a
//!   query): planned with [`query_options`] (DDL, DML and statements off), so even a plan
//!   that slipped past the classification cannot write;
//! * **DML** on datasets (`INSERT`, `UPDATE`, `DELETE`): run by Quiver's write path, one
//!   commit per statement or transaction.
//!
//! Everything else is refused before planning, for every caller: `COPY` (export is
//! `quiver export` or a Flight DoGet), `CREATE EXTERNAL TABLE`/`CREATE TABLE`/`CREATE VIEW`
//! (datasets are created with `CREATE DATASET`), `SET`/`RESET`, `PREPARE`/`EXECUTE` (Flight
//! SQL clients prepare through the protocol), and any DML nested in a query or an `EXPLAIN`.
//! The decision is made on the AST ([`classify`]), never on the first word of the text, so
//! comments, parentheses, CTEs and `EXPLAIN ANALYZE` cannot disguise a write.
//!
//! [`SqlLimits`] bounds a statement before DataFusion plans it: its length in bytes, the
//! nesting depth of its expressions and their number. A 1,000-term `OR` chain is a
//! 1,000-deep tree that recursive planning code walks; DataFusion's recursion protection
//! grows the stack of its own passes, and these limits bound the rest (and every pass's
//! time and memory).

use std::ops::ControlFlow;

use datafusion::execution::context::SQLOptions;
use datafusion::sql::parser::{DFParserBuilder, Statement as DfStatement};
use datafusion::sql::sqlparser::ast::{Expr, Statement as SqlStatement, Visit, Visitor};
use datafusion::sql::sqlparser::dialect::GenericDialect;

use crate::error::{Result, SqlError};

/// Bounds on one statement, checked before it is planned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqlLimits {
    /// Longest statement or script text, in bytes.
    pub max_statement_bytes: usize,
    /// Deepest nesting of expressions (`a OR b OR c` nests one level per `OR`).
    pub max_expr_depth: usize,
    /// Most expression nodes in one statement.
    pub max_expr_nodes: usize,
}

impl Default for SqlLimits {
    fn default() -> Self {
        SqlLimits {
            max_statement_bytes: 1 << 20,
            max_expr_depth: 1_024,
            max_expr_nodes: 200_000,
        }
    }
}

/// The kinds of standard SQL statement a Quiver session runs.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlKind {
    /// A read: planned lazily with [`query_options`].
    Query,
    /// `INSERT`, `UPDATE` or `DELETE` on a dataset: a write.
    Dml,
    /// `CREATE TABLE` / `DROP TABLE`, typed ([`crate::table_ddl`]): writes.
    TableDdl(Box<crate::parser::Statement>),
}

/// DataFusion options for queries: no DDL, no DML (including `COPY`), no statements
/// (`SET`, `PREPARE`, transactions). A second line of defence behind [`classify`].
pub fn query_options() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}

/// Fail when `text` is longer than the limit.
pub fn check_size(text: &str, what: &str, limits: &SqlLimits) -> Result<()> {
    if text.len() > limits.max_statement_bytes {
        return Err(SqlError::Limit(format!(
            "{what} is {} bytes; the limit is {} bytes (server option --max-statement-bytes)",
            text.len(),
            limits.max_statement_bytes
        )));
    }
    Ok(())
}

/// Stack of the thread that parses and measures a statement. The checks run before any
/// depth is known: parsing, walking and dropping a syntax tree are recursive, and a
/// statement within `max_statement_bytes` can nest about one level per four bytes. The
/// memory is reserved, not used, until a deep statement touches it.
const CHECK_STACK_BYTES: usize = 512 << 20;

/// A job for a checker thread.
type CheckJob = Box<dyn FnOnce() + Send + 'static>;

/// Long-lived threads with [`CHECK_STACK_BYTES`] stacks that parse and measure statements:
/// starting such a thread per statement (a 512 MiB mapping, a clone, an unmapping) cost
/// more than parsing a short statement. One per core, started on first use; a job runs
/// on whichever is free.
struct Checkers {
    jobs: std::sync::mpsc::Sender<CheckJob>,
}

static CHECKERS: std::sync::LazyLock<std::result::Result<Checkers, String>> =
    std::sync::LazyLock::new(|| {
        let (tx, rx) = std::sync::mpsc::channel::<CheckJob>();
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        let n = std::thread::available_parallelism().map_or(2, |n| n.get());
        for i in 0..n {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("quiver-sql-check-{i}"))
                .stack_size(CHECK_STACK_BYTES)
                .spawn(move || loop {
                    let job = match rx.lock() {
                        Ok(r) => r.recv(),
                        Err(_) => return,
                    };
                    match job {
                        // a panicking check must not take the thread down with it
                        Ok(job) => {
                            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                        }
                        Err(_) => return,
                    }
                })
                .map_err(|e| format!("cannot start the statement checker: {e}"))?;
        }
        Ok(Checkers { jobs: tx })
    });

/// Run `f` on a checker thread (a [`CHECK_STACK_BYTES`] stack) and wait for it.
pub(crate) fn on_big_stack<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let checkers = CHECKERS.as_ref().map_err(|e| SqlError::Limit(e.clone()))?;
    let (done, result) = std::sync::mpsc::sync_channel(1);
    let job: CheckJob = Box::new(move || {
        let _ = done.send(f());
    });
    let failed =
        || SqlError::Limit("the statement could not be checked (checker thread failed)".into());
    checkers.jobs.send(job).map_err(|_| failed())?;
    // a job that panicked drops its sender without sending
    result.recv().map_err(|_| failed())?
}

/// Parse one DataFusion statement and decide what it is; refuse what a session never runs.
/// Runs on a large-stack thread, so no text within the size limit can overflow a stack.
pub fn classify(sql: &str, limits: &SqlLimits) -> Result<SqlKind> {
    check_size(sql, "the statement", limits)?;
    let (sql, limits) = (sql.to_owned(), *limits);
    on_big_stack(move || classify_checked(&sql, &limits))
}

fn classify_checked(sql: &str, limits: &SqlLimits) -> Result<SqlKind> {
    let dialect = GenericDialect {};
    let mut parser = DFParserBuilder::new(sql)
        .with_dialect(&dialect)
        .build()
        .map_err(|e| SqlError::Parse(plain_parse_error(e)))?;
    let mut statements = parser
        .parse_statements()
        .map_err(|e| SqlError::Parse(plain_parse_error(e)))?;
    let st = match (statements.pop_front(), statements.is_empty()) {
        (Some(st), true) => st,
        (None, _) => return Err(SqlError::Parse("empty statement".into())),
        _ => return Err(SqlError::Parse("expected one statement".into())),
    };
    kind_of(&st, limits)
}

/// What a parsed DataFusion statement is; refuse what a session never runs.
pub(crate) fn kind_of(st: &DfStatement, limits: &SqlLimits) -> Result<SqlKind> {
    kind_in(st, limits, false)
}

use crate::parser::plain_parse_error;

fn kind_in(st: &DfStatement, limits: &SqlLimits, explained: bool) -> Result<SqlKind> {
    match st {
        DfStatement::Statement(s) => {
            let shape = Shape::of(s, limits)?;
            match s.as_ref() {
                SqlStatement::Query(_)
                | SqlStatement::ShowTables { .. }
                | SqlStatement::ShowColumns { .. }
                | SqlStatement::ShowFunctions { .. }
                | SqlStatement::ShowVariable { .. }
                | SqlStatement::ExplainTable { .. }
                    if !shape.nested_write =>
                {
                    Ok(SqlKind::Query)
                }
                SqlStatement::Explain { statement, .. } => {
                    let inner = DfStatement::Statement(statement.clone());
                    kind_in(&inner, limits, true)
                }
                SqlStatement::Insert(_) | SqlStatement::Update(_) | SqlStatement::Delete(_)
                    if !explained =>
                {
                    Ok(SqlKind::Dml)
                }
                SqlStatement::Insert(_) | SqlStatement::Update(_) | SqlStatement::Delete(_) => {
                    Err(refused(
                        "EXPLAIN of INSERT, UPDATE or DELETE",
                        "run the statement itself; it commits as one version",
                    ))
                }
                SqlStatement::Query(_) => Err(refused(
                    "a write nested in a query",
                    "run INSERT, UPDATE or DELETE as statements of their own",
                )),
                table if !explained && crate::table_ddl::handles(table) => Ok(SqlKind::TableDdl(
                    Box::new(crate::table_ddl::convert(table)?),
                )),
                other => Err(refused_statement(other)),
            }
        }
        DfStatement::Explain(e) => kind_in(&e.statement, limits, true),
        DfStatement::CopyTo(_) => Err(refused(
            "COPY",
            "export with `quiver export` or read results over Flight (DoGet)",
        )),
        DfStatement::CreateExternalTable(_) => Err(refused(
            "CREATE EXTERNAL TABLE",
            "import files with `quiver import`; datasets are created with CREATE DATASET",
        )),
        DfStatement::Reset(_) => Err(refused("RESET", "session settings are fixed")),
    }
}

fn refused(what: &str, instead: &str) -> SqlError {
    SqlError::Unsupported(format!("{what} is not allowed in Quiver SQL: {instead}"))
}

fn refused_statement(st: &SqlStatement) -> SqlError {
    let (what, instead) = match st {
        SqlStatement::CreateTable(_) => ("EXPLAIN CREATE TABLE", "run CREATE TABLE itself"),
        SqlStatement::CreateView(_) => (
            "CREATE VIEW",
            "tables are datasets, created with CREATE TABLE name (columns, PRIMARY KEY \
             (group, label)) or CREATE DATASET name (columns) KEY (group, label)",
        ),
        SqlStatement::Drop { .. } | SqlStatement::Truncate(_) => (
            "DROP / TRUNCATE",
            "drop datasets with DROP TABLE, branches and tags with DROP BRANCH / DROP TAG; \
             delete rows with DELETE",
        ),
        SqlStatement::Set(_) => ("SET", "session settings are fixed by the server"),
        SqlStatement::Prepare { .. }
        | SqlStatement::Execute { .. }
        | SqlStatement::Deallocate { .. } => (
            "PREPARE / EXECUTE",
            "prepare statements through your Flight SQL driver",
        ),
        SqlStatement::Copy { .. } => (
            "COPY",
            "export with `quiver export` or read results over Flight (DoGet)",
        ),
        _ => (
            "this statement",
            "Quiver runs queries, INSERT/UPDATE/DELETE and its own statements (see sql/*.slt)",
        ),
    };
    let text: String = st.to_string().chars().take(60).collect();
    SqlError::Unsupported(format!(
        "{what} is not allowed in Quiver SQL ('{text}…'): {instead}"
    ))
}

/// What a walk over a statement's AST found.
#[derive(Debug, Default)]
struct Shape {
    depth: usize,
    nodes: usize,
    /// A statement other than a query nested anywhere below the top (`WITH … INSERT`,
    /// `SELECT … FROM (INSERT …)`).
    nested_write: bool,
    statements: usize,
}

impl Shape {
    fn of(st: &SqlStatement, limits: &SqlLimits) -> Result<Shape> {
        let mut walk = Walk {
            shape: Shape::default(),
            limits,
        };
        if let ControlFlow::Break(e) = st.visit(&mut walk) {
            return Err(e);
        }
        Ok(walk.shape)
    }
}

struct Walk<'a> {
    shape: Shape,
    limits: &'a SqlLimits,
}

impl Visitor for Walk<'_> {
    type Break = SqlError;

    fn pre_visit_statement(&mut self, st: &SqlStatement) -> ControlFlow<SqlError> {
        self.shape.statements += 1;
        if self.shape.statements > 1 && !matches!(st, SqlStatement::Query(_)) {
            self.shape.nested_write = true;
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, _: &Expr) -> ControlFlow<SqlError> {
        self.shape.depth += 1;
        self.shape.nodes += 1;
        if self.shape.depth > self.limits.max_expr_depth {
            return ControlFlow::Break(SqlError::Limit(format!(
                "expressions nest deeper than {} levels (server option --max-expr-depth); \
                 write long OR chains as `col IN (…)`",
                self.limits.max_expr_depth
            )));
        }
        if self.shape.nodes > self.limits.max_expr_nodes {
            return ControlFlow::Break(SqlError::Limit(format!(
                "the statement has more than {} expression nodes (server option --max-expr-nodes)",
                self.limits.max_expr_nodes
            )));
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, _: &Expr) -> ControlFlow<SqlError> {
        self.shape.depth -= 1;
        ControlFlow::Continue(())
    }
}

/// Check a predicate or expression text (a trainer read's `filter`) against the limits
/// before DataFusion parses and plans it.
pub fn check_expr(text: &str, limits: &SqlLimits) -> Result<()> {
    check_size(text, "the expression", limits)?;
    let (text, limits) = (text.to_owned(), *limits);
    on_big_stack(move || check_expr_checked(&text, &limits))
}

fn check_expr_checked(text: &str, limits: &SqlLimits) -> Result<()> {
    let dialect = GenericDialect {};
    let mut parser = DFParserBuilder::new(text)
        .with_dialect(&dialect)
        .build()
        .map_err(|e| SqlError::Parse(plain_parse_error(e)))?;
    let expr = parser
        .parse_expr()
        .map_err(|e| SqlError::Parse(plain_parse_error(e)))?;
    let mut walk = Walk {
        shape: Shape::default(),
        limits,
    };
    if let ControlFlow::Break(e) = expr.expr.visit(&mut walk) {
        return Err(e);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(sql: &str) -> Result<SqlKind> {
        classify(sql, &SqlLimits::default())
    }

    #[test]
    fn queries_and_dml_are_told_apart_on_the_ast() {
        for q in [
            "SELECT 1",
            "  ( SELECT 1 )",
            "/* INSERT */ SELECT * FROM t",
            "WITH x AS (SELECT 1) SELECT * FROM x",
            "VALUES (1), (2)",
            "EXPLAIN SELECT 1",
            "EXPLAIN ANALYZE SELECT 1",
            "SHOW TABLES",
            "SHOW datafusion.execution.batch_size",
            "DESCRIBE t",
        ] {
            assert_eq!(kind(q).ok(), Some(SqlKind::Query), "{q}");
        }
        for d in [
            "INSERT INTO t VALUES (1)",
            "/* SELECT */ DELETE FROM t WHERE a = 1",
            "UPDATE t SET a = 1",
            "INSERT/**/INTO t SELECT * FROM u",
        ] {
            assert_eq!(kind(d).ok(), Some(SqlKind::Dml), "{d}");
        }
    }

    #[test]
    fn host_and_session_statements_are_refused() {
        for s in [
            "COPY (SELECT 1) TO 'out.csv'",
            "EXPLAIN ANALYZE COPY (SELECT 1) TO 'out.csv'",
            "EXPLAIN COPY (SELECT 1) TO 'out.csv'",
            "EXPLAIN INSERT INTO t VALUES (1)",
            "EXPLAIN ANALYZE DELETE FROM t",
            "CREATE EXTERNAL TABLE x STORED AS CSV LOCATION '/etc/passwd'",
            "CREATE TABLE x AS SELECT 1",
            "EXPLAIN CREATE TABLE x (a INT, b INT, PRIMARY KEY (a, b))",
            "CREATE VIEW v AS SELECT 1",
            "DROP VIEW v",
            "DROP TABLE t CASCADE",
            "EXPLAIN DROP TABLE t",
            "SET datafusion.execution.batch_size = 1",
            "RESET datafusion.execution.batch_size",
            "PREPARE p AS SELECT 1",
            "EXECUTE p",
            "WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x",
            "TRUNCATE t",
        ] {
            match kind(s) {
                Err(SqlError::Unsupported(_)) | Err(SqlError::Parse(_)) => {}
                other => panic!("{s}: {other:?}"),
            }
        }
    }

    #[test]
    fn deep_and_large_statements_are_refused_before_planning() {
        let limits = SqlLimits::default();
        let ors = |n: usize| {
            (0..n)
                .map(|i| format!("a = {i}"))
                .collect::<Vec<_>>()
                .join(" OR ")
        };
        assert!(classify(&format!("SELECT * FROM t WHERE {}", ors(500)), &limits).is_ok());
        let deep = format!("SELECT * FROM t WHERE {}", ors(5_000));
        assert!(matches!(classify(&deep, &limits), Err(SqlError::Limit(_))));
        assert!(matches!(
            check_expr(&ors(5_000), &limits),
            Err(SqlError::Limit(_))
        ));
        assert!(check_expr(&ors(100), &limits).is_ok());
        let big = format!("SELECT '{}'", "x".repeat(limits.max_statement_bytes));
        assert!(matches!(classify(&big, &limits), Err(SqlError::Limit(_))));
        let small = SqlLimits {
            max_expr_nodes: 10,
            ..limits
        };
        assert!(matches!(
            classify("SELECT 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11", &small),
            Err(SqlError::Limit(_))
        ));
    }
}
