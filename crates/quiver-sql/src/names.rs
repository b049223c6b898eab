//! Table names that carry a version: `ds`, `"ds@ref"` and the forms the `AS OF` rewrite
//! produces (`"ds@tag:v1"`, `"ds@branch:b"`, `"ds@version:9f2c"`, `"ds@timestamp:…"`).
//!
//! How a version is named, everywhere a ref is accepted:
//!
//! - `~n`: the n-th commit of the branch's history (0 = the first, `~-1` = the latest), on
//!   the session's branch in SQL (main elsewhere); as a loose name, a `VERSION` or
//!   `VERSION AS OF n`.
//! - a timestamp is compared at the precision it is written with: `'… 10:00:00.123456'`
//!   (as `quiver.commits` shows it) selects the newest commit whose time, truncated to
//!   microseconds, is at or before it; `'2026-03-03 10:00'` truncates to minutes and
//!   `'2026-03-03'` to days (the state at the end of that day). A timestamp may also be a
//!   constant expression (`now() - INTERVAL '7 days'`), compared exactly.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Utc};
use quiver_core::VersionSpec;

use crate::error::{Result, SqlError};

/// Which version a table name asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum RefSpec {
    /// A bare dataset name: the head of the session's branch for that dataset.
    Session,
    /// `ds@name`: a branch, then a tag, then a commit id prefix.
    Loose(String),
    /// The head of a branch.
    Branch(String),
    /// A tag.
    Tag(String),
    /// A commit id or unique prefix.
    Version(String),
    /// The newest commit of the session's branch at or before a time (text as written).
    Timestamp(String),
}

impl RefSpec {
    /// The encoded suffix used after `@` in a table name.
    pub fn encode(&self) -> String {
        match self {
            RefSpec::Session => String::new(),
            RefSpec::Loose(s) => s.clone(),
            RefSpec::Branch(s) => format!("branch:{s}"),
            RefSpec::Tag(s) => format!("tag:{s}"),
            RefSpec::Version(s) => format!("version:{s}"),
            RefSpec::Timestamp(s) => format!("timestamp:{s}"),
        }
    }

    /// Parse the part after `@` (or a ref argument of `quiver_diff`).
    pub fn decode(s: &str) -> RefSpec {
        match s.split_once(':') {
            Some(("branch", v)) => RefSpec::Branch(v.into()),
            Some(("tag", v)) => RefSpec::Tag(v.into()),
            Some(("version", v)) => RefSpec::Version(v.into()),
            Some(("timestamp", v)) => RefSpec::Timestamp(v.into()),
            _ => RefSpec::Loose(s.into()),
        }
    }

    /// Build from an `AS OF` kind keyword (`BRANCH`, `TAG`, `VERSION`, `TIMESTAMP`).
    pub fn from_kind(kind: &str, value: String) -> Option<RefSpec> {
        match kind.to_ascii_uppercase().as_str() {
            "BRANCH" => Some(RefSpec::Branch(value)),
            "TAG" => Some(RefSpec::Tag(value)),
            "VERSION" => Some(RefSpec::Version(value)),
            "TIMESTAMP" => Some(RefSpec::Timestamp(value)),
            _ => None,
        }
    }

    /// The core version spec, with `branch` as the session branch (for `Session` and
    /// `Timestamp`). `Loose` has no spec: resolve it with `Dataset::resolve_loose`.
    pub fn to_spec(&self, branch: &str) -> Result<Option<VersionSpec>> {
        Ok(match self {
            RefSpec::Session => Some(VersionSpec::Branch(branch.into())),
            RefSpec::Loose(v) | RefSpec::Version(v) if index_of(v).is_some() => {
                index_of(v).map(|index| VersionSpec::Index {
                    branch: branch.into(),
                    index,
                })
            }
            RefSpec::Loose(_) => None,
            RefSpec::Branch(b) => Some(VersionSpec::Branch(b.clone())),
            RefSpec::Tag(t) => Some(VersionSpec::Tag(t.clone())),
            RefSpec::Version(v) => Some(VersionSpec::Version(v.clone())),
            RefSpec::Timestamp(t) => Some(VersionSpec::Timestamp {
                branch: branch.into(),
                at: timestamp_bound(t)?,
            }),
        })
    }
}

impl std::fmt::Display for RefSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RefSpec::Session => write!(f, "the session branch"),
            RefSpec::Loose(s) => write!(f, "'{s}'"),
            RefSpec::Branch(s) => write!(f, "BRANCH '{s}'"),
            RefSpec::Tag(s) => write!(f, "TAG '{s}'"),
            RefSpec::Version(s) => write!(f, "VERSION '{s}'"),
            RefSpec::Timestamp(s) => write!(f, "TIMESTAMP '{s}'"),
        }
    }
}

/// `~n` (an index into a branch's history), if `s` is one.
pub fn index_of(s: &str) -> Option<i64> {
    s.trim().strip_prefix('~')?.parse().ok()
}

/// The latest instant a timestamp of `AS OF TIMESTAMP` admits: a literal admits every
/// time that, truncated to the precision it is written with, is not after it (a literal
/// with microseconds admits the nanoseconds of that microsecond); a constant expression
/// (`now() - INTERVAL '7 days'`) is exact.
pub fn timestamp_bound(s: &str) -> Result<DateTime<Utc>> {
    if let Ok(at) = parse_timestamp(s) {
        let step = precision_of(s.trim()) - Duration::nanoseconds(1);
        return Ok(at.checked_add_signed(step).unwrap_or(at));
    }
    eval_timestamp(s)
}

/// The unit of the last field a timestamp literal writes (a day, a minute, a second or a
/// power of ten below it).
fn precision_of(t: &str) -> Duration {
    let time = match t.find(['T', 't', ' ']) {
        Some(i) => &t[i + 1..],
        None => return Duration::days(1),
    };
    // the time without its zone: up to 'Z', '+' or the '-' of an offset
    let end = time.find(['Z', 'z', '+', '-']).unwrap_or(time.len());
    let time = &time[..end];
    match time.split_once('.') {
        Some((_, frac)) => {
            let digits = frac.chars().take_while(|c| c.is_ascii_digit()).count();
            let digits = digits.min(9) as u32;
            Duration::nanoseconds(10_i64.pow(9 - digits))
        }
        None if time.matches(':').count() >= 2 => Duration::seconds(1),
        None => Duration::minutes(1),
    }
}

/// Evaluate a constant SQL expression (`now() - INTERVAL '7 days'`, `'2026-03-03'::date`)
/// to a timestamp. Only constants: no table, column or subquery is in scope.
fn eval_timestamp(text: &str) -> Result<DateTime<Utc>> {
    use datafusion::arrow::datatypes::{DataType, TimeUnit};
    use datafusion::common::{DFSchema, ScalarValue};
    use datafusion::logical_expr::simplify::SimplifyContext;
    use datafusion::logical_expr::{cast, Expr};
    use datafusion::optimizer::simplify_expressions::ExprSimplifier;
    use datafusion::prelude::SessionContext;

    let invalid = |why: String| {
        SqlError::Parse(format!(
            "invalid timestamp {text}: {why} (expected a literal like \
             '2026-03-03 10:00:00.123456' or a constant expression like \
             now() - INTERVAL '7 days')"
        ))
    };
    let schema = DFSchema::empty();
    let ctx = SessionContext::new();
    let expr = ctx
        .parse_sql_expr(text, &schema)
        .map_err(|e| invalid(crate::parser::plain_parse_error(e)))?;
    let expr = cast(
        expr,
        // microseconds: the precision quiver.commits shows, and years past 2262
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
    );
    let simplifier = ExprSimplifier::new(
        SimplifyContext::builder()
            .with_schema(std::sync::Arc::new(schema.clone()))
            .with_query_execution_start_time(Some(Utc::now()))
            .build(),
    );
    let expr = simplifier
        .coerce(expr, &schema)
        .and_then(|e| simplifier.simplify(e))
        .map_err(|e| invalid(e.strip_backtrace()))?;
    match expr {
        Expr::Literal(ScalarValue::TimestampMicrosecond(Some(us), _), _) => {
            DateTime::from_timestamp_micros(us).ok_or_else(|| invalid("out of range".into()))
        }
        Expr::Literal(v, _) if v.is_null() => Err(invalid("it is NULL".into())),
        _ => Err(invalid("not a constant".into())),
    }
}

/// Parse a timestamp literal: RFC 3339, `YYYY-MM-DD HH:MM:SS[.f]` (UTC) or `YYYY-MM-DD`.
pub fn parse_timestamp(s: &str) -> Result<DateTime<Utc>> {
    let t = s.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Ok(d.with_timezone(&Utc));
    }
    for fmt in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(n) = NaiveDateTime::parse_from_str(t, fmt) {
            return Ok(n.and_utc());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        if let Some(n) = d.and_hms_opt(0, 0, 0) {
            return Ok(n.and_utc());
        }
    }
    Err(SqlError::Parse(format!(
        "invalid timestamp '{s}' (expected e.g. '2026-03-03 00:00:00')"
    )))
}

/// Split a table name into dataset and version: `ds` or `ds@ref`.
pub fn split_table_name(name: &str) -> (String, RefSpec) {
    match name.split_once('@') {
        Some((ds, r)) => (ds.to_string(), RefSpec::decode(r)),
        None => (name.to_string(), RefSpec::Session),
    }
}
