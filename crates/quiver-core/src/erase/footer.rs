//! The group hashes of erased rows, kept in the footer of the pack that holds them.
//!
//! Commit ids and content hashes come from the group hashes recorded in layouts, chunks and
//! deltas, never from pack bytes. One place computes a group's hash from its rows: a group
//! found in a base chunk (chunks do not list their groups' hashes), when a commit replaces
//! it or a diff compares it. After an erasure those rows hash differently from the hash
//! the content was built from, so every base pack holding erased rows says, in a Parquet
//! key-value entry of its footer ([`FOOTER_KEY`]), which groups those are and their
//! recorded hashes:
//!
//! ```json
//! [["<group key hex>", first_row, rows, "<recorded group hash hex>", "<hash of the erased rows hex>"], …]
//! ```
//!
//! The footer is read with the rows (one request, cached), so a reader never sees erased
//! rows without their hashes. OPTIMIZE copies the entries of the groups it moves into the
//! packs it writes.

use std::collections::HashMap;

use parquet::file::metadata::ParquetMetaData;
use quiver_tree::{Hash, Key};

use crate::error::{CoreError, Result};

/// The Parquet key-value metadata key of the erased groups of a pack.
pub const FOOTER_KEY: &str = "quiver.erased_groups";

/// A group of a pack whose rows were erased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupAlias {
    pub key: Key,
    /// Its first row in the pack.
    pub first_row: u64,
    pub rows: u64,
    /// The group hash the content was built from (of the rows before the erasure).
    pub hash: Hash,
    /// The hash of the rows as they are now.
    pub erased: Hash,
}

/// The erased groups of one pack, by first row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErasedGroups {
    by_row: HashMap<u64, GroupAlias>,
}

impl ErasedGroups {
    /// From a list of aliases.
    pub fn new(aliases: impl IntoIterator<Item = GroupAlias>) -> ErasedGroups {
        ErasedGroups {
            by_row: aliases.into_iter().map(|a| (a.first_row, a)).collect(),
        }
    }

    /// The recorded hash of the group at rows `first_row .. first_row + rows`, when it was
    /// erased.
    pub fn hash_at(&self, first_row: u64, rows: u64) -> Option<Hash> {
        self.by_row
            .get(&first_row)
            .filter(|a| a.rows == rows)
            .map(|a| a.hash)
    }

    /// The alias of the group starting at `first_row`.
    pub fn get(&self, first_row: u64) -> Option<&GroupAlias> {
        self.by_row.get(&first_row)
    }

    /// Every erased group, in row order.
    pub fn aliases(&self) -> Vec<&GroupAlias> {
        let mut v: Vec<&GroupAlias> = self.by_row.values().collect();
        v.sort_by_key(|a| a.first_row);
        v
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.by_row.is_empty()
    }

    /// The footer value (JSON, see the module doc).
    pub fn encode(&self) -> String {
        let rows: Vec<serde_json::Value> = self
            .aliases()
            .into_iter()
            .map(|a| {
                serde_json::json!([
                    hex::encode(&a.key),
                    a.first_row,
                    a.rows,
                    a.hash.to_hex(),
                    a.erased.to_hex()
                ])
            })
            .collect();
        serde_json::Value::Array(rows).to_string()
    }

    /// Decode a footer value of pack `pack`.
    pub fn decode(pack: &Hash, s: &str) -> Result<ErasedGroups> {
        let bad = |r: &str| CoreError::Corrupt {
            what: crate::packs::pack_path(pack),
            reason: format!("footer entry {FOOTER_KEY}: {r}"),
        };
        let v: Vec<(String, u64, u64, String, String)> =
            serde_json::from_str(s).map_err(|e| bad(&e.to_string()))?;
        let mut out = Vec::with_capacity(v.len());
        for (key, first_row, rows, hash, erased) in v {
            out.push(GroupAlias {
                key: hex::decode(&key).map_err(|_| bad("a key is not hex"))?,
                first_row,
                rows,
                hash: Hash::from_hex(&hash).ok_or_else(|| bad("a hash is not a hash"))?,
                erased: Hash::from_hex(&erased).ok_or_else(|| bad("a hash is not a hash"))?,
            });
        }
        Ok(ErasedGroups::new(out))
    }

    /// The erased groups a pack's footer lists (none when it has no entry).
    pub fn of_footer(pack: &Hash, meta: &ParquetMetaData) -> Result<ErasedGroups> {
        let kv = meta.file_metadata().key_value_metadata();
        match kv.and_then(|kv| kv.iter().find(|e| e.key == FOOTER_KEY)) {
            Some(e) => Self::decode(pack, e.value.as_deref().unwrap_or("[]")),
            None => Ok(ErasedGroups::default()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn footer_entries_round_trip() {
        let g = ErasedGroups::new([
            GroupAlias {
                key: b"img-1".to_vec(),
                first_row: 10,
                rows: 3,
                hash: Hash::of(b"o"),
                erased: Hash::of(b"e"),
            },
            GroupAlias {
                key: vec![0x80, 0, 0, 0, 0, 0, 0, 1],
                first_row: 0,
                rows: 1,
                hash: Hash::of(b"o2"),
                erased: Hash::of(b"e2"),
            },
        ]);
        let pack = Hash::of(b"p");
        let back = ErasedGroups::decode(&pack, &g.encode()).expect("decode");
        assert_eq!(back, g);
        assert_eq!(back.hash_at(10, 3), Some(Hash::of(b"o")));
        assert_eq!(back.hash_at(10, 2), None);
        assert!(ErasedGroups::decode(&pack, "[[1]]").is_err());
    }
}
