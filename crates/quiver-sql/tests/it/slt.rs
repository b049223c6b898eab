//! Runs every `sql/*.slt` file of the workspace, each against a fresh temporary catalog.
//!
//! Statements that produce rows (SELECT, SHOW, DIFF, EXPLAIN, VALUES, WITH) are `query`
//! records; everything else (DDL, DML, BEGIN/COMMIT, …) is a `statement` record, and DML
//! reports the number of rows written as the statement count.

use std::path::PathBuf;

use datafusion::arrow::array::{Array, RecordBatch, UInt64Array};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use quiver_core::Catalog;
use quiver_sql::context::QuiverContext;
use quiver_sql::SqlError;
use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType};

struct QuiverDb {
    ctx: QuiverContext,
    _dir: tempfile::TempDir,
}

fn cell(a: &dyn Array, row: usize) -> String {
    if a.is_null(row) {
        return "NULL".into();
    }
    let opts = FormatOptions::default();
    match ArrayFormatter::try_new(a, &opts) {
        Ok(f) => {
            let s = f.value(row).to_string();
            if s.is_empty() {
                "(empty)".into()
            } else {
                s
            }
        }
        Err(e) => format!("<{e}>"),
    }
}

fn rows(batches: &[RecordBatch]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for b in batches {
        for r in 0..b.num_rows() {
            out.push(b.columns().iter().map(|c| cell(c.as_ref(), r)).collect());
        }
    }
    out
}

/// Whether `sql` answers with a table (a `query` record) rather than a confirmation (a
/// `statement` record), decided on the parsed statement.
fn is_query(sql: &str) -> bool {
    quiver_sql::parser::parse_statement(sql).is_ok_and(|st| st.returns_rows())
}

#[async_trait::async_trait]
impl AsyncDB for QuiverDb {
    type Error = SqlError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SqlError> {
        let batches = self.ctx.sql(sql).await?;
        if is_query(sql) {
            let types = batches
                .first()
                .map(|b| {
                    b.schema()
                        .fields()
                        .iter()
                        .map(|f| column_type(f.data_type()))
                        .collect()
                })
                .unwrap_or_default();
            return Ok(DBOutput::Rows {
                types,
                rows: rows(&batches),
            });
        }
        let count = batches
            .first()
            .filter(|b| b.num_columns() == 1 && b.schema().field(0).name() == "count")
            .and_then(|b| {
                b.column(0)
                    .as_any()
                    .downcast_ref::<UInt64Array>()
                    .map(|a| a.value(0))
            })
            .unwrap_or(0);
        Ok(DBOutput::StatementComplete(count))
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "quiver"
    }

    async fn sleep(dur: std::time::Duration) {
        tokio::time::sleep(dur).await;
    }
}

/// The sqllogictest type of a result column: `I` integers, `R` floating point and
/// decimals, `T` strings, times and everything else (booleans match any letter).
fn column_type(dt: &DataType) -> DefaultColumnType {
    if dt.is_integer() {
        DefaultColumnType::Integer
    } else if dt.is_floating() || matches!(dt, DataType::Decimal128(..) | DataType::Decimal256(..))
    {
        DefaultColumnType::FloatingPoint
    } else if *dt == DataType::Boolean {
        DefaultColumnType::Any
    } else {
        DefaultColumnType::Text
    }
}

/// The column letters of a `query` record must match the result's column types (`?` and
/// booleans match anything); a result with no batches carries no types to check.
#[allow(clippy::ptr_arg)] // the signature sqllogictest's ColumnTypeValidator takes
fn columns_match(actual: &Vec<DefaultColumnType>, expected: &Vec<DefaultColumnType>) -> bool {
    actual.is_empty()
        || (actual.len() == expected.len()
            && actual.iter().zip(expected).all(|(a, e)| {
                a == e || *a == DefaultColumnType::Any || *e == DefaultColumnType::Any
            }))
}

/// Compare result rows with expected lines; in an expected line `<id>` matches a commit
/// id (hex, at least 12 characters) and `<any>` matches one cell without spaces.
///
/// When every expected line starts with `~ `, the lines are fragments that must appear, in
/// this order, in the result's text (rows joined by newlines): how `EXPLAIN` output is
/// asserted without pinning every line of a plan.
fn validate(_norm: sqllogictest::Normalizer, actual: &[Vec<String>], expected: &[String]) -> bool {
    if !expected.is_empty() && expected.iter().all(|l| l.starts_with("~ ")) {
        let text = actual
            .iter()
            .map(|r| r.join(" "))
            .collect::<Vec<_>>()
            .join("\n");
        let mut pos = 0;
        return expected.iter().all(|l| match text[pos..].find(&l[2..]) {
            Some(i) => {
                pos += i + l.len() - 2;
                true
            }
            None => false,
        });
    }
    if actual.len() != expected.len() {
        return false;
    }
    actual.iter().zip(expected).all(|(row, line)| {
        let got = row.join(" ");
        if !line.contains("<id>") && !line.contains("<any>") {
            return got.trim() == line.trim();
        }
        // match cell by cell: the placeholders stand for whole cells
        let exp: Vec<&str> = line.split(' ').collect();
        let mut cells = row.iter().flat_map(|c| {
            if c.contains(' ') && !c.chars().all(|ch| ch.is_ascii_hexdigit()) {
                c.split(' ').map(str::to_string).collect::<Vec<_>>()
            } else {
                vec![c.clone()]
            }
        });
        let mut ok = true;
        let mut n = 0;
        for e in &exp {
            let Some(c) = cells.next() else { return false };
            n += 1;
            ok &= match *e {
                "<id>" => c.len() >= 12 && c.chars().all(|ch| ch.is_ascii_hexdigit() || ch == ','),
                "<any>" => true,
                _ => c == *e,
            };
        }
        ok && cells.next().is_none() && n == exp.len()
    })
}

fn slt_files() -> Vec<PathBuf> {
    // Cargo sets CARGO_MANIFEST_DIR when it runs the test; prefer that over the path baked
    // in at compile time, which is stale when a cached target dir is reused by a clone at
    // another path (cargo does not rebuild for a moved workspace).
    let manifest = std::env::var("CARGO_MANIFEST_DIR")
        .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string());
    let dir = PathBuf::from(manifest).join("../../sql");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("sql/ directory {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "slt"))
        // QUIVER_SLT=as_of runs only the files whose name holds "as_of"
        .filter(|p| match std::env::var("QUIVER_SLT") {
            Ok(only) => p.to_string_lossy().contains(&only),
            Err(_) => true,
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .slt files in {}", dir.display());
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqllogictest_files() {
    let files = slt_files();
    assert!(!files.is_empty(), "no .slt files found");
    let mut failures = Vec::new();
    for file in files {
        let mut runner = sqllogictest::Runner::new(|| async {
            let dir = tempfile::tempdir().map_err(|e| SqlError::Unsupported(e.to_string()))?;
            let cat = Catalog::open(dir.path().to_str().unwrap_or_default()).await?;
            let ctx = QuiverContext::new(cat).await?;
            Ok(QuiverDb { ctx, _dir: dir })
        });
        runner.with_column_validator(columns_match);
        runner.with_validator(validate);
        if let Err(e) = runner.run_file_async(&file).await {
            failures.push(format!("{}:\n{e}", file.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
