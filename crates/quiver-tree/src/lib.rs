//! The Merkle snapshot tree of Quiver (prolly-tree style).
//!
//! A snapshot of a dataset is a tree whose leaves list *label groups* (all labels of one
//! sample) in group-key order. Each leaf entry carries the group key, the blake3 hash of
//! the group's canonical row encoding (computed by `quiver-core`), its row count and a few
//! per-column statistics. Internal nodes list their children with first/last key, hash,
//! row and group counts and aggregated statistics.
//!
//! Chunk boundaries are content-defined from the keys only, so the shape of the tree (and
//! therefore its root hash) depends only on the set of entries, never on the order of the
//! edits that produced it (history independence, DESIGN invariant 5).
//!
//! Chunking rule (details in `src/chunk.rs`): with `h(l, k)` the first 8 bytes (LE) of
//! `blake3([l] || k)`, a leaf ends after a key with `h(0, k) < u64::MAX / leaf_target` and
//! a level-`l` internal node ends after a child whose last key has
//! `h(l, k) < u64::MAX / fanout`. The node byte layout (format version
//! [`NODE_FORMAT_VERSION`]) is documented in `src/codec.rs`.
//!
//! This crate knows nothing of Parquet, object_store or DataFusion: nodes are read and
//! written through the small [`NodeStore`] trait.

mod chunk;
mod codec;
mod diff;
mod hash;
mod node;
mod store;
mod tree;

pub use codec::{NODE_FORMAT_VERSION, NODE_MAGIC};
pub use diff::{
    diff, diff_located, diff_located_with, diff_with, merge3, Change, ChangeKind, GroupAt,
    GroupConflict, LocatedChange, MergeOutcome,
};
pub use hash::Hash;
pub use node::{ChildEntry, ColumnStats, GroupEntry, Node, StatValue};
pub use store::MemNodeStore;
pub use tree::{
    apply, build, empty, entries, get, height, leaf_entries, leaves, leaves_batch, locate, summary,
    Edit,
};

use std::sync::Arc;

/// A group key in its order-preserving byte encoding (bytewise order = key order).
pub type Key = Vec<u8>;

/// Errors of the snapshot tree.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    /// A node could not be decoded (truncated, unknown tag, bad version).
    #[error("malformed tree node {hash}: {reason}")]
    Malformed { hash: String, reason: String },
    /// The node store failed (I/O, missing object, corruption); the message comes from it.
    #[error("node store error: {0}")]
    Store(String),
    /// `build` was given entries that are not strictly ascending by key.
    #[error("entries not strictly ascending at key {key}")]
    Unsorted { key: String },
}

/// Result alias of this crate.
pub type Result<T, E = TreeError> = std::result::Result<T, E>;

/// Where tree nodes live. Implementations must be content-addressed: `put_node` returns
/// `node.hash()`, and `get_node(h)` returns the node whose encoding hashes to `h`.
pub trait NodeStore: Send + Sync {
    /// Read a node by hash.
    fn get_node(&self, hash: &Hash) -> Result<Arc<Node>>;
    /// Read several nodes, in the order given. Stores with I/O latency override this to
    /// fetch them concurrently; the default reads them one after another.
    fn get_nodes(&self, hashes: &[Hash]) -> Result<Vec<Arc<Node>>> {
        hashes.iter().map(|h| self.get_node(h)).collect()
    }
    /// Store a node (idempotent) and return its hash.
    fn put_node(&self, node: &Node) -> Result<Hash>;
}

/// Chunking parameters. Fixed per dataset: a different config gives a different tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeConfig {
    /// Average number of groups per leaf (a boundary follows a key with probability 1/leaf_target).
    pub leaf_target: u32,
    /// Average number of children per internal node.
    pub fanout: u32,
}

impl Default for TreeConfig {
    fn default() -> Self {
        TreeConfig {
            leaf_target: 64,
            fanout: 64,
        }
    }
}
