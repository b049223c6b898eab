//! The SQL extensions of Quiver, parsed in front of DataFusion's parser.
//!
//! A script is split into statements on top-level `;` (with sqlparser's tokenizer, so
//! quoted `;` are safe). Each statement is classified by its leading keywords:
//!
//! ```text
//! CREATE DATASET name (col type [NOT NULL], …) KEY (group_col, label_col)
//! CREATE BRANCH b FROM ds [AS OF <ref>]         DROP BRANCH b ON ds
//! CREATE TAG 't' ON ds [AS OF <ref>]            DROP TAG 't' ON ds
//! SHOW BRANCHES ON ds   SHOW TAGS ON ds   SHOW HISTORY ON ds [AS OF <ref>]
//! DIFF ds BETWEEN <ref> AND <ref>
//! USE BRANCH b ON ds
//! BEGIN [TRANSACTION] | START TRANSACTION       COMMIT ['message']       ROLLBACK
//! MERGE <ref> INTO target ON ds [MESSAGE 'm']   (<ref>: the branch, tag or version merged)
//! SHOW CONFLICTS ON ds                           (the pending merge into the session's branch)
//! RESOLVE CONFLICTS ON ds USING OURS|THEIRS [WHERE <predicate over the conflict table>]
//! ABORT MERGE ON ds          COMMIT MERGE ON ds [MESSAGE 'm']   (a bare COMMIT also works)
//! <ref> := BRANCH 'b' | TAG 't' | VERSION 'id-or-prefix' | TIMESTAMP '…'
//! ```
//!
//! Everything else is DataFusion SQL, after one token-level rewrite: `ds AS OF TAG 'v1'`
//! in a FROM/JOIN position becomes the table name `"ds@tag:v1" AS ds`, which the catalog
//! resolves (see [`crate::names`]). An `AS OF` that does not follow a table name in a
//! FROM or JOIN clause is an error, never dropped silently.

use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer, Whitespace};

use crate::error::{Result, SqlError};
use crate::guard::{SqlKind, SqlLimits};
use crate::names::RefSpec;

/// One parsed statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    /// `CREATE DATASET name (columns) KEY (group, label)`.
    CreateDataset {
        name: String,
        columns: String,
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
    /// `SHOW CONFLICTS ON ds`.
    ShowConflicts { dataset: String },
    /// `RESOLVE CONFLICTS ON ds USING OURS|THEIRS [WHERE predicate]`.
    ResolveConflicts {
        dataset: String,
        theirs: bool,
        filter: Option<String>,
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
    InsertPredictions { query: String },
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
    /// A DataFusion query (already rewritten for `AS OF`), classified as a read on its
    /// AST by [`crate::guard::classify`].
    Sql(String),
    /// `INSERT`, `UPDATE` or `DELETE` on a dataset (already rewritten for `AS OF`),
    /// classified on its AST.
    Dml(String),
}

impl Statement {
    /// Whether the statement changes the catalog (refs, commits, datasets, pending merges).
    /// Servers and read-only sessions use this to refuse writes. Exhaustive on purpose: a
    /// new statement must be classified here before it compiles.
    pub fn is_write(&self) -> bool {
        match self {
            Statement::ShowBranches { .. }
            | Statement::ShowTags { .. }
            | Statement::ShowHistory { .. }
            | Statement::Diff { .. }
            | Statement::UseBranch { .. }
            | Statement::ShowConflicts { .. }
            | Statement::ShowSchemas { .. }
            | Statement::ShowSchema { .. }
            | Statement::Begin
            | Statement::Rollback
            | Statement::Sql(_) => false,
            Statement::CreateDataset { .. }
            | Statement::CreateTable { .. }
            | Statement::DropTable { .. }
            | Statement::CreateBranch { .. }
            | Statement::DropBranch { .. }
            | Statement::CreateTag { .. }
            | Statement::DropTag { .. }
            | Statement::Commit { .. }
            | Statement::Merge { .. }
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
            | Statement::Dml(_) => true,
        }
    }

    /// Whether the statement is a plain query (planned lazily, streams its rows).
    pub fn is_query(&self) -> bool {
        matches!(self, Statement::Sql(_))
    }
}

fn opt_message(m: &Option<String>) -> String {
    m.as_ref()
        .map(|m| format!(" MESSAGE {}", sql_string(m)))
        .unwrap_or_default()
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
        RefSpec::Loose(s) => format!("VERSION {}", sql_string(s)),
        RefSpec::Branch(s) => format!("BRANCH {}", sql_string(s)),
        RefSpec::Tag(s) => format!("TAG {}", sql_string(s)),
        RefSpec::Version(s) => format!("VERSION {}", sql_string(s)),
        RefSpec::Timestamp(s) => format!("TIMESTAMP {}", sql_string(s)),
    }
}

fn as_of(r: &RefSpec) -> String {
    match r {
        RefSpec::Session => String::new(),
        r => format!(" AS OF {}", ref_sql(r)),
    }
}

/// Round-trips: `parse_statement(&s.to_string())` gives `s` back.
impl std::fmt::Display for Statement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Statement::CreateSchemaVersion {
                dataset, version, ..
            } => write!(
                f,
                "CREATE SCHEMA VERSION {} ON {dataset} …",
                sql_string(version)
            ),
            Statement::ShowSchemas { dataset } => write!(f, "SHOW SCHEMAS ON {dataset}"),
            Statement::ShowSchema { dataset, .. } => write!(f, "SHOW SCHEMA ON {dataset}"),
            Statement::Migrate {
                dataset, version, ..
            } => write!(f, "MIGRATE {dataset} TO SCHEMA {}", sql_string(version)),
            Statement::CreateRun {
                run_id,
                dataset,
                at,
            } => write!(
                f,
                "CREATE RUN {} ON {dataset}{}",
                sql_string(run_id),
                as_of(at)
            ),
            Statement::CreateModel { model, run_id, .. } => {
                write!(
                    f,
                    "CREATE MODEL {} FROM RUN {}",
                    sql_string(model),
                    sql_string(run_id)
                )
            }
            Statement::InsertPredictions { query } => {
                write!(f, "INSERT INTO quiver.predictions {query}")
            }
            Statement::CreateDataset {
                name,
                columns,
                group_key,
                label_key,
            } => {
                write!(
                    f,
                    "CREATE DATASET {name} ({columns}) KEY ({group_key}, {label_key})"
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
            } => write!(f, "CREATE BRANCH {branch} FROM {dataset}{}", as_of(from)),
            Statement::DropBranch { dataset, branch } => {
                write!(f, "DROP BRANCH {branch} ON {dataset}")
            }
            Statement::CreateTag { dataset, tag, at } => {
                write!(
                    f,
                    "CREATE TAG {} ON {dataset}{}",
                    sql_string(tag),
                    as_of(at)
                )
            }
            Statement::DropTag { dataset, tag } => {
                write!(f, "DROP TAG {} ON {dataset}", sql_string(tag))
            }
            Statement::ShowBranches { dataset } => write!(f, "SHOW BRANCHES ON {dataset}"),
            Statement::ShowTags { dataset } => write!(f, "SHOW TAGS ON {dataset}"),
            Statement::ShowHistory { dataset, at } => {
                write!(f, "SHOW HISTORY ON {dataset}{}", as_of(at))
            }
            Statement::Diff { dataset, from, to } => write!(
                f,
                "DIFF {dataset} BETWEEN {} AND {}",
                ref_sql(from),
                ref_sql(to)
            ),
            Statement::UseBranch { dataset, branch } => {
                write!(f, "USE BRANCH {branch} ON {dataset}")
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
                "MERGE {} INTO {target} ON {dataset}{}",
                ref_sql(source),
                opt_message(message)
            ),
            Statement::ShowConflicts { dataset } => write!(f, "SHOW CONFLICTS ON {dataset}"),
            Statement::ResolveConflicts {
                dataset,
                theirs,
                filter,
            } => {
                let side = if *theirs { "THEIRS" } else { "OURS" };
                write!(f, "RESOLVE CONFLICTS ON {dataset} USING {side}")?;
                match filter {
                    Some(p) => write!(f, " WHERE {p}"),
                    None => Ok(()),
                }
            }
            Statement::AbortMerge { dataset } => write!(f, "ABORT MERGE ON {dataset}"),
            Statement::CommitMerge { dataset, message } => {
                write!(f, "COMMIT MERGE ON {dataset}{}", opt_message(message))
            }
            Statement::Optimize {
                dataset,
                branch,
                full,
            } => {
                write!(f, "OPTIMIZE {dataset}")?;
                if let Some(b) = branch {
                    write!(f, " ON BRANCH {b}")?;
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
                write!(f, "VACUUM {dataset}")?;
                if let Some(h) = retain_hours {
                    write!(f, " RETAIN {h} HOURS")?;
                }
                if *dry_run {
                    write!(f, " DRY RUN")?;
                }
                Ok(())
            }
            Statement::Sql(s) | Statement::Dml(s) => write!(f, "{s}"),
        }
    }
}

fn tokenize(sql: &str) -> Result<Vec<Token>> {
    Tokenizer::new(&GenericDialect {}, sql)
        .tokenize()
        .map_err(|e| SqlError::Parse(e.to_string()))
}

fn is_ws(t: &Token) -> bool {
    matches!(t, Token::Whitespace(_))
}

fn render(tokens: &[Token]) -> String {
    tokens
        .iter()
        .map(render_token)
        .collect::<String>()
        .trim()
        .to_string()
}

/// One token as SQL text. sqlparser prints quoted strings and identifiers without
/// doubling the quotes inside them (`'it''s'` would come back as `'it's'`): those are
/// escaped here.
fn render_token(t: &Token) -> String {
    match t {
        Token::SingleQuotedString(s) => format!("'{}'", s.replace('\'', "''")),
        Token::Word(w) if w.quote_style == Some('"') => {
            format!("\"{}\"", w.value.replace('"', "\"\""))
        }
        other => other.to_string(),
    }
}

/// Split a script into statements and parse each, with the default [`SqlLimits`].
pub fn parse_script(sql: &str) -> Result<Vec<Statement>> {
    parse_script_with(sql, &SqlLimits::default())
}

/// Split a script into statements and parse each; the text and every DataFusion
/// statement in it are checked against `limits` before anything is planned.
pub fn parse_script_with(sql: &str, limits: &SqlLimits) -> Result<Vec<Statement>> {
    crate::guard::check_size(sql, "the SQL text", limits)?;
    let tokens = tokenize(sql)?;
    let mut out = Vec::new();
    for part in tokens.split(|t| *t == Token::SemiColon) {
        // a comment separates tokens like a space (`INSERT/**/INTO` is `INSERT INTO`)
        let part: Vec<Token> = part
            .iter()
            .map(|t| match t {
                Token::Whitespace(
                    Whitespace::SingleLineComment { .. } | Whitespace::MultiLineComment(_),
                ) => Token::Whitespace(Whitespace::Space),
                t => t.clone(),
            })
            .collect();
        if part.iter().all(is_ws) {
            continue;
        }
        out.push(parse_tokens(part, limits)?);
    }
    Ok(out)
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

/// Cursor over the significant tokens of one statement.
struct Cursor {
    toks: Vec<Token>,
    pos: usize,
}

impl Cursor {
    fn peek_word(&self, n: usize) -> Option<String> {
        match self.toks.get(self.pos + n) {
            Some(Token::Word(w)) if w.quote_style.is_none() => Some(w.value.to_ascii_uppercase()),
            _ => None,
        }
    }
    fn is_kw(&self, n: usize, kw: &str) -> bool {
        self.peek_word(n).as_deref() == Some(kw)
    }
    fn next(&mut self) -> Option<Token> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }
    fn expect_kw(&mut self, kw: &str) -> Result<()> {
        if self.is_kw(0, kw) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.unexpected(&format!("expected {kw}")))
        }
    }
    fn unexpected(&self, what: &str) -> SqlError {
        match self.toks.get(self.pos) {
            Some(t) => SqlError::Parse(format!("{what}, found '{t}'")),
            None => SqlError::Parse(format!("{what}, found end of statement")),
        }
    }
    /// An identifier or a quoted string.
    fn name(&mut self, what: &str) -> Result<String> {
        match self.next() {
            Some(Token::Word(w)) => Ok(w.value),
            Some(Token::SingleQuotedString(s)) => Ok(s),
            _ => {
                self.pos -= 1;
                Err(self.unexpected(&format!("expected {what}")))
            }
        }
    }
    /// `BRANCH 'b' | TAG 't' | VERSION 'v' | TIMESTAMP 't'`.
    fn version_ref(&mut self) -> Result<RefSpec> {
        let kind = self.peek_word(0).unwrap_or_default();
        if !matches!(kind.as_str(), "BRANCH" | "TAG" | "VERSION" | "TIMESTAMP") {
            return Err(self.unexpected("expected BRANCH, TAG, VERSION or TIMESTAMP"));
        }
        self.pos += 1;
        let v = self.name(&format!("a {} name", kind.to_ascii_lowercase()))?;
        RefSpec::from_kind(&kind, v).ok_or_else(|| SqlError::Parse("bad version reference".into()))
    }
    fn opt_as_of(&mut self) -> Result<RefSpec> {
        if self.is_kw(0, "AS") && self.is_kw(1, "OF") {
            self.pos += 2;
            self.version_ref()
        } else {
            Ok(RefSpec::Session)
        }
    }
    /// `[MESSAGE 'm']`.
    fn opt_message(&mut self) -> Result<Option<String>> {
        if self.is_kw(0, "MESSAGE") {
            self.pos += 1;
            Ok(Some(self.name("a message")?))
        } else {
            Ok(None)
        }
    }
    fn end(&self) -> Result<()> {
        if self.pos < self.toks.len() {
            Err(self.unexpected("expected end of statement"))
        } else {
            Ok(())
        }
    }
}

fn parse_tokens(all: Vec<Token>, limits: &SqlLimits) -> Result<Statement> {
    let sig: Vec<Token> = all.iter().filter(|t| !is_ws(t)).cloned().collect();
    let mut c = Cursor { toks: sig, pos: 0 };
    let w0 = c.peek_word(0).unwrap_or_default();
    let w1 = c.peek_word(1).unwrap_or_default();
    let st = match (w0.as_str(), w1.as_str()) {
        ("MERGE", "BRANCH" | "TAG" | "VERSION" | "TIMESTAMP") => {
            c.pos += 1;
            let source = c.version_ref()?;
            c.expect_kw("INTO")?;
            let target = c.name("the branch to merge into")?;
            c.expect_kw("ON")?;
            let dataset = c.name("a dataset name")?;
            let message = c.opt_message()?;
            Statement::Merge {
                dataset,
                source,
                target,
                message,
            }
        }
        ("SHOW", "CONFLICTS") => {
            c.pos += 2;
            c.expect_kw("ON")?;
            Statement::ShowConflicts {
                dataset: c.name("a dataset name")?,
            }
        }
        ("RESOLVE", "CONFLICTS") => {
            c.pos += 2;
            c.expect_kw("ON")?;
            let dataset = c.name("a dataset name")?;
            c.expect_kw("USING")?;
            let theirs = match c.peek_word(0).as_deref() {
                Some("OURS") => false,
                Some("THEIRS") => true,
                _ => return Err(c.unexpected("expected OURS or THEIRS")),
            };
            c.pos += 1;
            let filter = if c.is_kw(0, "WHERE") {
                let at = all
                    .iter()
                    .position(|t| matches!(t, Token::Word(w) if w.keyword == Keyword::WHERE))
                    .unwrap_or(all.len());
                let p = render(&all[(at + 1).min(all.len())..]);
                if p.is_empty() {
                    return Err(SqlError::Parse(
                        "RESOLVE CONFLICTS: expected a predicate after WHERE".into(),
                    ));
                }
                c.pos = c.toks.len();
                Some(p)
            } else {
                None
            };
            Statement::ResolveConflicts {
                dataset,
                theirs,
                filter,
            }
        }
        ("ABORT", "MERGE") => {
            c.pos += 2;
            c.expect_kw("ON")?;
            Statement::AbortMerge {
                dataset: c.name("a dataset name")?,
            }
        }
        ("COMMIT", "MERGE") => {
            c.pos += 2;
            c.expect_kw("ON")?;
            let dataset = c.name("a dataset name")?;
            let message = c.opt_message()?;
            Statement::CommitMerge { dataset, message }
        }
        ("CREATE", "DATASET") => {
            c.pos += 2;
            let name = c.name("a dataset name")?;
            // columns: the balanced parenthesised list, rendered back to SQL
            let start = all
                .iter()
                .position(|t| *t == Token::LParen)
                .ok_or_else(|| {
                    SqlError::Parse("CREATE DATASET: expected '(' and a column list".into())
                })?;
            let mut depth = 0usize;
            let mut end = start;
            for (i, t) in all.iter().enumerate().skip(start) {
                match t {
                    Token::LParen => depth += 1,
                    Token::RParen => {
                        depth -= 1;
                        if depth == 0 {
                            end = i;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            if end == start {
                return Err(SqlError::Parse(
                    "CREATE DATASET: unbalanced parentheses".into(),
                ));
            }
            let columns = render(&all[start + 1..end]);
            // skip to after the matching ')' in the significant tokens
            let consumed = all[..=end].iter().filter(|t| !is_ws(t)).count();
            c.pos = consumed;
            c.expect_kw("KEY")?;
            if c.next() != Some(Token::LParen) {
                return Err(SqlError::Parse(
                    "CREATE DATASET: expected KEY (group_column, label_column)".into(),
                ));
            }
            let group_key = c.name("the group key column")?;
            if c.next() != Some(Token::Comma) {
                return Err(SqlError::Parse(
                    "CREATE DATASET: expected KEY (group_column, label_column)".into(),
                ));
            }
            let label_key = c.name("the label key column")?;
            if c.next() != Some(Token::RParen) {
                return Err(SqlError::Parse(
                    "CREATE DATASET: expected ')' after the key columns".into(),
                ));
            }
            Statement::CreateDataset {
                name,
                columns,
                group_key,
                label_key,
            }
        }
        ("CREATE", "BRANCH") => {
            c.pos += 2;
            let branch = c.name("a branch name")?;
            c.expect_kw("FROM")?;
            let dataset = c.name("a dataset name")?;
            let from = c.opt_as_of()?;
            Statement::CreateBranch {
                dataset,
                branch,
                from,
            }
        }
        ("DROP", "BRANCH") => {
            c.pos += 2;
            let branch = c.name("a branch name")?;
            c.expect_kw("ON")?;
            Statement::DropBranch {
                dataset: c.name("a dataset name")?,
                branch,
            }
        }
        ("CREATE", "TAG") => {
            c.pos += 2;
            let tag = c.name("a tag name")?;
            c.expect_kw("ON")?;
            let dataset = c.name("a dataset name")?;
            let at = c.opt_as_of()?;
            Statement::CreateTag { dataset, tag, at }
        }
        ("DROP", "TAG") => {
            c.pos += 2;
            let tag = c.name("a tag name")?;
            c.expect_kw("ON")?;
            Statement::DropTag {
                dataset: c.name("a dataset name")?,
                tag,
            }
        }
        ("CREATE", "SCHEMA") if c.is_kw(2, "VERSION") => {
            c.pos += 3;
            let version = c.name("a schema version like '2.3'")?;
            c.expect_kw("ON")?;
            let dataset = c.name("a dataset name")?;
            let parent = if c.is_kw(0, "FROM") {
                c.pos += 1;
                Some(c.name("the parent schema version")?)
            } else {
                None
            };
            let mut changes = Vec::new();
            while !c.is_kw(0, "MESSAGE") && c.pos < c.toks.len() {
                if !changes.is_empty() && c.next() != Some(Token::Comma) {
                    c.pos -= 1;
                    return Err(c.unexpected("expected ',' between schema changes"));
                }
                changes.push(schema_change(&mut c)?);
            }
            if changes.is_empty() {
                return Err(SqlError::Parse(
                    "CREATE SCHEMA VERSION: expected at least one change (ADD CLASS 'name' = id, REMOVE CLASS, RENAME CLASS 'a' TO 'b', ADD ATTRIBUTE 'name' TYPE, REMOVE ATTRIBUTE, RENAME ATTRIBUTE)".into(),
                ));
            }
            let message = c.opt_message()?;
            Statement::CreateSchemaVersion {
                dataset,
                version,
                parent,
                changes,
                message,
            }
        }
        ("SHOW", "SCHEMAS") => {
            c.pos += 2;
            c.expect_kw("ON")?;
            Statement::ShowSchemas {
                dataset: c.name("a dataset name")?,
            }
        }
        ("SHOW", "SCHEMA") => {
            c.pos += 2;
            c.expect_kw("ON")?;
            let dataset = c.name("a dataset name")?;
            let (mut version, mut at) = (None, None);
            if c.is_kw(0, "VERSION") {
                c.pos += 1;
                version = Some(c.name("a schema version")?);
            } else if c.is_kw(0, "AT") {
                c.pos += 1;
                at = Some(c.name("a timestamp")?);
            }
            Statement::ShowSchema {
                dataset,
                version,
                at,
            }
        }
        ("VACUUM", _) => parse_vacuum(&mut c)?,
        ("OPTIMIZE", _) => {
            c.pos += 1;
            let dataset = c.name("a dataset name")?;
            let mut branch = None;
            if c.is_kw(0, "ON") {
                c.pos += 1;
                c.expect_kw("BRANCH")?;
                branch = Some(c.name("a branch name")?);
            }
            let full = c.is_kw(0, "FULL");
            if full {
                c.pos += 1;
            }
            Statement::Optimize {
                dataset,
                branch,
                full,
            }
        }
        ("MIGRATE", _) => {
            c.pos += 1;
            let dataset = c.name("a dataset name")?;
            c.expect_kw("TO")?;
            c.expect_kw("SCHEMA")?;
            let version = c.name("a schema version")?;
            let mut mapping = Vec::new();
            if c.is_kw(0, "USING") {
                c.pos += 1;
                if c.next() != Some(Token::LParen) {
                    c.pos -= 1;
                    return Err(c.unexpected("expected USING ('old' = 'new', …)"));
                }
                loop {
                    let from = c.name("a class name")?;
                    if c.next() != Some(Token::Eq) {
                        c.pos -= 1;
                        return Err(c.unexpected("expected '=' in USING ('old' = 'new')"));
                    }
                    let to = c.name("a class name")?;
                    mapping.push((from, to));
                    match c.next() {
                        Some(Token::Comma) => continue,
                        Some(Token::RParen) => break,
                        _ => {
                            c.pos -= 1;
                            return Err(c.unexpected("expected ',' or ')'"));
                        }
                    }
                }
            }
            Statement::Migrate {
                dataset,
                version,
                mapping,
            }
        }
        ("CREATE", "RUN") => {
            c.pos += 2;
            let run_id = c.name("a run id")?;
            c.expect_kw("ON")?;
            let dataset = c.name("a dataset name")?;
            let at = c.opt_as_of()?;
            Statement::CreateRun {
                run_id,
                dataset,
                at,
            }
        }
        ("CREATE", "MODEL") => {
            c.pos += 2;
            let model = c.name("a model name")?;
            c.expect_kw("FROM")?;
            c.expect_kw("RUN")?;
            let run_id = c.name("a run id")?;
            let message = c.opt_message()?;
            Statement::CreateModel {
                model,
                run_id,
                message,
            }
        }
        ("INSERT", "INTO")
            if c.is_kw(2, "QUIVER")
                && c.toks.get(c.pos + 3) == Some(&Token::Period)
                && c.is_kw(4, "PREDICTIONS") =>
        {
            // everything after the table name: an optional column list and the query
            let at = all
                .iter()
                .position(|t| word_is(t, "predictions"))
                .unwrap_or(all.len());
            let rest = render(&all[(at + 1).min(all.len())..]);
            c.pos = c.toks.len();
            Statement::InsertPredictions {
                query: rest.trim().to_string(),
            }
        }
        ("SHOW", "BRANCHES") | ("SHOW", "TAGS") | ("SHOW", "HISTORY") => {
            c.pos += 2;
            c.expect_kw("ON")?;
            let dataset = c.name("a dataset name")?;
            match w1.as_str() {
                "BRANCHES" => Statement::ShowBranches { dataset },
                "TAGS" => Statement::ShowTags { dataset },
                _ => Statement::ShowHistory {
                    dataset,
                    at: c.opt_as_of()?,
                },
            }
        }
        ("DIFF", _) => {
            c.pos += 1;
            let dataset = c.name("a dataset name")?;
            c.expect_kw("BETWEEN")?;
            let from = c.version_ref()?;
            c.expect_kw("AND")?;
            let to = c.version_ref()?;
            Statement::Diff { dataset, from, to }
        }
        ("USE", "BRANCH") => {
            c.pos += 2;
            let branch = c.name("a branch name")?;
            c.expect_kw("ON")?;
            Statement::UseBranch {
                dataset: c.name("a dataset name")?,
                branch,
            }
        }
        ("BEGIN", _) => {
            c.pos += 1;
            if c.is_kw(0, "TRANSACTION") || c.is_kw(0, "WORK") {
                c.pos += 1;
            }
            Statement::Begin
        }
        ("START", "TRANSACTION") => {
            c.pos += 2;
            Statement::Begin
        }
        ("COMMIT", _) => {
            c.pos += 1;
            if c.is_kw(0, "TRANSACTION") || c.is_kw(0, "WORK") {
                c.pos += 1;
            }
            let message = match c.toks.get(c.pos) {
                Some(Token::SingleQuotedString(s)) => {
                    c.pos += 1;
                    Some(s.clone())
                }
                _ => None,
            };
            Statement::Commit { message }
        }
        ("ROLLBACK", _) => {
            c.pos += 1;
            if c.is_kw(0, "TRANSACTION") || c.is_kw(0, "WORK") {
                c.pos += 1;
            }
            Statement::Rollback
        }
        _ => {
            let sql = rewrite_as_of(all)?;
            return Ok(match crate::guard::classify(&sql, limits)? {
                SqlKind::Query => Statement::Sql(sql),
                SqlKind::Dml => Statement::Dml(sql),
                SqlKind::TableDdl(st) => *st,
            });
        }
    };
    c.end()?;
    Ok(st)
}

/// One change of `CREATE SCHEMA VERSION`.
/// `VACUUM ds [RETAIN n DAYS|HOURS] [DRY RUN]` (the cursor is on `VACUUM`).
fn parse_vacuum(c: &mut Cursor) -> Result<Statement> {
    c.pos += 1;
    let dataset = c.name("a dataset name")?;
    let mut retain_hours = None;
    if c.is_kw(0, "RETAIN") {
        c.pos += 1;
        let n = match c.next() {
            Some(Token::Number(n, _)) => n.parse::<u64>().ok(),
            _ => None,
        };
        let Some(n) = n else {
            c.pos -= 1;
            return Err(
                c.unexpected("VACUUM: expected a whole number of DAYS or HOURS after RETAIN")
            );
        };
        let per = match c.peek_word(0).as_deref() {
            Some("DAYS" | "DAY") => 24,
            Some("HOURS" | "HOUR") => 1,
            _ => return Err(c.unexpected("VACUUM: expected DAYS or HOURS")),
        };
        c.pos += 1;
        // at most 100 years
        retain_hours = Some(
            n.checked_mul(per)
                .filter(|h| *h <= 100 * 365 * 24)
                .ok_or_else(|| SqlError::Parse(format!("VACUUM: retention of {n} is too long")))?,
        );
    }
    let dry_run = c.is_kw(0, "DRY") && c.is_kw(1, "RUN");
    if dry_run {
        c.pos += 2;
    }
    Ok(Statement::Vacuum {
        dataset,
        retain_hours,
        dry_run,
    })
}

fn schema_change(c: &mut Cursor) -> Result<quiver_core::SchemaChange> {
    use quiver_core::SchemaChange as S;
    let verb = c.peek_word(0).unwrap_or_default();
    let what = c.peek_word(1).unwrap_or_default();
    if !matches!(verb.as_str(), "ADD" | "REMOVE" | "DROP" | "RENAME")
        || !matches!(what.as_str(), "CLASS" | "ATTRIBUTE")
    {
        return Err(c.unexpected("expected ADD|REMOVE|RENAME CLASS or ADD|REMOVE|RENAME ATTRIBUTE"));
    }
    c.pos += 2;
    let name = c.name(&format!("a {} name", what.to_ascii_lowercase()))?;
    Ok(match (verb.as_str(), what.as_str()) {
        ("ADD", "CLASS") => {
            if c.next() != Some(Token::Eq) {
                c.pos -= 1;
                return Err(c.unexpected("expected ADD CLASS 'name' = id"));
            }
            let id = match c.next() {
                Some(Token::Number(n, _)) => n.parse::<i64>().ok(),
                Some(Token::Minus) => match c.next() {
                    Some(Token::Number(n, _)) => n.parse::<i64>().ok().map(|v| -v),
                    _ => None,
                },
                _ => None,
            }
            .ok_or_else(|| {
                SqlError::Parse(format!("ADD CLASS '{name}': expected an integer id"))
            })?;
            S::AddClass { name, id }
        }
        ("ADD", _) => {
            let ty = c.name("an attribute type")?;
            S::AddAttribute {
                name,
                data_type: ty.to_ascii_uppercase(),
            }
        }
        ("REMOVE" | "DROP", "CLASS") => S::RemoveClass { name },
        ("REMOVE" | "DROP", _) => S::RemoveAttribute { name },
        (_, kind) => {
            c.expect_kw("TO")?;
            let to = c.name("the new name")?;
            if kind == "CLASS" {
                S::RenameClass { from: name, to }
            } else {
                S::RenameAttribute { from: name, to }
            }
        }
    })
}

fn next_sig(tokens: &[Token], from: usize) -> Option<usize> {
    (from..tokens.len()).find(|&i| !is_ws(&tokens[i]))
}

fn prev_sig(tokens: &[Token], before: usize) -> Option<usize> {
    (0..before).rev().find(|&i| !is_ws(&tokens[i]))
}

fn word_is(t: &Token, kw: &str) -> bool {
    matches!(t, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(kw))
}

/// Rewrite every `table AS OF <ref>` into a versioned table name and render the SQL.
pub fn rewrite_as_of(mut tokens: Vec<Token>) -> Result<String> {
    let mut i = 0;
    while i < tokens.len() {
        let is_as_of = word_is(&tokens[i], "AS")
            && next_sig(&tokens, i + 1).is_some_and(|j| word_is(&tokens[j], "OF"));
        if !is_as_of {
            i += 1;
            continue;
        }
        let misplaced =
            || SqlError::Parse("AS OF must follow a table name in a FROM or JOIN clause".into());
        let of = next_sig(&tokens, i + 1).ok_or_else(misplaced)?;
        // the table name before AS, and a FROM / JOIN / ',' before it
        let ti = prev_sig(&tokens, i).ok_or_else(misplaced)?;
        let table = match &tokens[ti] {
            Token::Word(w) if w.quote_style.is_some() || w.keyword == Keyword::NoKeyword => {
                w.value.clone()
            }
            _ => return Err(misplaced()),
        };
        if table.contains('@') {
            return Err(SqlError::Parse(format!(
                "table \"{table}\" already names a version; it cannot take AS OF as well"
            )));
        }
        let before = prev_sig(&tokens, ti).ok_or_else(misplaced)?;
        if !(word_is(&tokens[before], "FROM")
            || word_is(&tokens[before], "JOIN")
            || tokens[before] == Token::Comma)
        {
            return Err(misplaced());
        }
        let ki = next_sig(&tokens, of + 1).ok_or_else(|| {
            SqlError::Parse("AS OF must be followed by BRANCH, TAG, VERSION or TIMESTAMP".into())
        })?;
        let kind = match &tokens[ki] {
            Token::Word(w) if w.quote_style.is_none() => w.value.clone(),
            t => {
                return Err(SqlError::Parse(format!(
                    "AS OF must be followed by BRANCH, TAG, VERSION or TIMESTAMP, found '{t}'"
                )))
            }
        };
        let vi = next_sig(&tokens, ki + 1).ok_or_else(|| {
            SqlError::Parse(format!("AS OF {kind} must be followed by a quoted name"))
        })?;
        let value = match &tokens[vi] {
            Token::SingleQuotedString(s) => s.clone(),
            Token::Word(w) if w.keyword == Keyword::NoKeyword || w.quote_style.is_some() => {
                w.value.clone()
            }
            t => {
                return Err(SqlError::Parse(format!(
                    "AS OF {kind} must be followed by a quoted name, found '{t}'"
                )))
            }
        };
        let spec = RefSpec::from_kind(&kind, value).ok_or_else(|| {
            SqlError::Parse(format!(
                "AS OF must be followed by BRANCH, TAG, VERSION or TIMESTAMP, found '{kind}'"
            ))
        })?;
        let has_alias = next_sig(&tokens, vi + 1).is_some_and(|j| match &tokens[j] {
            Token::Word(w) => {
                w.keyword == Keyword::NoKeyword
                    || w.keyword == Keyword::AS
                    || w.quote_style.is_some()
            }
            _ => false,
        });
        let mut repl = vec![Token::make_word(
            &format!("{table}@{}", spec.encode()),
            Some('"'),
        )];
        if !has_alias {
            repl.push(Token::Whitespace(Whitespace::Space));
            repl.push(Token::make_keyword("AS"));
            repl.push(Token::Whitespace(Whitespace::Space));
            repl.push(Token::make_word(&table, Some('"')));
        }
        let n = repl.len();
        tokens.splice(ti..=vi, repl);
        i = ti + n;
    }
    Ok(render(&tokens))
}

/// Datasets named as the first argument of `quiver_diff('ds', …)` in a statement.
pub fn diff_datasets(sql: &str) -> Vec<String> {
    let mut out = function_first_args(sql, "quiver_diff");
    out.extend(function_first_args(sql, "quiver_conflicts"));
    out
}

/// First string arguments of the calls of table function `name` in a statement (used to
/// resolve what the function needs before DataFusion plans it).
pub fn function_first_args(sql: &str, name: &str) -> Vec<String> {
    let Ok(tokens) = tokenize(sql) else {
        return Vec::new();
    };
    let sig: Vec<&Token> = tokens.iter().filter(|t| !is_ws(t)).collect();
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
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn as_of_rewrites_to_versioned_names() {
        let s = parse_statement(
            "SELECT * FROM ds AS OF TAG 'v1' a JOIN ds AS OF BRANCH 'b' b USING (k)",
        )
        .unwrap();
        assert_eq!(
            s,
            Statement::Sql("SELECT * FROM \"ds@tag:v1\" a JOIN \"ds@branch:b\" b USING (k)".into())
        );
        let s =
            parse_statement("select count(*) from ds as of version 'abcd' where x > 1").unwrap();
        assert_eq!(
            s,
            Statement::Sql("select count(*) from \"ds@version:abcd\" AS \"ds\" where x > 1".into())
        );
    }

    #[test]
    fn misplaced_as_of_is_an_error() {
        assert!(parse_statement("SELECT 1 AS OF TAG 'v1'").is_err());
        assert!(parse_statement("SELECT * FROM ds AS OF SOMETHING 'v1'").is_err());
        assert!(parse_statement("SELECT * FROM ds AS OF TAG").is_err());
    }

    #[test]
    fn extension_statements_round_trip() {
        for sql in [
            "CREATE BRANCH relabel FROM ds AS OF TAG 'v1'",
            "CREATE BRANCH relabel FROM ds",
            "DROP BRANCH relabel ON ds",
            "CREATE TAG 'v1' ON ds AS OF BRANCH 'main'",
            "DROP TAG 'v1' ON ds",
            "SHOW BRANCHES ON ds",
            "SHOW TAGS ON ds",
            "SHOW HISTORY ON ds AS OF BRANCH 'relabel'",
            "DIFF ds BETWEEN TAG 'v1' AND BRANCH 'relabel'",
            "USE BRANCH relabel ON ds",
            "BEGIN",
            "COMMIT 'relabel pass'",
            "ROLLBACK",
            "MERGE BRANCH 'relabel' INTO main ON ds MESSAGE 'bring back'",
            "MERGE TAG 'v1' INTO fix ON ds",
            "SHOW CONFLICTS ON ds",
            "RESOLVE CONFLICTS ON ds USING THEIRS WHERE theirs_score > 0.5",
            "RESOLVE CONFLICTS ON ds USING OURS",
            "ABORT MERGE ON ds",
            "COMMIT MERGE ON ds MESSAGE 'resolved'",
            "OPTIMIZE ds",
            "OPTIMIZE ds ON BRANCH relabel",
            "OPTIMIZE ds FULL",
            "OPTIMIZE ds ON BRANCH relabel FULL",
        ] {
            let st = parse_statement(sql).unwrap();
            assert!(!matches!(st, Statement::Sql(_)), "{sql}");
            assert_eq!(parse_statement(&st.to_string()).unwrap(), st, "{sql}");
        }
        let st = parse_statement("CREATE DATASET d (sample_id BIGINT NOT NULL, label_id INT NOT NULL, c VARCHAR) KEY (sample_id, label_id)").unwrap();
        assert_eq!(parse_statement(&st.to_string()).unwrap(), st);
        assert!(parse_statement("DIFF ds BETWEEN TAG 'v1'").is_err());
        assert!(parse_statement("SHOW BRANCHES ON ds extra").is_err());
        assert!(parse_statement("RESOLVE CONFLICTS ON ds USING BOTH").is_err());
        assert!(parse_statement("MERGE BRANCH b ON ds").is_err());
        match parse_statement("RESOLVE CONFLICTS ON ds USING OURS WHERE kind = 'both_modified'")
            .unwrap()
        {
            Statement::ResolveConflicts { filter, .. } => {
                assert_eq!(filter.as_deref(), Some("kind = 'both_modified'"))
            }
            st => panic!("{st:?}"),
        }
    }

    #[test]
    fn vacuum_parses_and_round_trips() {
        for (sql, hours, dry) in [
            ("VACUUM ds", None, false),
            ("vacuum ds retain 7 days", Some(168), false),
            ("VACUUM ds RETAIN 12 HOURS DRY RUN", Some(12), true),
            ("VACUUM ds RETAIN 0 DAYS", Some(0), false),
            ("VACUUM ds DRY RUN", None, true),
        ] {
            let st = parse_statement(sql).unwrap();
            let want = Statement::Vacuum {
                dataset: "ds".into(),
                retain_hours: hours,
                dry_run: dry,
            };
            assert_eq!(st, want, "{sql}");
            assert!(st.is_write(), "{sql}");
            assert_eq!(parse_statement(&st.to_string()).unwrap(), st, "{sql}");
        }
        for bad in [
            "VACUUM",
            "VACUUM ds RETAIN",
            "VACUUM ds RETAIN 7",
            "VACUUM ds RETAIN 7 WEEKS",
            "VACUUM ds RETAIN -1 DAYS",
            "VACUUM ds RETAIN 99999999999 DAYS",
            "VACUUM ds DRY",
            "VACUUM ds extra",
        ] {
            assert!(parse_statement(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn script_splits_on_top_level_semicolons() {
        let v = parse_script("BEGIN; INSERT INTO ds VALUES (1, 'a;b'); COMMIT 'm';").unwrap();
        assert_eq!(v.len(), 3);
    }
}
