//! Table names that carry a version: `ds`, `"ds@ref"` and the forms the `AS OF` rewrite
//! produces (`"ds@tag:v1"`, `"ds@branch:b"`, `"ds@version:9f2c"`, `"ds@timestamp:…"`).

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
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
            RefSpec::Loose(_) => None,
            RefSpec::Branch(b) => Some(VersionSpec::Branch(b.clone())),
            RefSpec::Tag(t) => Some(VersionSpec::Tag(t.clone())),
            RefSpec::Version(v) => Some(VersionSpec::Version(v.clone())),
            RefSpec::Timestamp(t) => Some(VersionSpec::Timestamp {
                branch: branch.into(),
                at: parse_timestamp(t)?,
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
