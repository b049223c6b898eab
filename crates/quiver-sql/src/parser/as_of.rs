//! `AS OF` on the tables of a DataFusion statement.
//!
//! ```text
//! table_factor := object_name <as_of> [[AS] alias]
//! <as_of>      := AS OF <ref>
//!               | VERSION AS OF n | VERSION AS OF 'id'     -- Delta Lake's form; n: ~n
//!               | TIMESTAMP AS OF <time>                   -- Delta Lake's form
//!               | FOR SYSTEM_TIME AS OF <time>             -- SQL:2011
//! <ref>        := BRANCH 'b' | TAG 't' | VERSION 'id-or-prefix' | VERSION '~n'
//!               | TIMESTAMP <time>
//! <time>       := 'literal' | constant expression (now() - INTERVAL '7 days')
//! ```
//!
//! How timestamps and `~n` resolve: [`crate::names`].
//!
//! sqlparser has no `AS OF <ref>` after a table name, so the clause is handled in two
//! steps around sqlparser's own parse, and the rest of the statement (qualified names,
//! aliases, subqueries, CTEs, joins) is parsed by sqlparser as it is:
//!
//! 1. [`mark`]: on the tokens, each `AS OF <ref>` is taken out and its [`RefSpec`]
//!    recorded; in its place goes a carrier sqlparser parses only right after a table name
//!    (`PARTITION ("<marker>")`, GenericDialect), with the span of the `AS` token.
//! 2. [`claim`]: a `VisitorMut` over the table factors of the parsed statement turns every
//!    marked table `[schema.]ds` into the versioned name `[schema.]"ds@<ref>"` with the
//!    alias `ds` (unless it has one), the form the catalog resolves
//!    ([`crate::names::split_table_name`]).
//!
//! An `AS OF` that no table claims — after an expression, on `INSERT INTO`, on a CTE or a
//! table function — is an error at its line and column, never dropped (DataFusion issue
//! #24754). A `PARTITION (…)` a user wrote is refused the same way.

use std::collections::HashSet;
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, Ident, ObjectNamePart, Query, TableAlias, TableFactor, Value, VisitMut, VisitorMut,
};
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::{Span, Token, TokenWithSpan, Word};

use super::cursor::{above_and, location, DIALECT};
use crate::error::{Result, SqlError};
use crate::names::RefSpec;

/// Prefix of the carrier identifiers (a character no dataset name holds).
const MARKER: &str = "\u{1}quiver_as_of:";

/// One `AS OF` taken out of the tokens.
#[derive(Debug, Clone)]
pub(crate) struct AsOf {
    pub(crate) spec: RefSpec,
    /// Where the `AS` was.
    pub(crate) span: Span,
}

fn misplaced(span: Span) -> SqlError {
    SqlError::Parse(format!(
        "AS OF must follow a table name in a FROM or JOIN clause{}",
        location(span)
    ))
}

fn is_word(t: &Token, kw: &str) -> bool {
    matches!(t, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(kw))
}

/// Index of the next non-whitespace token at or after `from`.
fn next_sig(tokens: &[TokenWithSpan], from: usize) -> Option<usize> {
    (from..tokens.len()).find(|&i| !matches!(tokens[i].token, Token::Whitespace(_)))
}

fn tok(token: Token, span: Span) -> TokenWithSpan {
    TokenWithSpan { token, span }
}

/// Index of the previous non-whitespace token before `at`.
fn prev_sig(tokens: &[TokenWithSpan], at: usize) -> Option<usize> {
    (0..at)
        .rev()
        .find(|&i| !matches!(tokens[i].token, Token::Whitespace(_)))
}

fn found_at(tokens: &[TokenWithSpan], at: Option<usize>) -> (String, Span) {
    match at.and_then(|i| tokens.get(i)) {
        Some(t) if t.token != Token::EOF => (format!("'{}'", t.token), t.span),
        _ => ("end of statement".into(), Span::empty()),
    }
}

/// A timestamp after `AS OF TIMESTAMP`, `TIMESTAMP AS OF` or `FOR SYSTEM_TIME AS OF`,
/// starting at token `from`: a string literal (its text) or a constant expression (its SQL,
/// evaluated when the version is resolved). Returns the value and the index of its last
/// token.
fn timestamp_value(tokens: &[TokenWithSpan], from: usize, what: &str) -> Result<(String, usize)> {
    let mut p = Parser::new(&DIALECT).with_tokens_with_locations(tokens[from..].to_vec());
    let expr = p.parse_subexpr(above_and()).map_err(|e| {
        let (found, at) = found_at(tokens, Some(from));
        SqlError::Parse(format!(
            "{what} must be followed by a timestamp ('2026-03-03 10:00:00' or an expression \
             like now() - INTERVAL '7 days'), found {found}{} ({e})",
            location(at)
        ))
    })?;
    let last = from + p.index().saturating_sub(1);
    let text = match &expr {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) => s.clone(),
            _ => expr.to_string(),
        },
        _ => expr.to_string(),
    };
    Ok((text, last))
}

/// `VERSION AS OF n` (the n-th commit, `~n`) or `VERSION AS OF 'id'`, from token `from`.
fn version_value(tokens: &[TokenWithSpan], from: Option<usize>) -> Result<(String, usize)> {
    let usage = |at: Option<usize>| {
        let (found, span) = found_at(tokens, at);
        SqlError::Parse(format!(
            "VERSION AS OF must be followed by a version number (0 = the first commit, -1 = \
             the latest) or a quoted commit id, found {found}{}",
            location(span)
        ))
    };
    let Some(i) = from else {
        return Err(usage(None));
    };
    match &tokens[i].token {
        Token::Number(n, _) if n.parse::<i64>().is_ok() => Ok((format!("~{n}"), i)),
        Token::SingleQuotedString(s) => Ok((s.clone(), i)),
        Token::Minus => match next_sig(tokens, i + 1).map(|j| (j, &tokens[j].token)) {
            Some((j, Token::Number(n, _))) if n.parse::<i64>().is_ok() => Ok((format!("~-{n}"), j)),
            _ => Err(usage(Some(i))),
        },
        _ => Err(usage(Some(i))),
    }
}

/// Step 1: take every `AS OF <ref>` out of `tokens`, leaving a carrier in its place. The
/// forms of other engines are synonyms: `VERSION AS OF n` (Delta: the n-th commit),
/// `TIMESTAMP AS OF t` (Delta) and `FOR SYSTEM_TIME AS OF t` (SQL:2011).
pub(crate) fn mark(mut tokens: Vec<TokenWithSpan>) -> Result<(Vec<TokenWithSpan>, Vec<AsOf>)> {
    let mut found = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let of = match next_sig(&tokens, i + 1) {
            Some(of) if is_word(&tokens[i].token, "AS") && is_word(&tokens[of].token, "OF") => of,
            _ => {
                i += 1;
                continue;
            }
        };
        // the synonyms put their kind before AS OF
        let before = prev_sig(&tokens, i);
        let before2 = before.and_then(|b| prev_sig(&tokens, b));
        let prefix = match (before, before2) {
            (Some(b), Some(f))
                if is_word(&tokens[b].token, "SYSTEM_TIME") && is_word(&tokens[f].token, "FOR") =>
            {
                Some((f, "TIMESTAMP", "FOR SYSTEM_TIME AS OF"))
            }
            (Some(b), _) if is_word(&tokens[b].token, "VERSION") => {
                Some((b, "VERSION", "VERSION AS OF"))
            }
            (Some(b), _) if is_word(&tokens[b].token, "TIMESTAMP") => {
                Some((b, "TIMESTAMP", "TIMESTAMP AS OF"))
            }
            _ => None,
        };
        let (start, spec, vi) = match prefix {
            Some((start, "VERSION", _)) => {
                let (v, last) = version_value(&tokens, next_sig(&tokens, of + 1))?;
                (start, RefSpec::Version(v), last)
            }
            Some((start, _, what)) => {
                let from = next_sig(&tokens, of + 1).unwrap_or(tokens.len());
                let (v, last) = timestamp_value(&tokens, from.min(tokens.len()), what)?;
                (start, RefSpec::Timestamp(v), last)
            }
            None => {
                let (spec, vi) = as_of_ref(&tokens, of)?;
                (i, spec, vi)
            }
        };
        let span = tokens[start].span;
        let carrier = vec![
            tok(Token::make_keyword("PARTITION"), span),
            tok(Token::LParen, span),
            tok(
                Token::Word(Word {
                    value: format!("{MARKER}{}", found.len()),
                    quote_style: Some('"'),
                    keyword: Keyword::NoKeyword,
                }),
                span,
            ),
            tok(Token::RParen, span),
        ];
        found.push(AsOf { spec, span });
        let n = carrier.len();
        tokens.splice(start..=vi, carrier);
        i = start + n;
    }
    Ok((tokens, found))
}

/// `AS OF <kind> <value>` after the `OF` at `of`: the ref and the index of its last token.
fn as_of_ref(tokens: &[TokenWithSpan], of: usize) -> Result<(RefSpec, usize)> {
    let expected_kind = |at: Option<usize>| {
        let (found, span) = found_at(tokens, at);
        SqlError::Parse(format!(
            "AS OF must be followed by BRANCH, TAG, VERSION or TIMESTAMP, found {found}{} \
             (also accepted: VERSION AS OF n, TIMESTAMP AS OF t, FOR SYSTEM_TIME AS OF t)",
            location(span)
        ))
    };
    let ki = next_sig(tokens, of + 1);
    let kind = match ki.map(|k| &tokens[k].token) {
        Some(Token::Word(w)) if w.quote_style.is_none() => w.value.to_ascii_uppercase(),
        _ => return Err(expected_kind(ki)),
    };
    let Some(ki) = ki else {
        return Err(expected_kind(None));
    };
    if kind == "TIMESTAMP" {
        let from = next_sig(tokens, ki + 1).unwrap_or(tokens.len());
        let (v, last) = timestamp_value(tokens, from, "AS OF TIMESTAMP")?;
        return Ok((RefSpec::Timestamp(v), last));
    }
    let vi = next_sig(tokens, ki + 1);
    let value = match vi.map(|v| &tokens[v].token) {
        Some(Token::SingleQuotedString(s)) => s.clone(),
        Some(Token::Word(w)) if w.keyword == Keyword::NoKeyword || w.quote_style.is_some() => {
            w.value.clone()
        }
        _ => {
            let (found, at) = found_at(tokens, vi);
            let hint = if kind == "VERSION" {
                " (a commit id or prefix, or '~n' for the n-th commit; VERSION AS OF n also \
                 works)"
            } else {
                ""
            };
            return Err(SqlError::Parse(format!(
                "AS OF {kind} must be followed by a quoted name{hint}, found {found}{}",
                location(at)
            )));
        }
    };
    let spec = RefSpec::from_kind(&kind, value).ok_or_else(|| expected_kind(Some(ki)))?;
    Ok((spec, vi.unwrap_or(ki)))
}

/// A parse error of a statement with `AS OF` in it: when the parser stumbled on a carrier,
/// the `AS OF` was misplaced.
pub(crate) fn explain_parse_error(e: SqlError, marks: &[AsOf]) -> SqlError {
    let text = e.to_string();
    for m in marks {
        let at = format!(
            "Line: {}, Column: {}",
            m.span.start.line, m.span.start.column
        );
        if text.contains(&at) || text.contains(MARKER) {
            return misplaced(m.span);
        }
    }
    e
}

/// Step 2: give each marked table factor of `st` its version; fail on any mark no table
/// claimed.
pub(crate) fn claim<V: VisitMut>(st: &mut V, marks: &[AsOf]) -> Result<()> {
    let mut ctes = Ctes::default();
    let _ = st.visit(&mut ctes);
    let mut v = Claim {
        marks,
        claimed: vec![false; marks.len()],
        ctes: ctes.0,
    };
    if let ControlFlow::Break(e) = st.visit(&mut v) {
        return Err(e);
    }
    match v.claimed.iter().position(|c| !c) {
        Some(i) => Err(misplaced(marks[i].span)),
        None => Ok(()),
    }
}

/// For statements without tables: every mark is misplaced.
pub(crate) fn none_claimed(marks: &[AsOf]) -> Result<()> {
    match marks.first() {
        Some(m) => Err(misplaced(m.span)),
        None => Ok(()),
    }
}

/// Names of the CTEs of a statement (lower-cased unless quoted).
#[derive(Default)]
struct Ctes(HashSet<String>);

impl VisitorMut for Ctes {
    type Break = ();
    fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
        if let Some(with) = &q.with {
            for c in &with.cte_tables {
                self.0.insert(normalized(&c.alias.name));
            }
        }
        ControlFlow::Continue(())
    }
}

/// An identifier as DataFusion resolves it: unquoted ones are lower-cased.
fn normalized(i: &Ident) -> String {
    if i.quote_style.is_some() {
        i.value.clone()
    } else {
        i.value.to_lowercase()
    }
}

struct Claim<'a> {
    marks: &'a [AsOf],
    claimed: Vec<bool>,
    ctes: HashSet<String>,
}

impl Claim<'_> {
    /// The mark a carrier identifier stands for.
    fn mark_of(&self, part: &Ident) -> Option<usize> {
        part.value
            .strip_prefix(MARKER)
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| *n < self.marks.len())
    }
}

impl VisitorMut for Claim<'_> {
    type Break = SqlError;

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<SqlError> {
        let TableFactor::Table {
            name,
            alias,
            partitions,
            args,
            ..
        } = factor
        else {
            return ControlFlow::Continue(());
        };
        if partitions.is_empty() {
            return ControlFlow::Continue(());
        }
        let ids: Vec<Option<usize>> = partitions.iter().map(|p| self.mark_of(p)).collect();
        let i = match ids.as_slice() {
            [Some(i)] => *i,
            _ => {
                return ControlFlow::Break(SqlError::Unsupported(format!(
                    "PARTITION (…) on table {name}: datasets have no partitions to name; \
                     read a version with AS OF"
                )))
            }
        };
        let mark = &self.marks[i];
        let fail = |what: String| {
            ControlFlow::Break(SqlError::Parse(format!("{what}{}", location(mark.span))))
        };
        if args.is_some() {
            return fail(format!(
                "AS OF applies to datasets, not to the table function {name}"
            ));
        }
        let parts = name.0.len();
        let Some(ObjectNamePart::Identifier(last)) = name.0.last_mut() else {
            return fail(format!("AS OF needs a dataset name, not {name}"));
        };
        let ds = normalized(last);
        if parts > 1 {
            if let Some(ObjectNamePart::Identifier(schema)) = name.0.get(parts - 2) {
                if normalized(schema) == "quiver" {
                    return fail(format!(
                        "AS OF applies to datasets; quiver.{ds} is a system table without versions"
                    ));
                }
            }
        }
        // re-borrow: the schema check above only read the name
        let Some(ObjectNamePart::Identifier(last)) = name.0.last_mut() else {
            return fail(format!("AS OF needs a dataset name, not {ds}"));
        };
        if parts == 1 && self.ctes.contains(&ds) {
            return fail(format!(
                "AS OF applies to datasets; '{ds}' is a common table expression (WITH)"
            ));
        }
        if ds.contains('@') {
            return fail(format!(
                "table \"{ds}\" already names a version; it cannot take AS OF as well"
            ));
        }
        *last = Ident::with_quote('"', format!("{ds}@{}", mark.spec.encode()));
        if alias.is_none() {
            *alias = Some(TableAlias {
                explicit: true,
                name: Ident::with_quote('"', ds),
                columns: vec![],
                at: None,
            });
        }
        partitions.clear();
        self.claimed[i] = true;
        ControlFlow::Continue(())
    }
}
