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
pub const DEFAULT_CHUNK_GROUPS: u32 = 64;

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

    /// Identity of the schema: [`schema_id_of`] its fields.
    pub fn schema_id(&self) -> Hash {
        schema_id_of(&self.fields)
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

/// Prefix of the schema id stream (the schema id format version).
pub const SCHEMA_ID_PREFIX: &[u8] = b"quiver-schema-v2";

/// The schema id of `fields`, independent of arrow's `Display` strings: blake3 over the 16
/// ASCII bytes `quiver-schema-v2` (no length prefix), the number of fields as u64
/// little-endian, then for each field in order:
///
/// ```text
/// put_bytes(name)
/// 0x01 put_bytes(type_tag(data_type))     data_type parsed as an arrow DataType
///   | 0x00 put_bytes(data_type)           fallback: it does not parse; the stored string
/// nullable as one byte (0x00 / 0x01)
/// ```
///
/// `put_bytes(b)` is the length of `b` as u64 little-endian, then `b`; `type_tag` is
/// [`crate::encoding::type_tag`] (so, like the group hash, the id does not depend on the
/// layout of strings, binaries, lists, decimals or dictionaries, nor on nested nullability
/// or item names). Only a type string that arrow cannot parse back (the fallback) makes
/// the id depend on that string.
pub fn schema_id_of(fields: &[FieldDef]) -> Hash {
    fn put_bytes(buf: &mut Vec<u8>, b: &[u8]) {
        buf.extend_from_slice(&(b.len() as u64).to_le_bytes());
        buf.extend_from_slice(b);
    }
    let mut buf = SCHEMA_ID_PREFIX.to_vec();
    buf.extend_from_slice(&(fields.len() as u64).to_le_bytes());
    for f in fields {
        put_bytes(&mut buf, f.name.as_bytes());
        match f.data_type.parse::<DataType>() {
            Ok(dt) => {
                buf.push(0x01);
                put_bytes(&mut buf, &crate::encoding::type_tag(&dt));
            }
            Err(_) => {
                buf.push(0x00);
                put_bytes(&mut buf, f.data_type.as_bytes());
            }
        }
        buf.push(f.nullable as u8);
    }
    Hash::of(&buf)
}

/// The schema id that builds before `quiver-schema-v2` recorded in commits: blake3 of the
/// compact serde_json of `fields` (whose `data_type` is arrow's `Display` string). Commits
/// written by those builds carry it, so a check that compares the schema ids of two commits
/// of one dataset (merge) should take this and [`schema_id_of`] as the same schema.
pub fn legacy_schema_id_v1(fields: &[FieldDef]) -> Hash {
    Hash::of(&serde_json::to_vec(fields).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn demo_fields() -> Vec<FieldDef> {
        DatasetConfig::fields_of(&crate::demo::schema())
    }

    fn field(name: &str, data_type: &str, nullable: bool) -> FieldDef {
        FieldDef {
            name: name.into(),
            data_type: data_type.into(),
            nullable,
        }
    }

    /// Golden: the schema id of the demo dataset. A change here changes the schema id of
    /// every commit written from then on (merge compares them).
    #[test]
    fn golden_demo_schema_id() {
        let fields = demo_fields();
        // every demo type parses back (no fallback to the type string)
        for f in &fields {
            assert!(f.data_type.parse::<DataType>().is_ok(), "{}", f.data_type);
        }
        let config = DatasetConfig {
            format_version: FORMAT_VERSION,
            name: "demo".into(),
            fields: fields.clone(),
            group_key: "sample_id".into(),
            label_key: "label_id".into(),
            stats_columns: vec![],
            leaf_target: 64,
            fanout: 32,
            chunk_groups: DEFAULT_CHUNK_GROUPS,
            created_at: "2024-01-01T00:00:00Z".parse().unwrap(),
        };
        assert_eq!(
            config.schema_id().to_hex(),
            "a757d39c4f1fae7708d1cd8c95d91066340f40ee18287c6407986c7f48e87c43"
        );
        // what builds before quiver-schema-v2 recorded for the same fields
        assert_eq!(
            legacy_schema_id_v1(&fields).to_hex(),
            "e80be116ac0bbac3151c80b2100096f20600f476e8e82067bc3f3c53febfe7ea"
        );
    }

    /// The schema id follows its documented stream, and depends on names, logical types,
    /// nullability and order, not on the string layout or arrow's type spelling.
    #[test]
    fn schema_id_is_quiver_owned() {
        let fs = vec![
            field("a", "Utf8", false),
            field("b", "Timestamp(µs, \"UTC\")", true),
        ];
        let mut e = b"quiver-schema-v2".to_vec();
        e.extend_from_slice(&2u64.to_le_bytes());
        e.extend_from_slice(&1u64.to_le_bytes());
        e.push(b'a');
        e.extend_from_slice(&[0x01, 1, 0, 0, 0, 0, 0, 0, 0, 0x10, 0x00]);
        e.extend_from_slice(&1u64.to_le_bytes());
        e.push(b'b');
        e.push(0x01);
        let tag = [&[0x22, 0x02, 0x01][..], &3u64.to_le_bytes(), b"UTC"].concat();
        e.extend_from_slice(&(tag.len() as u64).to_le_bytes());
        e.extend_from_slice(&tag);
        e.push(0x01);
        assert_eq!(schema_id_of(&fs), Hash::of(&e));

        let id = |fs: &[FieldDef]| schema_id_of(fs);
        let base = id(&fs);
        let mut v = fs.clone();
        v[0].data_type = "Utf8View".into();
        assert_eq!(id(&v), base, "string layouts are one logical type");
        v[0].data_type = "LargeUtf8".into();
        assert_eq!(id(&v), base);
        v[0].data_type = "Binary".into();
        assert_ne!(id(&v), base);
        let mut v = fs.clone();
        v[0].nullable = true;
        assert_ne!(id(&v), base);
        let mut v = fs.clone();
        v[0].name = "c".into();
        assert_ne!(id(&v), base);
        let mut v = fs.clone();
        v.swap(0, 1);
        assert_ne!(id(&v), base);
        let mut v = fs.clone();
        v[1].data_type = "Timestamp(µs)".into();
        assert_ne!(id(&v), base, "the time zone is part of the type");
    }

    /// A type string arrow cannot parse is hashed as the string (marked 0x00).
    #[test]
    fn schema_id_falls_back_to_unparseable_type_strings() {
        let fs = vec![field("a", "NotAType<7>", true)];
        assert!(fs[0].data_type.parse::<DataType>().is_err());
        let mut e = b"quiver-schema-v2".to_vec();
        e.extend_from_slice(&1u64.to_le_bytes());
        e.extend_from_slice(&1u64.to_le_bytes());
        e.push(b'a');
        e.push(0x00);
        e.extend_from_slice(&11u64.to_le_bytes());
        e.extend_from_slice(b"NotAType<7>");
        e.push(0x01);
        assert_eq!(schema_id_of(&fs), Hash::of(&e));
        assert_ne!(
            schema_id_of(&fs),
            schema_id_of(&[field("a", "NotAType<8>", true)])
        );
    }

    /// Golden: a commit's id is blake3 of `Commit::encode` (the store's `put_object` hashes
    /// the bytes it is given, and `Dataset::write_commit` uses that hash as the id).
    #[test]
    fn golden_commit_id() {
        let data = CommitData {
            format_version: 1,
            dataset: "demo".into(),
            root: "11".repeat(32),
            parents: vec!["22".repeat(32)],
            schema_id: "33".repeat(32),
            author: "alice".into(),
            message: "label fixes".into(),
            timestamp: "2024-05-06T07:08:09.123456Z".parse().unwrap(),
            client_timestamp: "2024-05-06T07:08:00Z".parse().unwrap(),
            summary: OperationSummary {
                operation: "upsert".into(),
                groups_added: 1,
                groups_removed: 0,
                groups_modified: 2,
                labels_added: 3,
                labels_removed: 0,
                labels_modified: 4,
            },
            label_schema: Some("2.3".into()),
        };
        let bytes = Commit::encode(&data).unwrap();
        assert_eq!(
            String::from_utf8(bytes.clone()).unwrap(),
            concat!(
                r#"{"format_version":1,"dataset":"demo","root":"1111111111111111111111111111111111111111111111111111111111111111","parents":["2222222222222222222222222222222222222222222222222222222222222222"],"schema_id":"3333333333333333333333333333333333333333333333333333333333333333","author":"a"#,
                r#"lice","message":"label fixes","timestamp":"2024-05-06T07:08:09.123456Z","client_timestamp":"2024-05-06T07:08:00Z","summary":{"operation":"upsert","groups_added":1,"groups_removed":0,"groups_modified":2,"labels_added":3,"labels_removed":0,"labels_modified":4},"label_schema":"2.3"}"#
            )
        );
        let id = Hash::of(&bytes);
        assert_eq!(
            id.to_hex(),
            "2d2450127818646ee8272a379071f51dab4a3d6149e02c345d4075facb559988"
        );
        let c = Commit::decode(id, &bytes).unwrap();
        assert_eq!(c.data, data);
        // without a label schema the field is left out of the JSON
        let plain = CommitData {
            label_schema: None,
            ..data
        };
        let bytes = Commit::encode(&plain).unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains("label_schema"));
        assert_eq!(
            Hash::of(&bytes).to_hex(),
            "8b5a835348dca6272143731660af80ae41b41ae1abbbf0d35801d72b7d8b0302"
        );
    }

    /// The label types of real schemas parse back from `dataset.json`, so their schema id
    /// uses the type tag, not the stored string (the fallback).
    #[test]
    fn label_types_parse_back() {
        use arrow::datatypes::{Fields, TimeUnit};
        let item = |dt: DataType| Arc::new(Field::new("item", dt, true));
        for dt in [
            DataType::FixedSizeBinary(32),
            DataType::List(item(DataType::Float32)),
            DataType::LargeList(item(DataType::Utf8)),
            DataType::FixedSizeList(item(DataType::Float32), 4),
            DataType::Struct(Fields::from(vec![Field::new(
                "x",
                DataType::Float32,
                false,
            )])),
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            DataType::Decimal128(10, 2),
            DataType::Duration(TimeUnit::Millisecond),
            DataType::Time64(TimeUnit::Nanosecond),
            DataType::Timestamp(TimeUnit::Nanosecond, Some("Europe/Paris".into())),
            DataType::Utf8View,
        ] {
            assert_eq!(dt.to_string().parse::<DataType>().ok(), Some(dt));
        }
    }
}
