//! The versioned label schema registry: per dataset, taxonomies (classes with ids, attribute
//! definitions) under semantic version strings (`2.3`).
//!
//! A version is stored as the **delta** from its parent (classes and attributes added,
//! removed, renamed), with author and time, at `datasets/<ds>/schemas/<version>.json`,
//! written once (create-if-absent) and never rewritten. Any past taxonomy is rebuilt by
//! replaying the deltas from the first version. A new version never rewrites labels:
//! migrating labels is an explicit, separate operation (SQL `MIGRATE`).

use std::collections::BTreeMap;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use arrow::array::Array;

use crate::catalog::{dataset_dir, read_json_records};
use crate::dataset::Dataset;
use crate::error::{CoreError, Result};

/// One change of a taxonomy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum SchemaChange {
    AddClass { name: String, id: i64 },
    RemoveClass { name: String },
    RenameClass { from: String, to: String },
    AddAttribute { name: String, data_type: String },
    RemoveAttribute { name: String },
    RenameAttribute { from: String, to: String },
}

impl std::fmt::Display for SchemaChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SchemaChange::AddClass { name, id } => write!(f, "+class {name}={id}"),
            SchemaChange::RemoveClass { name } => write!(f, "-class {name}"),
            SchemaChange::RenameClass { from, to } => write!(f, "~class {from}->{to}"),
            SchemaChange::AddAttribute { name, data_type } => {
                write!(f, "+attribute {name} {data_type}")
            }
            SchemaChange::RemoveAttribute { name } => write!(f, "-attribute {name}"),
            SchemaChange::RenameAttribute { from, to } => write!(f, "~attribute {from}->{to}"),
        }
    }
}

/// A recorded schema version: its delta from `parent`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchemaVersion {
    pub dataset: String,
    pub version: String,
    pub parent: Option<String>,
    pub changes: Vec<SchemaChange>,
    pub author: String,
    pub created_at: DateTime<Utc>,
    pub message: String,
}

/// A full taxonomy: class name → id, attribute name → type.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Taxonomy {
    pub classes: BTreeMap<String, i64>,
    pub attributes: BTreeMap<String, String>,
}

impl Taxonomy {
    /// Apply a delta, refusing changes that do not fit (adding what exists, removing what
    /// does not, reusing a class id).
    pub fn apply(&mut self, ds: &str, version: &str, changes: &[SchemaChange]) -> Result<()> {
        let bad = |reason: String| CoreError::InvalidSchemaChange {
            dataset: ds.into(),
            version: version.into(),
            reason,
        };
        for c in changes {
            match c {
                SchemaChange::AddClass { name, id } => {
                    if self.classes.contains_key(name) {
                        return Err(bad(format!("class '{name}' already exists")));
                    }
                    if let Some((other, _)) = self.classes.iter().find(|(_, v)| **v == *id) {
                        return Err(bad(format!("class id {id} is already used by '{other}'")));
                    }
                    self.classes.insert(name.clone(), *id);
                }
                SchemaChange::RemoveClass { name } => {
                    if self.classes.remove(name).is_none() {
                        return Err(bad(format!("class '{name}' does not exist")));
                    }
                }
                SchemaChange::RenameClass { from, to } => {
                    if self.classes.contains_key(to) {
                        return Err(bad(format!("class '{to}' already exists")));
                    }
                    let id = self
                        .classes
                        .remove(from)
                        .ok_or_else(|| bad(format!("class '{from}' does not exist")))?;
                    self.classes.insert(to.clone(), id);
                }
                SchemaChange::AddAttribute { name, data_type } => {
                    if self.attributes.contains_key(name) {
                        return Err(bad(format!("attribute '{name}' already exists")));
                    }
                    self.attributes.insert(name.clone(), data_type.clone());
                }
                SchemaChange::RemoveAttribute { name } => {
                    if self.attributes.remove(name).is_none() {
                        return Err(bad(format!("attribute '{name}' does not exist")));
                    }
                }
                SchemaChange::RenameAttribute { from, to } => {
                    if self.attributes.contains_key(to) {
                        return Err(bad(format!("attribute '{to}' already exists")));
                    }
                    let t = self
                        .attributes
                        .remove(from)
                        .ok_or_else(|| bad(format!("attribute '{from}' does not exist")))?;
                    self.attributes.insert(to.clone(), t);
                }
            }
        }
        Ok(())
    }
}

/// Check a semantic version string: 1 to 3 dot-separated non-negative integers.
pub fn check_version(dataset: &str, v: &str) -> Result<Vec<u64>> {
    let parts: Option<Vec<u64>> = v.split('.').map(|p| p.parse().ok()).collect();
    match parts {
        Some(p) if (1..=3).contains(&p.len()) && !v.contains(' ') => Ok(p),
        _ => Err(CoreError::InvalidSchemaChange {
            dataset: dataset.into(),
            version: v.into(),
            reason: "a schema version is MAJOR[.MINOR[.PATCH]] (e.g. '2.3')".into(),
        }),
    }
}

impl Dataset {
    fn schema_dir(&self) -> String {
        format!("{}schemas/", dataset_dir(self.name()))
    }

    /// Every recorded schema version, oldest first.
    pub async fn schema_versions(&self) -> Result<Vec<SchemaVersion>> {
        let mut out: Vec<SchemaVersion> =
            read_json_records(self.store(), &self.schema_dir()).await?;
        out.sort_by(|a, b| {
            a.created_at
                .cmp(&b.created_at)
                .then(a.version.cmp(&b.version))
        });
        Ok(out)
    }

    /// One schema version.
    pub async fn schema_version(&self, version: &str) -> Result<SchemaVersion> {
        self.schema_versions()
            .await?
            .into_iter()
            .find(|v| v.version == version)
            .ok_or_else(|| CoreError::SchemaVersionNotFound {
                dataset: self.name().into(),
                version: version.into(),
            })
    }

    /// The newest schema version (the one new commits follow), if any.
    pub async fn current_schema_version(&self) -> Result<Option<String>> {
        Ok(self.schema_versions().await?.pop().map(|v| v.version))
    }

    /// The schema version in force at a time: the newest created at or before it.
    pub async fn schema_version_at(&self, at: DateTime<Utc>) -> Result<Option<SchemaVersion>> {
        Ok(self
            .schema_versions()
            .await?
            .into_iter()
            .rfind(|v| v.created_at <= at))
    }

    /// The full taxonomy of a version, rebuilt from the deltas.
    pub async fn taxonomy(&self, version: &str) -> Result<Taxonomy> {
        self.replay(&self.schema_versions().await?, version)
    }

    /// Every schema version with its full taxonomy, oldest first (one read of the registry).
    pub async fn taxonomies(&self) -> Result<Vec<(SchemaVersion, Taxonomy)>> {
        let all = self.schema_versions().await?;
        let mut out = Vec::with_capacity(all.len());
        for v in &all {
            out.push((v.clone(), self.replay(&all, &v.version)?));
        }
        Ok(out)
    }

    /// Replay the deltas from the first version to `version`.
    fn replay(&self, all: &[SchemaVersion], version: &str) -> Result<Taxonomy> {
        let by_name: BTreeMap<&str, &SchemaVersion> =
            all.iter().map(|v| (v.version.as_str(), v)).collect();
        let mut chain = Vec::new();
        let mut cur = Some(version.to_string());
        while let Some(v) = cur {
            let sv = by_name
                .get(v.as_str())
                .ok_or_else(|| CoreError::SchemaVersionNotFound {
                    dataset: self.name().into(),
                    version: v.clone(),
                })?;
            if chain.len() > all.len() {
                return Err(CoreError::Corrupt {
                    what: format!("schema versions of dataset '{}'", self.name()),
                    reason: "parent chain has a cycle".into(),
                });
            }
            chain.push(*sv);
            cur = sv.parent.clone();
        }
        let mut t = Taxonomy::default();
        for sv in chain.iter().rev() {
            t.apply(self.name(), &sv.version, &sv.changes)?;
        }
        Ok(t)
    }

    /// Record a new schema version as a delta from `parent` (default: the current version).
    pub async fn create_schema_version(
        &self,
        version: &str,
        parent: Option<&str>,
        changes: Vec<SchemaChange>,
        author: &str,
        message: &str,
    ) -> Result<SchemaVersion> {
        check_version(self.name(), version)?;
        let parent = match parent {
            Some(p) => Some(self.schema_version(p).await?.version),
            None => self.current_schema_version().await?,
        };
        // validate the delta against the parent's taxonomy
        let mut t = match &parent {
            Some(p) => self.taxonomy(p).await?,
            None => Taxonomy::default(),
        };
        t.apply(self.name(), version, &changes)?;
        let sv = SchemaVersion {
            dataset: self.name().into(),
            version: version.into(),
            parent,
            changes,
            author: author.into(),
            created_at: Utc::now(),
            message: message.into(),
        };
        let path = format!("{}{version}.json", self.schema_dir());
        let created = self
            .store()
            .put_file_if_absent(&path, Bytes::from(serde_json::to_vec(&sv)?))
            .await?;
        if !created {
            return Err(CoreError::SchemaVersionExists {
                dataset: self.name().into(),
                version: version.into(),
            });
        }
        Ok(sv)
    }
}

/// The registry's rules for rows written to a dataset that has at least one schema
/// version: a `schema_version` column must name a registered version, and a `class` column
/// must hold a class of that version's taxonomy (of the current version when the dataset
/// has no `schema_version` column; versions without classes accept any class).
#[derive(Debug, Clone)]
pub struct RegistryCheck {
    dataset: String,
    /// Registered version → its classes.
    versions: BTreeMap<String, std::collections::BTreeSet<String>>,
    current: String,
}

impl RegistryCheck {
    /// Check written rows; the error names the dataset, what is wrong and a few examples.
    pub fn check(&self, batch: &arrow::array::RecordBatch) -> Result<()> {
        let strings = |name: &str| -> Result<Option<arrow::array::ArrayRef>> {
            match batch.column_by_name(name) {
                None => Ok(None),
                Some(c) => Ok(Some(arrow::compute::cast(
                    c,
                    &arrow::datatypes::DataType::Utf8,
                )?)),
            }
        };
        let versions = strings("schema_version")?;
        let classes = strings("class")?;
        if versions.is_none() && classes.is_none() {
            return Ok(());
        }
        let as_str = |a: &Option<arrow::array::ArrayRef>| {
            a.as_ref().and_then(|a| {
                a.as_any()
                    .downcast_ref::<arrow::array::StringArray>()
                    .cloned()
            })
        };
        let (versions, classes) = (as_str(&versions), as_str(&classes));
        let mut unknown_versions = std::collections::BTreeSet::new();
        let mut unknown_classes = std::collections::BTreeSet::new();
        for row in 0..batch.num_rows() {
            let version = match &versions {
                Some(v) if v.is_valid(row) => v.value(row),
                Some(_) => continue,
                None => self.current.as_str(),
            };
            let Some(known) = self.versions.get(version) else {
                unknown_versions.insert(version.to_string());
                continue;
            };
            if let Some(c) = &classes {
                if c.is_valid(row) && !known.is_empty() && !known.contains(c.value(row)) {
                    unknown_classes.insert(format!("'{}' (schema {version})", c.value(row)));
                }
            }
        }
        let list = |s: &std::collections::BTreeSet<String>| {
            let mut v: Vec<String> = s.iter().take(5).cloned().collect();
            if s.len() > 5 {
                v.push(format!("… {} in all", s.len()));
            }
            v.join(", ")
        };
        if !unknown_versions.is_empty() {
            return Err(CoreError::NotInRegistry {
                dataset: self.dataset.clone(),
                reason: format!(
                    "schema_version {} is not a registered version (registered: {}; add one with CREATE SCHEMA VERSION)",
                    list(&unknown_versions.iter().map(|v| format!("'{v}'")).collect()),
                    self.versions.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            });
        }
        if !unknown_classes.is_empty() {
            return Err(CoreError::NotInRegistry {
                dataset: self.dataset.clone(),
                reason: format!(
                    "class {} is not a class of its schema version (add it in a new schema version, or MIGRATE)",
                    list(&unknown_classes)
                ),
            });
        }
        Ok(())
    }
}

impl Dataset {
    /// The registry's rules for rows written to this dataset; None while it has no schema
    /// version (nothing is enforced before the first one).
    pub async fn registry_check(&self) -> Result<Option<RegistryCheck>> {
        let all = self.taxonomies().await?;
        let Some((last, _)) = all.last() else {
            return Ok(None);
        };
        let current = last.version.clone();
        Ok(Some(RegistryCheck {
            dataset: self.name().to_string(),
            versions: all
                .into_iter()
                .map(|(v, t)| (v.version, t.classes.into_keys().collect()))
                .collect(),
            current,
        }))
    }
}
