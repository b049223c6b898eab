//! Persistent records of the catalog: dataset configuration, commits, version specs.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use chrono::{DateTime, Utc};
use quiver_tree::{Hash, TreeConfig};
use serde::{Deserialize, Serialize};

use crate::error::{CoreError, Result};

/// Version of the on-storage format written by this build (docs/FORMAT.md).
pub const FORMAT_VERSION: u32 = 2;

/// Default average number of label groups per base chunk.
pub const DEFAULT_CHUNK_GROUPS: u32 = 512;

fn default_chunk_groups() -> u32 {
    DEFAULT_CHUNK_GROUPS
}

/// One column of a dataset schema, as stored in `dataset.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FieldDef {
    pub name: String,
    /// Arrow `DataType` in its display form (parsed back with `DataType::from_str`).
    pub data_type: String,
    pub nullable: bool,
}

/// Configuration of a dataset, fixed at creation (`datasets/<name>/dataset.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DatasetConfig {
    pub format_version: u32,
    pub name: String,
    pub fields: Vec<FieldDef>,
    pub group_key: String,
    pub label_key: String,
    /// Columns whose min/max/null counts are kept in the snapshot tree for pruning.
    pub stats_columns: Vec<String>,
    /// Format 1 only (unused by format 2).
    pub leaf_target: u32,
    /// Format 1 only (unused by format 2).
    pub fanout: u32,
    /// Average label groups per base chunk.
    #[serde(default = "default_chunk_groups")]
    pub chunk_groups: u32,
    pub created_at: DateTime<Utc>,
}

impl DatasetConfig {
    /// The Arrow schema of the dataset.
    pub fn schema(&self) -> Result<SchemaRef> {
        let mut fields = Vec::with_capacity(self.fields.len());
        for f in &self.fields {
            let dt: DataType = f.data_type.parse().map_err(|e| CoreError::Corrupt {
                what: format!("schema of dataset '{}'", self.name),
                reason: format!(
                    "column '{}' has unparseable type '{}': {e}",
                    f.name, f.data_type
                ),
            })?;
            fields.push(Field::new(&f.name, dt, f.nullable));
        }
        Ok(Arc::new(Schema::new(fields)))
    }

    /// Field definitions of an Arrow schema.
    pub fn fields_of(schema: &Schema) -> Vec<FieldDef> {
        schema
            .fields()
            .iter()
            .map(|f| FieldDef {
                name: f.name().clone(),
                data_type: f.data_type().to_string(),
                nullable: f.is_nullable(),
            })
            .collect()
    }

    /// Chunking parameters of the snapshot tree.
    pub fn tree_config(&self) -> TreeConfig {
        TreeConfig {
            leaf_target: self.leaf_target,
            fanout: self.fanout,
        }
    }

    /// Identity of the schema: blake3 of its canonical JSON.
    pub fn schema_id(&self) -> Hash {
        let bytes = serde_json::to_vec(&self.fields).unwrap_or_default();
        Hash::of(&bytes)
    }
}

/// Counts of what a commit changed.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct OperationSummary {
    /// The operation: `create`, `append`, `upsert`, `delete`, `write`, `merge`, `import`, …
    pub operation: String,
    pub groups_added: u64,
    pub groups_removed: u64,
    pub groups_modified: u64,
    pub labels_added: u64,
    pub labels_removed: u64,
    pub labels_modified: u64,
}

/// The canonical (hashed) content of a commit.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CommitData {
    pub format_version: u32,
    pub dataset: String,
    pub root: String,
    pub parents: Vec<String>,
    pub schema_id: String,
    pub author: String,
    pub message: String,
    /// Time taken by the writer when the commit was created (storage clock).
    pub timestamp: DateTime<Utc>,
    /// Time supplied by the client (defaults to `timestamp`).
    pub client_timestamp: DateTime<Utc>,
    pub summary: OperationSummary,
    /// The label schema version (registry) the labels of this commit follow, if the dataset
    /// has a schema registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_schema: Option<String>,
}

/// A commit (version) with its id.
#[derive(Debug, Clone, PartialEq)]
pub struct Commit {
    pub id: Hash,
    pub root: Hash,
    pub parents: Vec<Hash>,
    pub data: CommitData,
}

impl Commit {
    /// Canonical bytes: serde_json of `CommitData` with fields in declaration order.
    pub fn encode(data: &CommitData) -> Result<Vec<u8>> {
        Ok(serde_json::to_vec(data)?)
    }

    /// Decode and check a commit object.
    pub fn decode(id: Hash, bytes: &[u8]) -> Result<Commit> {
        let data: CommitData = serde_json::from_slice(bytes)?;
        let bad = |what: &str| CoreError::Corrupt {
            what: format!("commit {id}"),
            reason: format!("bad {what} hash"),
        };
        let root = Hash::from_hex(&data.root).ok_or_else(|| bad("root"))?;
        let parents = data
            .parents
            .iter()
            .map(|p| Hash::from_hex(p).ok_or_else(|| bad("parent")))
            .collect::<Result<Vec<_>>>()?;
        Ok(Commit {
            id,
            root,
            parents,
            data,
        })
    }

    /// Short (12-char) id for display.
    pub fn short_id(&self) -> String {
        self.id.to_hex()[..12].to_string()
    }
}

/// A way to name a version of a dataset.
#[derive(Debug, Clone, PartialEq)]
pub enum VersionSpec {
    /// The head of a branch.
    Branch(String),
    /// The commit a tag names.
    Tag(String),
    /// A commit id or a unique prefix of one (at least 4 hex chars).
    Version(String),
    /// The newest commit of `branch` at or before a time.
    Timestamp { branch: String, at: DateTime<Utc> },
    /// The n-th commit of a branch's history (0 = first, -1 = latest).
    Index { branch: String, index: i64 },
}

impl VersionSpec {
    /// The head of `main`.
    pub fn main() -> Self {
        VersionSpec::Branch(crate::DEFAULT_BRANCH.to_string())
    }

    /// Parse the short form used in `ds@ref` names and CLI flags: a branch or tag name,
    /// a commit id prefix, `~N` / `~-1` for an index on main.
    pub fn parse_loose(s: &str) -> VersionSpec {
        if let Some(idx) = s.strip_prefix('~').and_then(|i| i.parse::<i64>().ok()) {
            return VersionSpec::Index {
                branch: crate::DEFAULT_BRANCH.to_string(),
                index: idx,
            };
        }
        VersionSpec::Version(s.to_string())
    }
}

impl std::fmt::Display for VersionSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VersionSpec::Branch(b) => write!(f, "branch '{b}'"),
            VersionSpec::Tag(t) => write!(f, "tag '{t}'"),
            VersionSpec::Version(v) => write!(f, "version '{v}'"),
            VersionSpec::Timestamp { branch, at } => write!(f, "branch '{branch}' at {at}"),
            VersionSpec::Index { branch, index } => write!(f, "branch '{branch}' index {index}"),
        }
    }
}

/// A branch or tag with the commit it names.
#[derive(Debug, Clone, PartialEq)]
pub struct RefInfo {
    pub name: String,
    pub commit: Hash,
}
