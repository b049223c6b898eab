//! `CREATE TABLE` and `DROP TABLE`, as SQL clients and BI tools send them, mapped onto
//! datasets with honest semantics.
//!
//! ```sql
//! CREATE TABLE [IF NOT EXISTS] name (col type [NOT NULL] [PRIMARY KEY], …
//!                                    [, PRIMARY KEY (group_col, label_col)])
//! DROP TABLE [IF EXISTS] name [, name …]
//! ```
//!
//! A table is a dataset: `CREATE TABLE` creates one keyed on its declared primary key —
//! two columns, the group key then the label key (as `CREATE DATASET … KEY (group, label)`);
//! key columns are `NOT NULL`. A table with a one-column primary key gets an implicit label
//! key `_quiver_label` (one label per group, 0 when not given); a table without a primary
//! key gets an implicit row key `_quiver_row_id` (a unique id generated for every row
//! written without one) and `_quiver_label`, so any table a client creates is versioned. `DROP TABLE` drops datasets
//! ([`quiver_core::Catalog::drop_dataset`]: refs and configuration go at once, data objects
//! stay until VACUUM/gc): a name that is not a dataset is `NOT_FOUND` unless `IF EXISTS`
//! is given, and every name is checked before any is dropped. System tables and
//! `"ds@ref"` names are not datasets and cannot be dropped.
//!
//! The statements are parsed by sqlparser (through DataFusion's parser) and converted here
//! into typed [`Statement::CreateTable`] / [`Statement::DropTable`]; both are writes
//! ([`Statement::is_write`]), refused to read-only sessions.

use datafusion::sql::sqlparser::ast::{
    ColumnDef, ColumnOption, ColumnOptionDef, CreateTable, CreateTableOptions, Expr, Ident,
    ObjectName, ObjectType, Statement as SqlStatement, TableConstraint,
};

use crate::error::{Result, SqlError};
use crate::parser::Statement;

/// The name a SQL identifier stands for: unquoted identifiers are lower-cased, as
/// DataFusion does for table and column names.
fn normalized(i: &Ident) -> String {
    if i.quote_style.is_some() {
        i.value.clone()
    } else {
        i.value.to_lowercase()
    }
}

/// The one-part name of a table in `CREATE TABLE` / `DROP TABLE`.
fn table_name(name: &ObjectName, what: &str) -> Result<String> {
    match name.0.as_slice() {
        [part] => {
            let n = part
                .as_ident()
                .map(normalized)
                .ok_or_else(|| unsupported(what, &format!("'{name}' is not a table name")))?;
            match n.split_once('@') {
                Some((ds, _)) => Err(unsupported(
                    what,
                    &format!(
                        "'{n}' names a version of dataset '{ds}', not a table: tables are \
                         whole datasets (tags and branches have DROP TAG / DROP BRANCH)"
                    ),
                )),
                None => Ok(n),
            }
        }
        _ => Err(unsupported(
            what,
            &format!(
                "'{name}' is not a dataset (system tables and other schemas cannot be \
                 created or dropped)"
            ),
        )),
    }
}

fn unsupported(what: &str, why: &str) -> SqlError {
    SqlError::Unsupported(format!("{what}: {why}"))
}

/// Whether a parsed statement is one this module handles.
pub(crate) fn handles(st: &SqlStatement) -> bool {
    matches!(
        st,
        SqlStatement::CreateTable(_)
            | SqlStatement::Drop {
                object_type: ObjectType::Table,
                ..
            }
    )
}

/// The typed statement of a `CREATE TABLE` or `DROP TABLE` (see the module docs).
pub(crate) fn convert(st: &SqlStatement) -> Result<Statement> {
    match st {
        SqlStatement::CreateTable(c) => create(c),
        SqlStatement::Drop {
            object_type: ObjectType::Table,
            if_exists,
            names,
            cascade,
            purge,
            temporary,
            ..
        } => {
            const WHAT: &str = "DROP TABLE";
            if *cascade || *purge || *temporary {
                return Err(unsupported(
                    WHAT,
                    "CASCADE, PURGE and TEMPORARY are not supported",
                ));
            }
            let names = names
                .iter()
                .map(|n| table_name(n, WHAT))
                .collect::<Result<Vec<_>>>()?;
            Ok(Statement::DropTable {
                names,
                if_exists: *if_exists,
            })
        }
        other => Err(SqlError::Unsupported(format!(
            "not a CREATE TABLE or DROP TABLE statement: {}",
            other.to_string().chars().take(60).collect::<String>()
        ))),
    }
}

fn create(c: &CreateTable) -> Result<Statement> {
    const WHAT: &str = "CREATE TABLE";
    let refuse = |feature: &str| {
        Err(unsupported(
            WHAT,
            &format!("{feature} is not supported (a table is a versioned dataset)"),
        ))
    };
    if c.or_replace {
        return refuse("OR REPLACE");
    }
    if c.temporary || c.external {
        return refuse("TEMPORARY / EXTERNAL");
    }
    if c.query.is_some() {
        return refuse("CREATE TABLE … AS SELECT");
    }
    if c.like.is_some() || c.clone.is_some() {
        return refuse("LIKE / CLONE");
    }
    if !matches!(c.table_options, CreateTableOptions::None)
        || c.location.is_some()
        || c.file_format.is_some()
        || c.partition_by.is_some()
        || c.order_by.is_some()
        || c.primary_key.is_some()
    {
        return refuse("table options, locations, formats and partitioning");
    }
    let name = table_name(&c.name, WHAT)?;
    if c.columns.is_empty() {
        return Err(unsupported(WHAT, "a table needs at least one column"));
    }
    // the primary key: a table constraint or column options (only one may be given)
    let mut key: Option<Vec<String>> = None;
    let mut set_key = |cols: Vec<String>| -> Result<()> {
        if key.replace(cols).is_some() {
            return Err(unsupported(WHAT, "more than one PRIMARY KEY"));
        }
        Ok(())
    };
    for constraint in &c.constraints {
        match constraint {
            TableConstraint::PrimaryKey(pk) => {
                let cols = pk
                    .columns
                    .iter()
                    .map(|ic| match &ic.column.expr {
                        Expr::Identifier(i) => Ok(normalized(i)),
                        other => Err(unsupported(
                            WHAT,
                            &format!("PRIMARY KEY lists columns, not '{other}'"),
                        )),
                    })
                    .collect::<Result<Vec<_>>>()?;
                set_key(cols)?;
            }
            other => {
                return Err(unsupported(
                    WHAT,
                    &format!("constraint '{other}' is not supported (only PRIMARY KEY)"),
                ))
            }
        }
    }
    let mut column_key = Vec::new();
    let mut columns = Vec::with_capacity(c.columns.len());
    for col in &c.columns {
        let mut options: Vec<ColumnOptionDef> = Vec::new();
        for o in &col.options {
            match &o.option {
                ColumnOption::PrimaryKey(_) => column_key.push(normalized(&col.name)),
                ColumnOption::Null | ColumnOption::NotNull => options.push(o.clone()),
                other => {
                    return Err(unsupported(
                        WHAT,
                        &format!(
                            "column option '{other}' of column '{}' is not supported \
                             (only NULL, NOT NULL and PRIMARY KEY)",
                            col.name
                        ),
                    ))
                }
            }
        }
        columns.push(ColumnDef {
            name: col.name.clone(),
            data_type: col.data_type.clone(),
            options,
        });
    }
    if !column_key.is_empty() {
        set_key(column_key)?;
    }
    let key = key.unwrap_or_default();
    // fewer than two key columns: implicit ones complete the key (their values are
    // generated when a row is written without them)
    let row_id = quiver_core::conform::IMPLICIT_ROW_ID;
    let label = quiver_core::conform::IMPLICIT_LABEL;
    let (group_key, label_key, implicit) = match key.as_slice() {
        [g, l] => (g.clone(), l.clone(), Vec::new()),
        [g] => (
            g.clone(),
            label.to_string(),
            vec![format!("{label} BIGINT NOT NULL")],
        ),
        [] => (
            row_id.to_string(),
            label.to_string(),
            vec![
                format!("{row_id} VARCHAR NOT NULL"),
                format!("{label} BIGINT NOT NULL"),
            ],
        ),
        _ => {
            return Err(unsupported(
                WHAT,
                &format!(
                    "PRIMARY KEY ({}) has {} columns; a dataset is keyed on at most two, \
                     (group key, label key) — e.g. PRIMARY KEY (sample_id, label_id)",
                    key.join(", "),
                    key.len()
                ),
            ));
        }
    };
    for col in &c.columns {
        let n = normalized(&col.name);
        if n == row_id || n == label {
            return Err(unsupported(
                WHAT,
                &format!("column name '{n}' is reserved for the implicit key of a table"),
            ));
        }
    }
    // key columns are NOT NULL, whatever the column says
    let mut rendered = Vec::with_capacity(columns.len());
    for mut col in columns {
        let n = normalized(&col.name);
        if n == group_key || n == label_key {
            if col
                .options
                .iter()
                .any(|o| matches!(o.option, ColumnOption::Null))
            {
                return Err(unsupported(
                    WHAT,
                    &format!("key column '{n}' cannot be NULL"),
                ));
            }
            if !col
                .options
                .iter()
                .any(|o| matches!(o.option, ColumnOption::NotNull))
            {
                col.options.push(ColumnOptionDef {
                    name: None,
                    option: ColumnOption::NotNull,
                });
            }
        }
        rendered.push(col.to_string());
    }
    rendered.extend(implicit.iter().cloned());
    for k in [&group_key, &label_key] {
        if k != row_id && k != label && !c.columns.iter().any(|col| &normalized(&col.name) == k) {
            return Err(unsupported(
                WHAT,
                &format!("PRIMARY KEY column '{k}' is not a column of table '{name}'"),
            ));
        }
    }
    Ok(Statement::CreateTable {
        name,
        columns: rendered.join(", "),
        group_key,
        label_key,
        if_not_exists: c.if_not_exists,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::parse_statement;

    #[test]
    fn create_table_with_a_two_column_key() {
        let st = parse_statement(
            "CREATE TABLE IF NOT EXISTS Boxes (sample_id VARCHAR, label_id BIGINT, \
             \"Class\" VARCHAR NULL, PRIMARY KEY (sample_id, label_id))",
        )
        .expect("parses");
        assert_eq!(
            st,
            Statement::CreateTable {
                name: "boxes".into(),
                columns:
                    "sample_id VARCHAR NOT NULL, label_id BIGINT NOT NULL, \"Class\" VARCHAR NULL"
                        .into(),
                group_key: "sample_id".into(),
                label_key: "label_id".into(),
                if_not_exists: true,
            }
        );
        assert!(st.is_write());
        // the Display round-trips
        assert_eq!(parse_statement(&st.to_string()).expect("parses"), st);
        // the key as column options
        let st = parse_statement("create table t (g INT PRIMARY KEY, l INT PRIMARY KEY, v DOUBLE)")
            .expect("parses");
        assert!(matches!(
            st,
            Statement::CreateTable { ref group_key, ref label_key, if_not_exists: false, .. }
                if group_key == "g" && label_key == "l"
        ));
    }

    #[test]
    fn create_table_refusals_name_the_problem() {
        for (sql, needle) in [
            (
                "CREATE TABLE t (a INT, _quiver_row_id VARCHAR)",
                "reserved for the implicit key",
            ),
            (
                "CREATE TABLE t (a INT, b INT, c INT, PRIMARY KEY (a, b, c))",
                "has 3 columns",
            ),
            (
                "CREATE TABLE t (a INT, b INT, PRIMARY KEY (a, x))",
                "'x' is not a column",
            ),
            (
                "CREATE TABLE t (a INT NULL, b INT, PRIMARY KEY (a, b))",
                "cannot be NULL",
            ),
            (
                "CREATE TABLE t (a INT DEFAULT 1, b INT, PRIMARY KEY (a, b))",
                "DEFAULT 1",
            ),
            (
                "CREATE TABLE t (a INT, b INT, UNIQUE (a), PRIMARY KEY (a, b))",
                "UNIQUE",
            ),
            ("CREATE TABLE t AS SELECT 1", "AS SELECT"),
            (
                "CREATE OR REPLACE TABLE t (a INT, b INT, PRIMARY KEY (a, b))",
                "OR REPLACE",
            ),
            (
                "CREATE TABLE quiver.t (a INT, b INT, PRIMARY KEY (a, b))",
                "not a dataset",
            ),
        ] {
            let err = parse_statement(sql).expect_err(sql).to_string();
            assert!(err.contains(needle), "{sql}: {err}");
        }
    }

    #[test]
    fn drop_table() {
        let st = parse_statement("DROP TABLE IF EXISTS a, \"B\"").expect("parses");
        assert_eq!(
            st,
            Statement::DropTable {
                names: vec!["a".into(), "B".into()],
                if_exists: true,
            }
        );
        assert!(st.is_write());
        assert_eq!(parse_statement(&st.to_string()).expect("parses"), st);
        for (sql, needle) in [
            ("DROP TABLE quiver.datasets", "not a dataset"),
            ("DROP TABLE \"ds@v1\"", "names a version of dataset 'ds'"),
            ("DROP TABLE t CASCADE", "CASCADE"),
            ("DROP VIEW t", "DROP / TRUNCATE"),
        ] {
            let err = parse_statement(sql).expect_err(sql).to_string();
            assert!(err.contains(needle), "{sql}: {err}");
        }
    }
}
