//! Quiver's SQL parser: its own statements in front of DataFusion's parser.
//!
//! A script is tokenized once (sqlparser's tokenizer, with line and column of every token)
//! and split into statements on top-level `;`. Each statement is parsed by the module of
//! its family, which documents its grammar:
//!
//! | family | module | statements |
//! |---|---|---|
//! | datasets | [`dataset`] | `CREATE DATASET`, `DROP DATASET`, `SHOW DATASETS` (and `CREATE TABLE`/`DROP TABLE` via [`crate::table_ddl`]) |
//! | branches | [`branch`] | `CREATE BRANCH`, `DROP BRANCH`, `ALTER BRANCH … RENAME TO`, `ALTER BRANCH … SET/UNSET PROTECTED`, `ALTER BRANCH … ADD/DROP CHECK`, `USE BRANCH`, `SHOW BRANCHES` |
//! | tags | [`tag`] | `CREATE TAG`, `DROP TAG`, `ALTER TAG … RENAME TO`, `SHOW TAGS` |
//! | history | [`diff`] | `SHOW HISTORY`, `DIFF … BETWEEN … AND …` |
//! | merges | [`merge`] | `MERGE [PREVIEW]`, `SHOW CONFLICTS`, `RESOLVE CONFLICTS`, `ABORT MERGE`, `COMMIT MERGE` |
//! | going back | [`rewind`] | `REVERT`, `RESET BRANCH` |
//! | transactions | [`txn`] | `BEGIN`, `COMMIT`, `ROLLBACK` |
//! | taxonomy | [`schema`] | `CREATE SCHEMA VERSION`, `SHOW SCHEMAS`, `SHOW SCHEMA`, `MIGRATE` |
//! | lineage | [`lineage`] | `CREATE RUN`, `CREATE MODEL`, `INSERT INTO quiver.predictions` |
//! | maintenance | [`maintenance`] | `VACUUM`, `OPTIMIZE` |
//! | erasure | [`erase`] | `ERASE FROM … WHERE …` |
//!
//! Every other statement is DataFusion's: parsed by DataFusion's `DFParser` after the
//! `AS OF` clauses of its tables are taken out of the tokens, then given back to the tables
//! on the syntax tree ([`as_of`]), and checked by [`crate::guard`] (queries and
//! `INSERT`/`UPDATE`/`DELETE` only, bounded in size). The result is a typed [`Statement`]
//! whose [`Display`](std::fmt::Display) parses back to an equal statement; what a
//! statement may do (read or write) is decided on that type ([`Statement::is_write`]).
//!
//! Errors name the line and column of the token that did not fit. Statements users try
//! from other engines that Quiver spells differently or does not have (`RENAME TAG`,
//! `ALTER DATASET`, `SET METADATA`, …) are refused by [`unsupported`] with what to write
//! instead, never with DataFusion's parser error.

mod as_of;
pub mod branch;
mod cursor;
pub mod dataset;
pub mod diff;
pub mod erase;
pub mod lineage;
pub mod maintenance;
pub mod merge;
pub mod metadata;
pub mod rewind;
pub mod schema;
pub mod tag;
pub mod txn;

use datafusion::sql::parser::{DFParserBuilder, Statement as DfStatement};
use datafusion::sql::sqlparser::ast::{
    ColumnDef, Expr, ObjectName, ObjectNamePart, Query, Statement as SqlStatement, TableObject,
};
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};

use crate::error::{Result, SqlError};
use crate::guard::{SqlKind, SqlLimits};
use crate::names::RefSpec;
use cursor::{location, Cursor, DIALECT};

/// One parsed statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    /// `CREATE DATASET name (columns) KEY (group, label)`.
    CreateDataset {
        name: String,
        columns: Vec<ColumnDef>,
        group_key: String,
        label_key: String,
    },
    /// `CREATE BRANCH b FROM ds [AS OF <ref>]`.
    CreateBranch {
        dataset: String,
        branch: String,
        from: RefSpec,
    },
    /// `CREATE TABLE [IF NOT EXISTS] name (columns, PRIMARY KEY (group, label))`: a
    /// dataset keyed on the declared key ([`crate::table_ddl`]).
    CreateTable {
        name: String,
        /// Column definitions, key columns `NOT NULL`.
        columns: String,
        group_key: String,
        label_key: String,
        if_not_exists: bool,
    },
    /// `DROP TABLE [IF EXISTS] name, …`: drops datasets.
    DropTable { names: Vec<String>, if_exists: bool },
    /// `DROP BRANCH b ON ds`.
    DropBranch { dataset: String, branch: String },
    /// `ALTER BRANCH old RENAME TO new ON ds`.
    RenameBranch {
        dataset: String,
        from: String,
        to: String,
    },
    /// `ALTER BRANCH b ON ds SET PROTECTED | UNSET PROTECTED`: writes to `b` only by merge.
    SetBranchProtection {
        dataset: String,
        branch: String,
        protected: bool,
    },
    /// `ALTER BRANCH b ON ds ADD CHECK name AS 'query'`: a query every merge result of `b`
    /// must return no rows for.
    AddBranchCheck {
        dataset: String,
        branch: String,
        name: String,
        query: String,
    },
    /// `ALTER BRANCH b ON ds DROP CHECK name`.
    DropBranchCheck {
        dataset: String,
        branch: String,
        name: String,
    },
    /// `ALTER TAG 'old' RENAME TO 'new' ON ds`.
    RenameTag {
        dataset: String,
        from: String,
        to: String,
    },
    /// `SHOW DATASETS`.
    ShowDatasets,
    /// `ALTER DATASET ds [ALTER COLUMN c] SET METADATA 'k' = v, …` or `… UNSET METADATA 'k', …`
    /// (exactly one of `set` and `unset` is not empty).
    AlterMetadata {
        dataset: String,
        column: Option<String>,
        set: Vec<(String, MetaValue)>,
        unset: Vec<String>,
    },
    /// `SHOW METADATA ON ds`.
    ShowMetadata { dataset: String },
    /// `CREATE TAG 't' ON ds [AS OF <ref>]`.
    CreateTag {
        dataset: String,
        tag: String,
        at: RefSpec,
    },
    /// `DROP TAG 't' ON ds`.
    DropTag { dataset: String, tag: String },
    /// `SHOW BRANCHES ON ds`.
    ShowBranches { dataset: String },
    /// `SHOW TAGS ON ds`.
    ShowTags { dataset: String },
    /// `SHOW HISTORY ON ds [AS OF <ref>]`.
    ShowHistory { dataset: String, at: RefSpec },
    /// `DIFF ds BETWEEN <ref> AND <ref>`.
    Diff {
        dataset: String,
        from: RefSpec,
        to: RefSpec,
    },
    /// `USE BRANCH b ON ds`.
    UseBranch { dataset: String, branch: String },
    /// `BEGIN`.
    Begin,
    /// `COMMIT ['message']`.
    Commit { message: Option<String> },
    /// `ROLLBACK`.
    Rollback,
    /// `MERGE <ref> INTO target ON ds [MESSAGE 'm']`.
    Merge {
        dataset: String,
        source: RefSpec,
        target: String,
        message: Option<String>,
    },
    /// `MERGE <ref> INTO target ON ds PREVIEW`: what the merge would do, nothing written.
    MergePreview {
        dataset: String,
        source: RefSpec,
        target: String,
    },
    /// `REVERT <commit> ON ds [BRANCH b] [MESSAGE 'm']`: a commit on `b` (default: the
    /// session's branch) undoing the changes of `<commit>`.
    Revert {
        dataset: String,
        commit: RefSpec,
        branch: Option<String>,
        message: Option<String>,
    },
    /// `RESET BRANCH b ON ds TO <ref> [MESSAGE 'm']`: a commit on `b` whose content is
    /// `<ref>`'s.
    ResetBranch {
        dataset: String,
        branch: String,
        to: RefSpec,
        message: Option<String>,
    },
    /// `SHOW CONFLICTS ON ds`.
    ShowConflicts { dataset: String },
    /// `RESOLVE CONFLICTS ON ds USING OURS|THEIRS [WHERE predicate]`.
    ResolveConflicts {
        dataset: String,
        theirs: bool,
        filter: Option<Box<Expr>>,
    },
    /// `ABORT MERGE ON ds`.
    AbortMerge { dataset: String },
    /// `COMMIT MERGE ON ds [MESSAGE 'm']`.
    CommitMerge {
        dataset: String,
        message: Option<String>,
    },
    /// `CREATE SCHEMA VERSION 'v' ON ds [FROM 'p'] change, … [MESSAGE 'm']`.
    CreateSchemaVersion {
        dataset: String,
        version: String,
        parent: Option<String>,
        changes: Vec<quiver_core::SchemaChange>,
        message: Option<String>,
    },
    /// `SHOW SCHEMAS ON ds`.
    ShowSchemas { dataset: String },
    /// `SHOW SCHEMA ON ds [VERSION 'v' | AT 'timestamp']`: the full taxonomy.
    ShowSchema {
        dataset: String,
        version: Option<String>,
        at: Option<String>,
    },
    /// `MIGRATE ds TO SCHEMA 'v' [USING ('old' = 'new', …)]`.
    Migrate {
        dataset: String,
        version: String,
        mapping: Vec<(String, String)>,
    },
    /// `CREATE RUN 'r' ON ds [AS OF …]`: register a training run explicitly.
    CreateRun {
        run_id: String,
        dataset: String,
        at: RefSpec,
    },
    /// `CREATE MODEL 'm' FROM RUN 'r' [MESSAGE 'm']`.
    CreateModel {
        model: String,
        run_id: String,
        message: Option<String>,
    },
    /// `INSERT INTO quiver.predictions [(cols)] <query>`: a batch of predictions.
    InsertPredictions {
        /// The named columns (none: `model, sample_id, class, score`).
        columns: Vec<String>,
        query: Box<Query>,
    },
    /// `VACUUM ds [RETAIN n DAYS|HOURS] [DRY RUN]`: delete what no live version of `ds`
    /// needs (retention in hours; `None`: the default 7 days).
    Vacuum {
        dataset: String,
        retain_hours: Option<u64>,
        dry_run: bool,
    },
    /// `OPTIMIZE ds [ON BRANCH b] [FULL]`: fold the deltas of the branch head (default:
    /// the session's branch of `ds`) into base chunks (densely edited ones) and one merged
    /// delta (scattered edits); `FULL` rewrites every chunk an edit touched. Content and
    /// commit ids do not change.
    Optimize {
        dataset: String,
        branch: Option<String>,
        full: bool,
    },
    /// `ERASE FROM ds WHERE predicate [REASON 'text']`: erase the matching labels from
    /// every version of `ds`, keeping every commit id and content hash.
    Erase {
        dataset: String,
        filter: Box<Expr>,
        reason: Option<String>,
    },
    /// A DataFusion statement, `AS OF` already given to its tables: a query (`SELECT`,
    /// `WITH`, `VALUES`, `EXPLAIN`, `SHOW TABLES`, …) or `INSERT`/`UPDATE`/`DELETE` on a
    /// dataset ([`Statement::is_dml`]); nothing else gets past [`crate::guard`].
    DataFusion(Box<DfStatement>),
}

/// The name of each kind of [`Statement`] (one per variant), for messages and tests.
pub const STATEMENT_KINDS: &[&str] = &[
    "CREATE DATASET",
    "ALTER DATASET … METADATA",
    "SHOW METADATA",
    "CREATE BRANCH",
    "CREATE TABLE",
    "DROP TABLE",
    "DROP BRANCH",
    "ALTER BRANCH",
    "ALTER BRANCH … PROTECTED",
    "ALTER BRANCH … ADD CHECK",
    "ALTER BRANCH … DROP CHECK",
    "ALTER TAG",
    "SHOW DATASETS",
    "CREATE TAG",
    "DROP TAG",
    "SHOW BRANCHES",
    "SHOW TAGS",
    "SHOW HISTORY",
    "DIFF",
    "USE BRANCH",
    "BEGIN",
    "COMMIT",
    "ROLLBACK",
    "MERGE",
    "MERGE PREVIEW",
    "REVERT",
    "RESET BRANCH",
    "SHOW CONFLICTS",
    "RESOLVE CONFLICTS",
    "ABORT MERGE",
    "COMMIT MERGE",
    "CREATE SCHEMA VERSION",
    "SHOW SCHEMAS",
    "SHOW SCHEMA",
    "MIGRATE",
    "CREATE RUN",
    "CREATE MODEL",
    "INSERT INTO quiver.predictions",
    "VACUUM",
    "OPTIMIZE",
    "ERASE",
    "query",
    "DML",
];

/// A metadata value as written: kept as JSON.
#[derive(Debug, Clone, PartialEq)]
pub enum MetaValue {
    Text(String),
    /// A number, as written (a valid JSON number).
    Number(String),
    Bool(bool),
}

impl MetaValue {
    /// The JSON value stored.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            MetaValue::Text(s) => serde_json::Value::String(s.clone()),
            MetaValue::Number(n) => serde_json::from_str::<serde_json::Number>(n)
                .map(serde_json::Value::Number)
                .unwrap_or_else(|_| serde_json::Value::String(n.clone())),
            MetaValue::Bool(b) => serde_json::Value::Bool(*b),
        }
    }
}

impl std::fmt::Display for MetaValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MetaValue::Text(s) => write!(f, "{}", sql_string(s)),
            MetaValue::Number(n) => write!(f, "{n}"),
            MetaValue::Bool(true) => write!(f, "TRUE"),
            MetaValue::Bool(false) => write!(f, "FALSE"),
        }
    }
}

impl Statement {
    /// The kind of statement (one of [`STATEMENT_KINDS`]).
    pub fn kind(&self) -> &'static str {
        match self {
            Statement::CreateDataset { .. } => "CREATE DATASET",
            Statement::CreateBranch { .. } => "CREATE BRANCH",
            Statement::CreateTable { .. } => "CREATE TABLE",
            Statement::DropTable { .. } => "DROP TABLE",
            Statement::DropBranch { .. } => "DROP BRANCH",
            Statement::RenameBranch { .. } => "ALTER BRANCH",
            Statement::SetBranchProtection { .. } => "ALTER BRANCH … PROTECTED",
            Statement::AddBranchCheck { .. } => "ALTER BRANCH … ADD CHECK",
            Statement::DropBranchCheck { .. } => "ALTER BRANCH … DROP CHECK",
            Statement::RenameTag { .. } => "ALTER TAG",
            Statement::ShowDatasets => "SHOW DATASETS",
            Statement::AlterMetadata { .. } => "ALTER DATASET … METADATA",
            Statement::ShowMetadata { .. } => "SHOW METADATA",
            Statement::CreateTag { .. } => "CREATE TAG",
            Statement::DropTag { .. } => "DROP TAG",
            Statement::ShowBranches { .. } => "SHOW BRANCHES",
            Statement::ShowTags { .. } => "SHOW TAGS",
            Statement::ShowHistory { .. } => "SHOW HISTORY",
            Statement::Diff { .. } => "DIFF",
            Statement::UseBranch { .. } => "USE BRANCH",
            Statement::Begin => "BEGIN",
            Statement::Commit { .. } => "COMMIT",
            Statement::Rollback => "ROLLBACK",
            Statement::Merge { .. } => "MERGE",
            Statement::MergePreview { .. } => "MERGE PREVIEW",
            Statement::Revert { .. } => "REVERT",
            Statement::ResetBranch { .. } => "RESET BRANCH",
            Statement::ShowConflicts { .. } => "SHOW CONFLICTS",
            Statement::ResolveConflicts { .. } => "RESOLVE CONFLICTS",
            Statement::AbortMerge { .. } => "ABORT MERGE",
            Statement::CommitMerge { .. } => "COMMIT MERGE",
            Statement::CreateSchemaVersion { .. } => "CREATE SCHEMA VERSION",
            Statement::ShowSchemas { .. } => "SHOW SCHEMAS",
            Statement::ShowSchema { .. } => "SHOW SCHEMA",
            Statement::Migrate { .. } => "MIGRATE",
            Statement::CreateRun { .. } => "CREATE RUN",
            Statement::CreateModel { .. } => "CREATE MODEL",
            Statement::InsertPredictions { .. } => "INSERT INTO quiver.predictions",
            Statement::Vacuum { .. } => "VACUUM",
            Statement::Optimize { .. } => "OPTIMIZE",
            Statement::Erase { .. } => "ERASE",
            Statement::DataFusion(_) if self.is_dml() => "DML",
            Statement::DataFusion(_) => "query",
        }
    }

    /// Whether the statement changes the catalog (refs, commits, datasets, pending merges,
    /// lineage). Servers and read-only sessions use this to refuse writes. Exhaustive on
    /// purpose: a new statement must be classified here before it compiles.
    pub fn is_write(&self) -> bool {
        match self {
            Statement::ShowBranches { .. }
            | Statement::ShowTags { .. }
            | Statement::ShowDatasets
            | Statement::ShowMetadata { .. }
            | Statement::ShowHistory { .. }
            | Statement::Diff { .. }
            | Statement::UseBranch { .. }
            | Statement::ShowConflicts { .. }
            | Statement::MergePreview { .. }
            | Statement::ShowSchemas { .. }
            | Statement::ShowSchema { .. }
            | Statement::Begin
            | Statement::Rollback => false,
            Statement::DataFusion(_) => self.is_dml(),
            Statement::CreateDataset { .. }
            | Statement::CreateTable { .. }
            | Statement::DropTable { .. }
            | Statement::AlterMetadata { .. }
            | Statement::CreateBranch { .. }
            | Statement::DropBranch { .. }
            | Statement::RenameBranch { .. }
            | Statement::SetBranchProtection { .. }
            | Statement::AddBranchCheck { .. }
            | Statement::DropBranchCheck { .. }
            | Statement::RenameTag { .. }
            | Statement::CreateTag { .. }
            | Statement::DropTag { .. }
            | Statement::Commit { .. }
            | Statement::Merge { .. }
            | Statement::Revert { .. }
            | Statement::ResetBranch { .. }
            | Statement::ResolveConflicts { .. }
            | Statement::AbortMerge { .. }
            | Statement::CommitMerge { .. }
            | Statement::CreateSchemaVersion { .. }
            | Statement::Migrate { .. }
            | Statement::CreateRun { .. }
            | Statement::CreateModel { .. }
            | Statement::InsertPredictions { .. }
            | Statement::Vacuum { .. }
            | Statement::Optimize { .. }
            | Statement::Erase { .. } => true,
        }
    }

    /// Whether the statement is a DataFusion query (planned lazily, streams its rows).
    pub fn is_query(&self) -> bool {
        matches!(self, Statement::DataFusion(_)) && !self.is_dml()
    }

    /// Whether the statement is `INSERT`, `UPDATE` or `DELETE` on a dataset.
    pub fn is_dml(&self) -> bool {
        match self {
            Statement::DataFusion(st) => match st.as_ref() {
                DfStatement::Statement(s) => matches!(
                    s.as_ref(),
                    SqlStatement::Insert(_) | SqlStatement::Update(_) | SqlStatement::Delete(_)
                ),
                _ => false,
            },
            _ => false,
        }
    }

    /// Whether the answer of the statement is a table to read (a DataFusion query, SHOW,
    /// DIFF, and the reports of MERGE, RESOLVE, VACUUM, OPTIMIZE and ERASE) rather than a
    /// confirmation of what it did (sqllogictest `query` vs `statement` records).
    pub fn returns_rows(&self) -> bool {
        match self {
            Statement::DataFusion(_) => !self.is_dml(),
            Statement::ShowBranches { .. }
            | Statement::ShowTags { .. }
            | Statement::ShowDatasets
            | Statement::ShowMetadata { .. }
            | Statement::ShowHistory { .. }
            | Statement::ShowConflicts { .. }
            | Statement::ShowSchemas { .. }
            | Statement::ShowSchema { .. }
            | Statement::Diff { .. }
            | Statement::Merge { .. }
            | Statement::MergePreview { .. }
            | Statement::Revert { .. }
            | Statement::ResetBranch { .. }
            | Statement::ResolveConflicts { .. }
            | Statement::Vacuum { .. }
            | Statement::Optimize { .. }
            | Statement::Erase { .. } => true,
            _ => false,
        }
    }
}

/// `s` as an identifier that reads back as `s`: bare when it is a plain word, quoted
/// (quotes doubled) otherwise.
pub(crate) fn ident(s: &str) -> String {
    let plain = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if plain {
        s.to_string()
    } else {
        format!("\"{}\"", s.replace('"', "\"\""))
    }
}

/// `s` as a quoted SQL identifier (quotes doubled): kept exactly, never case-normalized.
fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// `s` as a SQL string literal (quotes doubled).
pub(crate) fn sql_string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn ref_sql(r: &RefSpec) -> String {
    match r {
        RefSpec::Session => String::new(),
        RefSpec::Loose(s) | RefSpec::Version(s) => format!("VERSION {}", sql_string(s)),
        RefSpec::Branch(s) => format!("BRANCH {}", sql_string(s)),
        RefSpec::Tag(s) => format!("TAG {}", sql_string(s)),
        RefSpec::Timestamp(s) => format!("TIMESTAMP {}", sql_string(s)),
    }
}

/// A ref where a bare `'name'` is accepted ([`cursor::Cursor::loose_or_version_ref`]).
fn loose_ref_sql(r: &RefSpec) -> String {
    match r {
        RefSpec::Loose(s) => sql_string(s),
        r => ref_sql(r),
    }
}

fn as_of(r: &RefSpec) -> String {
    match r {
        RefSpec::Session => String::new(),
        r => format!(" AS OF {}", ref_sql(r)),
    }
}

fn opt_message(m: &Option<String>) -> String {
    m.as_ref()
        .map(|m| format!(" MESSAGE {}", sql_string(m)))
        .unwrap_or_default()
}

fn schema_change(c: &quiver_core::SchemaChange) -> String {
    use quiver_core::SchemaChange as S;
    match c {
        S::AddClass { name, id } => format!("ADD CLASS {} = {id}", sql_string(name)),
        S::RemoveClass { name } => format!("REMOVE CLASS {}", sql_string(name)),
        S::RenameClass { from, to } => {
            format!("RENAME CLASS {} TO {}", sql_string(from), sql_string(to))
        }
        S::AddAttribute { name, data_type } => {
            format!("ADD ATTRIBUTE {} {}", sql_string(name), ident(data_type))
        }
        S::RemoveAttribute { name } => format!("REMOVE ATTRIBUTE {}", sql_string(name)),
        S::RenameAttribute { from, to } => {
            format!(
                "RENAME ATTRIBUTE {} TO {}",
                sql_string(from),
                sql_string(to)
            )
        }
    }
}

/// Round-trips: `parse_statement(&s.to_string())` gives `s` back.
impl std::fmt::Display for Statement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Statement::CreateDataset {
                name,
                columns,
                group_key,
                label_key,
            } => {
                let cols: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
                write!(
                    f,
                    "CREATE DATASET {} ({}) KEY ({}, {})",
                    ident(name),
                    cols.join(", "),
                    ident(group_key),
                    ident(label_key)
                )
            }
            Statement::CreateTable {
                name,
                columns,
                group_key,
                label_key,
                if_not_exists,
            } => write!(
                f,
                "CREATE TABLE {}{} ({columns}, PRIMARY KEY ({}, {}))",
                if *if_not_exists { "IF NOT EXISTS " } else { "" },
                quoted(name),
                quoted(group_key),
                quoted(label_key)
            ),
            Statement::DropTable { names, if_exists } => write!(
                f,
                "DROP TABLE {}{}",
                if *if_exists { "IF EXISTS " } else { "" },
                names
                    .iter()
                    .map(|n| quoted(n))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Statement::CreateBranch {
                dataset,
                branch,
                from,
            } => write!(
                f,
                "CREATE BRANCH {} FROM {}{}",
                ident(branch),
                ident(dataset),
                as_of(from)
            ),
            Statement::DropBranch { dataset, branch } => {
                write!(f, "DROP BRANCH {} ON {}", ident(branch), ident(dataset))
            }
            Statement::RenameBranch { dataset, from, to } => write!(
                f,
                "ALTER BRANCH {} RENAME TO {} ON {}",
                ident(from),
                ident(to),
                ident(dataset)
            ),
            Statement::SetBranchProtection {
                dataset,
                branch,
                protected,
            } => write!(
                f,
                "ALTER BRANCH {} ON {} {} PROTECTED",
                ident(branch),
                ident(dataset),
                if *protected { "SET" } else { "UNSET" }
            ),
            Statement::AddBranchCheck {
                dataset,
                branch,
                name,
                query,
            } => write!(
                f,
                "ALTER BRANCH {} ON {} ADD CHECK {} AS {}",
                ident(branch),
                ident(dataset),
                ident(name),
                sql_string(query)
            ),
            Statement::DropBranchCheck {
                dataset,
                branch,
                name,
            } => write!(
                f,
                "ALTER BRANCH {} ON {} DROP CHECK {}",
                ident(branch),
                ident(dataset),
                ident(name)
            ),
            Statement::RenameTag { dataset, from, to } => write!(
                f,
                "ALTER TAG {} RENAME TO {} ON {}",
                sql_string(from),
                sql_string(to),
                ident(dataset)
            ),
            Statement::ShowDatasets => write!(f, "SHOW DATASETS"),
            Statement::AlterMetadata {
                dataset,
                column,
                set,
                unset,
            } => {
                write!(f, "ALTER DATASET {}", ident(dataset))?;
                if let Some(c) = column {
                    write!(f, " ALTER COLUMN {}", ident(c))?;
                }
                if unset.is_empty() {
                    let items: Vec<String> = set
                        .iter()
                        .map(|(k, v)| format!("{} = {v}", sql_string(k)))
                        .collect();
                    write!(f, " SET METADATA {}", items.join(", "))
                } else {
                    let items: Vec<String> = unset.iter().map(|k| sql_string(k)).collect();
                    write!(f, " UNSET METADATA {}", items.join(", "))
                }
            }
            Statement::ShowMetadata { dataset } => {
                write!(f, "SHOW METADATA ON {}", ident(dataset))
            }
            Statement::CreateTag { dataset, tag, at } => write!(
                f,
                "CREATE TAG {} ON {}{}",
                sql_string(tag),
                ident(dataset),
                as_of(at)
            ),
            Statement::DropTag { dataset, tag } => {
                write!(f, "DROP TAG {} ON {}", sql_string(tag), ident(dataset))
            }
            Statement::ShowBranches { dataset } => {
                write!(f, "SHOW BRANCHES ON {}", ident(dataset))
            }
            Statement::ShowTags { dataset } => write!(f, "SHOW TAGS ON {}", ident(dataset)),
            Statement::ShowHistory { dataset, at } => {
                write!(f, "SHOW HISTORY ON {}{}", ident(dataset), as_of(at))
            }
            Statement::Diff { dataset, from, to } => write!(
                f,
                "DIFF {} BETWEEN {} AND {}",
                ident(dataset),
                ref_sql(from),
                ref_sql(to)
            ),
            Statement::UseBranch { dataset, branch } => {
                write!(f, "USE BRANCH {} ON {}", ident(branch), ident(dataset))
            }
            Statement::Begin => write!(f, "BEGIN"),
            Statement::Commit { message: Some(m) } => write!(f, "COMMIT {}", sql_string(m)),
            Statement::Commit { message: None } => write!(f, "COMMIT"),
            Statement::Rollback => write!(f, "ROLLBACK"),
            Statement::Merge {
                dataset,
                source,
                target,
                message,
            } => write!(
                f,
                "MERGE {} INTO {} ON {}{}",
                loose_ref_sql(source),
                ident(target),
                ident(dataset),
                opt_message(message)
            ),
            Statement::MergePreview {
                dataset,
                source,
                target,
            } => write!(
                f,
                "MERGE {} INTO {} ON {} PREVIEW",
                loose_ref_sql(source),
                ident(target),
                ident(dataset)
            ),
            Statement::Revert {
                dataset,
                commit,
                branch,
                message,
            } => {
                write!(f, "REVERT {} ON {}", loose_ref_sql(commit), ident(dataset))?;
                if let Some(b) = branch {
                    write!(f, " BRANCH {}", ident(b))?;
                }
                write!(f, "{}", opt_message(message))
            }
            Statement::ResetBranch {
                dataset,
                branch,
                to,
                message,
            } => write!(
                f,
                "RESET BRANCH {} ON {} TO {}{}",
                ident(branch),
                ident(dataset),
                loose_ref_sql(to),
                opt_message(message)
            ),
            Statement::ShowConflicts { dataset } => {
                write!(f, "SHOW CONFLICTS ON {}", ident(dataset))
            }
            Statement::ResolveConflicts {
                dataset,
                theirs,
                filter,
            } => {
                let side = if *theirs { "THEIRS" } else { "OURS" };
                write!(f, "RESOLVE CONFLICTS ON {} USING {side}", ident(dataset))?;
                match filter {
                    Some(p) => write!(f, " WHERE {p}"),
                    None => Ok(()),
                }
            }
            Statement::AbortMerge { dataset } => write!(f, "ABORT MERGE ON {}", ident(dataset)),
            Statement::CommitMerge { dataset, message } => write!(
                f,
                "COMMIT MERGE ON {}{}",
                ident(dataset),
                opt_message(message)
            ),
            Statement::CreateSchemaVersion {
                dataset,
                version,
                parent,
                changes,
                message,
            } => {
                write!(
                    f,
                    "CREATE SCHEMA VERSION {} ON {}",
                    sql_string(version),
                    ident(dataset)
                )?;
                if let Some(p) = parent {
                    write!(f, " FROM {}", sql_string(p))?;
                }
                let changes: Vec<String> = changes.iter().map(schema_change).collect();
                write!(f, " {}{}", changes.join(", "), opt_message(message))
            }
            Statement::ShowSchemas { dataset } => write!(f, "SHOW SCHEMAS ON {}", ident(dataset)),
            Statement::ShowSchema {
                dataset,
                version,
                at,
            } => {
                write!(f, "SHOW SCHEMA ON {}", ident(dataset))?;
                match (version, at) {
                    (Some(v), _) => write!(f, " VERSION {}", sql_string(v)),
                    (None, Some(t)) => write!(f, " AT {}", sql_string(t)),
                    (None, None) => Ok(()),
                }
            }
            Statement::Migrate {
                dataset,
                version,
                mapping,
            } => {
                write!(
                    f,
                    "MIGRATE {} TO SCHEMA {}",
                    ident(dataset),
                    sql_string(version)
                )?;
                if !mapping.is_empty() {
                    let pairs: Vec<String> = mapping
                        .iter()
                        .map(|(a, b)| format!("{} = {}", sql_string(a), sql_string(b)))
                        .collect();
                    write!(f, " USING ({})", pairs.join(", "))?;
                }
                Ok(())
            }
            Statement::CreateRun {
                run_id,
                dataset,
                at,
            } => write!(
                f,
                "CREATE RUN {} ON {}{}",
                sql_string(run_id),
                ident(dataset),
                as_of(at)
            ),
            Statement::CreateModel {
                model,
                run_id,
                message,
            } => write!(
                f,
                "CREATE MODEL {} FROM RUN {}{}",
                sql_string(model),
                sql_string(run_id),
                opt_message(message)
            ),
            Statement::InsertPredictions { columns, query } => {
                write!(f, "INSERT INTO quiver.predictions ")?;
                if !columns.is_empty() {
                    let cols: Vec<String> = columns.iter().map(|c| quoted(c)).collect();
                    write!(f, "({}) ", cols.join(", "))?;
                }
                write!(f, "{query}")
            }
            Statement::Optimize {
                dataset,
                branch,
                full,
            } => {
                write!(f, "OPTIMIZE {}", ident(dataset))?;
                if let Some(b) = branch {
                    write!(f, " ON BRANCH {}", ident(b))?;
                }
                if *full {
                    write!(f, " FULL")?;
                }
                Ok(())
            }
            Statement::Vacuum {
                dataset,
                retain_hours,
                dry_run,
            } => {
                write!(f, "VACUUM {}", ident(dataset))?;
                if let Some(h) = retain_hours {
                    write!(f, " RETAIN {h} HOURS")?;
                }
                if *dry_run {
                    write!(f, " DRY RUN")?;
                }
                Ok(())
            }
            Statement::Erase {
                dataset,
                filter,
                reason,
            } => {
                write!(f, "ERASE FROM {} WHERE {filter}", ident(dataset))?;
                match reason {
                    Some(r) => write!(f, " REASON {}", sql_string(r)),
                    None => Ok(()),
                }
            }
            Statement::DataFusion(st) => write!(f, "{st}"),
        }
    }
}

fn tokenize(sql: &str) -> Result<Vec<TokenWithSpan>> {
    Tokenizer::new(&DIALECT, sql)
        .tokenize_with_location()
        .map_err(|e| SqlError::Parse(e.to_string()))
}

/// Split a script into statements and parse each, with the default [`SqlLimits`].
pub fn parse_script(sql: &str) -> Result<Vec<Statement>> {
    parse_script_with(sql, &SqlLimits::default())
}

/// Split a script into statements and parse each; the text and every DataFusion
/// statement in it are checked against `limits` before anything is planned. Parsing runs
/// on a thread with a large stack ([`crate::guard::on_big_stack`]): no text within the
/// size limit can overflow a stack.
pub fn parse_script_with(sql: &str, limits: &SqlLimits) -> Result<Vec<Statement>> {
    crate::guard::check_size(sql, "the SQL text", limits)?;
    let (sql, limits) = (sql.to_owned(), *limits);
    crate::guard::on_big_stack(move || {
        let (sql, limits) = (sql.as_str(), &limits);
        let tokens = tokenize(sql)?;
        let mut out = Vec::new();
        for part in tokens.split(|t| t.token == Token::SemiColon) {
            if part
                .iter()
                .all(|t| matches!(t.token, Token::Whitespace(_) | Token::EOF))
            {
                continue;
            }
            out.push(parse_tokens(part.to_vec(), limits)?);
        }
        Ok(out)
    })
}

/// Parse one statement, with the default [`SqlLimits`].
pub fn parse_statement(sql: &str) -> Result<Statement> {
    parse_statement_with(sql, &SqlLimits::default())
}

/// Parse one statement, checked against `limits`.
pub fn parse_statement_with(sql: &str, limits: &SqlLimits) -> Result<Statement> {
    let mut v = parse_script_with(sql, limits)?;
    match (v.pop(), v.is_empty()) {
        (Some(s), true) => Ok(s),
        (None, _) => Err(SqlError::Parse("empty statement".into())),
        _ => Err(SqlError::Parse("expected one statement".into())),
    }
}

type Family = fn(&mut Cursor) -> Result<Statement>;

/// The family parser of a statement, from its leading words; `None`: DataFusion's.
fn family(c: &Cursor) -> Option<Family> {
    let w = |n| c.peek_word(n).unwrap_or_default();
    let (w0, w1) = (w(0), w(1));
    Some(match (w0.as_str(), w1.as_str()) {
        ("MERGE", "BRANCH" | "TAG" | "VERSION" | "TIMESTAMP")
        | ("SHOW", "CONFLICTS")
        | ("RESOLVE", "CONFLICTS")
        | ("ABORT", "MERGE")
        | ("COMMIT", "MERGE") => merge::parse_merge,
        ("MERGE", "") if c.is_string(1) => merge::parse_merge,
        ("CREATE", "DATASET") => dataset::parse_create_dataset,
        ("DROP", "DATASET") | ("SHOW", "DATASETS") => dataset::parse_drop_or_show,
        ("CREATE" | "DROP" | "USE" | "ALTER", "BRANCH") | ("SHOW", "BRANCHES") => {
            branch::parse_branch
        }
        ("CREATE" | "DROP" | "ALTER", "TAG") | ("SHOW", "TAGS") => tag::parse_tag,
        ("ALTER", "DATASET") | ("SHOW", "METADATA") => metadata::parse_metadata,
        ("RENAME", _) | ("ALTER", _) | ("SET" | "UNSET", "METADATA") => unsupported,
        ("SHOW", "HISTORY") | ("DIFF", _) => diff::parse_diff,
        ("CREATE", "SCHEMA") if w(2) == "VERSION" => schema::parse_schema,
        ("SHOW", "SCHEMAS" | "SCHEMA") | ("MIGRATE", _) => schema::parse_schema,
        ("VACUUM" | "OPTIMIZE", _) => maintenance::parse_maintenance,
        ("ERASE", _) => erase::parse_erase,
        ("REVERT", _) | ("RESET", "BRANCH") => rewind::parse_rewind,
        ("CREATE", "RUN" | "MODEL") => lineage::parse_lineage,
        ("BEGIN" | "COMMIT" | "ROLLBACK", _) | ("START", "TRANSACTION") => txn::parse_txn,
        _ => return None,
    })
}

/// What Quiver supports in place of a statement users bring from other engines.
const CATALOG_STATEMENTS: &str = "supported: CREATE/DROP DATASET, CREATE/DROP BRANCH, \
     ALTER BRANCH old RENAME TO new ON ds, CREATE/DROP TAG, \
     ALTER TAG 'old' RENAME TO 'new' ON ds, ALTER DATASET ds [ALTER COLUMN c] SET/UNSET METADATA, \
     SHOW DATASETS/BRANCHES/TAGS/HISTORY/METADATA, DESCRIBE ds";

/// A statement Quiver does not have: the error says what to write instead.
fn unsupported(c: &mut Cursor) -> Result<Statement> {
    let w = |n| c.peek_word(n).unwrap_or_default();
    let at = location(c.p.peek_token_ref().span);
    let what = match (w(0).as_str(), w(1).as_str()) {
        ("RENAME", "TAG") => {
            "RENAME TAG is not Quiver's syntax; write ALTER TAG 'old' RENAME TO 'new' ON ds".into()
        }
        ("RENAME", "BRANCH") => {
            "RENAME BRANCH is not Quiver's syntax; write ALTER BRANCH old RENAME TO new ON ds"
                .into()
        }
        ("RENAME" | "ALTER", "DATASET" | "TABLE") => {
            format!("datasets cannot be renamed or altered; {CATALOG_STATEMENTS}")
        }
        (_, "METADATA") | ("ALTER", "COLUMN") => format!(
            "metadata is set with ALTER DATASET ds [ALTER COLUMN c] SET METADATA 'key' = value \
             (UNSET METADATA 'key') and read with SHOW METADATA ON ds; {CATALOG_STATEMENTS}"
        ),
        (w0, w1) => format!("{w0} {w1} is not supported; {CATALOG_STATEMENTS}"),
    };
    Err(SqlError::Unsupported(format!("{what}{at}")))
}

fn parse_tokens(tokens: Vec<TokenWithSpan>, limits: &SqlLimits) -> Result<Statement> {
    let mut c = Cursor::new(tokens.clone());
    match family(&c) {
        Some(parse) => {
            let st = parse(&mut c)?;
            c.end()?;
            Ok(st)
        }
        None => datafusion_statement(tokens, limits),
    }
}

/// A DataFusion statement: `AS OF` taken out, parsed by `DFParser`, `AS OF` given back to
/// the tables, checked by the guard.
fn datafusion_statement(tokens: Vec<TokenWithSpan>, limits: &SqlLimits) -> Result<Statement> {
    let (tokens, marks) = as_of::mark(tokens)?;
    let parsed = DFParserBuilder::new(tokens)
        .build()
        .and_then(|mut p| p.parse_statements())
        .map_err(|e| as_of::explain_parse_error(SqlError::Parse(plain_parse_error(e)), &marks));
    let mut statements = parsed?;
    let mut st = match (statements.pop_front(), statements.is_empty()) {
        (Some(st), true) => st,
        (None, _) => return Err(SqlError::Parse("empty statement".into())),
        _ => return Err(SqlError::Parse("expected one statement".into())),
    };
    claim_as_of(&mut st, &marks)?;
    match crate::guard::kind_of(&st, limits)? {
        SqlKind::TableDdl(typed) => Ok(*typed),
        SqlKind::Query => Ok(Statement::DataFusion(Box::new(st))),
        SqlKind::Dml => Ok(predictions(&st)?.unwrap_or(Statement::DataFusion(Box::new(st)))),
    }
}

fn claim_as_of(st: &mut DfStatement, marks: &[as_of::AsOf]) -> Result<()> {
    match st {
        DfStatement::Statement(s) => as_of::claim(s.as_mut(), marks),
        DfStatement::Explain(e) => claim_as_of(&mut e.statement, marks),
        // COPY, CREATE EXTERNAL TABLE, RESET: no tables to version
        _ => as_of::none_claimed(marks),
    }
}

/// The text of a DataFusion parse error (sqlparser's, without DataFusion's wrapping).
pub(crate) fn plain_parse_error(e: datafusion::error::DataFusionError) -> String {
    match e.find_root() {
        datafusion::error::DataFusionError::SQL(e, _) => e.to_string(),
        other => other.strip_backtrace(),
    }
}

fn is_predictions(name: &ObjectName) -> bool {
    let parts: Vec<String> = name
        .0
        .iter()
        .map(|p| match p {
            ObjectNamePart::Identifier(i) => i.value.to_ascii_lowercase(),
            other => other.to_string(),
        })
        .collect();
    parts == ["quiver", "predictions"]
}

/// `INSERT INTO quiver.predictions …` typed as [`Statement::InsertPredictions`].
fn predictions(st: &DfStatement) -> Result<Option<Statement>> {
    let DfStatement::Statement(s) = st else {
        return Ok(None);
    };
    let SqlStatement::Insert(ins) = s.as_ref() else {
        return Ok(None);
    };
    let TableObject::TableName(name) = &ins.table else {
        return Ok(None);
    };
    if !is_predictions(name) {
        return Ok(None);
    }
    let query = ins.source.clone().ok_or_else(|| {
        SqlError::Parse("INSERT INTO quiver.predictions: expected VALUES or a query".into())
    })?;
    let columns = ins
        .columns
        .iter()
        .map(|c| {
            c.0.last()
                .and_then(|p| p.as_ident())
                .map(|i| i.value.clone())
                .ok_or_else(|| SqlError::Parse(format!("unsupported column name {c}")))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Some(Statement::InsertPredictions { columns, query }))
}

/// The table functions whose first argument names a dataset.
pub const DATASET_FUNCTIONS: &[&str] = &[
    "quiver_diff",
    "quiver_conflicts",
    "quiver_merge_preview",
    "quiver_history",
];

/// Datasets named as the first argument of a table function over a dataset
/// ([`DATASET_FUNCTIONS`]: `quiver_diff('ds', …)`, …) in a statement.
pub fn diff_datasets(sql: &str) -> Vec<String> {
    DATASET_FUNCTIONS
        .iter()
        .flat_map(|f| function_first_args(sql, f))
        .collect()
}

/// First string arguments of the calls of table function `name` in a statement (used to
/// resolve what the function needs before DataFusion plans it).
pub fn function_first_args(sql: &str, name: &str) -> Vec<String> {
    let Ok(tokens) = tokenize(sql) else {
        return Vec::new();
    };
    let sig: Vec<&Token> = tokens
        .iter()
        .map(|t| &t.token)
        .filter(|t| !matches!(t, Token::Whitespace(_)))
        .collect();
    sig.windows(3)
        .filter_map(|w| match (w[0], w[1], w[2]) {
            (Token::Word(f), Token::LParen, Token::SingleQuotedString(a))
                if f.value.eq_ignore_ascii_case(name) =>
            {
                Some(a.clone())
            }
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests;
